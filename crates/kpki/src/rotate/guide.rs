//! What the operator does after each rotation command: which manifest flags point where, what
//! to restart in which order, the `kube-public/cluster-info` ConfigMap and the discovery hash.
//! The same text is the walk-through in docs/rotation.md.

use std::path::Path;

use crate::model::resolve::{Desired, Entry};
use crate::rotate::Command;

/// Facts the guide names.
pub(crate) struct Facts<'a> {
    pub desired: &'a Desired,
    /// The entries the command worked on.
    pub entries: &'a [String],
    /// `rotation/signer/ca.crt`.
    pub signer: Option<&'a Path>,
    /// The rotation folder.
    pub rotation_dir: &'a Path,
    /// `--discovery-token-ca-cert-hash` values: (which, value).
    pub hashes: Vec<(&'static str, String)>,
}

fn path_of(d: &Desired, name: &str) -> Option<String> {
    d.get(name).map(|e| match e {
        Entry::Ca(c) => c.cert_path.display().to_string(),
        Entry::KeyPair(k) => k.pub_path.display().to_string(),
        other => other.main_path().display().to_string(),
    })
}

fn key_of(d: &Desired, name: &str) -> Option<String> {
    d.get(name).map(|e| match e {
        Entry::Ca(c) => c.key_path.display().to_string(),
        Entry::KeyPair(k) => k.key_path.display().to_string(),
        other => other.main_path().display().to_string(),
    })
}

/// Which trust file each component flag reads, for the rotating entries (kubeadm's manifests).
fn flags(f: &Facts<'_>, bundle: &str) -> Vec<String> {
    let d = f.desired;
    let has = |n: &str| f.entries.iter().any(|e| e == n);
    let mut out = Vec::new();
    if has("ca") {
        let ca = path_of(d, "ca").unwrap_or_default();
        out.push(format!(
            "  {ca} ({bundle}): kube-apiserver --client-ca-file; kube-controller-manager --root-ca-file; kubelet authentication.x509.clientCAFile; every kubeconfig's certificate-authority-data (written)"
        ));
        if let Some(s) = f.signer {
            out.push(format!(
                "  {} (one certificate: the CA that signs): kube-controller-manager --cluster-signing-cert-file and --client-ca-file (they refuse a bundle, kubeadm#1350); --cluster-signing-key-file stays {}",
                s.display(),
                key_of(d, "ca").unwrap_or_default()
            ));
        }
    }
    if has("front-proxy-ca") {
        out.push(format!(
            "  {} ({bundle}): kube-apiserver and kube-controller-manager --requestheader-client-ca-file",
            path_of(d, "front-proxy-ca").unwrap_or_default()
        ));
    }
    if has("etcd-ca") {
        out.push(format!(
            "  {} ({bundle}): etcd --trusted-ca-file and --peer-trusted-ca-file; kube-apiserver --etcd-cafile",
            path_of(d, "etcd-ca").unwrap_or_default()
        ));
    }
    if has("sa") {
        out.push(format!(
            "  {} ({bundle}): kube-apiserver --service-account-key-file; {} signs: kube-apiserver --service-account-signing-key-file, kube-controller-manager --service-account-private-key-file",
            path_of(d, "sa").unwrap_or_default(),
            key_of(d, "sa").unwrap_or_default()
        ));
    }
    for e in f.entries {
        if !["ca", "front-proxy-ca", "etcd-ca", "sa"].contains(&e.as_str()) {
            out.push(format!(
                "  {} ({bundle}): every component that trusts {e}",
                path_of(d, e).unwrap_or_default()
            ));
        }
    }
    out
}

/// The lines printed after `cmd` (and the walk-through of docs/rotation.md).
pub(crate) fn lines(cmd: Command, f: &Facts<'_>) -> Vec<String> {
    let has = |n: &str| f.entries.iter().any(|e| e == n);
    let mut out = Vec::new();
    if f.entries.is_empty() {
        return out;
    }
    let hashes = |out: &mut Vec<String>| {
        for (which, h) in &f.hashes {
            out.push(format!(
                "  kubeadm join --discovery-token-ca-cert-hash {h}   ({which} CA)"
            ));
        }
    };
    let cluster_info = |out: &mut Vec<String>, what: &str| {
        if has("ca") {
            out.push(format!(
                "kube-public/cluster-info: its kubeconfig's CA data must be {what}: kpki ca rotate status --cluster-info <the same flags> | kubectl apply -f -"
            ));
        }
    };
    match cmd {
        Command::Prepare => {
            out.push("Nothing live has changed.".into());
            out.push(format!(
                "Several control-plane nodes: copy {} (mode 0700, it holds both CA keys) to the same path on every other control-plane node now, then run each phase on every control-plane node before starting the next one anywhere.",
                f.rotation_dir.display()
            ));
            if let Some(s) = f.signer {
                out.push(format!(
                    "Before trust: point kube-controller-manager's --cluster-signing-cert-file and --client-ca-file at {} (today the same certificate as ca.crt, which trust turns into a bundle the controller-manager refuses, kubeadm#1350) and restart it.",
                    s.display()
                ));
            }
            out.push("Next: kpki ca rotate trust".into());
        }
        Command::Trust => {
            out.push("Every trust point now holds the old and the new CA; the old CA still signs. Files and the flags that read them:".into());
            out.extend(flags(f, "old + new"));
            out.push("Restart, in this order, on every node (all of it before issue):".into());
            out.push("  1. kube-controller-manager: it publishes ca.crt (--root-ca-file) to every namespace's kube-root-ca.crt ConfigMap (and legacy token Secrets)".into());
            out.push("  2. workloads that use the in-cluster config (kube-proxy, CoreDNS, operators): restart them so they trust the new CA before it signs".into());
            out.push("  3. kube-apiserver, one at a time".into());
            out.push("  4. kube-scheduler".into());
            out.push("  5. kubelets (clientCAFile, kubelet.conf); worker nodes: re-run `kpki nodes` and deploy the node kubeconfigs (they get the bundle)".into());
            if has("etcd-ca") {
                out.push("  6. etcd members, one at a time".into());
            }
            cluster_info(&mut out, "the old and the new CA");
            if !f.hashes.is_empty() {
                out.push("Joins may pin either CA until finish:".into());
                hashes(&mut out);
            }
            out.push(
                "Next: kpki ca rotate issue (once every component above trusts the bundle)".into(),
            );
        }
        Command::Issue => {
            out.push("The new CA signs: every leaf and kubeconfig client certificate it concerns was re-issued (backups: <file>.bak-<UTC>); trust points list the new CA first. Files and flags:".into());
            out.extend(flags(f, "new + old"));
            out.push("Restart, in this order, on every node:".into());
            if has("etcd-ca") {
                out.push(
                    "  1. etcd members, one at a time (new server and peer certificates)".into(),
                );
            }
            out.push(format!(
                "  2. kube-apiserver, one at a time (its certificates from the new CAs{})",
                if has("sa") {
                    "; sa.key signs new service-account tokens"
                } else {
                    ""
                }
            ));
            out.push(format!(
                "  3. kube-controller-manager (controller-manager.conf{})",
                if has("ca") {
                    "; it signs CSRs with the new CA"
                } else {
                    ""
                }
            ));
            out.push("  4. kube-scheduler (scheduler.conf)".into());
            out.push("  5. kubelets (kubelet.conf); worker nodes: re-run `kpki nodes` (it re-issues node credentials under the new CA) and deploy them; a kubelet.conf that points at the kubelet's own rotated certificate needs a new one from the kubelet (docs/rotation.md)".into());
            if has("sa") {
                out.push("Service-account tokens signed with the old key stay valid until finish: let the kubelet refresh projected tokens (or restart the workloads) and re-create legacy token Secrets before finish.".into());
            }
            out.push("Next: kpki ca rotate finish (once every component above runs with the new certificates)".into());
        }
        Command::Finish => {
            out.push("Trust points hold only the new CA. Files and flags:".into());
            out.extend(flags(f, "new only"));
            if let Some(s) = f.signer {
                out.push(format!(
                    "kube-controller-manager: --cluster-signing-cert-file and --client-ca-file may point at ca.crt again (a single certificate now); {} can then be removed.",
                    s.display()
                ));
            }
            out.push("Restart, in this order: kube-controller-manager, workloads using the in-cluster config, kube-apiserver (one at a time), kube-scheduler, kubelets (and `kpki nodes` again for worker nodes), etcd members one at a time.".into());
            cluster_info(&mut out, "the new CA only");
            if !f.hashes.is_empty() {
                hashes(&mut out);
            }
            out.push(format!(
                "The old CA keys are kept in {}/archive until you remove them.",
                f.rotation_dir.display()
            ));
        }
        Command::Abort => {
            out.push("Every trust point holds the old CA only again; the unused new CA is kept in the archive.".into());
            out.extend(flags(f, "old only"));
            out.push("Restart what was restarted after trust, in the same order (kube-controller-manager, in-cluster workloads, kube-apiserver, kube-scheduler, kubelets, etcd members one at a time).".into());
            cluster_info(&mut out, "the old CA only");
        }
    }
    out
}
