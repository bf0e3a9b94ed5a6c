//! `Spec::parse` (the `--spec FILE` table) on arbitrary text, then `resolve::resolve` against
//! fixed cluster inputs for every table it accepts (template expansion, SAN classification).
#![no_main]

use std::sync::OnceLock;

use kpki::inputs::{InputArgs, Inputs};
use libfuzzer_sys::fuzz_target;

fn inputs() -> &'static Inputs {
    static INPUTS: OnceLock<Inputs> = OnceLock::new();
    INPUTS.get_or_init(|| {
        let mut args = InputArgs::for_cert_dir("/nonexistent/pki");
        args.kubeconfig_dir = Some("/nonexistent".into());
        args.node_name = Some("cp-1".into());
        args.advertise_address = Some([10, 0, 0, 10].into());
        args.apiserver_cert_extra_sans = vec!["api.example.com".into(), "10.0.0.100".into()];
        Inputs::from_args(&args).expect("fixed fuzz inputs resolve")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(spec) = kpki::internal::model::spec::Spec::parse(text, "fuzz") {
        let _ = spec.ca_order();
        let _ = kpki::internal::model::resolve::resolve(&spec, inputs());
    }
});
