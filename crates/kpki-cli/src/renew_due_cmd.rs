//! `kpki certs renew NAMES|all --if-expiring-within 30d [--exec-after CMD]`: renew only what is
//! due, for timers. Exit codes (docs/operations.md): 0 nothing due, 3 renewed, 4 a CA is due
//! (not renewed: rotation), 5 a due or named certificate cannot be renewed here, 2 error.

use kpki::operate::renew_due::{self, Outcome, Status};
use kpki::verify::Code;

use crate::{run_ctx, Cli, Fail};

fn date(t: time::OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Runs the renew-if-due form of `certs renew`.
pub fn run(cli: &Cli, cmd: &crate::lifecycle_cmd::RenewCmd, window: &str) -> Result<(), Fail> {
    let run = run_ctx(cli)?;
    let within = renew_due::parse_window(window)
        .map_err(|m| Fail(2, format!("--if-expiring-within: {m}")))?;
    let kpki = crate::load(cli, &cmd.inputs.args()?)?;
    let r = renew_due::renew_if_due(
        &kpki,
        &cmd.names,
        within,
        crate::sans(cmd.keep_sans),
        &run,
        crate::mode(cmd.dry_run),
    )?;
    let w = r
        .selection
        .candidates
        .iter()
        .map(|c| c.entry.len())
        .max()
        .unwrap_or(5)
        .max(5);
    outln!("{:<w$}  {:<25}  {:<14}  STATUS", "ENTRY", "EXPIRES", "LEFT");
    for c in &r.selection.candidates {
        let (expires, left) = match c.not_after {
            Some(t) => (
                date(t),
                if t <= run.now {
                    "expired".to_string()
                } else {
                    kpki::expiration::human_duration((t - run.now).whole_seconds())
                },
            ),
            None => ("-".into(), "-".into()),
        };
        let status = match &c.status {
            Status::Due if r.renewed.contains(&c.entry) && cmd.dry_run => "due: would renew".into(),
            Status::Due if r.renewed.contains(&c.entry) => "due: renewed".into(),
            Status::Due => "due: NOT renewed (see below)".into(),
            Status::NotDue => "not due".into(),
            Status::DueExternal => "due: its CA is external, have it issued again".into(),
            Status::CaDue => "CA due: not renewed, rotate it (docs/operations.md)".into(),
            Status::CaNotDue => "CA, not due".into(),
            Status::Unreadable(m) => format!("cannot tell: {m}"),
            Status::ByReference => "client certificate by reference: not renewed here".into(),
        };
        outln!("{:<w$}  {expires:<25}  {left:<14}  {status}", c.entry);
    }
    if let Some(report) = &r.report {
        for s in &report.plan.steps {
            // The old certificate's expiry is why it was renewed: not worth a warning.
            for w in s.warnings() {
                let about_old = matches!(w.code, Code::CertExpiring | Code::CertExpired);
                if r.renewed.contains(&s.entry) && !about_old {
                    eprintln!("WARNING: {}: {}: {}", s.entry, w.code, w.message);
                }
            }
        }
        for st in &report.plan.steps {
            if r.selection.due().contains(&st.entry) && !r.renewed.contains(&st.entry) {
                eprintln!("{}: not renewed: {}", st.entry, st.reason);
            }
        }
        for wr in &report.written {
            if wr.path.to_string_lossy().contains(".bak-") {
                outln!("backup: {}", wr.path.display());
            }
        }
    }
    let window_text = kpki::parse::format_go_duration(within);
    match r.outcome {
        Outcome::NothingDue => outln!("nothing expires within {window_text}: nothing renewed"),
        _ if r.renewed.is_empty() => {}
        _ => outln!(
            "{} {} certificate(s): {}",
            if cmd.dry_run {
                "would renew"
            } else {
                "renewed"
            },
            r.renewed.len(),
            r.renewed.join(", ")
        ),
    }
    if !r.selection.cas_due().is_empty() {
        eprintln!(
            "CA(s) expiring within {window_text}: {}. kpki does not renew CAs: rotate them (docs/operations.md).",
            r.selection.cas_due().join(", ")
        );
    }
    if !r.selection.not_renewable().is_empty() {
        eprintln!(
            "not renewable here: {} (see STATUS)",
            r.selection.not_renewable().join(", ")
        );
    }
    if !r.renewed.is_empty() && !cmd.dry_run {
        if let Some(exec) = &cmd.exec_after {
            outln!("running --exec-after: {exec}");
            let status = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(exec)
                .env("KPKI_RENEWED", r.renewed.join(" "))
                .status()
                .map_err(|e| Fail(2, format!("--exec-after: cannot start /bin/sh: {e}")))?;
            if !status.success() {
                return Err(Fail(
                    2,
                    format!(
                        "--exec-after: {exec:?} failed ({status}); the certificates were renewed, run it by hand"
                    ),
                ));
            }
        } else {
            outln!("You must restart the kube-apiserver, kube-controller-manager, kube-scheduler and etcd, so that they can use the new certificates.");
        }
    }
    match r.outcome.exit_code() {
        0 => Ok(()),
        code => Err(Fail(code, String::new())),
    }
}
