//! The one flag layer: text as kubeadm's flags spell it -> the typed values of
//! [`InputArgs`](crate::InputArgs). The CLI parses every flag here; an installer holding typed
//! values never needs it. Messages say what is wrong with the text; [`ParseError::at`] names the
//! flag or field it came from.

use std::net::IpAddr;

use ipnet::IpNet;
use time::Duration;

use crate::x509::keys::KeyAlgorithm;
use crate::Error;

/// Text that is not a valid value of its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(String);

impl ParseError {
    /// The error, naming the flag or config field the text came from.
    pub fn at(self, field: &str) -> Error {
        Error::input(field, self.0)
    }
}

/// An IP address, in canonical form (an IPv4-mapped IPv6 address becomes IPv4).
pub fn ip(s: &str) -> Result<IpAddr, ParseError> {
    crate::inputs::parse_ip(s).map_err(ParseError)
}

/// A TCP port, 1-65535.
pub fn port(s: &str) -> Result<u16, ParseError> {
    crate::inputs::parse_port(s).map_err(ParseError)
}

/// A service CIDR list (`10.96.0.0/12` or `10.96.0.0/12,fd00::/108`), checked like kubeadm.
pub fn cidrs(s: &str) -> Result<Vec<IpNet>, ParseError> {
    crate::inputs::parse_cidrs(s).map_err(ParseError)
}

/// A positive Go duration such as `8760h` (a validity period).
pub fn validity(s: &str) -> Result<Duration, ParseError> {
    crate::inputs::parse_validity(s).map_err(ParseError)
}

/// Any Go duration (`1h30m`, `-5m`, `0s`).
pub fn go_duration(s: &str) -> Result<Duration, ParseError> {
    crate::inputs::duration::parse_go_duration(s).map_err(ParseError)
}

/// A duration the way Go prints it (`8760h0m0s`).
pub fn format_go_duration(d: Duration) -> String {
    crate::inputs::duration::format_go_duration(d)
}

/// A key algorithm by kubeadm's name: `RSA-2048`, `RSA-3072`, `RSA-4096`, `ECDSA-P256`,
/// `ECDSA-P384` (case-insensitive).
pub fn key_algorithm(s: &str) -> Result<KeyAlgorithm, ParseError> {
    s.parse().map_err(ParseError)
}
