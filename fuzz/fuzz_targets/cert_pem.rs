//! `tree::parse_cert_pem` (every `.crt` file, every kubeconfig's embedded certificates) and then
//! `inspect::info` on what it accepts, as `disk::observe` and `verify` do.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((der, chain)) = kpki::internal::disk::read::parse_cert_pem(data) {
        let _ = kpki::internal::x509::inspect::info(&der);
        for c in &chain {
            let _ = kpki::internal::x509::inspect::info(c);
        }
    }
});
