//! `kpki verify` reports broken files, but its messages must never quote private-key material:
//! reports end up in terminals and CI logs. A YAML error next to `client-key-data` once put a
//! source snippet holding the start of the key into the report (found while fuzzing).

use std::path::Path;

use crate::util::{init_tree, kpki, s};

/// Runs `kpki verify` (text and JSON) and returns both outputs, stdout and stderr together.
fn verify(dir: &Path) -> Vec<String> {
    ["text", "json"]
        .iter()
        .map(|fmt| {
            let out = kpki([
                "verify",
                "--cert-dir",
                s(&dir.join("pki")),
                "--node-name",
                "cp-1",
                "--apiserver-advertise-address",
                "10.0.0.10",
                "-o",
                fmt,
            ]);
            assert_eq!(
                out.status.code(),
                Some(1),
                "verify must find the broken file"
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr)
        })
        .collect()
}

/// Every 12-character window of `secret` (base64: 9 bytes) that is absent from `report`.
fn assert_no_window(report: &str, secret: &str, what: &str) {
    let chars: Vec<char> = secret.chars().collect();
    for w in chars.windows(12) {
        let s: String = w.iter().collect();
        assert!(
            !report.contains(&s),
            "the report quotes {what} ({s:?}):\n{report}"
        );
    }
}

#[test]
fn kubeconfig_yaml_error_does_not_quote_the_client_key() {
    let tmp = tempfile::tempdir().unwrap();
    init_tree(tmp.path(), &[]);
    let conf = tmp.path().join("admin.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    let key_b64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("client-key-data: "))
        .unwrap()
        .to_string();
    // The YAML error lands on the client-key-data line itself.
    let broken = text.replacen(
        "    client-key-data:",
        "    bogus: [unclosed\n    client-key-data:",
        1,
    );
    assert_ne!(broken, text);
    std::fs::write(&conf, broken).unwrap();
    for report in verify(tmp.path()) {
        assert!(report.contains("admin.conf") && report.contains("kubeconfig-invalid"));
        // Skip the base64 of the constant "-----BEGIN EC PRIVATE KEY-----\n" header (44 chars).
        assert_no_window(&report, &key_b64[44..], "client-key-data");
    }
}

#[test]
fn broken_key_pem_does_not_quote_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    init_tree(tmp.path(), &[]);
    let key = tmp.path().join("pki/apiserver.key");
    let text = std::fs::read_to_string(&key).unwrap();
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    // A character outside base64 in the middle of the body.
    let broken = text.replacen(
        &body[20..40],
        &format!("{}!{}", &body[20..30], &body[30..40]),
        1,
    );
    assert_ne!(broken, text);
    std::fs::write(&key, broken).unwrap();
    for report in verify(tmp.path()) {
        assert!(report.contains("apiserver.key"));
        assert_no_window(&report, &body, "the private key");
    }
}
