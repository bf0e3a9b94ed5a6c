//! Shared machinery of the reliability tests (crash, concurrency, file-system safety, bad input):
//! a cluster layout, a seeded PRNG, a "run and SIGKILL" helper, and an independent checker that
//! reads a tree the way an operator's tools would (openssl for private keys, kubectl for
//! kubeconfigs, x509-parser for certificates and signatures) without using the kpki library.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::SubjectPublicKeyInfo;

use super::{kpki, openssl, set_mode, Kpki, CAS, KUBECONFIGS, LEAVES};

// ------------------------------------------------------------------ layout

/// A cluster layout under a test's temporary directory: kubeconfigs in `root/k`, certificates in
/// `root/k/pki` (kubeadm's /etc/kubernetes and /etc/kubernetes/pki).
pub struct Layout {
    /// Kubeconfig directory.
    pub k: PathBuf,
    /// Certificate directory.
    pub pki: PathBuf,
}

impl Layout {
    /// Creates `root/k` (0755) and names `root/k/pki`.
    pub fn new(root: &Path) -> Layout {
        let k = root.join("k");
        std::fs::create_dir_all(&k).unwrap();
        set_mode(&k, 0o755);
        Layout {
            pki: k.join("pki"),
            k,
        }
    }

    /// `<cmd...> --cert-dir <pki> <flags...>` as owned strings.
    pub fn args(&self, cmd: &[&str], flags: &[&str]) -> Vec<String> {
        Kpki::new(cmd).cert_dir(&self.pki).args(flags).strings()
    }

    /// `kpki nodes` issuing serving certificates too, with this layout's CA (ECDSA-P256 keys).
    pub fn nodes_args(&self, list: &Path, out: &Path) -> Vec<String> {
        Kpki::nodes(&self.pki, list, out)
            .args([
                "--serving",
                "--apiserver-advertise-address",
                "10.0.0.10",
                "--encryption-algorithm",
                "ECDSA-P256",
            ])
            .strings()
    }
}

// ------------------------------------------------------------------ randomness

/// xorshift64*: a tiny seeded PRNG, so a failing run can be replayed from its printed seed.
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (0 is mapped to a fixed non-zero value).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `0..n` (0 when n is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// A delay uniform in `[0, max]`, microsecond resolution.
    pub fn delay(&mut self, max: Duration) -> Duration {
        Duration::from_micros(self.below(max.as_micros() as u64 + 1))
    }

    /// True with probability `num/den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
}

// ------------------------------------------------------------------ processes

/// How a run that was to be killed ended.
#[derive(Debug, Clone)]
pub struct Killed {
    /// True if SIGKILL ended it; false if it exited on its own first.
    pub killed: bool,
    /// The exit code when it exited on its own.
    pub code: Option<i32>,
    /// Its stderr.
    pub stderr: String,
}

/// The kpki binary as a `Command` (stdout discarded, stderr piped), with kpki's failpoint set in
/// the child's environment: a pause between renames, so kills land between two writes.
pub fn kpki_cmd(args: &[String]) -> Command {
    let mut c = Kpki::new(args).command();
    c.env("KPKI_FAILPOINT_RENAME_PAUSE_US", "2000")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Starts `cmd`, sends SIGKILL after `delay` (unless it is done by then) and reaps it.
pub fn run_and_kill(mut cmd: Command, delay: Duration) -> Killed {
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + delay;
    // Sleep in one piece: polling would add its own latency to the kill moment.
    std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
    let done_before = child.try_wait().unwrap();
    if done_before.is_none() {
        // Child::kill sends SIGKILL on Unix.
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    match out.status.signal() {
        Some(9) => Killed {
            killed: true,
            code: None,
            stderr,
        },
        Some(s) => panic!("kpki died of signal {s}, not SIGKILL: {stderr}"),
        None => Killed {
            killed: false,
            code: out.status.code(),
            stderr,
        },
    }
}

/// When a run writes: from its start to its first visible change under `watch` (a file created
/// or removed, temporary files included) and to its exit.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Start of the run to its first change on disk.
    pub first_write: Duration,
    /// Start of the run to its exit.
    pub end: Duration,
}

fn count_entries(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(|e| e.ok())
        .map(|e| {
            // Files only: `kpki init` creates the cert dir when it takes the lock, long before
            // its first write.
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                count_entries(&e.path())
            } else {
                1
            }
        })
        .sum()
}

/// Measures the write window of one complete run by polling `watch` (every ~0.2 ms).
pub fn measure_window(args: &[String], watch: &Path) -> Window {
    let before = count_entries(watch);
    let start = Instant::now();
    let mut child = kpki_cmd(args).spawn().unwrap();
    let mut first = None;
    loop {
        if first.is_none() && count_entries(watch) != before {
            first = Some(start.elapsed());
        }
        if let Some(st) = child.try_wait().unwrap() {
            assert!(st.success(), "kpki {args:?} failed during calibration");
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let end = start.elapsed();
    Window {
        first_write: first.unwrap_or(end),
        end,
    }
}

/// Inode of every file under `root` (relative path -> inode).
pub fn inodes(root: &Path) -> HashMap<String, u64> {
    fn walk(root: &Path, dir: &Path, out: &mut HashMap<String, u64>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.filter_map(|e| e.ok()) {
            let p = e.path();
            let Ok(md) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if md.is_dir() {
                walk(root, &p, out);
            } else if let Ok(rel) = p.strip_prefix(root) {
                out.insert(rel.to_string_lossy().into_owned(), md.ino());
            }
        }
    }
    let mut out = HashMap::new();
    walk(root, root, &mut out);
    out
}

/// A progress measure for [`run_and_kill_when`]: how many files under `root` are new or
/// replaced (another inode) compared with `start` (temporary files included).
pub fn files_changed(root: &Path, start: &HashMap<String, u64>) -> usize {
    inodes(root)
        .iter()
        .filter(|(k, ino)| start.get(*k) != Some(ino))
        .count()
}

/// When to send SIGKILL.
#[derive(Debug, Clone, Copy)]
pub enum When {
    /// After this long.
    After(Duration),
    /// As soon as the progress measure reaches `target`, plus `extra` (so kills land between
    /// two given writes whatever the machine's load).
    Progress {
        /// Progress value (files written so far) to wait for.
        target: usize,
        /// Further delay once it is reached.
        extra: Duration,
    },
}

impl std::fmt::Display for When {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            When::After(d) => write!(f, "after {d:?}"),
            When::Progress { target, extra } => write!(f, "at progress {target} + {extra:?}"),
        }
    }
}

impl When {
    /// A third of the kills at a uniform time over the whole run (key generation included), two
    /// thirds at a uniform progress point `0..=max_progress` of the writing phase.
    pub fn pick(rng: &mut Rng, w: Window, max_progress: usize) -> When {
        if rng.chance(1, 3) {
            When::After(rng.delay(w.end))
        } else {
            When::Progress {
                target: rng.below(max_progress as u64 + 1) as usize,
                extra: Duration::from_micros(rng.below(3000)),
            }
        }
    }
}

/// Starts `cmd` and SIGKILLs it at `when` (`progress` is polled every ~0.1 ms), unless it exits
/// first. A progress target never reached is treated as "exited first".
pub fn run_and_kill_when(cmd: Command, when: When, progress: &dyn Fn() -> usize) -> Killed {
    match when {
        When::After(d) => run_and_kill(cmd, d),
        When::Progress { target, extra } => {
            let mut cmd = cmd;
            let mut child = cmd.spawn().unwrap();
            loop {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                if progress() >= target {
                    std::thread::sleep(extra);
                    let _ = child.kill();
                    break;
                }
                std::thread::sleep(Duration::from_micros(100));
            }
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            match out.status.signal() {
                Some(9) => Killed {
                    killed: true,
                    code: None,
                    stderr,
                },
                Some(s) => panic!("kpki died of signal {s}, not SIGKILL: {stderr}"),
                None => Killed {
                    killed: false,
                    code: out.status.code(),
                    stderr,
                },
            }
        }
    }
}

/// Runs kpki to completion and requires exit 0; returns the wall time.
pub fn run_ok(args: &[String]) -> Duration {
    let start = Instant::now();
    let out = kpki_cmd(args).output().unwrap();
    assert!(
        out.status.success(),
        "kpki {args:?} failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    start.elapsed()
}

// ------------------------------------------------------------------ the independent checker

/// What a file under a tree is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `*.crt`.
    Cert,
    /// `*.key`.
    Key,
    /// `*.pub`.
    Pub,
    /// `*.conf`.
    Conf,
}

/// A file name taken apart: the final name it belongs to and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Name {
    /// A final name (`apiserver.crt`).
    Final(Kind),
    /// A staged replacement certificate (`apiserver.crt.kpki-new`).
    Staged,
    /// A backup (`apiserver.key.bak-20260101T000000Z`), with the kind of its original.
    Backup(Kind),
    /// A temporary file of an atomic write (`.apiserver.key.XXXXXX.kpki-tmp`).
    Temp,
}

fn kind_of(name: &str) -> Option<Kind> {
    match Path::new(name).extension()?.to_str()? {
        "crt" => Some(Kind::Cert),
        "key" => Some(Kind::Key),
        "pub" => Some(Kind::Pub),
        "conf" => Some(Kind::Conf),
        _ => None,
    }
}

/// Classifies a file name; `None` for a name no kpki write produces.
pub fn classify(name: &str) -> Option<Name> {
    if name.starts_with('.') && name.ends_with(".kpki-tmp") {
        return Some(Name::Temp);
    }
    if let Some(base) = name.strip_suffix(".kpki-new") {
        return (kind_of(base) == Some(Kind::Cert)).then_some(Name::Staged);
    }
    if let Some((base, _stamp)) = name.split_once(".bak-") {
        return kind_of(base).map(Name::Backup);
    }
    kind_of(name).map(Name::Final)
}

/// What one scan of a tree saw.
#[derive(Debug, Default, Clone)]
pub struct Scan {
    /// Final-name files present (relative paths).
    pub finals: BTreeSet<String>,
    /// Leftover temporary files (relative paths).
    pub temps: BTreeSet<String>,
    /// `X.crt.kpki-new` files (relative paths).
    pub staged: BTreeSet<String>,
    /// Backups.
    pub backups: BTreeSet<String>,
    /// Keys present without their certificate (allowed mid-run: the next run issues the cert).
    pub key_only: BTreeSet<String>,
    /// Pairs whose key does not match the certificate but does match `<cert>.kpki-new` (a crash
    /// between the key swap and the certificate rename; the next run rolls it forward).
    pub staged_swaps: BTreeSet<String>,
    /// Pairs whose key does not match the certificate, with no staged certificate to explain it.
    pub mismatches: BTreeSet<String>,
    /// SPKI of every CA key present (relative path -> bytes of the key file).
    pub ca_keys: BTreeMap<String, Vec<u8>>,
}

/// Reads trees without the kpki library. Results of the slow external tools are cached by file
/// contents (a file that did not change is not re-read by openssl or kubectl).
#[derive(Default)]
pub struct Checker {
    key_spki: HashMap<Vec<u8>, Result<Vec<u8>, String>>,
    /// kubeconfig bytes -> (CA DER, client certificate DER, client key PEM).
    confs: HashMap<Vec<u8>, ConfRaw>,
    /// Which CA certificate (relative to the scanned root) signs a certificate, by the
    /// certificate's relative final path; `None` = self-signed. Certificates not listed are
    /// only parsed.
    pub issuers: BTreeMap<String, Option<String>>,
    /// Relative path of the CA certificate kubeconfigs must embed and chain to.
    pub kubeconfig_ca: Option<String>,
    /// Relative paths of CA keys (never to change once written).
    pub ca_key_paths: BTreeSet<String>,
    /// Record an unexplained key/certificate mismatch in [`Scan::mismatches`] instead of
    /// failing (for writers without a staged swap, to measure how often it is seen).
    pub tolerate_mismatch: bool,
    /// Certificate files, kubeconfig CA data and `.pub` files may hold several certificates or
    /// keys (a CA rotation's bundles); a key matches its certificate file's first certificate,
    /// and a `.pub` file when any of its keys is the key's.
    pub allow_bundles: bool,
}

/// What a kubeconfig holds, decoded.
#[derive(Clone, Debug)]
pub struct Conf {
    /// certificate-authority-data (DER of the first certificate).
    pub ca_der: Vec<u8>,
    /// certificate-authority-data: every certificate (a bundle during a CA rotation).
    pub ca_all: Vec<Vec<u8>>,
    /// client-certificate-data (DER).
    pub cert_der: Vec<u8>,
    /// SPKI of client-key-data, per openssl.
    pub key_spki: Vec<u8>,
}

type ConfRaw = Result<(Vec<Vec<u8>>, Vec<u8>, Vec<u8>), String>;

/// Runs commands concurrently (each with its stdin) and returns their outputs in order.
fn run_all(cmds: Vec<(Command, Option<Vec<u8>>)>) -> Vec<std::process::Output> {
    let kids: Vec<std::process::Child> = cmds
        .into_iter()
        .map(|(mut c, input)| {
            c.stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
            let mut child = c.spawn().unwrap();
            if let Some(data) = input {
                use std::io::Write;
                // Small (a key): fits the pipe buffer, so writing before reading cannot block.
                child.stdin.take().unwrap().write_all(&data).unwrap();
            }
            child
        })
        .collect();
    kids.into_iter()
        .map(|k| k.wait_with_output().unwrap())
        .collect()
}

/// The current context's CA, client certificate and client key of `kubectl config view` JSON.
fn decode_conf(out: &std::process::Output) -> ConfRaw {
    if !out.status.success() {
        return Err(format!(
            "kubectl cannot read it: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let cur = v["current-context"].as_str().ok_or("no current-context")?;
    let ctx = v["contexts"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == cur))
        .ok_or("current context not found")?;
    let find = |list: &str, name: &serde_json::Value| {
        v[list]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == *name))
            .cloned()
            .ok_or(format!("{list}: {name} not found"))
    };
    let cluster = find("clusters", &ctx["context"]["cluster"])?;
    let user = find("users", &ctx["context"]["user"])?;
    let b64 = |v: &serde_json::Value| -> Result<Vec<u8>, String> {
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().ok_or("field missing")?)
            .map_err(|e| e.to_string())
    };
    let ca_all = parse_certs_pem(&b64(&cluster["cluster"]["certificate-authority-data"])?)?;
    let cert_der = parse_cert_pem(&b64(&user["user"]["client-certificate-data"])?)?;
    let key_pem = b64(&user["user"]["client-key-data"])?;
    Ok((ca_all, cert_der, key_pem))
}

/// DER of every CERTIFICATE block of PEM bytes (one or more, nothing else), each parsed
/// completely: a CA file or kubeconfig CA data during a CA rotation.
pub fn parse_certs_pem(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 PEM".to_string())?;
    let labels: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("-----BEGIN "))
        .collect();
    if labels.is_empty() || labels.iter().any(|l| *l != "CERTIFICATE-----") {
        return Err(format!(
            "PEM blocks {labels:?}, expected CERTIFICATE blocks"
        ));
    }
    if !text.trim_end().ends_with("-----END CERTIFICATE-----") {
        return Err("truncated PEM".into());
    }
    let mut out = Vec::new();
    for p in x509_parser::pem::Pem::iter_from_buffer(bytes) {
        let p = p.map_err(|e| format!("bad PEM: {e:?}"))?;
        let (rest, _) =
            X509Certificate::from_der(&p.contents).map_err(|e| format!("bad certificate: {e}"))?;
        if !rest.is_empty() {
            return Err("trailing bytes after a certificate's DER".into());
        }
        out.push(p.contents);
    }
    if out.len() != labels.len() {
        return Err(format!(
            "{} PEM blocks parsed of {}",
            out.len(),
            labels.len()
        ));
    }
    Ok(out)
}

/// DER of the single CERTIFICATE block of PEM bytes, parsed completely.
pub fn parse_cert_pem(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 PEM".to_string())?;
    let labels: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("-----BEGIN "))
        .collect();
    if labels != ["CERTIFICATE-----"] {
        return Err(format!("PEM blocks {labels:?}, expected one CERTIFICATE"));
    }
    if !text.trim_end().ends_with("-----END CERTIFICATE-----") {
        return Err("truncated PEM".into());
    }
    let (rest, pem) =
        x509_parser::pem::parse_x509_pem(bytes).map_err(|e| format!("bad PEM: {e:?}"))?;
    if !String::from_utf8_lossy(rest).trim().is_empty() {
        return Err("data after the PEM block".into());
    }
    let (rest, _) =
        X509Certificate::from_der(&pem.contents).map_err(|e| format!("bad certificate: {e}"))?;
    if !rest.is_empty() {
        return Err("trailing bytes after the certificate DER".into());
    }
    Ok(pem.contents)
}

/// The raw SubjectPublicKeyInfo of a certificate.
pub fn cert_spki(der: &[u8]) -> Vec<u8> {
    let (_, c) = X509Certificate::from_der(der).unwrap();
    c.public_key().raw.to_vec()
}

/// Checks that `der` is signed by the key of `issuer_der` (x509-parser with aws-lc).
pub fn signed_by(der: &[u8], issuer_der: &[u8]) -> Result<(), String> {
    let (_, c) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
    let (_, i) = X509Certificate::from_der(issuer_der).map_err(|e| e.to_string())?;
    if c.issuer().as_raw() != i.subject().as_raw() {
        return Err("issuer name is not the CA's subject".into());
    }
    c.verify_signature(Some(i.public_key()))
        .map_err(|e| format!("signature does not verify: {e}"))
}

impl Checker {
    /// A checker for the default kubeadm tree scanned from the kubeconfig dir (`pki/...`).
    pub fn default_tree() -> Checker {
        let mut c = Checker::default();
        for ca in CAS {
            c.issuers.insert(format!("pki/{ca}.crt"), None);
            c.ca_key_paths.insert(format!("pki/{ca}.key"));
        }
        for l in LEAVES {
            c.issuers.insert(
                format!("pki/{}.crt", l.path),
                Some(format!("pki/{}.crt", l.ca)),
            );
        }
        c.kubeconfig_ca = Some("pki/ca.crt".into());
        c
    }

    /// openssl's view of a private key: its SPKI DER (the key parses completely).
    pub fn key_spki(&mut self, pem: &[u8]) -> Result<Vec<u8>, String> {
        if !self.key_spki.contains_key(pem) {
            self.prefetch(&[pem.to_vec()], &[]);
        }
        self.key_spki[pem].clone()
    }

    /// kubectl's view of a kubeconfig: the current context's CA, client certificate and key.
    pub fn conf(&mut self, path: &Path) -> Result<Conf, String> {
        let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        if !self.confs.contains_key(&bytes) {
            self.prefetch(&[], &[path.to_path_buf()]);
        }
        let (ca_all, cert_der, key_pem) = self.confs[&bytes].clone()?;
        if ca_all.len() != 1 && !self.allow_bundles {
            return Err(format!(
                "certificate-authority-data holds {} certificates, expected one",
                ca_all.len()
            ));
        }
        Ok(Conf {
            ca_der: ca_all[0].clone(),
            ca_all,
            cert_der,
            key_spki: self.key_spki(&key_pem)?,
        })
    }

    /// Fills the caches for these private keys and kubeconfig files, running the openssl and
    /// kubectl processes concurrently (their start-up dominates the cost of a scan).
    pub fn prefetch(&mut self, keys: &[Vec<u8>], confs: &[PathBuf]) {
        let mut conf_jobs: Vec<Vec<u8>> = Vec::new();
        let mut cmds = Vec::new();
        for p in confs {
            let Ok(bytes) = std::fs::read(p) else {
                continue;
            };
            if self.confs.contains_key(&bytes) || conf_jobs.contains(&bytes) {
                continue;
            }
            let mut c = Command::new("kubectl");
            c.args(["config", "view", "--raw", "-o", "json"])
                .arg("--kubeconfig")
                .arg(p)
                // `config view` prints the file; this only keeps a kubectl wrapper from
                // probing an unreachable server first.
                .arg("--server=https://127.0.0.1:1");
            cmds.push((c, None));
            conf_jobs.push(bytes);
        }
        let mut key_jobs: Vec<Vec<u8>> = keys.to_vec();
        for (bytes, out) in conf_jobs.into_iter().zip(run_all(cmds)) {
            let r = decode_conf(&out);
            if let Ok((_, _, key)) = &r {
                key_jobs.push(key.clone());
            }
            self.confs.insert(bytes, r);
        }
        let mut pending: Vec<Vec<u8>> = Vec::new();
        let mut cmds = Vec::new();
        for pem in key_jobs {
            if self.key_spki.contains_key(&pem) || pending.contains(&pem) {
                continue;
            }
            let text = String::from_utf8_lossy(&pem);
            let labels: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix("-----BEGIN "))
                .collect();
            if labels != ["EC PRIVATE KEY-----"] && labels != ["RSA PRIVATE KEY-----"] {
                let e = format!("PEM blocks {labels:?}, expected one EC/RSA PRIVATE KEY");
                self.key_spki.insert(pem, Err(e));
                continue;
            }
            let mut c = Command::new("openssl");
            c.args(["pkey", "-pubout", "-outform", "DER"]);
            cmds.push((c, Some(pem.clone())));
            pending.push(pem);
        }
        for (pem, out) in pending.into_iter().zip(run_all(cmds)) {
            let r = if out.status.success() && !out.stdout.is_empty() {
                Ok(out.stdout)
            } else {
                Err(format!(
                    "openssl pkey cannot read it: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            };
            self.key_spki.insert(pem, r);
        }
    }

    /// Scans every file under `root` and checks the invariants that must hold at any instant,
    /// even right after a SIGKILL: every file under a final name parses completely and has its
    /// final mode, temporary files are never wider than 0600 (0644 for certificates) and are not
    /// parsed, every key matches its certificate (or the staged replacement), every certificate
    /// present is signed by the CA certificate present, kubeconfigs embed that CA and a matching
    /// client pair. Returns what it saw, or every violation.
    pub fn scan(&mut self, root: &Path) -> Result<Scan, Vec<String>> {
        let mut errs = Vec::new();
        let mut scan = Scan::default();
        let mut files: BTreeMap<String, (Name, u32)> = BTreeMap::new();
        walk(root, root, &mut files, &mut errs);
        let (mut keys, mut confs) = (Vec::new(), Vec::new());
        for (rel, (name, _)) in &files {
            match name {
                Name::Final(Kind::Key) | Name::Backup(Kind::Key) => {
                    keys.push(std::fs::read(root.join(rel)).unwrap_or_default())
                }
                Name::Final(Kind::Conf) | Name::Backup(Kind::Conf) => confs.push(root.join(rel)),
                _ => {}
            }
        }
        self.prefetch(&keys, &confs);
        let mut spki: BTreeMap<String, Vec<u8>> = BTreeMap::new(); // rel -> SPKI of key/cert/pub
        let mut certs: BTreeMap<String, Vec<u8>> = BTreeMap::new(); // rel -> DER
        let mut pubs_all: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new(); // rel -> SPKIs
        for (rel, (name, mode)) in &files {
            let path = root.join(rel);
            let bytes = std::fs::read(&path).unwrap_or_default();
            let kind = match name {
                Name::Temp => {
                    scan.temps.insert(rel.clone());
                    let is_cert = rel.contains(".crt.");
                    if mode & 0o077 != 0 && !(is_cert && *mode == 0o644) {
                        errs.push(format!("{rel}: temporary file with mode {mode:04o}"));
                    }
                    continue;
                }
                Name::Final(k) => {
                    scan.finals.insert(rel.clone());
                    let want = match k {
                        Kind::Cert => 0o644,
                        Kind::Key | Kind::Pub | Kind::Conf => 0o600,
                    };
                    if *mode != want {
                        errs.push(format!("{rel}: mode {mode:04o}, expected {want:04o}"));
                    }
                    *k
                }
                Name::Staged => {
                    scan.staged.insert(rel.clone());
                    Kind::Cert
                }
                Name::Backup(k) => {
                    scan.backups.insert(rel.clone());
                    *k
                }
            };
            let parsed = match kind {
                Kind::Cert if self.allow_bundles => parse_certs_pem(&bytes).map(|all| {
                    certs.insert(rel.clone(), all[0].clone());
                    cert_spki(&all[0])
                }),
                Kind::Cert => parse_cert_pem(&bytes).map(|der| {
                    certs.insert(rel.clone(), der.clone());
                    cert_spki(&der)
                }),
                Kind::Pub if self.allow_bundles => {
                    let text = String::from_utf8_lossy(&bytes);
                    let mut all = Vec::new();
                    let mut bad = None;
                    for p in x509_parser::pem::Pem::iter_from_buffer(&bytes) {
                        match p {
                            Ok(p) if p.label == "PUBLIC KEY" => {
                                match SubjectPublicKeyInfo::from_der(&p.contents) {
                                    Ok(([], _)) => all.push(p.contents),
                                    _ => bad = Some("bad SubjectPublicKeyInfo".to_string()),
                                }
                            }
                            Ok(p) => {
                                bad = Some(format!("PEM block {}, expected PUBLIC KEY", p.label))
                            }
                            Err(e) => bad = Some(format!("bad PEM: {e:?}")),
                        }
                    }
                    match bad {
                        Some(b) => Err(b),
                        None if all.is_empty() || !text.trim_end().ends_with("-----") => {
                            Err("no complete PUBLIC KEY block".into())
                        }
                        None => {
                            pubs_all.insert(rel.clone(), all.clone());
                            Ok(all[0].clone())
                        }
                    }
                }
                Kind::Key => self.key_spki(&bytes),
                Kind::Pub => {
                    let text = String::from_utf8_lossy(&bytes);
                    x509_parser::pem::parse_x509_pem(&bytes)
                        .map_err(|e| format!("bad PEM: {e:?}"))
                        .and_then(|(_, p)| {
                            if p.label != "PUBLIC KEY" || !text.trim_end().ends_with("-----") {
                                return Err(format!("PEM block {}, expected PUBLIC KEY", p.label));
                            }
                            match SubjectPublicKeyInfo::from_der(&p.contents) {
                                Ok(([], _)) => Ok(p.contents.clone()),
                                _ => Err("bad SubjectPublicKeyInfo".into()),
                            }
                        })
                }
                Kind::Conf => self.conf(&path).and_then(|c| {
                    if cert_spki(&c.cert_der) != c.key_spki {
                        return Err("client key does not match client certificate".into());
                    }
                    if let Some(ca_rel) = &self.kubeconfig_ca {
                        if let Ok(ca) = std::fs::read(root.join(ca_rel)) {
                            let ca = parse_cert_pem(&ca)?;
                            if c.ca_der != ca {
                                return Err(format!("embedded CA is not {ca_rel}"));
                            }
                        }
                        signed_by(&c.cert_der, &c.ca_der)
                            .map_err(|e| format!("client certificate: {e}"))?;
                    }
                    Ok(c.key_spki)
                }),
            };
            match parsed {
                Ok(s) => {
                    spki.insert(rel.clone(), s);
                }
                Err(e) => errs.push(format!("{rel}: does not parse completely: {e}")),
            }
            if self.ca_key_paths.contains(rel) {
                scan.ca_keys.insert(rel.clone(), bytes);
            }
        }
        // Pairs.
        for rel in files.keys() {
            let Some(base) = rel.strip_suffix(".key") else {
                continue;
            };
            let (crt, public) = (format!("{base}.crt"), format!("{base}.pub"));
            let Some(key) = spki.get(rel) else { continue };
            if let Some(other) = spki.get(&public) {
                let listed = pubs_all.get(&public).is_some_and(|all| all.contains(key));
                if other != key && !listed {
                    scan.mismatches.insert(rel.clone());
                    errs.push(format!("{public} does not match {rel}"));
                }
                continue;
            }
            match spki.get(&crt) {
                None if files.contains_key(&crt) => {} // unparsable: reported above
                None => {
                    scan.key_only.insert(rel.clone());
                }
                Some(c) if c == key => {}
                Some(_) => {
                    let staged = format!("{crt}.kpki-new");
                    if spki.get(&staged) == Some(key) {
                        scan.staged_swaps.insert(rel.clone());
                    } else {
                        scan.mismatches.insert(rel.clone());
                        if !self.tolerate_mismatch {
                            errs.push(format!(
                                "{rel} does not match {crt} (and no {staged} matches it)"
                            ));
                        }
                    }
                }
            }
        }
        for rel in files.keys() {
            if let Some((base, stamp)) = rel.split_once(".key.bak-") {
                let crt = format!("{base}.crt.bak-{stamp}");
                if let (Some(k), Some(c)) = (spki.get(rel), spki.get(&crt)) {
                    if k != c {
                        errs.push(format!("backup {rel} does not match {crt}"));
                    }
                }
            }
            let base = rel
                .strip_suffix(".crt.kpki-new")
                .or_else(|| rel.strip_suffix(".crt"));
            if let Some(b) = base {
                let key = format!("{b}.key");
                if self.issuers.contains_key(&format!("{b}.crt")) && !files.contains_key(&key) {
                    errs.push(format!("{rel} exists without {key}"));
                }
            }
            if let Some(b) = rel.strip_suffix(".pub") {
                if !files.contains_key(&format!("{b}.key")) {
                    errs.push(format!("{rel} exists without its private key"));
                }
            }
        }
        // Signatures: every certificate present is signed by the CA certificate present.
        for (rel, der) in &certs {
            let base = rel
                .split_once(".bak-")
                .map(|(b, _)| b.to_string())
                .unwrap_or_else(|| rel.trim_end_matches(".kpki-new").to_string());
            let Some(issuer) = self.issuers.get(&base) else {
                continue;
            };
            let issuer_der = match issuer {
                None => der.clone(),
                Some(ca) => match certs.get(ca) {
                    Some(d) => d.clone(),
                    // a CA outside the scanned root (absolute path)
                    None => match std::fs::read(root.join(ca)).map(|b| parse_cert_pem(&b)) {
                        Ok(Ok(d)) => d,
                        _ => {
                            errs.push(format!("{rel} exists but its CA {ca} does not"));
                            continue;
                        }
                    },
                },
            };
            if let Err(e) = signed_by(der, &issuer_der) {
                errs.push(format!("{rel}: not signed by {issuer:?}: {e}"));
            }
        }
        if errs.is_empty() {
            Ok(scan)
        } else {
            Err(errs)
        }
    }
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (Name, u32)>, errs: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd {
        let p = e.unwrap().path();
        let md = std::fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        if md.is_dir() {
            // A CA rotation's folder (and everything in it) is 0700: it holds CA keys.
            let want = if rel.split('/').any(|c| c == "rotation") {
                0o700
            } else {
                0o755
            };
            if md.mode() & 0o7777 != want {
                errs.push(format!("{rel}/: directory mode {:04o}", md.mode() & 0o7777));
            }
            walk(root, &p, out, errs);
            continue;
        }
        if !md.is_file() {
            errs.push(format!("{rel}: not a regular file"));
            continue;
        }
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        match classify(&name) {
            Some(n) => {
                out.insert(rel, (n, md.mode() & 0o7777));
            }
            None => errs.push(format!("{rel}: a file no kpki write produces")),
        }
    }
}

/// The final-name files of a complete default tree (relative to the kubeconfig dir).
pub fn full_tree() -> BTreeSet<String> {
    let mut s = BTreeSet::new();
    for base in CAS.iter().copied().chain(LEAVES.iter().map(|l| l.path)) {
        s.insert(format!("pki/{base}.crt"));
        s.insert(format!("pki/{base}.key"));
    }
    s.insert("pki/sa.key".into());
    s.insert("pki/sa.pub".into());
    for k in KUBECONFIGS {
        s.insert((*k).to_string());
    }
    s
}

/// The final state after a completed run: everything there, everything matching, and kpki verify
/// plus `openssl verify` (one call per CA) agree.
pub fn assert_complete(chk: &mut Checker, l: &Layout, flags: &[&str]) -> Scan {
    let scan = chk
        .scan(&l.k)
        .unwrap_or_else(|e| panic!("tree after a completed run:\n  {}", e.join("\n  ")));
    let missing: Vec<_> = full_tree().difference(&scan.finals).cloned().collect();
    assert!(
        missing.is_empty(),
        "missing after a completed run: {missing:?}"
    );
    assert!(scan.key_only.is_empty(), "{:?}", scan.key_only);
    assert!(scan.staged_swaps.is_empty(), "{:?}", scan.staged_swaps);
    assert!(scan.staged.is_empty(), "staged left: {:?}", scan.staged);
    let out = kpki(l.args(&["verify"], flags));
    assert_eq!(
        out.status.code(),
        Some(0),
        "kpki verify:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut by_ca: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for leaf in LEAVES {
        by_ca.entry(leaf.ca).or_default().push(
            l.pki
                .join(format!("{}.crt", leaf.path))
                .display()
                .to_string(),
        );
    }
    for (ca, leaves) in by_ca {
        let ca = l.pki.join(format!("{ca}.crt")).display().to_string();
        let mut args = vec!["verify".to_string(), "-CAfile".into(), ca];
        args.extend(leaves);
        openssl(&args);
    }
    scan
}
