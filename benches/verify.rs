//! Offline verification of a received payment (issue 2's figure: 3 coins x 4 hops).
//!
//! Run: `cargo bench --bench verify`. Medians are printed by criterion.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tongbao::protocol::certificate::WalletKind;
use tongbao::testkit::Fixture;

fn verify_payment(c: &mut Criterion) {
    // The same payment is verified again and again: measure the arithmetic, not the cache of
    // checks that passed (which a real payee hits for the chain's earlier signatures only).
    tongbao::crypto::set_signature_cache(false);
    let f = Fixture::new();
    let mut g = c.benchmark_group("verify_payment");
    for (coins, hops) in [(1, 1), (1, 4), (3, 1), (3, 4), (3, 16)] {
        let (p, payee) = f.payment_n_by_hops(coins, hops);
        g.bench_function(format!("{coins}coins_x_{hops}hops"), |b| {
            b.iter(|| {
                let v = black_box(&p).verify(&f.ctx(), &payee, WalletKind::Merchant);
                assert!(v.is_ok());
            })
        });
    }
    g.finish();
}

fn verify_strict_baseline(c: &mut Criterion) {
    tongbao::crypto::set_signature_cache(false);
    let k = tongbao::testkit::key(9);
    let msg = b"tongbao baseline";
    let sig = k.sign(msg);
    let pk = k.public();
    c.bench_function("verify_strict_one_signature", |b| {
        b.iter(|| assert!(pk.verify(black_box(msg), &sig, "baseline").is_ok()))
    });
}

/// The same payment verified again with the cache of checks that passed on: every signature is
/// a hit (what is left is structure, hashing and the cache lookups).
fn verify_payment_cached(c: &mut Criterion) {
    tongbao::crypto::set_signature_cache(true);
    let f = Fixture::new();
    let (p, payee) = f.payment_n_by_hops(3, 4);
    c.bench_function("verify_payment_cached/3coins_x_4hops", |b| {
        b.iter(|| {
            let v = black_box(&p).verify(&f.ctx(), &payee, WalletKind::Merchant);
            assert!(v.is_ok());
        })
    });
}

/// Batches of signatures: `tongbao::crypto::verify_batch` (one point per distinct key) beside
/// ed25519-dalek's `verify_batch`, for batches signed by one key (the issuer's notes, certificates
/// and confirmations), by three, and by as many keys as signatures (nothing to share).
fn verify_batch(c: &mut Criterion) {
    let mut g = c.benchmark_group("verify_batch");
    for (n, signers) in [
        (64usize, 1usize),
        (64, 3),
        (64, 64),
        (256, 1),
        (256, 3),
        (256, 128),
    ] {
        let keys: Vec<_> = (0..signers)
            .map(|i| tongbao::testkit::key(u8::try_from(i + 1).expect("small")))
            .collect();
        let msgs: Vec<Vec<u8>> = (0..n).map(|i| format!("bench {i}").into_bytes()).collect();
        let sigs: Vec<_> = msgs
            .iter()
            .enumerate()
            .map(|(i, m)| keys[i % signers].sign(m))
            .collect();
        let pubs: Vec<_> = (0..n).map(|i| keys[i % signers].public()).collect();
        let (k, m, s): (Vec<_>, Vec<&[u8]>, Vec<_>) = (
            pubs.iter().collect(),
            msgs.iter().map(Vec::as_slice).collect(),
            sigs.iter().collect(),
        );
        g.throughput(criterion::Throughput::Elements(n as u64));
        g.bench_function(format!("tongbao/{n}_by_{signers}_keys"), |b| {
            b.iter(|| assert!(tongbao::crypto::verify_batch(&k, &m, &s)))
        });
        let dk: Vec<_> = pubs.iter().map(|p| *p.dalek()).collect();
        let ds: Vec<_> = sigs.iter().map(|s| s.dalek()).collect();
        g.bench_function(format!("dalek/{n}_by_{signers}_keys"), |b| {
            b.iter(|| assert!(ed25519_dalek::verify_batch(&m, &ds, &dk).is_ok()))
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    verify_payment,
    verify_batch,
    verify_strict_baseline,
    verify_payment_cached
);
criterion_main!(benches);
