//! Bootstrap tokens, for the bootstrap kubeconfig `kubeadm join` uses for TLS bootstrapping
//! (that kubeconfig is the spec's `[bootstrap]` section, issued by `Kpki::bootstrap_kubeconfig`).
//!
//! A bootstrap token is `<id>.<secret>`: 6 and 16 characters of `[a-z0-9]` (kubeadm's
//! `bootstraputil.GenerateBootstrapToken`, each character uniform over the 36). A joining kubelet
//! authenticates with it through `bootstrap-kubelet.conf` (user `tls-bootstrap-token-user`, the
//! cluster CA embedded, the control-plane endpoint as server) and then asks for its client
//! certificate with a CSR.

use std::fmt;

use crate::error::{Error, Result};
use crate::Run;

const CHARS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// A bootstrap token (`[a-z0-9]{6}.[a-z0-9]{16}`).
#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapToken {
    /// Public part: the token ID (the `bootstrap-token-<id>` Secret's name suffix).
    pub id: String,
    /// Secret part.
    pub secret: String,
}

impl fmt::Display for BootstrapToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.id, self.secret)
    }
}

impl fmt::Debug for BootstrapToken {
    // Never print the secret by accident (logs, panics).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BootstrapToken({}.<redacted>)", self.id)
    }
}

fn valid_part(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

impl std::str::FromStr for BootstrapToken {
    type Err = Error;

    /// Parses and validates `id.secret`.
    fn from_str(s: &str) -> Result<BootstrapToken> {
        let bad = || {
            Error::input(
                "--token",
                "the token does not match the format [a-z0-9]{6}.[a-z0-9]{16} \
                 (kpki token generate makes one)",
            )
        };
        let (id, secret) = s.trim().split_once('.').ok_or_else(bad)?;
        if !valid_part(id, 6) || !valid_part(secret, 16) {
            return Err(bad());
        }
        Ok(BootstrapToken {
            id: id.to_string(),
            secret: secret.to_string(),
        })
    }
}

/// `len` characters uniform over `[a-z0-9]`, by rejection sampling of random bytes.
fn random_chars(run: &Run<'_>, len: usize) -> Result<String> {
    // 252 = 7 * 36: bytes at or above it would bias the first characters; they are drawn again.
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 32];
    for _ in 0..64 {
        run.entropy.fill(&mut buf)?;
        for b in buf {
            if b < 252 {
                out.push(char::from(CHARS[usize::from(b % 36)]));
                if out.len() == len {
                    return Ok(out);
                }
            }
        }
    }
    Err(Error::crypto(
        "generating a bootstrap token",
        "the random source keeps returning out-of-range bytes",
    ))
}

/// A new random bootstrap token.
pub fn generate(run: &Run<'_>) -> Result<BootstrapToken> {
    Ok(BootstrapToken {
        id: random_chars(run, 6)?,
        secret: random_chars(run, 16)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::FixedEntropy;

    #[test]
    fn generated_tokens_have_kubeadms_format_and_differ() {
        let run = Run::now();
        let a = generate(&run).expect("token");
        let b = generate(&run).expect("token");
        let text = a.to_string();
        assert_eq!(text.len(), 23);
        assert!(text.parse::<BootstrapToken>().is_ok(), "{text}");
        assert_ne!(a, b);
        assert!(!format!("{a:?}").contains(&a.secret));
    }

    #[test]
    fn bad_tokens_are_rejected() {
        for t in [
            "",
            "abcdef",
            "abcdef.0123456789abcde",
            "ABCDEF.0123456789abcdef",
            "abcde_.0123456789abcdef",
            "abcdef.0123456789abcdef.x",
        ] {
            assert!(t.parse::<BootstrapToken>().is_err(), "{t}");
        }
        assert!("abcdef.0123456789abcdef".parse::<BootstrapToken>().is_ok());
    }

    #[test]
    fn out_of_range_bytes_are_drawn_again() {
        struct High(FixedEntropy);
        impl crate::entropy::Entropy for High {
            fn fill(&self, buf: &mut [u8]) -> Result<()> {
                self.0.fill(buf)?;
                for (i, b) in buf.iter_mut().enumerate() {
                    if i % 2 == 0 {
                        *b = 255; // always rejected
                    } else {
                        *b = 36 + 5; // '5'
                    }
                }
                Ok(())
            }
        }
        let e = High(FixedEntropy::new(0));
        let run = Run {
            now: time::OffsetDateTime::UNIX_EPOCH,
            entropy: &e,
            jobs: 1,
        };
        assert_eq!(
            generate(&run).expect("token").to_string(),
            "555555.5555555555555555"
        );
    }
}
