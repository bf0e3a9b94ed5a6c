//! The bad-input catalogue: one table of inputs kpki must refuse (flags, the spec, the kubeadm
//! config, files in the tree, kubeconfigs). Each case must end with the documented exit code
//! (2 = could not run; 1 for a bulk `nodes` run whose lines failed), one `error:` line naming
//! the file or field at fault, no panic, and a directory that is byte-for-byte, mode-for-mode and
//! inode-for-inode what it was before.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::reliability::{run_ok, Layout};
use crate::util::{self, copy_dir, set_mode, strings, Kpki, Modes, INPUTS};

/// Where a case runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Env {
    /// Nothing yet: the cert dir does not exist (and must not be created).
    Empty,
    /// A complete ECDSA-P256 tree made by `kpki init` with [`INPUTS`].
    Tree,
}

/// Paths of one case's directory.
struct Ctx {
    /// Kubeconfig dir (`root/k`).
    k: PathBuf,
    /// Cert dir (`root/k/pki`).
    pki: PathBuf,
    /// Input files (`root/in`): spec, kubeadm config, nodes list.
    input: PathBuf,
    /// Output dir for `kpki nodes` (`root/out`, exists).
    out: PathBuf,
}

type Setup = Box<dyn Fn(&Ctx)>;

struct Case {
    name: String,
    env: Env,
    setup: Setup,
    /// Arguments; `{pki}`, `{k}`, `{in}`, `{out}` are replaced by the case's paths.
    args: Vec<String>,
    code: i32,
    /// Substrings the error line must contain (same placeholders).
    needles: Vec<String>,
    /// Lines on stderr (1 unless documented otherwise).
    lines: usize,
    /// Substrings the error line must not contain (key material, raw values).
    forbidden: Vec<String>,
    /// Substrings the error line must contain exactly once (a path printed twice).
    once: Vec<String>,
}

/// `init --cert-dir {pki}` with the standard flags, each `(flag, value)` replacing that flag's
/// value (as `--flag=value`) or being added; a `None` value drops the flag.
fn init_with(over: &[(&str, Option<&str>)]) -> Vec<String> {
    cmd_with(&["init"], over)
}

fn cmd_with(cmd: &[&str], over: &[(&str, Option<&str>)]) -> Vec<String> {
    let mut args = strings(cmd);
    args.extend(strings(&["--cert-dir", "{pki}"]));
    let mut pairs: Vec<(String, Option<String>)> = INPUTS
        .chunks(2)
        .map(|c| (c[0].to_string(), Some(c[1].to_string())))
        .collect();
    for (f, v) in over {
        match pairs.iter_mut().find(|(pf, _)| pf == f) {
            Some(p) => p.1 = v.map(str::to_string),
            None => pairs.push((f.to_string(), v.map(str::to_string))),
        }
    }
    for (f, v) in pairs {
        if let Some(v) = v {
            args.push(format!("{f}={v}"));
        }
    }
    args
}

fn case(name: &str, env: Env, args: Vec<String>, code: i32, needles: &[&str]) -> Case {
    Case {
        name: name.into(),
        env,
        setup: Box::new(|_| {}),
        args,
        code,
        needles: strings(needles),
        lines: 1,
        forbidden: Vec::new(),
        once: Vec::new(),
    }
}

impl Case {
    fn setup(mut self, f: impl Fn(&Ctx) + 'static) -> Case {
        self.setup = Box::new(f);
        self
    }
    fn forbid(mut self, v: &[&str]) -> Case {
        self.forbidden = strings(v);
        self
    }
    fn once(mut self, v: &[&str]) -> Case {
        self.once = strings(v);
        self
    }
    fn lines(mut self, n: usize) -> Case {
        self.lines = n;
        self
    }
}

// ------------------------------------------------------------------ helpers for setups

fn write(p: &Path, data: &[u8]) {
    std::fs::write(p, data).unwrap();
}

fn replace_file(p: &Path, data: &[u8]) {
    let mode = util::mode(p);
    write(p, data);
    set_mode(p, mode);
}

fn remove_pair(pki: &Path, name: &str) {
    for ext in ["crt", "key"] {
        std::fs::remove_file(pki.join(format!("{name}.{ext}"))).unwrap();
    }
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

fn openssl_out(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    util::tool_ok("openssl", args, Some(stdin))
}

/// Edits one line-level pattern of a kubeconfig (`key: value` lines).
fn edit_conf(p: &Path, key: &str, value: &str) {
    let text = String::from_utf8(read(p)).unwrap();
    let mut hit = false;
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            let t = l.trim_start();
            if !hit && t.starts_with(&format!("{key}:")) {
                hit = true;
                format!("{}{key}: {value}", &l[..l.len() - t.len()])
            } else {
                l.to_string()
            }
        })
        .collect();
    assert!(hit, "{key} not in {}", p.display());
    replace_file(p, (out.join("\n") + "\n").as_bytes());
}

fn conf_field(p: &Path, key: &str) -> String {
    String::from_utf8(read(p))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.trim_start()
                .strip_prefix(&format!("{key}: "))
                .map(str::to_string)
        })
        .unwrap()
}

/// A valid extra leaf appended to the spec; spec cases break one line of it.
const EXTRA: &str = r#"
[[cert]]
name = "extra"
path = "extra"
ca = "ca"
cn = "extra"
key_usages = ["digital_signature"]
ext_key_usages = ["client_auth"]
"#;

/// A valid extra kubeconfig appended to the spec.
const EXTRA_KC: &str = r#"
[[kubeconfig]]
name = "extra.conf"
file = "extra.conf"
ca = "ca"
cn = "extra"
server = "local"
key_usages = ["digital_signature"]
ext_key_usages = ["client_auth"]
"#;

/// Spec text with `find` replaced once by `with` (the pattern must exist).
fn spec_edit(base: &str, find: &str, with: &str) -> String {
    assert!(base.contains(find), "spec has no {find:?}");
    base.replacen(find, with, 1)
}

fn spec_case(name: &str, text: String, needles: &[&str]) -> Case {
    let mut n = vec!["{in}/spec.toml"];
    n.extend_from_slice(needles);
    let mut args = strings(&["--spec", "{in}/spec.toml"]);
    args.extend(init_with(&[]));
    case(name, Env::Empty, args, 2, &n)
        .setup(move |c| write(&c.input.join("spec.toml"), text.as_bytes()))
}

const INIT_CFG: &str = "apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
nodeRegistration:
  name: cp-1
localAPIEndpoint:
  advertiseAddress: 10.0.0.10
";
const CLUSTER_CFG: &str = "---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
";

fn cfg_case(name: &str, text: String, needles: &[&str]) -> Case {
    let mut n = vec!["{in}/kubeadm.yaml"];
    n.extend_from_slice(needles);
    let args = strings(&[
        "init",
        "--cert-dir",
        "{pki}",
        "--config",
        "{in}/kubeadm.yaml",
    ]);
    case(name, Env::Empty, args, 2, &n)
        .setup(move |c| write(&c.input.join("kubeadm.yaml"), text.as_bytes()))
}

fn tree_case(name: &str, needles: &[&str], f: impl Fn(&Ctx) + 'static) -> Case {
    case(name, Env::Tree, init_with(&[]), 2, needles).setup(f)
}

// ------------------------------------------------------------------ the catalogue

fn cases(spec: &str) -> Vec<Case> {
    let extra = |find: &str, with: &str| format!("{spec}{}", spec_edit(EXTRA, find, with));
    let extra_kc = |find: &str, with: &str| format!("{spec}{}", spec_edit(EXTRA_KC, find, with));
    let e = Env::Empty;
    let mut v = vec![
        // ---- flags
        case("advertise address not an IP", e, init_with(&[("--apiserver-advertise-address", Some("10.0.0.300"))]), 2, &["--apiserver-advertise-address", "10.0.0.300"]),
        // A missing or unspecified (0.0.0.0) advertise address is no longer a bad input: kpki
        // detects the default-route interface's address like kubeadm (issue 12); the refusal
        // when nothing can be detected is tested in config_semantics.rs, in an empty netns.
        case("service CIDR prefix 33", e, init_with(&[("--service-cidr", Some("10.96.0.0/33"))]), 2, &["--service-cidr", "10.96.0.0/33"]),
        case("service CIDR not a CIDR", e, init_with(&[("--service-cidr", Some("ten.96/12"))]), 2, &["--service-cidr"]),
        case("bind port out of range", e, init_with(&[("--apiserver-bind-port", Some("70000"))]), 2, &["--apiserver-bind-port", "70000"]),
        case("bind port zero", e, init_with(&[("--apiserver-bind-port", Some("0"))]), 2, &["--apiserver-bind-port"]),
        case("bind port not a number", e, init_with(&[("--apiserver-bind-port", Some("https"))]), 2, &["--apiserver-bind-port", "https"]),
        case("cert validity unknown unit", e, init_with(&[("--cert-validity", Some("1x"))]), 2, &["--cert-validity", "1x"]),
        case("cert validity negative", e, init_with(&[("--cert-validity", Some("-1h"))]), 2, &["--cert-validity", "-1h"]),
        case("CA validity zero", e, init_with(&[("--ca-validity", Some("0s"))]), 2, &["--ca-validity", "0s"]),
        case("algorithm RSA-1024", e, init_with(&[("--encryption-algorithm", Some("RSA-1024"))]), 2, &["--encryption-algorithm", "RSA-1024"]),
        case("algorithm Ed25519", e, init_with(&[("--encryption-algorithm", Some("Ed25519"))]), 2, &["--encryption-algorithm", "Ed25519"]),
        case("node name with underscore", e, init_with(&[("--node-name", Some("cp_1"))]), 2, &["--node-name", "cp_1"]),
        case("node name empty", e, init_with(&[("--node-name", Some(""))]), 2, &["--node-name"]),
        case("node name too long", e, init_with(&[("--node-name", Some(&"a".repeat(254)))]), 2, &["--node-name"]),
        case("control-plane endpoint bad port", e, init_with(&[("--control-plane-endpoint", Some("lb:https"))]), 2, &["--control-plane-endpoint", "lb:https"]),
        case("control-plane endpoint unclosed bracket", e, init_with(&[("--control-plane-endpoint", Some("[::1"))]), 2, &["--control-plane-endpoint"]),
        case("extra SAN not a name", e, init_with(&[("--apiserver-cert-extra-sans", Some("ok.example,bad_san!"))]), 2, &["--apiserver-cert-extra-sans", "bad_san!"]),
        case("service DNS domain bad label", e, init_with(&[("--service-dns-domain", Some("-bad-"))]), 2, &["--service-dns-domain", "-bad-"]),
        case("cluster name with space", e, init_with(&[("--cluster-name", Some("my cluster"))]), 2, &["--cluster-name"]),
        case("lock timeout without unit", e, [strings(&["--lock-timeout", "5"]), init_with(&[])].concat(), 2, &["--lock-timeout", "5"]),
        case("lock timeout negative", e, [strings(&["--lock-timeout=-1s"]), init_with(&[])].concat(), 2, &["--lock-timeout", "-1s"]),
        case("--now not RFC 3339", e, [strings(&["--now", "yesterday"]), init_with(&[])].concat(), 2, &["--now", "yesterday"]),
        case("unknown flag", e, init_with(&[("--colour", Some("blue"))]), 2, &["--colour"]),
        case("--jobs negative", e, [strings(&["--jobs=-1"]), init_with(&[])].concat(), 2, &["--jobs", "-1"]),
        case("renew of an unknown certificate", Env::Tree, cmd_with(&["certs", "renew", "nosuch"], &[]), 2, &["certs renew", "nosuch"]),
        case("renew of a CA", Env::Tree, cmd_with(&["certs", "renew", "ca"], &[]), 2, &["certs renew", "\"ca\""]),
        // ---- the spec: every rule of spec.rs validate
        spec_case("spec: version 2", spec_edit(spec, "version = 1", "version = 2"), &["version", "unsupported spec version 2"]),
        spec_case("spec: version missing", spec_edit(spec, "version = 1", ""), &["version"]),
        spec_case("spec: TOML syntax error", format!("{spec}\n[[cert\n"), &["line"]),
        spec_case("spec: unknown field", extra("cn = \"extra\"", "cn = \"extra\"\ncolour = \"blue\""), &["colour"]),
        spec_case("spec: mode not octal", spec_edit(spec, "cert_mode = \"0644\"", "cert_mode = \"0999\""), &["defaults.cert_mode", "0999"]),
        spec_case("spec: mode out of range", spec_edit(spec, "dir_mode = \"0755\"", "dir_mode = \"17777\""), &["defaults.dir_mode", "out of range"]),
        spec_case("spec: default algorithm unknown", spec_edit(spec, "[defaults]\nkey_algorithm = \"cluster\"", "[defaults]\nkey_algorithm = \"DSA-1024\""), &["defaults.key_algorithm", "DSA-1024"]),
        spec_case("spec: entry algorithm unknown", extra("cn = \"extra\"", "cn = \"extra\"\nkey_algorithm = \"RSA-512\""), &["extra", "RSA-512"]),
        spec_case("spec: empty name", extra("name = \"extra\"", "name = \"\""), &["(unnamed)", "empty name"]),
        spec_case("spec: duplicate name", extra("name = \"extra\"", "name = \"apiserver\""), &["apiserver", "duplicate entry name"]),
        spec_case("spec: duplicate path", extra("path = \"extra\"", "path = \"apiserver\""), &["extra", "already used by entry \"apiserver\""]),
        spec_case("spec: path with ..", extra("path = \"extra\"", "path = \"../../etc/evil\""), &["extra", "'..'"]),
        spec_case("spec: absolute path", extra("path = \"extra\"", "path = \"/etc/evil\""), &["extra", "must be relative"]),
        spec_case("spec: path with ./", extra("path = \"extra\"", "path = \"./extra\""), &["extra", "'.' components"]),
        spec_case("spec: path with //", extra("path = \"extra\"", "path = \"sub//extra\""), &["extra", "empty component"]),
        spec_case("spec: empty key pair path", spec_edit(spec, "key = \"sa.key\"", "key = \"\""), &["sa", "empty path"]),
        spec_case("spec: empty cn", extra("cn = \"extra\"", "cn = \" \""), &["extra", "cn is empty"]),
        spec_case("spec: unknown template variable", extra("cn = \"extra\"", "cn = \"{nodename}\""), &["extra", "unknown variable {nodename}"]),
        spec_case("spec: unclosed brace", extra("cn = \"extra\"", "cn = \"extra\"\no = [\"{node_name\"]"), &["extra", "unclosed"]),
        spec_case("spec: stray brace", extra("cn = \"extra\"", "cn = \"extra\"\nsans = [\"x}\"]"), &["extra", "stray"]),
        spec_case("spec: list variable not alone", extra("cn = \"extra\"", "cn = \"extra\"\nsans = [\"x.{apiserver_extra_sans}\"]"), &["extra", "must stand alone"]),
        spec_case("spec: node variable outside [node]", extra("cn = \"extra\"", "cn = \"extra\"\nsans = [\"{node_ips}\"]"), &["extra", "{node_ips}"]),
        spec_case("spec: no key usages", extra("key_usages = [\"digital_signature\"]", "key_usages = []"), &["extra", "key_usages is empty"]),
        spec_case("spec: unknown key usage", extra("key_usages = [\"digital_signature\"]", "key_usages = [\"sign_everything\"]"), &["extra", "sign_everything"]),
        spec_case("spec: unknown extended key usage", extra("ext_key_usages = [\"client_auth\"]", "ext_key_usages = [\"world_domination\"]"), &["extra", "world_domination"]),
        spec_case("spec: leaf with key_cert_sign", extra("key_usages = [\"digital_signature\"]", "key_usages = [\"digital_signature\", \"key_cert_sign\"]"), &["extra", "only for CAs"]),
        spec_case("spec: CA without key_cert_sign", format!("{spec}{}", EXTRA.replace("[[cert]]", "[[ca]]").replace("ca = \"ca\"\n", "")), &["extra", "a CA needs key_cert_sign"]),
        spec_case("spec: unknown CA", extra("ca = \"ca\"", "ca = \"nope\""), &["extra", "unknown CA \"nope\""]),
        spec_case("spec: leaf without CA", extra("ca = \"ca\"\n", ""), &["extra", "a leaf needs `ca`"]),
        spec_case("spec: validity ca on a leaf", extra("cn = \"extra\"", "cn = \"extra\"\nvalidity = \"ca\""), &["extra", "only for CAs"]),
        spec_case("spec: validity negative", extra("cn = \"extra\"", "cn = \"extra\"\nvalidity = \"-5h\""), &["extra", "must be positive"]),
        spec_case("spec: validity unparsable", extra("cn = \"extra\"", "cn = \"extra\"\nvalidity = \"soon\""), &["extra", "validity"]),
        spec_case("spec: unknown condition", extra("cn = \"extra\"", "cn = \"extra\"\nwhen = \"sometimes\""), &["extra", "sometimes"]),
        spec_case("spec: condition differs from its CA's", extra("ca = \"ca\"", "ca = \"etcd-ca\""), &["extra", "same condition"]),
        spec_case(
            "spec: CA cycle",
            format!("{spec}\n[[ca]]\nname = \"x\"\npath = \"x\"\nca = \"y\"\ncn = \"x\"\nkey_usages = [\"key_cert_sign\"]\n\n[[ca]]\nname = \"y\"\npath = \"y\"\nca = \"x\"\ncn = \"y\"\nkey_usages = [\"key_cert_sign\"]\n"),
            &["CA cycle"],
        ),
        spec_case("spec: kubeconfig server", extra_kc("server = \"local\"", "server = \"elsewhere\""), &["extra.conf", "server must be"]),
        spec_case("spec: kubeconfig unknown CA", extra_kc("ca = \"ca\"", "ca = \"nope\""), &["extra.conf", "unknown CA"]),
        spec_case("spec: kubeconfig key_cert_sign", extra_kc("key_usages = [\"digital_signature\"]", "key_usages = [\"key_cert_sign\"]"), &["extra.conf", "only for CAs"]),
        spec_case("spec: kubeconfig validity ca", extra_kc("cn = \"extra\"", "cn = \"extra\"\nvalidity = \"ca\""), &["extra.conf", "only for CAs"]),
        spec_case("spec: kubeconfig file escapes", extra_kc("file = \"extra.conf\"", "file = \"../extra.conf\""), &["extra.conf", "'..'"]),
        spec_case("spec: node file without {node_name}", spec_edit(spec, "file = \"{node_name}/kubelet.conf\"", "file = \"kubelet.conf\""), &["node-kubelet-client", "{node_name}"]),
        case("spec: file missing", e, [strings(&["--spec", "{in}/nope.toml"]), init_with(&[])].concat(), 2, &["{in}/nope.toml"]),
        // ---- the kubeadm config
        cfg_case("config: malformed YAML", INIT_CFG.replace("  name: cp-1", " name: cp-1\n   x: ["), &["malformed YAML"]),
        cfg_case("config: only other kinds", "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\n".into(), &["no InitConfiguration or ClusterConfiguration"]),
        cfg_case("config: unsupported apiVersion", "apiVersion: kubeadm.k8s.io/v1beta1\nkind: InitConfiguration\n".into(), &["unsupported apiVersion", "v1beta1"]),
        cfg_case("config: document is a scalar", "42\n".into(), &["line 1", "integer"]),
        cfg_case("config: no apiVersion", "kind: InitConfiguration\n".into(), &["no apiVersion or kind"]),
        cfg_case("config: port is a string", INIT_CFG.replace("10.0.0.10\n", "10.0.0.10\n  bindPort: \"abc\"\n"), &["localAPIEndpoint.bindPort", "string"]),
        cfg_case("config: port out of range", INIT_CFG.replace("10.0.0.10\n", "10.0.0.10\n  bindPort: 70000\n"), &["localAPIEndpoint.bindPort", "70000"]),
        cfg_case("config: advertise address not an IP", INIT_CFG.replace("10.0.0.10", "999.0.0.1"), &["localAPIEndpoint.advertiseAddress", "999.0.0.1"]),
        cfg_case("config: node name invalid", INIT_CFG.replace("cp-1", "CP_1"), &["nodeRegistration.name"]),
        cfg_case("config: certSANs not a list", format!("{INIT_CFG}{CLUSTER_CFG}apiServer:\n  certSANs: just-a-string\n"), &["apiServer.certSANs", "list"]),
        cfg_case("config: validity is a number", format!("{INIT_CFG}{CLUSTER_CFG}certificateValidityPeriod: 5\n"), &["certificateValidityPeriod", "duration"]),
        cfg_case("config: service subnet invalid", format!("{INIT_CFG}{CLUSTER_CFG}networking:\n  serviceSubnet: 10.96.0.0/99\n"), &["networking.serviceSubnet"]),
        cfg_case("config: networking is a list", format!("{INIT_CFG}{CLUSTER_CFG}networking: [1, 2]\n"), &["networking", "mapping"]),
        cfg_case("config: clusterName is a number", format!("{INIT_CFG}{CLUSTER_CFG}clusterName: 7\n"), &["clusterName", "string"]),
        cfg_case("config: algorithm unknown", format!("{INIT_CFG}{CLUSTER_CFG}encryptionAlgorithm: DSA\n"), &["encryptionAlgorithm", "DSA"]),
        cfg_case("config: local and external etcd", format!("{INIT_CFG}{CLUSTER_CFG}etcd:\n  local: {{}}\n  external: {{}}\n"), &["etcd", "mutually exclusive"]),
        cfg_case("config: InitConfiguration twice", format!("{INIT_CFG}---\n{INIT_CFG}"), &["appears more than once"]),
        case("config: file missing", e, strings(&["init", "--cert-dir", "{pki}", "--config", "{in}/nope.yaml"]), 2, &["{in}/nope.yaml"]),
        case("config: a directory", e, strings(&["init", "--cert-dir", "{pki}", "--config", "{in}"]), 2, &["{in}", "directory"]),
        // ---- files in the tree
        tree_case("truncated certificate", &["{pki}/apiserver.crt"], |c| {
            let p = c.pki.join("apiserver.crt");
            let b = read(&p);
            replace_file(&p, &b[..b.len() / 2]);
        }),
        tree_case("garbage certificate", &["{pki}/apiserver.crt"], |c| replace_file(&c.pki.join("apiserver.crt"), b"garbage\n")),
        tree_case("key PEM in a certificate file", &["{pki}/apiserver.crt", "CERTIFICATE"], |c| {
            replace_file(&c.pki.join("apiserver.crt"), &read(&c.pki.join("apiserver.key")))
        }),
        tree_case("DER certificate", &["{pki}/apiserver.crt", "DER"], |c| {
            let p = c.pki.join("apiserver.crt");
            let der = openssl_out(&["x509", "-outform", "DER"], &read(&p));
            replace_file(&p, &der);
        }),
        tree_case("empty certificate", &["{pki}/apiserver.crt"], |c| replace_file(&c.pki.join("apiserver.crt"), b"")),
        tree_case("truncated key", &["{pki}/apiserver.key"], |c| {
            let p = c.pki.join("apiserver.key");
            let b = read(&p);
            replace_file(&p, &b[..b.len() / 2]);
        }),
        tree_case("certificate PEM in a key file", &["{pki}/apiserver.key", "found CERTIFICATE"], |c| {
            replace_file(&c.pki.join("apiserver.key"), &read(&c.pki.join("apiserver.crt")))
        }),
        tree_case("DER key", &["{pki}/apiserver.key", "DER"], |c| {
            let p = c.pki.join("apiserver.key");
            let der = openssl_out(&["ec", "-outform", "DER"], &read(&p));
            replace_file(&p, &der);
        }),
        tree_case("empty key", &["{pki}/apiserver.key"], |c| replace_file(&c.pki.join("apiserver.key"), b"")),
        tree_case("encrypted PKCS#8 key", &["{pki}/apiserver.key", "encrypted"], |c| {
            let p = c.pki.join("apiserver.key");
            let enc = openssl_out(&["pkcs8", "-topk8", "-passout", "pass:x"], &read(&p));
            replace_file(&p, &enc);
        }),
        tree_case("encrypted legacy PEM key", &["{pki}/apiserver.key", "encrypted"], |c| {
            let p = c.pki.join("apiserver.key");
            let enc = openssl_out(&["ec", "-aes256", "-passout", "pass:x"], &read(&p));
            replace_file(&p, &enc);
        }),
        tree_case("key of another certificate", &["{pki}/apiserver.key", "does not match"], |c| {
            replace_file(&c.pki.join("apiserver.key"), &read(&c.pki.join("front-proxy-client.key")))
        }),
        tree_case("CA certificate corrupt", &["{pki}/ca.crt", "never replaces a CA"], |c| replace_file(&c.pki.join("ca.crt"), b"junk\n")),
        tree_case("CA key of another CA", &["{pki}/ca.key", "does not match"], |c| {
            replace_file(&c.pki.join("ca.key"), &read(&c.pki.join("front-proxy-ca.key")))
        }),
        tree_case("CA key encrypted", &["{pki}/ca.key", "encrypted"], |c| {
            let p = c.pki.join("ca.key");
            let enc = openssl_out(&["pkcs8", "-topk8", "-passout", "pass:x"], &read(&p));
            replace_file(&p, &enc);
        }),
        tree_case("CA key truncated", &["{pki}/etcd/ca.key"], |c| {
            let p = c.pki.join("etcd/ca.key");
            let b = read(&p);
            replace_file(&p, &b[..40]);
        }),
        tree_case("leaf not signed by its CA", &["{pki}/apiserver.crt", "not signed by CA ca"], |c| {
            for ext in ["crt", "key"] {
                let from = c.pki.join(format!("front-proxy-client.{ext}"));
                replace_file(&c.pki.join(format!("apiserver.{ext}")), &read(&from));
            }
        }),
        tree_case("sa.pub of another key", &["{pki}/sa.pub", "does not match"], |c| {
            let p = openssl_out(&["pkey", "-pubout"], &read(&c.pki.join("apiserver.key")));
            replace_file(&c.pki.join("sa.pub"), &p);
        }),
        tree_case("sa.pub holds a certificate", &["{pki}/sa.pub", "PUBLIC KEY"], |c| replace_file(&c.pki.join("sa.pub"), &read(&c.pki.join("ca.crt")))),
        tree_case("sa.key missing, sa.pub present", &["{pki}/sa.key", "missing"], |c| std::fs::remove_file(c.pki.join("sa.key")).unwrap()),
        tree_case("leaf key missing, certificate present", &["{pki}/apiserver.key", "missing"], |c| std::fs::remove_file(c.pki.join("apiserver.key")).unwrap()),
        tree_case("directory where a certificate goes", &["{pki}/apiserver.crt", "directory"], |c| {
            std::fs::remove_file(c.pki.join("apiserver.crt")).unwrap();
            std::fs::create_dir(c.pki.join("apiserver.crt")).unwrap();
            set_mode(&c.pki.join("apiserver.crt"), 0o755);
        }),
        tree_case("directory where a CA key goes", &["{pki}/etcd/ca.key", "directory"], |c| {
            std::fs::remove_file(c.pki.join("etcd/ca.key")).unwrap();
            std::fs::create_dir(c.pki.join("etcd/ca.key")).unwrap();
            set_mode(&c.pki.join("etcd/ca.key"), 0o755);
        }),
        tree_case("FIFO where a key goes (would block a reader)", &["{pki}/apiserver.key", "not a regular file"], |c| {
            std::fs::remove_file(c.pki.join("apiserver.key")).unwrap();
            let st = std::process::Command::new("mkfifo").arg(c.pki.join("apiserver.key")).status().unwrap();
            assert!(st.success());
            set_mode(&c.pki.join("apiserver.key"), 0o600);
        }),
        // ---- kubeconfigs
        tree_case("kubeconfig: current-context missing", &["{k}/admin.conf", "nowhere"], |c| edit_conf(&c.k.join("admin.conf"), "current-context", "nowhere")),
        tree_case("kubeconfig: no current-context", &["{k}/admin.conf", "current-context"], |c| {
            let p = c.k.join("admin.conf");
            let t = String::from_utf8(read(&p)).unwrap();
            let t: String = t.lines().filter(|l| !l.starts_with("current-context:")).map(|l| format!("{l}\n")).collect();
            replace_file(&p, t.as_bytes());
        }),
        tree_case("kubeconfig: key data not base64", &["{k}/admin.conf", "client-key-data", "base64"], |c| edit_conf(&c.k.join("admin.conf"), "client-key-data", "\"%%% not base64 %%%\"")),
        tree_case("kubeconfig: certificate data not a certificate", &["{k}/admin.conf", "client-certificate-data"], |c| edit_conf(&c.k.join("admin.conf"), "client-certificate-data", "bm90IGEgY2VydGlmaWNhdGU=")),
        tree_case("kubeconfig: CA data not base64", &["{k}/scheduler.conf", "certificate-authority-data"], |c| edit_conf(&c.k.join("scheduler.conf"), "certificate-authority-data", "\"???\"")),
        tree_case("kubeconfig: not YAML", &["{k}/admin.conf"], |c| replace_file(&c.k.join("admin.conf"), b": : : [\n")),
        tree_case("kubeconfig: empty", &["{k}/kubelet.conf"], |c| replace_file(&c.k.join("kubelet.conf"), b"")),
        tree_case("kubeconfig: key of another kubeconfig", &["{k}/admin.conf", "does not match"], |c| {
            let other = conf_field(&c.k.join("scheduler.conf"), "client-key-data");
            edit_conf(&c.k.join("admin.conf"), "client-key-data", &other);
        }),
        tree_case("kubeconfig: wrong CA embedded", &["{k}/admin.conf", "wrong CA"], |c| {
            use base64::Engine;
            let fp = base64::engine::general_purpose::STANDARD.encode(read(&c.pki.join("front-proxy-ca.crt")));
            edit_conf(&c.k.join("admin.conf"), "certificate-authority-data", &fp);
        }),
        // ---- renew and nodes on bad input
        case("renew over a truncated key", Env::Tree, cmd_with(&["certs", "renew", "all"], &[]), 2, &["{pki}/apiserver.key"]).setup(|c| {
            let p = c.pki.join("apiserver.key");
            let b = read(&p);
            replace_file(&p, &b[..b.len() / 2]);
        }),
        case("nodes: list missing", Env::Tree, strings(&["nodes", "--cert-dir", "{pki}", "--nodes", "{in}/nope.txt", "--out-dir", "{out}", "--apiserver-advertise-address", "10.0.0.10"]), 2, &["{in}/nope.txt"]),
        case("nodes: CA key missing", Env::Tree, strings(&["nodes", "--cert-dir", "{pki}", "--nodes", "{in}/nodes.txt", "--out-dir", "{out}", "--apiserver-advertise-address", "10.0.0.10"]), 2, &["{pki}/ca.key", "missing"]).setup(|c| {
            write(&c.input.join("nodes.txt"), b"node-a\n");
            std::fs::remove_file(c.pki.join("ca.key")).unwrap();
        }),
        // A bulk run reports each bad line and a summary: two lines, exit 1 (documented).
        case("nodes: bad node name", Env::Tree, strings(&["nodes", "--cert-dir", "{pki}", "--nodes", "{in}/nodes.txt", "--out-dir", "{out}", "--apiserver-advertise-address", "10.0.0.10"]), 1, &["{in}/nodes.txt:1", "bad_name!"])
            .setup(|c| write(&c.input.join("nodes.txt"), b"bad_name!\n"))
            .lines(2),
        case("nodes: bad IP", Env::Tree, strings(&["nodes", "--cert-dir", "{pki}", "--nodes", "{in}/nodes.txt", "--out-dir", "{out}", "--apiserver-advertise-address", "10.0.0.10"]), 1, &["{in}/nodes.txt:2", "10.1.0.999"])
            .setup(|c| write(&c.input.join("nodes.txt"), b"# comment\nnode-a,10.1.0.999\n"))
            .lines(2),
        // ---- issue 11: paths that would land on another entry's file or leave their directory
        spec_case("spec: kubeconfig file on a CA key", extra_kc("file = \"extra.conf\"", "file = \"pki/ca.key\""), &["extra.conf", "key of CA ca"]),
        spec_case("spec: kubeconfig file on the cert dir", extra_kc("file = \"extra.conf\"", "file = \"pki\""), &["extra.conf", "directory of"]),
        spec_case("spec: leaf on the key pair's key", extra("path = \"extra\"", "path = \"sa\""), &["extra", "sa"]),
        case("--node-name ca with a leaf at {node_name}", e, [strings(&["--spec", "{in}/spec.toml"]), init_with(&[("--node-name", Some("ca"))])].concat(), 2, &["--node-name", "\"ca\"", "certificate of CA ca"])
            .setup({ let t = extra("path = \"extra\"", "path = \"{node_name}\""); move |c| write(&c.input.join("spec.toml"), t.as_bytes()) }),
        case("--node-name pki makes a kubeconfig of the cert dir", e, [strings(&["--spec", "{in}/spec.toml"]), init_with(&[("--node-name", Some("pki"))])].concat(), 2, &["--node-name", "\"pki\"", "directory of"])
            .setup({ let t = extra_kc("file = \"extra.conf\"", "file = \"{node_name}\""); move |c| write(&c.input.join("spec.toml"), t.as_bytes()) }),
        case("--cluster-name ../../escaped/x in a file name", e, [strings(&["--spec", "{in}/spec.toml"]), init_with(&[("--cluster-name", Some("../../escaped/x"))])].concat(), 2, &["--cluster-name", "../../escaped/x", "leaves its directory"])
            .setup({ let t = extra_kc("file = \"extra.conf\"", "file = \"{cluster_name}.conf\""); move |c| write(&c.input.join("spec.toml"), t.as_bytes()) }),
        case("--cluster-name pki/ca names a CA key", Env::Tree, [strings(&["--spec", "{in}/spec.toml"]), init_with(&[("--cluster-name", Some("pki/ca"))])].concat(), 2, &["--cluster-name", "pki/ca", "of CA ca"])
            .setup({ let t = extra_kc("file = \"extra.conf\"", "file = \"{cluster_name}.key\""); move |c| write(&c.input.join("spec.toml"), t.as_bytes()) }),
        // ---- issue 11: the spec's own rules
        spec_case("spec: key_mode 0777", spec_edit(spec, "key_mode = \"0600\"", "key_mode = \"0777\""), &["defaults.key_mode", "0777"]),
        spec_case("spec: key_mode 0640", spec_edit(spec, "key_mode = \"0600\"", "key_mode = \"0640\""), &["defaults.key_mode", "0640"]),
        spec_case("spec: kubeconfig_mode 0700", spec_edit(spec, "kubeconfig_mode = \"0600\"", "kubeconfig_mode = \"0700\""), &["defaults.kubeconfig_mode", "0700"]),
        spec_case("spec: dir_mode 0777", spec_edit(spec, "dir_mode = \"0755\"", "dir_mode = \"0777\""), &["defaults.dir_mode", "0777"]),
        spec_case("spec: cert_mode 0755", spec_edit(spec, "cert_mode = \"0644\"", "cert_mode = \"0755\""), &["defaults.cert_mode", "0755"]),
        spec_case("spec: NUL in a path", extra("path = \"extra\"", "path = \"ex\\u0000tra\""), &["extra", "control"]),
        spec_case("spec: ESC in a name", extra("name = \"extra\"", "name = \"ex\\u001b[31mtra\""), &["ex\\u{1b}[31mtra", "control"]),
        spec_case("spec: newline in a CN", extra("cn = \"extra\"", "cn = \"ex\\ntra\""), &["extra", "cn", "control"]),
        spec_case("spec: key pair key on a directory", spec_edit(spec, "key = \"sa.key\"", "key = \"etcd\""), &["sa", "\"etcd\"", "directory"]),
        // ---- issue 11: bounds
        case("--jobs 100000", e, [strings(&["--jobs", "100000"]), init_with(&[])].concat(), 2, &["--jobs", "100000"]),
        case("--now 9999-12-31 (init)", e, [strings(&["--now", "9999-12-31T00:00:00Z"]), init_with(&[])].concat(), 2, &["--now", "9999"]),
        case("--now 1949 (init)", e, [strings(&["--now", "1949-06-01T00:00:00Z"]), init_with(&[])].concat(), 2, &["--now", "1949"]),
        case("--now 9999-12-31 (kubeconfig user)", Env::Tree, strings(&["--now", "9999-12-31T00:00:00Z", "kubeconfig", "user", "--client-name", "x", "--cert-dir", "{pki}", "--apiserver-advertise-address", "10.0.0.10"]), 2, &["--now", "9999"]),
        case("--now 9999-12-31 (nodes)", Env::Tree, strings(&["--now", "9999-12-31T00:00:00Z", "nodes", "--cert-dir", "{pki}", "--nodes", "{in}/nodes.txt", "--out-dir", "{out}", "--apiserver-advertise-address", "10.0.0.10"]), 2, &["--now", "9999"])
            .setup(|c| write(&c.input.join("nodes.txt"), b"node-a\n")),
        case("--now 9999-12-31 (upload-bundle)", Env::Tree, strings(&["--now", "9999-12-31T23:00:00Z", "certs", "upload-bundle", "--cert-dir", "{pki}", "--certificate-key", &"ab".repeat(32)]), 2, &["--now"]),
        case("--now with an escape sequence", e, [strings(&["--now", "\u{1b}[2J\u{1b}[Hyesterday\nerror: forged"]), init_with(&[])].concat(), 2, &["--now", "\\u{1b}[2J"]),
        case("--config with a newline in its name", e, strings(&["init", "--cert-dir", "{pki}", "--config", "{in}/no\nsuch\u{1b}[31m.yaml"]), 2, &["{in}/no\\nsuch\\u{1b}[31m.yaml"]),
        // ---- issue 11: a CA that must not sign
        case("CA expired", Env::Tree, [strings(&["--now", "2045-01-01T00:00:00Z"]), init_with(&[])].concat(), 2, &["{pki}/ca.crt", "expired"])
            .setup(|c| remove_pair(&c.pki, "apiserver")),
        case("CA not yet valid", Env::Tree, [strings(&["--now", "2001-01-01T00:00:00Z"]), init_with(&[])].concat(), 2, &["{pki}/ca.crt", "not valid before"])
            .setup(|c| remove_pair(&c.pki, "apiserver")),
        tree_case("CA with a negative serial", &["{pki}/ca.crt", "negative serial"], |c| {
            let ca = c.pki.join("ca.crt");
            let key = c.pki.join("ca.key").display().to_string();
            let neg = openssl_out(&["req", "-x509", "-key", &key, "-subj", "/CN=kubernetes", "-days", "3650", "-set_serial", "-12345", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,digitalSignature"], b"");
            replace_file(&ca, &neg);
            remove_pair(&c.pki, "apiserver");
        }),
        tree_case("CA with an RSA-1024 key", &["{pki}/ca.crt", "RSA-1024"], |c| {
            let key = openssl_out(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"], b"");
            replace_file(&c.pki.join("ca.key"), &key);
            let k = c.pki.join("ca.key").display().to_string();
            let crt = openssl_out(&["req", "-x509", "-key", &k, "-subj", "/CN=kubernetes", "-days", "3650", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,digitalSignature"], b"");
            replace_file(&c.pki.join("ca.crt"), &crt);
        }).forbid(&["same name"]),
        tree_case("leaf holding its CA's key", &["{pki}/apiserver.crt", "key-reused", "uses the key of CA ca"], |c| {
            let k = c.pki.join("ca.key").display().to_string();
            let crt = c.pki.join("ca.crt").display().to_string();
            let csr = openssl_out(&["req", "-new", "-key", &k, "-subj", "/CN=kube-apiserver"], b"");
            let leaf = openssl_out(&["x509", "-req", "-CA", &crt, "-CAkey", &k, "-days", "365", "-set_serial", "7"], &csr);
            replace_file(&c.pki.join("apiserver.crt"), &leaf);
            replace_file(&c.pki.join("apiserver.key"), &read(&c.pki.join("ca.key")));
        }),
        // ---- issue 11: kubeconfigs
        tree_case("kubeconfig: two users of one name", &["{k}/admin.conf", "two users named"], |c| {
            let p = c.k.join("admin.conf");
            let t = String::from_utf8(read(&p)).unwrap();
            let user = t[t.find("users:\n").unwrap() + 7..].to_string();
            replace_file(&p, format!("{t}{user}").as_bytes());
        }),
        tree_case("kubeconfig: a duplicate YAML key", &["{k}/admin.conf", "\"kind\" appears twice"], |c| {
            let p = c.k.join("admin.conf");
            replace_file(&p, format!("{}kind: Config\n", String::from_utf8(read(&p)).unwrap()).as_bytes());
        }).forbid(&["DuplicateKeyPolicy"]),
        tree_case("kubeconfig: current-context holds key material", &["{k}/admin.conf", "not shown"], |c| {
            let p = c.k.join("admin.conf");
            let key = conf_field(&p, "client-key-data");
            edit_conf(&p, "current-context", &key);
        }).forbid(&["LS0tLS1CRUdJTi", "PRIVATE KEY"]),
        tree_case("kubeconfig: a PEM key pasted as a name", &["{k}/admin.conf", "not shown"], |c| {
            edit_conf(&c.k.join("admin.conf"), "current-context", "\"-----BEGIN EC PRIVATE KEY-----\\nMHcCAQEEIBogusKeyMaterialThatMustNeverBeEchoed\\n\"");
        }).forbid(&["MHcCAQEE", "BEGIN"]),
        tree_case("kubeconfig: a private key where it goes", &["{k}/admin.conf", "not shown"], |c| {
            replace_file(&c.k.join("admin.conf"), &read(&c.pki.join("ca.key")));
        }).forbid(&["PRIVATE KEY", "BEGIN"]),
        tree_case("kubeconfig: a directory where it goes (path printed once)", &["{k}/admin.conf", "directory"], |c| {
            std::fs::remove_file(c.k.join("admin.conf")).unwrap();
            std::fs::create_dir(c.k.join("admin.conf")).unwrap();
            set_mode(&c.k.join("admin.conf"), 0o755);
        }).once(&["{k}/admin.conf:"]),
        // ---- issue 11: inputs the apiserver cannot use
        case("advertise address multicast", e, init_with(&[("--apiserver-advertise-address", Some("224.0.0.1"))]), 2, &["--apiserver-advertise-address", "224.0.0.1", "multicast"]),
        case("advertise address IPv6 multicast", e, init_with(&[("--apiserver-advertise-address", Some("ff02::1"))]), 2, &["--apiserver-advertise-address", "ff02::1", "multicast"]),
        case("advertise address broadcast", e, init_with(&[("--apiserver-advertise-address", Some("255.255.255.255"))]), 2, &["--apiserver-advertise-address", "255.255.255.255", "broadcast"]),
        case("IPv6 service CIDR /64", e, init_with(&[("--service-cidr", Some("fd00:10:96::/64"))]), 2, &["--service-cidr", "fd00:10:96::/64", "108"]),
        case("IPv4 service CIDR /8", e, init_with(&[("--service-cidr", Some("10.0.0.0/8"))]), 2, &["--service-cidr", "10.0.0.0/8", "12"]),
        // ---- issue 11: links and directories
        tree_case("pki/etcd a dangling link", &["{pki}/etcd", "dangling symbolic link"], |c| {
            std::fs::remove_dir_all(c.pki.join("etcd")).unwrap();
            std::os::unix::fs::symlink("/nonexistent-kpki-target", c.pki.join("etcd")).unwrap();
        }).once(&["dangling"]),
        case("generate-csr: a dangling link at a later key path", e, cmd_with(&["certs", "generate-csr"], &[]), 2, &["{pki}/front-proxy-client.key", "dangling"])
            .setup(|c| {
                std::fs::create_dir_all(&c.pki).unwrap();
                set_mode(&c.pki, 0o755);
                std::os::unix::fs::symlink(c.out.join("stolen.key"), c.pki.join("front-proxy-client.key")).unwrap();
            }),
    ];
    // Unreadable files: tests run as root here, and root reads a mode-000 file, so the case is
    // only meaningful for another user.
    if !is_root() {
        v.push(tree_case(
            "unreadable key (mode 000)",
            &["{pki}/apiserver.key", "ermission denied"],
            |c| set_mode(&c.pki.join("apiserver.key"), 0o000),
        ));
    }
    v
}

fn is_root() -> bool {
    let out = util::tool("id", ["-u"], None);
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// Runs kpki; a run that hangs (e.g. reading a FIFO) is killed and reported as a failure.
fn kpki_with_timeout(args: &[String], limit: Duration) -> Output {
    let mut child = Kpki::new(args)
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("kpki {args:?} hung for {limit:?}: {}", util::stderr(&out));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.wait_with_output().unwrap()
}

fn fill(t: &str, c: &Ctx) -> String {
    t.replace("{pki}", &c.pki.display().to_string())
        .replace("{k}", &c.k.display().to_string())
        .replace("{in}", &c.input.display().to_string())
        .replace("{out}", &c.out.display().to_string())
}

#[test]
fn bad_inputs_are_refused_cleanly_and_change_nothing() {
    let spec = util::kpki_ok(["spec"]);
    // The extra entries the spec cases break are valid as they stand.
    for extra in [EXTRA, EXTRA_KC] {
        let d = tempfile::tempdir().unwrap();
        let p = util::write_file(d.path(), "spec.toml", format!("{spec}{extra}").as_bytes());
        let l = Layout::new(d.path());
        let mut args = strings(&["--spec", &p.display().to_string()]);
        args.extend(l.args(&["plan"], INPUTS));
        util::kpki_ok(&args);
    }
    let template = tempfile::tempdir().unwrap();
    let tl = Layout::new(template.path());
    run_ok(&tl.args(&["init"], INPUTS));

    let cases = cases(&spec);
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let l = Layout::new(root);
        let c = Ctx {
            input: root.join("in"),
            out: root.join("out"),
            k: l.k.clone(),
            pki: l.pki.clone(),
        };
        std::fs::create_dir(&c.input).unwrap();
        std::fs::create_dir(&c.out).unwrap();
        set_mode(&c.out, 0o755);
        if case.env == Env::Tree {
            copy_dir(&tl.k, &c.k, Modes::Keep);
        }
        (case.setup)(&c);
        let args: Vec<String> = case.args.iter().map(|a| fill(a, &c)).collect();
        let before = util::snapshot(root);
        let out = kpki_with_timeout(&args, Duration::from_secs(30));
        let after = util::snapshot(root);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let mut why = Vec::new();
        if out.status.code() != Some(case.code) {
            why.push(format!(
                "exit {:?}, expected {}",
                out.status.code(),
                case.code
            ));
        }
        if err.contains("panicked") || err.contains("RUST_BACKTRACE") {
            why.push("panicked".into());
        }
        if err.lines().count() != case.lines {
            why.push(format!(
                "{} stderr lines, expected {}",
                err.lines().count(),
                case.lines
            ));
        }
        if !err.lines().all(|l| l.starts_with("error: ")) {
            why.push("a line does not start with `error: `".into());
        }
        // One line stays one line, and nothing a terminal interprets reaches it.
        if err.chars().any(|c| c.is_control() && c != '\n') {
            why.push(format!("raw control character in {err:?}"));
        }
        if err.len() > 8192 {
            why.push(format!("{}-byte error output", err.len()));
        }
        for n in &case.forbidden {
            if err.contains(&fill(n, &c)) {
                why.push(format!("shows {n:?}"));
            }
        }
        for n in &case.once {
            let n = fill(n, &c);
            if err.matches(&n).count() != 1 {
                why.push(format!("names {n:?} {} times", err.matches(&n).count()));
            }
        }
        for n in &case.needles {
            let n = fill(n, &c);
            if !err.contains(&n) {
                why.push(format!("does not name {n:?}"));
            }
        }
        let changed = util::changed(&before, &after);
        let touched = util::touched(&before, &after);
        if !changed.is_empty() || !touched.is_empty() {
            why.push(format!("changed {changed:?}, rewritten {touched:?}"));
        }
        println!(
            "[{i:2}] {:<50} exit {:?}: {}",
            case.name,
            out.status.code(),
            err.lines().next().unwrap_or("")
        );
        if !why.is_empty() {
            failures.push(format!(
                "{}: {}\n      stderr: {err}",
                case.name,
                why.join("; ")
            ));
        }
    }
    println!("{} bad inputs tried", cases.len());
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n  {}",
        failures.len(),
        cases.len(),
        failures.join("\n  ")
    );
}

/// Tests run as root here: a mode-000 file is still readable by root, so kpki reads it and the
/// run succeeds. This records that (and checks the case for real when not root).
#[test]
fn unreadable_file_as_root_is_still_read() {
    if !is_root() {
        println!("not root: the mode-000 case is in the catalogue");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let l = Layout::new(dir.path());
    run_ok(&l.args(&["init"], INPUTS));
    set_mode(&l.pki.join("apiserver.key"), 0o000);
    let out = util::kpki_ok(l.args(&["init"], INPUTS));
    assert!(out.contains("[certs] 0 file(s) written"), "{out}");
    assert!(out.contains("[kubeconfig] 0 file(s) written"), "{out}");
    assert_eq!(
        util::mode(&l.pki.join("apiserver.key")),
        0o000,
        "kpki changed the mode"
    );
}
