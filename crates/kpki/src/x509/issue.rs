//! Certificate encoding and signing.
//!
//! rcgen cannot express what a Kubernetes PKI needs (several O values in one RDN, an issuer copied
//! byte-for-byte from a CA someone else made, Go's extension order), so the TBSCertificate is
//! written here with the `der` crate's derive and signed with the issuer's key. The issuer field
//! is the CA certificate's raw subject bytes, which is what Go and OpenSSL chain on.

use std::net::IpAddr;

use der::asn1::{
    Any, BitString, Ia5String, ObjectIdentifier, OctetString, PrintableStringRef, SetOfVec, Uint,
    Utf8StringRef,
};
use der::{Decode, Encode, Sequence};
use sha1::{Digest, Sha1};
use time::OffsetDateTime;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, SubjectAltName,
    SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::time::Time;
use x509_parser::prelude::FromDer;

use crate::error::{Error, Result};
use crate::x509::keys::PrivateKey;

/// What a certificate says about its subject: resolved from a spec entry and the inputs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Profile {
    /// Common name.
    pub cn: String,
    /// Organizations (Kubernetes groups), in spec order.
    pub orgs: Vec<String>,
    /// DNS SANs, sorted and de-duplicated.
    pub dns: Vec<String>,
    /// IP SANs, first occurrence kept.
    pub ips: Vec<IpAddr>,
    /// Key usage names from the spec.
    pub key_usages: Vec<String>,
    /// Extended key usage names from the spec.
    pub ext_key_usages: Vec<String>,
    /// True for a CA (basicConstraints CA:TRUE).
    pub is_ca: bool,
}

/// Key usage names that apply to a key of the given kind. RFC 8813 §3 / RFC 5480 §3: an ECDSA key
/// cannot encipher, so keyEncipherment and dataEncipherment are dropped for it (kubeadm keeps them).
pub fn effective_key_usages(names: &[String], ec: bool) -> Vec<String> {
    names
        .iter()
        .filter(|u| !(ec && (*u == "key_encipherment" || *u == "data_encipherment")))
        .cloned()
        .collect()
}

/// Bit number of a key usage name in the KeyUsage BIT STRING (RFC 5280 §4.2.1.3).
pub fn key_usage_bit(name: &str) -> Option<u8> {
    Some(match name {
        "digital_signature" => 0,
        "content_commitment" => 1,
        "key_encipherment" => 2,
        "data_encipherment" => 3,
        "key_agreement" => 4,
        "key_cert_sign" => 5,
        "crl_sign" => 6,
        _ => return None,
    })
}

/// OID of an extended key usage name.
pub fn ext_key_usage_oid(name: &str) -> Option<ObjectIdentifier> {
    let arc = match name {
        "server_auth" => "1.3.6.1.5.5.7.3.1",
        "client_auth" => "1.3.6.1.5.5.7.3.2",
        "code_signing" => "1.3.6.1.5.5.7.3.3",
        "email_protection" => "1.3.6.1.5.5.7.3.4",
        "time_stamping" => "1.3.6.1.5.5.7.3.8",
        "ocsp_signing" => "1.3.6.1.5.5.7.3.9",
        _ => return None,
    };
    ObjectIdentifier::new(arc).ok()
}

/// The CA that signs a certificate: its DER certificate and its private key.
#[derive(Debug, Clone, Copy)]
pub struct Issuer<'a> {
    /// DER of the CA certificate.
    pub cert_der: &'a [u8],
    /// The CA's private key.
    pub key: &'a PrivateKey,
}

/// Everything that varies per issuance besides the profile.
#[derive(Debug, Clone, Copy)]
pub struct Issuance {
    /// NotBefore (second precision).
    pub not_before: OffsetDateTime,
    /// NotAfter (second precision).
    pub not_after: OffsetDateTime,
    /// Serial number (positive; kubeadm draws from [1, 2^63-2]).
    pub serial: u64,
}

#[derive(Sequence)]
struct Validity {
    not_before: Time,
    not_after: Time,
}

#[derive(Sequence)]
struct TbsCertificate {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    version: u8,
    serial: Uint,
    signature: Any,
    issuer: Any,
    validity: Validity,
    subject: Any,
    spki: Any,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT")]
    extensions: Vec<Extension>,
}

#[derive(Sequence)]
struct CertificateDer {
    tbs: Any,
    algorithm: Any,
    signature: BitString,
}

pub(crate) fn enc<T: Encode>(what: &str, v: &T) -> Result<Vec<u8>> {
    v.to_der()
        .map_err(|e| Error::crypto(format!("encoding {what}"), e))
}

pub(crate) fn any(what: &str, der_bytes: &[u8]) -> Result<Any> {
    Any::from_der(der_bytes).map_err(|e| Error::crypto(format!("encoding {what}"), e))
}

/// Go's choice of string type: PrintableString when every character allows it, else UTF8String.
fn directory_string(s: &str) -> Result<Any> {
    let printable = s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b));
    let r = if printable {
        PrintableStringRef::new(s).and_then(|p| Any::encode_from(&p))
    } else {
        Utf8StringRef::new(s).and_then(|u| Any::encode_from(&u))
    };
    r.map_err(|e| Error::crypto(format!("encoding subject value {s:?}"), e))
}

/// DER of the subject Name: one multi-valued RDN with every O (DER-sorted, as Go writes it), then CN.
pub fn encode_subject(cn: &str, orgs: &[String]) -> Result<Vec<u8>> {
    const OID_O: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.10");
    const OID_CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
    let mut rdns: Vec<SetOfVec<AttributeTypeAndValue>> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut o_values = Vec::new();
    for o in orgs {
        if seen.insert(o.as_str()) {
            o_values.push(AttributeTypeAndValue {
                oid: OID_O,
                value: directory_string(o)?,
            });
        }
    }
    if !o_values.is_empty() {
        rdns.push(
            SetOfVec::try_from(o_values).map_err(|e| Error::crypto("encoding organizations", e))?,
        );
    }
    let cn_rdn = SetOfVec::try_from(vec![AttributeTypeAndValue {
        oid: OID_CN,
        value: directory_string(cn)?,
    }])
    .map_err(|e| Error::crypto("encoding common name", e))?;
    rdns.push(cn_rdn);
    enc("subject", &rdns)
}

fn time(t: OffsetDateTime) -> Result<Time> {
    let secs = u64::try_from(t.unix_timestamp())
        .map_err(|_| Error::crypto("encoding validity", "time before 1970"))?;
    let d = std::time::Duration::from_secs(secs);
    // RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
    let r = if t.year() < 2050 {
        der::asn1::UtcTime::from_unix_duration(d).map(Time::UtcTime)
    } else {
        der::asn1::GeneralizedTime::from_unix_duration(d).map(Time::GeneralTime)
    };
    r.map_err(|e| Error::crypto("encoding validity", e))
}

fn ext(oid: &str, critical: bool, value: Vec<u8>) -> Result<Extension> {
    Ok(Extension {
        extn_id: ObjectIdentifier::new(oid).map_err(|e| Error::crypto("extension oid", e))?,
        critical,
        extn_value: OctetString::new(value).map_err(|e| Error::crypto("extension", e))?,
    })
}

/// SHA-1 of the subjectPublicKey bits: RFC 5280 §4.2.1.2 method 1, what Go used before 1.25.
pub fn key_identifier(public_key_bits: &[u8]) -> Vec<u8> {
    Sha1::digest(public_key_bits).to_vec()
}

/// The KeyUsage BIT STRING with minimal length (DER: no trailing zero bits).
fn key_usage_bits(names: &[String]) -> Result<BitString> {
    let mut bits: u16 = 0;
    for n in names {
        if let Some(b) = key_usage_bit(n) {
            bits |= 1 << (15 - b);
        }
    }
    let bytes = bits.to_be_bytes();
    let len = if bytes[1] != 0 { 2 } else { 1 };
    let last = bytes[len - 1];
    let unused = if last == 0 {
        0
    } else {
        last.trailing_zeros() as u8
    };
    BitString::new(unused, &bytes[..len]).map_err(|e| Error::crypto("key usage", e))
}

/// KeyUsage (critical) and ExtendedKeyUsage extensions for a profile, in Go's order. Also what a
/// CSR requests.
pub(crate) fn usage_extensions(profile: &Profile, ec: bool) -> Result<Vec<Extension>> {
    let mut exts = Vec::new();
    let ku = effective_key_usages(&profile.key_usages, ec);
    exts.push(ext(
        "2.5.29.15",
        true,
        enc("key usage", &key_usage_bits(&ku)?)?,
    )?);
    if !profile.ext_key_usages.is_empty() {
        let oids = profile
            .ext_key_usages
            .iter()
            .filter_map(|n| ext_key_usage_oid(n))
            .collect();
        exts.push(ext(
            "2.5.29.37",
            false,
            enc("extended key usage", &ExtendedKeyUsage(oids))?,
        )?);
    }
    Ok(exts)
}

/// The SubjectAltName extension, when the profile has SANs.
pub(crate) fn san_extension(profile: &Profile) -> Result<Option<Extension>> {
    if !profile.dns.is_empty() || !profile.ips.is_empty() {
        let mut names = Vec::new();
        for d in &profile.dns {
            names.push(GeneralName::DnsName(
                Ia5String::new(d).map_err(|e| Error::crypto(format!("DNS SAN {d:?}"), e))?,
            ));
        }
        for ip in &profile.ips {
            names.push(GeneralName::from(*ip));
        }
        return Ok(Some(ext(
            "2.5.29.17",
            false,
            enc("subject alt name", &SubjectAltName(names))?,
        )?));
    }
    Ok(None)
}

/// A CA certificate's subject (raw DER) and subject key identifier.
type IssuerFacts = (Vec<u8>, Option<Vec<u8>>);

thread_local! {
    /// The last CA certificate read by [`issuer_facts`] on this thread: a bulk run signs
    /// thousands of certificates with one CA.
    static LAST_ISSUER: crate::memo::Last<std::result::Result<IssuerFacts, String>> =
        const { std::cell::RefCell::new(None) };
}

/// What a certificate signed by `ca_der` takes from it: its subject and its SKI.
fn issuer_facts(ca_der: &[u8]) -> Result<IssuerFacts> {
    crate::memo::last(&LAST_ISSUER, ca_der, || {
        let (_, ca) = x509_parser::certificate::X509Certificate::from_der(ca_der)
            .map_err(|e| e.to_string())?;
        let ski = ca
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => {
                    Some(k.0.to_vec())
                }
                _ => None,
            });
        Ok((ca.tbs_certificate.subject.as_raw().to_vec(), ski))
    })
    .map_err(|e| Error::crypto("reading the CA certificate", e))
}

/// Builds and signs a certificate. `issuer = None` makes it self-signed with `key`.
pub fn issue(
    profile: &Profile,
    key: &PrivateKey,
    issuer: Option<Issuer<'_>>,
    when: Issuance,
) -> Result<Vec<u8>> {
    let subject = encode_subject(&profile.cn, &profile.orgs)?;
    let (issuer_name, signer, aki) = match issuer {
        None => (subject.clone(), key, None),
        Some(is) => {
            let (name, ski) = issuer_facts(is.cert_der)?;
            let ski = ski.unwrap_or_else(|| key_identifier(is.key.public_key_bits()));
            (name, is.key, Some(ski))
        }
    };

    let mut exts = usage_extensions(profile, key.algorithm().is_ec())?;
    let bc = BasicConstraints {
        ca: profile.is_ca,
        path_len_constraint: None,
    };
    exts.push(ext("2.5.29.19", true, enc("basic constraints", &bc)?)?);
    let ski = OctetString::new(key_identifier(key.public_key_bits()))
        .map_err(|e| Error::crypto("ski", e))?;
    exts.push(ext(
        "2.5.29.14",
        false,
        enc("subject key identifier", &SubjectKeyIdentifier(ski))?,
    )?);
    if let Some(aki) = aki {
        let v = AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(aki).map_err(|e| Error::crypto("aki", e))?),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        };
        exts.push(ext(
            "2.5.29.35",
            false,
            enc("authority key identifier", &v)?,
        )?);
    }
    exts.extend(san_extension(profile)?);

    let sig_alg = signer.signature_algorithm_der();
    let tbs = TbsCertificate {
        version: 2,
        serial: Uint::new(&when.serial.to_be_bytes()).map_err(|e| Error::crypto("serial", e))?,
        signature: any("signature algorithm", &sig_alg)?,
        issuer: any("issuer", &issuer_name)?,
        validity: Validity {
            not_before: time(when.not_before)?,
            not_after: time(when.not_after)?,
        },
        subject: any("subject", &subject)?,
        spki: any("public key", &key.spki_der())?,
        extensions: exts,
    };
    let tbs_der = enc("certificate", &tbs)?;
    let signature = signer.sign(&tbs_der)?;
    let cert = CertificateDer {
        tbs: any("certificate", &tbs_der)?,
        algorithm: any("signature algorithm", &sig_alg)?,
        signature: BitString::from_bytes(&signature).map_err(|e| Error::crypto("signature", e))?,
    };
    enc("certificate", &cert)
}

/// PEM of a DER certificate (`CERTIFICATE`, 64 columns, LF).
pub fn cert_pem(der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new("CERTIFICATE", der.to_vec()),
        crate::x509::keys::pem_config(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x509::keys::KeyAlgorithm;
    use time::macros::datetime;

    #[test]
    fn subject_has_multivalued_o_then_cn() {
        let der = encode_subject("jane", &["team-b".into(), "devs".into(), "team-b".into()])
            .expect("subject");
        let (_, name) = x509_parser::x509::X509Name::from_der(&der).expect("parse");
        let rdns: Vec<_> = name.iter().collect();
        assert_eq!(rdns.len(), 2);
        assert_eq!(rdns[0].iter().count(), 2, "both O values share one RDN");
        assert_eq!(name.to_string(), "O=devs + O=team-b, CN=jane");
    }

    #[test]
    fn key_usage_encoding_is_minimal() {
        let leaf =
            key_usage_bits(&["digital_signature".into(), "key_encipherment".into()]).expect("ku");
        assert_eq!(enc("ku", &leaf).expect("der"), [0x03, 0x02, 0x05, 0xa0]);
        let ca = key_usage_bits(&[
            "digital_signature".into(),
            "key_encipherment".into(),
            "key_cert_sign".into(),
        ])
        .expect("ku");
        assert_eq!(enc("ku", &ca).expect("der"), [0x03, 0x02, 0x02, 0xa4]);
    }

    #[test]
    fn self_signed_and_leaf_verify() {
        let ca_key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).expect("key");
        let ca_profile = Profile {
            cn: "kubernetes".into(),
            orgs: vec![],
            dns: vec!["kubernetes".into()],
            ips: vec![],
            key_usages: vec![
                "digital_signature".into(),
                "key_encipherment".into(),
                "key_cert_sign".into(),
            ],
            ext_key_usages: vec![],
            is_ca: true,
        };
        let when = Issuance {
            not_before: datetime!(2026-01-01 0:00 UTC),
            not_after: datetime!(2051-01-01 0:00 UTC),
            serial: (1 << 63) - 2,
        };
        let ca_der = issue(&ca_profile, &ca_key, None, when).expect("ca");
        let leaf_key = PrivateKey::generate(KeyAlgorithm::EcdsaP384).expect("key");
        let leaf_profile = Profile {
            cn: "kube-apiserver".into(),
            is_ca: false,
            dns: vec!["kubernetes".into()],
            ips: vec!["10.96.0.1".parse().expect("ip"), "::1".parse().expect("ip")],
            ext_key_usages: vec!["server_auth".into()],
            key_usages: vec!["digital_signature".into(), "key_encipherment".into()],
            orgs: vec![],
        };
        let leaf_der = issue(
            &leaf_profile,
            &leaf_key,
            Some(Issuer {
                cert_der: &ca_der,
                key: &ca_key,
            }),
            when,
        )
        .expect("leaf");
        let (_, ca) =
            x509_parser::certificate::X509Certificate::from_der(&ca_der).expect("ca parse");
        let (_, leaf) =
            x509_parser::certificate::X509Certificate::from_der(&leaf_der).expect("leaf parse");
        ca.verify_signature(None).expect("self signature");
        leaf.verify_signature(Some(ca.public_key()))
            .expect("leaf signature");
        assert_eq!(leaf.issuer().as_raw(), ca.subject().as_raw());
        assert!(
            !leaf
                .key_usage()
                .expect("ku")
                .expect("ku")
                .value
                .key_encipherment(),
            "no keyEncipherment on EC"
        );
        assert_eq!(
            ca.validity().not_after.timestamp(),
            when.not_after.unix_timestamp(),
            "GeneralizedTime after 2050"
        );
        assert_eq!(
            leaf.raw_serial(),
            &[0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]
        );
    }

    /// The verifier remembers valid signatures only: after a good answer, the same
    /// certificate with one bit of its signature flipped, and the same contents signed by
    /// another key with the CA's name, are still refused.
    #[test]
    fn remembered_signatures_never_accept_a_changed_certificate() {
        use crate::x509::chain::{signed_by, verify_leaf, Usage};
        let profile = |cn: &str, is_ca: bool| Profile {
            cn: cn.into(),
            orgs: vec![],
            dns: vec![],
            ips: vec![],
            key_usages: if is_ca {
                vec!["digital_signature".into(), "key_cert_sign".into()]
            } else {
                vec!["digital_signature".into()]
            },
            ext_key_usages: if is_ca {
                vec![]
            } else {
                vec!["client_auth".into()]
            },
            is_ca,
        };
        let when = Issuance {
            not_before: datetime!(2026-01-01 0:00 UTC),
            not_after: datetime!(2027-01-01 0:00 UTC),
            serial: 7,
        };
        let at = datetime!(2026-06-01 0:00 UTC);
        let ca_key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).expect("key");
        let ca = issue(&profile("kubernetes", true), &ca_key, None, when).expect("ca");
        let other_key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).expect("key");
        let other = issue(&profile("kubernetes", true), &other_key, None, when).expect("ca");
        let leaf_key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).expect("key");
        let by = |cert_der: &[u8], key: &PrivateKey| {
            issue(
                &profile("admin", false),
                &leaf_key,
                Some(Issuer { cert_der, key }),
                when,
            )
            .expect("leaf")
        };
        let leaf = by(&ca, &ca_key);
        for _ in 0..2 {
            verify_leaf(&leaf, &ca, at, Usage::Any).expect("valid leaf");
            verify_leaf(&leaf, &ca, at, Usage::ClientAuth).expect("valid leaf");
            signed_by(&ca, &ca).expect("self-signed");
        }
        let mut flipped = leaf.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(verify_leaf(&flipped, &ca, at, Usage::Any).is_err());
        assert!(signed_by(&flipped, &ca).is_err());
        let forged = by(&other, &other_key);
        assert!(verify_leaf(&forged, &ca, at, Usage::Any).is_err());
        assert!(signed_by(&forged, &ca).is_err());
        verify_leaf(&leaf, &ca, at, Usage::Any).expect("still valid");
    }
}
