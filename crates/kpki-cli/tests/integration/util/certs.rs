//! Certificates, keys and kubeconfigs as tools other than kpki read them: the tree kubeadm
//! writes, openssl checks (`openssl verify -x509_strict`, key matching), certificate facts read
//! with x509-parser, kubeconfigs read with kubectl, and whole-tree checks.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::net::IpAddr;
use std::path::Path;

use x509_parser::der_parser;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

use super::{mode, openssl, pem_labels, report, tool, tool_ok, write_file};

// ------------------------------------------------------------------ the tree kubeadm writes

/// CA base paths under the cert dir.
pub const CAS: &[&str] = &["ca", "front-proxy-ca", "etcd/ca"];

/// A leaf certificate of the default tree, as kubeadm lays it out.
pub struct Leaf {
    /// Base path under the cert dir (`.crt` / `.key`).
    pub path: &'static str,
    /// Base path of the signing CA.
    pub ca: &'static str,
    /// Used as a TLS server (openssl purpose sslserver).
    pub server: bool,
    /// Used as a TLS client (openssl purpose sslclient).
    pub client: bool,
}

/// Every leaf kubeadm writes with a local etcd.
pub const LEAVES: &[Leaf] = &[
    Leaf {
        path: "apiserver",
        ca: "ca",
        server: true,
        client: false,
    },
    Leaf {
        path: "apiserver-kubelet-client",
        ca: "ca",
        server: false,
        client: true,
    },
    Leaf {
        path: "front-proxy-client",
        ca: "front-proxy-ca",
        server: false,
        client: true,
    },
    Leaf {
        path: "etcd/server",
        ca: "etcd/ca",
        server: true,
        client: true,
    },
    Leaf {
        path: "etcd/peer",
        ca: "etcd/ca",
        server: true,
        client: true,
    },
    Leaf {
        path: "etcd/healthcheck-client",
        ca: "etcd/ca",
        server: false,
        client: true,
    },
    Leaf {
        path: "apiserver-etcd-client",
        ca: "etcd/ca",
        server: false,
        client: true,
    },
];

/// Kubeconfig files kubeadm 1.29+ writes (all signed by `ca`).
pub const KUBECONFIGS: &[&str] = &[
    "admin.conf",
    "super-admin.conf",
    "kubelet.conf",
    "controller-manager.conf",
    "scheduler.conf",
];

/// Every entry name of the default spec, in kubeadm's phase order.
pub const ENTRY_NAMES: &[&str] = &[
    "ca",
    "front-proxy-ca",
    "etcd-ca",
    "apiserver",
    "apiserver-kubelet-client",
    "front-proxy-client",
    "etcd-server",
    "etcd-peer",
    "etcd-healthcheck-client",
    "apiserver-etcd-client",
    "sa",
    "admin.conf",
    "super-admin.conf",
    "kubelet.conf",
    "controller-manager.conf",
    "scheduler.conf",
];

// ------------------------------------------------------------------ openssl checks

/// `openssl verify -x509_strict -CAfile ca -purpose p cert`: Ok or openssl's output.
pub fn verify(ca: &Path, cert: &Path, purpose: &str) -> Result<(), String> {
    let out = tool(
        "openssl",
        [
            OsStr::new("verify"),
            OsStr::new("-x509_strict"),
            OsStr::new("-CAfile"),
            ca.as_os_str(),
            OsStr::new("-purpose"),
            OsStr::new(purpose),
            cert.as_os_str(),
        ],
        None,
    );
    if out.status.success() {
        Ok(())
    } else {
        Err(report(
            &format!("openssl verify -purpose {purpose} {}", cert.display()),
            &out,
        ))
    }
}

/// Asserts that `cert` verifies against `ca` for `purpose`.
pub fn assert_verifies(ca: &Path, cert: &Path, purpose: &str) {
    if let Err(e) = verify(ca, cert, purpose) {
        panic!("{e}");
    }
}

/// The public key of a private key file, as openssl prints it (PEM SPKI).
pub fn pubkey_of_key(key: &Path) -> String {
    openssl([
        OsStr::new("pkey"),
        OsStr::new("-in"),
        key.as_os_str(),
        OsStr::new("-pubout"),
    ])
}

/// The public key of a certificate file, as openssl prints it (PEM SPKI).
pub fn pubkey_of_cert(cert: &Path) -> String {
    openssl([
        OsStr::new("x509"),
        OsStr::new("-in"),
        cert.as_os_str(),
        OsStr::new("-pubkey"),
        OsStr::new("-noout"),
    ])
}

/// Asserts that a private key belongs to a certificate.
pub fn assert_key_matches(key: &Path, cert: &Path) {
    assert_eq!(
        pubkey_of_key(key),
        pubkey_of_cert(cert),
        "{} does not match {}",
        key.display(),
        cert.display()
    );
}

/// Asserts that a `PUBLIC KEY` file is the public half of a private key.
pub fn assert_pub_matches(key: &Path, public: &Path) {
    let from_pub = openssl([
        OsStr::new("pkey"),
        OsStr::new("-pubin"),
        OsStr::new("-in"),
        public.as_os_str(),
        OsStr::new("-pubout"),
    ]);
    assert_eq!(
        pubkey_of_key(key),
        from_pub,
        "{} does not match {}",
        public.display(),
        key.display()
    );
}

/// The subject or issuer as `openssl x509 -nameopt RFC2253,show_type` prints it.
pub fn openssl_name(cert: &Path, which: &str) -> String {
    let out = openssl([
        OsStr::new("x509"),
        OsStr::new("-in"),
        cert.as_os_str(),
        OsStr::new("-noout"),
        OsStr::new(&format!("-{which}")),
        OsStr::new("-nameopt"),
        OsStr::new("RFC2253,show_type"),
    ]);
    out.trim()
        .strip_prefix(&format!("{which}="))
        .unwrap_or_else(|| panic!("unexpected openssl output {out:?}"))
        .to_string()
}

/// The named curve of an `EC PRIVATE KEY` file (`openssl ec -noout -text`: `ASN1 OID: ...`).
pub fn ec_curve(key: &Path) -> String {
    let text = openssl([
        OsStr::new("ec"),
        OsStr::new("-in"),
        key.as_os_str(),
        OsStr::new("-noout"),
        OsStr::new("-text"),
    ]);
    text.lines()
        .find_map(|l| l.trim().strip_prefix("ASN1 OID: "))
        .unwrap_or_else(|| panic!("no ASN1 OID in {}: {text}", key.display()))
        .to_string()
}

/// The RSA key size of a private key file (`openssl rsa -noout -text`).
pub fn rsa_bits(key: &Path) -> u32 {
    let text = openssl([
        OsStr::new("rsa"),
        OsStr::new("-in"),
        key.as_os_str(),
        OsStr::new("-noout"),
        OsStr::new("-text"),
    ]);
    let first = text.lines().next().unwrap_or_default();
    // "Private-Key: (2048 bit, 2 primes)"
    first
        .split_once('(')
        .and_then(|(_, r)| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "unexpected openssl rsa output for {}: {first}",
                key.display()
            )
        })
}

// ------------------------------------------------------------------ certificates

/// An IP address (SAN lists in assertions).
pub fn ip(s: &str) -> IpAddr {
    s.parse()
        .unwrap_or_else(|e| panic!("{s:?} is not an IP address: {e}"))
}

/// DER of the single CERTIFICATE block of PEM bytes (x509-parser's PEM reader).
pub fn der_of(pem: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(pem);
    let labels: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("-----BEGIN "))
        .collect();
    assert_eq!(labels, ["CERTIFICATE-----"], "not one CERTIFICATE block");
    let (_, p) = x509_parser::pem::parse_x509_pem(pem).unwrap_or_else(|e| panic!("bad PEM: {e:?}"));
    p.contents
}

/// DER of the single CERTIFICATE block of a PEM file.
pub fn cert_der(path: &Path) -> Vec<u8> {
    let labels = pem_labels(path);
    assert_eq!(labels, ["CERTIFICATE"], "{}", path.display());
    der_of(&std::fs::read(path).unwrap())
}

/// Key algorithm as kubeadm names it, from a SubjectPublicKeyInfo.
pub fn key_kind(cert: &X509Certificate<'_>) -> String {
    let spki = cert.public_key();
    match spki.parsed().unwrap() {
        PublicKey::RSA(rsa) => format!("RSA-{} e={}", rsa.key_size(), rsa.try_exponent().unwrap()),
        PublicKey::EC(_) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .unwrap_or_default();
            match curve.as_str() {
                "1.2.840.10045.3.1.7" => "ECDSA-P256".into(),
                "1.3.132.0.34" => "ECDSA-P384".into(),
                other => format!("EC curve {other}"),
            }
        }
        other => format!("{other:?}"),
    }
}

fn ext_name(oid: &str) -> String {
    match oid {
        "2.5.29.15" => "keyUsage".into(),
        "2.5.29.37" => "extKeyUsage".into(),
        "2.5.29.19" => "basicConstraints".into(),
        "2.5.29.14" => "subjectKeyIdentifier".into(),
        "2.5.29.35" => "authorityKeyIdentifier".into(),
        "2.5.29.17" => "subjectAltName".into(),
        other => other.into(),
    }
}

fn eku_name(oid: &str) -> String {
    match oid {
        "1.3.6.1.5.5.7.3.1" => "serverAuth".into(),
        "1.3.6.1.5.5.7.3.2" => "clientAuth".into(),
        other => other.into(),
    }
}

fn sig_name(oid: &str) -> String {
    match oid {
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption".into(),
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256".into(),
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384".into(),
        other => other.into(),
    }
}

/// Everything the tests compare about a certificate, read with x509-parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// Raw DER of the subject Name.
    pub subject_raw: Vec<u8>,
    /// Raw DER of the issuer Name.
    pub issuer_raw: Vec<u8>,
    /// Subject CNs.
    pub cn: Vec<String>,
    /// Subject O values.
    pub orgs: Vec<String>,
    /// X.509 version (2 = v3).
    pub version: u32,
    /// Serial bytes (big-endian, as encoded).
    pub serial: Vec<u8>,
    /// Signature algorithm name.
    pub signature: String,
    /// e.g. `RSA-2048 e=65537`, `ECDSA-P256`.
    pub key: String,
    /// `!`-prefixed when critical; e.g. `!digitalSignature,keyEncipherment`.
    pub key_usage: String,
    /// Key usage bits.
    pub key_usage_bits: Vec<String>,
    /// EKUs in encoded order, `!` prefix when critical.
    pub ext_key_usage: String,
    /// e.g. `!CA:TRUE`, `!CA:FALSE`, `!CA:TRUE,pathlen:0`.
    pub basic_constraints: String,
    /// DNS SANs in encoded order.
    pub dns: Vec<String>,
    /// IP SANs in encoded order.
    pub ips: Vec<IpAddr>,
    /// Extension names in encoded order, `!` prefix when critical.
    pub extensions: Vec<String>,
    /// NotBefore (Unix seconds).
    pub not_before: i64,
    /// NotAfter (Unix seconds).
    pub not_after: i64,
    /// SubjectPublicKeyInfo DER.
    pub spki: Vec<u8>,
}

impl Facts {
    /// DNS SANs as a set.
    pub fn dns_set(&self) -> BTreeSet<String> {
        self.dns.iter().cloned().collect()
    }

    /// IP SANs as a set.
    pub fn ip_set(&self) -> BTreeSet<IpAddr> {
        self.ips.iter().copied().collect()
    }

    /// Validity span in seconds.
    pub fn span(&self) -> i64 {
        self.not_after - self.not_before
    }

    /// Every SAN as `DNS:name` / `IP:address`, sorted (a multiset, order of encoding ignored).
    pub fn sans(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .dns
            .iter()
            .map(|d| format!("DNS:{d}"))
            .chain(self.ips.iter().map(|i| format!("IP:{i}")))
            .collect();
        v.sort();
        v
    }

    /// True when the extension (by name) is present.
    pub fn has_ext(&self, name: &str) -> bool {
        self.extensions
            .iter()
            .any(|e| e.trim_start_matches('!') == name)
    }
}

/// Reads the facts of a DER certificate.
pub fn facts_der(der: &[u8]) -> Facts {
    let (rest, cert) = X509Certificate::from_der(der).unwrap();
    assert!(rest.is_empty(), "trailing bytes after the certificate");
    let crit = |c: bool| if c { "!" } else { "" };
    let ku = cert.key_usage().unwrap();
    let mut key_usage_bits = Vec::new();
    if let Some(k) = &ku {
        let v = k.value;
        for (set, name) in [
            (v.digital_signature(), "digitalSignature"),
            (v.non_repudiation(), "nonRepudiation"),
            (v.key_encipherment(), "keyEncipherment"),
            (v.data_encipherment(), "dataEncipherment"),
            (v.key_agreement(), "keyAgreement"),
            (v.key_cert_sign(), "keyCertSign"),
            (v.crl_sign(), "cRLSign"),
            (v.encipher_only(), "encipherOnly"),
            (v.decipher_only(), "decipherOnly"),
        ] {
            if set {
                key_usage_bits.push(name.to_string());
            }
        }
    }
    let key_usage = ku
        .as_ref()
        .map(|k| format!("{}{}", crit(k.critical), key_usage_bits.join(",")))
        .unwrap_or_default();
    // EKU order is not kept by x509-parser's struct: read the raw SEQUENCE OF OID.
    let ext_key_usage = cert
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == "2.5.29.37")
        .map(|e| {
            let (_, obj) = der_parser::parse_der(e.value).unwrap();
            let names: Vec<String> = obj
                .as_sequence()
                .unwrap()
                .iter()
                .map(|o| eku_name(&o.as_oid().unwrap().to_id_string()))
                .collect();
            format!("{}{}", crit(e.critical), names.join(","))
        })
        .unwrap_or_default();
    let basic_constraints = cert
        .basic_constraints()
        .unwrap()
        .map(|b| {
            let mut s = format!(
                "{}CA:{}",
                crit(b.critical),
                if b.value.ca { "TRUE" } else { "FALSE" }
            );
            if let Some(p) = b.value.path_len_constraint {
                s.push_str(&format!(",pathlen:{p}"));
            }
            s
        })
        .unwrap_or_default();
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    for e in cert.extensions() {
        if let ParsedExtension::SubjectAlternativeName(san) = e.parsed_extension() {
            for g in &san.general_names {
                match g {
                    GeneralName::DNSName(d) => dns.push(d.to_string()),
                    GeneralName::IPAddress(b) => ips.push(match b.len() {
                        4 => IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()),
                        16 => IpAddr::from(<[u8; 16]>::try_from(*b).unwrap()),
                        n => panic!("IP SAN of {n} bytes"),
                    }),
                    other => panic!("unexpected SAN {other:?}"),
                }
            }
        }
    }
    let cn: Vec<String> = cert
        .subject()
        .iter_common_name()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let orgs: Vec<String> = cert
        .subject()
        .iter_organization()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    Facts {
        subject_raw: cert.subject().as_raw().to_vec(),
        issuer_raw: cert.issuer().as_raw().to_vec(),
        cn,
        orgs,
        version: cert.version().0,
        serial: cert.raw_serial().to_vec(),
        signature: sig_name(&cert.signature_algorithm.algorithm.to_id_string()),
        key: key_kind(&cert),
        key_usage,
        key_usage_bits,
        ext_key_usage,
        basic_constraints,
        dns,
        ips,
        extensions: cert
            .extensions()
            .iter()
            .map(|e| format!("{}{}", crit(e.critical), ext_name(&e.oid.to_id_string())))
            .collect(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        spki: cert.public_key().raw.to_vec(),
    }
}

/// Reads the facts of a PEM certificate file.
pub fn facts(path: &Path) -> Facts {
    facts_der(&cert_der(path))
}

// ------------------------------------------------------------------ kubeconfigs

/// A kubeconfig as `kubectl config view --raw -o json` reads it.
pub fn kubeconfig_json(path: &Path) -> serde_json::Value {
    let out = tool_ok(
        "kubectl",
        [
            OsStr::new("config"),
            OsStr::new("view"),
            OsStr::new("--kubeconfig"),
            path.as_os_str(),
            OsStr::new("--raw"),
            OsStr::new("-o"),
            OsStr::new("json"),
            // `config view` prints the file as is; the override only steers a kubectl
            // dispatcher (gcloud's kubectl asks the server for its version first, which costs
            // seconds per call for an unreachable IPv6 server) to a port that refuses at once.
            OsStr::new("--server=https://127.0.0.1:1"),
        ],
        None,
    );
    serde_json::from_slice(&out).unwrap()
}

/// Decodes base64 with openssl.
pub fn b64decode(s: &str) -> Vec<u8> {
    tool_ok("openssl", ["base64", "-d", "-A"], Some(s.as_bytes()))
}

/// What a kubeconfig holds for its current context, decoded.
pub struct KubeconfigFacts {
    /// `current-context`.
    pub current_context: String,
    /// Context's cluster name.
    pub cluster: String,
    /// Context's user name.
    pub user: String,
    /// Cluster server URL.
    pub server: String,
    /// certificate-authority-data (PEM bytes).
    pub ca_pem: Vec<u8>,
    /// client-certificate-data (PEM bytes).
    pub cert_pem: Vec<u8>,
    /// client-key-data (PEM bytes).
    pub key_pem: Vec<u8>,
}

/// Reads a kubeconfig with kubectl and decodes its current context.
pub fn kubeconfig_facts(path: &Path) -> KubeconfigFacts {
    let v = kubeconfig_json(path);
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let current_context = s(&v["current-context"]);
    let ctx = v["contexts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == current_context.as_str())
        .unwrap_or_else(|| panic!("{}: no context {current_context}", path.display()));
    let cluster = s(&ctx["context"]["cluster"]);
    let user = s(&ctx["context"]["user"]);
    let cl = v["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == cluster.as_str())
        .unwrap_or_else(|| panic!("{}: no cluster {cluster}", path.display()));
    let us = v["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == user.as_str())
        .unwrap_or_else(|| panic!("{}: no user {user}", path.display()));
    KubeconfigFacts {
        server: s(&cl["cluster"]["server"]),
        ca_pem: b64decode(&s(&cl["cluster"]["certificate-authority-data"])),
        cert_pem: b64decode(&s(&us["user"]["client-certificate-data"])),
        key_pem: b64decode(&s(&us["user"]["client-key-data"])),
        current_context,
        cluster,
        user,
    }
}

/// Writes bytes to a new file in `dir` and returns its path.
/// DER of the client certificate of a kubeconfig's current context, as kubectl reads it.
pub fn kubeconfig_cert(path: &Path) -> Vec<u8> {
    der_of(&kubeconfig_facts(path).cert_pem)
}

// ------------------------------------------------------------------ whole-tree checks

/// The key algorithm a tree was made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// RSA-2048.
    Rsa2048,
    /// ECDSA P-256.
    P256,
    /// ECDSA P-384.
    P384,
}

impl Alg {
    /// The kubeadm name (`--encryption-algorithm`).
    pub fn flag(self) -> &'static str {
        match self {
            Alg::Rsa2048 => "RSA-2048",
            Alg::P256 => "ECDSA-P256",
            Alg::P384 => "ECDSA-P384",
        }
    }

    fn key_label(self) -> &'static str {
        match self {
            Alg::Rsa2048 => "RSA PRIVATE KEY",
            Alg::P256 | Alg::P384 => "EC PRIVATE KEY",
        }
    }

    fn spki_kind(self) -> &'static str {
        match self {
            Alg::Rsa2048 => "RSA-2048 e=65537",
            Alg::P256 => "ECDSA-P256",
            Alg::P384 => "ECDSA-P384",
        }
    }

    fn signature(self) -> &'static str {
        match self {
            Alg::Rsa2048 => "sha256WithRSAEncryption",
            Alg::P256 => "ecdsa-with-SHA256",
            Alg::P384 => "ecdsa-with-SHA384",
        }
    }
}

/// Checks a private key file's PEM type and algorithm with openssl.
pub fn assert_key_alg(key: &Path, alg: Alg) {
    assert_eq!(pem_labels(key), [alg.key_label()], "{}", key.display());
    match alg {
        Alg::Rsa2048 => assert_eq!(rsa_bits(key), 2048, "{}", key.display()),
        Alg::P256 => assert_eq!(ec_curve(key), "prime256v1", "{}", key.display()),
        Alg::P384 => assert_eq!(ec_curve(key), "secp384r1", "{}", key.display()),
    }
}

/// Checks a whole default tree (cert dir `pki`, kubeconfigs in `kubeconfig_dir`) with openssl:
/// every leaf verifies (`-x509_strict`) for its purposes and fails for the other one, every key
/// matches its certificate and has the right algorithm and PEM type, sa.pub matches sa.key,
/// modes are kubeadm's, kubeconfig client certificates verify against ca.crt.
pub fn check_tree(pki: &Path, kubeconfig_dir: &Path, alg: Alg) {
    check_tree_without(pki, kubeconfig_dir, alg, &[]);
}

/// [`check_tree`] for a layout without some kubeconfigs (a kubeadm 1.28 tree has no
/// super-admin.conf); those must not exist.
pub fn check_tree_without(pki: &Path, kubeconfig_dir: &Path, alg: Alg, absent: &[&str]) {
    let ecdsa = alg != Alg::Rsa2048;
    for ca in CAS {
        let crt = pki.join(format!("{ca}.crt"));
        let key = pki.join(format!("{ca}.key"));
        let f = facts(&crt);
        assert_eq!(f.basic_constraints, "!CA:TRUE", "{ca}");
        assert_eq!(f.key, alg.spki_kind(), "{ca}");
        assert_eq!(f.signature, alg.signature(), "{ca}");
        let mut want = vec!["digitalSignature", "keyCertSign"];
        if !ecdsa {
            want.insert(1, "keyEncipherment");
        }
        assert_eq!(f.key_usage_bits, want, "{ca} key usage");
        assert_key_alg(&key, alg);
        assert_key_matches(&key, &crt);
        assert_eq!(mode(&crt), 0o644, "{ca}.crt");
        assert_eq!(mode(&key), 0o600, "{ca}.key");
        // self-signed: verifies against itself
        assert_verifies(&crt, &crt, "any");
    }
    for leaf in LEAVES {
        let ca = pki.join(format!("{}.crt", leaf.ca));
        let crt = pki.join(format!("{}.crt", leaf.path));
        let key = pki.join(format!("{}.key", leaf.path));
        for (wanted, purpose) in [(leaf.server, "sslserver"), (leaf.client, "sslclient")] {
            match (wanted, verify(&ca, &crt, purpose)) {
                (true, Err(e)) => panic!("{e}"),
                (false, Ok(())) => panic!("{} verifies for {purpose} but should not", leaf.path),
                _ => {}
            }
        }
        // signed by exactly its own CA: another CA must not verify it
        let other = CAS.iter().find(|c| **c != leaf.ca).unwrap();
        assert!(
            verify(&pki.join(format!("{other}.crt")), &crt, "any").is_err(),
            "{} verifies against {other}",
            leaf.path
        );
        let f = facts(&crt);
        assert_eq!(f.key, alg.spki_kind(), "{}", leaf.path);
        assert_eq!(f.signature, alg.signature(), "{}", leaf.path);
        assert_eq!(f.basic_constraints, "!CA:FALSE", "{}", leaf.path);
        let want: &[&str] = if ecdsa {
            &["digitalSignature"]
        } else {
            &["digitalSignature", "keyEncipherment"]
        };
        assert_eq!(f.key_usage_bits, want, "{} key usage", leaf.path);
        assert_key_alg(&key, alg);
        assert_key_matches(&key, &crt);
        assert_eq!(mode(&crt), 0o644, "{}.crt", leaf.path);
        assert_eq!(mode(&key), 0o600, "{}.key", leaf.path);
    }
    let sa_key = pki.join("sa.key");
    let sa_pub = pki.join("sa.pub");
    assert_key_alg(&sa_key, alg);
    assert_eq!(pem_labels(&sa_pub), ["PUBLIC KEY"]);
    assert_pub_matches(&sa_key, &sa_pub);
    assert_eq!(mode(&sa_key), 0o600);
    assert_eq!(mode(&sa_pub), 0o600);
    for dir in [pki.to_path_buf(), pki.join("etcd")] {
        assert_eq!(mode(&dir), 0o755, "{}", dir.display());
    }
    let ca_der = cert_der(&pki.join("ca.crt"));
    let scratch = tempfile::tempdir().unwrap();
    for name in KUBECONFIGS {
        let path = kubeconfig_dir.join(name);
        if absent.contains(name) {
            assert!(!path.exists(), "{name} should not exist in this layout");
            continue;
        }
        assert_eq!(mode(&path), 0o600, "{name}");
        let k = kubeconfig_facts(&path);
        let ca = write_file(scratch.path(), &format!("{name}.ca.crt"), &k.ca_pem);
        let crt = write_file(scratch.path(), &format!("{name}.crt"), &k.cert_pem);
        let key = write_file(scratch.path(), &format!("{name}.key"), &k.key_pem);
        assert_eq!(cert_der(&ca), ca_der, "{name}: embedded CA is not ca.crt");
        assert_verifies(&pki.join("ca.crt"), &crt, "sslclient");
        assert!(
            verify(&pki.join("ca.crt"), &crt, "sslserver").is_err(),
            "{name}: client certificate verifies as a server"
        );
        let f = facts(&crt);
        let want: &[&str] = if ecdsa {
            &["digitalSignature"]
        } else {
            &["digitalSignature", "keyEncipherment"]
        };
        assert_eq!(f.key_usage_bits, want, "{name} key usage");
        assert_eq!(f.ext_key_usage, "clientAuth", "{name}");
        assert_eq!(f.basic_constraints, "!CA:FALSE", "{name}");
        assert_eq!(f.key, alg.spki_kind(), "{name}");
        assert_key_alg(&key, alg);
        assert_key_matches(&key, &crt);
    }
}
