//! Settlement on reconnect, end to end: the real `issuer serve` on 127.0.0.1 (a child process,
//! port 0), the real `wallet` and `issuer` binaries, one pinned clock (`TONGBAO_NOW`) for every
//! process. Offline payments settle on both sides; a rolled-back wallet's double spend is caught
//! at settlement (first settled wins), revoked, and refused offline by a merchant that only heard
//! of it inside another payment; syncs are idempotent under crashes and replays, concurrent, and
//! work air-gapped; key rotation, top-up, redemption and online payments. `issuer audit` passes
//! after each.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "settlement/service.rs"]
mod service;

use std::path::PathBuf;

use common::{Bin, NOW, Out, World, assert_crashed, later, run, s, wallet_crashing};
use serde_json::Value;
use service::Service;

/// `wallet init --kind KIND --issuer URL --class CLASS`: returns the address.
fn join(w: &World, svc: &Service, name: &str, kind: &str, class: &str) -> String {
    let v = w
        .wallet(
            name,
            &[
                "init", "--kind", kind, "--issuer", &svc.url, "--class", class, "--json",
            ],
        )
        .ok()
        .json();
    assert_eq!(v["class"], class, "{v}");
    v["address"].as_str().expect("address").to_string()
}

/// `wallet sync --json` (with extra arguments) on `name`.
fn sync(w: &World, name: &str, extra: &[&str]) -> Value {
    let mut args = vec!["sync", "--json"];
    args.extend_from_slice(extra);
    w.wallet(name, &args).ok().json()
}

/// `issuer ledger stats --json`.
fn stats(w: &World) -> Value {
    w.issuer(&["ledger", "stats", "--json"]).ok().json()
}

/// `issuer audit` passes: issued = redeemed + outstanding, recomputed, and every rule holds.
#[track_caller]
fn audit_ok(w: &World) {
    let out = w.issuer(&["audit", "--json"]);
    assert_eq!(out.code, 0, "audit failed: {}\n{}", out.stdout, out.stderr);
    let v = out.json();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(
        v["issued_fen"].as_u64().unwrap(),
        v["redeemed_fen"].as_u64().unwrap() + v["outstanding_fen"].as_u64().unwrap(),
        "{v}"
    );
}

/// A loopback URL where nothing listens (a port just released).
fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

fn balance(w: &World, name: &str) -> u64 {
    w.total_fen(name)
}

#[test]
fn offline_payments_settle_on_both_sides() {
    let w = World::new();
    let svc = Service::start(&w, NOW);
    join(&w, &svc, "alice", "personal", "II");
    join(&w, &svc, "shop", "merchant", "I");
    // Issued through the service (it holds the ledger).
    w.fund("alice", "100.00");

    // Offline: pay, receive, receipt.
    let req = w.request("shop", "37.50", "noodles");
    let pay = w.pay_request("alice", s(&req.file));
    let receipt = w.receive("shop", &pay);
    w.wallet("alice", &["import", s(&receipt)]).ok();
    assert_eq!(balance(&w, "alice"), 6250);
    assert_eq!(balance(&w, "shop"), 3750);

    // Back online: the shop first, then alice.
    let v = sync(&w, "shop", &[]);
    assert_eq!(v["settled"], 1, "{v}");
    assert_eq!(v["rejected"].as_array().unwrap().len(), 0);
    assert_eq!(v["fresh_fen"], 3750);
    assert_eq!(v["balance_fen"], 3750);
    assert_eq!(v["certificate_renewed"], true);
    let v = sync(&w, "alice", &[]);
    assert_eq!(v["rejected"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(v["fresh_fen"], 6250);
    assert_eq!(v["balance_fen"], 6250);
    assert_eq!(balance(&w, "alice"), 6250);
    assert_eq!(balance(&w, "shop"), 3750);
    assert!(w.outbox_ids("alice").is_empty());

    // The human summary says what happened.
    let text = w.wallet("shop", &["sync"]).ok().stdout;
    assert!(text.contains("settled at the issuer"), "{text}");
    assert!(text.contains("balance ¥37.50"), "{text}");

    let st = stats(&w);
    // ¥100 issued, then fresh notes for everything refreshed: 37.50 twice (two shop syncs) and 62.50.
    assert_eq!(st["issued_fen"], 10_000 + 3750 + 6250 + 3750);
    assert_eq!(st["outstanding_fen"], 10_000);
    assert_eq!(st["double_spends"], 0);
    assert_eq!(st["revoked"], 0);
    assert!(st["settled_transfers"].as_u64().unwrap() >= 3, "{st}");
    audit_ok(&w);
    svc.stop();
    // Stopped cleanly: the ledger is the CLI's again.
    assert!(!w.home().join("service.json").exists());
    audit_ok(&w);
}

#[test]
fn double_spend_first_settled_wins_and_the_cheater_is_refused_offline() {
    let w = World::new();
    let svc = Service::start(&w, NOW);
    let cheat = join(&w, &svc, "cheat", "personal", "II");
    let m1 = join(&w, &svc, "m1", "merchant", "I");
    let m2 = join(&w, &svc, "m2", "merchant", "I");
    join(&w, &svc, "bob", "personal", "II");
    // The third merchant is certified from a file and never syncs.
    let reg = w.register("m3", "merchant");
    let cert = w.certify(&reg, "I", None);
    w.wallet("m3", &["import", s(&cert)]).ok();
    let m3 = w.address("m3");
    w.fund("cheat", "100.00");
    w.fund("bob", "50.00");

    // The rolled-back wallet pays two merchants with the same coin.
    w.copy_wallet("cheat", "cheat-backup");
    let p1 = w.pay_to("cheat", &m1, "60.00");
    w.receive("m1", &p1);
    w.restore_wallet("cheat", "cheat-backup");
    let p2 = w.pay_to("cheat", &m2, "60.00");
    w.receive("m2", &p2);

    // First settled wins.
    let v1 = sync(&w, "m1", &[]);
    assert_eq!(v1["settled"], 1, "{v1}");
    assert_eq!(v1["balance_fen"], 6000);
    let v2 = sync(&w, "m2", &[]);
    let rejected = v2["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{v2}");
    assert_eq!(rejected[0]["reason"], "double-spend");
    assert_eq!(rejected[0]["value_fen"], 6000);
    assert_eq!(rejected[0]["cheater"], cheat.as_str());
    assert!(rejected[0]["proof"].as_str().unwrap().len() == 64, "{v2}");
    assert_eq!(v2["balance_fen"], 0);
    assert_eq!(v2["revocation_version"], 2);
    assert_eq!(balance(&w, "m1"), 6000);
    assert_eq!(balance(&w, "m2"), 0);

    let st = stats(&w);
    assert_eq!(st["revoked"], 1, "{st}");
    assert_eq!(st["double_spends"], 1);
    assert_eq!(st["losses_fen"], 6000);
    let text = w.issuer(&["ledger", "stats"]).ok().stdout;
    assert!(
        text.contains("1 double spend(s) proven, losses ¥60.00"),
        "{text}"
    );
    assert!(text.contains("1 revoked"), "{text}");

    // Bob syncs after the revocation and pays the third merchant: the list travels along.
    let vb = sync(&w, "bob", &[]);
    assert_eq!(vb["revocation_version"], 2);
    let pb = w.pay_to("bob", &m3, "5.00");
    w.receive("m3", &pb);
    // The cheater (who never heard of it) pays the third merchant: refused offline.
    let pc = w.pay_to("cheat", &m3, "5.00");
    let before = w.snapshot("m3");
    w.wallet("m3", &["receive", s(&pc)]).refused(&["revoked"]);
    w.snapshot("m3")
        .assert_same_as(&before, "a revoked payer's payment");
    assert_eq!(balance(&w, "m3"), 500);

    // The cheater can no longer settle.
    w.wallet("cheat", &["sync"]).refused(&["revoked"]);
    audit_ok(&w);
    svc.stop();
    audit_ok(&w);
}

#[test]
fn a_sync_is_idempotent_across_crashes_and_replays() {
    let w = World::new();
    let svc = Service::start(&w, NOW);
    join(&w, &svc, "alice", "personal", "II");
    let shop = join(&w, &svc, "shop", "merchant", "I");
    w.fund("alice", "100.00");
    let p = w.pay_to("alice", &shop, "30.00");
    w.receive("shop", &p);

    // Dies before the request is committed: nothing changed, nothing sent.
    let before = w.snapshot("alice");
    let issued = stats(&w)["issued_fen"].clone();
    assert_crashed(&wallet_crashing(
        &w,
        "alice",
        "sync-before-commit",
        &["sync"],
    ));
    w.snapshot("alice")
        .assert_same_as(&before, "a crash before the sync commit");
    assert_eq!(stats(&w)["issued_fen"], issued);

    // Dies after the issuer answered, before applying it: the answer is lost.
    assert_crashed(&wallet_crashing(
        &w,
        "alice",
        "sync-apply-before-commit",
        &["sync"],
    ));
    let settled = stats(&w);
    assert_eq!(
        settled["issued_fen"].as_u64().unwrap(),
        issued.as_u64().unwrap() + 7000,
        "the issuer settled it: {settled}"
    );
    // The retry sends the same request and gets the same answer; nothing is settled twice.
    let v = sync(&w, "alice", &[]);
    assert_eq!(v["resent"], true, "{v}");
    assert_eq!(v["balance_fen"], 7000);
    assert_eq!(stats(&w), settled);
    assert_eq!(balance(&w, "alice"), 7000);
    // The shop's coin was settled by alice's sync; the shop's own sync refreshes it once.
    let v = sync(&w, "shop", &[]);
    assert_eq!(v["balance_fen"], 3000);
    audit_ok(&w);
    svc.stop();
}

#[test]
fn ten_wallets_sync_concurrently() {
    let w = World::new();
    let svc = Service::start(&w, NOW);
    let shop = join(&w, &svc, "shop", "merchant", "I");
    let names: Vec<String> = (0..10).map(|i| format!("p{i}")).collect();
    for (i, n) in names.iter().enumerate() {
        join(&w, &svc, n, "personal", "II");
        w.fund(n, &format!("{}.00", 10 + i));
        let p = w.pay_to(n, &shop, "1.00");
        w.receive("shop", &p);
    }
    let dirs: Vec<PathBuf> = names.iter().map(|n| w.wallet_dir(n)).collect();
    let outs: Vec<Out> = std::thread::scope(|sc| {
        let handles: Vec<_> = dirs
            .iter()
            .map(|d| {
                let cwd = w.dir();
                sc.spawn(move || run(Bin::Wallet, cwd, NOW, &["--wallet", s(d), "sync", "--json"]))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, out) in outs.into_iter().enumerate() {
        let v = out.ok().json();
        assert_eq!(v["rejected"].as_array().unwrap().len(), 0, "{v}");
        assert_eq!(
            v["balance_fen"].as_u64().unwrap(),
            (10 + i as u64 - 1) * 100
        );
    }
    for (i, n) in names.iter().enumerate() {
        assert_eq!(balance(&w, n), (10 + i as u64 - 1) * 100);
    }
    let v = sync(&w, "shop", &[]);
    assert_eq!(v["balance_fen"], 1000, "{v}");
    let st = stats(&w);
    let issued: u64 = (0..10).map(|i| (10 + i) * 100).sum();
    assert_eq!(st["outstanding_fen"], issued, "{st}");
    audit_ok(&w);
    svc.stop();
}

#[test]
fn air_gapped_sync_with_the_service_stopped() {
    let w = World::new();
    let mut svc = Service::start(&w, NOW);
    join(&w, &svc, "alice", "personal", "II");
    join(&w, &svc, "bob", "personal", "II");
    w.fund("alice", "80.00");
    w.fund("bob", "20.00");
    // While the service runs, `issuer settle` goes through it.
    let bob_req = w.file("bob-sync", "tb");
    w.wallet("bob", &["sync", "--out", s(&bob_req)]).ok();
    let bob_resp = w.file("bob-sync", "resp");
    w.issuer(&["settle", s(&bob_req), "--out", s(&bob_resp)])
        .ok();
    w.wallet("bob", &["sync", "--apply", s(&bob_resp)]).ok();
    assert_eq!(balance(&w, "bob"), 2000);
    // A crashed service leaves its service.json: the CLI sees nobody answers and opens the
    // ledger itself.
    svc.kill();
    assert!(w.home().join("service.json").exists());
    audit_ok(&w);

    // The wallet writes its request; the issuer settles it from the file, twice: same answer.
    let req = w.file("alice-sync", "tb");
    let v = w
        .wallet("alice", &["sync", "--out", s(&req), "--json"])
        .ok()
        .json();
    assert_eq!(v["resent"], false);
    let sync_id = v["sync_id"].as_str().unwrap().to_string();
    assert_eq!(
        balance(&w, "alice"),
        0,
        "the coins are in the pending request"
    );
    // Writing it again (lost file) gives the same request.
    let again = w.file("alice-sync", "tb");
    let v = w
        .wallet("alice", &["sync", "--out", s(&again), "--json"])
        .ok()
        .json();
    assert_eq!(v["resent"], true);
    assert_eq!(v["sync_id"], sync_id.as_str());
    assert_eq!(std::fs::read(&req).unwrap(), std::fs::read(&again).unwrap());

    let resp1 = w.file("alice-sync", "resp");
    let resp2 = w.file("alice-sync", "resp");
    w.issuer(&["settle", s(&req), "--out", s(&resp1)]).ok();
    let st = stats(&w);
    // An existing --out is refused before anything is settled.
    w.issuer(&["settle", s(&req), "--out", s(&resp1)])
        .refused(&["already exists"]);
    w.issuer(&["settle", s(&again), "--out", s(&resp2)]).ok();
    assert_eq!(stats(&w), st, "a replay settles nothing");
    assert_eq!(
        std::fs::read(&resp1).unwrap(),
        std::fs::read(&resp2).unwrap(),
        "a replayed sync gets the same response"
    );
    let v = w
        .wallet("alice", &["sync", "--apply", s(&resp1), "--json"])
        .ok()
        .json();
    assert_eq!(v["sync_id"], sync_id.as_str());
    assert_eq!(v["balance_fen"], 8000);
    let before = w.snapshot("alice");
    w.wallet("alice", &["sync", "--apply", s(&resp2)])
        .refused(&["no sync is pending"]);
    w.snapshot("alice")
        .assert_same_as(&before, "applying a response twice");
    // A response is only for its own wallet.
    w.wallet("bob", &["sync", "--apply", s(&resp1)])
        .refused(&[]);
    audit_ok(&w);

    // Online again, on a new port: --issuer overrides the recorded URL.
    let svc = Service::start(&w, NOW);
    let v = sync(&w, "alice", &["--issuer", &svc.url]);
    assert_eq!(v["balance_fen"], 8000);
    audit_ok(&w);
    svc.stop();
}

#[test]
fn key_rotation_keeps_old_coins_and_refreshes_them_to_the_new_key() {
    let mut w = World::new();
    let svc = Service::start(&w, NOW);
    join(&w, &svc, "alice", "personal", "II");
    let shop = join(&w, &svc, "shop", "merchant", "I");
    w.fund("alice", "100.00");
    let v = w
        .issuer(&["keys", "rotate", "--grace", "30d", "--json"])
        .ok()
        .json();
    assert_eq!(v["version"], 2, "{v}");
    assert_eq!(v["signing_key"], 2);
    svc.stop();

    // An hour later the new key signs.
    w.now = later(NOW, 3600);
    let svc = Service::start(&w, &w.now);
    let v = sync(&w, "shop", &["--issuer", &svc.url]);
    assert_eq!(v["key_set_version"], 2, "{v}");
    // Alice has not synced: her coin is under key 1 and still good.
    let p = w.pay_to("alice", &shop, "40.00");
    w.receive("shop", &p);
    let b = w.wallet("shop", &["balance", "--json"]).ok().json();
    assert_eq!(b["coins"][0]["key_id"], 1, "{b}");
    let v = sync(&w, "shop", &["--issuer", &svc.url]);
    assert_eq!(v["balance_fen"], 4000);
    assert_eq!(v["fresh_notes"][0]["key_id"], 2, "{v}");
    let v = sync(&w, "alice", &["--issuer", &svc.url]);
    assert_eq!(v["balance_fen"], 6000);
    assert_eq!(v["fresh_notes"][0]["key_id"], 2, "{v}");
    assert_eq!(v["key_set_version"], 2);
    let b = w.wallet("alice", &["balance", "--json"]).ok().json();
    assert_eq!(b["coins"][0]["key_id"], 2, "{b}");
    assert_eq!(stats(&w)["key_set_version"], 2);
    audit_ok(&w);
    svc.stop();
}

#[test]
fn topup_and_redeem() {
    let w = World::new();
    let svc = Service::start(&w, NOW);
    join(&w, &svc, "alice", "personal", "II");
    let v = w
        .wallet("alice", &["topup", "--amount", "200", "--json"])
        .ok()
        .json();
    assert_eq!(v["topup_fen"], 20_000, "{v}");
    assert_eq!(v["balance_fen"], 20_000);
    let text = w
        .wallet("alice", &["redeem", "--amount", "50.25"])
        .ok()
        .stdout;
    assert!(
        text.contains("¥50.25 redeemed to the bank account"),
        "{text}"
    );
    assert_eq!(balance(&w, "alice"), 14_975);
    let st = stats(&w);
    assert_eq!(st["bank_in_fen"], 20_000, "{st}");
    assert_eq!(st["bank_out_fen"], 5025);
    assert_eq!(st["outstanding_fen"], 14_975);

    // Refusals change nothing: above the class II cap, more than held, zero.
    let before = w.snapshot("alice");
    w.wallet("alice", &["topup", "--amount", "9900"])
        .refused(&["cap"]);
    w.wallet("alice", &["redeem", "--amount", "150"])
        .refused(&["insufficient"]);
    w.wallet("alice", &["topup", "--amount", "0"])
        .refused(&["above zero"]);
    w.snapshot("alice")
        .assert_same_as(&before, "refused top-ups");
    // Nobody answers: nothing changes either.
    w.wallet(
        "alice",
        &["topup", "--amount", "1", "--issuer", &dead_url()],
    )
    .refused(&["cannot reach the issuer"]);
    w.snapshot("alice")
        .assert_same_as(&before, "an unreachable issuer");
    assert_eq!(stats(&w), st);
    audit_ok(&w);
    svc.stop();
}

#[test]
fn pay_online_is_confirmed_and_final() {
    let w = World::new();
    let svc = Service::start(&w, NOW);
    join(&w, &svc, "alice", "personal", "II");
    join(&w, &svc, "shop", "merchant", "I");
    w.fund("alice", "100.00");

    w.copy_wallet("alice", "alice-backup");
    let req = w.request("shop", "25.00", "tea");
    let out = w.file("online", "pay");
    let v = w
        .wallet(
            "alice",
            &[
                "pay",
                "--request",
                s(&req.file),
                "--online",
                "--out",
                s(&out),
                "--json",
            ],
        )
        .ok()
        .json();
    assert_eq!(v["settled"], true, "{v}");
    let kind = w
        .wallet("shop", &["inspect", s(&out), "--json"])
        .ok()
        .json();
    assert_eq!(kind["kind"], "confirmed online payment", "{kind}");
    assert!(kind["check"].as_str().unwrap().starts_with("ok"), "{kind}");
    let got = w.wallet("shop", &["receive", s(&out)]).ok().stdout;
    assert!(got.contains("settled at the issuer (final)"), "{got}");
    // Settled: it leaves alice's outbox without a receipt.
    assert!(w.outbox_ids("alice").is_empty());

    // The same coin again from the rolled-back copy: the issuer refuses it, with its reason; the
    // payment is still written (unconfirmed).
    w.restore_wallet("alice", "alice-backup");
    let shop = w.address("shop");
    let out2 = w.file("online", "pay");
    let line = w
        .wallet(
            "alice",
            &[
                "pay",
                "--to",
                &shop,
                "--amount",
                "25.00",
                "--online",
                "--out",
                s(&out2),
            ],
        )
        .refused(&["issuer refused", "spent"]);
    assert!(line.contains(s(&out2)), "{line}");
    assert!(out2.exists());
    let before = w.snapshot("shop");
    w.wallet("shop", &["receive", s(&out2)])
        .refused(&["double spend"]);
    // The shop kept the proof; nothing else changed.
    assert_eq!(balance(&w, "shop"), 2500);
    assert_ne!(w.snapshot("shop").proofs, before.proofs);
    audit_ok(&w);

    // The issuer cannot be reached: the plain payment is written, to settle at the next sync.
    join(&w, &svc, "bob", "personal", "II");
    w.fund("bob", "10.00");
    let out3 = w.file("offline", "pay");
    let v = w
        .wallet(
            "bob",
            &[
                "pay",
                "--to",
                &shop,
                "--amount",
                "3.00",
                "--online",
                "--issuer",
                &dead_url(),
                "--out",
                s(&out3),
                "--json",
            ],
        )
        .ok()
        .json();
    assert_eq!(v["settled"], false, "{v}");
    assert!(
        v["unsettled_reason"]
            .as_str()
            .unwrap()
            .contains("cannot reach the issuer")
    );
    let got = w.wallet("shop", &["receive", s(&out3)]).ok().stdout;
    assert!(!got.contains("final"), "{got}");
    assert_eq!(sync(&w, "bob", &[])["balance_fen"], 700);
    assert_eq!(sync(&w, "shop", &[])["balance_fen"], 2800);
    audit_ok(&w);
    svc.stop();
}

#[test]
fn online_setup_and_usage_errors() {
    let w = World::new();
    let dead = dead_url();
    // Nothing answers: no wallet is created.
    w.wallet("carol", &["init", "--kind", "personal", "--issuer", &dead])
        .refused(&["cannot reach the issuer"]);
    assert!(!w.wallet_dir("carol").join("db").exists());
    // --issuer and --issuer-keys exclude each other; --issuer-keys needs --out.
    let keys = w.keys();
    w.wallet(
        "carol",
        &[
            "init",
            "--kind",
            "personal",
            "--issuer",
            &dead,
            "--issuer-keys",
            s(&keys),
        ],
    )
    .usage_error();
    w.wallet(
        "carol",
        &["init", "--kind", "personal", "--issuer-keys", s(&keys)],
    )
    .usage_error();
    w.wallet("carol", &["init", "--kind", "personal"])
        .usage_error();
    w.wallet(
        "carol",
        &["init", "--kind", "personal", "--issuer", "ftp://x"],
    )
    .refused(&["http://"]);
    // A wallet set up from files has no issuer URL until one is given.
    w.add_wallet("dave", "personal", "II");
    w.fund("dave", "10.00");
    let before = w.snapshot("dave");
    w.wallet("dave", &["sync"]).refused(&["--issuer"]);
    w.wallet("dave", &["sync", "--issuer", &dead])
        .refused(&["cannot reach the issuer"]);
    w.snapshot("dave")
        .assert_same_as(&before, "no issuer to sync with");
    w.wallet("dave", &["sync", "--out", "x.tb", "--apply", "y.tb"])
        .usage_error();
    w.wallet(
        "dave",
        &[
            "pay", "--to", "x", "--amount", "1", "--issuer", &dead, "--out", "p",
        ],
    )
    .usage_error();
    // Operator commands with no service work on the ledger directly.
    audit_ok(&w);
    let dave = w.address("dave");
    let v = w
        .issuer(&[
            "revoke",
            &dave,
            "--reason",
            "lost",
            "--note",
            "phone lost",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(v["revocation_version"], 2);
    w.issuer(&["revoke", &dave, "--reason", "stolen"])
        .refused(&["already revoked"]);
    w.issuer(&["revoke", &dave, "--reason", "bored"])
        .usage_error();
    assert_eq!(stats(&w)["revoked"], 1);
    audit_ok(&w);
    // Through the service too.
    let svc = Service::start(&w, NOW);
    let erin = join(&w, &svc, "erin", "personal", "IV");
    let v = w
        .issuer(&["revoke", &erin, "--reason", "fraud", "--json"])
        .ok()
        .json();
    assert_eq!(v["revocation_version"], 3);
    assert_eq!(stats(&w)["revoked"], 2);
    audit_ok(&w);
    svc.stop();
}

/// A till is certified through the running service too: the merchant's authorization travels in
/// the operator API; without it the issuer refuses.
#[test]
fn a_till_is_certified_through_the_running_service() {
    let w = World::new();
    let svc = Service::start(&w, &w.now);
    w.add_wallet("shop", "merchant", "I");
    let maddr = w.address("shop");
    let reg = w.file("till", "reg");
    let keys = w.keys();
    w.wallet(
        "till",
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
    let cert = w.file("till", "cert");
    w.issuer(&["certify", s(&reg), "--class", "I", "--out", s(&cert)])
        .refused(&["authorization"]);
    let auth = w.file("till", "auth");
    w.wallet(
        "shop",
        &[
            "till",
            "authorize",
            s(&reg),
            "--name",
            "front",
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
    w.wallet("till", &["import", s(&cert)]).ok();
    audit_ok(&w);
    svc.stop();
}

/// A refused sync stays pending (an unsigned refusal is never acted on by itself); the owner can
/// drop it explicitly with `wallet sync --abandon`, and the coins come back.
#[test]
fn a_refused_sync_stays_pending_until_the_owner_abandons_it() {
    let w = World::new();
    let svc = Service::start(&w, &w.now);
    let alice = join(&w, &svc, "alice", "personal", "II");
    w.wallet("alice", &["topup", "--amount", "200"]).ok();
    assert_eq!(balance(&w, "alice"), 20_000);
    w.issuer(&["revoke", &alice, "--reason", "lost"]).ok();
    w.wallet("alice", &["sync"])
        .refused(&["stays pending", "--abandon"]);
    assert_eq!(
        balance(&w, "alice"),
        0,
        "the coins are in the pending request"
    );
    let v = w
        .wallet("alice", &["sync", "--abandon", "--json"])
        .ok()
        .json();
    assert_eq!(v["restored_fen"], 20_000);
    assert_eq!(balance(&w, "alice"), 20_000);
    w.wallet("alice", &["sync", "--abandon"])
        .refused(&["no sync is pending"]);
    audit_ok(&w);
    svc.stop();
}
