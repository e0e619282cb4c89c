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
}

/// Runs a pilot with its ledger in `ledger_dir` (a fresh directory) and returns the report.
/// Fails if any closing check fails: the ledger audit, or the money not adding up.
pub fn run(sc: &Checked, ledger_dir: &Path, opts: Options) -> anyhow::Result<Report> {
    let seed = opts.seed.unwrap_or(sc.spec.seed);
    let days = sc.spec.window.days;
    opts.progress.set_length(u64::from(days) + 2);
    opts.progress.set_message("wallets for the stores");
    let mut w = engine::World::new(sc.clone(), seed, ledger_dir)?;
    opts.progress.inc(1);
    for d in 0..days {
        opts.progress
            .set_message(format!("day {} of {days}", d + 1));
        w.day(d)?;
        opts.progress.inc(1);
    }
    let timing = std::env::var_os("TONGBAO_PILOT_TIMING").is_some();
    if timing {
        eprintln!("timing (s): claims, pay, deliver, evening = {:?}", w.timing);
    }
    opts.progress
        .set_message("closing: last syncs, clawback, audit");
    let end = sc.end();
    let clock = std::time::Instant::now();
    w.close(end)?;
    let t_close = clock.elapsed().as_secs_f64();
    let closing = w.reconcile(end + 1)?;
    let t_reconcile = clock.elapsed().as_secs_f64() - t_close;
    let audit = w.iss.audit()?;
    let t_audit = clock.elapsed().as_secs_f64() - t_close - t_reconcile;
    opts.progress.inc(1);
    opts.progress.finish_and_clear();
    let report = report::build(&w, seed, closing, audit);
    w.teardown();
    if timing {
        let t_rest = clock.elapsed().as_secs_f64() - t_close - t_reconcile - t_audit;
        eprintln!(
            "timing (s): close, clawback and reconcile, audit, report and teardown = {:?}",
            [t_close, t_reconcile, t_audit, t_rest]
        );
    }
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
