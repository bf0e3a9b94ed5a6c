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
    /// Certificate spec (TOML) (default: the embedded certs-spec.toml).
    #[arg(long, global = true, value_name = "FILE", display_order = 900)]
    pub spec: Option<PathBuf>,
    /// Pretend the current time is this RFC 3339 instant (tests, audits of old trees).
    #[arg(long, global = true, hide = true, value_name = "RFC3339")]
    pub now: Option<String>,
    /// `--jobs` before the subcommand (the older spelling): taken by the commands that
    /// generate keys, refused by the others. The writing commands list their own.
    #[arg(long = "jobs", hide = true, value_name = "N")]
    pub jobs: Option<usize>,
    /// `--lock-timeout` before the subcommand (the older spelling), as `jobs`.
    #[arg(long = "lock-timeout", hide = true, value_name = "DURATION")]
    pub lock_timeout: Option<String>,
    /// `--allow-insecure-dir` before the subcommand (the older spelling), as `jobs`.
    #[arg(long = "allow-insecure-dir", hide = true)]
    pub allow_insecure_dir: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the whole PKI tree (CAs, leaves, sa key pair, kubeconfigs), keeping what is right.
    Init(Box<init::InitCmd>),
    /// Kubeconfigs outside the tree, for extra users and joining kubelets (kubeadm kubeconfig).
    Kubeconfig(kubeconfig_cmd::KubeconfigCmd),
    /// Show what `init --regenerate-drifted` would do for each entry, and why (no writes).
    Plan(Box<lifecycle_cmd::PlanCmd>),
    /// Kubelet credentials (client kubeconfig, optional serving cert) for many nodes at once.
    Nodes(Box<nodes_cmd::NodesCmd>),
    /// Bootstrap tokens (kubeadm's format).
    Token(nodes_cmd::TokenCmd),
    /// Audit the whole tree against the spec and the inputs (findings; exit 1 on errors).
    Verify(Box<verify_cmd::VerifyCmd>),
    /// Certificate commands (kubeadm certs): expiry, renewal, CSRs, the join bundle.
    Certs(certs_cmd::CertsCmd),
    /// CA commands: rotate the cluster, front-proxy and etcd CAs and the service-account key.
    Ca(Box<rotate_cmd::CaCmd>),
    /// Print the embedded default spec.
    Spec,
    /// Draw the hierarchy (CAs, leaves, kubeconfigs, node credentials) with remaining lives and findings.
    Tree(Box<operate_cmd::TreeCmd>),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(operate_cmd::CompletionsCmd),
    /// Print the kpki(1) man page (or write every page with --out-dir).
    Man(operate_cmd::ManCmd),
}

impl Command {
    /// The writing flags this command takes (`--lock-timeout`, `--allow-insecure-dir`) and its
    /// `--jobs`; `None` for the commands that write nothing or generate no keys.
    fn write_flags(&self) -> (Option<&flags::WriteFlags>, Option<&flags::JobsFlag>) {
        match self {
            Command::Init(c) => (Some(&c.write), Some(&c.jobs)),
            Command::Nodes(c) => (Some(&c.write), Some(&c.jobs)),
            Command::Certs(c) => c.write_flags(),
            Command::Kubeconfig(c) => (Some(c.write_flags()), None),
            Command::Ca(c) => c.write_flags(),
            _ => (None, None),
        }
    }
}

impl Cli {
    /// Folds the command's own `--jobs`, `--lock-timeout` and `--allow-insecure-dir` into the
    /// top-level values (the older spelling, before the subcommand); given after the
    /// subcommand wins. The older spelling before a command that does not take the flag is
    /// refused rather than ignored.
    fn settle_write_flags(&mut self) -> Result<(), Fail> {
        let (w, j) = self.command.write_flags();
        let (w, j) = (w.cloned(), j.cloned());
        match j {
            Some(j) => self.jobs = j.jobs.or(self.jobs),
            None if self.jobs.is_some() => {
                return Err(Fail(
                    2,
                    "--jobs: this command generates no keys (the flag is for init, certs renew, certs generate-csr, ca rotate and nodes)".into(),
                ))
            }
            None => {}
        }
        match w {
            Some(w) => {
                self.lock_timeout = w.lock_timeout.or(self.lock_timeout.take());
                self.allow_insecure_dir |= w.allow_insecure_dir;
            }
            None if self.lock_timeout.is_some() || self.allow_insecure_dir => {
                let flag = if self.lock_timeout.is_some() {
                    "--lock-timeout"
                } else {
                    "--allow-insecure-dir"
                };
                return Err(Fail(
                    2,
                    format!("{flag}: this command writes nothing (the flag is for init, certs renew, certs generate-csr, certs download-bundle, ca rotate, nodes and kubeconfig)"),
                ));
            }
            None => {}
        }
        Ok(())
    }
}

/// kpki's command line: the derived [`Cli`] with every leaf command's help in one layout (each
/// option's description on the line below it), whatever the width of its options. Parsing,
/// completions and man pages all use it.
pub fn command() -> clap::Command {
    fn leaves(c: clap::Command) -> clap::Command {
        let subs: Vec<String> = c
            .get_subcommands()
            .map(|s| s.get_name().to_string())
            .collect();
        if subs.is_empty() {
            return c.next_line_help(true);
        }
        subs.iter().fold(c, |c, n| c.mut_subcommand(n, leaves))
    }
    leaves(<Cli as clap::CommandFactory>::command())
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

/// `--lock-timeout` when not given.
const DEFAULT_LOCK_TIMEOUT: &str = "10s";

/// `--lock-timeout` as a duration.
pub fn lock_timeout(cli: &Cli) -> Result<std::time::Duration, Fail> {
    let given = cli.lock_timeout.as_deref().unwrap_or(DEFAULT_LOCK_TIMEOUT);
    let t = kpki::parse::go_duration(given).map_err(|m| Fail(2, format!("--lock-timeout: {m}")))?;
    std::time::Duration::try_from(t)
        .map_err(|_| Fail(2, format!("--lock-timeout: {given:?} must not be negative")))
}

/// The clock, randomness and parallelism for this invocation.
pub fn run_ctx(cli: &Cli) -> Result<Run<'static>, Fail> {
    let mut run = Run::now();
    let jobs = cli.jobs.unwrap_or(0);
    kpki::checks::check_jobs(jobs)?;
    run.jobs = jobs;
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
    let mut cli = match command()
        .try_get_matches()
        .and_then(|m| <Cli as clap::FromArgMatches>::from_arg_matches(&m))
    {
        Ok(c) => c,
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // `kpki`, `kpki certs`: the usage and the list of commands, on stderr, exit 2 (clap's
            // own behaviour; one `error:` line would say nothing useful here).
            let _ = e.print();
            return ExitCode::from(2);
        }
        Err(e) if e.use_stderr() => {
            // One line, like every other kpki error: clap's first paragraph (the message and,
            // for missing arguments, their names), without the usage and hints.
            let text = e.to_string();
            let first = text
                .split("\n\n")
                .next()
                .unwrap_or("invalid arguments")
                .lines()
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ");
            let first = esc(&first);
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
    if let Err(Fail(code, msg)) = cli.settle_write_flags() {
        eprintln!("error: {}", esc(&msg));
        return ExitCode::from(code);
    }
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
