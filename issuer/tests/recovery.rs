//! Recovery of a lost or stolen wallet's value (docs/adr/0004-lost-device-recovery.md): refused
//! before the lost key is revoked, before its certificate expired and the grace window passed;
//! allowed after, once; and no value is ever paid twice (the thief's late payment is rejected, a
//! second recovery is refused, a replayed sync of the lost wallet gets nothing new). In-process
//! over memory stores with a fixed seed and clock, plus the same through the service and the CLI.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use issuer::recovery::DEFAULT_RECOVERY_GRACE_SECS;
use issuer::server::{self, ServerConfig};
use issuer::{Issuer, IssuerError};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tongbao::Fen;
use tongbao::client::IssuerClient;
use tongbao::protocol::certificate::{WalletClass, WalletKind};
use tongbao::protocol::file::{TbFile, read_file, write_file};
use tongbao::protocol::note::Earmark;
use tongbao::protocol::revocation::RevocationReason;
use tongbao::protocol::sync::{CoinStatus, RejectReason};
use tongbao::store::{MemStore, Store};
use tongbao::wallet::Wallet;

mod common;

use common::{T0, World, total};

const DAY: u64 = 86_400;
const CERT: u64 = common::CERT_SECS;
const GRACE: u64 = DEFAULT_RECOVERY_GRACE_SECS;

impl<S: Store> World<S> {
    /// `recover` is refused with a message containing `needle`, and nothing changes.
    #[track_caller]
    fn refused(&self, lost: &Wallet<MemStore>, to: &Wallet<MemStore>, now: u64, needle: &str) {
        let before = self.iss.stats().unwrap();
        let err = self
            .iss
            .recover(&lost.public(), &to.public(), GRACE, "", now)
            .unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
        assert_eq!(
            before,
            self.iss.stats().unwrap(),
            "a refusal changed the ledger"
        );
        assert!(self.iss.recovery(&lost.public()).unwrap().is_none());
    }
}

#[test]
fn recovery_is_refused_before_revocation_expiry_and_grace_and_allowed_after() {
    let mut x = World::new(11);
    let lost = x.wallet(WalletKind::Personal, WalletClass::II);
    let fresh = x.wallet(WalletKind::Personal, WalletClass::II);
    let cheat = x.wallet(WalletKind::Personal, WalletClass::II);
    x.fund(&lost, 100);
    // Not revoked yet: refused, even long after.
    x.refused(&lost, &fresh, T0 + 400 * DAY, "is not revoked");
    // Revoked for fraud (or a double spend): not a lost device, nothing to recover.
    x.iss
        .revoke(&cheat.public(), RevocationReason::Fraud, "mule", T0)
        .unwrap();
    x.refused(&cheat, &fresh, T0 + 400 * DAY, "revoked for fraud");
    x.iss
        .revoke(
            &lost.public(),
            RevocationReason::Lost,
            "reported at the branch",
            T0 + DAY,
        )
        .unwrap();
    // The certificate is valid until T0 + 90 days; recovery opens 30 days after.
    let opens = T0 + CERT + GRACE;
    for at in [T0 + DAY, T0 + CERT - 1, T0 + CERT, T0 + CERT + 1, opens - 1] {
        x.refused(&lost, &fresh, at, "too early to recover");
    }
    // Wrong targets.
    x.refused(&lost, &lost, opens, "same key");
    x.refused(&lost, &cheat, opens, "revoked");
    let stranger = tongbao::SecretKey::from_seed(&[77; 32]).public();
    assert!(matches!(
        x.iss.recover(&lost.public(), &stranger, GRACE, "", opens),
        Err(IssuerError::UnknownWallet(_))
    ));
    // Allowed once the window opens.
    let r = x
        .iss
        .recover(&lost.public(), &fresh.public(), GRACE, "ID checked", opens)
        .unwrap();
    assert_eq!(r.record.value_fen, 10_000);
    assert_eq!(r.record.coins, 1);
    assert_eq!(r.record.reason, "lost");
    assert_eq!(r.record.cert_expires_at, T0 + CERT);
    assert_eq!(r.notes.as_ref().unwrap().notes.len(), 1);
    assert_eq!(x.iss.recovered_total().unwrap(), Fen(10_000));
    x.audit();
    // The new wallet collects it at its next sync.
    x.now = opens + 60;
    let resp = x.sync(&fresh);
    assert_eq!(resp.collected.len(), 1);
    assert_eq!(total(&fresh, x.now), 10_000);
    x.audit();
    // Once only.
    let before = x.iss.stats().unwrap();
    let err = x
        .iss
        .recover(&lost.public(), &fresh.public(), GRACE, "", x.now)
        .unwrap_err();
    assert!(matches!(err, IssuerError::Conflict(_)), "{err}");
    assert!(err.to_string().contains("already recovered"), "{err}");
    assert_eq!(before, x.iss.stats().unwrap());
}

#[test]
fn a_shorter_or_longer_grace_window_moves_the_opening() {
    let mut x = World::new(11);
    let lost = x.wallet(WalletKind::Personal, WalletClass::IV);
    let fresh = x.wallet(WalletKind::Personal, WalletClass::IV);
    x.fund(&lost, 10);
    x.iss
        .revoke(&lost.public(), RevocationReason::Stolen, "", T0)
        .unwrap();
    let at = T0 + CERT + 7 * DAY;
    assert!(
        x.iss
            .recover(&lost.public(), &fresh.public(), 60 * DAY, "", at)
            .unwrap_err()
            .to_string()
            .contains("60 day(s)")
    );
    let r = x
        .iss
        .recover(&lost.public(), &fresh.public(), 7 * DAY, "", at)
        .unwrap();
    assert_eq!((r.record.grace_secs, r.record.value_fen), (7 * DAY, 1_000));
    x.audit();
}

#[test]
fn no_value_is_paid_twice() {
    let mut x = World::new(11);
    let alice = x.wallet(WalletKind::Personal, WalletClass::II);
    let alice2 = x.wallet(WalletKind::Personal, WalletClass::II);
    let shop1 = x.wallet(WalletKind::Merchant, WalletClass::I);
    let shop2 = x.wallet(WalletKind::Merchant, WalletClass::I);
    x.fund(&alice, 100);
    // Alice syncs once (her certificate is renewed: valid until T0 + 1 h + 90 days).
    x.now = T0 + 3_600;
    let first = alice
        .begin_sync(Fen::ZERO, Fen::ZERO, x.now, &mut x.rng)
        .unwrap();
    let first_resp = x.iss.sync(&first, x.now).unwrap();
    alice.apply_sync(&first_resp, x.now).unwrap();
    let expires = x
        .iss
        .wallet(&alice.public())
        .unwrap()
        .unwrap()
        .cert_expires_at;
    assert_eq!(expires, T0 + 3_600 + CERT);
    // She pays shop1 ¥20, and shop1 settles it: that value left the lost key before recovery.
    x.now += 60;
    x.pay(&alice, &shop1, 2_000).unwrap();
    x.sync(&shop1);
    // The phone is stolen. The thief pays shop2 ¥30 offline with the ¥80 change (certificate
    // still valid); shop2 does not sync for a long time.
    x.now += 60;
    x.pay(&alice, &shop2, 3_000).unwrap();
    x.iss
        .revoke(&alice.public(), RevocationReason::Stolen, "", x.now + 60)
        .unwrap();
    // Recovery: the ledger shows Alice's ¥80 change still live; shop2's payment is not settled.
    let opens = expires + GRACE;
    let r = x
        .iss
        .recover(&alice.public(), &alice2.public(), GRACE, "", opens)
        .unwrap();
    assert_eq!(r.record.value_fen, 8_000);
    x.now = opens + 60;
    x.sync(&alice2);
    assert_eq!(total(&alice2, x.now), 8_000);
    x.audit();

    // 1. The thief's payment arrives after the recovery: rejected, the coin is already redeemed.
    x.now += DAY;
    let resp = x.sync(&shop2);
    let rej: Vec<_> = resp
        .results
        .iter()
        .filter(|c| c.status == CoinStatus::Rejected)
        .collect();
    assert_eq!(rej.len(), 1, "{:?}", resp.results);
    assert_eq!(rej[0].reason, RejectReason::AlreadyRedeemed);
    assert_eq!(
        total(&shop2, x.now),
        0,
        "shop2 is not paid from the recovered coin"
    );
    x.audit();

    // 2. A second recovery of the same key, to any wallet: refused.
    let before = x.iss.stats().unwrap();
    assert!(matches!(
        x.iss
            .recover(&alice.public(), &alice2.public(), GRACE, "", x.now),
        Err(IssuerError::Conflict(_))
    ));
    assert!(matches!(
        x.iss
            .recover(&alice.public(), &shop1.public(), GRACE, "", x.now),
        Err(IssuerError::Conflict(_))
    ));
    assert_eq!(before, x.iss.stats().unwrap());

    // 3. A replayed sync of the lost wallet gets its old response, byte for byte, and nothing new;
    // a new sync from the lost wallet is refused (revoked).
    let replay = x.iss.sync(&first, x.now).unwrap();
    assert_eq!(replay, first_resp);
    assert_eq!(before, x.iss.stats().unwrap());
    let again = alice
        .begin_sync(Fen::ZERO, Fen::ZERO, x.now, &mut x.rng)
        .unwrap();
    assert!(matches!(
        x.iss.sync(&again, x.now),
        Err(IssuerError::Revoked(_))
    ));
    assert_eq!(before, x.iss.stats().unwrap());

    // Every fen is accounted for once: ¥20 with shop1, ¥80 with the new wallet, none with shop2.
    let s = x.iss.stats().unwrap();
    assert_eq!(s.outstanding_fen, 10_000);
    assert_eq!(total(&shop1, x.now) + total(&alice2, x.now), 10_000);
    x.audit();
}

#[test]
fn a_thief_double_spending_the_stolen_wallet_leaves_only_the_rest_to_recover() {
    let mut x = World::new(11);
    let alice = x.wallet(WalletKind::Personal, WalletClass::II);
    let alice2 = x.wallet(WalletKind::Personal, WalletClass::II);
    let shop1 = x.wallet(WalletKind::Merchant, WalletClass::I);
    let shop2 = x.wallet(WalletKind::Merchant, WalletClass::I);
    x.fund(&alice, 100);
    // The thief copies the wallet and pays the same coin to two shops.
    let copy = Wallet::open(alice.store().snapshot()).unwrap();
    x.pay(&alice, &shop1, 6_000).unwrap();
    x.pay(&copy, &shop2, 6_000).unwrap();
    x.iss
        .revoke(&alice.public(), RevocationReason::Stolen, "", x.now)
        .unwrap();
    x.now += 60;
    x.sync(&shop1);
    let r = x.sync(&shop2);
    assert!(
        r.results
            .iter()
            .any(|c| c.reason == RejectReason::DoubleSpend)
    );
    let r = x
        .iss
        .recover(
            &alice.public(),
            &alice2.public(),
            GRACE,
            "",
            T0 + CERT + GRACE,
        )
        .unwrap();
    // The first-settled payment stands; the change is recovered; the double spend stays a loss
    // booked against the stolen key, not deducted from the owner.
    assert_eq!(r.record.value_fen, 4_000);
    assert_eq!(r.record.losses_fen, 6_000);
    assert_eq!(r.record.reason, "stolen");
    x.now = T0 + CERT + GRACE + 60;
    x.sync(&alice2);
    assert_eq!(total(&shop1, x.now) + total(&alice2, x.now), 10_000);
    assert_eq!(total(&shop2, x.now), 0);
    assert_eq!(x.iss.stats().unwrap().outstanding_fen, 10_000);
    x.audit();
}

#[test]
fn red_envelope_money_stays_restricted_and_expired_money_is_left_for_the_clawback() {
    let mut x = World::new(11);
    let lost = x.wallet(WalletKind::Personal, WalletClass::II);
    let fresh = x.wallet(WalletKind::Personal, WalletClass::II);
    x.fund(&lost, 50);
    let long = T0 + 400 * DAY;
    let short = T0 + 100 * DAY;
    for (yuan, expires_at) in [(20, long), (10, short)] {
        x.iss
            .issue(
                &lost.public(),
                Fen(yuan * 100),
                Earmark::MerchantsOnly { expires_at },
                T0,
                &mut x.rng,
            )
            .unwrap();
    }
    x.iss
        .revoke(&lost.public(), RevocationReason::Lost, "", T0)
        .unwrap();
    let opens = T0 + CERT + GRACE;
    let r = x
        .iss
        .recover(&lost.public(), &fresh.public(), GRACE, "", opens)
        .unwrap();
    assert_eq!(r.record.value_fen, 7_000);
    assert_eq!(r.record.restricted_fen, 2_000);
    assert_eq!(r.record.left_for_clawback_fen, 1_000);
    let notes = r.notes.unwrap().notes;
    assert_eq!(notes.len(), 2);
    assert!(
        notes
            .iter()
            .any(|n| n.earmark == Earmark::MerchantsOnly { expires_at: long }
                && n.value == Fen(2_000))
    );
    x.audit();
    let c = x.iss.claw_back(opens).unwrap();
    assert_eq!(c.value_fen, 1_000);
    x.now = opens + 60;
    x.sync(&fresh);
    assert_eq!(total(&fresh, x.now), 7_000);
    x.audit();
}

#[test]
fn a_lost_key_that_held_nothing_is_recorded_with_no_notes() {
    let mut x = World::new(11);
    let lost = x.wallet(WalletKind::Personal, WalletClass::IV);
    let fresh = x.wallet(WalletKind::Personal, WalletClass::IV);
    x.iss
        .revoke(&lost.public(), RevocationReason::Lost, "", T0)
        .unwrap();
    let r = x
        .iss
        .recover(
            &lost.public(),
            &fresh.public(),
            GRACE,
            "",
            T0 + CERT + GRACE,
        )
        .unwrap();
    assert!(r.notes.is_none());
    assert_eq!(r.record.value_fen, 0);
    assert!(x.iss.recovery(&lost.public()).unwrap().is_some());
    x.audit();
}

#[test]
fn recovery_above_the_new_wallets_cap_is_refused() {
    let mut x = World::new(11);
    let lost = x.wallet(WalletKind::Personal, WalletClass::II);
    let small = x.wallet(WalletKind::Personal, WalletClass::IV); // cap ¥1,000
    x.fund(&lost, 2_000);
    x.iss
        .revoke(&lost.public(), RevocationReason::Lost, "", T0)
        .unwrap();
    x.refused(&lost, &small, T0 + CERT + GRACE, "balance cap");
}

// ---- through the running service -------------------------------------------------------------

#[test]
fn recovery_through_the_service() {
    const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let home = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(12);
    let iss = Arc::new(Issuer::init_dir(home.path(), T0, &mut rng).unwrap());
    let mut x = World {
        iss: iss.clone(),
        rng,
        now: T0,
    };
    let lost = x.wallet(WalletKind::Personal, WalletClass::II);
    let fresh = x.wallet(WalletKind::Personal, WalletClass::II);
    x.fund(&lost, 100);
    let opens = T0 + CERT + GRACE;
    let config = ServerConfig {
        operator_token: Some(TOKEN.into()),
        clock: Some(opens),
        ..ServerConfig::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let srv_iss = iss.clone();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            server::run(listener, srv_iss, config, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
    });
    let addr = addr_rx.recv().unwrap();
    let c = IssuerClient::new(&format!("http://{addr}"))
        .unwrap()
        .with_token(TOKEN);
    // Not revoked yet: 422 refused.
    let e = c
        .recover(&lost.public(), &fresh.public(), None, "")
        .unwrap_err();
    assert!(e.is_refusal() && e.error_name() == Some("refused"), "{e}");
    c.revoke(&lost.public(), RevocationReason::Stolen, "")
        .unwrap();
    let r = c
        .recover(&lost.public(), &fresh.public(), None, "by phone")
        .unwrap();
    assert_eq!(r.recovery.value_fen, 10_000);
    assert_eq!(r.recovery.reason, "stolen");
    assert_eq!(r.recovery.note, "by phone");
    let notes = r.notes.unwrap();
    assert_eq!(notes.notes[0].holder, fresh.public());
    // Twice: 409 conflict.
    let e = c
        .recover(&lost.public(), &fresh.public(), None, "")
        .unwrap_err();
    assert_eq!(e.code(), Some(1007), "{e}");
    assert!(c.audit().unwrap().ok);
    // The new wallet imports the notes from the answer.
    fresh.import(TbFile::Notes(notes), opens).unwrap();
    assert_eq!(total(&fresh, opens), 10_000);
    stop.send(()).unwrap();
    thread.join().unwrap();
}

// ---- the CLI ------------------------------------------------------------------------------------

fn issuer_cli(dir: &Path, now: u64, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_issuer"))
        .arg("--home")
        .arg(dir.join("issuer"))
        .args(args)
        .current_dir(dir)
        .env("TONGBAO_NOW", tongbao::time::format_rfc3339(now))
        .env_remove("TONGBAO_ISSUER_HOME")
        .env("HOME", dir.join("no-home"))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[track_caller]
fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[track_caller]
fn refused(o: Output, needle: &str) {
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.starts_with("error: ") && err.lines().count() == 1,
        "{err:?}"
    );
    assert!(err.contains(needle), "{err}");
}

#[test]
fn issuer_recover_on_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(issuer_cli(dir, T0, &["init"]));
    ok(issuer_cli(dir, T0, &["keys", "export", "--out", "keys.tb"]));
    let Ok(TbFile::KeySet(keyset)) = read_file(&dir.join("keys.tb")) else {
        panic!("key set file");
    };
    let mut rng = StdRng::seed_from_u64(13);
    let mut wallets = Vec::new();
    for name in ["lost", "new"] {
        let (w, reg) = Wallet::create(
            MemStore::new(),
            WalletKind::Personal,
            None,
            keyset.clone(),
            T0,
            &mut rng,
        )
        .unwrap();
        let reg_file = format!("{name}.reg");
        write_file(&dir.join(&reg_file), &TbFile::Registration(reg)).unwrap();
        ok(issuer_cli(
            dir,
            T0,
            &[
                "certify",
                &reg_file,
                "--class",
                "II",
                "--out",
                &format!("{name}.cert"),
            ],
        ));
        wallets.push(w);
    }
    let lost = wallets[0].public().address();
    let new = wallets[1].public().address();
    ok(issuer_cli(
        dir,
        T0,
        &[
            "issue",
            "--to",
            &lost,
            "--amount",
            "66.60",
            "--out",
            "lost.notes",
        ],
    ));
    let recover = |now: u64| {
        issuer_cli(
            dir,
            now,
            &[
                "recover",
                &lost,
                "--to",
                &new,
                "--out",
                "new.notes",
                "--json",
            ],
        )
    };
    refused(recover(T0 + 400 * DAY), "is not revoked");
    ok(issuer_cli(
        dir,
        T0,
        &["revoke", &lost, "--reason", "stolen"],
    ));
    refused(recover(T0 + CERT), "too early to recover");
    assert!(!dir.join("new.notes").exists());
    let v: serde_json::Value = serde_json::from_str(&ok(recover(T0 + CERT + GRACE))).unwrap();
    assert_eq!(v["value_fen"], 6_660);
    assert_eq!(v["reason"], "stolen");
    let Ok(TbFile::Notes(bundle)) = read_file(&dir.join("new.notes")) else {
        panic!("notes file");
    };
    assert_eq!(bundle.notes[0].value, Fen(6_660));
    assert_eq!(bundle.notes[0].holder, wallets[1].public());
    std::fs::remove_file(dir.join("new.notes")).unwrap();
    refused(recover(T0 + CERT + GRACE + DAY), "already recovered");
    let audit: serde_json::Value = serde_json::from_str(&ok(issuer_cli(
        dir,
        T0 + CERT + GRACE,
        &["audit", "--json"],
    )))
    .unwrap();
    assert_eq!(audit["ok"], true, "{audit}");
}
