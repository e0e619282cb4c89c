//! Files from elsewhere: another issuer, another protocol version, or the future. Each is refused
//! by the real binaries with exit 1 and one clear `error:` line, and nothing stored changes (the
//! wallet's balance, history, outbox and proofs; the issuer's `ledger stats`). See
//! docs/testing.md#bad-input.
//!
//! - Another issuer: a second `issuer init` certifies the same wallets' registrations and issues
//!   to them; its key set, certificates, notes, revocation list, payments and sync responses are
//!   fed to wallets of the first issuer, and its wallets' sync requests to the first issuer.
//! - Another version: the container's version byte, or the message's own version byte, set to 2
//!   (with the container checksum recomputed, as a newer build would write it).
//! - The future: every file read at a clock a day before it was made (beyond the clock skew).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{NOW, Snapshot, World, later, s};
use tongbao::codec::signing_bytes;
use tongbao::protocol::label;

/// How a note or certificate signed by another issuer's note key is refused.
const FOREIGN_NOTE: &str = "bad issuer signature on note: damaged, or issued by another issuer";
const FOREIGN_CERTIFICATE: &str =
    "bad issuer signature on certificate: damaged, or issued by another issuer";

/// A day before [`NOW`]: far beyond the five minutes of clock skew allowed.
fn yesterday() -> String {
    let t = tongbao::time::parse_rfc3339(NOW).unwrap();
    tongbao::time::format_rfc3339(t - 86_400)
}

/// `wallet NAME args` at `now` is refused with one line mentioning `needles`, and the wallet is
/// unchanged.
#[track_caller]
fn refused(w: &World, name: &str, now: &str, args: &[&str], needles: &[&str]) -> String {
    let before: Snapshot = w.snapshot(name);
    let out = w.wallet_at(name, now, args);
    let line = out.refused(needles);
    assert!(
        out.stdout.is_empty(),
        "`{}` printed {:?}",
        out.cmd,
        out.stdout
    );
    w.snapshot(name)
        .assert_same_as(&before, &format!("`{}` was refused", out.cmd));
    line
}

/// `issuer args` is refused with one line mentioning `needles`, and the ledger is unchanged.
#[track_caller]
fn issuer_refused(w: &World, args: &[&str], needles: &[&str]) -> String {
    let before = w.issuer(&["ledger", "stats", "--json"]).ok().stdout;
    let out = w.issuer(args);
    let line = out.refused(needles);
    assert_eq!(
        w.issuer(&["ledger", "stats", "--json"]).ok().stdout,
        before,
        "`{}` was refused but the ledger changed",
        out.cmd
    );
    line
}

/// The same file bytes with the container checksum made right again.
fn rechecksummed(mut bytes: Vec<u8>) -> Vec<u8> {
    let split = bytes.len() - 8;
    let h = blake3::hash(&signing_bytes(label::FILE, &bytes[..split]));
    bytes[split..].copy_from_slice(&h.as_bytes()[..8]);
    bytes
}

/// Writes `bytes` next to the original as a new file.
fn write_variant(w: &World, stem: &str, bytes: &[u8]) -> PathBuf {
    let p = w.file(stem, "tb");
    std::fs::write(&p, bytes).unwrap();
    p
}

/// The file with its container version (byte 7) or its message version (byte 13, the first byte
/// of the body) set to 2.
fn versioned(w: &World, file: &Path) -> [PathBuf; 2] {
    let bytes = std::fs::read(file).unwrap();
    let mut container = bytes.clone();
    container[7] = 2;
    let mut message = bytes;
    assert_eq!(message[13], 1, "the body starts with its version byte");
    message[13] = 2;
    [
        write_variant(w, "container-v2", &rechecksummed(container)),
        write_variant(w, "message-v2", &rechecksummed(message)),
    ]
}

/// Two issuers; alice, shop and bob certified by the first; the second ("theirs") certifies
/// alice's and shop's registrations too and has a wallet of its own, carol.
struct Two {
    ours: World,
    theirs: World,
    alice_reg: PathBuf,
}

fn two_issuers() -> Two {
    let ours = World::new();
    let theirs = World::new();
    let alice_reg = ours.register("alice", "personal");
    let cert = ours.certify(&alice_reg, "II", None);
    ours.wallet("alice", &["import", s(&cert)]).ok();
    ours.add_wallet("shop", "merchant", "I");
    ours.fund("alice", "100.00");
    theirs.add_wallet("carol", "personal", "II");
    theirs.fund("carol", "50.00");
    Two {
        ours,
        theirs,
        alice_reg,
    }
}

#[test]
fn files_from_another_issuer_are_refused() {
    let t = two_issuers();
    let (ours, theirs) = (&t.ours, &t.theirs);
    let alice = ours.address("alice");
    let shop = ours.address("shop");

    // Their key set.
    refused(
        ours,
        "alice",
        NOW,
        &["import", s(&theirs.keys())],
        &["another issuer"],
    );
    // Their certificate for alice's own registration, and notes they issue to her. Notes and
    // certificates do not name their issuer, and every issuer's first note key has id 1: the
    // issuer key's signature does not check, and the error says it may be another issuer's
    // (defect D3, docs/testing.md, fixed).
    let cert = theirs.certify(&t.alice_reg, "II", None);
    refused(
        ours,
        "alice",
        NOW,
        &["import", s(&cert)],
        &[FOREIGN_CERTIFICATE],
    );
    let notes = theirs.issue(&alice, "20.00");
    refused(ours, "alice", NOW, &["import", s(&notes)], &[FOREIGN_NOTE]);
    // (Their revocation list: tests/bad_input.rs, payment_from_a_revoked_payer_is_refused.)
    // A payment from their wallet to our shop: its payer's certificate is theirs.
    let pay = theirs.pay_to("carol", &shop, "12.00");
    refused(
        ours,
        "shop",
        NOW,
        &["receive", s(&pay)],
        &[FOREIGN_CERTIFICATE],
    );
    // Alice's sync settled by them: the response is not from her issuer.
    let req = ours.file("sync", "req");
    ours.wallet("alice", &["sync", "--out", s(&req)]).ok();
    let resp = theirs.file("sync", "resp");
    let settled = theirs.issuer(&["settle", s(&req), "--out", s(&resp)]);
    if settled.code == 0 {
        refused(
            ours,
            "alice",
            NOW,
            &["sync", "--apply", s(&resp)],
            &["another issuer"],
        );
    }
    // The pending request still settles with her own issuer afterwards.
    let ok = ours.file("sync", "resp");
    ours.issuer(&["settle", s(&req), "--out", s(&ok)]).ok();
    ours.wallet("alice", &["sync", "--apply", s(&ok)]).ok();
    assert_eq!(ours.total_fen("alice"), 10_000);
    // Their wallet's sync request at our issuer.
    let creq = theirs.file("sync", "req");
    theirs.wallet("carol", &["sync", "--out", s(&creq)]).ok();
    let out = ours.file("sync", "resp");
    issuer_refused(
        ours,
        &["settle", s(&creq), "--out", s(&out)],
        &["not registered"],
    );
    assert!(!out.exists());
    // After their key rotation, their notes name key 2, which our key set does not list.
    let mut theirs = t.theirs;
    theirs
        .issuer(&["keys", "rotate", "--grace", "30d", "--json"])
        .ok();
    theirs.now = later(NOW, 60);
    let notes = theirs.issue(&alice, "5.00");
    refused(
        ours,
        "alice",
        &theirs.now,
        &["import", s(&notes)],
        &["signed by unknown issuer key 2: issued by another issuer"],
    );
}

#[test]
fn files_of_another_version_are_refused() {
    let t = two_issuers();
    let w = &t.ours;
    let shop = w.address("shop");
    let pay = w.pay_to("alice", &shop, "10.00");
    let receipt = w.receive("shop", &pay);
    let notes = w.issue(&w.address("alice"), "5.00");
    let req = w.request("shop", "3.00", "tea");
    let reg = w.register("dave", "personal");
    let cert = w.certify(&reg, "III", None);
    for (name, args, file) in [
        ("shop", vec!["receive"], pay.clone()),
        ("alice", vec!["import"], receipt),
        ("alice", vec!["import"], notes),
        ("alice", vec!["import"], w.keys()),
        ("dave", vec!["import"], cert),
    ] {
        for bad in versioned(w, &file) {
            let mut a = args.clone();
            a.push(s(&bad));
            refused(w, name, NOW, &a, &["version 2"]);
        }
    }
    for bad in versioned(w, &req.file) {
        let out = w.file("payment", "pay");
        refused(
            w,
            "alice",
            NOW,
            &["pay", "--request", s(&bad), "--out", s(&out)],
            &["version 2"],
        );
        assert!(!out.exists());
    }
    for bad in versioned(w, &reg) {
        let out = w.file("cert", "cert");
        issuer_refused(
            w,
            &["certify", s(&bad), "--class", "II", "--out", s(&out)],
            &["version 2"],
        );
    }
    // Sync request at the issuer, and the response at the wallet.
    let sreq = w.file("sync", "req");
    w.wallet("alice", &["sync", "--out", s(&sreq)]).ok();
    for bad in versioned(w, &sreq) {
        let out = w.file("sync", "resp");
        issuer_refused(w, &["settle", s(&bad), "--out", s(&out)], &["version 2"]);
    }
    let resp = w.file("sync", "resp");
    w.issuer(&["settle", s(&sreq), "--out", s(&resp)]).ok();
    for bad in versioned(w, &resp) {
        refused(
            w,
            "alice",
            NOW,
            &["sync", "--apply", s(&bad)],
            &["version 2"],
        );
    }
    w.wallet("alice", &["sync", "--apply", s(&resp)]).ok();
}

#[test]
fn files_from_the_future_are_refused() {
    let t = two_issuers();
    let w = &t.ours;
    let past = yesterday();
    let shop = w.address("shop");
    // A payment made now, received by a device whose clock says yesterday.
    let pay = w.pay_to("alice", &shop, "10.00");
    refused(w, "shop", &past, &["receive", s(&pay)], &["future"]);
    // Notes issued now, imported yesterday.
    let notes = w.issue(&w.address("alice"), "5.00");
    refused(w, "alice", &past, &["import", s(&notes)], &["future"]);
    // A request made now, paid yesterday.
    let req = w.request("shop", "3.00", "tea");
    let out = w.file("payment", "pay");
    refused(
        w,
        "alice",
        &past,
        &["pay", "--request", s(&req.file), "--out", s(&out)],
        &["future"],
    );
    assert!(!out.exists());
    // A certificate made now, imported yesterday.
    let reg = w.register("dave", "personal");
    let cert = w.certify(&reg, "III", None);
    refused(w, "dave", &past, &["import", s(&cert)], &["future"]);
    // The issuer, yesterday: a registration and a sync request made now.
    let reg2 = w.register("erin", "personal");
    let out = w.file("cert", "cert");
    let before = w.issuer(&["ledger", "stats", "--json"]).ok().stdout;
    let home = w.home();
    let o = common::run(
        common::Bin::Issuer,
        w.dir(),
        &past,
        &[
            "--home",
            s(&home),
            "certify",
            s(&reg2),
            "--class",
            "II",
            "--out",
            s(&out),
        ],
    );
    o.refused(&["future"]);
    let sreq = w.file("sync", "req");
    w.wallet("alice", &["sync", "--out", s(&sreq)]).ok();
    let resp = w.file("sync", "resp");
    let o = common::run(
        common::Bin::Issuer,
        w.dir(),
        &past,
        &["--home", s(&home), "settle", s(&sreq), "--out", s(&resp)],
    );
    o.refused(&["future"]);
    assert_eq!(w.issuer(&["ledger", "stats", "--json"]).ok().stdout, before);
    // A sync response made now, applied yesterday.
    w.issuer(&["settle", s(&sreq), "--out", s(&resp)]).ok();
    refused(
        w,
        "alice",
        &past,
        &["sync", "--apply", s(&resp)],
        &["future"],
    );
    // At the right time everything is accepted.
    w.wallet("alice", &["sync", "--apply", s(&resp)]).ok();
    let later_now = later(NOW, 60);
    w.wallet_at("shop", &later_now, &["receive", s(&pay)]).ok();
}
