//! `when` conditions of the spec table: which entries and variants apply to which cluster.
//!
//! A condition is one or more terms joined by ` and `; each term may start with `not `:
//!
//! * `local_etcd` — the cluster runs a stacked (local) etcd (not `etcd.external`);
//! * `first_control_plane` — the node starts the cluster (`kpki init`, like `kubeadm init`), not
//!   a control-plane node that joins it (`kpki init --join`, like `kubeadm join --control-plane`);
//! * `kubeadm >= 1.29` (also `>`, `<`, `<=`, `==`) — the target kubeadm version;
//! * `feature ControlPlaneKubeletLocalMode` — the kubeadm feature gate is on for the target
//!   (config value, else that version's default; a gate the version does not have is off).
//!
//! This is how version-dependent layout is written in certs-spec.toml rather than in Rust.

use std::fmt;

use crate::inputs::version;

/// A comparison against the target kubeadm minor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `>=`
    Ge,
    /// `>`
    Gt,
}

/// One fact a term tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Atom {
    /// `local_etcd`.
    LocalEtcd,
    /// `first_control_plane`.
    FirstControlPlane,
    /// `kubeadm OP 1.MINOR`.
    Kubeadm(Op, u32),
    /// `feature NAME`.
    Feature(String),
}

/// A possibly negated atom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// `not ...`.
    pub negated: bool,
    /// What is tested.
    pub atom: Atom,
}

/// A parsed `when`: every term must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// The terms, all required.
    pub terms: Vec<Term>,
}

/// The facts a condition is evaluated against.
pub trait Facts {
    /// Stacked etcd.
    fn local_etcd(&self) -> bool;
    /// The node starts the cluster (not `--join`).
    fn first_control_plane(&self) -> bool {
        true
    }
    /// Target kubeadm minor.
    fn kubeadm_minor(&self) -> u32;
    /// Effective feature gate.
    fn feature(&self, name: &str) -> bool;
}

impl Condition {
    /// Parses a `when` string; errors name what is wrong.
    pub fn parse(text: &str) -> Result<Condition, String> {
        let mut terms = Vec::new();
        for raw in text.split(" and ") {
            let raw = raw.trim();
            let (negated, rest) = match raw.strip_prefix("not ") {
                Some(r) => (true, r.trim()),
                None => (false, raw),
            };
            let words: Vec<&str> = rest.split_whitespace().collect();
            let atom = match words.as_slice() {
                ["local_etcd"] => Atom::LocalEtcd,
                ["first_control_plane"] => Atom::FirstControlPlane,
                ["kubeadm", op, v] => {
                    let op = match *op {
                        "<" => Op::Lt,
                        "<=" => Op::Le,
                        "==" => Op::Eq,
                        ">=" => Op::Ge,
                        ">" => Op::Gt,
                        o => return Err(format!("when = {text:?}: unknown comparison {o:?} (use <, <=, ==, >=, >)")),
                    };
                    let minor = v
                        .strip_prefix("1.")
                        .and_then(|m| m.parse::<u32>().ok())
                        .ok_or_else(|| format!("when = {text:?}: {v:?} is not a kubeadm version such as 1.29"))?;
                    Atom::Kubeadm(op, minor)
                }
                ["feature", name] => {
                    if version::gate(name).is_none() {
                        return Err(format!(
                            "when = {text:?}: unknown kubeadm feature gate {name:?} (known: {})",
                            version::GATES.iter().map(|g| g.name).collect::<Vec<_>>().join(", ")
                        ));
                    }
                    Atom::Feature((*name).to_string())
                }
                _ => {
                    return Err(format!(
                        "when = {text:?}: unknown condition {raw:?} (known: local_etcd, first_control_plane, kubeadm >= 1.N, feature NAME; join with \" and \", negate with \"not \")"
                    ))
                }
            };
            terms.push(Term { negated, atom });
        }
        Ok(Condition { terms })
    }

    /// Whether every term holds.
    pub fn holds(&self, facts: &dyn Facts) -> bool {
        self.terms.iter().all(|t| {
            let v = match &t.atom {
                Atom::LocalEtcd => facts.local_etcd(),
                Atom::FirstControlPlane => facts.first_control_plane(),
                Atom::Feature(name) => facts.feature(name),
                Atom::Kubeadm(op, m) => {
                    let k = facts.kubeadm_minor();
                    match op {
                        Op::Lt => k < *m,
                        Op::Le => k <= *m,
                        Op::Eq => k == *m,
                        Op::Ge => k >= *m,
                        Op::Gt => k > *m,
                    }
                }
            };
            v != t.negated
        })
    }

    /// Whether every term of `other` is also a term of `self` (so `self` implies `other`).
    pub fn implies(&self, other: &Condition) -> bool {
        other.terms.iter().all(|t| self.terms.contains(t))
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(" and ")?;
            }
            if t.negated {
                f.write_str("not ")?;
            }
            match &t.atom {
                Atom::LocalEtcd => f.write_str("local_etcd")?,
                Atom::FirstControlPlane => f.write_str("first_control_plane")?,
                Atom::Feature(n) => write!(f, "feature {n}")?,
                Atom::Kubeadm(op, m) => {
                    let op = match op {
                        Op::Lt => "<",
                        Op::Le => "<=",
                        Op::Eq => "==",
                        Op::Ge => ">=",
                        Op::Gt => ">",
                    };
                    write!(f, "kubeadm {op} 1.{m}")?
                }
            }
        }
        Ok(())
    }
}

impl Facts for crate::inputs::Inputs {
    fn local_etcd(&self) -> bool {
        self.local_etcd
    }
    fn first_control_plane(&self) -> bool {
        !self.join
    }
    fn kubeadm_minor(&self) -> u32 {
        self.target.kubeadm_minor
    }
    fn feature(&self, name: &str) -> bool {
        self.target.feature(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct F(bool, u32, bool);
    impl Facts for F {
        fn local_etcd(&self) -> bool {
            self.0
        }
        fn kubeadm_minor(&self) -> u32 {
            self.1
        }
        fn feature(&self, _: &str) -> bool {
            self.2
        }
    }

    #[test]
    fn parse_and_evaluate() {
        let c = Condition::parse("local_etcd and kubeadm < 1.29").expect("parse");
        assert!(c.holds(&F(true, 28, false)));
        assert!(!c.holds(&F(true, 29, false)));
        assert!(!c.holds(&F(false, 28, false)));
        let c = Condition::parse("not feature ControlPlaneKubeletLocalMode").expect("parse");
        assert!(c.holds(&F(true, 33, false)) && !c.holds(&F(true, 33, true)));
        assert_eq!(c.to_string(), "not feature ControlPlaneKubeletLocalMode");
        assert!(Condition::parse("local_etcd and kubeadm >= 1.29")
            .expect("p")
            .implies(&Condition::parse("local_etcd").expect("p")));
        for bad in [
            "etcd",
            "kubeadm ~ 1.29",
            "kubeadm >= 29",
            "feature Nope",
            "local_etcd or x",
        ] {
            assert!(Condition::parse(bad).is_err(), "{bad}");
        }
    }
}
