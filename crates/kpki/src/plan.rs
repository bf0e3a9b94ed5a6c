//! The planner: a pure function from (desired entries, what is on disk, now, options) to one
//! action per entry with its reason. `init`, `--dry-run` and `plan` all run through it; `apply`
//! carries the actions out.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::disk::read::Observed;
use crate::disk::{Disk, KubeconfigFile, Seen};
use crate::error::Error;
use crate::model::resolve::{CertEntry, Desired, Entry, KubeconfigEntry};
use crate::x509::inspect;

/// What to do with an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Nothing there: generate it.
    Create,
    /// There and right: keep it byte for byte.
    Reuse,
    /// There and right, but asked to renew it (new key, serial, validity).
    Renew,
    /// There but drifted from the spec (e.g. a SAN added): issue it again from the spec.
    Regenerate,
    /// Its CA is external (no key): it can only be checked, not made.
    SkipExternal,
    /// Left alone: not selected (renew of other entries), or selected but missing.
    Skip,
    /// Wrong in a way kpki will not fix on its own; the reason says what to do.
    Error,
}

/// The planned action for one entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Spec entry name.
    pub entry: String,
    /// The action.
    pub action: Action,
    /// Why, in words an operator can act on.
    pub reason: String,
    /// The file the reason is about.
    pub path: String,
    /// Non-fatal observations (e.g. a kubeconfig's server URL differs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// For `Create`: an orphan key on disk is reused instead of generating one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_key: bool,
}

/// `kpki plan -o json`: a versioned, documented contract (docs/plan.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanDocument {
    /// `kpki/v1alpha1`.
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// `Plan`.
    pub kind: String,
    /// One step per spec entry, in spec order (CAs first).
    pub steps: Vec<Step>,
}

impl From<&Plan> for PlanDocument {
    fn from(p: &Plan) -> Self {
        PlanDocument {
            api_version: "kpki/v1alpha1".into(),
            kind: "Plan".into(),
            steps: p.steps.clone(),
        }
    }
}

/// What the caller wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Re-issue certificates whose SANs no longer cover the inputs instead of failing.
    pub regenerate_drifted: bool,
    /// Entries to renew (`certs renew`); empty for `init`.
    pub renew: Vec<String>,
}

/// The plan for a whole tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// One step per entry, in entry order.
    pub steps: Vec<Step>,
}

impl Plan {
    /// The step for an entry.
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.entry == name)
    }

    /// Steps that block applying the plan.
    pub fn errors(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|s| s.action == Action::Error)
    }

    /// The first blocking step as an [`Error`], if any.
    pub fn check(&self) -> Result<(), Error> {
        match self.errors().next() {
            None => Ok(()),
            Some(s) => Err(Error::Conflict {
                entry: s.entry.clone(),
                path: s.path.clone().into(),
                message: s.reason.clone(),
            }),
        }
    }

    /// True when applying would write nothing.
    pub fn is_noop(&self) -> bool {
        self.steps
            .iter()
            .all(|s| matches!(s.action, Action::Reuse | Action::SkipExternal))
    }
}

/// The state of a CA after planning, which its leaves depend on.
#[derive(Debug, Clone)]
enum CaState {
    /// Being made now: existing leaves cannot chain to it.
    New,
    /// Kept; its certificate (and key, unless external) is usable.
    Kept { der: Vec<u8>, external: bool },
    /// Broken: dependants are errors too.
    Broken,
}

fn step(entry: &str, action: Action, path: &std::path::Path, reason: impl Into<String>) -> Step {
    Step {
        entry: entry.to_string(),
        action,
        reason: reason.into(),
        path: path.display().to_string(),
        warnings: vec![],
        keep_key: false,
    }
}

/// Plans every entry of `desired` against `disk` at time `now`.
pub fn plan(desired: &Desired, disk: &Disk, now: OffsetDateTime, opts: &Options) -> Plan {
    let mut cas: HashMap<String, CaState> = HashMap::new();
    let mut steps = Vec::new();
    for e in &desired.entries {
        let seen = disk.entries.get(e.name());
        let s = match (e, seen) {
            (Entry::Ca(c), Some(Seen::Cert { cert, key })) => {
                let (s, st) = plan_ca(c, cert, key, &cas, opts);
                cas.insert(c.name.clone(), st);
                s
            }
            (Entry::Leaf(c), Some(Seen::Cert { cert, key })) => plan_leaf(c, cert, key, &cas, now, opts),
            (Entry::KeyPair(k), Some(Seen::KeyPair { key, public })) => match (key, public) {
                (Observed::Invalid(m), _) => step(&k.name, Action::Error, &k.key_path, format!("{m}; fix or remove the file")),
                (Observed::Present(kf), Observed::Present((spki, _))) => {
                    if kf.key.matches_spki(spki) {
                        step(&k.name, Action::Reuse, &k.key_path, "key pair present and matching")
                    } else {
                        step(&k.name, Action::Error, &k.pub_path, "does not match the private key; remove it to derive it again from the key")
                    }
                }
                (Observed::Present(_), Observed::Missing) => {
                    let mut s = step(&k.name, Action::Create, &k.pub_path, "public key missing; derived from the existing private key");
                    s.keep_key = true;
                    s
                }
                (Observed::Present(_), Observed::Invalid(m)) => step(&k.name, Action::Error, &k.pub_path, format!("{m}; remove it to derive it again from the key")),
                (Observed::Missing, Observed::Present(_)) => step(&k.name, Action::Error, &k.key_path, "is missing but its public key exists; restore the key or remove the public key too"),
                (Observed::Missing, _) => step(&k.name, Action::Create, &k.key_path, "not present"),
            },
            (Entry::Kubeconfig(k), Some(Seen::Kubeconfig(obs))) => plan_kubeconfig(k, obs, disk.signed.get(&k.name), &cas, now, opts),
            (e, _) => step(e.name(), Action::Error, e.main_path(), "internal: the disk was not observed for this entry"),
        };
        let s = if opts.renew.is_empty() {
            s
        } else {
            renew_view(e, s, opts)
        };
        steps.push(s);
    }
    Plan { steps }
}

/// `certs renew` sees the init plan through this: CAs are never made or renewed, entries not
/// asked for are left alone, and asked-for entries that are missing are reported, not created.
fn renew_view(e: &Entry, mut s: Step, opts: &Options) -> Step {
    let selected = opts.renew.iter().any(|n| n == e.name());
    match e {
        Entry::Ca(c) if s.action == Action::Create => {
            s.action = Action::Error;
            s.reason = format!(
                "CA {} is missing; renew never creates a CA (run kpki init)",
                c.name
            );
        }
        Entry::Ca(_) => {}
        _ if !selected => {
            if s.action == Action::Error {
                s.warnings.push(s.reason.clone());
            }
            s.action = Action::Skip;
            s.reason = "not selected for renewal".into();
            s.keep_key = false;
        }
        Entry::KeyPair(k) => {
            s.action = Action::Skip;
            s.reason = format!("{} is a bare key pair; it is not renewed", k.name);
        }
        _ if s.action == Action::Create => {
            let long = match e {
                Entry::Leaf(c) if !c.long_name.is_empty() => c.long_name.clone(),
                _ => e.name().to_string(),
            };
            s.action = Action::Skip;
            s.reason = format!("MISSING! {long}");
            s.keep_key = false;
        }
        _ => {}
    }
    s
}

fn plan_ca(
    c: &CertEntry,
    cert: &Observed<crate::disk::read::CertFile>,
    key: &Observed<std::sync::Arc<crate::disk::read::KeyFile>>,
    cas: &HashMap<String, CaState>,
    _opts: &Options,
) -> (Step, CaState) {
    let err =
        |p: &std::path::Path, m: String| (step(&c.name, Action::Error, p, m), CaState::Broken);
    match (cert, key) {
        (Observed::Invalid(m), _) => err(
            &c.cert_path,
            format!("{m}; kpki will not replace a CA: fix or restore it"),
        ),
        (_, Observed::Invalid(m)) => err(
            &c.key_path,
            format!("{m}; kpki will not replace a CA key: fix or restore it"),
        ),
        (Observed::Present(cf), k) => {
            let info = match inspect::info(&cf.der) {
                Ok(i) => i,
                Err(m) => return err(&c.cert_path, m),
            };
            if !info.is_ca {
                return err(
                    &c.cert_path,
                    "is not a CA certificate (basicConstraints CA:TRUE missing)".into(),
                );
            }
            if let Some(parent) = &c.ca {
                match cas.get(parent) {
                    Some(CaState::Kept { der, .. }) => {
                        if let Err(m) = inspect::signed_by(&cf.der, der) {
                            return err(&c.cert_path, format!("is not signed by CA {parent}: {m}"));
                        }
                    }
                    _ => {
                        return err(
                            &c.cert_path,
                            format!("its signing CA {parent} is missing or broken"),
                        )
                    }
                }
            }
            match k {
                Observed::Present(kf) => {
                    if !kf.key.matches_spki(&info.spki) {
                        return err(&c.key_path, format!("does not match {}", c.cert_path.display()));
                    }
                    (step(&c.name, Action::Reuse, &c.cert_path, "CA certificate and key present"), CaState::Kept { der: cf.der.clone(), external: false })
                }
                _ => (
                    step(&c.name, Action::SkipExternal, &c.cert_path, format!("external CA: {} is absent, so every certificate it signs must already exist", c.key_path.display())),
                    CaState::Kept { der: cf.der.clone(), external: true },
                ),
            }
        }
        (Observed::Missing, Observed::Present(_)) => {
            if let Some(parent) = &c.ca {
                if !matches!(
                    cas.get(parent),
                    Some(CaState::New)
                        | Some(CaState::Kept {
                            external: false,
                            ..
                        })
                ) {
                    return err(&c.cert_path, format!("its signing CA {parent} cannot sign"));
                }
            }
            let mut s = step(&c.name, Action::Create, &c.cert_path, "CA key exists without a certificate; issuing a certificate for the existing key (the key is kept)");
            s.keep_key = true;
            (s, CaState::New)
        }
        (Observed::Missing, Observed::Missing) => {
            if let Some(parent) = &c.ca {
                if !matches!(
                    cas.get(parent),
                    Some(CaState::New)
                        | Some(CaState::Kept {
                            external: false,
                            ..
                        })
                ) {
                    return err(&c.cert_path, format!("its signing CA {parent} cannot sign"));
                }
            }
            (
                step(&c.name, Action::Create, &c.cert_path, "not present"),
                CaState::New,
            )
        }
    }
}

fn plan_leaf(
    c: &CertEntry,
    cert: &Observed<crate::disk::read::CertFile>,
    key: &Observed<std::sync::Arc<crate::disk::read::KeyFile>>,
    cas: &HashMap<String, CaState>,
    now: OffsetDateTime,
    opts: &Options,
) -> Step {
    let ca_name = c.ca.clone().unwrap_or_default();
    let ca = cas.get(&ca_name).cloned().unwrap_or(CaState::Broken);
    let renew = opts.renew.iter().any(|n| n == &c.name);
    match (cert, key) {
        (Observed::Invalid(m), _) => step(&c.name, Action::Error, &c.cert_path, format!("{m}; remove it to have it generated again")),
        (_, Observed::Invalid(m)) => step(&c.name, Action::Error, &c.key_path, format!("{m}; remove it to have it generated again")),
        (Observed::Missing, k) => match ca {
            CaState::Broken => step(&c.name, Action::Error, &c.cert_path, format!("cannot be issued: its CA {ca_name} has a problem")),
            CaState::Kept { external: true, .. } => step(
                &c.name,
                Action::Error,
                &c.cert_path,
                format!("is missing and its CA {ca_name} is external (no key): have the external CA sign it (see kpki certs generate-csr)"),
            ),
            _ => {
                let mut s = step(&c.name, Action::Create, &c.cert_path, "not present");
                if k.exists() {
                    s.reason = "key exists without a certificate; issuing a certificate for the existing key".into();
                    s.keep_key = true;
                }
                s
            }
        },
        (Observed::Present(_), Observed::Missing) => step(&c.name, Action::Error, &c.key_path, format!("is missing while {} exists; restore the key or remove the certificate", c.cert_path.display())),
        (Observed::Present(cf), Observed::Present(kf)) => {
            let info = match inspect::info(&cf.der) {
                Ok(i) => i,
                Err(m) => return step(&c.name, Action::Error, &c.cert_path, m),
            };
            if !kf.key.matches_spki(&info.spki) {
                return step(&c.name, Action::Error, &c.key_path, format!("does not match {}; remove both to have them generated again", c.cert_path.display()));
            }
            let ca_der = match &ca {
                CaState::Kept { der, .. } => der,
                CaState::New => return step(&c.name, Action::Error, &c.cert_path, format!("exists but its CA {ca_name} is being created now, so it cannot chain to it; remove it to have it generated again")),
                CaState::Broken => return step(&c.name, Action::Error, &c.cert_path, format!("its CA {ca_name} has a problem")),
            };
            if let Err(m) = inspect::signed_by(&cf.der, ca_der) {
                return step(&c.name, Action::Error, &c.cert_path, format!("is not signed by CA {ca_name}: {m}"));
            }
            let external = matches!(ca, CaState::Kept { external: true, .. });
            let missing = inspect::missing_sans(&info, &c.profile.dns, &c.profile.ips);
            if !missing.is_empty() {
                let described: Vec<String> = missing
                    .iter()
                    .map(|m| match c.san_origins.iter().find(|(san, _)| san == m) {
                        Some((_, origin)) => format!("{m} (from {origin})"),
                        None => m.clone(),
                    })
                    .collect();
                let what = format!("does not cover the expected SAN(s) {}", described.join(", "));
                return if external {
                    step(&c.name, Action::Error, &c.cert_path, format!("{what}; have the external CA issue it again"))
                } else if opts.regenerate_drifted || renew {
                    step(&c.name, Action::Regenerate, &c.cert_path, format!("{what}; re-issuing it from the spec"))
                } else {
                    step(&c.name, Action::Error, &c.cert_path, format!("{what}; run with --regenerate-drifted or `kpki certs renew {}`", c.name))
                };
            }
            if renew {
                return if external {
                    step(&c.name, Action::SkipExternal, &c.cert_path, format!("Detected external {ca_name}, {} can't be renewed", if c.long_name.is_empty() { &c.name } else { &c.long_name }))
                } else {
                    step(&c.name, Action::Renew, &c.cert_path, format!("renewal requested (expires {})", fmt_time(info.not_after)))
                };
            }
            let mut s = step(&c.name, if external { Action::SkipExternal } else { Action::Reuse }, &c.cert_path, "present, signed by its CA, key matches, SANs cover the inputs");
            expiry_warning(&mut s, info.not_after, now);
            s
        }
    }
}

/// Adds "expired" / "expires in Nd" (within 30 days) to a step's warnings.
fn expiry_warning(s: &mut Step, not_after: OffsetDateTime, now: OffsetDateTime) {
    let left = not_after - now;
    if left <= time::Duration::ZERO {
        s.warnings
            .push(format!("expired on {}", fmt_time(not_after)));
    } else if left < time::Duration::days(30) {
        s.warnings.push(format!(
            "expires in {}d ({})",
            left.whole_days(),
            fmt_time(not_after)
        ));
    }
}

fn plan_kubeconfig(
    k: &KubeconfigEntry,
    obs: &Observed<KubeconfigFile>,
    signed: Option<&Observed<crate::disk::read::CertFile>>,
    cas: &HashMap<String, CaState>,
    now: OffsetDateTime,
    opts: &Options,
) -> Step {
    let ca = cas.get(&k.ca).cloned().unwrap_or(CaState::Broken);
    let renew = opts.renew.iter().any(|n| n == &k.name);
    match obs {
        Observed::Invalid(m) => step(&k.name, Action::Error, &k.path, format!("{m}; fix or remove it to have it generated again")),
        Observed::Missing => match ca {
            CaState::Broken => step(&k.name, Action::Error, &k.path, format!("cannot be issued: its CA {} has a problem", k.ca)),
            CaState::Kept { external: true, .. } => step(&k.name, Action::Error, &k.path, format!("is missing and its CA {} is external (no key): provide it signed by the external CA", k.ca)),
            _ => step(&k.name, Action::Create, &k.path, "not present"),
        },
        Observed::Present(kc) => {
            let ca_der = match &ca {
                CaState::Kept { der, .. } => der,
                CaState::New => return step(&k.name, Action::Error, &k.path, format!("exists but its CA {} is being created now; remove it to have it generated again", k.ca)),
                CaState::Broken => return step(&k.name, Action::Error, &k.path, format!("its CA {} has a problem", k.ca)),
            };
            if kc.cert_der.is_none() && kc.ca_der.is_none() {
                // generate-csr's layout: only the client key so far.
                return complete_external(k, kc, signed, ca_der);
            }
            if kc.ca_der.as_deref() != Some(ca_der.as_slice()) {
                return step(&k.name, Action::Error, &k.path, format!("exists already but has got the wrong CA cert (its certificate-authority-data is not {})", k.ca));
            }
            let (Some(cert), Some(key)) = (&kc.cert_der, &kc.key) else {
                return complete_external(k, kc, signed, ca_der);
            };
            let info = match inspect::info(cert) {
                Ok(i) => i,
                Err(m) => return step(&k.name, Action::Error, &k.path, format!("client-certificate-data: {m}")),
            };
            if !key.matches_spki(&info.spki) {
                return step(&k.name, Action::Error, &k.path, "client-key-data does not match client-certificate-data");
            }
            if let Err(m) = inspect::signed_by(cert, ca_der) {
                return step(&k.name, Action::Error, &k.path, format!("client certificate is not signed by CA {}: {m}", k.ca));
            }
            let external = matches!(ca, CaState::Kept { external: true, .. });
            let mut s = if renew && !external {
                step(&k.name, Action::Renew, &k.path, format!("renewal requested (expires {})", fmt_time(info.not_after)))
            } else if renew {
                step(&k.name, Action::SkipExternal, &k.path, format!("Detected external {}, {} can't be renewed", k.ca, k.name))
            } else {
                step(&k.name, if external { Action::SkipExternal } else { Action::Reuse }, &k.path, "present, embeds the CA, client certificate chains and matches its key")
            };
            if kc.server != k.server {
                s.warnings.push(format!("a kubeconfig file {:?} exists already but has an unexpected API Server URL: expected: {}, got: {}", k.path.display().to_string(), k.server, kc.server));
            }
            expiry_warning(&mut s, info.not_after, now);
            s
        }
    }
}

/// RFC 3339 for messages.
pub fn fmt_time(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// A kubeconfig written by `generate-csr` holds only the client key; once the outside CA's
/// signature is dropped in as `<file>.crt`, `init` embeds it (and the CA) to complete the file.
fn complete_external(
    k: &KubeconfigEntry,
    kc: &KubeconfigFile,
    signed: Option<&Observed<crate::disk::read::CertFile>>,
    ca_der: &[u8],
) -> Step {
    let crt = format!("{}.crt", k.path.display());
    let Some(key) = &kc.key else {
        return step(
            &k.name,
            Action::Error,
            &k.path,
            "has no embedded client certificate and key for its current user",
        );
    };
    let cf = match signed {
        Some(Observed::Present(cf)) => cf,
        Some(Observed::Invalid(m)) => return step(&k.name, Action::Error, std::path::Path::new(&crt), m.clone()),
        _ => return step(&k.name, Action::Error, &k.path, format!("holds a client key but no certificate: have {crt} signed by the external CA ({}.csr) and place it there", k.path.display())),
    };
    let info = match inspect::info(&cf.der) {
        Ok(i) => i,
        Err(m) => return step(&k.name, Action::Error, std::path::Path::new(&crt), m),
    };
    if !key.matches_spki(&info.spki) {
        return step(
            &k.name,
            Action::Error,
            std::path::Path::new(&crt),
            format!("does not match the client key in {}", k.path.display()),
        );
    }
    if let Err(m) = inspect::signed_by(&cf.der, ca_der) {
        return step(
            &k.name,
            Action::Error,
            std::path::Path::new(&crt),
            format!("is not signed by CA {}: {m}", k.ca),
        );
    }
    if info.cn.first() != Some(&k.profile.cn) {
        return step(
            &k.name,
            Action::Error,
            std::path::Path::new(&crt),
            format!(
                "has CN {:?}, the spec wants {:?}",
                info.cn.first().cloned().unwrap_or_default(),
                k.profile.cn
            ),
        );
    }
    let mut s = step(
        &k.name,
        Action::Create,
        &k.path,
        format!("embedding the externally signed {crt}"),
    );
    s.keep_key = true;
    s
}
