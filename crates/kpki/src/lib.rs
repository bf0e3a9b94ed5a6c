//! # kpki: the PKI of a Kubernetes control plane, from one declarative table
//!
//! kpki builds, checks and maintains the certificate tree that `kubeadm` writes under
//! `/etc/kubernetes/pki` (three CAs, the API server and etcd leaves, the service-account key pair)
//! and the kubeconfigs beside it, byte-compatible with kubeadm 1.31+.
//!
//! Data flow (see `docs/ARCHITECTURE.md`): the spec and the inputs resolve into concrete
//! entries; the disk is observed; one assessment judges every entry; a pure plan maps the
//! judgement to actions; apply carries them out through one writer. Every command is a view of
//! that pipeline.
//!
//! ```text
//! certs-spec.toml ─► Spec ──────────────┐
//! InputArgs (typed; the CLI's flags      ├─► Desired (concrete entries)
//!   through `parse`) + kubeadm config    │        │
//!   + what the node and the tree say ────┘        ▼
//!                          observe the disk ─► assess (the one judge: findings with codes)
//!                                                  │
//!        verify, expiration, metrics, picture ◄────┤
//!                                                  ▼
//!                                      plan (pure) ─► apply (one writer, one path check)
//! ```
//!
//! The facade is [`Kpki`] (one method per command) with [`Run`] (clock, entropy, threads); the
//! reports live in the namespaces below ([`plan`], [`verify`], [`expiration`], [`nodes`],
//! [`bundle`], [`kubeconfigs`], [`operate`], [`rotate`]). The stages themselves are private.
//!
//! An installer makes a tree, checks it, and issues credentials for workers:
//!
//! ```
//! use kpki::{InputArgs, Kpki, Run};
//!
//! let dir = tempfile::tempdir()?;
//! let mut args = InputArgs::for_cert_dir(dir.path().join("pki"));
//! args.node_name = Some("cp-1".into());
//! args.advertise_address = Some([10, 0, 0, 10].into());
//! args.key_algorithm = Some(kpki::KeyAlgorithm::EcdsaP256);
//! let kpki = Kpki::new(None, &args)?;
//! let run = Run::now();
//! let report = kpki.init(&kpki::plan::Options::default(), &run, kpki::Mode::Apply)?;
//! assert!(report.written.iter().any(|w| w.path.ends_with("pki/ca.crt")));
//!
//! // The same judge that planned the tree finds nothing wrong with it.
//! let audit = kpki.verify(&kpki::verify::Options::default(), &run)?;
//! assert_eq!(audit.summary.errors, 0);
//!
//! // A second init changes nothing.
//! let again = kpki.init(&kpki::plan::Options::default(), &run, kpki::Mode::Apply)?;
//! assert!(again.plan.is_noop() && again.written.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

// The pipeline's stages are private; the facade below and the public namespaces re-export what
// an installer needs, so internals can move without breaking anyone.
mod error;
pub mod inputs;
pub mod parse;
pub mod plan;
pub mod rotate;
pub mod text;

use internal::{apply, assess, disk, entropy, kubeconfig, limits, memo, model, ops, views, x509};

pub use entropy::FixedEntropy;
pub use entropy::{Entropy, SystemEntropy};
pub use error::{Error, Result};
pub use inputs::{InputArgs, Role};
pub use model::resolve::{Desired, Entry};
pub use model::spec::{Spec, DEFAULT_SPEC};
pub use x509::keys::KeyAlgorithm;

/// Audits of a tree: findings with stable codes (docs/findings.md), the human table and JSON.
pub mod verify {
    pub use crate::assess::codes::{Code, Finding, Remedy, Severity, CODES};
    pub use crate::assess::{Options, DEFAULT_WARN_WITHIN};
    pub use crate::views::verify::check_dirs;
    pub use crate::views::verify::{render_text, Report, Summary, API_VERSION, KIND};
}

/// kubeadm's `certs check-expiration` tables, from the same assessment.
pub mod expiration {
    pub use crate::views::expiration::*;
}

/// Range checks of run-time settings the CLI takes as flags.
pub mod checks {
    pub use crate::limits::{check_jobs, check_now};
}

/// Operating views: Prometheus metrics, the tree picture, the HTML report, renew-if-due.
pub mod operate {
    pub use crate::ops::renew_due;
    pub use crate::ops::renew_due::{Candidate, Outcome, RenewIfDue, Selection, Status};
    pub use crate::views::{html, metrics, picture};
}

/// Per-node kubelet credentials in bulk (`kpki nodes`).
pub mod nodes {
    pub use crate::ops::nodes::list::{open_nodes, Node, NodeReader};
    pub use crate::ops::nodes::{
        LineError, NoProgress, NodeError, NodeIssuer, NodeReport, NodeStatus, Progress, Summary,
    };
}

/// The join bundle: kubeadm's encrypted `kubeadm-certs` Secret (`upload-certs`).
pub mod bundle {
    pub use crate::ops::bundle::{
        CertificateKey, InstallOptions, Installed, Layout, Owner, Upload,
    };
}

/// Kubeconfigs for people and bootstrapping kubelets (`kpki kubeconfig user|bootstrap`).
pub mod kubeconfigs {
    pub use crate::ops::token::BootstrapToken;
    pub use crate::ops::user::UserRequest;
    pub use crate::ops::{token, user};
}

/// Files kpki wrote.
pub use apply::Written;

/// The pipeline's stages. Hidden: the crate's own fuzz targets, benchmarks and tests reach the
/// parsers and primitives they exercise through here. Not part of the API: anything in it may
/// change in any release; use the facade above.
#[doc(hidden)]
pub mod internal;

use std::path::Path;

use time::OffsetDateTime;

/// How an operation runs: the injected clock, randomness and parallelism.
pub struct Run<'a> {
    /// "Now": every validity period starts here; every check is made at this instant.
    pub now: OffsetDateTime,
    /// Randomness.
    pub entropy: &'a dyn Entropy,
    /// Key-generation threads (0 = one per core).
    pub jobs: usize,
}

static SYSTEM: SystemEntropy = SystemEntropy;

impl Run<'static> {
    /// The real clock and the system CSPRNG, all cores.
    pub fn now() -> Run<'static> {
        Run {
            now: OffsetDateTime::now_utc(),
            entropy: &SYSTEM,
            jobs: 0,
        }
    }
}

/// Whether a writing command writes or only plans and checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// Lock the tree, plan, check, write.
    #[default]
    Apply,
    /// Plan and check only: no lock, no directory, no file.
    DryRun,
}

/// Which SANs a renewal puts in a certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sans {
    /// The SANs the spec and inputs give (kubeadm's `certs renew`).
    #[default]
    FromInputs,
    /// The SANs of the certificate being replaced, whatever the inputs say.
    KeepExisting,
}

/// Which credentials [`Kpki::node_issuer`] issues per node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NodeCredentials {
    /// The kubelet client kubeconfig.
    #[default]
    Client,
    /// The client kubeconfig and the spec's `[node.serving]` certificate.
    ClientAndServing,
}

/// What `init` did (or, in [`Mode::DryRun`], would do).
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct InitReport {
    /// The plan, one step per entry.
    pub plan: plan::Plan,
    /// Files written, in order (empty for a dry run).
    pub written: Vec<apply::Written>,
}

/// A spec resolved against cluster inputs: the entry point for installers.
#[derive(Debug, Clone)]
pub struct Kpki {
    /// The certificate table.
    pub spec: model::spec::Spec,
    /// The concrete entries for these inputs.
    pub desired: model::resolve::Desired,
    /// How long to wait for another kpki process working on the same tree (`--lock-timeout`).
    pub lock_timeout: std::time::Duration,
    /// Write even into directories that group or others can write to (`--allow-insecure-dir`).
    pub allow_insecure_dir: bool,
}

impl Kpki {
    /// Loads the spec (`None`: the embedded default) and resolves it against the inputs: flags,
    /// then the kubeadm config file they name, then what the existing tree says (so a tree made
    /// for node `cp-1` stays `cp-1`), then kubeadm's defaults.
    pub fn new(spec_path: Option<&Path>, args: &inputs::InputArgs) -> Result<Kpki> {
        let spec = match spec_path {
            Some(p) => model::spec::Spec::load(p)?,
            None => model::spec::Spec::default_spec()?,
        };
        let inputs = inputs::Inputs::discovered_from_tree(&spec, args)?;
        Kpki::from_parts(spec, inputs)
    }

    /// Resolves an already loaded spec against already validated inputs.
    pub fn from_parts(spec: model::spec::Spec, inputs: inputs::Inputs) -> Result<Kpki> {
        let desired = model::resolve::resolve(&spec, &inputs)?;
        Ok(Kpki {
            spec,
            desired,
            lock_timeout: std::time::Duration::from_secs(10),
            allow_insecure_dir: false,
        })
    }

    /// The longest validity any entry is issued with (what `--now` must leave room for).
    pub fn longest_validity(&self) -> time::Duration {
        longest_validity(&self.desired)
    }

    /// Takes the tree lock and checks the directories kpki writes into; held while writing.
    pub fn prepare_write(&self, dir_mode: u32) -> Result<apply::write::DirLock> {
        let i = &self.desired.inputs;
        if !self.allow_insecure_dir {
            // Subdirectories such as pki/etcd too: whoever can write there can swap its keys.
            let dirs = [i.cert_dir.as_path(), i.kubeconfig_dir.as_path()]
                .into_iter()
                .chain(
                    self.desired
                        .entries
                        .iter()
                        .filter_map(|e| e.main_path().parent()),
                );
            apply::write::check_dirs_secure(dirs)?;
        }
        apply::write::lock_dir(&i.cert_dir, dir_mode, self.lock_timeout)
    }

    /// Audits the tree against the spec and the inputs (no writes): the report of the one
    /// assessment `plan` acts on. Fails only when the tree's directories cannot be read.
    pub fn verify(&self, opts: &assess::Options, run: &Run<'_>) -> Result<views::verify::Report> {
        views::verify::check_dirs(&self.desired)?;
        let disk = disk::observe(&self.desired);
        Ok(views::verify::verify(&self.desired, &disk, run.now, opts))
    }

    /// Opens the spec with inputs that only shape entry names and paths (`certs
    /// check-expiration`): a missing advertise address or node name gets a placeholder, since
    /// they only shape SANs and URLs, so the command runs on a tree without its cluster config.
    pub fn for_names(spec_path: Option<&Path>, args: &inputs::InputArgs) -> Result<Kpki> {
        let spec = match spec_path {
            Some(p) => model::spec::Spec::load(p)?,
            None => model::spec::Spec::default_spec()?,
        };
        let inputs = inputs::Inputs::names_only(args)?;
        Kpki::from_parts(spec, inputs)
    }

    /// The Prometheus text exposition of the tree (x509-certificate-exporter's series plus
    /// `kpki_finding`), from a verify report made at `now`.
    pub fn metrics(&self, report: &views::verify::Report, now: OffsetDateTime) -> String {
        views::metrics::collect(&self.desired, report, now).render()
    }

    /// The tree's picture (CA -> leaves -> kubeconfigs -> node credentials) with `report`'s
    /// findings on their entries; `nodes` from [`Kpki::node_credentials`].
    pub fn picture(
        &self,
        report: &views::verify::Report,
        now: OffsetDateTime,
        warn_within: time::Duration,
        nodes: Option<views::picture::NodeCredentials>,
    ) -> views::picture::Picture {
        let disk = disk::observe(&self.desired);
        views::picture::build(&self.desired, &disk, report, now, warn_within, nodes)
    }

    /// The node credentials `kpki nodes --nodes FILE --out-dir DIR` wrote, for the picture.
    pub fn node_credentials(
        &self,
        nodes_file: &Path,
        dir: &Path,
    ) -> Result<views::picture::NodeCredentials> {
        views::picture::read_node_credentials(&self.spec, &self.desired.inputs, nodes_file, dir)
    }

    /// kubeadm's `certs check-expiration`: when each certificate expires, from the same
    /// assessment `verify` reports. An unreadable file is an error naming it.
    pub fn expiration(
        &self,
        opts: &views::expiration::Options,
        run: &Run<'_>,
    ) -> Result<views::expiration::Expiration> {
        // Dates only, as kubeadm's: the private keys (most of a read's cost) are left unread,
        // signatures unverified (a third of what is left), and the judge says nothing of
        // either; `verify` checks both.
        let disk = disk::observe_with(&self.desired, disk::Keys::Skip);
        let a = assess::assess(
            &self.desired,
            &disk,
            run.now,
            &assess::Options::default().dates_only(),
        );
        views::expiration::expiration(&self.desired, &a, run.now, opts)
    }

    /// Reads the tree and plans every entry (no writes).
    pub fn plan(&self, opts: &plan::Options, run: &Run<'_>) -> plan::Plan {
        let disk = disk::observe(&self.desired);
        plan::plan(&self.desired, &disk, run.now, opts)
    }

    /// Creates what is missing and keeps what is right; refuses (writing nothing) when anything
    /// on disk conflicts with the spec. Re-running on a complete tree changes no byte.
    /// With `--join` (`inputs.join`), the bundle entries (CAs, sa) must already be there.
    pub fn init(&self, opts: &plan::Options, run: &Run<'_>, mode: Mode) -> Result<InitReport> {
        if self.desired.inputs.join {
            ops::bundle::check_joinable(&self.spec, &self.desired)?;
        }
        self.execute(opts, run, mode, |_, desired| desired.clone())
    }

    /// Lock, recover an interrupted pair replacement, observe, plan (on the desired entries as
    /// `adjust` shapes them after seeing the disk), check, apply. Every writing command of the
    /// tree goes through here.
    fn execute(
        &self,
        opts: &plan::Options,
        run: &Run<'_>,
        mode: Mode,
        adjust: impl Fn(&disk::Disk, &model::resolve::Desired) -> model::resolve::Desired,
    ) -> Result<InitReport> {
        let dry_run = mode == Mode::DryRun;
        let dir_mode = match opts.view {
            plan::View::Csr => 0o700,
            _ => self.desired.modes.dir,
        };
        // Bounds first: nothing (not even the cert dir) is created for a run that cannot work.
        limits::check_jobs(run.jobs)?;
        limits::check_now(run.now, self.longest_validity())?;
        let _lock = if dry_run {
            None
        } else {
            let lock = self.prepare_write(dir_mode)?;
            apply::recover_pending(&self.desired)?;
            Some(lock)
        };
        let disk = disk::observe(&self.desired);
        let desired = adjust(&disk, &self.desired);
        let plan = plan::plan(&desired, &disk, run.now, opts);
        plan.check()?;
        let written = if dry_run {
            Vec::new()
        } else {
            let ctx = apply::Context {
                now: run.now,
                entropy: run.entropy,
                jobs: run.jobs,
            };
            let backups = matches!(opts.view, plan::View::Renew(_));
            let policy = apply::write::WritePolicy::for_tree(&desired, self.allow_insecure_dir);
            apply::apply_with_policy(&desired, &disk, &plan, &ctx, backups, policy)?
        };
        Ok(InitReport { plan, written })
    }
}

impl Kpki {
    /// Names `certs renew` accepts: every leaf and kubeconfig entry of the spec (CAs and bare
    /// key pairs are never renewed).
    pub fn renewable(&self) -> Vec<String> {
        self.desired
            .entries
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    model::resolve::Entry::Leaf(_) | model::resolve::Entry::Kubeconfig(_)
                )
            })
            .map(|e| e.name().to_string())
            .collect()
    }

    /// The entries `renew all` means: the renewable ones whose spec entry has `renew_all` (the
    /// default spec leaves kubelet.conf out, as kubeadm does: the kubelet rotates it).
    pub fn renew_all_names(&self) -> Vec<String> {
        self.desired
            .entries
            .iter()
            .filter(|e| match e {
                model::resolve::Entry::Leaf(c) => c.renew_all,
                model::resolve::Entry::Kubeconfig(k) => k.renew_all,
                _ => false,
            })
            .map(|e| e.name().to_string())
            .collect()
    }

    /// Renews the named entries (`all` = every entry the spec marks `renew_all`): new key
    /// (current algorithm), new serial, fresh validity, subject and SANs from the spec and inputs
    /// (or the old certificate's SANs with `keep_sans`, as kubeadm does). Replaced files are kept
    /// as `<file>.bak-<UTC>`. CAs are never touched; entries whose CA is external are skipped.
    pub fn renew(
        &self,
        targets: &[String],
        sans: Sans,
        run: &Run<'_>,
        mode: Mode,
    ) -> Result<InitReport> {
        let known = self.renewable();
        let mut names = Vec::new();
        for t in targets {
            if t == "all" {
                names.extend(self.renew_all_names());
            } else if known.contains(t) {
                names.push(t.clone());
            } else {
                return Err(Error::Input {
                    field: "certs renew".into(),
                    message: format!(
                        "unknown certificate {t:?} (known: all, {})",
                        known.join(", ")
                    ),
                });
            }
        }
        if names.is_empty() {
            return Err(Error::Input {
                field: "certs renew".into(),
                message: "name at least one certificate, or all".into(),
            });
        }
        names.dedup();
        self.execute(&plan::Options::renew(names), run, mode, |disk, desired| {
            let mut desired = desired.clone();
            if sans == Sans::KeepExisting {
                keep_existing_sans(&mut desired, disk);
            }
            desired
        })
    }

    /// Writes a key and a CSR for every leaf (`<path>.key`, `<path>.csr`) and, for every kubeconfig,
    /// the kubeconfig holding only its client key plus `<file>.csr` (kubeadm's external-CA layout).
    /// Refuses, writing nothing, when any of those files exists (checked for every entry under
    /// the lock before the first write).
    pub fn generate_csr(&self, run: &Run<'_>) -> Result<Vec<apply::Written>> {
        Ok(self
            .execute(&plan::Options::csr(), run, Mode::Apply, |_, d| d.clone())?
            .written)
    }
}

/// Which credentials outside the tree a [`Kpki`] is opened for ([`Kpki::for_outside`]): the
/// spec section that describes them says which server URL they need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outside {
    /// `kubeconfig user` (`[user]`).
    User,
    /// `kubeconfig bootstrap` (`[bootstrap]`).
    Bootstrap,
    /// `nodes` (`[node]`).
    Nodes,
}

/// What a command that issues outside the tree did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Issued {
    /// The plan (the tree's CAs, then the issued entry).
    pub plan: plan::Plan,
    /// Files written (with an output path).
    pub written: Vec<apply::Written>,
    /// Files produced but not written (without an output path: for printing).
    pub rendered: Vec<apply::Rendered>,
}

impl Kpki {
    /// Opens the spec and the inputs for issuing credentials outside the tree: signing needs
    /// the tree's CAs, and the server URL is the only use of the endpoints, so an advertise
    /// address is needed only when that URL is the local endpoint (see [`Outside`]).
    pub fn for_outside(
        spec_path: Option<&Path>,
        args: &inputs::InputArgs,
        what: Outside,
    ) -> Result<Kpki> {
        let spec = match spec_path {
            Some(p) => model::spec::Spec::load(p)?,
            None => model::spec::Spec::default_spec()?,
        };
        let server = match what {
            Outside::User => spec.user.as_ref().map(|u| u.server.clone()),
            Outside::Bootstrap => spec.bootstrap.as_ref().map(|b| b.server.clone()),
            Outside::Nodes => spec.node.as_ref().map(|n| n.kubeconfig.server.clone()),
        }
        .unwrap_or_else(|| "control_plane".into());
        let inputs = client_inputs(&spec, args, &server)?;
        Kpki::from_parts(spec, inputs)
    }

    /// kubeadm's `kubeconfig user`: a kubeconfig for `req.client_name` in `req.orgs`, as the
    /// spec's `[user]` section describes it, signed by the tree's CA. Written to `req.out`
    /// (through the one writer, under the tree lock), or returned in [`Issued::rendered`].
    pub fn user_kubeconfig(&self, req: &ops::user::UserRequest, run: &Run<'_>) -> Result<Issued> {
        let req = req.validated()?;
        let mut inputs = self.desired.inputs.clone();
        inputs.cert_validity = req.validity;
        let desired = model::resolve::resolve_user(
            &self.spec,
            &inputs,
            &req.client_name,
            &req.orgs,
            req.out.as_deref(),
        )?;
        self.issue_outside(&desired, run, req.out.is_some())
    }

    /// The bootstrap kubeconfig a joining kubelet uses (`[bootstrap]`): `token` authenticates,
    /// the tree's CA is embedded. Written to `out`, or returned in [`Issued::rendered`].
    pub fn bootstrap_kubeconfig(
        &self,
        token: &ops::token::BootstrapToken,
        out: Option<&Path>,
        run: &Run<'_>,
    ) -> Result<Issued> {
        let desired = model::resolve::resolve_bootstrap(
            &self.spec,
            &self.desired.inputs,
            &token.to_string(),
            out,
        )?;
        self.issue_outside(&desired, run, out.is_some())
    }

    /// `certs upload-bundle`: kubeadm's objects (the encrypted `kube-system/kubeadm-certs`
    /// Secret, its 2-hour token, the Role and RoleBinding) for the files the spec marks
    /// `bundle = true`, encrypted with `key`.
    pub fn upload_bundle(
        &self,
        key: &ops::bundle::CertificateKey,
        owner: Option<&ops::bundle::Owner>,
        run: &Run<'_>,
    ) -> Result<ops::bundle::Upload> {
        let layout = ops::bundle::layout(&self.spec, &self.desired)?;
        let material = ops::bundle::read_tree(&layout)?;
        ops::bundle::upload(&layout, &material, key, owner, run)
    }

    /// `certs download-bundle`: decrypts the `kubeadm-certs` Secret in `secret_text` (as
    /// `kubectl get -o yaml|json` prints it; `origin` names it in errors), judges what it
    /// carries with the one assessment, and writes it into the tree through the one writer:
    /// under the lock, no-clobber (an identical file is kept, a different one refused). Errors
    /// name the data key and never quote the key or any plaintext.
    pub fn download_bundle(
        &self,
        origin: &str,
        secret_text: &str,
        key: &ops::bundle::CertificateKey,
        run: &Run<'_>,
    ) -> Result<Vec<ops::bundle::Installed>> {
        let secret = ops::bundle::parse_secret(secret_text).map_err(|m| Error::Input {
            field: origin.to_string(),
            message: m,
        })?;
        let layout = ops::bundle::layout(&self.spec, &self.desired)?;
        let material =
            ops::bundle::open_bundle(&layout, &secret, key, run.now).map_err(|(k, m)| {
                let field = if k == ops::bundle::SECRET_NAME {
                    format!("{origin}: {k}")
                } else {
                    format!("{origin}: {}/{k}", ops::bundle::SECRET_NAME)
                };
                Error::Input { field, message: m }
            })?;
        let opts = ops::bundle::InstallOptions {
            lock_timeout: self.lock_timeout,
            allow_insecure_dir: self.allow_insecure_dir,
        };
        ops::bundle::install(&layout, &material, &opts)
    }

    /// The join bundle's files for this tree: which travel and where they go.
    pub fn bundle_layout(&self) -> Result<ops::bundle::Layout> {
        ops::bundle::layout(&self.spec, &self.desired)
    }

    /// The bulk issuer of node credentials (`[node]`) into `out_dir`, with this instance's lock
    /// timeout and directory policy.
    pub fn node_issuer(
        &self,
        out_dir: &Path,
        credentials: NodeCredentials,
    ) -> Result<ops::nodes::NodeIssuer> {
        let serving = credentials == NodeCredentials::ClientAndServing;
        let mut n =
            ops::nodes::NodeIssuer::new(&self.spec, self.desired.inputs.clone(), out_dir, serving)?;
        n.lock_timeout = self.lock_timeout;
        n.allow_insecure_dir = self.allow_insecure_dir;
        Ok(n)
    }

    /// Plans the `fresh` view of `desired` (the tree's CAs plus entries outside the tree) and
    /// writes it, or renders it when `write` is false.
    fn issue_outside(
        &self,
        desired: &model::resolve::Desired,
        run: &Run<'_>,
        write: bool,
    ) -> Result<Issued> {
        limits::check_jobs(run.jobs)?;
        limits::check_now(run.now, longest_validity(desired))?;
        let cert_dir = &self.desired.inputs.cert_dir;
        // Without a cert dir there is no CA: the plan says so, naming the CA's files (the lock
        // would create the directory).
        let _lock = if write && cert_dir.is_dir() {
            if !self.allow_insecure_dir {
                let outside = desired
                    .entries
                    .iter()
                    .filter(|e| !matches!(e, model::resolve::Entry::Ca(_)));
                apply::write::check_dirs_secure(outside.filter_map(|e| e.main_path().parent()))?;
            }
            Some(apply::write::lock_dir(
                cert_dir,
                self.desired.modes.dir,
                self.lock_timeout,
            )?)
        } else {
            None
        };
        // The output's own path first: a file of the tree (a CA key above all) or a key file is
        // refused as such, before anything is read from it.
        let policy = apply::write::WritePolicy::for_tree(&self.desired, self.allow_insecure_dir)
            .with_outside(desired);
        if write {
            let outs: Vec<apply::write::PlannedWrite<'_>> = desired
                .entries
                .iter()
                .filter(|e| !matches!(e, model::resolve::Entry::Ca(_)))
                .map(|e| apply::write::PlannedWrite {
                    entry: e.name(),
                    path: e.main_path(),
                    kind: apply::write::WriteKind::Contents,
                })
                .collect();
            policy.check(&outs)?;
        }
        let disk = disk::observe(desired);
        let opts = plan::Options {
            view: plan::View::Fresh,
            ..Default::default()
        };
        let plan = plan::plan(desired, &disk, run.now, &opts);
        plan.check()?;
        let ctx = apply::Context {
            now: run.now,
            entropy: run.entropy,
            jobs: run.jobs,
        };
        let (written, rendered) = if write {
            // The tree's files stay the tree's: an `--out` never lands on one, nor on any file
            // holding a private key; its own directory is its root.
            (
                apply::apply_with_policy(desired, &disk, &plan, &ctx, false, policy)?,
                Vec::new(),
            )
        } else {
            (Vec::new(), apply::render(desired, &disk, &plan, &ctx)?)
        };
        Ok(Issued {
            plan,
            written,
            rendered,
        })
    }
}

/// Inputs for commands that issue credentials outside the tree (`kubeconfig user`, `bootstrap`,
/// `nodes`), whose only use of the endpoints is one server URL of kind `server`: with a
/// control-plane endpoint and `server = "control_plane"` the advertise address is not needed;
/// otherwise it must be given, configured or read from the tree, never detected on this
/// machine (the credentials are for other machines).
pub(crate) fn client_inputs(
    spec: &model::spec::Spec,
    args: &inputs::InputArgs,
    server: &str,
) -> Result<inputs::Inputs> {
    let cfg = inputs::load_config(args.config.as_deref())?;
    let has_endpoint = args
        .control_plane_endpoint
        .as_ref()
        .or(cfg.control_plane_endpoint.as_ref())
        .is_some_and(|e| !e.trim().is_empty());
    let mut args = args.clone();
    let no_address = args.advertise_address.is_none() && cfg.advertise_address.is_none();
    if no_address && has_endpoint && server == "control_plane" {
        // A stand-in from TEST-NET-1 (RFC 5737): never written, since the server is the endpoint.
        args.advertise_address = Some(std::net::IpAddr::from([192, 0, 2, 1]));
    }
    let i = inputs::Inputs::discovered_from_tree(spec, &args)?;
    if matches!(
        i.origins.get("advertise_address"),
        Some(inputs::origin::Origin::Detected { .. })
    ) {
        return Err(Error::input(
            "--control-plane-endpoint",
            "the API server URL is unknown: give --control-plane-endpoint or \
             --apiserver-advertise-address, or a --config that sets one (kpki does not guess it \
             from this machine's addresses for credentials other machines use)",
        ));
    }
    Ok(i)
}

/// The longest validity any entry of `desired` is issued with.
fn longest_validity(desired: &model::resolve::Desired) -> time::Duration {
    desired
        .entries
        .iter()
        .filter_map(|e| match e {
            model::resolve::Entry::Ca(c) | model::resolve::Entry::Leaf(c) => Some(c.validity),
            model::resolve::Entry::Kubeconfig(k) => Some(k.validity),
            model::resolve::Entry::KeyPair(_) => None,
        })
        .max()
        .unwrap_or(time::Duration::ZERO)
}

/// kubeadm's `certs certificate-key`: 32 random bytes, hex-encoded (64 lower-case characters).
pub fn certificate_key(run: &Run<'_>) -> Result<String> {
    let mut b = [0u8; 32];
    run.entropy.fill(&mut b)?;
    Ok(hex::encode(b))
}

/// `renew --keep-sans`: take each leaf's SANs from its certificate on disk (kubeadm's way).
fn keep_existing_sans(desired: &mut model::resolve::Desired, disk: &disk::Disk) {
    for e in &mut desired.entries {
        let model::resolve::Entry::Leaf(c) = e else {
            continue;
        };
        let Some(disk::Seen::Cert {
            cert: disk::read::Observed::Present(cf),
            ..
        }) = disk.entries.get(&c.name)
        else {
            continue;
        };
        if let Ok(info) = x509::inspect::info(&cf.der) {
            let vals: Vec<String> = info
                .dns
                .iter()
                .cloned()
                .chain(info.ips.iter().map(|i| i.to_string()))
                .collect();
            let (dns, ips) = model::resolve::split_sans(&vals);
            c.profile.dns = dns;
            c.profile.ips = ips;
        }
    }
}
