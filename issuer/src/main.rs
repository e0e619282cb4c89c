//! `issuer`: the Tongbao issuer's command line. A thin layer over the `issuer` library.
//!
//! Exit codes: 0 success, 1 refused or invalid input (nothing changed), 2 usage.

mod cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's allocator: the pilot and the service allocate and free small
/// buffers on every core, where glibc's per-thread arenas spent about a sixth of a pilot's CPU in
/// `malloc`/`free` and kept freed memory (docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Tongbao issuer: keys, wallet certificates, issuance, the ledger.
///
/// Exit codes: 0 success, 1 refused or invalid input (nothing changed), 2 usage.
/// TONGBAO_NOW (RFC 3339) overrides the clock.
#[derive(Parser)]
#[command(name = "issuer", version, about, long_about = None)]
struct Cli {
    /// Issuer home directory (its sled ledger and keys).
    #[arg(long, global = true, env = "TONGBAO_ISSUER_HOME", value_name = "DIR")]
    home: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a new issuer: root key, first note key, empty ledger.
    Init(cmd::init::Args),
    /// Issuer key set: export it for wallets; rotate the note key.
    Keys(cmd::keys::Args),
    /// Certify a wallet registration with an e-CNY class.
    Certify(cmd::certify::Args),
    /// Issue digital RMB to a certified wallet as a note file.
    Issue(cmd::issue::Args),
    /// Issued notes: write one again.
    Notes(cmd::notes::Args),
    /// Ledger figures.
    Ledger(cmd::ledger::Args),
    /// Load generators: settlement throughput in-process or over HTTP.
    Bench(cmd::bench::Args),
    /// Settle a sync request a wallet brought by hand; write the response for it.
    Settle(cmd::settle::Args),
    /// Recompute the ledger's totals from its records and check every rule.
    Audit(cmd::audit::Args),
    /// Revoke a wallet key (lost, stolen, fraud).
    Revoke(cmd::revoke::Args),
    /// Move a lost or stolen wallet's remaining value to the owner's new wallet (once its
    /// certificate expired a grace window ago).
    Recover(cmd::recover::Args),
    /// Take back red-envelope money whose window has closed.
    Clawback(cmd::clawback::Args),
    /// The whole walk-through, narrated, in a fresh directory.
    Demo(cmd::demo::Args),
    /// Pilot-city scenarios: run a red-envelope pilot and write its report (docs/scenarios.md).
    Pilot(cmd::pilot::Args),
    /// The HTTP/JSON settlement service (docs/api.md).
    Serve(cmd::serve::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = cmd::Ctx::new(cli.home).and_then(|ctx| match cli.command {
        Command::Init(a) => cmd::init::run(&ctx, a),
        Command::Keys(a) => cmd::keys::run(&ctx, a),
        Command::Certify(a) => cmd::certify::run(&ctx, a),
        Command::Issue(a) => cmd::issue::run(&ctx, a),
        Command::Notes(a) => cmd::notes::run(&ctx, a),
        Command::Ledger(a) => cmd::ledger::run(&ctx, a),
        Command::Settle(a) => cmd::settle::run(&ctx, a),
        Command::Audit(a) => cmd::audit::run(&ctx, a),
        Command::Revoke(a) => cmd::revoke::run(&ctx, a),
        Command::Recover(a) => cmd::recover::run(&ctx, a),
        Command::Clawback(a) => cmd::clawback::run(&ctx, a),
        Command::Demo(a) => cmd::demo::run(&ctx, a),
        Command::Pilot(a) => cmd::pilot::run(&ctx, a),
        Command::Bench(a) => cmd::bench::run(&ctx, a),
        Command::Serve(a) => cmd::serve::run(&ctx, a),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::from(1)
        }
    }
}
