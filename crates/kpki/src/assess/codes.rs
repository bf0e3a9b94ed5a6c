//! Finding codes: the vocabulary of the one assessment. Every code has a fixed severity and
//! cites the rule it enforces (RFC section, kubeadm behaviour or kpki policy); each finding also
//! says how it can be remedied, which is what `plan` acts on. Documented in `docs/findings.md`
//! (a test keeps the two in step).

use serde::{Deserialize, Serialize};

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

/// How a finding can be remedied: what `plan` does about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Remedy {
    /// Issuing the entry again from the spec cures it (`init --regenerate-drifted`, `certs renew`).
    Reissue,
    /// kpki repairs it in place without re-issuing (a file mode).
    Repair,
    /// Only the operator can: restore a file, rotate a CA, correct an input.
    Manual,
    /// Nothing to do (information, or a warning no action of kpki's would cure).
    None,
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
    KeyAlgorithmMismatch = "key-algorithm-mismatch", Error, "spec key_algorithm / kubeadm encryptionAlgorithm: a leaf is issued with the algorithm the inputs ask for";
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
    /// A CA's subject differs from the spec's (a CA brought by the operator may name itself).
    CaSubjectDiffers = "ca-subject-differs", Info, "kubeadm accepts any CA subject (UsingExternalCA, bring-your-own CA); leaves take the CA's subject bytes as their issuer";
    /// A certificate exists but its CA's certificate does not, so it cannot chain to the tree.
    CaAbsent = "ca-absent", Error, "RFC 5280 6.1: a certificate is only valid under its issuer; a newly made CA would not have signed it";
    /// A CA's key algorithm differs from the inputs (new leaves would get another algorithm).
    CaKeyAlgorithmDiffers = "ca-key-algorithm-differs", Warning, "kubeadm encryptionAlgorithm applies to new keys; a CA or key pair keeps its key until rotated";
    /// A kubeconfig's user or context name does not match its client certificate's CN.
    KubeconfigUserMismatch = "kubeconfig-user-mismatch", Warning, "kubeadm names the user after the CN and the context <user>@<cluster>; the names are local labels, the CN is the identity";
    /// A kubeconfig's credential file (referenced by path) is missing or unreadable.
    KubeconfigRefUnreadable = "kubeconfig-ref-unreadable", Error, "client-go reads client-certificate / client-key / certificate-authority files at start-up";
    /// A leaf uses the same key as a CA (or another entry).
    KeyReused = "key-reused", Error, "kpki policy: every certificate gets its own key; a leaf holding a CA key can sign certificates";
    /// An input given on the command line or in the config contradicts what the tree says.
    InputConflict = "input-conflict", Error, "kpki policy: an existing tree's identity (node name, endpoints) never changes silently";
    /// A subject CN longer than RFC 5280's upper bound of 64 characters.
    SubjectCnLong = "subject-cn-long", Warning, "RFC 5280 A.1 ub-common-name (64); Go, OpenSSL and rustls-webpki accept longer CNs, and long node names make long system:node: CNs";
    /// Two sources of an input disagree (e.g. two certificates name different nodes).
    InputDisagreement = "input-disagreement", Warning, "kpki policy: inputs discovered from the node and the tree must agree";
    /// A file of the manifests directory is not a usable static Pod manifest.
    ManifestInvalid = "manifest-invalid", Error, "kubelet static Pod source: every file of the manifests directory not starting with '.' must be a Pod manifest (YAML or JSON)";
    /// Two manifests start the same component (a backup left in the manifests directory).
    ManifestDuplicate = "manifest-duplicate", Warning, "kubelet static Pod source: every file of the directory is run, so a backup there starts a second copy";
    /// The kubelet configuration file cannot be read as a KubeletConfiguration.
    KubeletConfigInvalid = "kubelet-config-invalid", Error, "kubelet --config: a kubelet.config.k8s.io KubeletConfiguration (YAML or JSON)";
    /// A component is not given a file the spec's read_by column says it reads (or gets an empty value).
    WiringFlagAbsent = "wiring-flag-absent", Warning, "spec read_by (the Kubernetes documentation's certificate paths table): the component reads the file through this flag";
    /// A flag names a file that does not exist.
    WiringFileMissing = "wiring-file-missing", Error, "a component stops at start-up when a certificate, key or kubeconfig file it is given cannot be loaded";
    /// A flag names a file that is not of its kind (certificate, private key, public key, kubeconfig).
    WiringFileInvalid = "wiring-file-invalid", Error, "the flag's loader: PEM certificates (certutil), a PEM private key (keyutil), PEM public keys, a client-go kubeconfig";
    /// A key flag does not hold the key of its certificate, or a service-account public key does not match a signing key.
    WiringKeyMismatch = "wiring-key-mismatch", Error, "tls.X509KeyPair; kube-apiserver verifies service-account tokens with --service-account-key-file only";
    /// A CA flag does not hold the CA that signs the component's clients.
    WiringWrongCa = "wiring-wrong-ca", Error, "RFC 5280 6.1: a peer's certificate verifies only against the CA that signed it (spec read_by: the CA entry the flag reads)";
    /// A certificate flag's certificate is not signed by the CA the component's peers trust.
    WiringWrongIssuer = "wiring-wrong-issuer", Error, "RFC 5280 6.1: peers verify the certificate against the spec CA of the entry the flag reads";
    /// `--requestheader-allowed-names` does not contain the front-proxy client's CN.
    WiringAllowedNames = "wiring-allowed-names", Error, "kube-apiserver --requestheader-allowed-names: the proxy client's CN must be listed (empty allows any)";
    /// A serving certificate does not cover an address the component listens on or advertises.
    WiringSanMissing = "wiring-san-missing", Error, "RFC 6125 6.4 / Go crypto/tls: clients check the serving certificate against the address they dial";
    /// A kubeconfig a component uses does not trust the cluster CA (or its client certificate is not signed by it).
    WiringKubeconfigUntrusted = "wiring-kubeconfig-untrusted", Error, "kubeadm validateKubeConfig: certificate-authority-data must be the cluster CA, the client certificate signed by it";
    /// A flag names a file other than the tree's: kpki's renewals never reach it.
    WiringNotManaged = "wiring-not-managed", Warning, "kpki renews the tree's files in place; a component reading another file keeps the old certificate";
    /// The kubelet does not rotate its client certificate.
    KubeletRotationOff = "kubelet-rotation-off", Warning, "KubeletConfiguration rotateCertificates (default false; kubeadm sets true): without it kubelet.conf's certificate expires after a year";
    /// A CA (or the service-account key) is being rotated (`kpki ca rotate`): the phase.
    RotationInProgress = "rotation-in-progress", Info, "docs/rotation.md: the phase is read from the rotation folder, the live key and the live CA file";
    /// A rotation's `prepare` has not completed (the new or the archived old CA is missing).
    RotationIncomplete = "rotation-incomplete", Warning, "docs/rotation.md: prepare stages the new CA and archives the old one before anything live changes";
    /// The rotation folder and the live files form no phase of a rotation.
    RotationStateInvalid = "rotation-state-invalid", Error, "docs/rotation.md: a rotation's files must match one of its phases";
    /// A trust point lacks a CA (or public key) the rotation's phase requires.
    RotationTrustMissing = "rotation-trust-missing", Error, "Manual Rotation of CA Certificates: every trust point holds the old and the new CA before the new one signs";
    /// Trust points, signer copy or keys of one rotating CA are in different phases.
    RotationPhaseMixed = "rotation-phase-mixed", Error, "docs/rotation.md: a phase is complete only when every trust point and signer holds what it prescribes (signer first)";
    /// A certificate is signed by the rotating CA's old key where the phase wants the new one (or the reverse).
    RotationSignerUnexpected = "rotation-signer-unexpected", Error, "docs/rotation.md: the old CA signs until issue, the new CA from issue on; finish trusts only the new CA";
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
    /// What can cure it: re-issuing (`plan` regenerates), an in-place repair, or the operator.
    pub remedy: Remedy,
}
