//! `issuer audit`: recompute the ledger's totals from its records and check every rule.
//!
//! Checks: issued = redeemed + outstanding, with outstanding recomputed as the sum of live coins;
//! every note recorded has a coin state; every spent coin names a transfer that spends it, signed
//! by its holder, whose outputs sum to it and whose outputs are all known (no coin consumed twice:
//! a coin has one state); the holder index matches the live coins; every stored proof verifies
//! (a collected-then-spent proof against the issuer's root, and the collection it states is the
//! one the ledger recorded); every revocation is backed by a proof or an operator reason.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use tongbao::codec::Decode;
use tongbao::protocol::SignedBody;
use tongbao::protocol::coin::{SigCheck, verify_each};
use tongbao::protocol::note::Note;
use tongbao::protocol::proof::DoubleSpendProof;
use tongbao::protocol::transfer::coin_id;
use tongbao::settlement::{CoinState, Collected};
use tongbao::store::Store;
use tongbao::{Fen, Id, PublicKey};

use crate::ledger::{Issuer, IssuerError, keys};
use crate::settle::RevocationRecord;

/// What the audit found.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    /// True when no problem was found.
    pub ok: bool,
    /// Issued total as recorded.
    pub issued_fen: u64,
    /// Redeemed total as recorded.
    pub redeemed_fen: u64,
    /// Sum of live coins.
    pub outstanding_fen: u64,
    /// Coins by state.
    pub live_coins: u64,
    /// Spent coins.
    pub spent_coins: u64,
    /// Redeemed coins.
    pub redeemed_coins: u64,
    /// Proofs checked.
    pub proofs: u64,
    /// Revocations checked.
    pub revocations: u64,
    /// Every violation found, one line each.
    pub problems: Vec<String>,
}

/// Transfers whose signatures the audit checks together (their signing bytes held at once).
const AUDIT_SLICE: usize = 16 * 1024;

fn id_of(key: &[u8], prefix: &[u8]) -> Option<Id> {
    let rest = key.get(prefix.len()..)?;
    let arr: [u8; 32] = rest.try_into().ok()?;
    Some(Id(arr))
}

impl<S: Store> Issuer<S> {
    /// Recomputes and checks everything; never changes the ledger.
    pub fn audit(&self) -> Result<AuditReport, IssuerError> {
        let _guard = self.lock();
        let mut problems = Vec::new();
        let issued = self.load_u64(keys::ISSUED_TOTAL)?;
        let redeemed = self.load_u64(keys::REDEEMED_TOTAL)?;
        // Decoded on every core, in key order.
        use rayon::prelude::*;
        let decoded: Vec<Result<(Id, CoinState), String>> = self
            .store
            .scan_prefix(keys::COIN)?
            .into_par_iter()
            .map(|(k, v)| {
                let id = id_of(&k, keys::COIN).ok_or_else(|| "malformed coin key".to_string())?;
                CoinState::decode(&v)
                    .map(|s| (id, s))
                    .map_err(|e| format!("coin {}: undecodable state: {e}", id.short()))
            })
            .collect();
        let mut states: HashMap<Id, CoinState> = HashMap::with_capacity(decoded.len());
        for r in decoded {
            match r {
                Ok((id, s)) => {
                    states.insert(id, s);
                }
                Err(e) => problems.push(e),
            }
        }
        let (mut live, mut spent, mut gone) = (0u64, 0u64, 0u64);
        let mut outstanding: u64 = 0;
        let mut live_by_holder: HashSet<(PublicKey, Id)> = HashSet::new();
        for (id, s) in &states {
            match s {
                CoinState::Live { value, holder } => {
                    live += 1;
                    outstanding = outstanding.saturating_add(value.0);
                    live_by_holder.insert((*holder, *id));
                }
                CoinState::Spent { value, transfer } => {
                    spent += 1;
                    if transfer.input != *id {
                        problems.push(format!(
                            "coin {}: recorded transfer spends another coin",
                            id.short()
                        ));
                    }
                    if transfer.output_total() != Some(*value) {
                        problems.push(format!(
                            "coin {}: transfer outputs do not sum to its value {value}",
                            id.short()
                        ));
                    }
                    let tid = transfer.id();
                    for (j, o) in transfer.outputs.iter().enumerate() {
                        match states.get(&coin_id(&tid, j as u8)) {
                            Some(out) if out.value() == o.value => {}
                            Some(_) => problems.push(format!(
                                "coin {}: output {j} recorded with another value",
                                id.short()
                            )),
                            None => problems.push(format!(
                                "coin {}: output {j} of its transfer is unknown",
                                id.short()
                            )),
                        }
                    }
                }
                CoinState::Redeemed { .. } => gone += 1,
            }
        }
        // Spent coins' transfers must be signed by their holder: the holder is known from the
        // state that created the coin (a note or an output of a recorded transfer).
        let mut holder_of: HashMap<Id, PublicKey> = HashMap::new();
        for (k, v) in self.store.scan_prefix(keys::NOTE)? {
            match (id_of(&k, keys::NOTE), Note::decode(&v)) {
                (Some(id), Ok(n)) => {
                    if n.id() != id {
                        problems.push(format!("note {}: stored under the wrong id", id.short()));
                    }
                    if !states.contains_key(&id) {
                        problems.push(format!("note {}: no coin state", id.short()));
                    }
                    holder_of.insert(id, n.holder);
                }
                _ => problems.push("undecodable note record".into()),
            }
        }
        for s in states.values() {
            if let CoinState::Spent { transfer, .. } = s {
                let tid = transfer.id();
                for (j, o) in transfer.outputs.iter().enumerate() {
                    holder_of.insert(coin_id(&tid, j as u8), o.holder);
                }
            }
        }
        // The signatures in batches on every core, a slice of the ledger at a time (the signing
        // bytes of every transfer at once would double the audit's memory).
        let mut spent_transfers: Vec<(&Id, &tongbao::protocol::transfer::Transfer)> = states
            .iter()
            .filter_map(|(id, s)| match s {
                CoinState::Spent { transfer, .. } => Some((id, transfer)),
                _ => None,
            })
            .collect();
        spent_transfers.sort_by_key(|(id, _)| *id);
        for slice in spent_transfers.chunks(AUDIT_SLICE) {
            let mut checks = Vec::with_capacity(slice.len());
            let mut checked_ids = Vec::with_capacity(slice.len());
            for &(id, transfer) in slice {
                match holder_of.get(id) {
                    Some(h) => {
                        checks.push(SigCheck {
                            key: *h,
                            msg: transfer.signing_bytes(),
                            sig: transfer.signature,
                            what: "transfer",
                            issuer: false,
                        });
                        checked_ids.push(id);
                    }
                    None => problems.push(format!(
                        "coin {}: spent but its origin is unknown",
                        id.short()
                    )),
                }
            }
            for (id, ok) in checked_ids.iter().zip(verify_each(&checks)) {
                if !ok {
                    problems.push(format!(
                        "coin {}: recorded transfer is not signed by its holder",
                        id.short()
                    ));
                }
            }
        }
        // Holder index = live coins.
        let mut indexed: HashSet<(PublicKey, Id)> = HashSet::new();
        for (k, _) in self.store.scan_prefix(keys::HOLDER)? {
            let rest = &k[keys::HOLDER.len()..];
            if rest.len() != 64 {
                problems.push("malformed holder index key".into());
                continue;
            }
            let mut pk = [0u8; 32];
            pk.copy_from_slice(&rest[..32]);
            let mut cid = [0u8; 32];
            cid.copy_from_slice(&rest[32..]);
            match PublicKey::from_bytes(&pk, "holder") {
                Ok(h) => {
                    indexed.insert((h, Id(cid)));
                }
                Err(_) => problems.push("holder index names an invalid key".into()),
            }
        }
        if indexed != live_by_holder {
            problems.push(format!(
                "holder index lists {} live coin(s), the coin states {}",
                indexed.len(),
                live_by_holder.len()
            ));
        }
        if issued != redeemed.saturating_add(outstanding) || redeemed > issued {
            problems.push(format!(
                "issued {} != redeemed {} + outstanding {}",
                Fen(issued),
                Fen(redeemed),
                Fen(outstanding)
            ));
        }
        // Proofs and revocations.
        let keyset = self.keyset()?;
        let mut proof_ids = HashSet::new();
        let mut proofs = 0;
        for (k, v) in self.store.scan_prefix(keys::PROOF)? {
            proofs += 1;
            match (id_of(&k, keys::PROOF), DoubleSpendProof::decode(&v)) {
                (Some(id), Ok(p)) if p.id() == id && p.verify(&keyset).is_ok() => {
                    // A collected-then-spent proof states a collection: the ledger must hold
                    // exactly that one (the coin redeemed for that holder, by that sync, then).
                    if let DoubleSpendProof::CollectedThenSpent(c) = &p {
                        let c = &c.collection;
                        let recorded = matches!(
                            states.get(&c.coin),
                            Some(CoinState::Redeemed {
                                value,
                                holder,
                                collected: Some(Collected { sync_id, at }),
                            }) if *value == c.value
                                && *holder == c.holder
                                && *sync_id == c.sync_id
                                && *at == c.collected_at
                        );
                        if !recorded {
                            problems.push(format!(
                                "proof {}: the ledger does not record the collection it states",
                                id.short()
                            ));
                        }
                    }
                    proof_ids.insert(id.to_hex());
                }
                _ => problems.push("a stored double-spend proof does not verify".into()),
            }
        }
        let rl = self.revocations()?;
        if rl.verify(&keyset).is_err() {
            problems.push("the revocation list does not verify".into());
        }
        for e in &rl.entries {
            let rec: Option<RevocationRecord> = self
                .store
                .get(&keys::with(keys::REVOKED, e.wallet.as_bytes()))?
                .and_then(|v| serde_json::from_slice(&v).ok());
            match rec {
                Some(r) if r.proof.as_ref().is_some_and(|p| proof_ids.contains(p)) => {}
                Some(r)
                    if r.operator_reason.as_ref().is_some_and(|x| !x.is_empty())
                        || r.reason != "double-spend" => {}
                _ => problems.push(format!(
                    "revocation of {} is backed by neither a proof nor an operator reason",
                    e.wallet.short()
                )),
            }
        }
        Ok(AuditReport {
            ok: problems.is_empty(),
            issued_fen: issued,
            redeemed_fen: redeemed,
            outstanding_fen: outstanding,
            live_coins: live,
            spent_coins: spent,
            redeemed_coins: gone,
            proofs,
            revocations: rl.entries.len() as u64,
            problems,
        })
    }
}
