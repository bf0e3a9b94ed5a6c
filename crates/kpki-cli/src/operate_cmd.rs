//! Operating a tree: `verify -o prometheus|html` and `--textfile`, `kpki tree`,
//! `kpki completions`, `kpki man`. The work is in `kpki::operate::{metrics, picture, html}`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use kpki::operate::{html, metrics, picture};
use kpki::verify;

use crate::flags::InputFlags;
use crate::{run_ctx, Cli, Fail};

/// Everything a view of the audited tree needs.
pub struct Audit {
    /// The spec resolved against the inputs.
    pub kpki: kpki::Kpki,
    /// verify's findings.
    pub report: verify::Report,
    /// The instant.
    pub now: time::OffsetDateTime,
    /// `--warn-within`.
    pub warn_within: time::Duration,
}

/// Writes `DIR/kpki.prom` (atomically): the exit code is 0 once it is written, whatever the
/// findings, so the metrics timer only fails when it could not run.
pub fn write_textfile(dir: &Path, a: &Audit) -> Result<(), Fail> {
    metrics::write_textfile(dir, &a.kpki.metrics(&a.report, a.now))?;
    Ok(())
}

/// The Prometheus text exposition of the tree.
pub fn prometheus(a: &Audit) -> String {
    a.kpki.metrics(&a.report, a.now)
}

/// The self-contained HTML report.
pub fn html_page(a: &Audit) -> String {
    let p = a.kpki.picture(&a.report, a.now, a.warn_within, None);
    html::render(&p, &a.report)
}

/// When to colour `kpki tree`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    /// On a terminal, unless NO_COLOR is set or TERM is dumb.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// `kpki tree`.
#[derive(Args)]
pub struct TreeCmd {
    /// Certificates expiring within this Go duration are drawn as warnings.
    #[arg(long, value_name = "DURATION", default_value = "720h")]
    warn_within: String,
    /// Colour: auto (on a terminal, unless NO_COLOR is set or TERM is dumb), always or never.
    #[arg(
        long,
        value_enum,
        default_value = "auto",
        value_name = "WHEN",
        hide_possible_values = true
    )]
    color: ColorWhen,
    /// Nodes file given to `kpki nodes` (with --nodes-dir): draw the node credentials too.
    #[arg(long, value_name = "FILE", requires = "nodes_dir")]
    nodes: Option<PathBuf>,
    /// Directory `kpki nodes --out-dir` wrote the node credentials to.
    #[arg(long, value_name = "DIR", requires = "nodes")]
    nodes_dir: Option<PathBuf>,
    #[command(flatten)]
    inputs: InputFlags,
}

/// Audits the tree as `kpki verify` does (same inputs, read back from the tree where not given,
/// same findings).
pub fn audit(cli: &Cli, inputs: &InputFlags, warn_within: &str) -> Result<Audit, Fail> {
    let run = run_ctx(cli)?;
    let warn = kpki::parse::go_duration(warn_within)
        .map_err(|m| Fail(2, format!("--warn-within: {m}")))?;
    if warn.is_negative() {
        return Err(Fail(
            2,
            format!("--warn-within: {warn_within:?} must not be negative"),
        ));
    }
    let kpki = crate::load(cli, &inputs.args()?).map_err(|f| match f {
        Fail(2, m) if m.starts_with("--apiserver-advertise-address") => Fail(
            2,
            format!(
                "{m} (the tree is checked against the cluster inputs: pass --config FILE or the init flags)"
            ),
        ),
        f => f,
    })?;
    let report = kpki.verify(&verify::Options::default().warn_within(warn), &run)?;
    Ok(Audit {
        kpki,
        report,
        now: run.now,
        warn_within: warn,
    })
}

/// Runs `kpki tree`. Exit 0 once drawn (findings are part of the picture), 2 if it could not run.
pub fn tree(cli: &Cli, cmd: &TreeCmd) -> Result<(), Fail> {
    let a = audit(cli, &cmd.inputs, &cmd.warn_within)?;
    let nodes = match (&cmd.nodes, &cmd.nodes_dir) {
        (Some(file), Some(dir)) => Some(a.kpki.node_credentials(file, dir)?),
        _ => None,
    };
    let p = a.kpki.picture(&a.report, a.now, a.warn_within, nodes);
    let colour = match cmd.color {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => {
            std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::env::var("TERM").map_or(true, |t| t != "dumb")
        }
    };
    let style = if colour {
        picture::Style::Colour
    } else {
        picture::Style::Plain
    };
    out!("{}", picture::render_text(&p, style));
    Ok(())
}

/// `kpki completions`.
#[derive(Args)]
pub struct CompletionsCmd {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// Prints the completion script for a shell.
pub fn completions(cmd: &CompletionsCmd) -> Result<(), Fail> {
    let mut c = crate::command();
    let mut out = Vec::new();
    clap_complete::generate(cmd.shell, &mut c, "kpki", &mut out);
    std::io::stdout()
        .write_all(&out)
        .map_err(|e| Fail(2, format!("writing the completion script: {e}")))
}

/// `kpki man`.
#[derive(Args)]
pub struct ManCmd {
    /// Write kpki.1 and one page per subcommand (kpki-verify.1, kpki-certs-renew.1, ...) into this
    /// directory instead of printing kpki(1).
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

fn man_pages(
    cmd: &clap::Command,
    name: &str,
    out: &mut Vec<(String, Vec<u8>)>,
) -> Result<(), Fail> {
    // clap names are `&'static str` (without its "string" feature); a few page names leak once
    // in a process that exits right after.
    let page = cmd
        .clone()
        .name(&*Box::leak(name.to_string().into_boxed_str()));
    let mut buf = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut buf)
        .map_err(|e| Fail(2, format!("rendering the man page {name}: {e}")))?;
    out.push((format!("{name}.1"), buf));
    // clap's generated `help` subcommands are not worth a page.
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        man_pages(sub, &format!("{name}-{}", sub.get_name()), out)?;
    }
    Ok(())
}

/// Prints kpki(1), or writes every page into `--out-dir`.
pub fn man(cmd: &ManCmd) -> Result<(), Fail> {
    let mut c = crate::command();
    c.build();
    let mut pages = Vec::new();
    man_pages(&c, "kpki", &mut pages)?;
    match &cmd.out_dir {
        None => {
            let (_, first) = pages.swap_remove(0);
            std::io::stdout()
                .write_all(&first)
                .map_err(|e| Fail(2, format!("writing the man page: {e}")))
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| Fail(2, format!("{}: {e}", dir.display())))?;
            for (name, bytes) in pages {
                let p = dir.join(&name);
                std::fs::write(&p, bytes).map_err(|e| Fail(2, format!("{}: {e}", p.display())))?;
                outln!("{}", p.display());
            }
            Ok(())
        }
    }
}
