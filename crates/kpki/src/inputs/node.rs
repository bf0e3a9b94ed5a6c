//! The node as a source of inputs: its static Pod manifests and kubelet configuration.
//!
//! On a kubeadm control-plane node the cluster inputs are already on disk: the manifests in
//! `/etc/kubernetes/manifests` carry the advertise address, bind port, service CIDR, etcd's name
//! and URLs, the image tag (the Kubernetes version) and a path for every certificate, key and CA
//! file each component reads; `/var/lib/kubelet/config.yaml` carries the cluster domain and the
//! kubelet's client CA. This module reads them (bounded: a file over [`crate::limits::MAX_NODE_FILE`] is a
//! finding, not a read) and turns them into inputs that come after flags and `--config` and
//! before the existing tree (`inputs::discover`).
//!
//! Which manifests are read: with `--root DIR` the node under DIR; with `--manifests-dir` that
//! directory; otherwise this host's `/etc/kubernetes/manifests`, but only when no cert dir is
//! given or the manifests name the given one, so that `verify --cert-dir ./pki` on a real node
//! never mixes the node's settings into an unrelated tree. The kubelet config is read with
//! `--kubelet-config`, with `--root`, or beside this host's manifests when those are used.
//!
//! Like the kubelet, every file of the manifests directory that does not start with `.` is a
//! manifest, YAML or JSON. A component is a static Pod's first container, named by its command
//! (`kube-apiserver`); flags are read from its command and args in both `--flag=value` and
//! `--flag value` forms (clap's lexer; the last occurrence wins, as with Go's pflag). Manifests of
//! components kpki knows nothing about (a kube-vip or haproxy Pod) are ignored.
//!
//! The cert and kubeconfig directories are read through the spec's `read_by` column: a flag the
//! table says names `apiserver.crt` and whose value is `/etc/kubernetes/pki/apiserver.crt` says
//! the cert dir is `/etc/kubernetes/pki`. The few other inputs are kubeadm's own flags as the
//! components show them ([`FLAG_INPUTS`]).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::assess::{Code, Finding, Remedy};
use crate::disk::read::Observed;
use crate::error::{Error, Result};
use crate::inputs::config::KubeadmConfig;
use crate::inputs::discover::Discovery;
use crate::inputs::origin::Origin;
use crate::inputs::root::Root;
use crate::inputs::InputArgs;
use crate::model::readers::{Role, KUBELET};
use crate::model::resolve::Entry;
use crate::model::spec::Spec;

/// kubeadm's static Pod directory.
pub const DEFAULT_MANIFESTS_DIR: &str = "/etc/kubernetes/manifests";
/// kubeadm's kubelet configuration file.
pub const DEFAULT_KUBELET_CONFIG: &str = "/var/lib/kubelet/config.yaml";
/// The most files of the manifests directory looked at (sorted by name).
pub const MAX_MANIFESTS: usize = 64;

/// kubeadm inputs as the components' flags show them: (input, component, component flag). The
/// files each component reads are the spec's `read_by` column, not listed here.
pub const FLAG_INPUTS: &[(&str, &str, &str)] = &[
    (
        "--apiserver-advertise-address",
        "kube-apiserver",
        "--advertise-address",
    ),
    ("--apiserver-bind-port", "kube-apiserver", "--secure-port"),
    (
        "--service-cidr",
        "kube-apiserver",
        "--service-cluster-ip-range",
    ),
    (
        "--service-cidr",
        "kube-controller-manager",
        "--service-cluster-ip-range",
    ),
    ("--node-name", "etcd", "--name"),
    (
        "--cluster-name",
        "kube-controller-manager",
        "--cluster-name",
    ),
];

/// kubeadm inputs as the kubelet configuration shows them: (input, field).
pub const FIELD_INPUTS: &[(&str, &str)] = &[("--service-dns-domain", "clusterDomain")];

/// The component whose image tag is the Kubernetes version (kubeadm tags every control-plane
/// image with it).
pub const VERSION_FROM: &str = "kube-apiserver";

/// Values shown among the inputs (not inputs of the spec): (row, component, flag).
pub const SHOWN: &[(&str, &str, &str)] = &[
    ("etcd_client_urls", "etcd", "--advertise-client-urls"),
    ("etcd_peer_urls", "etcd", "--initial-advertise-peer-urls"),
];

/// One static Pod manifest, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The file, as read on this machine.
    pub file: PathBuf,
    /// The component: the first container's command name (its container name without one).
    pub component: String,
    /// The first container's image.
    pub image: Option<String>,
    /// `(--flag, value)` in command-line order; a flag without a value has `""`.
    pub flags: Vec<(String, String)>,
}

impl Manifest {
    /// Every value given to `flag`, in order.
    pub fn all<'a>(&'a self, flag: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.flags
            .iter()
            .filter(move |(f, _)| f == flag)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `flag` (the last one given, as Go's pflag keeps).
    pub fn get(&self, flag: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(f, _)| f == flag)
            .map(|(_, v)| v.as_str())
    }

    /// The image tag (`v1.28.4` of `registry.k8s.io/kube-apiserver:v1.28.4`), digest dropped.
    pub fn image_tag(&self) -> Option<&str> {
        let image = self.image.as_deref()?;
        let image = image.split('@').next().unwrap_or(image);
        let last = image.rsplit('/').next().unwrap_or(image);
        last.split_once(':')
            .map(|(_, t)| t)
            .filter(|t| !t.is_empty())
    }
}

/// The kubelet configuration, as read: its scalar fields by dotted path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletConfig {
    /// The file, as read on this machine.
    pub file: PathBuf,
    /// `authentication.x509.clientCAFile` -> value (booleans and numbers as text).
    pub fields: BTreeMap<String, String>,
}

/// What the node says about one setting of one component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting<'a> {
    /// The node has no manifest (or kubelet config) for the component.
    NoSource,
    /// The component does not set it.
    Absent {
        /// The manifest or kubelet config.
        file: &'a Path,
    },
    /// The component sets it.
    Value {
        /// The manifest or kubelet config.
        file: &'a Path,
        /// The value as written.
        value: String,
    },
}

/// What was read from the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `--root`, for every path the node's files name.
    pub root: Root,
    /// The manifests directory, as read (`None`: not read).
    pub manifests_dir: Option<PathBuf>,
    /// The manifests of known components, one per component, in file-name order.
    pub manifests: Vec<Manifest>,
    /// The kubelet configuration, when read.
    pub kubelet: Option<KubeletConfig>,
    /// Files that could not be used (not YAML, too large, no command, a second manifest for a
    /// component): findings, never errors.
    pub problems: Vec<Finding>,
}

impl Node {
    /// The manifest of a component.
    pub fn manifest(&self, component: &str) -> Option<&Manifest> {
        self.manifests.iter().find(|m| m.component == component)
    }

    /// The file a component's settings come from, if the node has one.
    pub fn source(&self, by: &str) -> Option<&Path> {
        if by == KUBELET {
            self.kubelet.as_ref().map(|k| k.file.as_path())
        } else {
            self.manifest(by).map(|m| m.file.as_path())
        }
    }

    /// One setting: a flag of a static Pod, or a field of the kubelet configuration.
    pub fn setting(&self, by: &str, reference: &str) -> Setting<'_> {
        if by == KUBELET {
            return match &self.kubelet {
                None => Setting::NoSource,
                Some(k) => match k.fields.get(reference) {
                    None => Setting::Absent { file: &k.file },
                    Some(v) => Setting::Value {
                        file: &k.file,
                        value: v.clone(),
                    },
                },
            };
        }
        match self.manifest(by) {
            None => Setting::NoSource,
            Some(m) => match m.get(reference) {
                None => Setting::Absent { file: &m.file },
                Some(v) => Setting::Value {
                    file: &m.file,
                    value: v.to_string(),
                },
            },
        }
    }

    /// Every item of a list flag (Go's StringSlice: repeated flags add up, items are
    /// comma-separated), blanks dropped.
    pub fn list(&self, by: &str, flag: &str) -> Vec<String> {
        match self.manifest(by) {
            None => Vec::new(),
            Some(m) => m
                .all(flag)
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }

    /// Where the origin of a setting points.
    pub fn origin(&self, by: &str, reference: &str) -> Option<Origin> {
        let file = self.source(by)?.to_path_buf();
        Some(if by == KUBELET {
            Origin::KubeletConfig {
                file,
                field: reference.to_string(),
            }
        } else {
            Origin::Manifest {
                file,
                flag: reference.to_string(),
            }
        })
    }
}

// ------------------------------------------------------------------ reading

#[derive(Deserialize)]
struct PodDoc {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    spec: Option<PodSpec>,
}

#[derive(Deserialize)]
struct PodSpec {
    #[serde(default)]
    containers: Vec<ContainerDoc>,
}

#[derive(Deserialize)]
struct ContainerDoc {
    #[serde(default)]
    name: String,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    command: Vec<String>,
    #[serde(default)]
    args: Vec<String>,
}

fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! { with_snippet: false }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Flags of a command line, in Go's pflag forms: `--flag=value`, `--flag value` (the next
/// argument when it is not a flag), `--flag` alone (`""`). Tokens are split by clap's lexer;
/// short flags, positionals and everything after `--` are not flags of interest.
pub fn parse_flags(args: &[String]) -> Vec<(String, String)> {
    let raw = clap_lex::RawArgs::new(args.iter().map(OsString::from));
    let mut cursor = raw.cursor();
    let mut out = Vec::new();
    while let Some(arg) = raw.next(&mut cursor) {
        if arg.is_escape() {
            break;
        }
        let Some((Ok(name), value)) = arg.to_long() else {
            continue;
        };
        if name.is_empty() {
            continue; // `--=x`: no flag
        }
        let flag = format!("--{name}");
        let value = match value {
            Some(v) => v.to_string_lossy().into_owned(),
            None => match raw.peek(&cursor) {
                Some(next)
                    if !next.is_long()
                        && !next.is_escape()
                        && (!next.is_short() || next.is_negative_number()) =>
                {
                    let v = next.to_value_os().to_string_lossy().into_owned();
                    raw.next(&mut cursor);
                    v
                }
                _ => String::new(),
            },
        };
        out.push((flag, value));
    }
    out
}

/// Parses one manifest (YAML or JSON) of the file `file`; `known` are the components kpki reads.
/// `Ok(None)`: a Pod of a component kpki does not know (ignored); `Err`: why the kubelet could
/// not run it, or kpki cannot read its flags.
pub fn parse_manifest(
    file: &Path,
    bytes: &[u8],
    known: &BTreeSet<String>,
) -> std::result::Result<Option<Manifest>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "is not a text file".to_string())?;
    let doc: PodDoc = serde_saphyr::from_str_with_options(text, yaml_options()).map_err(|e| {
        format!(
            "is not a valid YAML or JSON Pod manifest: {}",
            one_line(&e.to_string())
        )
    })?;
    if let Some(k) = doc.kind.as_deref().filter(|k| *k != "Pod") {
        return Err(format!(
            "is a {k}, not a Pod (the kubelet only runs static Pods)"
        ));
    }
    let container = doc
        .spec
        .and_then(|s| s.containers.into_iter().next())
        .ok_or_else(|| "has no spec.containers: not a Pod the kubelet can run".to_string())?;
    let component = match container.command.first() {
        Some(c) => Path::new(c)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| c.clone()),
        None => container.name.clone(),
    };
    if !known.contains(&component) {
        return Ok(None);
    }
    if container.command.is_empty() {
        return Err(format!(
            "runs {component} without a command: kpki cannot read the flags it is started with"
        ));
    }
    let args: Vec<String> = container.command[1..]
        .iter()
        .chain(container.args.iter())
        .cloned()
        .collect();
    Ok(Some(Manifest {
        file: file.to_path_buf(),
        component,
        image: container.image,
        flags: parse_flags(&args),
    }))
}

fn problem(code: Code, entry: &str, file: &Path, message: String, fix: &str) -> Finding {
    Finding {
        code,
        severity: code.severity(),
        entry: entry.to_string(),
        path: file.display().to_string(),
        message,
        fix: fix.to_string(),
        remedy: Remedy::Manual,
    }
}

fn read_manifests(dir: &Path, known: &BTreeSet<String>) -> Result<(Vec<Manifest>, Vec<Finding>)> {
    let listing = std::fs::read_dir(dir)
        .map_err(|e| Error::file(dir, format!("cannot read the manifests directory: {e}")))?;
    let mut names: Vec<OsString> = listing
        .take(crate::limits::MAX_MANIFESTS_DIR_ENTRIES)
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .filter(|n| !n.to_string_lossy().starts_with('.'))
        .collect();
    names.sort();
    let mut manifests: Vec<Manifest> = Vec::new();
    let mut problems = Vec::new();
    for name in names.into_iter().take(MAX_MANIFESTS) {
        let file = dir.join(&name);
        if std::fs::metadata(&file).is_ok_and(|m| m.is_dir()) {
            continue; // the kubelet skips directories too
        }
        let bytes = match crate::disk::read::read_optional_capped(
            &file,
            crate::limits::MAX_NODE_FILE,
        ) {
            Ok(Some(b)) => b,
            Ok(None) => continue,
            Err(e) => {
                problems.push(problem(
                    Code::ManifestInvalid,
                    "static Pod manifest",
                    &file,
                    error_text(&e),
                    "remove the file from the manifests directory or replace it with a valid Pod manifest",
                ));
                continue;
            }
        };
        match parse_manifest(&file, &bytes, known) {
            Ok(None) => {}
            Ok(Some(m)) => match manifests.iter().find(|o| o.component == m.component) {
                Some(first) => problems.push(problem(
                    Code::ManifestDuplicate,
                    &m.component,
                    &file,
                    format!(
                        "is a second static Pod of {} beside {} (the kubelet runs every file of the directory); kpki reads {}",
                        m.component,
                        first.file.display(),
                        first.file.display()
                    ),
                    "move backups out of the manifests directory",
                )),
                None => manifests.push(m),
            },
            Err(m) => problems.push(problem(
                Code::ManifestInvalid,
                "static Pod manifest",
                &file,
                m,
                "fix the manifest (kubectl create --dry-run=client -f FILE parses it like the kubelet) or move it out of the manifests directory",
            )),
        }
    }
    Ok((manifests, problems))
}

/// Flattens scalar fields to dotted paths (arrays are not settings kpki reads).
fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>, depth: usize) {
    if depth > 16 {
        return;
    }
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                flatten(&key(k), v, out, depth + 1);
            }
        }
        serde_json::Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        serde_json::Value::Bool(b) => {
            out.insert(prefix.to_string(), b.to_string());
        }
        serde_json::Value::Number(n) => {
            out.insert(prefix.to_string(), n.to_string());
        }
        _ => {}
    }
}

/// Parses a KubeletConfiguration (YAML or JSON) into its scalar fields.
pub fn parse_kubelet(file: &Path, bytes: &[u8]) -> std::result::Result<KubeletConfig, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "is not a text file".to_string())?;
    let doc: serde_json::Value = serde_saphyr::from_str_with_options(text, yaml_options())
        .map_err(|e| format!("is not valid YAML or JSON: {}", one_line(&e.to_string())))?;
    if !doc.is_object() {
        return Err("is not a KubeletConfiguration (not a mapping)".into());
    }
    let mut fields = BTreeMap::new();
    flatten("", &doc, &mut fields, 0);
    match fields.get("kind").map(String::as_str) {
        Some("KubeletConfiguration") => {}
        other => {
            return Err(format!(
                "has kind {}, not KubeletConfiguration",
                other
                    .map(|k| format!("{k:?}"))
                    .unwrap_or_else(|| "(none)".into())
            ))
        }
    }
    Ok(KubeletConfig {
        file: file.to_path_buf(),
        fields,
    })
}

fn error_text(e: &Error) -> String {
    match e {
        Error::File { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// Reads the kubelet configuration. `Ok(None)`: absent (or unusable, with a finding pushed).
fn read_kubelet(file: &Path, problems: &mut Vec<Finding>) -> Option<KubeletConfig> {
    let fail = |m: String| {
        problem(
            Code::KubeletConfigInvalid,
            KUBELET,
            file,
            m,
            "fix the KubeletConfiguration (kubeadm writes it with `kubeadm init phase kubelet-start`)",
        )
    };
    match crate::disk::read::read_optional_capped(file, crate::limits::MAX_NODE_FILE) {
        Ok(None) => None,
        Err(e) => {
            problems.push(fail(error_text(&e)));
            None
        }
        Ok(Some(bytes)) => match parse_kubelet(file, &bytes) {
            Ok(k) => Some(k),
            Err(m) => {
                problems.push(fail(m));
                None
            }
        },
    }
}

/// The components kpki reads manifests of: those of the spec's `read_by` column and of the
/// inputs.
pub fn known_components(spec: &Spec) -> BTreeSet<String> {
    let rows = spec
        .cas
        .iter()
        .chain(spec.certs.iter())
        .flat_map(|c| c.read_by.iter())
        .chain(spec.keypairs.iter().flat_map(|k| k.read_by.iter()))
        .chain(spec.kubeconfigs.iter().flat_map(|k| k.read_by.iter()));
    rows.map(|r| r.by.clone())
        .chain(FLAG_INPUTS.iter().map(|(_, c, _)| c.to_string()))
        .chain([VERSION_FROM.to_string()])
        .filter(|c| c != KUBELET)
        .collect()
}

/// Reads the node named by the arguments (see the module documentation for which files), or
/// `None` when the node says nothing. Errors only for a directory or file named on the command
/// line that cannot be read.
pub fn load(spec: &Spec, args: &InputArgs, cfg: &KubeadmConfig) -> Result<Option<Node>> {
    load_from(
        spec,
        args,
        cfg,
        Path::new(DEFAULT_MANIFESTS_DIR),
        Path::new(DEFAULT_KUBELET_CONFIG),
    )
}

/// [`load`] with the node's default paths given (tests point them at a scratch directory).
pub fn load_from(
    spec: &Spec,
    args: &InputArgs,
    cfg: &KubeadmConfig,
    default_manifests: &Path,
    default_kubelet: &Path,
) -> Result<Option<Node>> {
    let root = Root::new(args.root.clone());
    let known = known_components(spec);
    let mut problems = Vec::new();
    let explicit = args.manifests_dir.is_some() || root.is_set();
    let dir = match &args.manifests_dir {
        Some(d) => d.clone(),
        None => root.map(default_manifests),
    };
    let mut manifests = Vec::new();
    let mut manifests_dir = None;
    if args.manifests_dir.is_some() || dir.is_dir() {
        let (m, p) = read_manifests(&dir, &known)?;
        manifests = m;
        problems = p;
        manifests_dir = Some(dir);
    }
    let mut node = Node {
        root: root.clone(),
        manifests_dir,
        manifests,
        kubelet: None,
        problems,
    };
    if !explicit && node.manifests_dir.is_some() {
        // This host's manifests: only for the tree they name.
        let given = args.cert_dir.clone().or_else(|| {
            cfg.certificates_dir
                .as_ref()
                .map(|d| root.map(Path::new(d)))
        });
        let named = dirs(spec, &node).0.map(|f| root.map(Path::new(&f.value)));
        let used = match (&given, &named) {
            (None, _) => !node.manifests.is_empty(),
            (Some(g), Some(n)) => same_dir(g, n),
            (Some(_), None) => false,
        };
        if !used {
            node.manifests.clear();
            node.problems.clear();
            node.manifests_dir = None;
        }
    }
    let kubelet_file = match &args.kubelet_config {
        Some(f) => {
            if !f.exists() {
                return Err(Error::file(f, "--kubelet-config: no such file"));
            }
            Some(f.clone())
        }
        None if root.is_set() || (!explicit && node.manifests_dir.is_some()) => {
            Some(root.map(default_kubelet))
        }
        None => None,
    };
    if let Some(f) = kubelet_file {
        node.kubelet = read_kubelet(&f, &mut node.problems);
    }
    if node.manifests_dir.is_none() && node.kubelet.is_none() && node.problems.is_empty() {
        return Ok(None);
    }
    Ok(Some(node))
}

/// Two names of one directory (the same inode, or the same text when either is absent).
fn same_dir(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a.components().eq(b.components()),
    }
}

// ------------------------------------------------------------------ facts

/// One input value read from the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFact {
    /// The input, by its flag name (`--node-name`; `--cert-dir`, `--kubeconfig-dir` and
    /// `--kubernetes-version` for the directories and the image tag).
    pub input: &'static str,
    /// The value as the node writes it (paths as the node names them).
    pub value: String,
    /// Where.
    pub origin: Origin,
}

/// The cert dir and the kubeconfig dir the manifests name, read through the spec's `read_by`
/// rows: the prefix most flags share before the file the table says they name.
fn dirs(spec: &Spec, node: &Node) -> (Option<NodeFact>, Option<NodeFact>) {
    let fixed = |p: &str| (!p.contains('{')).then(|| p.to_string());
    let mut cert_rows = Vec::new();
    let mut kc_rows = Vec::new();
    for c in spec.cas.iter().chain(spec.certs.iter()) {
        let Some(base) = fixed(&c.path) else { continue };
        for r in &c.read_by {
            for (role, flag) in r.roles() {
                let rel = match role {
                    Role::Key => format!("{base}.key"),
                    _ => format!("{base}.crt"),
                };
                cert_rows.push((r.by.clone(), flag.to_string(), rel));
            }
        }
    }
    for k in &spec.keypairs {
        for r in &k.read_by {
            for (role, flag) in r.roles() {
                let rel = if role == Role::Pub { &k.public } else { &k.key };
                if let Some(rel) = fixed(rel) {
                    cert_rows.push((r.by.clone(), flag.to_string(), rel));
                }
            }
        }
    }
    for k in &spec.kubeconfigs {
        let Some(rel) = fixed(&k.file) else { continue };
        for r in &k.read_by {
            for (_, flag) in r.roles() {
                kc_rows.push((r.by.clone(), flag.to_string(), rel.clone()));
            }
        }
    }
    let vote = |rows: &[(String, String, String)], input: &'static str| -> Option<NodeFact> {
        let mut votes: Vec<(String, usize, Origin)> = Vec::new();
        for (by, flag, rel) in rows {
            let Setting::Value { value, .. } = node.setting(by, flag) else {
                continue;
            };
            let Some(base) = value.strip_suffix(rel.as_str()) else {
                continue;
            };
            let base = base.trim_end_matches('/');
            if base.is_empty()
                || value.len() == rel.len()
                || !value[..value.len() - rel.len()].ends_with('/')
            {
                continue;
            }
            match votes.iter_mut().find(|(b, _, _)| b == base) {
                Some(v) => v.1 += 1,
                None => votes.push((base.to_string(), 1, node.origin(by, flag)?)),
            }
        }
        // Most flags win; on a tie the first row of the table.
        let best = votes.iter().map(|v| v.1).max()?;
        let (value, _, origin) = votes.into_iter().find(|v| v.1 == best)?;
        Some(NodeFact {
            input,
            value,
            origin,
        })
    };
    (
        vote(&cert_rows, "--cert-dir"),
        vote(&kc_rows, "--kubeconfig-dir"),
    )
}

/// Everything the node says about the inputs, with findings where two of its sources disagree.
pub fn facts(spec: &Spec, node: &Node) -> (Vec<NodeFact>, Vec<Finding>) {
    let mut out: Vec<NodeFact> = Vec::new();
    let mut notes = Vec::new();
    let mut add =
        |f: NodeFact, out: &mut Vec<NodeFact>| match out.iter().find(|x| x.input == f.input) {
            Some(first) if !same(f.input, &first.value, &f.value) => {
                notes.push(disagreement(
                    f.input,
                    (&first.value, &first.origin),
                    (&f.value, &f.origin),
                    "the first manifest read",
                ));
            }
            Some(_) => {}
            None => out.push(f),
        };
    let (cert_dir, kubeconfig_dir) = dirs(spec, node);
    for f in cert_dir.into_iter().chain(kubeconfig_dir) {
        add(f, &mut out);
    }
    if let Some(m) = node.manifest(VERSION_FROM) {
        if let Some(tag) = m.image_tag() {
            add(
                NodeFact {
                    input: "--kubernetes-version",
                    value: tag.to_string(),
                    origin: Origin::Manifest {
                        file: m.file.clone(),
                        flag: "image".into(),
                    },
                },
                &mut out,
            );
        }
    }
    for (input, by, flag) in FLAG_INPUTS {
        if let (Setting::Value { value, .. }, Some(origin)) =
            (node.setting(by, flag), node.origin(by, flag))
        {
            if !value.trim().is_empty() {
                add(
                    NodeFact {
                        input,
                        value: value.trim().to_string(),
                        origin,
                    },
                    &mut out,
                );
            }
        }
    }
    for (input, field) in FIELD_INPUTS {
        if let (Setting::Value { value, .. }, Some(origin)) =
            (node.setting(KUBELET, field), node.origin(KUBELET, field))
        {
            if !value.trim().is_empty() {
                add(
                    NodeFact {
                        input,
                        value: value.trim().trim_end_matches('.').to_string(),
                        origin,
                    },
                    &mut out,
                );
            }
        }
    }
    (out, notes)
}

/// Whether two values of an input say the same (IPs, CIDR lists and names in canonical form).
fn same(input: &str, a: &str, b: &str) -> bool {
    let norm = |s: &str| -> String {
        let s = s.trim();
        match input {
            "--apiserver-advertise-address" => s
                .parse::<std::net::IpAddr>()
                .map(|ip| ip.to_canonical().to_string())
                .unwrap_or_else(|_| s.to_string()),
            "--service-cidr" => s
                .split(',')
                .map(|c| {
                    c.trim()
                        .parse::<ipnet::IpNet>()
                        .map(|n| n.to_string())
                        .unwrap_or_else(|_| c.trim().to_string())
                })
                .collect::<Vec<_>>()
                .join(","),
            "--cert-dir" | "--kubeconfig-dir" => s.trim_end_matches('/').to_string(),
            "--control-plane-endpoint" => s.to_lowercase(),
            _ => s.to_lowercase(),
        }
    };
    norm(a) == norm(b)
}

/// An `input-disagreement` naming both sources.
fn disagreement(
    input: &str,
    used: (&str, &Origin),
    other: (&str, &Origin),
    whose: &str,
) -> Finding {
    let path = match other.1 {
        Origin::Manifest { file, .. }
        | Origin::KubeletConfig { file, .. }
        | Origin::Config { file, .. } => file.display().to_string(),
        Origin::Tree { read } => read.split(':').next().unwrap_or_default().to_string(),
        o => o.to_string(),
    };
    Finding {
        code: Code::InputDisagreement,
        severity: Code::InputDisagreement.severity(),
        entry: input.to_string(),
        path,
        message: format!(
            "sources disagree about {input}: {} says {:?}, {} says {:?} (using {:?}, {whose})",
            used.1, used.0, other.1, other.0, used.0
        ),
        fix: format!("correct the one that is wrong, or give {input} explicitly"),
        remedy: Remedy::None,
    }
}

/// The arguments with the node's facts where flags and the config are silent.
#[derive(Debug, Clone)]
pub struct Filled {
    /// Flags, then the node's values (paths mapped under `--root`).
    pub args: InputArgs,
    /// The config, with the image tag as `kubernetesVersion` when it gives none.
    pub cfg: KubeadmConfig,
    /// The facts that were used.
    pub used: Vec<NodeFact>,
    /// Flags or config values that disagree with the node.
    pub notes: Vec<Finding>,
}

/// Puts the node's facts where the flags and the config are silent; where they speak, a value
/// that differs from the node's is an `input-disagreement` (the flag or config still wins).
pub fn fill(facts: &[NodeFact], root: &Root, args: &InputArgs, cfg: &KubeadmConfig) -> Filled {
    let mut out = args.clone();
    let mut cfg_out = cfg.clone();
    let mut used = Vec::new();
    let mut notes = Vec::new();
    let cfg_file = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("kubeadm config"));
    for f in facts {
        let given: Option<(String, Origin)> = {
            let flag = |v: &Option<String>, name: &str| v.clone().map(|v| (v, Origin::flag(name)));
            let config = |v: &Option<String>, field: &str| {
                v.clone().map(|v| {
                    (
                        v,
                        Origin::Config {
                            file: cfg_file.clone(),
                            field: field.to_string(),
                            line: cfg.line(field),
                        },
                    )
                })
            };
            match f.input {
                "--apiserver-advertise-address" => {
                    flag(&args.advertise_address.map(|ip| ip.to_string()), f.input).or_else(|| {
                        config(&cfg.advertise_address, "localAPIEndpoint.advertiseAddress")
                    })
                }
                "--apiserver-bind-port" => flag(&args.bind_port.map(|p| p.to_string()), f.input)
                    .or_else(|| {
                        config(
                            &cfg.bind_port.map(|p| p.to_string()),
                            "localAPIEndpoint.bindPort",
                        )
                    }),
                "--service-cidr" => flag(
                    &args.service_cidrs.as_ref().map(|nets| {
                        nets.iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(",")
                    }),
                    f.input,
                )
                .or_else(|| config(&cfg.service_subnet, "networking.serviceSubnet")),
                "--node-name" => flag(&args.node_name, f.input)
                    .or_else(|| config(&cfg.node_name, "nodeRegistration.name")),
                "--cluster-name" => flag(&args.cluster_name, f.input)
                    .or_else(|| config(&cfg.cluster_name, "clusterName")),
                "--service-dns-domain" => flag(&args.service_dns_domain, f.input)
                    .or_else(|| config(&cfg.dns_domain, "networking.dnsDomain")),
                "--kubernetes-version" => config(&cfg.kubernetes_version, "kubernetesVersion"),
                "--cert-dir" => args
                    .cert_dir
                    .as_ref()
                    .map(|d| {
                        (
                            root.node_path(d).display().to_string(),
                            Origin::flag("--cert-dir"),
                        )
                    })
                    .or_else(|| config(&cfg.certificates_dir, "certificatesDir")),
                "--kubeconfig-dir" => args
                    .kubeconfig_dir
                    .as_ref()
                    .map(|d| {
                        (
                            root.node_path(d).display().to_string(),
                            Origin::flag("--kubeconfig-dir"),
                        )
                    })
                    .or_else(|| {
                        // kpki puts kubeconfigs beside --cert-dir: that flag decides.
                        args.cert_dir
                            .as_ref()
                            .map(|_| (f.value.clone(), Origin::flag("--cert-dir")))
                    }),
                _ => continue,
            }
        };
        match given {
            Some((g, o)) => {
                if !same(f.input, &g, &f.value) {
                    notes.push(disagreement(
                        f.input,
                        (&g, &o),
                        (&f.value, &f.origin),
                        "given explicitly",
                    ));
                }
            }
            None => {
                let v = Some(f.value.clone());
                match f.input {
                    // The node's text is parsed like a flag's; a value that does not parse
                    // stays unset (the default applies) rather than failing the audit.
                    "--apiserver-advertise-address" => {
                        out.advertise_address = crate::inputs::parse_ip(&f.value).ok()
                    }
                    "--apiserver-bind-port" => {
                        out.bind_port = crate::inputs::parse_port(&f.value).ok()
                    }
                    "--service-cidr" => {
                        out.service_cidrs = crate::inputs::parse_cidrs(&f.value).ok()
                    }
                    "--node-name" => out.node_name = v,
                    "--cluster-name" => out.cluster_name = v,
                    "--service-dns-domain" => out.service_dns_domain = v,
                    "--cert-dir" => out.cert_dir = Some(root.map(Path::new(&f.value))),
                    "--kubeconfig-dir" => out.kubeconfig_dir = Some(root.map(Path::new(&f.value))),
                    "--kubernetes-version" => {
                        // Only a version kpki can follow: a custom tag or one kpki does not
                        // model leaves the choice to --kubeadm-version and the defaults.
                        let ok = crate::inputs::version::choose(
                            Some(&f.value),
                            args.kubeadm_version.as_deref(),
                        )
                        .is_ok()
                            && matches!(
                                crate::inputs::version::parse_kubernetes_version(&f.value),
                                Ok(crate::inputs::version::KubernetesVersion::Semantic { .. })
                            );
                        if !ok {
                            continue;
                        }
                        cfg_out.kubernetes_version = v;
                    }
                    _ => continue,
                }
                used.push(f.clone());
            }
        }
    }
    // The kubeconfig dir follows the cert dir the node gave when the node names none.
    if out.kubeconfig_dir.is_none() && args.cert_dir.is_none() {
        if let Some(cd) = used.iter().find(|f| f.input == "--cert-dir").cloned() {
            if let Some(parent) = Path::new(&cd.value).parent() {
                out.kubeconfig_dir = Some(root.map(parent));
                used.push(NodeFact {
                    input: "--kubeconfig-dir",
                    value: parent.display().to_string(),
                    origin: cd.origin.clone(),
                });
            }
        }
    }
    Filled {
        args: out,
        cfg: cfg_out,
        used,
        notes,
    }
}

/// The tree's facts about inputs the node gave are not used: where they say otherwise, an
/// `input-disagreement` names both. A control-plane endpoint the tree reads from admin.conf
/// that is only the node's local endpoint is no endpoint.
pub fn against_tree(d: &mut Discovery, used: &[NodeFact]) -> Vec<Finding> {
    let mut notes = Vec::new();
    let local = match (
        used.iter()
            .find(|f| f.input == "--apiserver-advertise-address"),
        used.iter().find(|f| f.input == "--apiserver-bind-port"),
    ) {
        (Some(a), Some(p)) => {
            let host = a
                .value
                .parse::<std::net::IpAddr>()
                .map(|ip| ip.to_canonical().to_string())
                .unwrap_or_else(|_| a.value.clone());
            Some(if host.contains(':') {
                format!("[{host}]:{}", p.value)
            } else {
                format!("{host}:{}", p.value)
            })
        }
        _ => None,
    };
    d.facts.retain(|t| {
        if t.input == "--control-plane-endpoint" && local.as_deref() == Some(t.value.as_str()) {
            return false;
        }
        let Some(n) = used.iter().find(|n| n.input == t.input) else {
            return true;
        };
        if !same(t.input, &n.value, &t.value) {
            notes.push(disagreement(
                t.input,
                (&n.value, &n.origin),
                (
                    &t.value,
                    &Origin::Tree {
                        read: t.source.clone(),
                    },
                ),
                "the node before the tree",
            ));
        }
        false
    });
    notes
}

/// Extra SANs read back from the tree's certificates, for a node whose config is not on disk.
///
/// kubeadm keeps `apiServer.certSANs` (and etcd's `serverCertSANs`/`peerCertSANs`) in the
/// cluster, not on the node; the certificates are the only record of them there. When the inputs
/// come from a node and neither a flag nor `--config` gives a list, the names a certificate
/// holds beyond what the spec's other templates produce are that list (so `certs renew` on the
/// node keeps serving `extra.example.com`, as kubeadm's renew does).
pub fn keep_tree_sans(
    spec: &Spec,
    inputs: &mut crate::inputs::Inputs,
    args: &InputArgs,
    cfg: &KubeadmConfig,
) {
    use crate::model::spec::{Template, LIST_VARS, SCALAR_VARS};
    let given = |var: &str| match var {
        "apiserver_extra_sans" => {
            !args.apiserver_cert_extra_sans.is_empty() || !cfg.apiserver_cert_sans.is_empty()
        }
        "etcd_server_extra_sans" => !cfg.etcd_server_cert_sans.is_empty(),
        "etcd_peer_extra_sans" => !cfg.etcd_peer_cert_sans.is_empty(),
        _ => true,
    };
    let Ok(desired) = crate::model::resolve::resolve(spec, inputs) else {
        return;
    };
    for c in &spec.certs {
        let Some(var) =
            c.sans
                .iter()
                .find_map(|t| match Template::parse(t, SCALAR_VARS, LIST_VARS) {
                    Ok(Template::List(v)) => Some(v),
                    _ => None,
                })
        else {
            continue;
        };
        if given(&var) {
            continue;
        }
        let Some(Entry::Leaf(e)) = desired.get(&c.name) else {
            continue;
        };
        let Observed::Present(cf) = crate::disk::read::read_cert(&e.cert_path) else {
            continue;
        };
        let Ok(info) = crate::x509::inspect::info(&cf.der) else {
            continue;
        };
        let extra: Vec<String> = info
            .dns
            .iter()
            .filter(|d| !e.profile.dns.iter().any(|x| x.eq_ignore_ascii_case(d)))
            .map(|d| d.to_lowercase())
            .chain(
                info.ips
                    .iter()
                    .filter(|ip| !e.profile.ips.contains(ip))
                    .map(|ip| ip.to_string()),
            )
            .filter(|v| crate::inputs::classify_san(v).is_ok())
            .collect();
        if extra.is_empty() {
            continue;
        }
        let rel = inputs.root.node_path(&e.cert_path);
        let origin = Origin::Tree {
            read: format!(
                "{}: SANs",
                rel.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ),
        };
        match var.as_str() {
            "apiserver_extra_sans" => {
                inputs.apiserver_extra_san_origins = vec![origin; extra.len()];
                inputs.apiserver_extra_sans = extra;
            }
            "etcd_server_extra_sans" => inputs.etcd_server_extra_sans = extra,
            "etcd_peer_extra_sans" => inputs.etcd_peer_extra_sans = extra,
            _ => {}
        }
    }
}

/// The key of [`crate::inputs::Inputs::origins`] an input's flag name sets.
pub fn origin_key(input: &str) -> Option<&'static str> {
    Some(match input {
        "--node-name" => "node_name",
        "--apiserver-advertise-address" => "advertise_address",
        "--apiserver-bind-port" => "bind_port",
        "--control-plane-endpoint" => "control_plane_endpoint",
        "--service-cidr" => "service_cidrs",
        "--service-dns-domain" => "dns_domain",
        "--cluster-name" => "cluster_name",
        "--encryption-algorithm" => "key_algorithm",
        "--cert-dir" => "cert_dir",
        "--kubeconfig-dir" => "kubeconfig_dir",
        "--kubernetes-version" => "kubernetes_version",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn flags(args: &[&str]) -> Vec<(String, String)> {
        parse_flags(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn both_flag_forms() {
        let got = flags(&[
            "--advertise-address=10.0.0.10",
            "--secure-port",
            "6443",
            "--allow-privileged",
            "--v=2",
            "--offset",
            "-5",
            "--empty=",
            "--=nameless",
            "-x",
            "positional",
            "--tls-cert-file",
            "/a.crt",
            "--tls-cert-file=/b.crt",
            "--",
            "--after=ignored",
        ]);
        let want: Vec<(String, String)> = [
            ("--advertise-address", "10.0.0.10"),
            ("--secure-port", "6443"),
            ("--allow-privileged", ""),
            ("--v", "2"),
            ("--offset", "-5"),
            ("--empty", ""),
            ("--tls-cert-file", "/a.crt"),
            ("--tls-cert-file", "/b.crt"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(got, want);
        let m = Manifest {
            file: "x".into(),
            component: "kube-apiserver".into(),
            image: Some("registry.k8s.io/kube-apiserver:v1.28.4@sha256:abc".into()),
            flags: got,
        };
        assert_eq!(m.get("--tls-cert-file"), Some("/b.crt"));
        assert_eq!(m.image_tag(), Some("v1.28.4"));
        let m = Manifest {
            image: Some("localhost:5000/kube-apiserver".into()),
            ..m
        };
        assert_eq!(m.image_tag(), None);
    }

    #[test]
    fn manifests_yaml_and_json() {
        let known: BTreeSet<String> = ["kube-apiserver".to_string()].into();
        let p = Path::new("/m/x");
        let yaml = b"apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - command: [/usr/local/bin/kube-apiserver, --secure-port, '6443']\n    image: k8s/kube-apiserver:v1.30.1\n";
        let m = parse_manifest(p, yaml, &known).unwrap().unwrap();
        assert_eq!(m.component, "kube-apiserver");
        assert_eq!(m.get("--secure-port"), Some("6443"));
        let json = br#"{"apiVersion":"v1","kind":"Pod","spec":{"containers":[{"name":"kube-apiserver","command":["kube-apiserver","--advertise-address=10.1.2.3"]}]}}"#;
        let m = parse_manifest(p, json, &known).unwrap().unwrap();
        assert_eq!(m.get("--advertise-address"), Some("10.1.2.3"));
        // Unknown components are ignored, even without a command.
        let other = b"kind: Pod\nspec:\n  containers:\n  - name: kube-vip\n    args: [manager]\n";
        assert_eq!(parse_manifest(p, other, &known).unwrap(), None);
        // A known component without a command, a non-Pod, garbage: reasons.
        let e = parse_manifest(
            p,
            b"kind: Pod\nspec:\n  containers:\n  - name: kube-apiserver\n",
            &known,
        )
        .unwrap_err();
        assert!(e.contains("without a command"), "{e}");
        let e = parse_manifest(p, b"kind: Deployment\n", &known).unwrap_err();
        assert!(e.contains("not a Pod"), "{e}");
        let e = parse_manifest(p, b"spec: [unclosed\n", &known).unwrap_err();
        assert!(e.contains("not a valid YAML"), "{e}");
        let e = parse_manifest(p, b"\xff\xfe", &known).unwrap_err();
        assert!(e.contains("not a text file"), "{e}");
    }

    #[test]
    fn host_manifests_only_for_the_tree_they_name() {
        let dir = tempfile::tempdir().unwrap();
        let manifests = dir.path().join("manifests");
        std::fs::create_dir(&manifests).unwrap();
        std::fs::write(
            manifests.join("kube-apiserver.yaml"),
            "kind: Pod\nspec:\n  containers:\n  - command: [kube-apiserver, --tls-cert-file=/etc/kubernetes/pki/apiserver.crt, --advertise-address=10.0.0.10]\n",
        )
        .unwrap();
        let kubelet = dir.path().join("config.yaml");
        std::fs::write(
            &kubelet,
            "kind: KubeletConfiguration\nclusterDomain: corp.local\n",
        )
        .unwrap();
        let spec = Spec::default_spec().unwrap();
        let cfg = KubeadmConfig::default();
        let load = |args: &InputArgs| load_from(&spec, args, &cfg, &manifests, &kubelet).unwrap();
        // Nothing given: this host's node.
        let n = load(&InputArgs::default()).expect("node");
        assert_eq!(n.manifests.len(), 1);
        assert!(n.kubelet.is_some());
        // The cert dir the manifests name: still the node.
        let same = InputArgs {
            cert_dir: Some("/etc/kubernetes/pki".into()),
            ..Default::default()
        };
        assert!(load(&same).is_some());
        // Another tree: the node's manifests and kubelet config stay out of it.
        let other = InputArgs {
            cert_dir: Some(dir.path().join("pki")),
            ..Default::default()
        };
        assert_eq!(load(&other), None);
        // ... unless asked for.
        let asked = InputArgs {
            manifests_dir: Some(manifests.clone()),
            ..other.clone()
        };
        let n = load(&asked).expect("node");
        assert_eq!(n.manifests.len(), 1);
        assert!(n.kubelet.is_none());
        let (facts, notes) = facts(&spec, &n);
        assert!(notes.is_empty());
        let f = |i: &str| facts.iter().find(|f| f.input == i).map(|f| f.value.clone());
        assert_eq!(f("--cert-dir").as_deref(), Some("/etc/kubernetes/pki"));
        assert_eq!(
            f("--apiserver-advertise-address").as_deref(),
            Some("10.0.0.10")
        );
        // A missing --manifests-dir is an error naming it.
        let missing = InputArgs {
            manifests_dir: Some(dir.path().join("nope")),
            ..Default::default()
        };
        let e = load_from(&spec, &missing, &cfg, &manifests, &kubelet)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("nope") && e.contains("manifests directory"),
            "{e}"
        );
    }

    #[test]
    fn kubelet_fields() {
        let k = parse_kubelet(
            Path::new("/k"),
            b"kind: KubeletConfiguration\nauthentication:\n  x509:\n    clientCAFile: /etc/kubernetes/pki/ca.crt\nrotateCertificates: false\nclusterDNS: [10.96.0.10]\n",
        )
        .unwrap();
        assert_eq!(
            k.fields
                .get("authentication.x509.clientCAFile")
                .map(String::as_str),
            Some("/etc/kubernetes/pki/ca.crt")
        );
        assert_eq!(
            k.fields.get("rotateCertificates").map(String::as_str),
            Some("false")
        );
        assert!(parse_kubelet(Path::new("/k"), b"kind: Pod\n").is_err());
        assert!(parse_kubelet(Path::new("/k"), b"- a\n").is_err());
    }
}
