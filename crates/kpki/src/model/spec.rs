//! The declarative certificate table (`certs-spec.toml`).
//!
//! The spec is the single source of truth for what a tree holds: every CA, leaf, bare key pair
//! and kubeconfig, with its subject, SAN templates, usages, validity, key algorithm and file
//! modes. Loading validates the whole table up front, so a broken spec is rejected before any
//! file is touched.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Component, Path};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::model::condition::Condition;
use crate::model::readers::Reader;
use crate::x509::keys::KeyAlgorithm;

/// The spec compiled into the binary: the repository's `certs-spec.toml`.
/// (The crate carries its own copy, `crates/kpki/certs-spec.toml`, so that `cargo package`
/// works; a test keeps it byte-equal to the repository's `certs-spec.toml`, the file people read
/// and edit.)
pub const DEFAULT_SPEC: &str = include_str!("../../certs-spec.toml");

/// Scalar template variables (`{name}` anywhere in a template).
pub const SCALAR_VARS: &[&str] = &[
    "node_name",
    "advertise_address",
    "control_plane_host",
    "service_ip",
    "dns_domain",
    "cluster_name",
];

/// List template variables: they may only stand alone as a whole `sans` item.
pub const LIST_VARS: &[&str] = &[
    "apiserver_extra_sans",
    "etcd_server_extra_sans",
    "etcd_peer_extra_sans",
];

/// A parsed and validated certificate spec.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Format version; only 1 exists.
    pub version: u32,
    /// Tree-wide defaults.
    #[serde(default)]
    pub defaults: Defaults,
    /// Certificate authorities.
    #[serde(default, rename = "ca")]
    pub cas: Vec<CertSpec>,
    /// Leaf certificates stored as `<path>.crt` / `<path>.key` in the cert dir.
    #[serde(default, rename = "cert")]
    pub certs: Vec<CertSpec>,
    /// Bare key pairs (the service-account signing key).
    #[serde(default, rename = "keypair")]
    pub keypairs: Vec<KeyPairSpec>,
    /// Kubeconfig files with an embedded client certificate.
    #[serde(default, rename = "kubeconfig")]
    pub kubeconfigs: Vec<KubeconfigSpec>,
    /// Per-node credentials for `kpki nodes` (kubelet client and serving certs).
    #[serde(default)]
    pub node: Option<NodeSpec>,
    /// The kubeconfig `kpki kubeconfig user` issues (`{client_name}`, list `{client_orgs}`).
    #[serde(default)]
    pub user: Option<KubeconfigSpec>,
    /// The token kubeconfig `kpki kubeconfig bootstrap` writes for TLS bootstrapping.
    #[serde(default)]
    pub bootstrap: Option<BootstrapSpec>,
    /// Where the spec came from (a path or "embedded default"), for messages.
    #[serde(skip)]
    pub origin: String,
}

/// A kubeconfig authenticating with a bootstrap token instead of a client certificate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapSpec {
    /// Unique name.
    pub name: String,
    /// File name under the kubeconfig dir (the default output; `--out` replaces it).
    pub file: String,
    /// The CA the kubelet trusts (embedded as certificate-authority-data).
    pub ca: String,
    /// The kubeconfig user name (kubeadm: `tls-bootstrap-token-user`).
    pub user: String,
    /// `control_plane` or `local`.
    pub server: String,
}

/// Tree-wide defaults; each entry may override the key algorithm.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// `"cluster"` (follow `--encryption-algorithm`) or a fixed algorithm name.
    #[serde(default = "cluster")]
    pub key_algorithm: String,
    /// Mode of certificate files.
    #[serde(default = "mode_0644")]
    pub cert_mode: String,
    /// Mode of private key files.
    #[serde(default = "mode_0600")]
    pub key_mode: String,
    /// Mode of bare public key files (kubeadm writes `sa.pub` 0600).
    #[serde(default = "mode_0600")]
    pub pub_mode: String,
    /// Mode of directories kpki creates.
    #[serde(default = "mode_0755")]
    pub dir_mode: String,
    /// Mode of kubeconfig files.
    #[serde(default = "mode_0600")]
    pub kubeconfig_mode: String,
}

fn yes() -> bool {
    true
}

fn cluster() -> String {
    "cluster".into()
}
fn mode_0644() -> String {
    "0644".into()
}
fn mode_0600() -> String {
    "0600".into()
}
fn mode_0755() -> String {
    "0755".into()
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            key_algorithm: cluster(),
            cert_mode: mode_0644(),
            key_mode: mode_0600(),
            pub_mode: mode_0600(),
            dir_mode: mode_0755(),
            kubeconfig_mode: mode_0600(),
        }
    }
}

/// A CA or leaf certificate entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertSpec {
    /// Unique name (kubeadm's UX name, e.g. `etcd-server`).
    pub name: String,
    /// Base path under the cert dir; `.crt` and `.key` are appended.
    pub path: String,
    /// Human description (kubeadm's long name), used in messages.
    #[serde(default)]
    pub long_name: String,
    /// Signing CA; absent on a CA means self-signed.
    #[serde(default)]
    pub ca: Option<String>,
    /// Common name template.
    pub cn: String,
    /// Organization templates (Kubernetes groups).
    #[serde(default)]
    pub o: Vec<String>,
    /// SAN templates.
    #[serde(default)]
    pub sans: Vec<String>,
    /// Key usage names (`digital_signature`, `key_encipherment`, `key_cert_sign`, ...).
    #[serde(default)]
    pub key_usages: Vec<String>,
    /// Extended key usage names (`server_auth`, `client_auth`, ...).
    #[serde(default)]
    pub ext_key_usages: Vec<String>,
    /// `"ca"`, `"cert"` or a Go duration.
    #[serde(default)]
    pub validity: Option<String>,
    /// Overrides the default key algorithm.
    #[serde(default)]
    pub key_algorithm: Option<String>,
    /// Condition (see [`crate::model::condition`]): the entry exists only where it holds.
    #[serde(default)]
    pub when: Option<String>,
    /// Whether `certs renew all` renews it (default true; kubelet.conf says false: the kubelet
    /// rotates its own client certificate, and kubeadm's `renew all` leaves it alone).
    #[serde(default = "yes")]
    pub renew_all: bool,
    /// Travels in the control-plane join bundle (`kpki certs upload-bundle`): CAs only, since
    /// every node issues its own leaves.
    #[serde(default)]
    pub bundle: bool,
    /// Version- or feature-dependent values, applied in order where their `when` holds.
    #[serde(default, rename = "variant")]
    pub variants: Vec<Variant>,
    /// Which component reads the certificate and key, through which flags (see
    /// [`crate::model::readers`]).
    #[serde(default)]
    pub read_by: Vec<Reader>,
}

/// A variant of an entry: values that replace the entry's where `when` holds (e.g. the O
/// kubeadm < 1.29 wrote, or kubelet.conf's server without `ControlPlaneKubeletLocalMode`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Condition (see [`crate::model::condition`]); required.
    pub when: String,
    /// Replaces `o`.
    #[serde(default)]
    pub o: Option<Vec<String>>,
    /// Replaces `server` (kubeconfigs only).
    #[serde(default)]
    pub server: Option<String>,
    /// Replaces `key_algorithm`.
    #[serde(default)]
    pub key_algorithm: Option<String>,
    /// Why the variant exists (kubeadm version and PR); shown by nothing, read by people.
    #[serde(default)]
    pub why: Option<String>,
}

/// A bare key pair (no certificate).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPairSpec {
    /// Unique name.
    pub name: String,
    /// Private key path under the cert dir.
    pub key: String,
    /// Public key path under the cert dir.
    #[serde(rename = "pub")]
    pub public: String,
    /// Human description.
    #[serde(default)]
    pub long_name: String,
    /// Overrides the default key algorithm.
    #[serde(default)]
    pub key_algorithm: Option<String>,
    /// Condition (see [`crate::model::condition`]).
    #[serde(default)]
    pub when: Option<String>,
    /// Travels in the control-plane join bundle (both files).
    #[serde(default)]
    pub bundle: bool,
    /// Which component reads the public and private key, through which flags.
    #[serde(default)]
    pub read_by: Vec<Reader>,
}

/// A kubeconfig with an embedded client certificate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeconfigSpec {
    /// Unique name (the file name, as kubeadm's renew sub-commands call it).
    pub name: String,
    /// File path under the kubeconfig dir.
    pub file: String,
    /// Signing CA (its certificate is embedded as certificate-authority-data).
    pub ca: String,
    /// Client common name template (the Kubernetes user).
    pub cn: String,
    /// Client organization templates (the Kubernetes groups).
    #[serde(default)]
    pub o: Vec<String>,
    /// `control_plane` or `local`.
    pub server: String,
    /// Key usage names.
    #[serde(default)]
    pub key_usages: Vec<String>,
    /// Extended key usage names.
    #[serde(default)]
    pub ext_key_usages: Vec<String>,
    /// `"cert"` or a Go duration.
    #[serde(default)]
    pub validity: Option<String>,
    /// Overrides the default key algorithm.
    #[serde(default)]
    pub key_algorithm: Option<String>,
    /// Condition (see [`crate::model::condition`]).
    #[serde(default)]
    pub when: Option<String>,
    /// Whether `certs renew all` renews it (default true; kubelet.conf says false: the kubelet
    /// rotates its own client certificate, and kubeadm's `renew all` leaves it alone).
    #[serde(default = "yes")]
    pub renew_all: bool,
    /// Version- or feature-dependent values, applied in order where their `when` holds.
    #[serde(default, rename = "variant")]
    pub variants: Vec<Variant>,
    /// Which component reads the kubeconfig, through which flags.
    #[serde(default)]
    pub read_by: Vec<Reader>,
}

/// Per-node credentials (`kpki nodes`). `{node_name}` and `{node_ips}` are the node's own values.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// The kubelet client kubeconfig.
    pub kubeconfig: KubeconfigSpec,
    /// The optional kubelet serving certificate (`--serving`).
    #[serde(default)]
    pub serving: Option<CertSpec>,
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal text.
    Lit(String),
    /// A scalar variable.
    Var(String),
}

/// A parsed template: `kubernetes.default.svc.{dns_domain}` or a whole list variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Template {
    /// Literal text and scalar variables.
    Scalar(Vec<Piece>),
    /// A list variable standing alone.
    List(String),
}

impl Template {
    /// Parses a template, checking every variable against `scalars` and `lists`.
    pub fn parse(
        text: &str,
        scalars: &[&str],
        lists: &[&str],
    ) -> std::result::Result<Self, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Lit(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("template {text:?}: unclosed '{{'"))?;
            let var = &after[..close];
            if lists.contains(&var) {
                if text != format!("{{{var}}}") {
                    return Err(format!(
                        "template {text:?}: list variable {{{var}}} must stand alone as a whole item"
                    ));
                }
                return Ok(Template::List(var.to_string()));
            }
            if !scalars.contains(&var) {
                return Err(format!(
                    "template {text:?}: unknown variable {{{var}}} (known: {})",
                    scalars
                        .iter()
                        .chain(lists.iter())
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            pieces.push(Piece::Var(var.to_string()));
            rest = &after[close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("template {text:?}: stray '}}'"));
        }
        if !rest.is_empty() {
            pieces.push(Piece::Lit(rest.to_string()));
        }
        Ok(Template::Scalar(pieces))
    }

    /// Expands the template. Scalar templates give one value (dropped when a variable is empty);
    /// list templates give the list.
    pub fn expand(
        &self,
        scalars: &HashMap<&str, String>,
        lists: &HashMap<&str, Vec<String>>,
    ) -> Vec<String> {
        match self {
            Template::List(var) => lists.get(var.as_str()).cloned().unwrap_or_default(),
            Template::Scalar(pieces) => {
                let mut out = String::new();
                for p in pieces {
                    match p {
                        Piece::Lit(s) => out.push_str(s),
                        Piece::Var(v) => {
                            let val = scalars.get(v.as_str()).map(String::as_str).unwrap_or("");
                            if val.is_empty() {
                                return Vec::new();
                            }
                            out.push_str(val);
                        }
                    }
                }
                vec![out]
            }
        }
    }
}

/// Key usage names accepted in the spec.
pub const KEY_USAGES: &[&str] = &[
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
];

/// Extended key usage names accepted in the spec.
pub const EXT_KEY_USAGES: &[&str] = &[
    "server_auth",
    "client_auth",
    "code_signing",
    "email_protection",
    "time_stamping",
    "ocsp_signing",
];

impl Spec {
    /// The embedded default spec.
    pub fn default_spec() -> Result<Spec> {
        Spec::parse(DEFAULT_SPEC, "embedded default")
    }

    /// Reads and validates a spec file.
    pub fn load(path: &Path) -> Result<Spec> {
        let bytes = crate::limits::read_capped(path, crate::limits::MAX_SPEC, true)?
            .ok_or_else(|| Error::file(path, "No such file or directory (os error 2)"))?;
        let text = String::from_utf8(bytes).map_err(|_| Error::file(path, "is not UTF-8 text"))?;
        Spec::parse(&text, &path.display().to_string())
    }

    /// Parses and validates spec text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Spec> {
        let mut spec: Spec = toml::from_str(text).map_err(|e| Error::Spec {
            origin: origin.to_string(),
            entry: "toml".into(),
            message: e.message().replace('\n', " ").trim().to_string()
                + &e.span()
                    .map(|s| {
                        let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                        format!(" (line {line})")
                    })
                    .unwrap_or_default(),
        })?;
        spec.validate().map_err(|(entry, message)| Error::Spec {
            origin: origin.to_string(),
            entry,
            message,
        })?;
        spec.origin = origin.to_string();
        Ok(spec)
    }

    /// Looks up a CA entry by name.
    pub fn ca(&self, name: &str) -> Option<&CertSpec> {
        self.cas.iter().find(|c| c.name == name)
    }

    /// Every text of every entry that reaches a path, a certificate or a message: `(entry,
    /// field, value)`.
    fn texts(&self) -> Vec<(&str, &'static str, &str)> {
        let mut v: Vec<(&str, &'static str, &str)> = Vec::new();
        let mut certs: Vec<&CertSpec> = self.cas.iter().chain(&self.certs).collect();
        if let Some(s) = self.node.as_ref().and_then(|n| n.serving.as_ref()) {
            certs.push(s);
        }
        for c in certs {
            let n = c.name.as_str();
            v.extend(
                [
                    ("name", &c.name),
                    ("path", &c.path),
                    ("long_name", &c.long_name),
                    ("cn", &c.cn),
                ]
                .map(|(f, x)| (n, f, x.as_str())),
            );
            v.extend(c.o.iter().map(|x| (n, "o", x.as_str())));
            v.extend(c.sans.iter().map(|x| (n, "sans", x.as_str())));
        }
        for k in &self.keypairs {
            let n = k.name.as_str();
            v.extend(
                [
                    ("name", &k.name),
                    ("key", &k.key),
                    ("pub", &k.public),
                    ("long_name", &k.long_name),
                ]
                .map(|(f, x)| (n, f, x.as_str())),
            );
        }
        let mut kcs: Vec<&KubeconfigSpec> = self.kubeconfigs.iter().collect();
        if let Some(n) = &self.node {
            kcs.push(&n.kubeconfig);
        }
        kcs.extend(self.user.as_ref());
        if let Some(b) = &self.bootstrap {
            let n = b.name.as_str();
            v.extend(
                [("name", &b.name), ("file", &b.file), ("user", &b.user)]
                    .map(|(f, x)| (n, f, x.as_str())),
            );
        }
        for k in kcs {
            let n = k.name.as_str();
            v.extend(
                [("name", &k.name), ("file", &k.file), ("cn", &k.cn)]
                    .map(|(f, x)| (n, f, x.as_str())),
            );
            v.extend(k.o.iter().map(|x| (n, "o", x.as_str())));
        }
        v
    }

    fn validate(&self) -> std::result::Result<(), (String, String)> {
        if self.version != 1 {
            return Err((
                "version".into(),
                format!(
                    "unsupported spec version {}; this kpki reads version 1",
                    self.version
                ),
            ));
        }
        let d = &self.defaults;
        for (field, v) in [
            ("cert_mode", &d.cert_mode),
            ("key_mode", &d.key_mode),
            ("pub_mode", &d.pub_mode),
            ("dir_mode", &d.dir_mode),
            ("kubeconfig_mode", &d.kubeconfig_mode),
        ] {
            let m = parse_mode(v).map_err(|m| (format!("defaults.{field}"), m))?;
            check_mode(field, m).map_err(|m| (format!("defaults.{field}"), m))?;
        }
        check_algorithm(&d.key_algorithm).map_err(|m| ("defaults.key_algorithm".to_string(), m))?;

        let mut names = BTreeSet::new();
        let mut cert_files: BTreeMap<String, String> = BTreeMap::new();
        let mut kc_files: BTreeMap<String, String> = BTreeMap::new();
        let claim = |files: &mut BTreeMap<String, String>,
                     entry: &str,
                     path: &str|
         -> std::result::Result<(), (String, String)> {
            check_rel_path(path).map_err(|m| (entry.to_string(), m))?;
            let norm = Path::new(path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            if let Some(other) = files.insert(norm.clone(), entry.to_string()) {
                return Err((
                    entry.to_string(),
                    format!("path {norm:?} is already used by entry {other:?}"),
                ));
            }
            Ok(())
        };
        let all_names = self
            .cas
            .iter()
            .map(|c| &c.name)
            .chain(self.certs.iter().map(|c| &c.name))
            .chain(self.keypairs.iter().map(|k| &k.name))
            .chain(self.kubeconfigs.iter().map(|k| &k.name));
        for (entry, field, v) in self.texts() {
            if let Some(c) = v.chars().find(|c| crate::text::is_unsafe(*c)) {
                return Err((
                    crate::text::escape(entry),
                    format!(
                        "{field} {} contains the control or formatting character {:?}",
                        crate::text::quote(v),
                        c
                    ),
                ));
            }
        }
        for n in all_names {
            if n.is_empty() {
                return Err(("(unnamed)".into(), "entry has an empty name".into()));
            }
            if !names.insert(n.clone()) {
                return Err((n.clone(), "duplicate entry name".into()));
            }
        }
        for (is_ca, c) in self
            .cas
            .iter()
            .map(|c| (true, c))
            .chain(self.certs.iter().map(|c| (false, c)))
        {
            claim(&mut cert_files, &c.name, &format!("{}.crt", c.path))?;
            claim(&mut cert_files, &c.name, &format!("{}.key", c.path))?;
            self.check_cert(c, is_ca, &SCALAR_VARS.to_vec(), LIST_VARS)?;
        }
        for k in &self.keypairs {
            claim(&mut cert_files, &k.name, &k.key)?;
            claim(&mut cert_files, &k.name, &k.public)?;
            if let Some(a) = &k.key_algorithm {
                check_algorithm(a).map_err(|m| (k.name.clone(), m))?;
            }
            check_when(&k.when).map_err(|m| (k.name.clone(), m))?;
        }
        self.check_bundle_keys()?;
        for k in &self.kubeconfigs {
            claim(&mut kc_files, &k.name, &k.file)?;
            self.check_kubeconfig(k, SCALAR_VARS)?;
        }
        if let Some(u) = &self.user {
            let scalars: Vec<&str> = SCALAR_VARS.iter().copied().chain(["client_name"]).collect();
            self.check_kubeconfig_with(u, &scalars, &["client_orgs"])?;
            Template::parse(&u.file, &scalars, &[])
                .map_err(|m| (u.name.clone(), format!("file: {m}")))?;
        }
        if let Some(b) = &self.bootstrap {
            let e = |m: String| (b.name.clone(), m);
            if self.ca(&b.ca).is_none() {
                return Err(e(format!(
                    "unknown CA {:?} (no [[ca]] entry has that name)",
                    b.ca
                )));
            }
            check_server(&b.server).map_err(e)?;
            if b.user.trim().is_empty() || b.file.trim().is_empty() {
                return Err(e("user and file must not be empty".into()));
            }
            Template::parse(&b.file, SCALAR_VARS, &[]).map_err(|m| e(format!("file: {m}")))?;
        }
        check_dir_conflicts(&cert_files)?;
        check_dir_conflicts(&kc_files)?;
        if let Some(node) = &self.node {
            let scalars: Vec<&str> = SCALAR_VARS.iter().copied().chain(["node_name"]).collect();
            self.check_kubeconfig(&node.kubeconfig, &scalars)?;
            let mut node_files = BTreeMap::new();
            check_node_path(
                &node.kubeconfig.name,
                "file",
                &node.kubeconfig.file,
                &scalars,
            )?;
            claim(
                &mut node_files,
                &node.kubeconfig.name,
                &node.kubeconfig.file,
            )?;
            if let Some(s) = &node.serving {
                self.check_cert(s, false, &scalars, &["node_ips"])?;
                check_node_path(&s.name, "path", &s.path, &scalars)?;
                claim(&mut node_files, &s.name, &format!("{}.crt", s.path))?;
                claim(&mut node_files, &s.name, &format!("{}.key", s.path))?;
            }
        }
        self.check_readers()?;
        self.check_ca_graph()
    }

    /// The `read_by` rows: well-formed, and no flag naming two files.
    fn check_readers(&self) -> std::result::Result<(), (String, String)> {
        use crate::model::readers::{check, Kind};
        let mut seen = BTreeMap::new();
        let rows = self
            .cas
            .iter()
            .map(|c| (&c.name, Kind::Ca, &c.read_by))
            .chain(self.certs.iter().map(|c| (&c.name, Kind::Leaf, &c.read_by)))
            .chain(
                self.keypairs
                    .iter()
                    .map(|k| (&k.name, Kind::KeyPair, &k.read_by)),
            )
            .chain(
                self.kubeconfigs
                    .iter()
                    .map(|k| (&k.name, Kind::Kubeconfig, &k.read_by)),
            );
        for (name, kind, read_by) in rows {
            check(name, kind, read_by, &mut seen).map_err(|m| (name.clone(), m))?;
        }
        Ok(())
    }

    fn check_cert(
        &self,
        c: &CertSpec,
        is_ca: bool,
        scalars: &Vec<&str>,
        lists: &[&str],
    ) -> std::result::Result<(), (String, String)> {
        let e = |m: String| (c.name.clone(), m);
        if c.cn.trim().is_empty() {
            return Err(e("cn is empty".into()));
        }
        Template::parse(&c.cn, scalars, &[]).map_err(|m| e(format!("cn: {m}")))?;
        for o in &c.o {
            Template::parse(o, scalars, &[]).map_err(|m| e(format!("o: {m}")))?;
        }
        for s in &c.sans {
            Template::parse(s, scalars, lists).map_err(|m| e(format!("sans: {m}")))?;
        }
        check_usages(&c.key_usages, &c.ext_key_usages).map_err(e)?;
        if c.bundle && !is_ca {
            return Err(e(
                "bundle = true is only for [[ca]] and [[keypair]] entries: every node issues its own leaves".into(),
            ));
        }
        let signs = c.key_usages.iter().any(|u| u == "key_cert_sign");
        if is_ca && !signs {
            return Err(e(
                "a CA needs key_cert_sign in key_usages (RFC 5280 4.2.1.3)".into(),
            ));
        }
        if !is_ca && signs {
            return Err(e(
                "key_cert_sign is only for CAs (RFC 5280 4.2.1.3); move the entry to [[ca]]".into(),
            ));
        }
        match &c.ca {
            Some(ca) if self.ca(ca).is_none() => {
                return Err(e(format!(
                    "unknown CA {ca:?} (no [[ca]] entry has that name)"
                )));
            }
            Some(_) => {}
            None if !is_ca => {
                return Err(e("a leaf needs `ca`, the name of its signing [[ca]]".into()))
            }
            None => {}
        }
        check_validity(c.validity.as_deref(), is_ca).map_err(e)?;
        if let Some(a) = &c.key_algorithm {
            check_algorithm(a).map_err(e)?;
        }
        check_when(&c.when).map_err(e)?;
        for v in &c.variants {
            check_variant(v, scalars, false).map_err(e)?;
        }
        self.check_when_implies(&c.name, &c.when, c.ca.as_deref())
    }

    fn check_kubeconfig(
        &self,
        k: &KubeconfigSpec,
        scalars: &[&str],
    ) -> std::result::Result<(), (String, String)> {
        self.check_kubeconfig_with(k, scalars, &[])
    }

    /// [`Spec::check_kubeconfig`] with list variables allowed in `o` (a user's groups).
    fn check_kubeconfig_with(
        &self,
        k: &KubeconfigSpec,
        scalars: &[&str],
        o_lists: &[&str],
    ) -> std::result::Result<(), (String, String)> {
        let e = |m: String| (k.name.clone(), m);
        if self.ca(&k.ca).is_none() {
            return Err(e(format!(
                "unknown CA {:?} (no [[ca]] entry has that name)",
                k.ca
            )));
        }
        Template::parse(&k.cn, scalars, &[]).map_err(|m| e(format!("cn: {m}")))?;
        for o in &k.o {
            Template::parse(o, scalars, o_lists).map_err(|m| e(format!("o: {m}")))?;
        }
        check_server(&k.server).map_err(e)?;
        check_usages(&k.key_usages, &k.ext_key_usages).map_err(e)?;
        if k.key_usages.iter().any(|u| u == "key_cert_sign") {
            return Err(e("key_cert_sign is only for CAs".into()));
        }
        check_validity(k.validity.as_deref(), false).map_err(e)?;
        if let Some(a) = &k.key_algorithm {
            check_algorithm(a).map_err(e)?;
        }
        check_when(&k.when).map_err(e)?;
        for v in &k.variants {
            check_variant(v, scalars, true).map_err(e)?;
        }
        self.check_when_implies(&k.name, &k.when, Some(&k.ca))
    }

    /// The join bundle's files: `(data key, entry, path under the cert dir)` of every entry with
    /// `bundle = true`, CAs (key, then certificate) before key pairs (key, then public key).
    pub fn bundle_files(&self) -> Vec<(String, &str, String)> {
        let mut out = Vec::new();
        for c in self.ca_order().into_iter().filter(|c| c.bundle) {
            for ext in ["key", "crt"] {
                let rel = format!("{}.{ext}", c.path);
                out.push((bundle_key(&rel), c.name.as_str(), rel));
            }
        }
        for k in self.keypairs.iter().filter(|k| k.bundle) {
            for rel in [&k.key, &k.public] {
                out.push((bundle_key(rel), k.name.as_str(), rel.clone()));
            }
        }
        out
    }

    /// Two files must not map to one Secret data key (`a/b-c` and `a-b/c` both give `a-b-c`),
    /// nor to one of the external-etcd keys kubeadm reserves.
    fn check_bundle_keys(&self) -> std::result::Result<(), (String, String)> {
        let mut seen: BTreeMap<String, String> = EXTERNAL_ETCD_BUNDLE_KEYS
            .iter()
            .map(|k| (k.to_string(), "etcd.external (kubeadm)".to_string()))
            .collect();
        for (key, entry, _) in self.bundle_files() {
            if let Some(other) = seen.insert(key.clone(), entry.to_string()) {
                return Err((
                    entry.to_string(),
                    format!("bundle data key {key:?} is already used by {other}"),
                ));
            }
        }
        Ok(())
    }

    /// An entry signed by a conditional CA must carry the same condition, or it would be left
    /// without a signer when the condition is false.
    fn check_when_implies(
        &self,
        name: &str,
        when: &Option<String>,
        ca: Option<&str>,
    ) -> std::result::Result<(), (String, String)> {
        if let Some(ca) = ca.and_then(|n| self.ca(n)) {
            let parse = |w: &Option<String>| {
                w.as_deref()
                    .map(Condition::parse)
                    .transpose()
                    .ok()
                    .flatten()
                    .unwrap_or(Condition { terms: vec![] })
            };
            if !parse(when).implies(&parse(&ca.when)) {
                return Err((
                    name.to_string(),
                    format!(
                        "its CA {:?} has when = {:?}; the entry must have the same condition (or one that includes it)",
                        ca.name,
                        ca.when.as_deref().unwrap_or("")
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_ca_graph(&self) -> std::result::Result<(), (String, String)> {
        for start in &self.cas {
            let mut seen = BTreeSet::new();
            let mut cur = Some(start);
            while let Some(c) = cur {
                if !seen.insert(c.name.as_str()) {
                    return Err((
                        start.name.clone(),
                        format!(
                            "CA cycle: {} leads back to {}",
                            seen.iter().copied().collect::<Vec<_>>().join(" -> "),
                            c.name
                        ),
                    ));
                }
                cur = c.ca.as_deref().and_then(|n| self.ca(n));
            }
        }
        Ok(())
    }

    /// CA names in signing order: every CA comes after the CA that signs it.
    pub fn ca_order(&self) -> Vec<&CertSpec> {
        let mut out: Vec<&CertSpec> = Vec::new();
        while out.len() < self.cas.len() {
            let before = out.len();
            for c in &self.cas {
                if out.iter().any(|o| o.name == c.name) {
                    continue;
                }
                let ready = match &c.ca {
                    None => true,
                    Some(p) => out.iter().any(|o| &o.name == p),
                };
                if ready {
                    out.push(c);
                }
            }
            if out.len() == before {
                break; // unreachable after validation (no cycles)
            }
        }
        out
    }
}

/// Data keys kubeadm gives the `etcd.external` files in the join bundle (CA, client cert, key).
pub const EXTERNAL_ETCD_BUNDLE_KEYS: [&str; 3] = [
    "external-etcd-ca.crt",
    "external-etcd.crt",
    "external-etcd.key",
];

/// The join bundle's data key for a file: its path under the cert dir with `/` replaced by `-`
/// (kubeadm's `certOrKeyNameToSecretName`: `etcd/ca.crt` -> `etcd-ca.crt`).
pub fn bundle_key(rel_path: &str) -> String {
    rel_path.replace('/', "-")
}

/// Parses an octal file mode such as `"0600"`.
pub fn parse_mode(s: &str) -> std::result::Result<u32, String> {
    let m = u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .map_err(|_| format!("mode {s:?} is not an octal number like \"0600\""))?;
    if m > 0o7777 {
        return Err(format!("mode {s:?} is out of range"));
    }
    Ok(m)
}

fn check_rel_path(p: &str) -> std::result::Result<(), String> {
    if p.is_empty() {
        return Err("empty path".into());
    }
    let path = Path::new(p);
    for c in path.components() {
        match c {
            Component::Normal(_) => {}
            Component::CurDir => return Err(format!("path {p:?} must not contain '.' components")),
            Component::ParentDir => return Err(format!("path {p:?} must not contain '..'")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("path {p:?} must be relative"))
            }
        }
    }
    if p.ends_with('/') || p.contains("//") {
        return Err(format!("path {p:?} has an empty component"));
    }
    Ok(())
}

/// What file modes the spec may ask for: keys and kubeconfigs readable by their owner only
/// (the assessment flags anything wider as `key-mode-insecure`), certificates and public keys
/// writable by their owner only, directories that only their owner can change, and no execute
/// or set-id bits on files.
fn check_mode(field: &str, m: u32) -> std::result::Result<(), String> {
    let shown = format!("{m:04o}");
    match field {
        "key_mode" | "kubeconfig_mode" => {
            if m & !0o600 != 0 || m & 0o400 == 0 {
                return Err(format!(
                    "mode {shown} would expose private keys or break them: only owner read/write (0600 or 0400) is allowed"
                ));
            }
        }
        "dir_mode" => {
            if m & 0o022 != 0 || m & 0o7000 != 0 || m & 0o700 != 0o700 {
                return Err(format!(
                    "mode {shown}: directories must be rwx for their owner and not writable by group or others (e.g. 0755, 0700)"
                ));
            }
        }
        _ => {
            if m & 0o022 != 0 || m & 0o7111 != 0 || m & 0o400 == 0 {
                return Err(format!(
                    "mode {shown}: certificates and public keys must be readable by their owner, not writable by group or others, and not executable (e.g. 0644)"
                ));
            }
        }
    }
    Ok(())
}

/// A file path of one entry must not be a directory on the way to another entry's file
/// (`key = "etcd"` next to `etcd/ca.crt`).
fn check_dir_conflicts(
    files: &BTreeMap<String, String>,
) -> std::result::Result<(), (String, String)> {
    for (path, entry) in files {
        let mut prefix = String::new();
        for comp in path.split('/') {
            if !prefix.is_empty() {
                if let Some(other) = files.get(&prefix) {
                    return Err((
                        other.clone(),
                        format!(
                            "path {prefix:?} is a file of entry {other:?} but also the directory of {path:?} of entry {entry:?}"
                        ),
                    ));
                }
                prefix.push('/');
            }
            prefix.push_str(comp);
        }
    }
    Ok(())
}

/// A `[node]` file template: relative, known variables only, and `{node_name}` somewhere in it
/// (otherwise every node would write the same file).
fn check_node_path(
    entry: &str,
    field: &str,
    template: &str,
    scalars: &[&str],
) -> std::result::Result<(), (String, String)> {
    let e = |m: String| (entry.to_string(), format!("{field}: {m}"));
    Template::parse(template, scalars, &[]).map_err(e)?;
    if !template.contains("{node_name}") {
        return Err(e(format!(
            "{template:?} must contain {{node_name}}, or every node would write the same file"
        )));
    }
    Ok(())
}

fn check_usages(ku: &[String], eku: &[String]) -> std::result::Result<(), String> {
    if ku.is_empty() {
        return Err("key_usages is empty".into());
    }
    for u in ku {
        if !KEY_USAGES.contains(&u.as_str()) {
            return Err(format!(
                "unknown key usage {u:?} (known: {})",
                KEY_USAGES.join(", ")
            ));
        }
    }
    for u in eku {
        if !EXT_KEY_USAGES.contains(&u.as_str()) {
            return Err(format!(
                "unknown extended key usage {u:?} (known: {})",
                EXT_KEY_USAGES.join(", ")
            ));
        }
    }
    Ok(())
}

fn check_validity(v: Option<&str>, is_ca: bool) -> std::result::Result<(), String> {
    match v {
        None | Some("cert") => Ok(()),
        Some("ca") if is_ca => Ok(()),
        Some("ca") => Err("validity \"ca\" is only for CAs; use \"cert\" or a duration".into()),
        Some(d) => {
            let dur = crate::inputs::duration::parse_go_duration(d)
                .map_err(|m| format!("validity: {m}"))?;
            if dur <= time::Duration::ZERO {
                return Err(format!("validity {d:?} must be positive"));
            }
            Ok(())
        }
    }
}

fn check_algorithm(a: &str) -> std::result::Result<(), String> {
    if a == "cluster" {
        return Ok(());
    }
    a.parse::<KeyAlgorithm>().map(|_| ())
}

fn check_when(w: &Option<String>) -> std::result::Result<(), String> {
    match w {
        Some(c) => Condition::parse(c).map(|_| ()),
        None => Ok(()),
    }
}

fn check_server(s: &str) -> std::result::Result<(), String> {
    if s != "control_plane" && s != "local" {
        return Err(format!(
            "server must be \"control_plane\" or \"local\", not {s:?}"
        ));
    }
    Ok(())
}

/// A variant needs a condition and at least one value, each valid for its entry kind.
fn check_variant(
    v: &Variant,
    scalars: &[&str],
    kubeconfig: bool,
) -> std::result::Result<(), String> {
    let e = |m: String| format!("variant when = {:?}: {m}", v.when);
    Condition::parse(&v.when)?;
    if v.o.is_none() && v.server.is_none() && v.key_algorithm.is_none() {
        return Err(e("sets nothing (give o, server or key_algorithm)".into()));
    }
    for o in v.o.iter().flatten() {
        Template::parse(o, scalars, &[]).map_err(|m| e(format!("o: {m}")))?;
    }
    match (&v.server, kubeconfig) {
        (Some(_), false) => return Err(e("server is only for kubeconfigs".into())),
        (Some(s), true) => check_server(s).map_err(e)?,
        _ => {}
    }
    if let Some(a) = &v.key_algorithm {
        check_algorithm(a).map_err(e)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broken(edit: impl Fn(String) -> String) -> String {
        match Spec::parse(&edit(DEFAULT_SPEC.to_string()), "test") {
            Ok(_) => panic!("spec accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn default_spec_is_valid() {
        let s = Spec::default_spec().expect("default spec");
        assert_eq!(s.cas.len(), 3);
        assert_eq!(s.certs.len(), 7);
        assert_eq!(s.keypairs.len(), 1);
        assert_eq!(s.kubeconfigs.len(), 5);
        let order: Vec<_> = s.ca_order().iter().map(|c| c.name.clone()).collect();
        assert_eq!(order, ["ca", "front-proxy-ca", "etcd-ca"]);
    }

    #[test]
    fn rejects_unknown_ca() {
        let e = broken(|s| s.replacen("ca = \"front-proxy-ca\"", "ca = \"nope\"", 1));
        assert!(
            e.contains("front-proxy-client") && e.contains("unknown CA \"nope\""),
            "{e}"
        );
    }

    #[test]
    fn rejects_duplicate_name_and_path() {
        let e = broken(|s| s.replacen("name = \"front-proxy-client\"", "name = \"apiserver\"", 1));
        assert!(e.contains("apiserver: duplicate entry name"), "{e}");
        let e = broken(|s| s.replacen("path = \"front-proxy-client\"", "path = \"apiserver\"", 1));
        assert!(
            e.contains("front-proxy-client") && e.contains("already used by entry \"apiserver\""),
            "{e}"
        );
    }

    #[test]
    fn rejects_bad_paths() {
        let e = broken(|s| s.replacen("path = \"apiserver\"", "path = \"../apiserver\"", 1));
        assert!(e.contains("apiserver") && e.contains("'..'"), "{e}");
        let e = broken(|s| s.replacen("path = \"apiserver\"", "path = \"/etc/apiserver\"", 1));
        assert!(e.contains("must be relative"), "{e}");
    }

    #[test]
    fn rejects_unknown_variable() {
        let e = broken(|s| s.replacen("\"{node_name}\",", "\"{nodename}\",", 1));
        assert!(
            e.contains("apiserver") && e.contains("unknown variable {nodename}"),
            "{e}"
        );
    }

    #[test]
    fn node_section_paths_need_the_node_name() {
        let s = Spec::default_spec().expect("default spec");
        let node = s.node.expect("[node]");
        assert_eq!(node.kubeconfig.file, "{node_name}/kubelet.conf");
        assert!(node.serving.is_some());
        let e = broken(|s| {
            s.replacen(
                "file = \"{node_name}/kubelet.conf\"",
                "file = \"kubelet.conf\"",
                1,
            )
        });
        assert!(
            e.contains("node-kubelet-client") && e.contains("must contain {node_name}"),
            "{e}"
        );
        let e = broken(|s| {
            s.replacen(
                "path = \"{node_name}/kubelet\"",
                "path = \"../{node_name}\"",
                1,
            )
        });
        assert!(
            e.contains("node-kubelet-serving") && e.contains("'..'"),
            "{e}"
        );
        let e = broken(|s| {
            s.replacen(
                "path = \"{node_name}/kubelet\"",
                "path = \"{node}/kubelet\"",
                1,
            )
        });
        assert!(e.contains("unknown variable {node}"), "{e}");
        let e = broken(|s| {
            s.replacen(
                "sans = [\"{node_name}\", \"{node_ips}\"]",
                "sans = [\"x{node_ips}\"]",
                1,
            )
        });
        assert!(e.contains("must stand alone"), "{e}");
    }

    #[test]
    fn bundle_entries_and_conditions() {
        let s = Spec::default_spec().expect("default spec");
        let keys: Vec<String> = s.bundle_files().into_iter().map(|(k, _, _)| k).collect();
        assert_eq!(
            keys,
            [
                "ca.key",
                "ca.crt",
                "front-proxy-ca.key",
                "front-proxy-ca.crt",
                "etcd-ca.key",
                "etcd-ca.crt",
                "sa.key",
                "sa.pub"
            ]
        );
        let e = broken(|s| {
            s.replacen(
                "name = \"apiserver\"",
                "name = \"apiserver\"\nbundle = true",
                1,
            )
        });
        assert!(
            e.contains("apiserver") && e.contains("only for [[ca]] and [[keypair]]"),
            "{e}"
        );
        // `a/b-c` and `a-b/c` would share one data key; so would kubeadm's external-etcd names.
        let e = broken(|s| s.replacen("path = \"front-proxy-ca\"", "path = \"etcd-ca\"", 1));
        assert!(e.contains("bundle data key \"etcd-ca.key\""), "{e}");
        let e = broken(|s| {
            s.replacen(
                "path = \"front-proxy-ca\"",
                "path = \"external-etcd-ca\"",
                1,
            )
        });
        assert!(
            e.contains("external-etcd-ca.crt") && e.contains("etcd.external"),
            "{e}"
        );
        let e = broken(|s| {
            s.replacen(
                "\nwhen = \"first_control_plane\"",
                "\nwhen = \"first_node\"",
                1,
            )
        });
        assert!(
            e.contains("unknown condition") && e.contains("first_control_plane"),
            "{e}"
        );
    }

    #[test]
    fn rejects_ca_cycle() {
        let e = broken(|s| {
            s.replacen(
                "name = \"ca\"\npath = \"ca\"",
                "name = \"ca\"\npath = \"ca\"\nca = \"front-proxy-ca\"",
                1,
            )
            .replacen(
                "name = \"front-proxy-ca\"\npath = \"front-proxy-ca\"",
                "name = \"front-proxy-ca\"\npath = \"front-proxy-ca\"\nca = \"ca\"",
                1,
            )
        });
        assert!(e.contains("CA cycle"), "{e}");
    }

    #[test]
    fn rejects_unknown_field_and_bad_toml() {
        let e = broken(|s| {
            s.replacen(
                "cn = \"kube-apiserver\"",
                "cn = \"kube-apiserver\"\ncommon = 1",
                1,
            )
        });
        assert!(e.contains("unknown field"), "{e}");
        let e = broken(|s| s + "\n[[cert]\n");
        assert!(e.contains("toml"), "{e}");
    }

    #[test]
    fn templates() {
        let t = Template::parse(
            "kubernetes.default.svc.{dns_domain}",
            SCALAR_VARS,
            LIST_VARS,
        )
        .expect("parse");
        let mut sc = HashMap::new();
        sc.insert("dns_domain", "cluster.local".to_string());
        assert_eq!(
            t.expand(&sc, &HashMap::new()),
            ["kubernetes.default.svc.cluster.local"]
        );
        let t = Template::parse("{control_plane_host}", SCALAR_VARS, LIST_VARS).expect("parse");
        assert!(t.expand(&sc, &HashMap::new()).is_empty());
        assert!(Template::parse("x{apiserver_extra_sans}", SCALAR_VARS, LIST_VARS).is_err());
        assert!(Template::parse("{oops", SCALAR_VARS, LIST_VARS).is_err());
    }
}

#[cfg(test)]
mod packaged_copy {
    /// The crate's copy of the table is the repository's, byte for byte: edit
    /// `certs-spec.toml` at the repository root, then `cp certs-spec.toml crates/kpki/`.
    #[test]
    fn the_crates_spec_is_the_repositorys() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../certs-spec.toml");
        if let Ok(repo) = std::fs::read_to_string(&root) {
            assert!(
                repo == super::DEFAULT_SPEC,
                "crates/kpki/certs-spec.toml differs from certs-spec.toml: run `cp certs-spec.toml crates/kpki/`"
            );
        }
    }
}
