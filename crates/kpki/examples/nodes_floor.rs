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
//! Usage: `nodes_floor OUT N [--serving] [--overwrite]`. Output: one line of `key=value` pairs.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;

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
    let mut dir = out.clone();
    for i in 0..n {
        dir.push(format!("node-{i:05}"));
        if let Err(e) = std::fs::DirBuilder::new().mode(0o755).create(&dir) {
            if !(overwrite && e.kind() == std::io::ErrorKind::AlreadyExists) {
                return Err(format!("{}: {e}", dir.display()));
            }
        }
        for (name, data) in &files {
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
        dir.pop();
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
