//! The one judge: is what is on disk right for an entry?
//!
//! [`Assessor::entry`] is a pure function of (the expected entry, its observed files, the state of
//! its CA, the clock) that returns findings with stable codes ([`Code`]), severities and remedies.
//! `plan` maps the findings of each entry to an action, `verify` reports them, `nodes` and
//! `check-expiration` read them: one assessment, so no two commands can disagree about a file.
//!
//! Chains and usages are checked with rustls-webpki (the entry's CA as the only trust anchor, at
//! the injected time, once per spec EKU), so "no errors" means a TLS stack accepts every
//! certificate; fields are read with x509-parser ([`crate::x509::inspect::info`]).

pub mod codes;
pub mod rotation;
pub mod wiring;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use time::{Duration, OffsetDateTime};

pub use codes::{Code, Finding, Remedy, Severity};

use crate::disk::read::{CertFile, KeyFile, Observed};
use crate::disk::{Disk, KubeconfigFile, Seen};
use crate::model::resolve::{CertEntry, Desired, Entry, KeyPairEntry, KubeconfigEntry};
use crate::x509::chain::{self, Usage, WebpkiError};
use crate::x509::inspect::{self, CertInfo};
use crate::x509::issue::{effective_key_usages, Profile};
use crate::x509::keys::{algorithm_of_spki, KeyAlgorithm};

/// Default warning horizon for expiry: kubeadm's 30-day renewal horizon (720h).
pub const DEFAULT_WARN_WITHIN: Duration = Duration::hours(720);

/// What the caller wants judged.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// Certificates expiring within this are warnings (`--warn-within`).
    pub warn_within: Duration,
    /// Verify each certificate's signature and chain (on by default). Off only for views that
    /// report dates, as kubeadm's `check-expiration` does: no finding about a chain is made,
    /// and nothing else changes.
    pub verify_signatures: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            warn_within: DEFAULT_WARN_WITHIN,
            verify_signatures: true,
        }
    }
}

impl Options {
    /// Sets the expiry warning horizon.
    pub fn warn_within(mut self, d: Duration) -> Options {
        self.warn_within = d;
        self
    }

    /// Leaves signatures and chains unchecked (see [`Options::verify_signatures`]).
    pub fn dates_only(mut self) -> Options {
        self.verify_signatures = false;
        self
    }
}

/// What a CA offers the entries it signs, once assessed.
#[derive(Debug, Clone)]
pub enum CaView {
    /// Its certificate is readable and can anchor a chain (findings may still be reported on it).
    Usable {
        /// The certificate.
        der: Vec<u8>,
        /// Its facts.
        info: Box<CertInfo>,
        /// Its key is absent: external CA mode (certificates can be checked, not issued).
        external: bool,
        /// It has error findings of its own (expired, not a CA, key mismatch, ...): it must not
        /// sign anything.
        unsound: bool,
    },
    /// No certificate on disk.
    Absent,
    /// Present but unusable (unreadable, not a certificate webpki accepts as an anchor).
    Broken,
}

impl CaView {
    /// The certificate, when usable.
    pub fn der(&self) -> Option<&[u8]> {
        match self {
            CaView::Usable { der, .. } => Some(der),
            _ => None,
        }
    }

    /// True in external CA mode.
    pub fn external(&self) -> bool {
        matches!(self, CaView::Usable { external: true, .. })
    }
}

/// The shape of what is on disk for an entry, beyond its findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Nothing there.
    Missing,
    /// A key without its certificate (a crash, or `generate-csr`): issue a certificate for it.
    KeyOnly,
    /// A kubeconfig holding only its client key (`generate-csr`) and a valid externally signed
    /// `<file>.crt` beside it: embed it.
    SignedElsewhere,
    /// There; the findings say whether it is right.
    Present,
}

/// A kubeconfig's client certificate and key referenced by path (possibly one file holding
/// both), where client-go reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFiles {
    /// `client-certificate`.
    pub cert: std::path::PathBuf,
    /// `client-key`.
    pub key: std::path::PathBuf,
}

/// The judgement on one entry.
#[derive(Debug, Clone)]
pub struct EntryAssessment {
    /// Spec entry name.
    pub entry: String,
    /// What is on disk.
    pub state: State,
    /// Findings, errors first in the order checked.
    pub findings: Vec<Finding>,
    /// NotAfter of the entry's certificate, when it has one that parses.
    pub not_after: Option<OffsetDateTime>,
    /// For a CA: what it offers its dependants.
    pub ca: Option<CaView>,
    /// A kubeconfig whose client certificate is a file rather than embedded data (the kubelet's
    /// rotated `kubelet-client-current.pem`, or files an operator keeps beside the kubeconfig).
    pub credentials_elsewhere: bool,
    /// For such a kubeconfig: its client certificate and key files, when both are files.
    pub client_files: Option<ClientFiles>,
    /// Its `generate-csr` request file exists.
    pub request_exists: bool,
}

impl EntryAssessment {
    /// Error findings.
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }

    /// The first error that only the operator can fix, if any.
    pub fn manual_error(&self) -> Option<&Finding> {
        self.errors().find(|f| f.remedy == Remedy::Manual)
    }

    /// Errors that re-issuing the entry from the spec cures.
    pub fn reissue_errors(&self) -> impl Iterator<Item = &Finding> {
        self.errors().filter(|f| f.remedy == Remedy::Reissue)
    }

    /// Findings kpki repairs in place (file modes).
    pub fn repairs(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.remedy == Remedy::Repair)
    }
}

/// The judgement on a whole tree.
#[derive(Debug, Clone)]
pub struct Assessment {
    /// One per entry, in entry order.
    pub entries: Vec<EntryAssessment>,
    /// Findings about the inputs themselves (an input that contradicts the tree).
    pub inputs: Vec<Finding>,
    /// Findings about the node's wiring (manifests, kubelet config: [`wiring`]); reported, never
    /// acted on by `plan`.
    pub node: Vec<Finding>,
}

impl Assessment {
    /// The assessment of one entry.
    pub fn get(&self, entry: &str) -> Option<&EntryAssessment> {
        self.entries.iter().find(|e| e.entry == entry)
    }

    /// Every finding: the inputs' first, then each entry's, then the node's wiring.
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.inputs
            .iter()
            .chain(self.entries.iter().flat_map(|e| e.findings.iter()))
            .chain(self.node.iter())
    }
}

/// Assesses every entry of `desired` against `disk` at `now`: CAs first (entries are in signing
/// order), so each entry is judged against its CA as found.
pub fn assess(desired: &Desired, disk: &Disk, now: OffsetDateTime, opts: &Options) -> Assessment {
    let notes = desired.inputs.findings();
    let mut a = Assessor::new(now, opts.clone())
        .with_input_conflicts(&notes)
        .with_rotations(rotation::derive(desired, disk));
    let list = &desired.entries;
    let mut slots: Vec<Option<EntryAssessment>> = list.iter().map(|_| None).collect();
    // The CAs first, in order: the entries they sign are judged against what they left.
    for (slot, e) in slots.iter_mut().zip(list) {
        if let Entry::Ca(_) = e {
            *slot = Some(match disk.entries.get(e.name()) {
                Some(seen) => a.entry(e, seen, disk.signed.get(e.name())),
                None => a.unobserved(e),
            });
        }
    }
    // The rest side by side on up to two threads: most of a tree's judging is verifying
    // signatures, and these entries only read the CAs' views.
    let a = &a;
    let judge = |e: &Entry| match disk.entries.get(e.name()) {
        Some(seen) => a.signed_entry(e, seen, disk.signed.get(e.name())),
        None => unobserved(e),
    };
    let rest: Vec<(usize, &Entry)> = list
        .iter()
        .enumerate()
        .filter(|(i, _)| slots[*i].is_none())
        .collect();
    // Nothing on disk (a new tree): nothing to verify, no second thread to start.
    let to_judge = rest
        .iter()
        .filter(|(_, e)| disk.entries.get(e.name()).is_some_and(|s| !s.is_missing()))
        .count();
    let threads = crate::limits::cores().clamp(1, 2);
    let judged: Vec<(usize, EntryAssessment)> = if threads == 1 || to_judge < 4 {
        rest.iter().map(|(i, e)| (*i, judge(e))).collect()
    } else {
        let (first, second) = rest.split_at(rest.len() / 2);
        std::thread::scope(|scope| {
            let other = scope.spawn(|| {
                second
                    .iter()
                    .map(|(i, e)| (*i, judge(e)))
                    .collect::<Vec<_>>()
            });
            let mut out: Vec<_> = first.iter().map(|(i, e)| (*i, judge(e))).collect();
            // A panic in a judge is a bug: surface it as the same panic here.
            out.extend(
                other
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p)),
            );
            out
        })
    };
    for (i, ea) in judged {
        slots[i] = Some(ea);
    }
    let entries = slots
        .into_iter()
        .flatten()
        .map(|mut ea| {
            ea.request_exists = disk.csr.get(&ea.entry).copied().unwrap_or(false);
            ea
        })
        .collect();
    Assessment {
        entries,
        inputs: notes,
        node: wiring::assess(desired, disk),
    }
}

/// An entry the disk was not observed for (a caller's mistake, never a panic).
pub(crate) fn unobserved(e: &Entry) -> EntryAssessment {
    let mut s = Sink {
        entry: e.name(),
        kind: Kind::Leaf,
        findings: vec![],
    };
    s.push_with(
        Code::FileUnreadable,
        e.main_path(),
        "internal: the disk was not observed for this entry",
        "",
        Remedy::Manual,
    );
    EntryAssessment {
        entry: e.name().to_string(),
        state: State::Present,
        findings: s.findings,
        not_after: None,
        ca: None,
        credentials_elsewhere: false,
        client_files: None,
        request_exists: false,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Ca,
    Leaf,
    KeyPair,
    Kubeconfig,
}

/// What a certificate should look like.
struct Expect<'a> {
    entry: &'a str,
    path: &'a Path,
    profile: &'a Profile,
    algorithm: KeyAlgorithm,
    kind: Kind,
    /// Signing CA name (None: self-signed root).
    ca: Option<&'a str>,
    san_origins: &'a [(String, String)],
    /// The input the CN comes from.
    cn_origin: &'a str,
}

impl<'a> Expect<'a> {
    fn cert(c: &'a CertEntry, kind: Kind) -> Expect<'a> {
        Expect {
            entry: &c.name,
            path: &c.cert_path,
            profile: &c.profile,
            algorithm: c.algorithm,
            kind,
            ca: c.ca.as_deref(),
            san_origins: &c.san_origins,
            cn_origin: &c.cn_origin,
        }
    }

    fn kubeconfig(k: &'a KubeconfigEntry) -> Expect<'a> {
        Expect {
            entry: &k.name,
            path: &k.path,
            profile: &k.profile,
            algorithm: k.algorithm,
            kind: Kind::Kubeconfig,
            ca: Some(&k.ca),
            san_origins: &[],
            cn_origin: &k.cn_origin,
        }
    }
}

/// Judges entries one at a time, remembering what each CA offers its dependants. Stateful only
/// in that map, so a bulk run (`kpki nodes`) assesses the CAs once and then each node's entries.
#[derive(Debug, Clone)]
pub struct Assessor {
    now: OffsetDateTime,
    opts: Options,
    cas: HashMap<String, CaView>,
    /// Public keys of the CAs seen so far: a leaf must not reuse one.
    ca_keys: Vec<(String, Vec<u8>)>,
    /// Every certificate of each CA's file (a bundle during a rotation), by CA name.
    ca_bundles: HashMap<String, Vec<Vec<u8>>>,
    /// Inputs that contradict the tree (flag name -> the fix to give instead of a re-issue).
    conflicts: HashMap<String, String>,
    /// CA rotations in progress: what each entry is judged against during a rotation.
    rotations: std::collections::BTreeMap<String, rotation::Rotation>,
}

/// Collects one entry's findings.
struct Sink<'a> {
    entry: &'a str,
    kind: Kind,
    findings: Vec<Finding>,
}

impl Sink<'_> {
    fn push(
        &mut self,
        code: Code,
        path: &Path,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        let remedy = default_remedy(self.kind, code);
        self.push_with(code, path, message, fix, remedy);
    }

    fn push_with(
        &mut self,
        code: Code,
        path: &Path,
        message: impl Into<String>,
        fix: impl Into<String>,
        remedy: Remedy,
    ) {
        let message = message.into();
        // A link that points nowhere is fixed at the link, whatever the file would need.
        let fix = if message.contains("dangling symbolic link") {
            "restore what the link points to, or replace the link with the real file or directory"
                .to_string()
        } else {
            fix.into()
        };
        self.findings.push(Finding {
            code,
            severity: code.severity(),
            entry: self.entry.to_string(),
            path: disp(path),
            message,
            fix,
            remedy,
        });
    }

    fn has(&self, code: Code) -> bool {
        self.findings.iter().any(|f| f.code == code)
    }
}

/// What cures a finding, by kind of entry. A CA is never re-issued by kpki (only rotation
/// replaces one), so its errors need the operator; a leaf's drift is cured by issuing it again.
fn default_remedy(kind: Kind, code: Code) -> Remedy {
    use Code::*;
    match code {
        // A key others could read is no longer secret: a leaf gets a new one; a CA or the
        // service-account key cannot be replaced here, so its mode is tightened.
        KeyModeInsecure if matches!(kind, Kind::Leaf | Kind::Kubeconfig) => Remedy::Reissue,
        KeyModeInsecure | CertModeWritable => Remedy::Repair,
        FileUnreadable
        | PemInvalid
        | KubeconfigInvalid
        | KubeconfigContextUnresolved
        | KubeconfigRefUnreadable
        | InputConflict => Remedy::Manual,
        FileMissing => Remedy::Reissue,
        CertOutlivesCa | CaKeyAlgorithmDiffers | InputDisagreement | SubjectCnLong => Remedy::None,
        _ if code.severity() == Severity::Info => Remedy::None,
        _ if matches!(kind, Kind::Ca | Kind::KeyPair) => Remedy::Manual,
        _ => Remedy::Reissue,
    }
}

fn disp(p: &Path) -> String {
    p.display().to_string()
}

fn classify_read_error(m: &str) -> Code {
    if m.contains("which kpki does not support") {
        Code::KeyAlgorithmUnsupported
    } else if m.contains("os error")
        || m.contains("is a directory")
        || m.contains("not a regular file")
        || m.contains("symbolic link")
        || m.contains("is larger than")
    {
        Code::FileUnreadable
    } else {
        Code::PemInvalid
    }
}

fn set(v: &[String]) -> BTreeSet<&str> {
    v.iter().map(String::as_str).collect()
}

fn list(v: &BTreeSet<&str>) -> String {
    v.iter().copied().collect::<Vec<_>>().join(", ")
}

/// RFC 5280's upper bound for a common name (ub-common-name).
pub const MAX_CN: usize = 64;

/// The warning for a CN longer than [`MAX_CN`].
pub fn cn_long_message(cn: &str) -> String {
    format!(
        "has a {}-character CN, longer than RFC 5280's 64 (Go, OpenSSL and rustls-webpki accept it; strict tools may not)",
        cn.chars().count()
    )
}

/// RFC 3339 for messages.
pub fn fmt_time(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

impl Assessor {
    /// A judge at `now` that has seen no CA yet.
    pub fn new(now: OffsetDateTime, opts: Options) -> Assessor {
        Assessor {
            now,
            opts,
            cas: HashMap::new(),
            ca_keys: Vec::new(),
            ca_bundles: HashMap::new(),
            conflicts: HashMap::new(),
            rotations: Default::default(),
        }
    }

    /// Tells the judge which CAs are being rotated and in which phase ([`rotation::derive`]).
    pub fn with_rotations(
        mut self,
        rotations: std::collections::BTreeMap<String, rotation::Rotation>,
    ) -> Assessor {
        self.rotations = rotations;
        self
    }

    /// The rotations in progress this judge knows.
    pub fn rotations(&self) -> &std::collections::BTreeMap<String, rotation::Rotation> {
        &self.rotations
    }

    /// Tells the judge which inputs contradict the tree, so findings they cause say so instead
    /// of suggesting a re-issue.
    pub fn with_input_conflicts(mut self, findings: &[Finding]) -> Assessor {
        for f in findings.iter().filter(|f| f.code == Code::InputConflict) {
            self.conflicts
                .insert(f.entry.clone(), format!("{} ({})", f.fix, f.message));
        }
        self
    }

    /// The fix for a finding caused by the value of `origin` (an input's flag name, possibly
    /// with a config field after " / "): the conflict's fix when that input contradicts the tree.
    fn fix_for_origin(&self, origin: &str, default: &str) -> String {
        self.conflicts
            .iter()
            .find(|(input, _)| origin.split(" / ").any(|o| o == input.as_str()))
            .map(|(_, fix)| fix.clone())
            .unwrap_or_else(|| default.to_string())
    }

    fn ca_external(&self, ca: Option<&str>) -> bool {
        ca.and_then(|n| self.cas.get(n))
            .is_some_and(CaView::external)
    }

    /// How to get a fresh certificate for an entry.
    fn reissue_fix(&self, x: &Expect<'_>) -> String {
        match x.kind {
            Kind::Ca => format!(
                "kpki never replaces a CA: fix or restore {} from a backup, or rotate the CA (every certificate it signed must then be re-issued)",
                disp(x.path)
            ),
            _ if self.ca_external(x.ca) => format!(
                "have the external CA {} issue it again (`kpki certs generate-csr` makes the request)",
                x.ca.unwrap_or("")
            ),
            _ => format!("run `kpki certs renew {}`", x.entry),
        }
    }

    /// An entry the disk was not observed for (a caller's mistake, never a panic).
    pub fn unobserved(&mut self, e: &Entry) -> EntryAssessment {
        if let Entry::Ca(c) = e {
            self.cas.insert(c.name.clone(), CaView::Broken);
        }
        unobserved(e)
    }

    /// Judges one entry against what was observed for it (`signed`: a kubeconfig's externally
    /// signed `<file>.crt`, if looked for). A CA is remembered for the entries it signs, so
    /// CAs are judged before them.
    pub fn entry(
        &mut self,
        e: &Entry,
        seen: &Seen,
        signed: Option<&Observed<CertFile>>,
    ) -> EntryAssessment {
        match (e, seen) {
            (Entry::Ca(c), Seen::Cert { cert, key }) => {
                let out = self.ca_entry(c, cert, key);
                self.finish(e, seen, out)
            }
            (Entry::Ca(_), _) => self.unobserved(e),
            _ => self.signed_entry(e, seen, signed),
        }
    }

    /// [`Assessor::entry`] for an entry that is not a CA: it only reads what the CAs judged
    /// before it left, so such entries can be judged side by side.
    pub fn signed_entry(
        &self,
        e: &Entry,
        seen: &Seen,
        signed: Option<&Observed<CertFile>>,
    ) -> EntryAssessment {
        let out = match (e, seen) {
            (Entry::Leaf(c), Seen::Cert { cert, key }) => self.leaf(c, cert, key),
            (Entry::KeyPair(k), Seen::KeyPair { key, public }) => self.keypair(k, key, public),
            (Entry::Kubeconfig(k), Seen::Kubeconfig(obs)) => self.kubeconfig(k, obs, signed),
            (e, _) => return unobserved(e),
        };
        self.finish(e, seen, out)
    }

    /// What every judged entry gets last: the rotation's view, and the remedy when its CA has
    /// no key here.
    fn finish(&self, e: &Entry, seen: &Seen, mut out: EntryAssessment) -> EntryAssessment {
        // A CA without its key cannot issue: what re-issuing would cure needs the external CA.
        let ca = match e {
            Entry::Leaf(c) => c.ca.as_deref(),
            Entry::Kubeconfig(k) => Some(k.ca.as_str()),
            _ => None,
        };
        rotation::review(&self.rotations, e, seen, &mut out);
        if self.ca_external(ca) && out.state != State::SignedElsewhere {
            for f in &mut out.findings {
                if f.remedy == Remedy::Reissue {
                    f.remedy = Remedy::Manual;
                }
            }
        }
        out
    }

    fn check_key_mode(&self, s: &mut Sink<'_>, path: &Path, mode: u32) {
        if mode & 0o077 != 0 {
            let fix = match s.kind {
                Kind::Leaf | Kind::Kubeconfig => format!(
                    "the key may have been read: `kpki certs renew {}` gives a new one; or chmod 600 {}",
                    s.entry,
                    disp(path)
                ),
                _ => format!("chmod 600 {}", disp(path)),
            };
            s.push(
                Code::KeyModeInsecure,
                path,
                format!("holds a private key but has mode {mode:04o} (group/others can access it)"),
                fix,
            );
        }
    }

    fn check_cert_mode(&self, s: &mut Sink<'_>, path: &Path, mode: u32) {
        if mode & 0o022 != 0 {
            s.push(
                Code::CertModeWritable,
                path,
                format!("has mode {mode:04o}: group/others can replace the certificate"),
                format!("chmod 644 {}", disp(path)),
            );
        }
    }

    /// Every field check on one certificate; returns its facts when it parses.
    fn check_cert(&self, s: &mut Sink<'_>, x: &Expect<'_>, der: &[u8]) -> Option<CertInfo> {
        let fix = self.reissue_fix(x);
        let info = match inspect::info(der) {
            Ok(i) => i,
            Err(m) => {
                s.push(Code::PemInvalid, x.path, m, fix);
                return None;
            }
        };
        let is_ca = x.kind == Kind::Ca;

        // Key algorithm and size.
        let actual_alg = match algorithm_of_spki(&info.spki) {
            Ok(a) => {
                if a != x.algorithm {
                    if is_ca {
                        s.push(
                            Code::CaKeyAlgorithmDiffers,
                            x.path,
                            format!("has a {a} key; the inputs ask for {} (new certificates get {}, so the tree mixes algorithms)", x.algorithm, x.algorithm),
                            "rotate the CA to change its algorithm, or pass the CA's algorithm",
                        );
                    } else {
                        s.push(
                            Code::KeyAlgorithmMismatch,
                            x.path,
                            format!("has a {a} key; the spec and inputs ask for {}", x.algorithm),
                            fix.clone(),
                        );
                    }
                }
                Some(a)
            }
            Err(m) => {
                s.push(Code::KeyAlgorithmUnsupported, x.path, m, fix.clone());
                None
            }
        };
        // An unsupported key's family comes from the certificate, never from the spec.
        let ec = match actual_alg {
            Some(a) => a.is_ec(),
            None => crate::x509::keys::spki_is_ec(&info.spki),
        };

        // basicConstraints.
        if is_ca && !info.is_ca {
            s.push(
                Code::CaNotCa,
                x.path,
                "is not a CA certificate (basicConstraints CA:TRUE missing)",
                fix.clone(),
            );
        }
        if !is_ca && info.is_ca {
            s.push(
                Code::LeafIsCa,
                x.path,
                "is a leaf but asserts basicConstraints CA:TRUE",
                fix.clone(),
            );
        }

        self.check_key_usages(s, x, &info, ec, &fix);
        self.check_subject(s, x, &info, &fix);

        // SANs.
        let missing = inspect::missing_sans(&info, &x.profile.dns, &x.profile.ips);
        if !missing.is_empty() {
            let origins: Vec<&str> = missing
                .iter()
                .filter_map(|m| x.san_origins.iter().find(|(san, _)| san == m))
                .map(|(_, o)| o.as_str())
                .collect();
            let described: Vec<String> = missing
                .iter()
                .map(|m| match x.san_origins.iter().find(|(san, _)| san == m) {
                    Some((_, origin)) if origin != "the spec" => format!("{m} (from {origin})"),
                    _ => m.clone(),
                })
                .collect();
            let fix = origins
                .iter()
                .map(|o| self.fix_for_origin(o, &fix))
                .find(|f| *f != fix)
                .unwrap_or(fix.clone());
            let (code, f) = if is_ca {
                (Code::CaSanMissing, String::new())
            } else {
                (Code::SanMissing, fix)
            };
            s.push(
                code,
                x.path,
                format!(
                    "does not cover the expected SAN(s) {}",
                    described.join(", ")
                ),
                f,
            );
        }
        let extra = inspect::extra_sans(&info, &x.profile.dns, &x.profile.ips);
        if !extra.is_empty() {
            s.push(
                Code::SanExtra,
                x.path,
                format!("has SAN(s) the spec does not ask for: {}", extra.join(", ")),
                "",
            );
        }

        self.check_validity(s, x, &info, &fix);
        self.check_serial_and_ids(s, x, &info, &fix);

        // Key reuse: a leaf holding a CA's key could sign certificates.
        if !is_ca {
            if let Some((ca, _)) = self.ca_keys.iter().find(|(_, k)| *k == info.spki) {
                s.push(
                    Code::KeyReused,
                    x.path,
                    format!("uses the key of CA {ca}"),
                    fix.clone(),
                );
            }
        }

        // Chain.
        match x.kind {
            Kind::Ca => self.check_ca_chain(s, x, der, &info, actual_alg.is_some()),
            _ => self.check_leaf_chain(s, x, der, &info),
        }
        Some(info)
    }

    fn check_key_usages(
        &self,
        s: &mut Sink<'_>,
        x: &Expect<'_>,
        info: &CertInfo,
        ec: bool,
        fix: &str,
    ) {
        let is_ca = x.kind == Kind::Ca;
        let want_ku: Vec<String> = effective_key_usages(&x.profile.key_usages, ec);
        let want = set(&want_ku);
        let have = set(&info.key_usages);
        let enc: BTreeSet<&str> = ["key_encipherment", "data_encipherment"].into();
        if ec && have.iter().any(|u| enc.contains(u)) {
            s.push(
                Code::KuKeyEnciphermentEcdsa,
                x.path,
                "has keyEncipherment/dataEncipherment on an ECDSA key (an ECDSA key cannot encipher)",
                fix,
            );
        }
        let ignore_extra = |u: &&str| ec && enc.contains(u);
        if is_ca {
            if !have.contains("key_cert_sign") {
                s.push(
                    Code::CaNoKeyCertSign,
                    x.path,
                    "is a CA without the keyCertSign key usage",
                    fix,
                );
            }
            let missing: BTreeSet<&str> = want
                .difference(&have)
                .copied()
                .filter(|u| *u != "key_cert_sign")
                .collect();
            let extra: BTreeSet<&str> = have
                .difference(&want)
                .copied()
                .filter(|u| !ignore_extra(u))
                .collect();
            if !missing.is_empty() || !extra.is_empty() {
                s.push(
                    Code::CaKuDiffers,
                    x.path,
                    format!(
                        "key usages differ from the spec (missing: [{}], extra: [{}])",
                        list(&missing),
                        list(&extra)
                    ),
                    "",
                );
            }
        } else {
            if have.contains("key_cert_sign") {
                s.push(
                    Code::LeafHasKeyCertSign,
                    x.path,
                    "is a leaf with the keyCertSign key usage",
                    fix,
                );
            }
            let missing: BTreeSet<&str> = want.difference(&have).copied().collect();
            if !missing.is_empty() {
                s.push(
                    Code::KuMissing,
                    x.path,
                    format!("lacks key usage(s) {}", list(&missing)),
                    fix,
                );
            }
            let extra: BTreeSet<&str> = have
                .difference(&want)
                .copied()
                .filter(|u| *u != "key_cert_sign" && !ignore_extra(u))
                .collect();
            if !extra.is_empty() {
                s.push(
                    Code::KuExtra,
                    x.path,
                    format!(
                        "has key usage(s) the spec does not ask for: {}",
                        list(&extra)
                    ),
                    fix,
                );
            }
        }

        // Extended key usage.
        let want_eku = set(&x.profile.ext_key_usages);
        let have_eku = set(&info.ext_key_usages);
        let missing: BTreeSet<&str> = want_eku.difference(&have_eku).copied().collect();
        if !missing.is_empty() {
            s.push(
                Code::EkuMissing,
                x.path,
                format!("lacks extended key usage(s) {}", list(&missing)),
                fix,
            );
        }
        let extra: BTreeSet<&str> = have_eku.difference(&want_eku).copied().collect();
        if !extra.is_empty() {
            s.push(
                Code::EkuExtra,
                x.path,
                format!(
                    "has extended key usage(s) the spec does not ask for: {}",
                    list(&extra)
                ),
                fix,
            );
        }
    }

    fn check_subject(&self, s: &mut Sink<'_>, x: &Expect<'_>, info: &CertInfo, fix: &str) {
        if let Some(cn) = info.cn.iter().find(|cn| cn.chars().count() > MAX_CN) {
            s.push(Code::SubjectCnLong, x.path, cn_long_message(cn), "");
        }
        if x.kind == Kind::Ca {
            let orgs: BTreeSet<&str> = set(&info.orgs);
            if info.cn != [x.profile.cn.clone()] || orgs != set(&x.profile.orgs) {
                s.push(
                    Code::CaSubjectDiffers,
                    x.path,
                    format!(
                        "has subject {}; the spec's CA is CN={}",
                        info.subject, x.profile.cn
                    ),
                    "",
                );
            }
            return;
        }
        if info.cn != [x.profile.cn.clone()] {
            s.push(
                Code::SubjectCnMismatch,
                x.path,
                format!(
                    "has subject CN {:?}; the spec asks for {:?}",
                    info.cn.join(", "),
                    x.profile.cn
                ),
                self.fix_for_origin(x.cn_origin, fix),
            );
        }
        let want_o = set(&x.profile.orgs);
        let have_o = set(&info.orgs);
        if want_o != have_o {
            let pre_129 = have_o == BTreeSet::from(["system:masters"])
                && want_o.iter().all(|o| *o == "kubeadm:cluster-admins");
            let want_text = if want_o.is_empty() {
                "no O".to_string()
            } else {
                format!("O=[{}]", list(&want_o))
            };
            if pre_129 {
                s.push(
                    Code::SubjectOPre129,
                    x.path,
                    format!(
                        "has O=system:masters as kubeadm < 1.29 wrote it; since 1.29 only super-admin.conf is in system:masters and this entry has {want_text}"
                    ),
                    fix,
                );
            } else {
                s.push(
                    Code::SubjectOMismatch,
                    x.path,
                    format!("has O=[{}]; the spec asks for {want_text}", list(&have_o)),
                    fix,
                );
            }
        }
    }

    fn check_validity(&self, s: &mut Sink<'_>, x: &Expect<'_>, info: &CertInfo, fix: &str) {
        if self.now > info.not_after {
            s.push(
                Code::CertExpired,
                x.path,
                format!("expired on {}", fmt_time(info.not_after)),
                fix,
            );
        } else if self.now < info.not_before {
            s.push(
                Code::CertNotYetValid,
                x.path,
                format!(
                    "is not valid before {} (clock skew, or issued with a future start)",
                    fmt_time(info.not_before)
                ),
                fix,
            );
        } else if info.not_after - self.now <= self.opts.warn_within {
            s.push(
                Code::CertExpiring,
                x.path,
                format!(
                    "expires on {} (within {})",
                    fmt_time(info.not_after),
                    crate::inputs::duration::format_go_duration(self.opts.warn_within)
                ),
                fix,
            );
        }
        if let Some(CaView::Usable { info: ca, .. }) = x.ca.and_then(|n| self.cas.get(n)) {
            if info.not_after > ca.not_after && self.now <= ca.not_after {
                let ca_name = x.ca.unwrap_or("");
                s.push(
                    Code::CertOutlivesCa,
                    x.path,
                    format!(
                        "expires on {}, after its CA {ca_name} ({}): it stops working when the CA expires",
                        fmt_time(info.not_after),
                        fmt_time(ca.not_after)
                    ),
                    format!("plan the rotation of CA {ca_name} before {}", fmt_time(ca.not_after)),
                );
            }
        }
    }

    fn check_serial_and_ids(&self, s: &mut Sink<'_>, x: &Expect<'_>, info: &CertInfo, fix: &str) {
        let serial = &info.serial;
        if serial.iter().all(|b| *b == 0) {
            s.push(
                Code::SerialNonconforming,
                x.path,
                "has serial number 0",
                fix,
            );
        } else if serial.first().is_some_and(|b| b & 0x80 != 0) {
            s.push(
                Code::SerialNegative,
                x.path,
                "has a negative serial number (Go 1.23+ refuses to parse it)",
                fix,
            );
        } else if serial.len() > 20 {
            s.push(
                Code::SerialNonconforming,
                x.path,
                format!("has a {}-octet serial number (at most 20)", serial.len()),
                fix,
            );
        }
        if info.ski.is_none() {
            s.push(
                Code::SkiMissing,
                x.path,
                "has no Subject Key Identifier",
                fix,
            );
        }
        if info.aki.is_none() && info.issuer_raw != info.subject_raw {
            s.push(
                Code::AkiMissing,
                x.path,
                "has no Authority Key Identifier",
                fix,
            );
        }
    }

    fn check_ca_chain(
        &self,
        s: &mut Sink<'_>,
        x: &Expect<'_>,
        der: &[u8],
        info: &CertInfo,
        key_supported: bool,
    ) {
        if !self.opts.verify_signatures {
            return;
        }
        let fix = self.reissue_fix(x);
        let self_issued = info.issuer_raw == info.subject_raw;
        if let Err(e) = chain::check_anchor(der) {
            s.push(
                Code::TlsRejected,
                x.path,
                format!("rustls-webpki cannot use it as a trust anchor: {e}"),
                fix.clone(),
            );
            return;
        }
        if !key_supported {
            // Reported as key-algorithm-unsupported; its signature cannot be judged.
            return;
        }
        match x.ca {
            None if self_issued => {
                if let Err(m) = chain::signed_by(der, der) {
                    s.push(
                        Code::ChainInvalid,
                        x.path,
                        format!("is not validly self-signed: {m}"),
                        fix,
                    );
                }
            }
            None => s.push(
                Code::CaNotSelfSigned,
                x.path,
                format!(
                    "is an intermediate CA (subject {}); its issuer is outside the tree and not checked",
                    info.subject
                ),
                "",
            ),
            Some(parent) => match self.cas.get(parent).and_then(CaView::der) {
                Some(pder) => {
                    if let Err(m) = chain::signed_by(der, pder) {
                        s.push(
                            Code::ChainInvalid,
                            x.path,
                            format!("is not signed by CA {parent}: {m}"),
                            fix,
                        );
                    }
                }
                None => s.push(
                    Code::ChainUnchecked,
                    x.path,
                    format!("not chain-checked: its CA {parent} is missing or unusable"),
                    "",
                ),
            },
        }
    }

    /// The chain and usage check with rustls-webpki. Every rejection becomes an error finding:
    /// either one of the field checks already explains it, or `tls-rejected` is added.
    fn check_leaf_chain(&self, s: &mut Sink<'_>, x: &Expect<'_>, der: &[u8], info: &CertInfo) {
        if !self.opts.verify_signatures {
            return;
        }
        let fix = self.reissue_fix(x);
        let ca_name = x.ca.unwrap_or("");
        let ca_der = match x.ca.and_then(|n| self.cas.get(n)) {
            Some(CaView::Usable { der, .. }) => der.clone(),
            Some(CaView::Absent) | None => {
                s.push(
                    Code::CaAbsent,
                    x.path,
                    format!("its CA {ca_name} has no certificate on disk, so it cannot chain to the tree (a new CA would not have signed it)"),
                    fix,
                );
                return;
            }
            Some(CaView::Broken) => {
                s.push(
                    Code::ChainUnchecked,
                    x.path,
                    format!(
                        "not chain-checked: its CA {ca_name} is unusable (see the CA's findings)"
                    ),
                    "",
                );
                return;
            }
        };
        let mut at = self.now;
        let mut r = chain::verify_leaf(der, &ca_der, at, Usage::Any);
        if let Err(e @ (WebpkiError::CertExpired { .. } | WebpkiError::CertNotValidYet { .. })) = &r
        {
            let code = if matches!(e, WebpkiError::CertExpired { .. }) {
                Code::CertExpired
            } else {
                Code::CertNotYetValid
            };
            if !s.has(code) {
                s.push(
                    Code::TlsRejected,
                    x.path,
                    format!("rustls-webpki rejects it at {}: {e}", fmt_time(at)),
                    fix.clone(),
                );
            }
            // Still check the chain, inside the certificate's validity.
            at = info.not_before;
            r = chain::verify_leaf(der, &ca_der, at, Usage::Any);
        }
        match r {
            Ok(()) => {
                for usage in x
                    .profile
                    .ext_key_usages
                    .iter()
                    .filter_map(|u| Usage::of_eku(u))
                {
                    match chain::verify_leaf(der, &ca_der, at, usage) {
                        Ok(()) => {}
                        Err(WebpkiError::RequiredEkuNotFoundContext(_))
                            if s.has(Code::EkuMissing) => {}
                        Err(e) => s.push(
                            Code::TlsRejected,
                            x.path,
                            format!("rustls-webpki rejects it for {}: {e}", usage.name()),
                            fix.clone(),
                        ),
                    }
                }
            }
            Err(WebpkiError::CaUsedAsEndEntity) => {
                if !s.has(Code::LeafIsCa) {
                    s.push(
                        Code::TlsRejected,
                        x.path,
                        "rustls-webpki rejects a CA certificate as an end entity",
                        fix.clone(),
                    );
                }
                if let Err(m) = chain::signed_by(der, &ca_der) {
                    s.push(
                        Code::ChainInvalid,
                        x.path,
                        format!("is not signed by CA {ca_name}: {m}"),
                        fix,
                    );
                }
            }
            Err(
                e @ (WebpkiError::UnknownIssuer
                | WebpkiError::InvalidSignatureForPublicKey
                | WebpkiError::SignatureAlgorithmMismatch),
            ) => {
                let why = chain::signed_by(der, &ca_der)
                    .err()
                    .unwrap_or_else(|| format!("rustls-webpki: {e}"));
                s.push(
                    Code::ChainInvalid,
                    x.path,
                    format!("is not signed by CA {ca_name}: {why}"),
                    fix,
                );
            }
            Err(e) => s.push(
                Code::TlsRejected,
                x.path,
                format!("rustls-webpki rejects it with CA {ca_name} as trust anchor: {e}"),
                fix,
            ),
        }
    }

    fn ca_entry(
        &mut self,
        c: &CertEntry,
        cert: &Observed<CertFile>,
        key: &Observed<std::sync::Arc<KeyFile>>,
    ) -> EntryAssessment {
        let x = Expect::cert(c, Kind::Ca);
        let fix = self.reissue_fix(&x);
        let mut s = Sink {
            entry: &c.name,
            kind: Kind::Ca,
            findings: vec![],
        };
        let mut not_after = None;
        let mut state = State::Present;
        let view = match cert {
            Observed::Missing => {
                let (message, f) = if key.exists() {
                    state = if key.present().is_some() {
                        State::KeyOnly
                    } else {
                        State::Present
                    };
                    (
                        "is missing (its key exists)",
                        "restore the CA certificate from a backup (`kpki init` can issue a new certificate for the existing key, which changes the trust anchor)",
                    )
                } else {
                    state = State::Missing;
                    (
                        "is missing, and so is its key",
                        "run `kpki init` to create the tree",
                    )
                };
                s.push(Code::FileMissing, &c.cert_path, message, f);
                CaView::Absent
            }
            Observed::Invalid(m) => {
                s.push(classify_read_error(m), &c.cert_path, m.clone(), fix.clone());
                CaView::Broken
            }
            // Only private keys are left unread.
            Observed::Unread => CaView::Broken,
            Observed::Present(cf) => {
                self.check_cert_mode(&mut s, &c.cert_path, cf.mode);
                self.ca_bundles.insert(
                    c.name.clone(),
                    std::iter::once(cf.der.clone())
                        .chain(cf.chain.iter().cloned())
                        .collect(),
                );
                match self.check_cert(&mut s, &x, &cf.der) {
                    Some(info) if !s.has(Code::TlsRejected) => {
                        not_after = Some(info.not_after);
                        CaView::Usable {
                            der: cf.der.clone(),
                            info: Box::new(info),
                            external: matches!(key, Observed::Missing),
                            unsound: false,
                        }
                    }
                    _ => CaView::Broken,
                }
            }
        };
        match key {
            Observed::Missing => {
                if let CaView::Usable { .. } = view {
                    s.push(
                        Code::ExternalCa,
                        &c.key_path,
                        format!(
                            "external CA mode: {} is absent, so the certificates it signs can be checked but not issued",
                            disp(&c.key_path)
                        ),
                        "",
                    );
                }
            }
            Observed::Invalid(m) => {
                s.push(classify_read_error(m), &c.key_path, m.clone(), fix.clone())
            }
            // Not read for this view: nothing is said of it.
            Observed::Unread => {}
            Observed::Present(kf) => {
                self.check_key_mode(&mut s, &c.key_path, kf.mode);
                if let CaView::Usable { info, .. } = &view {
                    if !kf.key.matches_spki(&info.spki) {
                        s.push(
                            Code::KeyMismatch,
                            &c.key_path,
                            format!("does not match {}", disp(&c.cert_path)),
                            fix,
                        );
                    }
                }
                self.ca_keys.push((c.name.clone(), kf.key.spki_der()));
            }
        }
        let unsound = s
            .findings
            .iter()
            .any(|f| f.severity == Severity::Error && f.remedy != Remedy::Repair);
        let view = match view {
            CaView::Usable {
                der,
                info,
                external,
                ..
            } => CaView::Usable {
                der,
                info,
                external,
                unsound,
            },
            v => v,
        };
        self.cas.insert(c.name.clone(), view.clone());
        EntryAssessment {
            entry: c.name.clone(),
            state,
            findings: s.findings,
            not_after,
            ca: Some(view),
            credentials_elsewhere: false,
            client_files: None,
            request_exists: false,
        }
    }

    fn leaf(
        &self,
        c: &CertEntry,
        cert: &Observed<CertFile>,
        key: &Observed<std::sync::Arc<KeyFile>>,
    ) -> EntryAssessment {
        let x = Expect::cert(c, Kind::Leaf);
        let fix = self.reissue_fix(&x);
        let mut s = Sink {
            entry: &c.name,
            kind: Kind::Leaf,
            findings: vec![],
        };
        let create_fix = if self.ca_external(x.ca) {
            fix.clone()
        } else {
            "run `kpki init` to create it".to_string()
        };
        let mut state = State::Present;
        let info = match cert {
            Observed::Missing => {
                let message = if key.exists() {
                    state = if key.present().is_some() {
                        State::KeyOnly
                    } else {
                        State::Present
                    };
                    "is missing (its key exists)"
                } else {
                    state = State::Missing;
                    "is missing, and so is its key"
                };
                s.push(Code::FileMissing, &c.cert_path, message, create_fix.clone());
                None
            }
            Observed::Invalid(m) => {
                s.push(
                    classify_read_error(m),
                    &c.cert_path,
                    m.clone(),
                    format!("remove it and {create_fix}"),
                );
                None
            }
            // Only private keys are left unread.
            Observed::Unread => None,
            Observed::Present(cf) => {
                self.check_cert_mode(&mut s, &c.cert_path, cf.mode);
                self.check_cert(&mut s, &x, &cf.der)
            }
        };
        match key {
            Observed::Missing => {
                if cert.exists() {
                    s.push(
                        Code::FileMissing,
                        &c.key_path,
                        format!("is missing while {} exists", disp(&c.cert_path)),
                        fix,
                    );
                }
            }
            Observed::Invalid(m) => s.push(
                classify_read_error(m),
                &c.key_path,
                m.clone(),
                format!("remove it and {create_fix}"),
            ),
            Observed::Unread => {}
            Observed::Present(kf) => {
                self.check_key_mode(&mut s, &c.key_path, kf.mode);
                if let Some(info) = &info {
                    if !kf.key.matches_spki(&info.spki) {
                        s.push(
                            Code::KeyMismatch,
                            &c.key_path,
                            format!("does not match {}", disp(&c.cert_path)),
                            fix,
                        );
                    } else if info.is_ca {
                        // A CA certificate with its own key at a leaf's paths (a spec that moved
                        // the leaf onto a CA's files): re-issuing would destroy that CA's key.
                        for f in s.findings.iter_mut().filter(|f| f.code == Code::LeafIsCa) {
                            f.remedy = Remedy::Manual;
                            f.message = format!(
                                "is a CA certificate, and {} is its key: these are a CA's files, not this leaf's",
                                disp(&c.key_path)
                            );
                            f.fix = "kpki never replaces a CA's key: point the spec's entry at its own files, or move the CA's files away".into();
                        }
                    }
                }
            }
        }
        EntryAssessment {
            entry: c.name.clone(),
            state,
            findings: s.findings,
            not_after: info.map(|i| i.not_after),
            ca: None,
            credentials_elsewhere: false,
            client_files: None,
            request_exists: false,
        }
    }

    fn keypair(
        &self,
        k: &KeyPairEntry,
        key: &Observed<std::sync::Arc<KeyFile>>,
        public: &Observed<(Vec<u8>, u32)>,
    ) -> EntryAssessment {
        let mut s = Sink {
            entry: &k.name,
            kind: Kind::KeyPair,
            findings: vec![],
        };
        let restore = format!(
            "restore {} from a backup (a new key invalidates every service-account token)",
            disp(&k.key_path)
        );
        let derive = format!(
            "remove {} and run `kpki init` to derive it from {}",
            disp(&k.pub_path),
            disp(&k.key_path)
        );
        let mut state = State::Present;
        let private = match key {
            Observed::Missing => {
                if public.exists() {
                    s.push_with(
                        Code::FileMissing,
                        &k.key_path,
                        "is missing but its public key exists",
                        restore.clone(),
                        Remedy::Manual,
                    );
                } else {
                    state = State::Missing;
                    s.push(
                        Code::FileMissing,
                        &k.key_path,
                        "is missing, and so is its public key",
                        "run `kpki init` to create it",
                    );
                }
                None
            }
            Observed::Invalid(m) => {
                s.push(classify_read_error(m), &k.key_path, m.clone(), restore);
                None
            }
            Observed::Unread => None,
            Observed::Present(kf) => {
                self.check_key_mode(&mut s, &k.key_path, kf.mode);
                if kf.key.algorithm() != k.algorithm {
                    s.push(
                        Code::CaKeyAlgorithmDiffers,
                        &k.key_path,
                        format!(
                            "is a {} key; the inputs ask for {} (changing it invalidates every service-account token)",
                            kf.key.algorithm(),
                            k.algorithm
                        ),
                        "",
                    );
                }
                Some(&kf.key)
            }
        };
        match public {
            Observed::Missing => {
                if key.present().is_some() {
                    state = State::KeyOnly;
                }
                if key.exists() {
                    s.push(
                        Code::FileMissing,
                        &k.pub_path,
                        "is missing",
                        "run `kpki init` to derive it from the private key",
                    );
                }
            }
            Observed::Invalid(m) => s.push(classify_read_error(m), &k.pub_path, m.clone(), derive),
            // Only private keys are left unread.
            Observed::Unread => {}
            Observed::Present((spki, mode)) => {
                // sa.pub is written 0600 by kubeadm; only writability by others matters.
                self.check_cert_mode(&mut s, &k.pub_path, *mode);
                if let Some(pk) = private {
                    if !pk.matches_spki(spki) {
                        s.push(
                            Code::KeyMismatch,
                            &k.pub_path,
                            format!("does not match {}", disp(&k.key_path)),
                            derive,
                        );
                    }
                }
            }
        }
        EntryAssessment {
            entry: k.name.clone(),
            state,
            findings: s.findings,
            not_after: None,
            ca: None,
            credentials_elsewhere: false,
            client_files: None,
            request_exists: false,
        }
    }

    fn kubeconfig(
        &self,
        k: &KubeconfigEntry,
        obs: &Observed<KubeconfigFile>,
        signed: Option<&Observed<CertFile>>,
    ) -> EntryAssessment {
        let x = Expect::kubeconfig(k);
        let fix = self.reissue_fix(&x);
        let external_ca = self.ca_external(x.ca);
        let mut s = Sink {
            entry: &k.name,
            kind: Kind::Kubeconfig,
            findings: vec![],
        };
        let regen = if external_ca {
            fix.clone()
        } else {
            format!("remove {} and run `kpki init`", disp(&k.path))
        };
        let mut out = EntryAssessment {
            entry: k.name.clone(),
            state: State::Present,
            findings: vec![],
            not_after: None,
            ca: None,
            credentials_elsewhere: false,
            client_files: None,
            request_exists: false,
        };
        let kc = match obs {
            Observed::Missing => {
                let f = if external_ca {
                    fix.clone()
                } else {
                    "run `kpki init` to create it".to_string()
                };
                s.push(Code::FileMissing, &k.path, "is missing", f);
                out.state = State::Missing;
                out.findings = s.findings;
                return out;
            }
            Observed::Invalid(m) => {
                let code = if m.contains("current-context") || m.starts_with("context ") {
                    Code::KubeconfigContextUnresolved
                } else if classify_read_error(m) == Code::FileUnreadable {
                    Code::FileUnreadable
                } else {
                    Code::KubeconfigInvalid
                };
                s.push(code, &k.path, m.clone(), regen);
                out.findings = s.findings;
                return out;
            }
            // Kubeconfigs are always read (a skipped client key is `key_unread`).
            Observed::Unread => return out,
            Observed::Present(kc) => kc,
        };
        self.check_key_mode(&mut s, &k.path, kc.mode);
        let tree_ca = self
            .cas
            .get(&k.ca)
            .and_then(CaView::der)
            .map(<[u8]>::to_vec);

        // A token kubeconfig (TLS bootstrap): the CA it trusts, its server and its token.
        if let Some(token) = &k.token {
            if kc.ca_der.is_some() && kc.ca_der != tree_ca && tree_ca.is_some() {
                s.push(
                    Code::KubeconfigCaMismatch,
                    &k.path,
                    format!(
                        "exists already but has got the wrong CA cert (not CA {})",
                        k.ca
                    ),
                    regen.clone(),
                );
            }
            if kc.server != k.server {
                s.push(
                    Code::KubeconfigServerMismatch,
                    &k.path,
                    format!("has server {}; the inputs give {}", kc.server, k.server),
                    regen.clone(),
                );
            }
            let has = kc
                .config
                .users
                .iter()
                .find(|u| u.name == kc.user_name)
                .and_then(|u| u.user.token.as_deref());
            if has != Some(token.as_str()) {
                s.push(
                    Code::KubeconfigNoClientCert,
                    &k.path,
                    "does not hold the bootstrap token asked for",
                    regen,
                );
            }
            out.findings = s.findings;
            return out;
        }

        // `generate-csr` layout: only the client key so far; an external CA signs `<file>.crt`.
        if kc.cert_der.is_none()
            && kc.ca_der.is_none()
            && kc.cert_ref.is_none()
            && (kc.key.is_some() || kc.key_unread)
        {
            let crt = format!("{}.crt", k.path.display());
            match signed {
                Some(Observed::Present(cf)) => {
                    let signed_path = std::path::PathBuf::from(&crt);
                    let sx = Expect {
                        path: &signed_path,
                        ..Expect::kubeconfig(k)
                    };
                    let info = self.check_cert(&mut s, &sx, &cf.der);
                    if let (Some(info), Some(key)) = (&info, &kc.key) {
                        if !key.matches_spki(&info.spki) {
                            s.push(
                                Code::KeyMismatch,
                                &signed_path,
                                format!("does not match the client key in {}", disp(&k.path)),
                                format!("have {crt} signed for the key in {} ({}.csr)", disp(&k.path), disp(&k.path)),
                            );
                        }
                    }
                    out.not_after = info.map(|i| i.not_after);
                    if !s.findings.iter().any(|f| f.severity == Severity::Error) {
                        out.state = State::SignedElsewhere;
                        s.push_with(
                            Code::KubeconfigNoClientCert,
                            &k.path,
                            format!("holds only its client key; {crt} is signed and ready to embed"),
                            "run `kpki init` to embed it",
                            Remedy::Reissue,
                        );
                    }
                }
                Some(Observed::Invalid(m)) => {
                    s.push(classify_read_error(m), Path::new(&crt), m.clone(), format!("replace {crt} with the certificate the external CA signed"));
                }
                _ => s.push_with(
                    Code::KubeconfigNoClientCert,
                    &k.path,
                    format!("holds a client key but no certificate: have {crt} signed by the external CA ({}.csr) and place it there", disp(&k.path)),
                    format!("place the signed certificate at {crt}, then run `kpki init`"),
                    Remedy::Manual,
                ),
            }
            out.findings = s.findings;
            return out;
        }

        // The CA it trusts must be the tree's CA.
        if let Some(r) = &kc.ca_ref {
            s.push(
                Code::KubeconfigCaByReference,
                &k.path,
                format!("references its CA by path ({})", r.written),
                "",
            );
            if let Some(p) = &r.problem {
                s.push(
                    Code::KubeconfigRefUnreadable,
                    &r.path,
                    format!(
                        "its CA file {} (named by {}): {p}",
                        r.written,
                        disp(&k.path)
                    ),
                    format!("restore {} or embed the CA", r.written),
                );
            }
        }
        match (&kc.ca_der, &tree_ca) {
            (Some(embedded), Some(ca)) if embedded != ca => s.push(
                Code::KubeconfigCaMismatch,
                &k.path,
                format!(
                    "exists already but has got the wrong CA cert (it trusts {}, not CA {})",
                    inspect::info(embedded)
                        .map(|i| i.subject)
                        .unwrap_or_else(|m| m),
                    k.ca
                ),
                format!(
                    "run `kpki certs renew {}` (it rewrites the CA data)",
                    k.name
                ),
            ),
            (None, _) if kc.ca_ref.is_none() => s.push(
                Code::KubeconfigCaMismatch,
                &k.path,
                "embeds no certificate-authority-data",
                format!(
                    "run `kpki certs renew {}` (it rewrites the CA data)",
                    k.name
                ),
            ),
            // A bundle may trust less than the CA file (kubeadm embeds only the first
            // certificate), never a certificate the CA file no longer holds: an old CA left
            // behind after a rotation's finish would still be trusted.
            (Some(embedded), Some(ca)) if embedded == ca && kc.ca_ref.is_none() => {
                let file = self.ca_bundles.get(&k.ca);
                let extra: Vec<String> = kc
                    .ca_chain
                    .iter()
                    .filter(|c| file.is_some_and(|f| !f.contains(c)))
                    .map(|c| inspect::info(c).map(|i| i.subject).unwrap_or_else(|m| m))
                    .collect();
                if !extra.is_empty() {
                    s.push(
                        Code::KubeconfigCaMismatch,
                        &k.path,
                        format!(
                            "its certificate-authority-data also trusts {} which the file of CA {} does not hold (an old CA left from a rotation?)",
                            extra.join(", "),
                            k.ca
                        ),
                        format!(
                            "run `kpki certs renew {}` (it rewrites the CA data)",
                            k.name
                        ),
                    );
                }
            }
            _ => {}
        }

        if kc.server != k.server {
            s.push(
                Code::KubeconfigServerMismatch,
                &k.path,
                format!("has server {}; the inputs give {}", kc.server, k.server),
                format!(
                    "set the cluster's server to {} (or check the inputs)",
                    k.server
                ),
            );
        }

        // The client certificate, embedded or referenced.
        for (r, what) in [
            (&kc.cert_ref, "client certificate"),
            (&kc.key_ref, "client key"),
        ] {
            if let Some(r) = r {
                s.push(
                    Code::KubeconfigCertByReference,
                    &k.path,
                    format!("references its {what} by path ({})", r.written),
                    "",
                );
                if let Some(p) = &r.problem {
                    s.push(
                        Code::KubeconfigRefUnreadable,
                        &r.path,
                        format!(
                            "its {what} file {} (named by {}): {p}",
                            r.written,
                            disp(&k.path)
                        ),
                        format!(
                            "restore {} (for kubelet.conf: the kubelet rotates it)",
                            r.written
                        ),
                    );
                }
            }
        }
        out.credentials_elsewhere = kc.cert_ref.is_some();
        if let (Some(c), Some(k)) = (&kc.cert_ref, &kc.key_ref) {
            out.client_files = Some(ClientFiles {
                cert: c.path.clone(),
                key: k.path.clone(),
            });
        }
        let info = match &kc.cert_der {
            Some(der) => self.check_cert(&mut s, &x, der),
            None => {
                if kc.cert_ref.is_none() {
                    s.push(
                        Code::KubeconfigNoClientCert,
                        &k.path,
                        "has no client certificate for its current user",
                        regen.clone(),
                    );
                }
                None
            }
        };
        if let Some(info) = &info {
            out.not_after = Some(info.not_after);
            match &kc.key {
                Some(key) if !key.matches_spki(&info.spki) => s.push(
                    Code::KeyMismatch,
                    &k.path,
                    "the client key does not match the client certificate",
                    fix.clone(),
                ),
                Some(_) => {}
                None if kc.key_ref.is_none() && !kc.key_unread => s.push(
                    Code::KubeconfigNoClientCert,
                    &k.path,
                    "has a client certificate but no client key",
                    regen,
                ),
                None => {}
            }
            // The names are local labels; the CN is the identity. A TLS-bootstrapped kubelet
            // names its user `default-auth`.
            let cn = info.cn.first().cloned().unwrap_or_default();
            let want_context = format!("{}@{}", kc.user_name, kc.cluster_name);
            if kc.user_name != "default-auth"
                && (kc.user_name != cn || kc.context_name != want_context)
            {
                s.push(
                    Code::KubeconfigUserMismatch,
                    &k.path,
                    format!(
                        "its user {:?} / context {:?} do not name its client certificate's CN {cn:?}",
                        kc.user_name, kc.context_name
                    ),
                    fix,
                );
            }
        }
        out.findings = s.findings;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_documented() {
        let docs = include_str!("../../../../docs/findings.md");
        let mut seen = BTreeSet::new();
        for (code, name, sev, rule) in codes::CODES {
            assert!(seen.insert(*name), "duplicate code {name}");
            assert_eq!(Code::parse(name), Some(*code));
            assert!(!rule.is_empty(), "{name} cites no rule");
            let row = format!("| `{name}` | {} |", sev.as_str());
            assert!(docs.contains(&row), "docs/findings.md lacks the row {row}");
        }
    }

    #[test]
    fn remedies_follow_the_kind() {
        assert_eq!(default_remedy(Kind::Ca, Code::KeyMismatch), Remedy::Manual);
        assert_eq!(
            default_remedy(Kind::Leaf, Code::KeyMismatch),
            Remedy::Reissue
        );
        assert_eq!(default_remedy(Kind::Leaf, Code::PemInvalid), Remedy::Manual);
        assert_eq!(
            default_remedy(Kind::Ca, Code::KeyModeInsecure),
            Remedy::Repair
        );
        assert_eq!(
            default_remedy(Kind::Leaf, Code::SkiMissing),
            Remedy::Reissue
        );
        assert_eq!(
            default_remedy(Kind::Leaf, Code::CertOutlivesCa),
            Remedy::None
        );
        assert_eq!(default_remedy(Kind::Leaf, Code::SanExtra), Remedy::None);
    }
}
