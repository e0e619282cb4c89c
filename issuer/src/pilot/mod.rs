//! Pilot-city scenarios: a red-envelope pilot run from the lottery to the final settlement and
//! audit, through the real protocol, wallet engine and ledger. See docs/scenarios.md.
//!
//! - [`scenario`]: the TOML scenario file, checked;
//! - [`plan`]: every winner's plan, drawn from the seed;
//! - `engine` and `rounds`: the run, day by day (wallets over [`store::SimStore`], the ledger over
//!   sled in [`store::LedgerStore`]);
//! - [`report`]: report.md, report.json and daily.csv; [`charts`]: the SVG charts.
//!
//! The same scenario and seed give the same report, byte for byte: one seeded generator per
//! wallet and step, a simulated clock, ledger operations in a fixed order, no hash-map order in
//! any output, and money in integer fen.

pub mod charts;
mod engine;
pub mod plan;
pub mod report;
mod rounds;
pub mod scenario;
pub mod store;

use std::path::Path;

use indicatif::ProgressBar;
use tongbao::codec::Encode;
use tongbao::protocol::keyset::IssuerKeySet;
use tongbao::store::{Batch, Store};

pub use engine::DayRow;
pub use report::Report;
pub use rounds::Closing;
pub use scenario::{Checked, ScenarioError, load, parse};

use crate::Issuer;
use crate::ledger::keys;

/// How to run.
pub struct Options {
    /// Seed (default: the scenario's).
    pub seed: Option<u64>,
    /// Progress shown while running (hidden when quiet or not on a terminal).
    pub progress: ProgressBar,
    /// Payments made and delivered at a time within a day ([`WINDOW`] by default): the run holds
    /// one window's payments at once. It changes memory and speed, never the report.
    pub window: usize,
    /// Bytes of the ledger's pages sled keeps in memory (`None`: [`LEDGER_CACHE`]). It changes
    /// memory and speed, never the report.
    pub ledger_cache: Option<u64>,
}

/// The default [`Options::ledger_cache`]: 256 MiB. Luohu's and Suzhou's ledgers fit in it; at a
/// million wallets the ledger is gigabytes of random coin ids, and a larger cache is faster but
/// costs memory: with the default stress-1m peaks at 6.95 GiB, with 768 MiB at 7.77 GiB
/// (docs/performance.md, ninth round).
pub const LEDGER_CACHE: u64 = 256 << 20;

/// The default [`Options::window`]: a day of a million-wallet pilot (about 210,000 payments) in
/// seven windows; Suzhou's and Luohu's days in one.
pub const WINDOW: usize = 32_768;

/// Runs a pilot with its scratch files in `scratch` (a fresh directory, made if missing: the
/// ledger, and the records of wallets at rest) and returns the report. Fails if any closing
/// check fails: the ledger audit, or the money not adding up.
pub fn run(sc: &Checked, scratch: &Path, opts: Options) -> anyhow::Result<Report> {
    let seed = opts.seed.unwrap_or(sc.spec.seed);
    let days = sc.spec.window.days;
    opts.progress.set_length(u64::from(days) + 2);
    opts.progress.set_message("wallets for the stores");
    let mut w = engine::World::new(sc.clone(), seed, scratch, opts.window, opts.ledger_cache)?;
    opts.progress.inc(1);
    for d in 0..days {
        opts.progress
            .set_message(format!("day {} of {days}", d + 1));
        w.day(d)?;
        opts.progress.inc(1);
    }
    opts.progress
        .set_message("closing: last syncs, clawback, audit");
    let end = sc.end();
    timing::time("close: syncs", || w.close(end))?;
    let closing = timing::time("close: clawback, reconcile", || w.reconcile(end + 1))?;
    // The audit checks every transfer once and needs no cache: the wallets' working set goes.
    tongbao::crypto::set_cache_sizes(
        tongbao::crypto::KEY_CACHE_DEFAULT,
        tongbao::crypto::SIG_CACHE_DEFAULT,
    );
    tongbao::crypto::clear_caches();
    let audit = timing::time("close: audit", || w.iss.audit())?;
    opts.progress.inc(1);
    opts.progress.finish_and_clear();
    if timing::on() {
        timing::wallets("people", w.persons.iter().flatten());
        timing::wallets("pools", w.pool.iter());
        timing::wallets("shops", w.shops.iter());
    }
    let report = timing::time("close: report", || report::build(&w, seed, closing, audit));
    timing::time("close: teardown", || w.teardown());
    timing::print();
    report
}

/// Sets the key set's hop limit (a fresh issuer, before any wallet trusts the key set).
pub(crate) fn set_max_hops<S: Store>(
    iss: &Issuer<S>,
    max_hops: u8,
    now: u64,
) -> anyhow::Result<()> {
    let ks = iss.keyset()?;
    if ks.policy.max_hops == max_hops {
        return Ok(());
    }
    let mut policy = ks.policy;
    policy.max_hops = max_hops;
    let set = IssuerKeySet::sign(&iss.root, ks.set_version, now, policy, ks.keys.clone());
    let mut b = Batch::new();
    b.put(keys::KEYSET, set.to_bytes());
    iss.store.commit(b)?;
    Ok(())
}

/// Wall time by step, for tuning (`TONGBAO_PILOT_TIMING=1` prints it to stderr); never in a report.
pub(crate) mod timing {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    /// Wall and CPU seconds by step, and by how much the process's peak memory grew in it (MB).
    static STEPS: Mutex<BTreeMap<&'static str, (f64, f64, f64)>> = Mutex::new(BTreeMap::new());

    /// Whether timing is on (`TONGBAO_PILOT_TIMING` set).
    pub(crate) fn on() -> bool {
        static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *ON.get_or_init(|| std::env::var_os("TONGBAO_PILOT_TIMING").is_some())
    }

    /// CPU seconds this process has used (user and system, from /proc), when timing is on.
    fn cpu() -> f64 {
        if !on() {
            return 0.0;
        }
        let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
            return 0.0;
        };
        // Fields after the command name (which is in parentheses): utime and stime are the
        // 12th and 13th, in clock ticks (100 per second on Linux).
        let rest = stat.rsplit(')').next().unwrap_or("");
        let f: Vec<f64> = rest
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|x| x.parse().ok())
            .collect();
        f.iter().sum::<f64>() / 100.0
    }

    /// The process's peak resident memory so far in MB (`VmHWM`), when timing is on.
    fn peak_mb() -> f64 {
        status_mb("VmHWM:")
    }

    /// The process's resident memory now in MB (`VmRSS`), when timing is on.
    fn rss_mb() -> f64 {
        status_mb("VmRSS:")
    }

    /// A memory figure from /proc/self/status (`field` in kB) in MB, when timing is on.
    fn status_mb(field: &str) -> f64 {
        if !on() {
            return 0.0;
        }
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with(field))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
            .map_or(0.0, |kb| kb / 1024.0)
    }

    /// Runs `f`, adding its wall and CPU time, and the growth of the peak memory, to `step`.
    pub(crate) fn time<T>(step: &'static str, f: impl FnOnce() -> T) -> T {
        let clock = std::time::Instant::now();
        let (c0, p0) = (cpu(), peak_mb());
        let out = f();
        let (c, p) = (cpu() - c0, peak_mb() - p0);
        if let Ok(mut m) = STEPS.lock() {
            let e = m.entry(step).or_default();
            e.0 += clock.elapsed().as_secs_f64();
            e.1 += c;
            e.2 += p;
        }
        out
    }

    /// Prints the steps so far (wall and CPU seconds, in name order) and the ledger's reads that
    /// reached sled (by key prefix) to stderr when timing is on, and clears them.
    pub(crate) fn print() {
        fn take<K: Ord, V>(m: &Mutex<BTreeMap<K, V>>) -> BTreeMap<K, V> {
            m.lock()
                .map(|mut m| std::mem::take(&mut *m))
                .unwrap_or_default()
        }
        let (steps, reads) = (take(&STEPS), take(&READS));
        if !on() {
            return;
        }
        eprintln!(
            "timing (wall s, CPU s for the whole process, growth of its peak memory; peak {:.0} MB):",
            peak_mb()
        );
        for (step, (wall, cpu, grew)) in steps {
            eprintln!("  {step}: {wall:.2} s, {cpu:.2} CPU s, peak +{grew:.0} MB");
        }
        for (prefix, (n, found, secs)) in reads {
            eprintln!(
                "  ledger reads from sled {}: {n} ({found} found), {secs:.2} s",
                String::from_utf8_lossy(&prefix)
            );
        }
    }

    /// Adds `wall` seconds to `step` (for work on a background thread; no CPU or memory figure).
    pub(crate) fn add(step: &'static str, wall: f64) {
        if !on() {
            return;
        }
        if let Ok(mut m) = STEPS.lock() {
            m.entry(step).or_default().0 += wall;
        }
    }

    /// Prints, when timing is on, what the ledger writer did with one table: entries applied to
    /// sled, and removals it skipped (keys no written table ever gave a value: not in sled).
    pub(crate) fn written(applied: usize, skipped: usize) {
        if on() {
            eprintln!("  ledger writer: {applied} entries applied, {skipped} removals skipped");
        }
    }

    /// Prints, when timing is on, the memory at a checkpoint and what the table it hands to the
    /// ledger writer holds (entries, bytes of keys and values).
    pub(crate) fn checkpoint(what: &str, entries: usize, bytes: usize) {
        if on() {
            eprintln!(
                "  {what}: resident {:.0} MB (peak {:.0} MB), ledger table {entries} entries, {} MB",
                rss_mb(),
                peak_mb(),
                bytes >> 20
            );
        }
    }

    /// Prints, when timing is on, what the day's wallets hold decompressed before they rest:
    /// wallets and bytes of readable packed records, by kind of wallet; and the bytes written to
    /// the resting wallets' file so far (and of them, the bytes moved out of sparse regions), the
    /// bytes no wallet refers to any more, the regions given back, and the disk it takes.
    pub(crate) fn thawed(
        day: u32,
        kinds: [(&str, &mut dyn Iterator<Item = &super::engine::W>); 3],
        spill: &super::store::Spill,
    ) {
        if !on() {
            return;
        }
        let parts: Vec<String> = kinds
            .into_iter()
            .map(|(kind, wallets)| {
                let (n, b) = wallets
                    .map(|w| w.store().thawed_bytes())
                    .filter(|&b| b > 0)
                    .fold((0, 0), |(n, b), x| (n + 1, b + x));
                format!("{kind} {n} ({} MB)", b >> 20)
            })
            .collect();
        let f = spill.figures();
        let disk = spill
            .on_disk()
            .map_or_else(|| "?".to_string(), |b| (b >> 20).to_string());
        eprintln!(
            "  day {day}: thawed before rest: {}; resting wallets' file {} MB written ({} MB \
             moved), {} MB freed, {} regions given back ({} calls), {disk} MB on disk",
            parts.join(", "),
            spill.written() >> 20,
            f.moved >> 20,
            f.freed >> 20,
            f.given,
            f.punches,
        );
    }

    /// Ledger reads that reached sled, by key prefix: (reads, found, seconds).
    static READS: Mutex<BTreeMap<Vec<u8>, (u64, u64, f64)>> = Mutex::new(BTreeMap::new());

    /// Counts a ledger read of `key` that reached sled (found or not) and took `secs`.
    pub(crate) fn sled_read(key: &[u8], found: bool, secs: f64) {
        let prefix = key
            .iter()
            .position(|&b| b == b'/')
            .map_or(key, |i| &key[..=i]);
        if let Ok(mut m) = READS.lock() {
            let e = m.entry(prefix.to_vec()).or_default();
            e.0 += 1;
            e.1 += u64::from(found);
            e.2 += secs;
        }
    }

    /// Prints what `wallets` hold, by kind of record (entries, bytes of keys and values).
    pub(crate) fn wallets<'a>(kind: &str, wallets: impl Iterator<Item = &'a super::engine::W>) {
        let mut usage: BTreeMap<Vec<u8>, (usize, usize)> = BTreeMap::new();
        let (mut resting, mut cold) = (0, 0);
        for wallet in wallets {
            if let Some(n) = wallet.store().resting_bytes() {
                resting += 1;
                cold += n;
            }
            for (k, (n, b)) in wallet.store().usage() {
                let e = usage.entry(k).or_default();
                e.0 += n;
                e.1 += b;
            }
        }
        eprintln!("  {kind}: wallets resting (compressed): {resting}, {cold} bytes");
        for (k, (n, b)) in usage {
            eprintln!(
                "  {kind} {}: {n} entries, {b} bytes",
                String::from_utf8_lossy(&k)
            );
        }
    }
}

/// The signature checks that a step's wallets (or the issuer) are about to make one by one, made
/// first as batches on every core.
///
/// A wallet checks each issuer signature it receives on its own (one `verify_strict` each); the
/// pilot, holding thousands of wallets that receive at once, checks the same signatures first in
/// batches of 256 (the same verdicts, at a half to a third of the cost each: a third where one
/// key, the issuer's, signed them all). That enters them in the process's cache of checks that
/// passed (`tongbao::crypto`), where each wallet's own check then finds them: every signature is
/// still checked, once. A signature that fails here is simply not cached, and the wallet's own
/// check refuses it with its usual error.
pub(crate) mod prewarm {
    use tongbao::PublicKey;
    use tongbao::protocol::SignedBody;
    use tongbao::protocol::certificate::Certificate;
    use tongbao::protocol::coin::{SigCheck, verify_each};
    use tongbao::protocol::keyset::IssuerKeySet;
    use tongbao::protocol::note::Note;
    use tongbao::protocol::payment::Payment;
    use tongbao::protocol::request::PaymentRequest;
    use tongbao::protocol::sync::{Confirmation, SyncRequest, SyncResponse};

    /// Checks `checks` together (verdicts are left to the wallets' own checks).
    fn run(checks: &[SigCheck]) {
        let _ = verify_each(checks);
    }

    /// Certificates their wallets are about to import.
    pub(crate) fn certificates<'a>(
        keys: &IssuerKeySet,
        certs: impl Iterator<Item = &'a Certificate>,
    ) {
        run(&certs
            .filter_map(|c| certificate(keys, c))
            .collect::<Vec<_>>());
    }

    /// Notes their wallets are about to import.
    pub(crate) fn notes<'a>(keys: &IssuerKeySet, notes: impl Iterator<Item = &'a Note>) {
        run(&notes.filter_map(|n| note(keys, n)).collect::<Vec<_>>());
    }

    /// Payment requests their payers are about to pay.
    pub(crate) fn requests<'a>(requests: impl Iterator<Item = &'a PaymentRequest>) {
        let checks: Vec<_> = requests
            .map(|r| signed(r.payee, r, r.signature, "payment request"))
            .collect();
        run(&checks);
    }

    /// Sync requests the issuer is about to check.
    pub(crate) fn sync_requests<'a>(reqs: impl Iterator<Item = &'a SyncRequest>) {
        let checks: Vec<_> = reqs
            .map(|r| signed(r.wallet, r, r.signature, "sync request"))
            .collect();
        run(&checks);
    }

    /// Sync responses their wallets are about to apply: the issuer root's signature, and the
    /// renewed certificate and fresh notes each carries.
    pub(crate) fn sync_responses<'a>(
        root: PublicKey,
        responses: impl Iterator<Item = &'a SyncResponse>,
    ) {
        let mut checks = Vec::new();
        for resp in responses {
            checks.push(signed(root, resp, resp.signature, "sync response"));
            checks.extend(certificate(&resp.keyset, &resp.certificate));
            checks.extend(resp.notes.iter().filter_map(|n| note(&resp.keyset, n)));
        }
        run(&checks);
    }

    /// What the payers of `payments` signed (each payment, and the last transfer of each coin)
    /// and their certificates: what a payee or the issuer has not seen before. Notes and earlier
    /// transfers were checked when they were made or first paid.
    pub(crate) fn payments<'a>(keys: &IssuerKeySet, payments: impl Iterator<Item = &'a Payment>) {
        let mut checks = Vec::new();
        for p in payments {
            let payer = p.payer();
            checks.push(signed(payer, p, p.signature, "payment"));
            checks.extend(certificate(keys, &p.certificate));
            for c in &p.coins {
                if let Some(h) = c.hops.last() {
                    checks.push(signed(payer, &h.transfer, h.transfer.signature, "transfer"));
                }
            }
        }
        run(&checks);
    }

    /// Online payments' confirmations their payers are about to import.
    pub(crate) fn confirmations<'a>(
        root: PublicKey,
        confirmations: impl Iterator<Item = &'a Confirmation>,
    ) {
        let checks: Vec<_> = confirmations
            .map(|c| signed(root, c, c.signature, "confirmation"))
            .collect();
        run(&checks);
    }

    /// The check of a certificate's issuer signature (none if its key is unknown).
    fn certificate(keys: &IssuerKeySet, c: &Certificate) -> Option<SigCheck> {
        let entry = keys.key(c.key_id).ok()?;
        Some(SigCheck {
            key: entry.key,
            msg: c.signing_bytes(),
            sig: c.signature,
            what: "certificate",
            issuer: true,
        })
    }

    /// The check of a note's issuer signature (none if its key is unknown).
    fn note(keys: &IssuerKeySet, n: &Note) -> Option<SigCheck> {
        let entry = keys.key(n.key_id).ok()?;
        Some(SigCheck {
            key: entry.key,
            msg: n.signing_bytes(),
            sig: n.signature,
            what: "note",
            issuer: true,
        })
    }

    /// The check of a message signed by `key`.
    fn signed<B: SignedBody>(
        key: PublicKey,
        body: &B,
        sig: tongbao::Signature,
        what: &'static str,
    ) -> SigCheck {
        SigCheck {
            key,
            msg: body.signing_bytes(),
            sig,
            what,
            issuer: false,
        }
    }
}
