//! Hardening (issue 11): inputs that used to balloon, panic or mislead. Huge files are refused
//! with bounded memory (the child's peak RSS is measured), a full stdout is one line and a clean
//! exit code, verify says what is wrong with unsupported CAs, text output never carries raw
//! control characters, init warns about what it finds and what it is about to issue, and a
//! property-style run over random specs and template values shows that no run writes outside
//! its directories or over an existing key.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::util::reliability::{run_ok, Layout, Rng};
use crate::util::{self, copy_dir, set_mode, stderr, stdout, strings, Modes, INPUTS, KPKI};

/// Runs kpki under python's `resource.getrusage(RUSAGE_CHILDREN)` and returns its output and
/// peak resident set size in KiB (python is the parent, so only kpki is counted).
fn run_measured(args: &[String]) -> (Output, u64) {
    let rss = tempfile::NamedTempFile::new().unwrap();
    let script = "import resource, subprocess, sys\n\
r = subprocess.run(sys.argv[2:], stdin=subprocess.DEVNULL)\n\
open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n\
sys.exit(r.returncode)\n";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(rss.path())
        .arg(KPKI)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let kib = std::fs::read_to_string(rss.path())
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (out, kib)
}

/// A snapshot that never reads big files whole: kind, size, mode, inode, mtime, link target, and
/// the bytes of files up to 4 MiB.
type Meta = (
    bool,
    u64,
    u32,
    u64,
    i64,
    i64,
    Option<PathBuf>,
    Option<Vec<u8>>,
);

fn meta_snapshot(root: &Path) -> BTreeMap<String, Meta> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Meta>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let bytes = (m.is_file() && m.len() <= 4 << 20).then(|| std::fs::read(&p).unwrap());
            let link = m
                .file_type()
                .is_symlink()
                .then(|| std::fs::read_link(&p).unwrap());
            out.insert(
                rel,
                (
                    m.is_dir(),
                    m.len(),
                    m.mode() & 0o7777,
                    m.ino(),
                    m.mtime(),
                    m.mtime_nsec(),
                    link,
                    bytes,
                ),
            );
            if m.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// A complete ECDSA tree made by `kpki init` with [`INPUTS`].
fn tree() -> (tempfile::TempDir, Layout) {
    let dir = tempfile::tempdir().unwrap();
    let l = Layout::new(dir.path());
    run_ok(&l.args(&["init"], INPUTS));
    (dir, l)
}

// ------------------------------------------------------------------ item 7: bounded reads

/// Peak RSS a refused huge input may cost (a normal `init` needs about 17 MiB).
const RSS_LIMIT_KIB: u64 = 64 * 1024;

/// A 3 GiB certificate, a 2 MiB key, a 5 MiB kubeconfig, a 1 GiB spec, a 1 GiB kubeadm config,
/// and `/dev/zero` as spec and config: every read stops at its cap. Each run exits with its
/// documented code and one `error:` line naming the file and the cap, changes nothing, and its
/// peak RSS stays under 64 MiB. (The files are sparse: the test costs no disk.)
#[test]
fn huge_inputs_are_refused_with_bounded_memory() {
    type Setup = fn(&Layout, &Path) -> Vec<String>;
    let cases: Vec<(&str, Setup, &str, i32)> = vec![
        (
            "3 GiB certificate (init)",
            |l, _| {
                std::fs::File::options()
                    .write(true)
                    .open(l.pki.join("apiserver.crt"))
                    .unwrap()
                    .set_len(3 << 30)
                    .unwrap();
                l.args(&["init"], INPUTS)
            },
            "apiserver.crt",
            2,
        ),
        (
            "3 GiB certificate (verify)",
            |l, _| {
                std::fs::File::options()
                    .write(true)
                    .open(l.pki.join("apiserver.crt"))
                    .unwrap()
                    .set_len(3 << 30)
                    .unwrap();
                l.args(&["verify"], INPUTS)
            },
            "verify found",
            1,
        ),
        (
            "2 MiB CA key (renew all)",
            |l, _| {
                let p = l.pki.join("ca.key");
                let mut b = std::fs::read(&p).unwrap();
                b.resize(2 << 20, b'\n');
                std::fs::write(&p, b).unwrap();
                l.args(&["certs", "renew", "all"], INPUTS)
            },
            "ca.key",
            2,
        ),
        (
            "5 MiB kubeconfig (init)",
            |l, _| {
                let p = l.k.join("admin.conf");
                let mut b = std::fs::read(&p).unwrap();
                b.extend(std::iter::repeat_n(b'#', 5 << 20));
                std::fs::write(&p, b).unwrap();
                l.args(&["init"], INPUTS)
            },
            "admin.conf",
            2,
        ),
        (
            "1 GiB spec",
            |l, input| {
                let p = input.join("spec.toml");
                std::fs::File::create(&p).unwrap().set_len(1 << 30).unwrap();
                let mut a = strings(&["--spec", &p.display().to_string()]);
                a.extend(l.args(&["plan"], INPUTS));
                a
            },
            "spec.toml",
            2,
        ),
        (
            "/dev/zero as the spec",
            |l, _| {
                let mut a = strings(&["--spec", "/dev/zero"]);
                a.extend(l.args(&["init"], INPUTS));
                a
            },
            "/dev/zero",
            2,
        ),
        (
            "1 GiB kubeadm config",
            |l, input| {
                let p = input.join("kubeadm.yaml");
                std::fs::File::create(&p).unwrap().set_len(1 << 30).unwrap();
                let mut a = l.args(&["init"], INPUTS);
                a.extend(strings(&["--config", &p.display().to_string()]));
                a
            },
            "kubeadm.yaml",
            2,
        ),
        (
            "/dev/zero as the kubeadm config",
            |l, _| {
                let mut a = l.args(&["init"], INPUTS);
                a.extend(strings(&["--config", "/dev/zero"]));
                a
            },
            "/dev/zero",
            2,
        ),
    ];
    let (base, bl) = tree();
    let _ = &base;
    let mut failures = Vec::new();
    for (name, setup, needle, code) in cases {
        let dir = tempfile::tempdir().unwrap();
        let l = Layout::new(dir.path());
        copy_dir(&bl.k, &l.k, Modes::Keep);
        let input = dir.path().join("in");
        std::fs::create_dir(&input).unwrap();
        let args = setup(&l, &input);
        let before = meta_snapshot(dir.path());
        let (out, kib) = run_measured(&args);
        let after = meta_snapshot(dir.path());
        let err = stderr(&out);
        println!(
            "{name:<34} exit {:?}, peak RSS {kib} KiB: {}",
            out.status.code(),
            err.lines().last().unwrap_or("")
        );
        let mut why = Vec::new();
        if out.status.code() != Some(code) {
            why.push(format!("exit {:?}", out.status.code()));
        }
        if kib > RSS_LIMIT_KIB {
            why.push(format!("peak RSS {kib} KiB"));
        }
        if err.lines().count() != 1 || !err.starts_with("error: ") || err.contains("panicked") {
            why.push(format!("stderr {err:?}"));
        }
        let text = format!("{err}{}", stdout(&out));
        if !text.contains(needle) {
            why.push(format!("does not name {needle}"));
        }
        if code == 2 && !err.contains("larger than") {
            why.push("does not name the cap".into());
        }
        if code == 1 && !stdout(&out).contains("is larger than 1 MiB") {
            why.push("verify does not report the cap".into());
        }
        if before != after {
            why.push("changed the directory".into());
        }
        if !why.is_empty() {
            failures.push(format!("{name}: {}", why.join("; ")));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

// ------------------------------------------------------------------ item 13: stdout

/// `kpki spec > /dev/full` (and other commands that print): one `error:` line naming standard
/// output, exit 2, no panic.
#[test]
fn a_full_stdout_is_one_line_and_exit_2() {
    let (_dir, l) = tree();
    for args in [
        strings(&["spec"]),
        strings(&["token", "generate"]),
        strings(&["certs", "certificate-key"]),
        l.args(&["plan"], INPUTS),
        l.args(&["verify"], INPUTS),
        l.args(&["certs", "check-expiration"], INPUTS),
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = Command::new(KPKI)
            .args(&args)
            .stdout(full)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("error: standard output: No space left on device"),
            "{args:?}: {err}"
        );
    }
}

// ------------------------------------------------------------------ items 18 and 19: verify

fn verify_json(l: &Layout) -> (i32, serde_json::Value) {
    let out = util::kpki(l.args(&["verify", "-o", "json"], INPUTS));
    (
        out.status.code().unwrap(),
        serde_json::from_slice(&out.stdout).unwrap(),
    )
}

fn findings(v: &serde_json::Value) -> Vec<(String, String, String, String)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap().to_string();
            (s("code"), s("entry"), s("path"), s("message"))
        })
        .collect()
}

/// Replaces the tree's CA with one made by openssl for `keyopt` (its leaves no longer chain).
fn foreign_ca(l: &Layout, keyopt: &[&str]) {
    let key = l.pki.join("ca.key");
    let mut args = vec!["genpkey"];
    args.extend_from_slice(keyopt);
    let pem = util::tool_ok("openssl", &args, None);
    std::fs::write(&key, pem).unwrap();
    util::tool_ok(
        "openssl",
        [
            "req",
            "-x509",
            "-key",
            &key.display().to_string(),
            "-subj",
            "/CN=kubernetes",
            "-days",
            "3650",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,digitalSignature,keyEncipherment",
            "-out",
            &l.pki.join("ca.crt").display().to_string(),
        ],
        None,
    );
}

/// RSA-1024, P-521 and secp256k1 CAs: verify says the key type is unsupported, on the CA's
/// certificate and on its key, and never blames "a different CA with the same name"; the
/// ECDSA-only `ku-keyencipherment-ecdsa` is never said of an RSA key.
#[test]
fn unsupported_ca_keys_are_named_as_such() {
    for (what, opt, ec) in [
        (
            "RSA-1024",
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"][..],
            false,
        ),
        (
            "P-521",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"][..],
            true,
        ),
        (
            "secp256k1",
            &[
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:secp256k1",
            ][..],
            true,
        ),
    ] {
        let (_dir, l) = tree();
        foreign_ca(&l, opt);
        let (code, v) = verify_json(&l);
        assert_eq!(code, 1, "{what}");
        let fs = findings(&v);
        let on = |path: &str| -> Vec<&(String, String, String, String)> {
            fs.iter().filter(|f| f.2.ends_with(path)).collect()
        };
        let crt = on("pki/ca.crt");
        assert!(
            crt.iter().any(|f| f.0 == "key-algorithm-unsupported"
                && f.3.contains(if ec { "curve" } else { "RSA-1024" })),
            "{what}: {crt:?}"
        );
        let key = on("pki/ca.key");
        assert!(
            key.iter().any(|f| f.0 == "key-algorithm-unsupported"
                && f.3.contains("which kpki does not support")),
            "{what}: {key:?}"
        );
        assert!(
            !fs.iter().any(|f| f.3.contains("same name")),
            "{what}: {fs:?}"
        );
        if !ec {
            assert!(
                !fs.iter().any(|f| f.0 == "ku-keyencipherment-ecdsa"),
                "{what}: said of an RSA key: {fs:?}"
            );
        }
    }
}

/// A 219 KB CA certificate (a huge extension) that rustls-webpki cannot use as an anchor is
/// reported once, on the CA (`tls-rejected`); its leaves and kubeconfigs say `chain-unchecked`
/// and get no `tls-rejected` of their own with the fix "renew <leaf>".
#[test]
fn an_unusable_ca_is_reported_once_on_the_ca() {
    let (dir, l) = tree();
    let cnf = dir.path().join("big.cnf");
    std::fs::write(
        &cnf,
        format!(
            "[req]\ndistinguished_name=dn\n[dn]\n[ext]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,digitalSignature\nsubjectKeyIdentifier=hash\n1.2.3.4=ASN1:UTF8String:{}\n",
            "x".repeat(219_000)
        ),
    )
    .unwrap();
    util::tool_ok(
        "openssl",
        [
            "req",
            "-x509",
            "-key",
            &l.pki.join("ca.key").display().to_string(),
            "-subj",
            "/CN=kubernetes",
            "-days",
            "3650",
            "-config",
            &cnf.display().to_string(),
            "-extensions",
            "ext",
            "-out",
            &l.pki.join("ca.crt").display().to_string(),
        ],
        None,
    );
    let der_len = util::cert_der(&l.pki.join("ca.crt")).len();
    assert!(der_len > 219_000, "{der_len}");
    let (code, v) = verify_json(&l);
    assert_eq!(code, 1);
    let fs = findings(&v);
    let rejected: Vec<_> = fs.iter().filter(|f| f.0 == "tls-rejected").collect();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0].1, "ca");
    let unchecked: Vec<&str> = fs
        .iter()
        .filter(|f| f.0 == "chain-unchecked")
        .map(|f| f.1.as_str())
        .collect();
    for e in [
        "apiserver",
        "apiserver-kubelet-client",
        "admin.conf",
        "scheduler.conf",
    ] {
        assert!(unchecked.contains(&e), "{e}: {unchecked:?}");
    }
}

/// A leaf certificate issued for its CA's own key (openssl, signed by the CA): verify reports
/// `key-reused` on it (init refuses it: the bad-input table's "leaf holding its CA's key").
#[test]
fn a_leaf_holding_its_cas_key_is_key_reused() {
    let (_dir, l) = tree();
    let k = l.pki.join("ca.key").display().to_string();
    let csr = util::tool_ok(
        "openssl",
        ["req", "-new", "-key", &k, "-subj", "/CN=kube-apiserver"],
        None,
    );
    let leaf = util::tool_ok(
        "openssl",
        [
            "x509",
            "-req",
            "-CA",
            &l.pki.join("ca.crt").display().to_string(),
            "-CAkey",
            &k,
            "-days",
            "365",
            "-set_serial",
            "7",
        ],
        Some(&csr),
    );
    std::fs::write(l.pki.join("apiserver.crt"), leaf).unwrap();
    std::fs::copy(l.pki.join("ca.key"), l.pki.join("apiserver.key")).unwrap();
    let (code, v) = verify_json(&l);
    assert_eq!(code, 1);
    assert!(
        findings(&v)
            .iter()
            .any(|f| f.0 == "key-reused" && f.1 == "apiserver" && f.3.contains("CA ca")),
        "{v}"
    );
}

/// A certificate whose subject holds ESC and newline characters: verify's text report escapes
/// them (no raw control character reaches the terminal), and `init`'s one error line stays one
/// line.
#[test]
fn control_characters_from_certificates_are_escaped() {
    let (dir, l) = tree();
    let evil = "kube\u{1b}[31mapiserver\nerror: forged";
    let key = l.pki.join("apiserver.key").display().to_string();
    let csr = util::tool_ok(
        "openssl",
        [
            "req",
            "-new",
            "-key",
            &key,
            "-utf8",
            "-subj",
            &format!("/CN={evil}"),
        ],
        None,
    );
    let crt = util::tool_ok(
        "openssl",
        [
            "x509",
            "-req",
            "-CA",
            &l.pki.join("ca.crt").display().to_string(),
            "-CAkey",
            &l.pki.join("ca.key").display().to_string(),
            "-days",
            "365",
            "-set_serial",
            "9",
        ],
        Some(&csr),
    );
    std::fs::write(l.pki.join("apiserver.crt"), crt).unwrap();
    let _ = dir;
    let out = util::kpki(l.args(&["verify"], INPUTS));
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(!text.contains('\u{1b}'), "raw ESC in verify's text");
    assert!(text.contains("\\u{1b}[31m"), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("error: forged")));
    let out = util::kpki(l.args(&["init"], INPUTS));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains('\u{1b}'), "{err:?}");
}

// ------------------------------------------------------------------ items 21 and 22: warnings

/// init says what it finds and what it is about to issue, as warnings (exit 0): a CA key left
/// 0644 (repaired to 0600), leaves that would outlive their CA (`--ca-validity 1h`), a CA issued
/// for 1ns, a CN longer than RFC 5280's 64 characters (a 60-character node name).
#[test]
fn init_warns_about_modes_short_cas_and_long_cns() {
    let (_dir, l) = tree();
    set_mode(&l.pki.join("ca.key"), 0o644);
    let out = util::kpki(l.args(&["init"], INPUTS));
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("WARNING: ca: key-mode-insecure:")
            && err.contains(&l.pki.join("ca.key").display().to_string())
            && err.contains("0644"),
        "{err}"
    );
    assert_eq!(util::mode(&l.pki.join("ca.key")), 0o600);

    for (validity, shown) in [("1h", "1h0m0s"), ("1ns", "1ns")] {
        let dir = tempfile::tempdir().unwrap();
        let l = Layout::new(dir.path());
        let mut args = l.args(&["init"], INPUTS);
        args.extend(strings(&["--ca-validity", validity]));
        let out = util::kpki(&args);
        let err = stderr(&out);
        assert!(out.status.success(), "{err}");
        assert!(
            err.contains("WARNING: ca: cert-expiring:") && err.contains(&format!("only {shown}")),
            "{validity}: {err}"
        );
        assert!(
            err.contains("WARNING: apiserver: cert-outlives-ca:")
                && err.contains("after its CA ca expires"),
            "{validity}: {err}"
        );
        assert!(
            err.contains("WARNING: admin.conf: cert-outlives-ca:"),
            "{validity}: {err}"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let l = Layout::new(dir.path());
    let node = format!("n{}", "x".repeat(59));
    let out = util::kpki(l.args(
        &["init"],
        &[
            "--node-name",
            &node,
            "--apiserver-advertise-address",
            "10.0.0.10",
            "--encryption-algorithm",
            "ECDSA-P256",
        ],
    ));
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("WARNING: kubelet.conf: subject-cn-long:") && err.contains("72-character CN"),
        "{err}"
    );
    let cn = util::kubeconfig_facts(&l.k.join("kubelet.conf")).user;
    assert_eq!(cn.len(), 72);
    // verify reports the same CN as a warning, not an error.
    let out = util::kpki(l.args(
        &["verify", "-o", "json"],
        &[
            "--node-name",
            &node,
            "--apiserver-advertise-address",
            "10.0.0.10",
            "--encryption-algorithm",
            "ECDSA-P256",
        ],
    ));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let long: Vec<_> = findings(&v)
        .into_iter()
        .filter(|f| f.0 == "subject-cn-long")
        .collect();
    assert!(!long.is_empty(), "{v}");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

// ------------------------------------------------------------------ the property

const NODE_NAMES: &[&str] = &[
    "cp-1",
    "ca",
    "etcd",
    "sa",
    "pki",
    "front-proxy-ca",
    "apiserver",
    "x",
];
const CLUSTER_NAMES: &[&str] = &[
    "kubernetes",
    "..",
    "../..",
    "../../escaped/x",
    "pki/ca",
    "pki/etcd/ca",
    "a/b",
    "ca",
    "admin",
    "pki",
];
const CERT_PATHS: &[&str] = &[
    "{node_name}",
    "{cluster_name}",
    "ca",
    "etcd/ca",
    "sa",
    "etcd",
    "{node_name}/x",
    "../{node_name}",
    "sub/{cluster_name}",
    "front-proxy-ca",
    "apiserver",
    "x-{node_name}",
    "etcd/{node_name}",
    "moved/{node_name}",
    "alt",
    "etcd/alt",
    "sub/deeper/x",
];
const KUBECONFIG_FILES: &[&str] = &[
    "pki/ca.key",
    "pki/{node_name}.key",
    "{cluster_name}.conf",
    "{cluster_name}",
    "pki",
    "pki/etcd/ca.crt",
    "admin.conf",
    "pki/sa.pub",
    "{node_name}/kubelet.conf",
    "x-{node_name}.conf",
    "pki/etcd",
    "alt.conf",
    "sub/{node_name}.conf",
    "x-{cluster_name}.conf",
];
const KEYPAIR_FILES: &[&str] = &[
    "ca.key",
    "etcd",
    "sa2.key",
    "apiserver.key",
    "{node_name}.key",
    "etcd/ca.key",
];

fn pick<'a>(rng: &mut Rng, v: &[&'a str]) -> &'a str {
    v[rng.below(v.len() as u64) as usize]
}

/// Replaces the value of the `n`-th occurrence of `key = "..."` in `spec`.
fn set_nth(spec: &str, key: &str, n: usize, value: &str) -> String {
    let pat = format!("\n{key} = \"");
    let Some((start, _)) = spec.match_indices(&pat).nth(n) else {
        return spec.to_string();
    };
    let from = start + pat.len();
    let end = from + spec[from..].find('"').unwrap();
    format!("{}{value}{}", &spec[..from], &spec[end..])
}

/// The default spec with 1 to 3 paths renamed at random (to another entry's path, a template, a
/// directory of another entry, a path leaving its directory), and a description of the edits.
fn mutate(spec: &str, rng: &mut Rng) -> (String, Vec<String>) {
    let mut s = spec.to_string();
    let mut edits = Vec::new();
    for _ in 0..1 + rng.below(2) {
        let (key, count, values) = match rng.below(4) {
            0 | 1 => ("path", spec.matches("\npath = \"").count(), CERT_PATHS),
            2 => (
                "file",
                spec.matches("\nfile = \"").count(),
                KUBECONFIG_FILES,
            ),
            _ => (
                if rng.chance(1, 2) { "key" } else { "pub" },
                1,
                KEYPAIR_FILES,
            ),
        };
        let n = rng.below(count as u64) as usize;
        let v = pick(rng, values);
        s = set_nth(&s, key, n, v);
        edits.push(format!("{key}#{n}={v}"));
    }
    (s, edits)
}

fn holds_private_key(b: &[u8]) -> bool {
    b.windows(11).any(|w| w == b"PRIVATE KEY")
}

/// For random specs built from the default by renaming paths, and random template values
/// (`--node-name`, `--cluster-name`), on a fresh directory or a copy of a complete tree, with
/// `init`, `init --regenerate-drifted`, `certs renew all` or `certs generate-csr`: no run changes
/// anything outside the kubeconfig directory (which holds the cert dir), no run changes a CA key
/// that existed, no run turns an existing private key file into something else, a refused run
/// (exit 2, one line) changes nothing, and no run panics. `KPKI_PROPERTY_TRIALS`
/// sets the number of runs (default 96), `KPKI_CRASH_SEED` replays them.
#[test]
fn random_specs_and_template_values_never_write_outside_their_roots_or_over_keys() {
    let seed = util::seed();
    println!("KPKI_CRASH_SEED={seed}");
    let mut rng = Rng::new(seed ^ 0x11);
    let trials = util::env_count("KPKI_PROPERTY_TRIALS", 96);
    let spec = stdout(&util::kpki(["spec"]));
    let (_base, bl) = tree();
    let ca_keys = [
        "k/pki/ca.key",
        "k/pki/front-proxy-ca.key",
        "k/pki/etcd/ca.key",
    ];
    let (mut ok, mut refused) = (0, 0);
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for trial in 0..trials {
        let (text, edits) = mutate(&spec, &mut rng);
        // The tree's own values most of the time, so that many runs get as far as writing.
        let node = if rng.chance(3, 5) {
            "cp-1"
        } else {
            pick(&mut rng, NODE_NAMES)
        };
        let cluster = if rng.chance(1, 2) {
            "kubernetes"
        } else {
            pick(&mut rng, CLUSTER_NAMES)
        };
        let fresh = rng.chance(1, 3);
        let cmd: &[&str] = match rng.below(4) {
            0 => &["init"],
            1 => &["init", "--regenerate-drifted"],
            2 if !fresh => &["certs", "renew", "all"],
            3 if fresh => &["certs", "generate-csr"],
            _ => &["init"],
        };
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let l = Layout::new(root);
        if !fresh {
            copy_dir(&bl.k, &l.k, Modes::Keep);
        }
        std::fs::create_dir(root.join("outside")).unwrap();
        std::fs::write(root.join("outside/keep.txt"), b"untouched\n").unwrap();
        let spec_path = util::write_file(root, "spec.toml", text.as_bytes());
        let mut args = strings(&["--spec", &spec_path.display().to_string()]);
        args.extend(l.args(
            cmd,
            &[
                "--node-name",
                node,
                "--cluster-name",
                cluster,
                "--apiserver-advertise-address",
                "10.0.0.10",
                "--encryption-algorithm",
                "ECDSA-P256",
            ],
        ));
        let before = util::snapshot(root);
        let out = util::kpki(&args);
        let after = util::snapshot(root);
        let err = stderr(&out);
        let ctx = format!(
            "seed={seed} trial={trial} {cmd:?} node={node} cluster={cluster} fresh={fresh} edits={edits:?}"
        );
        let changed = util::changed(&before, &after);
        let mut why = Vec::new();
        if err.contains("panicked") {
            why.push("panicked".to_string());
        }
        for p in &changed {
            if !p.starts_with("k/") && p != "k" {
                why.push(format!("wrote outside its roots: {p}"));
            }
        }
        for k in ca_keys {
            if let (Some(a), Some(b)) = (before.get(k), after.get(k)) {
                if a.bytes != b.bytes || a.ino != b.ino {
                    why.push(format!("changed CA key {k}"));
                }
            } else if before.contains_key(k) {
                why.push(format!("removed CA key {k}"));
            }
        }
        for (p, n) in &before {
            if !n.dir && holds_private_key(&n.bytes) {
                match after.get(p) {
                    Some(a) if a.dir || !holds_private_key(&a.bytes) => {
                        why.push(format!("overwrote the key {p} with something else"))
                    }
                    None => why.push(format!("removed the key {p}")),
                    _ => {}
                }
            }
        }
        if let Some(first) = err.lines().next() {
            let why = first
                .split(": ")
                .skip(1)
                .find(|w| !w.starts_with('/') && !w.starts_with("spec ") && w.len() > 12)
                .unwrap_or(first);
            *reasons
                .entry(why.chars().take(60).collect::<String>())
                .or_insert(0) += 1;
        }
        match out.status.code() {
            Some(0) => ok += 1,
            Some(2) => {
                refused += 1;
                if err.lines().count() != 1 || !err.starts_with("error: ") {
                    why.push(format!("refusal is not one error line: {err:?}"));
                }
                // A refused run writes nothing (an empty cert dir created for the lock aside).
                for p in &changed {
                    let empty_dir = after.get(p).is_some_and(|n| n.dir) && !before.contains_key(p);
                    if !empty_dir {
                        why.push(format!("refused but changed {p}"));
                    }
                }
            }
            c => why.push(format!("exit {c:?}: {err}")),
        }
        if !why.is_empty() {
            failures.push(format!("{ctx}: {}\n    stderr: {err}", why.join("; ")));
        }
    }
    println!("{trials} random runs: {ok} succeeded, {refused} refused");
    for (r, n) in &reasons {
        println!("  {n:3} x {r}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        ok > 0 && refused > 0,
        "{ok} succeeded, {refused} refused: the trials exercise one side only"
    );
}

/// `kubeconfig user --out` and `kubeconfig bootstrap --out` aimed at random files of a complete
/// tree (CA keys, other keys, kubeconfigs), at new files, and outside the tree: a file of the tree
/// or a key file is never replaced; a new file is written with mode 0600 and nothing else changes.
#[test]
fn out_files_never_replace_a_file_of_the_tree_or_a_key() {
    let seed = util::seed();
    println!("KPKI_CRASH_SEED={seed}");
    let mut rng = Rng::new(seed ^ 0x22);
    let (_base, bl) = tree();
    let targets = [
        "k/pki/ca.key",
        "k/pki/etcd/ca.key",
        "k/pki/front-proxy-ca.key",
        "k/pki/apiserver.key",
        "k/pki/sa.key",
        "k/pki/ca.crt",
        "k/admin.conf",
        "k/kubelet.conf",
        "outside/some.key",
        "k/new-user.conf",
        "outside/new-user.conf",
        "k/pki/new/nested.conf",
    ];
    for trial in 0..12 {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let l = Layout::new(root);
        copy_dir(&bl.k, &l.k, Modes::Keep);
        std::fs::create_dir(root.join("outside")).unwrap();
        std::fs::write(
            root.join("outside/some.key"),
            std::fs::read(bl.pki.join("apiserver.key")).unwrap(),
        )
        .unwrap();
        let target = targets[rng.below(targets.len() as u64) as usize];
        let out_path = root.join(target);
        let pki = l.pki.display().to_string();
        let op = out_path.display().to_string();
        let args = if rng.chance(1, 2) {
            strings(&[
                "kubeconfig",
                "user",
                "--client-name",
                "alice",
                "--cert-dir",
                &pki,
                "--apiserver-advertise-address",
                "10.0.0.10",
                "--out",
                &op,
            ])
        } else {
            strings(&[
                "kubeconfig",
                "bootstrap",
                "--token",
                "abcdef.0123456789abcdef",
                "--cert-dir",
                &pki,
                "--apiserver-advertise-address",
                "10.0.0.10",
                "--out",
                &op,
            ])
        };
        let existed = out_path.exists();
        let before = util::snapshot(root);
        let out = util::kpki(&args);
        let after = util::snapshot(root);
        let changed = util::changed(&before, &after);
        let ctx = format!("seed={seed} trial={trial} {} --out {target}", args[1]);
        if existed {
            assert_eq!(out.status.code(), Some(2), "{ctx}: {}", stderr(&out));
            assert_eq!(stderr(&out).lines().count(), 1, "{ctx}");
            assert!(changed.is_empty(), "{ctx}: {changed:?}");
        } else {
            assert!(out.status.success(), "{ctx}: {}", stderr(&out));
            let created: Vec<&String> = changed.iter().filter(|p| !after[*p].dir).collect();
            assert_eq!(created, vec![&target.to_string()], "{ctx}");
            assert_eq!(util::mode(&out_path), 0o600, "{ctx}");
            util::kubeconfig_json(&out_path);
        }
    }
}
