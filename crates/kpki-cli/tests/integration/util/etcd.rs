//! A real etcd cluster (Debian's etcd-server 3.4) on kpki's etcd certificates, and `etcdctl`
//! against it. Tests that start one hold [`super::serial`]: members take ports and CPU, and must
//! become healthy within a deadline.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{free_ports, require};

/// How long the members may take to report healthy (a loaded 2-core machine is slow to start
/// two etcd processes doing TLS).
const HEALTHY_WITHIN: Duration = Duration::from_secs(30);

/// Fails with a useful message when etcd or etcdctl is missing.
pub fn require_etcd() {
    require("etcd", "--version", "etcd-server");
    require("etcdctl", "--version", "etcd-client");
}

/// A running etcd cluster; every member is killed on drop.
pub struct Etcd {
    members: Vec<(Child, PathBuf)>,
    client_urls: Vec<String>,
}

impl Etcd {
    /// Starts one member per `(name, cert dir)` on 127.0.0.1 (process-unique ports), each with
    /// client and peer mutual TLS on the etcd certificates of its cert dir, data and logs under
    /// `dir`, and waits until every member reports healthy to `etcdctl endpoint health`.
    pub fn start(dir: &Path, members: &[(&str, &Path)]) -> Etcd {
        let ports = free_ports(members.len() * 2);
        let peer = |i: usize| format!("https://127.0.0.1:{}", ports[2 * i + 1]);
        let client_urls: Vec<String> = (0..members.len())
            .map(|i| format!("https://127.0.0.1:{}", ports[2 * i]))
            .collect();
        let cluster = members
            .iter()
            .enumerate()
            .map(|(i, (n, _))| format!("{n}={}", peer(i)))
            .collect::<Vec<_>>()
            .join(",");
        let mut running = Vec::new();
        for (i, (name, pki)) in members.iter().enumerate() {
            let e = pki.join("etcd");
            let log = dir.join(format!("etcd-{name}.log"));
            let f = fs::File::create(&log).unwrap();
            let child = Command::new("etcd")
                .args(["--name", name])
                .arg("--data-dir")
                .arg(dir.join(format!("data-{name}")))
                .args(["--listen-client-urls", &client_urls[i]])
                .args(["--advertise-client-urls", &client_urls[i]])
                .args(["--listen-peer-urls", &peer(i)])
                .args(["--initial-advertise-peer-urls", &peer(i)])
                .args(["--initial-cluster", &cluster])
                .args(["--initial-cluster-state", "new"])
                .arg("--cert-file")
                .arg(e.join("server.crt"))
                .arg("--key-file")
                .arg(e.join("server.key"))
                .arg("--client-cert-auth")
                .arg("--trusted-ca-file")
                .arg(e.join("ca.crt"))
                .arg("--peer-cert-file")
                .arg(e.join("peer.crt"))
                .arg("--peer-key-file")
                .arg(e.join("peer.key"))
                .arg("--peer-client-cert-auth")
                .arg("--peer-trusted-ca-file")
                .arg(e.join("ca.crt"))
                .stdin(Stdio::null())
                .stdout(Stdio::from(f.try_clone().unwrap()))
                .stderr(Stdio::from(f))
                .spawn()
                .unwrap();
            running.push((child, log));
        }
        let etcd = Etcd {
            members: running,
            client_urls,
        };
        let deadline = Instant::now() + HEALTHY_WITHIN;
        for (i, (_, pki)) in members.iter().enumerate() {
            loop {
                let out = etcd.ctl(pki, "etcd/healthcheck-client", i, &["endpoint", "health"]);
                if out.status.success() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "etcd member {i} did not become healthy within {HEALTHY_WITHIN:?}\n\
                     etcdctl: {}\n{}",
                    String::from_utf8_lossy(&out.stderr),
                    etcd.logs()
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        etcd
    }

    /// `etcdctl` against member `member`, trusting `<pki>/etcd/ca.crt`, with the client
    /// certificate `<pki>/<client>.crt` and key `<pki>/<client>.key`.
    pub fn ctl(&self, pki: &Path, client: &str, member: usize, args: &[&str]) -> Output {
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

    /// Every member's log.
    pub fn logs(&self) -> String {
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
