//! One model, one judge: plan, init, verify, renew and nodes agree about every file, because
//! they are views of one assessment. These are the four cases that once disagreed, run with the
//! real binary and checked with openssl and kubectl.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{
    der_of, facts_der, init_tree, kpki, kpki_fail, kpki_ok, kubeconfig_facts, openssl_name, s,
    snapshot, tool_ok, workspace,
};

/// An ECDSA tree for node `demo` at `<dir>/pki`, kubeconfigs in `<dir>`.
fn demo_tree(dir: &Path) -> PathBuf {
    init_tree(dir, &["--node-name", "demo"])
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn step<'a>(plan: &'a Value, entry: &str) -> &'a Value {
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["entry"] == entry)
        .unwrap_or_else(|| panic!("no step for {entry}: {plan:#}"))
}

fn codes(v: &Value, entry: &str) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .filter(|f| f["entry"] == entry)
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

/// Case 1: a spec whose CN for apiserver-etcd-client changed. Before, plan and init said
/// "reuse" while verify said subject-cn-mismatch.
#[test]
fn a_changed_cn_in_the_spec_is_drift_for_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = demo_tree(tmp.path());
    let spec = tmp.path().join("spec.toml");
    let text = kpki_ok(["spec"]).replace(
        "cn = \"kube-apiserver-etcd-client\"",
        "cn = \"etcd-client-renamed\"",
    );
    assert!(text.contains("etcd-client-renamed"));
    fs::write(&spec, text).unwrap();
    let base = ["--spec", s(&spec), "--cert-dir", s(&pki)];

    let mut a = vec!["plan", "-o", "json"];
    a.extend(base);
    let plan = json(&kpki_ok(&a));
    let s = step(&plan, "apiserver-etcd-client");
    assert_eq!(s["action"], "regenerate", "{s:#}");
    assert!(codes(&s["findings"], "apiserver-etcd-client").contains(&"subject-cn-mismatch".into()));
    // Only that entry moves.
    let moving: Vec<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"] != "reuse")
        .map(|s| s["entry"].as_str().unwrap())
        .collect();
    assert_eq!(moving, ["apiserver-etcd-client"]);

    let mut a = vec!["verify", "-o", "json"];
    a.extend(base);
    let out = kpki(&a);
    assert_eq!(out.status.code(), Some(1));
    let report = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        codes(&report["findings"], "apiserver-etcd-client"),
        ["subject-cn-mismatch"]
    );

    let before = snapshot(tmp.path());
    let mut a = vec!["init"];
    a.extend(base);
    let (code, err) = kpki_fail(&a);
    assert_eq!(code, 2);
    assert!(
        err.contains("apiserver-etcd-client") && err.contains("subject-cn-mismatch"),
        "{err}"
    );
    assert_eq!(
        before,
        snapshot(tmp.path()),
        "a refused init writes nothing"
    );

    let mut a = vec!["init", "--regenerate-drifted"];
    a.extend(base);
    kpki_ok(&a);
    let subject = openssl_name(&pki.join("apiserver-etcd-client.crt"), "subject");
    assert!(subject.contains("etcd-client-renamed"), "{subject}");
    let mut a = vec!["verify"];
    a.extend(base);
    kpki_ok(&a);
}

/// Case 2: a tree made with --node-name demo, checked without it. The node name comes from
/// the tree, never from this host's name.
#[test]
fn the_node_name_comes_from_the_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = demo_tree(tmp.path());
    let dir = s(&pki);
    let text = kpki_ok(["plan", "--cert-dir", dir]);
    let row = text
        .lines()
        .find(|l| l.starts_with("node_name"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(row.contains("demo") && row.contains("the tree"), "{row}");
    let plan = json(&kpki_ok(["plan", "-o", "json", "--cert-dir", dir]));
    for s in plan["steps"].as_array().unwrap() {
        assert_eq!(s["action"], "reuse", "{s:#}");
    }
    kpki_ok(["verify", "--cert-dir", dir]);
    // A different node name given on the command line contradicts the tree: named, refused.
    let (code, err) = kpki_fail(["init", "--cert-dir", dir, "--node-name", "other"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--node-name") && err.contains("demo") && err.contains("contradicts"),
        "{err}"
    );
    let out = kpki([
        "verify",
        "-o",
        "json",
        "--cert-dir",
        dir,
        "--node-name",
        "other",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report = json(&String::from_utf8_lossy(&out.stdout));
    let findings = report["findings"].as_array().unwrap();
    assert!(findings.iter().any(|f| f["code"] == "input-conflict"));
    // The CN findings this causes point at the input, not at a renewal.
    let cn = findings
        .iter()
        .find(|f| f["code"] == "subject-cn-mismatch" && f["entry"] == "etcd-server")
        .unwrap_or_else(|| panic!("{report:#}"));
    assert!(
        cn["fix"].as_str().unwrap().contains("drop --node-name"),
        "{cn:#}"
    );
}

/// Case 3: renewing kubelet.conf keeps the tree's node; `renew all` leaves kubelet.conf alone
/// (the kubelet rotates it); a kubeconfig whose user does not name its certificate is flagged.
#[test]
fn renew_keeps_the_identity_and_all_leaves_kubelet_conf_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = demo_tree(tmp.path());
    let dir = s(&pki);
    let kubelet = tmp.path().join("kubelet.conf");

    let dry = kpki_ok(["certs", "renew", "all", "--dry-run", "--cert-dir", dir]);
    assert!(!dry.contains("kubelet.conf"), "{dry}");
    assert!(dry.contains("admin.conf"), "{dry}");

    let dry = kpki_ok([
        "certs",
        "renew",
        "kubelet.conf",
        "--dry-run",
        "--cert-dir",
        dir,
    ]);
    assert!(
        dry.contains("kubelet.conf") && dry.contains("expires") && dry.contains("->"),
        "{dry}"
    );

    kpki_ok(["certs", "renew", "kubelet.conf", "--cert-dir", dir]);
    let k = kubeconfig_facts(&kubelet);
    let f = facts_der(&der_of(&k.cert_pem));
    assert_eq!(f.cn, ["system:node:demo"]);
    assert_eq!(k.user, "system:node:demo");

    let (code, err) = kpki_fail([
        "certs",
        "renew",
        "kubelet.conf",
        "--cert-dir",
        dir,
        "--node-name",
        "other",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("contradicts"), "{err}");

    // Rename the user (and the context pointing at it) with kubectl: a warning, not an error.
    let ctx = format!("--kubeconfig={}", kubelet.display());
    tool_ok(
        "kubectl",
        [
            ctx.as_str(),
            "config",
            "rename-context",
            "system:node:demo@kubernetes",
            "someone@kubernetes",
            "--server=https://127.0.0.1:1",
        ],
        None,
    );
    let out = kpki(["verify", "-o", "json", "--cert-dir", dir]);
    let report = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(
        codes(&report["findings"], "kubelet.conf"),
        ["kubeconfig-user-mismatch"]
    );
}

/// Case 4: the CLI crate writes nothing of the tree itself: every write goes through the
/// library's plan and apply.
#[test]
fn the_cli_does_no_tree_io() {
    let src = workspace().join("crates/kpki-cli/src");
    let forbidden = [
        "write_atomic",
        "kpki::internal::apply",
        "OpenOptions",
        "set_permissions",
        "fs::rename",
        "remove_file",
        "fs::copy",
    ];
    for e in fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        let text = fs::read_to_string(&p).unwrap();
        for f in forbidden {
            assert!(!text.contains(f), "{} uses {f}", p.display());
        }
        // The man pages are the CLI's own output, not the tree's.
        if text.contains("fs::write") {
            assert!(
                p.ends_with("operate_cmd.rs"),
                "{} writes a file",
                p.display()
            );
        }
    }
}
