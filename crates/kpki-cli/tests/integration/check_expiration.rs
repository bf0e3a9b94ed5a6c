//! `kpki certs check-expiration` against real kubeadm output: the v1.28.4 fixture's
//! `check-expiration.txt` (written by kubeadm itself) is reproduced byte for byte, and the JSON /
//! YAML forms follow kubeadm's `output.kubeadm.k8s.io/v1alpha3`, with every date and residual
//! checked against the certificates read with x509-parser.

use std::collections::BTreeSet;
use std::fs;

use serde_json::Value;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::util::{
    copy_dir, fixture, init_tree, kpki, kpki_ok, kubeconfig_cert, s, set_mode,
    spec_without_super_admin, tool_ok, Modes,
};

/// kubeadm ran right after generating the tree: the last certificate (scheduler.conf) was signed
/// at 08:43:45 with NotAfter 2027-11-28 08:43:45, so any instant after that and before 08:44
/// shows `364d` for every leaf and `9y` for every CA, as kubeadm printed.
const KUBEADM_RAN_AT: &str = "2026-11-28T08:43:50Z";

/// kubeadm's output without the annotation lines (first: the command; last: the exit status).
fn kubeadm_output() -> String {
    let text = fs::read_to_string(fixture().join("check-expiration.txt")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("# kubeadm v1.28.4"));
    assert_eq!(*lines.last().unwrap(), "# exit status: 0");
    lines[1..lines.len() - 1]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect()
}

fn fixture_args() -> Vec<String> {
    let f = fixture();
    let mut args = vec![
        "--config".to_string(),
        s(&f.join("kubeadm-config.yaml")).to_string(),
    ];
    args.extend(copy_args(&f));
    args
}

/// A private copy of the fixture (files 0600), to damage; the directory goes with the guard.
fn fixture_copy() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("fx");
    copy_dir(&fixture(), &root, Modes::All(0o600));
    (dir, root)
}

/// The folders of the fixture (or a [`fixture_copy`]) at kubeadm's instant (no cluster config).
fn copy_args(root: &std::path::Path) -> Vec<String> {
    [
        "--cert-dir",
        s(&root.join("pki")),
        "--kubeconfig-dir",
        s(&root.join("kubeconfig")),
        "--now",
        KUBEADM_RAN_AT,
    ]
    .iter()
    .map(|a| a.to_string())
    .collect()
}

fn check_expiration(pre: &[&str], args: &[String], post: &[&str]) -> String {
    let mut a: Vec<&str> = pre.to_vec();
    a.extend_from_slice(&["certs", "check-expiration"]);
    a.extend(args.iter().map(String::as_str));
    a.extend_from_slice(post);
    kpki_ok(&a)
}

/// kubeadm 1.29+'s output for the same tree: one more `!MISSING! super-admin.conf` row, whose
/// first cell widens column 1 of the certificate table (tabwriter: widest cell + 3 padding).
fn with_missing_super_admin(kubeadm: &str) -> String {
    let lines: Vec<&str> = kubeadm.lines().collect();
    let header = lines[0];
    let old = header.find("EXPIRES").unwrap();
    let rest = header.find("EXTERNALLY MANAGED").unwrap() - old;
    let missing = "!MISSING! super-admin.conf";
    let new = old.max(missing.len() + 3);
    let mut out = String::new();
    let mut first_table = true;
    for l in &lines {
        if l.is_empty() {
            out.push_str(&format!("{:<new$}{}\n", missing, " ".repeat(rest)));
            out.push('\n');
            first_table = false;
            continue;
        }
        if first_table {
            out.push_str(&format!("{:<new$}{}\n", l[..old].trim_end(), &l[old..]));
        } else {
            out.push_str(&format!("{l}\n"));
        }
    }
    out
}

fn der_of(pem_bytes: &[u8]) -> Vec<u8> {
    kpki::internal::disk::read::parse_cert_pem(pem_bytes)
        .unwrap()
        .0
}

fn not_after(der: &[u8]) -> OffsetDateTime {
    let (_, c) = X509Certificate::from_der(der).unwrap();
    c.validity().not_after.to_datetime()
}

#[test]
fn fixture_matches_kubeadm_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec_without_super_admin(dir.path());
    let got = check_expiration(&["--spec", s(&spec)], &fixture_args(), &[]);
    assert_eq!(got, kubeadm_output());
}

/// The fixture's args, following kubeadm 1.29 (which deploys the fixture's v1.28.4 control
/// plane and expects super-admin.conf).
fn fixture_args_129() -> Vec<String> {
    let mut a = fixture_args();
    a.extend(["--kubeadm-version".to_string(), "1.29".to_string()]);
    a
}

#[test]
fn default_spec_follows_the_kubeadm_version() {
    // kubernetesVersion v1.28.4: kubeadm 1.28's rows, byte for byte, with the default spec.
    assert_eq!(
        check_expiration(&[], &fixture_args(), &[]),
        kubeadm_output()
    );
    // kubeadm 1.29 also expects super-admin.conf: the only difference is its MISSING row.
    let got = check_expiration(&[], &fixture_args_129(), &[]);
    let want = with_missing_super_admin(&kubeadm_output());
    assert_eq!(got, want);
    assert!(got.contains("\n!MISSING! super-admin.conf   "), "{got}");
    // Two characters wider than kubeadm 1.28's first column, as 1.29+ prints it.
    let old = kubeadm_output().find("EXPIRES").unwrap();
    assert_eq!(got.find("EXPIRES").unwrap(), old + 2);
}

#[test]
fn kubelet_conf_is_listed_when_asked_and_it_embeds_a_certificate() {
    let got = check_expiration(&[], &fixture_args(), &["--with-kubelet-conf"]);
    let kubeadm_rows = kubeadm_output();
    let date = not_after(&kubeconfig_cert(&fixture().join("kubeconfig/kubelet.conf")));
    assert_eq!(
        (
            u8::from(date.month()),
            date.day(),
            date.hour(),
            date.minute()
        ),
        (11, 28, 8, 43)
    );
    let row = format!(
        "{:<27}{:<25}{:<16}{:<24}{:<8}\n",
        "kubelet.conf", "Nov 28, 2027 08:43 UTC", "364d", "ca", "no"
    );
    let at = kubeadm_rows.find("scheduler.conf").unwrap();
    let want = format!("{}{}{}", &kubeadm_rows[..at], row, &kubeadm_rows[at..]);
    assert_eq!(got, want);

    // Once the kubelet references its rotated certificate by path, it is not listed.
    let dir = tempfile::tempdir().unwrap();
    let kdir = dir.path().join("kubeconfig");
    copy_dir(&fixture().join("kubeconfig"), &kdir, Modes::Keep);
    let kubelet = kdir.join("kubelet.conf");
    let text = fs::read_to_string(&kubelet).unwrap();
    let text: String = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("client-certificate-data:") {
                "    client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem\n"
                    .to_string()
            } else if l.trim_start().starts_with("client-key-data:") {
                "    client-key: /var/lib/kubelet/pki/kubelet-client-current.pem\n".to_string()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    fs::write(&kubelet, text).unwrap();
    let mut args = fixture_args();
    let i = args.iter().position(|a| a == "--kubeconfig-dir").unwrap();
    args[i + 1] = s(&kdir).to_string();
    assert_eq!(
        check_expiration(&[], &args, &["--with-kubelet-conf"]),
        kubeadm_rows
    );
}

#[test]
fn json_and_yaml_follow_v1alpha3() {
    let json = check_expiration(&[], &fixture_args_129(), &["-o", "json"]);
    assert!(json.starts_with("{\n    \"kind\": \"CertificateExpirationInfo\",\n    \"apiVersion\": \"output.kubeadm.k8s.io/v1alpha3\",\n"), "{json}");
    assert!(json.ends_with("}\n"));
    let v: Value = serde_json::from_str(&json).unwrap();
    let keys = |v: &Value| -> BTreeSet<String> { v.as_object().unwrap().keys().cloned().collect() };
    let strs = |v: &[&str]| -> BTreeSet<String> { v.iter().map(|s| s.to_string()).collect() };
    assert_eq!(
        keys(&v),
        strs(&[
            "kind",
            "apiVersion",
            "certificates",
            "certificateAuthorities"
        ])
    );
    let now = OffsetDateTime::parse(
        KUBEADM_RAN_AT,
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let pki = fixture().join("pki");
    let kc = fixture().join("kubeconfig");
    let file_of = |name: &str| -> Vec<u8> {
        if name.ends_with(".conf") {
            kubeconfig_cert(&kc.join(name))
        } else {
            let rel = match name {
                "etcd-server" => "etcd/server",
                "etcd-peer" => "etcd/peer",
                "etcd-healthcheck-client" => "etcd/healthcheck-client",
                "etcd-ca" => "etcd/ca",
                n => n,
            };
            der_of(&fs::read(pki.join(format!("{rel}.crt"))).unwrap())
        }
    };
    let names = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(&v["certificates"]),
        [
            "admin.conf",
            "apiserver",
            "apiserver-etcd-client",
            "apiserver-kubelet-client",
            "controller-manager.conf",
            "etcd-healthcheck-client",
            "etcd-peer",
            "etcd-server",
            "front-proxy-client",
            "scheduler.conf",
            "super-admin.conf"
        ]
    );
    assert_eq!(
        names(&v["certificateAuthorities"]),
        ["ca", "etcd-ca", "front-proxy-ca"]
    );
    for c in v["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .chain(v["certificateAuthorities"].as_array().unwrap())
    {
        let name = c["name"].as_str().unwrap();
        if name == "super-admin.conf" {
            assert_eq!(
                keys(c),
                strs(&[
                    "name",
                    "expirationDate",
                    "residualTime",
                    "externallyManaged",
                    "missing"
                ])
            );
            assert_eq!(c["missing"], true);
            assert_eq!(c["expirationDate"], Value::Null);
            assert_eq!(c["residualTime"], 0);
            continue;
        }
        let na = not_after(&file_of(name));
        let date = OffsetDateTime::parse(
            c["expirationDate"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert_eq!(date, na, "{name}");
        assert!(c["expirationDate"].as_str().unwrap().ends_with('Z'));
        assert_eq!(c["residualTime"], (na - now).whole_seconds(), "{name}");
        assert_eq!(c["missing"], false);
        assert_eq!(c["externallyManaged"], false);
        let is_ca = name.ends_with("ca");
        assert_eq!(c.get("caName").is_none(), is_ca, "{name}");
    }
    assert_eq!(v["certificates"][2]["caName"], "etcd-ca");
    let typed: kpki::internal::views::expiration::CertificateExpirationInfo =
        serde_json::from_str(&json).unwrap();
    assert_eq!(typed.certificates.len(), 11);

    // YAML: the same object, keys sorted (read back with an independent YAML parser).
    let yaml = check_expiration(&[], &fixture_args_129(), &["-o", "yaml"]);
    assert!(yaml.starts_with("apiVersion: output.kubeadm.k8s.io/v1alpha3\ncertificateAuthorities:\n- expirationDate: \""), "{yaml}");
    assert!(
        yaml.ends_with("kind: CertificateExpirationInfo\n"),
        "{yaml}"
    );
    let dir = tempfile::tempdir().unwrap();
    let yfile = dir.path().join("out.yaml");
    fs::write(&yfile, &yaml).unwrap();
    let out = tool_ok(
        "python3",
        [
            "-c",
            "import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
            s(&yfile),
        ],
        None,
    );
    let from_yaml: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(from_yaml, v);
}

#[test]
fn external_ca_is_externally_managed() {
    let (_dir, root) = fixture_copy();
    fs::remove_file(root.join("pki/front-proxy-ca.key")).unwrap();
    let args = copy_args(&root);
    let got = check_expiration(&[], &args, &[]);
    let want: String = with_missing_super_admin(&kubeadm_output())
        .lines()
        .map(|l| {
            if l.starts_with("front-proxy-") {
                format!("{}yes     \n", &l[..l.len() - 8])
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(got.matches("yes     \n").count(), 2);
}

#[test]
fn residuals_use_human_duration() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("t");
    fs::create_dir_all(&root).unwrap();
    set_mode(&root, 0o700);
    let pki = init_tree(
        &root,
        &["--cert-validity", "26280h", "--now", "2026-01-15T12:00:00Z"],
    );
    let args: Vec<String> = ["--cert-dir", s(&pki), "--now", "2026-01-15T13:00:00Z"]
        .iter()
        .map(|a| a.to_string())
        .collect();
    // No inputs needed: names and paths come from the spec.
    let text = check_expiration(&[], &args, &["--with-kubelet-conf"]);
    let lines: Vec<&str> = text.lines().collect();
    // kubeadm 1.31+ (HumanDuration) prints a 3-year leaf as 2y364d (≤1.30 printed 2y).
    for l in &lines[1..13] {
        assert!(l.contains("   2y364d   "), "{l}");
    }
    assert!(
        lines[15].starts_with("ca ") && lines[15].contains("   9y   "),
        "{text}"
    );
    // 12 rows: 7 leaves + 5 kubeconfigs (kubelet.conf embeds its certificate here, and is
    // asked for).
    assert!(lines[13].is_empty(), "{text}");

    // Past expiry: kubeadm's "<invalid>".
    let args: Vec<String> = ["--cert-dir", s(&pki), "--now", "2029-02-01T00:00:00Z"]
        .iter()
        .map(|a| a.to_string())
        .collect();
    let text = check_expiration(&[], &args, &[]);
    assert!(
        text.lines().nth(1).unwrap().contains("   <invalid>   "),
        "{text}"
    );
}

#[test]
fn missing_tree_and_unreadable_files() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let args: Vec<String> = ["--cert-dir", s(&pki)]
        .iter()
        .map(|a| a.to_string())
        .collect();
    // Like kubeadm: nothing there is a table of !MISSING! rows, exit 0.
    let text = check_expiration(&[], &args, &[]);
    let missing: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("!MISSING! "))
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(
        missing,
        [
            "admin.conf",
            "apiserver",
            "apiserver-etcd-client",
            "apiserver-kubelet-client",
            "controller-manager.conf",
            "etcd-healthcheck-client",
            "etcd-peer",
            "etcd-server",
            "front-proxy-client",
            "scheduler.conf",
            "super-admin.conf",
            "ca",
            "etcd-ca",
            "front-proxy-ca"
        ]
    );
    // An unreadable certificate stops the command (exit 2), naming the file.
    fs::create_dir_all(&pki).unwrap();
    fs::write(pki.join("apiserver.crt"), "garbage").unwrap();
    let out = kpki(["certs", "check-expiration", "--cert-dir", s(&pki)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("error: ") && err.contains("apiserver.crt"),
        "{err}"
    );
}

/// Like kubeadm's, check-expiration reports dates and leaves private keys unread: a corrupt key
/// file, a corrupt embedded client key and a CA key replaced by garbage change nothing in its
/// table (the CA is not "external": its key file is there). `verify`, which loads every key,
/// names each of them.
#[test]
fn private_keys_are_not_read_for_dates() {
    let (_dir, root) = fixture_copy();
    fs::write(root.join("pki/apiserver.key"), "garbage").unwrap();
    fs::write(
        root.join("pki/front-proxy-ca.key"),
        "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
    )
    .unwrap();
    let admin = root.join("kubeconfig/admin.conf");
    let text = fs::read_to_string(&admin).unwrap();
    let broken: String = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("client-key-data:") {
                "    client-key-data: Z2FyYmFnZQ==\n".to_string()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert_ne!(broken, text);
    fs::write(&admin, broken).unwrap();
    let args = copy_args(&root);
    assert_eq!(
        check_expiration(&[], &args, &[]),
        with_missing_super_admin(&kubeadm_output())
    );
    let mut v = vec!["verify", "-o", "json"];
    v.extend(args.iter().map(String::as_str));
    let out = kpki(&v);
    assert_ne!(out.status.code(), Some(0));
    let report = String::from_utf8(out.stdout).unwrap();
    for file in ["apiserver.key", "front-proxy-ca.key", "admin.conf"] {
        assert!(
            report.contains(file),
            "verify does not name {file}: {report}"
        );
    }
}
