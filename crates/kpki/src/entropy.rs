//! The one seam for randomness: serial numbers, keys, tokens.
//!
//! Production uses the operating system's CSPRNG through aws-lc-rs (and, for RSA keys with the
//! `openssl-rsa` feature, OpenSSL's DRBG seeded from the operating system: see
//! [`PrivateKey::generate`]). Tests plug in a
//! deterministic source (fixed serials, a pool of pre-made keys) so their output is exact and
//! RSA-heavy tests stay fast.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::x509::keys::{KeyAlgorithm, PrivateKey};

/// Source of everything random kpki produces. `Sync` because keys are generated in parallel.
pub trait Entropy: Sync {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]) -> Result<()>;

    /// A new private key.
    fn key(&self, alg: KeyAlgorithm) -> Result<PrivateKey> {
        PrivateKey::generate(alg)
    }

    /// A certificate serial, uniform in [1, 2^63-2] as kubeadm draws it.
    fn serial(&self) -> Result<u64> {
        let mut b = [0u8; 8];
        self.fill(&mut b)?;
        // 63 random bits reduced into [0, 2^63-3], plus one. The modulo bias is 2^-62: negligible.
        Ok((u64::from_be_bytes(b) >> 1) % ((1u64 << 63) - 2) + 1)
    }
}

/// The operating system's CSPRNG.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemEntropy;

impl Entropy for SystemEntropy {
    fn fill(&self, buf: &mut [u8]) -> Result<()> {
        aws_lc_rs::rand::fill(buf)
            .map_err(|_| Error::crypto("random", "the system random source failed"))
    }
}

/// Deterministic entropy for tests: a counter for bytes and serials, and optionally a pool of
/// pre-made keys handed out in order (falling back to real generation when it runs dry).
#[derive(Debug)]
pub struct FixedEntropy {
    counter: AtomicU64,
    pool: Mutex<Vec<(KeyAlgorithm, String)>>,
}

impl FixedEntropy {
    /// Starts the counter at `seed`.
    pub fn new(seed: u64) -> FixedEntropy {
        FixedEntropy {
            counter: AtomicU64::new(seed),
            pool: Mutex::new(Vec::new()),
        }
    }

    /// Adds PEM keys to hand out before generating new ones.
    pub fn with_keys(self, keys: impl IntoIterator<Item = (KeyAlgorithm, String)>) -> FixedEntropy {
        if let Ok(mut p) = self.pool.lock() {
            p.extend(keys);
        }
        self
    }
}

impl Entropy for FixedEntropy {
    fn fill(&self, buf: &mut [u8]) -> Result<()> {
        for chunk in buf.chunks_mut(8) {
            let v = self.counter.fetch_add(1, Ordering::SeqCst).to_be_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }

    fn serial(&self) -> Result<u64> {
        Ok(self.counter.fetch_add(1, Ordering::SeqCst) % ((1u64 << 63) - 2) + 1)
    }

    fn key(&self, alg: KeyAlgorithm) -> Result<PrivateKey> {
        let pem = self.pool.lock().ok().and_then(|mut p| {
            let i = p.iter().position(|(a, _)| *a == alg)?;
            Some(p.remove(i).1)
        });
        match pem {
            Some(pem) => PrivateKey::from_pem(&pem).map_err(|m| Error::crypto("key pool", m)),
            None => PrivateKey::generate(alg),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_positive_and_bounded() {
        let e = SystemEntropy;
        for _ in 0..1000 {
            let s = e.serial().expect("serial");
            assert!((1..(1u64 << 63) - 1).contains(&s));
        }
        let f = FixedEntropy::new(41);
        assert_eq!(f.serial().expect("serial"), 42);
    }
}
