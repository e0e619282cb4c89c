//! Settlement rules as pure functions over a view of the ledger. See docs/protocol.md#settlement
//! and docs/adr/0002-first-settled-wins.md.
//!
//! The ledger keeps one [`CoinState`] per coin id. Settling a chain walks it from its note:
//! a transfer of a live coin is recorded as the one that consumed it (first settled wins) and
//! its outputs become live; a transfer already recorded is skipped; a *different* transfer of a
//! consumed coin is a double spend, proven by the two transfers, and the branch from there is
//! rejected. Outputs paid to the issuer's root key (refresh and redemption) leave circulation.
//! A transfer by its holder of a coin the issuer collected for that holder at a sync is a double
//! spend too ("collected, then spent", docs/adr/0005-collected-then-spent-proof.md): the proof is
//! the issuer's statement of the collection and the transfer.
//!
//! Nothing here does I/O: effects accumulate in an [`Overlay`] that the ledger commits.

use std::collections::HashMap;

use crate::codec::{Decode, DecodeError, Encode, Put, Reader};
use crate::crypto::{Id, Nonce, PublicKey, SecretKey, Signature};
use crate::money::Fen;
use crate::protocol::SignedBody;
use crate::protocol::coin::{Coin, CoinInfo};
use crate::protocol::note::Earmark;
use crate::protocol::proof::{Collection, DoubleSpendProof, KIND_COLLECTED_THEN_SPENT};
use crate::protocol::sync::{CoinResult, CoinStatus, RejectReason};
use crate::protocol::transfer::{Transfer, coin_id};

/// What the ledger knows of one coin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoinState {
    /// In circulation, held by `holder`.
    Live {
        /// Value.
        value: Fen,
        /// Holder.
        holder: PublicKey,
    },
    /// Consumed by `transfer` (the first one settled).
    Spent {
        /// Value it had.
        value: Fen,
        /// The transfer that consumed it.
        transfer: Transfer,
    },
    /// Out of circulation: paid to the issuer (refresh, redemption), collected for its holder at a
    /// sync, or taken out by the issuer (recovery, clawback).
    Redeemed {
        /// Value.
        value: Fen,
        /// Who held it last.
        holder: PublicKey,
        /// For a coin collected for `holder` at a sync: which sync, and when. A later transfer of
        /// the coin by `holder` is then a double spend, proven by the issuer's statement of this
        /// collection ([`Collection`]) and that transfer.
        collected: Option<Collected>,
    },
}

/// The sync that collected a coin for its holder, kept with the coin's redeemed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Collected {
    /// The collecting sync's id.
    pub sync_id: Nonce,
    /// When the issuer settled that sync.
    pub at: u64,
}

impl CoinState {
    /// Its value.
    pub fn value(&self) -> Fen {
        match self {
            CoinState::Live { value, .. }
            | CoinState::Spent { value, .. }
            | CoinState::Redeemed { value, .. } => *value,
        }
    }
}

impl Encode for CoinState {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            CoinState::Live { value, holder } => {
                out.put_u8(1);
                out.put_u64(value.0);
                holder.encode(out);
            }
            CoinState::Spent { value, transfer } => {
                out.put_u8(2);
                out.put_u64(value.0);
                transfer.encode(out);
            }
            CoinState::Redeemed {
                value,
                holder,
                collected: None,
            } => {
                out.put_u8(3);
                out.put_u64(value.0);
                holder.encode(out);
            }
            CoinState::Redeemed {
                value,
                holder,
                collected: Some(c),
            } => {
                out.put_u8(4);
                out.put_u64(value.0);
                holder.encode(out);
                out.put_raw(&c.sync_id.0);
                out.put_u64(c.at);
            }
        }
    }
}

impl Decode for CoinState {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8("coin state")? {
            1 => CoinState::Live {
                value: Fen(r.u64("value")?),
                holder: PublicKey::decode(r, "holder")?,
            },
            2 => CoinState::Spent {
                value: Fen(r.u64("value")?),
                transfer: Transfer::decode_from(r)?,
            },
            3 => CoinState::Redeemed {
                value: Fen(r.u64("value")?),
                holder: PublicKey::decode(r, "holder")?,
                collected: None,
            },
            4 => CoinState::Redeemed {
                value: Fen(r.u64("value")?),
                holder: PublicKey::decode(r, "holder")?,
                collected: Some(Collected {
                    sync_id: Nonce(r.array("collecting sync id")?),
                    at: r.u64("collection time")?,
                }),
            },
            got => {
                return Err(DecodeError::InvalidTag {
                    what: "coin state",
                    got,
                });
            }
        })
    }
}

/// Read access to the ledger's coin states.
pub trait LedgerView {
    /// The error of the underlying store.
    type Error;
    /// The state of coin `id`, if the ledger knows it.
    fn coin(&self, id: &Id) -> Result<Option<CoinState>, Self::Error>;
}

/// Pending changes over a ledger view: reads see the changes first.
pub struct Overlay<'a, V: LedgerView> {
    base: &'a V,
    changes: HashMap<Id, CoinState>,
    order: Vec<Id>,
}

impl<'a, V: LedgerView> Overlay<'a, V> {
    /// No changes yet.
    pub fn new(base: &'a V) -> Self {
        Overlay {
            base,
            changes: HashMap::new(),
            order: Vec::new(),
        }
    }

    /// The state of `id`, with pending changes.
    pub fn get(&self, id: &Id) -> Result<Option<CoinState>, V::Error> {
        match self.changes.get(id) {
            Some(s) => Ok(Some(s.clone())),
            None => self.base.coin(id),
        }
    }

    /// Records a change.
    pub fn set(&mut self, id: Id, state: CoinState) {
        if self.changes.insert(id, state).is_none() {
            self.order.push(id);
        }
    }

    /// The changes in the order first made, each with its final state.
    pub fn changes(&self) -> impl Iterator<Item = (&Id, &CoinState)> {
        self.order
            .iter()
            .filter_map(|id| self.changes.get(id).map(|s| (id, s)))
    }

    /// Moves another overlay's changes (made on top of this one) into this one.
    pub fn absorb(&mut self, changes: Vec<(Id, CoinState)>) {
        for (id, s) in changes {
            self.set(id, s);
        }
    }

    /// Takes the changes out, in order.
    pub fn into_changes(self) -> Vec<(Id, CoinState)> {
        let mut changes = self.changes;
        self.order
            .into_iter()
            .filter_map(|id| changes.remove(&id).map(|s| (id, s)))
            .collect()
    }
}

impl<V: LedgerView> LedgerView for Overlay<'_, V> {
    type Error = V::Error;
    fn coin(&self, id: &Id) -> Result<Option<CoinState>, V::Error> {
        self.get(id)
    }
}

/// What settling one chain did.
#[derive(Debug, Clone)]
pub struct ChainOutcome {
    /// The result reported to the wallet.
    pub result: CoinResult,
    /// Value the syncing wallet paid to the issuer in this chain (refresh or redemption).
    pub refreshed: Fen,
    /// The cheater and proof, for a double spend. A collected-then-spent proof comes with its
    /// collection statement unsigned: the issuer signs it ([`ChainOutcome::sign_collection`])
    /// before the proof goes anywhere.
    pub double_spend: Option<(PublicKey, DoubleSpendProof)>,
    /// Transfers newly settled.
    pub settled_transfers: usize,
    /// Outputs newly made live that stay red-envelope money: held by the winner of a merchants-only
    /// note (its holder), with the note's expiry. The ledger indexes them for the clawback.
    pub restricted: Vec<(Id, u64)>,
    /// Inputs spent here that were red-envelope money held by their winner (a merchants-only
    /// chain's coins held by the note's holder): the ledger drops them from that index, so the
    /// clawback reads only coins that may still be live.
    pub spent_restricted: Vec<Id>,
}

impl ChainOutcome {
    /// Signs the collection statement of a collected-then-spent proof (in `double_spend` and in
    /// the result) with the issuer root key; does nothing for any other outcome. The rules here
    /// hold no key, and the issuer signs a statement only when settlement finds such a double
    /// spend, not at every collection.
    pub fn sign_collection(&mut self, root: &SecretKey) {
        if let Some((_, p)) = &mut self.double_spend
            && p.kind() == KIND_COLLECTED_THEN_SPENT
        {
            p.sign_collection(root);
            // The result carries the same proof.
            self.result.proof = Some(p.clone());
        }
    }
}

/// Settles one verified chain. `info` is what `Coin::check_structure` returned for it (signatures
/// already checked); `issuer` is the issuer root key (the refresh address); `syncing` is the wallet
/// presenting it, the only one whose transfers to the issuer it may carry.
pub fn settle_chain<V: LedgerView>(
    ov: &mut Overlay<'_, V>,
    coin: &Coin,
    info: &CoinInfo,
    issuer: &PublicKey,
    syncing: &PublicKey,
) -> Result<ChainOutcome, V::Error> {
    let reject = |reason, proof: Option<DoubleSpendProof>| CoinResult {
        coin: info.id,
        value: info.value,
        status: CoinStatus::Rejected,
        reason,
        proof,
    };
    let mut out = ChainOutcome {
        result: reject(RejectReason::UnknownNote, None),
        refreshed: Fen::ZERO,
        double_spend: None,
        settled_transfers: 0,
        restricted: Vec::new(),
        spent_restricted: Vec::new(),
    };
    if ov.get(&info.note_id)?.is_none() {
        return Ok(out);
    }
    let last = coin.hops.len().saturating_sub(1);
    for (i, (hop, link)) in coin.hops.iter().zip(&info.links).enumerate() {
        let t = &hop.transfer;
        // Only the syncing wallet's own transfers may pay the issuer (refresh, redemption), and a
        // coin paid to the issuer goes no further.
        let pays_issuer = t.outputs.iter().any(|o| o.holder == *issuer);
        if pays_issuer && link.signer != *syncing {
            out.result = reject(RejectReason::NotYours, None);
            return Ok(out);
        }
        let followed_to_issuer = t
            .outputs
            .get(usize::from(hop.index))
            .is_some_and(|o| o.holder == *issuer);
        if followed_to_issuer && i != last {
            out.result = reject(RejectReason::Invalid, None);
            return Ok(out);
        }
        match ov.get(&link.input)? {
            Some(CoinState::Live { value, holder }) => {
                if holder != link.signer {
                    out.result = reject(RejectReason::Invalid, None);
                    return Ok(out);
                }
                ov.set(
                    link.input,
                    CoinState::Spent {
                        value,
                        transfer: t.clone(),
                    },
                );
                if matches!(info.earmark, Earmark::MerchantsOnly { .. })
                    && holder == coin.note.holder
                {
                    out.spent_restricted.push(link.input);
                }
                for (j, o) in t.outputs.iter().enumerate() {
                    let cid = coin_id(&link.transfer, j as u8);
                    if o.holder == *issuer {
                        out.refreshed = out.refreshed.checked_add(o.value).unwrap_or(out.refreshed);
                        ov.set(
                            cid,
                            CoinState::Redeemed {
                                value: o.value,
                                holder: link.signer,
                                collected: None,
                            },
                        );
                    } else {
                        if let Earmark::MerchantsOnly { expires_at } = info.earmark
                            && o.holder == coin.note.holder
                        {
                            out.restricted.push((cid, expires_at));
                        }
                        ov.set(
                            cid,
                            CoinState::Live {
                                value: o.value,
                                holder: o.holder,
                            },
                        );
                    }
                }
                out.settled_transfers += 1;
            }
            Some(CoinState::Spent {
                transfer: first, ..
            }) => {
                if first.id() != link.transfer {
                    let proof = DoubleSpendProof::new(link.signer, first, t.clone());
                    out.double_spend = Some((link.signer, proof.clone()));
                    out.result = reject(RejectReason::DoubleSpend, Some(proof));
                    return Ok(out);
                }
            }
            Some(CoinState::Redeemed {
                value,
                holder,
                collected: Some(c),
            }) if holder == link.signer => {
                // Collected for its holder at a sync (its value is in that sync's fresh notes),
                // and now spent by that holder: the coin's value used twice. The proof is the
                // issuer's statement of the collection, signed by the issuer, and this transfer.
                let statement = Collection {
                    coin: link.input,
                    value,
                    holder,
                    sync_id: c.sync_id,
                    collected_at: c.at,
                    signature: Signature([0; 64]),
                };
                let proof = DoubleSpendProof::collected_then_spent(statement, t.clone());
                out.double_spend = Some((link.signer, proof.clone()));
                out.result = reject(RejectReason::DoubleSpend, Some(proof));
                return Ok(out);
            }
            Some(CoinState::Redeemed { .. }) => {
                out.result = reject(RejectReason::AlreadyRedeemed, None);
                return Ok(out);
            }
            None => {
                out.result = reject(RejectReason::Invalid, None);
                return Ok(out);
            }
        }
    }
    let status = if out.settled_transfers > 0 {
        CoinStatus::Accepted
    } else {
        CoinStatus::AlreadySettled
    };
    out.result = CoinResult {
        coin: info.id,
        value: info.value,
        status,
        reason: RejectReason::None,
        proof: None,
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;
    use crate::crypto::Nonce;
    use crate::protocol::transfer::Output;
    use crate::testkit::{Fixture, NOW, key};

    struct Mem(HashMap<Id, CoinState>);
    impl LedgerView for Mem {
        type Error = Infallible;
        fn coin(&self, id: &Id) -> Result<Option<CoinState>, Infallible> {
            Ok(self.0.get(id).cloned())
        }
    }

    #[test]
    fn first_settled_wins_and_the_second_is_a_proven_double_spend() {
        let f = Fixture::new();
        let (alice, shop1, shop2) = (key(3), key(4), key(5));
        let note = f.note(alice.public(), Fen(10_000), 1);
        let coin = Coin::from_note(note.clone());
        let mut base = HashMap::new();
        base.insert(
            note.id(),
            CoinState::Live {
                value: Fen(10_000),
                holder: alice.public(),
            },
        );
        let base = Mem(base);
        let spend = |to: PublicKey, rid: u8| {
            let t = Transfer::sign(
                &alice,
                coin.id(),
                vec![Output {
                    holder: to,
                    value: Fen(10_000),
                }],
                1,
                NOW,
                Nonce([rid; 16]),
            );
            coin.extended(t, 0)
        };
        let (c1, c2) = (spend(shop1.public(), 1), spend(shop2.public(), 2));
        let ctx = f.ctx();
        let i1 = c1.verify(&ctx).expect("c1");
        let i2 = c2.verify(&ctx).expect("c2");
        let root = f.root.public();
        let mut ov = Overlay::new(&base);
        let o1 = settle_chain(&mut ov, &c1, &i1, &root, &shop1.public()).expect("infallible");
        assert_eq!(o1.result.status, CoinStatus::Accepted);
        let again = settle_chain(&mut ov, &c1, &i1, &root, &shop1.public()).expect("infallible");
        assert_eq!(again.result.status, CoinStatus::AlreadySettled);
        let o2 = settle_chain(&mut ov, &c2, &i2, &root, &shop2.public()).expect("infallible");
        assert_eq!(o2.result.status, CoinStatus::Rejected);
        assert_eq!(o2.result.reason, RejectReason::DoubleSpend);
        let (cheater, proof) = o2.double_spend.expect("proof");
        assert_eq!(cheater, alice.public());
        assert!(proof.verify(&f.keyset).is_ok());
        assert_eq!(
            ov.get(&i1.id).expect("ok"),
            Some(CoinState::Live {
                value: Fen(10_000),
                holder: shop1.public()
            })
        );
        assert_eq!(ov.get(&i2.id).expect("ok"), None);
    }

    #[test]
    fn a_coin_collected_for_its_holder_then_spent_by_it_is_a_proven_double_spend() {
        let f = Fixture::new();
        let (kay, shop) = (key(3), key(4));
        let note = f.note(kay.public(), Fen(3_000), 1);
        let coin = Coin::from_note(note.clone());
        let collection = Collected {
            sync_id: Nonce([7; 16]),
            at: NOW - 60,
        };
        // The note was collected for kay at a sync (its value went into kay's fresh notes).
        let base = Mem(HashMap::from([(
            note.id(),
            CoinState::Redeemed {
                value: Fen(3_000),
                holder: kay.public(),
                collected: Some(collection),
            },
        )]));
        let t = Transfer::sign(
            &kay,
            coin.id(),
            vec![Output {
                holder: shop.public(),
                value: Fen(3_000),
            }],
            1,
            NOW,
            Nonce([1; 16]),
        );
        let chain = coin.extended(t.clone(), 0);
        let info = chain.verify(&f.ctx()).expect("chain");
        let root = f.root.public();
        let mut ov = Overlay::new(&base);
        let mut o = settle_chain(&mut ov, &chain, &info, &root, &shop.public()).expect("ok");
        assert_eq!(o.result.reason, RejectReason::DoubleSpend);
        assert_eq!(ov.changes().count(), 0, "nothing settled");
        // Unsigned until the issuer signs the statement.
        let (cheater, proof) = o.double_spend.clone().expect("proof");
        assert_eq!(cheater, kay.public());
        assert!(proof.verify(&f.keyset).is_err());
        o.sign_collection(&f.root);
        let (_, proof) = o.double_spend.clone().expect("proof");
        assert_eq!(o.result.proof.as_ref(), Some(&proof));
        assert_eq!(proof.verify(&f.keyset), Ok(()));
        assert_eq!(
            (proof.kind(), proof.signer(), proof.coin()),
            (2, kay.public(), note.id())
        );
        let DoubleSpendProof::CollectedThenSpent(p) = &proof else {
            panic!("kind 2");
        };
        assert_eq!(
            (
                p.collection.value,
                p.collection.sync_id,
                p.collection.collected_at
            ),
            (Fen(3_000), collection.sync_id, collection.at)
        );
        assert_eq!(p.transfer, t);
        // A coin taken out of circulation otherwise (recovery, clawback) stays already-redeemed.
        let base = Mem(HashMap::from([(
            note.id(),
            CoinState::Redeemed {
                value: Fen(3_000),
                holder: kay.public(),
                collected: None,
            },
        )]));
        let mut ov = Overlay::new(&base);
        let o = settle_chain(&mut ov, &chain, &info, &root, &shop.public()).expect("ok");
        assert_eq!(o.result.reason, RejectReason::AlreadyRedeemed);
        assert!(o.double_spend.is_none());
    }

    #[test]
    fn state_round_trips() {
        for s in [
            CoinState::Live {
                value: Fen(5),
                holder: key(3).public(),
            },
            CoinState::Redeemed {
                value: Fen(5),
                holder: key(3).public(),
                collected: None,
            },
            CoinState::Redeemed {
                value: Fen(5),
                holder: key(3).public(),
                collected: Some(Collected {
                    sync_id: Nonce([1; 16]),
                    at: NOW,
                }),
            },
        ] {
            assert_eq!(CoinState::decode(&s.to_bytes()), Ok(s));
        }
    }
}
