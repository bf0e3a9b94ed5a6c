//! The assessment during a CA rotation (`kpki ca rotate`, docs/rotation.md).
//!
//! The phase of each rotating CA (or key pair) is derived from the files alone: the rotation
//! folder's archived old and staged new CA, the live CA key, and the certificates of the live CA
//! file in order ([`derive`]). Every entry the CA signs or that trusts it is then judged against
//! the phase ([`review`]): which CA must have signed it (the old one until `issue`, the new one
//! from `issue` on) and what its trust point must hold (old; old+new; new+old; new). What does
//! not fit becomes a finding with a `rotation-*` code, replacing the generic chain or CA-data
//! finding it would otherwise cause, so `verify`, `plan`, `nodes` and the rotation commands see
//! one judgement.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::assess::{Code, EntryAssessment, Finding, Remedy};
use crate::disk::read::Observed;
use crate::disk::{Disk, Seen};
use crate::model::resolve::{Desired, Entry};
use crate::x509::inspect;

/// Where a rotation stands, as the files say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// `prepare` has not completed: the folder lacks the new or the archived old CA.
    Preparing,
    /// New CA staged, old one archived; nothing live has changed.
    #[serde(rename = "prepare")]
    Prepared,
    /// Every trust point holds the old and the new CA; the old one signs.
    Trust,
    /// The new CA signs; trust points hold the new and the old CA, the new one first.
    Issue,
    /// Trust points hold only the new CA; the folder is archived by `finish`.
    #[serde(rename = "finish")]
    Finished,
}

impl Phase {
    /// The phase's name in messages and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Preparing => "preparing",
            Phase::Prepared => "prepare",
            Phase::Trust => "trust",
            Phase::Issue => "issue",
            Phase::Finished => "finish",
        }
    }

    /// The `kpki ca rotate` command that completes this phase.
    pub fn command(self) -> &'static str {
        match self {
            Phase::Preparing | Phase::Prepared => "prepare",
            Phase::Trust => "trust",
            Phase::Issue => "issue",
            Phase::Finished => "finish",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A problem of the rotating entry itself (reported on its own entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Own {
    /// The code.
    pub code: Code,
    /// The file it is about.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub fix: String,
}

/// One CA (or key pair) being rotated.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// Spec entry name.
    pub entry: String,
    /// A key pair (`sa`), not a CA.
    pub keypair: bool,
    /// The phase; `None` when the files form no known state ([`Rotation::problems`] says why).
    pub phase: Option<Phase>,
    /// The old CA certificate (DER), or the old public key (SPKI).
    pub old: Option<Vec<u8>>,
    /// The new CA certificate (DER), or the new public key (SPKI).
    pub new: Option<Vec<u8>>,
    /// The live trust file's elements, in order.
    pub live: Vec<Vec<u8>>,
    /// Whether the live private key is the old (false) or the new (true) one, when it is either.
    pub live_key_new: Option<bool>,
    /// Why the phase is unknown.
    pub problems: Vec<String>,
    /// Findings on the rotating entry itself (interrupted steps, signer copy).
    pub own: Vec<Own>,
}

impl Rotation {
    /// What every trust point of the entry holds in this phase, in order (the signer first).
    pub fn expected(&self) -> Option<Vec<&[u8]>> {
        let (o, n) = (self.old.as_deref()?, self.new.as_deref()?);
        Some(match self.phase? {
            Phase::Preparing => return None,
            Phase::Prepared => vec![o],
            Phase::Trust => vec![o, n],
            Phase::Issue => vec![n, o],
            Phase::Finished => vec![n],
        })
    }

    /// The element whose key signs in this phase.
    pub fn signer(&self) -> Option<&[u8]> {
        match self.phase? {
            Phase::Prepared | Phase::Trust => self.old.as_deref(),
            Phase::Issue | Phase::Finished => self.new.as_deref(),
            Phase::Preparing => None,
        }
    }

    /// The element that does not sign in this phase.
    pub fn other(&self) -> Option<&[u8]> {
        match self.phase? {
            Phase::Prepared | Phase::Trust => self.new.as_deref(),
            Phase::Issue | Phase::Finished => self.old.as_deref(),
            Phase::Preparing => None,
        }
    }

    /// `old`, `new` or `another` for an element.
    pub fn which(&self, x: &[u8]) -> &'static str {
        if self.old.as_deref() == Some(x) {
            "old"
        } else if self.new.as_deref() == Some(x) {
            "new"
        } else {
            "another"
        }
    }

    /// A trust list in words: `[old, new]`.
    pub fn describe(&self, list: &[Vec<u8>]) -> String {
        let names: Vec<&str> = list.iter().map(|x| self.which(x)).collect();
        format!("[{}]", names.join(", "))
    }

    /// The phase in words, for the CA's own finding.
    pub fn summary(&self) -> String {
        let s = self.summary_ca();
        if self.keypair {
            s.replace("trust points hold", "the public key file holds")
                .replace("trust point holds", "public key file holds")
                .replace(" CA", " key")
        } else {
            s
        }
    }

    fn summary_ca(&self) -> String {
        match self.phase {
            None => "its files form no known state".into(),
            Some(Phase::Preparing) => {
                "prepare has not completed (the new or the archived old CA is missing)".into()
            }
            Some(Phase::Prepared) => {
                "new CA staged, old CA archived; nothing live has changed".into()
            }
            Some(Phase::Trust) => {
                "every trust point holds the old and the new CA; the old one signs".into()
            }
            Some(Phase::Issue) => {
                "the new CA signs; trust points hold the new and the old CA".into()
            }
            Some(Phase::Finished) => {
                "trust points hold only the new CA; finish archives the rotation folder".into()
            }
        }
    }

    /// The next command, in words.
    pub fn next(&self) -> &'static str {
        match self.phase {
            None => "restore the files named, or `kpki ca rotate abort` (before issue)",
            Some(Phase::Preparing) => "`kpki ca rotate prepare` (or `abort`)",
            Some(Phase::Prepared) => "`kpki ca rotate trust`",
            Some(Phase::Trust) => {
                "`kpki ca rotate issue`, once every component trusts the bundle (docs/rotation.md)"
            }
            Some(Phase::Issue) => {
                "`kpki ca rotate finish`, once every component uses the new certificates"
            }
            Some(Phase::Finished) => "`kpki ca rotate finish` (it archives the rotation folder)",
        }
    }
}

/// The SPKI of a trust element (a certificate's public key, or the element itself for a key pair).
fn spki_of(x: &[u8], keypair: bool) -> Option<Vec<u8>> {
    if keypair {
        Some(x.to_vec())
    } else {
        inspect::info(x).ok().map(|i| i.spki)
    }
}

/// A side of the folder: its element when its trust file and key are present and match.
fn side(
    name: &str,
    which: &str,
    s: &crate::disk::rotation::Side,
    keypair: bool,
    problems: &mut Vec<String>,
    incomplete: &mut bool,
) -> Option<Vec<u8>> {
    let what = if keypair {
        "public key"
    } else {
        "CA certificate"
    };
    match (&s.trust, &s.key) {
        (Observed::Present(t), Observed::Present(k)) => match spki_of(t, keypair) {
            Some(spki) if k.key.matches_spki(&spki) => Some(t.clone()),
            Some(_) => {
                problems.push(format!(
                    "{name}: the {which} {what} does not match the {which} key"
                ));
                None
            }
            None => {
                problems.push(format!("{name}: the {which} {what} does not parse"));
                None
            }
        },
        (Observed::Invalid(m), _) => {
            problems.push(format!("{name}: the {which} {what}: {m}"));
            None
        }
        (_, Observed::Invalid(m)) => {
            problems.push(format!("{name}: the {which} key: {m}"));
            None
        }
        (Observed::Present(_), Observed::Missing) => {
            problems.push(format!(
                "{name}: the {which} {what} is there without its key"
            ));
            None
        }
        _ => {
            *incomplete = true;
            None
        }
    }
}

/// Derives every rotation in progress from the observed files.
pub fn derive(desired: &Desired, disk: &Disk) -> BTreeMap<String, Rotation> {
    let r = &disk.rotation;
    let mut out = BTreeMap::new();
    for (name, staged) in &r.staged {
        let Some(entry) = desired.get(name) else {
            continue;
        };
        let keypair = staged.keypair;
        let mut problems = Vec::new();
        let mut incomplete = false;
        let old = side(
            name,
            "old",
            &staged.old,
            keypair,
            &mut problems,
            &mut incomplete,
        );
        let new = side(
            name,
            "new",
            &staged.new,
            keypair,
            &mut problems,
            &mut incomplete,
        );
        let live = match r.live.get(name) {
            Some(Observed::Present(v)) => v.clone(),
            Some(Observed::Invalid(m)) => {
                problems.push(format!("{}: {m}", trust_path(entry)));
                Vec::new()
            }
            _ => {
                problems.push(format!("{}: is missing", trust_path(entry)));
                Vec::new()
            }
        };
        let live_key = match disk.entries.get(name) {
            Some(Seen::Cert {
                key: Observed::Present(k),
                ..
            })
            | Some(Seen::KeyPair {
                key: Observed::Present(k),
                ..
            }) => Some(k.key.spki_der()),
            _ => None,
        };
        let is = |x: &Option<Vec<u8>>| -> bool {
            match (x.as_ref().and_then(|v| spki_of(v, keypair)), &live_key) {
                (Some(a), Some(b)) => a == *b,
                _ => false,
            }
        };
        let live_key_new = if is(&new) {
            Some(true)
        } else if is(&old) {
            Some(false)
        } else {
            None
        };
        let mut rot = Rotation {
            entry: name.clone(),
            keypair,
            phase: None,
            old,
            new,
            live,
            live_key_new,
            problems,
            own: Vec::new(),
        };
        if !rot.problems.is_empty() {
            out.insert(name.clone(), rot);
            continue;
        }
        if incomplete {
            rot.phase = Some(Phase::Preparing);
            out.insert(name.clone(), rot);
            continue;
        }
        let (Some(o), Some(n)) = (rot.old.clone(), rot.new.clone()) else {
            continue;
        };
        let live: Vec<&[u8]> = rot.live.iter().map(Vec::as_slice).collect();
        let tp = trust_path(entry);
        let kp = key_path(entry);
        rot.phase = match (rot.live_key_new, live.as_slice()) {
            (Some(false), [a]) if *a == o => Some(Phase::Prepared),
            (Some(false), [a, b]) if *a == o && *b == n => Some(Phase::Trust),
            (Some(true), [a, b]) if *a == n && *b == o => Some(Phase::Issue),
            (Some(true), [a]) if *a == n => Some(Phase::Finished),
            // `issue` was interrupted between its writes.
            (Some(false), [a, b]) if *a == n && *b == o => {
                rot.own.push(Own {
                    code: Code::RotationPhaseMixed,
                    path: kp.clone(),
                    message: format!("is still the old key while {tp} already trusts the new one first: `kpki ca rotate issue` was interrupted"),
                    fix: "run `kpki ca rotate issue` again".into(),
                });
                Some(Phase::Issue)
            }
            (Some(true), [a, b]) if *a == o && *b == n => {
                rot.own.push(Own {
                    code: Code::RotationPhaseMixed,
                    path: tp.clone(),
                    message: format!("still lists the old CA first while {kp} is the new key: `kpki ca rotate issue` was interrupted"),
                    fix: "run `kpki ca rotate issue` again".into(),
                });
                Some(Phase::Issue)
            }
            (None, _) => {
                rot.problems.push(format!(
                    "{kp}: is neither the old nor the new key of the rotation"
                ));
                None
            }
            _ => {
                rot.problems.push(format!(
                    "{tp}: holds {} with the {} key, which is no phase of a rotation",
                    rot.describe(&rot.live),
                    if rot.live_key_new == Some(true) {
                        "new"
                    } else {
                        "old"
                    }
                ));
                None
            }
        };
        // The controller-manager's single-certificate copy must be the CA that signs now.
        if let (Some(Observed::Present(copy)), Some(signer)) =
            (r.signer.get(name), rot.signer().map(<[u8]>::to_vec))
        {
            if copy.as_slice() != [signer.clone()] {
                rot.own.push(Own {
                    code: Code::RotationPhaseMixed,
                    path: r.layout.signer(name).display().to_string(),
                    message: format!(
                        "holds {} while the {} CA signs (kube-controller-manager's --cluster-signing-cert-file must match --cluster-signing-key-file)",
                        rot.describe(copy),
                        rot.which(&signer)
                    ),
                    fix: format!("run `kpki ca rotate {}` again", rot.phase.map(Phase::command).unwrap_or("prepare")),
                });
            }
        }
        out.insert(name.clone(), rot);
    }
    out
}

fn trust_path(e: &Entry) -> String {
    match e {
        Entry::Ca(c) => c.cert_path.display().to_string(),
        Entry::KeyPair(k) => k.pub_path.display().to_string(),
        other => other.main_path().display().to_string(),
    }
}

fn key_path(e: &Entry) -> String {
    match e {
        Entry::Ca(c) => c.key_path.display().to_string(),
        Entry::KeyPair(k) => k.key_path.display().to_string(),
        other => other.main_path().display().to_string(),
    }
}

fn finding(
    entry: &str,
    code: Code,
    path: String,
    message: String,
    fix: String,
    remedy: Remedy,
) -> Finding {
    Finding {
        code,
        severity: code.severity(),
        entry: entry.to_string(),
        path,
        message,
        fix,
        remedy,
    }
}

/// Adds the rotation's findings to one entry's assessment (and drops the generic chain or
/// CA-data findings a rotation explains).
pub fn review(
    rotations: &BTreeMap<String, Rotation>,
    e: &Entry,
    seen: &Seen,
    out: &mut EntryAssessment,
) {
    if rotations.is_empty() {
        return;
    }
    let name = e.name();
    // The rotating CA or key pair itself.
    if let Some(r) = rotations.get(name) {
        let dir_path = trust_path(e);
        match r.phase {
            None => out.findings.push(finding(
                name,
                Code::RotationStateInvalid,
                dir_path,
                format!("is being rotated, but {}", r.problems.join("; ")),
                r.next().to_string(),
                Remedy::Manual,
            )),
            Some(p) => {
                let code = if p == Phase::Preparing {
                    Code::RotationIncomplete
                } else {
                    Code::RotationInProgress
                };
                out.findings.push(finding(
                    name,
                    code,
                    dir_path,
                    format!(
                        "is being rotated: phase {p} ({}); next: {}",
                        r.summary(),
                        r.next()
                    ),
                    String::new(),
                    Remedy::None,
                ));
            }
        }
        for o in &r.own {
            out.findings.push(finding(
                name,
                o.code,
                o.path.clone(),
                o.message.clone(),
                o.fix.clone(),
                Remedy::Manual,
            ));
        }
        return;
    }
    let (ca, cert, path) = match (e, seen) {
        (Entry::Leaf(c), Seen::Cert { cert, .. }) => (
            c.ca.as_deref(),
            cert.present().map(|f| f.der.clone()),
            c.cert_path.display().to_string(),
        ),
        (Entry::Kubeconfig(k), Seen::Kubeconfig(Observed::Present(kc))) => (
            Some(k.ca.as_str()),
            kc.cert_der.clone(),
            k.path.display().to_string(),
        ),
        _ => return,
    };
    let Some(r) = ca.and_then(|c| rotations.get(c)) else {
        return;
    };
    let Some(phase) = r.phase.filter(|p| *p != Phase::Preparing) else {
        return;
    };
    let (Some(signer), Some(other)) = (r.signer(), r.other()) else {
        return;
    };
    let node = name.contains('/');
    // Which CA signed it.
    if let Some(der) = &cert {
        if crate::x509::chain::signed_by(der, signer).is_err()
            && crate::x509::chain::signed_by(der, other).is_ok()
        {
            out.findings.retain(|f| f.code != Code::ChainInvalid);
            let by = r.which(other);
            let want = r.which(signer);
            let (remedy, fix) = if out.credentials_elsewhere {
                (
                    Remedy::Manual,
                    "the kubelet renews its own client certificate: make it request one signed by the new CA (docs/rotation.md, kubelets)".to_string(),
                )
            } else if node {
                (Remedy::Reissue, "run `kpki nodes` again: it re-issues node credentials under the CA that signs now".to_string())
            } else if phase == Phase::Issue {
                (
                    Remedy::Reissue,
                    "run `kpki ca rotate issue`: it re-issues everything the old CA signed"
                        .to_string(),
                )
            } else {
                (Remedy::Reissue, format!("run `kpki certs renew {name}`"))
            };
            let why = match phase {
                Phase::Finished => format!(
                    "the {by} CA of {} is no longer trusted after finish",
                    r.entry
                ),
                _ => format!("in phase {phase} the {want} CA of {} signs", r.entry),
            };
            out.findings.insert(
                0,
                finding(
                    name,
                    Code::RotationSignerUnexpected,
                    path.clone(),
                    format!("is signed by the {by} CA of {}; {why}", r.entry),
                    fix,
                    remedy,
                ),
            );
        }
    }
    // What a kubeconfig trusts.
    let (Entry::Kubeconfig(k), Seen::Kubeconfig(Observed::Present(kc))) = (e, seen) else {
        return;
    };
    // (A CA referenced by path is read from that file: one that names the CA file itself holds
    // what the phase wants by definition.)
    let Some(first) = &kc.ca_der else { return };
    let have: Vec<Vec<u8>> = std::iter::once(first.clone())
        .chain(kc.ca_chain.iter().cloned())
        .collect();
    let Some(want) = r.expected() else { return };
    if have.iter().map(Vec::as_slice).eq(want.iter().copied()) {
        return;
    }
    if have.iter().any(|x| r.which(x) == "another") {
        // Not the rotation's doing: the generic CA-data finding stands.
        return;
    }
    out.findings
        .retain(|f| f.code != Code::KubeconfigCaMismatch);
    let missing: Vec<&str> = want
        .iter()
        .filter(|w| !have.iter().any(|h| h.as_slice() == **w))
        .map(|w| r.which(w))
        .collect();
    let wanted = format!(
        "[{}]",
        want.iter()
            .map(|w| r.which(w))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let fix = if node {
        "run `kpki nodes` again: node kubeconfigs get the CA data of the phase".to_string()
    } else {
        format!("run `kpki ca rotate {}`", phase.command())
    };
    let fix = if phase == Phase::Prepared && !node {
        "run `kpki ca rotate trust` to complete it, or `kpki ca rotate abort`".to_string()
    } else {
        fix
    };
    let (code, message) = if missing.is_empty() {
        (
            Code::RotationPhaseMixed,
            format!(
                "its certificate-authority-data holds {} but CA {} is in phase {phase}, which trusts {wanted}",
                r.describe(&have),
                r.entry
            ),
        )
    } else {
        (
            Code::RotationTrustMissing,
            format!(
                "its certificate-authority-data holds {}: it lacks the {} CA of {} (phase {phase} trusts {wanted})",
                r.describe(&have),
                missing.join(" and "),
                r.entry
            ),
        )
    };
    out.findings.insert(
        0,
        finding(
            name,
            code,
            k.path.display().to_string(),
            message,
            fix,
            Remedy::Reissue,
        ),
    );
}
