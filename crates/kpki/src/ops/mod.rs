//! Commands beyond the tree itself: per-node credentials ([`nodes`]), extra users ([`user`]),
//! bootstrap tokens ([`token`]) and the control-plane join bundle ([`bundle`]).

pub mod bundle;
pub mod nodes;
pub mod token;
pub mod user;
