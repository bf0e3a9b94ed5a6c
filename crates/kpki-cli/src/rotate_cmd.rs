//! `kpki ca rotate prepare|trust|issue|finish|abort|status` (docs/rotation.md).

use clap::{Args, Subcommand};
use kpki::rotate::{Command as Phase, Options};

use crate::flags::{InputFlags, JobsFlag, WriteFlags};
use crate::{run_ctx, Cli, Fail};

/// `kpki ca`.
#[derive(Args)]
pub struct CaCmd {
    #[command(subcommand)]
    cmd: CaSub,
}

#[derive(Subcommand)]
enum CaSub {
    /// Replace the cluster, front-proxy or etcd CA, or the service-account key, in phases that
    /// every component survives: prepare, trust, issue, finish (or abort before issue).
    Rotate(RotateCmd),
}

/// `kpki ca rotate`.
#[derive(Args)]
pub struct RotateCmd {
    #[command(subcommand)]
    phase: PhaseCmd,
}

#[derive(Subcommand)]
enum PhaseCmd {
    /// Stage a new CA (or key) in <cert-dir>/rotation (0700) and archive the old one; nothing
    /// live changes.
    Prepare(PhaseArgs),
    /// Every trust point holds the old and the new CA (bundles, the old one first); the old CA
    /// keeps signing.
    Trust(PhaseArgs),
    /// The new CA signs: its key replaces the old one (once archived) and every certificate the old CA
    /// signed is re-issued under it (backups as certs renew makes).
    Issue(PhaseArgs),
    /// Trust points keep only the new CA; the rotation folder (both CA keys) moves to
    /// rotation/archive.
    Finish(PhaseArgs),
    /// Before issue: trust points go back to the old CA only; the rotation is archived.
    Abort(PhaseArgs),
    /// The phase of every CA and key pair, and what is inconsistent (exit 1 when anything is).
    Status(StatusArgs),
}

#[derive(Args)]
struct PhaseArgs {
    /// What to rotate: ca, front-proxy-ca, etcd-ca, sa or all (repeatable or comma-separated).
    /// Default: all for prepare, every rotation in progress for the other phases.
    #[arg(long = "ca", value_name = "NAME", value_delimiter = ',')]
    ca: Vec<String>,
    /// Show the plan; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Output format: text or json.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FORMAT",
        default_value = "text"
    )]
    output: String,
    #[command(flatten)]
    inputs: InputFlags,
    #[command(flatten)]
    write: WriteFlags,
    #[command(flatten)]
    jobs: JobsFlag,
}

#[derive(Args)]
struct StatusArgs {
    /// Output format: text or json.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FORMAT",
        default_value = "text"
    )]
    output: String,
    /// Print the kube-public/cluster-info ConfigMap for the current phase instead (YAML, for
    /// `kubectl apply -f -`), followed by nothing else.
    #[arg(long)]
    cluster_info: bool,
    #[command(flatten)]
    inputs: InputFlags,
}

impl CaCmd {
    /// The writing flags of the subcommand, if it writes (see `Command::write_flags`).
    pub fn write_flags(&self) -> (Option<&WriteFlags>, Option<&JobsFlag>) {
        let CaSub::Rotate(r) = &self.cmd;
        match &r.phase {
            PhaseCmd::Status(_) => (None, None),
            PhaseCmd::Prepare(a)
            | PhaseCmd::Trust(a)
            | PhaseCmd::Issue(a)
            | PhaseCmd::Finish(a)
            | PhaseCmd::Abort(a) => (Some(&a.write), Some(&a.jobs)),
        }
    }
}

/// Runs `kpki ca ...`.
pub fn run(cli: &Cli, cmd: &CaCmd) -> Result<(), Fail> {
    let CaSub::Rotate(r) = &cmd.cmd;
    let (phase, a) = match &r.phase {
        PhaseCmd::Status(s) => return status(cli, s),
        PhaseCmd::Prepare(a) => (Phase::Prepare, a),
        PhaseCmd::Trust(a) => (Phase::Trust, a),
        PhaseCmd::Issue(a) => (Phase::Issue, a),
        PhaseCmd::Finish(a) => (Phase::Finish, a),
        PhaseCmd::Abort(a) => (Phase::Abort, a),
    };
    if !matches!(a.output.as_str(), "text" | "json") {
        return Err(Fail(
            2,
            format!("--output: {:?} is not one of text, json", a.output),
        ));
    }
    let run = run_ctx(cli)?;
    let kpki = crate::load(cli, &a.inputs.args()?)?;
    let report = kpki.rotate(
        phase,
        &Options::only(a.ca.clone()),
        &run,
        crate::mode(a.dry_run),
    )?;
    crate::print_warnings(&kpki.desired.inputs);
    if a.output == "json" {
        let mut v = serde_json::to_value(&report).map_err(|e| Fail(2, e.to_string()))?;
        if let Some(o) = v.as_object_mut() {
            o.insert("apiVersion".into(), "kpki/v1alpha1".into());
            o.insert("kind".into(), "RotationReport".into());
        }
        let text = serde_json::to_string_pretty(&v).map_err(|e| Fail(2, e.to_string()))?;
        println!("{text}");
        return Ok(());
    }
    print_report(phase, &report);
    Ok(())
}

fn phase_name(p: Option<kpki::rotate::Phase>) -> &'static str {
    p.map(|p| p.name()).unwrap_or("-")
}

fn print_report(phase: Phase, r: &kpki::rotate::Report) {
    let p = &r.plan;
    if p.entries.is_empty() {
        println!("[rotate] {}: no rotation in progress", phase.name());
    }
    for e in &p.entries {
        println!(
            "[rotate] {} {}: {} -> {}: {}",
            phase.name(),
            e.entry,
            phase_name(e.from),
            phase_name(e.to),
            e.note
        );
    }
    let reissued: Vec<&kpki::plan::Step> = p
        .reissue
        .iter()
        .flat_map(|t| t.steps.iter())
        .filter(|s| {
            !matches!(
                s.action,
                kpki::plan::Action::Skip | kpki::plan::Action::Reuse
            )
        })
        .collect();
    if p.steps.is_empty() && reissued.is_empty() {
        println!("[rotate] nothing to write");
    } else {
        let w = p
            .steps
            .iter()
            .map(|s| s.path.len())
            .chain(reissued.iter().map(|s| s.path.len()))
            .max()
            .unwrap_or(4)
            .max(4);
        println!("{:<14}  {:<w$}  REASON", "STEP", "PATH");
        for s in &p.steps {
            let action = serde_json::to_value(s.action)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            println!("{action:<14}  {:<w$}  {}", s.path, s.reason);
        }
        for s in reissued {
            let action = serde_json::to_value(s.action)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            println!(
                "{:<14}  {:<w$}  {}",
                format!("re-{action}"),
                s.path,
                s.reason
            );
        }
    }
    if r.dry_run {
        println!("[rotate] dry run: nothing written");
    } else {
        for w in &r.written {
            if w.path.to_string_lossy().contains(".bak-") {
                println!("backup: {}", w.path.display());
            }
        }
        println!("[rotate] {} file(s) written", r.written.len());
    }
    if !r.guide.is_empty() {
        println!();
        for l in &r.guide {
            println!("{l}");
        }
    }
    if let Some(ci) = &r.cluster_info {
        println!();
        println!("# kube-public/cluster-info for this phase (also: kpki ca rotate status --cluster-info):");
        print!("{ci}");
    }
}

fn status(cli: &Cli, a: &StatusArgs) -> Result<(), Fail> {
    let run = run_ctx(cli)?;
    let kpki = crate::load(cli, &a.inputs.args()?)?;
    if a.cluster_info {
        print!("{}", kpki.cluster_info()?);
        return Ok(());
    }
    let st = kpki.rotation_status(&run)?;
    match a.output.as_str() {
        "json" => {
            let mut v = serde_json::to_value(&st).map_err(|e| Fail(2, e.to_string()))?;
            if let Some(o) = v.as_object_mut() {
                o.insert("apiVersion".into(), "kpki/v1alpha1".into());
                o.insert("kind".into(), "RotationStatus".into());
                o.insert("consistent".into(), st.consistent().into());
            }
            let text = serde_json::to_string_pretty(&v).map_err(|e| Fail(2, e.to_string()))?;
            println!("{text}");
        }
        "text" => {
            let w = st
                .entries
                .iter()
                .map(|e| e.entry.len())
                .max()
                .unwrap_or(5)
                .max(5);
            println!("{:<w$}  {:<9}  STATE", "ENTRY", "PHASE");
            for e in &st.entries {
                let ph = if e.rotating {
                    phase_name(e.phase).to_string()
                } else {
                    "-".into()
                };
                println!("{:<w$}  {ph:<9}  {}; next: {}", e.entry, e.summary, e.next);
                for f in &e.findings {
                    println!(
                        "{:<w$}  {:<9}  {} {}: {}: {}{}",
                        "",
                        "",
                        f.severity.as_str(),
                        f.code,
                        f.path,
                        f.message,
                        if f.fix.is_empty() {
                            String::new()
                        } else {
                            format!("; {}", f.fix)
                        }
                    );
                }
            }
            for arc in &st.archives {
                println!("archived: {arc}");
            }
        }
        other => {
            return Err(Fail(
                2,
                format!("--output: {other:?} is not one of text, json"),
            ))
        }
    }
    crate::print_warnings(&kpki.desired.inputs);
    if st.consistent() {
        Ok(())
    } else {
        Err(Fail(1, String::new()))
    }
}
