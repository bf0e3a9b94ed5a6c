//! `kpki verify` end to end: a fresh kpki tree is clean, the real kubeadm v1.28.4 tree reports
//! exactly its documented differences, and a catalogue of corrupted copies of a valid tree (one
//! fault each, forged with the library's encoder or with openssl) reports exactly the expected
//! (code, entry) pairs. Faults are confirmed independently (openssl verify, x509-parser) where the
//! fault is about the certificate itself.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use kpki::internal::kubeconfig::Kubeconfig;
use kpki::internal::model::resolve::{CertEntry, Desired, Entry};
use kpki::internal::x509::issue::{cert_pem, issue, Issuance, Issuer, Profile};
use kpki::internal::x509::keys::{KeyAlgorithm, PrivateKey};
use serde_json::Value;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::util::{
    copy_dir, fixture, fixture_copy, init_tree, kpki, openssl, s, set_mode,
    spec_without_super_admin, tool, Modes, INPUTS, KPKI,
};

const T0: OffsetDateTime = datetime!(2026-01-15 12:00 UTC);
const T0_S: &str = "2026-01-15T12:00:00Z";
const T1_S: &str = "2026-01-15T13:00:00Z";

/// Runs verify with `-o json`; returns (exit code, report).
fn verify_json(args: &[&str]) -> (i32, Value) {
    let mut a = vec!["verify", "-o", "json"];
    a.extend_from_slice(args);
    let out = kpki(&a);
    let code = out.status.code().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {text}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, v)
}

fn pairs(report: &Value, severities: &[&str]) -> BTreeSet<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| severities.contains(&f["severity"].as_str().unwrap()))
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_string(),
                f["entry"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn set(v: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

// ------------------------------------------------------------------ a valid tree and its forger

/// A kpki-made ECDSA tree under `root` (`root/pki`, kubeconfigs in `root`).
struct Tree {
    root: PathBuf,
}

impl Tree {
    fn pki(&self) -> PathBuf {
        self.root.join("pki")
    }

    fn args(&self) -> Vec<String> {
        let mut a = vec!["--cert-dir".to_string(), s(&self.pki()).to_string()];
        a.extend(INPUTS.iter().map(|x| x.to_string()));
        a
    }

    fn desired(&self) -> Desired {
        let mut args = kpki::InputArgs::for_cert_dir(self.pki());
        args.node_name = Some("cp-1".into());
        args.advertise_address = Some([10, 0, 0, 10].into());
        args.key_algorithm = Some(kpki::KeyAlgorithm::EcdsaP256);
        let inputs = kpki::inputs::Inputs::from_args(&args).unwrap();
        kpki::internal::model::resolve::resolve(
            &kpki::internal::model::spec::Spec::default_spec().unwrap(),
            &inputs,
        )
        .unwrap()
    }

    fn cert_entry(&self, name: &str) -> CertEntry {
        match self.desired().get(name) {
            Some(Entry::Ca(c)) | Some(Entry::Leaf(c)) => c.clone(),
            _ => panic!("no cert entry {name}"),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        if rel.ends_with(".conf") {
            self.root.join(rel)
        } else {
            self.pki().join(rel)
        }
    }

    fn key(&self, path: &Path) -> PrivateKey {
        PrivateKey::from_pem(&fs::read_to_string(path).unwrap()).unwrap()
    }

    fn der(&self, path: &Path) -> Vec<u8> {
        kpki::internal::disk::read::parse_cert_pem(&fs::read(path).unwrap())
            .unwrap()
            .0
    }

    /// Issues `name` again from its spec profile, changed by `f`, with `key` (default: its own),
    /// signed by `issuer` (default: its spec CA; a CA is self-signed).
    fn forge(
        &self,
        name: &str,
        key: Option<&PrivateKey>,
        issuer: Option<(&[u8], &PrivateKey)>,
        f: impl FnOnce(&mut Profile, &mut Issuance),
    ) -> Vec<u8> {
        let c = self.cert_entry(name);
        let own = self.key(&c.key_path);
        let key = key.unwrap_or(&own);
        let mut profile = c.profile.clone();
        let mut when = Issuance {
            not_before: T0 - Duration::minutes(5),
            not_after: T0 + Duration::days(365),
            serial: 4242,
        };
        f(&mut profile, &mut when);
        let ca_files = c.ca.as_ref().map(|ca| {
            let ce = self.cert_entry(ca);
            (self.der(&ce.cert_path), self.key(&ce.key_path))
        });
        let iss = match (issuer, &ca_files) {
            (Some((der, k)), _) => Some(Issuer {
                cert_der: der,
                key: k,
            }),
            (None, Some((der, k))) => Some(Issuer {
                cert_der: der,
                key: k,
            }),
            (None, None) => None,
        };
        issue(&profile, key, iss, when).unwrap()
    }

    /// Like [`Tree::forge`], written over the entry's certificate file.
    fn reissue(&self, name: &str, f: impl FnOnce(&mut Profile, &mut Issuance)) {
        let der = self.forge(name, None, None, f);
        fs::write(self.cert_entry(name).cert_path, cert_pem(&der)).unwrap();
    }

    fn write_key(&self, path: &Path, key: &PrivateKey) {
        fs::write(path, key.pem()).unwrap();
        set_mode(path, 0o600);
    }

    fn edit_kubeconfig(&self, file: &str, f: impl FnOnce(&mut Kubeconfig)) {
        let p = self.root.join(file);
        let mut k = Kubeconfig::from_yaml(&fs::read_to_string(&p).unwrap()).unwrap();
        f(&mut k);
        fs::write(&p, k.to_yaml().unwrap()).unwrap();
    }

    /// A CA with the same subject as `ca` but another key.
    fn foreign_ca(&self, ca: &str) -> (Vec<u8>, PrivateKey) {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let der = self.forge(ca, Some(&key), None, |_, w| {
            w.not_after = T0 + Duration::days(3650)
        });
        (der, key)
    }

    /// Signs the entry's existing key with openssl (`openssl ca`), with the given extensions.
    fn openssl_sign(&self, name: &str, extensions: &str) {
        let c = self.cert_entry(name);
        let ca = self.cert_entry(c.ca.as_deref().unwrap());
        let work = self.root.join(format!("openssl-{name}"));
        fs::create_dir_all(&work).unwrap();
        fs::write(work.join("index.txt"), "").unwrap();
        fs::write(work.join("serial"), "1000\n").unwrap();
        let sans: Vec<String> = c
            .profile
            .dns
            .iter()
            .map(|d| format!("DNS:{d}"))
            .chain(c.profile.ips.iter().map(|i| format!("IP:{i}")))
            .collect();
        let cnf = format!(
            "[ca]\ndefault_ca = CA_default\n[CA_default]\ndir = {dir}\ndatabase = $dir/index.txt\nnew_certs_dir = $dir\nserial = $dir/serial\ndefault_md = sha256\npolicy = policy_any\nunique_subject = no\ncopy_extensions = none\n[policy_any]\ncommonName = supplied\n[ext]\n{extensions}\nsubjectAltName = {sans}\n",
            dir = s(&work),
            sans = sans.join(",")
        );
        fs::write(work.join("ca.cnf"), cnf).unwrap();
        let csr = work.join("req.csr");
        openssl([
            "req",
            "-new",
            "-key",
            s(&c.key_path),
            "-subj",
            &format!("/CN={}", c.profile.cn),
            "-out",
            s(&csr),
        ]);
        openssl([
            "ca",
            "-batch",
            "-notext",
            "-config",
            s(&work.join("ca.cnf")),
            "-cert",
            s(&ca.cert_path),
            "-keyfile",
            s(&ca.key_path),
            "-in",
            s(&csr),
            "-out",
            s(&c.cert_path),
            "-startdate",
            "20260115115500Z",
            "-enddate",
            "20270115120000Z",
            "-extensions",
            "ext",
        ]);
        fs::remove_dir_all(&work).unwrap();
    }
}

/// Builds a fresh ECDSA tree with `kpki init` at T0 (kubeconfigs in `root`, mode 0700).
fn fresh_tree(root: &Path) -> Tree {
    fs::create_dir_all(root).unwrap();
    set_mode(root, 0o700);
    init_tree(root, &["--now", T0_S]);
    Tree {
        root: root.to_path_buf(),
    }
}

fn verify_tree(t: &Tree, extra: &[&str]) -> (i32, Value) {
    let args = t.args();
    let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
    a.extend_from_slice(&["--now", T1_S]);
    a.extend_from_slice(extra);
    verify_json(&a)
}

fn openssl_verify(ca: &Path, cert: &Path, at: OffsetDateTime) -> bool {
    tool(
        "openssl",
        [
            "verify",
            "-attime",
            &at.unix_timestamp().to_string(),
            "-CAfile",
            s(ca),
            s(cert),
        ],
        None,
    )
    .status
    .success()
}

fn x509<T>(der: &[u8], f: impl FnOnce(&X509Certificate<'_>) -> T) -> T {
    let (_, c) = X509Certificate::from_der(der).unwrap();
    f(&c)
}

// ------------------------------------------------------------------ tests

#[test]
fn fresh_tree_is_clean() {
    let dir = tempfile::tempdir().unwrap();
    let t = fresh_tree(&dir.path().join("t"));
    // Independent check: openssl accepts every leaf with its CA at T1.
    let d = t.desired();
    for e in &d.entries {
        if let Entry::Leaf(c) = e {
            let ca = t.cert_entry(c.ca.as_deref().unwrap());
            assert!(
                openssl_verify(&ca.cert_path, &c.cert_path, T0 + Duration::hours(1)),
                "{}",
                c.name
            );
        }
    }
    let (code, r) = verify_tree(&t, &[]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["summary"]["errors"], 0, "{r:#}");
    assert_eq!(r["summary"]["warnings"], 0, "{r:#}");
    assert_eq!(r["summary"]["entries"], d.entries.len());
    assert_eq!(r["findings"], Value::Array(vec![]), "{r:#}");

    // Text output: just the verdict.
    let args = t.args();
    let mut a: Vec<&str> = vec!["verify", "--now", T1_S];
    a.extend(args.iter().map(String::as_str));
    let out = kpki(&a);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text,
        format!(
            "OK: 0 error(s), 0 warning(s), 0 info; {} entries checked at {T1_S}\n",
            d.entries.len()
        )
    );

    // Near the end of the leaves' year, every leaf and kubeconfig is within --warn-within.
    let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
    a.extend_from_slice(&["--now", "2026-12-25T12:00:00Z"]);
    let (code, r) = verify_json(&a);
    assert_eq!(code, 0, "warnings do not fail: {r:#}");
    let want: BTreeSet<(String, String)> = d
        .entries
        .iter()
        .filter(|e| matches!(e, Entry::Leaf(_) | Entry::Kubeconfig(_)))
        .map(|e| ("cert-expiring".to_string(), e.name().to_string()))
        .collect();
    assert_eq!(pairs(&r, &["error", "warning"]), want);
    a.extend_from_slice(&["--warn-within", "24h"]);
    let (_, r) = verify_json(&a);
    assert_eq!(r["summary"]["warnings"], 0, "{r:#}");
}

#[test]
fn kubeadm_1_28_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let root = fixture_copy(dir.path());
    let config = fixture().join("kubeadm-config.yaml");
    let (pki, kubeconfigs) = (root.join("pki"), root.join("kubeconfig"));
    let base = [
        "--config",
        s(&config),
        "--cert-dir",
        s(&pki),
        "--kubeconfig-dir",
        s(&kubeconfigs),
        "--now",
        "2026-11-28T09:00:00Z",
    ];
    // The config targets v1.28.4, so verify follows kubeadm 1.28: no super-admin.conf, 1.28's O
    // values and kubelet.conf at the control-plane endpoint -- no error, no "pre-1.29" warning.
    let (code, r) = verify_json(&base);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(pairs(&r, &["error"]), BTreeSet::new(), "{r:#}");
    let mut want_warn = BTreeSet::new();
    // Following kubeadm 1.29 (which also deploys v1.28.4) the 1.29 changes are reported.
    let mut a129 = base.to_vec();
    a129.extend(["--kubeadm-version", "1.29"]);
    let (code, r129) = verify_json(&a129);
    assert_eq!(code, 1, "{r129:#}");
    assert_eq!(
        pairs(&r129, &["error"]),
        set(&[("file-missing", "super-admin.conf")]),
        "{r129:#}"
    );
    let mut want_warn_129 = set(&[
        ("subject-o-pre-1.29", "admin.conf"),
        ("subject-o-pre-1.29", "apiserver-kubelet-client"),
        ("subject-o-pre-1.29", "apiserver-etcd-client"),
        ("subject-o-pre-1.29", "etcd-healthcheck-client"),
    ]);
    // Go writes a Subject Key Identifier only on CAs: every kubeadm leaf lacks one.
    for leaf in [
        "apiserver",
        "apiserver-kubelet-client",
        "front-proxy-client",
        "etcd-server",
        "etcd-peer",
        "etcd-healthcheck-client",
        "apiserver-etcd-client",
        "admin.conf",
        "kubelet.conf",
        "controller-manager.conf",
        "scheduler.conf",
    ] {
        want_warn.insert(("ski-missing".into(), leaf.into()));
        want_warn_129.insert(("ski-missing".into(), leaf.into()));
    }
    assert_eq!(pairs(&r, &["warning"]), want_warn, "{r:#}");
    assert_eq!(pairs(&r129, &["warning"]), want_warn_129, "{r129:#}");
    assert_eq!(pairs(&r, &["info"]), BTreeSet::new(), "{r:#}");
    // Independent confirmation of the two facts behind the warnings.
    let der = kpki::internal::disk::read::parse_cert_pem(
        &fs::read(root.join("pki/apiserver.crt")).unwrap(),
    )
    .unwrap()
    .0;
    x509(&der, |c| {
        assert!(c
            .extensions()
            .iter()
            .all(|e| e.oid.to_id_string() != "2.5.29.14"));
        assert_eq!(c.subject().to_string(), "CN=kube-apiserver");
    });
    let der = kpki::internal::disk::read::parse_cert_pem(
        &fs::read(root.join("pki/apiserver-etcd-client.crt")).unwrap(),
    )
    .unwrap()
    .0;
    x509(&der, |c| {
        assert_eq!(
            c.subject().to_string(),
            "O=system:masters, CN=kube-apiserver-etcd-client"
        )
    });

    // With a 1.28 spec (no super-admin.conf) the tree has no error at all.
    let spec = spec_without_super_admin(dir.path());
    let mut a = vec!["--spec", s(&spec)];
    a.extend_from_slice(&base);
    let (code, r) = verify_json(&a);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(pairs(&r, &["error"]), BTreeSet::new());

    // As git checks it out (keys 0644/0444), every key and kubeconfig is reported.
    let raw = dir.path().join("raw");
    copy_dir(&fixture(), &raw, Modes::OwnerWritable);
    set_mode(&raw.join("pki/ca.key"), 0o644);
    let (_, r) = verify_json(&[
        "--config",
        s(&config),
        "--cert-dir",
        s(&raw.join("pki")),
        "--kubeconfig-dir",
        s(&raw.join("kubeconfig")),
        "--now",
        "2026-11-28T09:00:00Z",
    ]);
    let insecure: BTreeSet<String> = pairs(&r, &["error"])
        .into_iter()
        .filter(|(c, _)| c == "key-mode-insecure")
        .map(|(_, e)| e)
        .collect();
    // 3 CAs + 7 leaves + sa + 4 kubeconfigs.
    assert_eq!(insecure.len(), 15, "{insecure:?}");
}

type Fault = fn(&Tree);

struct Case {
    name: &'static str,
    fault: Fault,
    /// Expected (code, entry) among errors and warnings.
    want: &'static [(&'static str, &'static str)],
    /// Expected (code, entry) among info findings (checked only when non-empty).
    want_info: &'static [(&'static str, &'static str)],
}

const CASES: &[Case] = &[
    Case {
        name: "wrong SAN",
        fault: |t| {
            t.reissue("apiserver", |p, _| {
                p.dns.retain(|d| d != "kubernetes.default");
                p.dns.push("other.example.com".into());
            })
        },
        want: &[("san-missing", "apiserver")],
        want_info: &[("san-extra", "apiserver")],
    },
    Case {
        name: "expired leaf",
        fault: |t| {
            t.reissue("front-proxy-client", |_, w| {
                w.not_before = T0 - Duration::days(400);
                w.not_after = T0 - Duration::days(1);
            })
        },
        want: &[("cert-expired", "front-proxy-client")],
        want_info: &[],
    },
    Case {
        name: "expired CA",
        fault: |t| {
            t.reissue("front-proxy-ca", |_, w| {
                w.not_before = T0 - Duration::days(3650);
                w.not_after = T0 - Duration::days(1);
            })
        },
        want: &[("cert-expired", "front-proxy-ca")],
        want_info: &[],
    },
    Case {
        name: "not yet valid",
        fault: |t| {
            t.reissue("apiserver-etcd-client", |_, w| {
                w.not_before = T0 + Duration::days(2)
            })
        },
        want: &[("cert-not-yet-valid", "apiserver-etcd-client")],
        want_info: &[],
    },
    Case {
        name: "leaf signed by a different CA with the same subject",
        fault: |t| {
            let (ca, key) = t.foreign_ca("ca");
            let der = t.forge(
                "apiserver-kubelet-client",
                None,
                Some((ca.as_slice(), &key)),
                |_, _| {},
            );
            let p = t.path("apiserver-kubelet-client.crt");
            fs::write(&p, cert_pem(&der)).unwrap();
            assert!(!openssl_verify(
                &t.path("ca.crt"),
                &p,
                T0 + Duration::hours(1)
            ));
        },
        want: &[("chain-invalid", "apiserver-kubelet-client")],
        want_info: &[],
    },
    Case {
        name: "key/cert mismatch",
        fault: |t| {
            let k = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
            t.write_key(&t.path("etcd/server.key"), &k);
        },
        want: &[("key-mismatch", "etcd-server")],
        want_info: &[],
    },
    Case {
        name: "sa.pub mismatch",
        fault: |t| {
            let k = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
            fs::write(t.path("sa.pub"), k.public_key_pem()).unwrap();
        },
        want: &[("key-mismatch", "sa")],
        want_info: &[],
    },
    Case {
        name: "missing file",
        fault: |t| fs::remove_file(t.path("etcd/peer.crt")).unwrap(),
        want: &[("file-missing", "etcd-peer")],
        want_info: &[],
    },
    Case {
        name: "missing kubeconfig",
        fault: |t| fs::remove_file(t.path("kubelet.conf")).unwrap(),
        want: &[("file-missing", "kubelet.conf")],
        want_info: &[],
    },
    Case {
        name: "truncated PEM",
        fault: |t| {
            let p = t.path("apiserver.crt");
            let b = fs::read(&p).unwrap();
            fs::write(&p, &b[..b.len() / 2]).unwrap();
        },
        want: &[("pem-invalid", "apiserver")],
        want_info: &[],
    },
    Case {
        name: "garbage key file",
        fault: |t| {
            fs::write(
                t.path("etcd/healthcheck-client.key"),
                [0x30u8, 0x82, 0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3],
            )
            .unwrap()
        },
        want: &[("pem-invalid", "etcd-healthcheck-client")],
        want_info: &[],
    },
    Case {
        name: "key mode 0644",
        fault: |t| set_mode(&t.path("apiserver.key"), 0o644),
        want: &[("key-mode-insecure", "apiserver")],
        want_info: &[],
    },
    Case {
        name: "sa.key mode 0640",
        fault: |t| set_mode(&t.path("sa.key"), 0o640),
        want: &[("key-mode-insecure", "sa")],
        want_info: &[],
    },
    Case {
        name: "kubeconfig mode 0644",
        fault: |t| set_mode(&t.path("admin.conf"), 0o644),
        want: &[("key-mode-insecure", "admin.conf")],
        want_info: &[],
    },
    Case {
        name: "missing clientAuth EKU (no EKU extension)",
        fault: |t| t.reissue("apiserver-etcd-client", |p, _| p.ext_key_usages.clear()),
        want: &[("eku-missing", "apiserver-etcd-client")],
        want_info: &[],
    },
    Case {
        name: "serverAuth instead of clientAuth",
        fault: |t| {
            t.reissue("front-proxy-client", |p, _| {
                p.ext_key_usages = vec!["server_auth".into()]
            })
        },
        want: &[
            ("eku-missing", "front-proxy-client"),
            ("eku-extra", "front-proxy-client"),
        ],
        want_info: &[],
    },
    Case {
        name: "CA without keyCertSign",
        fault: |t| {
            t.reissue("etcd-ca", |p, w| {
                p.key_usages = vec!["digital_signature".into()];
                w.not_after = T0 + Duration::days(3650);
            })
        },
        want: &[("ca-no-keycertsign", "etcd-ca")],
        want_info: &[],
    },
    Case {
        name: "CA without CA:TRUE",
        fault: |t| {
            t.reissue("front-proxy-ca", |p, w| {
                p.is_ca = false;
                w.not_after = T0 + Duration::days(3650);
            })
        },
        want: &[("ca-not-ca", "front-proxy-ca")],
        want_info: &[],
    },
    Case {
        name: "leaf with CA:TRUE",
        fault: |t| t.reissue("front-proxy-client", |p, _| p.is_ca = true),
        want: &[("leaf-is-ca", "front-proxy-client")],
        want_info: &[],
    },
    Case {
        name: "leaf with keyCertSign",
        fault: |t| {
            t.reissue("apiserver", |p, _| {
                p.key_usages.push("key_cert_sign".into())
            })
        },
        want: &[("leaf-has-keycertsign", "apiserver")],
        want_info: &[],
    },
    Case {
        name: "wrong O",
        fault: |t| {
            t.reissue("apiserver-kubelet-client", |p, _| {
                p.orgs = vec!["wrong-group".into()]
            })
        },
        want: &[("subject-o-mismatch", "apiserver-kubelet-client")],
        want_info: &[],
    },
    Case {
        name: "pre-1.29 O",
        fault: |t| {
            t.reissue("etcd-healthcheck-client", |p, _| {
                p.orgs = vec!["system:masters".into()]
            })
        },
        want: &[("subject-o-pre-1.29", "etcd-healthcheck-client")],
        want_info: &[],
    },
    Case {
        name: "wrong CN",
        fault: |t| {
            t.reissue("etcd-healthcheck-client", |p, _| {
                p.cn = "someone-else".into()
            })
        },
        want: &[("subject-cn-mismatch", "etcd-healthcheck-client")],
        want_info: &[],
    },
    Case {
        name: "expiring within 30 days",
        fault: |t| t.reissue("apiserver", |_, w| w.not_after = T0 + Duration::days(10)),
        want: &[("cert-expiring", "apiserver")],
        want_info: &[],
    },
    Case {
        name: "leaf outlives its CA",
        fault: |t| {
            t.reissue("front-proxy-client", |_, w| {
                w.not_after = T0 + Duration::days(20 * 365)
            })
        },
        want: &[("cert-outlives-ca", "front-proxy-client")],
        want_info: &[],
    },
    Case {
        name: "serial zero",
        fault: |t| t.reissue("apiserver-kubelet-client", |_, w| w.serial = 0),
        want: &[("serial-nonconforming", "apiserver-kubelet-client")],
        want_info: &[],
    },
    Case {
        name: "RSA key where the spec says ECDSA-P256",
        fault: |t| {
            let k = PrivateKey::generate(KeyAlgorithm::Rsa2048).unwrap();
            let der = t.forge("apiserver", Some(&k), None, |_, _| {});
            fs::write(t.path("apiserver.crt"), cert_pem(&der)).unwrap();
            t.write_key(&t.path("apiserver.key"), &k);
        },
        want: &[("key-algorithm-mismatch", "apiserver")],
        want_info: &[],
    },
    Case {
        name: "CA key does not match",
        fault: |t| {
            let k = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
            t.write_key(&t.path("ca.key"), &k);
        },
        want: &[("key-mismatch", "ca")],
        want_info: &[],
    },
    Case {
        name: "external CA (front-proxy-ca.key removed)",
        fault: |t| fs::remove_file(t.path("front-proxy-ca.key")).unwrap(),
        want: &[],
        want_info: &[("external-ca", "front-proxy-ca")],
    },
    Case {
        name: "kubeconfig with a foreign CA",
        fault: |t| {
            let (ca, _) = t.foreign_ca("ca");
            t.edit_kubeconfig("admin.conf", |k| {
                let cur = k.current().unwrap();
                let cert = String::from_utf8(cur.client_cert_pem.unwrap()).unwrap();
                let key = String::from_utf8(cur.client_key_pem.unwrap()).unwrap();
                k.set_credentials(Some(&cert_pem(&ca)), &cert, &key)
                    .unwrap();
            });
        },
        want: &[("kubeconfig-ca-mismatch", "admin.conf")],
        want_info: &[],
    },
    Case {
        name: "kubeconfig whose key does not match",
        fault: |t| {
            let other = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
            t.edit_kubeconfig("scheduler.conf", |k| {
                let cur = k.current().unwrap();
                let cert = String::from_utf8(cur.client_cert_pem.unwrap()).unwrap();
                k.set_credentials(None, &cert, other.pem()).unwrap();
            });
        },
        want: &[("key-mismatch", "scheduler.conf")],
        want_info: &[],
    },
    Case {
        name: "kubeconfig with no current context",
        fault: |t| t.edit_kubeconfig("controller-manager.conf", |k| k.current_context.clear()),
        want: &[("kubeconfig-context-unresolved", "controller-manager.conf")],
        want_info: &[],
    },
    Case {
        name: "kubeconfig with another server",
        fault: |t| {
            t.edit_kubeconfig("kubelet.conf", |k| {
                k.clusters[0].cluster.server = "https://10.9.9.9:6443".into()
            })
        },
        want: &[("kubeconfig-server-mismatch", "kubelet.conf")],
        want_info: &[],
    },
    Case {
        name: "kubeconfig client cert from a foreign CA",
        fault: |t| {
            let (ca, ca_key) = t.foreign_ca("ca");
            t.edit_kubeconfig("super-admin.conf", |k| {
                let cur = k.current().unwrap();
                let key_pem = String::from_utf8(cur.client_key_pem.unwrap()).unwrap();
                let key = PrivateKey::from_pem(&key_pem).unwrap();
                let d = t.desired();
                let Some(Entry::Kubeconfig(e)) = d.get("super-admin.conf") else {
                    panic!()
                };
                let when = Issuance {
                    not_before: T0 - Duration::minutes(5),
                    not_after: T0 + Duration::days(365),
                    serial: 77,
                };
                let iss = Issuer {
                    cert_der: &ca,
                    key: &ca_key,
                };
                let der = issue(&e.profile, &key, Some(iss), when).unwrap();
                k.set_credentials(None, &cert_pem(&der), &key_pem).unwrap();
            });
        },
        want: &[("chain-invalid", "super-admin.conf")],
        want_info: &[],
    },
    Case {
        name: "garbage kubeconfig",
        fault: |t| fs::write(t.path("admin.conf"), "users: [: oops\n").unwrap(),
        want: &[("kubeconfig-invalid", "admin.conf")],
        want_info: &[],
    },
    Case {
        name: "openssl: keyEncipherment on an ECDSA key",
        fault: |t| {
            t.openssl_sign(
                "apiserver",
                "keyUsage = critical,digitalSignature,keyEncipherment\nextendedKeyUsage = serverAuth\nbasicConstraints = critical,CA:FALSE\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always",
            );
            let der = t.der(&t.path("apiserver.crt"));
            x509(&der, |c| {
                assert!(c.key_usage().unwrap().unwrap().value.key_encipherment())
            });
        },
        want: &[("ku-keyencipherment-ecdsa", "apiserver")],
        want_info: &[],
    },
    Case {
        name: "openssl: leaf without SKI",
        fault: |t| {
            t.openssl_sign(
                "etcd-server",
                "keyUsage = critical,digitalSignature\nextendedKeyUsage = serverAuth,clientAuth\nbasicConstraints = critical,CA:FALSE\nsubjectKeyIdentifier = none\nauthorityKeyIdentifier = keyid:always",
            );
            let der = t.der(&t.path("etcd/server.crt"));
            x509(&der, |c| {
                assert!(c
                    .extensions()
                    .iter()
                    .all(|e| e.oid.to_id_string() != "2.5.29.14"))
            });
        },
        want: &[("ski-missing", "etcd-server")],
        want_info: &[],
    },
];

#[test]
fn corruption_catalogue() {
    let dir = tempfile::tempdir().unwrap();
    let base = fresh_tree(&dir.path().join("base"));
    let (code, r) = verify_tree(&base, &[]);
    assert_eq!((code, r["summary"]["errors"].clone()), (0, Value::from(0)));
    assert!(CASES.len() >= 20);
    let mut failures = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let root = dir.path().join(format!("case-{i}"));
        copy_dir(&base.root, &root, Modes::OwnerWritable);
        let t = Tree { root };
        (case.fault)(&t);
        let (code, r) = verify_tree(&t, &[]);
        let got = pairs(&r, &["error", "warning"]);
        let want = set(case.want);
        let has_error = case.want.iter().any(|(c, _)| {
            r["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["code"] == *c && f["severity"] == "error")
        });
        let want_code = if has_error { 1 } else { 0 };
        let info = pairs(&r, &["info"]);
        let info_ok = set(case.want_info).is_subset(&info);
        if got != want || code != want_code || !info_ok {
            failures.push(format!(
                "{}: exit {code} (want {want_code})\n  want {want:?}\n  got  {got:?}\n  info {info:?}\n  findings: {:#}",
                case.name, r["findings"]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn json_report_follows_the_documented_schema() {
    let dir = tempfile::tempdir().unwrap();
    let t = fresh_tree(&dir.path().join("t"));
    fs::remove_file(t.path("apiserver.crt")).unwrap();
    set_mode(&t.path("sa.key"), 0o644);
    let (code, r) = verify_tree(&t, &[]);
    assert_eq!(code, 1);
    let keys = |v: &Value| -> BTreeSet<String> { v.as_object().unwrap().keys().cloned().collect() };
    let strs = |v: &[&str]| -> BTreeSet<String> { v.iter().map(|s| s.to_string()).collect() };
    assert_eq!(
        keys(&r),
        strs(&[
            "apiVersion",
            "kind",
            "time",
            "certDir",
            "kubeconfigDir",
            "inputs",
            "summary",
            "findings"
        ])
    );
    assert_eq!(r["apiVersion"], "kpki/v1alpha2");
    // Every input with where it came from (here: flags, the tree, defaults).
    let inputs = r["inputs"].as_array().unwrap();
    let row = |name: &str| inputs.iter().find(|i| i["input"] == name).unwrap();
    assert_eq!(row("cert_dir")["value"], s(&t.pki()));
    assert_eq!(row("cert_dir")["origin"]["source"], "flag");
    assert_eq!(row("cert_validity")["origin"]["source"], "default");
    assert_eq!(r["kind"], "VerifyReport");
    assert_eq!(r["time"], T1_S);
    assert_eq!(r["certDir"], s(&t.pki()));
    assert_eq!(r["kubeconfigDir"], s(&t.root));
    assert_eq!(
        keys(&r["summary"]),
        strs(&["entries", "errors", "warnings", "info"])
    );
    assert_eq!(r["summary"]["errors"], 2);
    for f in r["findings"].as_array().unwrap() {
        assert_eq!(
            keys(f),
            strs(&["code", "severity", "entry", "path", "message", "fix", "remedy"])
        );
        let sev = f["severity"].as_str().unwrap();
        assert!(["error", "warning", "info"].contains(&sev));
    }
    let f = &r["findings"][0];
    assert_eq!(f["code"], "file-missing");
    assert_eq!(f["entry"], "apiserver");
    assert_eq!(f["path"], s(&t.path("apiserver.crt")));
    assert_eq!(f["fix"], "run `kpki init` to create it");
    let f = &r["findings"][1];
    assert_eq!(f["code"], "key-mode-insecure");
    assert_eq!(f["entry"], "sa");
    assert_eq!(f["fix"], format!("chmod 600 {}", s(&t.path("sa.key"))));
    // The documented schema is the library's type, which rejects unknown fields.
    let typed: kpki::internal::views::verify::Report = serde_json::from_value(r.clone()).unwrap();
    assert_eq!(typed.summary.errors, 2);
    assert!(typed.has_errors());
}

#[test]
fn text_report_has_one_table_per_severity() {
    let dir = tempfile::tempdir().unwrap();
    let t = fresh_tree(&dir.path().join("t"));
    set_mode(&t.path("front-proxy-client.key"), 0o644);
    t.reissue("apiserver", |_, w| w.not_after = T0 + Duration::days(10));
    fs::remove_file(t.path("etcd/ca.key")).unwrap();
    let args = t.args();
    let mut a: Vec<&str> = vec!["verify", "--now", T1_S];
    a.extend(args.iter().map(String::as_str));
    let out = kpki(&a);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "error: verify found 1 error(s)\n"
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "ERRORS (1)");
    assert!(
        lines[1].starts_with("FILE") && lines[1].contains("ENTRY") && lines[1].ends_with("FIX")
    );
    assert!(
        lines[2].starts_with(s(&t.path("front-proxy-client.key"))),
        "{text}"
    );
    assert!(
        lines[2].contains("key-mode-insecure")
            && lines[2].ends_with(&format!(
                "chmod 600 {}",
                s(&t.path("front-proxy-client.key"))
            )),
        "{text}"
    );
    assert_eq!(lines[3], "");
    assert_eq!(lines[4], "WARNINGS (1)");
    assert!(
        lines[6].contains("cert-expiring")
            && lines[6].ends_with("run `kpki certs renew apiserver`"),
        "{text}"
    );
    assert_eq!(lines[8], "INFO (1)");
    assert!(
        lines[10].contains("external-ca") && lines[10].contains("etcd-ca"),
        "{text}"
    );
    assert!(
        lines[12].starts_with("FAILED: 1 error(s), 1 warning(s), 1 info;"),
        "{text}"
    );
    // Columns line up: the CODE header starts where every code starts.
    let col = lines[5].find("CODE").unwrap();
    assert_eq!(&lines[6][col..col + "cert-expiring".len()], "cert-expiring");
}

#[test]
fn could_not_run_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope/pki");
    let out = kpki([
        "verify",
        "--cert-dir",
        s(&missing),
        "--node-name",
        "n",
        "--apiserver-advertise-address",
        "10.0.0.10",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("error: ") && err.contains(s(&missing)),
        "{err}"
    );

    fs::create_dir_all(dir.path().join("pki")).unwrap();
    let pki = dir.path().join("pki");
    // No advertise address and none to detect: a network namespace without a default route.
    let out = tool(
        "unshare",
        [
            "-n",
            KPKI,
            "verify",
            "--cert-dir",
            s(&pki),
            "--node-name",
            "n",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("--apiserver-advertise-address") && err.contains("--config"),
        "{err}"
    );

    let out = kpki([
        "verify",
        "--cert-dir",
        s(&pki),
        "--node-name",
        "n",
        "--apiserver-advertise-address",
        "10.0.0.10",
        "--warn-within",
        "30 days",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("--warn-within"));

    let out = kpki([
        "verify",
        "--cert-dir",
        s(&pki),
        "--config",
        "/nonexistent/kubeadm.yaml",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("/nonexistent/kubeadm.yaml"));

    // An empty but readable tree runs and reports everything missing (exit 1).
    let out = kpki([
        "verify",
        "--cert-dir",
        s(&pki),
        "--node-name",
        "n",
        "--apiserver-advertise-address",
        "10.0.0.10",
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let codes: BTreeSet<&str> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, BTreeSet::from(["file-missing"]));
}

/// One judge: over the whole corruption catalogue, the entries `kpki plan` (what `init
/// --regenerate-drifted` does) issues from the spec (regenerate, or create for a missing file)
/// are exactly those verify reports an error with remedy `reissue` on; and after `init
/// --regenerate-drifted`, verify reports no such error.
#[test]
fn plan_and_verify_agree_over_the_catalogue() {
    let dir = tempfile::tempdir().unwrap();
    let base = fresh_tree(&dir.path().join("base"));
    let fixable = |r: &Value| -> BTreeSet<String> {
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["severity"] == "error" && f["remedy"] == "reissue")
            .map(|f| f["entry"].as_str().unwrap().to_string())
            .collect()
    };
    let mut failures = Vec::new();
    let mut regenerated = 0;
    for (i, case) in CASES.iter().enumerate() {
        let root = dir.path().join(format!("agree-{i}"));
        copy_dir(&base.root, &root, Modes::OwnerWritable);
        let t = Tree { root };
        (case.fault)(&t);
        let (_, report) = verify_tree(&t, &[]);
        let args = t.args();
        let mut a: Vec<&str> = vec!["plan", "-o", "json", "--now", T1_S];
        a.extend(args.iter().map(String::as_str));
        let out = kpki(&a);
        let plan: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{}: plan is not JSON ({e}): {}",
                case.name,
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let steps = plan["steps"].as_array().unwrap();
        let regen: BTreeSet<String> = steps
            .iter()
            .filter(|s| s["action"] == "regenerate" || s["action"] == "create")
            .map(|s| s["entry"].as_str().unwrap().to_string())
            .collect();
        let want = fixable(&report);
        if regen != want {
            failures.push(format!(
                "{}: plan regenerates {regen:?}, verify's fixable errors are on {want:?}",
                case.name
            ));
            continue;
        }
        // Where nothing blocks (no error step), init --regenerate-drifted cures every fixable error.
        if steps.iter().any(|s| s["action"] == "error") {
            continue;
        }
        let mut a: Vec<&str> = vec!["init", "--regenerate-drifted", "--now", T1_S];
        a.extend(args.iter().map(String::as_str));
        let out = kpki(&a);
        if !out.status.success() {
            failures.push(format!(
                "{}: init --regenerate-drifted failed: {}",
                case.name,
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        regenerated += usize::from(!regen.is_empty());
        let (_, after) = verify_tree(&t, &[]);
        let left = fixable(&after);
        if !left.is_empty() {
            failures.push(format!(
                "{}: still fixable after init --regenerate-drifted: {left:?}",
                case.name
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        regenerated >= 10,
        "only {regenerated} cases were regenerated"
    );
}
