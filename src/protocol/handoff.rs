//! Handoff manifest: the courier's signed account, at the depot, of every cash-on-delivery order
//! it carried for one merchant, with the customers' payments. See
//! docs/protocol.md#handoff-manifest.
//!
//! The payments ride inside the signed body: the courier cannot change, add or drop one without
//! breaking its own signature, and each payment is still the customer's signed payment to the
//! merchant, which the courier could never redirect.

use super::payment::Payment;
use super::request::MAX_MEMO;
use super::{SignedBody, VERSION, VerifyError, label};
use crate::codec::{Decode, DecodeError, Encode, Put, Reader};
use crate::crypto::{Id, PublicKey, SecretKey, Signature};

/// Most orders one manifest may list.
pub const MAX_HANDOFF_ENTRIES: u32 = 10_000;

/// What became of one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Delivered and paid: the customer's payment to the merchant.
    Paid(Box<Payment>),
    /// The customer refused the delivery.
    Refused {
        /// Why, for people (at most 120 bytes).
        reason: String,
    },
    /// Still with the courier (nobody home, not yet attempted).
    NotDelivered,
}

/// One order's line in the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoffEntry {
    /// The order (its id: blake3 of the order's signing bytes).
    pub order: Id,
    /// When the outcome was recorded (courier's clock).
    pub time: u64,
    /// What happened.
    pub outcome: Outcome,
}

/// A courier-signed manifest for one merchant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoffManifest {
    /// The courier, who signs.
    pub courier: PublicKey,
    /// The merchant the orders are from.
    pub merchant: PublicKey,
    /// When made.
    pub time: u64,
    /// The orders, strictly ascending by order id.
    pub entries: Vec<HandoffEntry>,
    /// Courier signature.
    pub signature: Signature,
}

impl SignedBody for HandoffManifest {
    const LABEL: &'static [u8] = label::HANDOFF;

    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u8(VERSION);
        self.courier.encode(out);
        self.merchant.encode(out);
        out.put_u64(self.time);
        out.put_u32(self.entries.len() as u32);
        for e in &self.entries {
            e.order.encode(out);
            out.put_u64(e.time);
            match &e.outcome {
                Outcome::Paid(p) => {
                    out.put_u8(1);
                    p.encode(out);
                }
                Outcome::Refused { reason } => {
                    out.put_u8(2);
                    out.put_var8(reason.as_bytes());
                }
                Outcome::NotDelivered => out.put_u8(3),
            }
        }
    }
}

impl Encode for HandoffManifest {
    fn encode(&self, out: &mut Vec<u8>) {
        self.encode_body(out);
        self.signature.encode(out);
    }
}

impl Decode for HandoffManifest {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.version("handoff manifest", VERSION)?;
        let courier = PublicKey::decode(r, "handoff courier")?;
        let merchant = PublicKey::decode(r, "handoff merchant")?;
        if courier == merchant {
            return Err(DecodeError::InvalidValue(
                "handoff from the merchant itself",
            ));
        }
        let time = r.u64("handoff time")?;
        let n = r.count32("handoff entries", 1, MAX_HANDOFF_ENTRIES, 41)?;
        let mut entries: Vec<HandoffEntry> = Vec::with_capacity(n);
        for _ in 0..n {
            let order = Id::decode(r, "handoff order")?;
            if entries.last().is_some_and(|l| l.order >= order) {
                return Err(DecodeError::NonCanonical(
                    "handoff orders not strictly ascending",
                ));
            }
            let time = r.u64("handoff entry time")?;
            let outcome = match r.u8("handoff outcome")? {
                1 => Outcome::Paid(Box::new(Payment::decode_from(r)?)),
                2 => Outcome::Refused {
                    reason: super::till::read_text(r, "refusal reason", 0, MAX_MEMO)?,
                },
                3 => Outcome::NotDelivered,
                got => {
                    return Err(DecodeError::InvalidTag {
                        what: "handoff outcome",
                        got,
                    });
                }
            };
            entries.push(HandoffEntry {
                order,
                time,
                outcome,
            });
        }
        let signature = Signature::decode(r, "handoff signature")?;
        Ok(HandoffManifest {
            courier,
            merchant,
            time,
            entries,
            signature,
        })
    }
}

impl HandoffManifest {
    /// Signs a manifest (entries are sorted by order id first; reasons cut to 120 bytes).
    pub fn sign(
        courier: &SecretKey,
        merchant: PublicKey,
        time: u64,
        mut entries: Vec<HandoffEntry>,
    ) -> HandoffManifest {
        entries.sort_by_key(|a| a.order);
        entries.dedup_by(|a, b| a.order == b.order);
        for e in &mut entries {
            if let Outcome::Refused { reason } = &mut e.outcome {
                *reason = super::till::cut(reason, MAX_MEMO);
            }
        }
        let mut m = HandoffManifest {
            courier: courier.public(),
            merchant,
            time,
            entries,
            signature: Signature([0; 64]),
        };
        m.signature = courier.sign(&m.signing_bytes());
        m
    }

    /// Checks the courier's signature.
    pub fn verify(&self) -> Result<(), VerifyError> {
        self.courier
            .verify(&self.signing_bytes(), &self.signature, "handoff manifest")?;
        Ok(())
    }
}
