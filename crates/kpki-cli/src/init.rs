//! `kpki init`.

use clap::Args;
use kpki::plan::{Action, Options};

use crate::flags::{InputFlags, JobsFlag, WriteFlags};
use crate::{run_ctx, Cli, Fail};

#[derive(Args)]
pub struct InitCmd {
    /// Print what would be generated or reused; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Re-issue certificates whose SANs no longer cover the inputs (CA keys are kept).
    #[arg(long)]
    regenerate_drifted: bool,
    #[command(flatten)]
    inputs: InputFlags,
    #[command(flatten)]
    pub(crate) write: WriteFlags,
    #[command(flatten)]
    pub(crate) jobs: JobsFlag,
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
    let is_kubeconfig = |e: &kpki::Entry| matches!(e, kpki::Entry::Kubeconfig(_));
    let mut folder_said = false;
    for (step, entry) in report.plan.steps.iter().zip(&d.entries) {
        let prefix = if is_kubeconfig(entry) {
            // kubeadm's line, before the first kubeconfig: where they go is not the cert dir.
            if !folder_said {
                outln!(
                    "[kubeconfig] Using kubeconfig folder {:?}",
                    d.inputs.kubeconfig_dir.display().to_string()
                );
                folder_said = true;
            }
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
        let kubeconfigs: std::collections::HashSet<&str> = d
            .entries
            .iter()
            .filter(|e| is_kubeconfig(e))
            .map(|e| e.name())
            .collect();
        let in_kubeconfig_dir = report
            .written
            .iter()
            .filter(|w| kubeconfigs.contains(w.entry.as_str()))
            .count();
        outln!(
            "[certs] {} file(s) written",
            report.written.len() - in_kubeconfig_dir
        );
        if !kubeconfigs.is_empty() {
            outln!("[kubeconfig] {in_kubeconfig_dir} file(s) written");
        }
    }
    Ok(())
}
