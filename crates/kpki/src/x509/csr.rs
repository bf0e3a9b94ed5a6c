//! PKCS#10 certificate signing requests for the external-CA flow (`kpki certs generate-csr`).
//!
//! Unlike kubeadm, the request carries the spec's key usages, extended key usages and SANs as an
//! extensionRequest attribute (PKCS#9), so an outside CA can follow them (e.g. `openssl x509 -req
//! -copy_extensions copy`).

use der::asn1::{Any, BitString, ObjectIdentifier, SetOfVec};
use der::Sequence;
use x509_cert::attr::Attribute;
use x509_cert::ext::Extension;

use crate::error::{Error, Result};
use crate::x509::issue::{any, enc, encode_subject, san_extension, usage_extensions, Profile};
use crate::x509::keys::{pem_config, PrivateKey};

const OID_EXTENSION_REQUEST: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.14");

#[derive(Sequence)]
struct CertReqInfo {
    version: u8,
    subject: Any,
    spki: Any,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    attributes: Vec<Attribute>,
}

#[derive(Sequence)]
struct CertReq {
    info: Any,
    algorithm: Any,
    signature: BitString,
}

/// DER of a CSR for `profile`, signed with `key`.
pub fn csr_der(profile: &Profile, key: &PrivateKey) -> Result<Vec<u8>> {
    let mut exts: Vec<Extension> = usage_extensions(profile, key.algorithm().is_ec())?;
    exts.extend(san_extension(profile)?);
    let ext_any = any("extension request", &enc("extension request", &exts)?)?;
    let values = SetOfVec::try_from(vec![ext_any]).map_err(|e| Error::crypto("encoding CSR", e))?;
    let info = CertReqInfo {
        version: 0,
        subject: any("subject", &encode_subject(&profile.cn, &profile.orgs)?)?,
        spki: any("public key", &key.spki_der())?,
        attributes: vec![Attribute {
            oid: OID_EXTENSION_REQUEST,
            values,
        }],
    };
    let info_der = enc("CSR", &info)?;
    let signature = key.sign(&info_der)?;
    let alg = key.signature_algorithm_der();
    enc(
        "CSR",
        &CertReq {
            info: any("CSR", &info_der)?,
            algorithm: any("signature algorithm", &alg)?,
            signature: BitString::from_bytes(&signature)
                .map_err(|e| Error::crypto("CSR signature", e))?,
        },
    )
}

/// PEM (`CERTIFICATE REQUEST`) of a CSR for `profile`, signed with `key`.
pub fn csr_pem(profile: &Profile, key: &PrivateKey) -> Result<String> {
    let der = csr_der(profile, key)?;
    Ok(pem::encode_config(
        &pem::Pem::new("CERTIFICATE REQUEST", der),
        pem_config(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x509::keys::KeyAlgorithm;
    use x509_parser::prelude::FromDer;

    #[test]
    fn csr_verifies_and_requests_extensions() {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let p = Profile {
            cn: "kube-apiserver".into(),
            orgs: vec!["a".into(), "b".into()],
            dns: vec!["kubernetes".into()],
            ips: vec!["10.96.0.1".parse().unwrap()],
            key_usages: vec!["digital_signature".into(), "key_encipherment".into()],
            ext_key_usages: vec!["server_auth".into()],
            is_ca: false,
        };
        let der = csr_der(&p, &key).unwrap();
        let (_, req) =
            x509_parser::certification_request::X509CertificationRequest::from_der(&der).unwrap();
        req.verify_signature().unwrap();
        let exts: Vec<_> = req.requested_extensions().unwrap().collect();
        assert_eq!(exts.len(), 3, "KU, EKU, SAN requested");
        assert_eq!(
            req.certification_request_info.subject.to_string(),
            "O=a + O=b, CN=kube-apiserver"
        );
    }
}
