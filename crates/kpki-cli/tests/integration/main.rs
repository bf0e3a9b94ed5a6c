//! kpki's integration tests, one test binary (one link, one process; `cargo test` runs the tests
//! of a binary in parallel threads): the real `kpki` binary checked with tools that are not kpki
//! (openssl, kubectl, etcd, x509-parser). One module per topic; shared helpers in [`util`].
//!
//! Run one topic with `cargo test -p kpki-cli --test integration crash::`. Tests that measure
//! time, race or kill processes, or bind ports take [`util::serial`], so they never run beside
//! each other. How to add a module and which helpers exist: `README.md` beside this file.

#![allow(clippy::unwrap_used)] // tests may unwrap (project rule)

mod util;

mod bad_input;
mod bundle;
mod check_expiration;
mod concurrency;
mod config_semantics;
mod crash;
mod etcd;
mod fs_safety;
mod hardening;
mod init_behaviour;
mod init_parity;
mod kubeconfig;
mod lifecycle;
mod newcomer;
mod no_secrets_in_errors;
mod node;
mod nodes;
mod one_judge;
mod operate;
mod rotate;
mod token;
mod verify;
