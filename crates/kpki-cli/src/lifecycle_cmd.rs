//! `kpki plan`, `kpki certs renew`, `kpki certs generate-csr`, `kpki certs certificate-key`.

use clap::Args;
use kpki::plan::{Action, Options, PlanDocument};

use crate::flags::{InputFlags, JobsFlag, WriteFlags};
use crate::{run_ctx, Cli, Fail};

/// `kpki plan`.
#[derive(Args)]
pub struct PlanCmd {
    /// Output format: text or json (kpki/v1alpha2 Plan).
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FORMAT",
        default_value = "text"
    )]
    output: String,
    #[command(flatten)]
    inputs: InputFlags,
}

/// `kpki certs renew`.
#[derive(Args)]
pub struct RenewCmd {
    /// What to renew: a leaf (apiserver, etcd-server, ...), a kubeconfig (admin.conf, ...), or all.
    #[arg(required = true, value_name = "NAME")]
    pub(crate) names: Vec<String>,
    /// Keep the SANs of the existing certificates (kubeadm's behaviour) instead of the spec's.
    #[arg(long)]
    pub(crate) keep_sans: bool,
    /// Show what would be renewed; write nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Renew only the named certificates that expire within this window (Go duration or days,
    /// e.g. 30d). Exit 0 nothing due, 3 renewed, 4 a CA is due (never renewed: rotate it), 5 a
    /// certificate cannot be renewed here, 2 error.
    #[arg(long, value_name = "DURATION")]
    pub(crate) if_expiring_within: Option<String>,
    /// With --if-expiring-within: run this shell command after renewing something (not when
    /// nothing was due), e.g. to restart the control-plane static Pods. $KPKI_RENEWED lists what
    /// was renewed.
    #[arg(long, value_name = "CMD", requires = "if_expiring_within")]
    pub(crate) exec_after: Option<String>,
    #[command(flatten)]
    pub(crate) inputs: InputFlags,
    #[command(flatten)]
    pub(crate) write: WriteFlags,
    #[command(flatten)]
    pub(crate) jobs: JobsFlag,
}

/// `kpki certs generate-csr`.
#[derive(Args)]
pub struct GenerateCsrCmd {
    #[command(flatten)]
    inputs: InputFlags,
    #[command(flatten)]
    pub(crate) write: WriteFlags,
    #[command(flatten)]
    pub(crate) jobs: JobsFlag,
}

fn print_steps(plan: &kpki::plan::Plan) {
    let w = plan
        .steps
        .iter()
        .map(|s| s.entry.len())
        .max()
        .unwrap_or(5)
        .max(5);
    outln!("{:<w$}  {:<13}  REASON", "ENTRY", "ACTION");
    for s in &plan.steps {
        let action = serde_json::to_value(s.action)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        outln!("{:<w$}  {:<13}  {}", s.entry, action, crate::esc(&s.reason));
        for warn in s.notes() {
            outln!(
                "{:<w$}  {:<13}  warning: {}: {}",
                "",
                "",
                warn.code,
                crate::esc(&warn.message)
            );
        }
    }
}

/// The inputs and where each came from (flag, config file line, the node's manifests, the tree,
/// default, detected), then the extra SANs one by one: the merge of the sources made visible.
fn print_inputs_table(i: &kpki::inputs::Inputs) {
    out!("{}", kpki::inputs::table::render(&i.table()));
}

/// Runs `kpki plan`: what `init --regenerate-drifted` would do, and why (plain `init` refuses
/// where this says regenerate).
pub fn plan(cli: &Cli, cmd: &PlanCmd) -> Result<(), Fail> {
    let run = run_ctx(cli)?;
    let kpki = crate::load(cli, &cmd.inputs.args()?)?;
    let opts = Options::regenerating_drifted();
    let plan = kpki.plan(&opts, &run);
    crate::print_warnings(&kpki.desired.inputs);
    crate::print_node_problems(&kpki.desired.inputs);
    match cmd.output.as_str() {
        "json" => {
            let doc = PlanDocument::with_inputs(&plan, &kpki.desired.inputs);
            let text = serde_json::to_string_pretty(&doc).map_err(|e| Fail(2, e.to_string()))?;
            outln!("{text}");
        }
        "text" => {
            print_inputs_table(&kpki.desired.inputs);
            print_steps(&plan)
        }
        other => {
            return Err(Fail(
                2,
                format!("--output: {other:?} is not one of text, json"),
            ))
        }
    }
    Ok(())
}

/// Runs `kpki certs renew`.
pub fn renew(cli: &Cli, cmd: &RenewCmd) -> Result<(), Fail> {
    if let Some(window) = &cmd.if_expiring_within {
        return crate::renew_due_cmd::run(cli, cmd, window);
    }
    let run = run_ctx(cli)?;
    let kpki = crate::load(cli, &cmd.inputs.args()?)?;
    let report = kpki.renew(
        &cmd.names,
        crate::sans(cmd.keep_sans),
        &run,
        crate::mode(cmd.dry_run),
    )?;
    crate::print_warnings(&kpki.desired.inputs);
    crate::print_node_problems(&kpki.desired.inputs);
    crate::print_node_inputs(&kpki.desired.inputs);
    for s in &report.plan.steps {
        match s.action {
            Action::Renew | Action::Regenerate => {
                let when = format!(
                    "expires {} -> {}",
                    s.expires.as_deref().unwrap_or("?"),
                    s.new_expires.as_deref().unwrap_or("?")
                );
                let why = if s.action == Action::Regenerate {
                    format!("; {}", crate::esc(&s.reason))
                } else {
                    String::new()
                };
                if cmd.dry_run {
                    outln!("would renew {}: {when}{why}", s.entry)
                } else {
                    outln!("{} renewed: {when}{why}", s.entry)
                }
            }
            Action::SkipExternal => outln!("{}", s.reason),
            Action::Skip if s.reason.starts_with("MISSING!") => outln!("{}", s.reason),
            _ => {}
        }
        for w in s.notes() {
            if s.action != Action::Skip {
                eprintln!(
                    "WARNING: {}: {}: {}",
                    s.entry,
                    w.code,
                    crate::esc(&w.message)
                );
            }
        }
    }
    for w in &report.written {
        if w.path.to_string_lossy().contains(".bak-") {
            outln!("backup: {}", w.path.display());
        }
    }
    if !cmd.dry_run {
        outln!();
        outln!("Done renewing certificates. You must restart the kube-apiserver, kube-controller-manager, kube-scheduler and etcd, so that they can use the new certificates.");
    }
    Ok(())
}

/// Runs `kpki certs generate-csr`.
pub fn generate_csr(cli: &Cli, cmd: &GenerateCsrCmd) -> Result<(), Fail> {
    let run = run_ctx(cli)?;
    let kpki = crate::load(cli, &cmd.inputs.args()?)?;
    let written = kpki.generate_csr(&run)?;
    for w in &written {
        outln!("  {}", w.path.display());
    }
    Ok(())
}

/// Runs `kpki certs certificate-key`.
pub fn certificate_key(cli: &Cli) -> Result<(), Fail> {
    let run = run_ctx(cli)?;
    outln!("{}", kpki::certificate_key(&run)?);
    Ok(())
}
