//! `kpki nodes` (bulk kubelet credentials) and `kpki init --jobs`, checked with tools that are
//! not kpki: `openssl verify` chains every certificate, kubectl parses every kubeconfig, and
//! x509-parser reads subjects, usages and SANs.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;
use base64::Engine;

const CPE: &str = "k8s.example.internal:6443";
const CPE_URL: &str = "https://k8s.example.internal:6443";

/// An ECDSA-P256 control-plane tree under `<root>/kube/pki`, with a control-plane endpoint.
fn ecdsa_tree(root: &Path) -> PathBuf {
    init_tree(&root.join("kube"), &["--control-plane-endpoint", CPE])
}

/// `kpki nodes` for `pki`, `nodes`, `out` with the control-plane endpoint, plus `extra`.
fn kpki_nodes(pki: &Path, nodes: &Path, out: &Path, extra: &[&str]) -> Kpki {
    Kpki::nodes(pki, nodes, out)
        .args(["--control-plane-endpoint", CPE])
        .args(extra)
}

/// Node `i` of a generated list: a name and one or two IPs (every fifth has an IPv6 one too).
fn node(i: usize) -> (String, Vec<IpAddr>) {
    let mut ips = vec![IpAddr::from([10, 1, (i / 250) as u8, (i % 250 + 1) as u8])];
    if i.is_multiple_of(5) {
        ips.push(format!("fd00:1::{:x}", i + 1).parse().unwrap());
    }
    (format!("node-{i:04}"), ips)
}

fn nodes_file(dir: &Path, n: usize) -> PathBuf {
    let mut text = String::from("# generated nodes\n");
    for i in 0..n {
        let (name, ips) = node(i);
        let ips: Vec<String> = ips.iter().map(|i| i.to_string()).collect();
        text.push_str(&format!("{name},{}\n", ips.join(",")));
    }
    write_file(dir, "nodes.txt", text.as_bytes())
}

/// `openssl verify -x509_strict -CAfile ca -purpose p` over many certificates in one process.
fn verify_all(ca: &Path, certs: &[PathBuf], purpose: &str) {
    let mut args: Vec<OsString> = vec![
        "verify".into(),
        "-x509_strict".into(),
        "-CAfile".into(),
        ca.into(),
        "-purpose".into(),
        purpose.into(),
    ];
    args.extend(certs.iter().map(|c| c.as_os_str().to_owned()));
    let out = openssl(&args);
    let ok = out.lines().filter(|l| l.ends_with(": OK")).count();
    assert_eq!(ok, certs.len(), "openssl verify:\n{out}");
}

/// Every node's kubeconfig, read by kubectl in one merged view: user name → client cert PEM.
/// Also checks each context, and that every file's cluster has the expected server and CA.
/// Paths are relative to `dir` (kubectl runs there) to keep KUBECONFIG short.
fn kubeconfig_users(dir: &Path, files: &[PathBuf], ca_pem: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let joined = std::env::join_paths(files).unwrap();
    let out = Command::new("kubectl")
        .args(["config", "view", "--raw", "-o", "json"])
        .current_dir(dir)
        .env("KUBECONFIG", &joined)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let b64 = |s: &serde_json::Value| {
        base64::engine::general_purpose::STANDARD
            .decode(s.as_str().unwrap())
            .unwrap()
    };
    let mut users = BTreeMap::new();
    for u in v["users"].as_array().unwrap() {
        let name = u["name"].as_str().unwrap().to_string();
        assert!(u["user"]["client-key-data"].is_string(), "{name}: no key");
        users.insert(name, b64(&u["user"]["client-certificate-data"]));
    }
    let contexts = v["contexts"].as_array().unwrap();
    assert_eq!(contexts.len(), files.len());
    for c in contexts {
        let user = c["context"]["user"].as_str().unwrap();
        assert_eq!(c["name"].as_str().unwrap(), format!("{user}@kubernetes"));
        assert_eq!(c["context"]["cluster"], "kubernetes");
    }
    // Cluster entries all have the same name, so kubectl's merge keeps only the first: read each
    // file's own view for server and CA (a sample; they come from one code path).
    for f in files.iter().step_by(files.len().div_ceil(4).max(1)) {
        let f = dir.join(f);
        let k = kubeconfig_facts(&f);
        assert_eq!(k.server, CPE_URL, "{}", f.display());
        assert_eq!(k.ca_pem, ca_pem, "{}", f.display());
        assert_eq!(k.cluster, "kubernetes");
    }
    users
}

/// Checks every node of `0..n` under `out`: exactly the three files, both certificates chain to
/// the CA for their purpose, subjects, usages and SANs are right.
fn check_nodes(pki: &Path, out: &Path, n: usize) {
    let ca = pki.join("ca.crt");
    let ca_pem = std::fs::read(&ca).unwrap();
    let want_files: BTreeSet<String> = (0..n)
        .flat_map(|i| {
            let name = node(i).0;
            ["kubelet.conf", "kubelet.crt", "kubelet.key"].map(|f| format!("{name}/{f}"))
        })
        .collect();
    assert_eq!(files(out), want_files, "files under the output dir");

    let serving: Vec<PathBuf> = (0..n)
        .map(|i| out.join(node(i).0).join("kubelet.crt"))
        .collect();
    verify_all(&ca, &serving, "sslserver");
    for (i, crt) in serving.iter().enumerate() {
        let (name, ips) = node(i);
        let f = facts(crt);
        assert_eq!(f.cn, [format!("system:node:{name}")], "{name}");
        assert_eq!(f.orgs, ["system:nodes"], "{name}");
        assert_eq!(f.dns, std::slice::from_ref(&name), "{name}");
        assert_eq!(f.ips, ips, "{name}");
        assert!(
            f.ext_key_usage.contains("serverAuth") && !f.ext_key_usage.contains("clientAuth"),
            "{name}: {}",
            f.ext_key_usage
        );
        assert_eq!(f.basic_constraints, "!CA:FALSE");
        assert_eq!(mode(&crt.with_extension("key")), 0o600);
    }

    let confs: Vec<PathBuf> = (0..n)
        .map(|i| Path::new(&node(i).0).join("kubelet.conf"))
        .collect();
    let users = kubeconfig_users(out, &confs, &ca_pem);
    assert_eq!(users.len(), n);
    let certs = tempfile::tempdir().unwrap();
    let mut client = Vec::new();
    for (i, conf) in confs.iter().enumerate() {
        let name = node(i).0;
        let pem = users
            .get(&format!("system:node:{name}"))
            .unwrap_or_else(|| panic!("no user for {name}"));
        let f = facts_der(&der_of(pem));
        assert_eq!(f.cn, [format!("system:node:{name}")]);
        assert_eq!(f.orgs, ["system:nodes"]);
        assert!(
            f.ext_key_usage.contains("clientAuth") && !f.ext_key_usage.contains("serverAuth"),
            "{name}: {}",
            f.ext_key_usage
        );
        client.push(write_file(certs.path(), &format!("{name}.crt"), pem));
        assert_eq!(mode(&out.join(conf)), 0o600);
    }
    verify_all(&ca, &client, "sslclient");
    // Keys belong to their certificates (a sample: one openssl run per key).
    for i in (0..n).step_by(n.div_ceil(3).max(1)) {
        let dir = out.join(node(i).0);
        assert_key_matches(&dir.join("kubelet.key"), &dir.join("kubelet.crt"));
        assert_eq!(ec_curve(&dir.join("kubelet.key")), "prime256v1");
    }
}

#[test]
fn two_hundred_nodes_with_serving_certs_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = ecdsa_tree(tmp.path());
    let list = nodes_file(tmp.path(), 200);
    let out = tmp.path().join("out");
    let stdout = kpki_nodes(&pki, &list, &out, &["--serving"]).ok();
    assert!(
        stdout.contains(
            "200 line(s): 200 issued, 0 replaced, 0 up to date, 0 failed; 600 file(s) written"
        ),
        "{stdout}"
    );
    check_nodes(&pki, &out, 200);

    // A second run keeps everything, byte for byte.
    let before = snapshot(&out);
    let stdout = kpki_nodes(&pki, &list, &out, &["--serving"]).ok();
    assert!(
        stdout.contains("0 issued, 0 replaced, 200 up to date, 0 failed; 0 file(s) written"),
        "{stdout}"
    );
    assert!(changed(&before, &snapshot(&out)).is_empty());

    // A broken file, a wrong mode and a changed IP are found and fixed; nothing else moves.
    std::fs::write(out.join("node-0003/kubelet.conf"), "garbage").unwrap();
    std::fs::set_permissions(
        out.join("node-0007/kubelet.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let text = std::fs::read_to_string(&list)
        .unwrap()
        .replace("node-0011,10.1.0.12\n", "node-0011,10.1.0.99\n");
    std::fs::write(&list, text).unwrap();
    let out2 = kpki_nodes(&pki, &list, &out, &["--serving"]).run();
    assert!(out2.status.success());
    let stderr = String::from_utf8_lossy(&out2.stderr);
    for (line, file) in [
        (5, "node-0003/kubelet.conf"),
        (9, "node-0007/kubelet.crt"),
        (13, "node-0011/kubelet.crt"),
    ] {
        assert!(
            stderr.contains(&format!("nodes.txt:{line}: ")) && stderr.contains(file),
            "{stderr}"
        );
    }
    let touched: BTreeSet<String> = changed(&before, &snapshot(&out));
    let want: BTreeSet<String> = [
        "node-0003/kubelet.conf",
        "node-0007/kubelet.crt",
        "node-0007/kubelet.key",
        "node-0011/kubelet.crt",
        "node-0011/kubelet.key",
    ]
    .map(String::from)
    .into();
    assert_eq!(touched, want);
    let f = facts(&out.join("node-0011/kubelet.crt"));
    assert_eq!(f.ips, ["10.1.0.99".parse::<IpAddr>().unwrap()]);
}

/// A batch stages many more files than a process may usually hold open (1,024 by default): 150
/// nodes with `--serving` are 450 files in one batch, under a limit of 200 open files. Before
/// the writer closed each staged file, this failed with "Too many open files" midway through
/// staging.
#[test]
fn a_batch_is_not_limited_by_open_files() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = ecdsa_tree(tmp.path());
    let list = nodes_file(tmp.path(), 150);
    let out = tmp.path().join("out");
    let kpki = kpki_nodes(&pki, &list, &out, &["--serving"]).command();
    let mut limited = Command::new("sh");
    limited
        .arg("-c")
        .arg("ulimit -n 200 && exec \"$0\" \"$@\"")
        .arg(kpki.get_program())
        .args(kpki.get_args());
    let done = run_cmd(&mut limited);
    assert!(
        done.status.success(),
        "{}",
        report("kpki nodes under ulimit -n 200", &done)
    );
    assert!(
        stdout(&done)
            .contains("150 issued, 0 replaced, 0 up to date, 0 failed; 450 file(s) written"),
        "{}",
        stdout(&done)
    );
    check_nodes(&pki, &out, 150);
}

/// Spawns `kpki nodes`, kills it (SIGKILL) as soon as 20 node directories exist, re-runs it, and
/// checks that the set is complete, with every file whole and no leftovers.
#[test]
fn killed_run_is_finished_by_a_rerun() {
    let _serial = serial(); // a kill timed against the run's progress, with a deadline
    for attempt in 0..4 {
        let n = 400 * (attempt + 1);
        let tmp = tempfile::tempdir().unwrap();
        let pki = ecdsa_tree(tmp.path());
        let list = nodes_file(tmp.path(), n);
        let out = tmp.path().join("out");
        let mut child = kpki_nodes(&pki, &list, &out, &["--serving"])
            .command()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let finished = loop {
            if child.try_wait().unwrap().is_some() {
                break true;
            }
            if std::fs::read_dir(&out)
                .map(|d| d.count() >= 20)
                .unwrap_or(false)
            {
                child.kill().unwrap();
                break false;
            }
            assert!(Instant::now() < deadline, "kpki nodes wrote nothing in 30s");
            std::thread::sleep(Duration::from_millis(1));
        };
        let status = child.wait().unwrap();
        let complete = (0..n)
            .filter(|i| {
                let d = out.join(node(*i).0);
                ["kubelet.conf", "kubelet.crt", "kubelet.key"]
                    .iter()
                    .all(|f| d.join(f).exists())
            })
            .count();
        if finished || status.success() || complete == n {
            eprintln!("attempt {attempt}: the run finished before the kill; trying a longer list");
            continue;
        }

        let leftovers = snapshot(&out)
            .keys()
            .filter(|k| k.ends_with(".kpki-tmp"))
            .count();
        eprintln!(
            "killed with {complete} of {n} nodes complete, {leftovers} temporary file(s) left"
        );
        let stdout = kpki_nodes(&pki, &list, &out, &["--serving"]).ok();
        // Complete nodes (all three files, each renamed into place whole) are kept; the rest,
        // partial or absent, are issued.
        assert!(
            stdout.contains(&format!(
                "{n} line(s): {} issued, 0 replaced, {complete} up to date, 0 failed",
                n - complete
            )),
            "{complete} of {n} complete after the kill: {stdout}"
        );
        check_nodes(&pki, &out, n);

        let stdout = kpki_nodes(&pki, &list, &out, &["--serving"]).ok();
        assert!(
            stdout.contains(&format!("{n} up to date, 0 failed; 0 file(s) written")),
            "{stdout}"
        );
        return;
    }
    panic!("kpki nodes always finished before it could be killed");
}

#[test]
fn bad_lines_are_reported_by_line_number_and_good_ones_done() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = ecdsa_tree(tmp.path());
    let list = write_file(
        tmp.path(),
        "nodes.txt",
        b"# comment line\n\
          good-1,10.0.0.1\n\
          Bad_Name,10.0.0.2\n\
          good-2,10.0.0.300\n\
          good-3,,10.0.0.3\n\
          good-1\n\
          \n\
          good-4,fd00::4 # trailing comment\n\
          -leading-dash\n\
          GOOD-5\n",
    );
    let out = tmp.path().join("out");
    let res = kpki_nodes(&pki, &list, &out, &["--serving"]).run();
    assert_eq!(res.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&res.stderr);
    let stdout = String::from_utf8_lossy(&res.stdout);
    let origin = list.display().to_string();
    for (line, what) in [
        (3, "Bad_Name"),
        (4, "10.0.0.300"),
        (5, "empty IP field"),
        (6, "listed twice (first on line 2)"),
        (9, "-leading-dash"),
    ] {
        let l = stderr
            .lines()
            .find(|l| l.starts_with(&format!("error: {origin}:{line}: ")))
            .unwrap_or_else(|| panic!("no error for line {line}:\n{stderr}"));
        assert!(l.contains(what), "line {line}: {l}");
    }
    for line in [1, 2, 7, 8, 10] {
        assert!(!stderr.contains(&format!("{origin}:{line}:")), "{stderr}");
    }
    assert!(
        stdout.contains("8 line(s): 3 issued, 0 replaced, 0 up to date, 5 failed"),
        "{stdout}"
    );
    let dirs: BTreeSet<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        dirs,
        ["good-1", "good-4", "good-5"].map(String::from).into()
    );
    let ca = pki.join("ca.crt");
    for d in &dirs {
        assert_verifies(&ca, &out.join(d).join("kubelet.crt"), "sslserver");
    }
    assert_eq!(
        facts(&out.join("good-4/kubelet.crt")).ips,
        ["fd00::4".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(facts(&out.join("good-5/kubelet.crt")).dns, ["good-5"]);
}

#[test]
fn yaml_lists_are_read_and_bad_items_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = ecdsa_tree(tmp.path());
    let list = write_file(
        tmp.path(),
        "nodes.yaml",
        b"---\n\
          # workers\n\
          - worker-a\n\
          - name: worker-b\n  ips: [10.0.0.2, \"fd00::2\"]\n\
          - {name: worker-c, ips: [10.0.0.3]}\n\
          - name: worker-d\n  ipz: [10.0.0.4]\n\
          - name: worker-e\n  ips: [not-an-ip]\n",
    );
    let out = tmp.path().join("out");
    let res = kpki_nodes(&pki, &list, &out, &["--serving"]).run();
    assert_eq!(res.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&res.stderr);
    let origin = list.display().to_string();
    assert!(
        stderr.contains(&format!("{origin}:7: ")) && stderr.contains("ipz"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{origin}:9: ")) && stderr.contains("not-an-ip"),
        "{stderr}"
    );
    let b = facts(&out.join("worker-b/kubelet.crt"));
    assert_eq!(b.dns, ["worker-b"]);
    assert_eq!(
        b.ips,
        [
            "10.0.0.2".parse::<IpAddr>().unwrap(),
            "fd00::2".parse().unwrap()
        ]
    );
    assert_eq!(
        facts(&out.join("worker-a/kubelet.crt")).ips,
        Vec::<IpAddr>::new()
    );
    assert!(out.join("worker-c/kubelet.conf").exists());
    assert!(!out.join("worker-d").exists() && !out.join("worker-e").exists());
}

#[test]
fn node_files_follow_the_spec() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = ecdsa_tree(tmp.path());
    let spec_text = kpki_ok(["spec"])
        .replace("file = \"{node_name}/kubelet.conf\"", "file = \"kubeconfigs/{node_name}.conf\"")
        .replace("path = \"{node_name}/kubelet\"", "path = \"serving/{node_name}\"")
        .replace("server = \"control_plane\"\nkey_usages = [\"digital_signature\", \"key_encipherment\"]\next_key_usages = [\"client_auth\"]\nvalidity = \"cert\"\n\n# The kubelet", "server = \"local\"\nkey_usages = [\"digital_signature\", \"key_encipherment\"]\next_key_usages = [\"client_auth\"]\nvalidity = \"48h\"\n\n# The kubelet");
    let spec = write_file(tmp.path(), "spec.toml", spec_text.as_bytes());
    let list = write_file(tmp.path(), "nodes.txt", b"n1,10.0.0.1\nn2\n");
    let out = tmp.path().join("out");
    kpki_nodes(
        &pki,
        &list,
        &out,
        &["--serving", "--apiserver-advertise-address", "10.0.0.10"],
    )
    .global(["--spec", s(&spec)])
    .ok();
    assert_eq!(
        files(&out),
        [
            "kubeconfigs/n1.conf",
            "kubeconfigs/n2.conf",
            "serving/n1.crt",
            "serving/n1.key",
            "serving/n2.crt",
            "serving/n2.key"
        ]
        .map(String::from)
        .into()
    );
    let k = kubeconfig_facts(&out.join("kubeconfigs/n1.conf"));
    assert_eq!(k.server, "https://10.0.0.10:6443");
    let f = facts_der(&der_of(&k.cert_pem));
    assert_eq!(
        f.span(),
        48 * 3600 + 300,
        "validity 48h from the spec, NotBefore back-dated 5 min"
    );

    // A node path without {node_name} is refused before anything is written.
    let bad = spec_text.replace(
        "file = \"kubeconfigs/{node_name}.conf\"",
        "file = \"kubelet.conf\"",
    );
    let bad_spec = write_file(tmp.path(), "bad.toml", bad.as_bytes());
    let (code, stderr) = kpki_nodes(&pki, &list, &tmp.path().join("out2"), &[])
        .global(["--spec", s(&bad_spec)])
        .fail();
    assert_eq!(code, 2);
    assert!(
        stderr.contains("node-kubelet-client") && stderr.contains("{node_name}"),
        "{stderr}"
    );
    assert!(!tmp.path().join("out2").exists());
}

#[test]
fn missing_ca_is_an_error_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let list = write_file(tmp.path(), "nodes.txt", b"n1\n");
    let (code, stderr) = kpki_nodes(
        &tmp.path().join("nope"),
        &list,
        &tmp.path().join("out"),
        &[],
    )
    .fail();
    assert_eq!(code, 2);
    assert!(stderr.contains("nope/ca.crt"), "{stderr}");
}

/// Item 1 of the performance issue: keys generated in parallel or on one thread give trees that
/// pass the same openssl checks (chains, purposes, key matches, modes).
#[test]
fn init_trees_with_jobs_1_and_parallel_keygen_verify() {
    for jobs in ["1", "2"] {
        let tmp = tempfile::tempdir().unwrap();
        let kube = tmp.path().join("kube");
        // The default algorithm (RSA-2048): the slowest key generation.
        Kpki::init(&kube.join("pki"))
            .inputs(&[])
            .without("--encryption-algorithm")
            .global(["--jobs", jobs])
            .ok();
        check_tree(&kube.join("pki"), &kube, Alg::Rsa2048);
    }
}

/// Two runs never write one output directory at once: the second waits for the lock, and gives
/// up with exit 2 after --lock-timeout.
#[test]
fn a_held_output_lock_stops_a_second_run() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = ecdsa_tree(tmp.path());
    let list = write_file(tmp.path(), "nodes.txt", b"n1\n");
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let held = std::fs::File::open(&out).unwrap();
    held.lock().unwrap();
    let run = kpki_nodes(&pki, &list, &out, &[]).global(["--lock-timeout", "200ms"]);
    let (code, stderr) = run.fail();
    assert_eq!(code, 2);
    assert!(stderr.contains("another kpki process"), "{stderr}");
    assert!(files(&out).is_empty());
    drop(held);
    run.ok();
    assert_eq!(files(&out), ["n1/kubelet.conf".to_string()].into());
}

/// A temporary file an interrupted run left is replaced; a kubeconfig that is a symbolic link is
/// refused (the line fails) and the file it points to is left alone.
#[test]
fn leftover_temporaries_are_replaced_and_links_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = ecdsa_tree(tmp.path());
    let list = write_file(tmp.path(), "nodes.txt", b"n1\nn2\n");
    let out = tmp.path().join("out");
    std::fs::create_dir_all(out.join("n1")).unwrap();
    std::fs::create_dir_all(out.join("n2")).unwrap();
    std::fs::write(out.join("n1/.kubelet.conf.kpki-tmp"), "half a kubeconf").unwrap();
    let precious = write_file(tmp.path(), "precious", b"do not touch");
    std::os::unix::fs::symlink(&precious, out.join("n2/kubelet.conf")).unwrap();
    let res = kpki_nodes(&pki, &list, &out, &[]).run();
    assert_eq!(res.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(
        stderr.contains(":2: node n2: ") && stderr.contains("symbolic link"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&precious).unwrap(), b"do not touch");
    // The leftover is gone; the link is still the link.
    assert_eq!(
        files(&out),
        ["n1/kubelet.conf", "n2/kubelet.conf"]
            .map(String::from)
            .into()
    );
    assert!(std::fs::symlink_metadata(out.join("n2/kubelet.conf"))
        .unwrap()
        .file_type()
        .is_symlink());
    let k = kubeconfig_facts(&out.join("n1/kubelet.conf"));
    assert_eq!(k.user, "system:node:n1");
}
