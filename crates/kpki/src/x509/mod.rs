//! How keys, certificates and CSRs are made and read: key generation and PEM forms ([`keys`]),
//! certificate encoding and signing ([`issue`]), CSRs ([`csr`]) and read-only questions about a
//! certificate ([`inspect`]).

pub mod chain;
pub mod csr;
pub mod inspect;
pub mod issue;
pub mod keys;
