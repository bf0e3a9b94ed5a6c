//! Cluster inputs: kubeadm's flags and config fields, validated and defaulted.
//!
//! Installers and the CLI hand over typed values ([`InputArgs`]; the CLI parses its flags with
//! [`crate::parse`]); resolution validates them with the config file's values, naming the flag or
//! config field at fault, so installers get the same checks as the command line.
//! Resolution picks the target kubeadm version (`version`), reads and validates the config for it
//! (`config`), merges flags over the file (flags override scalars; `--apiserver-cert-extra-sans`
//! adds to `apiServer.certSANs`), detects the advertise address like kubeadm when nothing gives one
//! (`detect`), and records where every value came from ([`Origin`]).

#[doc(hidden)]
pub mod config;
pub(crate) mod detect;
pub(crate) mod discover;
pub(crate) mod duration;
#[doc(hidden)]
pub mod node;
pub(crate) mod origin;
pub(crate) mod root;
pub mod table;
pub(crate) mod version;

pub use discover::Fact;
pub use origin::Origin;
pub use version::Target;

/// The config reader's former name.
pub(crate) use config as kubeadm_config;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use time::Duration;

use crate::error::{Error, Result};
use crate::inputs::config::KubeadmConfig;
use crate::inputs::detect::{Detected, NetState};
use crate::x509::keys::KeyAlgorithm;

/// kubeadm's default certificate validity (8760h).
pub const DEFAULT_CERT_VALIDITY: Duration = Duration::hours(8760);
/// kubeadm's default CA validity (87600h).
pub const DEFAULT_CA_VALIDITY: Duration = Duration::hours(87600);
/// kubeadm back-dates NotBefore by five minutes to absorb clock skew.
pub const BACKDATE: Duration = Duration::minutes(5);
/// kubeadm's kubeconfig directory; `certificatesDir` does not move it.
pub const DEFAULT_KUBECONFIG_DIR: &str = "/etc/kubernetes";

/// The cluster inputs an installer (or the CLI's flag layer) gives, typed; kubeadm's flag names
/// are in the field docs. Everything left `None` comes from the kubeadm config file named by
/// `config`, then from what an existing tree says, then from kubeadm's defaults.
///
/// String parsing lives in one flag layer ([`crate::parse`]); this type holds values only.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct InputArgs {
    /// `--cert-dir` / `--out`.
    pub cert_dir: Option<PathBuf>,
    /// `--kubeconfig-dir`.
    pub kubeconfig_dir: Option<PathBuf>,
    /// `--config`: a kubeadm InitConfiguration/ClusterConfiguration file.
    pub config: Option<PathBuf>,
    /// `--kubeadm-version`: the kubeadm whose layout to follow (default: kubernetesVersion's minor).
    pub kubeadm_version: Option<String>,
    /// `--node-name`.
    pub node_name: Option<String>,
    /// `--apiserver-advertise-address` (unspecified `0.0.0.0`/`::` means: detect, as kubeadm).
    pub advertise_address: Option<IpAddr>,
    /// `--apiserver-bind-port`.
    pub bind_port: Option<u16>,
    /// `--control-plane-endpoint`: `host[:port]`, the port defaulting to the bind port.
    pub control_plane_endpoint: Option<String>,
    /// `--apiserver-cert-extra-sans` (each value may itself be a comma list); added to the config
    /// file's `apiServer.certSANs`.
    pub apiserver_cert_extra_sans: Vec<String>,
    /// `--service-cidr`: one CIDR, or two of different families (dual-stack).
    pub service_cidrs: Option<Vec<IpNet>>,
    /// `--service-dns-domain`.
    pub service_dns_domain: Option<String>,
    /// `--cluster-name`.
    pub cluster_name: Option<String>,
    /// `--encryption-algorithm`.
    pub key_algorithm: Option<KeyAlgorithm>,
    /// `--cert-validity`.
    pub cert_validity: Option<Duration>,
    /// `--ca-validity`.
    pub ca_validity: Option<Duration>,
    /// `--join`: which control-plane node this is.
    pub role: Role,
    /// `--root`: the node's `/` is this directory (a copied node, audited offline): every default
    /// path and every absolute path read from a file is taken under it.
    pub root: Option<PathBuf>,
    /// `--manifests-dir`: the node's static Pod manifests (default `/etc/kubernetes/manifests`).
    pub manifests_dir: Option<PathBuf>,
    /// `--kubelet-config`: the node's kubelet configuration (default
    /// `/var/lib/kubelet/config.yaml`).
    pub kubelet_config: Option<PathBuf>,
}

/// Which control-plane node a tree is for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// The first control-plane node (`kubeadm init`): it makes the CAs.
    #[default]
    FirstControlPlane,
    /// A control-plane node joining an existing cluster (`kubeadm join --control-plane`): the CAs
    /// and sa keys must already be there, no super-admin.conf or kubelet.conf is written.
    JoiningControlPlane,
}

impl InputArgs {
    /// Inputs that only name the certificate directory: everything else from the config, the
    /// tree or kubeadm's defaults.
    pub fn for_cert_dir(cert_dir: impl Into<PathBuf>) -> InputArgs {
        InputArgs {
            cert_dir: Some(cert_dir.into()),
            ..InputArgs::default()
        }
    }
}

/// A `host:port` endpoint.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Endpoint {
    /// Host as written (IP or DNS name, without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
}

impl Endpoint {
    /// `https://host:port`, IPv6 in brackets (Go's JoinHostPort).
    pub fn url(&self) -> String {
        if self.host.contains(':') {
            format!("https://[{}]:{}", self.host, self.port)
        } else {
            format!("https://{}:{}", self.host, self.port)
        }
    }
}

/// `etcd.external.caFile` / `certFile` / `keyFile` of the kubeadm config (paths as written;
/// kubeadm reads them relative to its working directory). Unset fields are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExternalEtcd {
    /// `etcd.external.caFile`.
    pub ca_file: Option<PathBuf>,
    /// `etcd.external.certFile`.
    pub cert_file: Option<PathBuf>,
    /// `etcd.external.keyFile`.
    pub key_file: Option<PathBuf>,
}

/// Validated cluster inputs: everything the spec's templates and the kubeconfigs need.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Inputs {
    /// Where certificates and keys live.
    pub cert_dir: PathBuf,
    /// Where kubeconfig files live.
    pub kubeconfig_dir: PathBuf,
    /// Node name, trimmed and lower-cased.
    pub node_name: String,
    /// API server advertise address (canonical form).
    pub advertise_address: IpAddr,
    /// API server bind port.
    pub bind_port: u16,
    /// Control-plane endpoint, if set.
    pub control_plane_endpoint: Option<Endpoint>,
    /// Service CIDRs; the first one gives the API server's service IP.
    pub service_cidrs: Vec<IpNet>,
    /// Service DNS domain.
    pub dns_domain: String,
    /// Cluster name (kubeconfig cluster entry).
    pub cluster_name: String,
    /// Extra API server SANs (lower-cased), IP or DNS: the config file's, then the flag's.
    pub apiserver_extra_sans: Vec<String>,
    /// Where each of `apiserver_extra_sans` came from (same order).
    pub apiserver_extra_san_origins: Vec<Origin>,
    /// Extra etcd server SANs.
    pub etcd_server_extra_sans: Vec<String>,
    /// Extra etcd peer SANs.
    pub etcd_peer_extra_sans: Vec<String>,
    /// False with an external etcd: entries marked `when = "local_etcd"` are left out.
    pub local_etcd: bool,
    /// The `etcd.external` files of the kubeadm config (set exactly when `local_etcd` is false
    /// because the config says `etcd.external`); they travel in the join bundle.
    pub external_etcd: Option<ExternalEtcd>,
    /// A control-plane node joining an existing cluster (`--join`): entries marked
    /// `when = "first_control_plane"` are left out, and the bundle entries must already be there.
    pub join: bool,
    /// Key algorithm for entries that follow the cluster setting.
    pub key_algorithm: KeyAlgorithm,
    /// Leaf validity.
    #[serde(serialize_with = "crate::inputs::duration::serialize_go")]
    pub cert_validity: Duration,
    /// CA validity.
    #[serde(serialize_with = "crate::inputs::duration::serialize_go")]
    pub ca_validity: Duration,
    /// What resolving the inputs found wrong with them (an input that contradicts the tree).
    #[serde(skip)]
    pub notes: Vec<crate::assess::Finding>,
    /// Inputs that neither a flag nor the config gave, read from the existing tree.
    #[serde(skip)]
    pub discovered: Vec<discover::Fact>,
    /// The kubeadm version whose layout and config rules apply, with its effective feature gates.
    pub target: Target,
    /// Where each scalar input came from, keyed by input name (`node_name`, `advertise_address`,
    /// `cert_dir`, `kubeconfig_dir`, `target`, ...).
    pub origins: BTreeMap<String, Origin>,
    /// `--root`: every path the node's files name is read under it.
    pub root: root::Root,
    /// The node's manifests and kubelet config, when the inputs came from a node (the wiring
    /// checks read them).
    #[serde(skip)]
    pub node: Option<std::sync::Arc<node::Node>>,
    /// The detection result when the advertise address was detected.
    pub detected: Option<Detected>,
    /// Warnings for the operator (kubeadm's validity warnings, fields of another API version,
    /// deprecated settings, a newer-than-modeled target), one line each; the CLI prints them.
    pub warnings: Vec<String>,
}

impl Inputs {
    /// Resolves flags over an optional kubeadm config (flags win), applying kubeadm's defaults.
    /// Reads the config file named by `args.config`, if any.
    pub fn from_args(args: &InputArgs) -> Result<Inputs> {
        let cfg = load_config(args.config.as_deref())?;
        Inputs::resolve_naming_config(args, &cfg)
    }

    /// Inputs for commands that only need entry names and paths (`certs check-expiration`): a
    /// missing advertise address or node name gets a placeholder, since they only shape SANs
    /// and URLs, so the command runs on a tree without its cluster config.
    pub fn names_only(args: &InputArgs) -> Result<Inputs> {
        let cfg = load_config(args.config.as_deref())?;
        Inputs::names_only_with(args, &cfg)
    }

    /// [`Inputs::names_only`] with an already parsed config.
    pub fn names_only_with(args: &InputArgs, cfg: &KubeadmConfig) -> Result<Inputs> {
        let mut args = args.clone();
        let unset_cfg = cfg
            .advertise_address
            .as_deref()
            .is_none_or(|a| a.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified()));
        if args.advertise_address.is_none_or(|ip| ip.is_unspecified()) && unset_cfg {
            args.advertise_address = Some(IpAddr::from([192, 0, 2, 1]));
        }
        if args.node_name.is_none()
            && cfg.node_name.is_none()
            && (args.root.is_some() || hostname().is_none())
        {
            args.node_name = Some("node".into());
        }
        Inputs::resolve_naming_config(&args, cfg)
    }

    /// [`Inputs::resolve`], with errors in config fields also naming the config file and line.
    fn resolve_naming_config(args: &InputArgs, cfg: &KubeadmConfig) -> Result<Inputs> {
        Inputs::resolve(args, cfg).map_err(|e| name_config(e, args, cfg))
    }

    /// Like [`Inputs::from_args`] with an already parsed config; detection reads this host.
    #[doc(hidden)]
    pub fn resolve(args: &InputArgs, cfg: &KubeadmConfig) -> Result<Inputs> {
        Inputs::resolve_with(args, cfg, &NetState::system)
    }

    /// Like [`Inputs::resolve`], reading the network state for advertise-address detection from
    /// `net` (called only when detection is needed).
    pub(crate) fn resolve_with(
        args: &InputArgs,
        cfg: &KubeadmConfig,
        net: &dyn Fn() -> std::result::Result<NetState, String>,
    ) -> Result<Inputs> {
        let cfg_file = args
            .config
            .clone()
            .unwrap_or_else(|| PathBuf::from("kubeadm config"));
        let from_cfg = |field: &str| Origin::Config {
            file: cfg_file.clone(),
            field: field.to_string(),
            line: cfg.line(field),
        };
        let mut origins: BTreeMap<String, Origin> = BTreeMap::new();
        let mut warnings: Vec<String> = cfg.warnings.clone();

        // The target kubeadm, then the config's validation for it.
        let (mut target, w) = version::choose(
            cfg.kubernetes_version.as_deref(),
            args.kubeadm_version.as_deref(),
        )
        .map_err(|(flag, m)| {
            if flag {
                Error::input("--kubeadm-version", m)
            } else {
                Error::input("kubernetesVersion", m)
            }
        })?;
        warnings.extend(w);
        warnings.extend(
            config::validate::check(cfg, &mut target).map_err(|message| Error::Config {
                path: cfg_file.clone(),
                message,
            })?,
        );
        origins.insert(
            "target".into(),
            match (&args.kubeadm_version, &cfg.kubernetes_version) {
                (Some(_), _) => Origin::flag("--kubeadm-version"),
                (None, Some(_)) => from_cfg("kubernetesVersion"),
                (None, None) => Origin::Default,
            },
        );

        // Paths given on the command line are this host's; defaults and paths read from a file
        // are the node's, taken under --root.
        let root = root::Root::new(args.root.clone());
        let (cert_dir, o) = match (&args.cert_dir, &cfg.certificates_dir) {
            (Some(d), _) => (d.clone(), Origin::flag("--cert-dir")),
            (None, Some(d)) => (root.map(Path::new(d)), from_cfg("certificatesDir")),
            (None, None) => (root.map(Path::new("/etc/kubernetes/pki")), Origin::Default),
        };
        origins.insert("cert_dir".into(), o);
        // kubeadm writes kubeconfigs to /etc/kubernetes whatever certificatesDir says; kpki's
        // --cert-dir/--out puts them beside the cert dir (its parent), as it always has.
        let (kubeconfig_dir, o) = match (&args.kubeconfig_dir, &args.cert_dir) {
            (Some(d), _) => (d.clone(), Origin::flag("--kubeconfig-dir")),
            (None, Some(c)) => (
                match c.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                    _ => PathBuf::from("."),
                },
                Origin::flag("--cert-dir"),
            ),
            (None, None) => (root.map(Path::new(DEFAULT_KUBECONFIG_DIR)), Origin::Default),
        };
        origins.insert("kubeconfig_dir".into(), o);

        let (node_name, node_field) = pick(
            &args.node_name,
            "--node-name",
            &cfg.node_name,
            "nodeRegistration.name",
        );
        let node_name = match node_name {
            Some(n) => {
                origins.insert("node_name".into(), origin_of(node_field, &from_cfg));
                n.trim().to_lowercase()
            }
            None if root.is_set() => {
                // The host's name is not the copied node's.
                return Err(Error::input(
                    "--node-name",
                    "not given, and neither the node's manifests (etcd --name) nor the tree under --root name the node",
                ));
            }
            None => {
                origins.insert("node_name".into(), Origin::Hostname);
                hostname().ok_or_else(|| {
                    Error::input(
                        "--node-name",
                        "not given and the host name could not be read",
                    )
                })?
            }
        };
        check_dns_subdomain(&node_name).map_err(|m| Error::input(node_field, m))?;

        // Advertise address: flag > config > detection. An unspecified address (0.0.0.0, ::)
        // means "detect", as in kubeadm's dynamic defaulting.
        let (given, adv_field) = match (&args.advertise_address, &cfg.advertise_address) {
            (Some(ip), _) => (Some(ip.to_canonical()), "--apiserver-advertise-address"),
            (None, Some(a)) => {
                let field = "localAPIEndpoint.advertiseAddress";
                (
                    Some(parse_ip(a).map_err(|m| Error::input(field, m))?),
                    field,
                )
            }
            (None, None) => (None, "--apiserver-advertise-address"),
        };
        let mut detected = None;
        let advertise_address = match given {
            Some(ip) if !ip.is_unspecified() => {
                origins.insert("advertise_address".into(), origin_of(adv_field, &from_cfg));
                ip
            }
            _ if root.is_set() => {
                // This host's network says nothing about a copied node.
                return Err(Error::input(
                    "--apiserver-advertise-address",
                    "not given, and neither the node's manifests (kube-apiserver --advertise-address) nor the tree under --root give it",
                ));
            }
            _ => {
                let why_detect = match given {
                    Some(ip) => format!("{adv_field} is {ip}"),
                    None => "no advertise address was given".into(),
                };
                let d = net().and_then(|s| detect::choose(&s)).map_err(|m| {
                    Error::input(
                        "--apiserver-advertise-address",
                        format!(
                            "{why_detect} and none could be detected like kubeadm does: {m}; pass --apiserver-advertise-address or set localAPIEndpoint.advertiseAddress"
                        ),
                    )
                })?;
                origins.insert(
                    "advertise_address".into(),
                    Origin::Detected {
                        interface: d.interface.clone(),
                    },
                );
                let ip = d.address.to_canonical();
                detected = Some(d);
                ip
            }
        };
        // The apiserver advertises one host: a group or broadcast address is none.
        let broadcast = matches!(advertise_address, IpAddr::V4(v4) if v4.is_broadcast());
        if advertise_address.is_multicast() || broadcast {
            return Err(Error::input(
                adv_field,
                format!("{advertise_address} is a multicast or broadcast address; give the host's own IP"),
            ));
        }

        let bind_port = match args.bind_port {
            Some(p) => {
                origins.insert("bind_port".into(), Origin::flag("--apiserver-bind-port"));
                if p == 0 {
                    return Err(Error::input("--apiserver-bind-port", "port 0 is not valid"));
                }
                p
            }
            None => match cfg.bind_port {
                Some(p) => {
                    origins.insert("bind_port".into(), from_cfg("localAPIEndpoint.bindPort"));
                    p
                }
                None => {
                    origins.insert("bind_port".into(), Origin::Default);
                    6443
                }
            },
        };
        if bind_port == 0 {
            return Err(Error::input(
                "localAPIEndpoint.bindPort",
                "port 0 is not valid",
            ));
        }

        let (cpe, cpe_field) = pick(
            &args.control_plane_endpoint,
            "--control-plane-endpoint",
            &cfg.control_plane_endpoint,
            "controlPlaneEndpoint",
        );
        let control_plane_endpoint = match cpe {
            Some(c) if !c.trim().is_empty() => {
                origins.insert(
                    "control_plane_endpoint".into(),
                    origin_of(cpe_field, &from_cfg),
                );
                Some(parse_endpoint(c.trim(), bind_port).map_err(|m| Error::input(cpe_field, m))?)
            }
            _ => None,
        };

        let service_cidrs = match (&args.service_cidrs, &cfg.service_subnet) {
            (Some(nets), _) => {
                origins.insert("service_cidrs".into(), Origin::flag("--service-cidr"));
                check_cidrs(nets).map_err(|m| Error::input("--service-cidr", m))?;
                nets.clone()
            }
            (None, Some(c)) => {
                origins.insert("service_cidrs".into(), from_cfg("networking.serviceSubnet"));
                parse_cidrs(c).map_err(|m| Error::input("networking.serviceSubnet", m))?
            }
            (None, None) => {
                origins.insert("service_cidrs".into(), Origin::Default);
                parse_cidrs("10.96.0.0/12").map_err(|m| Error::input("--service-cidr", m))?
            }
        };

        let (dom, dom_field) = pick(
            &args.service_dns_domain,
            "--service-dns-domain",
            &cfg.dns_domain,
            "networking.dnsDomain",
        );
        origins.insert(
            "dns_domain".into(),
            dom.map_or(Origin::Default, |_| origin_of(dom_field, &from_cfg)),
        );
        let dns_domain = dom.cloned().unwrap_or_else(|| "cluster.local".into());
        check_dns_subdomain(&dns_domain).map_err(|m| Error::input(dom_field, m))?;

        let (cn, cn_field) = pick(
            &args.cluster_name,
            "--cluster-name",
            &cfg.cluster_name,
            "clusterName",
        );
        origins.insert(
            "cluster_name".into(),
            cn.map_or(Origin::Default, |_| origin_of(cn_field, &from_cfg)),
        );
        let cluster_name = cn.cloned().unwrap_or_else(|| "kubernetes".into());
        if cluster_name.is_empty()
            || cluster_name
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Error::input(
                cn_field,
                format!("{cluster_name:?} is not a valid cluster name"),
            ));
        }

        // The file's certSANs first, then the flag's: a deliberate merge (kubeadm refuses the mix),
        // so no SAN of either source is lost.
        let mut apiserver_extra_sans = Vec::new();
        let mut apiserver_extra_san_origins = Vec::new();
        for (i, s) in cfg.apiserver_cert_sans.iter().enumerate() {
            let field = format!("apiServer.certSANs[{i}]");
            apiserver_extra_sans
                .push(classify_san(&s.to_lowercase()).map_err(|m| Error::input(field.clone(), m))?);
            apiserver_extra_san_origins.push(from_cfg(&field));
        }
        for s in args
            .apiserver_cert_extra_sans
            .iter()
            .flat_map(|s| s.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            apiserver_extra_sans.push(
                classify_san(&s.to_lowercase())
                    .map_err(|m| Error::input("--apiserver-cert-extra-sans", m))?,
            );
            apiserver_extra_san_origins.push(Origin::flag("--apiserver-cert-extra-sans"));
        }
        let etcd_server_extra_sans = cfg
            .etcd_server_cert_sans
            .iter()
            .map(|s| classify_san(s).map_err(|m| Error::input("etcd.local.serverCertSANs", m)))
            .collect::<Result<Vec<_>>>()?;
        let etcd_peer_extra_sans = cfg
            .etcd_peer_cert_sans
            .iter()
            .map(|s| classify_san(s).map_err(|m| Error::input("etcd.local.peerCertSANs", m)))
            .collect::<Result<Vec<_>>>()?;

        // kubeadm's EncryptionAlgorithmType(): the PublicKeysECDSA gate, when present, overrides
        // encryptionAlgorithm (v1beta4; v1beta3 has no such field).
        let (key_algorithm, o) = match (
            &args.key_algorithm,
            &cfg.encryption_algorithm,
            cfg.public_keys_ecdsa,
        ) {
            (Some(a), _, _) => (*a, Origin::flag("--encryption-algorithm")),
            (None, _, Some(b)) => (
                if b {
                    KeyAlgorithm::EcdsaP256
                } else {
                    KeyAlgorithm::Rsa2048
                },
                from_cfg("featureGates.PublicKeysECDSA"),
            ),
            (None, Some(a), None) if !a.is_empty() => (
                a.parse()
                    .map_err(|m: String| Error::input("encryptionAlgorithm", m))?,
                from_cfg("encryptionAlgorithm"),
            ),
            _ => (KeyAlgorithm::Rsa2048, Origin::Default),
        };
        origins.insert("key_algorithm".into(), o);

        let (cert_validity, o) = match (&args.cert_validity, cfg.certificate_validity_period) {
            (Some(v), _) => {
                if *v <= Duration::ZERO {
                    return Err(Error::input(
                        "--cert-validity",
                        "must be a positive duration such as 8760h",
                    ));
                }
                (*v, Origin::flag("--cert-validity"))
            }
            (None, Some(d)) => (d, from_cfg("certificateValidityPeriod")),
            (None, None) => (DEFAULT_CERT_VALIDITY, Origin::Default),
        };
        origins.insert("cert_validity".into(), o);
        let (ca_validity, o) = match (&args.ca_validity, cfg.ca_certificate_validity_period) {
            (Some(v), _) => {
                if *v <= Duration::ZERO {
                    return Err(Error::input(
                        "--ca-validity",
                        "must be a positive duration such as 8760h",
                    ));
                }
                (*v, Origin::flag("--ca-validity"))
            }
            (None, Some(d)) => (d, from_cfg("caCertificateValidityPeriod")),
            (None, None) => (DEFAULT_CA_VALIDITY, Origin::Default),
        };
        origins.insert("ca_validity".into(), o);
        if cert_validity <= Duration::ZERO {
            return Err(Error::input(
                "certificateValidityPeriod",
                "must be positive",
            ));
        }
        if ca_validity <= Duration::ZERO {
            return Err(Error::input(
                "caCertificateValidityPeriod",
                "must be positive",
            ));
        }
        warnings.extend(validity_warnings(
            cert_validity,
            &origins["cert_validity"],
            ca_validity,
            &origins["ca_validity"],
        ));

        Ok(Inputs {
            cert_dir,
            kubeconfig_dir,
            node_name,
            advertise_address,
            bind_port,
            control_plane_endpoint,
            service_cidrs,
            dns_domain,
            cluster_name,
            apiserver_extra_sans,
            apiserver_extra_san_origins,
            etcd_server_extra_sans,
            etcd_peer_extra_sans,
            local_etcd: !cfg.etcd_external,
            external_etcd: cfg.etcd_external.then(|| ExternalEtcd {
                ca_file: cfg.etcd_external_files[0].as_ref().map(PathBuf::from),
                cert_file: cfg.etcd_external_files[1].as_ref().map(PathBuf::from),
                key_file: cfg.etcd_external_files[2].as_ref().map(PathBuf::from),
            }),
            join: args.role == Role::JoiningControlPlane,
            key_algorithm,
            cert_validity,
            ca_validity,
            notes: Vec::new(),
            discovered: Vec::new(),
            target,
            origins,
            root,
            node: None,
            detected,
            warnings,
        })
    }

    /// Resolves flags over the config over the node's manifests and kubelet config (see
    /// `node`) over what the existing tree says (see `discover`), applying kubeadm's defaults
    /// last. Input conflicts with the tree's identity and disagreeing sources are kept as
    /// findings ([`Inputs::findings`]).
    pub fn discovered_from_tree(
        spec: &crate::model::spec::Spec,
        args: &InputArgs,
    ) -> Result<Inputs> {
        let cfg = load_config(args.config.as_deref())?;
        let root = root::Root::new(args.root.clone());
        // The node first: it says where the tree is.
        let node = node::load(spec, args, &cfg)?;
        let (facts, mut notes) = match &node {
            Some(n) => node::facts(spec, n),
            None => (Vec::new(), Vec::new()),
        };
        let filled_node = node::fill(&facts, &root, args, &cfg);
        notes.extend(filled_node.notes);
        let cfg = filled_node.cfg;
        // Where the tree is: the directories do not depend on anything the tree says.
        let probe = Inputs::names_only_with(&filled_node.args, &cfg)?;
        let mut found = discover::discover_in(spec, &probe.cert_dir, &probe.kubeconfig_dir, &root);
        notes.extend(node::against_tree(&mut found, &filled_node.used));
        let (filled, used, tree_notes) = discover::fill(&found, &filled_node.args, &cfg);
        notes.extend(tree_notes);
        let mut inputs = Inputs::resolve_naming_config(&filled, &cfg)?;
        for f in &filled_node.used {
            if let Some(key) = node::origin_key(f.input) {
                inputs.origins.insert(key.into(), f.origin.clone());
                if key == "kubernetes_version" && args.kubeadm_version.is_none() {
                    inputs.origins.insert("target".into(), f.origin.clone());
                }
            }
        }
        if let Some(o @ Origin::Config { .. }) = inputs.origins.get("target").cloned() {
            // kubernetesVersion of the config (the target may still be --kubeadm-version's).
            inputs
                .origins
                .entry("kubernetes_version".into())
                .or_insert(o);
        }
        for f in &used {
            if let Some(key) = node::origin_key(f.input) {
                inputs.origins.insert(
                    key.into(),
                    Origin::Tree {
                        read: f.source.clone(),
                    },
                );
            }
        }
        inputs.notes.extend(notes);
        inputs.discovered = used;
        if node.is_some() {
            node::keep_tree_sans(spec, &mut inputs, args, &cfg);
        }
        inputs.node = node.map(std::sync::Arc::new);
        Ok(inputs)
    }

    /// Findings about the inputs themselves, for the assessment.
    pub fn findings(&self) -> Vec<crate::assess::Finding> {
        self.notes.clone()
    }

    /// The API server's service IP: first address after the network of the first service CIDR.
    pub fn service_ip(&self) -> Option<IpAddr> {
        let net = self.service_cidrs.first()?;
        Some(match net.network() {
            IpAddr::V4(v) => IpAddr::V4(std::net::Ipv4Addr::from(u32::from(v).wrapping_add(1))),
            IpAddr::V6(v) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v).wrapping_add(1))),
        })
    }

    /// The local API endpoint: advertise address and bind port.
    pub fn local_endpoint(&self) -> Endpoint {
        Endpoint {
            host: self.advertise_address.to_string(),
            port: self.bind_port,
        }
    }

    /// The control-plane endpoint, or the local endpoint when none is set (kubeadm's rule).
    pub fn control_plane(&self) -> Endpoint {
        self.control_plane_endpoint
            .clone()
            .unwrap_or_else(|| self.local_endpoint())
    }

    /// The base directory of a path in the tree: cert dir for keys/certs, kubeconfig dir otherwise.
    pub fn cert_path(&self, rel: &str) -> PathBuf {
        self.cert_dir.join(rel)
    }

    /// Where an input came from (`node_name`, `advertise_address`, ...), if recorded.
    pub fn origin(&self, input: &str) -> Option<&Origin> {
        self.origins.get(input)
    }

    /// One-line notes on how the inputs were chosen (target version, a detected address), for
    /// the CLI to print before the plan.
    pub fn choices(&self) -> Vec<String> {
        let mut out = vec![format!(
            "following kubeadm {} ({})",
            self.target.kubeadm(),
            match (&self.target.reason, self.origins.get("target")) {
                (version::TargetReason::Flag, _) => "--kubeadm-version".to_string(),
                (_, Some(o @ (Origin::Config { .. } | Origin::Manifest { .. }))) => format!(
                    "kubernetesVersion {} from {o}",
                    self.target.kubernetes_version.clone().unwrap_or_default()
                ),
                _ => "no kubernetesVersion given: the newest layout kpki models".to_string(),
            }
        )];
        if let Some(d) = &self.detected {
            out.push(format!(
                "advertise address {} detected on interface {}{}",
                self.advertise_address,
                d.interface,
                if d.interface == d.route_interface {
                    " (the default-route interface)".to_string()
                } else {
                    format!(" (the default route uses {})", d.route_interface)
                }
            ));
        }
        out
    }
}

/// kubeadm's certificate-validity warnings (validation.go `ValidateCertValidity`, 1.31+, and the
/// leaf-longer-than-CA warning of 1.32+), for the effective values whatever their source.
pub(crate) fn validity_warnings(
    cert: Duration,
    cert_origin: &Origin,
    ca: Duration,
    ca_origin: &Origin,
) -> Vec<String> {
    let go = duration::format_go_duration;
    let mut out = Vec::new();
    if cert > DEFAULT_CERT_VALIDITY {
        out.push(format!(
            "certificateValidityPeriod: the value {} ({cert_origin}) is more than the recommended default for certificate expiration: {}",
            go(cert),
            go(DEFAULT_CERT_VALIDITY)
        ));
    }
    if ca > DEFAULT_CA_VALIDITY {
        out.push(format!(
            "caCertificateValidityPeriod: the value {} ({ca_origin}) is more than the recommended default for CA certificate expiration: {}",
            go(ca),
            go(DEFAULT_CA_VALIDITY)
        ));
    }
    if cert > ca {
        out.push(format!(
            "certificateValidityPeriod: the value {} is more than the caCertificateValidityPeriod {}: leaf certificates would outlive their CA",
            go(cert),
            go(ca)
        ));
    }
    out
}

/// Adds the config file (and the field's line) to an error about a config field.
fn name_config(e: Error, args: &InputArgs, cfg: &KubeadmConfig) -> Error {
    match (e, &args.config) {
        (Error::Input { field, message }, Some(path)) if !field.starts_with("--") => {
            let line = cfg.line(&field);
            Error::Config {
                path: path.clone(),
                message: if line > 0 {
                    format!("line {line}: {field}: {message}")
                } else {
                    format!("{field}: {message}")
                },
            }
        }
        (e, _) => e,
    }
}

fn origin_of(field: &str, from_cfg: &dyn Fn(&str) -> Origin) -> Origin {
    if field.starts_with("--") {
        Origin::flag(field)
    } else {
        from_cfg(field)
    }
}

fn pick<'a>(
    flag: &'a Option<String>,
    flag_name: &'static str,
    cfg: &'a Option<String>,
    cfg_name: &'static str,
) -> (Option<&'a String>, &'static str) {
    match (flag, cfg) {
        (Some(f), _) => (Some(f), flag_name),
        (None, Some(c)) => (Some(c), cfg_name),
        (None, None) => (None, flag_name),
    }
}

fn hostname() -> Option<String> {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()?;
    let h = raw.trim().to_lowercase();
    (!h.is_empty()).then_some(h)
}

/// Parses an IP address strictly and returns it in canonical form.
pub(crate) fn parse_ip(s: &str) -> std::result::Result<IpAddr, String> {
    s.trim()
        .parse::<IpAddr>()
        .map(|ip| ip.to_canonical())
        .map_err(|_| format!("{s:?} is not a valid IP address"))
}

/// Parses a TCP port (1-65535).
pub(crate) fn parse_port(s: &str) -> std::result::Result<u16, String> {
    match s.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("{s:?} is not a valid port (1-65535)")),
    }
}

/// Parses a positive Go duration (`8760h`).
pub(crate) fn parse_validity(s: &str) -> std::result::Result<Duration, String> {
    let d = crate::inputs::duration::parse_go_duration(s)?;
    if d <= Duration::ZERO {
        return Err(format!("{s:?} must be a positive duration such as 8760h"));
    }
    Ok(d)
}

/// Parses `host[:port]` (IPv6 as `[addr]:port`); the port defaults to `default_port`.
pub(crate) fn parse_endpoint(s: &str, default_port: u16) -> std::result::Result<Endpoint, String> {
    let bad = |why: &str| format!("{s:?} is not a valid host[:port]: {why}");
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let close = rest.find(']').ok_or_else(|| bad("missing ']'"))?;
        let host = &rest[..close];
        let after = &rest[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => parse_port(p).map_err(|m| bad(&m))?,
            None if after.is_empty() => default_port,
            None => return Err(bad("unexpected text after ']'")),
        };
        (host.to_string(), port)
    } else if s.matches(':').count() > 1 {
        (s.to_string(), default_port) // bare IPv6
    } else if let Some((h, p)) = s.split_once(':') {
        (h.to_string(), parse_port(p).map_err(|m| bad(&m))?)
    } else {
        (s.to_string(), default_port)
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Endpoint {
            host: ip.to_canonical().to_string(),
            port,
        });
    }
    check_dns_subdomain(&host).map_err(|m| bad(&m))?;
    Ok(Endpoint { host, port })
}

/// Parses a comma-separated CIDR list and checks it like kubeadm ([`check_cidrs`]).
pub(crate) fn parse_cidrs(s: &str) -> std::result::Result<Vec<IpNet>, String> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        let net: IpNet = part
            .parse()
            .map_err(|_| format!("{part:?} is not a valid CIDR (e.g. 10.96.0.0/12)"))?;
        out.push(net);
    }
    check_cidrs(&out)?;
    Ok(out)
}

/// kubeadm's service-subnet rules: each subnet holds at least 10 and at most 2^20 addresses
/// (ValidateIPNetFromString, ValidateServiceSubnetSize); one subnet, or two of different
/// families (dual-stack).
pub(crate) fn check_cidrs(nets: &[IpNet]) -> std::result::Result<(), String> {
    for net in nets {
        let host_bits = u32::from(net.max_prefix_len() - net.prefix_len());
        if host_bits < 4 {
            return Err(format!(
                "\"{net}\": subnet with {} address(es) is too small, the minimum is 10",
                1u32 << host_bits
            ));
        }
        if host_bits > 20 {
            return Err(format!(
                "\"{net}\": specified service subnet is too large; for {}-bit addresses, the mask must be >= {}",
                net.max_prefix_len(),
                net.max_prefix_len() - 20
            ));
        }
    }
    let list = nets
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    if nets.is_empty() {
        return Err("no CIDR given".into());
    }
    if nets.len() > 2 || (nets.len() == 2 && nets[0].addr().is_ipv4() == nets[1].addr().is_ipv4()) {
        return Err(format!(
            "{list:?}: give one CIDR, or two of different IP families (dual-stack)"
        ));
    }
    Ok(())
}

/// Checks an RFC 1123 subdomain (lower-case LDH labels, at most 253 characters).
pub(crate) fn check_dns_subdomain(s: &str) -> std::result::Result<(), String> {
    let bad = |why: &str| Err(format!("{s:?} is not a valid RFC 1123 DNS name: {why}"));
    if s.is_empty() {
        return bad("empty");
    }
    if s.len() > 253 {
        return bad("longer than 253 characters");
    }
    for label in s.split('.') {
        if label.is_empty() || label.len() > 63 {
            return bad("each label must have 1 to 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return bad("only lower-case letters, digits, '-' and '.' are allowed");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("labels must start and end with a letter or digit");
        }
    }
    Ok(())
}

/// Classifies an extra SAN the way kubeadm does (IP, RFC 1123 name or `*.` wildcard), returning
/// it in canonical form. kubeadm silently drops anything else; kpki refuses it.
pub(crate) fn classify_san(s: &str) -> std::result::Result<String, String> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(ip.to_canonical().to_string());
    }
    let name = s.strip_prefix("*.").unwrap_or(s);
    check_dns_subdomain(name)
        .map_err(|_| format!("{s:?} is not a valid IP address or RFC 1123 DNS name"))?;
    Ok(s.to_string())
}

/// Reads and parses the kubeadm config file named by `--config`, or gives an empty config.
/// Errors name the file.
pub(crate) fn load_config(path: Option<&Path>) -> Result<KubeadmConfig> {
    let Some(path) = path else {
        return Ok(KubeadmConfig::default());
    };
    let text = crate::limits::read_capped(path, crate::limits::MAX_CONFIG, true)
        .and_then(|b| b.ok_or_else(|| Error::file(path, "No such file or directory (os error 2)")))
        .and_then(|b| String::from_utf8(b).map_err(|_| Error::file(path, "is not UTF-8 text")))
        .map_err(|e| Error::Config {
            path: path.to_path_buf(),
            message: format!(
                "cannot read kubeadm config: {}",
                crate::disk::read::error_message(&e)
            ),
        })?;
    crate::inputs::config::parse(&text).map_err(|message| Error::Config {
        path: path.to_path_buf(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> InputArgs {
        InputArgs {
            node_name: Some("CP-1".into()),
            advertise_address: Some("10.0.0.10".parse().expect("ip")),
            cert_dir: Some("/tmp/x/pki".into()),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_follow_kubeadm() {
        let i = Inputs::resolve(&args(), &KubeadmConfig::default()).expect("inputs");
        assert_eq!(i.node_name, "cp-1");
        assert_eq!(i.bind_port, 6443);
        assert_eq!(i.service_ip(), Some("10.96.0.1".parse().expect("ip")));
        assert_eq!(i.dns_domain, "cluster.local");
        assert_eq!(i.kubeconfig_dir, PathBuf::from("/tmp/x"));
        assert_eq!(i.control_plane().url(), "https://10.0.0.10:6443");
        assert_eq!(i.key_algorithm, KeyAlgorithm::Rsa2048);
        assert_eq!(i.cert_validity, Duration::hours(8760));
    }

    #[test]
    fn flags_override_config_and_ipv6() {
        let cfg = KubeadmConfig {
            service_subnet: Some("fd00::/108,10.96.0.0/16".into()),
            advertise_address: Some("10.0.0.1".parse().expect("ip")),
            ..Default::default()
        };
        let mut a = args();
        a.advertise_address = Some("fd00::10".parse().expect("ip"));
        a.control_plane_endpoint = Some("[fd00::1]".into());
        let i = Inputs::resolve(&a, &cfg).expect("inputs");
        assert_eq!(i.service_ip(), Some("fd00::1".parse().expect("ip")));
        assert_eq!(i.local_endpoint().url(), "https://[fd00::10]:6443");
        assert_eq!(i.control_plane().url(), "https://[fd00::1]:6443");
    }

    #[test]
    fn bad_values_name_their_field() {
        type Edit = fn(&mut InputArgs);
        let cases: Vec<(Edit, &str)> = vec![
            (
                |a| a.advertise_address = Some("224.0.0.1".parse().expect("ip")),
                "--apiserver-advertise-address",
            ),
            (
                |a| a.service_cidrs = Some(vec!["10.96.0.0/30".parse().expect("net")]),
                "--service-cidr",
            ),
            (|a| a.bind_port = Some(0), "--apiserver-bind-port"),
            (
                |a| a.control_plane_endpoint = Some("bad_host:6443".into()),
                "--control-plane-endpoint",
            ),
            (
                |a| a.cert_validity = Some(Duration::hours(-1)),
                "--cert-validity",
            ),
            (
                |a| a.node_name = Some("no_underscores".into()),
                "--node-name",
            ),
            (
                |a| a.apiserver_cert_extra_sans = vec!["ok.example.com,not valid".into()],
                "--apiserver-cert-extra-sans",
            ),
        ];
        for (edit, field) in cases {
            let mut a = args();
            edit(&mut a);
            let e = Inputs::resolve(&a, &KubeadmConfig::default())
                .expect_err(field)
                .to_string();
            assert!(e.starts_with(field), "{e}");
        }
    }

    #[test]
    fn extra_sans_are_classified() {
        assert_eq!(classify_san("192.0.2.7").expect("ip"), "192.0.2.7");
        assert_eq!(
            classify_san("*.apps.example.com").expect("wildcard"),
            "*.apps.example.com"
        );
        assert!(classify_san("Upper.example.com").is_err());
        assert_eq!(
            parse_endpoint("k8s.example.internal", 6443)
                .expect("ep")
                .port,
            6443
        );
    }
}
