//! kpki's etcd certificates in a real etcd (Debian's etcd-server 3.4): a two-member cluster with
//! client and peer mutual TLS, `etcdctl` with the health-check and API server client certificates,
//! and a client certificate from another CA refused.

use std::process::Output;

use crate::util::etcd::{require_etcd, Etcd};
use crate::util::{init_tree, openssl, s, serial, write_file};

/// The node name of the trees ([`crate::util::INPUTS`]), also the first member's name.
const NODE: &str = "cp-1";

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn etcd_accepts_kpki_certificates(algorithm: &str, extra: &[&str]) {
    require_etcd();
    let tmp = tempfile::tempdir().unwrap();
    let pki = init_tree(
        &tmp.path().join("tree"),
        &[&["--encryption-algorithm", algorithm], extra].concat(),
    );
    let other = init_tree(&tmp.path().join("other"), &[]);
    // Two members: a write needs both, so the peer certificates must work in both directions.
    let etcd = Etcd::start(
        tmp.path(),
        &[(NODE, pki.as_path()), ("cp-2", pki.as_path())],
    );

    for member in 0..2 {
        let out = etcd.ctl(
            &pki,
            "etcd/healthcheck-client",
            member,
            &["endpoint", "health"],
        );
        assert!(
            out.status.success() && text(&out).contains("is healthy"),
            "member {member}: {}\n{}",
            text(&out),
            etcd.logs()
        );
    }
    let out = etcd.ctl(&pki, "etcd/healthcheck-client", 0, &["member", "list"]);
    let list = text(&out);
    assert!(out.status.success(), "{list}");
    assert_eq!(
        list.lines().filter(|l| l.contains("started")).count(),
        2,
        "{list}"
    );

    let out = etcd.ctl(&pki, "apiserver-etcd-client", 0, &["put", "foo", "bar"]);
    assert!(
        out.status.success() && text(&out).trim() == "OK",
        "{}",
        text(&out)
    );
    // Read through the other member: the value crossed the peer link.
    let out = etcd.ctl(&pki, "apiserver-etcd-client", 1, &["get", "foo"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "foo\nbar\n");

    // A client certificate from another CA is refused by the server.
    let out = etcd.ctl(
        &other,
        "apiserver-etcd-client",
        0,
        &["--insecure-skip-tls-verify", "get", "foo"],
    );
    assert!(
        !out.status.success(),
        "foreign client accepted: {}",
        text(&out)
    );
    assert!(!text(&out).contains("bar"));
    let logs = etcd.logs();
    assert!(
        logs.contains("rejected connection")
            && logs.contains("failed to verify client certificate")
            && logs.contains("certificate signed by unknown authority"),
        "{logs}"
    );
}

#[test]
fn etcd_accepts_kpki_certificates_rsa2048() {
    let _serial = serial(); // ports, two etcd members, a start-up deadline
    etcd_accepts_kpki_certificates("RSA-2048", &[]);
}

/// A tree for kubeadm 1.28 (kubernetesVersion v1.28.4): the etcd clients carry O=system:masters
/// as 1.28 wrote them; etcd must accept them all the same (issue 12).
#[test]
fn etcd_accepts_a_kubeadm_1_28_tree() {
    let _serial = serial(); // ports, two etcd members, a start-up deadline
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_file(
        tmp.path(),
        "kubeadm-1.28.yaml",
        b"apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nkubernetesVersion: v1.28.4\n",
    );
    etcd_accepts_kpki_certificates("RSA-2048", &["--config", s(&cfg)]);
    let pki = init_tree(
        &tmp.path().join("check"),
        &["--encryption-algorithm", "RSA-2048", "--config", s(&cfg)],
    );
    let subject = openssl([
        "x509",
        "-noout",
        "-subject",
        "-in",
        s(&pki.join("apiserver-etcd-client.crt")),
    ]);
    assert_eq!(
        subject.trim(),
        "subject=O = system:masters, CN = kube-apiserver-etcd-client"
    );
}

#[test]
fn etcd_accepts_kpki_certificates_ecdsa_p256() {
    let _serial = serial(); // ports, two etcd members, a start-up deadline
    etcd_accepts_kpki_certificates("ECDSA-P256", &[]);
}
