//! `kpki kubeconfig ...`: kubeconfig files outside the tree (kubeadm's `kubeadm kubeconfig`).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use kpki::kubeconfigs::{user, UserRequest};
use kpki::InputArgs;

use crate::{run_ctx, Cli, Fail};

/// The `kubeconfig` command group.
#[derive(Args)]
pub struct KubeconfigCmd {
    #[command(subcommand)]
    command: KubeconfigSub,
}

/// Subcommands of `kpki kubeconfig`.
#[derive(Subcommand)]
pub enum KubeconfigSub {
    /// Print (or write) a kubeconfig for an extra user, signed by the cluster CA.
    #[command(
        after_help = "The server is the control-plane endpoint (--control-plane-endpoint or the config's controlPlaneEndpoint), else https://<advertise address>:<bind port>; one of the two must be given, by flag or --config."
    )]
    User(Box<UserCmd>),
    /// Print (or write) the bootstrap kubeconfig a joining kubelet uses (token auth, CA embedded).
    Bootstrap(Box<crate::nodes_cmd::BootstrapCmd>),
}

/// `kpki kubeconfig user` (kubeadm's `kubeadm kubeconfig user`).
#[derive(Args)]
pub struct UserCmd {
    /// Client name: the certificate CN and the kubeconfig user.
    #[arg(long, required = true)]
    client_name: String,
    /// Group (certificate O); repeatable, comma lists accepted.
    #[arg(long, value_name = "ORG", value_delimiter = ',')]
    org: Vec<String>,
    /// Validity of the client certificate (Go duration); the config's value is not used.
    #[arg(long, value_name = "DURATION", default_value = "8760h")]
    validity_period: String,
    /// Directory with ca.crt and ca.key (default: the config's certificatesDir, else
    /// /etc/kubernetes/pki).
    #[arg(long = "cert-dir", value_name = "DIR", help_heading = crate::flags::INPUTS_HEADING)]
    cert_dir: Option<PathBuf>,
    /// kubeadm config file (server, cluster name, key algorithm, cert dir).
    #[arg(long, value_name = "FILE", help_heading = crate::flags::INPUTS_HEADING)]
    config: Option<PathBuf>,
    /// API server advertise address (server URL when no control-plane endpoint is set).
    #[arg(long, value_name = "ADDRESS", help_heading = crate::flags::INPUTS_HEADING)]
    apiserver_advertise_address: Option<String>,
    /// API server bind port (default: 6443).
    #[arg(long, value_name = "PORT", help_heading = crate::flags::INPUTS_HEADING)]
    apiserver_bind_port: Option<String>,
    /// Stable host[:port] for the control plane: the server URL.
    #[arg(long, value_name = "HOST[:PORT]", help_heading = crate::flags::INPUTS_HEADING)]
    control_plane_endpoint: Option<String>,
    /// Cluster name (default: kubernetes).
    #[arg(long, value_name = "NAME", help_heading = crate::flags::INPUTS_HEADING)]
    cluster_name: Option<String>,
    /// Client key algorithm: RSA-2048, RSA-3072, RSA-4096, ECDSA-P256 or ECDSA-P384 (default: RSA-2048).
    #[arg(long, value_name = "ALGORITHM", help_heading = crate::flags::INPUTS_HEADING)]
    encryption_algorithm: Option<String>,
    /// Write the kubeconfig to FILE (mode 0600, atomically) instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    write: crate::flags::WriteFlags,
}

impl KubeconfigCmd {
    /// The writing flags of the subcommand (both can write a file with --out).
    pub fn write_flags(&self) -> &crate::flags::WriteFlags {
        match &self.command {
            KubeconfigSub::User(u) => &u.write,
            KubeconfigSub::Bootstrap(b) => &b.write,
        }
    }
}

impl UserCmd {
    fn input_args(&self) -> Result<InputArgs, kpki::Error> {
        use crate::flags::parsed;
        use kpki::parse;
        let mut a = InputArgs::default();
        a.cert_dir = self.cert_dir.clone();
        a.config = self.config.clone();
        crate::flags::server_address(
            &mut a,
            &self.apiserver_advertise_address,
            &self.apiserver_bind_port,
        )?;
        a.control_plane_endpoint = self.control_plane_endpoint.clone();
        a.cluster_name = self.cluster_name.clone();
        a.key_algorithm = parsed(
            &self.encryption_algorithm,
            "--encryption-algorithm",
            parse::key_algorithm,
        )?;
        Ok(a)
    }
}

/// Runs `kpki kubeconfig <sub>`.
pub fn run(cli: &Cli, cmd: &KubeconfigCmd) -> Result<(), Fail> {
    match &cmd.command {
        KubeconfigSub::User(u) => run_user(cli, u),
        KubeconfigSub::Bootstrap(b) => crate::nodes_cmd::run_bootstrap(cli, b),
    }
}

fn run_user(cli: &Cli, cmd: &UserCmd) -> Result<(), Fail> {
    let run = run_ctx(cli)?;
    let validity = user::parse_validity_period(&cmd.validity_period)?;
    let kpki = crate::load_outside(cli, &cmd.input_args()?, kpki::Outside::User)?;
    if let Some(w) = user::validity_warning(validity) {
        eprintln!("WARNING: {w}");
    }
    let mut req = UserRequest::new(&cmd.client_name).validity(validity);
    for o in &cmd.org {
        req = req.group(o);
    }
    if let Some(p) = &cmd.out {
        req = req.out(p);
    }
    let issued = kpki.user_kubeconfig(&req, &run)?;
    for r in &issued.rendered {
        // kubeadm prints the YAML (which ends in a newline) with Println: one extra newline.
        outln!("{}", String::from_utf8_lossy(&r.data));
    }
    Ok(())
}
