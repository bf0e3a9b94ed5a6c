//! Shared helpers of the integration tests: running the real `kpki` binary
//! (`CARGO_BIN_EXE_kpki`) and independent tools (openssl, kubectl), building trees, copying and
//! snapshotting directories, process-unique ports, and the lock that keeps timing-sensitive tests
//! apart. Certificates are read with x509-parser ([`certs`]), private keys with openssl,
//! kubeconfigs with kubectl; the kpki library is used only for its built-in spec text
//! ([`spec_without_super_admin`]).
//!
//! Every test of the suite runs as a thread of one process. So nothing here (nor in any test)
//! changes process-wide state: no `std::env::set_var`, no umask, no current directory. Such
//! settings are made on the child [`Command`] (`.env`, `.current_dir`, `sh -c 'umask ...; exec'`).

pub mod certs;
pub mod etcd;
pub mod reliability;

pub use certs::*;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

// ------------------------------------------------------------------ serialisation and ports

static SERIAL: Mutex<()> = Mutex::new(());

/// Held for its whole run by every test that measures wall-clock time, kills processes at chosen
/// moments, races processes against each other or binds ports: the crash harness, the
/// concurrency/lock tests, the etcd clusters, the TLS server and the timing-driven kill and race
/// tests. They run one at a time, so none of them competes with another for the two cores or
/// skews another's calibration; every other test may still run beside them. Tests that only run
/// several processes at once, with no deadline tighter than a minute, do not take it. A test that
/// fails while holding the lock does not poison it for the others.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

static PORTS: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// `n` distinct free TCP ports on 127.0.0.1, never handed out before in this process: tests
/// running side by side cannot be given the same port. (All listeners are held until every port is
/// picked; the caller binds them right away.)
pub fn free_ports(n: usize) -> Vec<u16> {
    let mut used = PORTS.lock().unwrap_or_else(|p| p.into_inner());
    let mut held = Vec::new();
    let mut ports = Vec::new();
    while ports.len() < n {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        if used.insert(port) {
            ports.push(port);
        }
        held.push(l);
    }
    ports
}

// ------------------------------------------------------------------ environment knobs

/// An integer from the environment (`KPKI_CRASH_TRIALS`, ...), or a default.
pub fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The seed for this run: `KPKI_CRASH_SEED` or the clock.
pub fn seed() -> u64 {
    std::env::var("KPKI_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

// ------------------------------------------------------------------ paths and inputs

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The kubeadm v1.28.4 reference tree (read only: tests copy it before changing anything).
pub fn fixture() -> PathBuf {
    workspace().join("fixtures/kubeadm-v1.28.4-rsa")
}

/// The kpki binary under test.
pub const KPKI: &str = env!("CARGO_BIN_EXE_kpki");

/// A copy of the fixture under `dir/fx` with kubeadm's modes (git keeps none: keys and
/// kubeconfigs 0600); returns `dir/fx` (certificates in `pki/`, kubeconfigs in `kubeconfig/`).
pub fn fixture_copy(dir: &Path) -> PathBuf {
    let root = dir.join("fx");
    copy_dir(&fixture(), &root, Modes::OwnerWritable);
    for rel in [
        "pki/ca.key",
        "pki/apiserver.key",
        "pki/apiserver-kubelet-client.key",
        "pki/apiserver-etcd-client.key",
        "pki/front-proxy-ca.key",
        "pki/front-proxy-client.key",
        "pki/sa.key",
        "pki/sa.pub",
        "pki/etcd/ca.key",
        "pki/etcd/server.key",
        "pki/etcd/peer.key",
        "pki/etcd/healthcheck-client.key",
        "kubeconfig/admin.conf",
        "kubeconfig/controller-manager.conf",
        "kubeconfig/kubelet.conf",
        "kubeconfig/scheduler.conf",
    ] {
        set_mode(&root.join(rel), 0o600);
    }
    root
}

/// Owned copies of string slices (argument lists built from literals).
pub fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// A path as `&str` (test paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The inputs most trees are made with: node `cp-1`, advertise address 10.0.0.10, ECDSA-P256
/// keys (fast to generate).
pub const INPUTS: &[&str] = &[
    "--node-name",
    "cp-1",
    "--apiserver-advertise-address",
    "10.0.0.10",
    "--encryption-algorithm",
    "ECDSA-P256",
];

/// The same inputs with RSA-2048 keys.
pub const INPUTS_RSA: &[&str] = &[
    "--node-name",
    "cp-1",
    "--apiserver-advertise-address",
    "10.0.0.10",
    "--encryption-algorithm",
    "RSA-2048",
];

// ------------------------------------------------------------------ processes

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn run(mut cmd: Command, stdin: Option<&[u8]>) -> Output {
    let what = describe(&cmd);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| {
        panic!("cannot start {what}: {e} (scripts/test.sh installs the tools)")
    });
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

/// A process's exit code, stdout and stderr, for a failure message.
pub fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// [`show`] under a heading.
pub fn report(what: &str, out: &Output) -> String {
    format!("{what}\n{}", show(out))
}

/// Runs a prepared command (its own environment, directory, ...: stdin closed, stdout and stderr
/// captured), whatever the outcome; a program that cannot start fails the test, naming it.
pub fn run_cmd(cmd: &mut Command) -> Output {
    let what = describe(cmd);
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e} (scripts/test.sh installs the tools)"))
}

/// Fails with a useful message when `tool` (run with `version_arg`) is missing; `how` names what
/// scripts/test.sh installs for it.
pub fn require(tool: &str, version_arg: &str, how: &str) {
    if let Err(e) = Command::new(tool).arg(version_arg).output() {
        panic!(
            "{tool} is not installed ({e}); run scripts/test.sh, which installs {how} (CI does)"
        );
    }
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Requires `out` to be a success (prints stdout and stderr otherwise) and returns it.
pub fn ok(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{}",
        report(&format!("{what} failed"), &out)
    );
    out
}

/// A `kpki` command line, built up and then run: always the real binary
/// (`CARGO_BIN_EXE_kpki`), stdin closed, stdout and stderr captured.
#[derive(Clone, Debug, Default)]
pub struct Kpki {
    args: Vec<OsString>,
    /// The working directory, when not the test's.
    dir: Option<PathBuf>,
}

impl Kpki {
    /// `kpki <words...>`: the subcommand, and any global flags before it.
    pub fn new<I, S>(words: I) -> Kpki
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Kpki::default().args(words)
    }

    /// `kpki init --cert-dir <pki>`.
    pub fn init(pki: &Path) -> Kpki {
        Kpki::new(["init"]).cert_dir(pki)
    }

    /// `kpki nodes --cert-dir <pki> --nodes <list> --out-dir <out>`.
    pub fn nodes(pki: &Path, list: &Path, out: &Path) -> Kpki {
        Kpki::new(["nodes"])
            .cert_dir(pki)
            .arg("--nodes")
            .arg(list)
            .arg("--out-dir")
            .arg(out)
    }

    /// Appends one argument.
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Kpki {
        self.args.push(a.as_ref().to_owned());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Kpki
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Puts global flags (`--spec`, `--jobs`, `--lock-timeout`, ...) first, before the
    /// subcommand, where a user writes them.
    pub fn global<I, S>(mut self, flags: I) -> Kpki
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut args: Vec<OsString> = flags.into_iter().map(|a| a.as_ref().to_owned()).collect();
        args.append(&mut self.args);
        self.args = args;
        self
    }

    /// `--cert-dir <pki>`.
    pub fn cert_dir(self, pki: &Path) -> Kpki {
        self.arg("--cert-dir").arg(pki)
    }

    /// The standard [`INPUTS`] changed by `extra`: a flag of `extra` that is one of the inputs
    /// gives it the next word as its new value; every other word of `extra` is appended in order
    /// (so `extra` may also hold switches such as `--dry-run`).
    pub fn inputs(mut self, extra: &[&str]) -> Kpki {
        let mut inputs: Vec<(&str, &str)> = INPUTS.chunks(2).map(|c| (c[0], c[1])).collect();
        let mut rest = Vec::new();
        let mut words = extra.iter();
        while let Some(w) = words.next() {
            match inputs.iter_mut().find(|(f, _)| f == w) {
                Some(input) => input.1 = words.next().expect("a value after an input flag"),
                None => rest.push(*w),
            }
        }
        for (f, v) in inputs {
            self = self.arg(f).arg(v);
        }
        self.args(rest)
    }

    /// Runs it in `dir` (relative paths in its arguments are then relative to `dir`).
    pub fn in_dir(mut self, dir: &Path) -> Kpki {
        self.dir = Some(dir.to_path_buf());
        self
    }

    /// Drops `flag` and the value after it.
    pub fn without(mut self, flag: &str) -> Kpki {
        if let Some(i) = self.args.iter().position(|a| a == flag) {
            self.args.drain(i..i + 2);
        }
        self
    }

    /// The arguments as strings (for the process helpers of [`reliability`]).
    pub fn strings(&self) -> Vec<String> {
        self.args
            .iter()
            .map(|a| a.to_str().unwrap().to_string())
            .collect()
    }

    /// The command, stdin closed (stdout and stderr as the caller sets them).
    pub fn command(&self) -> Command {
        let mut c = Command::new(KPKI);
        c.args(&self.args).stdin(Stdio::null());
        if let Some(d) = &self.dir {
            c.current_dir(d);
        }
        c
    }

    /// Runs it, whatever the outcome (a panic of kpki is never an outcome a test wants).
    pub fn run(&self) -> Output {
        let out = run(self.command(), None);
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("panicked at"),
            "{}",
            report(&format!("kpki {:?} panicked", self.args), &out)
        );
        out
    }

    /// Runs it with `input` on its standard input, whatever the outcome (but no panic).
    pub fn run_stdin(&self, input: &[u8]) -> Output {
        let out = run(self.command(), Some(input));
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("panicked at"),
            "{}",
            report(&format!("kpki {:?} panicked", self.args), &out)
        );
        out
    }

    /// Runs it and requires success; returns stdout. Prints everything on failure.
    pub fn ok(&self) -> String {
        let out = self.run();
        assert!(
            out.status.success(),
            "{}",
            report(&format!("kpki {:?} failed", self.args), &out)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs it and requires failure; returns (exit code, stderr).
    pub fn fail(&self) -> (i32, String) {
        let out = self.run();
        assert!(
            !out.status.success(),
            "{}",
            report(&format!("kpki {:?} should have failed", self.args), &out)
        );
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stderr).unwrap(),
        )
    }
}

/// Runs `kpki` with `args`, whatever the outcome.
pub fn kpki<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Kpki::new(args).run()
}

/// Runs `kpki` and requires success; returns stdout. Prints everything on failure.
pub fn kpki_ok<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Kpki::new(args).ok()
}

/// Runs `kpki`, requires it to fail; returns (exit code, stderr).
pub fn kpki_fail<I, S>(args: I) -> (i32, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Kpki::new(args).fail()
}

/// `kpki init` of a tree under `dir` with the standard inputs changed by `extra` (see
/// [`Kpki::inputs`]): certificates in `dir/pki` (returned), kubeconfigs in `dir` unless `extra`
/// names a `--kubeconfig-dir` (kubeadm's /etc/kubernetes layout).
pub fn init_tree(dir: &Path, extra: &[&str]) -> PathBuf {
    let pki = dir.join("pki");
    Kpki::init(&pki).inputs(extra).ok();
    pki
}

/// Runs a tool, whatever the outcome.
pub fn tool<I, S>(program: &str, args: I, stdin: Option<&[u8]>) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(program);
    cmd.args(args);
    run(cmd, stdin)
}

/// Runs a tool and requires success; returns stdout bytes.
pub fn tool_ok<I, S>(program: &str, args: I, stdin: Option<&[u8]>) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(program);
    cmd.args(args);
    let what = describe(&cmd);
    let out = run(cmd, stdin);
    assert!(
        out.status.success(),
        "{}",
        report(&format!("{what} failed"), &out)
    );
    out.stdout
}

/// Runs openssl and requires success; returns stdout as text.
pub fn openssl<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    String::from_utf8(tool_ok("openssl", args, None)).unwrap()
}

/// Runs kubectl, whatever the outcome.
pub fn kubectl<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    tool("kubectl", args, None)
}

// ------------------------------------------------------------------ files

/// chmod.
pub fn set_mode(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", p.display()));
}

/// Permission bits of a path.
pub fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("cannot stat {}: {e}", path.display()))
        .mode()
        & 0o7777
}

/// Writes bytes to a new file in `dir` and returns its path.
pub fn write_file(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

/// How [`copy_dir`] sets the mode of each copied file (directories keep their mode).
#[derive(Clone, Copy, Debug)]
pub enum Modes {
    /// The source file's mode (a fresh copy of a tree).
    Keep,
    /// The source file's mode plus owner write (the fixture as git checked it out: 0644/0444).
    OwnerWritable,
    /// One mode for every file.
    All(u32),
    /// kubeadm's: certificates (`*.crt`) 0644, every other file 0600.
    Kubeadm,
}

/// Copies a directory tree (directories keep their mode; files get `modes`).
pub fn copy_dir(from: &Path, to: &Path, modes: Modes) {
    std::fs::create_dir_all(to).unwrap();
    set_mode(to, mode(from));
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let md = std::fs::symlink_metadata(e.path()).unwrap();
        let dst = to.join(e.file_name());
        if md.is_dir() {
            copy_dir(&e.path(), &dst, modes);
            continue;
        }
        std::fs::copy(e.path(), &dst).unwrap();
        let src = md.mode() & 0o7777;
        let name = e.file_name().to_string_lossy().into_owned();
        set_mode(
            &dst,
            match modes {
                Modes::Keep => src,
                Modes::OwnerWritable => src | 0o200,
                Modes::All(m) => m,
                Modes::Kubeadm if name.ends_with(".crt") => 0o644,
                Modes::Kubeadm => 0o600,
            },
        );
    }
}

/// The labels of the PEM blocks in a file, in order.
pub fn pem_labels(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter_map(|l| l.strip_prefix("-----BEGIN "))
        .map(|l| l.trim_end_matches('-').to_string())
        .collect()
}

/// A file or directory in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Contents (empty for directories).
    pub bytes: Vec<u8>,
    /// Permission bits.
    pub mode: u32,
    /// Modification time.
    pub mtime: SystemTime,
    /// Inode number (an atomic rename changes it).
    pub ino: u64,
    /// True for a directory.
    pub dir: bool,
}

/// Every file and directory under `root` (relative paths), with contents.
pub fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Node>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd {
            let p = e.unwrap().path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let node = Node {
                bytes: if md.is_file() {
                    std::fs::read(&p).unwrap()
                } else {
                    Vec::new()
                },
                mode: md.mode() & 0o7777,
                mtime: md.modified().unwrap(),
                ino: md.ino(),
                dir: md.is_dir(),
            };
            out.insert(rel, node);
            if md.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Paths whose presence, contents or mode differ between two snapshots.
pub fn changed(
    before: &BTreeMap<String, Node>,
    after: &BTreeMap<String, Node>,
) -> BTreeSet<String> {
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter(|k| match (before.get(*k), after.get(*k)) {
            (Some(a), Some(b)) => a.bytes != b.bytes || a.mode != b.mode || a.dir != b.dir,
            _ => true,
        })
        .cloned()
        .collect()
}

/// Files (not directories) whose mtime or inode changed although their contents did not.
pub fn touched(
    before: &BTreeMap<String, Node>,
    after: &BTreeMap<String, Node>,
) -> BTreeSet<String> {
    before
        .iter()
        .filter(|(_, a)| !a.dir)
        .filter(|(k, a)| {
            after
                .get(*k)
                .is_some_and(|b| b.bytes == a.bytes && (b.mtime != a.mtime || b.ino != a.ino))
        })
        .map(|(k, _)| k.clone())
        .collect()
}

/// Relative paths of the regular files under `root`.
pub fn files(root: &Path) -> BTreeSet<String> {
    snapshot(root)
        .into_iter()
        .filter(|(_, n)| !n.dir)
        .map(|(k, _)| k)
        .collect()
}

// ------------------------------------------------------------------ specs

/// The default spec (the library's built-in text, which `kpki spec` prints) without `super-admin.conf`, i.e. kubeadm 1.28's
/// tree, written to `dir/spec-1.28.toml`.
pub fn spec_without_super_admin(dir: &Path) -> PathBuf {
    let spec = kpki::DEFAULT_SPEC;
    let start = spec
        .find("[[kubeconfig]]\nname = \"super-admin.conf\"")
        .unwrap();
    let end = start + 10 + spec[start + 10..].find("\n[[").unwrap() + 1;
    write_file(
        dir,
        "spec-1.28.toml",
        format!("{}{}", &spec[..start], &spec[end..]).as_bytes(),
    )
}
