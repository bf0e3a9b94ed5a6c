//! What the tree should be: the declarative table ([`spec`]) and its resolution against the
//! cluster inputs into concrete entries ([`resolve`]).

pub mod condition;
pub mod layout;
pub mod readers;
pub mod resolve;
pub mod spec;
