//! Merchants, tills and cash on delivery, end to end through the real `wallet` and `issuer`
//! binaries (and the real `issuer serve` for online payments and syncs), with the clock pinned by
//! `TONGBAO_NOW`. See docs/merchants.md.
//!
//! The full day: a merchant with two tills takes thirty sales (offline against dynamic codes, on
//! its static code, and online), refunds two (one in part), sends ten cash-on-delivery orders out
//! with a courier (eight paid, one refused, one paid by a customer who spends the same coins
//! elsewhere first), and at the end of the day the courier syncs and hands over, the tills sync
//! and close, and the back office reconciles: every total to the fen, the double spend disputed,
//! the CSV well formed. A tampered manifest, a modified payment and a redirected payment are
//! refused on the way. A second test has a courier drop a payment from its manifest and hand the
//! same payment over twice.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "settlement/service.rs"]
mod service;

use std::path::{Path, PathBuf};

use common::{World, later, s};
use serde_json::Value;
use service::Service;
use tongbao::protocol::file::{TbFile, read_file, write_file};
use tongbao::protocol::handoff::Outcome;

/// The day starts when the issuer is set up, 09:30 UTC.
const DAY: &str = common::NOW;

fn at(secs: u64) -> String {
    later(DAY, secs)
}

/// A till of `merchant`: `wallet init --kind till --merchant`, `wallet till authorize` on the
/// back office, `issuer certify --authorization`, `wallet import`.
fn add_till(w: &World, name: &str, merchant: &str, label: &str) -> String {
    let maddr = w.address(merchant);
    let reg = w.file(name, "reg");
    let keys = w.keys();
    w.wallet(
        name,
        &[
            "init",
            "--kind",
            "till",
            "--merchant",
            &maddr,
            "--issuer-keys",
            s(&keys),
            "--out",
            s(&reg),
        ],
    )
    .ok();
    // Without the merchant's authorization the issuer refuses.
    let cert = w.file("cert", "cert");
    w.issuer(&["certify", s(&reg), "--class", "I", "--out", s(&cert)])
        .refused(&["authorization"]);
    let auth = w.file(name, "auth");
    w.wallet(
        merchant,
        &[
            "till",
            "authorize",
            s(&reg),
            "--name",
            label,
            "--out",
            s(&auth),
        ],
    )
    .ok();
    w.issuer(&[
        "certify",
        s(&reg),
        "--authorization",
        s(&auth),
        "--class",
        "I",
        "--out",
        s(&cert),
    ])
    .ok();
    w.wallet(name, &["import", s(&cert)]).ok();
    w.address(name)
}

/// `wallet request` on `till` at `now`: the request file.
fn request(w: &World, till: &str, amount: &str, memo: &str, extra: &[&str]) -> PathBuf {
    let f = w.file("request", "req");
    let mut args = vec![
        "request",
        "--amount",
        amount,
        "--memo",
        memo,
        "--out",
        s(&f),
        "--no-qr",
    ];
    args.extend_from_slice(extra);
    w.wallet(till, &args).ok();
    f
}

/// `wallet pay` on `payer` with extra arguments: the payment file.
fn pay(w: &World, payer: &str, args: &[&str]) -> PathBuf {
    let f = w.file("payment", "pay");
    let mut all = vec!["pay"];
    all.extend_from_slice(args);
    all.extend(["--out", s(&f)]);
    w.wallet(payer, &all).ok();
    f
}

fn fen(amount: u64) -> String {
    format!("{}.{:02}", amount / 100, amount % 100)
}

/// A minimal RFC 4180 reader: rows of fields (quotes, doubled quotes, commas and newlines inside
/// quotes).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, '\r') => {}
            (false, c) => field.push(c),
        }
    }
    assert!(!quoted, "unterminated quote in the CSV");
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

fn total(v: &Value, what: &str) -> u64 {
    v["totals"][what]
        .as_u64()
        .unwrap_or_else(|| panic!("{what}: {v}"))
}

/// The reconciliation item with this reference.
fn item<'a>(report: &'a Value, reference: &str) -> &'a Value {
    report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["reference"] == reference)
        .unwrap_or_else(|| panic!("no item {reference}: {report}"))
}

#[test]
fn a_full_day_of_two_tills_and_cash_on_delivery_reconciles_to_the_fen() {
    let mut w = World::new();
    w.now = at(0);
    let shop = w.add_wallet("shop", "merchant", "I");
    let tills = ["t1", "t2"];
    add_till(&w, "t1", "shop", "front counter");
    add_till(&w, "t2", "shop", "back counter");
    let list = w.wallet("shop", &["till", "list", "--json"]).ok().json();
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    let customers: Vec<String> = (0..6).map(|i| format!("c{i}")).collect();
    for c in &customers {
        w.add_wallet(c, "personal", "II");
        w.fund(c, "1000.00");
    }
    let courier = w.add_wallet("courier", "courier", "II");
    let other = w.add_wallet("other", "merchant", "I");
    w.add_wallet("x", "personal", "II");
    w.fund("x", "77.90");

    // ---- Cash-on-delivery orders go out first thing: ten orders for the courier.
    let amounts: Vec<u64> = (0..10).map(|k| 5000 + 310 * k).collect();
    let mut orders = Vec::new();
    for (k, a) in amounts.iter().enumerate() {
        w.now = at(1800 + k as u64);
        let f = w.file("order", "cod");
        let id = format!("O-{}", 1001 + k);
        w.wallet(
            "shop",
            &[
                "cod",
                "create",
                "--order",
                &id,
                "--amount",
                &fen(*a),
                "--courier",
                &courier,
                "--out",
                s(&f),
            ],
        )
        .ok();
        w.wallet("courier", &["cod", "load", s(&f)]).ok();
        orders.push((id, f));
    }
    // A second load of the same order is a replay.
    w.wallet("courier", &["cod", "load", s(&orders[0].1)])
        .refused(&["already loaded"]);

    // ---- Thirty sales on two tills: dynamic codes offline, the static code, some online.
    let mut sale_ids = Vec::new();
    let mut sales_total = 0u64;
    let statics: Vec<String> = tills
        .iter()
        .map(|t| {
            let v = w
                .wallet(t, &["code", "--memo", "Tongbao Noodles", "--json"])
                .ok()
                .json();
            v["code"].as_str().unwrap().to_string()
        })
        .collect();
    // The static code prints as a QR code and as text; asking again gives the same code.
    let shown = w.wallet("t1", &["code"]).ok().stdout;
    assert!(shown.contains('\u{2588}'), "a QR code is drawn: {shown}");
    assert!(shown.contains(&statics[0]), "{shown}");
    for i in 0..30u64 {
        w.now = at(3600 + 600 * i);
        let till = tills[(i % 2) as usize];
        let customer = &customers[(i % 6) as usize];
        let amount = 1000 + 137 * i;
        sales_total += amount;
        let payment = if i % 5 == 3 {
            // The customer scans the static code and enters the amount.
            pay(
                &w,
                customer,
                &[
                    "--request",
                    &statics[(i % 2) as usize],
                    "--amount",
                    &fen(amount),
                ],
            )
        } else if i % 7 == 6 {
            // Online: settled at the issuer now, final for the till.
            let req = request(&w, till, &fen(amount), &format!("sale {i}"), &[]);
            let svc = Service::start(&w, &w.now);
            let p = pay(
                &w,
                customer,
                &["--request", s(&req), "--online", "--issuer", &svc.url],
            );
            svc.stop();
            p
        } else {
            let req = request(&w, till, &fen(amount), &format!("sale {i}"), &[]);
            pay(&w, customer, &["--request", s(&req)])
        };
        let v = w
            .wallet(till, &["receive", s(&payment), "--json"])
            .ok()
            .json();
        assert_eq!(v["amount_fen"], amount, "{v}");
        sale_ids.push((till, v["payment_id"].as_str().unwrap().to_string(), amount));
    }
    // A code paid twice: the second payment of a dynamic code is refused by the till.
    let req = request(&w, "t2", "5.00", "once", &[]);
    let p1 = pay(&w, "c0", &["--request", s(&req)]);
    let p2 = pay(&w, "c1", &["--request", s(&req)]);
    w.wallet("t2", &["receive", s(&p1)]).ok();
    sales_total += 500;
    w.wallet("t2", &["receive", s(&p2)])
        .refused(&["already paid"]);
    // c1 is left with a payment nobody took: it stays in its outbox (and settles at its sync).

    // One code that expires unpaid, one still open at the end of the day.
    w.now = at(3 * 3600);
    request(&w, "t2", "66.00", "never paid", &["--expires-in", "60s"]);
    w.now = at(5 * 3600 + 3000);
    request(&w, "t1", "88.00", "paid tomorrow", &["--expires-in", "1d"]);

    // ---- Two refunds on till 1: sale 0 in full, sale 2 in part (twice would be too much).
    w.now = at(6 * 3600);
    let (t, full, full_amount) = sale_ids[0].clone();
    assert_eq!(t, "t1");
    let rf = w.file("refund", "tb");
    let v = w
        .wallet("t1", &["refund", &full[..10], "--out", s(&rf), "--json"])
        .ok()
        .json();
    assert_eq!(v["amount_fen"], full_amount, "{v}");
    w.wallet("c0", &["receive", s(&rf)]).ok();
    let rf2 = w.file("refund", "tb");
    w.wallet(
        "t1",
        &["refund", &full, "--amount", "0.01", "--out", s(&rf2)],
    )
    .refused(&["already refunded in full"]);
    let (_, part, part_amount) = sale_ids[2].clone();
    let v = w
        .wallet(
            "t1",
            &[
                "refund",
                &part,
                "--amount",
                "4.00",
                "--out",
                s(&rf2),
                "--json",
            ],
        )
        .ok()
        .json();
    assert_eq!(
        (v["refunded_fen"].as_u64(), v["paid_fen"].as_u64()),
        (Some(400), Some(part_amount))
    );
    w.wallet("c2", &["receive", s(&rf2)]).ok();
    let too_much = w.file("refund", "tb");
    let before = w.snapshot("t1");
    w.wallet(
        "t1",
        &[
            "refund",
            &part,
            "--amount",
            &fen(part_amount),
            "--out",
            s(&too_much),
        ],
    )
    .refused(&["more than"]);
    w.snapshot("t1").assert_same_as(&before, "an over-refund");
    assert!(!too_much.exists());
    let refunded = full_amount + 400;

    // ---- Deliveries in the afternoon.
    for k in 0..8usize {
        w.now = at(6 * 3600 + 1800 + 600 * k as u64);
        let (id, _) = &orders[k];
        let shown = w.wallet("courier", &["cod", "show", id]).ok().stdout;
        assert!(
            shown.contains('\u{2588}'),
            "the door shows a QR code: {shown}"
        );
        let v = w
            .wallet("courier", &["cod", "show", id, "--json"])
            .ok()
            .json();
        let code = v["code"].as_str().unwrap().to_string();
        assert!(shown.contains(&code));
        let customer = &customers[k % 6];
        let p = pay(&w, customer, &["--request", &code]);
        if k == 0 {
            // A modified payment (the amount raised, the customer's signature kept) is refused.
            let mut file = read_file(&p).unwrap();
            if let TbFile::Payment(pm) = &mut file {
                pm.amount = tongbao::Fen(pm.amount.0 + 1);
            }
            let forged = w.file("forged", "pay");
            write_file(&forged, &file).unwrap();
            let before = w.snapshot("courier");
            let r = w.file("delivery", "receipt");
            w.wallet(
                "courier",
                &["cod", "collect", s(&forged), "--receipt-out", s(&r)],
            )
            .refused(&[]);
            w.snapshot("courier")
                .assert_same_as(&before, "a modified payment");
            assert!(!r.exists());
        }
        let r = w.file("delivery", "receipt");
        let v = w
            .wallet(
                "courier",
                &["cod", "collect", s(&p), "--receipt-out", s(&r), "--json"],
            )
            .ok()
            .json();
        assert_eq!(v["merchant"], shop.as_str());
        assert_eq!(v["amount_fen"], amounts[k]);
        let rv = w
            .wallet(customer, &["inspect", s(&r), "--json"])
            .ok()
            .json();
        assert_eq!(rv["kind"], "delivery receipt", "{rv}");
        if k == 1 {
            // The same payment again: a replay.
            let r2 = w.file("delivery", "receipt");
            w.wallet(
                "courier",
                &["cod", "collect", s(&p), "--receipt-out", s(&r2)],
            )
            .refused(&["already paid"]);
        }
    }
    // The courier never holds the value.
    assert_eq!(w.total_fen("courier"), 0);
    // A redirected payment: the courier shows its own code for order 9's amount; refused.
    w.now = at(8 * 3600);
    let own = request(&w, "courier", &fen(amounts[8]), "O-1009", &[]);
    let redirected = pay(&w, "c3", &["--request", s(&own)]);
    let r = w.file("delivery", "receipt");
    let before = w.snapshot("courier");
    w.wallet(
        "courier",
        &["cod", "collect", s(&redirected), "--receipt-out", s(&r)],
    )
    .refused(&["does not pay the code of any order"]);
    w.snapshot("courier")
        .assert_same_as(&before, "a redirected payment");
    // Order 9 refused at the door.
    w.wallet(
        "courier",
        &["cod", "refuse", "O-1009", "--reason", "not at home twice"],
    )
    .ok();
    // Order 10: the customer pays, then (rolled back) spends the same coins at another shop.
    w.now = at(8 * 3600 + 600);
    w.copy_wallet("x", "x-backup");
    let v = w
        .wallet("courier", &["cod", "show", "O-1010", "--json"])
        .ok()
        .json();
    let p = pay(&w, "x", &["--request", v["code"].as_str().unwrap()]);
    let r = w.file("delivery", "receipt");
    w.wallet(
        "courier",
        &["cod", "collect", s(&p), "--receipt-out", s(&r)],
    )
    .ok();
    w.restore_wallet("x", "x-backup");
    let elsewhere = pay(&w, "x", &["--to", &other, "--amount", &fen(amounts[9])]);
    w.wallet("other", &["receive", s(&elsewhere)]).ok();

    // ---- End of the day: the other shop syncs first; the courier syncs, then hands over.
    w.now = at(11 * 3600);
    let svc = Service::start(&w, &w.now);
    let v = w
        .wallet("other", &["sync", "--issuer", &svc.url, "--json"])
        .ok()
        .json();
    assert_eq!(v["balance_fen"], amounts[9], "{v}");
    let v = w
        .wallet("courier", &["sync", "--issuer", &svc.url, "--json"])
        .ok()
        .json();
    // The courier brought eight chains for the shop: seven settle, the double spend does not.
    let rejected = v["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{v}");
    assert_eq!(rejected[0]["reason"], "double-spend");
    assert_eq!(v["balance_fen"], 0, "the courier is never credited: {v}");

    let manifest = w.file("handoff", "tb");
    let v = w
        .wallet(
            "courier",
            &["cod", "handoff", "--out", s(&manifest), "--json"],
        )
        .ok()
        .json();
    assert_eq!(
        (v["orders"].as_u64(), v["paid"].as_u64()),
        (Some(10), Some(9)),
        "{v}"
    );
    // A tampered manifest: the courier drops the double-spent order and lowers a payment.
    let mut file = read_file(&manifest).unwrap();
    if let TbFile::Handoff(m) = &mut file {
        m.entries.pop();
        if let Outcome::Paid(p) = &mut m.entries[0].outcome {
            p.amount = tongbao::Fen(p.amount.0 - 100);
        }
    }
    let tampered = w.file("handoff-tampered", "tb");
    write_file(&tampered, &file).unwrap();
    let before = w.snapshot("shop");
    w.wallet("shop", &["cod", "accept", s(&tampered)])
        .refused(&["bad signature on handoff manifest"]);
    w.snapshot("shop")
        .assert_same_as(&before, "a tampered manifest");
    // Truncated and bit-flipped manifests.
    let bytes = std::fs::read(&manifest).unwrap();
    let cut = w.file("handoff-cut", "tb");
    std::fs::write(&cut, &bytes[..bytes.len() - 9]).unwrap();
    w.wallet("shop", &["cod", "accept", s(&cut)])
        .refused(&["truncated"]);
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 1;
    let flip = w.file("handoff-flip", "tb");
    std::fs::write(&flip, &flipped).unwrap();
    w.wallet("shop", &["cod", "accept", s(&flip)])
        .refused(&["corrupted"]);
    // Not for this merchant.
    w.wallet("other", &["cod", "accept", s(&manifest)])
        .refused(&["not this one"]);
    w.snapshot("shop").assert_same_as(&before, "bad manifests");

    let v = w
        .wallet("shop", &["cod", "accept", s(&manifest), "--json"])
        .ok()
        .json();
    let paid: u64 = amounts[..8].iter().sum();
    assert_eq!(v["credited_fen"], paid + amounts[9], "{v}");
    w.wallet("shop", &["cod", "accept", s(&manifest)])
        .refused(&["already accepted"]);

    // The back office and the tills sync; the tills close.
    let v = w
        .wallet("shop", &["sync", "--issuer", &svc.url, "--json"])
        .ok()
        .json();
    let rejected = v["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{v}");
    assert_eq!(rejected[0]["value_fen"], amounts[9]);
    assert_eq!(v["balance_fen"], paid, "{v}");
    for t in tills {
        let v = w
            .wallet(t, &["sync", "--issuer", &svc.url, "--json"])
            .ok()
            .json();
        assert_eq!(v["rejected"].as_array().unwrap().len(), 0, "{v}");
    }
    svc.stop();
    w.now = at(11 * 3600 + 300);
    let journals: Vec<PathBuf> = tills
        .iter()
        .map(|t| {
            let j = w.file(&format!("journal-{t}"), "tb");
            w.wallet(t, &["till", "close", "--out", s(&j)]).ok();
            j
        })
        .collect();
    // A journal is for its own merchant only.
    w.wallet(
        "other",
        &["till", "reconcile", "--journal", s(&journals[0])],
    )
    .refused(&["not this one"]);

    // ---- Reconciliation.
    w.now = at(11 * 3600 + 600);
    let table = w
        .wallet(
            "shop",
            &[
                "till",
                "reconcile",
                "--journal",
                s(&journals[0]),
                "--journal",
                s(&journals[1]),
            ],
        )
        .ok()
        .stdout;
    println!("{table}");
    let report = w
        .wallet("shop", &["till", "reconcile", "--format", "json"])
        .ok()
        .json();
    let cod_paid: u64 = amounts[..8].iter().sum();
    let expected = sales_total + 8800 + cod_paid + amounts[9];
    let collected = sales_total + cod_paid + amounts[9];
    assert_eq!(total(&report, "expected_fen"), expected, "{report}");
    assert_eq!(total(&report, "collected_fen"), collected);
    assert_eq!(total(&report, "settled_fen"), sales_total + cod_paid);
    assert_eq!(total(&report, "pending_fen"), 0);
    assert_eq!(total(&report, "disputed_fen"), amounts[9]);
    assert_eq!(total(&report, "refunded_fen"), refunded);
    assert_eq!(total(&report, "outstanding_fen"), 8800);
    assert_eq!(total(&report, "net_fen"), collected - amounts[9] - refunded);
    assert_eq!(
        total(&report, "collected_fen"),
        total(&report, "settled_fen")
            + total(&report, "pending_fen")
            + total(&report, "disputed_fen")
    );
    assert_eq!(total(&report, "discrepancies"), 1, "{report}");
    // 31 sales, 10 orders, 2 requests never paid.
    assert_eq!(total(&report, "items"), 43);
    let items = report["items"].as_array().unwrap();
    assert_eq!(
        items[0]["reference"], "O-1010",
        "discrepancies first: {report}"
    );
    assert_eq!(items[0]["status"], "double-spent");
    assert_eq!(items[0]["disputed_fen"], amounts[9]);
    assert_eq!(item(&report, "O-1009")["status"], "refused");
    assert_eq!(item(&report, "O-1001")["status"], "settled");
    let statuses: Vec<&str> = items
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    for want in [
        "open",
        "expired",
        "settled",
        "refunded",
        "refused",
        "double-spent",
    ] {
        assert!(statuses.contains(&want), "a {want} item: {statuses:?}");
    }
    let full_item = items
        .iter()
        .find(|i| i["payment_id"] == full.as_str())
        .unwrap();
    assert_eq!(full_item["status"], "refunded");
    let part_item = items
        .iter()
        .find(|i| i["payment_id"] == part.as_str())
        .unwrap();
    assert_eq!(
        (
            part_item["status"].as_str(),
            part_item["refunded_fen"].as_u64()
        ),
        (Some("settled"), Some(400))
    );
    for needle in [
        "double spent",
        "DISCREPANCIES: 1",
        "front counter",
        "back counter",
    ] {
        assert!(table.contains(needle), "{needle}: {table}");
    }
    assert!(
        table.contains(&format!(
            "net (collected - disputed - refunded) ¥{}",
            fen(collected - amounts[9] - refunded)
        )),
        "{table}"
    );

    // The CSV parses: a header, one row per item, the totals row; the columns add up.
    let csv = w
        .wallet("shop", &["till", "reconcile", "--format", "csv"])
        .ok()
        .stdout;
    let rows = parse_csv(&csv);
    assert_eq!(rows.len(), 1 + 43 + 1, "{csv}");
    let header = &rows[0];
    assert!(rows.iter().all(|r| r.len() == header.len()), "{csv}");
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    for name in [
        "expected_fen",
        "collected_fen",
        "settled_fen",
        "disputed_fen",
        "refunded_fen",
    ] {
        let sum: u64 = rows[1..rows.len() - 1]
            .iter()
            .map(|r| r[col(name)].parse::<u64>().unwrap())
            .sum();
        assert_eq!(
            sum,
            rows[rows.len() - 1][col(name)].parse::<u64>().unwrap(),
            "{name}"
        );
        assert_eq!(sum, total(&report, name), "{name}");
    }
    assert_eq!(rows[1][col("status")], "double-spent");
    // A period with nothing in it.
    let v = w
        .wallet(
            "shop",
            &[
                "till",
                "reconcile",
                "--from",
                "2026-11-22",
                "--format",
                "json",
            ],
        )
        .ok()
        .json();
    assert_eq!(total(&v, "items"), 0, "{v}");
    let v = w
        .wallet(
            "shop",
            &[
                "till",
                "reconcile",
                "--to",
                "2026-11-21",
                "--format",
                "json",
            ],
        )
        .ok()
        .json();
    assert_eq!(total(&v, "collected_fen"), collected, "{v}");
}

/// A courier who drops a payment from its manifest leaves the order missing; handing the same
/// payment over again never counts it twice; bad inputs at the door change nothing.
#[test]
fn a_courier_cannot_drop_or_double_count_and_bad_input_changes_nothing() {
    let w = World::new();
    w.add_wallet("shop", "merchant", "I");
    let courier = w.add_wallet("courier", "courier", "II");
    let other_courier = w.add_wallet("other-courier", "courier", "II");
    w.add_wallet("alice", "personal", "II");
    w.fund("alice", "500.00");
    let mut orders = Vec::new();
    for (id, amount) in [("A", "10.00"), ("B", "20.00"), ("C", "30.00")] {
        let f = w.file("order", "cod");
        w.wallet(
            "shop",
            &[
                "cod",
                "create",
                "--order",
                id,
                "--amount",
                amount,
                "--courier",
                &courier,
                "--out",
                s(&f),
            ],
        )
        .ok();
        orders.push(f);
    }
    // The same order number twice; an order for another courier.
    let f = w.file("order", "cod");
    w.wallet(
        "shop",
        &[
            "cod",
            "create",
            "--order",
            "A",
            "--amount",
            "1",
            "--courier",
            &courier,
            "--out",
            s(&f),
        ],
    )
    .refused(&["already exists"]);
    w.wallet("other-courier", &["cod", "load", s(&orders[0])])
        .refused(&["not this one"]);
    let _ = other_courier;
    // Bad order files.
    let bytes = std::fs::read(&orders[0]).unwrap();
    let cut = w.file("cut", "cod");
    std::fs::write(&cut, &bytes[..bytes.len() - 1]).unwrap();
    w.wallet("courier", &["cod", "load", s(&cut)]).refused(&[]);

    w.wallet("courier", &["cod", "load", s(&orders[0])]).ok();
    w.copy_wallet("courier", "courier-old");
    w.wallet("courier", &["cod", "load", s(&orders[1])]).ok();
    w.wallet("courier", &["cod", "load", s(&orders[2])]).ok();
    let code = |id: &str| {
        w.wallet("courier", &["cod", "show", id, "--json", "--no-qr"])
            .ok()
            .json()["code"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let pa = pay(&w, "alice", &["--request", &code("A")]);
    let pb = pay(&w, "alice", &["--request", &code("B")]);
    for p in [&pa, &pb] {
        let r = w.file("delivery", "receipt");
        w.wallet("courier", &["cod", "collect", s(p), "--receipt-out", s(&r)])
            .ok();
    }
    w.wallet(
        "courier",
        &["cod", "refuse", "C", "--reason", "damaged box"],
    )
    .ok();
    // Bad payment files at the door change nothing.
    let before = w.snapshot("courier");
    let bytes = std::fs::read(&pa).unwrap();
    for (name, data) in [
        ("truncated", bytes[..bytes.len() - 1].to_vec()),
        ("flipped", {
            let mut b = bytes.clone();
            b[40] ^= 4;
            b
        }),
    ] {
        let f = w.file(name, "pay");
        std::fs::write(&f, &data).unwrap();
        let r = w.file("delivery", "receipt");
        w.wallet(
            "courier",
            &["cod", "collect", s(&f), "--receipt-out", s(&r)],
        )
        .refused(&[]);
        assert!(!r.exists());
    }
    w.snapshot("courier")
        .assert_same_as(&before, "bad payment files");

    // The old copy of the courier (it never saw B or C) hands over A only: B and C are missing.
    let r = w.file("delivery", "receipt");
    w.wallet(
        "courier-old",
        &["cod", "collect", s(&pa), "--receipt-out", s(&r)],
    )
    .ok();
    let dropped = w.file("handoff", "tb");
    w.wallet("courier-old", &["cod", "handoff", "--out", s(&dropped)])
        .ok();
    let v = w
        .wallet("shop", &["cod", "accept", s(&dropped), "--json"])
        .ok()
        .json();
    assert_eq!(v["credited_fen"], 1000, "{v}");
    let report = w
        .wallet("shop", &["till", "reconcile", "--format", "json"])
        .ok()
        .json();
    assert_eq!(item(&report, "B")["status"], "missing", "{report}");
    assert_eq!(item(&report, "C")["status"], "missing");
    assert_eq!(item(&report, "A")["status"], "paid-offline");
    assert_eq!(total(&report, "discrepancies"), 2);
    assert_eq!(total(&report, "outstanding_fen"), 5000);

    // The real courier's manifest: A again (not counted twice), B paid, C refused.
    let full = w.file("handoff", "tb");
    w.wallet("courier", &["cod", "handoff", "--out", s(&full)])
        .ok();
    let v = w
        .wallet("shop", &["cod", "accept", s(&full), "--json"])
        .ok()
        .json();
    assert_eq!(v["credited_fen"], 2000, "{v}");
    assert_eq!(w.total_fen("shop"), 3000);
    let before = w.snapshot("shop");
    w.wallet("shop", &["cod", "accept", s(&full)])
        .refused(&["already accepted"]);
    w.snapshot("shop")
        .assert_same_as(&before, "a replayed handoff");
    let report = w
        .wallet("shop", &["till", "reconcile", "--format", "json"])
        .ok()
        .json();
    assert_eq!(item(&report, "B")["status"], "paid-offline", "{report}");
    assert_eq!(item(&report, "C")["status"], "refused");
    assert_eq!(total(&report, "collected_fen"), 3000);
    assert_eq!(total(&report, "pending_fen"), 3000);
    assert_eq!(total(&report, "discrepancies"), 0);
    // The handoff file is for the merchant's wallet only; other kinds refuse it.
    w.wallet("alice", &["cod", "accept", s(&full)])
        .refused(&["merchant"]);
    assert!(Path::new(&full).exists());
}

/// Bad till, journal and refund files are refused with one line, and nothing changes.
#[test]
fn bad_till_journal_and_refund_files_change_nothing() {
    let w = World::new();
    w.add_wallet("shop", "merchant", "I");
    w.add_wallet("rival", "merchant", "I");
    add_till(&w, "t1", "shop", "front counter");
    w.add_wallet("alice", "personal", "II");
    w.add_wallet("bob", "personal", "II");
    w.fund("alice", "100.00");

    // Authorizations: only the merchant a till names, only tills, once.
    let keys = w.keys();
    let till_reg = |name: &str, merchant: &str| {
        let reg = w.file(name, "reg");
        let m = w.address(merchant);
        w.wallet(
            name,
            &[
                "init",
                "--kind",
                "till",
                "--merchant",
                &m,
                "--issuer-keys",
                s(&keys),
                "--out",
                s(&reg),
            ],
        )
        .ok();
        reg
    };
    let reg = till_reg("t3", "rival");
    let shop_reg = till_reg("t4", "shop");
    let before = w.snapshot("shop");
    let auth = w.file("t3", "auth");
    w.wallet(
        "shop",
        &[
            "till",
            "authorize",
            s(&reg),
            "--name",
            "x",
            "--out",
            s(&auth),
        ],
    )
    .refused(&["not a till of this merchant"]);
    let personal = w.register("p", "personal");
    w.wallet(
        "shop",
        &[
            "till",
            "authorize",
            s(&personal),
            "--name",
            "x",
            "--out",
            s(&auth),
        ],
    )
    .refused(&["not a till of this merchant"]);
    w.snapshot("shop")
        .assert_same_as(&before, "refused authorizations");
    assert!(!auth.exists());
    // The rival's authorization does not certify the shop's till registration, and vice versa.
    w.wallet(
        "rival",
        &[
            "till",
            "authorize",
            s(&reg),
            "--name",
            "r",
            "--out",
            s(&auth),
        ],
    )
    .ok();
    w.wallet(
        "rival",
        &[
            "till",
            "authorize",
            s(&reg),
            "--name",
            "r",
            "--out",
            s(&w.file("again", "auth")),
        ],
    )
    .refused(&["already authorized"]);
    let cert = w.file("cert", "cert");
    w.issuer(&[
        "certify",
        s(&shop_reg),
        "--authorization",
        s(&auth),
        "--class",
        "I",
        "--out",
        s(&cert),
    ])
    .refused(&["not this registration"]);
    w.issuer(&[
        "certify",
        s(&personal),
        "--authorization",
        s(&auth),
        "--class",
        "I",
        "--out",
        s(&cert),
    ])
    .refused(&["authorization is for a till"]);

    // A sale and a refund on the till.
    let req = request(&w, "t1", "30.00", "lunch", &[]);
    let p = pay(&w, "alice", &["--request", s(&req)]);
    let v = w.wallet("t1", &["receive", s(&p), "--json"]).ok().json();
    let pid = v["payment_id"].as_str().unwrap().to_string();
    let rf = w.file("refund", "tb");
    w.wallet("t1", &["refund", &pid, "--amount", "7.50", "--out", s(&rf)])
        .ok();
    // For another wallet, truncated, replayed.
    let before = w.snapshot("bob");
    w.wallet("bob", &["receive", s(&rf)])
        .refused(&["not this wallet"]);
    w.snapshot("bob")
        .assert_same_as(&before, "someone else's refund");
    let bytes = std::fs::read(&rf).unwrap();
    let cut = w.file("refund-cut", "tb");
    std::fs::write(&cut, &bytes[..bytes.len() - 1]).unwrap();
    let before = w.snapshot("alice");
    w.wallet("alice", &["receive", s(&cut)])
        .refused(&["truncated"]);
    w.snapshot("alice")
        .assert_same_as(&before, "a truncated refund");
    let v = w
        .wallet("alice", &["receive", s(&rf), "--json"])
        .ok()
        .json();
    assert_eq!(v["refund_of"], pid.as_str(), "{v}");
    let before = w.snapshot("alice");
    w.wallet("alice", &["receive", s(&rf)]).refused(&["replay"]);
    w.snapshot("alice")
        .assert_same_as(&before, "a replayed refund");
    // Refunds of a payment the till never received, or of nothing.
    let nothing = w.file("refund", "tb");
    w.wallet("t1", &["refund", "00ff", "--out", s(&nothing)])
        .refused(&["not found"]);
    w.wallet("t1", &["refund", "zz", "--out", s(&nothing)])
        .refused(&["hex digits"]);

    // Journals: a tampered one, a truncated one, one from a till that is not the shop's.
    let j = w.file("journal", "tb");
    w.wallet("t1", &["till", "close", "--out", s(&j)]).ok();
    let mut file = read_file(&j).unwrap();
    if let TbFile::TillJournal(tj) = &mut file {
        tj.entries.retain(|e| e.sort_key().0 != 3);
    }
    let tampered = w.file("journal-tampered", "tb");
    write_file(&tampered, &file).unwrap();
    let before = w.snapshot("shop");
    w.wallet("shop", &["till", "reconcile", "--journal", s(&tampered)])
        .refused(&["bad signature on till journal"]);
    let bytes = std::fs::read(&j).unwrap();
    let cut = w.file("journal-cut", "tb");
    std::fs::write(&cut, &bytes[..bytes.len() - 1]).unwrap();
    w.wallet("shop", &["till", "reconcile", "--journal", s(&cut)])
        .refused(&["truncated"]);
    w.wallet("rival", &["till", "reconcile", "--journal", s(&j)])
        .refused(&["not this one"]);
    // A good journal beside a bad one: neither is kept.
    w.wallet(
        "shop",
        &[
            "till",
            "reconcile",
            "--journal",
            s(&j),
            "--journal",
            s(&tampered),
        ],
    )
    .refused(&["bad signature on till journal"]);
    let v = w
        .wallet("shop", &["till", "reconcile", "--format", "json"])
        .ok()
        .json();
    assert_eq!(total(&v, "items"), 0, "{v}");
    assert!(
        v["notes"][0]
            .as_str()
            .unwrap()
            .contains("no journal from till front counter")
    );
    w.snapshot("shop").assert_same_as(&before, "bad journals");
    // The good journal, twice (the second time it is already there).
    for _ in 0..2 {
        let v = w
            .wallet(
                "shop",
                &["till", "reconcile", "--journal", s(&j), "--format", "json"],
            )
            .ok()
            .json();
        assert_eq!(total(&v, "collected_fen"), 3000, "{v}");
        assert_eq!(total(&v, "pending_fen"), 3000);
        assert_eq!(total(&v, "refunded_fen"), 750);
        assert_eq!(total(&v, "net_fen"), 2250);
        assert_eq!(item(&v, &req_short(&w, &pid))["status"], "paid-offline");
    }
    // Wrong kinds of wallet.
    w.wallet("alice", &["till", "reconcile"])
        .refused(&["back office"]);
    w.wallet("alice", &["till", "close", "--out", s(&w.file("j", "tb"))])
        .refused(&["only a till closes"]);
    w.wallet("alice", &["code"]).refused(&["merchant and till"]);
}

/// The reference of the request item a payment paid (its request id, short).
fn req_short(w: &World, pid: &str) -> String {
    let h = w.wallet("t1", &["history", "--json"]).ok().json();
    let e = h
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["payment_id"] == pid && e["event"] == "received")
        .unwrap();
    e["request_id"].as_str().unwrap()[..8].to_string()
}
