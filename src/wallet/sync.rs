//! `wallet sync`: bring offline money home. See docs/protocol.md#sync.
//!
//! [`Wallet::begin_sync`] signs a refresh transfer of every held coin to the issuer, gathers the
//! payments made since the last sync and the proofs caught, and commits the request as pending
//! before it leaves the wallet (so a crash or a lost answer is retried with the same sync id).
//! [`Wallet::apply_sync`] checks the issuer's signed response and applies it in one commit: fresh
//! notes, renewed certificate, and the newer of the held and the carried key set and revocation
//! list (a replayed response carries those of when it was settled).

use rand::{CryptoRng, Rng};

use super::records::{HistoryEntry, OutboxEntry};
use super::{Batch, Store, Wallet, WalletError, keys};
use crate::codec::Encode;
use crate::crypto::{Nonce, Signature};
use crate::money::Fen;
use crate::protocol::Context;
use crate::protocol::SignedBody;
use crate::protocol::note::Earmark;
use crate::protocol::sync::{CoinStatus, SyncRequest, SyncResponse};
use crate::protocol::transfer::{Output, Transfer};

/// What applying a sync response did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SyncApplied {
    /// Sync id (hex).
    pub sync_id: String,
    /// Chains newly settled.
    pub accepted: usize,
    /// Chains the issuer had already settled.
    pub already_settled: usize,
    /// Chains rejected, with reason.
    pub rejected: Vec<(String, String)>,
    /// Fresh notes received, in fen.
    pub fresh_fen: u64,
    /// Credits other wallets settled to this one, collected.
    pub collected: usize,
    /// Redeemed to the bank account, in fen.
    pub redeemed_fen: u64,
    /// New certificate expiry.
    pub certificate_expires_at: u64,
    /// Revocation list version now held.
    pub revocation_version: u64,
}

impl<S: Store> Wallet<S> {
    /// The sync request waiting for its response, if any.
    pub fn pending_sync(&self) -> Result<Option<SyncRequest>, WalletError> {
        self.load(keys::PENDING_SYNC, "pending sync")
    }

    /// The issuer URL recorded at `wallet init --issuer`.
    pub fn issuer_url(&self) -> Result<Option<String>, WalletError> {
        Ok(self
            .store()
            .get(keys::ISSUER_URL)?
            .and_then(|v| String::from_utf8(v).ok()))
    }

    /// Records the issuer URL.
    pub fn set_issuer_url(&self, url: &str) -> Result<(), WalletError> {
        let mut b = Batch::new();
        b.put(keys::ISSUER_URL, url.as_bytes().to_vec());
        self.store().commit(b)?;
        Ok(())
    }

    /// Builds, commits as pending and returns a sync request (or the pending one, to retry).
    pub fn begin_sync<R: Rng + CryptoRng + ?Sized>(
        &self,
        topup: Fen,
        redeem: Fen,
        now: u64,
        rng: &mut R,
    ) -> Result<SyncRequest, WalletError> {
        if let Some(p) = self.pending_sync()? {
            if p.topup != topup || p.redeem != redeem {
                return Err(WalletError::Refused(format!(
                    "sync {} is still pending (top-up {}, redeem {}): finish it first with `wallet sync`",
                    p.sync_id.short(),
                    p.topup,
                    p.redeem
                )));
            }
            return Ok(p);
        }
        self.require_certificate()?;
        let keyset = self.keyset()?;
        let issuer = keyset.root;
        let sync_id = Nonce::random(rng);
        let counter = self.counter()? + 1;
        let mut b = Batch::new();
        let mut coins = Vec::new();
        let mut held = Fen::ZERO;
        // Payments made since the last sync first, so each reports as settled by its own chain.
        for (k, v) in self.store().scan_prefix(keys::OUTBOX)? {
            let mut e = OutboxEntry::from_stored(&v)?;
            if e.reported_in.is_some() || e.settled_at.is_some() {
                continue;
            }
            let p = OutboxEntry::payment_from_stored(&v)?;
            coins.extend(p.coins.iter().cloned());
            e.reported_in = Some(sync_id.to_hex());
            b.put(k, e.to_stored()?);
        }
        // Cash-on-delivery payments a courier carries for merchants, not yet settled.
        coins.extend(self.carried_chains()?);
        let mut expired = Fen::ZERO;
        for coin in self.coins()? {
            let value = coin.value();
            // Red-envelope money past its window was clawed back by the issuer: it leaves the
            // wallet instead of going home (the issuer would refuse it).
            if let Earmark::MerchantsOnly { expires_at } = coin.note.earmark
                && now > expires_at
            {
                b.delete(keys::with(keys::COIN, &coin.id().0));
                b.put(keys::with(keys::SPENT, &coin.id().0), sync_id.0.to_vec());
                expired = expired
                    .checked_add(value)
                    .ok_or_else(|| WalletError::Corrupt("balance overflow".into()))?;
                continue;
            }
            held = held
                .checked_add(value)
                .ok_or_else(|| WalletError::Corrupt("balance overflow".into()))?;
            let t = Transfer::sign(
                self.secret(),
                coin.id(),
                vec![Output {
                    holder: issuer,
                    value,
                }],
                counter,
                now.max(coin.last_time()),
                sync_id,
            );
            b.delete(keys::with(keys::COIN, &coin.id().0));
            b.put(keys::with(keys::SPENT, &coin.id().0), sync_id.0.to_vec());
            b.put(keys::with(keys::SEEN, &coin.id().0), t.to_bytes());
            coins.push(coin.extended(t, 0));
        }
        if redeem > held.checked_add(topup).unwrap_or(held) {
            return Err(WalletError::InsufficientFunds {
                have: held,
                need: redeem,
            });
        }
        let req = SyncRequest {
            wallet: self.public(),
            sync_id,
            time: now,
            counter,
            topup,
            redeem,
            coins,
            proofs: self.proofs()?,
            signature: Signature([0; 64]),
        }
        .signed(self.secret());
        b.put(keys::COUNTER, counter.to_be_bytes().to_vec());
        b.put(keys::PENDING_SYNC, req.to_bytes());
        if expired > Fen::ZERO {
            self.push_history(
                &mut b,
                now,
                HistoryEntry {
                    amount_fen: Some(expired.0),
                    ..HistoryEntry::note(
                        "expired",
                        format!(
                            "{expired} of red-envelope money expired: clawed back by the issuer"
                        ),
                    )
                },
            )?;
        }
        self.push_history(
            &mut b,
            now,
            HistoryEntry {
                amount_fen: Some(held.0),
                ..HistoryEntry::note(
                    "sync-sent",
                    format!(
                        "sync {} sent: {} coin chain(s) to settle",
                        sync_id.short(),
                        req.coins.len()
                    ),
                )
            },
        )?;
        crate::failpoint::hit("sync-before-commit");
        self.store().commit(b)?;
        Ok(req)
    }

    /// Checks and applies the issuer's response to the pending sync, in one commit.
    pub fn apply_sync(&self, resp: &SyncResponse, now: u64) -> Result<SyncApplied, WalletError> {
        let pending = self.pending_sync()?.ok_or_else(|| {
            WalletError::Replay(format!(
                "no sync is pending (response {} was already applied?)",
                resp.sync_id.short()
            ))
        })?;
        if resp.wallet != self.public() {
            return Err(WalletError::NotForThisWallet(
                "sync response is for another wallet".into(),
            ));
        }
        if resp.sync_id != pending.sync_id || resp.request != pending.id() {
            return Err(WalletError::Refused(format!(
                "sync response {} does not answer the pending sync {}",
                resp.sync_id.short(),
                pending.sync_id.short()
            )));
        }
        let held = self.keyset()?;
        resp.verify(&held)?;
        let ctx = Context {
            keys: &resp.keyset,
            now,
            revoked: None,
        };
        for n in &resp.notes {
            if n.holder != self.public() {
                return Err(WalletError::Refused(
                    "sync response carries notes for another wallet".into(),
                ));
            }
            // A restricted note whose window closed since the sync was settled is checked as of
            // its expiry; it is kept as an expired coin and leaves at the next sync.
            match n.earmark {
                Earmark::MerchantsOnly { expires_at } if now > expires_at => {
                    n.verify(&Context {
                        now: expires_at,
                        ..ctx
                    })?
                }
                _ => n.verify(&ctx)?,
            }
        }
        let cert = &resp.certificate;
        if cert.wallet != self.public() || cert.counter_base != pending.counter {
            return Err(WalletError::Refused(
                "sync response certificate does not match this wallet".into(),
            ));
        }
        cert.verify_at(
            &Context {
                keys: &resp.keyset,
                now,
                revoked: None,
            },
            cert.issued_at,
        )?;
        let mut b = Batch::new();
        let mut fresh = Fen::ZERO;
        for n in &resp.notes {
            fresh = fresh
                .checked_add(n.value)
                .ok_or_else(|| WalletError::Refused("overflow".into()))?;
            b.put(
                keys::with(keys::COIN, &n.id().0),
                crate::protocol::coin::Coin::from_note(n.clone()).to_bytes(),
            );
        }
        for c in &resp.collected {
            // Collected for us at the issuer: if we hold it (received while this sync was pending,
            // its payer having settled first), it is replaced by the fresh notes, which hold its
            // value; kept, it would count twice, and spending it would be a collected-then-spent
            // double spend (docs/adr/0005). If it arrives later, it is refused as already known.
            b.delete(keys::with(keys::COIN, &c.0));
            b.put(keys::with(keys::SPENT, &c.0), resp.sync_id.0.to_vec());
        }
        let sync_hex = resp.sync_id.to_hex();
        for (k, v) in self.store().scan_prefix(keys::OUTBOX)? {
            let mut e = OutboxEntry::from_stored(&v)?;
            if e.reported_in.as_deref() == Some(sync_hex.as_str()) && e.settled_at.is_none() {
                e.settle(resp.time);
                b.put(k, e.to_stored()?);
            }
        }
        b.put(keys::CERT, cert.to_bytes());
        b.put(keys::OFFLINE_SPENT, 0u64.to_be_bytes().to_vec());
        // A replayed response may carry the key set of when it was settled, older than the one
        // held since (a rotation learnt meanwhile): keep the newer, as for the revocation list.
        if resp.keyset.set_version >= held.set_version {
            b.put(keys::KEYSET, resp.keyset.to_bytes());
        }
        let newer_rl = match self.revocations()? {
            Some(h) => resp.revocations.list_version > h.list_version,
            None => true,
        };
        if newer_rl {
            b.put(keys::REVOCATIONS, resp.revocations.to_bytes());
        }
        b.put(keys::LAST_SYNC, resp.to_bytes());
        self.record_settlement(&pending, resp, &mut b)?;
        b.delete(keys::PENDING_SYNC);
        let mut applied = SyncApplied {
            sync_id: sync_hex,
            accepted: 0,
            already_settled: 0,
            rejected: Vec::new(),
            fresh_fen: fresh.0,
            collected: resp.collected.len(),
            redeemed_fen: resp.redeemed.0,
            certificate_expires_at: cert.expires_at,
            revocation_version: resp.revocations.list_version,
        };
        for r in &resp.results {
            match r.status {
                CoinStatus::Accepted => applied.accepted += 1,
                CoinStatus::AlreadySettled => applied.already_settled += 1,
                CoinStatus::Rejected => {
                    applied
                        .rejected
                        .push((r.coin.to_hex(), r.reason.as_str().to_string()));
                    self.push_history(
                        &mut b,
                        now,
                        HistoryEntry {
                            amount_fen: Some(r.value.0),
                            ..HistoryEntry::note(
                                "rejected",
                                format!(
                                    "coin {} rejected at settlement: {}{}",
                                    r.coin.short(),
                                    r.reason.as_str(),
                                    r.proof
                                        .as_ref()
                                        .map(|p| format!(
                                            " (proof {} against {}: {})",
                                            p.id().short(),
                                            p.signer().short(),
                                            p.what()
                                        ))
                                        .unwrap_or_default()
                                ),
                            )
                        },
                    )?;
                }
            }
        }
        self.push_history(
            &mut b,
            now,
            HistoryEntry {
                amount_fen: Some(fresh.0),
                ..HistoryEntry::note(
                    "synced",
                    format!(
                        "sync {}: {} settled, {} already settled, {} rejected; fresh notes {fresh}, {} credit(s) collected, {} to bank",
                        resp.sync_id.short(),
                        applied.accepted,
                        applied.already_settled,
                        applied.rejected.len(),
                        applied.collected,
                        resp.redeemed
                    ),
                )
            },
        )?;
        crate::failpoint::hit("sync-apply-before-commit");
        self.store().commit(b)?;
        Ok(applied)
    }

    /// Drops the pending sync after the issuer definitively refused it (a refused request changes
    /// nothing at the issuer): the held coins come back without their refresh transfers, and the
    /// payments it carried will be reported at the next sync. Returns the value restored.
    ///
    /// Never call this for a request the issuer may have settled (an answer lost on the way): its
    /// coins are then redeemed at the issuer, and spending them again is a double spend.
    pub fn abandon_sync(&self, why: &str, now: u64) -> Result<Fen, WalletError> {
        let pending = self
            .pending_sync()?
            .ok_or_else(|| WalletError::Refused("no sync is pending".into()))?;
        let root = self.keyset()?.root;
        let me = self.public();
        let mut b = Batch::new();
        let mut restored = Fen::ZERO;
        for chain in &pending.coins {
            let Some(last) = chain.hops.last() else {
                continue;
            };
            let refresh =
                last.transfer.outputs.len() == 1 && last.transfer.outputs[0].holder == root;
            let mine = chain
                .hops
                .len()
                .checked_sub(2)
                .map_or(chain.note.holder, |i| {
                    let h = &chain.hops[i];
                    h.transfer
                        .outputs
                        .get(usize::from(h.index))
                        .map(|o| o.holder)
                        .unwrap_or(chain.note.holder)
                })
                == me;
            if !(refresh && mine) {
                continue;
            }
            let coin = crate::protocol::coin::Coin {
                note: chain.note.clone(),
                hops: chain.hops[..chain.hops.len() - 1].to_vec(),
            };
            let id = coin.id();
            restored = restored
                .checked_add(coin.value())
                .ok_or_else(|| WalletError::Corrupt("overflow".into()))?;
            b.put(keys::with(keys::COIN, &id.0), coin.to_bytes());
            b.delete(keys::with(keys::SPENT, &id.0));
            b.delete(keys::with(keys::SEEN, &id.0));
        }
        let sync_hex = pending.sync_id.to_hex();
        for (k, v) in self.store().scan_prefix(keys::OUTBOX)? {
            let mut e = OutboxEntry::from_stored(&v)?;
            if e.reported_in.as_deref() == Some(sync_hex.as_str()) {
                e.reported_in = None;
                b.put(k, e.to_stored()?);
            }
        }
        b.delete(keys::PENDING_SYNC);
        self.push_history(
            &mut b,
            now,
            HistoryEntry {
                amount_fen: Some(restored.0),
                ..HistoryEntry::note(
                    "sync-dropped",
                    format!(
                        "sync {} abandoned: {why}; {restored} back in the wallet",
                        pending.sync_id.short()
                    ),
                )
            },
        )?;
        self.store().commit(b)?;
        Ok(restored)
    }

    /// The last sync response applied.
    pub fn last_sync(&self) -> Result<Option<SyncResponse>, WalletError> {
        self.load(keys::LAST_SYNC, "last sync")
    }

    /// Records the issuer's confirmation of an online payment: settled, final.
    pub fn confirm_online(
        &self,
        conf: &crate::protocol::sync::Confirmation,
        now: u64,
    ) -> Result<(), WalletError> {
        let key = keys::with(keys::OUTBOX, &conf.payment_id.0);
        let v = self
            .store()
            .get(&key)?
            .ok_or_else(|| WalletError::NotFound(format!("payment {}", conf.payment_id.short())))?;
        // The record's summary is enough to match (it is kept under the payment's id): the
        // payment's bytes are neither decoded nor kept.
        let (mut e, _) = OutboxEntry::parse(&v)?;
        if e.settled_at.is_some() {
            return Err(WalletError::Replay(format!(
                "payment {} is already settled",
                conf.payment_id.short()
            )));
        }
        conf.verify_for(
            &*self.keyset_shared()?,
            &conf.payment_id,
            &self.public(),
            &e.payee,
            Fen(e.amount_fen),
        )?;
        e.settle(conf.settled_at);
        let mut b = Batch::new();
        b.put(key, e.to_stored()?);
        self.push_history(
            &mut b,
            now,
            HistoryEntry {
                payment_id: Some(conf.payment_id.to_hex()),
                amount_fen: Some(conf.amount.0),
                ..HistoryEntry::note(
                    "settled",
                    format!(
                        "online payment {} settled at the issuer",
                        conf.payment_id.short()
                    ),
                )
            },
        )?;
        self.store().commit(b)?;
        Ok(())
    }
}
