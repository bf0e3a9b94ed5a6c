//! `PrivateKey::from_pem` on arbitrary text: what `disk::observe` does with every `.key` file and
//! every kubeconfig's `client-key-data`. Must return `Err`, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = kpki::internal::x509::keys::PrivateKey::from_pem(text) {
        // What the verifier and planner ask of a loaded key.
        let spki = key.spki_der();
        assert!(key.matches_spki(&spki));
        let _ = kpki::internal::x509::keys::algorithm_of_spki(&spki);
        let _ = key.public_key_pem();
        let _ = key.signature_algorithm_der();
    }
});
