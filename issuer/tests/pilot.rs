//! Pilot-city scenarios, end to end on small pilots: the same seed gives the same bytes, every
//! closing invariant holds, every double spend is caught and its loss bounded, bad scenario files
//! are refused with the line and the key, red-envelope money keeps its earmark through settlement
//! and is clawed back, and the shipped scenarios land on their published figures (scaled down here;
//! the full runs are `#[ignore]`d, see docs/scenarios.md).

use std::path::Path;
use std::process::Command;

use indicatif::ProgressBar;
use issuer::pilot::{self, Checked, Options, Report};

fn run(sc: &Checked, seed: Option<u64>) -> Report {
    run_windowed(sc, seed, pilot::WINDOW)
}

fn run_windowed(sc: &Checked, seed: Option<u64>, window: usize) -> Report {
    run_with(sc, seed, window, None)
}

fn run_with(sc: &Checked, seed: Option<u64>, window: usize, ledger_cache: Option<u64>) -> Report {
    let dir = tempfile::tempdir().expect("temp dir");
    pilot::run(
        sc,
        dir.path(),
        Options {
            seed,
            progress: ProgressBar::hidden(),
            window,
            ledger_cache,
        },
    )
    .expect("pilot runs")
}

/// A small pilot that uses every channel: online, offline, dual offline, cash on delivery,
/// transfers, top-ups, and cheaters.
const SMALL: &str = r#"
name = "test pilot"
seed = 7

[window]
start = "2026-03-02T00:00:00Z"
days = 5

[lottery]
registrants = 5000
winners = 240
envelope_yuan = [178, "238.00"]
claim_days = 2

[population]
merchants = 25
people = 20
categories = [
  { name = "grocery", share = 0.6, basket_yuan = 80 },
  { name = "restaurant", share = 0.4, basket_yuan = 120 },
]
online = [{ name = "JD", share = 0.3, basket_yuan = 150 }]

[behaviour]
claim_rate = 0.95
purchases_per_person = 2.0
days_between_purchases = 1.0
topup_share = 0.3
topup_yuan = 150
transfers_per_person = 0.5
transfer_yuan = 30

[connectivity]
offline_share = 0.2
dual_offline_share = 0.15
store_sync_every_days = 2
person_sync_every_days = 2

[delivery]
cash_on_delivery_share = 0.3
couriers = 3

[adversaries]
cheater_share = 0.05

[policy]
person_classes = { IV = 0.5, III = 0.3, II = 0.2 }
max_hops = 8

[published]
claimed = 228
amount_spent_yuan = 40000
"#;

fn small() -> Checked {
    pilot::parse(SMALL, "small.toml").expect("small scenario parses")
}

fn outputs(r: &Report) -> Vec<(String, Vec<u8>)> {
    let mut v = vec![
        ("report.md".to_string(), r.markdown().into_bytes()),
        (
            "report.json".to_string(),
            r.json().expect("json").into_bytes(),
        ),
        ("daily.csv".to_string(), r.csv().into_bytes()),
    ];
    for (name, svg) in pilot::charts::render(r).expect("charts") {
        v.push((name.to_string(), svg.into_bytes()));
    }
    v
}

#[test]
fn same_seed_same_bytes_and_every_invariant_holds() {
    let sc = small();
    let a = run(&sc, None);
    let b = run(&sc, None);
    assert_eq!(
        outputs(&a),
        outputs(&b),
        "same scenario and seed, same bytes"
    );
    // A day made and delivered a few payments at a time (the default takes each day of this
    // pilot whole): the same run, the same bytes.
    let windowed = run_windowed(&sc, None, 7);
    assert_eq!(
        outputs(&a),
        outputs(&windowed),
        "the same run however the days are cut"
    );
    // A ledger cache far smaller than the ledger (sled loads its pages again and again): the
    // same bytes.
    let small_cache = run_with(&sc, None, pilot::WINDOW, Some(1 << 20));
    assert_eq!(
        outputs(&a),
        outputs(&small_cache),
        "the same run whatever the ledger's cache"
    );
    let c = run(&sc, Some(8));
    assert_ne!(
        a.json().expect("json"),
        c.json().expect("json"),
        "another seed, another run"
    );

    for r in [&a, &c] {
        let i = &r.invariant;
        assert!(i.audit_ok, "ledger audit: {:?}", i.audit_problems);
        assert!(i.money_adds_up, "money: {i:?}");
        assert_eq!(i.mismatched_wallets, 0, "wallets against the ledger");
        assert!(i.payees_add_up, "payees: {i:?}");
        assert!(i.holds);
        assert_eq!(
            i.envelopes_fen + i.topped_up_fen,
            i.wallets_fen + i.frozen_fen + i.clawed_back_fen + i.cashed_out_fen
        );
        assert!(
            i.clawed_back_fen > 0,
            "some envelope money was left and clawed back"
        );
        // Every channel was used.
        for ch in &r.channels {
            assert!(ch.payments > 0, "no {} payment", ch.channel);
        }
        assert!(r.envelope_spent_fen > 0 && r.envelope_spent_fen <= i.envelopes_fen);
        assert!(r.lag_p50_secs <= r.lag_p99_secs);
        assert!(r.offline_lag_p99_secs > 0);
        assert_eq!(r.daily.len(), 5);
    }
    // The report names what it compares.
    let md = a.markdown();
    assert!(md.contains("| winners who claimed | 228 |"), "{md}");
    assert!(md.contains("✔ ledger audit"));
    assert!(!md.contains('✘'));
    assert!(a.csv().starts_with("day,date,claims,"));
}

#[test]
fn every_double_spend_is_caught_and_its_loss_bounded() {
    let text = SMALL
        .replace("cheater_share = 0.05", "cheater_share = 0.25")
        .replace("winners = 240", "winners = 160");
    let sc = pilot::parse(&text, "cheats.toml").expect("parses");
    let r = run(&sc, None);
    let d = &r.double_spends;
    assert!(d.cheaters >= 10, "{d:?}");
    assert!(d.attempted >= 10, "{d:?}");
    assert!(d.all_detected, "{d:?}");
    assert_eq!(
        d.attempted,
        d.caught_by_payee + d.caught_online + d.caught_at_settlement
    );
    assert!(d.caught_at_settlement > 0, "{d:?}");
    assert!(d.lost_fen > 0);
    assert_eq!(
        d.lost_fen, d.lost_by_payees_fen,
        "ledger and payees agree on losses"
    );
    assert!(d.within_offline_limits, "{d:?}");
    // Class II is the largest offline limit in this pilot: ¥10,000.
    assert!(d.max_loss_per_cheater_fen <= 1_000_000);
    assert!(r.revocations >= d.caught_at_settlement.min(1));
    assert!(r.invariant.holds, "{:?}", r.invariant);
    assert_eq!(r.invariant.lost_offline_fen, d.lost_fen);
}

#[test]
fn malformed_scenarios_are_refused_with_line_and_key() {
    let cases = [
        (
            SMALL.replace("claim_rate = 0.95", "claim_rate = 0.95\nclaim_rat = 1"),
            "behaviour.claim_rat",
            "unknown field",
        ),
        (
            SMALL.replace("claim_rate = 0.95", "claim_rate = 1.5"),
            "behaviour.claim_rate",
            "not a share",
        ),
        (
            SMALL.replace("topup_yuan = 150", "topup_yuan = 150.5"),
            "behaviour.topup_yuan",
            "not a decimal number",
        ),
        (
            SMALL.replace("days = 5", "days = \"five\""),
            "window.days",
            "invalid type",
        ),
        (
            SMALL.replace("start = \"2026-03-02T00:00:00Z\"", "start = \"yesterday\""),
            "window.start",
            "",
        ),
        (
            SMALL.replace("{ IV = 0.5, III = 0.3, II = 0.2 }", "{ V = 1.0 }"),
            "policy.person_classes",
            "",
        ),
        (
            SMALL.replace("merchants = 25", "merchants = 0"),
            "population.merchants",
            "",
        ),
    ];
    for (text, key, words) in cases {
        let err = pilot::parse(&text, "bad.toml").expect_err(key).to_string();
        assert!(err.starts_with("bad.toml:"), "{err}");
        assert!(err.contains(key), "{key}: {err}");
        assert!(err.contains(words), "{key}: {err}");
        assert!(!err.contains('\n'), "one line: {err}");
        let line: usize = err
            .split(':')
            .nth(1)
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        assert!(line > 0, "a line number: {err}");
        let written = text.lines().nth(line - 1).unwrap_or_default();
        let last = key.rsplit('.').next().unwrap_or(key);
        assert!(
            written.contains(last),
            "line {line} is {written:?}, not {key}"
        );
    }
}

#[test]
fn the_command_refuses_a_bad_scenario_in_one_line_and_exit_code_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, SMALL.replace("days = 5", "dayz = 5")).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_issuer"))
        .args(["pilot", "run"])
        .arg(&bad)
        .args(["--out"])
        .arg(dir.path().join("out"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        err.contains("bad.toml:") && err.contains("window.dayz"),
        "{err}"
    );
    assert!(!dir.path().join("out").join("report.md").exists());
    // A window of no payments, a ledger cache too small or too large, or not a number: a usage
    // error (exit 2) naming the flag.
    let bad: [(&str, &[&str]); 2] = [
        ("--window", &["0", "-3", "many", "99999999999"]),
        ("--ledger-cache", &["0", "15", "1048577", "-1", "lots"]),
    ];
    for (flag, values) in bad {
        for value in values {
            let out = Command::new(env!("CARGO_BIN_EXE_issuer"))
                .args(["pilot", "run", "scenarios/suzhou-2020.toml"])
                .arg(format!("{flag}={value}"))
                .output()
                .expect("runs");
            assert_eq!(out.status.code(), Some(2), "{flag} {value}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains(flag), "{err}");
        }
    }
}

#[test]
fn the_command_writes_the_report_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sc = dir.path().join("small.toml");
    std::fs::write(&sc, SMALL.replace("winners = 240", "winners = 60")).expect("write");
    let out_dir = dir.path().join("out");
    let out = Command::new(env!("CARGO_BIN_EXE_issuer"))
        .args(["pilot", "run"])
        .arg(&sc)
        .arg("--out")
        .arg(&out_dir)
        .arg("--quiet")
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "report.md",
        "report.json",
        "daily.csv",
        "daily-spending.svg",
        "settlement-lag.svg",
        "double-spend-exposure.svg",
    ] {
        let p = out_dir.join(f);
        assert!(p.exists(), "{f}");
        assert!(std::fs::metadata(&p).expect("meta").len() > 100, "{f}");
    }
    let svg = std::fs::read_to_string(out_dir.join("daily-spending.svg")).expect("svg");
    assert!(
        svg.starts_with("<svg") && svg.contains("<text"),
        "SVG with text"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("# Pilot report: test pilot"));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).expect("json"))
            .expect("valid JSON");
    assert_eq!(json["invariant"]["holds"], true);
}

fn shipped(name: &str) -> Checked {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("scenarios")
        .join(name);
    pilot::load(&path).expect("shipped scenario parses")
}

fn within(r: &Report, figures: &[&str], tolerance: f64) {
    for f in figures {
        let c = r
            .published
            .iter()
            .find(|c| c.figure == *f)
            .unwrap_or_else(|| panic!("no published figure {f}"));
        assert!(
            c.diff_percent.abs() <= tolerance,
            "{f}: published {} simulated {} ({:+.1}%)",
            c.published,
            c.simulated,
            c.diff_percent
        );
    }
    assert!(r.invariant.holds, "{:?}", r.invariant);
}

const SUZHOU: [&str; 4] = [
    "winners who claimed",
    "envelope money spent",
    "... at physical stores",
    "... online (cash on delivery included)",
];
const LUOHU: [&str; 3] = [
    "winners who claimed",
    "payments with envelope money",
    "envelope money spent",
];

#[test]
fn shipped_scenarios_parse_and_scaled_down_land_near_the_published_figures() {
    for name in [
        "suzhou-2020.toml",
        "shenzhen-luohu-2020.toml",
        "stress-1m.toml",
    ] {
        shipped(name);
    }
    within(
        &run(&shipped("suzhou-2020.toml").scaled(0.01), None),
        &SUZHOU,
        5.0,
    );
    within(
        &run(&shipped("shenzhen-luohu-2020.toml").scaled(0.02), None),
        &LUOHU,
        5.0,
    );
}

/// The full calibration runs (a minute or more each in release):
/// `cargo test --release -p issuer --test pilot -- --ignored`.
#[test]
#[ignore]
fn full_suzhou_lands_within_5_percent() {
    within(&run(&shipped("suzhou-2020.toml"), None), &SUZHOU, 5.0);
}

#[test]
#[ignore]
fn full_luohu_lands_within_5_percent() {
    within(
        &run(&shipped("shenzhen-luohu-2020.toml"), None),
        &LUOHU,
        5.0,
    );
}

/// The earmark end to end on the real ledger: spent first, kept through refresh (with its expiry),
/// not cashed out, ordinary money once a merchant holds it, clawed back after the window, dropped
/// by the wallet at its next sync; the audit holds throughout.
#[test]
fn red_envelope_money_keeps_its_earmark_through_refresh_and_is_clawed_back() {
    use rand::SeedableRng;
    use tongbao::Fen;
    use tongbao::protocol::certificate::{WalletClass, WalletKind};
    use tongbao::protocol::file::TbFile;
    use tongbao::protocol::note::Earmark;
    use tongbao::store::MemStore;
    use tongbao::wallet::{PayTarget, Wallet};

    let t = 1_795_253_400u64;
    let end = t + 7 * 86_400;
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let iss = issuer::Issuer::init(MemStore::new(), t - 60, &mut rng).expect("issuer");
    let keys = iss.keyset().expect("keys");
    let make = |kind, class, rng: &mut rand::rngs::StdRng| {
        let (w, reg) =
            Wallet::create(MemStore::new(), kind, None, keys.clone(), t, rng).expect("wallet");
        let cert = iss.certify(&reg, class, 30 * 86_400, t).expect("certify");
        w.import(TbFile::Certificate(cert), t).expect("cert");
        w
    };
    let winner = make(WalletKind::Personal, WalletClass::II, &mut rng);
    let shop = make(WalletKind::Merchant, WalletClass::I, &mut rng);
    let envelope = iss
        .issue(
            &winner.public(),
            Fen(20_000),
            Earmark::MerchantsOnly { expires_at: end },
            t,
            &mut rng,
        )
        .expect("issue");
    winner.import(TbFile::Notes(envelope), t).expect("import");

    // A purchase of ¥50 at the shop, offline: red-envelope money, change stays restricted.
    let req = shop
        .create_request(Fen(5_000), "lunch".into(), 600, t + 60, &mut rng)
        .expect("request");
    let pay = winner
        .pay(
            PayTarget::Request {
                request: req,
                amount: None,
            },
            t + 90,
            &mut rng,
        )
        .expect("pay");
    assert!(pay.coins.iter().all(|c| c.note.earmark != Earmark::None));
    shop.receive(&pay, t + 95).expect("receive");

    // Cashing out red-envelope money is refused, and the refusal changes nothing.
    let r = winner
        .begin_sync(Fen::ZERO, Fen(1_000), t + 3600, &mut rng)
        .expect("sync");
    let err = iss.sync(&r, t + 3600).expect_err("no cash-out");
    assert!(err.to_string().contains("red-envelope money"), "{err}");
    winner.abandon_sync("refused", t + 3600).expect("abandon");

    // The winner syncs with a top-up: ¥100 ordinary and ¥150 still restricted, same expiry.
    let r = winner
        .begin_sync(Fen(10_000), Fen::ZERO, t + 7200, &mut rng)
        .expect("sync");
    let resp = iss.sync(&r, t + 7200).expect("settled");
    let mut notes: Vec<(u64, Earmark)> =
        resp.notes.iter().map(|n| (n.value.0, n.earmark)).collect();
    notes.sort_by_key(|n| n.0);
    assert_eq!(
        notes,
        vec![
            (10_000, Earmark::None),
            (15_000, Earmark::MerchantsOnly { expires_at: end })
        ]
    );
    winner.apply_sync(&resp, t + 7200).expect("apply");
    // The same request again gets the same response (restricted serials are derived).
    assert_eq!(iss.sync(&r, t + 7300).expect("replay"), resp);

    // The shop's takings are ordinary money for it.
    let r = shop
        .begin_sync(Fen::ZERO, Fen::ZERO, t + 8000, &mut rng)
        .expect("sync");
    let resp = iss.sync(&r, t + 8000).expect("settled");
    assert_eq!(resp.notes.len(), 1);
    assert_eq!(
        (resp.notes[0].value, resp.notes[0].earmark),
        (Fen(5_000), Earmark::None)
    );
    shop.apply_sync(&resp, t + 8000).expect("apply");

    // Nothing is clawed back before the end of the window; after it, the winner's ¥150.
    assert_eq!(iss.claw_back(end).expect("clawback").value_fen, 0);
    let c = iss.claw_back(end + 1).expect("clawback");
    assert_eq!((c.coins, c.value_fen), (1, 15_000));
    assert_eq!(
        iss.claw_back(end + 2).expect("again").value_fen,
        0,
        "idempotent"
    );
    assert_eq!(iss.clawed_back_total().expect("total"), Fen(15_000));
    let audit = iss.audit().expect("audit");
    assert!(audit.ok, "{:?}", audit.problems);
    assert_eq!(audit.outstanding_fen, 10_000 + 5_000);

    // The winner's next sync drops the expired money; its ordinary ¥100 comes home.
    let r = winner
        .begin_sync(Fen::ZERO, Fen::ZERO, end + 100, &mut rng)
        .expect("sync");
    assert_eq!(r.coins.len(), 1, "only the ordinary coin goes home");
    let resp = iss.sync(&r, end + 100).expect("settled");
    winner.apply_sync(&resp, end + 100).expect("apply");
    let b = winner.balance(end + 100).expect("balance");
    assert_eq!(b.total_fen, 10_000);
    assert!(iss.audit().expect("audit").ok);
}

#[test]
fn issue_earmarked_notes_from_the_command_line() {
    use rand::SeedableRng;
    use tongbao::protocol::certificate::{Registration, WalletClass, WalletKind};
    use tongbao::protocol::note::Earmark;

    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("issuer");
    let now = "2026-11-21T09:30:00Z";
    let t = tongbao::time::parse_rfc3339(now).expect("time");
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let winner = tongbao::SecretKey::generate(&mut rng);
    {
        let iss = issuer::Issuer::init_dir(&home, t - 60, &mut rng).expect("init");
        let reg = Registration::sign(&winner, WalletKind::Personal, None, t);
        iss.certify(&reg, WalletClass::IV, 86_400, t)
            .expect("certify");
    }
    let issue = |extra: &[&str], out: &str| {
        Command::new(env!("CARGO_BIN_EXE_issuer"))
            .env("TONGBAO_NOW", now)
            .arg("--home")
            .arg(&home)
            .args([
                "issue",
                "--to",
                &winner.public().address(),
                "--amount",
                "200",
            ])
            .args(extra)
            .arg("--out")
            .arg(dir.path().join(out))
            .output()
            .expect("runs")
    };
    let out = issue(
        &["--earmark", "merchants-only", "--expires", "2026-12-27"],
        "env.notes",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("red-envelope money"));
    let bytes = std::fs::read(dir.path().join("env.notes")).expect("notes file");
    let file = tongbao::protocol::file::TbFile::from_file_bytes(&bytes).expect("decodes");
    let tongbao::protocol::file::TbFile::Notes(bundle) = file else {
        panic!("not a notes file");
    };
    let expires = tongbao::time::parse_rfc3339("2026-12-27").expect("date");
    assert_eq!(
        bundle.notes[0].earmark,
        Earmark::MerchantsOnly {
            expires_at: expires
        }
    );
    // --expires without --earmark is a usage error; an expiry in the past is refused.
    assert_eq!(
        issue(&["--expires", "2026-12-27"], "x.notes").status.code(),
        Some(2)
    );
    let out = issue(
        &["--earmark", "merchants-only", "--expires", "2026-01-01"],
        "y.notes",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expire in the future"));
}
