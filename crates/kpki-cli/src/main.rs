//! `kpki`: the command-line shell over the kpki library. Parses arguments, calls the library,
//! prints. Exit codes: 0 success, 1 problems found (verify), 2 could not run (bad input).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use kpki::inputs::InputArgs;
use kpki::plan::{Action, Options};
use kpki::{Kpki, Run};

#[derive(Parser)]
#[command(
    name = "kpki",
    version,
    about = "Build, check and maintain a kubeadm-compatible Kubernetes PKI from one declarative table"
)]
struct Cli {
    /// Certificate spec (TOML); default: the embedded certs-spec.toml.
    #[arg(long, global = true, value_name = "FILE")]
    spec: Option<PathBuf>,
    /// Pretend the current time is this RFC 3339 instant (tests, audits of old trees).
    #[arg(long, global = true, hide = true, value_name = "RFC3339")]
    now: Option<String>,
    /// Key-generation threads (default: one per core).
    #[arg(long, global = true, value_name = "N", default_value_t = 0)]
    jobs: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the whole PKI tree (CAs, leaves, sa key pair, kubeconfigs), keeping what is right.
    Init(Box<InitCmd>),
    /// Print the embedded default spec.
    Spec,
}

/// kubeadm's flags for the cluster inputs.
#[derive(Args, Clone, Default)]
struct InputFlags {
    /// Certificate directory.
    #[arg(long = "cert-dir", visible_alias = "out", value_name = "DIR")]
    cert_dir: Option<PathBuf>,
    /// Kubeconfig directory (default: the parent of the cert dir).
    #[arg(long, value_name = "DIR")]
    kubeconfig_dir: Option<PathBuf>,
    /// kubeadm config file (InitConfiguration / ClusterConfiguration, v1beta3 or v1beta4).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Node name (default: the host name, lower-cased).
    #[arg(long)]
    node_name: Option<String>,
    /// API server advertise address.
    #[arg(long)]
    apiserver_advertise_address: Option<String>,
    /// API server bind port (default 6443).
    #[arg(long)]
    apiserver_bind_port: Option<String>,
    /// Stable host[:port] for the control plane.
    #[arg(long)]
    control_plane_endpoint: Option<String>,
    /// Extra API server SANs (IPs or DNS names, comma-separated; repeatable).
    #[arg(long)]
    apiserver_cert_extra_sans: Vec<String>,
    /// Service CIDR(s) (default 10.96.0.0/12).
    #[arg(long)]
    service_cidr: Option<String>,
    /// Service DNS domain (default cluster.local).
    #[arg(long)]
    service_dns_domain: Option<String>,
    /// Cluster name (default kubernetes).
    #[arg(long)]
    cluster_name: Option<String>,
    /// RSA-2048 (default), RSA-3072, RSA-4096, ECDSA-P256 or ECDSA-P384.
    #[arg(long)]
    encryption_algorithm: Option<String>,
    /// Leaf validity as a Go duration (default 8760h).
    #[arg(long)]
    cert_validity: Option<String>,
    /// CA validity as a Go duration (default 87600h).
    #[arg(long)]
    ca_validity: Option<String>,
}

impl InputFlags {
    fn args(&self) -> InputArgs {
        InputArgs {
            cert_dir: self.cert_dir.clone(),
            kubeconfig_dir: self.kubeconfig_dir.clone(),
            config: self.config.clone(),
            node_name: self.node_name.clone(),
            advertise_address: self.apiserver_advertise_address.clone(),
            bind_port: self.apiserver_bind_port.clone(),
            control_plane_endpoint: self.control_plane_endpoint.clone(),
            apiserver_cert_extra_sans: self.apiserver_cert_extra_sans.clone(),
            service_cidr: self.service_cidr.clone(),
            service_dns_domain: self.service_dns_domain.clone(),
            cluster_name: self.cluster_name.clone(),
            encryption_algorithm: self.encryption_algorithm.clone(),
            cert_validity: self.cert_validity.clone(),
            ca_validity: self.ca_validity.clone(),
        }
    }
}

#[derive(Args)]
struct InitCmd {
    #[command(flatten)]
    inputs: InputFlags,
    /// Print what would be generated or reused; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Re-issue certificates whose SANs no longer cover the inputs (CA keys are kept).
    #[arg(long)]
    regenerate_drifted: bool,
}

/// A failure that stops the command: one line on stderr and an exit code.
struct Fail(u8, String);

impl From<kpki::Error> for Fail {
    fn from(e: kpki::Error) -> Self {
        Fail(2, e.to_string())
    }
}

fn run_ctx(cli: &Cli) -> Result<Run<'static>, Fail> {
    let mut run = Run::now();
    run.jobs = cli.jobs;
    if let Some(t) = &cli.now {
        run.now = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .map_err(|e| Fail(2, format!("--now: {t:?} is not an RFC 3339 time: {e}")))?;
    }
    Ok(run)
}

fn init(cli: &Cli, cmd: &InitCmd) -> Result<(), Fail> {
    let run = run_ctx(cli)?;
    let kpki = Kpki::new(cli.spec.as_deref(), &cmd.inputs.args())?;
    let opts = Options {
        regenerate_drifted: cmd.regenerate_drifted,
        ..Default::default()
    };
    let report = kpki.init(&opts, &run, cmd.dry_run)?;
    let d = &kpki.desired;
    println!(
        "[certs] Using certificateDir folder {:?}",
        d.inputs.cert_dir.display().to_string()
    );
    for (step, entry) in report.plan.steps.iter().zip(&d.entries) {
        let prefix = if matches!(entry, kpki::resolve::Entry::Kubeconfig(_)) {
            "[kubeconfig]"
        } else {
            "[certs]"
        };
        let verb = match (step.action, cmd.dry_run) {
            (Action::Create, false) => "Generating",
            (Action::Create, true) => "Would generate",
            (Action::Regenerate, false) => "Re-issuing",
            (Action::Regenerate, true) => "Would re-issue",
            (Action::Renew, _) => "Renewing",
            (Action::Reuse, _) => "Using the existing",
            (Action::SkipExternal, _) => "Using the externally managed",
            (Action::Error, _) => "Error in",
        };
        println!("{prefix} {verb} {:?} ({})", step.entry, step.reason);
        for w in &step.warnings {
            eprintln!("WARNING: {}: {w}", step.entry);
        }
    }
    if !cmd.dry_run {
        println!("[certs] {} file(s) written", report.written.len());
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match &cli.command {
        Command::Init(cmd) => init(&cli, cmd),
        Command::Spec => {
            print!("{}", kpki::spec::DEFAULT_SPEC);
            Ok(())
        }
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail(code, msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(code)
        }
    }
}
