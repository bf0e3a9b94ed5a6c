//! Flags shared by several commands.

use std::path::PathBuf;

use clap::Args;
use kpki::{parse, InputArgs};

/// The help heading of the cluster inputs (kubeadm's flag names), the same in every command.
pub const INPUTS_HEADING: &str = "Cluster inputs (kubeadm's flags)";

/// kubeadm's flags for the cluster inputs.
#[derive(Args, Clone, Default)]
#[command(next_help_heading = INPUTS_HEADING)]
pub struct InputFlags {
    /// Certificate directory (default: the config's certificatesDir, else /etc/kubernetes/pki).
    #[arg(long = "cert-dir", visible_alias = "out", value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// Kubeconfig directory (default: the parent of --cert-dir if given, else /etc/kubernetes).
    #[arg(long, value_name = "DIR")]
    pub kubeconfig_dir: Option<PathBuf>,
    /// kubeadm config file (InitConfiguration / ClusterConfiguration, v1beta3 or v1beta4).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Follow this kubeadm's layout and config rules (1.28-1.35; default: the minor of the
    /// config's kubernetesVersion, else the newest). kubeadm deploys its own minor and one older.
    #[arg(long, value_name = "VERSION")]
    pub kubeadm_version: Option<String>,
    /// Node name (default: the host name, lower-cased).
    #[arg(long, value_name = "NAME")]
    node_name: Option<String>,
    /// API server advertise address.
    #[arg(long, value_name = "ADDRESS")]
    apiserver_advertise_address: Option<String>,
    /// API server bind port (default: 6443).
    #[arg(long, value_name = "PORT")]
    apiserver_bind_port: Option<String>,
    /// Stable host[:port] for the control plane.
    #[arg(long, value_name = "HOST[:PORT]")]
    control_plane_endpoint: Option<String>,
    /// Extra API server SANs (IPs or DNS names, comma-separated; repeatable); added to the
    /// config file's apiServer.certSANs.
    #[arg(long, value_name = "SANS")]
    apiserver_cert_extra_sans: Vec<String>,
    /// Service CIDR(s) (default: 10.96.0.0/12).
    #[arg(long, value_name = "CIDR")]
    service_cidr: Option<String>,
    /// Service DNS domain (default: cluster.local).
    #[arg(long, value_name = "DOMAIN")]
    service_dns_domain: Option<String>,
    /// Cluster name (default: kubernetes).
    #[arg(long, value_name = "NAME")]
    cluster_name: Option<String>,
    /// Key algorithm: RSA-2048, RSA-3072, RSA-4096, ECDSA-P256 or ECDSA-P384 (default: RSA-2048).
    #[arg(long, value_name = "ALGORITHM")]
    encryption_algorithm: Option<String>,
    /// Leaf validity as a Go duration (default: 8760h).
    #[arg(long, value_name = "DURATION")]
    cert_validity: Option<String>,
    /// CA validity as a Go duration (default: 87600h).
    #[arg(long, value_name = "DURATION")]
    ca_validity: Option<String>,
    /// A control-plane node joining an existing cluster (kubeadm join --control-plane): no
    /// super-admin.conf or kubelet.conf, and the CAs and sa keys must already be there (kpki certs
    /// download-bundle).
    #[arg(long)]
    join: bool,
    /// Read the node under DIR (a copy of a control-plane node's file system): every default path
    /// and every absolute path read from a file (manifests, kubelet config, kubeconfigs) is taken
    /// under DIR.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// The node's static Pod manifests, read for inputs and checked for wiring (default
    /// /etc/kubernetes/manifests, used when they name the cert dir being checked).
    #[arg(long, value_name = "DIR")]
    manifests_dir: Option<PathBuf>,
    /// The node's kubelet configuration (default /var/lib/kubelet/config.yaml).
    #[arg(long, value_name = "FILE")]
    kubelet_config: Option<PathBuf>,
}

/// Flags of the commands that write into a directory: how long to wait for another kpki
/// process, and whether to accept a directory others can write to. Read-only commands do not
/// take them.
#[derive(Args, Clone, Default)]
#[command(next_help_heading = "Writing")]
pub struct WriteFlags {
    /// How long to wait for another kpki process writing the same directory, as a Go duration
    /// (default: 10s).
    #[arg(long, value_name = "DURATION")]
    pub lock_timeout: Option<String>,
    /// Write even into directories that group or others can write to.
    #[arg(long)]
    pub allow_insecure_dir: bool,
}

/// `--jobs`, for the commands that generate keys in bulk.
#[derive(Args, Clone, Default)]
#[command(next_help_heading = "Writing")]
pub struct JobsFlag {
    /// Key-generation threads (default: one per core; at most 4 per core).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
}

impl InputFlags {
    /// The flag layer: every flag's text parsed into the library's typed inputs, an error naming
    /// the flag.
    pub fn args(&self) -> Result<InputArgs, kpki::Error> {
        let mut a = InputArgs::default();
        a.cert_dir = self.cert_dir.clone();
        a.kubeconfig_dir = self.kubeconfig_dir.clone();
        a.config = self.config.clone();
        a.kubeadm_version = self.kubeadm_version.clone();
        a.node_name = self.node_name.clone();
        server_address(
            &mut a,
            &self.apiserver_advertise_address,
            &self.apiserver_bind_port,
        )?;
        a.control_plane_endpoint = self.control_plane_endpoint.clone();
        a.apiserver_cert_extra_sans = self.apiserver_cert_extra_sans.clone();
        a.service_cidrs = parsed(&self.service_cidr, "--service-cidr", parse::cidrs)?;
        a.service_dns_domain = self.service_dns_domain.clone();
        a.cluster_name = self.cluster_name.clone();
        a.key_algorithm = parsed(
            &self.encryption_algorithm,
            "--encryption-algorithm",
            parse::key_algorithm,
        )?;
        a.cert_validity = parsed(&self.cert_validity, "--cert-validity", parse::validity)?;
        a.ca_validity = parsed(&self.ca_validity, "--ca-validity", parse::validity)?;
        a.root = self.root.clone();
        a.manifests_dir = self.manifests_dir.clone();
        a.kubelet_config = self.kubelet_config.clone();
        if self.join {
            a.role = kpki::Role::JoiningControlPlane;
        }
        Ok(a)
    }
}

/// `--apiserver-advertise-address` and `--apiserver-bind-port`, which every command that needs
/// the API server's URL takes.
pub fn server_address(
    a: &mut InputArgs,
    address: &Option<String>,
    port: &Option<String>,
) -> Result<(), kpki::Error> {
    a.advertise_address = parsed(address, "--apiserver-advertise-address", parse::ip)?;
    a.bind_port = parsed(port, "--apiserver-bind-port", parse::port)?;
    Ok(())
}

/// Parses an optional flag's text with `parse`, naming `flag` in the error.
pub fn parsed<T>(
    text: &Option<String>,
    flag: &str,
    parse: fn(&str) -> Result<T, parse::ParseError>,
) -> Result<Option<T>, kpki::Error> {
    text.as_deref()
        .map(|t| parse(t).map_err(|e| e.at(flag)))
        .transpose()
}
