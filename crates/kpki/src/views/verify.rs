//! `verify`: the audit of a whole tree, a report of the one assessment ([`crate::assess`]).
//!
//! The findings are exactly those `plan` acts on: every finding carries a stable `Code`, a
//! `Severity`, the spec entry, the file, a message, a fix and a remedy. Codes are listed in
//! `CODES` and documented in `docs/findings.md`.

use std::path::Path;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::assess::{Finding, Severity};
use crate::disk::Disk;
use crate::error::{Error, Result};
use crate::model::resolve::{Desired, Entry};

/// `apiVersion` of the JSON report (`v1alpha2` added `inputs`).
pub const API_VERSION: &str = "kpki/v1alpha2";
/// `kind` of the JSON report.
pub const KIND: &str = "VerifyReport";

/// What the caller wants (the assessment's options).
pub type Options = crate::assess::Options;

fn disp(p: &Path) -> String {
    p.display().to_string()
}

fn fmt_time(t: OffsetDateTime) -> String {
    crate::assess::fmt_time(t)
}

/// Counts per severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Summary {
    /// Spec entries checked.
    pub entries: usize,
    /// Findings with severity error.
    pub errors: usize,
    /// Findings with severity warning.
    pub warnings: usize,
    /// Findings with severity info.
    pub info: usize,
}

/// The whole audit (`kpki/v1alpha2` `VerifyReport`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Report {
    /// Always [`API_VERSION`].
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// Always [`KIND`].
    pub kind: String,
    /// The instant the tree was checked at (RFC 3339).
    pub time: String,
    /// The certificate directory.
    #[serde(rename = "certDir")]
    pub cert_dir: String,
    /// The kubeconfig directory.
    #[serde(rename = "kubeconfigDir")]
    pub kubeconfig_dir: String,
    /// Every input the tree was checked against, with where it came from.
    #[serde(default)]
    pub inputs: Vec<crate::inputs::table::InputValue>,
    /// Counts.
    pub summary: Summary,
    /// Every finding, in entry order.
    pub findings: Vec<Finding>,
}

impl Report {
    /// True when any finding is an error (`kpki verify` exits 1).
    pub fn has_errors(&self) -> bool {
        self.summary.errors > 0
    }

    /// Findings of one severity.
    pub fn with_severity(&self, s: Severity) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.severity == s)
    }

    /// Pretty JSON (two-space indent) with a final newline.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self)
            .map(|s| s + "\n")
            .map_err(|e| Error::crypto("encoding JSON", e))
    }
}

/// Checks that the directories the tree lives in can be listed, so an unreadable or mistyped
/// directory is a could-not-run error rather than a report full of missing files.
pub fn check_dirs(desired: &Desired) -> Result<()> {
    let mut dirs = vec![desired.inputs.cert_dir.clone()];
    if desired
        .entries
        .iter()
        .any(|e| matches!(e, Entry::Kubeconfig(_)))
    {
        dirs.push(desired.inputs.kubeconfig_dir.clone());
    }
    for d in dirs {
        std::fs::read_dir(&d).map_err(|e| Error::File {
            path: d.clone(),
            message: format!("cannot read directory: {e}"),
        })?;
    }
    Ok(())
}

/// Audits every entry of `desired` against `disk` at `now`. Never fails: every problem is a
/// finding, in entry order (CAs first, as the entries are ordered), after the findings about the
/// inputs.
pub fn verify(desired: &Desired, disk: &Disk, now: OffsetDateTime, opts: &Options) -> Report {
    let a = crate::assess::assess(desired, disk, now, opts);
    report(desired, &a, now)
}

/// The report of an assessment.
pub fn report(desired: &Desired, a: &crate::assess::Assessment, now: OffsetDateTime) -> Report {
    let findings: Vec<Finding> = a.findings().cloned().collect();
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    let summary = Summary {
        entries: desired.entries.len(),
        errors: count(Severity::Error),
        warnings: count(Severity::Warning),
        info: count(Severity::Info),
    };
    Report {
        api_version: API_VERSION.into(),
        kind: KIND.into(),
        time: fmt_time(now),
        cert_dir: disp(&desired.inputs.cert_dir),
        kubeconfig_dir: disp(&desired.inputs.kubeconfig_dir),
        inputs: desired.inputs.table(),
        summary,
        findings,
    }
}

/// The text report: one table per severity (file, entry, code, problem, fix), then a summary
/// line.
pub fn render_text(r: &Report) -> String {
    let mut out = String::new();
    for (sev, title) in [
        (Severity::Error, "ERRORS"),
        (Severity::Warning, "WARNINGS"),
        (Severity::Info, "INFO"),
    ] {
        let rows: Vec<&Finding> = r.with_severity(sev).collect();
        if rows.is_empty() {
            continue;
        }
        let mut t = format!(
            "{title} ({})\nFILE\tENTRY\tCODE\tPROBLEM\tFIX\n",
            rows.len()
        );
        for f in rows {
            // One row per finding: values from certificates and kubeconfigs are escaped (no
            // control character reaches the terminal) and bounded.
            let clean = |s: &str| crate::text::line(s, crate::text::MAX_LINE);
            t.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\n",
                clean(&f.path),
                clean(&f.entry),
                f.code,
                clean(&f.message),
                if f.fix.is_empty() {
                    "-".to_string()
                } else {
                    clean(&f.fix)
                }
            ));
        }
        out.push_str(&crate::views::expiration::tabwrite(&t, 0, 2));
        out.push('\n');
    }
    let s = &r.summary;
    let verdict = if s.errors > 0 {
        "FAILED"
    } else if s.warnings > 0 {
        "OK with warnings"
    } else {
        "OK"
    };
    out.push_str(&format!(
        "{verdict}: {} error(s), {} warning(s), {} info; {} entries checked at {}\n",
        s.errors, s.warnings, s.info, s.entries, r.time
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::disk::read::Observed;
    use crate::entropy::SystemEntropy;
    use crate::inputs::InputArgs;
    use crate::x509::issue::{issue, Issuance, Issuer};
    use crate::x509::keys::{KeyAlgorithm, PrivateKey};
    use crate::{Kpki, Run};
    use std::collections::BTreeSet;
    use time::macros::datetime;
    use time::Duration;

    const T0: OffsetDateTime = datetime!(2026-01-15 12:00 UTC);

    fn fresh_tree(dir: &Path) -> Kpki {
        let args = InputArgs {
            cert_dir: Some(dir.join("pki")),
            node_name: Some("cp-1".into()),
            advertise_address: Some("10.0.0.10".parse().expect("ip")),
            key_algorithm: Some(crate::KeyAlgorithm::EcdsaP256),
            ..Default::default()
        };
        let k = Kpki::new(None, &args).unwrap();
        let run = Run {
            now: T0,
            entropy: &SystemEntropy,
            jobs: 0,
        };
        k.init(&crate::plan::Options::default(), &run, crate::Mode::Apply)
            .unwrap();
        k
    }

    /// A certificate of `profile` for `key`, signed by a CA with `ca`'s subject but a key of
    /// its own (so not by the tree's CA).
    fn signed_by_foreign_ca(
        ca: &crate::x509::issue::Profile,
        profile: &crate::x509::issue::Profile,
        key: &PrivateKey,
        when: Issuance,
    ) -> Vec<u8> {
        let foreign_key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let foreign = issue(ca, &foreign_key, None, when).unwrap();
        issue(
            profile,
            key,
            Some(Issuer {
                cert_der: &foreign,
                key: &foreign_key,
            }),
            when,
        )
        .unwrap()
    }

    fn audit(k: &Kpki, now: OffsetDateTime) -> Report {
        let disk = crate::disk::observe(&k.desired);
        verify(&k.desired, &disk, now, &Options::default())
    }

    fn problems(r: &Report) -> BTreeSet<(String, String)> {
        r.findings
            .iter()
            .filter(|f| f.severity != Severity::Info)
            .map(|f| (f.code.to_string(), f.entry.clone()))
            .collect()
    }

    #[test]
    fn fresh_tree_is_clean_then_expiring() {
        let dir = tempfile::tempdir().unwrap();
        let k = fresh_tree(dir.path());
        let r = audit(&k, T0 + Duration::hours(1));
        assert_eq!(r.summary.errors + r.summary.warnings, 0, "{r:#?}");
        assert_eq!(r.summary.entries, k.desired.entries.len());
        // 11 months later every leaf and kubeconfig certificate is within 30 days of expiry.
        let r = audit(&k, T0 + Duration::days(340));
        let expiring: BTreeSet<String> = r
            .findings
            .iter()
            .filter(|f| f.code == crate::assess::Code::CertExpiring)
            .map(|f| f.entry.clone())
            .collect();
        let want: BTreeSet<String> = k
            .desired
            .entries
            .iter()
            .filter(|e| matches!(e, Entry::Leaf(_) | Entry::Kubeconfig(_)))
            .map(|e| e.name().to_string())
            .collect();
        assert_eq!(expiring, want);
        assert_eq!(r.summary.errors, 0);
    }

    #[test]
    fn expired_cert_from_a_foreign_ca_reports_both() {
        let dir = tempfile::tempdir().unwrap();
        let k = fresh_tree(dir.path());
        let Some(Entry::Leaf(api)) = k.desired.get("apiserver") else {
            panic!("no apiserver")
        };
        let Some(ca) = k.desired.ca("ca") else {
            panic!("no ca")
        };
        // A CA with the same subject but another key signs an already expired apiserver cert.
        let when = Issuance {
            not_before: T0 - Duration::days(30),
            not_after: T0 - Duration::days(1),
            serial: 42,
        };
        let key = crate::disk::read::read_key(&api.key_path);
        let Observed::Present(kf) = key else {
            panic!("key")
        };
        let der = signed_by_foreign_ca(&ca.profile, &api.profile, &kf.key, when);
        std::fs::write(&api.cert_path, crate::x509::issue::cert_pem(&der)).unwrap();
        let r = audit(&k, T0 + Duration::hours(1));
        let want: BTreeSet<(String, String)> = [
            ("cert-expired".to_string(), "apiserver".to_string()),
            ("chain-invalid".to_string(), "apiserver".to_string()),
        ]
        .into();
        assert_eq!(problems(&r), want, "{r:#?}");
        let text = render_text(&r);
        assert!(text.starts_with("ERRORS (2)\nFILE"), "{text}");
        assert!(text.contains("run `kpki certs renew apiserver`"), "{text}");
        assert!(
            text.trim_end()
                .ends_with("entries checked at 2026-01-15T13:00:00Z"),
            "{text}"
        );
        let back: Report = serde_json::from_str(&r.to_json().unwrap()).unwrap();
        assert_eq!(back, r);
    }

    /// Reading with `Keys::Skip` leaves every present private key unread (a missing one stays
    /// missing), and the judge then says nothing of keys, while the same tree read with keys
    /// has its mismatched and corrupt keys found.
    #[test]
    fn unread_keys_are_not_judged() {
        use crate::disk::{Keys, Seen};
        let dir = tempfile::tempdir().unwrap();
        let k = fresh_tree(dir.path());
        let Some(Entry::Leaf(api)) = k.desired.get("apiserver") else {
            panic!("no apiserver")
        };
        let Some(Entry::Leaf(fp)) = k.desired.get("front-proxy-client") else {
            panic!("no front-proxy-client")
        };
        let other = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        std::fs::write(&api.key_path, other.pem()).unwrap();
        std::fs::write(&fp.key_path, "garbage").unwrap();
        let Some(ca) = k.desired.ca("etcd-ca") else {
            panic!("no etcd-ca")
        };
        std::fs::remove_file(&ca.key_path).unwrap();
        let now = T0 + Duration::hours(1);
        let key_codes = |d: &crate::disk::Disk| -> BTreeSet<(String, String)> {
            let r = verify(&k.desired, d, now, &Options::default());
            r.findings
                .iter()
                .filter(|f| f.path.ends_with(".key") || f.code == crate::assess::Code::KeyMismatch)
                .map(|f| (f.code.to_string(), f.entry.clone()))
                .collect()
        };
        let loaded = crate::disk::observe(&k.desired);
        let found = key_codes(&loaded);
        assert!(
            found.contains(&("key-mismatch".into(), "apiserver".into())),
            "{found:?}"
        );
        assert!(
            found.iter().any(|(_, e)| e == "front-proxy-client"),
            "{found:?}"
        );
        assert!(found.iter().any(|(_, e)| e == "etcd-ca"), "{found:?}");

        let skipped = crate::disk::observe_with(&k.desired, Keys::Skip);
        for e in &k.desired.entries {
            match skipped.entries.get(e.name()) {
                Some(Seen::Cert { key, .. }) if e.name() == "etcd-ca" => {
                    assert!(matches!(key, Observed::Missing))
                }
                Some(Seen::Cert { key, .. }) | Some(Seen::KeyPair { key, .. }) => {
                    assert!(matches!(key, Observed::Unread), "{}", e.name())
                }
                Some(Seen::Kubeconfig(Observed::Present(kc))) => {
                    assert!(kc.key.is_none() && kc.key_unread, "{}", e.name())
                }
                other => panic!("{}: {other:?}", e.name()),
            }
        }
        // The absent CA key is still seen: that CA is external.
        let only_external: BTreeSet<(String, String)> =
            [("external-ca".to_string(), "etcd-ca".to_string())].into();
        assert_eq!(key_codes(&skipped), only_external);
    }

    /// A judge told to check dates only (check-expiration's) makes no chain finding, and the
    /// expiration tables it feeds are the same as the full judge's; the full judge still finds
    /// the certificate whose signature was damaged and the one a foreign CA signed.
    #[test]
    fn dates_only_judges_no_signatures() {
        use crate::views::expiration;
        let dir = tempfile::tempdir().unwrap();
        let k = fresh_tree(dir.path());
        let Some(Entry::Leaf(api)) = k.desired.get("apiserver") else {
            panic!("no apiserver")
        };
        let Some(Entry::Kubeconfig(admin)) = k.desired.get("admin.conf") else {
            panic!("no admin.conf")
        };
        // apiserver.crt: the last byte of its signature changed (the DER still parses).
        let Observed::Present(cf) = crate::disk::read::read_cert(&api.cert_path) else {
            panic!("apiserver.crt")
        };
        let mut der = cf.der.clone();
        *der.last_mut().unwrap() ^= 1;
        std::fs::write(&api.cert_path, crate::x509::issue::cert_pem(&der)).unwrap();
        // admin.conf: a client certificate for its own key, signed by a foreign CA.
        let Some(ca) = k.desired.ca("ca") else {
            panic!("no ca")
        };
        let when = Issuance {
            not_before: T0,
            not_after: T0 + Duration::days(365),
            serial: 7,
        };
        let text = std::fs::read_to_string(&admin.path).unwrap();
        let mut cfg = crate::kubeconfig::Kubeconfig::from_yaml(&text).unwrap();
        let cur = cfg.current().unwrap();
        let key = PrivateKey::from_pem(
            std::str::from_utf8(cur.client_key_pem.as_ref().unwrap()).unwrap(),
        )
        .unwrap();
        let client = signed_by_foreign_ca(&ca.profile, &admin.profile, &key, when);
        let ca_pem = String::from_utf8(cur.ca_pem.clone().unwrap()).unwrap();
        cfg.set_credentials(
            Some(&ca_pem),
            &crate::x509::issue::cert_pem(&client),
            key.pem(),
        )
        .unwrap();
        std::fs::write(&admin.path, cfg.to_yaml().unwrap()).unwrap();

        let now = T0 + Duration::hours(1);
        let disk = crate::disk::observe_with(&k.desired, crate::disk::Keys::Skip);
        let full = crate::assess::assess(&k.desired, &disk, now, &Default::default());
        let dates = crate::assess::assess(
            &k.desired,
            &disk,
            now,
            &crate::assess::Options::default().dates_only(),
        );
        let chain_codes = |a: &crate::assess::Assessment| -> BTreeSet<(String, String)> {
            a.entries
                .iter()
                .flat_map(|e| &e.findings)
                .filter(|f| {
                    matches!(
                        f.code,
                        crate::assess::Code::ChainInvalid | crate::assess::Code::TlsRejected
                    )
                })
                .map(|f| (f.code.to_string(), f.entry.clone()))
                .collect()
        };
        let found = chain_codes(&full);
        assert!(
            found.contains(&("chain-invalid".into(), "apiserver".into())),
            "{found:?}"
        );
        assert!(found.iter().any(|(_, e)| e == "admin.conf"), "{found:?}");
        assert_eq!(chain_codes(&dates), BTreeSet::new());
        let opts = expiration::Options::default();
        assert_eq!(
            expiration::expiration(&k.desired, &full, now, &opts).unwrap(),
            expiration::expiration(&k.desired, &dates, now, &opts).unwrap()
        );
    }

    #[test]
    fn kubeconfig_context_errors_are_classified() {
        use crate::kubeconfig::Kubeconfig;
        let mut k = Kubeconfig::from_yaml("apiVersion: v1\nkind: Config\n").expect("parse");
        let m = k.current().expect_err("no context");
        assert!(m.contains("current-context"), "{m}");
        k.current_context = "x".into();
        let m = k.current().expect_err("bad context");
        assert!(m.contains("current-context"), "{m}");
    }
}
