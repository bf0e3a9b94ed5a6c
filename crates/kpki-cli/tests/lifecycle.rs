//! Issue 5: plan, renew, the external-CA / CSR flow and certificate-key, checked with openssl and
//! x509-parser (not with kpki's own structures).

#![allow(clippy::unwrap_used)] // test helpers panic on purpose

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use x509_parser::prelude::*;

const KPKI: &str = env!("CARGO_BIN_EXE_kpki");

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/kubeadm-v1.28.4-rsa")
}

fn kpki(args: &[&str]) -> Output {
    let out = Command::new(KPKI).args(args).output().expect("run kpki");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "kpki panicked: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ok(args: &[&str]) -> String {
    let out = kpki(args);
    assert!(
        out.status.success(),
        "kpki {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl")
}

fn openssl_ok(args: &[&str]) -> String {
    let out = openssl(args);
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every file below `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

struct Facts {
    cn: String,
    orgs: Vec<String>,
    sans: Vec<String>,
    serial: Vec<u8>,
    spki: Vec<u8>,
    not_before: i64,
}

fn facts_der(der: &[u8]) -> Facts {
    let (_, c) = X509Certificate::from_der(der).unwrap();
    let mut sans = Vec::new();
    if let Ok(Some(san)) = c.subject_alternative_name() {
        for n in &san.value.general_names {
            sans.push(format!("{n}"));
        }
    }
    sans.sort();
    let cn = c
        .subject()
        .iter_common_name()
        .next()
        .map(|a| a.as_str().unwrap().to_string())
        .unwrap_or_default();
    let orgs: Vec<String> = c
        .subject()
        .iter_organization()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    Facts {
        cn,
        orgs,
        sans,
        serial: c.raw_serial().to_vec(),
        spki: c.public_key().raw.to_vec(),
        not_before: c.validity().not_before.timestamp(),
    }
}

fn facts(path: &Path) -> Facts {
    let pem = fs::read(path).unwrap();
    let (_, p) = parse_x509_pem(&pem).unwrap();
    facts_der(&p.contents)
}

/// The embedded client certificate of a kubeconfig, via kubectl (an independent reader).
fn kubeconfig_cert(path: &Path) -> Vec<u8> {
    let out = Command::new("kubectl")
        .args([
            "--kubeconfig",
            s(path),
            "config",
            "view",
            "--raw",
            "-o",
            "jsonpath={.users[0].user.client-certificate-data}",
        ])
        .output()
        .expect("kubectl");
    assert!(
        out.status.success(),
        "kubectl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b64 = String::from_utf8(out.stdout).unwrap();
    let pem = base64_decode(b64.trim());
    let (_, p) = parse_x509_pem(&pem).unwrap();
    p.contents
}

fn base64_decode(s: &str) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(["base64", "-d", "-A"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(s.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    out.stdout
}

const BASE: &[&str] = &[
    "--node-name",
    "cp-1",
    "--apiserver-advertise-address",
    "10.0.0.10",
    "--encryption-algorithm",
    "ECDSA-P256",
];

fn init_tree(dir: &Path) -> PathBuf {
    let pki = dir.join("pki");
    let mut args = vec!["init", "--cert-dir", s(&pki)];
    args.extend_from_slice(BASE);
    ok(&args);
    pki
}

#[test]
fn plan_reports_reuse_then_san_drift_with_its_origin() {
    let dir = tempfile::tempdir().unwrap();
    let pki = init_tree(dir.path());
    let mut args = vec!["plan", "--cert-dir", s(&pki), "-o", "json"];
    args.extend_from_slice(BASE);
    let doc: serde_json::Value = serde_json::from_str(&ok(&args)).unwrap();
    assert_eq!(doc["apiVersion"], "kpki/v1alpha2");
    assert_eq!(doc["kind"], "Plan");
    let steps = doc["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 16);
    assert!(steps.iter().all(|s| s["action"] == "reuse"), "{steps:#?}");

    args.extend_from_slice(&["--apiserver-cert-extra-sans", "10.0.0.5"]);
    let doc: serde_json::Value = serde_json::from_str(&ok(&args)).unwrap();
    let changed: Vec<_> = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"] != "reuse")
        .collect();
    assert_eq!(changed.len(), 1, "{changed:#?}");
    assert_eq!(changed[0]["entry"], "apiserver");
    assert_eq!(changed[0]["action"], "regenerate");
    let reason = changed[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("IP:10.0.0.5") && reason.contains("--apiserver-cert-extra-sans"),
        "{reason}"
    );

    // the plan is only a view: nothing changed on disk
    let before = snapshot(dir.path());
    ok(&args);
    assert_eq!(before, snapshot(dir.path()));
}

#[test]
fn renew_all_replaces_every_leaf_and_keeps_cas() {
    let dir = tempfile::tempdir().unwrap();
    let pki = init_tree(dir.path());
    let leaves = [
        "apiserver",
        "apiserver-kubelet-client",
        "front-proxy-client",
        "etcd/server",
        "etcd/peer",
        "etcd/healthcheck-client",
        "apiserver-etcd-client",
    ];
    // `renew all` leaves kubelet.conf to the kubelet, as kubeadm does (checked below).
    let kubeconfigs = [
        "admin.conf",
        "super-admin.conf",
        "controller-manager.conf",
        "scheduler.conf",
    ];
    let kubelet_before = fs::read(dir.path().join("kubelet.conf")).unwrap();
    let before_leaf: Vec<Facts> = leaves
        .iter()
        .map(|l| facts(&pki.join(format!("{l}.crt"))))
        .collect();
    let before_kc: Vec<Facts> = kubeconfigs
        .iter()
        .map(|k| facts_der(&kubeconfig_cert(&dir.path().join(k))))
        .collect();
    let ca_files = [
        "ca.crt",
        "ca.key",
        "front-proxy-ca.crt",
        "front-proxy-ca.key",
        "etcd/ca.crt",
        "etcd/ca.key",
    ];
    let ca_before: Vec<Vec<u8>> = ca_files
        .iter()
        .map(|f| fs::read(pki.join(f)).unwrap())
        .collect();
    fs::set_permissions(pki.join("apiserver.crt"), fs::Permissions::from_mode(0o640)).unwrap();

    let later = "2030-01-02T03:04:05Z";
    let mut args = vec![
        "certs",
        "renew",
        "all",
        "--cert-dir",
        s(&pki),
        "--now",
        later,
    ];
    args.extend_from_slice(BASE);
    let out = ok(&args);
    assert!(
        out.contains("Done renewing certificates. You must restart the kube-apiserver"),
        "{out}"
    );

    let later_ts = 1_893_553_445 - 300; // 2030-01-02T03:04:05Z minus the 5-minute backdate
    for (l, old) in leaves.iter().zip(&before_leaf) {
        let new = facts(&pki.join(format!("{l}.crt")));
        assert_ne!(new.spki, old.spki, "{l}: new key");
        assert_ne!(new.serial, old.serial, "{l}: new serial");
        assert_eq!(new.not_before, later_ts, "{l}: fresh validity");
        assert_eq!(
            (&new.cn, &new.orgs, &new.sans),
            (&old.cn, &old.orgs, &old.sans),
            "{l}: same subject and SANs"
        );
        let ca = if l.starts_with("etcd") || *l == "apiserver-etcd-client" {
            "etcd/ca.crt"
        } else if l.starts_with("front") {
            "front-proxy-ca.crt"
        } else {
            "ca.crt"
        };
        openssl_ok(&[
            "verify",
            "-attime",
            &(later_ts + 600).to_string(),
            "-CAfile",
            s(&pki.join(ca)),
            s(&pki.join(format!("{l}.crt"))),
        ]);
        let key_pub = openssl_ok(&["pkey", "-in", s(&pki.join(format!("{l}.key"))), "-pubout"]);
        let cert_pub = openssl_ok(&[
            "x509",
            "-in",
            s(&pki.join(format!("{l}.crt"))),
            "-pubkey",
            "-noout",
        ]);
        assert_eq!(key_pub, cert_pub, "{l}: key matches cert");
        let backups: Vec<_> = fs::read_dir(pki.join(l).parent().unwrap())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| {
                n.starts_with(&format!(
                    "{}.crt.bak-",
                    Path::new(l).file_name().unwrap().to_string_lossy()
                ))
            })
            .collect();
        assert_eq!(
            backups.len(),
            1,
            "{l}: one certificate backup, got {backups:?}"
        );
    }
    // the backup keeps the old mode and the old bytes
    let bak = fs::read_dir(&pki)
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("apiserver.crt.bak-")
        })
        .unwrap();
    assert_eq!(bak.metadata().unwrap().permissions().mode() & 0o777, 0o640);
    assert_eq!(facts(&bak.path()).serial, before_leaf[0].serial);
    assert_eq!(
        fs::read(dir.path().join("kubelet.conf")).unwrap(),
        kubelet_before,
        "renew all leaves kubelet.conf alone"
    );
    for (k, old) in kubeconfigs.iter().zip(&before_kc) {
        let der = kubeconfig_cert(&dir.path().join(k));
        let new = facts_der(&der);
        assert_ne!(new.spki, old.spki, "{k}: new key");
        assert_eq!((&new.cn, &new.orgs), (&old.cn, &old.orgs), "{k}");
        let tmp = dir.path().join("client.pem");
        fs::write(&tmp, pem_of(&der)).unwrap();
        openssl_ok(&[
            "verify",
            "-attime",
            &(later_ts + 600).to_string(),
            "-CAfile",
            s(&pki.join("ca.crt")),
            s(&tmp),
        ]);
    }
    for (f, old) in ca_files.iter().zip(&ca_before) {
        assert_eq!(&fs::read(pki.join(f)).unwrap(), old, "{f} must not change");
    }
    // renewing again with a named target only touches that one
    let snap = snapshot(&pki);
    let mut args = vec![
        "certs",
        "renew",
        "front-proxy-client",
        "--cert-dir",
        s(&pki),
    ];
    args.extend_from_slice(BASE);
    ok(&args);
    let after = snapshot(&pki);
    let changed: Vec<_> = after
        .keys()
        .filter(|k| snap.get(*k) != after.get(*k))
        .map(|k| k.display().to_string())
        .collect();
    assert!(
        changed.iter().all(|c| c.starts_with("front-proxy-client.")),
        "{changed:?}"
    );
    assert!(
        changed.contains(&"front-proxy-client.crt".to_string())
            && changed.contains(&"front-proxy-client.key".to_string())
    );
}

fn pem_of(der: &[u8]) -> String {
    let tmp = tempfile::NamedTempFile::new().unwrap();
    fs::write(tmp.path(), der).unwrap();
    openssl_ok(&["x509", "-inform", "DER", "-in", s(tmp.path())])
}

#[test]
fn renew_all_on_the_kubeadm_fixture_moves_o_values_to_1_29() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let kc = dir.path().join("kc");
    copy_dir(&fixture().join("pki"), &pki);
    copy_dir(&fixture().join("kubeconfig"), &kc);
    let cfg = fixture().join("kubeadm-config.yaml");
    let out = ok(&[
        "certs",
        "renew",
        "all",
        "--config",
        s(&cfg),
        "--cert-dir",
        s(&pki),
        "--kubeconfig-dir",
        s(&kc),
        // kubeadm 1.29 deploys the fixture's v1.28.4 control plane and writes the 1.29 O values.
        "--kubeadm-version",
        "1.29",
        "--now",
        "2026-11-28T09:00:00Z",
    ]);
    assert!(
        out.contains("MISSING!"),
        "super-admin.conf is not in a 1.28 tree: {out}"
    );
    assert_eq!(
        facts(&pki.join("apiserver-kubelet-client.crt")).orgs,
        ["kubeadm:cluster-admins"]
    );
    assert!(facts(&pki.join("apiserver-etcd-client.crt"))
        .orgs
        .is_empty());
    assert!(facts(&pki.join("etcd/healthcheck-client.crt"))
        .orgs
        .is_empty());
    assert_eq!(
        facts_der(&kubeconfig_cert(&kc.join("admin.conf"))).orgs,
        ["kubeadm:cluster-admins"]
    );
    let ts = (1_795_856_400i64 + 600).to_string(); // 2026-11-28T09:10Z
    openssl_ok(&[
        "verify",
        "-attime",
        &ts,
        "-CAfile",
        s(&pki.join("ca.crt")),
        s(&pki.join("apiserver.crt")),
    ]);
    // the kubeadm CA was kept
    assert_eq!(
        fs::read(pki.join("ca.key")).unwrap(),
        fs::read(fixture().join("pki/ca.key")).unwrap()
    );
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            fs::copy(e.path(), &dst).unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let mode = if name.ends_with(".crt") { 0o644 } else { 0o600 };
            fs::set_permissions(&dst, fs::Permissions::from_mode(mode)).unwrap();
        }
    }
}

/// An outside CA made by openssl, living outside the tree.
fn outside_ca(dir: &Path, name: &str, cn: &str) -> (PathBuf, PathBuf) {
    let crt = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    openssl_ok(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        &format!("/CN={cn}"),
        "-days",
        "3650",
        "-keyout",
        s(&key),
        "-out",
        s(&crt),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,digitalSignature",
    ]);
    (crt, key)
}

fn sign_csr(csr: &Path, ca: &(PathBuf, PathBuf), out: &Path) {
    openssl_ok(&[
        "x509",
        "-req",
        "-in",
        s(csr),
        "-CA",
        s(&ca.0),
        "-CAkey",
        s(&ca.1),
        "-CAcreateserial",
        "-days",
        "365",
        "-copy_extensions",
        "copyall",
        "-out",
        s(out),
    ]);
}

#[test]
fn external_ca_flow_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let outside = dir.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    let mut args = vec!["certs", "generate-csr", "--cert-dir", s(&pki)];
    args.extend_from_slice(BASE);
    ok(&args);
    // refuses to overwrite
    let again = kpki(&args);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let leaves = [
        ("apiserver", "ca"),
        ("apiserver-kubelet-client", "ca"),
        ("front-proxy-client", "front-proxy-ca"),
        ("etcd/server", "etcd-ca"),
        ("etcd/peer", "etcd-ca"),
        ("etcd/healthcheck-client", "etcd-ca"),
        ("apiserver-etcd-client", "etcd-ca"),
    ];
    let kubeconfigs = [
        "admin.conf",
        "super-admin.conf",
        "kubelet.conf",
        "controller-manager.conf",
        "scheduler.conf",
    ];
    for (l, _) in leaves {
        let csr = pki.join(format!("{l}.csr"));
        assert_eq!(
            fs::metadata(&csr).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(pki.join(format!("{l}.key")))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        let out = openssl(&["req", "-in", s(&csr), "-verify", "-noout", "-text"]);
        assert!(
            out.status.success(),
            "{l}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Requested Extensions") && text.contains("X509v3 Extended Key Usage"),
            "{l}: {text}"
        );
    }
    assert_eq!(
        fs::metadata(&pki).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for k in kubeconfigs {
        let out = openssl(&[
            "req",
            "-in",
            s(&dir.path().join(format!("{k}.csr"))),
            "-verify",
            "-noout",
        ]);
        assert!(out.status.success(), "{k}");
    }

    let cas: BTreeMap<&str, (PathBuf, PathBuf)> = [
        ("ca", "kubernetes"),
        ("front-proxy-ca", "front-proxy-ca"),
        ("etcd-ca", "etcd-ca"),
    ]
    .into_iter()
    .map(|(n, cn)| (n, outside_ca(&outside, n, cn)))
    .collect();
    // a cert with a wrong SAN first: init must reject it
    let bad_key = outside.join("bad.key");
    let bad_csr = outside.join("bad.csr");
    openssl_ok(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        s(&bad_key),
        "-out",
        s(&bad_csr),
        "-subj",
        "/CN=kube-apiserver",
        "-addext",
        "subjectAltName=DNS:wrong.example.com",
    ]);
    for (l, ca) in leaves {
        sign_csr(
            &pki.join(format!("{l}.csr")),
            &cas[ca],
            &pki.join(format!("{l}.crt")),
        );
    }
    for k in kubeconfigs {
        sign_csr(
            &dir.path().join(format!("{k}.csr")),
            &cas["ca"],
            &dir.path().join(format!("{k}.crt")),
        );
    }
    fs::copy(&cas["ca"].0, pki.join("ca.crt")).unwrap();
    fs::copy(&cas["front-proxy-ca"].0, pki.join("front-proxy-ca.crt")).unwrap();
    fs::copy(&cas["etcd-ca"].0, pki.join("etcd/ca.crt")).unwrap();
    let good_api = fs::read(pki.join("apiserver.crt")).unwrap();
    let good_api_key = fs::read(pki.join("apiserver.key")).unwrap();
    sign_csr(&bad_csr, &cas["ca"], &pki.join("apiserver.crt"));
    fs::copy(&bad_key, pki.join("apiserver.key")).unwrap();
    let mut init = vec!["init", "--cert-dir", s(&pki)];
    init.extend_from_slice(BASE);
    let before = snapshot(dir.path());
    let out = kpki(&init);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("apiserver.crt") && err.contains("DNS:kubernetes") && err.contains("external"),
        "{err}"
    );
    assert_eq!(
        before,
        snapshot(dir.path()),
        "a rejected init writes nothing"
    );

    fs::write(pki.join("apiserver.crt"), good_api).unwrap();
    fs::write(pki.join("apiserver.key"), good_api_key).unwrap();
    let out = ok(&init);
    assert!(out.contains("externally managed"), "{out}");
    for k in kubeconfigs {
        let der = kubeconfig_cert(&dir.path().join(k));
        let tmp = dir.path().join("client.pem");
        fs::write(&tmp, pem_of(&der)).unwrap();
        openssl_ok(&["verify", "-CAfile", s(&cas["ca"].0), s(&tmp)]);
        let ca_data = Command::new("kubectl")
            .args([
                "--kubeconfig",
                s(&dir.path().join(k)),
                "config",
                "view",
                "--raw",
                "-o",
                "jsonpath={.clusters[0].cluster.certificate-authority-data}",
            ])
            .output()
            .unwrap();
        assert_eq!(
            base64_decode(String::from_utf8_lossy(&ca_data.stdout).trim()),
            fs::read(&cas["ca"].0).unwrap(),
            "{k} embeds ca.crt"
        );
    }
    assert!(
        !pki.join("ca.key").exists(),
        "kpki never needs or makes the external CA key"
    );
    // a second init is a no-op
    let snap = snapshot(dir.path());
    ok(&init);
    assert_eq!(snap, snapshot(dir.path()));
}

#[test]
fn certificate_key_is_32_random_bytes_in_hex() {
    let a = ok(&["certs", "certificate-key"]);
    let b = ok(&["certs", "certificate-key"]);
    let a = a.trim();
    assert_eq!(a.len(), 64);
    assert!(
        a.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
        "{a}"
    );
    assert_ne!(a, b.trim());
}

#[test]
fn renew_takes_sans_from_the_spec_unless_keep_sans() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let mut args = vec![
        "init",
        "--cert-dir",
        s(&pki),
        "--apiserver-cert-extra-sans",
        "10.0.0.77",
    ];
    args.extend_from_slice(BASE);
    ok(&args);
    let has_77 = |p: &Path| {
        openssl_ok(&["x509", "-in", s(p), "-noout", "-ext", "subjectAltName"])
            .contains("IP Address:10.0.0.77")
    };
    assert!(has_77(&pki.join("apiserver.crt")));
    // inputs no longer name 10.0.0.77: --keep-sans carries it, like kubeadm
    let mut renew = vec![
        "certs",
        "renew",
        "apiserver",
        "--cert-dir",
        s(&pki),
        "--keep-sans",
    ];
    renew.extend_from_slice(BASE);
    ok(&renew);
    assert!(
        has_77(&pki.join("apiserver.crt")),
        "--keep-sans keeps the old SAN"
    );
    // the default takes the spec + inputs as the source
    renew.retain(|a| *a != "--keep-sans");
    ok(&renew);
    assert!(
        !has_77(&pki.join("apiserver.crt")),
        "renew follows the spec"
    );
    let tmp_kc = pki.join("ca.crt");
    openssl_ok(&[
        "verify",
        "-CAfile",
        s(&tmp_kc),
        s(&pki.join("apiserver.crt")),
    ]);
}
