//! Commands beyond the tree itself: per-node credentials ([`nodes`]), extra users ([`user`]),
//! bootstrap tokens ([`token`]), the control-plane join bundle ([`bundle`]), and renewing only
//! what is due ([`renew_due`]).

pub mod bundle;
pub mod nodes;
pub mod renew_due;
pub mod token;
pub mod user;
