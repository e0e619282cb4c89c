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
use tongbao::protocol::payment::{Payment, VerifiedPayment};
use tongbao::protocol::proof::DoubleSpendProof;
use tongbao::protocol::revocation::{Revocation, RevocationList, RevocationReason};
use tongbao::protocol::sync::{
    CoinResult, CoinStatus, Confirmation, RejectReason, SyncRequest, SyncResponse,
};
use tongbao::protocol::{Context, SignedBody, VerifyError};
use tongbao::settlement::{CoinState, Collected, LedgerView, Overlay, settle_chain};
use tongbao::store::{Batch, Store, StoreError};
use tongbao::{Fen, Id, Nonce, PublicKey, Signature};

use crate::ledger::{
    DEFAULT_CERT_SECS, Issuer, IssuerError, group_failed, holder_key, holder_key_raw, keys,
};

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
    /// Lost coins whose loss this group counted (each counted once).
    lost: HashSet<Id>,
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
            lost: HashSet::new(),
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
        self.lost.extend(part.lost);
    }
}

/// A response to send, with its encoding to store if it is new (`None` for a replay).
type SignedReply = (SyncResponse, Option<Vec<u8>>);

/// A double spend found while settling a request: the cheater, the proof, and the coin an
/// honest holder lost through it with its value (if a loss is booked).
type Found = (PublicKey, DoubleSpendProof, Option<(Id, Fen)>);

/// A response before the group's final key set and revocation list are known, with its fresh
/// notes and certificate not yet signed (their ids do not depend on the signatures, so the group
/// is settled first and everything is signed afterwards, on every core).
struct Draft {
    resp: SyncResponse,
    note_key: std::sync::Arc<tongbao::SecretKey>,
}

impl Draft {
    /// Signs the notes and the certificate with the note key, then the response with the root.
    fn sign(
        mut self,
        root: &tongbao::SecretKey,
        keyset: &tongbao::protocol::keyset::IssuerKeySet,
        rl: &RevocationList,
    ) -> SyncResponse {
        for note in &mut self.resp.notes {
            note.signature = self.note_key.sign(&note.signing_bytes());
        }
        let cert = &mut self.resp.certificate;
        cert.signature = self.note_key.sign(&cert.signing_bytes());
        self.resp.keyset = keyset.clone();
        self.resp.revocations = rl.clone();
        self.resp.signed(root)
    }
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
            Err(e) => group_failed(reqs.len(), &e),
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
            let refresh = comes_home(c, &root);
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
        // Sign every new response (its notes, certificate and itself) on every core, encoding
        // what is stored alongside.
        use rayon::prelude::*;
        let root = &self.root;
        let signed: Vec<Result<SignedReply, IssuerError>> = drafts
            .into_par_iter()
            .zip(replies)
            .map(|(draft, reply)| match (draft, reply) {
                (_, Some(resp)) => Ok((resp, None)),
                (Ok(Some(d)), None) => {
                    let resp = d.sign(root, &keyset, &rl);
                    let bytes = resp.to_bytes();
                    Ok((resp, Some(bytes)))
                }
                (Err(e), None) => Err(e),
                (Ok(None), None) => Err(IssuerError::Refused(
                    "internal: replay without response".into(),
                )),
            })
            .collect();
        let mut out = Vec::with_capacity(reqs.len());
        for r in signed {
            out.push(r.map(|(resp, bytes)| {
                if let Some(bytes) = bytes {
                    for note in &resp.notes {
                        g.batch
                            .put(keys::with(keys::NOTE, &note.id().0), note.to_bytes());
                    }
                    g.batch.put(keys::with(keys::SYNC, &resp.sync_id.0), bytes);
                }
                resp
            }));
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
        let mut found: Vec<Found> = Vec::new();
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
            let mut o = settle_chain(ov, coin, info, &root, &w)?;
            // A coin collected for its holder and spent by it: the issuer states the collection.
            o.sign_collection(&self.root);
            refreshed = refreshed
                .checked_add(o.refreshed)
                .ok_or_else(|| IssuerError::Refused("overflow".into()))?;
            for (id, expires_at) in &o.restricted {
                g.batch
                    .put(earmark_key(id), expires_at.to_be_bytes().to_vec());
            }
            // After the puts: a chain may make restricted change and spend it.
            for id in &o.spent_restricted {
                g.batch.delete(earmark_key(id));
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
                // A loss is counted when an honest holder brings its coin home (a refresh) and
                // it meets the double spend: the coin's value is what that holder lost. A
                // payer's report of a payment says nothing of whether the payee took it (it may
                // have refused it, or never received it); a payee who took it brings it home at
                // its own sync. Counted once per lost coin, however often it is presented.
                let refresh = comes_home(coin, &root);
                let loss = info
                    .links
                    .last()
                    .filter(|_| refresh && cheater != w)
                    .map(|l| (l.input, info.value));
                found.push((cheater, proof, loss));
            }
            results.push(o.result);
        }
        // Proofs the wallet caught offline.
        let keyset = if req.proofs.is_empty() {
            None
        } else {
            Some(self.keyset()?)
        };
        for p in &req.proofs {
            if keyset.as_ref().is_some_and(|k| p.verify(k).is_ok()) {
                // Caught offline: the payee refused it, so nobody lost anything through it.
                found.push((p.signer(), p.clone(), None));
            }
        }
        let class: WalletClass = record.class.parse().map_err(IssuerError::Corrupt)?;
        let limits = class.default_limits();
        // Credits: coins other wallets settled to this one, collected into the fresh notes, as
        // far as the class balance cap allows (what the wallet redeems in this sync makes room);
        // a credit that does not fit stays live here for a later sync, in coin-id order.
        let room = limits
            .balance_max
            .checked_add(req.redeem)
            .unwrap_or(Fen(u64::MAX));
        let mut coming = refreshed
            .checked_add(req.topup)
            .ok_or_else(|| IssuerError::Refused("overflow".into()))?;
        let mut collected = Vec::new();
        let mut collected_value = Fen::ZERO;
        for (id, value, holder) in self.live_coins_of(ov, &w)? {
            // Red-envelope money of this wallet's own (a note not imported, change settled by
            // the payee) stays restricted; past its expiry it is left for the clawback.
            let restricted_until = self.restricted_until(&id)?;
            if restricted_until.is_some_and(|expires_at| now > expires_at) {
                continue;
            }
            match coming.checked_add(value) {
                Some(after) if after <= room => coming = after,
                _ => continue,
            }
            if let Some(expires_at) = restricted_until {
                restricted.add(expires_at, value)?;
                g.batch.delete(earmark_key(&id));
            }
            // The sync and its time stay with the state: if the holder spends the coin later,
            // the issuer can state this collection in a proof (docs/adr/0005).
            ov.set(
                id,
                CoinState::Redeemed {
                    value,
                    holder,
                    collected: Some(Collected {
                        sync_id: req.sync_id,
                        at: now,
                    }),
                },
            );
            collected_value = collected_value
                .checked_add(value)
                .ok_or_else(|| IssuerError::Refused("overflow".into()))?;
            collected.push(id);
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
        // Signed after the group is settled (see `Draft`); the ids do not depend on signatures.
        let (key_id, note_key) = self.signing_key(now)?;
        for (serial, value, earmark) in wanted {
            if value == Fen::ZERO {
                continue;
            }
            let note = Note {
                key_id,
                serial,
                value,
                holder: w,
                issued_at: now,
                earmark,
                signature: Signature([0; 64]),
            };
            if ov.get(&note.id())?.is_some() {
                return Err(IssuerError::Refused("note serial collision".into()));
            }
            ov.set(note.id(), CoinState::Live { value, holder: w });
            if let Earmark::MerchantsOnly { expires_at } = earmark {
                g.batch
                    .put(earmark_key(&note.id()), expires_at.to_be_bytes().to_vec());
            }
            notes.push(note);
        }
        // A wallet caught cheating in its own sync gets an already-expired certificate.
        let cheating = found.iter().any(|(c, _, _)| *c == w);
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
        };
        record.cert_serial = serial;
        record.counter_base = req.counter;
        record.cert_expires_at = cert.expires_at;
        g.batch
            .put(keys::with(keys::WALLET, w.as_bytes()), json(&record)?);
        for (cheater, proof, loss) in found {
            self.note_double_spend(g, group, cheater, &proof, loss, now)?;
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
        Ok(Draft { resp, note_key })
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

    /// Live coins held by `w` (id, value, holder), from the holder index and the pending
    /// changes, in id order.
    fn live_coins_of<V: LedgerView<Error = StoreError>>(
        &self,
        ov: &Overlay<'_, V>,
        w: &PublicKey,
    ) -> Result<Vec<(Id, Fen, PublicKey)>, IssuerError> {
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
            if let Some(CoinState::Live { value, holder }) = ov.get(&id)?
                && holder == *w
            {
                live.push((id, value, holder));
            }
        }
        Ok(live)
    }

    /// Records a proven double spend: the proof, the loss against the cheater, the revocation.
    /// `earlier` is what the group recorded before this request; `loss` is the coin an honest
    /// holder lost and its value, counted once per coin.
    fn note_double_spend(
        &self,
        g: &mut Group,
        earlier: &Group,
        cheater: PublicKey,
        proof: &DoubleSpendProof,
        loss: Option<(Id, Fen)>,
        now: u64,
    ) -> Result<(), IssuerError> {
        let pid = proof.id();
        let known = earlier.proofs.contains(&pid.0)
            || !g.proofs.insert(pid.0)
            || self.store.get(&keys::with(keys::PROOF, &pid.0))?.is_some();
        if !known {
            g.batch
                .put(keys::with(keys::PROOF, &pid.0), proof.to_bytes());
            g.totals.double_spends += 1;
        }
        if let Some((lost, value)) = loss
            && value > Fen::ZERO
            && !earlier.lost.contains(&lost)
            && g.lost.insert(lost)
            && self
                .store
                .get(&keys::with(keys::LOST_COIN, &lost.0))?
                .is_none()
        {
            g.batch.put(
                keys::with(keys::LOST_COIN, &lost.0),
                value.0.to_be_bytes().to_vec(),
            );
            *g.losses.entry(*cheater.as_bytes()).or_default() += value.0;
            g.totals.losses += value.0;
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
        for (id, state) in ov.into_changes() {
            // The holder index entry of a coin that was live: read the stored state's holder
            // bytes without decoding the whole state (a spent state carries a whole transfer).
            if let Some(holder) = self.stored_live_holder(&id)? {
                g.batch.delete(holder_key_raw(&holder, &id));
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

    /// The holder of coin `id` if its stored state is live (tag 1, value, holder key), as raw
    /// key bytes.
    fn stored_live_holder(&self, id: &Id) -> Result<Option<[u8; 32]>, IssuerError> {
        let Some(v) = self.store.get(&keys::with(keys::COIN, &id.0))? else {
            return Ok(None);
        };
        if v.first() != Some(&1) {
            return Ok(None);
        }
        let holder: [u8; 32] = v
            .get(9..41)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| IssuerError::Corrupt(format!("coin state {}", id.short())))?;
        Ok(Some(holder))
    }

    /// Settles an online payment at once: every chain must settle (none already spent), the payee
    /// is credited, and the issuer's signed confirmation is final for the payee. A replay of the
    /// same payment returns the same confirmation.
    pub fn pay_online(&self, payment: &Payment, now: u64) -> Result<Confirmation, IssuerError> {
        let checked = self.precheck_payment(payment, now);
        self.pay_online_prechecked(vec![(payment, checked, now)])
            .pop()
            .unwrap_or_else(|| Err(IssuerError::Refused("empty".into())))
    }

    /// Checks an online payment with no lock (so it can run on every core): its structure, the
    /// payer's certificate and limits, the payee, and every signature the ledger has not already
    /// checked (notes it issued and transfers it recorded are skipped, as in [`Issuer::precheck`]).
    pub fn precheck_payment(
        &self,
        payment: &Payment,
        now: u64,
    ) -> Result<VerifiedPayment, IssuerError> {
        let keyset = self.keyset()?;
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
        let mut checks = Vec::new();
        let verified = payment.check_structure(&ctx, &payment.payee, payee.kind, &mut checks)?;
        // Signing bytes hash to the message id, so a check is matched to the note or transfer it
        // covers by hashing its bytes.
        let view = StoreView(&self.store);
        let mut known: HashSet<Id> = HashSet::new();
        for info in &verified.coins {
            if view.coin(&info.note_id)?.is_some() {
                known.insert(info.note_id);
            }
        }
        for link in &verified.links {
            if matches!(view.coin(&link.input)?, Some(CoinState::Spent { transfer, .. }) if transfer.id() == link.transfer)
            {
                known.insert(link.transfer);
            }
        }
        if !known.is_empty() {
            checks.retain(|c| !known.contains(&Id::hash(&c.msg)));
        }
        verify_signatures(&checks)?;
        Ok(verified)
    }

    /// Settles online payments checked by [`Issuer::precheck_payment`] as one group: each against
    /// the changes of those before it, all committed in one atomic, durable batch. A payment that
    /// meets a double spend is refused, and the proof and the revocation are still recorded.
    pub fn pay_online_prechecked(
        &self,
        items: Vec<(&Payment, Result<VerifiedPayment, IssuerError>, u64)>,
    ) -> Vec<Result<Confirmation, IssuerError>> {
        let _guard = self.lock();
        let n = items.len();
        match self.pay_group(items) {
            Ok(results) => results,
            Err(e) => group_failed(n, &e),
        }
    }

    fn pay_group(
        &self,
        items: Vec<(&Payment, Result<VerifiedPayment, IssuerError>, u64)>,
    ) -> Result<Vec<Result<Confirmation, IssuerError>>, IssuerError> {
        let view = StoreView(&self.store);
        let mut ov = Overlay::new(&view);
        let mut g = Group::new();
        let rl = self.revocations()?;
        let root = self.root.public();
        let mut out: Vec<Result<Option<Confirmation>, IssuerError>> = Vec::new();
        let mut seen: HashSet<Id> = HashSet::new();
        let mut last_now = 0;
        let mut to_sign: Vec<(usize, &Payment, u64)> = Vec::new();
        for (payment, checked, now) in items {
            last_now = last_now.max(now);
            let pid = payment.id();
            if let Some(v) = self.store.get(&keys::with(keys::ONLINE, &pid.0))? {
                out.push(
                    Confirmation::decode(&v)
                        .map(Some)
                        .map_err(|e| IssuerError::Corrupt(format!("confirmation: {e}"))),
                );
                continue;
            }
            let verified = match checked {
                Ok(v) => v,
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            };
            if !seen.insert(pid) {
                out.push(Err(IssuerError::Refused(
                    "the same payment twice in one group".into(),
                )));
                continue;
            }
            // Revoked since the check (by the list or earlier in this group)? The payer and
            // every signer along the chains, as the check itself did.
            let payer = payment.payer();
            let revoked = |k: &PublicKey| rl.is_revoked(k) || g.revoke.contains_key(k.as_bytes());
            if let Some(k) = std::iter::once(&payer)
                .chain(verified.links.iter().map(|l| &l.signer))
                .find(|k| revoked(k))
            {
                out.push(Err(IssuerError::Verify(VerifyError::Revoked(k.address()))));
                continue;
            }
            let mut child = Overlay::new(&ov);
            let mut part = Group::new();
            let mut refused = None;
            for (coin, info) in payment.coins.iter().zip(&verified.coins) {
                let mut o = settle_chain(&mut child, coin, info, &root, &payer)?;
                o.sign_collection(&self.root);
                if let Some((cheater, proof)) = &o.double_spend {
                    // Refused, but the proof and the revocation are kept (no coin changes).
                    // The payee is refused, so nothing is lost through this transfer here; if
                    // an honest wallet holds it, its own sync counts the loss.
                    self.note_double_spend(&mut g, &Group::new(), *cheater, proof, None, now)?;
                }
                if o.result.status != CoinStatus::Accepted {
                    let why = match o.result.reason {
                        RejectReason::DoubleSpend => {
                            "a coin in it was already spent (double spend)".to_string()
                        }
                        RejectReason::None => "a coin in it was already settled".to_string(),
                        other => format!("a coin in it was rejected ({})", other.as_str()),
                    };
                    refused = Some(IssuerError::Verify(VerifyError::BadPayment(why)));
                    break;
                }
                part.totals.settled_transfers += o.settled_transfers as u64;
                for (id, expires_at) in &o.restricted {
                    part.batch
                        .put(earmark_key(id), expires_at.to_be_bytes().to_vec());
                }
                for id in &o.spent_restricted {
                    part.batch.delete(earmark_key(id));
                }
            }
            if let Some(e) = refused {
                out.push(Err(e));
                continue;
            }
            ov.absorb(child.into_changes());
            g.merge(part);
            out.push(Ok(None));
            to_sign.push((out.len() - 1, payment, now));
        }
        // The confirmations of the group, signed on every core once its rules have run (as a
        // sync group's responses are), and stored with it.
        use rayon::prelude::*;
        let root = &self.root;
        let signed: Vec<(usize, Confirmation)> = to_sign
            .into_par_iter()
            .map(|(i, payment, now)| (i, Confirmation::sign(root, payment, now)))
            .collect();
        for (i, conf) in signed {
            g.batch.put(
                keys::with(keys::ONLINE, &conf.payment_id.0),
                conf.to_bytes(),
            );
            if let Some(slot) = out.get_mut(i) {
                *slot = Ok(Some(conf));
            }
        }
        self.apply_revocations(&mut g, rl, last_now)?;
        self.commit_group(g, ov)?;
        Ok(out
            .into_iter()
            .map(|r| {
                r.and_then(|c| {
                    c.ok_or_else(|| IssuerError::Refused("internal: no confirmation".into()))
                })
            })
            .collect())
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

/// Whether a chain ends with its holder paying the coin to the issuer (a refresh or redemption).
fn comes_home(coin: &tongbao::protocol::coin::Coin, issuer: &PublicKey) -> bool {
    coin.hops.last().is_some_and(|h| {
        h.transfer
            .outputs
            .get(usize::from(h.index))
            .is_some_and(|o| o.holder == *issuer)
    })
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
