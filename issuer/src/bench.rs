//! `issuer bench settle`: a load generator for settlement. Many wallets pay offline, then all sync
//! at once; the issuer checks signatures on every core and settles in groups, one durable commit
//! per group. Reports settled transfers per second, per-group latency, and the ratio to the
//! signature-verification baseline measured on the same machine in the same run.
//!
//! Timing uses floating-point seconds; no money is involved.

use std::path::Path;
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;
use tongbao::protocol::certificate::{WalletClass, WalletKind};
use tongbao::protocol::file::TbFile;
use tongbao::protocol::note::Earmark;
use tongbao::protocol::sync::SyncRequest;
use tongbao::store::{MemStore, Store};
use tongbao::wallet::{PayTarget, Wallet};
use tongbao::{Fen, SecretKey};

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use tongbao::client::IssuerClient;

use crate::Issuer;
use crate::ledger::DEFAULT_CERT_SECS;

/// Load parameters.
#[derive(Debug, Clone, Copy)]
pub struct SettleLoad {
    /// Paying wallets.
    pub wallets: usize,
    /// Offline payments each wallet makes before syncing.
    pub payments: usize,
    /// Most requests settled in one group commit.
    pub group: usize,
    /// Threads checking signatures.
    pub threads: usize,
    /// Seed for every key and id.
    pub seed: u64,
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct SettleReport {
    /// Wallets that synced.
    pub wallets: usize,
    /// Payments made offline.
    pub payments: usize,
    /// Transfers the ledger newly settled (payments and refreshes).
    pub transfers: u64,
    /// Signatures checked while settling.
    pub signatures: u64,
    /// Wall time of settlement (checks and commits), seconds.
    pub seconds: f64,
    /// In-process runs: how long the single writer was busy settling and committing, seconds
    /// (signature and chain checks run on the other threads meanwhile); 0 over HTTP.
    pub settling_seconds: f64,
    /// Settled transfers per second.
    pub transfers_per_sec: f64,
    /// Median latency, milliseconds: of one group in-process (check + settle + durable commit),
    /// of one sync request over HTTP.
    pub group_p50_ms: f64,
    /// 99th percentile of the same, milliseconds.
    pub group_p99_ms: f64,
    /// Baseline: verify_strict signatures per second on one core.
    pub verify_strict_per_core: f64,
    /// Baseline: batch verification signatures per second on one core (64 per batch).
    pub verify_batch_per_core: f64,
    /// What the two-core batch baseline allows, in transfers per second, for the same signatures.
    pub baseline_transfers_per_sec: f64,
    /// transfers_per_sec / baseline_transfers_per_sec.
    pub baseline_ratio: f64,
}

/// Builds the load (not timed): wallets pay shops offline, then each prepares its sync request.
pub fn prepare<S: Store>(
    iss: &Issuer<S>,
    load: SettleLoad,
    now: u64,
) -> anyhow::Result<Vec<SyncRequest>> {
    let mut rng = StdRng::seed_from_u64(load.seed ^ 0x155);
    build_load(
        iss.keyset()?,
        load,
        now,
        |reg| Ok(iss.certify(reg, WalletClass::I, DEFAULT_CERT_SECS, now)?),
        |to| Ok(iss.issue(to, Fen(10_000), Earmark::None, now, &mut rng)?),
    )
}

/// The load itself, whoever certifies and issues (the ledger in-process, or the service).
fn build_load(
    keyset: tongbao::protocol::keyset::IssuerKeySet,
    load: SettleLoad,
    now: u64,
    mut certify: impl FnMut(
        &tongbao::protocol::certificate::Registration,
    ) -> anyhow::Result<tongbao::protocol::certificate::Certificate>,
    mut issue: impl FnMut(&tongbao::PublicKey) -> anyhow::Result<tongbao::protocol::file::NoteBundle>,
) -> anyhow::Result<Vec<SyncRequest>> {
    let mut rng = StdRng::seed_from_u64(load.seed);
    let mut new_wallet = |kind, rng: &mut StdRng| -> anyhow::Result<Wallet<MemStore>> {
        let (w, reg) = Wallet::create(MemStore::new(), kind, None, keyset.clone(), now, rng)?;
        w.import(TbFile::Certificate(certify(&reg)?), now)?;
        Ok(w)
    };
    let mut shops = Vec::new();
    for _ in 0..8 {
        shops.push(new_wallet(WalletKind::Merchant, &mut rng)?.public());
    }
    let mut reqs = Vec::with_capacity(load.wallets);
    for i in 0..load.wallets {
        let w = new_wallet(WalletKind::Personal, &mut rng)?;
        for _ in 0..load.payments.div_ceil(8).max(1) {
            w.import(TbFile::Notes(issue(&w.public())?), now)?;
        }
        for j in 0..load.payments {
            let to = shops[(i + j) % shops.len()];
            w.pay(
                PayTarget::Direct {
                    to,
                    amount: Fen(100 + j as u64),
                },
                now,
                &mut rng,
            )?;
        }
        reqs.push(w.begin_sync(Fen::ZERO, Fen::ZERO, now, &mut rng)?);
    }
    Ok(reqs)
}

/// Settles `reqs` the way `issuer serve` does: `threads` threads check signatures and chains
/// (`Issuer::precheck`, no lock) group after group, while one writer settles each checked group
/// of up to `group` requests with one durable commit, so checking overlaps settling. Returns
/// (wall seconds, per-group latencies in ms from the start of its checks to its durable commit,
/// seconds the writer spent settling).
pub fn settle<S: Store + Sync>(
    iss: &Issuer<S>,
    reqs: &[SyncRequest],
    group: usize,
    threads: usize,
    now: u64,
) -> (f64, Vec<f64>, f64) {
    let start = Instant::now();
    let chunks: Vec<&[SyncRequest]> = reqs.chunks(group.max(1)).collect();
    let next = AtomicUsize::new(0);
    let mut latencies = Vec::with_capacity(chunks.len());
    let mut settling = 0.0;
    std::thread::scope(|s| {
        // A small queue: checkers run at most a couple of groups ahead of the writer.
        let (tx, rx) = std::sync::mpsc::sync_channel(threads.max(1));
        for _ in 0..threads.max(1) {
            let tx = tx.clone();
            let (chunks, next) = (&chunks, &next);
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(chunk) = chunks.get(i) else { break };
                    let t = Instant::now();
                    let checked: Vec<_> = chunk.iter().map(|r| iss.precheck(r, now)).collect();
                    if tx.send((i, t, checked)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (i, t, checked) in rx {
            let w = Instant::now();
            let out = iss.sync_prechecked(chunks[i], checked, now);
            debug_assert!(out.iter().all(|r| r.is_ok()));
            settling += w.elapsed().as_secs_f64();
            latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    });
    (start.elapsed().as_secs_f64(), latencies, settling)
}

/// The baseline's 64 messages, their signatures and the 64 keys that signed them.
pub fn baseline_signatures() -> (
    Vec<Vec<u8>>,
    Vec<tongbao::Signature>,
    Vec<tongbao::PublicKey>,
) {
    let keys: Vec<SecretKey> = (0..64u8)
        .map(|i| SecretKey::from_seed(&[i.wrapping_add(1); 32]))
        .collect();
    let msgs: Vec<Vec<u8>> = (0..64u32)
        .map(|i| format!("tongbao baseline {i}").into_bytes())
        .collect();
    let sigs = keys.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
    let pubs = keys.iter().map(|k| k.public()).collect();
    (msgs, sigs, pubs)
}

/// Signatures per second for `verify_strict` and for 64-signature batches, on one core.
pub fn verify_baseline() -> (f64, f64) {
    let (msgs, sigs, pubs) = baseline_signatures();
    let rounds = 30;
    let t = Instant::now();
    for _ in 0..rounds {
        for ((p, m), s) in pubs.iter().zip(&msgs).zip(&sigs) {
            let _ = p.verify_uncached(m, s, "baseline");
        }
    }
    let strict = (rounds * 64) as f64 / t.elapsed().as_secs_f64();
    let m: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
    let s: Vec<_> = sigs.iter().map(|s| s.dalek()).collect();
    let p: Vec<_> = pubs.iter().map(|p| *p.dalek()).collect();
    let t = Instant::now();
    for _ in 0..rounds {
        let _ = ed25519_dalek::verify_batch(&m, &s, &p);
    }
    let batch = (rounds * 64) as f64 / t.elapsed().as_secs_f64();
    (strict, batch)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The whole in-process run on a fresh sled ledger in `home`.
pub fn run_in_process(home: &Path, load: SettleLoad, now: u64) -> anyhow::Result<SettleReport> {
    let mut rng = StdRng::seed_from_u64(load.seed ^ 0x5eed);
    let iss = Issuer::init_dir(home, now, &mut rng)?;
    let reqs = prepare(&iss, load, now)?;
    let before = iss.stats()?.settled_transfers;
    let signatures: u64 = reqs
        .iter()
        .map(|r| 1 + r.coins.iter().map(|c| 1 + c.hops.len() as u64).sum::<u64>())
        .sum();
    let (seconds, mut lat, settling) = settle(&iss, &reqs, load.group, load.threads, now);
    let transfers = iss.stats()?.settled_transfers - before;
    let audit = iss.audit()?;
    if !audit.ok {
        anyhow::bail!("audit failed after the bench: {:?}", audit.problems);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let (strict, batch) = verify_baseline();
    let tps = transfers as f64 / seconds;
    let baseline = 2.0 * batch * transfers as f64 / signatures.max(1) as f64;
    Ok(SettleReport {
        wallets: load.wallets,
        payments: load.wallets * load.payments,
        transfers,
        signatures,
        seconds,
        settling_seconds: settling,
        transfers_per_sec: tps,
        group_p50_ms: percentile(&lat, 0.5),
        group_p99_ms: percentile(&lat, 0.99),
        verify_strict_per_core: strict,
        verify_batch_per_core: batch,
        baseline_transfers_per_sec: baseline,
        baseline_ratio: tps / baseline,
    })
}

/// The same load over HTTP against a running `issuer serve` at `url` (operator `token` to certify
/// and issue). Wallets are prepared first (not timed); then `concurrency` clients send every sync
/// at once. Latencies are per sync request.
pub fn run_http(
    url: &str,
    token: &str,
    load: SettleLoad,
    concurrency: usize,
    now: u64,
) -> anyhow::Result<SettleReport> {
    let client = IssuerClient::new(url)?.with_token(token);
    let reqs = build_load(
        client.keys()?,
        load,
        now,
        |reg| Ok(client.certify(reg, WalletClass::I, None)?),
        |to| Ok(client.issue(to, Fen(10_000))?.notes),
    )?;
    let signatures: u64 = reqs
        .iter()
        .map(|r| 1 + r.coins.iter().map(|c| 1 + c.hops.len() as u64).sum::<u64>())
        .sum();
    let before = client.stats()?.settled_transfers;
    let next = AtomicUsize::new(0);
    let latencies = Mutex::new(Vec::with_capacity(reqs.len()));
    let failures = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..concurrency.max(1) {
            let c = client.clone();
            let (reqs, next, latencies, failures) = (&reqs, &next, &latencies, &failures);
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(r) = reqs.get(i) else { break };
                    let t = Instant::now();
                    match c.sync(r) {
                        Ok(resp) => {
                            let bad = resp
                                .results
                                .iter()
                                .filter(|x| x.reason != tongbao::protocol::sync::RejectReason::None)
                                .count();
                            if bad > 0 {
                                eprintln!(
                                    "sync {}: {} rejected: {:?}",
                                    r.sync_id.short(),
                                    bad,
                                    resp.results
                                        .iter()
                                        .map(|x| x.reason.as_str())
                                        .collect::<Vec<_>>()
                                );
                                failures.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(e) => {
                            eprintln!("sync {}: {e}", r.sync_id.short());
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    let ms = t.elapsed().as_secs_f64() * 1000.0;
                    if let Ok(mut l) = latencies.lock() {
                        l.push(ms);
                    }
                }
            });
        }
    });
    let seconds = start.elapsed().as_secs_f64();
    let failed = failures.load(Ordering::Relaxed);
    if failed > 0 {
        anyhow::bail!("{failed} sync request(s) failed during the run");
    }
    let transfers = client.stats()?.settled_transfers - before;
    let audit = client.audit()?;
    if !audit.ok {
        anyhow::bail!("audit failed after the bench: {:?}", audit.problems);
    }
    let mut lat = latencies.into_inner().unwrap_or_default();
    lat.sort_by(|a, b| a.total_cmp(b));
    let (strict, batch) = verify_baseline();
    let tps = transfers as f64 / seconds;
    let baseline = 2.0 * batch * transfers as f64 / signatures.max(1) as f64;
    Ok(SettleReport {
        wallets: load.wallets,
        payments: load.wallets * load.payments,
        transfers,
        signatures,
        seconds,
        settling_seconds: 0.0,
        transfers_per_sec: tps,
        group_p50_ms: percentile(&lat, 0.5),
        group_p99_ms: percentile(&lat, 0.99),
        verify_strict_per_core: strict,
        verify_batch_per_core: batch,
        baseline_transfers_per_sec: baseline,
        baseline_ratio: tps / baseline,
    })
}
