//! Read-only views of a tree: the audit ([`verify`]) and kubeadm's expiration table
//! ([`expiration`]); for operators, Prometheus metrics ([`metrics`]), the hierarchy as a picture
//! ([`picture`]) and the audit as one HTML page ([`html`]).

pub mod expiration;
pub mod html;
pub mod metrics;
pub mod picture;
pub mod verify;
