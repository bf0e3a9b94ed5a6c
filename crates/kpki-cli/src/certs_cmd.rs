//! `kpki certs ...`: kubeadm's `certs` command group.

use clap::{Args, Subcommand, ValueEnum};
use kpki::expiration::{self, CertificateExpirationInfo};

use crate::flags::InputFlags;
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
    /// Encrypt the CAs and sa keys into kubeadm's kubeadm-certs Secret (+ TTL token, RBAC), as YAML/JSON for kubectl apply.
    UploadBundle(Box<crate::bundle_cmd::UploadBundleCmd>),
    /// Decrypt a kubeadm-certs Secret (kubeadm's or kpki's) into the cert dir of a joining control-plane node.
    DownloadBundle(Box<crate::bundle_cmd::DownloadBundleCmd>),
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
        CertsCommand::UploadBundle(c) => crate::bundle_cmd::upload(cli, c),
        CertsCommand::DownloadBundle(c) => crate::bundle_cmd::download(cli, c),
    }
}

fn check_expiration(cli: &Cli, cmd: &CheckExpirationCmd) -> Result<(), Fail> {
    let run = run_ctx(cli)?;
    let kpki = kpki::Kpki::for_names(cli.spec.as_deref(), &cmd.inputs.args()?)?;
    let opts = expiration::Options {
        kubeadm_rows: cmd.kubeadm_rows,
    };
    let table = kpki.expiration(&opts, &run)?;
    match cmd.output {
        ExpirationOutput::Text => out!("{}", expiration::render_text(&table)),
        ExpirationOutput::Json => out!("{}", CertificateExpirationInfo::from(&table).to_json()?),
        ExpirationOutput::Yaml => out!("{}", CertificateExpirationInfo::from(&table).to_yaml()?),
    }
    Ok(())
}
