//! `kpki`: the command-line shell over the kpki library. Parses arguments, calls the library,
//! prints. Exit codes: 0 success, 1 problems found (verify), 2 could not run (bad input).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kpki::Run;

/// Writes a line to standard output (see [`write_stdout`]).
macro_rules! outln {
    () => {
        $crate::write_stdout("\n")
    };
    ($($t:tt)*) => {
        $crate::write_stdout(&format!("{}\n", format_args!($($t)*)))
    };
}

/// Writes to standard output (see [`write_stdout`]).
macro_rules! out {
    ($($t:tt)*) => {
        $crate::write_stdout(&format!($($t)*))
    };
}

mod bundle_cmd;
mod certs_cmd;
mod flags;
mod init;
mod kubeconfig_cmd;
mod lifecycle_cmd;
mod nodes_cmd;
mod operate_cmd;
mod renew_due_cmd;
mod rotate_cmd;
mod verify_cmd;

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
    /// Key-generation threads (default: one per core; at most 4 per core).
    #[arg(long, global = true, value_name = "N", default_value_t = 0)]
    pub jobs: usize,
    /// How long to wait for another kpki process working on the same directory (Go duration).
    #[arg(long, global = true, value_name = "DURATION", default_value = "10s")]
    pub lock_timeout: String,
    /// Write even into directories that group or others can write to.
    #[arg(long, global = true)]
    pub allow_insecure_dir: bool,
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
    /// Kubelet credentials (client kubeconfig, optional serving cert) for many nodes at once.
    Nodes(Box<nodes_cmd::NodesCmd>),
    /// Bootstrap tokens (kubeadm's format).
    Token(nodes_cmd::TokenCmd),
    /// Audit the whole tree against the spec and the inputs (findings; exit 1 on errors).
    Verify(Box<verify_cmd::VerifyCmd>),
    /// Certificate commands (kubeadm certs): check-expiration, renew, generate-csr, certificate-key, upload-bundle, download-bundle.
    Certs(certs_cmd::CertsCmd),
    /// CA commands: rotate the cluster, front-proxy and etcd CAs and the service-account key.
    Ca(Box<rotate_cmd::CaCmd>),
    /// Print the embedded default spec.
    Spec,
    /// Draw the hierarchy (CA -> leaves -> kubeconfigs -> node credentials) with each
    /// certificate's remaining life and verify's findings.
    Tree(Box<operate_cmd::TreeCmd>),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(operate_cmd::CompletionsCmd),
    /// Print the kpki(1) man page (or write every page with --out-dir).
    Man(operate_cmd::ManCmd),
}

/// A failure that stops the command: one line on stderr and an exit code.
pub struct Fail(pub u8, pub String);

impl From<kpki::Error> for Fail {
    fn from(e: kpki::Error) -> Self {
        Fail(2, e.to_string())
    }
}

/// Prints the warnings the library returned about the inputs (kubeadm's validity warnings,
/// ignored fields, deprecated settings), on stderr. Called once the command has succeeded, so a
/// failing command still prints exactly one `error:` line.
pub fn print_warnings(inputs: &kpki::inputs::Inputs) {
    for w in &inputs.warnings {
        eprintln!("WARNING: {}", esc(w));
    }
}

/// Prints what could not be used on the node (a manifest that does not parse, a second manifest
/// for a component) on stderr: `verify` reports them as findings, the other commands warn.
pub fn print_node_problems(inputs: &kpki::inputs::Inputs) {
    if let Some(n) = &inputs.node {
        for p in &n.problems {
            eprintln!("WARNING: {}: {}: {}", esc(&p.path), p.code, esc(&p.message));
        }
    }
}

/// Prints the inputs table (`INPUT VALUE FROM`) when the inputs came from a node, so that the
/// node name, addresses and version a command works with, and their sources, are on screen.
pub fn print_node_inputs(inputs: &kpki::inputs::Inputs) {
    if inputs.from_node() {
        out!("{}", kpki::inputs::table::render(&inputs.table()));
    }
}

/// Prints how the inputs were chosen (target kubeadm, a detected address) as `[inputs]` lines.
pub fn print_notes(inputs: &kpki::inputs::Inputs, to_stderr: bool) {
    for n in inputs.choices() {
        if to_stderr {
            eprintln!("[inputs] {n}");
        } else {
            outln!("[inputs] {n}");
        }
    }
}

/// Writes to standard output. A closed pipe ends kpki like a Unix filter (exit 141, silently);
/// any other failure (a full disk: `kpki spec > /dev/full`) is one `error:` line and exit 2,
/// never a panic. Output comes after the work, so nothing is left half-done.
pub fn write_stdout(s: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(s.as_bytes()).and_then(|()| o.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        eprintln!("error: standard output: {e}");
        std::process::exit(2);
    }
}

/// A value from a file or flag, escaped for one line of output.
pub fn esc(s: &str) -> String {
    kpki::text::line(s, kpki::text::MAX_LINE)
}

/// Loads the spec and resolves the inputs, applying the global write-safety flags.
/// `--dry-run` as the library's mode.
pub fn mode(dry_run: bool) -> kpki::Mode {
    if dry_run {
        kpki::Mode::DryRun
    } else {
        kpki::Mode::Apply
    }
}

/// `--keep-sans` as the library's SAN choice.
pub fn sans(keep: bool) -> kpki::Sans {
    if keep {
        kpki::Sans::KeepExisting
    } else {
        kpki::Sans::FromInputs
    }
}

/// The spec (`--spec` or the embedded default) resolved against the flags' inputs.
pub fn load(cli: &Cli, args: &kpki::InputArgs) -> Result<kpki::Kpki, Fail> {
    let mut k = kpki::Kpki::new(cli.spec.as_deref(), args)?;
    k.lock_timeout = lock_timeout(cli)?;
    k.allow_insecure_dir = cli.allow_insecure_dir;
    Ok(k)
}

/// Like [`load`], for a command that issues credentials outside the tree.
pub fn load_outside(
    cli: &Cli,
    args: &kpki::InputArgs,
    what: kpki::Outside,
) -> Result<kpki::Kpki, Fail> {
    let mut k = kpki::Kpki::for_outside(cli.spec.as_deref(), args, what)?;
    k.lock_timeout = lock_timeout(cli)?;
    k.allow_insecure_dir = cli.allow_insecure_dir;
    Ok(k)
}

/// `--lock-timeout` as a duration.
pub fn lock_timeout(cli: &Cli) -> Result<std::time::Duration, Fail> {
    let t = kpki::parse::go_duration(&cli.lock_timeout)
        .map_err(|m| Fail(2, format!("--lock-timeout: {m}")))?;
    std::time::Duration::try_from(t).map_err(|_| {
        Fail(
            2,
            format!(
                "--lock-timeout: {:?} must not be negative",
                cli.lock_timeout
            ),
        )
    })
}

/// The clock, randomness and parallelism for this invocation.
pub fn run_ctx(cli: &Cli) -> Result<Run<'static>, Fail> {
    let mut run = Run::now();
    kpki::checks::check_jobs(cli.jobs)?;
    run.jobs = cli.jobs;
    if let Some(t) = &cli.now {
        run.now = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .map_err(|e| {
                Fail(
                    2,
                    format!(
                        "--now: {} is not an RFC 3339 time: {e}",
                        kpki::text::quote(t)
                    ),
                )
            })?;
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
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if e.use_stderr() => {
            // One line, like every other kpki error (clap adds usage and a hint).
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            let first = esc(first);
            eprintln!(
                "{}",
                if first.starts_with("error:") {
                    first
                } else {
                    format!("error: {first}")
                }
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    let res = match &cli.command {
        Command::Init(cmd) => init::run(&cli, cmd),
        Command::Kubeconfig(cmd) => kubeconfig_cmd::run(&cli, cmd),
        Command::Plan(cmd) => lifecycle_cmd::plan(&cli, cmd),
        Command::Nodes(cmd) => nodes_cmd::run_nodes(&cli, cmd),
        Command::Token(cmd) => nodes_cmd::run_token(&cli, cmd),
        Command::Verify(cmd) => verify_cmd::run(&cli, cmd),
        Command::Certs(cmd) => certs_cmd::run(&cli, cmd),
        Command::Ca(cmd) => rotate_cmd::run(&cli, cmd),
        Command::Spec => {
            out!("{}", kpki::DEFAULT_SPEC);
            Ok(())
        }
        Command::Tree(cmd) => operate_cmd::tree(&cli, cmd),
        Command::Completions(cmd) => operate_cmd::completions(cmd),
        Command::Man(cmd) => operate_cmd::man(cmd),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail(code, msg)) => {
            // An empty message is a verdict, not an error (renew --if-expiring-within's codes).
            // One line, whatever the message holds: control characters escaped, length bounded.
            if !msg.is_empty() {
                eprintln!("error: {}", esc(&msg));
            }
            ExitCode::from(code)
        }
    }
}
