//! Refund: a normal payment from a merchant or till back to a customer, bound to the payment it
//! refunds. See docs/protocol.md#refund.
//!
//! The refund payment's request id is derived from the original payment id and the refund's
//! number (`refund_request_id`), so the refunder's payment signature covers the reference; the
//! wrapper adds only what is needed to recompute it. Partial refunds of one payment are numbered
//! 1, 2, ...

use super::payment::Payment;
use super::{VERSION, label};
use crate::codec::{Decode, DecodeError, Encode, Put, Reader, signing_bytes};
use crate::crypto::{Id, Nonce};

/// The request id a refund payment carries: the first 16 bytes of
/// `blake3(0x11 | "tongbao/v1/refund" | original payment id | u32 number)`.
pub fn refund_request_id(original: &Id, number: u32) -> Nonce {
    let mut body = Vec::with_capacity(36);
    body.put_raw(&original.0);
    body.put_u32(number);
    let h = blake3::hash(&signing_bytes(label::REFUND, &body));
    let mut n = [0u8; 16];
    n.copy_from_slice(&h.as_bytes()[..16]);
    Nonce(n)
}

/// A refund payment and the payment it refunds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    /// The payment refunded (one the refunder received).
    pub original: Id,
    /// Which refund of that payment this is, from 1.
    pub number: u32,
    /// The refund itself: refunder to the original payer, request id
    /// `refund_request_id(original, number)`.
    pub payment: Payment,
}

impl Encode for Refund {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(VERSION);
        self.original.encode(out);
        out.put_u32(self.number);
        self.payment.encode(out);
    }
}

impl Decode for Refund {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.version("refund", VERSION)?;
        let original = Id::decode(r, "refunded payment id")?;
        let number = r.u32("refund number")?;
        if number == 0 {
            return Err(DecodeError::InvalidValue("refund number 0"));
        }
        let payment = Payment::decode_from(r)?;
        if payment.request_id != refund_request_id(&original, number) {
            return Err(DecodeError::InvalidValue(
                "refund payment is not bound to the payment it refunds",
            ));
        }
        Ok(Refund {
            original,
            number,
            payment,
        })
    }
}
