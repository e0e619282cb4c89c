//! Tongbao (通宝): offline-capable digital RMB.
//!
//! The library holds the protocol (money, keys, the canonical codec, notes, transfers, coins,
//! certificates, requests, payments, revocation), the wallet engine over a storage trait with the
//! sled store, and the pure rules the issuer's ledger applies. See docs/architecture.md for the code
//! map and docs/protocol.md for every byte layout.

pub mod client;
pub mod codec;
pub mod crypto;
pub mod failpoint;
pub mod money;
pub mod protocol;
pub mod settlement;
pub mod store;
pub mod testkit;
pub mod time;
pub mod wallet;

pub use crypto::{Id, Nonce, PublicKey, SecretKey, Signature};
pub use money::Fen;
pub use protocol::SignedBody;
