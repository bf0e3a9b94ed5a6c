//! Kubeconfigs checked with tools that are not kpki: kubectl parses and re-serialises them, a
//! kubeadm v1.28.4 tree is the reference for their content, `openssl s_server` does real mutual
//! TLS with them, and x509-parser reads the embedded certificates.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use x509_parser::prelude::*;
use x509_parser::public_key::PublicKey;

use crate::util::{
    b64decode, der_of, facts_der, fixture, free_ports, init_tree, kpki, kubeconfig_json, kubectl,
    ok, pubkey_of_cert, pubkey_of_key, s, serial, tool, write_file, Kpki,
};

const CPE_URL: &str = "https://k8s.example.internal:6443";
const LOCAL_URL: &str = "https://10.0.0.10:6443";

/// A tree with the standard inputs changed by `extra`, its kubeconfigs in a directory of their
/// own: (`dir/pki`, `dir/kc`).
fn tree_with_kc(dir: &Path, extra: &[&str]) -> (PathBuf, PathBuf) {
    let kc = dir.join("kc");
    (
        init_tree(dir, &[&["--kubeconfig-dir", s(&kc)], extra].concat()),
        kc,
    )
}

/// What kubectl reads from a kubeconfig: one cluster, context and user, data decoded.
#[derive(Debug)]
struct View {
    cluster: String,
    context: String,
    ctx_cluster: String,
    ctx_user: String,
    current: String,
    user: String,
    server: String,
    ca_pem: Vec<u8>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

fn b64(v: &serde_json::Value, what: &str) -> Vec<u8> {
    b64decode(v.as_str().unwrap_or_else(|| panic!("{what} missing: {v}")))
}

/// Parsed by kubectl (`config view --raw -o json`), not by kpki's model.
fn view(file: &Path) -> View {
    let j = kubeconfig_json(file);
    for list in ["clusters", "contexts", "users"] {
        assert_eq!(
            j[list].as_array().map(Vec::len),
            Some(1),
            "{}: {list}",
            file.display()
        );
    }
    let (cl, cx, us) = (&j["clusters"][0], &j["contexts"][0], &j["users"][0]);
    View {
        cluster: cl["name"].as_str().unwrap().into(),
        context: cx["name"].as_str().unwrap().into(),
        ctx_cluster: cx["context"]["cluster"].as_str().unwrap().into(),
        ctx_user: cx["context"]["user"].as_str().unwrap().into(),
        current: j["current-context"].as_str().unwrap().into(),
        user: us["name"].as_str().unwrap().into(),
        server: cl["cluster"]["server"].as_str().unwrap().into(),
        ca_pem: b64(
            &cl["cluster"]["certificate-authority-data"],
            "certificate-authority-data",
        ),
        cert_pem: b64(&us["user"]["client-certificate-data"], "client-cert-data"),
        key_pem: b64(&us["user"]["client-key-data"], "client-key-data"),
    }
}

/// The client certificate as x509-parser sees it.
#[derive(Debug, PartialEq)]
struct Client {
    cn: Vec<String>,
    orgs: Vec<String>,
    /// Attributes per RDN, in order (one multi-valued RDN for all O values).
    rdn_sizes: Vec<usize>,
    issuer_raw: Vec<u8>,
    key_usage: u16,
    client_auth_only: bool,
    is_ca: bool,
    /// "RSA-2048", "EC-256", ...
    key: String,
    not_before: i64,
    not_after: i64,
}

fn client(pem_bytes: &[u8]) -> Client {
    let der = der_of(pem_bytes);
    let (_, c) = X509Certificate::from_der(&der).unwrap();
    let s = |a: &AttributeTypeAndValue| a.as_str().unwrap().to_string();
    let eku = c.extended_key_usage().unwrap().map(|e| e.value.clone());
    Client {
        cn: c.subject().iter_common_name().map(s).collect(),
        orgs: c.subject().iter_organization().map(s).collect(),
        rdn_sizes: c.subject().iter().map(|r| r.iter().count()).collect(),
        issuer_raw: c.issuer().as_raw().to_vec(),
        key_usage: c.key_usage().unwrap().map(|k| k.value.flags).unwrap_or(0),
        client_auth_only: eku
            .as_ref()
            .is_some_and(|e| e.client_auth && !e.server_auth && !e.any && e.other.is_empty()),
        is_ca: c.basic_constraints().unwrap().is_some_and(|b| b.value.ca),
        key: match c.public_key().parsed().unwrap() {
            PublicKey::RSA(k) => format!("RSA-{}", k.key_size()),
            PublicKey::EC(p) => format!("EC-{}", p.key_size()),
            other => format!("{other:?}"),
        },
        not_before: c.validity().not_before.timestamp(),
        not_after: c.validity().not_after.timestamp(),
    }
}

/// openssl checks the chain (at a pinned time) and that the key is the certificate's.
fn openssl_chain_and_key(dir: &Path, f: &View, at: i64) {
    let ca = dir.join("chk-ca.pem");
    let cert = dir.join("chk-cert.pem");
    let key = dir.join("chk-key.pem");
    fs::write(&ca, &f.ca_pem).unwrap();
    fs::write(&cert, &f.cert_pem).unwrap();
    fs::write(&key, &f.key_pem).unwrap();
    ok(
        tool(
            "openssl",
            [
                "verify",
                "-purpose",
                "sslclient",
                "-attime",
                &at.to_string(),
                "-CAfile",
                s(&ca),
                s(&cert),
            ],
            None,
        ),
        "openssl verify",
    );
    assert_eq!(
        pubkey_of_cert(&cert),
        pubkey_of_key(&key),
        "client-key-data is not the key of client-certificate-data"
    );
}

/// The PEM label of the key ("RSA PRIVATE KEY", "EC PRIVATE KEY").
fn key_label(pem_bytes: &[u8]) -> String {
    let text = String::from_utf8(pem_bytes.to_vec()).unwrap();
    let first = text.lines().next().unwrap();
    first
        .trim_start_matches("-----BEGIN ")
        .trim_end_matches("-----")
        .to_string()
}

/// The YAML text with every base64 blob replaced, for a shape comparison.
fn masked(text: &str) -> String {
    text.lines()
        .map(|l| {
            for key in [
                "certificate-authority-data: ",
                "client-certificate-data: ",
                "client-key-data: ",
            ] {
                if let Some(i) = l.find(key) {
                    return format!("{}<data>\n", &l[..i + key.len()]);
                }
            }
            format!("{l}\n")
        })
        .collect()
}

/// One kubeconfig of the tree and how kpki's may differ from kubeadm v1.28.4's.
struct Expect {
    file: &'static str,
    cn: &'static str,
    /// O values in the v1.28.4 fixture (`None`: the file does not exist in 1.28).
    fixture_o: Option<&'static [&'static str]>,
    /// O values kpki writes (1.29+ layout).
    kpki_o: &'static [&'static str],
    fixture_server: &'static str,
    kpki_server: &'static str,
}

const EXPECT: [Expect; 5] = [
    // 1.29+: admin.conf is bound through the kubeadm:cluster-admins group, not system:masters.
    Expect {
        file: "admin.conf",
        cn: "kubernetes-admin",
        fixture_o: Some(&["system:masters"]),
        kpki_o: &["kubeadm:cluster-admins"],
        fixture_server: CPE_URL,
        kpki_server: CPE_URL,
    },
    // 1.29+: the break-glass super-admin.conf keeps system:masters; 1.28 has no such file.
    Expect {
        file: "super-admin.conf",
        cn: "kubernetes-super-admin",
        fixture_o: None,
        kpki_o: &["system:masters"],
        fixture_server: "",
        kpki_server: CPE_URL,
    },
    // 1.33+ (ControlPlaneKubeletLocalMode): kubelet.conf talks to the local API server; 1.28
    // used the control-plane endpoint.
    Expect {
        file: "kubelet.conf",
        cn: "system:node:cp-1",
        fixture_o: Some(&["system:nodes"]),
        kpki_o: &["system:nodes"],
        fixture_server: CPE_URL,
        kpki_server: LOCAL_URL,
    },
    Expect {
        file: "controller-manager.conf",
        cn: "system:kube-controller-manager",
        fixture_o: Some(&[]),
        kpki_o: &[],
        fixture_server: LOCAL_URL,
        kpki_server: LOCAL_URL,
    },
    Expect {
        file: "scheduler.conf",
        cn: "system:kube-scheduler",
        fixture_o: Some(&[]),
        kpki_o: &[],
        fixture_server: LOCAL_URL,
        kpki_server: LOCAL_URL,
    },
];

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn kubeconfigs_match_kubeadm_fixture_field_by_field() {
    let tmp = tempfile::tempdir().unwrap();
    // The fixture's config without its kubernetesVersion (v1.28.4), so kpki follows the newest
    // kubeadm and this test keeps comparing the newest layout with kubeadm 1.28's files.
    let text = fs::read_to_string(fixture().join("kubeadm-config.yaml")).unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("kubernetesVersion:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let config = write_file(tmp.path(), "kubeadm-config.yaml", text.as_bytes());
    let (pki, kc) = (tmp.path().join("pki"), tmp.path().join("kc"));
    Kpki::init(&pki)
        .arg("--kubeconfig-dir")
        .arg(&kc)
        .arg("--config")
        .arg(&config)
        .ok();
    let fixture_kc = fixture().join("kubeconfig");
    let fixture_ca = fs::read(fixture().join("pki/ca.crt")).unwrap();
    let tree_ca = fs::read(pki.join("ca.crt")).unwrap();

    let mut want_kpki: Vec<String> = EXPECT.iter().map(|e| e.file.to_string()).collect();
    want_kpki.sort();
    assert_eq!(names_in(&kc), want_kpki, "kpki writes exactly the 5 files");
    let mut want_fixture: Vec<String> = EXPECT
        .iter()
        .filter(|e| e.fixture_o.is_some())
        .map(|e| e.file.to_string())
        .collect();
    want_fixture.sort();
    assert_eq!(names_in(&fixture_kc), want_fixture);

    for e in &EXPECT {
        let ours_path = kc.join(e.file);
        let ours = view(&ours_path);
        let ctx = format!("{}@kubernetes", e.cn);
        // Names: identical rules in kubeadm and kpki.
        assert_eq!(ours.cluster, "kubernetes", "{}", e.file);
        assert_eq!(ours.ctx_cluster, "kubernetes", "{}", e.file);
        assert_eq!(ours.user, e.cn, "{}", e.file);
        assert_eq!(ours.ctx_user, e.cn, "{}", e.file);
        assert_eq!(ours.context, ctx, "{}", e.file);
        assert_eq!(ours.current, ctx, "{}", e.file);
        assert_eq!(ours.server, e.kpki_server, "{}", e.file);
        assert_eq!(
            ours.ca_pem, tree_ca,
            "{}: CA data = the tree's ca.crt",
            e.file
        );
        let oc = client(&ours.cert_pem);
        assert_eq!(oc.cn, [e.cn], "{}", e.file);
        assert_eq!(oc.orgs, e.kpki_o, "{}", e.file);
        assert_eq!(
            oc.issuer_raw,
            facts_der(&der_of(&tree_ca)).subject_raw,
            "{}",
            e.file
        );
        assert!(oc.client_auth_only && !oc.is_ca, "{}: {oc:?}", e.file);
        assert_eq!(oc.key, "RSA-2048", "{}", e.file);
        assert_eq!(key_label(&ours.key_pem), "RSA PRIVATE KEY", "{}", e.file);
        openssl_chain_and_key(tmp.path(), &ours, oc.not_before + 3600);

        let Some(fixture_o) = e.fixture_o else {
            continue;
        };
        let fixture_path = fixture_kc.join(e.file);
        let theirs = view(&fixture_path);
        assert_eq!(theirs.cluster, ours.cluster, "{}", e.file);
        assert_eq!(theirs.ctx_cluster, ours.ctx_cluster, "{}", e.file);
        assert_eq!(theirs.user, ours.user, "{}", e.file);
        assert_eq!(theirs.ctx_user, ours.ctx_user, "{}", e.file);
        assert_eq!(theirs.context, ours.context, "{}", e.file);
        assert_eq!(theirs.current, ours.current, "{}", e.file);
        assert_eq!(theirs.server, e.fixture_server, "{}", e.file);
        assert_eq!(theirs.ca_pem, fixture_ca, "{}", e.file);
        let tc = client(&theirs.cert_pem);
        assert_eq!(tc.cn, oc.cn, "{}", e.file);
        assert_eq!(tc.orgs, fixture_o, "{}", e.file);
        assert_eq!(tc.rdn_sizes, oc.rdn_sizes, "{}: subject layout", e.file);
        assert_eq!(tc.key_usage, oc.key_usage, "{}: key usage", e.file);
        assert_eq!(tc.client_auth_only, oc.client_auth_only, "{}", e.file);
        assert_eq!(tc.is_ca, oc.is_ca, "{}", e.file);
        assert_eq!(tc.key, oc.key, "{}", e.file);
        assert_eq!(key_label(&theirs.key_pem), key_label(&ours.key_pem));
        // One year from "now" in both; kubeadm 1.28 starts at the CA's NotBefore (minutes
        // earlier), kpki back-dates by exactly five minutes.
        assert_eq!(
            oc.not_after - oc.not_before,
            8760 * 3600 + 300,
            "{}",
            e.file
        );
        let theirs_period = tc.not_after - tc.not_before - 8760 * 3600;
        assert!((0..=600).contains(&theirs_period), "{}", e.file);
        openssl_chain_and_key(tmp.path(), &theirs, tc.not_before + 3600);

        // Byte-level shape: same keys, order and indentation once the blobs are masked and the
        // one allowed server difference is applied to kubeadm's file.
        let ours_text = masked(&fs::read_to_string(&ours_path).unwrap());
        let theirs_text = masked(&fs::read_to_string(&fixture_path).unwrap()).replace(
            &format!("    server: {}\n", e.fixture_server),
            &format!("    server: {}\n", e.kpki_server),
        );
        assert_eq!(ours_text, theirs_text, "{}: YAML shape", e.file);
    }
}

#[test]
fn kubectl_reads_and_rewrites_every_kubeconfig_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, kc) = tree_with_kc(tmp.path(), &[]);
    for e in &EXPECT {
        let p = kc.join(e.file);
        let out = ok(
            kubectl([
                "--kubeconfig",
                p.to_str().unwrap(),
                "config",
                "view",
                "--raw",
            ]),
            "kubectl config view --raw",
        );
        // client-go re-serialises what it parsed; equal bytes mean nothing was lost or reordered.
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            fs::read_to_string(&p).unwrap(),
            "{}",
            e.file
        );
        let f = view(&p);
        assert_eq!(client(&f.cert_pem).key, "EC-256", "{}", e.file);
        assert_eq!(key_label(&f.key_pem), "EC PRIVATE KEY", "{}", e.file);
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600,
            "{}",
            e.file
        );
    }
}

/// `openssl s_server` requiring a client certificate from `ca`; killed on drop.
struct TlsServer {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl TlsServer {
    fn start(pki: &Path, log: PathBuf) -> TlsServer {
        let port = free_ports(1)[0];
        let f = fs::File::create(&log).unwrap();
        let child = Command::new("openssl")
            .args(["s_server", "-Verify", "1", "-verify_return_error", "-www"])
            .arg("-CAfile")
            .arg(pki.join("ca.crt"))
            .arg("-cert")
            .arg(pki.join("apiserver.crt"))
            .arg("-key")
            .arg(pki.join("apiserver.key"))
            .arg("-accept")
            .arg(format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(f.try_clone().unwrap()))
            .stderr(Stdio::from(f))
            .spawn()
            .unwrap();
        let s = TlsServer { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !s.log().contains("ACCEPT") {
            assert!(
                Instant::now() < deadline,
                "openssl s_server did not start:\n{}",
                s.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kubectl get --raw /` against the s_server, naming the API server certificate's DNS SAN.
fn kubectl_get(kubeconfig: &Path, server: &TlsServer, extra: &[&str]) -> Output {
    let url = server.url();
    let mut args = vec![
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--server",
        &url,
        "--tls-server-name",
        "kubernetes",
        "--request-timeout",
        "10s",
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["get", "--raw", "/"]);
    kubectl(&args)
}

#[test]
fn kubeconfigs_do_mutual_tls_with_openssl_and_other_cas_are_refused() {
    let _serial = serial(); // a port and a TLS server with a start-up deadline
    mutual_tls(&[], &[]);
}

/// The same for a tree that follows kubeadm 1.28 (kubernetesVersion v1.28.4, issue 12): no
/// super-admin.conf, admin.conf in system:masters, kubelet.conf at the control-plane endpoint.
#[test]
fn kubeadm_1_28_tree_does_mutual_tls_too() {
    let _serial = serial(); // a port and a TLS server with a start-up deadline
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("kubeadm-1.28.yaml");
    fs::write(
        &cfg,
        "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nkubernetesVersion: v1.28.4\n",
    )
    .unwrap();
    mutual_tls(&["--config", s(&cfg)], &["super-admin.conf"]);
}

/// Every kubeconfig of a tree (but `absent`) does mutual TLS with an openssl server using the
/// tree's apiserver certificate; other CAs are refused both ways.
fn mutual_tls(extra: &[&str], absent: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let (pki, kc) = tree_with_kc(&tmp.path().join("a"), extra);
    for f in absent {
        assert!(!kc.join(f).exists(), "{f} should not be written");
    }
    let (_, other_kc) = tree_with_kc(&tmp.path().join("b"), &[]);
    let server = TlsServer::start(&pki, tmp.path().join("s_server.log"));

    // A user kubeconfig signed by the same CA joins the five.
    let jane = tmp.path().join("jane.conf");
    ok(
        kpki([
            "kubeconfig",
            "user",
            "--cert-dir",
            pki.to_str().unwrap(),
            "--client-name",
            "jane",
            "--org",
            "team-a",
            "--apiserver-advertise-address",
            "10.0.0.10",
            "--out",
            jane.to_str().unwrap(),
        ]),
        "kpki kubeconfig user",
    );
    let mut cases: Vec<(PathBuf, String)> = EXPECT
        .iter()
        .filter(|e| !absent.contains(&e.file))
        .map(|e| (kc.join(e.file), e.cn.to_string()))
        .collect();
    cases.push((jane, "jane".into()));
    for (file, cn) in &cases {
        let out = kubectl_get(file, &server, &[]);
        let body = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: kubectl failed: {}\ns_server:\n{}",
            file.display(),
            String::from_utf8_lossy(&out.stderr),
            server.log()
        );
        // s_server -www answers with its view of the session, including the client certificate.
        assert!(
            body.contains("Verify return code: 0 (ok)"),
            "{}: {body}",
            file.display()
        );
        assert!(
            body.contains(&format!("CN={cn}\n")),
            "{}: client certificate not presented: {body}",
            file.display()
        );
        let log = server.log();
        assert!(
            log.contains(&format!("CN = {cn}\nverify return:1")),
            "{}: s_server did not verify {cn}:\n{log}",
            file.display()
        );
    }
    assert!(!server.log().contains("verify error"), "{}", server.log());

    // A kubeconfig from another tree: its client certificate is refused by the server (kubectl is
    // told to trust the server's CA so that only the client side can fail) ...
    let foreign = other_kc.join("admin.conf");
    let ca = pki.join("ca.crt");
    let out = kubectl_get(
        &foreign,
        &server,
        &["--certificate-authority", ca.to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "foreign client accepted");
    assert!(
        err.contains("tls: unknown certificate authority"),
        "kubectl: {err}"
    );
    let log = server.log();
    assert!(
        log.contains("verify error:num=20:unable to get local issuer certificate"),
        "{log}"
    );
    // ... and with its own CA data kubectl refuses the server.
    let out = kubectl_get(&foreign, &server, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "foreign CA accepted the server");
    assert!(
        err.contains("x509: certificate signed by unknown authority"),
        "kubectl: {err}"
    );
}

fn user_args<'a>(pki: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "kubeconfig",
        "user",
        "--cert-dir",
        pki.to_str().unwrap(),
        "--apiserver-advertise-address",
        "10.0.0.10",
    ];
    v.extend_from_slice(extra);
    v
}

#[test]
fn kubeconfig_user_has_the_asked_identity_and_validity() {
    let tmp = tempfile::tempdir().unwrap();
    let (pki, _) = tree_with_kc(tmp.path(), &[]);
    let out = ok(
        kpki(user_args(
            &pki,
            &[
                "--client-name",
                "jane",
                "--org",
                "team-a",
                "--org",
                "devs",
                "--validity-period",
                "48h",
                "--encryption-algorithm",
                "ECDSA-P256",
            ],
        )),
        "kubeconfig user",
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.ends_with("\n\n") && !text.ends_with("\n\n\n"),
        "kubeadm prints one extra newline"
    );
    let file = tmp.path().join("jane.conf");
    fs::write(&file, &text).unwrap();
    let f = view(&file);
    assert_eq!(f.user, "jane");
    assert_eq!(f.ctx_user, "jane");
    assert_eq!(f.context, "jane@kubernetes");
    assert_eq!(f.current, "jane@kubernetes");
    assert_eq!(f.cluster, "kubernetes");
    assert_eq!(f.server, LOCAL_URL);
    assert_eq!(f.ca_pem, fs::read(pki.join("ca.crt")).unwrap());
    let c = client(&f.cert_pem);
    assert_eq!(c.cn, ["jane"]);
    let mut orgs = c.orgs.clone();
    orgs.sort();
    assert_eq!(orgs, ["devs", "team-a"]);
    assert_eq!(c.rdn_sizes, [2, 1], "both O values in one RDN, then CN");
    assert!(c.client_auth_only && !c.is_ca, "{c:?}");
    assert_eq!(c.key, "EC-256");
    assert_eq!(key_label(&f.key_pem), "EC PRIVATE KEY");
    // NotBefore is back-dated five minutes; the asked period runs from now.
    let period = c.not_after - c.not_before - 300;
    assert!((period - 48 * 3600).abs() <= 60, "validity {period}s");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((c.not_after - (now + 48 * 3600)).abs() <= 60);
    openssl_chain_and_key(tmp.path(), &f, now);

    // Comma lists are split like kubeadm's string-slice flag.
    let out = ok(
        kpki(user_args(
            &pki,
            &["--client-name", "bob", "--org", "a,b", "--org", "c"],
        )),
        "kubeconfig user --org a,b",
    );
    let file = tmp.path().join("bob.conf");
    fs::write(&file, &out.stdout).unwrap();
    let c = client(&view(&file).cert_pem);
    let mut orgs = c.orgs.clone();
    orgs.sort();
    assert_eq!(orgs, ["a", "b", "c"]);
    // Without --encryption-algorithm the key follows the tree's CA (ECDSA here), as node
    // credentials do: the inputs are read back from the tree.
    assert_eq!(c.key, "EC-256", "default algorithm");
}

#[test]
fn kubeconfig_user_warns_above_a_year_and_writes_0600_with_out() {
    let tmp = tempfile::tempdir().unwrap();
    let (pki, _) = tree_with_kc(tmp.path(), &[]);
    let file = tmp.path().join("out/ops.conf");
    let out = ok(
        kpki(user_args(
            &pki,
            &[
                "--client-name",
                "ops",
                "--validity-period",
                "10000h",
                "--encryption-algorithm",
                "ECDSA-P256",
                "--out",
                file.to_str().unwrap(),
            ],
        )),
        "kubeconfig user --out",
    );
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "WARNING: the specified certificate validity period 10000h0m0s is longer than the \
         default duration 8760h0m0s, this may increase security risks.\n"
    );
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = fs::read_to_string(&file).unwrap();
    assert!(text.ends_with('\n'));
    assert!(!text.ends_with("\n\n"), "the file is the YAML alone");
    let out = ok(
        kubectl([
            "--kubeconfig",
            file.to_str().unwrap(),
            "config",
            "view",
            "--raw",
        ]),
        "kubectl config view",
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), text);
    let c = client(&view(&file).cert_pem);
    assert_eq!(c.cn, ["ops"]);
    assert!(c.orgs.is_empty());
    assert!((c.not_after - c.not_before - 300 - 10000 * 3600).abs() <= 60);

    // Exactly 8760h: no warning.
    let out = ok(
        kpki(user_args(
            &pki,
            &[
                "--client-name",
                "ops",
                "--validity-period",
                "8760h",
                "--encryption-algorithm",
                "ECDSA-P256",
            ],
        )),
        "kubeconfig user 8760h",
    );
    assert!(out.stderr.is_empty());
}

#[test]
fn kubeconfig_user_takes_server_and_cluster_from_the_kubeadm_config() {
    // The CA kubeadm v1.28.4 made signs a kpki user certificate.
    let tmp = tempfile::tempdir().unwrap();
    let pki = fixture().join("pki");
    let config = fixture().join("kubeadm-config.yaml");
    let out = ok(
        kpki([
            "--now",
            "2027-01-01T00:00:00Z",
            "kubeconfig",
            "user",
            "--config",
            s(&config),
            "--cert-dir",
            pki.to_str().unwrap(),
            "--client-name",
            "auditor",
            "--org",
            "viewers",
        ]),
        "kubeconfig user --config",
    );
    let file = tmp.path().join("auditor.conf");
    fs::write(&file, &out.stdout).unwrap();
    let f = view(&file);
    assert_eq!(f.server, CPE_URL);
    assert_eq!(f.cluster, "kubernetes");
    assert_eq!(f.context, "auditor@kubernetes");
    let c = client(&f.cert_pem);
    assert_eq!(
        (c.cn.as_slice(), c.orgs.as_slice()),
        (&["auditor".to_string()][..], &["viewers".to_string()][..])
    );
    assert_eq!(c.key, "RSA-2048");
    // 2027-01-01T00:00:00Z minus five minutes.
    assert_eq!(c.not_before, 1_798_761_600 - 300);
    openssl_chain_and_key(tmp.path(), &f, 1_798_761_600 + 60);

    // A control-plane endpoint alone is enough to know the server.
    let out = ok(
        kpki([
            "kubeconfig",
            "user",
            "--cert-dir",
            pki.to_str().unwrap(),
            "--client-name",
            "x",
            "--control-plane-endpoint",
            "cp.example:7443",
            "--cluster-name",
            "prod",
            "--encryption-algorithm",
            "ECDSA-P256",
        ]),
        "kubeconfig user --control-plane-endpoint",
    );
    fs::write(&file, &out.stdout).unwrap();
    let f = view(&file);
    assert_eq!(f.server, "https://cp.example:7443");
    assert_eq!(f.cluster, "prod");
    assert_eq!(f.current, "x@prod");
}

fn one_error_line(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

#[test]
fn kubeconfig_user_fails_cleanly_without_the_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = tmp.path().join("pki");
    fs::create_dir_all(&pki).unwrap();
    let ca = tmp.path().join("ca-only");
    init_tree(&ca, &[]);
    // ca.crt present, ca.key absent (external CA layout).
    fs::copy(ca.join("pki/ca.crt"), pki.join("ca.crt")).unwrap();
    let out = kpki(user_args(&pki, &["--client-name", "jane"]));
    let err = one_error_line(&out);
    assert!(
        err.contains(&pki.join("ca.key").display().to_string()) && err.contains("does not exist"),
        "{err}"
    );
    // Neither present: the certificate is named first.
    fs::remove_file(pki.join("ca.crt")).unwrap();
    let err = one_error_line(&kpki(user_args(&pki, &["--client-name", "jane"])));
    assert!(err.contains("ca.crt: ") && err.contains("missing"), "{err}");
    // A key that is not the CA's.
    fs::copy(ca.join("pki/ca.crt"), pki.join("ca.crt")).unwrap();
    fs::copy(ca.join("pki/front-proxy-ca.key"), pki.join("ca.key")).unwrap();
    let err = one_error_line(&kpki(user_args(&pki, &["--client-name", "jane"])));
    assert!(
        err.contains("ca.key: ") && err.contains("does not match"),
        "{err}"
    );
    // Bad flags are named.
    let err = one_error_line(&kpki(user_args(
        &pki,
        &["--client-name", "jane", "--validity-period", "1y"],
    )));
    assert!(err.contains("--validity-period"), "{err}");
    let err = one_error_line(&kpki([
        "kubeconfig",
        "user",
        "--cert-dir",
        pki.to_str().unwrap(),
        "--client-name",
        "jane",
    ]));
    assert!(err.contains("--control-plane-endpoint"), "{err}");
}

/// `--out` with a bare file name writes into the current directory, flushed like any other
/// (its directory is `.`; the empty path a bare name's parent is made a run fail after staging
/// once the flush read the staged file's file system from its descriptor).
#[test]
fn user_kubeconfig_out_as_a_bare_file_name() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = init_tree(&tmp.path().join("t"), &[]);
    let cwd = tmp.path().join("cwd");
    fs::create_dir(&cwd).unwrap();
    Kpki::new([
        "kubeconfig",
        "user",
        "--cert-dir",
        s(&pki),
        "--client-name",
        "alice",
        "--apiserver-advertise-address",
        "10.0.0.10",
        "--out",
        "alice.conf",
    ])
    .in_dir(&cwd)
    .ok();
    let file = cwd.join("alice.conf");
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // kubectl reads it: the user is alice, with a client certificate embedded.
    let v = kubeconfig_json(&file);
    assert_eq!(v["users"][0]["name"], "alice", "{v}");
    assert!(
        v["users"][0]["user"]["client-certificate-data"].is_string(),
        "{v}"
    );
    // Nothing staged is left behind.
    let left: Vec<_> = fs::read_dir(&cwd)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("alice.conf")]);
}
