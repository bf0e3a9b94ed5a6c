//! `kpki nodes` (bulk kubelet credentials), `kpki token generate` and
//! `kpki kubeconfig bootstrap` (the bootstrap kubeconfig `kubeadm join` uses).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kpki::kubeconfigs::token::{self, BootstrapToken};
use kpki::nodes::{open_nodes, NodeReport, NodeStatus, Progress};
use kpki::InputArgs;

use crate::{run_ctx, Cli, Fail};

/// Where the cluster is, for credentials issued outside `init` (kubeadm's flag names).
#[derive(Args, Clone, Default)]
#[command(next_help_heading = crate::flags::INPUTS_HEADING)]
pub struct ClusterFlags {
    /// Directory with ca.crt and ca.key (default: the config's certificatesDir, else
    /// /etc/kubernetes/pki).
    #[arg(long = "cert-dir", value_name = "DIR")]
    cert_dir: Option<PathBuf>,
    /// kubeadm config file (server, cluster name, key algorithm, cert dir, validity).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Stable host[:port] for the control plane: the server URL.
    #[arg(long, value_name = "HOST[:PORT]")]
    control_plane_endpoint: Option<String>,
    /// API server advertise address (server URL when no control-plane endpoint is set).
    #[arg(long, value_name = "ADDRESS")]
    apiserver_advertise_address: Option<String>,
    /// API server bind port (default: 6443).
    #[arg(long, value_name = "PORT")]
    apiserver_bind_port: Option<String>,
    /// Cluster name (default: kubernetes).
    #[arg(long, value_name = "NAME")]
    cluster_name: Option<String>,
}

impl ClusterFlags {
    fn args(&self) -> Result<InputArgs, kpki::Error> {
        let mut a = InputArgs::default();
        a.cert_dir = self.cert_dir.clone();
        a.config = self.config.clone();
        a.control_plane_endpoint = self.control_plane_endpoint.clone();
        crate::flags::server_address(
            &mut a,
            &self.apiserver_advertise_address,
            &self.apiserver_bind_port,
        )?;
        a.cluster_name = self.cluster_name.clone();
        Ok(a)
    }
}

/// `kpki nodes`: kubelet credentials for many nodes.
#[derive(Args)]
pub struct NodesCmd {
    /// Nodes file: one `name[,ip,...]` per line (`#` comments), or a YAML list of names or
    /// `{name: n, ips: [..]}`; `-` reads standard input.
    #[arg(long, value_name = "FILE", required = true)]
    nodes: PathBuf,
    /// Output directory: each node's files go where the spec's [node] section says (by default
    /// <out-dir>/<name>/kubelet.conf, kubelet.crt, kubelet.key).
    #[arg(long, value_name = "DIR", required = true)]
    out_dir: PathBuf,
    /// Also issue the kubelet serving certificate (node name and IPs as SANs, serverAuth).
    #[arg(long)]
    serving: bool,
    /// Key algorithm: RSA-2048, RSA-3072, RSA-4096, ECDSA-P256 or ECDSA-P384 (default: the config's
    /// encryptionAlgorithm, else the CA key's algorithm).
    #[arg(long, value_name = "ALGORITHM")]
    encryption_algorithm: Option<String>,
    /// Certificate validity as a Go duration (default: 8760h).
    #[arg(long, value_name = "DURATION")]
    cert_validity: Option<String>,
    #[command(flatten)]
    cluster: ClusterFlags,
    #[command(flatten)]
    pub(crate) write: crate::flags::WriteFlags,
    #[command(flatten)]
    pub(crate) jobs: crate::flags::JobsFlag,
}

/// The CLI's view of a bulk run: a progress bar on a terminal, messages in line order.
struct Reporter {
    bar: Option<ProgressBar>,
    origin: String,
}

impl Reporter {
    fn say(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.suspend(|| eprintln!("{msg}")),
            None => eprintln!("{msg}"),
        }
    }
}

impl Progress for Reporter {
    fn tick(&self) {
        if let Some(b) = &self.bar {
            b.inc(1);
        }
    }

    fn report(&self, r: &NodeReport) {
        let name = r
            .name
            .as_deref()
            .map(|n| format!("node {n}: "))
            .unwrap_or_default();
        match &r.result {
            Err(m) => self.say(&format!("error: {}:{}: {name}{m}", self.origin, r.line)),
            Ok(NodeStatus::Replaced) => {
                for why in &r.replaced {
                    self.say(&format!(
                        "note: {}:{}: {name}replaced {why}",
                        self.origin, r.line
                    ));
                }
            }
            Ok(_) => {}
        }
    }
}

/// Runs `kpki nodes`.
pub fn run_nodes(cli: &Cli, cmd: &NodesCmd) -> Result<(), Fail> {
    let started = Instant::now();
    let run = run_ctx(cli)?;
    let mut args = cmd.cluster.args()?;
    args.key_algorithm = crate::flags::parsed(
        &cmd.encryption_algorithm,
        "--encryption-algorithm",
        kpki::parse::key_algorithm,
    )?;
    args.cert_validity =
        crate::flags::parsed(&cmd.cert_validity, "--cert-validity", kpki::parse::validity)?;
    let kpki = crate::load_outside(cli, &args, kpki::Outside::Nodes)?;
    // Before the output directory is created or locked.
    kpki::checks::check_now(run.now, kpki.desired.inputs.cert_validity)?;
    let issuer = kpki.node_issuer(
        &cmd.out_dir,
        if cmd.serving {
            kpki::NodeCredentials::ClientAndServing
        } else {
            kpki::NodeCredentials::Client
        },
    )?;
    let origin = cmd.nodes.display().to_string();
    let stdin = cmd.nodes == Path::new("-");
    let bar = if std::io::stderr().is_terminal() {
        // A first pass counts the lines for the bar (streaming, nothing kept); stdin can't rewind.
        let bar = if stdin {
            ProgressBar::new_spinner()
        } else {
            ProgressBar::new(open_nodes(&cmd.nodes)?.count() as u64)
        };
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} nodes (eta {eta})",
        )
        .map_err(|e| Fail(2, format!("progress bar: {e}")))?;
        bar.set_style(style);
        bar.set_draw_target(ProgressDrawTarget::stderr());
        Some(bar)
    } else {
        None
    };
    let progress = Reporter { bar, origin };
    let mut reader = open_nodes(&cmd.nodes)?;
    let summary = issuer.issue_all(&mut reader, &run, &progress);
    if let Some(b) = &progress.bar {
        b.finish_and_clear();
    }
    let s = summary?;
    outln!(
        "kpki nodes: {} line(s): {} issued, {} replaced, {} up to date, {} failed; {} file(s) written in {:.2}s",
        s.lines,
        s.issued,
        s.replaced,
        s.up_to_date,
        s.failed.len(),
        s.files_written,
        started.elapsed().as_secs_f64()
    );
    if s.failed.is_empty() {
        Ok(())
    } else {
        Err(Fail(
            1,
            format!(
                "{} line(s) of {} failed (first: line {})",
                s.failed.len(),
                progress.origin,
                s.failed[0].line
            ),
        ))
    }
}

/// `kpki token`: bootstrap tokens.
#[derive(Args)]
pub struct TokenCmd {
    #[command(subcommand)]
    command: TokenSub,
}

/// Subcommands of `kpki token`.
#[derive(Subcommand)]
pub enum TokenSub {
    /// Print a new random bootstrap token ([a-z0-9]{6}.[a-z0-9]{16}, kubeadm's format).
    Generate,
}

/// Runs `kpki token <sub>`.
pub fn run_token(cli: &Cli, cmd: &TokenCmd) -> Result<(), Fail> {
    match cmd.command {
        TokenSub::Generate => {
            let run = run_ctx(cli)?;
            outln!("{}", token::generate(&run)?);
            Ok(())
        }
    }
}

/// `kpki kubeconfig bootstrap`: the bootstrap kubeconfig for TLS bootstrapping.
#[derive(Args)]
pub struct BootstrapCmd {
    /// Bootstrap token ([a-z0-9]{6}.[a-z0-9]{16}; `kpki token generate` makes one).
    #[arg(long, required = true)]
    token: String,
    /// Write the kubeconfig to FILE (e.g. /etc/kubernetes/bootstrap-kubelet.conf; mode 0600,
    /// atomically) instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    cluster: ClusterFlags,
    #[command(flatten)]
    pub(crate) write: crate::flags::WriteFlags,
}

/// Runs `kpki kubeconfig bootstrap`.
pub fn run_bootstrap(cli: &Cli, cmd: &BootstrapCmd) -> Result<(), Fail> {
    let run = run_ctx(cli)?;
    let token: BootstrapToken = cmd.token.parse()?;
    let kpki = crate::load_outside(cli, &cmd.cluster.args()?, kpki::Outside::Bootstrap)?;
    let issued = kpki.bootstrap_kubeconfig(&token, cmd.out.as_deref(), &run)?;
    for r in &issued.rendered {
        out!("{}", String::from_utf8_lossy(&r.data));
    }
    Ok(())
}
