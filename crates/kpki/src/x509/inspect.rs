//! Read-only questions about certificates, answered with x509-parser (an independent parser from
//! the writer in `issue`). Shared by the planner and the verifier.

use std::net::IpAddr;

use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

/// Facts about one certificate, extracted once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject CN values.
    pub cn: Vec<String>,
    /// Subject O values.
    pub orgs: Vec<String>,
    /// DNS SANs.
    pub dns: Vec<String>,
    /// IP SANs.
    pub ips: Vec<IpAddr>,
    /// basicConstraints CA flag.
    pub is_ca: bool,
    /// Whether a basicConstraints extension is present.
    pub has_basic_constraints: bool,
    /// Key usage names set.
    pub key_usages: Vec<String>,
    /// Extended key usage names set (unknown OIDs as dotted strings).
    pub ext_key_usages: Vec<String>,
    /// NotBefore.
    pub not_before: OffsetDateTime,
    /// NotAfter.
    pub not_after: OffsetDateTime,
    /// Raw serial bytes (big-endian, as encoded).
    pub serial: Vec<u8>,
    /// DER SubjectPublicKeyInfo.
    pub spki: Vec<u8>,
    /// Raw subject bytes.
    pub subject_raw: Vec<u8>,
    /// Raw issuer bytes.
    pub issuer_raw: Vec<u8>,
    /// Subject in RFC 4514-ish text.
    pub subject: String,
    /// Subject key identifier, if present.
    pub ski: Option<Vec<u8>>,
    /// Authority key identifier, if present.
    pub aki: Option<Vec<u8>>,
}

/// Parses a DER certificate into [`CertInfo`].
pub fn info(der: &[u8]) -> Result<CertInfo, String> {
    let (_, c) = X509Certificate::from_der(der)
        .map_err(|e| format!("the certificate does not parse: {e}"))?;
    let strs =
        |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue>| -> Vec<String> {
            it.filter_map(|a| a.as_str().ok().map(str::to_string))
                .collect()
        };
    let mut out = CertInfo {
        cn: strs(&mut c.subject().iter_common_name()),
        orgs: strs(&mut c.subject().iter_organization()),
        dns: vec![],
        ips: vec![],
        is_ca: false,
        has_basic_constraints: false,
        key_usages: vec![],
        ext_key_usages: vec![],
        not_before: c.validity().not_before.to_datetime(),
        not_after: c.validity().not_after.to_datetime(),
        serial: c.raw_serial().to_vec(),
        spki: c.public_key().raw.to_vec(),
        subject_raw: c.subject().as_raw().to_vec(),
        issuer_raw: c.issuer().as_raw().to_vec(),
        subject: c.subject().to_string(),
        ski: None,
        aki: None,
    };
    for ext in c.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                for n in &san.general_names {
                    match n {
                        GeneralName::DNSName(d) => out.dns.push(d.to_string()),
                        GeneralName::IPAddress(b) => {
                            if let Ok(a) = <[u8; 4]>::try_from(*b) {
                                out.ips.push(IpAddr::from(a));
                            } else if let Ok(a) = <[u8; 16]>::try_from(*b) {
                                out.ips.push(IpAddr::from(a).to_canonical());
                            }
                        }
                        _ => {}
                    }
                }
            }
            ParsedExtension::BasicConstraints(bc) => {
                out.has_basic_constraints = true;
                out.is_ca = bc.ca;
            }
            ParsedExtension::KeyUsage(ku) => {
                let flags = [
                    (ku.digital_signature(), "digital_signature"),
                    (ku.non_repudiation(), "content_commitment"),
                    (ku.key_encipherment(), "key_encipherment"),
                    (ku.data_encipherment(), "data_encipherment"),
                    (ku.key_agreement(), "key_agreement"),
                    (ku.key_cert_sign(), "key_cert_sign"),
                    (ku.crl_sign(), "crl_sign"),
                ];
                out.key_usages = flags
                    .iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, n)| n.to_string())
                    .collect();
            }
            ParsedExtension::ExtendedKeyUsage(eku) => {
                let named = [
                    (eku.server_auth, "server_auth"),
                    (eku.client_auth, "client_auth"),
                    (eku.code_signing, "code_signing"),
                    (eku.email_protection, "email_protection"),
                    (eku.time_stamping, "time_stamping"),
                    (eku.ocsp_signing, "ocsp_signing"),
                ];
                out.ext_key_usages = named
                    .iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, n)| n.to_string())
                    .collect();
                if eku.any {
                    out.ext_key_usages.push("any".into());
                }
                out.ext_key_usages
                    .extend(eku.other.iter().map(|o| o.to_id_string()));
            }
            ParsedExtension::SubjectKeyIdentifier(k) => out.ski = Some(k.0.to_vec()),
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                out.aki = a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Does a certificate DNS SAN (possibly a `*.` wildcard) cover `name`? (Go's hostname matching.)
pub fn dns_covers(pattern: &str, name: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    let name = name.to_ascii_lowercase();
    if pattern == name {
        return true;
    }
    match pattern.strip_prefix("*.") {
        Some(suffix) => name
            .split_once('.')
            .is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
        None => false,
    }
}

/// The expected SANs that `info` does not cover, as text (`DNS:x`, `IP:y`).
pub fn missing_sans(info: &CertInfo, dns: &[String], ips: &[IpAddr]) -> Vec<String> {
    let mut out = Vec::new();
    for d in dns {
        if !info.dns.iter().any(|p| dns_covers(p, d)) {
            out.push(format!("DNS:{d}"));
        }
    }
    for ip in ips {
        if !info.ips.contains(&ip.to_canonical()) {
            out.push(format!("IP:{ip}"));
        }
    }
    out
}

/// SANs the certificate has beyond the expected ones.
pub fn extra_sans(info: &CertInfo, dns: &[String], ips: &[IpAddr]) -> Vec<String> {
    let mut out = Vec::new();
    for d in &info.dns {
        if !dns.iter().any(|x| x.eq_ignore_ascii_case(d)) {
            out.push(format!("DNS:{d}"));
        }
    }
    for ip in &info.ips {
        if !ips.iter().any(|x| x.to_canonical() == *ip) {
            out.push(format!("IP:{ip}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_one_label() {
        assert!(dns_covers("*.example.com", "a.example.com"));
        assert!(!dns_covers("*.example.com", "a.b.example.com"));
        assert!(!dns_covers("*.example.com", "example.com"));
        assert!(dns_covers("Kubernetes", "kubernetes"));
    }
}
