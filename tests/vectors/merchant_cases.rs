//! The merchant and cash-on-delivery vectors: till authorization, refund, till journal, delivery
//! order, delivery receipt, handoff manifest. Part of the `vectors` integration test; see
//! docs/protocol.md#test-vectors.

use super::cases::{Builder, DAY, T, World, flip, pk, set, sk};
use super::*;
use tongbao::protocol::cod_order::CodOrder;
use tongbao::protocol::delivery::DeliveryReceipt;
use tongbao::protocol::handoff::{HandoffEntry, HandoffManifest, Outcome};
use tongbao::protocol::journal::{CoinSettlement, JournalEntry, TillJournal};
use tongbao::protocol::refund::{Refund, refund_request_id};
use tongbao::protocol::till::TillAuthorization;

const REQ_TILL: Nonce = Nonce(*b"request-till-007");
const REQ_COD2: Nonce = Nonce(*b"request-shop-043");

/// Everything the merchant vectors are made of, built on the main story.
pub struct Merchants {
    /// The shop authorizes the till (seed 10), "front counter", at T-1d.
    pub authorization: TillAuthorization,
    /// The shop's certificate (merchant, class I), needed to pay the refund.
    pub shop_certificate: Certificate,
    /// The shop refunds 10.00 of alice's 30.00 at T+6 s from the coin she paid.
    pub refund: Refund,
    /// The till's journal 1 (T-1d to T+8 s): a request, a payment settled by its sync, a refund.
    pub journal: TillJournal,
    /// Delivery order JD-1001 for the courier (seed 11): the shop's request for 30.00.
    pub order: CodOrder,
    /// Delivery order JD-1002 for 45.00, refused at the door.
    pub order2: CodOrder,
    /// The courier's receipt to alice for JD-1001, at T+5 s.
    pub delivery: DeliveryReceipt,
    /// The courier's handoff at T+1h: JD-1001 paid (alice's payment), JD-1002 refused.
    pub handoff: HandoffManifest,
}

impl Merchants {
    pub fn new(w: &World) -> Merchants {
        let shop = &w.shop;
        let (a, s, till) = (w.alice.public(), shop.public(), pk(10));
        let authorization = TillAuthorization::sign(shop, till, "front counter", T - DAY);
        let shop_certificate = Certificate {
            key_id: 1,
            wallet: s,
            kind: WalletKind::Merchant,
            class: WalletClass::I,
            merchant: None,
            limits: WalletClass::I.default_limits(),
            serial: 1,
            counter_base: 0,
            issued_at: T - DAY,
            expires_at: T + 90 * DAY,
            signature: Signature([0; 64]),
        }
        .signed(&w.note_key);
        // The refund spends the shop's 30.00 coin: 10.00 back to alice, 20.00 change.
        let pid = w.payment.id();
        let bound = refund_request_id(&pid, 1);
        let outs = vec![
            Output {
                holder: a,
                value: Fen(1_000),
            },
            Output {
                holder: s,
                value: Fen(2_000),
            },
        ];
        let t = Transfer::sign(shop, w.coin.id(), outs, 1, T + 6, bound);
        let payment = Payment {
            certificate: shop_certificate.clone(),
            payee: a,
            request_id: bound,
            amount: Fen(1_000),
            counter: 1,
            offline_spent: Fen(1_000),
            time: T + 6,
            coins: vec![w.coin.extended(t, 0)],
            signature: Signature([0; 64]),
            revocations: None,
            keyset: None,
        }
        .signed(shop);
        let refund = Refund {
            original: pid,
            number: 1,
            payment,
        };
        // The till's journal: its sync response (alice's, addressed to the till and signed by
        // the root for the vector) is the evidence of its settled coin.
        let resp = SyncResponse {
            wallet: till,
            ..w.sync_response.clone()
        }
        .signed(&w.root);
        let accepted = resp
            .results
            .iter()
            .find(|r| r.status == CoinStatus::Accepted)
            .map(|r| r.coin)
            .unwrap_or_default();
        let sale = Id::hash(b"a payment to the till");
        let journal = TillJournal::sign(
            &sk(10),
            s,
            1,
            T - DAY,
            T + 8,
            vec![
                JournalEntry::Request {
                    request_id: REQ_TILL,
                    amount: Fen(1_250),
                    created_at: T - 600,
                    expires_at: T,
                    memo: "tea".into(),
                },
                JournalEntry::Payment {
                    payment_id: sale,
                    payer: a,
                    amount: Fen(1_250),
                    request_id: REQ_TILL,
                    time: T - 300,
                    coins: vec![(
                        Id::hash(b"the till's coin"),
                        CoinSettlement::Settled {
                            sync_id: resp.sync_id,
                            coin: accepted,
                            time: resp.time,
                        },
                    )],
                    confirmation: None,
                },
                JournalEntry::Refund {
                    payment_id: Id::hash(b"the till's refund"),
                    original: sale,
                    number: 1,
                    customer: a,
                    amount: Fen(250),
                    time: T,
                },
            ],
            vec![resp],
        );
        let courier = sk(11);
        let order = CodOrder::sign(shop, courier.public(), "JD-1001", T - 60, w.request.clone());
        let request2 =
            PaymentRequest::sign(shop, Fen(4_500), REQ_COD2, String::new(), T - 60, T + 540);
        let order2 = CodOrder::sign(shop, courier.public(), "JD-1002", T - 60, request2);
        let delivery = DeliveryReceipt::sign(&courier, &order, &w.payment, T + 5);
        let handoff = HandoffManifest::sign(
            &courier,
            s,
            T + 3_600,
            vec![
                HandoffEntry {
                    order: order.id(),
                    time: T + 5,
                    outcome: Outcome::Paid(Box::new(w.payment.clone())),
                },
                HandoffEntry {
                    order: order2.id(),
                    time: T + 20,
                    outcome: Outcome::Refused {
                        reason: "nobody home".into(),
                    },
                },
            ],
        );
        Merchants {
            authorization,
            shop_certificate,
            refund,
            journal,
            order,
            order2,
            delivery,
            handoff,
        }
    }
}

#[rustfmt::skip]
pub fn merchant_cases(w: &World, b: &mut Builder) {
    let m = Merchants::new(w);

    b.kind = "till-authorization";
    let ta = m.authorization.to_bytes();
    b.ok("till-authorization", &[
        "The shop (seed 4) authorizes the till (seed 10) as \"front counter\" at T-1d; checked against",
        "the till's registration above, as the issuer does before certifying it.",
    ], ta.clone());
    b.framing("till-authorization", "till authorization", "till authorization signature", &ta);
    b.err("till-authorization-bad-signature", "verify: bad signature on till authorization",
        "One bit of the merchant signature flipped.", flip(&ta, ta.len() - 64));
    b.err("till-authorization-empty-name", "decode: till name count 0 is outside 1..=40",
        "Name length 0.", [&ta[..65], &[0u8][..], &ta[66 + 13..]].concat());
    let other = TillAuthorization::sign(&w.shop, pk(5), "front counter", T - DAY);
    b.err("till-authorization-other-till", "verify: the till authorization is for till",
        "Validly signed, but for another key (bob's) than the registered till.", other.to_bytes());

    b.kind = "refund";
    let rf = m.refund.to_bytes();
    b.ok("refund", &[
        "The shop refunds 10.00 of alice's 30.00 payment at T+6 s: refund 1 of that payment id, then",
        "the refund payment (the shop's certificate, class I; its 30.00 coin spent 10.00 to alice,",
        "20.00 change), whose request id is refund_request_id(payment id, 1). Verified as alice receives it.",
    ], rf.clone());
    b.framing("refund", "refund", "payment key set", &rf);
    b.err("refund-unbound", "decode: invalid refund payment is not bound to the payment it refunds",
        "Refund number 2 for a payment bound to refund 1.", set(&rf, 33, &2u32.to_be_bytes()));
    b.err("refund-number-zero", "decode: invalid refund number 0",
        "Refund number 0.", set(&rf, 33, &0u32.to_be_bytes()));

    b.kind = "till-journal";
    let tj = m.journal.to_bytes();
    b.ok("till-journal", &[
        "The till's journal 1 from T-1d to T+8 s: its request \"request-till-007\" for 12.50, alice's",
        "payment of it with its one coin settled (the sync response it names rides in the journal,",
        "root-signed: alice's response above addressed to the till for this vector), and a 2.50 refund.",
        "Verified as the back office does: the till's signature and every settlement claim.",
    ], tj.clone());
    b.framing("till-journal", "till journal", "journal signature", &tj);
    b.err("till-journal-bad-signature", "verify: bad signature on till journal",
        "One bit of the till signature flipped.", flip(&tj, tj.len() - 64));
    let mut bad = m.journal.clone();
    if let JournalEntry::Payment { coins, .. } = &mut bad.entries[1]
        && let CoinSettlement::Settled { sync_id, coin, time } = coins[0].1
    {
        coins[0].1 = CoinSettlement::Rejected { sync_id, coin, time, reason: RejectReason::DoubleSpend };
    }
    let bad = TillJournal::sign(&sk(10), bad.merchant, 1, bad.from, bad.to, bad.entries, bad.responses);
    b.err("till-journal-false-claim", "verify: journal settlement claim: the named sync response does not say so",
        "Validly signed by the till, but claiming a rejection the response it names does not give.", bad.to_bytes());
    let swapped = TillJournal { entries: vec![m.journal.entries[1].clone(), m.journal.entries[0].clone(), m.journal.entries[2].clone()], ..m.journal.clone() };
    b.err("till-journal-unsorted", "decode: non-canonical encoding: journal entries not strictly ascending",
        "The request and payment entries swapped.", swapped.to_bytes());

    b.kind = "cod-order";
    let co = m.order.to_bytes();
    b.ok("cod-order", &[
        "Delivery order JD-1001 from the shop for the courier (seed 11) at T-60 s, carrying the shop's",
        "payment request above (30.00): the customer pays the merchant's key, never the courier's.",
    ], co.clone());
    b.framing("cod-order", "delivery order", "order signature", &co);
    b.err("cod-order-bad-signature", "verify: bad signature on delivery order",
        "One bit of the merchant signature flipped.", flip(&co, co.len() - 64));
    let redirected = CodOrder::sign(&sk(11), pk(4), "JD-1001", T - 60, w.request.clone());
    b.err("cod-order-pays-someone-else", "decode: invalid order request does not pay the merchant",
        "Signed by the courier as if it were the merchant: the request inside pays the shop, not the signer.",
        redirected.to_bytes());

    b.kind = "delivery-receipt";
    let dr = m.delivery.to_bytes();
    b.ok("delivery-receipt", &[
        "The courier's receipt to alice at T+5 s: order JD-1001 (its id), her payment of 30.00 to the shop.",
    ], dr.clone());
    b.framing("delivery-receipt", "delivery receipt", "delivery receipt signature", &dr);
    b.err("delivery-receipt-bad-signature", "verify: bad signature on delivery receipt",
        "One bit of the courier signature flipped.", flip(&dr, dr.len() - 64));

    b.kind = "handoff";
    let ho = m.handoff.to_bytes();
    b.ok("handoff", &[
        "The courier's handoff to the shop at T+1h, orders in ascending id order: JD-1001 paid (alice's",
        "payment, carried whole) and JD-1002 refused (\"nobody home\"). Verified as the shop does: the",
        "courier's signature, then each payment as the shop receives it.",
    ], ho.clone());
    b.framing("handoff", "handoff manifest", "handoff signature", &ho);
    b.err("handoff-bad-signature", "verify: bad signature on handoff manifest",
        "One bit of the courier signature flipped.", flip(&ho, ho.len() - 64));
    let mut dropped = m.handoff.clone();
    dropped.entries.retain(|e| matches!(e.outcome, Outcome::Refused { .. }));
    b.err("handoff-dropped-payment", "verify: bad signature on handoff manifest",
        "The paid order removed, the courier's signature kept.", dropped.to_bytes());
    let twice = HandoffManifest { entries: vec![m.handoff.entries[0].clone(), m.handoff.entries[0].clone()], ..m.handoff.clone() };
    b.err("handoff-counted-twice", "decode: non-canonical encoding: handoff orders not strictly ascending",
        "The same order listed twice.", twice.to_bytes());
    let _ = (&m.order2, &m.shop_certificate);
}
