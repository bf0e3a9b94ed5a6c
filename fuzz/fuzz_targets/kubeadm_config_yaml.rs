//! `kubeadm_config::parse` (`--config FILE`) on arbitrary text, then `Inputs::resolve` with no
//! flags for every config it accepts (the validation of each field kpki reads).
#![no_main]

use kpki::inputs::{InputArgs, Inputs};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = kpki::internal::kubeadm_config::parse(text) {
        let _ = Inputs::resolve(&InputArgs::default(), &cfg);
    }
});
