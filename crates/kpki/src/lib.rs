//! # kpki: the PKI of a Kubernetes control plane, from one declarative table
//!
//! kpki builds, checks and maintains the certificate tree that `kubeadm` writes under
//! `/etc/kubernetes/pki` (three CAs, the API server and etcd leaves, the service-account key pair)
//! and the kubeconfigs beside it, byte-compatible with kubeadm 1.31+.
//!
//! Data flow (see `docs/ARCHITECTURE.md`):
//!
//! ```text
//! certs-spec.toml ─► spec::Spec ─┐
//!                                ├─► resolve::Desired ─┐
//! flags / kubeadm config ─► inputs::Inputs ─┘          ├─► plan::plan (pure) ─► apply::apply (I/O)
//!                        disk::observe (reads) ────────┘
//! ```
//!
//! ```no_run
//! use kpki::{inputs::InputArgs, Kpki};
//! let args = InputArgs {
//!     cert_dir: Some("/tmp/pki".into()),
//!     node_name: Some("cp-1".into()),
//!     advertise_address: Some("10.0.0.10".into()),
//!     ..Default::default()
//! };
//! let kpki = Kpki::new(None, &args)?;
//! let report = kpki.init(&kpki::plan::Options::default(), &kpki::Run::now(), false)?;
//! for step in &report.plan.steps {
//!     println!("{} {:?}: {}", step.entry, step.action, step.reason);
//! }
//! # Ok::<(), kpki::Error>(())
//! ```

#![forbid(unsafe_code)]

pub mod apply;
pub mod disk;
pub mod duration;
pub mod entropy;
pub mod error;
pub mod inputs;
pub mod inspect;
pub mod issue;
pub mod keys;
pub mod kubeadm_config;
pub mod kubeconfig;
pub mod plan;
pub mod resolve;
pub mod spec;
pub mod tree;

use std::path::Path;

pub use error::{Error, Result};

use entropy::{Entropy, SystemEntropy};
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

/// What `init` did (or, with `dry_run`, would do).
#[derive(Debug, Clone, serde::Serialize)]
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
    pub spec: spec::Spec,
    /// The concrete entries for these inputs.
    pub desired: resolve::Desired,
}

impl Kpki {
    /// Loads the spec (`None`: the embedded default) and resolves it against the inputs
    /// (flags plus the kubeadm config file they name).
    pub fn new(spec_path: Option<&Path>, args: &inputs::InputArgs) -> Result<Kpki> {
        let spec = match spec_path {
            Some(p) => spec::Spec::load(p)?,
            None => spec::Spec::default_spec()?,
        };
        let inputs = inputs::Inputs::from_args(args)?;
        Kpki::from_parts(spec, inputs)
    }

    /// Resolves an already loaded spec against already validated inputs.
    pub fn from_parts(spec: spec::Spec, inputs: inputs::Inputs) -> Result<Kpki> {
        let desired = resolve::resolve(&spec, &inputs)?;
        Ok(Kpki { spec, desired })
    }

    /// Reads the tree and plans every entry (no writes).
    pub fn plan(&self, opts: &plan::Options, run: &Run<'_>) -> plan::Plan {
        let disk = disk::observe(&self.desired);
        plan::plan(&self.desired, &disk, run.now, opts)
    }

    /// Creates what is missing and keeps what is right; refuses (writing nothing) when anything
    /// on disk conflicts with the spec. Re-running on a complete tree changes no byte.
    pub fn init(&self, opts: &plan::Options, run: &Run<'_>, dry_run: bool) -> Result<InitReport> {
        let disk = disk::observe(&self.desired);
        let plan = plan::plan(&self.desired, &disk, run.now, opts);
        plan.check()?;
        let written = if dry_run {
            Vec::new()
        } else {
            let ctx = apply::Context {
                now: run.now,
                entropy: run.entropy,
                jobs: run.jobs,
            };
            apply::apply(&self.desired, &disk, &plan, &ctx, !opts.renew.is_empty())?
        };
        Ok(InitReport { plan, written })
    }
}
