//! `wallet init --encrypt`: the key sealed under a passphrase, from `--passphrase-env VAR` (no
//! terminal in tests). Drives the real `wallet` binary against the fixed issuer of
//! `tongbao::testkit` at its pinned clock.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

use tongbao::Fen;
use tongbao::protocol::certificate::{WalletClass, WalletKind};
use tongbao::protocol::file::{NoteBundle, TbFile, write_file};
use tongbao::store::{SledStore, Store};
use tongbao::testkit::{Fixture, NOW};
use tongbao::wallet::Wallet;

const PW: &str = "TB_TEST_PASSPHRASE";
const OTHER: &str = "TB_TEST_OTHER";

fn wallet(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wallet"))
        .arg("--wallet")
        .arg(dir.join("w"))
        .args(args)
        .current_dir(dir)
        .env("TONGBAO_NOW", tongbao::time::format_rfc3339(NOW))
        .env_remove("TONGBAO_WALLET")
        .env("HOME", dir.join("no-home"))
        .env(PW, "correct horse battery staple")
        .env(OTHER, "correct horse battery stapler")
        .env_remove("TB_TEST_UNSET")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// Exit 1 and exactly one line `error: ...`; returns it.
fn refused(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(1),
        "expected exit 1: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8(o.stderr.clone()).unwrap();
    let line = err.strip_suffix('\n').unwrap();
    assert!(
        line.starts_with("error: ") && !line.contains('\n'),
        "{err:?}"
    );
    line.to_string()
}

#[test]
fn an_encrypted_wallet_needs_its_passphrase_for_every_command() {
    let fx = Fixture::new();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let keys = dir.join("keys.tb");
    write_file(&keys, &TbFile::KeySet(fx.keyset.clone())).unwrap();
    let keys = keys.to_str().unwrap();

    // --passphrase-env without --encrypt, and --encrypt with no passphrase at hand: refused,
    // nothing created.
    let o = wallet(
        dir,
        &[
            "--passphrase-env",
            PW,
            "init",
            "--kind",
            "personal",
            "--issuer-keys",
            keys,
            "--out",
            "w.reg",
        ],
    );
    assert!(refused(&o).contains("--encrypt"));
    let o = wallet(
        dir,
        &[
            "init",
            "--kind",
            "personal",
            "--issuer-keys",
            keys,
            "--out",
            "w.reg",
            "--encrypt",
        ],
    );
    assert!(refused(&o).contains("--passphrase-env"));
    let o = wallet(
        dir,
        &[
            "--passphrase-env",
            "TB_TEST_UNSET",
            "init",
            "--kind",
            "personal",
            "--issuer-keys",
            keys,
            "--out",
            "w.reg",
            "--encrypt",
        ],
    );
    assert!(refused(&o).contains("TB_TEST_UNSET is not set"));
    assert!(!dir.join("w").exists() && !dir.join("w.reg").exists());

    let o = wallet(
        dir,
        &[
            "--passphrase-env",
            PW,
            "init",
            "--kind",
            "personal",
            "--issuer-keys",
            keys,
            "--out",
            "w.reg",
            "--encrypt",
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(v["encrypted"], true);
    let address = v["address"].as_str().unwrap().to_string();

    // Without the passphrase, with a wrong one, with an unset variable: one line, exit 1.
    let line = refused(&wallet(dir, &["address"]));
    assert!(
        line.contains("encrypted") && line.contains("--passphrase-env"),
        "{line}"
    );
    assert_eq!(
        refused(&wallet(dir, &["--passphrase-env", OTHER, "balance"])),
        "error: wrong passphrase for this wallet"
    );
    assert!(
        refused(&wallet(
            dir,
            &["--passphrase-env", "TB_TEST_UNSET", "balance"]
        ))
        .contains("not set")
    );
    let got = ok(&wallet(dir, &["--passphrase-env", PW, "address"]));
    assert_eq!(got.trim(), address);

    // The key works: import a certificate and a note, pay with it.
    let me = tongbao::PublicKey::from_address(&address).unwrap();
    let cert = dir.join("w.cert");
    write_file(
        &cert,
        &TbFile::Certificate(fx.certificate(me, WalletKind::Personal, WalletClass::II)),
    )
    .unwrap();
    let notes = dir.join("w.notes");
    write_file(
        &notes,
        &TbFile::Notes(NoteBundle {
            notes: vec![fx.note(me, Fen(10_000), 1)],
        }),
    )
    .unwrap();
    let before = wallet(dir, &["--passphrase-env", OTHER, "import", "w.cert"]);
    assert_eq!(refused(&before), "error: wrong passphrase for this wallet");
    ok(&wallet(dir, &["--passphrase-env", PW, "import", "w.cert"]));
    ok(&wallet(dir, &["--passphrase-env", PW, "import", "w.notes"]));
    let shop = tongbao::testkit::key(50).public().address();
    ok(&wallet(
        dir,
        &[
            "--passphrase-env",
            PW,
            "pay",
            "--to",
            &shop,
            "--amount",
            "12.50",
            "--out",
            "p.pay",
        ],
    ));
    let v: serde_json::Value = serde_json::from_str(&ok(&wallet(
        dir,
        &["--passphrase-env", PW, "balance", "--json"],
    )))
    .unwrap();
    assert_eq!(v["total_fen"], 8_750);

    // On disk: only the sealed form.
    let store = SledStore::open(&dir.join("w")).unwrap();
    assert!(store.get(b"m/secret").unwrap().is_none());
    assert!(store.get(b"m/secret-sealed").unwrap().is_some());
    assert!(Wallet::needs_passphrase(&store).unwrap());
}
