//! Spec + inputs → concrete entries.
//!
//! Resolution expands every template, classifies SANs, picks algorithms and validity, and drops
//! entries whose condition is false. The result is what `plan` compares with the disk; nothing
//! here touches the file system.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;

use time::Duration;

use crate::error::{Error, Result};
use crate::inputs::origin::Origin;
use crate::inputs::Inputs;
use crate::model::condition::Condition;
use crate::model::spec::{
    parse_mode, CertSpec, KubeconfigSpec, Spec, Template, Variant, LIST_VARS, SCALAR_VARS,
};
use crate::x509::issue::Profile;
use crate::x509::keys::KeyAlgorithm;

/// File modes for the tree (from the spec's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Modes {
    /// Certificates.
    pub cert: u32,
    /// Private keys.
    pub key: u32,
    /// Bare public keys.
    pub public: u32,
    /// Directories.
    pub dir: u32,
    /// Kubeconfigs.
    pub kubeconfig: u32,
}

/// A certificate stored as a `.crt`/`.key` pair (CA or leaf).
#[derive(Debug, Clone, serde::Serialize)]
pub struct CertEntry {
    /// Spec name.
    pub name: String,
    /// Human description.
    pub long_name: String,
    /// Signing CA name (`None`: self-signed).
    pub ca: Option<String>,
    /// Certificate file.
    pub cert_path: PathBuf,
    /// Key file.
    pub key_path: PathBuf,
    /// Subject, SANs and usages.
    pub profile: Profile,
    /// Key algorithm for new keys.
    pub algorithm: KeyAlgorithm,
    /// Validity of new certificates.
    #[serde(serialize_with = "crate::inputs::duration::serialize_go")]
    pub validity: Duration,
    /// Where each expected SAN comes from (`"IP:10.0.0.5"` → `"--apiserver-cert-extra-sans / apiServer.certSANs"`),
    /// so drift reports can say which input added it.
    #[serde(skip)]
    pub san_origins: Vec<(String, String)>,
    /// Which input the CN comes from ("the spec" when it is literal).
    #[serde(skip)]
    pub cn_origin: String,
    /// Renewed by `certs renew all`.
    pub renew_all: bool,
}

/// Which input a SAN template draws from, in the operator's words.
pub fn template_origin(template: &str) -> &'static str {
    const ORIGINS: &[(&str, &str)] = &[
        (
            "{apiserver_extra_sans}",
            "--apiserver-cert-extra-sans / apiServer.certSANs",
        ),
        ("{etcd_server_extra_sans}", "etcd.local.serverCertSANs"),
        ("{etcd_peer_extra_sans}", "etcd.local.peerCertSANs"),
        ("{advertise_address}", "--apiserver-advertise-address"),
        ("{control_plane_host}", "--control-plane-endpoint"),
        ("{node_name}", "--node-name"),
        ("{client_name}", "--client-name"),
        ("{service_ip}", "--service-cidr"),
        ("{dns_domain}", "--service-dns-domain"),
        ("{cluster_name}", "--cluster-name"),
        ("{node_ips}", "the node's IPs"),
    ];
    ORIGINS
        .iter()
        .find(|(var, _)| template.contains(var))
        .map(|(_, o)| *o)
        .unwrap_or("the spec")
}

/// Text form of a SAN as used in reasons and findings (`DNS:x`, `IP:y`).
pub fn san_text(value: &str) -> String {
    match value.parse::<IpAddr>() {
        Ok(ip) => format!("IP:{}", ip.to_canonical()),
        Err(_) => format!("DNS:{value}"),
    }
}

/// A bare key pair (`sa.key` / `sa.pub`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyPairEntry {
    /// Spec name.
    pub name: String,
    /// Human description.
    pub long_name: String,
    /// Private key file.
    pub key_path: PathBuf,
    /// Public key file.
    pub pub_path: PathBuf,
    /// Key algorithm for new keys.
    pub algorithm: KeyAlgorithm,
}

/// A kubeconfig with an embedded client certificate.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KubeconfigEntry {
    /// Spec name.
    pub name: String,
    /// Kubeconfig file.
    pub path: PathBuf,
    /// Signing CA name.
    pub ca: String,
    /// Client certificate subject and usages.
    pub profile: Profile,
    /// Key algorithm for new keys.
    pub algorithm: KeyAlgorithm,
    /// Validity of new client certificates.
    #[serde(serialize_with = "crate::inputs::duration::serialize_go")]
    pub validity: Duration,
    /// API server URL.
    pub server: String,
    /// Cluster entry name.
    pub cluster_name: String,
    /// The kubeconfig's user name: the client CN, or the spec's name for a token user.
    pub user: String,
    /// Bootstrap token: the kubeconfig authenticates with it instead of a client certificate.
    #[serde(skip)]
    pub token: Option<String>,
    /// Which input the CN comes from ("the spec" when it is literal).
    #[serde(skip)]
    pub cn_origin: String,
    /// Renewed by `certs renew all`.
    pub renew_all: bool,
}

impl KubeconfigEntry {
    /// `<kubeconfig>.crt`: where an externally signed client certificate for it is placed
    /// (kubeadm's external-CA layout).
    pub fn signed_path(&self) -> PathBuf {
        let mut crt = self.path.as_os_str().to_owned();
        crt.push(".crt");
        PathBuf::from(crt)
    }
}

/// One resolved entry.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Entry {
    /// A certificate authority.
    Ca(CertEntry),
    /// A leaf certificate.
    Leaf(CertEntry),
    /// A bare key pair.
    KeyPair(KeyPairEntry),
    /// A kubeconfig.
    Kubeconfig(KubeconfigEntry),
}

impl Entry {
    /// Spec name.
    pub fn name(&self) -> &str {
        match self {
            Entry::Ca(c) | Entry::Leaf(c) => &c.name,
            Entry::KeyPair(k) => &k.name,
            Entry::Kubeconfig(k) => &k.name,
        }
    }

    /// Where `generate-csr` writes the entry's certificate signing request: `<cert path without
    /// .crt>.csr` for a leaf, `<kubeconfig>.csr` for a kubeconfig (kubeadm's layout).
    pub fn csr_path(&self) -> Option<PathBuf> {
        use std::os::unix::ffi::OsStrExt;
        let base = match self {
            Entry::Leaf(c) => c.cert_path.with_extension(""),
            Entry::Kubeconfig(k) => k.path.clone(),
            _ => return None,
        };
        let mut s = base.as_os_str().as_bytes().to_vec();
        s.extend_from_slice(b".csr");
        Some(PathBuf::from(std::ffi::OsStr::from_bytes(&s)))
    }

    /// The file that best identifies the entry in messages.
    pub fn main_path(&self) -> &std::path::Path {
        match self {
            Entry::Ca(c) | Entry::Leaf(c) => &c.cert_path,
            Entry::KeyPair(k) => &k.key_path,
            Entry::Kubeconfig(k) => &k.path,
        }
    }
}

/// The concrete tree the spec asks for under the given inputs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Desired {
    /// Entries: CAs in signing order, then leaves, key pairs and kubeconfigs in spec order.
    pub entries: Vec<Entry>,
    /// File modes.
    pub modes: Modes,
    /// The inputs the entries were resolved from.
    pub inputs: Inputs,
    /// Which component reads which entry through which flags (the spec's `read_by` rows of the
    /// entries present).
    pub readers: Vec<crate::model::readers::Wire>,
}

impl Desired {
    /// Finds an entry by name.
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name() == name)
    }

    /// Finds a CA entry by name.
    pub fn ca(&self, name: &str) -> Option<&CertEntry> {
        self.entries.iter().find_map(|e| match e {
            Entry::Ca(c) if c.name == name => Some(c),
            _ => None,
        })
    }
}

/// Template variables for one resolution.
pub struct Vars {
    scalars: HashMap<&'static str, String>,
    lists: HashMap<&'static str, Vec<String>>,
}

impl Vars {
    /// Variables derived from the cluster inputs.
    pub fn from_inputs(i: &Inputs) -> Vars {
        let mut scalars = HashMap::new();
        scalars.insert("node_name", i.node_name.clone());
        scalars.insert("advertise_address", i.advertise_address.to_string());
        scalars.insert(
            "control_plane_host",
            i.control_plane_endpoint
                .as_ref()
                .map(|e| e.host.clone())
                .unwrap_or_default(),
        );
        scalars.insert(
            "service_ip",
            i.service_ip().map(|ip| ip.to_string()).unwrap_or_default(),
        );
        scalars.insert("dns_domain", i.dns_domain.clone());
        scalars.insert("cluster_name", i.cluster_name.clone());
        let mut lists = HashMap::new();
        lists.insert("apiserver_extra_sans", i.apiserver_extra_sans.clone());
        lists.insert("etcd_server_extra_sans", i.etcd_server_extra_sans.clone());
        lists.insert("etcd_peer_extra_sans", i.etcd_peer_extra_sans.clone());
        Vars { scalars, lists }
    }

    /// Adds or replaces a scalar (per-node values).
    pub fn set(&mut self, name: &'static str, value: String) {
        self.scalars.insert(name, value);
    }

    /// Adds or replaces a list (per-node IPs).
    pub fn set_list(&mut self, name: &'static str, value: Vec<String>) {
        self.lists.insert(name, value);
    }

    /// A scalar's value.
    pub fn value(&self, name: &str) -> Option<String> {
        self.scalars.get(name).cloned()
    }

    /// Expands a path template and checks the result stays inside its directory (see
    /// [`crate::model::layout`]); the error names the input that broke it.
    pub fn path(&self, origin: &str, entry: &str, field: &str, t: &str) -> Result<String> {
        let rel = self.one(entry, field, t)?;
        crate::model::layout::check_expanded(&rel).map_err(|why| {
            crate::model::layout::blame(
                origin,
                entry,
                field,
                t,
                &|v| self.value(v),
                &format!("expands to {}, which {why}", crate::text::quote(&rel)),
            )
        })?;
        Ok(rel)
    }

    fn all_scalars(&self) -> Vec<&str> {
        self.scalars.keys().copied().collect()
    }

    fn all_lists(&self) -> Vec<&str> {
        self.lists.keys().copied().collect()
    }

    fn one(&self, entry: &str, field: &str, t: &str) -> Result<String> {
        let tpl = Template::parse(t, &self.all_scalars(), &[])
            .map_err(|m| spec_err(entry, format!("{field}: {m}")))?;
        Ok(tpl
            .expand(&self.scalars, &HashMap::new())
            .into_iter()
            .next()
            .unwrap_or_default())
    }

    fn many(&self, entry: &str, field: &str, ts: &[String]) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for t in ts {
            let tpl = Template::parse(t, &self.all_scalars(), &self.all_lists())
                .map_err(|m| spec_err(entry, format!("{field}: {m}")))?;
            out.extend(tpl.expand(&self.scalars, &self.lists));
        }
        Ok(out)
    }
}

fn spec_err(entry: &str, message: String) -> Error {
    Error::Spec {
        origin: "resolved".into(),
        entry: entry.to_string(),
        message,
    }
}

/// Splits SAN values into sorted, de-duplicated DNS names and first-seen IPs (kubeadm's rules).
pub fn split_sans(values: &[String]) -> (Vec<String>, Vec<IpAddr>) {
    let mut dns = Vec::new();
    let mut ips: Vec<IpAddr> = Vec::new();
    for v in values {
        if let Ok(ip) = v.parse::<IpAddr>() {
            let ip = ip.to_canonical();
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        } else if !v.is_empty() {
            dns.push(v.clone());
        }
    }
    dns.sort();
    dns.dedup();
    (dns, ips)
}

fn algorithm(spec: &Spec, own: &Option<String>, inputs: &Inputs) -> KeyAlgorithm {
    let name = own.as_deref().unwrap_or(&spec.defaults.key_algorithm);
    if name == "cluster" {
        inputs.key_algorithm
    } else {
        name.parse().unwrap_or(inputs.key_algorithm) // validated at spec load
    }
}

fn validity(v: &Option<String>, inputs: &Inputs) -> Duration {
    match v.as_deref() {
        Some("ca") => inputs.ca_validity,
        None | Some("cert") => inputs.cert_validity,
        Some(d) => crate::inputs::duration::parse_go_duration(d).unwrap_or(inputs.cert_validity), // validated at spec load
    }
}

fn when_ok(when: &Option<String>, inputs: &Inputs) -> bool {
    match when.as_deref() {
        // Validated at spec load; an unparsable condition cannot get here.
        Some(w) => Condition::parse(w).is_ok_and(|c| c.holds(inputs)),
        None => true,
    }
}

/// The entry's `o`, `server` and `key_algorithm` after its variants: each variant whose `when`
/// holds for these inputs replaces the values it sets, in spec order.
fn apply_variants<'a>(
    variants: &'a [Variant],
    inputs: &Inputs,
    mut o: &'a [String],
    mut server: &'a str,
    mut alg: &'a Option<String>,
) -> (&'a [String], &'a str, &'a Option<String>) {
    for v in variants {
        if !Condition::parse(&v.when).is_ok_and(|c| c.holds(inputs)) {
            continue;
        }
        if let Some(vo) = &v.o {
            o = vo;
        }
        if let Some(vs) = &v.server {
            server = vs;
        }
        if v.key_algorithm.is_some() {
            alg = &v.key_algorithm;
        }
    }
    (o, server, alg)
}

/// Where each SAN a template yields comes from, in the operator's words: the config line or
/// flag of each extra SAN, the origin of a scalar input, or the spec for literals.
fn san_origin_texts(template: &str, values: &[String], inputs: &Inputs) -> Vec<String> {
    let input = match template {
        "{apiserver_extra_sans}" => {
            return inputs
                .apiserver_extra_san_origins
                .iter()
                .map(|o| o.to_string())
                .chain(std::iter::repeat(template_origin(template).to_string()))
                .take(values.len())
                .collect();
        }
        t if t.contains("{advertise_address}") => Some("advertise_address"),
        t if t.contains("{control_plane_host}") => Some("control_plane_endpoint"),
        t if t.contains("{node_name}") => Some("node_name"),
        t if t.contains("{service_ip}") => Some("service_cidrs"),
        t if t.contains("{dns_domain}") => Some("dns_domain"),
        t if t.contains("{cluster_name}") => Some("cluster_name"),
        _ => None,
    };
    let text = match input.and_then(|i| inputs.origin(i)) {
        Some(Origin::Default) | None => template_origin(template).to_string(),
        Some(o) => o.to_string(),
    };
    vec![text; values.len()]
}

/// Resolves one certificate spec (CA, leaf or per-node serving cert) with the given variables.
pub fn resolve_cert(
    spec: &Spec,
    c: &CertSpec,
    is_ca: bool,
    vars: &Vars,
    inputs: &Inputs,
    base: &std::path::Path,
) -> Result<CertEntry> {
    let sans = vars.many(&c.name, "sans", &c.sans)?;
    let (dns, ips) = split_sans(&sans);
    let mut san_origins = Vec::new();
    for t in &c.sans {
        let values = vars.many(&c.name, "sans", std::slice::from_ref(t))?;
        for (v, o) in values.iter().zip(san_origin_texts(t, &values, inputs)) {
            san_origins.push((san_text(v), o));
        }
    }
    let (o, _, key_algorithm) = apply_variants(&c.variants, inputs, &c.o, "", &c.key_algorithm);
    let orgs = o
        .iter()
        .map(|o| vars.one(&c.name, "o", o))
        .collect::<Result<Vec<_>>>()?;
    let rel = vars.path(&spec.origin, &c.name, "path", &c.path)?;
    Ok(CertEntry {
        name: c.name.clone(),
        long_name: c.long_name.clone(),
        ca: c.ca.clone(),
        cert_path: base.join(format!("{rel}.crt")),
        key_path: base.join(format!("{rel}.key")),
        profile: Profile {
            cn: vars.one(&c.name, "cn", &c.cn)?,
            orgs: orgs.into_iter().filter(|o| !o.is_empty()).collect(),
            dns,
            ips,
            key_usages: c.key_usages.clone(),
            ext_key_usages: c.ext_key_usages.clone(),
            is_ca,
        },
        algorithm: algorithm(spec, key_algorithm, inputs),
        validity: validity(&c.validity, inputs),
        san_origins,
        cn_origin: template_origin(&c.cn).to_string(),
        renew_all: c.renew_all,
    })
}

/// Resolves one kubeconfig spec with the given variables.
pub fn resolve_kubeconfig(
    spec: &Spec,
    k: &KubeconfigSpec,
    vars: &Vars,
    inputs: &Inputs,
    base: &std::path::Path,
) -> Result<KubeconfigEntry> {
    let (o, server, key_algorithm) =
        apply_variants(&k.variants, inputs, &k.o, &k.server, &k.key_algorithm);
    let orgs = vars.many(&k.name, "o", o)?;
    let server = match server {
        "local" => inputs.local_endpoint().url(),
        _ => inputs.control_plane().url(),
    };
    let cn = vars.one(&k.name, "cn", &k.cn)?;
    Ok(KubeconfigEntry {
        name: k.name.clone(),
        path: base.join(vars.path(&spec.origin, &k.name, "file", &k.file)?),
        ca: k.ca.clone(),
        user: cn.clone(),
        token: None,
        profile: Profile {
            cn,
            orgs: orgs.into_iter().filter(|o| !o.is_empty()).collect(),
            dns: vec![],
            ips: vec![],
            key_usages: k.key_usages.clone(),
            ext_key_usages: k.ext_key_usages.clone(),
            is_ca: false,
        },
        algorithm: algorithm(spec, key_algorithm, inputs),
        validity: validity(&k.validity, inputs),
        server,
        cluster_name: inputs.cluster_name.clone(),
        cn_origin: template_origin(&k.cn).to_string(),
        renew_all: k.renew_all,
    })
}

/// The tree's CAs plus one entry made from a spec section (`[user]`, `[bootstrap]`, `[node]`):
/// what a command that issues outside the tree plans and applies.
///
/// Only the CAs that sign `extra` (and their parents) are kept, so a cert dir holding just
/// `ca.crt`/`ca.key` is enough for a user kubeconfig. With no `extra`, every CA is kept.
pub fn with_cas(spec: &Spec, inputs: &Inputs, extra: Vec<Entry>) -> Result<Desired> {
    let mut d = resolve(spec, inputs)?;
    d.entries.retain(|e| matches!(e, Entry::Ca(_)));
    if !extra.is_empty() {
        let mut needed: Vec<String> = extra
            .iter()
            .filter_map(|e| match e {
                Entry::Leaf(c) => c.ca.clone(),
                Entry::Kubeconfig(k) => Some(k.ca.clone()),
                _ => None,
            })
            .collect();
        // Parents of the signers (intermediate CAs), to the root.
        let mut i = 0;
        while i < needed.len() {
            if let Some(parent) = d.ca(&needed[i]).and_then(|c| c.ca.clone()) {
                if !needed.contains(&parent) {
                    needed.push(parent);
                }
            }
            i += 1;
        }
        d.entries.retain(|e| needed.iter().any(|n| n == e.name()));
    }
    d.entries.extend(extra);
    Ok(d)
}

/// The `[user]` kubeconfig for `client_name` with the groups `orgs`, written to `out` (or, when
/// printed, named after the spec's `file` in the kubeconfig dir).
pub fn resolve_user(
    spec: &Spec,
    inputs: &Inputs,
    client_name: &str,
    orgs: &[String],
    out: Option<&std::path::Path>,
) -> Result<Desired> {
    let u = spec.user.as_ref().ok_or_else(|| Error::Spec {
        origin: "spec".into(),
        entry: "user".into(),
        message: "the spec has no [user] section, so it does not say what a user kubeconfig is"
            .into(),
    })?;
    let mut vars = Vars::from_inputs(inputs);
    vars.set("client_name", client_name.to_string());
    vars.set_list("client_orgs", orgs.to_vec());
    // With `--out` the spec's file name is not used, so the client name need not make a path.
    let mut u = u.clone();
    if out.is_some() {
        u.file = "out.conf".into();
    }
    let mut k = resolve_kubeconfig(spec, &u, &vars, inputs, &inputs.kubeconfig_dir)?;
    if let Some(p) = out {
        k.path = p.to_path_buf();
    }
    with_cas(spec, inputs, vec![Entry::Kubeconfig(k)])
}

/// The `[bootstrap]` token kubeconfig with `token`, written to `out` (or the spec's file in the
/// kubeconfig dir).
pub fn resolve_bootstrap(
    spec: &Spec,
    inputs: &Inputs,
    token: &str,
    out: Option<&std::path::Path>,
) -> Result<Desired> {
    let b = spec.bootstrap.as_ref().ok_or_else(|| Error::Spec {
        origin: "spec".into(),
        entry: "bootstrap".into(),
        message: "the spec has no [bootstrap] section".into(),
    })?;
    let vars = Vars::from_inputs(inputs);
    let server = match b.server.as_str() {
        "local" => inputs.local_endpoint().url(),
        _ => inputs.control_plane().url(),
    };
    let k = KubeconfigEntry {
        name: b.name.clone(),
        path: match out {
            Some(p) => p.to_path_buf(),
            None => inputs
                .kubeconfig_dir
                .join(vars.one(&b.name, "file", &b.file)?),
        },
        ca: b.ca.clone(),
        profile: Profile {
            cn: String::new(),
            orgs: vec![],
            dns: vec![],
            ips: vec![],
            key_usages: vec![],
            ext_key_usages: vec![],
            is_ca: false,
        },
        algorithm: inputs.key_algorithm,
        validity: inputs.cert_validity,
        server,
        cluster_name: inputs.cluster_name.clone(),
        user: b.user.clone(),
        token: Some(token.to_string()),
        cn_origin: "the spec".into(),
        renew_all: false,
    };
    with_cas(spec, inputs, vec![Entry::Kubeconfig(k)])
}

/// Resolves the whole spec against the inputs.
pub fn resolve(spec: &Spec, inputs: &Inputs) -> Result<Desired> {
    let vars = Vars::from_inputs(inputs);
    let d = &spec.defaults;
    let mode = |s: &str| parse_mode(s).unwrap_or(0o600); // validated at spec load
    let modes = Modes {
        cert: mode(&d.cert_mode),
        key: mode(&d.key_mode),
        public: mode(&d.pub_mode),
        dir: mode(&d.dir_mode),
        kubeconfig: mode(&d.kubeconfig_mode),
    };
    let mut entries = Vec::new();
    for c in spec.ca_order() {
        if when_ok(&c.when, inputs) {
            entries.push(Entry::Ca(resolve_cert(
                spec,
                c,
                true,
                &vars,
                inputs,
                &inputs.cert_dir,
            )?));
        }
    }
    for c in &spec.certs {
        if when_ok(&c.when, inputs) {
            entries.push(Entry::Leaf(resolve_cert(
                spec,
                c,
                false,
                &vars,
                inputs,
                &inputs.cert_dir,
            )?));
        }
    }
    for k in &spec.keypairs {
        if when_ok(&k.when, inputs) {
            entries.push(Entry::KeyPair(KeyPairEntry {
                name: k.name.clone(),
                long_name: k.long_name.clone(),
                key_path: inputs.cert_dir.join(&k.key),
                pub_path: inputs.cert_dir.join(&k.public),
                algorithm: algorithm(spec, &k.key_algorithm, inputs),
            }));
        }
    }
    for k in &spec.kubeconfigs {
        if when_ok(&k.when, inputs) {
            entries.push(Entry::Kubeconfig(resolve_kubeconfig(
                spec,
                k,
                &vars,
                inputs,
                &inputs.kubeconfig_dir,
            )?));
        }
    }
    let desired = Desired {
        readers: crate::model::readers::for_entries(spec, &entries),
        entries,
        modes,
        inputs: inputs.clone(),
    };
    crate::model::layout::check(&desired, spec)?;
    Ok(desired)
}

// Keep the variable lists referenced so a spec author's list and the resolver's agree.
const _: (&[&str], &[&str]) = (SCALAR_VARS, LIST_VARS);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::config::KubeadmConfig;
    use crate::inputs::InputArgs;

    #[test]
    fn apiserver_sans_match_kubeadm() {
        let args = InputArgs {
            node_name: Some("cp-1".into()),
            advertise_address: Some("10.0.0.10".parse().expect("ip")),
            control_plane_endpoint: Some("k8s.example.internal:6443".into()),
            apiserver_cert_extra_sans: vec!["extra.example.com,192.0.2.7".into()],
            cert_dir: Some("/x/pki".into()),
            ..Default::default()
        };
        let inputs = Inputs::resolve(&args, &KubeadmConfig::default()).expect("inputs");
        let d = resolve(&Spec::default_spec().expect("spec"), &inputs).expect("resolve");
        let Some(Entry::Leaf(api)) = d.get("apiserver") else {
            panic!("no apiserver")
        };
        assert_eq!(
            api.profile.dns,
            [
                "cp-1",
                "extra.example.com",
                "k8s.example.internal",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local"
            ]
        );
        let ips: Vec<String> = api.profile.ips.iter().map(|i| i.to_string()).collect();
        assert_eq!(ips, ["10.96.0.1", "10.0.0.10", "192.0.2.7"]);
        let Some(Entry::Leaf(peer)) = d.get("etcd-peer") else {
            panic!("no peer")
        };
        assert_eq!(peer.profile.cn, "cp-1");
        assert_eq!(peer.cert_path, PathBuf::from("/x/pki/etcd/peer.crt"));
        let Some(Entry::Kubeconfig(k)) = d.get("kubelet.conf") else {
            panic!("no kubelet.conf")
        };
        assert_eq!(k.profile.cn, "system:node:cp-1");
        assert_eq!(k.server, "https://10.0.0.10:6443");
        assert_eq!(
            k.path,
            PathBuf::from("/x/admin.conf").with_file_name("kubelet.conf")
        );
        let Some(Entry::Kubeconfig(a)) = d.get("admin.conf") else {
            panic!("no admin.conf")
        };
        assert_eq!(a.server, "https://k8s.example.internal:6443");
    }

    #[test]
    fn join_drops_what_only_the_first_control_plane_gets() {
        let args = InputArgs {
            node_name: Some("cp-2".into()),
            advertise_address: Some("10.0.0.11".parse().expect("ip")),
            role: crate::inputs::Role::JoiningControlPlane,
            ..Default::default()
        };
        let inputs = Inputs::resolve(&args, &KubeadmConfig::default()).expect("inputs");
        let d = resolve(&Spec::default_spec().expect("spec"), &inputs).expect("resolve");
        let kubeconfigs: Vec<&str> = d
            .entries
            .iter()
            .filter(|e| matches!(e, Entry::Kubeconfig(_)))
            .map(Entry::name)
            .collect();
        assert_eq!(
            kubeconfigs,
            ["admin.conf", "controller-manager.conf", "scheduler.conf"]
        );
        assert!(d.get("etcd-peer").is_some() && d.get("ca").is_some());
    }

    #[test]
    fn external_etcd_drops_etcd_entries() {
        let args = InputArgs {
            node_name: Some("n".into()),
            advertise_address: Some("10.0.0.10".parse().expect("ip")),
            ..Default::default()
        };
        let cfg = KubeadmConfig {
            etcd_external: true,
            ..Default::default()
        };
        let inputs = Inputs::resolve(&args, &cfg).expect("inputs");
        let d = resolve(&Spec::default_spec().expect("spec"), &inputs).expect("resolve");
        assert!(
            d.get("etcd-ca").is_none()
                && d.get("etcd-server").is_none()
                && d.get("apiserver-etcd-client").is_none()
        );
        assert!(d.get("apiserver").is_some());
    }
}
