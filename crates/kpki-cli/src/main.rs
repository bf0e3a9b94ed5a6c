//! `kpki`: the command-line shell over the kpki library. Parses arguments, calls the library,
//! prints. Exit codes: 0 success, 1 problems found (verify), 2 could not run (bad input).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kpki::Run;

mod flags;
mod init;
mod kubeconfig_cmd;
mod lifecycle_cmd;

#[derive(Parser)]
#[command(
    name = "kpki",
    version,
    about = "Build, check and maintain a kubeadm-compatible Kubernetes PKI from one declarative table"
)]
/// Command-line arguments.
pub struct Cli {
    /// Certificate spec (TOML); default: the embedded certs-spec.toml.
    #[arg(long, global = true, value_name = "FILE")]
    pub spec: Option<PathBuf>,
    /// Pretend the current time is this RFC 3339 instant (tests, audits of old trees).
    #[arg(long, global = true, hide = true, value_name = "RFC3339")]
    pub now: Option<String>,
    /// Key-generation threads (default: one per core).
    #[arg(long, global = true, value_name = "N", default_value_t = 0)]
    pub jobs: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the whole PKI tree (CAs, leaves, sa key pair, kubeconfigs), keeping what is right.
    Init(Box<init::InitCmd>),
    /// Kubeconfigs for extra users (kubeadm kubeconfig).
    Kubeconfig(kubeconfig_cmd::KubeconfigCmd),
    /// Show what init/renew would do for each entry, and why (no writes).
    Plan(Box<lifecycle_cmd::PlanCmd>),
    /// Print the embedded default spec.
    Spec,
}

/// A failure that stops the command: one line on stderr and an exit code.
pub struct Fail(pub u8, pub String);

impl From<kpki::Error> for Fail {
    fn from(e: kpki::Error) -> Self {
        Fail(2, e.to_string())
    }
}

/// The clock, randomness and parallelism for this invocation.
pub fn run_ctx(cli: &Cli) -> Result<Run<'static>, Fail> {
    let mut run = Run::now();
    run.jobs = cli.jobs;
    if let Some(t) = &cli.now {
        run.now = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .map_err(|e| Fail(2, format!("--now: {t:?} is not an RFC 3339 time: {e}")))?;
    }
    Ok(run)
}

fn main() -> ExitCode {
    // `kpki ... | head` closes the pipe early; `println!` then panics. Exit like a Unix filter.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info.to_string();
        if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default_hook(info);
    }));
    let cli = Cli::parse();
    let res = match &cli.command {
        Command::Init(cmd) => init::run(&cli, cmd),
        Command::Kubeconfig(cmd) => kubeconfig_cmd::run(&cli, cmd),
        Command::Plan(cmd) => lifecycle_cmd::plan(&cli, cmd),
        Command::Spec => {
            print!("{}", kpki::spec::DEFAULT_SPEC);
            Ok(())
        }
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail(code, msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(code)
        }
    }
}
