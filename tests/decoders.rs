//! Every decoder against every truncation and every single-bit flip of a small valid input. See
//! docs/testing.md#bad-input.
//!
//! tests/vectors.rs does this for the bare messages it has vectors of. This file covers the rest,
//! with inputs made by the real wallet engine over memory stores and the fixed issuer of
//! `tongbao::testkit`:
//! - the file container, for every one of its 18 kinds (the form every file on disk has): every
//!   truncation and every bit flip is refused by `TbFile::from_file_bytes`, never accepted;
//! - a collected-then-spent proof (kind 2), bare, in a file and inside a sync response's result:
//!   refused, or decoded to bytes that re-encode to themselves and then fail verification;
//! - the note bundle (decode, then every note verified): refused;
//! - the text codes, `tbreq1…` (`PaymentRequest::from_code`) and `tbw1…` addresses
//!   (`PublicKey::from_address`): refused;
//! - the ledger's coin state (stored bytes, no signature): truncations refused, and whatever a
//!   flip decodes to re-encodes to exactly the flipped bytes (one canonical encoding).
//!
//! Scenario files (TOML) are tested where their parser lives: issuer/tests/scenario_input.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rand::SeedableRng;
use rand::rngs::StdRng;
use tongbao::codec::{Decode, Encode};
use tongbao::protocol::certificate::{Certificate, WalletClass, WalletKind};
use tongbao::protocol::coin::Coin;
use tongbao::protocol::file::{NoteBundle, TbFile};
use tongbao::protocol::proof::{Collection, DoubleSpendProof};
use tongbao::protocol::request::PaymentRequest;
use tongbao::protocol::revocation::{Revocation, RevocationList, RevocationReason};
use tongbao::protocol::sync::{CoinResult, CoinStatus, Confirmation, RejectReason, SyncResponse};
use tongbao::protocol::transfer::{Output, Transfer};
use tongbao::protocol::{Context, SignedBody};
use tongbao::settlement::{CoinState, Collected};
use tongbao::store::MemStore;
use tongbao::testkit::{Fixture, NOW, key};
use tongbao::wallet::{PayTarget, Wallet};
use tongbao::{Fen, Id, Nonce, PublicKey, Signature};

/// One valid file of every kind, made by the engine.
struct Samples {
    f: Fixture,
    files: Vec<TbFile>,
    bundle: NoteBundle,
    request: PaymentRequest,
    address: PublicKey,
}

fn wallet(
    f: &Fixture,
    kind: WalletKind,
    merchant: Option<PublicKey>,
    rng: &mut StdRng,
) -> Wallet<MemStore> {
    let (w, _) =
        Wallet::create(MemStore::new(), kind, merchant, f.keyset.clone(), NOW, rng).unwrap();
    let cert = Certificate {
        merchant,
        ..f.certificate(w.public(), kind, WalletClass::I)
    }
    .signed(&f.note_key);
    w.import(TbFile::Certificate(cert), NOW).unwrap();
    w
}

fn samples() -> Samples {
    let f = Fixture::new();
    let mut rng = StdRng::seed_from_u64(11);
    let alice = wallet(&f, WalletKind::Personal, None, &mut rng);
    let shop = wallet(&f, WalletKind::Merchant, None, &mut rng);
    let courier = wallet(&f, WalletKind::Courier, None, &mut rng);
    let (till_w, till_reg) = Wallet::create(
        MemStore::new(),
        WalletKind::Till,
        Some(shop.public()),
        f.keyset.clone(),
        NOW,
        &mut rng,
    )
    .unwrap();
    let auth = shop
        .authorize_till(&till_reg, "front counter", NOW)
        .unwrap();
    let till_cert = Certificate {
        merchant: Some(shop.public()),
        ..f.certificate(till_w.public(), WalletKind::Till, WalletClass::I)
    }
    .signed(&f.note_key);
    till_w.import(TbFile::Certificate(till_cert), NOW).unwrap();

    let bundle = NoteBundle {
        notes: vec![
            f.note(alice.public(), Fen(10_000), 1),
            f.note(alice.public(), Fen(2_550), 2),
        ],
    };
    alice.import(TbFile::Notes(bundle.clone()), NOW).unwrap();

    // A sale at the till, refunded in part, and the till's day.
    let request = till_w
        .create_request(Fen(1_250), "tea".into(), 3_600, NOW, &mut rng)
        .unwrap();
    let pay = |to: PayTarget, rng: &mut StdRng| alice.pay(to, NOW, rng).unwrap();
    let payment = pay(
        PayTarget::Request {
            request: request.clone(),
            amount: None,
        },
        &mut rng,
    );
    let receipt = till_w.receive(&payment, NOW).unwrap().receipt;
    alice.import(TbFile::Receipt(receipt.clone()), NOW).unwrap();
    let refund = till_w
        .refund(&payment.id().to_hex(), Some(Fen(250)), NOW, &mut rng)
        .unwrap();
    let journal = till_w.close_till(None, NOW).unwrap();

    // Cash on delivery.
    let order = shop
        .create_cod_order("JD-1", Fen(800), courier.public(), 86_400, NOW, &mut rng)
        .unwrap();
    courier.load_cod_order(&order, NOW).unwrap();
    let cod_payment = pay(
        PayTarget::Request {
            request: order.request.clone(),
            amount: None,
        },
        &mut rng,
    );
    let (_, delivery) = courier.collect_cod(&cod_payment, NOW).unwrap();
    let handoff = courier.cod_handoff(Some(shop.public()), NOW).unwrap();

    // Settlement messages: alice's sync and an answer signed by the fixture's root.
    let sync = alice
        .begin_sync(Fen(100), Fen::ZERO, NOW, &mut rng)
        .unwrap();
    let response = SyncResponse {
        wallet: alice.public(),
        sync_id: sync.sync_id,
        request: sync.id(),
        time: NOW,
        results: sync
            .coins
            .iter()
            .map(|c| CoinResult {
                coin: c.id(),
                value: c.value(),
                status: CoinStatus::Accepted,
                reason: RejectReason::None,
                proof: None,
            })
            .collect(),
        notes: vec![f.note(alice.public(), Fen(1_000), 3)],
        collected: vec![],
        redeemed: Fen::ZERO,
        certificate: f.certificate(alice.public(), WalletKind::Personal, WalletClass::I),
        keyset: f.keyset.clone(),
        revocations: RevocationList::sign(&f.root, 1, NOW, vec![]),
        signature: Signature([0; 64]),
    }
    .signed(&f.root);
    let confirmation = Confirmation::sign(&f.root, &payment, NOW);

    // A double spend: one coin, two transfers by its holder.
    let cheat = key(66);
    let coin = Coin::from_note(f.note(cheat.public(), Fen(700), 4));
    let spend = |to: PublicKey, n: u8| {
        Transfer::sign(
            &cheat,
            coin.id(),
            vec![Output {
                holder: to,
                value: Fen(700),
            }],
            1,
            NOW,
            Nonce([n; 16]),
        )
    };
    let proof = DoubleSpendProof::new(
        cheat.public(),
        spend(key(67).public(), 1),
        spend(key(68).public(), 2),
    );
    let revocations = RevocationList::sign(
        &f.root,
        2,
        NOW,
        vec![Revocation {
            wallet: cheat.public(),
            reason: RevocationReason::DoubleSpend,
            revoked_at: NOW,
        }],
    );

    let files = vec![
        TbFile::KeySet(f.keyset.clone()),
        TbFile::Registration(till_reg),
        TbFile::Certificate(f.certificate(alice.public(), WalletKind::Personal, WalletClass::II)),
        TbFile::Notes(bundle.clone()),
        TbFile::Request(request.clone()),
        TbFile::Payment(Box::new(payment.clone())),
        TbFile::Receipt(receipt),
        TbFile::Revocations(revocations),
        TbFile::Proof(proof),
        TbFile::SyncRequest(Box::new(sync)),
        TbFile::SyncResponse(Box::new(response)),
        TbFile::ConfirmedPayment(Box::new(payment), confirmation),
        TbFile::TillAuthorization(Box::new(auth)),
        TbFile::Refund(Box::new(refund)),
        TbFile::TillJournal(Box::new(journal)),
        TbFile::CodOrder(Box::new(order)),
        TbFile::DeliveryReceipt(Box::new(delivery)),
        TbFile::Handoff(Box::new(handoff)),
    ];
    Samples {
        address: shop.public(),
        f,
        files,
        bundle,
        request,
    }
}

/// Calls `refuse` on every truncation and every single-bit flip of `bytes`.
fn mutations(bytes: &[u8], mut refuse: impl FnMut(&[u8], &str)) {
    for len in 0..bytes.len() {
        refuse(&bytes[..len], &format!("truncated to {len} bytes"));
    }
    let mut b = bytes.to_vec();
    for i in 0..b.len() {
        for bit in 0..8 {
            b[i] ^= 1 << bit;
            refuse(&b, &format!("bit {bit} of byte {i} flipped"));
            b[i] ^= 1 << bit;
        }
    }
}

#[test]
fn every_file_kind_refuses_every_truncation_and_bit_flip() {
    let s = samples();
    let mut kinds = Vec::new();
    for file in &s.files {
        let bytes = file.to_file_bytes();
        // The valid file reads back to the same bytes.
        let back = TbFile::from_file_bytes(&bytes).unwrap();
        assert_eq!(back.to_file_bytes(), bytes, "{}", file.kind_name());
        kinds.push(bytes[8]);
        mutations(&bytes, |m, what| {
            if let Ok(got) = TbFile::from_file_bytes(m) {
                panic!(
                    "{}: {what}: accepted as a {}",
                    file.kind_name(),
                    got.kind_name()
                );
            }
        });
    }
    kinds.sort();
    assert_eq!(
        kinds,
        (1..=18).collect::<Vec<u8>>(),
        "one sample of every file kind"
    );
}

#[test]
fn note_bundles_refuse_every_truncation_and_bit_flip() {
    let s = samples();
    let ctx: Context<'_> = s.f.ctx();
    let check = |b: &[u8]| -> Result<(), String> {
        let bundle = NoteBundle::decode(b).map_err(|e| e.to_string())?;
        assert_eq!(bundle.to_bytes(), b, "one canonical encoding");
        for n in &bundle.notes {
            n.verify(&ctx).map_err(|e| e.to_string())?;
        }
        Ok(())
    };
    let bytes = s.bundle.to_bytes();
    check(&bytes).unwrap();
    mutations(&bytes, |m, what| {
        assert!(check(m).is_err(), "note bundle {what}: accepted");
    });
}

#[test]
fn text_codes_refuse_every_truncation_and_bit_flip() {
    let s = samples();
    let code = s.request.to_code();
    assert_eq!(PaymentRequest::from_code(&code).unwrap(), s.request);
    let request_id = s.request.request_id;
    mutations(code.as_bytes(), |m, what| {
        let Ok(text) = std::str::from_utf8(m) else {
            return; // not text: no code at all
        };
        match PaymentRequest::from_code(text) {
            // Whitespace around a code is trimmed: a flip that only adds some is the same code.
            Ok(r) if text.trim() == code => assert_eq!(r.request_id, request_id),
            Ok(_) => panic!("request code {what}: accepted"),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    });
    let addr = s.address.address();
    assert_eq!(PublicKey::from_address(&addr).unwrap(), s.address);
    mutations(addr.as_bytes(), |m, what| {
        let Ok(text) = std::str::from_utf8(m) else {
            return;
        };
        match PublicKey::from_address(text) {
            Ok(k) if text.trim() == addr => assert_eq!(k, s.address),
            Ok(_) => panic!("address {what}: accepted"),
            Err(e) => assert!(e.to_string().contains(text.trim()) || !e.to_string().is_empty()),
        }
    });
}

#[test]
fn ledger_coin_states_are_strict_and_canonical() {
    let f = Fixture::new();
    let t = Transfer::sign(
        &key(3),
        f.note(key(3).public(), Fen(500), 9).id(),
        vec![
            Output {
                holder: key(4).public(),
                value: Fen(300),
            },
            Output {
                holder: key(3).public(),
                value: Fen(200),
            },
        ],
        1,
        NOW,
        Nonce([5; 16]),
    );
    let states = [
        CoinState::Live {
            value: Fen(500),
            holder: key(3).public(),
        },
        CoinState::Spent {
            value: Fen(500),
            transfer: t,
        },
        CoinState::Redeemed {
            value: Fen(200),
            holder: key(4).public(),
            collected: None,
        },
        CoinState::Redeemed {
            value: Fen(200),
            holder: key(4).public(),
            collected: Some(Collected {
                sync_id: Nonce([6; 16]),
                at: NOW,
            }),
        },
    ];
    for s in states {
        let bytes = s.to_bytes();
        assert_eq!(CoinState::decode(&bytes), Ok(s));
        mutations(&bytes, |m, what| {
            if let Ok(got) = CoinState::decode(m) {
                assert!(
                    m.len() == bytes.len() && got.to_bytes() == m,
                    "coin state {what}: decoded to a state that encodes differently"
                );
            }
        });
    }
}

#[test]
fn collected_then_spent_proofs_refuse_every_truncation_and_bit_flip() {
    let f = Fixture::new();
    let (kay, shop) = (key(70), key(71));
    let coin = f.note(kay.public(), Fen(1_200), 5).id();
    let statement = Collection {
        coin,
        value: Fen(1_200),
        holder: kay.public(),
        sync_id: Nonce([8; 16]),
        collected_at: NOW,
        signature: Signature([0; 64]),
    }
    .signed(&f.root);
    let spend = Transfer::sign(
        &kay,
        coin,
        vec![Output {
            holder: shop.public(),
            value: Fen(1_200),
        }],
        2,
        NOW,
        Nonce([9; 16]),
    );
    let proof = DoubleSpendProof::collected_then_spent(statement, spend);
    proof.verify(&f.keyset).unwrap();
    // Bare: whatever decodes re-encodes to itself and fails verification.
    let bytes = proof.to_bytes();
    mutations(&bytes, |m, what| {
        if let Ok(p) = DoubleSpendProof::decode(m) {
            assert_eq!(p.to_bytes(), m, "proof {what}: not canonical");
            assert!(p.verify(&f.keyset).is_err(), "proof {what}: accepted");
        }
    });
    // In a file, and in the result of the shop's sync response that it was rejected with.
    let response = SyncResponse {
        wallet: shop.public(),
        sync_id: Nonce([10; 16]),
        request: tongbao::Id([11; 32]),
        time: NOW,
        results: vec![CoinResult {
            coin: Id::hash(b"the shop's refresh"),
            value: Fen(1_200),
            status: CoinStatus::Rejected,
            reason: RejectReason::DoubleSpend,
            proof: Some(proof.clone()),
        }],
        notes: vec![],
        collected: vec![],
        redeemed: Fen::ZERO,
        certificate: f.certificate(shop.public(), WalletKind::Merchant, WalletClass::I),
        keyset: f.keyset.clone(),
        revocations: RevocationList::sign(&f.root, 1, NOW, vec![]),
        signature: Signature([0; 64]),
    }
    .signed(&f.root);
    let bytes = response.to_bytes();
    assert_eq!(SyncResponse::decode(&bytes).unwrap(), response);
    mutations(&bytes, |m, what| {
        if let Ok(r) = SyncResponse::decode(m) {
            assert_eq!(r.to_bytes(), m, "sync response {what}: not canonical");
            assert!(
                r.verify(&f.keyset).is_err(),
                "sync response {what}: accepted"
            );
        }
    });
    for file in [
        TbFile::Proof(proof),
        TbFile::SyncResponse(Box::new(response)),
    ] {
        let bytes = file.to_file_bytes();
        assert_eq!(
            TbFile::from_file_bytes(&bytes).unwrap().to_file_bytes(),
            bytes
        );
        mutations(&bytes, |m, what| {
            assert!(
                TbFile::from_file_bytes(m).is_err(),
                "{}: {what}: accepted",
                file.kind_name()
            );
        });
    }
    // The ledger keeps the collecting sync with the redeemed state (tag 4).
    let state = CoinState::Redeemed {
        value: Fen(1_200),
        holder: kay.public(),
        collected: Some(Collected {
            sync_id: Nonce([8; 16]),
            at: NOW,
        }),
    };
    assert_eq!(state.to_bytes()[0], 4);
}
