//! Private keys: generation, kubeadm's on-disk formats, loading.
//!
//! kubeadm writes `RSA PRIVATE KEY` (PKCS#1) and `EC PRIVATE KEY` (SEC1 with the named curve),
//! and Go's parsers need exactly that. The crypto backend (aws-lc-rs through rcgen) produces
//! PKCS#8, so generated keys are unwrapped here. A key loaded from disk keeps its original PEM
//! bytes: re-serialising it could change the format other tools expect.

use std::fmt;
use std::str::FromStr;

use der::{Decode, Encode};
use rcgen::{KeyPair, PublicKeyData, SigningKey};

use crate::error::{Error, Result};

/// Key algorithms kubeadm supports (`encryptionAlgorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum KeyAlgorithm {
    /// RSA 2048 (kubeadm's default).
    #[serde(rename = "RSA-2048")]
    Rsa2048,
    /// RSA 3072.
    #[serde(rename = "RSA-3072")]
    Rsa3072,
    /// RSA 4096.
    #[serde(rename = "RSA-4096")]
    Rsa4096,
    /// ECDSA on P-256.
    #[serde(rename = "ECDSA-P256")]
    EcdsaP256,
    /// ECDSA on P-384.
    #[serde(rename = "ECDSA-P384")]
    EcdsaP384,
}

impl KeyAlgorithm {
    /// All algorithms, in kubeadm's documentation order.
    pub const ALL: [KeyAlgorithm; 5] = [
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096,
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
    ];

    /// kubeadm's name for the algorithm.
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa2048 => "RSA-2048",
            KeyAlgorithm::Rsa3072 => "RSA-3072",
            KeyAlgorithm::Rsa4096 => "RSA-4096",
            KeyAlgorithm::EcdsaP256 => "ECDSA-P256",
            KeyAlgorithm::EcdsaP384 => "ECDSA-P384",
        }
    }

    /// True for the ECDSA algorithms (RFC 8813: no keyEncipherment).
    pub fn is_ec(self) -> bool {
        matches!(self, KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384)
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        KeyAlgorithm::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!(
                    "unknown key algorithm {s:?} (known: {})",
                    KeyAlgorithm::ALL.map(|a| a.name()).join(", ")
                )
            })
    }
}

/// A private key with the PEM it is (or will be) stored as.
pub struct PrivateKey {
    pem: String,
    pair: KeyPair,
    algorithm: KeyAlgorithm,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

const OID_P256: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.3.132.0.34");

impl PrivateKey {
    /// Generates a fresh key and encodes it the way kubeadm stores it.
    ///
    /// With the `openssl-rsa` feature, RSA keys come from OpenSSL (see [`generate_rsa_pkcs1`]);
    /// otherwise, and for ECDSA, from aws-lc. Signing is aws-lc's either way.
    pub fn generate(alg: KeyAlgorithm) -> Result<PrivateKey> {
        let ctx = || format!("generating a {alg} key");
        #[cfg(feature = "openssl-rsa")]
        if let Some(bits) = rsa_bits_of(alg) {
            let pkcs1 = generate_rsa_pkcs1(bits).map_err(|e| Error::crypto(ctx(), e))?;
            return PrivateKey::from_rsa_pkcs1(alg, pkcs1).map_err(|e| Error::crypto(ctx(), e));
        }
        let pair = match alg {
            KeyAlgorithm::Rsa2048 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
            }
            KeyAlgorithm::Rsa3072 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_3072)
            }
            KeyAlgorithm::Rsa4096 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_4096)
            }
            KeyAlgorithm::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            KeyAlgorithm::EcdsaP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        }
        .map_err(|e| Error::crypto(ctx(), e))?;
        let pkcs8 = pair.serialize_der();
        let info =
            pkcs8::PrivateKeyInfoRef::from_der(&pkcs8).map_err(|e| Error::crypto(ctx(), e))?;
        let inner = info.private_key.as_bytes();
        let (label, body) = if alg.is_ec() {
            // aws-lc leaves the curve out of the inner ECPrivateKey; Go's ParseECPrivateKey needs it.
            let mut ec =
                sec1::EcPrivateKey::from_der(inner).map_err(|e| Error::crypto(ctx(), e))?;
            let curve = if alg == KeyAlgorithm::EcdsaP256 {
                OID_P256
            } else {
                OID_P384
            };
            ec.parameters = Some(sec1::EcParameters::NamedCurve(curve));
            if ec.public_key.is_none() {
                ec.public_key = Some(pair.public_key_raw());
            }
            (
                "EC PRIVATE KEY",
                ec.to_der().map_err(|e| Error::crypto(ctx(), e))?,
            )
        } else {
            ("RSA PRIVATE KEY", inner.to_vec())
        };
        let pem = pem::encode_config(&pem::Pem::new(label, body), pem_config());
        Ok(PrivateKey {
            pem,
            pair,
            algorithm: alg,
        })
    }

    /// A key from a freshly generated PKCS#1 `RSAPrivateKey` (DER): stored as the `RSA PRIVATE
    /// KEY` PEM kubeadm writes, loaded into aws-lc (through its PKCS#8 wrapping) for signing.
    #[cfg(feature = "openssl-rsa")]
    fn from_rsa_pkcs1(
        alg: KeyAlgorithm,
        pkcs1: Vec<u8>,
    ) -> std::result::Result<PrivateKey, String> {
        let pkcs8 = pkcs8_of_rsa(&pkcs1).map_err(|e| e.to_string())?;
        let pair = KeyPair::from_pkcs8_der_and_sign_algo(
            &rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8),
            &rcgen::PKCS_RSA_SHA256,
        )
        .map_err(|e| e.to_string())?;
        let pem = pem::encode_config(&pem::Pem::new("RSA PRIVATE KEY", pkcs1), pem_config());
        Ok(PrivateKey {
            pem,
            pair,
            algorithm: alg,
        })
    }

    /// Loads a key from PEM text (PKCS#1, SEC1 or PKCS#8; extra non-key blocks are ignored, as
    /// kubeadm does). The error message says what is wrong without the path; callers add it.
    pub fn from_pem(text: &str) -> std::result::Result<PrivateKey, String> {
        let blocks = pem::parse_many(text).map_err(|e| format!("not a valid PEM file: {e}"))?;
        if blocks.is_empty() {
            return Err("no PEM block found (is this a DER or empty file?)".into());
        }
        let block = blocks
            .iter()
            .find(|b| matches!(b.tag(), "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "PRIVATE KEY" | "ENCRYPTED PRIVATE KEY"))
            .ok_or_else(|| {
                format!(
                    "no private key block (found {}); expected RSA PRIVATE KEY, EC PRIVATE KEY or PRIVATE KEY",
                    blocks.iter().map(|b| b.tag().to_string()).collect::<Vec<_>>().join(", ")
                )
            })?;
        if block.tag() == "ENCRYPTED PRIVATE KEY" || block.headers().get("Proc-Type").is_some() {
            return Err(
                "the private key is encrypted; kpki (like kubeadm) needs an unencrypted key".into(),
            );
        }
        let single = pem::encode(&pem::Pem::new(block.tag(), block.contents().to_vec()));
        let pair = KeyPair::from_pem(&single).map_err(|e| match unsupported_key(block) {
            Some(what) => format!(
                "holds {what}, which kpki does not support (kubeadm's algorithms: RSA-2048, RSA-3072, RSA-4096, ECDSA-P256, ECDSA-P384)"
            ),
            None => format!(
                "the {} block is not a usable RSA or ECDSA key: {e}",
                block.tag()
            ),
        })?;
        let algorithm = algorithm_of_spki(&pair.subject_public_key_info())
            .map_err(|m| format!("holds a key which kpki does not support: {m}"))?;
        Ok(PrivateKey {
            pem: text.to_string(),
            pair,
            algorithm,
        })
    }

    /// The PEM text as stored on disk.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// DER SubjectPublicKeyInfo of the public half.
    pub fn spki_der(&self) -> Vec<u8> {
        self.pair.subject_public_key_info()
    }

    /// The raw subjectPublicKey bits (what Go hashes for a Subject Key Identifier).
    pub fn public_key_bits(&self) -> &[u8] {
        self.pair.der_bytes()
    }

    /// `PUBLIC KEY` PEM (PKIX), as kubeadm writes `sa.pub`.
    pub fn public_key_pem(&self) -> String {
        pem::encode_config(&pem::Pem::new("PUBLIC KEY", self.spki_der()), pem_config())
    }

    /// Signs `msg` with the key's default scheme (RSA PKCS#1 v1.5 SHA-256, ECDSA SHA-256/384).
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        self.pair.sign(msg).map_err(|e| Error::crypto("signing", e))
    }

    /// DER AlgorithmIdentifier of the signatures this key makes (Go picks by the signer's key).
    pub fn signature_algorithm_der(&self) -> Vec<u8> {
        match self.algorithm {
            // sha256WithRSAEncryption with NULL parameters (RFC 4055)
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                vec![
                    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b,
                    0x05, 0x00,
                ]
            }
            // ecdsa-with-SHA256, no parameters (RFC 5758)
            KeyAlgorithm::EcdsaP256 => vec![
                0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
            ],
            // ecdsa-with-SHA384
            KeyAlgorithm::EcdsaP384 => vec![
                0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
            ],
        }
    }

    /// True when `spki_der` (e.g. from a certificate) is this key's public half.
    pub fn matches_spki(&self, spki_der: &[u8]) -> bool {
        self.spki_der() == spki_der
    }
}

/// The modulus size of an RSA algorithm; `None` for ECDSA.
pub fn rsa_bits_of(alg: KeyAlgorithm) -> Option<u32> {
    match alg {
        KeyAlgorithm::Rsa2048 => Some(2048),
        KeyAlgorithm::Rsa3072 => Some(3072),
        KeyAlgorithm::Rsa4096 => Some(4096),
        KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384 => None,
    }
}

/// A new RSA private key of `bits` bits (public exponent 65537) from OpenSSL (3.6, built from
/// source and linked statically by the `openssl-rsa` feature): PKCS#1 `RSAPrivateKey` DER.
///
/// Why OpenSSL for this one step: its key generation takes about 30% less time than aws-lc's on
/// the machines measured (docs/dependencies.md), and a control-plane tree is 16 keys. Only the
/// generation is OpenSSL's; the key is handed to aws-lc for signing. OpenSSL draws the key's
/// randomness from its own DRBG, seeded from the operating system — the same kind of source as
/// [`crate::entropy::SystemEntropy`]; tests that need fixed keys use the key pool of
/// [`crate::entropy::FixedEntropy`], which sits above this function.
#[cfg(feature = "openssl-rsa")]
pub fn generate_rsa_pkcs1(bits: u32) -> std::result::Result<Vec<u8>, openssl::error::ErrorStack> {
    openssl::rsa::Rsa::generate(bits)?.private_key_to_der()
}

/// PKCS#8 `PrivateKeyInfo` (rsaEncryption, NULL parameters) around a PKCS#1 `RSAPrivateKey`.
#[cfg(feature = "openssl-rsa")]
fn pkcs8_of_rsa(pkcs1: &[u8]) -> der::Result<Vec<u8>> {
    const RSA_ENCRYPTION: der::asn1::ObjectIdentifier =
        der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
    let info = pkcs8::PrivateKeyInfoRef {
        algorithm: spki::AlgorithmIdentifierRef {
            oid: RSA_ENCRYPTION,
            parameters: Some(der::asn1::AnyRef::NULL),
        },
        private_key: der::asn1::OctetStringRef::new(pkcs1)?,
        public_key: None,
    };
    info.to_der()
}

/// Names a private key the crypto backend refused when its type is recognisable but not one
/// kubeadm supports ("an RSA-1024 key", "an ECDSA key on curve P-521", "an Ed25519 key").
fn unsupported_key(block: &pem::Pem) -> Option<String> {
    const RSA: &str = "1.2.840.113549.1.1.1";
    const EC: &str = "1.2.840.10045.2.1";
    let curve = |oid: &str| format!("an ECDSA key on curve {}", curve_name(oid));
    let rsa =
        |pkcs1: &[u8]| -> Option<String> { rsa_bits(pkcs1).map(|b| format!("an RSA-{b} key")) };
    match block.tag() {
        "RSA PRIVATE KEY" => rsa(block.contents()),
        "EC PRIVATE KEY" => {
            let ec = sec1::EcPrivateKey::from_der(block.contents()).ok()?;
            match ec.parameters? {
                sec1::EcParameters::NamedCurve(oid) => Some(curve(&oid.to_string())),
            }
        }
        "PRIVATE KEY" => {
            let info = pkcs8::PrivateKeyInfoRef::from_der(block.contents()).ok()?;
            let alg = info.algorithm.oid.to_string();
            match alg.as_str() {
                RSA => rsa(info.private_key.as_bytes()),
                EC => {
                    let p = info.algorithm.parameters?;
                    let oid = p.decode_as::<der::asn1::ObjectIdentifier>().ok()?;
                    Some(curve(&oid.to_string()))
                }
                "1.3.101.112" => Some("an Ed25519 key".into()),
                "1.3.101.113" => Some("an Ed448 key".into()),
                "1.2.840.10040.4.1" => Some("a DSA key".into()),
                other => Some(format!("a key of algorithm {other}")),
            }
        }
        _ => None,
    }
}

/// A curve's name with its OID (`P-521 (1.3.132.0.35)`), or the OID alone.
fn curve_name(oid: &str) -> String {
    let name = match oid {
        "1.3.132.0.35" => "P-521",
        "1.3.132.0.10" => "secp256k1",
        "1.2.840.10045.3.1.1" => "P-192",
        "1.3.132.0.33" => "P-224",
        "1.2.840.10045.3.1.7" => "P-256",
        "1.3.132.0.34" => "P-384",
        _ => return oid.to_string(),
    };
    format!("{name} ({oid})")
}

/// The modulus size of a PKCS#1 RSAPrivateKey.
fn rsa_bits(pkcs1: &[u8]) -> Option<usize> {
    use der::Reader;
    let mut r = der::SliceReader::new(pkcs1).ok()?;
    r.sequence(|r| {
        let _version: u8 = r.decode()?;
        let modulus: der::asn1::UintRef<'_> = r.decode()?;
        let rest = r.remaining_len();
        r.read_slice(rest)?;
        Ok::<usize, der::Error>(modulus.as_bytes().len() * 8)
    })
    .ok()
}

/// True when a DER SubjectPublicKeyInfo holds an elliptic-curve key (whatever the curve): what
/// RFC 8813's "no keyEncipherment" rule is about.
pub fn spki_is_ec(spki: &[u8]) -> bool {
    spki::SubjectPublicKeyInfoRef::from_der(spki)
        .map(|i| i.algorithm.oid.to_string() == "1.2.840.10045.2.1")
        .unwrap_or(false)
}

/// Detects kubeadm's algorithm name for a public key (DER SubjectPublicKeyInfo).
pub fn algorithm_of_spki(spki: &[u8]) -> std::result::Result<KeyAlgorithm, String> {
    use x509_parser::prelude::FromDer;
    use x509_parser::public_key::PublicKey;
    let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki)
        .map_err(|e| format!("bad public key: {e}"))?;
    match info.parsed().map_err(|e| format!("bad public key: {e}"))? {
        PublicKey::RSA(rsa) => match rsa.key_size() {
            2048 => Ok(KeyAlgorithm::Rsa2048),
            3072 => Ok(KeyAlgorithm::Rsa3072),
            4096 => Ok(KeyAlgorithm::Rsa4096),
            n => Err(format!(
                "RSA-{n} keys are not supported (use 2048, 3072 or 4096 bits)"
            )),
        },
        PublicKey::EC(_) => {
            let curve = info
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .unwrap_or_default();
            match curve.as_str() {
                "1.2.840.10045.3.1.7" => Ok(KeyAlgorithm::EcdsaP256),
                "1.3.132.0.34" => Ok(KeyAlgorithm::EcdsaP384),
                other => Err(format!(
                    "ECDSA curve {} is not supported (use P-256 or P-384)",
                    curve_name(other)
                )),
            }
        }
        _ => Err("the key is neither RSA nor ECDSA".into()),
    }
}

/// Go's PEM: 64-column base64, LF line endings.
pub(crate) fn pem_config() -> pem::EncodeConfig {
    pem::EncodeConfig::new()
        .set_line_ending(pem::LineEnding::LF)
        .set_line_wrap(64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_keys_are_sec1_with_curve_and_reload() {
        for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384] {
            let k = PrivateKey::generate(alg).expect("gen");
            assert!(k.pem().starts_with("-----BEGIN EC PRIVATE KEY-----\n"));
            let block = pem::parse(k.pem()).expect("pem");
            let ec = sec1::EcPrivateKey::from_der(block.contents()).expect("sec1");
            assert!(ec.parameters.is_some(), "curve parameters missing");
            let back = PrivateKey::from_pem(k.pem()).expect("reload");
            assert_eq!(back.algorithm(), alg);
            assert_eq!(back.spki_der(), k.spki_der());
        }
    }

    #[test]
    fn rsa_keys_are_pkcs1_and_reload() {
        let k = PrivateKey::generate(KeyAlgorithm::Rsa2048).expect("gen");
        assert!(k.pem().starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
        let back = PrivateKey::from_pem(k.pem()).expect("reload");
        assert_eq!(back.algorithm(), KeyAlgorithm::Rsa2048);
        assert!(back.matches_spki(&k.spki_der()));
        assert!(k
            .public_key_pem()
            .starts_with("-----BEGIN PUBLIC KEY-----\n"));
    }

    /// With `openssl-rsa`, RSA keys come from OpenSSL: the stored PEM is PKCS#1 that an
    /// independent tool (the system's `openssl pkey -check`) accepts as a consistent key, and the
    /// key (signing through aws-lc) signs a certificate that x509-parser and `openssl verify`
    /// both accept.
    #[cfg(feature = "openssl-rsa")]
    #[test]
    fn openssl_generated_rsa_keys_check_and_sign() {
        use crate::x509::issue::{issue, Issuance, Profile};
        use x509_parser::prelude::FromDer;
        let dir = tempfile::tempdir().expect("tempdir");
        for alg in [KeyAlgorithm::Rsa2048, KeyAlgorithm::Rsa3072] {
            let k = PrivateKey::generate(alg).expect("gen");
            let block = pem::parse(k.pem()).expect("pem");
            assert_eq!(block.tag(), "RSA PRIVATE KEY");
            assert_eq!(
                rsa_bits(block.contents()),
                rsa_bits_of(alg).map(|b| b as usize)
            );
            assert_eq!(algorithm_of_spki(&k.spki_der()), Ok(alg));
            let key_path = dir.path().join(format!("{alg}.key"));
            std::fs::write(&key_path, k.pem()).expect("write key");
            let out = std::process::Command::new("openssl")
                .args(["pkey", "-check", "-noout", "-in"])
                .arg(&key_path)
                .output()
                .expect("run openssl (scripts/test.sh installs it)");
            assert!(
                out.status.success(),
                "openssl pkey -check: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let ca = Profile {
                cn: "kubernetes".into(),
                orgs: vec![],
                dns: vec!["kubernetes".into()],
                ips: vec![],
                key_usages: vec!["digital_signature".into(), "key_cert_sign".into()],
                ext_key_usages: vec![],
                is_ca: true,
            };
            let when = Issuance {
                not_before: time::macros::datetime!(2026-01-01 0:00 UTC),
                not_after: time::macros::datetime!(2036-01-01 0:00 UTC),
                serial: 7,
            };
            let der = issue(&ca, &k, None, when).expect("issue");
            let (_, cert) =
                x509_parser::certificate::X509Certificate::from_der(&der).expect("parse");
            cert.verify_signature(None).expect("self signature");
            let cert_path = dir.path().join(format!("{alg}.crt"));
            std::fs::write(&cert_path, crate::x509::issue::cert_pem(&der)).expect("write cert");
            let out = std::process::Command::new("openssl")
                .args(["verify", "-attime", "1800000000", "-CAfile"])
                .arg(&cert_path)
                .arg(&cert_path)
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "openssl verify: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            // The PEM reloads (the path every later run takes) to the same key.
            let back = PrivateKey::from_pem(k.pem()).expect("reload");
            assert!(back.matches_spki(&k.spki_der()));
        }
    }

    #[test]
    fn bad_key_files_are_errors() {
        assert!(PrivateKey::from_pem("").is_err());
        assert!(PrivateKey::from_pem("garbage").is_err());
        assert!(PrivateKey::from_pem(
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
        )
        .is_err());
        assert!(PrivateKey::from_pem(
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"
        )
        .is_err());
        let e = PrivateKey::from_pem(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .unwrap_err();
        assert!(e.contains("encrypted"));
        assert_eq!(
            "ecdsa-p256".parse::<KeyAlgorithm>(),
            Ok(KeyAlgorithm::EcdsaP256)
        );
        assert!("RSA-1024".parse::<KeyAlgorithm>().is_err());
    }
}
