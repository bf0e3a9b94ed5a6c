//! `verify`: audits a whole tree against the resolved spec and returns findings as data.
//!
//! Like the planner, [`verify`] is pure over the observed disk ([`crate::disk::observe`]) and an
//! injected clock: it never stops at the first problem, and every finding carries a stable
//! [`Code`], a [`Severity`], the spec entry, the file, a message and a fix. Codes, severities and
//! the rule each one enforces are listed in [`CODES`] and documented in `docs/findings.md`.
//!
//! Chains and usages are checked with rustls-webpki (the entry's CA as the only trust anchor,
//! `KeyUsage::server_auth()`/`client_auth()` per the spec's EKUs, at the injected time), so "no
//! errors" means a TLS stack accepts every certificate; fields are inspected with x509-parser
//! ([`crate::x509::inspect::info`]). Issues that only break an RFC recommendation on an imported tree
//! (keyEncipherment on an ECDSA key, a leaf without SKI) are warnings, never errors.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use rustls_pki_types::{CertificateDer, UnixTime};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::disk::read::Observed;
use crate::disk::{Disk, KubeconfigFile, Seen};
use crate::error::{Error, Result};
use crate::model::resolve::{CertEntry, Desired, Entry, KeyPairEntry, KubeconfigEntry};
use crate::x509::inspect::{self, CertInfo};
use crate::x509::issue::{effective_key_usages, Profile};
use crate::x509::keys::{algorithm_of_spki, KeyAlgorithm, PrivateKey};

/// `apiVersion` of the JSON report.
pub const API_VERSION: &str = "kpki/v1alpha1";
/// `kind` of the JSON report.
pub const KIND: &str = "VerifyReport";
/// Default `--warn-within`: kubeadm's 30-day renewal horizon (720h).
pub const DEFAULT_WARN_WITHIN: Duration = Duration::hours(720);

/// How bad a finding is. Errors make `kpki verify` exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Something a cluster component will reject, or a secret exposed.
    Error,
    /// Works today, but breaks a recommendation or will break soon.
    Warning,
    /// Worth knowing; nothing to fix.
    Info,
}

impl Severity {
    /// Lower-case name as in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $sev:ident, $rule:literal; )*) => {
        /// A stable finding code (see `docs/findings.md`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code {
            $( $(#[$doc])* $variant, )*
        }

        /// Every code with its severity and the rule it enforces, in documentation order.
        pub const CODES: &[(Code, &str, Severity, &str)] = &[
            $( (Code::$variant, $name, Severity::$sev, $rule), )*
        ];
    };
}

codes! {
    /// An expected file is absent.
    FileMissing = "file-missing", Error, "kubeadm: every spec entry must exist (a CA key may be absent: external CA)";
    /// A file exists but cannot be read (permissions, I/O).
    FileUnreadable = "file-unreadable", Error, "kpki policy: every file of the tree must be readable by the auditor";
    /// A certificate or key file is not usable PEM (truncated, garbage, wrong block, DER).
    PemInvalid = "pem-invalid", Error, "RFC 7468 / kubeadm's PEM loaders (keyutil, certutil)";
    /// A private key does not match its certificate (or sa.pub does not match sa.key).
    KeyMismatch = "key-mismatch", Error, "kubeadm: TryLoadCertAndKeyFromDisk / tls.X509KeyPair needs the key of the certificate";
    /// The certificate does not chain to its CA (issuer or signature).
    ChainInvalid = "chain-invalid", Error, "RFC 5280 6.1 path validation (rustls-webpki with the spec CA as the only anchor)";
    /// rustls-webpki rejects the certificate for a reason no other finding explains.
    TlsRejected = "tls-rejected", Error, "RFC 5280 6.1 / RFC 8446 4.4.2 as enforced by rustls-webpki";
    /// A CA certificate lacks basicConstraints CA:TRUE.
    CaNotCa = "ca-not-ca", Error, "RFC 5280 4.2.1.9: a CA certificate MUST assert cA";
    /// A CA certificate lacks the keyCertSign key usage.
    CaNoKeyCertSign = "ca-no-keycertsign", Error, "RFC 5280 4.2.1.3: keyCertSign MUST be set to verify certificate signatures";
    /// A leaf certificate asserts CA:TRUE.
    LeafIsCa = "leaf-is-ca", Error, "RFC 5280 4.2.1.9 / kubeadm: leaves are CA:FALSE; rustls-webpki rejects a CA as end entity";
    /// A leaf certificate has keyCertSign.
    LeafHasKeyCertSign = "leaf-has-keycertsign", Error, "RFC 5280 4.2.1.3: keyCertSign only with cA; kubeadm leaves never have it";
    /// A key usage the spec asks for is absent.
    KuMissing = "ku-missing", Error, "spec key_usages (kubeadm's KeyUsage; RFC 8813 drops keyEncipherment for ECDSA)";
    /// A key usage the spec does not ask for is present.
    KuExtra = "ku-extra", Warning, "spec key_usages (least privilege)";
    /// keyEncipherment/dataEncipherment on an ECDSA key.
    KuKeyEnciphermentEcdsa = "ku-keyencipherment-ecdsa", Warning, "RFC 8813 3 / RFC 5480 3: an ECDSA key cannot encipher (kubeadm sets it anyway)";
    /// A CA's key usages differ from the spec beyond keyCertSign.
    CaKuDiffers = "ca-ku-differs", Info, "spec key_usages; only keyCertSign matters for a CA (RFC 5280 4.2.1.3)";
    /// An extended key usage the spec asks for is absent.
    EkuMissing = "eku-missing", Error, "spec ext_key_usages; RFC 5280 4.2.1.12 (TLS stacks require serverAuth/clientAuth when EKU is present)";
    /// An extended key usage the spec does not ask for is present.
    EkuExtra = "eku-extra", Warning, "spec ext_key_usages (least privilege)";
    /// Subject CN differs from the spec.
    SubjectCnMismatch = "subject-cn-mismatch", Error, "spec cn: the CN is the Kubernetes user name (kubeadm certlist)";
    /// Subject O differs from the spec.
    SubjectOMismatch = "subject-o-mismatch", Error, "spec o: O values are the Kubernetes groups (kubeadm certlist)";
    /// Subject O is `system:masters` where kubeadm 1.29+ writes another value.
    SubjectOPre129 = "subject-o-pre-1.29", Warning, "kubeadm 1.29: system:masters only on super-admin.conf; admin.conf and apiserver-kubelet-client use kubeadm:cluster-admins, etcd clients no O";
    /// A SAN the inputs require is not covered.
    SanMissing = "san-missing", Error, "kubeadm GetAPIServerAltNames/GetEtcdAltNames; RFC 6125 6.4 name matching";
    /// The certificate has SANs the spec does not ask for.
    SanExtra = "san-extra", Info, "spec sans (extra names are allowed)";
    /// A CA's SANs differ from the spec (never used for name matching).
    CaSanMissing = "ca-san-missing", Info, "spec sans (kubeadm puts the CN in a CA's SAN; no TLS check uses it)";
    /// The certificate has expired.
    CertExpired = "cert-expired", Error, "RFC 5280 4.1.2.5: not valid after notAfter";
    /// The certificate is not valid yet.
    CertNotYetValid = "cert-not-yet-valid", Error, "RFC 5280 4.1.2.5: not valid before notBefore";
    /// The certificate expires within `--warn-within`.
    CertExpiring = "cert-expiring", Warning, "kubeadm: certs renew before expiry (kpki policy: --warn-within, default 720h)";
    /// The certificate expires after its CA.
    CertOutlivesCa = "cert-outlives-ca", Warning, "RFC 5280 6.1.3(a)(2): the chain is invalid once the CA expires";
    /// The key algorithm differs from the spec.
    KeyAlgorithmMismatch = "key-algorithm-mismatch", Warning, "spec key_algorithm / kubeadm encryptionAlgorithm";
    /// The key algorithm or size is not one kubeadm supports.
    KeyAlgorithmUnsupported = "key-algorithm-unsupported", Error, "kubeadm encryptionAlgorithm: RSA-2048/3072/4096, ECDSA-P256/P384";
    /// The serial number is negative (Go 1.23+ refuses to parse it).
    SerialNegative = "serial-negative", Error, "RFC 5280 4.1.2.2: serial MUST be positive; Go 1.23 x509 rejects negative serials";
    /// The serial number is zero or longer than 20 octets.
    SerialNonconforming = "serial-nonconforming", Warning, "RFC 5280 4.1.2.2: positive, at most 20 octets";
    /// No Subject Key Identifier.
    SkiMissing = "ski-missing", Warning, "RFC 5280 4.2.1.2: MUST on CAs, SHOULD on end entities";
    /// No Authority Key Identifier on a certificate that is not self-signed.
    AkiMissing = "aki-missing", Warning, "RFC 5280 4.2.1.1: MUST except on self-signed CAs";
    /// A CA certificate is not self-signed (an intermediate); its issuer is not checked.
    CaNotSelfSigned = "ca-not-self-signed", Info, "kubeadm supports intermediate CAs; the parent is outside the tree";
    /// The CA's key is absent: external CA mode.
    ExternalCa = "external-ca", Info, "kubeadm UsingExternalCA: CA certificate without key";
    /// The certificate could not be chain-checked because its CA has a problem.
    ChainUnchecked = "chain-unchecked", Info, "reported on the CA instead";
    /// A private key (or kubeconfig holding one) is accessible by group or others.
    KeyModeInsecure = "key-mode-insecure", Error, "kubeadm writes keys and kubeconfigs 0600 (spec key_mode / kubeconfig_mode)";
    /// A certificate is writable by group or others.
    CertModeWritable = "cert-mode-writable", Warning, "kubeadm writes certificates 0644 (spec cert_mode)";
    /// A kubeconfig is not valid YAML or its embedded data does not decode.
    KubeconfigInvalid = "kubeconfig-invalid", Error, "client-go clientcmd v1 Config";
    /// A kubeconfig's current context does not resolve to a cluster and a user.
    KubeconfigContextUnresolved = "kubeconfig-context-unresolved", Error, "kubeadm validateKubeConfig: current context must resolve";
    /// A kubeconfig's CA is not the tree's CA.
    KubeconfigCaMismatch = "kubeconfig-ca-mismatch", Error, "kubeadm validateKubeConfig: certificate-authority-data must equal ca.crt";
    /// A kubeconfig's CA is referenced by path, not embedded.
    KubeconfigCaByReference = "kubeconfig-ca-by-reference", Info, "client-go certificate-authority (file); not compared";
    /// A kubeconfig's server URL differs from the inputs.
    KubeconfigServerMismatch = "kubeconfig-server-mismatch", Warning, "kubeadm validateKubeConfig: a different server URL only warns";
    /// A kubeconfig has no client certificate and key.
    KubeconfigNoClientCert = "kubeconfig-no-client-cert", Error, "kubeadm kubeconfigs embed client-certificate-data and client-key-data";
    /// A kubeconfig references its client certificate by path (e.g. kubelet rotation).
    KubeconfigCertByReference = "kubeconfig-cert-by-reference", Info, "client-go client-certificate (file), e.g. kubelet-client-current.pem";
}

impl Code {
    fn row(self) -> Option<&'static (Code, &'static str, Severity, &'static str)> {
        CODES.iter().find(|r| r.0 == self)
    }

    /// The stable code string (`san-missing`).
    pub fn as_str(self) -> &'static str {
        self.row().map(|r| r.1).unwrap_or("unknown")
    }

    /// The severity every finding with this code has.
    pub fn severity(self) -> Severity {
        self.row().map(|r| r.2).unwrap_or(Severity::Error)
    }

    /// The rule the code enforces (RFC section, kubeadm behaviour or kpki policy).
    pub fn rule(self) -> &'static str {
        self.row().map(|r| r.3).unwrap_or("")
    }

    /// Looks a code up by its string.
    pub fn parse(s: &str) -> Option<Code> {
        CODES.iter().find(|r| r.1 == s).map(|r| r.0)
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Code::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown code {s:?}")))
    }
}

/// One problem (or fact) about one file of one entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    /// Stable code.
    pub code: Code,
    /// Severity (always the code's).
    pub severity: Severity,
    /// Spec entry name.
    pub entry: String,
    /// The file the finding is about.
    pub path: String,
    /// What is wrong, in words.
    pub message: String,
    /// How to fix it (empty when there is nothing to do).
    pub fix: String,
}

/// Counts per severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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

/// The whole audit (`kpki/v1alpha1` `VerifyReport`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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

/// What the caller wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Certificates expiring within this are warnings (`--warn-within`).
    pub warn_within: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            warn_within: DEFAULT_WARN_WITHIN,
        }
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

/// The state of a CA for the entries it signs.
#[derive(Debug, Clone)]
enum CaState {
    /// Certificate readable (a problem may still be reported on the CA).
    Usable {
        der: Vec<u8>,
        info: Box<CertInfo>,
        external: bool,
    },
    /// Missing or unreadable: dependants are not chain-checked.
    Unusable,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ca,
    Leaf,
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
}

impl<'a> Expect<'a> {
    /// What the spec expects of a `.crt`/`.key` entry.
    fn of(c: &'a CertEntry, kind: Kind) -> Expect<'a> {
        Expect {
            entry: &c.name,
            path: &c.cert_path,
            profile: &c.profile,
            algorithm: c.algorithm,
            kind,
            ca: c.ca.as_deref(),
        }
    }
}

struct Verifier<'a> {
    now: OffsetDateTime,
    opts: &'a Options,
    cas: HashMap<String, CaState>,
    findings: Vec<Finding>,
}

fn disp(p: &Path) -> String {
    p.display().to_string()
}

fn classify_read_error(m: &str) -> Code {
    if m.contains("os error") || m.contains("is a directory") {
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

fn unix(t: OffsetDateTime) -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(t.unix_timestamp()).unwrap_or(0),
    ))
}

/// Accepts any (or no) extended key usage: chain and signature only.
struct AnyPurpose;

impl webpki::ExtendedKeyUsageValidator for AnyPurpose {
    fn validate(
        &self,
        _iter: webpki::KeyPurposeIdIter<'_, '_>,
    ) -> std::result::Result<(), webpki::Error> {
        Ok(())
    }
}

/// rustls-webpki's verdict on `leaf` with `ca` as the only trust anchor at `at`.
fn webpki_check(
    leaf: &[u8],
    ca: &[u8],
    at: OffsetDateTime,
    usage: Option<&str>,
) -> std::result::Result<(), webpki::Error> {
    let ca_der = CertificateDer::from(ca);
    let anchor = webpki::anchor_from_trusted_cert(&ca_der)?;
    let anchors = [anchor];
    let leaf_der = CertificateDer::from(leaf);
    let ee = webpki::EndEntityCert::try_from(&leaf_der)?;
    let algs = webpki::ALL_VERIFICATION_ALGS;
    let r = match usage {
        Some("server_auth") => ee.verify_for_usage(
            algs,
            &anchors,
            &[],
            unix(at),
            webpki::KeyUsage::server_auth(),
            None,
            None,
        ),
        Some("client_auth") => ee.verify_for_usage(
            algs,
            &anchors,
            &[],
            unix(at),
            webpki::KeyUsage::client_auth(),
            None,
            None,
        ),
        _ => ee.verify_for_usage(algs, &anchors, &[], unix(at), AnyPurpose, None, None),
    };
    r.map(|_| ())
}

fn fmt_time(t: OffsetDateTime) -> String {
    crate::plan::fmt_time(t)
}

impl Verifier<'_> {
    fn push(
        &mut self,
        code: Code,
        entry: &str,
        path: &Path,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.findings.push(Finding {
            code,
            severity: code.severity(),
            entry: entry.to_string(),
            path: disp(path),
            message: message.into(),
            fix: fix.into(),
        });
    }

    fn has(&self, entry: &str, code: Code) -> bool {
        self.findings
            .iter()
            .any(|f| f.entry == entry && f.code == code)
    }

    fn ca_external(&self, ca: Option<&str>) -> bool {
        ca.and_then(|n| self.cas.get(n))
            .is_some_and(|s| matches!(s, CaState::Usable { external: true, .. }))
    }

    /// How to get a fresh certificate for an entry.
    fn reissue_fix(&self, x: &Expect<'_>) -> String {
        match x.kind {
            Kind::Ca => format!(
                "kpki never replaces a CA: fix or restore {} from a backup, or rotate the CA (every certificate it signed must then be re-issued)",
                disp(x.path)
            ),
            _ if self.ca_external(x.ca) => format!(
                "have the external CA {} issue it again (`kpki certs generate-csr {}` makes the request)",
                x.ca.unwrap_or(""),
                x.entry
            ),
            _ => format!("run `kpki certs renew {}`", x.entry),
        }
    }

    fn check_key_mode(&mut self, entry: &str, path: &Path, mode: u32) {
        if mode & 0o077 != 0 {
            self.push(
                Code::KeyModeInsecure,
                entry,
                path,
                format!("holds a private key but has mode {mode:04o} (group/others can access it)"),
                format!("chmod 600 {}", disp(path)),
            );
        }
    }

    fn check_cert_mode(&mut self, entry: &str, path: &Path, mode: u32) {
        if mode & 0o022 != 0 {
            self.push(
                Code::CertModeWritable,
                entry,
                path,
                format!("has mode {mode:04o}: group/others can replace the certificate"),
                format!("chmod 644 {}", disp(path)),
            );
        }
    }

    /// Every field check on one certificate; returns its facts when it parses.
    fn check_cert(&mut self, x: &Expect<'_>, der: &[u8]) -> Option<CertInfo> {
        let fix = self.reissue_fix(x);
        let info = match inspect::info(der) {
            Ok(i) => i,
            Err(m) => {
                self.push(Code::PemInvalid, x.entry, x.path, m, fix);
                return None;
            }
        };
        let is_ca = x.kind == Kind::Ca;

        // Key algorithm and size.
        let actual_alg = match algorithm_of_spki(&info.spki) {
            Ok(a) => {
                if a != x.algorithm {
                    self.push(
                        Code::KeyAlgorithmMismatch,
                        x.entry,
                        x.path,
                        format!("has a {a} key; the spec asks for {}", x.algorithm),
                        if is_ca { String::new() } else { fix.clone() },
                    );
                }
                Some(a)
            }
            Err(m) => {
                self.push(
                    Code::KeyAlgorithmUnsupported,
                    x.entry,
                    x.path,
                    m,
                    fix.clone(),
                );
                None
            }
        };
        let ec = actual_alg.unwrap_or(x.algorithm).is_ec();

        // basicConstraints.
        if is_ca && !info.is_ca {
            self.push(
                Code::CaNotCa,
                x.entry,
                x.path,
                "is not a CA certificate (basicConstraints CA:TRUE missing)",
                fix.clone(),
            );
        }
        if !is_ca && info.is_ca {
            self.push(
                Code::LeafIsCa,
                x.entry,
                x.path,
                "is a leaf but asserts basicConstraints CA:TRUE",
                fix.clone(),
            );
        }

        // Key usage.
        let want_ku: Vec<String> = effective_key_usages(&x.profile.key_usages, ec);
        let want = set(&want_ku);
        let have = set(&info.key_usages);
        let enc: BTreeSet<&str> = ["key_encipherment", "data_encipherment"].into();
        if ec && have.iter().any(|u| enc.contains(u)) {
            self.push(
                Code::KuKeyEnciphermentEcdsa,
                x.entry,
                x.path,
                "has keyEncipherment/dataEncipherment on an ECDSA key (an ECDSA key cannot encipher)",
                fix.clone(),
            );
        }
        let ignore_extra = |u: &&str| ec && enc.contains(u);
        if is_ca {
            if !have.contains("key_cert_sign") {
                self.push(
                    Code::CaNoKeyCertSign,
                    x.entry,
                    x.path,
                    "is a CA without the keyCertSign key usage",
                    fix.clone(),
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
                self.push(
                    Code::CaKuDiffers,
                    x.entry,
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
                self.push(
                    Code::LeafHasKeyCertSign,
                    x.entry,
                    x.path,
                    "is a leaf with the keyCertSign key usage",
                    fix.clone(),
                );
            }
            let missing: BTreeSet<&str> = want.difference(&have).copied().collect();
            if !missing.is_empty() {
                self.push(
                    Code::KuMissing,
                    x.entry,
                    x.path,
                    format!("lacks key usage(s) {}", list(&missing)),
                    fix.clone(),
                );
            }
            let extra: BTreeSet<&str> = have
                .difference(&want)
                .copied()
                .filter(|u| *u != "key_cert_sign" && !ignore_extra(u))
                .collect();
            if !extra.is_empty() {
                self.push(
                    Code::KuExtra,
                    x.entry,
                    x.path,
                    format!(
                        "has key usage(s) the spec does not ask for: {}",
                        list(&extra)
                    ),
                    fix.clone(),
                );
            }
        }

        // Extended key usage.
        let want_eku = set(&x.profile.ext_key_usages);
        let have_eku = set(&info.ext_key_usages);
        let missing: BTreeSet<&str> = want_eku.difference(&have_eku).copied().collect();
        if !missing.is_empty() {
            self.push(
                Code::EkuMissing,
                x.entry,
                x.path,
                format!("lacks extended key usage(s) {}", list(&missing)),
                fix.clone(),
            );
        }
        let extra: BTreeSet<&str> = have_eku.difference(&want_eku).copied().collect();
        if !extra.is_empty() {
            self.push(
                Code::EkuExtra,
                x.entry,
                x.path,
                format!(
                    "has extended key usage(s) the spec does not ask for: {}",
                    list(&extra)
                ),
                fix.clone(),
            );
        }

        // Subject.
        if info.cn != [x.profile.cn.clone()] {
            self.push(
                Code::SubjectCnMismatch,
                x.entry,
                x.path,
                format!(
                    "has subject CN {:?}; the spec asks for {:?}",
                    info.cn.join(", "),
                    x.profile.cn
                ),
                fix.clone(),
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
                self.push(
                    Code::SubjectOPre129,
                    x.entry,
                    x.path,
                    format!(
                        "has O=system:masters as kubeadm < 1.29 wrote it; since 1.29 only super-admin.conf is in system:masters and this entry has {want_text}"
                    ),
                    fix.clone(),
                );
            } else {
                self.push(
                    Code::SubjectOMismatch,
                    x.entry,
                    x.path,
                    format!("has O=[{}]; the spec asks for {want_text}", list(&have_o)),
                    fix.clone(),
                );
            }
        }

        // SANs.
        let missing = inspect::missing_sans(&info, &x.profile.dns, &x.profile.ips);
        if !missing.is_empty() {
            let (code, f) = if is_ca {
                (Code::CaSanMissing, String::new())
            } else {
                (Code::SanMissing, fix.clone())
            };
            self.push(
                code,
                x.entry,
                x.path,
                format!("does not cover the expected SAN(s) {}", missing.join(", ")),
                f,
            );
        }
        let extra = inspect::extra_sans(&info, &x.profile.dns, &x.profile.ips);
        if !extra.is_empty() {
            self.push(
                Code::SanExtra,
                x.entry,
                x.path,
                format!("has SAN(s) the spec does not ask for: {}", extra.join(", ")),
                "",
            );
        }

        // Validity.
        if self.now > info.not_after {
            self.push(
                Code::CertExpired,
                x.entry,
                x.path,
                format!("expired on {}", fmt_time(info.not_after)),
                fix.clone(),
            );
        } else if self.now < info.not_before {
            self.push(
                Code::CertNotYetValid,
                x.entry,
                x.path,
                format!(
                    "is not valid before {} (clock skew, or issued with a future start)",
                    fmt_time(info.not_before)
                ),
                fix.clone(),
            );
        } else if info.not_after - self.now <= self.opts.warn_within {
            self.push(
                Code::CertExpiring,
                x.entry,
                x.path,
                format!(
                    "expires on {} (within {})",
                    fmt_time(info.not_after),
                    crate::inputs::duration::format_go_duration(self.opts.warn_within)
                ),
                fix.clone(),
            );
        }
        if let Some(CaState::Usable { info: ca, .. }) = x.ca.and_then(|n| self.cas.get(n)) {
            if info.not_after > ca.not_after && self.now <= ca.not_after {
                let ca_name = x.ca.unwrap_or("");
                self.push(
                    Code::CertOutlivesCa,
                    x.entry,
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

        // Serial number.
        let serial = &info.serial;
        if serial.iter().all(|b| *b == 0) {
            self.push(
                Code::SerialNonconforming,
                x.entry,
                x.path,
                "has serial number 0",
                fix.clone(),
            );
        } else if serial.first().is_some_and(|b| b & 0x80 != 0) {
            self.push(
                Code::SerialNegative,
                x.entry,
                x.path,
                "has a negative serial number (Go 1.23+ refuses to parse it)",
                fix.clone(),
            );
        } else if serial.len() > 20 {
            self.push(
                Code::SerialNonconforming,
                x.entry,
                x.path,
                format!("has a {}-octet serial number (at most 20)", serial.len()),
                fix.clone(),
            );
        }

        // Key identifiers.
        let self_issued = info.issuer_raw == info.subject_raw;
        if info.ski.is_none() {
            self.push(
                Code::SkiMissing,
                x.entry,
                x.path,
                "has no Subject Key Identifier",
                fix.clone(),
            );
        }
        if info.aki.is_none() && !self_issued {
            self.push(
                Code::AkiMissing,
                x.entry,
                x.path,
                "has no Authority Key Identifier",
                fix.clone(),
            );
        }

        // Chain.
        match x.kind {
            Kind::Ca => self.check_ca_chain(x, der, &info, self_issued),
            Kind::Leaf | Kind::Kubeconfig => self.check_leaf_chain(x, der, &info),
        }
        Some(info)
    }

    fn check_ca_chain(&mut self, x: &Expect<'_>, der: &[u8], info: &CertInfo, self_issued: bool) {
        let fix = self.reissue_fix(x);
        match x.ca {
            None if self_issued => {
                if let Err(m) = inspect::signed_by(der, der) {
                    self.push(
                        Code::ChainInvalid,
                        x.entry,
                        x.path,
                        format!("is not validly self-signed: {m}"),
                        fix,
                    );
                }
            }
            None => self.push(
                Code::CaNotSelfSigned,
                x.entry,
                x.path,
                format!(
                    "is an intermediate CA (subject {}); its issuer is outside the tree and not checked",
                    info.subject
                ),
                "",
            ),
            Some(parent) => match self.cas.get(parent).cloned() {
                Some(CaState::Usable { der: pder, .. }) => {
                    if let Err(m) = inspect::signed_by(der, &pder) {
                        self.push(
                            Code::ChainInvalid,
                            x.entry,
                            x.path,
                            format!("is not signed by CA {parent}: {m}"),
                            fix,
                        );
                    }
                }
                _ => self.push(
                    Code::ChainUnchecked,
                    x.entry,
                    x.path,
                    format!("not chain-checked: its CA {parent} is missing or unreadable"),
                    "",
                ),
            },
        }
    }

    /// The chain and usage check with rustls-webpki. Every rejection becomes an error finding:
    /// either one of the field checks already explains it, or `tls-rejected` is added.
    fn check_leaf_chain(&mut self, x: &Expect<'_>, der: &[u8], info: &CertInfo) {
        let fix = self.reissue_fix(x);
        let ca_name = x.ca.unwrap_or("");
        let ca_der = match x.ca.and_then(|n| self.cas.get(n)) {
            Some(CaState::Usable { der, .. }) => der.clone(),
            _ => {
                self.push(
                    Code::ChainUnchecked,
                    x.entry,
                    x.path,
                    format!("not chain-checked: its CA {ca_name} is missing or unreadable"),
                    "",
                );
                return;
            }
        };
        let explained = |v: &Self, code: Code| v.has(x.entry, code);
        let mut at = self.now;
        let mut r = webpki_check(der, &ca_der, at, None);
        if let Err(
            e @ (webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. }),
        ) = &r
        {
            let code = if matches!(e, webpki::Error::CertExpired { .. }) {
                Code::CertExpired
            } else {
                Code::CertNotYetValid
            };
            if !explained(self, code) {
                self.push(
                    Code::TlsRejected,
                    x.entry,
                    x.path,
                    format!("rustls-webpki rejects it at {}: {e}", fmt_time(at)),
                    fix.clone(),
                );
            }
            // Still check the chain, inside the certificate's validity.
            at = info.not_before;
            r = webpki_check(der, &ca_der, at, None);
        }
        match r {
            Ok(()) => {
                for usage in x
                    .profile
                    .ext_key_usages
                    .iter()
                    .filter(|u| *u == "server_auth" || *u == "client_auth")
                {
                    match webpki_check(der, &ca_der, at, Some(usage)) {
                        Ok(()) => {}
                        Err(webpki::Error::RequiredEkuNotFoundContext(_))
                            if explained(self, Code::EkuMissing) => {}
                        Err(e) => self.push(
                            Code::TlsRejected,
                            x.entry,
                            x.path,
                            format!("rustls-webpki rejects it for {usage}: {e}"),
                            fix.clone(),
                        ),
                    }
                }
            }
            Err(webpki::Error::CaUsedAsEndEntity) => {
                if !explained(self, Code::LeafIsCa) {
                    self.push(
                        Code::TlsRejected,
                        x.entry,
                        x.path,
                        "rustls-webpki rejects a CA certificate as an end entity",
                        fix.clone(),
                    );
                }
                if let Err(m) = inspect::signed_by(der, &ca_der) {
                    self.push(
                        Code::ChainInvalid,
                        x.entry,
                        x.path,
                        format!("is not signed by CA {ca_name}: {m}"),
                        fix,
                    );
                }
            }
            Err(
                e @ (webpki::Error::UnknownIssuer
                | webpki::Error::InvalidSignatureForPublicKey
                | webpki::Error::SignatureAlgorithmMismatch),
            ) => {
                let why = inspect::signed_by(der, &ca_der)
                    .err()
                    .unwrap_or_else(|| format!("rustls-webpki: {e}"));
                self.push(
                    Code::ChainInvalid,
                    x.entry,
                    x.path,
                    format!("does not chain to CA {ca_name}: {why}"),
                    fix,
                );
            }
            Err(e) => self.push(
                Code::TlsRejected,
                x.entry,
                x.path,
                format!("rustls-webpki rejects it with CA {ca_name} as trust anchor: {e}"),
                fix,
            ),
        }
    }

    fn ca(
        &mut self,
        c: &CertEntry,
        cert: &Observed<crate::disk::read::CertFile>,
        key: &Observed<std::sync::Arc<crate::disk::read::KeyFile>>,
    ) {
        let x = Expect::of(c, Kind::Ca);
        let fix = self.reissue_fix(&x);
        let state = match cert {
            Observed::Missing => {
                let message = if key.exists() {
                    "is missing (its key exists)"
                } else {
                    "is missing, and so is its key"
                };
                let f = if key.exists() {
                    "restore the CA certificate from a backup (`kpki init` can issue a new certificate for the existing key, which changes the trust anchor)".to_string()
                } else {
                    "run `kpki init` to create the tree".to_string()
                };
                self.push(Code::FileMissing, &c.name, &c.cert_path, message, f);
                CaState::Unusable
            }
            Observed::Invalid(m) => {
                self.push(
                    classify_read_error(m),
                    &c.name,
                    &c.cert_path,
                    m.clone(),
                    fix.clone(),
                );
                CaState::Unusable
            }
            Observed::Present(cf) => {
                self.check_cert_mode(&c.name, &c.cert_path, cf.mode);
                match self.check_cert(&x, &cf.der) {
                    Some(info) => CaState::Usable {
                        der: cf.der.clone(),
                        info: Box::new(info),
                        external: matches!(key, Observed::Missing),
                    },
                    None => CaState::Unusable,
                }
            }
        };
        match key {
            Observed::Missing => {
                if let CaState::Usable { .. } = state {
                    self.push(
                        Code::ExternalCa,
                        &c.name,
                        &c.key_path,
                        format!(
                            "external CA mode: {} is absent, so the certificates it signs can be checked but not issued",
                            disp(&c.key_path)
                        ),
                        "",
                    );
                }
            }
            Observed::Invalid(m) => self.push(
                classify_read_error(m),
                &c.name,
                &c.key_path,
                m.clone(),
                fix.clone(),
            ),
            Observed::Present(kf) => {
                self.check_key_mode(&c.name, &c.key_path, kf.mode);
                if let CaState::Usable { info, .. } = &state {
                    if !kf.key.matches_spki(&info.spki) {
                        self.push(
                            Code::KeyMismatch,
                            &c.name,
                            &c.key_path,
                            format!("does not match {}", disp(&c.cert_path)),
                            fix,
                        );
                    }
                }
            }
        }
        self.cas.insert(c.name.clone(), state);
    }

    fn leaf(
        &mut self,
        c: &CertEntry,
        cert: &Observed<crate::disk::read::CertFile>,
        key: &Observed<std::sync::Arc<crate::disk::read::KeyFile>>,
    ) {
        let x = Expect::of(c, Kind::Leaf);
        let fix = self.reissue_fix(&x);
        let create_fix = if self.ca_external(x.ca) {
            fix.clone()
        } else {
            "run `kpki init` to create it".to_string()
        };
        let info = match cert {
            Observed::Missing => {
                let message = if key.exists() {
                    "is missing (its key exists)"
                } else {
                    "is missing, and so is its key"
                };
                self.push(
                    Code::FileMissing,
                    &c.name,
                    &c.cert_path,
                    message,
                    create_fix.clone(),
                );
                None
            }
            Observed::Invalid(m) => {
                self.push(
                    classify_read_error(m),
                    &c.name,
                    &c.cert_path,
                    m.clone(),
                    format!("remove it and {create_fix}"),
                );
                None
            }
            Observed::Present(cf) => {
                self.check_cert_mode(&c.name, &c.cert_path, cf.mode);
                self.check_cert(&x, &cf.der)
            }
        };
        match key {
            Observed::Missing => {
                if cert.exists() {
                    self.push(
                        Code::FileMissing,
                        &c.name,
                        &c.key_path,
                        format!("is missing while {} exists", disp(&c.cert_path)),
                        fix,
                    );
                }
            }
            Observed::Invalid(m) => {
                self.push(classify_read_error(m), &c.name, &c.key_path, m.clone(), fix)
            }
            Observed::Present(kf) => {
                self.check_key_mode(&c.name, &c.key_path, kf.mode);
                if let Some(info) = info {
                    if !kf.key.matches_spki(&info.spki) {
                        self.push(
                            Code::KeyMismatch,
                            &c.name,
                            &c.key_path,
                            format!("does not match {}", disp(&c.cert_path)),
                            fix,
                        );
                    }
                }
            }
        }
    }

    fn keypair(
        &mut self,
        k: &KeyPairEntry,
        key: &Observed<std::sync::Arc<crate::disk::read::KeyFile>>,
        public: &Observed<(Vec<u8>, u32)>,
    ) {
        let restore = format!(
            "restore {} from a backup (a new key invalidates every service-account token)",
            disp(&k.key_path)
        );
        let derive = format!(
            "remove {} and run `kpki init` to derive it from {}",
            disp(&k.pub_path),
            disp(&k.key_path)
        );
        let private: Option<&PrivateKey> = match key {
            Observed::Missing => {
                let (msg, fix) = if public.exists() {
                    ("is missing but its public key exists", restore.clone())
                } else {
                    (
                        "is missing, and so is its public key",
                        "run `kpki init` to create it".to_string(),
                    )
                };
                self.push(Code::FileMissing, &k.name, &k.key_path, msg, fix);
                None
            }
            Observed::Invalid(m) => {
                self.push(
                    classify_read_error(m),
                    &k.name,
                    &k.key_path,
                    m.clone(),
                    restore,
                );
                None
            }
            Observed::Present(kf) => {
                self.check_key_mode(&k.name, &k.key_path, kf.mode);
                if kf.key.algorithm() != k.algorithm {
                    self.push(
                        Code::KeyAlgorithmMismatch,
                        &k.name,
                        &k.key_path,
                        format!(
                            "is a {} key; the spec asks for {} (changing it invalidates every service-account token)",
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
                if key.exists() {
                    self.push(
                        Code::FileMissing,
                        &k.name,
                        &k.pub_path,
                        "is missing",
                        "run `kpki init` to derive it from the private key",
                    );
                }
            }
            Observed::Invalid(m) => self.push(
                classify_read_error(m),
                &k.name,
                &k.pub_path,
                m.clone(),
                derive,
            ),
            Observed::Present((spki, _)) => {
                if let Some(pk) = private {
                    if !pk.matches_spki(spki) {
                        self.push(
                            Code::KeyMismatch,
                            &k.name,
                            &k.pub_path,
                            format!("does not match {}", disp(&k.key_path)),
                            derive,
                        );
                    }
                }
            }
        }
    }

    fn kubeconfig(&mut self, k: &KubeconfigEntry, obs: &Observed<KubeconfigFile>) {
        let x = Expect {
            entry: &k.name,
            path: &k.path,
            profile: &k.profile,
            algorithm: k.algorithm,
            kind: Kind::Kubeconfig,
            ca: Some(&k.ca),
        };
        let fix = self.reissue_fix(&x);
        let regen = if self.ca_external(x.ca) {
            fix.clone()
        } else {
            format!("remove {} and run `kpki init`", disp(&k.path))
        };
        let kc = match obs {
            Observed::Missing => {
                let f = if self.ca_external(x.ca) {
                    fix.clone()
                } else {
                    "run `kpki init` to create it".to_string()
                };
                self.push(Code::FileMissing, &k.name, &k.path, "is missing", f);
                return;
            }
            Observed::Invalid(m) => {
                let code = if m.contains("current-context") || m.starts_with("context ") {
                    Code::KubeconfigContextUnresolved
                } else if m.contains("os error") {
                    Code::FileUnreadable
                } else {
                    Code::KubeconfigInvalid
                };
                self.push(code, &k.name, &k.path, m.clone(), regen);
                return;
            }
            Observed::Present(kc) => kc,
        };
        self.check_key_mode(&k.name, &k.path, kc.mode);
        let cur = kc.config.current().ok();
        let user = cur.as_ref().and_then(|c| {
            kc.config
                .users
                .iter()
                .find(|u| u.name == c.user_name)
                .map(|u| &u.user)
        });
        let cluster = cur.as_ref().and_then(|c| {
            kc.config
                .clusters
                .iter()
                .find(|cl| cl.name == c.cluster_name)
                .map(|cl| &cl.cluster)
        });

        // The embedded CA must be the tree's CA.
        let tree_ca = match self.cas.get(&k.ca) {
            Some(CaState::Usable { der, .. }) => Some(der.clone()),
            _ => None,
        };
        match (&kc.ca_der, tree_ca) {
            (Some(embedded), Some(ca)) if *embedded != ca => self.push(
                Code::KubeconfigCaMismatch,
                &k.name,
                &k.path,
                format!(
                    "its certificate-authority-data is not CA {} ({})",
                    k.ca,
                    inspect::info(embedded)
                        .map(|i| format!("it embeds {}", i.subject))
                        .unwrap_or_else(|m| m)
                ),
                format!(
                    "run `kpki certs renew {}` (it rewrites the embedded CA)",
                    k.name
                ),
            ),
            (Some(_), _) => {}
            (None, _) => {
                if let Some(path) = cluster.and_then(|c| c.certificate_authority.as_ref()) {
                    self.push(
                        Code::KubeconfigCaByReference,
                        &k.name,
                        &k.path,
                        format!(
                            "references its CA by path ({path}); not compared with CA {}",
                            k.ca
                        ),
                        "",
                    );
                } else {
                    self.push(
                        Code::KubeconfigCaMismatch,
                        &k.name,
                        &k.path,
                        "embeds no certificate-authority-data",
                        format!(
                            "run `kpki certs renew {}` (it rewrites the embedded CA)",
                            k.name
                        ),
                    );
                }
            }
        }

        if kc.server != k.server {
            self.push(
                Code::KubeconfigServerMismatch,
                &k.name,
                &k.path,
                format!("has server {}; the inputs give {}", kc.server, k.server),
                format!(
                    "set the cluster's server to {} (or check the inputs)",
                    k.server
                ),
            );
        }

        let by_ref_cert = user.and_then(|u| u.client_certificate.clone());
        let by_ref_key = user.and_then(|u| u.client_key.clone());
        let info = match &kc.cert_der {
            Some(der) => self.check_cert(&x, der),
            None => {
                match by_ref_cert {
                    Some(p) => self.push(
                        Code::KubeconfigCertByReference,
                        &k.name,
                        &k.path,
                        format!("references its client certificate by path ({p}); not checked"),
                        "",
                    ),
                    None => self.push(
                        Code::KubeconfigNoClientCert,
                        &k.name,
                        &k.path,
                        "has no client-certificate-data for its current user",
                        regen.clone(),
                    ),
                }
                None
            }
        };
        match (&kc.key, info) {
            (Some(key), Some(info)) if !key.matches_spki(&info.spki) => {
                self.push(
                    Code::KeyMismatch,
                    &k.name,
                    &k.path,
                    "client-key-data does not match client-certificate-data",
                    fix,
                );
            }
            (None, Some(_)) => match by_ref_key {
                Some(p) => self.push(
                    Code::KubeconfigCertByReference,
                    &k.name,
                    &k.path,
                    format!("references its client key by path ({p}); not checked"),
                    "",
                ),
                None => self.push(
                    Code::KubeconfigNoClientCert,
                    &k.name,
                    &k.path,
                    "has client-certificate-data but no client-key-data",
                    regen,
                ),
            },
            _ => {}
        }
    }
}

/// Audits every entry of `desired` against `disk` at `now`. Never fails: every problem is a
/// finding, in entry order (CAs first, as the entries are ordered).
pub fn verify(desired: &Desired, disk: &Disk, now: OffsetDateTime, opts: &Options) -> Report {
    let mut v = Verifier {
        now,
        opts,
        cas: HashMap::new(),
        findings: Vec::new(),
    };
    for e in &desired.entries {
        match (e, disk.entries.get(e.name())) {
            (Entry::Ca(c), Some(Seen::Cert { cert, key })) => v.ca(c, cert, key),
            (Entry::Leaf(c), Some(Seen::Cert { cert, key })) => v.leaf(c, cert, key),
            (Entry::KeyPair(k), Some(Seen::KeyPair { key, public })) => v.keypair(k, key, public),
            (Entry::Kubeconfig(k), Some(Seen::Kubeconfig(obs))) => v.kubeconfig(k, obs),
            (e, _) => v.push(
                Code::FileUnreadable,
                e.name(),
                e.main_path(),
                "internal: the disk was not observed for this entry",
                "",
            ),
        }
    }
    let count = |s: Severity| v.findings.iter().filter(|f| f.severity == s).count();
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
        summary,
        findings: v.findings,
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
            let clean = |s: &str| s.replace(['\t', '\n'], " ");
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

    #[test]
    fn codes_are_unique_and_documented() {
        let docs = include_str!("../../../../docs/findings.md");
        let mut seen = BTreeSet::new();
        for (code, name, sev, rule) in CODES {
            assert!(seen.insert(*name), "duplicate code {name}");
            assert_eq!(Code::parse(name), Some(*code));
            assert!(!rule.is_empty(), "{name} cites no rule");
            let row = format!("| `{name}` | {} |", sev.as_str());
            assert!(docs.contains(&row), "docs/findings.md lacks the row {row}");
        }
    }

    use crate::entropy::SystemEntropy;
    use crate::inputs::InputArgs;
    use crate::x509::issue::{issue, Issuance, Issuer};
    use crate::{Kpki, Run};
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-01-15 12:00 UTC);

    fn fresh_tree(dir: &Path) -> Kpki {
        let args = InputArgs {
            cert_dir: Some(dir.join("pki")),
            node_name: Some("cp-1".into()),
            advertise_address: Some("10.0.0.10".into()),
            encryption_algorithm: Some("ECDSA-P256".into()),
            ..Default::default()
        };
        let k = Kpki::new(None, &args).unwrap();
        let run = Run {
            now: T0,
            entropy: &SystemEntropy,
            jobs: 0,
        };
        k.init(&crate::plan::Options::default(), &run, false)
            .unwrap();
        k
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
            .filter(|f| f.code == Code::CertExpiring)
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
        let foreign_key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let when = Issuance {
            not_before: T0 - Duration::days(30),
            not_after: T0 - Duration::days(1),
            serial: 42,
        };
        let foreign = issue(&ca.profile, &foreign_key, None, when).unwrap();
        let key = crate::disk::read::read_key(&api.key_path);
        let Observed::Present(kf) = key else {
            panic!("key")
        };
        let der = issue(
            &api.profile,
            &kf.key,
            Some(Issuer {
                cert_der: &foreign,
                key: &foreign_key,
            }),
            when,
        )
        .unwrap();
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
