//! `kpki ca rotate`: replace the cluster, front-proxy and etcd CAs and the service-account key
//! in phases every component survives (docs/rotation.md).
//!
//! ```text
//! prepare  new CA staged in <cert dir>/rotation/<entry>/ (0700), old one archived there
//! trust    every trust point holds [old, new]; the old CA signs
//! issue    the new key is swapped in (after its archive is checked); trust points [new, old];
//!          everything the old CA signed is re-issued under the new one (backups as renew)
//! finish   trust points [new]; the rotation folder moves to rotation/archive
//! abort    (before issue) trust points [old]; the folder moves to rotation/archive
//! ```
//!
//! The state lives in the files only ([`crate::assess::rotation::derive`]), so every phase is
//! idempotent and resumable: each command observes the tree under the lock, plans the steps
//! its phase still needs ([`plan`]) and writes them through the one writer
//! ([`crate::apply`]); a crash leaves a state the same command completes.

pub(crate) mod guide;
pub mod plan;

use std::collections::BTreeMap;

use base64::Engine;
use serde::Serialize;

pub use crate::assess::rotation::Phase;
use crate::assess::{self, Finding, Severity};
use crate::disk::read::Observed;
use crate::disk::rotation::Layout;
use crate::error::{Error, Result};
use crate::kubeconfig::{Cluster, Kubeconfig, NamedCluster, Preferences};
use crate::model::resolve::Entry;
use crate::{apply, disk, Kpki, Run};

/// A `kpki ca rotate` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Command {
    /// Stage the new CA (or key), archive the old one.
    Prepare,
    /// Every trust point holds old and new.
    Trust,
    /// The new CA signs; everything is re-issued under it.
    Issue,
    /// Trust points keep only the new CA; the rotation is archived.
    Finish,
    /// Before issue: back to the old CA only.
    Abort,
}

impl Command {
    /// The command's name.
    pub fn name(self) -> &'static str {
        match self {
            Command::Prepare => "prepare",
            Command::Trust => "trust",
            Command::Issue => "issue",
            Command::Finish => "finish",
            Command::Abort => "abort",
        }
    }
}

/// What to rotate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// CA or key-pair names (`--ca`; `all` = every one); empty: every rotatable entry for
    /// `prepare`, every rotation in progress for the other commands.
    pub only: Vec<String>,
}

impl Options {
    /// Only these entries.
    pub fn only(names: Vec<String>) -> Options {
        Options { only: names }
    }
}

/// What a rotation command did (or, dry, would do).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// The plan.
    pub plan: plan::RotationPlan,
    /// Files written, in order (empty for a dry run).
    pub written: Vec<apply::Written>,
    /// Nothing was written.
    #[serde(rename = "dryRun")]
    pub dry_run: bool,
    /// What the operator does next: flags, restart order, cluster-info, discovery hash.
    pub guide: Vec<String>,
    /// The `kube-public/cluster-info` ConfigMap to apply after this phase (YAML), when the
    /// phase changed what the cluster CA's trust points hold (trust, finish, abort).
    #[serde(rename = "clusterInfo", skip_serializing_if = "Option::is_none")]
    pub cluster_info: Option<String>,
}

/// One CA or key pair in `kpki ca rotate status`.
#[derive(Debug, Clone, Serialize)]
pub struct EntryStatus {
    /// The CA or key pair.
    pub entry: String,
    /// True when a rotation folder exists for it.
    pub rotating: bool,
    /// The phase (`None`: not rotating, or files that form no phase).
    pub phase: Option<Phase>,
    /// The phase in words.
    pub summary: String,
    /// What to run next.
    pub next: String,
    /// Findings about the rotation (its own and those of every entry it signs or is trusted
    /// by), errors and warnings.
    pub findings: Vec<Finding>,
}

/// `kpki ca rotate status`.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Every rotatable CA and key pair.
    pub entries: Vec<EntryStatus>,
    /// Archived rotations (`rotation/archive/...`).
    pub archives: Vec<String>,
}

impl Status {
    /// True when no rotation has an error or warning finding.
    pub fn consistent(&self) -> bool {
        self.entries.iter().all(|e| e.findings.is_empty())
    }
}

/// kubeadm's `--discovery-token-ca-cert-hash` of a CA certificate: `sha256:` and the hex SHA-256
/// of its DER SubjectPublicKeyInfo.
pub fn discovery_hash(cert_der: &[u8]) -> Result<String> {
    let info = crate::x509::inspect::info(cert_der)
        .map_err(|m| Error::crypto("reading the CA certificate", m))?;
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &info.spki);
    Ok(format!("sha256:{}", hex::encode(d.as_ref())))
}

/// The `kube-public/cluster-info` ConfigMap kubeadm publishes.
#[derive(Serialize)]
struct ConfigMap {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    metadata: Meta,
    data: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Meta {
    name: &'static str,
    namespace: &'static str,
}

impl Kpki {
    /// Runs one rotation command: under the tree lock (none for a dry run), finishes what a
    /// crash interrupted, observes the tree, plans the steps its phase still needs and writes
    /// them. A precondition not met (trust before prepare, issue before trust is complete,
    /// finish while something is still signed by the old CA, abort after issue) is an error
    /// naming it, with nothing written.
    pub fn rotate(
        &self,
        cmd: Command,
        opts: &Options,
        run: &Run<'_>,
        mode: crate::Mode,
    ) -> Result<Report> {
        let dry_run = mode == crate::Mode::DryRun;
        let layout = Layout::of(&self.desired.inputs.cert_dir);
        if !dry_run && !self.desired.inputs.cert_dir.is_dir() {
            // No tree, nothing to rotate: refuse before the lock creates any directory, naming
            // what is missing when the targets can say it.
            let disk = disk::observe(&self.desired);
            let rotations = assess::rotation::derive(&self.desired, &disk);
            plan::targets(&self.desired, &rotations, &disk, cmd, &opts.only)?;
            return Err(crate::Error::file(
                &self.desired.inputs.cert_dir,
                "does not exist: there is no tree to rotate (run kpki init)",
            ));
        }
        let _lock = if dry_run {
            None
        } else {
            if !self.allow_insecure_dir {
                // Whoever can write in the rotation folder can swap the key issue installs.
                apply::write::check_dir_secure(&layout.root)?;
                if let Ok(rd) = std::fs::read_dir(&layout.root) {
                    for d in rd.flatten().filter(|d| d.path().is_dir()) {
                        apply::write::check_dir_secure(&d.path())?;
                    }
                }
            }
            let lock = self.prepare_write(self.desired.modes.dir)?;
            apply::recover_pending(&self.desired)?;
            apply::rotate::recover(&layout)?;
            Some(lock)
        };
        let disk = disk::observe(&self.desired);
        let rotations = assess::rotation::derive(&self.desired, &disk);
        let a = assess::assess(&self.desired, &disk, run.now, &assess::Options::default());
        let targets = plan::targets(&self.desired, &rotations, &disk, cmd, &opts.only)?;
        let input = plan::Input {
            desired: &self.desired,
            disk: &disk,
            assessment: &a,
            rotations: &rotations,
            now: run.now,
        };
        let p = plan::plan(&input, cmd, &targets)?;
        let written = if dry_run || p.is_noop() {
            Vec::new()
        } else {
            let ctx = apply::Context {
                now: run.now,
                entropy: run.entropy,
                jobs: run.jobs,
            };
            apply::rotate::apply(&self.desired, &disk, &p, &ctx, self.allow_insecure_dir)?
        };
        let guide = self.guide(cmd, &p, &rotations, &layout);
        let ca_changed = p.entries.iter().any(|e| e.entry == "ca" && e.from != e.to);
        let cluster_info = if !dry_run
            && ca_changed
            && matches!(cmd, Command::Trust | Command::Finish | Command::Abort)
        {
            Some(self.cluster_info()?)
        } else {
            None
        };
        Ok(Report {
            plan: p,
            written,
            dry_run,
            guide,
            cluster_info,
        })
    }

    fn guide(
        &self,
        cmd: Command,
        p: &plan::RotationPlan,
        rotations: &BTreeMap<String, assess::rotation::Rotation>,
        layout: &Layout,
    ) -> Vec<String> {
        let reached = match cmd {
            Command::Prepare => Some(Phase::Prepared),
            Command::Trust => Some(Phase::Trust),
            Command::Issue => Some(Phase::Issue),
            Command::Finish | Command::Abort => None,
        };
        let entries: Vec<String> = p
            .entries
            .iter()
            .filter(|e| match reached {
                Some(ph) => e.to == Some(ph),
                None => e.from.is_some(),
            })
            .map(|e| e.entry.clone())
            .collect();
        let signer = entries
            .iter()
            .any(|e| e == "ca")
            .then(|| layout.signer("ca"));
        let mut hashes = Vec::new();
        if let Some(r) = rotations
            .get("ca")
            .filter(|_| entries.iter().any(|e| e == "ca"))
        {
            let old = r.old.as_deref().and_then(|d| discovery_hash(d).ok());
            let new = r.new.as_deref().and_then(|d| discovery_hash(d).ok());
            match cmd {
                Command::Trust | Command::Issue => {
                    hashes.extend(new.map(|h| ("new", h)));
                    hashes.extend(old.map(|h| ("old", h)));
                }
                Command::Finish => hashes.extend(new.map(|h| ("new", h))),
                Command::Abort => hashes.extend(old.map(|h| ("old", h))),
                Command::Prepare => {}
            }
        }
        let facts = guide::Facts {
            desired: &self.desired,
            entries: &entries,
            signer: signer.as_deref(),
            rotation_dir: &layout.root,
            hashes,
        };
        guide::lines(cmd, &facts)
    }

    /// Where every rotatable CA and key pair stands, and what is inconsistent (read only).
    pub fn rotation_status(&self, run: &Run<'_>) -> Result<Status> {
        crate::views::verify::check_dirs(&self.desired)?;
        let disk = disk::observe(&self.desired);
        let rotations = assess::rotation::derive(&self.desired, &disk);
        let a = assess::assess(&self.desired, &disk, run.now, &assess::Options::default());
        let mut entries = Vec::new();
        for name in plan::rotatable(&self.desired) {
            let r = rotations.get(&name);
            let concerns = |entry: &str| -> bool {
                entry == name
                    || match self.desired.get(entry) {
                        Some(Entry::Leaf(c)) => c.ca.as_deref() == Some(name.as_str()),
                        Some(Entry::Kubeconfig(k)) => k.ca == name,
                        _ => false,
                    }
            };
            let findings: Vec<Finding> = a
                .entries
                .iter()
                .filter(|ea| concerns(&ea.entry))
                .flat_map(|ea| ea.findings.iter())
                .filter(|f| {
                    f.code.as_str().starts_with("rotation-") && f.severity != Severity::Info
                })
                .cloned()
                .collect();
            entries.push(EntryStatus {
                entry: name.clone(),
                rotating: r.is_some(),
                phase: r.and_then(|r| r.phase),
                summary: r
                    .map(|r| r.summary())
                    .unwrap_or_else(|| "no rotation in progress".into()),
                next: r
                    .map(|r| r.next().to_string())
                    .unwrap_or_else(|| format!("`kpki ca rotate prepare --ca {name}` starts one")),
                findings,
            });
        }
        Ok(Status {
            entries,
            archives: disk.rotation.archives.clone(),
        })
    }

    /// The `kube-public/cluster-info` ConfigMap for the tree as it is now (YAML): its kubeconfig
    /// trusts every certificate of the live `ca.crt` (during a rotation, the phase's bundle)
    /// and points at the control-plane endpoint. Apply it with `kubectl apply -f -`; the
    /// bootstrap signer re-signs it for the join tokens.
    pub fn cluster_info(&self) -> Result<String> {
        let Some(ca) = self.desired.ca("ca") else {
            return Err(Error::input("--spec", "the spec has no CA named ca"));
        };
        let certs = match disk::rotation::read_certs(&ca.cert_path) {
            Observed::Present(v) => v,
            Observed::Missing => return Err(Error::file(&ca.cert_path, "is missing")),
            Observed::Invalid(m) => return Err(Error::file(&ca.cert_path, m)),
            Observed::Unread => {
                return Err(Error::file(&ca.cert_path, crate::disk::read::NOT_READ))
            }
        };
        let pem: String = certs
            .iter()
            .map(|d| crate::x509::issue::cert_pem(d))
            .collect();
        let kc = Kubeconfig {
            api_version: "v1".into(),
            clusters: vec![NamedCluster {
                cluster: Cluster {
                    certificate_authority_data: Some(
                        base64::engine::general_purpose::STANDARD.encode(pem),
                    ),
                    server: self.desired.inputs.control_plane().url(),
                    ..Default::default()
                },
                name: String::new(),
                extra: Default::default(),
            }],
            contexts: vec![],
            current_context: String::new(),
            kind: "Config".into(),
            preferences: Preferences::default(),
            users: vec![],
            extra: Default::default(),
        };
        let inner = kc.to_yaml().map_err(|m| Error::file(&ca.cert_path, m))?;
        let cm = ConfigMap {
            api_version: "v1",
            kind: "ConfigMap",
            metadata: Meta {
                name: "cluster-info",
                namespace: "kube-public",
            },
            data: BTreeMap::from([("kubeconfig".to_string(), inner)]),
        };
        serde_saphyr::to_string(&cm).map_err(|e| Error::file(&ca.cert_path, e))
    }
}
