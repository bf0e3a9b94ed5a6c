//! The key-generation floor of a control-plane tree, for `scripts/bench.sh`.
//!
//! Generates the 16 keys of a default tree (3 CAs, 7 leaves, sa, 5 kubeconfigs) one after another
//! on one thread, `ROUNDS` times, and prints the mean CPU time of one tree's keys and that divided
//! by the cores: no schedule can build the tree faster than that on this machine, since every key
//! costs that CPU time whatever thread makes it. CPU time comes from the thread's own scheduler
//! statistics (`/proc/thread-self/schedstat`), so other load on the machine does not inflate it.
//!
//! Usage: `keygen_floor [RSA-2048|ECDSA-P256|...] [ROUNDS] [CORES]` (defaults: RSA-2048, 10, all).
//! Output: one line of `key=value` pairs.

use kpki::internal::x509::keys::{KeyAlgorithm, PrivateKey};

const TREE_KEYS: usize = 16;

/// CPU time this thread has run, in nanoseconds.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let alg: KeyAlgorithm = args.next().as_deref().unwrap_or("RSA-2048").parse()?;
    let rounds: usize = match args.next() {
        Some(r) => r.parse().map_err(|e| format!("rounds: {e}"))?,
        None => 10,
    };
    let cores: usize = match args.next() {
        Some(c) => c.parse().map_err(|e| format!("cores: {e}"))?,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let mut per_key = Vec::with_capacity(rounds * TREE_KEYS);
    for _ in 0..rounds * TREE_KEYS {
        let before = thread_cpu_ns().ok_or("cannot read /proc/thread-self/schedstat")?;
        let key = PrivateKey::generate(alg).map_err(|e| e.to_string())?;
        let after = thread_cpu_ns().ok_or("cannot read /proc/thread-self/schedstat")?;
        std::hint::black_box(key);
        per_key.push((after - before) as f64 / 1e6);
    }
    let n = per_key.len() as f64;
    let mean = per_key.iter().sum::<f64>() / n;
    let sd = (per_key.iter().map(|k| (k - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
    let mut sorted = per_key.clone();
    sorted.sort_by(f64::total_cmp);
    let tree = mean * TREE_KEYS as f64;
    println!(
        "alg={alg} keys={} key_cpu_ms_mean={mean:.3} key_cpu_ms_sd={sd:.3} key_cpu_ms_min={:.3} key_cpu_ms_max={:.3} \
         tree_keys={TREE_KEYS} tree_keygen_cpu_ms={tree:.1} cores={cores} floor_ms={:.1}",
        per_key.len(),
        sorted.first().copied().unwrap_or(0.0),
        sorted.last().copied().unwrap_or(0.0),
        tree / cores as f64
    );
    Ok(())
}
