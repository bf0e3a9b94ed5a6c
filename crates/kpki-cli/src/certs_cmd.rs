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
    /// When each certificate expires, as kubeadm certs check-expiration (dates only: `kpki
    /// verify` checks keys and signatures)
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
    /// Output format: text (kubeadm's two tables), json or yaml (kubeadm's
    /// output.kubeadm.k8s.io/v1alpha3 CertificateExpirationInfo).
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FORMAT",
        value_enum,
        default_value = "text",
        hide_possible_values = true
    )]
    output: ExpirationOutput,
    /// Also list kubelet.conf when it embeds a client certificate (kubeadm never lists it; a
    /// kubelet.conf made by init expires with the other leaves until the kubelet rotates it).
    #[arg(long)]
    with_kubelet_conf: bool,
    /// Exactly kubeadm's rows: the default now; accepted for older scripts.
    #[arg(long, hide = true, conflicts_with = "with_kubelet_conf")]
    kubeadm_rows: bool,
    #[command(flatten)]
    inputs: InputFlags,
}

impl CertsCmd {
    /// The writing flags of the subcommand, if it writes (see `Command::write_flags`).
    pub fn write_flags(
        &self,
    ) -> (
        Option<&crate::flags::WriteFlags>,
        Option<&crate::flags::JobsFlag>,
    ) {
        match &self.command {
            CertsCommand::Renew(c) => (Some(&c.write), Some(&c.jobs)),
            CertsCommand::GenerateCsr(c) => (Some(&c.write), Some(&c.jobs)),
            CertsCommand::DownloadBundle(c) => (Some(&c.write), None),
            CertsCommand::CheckExpiration(_)
            | CertsCommand::CertificateKey
            | CertsCommand::UploadBundle(_) => (None, None),
        }
    }
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
    let mut opts = expiration::Options::default();
    opts.with_kubelet_conf = cmd.with_kubelet_conf && !cmd.kubeadm_rows;
    let table = kpki.expiration(&opts, &run)?;
    match cmd.output {
        ExpirationOutput::Text => out!("{}", expiration::render_text(&table)),
        ExpirationOutput::Json => out!("{}", CertificateExpirationInfo::from(&table).to_json()?),
        ExpirationOutput::Yaml => out!("{}", CertificateExpirationInfo::from(&table).to_yaml()?),
    }
    // Where it looked, on stderr (stdout stays kubeadm's tables or the JSON/YAML document), once
    // the output is written: a command that fails still prints one `error:` line only.
    let i = &kpki.desired.inputs;
    eprintln!(
        "[check-expiration] Read certificates from {:?} and kubeconfigs from {:?}",
        i.cert_dir.display().to_string(),
        i.kubeconfig_dir.display().to_string()
    );
    let rows = table.certificates.iter().chain(&table.authorities);
    if rows.clone().count() > 0 && rows.clone().all(|r| r.missing) {
        eprintln!(
            "[check-expiration] WARNING: all {} certificates and kubeconfigs are missing: is this the right folder? \
             Pass --cert-dir DIR (kubeconfigs are read from its parent, or --kubeconfig-dir DIR). \
             The exit status stays 0, as kubeadm's.",
            rows.count()
        );
    }
    Ok(())
}
