//! Issue 5: plan, renew, the external-CA / CSR flow and certificate-key, checked with openssl and
//! x509-parser (not with kpki's own structures).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::util::{
    changed, copy_dir, der_of, facts, facts_der, fixture, init_tree, kpki_ok, kubeconfig_cert,
    kubeconfig_facts, openssl, s, set_mode, snapshot, tool, Facts, Kpki, Modes,
};

#[test]
fn plan_reports_reuse_then_san_drift_with_its_origin() {
    let dir = tempfile::tempdir().unwrap();
    let pki = init_tree(dir.path(), &[]);
    let plan = Kpki::new(["plan", "-o", "json"]).cert_dir(&pki).inputs(&[]);
    let doc: serde_json::Value = serde_json::from_str(&plan.ok()).unwrap();
    assert_eq!(doc["apiVersion"], "kpki/v1alpha2");
    assert_eq!(doc["kind"], "Plan");
    let steps = doc["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 16);
    assert!(steps.iter().all(|s| s["action"] == "reuse"), "{steps:#?}");

    let plan = plan.args(["--apiserver-cert-extra-sans", "10.0.0.5"]);
    let doc: serde_json::Value = serde_json::from_str(&plan.ok()).unwrap();
    let regenerated: Vec<_> = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"] != "reuse")
        .collect();
    assert_eq!(regenerated.len(), 1, "{regenerated:#?}");
    assert_eq!(regenerated[0]["entry"], "apiserver");
    assert_eq!(regenerated[0]["action"], "regenerate");
    let reason = regenerated[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("IP:10.0.0.5") && reason.contains("--apiserver-cert-extra-sans"),
        "{reason}"
    );

    // the plan is only a view: nothing changed on disk
    let before = snapshot(dir.path());
    plan.ok();
    assert_eq!(changed(&before, &snapshot(dir.path())), BTreeSet::new());
}

#[test]
fn renew_all_replaces_every_leaf_and_keeps_cas() {
    let dir = tempfile::tempdir().unwrap();
    let pki = init_tree(dir.path(), &[]);
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
    set_mode(&pki.join("apiserver.crt"), 0o640);

    let later = "2030-01-02T03:04:05Z";
    let out = Kpki::new(["certs", "renew", "all", "--now", later])
        .cert_dir(&pki)
        .inputs(&[])
        .ok();
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
            (&new.cn, &new.orgs, &new.sans()),
            (&old.cn, &old.orgs, &old.sans()),
            "{l}: same subject and SANs"
        );
        let ca = if l.starts_with("etcd") || *l == "apiserver-etcd-client" {
            "etcd/ca.crt"
        } else if l.starts_with("front") {
            "front-proxy-ca.crt"
        } else {
            "ca.crt"
        };
        openssl([
            "verify",
            "-attime",
            &(later_ts + 600).to_string(),
            "-CAfile",
            s(&pki.join(ca)),
            s(&pki.join(format!("{l}.crt"))),
        ]);
        let key_pub = openssl(["pkey", "-in", s(&pki.join(format!("{l}.key"))), "-pubout"]);
        let cert_pub = openssl([
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
        let client = kubeconfig_facts(&dir.path().join(k)).cert_pem;
        let new = facts_der(&der_of(&client));
        assert_ne!(new.spki, old.spki, "{k}: new key");
        assert_eq!((&new.cn, &new.orgs), (&old.cn, &old.orgs), "{k}");
        let tmp = dir.path().join("client.pem");
        fs::write(&tmp, client).unwrap();
        openssl([
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
    Kpki::new(["certs", "renew", "front-proxy-client"])
        .cert_dir(&pki)
        .inputs(&[])
        .ok();
    let renewed = changed(&snap, &snapshot(&pki));
    assert!(
        renewed.iter().all(|c| c.starts_with("front-proxy-client.")),
        "{renewed:?}"
    );
    assert!(
        renewed.contains("front-proxy-client.crt") && renewed.contains("front-proxy-client.key")
    );
}

#[test]
fn renew_all_on_the_kubeadm_fixture_moves_o_values_to_1_29() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let kc = dir.path().join("kc");
    copy_dir(&fixture().join("pki"), &pki, Modes::Kubeadm);
    copy_dir(&fixture().join("kubeconfig"), &kc, Modes::Kubeadm);
    let cfg = fixture().join("kubeadm-config.yaml");
    let out = kpki_ok([
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
    openssl([
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

/// An outside CA made by openssl, living outside the tree.
fn outside_ca(dir: &Path, name: &str, cn: &str) -> (PathBuf, PathBuf) {
    let crt = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    openssl([
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
    openssl([
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
    let generate = Kpki::new(["certs", "generate-csr"])
        .cert_dir(&pki)
        .inputs(&[]);
    generate.ok();
    // refuses to overwrite
    let again = generate.run();
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
        let out = tool(
            "openssl",
            ["req", "-in", s(&csr), "-verify", "-noout", "-text"],
            None,
        );
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
        let out = tool(
            "openssl",
            [
                "req",
                "-in",
                s(&dir.path().join(format!("{k}.csr"))),
                "-verify",
                "-noout",
            ],
            None,
        );
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
    openssl([
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
    let init = Kpki::init(&pki).inputs(&[]);
    let before = snapshot(dir.path());
    let out = init.run();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("apiserver.crt") && err.contains("DNS:kubernetes") && err.contains("external"),
        "{err}"
    );
    assert_eq!(
        changed(&before, &snapshot(dir.path())),
        BTreeSet::new(),
        "a rejected init writes nothing"
    );

    fs::write(pki.join("apiserver.crt"), good_api).unwrap();
    fs::write(pki.join("apiserver.key"), good_api_key).unwrap();
    let out = init.ok();
    assert!(out.contains("externally managed"), "{out}");
    for k in kubeconfigs {
        let conf = kubeconfig_facts(&dir.path().join(k));
        let tmp = dir.path().join("client.pem");
        fs::write(&tmp, &conf.cert_pem).unwrap();
        openssl(["verify", "-CAfile", s(&cas["ca"].0), s(&tmp)]);
        assert_eq!(
            conf.ca_pem,
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
    init.ok();
    assert_eq!(changed(&snap, &snapshot(dir.path())), BTreeSet::new());
}

#[test]
fn certificate_key_is_32_random_bytes_in_hex() {
    let a = kpki_ok(["certs", "certificate-key"]);
    let b = kpki_ok(["certs", "certificate-key"]);
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
    let pki = init_tree(dir.path(), &["--apiserver-cert-extra-sans", "10.0.0.77"]);
    let has_77 = |p: &Path| {
        openssl(["x509", "-in", s(p), "-noout", "-ext", "subjectAltName"])
            .contains("IP Address:10.0.0.77")
    };
    assert!(has_77(&pki.join("apiserver.crt")));
    // inputs no longer name 10.0.0.77: --keep-sans carries it, like kubeadm
    let renew = Kpki::new(["certs", "renew", "apiserver"])
        .cert_dir(&pki)
        .inputs(&[]);
    renew.clone().arg("--keep-sans").ok();
    assert!(
        has_77(&pki.join("apiserver.crt")),
        "--keep-sans keeps the old SAN"
    );
    // the default takes the spec + inputs as the source
    renew.ok();
    assert!(
        !has_77(&pki.join("apiserver.crt")),
        "renew follows the spec"
    );
    let tmp_kc = pki.join("ca.crt");
    openssl([
        "verify",
        "-CAfile",
        s(&tmp_kc),
        s(&pki.join("apiserver.crt")),
    ]);
}
