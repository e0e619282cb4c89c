//! The Tongbao protocol messages. See docs/protocol.md.
//!
//! Every signed message has one canonical encoding (see [`crate::codec`]) and its own domain label.
//! Each message type lives in its own module.

pub mod certificate;
pub mod cod_order;
pub mod coin;
pub mod delivery;
pub mod file;
pub mod handoff;
pub mod journal;
pub mod keyset;
pub mod note;
pub mod payment;
pub mod proof;
pub mod refund;
pub mod request;
pub mod revocation;
pub mod sync;
pub mod till;
pub mod transfer;

use crate::codec::{DecodeError, signing_bytes};
use crate::crypto::{CryptoError, Id, PublicKey};
use crate::money::Fen;

/// Domain labels, one per signed message type (and per derived hash).
pub mod label {
    /// Issuer key set, signed by the issuer root key.
    pub const KEYSET: &[u8] = b"tongbao/v1/keyset";
    /// Note, signed by an issuer note key.
    pub const NOTE: &[u8] = b"tongbao/v1/note";
    /// Transfer, signed by the holder of the coin it consumes.
    pub const TRANSFER: &[u8] = b"tongbao/v1/transfer";
    /// Coin id of a transfer output (hashed, not signed).
    pub const COIN_ID: &[u8] = b"tongbao/v1/coin-id";
    /// Wallet registration, signed by the wallet key.
    pub const REGISTRATION: &[u8] = b"tongbao/v1/registration";
    /// Wallet certificate, signed by an issuer note key.
    pub const CERTIFICATE: &[u8] = b"tongbao/v1/certificate";
    /// Payment request, signed by the payee.
    pub const REQUEST: &[u8] = b"tongbao/v1/request";
    /// Payment, signed by the payer.
    pub const PAYMENT: &[u8] = b"tongbao/v1/payment";
    /// Receipt, signed by the payee.
    pub const RECEIPT: &[u8] = b"tongbao/v1/receipt";
    /// Revocation list, signed by the issuer root key.
    pub const REVOCATION: &[u8] = b"tongbao/v1/revocation";
    /// Sync request, signed by the wallet.
    pub const SYNC_REQUEST: &[u8] = b"tongbao/v1/sync-request";
    /// Sync response, signed by the issuer root key.
    pub const SYNC_RESPONSE: &[u8] = b"tongbao/v1/sync-response";
    /// Online payment confirmation, signed by the issuer root key.
    pub const CONFIRMATION: &[u8] = b"tongbao/v1/confirmation";
    /// File container checksum (hashed, not signed).
    pub const FILE: &[u8] = b"tongbao/v1/file";
    /// Collection statement inside a collected-then-spent proof, signed by the issuer root key.
    pub const COLLECTION: &[u8] = b"tongbao/v1/collection";
    /// Till authorization, signed by the merchant.
    pub const TILL_AUTHORIZATION: &[u8] = b"tongbao/v1/till-authorization";
    /// Refund request id derivation (hashed, not signed).
    pub const REFUND: &[u8] = b"tongbao/v1/refund";
    /// Till journal, signed by the till.
    pub const TILL_JOURNAL: &[u8] = b"tongbao/v1/till-journal";
    /// Cash-on-delivery order, signed by the merchant.
    pub const COD_ORDER: &[u8] = b"tongbao/v1/cod-order";
    /// Delivery receipt, signed by the courier.
    pub const DELIVERY_RECEIPT: &[u8] = b"tongbao/v1/delivery-receipt";
    /// Handoff manifest, signed by the courier.
    pub const HANDOFF: &[u8] = b"tongbao/v1/handoff";
}

/// The current version byte of every message.
pub const VERSION: u8 = 1;

/// A message whose body (everything but the trailing signature) is signed under a domain label.
pub trait SignedBody {
    /// The domain label.
    const LABEL: &'static [u8];

    /// Appends the body: every field except the signature, starting with the version byte.
    fn encode_body(&self, out: &mut Vec<u8>);

    /// The exact bytes the signature covers.
    fn signing_bytes(&self) -> Vec<u8> {
        let mut body = Vec::new();
        self.encode_body(&mut body);
        signing_bytes(Self::LABEL, &body)
    }

    /// The message id: blake3 of the signing bytes (so it does not depend on the signature).
    fn id(&self) -> Id {
        Id::hash(&self.signing_bytes())
    }
}

/// Why a message failed verification. Every variant names the rule that was broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Bytes could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A signature check failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The issuer key id is not in the key set the verifier holds.
    #[error(
        "signed by unknown issuer key {0}: issued by another issuer, or import the newer issuer key set"
    )]
    UnknownIssuerKey(u32),
    /// An issuer note key's signature on a note or certificate does not check. Notes and
    /// certificates do not name their issuer (and every issuer's first note key has id 1), so this
    /// is what one from another issuer looks like, as well as a damaged one.
    #[error("bad issuer signature on {0}: damaged, or issued by another issuer")]
    BadIssuerSignature(&'static str),
    /// The issuer key was not valid for the purpose at that time.
    #[error("issuer key {key_id} is not valid for {what} at {at}")]
    IssuerKeyNotValid {
        /// The key id.
        key_id: u32,
        /// What it was used for.
        what: &'static str,
        /// At which time (RFC 3339).
        at: String,
    },
    /// A key set or revocation list signed by a different issuer root.
    #[error("from another issuer (root key {0})")]
    OtherIssuer(String),
    /// Outputs do not sum to the input.
    #[error("value not conserved: input {input}, outputs {outputs}")]
    ValueNotConserved {
        /// The input value.
        input: Fen,
        /// The sum of outputs (saturating).
        outputs: Fen,
    },
    /// Longer chain than the policy allows.
    #[error("coin has {hops} hops, more than the policy maximum {max}")]
    TooManyHops {
        /// Hops found.
        hops: usize,
        /// Policy maximum.
        max: u8,
    },
    /// A transfer does not consume the coin it follows.
    #[error("broken chain: transfer {0} does not spend the coin before it")]
    BrokenChain(usize),
    /// An output index past the transfer's outputs.
    #[error("output index {0} out of range")]
    BadOutputIndex(u8),
    /// Times that go backwards along a chain.
    #[error("time goes backwards along the coin's chain")]
    TimeOrder,
    /// A time after the verifier's clock plus the allowed skew.
    #[error("{0} is dated in the future")]
    FromTheFuture(&'static str),
    /// Expired.
    #[error("{what} expired at {at}")]
    Expired {
        /// What expired.
        what: &'static str,
        /// When (RFC 3339).
        at: String,
    },
    /// A limit in the payer's certificate was broken.
    #[error("{what} {amount} exceeds the payer's limit {limit}")]
    OverLimit {
        /// Which limit.
        what: &'static str,
        /// The amount found.
        amount: String,
        /// The limit.
        limit: String,
    },
    /// A revoked key.
    #[error("wallet {0} is revoked by the issuer")]
    Revoked(String),
    /// A rule about a payment's structure.
    #[error("invalid payment: {0}")]
    BadPayment(String),
    /// A restricted (earmarked) coin used against its restriction.
    #[error("restricted coin: {0}")]
    Earmark(String),
    /// A message of the right shape but the wrong context.
    #[error("{0}")]
    Mismatch(String),
}

/// Things a verifier needs to know besides the message: the issuer keys, the clock, revocations.
pub struct Context<'a> {
    /// The issuer key set the verifier trusts.
    pub keys: &'a keyset::IssuerKeySet,
    /// The verifier's clock (unix seconds).
    pub now: u64,
    /// Revoked wallet keys, if the verifier holds a list.
    pub revoked: Option<&'a revocation::RevocationList>,
}

impl Context<'_> {
    /// Errors if `key` is revoked.
    pub fn check_not_revoked(&self, key: &PublicKey) -> Result<(), VerifyError> {
        match self.revoked {
            Some(list) if list.is_revoked(key) => Err(VerifyError::Revoked(key.address())),
            _ => Ok(()),
        }
    }

    /// Errors if `t` is after now plus the policy's clock skew.
    pub fn check_not_future(&self, t: u64, what: &'static str) -> Result<(), VerifyError> {
        if t > self
            .now
            .saturating_add(u64::from(self.keys.policy.clock_skew_secs))
        {
            return Err(VerifyError::FromTheFuture(what));
        }
        Ok(())
    }
}
