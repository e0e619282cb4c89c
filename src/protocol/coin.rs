//! Coin: a note plus its chain of transfers down to one output, checkable offline by anyone who
//! holds the issuer's key set. See docs/protocol.md#coin.

use super::note::{Earmark, Note};
use super::transfer::{Transfer, coin_id};
use super::{Context, SignedBody, VERSION, VerifyError};
use crate::codec::{Decode, DecodeError, Encode, Put, Reader};
use crate::crypto::{Id, PublicKey, Signature};
use crate::money::Fen;

/// Upper bound on hops in the encoding (the policy maximum is usually much lower).
pub const MAX_HOPS_ENCODED: u8 = 255;

/// One link of a coin's chain: a transfer and which of its outputs the coin follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// The transfer.
    pub transfer: Transfer,
    /// The output this coin continues as.
    pub index: u8,
}

/// A note and its chain of transfers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coin {
    /// The issuer-signed root.
    pub note: Note,
    /// Transfers in order, each spending the coin before it.
    pub hops: Vec<Hop>,
}

impl Encode for Coin {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(VERSION);
        self.note.encode(out);
        out.put_u8(self.hops.len() as u8);
        for h in &self.hops {
            h.transfer.encode(out);
            out.put_u8(h.index);
        }
    }
}

impl Decode for Coin {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.version("coin", VERSION)?;
        let note = Note::decode_from(r)?;
        let n = r.count8("coin hops", 0, MAX_HOPS_ENCODED)?;
        let mut hops = Vec::with_capacity(n);
        for _ in 0..n {
            let transfer = Transfer::decode_from(r)?;
            let index = r.u8("hop output index")?;
            if usize::from(index) >= transfer.outputs.len() {
                return Err(DecodeError::InvalidValue("hop output index"));
            }
            hops.push(Hop { transfer, index });
        }
        Ok(Coin { note, hops })
    }
}

/// A signature still to be checked: verification first checks structure, then all signatures at
/// once (one by one, or batched).
#[derive(Debug, Clone)]
pub struct SigCheck {
    /// The signer.
    pub key: PublicKey,
    /// The labelled signing bytes.
    pub msg: Vec<u8>,
    /// The signature.
    pub sig: Signature,
    /// What was signed, for the error.
    pub what: &'static str,
}

/// Checks every pending signature with `verify_strict`.
pub fn verify_signatures(checks: &[SigCheck]) -> Result<(), VerifyError> {
    for c in checks {
        c.key.verify(&c.msg, &c.sig, c.what)?;
    }
    Ok(())
}

/// One spend in a coin's history: coin `input` was consumed by transfer `transfer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// The coin consumed.
    pub input: Id,
    /// The transfer that consumed it.
    pub transfer: Id,
    /// Who signed (the input's holder).
    pub signer: PublicKey,
}

/// What a structurally valid coin amounts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoinInfo {
    /// The coin id of its last output (the note id if no hops).
    pub id: Id,
    /// The current holder.
    pub holder: PublicKey,
    /// The current value.
    pub value: Fen,
    /// Number of transfers.
    pub hops: usize,
    /// The root note's id.
    pub note_id: Id,
    /// The note's restriction.
    pub earmark: Earmark,
    /// Every spend along the chain, oldest first.
    pub links: Vec<Link>,
    /// Time of the last transfer (or issue).
    pub last_time: u64,
}

impl Coin {
    /// A fresh coin: just a note.
    pub fn from_note(note: Note) -> Coin {
        Coin {
            note,
            hops: Vec::new(),
        }
    }

    /// Checks everything except signatures, and queues the signature checks in `checks`.
    ///
    /// Rules: the note's issuer key is known and valid, every transfer spends the coin before it,
    /// outputs sum exactly to their input, hop count within policy, times never go backwards and are
    /// not in the future.
    pub fn check_structure(
        &self,
        ctx: &Context<'_>,
        checks: &mut Vec<SigCheck>,
    ) -> Result<CoinInfo, VerifyError> {
        let note = &self.note;
        let entry = ctx
            .keys
            .check_signing_key(note.key_id, note.issued_at, ctx.now, "note")?;
        let note_msg = note.signing_bytes();
        let note_id = Id::hash(&note_msg);
        checks.push(SigCheck {
            key: entry.key,
            msg: note_msg,
            sig: note.signature,
            what: "note",
        });
        if let Earmark::MerchantsOnly { expires_at } = note.earmark
            && ctx.now > expires_at
        {
            return Err(VerifyError::Expired {
                what: "restricted note",
                at: crate::time::format_rfc3339(expires_at),
            });
        }
        if self.hops.len() > usize::from(ctx.keys.policy.max_hops) {
            return Err(VerifyError::TooManyHops {
                hops: self.hops.len(),
                max: ctx.keys.policy.max_hops,
            });
        }
        let mut id = note_id;
        let mut holder = note.holder;
        let mut value = note.value;
        let mut last_time = note.issued_at;
        let mut links = Vec::with_capacity(self.hops.len());
        for (i, hop) in self.hops.iter().enumerate() {
            let t = &hop.transfer;
            if t.input != id {
                return Err(VerifyError::BrokenChain(i));
            }
            let total = t.output_total().ok_or(VerifyError::ValueNotConserved {
                input: value,
                outputs: Fen(u64::MAX),
            })?;
            if total != value {
                return Err(VerifyError::ValueNotConserved {
                    input: value,
                    outputs: total,
                });
            }
            if t.time < last_time {
                return Err(VerifyError::TimeOrder);
            }
            let out = t
                .outputs
                .get(usize::from(hop.index))
                .ok_or(VerifyError::BadOutputIndex(hop.index))?;
            let msg = t.signing_bytes();
            let tid = Id::hash(&msg);
            checks.push(SigCheck {
                key: holder,
                msg,
                sig: t.signature,
                what: "transfer",
            });
            links.push(Link {
                input: id,
                transfer: tid,
                signer: holder,
            });
            id = coin_id(&tid, hop.index);
            holder = out.holder;
            value = out.value;
            last_time = t.time;
        }
        ctx.check_not_future(last_time, "coin")?;
        Ok(CoinInfo {
            id,
            holder,
            value,
            hops: self.hops.len(),
            note_id,
            earmark: note.earmark,
            links,
            last_time,
        })
    }

    /// Full offline verification: structure, then every signature.
    pub fn verify(&self, ctx: &Context<'_>) -> Result<CoinInfo, VerifyError> {
        let mut checks = Vec::with_capacity(self.hops.len() + 1);
        let info = self.check_structure(ctx, &mut checks)?;
        verify_signatures(&checks)?;
        Ok(info)
    }

    /// The coin extended by a transfer of it, following output `index`.
    pub fn extended(&self, transfer: Transfer, index: u8) -> Coin {
        let mut hops = self.hops.clone();
        hops.push(Hop { transfer, index });
        Coin {
            note: self.note.clone(),
            hops,
        }
    }

    /// The coin id without verifying anything.
    pub fn id(&self) -> Id {
        match self.hops.last() {
            None => self.note.id(),
            Some(h) => h.transfer.output_coin_id(h.index),
        }
    }

    /// The current holder, without verifying anything.
    pub fn holder(&self) -> PublicKey {
        match self.hops.last() {
            None => self.note.holder,
            Some(h) => h
                .transfer
                .outputs
                .get(usize::from(h.index))
                .map(|o| o.holder)
                .unwrap_or(self.note.holder),
        }
    }

    /// The current value, without verifying anything.
    pub fn value(&self) -> Fen {
        match self.hops.last() {
            None => self.note.value,
            Some(h) => h
                .transfer
                .outputs
                .get(usize::from(h.index))
                .map(|o| o.value)
                .unwrap_or(Fen::ZERO),
        }
    }
}
