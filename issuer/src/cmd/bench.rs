//! `issuer bench settle`: the settlement load generator, in-process or over HTTP.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;
use issuer::bench::{SettleLoad, SettleReport, run_http, run_in_process};

use super::Ctx;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Many wallets pay offline, then sync at once; reports settled transfers/s and latency.
    Settle {
        /// Paying wallets.
        #[arg(long, default_value_t = 1000)]
        wallets: usize,
        /// Offline payments per wallet before it syncs.
        #[arg(long, default_value_t = 4)]
        payments: usize,
        /// In-process: most syncs settled per group commit.
        #[arg(long, default_value_t = 64)]
        group: usize,
        /// Send the syncs to `issuer serve` at this URL instead of settling in-process.
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// With --url: the operator token file (default: <home>/operator.token).
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        /// With --url: concurrent clients.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Repeat the run this many times and report the median run (by transfers/s).
        #[arg(long, default_value_t = 1)]
        runs: usize,
        /// Seed for keys and ids.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let Action::Settle {
        wallets,
        payments,
        group,
        url,
        token_file,
        concurrency,
        runs,
        seed,
        json,
    } = a.action;
    let mut reports: Vec<SettleReport> = Vec::new();
    for i in 0..runs.max(1) {
        let load = SettleLoad {
            wallets,
            payments,
            group,
            threads: 2,
            seed: seed + i as u64,
        };
        let r = match &url {
            None => {
                let dir = tempfile::tempdir().context("temporary ledger")?;
                run_in_process(dir.path(), load, ctx.now)?
            }
            Some(u) => {
                let file = token_file
                    .clone()
                    .unwrap_or_else(|| ctx.home.join("operator.token"));
                let token = std::fs::read_to_string(&file)
                    .with_context(|| format!("operator token {}", file.display()))?;
                run_http(u, token.trim(), load, concurrency, ctx.now)?
            }
        };
        if !json && runs > 1 {
            println!("run {}: {:.0} transfers/s", i + 1, r.transfers_per_sec);
        }
        reports.push(r);
    }
    reports.sort_by(|a, b| a.transfers_per_sec.total_cmp(&b.transfers_per_sec));
    let median = &reports[reports.len() / 2];
    if json {
        return super::json(median);
    }
    let mode = match &url {
        None => format!("in-process, groups of {group}"),
        Some(u) => format!("over HTTP to {u}, {concurrency} concurrent clients"),
    };
    println!(
        "settled {} transfers from {} wallets ({} offline payments), {mode}",
        median.transfers, median.wallets, median.payments
    );
    println!(
        "{:.0} transfers/s (median of {} run(s)); {} in {:.2} s",
        median.transfers_per_sec,
        reports.len(),
        median.signatures,
        median.seconds
    );
    let what = if url.is_some() {
        "sync latency"
    } else {
        "group latency"
    };
    println!(
        "{what}: p50 {:.1} ms, p99 {:.1} ms",
        median.group_p50_ms, median.group_p99_ms
    );
    if url.is_none() {
        println!(
            "time: the writer settled and committed for {:.2} s of the {:.2} s; checks ran alongside on the other threads",
            median.settling_seconds, median.seconds
        );
    }
    println!(
        "baseline: verify_strict {:.0}/s, batch {:.0}/s per core; two cores allow {:.0} transfers/s for these signatures; ratio {:.2}",
        median.verify_strict_per_core,
        median.verify_batch_per_core,
        median.baseline_transfers_per_sec,
        median.baseline_ratio
    );
    Ok(())
}
