//! Settlement at the issuer: sync requests (offline money coming home) and online payments.
//!
//! The rules are `tongbao::settlement` (pure); this module applies them to the ledger. Several
//! requests can be settled as one group: each is checked against the group's pending changes, and
//! the group is committed in one atomic batch with one flush (group commit). A request that fails
//! leaves nothing in the group. Responses are returned only after the commit is durable.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use tongbao::codec::{Decode, Encode};
use tongbao::protocol::certificate::{Certificate, WalletClass};
use tongbao::protocol::coin::{SigCheck, verify_signatures};
use tongbao::protocol::note::{Earmark, Note};
use tongbao::protocol::payment::Payment;
use tongbao::protocol::proof::DoubleSpendProof;
use tongbao::protocol::revocation::{Revocation, RevocationList, RevocationReason};
use tongbao::protocol::sync::{
    CoinResult, CoinStatus, Confirmation, RejectReason, SyncRequest, SyncResponse,
};
use tongbao::protocol::{Context, SignedBody, VerifyError};
use tongbao::settlement::{CoinState, LedgerView, Overlay, settle_chain};
use tongbao::store::{Batch, Store, StoreError};
use tongbao::{Fen, Id, Nonce, PublicKey, Signature};

use crate::ledger::{DEFAULT_CERT_SECS, Issuer, IssuerError, holder_key, keys};

/// The ledger's coin states as a [`LedgerView`].
pub(crate) struct StoreView<'a, S: Store>(pub &'a S);

impl<S: Store> LedgerView for StoreView<'_, S> {
    type Error = StoreError;
    fn coin(&self, id: &Id) -> Result<Option<CoinState>, StoreError> {
        match self.0.get(&keys::with(keys::COIN, &id.0))? {
            None => Ok(None),
            Some(v) => CoinState::decode(&v)
                .map(Some)
                .map_err(|e| StoreError::Backend(format!("coin state: {e}"))),
        }
    }
}

/// A sync request's chains after signature checks: `None` for a chain that failed.
pub type Prechecked = Vec<Option<tongbao::protocol::coin::CoinInfo>>;

/// Why a key was revoked, kept beside the revocation list.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RevocationRecord {
    /// double-spend, lost, stolen or fraud.
    pub reason: String,
    /// The proof id (hex) for a double spend.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub proof: Option<String>,
    /// The operator's words, for other reasons.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub operator_reason: Option<String>,
    /// When.
    pub at: u64,
}

/// Totals changed by a group, applied on commit.
#[derive(Default)]
struct Totals {
    issued: u64,
    notes: u64,
    redeemed: u64,
    bank_in: u64,
    bank_out: u64,
    losses: u64,
    settled_transfers: u64,
    double_spends: u64,
}

/// Everything a group of requests changes besides coin states.
struct Group {
    batch: Batch,
    totals: Totals,
    /// New revocations (key -> record), added to the list once for the whole group.
    revoke: BTreeMap<[u8; 32], (PublicKey, RevocationRecord)>,
    losses: BTreeMap<[u8; 32], u64>,
    /// Sync ids settled in this group (idempotency inside the group).
    sync_ids: HashSet<[u8; 16]>,
    /// Proofs recorded in this group (each counted once).
    proofs: HashSet<[u8; 32]>,
}

impl Group {
    fn new() -> Group {
        Group {
            batch: Batch::new(),
            totals: Totals::default(),
            revoke: BTreeMap::new(),
            losses: BTreeMap::new(),
            sync_ids: HashSet::new(),
            proofs: HashSet::new(),
        }
    }

    /// Takes in what one request staged, once that request has fully succeeded.
    fn merge(&mut self, part: Group) {
        for (k, v) in part.batch.ops() {
            match v {
                Some(v) => self.batch.put(k.clone(), v.clone()),
                None => self.batch.delete(k.clone()),
            }
        }
        let (t, p) = (&mut self.totals, &part.totals);
        t.issued += p.issued;
        t.notes += p.notes;
        t.redeemed += p.redeemed;
        t.bank_in += p.bank_in;
        t.bank_out += p.bank_out;
        t.losses += p.losses;
        t.settled_transfers += p.settled_transfers;
        t.double_spends += p.double_spends;
        for (k, v) in part.revoke {
            self.revoke.entry(k).or_insert(v);
        }
        for (k, v) in part.losses {
            *self.losses.entry(k).or_default() += v;
        }
        self.sync_ids.extend(part.sync_ids);
        self.proofs.extend(part.proofs);
    }
}

/// A response before the group's final key set and revocation list are known.
struct Draft {
    resp: SyncResponse,
}

impl<S: Store> Issuer<S> {
    /// Settles one sync request.
    pub fn sync(&self, req: &SyncRequest, now: u64) -> Result<SyncResponse, IssuerError> {
        self.sync_many(std::slice::from_ref(req), now)
            .pop()
            .unwrap_or_else(|| Err(IssuerError::Refused("empty".into())))
    }

    /// Settles a group of sync requests with one atomic, durable commit (group commit). Each result
    /// is that request's response or the reason it was refused (a refused request changes nothing).
    pub fn sync_many(
        &self,
        reqs: &[SyncRequest],
        now: u64,
    ) -> Vec<Result<SyncResponse, IssuerError>> {
        let checked = reqs.iter().map(|r| self.precheck(r, now)).collect();
        self.sync_prechecked(reqs, checked, now)
    }

    /// Like [`Issuer::sync_many`] with the signature checks already done by [`Issuer::precheck`]
    /// (which needs no lock, so a server runs it on every core before handing requests to the one
    /// writer that settles them in groups).
    pub fn sync_prechecked(
        &self,
        reqs: &[SyncRequest],
        checked: Vec<Result<Prechecked, IssuerError>>,
        now: u64,
    ) -> Vec<Result<SyncResponse, IssuerError>> {
        let _guard = self.lock();
        match self.sync_group(reqs, checked, now) {
            Ok(results) => results,
            Err(e) => {
                let msg = e.to_string();
                reqs.iter()
                    .map(|_| Err(IssuerError::GroupFailed(msg.clone())))
                    .collect()
            }
        }
    }

    /// Verifies the request signature and every chain (structure and signatures), with no lock and
    /// no ledger state. A chain that fails is `None` (reported as invalid); a bad request signature
    /// refuses the request.
    pub fn precheck(&self, req: &SyncRequest, now: u64) -> Result<Prechecked, IssuerError> {
        req.verify_signature()?;
        let keyset = self.keyset()?;
        // A refresh transfer to the issuer does not count against the hop limit (a coin that
        // arrived at the limit can still come home); every other chain keeps the limit.
        let mut relaxed = keyset.clone();
        relaxed.policy.max_hops = relaxed.policy.max_hops.saturating_add(1);
        let root = keyset.root;
        let ctx = Context {
            keys: &keyset,
            now,
            revoked: None,
        };
        let refresh_ctx = Context {
            keys: &relaxed,
            now,
            revoked: None,
        };
        ctx.check_not_future(req.time, "sync request")?;
        // Each signature is checked once: notes this issuer issued and transfers the ledger
        // already recorded were checked when they entered it (a recorded transfer never changes),
        // and history shared by several chains of this request is checked with the first chain
        // that verifies. What is left is checked as one batch per chain.
        let view = StoreView(&self.store);
        let mut verified: HashSet<Id> = HashSet::new();
        let mut out = Vec::with_capacity(req.coins.len());
        for c in &req.coins {
            let refresh = c.hops.last().is_some_and(|h| {
                h.transfer
                    .outputs
                    .get(usize::from(h.index))
                    .is_some_and(|o| o.holder == root)
            });
            let mut checks: Vec<SigCheck> = Vec::new();
            let Ok(info) =
                c.check_structure(if refresh { &refresh_ctx } else { &ctx }, &mut checks)
            else {
                out.push(None);
                continue;
            };
            // `check_structure` queues the note's check first, then one per hop in order.
            let mut keep = Vec::with_capacity(checks.len());
            for (i, check) in checks.into_iter().enumerate() {
                let known = if i == 0 {
                    verified.contains(&info.note_id) || view.coin(&info.note_id)?.is_some()
                } else {
                    let link = &info.links[i - 1];
                    verified.contains(&link.transfer)
                        || matches!(view.coin(&link.input)?, Some(CoinState::Spent { transfer, .. }) if transfer.id() == link.transfer)
                };
                if !known {
                    keep.push(check);
                }
            }
            if verify_signatures(&keep).is_ok() {
                verified.insert(info.note_id);
                verified.extend(info.links.iter().map(|l| l.transfer));
                out.push(Some(info));
            } else {
                out.push(None);
            }
        }
        Ok(out)
    }

    fn sync_group(
        &self,
        reqs: &[SyncRequest],
        checked: Vec<Result<Prechecked, IssuerError>>,
        now: u64,
    ) -> Result<Vec<Result<SyncResponse, IssuerError>>, IssuerError> {
        let view = StoreView(&self.store);
        let mut ov = Overlay::new(&view);
        let mut g = Group::new();
        let rl = self.revocations()?;
        let mut drafts: Vec<Result<Option<Draft>, IssuerError>> = Vec::with_capacity(reqs.len());
        let mut replies: Vec<Option<SyncResponse>> = Vec::with_capacity(reqs.len());
        for (req, infos) in reqs.iter().zip(checked) {
            // Idempotency: a replay gets the stored response, unchanged.
            match self.stored_sync(req)? {
                Some(Ok(resp)) => {
                    drafts.push(Ok(None));
                    replies.push(Some(resp));
                    continue;
                }
                Some(Err(e)) => {
                    drafts.push(Err(e));
                    replies.push(None);
                    continue;
                }
                None => {}
            }
            if !g.sync_ids.insert(req.sync_id.0) {
                drafts.push(Err(IssuerError::Refused(
                    "sync id used twice in one group".into(),
                )));
                replies.push(None);
                continue;
            }
            let result = infos.and_then(|infos| {
                let mut child = Overlay::new(&ov);
                let mut part = Group::new();
                let d = self.sync_one(&mut child, &g, &mut part, &rl, req, &infos, now)?;
                let changes = child.into_changes();
                Ok((d, changes, part))
            });
            match result {
                Ok((d, changes, part)) => {
                    ov.absorb(changes);
                    g.merge(part);
                    drafts.push(Ok(Some(d)));
                }
                Err(e) => {
                    g.sync_ids.remove(&req.sync_id.0);
                    drafts.push(Err(e));
                }
            }
            replies.push(None);
        }
        // The group's revocations, then the final key set and list every response carries.
        let rl = self.apply_revocations(&mut g, rl, now)?;
        let keyset = self.keyset()?;
        let mut out = Vec::with_capacity(reqs.len());
        for (draft, reply) in drafts.into_iter().zip(replies) {
            out.push(match (draft, reply) {
                (_, Some(resp)) => Ok(resp),
                (Ok(Some(mut d)), None) => {
                    d.resp.keyset = keyset.clone();
                    d.resp.revocations = rl.clone();
                    let resp = d.resp.signed(&self.root);
                    g.batch
                        .put(keys::with(keys::SYNC, &resp.sync_id.0), resp.to_bytes());
                    Ok(resp)
                }
                (Err(e), None) => Err(e),
                (Ok(None), None) => Err(IssuerError::Refused(
                    "internal: replay without response".into(),
                )),
            });
        }
        self.commit_group(g, ov)?;
        Ok(out)
    }

    /// The stored response for a replayed sync id: `Some(Ok)` for the same request, `Some(Err)` if
    /// the id was used for a different request.
    fn stored_sync(
        &self,
        req: &SyncRequest,
    ) -> Result<Option<Result<SyncResponse, IssuerError>>, IssuerError> {
        let Some(v) = self.store.get(&keys::with(keys::SYNC, &req.sync_id.0))? else {
            return Ok(None);
        };
        let resp = SyncResponse::decode(&v)
            .map_err(|e| IssuerError::Corrupt(format!("stored sync: {e}")))?;
        if resp.request != req.id() || resp.wallet != req.wallet {
            return Ok(Some(Err(IssuerError::Conflict(format!(
                "sync id {} was already used for a different request",
                req.sync_id.short()
            )))));
        }
        Ok(Some(Ok(resp)))
    }

    #[allow(clippy::too_many_arguments)]
    fn sync_one<V: LedgerView<Error = StoreError>>(
        &self,
        ov: &mut Overlay<'_, V>,
        group: &Group,
        g: &mut Group,
        rl: &RevocationList,
        req: &SyncRequest,
        infos: &[Option<tongbao::protocol::coin::CoinInfo>],
        now: u64,
    ) -> Result<Draft, IssuerError> {
        let w = req.wallet;
        let mut record = self.wallet(&w)?.ok_or_else(|| {
            IssuerError::UnknownWallet(format!(
                "wallet {} is not registered with this issuer",
                w.address()
            ))
        })?;
        if rl.is_revoked(&w) || group.revoke.contains_key(w.as_bytes()) {
            return Err(IssuerError::Revoked(w.address()));
        }
        if req.counter < record.counter_base {
            return Err(IssuerError::Refused(format!(
                "sync counter {} is behind the wallet's last certificate ({}): a rolled-back wallet?",
                req.counter, record.counter_base
            )));
        }
        let root = self.root.public();
        let mut results = Vec::with_capacity(req.coins.len());
        let mut refreshed = Fen::ZERO;
        let mut settled = 0u64;
        let mut found: Vec<(PublicKey, DoubleSpendProof, Fen)> = Vec::new();
        let mut restricted = Restricted::default();
        for (coin, info) in req.coins.iter().zip(infos) {
            let Some(info) = info else {
                results.push(CoinResult {
                    coin: coin.id(),
                    value: coin.value(),
                    status: CoinStatus::Rejected,
                    reason: RejectReason::Invalid,
                    proof: None,
                });
                continue;
            };
            let o = settle_chain(ov, coin, info, &root, &w)?;
            refreshed = refreshed
                .checked_add(o.refreshed)
                .ok_or_else(|| IssuerError::Refused("overflow".into()))?;
            for (id, expires_at) in &o.restricted {
                g.batch
                    .put(earmark_key(id), expires_at.to_be_bytes().to_vec());
            }
            // Red-envelope money refreshed by its winner stays restricted, with the same expiry.
            if let Earmark::MerchantsOnly { expires_at } = info.earmark
                && coin.note.holder == w
                && o.refreshed > Fen::ZERO
            {
                restricted.add(expires_at, o.refreshed)?;
            }
            settled += o.settled_transfers as u64;
            if let Some((cheater, proof)) = o.double_spend {
                found.push((cheater, proof, info.value));
            }
            results.push(o.result);
        }
        // Proofs the wallet caught offline.
        for p in &req.proofs {
            if p.verify().is_ok() {
                found.push((p.signer, p.clone(), Fen::ZERO));
            }
        }
        // Credits: coins other wallets settled to this one, collected into the fresh notes.
        let mut collected = Vec::new();
        let mut collected_value = Fen::ZERO;
        for id in self.live_coins_of(ov, &w)? {
            if let Some(CoinState::Live { value, holder }) = ov.get(&id)? {
                // Red-envelope money of this wallet's own (a note not imported, change settled by
                // the payee) stays restricted; past its expiry it is left for the clawback.
                if let Some(expires_at) = self.restricted_until(&id)? {
                    if now > expires_at {
                        continue;
                    }
                    restricted.add(expires_at, value)?;
                }
                ov.set(id, CoinState::Redeemed { value, holder });
                collected_value = collected_value
                    .checked_add(value)
                    .ok_or_else(|| IssuerError::Refused("overflow".into()))?;
                collected.push(id);
            }
        }
        let gross = refreshed
            .checked_add(collected_value)
            .and_then(|v| v.checked_add(req.topup))
            .ok_or_else(|| IssuerError::Refused("overflow".into()))?;
        let fresh = gross.checked_sub(req.redeem).ok_or_else(|| {
            IssuerError::Refused(format!(
                "cannot redeem {}: only {gross} comes home in this sync",
                req.redeem
            ))
        })?;
        // Restricted money cannot be cashed out: the redemption comes from ordinary money.
        let plain = fresh.checked_sub(restricted.total).ok_or_else(|| {
            IssuerError::Refused(format!(
                "cannot redeem {}: {} of what comes home is red-envelope money, which cannot be cashed out",
                req.redeem, restricted.total
            ))
        })?;
        let class: WalletClass = record.class.parse().map_err(IssuerError::Corrupt)?;
        let limits = class.default_limits();
        if req.topup > Fen::ZERO && fresh > limits.balance_max {
            return Err(IssuerError::Refused(format!(
                "top-up would bring the wallet to {fresh}, above its class {class} cap {}",
                limits.balance_max
            )));
        }
        // Fresh notes: one note of the ordinary value (fragments merged, hops reset), then one per
        // expiry of restricted value, each keeping its earmark.
        let mut notes = Vec::new();
        let mut wanted = vec![(Nonce(req.sync_id.0), plain, Earmark::None)];
        for (&expires_at, &value) in &restricted.by_expiry {
            let serial = restricted_serial(&req.sync_id, expires_at);
            wanted.push((
                Nonce(serial),
                Fen(value),
                Earmark::MerchantsOnly { expires_at },
            ));
        }
        for (serial, value, earmark) in wanted {
            if value == Fen::ZERO {
                continue;
            }
            let (key_id, key) = self.signing_key(now)?;
            let note = Note::sign(&key, key_id, serial, value, w, now, earmark);
            if ov.get(&note.id())?.is_some() {
                return Err(IssuerError::Refused("note serial collision".into()));
            }
            ov.set(note.id(), CoinState::Live { value, holder: w });
            g.batch
                .put(keys::with(keys::NOTE, &note.id().0), note.to_bytes());
            if let Earmark::MerchantsOnly { expires_at } = earmark {
                g.batch
                    .put(earmark_key(&note.id()), expires_at.to_be_bytes().to_vec());
            }
            notes.push(note);
        }
        // A wallet caught cheating in its own sync gets an already-expired certificate.
        let cheating = found.iter().any(|(c, _, _)| *c == w);
        let (key_id, key) = self.signing_key(now)?;
        let serial = record.cert_serial + 1;
        let cert = Certificate {
            key_id,
            wallet: w,
            kind: record.kind,
            class,
            merchant: record
                .merchant
                .as_deref()
                .map(PublicKey::from_address)
                .transpose()
                .map_err(|e| IssuerError::Corrupt(e.to_string()))?,
            limits,
            serial,
            counter_base: req.counter,
            issued_at: now,
            expires_at: if cheating {
                now
            } else {
                now + DEFAULT_CERT_SECS
            },
            signature: Signature([0; 64]),
        }
        .signed(&key);
        record.cert_serial = serial;
        record.counter_base = req.counter;
        record.cert_expires_at = cert.expires_at;
        g.batch
            .put(keys::with(keys::WALLET, w.as_bytes()), json(&record)?);
        for (cheater, proof, loss) in found {
            self.note_double_spend(g, &group.proofs, cheater, &proof, loss, now)?;
        }
        let t = &mut g.totals;
        t.issued += fresh.0;
        t.notes += notes.len() as u64;
        t.redeemed += refreshed.0 + collected_value.0;
        t.bank_in += req.topup.0;
        t.bank_out += req.redeem.0;
        t.settled_transfers += settled;
        let resp = SyncResponse {
            wallet: w,
            sync_id: req.sync_id,
            request: req.id(),
            time: now,
            results,
            notes,
            collected,
            redeemed: req.redeem,
            certificate: cert,
            keyset: self.keyset()?,
            revocations: RevocationList {
                root,
                list_version: 0,
                issued_at: now,
                entries: Vec::new(),
                signature: Signature([0; 64]),
            },
            signature: Signature([0; 64]),
        };
        Ok(Draft { resp })
    }

    /// The expiry of coin `id` if it is red-envelope money held by its winner (the earmark index).
    pub(crate) fn restricted_until(&self, id: &Id) -> Result<Option<u64>, IssuerError> {
        let Some(v) = self.store.get(&earmark_key(id))? else {
            return Ok(None);
        };
        let arr: [u8; 8] = v
            .try_into()
            .map_err(|_| IssuerError::Corrupt("earmark index".into()))?;
        Ok(Some(u64::from_be_bytes(arr)))
    }

    /// Live coins held by `w`, from the holder index and the pending changes.
    fn live_coins_of<V: LedgerView<Error = StoreError>>(
        &self,
        ov: &Overlay<'_, V>,
        w: &PublicKey,
    ) -> Result<Vec<Id>, IssuerError> {
        let mut prefix = keys::HOLDER.to_vec();
        prefix.extend_from_slice(w.as_bytes());
        let mut ids: Vec<Id> = Vec::new();
        for (k, _) in self.store.scan_prefix(&prefix)? {
            let mut id = [0u8; 32];
            if k.len() == prefix.len() + 32 {
                id.copy_from_slice(&k[prefix.len()..]);
                ids.push(Id(id));
            }
        }
        ids.extend(ov.changes().filter_map(|(id, s)| match s {
            CoinState::Live { holder, .. } if holder == w => Some(*id),
            _ => None,
        }));
        ids.sort();
        ids.dedup();
        let mut live = Vec::new();
        for id in ids {
            if matches!(ov.get(&id)?, Some(CoinState::Live { holder, .. }) if holder == *w) {
                live.push(id);
            }
        }
        Ok(live)
    }

    /// Records a proven double spend: the proof, the loss against the cheater, the revocation.
    fn note_double_spend(
        &self,
        g: &mut Group,
        earlier: &HashSet<[u8; 32]>,
        cheater: PublicKey,
        proof: &DoubleSpendProof,
        loss: Fen,
        now: u64,
    ) -> Result<(), IssuerError> {
        let pid = proof.id();
        let known = earlier.contains(&pid.0)
            || !g.proofs.insert(pid.0)
            || self.store.get(&keys::with(keys::PROOF, &pid.0))?.is_some();
        if !known {
            g.batch
                .put(keys::with(keys::PROOF, &pid.0), proof.to_bytes());
            g.totals.double_spends += 1;
        }
        if loss > Fen::ZERO {
            *g.losses.entry(*cheater.as_bytes()).or_default() += loss.0;
            g.totals.losses += loss.0;
        }
        g.revoke.entry(*cheater.as_bytes()).or_insert((
            cheater,
            RevocationRecord {
                reason: "double-spend".into(),
                proof: Some(pid.to_hex()),
                operator_reason: None,
                at: now,
            },
        ));
        Ok(())
    }

    /// Adds the group's new revocations to the list (one new version), returns the list to send.
    fn apply_revocations(
        &self,
        g: &mut Group,
        rl: RevocationList,
        now: u64,
    ) -> Result<RevocationList, IssuerError> {
        let fresh: Vec<_> = g
            .revoke
            .values()
            .filter(|(k, _)| !rl.is_revoked(k))
            .cloned()
            .collect();
        if fresh.is_empty() {
            return Ok(rl);
        }
        let mut entries = rl.entries.clone();
        for (k, rec) in &fresh {
            entries.push(Revocation {
                wallet: *k,
                reason: RevocationReason::DoubleSpend,
                revoked_at: now,
            });
            g.batch
                .put(keys::with(keys::REVOKED, k.as_bytes()), json(rec)?);
        }
        let list = RevocationList::sign(&self.root, rl.list_version + 1, now, entries);
        g.batch.put(keys::REVOCATIONS, list.to_bytes());
        Ok(list)
    }

    /// Writes the group's coin states (with the holder index) and totals in one durable commit.
    fn commit_group<V: LedgerView<Error = StoreError>>(
        &self,
        mut g: Group,
        ov: Overlay<'_, V>,
    ) -> Result<(), IssuerError> {
        let view = StoreView(&self.store);
        for (id, state) in ov.into_changes() {
            if let Some(CoinState::Live { holder, .. }) = view.coin(&id)? {
                g.batch.delete(holder_key(&holder, &id));
            }
            if let CoinState::Live { holder, .. } = &state {
                g.batch.put(holder_key(holder, &id), Vec::new());
            }
            g.batch.put(keys::with(keys::COIN, &id.0), state.to_bytes());
        }
        for (k, loss) in &g.losses {
            let key = keys::with(keys::LOSS, k);
            let old = self.load_u64(&key)?;
            g.batch.put(key, (old + loss).to_be_bytes().to_vec());
        }
        let t = &g.totals;
        for (key, add) in [
            (keys::ISSUED_TOTAL, t.issued),
            (keys::NOTE_COUNT, t.notes),
            (keys::REDEEMED_TOTAL, t.redeemed),
            (keys::BANK_IN, t.bank_in),
            (keys::BANK_OUT, t.bank_out),
            (keys::LOSSES_TOTAL, t.losses),
            (keys::SETTLED_TRANSFERS, t.settled_transfers),
            (keys::DOUBLE_SPENDS, t.double_spends),
        ] {
            if add > 0 {
                let old = self.load_u64(key)?;
                g.batch.put(key, (old + add).to_be_bytes().to_vec());
            }
        }
        self.store.commit(g.batch)?;
        Ok(())
    }

    /// Settles an online payment at once: every chain must settle (none already spent), the payee
    /// is credited, and the issuer's signed confirmation is final for the payee. A replay of the
    /// same payment returns the same confirmation.
    pub fn pay_online(&self, payment: &Payment, now: u64) -> Result<Confirmation, IssuerError> {
        let keyset = self.keyset()?;
        let pid = payment.id();
        let _guard = self.lock();
        if let Some(v) = self.store.get(&keys::with(keys::ONLINE, &pid.0))? {
            return Confirmation::decode(&v)
                .map_err(|e| IssuerError::Corrupt(format!("confirmation: {e}")));
        }
        let rl = self.revocations()?;
        let payee = self.wallet(&payment.payee)?.ok_or_else(|| {
            IssuerError::UnknownWallet(format!(
                "payee {} is not registered with this issuer",
                payment.payee.address()
            ))
        })?;
        let ctx = Context {
            keys: &keyset,
            now,
            revoked: Some(&rl),
        };
        let verified = payment.verify(&ctx, &payment.payee, payee.kind)?;
        let view = StoreView(&self.store);
        let mut ov = Overlay::new(&view);
        let root = self.root.public();
        let mut settled = 0u64;
        let mut restricted = Vec::new();
        for (coin, info) in payment.coins.iter().zip(&verified.coins) {
            let o = settle_chain(&mut ov, coin, info, &root, &payment.payer())?;
            restricted.extend(o.restricted.iter().copied());
            if let Some((cheater, proof)) = &o.double_spend {
                // Refused, but the proof and the revocation are recorded (no coin changes).
                let mut g = Group::new();
                self.note_double_spend(&mut g, &HashSet::new(), *cheater, proof, Fen::ZERO, now)?;
                let rl = self.apply_revocations(&mut g, self.revocations()?, now)?;
                let _ = rl;
                let empty = Overlay::new(&view);
                self.commit_group(g, empty)?;
            }
            if o.result.status != CoinStatus::Accepted {
                let why = match o.result.reason {
                    RejectReason::DoubleSpend => {
                        "a coin in it was already spent (double spend)".to_string()
                    }
                    RejectReason::None => "a coin in it was already settled".to_string(),
                    other => format!("a coin in it was rejected ({})", other.as_str()),
                };
                return Err(IssuerError::Verify(VerifyError::BadPayment(why)));
            }
            settled += o.settled_transfers as u64;
        }
        let conf = Confirmation::sign(&self.root, payment, now);
        let mut g = Group::new();
        g.totals.settled_transfers = settled;
        g.batch
            .put(keys::with(keys::ONLINE, &pid.0), conf.to_bytes());
        for (id, expires_at) in restricted {
            g.batch
                .put(earmark_key(&id), expires_at.to_be_bytes().to_vec());
        }
        self.commit_group(g, ov)?;
        Ok(conf)
    }

    /// Revokes a wallet key by operator decision (lost, stolen, fraud) or with a proof.
    pub fn revoke(
        &self,
        key: &PublicKey,
        reason: RevocationReason,
        operator_reason: &str,
        now: u64,
    ) -> Result<RevocationList, IssuerError> {
        let _guard = self.lock();
        let rl = self.revocations()?;
        if rl.is_revoked(key) {
            return Err(IssuerError::Conflict(format!(
                "{} is already revoked",
                key.address()
            )));
        }
        let mut entries = rl.entries.clone();
        entries.push(Revocation {
            wallet: *key,
            reason,
            revoked_at: now,
        });
        let list = RevocationList::sign(&self.root, rl.list_version + 1, now, entries);
        let rec = RevocationRecord {
            reason: reason.as_str().into(),
            proof: None,
            operator_reason: Some(operator_reason.to_string()).filter(|r| !r.is_empty()),
            at: now,
        };
        let mut b = Batch::new();
        b.put(keys::REVOCATIONS, list.to_bytes());
        b.put(keys::with(keys::REVOKED, key.as_bytes()), json(&rec)?);
        self.store.commit(b)?;
        Ok(list)
    }
}

/// The earmark-index key of a coin: red-envelope money held by its winner.
pub(crate) fn earmark_key(id: &Id) -> Vec<u8> {
    keys::with(keys::EARMARKED, &id.0)
}

/// Restricted value coming home in one sync, by expiry.
#[derive(Default)]
struct Restricted {
    by_expiry: BTreeMap<u64, u64>,
    total: Fen,
}

impl Restricted {
    fn add(&mut self, expires_at: u64, value: Fen) -> Result<(), IssuerError> {
        let overflow = || IssuerError::Refused("overflow".into());
        self.total = self.total.checked_add(value).ok_or_else(overflow)?;
        let e = self.by_expiry.entry(expires_at).or_default();
        *e = e.checked_add(value.0).ok_or_else(overflow)?;
        Ok(())
    }
}

/// The serial of the fresh restricted note for one expiry: derived from the sync id, so a replayed
/// sync signs the same notes.
fn restricted_serial(sync_id: &Nonce, expires_at: u64) -> [u8; 16] {
    let mut h = blake3::Hasher::new();
    h.update(b"tongbao/v1/restricted-serial");
    h.update(&sync_id.0);
    h.update(&expires_at.to_be_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}

fn json<T: Serialize>(v: &T) -> Result<Vec<u8>, IssuerError> {
    serde_json::to_vec(v).map_err(|e| IssuerError::Corrupt(e.to_string()))
}
