//! The durable-write floor of `kpki nodes`, for `scripts/bench-nodes.sh`.
//!
//! Writes what `kpki nodes` writes for N nodes, with nothing else: no key, no signature, no
//! reading, no checks. Per node: `mkdir <out>/node-NNNNN` (0755), then per file a temporary name
//! created 0600 (`O_CREAT | O_EXCL`), the bytes written, closed, renamed over the final name.
//! At the end one `syncfs` (file data, the renames and the new directories of the whole run):
//! the durability `kpki nodes` promises when it returns, in the cheapest order. One thread.
//!
//! Files per node: `kubelet.conf` (2,372 bytes, an ECDSA-P256 node's kubeconfig); with
//! `--serving` also `kubelet.crt` (1,000 bytes) and `kubelet.key` (227 bytes), as kpki writes.
//! With `--overwrite` the directories may exist and the files are replaced (a re-issue's floor).
//!
//! With `--crypto` it also does the cryptography `kpki nodes` cannot skip, and nothing else: per
//! node one ECDSA-P256 key generated and one signature by a CA key over 600 bytes (a kubelet
//! certificate's to-be-signed part; two of each with `--serving`), on every core, 512 nodes at a
//! time, each batch's keys made while the previous batch is written (as kpki pipelines them).
//! The files still hold filler of the same sizes.
//!
//! Usage: `nodes_floor OUT N [--serving] [--overwrite] [--crypto]`. Output: one line of
//! `key=value` pairs.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use rayon::prelude::*;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(out), Some(n)) = (args.first(), args.get(1)) else {
        return Err("usage: nodes_floor OUT N [--serving] [--overwrite]".into());
    };
    let n: usize = n.parse().map_err(|e| format!("N: {e}"))?;
    let serving = args.iter().any(|a| a == "--serving");
    let overwrite = args.iter().any(|a| a == "--overwrite");
    let out = PathBuf::from(out);
    let start = std::time::Instant::now();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&out)
        .map_err(|e| format!("{}: {e}", out.display()))?;
    let mut files: Vec<(&str, Vec<u8>)> = vec![("kubelet.conf", vec![b'k'; 2372])];
    if serving {
        files.push(("kubelet.crt", vec![b'c'; 1000]));
        files.push(("kubelet.key", vec![b'p'; 227]));
    }
    let crypto = args.iter().any(|a| a == "--crypto");
    if crypto {
        // The CA key every node's certificate is signed with.
        let ca = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING)
            .map_err(|e| format!("CA key: {e}"))?;
        let rng = SystemRandom::new();
        let per_node = if serving { 2 } else { 1 };
        // One batch's keys and signatures, on every core (made, then dropped).
        let make = |nodes: std::ops::Range<usize>| -> Result<usize, String> {
            let tbs = [0x5au8; 600];
            nodes
                .into_par_iter()
                .map(|_| {
                    let mut made = 0;
                    for _ in 0..per_node {
                        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING)
                            .map_err(|e| format!("key: {e}"))?;
                        let sig = ca.sign(&rng, &tbs).map_err(|e| format!("sign: {e}"))?;
                        made += std::hint::black_box(key).public_key().as_ref().len()
                            + sig.as_ref().len();
                    }
                    Ok(made)
                })
                .sum()
        };
        const BATCH: usize = 512;
        let batches: Vec<std::ops::Range<usize>> =
            (0..n).step_by(BATCH).map(|s| s..n.min(s + BATCH)).collect();
        let mut made = match batches.first() {
            Some(b) => make(b.clone())?,
            None => 0,
        };
        for (k, batch) in batches.iter().enumerate() {
            let ahead = batches.get(k + 1).cloned();
            let (next, wrote) = rayon::join(
                || ahead.map(make).transpose(),
                || {
                    batch
                        .clone()
                        .try_for_each(|i| write_node(&out, i, &files, overwrite))
                },
            );
            wrote?;
            std::hint::black_box(made);
            made = next?.unwrap_or(0);
        }
    } else {
        for i in 0..n {
            write_node(&out, i, &files, overwrite)?;
        }
    }
    let written = start.elapsed();
    let d = std::fs::File::open(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    rustix::fs::syncfs(&d).map_err(|e| format!("syncfs: {e}"))?;
    println!(
        "nodes={n} files_per_node={} seconds={:.3} before_syncfs={:.3}",
        files.len(),
        start.elapsed().as_secs_f64(),
        written.as_secs_f64()
    );
    Ok(())
}

/// `<out>/node-NNNNN` and its files, each through a temporary name and a rename.
fn write_node(
    out: &std::path::Path,
    i: usize,
    files: &[(&str, Vec<u8>)],
    overwrite: bool,
) -> Result<(), String> {
    let dir = out.join(format!("node-{i:05}"));
    if let Err(e) = std::fs::DirBuilder::new().mode(0o755).create(&dir) {
        if !(overwrite && e.kind() == std::io::ErrorKind::AlreadyExists) {
            return Err(format!("{}: {e}", dir.display()));
        }
    }
    for (name, data) in files {
        let tmp = dir.join(format!(".{name}.floor.kpki-tmp"));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        f.write_all(data)
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        drop(f);
        let to = dir.join(name);
        std::fs::rename(&tmp, &to).map_err(|e| format!("{}: {e}", to.display()))?;
    }
    Ok(())
}
