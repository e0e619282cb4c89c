//! Settlement semantics in-process: wallets over memory stores, the issuer's ledger over a memory
//! store, a fixed seed and a fixed clock. The same code runs behind `issuer serve` and the CLIs.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use tongbao::Fen;
use tongbao::protocol::certificate::{WalletClass, WalletKind};
use tongbao::protocol::file::TbFile;
use tongbao::protocol::note::Earmark;
use tongbao::protocol::sync::{CoinStatus, RejectReason};
use tongbao::wallet::{PayTarget, Wallet, WalletError};

mod common;

use common::{T0, World, total};

#[test]
fn offline_payments_settle_on_both_sides_and_refresh() {
    let mut x = World::new(7);
    let alice = x.wallet(WalletKind::Personal, WalletClass::II);
    let shop = x.wallet(WalletKind::Merchant, WalletClass::I);
    x.fund(&alice, 100);
    x.pay(&alice, &shop, 3_750).unwrap();
    x.now += 60;
    let r = x.sync(&alice);
    // Alice's refresh chain settles her payment transfer too (it is the change coin's history), so
    // the payment chain itself is then already settled; nothing is rejected.
    assert_eq!(r.results[0].status, CoinStatus::Accepted, "{:?}", r.results);
    assert!(
        r.results.iter().all(|c| c.status != CoinStatus::Rejected),
        "{:?}",
        r.results
    );
    assert_eq!(total(&alice, x.now), 6_250);
    assert_eq!(
        alice.coins().unwrap()[0].hops.len(),
        0,
        "refreshed: hops reset"
    );
    x.audit();
    let r = x.sync(&shop);
    // The shop's coin was already settled by Alice's sync: it refreshes it.
    assert_eq!(r.results.len(), 1);
    assert_eq!(total(&shop, x.now), 3_750);
    assert_eq!(shop.coins().unwrap().len(), 1);
    x.audit();
    let s = x.iss.stats().unwrap();
    assert_eq!(s.issued_fen, s.redeemed_fen + s.outstanding_fen);
    assert_eq!(s.outstanding_fen, 10_000);
}

#[test]
fn double_spend_first_settled_wins_revocation_spreads_offline() {
    let mut x = World::new(7);
    let alice = x.wallet(WalletKind::Personal, WalletClass::II);
    let shop1 = x.wallet(WalletKind::Merchant, WalletClass::I);
    let shop2 = x.wallet(WalletKind::Merchant, WalletClass::I);
    let shop3 = x.wallet(WalletKind::Merchant, WalletClass::I);
    let bob = x.wallet(WalletKind::Personal, WalletClass::II);
    x.fund(&alice, 100);
    x.fund(&bob, 50);
    // Alice backs up her wallet, pays shop1, restores the backup, pays shop2 with the same coins.
    let backup = Wallet::open(alice.store().snapshot()).unwrap();
    x.pay(&alice, &shop1, 4_000).unwrap();
    x.pay(&backup, &shop2, 4_000).unwrap();
    x.now += 60;
    let r1 = x.sync(&shop1);
    assert!(r1.results.iter().all(|c| c.status == CoinStatus::Accepted));
    let r2 = x.sync(&shop2);
    let rej = r2
        .results
        .iter()
        .find(|c| c.status == CoinStatus::Rejected)
        .expect("a rejection");
    assert_eq!(rej.reason, RejectReason::DoubleSpend);
    let proof = rej.proof.as_ref().expect("proof");
    assert!(proof.verify(&x.iss.keyset().unwrap()).is_ok());
    assert_eq!(
        proof.signer(),
        alice.public(),
        "the proof names exactly the cheater"
    );
    assert!(r2.revocations.is_revoked(&alice.public()));
    assert_eq!(total(&shop1, x.now), 4_000);
    assert_eq!(
        total(&shop2, x.now),
        0,
        "the second merchant is not credited"
    );
    let stats = x.iss.stats().unwrap();
    assert_eq!(stats.double_spends, 1);
    assert_eq!(stats.losses_fen, 4_000);
    assert_eq!(stats.revoked, 1);
    x.audit();
    // Bob syncs (gets the new revocation list) and pays shop3, which never met the issuer.
    x.sync(&bob);
    x.pay(&bob, &shop3, 1_000).unwrap();
    assert!(
        shop3
            .revocations()
            .unwrap()
            .unwrap()
            .is_revoked(&alice.public())
    );
    // Alice (either copy) paying shop3 offline is now refused.
    let err = x.pay(&alice, &shop3, 500).unwrap_err();
    assert!(err.to_string().contains("revoked"), "{err}");
    // And Alice cannot sync any more.
    let req = alice
        .begin_sync(Fen::ZERO, Fen::ZERO, x.now, &mut x.rng)
        .unwrap();
    assert!(x.iss.sync(&req, x.now).is_err());
    x.audit();
}

#[test]
fn replayed_sync_returns_the_same_response_and_changes_nothing() {
    let mut x = World::new(7);
    let alice = x.wallet(WalletKind::Personal, WalletClass::II);
    x.fund(&alice, 20);
    let req = alice
        .begin_sync(Fen::ZERO, Fen::ZERO, x.now, &mut x.rng)
        .unwrap();
    let a = x.iss.sync(&req, x.now).unwrap();
    let before = x.iss.stats().unwrap();
    let b = x.iss.sync(&req, x.now + 10).unwrap();
    assert_eq!(a, b, "same response, byte for byte");
    assert_eq!(before, x.iss.stats().unwrap());
    // A lost answer: the wallet retries its pending request and gets the same response.
    assert_eq!(
        alice
            .begin_sync(Fen::ZERO, Fen::ZERO, x.now, &mut x.rng)
            .unwrap(),
        req
    );
    alice.apply_sync(&b, x.now).unwrap();
    assert!(matches!(
        alice.apply_sync(&b, x.now),
        Err(WalletError::Replay(_))
    ));
    assert_eq!(total(&alice, x.now), 2_000);
    x.audit();
}

#[test]
fn ten_wallets_sync_concurrently() {
    let mut x = World::new(7);
    let shop = x.wallet(WalletKind::Merchant, WalletClass::I);
    let people: Vec<_> = (0..10)
        .map(|_| x.wallet(WalletKind::Personal, WalletClass::II))
        .collect();
    for p in &people {
        x.fund(p, 10);
        x.pay(p, &shop, 300).unwrap();
    }
    let reqs: Vec<_> = people
        .iter()
        .map(|p| {
            p.begin_sync(Fen::ZERO, Fen::ZERO, x.now, &mut x.rng)
                .unwrap()
        })
        .collect();
    let now = x.now;
    let resps: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = reqs
            .iter()
            .map(|r| {
                let iss = Arc::clone(&x.iss);
                s.spawn(move || iss.sync(r, now).unwrap())
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (p, r) in people.iter().zip(&resps) {
        p.apply_sync(r, now).unwrap();
        assert_eq!(total(p, now), 700);
    }
    // A group of requests settled in one commit gives the same results.
    x.sync(&shop);
    assert_eq!(total(&shop, x.now), 3_000);
    x.audit();
}

#[test]
fn group_commit_settles_many_requests_at_once() {
    let mut x = World::new(7);
    let people: Vec<_> = (0..5)
        .map(|_| x.wallet(WalletKind::Personal, WalletClass::II))
        .collect();
    for p in &people {
        x.fund(p, 10);
    }
    let reqs: Vec<_> = people
        .iter()
        .map(|p| {
            p.begin_sync(Fen::ZERO, Fen::ZERO, x.now, &mut x.rng)
                .unwrap()
        })
        .collect();
    let out = x.iss.sync_many(&reqs, x.now);
    for (p, r) in people.iter().zip(out) {
        p.apply_sync(&r.unwrap(), x.now).unwrap();
        assert_eq!(total(p, x.now), 1_000);
    }
    x.audit();
}

#[test]
fn key_rotation_old_coins_accepted_and_refreshed_to_the_new_key() {
    let mut x = World::new(7);
    let alice = x.wallet(WalletKind::Personal, WalletClass::II);
    let shop = x.wallet(WalletKind::Merchant, WalletClass::I);
    x.fund(&alice, 100);
    x.now += 10;
    let ks_v1 = x.iss.keyset().unwrap();
    let stale = x.wallet(WalletKind::Merchant, WalletClass::I); // certified before the rotation
    let ks = x.iss.rotate_keys(30 * 86_400, x.now, &mut x.rng).unwrap();
    assert_eq!(ks.set_version, 2);
    x.now += 10;
    // A wallet that has not synced does not know key 2 yet: notes under it are refused until it
    // imports the new key set (which a sync also brings).
    let b = x
        .iss
        .issue(&shop.public(), Fen(100), Earmark::None, x.now, &mut x.rng)
        .unwrap();
    assert!(shop.import(TbFile::Notes(b.clone()), x.now).is_err());
    shop.import(TbFile::KeySet(ks.clone()), x.now).unwrap();
    shop.import(TbFile::Notes(b), x.now).unwrap();
    // New notes use key 2; old coins are still paid and accepted offline.
    assert_eq!(shop.coins().unwrap()[0].note.key_id, 2);
    x.pay(&alice, &shop, 1_000).unwrap();
    x.sync(&alice);
    assert!(alice.coins().unwrap().iter().all(|c| c.note.key_id == 2));
    assert_eq!(alice.keyset().unwrap().set_version, 2);
    // A merchant that has never synced since the rotation still takes Alice's new money: the
    // payment carries the newer key set, which it checks against the issuer root and adopts.
    assert_eq!(stale.keyset().unwrap(), ks_v1);
    x.pay(&alice, &stale, 500).unwrap();
    assert_eq!(stale.keyset().unwrap().set_version, 2);
    x.audit();
}

#[test]
fn topup_and_redeem_go_through_the_bank_account() {
    let mut x = World::new(7);
    let alice = x.wallet(WalletKind::Personal, WalletClass::II);
    let req = alice
        .begin_sync(Fen(5_000), Fen::ZERO, x.now, &mut x.rng)
        .unwrap();
    alice
        .apply_sync(&x.iss.sync(&req, x.now).unwrap(), x.now)
        .unwrap();
    assert_eq!(total(&alice, x.now), 5_000);
    let req = alice
        .begin_sync(Fen::ZERO, Fen(1_234), x.now, &mut x.rng)
        .unwrap();
    alice
        .apply_sync(&x.iss.sync(&req, x.now).unwrap(), x.now)
        .unwrap();
    assert_eq!(total(&alice, x.now), 3_766);
    let s = x.iss.stats().unwrap();
    assert_eq!((s.bank_in_fen, s.bank_out_fen), (5_000, 1_234));
    // Redeeming more than comes home is refused, and nothing changes at the issuer.
    let req = alice.begin_sync(Fen::ZERO, Fen(999_999), x.now, &mut x.rng);
    assert!(req.is_err());
    x.audit();
}

#[test]
fn credits_for_a_lost_payment_file_are_collected_at_the_payees_sync() {
    let mut x = World::new(7);
    let alice = x.wallet(WalletKind::Personal, WalletClass::II);
    let shop = x.wallet(WalletKind::Merchant, WalletClass::I);
    x.fund(&alice, 100);
    // The payment file never reaches the shop; Alice syncs, which settles it to the shop.
    let p = alice
        .pay(
            PayTarget::Direct {
                to: shop.public(),
                amount: Fen(2_500),
            },
            x.now,
            &mut x.rng,
        )
        .unwrap();
    x.sync(&alice);
    let r = x.sync(&shop);
    assert_eq!(r.collected.len(), 1);
    assert_eq!(total(&shop, x.now), 2_500);
    // If the file turns up later it is refused: the coin is already collected.
    assert!(shop.receive(&p, x.now).is_err());
    assert_eq!(total(&shop, x.now), 2_500);
    x.audit();
}

#[test]
fn online_payment_is_final_and_cannot_be_double_spent() {
    let mut x = World::new(7);
    let alice = x.wallet(WalletKind::Personal, WalletClass::II);
    let jd = x.wallet(WalletKind::Merchant, WalletClass::I);
    let other = x.wallet(WalletKind::Merchant, WalletClass::I);
    x.fund(&alice, 100);
    let backup = Wallet::open(alice.store().snapshot()).unwrap();
    let p = alice
        .pay(
            PayTarget::Direct {
                to: jd.public(),
                amount: Fen(8_000),
            },
            x.now,
            &mut x.rng,
        )
        .unwrap();
    let conf = x.iss.pay_online(&p, x.now).unwrap();
    assert!(conf.verify(&x.iss.keyset().unwrap(), &p).is_ok());
    // Before it is settled, the outbox can write the payment again.
    let short = tongbao::SignedBody::id(&p).to_hex();
    assert_eq!(alice.outbox_payment(&short[..12]).unwrap(), p);
    // Refused, and nothing changes: a confirmation altered after signing, and one for a
    // payment the wallet did not make.
    let mut altered = conf.clone();
    altered.amount = Fen(1);
    assert!(alice.confirm_online(&altered, x.now).is_err());
    assert!(matches!(
        other.confirm_online(&conf, x.now),
        Err(WalletError::NotFound(_))
    ));
    assert_eq!(alice.outbox_payment(&short[..12]).unwrap(), p);
    alice.confirm_online(&conf, x.now).unwrap();
    assert_eq!(
        x.iss.pay_online(&p, x.now + 5).unwrap(),
        conf,
        "a replay gets the same confirmation"
    );
    // Settled: final, so its bytes are dropped (docs/adr/0006); a second confirmation is a
    // replay, and the payee's receipt still matches the outbox record.
    let e = alice.outbox_payment(&short[..12]).unwrap_err().to_string();
    assert!(e.contains("settled at the issuer"), "{e}");
    assert!(matches!(
        alice.confirm_online(&conf, x.now + 6),
        Err(WalletError::Replay(_))
    ));
    // The rolled-back copy cannot spend the same coins online.
    let p2 = backup
        .pay(
            PayTarget::Direct {
                to: other.public(),
                amount: Fen(8_000),
            },
            x.now,
            &mut x.rng,
        )
        .unwrap();
    assert!(x.iss.pay_online(&p2, x.now).is_err());
    x.sync(&jd);
    assert_eq!(total(&jd, x.now), 8_000);
    x.audit();
}

#[test]
fn settlement_load_generator_settles_everything_and_the_audit_passes() {
    let dir = tempfile::tempdir().unwrap();
    let load = issuer::bench::SettleLoad {
        wallets: 12,
        payments: 3,
        group: 5,
        threads: 2,
        seed: 1,
    };
    let r = issuer::bench::run_in_process(dir.path(), load, T0).unwrap();
    // Each wallet: 3 payments (chained on one coin) + 1 refresh transfer of its change coin.
    assert_eq!(r.transfers, 12 * 4);
    assert_eq!(r.payments, 36);
    assert!(r.transfers_per_sec > 0.0 && r.baseline_ratio > 0.0);
}

#[test]
fn a_refused_sync_is_abandoned_and_its_coins_come_back() {
    let mut x = World::new(7);
    let alice = x.wallet(WalletKind::Personal, WalletClass::IV); // balance cap ¥1000
    let shop = x.wallet(WalletKind::Merchant, WalletClass::I);
    x.fund(&alice, 100);
    x.pay(&alice, &shop, 1_000).unwrap();
    // A top-up that would take Alice over her class cap: refused, nothing changes at the issuer.
    let req = alice
        .begin_sync(Fen(95_000), Fen::ZERO, x.now, &mut x.rng)
        .unwrap();
    let before = x.iss.stats().unwrap();
    assert!(x.iss.sync(&req, x.now).is_err());
    assert_eq!(before, x.iss.stats().unwrap());
    assert_eq!(
        total(&alice, x.now),
        0,
        "the coins are in the pending request"
    );
    assert!(
        alice
            .pay(
                PayTarget::Direct {
                    to: shop.public(),
                    amount: Fen(100)
                },
                x.now,
                &mut x.rng
            )
            .is_err()
    );
    let restored = alice.abandon_sync("refused", x.now).unwrap();
    assert_eq!(restored, Fen(9_000));
    assert_eq!(total(&alice, x.now), 9_000);
    // The coins are spendable again, and the next sync settles the payment it carried.
    x.pay(&alice, &shop, 500).unwrap();
    x.sync(&alice);
    assert_eq!(total(&alice, x.now), 8_500);
    x.sync(&shop);
    assert_eq!(total(&shop, x.now), 1_500);
    x.audit();
}

#[test]
fn verify_once_still_checks_every_new_signature() {
    use tongbao::protocol::certificate::Registration;
    use tongbao::protocol::coin::Coin;
    use tongbao::protocol::sync::SyncRequest;
    use tongbao::protocol::transfer::{Output, Transfer};
    use tongbao::{Nonce, SecretKey, Signature};
    let mut x = World::new(7);
    let key = SecretKey::from_seed(&[42; 32]);
    let reg = Registration::sign(&key, WalletKind::Personal, None, x.now);
    x.iss.certify(&reg, WalletClass::II, 86_400, x.now).unwrap();
    let note = x
        .iss
        .issue(&key.public(), Fen(5_000), Earmark::None, x.now, &mut x.rng)
        .unwrap()
        .notes
        .remove(0);
    let root = x.iss.root();
    let coin = Coin::from_note(note);
    let refresh = |sig_ok: bool, id: u8| {
        let mut t = Transfer::sign(
            &key,
            coin.id(),
            vec![Output {
                holder: root,
                value: Fen(5_000),
            }],
            1,
            x.now,
            Nonce([id; 16]),
        );
        if !sig_ok {
            t.signature.0[10] ^= 1;
        }
        SyncRequest {
            wallet: key.public(),
            sync_id: Nonce([id; 16]),
            time: x.now,
            counter: 1,
            topup: Fen::ZERO,
            redeem: Fen::ZERO,
            coins: vec![coin.extended(t, 0)],
            proofs: vec![],
            signature: Signature([0; 64]),
        }
        .signed(&key)
    };
    // The note is known to the ledger (its signature is skipped); the new transfer's is not.
    let bad = x.iss.sync(&refresh(false, 1), x.now).unwrap();
    assert_eq!(bad.results[0].reason, RejectReason::Invalid);
    // Nothing is lost: the note is still the wallet's at the ledger, so it is collected instead.
    assert_eq!(bad.collected, vec![coin.id()]);
    assert_eq!(bad.notes[0].value, Fen(5_000));
    // Refreshing it again, validly signed this time, would credit the note twice: the key signed a
    // transfer of a coin collected for it, a collected-then-spent double spend (docs/adr/0005).
    let again = x.iss.sync(&refresh(true, 2), x.now).unwrap();
    assert_eq!(again.results[0].reason, RejectReason::DoubleSpend);
    let proof = again.results[0].proof.as_ref().unwrap();
    assert_eq!((proof.kind(), proof.signer()), (2, key.public()));
    assert!(proof.verify(&x.iss.keyset().unwrap()).is_ok());
    assert!(again.revocations.is_revoked(&key.public()));
    x.audit();
}

/// D6 (docs/testing.md), fixed: a sync collects credits only as far as the wallet's class balance
/// cap allows; the rest stays live at the issuer and is collected once there is room.
#[test]
fn a_sync_collects_credits_only_up_to_the_class_cap() {
    let mut x = World::new(11);
    let payer = x.wallet(WalletKind::Personal, WalletClass::I);
    let small = x.wallet(WalletKind::Personal, WalletClass::IV);
    let shop = x.wallet(WalletKind::Merchant, WalletClass::I);
    x.fund(&payer, 2_000);
    // Two online payments of 450.00 and one of 300.00: 1,200.00 in credits for a class IV wallet
    // whose cap is 1,000.00.
    for fen in [45_000, 45_000, 30_000] {
        let p = payer
            .pay(
                PayTarget::Direct {
                    to: small.public(),
                    amount: Fen(fen),
                },
                x.now,
                &mut x.rng,
            )
            .unwrap();
        let conf = x.iss.pay_online(&p, x.now).unwrap();
        payer.confirm_online(&conf, x.now).unwrap();
    }
    let cap = WalletClass::IV.default_limits().balance_max.0;
    let first = x.sync(&small);
    let held = total(&small, x.now);
    assert!(held <= cap, "collected {held} fen, over the cap {cap}");
    assert!(held > 0, "something was collected");
    assert!(first.collected.len() < 3, "a credit was left for later");
    x.audit();
    // Spending makes room; the next sync collects the rest.
    x.now += 60;
    x.pay(&small, &shop, 50_000).unwrap();
    x.sync(&small);
    assert_eq!(
        total(&small, x.now),
        120_000 - 50_000,
        "every credit collected in the end"
    );
    assert!(total(&small, x.now) <= cap);
    x.audit();
}

/// D1 (docs/testing.md), fixed: a cheater's backup copy syncs and the issuer collects, for the
/// cheater's key, a payment another wallet settled to it; the original device then pays that coin
/// to a shop. The shop's chain meets the collected coin: a double spend, proven by the issuer's
/// statement of the collection and the cheater's transfer. The cheater is revoked and the shop's
/// loss booked against it, as for any double spend.
#[test]
fn a_coin_collected_for_a_cheater_then_spent_by_it_is_a_proven_double_spend() {
    use tongbao::protocol::proof::DoubleSpendProof;
    let mut x = World::new(7);
    let kay = x.wallet(WalletKind::Personal, WalletClass::II);
    let payer = x.wallet(WalletKind::Personal, WalletClass::II);
    let shop = x.wallet(WalletKind::Merchant, WalletClass::I);
    x.fund(&kay, 10);
    x.fund(&payer, 100);
    let backup = Wallet::open(kay.store().snapshot()).unwrap();
    // The payer pays kay 30.00 and syncs: the coin is live at the ledger for kay.
    x.pay(&payer, &kay, 3_000).unwrap();
    x.sync(&payer);
    // Kay's backup syncs: it collects the 30.00 (it never received the payment).
    let collected = x.sync(&backup);
    assert_eq!(collected.collected.len(), 1);
    let coin = collected.collected[0];
    assert!(kay.coins().unwrap().iter().any(|c| c.id() == coin));
    // Kay's original device pays the same 30.00 to the shop, which syncs.
    x.now += 60;
    x.pay(&kay, &shop, 3_000).unwrap();
    x.now += 60;
    let r = x.sync(&shop);
    let rej = r
        .results
        .iter()
        .find(|c| c.status == CoinStatus::Rejected)
        .expect("the shop's chain is rejected");
    assert_eq!(rej.reason, RejectReason::DoubleSpend);
    let proof = rej.proof.as_ref().expect("with its proof");
    assert_eq!(
        (proof.kind(), proof.signer(), proof.coin()),
        (2, kay.public(), coin)
    );
    assert!(proof.verify(&x.iss.keyset().unwrap()).is_ok());
    let DoubleSpendProof::CollectedThenSpent(p) = proof else {
        panic!("collected, then spent");
    };
    assert_eq!(p.collection.sync_id, collected.sync_id);
    assert_eq!(p.collection.collected_at, collected.time);
    assert_eq!(p.collection.value, Fen(3_000));
    assert!(
        r.revocations.is_revoked(&kay.public()),
        "the cheater is revoked"
    );
    assert_eq!(total(&shop, x.now), 0, "the shop is not credited");
    let stats = x.iss.stats().unwrap();
    assert_eq!(stats.double_spends, 1);
    assert_eq!(
        stats.losses_fen, 3_000,
        "the shop's loss, booked against kay"
    );
    assert_eq!(stats.revoked, 1);
    x.audit();
}

/// The same double spend met online: the payment is refused, the proof and the revocation are
/// kept, and nothing is lost (the payee took nothing).
#[test]
fn a_collected_coin_paid_online_by_its_holder_is_refused_and_proven() {
    let mut x = World::new(9);
    let kay = x.wallet(WalletKind::Personal, WalletClass::II);
    let payer = x.wallet(WalletKind::Personal, WalletClass::II);
    let shop = x.wallet(WalletKind::Merchant, WalletClass::I);
    x.fund(&payer, 100);
    let backup = Wallet::open(kay.store().snapshot()).unwrap();
    x.pay(&payer, &kay, 2_000).unwrap();
    x.sync(&payer);
    assert_eq!(x.sync(&backup).collected.len(), 1);
    let p = kay
        .pay(
            PayTarget::Direct {
                to: shop.public(),
                amount: Fen(2_000),
            },
            x.now,
            &mut x.rng,
        )
        .unwrap();
    let err = x.iss.pay_online(&p, x.now).unwrap_err();
    assert!(err.to_string().contains("double spend"), "{err}");
    let stats = x.iss.stats().unwrap();
    assert_eq!(
        (stats.double_spends, stats.revoked, stats.losses_fen),
        (1, 1, 0)
    );
    assert!(x.iss.revocations().unwrap().is_revoked(&kay.public()));
    x.audit();
}

/// An honest wallet is never caught by a collected-then-spent proof. It makes its sync request,
/// then receives a payment offline while the request is pending; the payer settles first, so the
/// sync, reaching the issuer afterwards, collects that coin too. Applying the answer drops the coin
/// (its value is in the fresh note), so the wallet holds the value once and can never spend the
/// coin itself; it cannot pay at all while the sync is pending.
#[test]
fn an_honest_wallet_drops_a_coin_its_pending_sync_collected() {
    let mut x = World::new(13);
    let honest = x.wallet(WalletKind::Personal, WalletClass::II);
    let payer = x.wallet(WalletKind::Personal, WalletClass::II);
    let shop = x.wallet(WalletKind::Merchant, WalletClass::I);
    x.fund(&honest, 50);
    x.fund(&payer, 100);
    let req = honest
        .begin_sync(Fen::ZERO, Fen::ZERO, x.now, &mut x.rng)
        .unwrap();
    // Received offline while the sync is pending.
    let p = payer
        .pay(
            PayTarget::Direct {
                to: honest.public(),
                amount: Fen(2_000),
            },
            x.now,
            &mut x.rng,
        )
        .unwrap();
    honest.receive(&p, x.now).unwrap();
    let coin = p.coins[0].id();
    assert!(honest.coins().unwrap().iter().any(|c| c.id() == coin));
    assert_eq!(
        total(&honest, x.now),
        2_000,
        "the 50.00 is in the pending request"
    );
    // Paying is refused while the sync is pending: the issuer may collect what arrived meanwhile.
    let refused = honest.pay(
        PayTarget::Direct {
            to: shop.public(),
            amount: Fen(1_000),
        },
        x.now,
        &mut x.rng,
    );
    assert!(
        matches!(refused, Err(WalletError::Refused(_))),
        "{refused:?}"
    );
    // The payer settles first; then the pending request reaches the issuer and collects the coin.
    x.now += 60;
    x.sync(&payer);
    let resp = x.iss.sync(&req, x.now).unwrap();
    assert_eq!(resp.collected, vec![coin]);
    honest.apply_sync(&resp, x.now).unwrap();
    assert!(
        honest.coins().unwrap().iter().all(|c| c.id() != coin),
        "the collected coin is dropped"
    );
    assert_eq!(total(&honest, x.now), 7_000, "50.00 + 20.00, once");
    // The coin is gone for good: the payment file again is refused, and what the wallet pays now
    // comes from its fresh note, which settles without any double spend.
    assert!(honest.receive(&p, x.now).is_err());
    x.now += 60;
    x.pay(&honest, &shop, 7_000).unwrap();
    assert_eq!(total(&honest, x.now), 0);
    let r = x.sync(&shop);
    assert!(
        r.results.iter().all(|c| c.status != CoinStatus::Rejected),
        "{:?}",
        r.results
    );
    assert_eq!(total(&shop, x.now), 7_000);
    x.sync(&honest);
    let stats = x.iss.stats().unwrap();
    assert_eq!((stats.double_spends, stats.revoked), (0, 0));
    x.audit();
}
