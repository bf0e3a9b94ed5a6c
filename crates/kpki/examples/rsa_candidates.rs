//! RSA key generators compared in one run, and the key-generation floor of a control-plane tree
//! with the fastest of them (issue 17; `scripts/bench-rsa.sh` runs it, docs/dependencies.md has
//! the figures).
//!
//! Candidates, measured round-robin (one key of each in turn, so a change of machine load hits
//! them all alike), one thread, wall time per key:
//!
//! * `aws-lc-rs`: `aws_lc_rs::rsa::KeyPair::generate`, aws-lc's `EVP_PKEY_keygen`, which calls
//!   `RSA_generate_key_ex` — aws-lc's lower-level generator — plus a size check. Calling
//!   `RSA_generate_key_ex` through `aws-lc-sys` directly would need `unsafe` (the workspace forbids
//!   it) and measures the same C function.
//! * `rcgen/aws-lc-rs`: `rcgen::KeyPair::generate_rsa_for`, kpki's generator without the
//!   `openssl-rsa` feature (the above plus PKCS#8 encoding).
//! * `openssl`: `openssl::rsa::Rsa::generate` from the `openssl` crate, OpenSSL built from source
//!   (`openssl-src`, the version printed below) and linked statically.
//! * `kpki` (not a candidate: what kpki's generation costs with `openssl-rsa`): OpenSSL's key,
//!   PKCS#1 DER, wrapped in PKCS#8 and loaded into aws-lc for signing, plus the PEM.
//!
//! RustCrypto's `rsa` is not measured: it is banned by `scripts/deps-check.sh` (RUSTSEC-2023-0071,
//! Marvin, no fixed version), so adding it, even as a dev-dependency, fails CI.
//!
//! Then the floor: the fastest bare candidate (by mean) generating the tree's 16 keys on 2 threads
//! (each thread takes the next key until 16 are made), wall time from the first spawn to the last
//! join, `ROUNDS` times.
//!
//! Usage: `rsa_candidates [KEYS] [ROUNDS] [BITS]` (defaults: 80 keys per candidate, 15 rounds,
//! 2048), or `rsa_candidates floor NAME [ROUNDS] [BITS]` for the floor alone with candidate NAME. Needs `--features openssl-rsa`. Output: a Markdown table, then one line of
//! `key=value` pairs for scripts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use kpki::internal::x509::keys::{KeyAlgorithm, PrivateKey};

const TREE_KEYS: usize = 16;
const THREADS: usize = 2;

type Generator = fn(u32) -> Result<(), String>;

fn aws_lc_rs(bits: u32) -> Result<(), String> {
    let size = match bits {
        2048 => aws_lc_rs::rsa::KeySize::Rsa2048,
        3072 => aws_lc_rs::rsa::KeySize::Rsa3072,
        4096 => aws_lc_rs::rsa::KeySize::Rsa4096,
        _ => return Err(format!("{bits} bits")),
    };
    let k = aws_lc_rs::rsa::KeyPair::generate(size).map_err(|e| e.to_string())?;
    std::hint::black_box(k);
    Ok(())
}

fn rcgen_aws_lc_rs(bits: u32) -> Result<(), String> {
    let size = match bits {
        2048 => rcgen::RsaKeySize::_2048,
        3072 => rcgen::RsaKeySize::_3072,
        4096 => rcgen::RsaKeySize::_4096,
        _ => return Err(format!("{bits} bits")),
    };
    let k = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, size)
        .map_err(|e| e.to_string())?;
    std::hint::black_box(k);
    Ok(())
}

fn openssl(bits: u32) -> Result<(), String> {
    let k = openssl::rsa::Rsa::generate(bits).map_err(|e| e.to_string())?;
    std::hint::black_box(k);
    Ok(())
}

fn kpki_path(bits: u32) -> Result<(), String> {
    let alg: KeyAlgorithm = format!("RSA-{bits}").parse()?;
    let k = PrivateKey::generate(alg).map_err(|e| e.to_string())?;
    std::hint::black_box(k);
    Ok(())
}

struct Stats {
    mean: f64,
    median: f64,
    sd: f64,
    min: f64,
    max: f64,
}

fn stats(xs: &[f64]) -> Stats {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    let median = if s.len() % 2 == 1 {
        s[s.len() / 2]
    } else {
        (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
    };
    Stats {
        mean,
        median,
        sd,
        min: s.first().copied().unwrap_or(0.0),
        max: s.last().copied().unwrap_or(0.0),
    }
}

/// Wall time of `TREE_KEYS` keys made by `THREADS` threads taking the next key in turn.
fn tree_wall_ms(generate: Generator, bits: u32) -> Result<f64, String> {
    let next = AtomicUsize::new(0);
    let t0 = Instant::now();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    while next.fetch_add(1, Ordering::Relaxed) < TREE_KEYS {
                        generate(bits)?;
                    }
                    Ok::<(), String>(())
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().map_err(|_| "a thread panicked".to_string())?)
    })?;
    Ok(t0.elapsed().as_secs_f64() * 1e3)
}

/// The floor alone, with a named candidate: `floor NAME [ROUNDS] [BITS]`.
fn floor_only(
    candidates: &[(&str, Generator, bool)],
    mut args: impl Iterator<Item = String>,
) -> Result<(), String> {
    let name = args.next().ok_or("floor: which candidate?")?;
    let rounds: usize = args
        .next()
        .map_or(Ok(15), |v| v.parse().map_err(|e| format!("rounds: {e}")))?;
    let bits: u32 = args
        .next()
        .map_or(Ok(2048), |v| v.parse().map_err(|e| format!("bits: {e}")))?;
    let (_, generate, _) = candidates
        .iter()
        .find(|(n, _, c)| *c && *n == name)
        .ok_or_else(|| format!("no candidate {name:?}"))?;
    generate(bits)?;
    let walls = (0..rounds)
        .map(|_| tree_wall_ms(*generate, bits))
        .collect::<Result<Vec<_>, _>>()?;
    let f = stats(&walls);
    println!(
        "bits={bits} fastest={name} floor_rounds={rounds} floor_ms_mean={:.3} floor_ms_median={:.3} floor_ms_sd={:.3} floor_ms_all={}",
        f.mean,
        f.median,
        f.sd,
        walls.iter().map(|w| format!("{w:.3}")).collect::<Vec<_>>().join(",")
    );
    Ok(())
}

fn main() -> Result<(), String> {
    let candidates: [(&str, Generator, bool); 4] = [
        ("aws-lc-rs", aws_lc_rs, true),
        ("rcgen/aws-lc-rs", rcgen_aws_lc_rs, true),
        ("openssl", openssl, true),
        ("kpki (openssl + aws-lc load)", kpki_path, false),
    ];
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("floor") {
        args.next();
        return floor_only(&candidates, args);
    }
    let mut num = |name: &str, default: usize| -> Result<usize, String> {
        match args.next() {
            Some(v) => v.parse().map_err(|e| format!("{name}: {e}")),
            None => Ok(default),
        }
    };
    let keys = num("keys", 80)?;
    let rounds = num("rounds", 15)?;
    let bits = num("bits", 2048)? as u32;

    // One warm-up key each (first-use initialisation: DRBG seeding, CPU feature detection).
    for (_, generate, _) in &candidates {
        generate(bits)?;
    }
    let mut times = vec![Vec::with_capacity(keys); candidates.len()];
    for _ in 0..keys {
        for (i, (_, generate, _)) in candidates.iter().enumerate() {
            let t = Instant::now();
            generate(bits)?;
            times[i].push(t.elapsed().as_secs_f64() * 1e3);
        }
    }

    println!("OpenSSL: {}", openssl::version::version());
    println!();
    println!("| RSA-{bits}, one thread, wall per key | keys | mean | median | sd | min | max |");
    println!("|---|---|---|---|---|---|---|");
    let mut best: Option<(usize, f64)> = None;
    for (i, (name, _, candidate)) in candidates.iter().enumerate() {
        let s = stats(&times[i]);
        println!(
            "| {name} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
            times[i].len(),
            s.mean,
            s.median,
            s.sd,
            s.min,
            s.max
        );
        if *candidate && best.is_none_or(|(_, m)| s.mean < m) {
            best = Some((i, s.mean));
        }
    }
    let (bi, _) = best.ok_or("no candidate")?;
    let (bname, bgen, _) = candidates[bi];
    let walls = (0..rounds)
        .map(|_| tree_wall_ms(bgen, bits))
        .collect::<Result<Vec<_>, _>>()?;
    let f = stats(&walls);
    println!();
    println!(
        "| floor: {bname}, {TREE_KEYS} keys on {THREADS} threads, wall | rounds | mean | median | sd | min | max |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {bname} | {rounds} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
        f.mean, f.median, f.sd, f.min, f.max
    );
    println!();
    let means: Vec<String> = candidates
        .iter()
        .enumerate()
        .map(|(i, (name, _, _))| {
            format!(
                "mean_ms[{}]={:.3}",
                name.split_whitespace().next().unwrap_or(name),
                stats(&times[i]).mean
            )
        })
        .collect();
    println!(
        "bits={bits} keys={keys} {} fastest={bname} floor_rounds={rounds} floor_ms_mean={:.3} floor_ms_median={:.3} floor_ms_sd={:.3} floor_ms_all={}",
        means.join(" "),
        f.mean,
        f.median,
        f.sd,
        walls.iter().map(|w| format!("{w:.3}")).collect::<Vec<_>>().join(",")
    );
    Ok(())
}
