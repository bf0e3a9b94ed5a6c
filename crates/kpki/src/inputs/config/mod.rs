//! Reading a kubeadm config file (`kubeadm init --config`): the documents, per API version.
//!
//! A kubeadm config is a multi-document YAML stream in which each document is a Kubernetes-style
//! object (`apiVersion` + `kind`). Only `InitConfiguration` and `ClusterConfiguration` in
//! `kubeadm.k8s.io/v1beta3` or `v1beta4` matter here; other kinds (`KubeletConfiguration`,
//! `JoinConfiguration`, ...) are ignored, as kubeadm ignores what it does not need. Every document
//! is first read into the span-tracking tree of [`yaml`], so a document we ignore can never fail on
//! the types of its fields, and errors in the documents we read name the line and field.
//!
//! Each document is read with the field set of *its own* API version ([`v1beta3`], [`v1beta4`],
//! transcribed from kubeadm's `cmd/kubeadm/app/apis/kubeadm/{v1beta3,v1beta4}/types.go`). kubeadm
//! decodes strictly but only *warns* about unknown fields, dropping them; kpki does the same and
//! names the API version that does have the field (`encryptionAlgorithm` in a v1beta3 file is
//! dropped: 1-year RSA-2048 leaves, as kubeadm gives). Checks that depend on the target kubeadm
//! version (feature-gate names, algorithm values, API versions) are in [`validate`].

pub mod v1beta3;
pub mod v1beta4;
pub mod validate;
pub mod yaml;

use std::collections::BTreeMap;

use serde_saphyr::NonFiniteFloatPolicy;

use yaml::{one_line, with_line, yaml_error, Node, Obj, Value};

/// The kubeadm API group; other groups' documents are never ours, whatever their kind.
const KUBEADM_GROUP: &str = "kubeadm.k8s.io";

/// `kubeadm.k8s.io/v1beta3`.
pub const V1BETA3: &str = "kubeadm.k8s.io/v1beta3";
/// `kubeadm.k8s.io/v1beta4`.
pub const V1BETA4: &str = "kubeadm.k8s.io/v1beta4";

/// The kubeadm API versions kpki understands.
const SUPPORTED_VERSIONS: &[&str] = &[V1BETA3, V1BETA4];

/// Deepest YAML nesting accepted (serde-saphyr's default is 64).
const MAX_DEPTH: usize = 24;

const INIT: &str = "InitConfiguration";
const CLUSTER: &str = "ClusterConfiguration";

/// What kpki needs from a kubeadm config file; every field is optional because flags and defaults fill the gaps.
///
/// Values are returned as written, without IP/CIDR/name validation. Go zero values mean "unset"
/// to kubeadm (it then applies its defaults), so an empty string or `bindPort: 0` comes back as
/// `None`, exactly like an absent field. A field is only read from a document whose API version
/// defines it (`encryptionAlgorithm` and the validity periods are v1beta4's).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KubeadmConfig {
    /// `apiVersion` of the ClusterConfiguration, or of the InitConfiguration if there is no
    /// ClusterConfiguration.
    pub api_version: Option<String>,
    /// `apiVersion` of the InitConfiguration, if there is one.
    pub init_api_version: Option<String>,
    /// `apiVersion` of the ClusterConfiguration, if there is one.
    pub cluster_api_version: Option<String>,
    /// ClusterConfiguration `kubernetesVersion`.
    pub kubernetes_version: Option<String>,
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
    /// ClusterConfiguration `etcd.local.dataDir`.
    pub etcd_data_dir: Option<String>,
    /// True when ClusterConfiguration sets `etcd.external`: kubeadm then creates no etcd PKI.
    pub etcd_external: bool,
    /// `etcd.external.endpoints`.
    pub etcd_external_endpoints: Vec<String>,
    /// `etcd.external.caFile`, `certFile`, `keyFile`.
    pub etcd_external_files: [Option<String>; 3],
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
    /// ClusterConfiguration `featureGates`, every entry (names are checked per target version).
    pub feature_gates: BTreeMap<String, bool>,
    /// Line of each field read (`"apiServer.certSANs[1]"`, `"kubernetesVersion"`, or a document
    /// kind for the document itself), so errors and origins can point at it.
    pub lines: BTreeMap<String, u64>,
    /// Warnings about the file (fields of another API version, unknown fields), one line each.
    pub warnings: Vec<String>,
}

impl KubeadmConfig {
    /// Line of a field, or 0 when it is not in the file.
    pub fn line(&self, field: &str) -> u64 {
        self.lines.get(field).copied().unwrap_or(0)
    }

    /// The API version of the document that holds `kind` (`InitConfiguration`/`ClusterConfiguration`).
    pub fn version_of(&self, kind: &str) -> Option<&str> {
        match kind {
            INIT => self.init_api_version.as_deref(),
            _ => self.cluster_api_version.as_deref(),
        }
    }
}

/// Parses the text of a kubeadm config file.
///
/// Errors are one line, start with the line number where one is known, and name the document
/// kind and field (`line 14: ClusterConfiguration: networking.serviceSubnet: invalid type: ...`);
/// the caller adds the file path.
pub fn parse(text: &str) -> Result<KubeadmConfig, String> {
    parse_inner(text).map_err(|e| one_line(&e)).map(|mut c| {
        c.warnings = c.warnings.iter().map(|w| one_line(w)).collect();
        c
    })
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
        cfg.lines.insert(kind.to_string(), doc.line);
        let (schema, other, other_version) = match (kind, api_version) {
            (INIT, V1BETA3) => (v1beta3::INIT, v1beta4::INIT, V1BETA4),
            (INIT, _) => (v1beta4::INIT, v1beta3::INIT, V1BETA3),
            (_, V1BETA3) => (v1beta3::CLUSTER, v1beta4::CLUSTER, V1BETA4),
            _ => (v1beta4::CLUSTER, v1beta3::CLUSTER, V1BETA3),
        };
        check_fields(
            &obj,
            schema,
            Some(other),
            api_version,
            other_version,
            &mut cfg.warnings,
        )?;
        if kind == INIT {
            cfg.init_api_version = Some(api_version.to_owned());
            read_init(&obj, &mut cfg)?;
        } else {
            cfg.cluster_api_version = Some(api_version.to_owned());
            read_cluster(&obj, &mut cfg)?;
            if api_version == V1BETA4 {
                v1beta4::read_cluster(&obj, &mut cfg)?;
            }
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

/// How a field's value is checked while walking a document.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// Not checked here (read, if at all, by the typed readers).
    Any,
    /// A nested object with these fields.
    Map(&'static [Field]),
    /// v1beta3 `extraArgs`: a mapping of flag names to string values.
    ArgsMap,
    /// v1beta4 `extraArgs`: a list of `{name, value}`.
    ArgsList,
}

/// A field of a kubeadm type, as its JSON tag names it.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// JSON name.
    pub name: &'static str,
    /// How the value is checked.
    pub shape: Shape,
}

/// Shorthand for the schema tables.
pub const fn f(name: &'static str, shape: Shape) -> Field {
    Field { name, shape }
}

/// Walks a mapping against its field table: warns about fields the API version does not have
/// (naming the version that has it, if any), and checks `extraArgs` shapes and nested objects.
fn check_fields(
    obj: &Obj<'_>,
    fields: &[Field],
    other: Option<&[Field]>,
    version: &str,
    other_version: &str,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    for (k, v) in obj.entries {
        let Value::Str(key) = &k.value else { continue };
        let path = obj.field_path(key);
        let Some(field) = fields.iter().find(|f| f.name == key) else {
            let in_other = other.is_some_and(|o| o.iter().any(|f| f.name == key));
            warnings.push(with_line(
                k.line,
                &if in_other {
                    format!(
                        "{}: {path} is a {other_version} field; kubeadm ignores it in a {version} document, and so does kpki",
                        obj.kind
                    )
                } else {
                    format!(
                        "{}: unknown field {path:?} (not in {version}); kubeadm ignores it, and so does kpki",
                        obj.kind
                    )
                },
            ));
            continue;
        };
        if matches!(v.value, Value::Null) {
            continue;
        }
        match field.shape {
            Shape::Any => {}
            Shape::Map(sub) => {
                let Value::Map(entries) = &v.value else {
                    return Err(obj.type_error(v, &path, "a mapping"));
                };
                let child = Obj {
                    entries,
                    kind: obj.kind,
                    path: path.clone(),
                };
                let other_sub = other
                    .and_then(|o| o.iter().find(|f| f.name == key))
                    .and_then(|f| match f.shape {
                        Shape::Map(s) => Some(s),
                        _ => None,
                    });
                check_fields(&child, sub, other_sub, version, other_version, warnings)?;
            }
            Shape::ArgsMap => match &v.value {
                Value::Map(entries) => {
                    for (ak, av) in entries {
                        let name = match &ak.value {
                            Value::Str(s) => s.clone(),
                            other => other.describe(),
                        };
                        if !matches!(av.value, Value::Str(_) | Value::Null) {
                            return Err(obj.type_error(av, &format!("{path}.{name}"), "a string (extraArgs values are strings; quote numbers and booleans)"));
                        }
                    }
                }
                _ => {
                    return Err(obj.type_error(
                        v,
                        &path,
                        &format!("a mapping of flag names to values ({version}; the list of {{name, value}} is {V1BETA4}'s form)"),
                    ))
                }
            },
            Shape::ArgsList => match &v.value {
                Value::Seq(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let Value::Map(entries) = &item.value else {
                            return Err(obj.type_error(item, &format!("{path}[{i}]"), "a mapping with name and value"));
                        };
                        let arg = Obj {
                            entries,
                            kind: obj.kind,
                            path: format!("{path}[{i}]"),
                        };
                        let name = arg.string("name")?;
                        arg.string("value")?;
                        if name.is_none() {
                            // validation.go ValidateExtraArgs.
                            return Err(obj.error(item, &format!("{path}[{i}]"), "argument has no name"));
                        }
                    }
                }
                _ => {
                    return Err(obj.type_error(
                        v,
                        &path,
                        &format!("a list of {{name, value}} ({version}; the mapping of flag names is {V1BETA3}'s form)"),
                    ))
                }
            },
        }
    }
    Ok(())
}

/// Records the line of the value at `key` under `obj` as `obj.path + key`.
fn note(cfg: &mut KubeadmConfig, obj: &Obj<'_>, key: &str) {
    if let Some(n) = obj.get(key) {
        cfg.lines.insert(obj.field_path(key), n.line);
        if let Value::Seq(items) = &n.value {
            for (i, item) in items.iter().enumerate() {
                cfg.lines
                    .insert(format!("{}[{i}]", obj.field_path(key)), item.line);
            }
        }
    }
}

fn read_init(obj: &Obj<'_>, cfg: &mut KubeadmConfig) -> Result<(), String> {
    if let Some(reg) = obj.object("nodeRegistration")? {
        cfg.node_name = reg.string("name")?;
        note(cfg, &reg, "name");
    }
    if let Some(ep) = obj.object("localAPIEndpoint")? {
        cfg.advertise_address = ep.string("advertiseAddress")?;
        cfg.bind_port = ep.port("bindPort")?;
        note(cfg, &ep, "advertiseAddress");
        note(cfg, &ep, "bindPort");
    }
    Ok(())
}

/// Fields both v1beta3 and v1beta4 ClusterConfigurations have.
fn read_cluster(obj: &Obj<'_>, cfg: &mut KubeadmConfig) -> Result<(), String> {
    cfg.kubernetes_version = obj.string("kubernetesVersion")?;
    cfg.cluster_name = obj.string("clusterName")?;
    cfg.control_plane_endpoint = obj.string("controlPlaneEndpoint")?;
    cfg.certificates_dir = obj.string("certificatesDir")?;
    for k in [
        "kubernetesVersion",
        "clusterName",
        "controlPlaneEndpoint",
        "certificatesDir",
    ] {
        note(cfg, obj, k);
    }

    if let Some(api) = obj.object("apiServer")? {
        cfg.apiserver_cert_sans = api.strings("certSANs")?;
        note(cfg, &api, "certSANs");
    }
    if let Some(etcd) = obj.object("etcd")? {
        let local = etcd.object("local")?;
        let external = etcd.object("external")?;
        if local.is_some() && external.is_some() {
            // validation.go ValidateEtcd.
            return Err(etcd.error_at(
                etcd.line_of("external"),
                "local and external are mutually exclusive",
            ));
        }
        cfg.etcd_external = external.is_some();
        if let Some(local) = local {
            cfg.etcd_server_cert_sans = local.strings("serverCertSANs")?;
            cfg.etcd_peer_cert_sans = local.strings("peerCertSANs")?;
            cfg.etcd_data_dir = local.string("dataDir")?;
            for k in ["serverCertSANs", "peerCertSANs", "dataDir"] {
                note(cfg, &local, k);
            }
        }
        if let Some(ext) = external {
            cfg.etcd_external_endpoints = ext.strings("endpoints")?;
            cfg.etcd_external_files = [
                ext.string("caFile")?,
                ext.string("certFile")?,
                ext.string("keyFile")?,
            ];
            for k in ["endpoints", "caFile", "certFile", "keyFile"] {
                note(cfg, &ext, k);
            }
            cfg.lines
                .insert("etcd.external".into(), etcd.line_of("external"));
        }
    }
    if let Some(net) = obj.object("networking")? {
        cfg.service_subnet = net.string("serviceSubnet")?;
        cfg.dns_domain = net.string("dnsDomain")?;
        note(cfg, &net, "serviceSubnet");
        note(cfg, &net, "dnsDomain");
    }
    if let Some(gates) = obj.object("featureGates")? {
        for (k, _) in gates.entries {
            let Value::Str(name) = &k.value else { continue };
            if let Some(b) = gates.boolean(name)? {
                cfg.feature_gates.insert(name.clone(), b);
                note(cfg, &gates, name);
            }
        }
        cfg.public_keys_ecdsa = cfg.feature_gates.get("PublicKeysECDSA").copied();
    }
    Ok(())
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

    /// The parsed config without bookkeeping (lines, per-kind versions), for whole-struct checks.
    fn values(text: &str) -> KubeadmConfig {
        let mut c = parse(text).expect("should parse");
        c.lines.clear();
        c.init_api_version = None;
        c.cluster_api_version = None;
        c
    }

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
        let cfg = values(V1BETA3);
        assert_eq!(
            cfg,
            KubeadmConfig {
                api_version: Some("kubeadm.k8s.io/v1beta3".into()),
                kubernetes_version: Some("v1.28.4".into()),
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
        let cfg = values(V1BETA4);
        assert_eq!(
            cfg,
            KubeadmConfig {
                api_version: Some("kubeadm.k8s.io/v1beta4".into()),
                kubernetes_version: Some("v1.31.0".into()),
                etcd_data_dir: Some("/var/lib/etcd".into()),
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
        assert_eq!(values(&text), values(V1BETA3));
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
            cfg.etcd_external_files[0].as_deref(),
            Some("/etc/etcd/ca.crt")
        );
        assert_eq!(cfg.etcd_external_files[1], None);
        let with_files =
            format!("{text}    certFile: /etc/etcd/c.crt\n    keyFile: /etc/etcd/c.key\n");
        let cfg = parse(&with_files).expect("should parse");
        assert_eq!(
            cfg.etcd_external_files[1].as_deref(),
            Some("/etc/etcd/c.crt")
        );
        assert_eq!(
            cfg.etcd_external_files[2].as_deref(),
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
                    featureGates:\n  PublicKeysECDSA: true\n  SomethingElse: false\n";
        let cfg = parse(text).expect("should parse");
        assert_eq!(cfg.public_keys_ecdsa, Some(true));
        // Every gate is kept; names are checked against the target version later.
        assert_eq!(cfg.feature_gates.get("SomethingElse"), Some(&false));
        // featureGates is map[string]bool in kubeadm: any non-boolean is a type error.
        assert_eq!(
            err("apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nfeatureGates:\n  X: whatever\n"),
            "line 4: ClusterConfiguration: featureGates.X: invalid type: string \"whatever\", expected a boolean"
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
        let cfg = values(text);
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
    #[test]
    fn fields_are_read_per_api_version() {
        let v3 = "apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
certificateValidityPeriod: 876000h
caCertificateValidityPeriod: 876000h
encryptionAlgorithm: ECDSA-P256
apiServer:
  extraEnvs: []
  timeoutForControlPlane: 4m0s
dns:
  disabled: true
typo: 1
";
        let cfg = parse(v3).expect("should parse");
        assert_eq!(cfg.encryption_algorithm, None);
        assert_eq!(cfg.certificate_validity_period, None);
        assert_eq!(cfg.ca_certificate_validity_period, None);
        assert_eq!(
            cfg.warnings,
            [
                "line 3: ClusterConfiguration: certificateValidityPeriod is a kubeadm.k8s.io/v1beta4 field; kubeadm ignores it in a kubeadm.k8s.io/v1beta3 document, and so does kpki",
                "line 4: ClusterConfiguration: caCertificateValidityPeriod is a kubeadm.k8s.io/v1beta4 field; kubeadm ignores it in a kubeadm.k8s.io/v1beta3 document, and so does kpki",
                "line 5: ClusterConfiguration: encryptionAlgorithm is a kubeadm.k8s.io/v1beta4 field; kubeadm ignores it in a kubeadm.k8s.io/v1beta3 document, and so does kpki",
                "line 7: ClusterConfiguration: apiServer.extraEnvs is a kubeadm.k8s.io/v1beta4 field; kubeadm ignores it in a kubeadm.k8s.io/v1beta3 document, and so does kpki",
                "line 10: ClusterConfiguration: dns.disabled is a kubeadm.k8s.io/v1beta4 field; kubeadm ignores it in a kubeadm.k8s.io/v1beta3 document, and so does kpki",
                "line 11: ClusterConfiguration: unknown field \"typo\" (not in kubeadm.k8s.io/v1beta3); kubeadm ignores it, and so does kpki",
            ]
        );
        let v4 = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\napiServer:\n  timeoutForControlPlane: 4m0s\n";
        assert_eq!(
            parse(v4).expect("should parse").warnings,
            ["line 4: ClusterConfiguration: apiServer.timeoutForControlPlane is a kubeadm.k8s.io/v1beta3 field; kubeadm ignores it in a kubeadm.k8s.io/v1beta4 document, and so does kpki"]
        );
        let init = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\ndryRun: true\nnodeRegistration:\n  imagePullSerial: false\n";
        let w = parse(init).expect("should parse").warnings;
        assert!(
            w[0].contains("dryRun is a kubeadm.k8s.io/v1beta4 field")
                && w[1]
                    .contains("nodeRegistration.imagePullSerial is a kubeadm.k8s.io/v1beta4 field"),
            "{w:?}"
        );
    }

    #[test]
    fn extra_args_shape_per_api_version() {
        let v3 = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n";
        let v4 = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n";
        let map = "apiServer:\n  extraArgs:\n    audit-log-maxage: \"30\"\n";
        let list = "apiServer:\n  extraArgs:\n  - name: audit-log-maxage\n    value: \"30\"\n";
        assert!(parse(&format!("{v3}{map}")).is_ok());
        assert!(parse(&format!("{v4}{list}")).is_ok());
        assert_eq!(
            err(&format!("{v4}{map}")),
            "line 5: ClusterConfiguration: apiServer.extraArgs: invalid type: a mapping, expected a list of {name, value} (kubeadm.k8s.io/v1beta4; the mapping of flag names is kubeadm.k8s.io/v1beta3's form)"
        );
        assert!(err(&format!("{v3}{list}")).starts_with("line 5: ClusterConfiguration: apiServer.extraArgs: invalid type: a sequence, expected a mapping of flag names to values (kubeadm.k8s.io/v1beta3"));
        assert_eq!(
            err(&format!(
                "{v4}etcd:\n  local:\n    extraArgs:\n    - value: x\n"
            )),
            "line 6: ClusterConfiguration: etcd.local.extraArgs[0]: argument has no name"
        );
        assert!(err(&format!("{v3}scheduler:\n  extraArgs:\n    v: 4\n"))
            .contains("scheduler.extraArgs.v: invalid type: integer `4`, expected a string"));
        let init4 = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nnodeRegistration:\n  kubeletExtraArgs:\n    node-ip: 10.0.0.1\n";
        assert!(err(init4).contains(
            "nodeRegistration.kubeletExtraArgs: invalid type: a mapping, expected a list"
        ));
        assert!(err(&format!("{v4}dns: 5\n"))
            .contains("dns: invalid type: integer `5`, expected a mapping"));
    }
}
