//! Double-spend proof: two different transfers of one coin signed by the same key. Anyone can check
//! it with no other context. See docs/protocol.md#double-spend-proof.

use super::transfer::Transfer;
use super::{SignedBody, VERSION, VerifyError};
use crate::codec::{Decode, DecodeError, Encode, Put, Reader};
use crate::crypto::{Id, PublicKey};

/// Proof that `signer` spent coin `first.input` twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoubleSpendProof {
    /// The cheater's key.
    pub signer: PublicKey,
    /// The transfer with the smaller id.
    pub first: Transfer,
    /// The transfer with the larger id.
    pub second: Transfer,
}

impl Encode for DoubleSpendProof {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(VERSION);
        self.signer.encode(out);
        self.first.encode(out);
        self.second.encode(out);
    }
}

impl Decode for DoubleSpendProof {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.version("double-spend proof", VERSION)?;
        let signer = PublicKey::decode(r, "proof signer")?;
        let first = Transfer::decode_from(r)?;
        let second = Transfer::decode_from(r)?;
        if first.id() >= second.id() {
            return Err(DecodeError::NonCanonical(
                "proof transfers not in ascending id order",
            ));
        }
        Ok(DoubleSpendProof {
            signer,
            first,
            second,
        })
    }
}

impl DoubleSpendProof {
    /// Builds a proof from two transfers in either order.
    pub fn new(signer: PublicKey, a: Transfer, b: Transfer) -> DoubleSpendProof {
        if a.id() <= b.id() {
            DoubleSpendProof {
                signer,
                first: a,
                second: b,
            }
        } else {
            DoubleSpendProof {
                signer,
                first: b,
                second: a,
            }
        }
    }

    /// The coin spent twice.
    pub fn coin(&self) -> Id {
        self.first.input
    }

    /// Checks the proof: the same input, two different transfers, both signed by `signer`.
    pub fn verify(&self) -> Result<(), VerifyError> {
        if self.first.input != self.second.input {
            return Err(VerifyError::Mismatch(
                "proof transfers spend different coins".into(),
            ));
        }
        if self.first.id() == self.second.id() {
            return Err(VerifyError::Mismatch(
                "proof transfers are the same transfer".into(),
            ));
        }
        self.signer.verify(
            &self.first.signing_bytes(),
            &self.first.signature,
            "proof transfer",
        )?;
        self.signer.verify(
            &self.second.signing_bytes(),
            &self.second.signature,
            "proof transfer",
        )?;
        Ok(())
    }

    /// The proof id.
    pub fn id(&self) -> Id {
        Id::hash(&self.to_bytes())
    }
}
