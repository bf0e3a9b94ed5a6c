//! Acceptance tests of issue 13: the node is the source. A kubeadm v1.28.4 control-plane node
//! (the fixture's tree, kubeconfigs, static Pod manifests and kubelet config, laid out under a
//! temporary root as kubeadm laid them out under `/`) is verified, planned and renewed with
//! `--root` and no other input; the wiring checks are run over a catalogue of one-line faults,
//! each confirmed independently with openssl or PyYAML; bad manifests give findings, never a panic
//! or a write.

#![allow(clippy::unwrap_used)] // tests may unwrap (project rule)

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;
use serde_json::Value;

const NOW: &str = "2026-11-28T09:00:00Z";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            fs::copy(e.path(), &dest).unwrap();
            chmod(&dest, 0o644);
        }
    }
}

fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// The fixture as kubeadm left it on the node: `ROOT/etc/kubernetes/{pki,*.conf,manifests}` and
/// `ROOT/var/lib/kubelet/{config.yaml,kubeadm-flags.env}`, keys and kubeconfigs 0600.
fn node_root(dir: &Path, with_tree: bool) -> PathBuf {
    let root = dir.join("node");
    let fx = fixture();
    let etc = root.join("etc/kubernetes");
    fs::create_dir_all(&etc).unwrap();
    if with_tree {
        copy_dir(&fx.join("pki"), &etc.join("pki"));
        for e in fs::read_dir(fx.join("kubeconfig")).unwrap() {
            let e = e.unwrap();
            let dest = etc.join(e.file_name());
            fs::copy(e.path(), &dest).unwrap();
            chmod(&dest, 0o600);
        }
        for key in files(&etc.join("pki")) {
            if key.ends_with(".key") || key.ends_with(".pub") {
                chmod(&etc.join("pki").join(key), 0o600);
            }
        }
    }
    copy_dir(&fx.join("node/manifests"), &etc.join("manifests"));
    copy_dir(
        &fx.join("node/var-lib-kubelet"),
        &root.join("var/lib/kubelet"),
    );
    for d in ["etc", "etc/kubernetes", "var", "var/lib", "var/lib/kubelet"] {
        chmod(&root.join(d), 0o755);
    }
    root
}

fn run_json(args: &[&str]) -> (i32, Value) {
    let out = kpki(args);
    let code = out.status.code().unwrap_or(-1);
    let text = String::from_utf8(out.stdout).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}): {text}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, v)
}

fn verify_root(root: &Path) -> (i32, Value) {
    run_json(&["verify", "--root", s(root), "--now", NOW, "-o", "json"])
}

/// `(code, entry)` of the findings of one severity.
fn pairs(r: &Value, severity: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == severity)
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_string(),
                f["entry"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// The `inputs` row of an input: (value, origin).
fn input<'a>(r: &'a Value, name: &str) -> (&'a str, &'a Value) {
    let row = r["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["input"] == name)
        .unwrap_or_else(|| panic!("no input {name}: {r:#}"));
    (row["value"].as_str().unwrap(), &row["origin"])
}

/// kubeadm writes no SKI on leaves: the one warning its tree gets on every leaf and kubeconfig.
const KUBEADM_LEAVES: &[&str] = &[
    "admin.conf",
    "apiserver",
    "apiserver-etcd-client",
    "apiserver-kubelet-client",
    "controller-manager.conf",
    "etcd-healthcheck-client",
    "etcd-peer",
    "etcd-server",
    "front-proxy-client",
    "kubelet.conf",
    "scheduler.conf",
];

fn ski_missing_on_kubeadm_leaves() -> Vec<(String, String)> {
    KUBEADM_LEAVES
        .iter()
        .map(|l| ("ski-missing".to_string(), l.to_string()))
        .collect()
}

/// A flag's value in a manifest, read with PyYAML (an independent parser).
fn pyyaml_flag(manifest: &Path, flag: &str) -> String {
    let out = tool_ok(
        "python3",
        [
            "-c",
            "import sys, yaml\n\
             d = yaml.safe_load(open(sys.argv[1]))\n\
             c = d['spec']['containers'][0]\n\
             if sys.argv[2] == 'image':\n    print(c['image'].rsplit(':', 1)[1]); sys.exit()\n\
             for a in c['command']:\n    \
               if a.startswith(sys.argv[2] + '='):\n        print(a.split('=', 1)[1])",
            s(manifest),
            flag,
        ],
        None,
    );
    String::from_utf8(out).unwrap().trim().to_string()
}

#[test]
fn fixture_node_is_discovered_and_checked_as_1_28() {
    let dir = tempfile::tempdir().unwrap();
    let root = node_root(dir.path(), true);
    let before = snapshot(&root);
    let (code, r) = verify_root(&root);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["apiVersion"], "kpki/v1alpha2");
    // The inputs, each with where it came from.
    let manifests = root.join("etc/kubernetes/manifests");
    let api = manifests.join("kube-apiserver.yaml");
    let manifest_origin = |o: &Value, file: &Path, flag: &str| {
        assert_eq!(o["source"], "manifest", "{o}");
        assert_eq!(o["file"], s(file), "{o}");
        assert_eq!(o["flag"], flag, "{o}");
    };
    let (v, o) = input(&r, "node_name");
    assert_eq!(v, "cp-1");
    manifest_origin(o, &manifests.join("etcd.yaml"), "--name");
    let (v, o) = input(&r, "advertise_address");
    assert_eq!(v, pyyaml_flag(&api, "--advertise-address"));
    assert_eq!(v, "10.0.0.10");
    manifest_origin(o, &api, "--advertise-address");
    let (v, o) = input(&r, "bind_port");
    assert_eq!(v, pyyaml_flag(&api, "--secure-port"));
    assert_eq!(v, "6443");
    manifest_origin(o, &api, "--secure-port");
    let (v, o) = input(&r, "service_cidrs");
    assert_eq!(v, pyyaml_flag(&api, "--service-cluster-ip-range"));
    assert_eq!(v, "10.96.0.0/12");
    manifest_origin(o, &api, "--service-cluster-ip-range");
    let (v, o) = input(&r, "kubernetes_version");
    assert_eq!(v, pyyaml_flag(&api, "image"));
    assert_eq!(v, "v1.28.4");
    manifest_origin(o, &api, "image");
    assert_eq!(input(&r, "target").0, "v1.28");
    // The control-plane endpoint is admin.conf's server (not the local endpoint).
    let (v, o) = input(&r, "control_plane_endpoint");
    assert_eq!(v, "k8s.example.internal:6443");
    assert_eq!(o["source"], "tree", "{o}");
    assert!(
        kubeconfig_json(&root.join("etc/kubernetes/admin.conf"))["clusters"][0]["cluster"]
            ["server"]
            .as_str()
            .unwrap()
            .contains("k8s.example.internal:6443")
    );
    let (v, o) = input(&r, "dns_domain");
    assert_eq!(v, "cluster.local");
    assert_eq!(o["source"], "kubelet-config", "{o}");
    assert_eq!(o["field"], "clusterDomain");
    let (v, _) = input(&r, "cert_dir");
    assert_eq!(v, s(&root.join("etc/kubernetes/pki")));
    let (v, _) = input(&r, "etcd_client_urls");
    assert_eq!(v, "https://10.0.0.10:2379");
    // certSANs live in the cluster, not on the node: the apiserver certificate keeps them.
    let sans: Vec<&str> = r["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["input"] == "apiserver_extra_san")
        .map(|i| i["value"].as_str().unwrap())
        .collect();
    assert_eq!(sans, ["extra.example.com", "192.0.2.7"]);
    // The 1.28 layout: no super-admin.conf, 1.28's O values. Only kubeadm's missing SKIs.
    assert_eq!(r["summary"]["entries"], 15, "{r:#}");
    assert_eq!(pairs(&r, "error"), vec![], "{r:#}");
    assert_eq!(
        pairs(&r, "warning"),
        ski_missing_on_kubeadm_leaves(),
        "{r:#}"
    );
    assert_eq!(pairs(&r, "info"), vec![], "{r:#}");
    // The text report starts with the same inputs.
    let text = kpki_ok(["verify", "--root", s(&root), "--now", NOW]);
    assert!(text.starts_with("INPUT "), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("node_name ")
            && l.contains("cp-1")
            && l.ends_with("etcd.yaml --name")),
        "{text}"
    );
    // Verify wrote nothing.
    assert_eq!(changed(&before, &snapshot(&root)), Default::default());
}

#[test]
fn kpki_made_tree_with_the_node_inputs_has_no_finding() {
    let dir = tempfile::tempdir().unwrap();
    let root = node_root(dir.path(), false);
    // The control-plane endpoint lives only in kubeconfigs, which do not exist yet: given.
    let out = kpki_ok([
        "init",
        "--root",
        s(&root),
        "--control-plane-endpoint",
        "k8s.example.internal:6443",
        "--now",
        NOW,
    ]);
    assert!(out.contains("following kubeadm v1.28"), "{out}");
    let pki = root.join("etc/kubernetes/pki");
    // Written under the root, for node cp-1 at 10.0.0.10, in the 1.28 layout.
    assert!(!root.join("etc/kubernetes/super-admin.conf").exists());
    let server = facts(&pki.join("etcd/server.crt"));
    assert_eq!(server.cn, ["cp-1"]);
    assert!(server.dns_set().contains("cp-1"));
    let api = facts(&pki.join("apiserver.crt"));
    assert!(api.ip_set().contains(&"10.0.0.10".parse().unwrap()));
    assert!(api.dns_set().contains("k8s.example.internal"));
    assert!(api.ip_set().contains(&"10.96.0.1".parse().unwrap()));
    for leaf in LEAVES {
        let ca = pki.join(format!("{}.crt", leaf.ca));
        let cert = pki.join(format!("{}.crt", leaf.path));
        let out = Command::new("openssl")
            .args(["verify", "-attime", "1795860000", "-CAfile"])
            .args([&ca, &cert])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}: {:?}", leaf.path, out);
    }
    let (code, r) = verify_root(&root);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["findings"], Value::Array(vec![]), "{r:#}");
    assert_eq!(input(&r, "node_name").0, "cp-1");
    assert_eq!(
        input(&r, "control_plane_endpoint").0,
        "k8s.example.internal:6443"
    );
}

/// One line of a manifest or the kubelet config changed, the finding it must give alone, and an
/// independent confirmation that the fault is real.
struct Fault {
    file: &'static str,
    from: &'static str,
    to: &'static str,
    code: &'static str,
    entry: &'static str,
    confirm: fn(&Path),
}

fn pki(root: &Path, rel: &str) -> PathBuf {
    root.join("etc/kubernetes/pki").join(rel)
}

fn fails_to_verify(ca: &Path, cert: &Path) -> bool {
    !Command::new("openssl")
        .args(["verify", "-attime", "1795860000", "-CAfile"])
        .args([ca, cert])
        .output()
        .unwrap()
        .status
        .success()
}

/// A certificate's subjectAltName extension as openssl prints it.
fn openssl_sans(cert: &Path) -> String {
    openssl(["x509", "-noout", "-ext", "subjectAltName", "-in", s(cert)])
}

fn admin_client_cert(root: &Path) -> PathBuf {
    let kc = kubeconfig_json(&root.join("etc/kubernetes/admin.conf"));
    let pem = b64decode(
        kc["users"][0]["user"]["client-certificate-data"]
            .as_str()
            .unwrap(),
    );
    let p = root.join("admin-client.crt");
    fs::write(&p, pem).unwrap();
    p
}

const FAULTS: &[Fault] = &[
    Fault {
        file: "etc/kubernetes/manifests/kube-apiserver.yaml",
        from: "--client-ca-file=/etc/kubernetes/pki/ca.crt",
        to: "--client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt",
        code: "wiring-wrong-ca",
        entry: "kube-apiserver --client-ca-file",
        confirm: |r| {
            assert!(fails_to_verify(
                &pki(r, "front-proxy-ca.crt"),
                &admin_client_cert(r)
            ))
        },
    },
    Fault {
        file: "etc/kubernetes/manifests/kube-apiserver.yaml",
        from: "--requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt",
        to: "--requestheader-client-ca-file=/etc/kubernetes/pki/ca.crt",
        code: "wiring-wrong-ca",
        entry: "kube-apiserver --requestheader-client-ca-file",
        confirm: |r| {
            assert!(fails_to_verify(
                &pki(r, "ca.crt"),
                &pki(r, "front-proxy-client.crt")
            ))
        },
    },
    Fault {
        file: "etc/kubernetes/manifests/kube-apiserver.yaml",
        from: "--requestheader-allowed-names=front-proxy-client",
        to: "--requestheader-allowed-names=front-proxy",
        code: "wiring-allowed-names",
        entry: "kube-apiserver --requestheader-allowed-names",
        confirm: |r| {
            let subject = openssl_name(&pki(r, "front-proxy-client.crt"), "subject");
            assert!(subject.ends_with(":front-proxy-client"), "{subject}");
        },
    },
    Fault {
        file: "etc/kubernetes/manifests/kube-apiserver.yaml",
        from: "--service-account-key-file=/etc/kubernetes/pki/sa.pub",
        to: "--service-account-key-file=/etc/kubernetes/pki/front-proxy-client.key",
        code: "wiring-key-mismatch",
        entry: "kube-apiserver --service-account-key-file",
        confirm: |r| {
            assert_ne!(
                pubkey_of_key(&pki(r, "front-proxy-client.key")),
                pubkey_of_key(&pki(r, "sa.key"))
            )
        },
    },
    Fault {
        file: "etc/kubernetes/manifests/kube-apiserver.yaml",
        from: "--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt",
        to: "--etcd-cafile=/etc/kubernetes/pki/ca.crt",
        code: "wiring-wrong-ca",
        entry: "kube-apiserver --etcd-cafile",
        confirm: |r| {
            assert!(fails_to_verify(
                &pki(r, "ca.crt"),
                &pki(r, "etcd/server.crt")
            ))
        },
    },
    Fault {
        file: "etc/kubernetes/manifests/kube-apiserver.yaml",
        from: "--tls-cert-file=/etc/kubernetes/pki/apiserver.crt",
        to: "--tls-cert-file=/etc/kubernetes/pki/apiserver-new.crt",
        code: "wiring-file-missing",
        entry: "kube-apiserver --tls-cert-file",
        confirm: |r| assert!(!pki(r, "apiserver-new.crt").exists()),
    },
    Fault {
        file: "etc/kubernetes/manifests/kube-apiserver.yaml",
        from: "--proxy-client-key-file=/etc/kubernetes/pki/front-proxy-client.key",
        to: "--proxy-client-key-file=/etc/kubernetes/pki/front-proxy-ca.key",
        code: "wiring-key-mismatch",
        entry: "kube-apiserver --proxy-client-key-file",
        confirm: |r| {
            assert_ne!(
                pubkey_of_key(&pki(r, "front-proxy-ca.key")),
                pubkey_of_cert(&pki(r, "front-proxy-client.crt"))
            )
        },
    },
    Fault {
        file: "etc/kubernetes/manifests/kube-apiserver.yaml",
        from: "--kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt",
        to: "--kubelet-client-certificate=/etc/kubernetes/pki/apiserver-etcd-client.crt",
        code: "wiring-wrong-issuer",
        entry: "kube-apiserver --kubelet-client-certificate",
        confirm: |r| {
            assert!(fails_to_verify(
                &pki(r, "ca.crt"),
                &pki(r, "apiserver-etcd-client.crt")
            ))
        },
    },
    Fault {
        file: "etc/kubernetes/manifests/kube-apiserver.yaml",
        from: "--tls-private-key-file=/etc/kubernetes/pki/apiserver.key",
        to: "--tls-private-key-file=/etc/kubernetes/pki/apiserver-kubelet-client.key",
        code: "wiring-key-mismatch",
        entry: "kube-apiserver --tls-private-key-file",
        confirm: |r| {
            assert_ne!(
                pubkey_of_key(&pki(r, "apiserver-kubelet-client.key")),
                pubkey_of_cert(&pki(r, "apiserver.crt"))
            )
        },
    },
    Fault {
        file: "etc/kubernetes/manifests/kube-controller-manager.yaml",
        from: "--root-ca-file=/etc/kubernetes/pki/ca.crt",
        to: "--root-ca-file=/etc/kubernetes/pki/etcd/ca.crt",
        code: "wiring-wrong-ca",
        entry: "kube-controller-manager --root-ca-file",
        confirm: |r| {
            assert!(fails_to_verify(
                &pki(r, "etcd/ca.crt"),
                &pki(r, "apiserver.crt")
            ))
        },
    },
    Fault {
        file: "etc/kubernetes/manifests/kube-controller-manager.yaml",
        from: "--cluster-signing-cert-file=/etc/kubernetes/pki/ca.crt",
        to: "--cluster-signing-cert-file=/etc/kubernetes/pki/front-proxy-ca.crt",
        code: "wiring-wrong-ca",
        entry: "kube-controller-manager --cluster-signing-cert-file",
        confirm: |r| {
            assert_ne!(
                pubkey_of_cert(&pki(r, "front-proxy-ca.crt")),
                pubkey_of_key(&pki(r, "ca.key"))
            )
        },
    },
    Fault {
        file: "etc/kubernetes/manifests/kube-controller-manager.yaml",
        from: "--service-account-private-key-file=/etc/kubernetes/pki/sa.key",
        to: "--service-account-private-key-file=/etc/kubernetes/pki/apiserver.key",
        code: "wiring-key-mismatch",
        entry: "kube-controller-manager --service-account-private-key-file",
        confirm: |r| {
            let sa_pub = openssl(["pkey", "-pubin", "-in", s(&pki(r, "sa.pub")), "-pubout"]);
            assert_ne!(pubkey_of_key(&pki(r, "apiserver.key")), sa_pub)
        },
    },
    Fault {
        file: "etc/kubernetes/manifests/kube-scheduler.yaml",
        from: "--kubeconfig=/etc/kubernetes/scheduler.conf",
        to: "--kubeconfig=/etc/kubernetes/scheduler-old.conf",
        code: "wiring-file-missing",
        entry: "kube-scheduler --kubeconfig",
        confirm: |r| assert!(!r.join("etc/kubernetes/scheduler-old.conf").exists()),
    },
    Fault {
        file: "etc/kubernetes/manifests/kube-controller-manager.yaml",
        from: "--authentication-kubeconfig=/etc/kubernetes/controller-manager.conf",
        to: "--authentication-kubeconfig=/etc/kubernetes/admin.conf",
        code: "wiring-not-managed",
        entry: "kube-controller-manager --authentication-kubeconfig",
        confirm: |r| {
            let subject = openssl_name(&admin_client_cert(r), "subject");
            assert!(subject.contains(":kubernetes-admin"), "{subject}");
        },
    },
    Fault {
        file: "etc/kubernetes/manifests/etcd.yaml",
        from: "--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt",
        to: "--trusted-ca-file=/etc/kubernetes/pki/ca.crt",
        code: "wiring-wrong-ca",
        entry: "etcd --trusted-ca-file",
        confirm: |r| {
            assert!(fails_to_verify(
                &pki(r, "ca.crt"),
                &pki(r, "apiserver-etcd-client.crt")
            ))
        },
    },
    Fault {
        file: "etc/kubernetes/manifests/etcd.yaml",
        from: "--peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt",
        to: "--peer-cert-file=/etc/kubernetes/pki/etcd/server.crt",
        code: "wiring-key-mismatch",
        entry: "etcd --peer-cert-file",
        confirm: |r| {
            assert_ne!(
                pubkey_of_key(&pki(r, "etcd/peer.key")),
                pubkey_of_cert(&pki(r, "etcd/server.crt"))
            )
        },
    },
    Fault {
        file: "etc/kubernetes/manifests/etcd.yaml",
        from: "--advertise-client-urls=https://10.0.0.10:2379",
        to: "--advertise-client-urls=https://10.0.0.11:2379",
        code: "wiring-san-missing",
        entry: "etcd --advertise-client-urls",
        confirm: |r| {
            let ips = facts(&pki(r, "etcd/server.crt")).ip_set();
            assert!(!ips.contains(&"10.0.0.11".parse().unwrap()), "{ips:?}");
        },
    },
    Fault {
        file: "etc/kubernetes/manifests/etcd.yaml",
        from: "--peer-trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt",
        to: "--peer-trusted-ca-file=/etc/kubernetes/pki/ca.crt",
        code: "wiring-wrong-ca",
        entry: "etcd --peer-trusted-ca-file",
        confirm: |r| assert!(fails_to_verify(&pki(r, "ca.crt"), &pki(r, "etcd/peer.crt"))),
    },
    Fault {
        file: "etc/kubernetes/manifests/etcd.yaml",
        from: "--initial-advertise-peer-urls=https://10.0.0.10:2380",
        to: "--initial-advertise-peer-urls=https://10.0.0.12:2380",
        code: "wiring-san-missing",
        entry: "etcd --initial-advertise-peer-urls",
        confirm: |r| {
            let sans = openssl_sans(&pki(r, "etcd/peer.crt"));
            assert!(!sans.contains("10.0.0.12"), "{sans}");
        },
    },
    Fault {
        file: "etc/kubernetes/manifests/etcd.yaml",
        from: "--listen-client-urls=https://127.0.0.1:2379,https://10.0.0.10:2379",
        to: "--listen-client-urls=https://127.0.0.1:2379,https://10.0.0.13:2379",
        code: "wiring-san-missing",
        entry: "etcd --listen-client-urls",
        confirm: |r| {
            let sans = openssl_sans(&pki(r, "etcd/server.crt"));
            assert!(!sans.contains("10.0.0.13"), "{sans}");
        },
    },
    Fault {
        file: "etc/kubernetes/manifests/etcd.yaml",
        from: "--key-file=/etc/kubernetes/pki/etcd/server.key",
        to: "--key-file=/etc/kubernetes/pki/etcd/peer.key",
        code: "wiring-key-mismatch",
        entry: "etcd --key-file",
        confirm: |r| {
            assert_ne!(
                pubkey_of_key(&pki(r, "etcd/peer.key")),
                pubkey_of_cert(&pki(r, "etcd/server.crt"))
            )
        },
    },
    Fault {
        file: "etc/kubernetes/manifests/kube-apiserver.yaml",
        from: "--etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt",
        to: "--etcd-certfile=/etc/kubernetes/pki/apiserver-kubelet-client.crt",
        code: "wiring-wrong-issuer",
        entry: "kube-apiserver --etcd-certfile",
        confirm: |r| {
            assert!(fails_to_verify(
                &pki(r, "etcd/ca.crt"),
                &pki(r, "apiserver-kubelet-client.crt")
            ))
        },
    },
    Fault {
        file: "etc/kubernetes/manifests/kube-apiserver.yaml",
        from: "--service-account-signing-key-file=/etc/kubernetes/pki/sa.key",
        to: "--service-account-signing-key-file=/etc/kubernetes/pki/apiserver.key",
        code: "wiring-key-mismatch",
        entry: "kube-apiserver --service-account-signing-key-file",
        confirm: |r| {
            let sa_pub = openssl(["pkey", "-pubin", "-in", s(&pki(r, "sa.pub")), "-pubout"]);
            assert_ne!(pubkey_of_key(&pki(r, "apiserver.key")), sa_pub)
        },
    },
    Fault {
        file: "etc/kubernetes/manifests/kube-apiserver.yaml",
        from: "--kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key",
        to: "--kubelet-client-key=/etc/kubernetes/pki/apiserver.key",
        code: "wiring-key-mismatch",
        entry: "kube-apiserver --kubelet-client-key",
        confirm: |r| {
            assert_ne!(
                pubkey_of_key(&pki(r, "apiserver.key")),
                pubkey_of_cert(&pki(r, "apiserver-kubelet-client.crt"))
            )
        },
    },
    Fault {
        file: "etc/kubernetes/manifests/kube-apiserver.yaml",
        from: "--proxy-client-cert-file=/etc/kubernetes/pki/front-proxy-client.crt",
        to: "--proxy-client-cert-file=/etc/kubernetes/pki/apiserver-kubelet-client.crt",
        code: "wiring-wrong-issuer",
        entry: "kube-apiserver --proxy-client-cert-file",
        confirm: |r| {
            assert!(fails_to_verify(
                &pki(r, "front-proxy-ca.crt"),
                &pki(r, "apiserver-kubelet-client.crt")
            ))
        },
    },
    Fault {
        file: "etc/kubernetes/manifests/kube-controller-manager.yaml",
        from: "--cluster-signing-key-file=/etc/kubernetes/pki/ca.key",
        to: "--cluster-signing-key-file=/etc/kubernetes/pki/front-proxy-ca.key",
        code: "wiring-key-mismatch",
        entry: "kube-controller-manager --cluster-signing-key-file",
        confirm: |r| {
            assert_ne!(
                pubkey_of_key(&pki(r, "front-proxy-ca.key")),
                pubkey_of_cert(&pki(r, "ca.crt"))
            )
        },
    },
    Fault {
        file: "var/lib/kubelet/config.yaml",
        from: "clientCAFile: /etc/kubernetes/pki/ca.crt",
        to: "clientCAFile: /etc/kubernetes/pki/front-proxy-ca.crt",
        code: "wiring-wrong-ca",
        entry: "kubelet authentication.x509.clientCAFile",
        confirm: |r| {
            assert!(fails_to_verify(
                &pki(r, "front-proxy-ca.crt"),
                &pki(r, "apiserver-kubelet-client.crt")
            ))
        },
    },
    Fault {
        file: "etc/kubernetes/manifests/kube-apiserver.yaml",
        from: "--etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key",
        to: "--etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.crt",
        code: "wiring-file-invalid",
        entry: "kube-apiserver --etcd-keyfile",
        confirm: |r| {
            let out = Command::new("openssl")
                .args(["pkey", "-noout", "-in"])
                .arg(pki(r, "apiserver-etcd-client.crt"))
                .output()
                .unwrap();
            assert!(!out.status.success());
        },
    },
    Fault {
        file: "etc/kubernetes/manifests/kube-controller-manager.yaml",
        from: "--root-ca-file=/etc/kubernetes/pki/ca.crt",
        to: "--root-ca-file=",
        code: "wiring-flag-absent",
        entry: "kube-controller-manager --root-ca-file",
        confirm: |r| {
            let v = pyyaml_flag(
                &r.join("etc/kubernetes/manifests/kube-controller-manager.yaml"),
                "--root-ca-file",
            );
            assert_eq!(v, "");
        },
    },
    Fault {
        file: "var/lib/kubelet/config.yaml",
        from: "rotateCertificates: true",
        to: "rotateCertificates: false",
        code: "kubelet-rotation-off",
        entry: "kubelet rotateCertificates",
        confirm: |r| {
            let v = tool_ok(
                "python3",
                [
                    "-c",
                    "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))['rotateCertificates'])",
                    s(&r.join("var/lib/kubelet/config.yaml")),
                ],
                None,
            );
            assert_eq!(String::from_utf8(v).unwrap().trim(), "False");
        },
    },
];

#[test]
fn wiring_fault_catalogue() {
    assert!(FAULTS.len() >= 12);
    let dir = tempfile::tempdir().unwrap();
    let root = node_root(dir.path(), true);
    let baseline = ski_missing_on_kubeadm_leaves();
    let mut codes = std::collections::BTreeSet::new();
    for f in FAULTS {
        let path = root.join(f.file);
        let original = fs::read_to_string(&path).unwrap();
        assert_eq!(
            original.matches(f.from).count(),
            1,
            "{}: {}",
            f.file,
            f.from
        );
        fs::write(&path, original.replace(f.from, f.to)).unwrap();
        (f.confirm)(&root);
        let before = snapshot(&root);
        let (code, r) = verify_root(&root);
        let found: Vec<&Value> = r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| {
                !baseline.contains(&(
                    x["code"].as_str().unwrap().to_string(),
                    x["entry"].as_str().unwrap().to_string(),
                ))
            })
            .collect();
        assert_eq!(found.len(), 1, "{} -> {}: {found:#?}", f.from, f.to);
        let x = found[0];
        assert_eq!(x["code"], f.code, "{} -> {}: {x:#}", f.from, f.to);
        assert_eq!(x["entry"], f.entry, "{x:#}");
        assert_eq!(x["path"], s(&path), "{x:#}");
        let flag = f.entry.split(' ').nth(1).unwrap();
        assert!(
            x["message"]
                .as_str()
                .unwrap()
                .contains(flag.trim_start_matches("authentication.x509.")),
            "{x:#}"
        );
        let want_code = if x["severity"] == "error" { 1 } else { 0 };
        assert_eq!(code, want_code, "{x:#}");
        // The baseline is all there still: nothing hidden by the fault.
        assert_eq!(
            pairs(&r, "warning")
                .iter()
                .filter(|p| p.0 == "ski-missing")
                .count(),
            baseline.len()
        );
        assert_eq!(changed(&before, &snapshot(&root)), Default::default());
        codes.insert(f.code);
        fs::write(&path, original).unwrap();
    }
    println!("{} faults, {} codes: {codes:?}", FAULTS.len(), codes.len());
    assert!(codes.len() >= 8, "{codes:?}");
    // Restored: clean again.
    let (code, r) = verify_root(&root);
    assert_eq!((code, pairs(&r, "warning")), (0, baseline.clone()));

    // An advertise address the apiserver certificate does not cover: the wiring finding names
    // the flag; the node's address is also the input, so the tree's certificates miss it too.
    let api_manifest = root.join("etc/kubernetes/manifests/kube-apiserver.yaml");
    let original = fs::read_to_string(&api_manifest).unwrap();
    fs::write(
        &api_manifest,
        original.replace(
            "--advertise-address=10.0.0.10",
            "--advertise-address=10.0.0.99",
        ),
    )
    .unwrap();
    let sans = openssl_sans(&pki(&root, "apiserver.crt"));
    assert!(!sans.contains("10.0.0.99"), "{sans}");
    let (code, r) = verify_root(&root);
    assert_eq!(code, 1, "{r:#}");
    let e = |c: &str, en: &str| (c.to_string(), en.to_string());
    assert_eq!(
        pairs(&r, "error"),
        vec![
            e("san-missing", "apiserver"),
            e("san-missing", "etcd-peer"),
            e("san-missing", "etcd-server"),
            e("wiring-san-missing", "kube-apiserver --advertise-address"),
        ],
        "{r:#}"
    );
    let w = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "wiring-san-missing")
        .unwrap();
    assert_eq!(w["path"], s(&api_manifest));
    assert!(
        w["message"].as_str().unwrap().contains("--tls-cert-file"),
        "{w:#}"
    );
    assert_eq!(input(&r, "advertise_address").0, "10.0.0.99");
    fs::write(&api_manifest, original).unwrap();

    // A kubeconfig that trusts another CA (a copy with the front-proxy CA embedded).
    let etc = root.join("etc/kubernetes");
    let mut kc = kubeconfig_json(&etc.join("scheduler.conf"));
    kc["clusters"][0]["cluster"]["certificate-authority-data"] = Value::String(base64_of(
        &fs::read(pki(&root, "front-proxy-ca.crt")).unwrap(),
    ));
    fs::write(
        etc.join("scheduler-foreign.conf"),
        serde_json::to_vec(&kc).unwrap(),
    )
    .unwrap();
    chmod(&etc.join("scheduler-foreign.conf"), 0o600);
    let manifest = etc.join("manifests/kube-scheduler.yaml");
    let original = fs::read_to_string(&manifest).unwrap();
    fs::write(
        &manifest,
        original.replace(
            "--authorization-kubeconfig=/etc/kubernetes/scheduler.conf",
            "--authorization-kubeconfig=/etc/kubernetes/scheduler-foreign.conf",
        ),
    )
    .unwrap();
    let (code, r) = verify_root(&root);
    assert_eq!(code, 1);
    let extra: Vec<(String, String)> = pairs(&r, "error");
    assert_eq!(
        extra,
        vec![(
            "wiring-kubeconfig-untrusted".to_string(),
            "kube-scheduler --authorization-kubeconfig".to_string()
        )],
        "{r:#}"
    );
    fs::write(&manifest, original).unwrap();

    // External-CA mode: no ca.key, and kubeadm's empty signing flags are right; with the key
    // present the same empty flags mean kubelet certificates go unsigned.
    let manifest = etc.join("manifests/kube-controller-manager.yaml");
    let original = fs::read_to_string(&manifest).unwrap();
    fs::write(
        &manifest,
        original
            .replace(
                "--cluster-signing-cert-file=/etc/kubernetes/pki/ca.crt",
                "--cluster-signing-cert-file=",
            )
            .replace(
                "--cluster-signing-key-file=/etc/kubernetes/pki/ca.key",
                "--cluster-signing-key-file=",
            ),
    )
    .unwrap();
    let (code, r) = verify_root(&root);
    assert_eq!(code, 0);
    let absent: Vec<(String, String)> = pairs(&r, "warning")
        .into_iter()
        .filter(|p| p.0 != "ski-missing")
        .collect();
    assert_eq!(
        absent,
        vec![
            (
                "wiring-flag-absent".to_string(),
                "kube-controller-manager --cluster-signing-cert-file".to_string()
            ),
            (
                "wiring-flag-absent".to_string(),
                "kube-controller-manager --cluster-signing-key-file".to_string()
            ),
        ],
        "{r:#}"
    );
    fs::rename(pki(&root, "ca.key"), root.join("ca.key.offline")).unwrap();
    let (code, r) = verify_root(&root);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(pairs(&r, "warning"), baseline, "{r:#}");
    assert_eq!(
        pairs(&r, "info"),
        vec![("external-ca".to_string(), "ca".to_string())]
    );
}

fn base64_of(bytes: &[u8]) -> String {
    tool_ok("base64", ["-w0"], Some(bytes))
        .into_iter()
        .map(char::from)
        .collect::<String>()
        .trim()
        .to_string()
}

fn host_name() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn plan_and_renew_keep_the_node_name_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let root = node_root(dir.path(), true);
    assert_ne!(host_name(), "cp-1", "the test needs a host not named cp-1");
    let etcd_manifest = root.join("etc/kubernetes/manifests/etcd.yaml");
    // plan: the table and the JSON name the node and where its name came from.
    let out = kpki_ok(["plan", "--root", s(&root), "--now", NOW]);
    let row = out
        .lines()
        .find(|l| l.starts_with("node_name "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        row.contains("cp-1") && row.ends_with("etcd.yaml --name"),
        "{row}"
    );
    assert!(!out.contains(&format!(" {} ", host_name())), "{out}");
    let (code, doc) = run_json(&["plan", "--root", s(&root), "--now", NOW, "-o", "json"]);
    assert_eq!(code, 0);
    assert_eq!(doc["apiVersion"], "kpki/v1alpha2");
    let (v, o) = input(&doc, "node_name");
    assert_eq!(v, "cp-1");
    assert_eq!(o["file"], s(&etcd_manifest));
    assert!(
        doc["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["action"] == "reuse"),
        "{doc:#}"
    );

    // renew all: says so, and re-issues for cp-1 (and keeps the tree's extra SANs).
    let pki = root.join("etc/kubernetes/pki");
    let before = snapshot(&root);
    let out = kpki_ok(["certs", "renew", "all", "--root", s(&root), "--now", NOW]);
    let row = out
        .lines()
        .find(|l| l.starts_with("node_name "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        row.contains("cp-1") && row.ends_with("etcd.yaml --name"),
        "{row}"
    );
    assert!(out.contains("etcd-server renewed"), "{out}");
    let after = snapshot(&root);
    let changed = changed(&before, &after);
    // Everything written is under the root's cert and kubeconfig dirs, nothing beside the node;
    // kubelet.conf is the kubelet's (renew all leaves it, as kubeadm does).
    assert!(
        changed.iter().all(|p| p.starts_with("etc/kubernetes/")),
        "{changed:?}"
    );
    assert!(changed.contains("etc/kubernetes/pki/etcd/server.crt"));
    assert!(!changed.contains("etc/kubernetes/kubelet.conf"));
    assert!(!changed
        .iter()
        .any(|p| p.contains("manifests") || p.starts_with("var/")));
    let server = facts(&pki.join("etcd/server.crt"));
    assert_eq!(server.cn, ["cp-1"]);
    assert!(server.dns_set().contains("cp-1"));
    let peer = facts(&pki.join("etcd/peer.crt"));
    assert_eq!(peer.cn, ["cp-1"]);
    let api = facts(&pki.join("apiserver.crt"));
    for dns in ["cp-1", "extra.example.com", "k8s.example.internal"] {
        assert!(api.dns_set().contains(dns), "{dns}: {:?}", api.dns);
    }
    assert!(api.ip_set().contains(&"192.0.2.7".parse().unwrap()));
    assert_verifies(
        &pki.join("etcd/ca.crt"),
        &pki.join("etcd/server.crt"),
        "sslserver",
    );
    assert_key_matches(&pki.join("etcd/server.key"), &pki.join("etcd/server.crt"));
    // Checked again from the node: only kubelet.conf (not renewed) still lacks an SKI.
    let (code, r) = verify_root(&root);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(
        pairs(&r, "warning"),
        vec![("ski-missing".to_string(), "kubelet.conf".to_string())],
        "{r:#}"
    );
    assert_eq!(pairs(&r, "info"), vec![], "{r:#}");
}

/// The manifests dir with one file replaced (or added).
fn with_file(root: &Path, rel: &str, bytes: &[u8]) -> Vec<u8> {
    let p = root.join(rel);
    let old = fs::read(&p).unwrap_or_default();
    fs::write(&p, bytes).unwrap();
    old
}

/// Peak RSS (KiB) of a kpki run, measured by Python's getrusage of its child.
fn peak_rss_kib(args: &[&str]) -> (i32, u64) {
    let out = tool_ok(
        "python3",
        [
            "-c",
            "import resource, subprocess, sys\n\
             r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n\
             print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)",
        ]
        .into_iter()
        .map(String::from)
        .chain([env!("CARGO_BIN_EXE_kpki").to_string()])
        .chain(args.iter().map(|a| a.to_string())),
        None,
    );
    let text = String::from_utf8(out).unwrap();
    let mut it = text.split_whitespace();
    (
        it.next().unwrap().parse().unwrap(),
        it.next().unwrap().parse().unwrap(),
    )
}

#[test]
fn bad_node_files_are_findings_never_crashes_or_writes() {
    let dir = tempfile::tempdir().unwrap();
    let root = node_root(dir.path(), true);
    let manifests = "etc/kubernetes/manifests";
    let baseline = ski_missing_on_kubeadm_leaves();
    let check = |what: &str, want: &[(&str, &str)], want_code: i32| {
        let before = snapshot(&root);
        let (code, r) = verify_root(&root);
        let mut got: Vec<(String, String)> = r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["code"] != "ski-missing")
            .map(|f| {
                (
                    f["code"].as_str().unwrap().to_string(),
                    f["path"]
                        .as_str()
                        .unwrap()
                        .rsplit('/')
                        .next()
                        .unwrap()
                        .to_string(),
                )
            })
            .collect();
        got.sort();
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(got, want, "{what}: {r:#}");
        assert_eq!(code, want_code, "{what}: {r:#}");
        // plan runs too, warns on stderr, writes nothing.
        let out = kpki(["plan", "--root", s(&root), "--now", NOW]);
        assert!(out.status.success(), "{what}: {out:?}");
        assert_eq!(
            changed(&before, &snapshot(&root)),
            Default::default(),
            "{what}"
        );
        r
    };

    // Malformed YAML: a finding on that file; the rest of the node still gives the inputs.
    let old = with_file(
        &root,
        &format!("{manifests}/kube-scheduler.yaml"),
        b"spec: [unclosed\n  - x: {\n",
    );
    let r = check(
        "malformed YAML",
        &[("manifest-invalid", "kube-scheduler.yaml")],
        1,
    );
    assert_eq!(input(&r, "node_name").0, "cp-1");
    with_file(&root, &format!("{manifests}/kube-scheduler.yaml"), &old);

    // A known component without a command.
    let old = with_file(
        &root,
        &format!("{manifests}/kube-controller-manager.yaml"),
        b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-controller-manager\nspec:\n  containers:\n  - name: kube-controller-manager\n    image: registry.k8s.io/kube-controller-manager:v1.28.4\n",
    );
    let r = check(
        "no command",
        &[("manifest-invalid", "kube-controller-manager.yaml")],
        1,
    );
    let f = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "manifest-invalid")
        .unwrap();
    assert!(
        f["message"].as_str().unwrap().contains("without a command"),
        "{f}"
    );
    with_file(
        &root,
        &format!("{manifests}/kube-controller-manager.yaml"),
        &old,
    );

    // An unknown component without a command (kube-vip) and a hidden file: ignored.
    with_file(
        &root,
        &format!("{manifests}/kube-vip.yaml"),
        b"kind: Pod\nspec:\n  containers:\n  - name: kube-vip\n    args: [manager]\n",
    );
    with_file(
        &root,
        &format!("{manifests}/.kube-apiserver.yaml.swp"),
        b"\x00\x01garbage",
    );
    // Flags and kubelet fields kpki does not know (a newer release's): ignored, even naming a
    // file that is not there.
    let api_path = format!("{manifests}/kube-apiserver.yaml");
    let api_old = fs::read_to_string(root.join(&api_path)).unwrap();
    with_file(
        &root,
        &api_path,
        api_old
            .replace(
                "    - --secure-port=6443\n",
                "    - --secure-port=6443\n    - --some-future-ca-file=/etc/kubernetes/pki/nope.crt\n",
            )
            .as_bytes(),
    );
    assert_eq!(
        pyyaml_flag(&root.join(&api_path), "--some-future-ca-file"),
        "/etc/kubernetes/pki/nope.crt"
    );
    let kubelet_old = fs::read(root.join("var/lib/kubelet/config.yaml")).unwrap();
    let mut kubelet_new = kubelet_old.clone();
    kubelet_new.extend(b"someFutureCAFile: /etc/kubernetes/pki/nope.crt\n");
    with_file(&root, "var/lib/kubelet/config.yaml", &kubelet_new);
    check("unknown component, flag and field, hidden file", &[], 0);
    fs::remove_file(root.join(format!("{manifests}/kube-vip.yaml"))).unwrap();
    fs::remove_file(root.join(format!("{manifests}/.kube-apiserver.yaml.swp"))).unwrap();
    with_file(&root, &api_path, api_old.as_bytes());
    with_file(&root, "var/lib/kubelet/config.yaml", &kubelet_old);

    // A backup beside the manifest: the kubelet would run both.
    let api = fs::read(root.join(format!("{manifests}/kube-apiserver.yaml"))).unwrap();
    with_file(&root, &format!("{manifests}/kube-apiserver.yaml.bak"), &api);
    check(
        "backup",
        &[("manifest-duplicate", "kube-apiserver.yaml.bak")],
        0,
    );
    fs::remove_file(root.join(format!("{manifests}/kube-apiserver.yaml.bak"))).unwrap();

    // JSON manifests (converted by PyYAML + json) and `--flag value` forms: the same node.
    for name in [
        "kube-apiserver",
        "etcd",
        "kube-controller-manager",
        "kube-scheduler",
    ] {
        let yaml = root.join(format!("{manifests}/{name}.yaml"));
        let json = tool_ok(
            "python3",
            [
                "-c",
                "import sys, yaml, json\n\
                 d = yaml.safe_load(open(sys.argv[1]))\n\
                 c = d['spec']['containers'][0]\n\
                 out = []\n\
                 for a in c['command']:\n    \
                   if a.startswith('--') and '=' in a and sys.argv[2] == 'split':\n        out += a.split('=', 1)\n    \
                   else:\n        out.append(a)\n\
                 c['command'] = out\n\
                 print(json.dumps(d))",
                s(&yaml),
                if name == "kube-scheduler" { "keep" } else { "split" },
            ],
            None,
        );
        fs::remove_file(&yaml).unwrap();
        fs::write(root.join(format!("{manifests}/{name}.json")), json).unwrap();
    }
    let text = fs::read_to_string(root.join(format!("{manifests}/etcd.json"))).unwrap();
    assert!(text.contains("\"--name\", \"cp-1\""), "{text}");
    let r = check("JSON, --flag value", &[], 0);
    assert_eq!(pairs(&r, "warning"), baseline);
    assert_eq!(input(&r, "node_name").0, "cp-1");
    assert_eq!(input(&r, "advertise_address").0, "10.0.0.10");
    assert_eq!(input(&r, "kubernetes_version").0, "v1.28.4");
    let (_, o) = input(&r, "advertise_address");
    assert_eq!(
        o["file"],
        s(&root.join(format!("{manifests}/kube-apiserver.json")))
    );

    // A 50 MB manifest: not read (bounded), a finding; memory stays small.
    let huge = root.join(format!("{manifests}/zz-huge.yaml"));
    {
        use std::io::Write;
        let mut f = fs::File::create(&huge).unwrap();
        let line = format!("# {}\n", "x".repeat(1021));
        for _ in 0..(50 * 1024) {
            f.write_all(line.as_bytes()).unwrap();
        }
    }
    assert_eq!(fs::metadata(&huge).unwrap().len(), 50 * 1024 * 1024);
    let r = check("50 MB", &[("manifest-invalid", "zz-huge.yaml")], 1);
    let f = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "manifest-invalid")
        .unwrap();
    assert!(
        f["message"].as_str().unwrap().contains("larger than"),
        "{f}"
    );
    let (code, kib) = peak_rss_kib(&["verify", "--root", s(&root), "--now", NOW]);
    assert_eq!(code, 1);
    println!("peak RSS of verify beside a 50 MB manifest: {kib} KiB");
    assert!(kib < 40 * 1024, "{kib} KiB");
    fs::remove_file(&huge).unwrap();

    // The kubelet config: not YAML.
    let old = with_file(&root, "var/lib/kubelet/config.yaml", b"kind: [\n");
    check(
        "kubelet config",
        &[("kubelet-config-invalid", "config.yaml")],
        1,
    );
    with_file(&root, "var/lib/kubelet/config.yaml", &old);

    // Named on the command line but absent: could not run, one line naming it.
    for (flag, missing) in [
        ("--manifests-dir", root.join("nope")),
        ("--kubelet-config", root.join("nope.yaml")),
    ] {
        let (code, err) = kpki_fail([
            "verify",
            "--root",
            s(&root),
            flag,
            s(&missing),
            "--now",
            NOW,
        ]);
        assert_eq!(code, 2, "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("error: ") && err.contains(s(&missing)),
            "{err}"
        );
    }
}

#[test]
fn root_maps_every_path_inside() {
    // kubelet.conf after kubelet-finalize: the client certificate by reference, through the
    // kubelet's link with an absolute target. Under --root both are read inside the root.
    let dir = tempfile::tempdir().unwrap();
    let root = node_root(dir.path(), true);
    let kpki_pki = root.join("var/lib/kubelet/pki");
    fs::create_dir_all(&kpki_pki).unwrap();
    let kc_path = root.join("etc/kubernetes/kubelet.conf");
    let mut kc = kubeconfig_json(&kc_path);
    let user = &mut kc["users"][0]["user"];
    let mut pem = b64decode(user["client-certificate-data"].as_str().unwrap());
    pem.extend(b64decode(user["client-key-data"].as_str().unwrap()));
    fs::write(
        kpki_pki.join("kubelet-client-2026-11-28-09-00-00.pem"),
        &pem,
    )
    .unwrap();
    chmod(
        &kpki_pki.join("kubelet-client-2026-11-28-09-00-00.pem"),
        0o600,
    );
    std::os::unix::fs::symlink(
        "/var/lib/kubelet/pki/kubelet-client-2026-11-28-09-00-00.pem",
        kpki_pki.join("kubelet-client-current.pem"),
    )
    .unwrap();
    *user = serde_json::json!({
        "client-certificate": "/var/lib/kubelet/pki/kubelet-client-current.pem",
        "client-key": "/var/lib/kubelet/pki/kubelet-client-current.pem",
    });
    // kubectl reads and writes kubeconfigs; JSON is valid YAML.
    fs::write(&kc_path, serde_json::to_vec_pretty(&kc).unwrap()).unwrap();
    let (code, r) = verify_root(&root);
    assert_eq!(code, 0, "{r:#}");
    assert!(pairs(&r, "error").is_empty(), "{r:#}");
    assert!(
        pairs(&r, "info").contains(&("kubeconfig-cert-by-reference".into(), "kubelet.conf".into())),
        "{r:#}"
    );
    // The same kubeconfig read without the root points at this host's /var/lib/kubelet, which
    // has no such file: the reference is unreadable (what happens when the root is not mapped).
    let (code, r) = run_json(&[
        "verify",
        "--cert-dir",
        s(&root.join("etc/kubernetes/pki")),
        "--node-name",
        "cp-1",
        "--apiserver-advertise-address",
        "10.0.0.10",
        "--kubeadm-version",
        "1.28",
        "--now",
        NOW,
        "-o",
        "json",
    ]);
    if !Path::new("/var/lib/kubelet/pki/kubelet-client-current.pem").exists() {
        assert_eq!(code, 1, "{r:#}");
        assert!(
            pairs(&r, "error")
                .contains(&("kubeconfig-ref-unreadable".into(), "kubelet.conf".into())),
            "{r:#}"
        );
    }
}

fn can_unshare_mounts() -> bool {
    Command::new("unshare")
        .args(["-m", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs a shell script in a private mount namespace where the node's `/etc` and `/var/lib` are
/// the fixture's (bind mounts that vanish with the namespace).
fn on_the_node(root: &Path, script: &str) -> std::process::Output {
    let full = format!(
        "set -e; mount --bind {} /var/lib; mount --bind {} /etc; {script}",
        s(&root.join("var/lib")),
        s(&root.join("etc")),
    );
    Command::new("unshare")
        .args(["-m", "sh", "-c", &full])
        .env("KPKI", env!("CARGO_BIN_EXE_kpki"))
        .output()
        .unwrap()
}

#[test]
fn verify_with_no_flags_on_the_node_itself() {
    if !can_unshare_mounts() {
        eprintln!("skipped: needs unshare -m (root)");
        return;
    }
    let host_had_kubernetes = Path::new("/etc/kubernetes").exists();
    let dir = tempfile::tempdir().unwrap();
    let root = node_root(dir.path(), true);
    // `kpki verify` and nothing else, on the node: the manifests, kubelet config and tree at
    // their kubeadm paths.
    let out = on_the_node(&root, &format!("exec \"$KPKI\" verify --now {NOW} -o json"));
    let text = String::from_utf8(out.stdout).unwrap();
    let r: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{e}: {text} {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{r:#}");
    let (v, o) = input(&r, "node_name");
    assert_eq!(v, "cp-1");
    assert_eq!(o["file"], "/etc/kubernetes/manifests/etcd.yaml");
    assert_eq!(input(&r, "cert_dir").0, "/etc/kubernetes/pki");
    assert_eq!(input(&r, "target").0, "v1.28");
    assert_eq!(pairs(&r, "error"), vec![], "{r:#}");
    assert_eq!(
        pairs(&r, "warning"),
        ski_missing_on_kubeadm_leaves(),
        "{r:#}"
    );

    // The same node with a fault: found without any flag.
    let manifest = root.join("etc/kubernetes/manifests/kube-apiserver.yaml");
    let original = fs::read_to_string(&manifest).unwrap();
    fs::write(
        &manifest,
        original.replace(
            "--client-ca-file=/etc/kubernetes/pki/ca.crt",
            "--client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt",
        ),
    )
    .unwrap();
    let out = on_the_node(&root, &format!("exec \"$KPKI\" verify --now {NOW}"));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines().any(
            |l| l.starts_with("/etc/kubernetes/manifests/kube-apiserver.yaml")
                && l.contains("wiring-wrong-ca")
        ),
        "{text}"
    );

    // An unrelated tree checked on that node (--cert-dir elsewhere): the node's manifests and
    // kubelet config stay out of it, so no wiring finding and no input from the node.
    let other = dir.path().join("other");
    fs::create_dir(&other).unwrap();
    let pki = other.join("pki");
    let script = format!(
        "\"$KPKI\" init --cert-dir {p} --node-name other-node --apiserver-advertise-address 10.9.9.9 --now {NOW} >/dev/null; \
         exec \"$KPKI\" verify --cert-dir {p} --now {NOW} -o json",
        p = s(&pki)
    );
    let out = on_the_node(&root, &script);
    let text = String::from_utf8(out.stdout).unwrap();
    let r: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{e}: {text} {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{r:#}");
    assert_eq!(r["findings"], Value::Array(vec![]), "{r:#}");
    assert_eq!(input(&r, "node_name").0, "other-node");
    assert_eq!(input(&r, "node_name").1["source"], "tree");
    assert!(
        r["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["origin"]["source"] != "manifest" && i["input"] != "manifests_dir"),
        "{r:#}"
    );
    // Nothing of it reached the host: the bind mounts are gone with the namespace.
    if !host_had_kubernetes {
        assert!(!Path::new("/etc/kubernetes").exists());
    }
}

#[test]
fn disagreeing_sources_are_a_finding_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let root = node_root(dir.path(), true);
    let others = |r: &Value| -> Vec<Value> {
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["code"] != "ski-missing")
            .cloned()
            .collect()
    };
    // A flag against the manifest: the flag wins, both are named.
    let (code, r) = run_json(&[
        "verify",
        "--root",
        s(&root),
        "--service-cidr",
        "10.96.0.0/16",
        "--now",
        NOW,
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{r:#}");
    let f = others(&r);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0]["code"], "input-disagreement");
    assert_eq!(f[0]["entry"], "--service-cidr");
    let m = f[0]["message"].as_str().unwrap();
    assert!(
        m.contains("--service-cidr says \"10.96.0.0/16\"")
            && m.contains("kube-apiserver.yaml --service-cluster-ip-range says \"10.96.0.0/12\""),
        "{m}"
    );
    assert_eq!(input(&r, "service_cidrs").0, "10.96.0.0/16");

    // --config against the manifest: the config wins, both are named; a flag beats both.
    let cfg = dir.path().join("kubeadm.yaml");
    fs::write(
        &cfg,
        "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nnetworking:\n  serviceSubnet: 10.96.0.0/16\n",
    )
    .unwrap();
    let with_config = |extra: &[&str]| {
        let mut args = vec!["verify", "--root", s(&root), "--config", s(&cfg)];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--now", NOW, "-o", "json"]);
        run_json(&args)
    };
    let (code, r) = with_config(&[]);
    assert_eq!(code, 0, "{r:#}");
    let f = others(&r);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0]["code"], "input-disagreement");
    let m = f[0]["message"].as_str().unwrap();
    assert!(
        m.contains("kubeadm.yaml:4 networking.serviceSubnet says \"10.96.0.0/16\"")
            && m.contains("kube-apiserver.yaml --service-cluster-ip-range says \"10.96.0.0/12\""),
        "{m}"
    );
    let (v, o) = input(&r, "service_cidrs");
    assert_eq!(v, "10.96.0.0/16");
    assert_eq!(o["source"], "config", "{o}");
    assert_eq!(o["field"], "networking.serviceSubnet", "{o}");
    let (_, r) = with_config(&["--service-cidr", "10.96.0.0/14"]);
    let (v, o) = input(&r, "service_cidrs");
    assert_eq!(v, "10.96.0.0/14");
    assert_eq!(o["source"], "flag", "{o}");

    // The manifest against the tree: the manifest wins, both are named.
    let manifest = root.join("etc/kubernetes/manifests/kube-controller-manager.yaml");
    let original = fs::read_to_string(&manifest).unwrap();
    fs::write(
        &manifest,
        original.replace("--cluster-name=kubernetes", "--cluster-name=prod"),
    )
    .unwrap();
    let (_, r) = verify_root(&root);
    let f = others(&r);
    assert!(
        f.iter().any(|f| f["code"] == "input-disagreement"
            && f["entry"] == "--cluster-name"
            && f["message"]
                .as_str()
                .unwrap()
                .contains("kube-controller-manager.yaml --cluster-name says \"prod\"")
            && f["message"]
                .as_str()
                .unwrap()
                .contains("admin.conf: cluster name) says \"kubernetes\"")),
        "{f:#?}"
    );
    assert_eq!(input(&r, "cluster_name").0, "prod");
    fs::write(&manifest, original).unwrap();

    // A node name given against the node and the tree: the tree's identity is kept unless told
    // (input-conflict, as without a node), and the node is named too.
    let (code, r) = run_json(&[
        "verify",
        "--root",
        s(&root),
        "--node-name",
        "cp-2",
        "--now",
        NOW,
        "-o",
        "json",
    ]);
    assert_eq!(code, 1, "{r:#}");
    let f = others(&r);
    assert!(
        f.iter()
            .any(|f| f["code"] == "input-conflict" && f["entry"] == "--node-name"),
        "{f:#?}"
    );
    assert!(
        f.iter().any(|f| f["code"] == "input-disagreement"
            && f["message"]
                .as_str()
                .unwrap()
                .contains("etcd.yaml --name says \"cp-1\"")),
        "{f:#?}"
    );
}
