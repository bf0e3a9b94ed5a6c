//! kpki's etcd certificates in a real etcd (Debian's etcd-server 3.4): a two-member cluster with
//! client and peer mutual TLS, `etcdctl` with the health-check and API server client certificates,
//! and a client certificate from another CA refused.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::{free_ports, init_tree, openssl, s, serial, write_file};

/// The node name of the trees ([`crate::util::INPUTS`]), also the first member's name.
const NODE: &str = "cp-1";

fn require_tools() {
    for tool in ["etcd", "etcdctl"] {
        if let Err(e) = Command::new(tool).arg("--version").output() {
            panic!(
                "{tool} is not installed ({e}); run scripts/test.sh, which installs etcd-server \
                 and etcd-client (CI does)"
            );
        }
    }
}

/// A running etcd cluster; every member is killed on drop.
struct Etcd {
    members: Vec<(Child, PathBuf)>,
    client_urls: Vec<String>,
}

impl Etcd {
    /// Starts `names.len()` members on 127.0.0.1, all with the tree's etcd certificates, and
    /// waits (at most 20 s) until the first one reports healthy.
    fn start(pki: &Path, dir: &Path, names: &[&str]) -> Etcd {
        let ports = free_ports(names.len() * 2);
        let peer_url = |i: usize| format!("https://127.0.0.1:{}", ports[2 * i + 1]);
        let client_urls: Vec<String> = (0..names.len())
            .map(|i| format!("https://127.0.0.1:{}", ports[2 * i]))
            .collect();
        let cluster = names
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{n}={}", peer_url(i)))
            .collect::<Vec<_>>()
            .join(",");
        let etcd_pki = pki.join("etcd");
        let mut members = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let log = dir.join(format!("etcd-{name}.log"));
            let f = fs::File::create(&log).unwrap();
            let child = Command::new("etcd")
                .args(["--name", name])
                .arg("--data-dir")
                .arg(dir.join(format!("data-{name}")))
                .args(["--listen-client-urls", &client_urls[i]])
                .args(["--advertise-client-urls", &client_urls[i]])
                .args(["--listen-peer-urls", &peer_url(i)])
                .args(["--initial-advertise-peer-urls", &peer_url(i)])
                .args(["--initial-cluster", &cluster])
                .args(["--initial-cluster-state", "new"])
                .arg("--cert-file")
                .arg(etcd_pki.join("server.crt"))
                .arg("--key-file")
                .arg(etcd_pki.join("server.key"))
                .arg("--client-cert-auth")
                .arg("--trusted-ca-file")
                .arg(etcd_pki.join("ca.crt"))
                .arg("--peer-cert-file")
                .arg(etcd_pki.join("peer.crt"))
                .arg("--peer-key-file")
                .arg(etcd_pki.join("peer.key"))
                .arg("--peer-client-cert-auth")
                .arg("--peer-trusted-ca-file")
                .arg(etcd_pki.join("ca.crt"))
                .stdin(Stdio::null())
                .stdout(Stdio::from(f.try_clone().unwrap()))
                .stderr(Stdio::from(f))
                .spawn()
                .unwrap();
            members.push((child, log));
        }
        let etcd = Etcd {
            members,
            client_urls,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = etcd.ctl(pki, "etcd/healthcheck-client", 0, &["endpoint", "health"]);
            if out.status.success() {
                break;
            }
            if Instant::now() >= deadline {
                panic!(
                    "etcd did not become healthy within 20 s\netcdctl: {}\n{}",
                    String::from_utf8_lossy(&out.stderr),
                    etcd.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        etcd
    }

    /// `etcdctl` against member `member`, trusting `<pki>/etcd/ca.crt`, with the client
    /// certificate `<pki>/<client>.crt` and key `<pki>/<client>.key`.
    fn ctl(&self, pki: &Path, client: &str, member: usize, args: &[&str]) -> Output {
        let base = pki.join(client);
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.client_urls[member]])
            .args(["--dial-timeout", "2s", "--command-timeout", "5s"])
            .arg("--cacert")
            .arg(pki.join("etcd/ca.crt"))
            .arg("--cert")
            .arg(base.with_extension("crt"))
            .arg("--key")
            .arg(base.with_extension("key"))
            .args(args)
            .output()
            .unwrap()
    }

    fn logs(&self) -> String {
        let mut all = String::new();
        for (_, log) in &self.members {
            let mut s = String::new();
            if let Ok(mut f) = fs::File::open(log) {
                let _ = f.read_to_string(&mut s);
            }
            all.push_str(&format!("--- {}\n{s}\n", log.display()));
        }
        all
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for (child, _) in &mut self.members {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn etcd_accepts_kpki_certificates(algorithm: &str, extra: &[&str]) {
    require_tools();
    let tmp = tempfile::tempdir().unwrap();
    let pki = init_tree(
        &tmp.path().join("tree"),
        &[&["--encryption-algorithm", algorithm], extra].concat(),
    );
    let other = init_tree(&tmp.path().join("other"), &[]);
    // Two members: a write needs both, so the peer certificates must work in both directions.
    let etcd = Etcd::start(&pki, tmp.path(), &[NODE, "cp-2"]);

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
