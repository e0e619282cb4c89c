//! Syncing: the evening rounds, the closing round at the end of the window, the clawback, and the
//! reconciliation of every wallet against the ledger.
//!
//! A round is what `issuer serve` does with a burst of syncs: wallets build their requests (each on
//! its own, both cores), the issuer checks signatures without the lock (both cores), then settles
//! them in groups in a fixed order, one commit per group, and the wallets apply the responses.

use std::collections::HashMap;

use rayon::prelude::*;
use tongbao::codec::Decode;
use tongbao::protocol::SignedBody;
use tongbao::protocol::note::Earmark;
use tongbao::protocol::sync::{CoinStatus, RejectReason, SyncRequest, SyncResponse};
use tongbao::settlement::CoinState;
use tongbao::store::Store;
use tongbao::{Fen, Id};

use super::engine::{Status, W, Who, World, rng_for, stream};
use crate::IssuerError;
use crate::ledger::keys;

/// Requests settled per group commit.
const GROUP: usize = 128;

/// Requests per slice of a sync round's pipeline (check, settle, apply).
const SYNC_SLICE: usize = 1024;

/// What the closing checks found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Closing {
    /// Wallets checked against the ledger.
    pub wallets_checked: u64,
    /// Value the (not revoked) wallets hold, spendable after the close, fen.
    pub wallets_fen: u64,
    /// Wallets whose holdings differ from what the ledger says they hold.
    pub mismatched_wallets: u64,
    /// Live coins held at the ledger by revoked cheaters (frozen), fen.
    pub frozen_fen: u64,
    /// Clawed back at the end of the window, fen.
    pub clawed_back_fen: u64,
    /// Coins clawed back.
    pub clawed_back_coins: u64,
}

impl World {
    /// The evening of day `d`: stores and couriers that took offline payments, stores whose turn
    /// it is, the online shops, and people who received transfers, sync. Returns syncs settled.
    pub(crate) fn evening(&mut self, d: u32, t: u64) -> anyhow::Result<u64> {
        let every_store = self.sc.spec.connectivity.store_sync_every_days;
        let every_person = self.sc.spec.connectivity.person_sync_every_days;
        let online: Vec<u32> = self.layout.online.iter().map(|(i, _)| *i).collect();
        let mut who = Vec::new();
        for (i, &(tonight, pending)) in self.shop_dirty.iter().enumerate() {
            let i = i as u32;
            let turn = pending && (i + d).is_multiple_of(every_store);
            if tonight || turn || online.contains(&i) {
                who.push(Who::Shop(i));
            }
        }
        for (i, &dirty) in self.pool_dirty.iter().enumerate() {
            if dirty && (i as u32 + d).is_multiple_of(every_person) {
                who.push(Who::Pool(i as u32));
            }
        }
        let list = self.with_redeem(who);
        self.sync_round(list, t)
    }

    /// The close, just before the end of the window (restricted money is still valid): people
    /// whose payments were refused (their coins wait in the outbox) and people who received
    /// transfers sync; then every shop does, collecting what those syncs settled to it.
    pub(crate) fn close(&mut self, t: u64) -> anyhow::Result<u64> {
        let mut who: Vec<Who> = Vec::new();
        for (i, s) in self.state.iter().enumerate() {
            if s.stranded && !s.cheated {
                who.push(Who::Person(i as u32));
            }
        }
        for (i, &dirty) in self.pool_dirty.iter().enumerate() {
            if dirty {
                who.push(Who::Pool(i as u32));
            }
        }
        let list = self.with_redeem(who);
        let mut n = self.sync_round(list, t - 120)?;
        let shops: Vec<Who> = (0..self.shops.len() as u32).map(Who::Shop).collect();
        let list = self.with_redeem(shops);
        n += self.sync_round(list, t)?;
        Ok(n)
    }

    /// Shops cash out the settled money they hold (fresh notes from earlier syncs); people redeem
    /// nothing.
    fn with_redeem(&self, who: Vec<Who>) -> Vec<(Who, Fen, Fen)> {
        who.into_iter()
            .map(|w| {
                let redeem = match (w, self.wallet(w)) {
                    (Who::Shop(_), Some(wallet)) => settled_held(wallet),
                    _ => Fen::ZERO,
                };
                (w, Fen::ZERO, redeem)
            })
            .collect()
    }

    /// Syncs `list` (wallet, top-up, redemption) at `now`. Returns how many settled.
    pub(crate) fn sync_round(
        &mut self,
        list: Vec<(Who, Fen, Fen)>,
        now: u64,
    ) -> anyhow::Result<u64> {
        let list: Vec<(Who, Fen, Fen)> = list
            .into_iter()
            .filter(|(w, _, _)| match w {
                Who::Person(i) => !self.state[*i as usize].revoked,
                _ => true,
            })
            .collect();
        if list.is_empty() {
            return Ok(0);
        }
        let seed = self.seed;
        let world = &*self;
        let reqs: Vec<(Who, SyncRequest)> = super::timing::time("sync: begin", || {
            list.par_iter()
                .map(
                    |&(w, topup, redeem)| -> anyhow::Result<Option<(Who, SyncRequest)>> {
                        let Some(wallet) = world.wallet(w) else {
                            return Ok(None);
                        };
                        let key = match w {
                            Who::Person(i) => u64::from(i),
                            Who::Pool(i) => (1 << 40) | u64::from(i),
                            Who::Shop(i) => (2 << 40) | u64::from(i),
                        };
                        let mut rng = rng_for(seed, stream::SYNC, key, now);
                        Ok(Some((w, wallet.begin_sync(topup, redeem, now, &mut rng)?)))
                    },
                )
                .collect::<anyhow::Result<Vec<_>>>()
        })?
        .into_iter()
        .flatten()
        .collect();
        // In slices, as a pipeline: while the ledger's one writer settles slice k (in groups of
        // `GROUP`, one commit each), the other core checks slice k + 1 and the wallets of slice
        // k - 1 apply their responses. Slices hold different wallets, and the ledger settles
        // them in the same order as one after the other.
        let iss = &self.iss;
        let world = &*self;
        let check = |slice: &[(Who, SyncRequest)]| {
            super::timing::time("sync: check", || {
                super::prewarm::sync_requests(slice.iter().map(|(_, r)| r));
                slice
                    .par_iter()
                    .map(|(_, r)| iss.precheck(r, now))
                    .collect::<Vec<_>>()
            })
        };
        let settle = |slice: &[(Who, SyncRequest)], checked: Vec<_>| {
            super::timing::time("sync: settle", || {
                let just: Vec<SyncRequest> = slice.iter().map(|(_, r)| r.clone()).collect();
                let mut out = Vec::with_capacity(just.len());
                let mut checked = checked.into_iter();
                for chunk in just.chunks(GROUP) {
                    let part: Vec<_> = checked.by_ref().take(chunk.len()).collect();
                    out.extend(iss.sync_prechecked(chunk, part, now));
                }
                out
            })
        };
        let apply = |slice: &[(Who, SyncRequest)],
                     responses: &[Result<SyncResponse, IssuerError>]| {
            super::timing::time("sync: apply", || {
                super::prewarm::sync_responses(
                    iss.root(),
                    responses.iter().filter_map(|r| r.as_ref().ok()),
                );
                slice
                    .par_iter()
                    .zip(responses.par_iter())
                    .map(|((w, _), resp)| -> anyhow::Result<bool> {
                        let wallet = world
                            .wallet(*w)
                            .ok_or_else(|| anyhow::anyhow!("internal: no wallet"))?;
                        match resp {
                            Ok(resp) => {
                                wallet.apply_sync(resp, now)?;
                                Ok(true)
                            }
                            Err(e) => {
                                wallet.abandon_sync(&e.to_string(), now)?;
                                Ok(false)
                            }
                        }
                    })
                    .collect::<Vec<_>>()
            })
        };
        let slices: Vec<&[(Who, SyncRequest)]> = reqs.chunks(SYNC_SLICE).collect();
        let mut responses: Vec<Result<SyncResponse, IssuerError>> = Vec::with_capacity(reqs.len());
        let mut applied: Vec<anyhow::Result<bool>> = Vec::with_capacity(reqs.len());
        let mut checked: Option<(usize, Vec<_>)> = None;
        let mut to_apply: Option<(usize, Vec<Result<SyncResponse, IssuerError>>)> = None;
        for i in 0..slices.len() + 2 {
            let settling = checked.take();
            let applying = to_apply.take();
            let (settled, (done, next)) = rayon::join(
                || settling.map(|(k, c)| (k, settle(slices[k], c))),
                || {
                    rayon::join(
                        || applying.map(|(k, r)| (apply(slices[k], &r), r)),
                        || slices.get(i).map(|s| (i, check(s))),
                    )
                },
            );
            if let Some((a, r)) = done {
                applied.extend(a);
                responses.extend(r);
            }
            to_apply = settled;
            checked = next;
        }
        let mut settled = 0;
        for (((w, req), resp), ok) in reqs.iter().zip(&responses).zip(applied) {
            if !ok? {
                self.syncs_refused += 1;
                if let (Who::Person(i), Err(IssuerError::Revoked(_))) = (w, resp) {
                    self.state[*i as usize].revoked = true;
                }
                let why = resp
                    .as_ref()
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                let why: String = why.chars().take(60).collect();
                *self.refusals.entry(format!("sync: {why}")).or_default() += 1;
                continue;
            }
            settled += 1;
            if let Ok(resp) = resp {
                self.account(req, &resp.results, now);
            }
            match *w {
                Who::Shop(i) => self.shop_dirty[i as usize] = (false, false),
                Who::Pool(i) => self.pool_dirty[i as usize] = false,
                Who::Person(_) => {}
            }
        }
        Ok(settled)
    }

    /// Books what a sync settled against the payments its chains carry.
    fn account(
        &mut self,
        req: &SyncRequest,
        results: &[tongbao::protocol::sync::CoinResult],
        now: u64,
    ) {
        let root = self.iss.root();
        for (chain, r) in req.coins.iter().zip(results) {
            let n = chain.hops.len();
            // A refresh ends in a transfer to the issuer: the received coin is the one before it.
            let refresh = chain
                .hops
                .last()
                .is_some_and(|h| h.transfer.outputs.iter().any(|o| o.holder == root));
            let id: Id = if !refresh {
                chain.id()
            } else if n >= 2 {
                let h = &chain.hops[n - 2];
                h.transfer.output_coin_id(h.index)
            } else {
                chain.note.id()
            };
            let Some(&rec) = self.coin_pay.get(&id) else {
                continue;
            };
            let p = &mut self.pays[rec as usize];
            match (r.status, r.reason) {
                (CoinStatus::Accepted | CoinStatus::AlreadySettled, _) => {
                    p.coins_left = p.coins_left.saturating_sub(1);
                    if p.coins_left == 0 && p.status == Status::Accepted {
                        p.status = Status::Settled;
                        p.settled_at = now;
                        self.exposure = self.exposure.saturating_sub(p.amount);
                    }
                }
                (CoinStatus::Rejected, RejectReason::DoubleSpend) => {
                    p.lost_fen += r.value.0;
                    if p.status == Status::Accepted {
                        p.status = Status::Lost;
                        self.exposure = self.exposure.saturating_sub(p.amount);
                    }
                }
                (CoinStatus::Rejected, _) => {
                    *self
                        .refusals
                        .entry(format!("settlement: {}", r.reason.as_str()))
                        .or_default() += 1;
                }
            }
            self.coin_pay.remove(&id);
        }
    }

    /// After the close: claw back, then check every wallet against the ledger.
    pub(crate) fn reconcile(&mut self, t: u64) -> anyhow::Result<Closing> {
        // No checkpoint here: the audit that follows reads the day's table and sled alike, and
        // a write starting now would only compete with it.
        let claw = super::timing::time("close: clawback", || self.iss.claw_back(t))?;
        let mut all: Vec<(Who, bool)> = Vec::new();
        for (i, w) in self.persons.iter().enumerate() {
            if w.is_some() {
                all.push((Who::Person(i as u32), self.state[i].revoked));
            }
        }
        all.extend((0..self.pool.len() as u32).map(|i| (Who::Pool(i), false)));
        all.extend((0..self.shops.len() as u32).map(|i| (Who::Shop(i), false)));
        let world = &*self;
        let holdings = super::timing::time("close: ledger holdings", || ledger_holdings(world))?;
        let rows: Vec<(u64, u64, bool, bool)> = super::timing::time("close: wallets", || {
            all.par_iter()
                .map(|&(w, revoked)| -> anyhow::Result<(u64, u64, bool, bool)> {
                    let wallet = world
                        .wallet(w)
                        .ok_or_else(|| anyhow::anyhow!("internal: no wallet"))?;
                    let held = spendable(wallet, t);
                    // Every wallet is read here: each goes back to rest at once.
                    wallet.store().rest();
                    let ledger = holdings
                        .get(wallet.public().as_bytes())
                        .copied()
                        .unwrap_or(0);
                    // A cheater rolled back is revoked: the ledger's view of it is what counts.
                    let cheater =
                        revoked || matches!(w, Who::Person(i) if world.state[i as usize].cheated);
                    Ok((held, ledger, revoked, cheater))
                })
                .collect::<anyhow::Result<_>>()
        })?;
        let mut c = Closing {
            clawed_back_fen: claw.value_fen,
            clawed_back_coins: claw.coins,
            ..Closing::default()
        };
        for (held, ledger, _revoked, cheater) in rows {
            if cheater {
                c.frozen_fen += ledger;
                continue;
            }
            c.wallets_checked += 1;
            c.wallets_fen += held;
            if held != ledger {
                c.mismatched_wallets += 1;
            }
        }
        Ok(c)
    }
}

/// Value of a wallet's coins that are notes issued to it (settled money, which a shop cashes out).
fn settled_held(w: &W) -> Fen {
    let me = w.public();
    Fen(w
        .coins()
        .unwrap_or_default()
        .iter()
        .filter(|c| c.hops.is_empty() && c.note.holder == me && c.note.earmark == Earmark::None)
        .map(|c| c.value().0)
        .sum())
}

/// Value a wallet can still spend at `now` (expired red-envelope money excluded).
fn spendable(w: &W, now: u64) -> u64 {
    w.coins()
        .unwrap_or_default()
        .iter()
        .filter(|c| match c.note.earmark {
            Earmark::MerchantsOnly { expires_at } => now <= expires_at,
            Earmark::None => true,
        })
        .map(|c| c.value().0)
        .sum()
}

/// What the ledger says each wallet holds: its live coins, from one pass over the holder index
/// (holder key, then coin id), their states read on every core in coin order: a city's coins are
/// millions, far more than sled keeps in memory, and reads in key order load each of its pages
/// once where reads in holder order load one for nearly every coin.
fn ledger_holdings(world: &World) -> anyhow::Result<HashMap<[u8; 32], u64>> {
    let store = &world.iss.store;
    let mut index: Vec<([u8; 32], [u8; 32])> = store
        .scan_prefix(keys::HOLDER)?
        .into_iter()
        .filter_map(|(k, _)| {
            let rest = k.get(keys::HOLDER.len()..).filter(|r| r.len() == 64)?;
            let (holder, id) = rest.split_at(32);
            Some((
                <[u8; 32]>::try_from(id).ok()?,
                <[u8; 32]>::try_from(holder).ok()?,
            ))
        })
        .collect();
    index.sort_unstable();
    let live: Vec<Option<([u8; 32], u64)>> = index
        .par_iter()
        .with_min_len(4096)
        .map(|(id, holder)| -> anyhow::Result<Option<([u8; 32], u64)>> {
            Ok(match store.get(&keys::with(keys::COIN, id))? {
                Some(v) => match CoinState::decode(&v) {
                    Ok(CoinState::Live { value, .. }) => Some((*holder, value.0)),
                    _ => None,
                },
                None => None,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let mut out: HashMap<[u8; 32], u64> = HashMap::new();
    for (holder, value) in live.into_iter().flatten() {
        *out.entry(holder).or_default() += value;
    }
    Ok(out)
}
