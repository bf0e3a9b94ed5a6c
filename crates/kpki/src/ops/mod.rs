//! Commands beyond the tree itself: per-node credentials ([`nodes`]), extra users ([`user`]) and
//! bootstrap tokens ([`token`]).

pub mod nodes;
pub mod token;
pub mod user;
