//! `Kubeconfig::from_yaml` + `.current()` on arbitrary text (every kubeconfig kpki reads), and
//! the read-modify-write path of `kpki kubeconfig`: what kpki writes back must read back equal.
#![no_main]

use kpki::internal::kubeconfig::Kubeconfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cfg) = Kubeconfig::from_yaml(text) else {
        return;
    };
    let _ = cfg.current();
    if let Ok(yaml) = cfg.to_yaml() {
        match Kubeconfig::from_yaml(&yaml) {
            Ok(again) => assert_eq!(again, cfg, "round trip changed the kubeconfig:\n{yaml}"),
            Err(e) => panic!("kpki cannot read back what it wrote: {e}\n{yaml}"),
        }
    }
});
