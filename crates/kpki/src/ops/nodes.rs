//! Bulk node credentials (`kpki nodes`): a kubelet client kubeconfig and, optionally, a kubelet
//! serving certificate for every node of a list, as the spec's `[node]` section describes them.
//!
//! Large clusters have thousands of nodes, so the list is streamed: [`NodeReader`] yields one
//! `(line, node)` at a time and [`NodeIssuer::issue_all`] works through it in bounded chunks
//! ([`CHUNK`] nodes) on a thread pool, so memory does not grow with the list. Each file is written
//! to a temporary name with its final mode and renamed into place, serving key and certificate
//! first and the kubeconfig last, so a node is complete only when its last file is. A re-run
//! checks what is there (parses it, verifies it chains to the CA and matches the spec and the
//! node) and issues only what is missing or wrong, so an interrupted run is finished by running
//! it again. Files are flushed to disk once at the end (`syncfs`) instead of one `fsync` per
//! file: a file lost to a crash is found invalid and re-issued by the next run.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, Write};
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use time::OffsetDateTime;

use crate::apply::write::ensure_dir;
use crate::disk::read::{read_cert, read_key, Observed};
use crate::disk::read_kubeconfig;
use crate::error::{Error, Result};
use crate::inputs::{parse_ip, InputArgs, Inputs, BACKDATE};
use crate::kubeconfig::{Kubeconfig, Single};
use crate::model::resolve::{resolve_cert, resolve_kubeconfig, CertEntry, KubeconfigEntry, Vars};
use crate::model::spec::{parse_mode, NodeSpec, Spec};
use crate::x509::inspect;
use crate::x509::issue::{cert_pem, effective_key_usages, issue, Issuance, Issuer, Profile};
use crate::x509::keys::PrivateKey;
use crate::Run;

/// Nodes handled per parallel batch: large enough to keep every core busy, small enough that
/// memory stays flat however long the list is.
pub const CHUNK: usize = 256;

/// One node of a nodes file: its name (an RFC 1123 subdomain, lower-cased) and its IPs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Node name (`system:node:<name>`, the serving certificate's DNS SAN).
    pub name: String,
    /// Node IPs (serving certificate IP SANs), canonical, duplicates removed.
    pub ips: Vec<IpAddr>,
}

impl Node {
    /// Validates a name and IP strings as a nodes file gives them.
    pub fn parse<S: AsRef<str>>(name: &str, ips: &[S]) -> std::result::Result<Node, String> {
        let raw = name.trim();
        let name = raw.to_lowercase();
        if name.is_empty() {
            return Err("the node name is empty".into());
        }
        crate::inputs::check_dns_subdomain(&name)
            .map_err(|m| format!("invalid node name {raw:?}: {m}"))?;
        let mut out: Vec<IpAddr> = Vec::new();
        for ip in ips {
            let ip = ip.as_ref().trim();
            let addr = parse_ip(ip).map_err(|m| format!("node {name}: {m}"))?;
            if addr.is_unspecified() || addr.is_multicast() {
                return Err(format!("node {name}: {addr} is not a usable node IP"));
            }
            if !out.contains(&addr) {
                out.push(addr);
            }
        }
        Ok(Node { name, ips: out })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Text,
    Yaml,
}

/// A streaming reader of a nodes file, yielding `(line number, node or error)`.
///
/// Two formats, told apart by the first non-comment line:
/// * text: one node per line, `name[,ip,...]`; `#` starts a comment; blank lines are skipped;
/// * YAML: a list whose items are a name or a mapping `{name: n, ips: [ip, ...]}`
///   (block style, one item starting at each `- ` in the first column).
///
/// A read error ends the iteration; [`NodeReader::take_error`] returns it.
pub struct NodeReader<R> {
    input: R,
    line_no: usize,
    format: Option<Format>,
    /// YAML item being collected: its first line number and text.
    pending: Option<(usize, String)>,
    /// Continuation lines of a YAML item already reported as broken are dropped.
    skip_item: bool,
    /// Parsed entries not yet handed out.
    queue: VecDeque<(usize, std::result::Result<Node, String>)>,
    error: Option<std::io::Error>,
    done: bool,
    origin: PathBuf,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlEntry {
    name: String,
    #[serde(default)]
    ips: Vec<String>,
}

impl<R: BufRead> NodeReader<R> {
    /// Reads nodes from `input`.
    pub fn new(input: R) -> NodeReader<R> {
        NodeReader {
            input,
            line_no: 0,
            format: None,
            pending: None,
            skip_item: false,
            queue: VecDeque::new(),
            error: None,
            done: false,
            origin: PathBuf::from("-"),
        }
    }

    /// Names the input in errors (a path; `-` for standard input).
    pub fn with_origin(mut self, origin: &Path) -> NodeReader<R> {
        self.origin = origin.to_path_buf();
        self
    }

    /// The read error that ended the iteration early, if any.
    pub fn take_error(&mut self) -> Option<std::io::Error> {
        self.error.take()
    }

    /// Next raw line (without the line ending); `None` at the end or on a read error.
    fn raw_line(&mut self) -> Option<std::result::Result<String, String>> {
        let mut buf = Vec::new();
        match self.input.read_until(b'\n', &mut buf) {
            Ok(0) => None,
            Ok(_) => {
                self.line_no += 1;
                while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    buf.pop();
                }
                Some(String::from_utf8(buf).map_err(|_| "the line is not valid UTF-8".into()))
            }
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }

    fn parse_text(line: &str) -> Option<std::result::Result<Node, String>> {
        let content = line.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            return None;
        }
        let mut fields = content.split(',');
        let name = fields.next().unwrap_or("");
        let ips: Vec<&str> = fields.collect();
        if ips.iter().any(|f| f.trim().is_empty()) {
            return Some(Err(format!(
                "{content:?}: empty IP field (expected name[,ip,...])"
            )));
        }
        Some(Node::parse(name, &ips))
    }

    fn parse_yaml_item(text: &str) -> std::result::Result<Node, String> {
        let one = |what: &str, n: usize| format!("expected one list item, found {n} {what}");
        match serde_saphyr::from_str::<Vec<YamlEntry>>(text) {
            Ok(v) if v.len() == 1 => Node::parse(&v[0].name, &v[0].ips),
            Ok(v) => Err(one("entries", v.len())),
            Err(map_err) => {
                if let Ok(v) = serde_saphyr::from_str::<Vec<String>>(text) {
                    return match v.as_slice() {
                        [name] => Node::parse::<&str>(name, &[]),
                        _ => Err(one("names", v.len())),
                    };
                }
                let msg = map_err.to_string();
                let first = msg
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .unwrap_or("");
                Err(format!(
                    "not a node: expected `- name` or `- {{name: n, ips: [ip, ...]}}` ({first})"
                ))
            }
        }
    }
}

fn significant(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && !t.starts_with('#')
}

impl<R: BufRead> NodeReader<R> {
    fn flush_item(&mut self) {
        if let Some((start, text)) = self.pending.take() {
            self.queue.push_back((start, Self::parse_yaml_item(&text)));
        }
    }

    fn feed(&mut self, n: usize, line: std::result::Result<String, String>) {
        let yaml = self.format == Some(Format::Yaml);
        let line = match line {
            Ok(l) => l,
            Err(m) => {
                if yaml {
                    if let Some((start, _)) = self.pending.take() {
                        // The item lost a line: issuing it from the rest could be wrong.
                        self.queue
                            .push_back((start, Err(format!("line {n} of this item: {m}"))));
                        self.skip_item = true;
                        return;
                    }
                }
                self.queue.push_back((n, Err(m)));
                return;
            }
        };
        if self.format.is_none() {
            if !significant(&line) {
                return;
            }
            self.format = Some(if line.starts_with('-') {
                Format::Yaml
            } else {
                Format::Text
            });
        }
        if self.format == Some(Format::Text) {
            if let Some(r) = Self::parse_text(&line) {
                self.queue.push_back((n, r));
            }
            return;
        }
        let indented = line.starts_with([' ', '\t']);
        if line == "-" || line.starts_with("- ") {
            self.flush_item();
            self.skip_item = false;
            self.pending = Some((n, line + "\n"));
        } else if !significant(&line) {
            // Blank and comment lines belong to no item.
        } else if !indented && (line == "---" || line == "...") {
            self.flush_item();
            self.skip_item = false;
        } else if !indented {
            self.flush_item();
            self.skip_item = false;
            self.queue.push_back((
                n,
                Err(format!(
                    "{:?}: expected a YAML list item (`- name` or `- name: n`) in the first column",
                    line.trim()
                )),
            ));
        } else if let Some((_, text)) = &mut self.pending {
            text.push_str(&line);
            text.push('\n');
        } else if !self.skip_item {
            self.queue.push_back((
                n,
                Err(format!(
                    "{:?}: indented line outside a list item",
                    line.trim()
                )),
            ));
        }
    }
}

impl<R: BufRead> Iterator for NodeReader<R> {
    type Item = (usize, std::result::Result<Node, String>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Some(item);
            }
            if self.done {
                return None;
            }
            match self.raw_line() {
                None => {
                    self.done = true;
                    self.flush_item();
                }
                Some(line) => self.feed(self.line_no, line),
            }
        }
    }
}

/// Stand-ins for cluster inputs that per-node credentials never read.
const UNUSED_ADVERTISE_ADDRESS: &str = "192.0.2.1";
const UNUSED_NODE_NAME: &str = "kpki-nodes";

/// Resolves the cluster inputs for node credentials (cert dir, server, cluster name, key
/// algorithm, validity) from kubeadm's flags and config.
///
/// The node name is per node, so it is not required. The key algorithm is the flag's or the
/// config's, else the CA key's (an ECDSA cluster's nodes get ECDSA keys), else RSA-2048. The advertise address is required only
/// when the server URL needs it: the spec's node kubeconfig uses `server = "local"`, or no
/// control-plane endpoint is set.
pub fn node_inputs(spec: &Spec, args: &InputArgs) -> Result<Inputs> {
    let cfg = crate::inputs::load_config(args.config.as_deref())?;
    let node = node_spec(spec)?;
    let has_endpoint = args
        .control_plane_endpoint
        .as_ref()
        .or(cfg.control_plane_endpoint.as_ref())
        .is_some_and(|e| !e.trim().is_empty());
    let mut args = args.clone();
    if args.advertise_address.is_none() && cfg.advertise_address.is_none() {
        if has_endpoint && node.kubeconfig.server == "control_plane" {
            args.advertise_address = Some(UNUSED_ADVERTISE_ADDRESS.into());
        } else {
            return Err(Error::input(
                "--control-plane-endpoint",
                "the API server URL for the node kubeconfigs is unknown: give \
                 --control-plane-endpoint or --apiserver-advertise-address, or a --config that sets one",
            ));
        }
    }
    if args.node_name.is_none() && cfg.node_name.is_none() {
        args.node_name = Some(UNUSED_NODE_NAME.into());
    }
    let explicit_algorithm = args.encryption_algorithm.is_some()
        || cfg
            .encryption_algorithm
            .as_deref()
            .is_some_and(|a| !a.is_empty())
        || cfg.public_keys_ecdsa.is_some();
    let mut inputs = Inputs::resolve(&args, &cfg)?;
    if !explicit_algorithm {
        // Nodes of an ECDSA cluster get ECDSA keys unless told otherwise.
        let ca_algorithm = spec
            .ca(&node.kubeconfig.ca)
            .map(|ca| inputs.cert_dir.join(format!("{}.crt", ca.path)))
            .and_then(|p| read_cert(&p).present().cloned())
            .and_then(|c| inspect::info(&c.der).ok())
            .and_then(|i| crate::x509::keys::algorithm_of_spki(&i.spki).ok());
        if let Some(a) = ca_algorithm {
            inputs.key_algorithm = a;
        }
    }
    Ok(inputs)
}

fn node_spec(spec: &Spec) -> Result<&NodeSpec> {
    spec.node.as_ref().ok_or_else(|| Error::Spec {
        origin: "spec".into(),
        entry: "node".into(),
        message: "the spec has no [node] section, so it does not say what a node gets".into(),
    })
}

/// A CA loaded from the cert dir, ready to sign.
struct CaMaterial {
    cert_der: Vec<u8>,
    cert_pem: String,
    key: PrivateKey,
}

fn load_ca(spec: &Spec, name: &str, cert_dir: &Path) -> Result<CaMaterial> {
    let ca = spec.ca(name).ok_or_else(|| Error::Spec {
        origin: "spec".into(),
        entry: "node".into(),
        message: format!("unknown CA {name:?}"),
    })?;
    let cert_path = cert_dir.join(format!("{}.crt", ca.path));
    let key_path = cert_dir.join(format!("{}.key", ca.path));
    let cert = match read_cert(&cert_path) {
        Observed::Present(c) => c,
        Observed::Missing => {
            return Err(Error::file(
                &cert_path,
                "the CA certificate is missing (run kpki init first, or pass --cert-dir)",
            ))
        }
        Observed::Invalid(m) => return Err(Error::file(&cert_path, m)),
    };
    let key = match read_key(&key_path) {
        Observed::Present(k) => k.key,
        Observed::Missing => {
            return Err(Error::file(
                &key_path,
                "the CA key is missing; node credentials are signed with it",
            ))
        }
        Observed::Invalid(m) => return Err(Error::file(&key_path, m)),
    };
    let info = inspect::info(&cert.der).map_err(|m| Error::file(&cert_path, m))?;
    if !key.matches_spki(&info.spki) {
        return Err(Error::file(
            &key_path,
            format!("does not belong to {}", cert_path.display()),
        ));
    }
    if !info.is_ca {
        return Err(Error::file(
            &cert_path,
            "is not a CA certificate (basicConstraints CA:FALSE)",
        ));
    }
    Ok(CaMaterial {
        cert_pem: cert_pem(&cert.der),
        cert_der: cert.der,
        key,
    })
}

/// The credentials one node gets, resolved from the spec: where they go and what they say.
#[derive(Debug, Clone)]
pub struct NodeCredentials {
    /// The kubelet client kubeconfig.
    pub kubeconfig: KubeconfigEntry,
    /// The kubelet serving certificate (`--serving`).
    pub serving: Option<CertEntry>,
}

/// What is on disk for one credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Not there.
    Missing,
    /// There, complete, and what the spec and the node ask for.
    Valid,
    /// Partly there, as an interrupted run leaves it (a key without its certificate): issued
    /// again, and not counted as a replacement.
    Incomplete(String),
    /// There but wrong (the message says why).
    Invalid(String),
}

/// What happened to one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeStatus {
    /// Every credential was already there and valid; nothing was written.
    UpToDate,
    /// Missing credentials were issued (a new node, or the rest of an interrupted one).
    Issued,
    /// At least one credential on disk was invalid and was issued again.
    Replaced,
}

/// What [`NodeIssuer::issue`] did for one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeOutcome {
    /// Overall result.
    pub status: NodeStatus,
    /// Files written, in order (serving key, serving certificate, kubeconfig).
    pub written: Vec<PathBuf>,
    /// Credentials replaced and why (`file: reason`).
    pub replaced: Vec<String>,
}

/// The outcome for one line of the nodes file.
#[derive(Debug, Clone)]
pub struct NodeReport {
    /// Line number in the nodes file (1-based; a YAML item's first line).
    pub line: usize,
    /// Node name, when the line named a valid one.
    pub name: Option<String>,
    /// What happened, or why the line failed.
    pub result: std::result::Result<NodeStatus, String>,
    /// Files written, in order.
    pub written: Vec<PathBuf>,
    /// Credentials replaced and why (`file: reason`).
    pub replaced: Vec<String>,
}

/// A line that could not be done.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LineError {
    /// Line number in the nodes file.
    pub line: usize,
    /// Node name, when known.
    pub name: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// Totals of a bulk run.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Lines with a node or an error (comments and blank lines not counted).
    pub lines: usize,
    /// Nodes whose credentials were all there already.
    pub up_to_date: usize,
    /// Nodes that got missing credentials.
    pub issued: usize,
    /// Nodes with at least one invalid credential issued again.
    pub replaced: usize,
    /// Files written.
    pub files_written: usize,
    /// Lines that failed, in line order.
    pub failed: Vec<LineError>,
}

/// Observer of a bulk run (the CLI's progress bar and messages). The library prints nothing.
pub trait Progress: Sync {
    /// One line is finished. Called from worker threads, in any order, as soon as it happens.
    fn tick(&self) {}
    /// The report of one line. Called from the calling thread, in line order, after each chunk.
    fn report(&self, _report: &NodeReport) {}
}

/// A [`Progress`] that observes nothing.
pub struct NoProgress;
impl Progress for NoProgress {}

/// Issues node credentials with a CA from the cert dir, as the spec's `[node]` section says.
pub struct NodeIssuer {
    /// How long [`NodeIssuer::issue_all`] waits for another kpki process holding the output
    /// directory's lock (`--lock-timeout`; default 10 s).
    pub lock_timeout: std::time::Duration,
    /// Write even into an output directory that group or others can write to
    /// (`--allow-insecure-dir`).
    pub allow_insecure_dir: bool,
    spec: Spec,
    node: NodeSpec,
    inputs: Inputs,
    out_dir: PathBuf,
    serving: bool,
    cas: HashMap<String, CaMaterial>,
    key_mode: u32,
    cert_mode: u32,
    kubeconfig_mode: u32,
    dir_mode: u32,
}

impl std::fmt::Debug for NodeIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeIssuer")
            .field("out_dir", &self.out_dir)
            .field("serving", &self.serving)
            .finish_non_exhaustive()
    }
}

impl NodeIssuer {
    /// Loads the signing CA(s) from `inputs.cert_dir`. Writes go under `out_dir`; with `serving`,
    /// nodes also get the spec's serving certificate (the spec must have one).
    pub fn new(spec: &Spec, inputs: Inputs, out_dir: &Path, serving: bool) -> Result<NodeIssuer> {
        let node = node_spec(spec)?.clone();
        if serving && node.serving.is_none() {
            return Err(Error::Spec {
                origin: "spec".into(),
                entry: "node".into(),
                message: "--serving needs a [node.serving] section in the spec".into(),
            });
        }
        let mut cas = HashMap::new();
        let mut names = vec![node.kubeconfig.ca.clone()];
        if let (true, Some(s)) = (serving, &node.serving) {
            names.push(s.ca.clone().unwrap_or_default());
        }
        for n in names {
            if let std::collections::hash_map::Entry::Vacant(v) = cas.entry(n) {
                let m = load_ca(spec, v.key(), &inputs.cert_dir)?;
                v.insert(m);
            }
        }
        let d = &spec.defaults;
        let mode = |s: &str| parse_mode(s).unwrap_or(0o600); // validated at spec load
        Ok(NodeIssuer {
            lock_timeout: std::time::Duration::from_secs(10),
            allow_insecure_dir: false,
            spec: spec.clone(),
            node,
            out_dir: out_dir.to_path_buf(),
            serving,
            cas,
            key_mode: mode(&d.key_mode),
            cert_mode: mode(&d.cert_mode),
            kubeconfig_mode: mode(&d.kubeconfig_mode),
            dir_mode: mode(&d.dir_mode),
            inputs,
        })
    }

    /// Where the credentials of `node` go and what they must say.
    pub fn credentials(&self, node: &Node) -> Result<NodeCredentials> {
        let mut vars = Vars::from_inputs(&self.inputs);
        vars.set("node_name", node.name.clone());
        vars.set_list("node_ips", node.ips.iter().map(|i| i.to_string()).collect());
        let kubeconfig = resolve_kubeconfig(
            &self.spec,
            &self.node.kubeconfig,
            &vars,
            &self.inputs,
            &self.out_dir,
        )?;
        let serving = match (&self.node.serving, self.serving) {
            (Some(s), true) => Some(resolve_cert(
                &self.spec,
                s,
                false,
                &vars,
                &self.inputs,
                &self.out_dir,
            )?),
            _ => None,
        };
        Ok(NodeCredentials {
            kubeconfig,
            serving,
        })
    }

    fn ca(&self, name: &str) -> Result<&CaMaterial> {
        self.cas
            .get(name)
            .ok_or_else(|| Error::crypto(name.to_string(), "CA not loaded"))
    }

    /// Checks the node kubeconfig on disk against the spec, the node and the CA.
    pub fn check_kubeconfig(&self, k: &KubeconfigEntry, now: OffsetDateTime) -> State {
        let file = match read_kubeconfig(&k.path) {
            Observed::Missing => return State::Missing,
            Observed::Invalid(m) => return State::Invalid(m),
            Observed::Present(f) => f,
        };
        let check = || -> std::result::Result<(), String> {
            let ca = self.ca(&k.ca).map_err(|e| e.to_string())?;
            if file.mode != self.kubeconfig_mode {
                return Err(format!(
                    "mode {:04o}, expected {:04o}",
                    file.mode, self.kubeconfig_mode
                ));
            }
            if file.server != k.server {
                return Err(format!("server is {}, expected {}", file.server, k.server));
            }
            let cur = file.config.current()?;
            if cur.cluster_name != k.cluster_name {
                return Err(format!(
                    "cluster is {:?}, expected {:?}",
                    cur.cluster_name, k.cluster_name
                ));
            }
            if file.ca_der.as_deref() != Some(ca.cert_der.as_slice()) {
                return Err("the embedded CA is not the CA in the cert dir".into());
            }
            let cert = file
                .cert_der
                .as_ref()
                .ok_or("no embedded client certificate")?;
            let key = file.key.as_ref().ok_or("no embedded client key")?;
            check_cert(cert, key, &ca.cert_der, &k.profile, k.algorithm, now)
        };
        match check() {
            Ok(()) => State::Valid,
            Err(m) => State::Invalid(m),
        }
    }

    /// Checks a serving certificate and key on disk against the spec, the node and the CA.
    pub fn check_serving(&self, c: &CertEntry, now: OffsetDateTime) -> State {
        let cert = read_cert(&c.cert_path);
        let key = read_key(&c.key_path);
        let (cert, key) = match (cert, key) {
            (Observed::Missing, Observed::Missing) => return State::Missing,
            (Observed::Invalid(m), _) => return State::Invalid(format!("certificate: {m}")),
            (_, Observed::Invalid(m)) => return State::Invalid(format!("key: {m}")),
            (Observed::Missing, _) => {
                return State::Incomplete("the certificate is missing".into())
            }
            (_, Observed::Missing) => return State::Incomplete("the key is missing".into()),
            (Observed::Present(c), Observed::Present(k)) => (c, k),
        };
        let check = || -> std::result::Result<(), String> {
            if key.mode != self.key_mode {
                return Err(format!(
                    "key mode {:04o}, expected {:04o}",
                    key.mode, self.key_mode
                ));
            }
            if cert.mode != self.cert_mode {
                return Err(format!(
                    "certificate mode {:04o}, expected {:04o}",
                    cert.mode, self.cert_mode
                ));
            }
            let ca = self
                .ca(c.ca.as_deref().unwrap_or_default())
                .map_err(|e| e.to_string())?;
            check_cert(
                &cert.der,
                &key.key,
                &ca.cert_der,
                &c.profile,
                c.algorithm,
                now,
            )?;
            let info = inspect::info(&cert.der)?;
            let missing = inspect::missing_sans(&info, &c.profile.dns, &c.profile.ips);
            let extra = inspect::extra_sans(&info, &c.profile.dns, &c.profile.ips);
            if !missing.is_empty() || !extra.is_empty() {
                return Err(format!(
                    "SANs differ (missing: [{}], extra: [{}])",
                    missing.join(", "),
                    extra.join(", ")
                ));
            }
            Ok(())
        };
        match check() {
            Ok(()) => State::Valid,
            Err(m) => State::Invalid(m),
        }
    }

    /// Issues what `node` is missing (or has wrong) and leaves the rest alone.
    /// Serving key and certificate are written before the kubeconfig.
    pub fn issue(&self, node: &Node, run: &Run<'_>) -> Result<NodeOutcome> {
        let creds = self.credentials(node)?;
        let mut written = Vec::new();
        let mut replaced = Vec::new();
        let mut made = Vec::new();
        let issuance = |validity: time::Duration| -> Result<Issuance> {
            Ok(Issuance {
                not_before: run.now - BACKDATE,
                not_after: run.now + validity,
                serial: run.entropy.serial()?,
            })
        };
        if let Some(c) = &creds.serving {
            // A run killed mid-replacement left `<crt>.kpki-new`: finish or undo it first.
            crate::apply::recover_pair(&c.cert_path, &c.key_path)?;
            let state = self.check_serving(c, run.now);
            if state != State::Valid {
                if let State::Invalid(m) = &state {
                    replaced.push(format!("{}: {m}", c.cert_path.display()));
                }
                let ca = self.ca(c.ca.as_deref().unwrap_or_default())?;
                let key = run.entropy.key(c.algorithm)?;
                let der = issue(
                    &c.profile,
                    &key,
                    Some(Issuer {
                        cert_der: &ca.cert_der,
                        key: &ca.key,
                    }),
                    issuance(c.validity)?,
                )?;
                let fresh = state == State::Missing;
                if fresh {
                    self.write(
                        &c.key_path,
                        key.pem().as_bytes(),
                        self.key_mode,
                        fresh,
                        &mut made,
                    )?;
                    self.write(
                        &c.cert_path,
                        cert_pem(&der).as_bytes(),
                        self.cert_mode,
                        fresh,
                        &mut made,
                    )?;
                } else {
                    // Replacing a pair: stage the cert, swap the key, move the cert in (as renew
                    // does), so a kill never leaves a key beside a cert it does not match.
                    let staged = crate::apply::staged_path(&c.cert_path);
                    // The cert is not written under its own temp name on this path: drop one a
                    // killed fresh write left (the output lock rules out a live writer).
                    if let (Some(dir), Some(name)) = (c.cert_path.parent(), c.cert_path.file_name())
                    {
                        let _ = std::fs::remove_file(
                            dir.join(format!(".{}.kpki-tmp", name.to_string_lossy())),
                        );
                    }
                    self.write(
                        &staged,
                        cert_pem(&der).as_bytes(),
                        self.cert_mode,
                        true,
                        &mut made,
                    )?;
                    self.write(
                        &c.key_path,
                        key.pem().as_bytes(),
                        self.key_mode,
                        fresh,
                        &mut made,
                    )?;
                    std::fs::rename(&staged, &c.cert_path)
                        .map_err(|e| Error::file(&c.cert_path, e))?;
                }
                written.push(c.key_path.clone());
                written.push(c.cert_path.clone());
            }
        }
        let k = &creds.kubeconfig;
        let state = self.check_kubeconfig(k, run.now);
        if state != State::Valid {
            if let State::Invalid(m) = &state {
                replaced.push(format!("{}: {m}", k.path.display()));
            }
            let ca = self.ca(&k.ca)?;
            let key = run.entropy.key(k.algorithm)?;
            let der = issue(
                &k.profile,
                &key,
                Some(Issuer {
                    cert_der: &ca.cert_der,
                    key: &ca.key,
                }),
                issuance(k.validity)?,
            )?;
            let cfg = Kubeconfig::single(Single {
                cluster_name: &k.cluster_name,
                server: &k.server,
                ca_pem: Some(&ca.cert_pem),
                user: &k.profile.cn,
                auth: Kubeconfig::cert_auth(&cert_pem(&der), key.pem()),
            });
            let yaml = cfg.to_yaml().map_err(|m| Error::file(&k.path, m))?;
            let fresh = state == State::Missing;
            self.write(
                &k.path,
                yaml.as_bytes(),
                self.kubeconfig_mode,
                fresh,
                &mut made,
            )?;
            written.push(k.path.clone());
        }
        let status = if !replaced.is_empty() {
            NodeStatus::Replaced
        } else if written.is_empty() {
            NodeStatus::UpToDate
        } else {
            NodeStatus::Issued
        };
        Ok(NodeOutcome {
            status,
            written,
            replaced,
        })
    }

    /// Writes `data` under a fixed temporary name (`.<file>.kpki-tmp`, created exclusively with
    /// the final mode, replacing a leftover of an interrupted run) and renames it into place.
    /// No fsync here: [`NodeIssuer::issue_all`] flushes the file system once at the end.
    ///
    /// `fresh`: the check just found nothing at `path`, so the link/directory check is skipped (a
    /// rename replaces a link that appeared since rather than writing through it). `made` lists
    /// directories already ensured for this node, to skip looking at them again.
    fn write(
        &self,
        path: &Path,
        data: &[u8],
        mode: u32,
        fresh: bool,
        made: &mut Vec<PathBuf>,
    ) -> Result<()> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if !made.iter().any(|d| d == dir) {
            ensure_dir(dir, self.dir_mode)?;
            made.push(dir.to_path_buf());
        }
        if !fresh {
            if let Ok(m) = std::fs::symlink_metadata(path) {
                if m.file_type().is_symlink() {
                    return Err(Error::file(
                        path,
                        "is a symbolic link; kpki does not write through links",
                    ));
                }
                if m.is_dir() {
                    return Err(Error::file(path, "is a directory, expected a file"));
                }
            }
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.kpki-tmp"));
        let create = || {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode & 0o600)
                .open(&tmp)
        };
        let mut f = match create() {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // Left by an interrupted run (the output lock rules out a live one).
                std::fs::remove_file(&tmp).map_err(|e| {
                    Error::file(
                        &tmp,
                        format!("cannot remove a leftover temporary file: {e}"),
                    )
                })?;
                create()
            }
            other => other,
        }
        .map_err(|e| Error::file(&tmp, format!("cannot create a temporary file: {e}")))?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::file(&tmp, e))?;
        f.write_all(data).map_err(|e| Error::file(&tmp, e))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| Error::file(path, e))
    }

    /// Issues credentials for every node `reader` yields, [`CHUNK`] lines at a time in parallel
    /// (`run.jobs` threads, 0 = one per core). Bad lines and failed nodes are reported and
    /// counted, and the rest still get done. A duplicate name is an error on its later line.
    /// Holds an exclusive lock on the output directory while it works (a second kpki waits up
    /// to `lock_timeout`), so two runs never write the same node at once. Ends with one flush of
    /// the output file system. An unreadable list, an output directory others can write to, or a
    /// lock not obtained is an error; everything else is in the summary.
    pub fn issue_all<R: BufRead>(
        &self,
        reader: &mut NodeReader<R>,
        run: &Run<'_>,
        progress: &dyn Progress,
    ) -> Result<Summary> {
        if !self.allow_insecure_dir {
            crate::apply::write::check_dir_secure(&self.out_dir)?;
        }
        let _lock = crate::apply::write::lock_dir(&self.out_dir, self.dir_mode, self.lock_timeout)?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(run.jobs)
            .build()
            .map_err(|e| Error::crypto("starting worker threads", e))?;
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut summary = Summary::default();
        loop {
            let mut chunk: Vec<(usize, std::result::Result<Node, String>)> =
                reader.by_ref().take(CHUNK).collect();
            if chunk.is_empty() {
                break;
            }
            for (line, node) in &mut chunk {
                if let Ok(n) = node {
                    if let Some(first) = seen.get(&n.name) {
                        *node = Err(format!(
                            "node {} is listed twice (first on line {first})",
                            n.name
                        ));
                    } else {
                        seen.insert(n.name.clone(), *line);
                    }
                }
            }
            let reports: Vec<NodeReport> = pool.install(|| {
                chunk
                    .into_par_iter()
                    .map(|(line, node)| {
                        let r = match node {
                            Err(m) => NodeReport {
                                line,
                                name: None,
                                result: Err(m),
                                written: vec![],
                                replaced: vec![],
                            },
                            Ok(n) => match self.issue(&n, run) {
                                Ok(NodeOutcome {
                                    status,
                                    written,
                                    replaced,
                                }) => NodeReport {
                                    line,
                                    name: Some(n.name),
                                    result: Ok(status),
                                    written,
                                    replaced,
                                },
                                Err(e) => NodeReport {
                                    line,
                                    name: Some(n.name),
                                    result: Err(e.to_string()),
                                    written: vec![],
                                    replaced: vec![],
                                },
                            },
                        };
                        progress.tick();
                        r
                    })
                    .collect()
            });
            for r in &reports {
                summary.lines += 1;
                summary.files_written += r.written.len();
                match &r.result {
                    Ok(NodeStatus::UpToDate) => summary.up_to_date += 1,
                    Ok(NodeStatus::Issued) => summary.issued += 1,
                    Ok(NodeStatus::Replaced) => summary.replaced += 1,
                    Err(m) => summary.failed.push(LineError {
                        line: r.line,
                        name: r.name.clone(),
                        message: m.clone(),
                    }),
                }
                progress.report(r);
            }
        }
        let read_error = reader.take_error();
        if summary.files_written > 0 {
            let dir =
                std::fs::File::open(&self.out_dir).map_err(|e| Error::file(&self.out_dir, e))?;
            rustix::fs::syncfs(&dir)
                .map_err(|e| Error::file(&self.out_dir, format!("flushing to disk: {e}")))?;
        }
        if let Some(e) = read_error {
            return Err(Error::file(
                &reader.origin,
                format!("read error after line {}: {e}", reader.line_no),
            ));
        }
        Ok(summary)
    }
}

/// The checks a credential's certificate must pass to be kept.
fn check_cert(
    cert_der: &[u8],
    key: &PrivateKey,
    ca_der: &[u8],
    want: &Profile,
    algorithm: crate::x509::keys::KeyAlgorithm,
    now: OffsetDateTime,
) -> std::result::Result<(), String> {
    let info = inspect::info(cert_der)?;
    if !key.matches_spki(&info.spki) {
        return Err("the key does not belong to the certificate".into());
    }
    inspect::signed_by(cert_der, ca_der)?;
    if key.algorithm() != algorithm {
        return Err(format!("key is {}, expected {algorithm}", key.algorithm()));
    }
    if info.not_after <= now {
        return Err(format!(
            "expired at {}",
            crate::assess::fmt_time(info.not_after)
        ));
    }
    if info.not_before > now {
        return Err(format!(
            "not valid before {}",
            crate::assess::fmt_time(info.not_before)
        ));
    }
    if info.cn != [want.cn.clone()] {
        return Err(format!(
            "CN is {:?}, expected {:?}",
            info.cn.join(","),
            want.cn
        ));
    }
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    if sorted(&info.orgs) != sorted(&want.orgs) {
        return Err(format!("O is {:?}, expected {:?}", info.orgs, want.orgs));
    }
    let ku = effective_key_usages(&want.key_usages, algorithm.is_ec());
    if sorted(&info.key_usages) != sorted(&ku) {
        return Err(format!(
            "key usages are {:?}, expected {ku:?}",
            info.key_usages
        ));
    }
    if sorted(&info.ext_key_usages) != sorted(&want.ext_key_usages) {
        return Err(format!(
            "extended key usages are {:?}, expected {:?}",
            info.ext_key_usages, want.ext_key_usages
        ));
    }
    if info.is_ca {
        return Err("is a CA certificate".into());
    }
    Ok(())
}

/// Reads a nodes file (`-` = standard input) for [`NodeIssuer::issue_all`].
pub fn open_nodes(path: &Path) -> Result<NodeReader<Box<dyn BufRead>>> {
    let input: Box<dyn BufRead> = if path == Path::new("-") {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        let f = std::fs::File::open(path).map_err(|e| Error::file(path, e))?;
        if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
            return Err(Error::file(path, "is a directory, expected a nodes file"));
        }
        Box::new(std::io::BufReader::new(f))
    };
    Ok(NodeReader::new(input).with_origin(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &[u8]) -> Vec<(usize, std::result::Result<Node, String>)> {
        NodeReader::new(text).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn text_lines_with_comments_and_errors_keep_their_numbers() {
        let got = read(
            b"# c\n\nn1,10.0.0.1, fd00::1 \r\nN2 # x\nbad name\nn3,10.0.0.1,10.0.0.1\nn4,\n\xff\n",
        );
        assert_eq!(got.len(), 6, "{got:?}");
        assert_eq!(
            got[0],
            (
                3,
                Ok(Node {
                    name: "n1".into(),
                    ips: vec![ip("10.0.0.1"), ip("fd00::1")]
                })
            )
        );
        assert_eq!(
            got[1],
            (
                4,
                Ok(Node {
                    name: "n2".into(),
                    ips: vec![]
                })
            )
        );
        assert!(
            matches!(&got[2], (5, Err(m)) if m.contains("bad name")),
            "{got:?}"
        );
        assert_eq!(got[3].1.as_ref().map(|n| n.ips.len()), Ok(1));
        assert!(
            matches!(&got[4], (7, Err(m)) if m.contains("empty IP")),
            "{got:?}"
        );
        assert!(
            matches!(&got[5], (8, Err(m)) if m.contains("UTF-8")),
            "{got:?}"
        );
    }

    #[test]
    fn unusable_ips_are_refused() {
        assert!(Node::parse("n", &["0.0.0.0"]).is_err());
        assert!(Node::parse("n", &["224.0.0.1"]).is_err());
        assert!(Node::parse("n", &["::ffff:10.0.0.1"]).is_ok_and(|n| n.ips == [ip("10.0.0.1")]));
        assert!(Node::parse("", &[""; 0]).is_err());
    }

    #[test]
    fn yaml_items_and_stray_lines() {
        let got = read(b"---\n- a\n# c\n- name: b\n  ips:\n    - 10.0.0.2\nkey: v\n  indented\n- {name: c}\n...\n");
        assert_eq!(got.len(), 5, "{got:?}");
        assert_eq!(
            got[0],
            (
                2,
                Ok(Node {
                    name: "a".into(),
                    ips: vec![]
                })
            )
        );
        assert_eq!(
            got[1],
            (
                4,
                Ok(Node {
                    name: "b".into(),
                    ips: vec![ip("10.0.0.2")]
                })
            )
        );
        assert!(
            matches!(&got[2], (7, Err(m)) if m.contains("expected a YAML list item")),
            "{got:?}"
        );
        assert!(
            matches!(&got[3], (8, Err(m)) if m.contains("outside a list item")),
            "{got:?}"
        );
        assert_eq!(
            got[4],
            (
                9,
                Ok(Node {
                    name: "c".into(),
                    ips: vec![]
                })
            )
        );
    }

    #[test]
    fn read_errors_end_the_stream_and_are_kept() {
        struct Failing(usize);
        impl std::io::Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0 == 0 {
                    return Err(std::io::Error::other("disk on fire"));
                }
                self.0 = 0;
                buf[..3].copy_from_slice(b"a\nb");
                Ok(3)
            }
        }
        let mut r = NodeReader::new(std::io::BufReader::new(Failing(1)));
        let got: Vec<_> = r.by_ref().collect();
        assert_eq!(got.len(), 1);
        assert!(r
            .take_error()
            .is_some_and(|e| e.to_string().contains("fire")));
    }
}
