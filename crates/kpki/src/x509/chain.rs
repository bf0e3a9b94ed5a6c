//! The one signature and chain verifier: rustls-webpki, the verifier a TLS client of the cluster
//! would use. Plan, verify, nodes and every other command ask it, so "kpki accepts this
//! certificate" and "a TLS stack accepts it" cannot disagree.

use rustls_pki_types::{CertificateDer, UnixTime};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

pub use webpki::Error as WebpkiError;

use rustls_pki_types::{AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm};
use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

/// rustls-webpki's algorithms, each remembering the signatures it has found valid.
///
/// One certificate is asked about several times in a run (any purpose, then each extended key
/// usage its profile names; the kubeconfig view and the wiring judge ask again), and each ask
/// makes webpki verify the same signature with the same key. The verdict is webpki's own; this
/// only keeps a successful one, keyed by a SHA-256 of everything it depended on (the algorithm
/// identifiers, the public key, the message and the signature), so the answer for the same
/// bytes is computed once. Failures are not remembered. The set is bounded.
#[derive(Debug)]
struct Remembering(&'static dyn SignatureVerificationAlgorithm);

/// How many verdicts are kept before the set starts over (32 bytes each).
const REMEMBERED: usize = 4096;

static VERIFIED: LazyLock<Mutex<HashSet<[u8; 32]>>> = LazyLock::new(Default::default);

static REMEMBERING: LazyLock<Vec<Remembering>> = LazyLock::new(|| {
    webpki::ALL_VERIFICATION_ALGS
        .iter()
        .map(|a| Remembering(*a))
        .collect()
});

static ALGS: LazyLock<Vec<&'static dyn SignatureVerificationAlgorithm>> = LazyLock::new(|| {
    REMEMBERING
        .iter()
        .map(|a| a as &'static dyn SignatureVerificationAlgorithm)
        .collect()
});

impl SignatureVerificationAlgorithm for Remembering {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        let mut h = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for part in [
            self.0.signature_alg_id().as_ref(),
            self.0.public_key_alg_id().as_ref(),
            public_key,
            message,
            signature,
        ] {
            h.update(&(part.len() as u64).to_be_bytes());
            h.update(part);
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(h.finish().as_ref());
        let known = |k: &[u8; 32]| VERIFIED.lock().map(|s| s.contains(k)).unwrap_or(false);
        if known(&key) {
            return Ok(());
        }
        self.0.verify_signature(public_key, message, signature)?;
        if let Ok(mut s) = VERIFIED.lock() {
            if s.len() >= REMEMBERED {
                s.clear();
            }
            s.insert(key);
        }
        Ok(())
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        self.0.public_key_alg_id()
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.0.signature_alg_id()
    }

    fn fips_status(&self) -> rustls_pki_types::FipsStatus {
        self.0.fips_status()
    }
}

/// The extended key usage a chain is checked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// Chain and signature only (any or no EKU).
    Any,
    /// `id-kp-serverAuth`.
    ServerAuth,
    /// `id-kp-clientAuth`.
    ClientAuth,
}

impl Usage {
    /// The usage a spec EKU name asks a TLS stack to check, if any.
    pub fn of_eku(name: &str) -> Option<Usage> {
        match name {
            "server_auth" => Some(Usage::ServerAuth),
            "client_auth" => Some(Usage::ClientAuth),
            _ => None,
        }
    }

    /// The spec's name of the usage.
    pub fn name(self) -> &'static str {
        match self {
            Usage::Any => "any",
            Usage::ServerAuth => "server_auth",
            Usage::ClientAuth => "client_auth",
        }
    }
}

/// Accepts any (or no) extended key usage: chain and signature only.
struct AnyPurpose;

impl webpki::ExtendedKeyUsageValidator for AnyPurpose {
    fn validate(&self, _iter: webpki::KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        Ok(())
    }
}

fn unix(t: OffsetDateTime) -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(t.unix_timestamp()).unwrap_or(0),
    ))
}

/// Whether `ca` can serve as a trust anchor at all (webpki parses it as one).
pub fn check_anchor(ca: &[u8]) -> Result<(), webpki::Error> {
    let der = CertificateDer::from(ca);
    webpki::anchor_from_trusted_cert(&der).map(|_| ())
}

/// rustls-webpki's verdict on the end-entity `leaf` with `ca` as the only trust anchor at `at`.
pub fn verify_leaf(
    leaf: &[u8],
    ca: &[u8],
    at: OffsetDateTime,
    usage: Usage,
) -> Result<(), webpki::Error> {
    let ca_der = CertificateDer::from(ca);
    let anchor = webpki::anchor_from_trusted_cert(&ca_der)?;
    let anchors = [anchor];
    let leaf_der = CertificateDer::from(leaf);
    let ee = webpki::EndEntityCert::try_from(&leaf_der)?;
    let algs = ALGS.as_slice();
    let r = match usage {
        Usage::ServerAuth => ee.verify_for_usage(
            algs,
            &anchors,
            &[],
            unix(at),
            webpki::KeyUsage::server_auth(),
            None,
            None,
        ),
        Usage::ClientAuth => ee.verify_for_usage(
            algs,
            &anchors,
            &[],
            unix(at),
            webpki::KeyUsage::client_auth(),
            None,
            None,
        ),
        Usage::Any => ee.verify_for_usage(algs, &anchors, &[], unix(at), AnyPurpose, None, None),
    };
    r.map(|_| ())
}

/// Checks that `cert_der` was issued by `issuer_der`: the issuer name equals the issuer's
/// subject byte for byte, and webpki verifies the signature with the issuer's public key. Used
/// for CA certificates (self-signed roots, intermediates), which webpki's path building does not
/// take as end entities.
pub fn signed_by(cert_der: &[u8], issuer_der: &[u8]) -> Result<(), String> {
    let (_, cert) = X509Certificate::from_der(cert_der)
        .map_err(|e| format!("the certificate does not parse: {e}"))?;
    let (_, issuer) = X509Certificate::from_der(issuer_der)
        .map_err(|e| format!("the CA certificate does not parse: {e}"))?;
    if cert.issuer().as_raw() != issuer.subject().as_raw() {
        return Err(format!(
            "its issuer ({}) is not the CA's subject ({})",
            cert.issuer(),
            issuer.subject()
        ));
    }
    let issuer_cert = CertificateDer::from(issuer_der);
    let ee = webpki::EndEntityCert::try_from(&issuer_cert)
        .map_err(|e| format!("the CA certificate is not usable by a TLS verifier: {e}"))?;
    // The signature algorithm identifier as webpki compares it: the DER contents of the
    // AlgorithmIdentifier SEQUENCE.
    let sig_alg = algorithm_identifier_contents(cert_der)
        .ok_or_else(|| "its signature algorithm cannot be read".to_string())?;
    let key_alg = spki_algorithm_contents(issuer.public_key().raw)
        .ok_or_else(|| "the CA's public key algorithm cannot be read".to_string())?;
    let candidates: Vec<_> = ALGS
        .iter()
        .filter(|a| {
            a.signature_alg_id().as_ref() == sig_alg.as_slice()
                && a.public_key_alg_id().as_ref() == key_alg.as_slice()
        })
        .collect();
    if candidates.is_empty() {
        return Err(format!(
            "its signature algorithm ({}) with the CA's key type is not one a TLS verifier accepts",
            cert.signature_algorithm.algorithm
        ));
    }
    let tbs = cert.tbs_certificate.as_ref();
    let sig = cert.signature_value.data.as_ref();
    if candidates
        .iter()
        .any(|a| ee.verify_signature(**a, tbs, sig).is_ok())
    {
        Ok(())
    } else {
        Err("its signature does not verify with the CA's public key (signed by a different CA with the same name?)".into())
    }
}

/// The DER contents of an AlgorithmIdentifier (OID and parameters, without the SEQUENCE
/// header): the form webpki's algorithm tables compare.
fn contents(alg: &spki::AlgorithmIdentifierOwned) -> Option<Vec<u8>> {
    use der::Encode;
    let mut out = alg.oid.to_der().ok()?;
    if let Some(p) = &alg.parameters {
        out.extend(p.to_der().ok()?);
    }
    Some(out)
}

/// The contents of a certificate's outer signatureAlgorithm AlgorithmIdentifier.
fn algorithm_identifier_contents(cert_der: &[u8]) -> Option<Vec<u8>> {
    use der::Decode;
    let cert = x509_cert::Certificate::from_der(cert_der).ok()?;
    contents(cert.signature_algorithm())
}

/// The contents of a SubjectPublicKeyInfo's AlgorithmIdentifier.
fn spki_algorithm_contents(spki_der: &[u8]) -> Option<Vec<u8>> {
    use der::Decode;
    let info = spki::SubjectPublicKeyInfoOwned::from_der(spki_der).ok()?;
    contents(&info.algorithm)
}
