//! Issue 12: kubeadm config semantics, version by version. A table of kubeadm configs
//! (v1beta3/v1beta4, kubernetesVersion 1.28-1.36, both ControlPlaneKubeletLocalMode values,
//! external etcd, IPv6, dual-stack, each defect of the issue) with the outcome kubeadm of the
//! target version gives: the refusal line, or the files written, kubelet.conf's server, O values,
//! validity and key algorithm -- read back with x509-parser (util::facts) and kubectl
//! (util::kubeconfig_facts), never with the kpki library. Also: advertise-address detection in
//! a network namespace the test makes, and a 1.28-targeted tree used by a real etcd and by kubectl.

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

use crate::util::*;

const DAY: i64 = 86_400;
const BACKDATE: i64 = 300;

/// What a config should give.
enum Want {
    /// Exit 2 with one `error:` line holding all of these.
    Refused(&'static [&'static str]),
    /// Written, with this layout.
    Ok(Layout),
}

#[derive(Clone)]
struct Layout {
    /// kubeadm < 1.29 O values (system:masters on admin.conf, apiserver-kubelet-client and the
    /// etcd clients) and no super-admin.conf.
    pre129: bool,
    /// kubelet.conf points at the local API endpoint (else the control-plane endpoint).
    kubelet_local: bool,
    /// etcd PKI present (local etcd).
    etcd: bool,
    /// Leaf and CA validity in days.
    leaf_days: i64,
    ca_days: i64,
    /// Key kind of leaves (x509-parser's description) and of kubeconfig client certs.
    leaf_key: &'static str,
    kubeconfig_key: &'static str,
    /// A warning (stderr) that must appear.
    warning: Option<&'static str>,
    /// apiserver IP SANs, when checked.
    apiserver_ips: Option<&'static [&'static str]>,
    /// apiserver DNS SANs that must be present.
    apiserver_dns: &'static [&'static str],
}

const RSA: &str = "RSA-2048 e=65537";

fn newest() -> Layout {
    Layout {
        pre129: false,
        kubelet_local: true,
        etcd: true,
        leaf_days: 365,
        ca_days: 3650,
        leaf_key: RSA,
        kubeconfig_key: RSA,
        warning: None,
        apiserver_ips: None,
        apiserver_dns: &[],
    }
}

fn v128() -> Layout {
    Layout {
        pre129: true,
        kubelet_local: false,
        ..newest()
    }
}

fn cpe() -> Layout {
    Layout {
        kubelet_local: false,
        ..newest()
    }
}

struct Case {
    name: &'static str,
    yaml: String,
    flags: &'static [&'static str],
    want: Want,
}

const INIT3: &str = "apiVersion: kubeadm.k8s.io/v1beta3
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: 10.0.0.10
nodeRegistration:
  name: cp-1
---
";
const INIT4: &str = "apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: 10.0.0.10
nodeRegistration:
  name: cp-1
---
";

/// A v1beta3 InitConfiguration + ClusterConfiguration with `body` (fields of the latter).
fn v3(k8s: &str, body: &str) -> String {
    format!("{INIT3}apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nkubernetesVersion: {k8s}\ncontrolPlaneEndpoint: cp.example.internal:6443\n{body}")
}

fn v4(k8s: &str, body: &str) -> String {
    format!("{INIT4}apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: {k8s}\ncontrolPlaneEndpoint: cp.example.internal:6443\n{body}")
}

fn gate(v: bool) -> String {
    format!("featureGates:\n  ControlPlaneKubeletLocalMode: {v}\n")
}

fn cases() -> Vec<Case> {
    let c = |name, yaml, flags, want| Case {
        name,
        yaml,
        flags,
        want,
    };
    vec![
        // --- target version and layout ----------------------------------------------------
        c("v1beta3 1.28: kubeadm 1.28 layout", v3("v1.28.4", ""), &[], Want::Ok(v128())),
        c("v1beta3 1.29: super-admin.conf, new O, CPE kubelet", v3("v1.29.3", ""), &[], Want::Ok(cpe())),
        c("v1beta3 1.30: no gate yet, CPE kubelet", v3("v1.30.0", ""), &[], Want::Ok(cpe())),
        c("v1beta3 1.30: the gate does not exist", v3("v1.30.0", &gate(true)), &[], Want::Refused(&["featureGates.ControlPlaneKubeletLocalMode", "is not a valid feature name."])),
        c("v1beta3 1.31: deprecated API, gate off by default", v3("v1.31.1", ""), &[], Want::Ok(Layout { warning: Some("deprecated API spec"), ..cpe() })),
        c("v1beta3 1.31: gate on", v3("v1.31.1", &gate(true)), &[], Want::Ok(Layout { warning: Some("deprecated API spec"), ..newest() })),
        c("v1beta4 1.31: gate off by default", v4("v1.31.0", ""), &[], Want::Ok(cpe())),
        c("v1beta4 1.32: gate on", v4("v1.32.2", &gate(true)), &[], Want::Ok(newest())),
        c("v1beta4 1.33: gate on by default", v4("v1.33.0", ""), &[], Want::Ok(newest())),
        c("v1beta4 1.33: gate off", v4("v1.33.0", &gate(false)), &[], Want::Ok(cpe())),
        c("v1beta4 1.34: gate off", v4("v1.34.1", &gate(false)), &[], Want::Ok(cpe())),
        c("v1beta4 1.35: gate locked on", v4("v1.35.0", ""), &[], Want::Ok(newest())),
        c("v1beta4 1.35: gate false is an error", v4("v1.35.0", &gate(false)), &[], Want::Refused(&["featureGates.ControlPlaneKubeletLocalMode", "locked to true"])),
        c("v1beta4 with a 1.30 target", v4("v1.30.2", ""), &[], Want::Refused(&["does not read apiVersion kubeadm.k8s.io/v1beta4"])),
        c("kubernetesVersion v1.21.0 (the docs' example)", v3("v1.21.0", ""), &[], Want::Refused(&["kubernetesVersion", "v1.21.0", "older than any kubeadm"])),
        c("kubernetesVersion v1.36.0: newest layout and a warning", v4("v1.36.0", ""), &[], Want::Ok(Layout { warning: Some("newer than the newest kubeadm kpki models"), ..newest() })),
        c("kubernetesVersion stable: newest layout", v4("stable", ""), &[], Want::Ok(Layout { warning: Some("release label"), ..newest() })),
        c("no kubernetesVersion: newest layout", format!("{INIT4}apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n"), &[], Want::Ok(newest())),
        c("--kubeadm-version 1.29 deploys 1.28", v3("v1.28.4", ""), &["--kubeadm-version", "1.29"], Want::Ok(cpe())),
        c("--kubeadm-version 1.31 cannot deploy 1.28", v3("v1.28.4", ""), &["--kubeadm-version", "1.31"], Want::Refused(&["kubernetesVersion", ">= v1.30.0"])),
        c("malformed kubernetesVersion", v3("v1.28", ""), &[], Want::Refused(&["kubernetesVersion", "v1.28"])),
        // --- defect 1: v1beta4-only fields in v1beta3 --------------------------------------
        c("v1beta3 with v1beta4 validity and algorithm fields: dropped", v3("v1.30.0", "certificateValidityPeriod: 876000h\ncaCertificateValidityPeriod: 876000h\nencryptionAlgorithm: ECDSA-P256\n"), &[], Want::Ok(Layout { warning: Some("encryptionAlgorithm is a kubeadm.k8s.io/v1beta4 field"), ..cpe() })),
        c("v1beta4 100-year certificates: kubeadm's warnings", v4("v1.33.0", "certificateValidityPeriod: 876000h\ncaCertificateValidityPeriod: 876000h\n"), &[], Want::Ok(Layout { leaf_days: 36500, ca_days: 36500, warning: Some("is more than the recommended default for certificate expiration: 8760h0m0s"), ..newest() })),
        c("v1beta4 leaf outliving the CA: warning", v4("v1.33.0", "certificateValidityPeriod: 43800h\ncaCertificateValidityPeriod: 26280h\n"), &[], Want::Ok(Layout { leaf_days: 1825, ca_days: 1095, warning: Some("leaf certificates would outlive their CA"), ..newest() })),
        // --- algorithms ----------------------------------------------------------------------
        c("encryptionAlgorithm ecdsa-p256 (wrong case)", v4("v1.33.0", "encryptionAlgorithm: ecdsa-p256\n"), &[], Want::Refused(&["encryptionAlgorithm", "Invalid encryption algorithm \"ecdsa-p256\""])),
        c("ECDSA-P256 on 1.31", v4("v1.31.0", "encryptionAlgorithm: ECDSA-P256\n"), &[], Want::Ok(Layout { leaf_key: "ECDSA-P256", kubeconfig_key: "ECDSA-P256", ..cpe() })),
        c("ECDSA-P384 before 1.34", v4("v1.33.0", "encryptionAlgorithm: ECDSA-P384\n"), &[], Want::Refused(&["encryptionAlgorithm", "ECDSA-P384"])),
        c("ECDSA-P384 on 1.34", v4("v1.34.0", "encryptionAlgorithm: ECDSA-P384\n"), &[], Want::Ok(Layout { leaf_key: "ECDSA-P384", kubeconfig_key: "ECDSA-P384", ..newest() })),
        c("PublicKeysECDSA on 1.30: RSA kubeconfig keys (kubeadm#3072)", v3("v1.30.0", "featureGates:\n  PublicKeysECDSA: true\n"), &[], Want::Ok(Layout { leaf_key: "ECDSA-P256", kubeconfig_key: RSA, ..cpe() })),
        // --- validation parity ---------------------------------------------------------------
        c("relative certificatesDir", v4("v1.33.0", "certificatesDir: pki\n"), &[], Want::Refused(&["certificatesDir", "path is not absolute"])),
        c("unknown feature gate", v4("v1.33.0", "featureGates:\n  Nope: true\n"), &[], Want::Refused(&["featureGates.Nope", "Nope is not a valid feature name."])),
        c("map extraArgs in v1beta4", v4("v1.33.0", "apiServer:\n  extraArgs:\n    v: \"4\"\n"), &[], Want::Refused(&["apiServer.extraArgs", "expected a list of {name, value}"])),
        c("list extraArgs in v1beta3", v3("v1.30.0", "apiServer:\n  extraArgs:\n  - name: v\n    value: \"4\"\n"), &[], Want::Refused(&["apiServer.extraArgs", "expected a mapping of flag names"])),
        c("kubeletExtraArgs map in v1beta4", "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAddress: 10.0.0.10\nnodeRegistration:\n  name: cp-1\n  kubeletExtraArgs:\n    node-ip: 10.0.0.10\n".to_string(), &[], Want::Refused(&["nodeRegistration.kubeletExtraArgs"])),
        c("invalid certSAN in the file", v4("v1.33.0", "apiServer:\n  certSANs: [ok.example.com, \"bad name\"]\n"), &[], Want::Refused(&["apiServer.certSANs[1]", "altname is not a valid IP address"])),
        c("etcd local and external", v4("v1.33.0", "etcd:\n  local:\n    dataDir: /var/lib/etcd\n  external:\n    endpoints: [https://10.0.0.5:2379]\n"), &[], Want::Refused(&["etcd", "mutually exclusive"])),
        c("external etcd: no etcd PKI", v4("v1.33.0", "etcd:\n  external:\n    endpoints: [https://10.0.0.5:2379]\n    caFile: /etc/etcd/ca.crt\n    certFile: /etc/etcd/c.crt\n    keyFile: /etc/etcd/c.key\n"), &[], Want::Ok(Layout { etcd: false, ..newest() })),
        c("service subnet too large", v4("v1.33.0", "networking:\n  serviceSubnet: 10.0.0.0/8\n"), &[], Want::Refused(&["networking.serviceSubnet", "too large"])),
        // --- networks ------------------------------------------------------------------------
        c("IPv6 advertise address and service subnet", "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAddress: \"fd00::10\"\nnodeRegistration:\n  name: cp-1\n---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v1.33.0\nnetworking:\n  serviceSubnet: fd00:96::/112\n".to_string(), &[], Want::Ok(Layout { apiserver_ips: Some(&["fd00:96::1", "fd00::10"]), ..newest() })),
        c("dual-stack service subnets: first family only", v4("v1.33.0", "networking:\n  serviceSubnet: 10.96.0.0/16,fd00:96::/112\n"), &[], Want::Ok(Layout { apiserver_ips: Some(&["10.96.0.1", "10.0.0.10"]), ..newest() })),
        // --- defect 8: flags and --config merge ------------------------------------------------
        c("--apiserver-cert-extra-sans adds to certSANs", v4("v1.33.0", "apiServer:\n  certSANs: [from-file.example.com, 192.0.2.7]\n"), &["--apiserver-cert-extra-sans", "from-flag.example.com,192.0.2.8"], Want::Ok(Layout { apiserver_ips: Some(&["10.96.0.1", "10.0.0.10", "192.0.2.7", "192.0.2.8"]), apiserver_dns: &["from-file.example.com", "from-flag.example.com", "cp.example.internal"], ..newest() })),
    ]
}

fn run_case(case: &Case, dir: &Path) -> Result<(), String> {
    let cfg = dir.join("kubeadm.yaml");
    std::fs::write(&cfg, &case.yaml).unwrap();
    let kube = dir.join("k");
    let pki = kube.join("pki");
    let out = Kpki::init(&pki)
        .arg("--config")
        .arg(&cfg)
        .args(case.flags)
        .run();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let fail = |m: String| Err(format!("{m}\n    stderr: {stderr}"));
    let layout = match &case.want {
        Want::Refused(parts) => {
            if out.status.code() != Some(2) {
                return fail(format!("exit {:?}, expected 2", out.status.code()));
            }
            let lines: Vec<&str> = stderr.lines().collect();
            if lines.len() != 1 || !lines[0].starts_with("error: ") {
                return fail("expected exactly one `error:` line".into());
            }
            if !lines[0].contains(s(&cfg)) && !lines[0].contains("--") {
                return fail("the error names neither the file nor a flag".into());
            }
            for p in *parts {
                if !lines[0].contains(p) {
                    return fail(format!("error does not contain {p:?}"));
                }
            }
            if pki.exists() {
                return fail("a refused config wrote files".into());
            }
            return Ok(());
        }
        Want::Ok(l) => l,
    };
    if !out.status.success() {
        return fail(format!("exit {:?}", out.status.code()));
    }
    if let Some(w) = layout.warning {
        if !stderr
            .lines()
            .any(|l| l.starts_with("WARNING: ") && l.contains(w))
        {
            return fail(format!("no warning containing {w:?}"));
        }
    }
    let check = |ok: bool, what: String| if ok { Ok(()) } else { Err(what) };
    // Files written.
    check(
        kube.join("super-admin.conf").exists() != layout.pre129,
        format!(
            "super-admin.conf present: {}",
            kube.join("super-admin.conf").exists()
        ),
    )?;
    check(
        pki.join("etcd/ca.crt").exists() == layout.etcd,
        "etcd PKI presence".into(),
    )?;
    check(
        pki.join("apiserver-etcd-client.crt").exists() == layout.etcd,
        "apiserver-etcd-client presence".into(),
    )?;
    // O values (x509-parser).
    let old = layout.pre129;
    let akc = facts(&pki.join("apiserver-kubelet-client.crt"));
    check(
        akc.orgs
            == [if old {
                "system:masters"
            } else {
                "kubeadm:cluster-admins"
            }],
        format!("apiserver-kubelet-client O {:?}", akc.orgs),
    )?;
    if layout.etcd {
        for c in ["apiserver-etcd-client", "etcd/healthcheck-client"] {
            let f = facts(&pki.join(format!("{c}.crt")));
            let want: Vec<String> = if old {
                vec!["system:masters".into()]
            } else {
                vec![]
            };
            check(f.orgs == want, format!("{c} O {:?}", f.orgs))?;
        }
    }
    // Validity and algorithm.
    let ca = facts(&pki.join("ca.crt"));
    check(
        ca.span() == layout.ca_days * DAY + BACKDATE,
        format!("CA span {}s", ca.span()),
    )?;
    let api = facts(&pki.join("apiserver.crt"));
    check(
        api.span() == layout.leaf_days * DAY + BACKDATE,
        format!("leaf span {}s", api.span()),
    )?;
    check(api.key == layout.leaf_key, format!("leaf key {}", api.key))?;
    check(ca.key == layout.leaf_key, format!("CA key {}", ca.key))?;
    if let Some(ips) = layout.apiserver_ips {
        let want: Vec<IpAddr> = ips.iter().map(|i| i.parse().unwrap()).collect();
        check(api.ips == want, format!("apiserver IPs {:?}", api.ips))?;
    }
    for d in layout.apiserver_dns {
        check(
            api.dns.iter().any(|x| x == d),
            format!("apiserver DNS lacks {d}: {:?}", api.dns),
        )?;
    }
    // Kubeconfigs (kubectl): kubelet.conf's server, admin.conf's O, client key kind.
    let scratch = tempfile::tempdir().unwrap();
    let kc_cert = |name: &str| {
        let k = kubeconfig_facts(&kube.join(name));
        let p = write_file(scratch.path(), &format!("{name}.crt"), &k.cert_pem);
        (k, facts(&p))
    };
    let (kubelet, kubelet_cert) = kc_cert("kubelet.conf");
    let adv = api.ips.get(1).copied().unwrap();
    let local = if adv.is_ipv6() {
        format!("https://[{adv}]:6443")
    } else {
        format!("https://{adv}:6443")
    };
    let has_cpe = case.yaml.contains("controlPlaneEndpoint");
    let want_server = if layout.kubelet_local || !has_cpe {
        local
    } else {
        "https://cp.example.internal:6443".into()
    };
    check(
        kubelet.server == want_server,
        format!("kubelet.conf server {}", kubelet.server),
    )?;
    check(
        kubelet_cert.key == layout.kubeconfig_key,
        format!("kubelet.conf key {}", kubelet_cert.key),
    )?;
    let (_, admin) = kc_cert("admin.conf");
    check(
        admin.orgs
            == [if old {
                "system:masters"
            } else {
                "kubeadm:cluster-admins"
            }],
        format!("admin.conf O {:?}", admin.orgs),
    )?;
    check(
        admin.span() == layout.leaf_days * DAY + BACKDATE || admin.span() == layout.leaf_days * DAY,
        format!("admin.conf span {}", admin.span()),
    )?;
    if !old {
        let (_, sa) = kc_cert("super-admin.conf");
        check(
            sa.orgs == ["system:masters"],
            format!("super-admin.conf O {:?}", sa.orgs),
        )?;
    }
    // The whole chain verifies with openssl.
    assert_verifies(&pki.join("ca.crt"), &pki.join("apiserver.crt"), "sslserver");
    Ok(())
}

#[test]
fn kubeadm_configs_version_by_version() {
    let cases = cases();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let dir = tempfile::tempdir().unwrap();
        if let Err(e) = run_case(case, dir.path()) {
            failures.push(format!("{}: {e}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} configs:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Kubeconfigs stay in /etc/kubernetes whatever certificatesDir says (plan's input table shows
/// the choice and its origin without writing there); --cert-dir moves them to its parent.
#[test]
fn kubeconfig_dir_ignores_certificates_dir() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("kubeadm.yaml");
    std::fs::write(
        &cfg,
        v4("v1.33.0", "certificatesDir: /var/lib/minikube/certs\n"),
    )
    .unwrap();
    let out = kpki_ok(["plan", "--config", s(&cfg)]);
    let row = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        row("cert_dir ").contains("/var/lib/minikube/certs")
            && row("cert_dir ").contains("kubeadm.yaml:12 certificatesDir"),
        "{out}"
    );
    assert!(
        row("kubeconfig_dir").contains("/etc/kubernetes ")
            && row("kubeconfig_dir").contains("kubeadm's default"),
        "{out}"
    );
    let pki = dir.path().join("x/pki");
    let out = kpki_ok(["plan", "--config", s(&cfg), "--cert-dir", s(&pki)]);
    assert!(
        out.lines().any(|l| l.starts_with("kubeconfig_dir")
            && l.contains(s(&dir.path().join("x")))
            && l.contains("--cert-dir")),
        "{out}"
    );
    // Each extra SAN with its origin: the file's line, then the flag.
    let cfg2 = dir.path().join("sans.yaml");
    std::fs::write(
        &cfg2,
        v4("v1.33.0", "apiServer:\n  certSANs:\n  - a.example.com\n"),
    )
    .unwrap();
    let out = kpki_ok([
        "plan",
        "--config",
        s(&cfg2),
        "--apiserver-cert-extra-sans",
        "b.example.com",
    ]);
    assert!(
        out.lines().any(
            |l| l.contains("a.example.com") && l.contains("sans.yaml:14 apiServer.certSANs[0]")
        ),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("b.example.com") && l.contains("--apiserver-cert-extra-sans")),
        "{out}"
    );
}

fn have_netns() -> bool {
    Command::new("unshare")
        .args(["-n", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs a shell script in a new network namespace (root, or fails loudly).
fn in_netns(script: &str) -> std::process::Output {
    assert!(
        have_netns(),
        "this test needs `unshare -n` (run as root, as scripts/test.sh and CI do)"
    );
    Command::new("unshare")
        .args(["-n", "sh", "-ec", script])
        .output()
        .unwrap()
}

/// Advertise-address detection like kubeadm, in a namespace with a veth pair, an address and a
/// default route; and the clear refusal in a namespace without any route.
#[test]
fn advertise_address_detection_in_a_network_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let bin = KPKI;
    for (name, yaml) in [
        ("only-cluster.yaml", "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v1.33.0\n".to_string()),
        ("zero.yaml", "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAddress: 0.0.0.0\nnodeRegistration:\n  name: cp-1\n".to_string()),
        ("empty-endpoint.yaml", "apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\nlocalAPIEndpoint: {}\nnodeRegistration:\n  name: cp-1\n".to_string()),
    ] {
        std::fs::write(dir.path().join(name), yaml).unwrap();
    }
    let setup = "ip link set lo up
ip link add kv0 type veth peer name kv1
ip addr add 192.0.2.10/24 dev kv0
ip addr add 2001:db8:5::10/64 dev kv0 nodad
ip link set kv0 up
ip link set kv1 up
ip route add default via 192.0.2.1 dev kv0
";
    for cfg in ["only-cluster.yaml", "zero.yaml", "empty-endpoint.yaml"] {
        let pki = dir.path().join(cfg).with_extension("").join("pki");
        let script = format!(
            "{setup}{bin} init --node-name cp-1 --config {} --cert-dir {}\n",
            s(&dir.path().join(cfg)),
            s(&pki)
        );
        let out = in_netns(&script);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{cfg}: {}{}",
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("[inputs] advertise address 192.0.2.10 detected on interface kv0"),
            "{cfg}: {stdout}"
        );
        let api = facts(&pki.join("apiserver.crt"));
        assert!(
            api.ips.contains(&"192.0.2.10".parse().unwrap()),
            "{cfg}: {:?}",
            api.ips
        );
        let k = kubeconfig_facts(&pki.parent().unwrap().join("kubelet.conf"));
        assert_eq!(k.server, "https://192.0.2.10:6443", "{cfg}");
    }
    // IPv6 only: the IPv6 default route's interface.
    let pki6 = dir.path().join("v6/pki");
    let script = format!(
        "ip link set lo up
ip link add kv0 type veth peer name kv1
ip addr add 2001:db8:5::10/64 dev kv0 nodad
ip link set kv0 up
ip link set kv1 up
ip -6 route add default via 2001:db8:5::1 dev kv0
{bin} init --node-name cp-1 --config {} --cert-dir {}\n",
        s(&dir.path().join("zero.yaml")),
        s(&pki6)
    );
    let out = in_netns(&script);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let api = facts(&pki6.join("apiserver.crt"));
    assert!(
        api.ips.contains(&"2001:db8:5::10".parse().unwrap()),
        "{:?}",
        api.ips
    );
    // The flag still wins over detection.
    let pki_flag = dir.path().join("flag/pki");
    let out = in_netns(&format!("{setup}{bin} init --node-name cp-1 --apiserver-advertise-address 198.51.100.7 --config {} --cert-dir {}\n", s(&dir.path().join("zero.yaml")), s(&pki_flag)));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(facts(&pki_flag.join("apiserver.crt"))
        .ips
        .contains(&"198.51.100.7".parse().unwrap()));
    // No route at all: one clear error line, nothing written.
    let pki_none = dir.path().join("none/pki");
    let out = in_netns(&format!(
        "{bin} init --node-name cp-1 --config {} --cert-dir {}\n",
        s(&dir.path().join("zero.yaml")),
        s(&pki_none)
    ));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: --apiserver-advertise-address: localAPIEndpoint.advertiseAddress is 0.0.0.0 and none could be detected like kubeadm does: no default route"), "{err}");
    assert!(!pki_none.exists());
}

// The real-component checks of a 1.28-targeted tree reuse the existing harnesses:
// etcd.rs `etcd_accepts_a_kubeadm_1_28_tree` (a two-member etcd cluster) and kubeconfig.rs
// `kubeadm_1_28_tree_does_mutual_tls_too` (kubectl against openssl s_server).
