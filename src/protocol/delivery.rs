//! Delivery receipt: the courier's signed acknowledgement, given to the customer at the door, that
//! a cash-on-delivery order was paid. See docs/protocol.md#delivery-receipt.

use super::cod_order::{CodOrder, MAX_ORDER_ID};
use super::payment::Payment;
use super::till::read_text;
use super::{SignedBody, VERSION, VerifyError, label};
use crate::codec::{Decode, DecodeError, Encode, Put, Reader};
use crate::crypto::{Id, PublicKey, SecretKey, Signature};
use crate::money::Fen;

/// A courier-signed receipt for a paid delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReceipt {
    /// The courier, who signs.
    pub courier: PublicKey,
    /// The merchant paid.
    pub merchant: PublicKey,
    /// The order's id (blake3 of its signing bytes).
    pub order: Id,
    /// The merchant's order number.
    pub order_id: String,
    /// The customer's payment.
    pub payment_id: Id,
    /// The customer.
    pub payer: PublicKey,
    /// Amount paid.
    pub amount: Fen,
    /// When collected (courier's clock).
    pub time: u64,
    /// Courier signature.
    pub signature: Signature,
}

impl SignedBody for DeliveryReceipt {
    const LABEL: &'static [u8] = label::DELIVERY_RECEIPT;

    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u8(VERSION);
        self.courier.encode(out);
        self.merchant.encode(out);
        self.order.encode(out);
        out.put_var8(self.order_id.as_bytes());
        self.payment_id.encode(out);
        self.payer.encode(out);
        out.put_u64(self.amount.0);
        out.put_u64(self.time);
    }
}

impl Encode for DeliveryReceipt {
    fn encode(&self, out: &mut Vec<u8>) {
        self.encode_body(out);
        self.signature.encode(out);
    }
}

impl Decode for DeliveryReceipt {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.version("delivery receipt", VERSION)?;
        let courier = PublicKey::decode(r, "receipt courier")?;
        let merchant = PublicKey::decode(r, "receipt merchant")?;
        let order = Id::decode(r, "receipt order")?;
        let order_id = read_text(r, "order id", 1, MAX_ORDER_ID)?;
        let payment_id = Id::decode(r, "receipt payment id")?;
        let payer = PublicKey::decode(r, "receipt payer")?;
        let amount = Fen(r.u64("receipt amount")?);
        if amount == Fen::ZERO {
            return Err(DecodeError::InvalidValue("zero delivery amount"));
        }
        let time = r.u64("receipt time")?;
        let signature = Signature::decode(r, "delivery receipt signature")?;
        Ok(DeliveryReceipt {
            courier,
            merchant,
            order,
            order_id,
            payment_id,
            payer,
            amount,
            time,
            signature,
        })
    }
}

impl DeliveryReceipt {
    /// Signs a receipt for a payment of `order`.
    pub fn sign(courier: &SecretKey, order: &CodOrder, payment: &Payment, time: u64) -> Self {
        let mut d = DeliveryReceipt {
            courier: courier.public(),
            merchant: order.merchant,
            order: order.id(),
            order_id: order.order_id.clone(),
            payment_id: payment.id(),
            payer: payment.payer(),
            amount: payment.amount,
            time,
            signature: Signature([0; 64]),
        };
        d.signature = courier.sign(&d.signing_bytes());
        d
    }

    /// Checks the courier's signature.
    pub fn verify(&self) -> Result<(), VerifyError> {
        self.courier
            .verify(&self.signing_bytes(), &self.signature, "delivery receipt")?;
        Ok(())
    }
}
