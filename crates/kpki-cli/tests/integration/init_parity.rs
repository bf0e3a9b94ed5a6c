//! `kpki init` against the tree real kubeadm v1.28.4 wrote (fixtures/kubeadm-v1.28.4-rsa), field
//! by field, and the openssl checks of whole trees (RSA, ECDSA P-256/P-384, IPv6 dual-stack).
//! Certificates are read with x509-parser and openssl, never with the kpki library.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::util::*;

/// One documented difference between the kubeadm v1.28.4 fixture and kpki. The parity test
/// compares every field of every certificate and tolerates exactly these rows; each row must
/// also be observed (the fixture shows `kubeadm`, kpki writes `kpki`), so the table cannot go stale.
struct Deviation {
    /// Certificate file under the cert dir (or kubeconfig file name), `*leaf` = every leaf.
    cert: &'static str,
    /// Field as [`fields`] names it.
    field: &'static str,
    /// What kubeadm v1.28.4 wrote.
    kubeadm: &'static str,
    /// What kpki writes.
    kpki: &'static str,
    /// Why (kubeadm version change or deliberate RFC choice).
    #[allow(dead_code)]
    why: &'static str,
}

const DEVIATIONS: &[Deviation] = &[
    Deviation {
        cert: "*leaf",
        field: "subjectKeyIdentifier",
        kubeadm: "absent",
        kpki: "present, between basicConstraints and authorityKeyIdentifier",
        why: "kpki: SKI on every certificate (RFC 5280 4.2.1.2), in Go's extension order",
    },
    Deviation {
        cert: "*leaf",
        field: "notBefore",
        kubeadm: "= issuing CA's NotBefore",
        kpki: "= run time - 5m",
        why: "kubeadm 1.31 (k/k PR #124652): every cert back-dated 5 min from the run time",
    },
];

/// Kubeconfig differences between kubeadm v1.28.4 and kpki following kubeadm 1.28 (the fixture
/// config's kubernetesVersion): the O values, super-admin.conf and kubelet.conf's server now match.
const KUBECONFIG_DEVIATIONS: &[Deviation] = &[
    Deviation {
        cert: "*leaf",
        field: "subjectKeyIdentifier",
        kubeadm: "absent",
        kpki: "present, between basicConstraints and authorityKeyIdentifier",
        why: "kpki: SKI on every certificate (RFC 5280 4.2.1.2)",
    },
    Deviation {
        cert: "*leaf",
        field: "notBefore",
        kubeadm: "= issuing CA's NotBefore",
        kpki: "= run time - 5m",
        why: "kubeadm 1.31: every cert back-dated 5 min from the run time",
    },
];

const TEN_MINUTES: i64 = 600;
const BACKDATE: i64 = 300;

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// How a NotBefore relates to the issuing CA's and (for kpki) to the run window.
fn not_before_relation(nb: i64, ca_nb: i64, run: Option<(i64, i64)>) -> String {
    if let Some((t0, t1)) = run {
        if nb >= t0 - BACKDATE - 1 && nb <= t1 - BACKDATE + 1 {
            return "= run time - 5m".into();
        }
    }
    if nb == ca_nb {
        return "= issuing CA's NotBefore".into();
    }
    format!("= issuing CA's NotBefore {:+}s", nb - ca_nb)
}

/// The compared fields of one certificate as strings. Validity span, raw DER equality and key
/// sizes are checked separately.
fn fields(
    cert: &Path,
    f: &Facts,
    ca: &Facts,
    is_ca: bool,
    run: Option<(i64, i64)>,
) -> BTreeMap<&'static str, String> {
    let mut m = BTreeMap::new();
    m.insert("subject", openssl_name(cert, "subject"));
    m.insert("issuer", openssl_name(cert, "issuer"));
    m.insert("version", f.version.to_string());
    m.insert("signature", f.signature.clone());
    m.insert("key", f.key.clone());
    m.insert("keyUsage", f.key_usage.clone());
    m.insert("extKeyUsage", f.ext_key_usage.clone());
    m.insert("basicConstraints", f.basic_constraints.clone());
    let dns: Vec<String> = f.dns_set().into_iter().collect();
    m.insert("dnsSANs", dns.join(","));
    let ips: Vec<String> = f.ip_set().iter().map(IpAddr::to_string).collect();
    m.insert("ipSANs", ips.join(","));
    // extension order and criticality, SKI and SAN judged by their own fields
    let exts: Vec<&str> = f
        .extensions
        .iter()
        .map(String::as_str)
        .filter(|e| !e.ends_with("subjectKeyIdentifier") && !e.ends_with("subjectAltName"))
        .collect();
    m.insert("extensions", exts.join(","));
    m.insert("subjectAltName", {
        let crit = f.extensions.iter().find(|e| e.ends_with("subjectAltName"));
        match crit {
            None if f.dns.is_empty() && f.ips.is_empty() => "absent".into(),
            None => "missing although SANs exist".into(),
            Some(e) if e.starts_with('!') => "critical".into(),
            Some(_)
                if f.extensions
                    .last()
                    .is_some_and(|l| l.ends_with("subjectAltName")) =>
            {
                "last".into()
            }
            Some(_) => "not last".into(),
        }
    });
    m.insert("subjectKeyIdentifier", {
        let pos = |n: &str| f.extensions.iter().position(|e| e.ends_with(n));
        match (
            pos("subjectKeyIdentifier"),
            pos("basicConstraints"),
            pos("authorityKeyIdentifier"),
        ) {
            (None, _, _) => "absent".into(),
            (Some(s), Some(b), Some(a)) if b < s && s < a => {
                "present, between basicConstraints and authorityKeyIdentifier".into()
            }
            (Some(s), Some(b), None) if b < s => "present, after basicConstraints".into(),
            _ => format!("present, in an unexpected place: {:?}", f.extensions),
        }
    });
    m.insert("authorityKeyIdentifier", {
        if f.has_ext("authorityKeyIdentifier") {
            "present".into()
        } else {
            "absent".into()
        }
    });
    m.insert(
        "serial",
        // Go: uniform in [1, 2^63-1): positive and at most 8 bytes (9 with a leading zero)
        if f.serial.len() <= 8 || (f.serial.len() == 9 && f.serial[0] == 0) {
            "positive, at most 63 bits".into()
        } else {
            format!("{} bytes", f.serial.len())
        },
    );
    if !is_ca {
        m.insert(
            "notBefore",
            not_before_relation(f.not_before, ca.not_before, run),
        );
    }
    m
}

/// Applies a deviation table: returns what kpki must show for `field` of `cert`, given the
/// fixture's value, and records which rows were used.
fn expected(
    table: &[Deviation],
    used: &mut BTreeSet<usize>,
    cert: &str,
    is_leaf: bool,
    field: &str,
    fixture_value: &str,
) -> String {
    for (i, d) in table.iter().enumerate() {
        let applies = d.cert == cert || (d.cert == "*leaf" && is_leaf);
        if applies && d.field == field {
            assert_eq!(
                fixture_value, d.kubeadm,
                "deviation table is wrong: the fixture's {cert} {field} is not {:?}",
                d.kubeadm
            );
            used.insert(i);
            return d.kpki.to_string();
        }
    }
    fixture_value.to_string()
}

/// `ls -l` permission strings of the fixture tree (`permissions.txt`).
fn fixture_permissions() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(fixture().join("permissions.txt")).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols[cols.len() - 1].to_string(), cols[0].to_string())
        })
        .collect()
}

fn ls_mode(path: &Path) -> String {
    let md = std::fs::metadata(path).unwrap();
    let m = mode(path);
    let mut s = String::from(if md.is_dir() { "d" } else { "-" });
    for shift in [6, 3, 0] {
        let bits = (m >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

/// Runs `kpki init` with the fixture's kubeadm config; returns (kubeconfig dir, run window).
fn init_like_fixture(tmp: &Path) -> (PathBuf, (i64, i64)) {
    let kube = tmp.join("kube");
    let t0 = unix(SystemTime::now());
    Kpki::init(&kube.join("pki"))
        .arg("--config")
        .arg(fixture().join("kubeadm-config.yaml"))
        .ok();
    let t1 = unix(SystemTime::now());
    (kube, (t0, t1))
}

#[test]
fn rsa_tree_matches_kubeadm_v1_28_fixture_field_by_field() {
    let tmp = tempfile::tempdir().unwrap();
    let (kube, run) = init_like_fixture(tmp.path());
    let ours = kube.join("pki");
    let theirs = fixture().join("pki");

    // the same files
    assert_eq!(
        files(&ours),
        files(&theirs),
        "file set differs from kubeadm's pki/"
    );

    // the same modes (permissions.txt: certs 0644, keys and sa.pub 0600, dirs 0755)
    let perms = fixture_permissions();
    assert!(
        perms.len() > 25,
        "permissions.txt not understood: {perms:?}"
    );
    for (rel, want) in &perms {
        let path = match rel.strip_prefix("pki") {
            Some(r) => ours.join(r.trim_start_matches('/')),
            None => kube.join(
                rel.strip_prefix("kubeconfig")
                    .unwrap()
                    .trim_start_matches('/'),
            ),
        };
        assert_eq!(&ls_mode(&path), want, "mode of {rel}");
    }

    // PEM block types and key sizes of every key file
    for rel in files(&theirs) {
        let (a, b) = (pem_labels(&theirs.join(&rel)), pem_labels(&ours.join(&rel)));
        assert_eq!(b, a, "PEM blocks of {rel}");
        match a[0].as_str() {
            "RSA PRIVATE KEY" => assert_eq!(
                rsa_bits(&ours.join(&rel)),
                rsa_bits(&theirs.join(&rel)),
                "key size of {rel}"
            ),
            "CERTIFICATE" => {}
            "PUBLIC KEY" => assert_eq!(rel, "sa.pub"),
            other => panic!("unexpected PEM block {other} in {rel}"),
        }
    }
    assert_eq!(pem_labels(&ours.join("sa.pub")), ["PUBLIC KEY"]);
    assert_eq!(pem_labels(&ours.join("sa.key")), ["RSA PRIVATE KEY"]);

    // every certificate, field by field
    let certs: Vec<String> = files(&theirs)
        .into_iter()
        .filter(|f| f.ends_with(".crt"))
        .collect();
    assert_eq!(certs.len(), 10);
    let issuer_of = |rel: &str| -> &'static str {
        match rel {
            "ca.crt" | "apiserver.crt" | "apiserver-kubelet-client.crt" => "ca.crt",
            "front-proxy-ca.crt" | "front-proxy-client.crt" => "front-proxy-ca.crt",
            _ => "etcd/ca.crt",
        }
    };
    let mut used = BTreeSet::new();
    let mut mismatches = Vec::new();
    for rel in &certs {
        let is_ca = rel.ends_with("ca.crt");
        let (fa, fb) = (facts(&theirs.join(rel)), facts(&ours.join(rel)));
        let (ca_a, ca_b) = (
            facts(&theirs.join(issuer_of(rel))),
            facts(&ours.join(issuer_of(rel))),
        );
        let want = fields(&theirs.join(rel), &fa, &ca_a, is_ca, None);
        let got = fields(&ours.join(rel), &fb, &ca_b, is_ca, Some(run));
        assert_eq!(
            want.keys().collect::<Vec<_>>(),
            got.keys().collect::<Vec<_>>()
        );
        for (field, theirs_value) in &want {
            let exp = expected(DEVIATIONS, &mut used, rel, !is_ca, field, theirs_value);
            if got[field] != exp {
                mismatches.push(format!(
                    "{rel} {field}: kubeadm {theirs_value:?}, expected {exp:?}, kpki {:?}",
                    got[field]
                ));
            }
        }
        // raw DER: the subject is byte-identical unless a subject deviation applies
        // (string types, RDN order); the issuer is the CA's subject, byte for byte
        if !DEVIATIONS
            .iter()
            .any(|d| d.cert == rel && d.field == "subject")
        {
            assert_eq!(
                fb.subject_raw, fa.subject_raw,
                "{rel}: subject DER differs from kubeadm's"
            );
        }
        assert_eq!(
            fb.issuer_raw, ca_b.subject_raw,
            "{rel}: issuer DER is not the CA's subject DER"
        );
        // validity span within 10 minutes of kubeadm's
        assert!(
            (fb.span() - fa.span()).abs() <= TEN_MINUTES,
            "{rel}: validity span {}s, kubeadm {}s",
            fb.span(),
            fa.span()
        );
        // every kpki certificate starts 5 minutes before the run
        assert_eq!(
            not_before_relation(fb.not_before, i64::MIN, Some(run)),
            "= run time - 5m",
            "{rel} NotBefore"
        );
    }
    assert!(
        mismatches.is_empty(),
        "differences from kubeadm v1.28.4:\n{}",
        mismatches.join("\n")
    );
    let unused: Vec<_> = DEVIATIONS
        .iter()
        .enumerate()
        .filter(|(i, _)| !used.contains(i))
        .map(|(_, d)| format!("{} {}", d.cert, d.field))
        .collect();
    assert!(
        unused.is_empty(),
        "deviation rows never observed: {unused:?}"
    );
}

#[test]
fn rsa_kubeconfigs_match_kubeadm_v1_28_fixture() {
    let tmp = tempfile::tempdir().unwrap();
    let (kube, run) = init_like_fixture(tmp.path());
    let theirs_dir = fixture().join("kubeconfig");
    let theirs: BTreeSet<String> = files(&theirs_dir);
    let ours: BTreeSet<String> = KUBECONFIGS.iter().map(|s| s.to_string()).collect();
    // kubernetesVersion v1.28.4: kubeadm 1.28's files, no super-admin.conf (added in 1.29)
    let mut all = theirs.clone();
    all.insert("super-admin.conf".into());
    assert_eq!(ours, all);
    assert_eq!(
        files(&kube)
            .into_iter()
            .filter(|f| f.ends_with(".conf"))
            .collect::<BTreeSet<_>>(),
        theirs
    );
    assert!(!kube.join("super-admin.conf").exists());
    let scratch = tempfile::tempdir().unwrap();
    let ca_a = facts(&fixture().join("pki/ca.crt"));
    let ca_b = facts(&kube.join("pki/ca.crt"));
    let mut used = BTreeSet::new();
    let mut mismatches = Vec::new();
    for name in &theirs {
        let a = kubeconfig_facts(&theirs_dir.join(name));
        let b = kubeconfig_facts(&kube.join(name));
        let dump = |k: &KubeconfigFacts, side: &str| {
            let d = scratch.path();
            let crt = write_file(d, &format!("{side}-{name}.crt"), &k.cert_pem);
            let key = write_file(d, &format!("{side}-{name}.key"), &k.key_pem);
            (crt, key)
        };
        let (crt_a, key_a) = dump(&a, "kubeadm");
        let (crt_b, key_b) = dump(&b, "kpki");
        let fa = facts(&crt_a);
        let fb = facts(&crt_b);
        let mut want = fields(&crt_a, &fa, &ca_a, false, None);
        let mut got = fields(&crt_b, &fb, &ca_b, false, Some(run));
        for (m, k) in [(&mut want, &a), (&mut got, &b)] {
            m.insert("server", k.server.clone());
            m.insert("cluster", k.cluster.clone());
            m.insert("user", k.user.clone());
            m.insert("current-context", k.current_context.clone());
        }
        for (field, theirs_value) in &want {
            let exp = expected(
                KUBECONFIG_DEVIATIONS,
                &mut used,
                name,
                true,
                field,
                theirs_value,
            );
            if got[field] != exp {
                mismatches.push(format!(
                    "{name} {field}: kubeadm {theirs_value:?}, expected {exp:?}, kpki {:?}",
                    got[field]
                ));
            }
        }
        assert_eq!(
            pem_labels(&key_b),
            pem_labels(&key_a),
            "{name} client key PEM type"
        );
        assert_eq!(
            cert_der(&write_file(scratch.path(), "ca", &b.ca_pem)),
            cert_der(&kube.join("pki/ca.crt"))
        );
        assert_key_matches(&key_b, &crt_b);
        assert!(
            (fb.span() - fa.span()).abs() <= TEN_MINUTES,
            "{name} validity span"
        );
        assert_eq!(fb.issuer_raw, ca_b.subject_raw, "{name} issuer DER");
    }
    // super-admin.conf: kubeadm 1.29+ content (kubeadm 1.29 also deploys v1.28.4)
    let kube129 = tmp.path().join("kube129");
    kpki_ok([
        "init".as_ref(),
        "--config".as_ref(),
        fixture().join("kubeadm-config.yaml").as_os_str(),
        "--kubeadm-version".as_ref(),
        "1.29".as_ref(),
        "--cert-dir".as_ref(),
        kube129.join("pki").as_os_str(),
    ]);
    let s = kubeconfig_facts(&kube129.join("super-admin.conf"));
    let crt = write_file(scratch.path(), "super.crt", &s.cert_pem);
    assert_eq!(
        openssl_name(&crt, "subject"),
        "CN=PRINTABLESTRING:kubernetes-super-admin,O=PRINTABLESTRING:system:masters"
    );
    assert_eq!(s.server, "https://k8s.example.internal:6443");
    assert_eq!(s.current_context, "kubernetes-super-admin@kubernetes");
    assert!(
        mismatches.is_empty(),
        "differences from kubeadm v1.28.4:\n{}",
        mismatches.join("\n")
    );
    let unused: Vec<_> = KUBECONFIG_DEVIATIONS
        .iter()
        .enumerate()
        .filter(|(i, _)| !used.contains(i))
        .map(|(_, d)| format!("{} {}", d.cert, d.field))
        .collect();
    assert!(
        unused.is_empty(),
        "deviation rows never observed: {unused:?}"
    );
}

#[test]
fn rsa_tree_verifies_with_openssl_and_every_key_matches() {
    let tmp = tempfile::tempdir().unwrap();
    let (kube, _) = init_like_fixture(tmp.path());
    // The fixture config targets v1.28.4: kubeadm 1.28's layout has no super-admin.conf.
    check_tree_without(
        &kube.join("pki"),
        &kube,
        Alg::Rsa2048,
        &["super-admin.conf"],
    );
}

/// A tree of `alg` keys under `<tmp>/kube` (the standard inputs changed by `extra`).
fn init_ecdsa(tmp: &Path, alg: Alg, extra: &[&str]) -> PathBuf {
    let kube = tmp.join("kube");
    init_tree(
        &kube,
        &[&["--encryption-algorithm", alg.flag()], extra].concat(),
    );
    kube
}

#[test]
fn ecdsa_p256_tree_verifies_with_openssl() {
    let tmp = tempfile::tempdir().unwrap();
    let kube = init_ecdsa(tmp.path(), Alg::P256, &[]);
    check_tree(&kube.join("pki"), &kube, Alg::P256);
}

#[test]
fn ecdsa_p384_tree_verifies_with_openssl() {
    let tmp = tempfile::tempdir().unwrap();
    let kube = init_ecdsa(tmp.path(), Alg::P384, &[]);
    check_tree(&kube.join("pki"), &kube, Alg::P384);
}

#[test]
fn ipv6_advertise_address_with_dual_stack_services() {
    let tmp = tempfile::tempdir().unwrap();
    let kube = init_ecdsa(
        tmp.path(),
        Alg::P256,
        &[
            "--apiserver-advertise-address",
            "fd00::10",
            "--service-cidr",
            "10.96.0.0/16,fd00:1::/112",
        ],
    );
    let pki = kube.join("pki");
    check_tree(&pki, &kube, Alg::P256);
    let api = facts(&pki.join("apiserver.crt"));
    // first CIDR only (kubeadm ignores the secondary family), then the advertise address
    assert_eq!(api.ips, [ip("10.96.0.1"), ip("fd00::10")]);
    assert_eq!(
        api.dns,
        [
            "cp-1",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local"
        ]
    );
    for etcd in ["etcd/server.crt", "etcd/peer.crt"] {
        let f = facts(&pki.join(etcd));
        assert_eq!(
            f.ips,
            [ip("fd00::10"), ip("127.0.0.1"), ip("::1")],
            "{etcd}"
        );
        assert_eq!(f.dns, ["cp-1", "localhost"], "{etcd}");
    }
    // openssl agrees on the IPv6 SAN and it is usable for host checks
    let text = openssl([
        "x509",
        "-in",
        pki.join("apiserver.crt").to_str().unwrap(),
        "-noout",
        "-ext",
        "subjectAltName",
    ]);
    assert!(
        text.contains("IP Address:FD00:0:0:0:0:0:0:10") || text.contains("IP Address:fd00::10"),
        "{text}"
    );
    let out = tool(
        "openssl",
        [
            "verify",
            "-x509_strict",
            "-purpose",
            "sslserver",
            "-verify_ip",
            "fd00::10",
            "-CAfile",
            pki.join("ca.crt").to_str().unwrap(),
            pki.join("apiserver.crt").to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in KUBECONFIGS {
        let k = kubeconfig_facts(&kube.join(name));
        assert_eq!(k.server, "https://[fd00::10]:6443", "{name}");
    }
}
