//! `kpki init`.

use clap::Args;
use kpki::plan::{Action, Options};

use crate::flags::InputFlags;
use crate::{run_ctx, Cli, Fail};

#[derive(Args)]
pub struct InitCmd {
    #[command(flatten)]
    inputs: InputFlags,
    /// Print what would be generated or reused; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Re-issue certificates whose SANs no longer cover the inputs (CA keys are kept).
    #[arg(long)]
    regenerate_drifted: bool,
}

/// Runs `kpki init`.
pub fn run(cli: &Cli, cmd: &InitCmd) -> Result<(), Fail> {
    let run = run_ctx(cli)?;
    let kpki = crate::load(cli, &cmd.inputs.args()?)?;
    let mut opts = Options::default();
    opts.regenerate_drifted = cmd.regenerate_drifted;
    let report = kpki.init(&opts, &run, crate::mode(cmd.dry_run))?;
    let d = &kpki.desired;
    crate::print_notes(&d.inputs, false);
    crate::print_warnings(&d.inputs);
    outln!(
        "[certs] Using certificateDir folder {:?}",
        d.inputs.cert_dir.display().to_string()
    );
    for (step, entry) in report.plan.steps.iter().zip(&d.entries) {
        let prefix = if matches!(entry, kpki::Entry::Kubeconfig(_)) {
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
            (Action::Repair, false) => "Repairing the mode of",
            (Action::Repair, true) => "Would repair the mode of",
            (Action::Error, _) => "Error in",
            (Action::Skip, _) => "Leaving",
            (Action::Csr, _) => "Requesting",
        };
        outln!(
            "{prefix} {verb} {:?} ({})",
            step.entry,
            crate::esc(&step.reason)
        );
        for w in step.notes() {
            eprintln!(
                "WARNING: {}: {}: {}: {}",
                step.entry,
                w.code,
                crate::esc(&w.path),
                crate::esc(&w.message)
            );
        }
    }
    if !cmd.dry_run {
        outln!("[certs] {} file(s) written", report.written.len());
    }
    Ok(())
}
