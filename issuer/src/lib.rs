//! The Tongbao issuer: keys, certification, issuance and the ledger, over sled.
//!
//! The binary `issuer` is a thin CLI over this library; `issuer demo` drives it together with the
//! wallet engine from `tongbao`.

pub mod audit;
pub mod bench;
pub mod clawback;
pub mod demo;
pub mod ledger;
pub mod pilot;
pub mod recovery;
pub mod server;
pub mod settle;

pub use ledger::{Issuer, IssuerError, LedgerStats};
