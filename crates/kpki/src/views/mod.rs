//! Read-only views of a tree: the audit ([`verify`]) and kubeadm's expiration table
//! ([`expiration`]).

pub mod expiration;
pub mod verify;
