//! `issuer audit`: recompute the ledger's totals from its records and check every rule.
//!
//! Checks: issued = redeemed + outstanding, with outstanding recomputed as the sum of live coins;
//! every note recorded has a coin state; every spent coin names a transfer that spends it, signed
//! by its holder, whose outputs sum to it and whose outputs are all known (no coin consumed twice:
//! a coin has one state, and no coin is created twice); the holder index matches the live coins;
//! every stored proof verifies (a collected-then-spent proof against the issuer's root, and the
//! collection it states is the one the ledger recorded); every revocation is backed by a proof or
//! an operator reason.
//!
//! In bounded memory, whatever the ledger's size: the records are read a page at a time
//! ([`Store::scan_range`]), each page decoded on every core. What the audit keeps of the whole
//! ledger is one compact fact per coin created (its id, value and holder, and whether a note or a
//! transfer created it: [`Fact`]) and a table of the distinct holder keys. The passes:
//!
//! 1. the coins: the counts and totals, each spent coin's transfer (what it spends, that its
//!    outputs sum to it), and a fact for each of its outputs;
//! 2. the notes: a fact for each;
//! 3. the facts sorted by coin id, then the coins again in id order, merged with them: every
//!    spent coin's transfer is checked against the holder that created the coin, every fact must
//!    meet a coin state (of the same value, for an output), and the facts of the live coins are
//!    kept, with the coin's holder;
//! 4. those sorted as the holder index is (by holder, then coin id) and merged with it;
//! 5. only when an output was missing or had another value: the coins again, to name the
//!    transfers that created them;
//! 6. the proofs (reading the coin state each names) and the revocations.
//!
//! The problems are listed by section (the coins, the notes, the transfer signatures, the
//! holder index, the totals, the proofs, the revocations), then in key order.

use std::collections::HashMap;

use rayon::prelude::*;
use serde::Serialize;
use tongbao::codec::Decode;
use tongbao::protocol::SignedBody;
use tongbao::protocol::coin::{SigCheck, verify_each};
use tongbao::protocol::note::Note;
use tongbao::protocol::proof::DoubleSpendProof;
use tongbao::protocol::transfer::coin_id;
use tongbao::settlement::{CoinState, Collected};
use tongbao::store::{Pairs, Store};
use tongbao::{Fen, Id, PublicKey, Signature};

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

/// Records read and decoded at a time.
#[cfg(not(test))]
const PAGE: usize = 64 * 1024;
/// A few records at a time in the unit tests, so that every pass crosses pages.
#[cfg(test)]
const PAGE: usize = 3;

fn id_of(key: &[u8], prefix: &[u8]) -> Option<Id> {
    let rest = key.get(prefix.len()..)?;
    let arr: [u8; 32] = rest.try_into().ok()?;
    Some(Id(arr))
}

/// A record's key without its prefix (where its problems sort).
fn suffix<'a>(key: &'a [u8], prefix: &[u8]) -> &'a [u8] {
    key.get(prefix.len()..).unwrap_or_default()
}

/// A coin created by a note (under its note id).
const BY_NOTE: u8 = 0;
/// A coin created by a recorded transfer (an output).
const BY_TRANSFER: u8 = 1;

/// A coin as the record that created it states it: about fifty bytes a coin, the only thing the
/// audit holds for the whole ledger.
#[derive(Debug, Clone, Copy)]
struct Fact {
    id: Id,
    /// Its value in fen (an output's must be its coin state's).
    value: u64,
    /// Its holder, in [`Holders`]; for a live coin, from pass 3 on, the coin state's holder.
    holder: u32,
    /// [`BY_NOTE`] or [`BY_TRANSFER`].
    by: u8,
    /// The coin is live (set in pass 3, on the first fact of its id).
    live: bool,
}

/// The distinct holder keys, numbered.
#[derive(Default)]
struct Holders {
    number: HashMap<[u8; 32], u32>,
    /// By number, as bytes (a decoded key is six times larger; at a million holders that is
    /// 150 MB more).
    keys: Vec<[u8; 32]>,
}

impl Holders {
    fn number(&mut self, key: &PublicKey) -> Result<u32, IssuerError> {
        if let Some(n) = self.number.get(key.as_bytes()) {
            return Ok(*n);
        }
        let n = u32::try_from(self.keys.len())
            .map_err(|_| IssuerError::Corrupt("audit: too many holder keys".into()))?;
        self.number.insert(*key.as_bytes(), n);
        self.keys.push(*key.as_bytes());
        Ok(n)
    }

    fn bytes(&self, n: u32) -> Result<&[u8; 32], IssuerError> {
        self.keys
            .get(n as usize)
            .ok_or_else(|| IssuerError::Corrupt("audit: holder table".into()))
    }

    /// The key numbered `n` (from the process's key cache: it was decoded when numbered).
    fn key(&self, n: u32) -> Result<PublicKey, IssuerError> {
        PublicKey::from_bytes(self.bytes(n)?, "holder")
            .map_err(|_| IssuerError::Corrupt("audit: holder table".into()))
    }

    /// Each key's rank in byte order (the holder index's order).
    fn ranks(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.keys.len() as u32).collect();
        order.par_sort_unstable_by_key(|&n| self.keys[n as usize]);
        let mut rank = vec![0; order.len()];
        for (r, n) in order.into_iter().enumerate() {
            rank[n as usize] = r as u32;
        }
        rank
    }
}

/// Where a problem is listed: the sections in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Section {
    Coins,
    Notes,
    Signatures,
    HolderIndex,
    HolderSummary,
    Totals,
    Proofs,
    Revocations,
}

/// The problems found, with where each is listed: its section, then the key of the record it is
/// about (the coin id for most), then the order of the checks on one record. The passes find
/// them in another order.
#[derive(Default)]
struct Problems(Vec<(Section, Vec<u8>, u16, String)>);

impl Problems {
    fn push(&mut self, section: Section, key: &[u8], step: u16, text: String) {
        self.0.push((section, key.to_vec(), step, text));
    }

    /// In a section listed in the order found.
    fn add(&mut self, section: Section, text: String) {
        self.push(section, &[], 0, text);
    }

    fn into_lines(mut self) -> Vec<String> {
        // Stable: problems with the same place keep the order found.
        self.0
            .sort_by(|a, b| (a.0, &a.1, a.2).cmp(&(b.0, &b.1, b.2)));
        self.0.into_iter().map(|p| p.3).collect()
    }
}

/// Steps of the checks on one coin (the order of its problems).
mod step {
    pub const DECODE: u16 = 0;
    pub const INPUT: u16 = 1;
    pub const SUM: u16 = 2;
    pub const TWICE: u16 = 3;
    /// Output `j` of its transfer: `OUTPUT + j`.
    pub const OUTPUT: u16 = 4;
}

/// Pass 1's reading of one coin record.
enum Counted {
    /// Malformed key or undecodable state (key suffix, problem).
    Bad(Vec<u8>, String),
    Live(Fen),
    Spent {
        id: Id,
        value: Fen,
        spends_it: bool,
        sums: bool,
        /// Each output's coin id, holder and value.
        outputs: Vec<(Id, PublicKey, Fen)>,
    },
    Redeemed,
}

/// Pass 3's reading of one coin record (a malformed or undecodable one is skipped: it is no coin
/// state, as pass 1 reported).
enum Merged {
    Live {
        id: Id,
        value: Fen,
        holder: PublicKey,
    },
    Spent {
        id: Id,
        value: Fen,
        msg: Vec<u8>,
        sig: Signature,
    },
    Other {
        id: Id,
        value: Fen,
    },
}

impl Merged {
    fn id_value(&self) -> (Id, Fen) {
        match self {
            Merged::Live { id, value, .. }
            | Merged::Spent { id, value, .. }
            | Merged::Other { id, value } => (*id, *value),
        }
    }
}

fn decode_coin(k: &[u8], v: &[u8]) -> Result<(Id, CoinState), (Vec<u8>, String)> {
    let id = id_of(k, keys::COIN).ok_or_else(|| {
        (
            suffix(k, keys::COIN).to_vec(),
            "malformed coin key".to_string(),
        )
    })?;
    CoinState::decode(v).map(|s| (id, s)).map_err(|e| {
        (
            id.0.to_vec(),
            format!("coin {}: undecodable state: {e}", id.short()),
        )
    })
}

/// The outputs of a transfer: coin id, holder, value.
fn outputs(transfer: &tongbao::protocol::transfer::Transfer) -> Vec<(Id, PublicKey, Fen)> {
    let tid = transfer.id();
    transfer
        .outputs
        .iter()
        .enumerate()
        .map(|(j, o)| (coin_id(&tid, j as u8), o.holder, o.value))
        .collect()
}

/// A fact no coin state matched: a note's coin is missing; an output is named in pass 5.
fn no_state(f: &Fact, problems: &mut Problems, bad_outputs: &mut HashMap<Id, Option<Fen>>) {
    if f.by == BY_NOTE {
        problems.push(
            Section::Notes,
            &f.id.0,
            2,
            format!("note {}: no coin state", f.id.short()),
        );
    } else {
        bad_outputs.insert(f.id, None);
    }
}

impl<S: Store> Issuer<S> {
    /// Every record under `prefix`, a page at a time, in key order.
    pub(crate) fn pages(
        &self,
        prefix: &[u8],
        mut f: impl FnMut(Pairs) -> Result<(), IssuerError>,
    ) -> Result<(), IssuerError> {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = self.store.scan_range(prefix, after.as_deref(), PAGE)?;
            let last = page.len() < PAGE;
            match page.last() {
                Some((k, _)) => after = Some(k.clone()),
                None => return Ok(()),
            }
            f(page)?;
            if last {
                return Ok(());
            }
        }
    }

    /// Recomputes and checks everything; never changes the ledger.
    pub fn audit(&self) -> Result<AuditReport, IssuerError> {
        let _guard = self.lock();
        let mut problems = Problems::default();
        let issued = self.load_u64(keys::ISSUED_TOTAL)?;
        let redeemed = self.load_u64(keys::REDEEMED_TOTAL)?;
        let mut holders = Holders::default();
        let mut facts: Vec<Fact> = Vec::new();

        // Pass 1: the coins' counts and totals, each spent coin's transfer, its outputs' facts.
        let (mut live, mut spent, mut gone) = (0u64, 0u64, 0u64);
        let mut outstanding: u64 = 0;
        self.pages(keys::COIN, |page| {
            let counted: Vec<Counted> = page
                .into_par_iter()
                .map(|(k, v)| match decode_coin(&k, &v) {
                    Err((key, e)) => Counted::Bad(key, e),
                    Ok((_, CoinState::Live { value, .. })) => Counted::Live(value),
                    Ok((id, CoinState::Spent { value, transfer })) => Counted::Spent {
                        id,
                        value,
                        spends_it: transfer.input == id,
                        sums: transfer.output_total() == Some(value),
                        outputs: outputs(&transfer),
                    },
                    Ok((_, CoinState::Redeemed { .. })) => Counted::Redeemed,
                })
                .collect();
            for c in counted {
                match c {
                    Counted::Bad(key, e) => problems.push(Section::Coins, &key, step::DECODE, e),
                    Counted::Live(value) => {
                        live += 1;
                        outstanding = outstanding.saturating_add(value.0);
                    }
                    Counted::Spent {
                        id,
                        value,
                        spends_it,
                        sums,
                        outputs,
                    } => {
                        spent += 1;
                        if !spends_it {
                            problems.push(
                                Section::Coins,
                                &id.0,
                                step::INPUT,
                                format!(
                                    "coin {}: recorded transfer spends another coin",
                                    id.short()
                                ),
                            );
                        }
                        if !sums {
                            problems.push(
                                Section::Coins,
                                &id.0,
                                step::SUM,
                                format!(
                                    "coin {}: transfer outputs do not sum to its value {value}",
                                    id.short()
                                ),
                            );
                        }
                        for (oid, holder, value) in outputs {
                            facts.push(Fact {
                                id: oid,
                                value: value.0,
                                holder: holders.number(&holder)?,
                                by: BY_TRANSFER,
                                live: false,
                            });
                        }
                    }
                    Counted::Redeemed => gone += 1,
                }
            }
            Ok(())
        })?;

        // Pass 2: the notes, each the fact of the coin it created.
        self.pages(keys::NOTE, |page| {
            let read: Vec<Result<(Id, bool, Note), Vec<u8>>> = page
                .into_par_iter()
                .map(|(k, v)| match (id_of(&k, keys::NOTE), Note::decode(&v)) {
                    (Some(id), Ok(n)) => Ok((id, n.id() == id, n)),
                    _ => Err(suffix(&k, keys::NOTE).to_vec()),
                })
                .collect();
            for r in read {
                match r {
                    Ok((id, right_id, n)) => {
                        if !right_id {
                            problems.push(
                                Section::Notes,
                                &id.0,
                                1,
                                format!("note {}: stored under the wrong id", id.short()),
                            );
                        }
                        facts.push(Fact {
                            id,
                            value: n.value.0,
                            holder: holders.number(&n.holder)?,
                            by: BY_NOTE,
                            live: false,
                        });
                    }
                    Err(key) => {
                        problems.push(Section::Notes, &key, 0, "undecodable note record".into())
                    }
                }
            }
            Ok(())
        })?;

        // Pass 3: the facts in coin id order (the same order for any order found), merged with
        // the coins. Outputs missing (`None`) or recorded with another value (the coin's) are
        // named with the transfer that created them in pass 5.
        facts.par_sort_unstable_by_key(|f| (f.id, f.by, f.holder, f.value));
        let mut twice = None;
        for w in facts.windows(2) {
            if w[0].id == w[1].id && twice != Some(w[0].id) {
                twice = Some(w[0].id);
                problems.push(
                    Section::Coins,
                    &w[0].id.0,
                    step::TWICE,
                    format!("coin {}: created more than once", w[0].id.short()),
                );
            }
        }
        let mut bad_outputs: HashMap<Id, Option<Fen>> = HashMap::new();
        let mut next = 0;
        let mut live_unknown_origin: Vec<Fact> = Vec::new();
        self.pages(keys::COIN, |page| {
            let merged: Vec<Merged> = page
                .into_par_iter()
                .filter_map(|(k, v)| match decode_coin(&k, &v).ok()? {
                    (id, CoinState::Live { value, holder }) => {
                        Some(Merged::Live { id, value, holder })
                    }
                    (id, CoinState::Spent { value, transfer }) => Some(Merged::Spent {
                        id,
                        value,
                        msg: transfer.signing_bytes(),
                        sig: transfer.signature,
                    }),
                    (id, s) => Some(Merged::Other {
                        id,
                        value: s.value(),
                    }),
                })
                .collect();
            let mut checks = Vec::new();
            let mut checked = Vec::new();
            for m in merged {
                let (id, value) = m.id_value();
                while let Some(f) = facts.get(next).filter(|f| f.id < id) {
                    no_state(f, &mut problems, &mut bad_outputs);
                    next += 1;
                }
                let first = next;
                while let Some(f) = facts.get(next).filter(|f| f.id == id) {
                    if f.by == BY_TRANSFER && f.value != value.0 {
                        bad_outputs.insert(id, Some(value));
                    }
                    next += 1;
                }
                let origin = facts.get_mut(first).filter(|_| next > first);
                match (m, origin) {
                    (Merged::Live { holder, .. }, Some(f)) => {
                        f.holder = holders.number(&holder)?;
                        f.live = true;
                    }
                    // Kept for the holder index only (`by` unused).
                    (Merged::Live { holder, .. }, None) => live_unknown_origin.push(Fact {
                        id,
                        value: value.0,
                        holder: holders.number(&holder)?,
                        by: BY_NOTE,
                        live: true,
                    }),
                    (Merged::Spent { msg, sig, .. }, Some(f)) => {
                        checks.push(SigCheck {
                            key: holders.key(f.holder)?,
                            msg,
                            sig,
                            what: "transfer",
                            issuer: false,
                        });
                        checked.push(id);
                    }
                    (Merged::Spent { .. }, None) => problems.push(
                        Section::Signatures,
                        &id.0,
                        0,
                        format!("coin {}: spent but its origin is unknown", id.short()),
                    ),
                    (Merged::Other { .. }, _) => {}
                }
            }
            for (checks, ids) in checks.chunks(AUDIT_SLICE).zip(checked.chunks(AUDIT_SLICE)) {
                for (id, ok) in ids.iter().zip(verify_each(checks)) {
                    if !ok {
                        problems.push(
                            Section::Signatures,
                            &id.0,
                            0,
                            format!(
                                "coin {}: recorded transfer is not signed by its holder",
                                id.short()
                            ),
                        );
                    }
                }
            }
            Ok(())
        })?;
        for f in facts.get(next..).unwrap_or_default() {
            no_state(f, &mut problems, &mut bad_outputs);
        }

        // Pass 4: the live coins in the holder index's order (holder, then coin id), merged
        // with it. The index must list exactly them: an entry for anything else is stale, a
        // live coin it does not list is missing.
        facts.retain(|f| f.live);
        facts.append(&mut live_unknown_origin);
        let rank = holders.ranks();
        facts.par_sort_unstable_by_key(|f| (rank[f.holder as usize], f.id));
        let mut next = 0;
        let mut indexed = 0u64;
        let mut differ = false;
        let missing = |f: &Fact, problems: &mut Problems| -> Result<(), IssuerError> {
            let holder = holders.key(f.holder)?;
            let mut at = holder.as_bytes().to_vec();
            at.extend_from_slice(&f.id.0);
            problems.push(
                Section::HolderIndex,
                &at,
                0,
                format!(
                    "holder index does not list live coin {} of {}",
                    f.id.short(),
                    holder.short()
                ),
            );
            Ok(())
        };
        self.pages(keys::HOLDER, |page| {
            for (k, _) in page {
                let rest = suffix(&k, keys::HOLDER);
                let (Ok(pk), Ok(cid)) = (
                    <[u8; 32]>::try_from(rest.get(..32).unwrap_or_default()),
                    <[u8; 32]>::try_from(rest.get(32..).unwrap_or_default()),
                ) else {
                    problems.push(
                        Section::HolderIndex,
                        rest,
                        0,
                        "malformed holder index key".into(),
                    );
                    continue;
                };
                // The live coins before the entry are missing from the index; the entry is
                // one of them or stale.
                let entry = (&pk, Id(cid));
                let mut listed = false;
                while let Some(f) = facts.get(next) {
                    match (holders.bytes(f.holder)?, f.id).cmp(&entry) {
                        std::cmp::Ordering::Less => {
                            differ = true;
                            missing(f, &mut problems)?;
                        }
                        std::cmp::Ordering::Equal => listed = true,
                        std::cmp::Ordering::Greater => break,
                    }
                    next += 1;
                    if listed {
                        break;
                    }
                }
                if listed {
                    indexed += 1;
                    continue;
                }
                match PublicKey::from_bytes(&pk, "holder") {
                    Ok(h) => {
                        indexed += 1;
                        differ = true;
                        problems.push(
                            Section::HolderIndex,
                            rest,
                            0,
                            format!(
                                "holder index lists coin {} of {} that is not a live coin of it",
                                Id(cid).short(),
                                h.short()
                            ),
                        );
                    }
                    Err(_) => problems.push(
                        Section::HolderIndex,
                        rest,
                        0,
                        "holder index names an invalid key".into(),
                    ),
                }
            }
            Ok(())
        })?;
        for f in facts.get(next..).unwrap_or_default() {
            differ = true;
            missing(f, &mut problems)?;
        }
        drop(facts);
        if differ {
            problems.add(
                Section::HolderSummary,
                format!("holder index lists {indexed} live coin(s), the coin states {live}"),
            );
        }

        // Pass 5: the transfers whose outputs are missing or recorded with another value.
        if !bad_outputs.is_empty() {
            self.pages(keys::COIN, |page| {
                let found: Vec<(Id, usize, Option<Fen>, Fen)> = page
                    .into_par_iter()
                    .flat_map_iter(|(k, v)| {
                        let outs = match decode_coin(&k, &v) {
                            Ok((id, CoinState::Spent { transfer, .. })) => outputs(&transfer)
                                .into_iter()
                                .enumerate()
                                .filter_map(|(j, (oid, _, value))| {
                                    bad_outputs.get(&oid).map(|state| (id, j, *state, value))
                                })
                                .collect(),
                            _ => Vec::new(),
                        };
                        outs.into_iter()
                    })
                    .collect();
                for (id, j, state, value) in found {
                    let text = match state {
                        None => {
                            format!("coin {}: output {j} of its transfer is unknown", id.short())
                        }
                        Some(v) if v != value => {
                            format!(
                                "coin {}: output {j} recorded with another value",
                                id.short()
                            )
                        }
                        // Another transfer's output of the same id (created twice) differs.
                        Some(_) => continue,
                    };
                    problems.push(Section::Coins, &id.0, step::OUTPUT + j as u16, text);
                }
                Ok(())
            })?;
        }

        if issued != redeemed.saturating_add(outstanding) || redeemed > issued {
            problems.add(
                Section::Totals,
                format!(
                    "issued {} != redeemed {} + outstanding {}",
                    Fen(issued),
                    Fen(redeemed),
                    Fen(outstanding)
                ),
            );
        }
        // Proofs and revocations.
        let keyset = self.keyset()?;
        let mut proof_ids = std::collections::HashSet::new();
        let mut proofs = 0;
        for (k, v) in self.store.scan_prefix(keys::PROOF)? {
            proofs += 1;
            match (id_of(&k, keys::PROOF), DoubleSpendProof::decode(&v)) {
                (Some(id), Ok(p)) if p.id() == id && p.verify(&keyset).is_ok() => {
                    // A collected-then-spent proof states a collection: the ledger must hold
                    // exactly that one (the coin redeemed for that holder, by that sync, then).
                    if let DoubleSpendProof::CollectedThenSpent(c) = &p {
                        let c = &c.collection;
                        let state = self
                            .store
                            .get(&keys::with(keys::COIN, &c.coin.0))?
                            .and_then(|v| CoinState::decode(&v).ok());
                        let recorded = matches!(
                            state,
                            Some(CoinState::Redeemed {
                                value,
                                holder,
                                collected: Some(Collected { sync_id, at }),
                            }) if value == c.value
                                && holder == c.holder
                                && sync_id == c.sync_id
                                && at == c.collected_at
                        );
                        if !recorded {
                            problems.add(
                                Section::Proofs,
                                format!(
                                    "proof {}: the ledger does not record the collection it states",
                                    id.short()
                                ),
                            );
                        }
                    }
                    proof_ids.insert(id.to_hex());
                }
                _ => problems.add(
                    Section::Proofs,
                    "a stored double-spend proof does not verify".into(),
                ),
            }
        }
        let rl = self.revocations()?;
        if rl.verify(&keyset).is_err() {
            problems.add(
                Section::Revocations,
                "the revocation list does not verify".into(),
            );
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
                _ => problems.add(
                    Section::Revocations,
                    format!(
                        "revocation of {} is backed by neither a proof nor an operator reason",
                        e.wallet.short()
                    ),
                ),
            }
        }
        let problems = problems.into_lines();
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use tongbao::codec::Encode;
    use tongbao::protocol::certificate::{WalletClass, WalletKind};
    use tongbao::protocol::file::TbFile;
    use tongbao::protocol::note::Earmark;
    use tongbao::protocol::transfer::Transfer;
    use tongbao::store::{Batch, MemStore};
    use tongbao::wallet::{PayTarget, Wallet};

    use crate::ledger::holder_key;

    /// 2026-11-21T09:30:00Z.
    const T0: u64 = 1_795_253_400;

    struct World<S: Store> {
        iss: Issuer<S>,
        rng: StdRng,
        now: u64,
    }

    impl World<MemStore> {
        fn new(seed: u64) -> World<MemStore> {
            World::over(MemStore::new(), seed)
        }
    }

    impl<S: Store> World<S> {
        fn over(store: S, seed: u64) -> World<S> {
            let mut rng = StdRng::seed_from_u64(seed);
            let iss = Issuer::init(store, T0, &mut rng).expect("init");
            World { iss, rng, now: T0 }
        }

        fn wallet(&mut self) -> Wallet<MemStore> {
            let keyset = self.iss.keyset().expect("keyset");
            let (w, reg) = Wallet::create(
                MemStore::new(),
                WalletKind::Personal,
                None,
                keyset,
                self.now,
                &mut self.rng,
            )
            .expect("create");
            let cert = self
                .iss
                .certify(&reg, WalletClass::II, 90 * 86_400, self.now)
                .expect("certify");
            w.import(TbFile::Certificate(cert), self.now)
                .expect("import certificate");
            w
        }

        /// Issues `yuan` to `w` (one note) and imports it; its id.
        fn fund(&mut self, w: &Wallet<MemStore>, yuan: u64) -> Id {
            let b = self
                .iss
                .issue(
                    &w.public(),
                    Fen(yuan * 100),
                    Earmark::None,
                    self.now,
                    &mut self.rng,
                )
                .expect("issue");
            let id = b.notes[0].id();
            w.import(TbFile::Notes(b), self.now).expect("import notes");
            id
        }

        fn pay(&mut self, from: &Wallet<MemStore>, to: &Wallet<MemStore>, fen: u64) {
            self.now += 60;
            let p = from
                .pay(
                    PayTarget::Direct {
                        to: to.public(),
                        amount: Fen(fen),
                    },
                    self.now,
                    &mut self.rng,
                )
                .expect("pay");
            to.receive(&p, self.now).expect("receive");
        }

        fn sync(&mut self, w: &Wallet<MemStore>) -> tongbao::protocol::sync::SyncResponse {
            self.now += 60;
            let req = w
                .begin_sync(Fen::ZERO, Fen::ZERO, self.now, &mut self.rng)
                .expect("begin sync");
            let resp = self.iss.sync(&req, self.now).expect("sync");
            w.apply_sync(&resp, self.now).expect("apply sync");
            resp
        }

        fn coin(&self, id: &Id) -> Option<CoinState> {
            let v = self
                .iss
                .store
                .get(&keys::with(keys::COIN, &id.0))
                .expect("get")?;
            Some(CoinState::decode(&v).expect("coin state"))
        }

        fn put(&self, key: Vec<u8>, value: Vec<u8>) {
            let mut b = Batch::new();
            b.put(key, value);
            self.iss.store.commit(b).expect("commit");
        }

        fn delete(&self, key: Vec<u8>) {
            let mut b = Batch::new();
            b.delete(key);
            self.iss.store.commit(b).expect("commit");
        }

        fn report(&self) -> AuditReport {
            self.iss.audit().expect("audit")
        }

        fn problems(&self) -> Vec<String> {
            self.report().problems
        }
    }

    /// Alice's note, spent by her transfer to Bob; its output coins (Bob's, Alice's change).
    struct Paid {
        alice: PublicKey,
        note: Id,
        transfer: Transfer,
        to_bob: (usize, Id),
        change: (usize, Id),
    }

    /// A ledger with more coins than a page: notes to several wallets, and one settled payment
    /// whose change is still live at the ledger.
    fn paid(w: &mut World<impl Store>) -> Paid {
        let alice = w.wallet();
        let bob = w.wallet();
        for _ in 0..3 {
            let other = w.wallet();
            w.fund(&other, 20);
            w.fund(&other, 30);
        }
        let note = w.fund(&alice, 100);
        w.pay(&alice, &bob, 3_000);
        w.sync(&bob);
        let Some(CoinState::Spent { transfer, .. }) = w.coin(&note) else {
            panic!("the note is spent")
        };
        let tid = transfer.id();
        let out = |j: usize| (j, coin_id(&tid, j as u8));
        let (to_bob, change) = if transfer.outputs[0].holder == bob.public() {
            (out(0), out(1))
        } else {
            (out(1), out(0))
        };
        assert_eq!(transfer.outputs[change.0].holder, alice.public());
        assert!(matches!(
            w.coin(&change.1),
            Some(CoinState::Live {
                value: Fen(7_000),
                ..
            })
        ));
        let report = w.report();
        assert!(report.ok, "{:?}", report.problems);
        Paid {
            alice: alice.public(),
            note,
            transfer,
            to_bob,
            change,
        }
    }

    #[test]
    fn a_clean_ledger_passes_with_its_coins_counted() {
        let mut w = World::new(1);
        let _ = paid(&mut w);
        let report = w.report();
        assert!(report.ok, "{:?}", report.problems);
        let (mut live, mut spent, mut gone, mut outstanding) = (0, 0, 0, 0);
        for (_, v) in w.iss.store.scan_prefix(keys::COIN).expect("scan") {
            match CoinState::decode(&v).expect("coin state") {
                CoinState::Live { value, .. } => {
                    live += 1;
                    outstanding += value.0;
                }
                CoinState::Spent { .. } => spent += 1,
                CoinState::Redeemed { .. } => gone += 1,
            }
        }
        assert!(live > 2 * PAGE as u64, "the passes cross pages");
        assert_eq!(
            (
                report.live_coins,
                report.spent_coins,
                report.redeemed_coins,
                report.outstanding_fen
            ),
            (live, spent, gone, outstanding)
        );
        assert_eq!(report.issued_fen, report.redeemed_fen + outstanding);
    }

    #[test]
    fn the_ledger_store_of_a_pilot_reads_the_same() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::pilot::store::LedgerStore::open(&dir.path().join("ledger"), 1 << 20)
            .expect("open");
        let mut w = World::over(store, 1);
        let alice = w.wallet();
        let bob = w.wallet();
        w.iss.store.checkpoint().expect("checkpoint");
        for _ in 0..3 {
            let other = w.wallet();
            w.fund(&other, 20);
            w.iss.store.checkpoint().expect("checkpoint");
            w.fund(&other, 30);
        }
        let note = w.fund(&alice, 100);
        w.iss.store.checkpoint().expect("checkpoint");
        w.pay(&alice, &bob, 3_000);
        w.sync(&bob);
        let report = w.report();
        assert!(report.ok, "{:?}", report.problems);
        // A record deleted in the day's table is gone, whatever sled holds.
        w.iss.store.checkpoint().expect("checkpoint");
        w.iss.store.wait().expect("written out");
        w.delete(keys::with(keys::NOTE, &note.0));
        assert_eq!(
            w.problems(),
            vec![format!(
                "coin {}: spent but its origin is unknown",
                note.short()
            )]
        );
    }

    #[test]
    fn a_transfer_not_signed_by_the_holder_is_found() {
        let mut w = World::new(2);
        let p = paid(&mut w);
        let mut transfer = p.transfer.clone();
        transfer.signature.0[5] ^= 1;
        // The signature is not part of the transfer's id: its outputs are unchanged.
        assert_eq!(transfer.id(), p.transfer.id());
        let state = CoinState::Spent {
            value: Fen(10_000),
            transfer,
        };
        w.put(keys::with(keys::COIN, &p.note.0), state.to_bytes());
        assert_eq!(
            w.problems(),
            vec![format!(
                "coin {}: recorded transfer is not signed by its holder",
                p.note.short()
            )]
        );
    }

    #[test]
    fn a_spent_coin_no_record_created_is_found() {
        let mut w = World::new(3);
        let p = paid(&mut w);
        w.delete(keys::with(keys::NOTE, &p.note.0));
        assert_eq!(
            w.problems(),
            vec![format!(
                "coin {}: spent but its origin is unknown",
                p.note.short()
            )]
        );
    }

    #[test]
    fn a_missing_output_is_found_with_the_transfer_that_made_it() {
        let mut w = World::new(4);
        let p = paid(&mut w);
        let live = w.report().live_coins;
        let (j, change) = p.change;
        w.delete(keys::with(keys::COIN, &change.0));
        let problems = w.problems();
        assert_eq!(
            problems[..3],
            [
                format!(
                    "coin {}: output {j} of its transfer is unknown",
                    p.note.short()
                ),
                format!(
                    "holder index lists coin {} of {} that is not a live coin of it",
                    change.short(),
                    p.alice.short()
                ),
                format!(
                    "holder index lists {live} live coin(s), the coin states {}",
                    live - 1
                ),
            ]
        );
        assert!(problems[3].starts_with("issued "), "{problems:?}");
        assert_eq!(problems.len(), 4, "{problems:?}");
    }

    #[test]
    fn an_output_recorded_with_another_value_is_found() {
        let mut w = World::new(5);
        let p = paid(&mut w);
        let (j, change) = p.change;
        let state = CoinState::Live {
            value: Fen(7_001),
            holder: p.alice,
        };
        w.put(keys::with(keys::COIN, &change.0), state.to_bytes());
        let problems = w.problems();
        assert_eq!(
            problems[0],
            format!(
                "coin {}: output {j} recorded with another value",
                p.note.short()
            )
        );
        assert!(problems[1].starts_with("issued "), "{problems:?}");
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn a_note_without_a_coin_state_is_found() {
        let mut w = World::new(6);
        let _ = paid(&mut w);
        let carol = w.wallet();
        let note = w.fund(&carol, 12);
        w.delete(keys::with(keys::COIN, &note.0));
        w.delete(holder_key(&carol.public(), &note));
        let problems = w.problems();
        assert_eq!(problems[0], format!("note {}: no coin state", note.short()));
        assert!(problems[1].starts_with("issued "), "{problems:?}");
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn a_holder_index_entry_for_a_spent_coin_is_found() {
        let mut w = World::new(7);
        let p = paid(&mut w);
        let live = w.report().live_coins;
        w.put(holder_key(&p.alice, &p.note), Vec::new());
        assert_eq!(
            w.problems(),
            vec![
                format!(
                    "holder index lists coin {} of {} that is not a live coin of it",
                    p.note.short(),
                    p.alice.short()
                ),
                format!(
                    "holder index lists {} live coin(s), the coin states {live}",
                    live + 1
                ),
            ]
        );
    }

    #[test]
    fn a_live_coin_the_holder_index_does_not_list_is_found() {
        let mut w = World::new(8);
        let p = paid(&mut w);
        let live = w.report().live_coins;
        let (_, change) = p.change;
        w.delete(holder_key(&p.alice, &change));
        assert_eq!(
            w.problems(),
            vec![
                format!(
                    "holder index does not list live coin {} of {}",
                    change.short(),
                    p.alice.short()
                ),
                format!(
                    "holder index lists {} live coin(s), the coin states {live}",
                    live - 1
                ),
            ]
        );
        // Listed under another holder: stale there, missing here.
        let bob = p.transfer.outputs[p.to_bob.0].holder;
        w.put(holder_key(&bob, &change), Vec::new());
        let problems = w.problems();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems.contains(&format!(
            "holder index lists coin {} of {} that is not a live coin of it",
            change.short(),
            bob.short()
        )));
        assert_eq!(
            problems[2],
            format!("holder index lists {live} live coin(s), the coin states {live}")
        );
    }

    #[test]
    fn malformed_holder_index_entries_are_found() {
        let mut w = World::new(9);
        let p = paid(&mut w);
        let mut short = keys::HOLDER.to_vec();
        short.extend_from_slice(&[7; 40]);
        w.put(short, Vec::new());
        let mut bad = keys::HOLDER.to_vec();
        bad.extend_from_slice(&[0; 32]); // The identity: a small-order key.
        bad.extend_from_slice(&p.note.0);
        w.put(bad, Vec::new());
        assert_eq!(
            w.problems(),
            vec![
                "holder index names an invalid key".to_string(),
                "malformed holder index key".to_string(),
            ]
        );
    }

    #[test]
    fn a_transfer_recorded_for_two_coins_creates_its_outputs_twice() {
        let mut w = World::new(10);
        let p = paid(&mut w);
        let (_, change) = p.change;
        let (_, to_bob) = p.to_bob;
        // Alice's change recorded as spent by the transfer that spent her note.
        let state = CoinState::Spent {
            value: Fen(7_000),
            transfer: p.transfer.clone(),
        };
        w.put(keys::with(keys::COIN, &change.0), state.to_bytes());
        w.delete(holder_key(&p.alice, &change));
        let problems = w.problems();
        let mut twice = [to_bob, change];
        twice.sort();
        let expected = [
            format!("coin {}: created more than once", twice[0].short()),
            format!("coin {}: created more than once", twice[1].short()),
            format!(
                "coin {}: recorded transfer spends another coin",
                change.short()
            ),
            format!(
                "coin {}: transfer outputs do not sum to its value ¥70.00",
                change.short()
            ),
        ];
        for e in &expected {
            assert!(problems.contains(e), "{e} in {problems:?}");
        }
        assert!(problems.last().is_some_and(|l| l.starts_with("issued ")));
    }

    #[test]
    fn undecodable_records_and_a_note_under_another_id_are_found() {
        let mut w = World::new(11);
        let p = paid(&mut w);
        let garbage = Id([0xEE; 32]);
        w.put(keys::with(keys::COIN, &garbage.0), vec![9, 9]);
        w.put(keys::with(keys::COIN, b"short"), vec![1]);
        w.put(keys::with(keys::NOTE, b"short"), vec![1]);
        let note = w
            .iss
            .store
            .get(&keys::with(keys::NOTE, &p.note.0))
            .expect("get")
            .expect("the note");
        let elsewhere = Id([0x01; 32]);
        w.put(keys::with(keys::NOTE, &elsewhere.0), note);
        let problems = w.problems();
        assert_eq!(problems.len(), 5, "{problems:?}");
        // The coins' problems by key ("short" before 0xEE…), then the notes'.
        assert_eq!(problems[0], "malformed coin key");
        assert!(
            problems[1].starts_with(&format!("coin {}: undecodable state: ", garbage.short())),
            "{problems:?}"
        );
        assert_eq!(
            problems[2..],
            [
                format!("note {}: stored under the wrong id", elsewhere.short()),
                format!("note {}: no coin state", elsewhere.short()),
                "undecodable note record".to_string(),
            ]
        );
    }

    /// A proof's statement of a collection must be what the ledger recorded, and a revocation for
    /// a double spend must be backed by a stored proof.
    #[test]
    fn proofs_and_revocations_are_checked_against_the_ledger() {
        let mut w = World::new(12);
        let kay = w.wallet();
        let payer = w.wallet();
        let shop = w.wallet();
        w.fund(&kay, 10);
        w.fund(&payer, 100);
        let backup = Wallet::open(kay.store().snapshot()).expect("open backup");
        w.pay(&payer, &kay, 3_000);
        w.sync(&payer);
        let collected = w.sync(&backup);
        let coin = collected.collected[0];
        w.pay(&kay, &shop, 3_000);
        w.sync(&shop);
        let report = w.report();
        assert!(report.ok, "{:?}", report.problems);
        assert_eq!((report.proofs, report.revocations), (1, 1));
        let (proof_key, _) = w
            .iss
            .store
            .scan_prefix(keys::PROOF)
            .expect("scan")
            .pop()
            .expect("a proof");
        let proof = id_of(&proof_key, keys::PROOF).expect("proof id");
        let Some(CoinState::Redeemed {
            value,
            holder,
            collected: Some(c),
        }) = w.coin(&coin)
        else {
            panic!("the coin was collected")
        };
        let moved = CoinState::Redeemed {
            value,
            holder,
            collected: Some(Collected { at: c.at + 1, ..c }),
        };
        w.put(keys::with(keys::COIN, &coin.0), moved.to_bytes());
        assert_eq!(
            w.problems(),
            vec![format!(
                "proof {}: the ledger does not record the collection it states",
                proof.short()
            )]
        );
        w.delete(proof_key);
        assert_eq!(
            w.problems(),
            vec![format!(
                "revocation of {} is backed by neither a proof nor an operator reason",
                kay.public().short()
            )]
        );
    }
}
