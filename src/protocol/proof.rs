//! Double-spend proofs: evidence that a wallet key used one coin's value twice. Anyone holding the
//! issuer's key set can check one with no other context. See docs/protocol.md#double-spend-proof
//! and docs/adr/0005-collected-then-spent-proof.md.
//!
//! Two kinds:
//!
//! 1. **Two spends**: two different transfers of one coin, both signed by its holder.
//! 2. **Collected, then spent**: the issuer root's statement that the coin was collected for its
//!    holder at a sync (its value went into that sync's fresh notes), and a transfer of that coin
//!    signed by the holder.
//!
//! Kind 1 keeps the layout it had before there were kinds: its first byte is its version byte, 1,
//! so every kind-1 proof has the same bytes and the same id as ever. Every later kind starts with
//! byte 0, which no version uses, then its kind tag, then its own fields.

use super::keyset::IssuerKeySet;
use super::transfer::Transfer;
use super::{SignedBody, VERSION, VerifyError, label};
use crate::codec::{Decode, DecodeError, Encode, Put, Reader};
use crate::crypto::{Id, Nonce, PublicKey, SecretKey, Signature};
use crate::money::Fen;

/// The first byte of a tagged proof (kind 2 and later): not a version byte.
pub const TAGGED: u8 = 0;
/// The kind tag of a collected-then-spent proof.
pub const KIND_COLLECTED_THEN_SPENT: u8 = 2;
/// The smallest encoded proof: a collected-then-spent proof whose transfer has one output
/// (2 + 161 + 170 bytes). Bounds a forged proof count before anything is allocated.
pub const MIN_PROOF_LEN: usize = 333;

/// The issuer root's statement that coin `coin` (of `value`, held by `holder`) was collected for
/// `holder` at the sync `sync_id`, settled at `collected_at`: it left circulation and its value
/// went into that sync's fresh notes. The ledger keeps the sync id and time with the coin's
/// redeemed state and signs the statement only when it needs it, for a proof.
///
/// Label `tongbao/v1/collection`, signed by the issuer root key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collection {
    /// The collected coin.
    pub coin: Id,
    /// Its value.
    pub value: Fen,
    /// The wallet it was collected for (its holder).
    pub holder: PublicKey,
    /// The sync that collected it.
    pub sync_id: Nonce,
    /// When that sync was settled (the issuer's clock).
    pub collected_at: u64,
    /// Issuer root signature.
    pub signature: Signature,
}

impl SignedBody for Collection {
    const LABEL: &'static [u8] = label::COLLECTION;

    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u8(VERSION);
        self.coin.encode(out);
        out.put_u64(self.value.0);
        self.holder.encode(out);
        out.put_raw(&self.sync_id.0);
        out.put_u64(self.collected_at);
    }
}

impl Encode for Collection {
    fn encode(&self, out: &mut Vec<u8>) {
        self.encode_body(out);
        self.signature.encode(out);
    }
}

impl Decode for Collection {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.version("collection statement", VERSION)?;
        let coin = Id::decode(r, "collected coin")?;
        let value = Fen(r.u64("collected value")?);
        if value == Fen::ZERO {
            return Err(DecodeError::InvalidValue("zero collected value"));
        }
        let holder = PublicKey::decode(r, "collected holder")?;
        let sync_id = Nonce(r.array("collecting sync id")?);
        let collected_at = r.u64("collection time")?;
        let signature = Signature::decode(r, "collection signature")?;
        Ok(Collection {
            coin,
            value,
            holder,
            sync_id,
            collected_at,
            signature,
        })
    }
}

impl Collection {
    /// Signs with the issuer root key (the signature field is replaced).
    pub fn signed(mut self, root: &SecretKey) -> Collection {
        self.signature = root.sign(&self.signing_bytes());
        self
    }

    /// Checks the signature by the root of `keys`.
    pub fn verify(&self, keys: &IssuerKeySet) -> Result<(), VerifyError> {
        keys.root.verify(
            &self.signing_bytes(),
            &self.signature,
            "collection statement",
        )?;
        Ok(())
    }
}

/// Kind 1: `signer` signed two different transfers of one coin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwoSpends {
    /// The cheater's key.
    pub signer: PublicKey,
    /// The transfer with the smaller id.
    pub first: Transfer,
    /// The transfer with the larger id.
    pub second: Transfer,
}

impl TwoSpends {
    /// Checks it with no other context: the same input, two different transfers, both signed by
    /// `signer`.
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
        for t in [&self.first, &self.second] {
            self.signer
                .verify(&t.signing_bytes(), &t.signature, "proof transfer")?;
        }
        Ok(())
    }
}

/// Kind 2: the coin was collected for its holder at a sync, and the holder then signed a transfer
/// of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectedThenSpent {
    /// The issuer's statement of the collection (names the coin and the holder).
    pub collection: Collection,
    /// The holder's transfer of the collected coin.
    pub transfer: Transfer,
}

impl CollectedThenSpent {
    /// Checks it with the issuer's key set: the statement is signed by the root of `keys`, and
    /// the transfer spends the collected coin and is signed by its holder.
    pub fn verify(&self, keys: &IssuerKeySet) -> Result<(), VerifyError> {
        self.collection.verify(keys)?;
        if self.transfer.input != self.collection.coin {
            return Err(VerifyError::Mismatch(
                "proof transfer does not spend the collected coin".into(),
            ));
        }
        self.collection.holder.verify(
            &self.transfer.signing_bytes(),
            &self.transfer.signature,
            "proof transfer",
        )?;
        Ok(())
    }
}

/// Proof that a key used one coin's value twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DoubleSpendProof {
    /// Kind 1: two different transfers of one coin by its holder.
    TwoSpends(TwoSpends),
    /// Kind 2: collected for its holder at a sync, then spent by the holder.
    CollectedThenSpent(CollectedThenSpent),
}

impl Encode for DoubleSpendProof {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            DoubleSpendProof::TwoSpends(p) => {
                out.put_u8(VERSION);
                p.signer.encode(out);
                p.first.encode(out);
                p.second.encode(out);
            }
            DoubleSpendProof::CollectedThenSpent(p) => {
                out.put_u8(TAGGED);
                out.put_u8(KIND_COLLECTED_THEN_SPENT);
                p.collection.encode(out);
                p.transfer.encode(out);
            }
        }
    }
}

impl Decode for DoubleSpendProof {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8("double-spend proof")? {
            VERSION => {
                let signer = PublicKey::decode(r, "proof signer")?;
                let first = Transfer::decode_from(r)?;
                let second = Transfer::decode_from(r)?;
                if first.id() >= second.id() {
                    return Err(DecodeError::NonCanonical(
                        "proof transfers not in ascending id order",
                    ));
                }
                Ok(DoubleSpendProof::TwoSpends(TwoSpends {
                    signer,
                    first,
                    second,
                }))
            }
            // Kind 1 has exactly one encoding, its original one: it is not a tagged kind.
            TAGGED => match r.u8("double-spend proof kind")? {
                KIND_COLLECTED_THEN_SPENT => {
                    let collection = Collection::decode_from(r)?;
                    let transfer = Transfer::decode_from(r)?;
                    Ok(DoubleSpendProof::CollectedThenSpent(CollectedThenSpent {
                        collection,
                        transfer,
                    }))
                }
                got => Err(DecodeError::InvalidTag {
                    what: "double-spend proof kind",
                    got,
                }),
            },
            got => Err(DecodeError::UnknownVersion {
                what: "double-spend proof",
                got,
                expected: VERSION,
            }),
        }
    }
}

impl DoubleSpendProof {
    /// A kind-1 proof from two transfers in either order.
    pub fn new(signer: PublicKey, a: Transfer, b: Transfer) -> DoubleSpendProof {
        let (first, second) = if a.id() <= b.id() { (a, b) } else { (b, a) };
        DoubleSpendProof::TwoSpends(TwoSpends {
            signer,
            first,
            second,
        })
    }

    /// A kind-2 proof: the collection statement and the holder's transfer of the collected coin.
    pub fn collected_then_spent(collection: Collection, transfer: Transfer) -> DoubleSpendProof {
        DoubleSpendProof::CollectedThenSpent(CollectedThenSpent {
            collection,
            transfer,
        })
    }

    /// The kind: 1 (two spends) or 2 (collected, then spent).
    pub fn kind(&self) -> u8 {
        match self {
            DoubleSpendProof::TwoSpends(_) => 1,
            DoubleSpendProof::CollectedThenSpent(_) => KIND_COLLECTED_THEN_SPENT,
        }
    }

    /// The cheater's key.
    pub fn signer(&self) -> PublicKey {
        match self {
            DoubleSpendProof::TwoSpends(p) => p.signer,
            DoubleSpendProof::CollectedThenSpent(p) => p.collection.holder,
        }
    }

    /// The coin whose value was used twice.
    pub fn coin(&self) -> Id {
        match self {
            DoubleSpendProof::TwoSpends(p) => p.first.input,
            DoubleSpendProof::CollectedThenSpent(p) => p.collection.coin,
        }
    }

    /// The cheater's transfers in the proof: two for kind 1, one for kind 2.
    pub fn transfers(&self) -> Vec<&Transfer> {
        match self {
            DoubleSpendProof::TwoSpends(p) => vec![&p.first, &p.second],
            DoubleSpendProof::CollectedThenSpent(p) => vec![&p.transfer],
        }
    }

    /// What the cheater did, for people: `spent coin <id> twice`, or `spent coin <id> after the
    /// issuer collected it for them (sync <id>)`.
    pub fn what(&self) -> String {
        match self {
            DoubleSpendProof::TwoSpends(p) => format!("spent coin {} twice", p.first.input.short()),
            DoubleSpendProof::CollectedThenSpent(p) => format!(
                "spent coin {} after the issuer collected it for them (sync {})",
                p.collection.coin.short(),
                p.collection.sync_id.short()
            ),
        }
    }

    /// Signs the collection statement of a kind-2 proof with the issuer root key; nothing for
    /// kind 1. The settlement rules are pure and hold no key: the issuer signs a statement only
    /// when settlement finds the double spend.
    pub fn sign_collection(&mut self, root: &SecretKey) {
        if let DoubleSpendProof::CollectedThenSpent(p) = self {
            p.collection = p.collection.clone().signed(root);
        }
    }

    /// Checks the proof. Kind 1: the same input, two different transfers, both signed by
    /// `signer`. Kind 2: the statement is signed by the root of `keys`, and the transfer spends
    /// the collected coin and is signed by its holder. (`keys` is not needed for kind 1.)
    pub fn verify(&self, keys: &IssuerKeySet) -> Result<(), VerifyError> {
        match self {
            DoubleSpendProof::TwoSpends(p) => p.verify(),
            DoubleSpendProof::CollectedThenSpent(p) => p.verify(keys),
        }
    }

    /// The proof id: blake3 of its whole encoding, with no label.
    pub fn id(&self) -> Id {
        Id::hash(&self.to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::transfer::Output;
    use crate::testkit::{Fixture, NOW, key};

    fn transfer(from: &SecretKey, input: Id, to: PublicKey, n: u8) -> Transfer {
        Transfer::sign(
            from,
            input,
            vec![Output {
                holder: to,
                value: Fen(700),
            }],
            1,
            NOW,
            Nonce([n; 16]),
        )
    }

    fn collected(f: &Fixture, k: &SecretKey) -> DoubleSpendProof {
        let coin = f.note(k.public(), Fen(700), 1).id();
        let statement = Collection {
            coin,
            value: Fen(700),
            holder: k.public(),
            sync_id: Nonce([9; 16]),
            collected_at: NOW,
            signature: Signature([0; 64]),
        }
        .signed(&f.root);
        DoubleSpendProof::collected_then_spent(statement, transfer(k, coin, key(4).public(), 1))
    }

    #[test]
    fn collected_then_spent_verifies_and_round_trips() {
        let f = Fixture::new();
        let k = key(3);
        let p = collected(&f, &k);
        assert_eq!(p.verify(&f.keyset), Ok(()));
        assert_eq!((p.kind(), p.signer()), (2, k.public()));
        let bytes = p.to_bytes();
        assert_eq!(&bytes[..2], &[TAGGED, KIND_COLLECTED_THEN_SPENT]);
        assert_eq!(DoubleSpendProof::decode(&bytes), Ok(p.clone()));
        let min = 2 + 161 + p.transfers()[0].to_bytes().len();
        assert_eq!((bytes.len(), min), (MIN_PROOF_LEN, MIN_PROOF_LEN));
        // Another issuer's statement, an unsigned one, a transfer of another coin, or one signed
        // by someone else: refused.
        let mut other = p.clone();
        if let DoubleSpendProof::CollectedThenSpent(c) = &mut other {
            c.collection = c.collection.clone().signed(&key(9));
        }
        assert!(other.verify(&f.keyset).is_err());
        let mut unsigned = p.clone();
        if let DoubleSpendProof::CollectedThenSpent(c) = &mut unsigned {
            c.collection.signature = Signature([0; 64]);
        }
        assert!(unsigned.verify(&f.keyset).is_err());
        unsigned.sign_collection(&f.root);
        assert_eq!(
            unsigned, p,
            "signing the statement again gives the same proof"
        );
        let mut elsewhere = p.clone();
        if let DoubleSpendProof::CollectedThenSpent(c) = &mut elsewhere {
            c.transfer = transfer(&k, Id([7; 32]), key(4).public(), 1);
        }
        assert!(elsewhere.verify(&f.keyset).is_err());
        let mut forged = p.clone();
        if let DoubleSpendProof::CollectedThenSpent(c) = &mut forged {
            c.transfer = transfer(&key(5), c.collection.coin, key(4).public(), 1);
        }
        assert!(forged.verify(&f.keyset).is_err());
    }

    #[test]
    fn kinds_have_one_encoding_each() {
        let f = Fixture::new();
        let p = collected(&f, &key(3)).to_bytes();
        // Kind 1 is never tagged; unknown kinds and versions are refused.
        for (at, byte, want) in [
            (1, 1, "invalid double-spend proof kind tag 1"),
            (1, 3, "invalid double-spend proof kind tag 3"),
            (0, 2, "unknown double-spend proof version 2"),
        ] {
            let mut b = p.clone();
            b[at] = byte;
            let err = DoubleSpendProof::decode(&b)
                .expect_err("refused")
                .to_string();
            assert!(err.contains(want), "{err}");
        }
        let k = key(3);
        let coin = f.note(k.public(), Fen(700), 2).id();
        let two = DoubleSpendProof::new(
            k.public(),
            transfer(&k, coin, key(4).public(), 1),
            transfer(&k, coin, key(5).public(), 2),
        );
        let bytes = two.to_bytes();
        assert_eq!(bytes[0], VERSION);
        assert_eq!(DoubleSpendProof::decode(&bytes), Ok(two.clone()));
        assert_eq!(two.verify(&f.keyset), Ok(()));
        assert_eq!(
            (two.kind(), two.signer(), two.coin()),
            (1, k.public(), coin)
        );
    }
}
