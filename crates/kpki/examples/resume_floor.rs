//! The crypto floor of `kpki nodes` re-checking a complete set (the resume check), for issue 17.
//!
//! Each node's check needs at least one ECDSA-P256 signature verification (its client
//! certificate by the CA) and one EC private key load with aws-lc's validation (the key in its
//! kubeconfig, which must match the certificate). This times those two operations alone, on one
//! thread, by the thread's own CPU time (`/proc/thread-self/schedstat`, so other load on the
//! machine does not inflate it), and prints what N nodes cost at best on CORES cores: no
//! implementation of the same checks with the same library can do the resume check faster.
//!
//! Usage: `resume_floor [N] [CORES]` (defaults: 100000, all). Output: one line of `key=value`.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_ASN1,
    ECDSA_P256_SHA256_ASN1_SIGNING,
};

/// CPU time this thread has run, in nanoseconds.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

const SAMPLES: usize = 2000;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let n: f64 = match args.next() {
        Some(r) => r.parse().map_err(|e| format!("N: {e}"))?,
        None => 100_000.0,
    };
    let cores: f64 = match args.next() {
        Some(c) => c.parse().map_err(|e| format!("cores: {e}"))?,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()) as f64,
    };
    let rng = SystemRandom::new();
    // Distinct keys and signatures, made before the clock starts.
    let mut material = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES {
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|e| e.to_string())?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, doc.as_ref())
            .map_err(|e| e.to_string())?;
        let msg =
            format!("a to-be-signed certificate body of about 400 bytes, node {i:06} ").repeat(6);
        let sig = pair.sign(&rng, msg.as_bytes()).map_err(|e| e.to_string())?;
        material.push((
            doc.as_ref().to_vec(),
            pair.public_key().as_ref().to_vec(),
            msg,
            sig.as_ref().to_vec(),
        ));
    }
    let t0 = thread_cpu_ns().ok_or("no schedstat")?;
    for (_, public, msg, sig) in &material {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, public)
            .verify(msg.as_bytes(), sig)
            .map_err(|e| e.to_string())?;
    }
    let t1 = thread_cpu_ns().ok_or("no schedstat")?;
    for (der, ..) in &material {
        let k = EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_ASN1_SIGNING, der)
            .map_err(|e| e.to_string())?;
        std::hint::black_box(k);
    }
    let t2 = thread_cpu_ns().ok_or("no schedstat")?;
    let verify_us = (t1 - t0) as f64 / 1e3 / SAMPLES as f64;
    let key_us = (t2 - t1) as f64 / 1e3 / SAMPLES as f64;
    let floor_s = n * (verify_us + key_us) / 1e6 / cores;
    println!(
        "verify_us={verify_us:.1} key_load_us={key_us:.1} nodes={n} cores={cores} floor_s={floor_s:.2}"
    );
    Ok(())
}
