//! `kpki ca rotate` end to end (issue 14), checked with tools that are not kpki:
//!
//! * every phase's files read with x509-parser, openssl and kubectl (bundles, order, signers);
//! * the apiserver side with real clients: for every pair of phases, `openssl s_server -Verify`
//!   with one phase's apiserver certificate and client-CA file, and `kubectl` with another
//!   phase's admin.conf: a handshake succeeds exactly when both sides trust each other's signer
//!   (neighbouring phases always do: that is what lets components restart one at a time);
//! * service-account tokens signed with the old and the new key verified against `sa.pub` with
//!   `openssl dgst` at every phase;
//! * a real two-member etcd cluster keeps serving put/get through an etcd CA rotation while its
//!   members restart one at a time on different phases;
//! * `verify` knows the phase, the phases refuse to run out of order, abort restores the tree
//!   byte for byte, CA keys are never lost (the archive keeps them).
//!
//! The crash trials of the phases are in tests/crash.rs.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;

const PHASES: [&str; 4] = ["prepare", "trust", "issue", "finish"];

// ------------------------------------------------------------------ helpers

/// A cluster layout (kubeconfigs in `k`, certificates in `k/pki`) made by `kpki init`.
struct Tree {
    _dir: tempfile::TempDir,
    root: PathBuf,
    k: PathBuf,
    pki: PathBuf,
    flags: Vec<String>,
}

impl Tree {
    fn new(node: &str) -> Tree {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let l = crate::util::reliability::Layout::new(&root);
        let flags: Vec<String> = [
            "--node-name",
            node,
            "--apiserver-advertise-address",
            "10.0.0.10",
            "--encryption-algorithm",
            "ECDSA-P256",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let t = Tree {
            _dir: dir,
            root,
            k: l.k.clone(),
            pki: l.pki.clone(),
            flags,
        };
        crate::util::kpki_ok(t.args(&["init"]));
        t
    }

    fn args(&self, cmd: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
        v.push("--cert-dir".into());
        v.push(self.pki.display().to_string());
        v.extend(self.flags.iter().cloned());
        v
    }

    fn rotate(&self, phase: &str, extra: &[&str]) -> String {
        let mut cmd = vec!["ca", "rotate", phase];
        cmd.extend_from_slice(extra);
        crate::util::kpki_ok(self.args(&cmd))
    }

    fn rotate_fails(&self, phase: &str, extra: &[&str]) -> String {
        let mut cmd = vec!["ca", "rotate", phase];
        cmd.extend_from_slice(extra);
        let (code, err) = crate::util::kpki_fail(self.args(&cmd));
        assert_eq!(code, 2, "{err}");
        err
    }

    /// `kpki verify -o json`: exit code and the findings' (code, path) pairs.
    fn verify(&self) -> (i32, Vec<(String, String)>) {
        let out = crate::util::kpki(self.args(&["verify", "-o", "json"]));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        let f = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["code"].as_str().unwrap().to_string(),
                    f["path"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        (out.status.code().unwrap(), f)
    }

    fn assert_verify_clean(&self, ctx: &str) {
        let (code, f) = self.verify();
        let bad: Vec<_> = f
            .iter()
            .filter(|(c, _)| c.starts_with("rotation-") && c != "rotation-in-progress")
            .collect();
        assert!(code == 0 && bad.is_empty(), "{ctx}: verify {code}: {f:?}");
    }

    /// `kpki ca rotate status -o json`: exit code and entry -> phase ("-" when none).
    fn status(&self) -> (i32, BTreeMap<String, String>, serde_json::Value) {
        let out = crate::util::kpki(self.args(&["ca", "rotate", "status", "-o", "json"]));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        let phases = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["entry"].as_str().unwrap().to_string(),
                    e["phase"].as_str().unwrap_or("-").to_string(),
                )
            })
            .collect();
        (out.status.code().unwrap(), phases, v)
    }

    /// Live files only (no backups, no rotation folder), for before/after comparisons.
    fn live(&self) -> BTreeMap<String, Vec<u8>> {
        crate::util::snapshot(&self.k)
            .into_iter()
            .filter(|(p, n)| !n.dir && !p.contains(".bak-") && !p.starts_with("pki/rotation"))
            .map(|(p, n)| (p, n.bytes))
            .collect()
    }

    fn rot(&self, rel: &str) -> PathBuf {
        self.pki.join("rotation").join(rel)
    }
}

/// DER of every PEM block with `label` in a file, in order (x509-parser's PEM reader).
fn blocks_of(bytes: &[u8], label: &str) -> Vec<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(bytes)
        .map(|p| p.unwrap())
        .filter(|p| p.label == label)
        .map(|p| p.contents)
        .collect()
}

fn certs(path: &Path) -> Vec<Vec<u8>> {
    blocks_of(&std::fs::read(path).unwrap(), "CERTIFICATE")
}

fn one_cert(path: &Path) -> Vec<u8> {
    let c = certs(path);
    assert_eq!(c.len(), 1, "{}: {} certificates", path.display(), c.len());
    c.into_iter().next().unwrap()
}

fn pubs(path: &Path) -> Vec<Vec<u8>> {
    blocks_of(&std::fs::read(path).unwrap(), "PUBLIC KEY")
}

/// kubectl's view of a kubeconfig: (CA data certificates, client certificate).
fn kubeconfig(path: &Path) -> (Vec<Vec<u8>>, Vec<u8>) {
    let f = crate::util::kubeconfig_facts(path);
    let client = blocks_of(&f.cert_pem, "CERTIFICATE");
    assert_eq!(client.len(), 1);
    (
        blocks_of(&f.ca_pem, "CERTIFICATE"),
        client.into_iter().next().unwrap(),
    )
}

fn signed_by(cert: &[u8], ca: &[u8]) -> bool {
    crate::util::reliability::signed_by(cert, ca).is_ok()
}

/// openssl's SubjectPublicKeyInfo DER of a certificate file.
fn openssl_spki(cert: &Path) -> Vec<u8> {
    let pem = crate::util::tool_ok(
        "openssl",
        [
            "x509".as_ref(),
            "-noout".as_ref(),
            "-pubkey".as_ref(),
            "-in".as_ref(),
            cert.as_os_str(),
        ],
        None,
    );
    crate::util::tool_ok("openssl", ["pkey", "-pubin", "-outform", "DER"], Some(&pem))
}

fn sha256_hex(data: &[u8]) -> String {
    let out = crate::util::tool_ok("openssl", ["dgst", "-sha256", "-r"], Some(data));
    String::from_utf8(out)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap();
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A process killed (by its id) on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// ------------------------------------------------------------------ phases, files and clients

/// What each phase leaves for the client checks: the apiserver's serving pair and client-CA
/// file, admin.conf, sa.pub.
fn keep_phase(t: &Tree, phase: &str) -> PathBuf {
    let d = t.root.join("phases").join(phase);
    for f in ["apiserver.crt", "apiserver.key", "ca.crt", "sa.pub"] {
        copy(&t.pki.join(f), &d.join(f));
    }
    copy(&t.k.join("admin.conf"), &d.join("admin.conf"));
    d
}

/// `openssl s_server -Verify` with a phase's apiserver certificate and client-CA file.
fn s_server(phase_dir: &Path) -> (Proc, u16) {
    let port = free_port();
    let log = std::fs::File::create(phase_dir.join("s_server.log")).unwrap();
    let child = Command::new("openssl")
        .arg("s_server")
        .args(["-accept", &format!("127.0.0.1:{port}")])
        .arg("-cert")
        .arg(phase_dir.join("apiserver.crt"))
        .arg("-key")
        .arg(phase_dir.join("apiserver.key"))
        .arg("-CAfile")
        .arg(phase_dir.join("ca.crt"))
        .args(["-Verify", "1", "-verify_return_error", "-www", "-quiet"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let p = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "s_server did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    (p, port)
}

/// kubectl with a kubeconfig against a local server (the apiserver certificate names
/// `kubernetes`, not 127.0.0.1).
fn kubectl_get(kubeconfig: &Path, port: u16) -> Result<(), String> {
    let out = crate::util::tool(
        "kubectl",
        [
            "--kubeconfig".as_ref(),
            kubeconfig.as_os_str(),
            format!("--server=https://127.0.0.1:{port}").as_ref(),
            "--tls-server-name=kubernetes".as_ref(),
            "--request-timeout=10s".as_ref(),
            "get".as_ref(),
            "--raw".as_ref(),
            "/".as_ref(),
        ],
        None,
    );
    if out.status.success() && String::from_utf8_lossy(&out.stdout).contains("<HTML>") {
        Ok(())
    } else {
        Err(text(&out))
    }
}

/// A service-account token's signing input signed with `key` (openssl dgst).
fn sign_token(key: &Path, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let input = format!(
        "{}.{}",
        b64(r#"{"alg":"ES256","typ":"JWT"}"#),
        b64(&format!(
            r#"{{"iss":"https://kubernetes.default.svc.cluster.local","sub":"system:serviceaccount:default:{name}"}}"#
        ))
    );
    let msg = dir.join(format!("{name}.input"));
    let sig = dir.join(format!("{name}.sig"));
    std::fs::write(&msg, input).unwrap();
    crate::util::openssl([
        "dgst".as_ref(),
        "-sha256".as_ref(),
        "-sign".as_ref(),
        key.as_os_str(),
        "-out".as_ref(),
        sig.as_os_str(),
        msg.as_os_str(),
    ]);
    (msg, sig)
}

/// True when any public key of `sa.pub` verifies the token (what kube-apiserver's
/// `--service-account-key-file` does with several keys).
fn token_verifies(sa_pub: &Path, token: &(PathBuf, PathBuf), dir: &Path) -> bool {
    pubs(sa_pub).iter().enumerate().any(|(i, der)| {
        let p = dir.join(format!("pub-{i}.pem"));
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(der)
        );
        std::fs::write(&p, pem).unwrap();
        crate::util::tool(
            "openssl",
            [
                "dgst".as_ref(),
                "-sha256".as_ref(),
                "-verify".as_ref(),
                p.as_os_str(),
                "-signature".as_ref(),
                token.1.as_os_str(),
                token.0.as_os_str(),
            ],
            None,
        )
        .status
        .success()
    })
}

#[test]
fn every_phase_keeps_old_and_new_clients_working_and_finish_drops_the_old_ca() {
    let t = Tree::new("cp-1");
    let ca_key_before = std::fs::read(t.pki.join("ca.key")).unwrap();
    let sa_key_before = std::fs::read(t.pki.join("sa.key")).unwrap();
    let o = one_cert(&t.pki.join("ca.crt"));
    let cas = [
        ("ca", "ca"),
        ("front-proxy-ca", "front-proxy-ca"),
        ("etcd-ca", "etcd/ca"),
    ];
    let old_cas: BTreeMap<&str, Vec<u8>> = cas
        .iter()
        .map(|(n, p)| (*n, one_cert(&t.pki.join(format!("{p}.crt")))))
        .collect();
    // Node credentials made by `kpki nodes`, followed through the phases.
    let nodes = crate::util::write_file(&t.root, "nodes.txt", b"node-a,10.1.0.1\nnode-b\n");
    let out = t.root.join("nodes-out");
    std::fs::create_dir(&out).unwrap();
    crate::util::set_mode(&out, 0o755);
    let nodes_args: Vec<String> = [
        "nodes",
        "--serving",
        "--cert-dir",
        t.pki.to_str().unwrap(),
        "--apiserver-advertise-address",
        "10.0.0.10",
        "--encryption-algorithm",
        "ECDSA-P256",
        "--nodes",
        nodes.to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    crate::util::kpki_ok(&nodes_args);

    // ---- prepare: a dry run writes nothing; the real one stages, archives, touches nothing live
    let before = crate::util::snapshot(&t.k);
    let dry = t.rotate("prepare", &["--dry-run"]);
    assert!(dry.contains("dry run: nothing written"), "{dry}");
    assert!(crate::util::changed(&before, &crate::util::snapshot(&t.k)).is_empty());
    let live0 = t.live();
    t.rotate("prepare", &[]);
    assert_eq!(t.live(), live0, "prepare changed a live file");
    assert_eq!(crate::util::mode(&t.pki.join("rotation")), 0o700);
    for (name, _) in cas {
        assert_eq!(crate::util::mode(&t.rot(name)), 0o700);
        assert_eq!(crate::util::mode(&t.rot(&format!("{name}/new.key"))), 0o600);
        // The new CA: self-signed, a CA, its key matches (openssl).
        let new = t.rot(&format!("{name}/new.crt"));
        crate::util::assert_verifies(&new, &new, "any");
        crate::util::assert_key_matches(&t.rot(&format!("{name}/new.key")), &new);
        assert!(
            crate::util::openssl(["x509", "-noout", "-text", "-in", new.to_str().unwrap()])
                .contains("CA:TRUE")
        );
        assert_eq!(one_cert(&t.rot(&format!("{name}/old.crt"))), old_cas[name]);
    }
    assert_eq!(std::fs::read(t.rot("ca/old.key")).unwrap(), ca_key_before);
    assert_eq!(std::fs::read(t.rot("sa/old.key")).unwrap(), sa_key_before);
    crate::util::assert_pub_matches(&t.rot("sa/new.key"), &t.rot("sa/new.pub"));
    assert_eq!(one_cert(&t.rot("signer/ca.crt")), o);
    t.assert_verify_clean("prepare");
    let (code, phases, _) = t.status();
    assert_eq!(code, 0);
    assert!(phases.values().all(|p| p == "prepare"), "{phases:?}");
    // Idempotent: a second prepare changes no byte.
    let s = crate::util::snapshot(&t.k);
    assert!(t.rotate("prepare", &[]).contains("nothing to write"));
    assert!(crate::util::changed(&s, &crate::util::snapshot(&t.k)).is_empty());
    let n = one_cert(&t.rot("ca/new.crt"));
    let sa_old = pubs(&t.rot("sa/old.pub"));
    let sa_new = pubs(&t.rot("sa/new.pub"));
    let new_cas: BTreeMap<&str, Vec<u8>> = cas
        .iter()
        .map(|(name, _)| (*name, one_cert(&t.rot(&format!("{name}/new.crt")))))
        .collect();
    let tokdir = t.root.join("tokens");
    std::fs::create_dir(&tokdir).unwrap();
    let old_token = sign_token(&t.rot("sa/old.key"), &tokdir, "old");
    let new_token = sign_token(&t.rot("sa/new.key"), &tokdir, "new");
    let mut kept = BTreeMap::new();
    kept.insert("prepare", keep_phase(&t, "prepare"));
    crate::util::kpki_ok(&nodes_args);
    let node_conf = out.join("node-a/kubelet.conf");
    let (nca, ncert) = kubeconfig(&node_conf);
    assert_eq!(nca, std::slice::from_ref(&o));
    assert!(signed_by(&ncert, &o));

    // ---- trust: [old, new] everywhere, the old CA signs
    let text = t.rotate("trust", &[]);
    for (name, path) in cas {
        assert_eq!(
            certs(&t.pki.join(format!("{path}.crt"))),
            [old_cas[name].clone(), new_cas[name].clone()],
            "{path}.crt"
        );
    }
    for kc in crate::util::KUBECONFIGS {
        let (ca, client) = kubeconfig(&t.k.join(kc));
        assert_eq!(ca, [o.clone(), n.clone()], "{kc}");
        assert!(signed_by(&client, &o), "{kc}");
    }
    assert_eq!(
        pubs(&t.pki.join("sa.pub")),
        [sa_old.clone(), sa_new.clone()].concat()
    );
    assert_eq!(std::fs::read(t.pki.join("sa.key")).unwrap(), sa_key_before);
    assert_eq!(std::fs::read(t.pki.join("ca.key")).unwrap(), ca_key_before);
    assert_eq!(one_cert(&t.rot("signer/ca.crt")), o);
    // The discovery hash printed for the new CA is openssl's SHA-256 of its public key.
    let want = format!("sha256:{}", sha256_hex(&openssl_spki(&t.rot("ca/new.crt"))));
    assert!(
        text.lines()
            .any(|l| l.contains(&want) && l.contains("(new CA)")),
        "{want} not in:\n{text}"
    );
    assert!(text.contains("--cluster-signing-cert-file"), "{text}");
    // kube-public/cluster-info: kubectl reads the ConfigMap and its kubeconfig; CA = the bundle.
    let cm = crate::util::kpki_ok(t.args(&["ca", "rotate", "status", "--cluster-info"]));
    // (PyYAML reads the ConfigMap; kubectl then reads the kubeconfig inside it.)
    let cm_json = crate::util::tool_ok(
        "python3",
        [
            "-c",
            "import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))",
        ],
        Some(cm.as_bytes()),
    );
    let v: serde_json::Value = serde_json::from_slice(&cm_json).unwrap();
    assert_eq!(v["metadata"]["namespace"], "kube-public");
    let ci = t.root.join("cluster-info.conf");
    std::fs::write(&ci, v["data"]["kubeconfig"].as_str().unwrap()).unwrap();
    let ci_json = crate::util::kubeconfig_json(&ci);
    let ca_b64 = ci_json["clusters"][0]["cluster"]["certificate-authority-data"]
        .as_str()
        .unwrap();
    assert_eq!(
        blocks_of(&crate::util::b64decode(ca_b64), "CERTIFICATE"),
        [o.clone(), n.clone()]
    );
    t.assert_verify_clean("trust");
    let s = crate::util::snapshot(&t.k);
    assert!(t.rotate("trust", &[]).contains("nothing to write"));
    assert!(crate::util::changed(&s, &crate::util::snapshot(&t.k)).is_empty());
    kept.insert("trust", keep_phase(&t, "trust"));
    // Nodes learn the phase from the cert dir: their kubeconfig gets the bundle.
    crate::util::kpki_ok(&nodes_args);
    let (nca, ncert) = kubeconfig(&node_conf);
    assert_eq!(nca, [o.clone(), n.clone()]);
    assert!(signed_by(&ncert, &o));

    // ---- issue: the new CA signs; everything it concerns re-issued with backups
    t.rotate("issue", &[]);
    assert_eq!(certs(&t.pki.join("ca.crt")), [n.clone(), o.clone()]);
    assert_eq!(
        std::fs::read(t.pki.join("ca.key")).unwrap(),
        std::fs::read(t.rot("ca/new.key")).unwrap()
    );
    assert_eq!(std::fs::read(t.rot("ca/old.key")).unwrap(), ca_key_before);
    assert_eq!(
        std::fs::read(t.pki.join("sa.key")).unwrap(),
        std::fs::read(t.rot("sa/new.key")).unwrap()
    );
    assert_eq!(
        pubs(&t.pki.join("sa.pub")),
        [sa_new.clone(), sa_old.clone()].concat()
    );
    assert_eq!(one_cert(&t.rot("signer/ca.crt")), n);
    for leaf in crate::util::LEAVES {
        let crt = t.pki.join(format!("{}.crt", leaf.path));
        let name = cas.iter().find(|(_, p)| *p == leaf.ca).unwrap().0;
        let new_ca = t.rot(&format!("{name}/new.crt"));
        let old_ca = t.rot(&format!("{name}/old.crt"));
        crate::util::assert_verifies(&new_ca, &crt, "any");
        assert!(
            crate::util::verify(&old_ca, &crt, "any").is_err(),
            "{}",
            leaf.path
        );
        crate::util::assert_key_matches(&t.pki.join(format!("{}.key", leaf.path)), &crt);
    }
    for kc in crate::util::KUBECONFIGS {
        let (ca, client) = kubeconfig(&t.k.join(kc));
        assert_eq!(ca, [n.clone(), o.clone()], "{kc}");
        assert!(signed_by(&client, &n), "{kc}");
    }
    let backups: Vec<String> = crate::util::files(&t.k)
        .into_iter()
        .filter(|f| f.contains(".bak-"))
        .collect();
    for f in [
        "pki/apiserver.key",
        "pki/apiserver.crt",
        "admin.conf",
        "pki/etcd/peer.crt",
    ] {
        assert!(
            backups
                .iter()
                .filter(|b| b.starts_with(&format!("{f}.bak-")))
                .count()
                >= 1,
            "no backup of {f}: {backups:?}"
        );
    }
    t.assert_verify_clean("issue");
    let s = crate::util::snapshot(&t.k);
    assert!(t.rotate("issue", &[]).contains("nothing to write"));
    assert!(crate::util::changed(&s, &crate::util::snapshot(&t.k)).is_empty());
    kept.insert("issue", keep_phase(&t, "issue"));
    // Finish refuses while node credentials... are outside the tree: nodes re-issues them.
    crate::util::kpki_ok(&nodes_args);
    let (nca, ncert) = kubeconfig(&node_conf);
    assert_eq!(nca, [n.clone(), o.clone()]);
    assert!(signed_by(&ncert, &n));
    crate::util::assert_verifies(
        &t.rot("ca/new.crt"),
        &out.join("node-a/kubelet.crt"),
        "sslserver",
    );

    // ---- finish: the new CA only; the old CA (with its key) kept in the archive
    t.rotate("finish", &[]);
    for (name, path) in cas {
        assert_eq!(
            certs(&t.pki.join(format!("{path}.crt"))),
            [new_cas[name].clone()]
        );
        assert!(!t.rot(name).exists());
    }
    for kc in crate::util::KUBECONFIGS {
        assert_eq!(
            kubeconfig(&t.k.join(kc)).0,
            std::slice::from_ref(&n),
            "{kc}"
        );
    }
    assert_eq!(pubs(&t.pki.join("sa.pub")), sa_new);
    let archives: Vec<PathBuf> = std::fs::read_dir(t.rot("archive"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(archives.len(), 4, "{archives:?}");
    let archived = |name: &str| {
        archives
            .iter()
            .find(|a| {
                let f = a.file_name().unwrap().to_string_lossy().into_owned();
                f.starts_with(&format!("{name}-2")) && f.ends_with("-finished")
            })
            .unwrap_or_else(|| panic!("no archive of {name}: {archives:?}"))
            .clone()
    };
    assert_eq!(
        std::fs::read(archived("ca").join("old.key")).unwrap(),
        ca_key_before
    );
    assert_eq!(
        std::fs::read(archived("sa").join("old.key")).unwrap(),
        sa_key_before
    );
    assert_eq!(
        std::fs::read(archived("ca").join("new.key")).unwrap(),
        std::fs::read(t.pki.join("ca.key")).unwrap()
    );
    let (code, f) = t.verify();
    assert_eq!(code, 0, "{f:?}");
    assert!(f.iter().all(|(c, _)| !c.starts_with("rotation-")), "{f:?}");
    let (code, phases, _) = t.status();
    assert_eq!(code, 0);
    assert!(phases.values().all(|p| p == "-"), "{phases:?}");
    let s = crate::util::snapshot(&t.k);
    assert!(t.rotate("finish", &[]).contains("nothing to write"));
    assert!(crate::util::changed(&s, &crate::util::snapshot(&t.k)).is_empty());
    kept.insert("finish", keep_phase(&t, "finish"));
    crate::util::kpki_ok(&nodes_args);
    assert_eq!(kubeconfig(&node_conf).0, std::slice::from_ref(&n));

    // ---- real clients: every phase's apiserver against every phase's admin.conf
    let signer = |p: &str| {
        if matches!(p, "prepare" | "trust") {
            &o
        } else {
            &n
        }
    };
    let trusts = |p: &str| -> Vec<&Vec<u8>> {
        match p {
            "prepare" => vec![&o],
            "trust" | "issue" => vec![&o, &n],
            _ => vec![&n],
        }
    };
    let mut matrix = Vec::new();
    for sp in PHASES {
        let (_server, port) = s_server(&kept[sp]);
        for cp in PHASES {
            let server_accepts = trusts(sp).contains(&signer(cp));
            let client_accepts = trusts(cp).contains(&signer(sp));
            let r = kubectl_get(&kept[cp].join("admin.conf"), port);
            matrix.push(format!(
                "server {sp} / client {cp}: {}",
                if r.is_ok() { "ok" } else { "refused" }
            ));
            match (client_accepts, server_accepts, r) {
                (true, true, Ok(())) => {}
                (true, true, Err(e)) => panic!("server {sp}, client {cp}: should work: {e}"),
                (false, _, Err(e)) => assert!(
                    e.contains("certificate signed by unknown authority"),
                    "server {sp}, client {cp}: kubectl should refuse the server: {e}"
                ),
                (true, false, Err(e)) => assert!(
                    e.contains("remote error: tls"),
                    "server {sp}, client {cp}: s_server should refuse the client: {e}"
                ),
                (_, _, Ok(())) => panic!("server {sp}, client {cp}: should have failed"),
            }
        }
    }
    // Neighbouring phases always interoperate (one component at a time may restart); the
    // old CA's clients are refused after finish, the new CA's before trust.
    for (sp, cp) in [
        ("trust", "issue"),
        ("issue", "trust"),
        ("issue", "finish"),
        ("finish", "issue"),
        ("prepare", "trust"),
        ("trust", "prepare"),
    ] {
        assert!(
            matrix.contains(&format!("server {sp} / client {cp}: ok")),
            "{matrix:?}"
        );
    }
    for (sp, cp) in [
        ("finish", "trust"),
        ("finish", "prepare"),
        ("prepare", "issue"),
        ("prepare", "finish"),
    ] {
        assert!(
            matrix.contains(&format!("server {sp} / client {cp}: refused")),
            "{matrix:?}"
        );
    }
    println!("{}", matrix.join("\n"));

    // ---- service-account tokens: both keys verify during the overlap, only the new after finish
    for (phase, old_ok, new_ok) in [
        ("prepare", true, false),
        ("trust", true, true),
        ("issue", true, true),
        ("finish", false, true),
    ] {
        let sa = kept[phase].join("sa.pub");
        assert_eq!(
            token_verifies(&sa, &old_token, &tokdir),
            old_ok,
            "{phase}: old-key token"
        );
        assert_eq!(
            token_verifies(&sa, &new_token, &tokdir),
            new_ok,
            "{phase}: new-key token"
        );
    }
}

#[test]
fn abort_goes_back_to_the_old_ca_byte_for_byte_and_keeps_the_new_one() {
    let t = Tree::new("cp-1");
    let live0 = t.live();
    t.rotate("prepare", &["--ca", "ca,sa"]);
    let (_, phases, _) = t.status();
    assert_eq!(phases["ca"], "prepare");
    assert_eq!(phases["front-proxy-ca"], "-");
    let new_key = std::fs::read(t.rot("ca/new.key")).unwrap();
    t.rotate("trust", &[]);
    assert_ne!(t.live(), live0);
    t.rotate("abort", &[]);
    assert_eq!(
        t.live(),
        live0,
        "abort did not restore every live file byte for byte"
    );
    assert!(!t.rot("ca").exists() && !t.rot("sa").exists());
    let aborted: Vec<PathBuf> = std::fs::read_dir(t.rot("archive"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with("-aborted"))
        .collect();
    assert_eq!(aborted.len(), 2, "{aborted:?}");
    let ca_arc = aborted
        .iter()
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("ca-"))
        .unwrap();
    assert_eq!(std::fs::read(ca_arc.join("new.key")).unwrap(), new_key);
    t.assert_verify_clean("after abort");
    assert!(t.rotate("abort", &[]).contains("no rotation in progress"));
    // After issue the new CA signs: abort is refused and changes nothing.
    t.rotate("prepare", &["--ca", "front-proxy-ca"]);
    t.rotate("trust", &[]);
    t.rotate("issue", &[]);
    let s = crate::util::snapshot(&t.k);
    let err = t.rotate_fails("abort", &[]);
    assert!(err.contains("only possible before issue"), "{err}");
    assert!(crate::util::changed(&s, &crate::util::snapshot(&t.k)).is_empty());
}

#[test]
fn phases_refuse_to_run_out_of_order_and_verify_names_what_is_inconsistent() {
    let t = Tree::new("cp-1");
    let err = t.rotate_fails("trust", &["--ca", "ca"]);
    assert!(err.contains("no rotation of ca is in progress"), "{err}");
    let err = t.rotate_fails("prepare", &["--ca", "apiserver"]);
    assert!(err.contains("cannot be rotated"), "{err}");
    t.rotate("prepare", &["--ca", "ca"]);
    assert!(t
        .rotate_fails("issue", &[])
        .contains("run `kpki ca rotate trust`"));
    assert!(t
        .rotate_fails("finish", &[])
        .contains("run `kpki ca rotate issue`"));

    // trust, then one kubeconfig put back to the old CA only: trust is incomplete.
    t.rotate("trust", &[]);
    let admin = t.k.join("admin.conf");
    let trusted = std::fs::read(&admin).unwrap();
    let backup = crate::util::files(&t.k)
        .into_iter()
        .find(|f| f.starts_with("admin.conf.bak-"))
        .unwrap();
    std::fs::copy(t.k.join(&backup), &admin).unwrap();
    let (code, f) = t.verify();
    assert_eq!(code, 1);
    assert!(
        f.contains(&("rotation-trust-missing".into(), admin.display().to_string())),
        "{f:?}"
    );
    let (code, _, v) = t.status();
    assert_eq!(code, 1, "{v}");
    let err = t.rotate_fails("issue", &[]);
    assert!(
        err.contains("trust is incomplete") && err.contains("admin.conf"),
        "{err}"
    );
    t.rotate("trust", &[]);
    assert_eq!(std::fs::read(&admin).unwrap(), trusted);
    t.assert_verify_clean("trust repaired");

    // The live CA key is replaced only over a byte copy in the archive: a changed archive
    // stops issue before anything is written.
    let archive = t.rot("ca/old.key");
    let kept = std::fs::read(&archive).unwrap();
    let mut other = kept.clone();
    other.extend_from_slice(b"\n");
    std::fs::write(&archive, &other).unwrap();
    let s = crate::util::snapshot(&t.k);
    let err = t.rotate_fails("issue", &[]);
    assert!(err.contains("is not a byte copy"), "{err}");
    assert!(crate::util::changed(&s, &crate::util::snapshot(&t.k)).is_empty());
    std::fs::write(&archive, &kept).unwrap();

    // issue, then an old-signed apiserver pair put back: finish refuses, issue completes it.
    t.rotate("issue", &[]);
    let files = crate::util::files(&t.pki);
    let bak = |f: &str| {
        files
            .iter()
            .filter(|x| x.starts_with(&format!("{f}.bak-")))
            .max()
            .unwrap()
            .clone()
    };
    let (crt_bak, key_bak) = (bak("apiserver.crt"), bak("apiserver.key"));
    std::fs::copy(t.pki.join(&crt_bak), t.pki.join("apiserver.crt")).unwrap();
    std::fs::copy(t.pki.join(&key_bak), t.pki.join("apiserver.key")).unwrap();
    let (code, f) = t.verify();
    assert_eq!(code, 1);
    let apiserver = t.pki.join("apiserver.crt").display().to_string();
    assert!(
        f.contains(&("rotation-signer-unexpected".into(), apiserver.clone())),
        "{f:?}"
    );
    assert!(!f.iter().any(|(c, _)| c == "chain-invalid"), "{f:?}");
    let err = t.rotate_fails("finish", &[]);
    assert!(
        err.contains("still signed by the old CA") && err.contains("apiserver.crt"),
        "{err}"
    );
    let plan = t.rotate("issue", &["--dry-run"]);
    let reissued: Vec<&str> = plan.lines().filter(|l| l.starts_with("re-")).collect();
    assert_eq!(reissued.len(), 1, "{plan}");
    assert!(reissued[0].contains("apiserver.crt"), "{plan}");
    t.rotate("issue", &[]);
    t.assert_verify_clean("issue repaired");

    // A kubeconfig back in trust's order [old, new] while the phase is issue: a mix of phases.
    let o = one_cert(&t.rot("ca/old.crt"));
    let n = one_cert(&t.rot("ca/new.crt"));
    let pem: String = [&o, &n]
        .iter()
        .map(|d| {
            format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                base64::engine::general_purpose::STANDARD.encode(d)
            )
        })
        .collect();
    let conf = std::fs::read_to_string(&admin).unwrap();
    let line = conf
        .lines()
        .find(|l| l.trim_start().starts_with("certificate-authority-data:"))
        .unwrap();
    let mixed = conf.replace(
        line,
        &format!(
            "    certificate-authority-data: {}",
            base64::engine::general_purpose::STANDARD.encode(&pem)
        ),
    );
    std::fs::write(&admin, mixed).unwrap();
    let (code, f) = t.verify();
    assert_eq!(code, 1);
    assert!(
        f.contains(&("rotation-phase-mixed".into(), admin.display().to_string())),
        "{f:?}"
    );
    let err = t.rotate_fails("finish", &[]);
    assert!(err.contains("admin.conf"), "{err}");
    t.rotate("issue", &[]);
    assert_eq!(kubeconfig(&admin).0, [n.clone(), o.clone()]);
    t.rotate("finish", &[]);
    let (code, f) = t.verify();
    assert_eq!(code, 0, "{f:?}");
}

// ------------------------------------------------------------------ etcd

/// An etcd member run from its own copy of a node's etcd files (a snapshot taken at its last
/// restart), so two members can run on different phases.
struct Member {
    name: String,
    client: String,
    peer: String,
    run_dir: PathBuf,
    log: PathBuf,
    proc: Option<Proc>,
}

fn copy_etcd_files(pki: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    for f in [
        "etcd/ca.crt",
        "etcd/server.crt",
        "etcd/server.key",
        "etcd/peer.crt",
        "etcd/peer.key",
        "apiserver-etcd-client.crt",
        "apiserver-etcd-client.key",
    ] {
        copy(&pki.join(f), &to.join(f));
    }
}

impl Member {
    fn start(&mut self, cluster: &str, data: &Path, first: bool) {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let e = self.run_dir.join("etcd");
        let child = Command::new("etcd")
            .args(["--name", &self.name])
            .arg("--data-dir")
            .arg(data)
            .args(["--listen-client-urls", &self.client])
            .args(["--advertise-client-urls", &self.client])
            .args(["--listen-peer-urls", &self.peer])
            .args(["--initial-advertise-peer-urls", &self.peer])
            .args(["--initial-cluster", cluster])
            .args([
                "--initial-cluster-state",
                if first { "new" } else { "existing" },
            ])
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
        self.proc = Some(Proc(child));
    }

    fn stop(&mut self) {
        self.proc = None;
    }
}

/// etcdctl with a node's current files (trust file, apiserver-etcd-client) against `url`.
fn etcdctl(files: &Path, url: &str, args: &[&str]) -> Output {
    Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args([
            "--endpoints",
            url,
            "--dial-timeout",
            "3s",
            "--command-timeout",
            "8s",
        ])
        .arg("--cacert")
        .arg(files.join("etcd/ca.crt"))
        .arg("--cert")
        .arg(files.join("apiserver-etcd-client.crt"))
        .arg("--key")
        .arg(files.join("apiserver-etcd-client.key"))
        .args(args)
        .output()
        .unwrap()
}

fn logs(members: &[Member]) -> String {
    members
        .iter()
        .map(|m| {
            let mut s = String::new();
            if let Ok(mut f) = std::fs::File::open(&m.log) {
                let _ = f.read_to_string(&mut s);
            }
            format!(
                "--- {}\n{}",
                m.name,
                s.lines().rev().take(30).collect::<Vec<_>>().join("\n")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn wait_healthy(members: &[Member], files: &Path, i: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = etcdctl(files, &members[i].client, &["endpoint", "health"]);
        if out.status.success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "member {i} not healthy: {}\n{}",
            text(&out),
            logs(members)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn etcd_keeps_serving_through_an_etcd_ca_rotation_with_rolling_restarts() {
    for tool in ["etcd", "etcdctl"] {
        if let Err(e) = Command::new(tool).arg("--version").output() {
            panic!("{tool} is not installed ({e}); run scripts/test.sh (CI does)");
        }
    }
    // Two control-plane nodes sharing the CAs (the second made from the first's CAs, as a
    // joining node is), each with its own leaves.
    let n1 = Tree::new("cp-1");
    let n2 = {
        let dir = tempfile::tempdir().unwrap();
        let l = crate::util::reliability::Layout::new(dir.path());
        for f in ["ca", "front-proxy-ca", "etcd/ca"] {
            for ext in ["crt", "key"] {
                copy(
                    &n1.pki.join(format!("{f}.{ext}")),
                    &l.pki.join(format!("{f}.{ext}")),
                );
            }
        }
        for f in ["sa.key", "sa.pub"] {
            copy(&n1.pki.join(f), &l.pki.join(f));
        }
        crate::util::set_mode(&l.pki, 0o755);
        crate::util::set_mode(&l.pki.join("etcd"), 0o755);
        let mut t = Tree {
            root: dir.path().to_path_buf(),
            k: l.k.clone(),
            pki: l.pki.clone(),
            flags: n1.flags.clone(),
            _dir: dir,
        };
        t.flags[1] = "cp-2".into();
        crate::util::kpki_ok(t.args(&["init"]));
        t
    };
    let nodes = [&n1, &n2];
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let mut members: Vec<Member> = (0..2)
        .map(|i| Member {
            name: format!("cp-{}", i + 1),
            client: format!("https://127.0.0.1:{}", ports[2 * i]),
            peer: format!("https://127.0.0.1:{}", ports[2 * i + 1]),
            run_dir: n1.root.join(format!("run-{i}")),
            log: n1.root.join(format!("etcd-{i}.log")),
            proc: None,
        })
        .collect();
    let cluster = members
        .iter()
        .map(|m| format!("{}={}", m.name, m.peer))
        .collect::<Vec<_>>()
        .join(",");
    let data: Vec<PathBuf> = (0..2).map(|i| n1.root.join(format!("data-{i}"))).collect();
    for (i, m) in members.iter_mut().enumerate() {
        copy_etcd_files(&nodes[i].pki, &m.run_dir);
        m.start(&cluster, &data[i], true);
    }
    for i in 0..2 {
        let run_dir = members[i].run_dir.clone();
        wait_healthy(&members, &run_dir, i);
    }
    let prepared_client = n1.root.join("prepared-client");
    copy_etcd_files(&n1.pki, &prepared_client);

    let mut step = 0;
    // Put through one member with one node's files, read through the other with the other's.
    let mut check = |members: &[Member], what: &str| {
        step += 1;
        let key = format!("k{step}");
        let val = format!("v{step}-{}", what.replace(' ', "-"));
        for (w, r) in [(0usize, 1usize), (1, 0)] {
            let out = etcdctl(
                &members[w].run_dir,
                &members[w].client,
                &["put", &key, &val],
            );
            assert!(
                out.status.success() && text(&out).trim() == "OK",
                "{what}: put via {w}: {}\n{}",
                text(&out),
                logs(members)
            );
            let out = etcdctl(
                &members[r].run_dir,
                &members[r].client,
                &["get", &key, "--print-value-only"],
            );
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                val,
                "{what}: get via {r}: {}\n{}",
                text(&out),
                logs(members)
            );
            // Across: each member's files against the other member.
            let out = etcdctl(
                &members[w].run_dir,
                &members[r].client,
                &["get", "k1", "--print-value-only"],
            );
            assert!(
                out.status.success(),
                "{what}: node {w}'s files against member {r}: {}",
                text(&out)
            );
        }
    };
    check(&members, "before");
    n1.rotate("prepare", &["--ca", "etcd-ca"]);
    // The other control-plane node gets the same rotation folder (docs/rotation.md).
    crate::util::copy_dir(
        &n1.pki.join("rotation"),
        &n2.pki.join("rotation"),
        crate::util::Modes::Keep,
    );
    let (_, phases, _) = n2.status();
    assert_eq!(phases["etcd-ca"], "prepare");
    let mut timings = Vec::new();
    for phase in ["trust", "issue", "finish"] {
        for i in 0..2 {
            nodes[i].rotate(phase, &[]);
            // Member i restarts with its node's new files while the other runs the previous
            // phase; the surviving member serves serializable reads meanwhile.
            let t0 = Instant::now();
            members[i].stop();
            let other = 1 - i;
            let out = etcdctl(
                &members[other].run_dir,
                &members[other].client,
                &["get", "k1", "--consistency=s", "--print-value-only"],
            );
            assert!(
                out.status.success(),
                "{phase}: member {other} alone: {}",
                text(&out)
            );
            copy_etcd_files(&nodes[i].pki, &members[i].run_dir);
            members[i].start(&cluster, &data[i], false);
            let run_dir = members[i].run_dir.clone();
            wait_healthy(&members, &run_dir, i);
            timings.push(format!("{phase} member {i}: {:?}", t0.elapsed()));
            check(&members, &format!("{phase} member {i}"));
        }
        n1.assert_verify_clean(phase);
        n2.assert_verify_clean(phase);
    }
    // After finish the old CA is gone: a client certificate it signed is refused.
    let out = etcdctl(
        &prepared_client,
        &members[0].client,
        &["--insecure-skip-tls-verify", "get", "k1"],
    );
    assert!(
        !out.status.success(),
        "old-CA client accepted after finish: {}",
        text(&out)
    );
    println!("{}", timings.join("\n"));
}

/// A kubelet.conf that points at the kubelet's own rotated client certificate (kubeadm after
/// kubelet-finalize): each phase rewrites only its CA data; its client certificate is the
/// kubelet's, so `issue` leaves it, `verify` names it and `finish` waits until the kubelet has
/// one from the new CA.
#[test]
fn kubelet_conf_by_reference_gets_the_bundle_and_keeps_its_certificate() {
    let t = Tree::new("cp-1");
    let kubelet = t.k.join("kubelet.conf");
    let v = crate::util::kubeconfig_json(&kubelet);
    let b64 = |p: &str| -> Vec<u8> {
        crate::util::b64decode(v.pointer(p).and_then(|x| x.as_str()).unwrap())
    };
    let current = t
        .root
        .join("var-lib-kubelet/pki/kubelet-client-current.pem");
    let mut pem = b64("/users/0/user/client-certificate-data");
    pem.extend(b64("/users/0/user/client-key-data"));
    std::fs::create_dir_all(current.parent().unwrap()).unwrap();
    std::fs::write(&current, &pem).unwrap();
    crate::util::set_mode(&current, 0o600);
    let conf = format!(
        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {}\n    server: {}\n  name: kubernetes\ncontexts:\n- context:\n    cluster: kubernetes\n    user: system:node:cp-1\n  name: system:node:cp-1@kubernetes\ncurrent-context: system:node:cp-1@kubernetes\nkind: Config\npreferences: {{}}\nusers:\n- name: system:node:cp-1\n  user:\n    client-certificate: {p}\n    client-key: {p}\n",
        v.pointer("/clusters/0/cluster/certificate-authority-data").and_then(|x| x.as_str()).unwrap(),
        v.pointer("/clusters/0/cluster/server").and_then(|x| x.as_str()).unwrap(),
        p = current.display()
    );
    std::fs::write(&kubelet, conf).unwrap();
    crate::util::set_mode(&kubelet, 0o600);
    t.assert_verify_clean("by reference");
    t.rotate("prepare", &["--ca", "ca"]);
    t.rotate("trust", &[]);
    let o = one_cert(&t.rot("ca/old.crt"));
    let n = one_cert(&t.rot("ca/new.crt"));
    let facts = |p: &Path| crate::util::kubeconfig_json(p);
    let user = |p: &Path| facts(p)["users"][0]["user"].clone();
    assert_eq!(kubeconfig_ca(&kubelet), [o.clone(), n.clone()]);
    assert_eq!(
        user(&kubelet)["client-certificate"],
        current.display().to_string()
    );
    t.rotate("issue", &[]);
    assert_eq!(kubeconfig_ca(&kubelet), [n.clone(), o.clone()]);
    assert_eq!(
        user(&kubelet)["client-certificate"],
        current.display().to_string()
    );
    assert!(user(&kubelet).get("client-certificate-data").is_none());
    assert_eq!(
        std::fs::read(&current).unwrap(),
        pem,
        "the kubelet's certificate was touched"
    );
    let (code, f) = t.verify();
    assert_eq!(code, 1);
    assert!(
        f.iter()
            .any(|(c, p)| c == "rotation-signer-unexpected" && p == &kubelet.display().to_string()),
        "{f:?}"
    );
    let err = t.rotate_fails("finish", &[]);
    assert!(err.contains("kubelet"), "{err}");
    // The kubelet gets a certificate from the new CA (as the controller-manager would sign its
    // CSR); finish then goes through.
    let dir = t.root.join("csr");
    std::fs::create_dir(&dir).unwrap();
    let key = dir.join("kubelet.key");
    std::fs::write(&key, b64("/users/0/user/client-key-data")).unwrap();
    let ext = crate::util::write_file(
        &dir,
        "ext.cnf",
        b"basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    );
    let csr = dir.join("kubelet.csr");
    let crt = dir.join("kubelet.crt");
    crate::util::openssl([
        "req",
        "-new",
        "-key",
        key.to_str().unwrap(),
        "-subj",
        "/O=system:nodes/CN=system:node:cp-1",
        "-out",
        csr.to_str().unwrap(),
    ]);
    crate::util::openssl([
        "x509",
        "-req",
        "-in",
        csr.to_str().unwrap(),
        "-CA",
        t.rot("ca/new.crt").to_str().unwrap(),
        "-CAkey",
        t.rot("ca/new.key").to_str().unwrap(),
        "-CAcreateserial",
        "-days",
        "30",
        "-sha256",
        "-extfile",
        ext.to_str().unwrap(),
        "-out",
        crt.to_str().unwrap(),
    ]);
    let mut renewed = std::fs::read(&crt).unwrap();
    renewed.extend(std::fs::read(&key).unwrap());
    std::fs::write(&current, renewed).unwrap();
    t.rotate("finish", &[]);
    assert_eq!(kubeconfig_ca(&kubelet), std::slice::from_ref(&n));
    assert_eq!(
        user(&kubelet)["client-certificate"],
        current.display().to_string()
    );
    let (code, f) = t.verify();
    assert_eq!(code, 0, "{f:?}");
}

/// kubectl's view of a kubeconfig's CA data (every certificate), whatever its credentials.
fn kubeconfig_ca(path: &Path) -> Vec<Vec<u8>> {
    let v = crate::util::kubeconfig_json(path);
    let ca = v["clusters"][0]["cluster"]["certificate-authority-data"]
        .as_str()
        .unwrap();
    blocks_of(&crate::util::b64decode(ca), "CERTIFICATE")
}

// ------------------------------------------------------------------ dry runs, lock, path check

/// The CA certificates of the kubeconfig inside `kpki ca rotate status --cluster-info` (PyYAML
/// reads the ConfigMap, kubectl the kubeconfig in it).
fn cluster_info_cas(t: &Tree) -> Vec<Vec<u8>> {
    let cm = crate::util::kpki_ok(t.args(&["ca", "rotate", "status", "--cluster-info"]));
    let cm_json = crate::util::tool_ok(
        "python3",
        [
            "-c",
            "import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))",
        ],
        Some(cm.as_bytes()),
    );
    let v: serde_json::Value = serde_json::from_slice(&cm_json).unwrap();
    assert_eq!(v["metadata"]["name"], "cluster-info");
    let ci = t.root.join("cluster-info.conf");
    std::fs::write(&ci, v["data"]["kubeconfig"].as_str().unwrap()).unwrap();
    kubeconfig_ca(&ci)
}

/// `--dry-run -o json` of a phase: nothing changes on disk, the report says so, and every step
/// names its file and gives a reason.
fn assert_dry_run(t: &Tree, phase: &str) {
    let before = crate::util::snapshot(&t.k);
    let out = crate::util::kpki_ok(t.args(&["ca", "rotate", phase, "--dry-run", "-o", "json"]));
    assert!(
        crate::util::changed(&before, &crate::util::snapshot(&t.k)).is_empty(),
        "{phase} --dry-run wrote"
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["dryRun"], true, "{phase}");
    assert_eq!(v["written"].as_array().map(Vec::len), Some(0), "{phase}");
    let steps = v["plan"]["steps"].as_array().unwrap();
    assert!(!steps.is_empty(), "{phase}: no steps\n{out}");
    for s in steps {
        assert!(
            !s["path"].as_str().unwrap().is_empty() && s["reason"].as_str().unwrap().len() > 10,
            "{phase}: a step without a path or a reason: {s}"
        );
    }
}

/// Every phase has a dry run that writes nothing and gives a reason per step; a held tree lock
/// stops a phase (exit 2, nothing written) while a dry run still reads; a rotation's writes go
/// through the one path check (a linked directory on the way is refused before anything is
/// written); trust prints the restart order; cluster-info follows the phases (bundle, then the
/// new CA only); finish keeps backups of the trust files it rewrites.
#[test]
fn every_phase_dry_runs_takes_the_lock_and_writes_only_through_the_path_check() {
    let t = Tree::new("cp-1");
    let ca_before = certs(&t.pki.join("ca.crt"));
    assert_dry_run(&t, "prepare");
    t.rotate("prepare", &["--ca", "ca,etcd-ca"]);
    let o = one_cert(&t.rot("ca/old.crt"));
    let n = one_cert(&t.rot("ca/new.crt"));
    assert_eq!(ca_before, std::slice::from_ref(&o));
    assert_dry_run(&t, "trust");
    assert_dry_run(&t, "abort");

    // The tree lock (the flock every writing kpki takes on the cert dir), held by the test.
    let holder = std::fs::File::open(&t.pki).unwrap();
    holder.lock().unwrap();
    let before = crate::util::snapshot(&t.k);
    let mut args = vec!["--lock-timeout".to_string(), "0s".to_string()];
    args.extend(t.args(&["ca", "rotate", "trust"]));
    let (code, err) = crate::util::kpki_fail(&args);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("another kpki process") && err.contains(&t.pki.display().to_string()),
        "{err}"
    );
    assert!(crate::util::changed(&before, &crate::util::snapshot(&t.k)).is_empty());
    let mut dry = vec!["--lock-timeout".to_string(), "0s".to_string()];
    dry.extend(t.args(&["ca", "rotate", "trust", "--dry-run"]));
    crate::util::kpki_ok(&dry);
    holder.unlock().unwrap();

    // pki/etcd replaced by a link to a directory elsewhere: trust would write etcd/ca.crt
    // through it; the path check refuses before any file (kubeconfigs, ca.crt) is written.
    let real = t.root.join("etcd-elsewhere");
    std::fs::rename(t.pki.join("etcd"), &real).unwrap();
    std::os::unix::fs::symlink(&real, t.pki.join("etcd")).unwrap();
    let before = crate::util::snapshot(&t.root);
    let err = t.rotate_fails("trust", &[]);
    assert!(
        err.contains("symbolic link") && err.contains("linked directories"),
        "{err}"
    );
    assert!(crate::util::changed(&before, &crate::util::snapshot(&t.root)).is_empty());
    std::fs::remove_file(t.pki.join("etcd")).unwrap();
    std::fs::rename(&real, t.pki.join("etcd")).unwrap();

    let text = t.rotate("trust", &[]);
    let at = |s: &str| {
        text.find(s)
            .unwrap_or_else(|| panic!("{s:?} not in:\n{text}"))
    };
    let order = [
        at("1. kube-controller-manager"),
        at("2. workloads that use the in-cluster config"),
        at("3. kube-apiserver"),
        at("4. kube-scheduler"),
        at("5. kubelets"),
        at("6. etcd members"),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert!(
        text.contains(&format!(
            "{} (one certificate: the CA that signs): kube-controller-manager --cluster-signing-cert-file and --client-ca-file",
            t.rot("signer/ca.crt").display()
        )),
        "{text}"
    );
    assert_eq!(cluster_info_cas(&t), [o.clone(), n.clone()]);

    assert_dry_run(&t, "issue");
    t.rotate("issue", &[]);
    assert_eq!(cluster_info_cas(&t), [n.clone(), o.clone()]);
    assert_dry_run(&t, "finish");
    let backups_before = crate::util::files(&t.pki)
        .into_iter()
        .filter(|f| f.starts_with("ca.crt.bak-"))
        .count();
    let text = t.rotate("finish", &[]);
    assert!(text.contains("kubectl apply -f -"), "{text}");
    assert_eq!(cluster_info_cas(&t), std::slice::from_ref(&n));
    // finish rewrote ca.crt ([new, old] -> [new]) and kept what it replaced.
    let bak: Vec<String> = crate::util::files(&t.pki)
        .into_iter()
        .filter(|f| f.starts_with("ca.crt.bak-"))
        .collect();
    assert_eq!(bak.len(), backups_before + 1, "{bak:?}");
    assert!(
        bak.iter()
            .any(|b| certs(&t.pki.join(b)) == [n.clone(), o.clone()]),
        "{bak:?}"
    );
    let (code, f) = t.verify();
    assert_eq!(code, 0, "{f:?}");
}

/// With no tree there is nothing to rotate: every writing phase refuses in one line and creates
/// nothing, not even the certificate or kubeconfig directory its lock would need.
#[test]
fn a_missing_tree_is_refused_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("absent");
    let pki = root.join("pki");
    for phase in ["prepare", "trust", "issue", "finish", "abort"] {
        let (code, err) = crate::util::kpki_fail([
            "ca",
            "rotate",
            phase,
            "--cert-dir",
            crate::util::s(&pki),
            "--kubeconfig-dir",
            crate::util::s(&root),
        ]);
        assert_eq!(code, 2, "{phase}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{phase}: {err}");
        assert!(err.contains("no tree to rotate"), "{phase}: {err}");
        assert!(!root.exists(), "{phase} created {}", root.display());
    }
}
