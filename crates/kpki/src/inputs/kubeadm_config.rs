//! Reading the parts of a kubeadm config file (`kubeadm init --config`) that shape the PKI.
//!
//! A kubeadm config is a multi-document YAML stream in which each document is a Kubernetes-style
//! object (`apiVersion` + `kind`). Only `InitConfiguration` and `ClusterConfiguration` in
//! `kubeadm.k8s.io/v1beta3` or `v1beta4` matter here; other kinds (`KubeletConfiguration`,
//! `JoinConfiguration`, ...) and unknown fields are ignored, as kubeadm ignores what it does not
//! need. Every document is first read into a small untyped tree, so a document we ignore can never
//! fail on the types of its fields, and type errors in the documents we read name the exact field.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{MessageFormatter, NonFiniteFloatPolicy, Spanned, UserMessageFormatter};

use crate::inputs::duration::parse_go_duration;

/// The kubeadm API group; other groups' documents are never ours, whatever their kind.
const KUBEADM_GROUP: &str = "kubeadm.k8s.io";

/// The kubeadm API versions kpki understands.
const SUPPORTED_VERSIONS: &[&str] = &["kubeadm.k8s.io/v1beta3", "kubeadm.k8s.io/v1beta4"];

/// Deepest YAML nesting accepted (serde-saphyr's default is 64).
const MAX_DEPTH: usize = 24;

const INIT: &str = "InitConfiguration";
const CLUSTER: &str = "ClusterConfiguration";

/// What kpki needs from a kubeadm config file; every field is optional because flags and defaults fill the gaps.
///
/// Values are returned as written, without IP/CIDR/name validation. Go zero values mean "unset"
/// to kubeadm (it then applies its defaults), so an empty string or `bindPort: 0` comes back as
/// `None`, exactly like an absent field. Fields are read whatever the API version says; callers
/// can use `api_version` to judge fields that only one version defines (`encryptionAlgorithm`
/// and the validity periods are v1beta4, the `PublicKeysECDSA` gate is v1beta3-era).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KubeadmConfig {
    /// `apiVersion` of the ClusterConfiguration, or of the InitConfiguration if there is no
    /// ClusterConfiguration.
    pub api_version: Option<String>,
    /// InitConfiguration `nodeRegistration.name`.
    pub node_name: Option<String>,
    /// InitConfiguration `localAPIEndpoint.advertiseAddress`.
    pub advertise_address: Option<String>,
    /// InitConfiguration `localAPIEndpoint.bindPort`.
    pub bind_port: Option<u16>,
    /// ClusterConfiguration `clusterName`.
    pub cluster_name: Option<String>,
    /// ClusterConfiguration `controlPlaneEndpoint` (host, optionally with `:port`).
    pub control_plane_endpoint: Option<String>,
    /// ClusterConfiguration `certificatesDir`.
    pub certificates_dir: Option<String>,
    /// ClusterConfiguration `apiServer.certSANs`.
    pub apiserver_cert_sans: Vec<String>,
    /// ClusterConfiguration `etcd.local.serverCertSANs`.
    pub etcd_server_cert_sans: Vec<String>,
    /// ClusterConfiguration `etcd.local.peerCertSANs`.
    pub etcd_peer_cert_sans: Vec<String>,
    /// True when ClusterConfiguration sets `etcd.external`: kubeadm then creates no etcd PKI.
    pub etcd_external: bool,
    /// ClusterConfiguration `etcd.external.caFile` (travels in the join bundle).
    pub etcd_external_ca_file: Option<String>,
    /// ClusterConfiguration `etcd.external.certFile`.
    pub etcd_external_cert_file: Option<String>,
    /// ClusterConfiguration `etcd.external.keyFile`.
    pub etcd_external_key_file: Option<String>,
    /// ClusterConfiguration `networking.serviceSubnet`.
    pub service_subnet: Option<String>,
    /// ClusterConfiguration `networking.dnsDomain`.
    pub dns_domain: Option<String>,
    /// ClusterConfiguration `encryptionAlgorithm` (v1beta4), e.g. `ECDSA-P256`.
    pub encryption_algorithm: Option<String>,
    /// ClusterConfiguration `certificateValidityPeriod` (v1beta4); may be zero or negative.
    pub certificate_validity_period: Option<time::Duration>,
    /// ClusterConfiguration `caCertificateValidityPeriod` (v1beta4); may be zero or negative.
    pub ca_certificate_validity_period: Option<time::Duration>,
    /// ClusterConfiguration `featureGates.PublicKeysECDSA`.
    pub public_keys_ecdsa: Option<bool>,
}

/// Parses the text of a kubeadm config file.
///
/// Errors are one line, start with the line number where one is known, and name the document
/// kind and field (`line 14: ClusterConfiguration: networking.serviceSubnet: invalid type: ...`);
/// the caller adds the file path.
pub fn parse(text: &str) -> Result<KubeadmConfig, String> {
    parse_inner(text).map_err(|e| one_line(&e))
}

fn parse_inner(text: &str) -> Result<KubeadmConfig, String> {
    let options = serde_saphyr::options! {
        // Errors must be one line; the snippet rendering is multi-line.
        with_snippet: false,
        // `.inf` in a document we ignore must not fail the whole file.
        non_finite_float_policy: NonFiniteFloatPolicy::PassThrough,
        // Each nesting level costs this tree a few dozen KiB of stack in debug builds; kubeadm
        // configs nest about 5 deep, so a tight cap keeps hostile input from overflowing a
        // 2 MiB thread stack (the default for spawned threads and test threads).
        budget: serde_saphyr::budget! { max_depth: MAX_DEPTH },
    };
    let docs: Vec<Node> =
        serde_saphyr::from_multiple_with_options(text, options).map_err(|e| yaml_error(&e))?;

    let mut cfg = KubeadmConfig::default();
    let mut init: Option<(u64, String)> = None;
    let mut cluster: Option<(u64, String)> = None;

    for doc in &docs {
        let Some((kind, api_version, obj)) = relevant_document(doc)? else {
            continue;
        };
        let seen = if kind == INIT {
            &mut init
        } else {
            &mut cluster
        };
        if let Some((first_line, _)) = seen {
            return Err(format!(
                "line {}: {kind} appears more than once (first at line {first_line})",
                doc.line
            ));
        }
        *seen = Some((doc.line, api_version.to_owned()));
        if kind == INIT {
            read_init(&obj, &mut cfg)?;
        } else {
            read_cluster(&obj, &mut cfg)?;
        }
    }

    cfg.api_version = match (cluster, init) {
        (Some((_, v)), _) | (None, Some((_, v))) => Some(v),
        (None, None) => {
            return Err(format!(
                "no {INIT} or {CLUSTER} found (apiVersion {KUBEADM_GROUP}/v1beta3 or v1beta4)"
            ));
        }
    };
    Ok(cfg)
}

/// Checks a document's header and returns `(kind, apiVersion, body)` if it is one we read.
///
/// kubeadm rejects documents without `apiVersion` and `kind`, so we do too; an `InitConfiguration`
/// or `ClusterConfiguration` in an older kubeadm API is an error rather than silently ignored,
/// because its settings would otherwise be lost.
fn relevant_document(doc: &Node) -> Result<Option<(&'static str, &'static str, Obj<'_>)>, String> {
    let Value::Map(entries) = &doc.value else {
        return Err(format!(
            "line {}: document is {}, expected a mapping with apiVersion and kind",
            doc.line,
            doc.value.describe()
        ));
    };
    let header = Obj {
        entries,
        kind: "document",
        path: String::new(),
    };
    let api_version = header.string("apiVersion")?;
    let kind = header.string("kind")?;
    let (Some(api_version), Some(kind)) = (api_version, kind) else {
        return Err(format!(
            "line {}: document has no apiVersion or kind; every document in a kubeadm config needs both",
            doc.line
        ));
    };
    let kind = match kind.as_str() {
        INIT => INIT,
        CLUSTER => CLUSTER,
        _ => return Ok(None),
    };
    let group = api_version.split('/').next().unwrap_or_default();
    if group != KUBEADM_GROUP {
        return Ok(None);
    }
    let Some(api_version) = SUPPORTED_VERSIONS
        .iter()
        .copied()
        .find(|v| *v == api_version)
    else {
        return Err(format!(
            "line {}: {kind}: unsupported apiVersion {api_version:?} (supported: {})",
            doc.line,
            SUPPORTED_VERSIONS.join(", ")
        ));
    };
    Ok(Some((
        kind,
        api_version,
        Obj {
            entries,
            kind,
            path: String::new(),
        },
    )))
}

fn read_init(obj: &Obj<'_>, cfg: &mut KubeadmConfig) -> Result<(), String> {
    if let Some(reg) = obj.object("nodeRegistration")? {
        cfg.node_name = reg.string("name")?;
    }
    if let Some(ep) = obj.object("localAPIEndpoint")? {
        cfg.advertise_address = ep.string("advertiseAddress")?;
        cfg.bind_port = ep.port("bindPort")?;
    }
    Ok(())
}

fn read_cluster(obj: &Obj<'_>, cfg: &mut KubeadmConfig) -> Result<(), String> {
    cfg.cluster_name = obj.string("clusterName")?;
    cfg.control_plane_endpoint = obj.string("controlPlaneEndpoint")?;
    cfg.certificates_dir = obj.string("certificatesDir")?;
    cfg.encryption_algorithm = obj.string("encryptionAlgorithm")?;
    cfg.certificate_validity_period = obj.duration("certificateValidityPeriod")?;
    cfg.ca_certificate_validity_period = obj.duration("caCertificateValidityPeriod")?;

    if let Some(api) = obj.object("apiServer")? {
        cfg.apiserver_cert_sans = api.strings("certSANs")?;
    }
    if let Some(etcd) = obj.object("etcd")? {
        let local = etcd.object("local")?;
        let external = etcd.object("external")?;
        if local.is_some() && external.is_some() {
            return Err(etcd.error_at(
                etcd.line_of("external"),
                "local and external are mutually exclusive",
            ));
        }
        cfg.etcd_external = external.is_some();
        if let Some(external) = external {
            cfg.etcd_external_ca_file = external.string("caFile")?;
            cfg.etcd_external_cert_file = external.string("certFile")?;
            cfg.etcd_external_key_file = external.string("keyFile")?;
        }
        if let Some(local) = local {
            cfg.etcd_server_cert_sans = local.strings("serverCertSANs")?;
            cfg.etcd_peer_cert_sans = local.strings("peerCertSANs")?;
        }
    }
    if let Some(net) = obj.object("networking")? {
        cfg.service_subnet = net.string("serviceSubnet")?;
        cfg.dns_domain = net.string("dnsDomain")?;
    }
    if let Some(gates) = obj.object("featureGates")? {
        cfg.public_keys_ecdsa = gates.boolean("PublicKeysECDSA")?;
    }
    Ok(())
}

/// A mapping inside a document we read, with enough context to name a field in an error.
struct Obj<'a> {
    entries: &'a [(Node, Node)],
    /// Document kind, the first word of every error.
    kind: &'a str,
    /// Dotted path of this mapping within the document ("" at the top).
    path: String,
}

impl<'a> Obj<'a> {
    /// The value under `key`, or `None` when it is absent or null (Go treats both as unset).
    fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(k, _)| matches!(&k.value, Value::Str(s) if s == key))
            .map(|(_, v)| v)
            .filter(|v| !matches!(v.value, Value::Null))
    }

    fn field_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn line_of(&self, key: &str) -> u64 {
        self.get(key).map_or(0, |n| n.line)
    }

    /// An error about this mapping itself.
    fn error_at(&self, line: u64, msg: &str) -> String {
        with_line(line, &format!("{}: {}: {msg}", self.kind, self.path))
    }

    /// An error about the value at `path`.
    fn error(&self, node: &Node, path: &str, msg: &str) -> String {
        with_line(node.line, &format!("{}: {path}: {msg}", self.kind))
    }

    fn type_error(&self, node: &Node, path: &str, expected: &str) -> String {
        self.error(
            node,
            path,
            &format!(
                "invalid type: {}, expected {expected}",
                node.value.describe()
            ),
        )
    }

    fn object(&self, key: &str) -> Result<Option<Obj<'a>>, String> {
        let Some(node) = self.get(key) else {
            return Ok(None);
        };
        let path = self.field_path(key);
        match &node.value {
            Value::Map(entries) => Ok(Some(Obj {
                entries,
                kind: self.kind,
                path,
            })),
            _ => Err(self.type_error(node, &path, "a mapping")),
        }
    }

    fn string(&self, key: &str) -> Result<Option<String>, String> {
        let Some(node) = self.get(key) else {
            return Ok(None);
        };
        match &node.value {
            Value::Str(s) if s.is_empty() => Ok(None),
            Value::Str(s) => Ok(Some(s.clone())),
            _ => Err(self.type_error(node, &self.field_path(key), "a string")),
        }
    }

    fn strings(&self, key: &str) -> Result<Vec<String>, String> {
        let Some(node) = self.get(key) else {
            return Ok(Vec::new());
        };
        let path = self.field_path(key);
        let Value::Seq(items) = &node.value else {
            return Err(self.type_error(node, &path, "a list of strings"));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match &item.value {
                Value::Str(s) => Ok(s.clone()),
                _ => Err(self.type_error(item, &format!("{path}[{i}]"), "a string")),
            })
            .collect()
    }

    fn port(&self, key: &str) -> Result<Option<u16>, String> {
        let Some(node) = self.get(key) else {
            return Ok(None);
        };
        let path = self.field_path(key);
        let Value::Int(n) = node.value else {
            return Err(self.type_error(node, &path, "an integer port"));
        };
        match u16::try_from(n) {
            Ok(0) => Ok(None),
            Ok(port) => Ok(Some(port)),
            Err(_) => Err(self.error(node, &path, &format!("port {n} is out of range (1-65535)"))),
        }
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, String> {
        let Some(node) = self.get(key) else {
            return Ok(None);
        };
        match node.value {
            Value::Bool(b) => Ok(Some(b)),
            _ => Err(self.type_error(node, &self.field_path(key), "a boolean")),
        }
    }

    /// A Go duration string; like kubeadm (metav1.Duration), an empty string is an error.
    fn duration(&self, key: &str) -> Result<Option<time::Duration>, String> {
        let Some(node) = self.get(key) else {
            return Ok(None);
        };
        let path = self.field_path(key);
        let Value::Str(s) = &node.value else {
            return Err(self.type_error(node, &path, "a duration string such as \"8760h0m0s\""));
        };
        parse_go_duration(s)
            .map(Some)
            .map_err(|m| self.error(node, &path, &m))
    }
}

fn with_line(line: u64, msg: &str) -> String {
    if line == 0 {
        msg.to_owned()
    } else {
        format!("line {line}: {msg}")
    }
}

/// Renders a serde-saphyr error as `line N: malformed YAML: <message>`.
fn yaml_error(err: &serde_saphyr::Error) -> String {
    let line = err.location().map_or(0, |l| l.line());
    let mut inner = err;
    while let serde_saphyr::Error::AliasError { error, .. }
    | serde_saphyr::Error::WithSnippet { error, .. } = inner
    {
        inner = error;
    }
    let msg = match inner {
        // The usual cause in kubeadm configs is an unquoted wildcard SAN.
        serde_saphyr::Error::UnknownAnchor { .. } => {
            "alias to an undefined anchor (a value starting with '*' must be quoted, e.g. \"*.example.com\")"
                .into()
        }
        _ => UserMessageFormatter.format_message(inner),
    };
    with_line(line, &format!("malformed YAML: {msg}"))
}

/// Escapes control characters so the message stays on one line whatever the input held.
fn one_line(msg: &str) -> String {
    if !msg.chars().any(char::is_control) {
        return msg.to_owned();
    }
    msg.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A YAML node with the line it starts on, so errors can point at it.
#[derive(Debug)]
struct Node {
    line: u64,
    value: Value,
}

/// An untyped YAML value. serde-saphyr has no DOM of its own; this one is just rich enough to
/// read headers first and report wrong types by field afterwards.
#[derive(Debug)]
enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Bytes,
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Value {
    /// Names what was found, in serde's "invalid type" wording.
    fn describe(&self) -> String {
        match self {
            Value::Null => "null".to_owned(),
            Value::Bool(b) => format!("boolean `{b}`"),
            Value::Int(n) => format!("integer `{n}`"),
            Value::Float(f) => format!("floating point `{f}`"),
            Value::Str(s) => format!("string {s:?}"),
            Value::Bytes => "binary data".to_owned(),
            Value::Seq(_) => "a sequence".to_owned(),
            Value::Map(_) => "a mapping".to_owned(),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Spanned is serde-saphyr's hook for source locations; line 0 means unknown.
        let spanned = Spanned::<Value>::deserialize(deserializer)?;
        Ok(Node {
            line: spanned.referenced.line(),
            value: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(i128::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Value::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real kubeadm v1beta3 fixture.
    const V1BETA3: &str = "\
apiVersion: kubeadm.k8s.io/v1beta3
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: 10.0.0.10
  bindPort: 6443
nodeRegistration:
  name: cp-1
  criSocket: unix:///var/run/containerd/containerd.sock
---
apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
kubernetesVersion: v1.28.4
clusterName: kubernetes
controlPlaneEndpoint: k8s.example.internal:6443
certificatesDir: /etc/kubernetes/pki
apiServer:
  certSANs:
  - extra.example.com
  - 192.0.2.7
networking:
  serviceSubnet: 10.96.0.0/12
  dnsDomain: cluster.local
";

    const V1BETA4: &str = "\
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.31.0
clusterName: prod
encryptionAlgorithm: ECDSA-P256
certificateValidityPeriod: 8760h0m0s
caCertificateValidityPeriod: 87600h0m0s
apiServer:
  certSANs: [api.prod.example.com, \"2001:db8::10\"]
etcd:
  local:
    dataDir: /var/lib/etcd
    serverCertSANs:
    - etcd-0.prod.example.com
    - 10.0.0.21
    peerCertSANs:
    - 10.0.0.21
networking:
  serviceSubnet: 10.96.0.0/12,fd00:10:96::/112
  dnsDomain: prod.local
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
nodeRegistration:
  name: cp-a
localAPIEndpoint:
  advertiseAddress: \"2001:db8::1\"
  bindPort: 8443
";

    const H: i64 = 3600;

    fn err(text: &str) -> String {
        let e = parse(text).expect_err("should fail");
        assert!(
            !e.contains('\n') && !e.contains('\r'),
            "multi-line error: {e:?}"
        );
        e
    }

    #[test]
    fn kubeadm_v1beta3_fixture() {
        let cfg = parse(V1BETA3).expect("should parse");
        assert_eq!(
            cfg,
            KubeadmConfig {
                api_version: Some("kubeadm.k8s.io/v1beta3".into()),
                node_name: Some("cp-1".into()),
                advertise_address: Some("10.0.0.10".into()),
                bind_port: Some(6443),
                cluster_name: Some("kubernetes".into()),
                control_plane_endpoint: Some("k8s.example.internal:6443".into()),
                certificates_dir: Some("/etc/kubernetes/pki".into()),
                apiserver_cert_sans: vec!["extra.example.com".into(), "192.0.2.7".into()],
                service_subnet: Some("10.96.0.0/12".into()),
                dns_domain: Some("cluster.local".into()),
                ..KubeadmConfig::default()
            }
        );
    }

    #[test]
    fn v1beta4_with_algorithm_validity_and_etcd_sans() {
        let cfg = parse(V1BETA4).expect("should parse");
        assert_eq!(
            cfg,
            KubeadmConfig {
                api_version: Some("kubeadm.k8s.io/v1beta4".into()),
                node_name: Some("cp-a".into()),
                advertise_address: Some("2001:db8::1".into()),
                bind_port: Some(8443),
                cluster_name: Some("prod".into()),
                apiserver_cert_sans: vec!["api.prod.example.com".into(), "2001:db8::10".into()],
                etcd_server_cert_sans: vec!["etcd-0.prod.example.com".into(), "10.0.0.21".into()],
                etcd_peer_cert_sans: vec!["10.0.0.21".into()],
                service_subnet: Some("10.96.0.0/12,fd00:10:96::/112".into()),
                dns_domain: Some("prod.local".into()),
                encryption_algorithm: Some("ECDSA-P256".into()),
                certificate_validity_period: Some(time::Duration::seconds(8760 * H)),
                ca_certificate_validity_period: Some(time::Duration::seconds(87600 * H)),
                ..KubeadmConfig::default()
            }
        );
    }

    #[test]
    fn other_kinds_are_ignored() {
        let text = format!(
            "{V1BETA3}---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
clusterDNS: [10.96.0.10]
featureGates:
  RotateKubeletServerCertificate: true
# fields that clash with ours by name but not by type must not matter here
networking: 5
apiServer: [oops]
maxPods: .inf
---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: ipvs
---
apiVersion: kubeadm.k8s.io/v1beta3
kind: JoinConfiguration
nodeRegistration:
  name: 42
---
apiVersion: kubeadm.k8s.io/v1beta2
kind: JoinConfiguration
---
apiVersion: example.com/v1
kind: ClusterConfiguration
clusterName: [not, ours]
---
"
        );
        assert_eq!(
            parse(&text).expect("should parse"),
            parse(V1BETA3).expect("should parse")
        );
    }

    #[test]
    fn either_kind_alone_is_enough() {
        let init = parse("apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n")
            .expect("should parse");
        assert_eq!(init.api_version.as_deref(), Some("kubeadm.k8s.io/v1beta4"));
        assert_eq!(init.node_name, None);

        let cluster = parse(
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nclusterName: c\n",
        )
        .expect("should parse");
        assert_eq!(cluster.cluster_name.as_deref(), Some("c"));
        assert_eq!(cluster.bind_port, None);
    }

    #[test]
    fn cluster_api_version_wins() {
        let text = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\n---\n\
                    apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n";
        assert_eq!(
            parse(text).expect("should parse").api_version.as_deref(),
            Some("kubeadm.k8s.io/v1beta4")
        );
    }

    #[test]
    fn external_etcd() {
        let text = "\
apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
etcd:
  external:
    endpoints:
    - https://10.0.0.50:2379
    caFile: /etc/etcd/ca.crt
";
        let cfg = parse(text).expect("should parse");
        assert!(cfg.etcd_external);
        assert!(cfg.etcd_server_cert_sans.is_empty());
        // The files travel in the join bundle; unset ones stay None.
        assert_eq!(
            cfg.etcd_external_ca_file.as_deref(),
            Some("/etc/etcd/ca.crt")
        );
        assert_eq!(cfg.etcd_external_cert_file, None);
        let with_files =
            format!("{text}    certFile: /etc/etcd/c.crt\n    keyFile: /etc/etcd/c.key\n");
        let cfg = parse(&with_files).expect("should parse");
        assert_eq!(
            cfg.etcd_external_cert_file.as_deref(),
            Some("/etc/etcd/c.crt")
        );
        assert_eq!(
            cfg.etcd_external_key_file.as_deref(),
            Some("/etc/etcd/c.key")
        );
        assert!(
            err(&format!("{text}    keyFile: 5\n")).contains("etcd.external.keyFile: invalid type")
        );

        // Local etcd, or `external: null`, is not external.
        assert!(!parse(V1BETA4).expect("should parse").etcd_external);
        let null_ext =
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\netcd:\n  external:\n";
        assert!(!parse(null_ext).expect("should parse").etcd_external);

        let both = format!("{text}  local:\n    dataDir: /var/lib/etcd\n");
        let e = err(&both);
        assert!(
            e.contains("ClusterConfiguration: etcd: local and external are mutually exclusive"),
            "{e}"
        );
        assert!(err("apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\netcd:\n  external: yes\n")
            .contains("etcd.external: invalid type: boolean `true`, expected a mapping"));
    }

    #[test]
    fn feature_gate_public_keys_ecdsa() {
        let text = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n\
                    featureGates:\n  PublicKeysECDSA: true\n  SomethingElse: whatever\n";
        assert_eq!(
            parse(text).expect("should parse").public_keys_ecdsa,
            Some(true)
        );
        let e = err(
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n\
                     featureGates:\n  PublicKeysECDSA: \"true\"\n",
        );
        assert_eq!(
            e,
            "line 4: ClusterConfiguration: featureGates.PublicKeysECDSA: invalid type: string \"true\", expected a boolean"
        );
    }

    #[test]
    fn go_zero_values_mean_unset() {
        let text = "\
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
nodeRegistration:
  name: \"\"
localAPIEndpoint:
  advertiseAddress: ~
  bindPort: 0
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
clusterName: ''
apiServer:
  certSANs:
networking: null
";
        let cfg = parse(text).expect("should parse");
        assert_eq!(
            cfg,
            KubeadmConfig {
                api_version: Some("kubeadm.k8s.io/v1beta4".into()),
                ..KubeadmConfig::default()
            }
        );
    }

    #[test]
    fn wrong_types_name_the_field() {
        let base = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n";
        let cases: &[(&str, &str)] = &[
            (
                "networking:\n  serviceSubnet: 5\n",
                "line 4: ClusterConfiguration: networking.serviceSubnet: invalid type: integer `5`, expected a string",
            ),
            (
                "apiServer:\n  certSANs: 5\n",
                "line 4: ClusterConfiguration: apiServer.certSANs: invalid type: integer `5`, expected a list of strings",
            ),
            (
                "apiServer:\n  certSANs:\n  - ok.example.com\n  - [nested]\n",
                "line 6: ClusterConfiguration: apiServer.certSANs[1]: invalid type: a sequence, expected a string",
            ),
            (
                "apiServer: oops\n",
                "line 3: ClusterConfiguration: apiServer: invalid type: string \"oops\", expected a mapping",
            ),
            (
                "etcd:\n  local:\n    peerCertSANs: {a: b}\n",
                "line 5: ClusterConfiguration: etcd.local.peerCertSANs: invalid type: a mapping, expected a list of strings",
            ),
            (
                "clusterName: true\n",
                "line 3: ClusterConfiguration: clusterName: invalid type: boolean `true`, expected a string",
            ),
            (
                "certificateValidityPeriod: 8760\n",
                "line 3: ClusterConfiguration: certificateValidityPeriod: invalid type: integer `8760`, expected a duration string such as \"8760h0m0s\"",
            ),
            (
                "caCertificateValidityPeriod: 10y\n",
                "line 3: ClusterConfiguration: caCertificateValidityPeriod: invalid duration \"10y\": unknown unit \"y\" (use ns, us, ms, s, m or h; write days as hours, e.g. 8760h for 365 days)",
            ),
            (
                "certificateValidityPeriod: \"\"\n",
                "line 3: ClusterConfiguration: certificateValidityPeriod: invalid duration \"\": expected a number followed by a unit (ns, us, ms, s, m, h), e.g. 8760h",
            ),
        ];
        for (body, want) in cases {
            assert_eq!(err(&format!("{base}{body}")), *want, "{body}");
        }

        let init =
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\nlocalAPIEndpoint:\n";
        assert_eq!(
            err(&format!("{init}  bindPort: \"abc\"\n")),
            "line 4: InitConfiguration: localAPIEndpoint.bindPort: invalid type: string \"abc\", expected an integer port"
        );
        assert_eq!(
            err(&format!("{init}  bindPort: 70000\n")),
            "line 4: InitConfiguration: localAPIEndpoint.bindPort: port 70000 is out of range (1-65535)"
        );
        assert!(err(&format!("{init}  bindPort: -1\n")).contains("out of range"));
        assert!(err(&format!("{init}  bindPort: 64.5\n")).contains("floating point `64.5`"));
        assert!(err(&format!("{init}  advertiseAddress: [1]\n")).contains(
            "localAPIEndpoint.advertiseAddress: invalid type: a sequence, expected a string"
        ));
        assert!(err(
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\nnodeRegistration: 3\n"
        )
        .contains(
            "InitConfiguration: nodeRegistration: invalid type: integer `3`, expected a mapping"
        ));
    }

    #[test]
    fn negative_and_zero_durations_pass_through() {
        let text = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n\
                    certificateValidityPeriod: -1h\ncaCertificateValidityPeriod: \"0\"\n";
        let cfg = parse(text).expect("should parse");
        assert_eq!(
            cfg.certificate_validity_period,
            Some(time::Duration::hours(-1))
        );
        assert_eq!(
            cfg.ca_certificate_validity_period,
            Some(time::Duration::ZERO)
        );
    }

    #[test]
    fn malformed_yaml() {
        let e = err("apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\nlocalAPIEndpoint: [1, 2\nfoo: bar\n");
        assert!(e.starts_with("line 4: malformed YAML: "), "{e}");
        let e = err("a: 1\n  b: 2\n");
        assert!(e.starts_with("line 2: malformed YAML: "), "{e}");
        let e = err("apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nclusterName: a\nclusterName: b\n");
        assert!(e.contains("malformed YAML: duplicate mapping key"), "{e}");
        // A syntax error in a document we would ignore still fails the file, as in kubeadm.
        let e = err(&format!(
            "{V1BETA3}---\nkind: KubeletConfiguration\nx: 'unterminated\n"
        ));
        assert!(e.contains("malformed YAML"), "{e}");
    }

    #[test]
    fn unsupported_api_versions() {
        for v in ["v1beta1", "v1beta2", "v1", "v1beta5", ""] {
            for kind in [INIT, CLUSTER] {
                let text = format!("apiVersion: kubeadm.k8s.io/{v}\nkind: {kind}\n");
                let e = err(&text);
                assert!(
                    e.starts_with(&format!("line 1: {kind}: unsupported apiVersion")),
                    "{e}"
                );
            }
        }
        assert!(
            err("apiVersion: kubeadm.k8s.io\nkind: ClusterConfiguration\n")
                .contains("unsupported apiVersion")
        );
    }

    #[test]
    fn nothing_relevant() {
        let want = "no InitConfiguration or ClusterConfiguration found (apiVersion kubeadm.k8s.io/v1beta3 or v1beta4)";
        assert_eq!(err(""), want);
        assert_eq!(err("\n\n# just a comment\n"), want);
        assert_eq!(err("---\n---\n...\n"), want);
        assert_eq!(
            err("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"),
            want
        );
        assert_eq!(
            err("apiVersion: kubeadm.k8s.io/v1beta3\nkind: JoinConfiguration\n"),
            want
        );
    }

    #[test]
    fn documents_need_a_header() {
        assert_eq!(
            err("clusterName: x\n"),
            "line 1: document has no apiVersion or kind; every document in a kubeadm config needs both"
        );
        assert_eq!(
            err("apiVersion: 3\nkind: ClusterConfiguration\n"),
            "line 1: document: apiVersion: invalid type: integer `3`, expected a string"
        );
    }

    #[test]
    fn duplicated_kind_is_an_error() {
        let e = err(&format!(
            "{V1BETA3}---\napiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n"
        ));
        assert_eq!(
            e,
            "line 24: ClusterConfiguration appears more than once (first at line 10)"
        );
    }

    #[test]
    fn non_mapping_documents() {
        assert_eq!(
            err("- apiVersion: kubeadm.k8s.io/v1beta3\n  kind: ClusterConfiguration\n"),
            "line 1: document is a sequence, expected a mapping with apiVersion and kind"
        );
        assert_eq!(
            err("just a string\n"),
            "line 1: document is string \"just a string\", expected a mapping with apiVersion and kind"
        );
        assert!(
            err(&format!("{V1BETA3}---\n42\n")).starts_with("line 24: document is integer `42`")
        );
    }

    #[test]
    fn anchors_and_merge_keys_work() {
        let text = "\
apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
etcd:
  local:
    serverCertSANs: &sans [a.example.com, b.example.com]
    peerCertSANs: *sans
networking:
  <<: {dnsDomain: merged.local}
  serviceSubnet: 10.0.0.0/16
";
        let cfg = parse(text).expect("should parse");
        assert_eq!(cfg.etcd_peer_cert_sans, cfg.etcd_server_cert_sans);
        assert_eq!(cfg.etcd_peer_cert_sans.len(), 2);
        assert_eq!(cfg.dns_domain.as_deref(), Some("merged.local"));
    }

    #[test]
    fn depth_is_capped() {
        let nested = |n: usize| format!("{}x{}", "[".repeat(n), "]".repeat(n));
        assert!(err(&nested(MAX_DEPTH)).contains("document is a sequence"));
        assert!(err(&nested(MAX_DEPTH + 1)).contains("malformed YAML"));
        // Depth reached through an alias counts too.
        let inner = nested(20);
        let aliased = format!("a: &d {inner}\nb: {}*d{}\n", "[".repeat(20), "]".repeat(20));
        assert!(err(&aliased).contains("malformed YAML"));
    }

    #[test]
    fn unquoted_wildcard_san_gets_a_hint() {
        let e = err(
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n\
                     apiServer:\n  certSANs:\n  - *.example.com\n",
        );
        assert!(
            e.starts_with("line 5: malformed YAML: alias to an undefined anchor"),
            "{e}"
        );
        let ok = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n\
                  apiServer:\n  certSANs:\n  - \"*.example.com\"\n";
        assert_eq!(
            parse(ok).expect("should parse").apiserver_cert_sans,
            vec!["*.example.com".to_owned()]
        );
    }

    #[test]
    fn odd_input_never_panics() {
        let mut inputs: Vec<String> = [
            "[1, 2, 3]",
            "- a\n- b\n",
            "42",
            "~",
            "!!binary aGVsbG8=",
            "\u{0}\u{1}\u{2}\u{7f}\u{fffd}\u{feff}",
            "\u{feff}apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n",
            "{{{{{{",
            "]]]",
            "a: *b",
            "&a [*a]",
            "? [a, b]\n: c\n",
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n? [x]\n: y\n1: 2\n",
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nnetworking: !custom {serviceSubnet: x}\n",
            "%YAML 1.2\n%TAG ! tag:x,2000:\n---\n!a b\n",
            "\t\t\t: :\n",
            "'''",
            "\"\\u00\"",
            "a: 99999999999999999999999999999999999999999999999999\n",
            "a: -99999999999999999999999999999999999999999999999999\n",
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\nlocalAPIEndpoint:\n  bindPort: 99999999999999999999999999999999999\n",
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\ncertificateValidityPeriod: 99999999999999999999999h\n",
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nclusterName: \"line\\nbreak\\u0007\"\napiServer: {certSANs: [\"\\r\\n\", 1]}\n",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        inputs.push("[".repeat(10_000));
        inputs.push("a:\n".repeat(5_000));
        inputs.push(format!("{}x", "- ".repeat(5_000)));
        inputs.push("---\n".repeat(5_000));
        // Depth reached through aliases rather than literal nesting.
        let deep20 = format!("{}x{}", "[".repeat(20), "]".repeat(20));
        inputs.push(format!(
            "a: &d {deep20}\nb: {}*d{}\nc: {}*d{}\n",
            "[".repeat(20),
            "]".repeat(20),
            "{k: ".repeat(20),
            "}".repeat(20)
        ));
        inputs.push(format!(
            "a: &d {deep20}\nb:\n{}",
            (1..40)
                .map(|i| format!("{}<<: {{k{i}:\n", "  ".repeat(i)))
                .collect::<String>()
        ));
        inputs.push(
            "x: &a [1]\n".to_owned()
                + &(0..30)
                    .map(|i| format!("y{i}: &a{i} [*a, *a, *a, *a]\n"))
                    .collect::<String>(),
        );
        inputs.push(
            String::from_utf8_lossy(&[0xff, 0xfe, 0x00, 0x41, 0x0a, 0x3a, 0x80, 0x20]).into_owned(),
        );

        // Deterministic pseudo-random garbage, biased towards YAML punctuation.
        let alphabet: Vec<char> = "ab:- \n\t[]{},&*!|>'\"#%@`?~0123456789.\u{e9}\u{0}\\"
            .chars()
            .collect();
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2_000 {
            let mut s = String::new();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 64) as usize;
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                s.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            inputs.push(s);
        }
        // Garbage appended to a valid file, too.
        for cut in 0..V1BETA4.len() {
            if V1BETA4.is_char_boundary(cut) {
                inputs.push(V1BETA4[..cut].to_owned());
            }
        }

        for input in &inputs {
            if let Err(e) = parse(input) {
                assert!(!e.contains('\n') && !e.contains('\r'), "{input:?} -> {e:?}");
                assert!(!e.is_empty());
            }
        }
    }
}
