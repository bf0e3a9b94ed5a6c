//! `kpki token generate` and `kpki kubeconfig bootstrap`, checked against kubeadm's token format
//! and with kubectl, which parses the bootstrap kubeconfig.

use std::collections::BTreeSet;
use std::ffi::OsString;

use crate::util::*;

/// kubeadm's bootstrap token pattern, `^([a-z0-9]{6})\.([a-z0-9]{16})$`, checked by hand.
fn kubeadm_token_format(t: &str) -> bool {
    let ok = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    matches!(t.split_once('.'), Some((id, secret)) if ok(id, 6) && ok(secret, 16))
}

#[test]
fn generated_tokens_have_kubeadms_format_and_are_random() {
    let mut seen = BTreeSet::new();
    let mut chars = BTreeSet::new();
    for _ in 0..20 {
        let out = kpki_ok(["token", "generate"]);
        let t = out.strip_suffix('\n').unwrap();
        assert!(kubeadm_token_format(t), "{t:?}");
        chars.extend(t.chars().filter(|c| *c != '.'));
        assert!(seen.insert(t.to_string()), "repeated token {t}");
    }
    // 20 tokens draw 440 characters: all of [a-z0-9] show up unless the draw is broken.
    assert!(chars.len() >= 30, "{chars:?}");
}

#[test]
fn bootstrap_kubeconfig_parses_with_kubectl_and_carries_the_token() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = init_tree(&tmp.path().join("kube"), &[]);
    let token = kpki_ok(["token", "generate"]).trim().to_string();
    let file = tmp.path().join("bootstrap-kubelet.conf");
    kpki_ok([
        OsString::from("kubeconfig"),
        "bootstrap".into(),
        "--token".into(),
        token.clone().into(),
        "--cert-dir".into(),
        pki.clone().into(),
        "--control-plane-endpoint".into(),
        "k8s.example.internal:6443".into(),
        "--cluster-name".into(),
        "prod".into(),
        "--out".into(),
        file.clone().into(),
    ]);
    assert_eq!(mode(&file), 0o600);

    let v = kubeconfig_json(&file);
    assert_eq!(v["current-context"], "tls-bootstrap-token-user@prod");
    assert_eq!(v["users"].as_array().unwrap().len(), 1);
    assert_eq!(v["users"][0]["name"], "tls-bootstrap-token-user");
    assert_eq!(v["users"][0]["user"]["token"], token.as_str());
    assert!(v["users"][0]["user"]["client-certificate-data"].is_null());
    assert_eq!(v["clusters"][0]["name"], "prod");
    assert_eq!(
        v["clusters"][0]["cluster"]["server"],
        "https://k8s.example.internal:6443"
    );
    let ca = b64decode(
        v["clusters"][0]["cluster"]["certificate-authority-data"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(ca, std::fs::read(pki.join("ca.crt")).unwrap());

    // Without --raw kubectl hides the token: it knows the field is a credential.
    let redacted = tool_ok(
        "kubectl",
        [
            OsString::from("config"),
            "view".into(),
            "--kubeconfig".into(),
            file.clone().into(),
            "-o".into(),
            "jsonpath={.users[0].user.token}".into(),
        ],
        None,
    );
    assert_eq!(String::from_utf8(redacted).unwrap(), "REDACTED");

    // Printed to stdout without --out; the server falls back to the advertise address.
    let yaml = kpki_ok([
        OsString::from("kubeconfig"),
        "bootstrap".into(),
        "--token".into(),
        token.clone().into(),
        "--cert-dir".into(),
        pki.into(),
        "--apiserver-advertise-address".into(),
        "10.0.0.10".into(),
    ]);
    let printed = write_file(tmp.path(), "printed.conf", yaml.as_bytes());
    let v = kubeconfig_json(&printed);
    assert_eq!(
        v["clusters"][0]["cluster"]["server"],
        "https://10.0.0.10:6443"
    );
    assert_eq!(v["users"][0]["user"]["token"], token.as_str());
}

#[test]
fn bootstrap_refuses_bad_tokens_and_a_missing_ca() {
    let tmp = tempfile::tempdir().unwrap();
    for bad in [
        "abcdef",
        "ABCDEF.0123456789abcdef",
        "abcdef.0123456789abcde",
        "abc_ef.0123456789abcdef",
    ] {
        let (code, stderr) = kpki_fail([
            "kubeconfig",
            "bootstrap",
            "--token",
            bad,
            "--control-plane-endpoint",
            "cp:6443",
        ]);
        assert_eq!(code, 2, "{bad}");
        assert!(
            stderr.contains("--token") && stderr.contains("[a-z0-9]{6}.[a-z0-9]{16}"),
            "{bad}: {stderr}"
        );
    }
    let nope = tmp.path().join("nope");
    let (code, stderr) = kpki_fail([
        OsString::from("kubeconfig"),
        "bootstrap".into(),
        "--token".into(),
        "abcdef.0123456789abcdef".into(),
        "--cert-dir".into(),
        nope.into(),
        "--control-plane-endpoint".into(),
        "cp:6443".into(),
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("nope/ca.crt"), "{stderr}");
}
