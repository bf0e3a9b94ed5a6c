//! The node's files (`kpki verify` on a control-plane node reads every file of the manifests
//! directory and the kubelet config): `inputs::node::parse_manifest` on arbitrary bytes with the
//! default spec's components, `parse_kubelet`, and `parse_flags` on the input split into words.
#![no_main]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::OnceLock;

use kpki::internal::node_inputs::{known_components, parse_flags, parse_kubelet, parse_manifest};
use libfuzzer_sys::fuzz_target;

fn known() -> &'static BTreeSet<String> {
    static K: OnceLock<BTreeSet<String>> = OnceLock::new();
    K.get_or_init(|| {
        let spec = kpki::Spec::default_spec().expect("embedded spec");
        known_components(&spec)
    })
}

fuzz_target!(|data: &[u8]| {
    let file = Path::new("/etc/kubernetes/manifests/x.yaml");
    if let Ok(Some(m)) = parse_manifest(file, data, known()) {
        assert!(known().contains(&m.component));
        assert!(m.flags.iter().all(|(f, _)| f.starts_with("--")));
    }
    let _ = parse_kubelet(file, data);
    if let Ok(text) = std::str::from_utf8(data) {
        let words: Vec<String> = text.split_whitespace().map(str::to_string).collect();
        for (f, _) in parse_flags(&words) {
            assert!(f.starts_with("--") && f.len() > 2, "{f:?}");
        }
    }
});
