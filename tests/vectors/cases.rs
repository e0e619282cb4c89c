//! The vectors' fixed keys, times and objects, and every case built from them. Part of the
//! `vectors` integration test (tests/vectors.rs); see docs/protocol.md#test-vectors.

use super::*;

/// 2026-11-21T09:30:00Z: the moment of the payment.
pub const T: u64 = 1_795_253_400;
/// The verifier's clock for every case.
pub const NOW: u64 = T + 10;
pub const DAY: u64 = 86_400;

/// The seeds: `SecretKey::from_seed(&[seed; 32])`.
pub const SEEDS: &[(u8, &str)] = &[
    (1, "issuer root (signs key sets and revocation lists)"),
    (
        2,
        "issuer note key, key id 1 (signs notes and certificates)",
    ),
    (7, "issuer note key, key id 2 (valid from T+180 days)"),
    (3, "alice: personal wallet, class II, the payer"),
    (4, "shop: merchant wallet, the payee"),
    (5, "bob: personal wallet, paid by alice, pays her 12.00"),
    (6, "mallory: revoked for double spending (one note twice)"),
    (8, "carol: revoked, phone lost"),
    (9, "another issuer's root (malformed cases only)"),
    (10, "till: a till wallet of the shop"),
    (11, "courier: carries the shop's cash-on-delivery orders"),
];

pub fn sk(seed: u8) -> SecretKey {
    SecretKey::from_seed(&[seed; 32])
}

pub fn pk(seed: u8) -> PublicKey {
    sk(seed).public()
}

/// The small-order identity point, a weak key every decoder refuses.
const IDENTITY: [u8; 32] = {
    let mut k = [0u8; 32];
    k[0] = 1;
    k
};

const REQ_BOB: Nonce = Nonce(*b"request-bob-0001");
const REQ_SHOP: Nonce = Nonce(*b"request-shop-042");
const REQ_DOUBLE: Nonce = Nonce(*b"request-shop-041");
const REQ_M1: Nonce = Nonce(*b"request-alice-01");
const REQ_M2: Nonce = Nonce(*b"request-shop-040");
const REQ_B1: Nonce = Nonce(*b"request-alice-02");
const REQ_C1: Nonce = Nonce(*b"request-shop-043");
/// Alice's sync id: also the request id of her refresh transfers and the serial of her fresh note.
pub const SYNC_ID: Nonce = Nonce(*b"sync-alice-00001");
/// When alice makes her sync request.
pub const SYNC_AT: u64 = T + 60;
/// When the issuer settles it.
pub const SETTLED_AT: u64 = T + 120;
/// When alice, from a backup made before her sync, pays the shop bob's 12.00 again.
pub const RESPENT_AT: u64 = T + 300;
/// When the issuer confirms the payment online, in the online variant of the story.
pub const CONFIRMED_AT: u64 = T + 2;
/// Alice's sync: top-up from her bank account and redemption to it.
pub const TOPUP: Fen = Fen(10_000);
pub const REDEEM: Fen = Fen(2_000);
const MEMO: &str = "牛肉面 x2, 订单 42";

/// Everything the vectors are made of.
pub struct World {
    pub root: SecretKey,
    pub note_key: SecretKey,
    pub alice: SecretKey,
    pub shop: SecretKey,
    pub keyset: IssuerKeySet,
    pub note: Note,
    pub red_note: Note,
    /// Alice spends the note: 25.00 to bob, 75.00 change.
    pub t1: Transfer,
    /// Alice spends the note a second time (a double spend).
    pub t1x: Transfer,
    /// Alice spends her change: 30.00 to the shop, 45.00 change.
    pub t2: Transfer,
    /// note → t1 (output 1, alice's change) → t2 (output 0, the shop's 30.00).
    pub coin: Coin,
    pub registration: Registration,
    pub till_registration: Registration,
    pub certificate: Certificate,
    pub request: PaymentRequest,
    pub revocations: RevocationList,
    pub payment: Payment,
    pub receipt: Receipt,
    pub proof: DoubleSpendProof,
    /// A 50.00 note to mallory (seed 6), serial "tongbao-note-003", issued T-2d.
    pub mallory_note: Note,
    /// Mallory pays the note to alice (T-2d+600 s).
    pub m1: Transfer,
    /// Mallory pays the same note to the shop (T-2d+1200 s): a double spend.
    pub m2: Transfer,
    /// Mallory's two spends: alice caught it offline, settlement finds it again.
    pub mallory_proof: DoubleSpendProof,
    /// Bob spends his 25.00 from t1: 12.00 to alice, 13.00 change (T-900 s).
    pub b1: Transfer,
    /// Alice's refresh of her 45.00 change (the second output of t2) to the issuer root.
    pub r1: Transfer,
    /// Alice's refresh of mallory's 50.00 (the output of m1) to the issuer root.
    pub r2: Transfer,
    /// Alice's sync request: her held coins refreshed, her payment to the shop, the proof.
    pub sync_request: SyncRequest,
    /// The issuer's answer to it.
    pub sync_response: SyncResponse,
    /// The issuer's confirmation of alice's payment to the shop, settled online instead.
    pub confirmation: Confirmation,
    /// The issuer root's statement that bob's 12.00 to alice (the output of b1) was collected for
    /// her at her sync, at T+120 s.
    pub collection: Collection,
    /// Alice's backup, made before her sync, pays the shop that 12.00 (counter 3, T+300 s).
    pub c1: Transfer,
    /// Collected, then spent: the statement and alice's transfer.
    pub collected_proof: DoubleSpendProof,
}

fn out(holder: PublicKey, fen: u64) -> Output {
    Output {
        holder,
        value: Fen(fen),
    }
}

fn entry(key_id: u32, key: PublicKey, from: u64, issue: u64, redeem: u64) -> IssuerKeyEntry {
    IssuerKeyEntry {
        key_id,
        key,
        not_before: from,
        issue_until: issue,
        redeem_until: redeem,
    }
}

impl World {
    pub fn new() -> World {
        let (root, note_key, alice, shop) = (sk(1), sk(2), sk(3), sk(4));
        let (a, s) = (alice.public(), shop.public());
        let keyset = IssuerKeySet::sign(
            &root,
            2,
            T - 30 * DAY,
            Policy::default(),
            vec![
                entry(
                    1,
                    note_key.public(),
                    T - 30 * DAY,
                    T + 180 * DAY,
                    T + 365 * DAY,
                ),
                entry(2, pk(7), T + 180 * DAY, T + 545 * DAY, T + 730 * DAY),
            ],
        );
        let serial = Nonce(*b"tongbao-note-001");
        let note = Note::sign(
            &note_key,
            1,
            serial,
            Fen(10_000),
            a,
            T - 3_000,
            Earmark::None,
        );
        let red = Earmark::MerchantsOnly {
            expires_at: T + 7 * DAY,
        };
        let serial = Nonce(*b"tongbao-note-002");
        let red_note = Note::sign(&note_key, 1, serial, Fen(2_000), a, T - 3_000, red);
        let t1_outs = vec![out(pk(5), 2_500), out(a, 7_500)];
        let t1 = Transfer::sign(&alice, note.id(), t1_outs, 1, T - 1_200, REQ_BOB);
        let t1x_outs = vec![out(s, 10_000)];
        let t1x = Transfer::sign(&alice, note.id(), t1x_outs, 1, T - 600, REQ_DOUBLE);
        let t2_outs = vec![out(s, 3_000), out(a, 4_500)];
        let t2 = Transfer::sign(&alice, t1.output_coin_id(1), t2_outs, 2, T, REQ_SHOP);
        let coin = Coin::from_note(note.clone())
            .extended(t1.clone(), 1)
            .extended(t2.clone(), 0);
        let registration = Registration::sign(&alice, WalletKind::Personal, None, T - 2 * DAY);
        let till_registration = Registration::sign(&sk(10), WalletKind::Till, Some(s), T - DAY);
        let certificate = Certificate {
            key_id: 1,
            wallet: a,
            kind: WalletKind::Personal,
            class: WalletClass::II,
            merchant: None,
            limits: WalletClass::II.default_limits(),
            serial: 1,
            counter_base: 0,
            issued_at: T - DAY,
            expires_at: T + 90 * DAY,
            signature: Signature([0; 64]),
        }
        .signed(&note_key);
        let request =
            PaymentRequest::sign(&shop, Fen(3_000), REQ_SHOP, MEMO.into(), T - 60, T + 540);
        let revoked = |seed, reason, revoked_at| Revocation {
            wallet: pk(seed),
            reason,
            revoked_at,
        };
        let revocations = RevocationList::sign(
            &root,
            3,
            T - 7_200,
            vec![
                revoked(6, RevocationReason::DoubleSpend, T - 7_200),
                revoked(8, RevocationReason::Lost, T - 2 * DAY),
            ],
        );
        let payment = Payment {
            certificate: certificate.clone(),
            payee: s,
            request_id: REQ_SHOP,
            amount: Fen(3_000),
            counter: 2,
            offline_spent: Fen(5_500),
            time: T,
            coins: vec![coin.clone()],
            signature: Signature([0; 64]),
            revocations: Some(revocations.clone()),
            keyset: None,
        }
        .signed(&alice);
        let receipt = Receipt::sign(&shop, &payment, payment.id(), T + 5);
        let proof = DoubleSpendProof::new(a, t1.clone(), t1x.clone());

        // Settlement. Mallory (already revoked above) spent a note twice, to alice and to the
        // shop; bob paid alice 12.00 from his 25.00 and settled it; alice syncs.
        let mallory = sk(6);
        let serial = Nonce(*b"tongbao-note-003");
        let mallory_note = Note::sign(
            &note_key,
            1,
            serial,
            Fen(5_000),
            mallory.public(),
            T - 2 * DAY,
            Earmark::None,
        );
        let m1 = Transfer::sign(
            &mallory,
            mallory_note.id(),
            vec![out(a, 5_000)],
            1,
            T - 2 * DAY + 600,
            REQ_M1,
        );
        let m2 = Transfer::sign(
            &mallory,
            mallory_note.id(),
            vec![out(s, 5_000)],
            1,
            T - 2 * DAY + 1_200,
            REQ_M2,
        );
        let mallory_proof = DoubleSpendProof::new(mallory.public(), m1.clone(), m2.clone());
        let b1_outs = vec![out(a, 1_200), out(pk(5), 1_300)];
        let b1 = Transfer::sign(&sk(5), t1.output_coin_id(0), b1_outs, 1, T - 900, REQ_B1);
        let root_pk = root.public();
        let refresh = |input, value| {
            Transfer::sign(
                &alice,
                input,
                vec![out(root_pk, value)],
                3,
                SYNC_AT,
                SYNC_ID,
            )
        };
        let r1 = refresh(t2.output_coin_id(1), 4_500);
        let r2 = refresh(m1.output_coin_id(0), 5_000);
        // As `Wallet::begin_sync` builds it: the held coins in coin-id order, each extended by its
        // refresh, then the unreported payments' coins, then every stored proof.
        let mut held = vec![
            (
                Coin::from_note(note.clone())
                    .extended(t1.clone(), 1)
                    .extended(t2.clone(), 1),
                r1.clone(),
            ),
            (
                Coin::from_note(mallory_note.clone()).extended(m1.clone(), 0),
                r2.clone(),
            ),
        ];
        held.sort_by_key(|(c, _)| c.id());
        let mut chains: Vec<Coin> = held.into_iter().map(|(c, r)| c.extended(r, 0)).collect();
        chains.push(coin.clone());
        let sync_request = SyncRequest {
            wallet: a,
            sync_id: SYNC_ID,
            time: SYNC_AT,
            counter: 3,
            topup: TOPUP,
            redeem: REDEEM,
            coins: chains,
            proofs: vec![mallory_proof.clone()],
            signature: Signature([0; 64]),
        }
        .signed(&alice);
        // The ledger before alice's sync: the shop settled t1, t2 and m2, bob settled b1. So her
        // change refresh is newly settled, her payment was already settled, mallory's coin is a
        // double spend, and bob's 12.00 to her is collected.
        let results = sync_request
            .coins
            .iter()
            .map(|c| {
                let last = &c.hops.last().expect("every chain has a hop").transfer;
                let (status, reason, proof) = if last.id() == r1.id() {
                    (CoinStatus::Accepted, RejectReason::None, None)
                } else if last.id() == r2.id() {
                    (
                        CoinStatus::Rejected,
                        RejectReason::DoubleSpend,
                        Some(mallory_proof.clone()),
                    )
                } else {
                    (CoinStatus::AlreadySettled, RejectReason::None, None)
                };
                CoinResult {
                    coin: c.id(),
                    value: c.value(),
                    status,
                    reason,
                    proof,
                }
            })
            .collect();
        let collected = vec![b1.output_coin_id(0)];
        // 45.00 refreshed + 12.00 collected + 100.00 top-up - 20.00 redeemed.
        let fresh_note = Note::sign(
            &note_key,
            1,
            SYNC_ID,
            Fen(4_500 + 1_200 + TOPUP.0 - REDEEM.0),
            a,
            SETTLED_AT,
            Earmark::None,
        );
        let renewed = Certificate {
            serial: 2,
            counter_base: 3,
            issued_at: SETTLED_AT,
            expires_at: SETTLED_AT + 90 * DAY,
            ..certificate.clone()
        }
        .signed(&note_key);
        let sync_response = SyncResponse {
            wallet: a,
            sync_id: SYNC_ID,
            request: sync_request.id(),
            time: SETTLED_AT,
            results,
            notes: vec![fresh_note],
            collected,
            redeemed: REDEEM,
            certificate: renewed,
            keyset: keyset.clone(),
            revocations: revocations.clone(),
            signature: Signature([0; 64]),
        }
        .signed(&root);
        let confirmation = Confirmation::sign(&root, &payment, CONFIRMED_AT);
        // After her sync, alice's wallet restored from a backup made before it still holds bob's
        // 12.00, which the issuer collected for her, and pays it to the shop.
        let collection = Collection {
            coin: b1.output_coin_id(0),
            value: Fen(1_200),
            holder: a,
            sync_id: SYNC_ID,
            collected_at: SETTLED_AT,
            signature: Signature([0; 64]),
        }
        .signed(&root);
        let c1 = Transfer::sign(
            &alice,
            b1.output_coin_id(0),
            vec![out(s, 1_200)],
            3,
            RESPENT_AT,
            REQ_C1,
        );
        let collected_proof =
            DoubleSpendProof::collected_then_spent(collection.clone(), c1.clone());
        World {
            root,
            note_key,
            alice,
            shop,
            keyset,
            note,
            red_note,
            t1,
            t1x,
            t2,
            coin,
            registration,
            till_registration,
            certificate,
            request,
            revocations,
            payment,
            receipt,
            proof,
            mallory_note,
            m1,
            m2,
            mallory_proof,
            b1,
            r1,
            r2,
            sync_request,
            sync_response,
            confirmation,
            collection,
            c1,
            collected_proof,
        }
    }

    /// The verifier's context: the key set, [`NOW`], the revocation list.
    pub fn ctx(&self) -> Context<'_> {
        Context {
            keys: &self.keyset,
            now: NOW,
            revoked: Some(&self.revocations),
        }
    }

    pub fn payment_without_revocations(&self) -> Payment {
        Payment {
            revocations: None,
            keyset: None,
            ..self.payment.clone()
        }
    }

    pub fn request_file(&self) -> TbFile {
        TbFile::Request(self.request.clone())
    }

    pub fn sync_request_file(&self) -> TbFile {
        TbFile::SyncRequest(Box::new(self.sync_request.clone()))
    }

    pub fn sync_response_file(&self) -> TbFile {
        TbFile::SyncResponse(Box::new(self.sync_response.clone()))
    }

    pub fn confirmed_payment_file(&self) -> TbFile {
        TbFile::ConfirmedPayment(Box::new(self.payment.clone()), self.confirmation.clone())
    }

    /// The issuer's key set for checking a sync request's chains: the refresh transfer does not
    /// count against the hop limit (`Issuer::precheck`).
    pub fn settlement_keyset(&self) -> IssuerKeySet {
        let mut k = self.keyset.clone();
        k.policy.max_hops = k.policy.max_hops.saturating_add(1);
        k
    }

    pub fn notes_file(&self) -> TbFile {
        TbFile::Notes(NoteBundle {
            notes: vec![self.note.clone(), self.red_note.clone()],
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Building cases.

pub struct Builder {
    out: Vec<Vector>,
    pub kind: &'static str,
}

impl Builder {
    pub fn ok(&mut self, name: &str, comment: &[&str], bytes: Vec<u8>) {
        self.out.push(Vector {
            name: name.into(),
            kind: self.kind.into(),
            error: None,
            comment: comment.iter().map(|c| c.to_string()).collect(),
            id: None,
            code: None,
            bytes,
        });
    }

    pub fn err(&mut self, name: &str, error: &str, comment: &str, bytes: Vec<u8>) {
        self.out.push(Vector {
            name: name.into(),
            kind: self.kind.into(),
            error: Some(error.into()),
            comment: vec![comment.into()],
            id: None,
            code: None,
            bytes,
        });
    }

    /// The three cases every message has: truncated, a trailing byte, version 2.
    pub fn framing(&mut self, prefix: &str, what: &str, last_field: &str, bytes: &[u8]) {
        let truncated = bytes[..bytes.len() - 1].to_vec();
        let mut trailing = bytes.to_vec();
        trailing.push(0);
        self.err(
            &format!("{prefix}-truncated"),
            &format!("decode: truncated: input ends inside {last_field}"),
            "The last byte is missing.",
            truncated,
        );
        self.err(
            &format!("{prefix}-trailing-byte"),
            "decode: 1 trailing byte(s) after the message",
            "One byte too many at the end.",
            trailing,
        );
        self.err(
            &format!("{prefix}-unknown-version"),
            &format!("decode: unknown {what} version 2"),
            "Version byte 2.",
            set(bytes, 0, &[2]),
        );
    }
}

/// `bytes` with `new` written at `at`.
pub fn set(bytes: &[u8], at: usize, new: &[u8]) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v[at..at + new.len()].copy_from_slice(new);
    v
}

/// `bytes` with `remove` bytes at `at` replaced by `insert`.
fn splice(bytes: &[u8], at: usize, remove: usize, insert: &[u8]) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v.splice(at..at + remove, insert.iter().copied());
    v
}

/// `bytes` with the lowest bit of byte `at` flipped.
pub fn flip(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v[at] ^= 1;
    v
}

/// A file with its checksum recomputed after an edit, so that only the edited rule fails.
fn reseal(mut file: Vec<u8>) -> Vec<u8> {
    let n = file.len() - 8;
    let sum = blake3::hash(&signing_bytes(b"tongbao/v1/file", &file[..n]));
    file[n..].copy_from_slice(&sum.as_bytes()[..8]);
    file
}

fn be32(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

fn be64(v: u64) -> [u8; 8] {
    v.to_be_bytes()
}

/// Every vector, valid and malformed, with the id of every valid one filled in.
pub fn build() -> Vec<Vector> {
    let w = World::new();
    let mut b = Builder {
        out: Vec::new(),
        kind: "",
    };
    keyset_and_notes(&w, &mut b);
    transfers_and_coins(&w, &mut b);
    registrations_and_certificates(&w, &mut b);
    requests_payments_receipts(&w, &mut b);
    revocations_proofs_files(&w, &mut b);
    sync_and_confirmations(&w, &mut b);
    super::merchant_cases::merchant_cases(&w, &mut b);
    let mut out = b.out;
    for v in out
        .iter_mut()
        .filter(|v| v.error.is_none() && v.kind != "file")
    {
        let msg = decode(&v.kind, &v.bytes).unwrap();
        v.id = msg.verify(&w).unwrap().map(|id| id.to_hex());
        if v.kind == "request" {
            v.code = Some(PaymentRequest::decode(&v.bytes).unwrap().to_code());
        }
    }
    out
}

// Offsets below are those of the layout tables in docs/protocol.md.

#[rustfmt::skip]
fn keyset_and_notes(w: &World, b: &mut Builder) {
    b.kind = "keyset";
    let ks = w.keyset.to_bytes();
    b.ok("keyset", &[
        "Issuer key set version 2, signed by the root (seed 1), default policy (16 hops, 300 s).",
        "Key 1 (seed 2) signs from T-30d to T+180d, redeemable to T+365d; key 2 (seed 7) takes over at T+180d.",
    ], ks.clone());
    b.framing("keyset", "key set", "key set signature", &ks);
    b.err("keyset-max-hops-zero", "decode: invalid policy max hops 0",
        "A policy allowing no transfers at all.", set(&ks, 49, &[0]));
    b.err("keyset-no-keys", "decode: keys count 0 is outside 1..=64",
        "Key count 0.", set(&ks, 54, &[0]));
    b.err("keyset-key-ids-descending", "decode: non-canonical encoding: key ids not strictly ascending",
        "The two 60-byte key entries swapped (ids 2 then 1).",
        [&ks[..55], &ks[115..175], &ks[55..115], &ks[175..]].concat());
    b.err("keyset-duplicate-key-id", "decode: non-canonical encoding: key ids not strictly ascending",
        "The second entry's key id changed to 1.", set(&ks, 115, &be32(1)));
    b.err("keyset-bad-validity-window", "decode: invalid key validity window",
        "Key 1 issues until after it stops being redeemable.", set(&ks, 55 + 44, &be64(u64::MAX)));
    b.err("keyset-weak-root", "decode: root key is not a valid ed25519 public key",
        "The root key is the small-order identity point.", set(&ks, 1, &IDENTITY));
    b.err("keyset-bad-signature", "verify: bad signature on issuer key set",
        "One bit of the root signature flipped.", flip(&ks, ks.len() - 64));

    b.kind = "note";
    let note = w.note.to_bytes();
    b.ok("note", &[
        "A note of 100.00 (10000 fen) to alice, serial \"tongbao-note-001\", issued at T-3000 s by key 1, no earmark.",
    ], note.clone());
    b.ok("note-earmarked", &[
        "A red-envelope note of 20.00 to alice, serial \"tongbao-note-002\": merchants only, expires T+7d.",
    ], w.red_note.to_bytes());
    b.framing("note", "note", "note signature", &note);
    b.err("note-zero-value", "decode: invalid zero note value",
        "Value 0.", set(&note, 21, &be64(0)));
    b.err("note-bad-earmark-tag", "decode: invalid note earmark tag 2",
        "Earmark tag 2.", set(&note, 69, &[2]));
    b.err("note-weak-holder", "decode: note holder is not a valid ed25519 public key",
        "The holder is the identity point.", set(&note, 29, &IDENTITY));
    b.err("note-unknown-key-id",
        "verify: signed by unknown issuer key 9: issued by another issuer, or import the newer issuer key set",
        "Key id 9, which the key set does not list.", set(&note, 1, &be32(9)));
    b.err("note-bad-signature", "verify: bad issuer signature on note: damaged, or issued by another issuer",
        "One bit of the issuer signature flipped.", flip(&note, note.len() - 64));
}

#[rustfmt::skip]
fn transfers_and_coins(w: &World, b: &mut Builder) {
    b.kind = "transfer";
    let t = w.t1.to_bytes();
    b.ok("transfer", &[
        "Alice (seed 3) spends the note: 25.00 to bob (seed 5), 75.00 change to herself;",
        "counter 1, time T-1200 s, request id \"request-bob-0001\". Verified against alice's key.",
    ], t.clone());
    b.framing("transfer", "transfer", "transfer signature", &t);
    b.err("transfer-no-outputs", "decode: transfer outputs count 0 is outside 1..=8",
        "Output count 0.", set(&t, 33, &[0]));
    b.err("transfer-too-many-outputs", "decode: transfer outputs count 9 is outside 1..=8",
        "Output count 9.", set(&t, 33, &[9]));
    b.err("transfer-zero-output", "decode: invalid zero output value",
        "Output 0 has value 0.", set(&t, 34 + 32, &be64(0)));
    b.err("transfer-weak-holder", "decode: output holder is not a valid ed25519 public key",
        "Output 0's holder is the identity point.", set(&t, 34, &IDENTITY));
    b.err("transfer-bad-signature", "verify: bad signature on transfer",
        "One bit of the signature flipped: decodes, fails verification.", flip(&t, t.len() - 64));

    b.kind = "coin";
    let coin = w.coin.to_bytes();
    b.ok("coin", &[
        "The note, then the transfer above (following output 1, alice's 75.00 change), then alice's",
        "payment to the shop (counter 2, time T, 30.00 to the shop, 45.00 change; following output 0).",
        "The id is the coin id of that last output; the holder is the shop.",
    ], coin.clone());
    b.ok("coin-unspent", &["A coin with no transfers: just the note. Its id is the note id."],
        Coin::from_note(w.note.clone()).to_bytes());
    b.framing("coin", "coin", "hop output index", &coin);
    b.err("coin-bad-output-index", "decode: invalid hop output index",
        "The last hop follows output 2 of a 2-output transfer.", set(&coin, coin.len() - 1, &[2]));
    let skipped = Coin { note: w.note.clone(), hops: vec![Hop { transfer: w.t2.clone(), index: 0 }] };
    b.err("coin-broken-chain", "verify: broken chain: transfer 0 does not spend the coin before it",
        "The first hop is missing: the second transfer does not spend the note.", skipped.to_bytes());
    let mut short = w.t1.outputs.clone();
    short[1].value = Fen(7_400);
    let t_short = Transfer::sign(&w.alice, w.note.id(), short, 1, T - 1_200, REQ_BOB);
    b.err("coin-value-not-conserved", "verify: value not conserved: input ¥100.00, outputs ¥99.00",
        "A validly signed first transfer whose outputs sum to 99.00 of the note's 100.00.",
        Coin::from_note(w.note.clone()).extended(t_short, 1).to_bytes());
    let t_early = Transfer::sign(&w.alice, w.note.id(), w.t1.outputs.clone(), 1, T - 4_000, REQ_BOB);
    b.err("coin-time-backwards", "verify: time goes backwards along the coin's chain",
        "A validly signed transfer dated before the note was issued.",
        Coin::from_note(w.note.clone()).extended(t_early, 1).to_bytes());
    b.err("coin-bad-signature", "verify: bad signature on transfer",
        "One bit of the last transfer's signature flipped.", flip(&coin, coin.len() - 65));
}

#[rustfmt::skip]
fn registrations_and_certificates(w: &World, b: &mut Builder) {
    b.kind = "registration";
    let reg = w.registration.to_bytes();
    let till = w.till_registration.to_bytes();
    b.ok("registration", &["Alice registers her key as a personal wallet at T-2d."], reg.clone());
    b.ok("registration-till", &[
        "A till wallet (seed 10) registers, naming the shop (seed 4) as its merchant, at T-1d.",
    ], till.clone());
    b.err("registration-bad-kind", "decode: invalid wallet kind tag 0",
        "Kind tag 0.", set(&reg, 33, &[0]));
    b.err("registration-bad-option-tag", "decode: invalid registration merchant tag 2",
        "Merchant option tag 2.", set(&reg, 34, &[2]));
    let with_merchant = [&[1u8][..], w.shop.public().as_bytes()].concat();
    b.err("registration-personal-with-merchant", "decode: invalid a till, and only a till, names its merchant",
        "A personal wallet naming a merchant.", splice(&reg, 34, 1, &with_merchant));
    b.err("registration-till-without-merchant", "decode: invalid a till, and only a till, names its merchant",
        "A till naming no merchant.", splice(&till, 34, 33, &[0]));
    b.err("registration-bad-signature", "verify: bad signature on registration",
        "One bit of the signature flipped.", flip(&reg, reg.len() - 64));

    b.kind = "certificate";
    let cert = w.certificate.to_bytes();
    b.ok("certificate", &[
        "Alice's certificate from key 1: personal, class II with the class II default limits,",
        "serial 1, counter base 0, issued T-1d, expires T+90d.",
    ], cert.clone());
    b.framing("certificate", "certificate", "certificate signature", &cert);
    b.err("certificate-bad-kind", "decode: invalid wallet kind tag 5",
        "Kind tag 5.", set(&cert, 37, &[5]));
    b.err("certificate-bad-class", "decode: invalid wallet class tag 5",
        "Class tag 5.", set(&cert, 38, &[5]));
    b.err("certificate-bad-option-tag", "decode: invalid certificate merchant tag 2",
        "Merchant option tag 2.", set(&cert, 39, &[2]));
    b.err("certificate-expires-before-issued", "decode: invalid certificate expires before it is issued",
        "Expiry one second before the issue time.", set(&cert, 92, &be64(T - DAY - 1)));
    b.err("certificate-bad-signature",
        "verify: bad issuer signature on certificate: damaged, or issued by another issuer",
        "One bit of the issuer signature flipped.", flip(&cert, cert.len() - 64));
}

#[rustfmt::skip]
fn requests_payments_receipts(w: &World, b: &mut Builder) {
    b.kind = "request";
    let req = w.request.to_bytes();
    b.ok("request", &[
        "The shop (seed 4) asks for 30.00, request id \"request-shop-042\", memo \"牛肉面 x2, 订单 42\"",
        "(23 bytes of UTF-8), made T-60 s, expires T+540 s. `code` is its text form.",
    ], req.clone());
    b.framing("request", "payment request", "request signature", &req);
    b.err("request-memo-too-long", "decode: request memo count 121 is outside 0..=120",
        "Memo length 121.", set(&req, 57, &[121]));
    b.err("request-memo-not-utf8", "decode: request memo is not valid UTF-8",
        "The memo's first byte replaced by 0xff.", set(&req, 58, &[0xff]));
    b.err("request-expires-before-created", "decode: invalid request expires before it is made",
        "Expiry one second before the creation time.", set(&req, 66 + MEMO.len(), &be64(T - 61)));
    b.err("request-bad-signature", "verify: bad signature on payment request",
        "One bit of the payee signature flipped.", flip(&req, req.len() - 64));

    b.kind = "payment";
    let pay = w.payment.to_bytes();
    let bare = w.payment_without_revocations().to_bytes();
    let c = w.certificate.to_bytes().len();
    // The bare payment ends: signature, revocation tag 0, key set tag 0.
    let tag_at = bare.len() - 2;
    b.ok("payment", &[
        "Alice pays the shop's request: her certificate, payee the shop, 30.00, counter 2, offline",
        "total 55.00 (25.00 to bob before), time T, one coin (the 2-hop coin above), signed by alice,",
        "then the revocation list (tag 1) she carries. Verified by the shop, a merchant wallet.",
    ], pay.clone());
    b.ok("payment-without-revocations", &[
        "The same payment without the revocation list (tag 0). The payer's signature and the",
        "payment id do not cover the list, so both are unchanged.",
    ], bare.clone());
    b.framing("payment", "payment", "payment key set", &pay);
    b.err("payment-zero-amount", "decode: invalid zero payment amount",
        "Amount 0.", set(&pay, 1 + c + 48, &be64(0)));
    b.err("payment-no-coins", "decode: payment coins count 0 is outside 1..=32",
        "Coin count 0.", set(&pay, 1 + c + 80, &[0]));
    b.err("payment-bad-revocation-tag", "decode: invalid payment revocation list tag 2",
        "Revocation list option tag 2.", set(&pay, tag_at, &[2]));
    b.err("payment-bad-signature", "verify: bad signature on payment",
        "One bit of the payer signature flipped.", flip(&pay, tag_at - 64));
    b.err("payment-tampered-revocations", "verify: bad signature on revocation list",
        "One bit of the carried list's signature flipped: the payer signature still verifies, the list's own does not.",
        flip(&pay, pay.len() - 65));
    let more = Payment { amount: Fen(3_001), ..w.payment.clone() }.signed(&w.alice);
    b.err("payment-amount-mismatch",
        "verify: invalid payment: coins pay ¥30.00 to the payee but the payment says ¥30.01",
        "Validly signed by alice, but claims 30.01 while the coins pay 30.00.", more.to_bytes());
    let unbound = Payment { counter: 3, ..w.payment.clone() }.signed(&w.alice);
    b.err("payment-unbound-transfer", "verify: invalid payment: a transfer is not bound to this payment",
        "Validly signed by alice with counter 3, but the coin's last transfer carries counter 2.",
        unbound.to_bytes());

    b.kind = "receipt";
    let rc = w.receipt.to_bytes();
    b.ok("receipt", &[
        "The shop's receipt for the payment above (its id, payer, payee, 30.00, request id), time T+5 s.",
    ], rc.clone());
    b.framing("receipt", "receipt", "receipt signature", &rc);
    b.err("receipt-weak-payer", "decode: receipt payer is not a valid ed25519 public key",
        "The payer is the identity point.", set(&rc, 33, &IDENTITY));
    b.err("receipt-bad-signature", "verify: bad signature on receipt",
        "One bit of the payee signature flipped.", flip(&rc, rc.len() - 64));
}

#[rustfmt::skip]
fn revocations_proofs_files(w: &World, b: &mut Builder) {
    b.kind = "revocation-list";
    let rl = w.revocations.to_bytes();
    b.ok("revocation-list", &[
        "Revocation list version 3 from the root, issued T-2h: mallory (seed 6, double spend, T-2h)",
        "and carol (seed 8, lost, T-2d), in ascending key order.",
    ], rl.clone());
    b.framing("revocation-list", "revocation list", "revocation list signature", &rl);
    b.err("revocation-list-unsorted", "decode: non-canonical encoding: revocations not strictly ascending",
        "The two 41-byte entries swapped.", [&rl[..53], &rl[94..135], &rl[53..94], &rl[135..]].concat());
    b.err("revocation-list-duplicate", "decode: non-canonical encoding: revocations not strictly ascending",
        "The first entry twice.", [&rl[..53], &rl[53..94], &rl[53..94], &rl[135..]].concat());
    b.err("revocation-list-count-too-large", "decode: revocations count 4294967295 is outside 0..=10000000",
        "Entry count 2^32-1.", set(&rl, 49, &be32(u32::MAX)));
    b.err("revocation-list-count-past-end", "decode: truncated: input ends inside revocations",
        "Entry count 4: more entries than bytes left, refused before allocating.", set(&rl, 49, &be32(4)));
    b.err("revocation-list-bad-reason", "decode: invalid revocation reason tag 0",
        "Reason tag 0.", set(&rl, 53 + 32, &[0]));
    let other = RevocationList::sign(&sk(9), 3, T - 7_200, w.revocations.entries.clone());
    b.err("revocation-list-other-issuer", "verify: from another issuer",
        "The same entries signed by another issuer's root (seed 9).", other.to_bytes());
    b.err("revocation-list-bad-signature", "verify: bad signature on revocation list",
        "One bit of the root signature flipped.", flip(&rl, rl.len() - 64));

    b.kind = "proof";
    let proof = w.proof.to_bytes();
    let (first, second) = match w.proof.transfers()[..] {
        [a, b] => (a.to_bytes(), b.to_bytes()),
        _ => unreachable!("a kind-1 proof has two transfers"),
    };
    b.ok("proof", &[
        "Alice spent the note twice: the transfer above, and another at T-600 s paying all 100.00 to",
        "the shop (counter 1 again, request \"request-shop-041\"); the transfer with the smaller id first.",
    ], proof.clone());
    b.framing("proof", "double-spend proof", "transfer signature", &proof);
    b.err("proof-out-of-order", "decode: non-canonical encoding: proof transfers not in ascending id order",
        "The two transfers swapped.", [&proof[..33], &second, &first].concat());
    b.err("proof-same-transfer", "decode: non-canonical encoding: proof transfers not in ascending id order",
        "The same transfer twice.", [&proof[..33], &first, &first].concat());
    let different = DoubleSpendProof::new(w.alice.public(), w.t1.clone(), w.t2.clone());
    b.err("proof-different-coins", "verify: proof transfers spend different coins",
        "Two transfers by alice of different coins (the note, then her change).", different.to_bytes());
    let wrong = DoubleSpendProof::new(w.shop.public(), w.t1.clone(), w.t1x.clone());
    b.err("proof-wrong-signer", "verify: bad signature on proof transfer",
        "Alice's two transfers, but the proof names the shop as the signer.", wrong.to_bytes());
    b.err("proof-bad-signature", "verify: bad signature on proof transfer",
        "One bit of the second transfer's signature flipped.", flip(&proof, proof.len() - 64));

    // Kind 2: collected, then spent. Layout: 0, kind 2, the statement (161 bytes), the transfer.
    let cp = w.collected_proof.to_bytes();
    let st = w.collection.to_bytes();
    let c1 = w.c1.to_bytes();
    b.ok("proof-collected-then-spent", &[
        "Kind 2, collected then spent: the issuer root's statement that bob's 12.00 to alice (the first",
        "output of bob's transfer) was collected for alice at her sync \"sync-alice-00001\", settled",
        "T+120 s (so its value is in her fresh note), then alice's transfer of that coin to the shop",
        "(counter 3, T+300 s, request \"request-shop-043\"), made from a backup of her wallet taken before",
        "the sync. Byte 0, kind 2, the statement, the transfer. Checked with the issuer's key set.",
    ], cp.clone());
    b.err("proof-collected-then-spent-truncated", "decode: truncated: input ends inside transfer signature",
        "The last byte is missing.", cp[..cp.len() - 1].to_vec());
    b.err("proof-collected-then-spent-trailing-byte", "decode: 1 trailing byte(s) after the message",
        "One byte too many at the end.", [&cp[..], &[0]].concat());
    b.err("proof-collected-then-spent-unknown-kind", "decode: invalid double-spend proof kind tag 3",
        "Kind tag 3, which no proof has.", set(&cp, 1, &[3]));
    b.err("proof-collected-then-spent-tagged-kind-1", "decode: invalid double-spend proof kind tag 1",
        "Kind tag 1: a kind-1 proof has only its original encoding (first byte 1), never a tagged one.",
        set(&cp, 1, &[1]));
    b.err("proof-collected-then-spent-statement-version", "decode: unknown collection statement version 2",
        "The statement's version byte 2.", set(&cp, 2, &[2]));
    b.err("proof-collected-then-spent-zero-value", "decode: invalid zero collected value",
        "The statement's value 0.", set(&cp, 2 + 33, &be64(0)));
    b.err("proof-collected-then-spent-weak-holder", "decode: collected holder is not a valid ed25519 public key",
        "The statement's holder is the identity point.", set(&cp, 2 + 41, &IDENTITY));
    b.err("proof-collected-then-spent-bad-statement-signature", "verify: bad signature on collection statement",
        "One bit of the issuer's signature on the statement flipped.", flip(&cp, 2 + st.len() - 64));
    let forged = DoubleSpendProof::collected_then_spent(w.collection.clone().signed(&sk(9)), w.c1.clone());
    b.err("proof-collected-then-spent-other-issuer", "verify: bad signature on collection statement",
        "The same statement signed by another issuer's root (seed 9).", forged.to_bytes());
    let other_coin = DoubleSpendProof::collected_then_spent(w.collection.clone(), w.t2.clone());
    b.err("proof-collected-then-spent-other-coin", "verify: proof transfer does not spend the collected coin",
        "The statement with alice's payment to the shop of another coin (her change).", other_coin.to_bytes());
    let shops = Collection { holder: w.shop.public(), ..w.collection.clone() }.signed(&w.root);
    let wrong = DoubleSpendProof::collected_then_spent(shops, w.c1.clone());
    b.err("proof-collected-then-spent-wrong-holder", "verify: bad signature on proof transfer",
        "A root-signed statement naming the shop as the holder, with alice's transfer.", wrong.to_bytes());
    b.err("proof-collected-then-spent-bad-transfer-signature", "verify: bad signature on proof transfer",
        "One bit of the transfer's signature flipped.", flip(&cp, 2 + st.len() + c1.len() - 64));

    b.kind = "file";
    let rf = w.request_file().to_file_bytes();
    b.ok("file-request", &[
        "The payment request above in a file: magic, version 1, kind 5, length, body, checksum.",
    ], rf.clone());
    b.ok("file-notes", &[
        "Issued notes for alice (kind 4): a note bundle holding the two notes above.",
    ], w.notes_file().to_file_bytes());
    b.ok("file-proof-collected-then-spent", &[
        "The collected-then-spent proof above in a file (kind 9, as for every double-spend proof).",
    ], TbFile::Proof(w.collected_proof.clone()).to_file_bytes());
    b.err("file-bad-magic", "decode: not a Tongbao file",
        "The magic starts with X.", set(&rf, 0, b"X"));
    b.err("file-header-only", "decode: malformed: truncated: input ends inside file header",
        "Magic and version only.", rf[..8].to_vec());
    b.err("file-unknown-version", "decode: malformed: unknown file version 2",
        "Container version 2.", set(&rf, 7, &[2]));
    b.err("file-unknown-kind", "decode: malformed: invalid file kind tag 200",
        "Kind 200, which no message has (checksum recomputed).", reseal(set(&rf, 8, &[200])));
    b.err("file-truncated", "decode: malformed: truncated: input ends inside file body",
        "The last byte is missing.", rf[..rf.len() - 1].to_vec());
    b.err("file-trailing-byte", "decode: malformed: 1 trailing byte(s) after the message",
        "One byte after the checksum.", [&rf[..], &[0]].concat());
    b.err("file-bad-checksum", "decode: file is corrupted (checksum mismatch)",
        "One bit of the body flipped.", flip(&rf, 13 + 40));
    b.err("file-bad-body", "decode: malformed: request memo is not valid UTF-8",
        "A checksum-valid file whose body does not decode (memo byte 0xff).",
        reseal(set(&rf, 13 + 58, &[0xff])));
}

/// Where each result of `resp` starts, and its length.
fn result_spans(resp: &SyncResponse) -> Vec<(usize, usize)> {
    let mut at = 93;
    resp.results
        .iter()
        .map(|r| {
            let len = 43 + r.proof.as_ref().map_or(0, |p| p.to_bytes().len());
            let span = (at, len);
            at += len;
            span
        })
        .collect()
}

/// A file of `kind` holding `body` as is, whatever it is.
fn raw_file(kind: u8, body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(body.len()).unwrap();
    reseal([b"TONGBAO", &[1u8, kind][..], &be32(len), body, &[0u8; 8]].concat())
}

#[rustfmt::skip]
fn sync_and_confirmations(w: &World, b: &mut Builder) {
    b.kind = "sync-request";
    let req = w.sync_request.to_bytes();
    b.ok("sync-request", &[
        "Alice syncs at T+60 s with sync id \"sync-alice-00001\", counter 3 (her last payment was 2), a top-up of",
        "100.00 and a redemption of 20.00. Chains, as her wallet builds them: her two held coins in",
        "coin-id order, each ending in a refresh transfer to the issuer root (counter 3, time T+60 s,",
        "request id = the sync id): mallory's 50.00 (note, mallory's transfer to her, refresh) and",
        "her 45.00 change (note, t1, t2, refresh); then the coin of her",
        "unreported payment to the shop, as paid. Then the proof of mallory's double spend, which she",
        "caught offline. Checked here by its signature, as the issuer's precheck does first.",
    ], req.clone());
    b.framing("sync-request", "sync request", "sync signature", &req);
    b.err("sync-request-weak-wallet", "decode: sync wallet is not a valid ed25519 public key",
        "The wallet is the identity point.", set(&req, 1, &IDENTITY));
    b.err("sync-request-too-many-coins", "decode: sync coins count 4294967295 is outside 0..=100000",
        "Chain count 2^32-1.", set(&req, 81, &be32(u32::MAX)));
    let proofs_at = req.len() - 64 - w.mallory_proof.to_bytes().len() - 4;
    b.err("sync-request-too-many-proofs", "decode: sync proofs count 10001 is outside 0..=10000",
        "Proof count 10001.", set(&req, proofs_at, &be32(10_001)));
    b.err("sync-request-bad-signature", "verify: bad signature on sync request",
        "One bit of the wallet signature flipped.", flip(&req, req.len() - 64));

    b.kind = "sync-response";
    let resp = w.sync_response.to_bytes();
    let spans = result_spans(&w.sync_response);
    let pos = |st: CoinStatus| w.sync_response.results.iter().position(|r| r.status == st).unwrap();
    let (acc, _) = spans[pos(CoinStatus::Accepted)];
    let (rej, _) = spans[pos(CoinStatus::Rejected)];
    b.ok("sync-response", &[
        "The issuer's answer at T+120 s, signed by the root: one result per chain in request order",
        "(mallory's coin rejected as a double spend with the proof, because the shop settled mallory's other",
        "transfer first; alice's change accepted; her payment already settled, by the shop's own sync),",
        "one fresh note of 137.00 (45.00 refreshed + 12.00 collected + 100.00 top-up - 20.00 redeemed;",
        "key 1, serial = the sync id, issued T+120 s), the id of bob's 12.00 to alice collected, 20.00",
        "redeemed, her renewed certificate (serial 2, counter base 3, T+120 s to T+120 s+90d), the key",
        "set and the revocation list above. Verified as alice's wallet does: root signature, key set",
        "successor, revocation list, the note and the certificate are hers and valid.",
    ], resp.clone());
    b.framing("sync-response", "sync response", "sync response signature", &resp);
    b.err("sync-response-bad-status", "decode: invalid result status tag 4",
        "The accepted result's status tag set to 4.", set(&resp, acc + 40, &[4]));
    b.err("sync-response-bad-reason", "decode: invalid reject reason tag 6",
        "The rejected result's reason tag set to 6.", set(&resp, rej + 41, &[6]));
    b.err("sync-response-rejected-without-reason",
        "decode: invalid reject reason must be given exactly for rejections",
        "The rejected result's reason set to 0 (none).", set(&resp, rej + 41, &[0]));
    b.err("sync-response-accepted-with-reason",
        "decode: invalid reject reason must be given exactly for rejections",
        "The accepted result given reason 2 (invalid).", set(&resp, acc + 41, &[2]));
    b.err("sync-response-bad-proof-tag", "decode: invalid result proof tag 2",
        "The accepted result's proof option tag set to 2.", set(&resp, acc + 42, &[2]));
    b.err("sync-response-bad-signature", "verify: bad signature on sync response",
        "One bit of the root signature flipped.", flip(&resp, resp.len() - 64));
    let other = w.sync_response.clone().signed(&sk(9));
    b.err("sync-response-other-issuer", "verify: bad signature on sync response",
        "The same response signed by another issuer's root (seed 9).", other.to_bytes());
    let old_keys = IssuerKeySet::sign(&w.root, 1, T - 60 * DAY, Policy::default(),
        w.keyset.keys.clone());
    let older = SyncResponse { keyset: old_keys, ..w.sync_response.clone() }.signed(&w.root);
    b.ok("sync-response-older-keyset", &[
        "The response above carrying key set version 1 (made T-60d) while the wallet holds version 2:",
        "the issuer's stored answer to a replayed sync id, after the wallet learnt a newer set. Accepted:",
        "root-signed, same root, genuinely older (lower version, made no later), and its keys verify the",
        "note and the certificate. The wallet keeps version 2.",
    ], older.to_bytes());
    let not_older = IssuerKeySet::sign(&w.root, 1, T, Policy::default(), w.keyset.keys.clone());
    let not_older = SyncResponse { keyset: not_older, ..w.sync_response.clone() }.signed(&w.root);
    b.err("sync-response-keyset-not-older",
        "verify: issuer key set version 1 is not older than the one held (2)",
        "Validly signed, but carrying key set version 1 made at T, after the held version 2 (T-30d).",
        not_older.to_bytes());
    let foreign = RevocationList::sign(&sk(9), 3, T - 7_200, w.revocations.entries.clone());
    let foreign = SyncResponse { revocations: foreign, ..w.sync_response.clone() }.signed(&w.root);
    b.err("sync-response-foreign-revocations", "verify: from another issuer",
        "Validly signed by the root, but carrying a revocation list signed by another issuer (seed 9).",
        foreign.to_bytes());

    b.kind = "confirmation";
    let conf = w.confirmation.to_bytes();
    b.ok("confirmation", &[
        "Had the shop settled alice's payment online instead: the issuer root's confirmation of it",
        "(payment id, payer alice, payee the shop, 30.00) at T+2 s. Checked against the payment above.",
    ], conf.clone());
    b.framing("confirmation", "confirmation", "confirmation signature", &conf);
    b.err("confirmation-weak-payee", "decode: confirmed payee is not a valid ed25519 public key",
        "The payee is the identity point.", set(&conf, 65, &IDENTITY));
    b.err("confirmation-bad-signature", "verify: bad signature on confirmation",
        "One bit of the root signature flipped.", flip(&conf, conf.len() - 64));
    let mut other = Confirmation { amount: Fen(3_001), ..w.confirmation.clone() };
    other.signature = w.root.sign(&other.signing_bytes());
    b.err("confirmation-other-payment", "verify: the confirmation is for another payment",
        "Validly signed by the root, but for 30.01 while the payment is 30.00.", other.to_bytes());
    let mut forged = w.confirmation.clone();
    forged.signature = sk(9).sign(&forged.signing_bytes());
    b.err("confirmation-other-issuer", "verify: bad signature on confirmation",
        "Signed by another issuer's root (seed 9).", forged.to_bytes());

    b.kind = "file";
    b.ok("file-sync-request", &["The sync request above in a file (kind 10), as carried to the issuer by hand."],
        w.sync_request_file().to_file_bytes());
    b.ok("file-sync-response", &["The sync response above in a file (kind 11)."],
        w.sync_response_file().to_file_bytes());
    let cf = w.confirmed_payment_file().to_file_bytes();
    b.ok("file-confirmed-payment", &[
        "A confirmed online payment (kind 12): the payment above (with its revocation list), then",
        "the confirmation. Both are checked: the confirmation against the payment, the payment as the shop receives it.",
    ], cf.clone());
    let pay = w.payment.to_bytes();
    b.err("file-confirmed-payment-no-confirmation", "decode: malformed: truncated: input ends inside confirmation",
        "Kind 12 holding only the payment.", raw_file(12, &pay));
    b.err("file-confirmed-payment-trailing-byte", "decode: malformed: 1 trailing byte(s) after the message",
        "Kind 12 with one byte after the confirmation (checksum recomputed).",
        raw_file(12, &[&pay[..], &conf[..], &[0]].concat()));
    b.err("file-confirmed-payment-bad-confirmation", "verify: bad signature on confirmation",
        "One bit of the confirmation's signature flipped (checksum recomputed).",
        reseal(flip(&cf, cf.len() - 8 - 64)));
}
