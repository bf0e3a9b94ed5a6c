//! `kpki verify`: audits a whole tree against the spec and the cluster inputs.

use clap::{Args, ValueEnum};
use kpki::verify::{self, Options};

use crate::flags::InputFlags;
use crate::{run_ctx, Cli, Fail};

/// Output formats of `kpki verify`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerifyOutput {
    /// One table per severity, then a summary line.
    Text,
    /// `kpki/v1alpha2` `VerifyReport` (see docs/findings.md).
    Json,
    /// Prometheus text format, x509-certificate-exporter's series (docs/operations.md).
    Prometheus,
    /// One self-contained HTML page: hierarchy, findings, validity timeline.
    Html,
}

#[derive(Args)]
pub struct VerifyCmd {
    /// Output format: text (tables per severity and a summary), json (kpki/v1alpha1
    /// VerifyReport), prometheus (x509-certificate-exporter's series) or html (one
    /// self-contained page).
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FORMAT",
        value_enum,
        default_value = "text",
        hide_possible_values = true
    )]
    output: VerifyOutput,
    /// Certificates expiring within this Go duration are warnings.
    #[arg(long, value_name = "DURATION", default_value = "720h")]
    warn_within: String,
    /// Write the Prometheus metrics to DIR/kpki.prom (atomically) for the node-exporter textfile
    /// collector, print nothing, and exit 0 once written (findings go into the metrics).
    #[arg(long, value_name = "DIR")]
    textfile: Option<std::path::PathBuf>,
    #[command(flatten)]
    inputs: InputFlags,
}

/// Runs `kpki verify`. Exit 0: no errors; 1: errors found; 2: could not run.
pub fn run(cli: &Cli, cmd: &VerifyCmd) -> Result<(), Fail> {
    let run = run_ctx(cli)?;
    let warn_within = kpki::parse::go_duration(&cmd.warn_within)
        .map_err(|m| Fail(2, format!("--warn-within: {m}")))?;
    if warn_within.is_negative() {
        return Err(Fail(
            2,
            format!("--warn-within: {:?} must not be negative", cmd.warn_within),
        ));
    }
    let kpki = crate::load(cli, &cmd.inputs.args()?).map_err(|f| match f {
        Fail(2, m) if m.starts_with("--apiserver-advertise-address") => Fail(
            2,
            format!(
                "{m} (verify checks SANs and server URLs against the cluster inputs: pass --config FILE or the init flags)"
            ),
        ),
        f => f,
    })?;
    let report = kpki.verify(&Options::default().warn_within(warn_within), &run)?;
    let node_inputs = kpki.desired.inputs.clone();
    let audit = |report| crate::operate_cmd::Audit {
        kpki,
        report,
        now: run.now,
        warn_within,
    };
    if let Some(dir) = &cmd.textfile {
        return crate::operate_cmd::write_textfile(dir, &audit(report));
    }
    match cmd.output {
        VerifyOutput::Text => {
            crate::print_node_inputs(&node_inputs);
            out!("{}", verify::render_text(&report))
        }
        VerifyOutput::Json => out!("{}", report.to_json()?),
        VerifyOutput::Prometheus => {
            out!("{}", crate::operate_cmd::prometheus(&audit(report.clone())))
        }
        VerifyOutput::Html => out!("{}", crate::operate_cmd::html_page(&audit(report.clone()))),
    }
    if report.has_errors() {
        return Err(Fail(
            1,
            format!("verify found {} error(s)", report.summary.errors),
        ));
    }
    Ok(())
}
