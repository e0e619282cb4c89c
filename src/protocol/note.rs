//! Note: the issuer-signed root of every coin. See docs/protocol.md#note.

use super::{Context, SignedBody, VERSION, VerifyError, label};
use crate::codec::{Decode, DecodeError, Encode, Put, Reader};
use crate::crypto::{Nonce, PublicKey, SecretKey, Signature};
use crate::money::Fen;

/// A restriction signed into a note and checked offline by every receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Earmark {
    /// Ordinary money.
    None,
    /// Red-envelope money: while its winner holds it, it may be paid only to merchant or till
    /// wallets (or back to the winner as change); not accepted after `expires_at`, when the issuer
    /// claws back what is left.
    MerchantsOnly {
        /// End of the pilot window (unix seconds).
        expires_at: u64,
    },
}

/// An issuer-signed root coin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The issuer key that signed it.
    pub key_id: u32,
    /// A unique random serial.
    pub serial: Nonce,
    /// Value in fen, at least 1.
    pub value: Fen,
    /// The wallet it was issued to.
    pub holder: PublicKey,
    /// When it was issued.
    pub issued_at: u64,
    /// Any restriction.
    pub earmark: Earmark,
    /// Issuer signature.
    pub signature: Signature,
}

impl SignedBody for Note {
    const LABEL: &'static [u8] = label::NOTE;

    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u8(VERSION);
        out.put_u32(self.key_id);
        out.put_raw(&self.serial.0);
        out.put_u64(self.value.0);
        self.holder.encode(out);
        out.put_u64(self.issued_at);
        match self.earmark {
            Earmark::None => out.put_u8(0),
            Earmark::MerchantsOnly { expires_at } => {
                out.put_u8(1);
                out.put_u64(expires_at);
            }
        }
    }
}

impl Encode for Note {
    fn encode(&self, out: &mut Vec<u8>) {
        self.encode_body(out);
        self.signature.encode(out);
    }
}

impl Decode for Note {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.version("note", VERSION)?;
        let key_id = r.u32("note key id")?;
        let serial = Nonce(r.array("note serial")?);
        let value = Fen(r.u64("note value")?);
        if value.0 == 0 {
            return Err(DecodeError::InvalidValue("zero note value"));
        }
        let holder = PublicKey::decode(r, "note holder")?;
        let issued_at = r.u64("note issued at")?;
        let earmark = match r.u8("note earmark")? {
            0 => Earmark::None,
            1 => Earmark::MerchantsOnly {
                expires_at: r.u64("earmark expiry")?,
            },
            got => {
                return Err(DecodeError::InvalidTag {
                    what: "note earmark",
                    got,
                });
            }
        };
        let signature = Signature::decode(r, "note signature")?;
        Ok(Note {
            key_id,
            serial,
            value,
            holder,
            issued_at,
            earmark,
            signature,
        })
    }
}

impl Note {
    /// Signs a new note with the issuer key `key_id`.
    #[allow(clippy::too_many_arguments)]
    pub fn sign(
        issuer_key: &SecretKey,
        key_id: u32,
        serial: Nonce,
        value: Fen,
        holder: PublicKey,
        issued_at: u64,
        earmark: Earmark,
    ) -> Note {
        let mut n = Note {
            key_id,
            serial,
            value,
            holder,
            issued_at,
            earmark,
            signature: Signature([0; 64]),
        };
        n.signature = issuer_key.sign(&n.signing_bytes());
        n
    }

    /// Checks the issuer signature, the key's validity, the time and the earmark's expiry.
    pub fn verify(&self, ctx: &Context<'_>) -> Result<(), VerifyError> {
        let entry = ctx
            .keys
            .check_signing_key(self.key_id, self.issued_at, ctx.now, "note")?;
        entry
            .key
            .verify(&self.signing_bytes(), &self.signature, "note")
            .map_err(|_| VerifyError::BadIssuerSignature("note"))?;
        ctx.check_not_future(self.issued_at, "note")?;
        if let Earmark::MerchantsOnly { expires_at } = self.earmark
            && ctx.now > expires_at
        {
            return Err(VerifyError::Expired {
                what: "restricted note",
                at: crate::time::format_rfc3339(expires_at),
            });
        }
        Ok(())
    }
}
