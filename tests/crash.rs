//! Crash tests: the wallet process dies (abort, as a power cut or SIGKILL would) before and after
//! each commit of `pay` and `receive`; a retry completes the work, nothing is lost and nothing is
//! created. Failpoints: `TONGBAO_FAILPOINT=<name>` (src/failpoint.rs).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{World, assert_crashed, s, wallet_crashing};

fn setup() -> World {
    let w = World::new();
    w.add_wallet("alice", "personal", "II");
    w.add_wallet("shop", "merchant", "I");
    w.fund("alice", "100.00");
    w
}

#[test]
fn crash_before_pay_commit_changes_nothing_and_retry_pays() {
    let w = setup();
    let req = w.request("shop", "37.50", "noodles");
    let before = w.snapshot("alice");
    let out_file = w.path("sale.pay");
    let out = wallet_crashing(
        &w,
        "alice",
        "pay-before-commit",
        &["pay", "--request", s(&req.file), "--out", s(&out_file)],
    );
    assert_crashed(&out);
    assert!(
        !out_file.exists(),
        "no payment file may exist after a crash before commit"
    );
    w.snapshot("alice")
        .assert_same_as(&before, "after a crash before the pay commit");
    // Retry completes the work.
    w.wallet(
        "alice",
        &["pay", "--request", s(&req.file), "--out", s(&out_file)],
    )
    .ok();
    w.receive("shop", &out_file);
    assert_eq!(w.total_fen("alice") + w.total_fen("shop"), 10_000);
    assert_eq!(w.total_fen("shop"), 3_750);
}

#[test]
fn crash_after_pay_commit_keeps_the_payment_in_the_outbox() {
    let w = setup();
    let req = w.request("shop", "37.50", "noodles");
    let out_file = w.path("sale.pay");
    let out = wallet_crashing(
        &w,
        "alice",
        "pay-after-commit",
        &["pay", "--request", s(&req.file), "--out", s(&out_file)],
    );
    assert_crashed(&out);
    assert!(
        !out_file.exists(),
        "the file is written after the commit: the crash came first"
    );
    // The coins are spent and the payment waits in the outbox: value is not stranded.
    assert_eq!(w.total_fen("alice"), 6_250);
    let ids = w.outbox_ids("alice");
    assert_eq!(ids.len(), 1);
    let again = w.path("again.pay");
    w.wallet(
        "alice",
        &["outbox", "export", &ids[0][..8], "--out", s(&again)],
    )
    .ok();
    w.receive("shop", &again);
    assert_eq!(w.total_fen("alice") + w.total_fen("shop"), 10_000);
    // Paying the same request again is refused as a replay, not paid twice.
    w.wallet(
        "alice",
        &[
            "pay",
            "--request",
            s(&req.file),
            "--out",
            s(&w.path("twice.pay")),
        ],
    )
    .refused(&["already paid"]);
}

#[test]
fn crash_before_receive_commit_changes_nothing_and_retry_receives() {
    let w = setup();
    let req = w.request("shop", "37.50", "noodles");
    let pay = w.pay_request("alice", s(&req.file));
    let before = w.snapshot("shop");
    let receipt = w.path("sale.receipt");
    let out = wallet_crashing(
        &w,
        "shop",
        "receive-before-commit",
        &["receive", s(&pay), "--receipt-out", s(&receipt)],
    );
    assert_crashed(&out);
    assert!(!receipt.exists());
    w.snapshot("shop")
        .assert_same_as(&before, "after a crash before the receive commit");
    w.wallet("shop", &["receive", s(&pay), "--receipt-out", s(&receipt)])
        .ok();
    assert_eq!(w.total_fen("shop"), 3_750);
}

#[test]
fn crash_after_receive_commit_writes_the_receipt_on_retry() {
    let w = setup();
    let req = w.request("shop", "37.50", "noodles");
    let pay = w.pay_request("alice", s(&req.file));
    let receipt = w.path("sale.receipt");
    let out = wallet_crashing(
        &w,
        "shop",
        "receive-after-commit",
        &["receive", s(&pay), "--receipt-out", s(&receipt)],
    );
    assert_crashed(&out);
    assert!(
        !receipt.exists(),
        "the receipt is written after the commit: the crash came first"
    );
    assert_eq!(
        w.total_fen("shop"),
        3_750,
        "the coins were committed before the crash"
    );
    // A retry credits nothing twice, but writes the receipt again.
    let before = w.snapshot("shop");
    w.wallet("shop", &["receive", s(&pay), "--receipt-out", s(&receipt)])
        .refused(&["already received"]);
    w.snapshot("shop")
        .assert_same_as(&before, "after the retried receive");
    assert!(
        Path::new(&receipt).exists(),
        "the retry writes the receipt again"
    );
    w.wallet("alice", &["import", s(&receipt)]).ok();
    assert!(w.outbox_ids("alice").is_empty());
    assert_eq!(w.total_fen("alice") + w.total_fen("shop"), 10_000);
}
