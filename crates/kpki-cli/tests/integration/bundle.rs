//! The control-plane join bundle (issue 15): `kpki certs upload-bundle` / `download-bundle`,
//! byte-compatible with kubeadm's `kube-system/kubeadm-certs` Secret, and `kpki init --join`.
//!
//! Everything kpki writes is read back by something else: kubeadm's own capture
//! (`fixtures/kubeadm-v1.28.4-rsa/upload-certs`), Python's `cryptography` AESGCM and PyYAML,
//! openssl, and a real two-member etcd cluster whose members run on two kpki trees.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::util::etcd::{require_etcd, Etcd};
use crate::util::*;

/// The instant kubeadm made the capture: the token then expires at 03:14:24Z, as captured.
const CAPTURE_NOW: &str = "2026-12-02T01:14:24Z";
const CAPTURE_EXPIRATION: &str = "2026-12-02T03:14:24Z";

/// kubeadm's data keys (copycerts.go) and where each file lives under the cert dir.
const KUBEADM_FILES: &[(&str, &str)] = &[
    ("ca.crt", "ca.crt"),
    ("ca.key", "ca.key"),
    ("front-proxy-ca.crt", "front-proxy-ca.crt"),
    ("front-proxy-ca.key", "front-proxy-ca.key"),
    ("etcd-ca.crt", "etcd/ca.crt"),
    ("etcd-ca.key", "etcd/ca.key"),
    ("sa.key", "sa.key"),
    ("sa.pub", "sa.pub"),
];

fn capture() -> PathBuf {
    fixture().join("upload-certs")
}

fn capture_key() -> String {
    fs::read_to_string(capture().join("certificate-key.txt"))
        .unwrap()
        .trim()
        .to_string()
}

/// Runs the independent checker (Python `cryptography` + PyYAML) on upload-bundle's output.
fn python_check(cfg: serde_json::Value) -> String {
    let out = tool("python3", ["-c", PY_CHECK, &cfg.to_string()], None);
    assert!(
        out.status.success(),
        "python check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Parses upload-bundle's output with PyYAML / json, compares every object with kubeadm's
/// capture (apiVersion, kind, metadata fields minus what the server assigns, rules, roleRef,
/// subjects, token data), and decrypts every value of the bundle with AESGCM, comparing it with
/// the file on disk the test names. Nonces must all differ.
const PY_CHECK: &str = r#"
import base64, json, re, sys, yaml
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

cfg = json.loads(sys.argv[1])
text = open(cfg['bundle']).read()
doc = json.loads(text) if cfg['format'] == 'json' else yaml.safe_load(text)
assert doc['apiVersion'] == 'v1' and doc['kind'] == 'List', sorted(doc)
items = doc['items']
cap = cfg['capture']
cap_token = yaml.safe_load(open(cap + '/bootstrap-token.secret.yaml'))
cap_bundle = yaml.safe_load(open(cap + '/kubeadm-certs.secret.yaml'))
cap_rbac = yaml.safe_load(open(cap + '/rbac.yaml'))['items']
SERVER = {'creationTimestamp', 'resourceVersion', 'uid'}

def same_shape(ours, theirs, drop_meta=()):
    assert set(ours) == set(theirs), (ours.get('kind'), sorted(ours), sorted(theirs))
    for f in ('apiVersion', 'kind', 'type'):
        assert ours.get(f) == theirs.get(f), (f, ours.get(f), theirs.get(f))
    want = set(theirs['metadata']) - SERVER - set(drop_meta)
    assert set(ours['metadata']) == want, (ours['metadata'].get('name'), sorted(ours['metadata']), sorted(want))
    assert ours['metadata']['namespace'] == theirs['metadata']['namespace']

by = {}
for it in items:
    by.setdefault(it['kind'], []).append(it)
owner = cfg.get('owner')
assert len(items) == (3 if owner else 4), [i['kind'] for i in items]
role, = by['Role']
rb, = by['RoleBinding']
for ours, theirs in ((role, cap_rbac[0]), (rb, cap_rbac[1])):
    same_shape(ours, theirs)
    assert ours['metadata']['name'] == theirs['metadata']['name']
assert role['rules'] == cap_rbac[0]['rules'], role['rules']
assert rb['roleRef'] == cap_rbac[1]['roleRef'] and rb['subjects'] == cap_rbac[1]['subjects']

secrets = {x['metadata']['name']: x for x in by['Secret']}
tokens = [n for n in secrets if n.startswith('bootstrap-token-')]
if owner:
    assert tokens == [], tokens
else:
    name, = tokens
    tok = secrets[name]
    same_shape(tok, cap_token)
    d = {k: base64.b64decode(v).decode() for k, v in tok['data'].items()}
    assert set(d) == set(cap_token['data']), sorted(d)
    assert d['description'] == base64.b64decode(cap_token['data']['description']).decode()
    assert re.fullmatch('[a-z0-9]{6}', d['token-id']) and name == 'bootstrap-token-' + d['token-id']
    assert re.fullmatch('[a-z0-9]{16}', d['token-secret'])
    if cfg.get('expiration'):
        assert d['expiration'] == cfg['expiration'], d['expiration']
    else:
        assert re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ', d['expiration']), d['expiration']
    print('token', d['token-id'])

b = secrets['kubeadm-certs']
same_shape(b, cap_bundle, drop_meta=() if owner else ('ownerReferences',))
if owner:
    refs = b['metadata']['ownerReferences']
    theirs = cap_bundle['metadata']['ownerReferences']
    assert refs == [dict(theirs[0], name='bootstrap-token-' + owner['token_id'], uid=owner['uid'])], refs
if cfg.get('same_keys_as_capture'):
    assert set(b['data']) == set(cap_bundle['data']), sorted(b['data'])
assert set(b['data']) == set(cfg['files']), (sorted(b['data']), sorted(cfg['files']))
aes = AESGCM(bytes.fromhex(cfg['key']))
nonces = set()
for k, v in b['data'].items():
    path = cfg['files'][k]
    if path is None:
        assert v == '', k
        continue
    raw = base64.b64decode(v)
    nonces.add(raw[:12])
    assert aes.decrypt(raw[:12], raw[12:], None) == open(path, 'rb').read(), k
assert len(nonces) == sum(1 for p in cfg['files'].values() if p is not None), 'a nonce was reused'
print('decrypted', len(nonces))
"#;

fn files_map(pki: &Path) -> serde_json::Value {
    let m: serde_json::Map<String, serde_json::Value> = KUBEADM_FILES
        .iter()
        .map(|(k, rel)| (k.to_string(), serde_json::Value::from(s(&pki.join(rel)))))
        .collect();
    serde_json::Value::Object(m)
}

// ------------------------------------------------------------------ download: kubeadm's bundle

#[test]
fn download_bundle_gives_kubeadms_files_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = tmp.path().join("node/pki");
    let key = capture_key();
    let secret = capture().join("kubeadm-certs.secret.yaml");
    let out = kpki_ok([
        "certs",
        "download-bundle",
        "--certificate-key",
        &key,
        "--from",
        s(&secret),
        "--cert-dir",
        s(&pki),
    ]);
    assert_eq!(out.matches("[download-certs] wrote ").count(), 8, "{out}");
    let want: std::collections::BTreeSet<String> = KUBEADM_FILES
        .iter()
        .map(|(_, rel)| rel.to_string())
        .collect();
    assert_eq!(files(&pki), want);
    for (_, rel) in KUBEADM_FILES {
        assert_eq!(
            fs::read(pki.join(rel)).unwrap(),
            fs::read(fixture().join("pki").join(rel)).unwrap(),
            "{rel}"
        );
        // kubeadm's modes (permissions.txt): keys and sa.pub 0600, certificates 0644.
        let want_mode = if rel.ends_with(".crt") { 0o644 } else { 0o600 };
        assert_eq!(mode(&pki.join(rel)), want_mode, "{rel}");
    }
    assert_eq!(mode(&pki.join("etcd")), 0o755);

    // Again, as `kubectl get -o json` prints it (converted by Python), key and Secret on stdin
    // and from a file: everything is already there and identical, so nothing is touched.
    let json = tool_ok(
        "python3",
        [
            "-c",
            "import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
            s(&secret),
        ],
        None,
    );
    let key_file = tmp.path().join("key.txt");
    fs::write(&key_file, format!("{key}\n")).unwrap();
    let before = snapshot(tmp.path());
    let out = Kpki::new([
        "certs",
        "download-bundle",
        "--certificate-key-file",
        s(&key_file),
        "--from",
        "-",
        "--cert-dir",
        s(&pki),
    ])
    .run_stdin(&json);
    let text = stdout(&ok(out, "download-bundle from JSON on stdin"));
    assert_eq!(text.matches("(identical)").count(), 8, "{text}");
    let after = snapshot(tmp.path());
    assert!(changed(&before, &after).is_empty());
    assert!(
        touched(&before, &after).is_empty(),
        "{:?}",
        touched(&before, &after)
    );

    // The key on stdin, the Secret from the file.
    let out = Kpki::new([
        "certs",
        "download-bundle",
        "--certificate-key-file",
        "-",
        "--from",
        s(&secret),
        "--cert-dir",
        s(&tmp.path().join("other/pki")),
    ])
    .run_stdin(key.as_bytes());
    ok(out, "download-bundle with the key on stdin");
    assert_eq!(files(&tmp.path().join("other/pki")), want);

    // Uploading the restored tree again, owned by the captured token, gives kubeadm's Secret but
    // for the nonces: same fields and values once the server's are dropped, every value of the
    // same length, each decrypting (with the same key) to the same file.
    let ours = tmp.path().join("again.yaml");
    let yaml = kpki_ok([
        "certs",
        "upload-bundle",
        "--cert-dir",
        s(&pki),
        "--certificate-key",
        &key,
        "--token-id",
        "f1ggk1",
        "--owner-uid",
        "9e689798-2d65-4481-976d-706e7376c40c",
    ]);
    fs::write(&ours, yaml).unwrap();
    let report = String::from_utf8(tool_ok(
        "python3",
        ["-c", PY_SAME_BUT_NONCES, s(&ours), s(&secret), &key],
        None,
    ))
    .unwrap();
    assert_eq!(report.trim(), "same but nonces: 8");
}

/// kpki's Secret (argv[1], first item of its List) against kubeadm's (argv[2]).
const PY_SAME_BUT_NONCES: &str = r#"
import base64, sys, yaml
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
ours = yaml.safe_load(open(sys.argv[1]))['items'][0]
theirs = yaml.safe_load(open(sys.argv[2]))
for k in ('creationTimestamp', 'resourceVersion', 'uid'):
    theirs['metadata'].pop(k)
aes = AESGCM(bytes.fromhex(sys.argv[3]))
a, b = ours.pop('data'), theirs.pop('data')
assert ours == theirs, (ours, theirs)
assert set(a) == set(b)
for k in a:
    x, y = base64.b64decode(a[k]), base64.b64decode(b[k])
    assert len(x) == len(y) and x[:12] != y[:12], k
    assert aes.decrypt(x[:12], x[12:], None) == aes.decrypt(y[:12], y[12:], None), k
print('same but nonces:', len(a))
"#;

// ------------------------------------------------------------------ upload: what kubeadm makes

#[test]
fn upload_bundle_decrypts_with_python_and_has_kubeadms_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = tmp.path().join("a/pki");
    Kpki::init(&pki).inputs(&[]).ok();
    let key = kpki_ok(["certs", "certificate-key"]).trim().to_string();
    let key_file = tmp.path().join("key.txt");
    fs::write(&key_file, &key).unwrap();

    // YAML, first step: all four objects, the bundle without an owner yet.
    let out = kpki([
        "--now",
        CAPTURE_NOW,
        "certs",
        "upload-bundle",
        "--cert-dir",
        s(&pki),
        "--certificate-key-file",
        s(&key_file),
    ]);
    let out = ok(out, "upload-bundle");
    let yaml = stdout(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains(&key),
        "a given key must not be printed: {stderr}"
    );
    assert!(stderr.contains("--owner-uid"), "{stderr}");
    let bundle = tmp.path().join("bundle.yaml");
    fs::write(&bundle, &yaml).unwrap();
    let report = python_check(serde_json::json!({
        "bundle": s(&bundle), "format": "yaml", "key": key, "capture": s(&capture()),
        "files": files_map(&pki), "expiration": CAPTURE_EXPIRATION, "same_keys_as_capture": true,
    }));
    assert!(report.contains("decrypted 8"), "{report}");
    let token_id = report
        .lines()
        .find_map(|l| l.strip_prefix("token "))
        .unwrap()
        .to_string();
    assert!(
        stderr.contains(&format!("--token-id {token_id}")),
        "{stderr}"
    );

    // JSON, second step: the token exists with a server uid; the bundle is tied to it.
    let uid = "9e689798-2d65-4481-976d-706e7376c40c";
    let json = kpki_ok([
        "certs",
        "upload-bundle",
        "--cert-dir",
        s(&pki),
        "--certificate-key",
        &key,
        "-o",
        "json",
        "--token-id",
        &token_id,
        "--owner-uid",
        uid,
    ]);
    let bundle_json = tmp.path().join("bundle.json");
    fs::write(&bundle_json, &json).unwrap();
    let report = python_check(serde_json::json!({
        "bundle": s(&bundle_json), "format": "json", "key": key, "capture": s(&capture()),
        "files": files_map(&pki), "owner": {"token_id": token_id, "uid": uid},
        "same_keys_as_capture": true,
    }));
    assert!(report.contains("decrypted 8"), "{report}");

    // No key given: a new one is printed on stderr (never on stdout) and decrypts the output.
    let out = kpki(["certs", "upload-bundle", "--cert-dir", s(&pki)]);
    let out = ok(out, "upload-bundle without a key");
    let yaml = stdout(&out);
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.contains("Using certificate key"))
        .unwrap();
    let new_key = lines[i + 1].trim();
    assert!(
        new_key.len() == 64 && new_key.bytes().all(|b| b.is_ascii_hexdigit()),
        "{stderr}"
    );
    assert!(!yaml.contains(new_key));
    fs::write(&bundle, &yaml).unwrap();
    let report = python_check(serde_json::json!({
        "bundle": s(&bundle), "format": "yaml", "key": new_key, "capture": s(&capture()),
        "files": files_map(&pki), "same_keys_as_capture": true,
    }));
    assert!(report.contains("decrypted 8"), "{report}");
}

// ------------------------------------------------------------------ a second control plane

#[test]
fn second_control_plane_joins_with_the_bundle() {
    let _serial = serial(); // ports, two etcd members, a start-up deadline
    require_etcd();
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a/pki");
    let b = tmp.path().join("b/pki");
    Kpki::init(&a).inputs(&[]).ok();
    let key = kpki_ok(["certs", "certificate-key"]).trim().to_string();
    let key_file = tmp.path().join("key.txt");
    fs::write(&key_file, &key).unwrap();
    let yaml = kpki_ok([
        "certs",
        "upload-bundle",
        "--cert-dir",
        s(&a),
        "--certificate-key-file",
        s(&key_file),
    ]);
    let bundle = tmp.path().join("bundle.yaml");
    fs::write(&bundle, yaml).unwrap();

    // Without the bundle, init --join refuses and writes nothing: it would make a new cluster.
    let c = tmp.path().join("c/pki");
    let (code, err) = kpki_fail([
        "init",
        "--join",
        "--cert-dir",
        s(&c),
        "--node-name",
        "cp-2",
        "--apiserver-advertise-address",
        "10.0.0.11",
    ]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("ca.crt") && err.contains("download-bundle"),
        "{err}"
    );
    assert!(!tmp.path().join("c").exists());

    kpki_ok([
        "certs",
        "download-bundle",
        "--cert-dir",
        s(&b),
        "--certificate-key-file",
        s(&key_file),
        "--from",
        s(&bundle),
    ]);
    let out = Kpki::init(&b)
        .inputs(&[
            "--node-name",
            "cp-2",
            "--apiserver-advertise-address",
            "10.0.0.11",
            "--join",
        ])
        .ok();
    assert!(out.contains("Using the existing \"ca\""), "{out}");

    // B's CAs and sa keys are A's, byte for byte; its leaves are its own.
    for (_, rel) in KUBEADM_FILES {
        assert_eq!(
            fs::read(a.join(rel)).unwrap(),
            fs::read(b.join(rel)).unwrap(),
            "{rel}"
        );
    }
    assert_ne!(
        fs::read(a.join("apiserver.key")).unwrap(),
        fs::read(b.join("apiserver.key")).unwrap()
    );
    let api = facts_der(&cert_der(&b.join("apiserver.crt")));
    let ips: Vec<String> = api.ips.iter().map(|i| i.to_string()).collect();
    assert!(ips.contains(&"10.0.0.11".to_string()) && !ips.contains(&"10.0.0.10".to_string()));
    assert!(api.dns_set().contains("cp-2") && !api.dns_set().contains("cp-1"));
    assert_verifies(&a.join("ca.crt"), &b.join("apiserver.crt"), "sslserver");
    assert_verifies(
        &a.join("etcd/ca.crt"),
        &b.join("etcd/peer.crt"),
        "sslclient",
    );

    // kubeadm join --control-plane's kubeconfigs: no super-admin.conf, no kubelet.conf.
    let kc: std::collections::BTreeSet<String> = fs::read_dir(tmp.path().join("b"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".conf"))
        .collect();
    assert_eq!(
        kc.into_iter().collect::<Vec<_>>(),
        ["admin.conf", "controller-manager.conf", "scheduler.conf"]
    );

    // verify --join passes on B (with B's inputs); plain verify expects the first node's files.
    let b_inputs = [
        "--node-name",
        "cp-2",
        "--apiserver-advertise-address",
        "10.0.0.11",
    ];
    let verify = |words: &[&str]| Kpki::new(words).cert_dir(&b).inputs(&b_inputs).run();
    ok(verify(&["verify", "--join"]), "verify --join on B");
    let out = verify(&["verify", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut missing: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error")
        .map(|f| {
            format!(
                "{}:{}",
                f["code"].as_str().unwrap(),
                f["entry"].as_str().unwrap()
            )
        })
        .collect();
    missing.sort();
    assert_eq!(
        missing,
        ["file-missing:kubelet.conf", "file-missing:super-admin.conf"]
    );

    // A real etcd cluster: member cp-1 on A's certificates, cp-2 on B's.
    let etcd = Etcd::start(tmp.path(), &[("cp-1", a.as_path()), ("cp-2", b.as_path())]);
    let out = etcd.ctl(&a, "etcd/healthcheck-client", 0, &["member", "list"]);
    let list = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        list.lines().filter(|l| l.contains("started")).count(),
        2,
        "{list}"
    );
    let out = etcd.ctl(
        &a,
        "apiserver-etcd-client",
        0,
        &["put", "joined", "by-bundle"],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "OK",
        "{}",
        etcd.logs()
    );
    let out = etcd.ctl(&b, "apiserver-etcd-client", 1, &["get", "joined"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "joined\nby-bundle\n");
    let out = etcd.ctl(&b, "apiserver-etcd-client", 1, &["put", "back", "from-b"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
    let out = etcd.ctl(&a, "apiserver-etcd-client", 0, &["get", "back"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "back\nfrom-b\n");
}

// ------------------------------------------------------------------ refusals

/// The capture with one data value replaced (`None`: the data key removed).
fn edited_capture(data_key: &str, value: Option<&str>) -> String {
    let text = fs::read_to_string(capture().join("kubeadm-certs.secret.yaml")).unwrap();
    let prefix = format!("  {data_key}: ");
    text.lines()
        .filter_map(|l| match l.strip_prefix(&prefix) {
            Some(_) => value.map(|v| format!("{prefix}{v}")),
            None => Some(l.to_string()),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn flipped_capture(data_key: &str) -> String {
    let text = fs::read_to_string(capture().join("kubeadm-certs.secret.yaml")).unwrap();
    let prefix = format!("  {data_key}: ");
    let value = text
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap()
        .to_string();
    let mut raw = B64.decode(&value).unwrap();
    raw[100] ^= 0x01;
    edited_capture(data_key, Some(&B64.encode(raw)))
}

#[test]
fn bad_bundles_exit_2_with_one_line_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = tmp.path().join("in");
    fs::create_dir(&inputs).unwrap();
    let work = tmp.path().join("work");
    fs::create_dir(&work).unwrap();
    // One target is empty, one holds another cluster's tree.
    let empty = work.join("empty/pki");
    let other = work.join("other/pki");
    Kpki::init(&other)
        .inputs(&[
            "--node-name",
            "cp-9",
            "--apiserver-advertise-address",
            "10.0.0.99",
        ])
        .ok();

    let key = capture_key();
    let wrong = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let good = capture().join("kubeadm-certs.secret.yaml");
    let write = |name: &str, text: &str| -> String {
        let p = inputs.join(name);
        fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let flipped = write("flipped.yaml", &flipped_capture("ca.key"));
    let empty_ca = write("empty-ca.yaml", &edited_capture("ca.crt", Some("\"\"")));
    let no_sa = write("no-sa.yaml", &edited_capture("sa.key", None));
    let truncated = write(
        "truncated.yaml",
        &edited_capture("sa.pub", Some("AAAAAAAA")),
    );
    let not_b64 = write("not-b64.yaml", &edited_capture("sa.pub", Some("'%%%'")));
    let renamed = write(
        "renamed.yaml",
        &fs::read_to_string(&good)
            .unwrap()
            .replace("name: kubeadm-certs", "name: other-certs"),
    );
    let wrong_ns = write(
        "wrong-ns.yaml",
        &fs::read_to_string(&good)
            .unwrap()
            .replace("namespace: kube-system", "namespace: default"),
    );
    let garbage = write("garbage.yaml", "this: [is not\n");
    let token = capture().join("bootstrap-token.secret.yaml");
    let rbac = capture().join("rbac.yaml");
    let short_key_file = write("short.key", &key[..62]);

    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        ("wrong key", vec!["--certificate-key".into(), wrong.into(), "--from".into(), s(&good).into()], "wrong certificate key"),
        ("flipped byte", vec!["--certificate-key".into(), key.clone(), "--from".into(), flipped], "kubeadm-certs/ca.key: does not decrypt"),
        ("empty required value", vec!["--certificate-key".into(), key.clone(), "--from".into(), empty_ca], "kubeadm-certs/ca.crt: is empty"),
        ("missing data key", vec!["--certificate-key".into(), key.clone(), "--from".into(), no_sa], "kubeadm-certs/sa.key: is missing"),
        ("truncated value", vec!["--certificate-key".into(), key.clone(), "--from".into(), truncated], "kubeadm-certs/sa.pub: is truncated"),
        ("not base64", vec!["--certificate-key".into(), key.clone(), "--from".into(), not_b64], "kubeadm-certs/sa.pub: is not valid base64"),
        ("bad hex", vec!["--certificate-key".into(), format!("zz{}", &key[2..]), "--from".into(), s(&good).into()], "--certificate-key: the certificate key contains characters that are not hexadecimal"),
        ("short hex", vec!["--certificate-key".into(), key[..63].to_string(), "--from".into(), s(&good).into()], "--certificate-key: a certificate key is 64 hexadecimal characters"),
        ("short key file", vec!["--certificate-key-file".into(), short_key_file, "--from".into(), s(&good).into()], "a certificate key is 64 hexadecimal characters"),
        ("renamed Secret", vec!["--certificate-key".into(), key.clone(), "--from".into(), renamed], "is not the join bundle: expected Secret kube-system/kubeadm-certs, found Secret kube-system/other-certs"),
        ("other namespace", vec!["--certificate-key".into(), key.clone(), "--from".into(), wrong_ns], "is Secret default/kubeadm-certs"),
        ("token Secret", vec!["--certificate-key".into(), key.clone(), "--from".into(), s(&token).into()], "found Secret kube-system/bootstrap-token-f1ggk1"),
        ("RBAC List", vec!["--certificate-key".into(), key.clone(), "--from".into(), s(&rbac).into()], "found Role kube-system/kubeadm:kubeadm-certs, RoleBinding kube-system/kubeadm:kubeadm-certs"),
        ("not YAML", vec!["--certificate-key".into(), key.clone(), "--from".into(), garbage], "not a Kubernetes object"),
        (
            "endless input",
            vec![
                "--certificate-key".into(),
                key.clone(),
                "--from".into(),
                "/dev/zero".into(),
            ],
            "/dev/zero: cannot read: larger than",
        ),
        ("no key", vec!["--from".into(), s(&good).into()], "--certificate-key or --certificate-key-file is required"),
    ];
    let secret_text = fs::read_to_string(&good).unwrap();
    for target in [&empty, &other] {
        for (what, args, want) in &cases {
            let before = snapshot(&work);
            let mut all: Vec<String> = vec![
                "certs".into(),
                "download-bundle".into(),
                "--cert-dir".into(),
                s(target).into(),
            ];
            all.extend(args.iter().cloned());
            let (code, err) = kpki_fail(&all);
            assert_eq!(code, 2, "{what}: {err}");
            assert_eq!(err.lines().count(), 1, "{what}: {err}");
            assert!(err.starts_with("error: "), "{what}: {err}");
            assert!(err.contains(want), "{what}: want {want:?} in {err}");
            // Neither the key nor any plaintext nor the ciphertext is echoed.
            assert!(
                !err.contains(&key[8..40]) && !err.contains(&wrong[8..40]),
                "{what}: {err}"
            );
            assert!(!err.contains("BEGIN"), "{what}: {err}");
            for line in secret_text.lines().filter(|l| l.len() > 60) {
                assert!(!err.contains(&line[20..60]), "{what}: {err}");
            }
            let after = snapshot(&work);
            assert!(
                changed(&before, &after).is_empty(),
                "{what}: {:?}",
                changed(&before, &after)
            );
            assert!(touched(&before, &after).is_empty(), "{what}");
        }
    }
    assert!(!work.join("empty").exists());

    // A good bundle into another cluster's tree: its CA key differs, so nothing is written.
    let before = snapshot(&work);
    let (code, err) = kpki_fail([
        "certs",
        "download-bundle",
        "--cert-dir",
        s(&other),
        "--certificate-key",
        &key,
        "--from",
        s(&good),
    ]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("ca.key") && err.contains("never replaces a CA key"),
        "{err}"
    );
    assert!(changed(&before, &snapshot(&work)).is_empty());

    // Bad owner flags are refused before anything is read.
    let (code, err) = kpki_fail([
        "certs",
        "upload-bundle",
        "--cert-dir",
        s(&other),
        "--token-id",
        "abc",
        "--owner-uid",
        "9e689798-2d65-4481-976d-706e7376c40c",
    ]);
    assert_eq!((code, err.lines().count()), (2, 1), "{err}");
    assert!(err.contains("--token-id"), "{err}");
    let (code, err) = kpki_fail([
        "certs",
        "upload-bundle",
        "--cert-dir",
        s(&other),
        "--owner-uid",
        "x",
    ]);
    assert_eq!((code, err.lines().count()), (2, 1), "{err}");
}

// ------------------------------------------------------------------ external etcd

#[test]
fn external_etcd_files_travel_from_and_to_their_config_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src/pki");
    Kpki::init(&src)
        .inputs(&[
            "--node-name",
            "etcd-0",
            "--apiserver-advertise-address",
            "10.0.0.20",
        ])
        .ok();
    // The "external etcd" client files live outside the cert dir, as kubeadm configs name them.
    let ext_a = tmp.path().join("a-etcd");
    fs::create_dir(&ext_a).unwrap();
    for (from, to) in [
        ("etcd/ca.crt", "ca.pem"),
        ("apiserver-etcd-client.crt", "client.pem"),
        ("apiserver-etcd-client.key", "client-key.pem"),
    ] {
        fs::copy(src.join(from), ext_a.join(to)).unwrap();
    }
    let config = |pki: &Path, ext: &Path, key_file: bool| -> PathBuf {
        let text = format!(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\ncertificatesDir: {}\netcd:\n  external:\n    endpoints: [https://10.0.0.20:2379]\n    caFile: {}\n    certFile: {}\n{}",
            pki.display(),
            ext.join("ca.pem").display(),
            ext.join("client.pem").display(),
            if key_file {
                format!("    keyFile: {}\n", ext.join("client-key.pem").display())
            } else {
                // kubeadm's validation wants both or neither: name a file that is not there.
                format!("    keyFile: {}\n", ext.join("absent-key.pem").display())
            }
        );
        let p = tmp.path().join(format!(
            "{}-{key_file}.yaml",
            ext.file_name().unwrap().to_string_lossy()
        ));
        fs::write(&p, text).unwrap();
        p
    };
    let a = tmp.path().join("a/pki");
    let cfg_a = config(&a, &ext_a, true);
    let a_kubeconfigs = tmp.path().join("a");
    kpki_ok([
        "init",
        "--config",
        s(&cfg_a),
        // certificatesDir does not move the kubeconfigs (kubeadm writes them to /etc/kubernetes)
        "--kubeconfig-dir",
        s(&a_kubeconfigs),
        "--node-name",
        "cp-1",
        "--apiserver-advertise-address",
        "10.0.0.10",
        "--encryption-algorithm",
        "ECDSA-P256",
    ]);
    assert!(!a.join("etcd").exists());
    let key = kpki_ok(["certs", "certificate-key"]).trim().to_string();
    let yaml = kpki_ok([
        "certs",
        "upload-bundle",
        "--config",
        s(&cfg_a),
        "--certificate-key",
        &key,
    ]);
    let bundle = tmp.path().join("bundle.yaml");
    fs::write(&bundle, &yaml).unwrap();

    let mut files: BTreeMap<String, Option<String>> = KUBEADM_FILES
        .iter()
        .filter(|(k, _)| !k.starts_with("etcd-ca"))
        .map(|(k, rel)| (k.to_string(), Some(s(&a.join(rel)).to_string())))
        .collect();
    files.insert(
        "external-etcd-ca.crt".into(),
        Some(s(&ext_a.join("ca.pem")).into()),
    );
    files.insert(
        "external-etcd.crt".into(),
        Some(s(&ext_a.join("client.pem")).into()),
    );
    files.insert(
        "external-etcd.key".into(),
        Some(s(&ext_a.join("client-key.pem")).into()),
    );
    let report = python_check(serde_json::json!({
        "bundle": s(&bundle), "format": "yaml", "key": key, "capture": s(&capture()),
        "files": files,
    }));
    assert!(report.contains("decrypted 9"), "{report}");

    // Download on B: the external files go to B's config paths (their directory made 0755).
    let b = tmp.path().join("b/pki");
    let ext_b = tmp.path().join("b-etcd/tls");
    let cfg_b = config(&b, &ext_b, true);
    let out = kpki_ok([
        "certs",
        "download-bundle",
        "--config",
        s(&cfg_b),
        "--certificate-key",
        &key,
        "--from",
        s(&bundle),
    ]);
    assert_eq!(out.matches(" wrote ").count(), 9, "{out}");
    for (name, m) in [
        ("ca.pem", 0o644),
        ("client.pem", 0o644),
        ("client-key.pem", 0o600),
    ] {
        assert_eq!(
            fs::read(ext_b.join(name)).unwrap(),
            fs::read(ext_a.join(name)).unwrap(),
            "{name}"
        );
        assert_eq!(mode(&ext_b.join(name)), m, "{name}");
    }
    assert_eq!(mode(&ext_b), 0o755);
    assert!(!b.join("etcd").exists());

    // With keyFile naming a file that is not there, the key travels as an empty value
    // (kubeadm: a file it cannot read is empty).
    let cfg_nokey = config(&a, &ext_a, false);
    let yaml = kpki_ok([
        "certs",
        "upload-bundle",
        "--config",
        s(&cfg_nokey),
        "--certificate-key",
        &key,
    ]);
    fs::write(&bundle, &yaml).unwrap();
    files.insert("external-etcd.key".into(), None);
    let report = python_check(serde_json::json!({
        "bundle": s(&bundle), "format": "yaml", "key": key, "capture": s(&capture()),
        "files": files,
    }));
    assert!(report.contains("decrypted 8"), "{report}");
}
