//! `issuer pilot run SCENARIO.toml [--out DIR] [--seed N] [--quiet] [--json]`: run a pilot-city
//! scenario through the real wallet engine and ledger and write its report. See docs/scenarios.md.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use issuer::pilot::{self, Options};
use tongbao::protocol::file::write_atomic;

use super::Ctx;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Run a scenario from the lottery to the final settlement, clawback and audit.
    Run {
        /// The scenario file (TOML; docs/scenarios.md).
        scenario: PathBuf,
        /// Write report.md, report.json, daily.csv and the SVG charts here (created).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Seed (default: the scenario's `seed`).
        #[arg(long)]
        seed: Option<u64>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Print the report as JSON instead of Markdown.
        #[arg(long)]
        json: bool,
        /// Payments made and delivered at a time within a day: lower holds less in memory. The
        /// report is the same for any value.
        #[arg(long, value_name = "N", default_value_t = pilot::WINDOW as u32,
              value_parser = clap::value_parser!(u32).range(1..))]
        window: u32,
        /// MiB of the ledger's pages kept in memory (default 256): more is faster for a large
        /// city and takes more memory. The report is the same.
        #[arg(long, value_name = "MIB",
              value_parser = clap::value_parser!(u32).range(16..=1 << 20))]
        ledger_cache: Option<u32>,
    },
}

pub fn run(_ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let Action::Run {
        scenario,
        out,
        seed,
        quiet,
        json,
        window,
        ledger_cache,
    } = a.action;
    let sc = pilot::load(&scenario)?;
    if let Some(dir) = &out {
        std::fs::create_dir_all(dir).with_context(|| format!("--out {}", dir.display()))?;
    }
    let progress = if quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let p = ProgressBar::with_draw_target(Some(1), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
        {
            p.set_style(style.progress_chars("=> "));
        }
        p
    };
    let scratch =
        tempfile::tempdir().context("a temporary directory for the run's scratch files")?;
    let started = Instant::now();
    let report = pilot::run(
        &sc,
        scratch.path(),
        Options {
            seed,
            progress,
            window: window as usize,
            ledger_cache: ledger_cache.map(|m| u64::from(m) << 20),
        },
    )?;
    let secs = started.elapsed().as_secs_f64();
    if !report.holds() {
        anyhow::bail!(
            "the closing invariant failed (see the report): {}",
            serde_json::to_string(&report.invariant)?
        );
    }
    let md = report.markdown();
    let js = report.json()?;
    if let Some(dir) = &out {
        write_atomic(&dir.join("report.md"), md.as_bytes())?;
        write_atomic(&dir.join("report.json"), js.as_bytes())?;
        write_atomic(&dir.join("daily.csv"), report.csv().as_bytes())?;
        for (name, svg) in pilot::charts::render(&report)? {
            write_atomic(&dir.join(name), svg.as_bytes())?;
        }
    }
    if json {
        print!("{js}");
    } else {
        print!("{md}");
        if let Some(dir) = &out {
            println!(
                "\nWritten to {}/: report.md, report.json, daily.csv and three SVG charts.",
                dir.display()
            );
        }
    }
    if !quiet {
        eprintln!("ran in {secs:.1} s");
    }
    Ok(())
}
