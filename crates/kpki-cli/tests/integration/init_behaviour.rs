//! `kpki init` behaviour (issue 2): idempotency, drift handling, spec extension, bring-your-own
//! CA, bad input and dry run. Trees are ECDSA P-256 unless the test is about RSA; everything is
//! checked with openssl, x509-parser and file snapshots, never with the kpki library.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::util::*;

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// stderr must be exactly one non-empty line, and no panic.
fn one_line(stderr: &str) -> &str {
    assert!(!stderr.contains("panicked"), "kpki panicked:\n{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one stderr line, got:\n{stderr}");
    assert!(!lines[0].trim().is_empty(), "empty stderr line");
    lines[0]
}

// ------------------------------------------------------------------ idempotency (issue 2, item 4)

#[test]
fn second_init_with_same_inputs_changes_no_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("kube");
    init_tree(&root, &[]);
    let before = snapshot(&root);
    assert_eq!(
        before.values().filter(|n| !n.dir).count(),
        27,
        "{:?}",
        before.keys()
    );
    init_tree(&root, &[]);
    let after = snapshot(&root);
    assert!(
        changed(&before, &after).is_empty(),
        "changed: {:?}",
        changed(&before, &after)
    );
    assert!(
        touched(&before, &after).is_empty(),
        "rewritten: {:?}",
        touched(&before, &after)
    );
}

#[test]
fn deleted_leaf_is_regenerated_alone_and_chains_to_the_kept_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("kube");
    init_tree(&root, &[]);
    let pki = root.join("pki");
    let old = facts(&pki.join("front-proxy-client.crt"));
    let before = snapshot(&root);
    std::fs::remove_file(pki.join("front-proxy-client.crt")).unwrap();
    std::fs::remove_file(pki.join("front-proxy-client.key")).unwrap();
    init_tree(&root, &[]);
    let after = snapshot(&root);
    assert_eq!(
        changed(&before, &after),
        set(&["pki/front-proxy-client.crt", "pki/front-proxy-client.key"])
    );
    assert!(
        touched(&before, &after).is_empty(),
        "rewritten: {:?}",
        touched(&before, &after)
    );
    let crt = pki.join("front-proxy-client.crt");
    let key = pki.join("front-proxy-client.key");
    assert_verifies(&pki.join("front-proxy-ca.crt"), &crt, "sslclient");
    assert!(verify(&pki.join("ca.crt"), &crt, "sslclient").is_err());
    assert_key_matches(&key, &crt);
    assert_eq!((mode(&crt), mode(&key)), (0o644, 0o600));
    let new = facts(&crt);
    assert_ne!(new.serial, old.serial, "not a new certificate");
    assert_ne!(new.spki, old.spki, "not a new key");
    assert_eq!(new.subject_raw, old.subject_raw);
    assert_eq!(new.ext_key_usage, "clientAuth");
}

#[test]
fn changed_san_fails_without_writing_then_regenerate_drifted_reissues_only_apiserver() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("kube");
    init_tree(&root, &[]);
    let pki = root.join("pki");
    let before = snapshot(&root);

    let drift = ["--apiserver-cert-extra-sans", "10.0.0.99"];
    let (code, stderr) = Kpki::init(&pki).inputs(&drift).fail();
    assert_eq!(code, 2, "{stderr}");
    let line = one_line(&stderr);
    assert!(line.contains("apiserver.crt"), "{line}");
    assert!(line.contains("10.0.0.99"), "{line}");
    let after_fail = snapshot(&root);
    assert!(
        changed(&before, &after_fail).is_empty(),
        "{:?}",
        changed(&before, &after_fail)
    );
    assert!(
        touched(&before, &after_fail).is_empty(),
        "{:?}",
        touched(&before, &after_fail)
    );

    let mut drift_fix = drift.to_vec();
    drift_fix.push("--regenerate-drifted");
    init_tree(&root, &drift_fix);
    let after = snapshot(&root);
    let diff = changed(&before, &after);
    assert!(
        diff.contains("pki/apiserver.crt"),
        "apiserver.crt not re-issued: {diff:?}"
    );
    assert!(
        diff.is_subset(&set(&["pki/apiserver.crt", "pki/apiserver.key"])),
        "more than apiserver changed: {diff:?}"
    );
    assert!(
        touched(&before, &after).is_empty(),
        "rewritten: {:?}",
        touched(&before, &after)
    );
    for ca in [
        "pki/ca.crt",
        "pki/ca.key",
        "pki/etcd/ca.crt",
        "pki/front-proxy-ca.crt",
    ] {
        assert_eq!(before[ca], after[ca], "{ca} changed");
    }
    let crt = pki.join("apiserver.crt");
    let f = facts(&crt);
    assert_eq!(f.ips, [ip("10.96.0.1"), ip("10.0.0.10"), ip("10.0.0.99")]);
    assert_verifies(&pki.join("ca.crt"), &crt, "sslserver");
    assert_key_matches(&pki.join("apiserver.key"), &crt);
    let out = tool(
        "openssl",
        [
            "verify",
            "-x509_strict",
            "-purpose",
            "sslserver",
            "-verify_ip",
            "10.0.0.99",
            "-CAfile",
            pki.join("ca.crt").to_str().unwrap(),
            crt.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // the drifted inputs are now satisfied: a further run is a no-op
    init_tree(&root, &drift);
    let again = snapshot(&root);
    assert!(changed(&after, &again).is_empty());
    assert!(touched(&after, &again).is_empty());
}

// ------------------------------------------------------------------ spec extension (item 5)

const KUBELET_SERVING: &str = r#"
[[cert]]
name = "kubelet-serving"
path = "kubelet-serving"
long_name = "kubelet serving certificate (added by the test)"
ca = "ca"
cn = "system:node:{node_name}"
o = ["system:nodes"]
key_usages = ["digital_signature", "key_encipherment"]
ext_key_usages = ["server_auth"]
sans = ["{node_name}", "{advertise_address}"]
validity = "cert"
"#;

#[test]
fn spec_file_with_an_extra_leaf_issues_it() {
    let tmp = tempfile::tempdir().unwrap();
    let default_spec = kpki_ok(["spec"]);
    let repo_spec = std::fs::read_to_string(workspace().join("certs-spec.toml")).unwrap();
    assert_eq!(
        default_spec, repo_spec,
        "`kpki spec` is not the repository's certs-spec.toml"
    );
    let spec = write_file(
        tmp.path(),
        "spec.toml",
        format!("{default_spec}{KUBELET_SERVING}").as_bytes(),
    );
    let root = tmp.path().join("kube");
    let init = Kpki::init(&root.join("pki")).inputs(&["--spec", s(&spec)]);
    init.ok();
    let pki = root.join("pki");

    // the default tree plus exactly the new pair
    let mut want = files(&fixture().join("pki"));
    want.insert("kubelet-serving.crt".into());
    want.insert("kubelet-serving.key".into());
    assert_eq!(files(&pki), want);

    let crt = pki.join("kubelet-serving.crt");
    let key = pki.join("kubelet-serving.key");
    assert_verifies(&pki.join("ca.crt"), &crt, "sslserver");
    assert!(
        verify(&pki.join("ca.crt"), &crt, "sslclient").is_err(),
        "serverAuth only"
    );
    assert_key_matches(&key, &crt);
    assert_key_alg(&key, Alg::P256);
    assert_eq!((mode(&crt), mode(&key)), (0o644, 0o600));
    assert_eq!(
        openssl_name(&crt, "subject"),
        "CN=PRINTABLESTRING:system:node:cp-1,O=PRINTABLESTRING:system:nodes"
    );
    let f = facts(&crt);
    assert_eq!(f.dns, ["cp-1"]);
    assert_eq!(f.ips, [ip("10.0.0.10")]);
    assert_eq!(f.ext_key_usage, "serverAuth");
    assert_eq!(f.basic_constraints, "!CA:FALSE");
    assert_eq!(
        f.key_usage, "!digitalSignature",
        "ECDSA: no keyEncipherment"
    );
    assert_eq!(f.issuer_raw, facts(&pki.join("ca.crt")).subject_raw);
    check_tree(&pki, &root, Alg::P256);

    // and it takes part in idempotency like any other entry
    let before = snapshot(&root);
    init.ok();
    assert!(changed(&before, &snapshot(&root)).is_empty());
}

// ------------------------------------------------------------------ bring your own CA (item 6)

/// Makes `<pki>/ca.crt` and `<pki>/ca.key` with openssl (PKCS#8 key, as `openssl req` writes it).
fn openssl_ca(pki: &Path, subj: &str) {
    std::fs::create_dir_all(pki).unwrap();
    let key = pki.join("ca.key");
    let crt = pki.join("ca.crt");
    openssl([
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        subj,
        "-days",
        "3650",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        crt.to_str().unwrap(),
    ]);
}

fn check_byo_ca(extra: &[&str], subj: &str, openssl_subject: &str, alg: Alg) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("kube");
    let pki = root.join("pki");
    openssl_ca(&pki, subj);
    let ca_before = snapshot(&pki);
    let ca_crt = pki.join("ca.crt");
    assert_eq!(openssl_name(&ca_crt, "subject"), openssl_subject);
    let ca = facts(&ca_crt);

    // The key algorithm only when the case names one (the default is RSA-2048).
    let init = Kpki::init(&pki)
        .inputs(&[])
        .without("--encryption-algorithm")
        .args(extra);
    init.ok();

    // the CA is kept byte for byte (and not rewritten)
    let after = snapshot(&pki);
    for f in ["ca.crt", "ca.key"] {
        assert_eq!(ca_before[f], after[f], "{f} was changed or rewritten");
    }
    // every certificate it signed names it by its exact subject bytes and verifies
    for leaf in ["apiserver", "apiserver-kubelet-client"] {
        let crt = pki.join(format!("{leaf}.crt"));
        let f = facts(&crt);
        assert_eq!(
            f.issuer_raw, ca.subject_raw,
            "{leaf}: issuer DER is not the CA's subject DER"
        );
        assert_eq!(openssl_name(&crt, "issuer"), openssl_subject, "{leaf}");
        assert_eq!(
            f.key,
            match alg {
                Alg::Rsa2048 => "RSA-2048 e=65537",
                _ => "ECDSA-P256",
            }
        );
        assert_eq!(
            f.signature, "sha256WithRSAEncryption",
            "{leaf}: signed by the RSA CA"
        );
        assert_key_matches(&pki.join(format!("{leaf}.key")), &crt);
    }
    assert_verifies(&ca_crt, &pki.join("apiserver.crt"), "sslserver");
    assert_verifies(
        &ca_crt,
        &pki.join("apiserver-kubelet-client.crt"),
        "sslclient",
    );
    let scratch = tempfile::tempdir().unwrap();
    for name in KUBECONFIGS {
        let k = kubeconfig_facts(&root.join(name));
        let crt = write_file(scratch.path(), name, &k.cert_pem);
        assert_eq!(facts(&crt).issuer_raw, ca.subject_raw, "{name}");
        assert_eq!(
            cert_der(&write_file(scratch.path(), "embedded-ca", &k.ca_pem)),
            cert_der(&ca_crt),
            "{name}: embedded CA"
        );
        assert_verifies(&ca_crt, &crt, "sslclient");
    }
    // the other CAs and their leaves are made as usual
    for (ca, leaf, purpose) in [
        ("front-proxy-ca", "front-proxy-client", "sslclient"),
        ("etcd/ca", "etcd/server", "sslserver"),
        ("etcd/ca", "etcd/peer", "sslclient"),
        ("etcd/ca", "etcd/healthcheck-client", "sslclient"),
        ("etcd/ca", "apiserver-etcd-client", "sslclient"),
    ] {
        assert_verifies(
            &pki.join(format!("{ca}.crt")),
            &pki.join(format!("{leaf}.crt")),
            purpose,
        );
    }
    // and a second run keeps everything
    let before = snapshot(&root);
    init.ok();
    let again = snapshot(&root);
    assert!(changed(&before, &again).is_empty());
    assert!(touched(&before, &again).is_empty());
}

#[test]
fn bring_your_own_rsa_ca_is_kept_and_named_byte_for_byte() {
    check_byo_ca(
        &[],
        "/C=US/O=Example Corp/OU=Platform/CN=Example Issuing CA",
        "CN=UTF8STRING:Example Issuing CA,OU=UTF8STRING:Platform,O=UTF8STRING:Example Corp,C=PRINTABLESTRING:US",
        Alg::Rsa2048,
    );
}

#[test]
fn bring_your_own_ca_with_two_organizations_signs_ecdsa_leaves() {
    check_byo_ca(
        &["--encryption-algorithm", "ECDSA-P256"],
        "/O=a/O=b/CN=Multi CA",
        "CN=UTF8STRING:Multi CA,O=UTF8STRING:b,O=UTF8STRING:a",
        Alg::P256,
    );
}

// ------------------------------------------------------------------ bad input (item 7)

fn spec_variant(dir: &Path, name: &str, from: &str, to: &str) -> PathBuf {
    let spec = kpki_ok(["spec"]);
    assert_eq!(
        spec.matches(from).count(),
        1,
        "{from:?} not unique in the default spec"
    );
    write_file(dir, name, spec.replacen(from, to, 1).as_bytes())
}

#[test]
fn bad_input_exits_2_with_one_line_naming_the_culprit_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = tmp.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    let out = tmp.path().join("out");
    let pki = out.join("pki");
    let p = |p: &Path| p.to_string_lossy().into_owned();

    let unknown_ca = spec_variant(
        &inputs,
        "unknown-ca.toml",
        "ca = \"front-proxy-ca\"",
        "ca = \"nope-ca\"",
    );
    let dotdot = spec_variant(
        &inputs,
        "dotdot.toml",
        "path = \"front-proxy-client\"",
        "path = \"../front-proxy-client\"",
    );
    let unknown_var = spec_variant(
        &inputs,
        "unknown-var.toml",
        "cn = \"front-proxy-client\"",
        "cn = \"{bogus_var}\"",
    );
    let duplicate = spec_variant(
        &inputs,
        "duplicate.toml",
        "name = \"front-proxy-client\"",
        "name = \"apiserver\"",
    );
    let not_toml = write_file(&inputs, "not-toml.toml", b"this is [ not toml\n");
    let missing_spec = inputs.join("missing-spec.toml");
    let missing_config = inputs.join("missing-config.yaml");
    let dir_config = inputs.join("a-directory.yaml");
    std::fs::create_dir(&dir_config).unwrap();
    let bad_yaml = write_file(
        &inputs,
        "malformed.yaml",
        b"apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\nlocalAPIEndpoint: [unclosed\n",
    );
    let bad_field = write_file(
        &inputs,
        "bad-field.yaml",
        b"apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAddress: nope\nnodeRegistration:\n  name: cp-1\n",
    );

    let flags = |extra: &[&str]| Kpki::init(&pki).inputs(extra);
    let spec_case = |spec: &Path| Kpki::init(&pki).inputs(&["--spec", s(spec)]);
    let config_case = |config: &Path| {
        Kpki::init(&pki).args([
            "--config",
            s(config),
            "--encryption-algorithm",
            "ECDSA-P256",
        ])
    };

    let mut cases: Vec<(&str, Kpki, Vec<String>)> = vec![
        (
            "invalid IPv4",
            flags(&["--apiserver-advertise-address", "10.0.0.300"]),
            vec!["--apiserver-advertise-address".into(), "10.0.0.300".into()],
        ),
        (
            "invalid IPv6",
            flags(&["--apiserver-advertise-address", "fd00::zz"]),
            vec!["--apiserver-advertise-address".into(), "fd00::zz".into()],
        ),
        // "0.0.0.0" is no longer refused: kubeadm (and now kpki) then detects the address of the
        // default-route interface; config_semantics.rs tests that and the refusal without one.
        (
            "invalid CIDR",
            flags(&["--service-cidr", "10.96.0.0/33"]),
            vec!["--service-cidr".into(), "10.96.0.0/33".into()],
        ),
        (
            "same-family CIDRs",
            flags(&["--service-cidr", "10.96.0.0/16,10.97.0.0/16"]),
            vec!["--service-cidr".into()],
        ),
        (
            "port too big",
            flags(&["--apiserver-bind-port", "70000"]),
            vec!["--apiserver-bind-port".into(), "70000".into()],
        ),
        (
            "port zero",
            flags(&["--apiserver-bind-port", "0"]),
            vec!["--apiserver-bind-port".into()],
        ),
        (
            "duration unit",
            flags(&["--cert-validity", "1y"]),
            vec!["--cert-validity".into(), "1y".into()],
        ),
        (
            "zero duration",
            flags(&["--ca-validity", "0s"]),
            vec!["--ca-validity".into()],
        ),
        (
            "negative duration",
            flags(&["--cert-validity=-5h"]),
            vec!["--cert-validity".into(), "-5h".into()],
        ),
        (
            "algorithm",
            flags(&["--encryption-algorithm", "DSA"]),
            vec!["--encryption-algorithm".into(), "DSA".into()],
        ),
        (
            "node name",
            flags(&["--node-name", "no_underscores"]),
            vec!["--node-name".into(), "no_underscores".into()],
        ),
        (
            "endpoint",
            flags(&["--control-plane-endpoint", "bad_host:6443"]),
            vec!["--control-plane-endpoint".into(), "bad_host".into()],
        ),
        (
            "extra SAN",
            flags(&["--apiserver-cert-extra-sans", "ok.example.com,not valid"]),
            vec!["--apiserver-cert-extra-sans".into(), "not valid".into()],
        ),
        (
            "clock",
            flags(&["--now", "yesterday"]),
            vec!["--now".into()],
        ),
        (
            "spec: unknown CA",
            spec_case(&unknown_ca),
            vec![
                p(&unknown_ca),
                "front-proxy-client".into(),
                "nope-ca".into(),
            ],
        ),
        (
            "spec: .. path",
            spec_case(&dotdot),
            vec![p(&dotdot), "front-proxy-client".into(), "..".into()],
        ),
        (
            "spec: unknown variable",
            spec_case(&unknown_var),
            vec![
                p(&unknown_var),
                "front-proxy-client".into(),
                "bogus_var".into(),
            ],
        ),
        (
            "spec: duplicate name",
            spec_case(&duplicate),
            vec![p(&duplicate), "apiserver".into(), "duplicate".into()],
        ),
        ("spec: not TOML", spec_case(&not_toml), vec![p(&not_toml)]),
        (
            "spec: missing",
            spec_case(&missing_spec),
            vec![p(&missing_spec)],
        ),
        (
            "config: missing",
            config_case(&missing_config),
            vec![p(&missing_config)],
        ),
        (
            "config: unreadable (a directory)",
            config_case(&dir_config),
            vec![p(&dir_config)],
        ),
        (
            "config: malformed YAML",
            config_case(&bad_yaml),
            vec![p(&bad_yaml)],
        ),
        (
            "config: bad field",
            config_case(&bad_field),
            vec!["localAPIEndpoint.advertiseAddress".into(), "nope".into()],
        ),
    ];
    // a config file without read permission (root reads it anyway: then the case is skipped)
    let no_read = write_file(
        &inputs,
        "no-read.yaml",
        b"apiVersion: kubeadm.k8s.io/v1beta3\n",
    );
    std::fs::set_permissions(
        &no_read,
        std::os::unix::fs::PermissionsExt::from_mode(0o000),
    )
    .unwrap();
    if std::fs::read(&no_read).is_err() {
        cases.push((
            "config: no read permission",
            config_case(&no_read),
            vec![p(&no_read)],
        ));
    }

    let inputs_before = snapshot(&inputs);
    let mut failures = Vec::new();
    for (what, case, culprits) in &cases {
        let res = case.run();
        let stderr = String::from_utf8_lossy(&res.stderr).into_owned();
        let lines: Vec<&str> = stderr.lines().collect();
        let mut problems = Vec::new();
        if res.status.code() != Some(2) {
            problems.push(format!("exit {:?}", res.status.code()));
        }
        if stderr.contains("panicked") {
            problems.push("panicked".into());
        }
        if lines.len() != 1 || lines[0].trim().is_empty() {
            problems.push(format!("{} stderr lines", lines.len()));
        }
        for c in culprits {
            if !stderr.contains(c.as_str()) {
                problems.push(format!("does not name {c:?}"));
            }
        }
        if out.exists() {
            problems.push(format!("wrote {:?}", files(&out)));
            std::fs::remove_dir_all(&out).unwrap();
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{what}: {}\n    args: {:?}\n    stderr: {stderr}",
                problems.join(", "),
                case.strings()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // the inputs themselves are untouched
    assert_eq!(files(&inputs).len(), 8);
    let inputs_after = snapshot(&inputs);
    assert!(changed(&inputs_before, &inputs_after).is_empty());
    assert!(touched(&inputs_before, &inputs_after).is_empty());
}

#[test]
fn bad_input_leaves_an_existing_tree_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("kube");
    init_tree(&root, &[]);
    let before = snapshot(&root);
    let (code, stderr) = Kpki::init(&root.join("pki"))
        .inputs(&["--service-cidr", "10.96.0.0/33"])
        .fail();
    assert_eq!(code, 2);
    assert!(one_line(&stderr).contains("--service-cidr"));
    let after = snapshot(&root);
    assert!(changed(&before, &after).is_empty());
    assert!(touched(&before, &after).is_empty());
}

// ------------------------------------------------------------------ dry run (item 8)

fn lists_every_entry(stdout: &str, verb: &str) {
    for name in ENTRY_NAMES {
        let quoted = format!("\"{name}\"");
        assert!(
            stdout
                .lines()
                .any(|l| l.contains(&quoted) && l.contains(verb)),
            "{name} is not listed with {verb:?}:\n{stdout}"
        );
    }
}

#[test]
fn dry_run_on_an_empty_dir_writes_nothing_and_lists_every_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("kube");
    std::fs::create_dir(&root).unwrap();
    let stdout = Kpki::init(&root.join("pki")).inputs(&["--dry-run"]).ok();
    assert!(
        snapshot(&root).is_empty(),
        "dry run wrote {:?}",
        snapshot(&root).keys()
    );
    assert!(
        snapshot(tmp.path()).len() == 1,
        "{:?}",
        snapshot(tmp.path()).keys()
    );
    lists_every_entry(&stdout, "generate");
}

#[test]
fn dry_run_on_a_tree_writes_nothing_and_shows_what_would_change() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("kube");
    init_tree(&root, &[]);
    std::fs::remove_file(root.join("pki/front-proxy-client.crt")).unwrap();
    std::fs::remove_file(root.join("pki/front-proxy-client.key")).unwrap();
    let before = snapshot(&root);
    let stdout = Kpki::init(&root.join("pki")).inputs(&["--dry-run"]).ok();
    let after = snapshot(&root);
    assert!(
        changed(&before, &after).is_empty(),
        "{:?}",
        changed(&before, &after)
    );
    assert!(touched(&before, &after).is_empty());
    let fpc: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("\"front-proxy-client\""))
        .collect();
    assert_eq!(fpc.len(), 1, "{stdout}");
    assert!(fpc[0].contains("generate"), "{stdout}");
    let generating = stdout.lines().filter(|l| l.contains("generate")).count();
    assert_eq!(
        generating, 1,
        "only front-proxy-client is missing:\n{stdout}"
    );
    for name in ENTRY_NAMES {
        assert!(
            stdout.contains(&format!("\"{name}\"")),
            "{name} not listed:\n{stdout}"
        );
    }
}
