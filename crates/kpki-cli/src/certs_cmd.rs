//! `kpki certs ...`: kubeadm's `certs` command group.

use clap::{Args, Subcommand, ValueEnum};
use kpki::expiration::{self, CertificateExpirationInfo};
use kpki::inputs::{InputArgs, Inputs};

use crate::flags::InputFlags;
use crate::verify_cmd::load_spec;
use crate::{run_ctx, Cli, Fail};

#[derive(Args)]
pub struct CertsCmd {
    #[command(subcommand)]
    command: CertsCommand,
}

/// The `certs` subcommands.
#[derive(Subcommand)]
pub enum CertsCommand {
    /// When each certificate expires (kubeadm certs check-expiration).
    CheckExpiration(Box<CheckExpirationCmd>),
    /// Renew leaves and kubeconfig client certs (new key, serial, validity); CAs are never renewed.
    Renew(Box<crate::lifecycle_cmd::RenewCmd>),
    /// Write keys and CSRs for an external CA (kubeadm certs generate-csr).
    GenerateCsr(Box<crate::lifecycle_cmd::GenerateCsrCmd>),
    /// Print a random 32-byte key, hex-encoded (kubeadm certs certificate-key).
    CertificateKey,
}

/// Output formats of `certs check-expiration`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExpirationOutput {
    /// kubeadm's two tables.
    Text,
    /// output.kubeadm.k8s.io/v1alpha3 CertificateExpirationInfo as JSON.
    Json,
    /// output.kubeadm.k8s.io/v1alpha3 CertificateExpirationInfo as YAML.
    Yaml,
}

#[derive(Args)]
pub struct CheckExpirationCmd {
    #[command(flatten)]
    inputs: InputFlags,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: ExpirationOutput,
    /// Exactly kubeadm's rows: never list kubelet.conf.
    #[arg(long)]
    kubeadm_rows: bool,
}

/// Runs a `certs` subcommand.
pub fn run(cli: &Cli, cmd: &CertsCmd) -> Result<(), Fail> {
    match &cmd.command {
        CertsCommand::CheckExpiration(c) => check_expiration(cli, c),
        CertsCommand::Renew(c) => crate::lifecycle_cmd::renew(cli, c),
        CertsCommand::GenerateCsr(c) => crate::lifecycle_cmd::generate_csr(cli, c),
        CertsCommand::CertificateKey => crate::lifecycle_cmd::certificate_key(cli),
    }
}

/// Placeholder values for inputs that only shape SANs and URLs: check-expiration needs names and
/// paths only, so it runs on a tree without its cluster config.
const PLACEHOLDERS: &[(&str, &str)] = &[
    ("--apiserver-advertise-address", "192.0.2.1"),
    ("--node-name", "node"),
];

fn names_only_inputs(mut args: InputArgs) -> Result<Inputs, Fail> {
    for _ in 0..=PLACEHOLDERS.len() {
        match Inputs::from_args(&args) {
            Ok(i) => return Ok(i),
            Err(kpki::Error::Input { field, message }) => {
                match PLACEHOLDERS.iter().find(|(f, _)| *f == field) {
                    Some((f, v))
                        if *f == "--apiserver-advertise-address"
                            && args.advertise_address.is_none() =>
                    {
                        args.advertise_address = Some(v.to_string())
                    }
                    Some((f, v)) if *f == "--node-name" && args.node_name.is_none() => {
                        args.node_name = Some(v.to_string())
                    }
                    _ => return Err(Fail(2, format!("{field}: {message}"))),
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Inputs::from_args(&args).map_err(Fail::from)
}

fn check_expiration(cli: &Cli, cmd: &CheckExpirationCmd) -> Result<(), Fail> {
    let run = run_ctx(cli)?;
    let spec = load_spec(cli)?;
    let inputs = names_only_inputs(cmd.inputs.args())?;
    let desired = kpki::resolve::resolve(&spec, &inputs)?;
    let disk = kpki::disk::observe(&desired);
    let opts = expiration::Options {
        kubeadm_rows: cmd.kubeadm_rows,
    };
    let table = expiration::expiration(&desired, &disk, run.now, &opts)?;
    match cmd.output {
        ExpirationOutput::Text => print!("{}", expiration::render_text(&table)),
        ExpirationOutput::Json => print!("{}", CertificateExpirationInfo::from(&table).to_json()?),
        ExpirationOutput::Yaml => print!("{}", CertificateExpirationInfo::from(&table).to_yaml()?),
    }
    Ok(())
}
