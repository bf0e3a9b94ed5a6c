//! Bulk node credentials (`kpki nodes`): a kubelet client kubeconfig and, optionally, a kubelet
//! serving certificate for every node of a list, as the spec's `[node]` section describes them.
//!
//! Nodes are entries like any other: each node's credentials are resolved from `[node]`
//! ([`node_entries`]), observed, judged by the one assessment, planned (the `nodes` view:
//! missing is created, wrong is issued again, right is kept) and written by the one writer
//! ([`crate::apply`]). Only the scale differs: the list is streamed ([`list::NodeReader`]) and
//! worked through in chunks of [`CHUNK`] nodes, each observed and judged in parallel and written
//! in one batch (staged, one flush per file system, renames in order), so memory stays flat and
//! a re-run finishes what an interrupted run left: kept files are not touched again.

pub mod list;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

pub use list::{open_nodes, Node, NodeReader};

use crate::assess::{self, Assessment, Assessor, EntryAssessment};
use crate::disk::{self, Disk};
use crate::error::{Error, Result};
use crate::inputs::Inputs;
use crate::model::resolve::{self, resolve_cert, resolve_kubeconfig, Desired, Entry, Vars};
use crate::model::spec::{NodeSpec, Spec};
use crate::plan::{self, Action, Plan, Step, View};
use crate::Run;

/// Nodes handled per batch: large enough to keep every core busy, small enough that memory
/// stays flat however long the list is.
pub const CHUNK: usize = 512;

fn node_spec(spec: &Spec) -> Result<&NodeSpec> {
    spec.node.as_ref().ok_or_else(|| Error::Spec {
        origin: "spec".into(),
        entry: "node".into(),
        message: "the spec has no [node] section, so it does not say what a node gets".into(),
    })
}

/// The entries one node gets from the spec's `[node]` section, under `out_dir`: its kubelet
/// client kubeconfig and, with `serving`, its serving certificate. Entry names are
/// `<node>/<spec name>`, unique in a batch.
pub fn node_entries(
    spec: &Spec,
    inputs: &Inputs,
    out_dir: &Path,
    node: &Node,
    serving: bool,
) -> Result<Vec<Entry>> {
    let mut vars = Vars::from_inputs(inputs);
    node_entries_with(spec, &mut vars, inputs, out_dir, node, serving)
}

/// [`node_entries`] with the cluster's variables made once (`vars`, from
/// [`Vars::from_inputs`]): only the node's own are set here, so a bulk run does not derive the
/// cluster's again for every node.
fn node_entries_with(
    spec: &Spec,
    vars: &mut Vars,
    inputs: &Inputs,
    out_dir: &Path,
    node: &Node,
    serving: bool,
) -> Result<Vec<Entry>> {
    let ns = node_spec(spec)?;
    vars.set("node_name", node.name.clone());
    vars.set_list("node_ips", node.ips.iter().map(|i| i.to_string()).collect());
    let mut out = Vec::new();
    if let (true, Some(s)) = (serving, &ns.serving) {
        let mut c = resolve_cert(spec, s, false, vars, inputs, out_dir)?;
        c.name = format!("{}/{}", node.name, c.name);
        out.push(Entry::Leaf(c));
    }
    let mut k = resolve_kubeconfig(spec, &ns.kubeconfig, vars, inputs, out_dir)?;
    k.name = format!("{}/{}", node.name, k.name);
    out.push(Entry::Kubeconfig(k));
    Ok(out)
}

/// What happened to one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeStatus {
    /// Every credential was already there and right; nothing was written.
    UpToDate,
    /// Missing credentials were issued (a new node, or the rest of an interrupted one).
    Issued,
    /// At least one credential on disk was wrong and was issued again (or its mode repaired).
    Replaced,
}

/// Why one line of the nodes file got no credentials (the other lines go on).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NodeError(String);

/// The outcome for one line of the nodes file.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NodeReport {
    /// Line number in the nodes file (1-based; a YAML item's first line).
    pub line: usize,
    /// Node name, when the line named a valid one.
    pub name: Option<String>,
    /// What happened, or why the line failed.
    pub result: std::result::Result<NodeStatus, NodeError>,
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
#[non_exhaustive]
pub struct Summary {
    /// Lines with a node or an error (comments and blank lines not counted).
    pub lines: usize,
    /// Nodes whose credentials were all there already.
    pub up_to_date: usize,
    /// Nodes that got missing credentials.
    pub issued: usize,
    /// Nodes with at least one wrong credential issued again.
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
    inputs: Inputs,
    out_dir: PathBuf,
    /// `out_dir` made absolute and normalized, once.
    out_root: PathBuf,
    serving: bool,
    /// The tree's CAs, resolved and observed once.
    cas: Desired,
    ca_disk: Disk,
}

impl std::fmt::Debug for NodeIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeIssuer")
            .field("out_dir", &self.out_dir)
            .field("serving", &self.serving)
            .finish_non_exhaustive()
    }
}

/// What one worker keeps from node to node while it plans them: the plan's model with the
/// run's CAs and inputs, the CAs' assessments (cloned once per worker, not per node), and the
/// cluster's template variables.
#[derive(Default)]
struct Scratch {
    vars: Option<Vars>,
    desired: Option<Desired>,
    assessed: Vec<EntryAssessment>,
}

/// A line of the nodes file: its number, the node's name, and the node planned (or why not).
type PlannedLine = (usize, Option<String>, std::result::Result<Planned, String>);

/// One node, observed, judged and planned.
struct Planned {
    line: usize,
    node: Node,
    entries: Vec<Entry>,
    disk: Disk,
    steps: Vec<Step>,
}

impl NodeIssuer {
    /// Reads the signing CA(s) from `inputs.cert_dir`. Writes go under `out_dir`; with
    /// `serving`, nodes also get the spec's serving certificate (the spec must have one). A CA
    /// certificate or key that is missing is an error naming it.
    pub fn new(spec: &Spec, inputs: Inputs, out_dir: &Path, serving: bool) -> Result<NodeIssuer> {
        let node = node_spec(spec)?.clone();
        if serving && node.serving.is_none() {
            return Err(Error::Spec {
                origin: "spec".into(),
                entry: "node".into(),
                message: "--serving needs a [node.serving] section in the spec".into(),
            });
        }
        let cas = resolve::with_cas(spec, &inputs, Vec::new())?;
        let ca_disk = disk::observe(&cas);
        // The CAs that sign node credentials must be there, with their keys.
        let mut signers = vec![node.kubeconfig.ca.clone()];
        if let (true, Some(s)) = (serving, &node.serving) {
            signers.extend(s.ca.clone());
        }
        for name in signers {
            let Some(ca) = cas.ca(&name) else {
                return Err(Error::Spec {
                    origin: "spec".into(),
                    entry: "node".into(),
                    message: format!("unknown CA {name:?}"),
                });
            };
            match ca_disk.entries.get(&name) {
                Some(disk::Seen::Cert { cert, key }) => {
                    if !cert.exists() {
                        return Err(Error::file(
                            &ca.cert_path,
                            "the CA certificate is missing (run kpki init first, or pass --cert-dir)",
                        ));
                    }
                    if !key.exists() {
                        return Err(Error::file(
                            &ca.key_path,
                            "the CA key is missing; node credentials are signed with it",
                        ));
                    }
                }
                _ => return Err(Error::file(&ca.cert_path, "was not read")),
            }
        }
        Ok(NodeIssuer {
            lock_timeout: std::time::Duration::from_secs(10),
            allow_insecure_dir: false,
            spec: spec.clone(),
            inputs,
            out_dir: out_dir.to_path_buf(),
            out_root: crate::model::layout::normalize(out_dir),
            serving,
            cas,
            ca_disk,
        })
    }

    /// The CAs judged at `now`: their assessments (in entry order) and a judge that knows them.
    /// A CA that cannot sign is an error naming its finding.
    fn judge_cas(
        &self,
        now: time::OffsetDateTime,
    ) -> Result<(Assessor, Vec<EntryAssessment>, Plan)> {
        // A CA rotation in progress in the cert dir (its folder and the live CA file) decides
        // which CA must sign node credentials and what their kubeconfigs must trust.
        let mut a = Assessor::new(now, assess::Options::default())
            .with_rotations(assess::rotation::derive(&self.cas, &self.ca_disk));
        let mut found = Vec::new();
        for e in &self.cas.entries {
            let seen = self.ca_disk.entries.get(e.name());
            found.push(match seen {
                Some(seen) => a.entry(e, seen, None),
                None => a.unobserved(e),
            });
        }
        let assessment = Assessment {
            entries: found.clone(),
            inputs: Vec::new(),
            node: Vec::new(),
        };
        let p = plan::plan_assessed(&self.cas, &assessment, now, &nodes_options());
        if let Some(s) = p.errors().next() {
            return Err(Error::Conflict {
                entry: s.entry.clone(),
                path: s.path.clone().into(),
                message: s.reason.clone(),
            });
        }
        Ok((a, found, p))
    }

    /// Observes, judges and plans one node (no writes).
    fn plan_node(
        &self,
        scratch: &mut Scratch,
        judge: &Assessor,
        cas: &[EntryAssessment],
        line: usize,
        node: Node,
        now: time::OffsetDateTime,
    ) -> std::result::Result<Planned, String> {
        let vars = scratch
            .vars
            .get_or_insert_with(|| Vars::from_inputs(&self.inputs));
        let entries = node_entries_with(
            &self.spec,
            vars,
            &self.inputs,
            &self.out_dir,
            &node,
            self.serving,
        )
        .map_err(|e| e.to_string())?;
        // A run killed mid-way left temporary files or `<crt>.kpki-new`: drop them, or finish
        // or undo the pair replacement, first (under the output directory's lock).
        let mut dirs: Vec<&Path> = entries
            .iter()
            .filter_map(|e| e.main_path().parent())
            .collect();
        dirs.dedup();
        for d in dirs {
            crate::apply::remove_temporaries(d).map_err(|e| e.to_string())?;
        }
        for e in &entries {
            if let Entry::Leaf(c) = e {
                crate::apply::recover_pair(&c.cert_path, &c.key_path).map_err(|e| e.to_string())?;
            }
        }
        let disk = disk::observe_entries(&entries);
        // The plan's model: the CAs (kept in `scratch` from node to node) then this node's
        // entries, moved in and back out, not copied.
        let n_cas = self.cas.entries.len();
        let desired = scratch.desired.get_or_insert_with(|| Desired {
            entries: self.cas.entries.clone(),
            modes: self.cas.modes,
            inputs: self.inputs.clone(),
            readers: Vec::new(),
        });
        desired.entries.truncate(n_cas);
        let mut assessed = std::mem::take(&mut scratch.assessed);
        if assessed.len() < cas.len() {
            assessed = cas.to_vec();
        }
        assessed.truncate(cas.len());
        // A node's entries are signed by the CAs judged once for the run (`judge_cas`), never
        // CAs themselves: each is judged against them without copying the judge.
        for e in &entries {
            if matches!(e, Entry::Ca(_)) {
                return Err(format!("{}: a node's entry cannot be a CA", e.name()));
            }
            assessed.push(match disk.entries.get(e.name()) {
                Some(seen) => judge.signed_entry(e, seen, None),
                None => assess::unobserved(e),
            });
        }
        desired.entries.extend(entries);
        let a = Assessment {
            entries: assessed,
            inputs: Vec::new(),
            node: Vec::new(),
        };
        let mut p = plan::plan_assessed(desired, &a, now, &nodes_options());
        scratch.assessed = a.entries;
        let steps: Vec<Step> = p.steps.split_off(n_cas);
        let entries: Vec<Entry> = desired.entries.split_off(n_cas);
        if let Some(s) = steps.iter().find(|s| s.action == Action::Error) {
            return Err(format!("{}: {}", s.path, s.reason));
        }
        // What the writer would refuse (a link or a directory at a target, an insecure node
        // directory) fails this node only, before anything of the batch is written.
        let out_root = &self.out_root;
        let below = crate::apply::write::WritePolicy {
            allow_insecure_dir: self.allow_insecure_dir,
            ..Default::default()
        };
        for (e, s) in entries.iter().zip(&steps) {
            if !s.issues() {
                continue;
            }
            for path in crate::apply::targets(e) {
                if let Ok(m) = std::fs::symlink_metadata(&path) {
                    if m.file_type().is_symlink() {
                        return Err(format!(
                            "{}: is a symbolic link; kpki does not write through links",
                            path.display()
                        ));
                    }
                    if m.is_dir() {
                        return Err(format!(
                            "{}: is a directory, expected a file",
                            path.display()
                        ));
                    }
                }
                // The output directory and its ancestors were checked once for the run
                // (`issue_all`); here only what lies between it and the file: the node's own
                // directories, the writer's rule (real directories, no links, not writable by
                // group or others unless --allow-insecure-dir).
                let rel = path
                    .strip_prefix(&self.out_dir)
                    .ok()
                    .filter(|r| !r.components().any(|c| c == std::path::Component::ParentDir))
                    .ok_or_else(|| {
                        format!(
                            "{}: is outside the output directory {}",
                            path.display(),
                            self.out_dir.display()
                        )
                    })?;
                below
                    .check_components(out_root, &out_root.join(rel))
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(Planned {
            line,
            node,
            entries,
            disk,
            steps,
        })
    }

    /// Issues credentials for every node `reader` yields, [`CHUNK`] lines at a time (`run.jobs`
    /// threads, 0 = one per core). Bad lines and failed nodes are reported and counted, and the
    /// rest still get done. A duplicate name is an error on its later line. Holds an exclusive
    /// lock on the output directory while it works (a second kpki waits up to `lock_timeout`),
    /// so two runs never write the same node at once. An unreadable list, an output directory
    /// others can write to, a CA that cannot sign or a lock not obtained is an error; everything
    /// else is in the summary.
    pub fn issue_all<R: std::io::BufRead>(
        &self,
        reader: &mut NodeReader<R>,
        run: &Run<'_>,
        progress: &dyn Progress,
    ) -> Result<Summary> {
        if !self.allow_insecure_dir {
            crate::apply::write::check_dir_secure(&self.out_dir)?;
        }
        let _lock =
            crate::apply::write::lock_dir(&self.out_dir, self.cas.modes.dir, self.lock_timeout)?;
        let (judge, ca_assessed, ca_plan) = self.judge_cas(run.now)?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(run.jobs)
            .build()
            .map_err(|e| Error::crypto("starting worker threads", e))?;
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut summary = Summary::default();
        // A pipeline of two stages: while one chunk is written (staged files, flushes and
        // renames), the next is observed, judged, planned and built (its keys, signatures and
        // YAML made in memory). The two never touch the same files: a node's files are named
        // after it and a name is done once.
        let mut in_flight: Option<PreparedChunk> = None;
        loop {
            let mut chunk: Vec<(usize, std::result::Result<Node, String>)> =
                reader.by_ref().take(CHUNK).collect();
            let last = chunk.is_empty();
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
            // Observe, judge, plan and build each node of this chunk in parallel, and write
            // the previous chunk meanwhile.
            let prepare = || -> Result<PreparedChunk> {
                let planned: Vec<PlannedLine> = chunk
                    .into_par_iter()
                    .map_init(Scratch::default, |scratch, (line, node)| match node {
                        Err(m) => (line, None, Err(m)),
                        Ok(n) => {
                            let name = Some(n.name.clone());
                            let p = self.plan_node(scratch, &judge, &ca_assessed, line, n, run.now);
                            (line, name, p)
                        }
                    })
                    .collect();
                self.prepare_chunk(planned, &ca_plan, run)
            };
            let previous = in_flight.take();
            let write = || previous.map(PreparedChunk::write).transpose();
            let (prepared, reports) = pool.install(|| rayon::join(prepare, write));
            // The previous chunk's lines are reported even when this one could not be built.
            for r in reports?.iter().flatten() {
                progress.tick();
                summary.lines += 1;
                summary.files_written += r.written.len();
                match &r.result {
                    Ok(NodeStatus::UpToDate) => summary.up_to_date += 1,
                    Ok(NodeStatus::Issued) => summary.issued += 1,
                    Ok(NodeStatus::Replaced) => summary.replaced += 1,
                    Err(m) => summary.failed.push(LineError {
                        line: r.line,
                        name: r.name.clone(),
                        message: m.to_string(),
                    }),
                }
                progress.report(r);
            }
            if last {
                break;
            }
            in_flight = Some(prepared?);
        }
        if let Some(e) = reader.take_error() {
            return Err(Error::file(
                reader.origin(),
                format!("read error after line {}: {e}", reader.line()),
            ));
        }
        Ok(summary)
    }

    /// Builds one chunk's planned nodes as one batch (keys, signatures, files in memory,
    /// checked against the write policy): nothing is written yet.
    fn prepare_chunk(
        &self,
        planned: Vec<PlannedLine>,
        ca_plan: &Plan,
        run: &Run<'_>,
    ) -> Result<PreparedChunk> {
        let mut failed = Vec::new();
        let mut desired = Desired {
            entries: self.cas.entries.clone(),
            modes: self.cas.modes,
            inputs: self.inputs.clone(),
            readers: Vec::new(),
        };
        let mut disk = self.ca_disk.clone();
        let mut steps = ca_plan.steps.clone();
        for s in &mut steps {
            // The CAs are only read here.
            if s.action == Action::Repair {
                s.action = Action::Reuse;
                s.repairs.clear();
            }
        }
        let mut kept: Vec<Planned> = Vec::new();
        for (line, name, p) in planned {
            match p {
                Err(m) => failed.push(NodeReport {
                    line,
                    name,
                    result: Err(NodeError(m)),
                    written: vec![],
                    replaced: vec![],
                }),
                Ok(mut p) => {
                    // Moved, not copied: the batch holds each node's entries once.
                    desired.entries.append(&mut p.entries);
                    disk.entries.extend(std::mem::take(&mut p.disk.entries));
                    steps.extend(p.steps.iter().cloned());
                    kept.push(p);
                }
            }
        }
        let plan = Plan {
            inputs: Vec::new(),
            regenerating: true,
            steps,
        };
        let files = if plan.is_noop() {
            None
        } else {
            let ctx = crate::apply::Context {
                now: run.now,
                entropy: run.entropy,
                jobs: run.jobs,
            };
            // The one path check with the output directory as the only root: a node's files
            // stay inside it, never through a link, never onto a CA key or another's file.
            let policy = crate::apply::write::WritePolicy::under(
                &desired,
                self.out_root.clone(),
                self.allow_insecure_dir,
            );
            Some(crate::apply::prepare(
                &desired, &disk, &plan, &ctx, false, policy,
            )?)
        };
        Ok(PreparedChunk {
            failed,
            kept,
            files,
        })
    }
}

/// A chunk built and checked, waiting to be written.
struct PreparedChunk {
    /// Reports of the lines that failed before the write.
    failed: Vec<NodeReport>,
    /// The nodes in the batch.
    kept: Vec<Planned>,
    /// Their files (none when every node is up to date).
    files: Option<crate::apply::Prepared>,
}

impl PreparedChunk {
    /// Writes the chunk in one batch and reports each line.
    fn write(self) -> Result<Vec<NodeReport>> {
        let PreparedChunk {
            mut failed,
            kept,
            files,
        } = self;
        let written = match files {
            Some(f) => f.write()?,
            None => Vec::new(),
        };
        let mut reports = std::mem::take(&mut failed);
        let mut by_entry: HashMap<&str, Vec<PathBuf>> = HashMap::new();
        for w in &written {
            // The staged certificate of a pair replacement is renamed into place: count the file once.
            if w.path.extension().is_some_and(|x| x == "kpki-new") {
                continue;
            }
            by_entry
                .entry(w.entry.as_str())
                .or_default()
                .push(w.path.clone());
        }
        for p in kept {
            let mut files = Vec::new();
            let mut replaced = Vec::new();
            let mut issued = false;
            for s in &p.steps {
                files.extend(by_entry.get(s.entry.as_str()).cloned().unwrap_or_default());
                match s.action {
                    Action::Create => issued = true,
                    Action::Regenerate | Action::Repair => {
                        replaced.push(format!("{}: {}", s.path, s.reason));
                    }
                    _ => {}
                }
            }
            let status = if !replaced.is_empty() {
                NodeStatus::Replaced
            } else if issued {
                NodeStatus::Issued
            } else {
                NodeStatus::UpToDate
            };
            reports.push(NodeReport {
                line: p.line,
                name: Some(p.node.name),
                result: Ok(status),
                written: files,
                replaced,
            });
        }
        reports.sort_by_key(|r| r.line);
        Ok(reports)
    }
}

/// The `nodes` view of the plan.
fn nodes_options() -> plan::Options {
    plan::Options {
        view: View::Nodes,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use super::*;
    use crate::entropy::{Entropy, SystemEntropy};
    use crate::{InputArgs, KeyAlgorithm, Kpki, NodeCredentials};

    /// The system's randomness, but key generation fails after `keys` keys.
    struct RunsOut {
        keys: usize,
        made: AtomicUsize,
    }

    impl Entropy for RunsOut {
        fn fill(&self, buf: &mut [u8]) -> Result<()> {
            SystemEntropy.fill(buf)
        }
        fn key(&self, alg: KeyAlgorithm) -> Result<crate::x509::keys::PrivateKey> {
            if self.made.fetch_add(1, Ordering::SeqCst) >= self.keys {
                return Err(Error::crypto("key", "the test's randomness ran out"));
            }
            SystemEntropy.key(alg)
        }
    }

    #[derive(Default)]
    struct Lines(Mutex<Vec<(usize, bool)>>);

    impl Progress for Lines {
        fn report(&self, r: &NodeReport) {
            let issued = matches!(r.result, Ok(NodeStatus::Issued));
            self.0.lock().unwrap().push((r.line, issued));
        }
    }

    /// The pipeline writes chunk 1 while it builds chunk 2: when chunk 2 cannot be built, chunk
    /// 1 is still written whole and its lines reported, and nothing of chunk 2 is written.
    #[test]
    fn a_chunk_that_cannot_be_built_leaves_the_previous_one_written_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let args = InputArgs {
            cert_dir: Some(dir.path().join("pki")),
            node_name: Some("cp-1".into()),
            advertise_address: Some("10.0.0.10".parse().unwrap()),
            control_plane_endpoint: Some("k8s.example.internal:6443".into()),
            key_algorithm: Some(KeyAlgorithm::EcdsaP256),
            ..Default::default()
        };
        let k = Kpki::new(None, &args).unwrap();
        k.init(&plan::Options::default(), &Run::now(), crate::Mode::Apply)
            .unwrap();
        let n = CHUNK + 40;
        let list: String = (0..n)
            .map(|i| format!("node-{i:04},10.1.{}.{}\n", i / 250, i % 250 + 1))
            .collect();
        let out = dir.path().join("out");
        let issuer = k.node_issuer(&out, NodeCredentials::Client).unwrap();
        let entropy = RunsOut {
            keys: CHUNK,
            made: AtomicUsize::new(0),
        };
        let run = Run {
            now: time::OffsetDateTime::now_utc(),
            entropy: &entropy,
            jobs: 2,
        };
        let lines = Lines::default();
        let mut reader = NodeReader::new(std::io::Cursor::new(list));
        let err = issuer.issue_all(&mut reader, &run, &lines).unwrap_err();
        assert!(err.to_string().contains("ran out"), "{err}");
        let reported = lines.0.into_inner().unwrap();
        assert_eq!(reported, (1..=CHUNK).map(|l| (l, true)).collect::<Vec<_>>());
        for i in 0..n {
            let d = out.join(format!("node-{i:04}"));
            let conf = d.join("kubelet.conf");
            if i < CHUNK {
                let text = std::fs::read_to_string(&conf).unwrap();
                crate::kubeconfig::Kubeconfig::from_yaml(&text).unwrap();
            } else {
                assert!(!conf.exists(), "{}", conf.display());
            }
            if d.exists() {
                for f in std::fs::read_dir(&d).unwrap() {
                    let name = f.unwrap().file_name();
                    assert_eq!(name, "kubelet.conf", "{}", d.display());
                }
            }
        }
    }
}
