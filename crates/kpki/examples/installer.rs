//! What an installer does with the kpki library, end to end, in a temporary directory:
//! make the control plane's PKI, audit it, issue kubelet credentials for three workers, and
//! print when everything expires. Run by the test command (`scripts/test.sh`):
//!
//! ```sh
//! cargo run -p kpki --example installer
//! ```
//!
//! Every step is a view of the same pipeline (spec -> inputs -> assessment -> plan -> apply), so
//! the audit after `init` is clean and a second `init` writes nothing.

use std::error::Error;

use kpki::nodes::{NoProgress, NodeReader};
use kpki::{expiration, verify};
use kpki::{InputArgs, KeyAlgorithm, Kpki, Mode, NodeCredentials, Outside, Run};

fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let pki = dir.path().join("pki");
    let mut args = InputArgs::for_cert_dir(&pki);
    args.node_name = Some("cp-1".into());
    args.advertise_address = Some([10, 0, 0, 10].into());
    args.control_plane_endpoint = Some("k8s.example.internal:6443".into());
    args.key_algorithm = Some(KeyAlgorithm::EcdsaP256);
    let run = Run::now();

    // 1. The control plane's tree: three CAs, the leaves, sa.key/sa.pub, five kubeconfigs.
    let kpki = Kpki::new(None, &args)?;
    let made = kpki.init(&kpki::plan::Options::default(), &run, Mode::Apply)?;
    println!(
        "init: {} files written under {}",
        made.written.len(),
        dir.path().display()
    );

    // 2. The audit: the same judgement the plan acted on, so nothing is wrong.
    let audit = kpki.verify(&verify::Options::default(), &run)?;
    println!(
        "verify: {} error(s), {} warning(s)",
        audit.summary.errors, audit.summary.warnings
    );
    if audit.has_errors() {
        return Err("a fresh tree failed its own audit".into());
    }
    let again = kpki.init(&kpki::plan::Options::default(), &run, Mode::Apply)?;
    if !again.written.is_empty() {
        return Err("a second init wrote files".into());
    }

    // 3. Three workers: kubelet client kubeconfigs signed by the cluster CA (the spec's [node]).
    let workers = Kpki::for_outside(None, &args, Outside::Nodes)?;
    let issuer = workers.node_issuer(&dir.path().join("nodes"), NodeCredentials::Client)?;
    let list = "worker-1,10.0.1.1\nworker-2,10.0.1.2\nworker-3,10.0.1.3\n";
    let mut reader = NodeReader::new(list.as_bytes());
    let summary = issuer.issue_all(&mut reader, &run, &NoProgress)?;
    println!(
        "nodes: {} issued, {} file(s) written",
        summary.issued, summary.files_written
    );
    if summary.issued != 3 || !summary.failed.is_empty() {
        return Err(format!("expected three workers, got {summary:?}").into());
    }

    // 4. When everything expires (kubeadm's check-expiration tables).
    let table = kpki.expiration(&expiration::Options::default(), &run)?;
    print!("{}", expiration::render_text(&table));
    Ok(())
}
