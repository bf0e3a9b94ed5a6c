//! `kpki verify`: audits a whole tree against the spec and the cluster inputs.

use clap::{Args, ValueEnum};
use kpki::views::verify::{self, Options};

use crate::flags::InputFlags;
use crate::{run_ctx, Cli, Fail};

/// Output formats of `kpki verify`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerifyOutput {
    /// One table per severity, then a summary line.
    Text,
    /// `kpki/v1alpha1` `VerifyReport` (see docs/findings.md).
    Json,
}

#[derive(Args)]
pub struct VerifyCmd {
    #[command(flatten)]
    inputs: InputFlags,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: VerifyOutput,
    /// Certificates expiring within this Go duration are warnings.
    #[arg(long, value_name = "DURATION", default_value = "720h")]
    warn_within: String,
}

/// Loads the spec named by `--spec` (or the embedded one).
pub fn load_spec(cli: &Cli) -> Result<kpki::model::spec::Spec, Fail> {
    Ok(match cli.spec.as_deref() {
        Some(p) => kpki::model::spec::Spec::load(p)?,
        None => kpki::model::spec::Spec::default_spec()?,
    })
}

/// Runs `kpki verify`. Exit 0: no errors; 1: errors found; 2: could not run.
pub fn run(cli: &Cli, cmd: &VerifyCmd) -> Result<(), Fail> {
    let run = run_ctx(cli)?;
    let warn_within = kpki::inputs::duration::parse_go_duration(&cmd.warn_within)
        .map_err(|m| Fail(2, format!("--warn-within: {m}")))?;
    if warn_within.is_negative() {
        return Err(Fail(
            2,
            format!("--warn-within: {:?} must not be negative", cmd.warn_within),
        ));
    }
    let spec = load_spec(cli)?;
    let inputs = kpki::inputs::Inputs::from_args(&cmd.inputs.args()).map_err(|e| match e {
        kpki::Error::Input { ref field, .. } if field == "--apiserver-advertise-address" => Fail(
            2,
            format!(
                "{e} (verify checks SANs and server URLs against the cluster inputs: pass --config FILE or the init flags)"
            ),
        ),
        e => e.into(),
    })?;
    let desired = kpki::model::resolve::resolve(&spec, &inputs)?;
    verify::check_dirs(&desired)?;
    crate::print_warnings(&inputs);
    let disk = kpki::disk::observe(&desired);
    let report = verify::verify(
        &desired,
        &disk,
        run.now,
        &Options::default().warn_within(warn_within),
    );
    match cmd.output {
        VerifyOutput::Text => print!("{}", verify::render_text(&report)),
        VerifyOutput::Json => print!("{}", report.to_json()?),
    }
    if report.has_errors() {
        return Err(Fail(
            1,
            format!("verify found {} error(s)", report.summary.errors),
        ));
    }
    Ok(())
}
