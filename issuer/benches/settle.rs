//! Issue 6's figures in one run: the signature baseline (`verify_strict` and batch verification),
//! building and signing a payment (wallet `pay`, with its sled commit), receiving one (wallet
//! `receive`, with its sled commit), the ledger settling groups of syncs in-process (durable, on
//! sled), and at the end one line: the settlement rate and its ratio to what the two-core batch
//! baseline allows for the same signatures.
//!
//! Run: `cargo bench -p issuer --bench settle` (criterion prints medians; `cargo bench --workspace`
//! runs it with the payment-verification bench). `cargo test --benches` runs each once (smoke).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use issuer::Issuer;
use issuer::bench::{SettleLoad, prepare, run_in_process, settle};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tongbao::Fen;
use tongbao::protocol::certificate::{WalletClass, WalletKind};
use tongbao::protocol::file::TbFile;
use tongbao::protocol::note::Earmark;
use tongbao::store::{MemStore, SledStore};
use tongbao::wallet::{PayTarget, Wallet};

/// 2026-11-21T09:30:00Z.
const NOW: u64 = 1_795_253_400;
const CERT_SECS: u64 = 90 * 86_400;

/// `cargo bench` passes `--bench`; `cargo test --benches` does not (then runs are kept small).
fn full_run() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn baseline(c: &mut Criterion) {
    // Measure the arithmetic: the process-wide cache of checks that passed would answer repeats.
    tongbao::crypto::set_signature_cache(false);
    let (msgs, sigs, pubs) = issuer::bench::baseline_signatures();
    let mut g = c.benchmark_group("baseline");
    g.throughput(Throughput::Elements(1));
    g.bench_function("verify_strict", |b| {
        b.iter(|| black_box(&pubs[0]).verify_uncached(&msgs[0], &sigs[0], "baseline"))
    });
    let m: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
    let s: Vec<_> = sigs.iter().map(|s| s.dalek()).collect();
    let p: Vec<_> = pubs.iter().map(|p| *p.dalek()).collect();
    g.throughput(Throughput::Elements(64));
    g.bench_function("verify_batch_64", |b| {
        b.iter(|| ed25519_dalek::verify_batch(black_box(&m), &s, &p))
    });
    g.finish();
}

/// An in-memory issuer and a certified wallet of `kind` on sled in `dir` (or in memory).
struct Bank {
    iss: Issuer<MemStore>,
    rng: StdRng,
}

impl Bank {
    fn new(seed: u64) -> Bank {
        let mut rng = StdRng::seed_from_u64(seed);
        let iss = Issuer::init(MemStore::new(), NOW, &mut rng).expect("issuer");
        Bank { iss, rng }
    }

    fn certified<S: tongbao::store::Store>(&mut self, store: S, kind: WalletKind) -> Wallet<S> {
        let keyset = self.iss.keyset().expect("keys");
        let (w, reg) =
            Wallet::create(store, kind, None, keyset, NOW, &mut self.rng).expect("wallet");
        let cert = self
            .iss
            .certify(&reg, WalletClass::I, CERT_SECS, NOW)
            .expect("certify");
        w.import(TbFile::Certificate(cert), NOW).expect("import");
        w
    }

    fn fund<S: tongbao::store::Store>(&mut self, w: &Wallet<S>, fen: u64) {
        let notes = self
            .iss
            .issue(&w.public(), Fen(fen), Earmark::None, NOW, &mut self.rng)
            .expect("issue");
        w.import(TbFile::Notes(notes), NOW).expect("import notes");
    }
}

fn wallet(c: &mut Criterion) {
    tongbao::crypto::set_signature_cache(false);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut bank = Bank::new(6);
    let shop = bank.certified(MemStore::new(), WalletKind::Merchant);
    // A certificate allows so many offline payments (500 for class I): a fresh payer, on a
    // fresh sled database, takes over every 400 payments (outside the timing).
    let payers = std::cell::Cell::new(0u32);
    let new_payer = |bank: &mut Bank| {
        payers.set(payers.get() + 1);
        let path = dir.path().join(format!("payer-{}", payers.get()));
        bank.certified(SledStore::open(&path).expect("sled"), WalletKind::Personal)
    };
    let payer = std::cell::RefCell::new(new_payer(&mut bank));
    let paid = std::cell::Cell::new(0u32);
    // The payee checks its balance cap against every coin it holds, so a fresh payee takes over
    // every 100 receipts: the figure is for a till holding up to 100 unsettled coins.
    let payees = std::cell::Cell::new(0u32);
    let new_payee = |bank: &mut Bank| {
        payees.set(payees.get() + 1);
        let path = dir.path().join(format!("payee-{}", payees.get()));
        bank.certified(SledStore::open(&path).expect("sled"), WalletKind::Merchant)
    };
    let payee = std::cell::RefCell::new(new_payee(&mut bank));
    let received = std::cell::Cell::new(0u32);
    let mut g = c.benchmark_group("wallet");
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    // Build, sign and commit (durably) a payment of one whole 10.00 note: no change, so the
    // chain does not grow from one iteration to the next. The note is issued outside the timing.
    g.bench_function("pay_sled", |b| {
        b.iter_batched(
            || {
                paid.set(paid.get() + 1);
                if paid.get().is_multiple_of(400) {
                    *payer.borrow_mut() = new_payer(&mut bank);
                }
                bank.fund(&payer.borrow(), 1_000)
            },
            |()| {
                let mut rng = StdRng::seed_from_u64(1);
                payer
                    .borrow()
                    .pay(
                        PayTarget::Direct {
                            to: shop.public(),
                            amount: Fen(1_000),
                        },
                        NOW,
                        &mut rng,
                    )
                    .expect("pay")
            },
            BatchSize::PerIteration,
        )
    });
    // Verify a one-coin payment (note + one hop) and commit it durably. Each payment comes from
    // a fresh payer in memory, made outside the timing.
    g.bench_function("receive_sled", |b| {
        b.iter_batched(
            || {
                received.set(received.get() + 1);
                if received.get().is_multiple_of(100) {
                    *payee.borrow_mut() = new_payee(&mut bank);
                }
                let from = bank.certified(MemStore::new(), WalletKind::Personal);
                bank.fund(&from, 1_000);
                from.pay(
                    PayTarget::Direct {
                        to: payee.borrow().public(),
                        amount: Fen(100),
                    },
                    NOW,
                    &mut bank.rng,
                )
                .expect("pay")
            },
            |p| payee.borrow().receive(&p, NOW).expect("receive"),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn ledger(c: &mut Criterion) {
    tongbao::crypto::set_signature_cache(false);
    let wallets = if full_run() { 256 } else { 16 };
    let load = SettleLoad {
        wallets,
        payments: 4,
        group: 64,
        threads: 2,
        seed: 1,
    };
    let mut g = c.benchmark_group("ledger");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    // Each payer reports 4 payments and refreshes its change: 5 transfers per sync.
    g.throughput(Throughput::Elements(wallets as u64 * 5));
    g.bench_function(format!("settle_{wallets}_syncs_sled"), |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for i in 0..iters {
                // A fresh ledger on sled and a fresh load each time (not timed).
                let dir = tempfile::tempdir().expect("tempdir");
                let mut rng = StdRng::seed_from_u64(i);
                let iss = Issuer::init_dir(dir.path(), NOW, &mut rng).expect("issuer");
                let reqs = prepare(&iss, load, NOW).expect("load");
                let t = Instant::now();
                black_box(settle(&iss, &reqs, load.group, load.threads, NOW));
                timed += t.elapsed();
            }
            timed
        })
    });
    g.finish();
    // The issue's line: settled transfers/s and the ratio to the batch baseline, from one whole
    // run of the load generator (audited afterwards).
    let dir = tempfile::tempdir().expect("tempdir");
    let load = SettleLoad {
        wallets: if full_run() { 1_000 } else { 16 },
        ..load
    };
    match run_in_process(dir.path(), load, NOW) {
        Ok(r) => println!(
            "settlement in-process: {} transfers in {:.3} s = {:.0} transfers/s; batch baseline {:.0} signatures/s per core, two cores allow {:.0} transfers/s for these {} signatures; ratio {:.2}",
            r.transfers,
            r.seconds,
            r.transfers_per_sec,
            r.verify_batch_per_core,
            r.baseline_transfers_per_sec,
            r.signatures,
            r.baseline_ratio
        ),
        Err(e) => panic!("settlement run failed: {e}"),
    }
}

criterion_group!(benches, baseline, wallet, ledger);
criterion_main!(benches);
