//! `inspect::info` (and the other read-only questions of `inspect`) on arbitrary DER: the PEM
//! layer is skipped so the fuzzer mutates the ASN.1 directly.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = kpki::internal::x509::inspect::info(data) {
        let dns = ["kubernetes".to_string(), "*.example.com".to_string()];
        let ips = [IpAddr::V4(Ipv4Addr::new(10, 96, 0, 1))];
        let _ = kpki::internal::x509::inspect::missing_sans(&info, &dns, &ips);
        let _ = kpki::internal::x509::inspect::extra_sans(&info, &dns, &ips);
        for d in &info.dns {
            let _ = kpki::internal::x509::inspect::dns_covers(d, "kubernetes.default.svc");
        }
        // Self-signed check: parses both sides and verifies the signature.
        let _ = kpki::internal::x509::chain::signed_by(data, data);
    }
});
