//! Cash-on-delivery order: the merchant's signed instruction to a courier, carrying the payment
//! request the customer pays at the door. See docs/protocol.md#cash-on-delivery-order.
//!
//! The request inside is signed by the merchant and pays the merchant's key, so the courier only
//! shows it and carries the customer's payment home: it never holds the value.

use super::request::PaymentRequest;
use super::till::read_text;
use super::{Context, SignedBody, VERSION, VerifyError, label};
use crate::codec::{Decode, DecodeError, Encode, Put, Reader};
use crate::crypto::{PublicKey, SecretKey, Signature};
use crate::money::Fen;

/// Longest order id, in UTF-8 bytes.
pub const MAX_ORDER_ID: u8 = 64;

/// A merchant-signed cash-on-delivery order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodOrder {
    /// The merchant, who signs and is paid.
    pub merchant: PublicKey,
    /// The courier who carries it.
    pub courier: PublicKey,
    /// The merchant's order number, 1 to 64 bytes of text.
    pub order_id: String,
    /// When made.
    pub created_at: u64,
    /// The payment request the customer pays: payee the merchant, amount the order's.
    pub request: PaymentRequest,
    /// Merchant signature.
    pub signature: Signature,
}

impl SignedBody for CodOrder {
    const LABEL: &'static [u8] = label::COD_ORDER;

    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u8(VERSION);
        self.merchant.encode(out);
        self.courier.encode(out);
        out.put_var8(self.order_id.as_bytes());
        out.put_u64(self.created_at);
        self.request.encode(out);
    }
}

impl Encode for CodOrder {
    fn encode(&self, out: &mut Vec<u8>) {
        self.encode_body(out);
        self.signature.encode(out);
    }
}

impl Decode for CodOrder {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.version("delivery order", VERSION)?;
        let merchant = PublicKey::decode(r, "order merchant")?;
        let courier = PublicKey::decode(r, "order courier")?;
        if courier == merchant {
            return Err(DecodeError::InvalidValue("order carried by its merchant"));
        }
        let order_id = read_text(r, "order id", 1, MAX_ORDER_ID)?;
        let created_at = r.u64("order time")?;
        let request = PaymentRequest::decode_from(r)?;
        if request.payee != merchant {
            return Err(DecodeError::InvalidValue(
                "order request does not pay the merchant",
            ));
        }
        if request.amount == Fen::ZERO {
            return Err(DecodeError::InvalidValue("zero order amount"));
        }
        let signature = Signature::decode(r, "order signature")?;
        Ok(CodOrder {
            merchant,
            courier,
            order_id,
            created_at,
            request,
            signature,
        })
    }
}

impl CodOrder {
    /// Signs an order with the merchant's key (the request must be the merchant's own, for the
    /// order's amount).
    pub fn sign(
        merchant: &SecretKey,
        courier: PublicKey,
        order_id: &str,
        created_at: u64,
        request: PaymentRequest,
    ) -> CodOrder {
        let mut o = CodOrder {
            merchant: merchant.public(),
            courier,
            order_id: super::till::cut(order_id, MAX_ORDER_ID),
            created_at,
            request,
            signature: Signature([0; 64]),
        };
        o.signature = merchant.sign(&o.signing_bytes());
        o
    }

    /// The amount to collect.
    pub fn amount(&self) -> Fen {
        self.request.amount
    }

    /// Checks the merchant's signatures on the order and on its request (not the request's
    /// expiry: that is checked at the door).
    pub fn verify(&self) -> Result<(), VerifyError> {
        self.merchant
            .verify(&self.signing_bytes(), &self.signature, "delivery order")?;
        self.request.payee.verify(
            &self.request.signing_bytes(),
            &self.request.signature,
            "order payment request",
        )?;
        Ok(())
    }

    /// Checks the signatures and that the request can still be paid at `ctx.now`.
    pub fn verify_payable(&self, ctx: &Context<'_>) -> Result<(), VerifyError> {
        self.verify()?;
        self.request.verify(ctx)
    }
}
