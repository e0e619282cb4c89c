//! Transfer: the holder of one coin spends it wholly into 1 to 8 outputs. See
//! docs/protocol.md#transfer.

use super::{SignedBody, VERSION, label};
use crate::codec::{Decode, DecodeError, Encode, Put, Reader, signing_bytes};
use crate::crypto::{Id, Nonce, PublicKey, SecretKey, Signature};
use crate::money::Fen;

/// Most outputs one transfer may create.
pub const MAX_OUTPUTS: u8 = 8;

/// One output: a new coin of `value` held by `holder`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    /// The new holder.
    pub holder: PublicKey,
    /// Value in fen, at least 1.
    pub value: Fen,
}

/// A signed transfer of one coin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// The coin consumed (a note id or an output's coin id).
    pub input: Id,
    /// The new coins; they sum exactly to the input's value.
    pub outputs: Vec<Output>,
    /// The payer's monotonic counter (one per payment).
    pub counter: u64,
    /// When it was signed (payer's clock).
    pub time: u64,
    /// The payment request it pays.
    pub request_id: Nonce,
    /// Signature by the input coin's holder.
    pub signature: Signature,
}

impl SignedBody for Transfer {
    const LABEL: &'static [u8] = label::TRANSFER;

    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u8(VERSION);
        self.input.encode(out);
        out.put_u8(self.outputs.len() as u8);
        for o in &self.outputs {
            o.holder.encode(out);
            out.put_u64(o.value.0);
        }
        out.put_u64(self.counter);
        out.put_u64(self.time);
        out.put_raw(&self.request_id.0);
    }
}

impl Encode for Transfer {
    fn encode(&self, out: &mut Vec<u8>) {
        self.encode_body(out);
        self.signature.encode(out);
    }
}

impl Decode for Transfer {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.version("transfer", VERSION)?;
        let input = Id::decode(r, "transfer input")?;
        let n = r.count8("transfer outputs", 1, MAX_OUTPUTS)?;
        let mut outputs = Vec::with_capacity(n);
        for _ in 0..n {
            let holder = PublicKey::decode(r, "output holder")?;
            let value = Fen(r.u64("output value")?);
            if value.0 == 0 {
                return Err(DecodeError::InvalidValue("zero output value"));
            }
            outputs.push(Output { holder, value });
        }
        let counter = r.u64("transfer counter")?;
        let time = r.u64("transfer time")?;
        let request_id = Nonce(r.array("transfer request id")?);
        let signature = Signature::decode(r, "transfer signature")?;
        Ok(Transfer {
            input,
            outputs,
            counter,
            time,
            request_id,
            signature,
        })
    }
}

impl Transfer {
    /// Signs a transfer with the input coin holder's key.
    pub fn sign(
        holder: &SecretKey,
        input: Id,
        outputs: Vec<Output>,
        counter: u64,
        time: u64,
        request_id: Nonce,
    ) -> Transfer {
        let mut t = Transfer {
            input,
            outputs,
            counter,
            time,
            request_id,
            signature: Signature([0; 64]),
        };
        t.signature = holder.sign(&t.signing_bytes());
        t
    }

    /// The coin id of output `index`.
    pub fn output_coin_id(&self, index: u8) -> Id {
        coin_id(&self.id(), index)
    }

    /// Sum of the outputs, `None` on overflow.
    pub fn output_total(&self) -> Option<Fen> {
        Fen::checked_sum(self.outputs.iter().map(|o| o.value))
    }
}

/// The coin id of output `index` of the transfer with id `transfer_id`.
pub fn coin_id(transfer_id: &Id, index: u8) -> Id {
    let mut body = Vec::with_capacity(33);
    body.put_raw(&transfer_id.0);
    body.put_u8(index);
    Id::hash(&signing_bytes(label::COIN_ID, &body))
}
