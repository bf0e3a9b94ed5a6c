//! Operating a tree (issue 16), end to end and checked with independent tools:
//! * metrics: `verify --textfile` / `-o prometheus` pass `promtool check metrics`, parse with the
//!   Python prometheus_client, and hold exactly the series the x509-certificate-exporter would
//!   (names, HELP, TYPE and label names against the table below; label values and times computed
//!   with pyca/cryptography from the files, kubeconfigs decoded with kubectl), on the kubeadm
//!   fixture and on a kpki tree with a bundle and a broken file;
//! * `certs renew --if-expiring-within`: with a pinned clock only the due entries change, a second
//!   run changes nothing, the exit codes say nothing-due / renewed / CA due / not renewable;
//! * contrib/systemd: `systemd-analyze verify` fails without the binary at ExecStart and passes
//!   with it; the ExecStart lines run against a real tree; the alert rules pass `promtool test
//!   rules`;
//! * `kpki completions bash` completes in bash; `kpki man` renders with man and groff;
//! * `kpki tree` in a tmux pane (colours) and piped (plain); the HTML report in headless Chromium
//!   (screenshot, and the DOM checked for every entry and finding).
//!
//! Tools: promtool (Debian prometheus), chromium, systemd-analyze, tmux, man, groff, python3 with
//! prometheus_client and cryptography, kubectl, openssl: scripts/test.sh installs what is missing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{
    self, changed, fixture, fixture_copy, init_tree, kpki, kubeconfig_facts, require, run_cmd, s,
    serial, set_mode, show, snapshot, write_file, INPUTS, KPKI,
};

const T0: &str = "2026-01-15T12:00:00Z";

/// The families kpki writes: name, TYPE, HELP (the x509 ones copied from
/// x509-certificate-exporter v3.9.0 internal/collector.go), and the label names each may carry.
const FAMILIES: &[(&str, &str, &str, &[&str])] = &[
    (
        "kpki_finding",
        "gauge",
        "Number of kpki verify findings with this severity and code for this spec entry and file (see docs/findings.md)",
        &["severity", "code", "entry", "path"],
    ),
    (
        "x509_cert_error",
        "gauge",
        "Indicates wether the corresponding secret has read failure(s)",
        &["filename", "filepath"],
    ),
    (
        "x509_cert_expired",
        "gauge",
        "Indicates if the certificate is expired",
        CERT_LABELS,
    ),
    (
        "x509_cert_not_after",
        "gauge",
        "Indicates the certificate's not after timestamp",
        CERT_LABELS,
    ),
    (
        "x509_cert_not_before",
        "gauge",
        "Indicates the certificate's not before timestamp",
        CERT_LABELS,
    ),
    (
        "x509_read_errors",
        "gauge",
        "Indicates the number of read failure(s)",
        &[],
    ),
];

const CERT_LABELS: &[&str] = &[
    "filename",
    "filepath",
    "serial_number",
    "embedded_kind",
    "embedded_key",
    "issuer_C",
    "issuer_ST",
    "issuer_L",
    "issuer_O",
    "issuer_OU",
    "issuer_CN",
    "subject_C",
    "subject_ST",
    "subject_L",
    "subject_O",
    "subject_OU",
    "subject_CN",
];

// ------------------------------------------------------------------ helpers

fn require_python(module: &str) {
    let out = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .unwrap_or_else(|e| panic!("python3 is not installed ({e})"));
    assert!(
        out.status.success(),
        "python module {module} is missing; run scripts/test.sh, which pip-installs it (CI does)"
    );
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/integration/operate")
        .join(name)
}

fn python_json(script_name: &str, args: &[&str]) -> Value {
    let out = run_cmd(Command::new("python3").arg(script(script_name)).args(args));
    assert!(out.status.success(), "{script_name}: {}", show(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The kubeadm v1.28.4 fixture with kubeadm's modes (git keeps none); returns its flags. It is
/// checked as the 1.29+ layout (`--kubeadm-version 1.29`), so it lacks super-admin.conf: a read
/// error and a verify error to report.
fn fixture_tree(dir: &Path) -> (PathBuf, Vec<String>) {
    let root = fixture_copy(dir);
    let args = vec![
        "--config".into(),
        fixture().join("kubeadm-config.yaml").display().to_string(),
        "--cert-dir".into(),
        root.join("pki").display().to_string(),
        "--kubeconfig-dir".into(),
        root.join("kubeconfig").display().to_string(),
        "--kubeadm-version".into(),
        "1.29".into(),
    ];
    (root, args)
}

/// A fresh ECDSA tree made by `kpki init` at T0; returns its flags.
fn kpki_tree(dir: &Path) -> Vec<String> {
    let mut args: Vec<String> = INPUTS.iter().map(|a| a.to_string()).collect();
    args.extend([
        "--cert-dir".into(),
        dir.join("pki").display().to_string(),
        "--kubeconfig-dir".into(),
        dir.display().to_string(),
    ]);
    init_tree(dir, &["--now", T0, "--kubeconfig-dir", s(dir)]);
    args
}

fn with<'a>(base: &'a [&'a str], args: &'a [String]) -> Vec<&'a str> {
    let mut v = base.to_vec();
    v.extend(args.iter().map(String::as_str));
    v
}

// ------------------------------------------------------------------ metrics

/// One certificate-bearing file as the exporter sees it.
struct Watched {
    /// The path as kpki was given it (the `filepath` label).
    path: String,
    /// PEM files holding its certificates, with the embedded kind/key for kubeconfigs.
    pems: Vec<(PathBuf, Option<(String, String)>)>,
}

type LabelSet = BTreeMap<String, String>;

/// What the metrics must say, computed without kpki: per family, label set → value.
fn expected(
    watched: &[Watched],
    broken: &[String],
    findings: &Value,
    now: i64,
) -> BTreeMap<String, BTreeMap<LabelSet, f64>> {
    let mut out: BTreeMap<String, BTreeMap<LabelSet, f64>> = BTreeMap::new();
    let mut fam = |name: &str, l: LabelSet, v: f64| {
        let prev = out.entry(name.into()).or_default().insert(l.clone(), v);
        assert!(prev.is_none(), "{name}: duplicate series {l:?}");
    };
    for w in watched {
        let filename = Path::new(&w.path)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let base: LabelSet = [
            ("filename".to_string(), filename),
            ("filepath".to_string(), w.path.clone()),
        ]
        .into();
        fam("x509_cert_error", base.clone(), 0.0);
        let paths: Vec<&str> = w.pems.iter().map(|(p, _)| s(p)).collect();
        let facts = python_json("cert_labels.py", &paths);
        for (pem, embedded) in &w.pems {
            let certs = facts[s(pem)].as_array().unwrap();
            for (i, c) in certs.iter().enumerate() {
                let mut l = base.clone();
                for (k, v) in c["labels"].as_object().unwrap() {
                    l.insert(k.clone(), v.as_str().unwrap().to_string());
                }
                if let Some((kind, key)) = embedded {
                    l.insert("embedded_kind".into(), kind.clone());
                    let key = if certs.len() > 1 {
                        format!("{key}({i})")
                    } else {
                        key.clone()
                    };
                    l.insert("embedded_key".into(), key);
                }
                let nb = c["not_before"].as_i64().unwrap();
                let na = c["not_after"].as_i64().unwrap();
                fam("x509_cert_not_before", l.clone(), nb as f64);
                fam("x509_cert_not_after", l.clone(), na as f64);
                fam("x509_cert_expired", l, if now > na { 1.0 } else { 0.0 });
            }
        }
    }
    for path in broken {
        let filename = Path::new(path)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        fam(
            "x509_cert_error",
            [
                ("filename".to_string(), filename),
                ("filepath".to_string(), path.clone()),
            ]
            .into(),
            1.0,
        );
    }
    fam("x509_read_errors", LabelSet::new(), broken.len() as f64);
    let mut counts: BTreeMap<LabelSet, f64> = BTreeMap::new();
    for f in findings.as_array().unwrap() {
        let l: LabelSet = ["severity", "code", "entry", "path"]
            .iter()
            .map(|k| (k.to_string(), f[*k].as_str().unwrap().to_string()))
            .collect();
        *counts.entry(l).or_default() += 1.0;
    }
    for (l, n) in counts {
        fam("kpki_finding", l, n);
    }
    out
}

/// promtool, prometheus_client and the expectations, on one textfile.
fn check_textfile(prom: &Path, want: &BTreeMap<String, BTreeMap<LabelSet, f64>>) {
    let text = std::fs::read(prom).unwrap();
    let out = run_cmd(
        Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::fs::File::open(prom).unwrap()),
    );
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}",
        show(&out)
    );
    assert!(
        !String::from_utf8(text).unwrap().is_empty(),
        "empty textfile"
    );
    let parsed = python_json("parse_metrics.py", &[s(prom)]);
    let families = parsed.as_array().unwrap();
    let names: Vec<&str> = families
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    let table: Vec<&str> = FAMILIES.iter().map(|f| f.0).collect();
    assert_eq!(names, table, "families (and their order)");
    for f in families {
        let name = f["name"].as_str().unwrap();
        let (_, kind, help, allowed) = FAMILIES.iter().find(|t| t.0 == name).unwrap();
        assert_eq!(f["type"], *kind, "{name} TYPE");
        assert_eq!(f["help"], *help, "{name} HELP");
        let mut got: BTreeMap<LabelSet, f64> = BTreeMap::new();
        for smp in f["samples"].as_array().unwrap() {
            assert_eq!(smp["name"], name);
            assert!(
                smp["timestamp"].is_null(),
                "{name}: a sample has a timestamp"
            );
            let l: LabelSet = smp["labels"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            for k in l.keys() {
                assert!(
                    allowed.contains(&k.as_str()),
                    "{name}: unexpected label {k}"
                );
            }
            assert!(
                got.insert(l.clone(), smp["value"].as_f64().unwrap())
                    .is_none(),
                "{name}: series {l:?} twice"
            );
        }
        let empty = BTreeMap::new();
        let w = want.get(name).unwrap_or(&empty);
        let missing: Vec<_> = w.keys().filter(|k| !got.contains_key(*k)).collect();
        let extra: Vec<_> = got.keys().filter(|k| !w.contains_key(*k)).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{name}: missing {missing:#?}\nextra {extra:#?}"
        );
        for (l, v) in w {
            assert_eq!(got[l], *v, "{name} {l:?}");
        }
    }
}

/// The cluster CA and the client certificate of a kubeconfig, decoded by kubectl.
fn kubeconfig_pems(dir: &Path, path: &Path) -> Vec<(PathBuf, Option<(String, String)>)> {
    let k = kubeconfig_facts(path);
    let name = path.file_name().unwrap().to_string_lossy();
    vec![
        (
            write_file(dir, &format!("{name}.ca.pem"), &k.ca_pem),
            Some(("cluster".into(), k.cluster)),
        ),
        (
            write_file(dir, &format!("{name}.crt.pem"), &k.cert_pem),
            Some(("user".into(), k.user)),
        ),
    ]
}

fn findings_json(args: &[String], now: &str) -> Value {
    let out = kpki(with(&["verify", "-o", "json", "--now", now], args));
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&out)));
    v["findings"].clone()
}

fn unix(rfc3339: &str) -> i64 {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

/// Writes the textfile with `verify --textfile` and checks it; `-o prometheus` prints the same.
fn textfile_round(args: &[String], now: &str, watched: &[Watched], broken: &[String]) {
    let dir = tempfile::tempdir().unwrap();
    let out = kpki(with(
        &["verify", "--now", now, "--textfile", s(dir.path())],
        args,
    ));
    // Exit 0 once written, whatever the findings.
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        out.stdout.is_empty(),
        "--textfile prints nothing: {}",
        show(&out)
    );
    let prom = dir.path().join("kpki.prom");
    assert_eq!(util::mode(&prom), 0o644);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["kpki.prom"], "temporary files left behind");
    let printed = kpki(with(&["verify", "--now", now, "-o", "prometheus"], args));
    assert_eq!(
        String::from_utf8(printed.stdout).unwrap(),
        std::fs::read_to_string(&prom).unwrap(),
        "-o prometheus and --textfile differ"
    );
    let want = expected(watched, broken, &findings_json(args, now), unix(now));
    check_textfile(&prom, &want);
}

fn require_metrics_tools() {
    require("promtool", "--version", "Debian's prometheus package");
    require("kubectl", "version", "kubernetes-client");
    require_python("prometheus_client");
    require_python("cryptography");
}

#[test]
fn metrics_of_the_kubeadm_fixture_match_the_exporter() {
    require_metrics_tools();
    let dir = tempfile::tempdir().unwrap();
    let (root, args) = fixture_tree(dir.path());
    let pems = dir.path().join("pems");
    std::fs::create_dir(&pems).unwrap();
    let mut watched = Vec::new();
    for rel in [
        "pki/ca.crt",
        "pki/front-proxy-ca.crt",
        "pki/etcd/ca.crt",
        "pki/apiserver.crt",
        "pki/apiserver-kubelet-client.crt",
        "pki/front-proxy-client.crt",
        "pki/etcd/server.crt",
        "pki/etcd/peer.crt",
        "pki/etcd/healthcheck-client.crt",
        "pki/apiserver-etcd-client.crt",
    ] {
        let p = root.join(rel);
        watched.push(Watched {
            path: p.display().to_string(),
            pems: vec![(p, None)],
        });
    }
    for name in [
        "admin.conf",
        "kubelet.conf",
        "controller-manager.conf",
        "scheduler.conf",
    ] {
        let p = root.join("kubeconfig").join(name);
        watched.push(Watched {
            path: p.display().to_string(),
            pems: kubeconfig_pems(&pems, &p),
        });
    }
    // kubeadm 1.28 writes no super-admin.conf: the exporter reports a watched file that is
    // absent as a read error.
    let broken = vec![root
        .join("kubeconfig/super-admin.conf")
        .display()
        .to_string()];
    // Before the leaves expire, and after (x509_cert_expired flips for them only).
    textfile_round(&args, "2026-11-28T09:00:00Z", &watched, &broken);
    textfile_round(&args, "2027-12-01T00:00:00Z", &watched, &broken);
}

#[test]
fn metrics_of_a_kpki_tree_cover_bundles_subject_fields_and_broken_files() {
    require_metrics_tools();
    let dir = tempfile::tempdir().unwrap();
    let args = kpki_tree(dir.path());
    let pems = dir.path().join("pems");
    std::fs::create_dir(&pems).unwrap();
    // A bundle: apiserver.crt followed by a certificate whose subject has every field the
    // exporter labels, two O values and two CNs (Go keeps the first O and the last CN), and both
    // a province and a street address (the exporter's _ST is the street address).
    let extra_key = dir.path().join("extra.key");
    let extra = dir.path().join("extra.crt");
    let out = run_cmd(Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "30",
        "-keyout",
        s(&extra_key),
        "-out",
        s(&extra),
        "-subj",
        "/C=FR/ST=Ile-de-France/street=1 Rue de Rivoli/L=Paris/O=Org One/O=Org Two/OU=Unit \"A\"/CN=first/CN=second",
    ]));
    assert!(out.status.success(), "{}", show(&out));
    let apiserver = dir.path().join("pki/apiserver.crt");
    let mut bundle = std::fs::read(&apiserver).unwrap();
    bundle.extend(std::fs::read(&extra).unwrap());
    std::fs::write(&apiserver, bundle).unwrap();
    let facts = python_json("cert_labels.py", &[s(&apiserver)]);
    let second = &facts[s(&apiserver)][1]["labels"];
    assert_eq!(second["subject_ST"], "1 Rue de Rivoli", "{second}");
    assert_eq!(second["subject_O"], "Org One", "{second}");
    assert_eq!(second["subject_CN"], "second", "{second}");
    // A broken kubeconfig.
    let scheduler = dir.path().join("scheduler.conf");
    std::fs::write(&scheduler, "apiVersion: v1\nkind: Config\nusers: [\n").unwrap();
    set_mode(&scheduler, 0o600);

    let mut watched = Vec::new();
    for rel in [
        "pki/ca.crt",
        "pki/front-proxy-ca.crt",
        "pki/etcd/ca.crt",
        "pki/apiserver.crt",
        "pki/apiserver-kubelet-client.crt",
        "pki/front-proxy-client.crt",
        "pki/etcd/server.crt",
        "pki/etcd/peer.crt",
        "pki/etcd/healthcheck-client.crt",
        "pki/apiserver-etcd-client.crt",
    ] {
        let p = dir.path().join(rel);
        watched.push(Watched {
            path: p.display().to_string(),
            pems: vec![(p, None)],
        });
    }
    for name in [
        "admin.conf",
        "super-admin.conf",
        "kubelet.conf",
        "controller-manager.conf",
    ] {
        let p = dir.path().join(name);
        watched.push(Watched {
            path: p.display().to_string(),
            pems: kubeconfig_pems(&pems, &p),
        });
    }
    let broken = vec![scheduler.display().to_string()];
    textfile_round(&args, "2026-02-01T00:00:00Z", &watched, &broken);
    // The textfile also carries the findings the two faults cause.
    let f = findings_json(&args, "2026-02-01T00:00:00Z");
    let codes: BTreeSet<(String, String)> = f
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["code"].as_str().unwrap().to_string(),
                x["entry"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        codes.contains(&("kubeconfig-invalid".into(), "scheduler.conf".into())),
        "{codes:?}"
    );
}

#[test]
fn textfile_needs_an_existing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let args = kpki_tree(dir.path());
    let missing = dir.path().join("no-such-dir");
    let out = kpki(with(&["verify", "--textfile", s(&missing)], &args));
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-such-dir") && err.contains("not a directory"),
        "{err}"
    );
}

// ------------------------------------------------------------------ renew if due

fn t(days: i64) -> String {
    let t0 =
        time::OffsetDateTime::parse(T0, &time::format_description::well_known::Rfc3339).unwrap();
    (t0 + time::Duration::days(days))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// Files of the default tree per entry, relative to the kubeconfig dir.
const ENTRY_FILES: &[(&str, &[&str])] = &[
    ("ca", &["pki/ca.crt", "pki/ca.key"]),
    (
        "front-proxy-ca",
        &["pki/front-proxy-ca.crt", "pki/front-proxy-ca.key"],
    ),
    ("etcd-ca", &["pki/etcd/ca.crt", "pki/etcd/ca.key"]),
    ("apiserver", &["pki/apiserver.crt", "pki/apiserver.key"]),
    (
        "apiserver-kubelet-client",
        &[
            "pki/apiserver-kubelet-client.crt",
            "pki/apiserver-kubelet-client.key",
        ],
    ),
    (
        "front-proxy-client",
        &["pki/front-proxy-client.crt", "pki/front-proxy-client.key"],
    ),
    (
        "etcd-server",
        &["pki/etcd/server.crt", "pki/etcd/server.key"],
    ),
    ("etcd-peer", &["pki/etcd/peer.crt", "pki/etcd/peer.key"]),
    (
        "etcd-healthcheck-client",
        &[
            "pki/etcd/healthcheck-client.crt",
            "pki/etcd/healthcheck-client.key",
        ],
    ),
    (
        "apiserver-etcd-client",
        &[
            "pki/apiserver-etcd-client.crt",
            "pki/apiserver-etcd-client.key",
        ],
    ),
    ("sa", &["pki/sa.key", "pki/sa.pub"]),
    ("admin.conf", &["admin.conf"]),
    ("super-admin.conf", &["super-admin.conf"]),
    ("kubelet.conf", &["kubelet.conf"]),
    ("controller-manager.conf", &["controller-manager.conf"]),
    ("scheduler.conf", &["scheduler.conf"]),
];

/// The entries whose files (or backups of them) changed between two snapshots.
fn changed_entries(
    before: &BTreeMap<String, util::Node>,
    after: &BTreeMap<String, util::Node>,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for path in changed(before, after) {
        let (entry, _) = ENTRY_FILES
            .iter()
            .find(|(_, files)| {
                files
                    .iter()
                    .any(|f| path == *f || path.starts_with(&format!("{f}.bak-")))
            })
            .unwrap_or_else(|| panic!("unexpected change: {path}"));
        out.insert(entry.to_string());
    }
    out
}

/// notAfter of a certificate file or of a kubeconfig's client certificate, read by openssl.
fn openssl_end(dir: &Path, rel: &str) -> String {
    let p = dir.join(rel);
    let pem = if rel.ends_with(".conf") {
        write_file(dir, "scratch.pem", &kubeconfig_facts(&p).cert_pem)
    } else {
        p
    };
    let out = util::openssl(["x509", "-noout", "-enddate", "-in", s(&pem)]);
    out.trim().trim_start_matches("notAfter=").to_string()
}

fn renew_due(args: &[String], now: &str, extra: &[&str]) -> Output {
    let mut a = vec![
        "certs",
        "renew",
        "all",
        "--if-expiring-within",
        "30d",
        "--now",
        now,
    ];
    a.extend_from_slice(extra);
    kpki(with(&a, args))
}

/// The entries plain `certs renew all` renews (its dry run lists them).
fn renew_all_names(args: &[String]) -> BTreeSet<String> {
    let out = kpki(with(
        &["certs", "renew", "all", "--dry-run", "--now", T0],
        args,
    ));
    assert!(out.status.success(), "{}", show(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("would renew "))
        .map(|l| l.split([' ', ':']).next().unwrap().to_string())
        .collect()
}

#[test]
fn renew_if_expiring_within_changes_only_what_is_due_and_is_idempotent() {
    require("kubectl", "version", "kubernetes-client");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    std::fs::create_dir(&root).unwrap();
    let args = kpki_tree(&root);
    // apiserver and admin.conf renewed at T0+150d: they expire 150 days after the rest.
    let out = kpki(with(
        &[
            "certs",
            "renew",
            "apiserver",
            "admin.conf",
            "--now",
            &t(150),
        ],
        &args,
    ));
    assert!(out.status.success(), "{}", show(&out));

    // 340 days in, 25 days are left on everything but apiserver and admin.conf.
    let hooks = dir.path().join("hooks");
    std::fs::create_dir(&hooks).unwrap();
    let hook = format!("echo \"$KPKI_RENEWED\" > {}/ran", hooks.display());
    let before = snapshot(&root);
    let dry = renew_due(&args, &t(340), &["--dry-run", "--exec-after", &hook]);
    assert_eq!(dry.status.code(), Some(3), "{}", show(&dry));
    assert!(
        changed(&before, &snapshot(&root)).is_empty(),
        "--dry-run wrote"
    );
    assert!(!hooks.join("ran").exists(), "--exec-after ran in a dry run");

    let first = renew_due(&args, &t(340), &["--exec-after", &hook]);
    assert_eq!(first.status.code(), Some(3), "renewed: {}", show(&first));
    let after = snapshot(&root);
    // What `all` means is the spec's (`renew_all`); of that, all but the two renewed later.
    let due: BTreeSet<String> = renew_all_names(&args)
        .into_iter()
        .filter(|n| n != "apiserver" && n != "admin.conf")
        .collect();
    assert!(due.len() >= 9, "{due:?}");
    assert_eq!(changed_entries(&before, &after), due, "{}", show(&first));
    // Every due file was replaced, and kept as a backup.
    for (entry, files) in ENTRY_FILES {
        for f in *files {
            let replaced = before[*f].bytes != after[*f].bytes;
            assert_eq!(replaced, due.contains(*entry), "{f}");
            if due.contains(*entry) {
                assert!(
                    after.keys().any(|k| k.starts_with(&format!("{f}.bak-"))),
                    "no backup of {f}"
                );
            }
        }
    }
    // openssl: the renewed certificates run a year from the run's instant; the others kept theirs.
    for (rel, want) in [
        ("pki/etcd/server.crt", "Dec 21 12:00:00 2027 GMT"),
        ("scheduler.conf", "Dec 21 12:00:00 2027 GMT"),
        ("pki/apiserver.crt", "Jun 14 12:00:00 2027 GMT"),
        ("admin.conf", "Jun 14 12:00:00 2027 GMT"),
        ("pki/ca.crt", "Jan 13 12:00:00 2036 GMT"),
    ] {
        assert_eq!(openssl_end(&root, rel), want, "{rel}");
    }
    std::fs::remove_file(root.join("scratch.pem")).ok();
    let ran = std::fs::read_to_string(hooks.join("ran")).unwrap();
    let ran: BTreeSet<String> = ran.split_whitespace().map(str::to_string).collect();
    assert_eq!(ran, due, "--exec-after's $KPKI_RENEWED");
    std::fs::remove_file(hooks.join("ran")).unwrap();

    // Again, same instant: nothing due, nothing written, no hook.
    let after = snapshot(&root);
    let second = renew_due(&args, &t(340), &["--exec-after", &hook]);
    assert_eq!(
        second.status.code(),
        Some(0),
        "nothing due: {}",
        show(&second)
    );
    assert!(String::from_utf8_lossy(&second.stdout).contains("nothing renewed"));
    assert!(second.stderr.is_empty(), "{}", show(&second));
    assert!(changed(&after, &snapshot(&root)).is_empty());
    assert!(
        !hooks.join("ran").exists(),
        "--exec-after ran with nothing renewed"
    );
    let tt = util::touched(&after, &snapshot(&root));
    assert!(tt.is_empty(), "files rewritten: {tt:?}");

    // Named entries only: admin.conf is due at T0+500d, scheduler.conf (renewed above) is not.
    let before = snapshot(&root);
    let out = kpki(with(
        &[
            "certs",
            "renew",
            "admin.conf",
            "scheduler.conf",
            "--if-expiring-within",
            "720h",
            "--now",
            &t(500),
        ],
        &args,
    ));
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert_eq!(
        changed_entries(&before, &snapshot(&root)),
        ["admin.conf".to_string()].into()
    );
}

#[test]
fn renew_if_expiring_within_exit_codes() {
    let dir = tempfile::tempdir().unwrap();

    // A CA due: never renewed (exit 4); the expired leaves are renewed all the same.
    let a = dir.path().join("a");
    std::fs::create_dir(&a).unwrap();
    let args = kpki_tree(&a);
    let before = snapshot(&a);
    let out = renew_due(&args, "2036-01-03T12:00:00Z", &[]);
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rotate"), "{err}");
    let ch = changed_entries(&before, &snapshot(&a));
    for ca in ["ca", "front-proxy-ca", "etcd-ca", "sa"] {
        assert!(!ch.contains(ca), "{ca} changed");
    }
    assert!(
        ch.contains("apiserver") && ch.contains("admin.conf"),
        "{ch:?}"
    );

    // External front-proxy CA (no key): its client cannot be renewed here (exit 5), the rest is.
    let b = dir.path().join("b");
    std::fs::create_dir(&b).unwrap();
    let args = kpki_tree(&b);
    std::fs::remove_file(b.join("pki/front-proxy-ca.key")).unwrap();
    let before = snapshot(&b);
    let out = renew_due(&args, &t(340), &[]);
    assert_eq!(out.status.code(), Some(5), "{}", show(&out));
    let ch = changed_entries(&before, &snapshot(&b));
    assert!(!ch.contains("front-proxy-client"), "{ch:?}");
    assert!(ch.contains("apiserver"), "{ch:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("its CA is external"));

    // A missing certificate: nothing is due, nothing written, but an operator is needed (exit 5).
    let c = dir.path().join("c");
    std::fs::create_dir(&c).unwrap();
    let args = kpki_tree(&c);
    std::fs::remove_file(c.join("scheduler.conf")).unwrap();
    let before = snapshot(&c);
    let out = renew_due(&args, &t(10), &[]);
    assert_eq!(out.status.code(), Some(5), "{}", show(&out));
    assert!(changed(&before, &snapshot(&c)).is_empty());
    assert!(String::from_utf8_lossy(&out.stdout).contains("cannot tell: missing"));

    // Errors: exit 2 with one line naming the flag or name.
    let out = kpki(with(
        &["certs", "renew", "nope", "--if-expiring-within", "30d"],
        &args,
    ));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown certificate \"nope\""));
    let out = kpki(with(
        &["certs", "renew", "all", "--if-expiring-within", "30x"],
        &args,
    ));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: --if-expiring-within"));
    let out = kpki(with(
        &["certs", "renew", "all", "--exec-after", "true"],
        &args,
    ));
    assert_eq!(out.status.code(), Some(2), "--exec-after needs the window");
}

// ------------------------------------------------------------------ systemd, alert rules

fn contrib() -> PathBuf {
    util::workspace().join("contrib")
}

/// `Key=` values of a unit file (all occurrences).
fn unit_values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|l| l.trim().strip_prefix(&format!("{key}=")))
        .map(str::to_string)
        .collect()
}

fn systemd_unit_dir() -> PathBuf {
    ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.join("sysinit.target").exists())
        .expect("systemd's unit directory (Debian's systemd package; scripts/test.sh installs it)")
}

#[test]
fn systemd_units_verify_with_the_binary_at_execstart() {
    require("systemd-analyze", "--version", "Debian's systemd package");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    // systemd-analyze --root resolves ExecStart and the default dependencies inside the root.
    // (cp -a: the directory holds symlinks, some to /dev/null, which systemd reads as masks.)
    std::fs::create_dir_all(root.join("usr/lib/systemd")).unwrap();
    let out = run_cmd(
        Command::new("cp")
            .arg("-a")
            .arg(systemd_unit_dir())
            .arg(root.join("usr/lib/systemd/system")),
    );
    assert!(out.status.success(), "{}", show(&out));
    let units_dir = root.join("etc/systemd/system");
    std::fs::create_dir_all(&units_dir).unwrap();
    let mut units = Vec::new();
    for e in std::fs::read_dir(contrib().join("systemd")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".service") || name.ends_with(".timer") {
            std::fs::copy(&p, units_dir.join(&name)).unwrap();
            units.push(units_dir.join(&name));
        }
    }
    units.sort();
    assert_eq!(units.len(), 4, "{units:?}");
    // Documentation=man:kpki-...(1): the pages `kpki man --out-dir` writes.
    let man = root.join("usr/local/share/man");
    let out = kpki(["man", "--out-dir", s(&man.join("man1"))]);
    assert!(out.status.success(), "{}", show(&out));
    let analyze = || {
        let mut c = Command::new("systemd-analyze");
        c.arg("verify")
            .arg(format!("--root={}", root.display()))
            .args(&units)
            .env("MANPATH", &man);
        run_cmd(&mut c)
    };

    // Every ExecStart runs /usr/local/bin/kpki; without it the check must fail.
    let mut execs = Vec::new();
    for u in &units {
        let text = std::fs::read_to_string(u).unwrap();
        for e in unit_values(&text, "ExecStart") {
            assert!(
                e.starts_with("/usr/local/bin/kpki "),
                "{}: {e}",
                u.display()
            );
            execs.push((u.clone(), text.clone(), e));
        }
    }
    assert_eq!(execs.len(), 2);
    let out = analyze();
    assert!(
        !out.status.success(),
        "verify passed without the binary: {}",
        show(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/usr/local/bin/kpki is not executable"),
        "{}",
        show(&out)
    );
    let bin = root.join("usr/local/bin/kpki");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy(KPKI, &bin).unwrap();
    set_mode(&bin, 0o755);
    let out = analyze();
    assert!(out.status.success(), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("kpki"),
        "warnings about the kpki units: {err}"
    );

    // The ExecStart command lines, run for real against a tree with certificates due: every
    // variable they use has a default, every flag exists, the exit code is a success for systemd.
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    let inputs = kpki_tree(&tree);
    let textfiles = dir.path().join("textfiles");
    std::fs::create_dir(&textfiles).unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    for m in [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ] {
        std::fs::write(manifests.join(format!("{m}.yaml")), format!("name: {m}\n")).unwrap();
    }
    let manifests_before = snapshot(&manifests);
    for (unit, text, exec) in &execs {
        let env: BTreeMap<String, String> = unit_values(text, "Environment")
            .iter()
            .map(|v| {
                let v = v.trim_matches('"');
                let (k, val) = v.split_once('=').unwrap();
                (k.to_string(), val.to_string())
            })
            .collect();
        let mut argv: Vec<String> = Vec::new();
        for w in exec.split_whitespace() {
            if let Some(var) = w
                .strip_prefix("${")
                .and_then(|v| v.strip_suffix('}'))
                .or_else(|| w.strip_prefix('$'))
            {
                assert!(
                    env.contains_key(var),
                    "{}: ${var} has no default",
                    unit.display()
                );
                if var == "KPKI_INPUTS" {
                    argv.extend(inputs.iter().cloned());
                } else {
                    argv.push(env[var].clone());
                }
                continue;
            }
            argv.push(match w {
                "/usr/local/bin/kpki" => KPKI.to_string(),
                "/var/lib/prometheus/node-exporter" => textfiles.display().to_string(),
                "/usr/local/libexec/kpki/restart-control-plane" => contrib()
                    .join("systemd/restart-control-plane")
                    .display()
                    .to_string(),
                other => other.to_string(),
            });
        }
        argv.extend(["--now".to_string(), t(340)]);
        let out = run_cmd(
            Command::new(&argv[0])
                .args(&argv[1..])
                .env("KPKI_MANIFESTS_DIR", &manifests)
                .env("KPKI_MANIFEST_PAUSE", "0")
                .env("KPKI_SYSTEMCTL", "echo systemctl"),
        );
        let code = out.status.code().unwrap();
        let ok: Vec<i32> = std::iter::once(0)
            .chain(unit_values(text, "SuccessExitStatus").iter().flat_map(|v| {
                v.split_whitespace()
                    .map(|c| c.parse::<i32>().unwrap())
                    .collect::<Vec<_>>()
            }))
            .collect();
        assert!(
            ok.contains(&code),
            "{}: exit {code} is a failure for systemd: {}",
            unit.display(),
            show(&out)
        );
        if unit.ends_with("kpki-renew.service") {
            assert_eq!(code, 3, "{}", show(&out));
            let stdout = String::from_utf8_lossy(&out.stdout);
            for m in [
                "etcd",
                "kube-apiserver",
                "kube-controller-manager",
                "kube-scheduler",
            ] {
                assert!(
                    stdout.contains(&format!("restarting static Pod {m}")),
                    "{stdout}"
                );
            }
            // The kubelet is restarted exactly when kubelet.conf was renewed.
            let renewed = stdout
                .lines()
                .find_map(|l| l.strip_prefix("renewed "))
                .unwrap_or_default();
            assert_eq!(
                stdout.contains("systemctl restart kubelet"),
                renewed.contains("kubelet.conf"),
                "{stdout}"
            );
        } else {
            assert!(textfiles.join("kpki.prom").exists());
        }
    }
    // The hook put every manifest back as it was, and left no stash behind.
    assert!(changed(&manifests_before, &snapshot(&manifests)).is_empty());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("manifests.kpki."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn alert_rules_fire_when_they_should() {
    require("promtool", "--version", "Debian's prometheus package");
    let dir = contrib().join("prometheus");
    let out = run_cmd(
        Command::new("promtool")
            .args(["check", "rules", "kpki-alerts.yml"])
            .current_dir(&dir),
    );
    assert!(out.status.success(), "{}", show(&out));
    let out = run_cmd(
        Command::new("promtool")
            .args(["test", "rules", "kpki-alerts.test.yml"])
            .current_dir(&dir),
    );
    assert!(out.status.success(), "{}", show(&out));
}

// ------------------------------------------------------------------ completions, man

#[test]
fn bash_completion_loads_and_completes() {
    require("bash", "--version", "bash");
    let dir = tempfile::tempdir().unwrap();
    let out = kpki(["completions", "bash"]);
    assert!(out.status.success(), "{}", show(&out));
    let file = write_file(dir.path(), "kpki.bash", &out.stdout);
    let complete = |line: &str| -> Vec<String> {
        let words: Vec<&str> = line.split(' ').collect();
        let prog = format!(
            "source {f} || exit 9\ncomplete -p kpki || exit 8\nCOMP_WORDS=({w})\nCOMP_CWORD={c}\nCOMP_LINE='{line}'\nCOMP_POINT={p}\n_kpki kpki '{last}' '{prev}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
            f = file.display(),
            w = words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" "),
            c = words.len() - 1,
            p = line.len(),
            last = words[words.len() - 1],
            prev = words[words.len().saturating_sub(2)],
        );
        let out = run_cmd(Command::new("bash").args(["--norc", "--noprofile", "-c", &prog]));
        assert!(out.status.success(), "{}", show(&out));
        let text = String::from_utf8(out.stdout).unwrap();
        let mut lines = text.lines();
        let first = lines.next().unwrap_or_default().to_string();
        assert!(
            first.starts_with("complete ") && first.ends_with(" kpki"),
            "{first}"
        );
        lines.map(str::to_string).collect()
    };
    let got = complete("kpki ver");
    assert_eq!(got, ["verify"], "{got:?}");
    let got = complete("kpki certs renew --if-exp");
    assert_eq!(got, ["--if-expiring-within"], "{got:?}");
    let got = complete("kpki tr");
    assert_eq!(got, ["tree"], "{got:?}");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = kpki(["completions", shell]);
        assert!(
            out.status.success() && out.stdout.len() > 1000,
            "{shell}: {}",
            show(&out)
        );
    }
    let out = kpki(["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn man_page_renders() {
    require("man", "--version", "man-db");
    require("groff", "--version", "groff-base");
    let dir = tempfile::tempdir().unwrap();
    let out = kpki(["man"]);
    assert!(out.status.success(), "{}", show(&out));
    let page = write_file(dir.path(), "kpki.1", &out.stdout);
    let out = run_cmd(
        Command::new("man")
            .args(["-l", s(&page)])
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .env("MANWIDTH", "100")
            .env("MAN_KEEP_FORMATTING", "0"),
    );
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    // Overstrike (bold) sequences aside, the page names the command and its subcommands.
    let plain: String = {
        let b = text.as_bytes();
        let mut o = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if i + 1 < b.len() && b[i + 1] == 8 {
                i += 2;
                continue;
            }
            o.push(b[i]);
            i += 1;
        }
        String::from_utf8_lossy(&o).into_owned()
    };
    for want in [
        "NAME",
        "kpki",
        "SYNOPSIS",
        "SUBCOMMANDS",
        "verify",
        "tree",
        "completions",
        "man",
    ] {
        assert!(plain.contains(want), "{want} missing from:\n{plain}");
    }
    // groff's own warnings (-ww) on every page.
    let pages = dir.path().join("pages");
    let out = kpki(["man", "--out-dir", s(&pages)]);
    assert!(out.status.success(), "{}", show(&out));
    let written: Vec<PathBuf> = std::fs::read_dir(&pages)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        written.iter().any(|p| p.ends_with("kpki-certs-renew.1")),
        "{written:?}"
    );
    for p in &written {
        let out = run_cmd(Command::new("groff").args(["-man", "-Tutf8", "-ww", "-z", s(p)]));
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{}: {}",
            p.display(),
            show(&out)
        );
    }
}

// ------------------------------------------------------------------ tree, html

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

fn tree_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.trim_end().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn tree_is_coloured_in_a_terminal_and_plain_when_piped() {
    let _serial = serial(); // a tmux session polled against a deadline
    require("tmux", "-V", "tmux");
    let dir = tempfile::tempdir().unwrap();
    let (_, args) = fixture_tree(dir.path());
    // 18 days before the leaves expire: warnings (yellow), super-admin.conf missing (red), CAs
    // fine (green).
    let now = "2027-11-10T09:00:00Z";
    let mut a = vec!["tree", "--now", now];
    a.extend(args.iter().map(String::as_str));
    let piped = kpki(&a);
    assert!(piped.status.success(), "{}", show(&piped));
    let plain = String::from_utf8(piped.stdout).unwrap();
    assert!(
        !plain.contains('\x1b'),
        "escape codes in piped output:\n{plain}"
    );
    let findings = findings_json(&args, now);
    let lines = tree_lines(&plain);
    for name in util::ENTRY_NAMES {
        let name = if *name == "ca" || name.ends_with("-ca") {
            format!("{name} (CA)")
        } else {
            name.to_string()
        };
        assert!(
            lines.iter().any(|l| l
                .trim_start_matches(['│', '├', '└', '─', ' '])
                .starts_with(&name)),
            "{name} not drawn:\n{plain}"
        );
    }
    for f in findings.as_array().unwrap() {
        let line = format!(
            "{} {}: {}",
            f["severity"].as_str().unwrap(),
            f["code"].as_str().unwrap(),
            f["message"].as_str().unwrap()
        );
        assert!(plain.contains(&line), "finding not shown: {line}\n{plain}");
    }
    // The hierarchy: leaves under their CA.
    let pos = |needle: &str| plain.find(needle).unwrap_or_else(|| panic!("{needle}"));
    assert!(pos("etcd-ca (CA)") < pos("└─ apiserver-etcd-client"));
    assert!(pos("front-proxy-ca (CA)") < pos("└─ front-proxy-client"));
    assert!(pos("super-admin.conf          missing") > pos("ca (CA)"));

    // In a terminal: the same picture, in colour.
    let socket = format!("kpki-test-{}", std::process::id());
    let quoted: Vec<String> = a.iter().map(|w| format!("'{w}'")).collect();
    let cmd = format!(
        "env -u NO_COLOR TERM=xterm-256color '{KPKI}' {}; echo __KPKI_DONE__; sleep 60",
        quoted.join(" ")
    );
    let tmux = |args: &[&str]| run_cmd(Command::new("tmux").arg("-L").arg(&socket).args(args));
    let out = tmux(&[
        "new-session",
        "-d",
        "-x",
        "220",
        "-y",
        "90",
        "-s",
        "t",
        &cmd,
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let start = Instant::now();
    let captured = loop {
        let out = tmux(&["capture-pane", "-p", "-e", "-t", "t", "-S", "0", "-E", "89"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains("__KPKI_DONE__") {
            break text;
        }
        if start.elapsed() > Duration::from_secs(30) {
            tmux(&["kill-server"]);
            panic!("kpki tree did not finish in tmux:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    tmux(&["kill-server"]);
    let captured = captured.split("__KPKI_DONE__").next().unwrap();
    for sgr in ["32m", "33m", "31m"] {
        assert!(
            captured.contains(&format!("\x1b[{sgr}")) || captured.contains(&format!(";{sgr}")),
            "no {sgr:?} colour in the pane:\n{captured:?}"
        );
    }
    let coloured = tree_lines(&strip_ansi(captured));
    // The pane shows the command line first when the shell echoes it; keep from the header on.
    let from = coloured
        .iter()
        .position(|l| l == &lines[0])
        .unwrap_or_else(|| panic!("header not in pane:\n{coloured:#?}"));
    assert_eq!(
        &coloured[from..from + lines.len()],
        &lines[..],
        "pane and pipe differ"
    );
}

#[test]
fn html_report_renders_in_chromium_with_every_entry_and_finding() {
    require("chromium", "--version", "Debian's chromium package");
    let dir = tempfile::tempdir().unwrap();
    let (_, args) = fixture_tree(dir.path());
    let now = "2027-11-10T09:00:00Z";
    let out = kpki(with(&["verify", "-o", "html", "--now", now], &args));
    assert_eq!(
        out.status.code(),
        Some(1),
        "verify's exit code is kept: {}",
        show(&out)
    );
    let html = String::from_utf8(out.stdout).unwrap();
    // Self-contained: nothing to fetch.
    for bad in ["src=", "href=", "url(", "@import", "<script", "<link"] {
        assert!(!html.contains(bad), "{bad} in the report");
    }
    let report = write_file(dir.path(), "report.html", html.as_bytes());
    let chromium = |extra: &[&str]| {
        let profile = tempfile::tempdir().unwrap();
        let mut c = Command::new("chromium");
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", report.display()));
        run_cmd(&mut c)
    };
    let png = dir.path().join("report.png");
    let out = chromium(&[
        "--window-size=1400,2400",
        &format!("--screenshot={}", png.display()),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let shot = std::fs::read(&png).unwrap();
    assert!(
        shot.starts_with(b"\x89PNG\r\n\x1a\n") && shot.len() > 50_000,
        "{} bytes",
        shot.len()
    );
    // Kept for people: target/operate/report.png.
    let keep = util::workspace().join("target/operate");
    std::fs::create_dir_all(&keep).unwrap();
    std::fs::copy(&png, keep.join("report.png")).unwrap();

    let out = chromium(&["--dump-dom"]);
    assert!(out.status.success(), "{}", show(&out));
    let dom_file = write_file(dir.path(), "dom.html", &out.stdout);
    let dom = python_json("dom.py", &[s(&dom_file)]);
    assert_eq!(
        dom["sections"],
        serde_json::json!(["tree", "findings", "timeline"])
    );
    assert_eq!(
        dom["urls"],
        serde_json::json!([]),
        "URL attributes in the DOM"
    );
    let items: BTreeSet<&str> = dom["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["entry"].as_str().unwrap())
        .collect();
    let entries: BTreeSet<&str> = util::ENTRY_NAMES.iter().copied().collect();
    assert_eq!(items, entries, "hierarchy items");
    // Every certificate that exists is on the timeline (not sa, not the missing super-admin.conf).
    let timeline: BTreeSet<&str> = dom["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap())
        .collect();
    let mut want = entries.clone();
    want.remove("sa");
    want.remove("super-admin.conf");
    assert_eq!(timeline, want, "timeline rows");
    let findings = findings_json(&args, now);
    let mut want_rows: Vec<Vec<String>> = findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            ["severity", "code", "entry", "path"]
                .iter()
                .map(|k| f[*k].as_str().unwrap().to_string())
                .collect()
        })
        .collect();
    let mut rows: Vec<Vec<String>> = serde_json::from_value(dom["rows"].clone()).unwrap();
    want_rows.sort();
    rows.sort();
    assert!(!rows.is_empty());
    assert_eq!(rows, want_rows, "findings table");
    let mut inline: Vec<String> = serde_json::from_value(dom["inline"].clone()).unwrap();
    let mut want_inline: Vec<String> = want_rows.iter().map(|r| r[1].clone()).collect();
    inline.sort();
    want_inline.sort();
    assert_eq!(inline, want_inline, "findings shown in the hierarchy");
    // The missing kubeconfig is drawn as an error, the CAs as fine.
    let class_of = |e: &str| {
        dom["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["entry"] == e)
            .map(|i| i["class"].clone())
            .unwrap()
    };
    assert!(class_of("super-admin.conf").to_string().contains("h-error"));
    assert!(class_of("etcd-ca").to_string().contains("h-ok"));
    assert!(class_of("apiserver").to_string().contains("h-warning"));
}
