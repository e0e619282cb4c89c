//! `wallet`: the Tongbao wallet command line. A thin layer over `tongbao::wallet`.
//!
//! Exit codes: 0 success, 1 refused or invalid input, 2 usage.

mod cmd;
mod out;
mod qr;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tongbao wallet: hold and pay offline digital RMB; settle with the issuer when back online.
///
/// Exit codes: 0 success, 1 refused or invalid input (nothing changed), 2 usage.
/// TONGBAO_NOW (RFC 3339) overrides the clock. TONGBAO_ISSUER_URL overrides the issuer service URL
/// recorded by `wallet init --issuer`.
#[derive(Parser)]
#[command(
    name = "wallet",
    version,
    about,
    long_about = None,
    after_help = "Offline: pay, receive, request. Online (the issuer service): init --issuer, sync, topup, \
                  redeem, pay --online; air-gapped: sync --out FILE, then sync --apply FILE.\n\
                  Exit codes: 0 success, 1 refused or invalid input (one line `error: ...`), 2 usage.\n\
                  Environment: TONGBAO_WALLET (--wallet), TONGBAO_ISSUER_URL (--issuer), TONGBAO_NOW \
                  (RFC 3339 clock override).\n\
                  Encrypted wallets (init --encrypt): the passphrase comes from the variable named by \
                  --passphrase-env VAR, else from a prompt on the terminal."
)]
struct Cli {
    /// Wallet directory (one sled database per wallet).
    #[arg(long, global = true, env = "TONGBAO_WALLET", value_name = "DIR")]
    wallet: Option<PathBuf>,
    /// An encrypted wallet's passphrase is in the environment variable VAR (without it, the
    /// passphrase is asked for when a terminal is attached).
    #[arg(long, global = true, value_name = "VAR")]
    passphrase_env: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a wallet: register online (--issuer URL), or write a registration (--issuer-keys).
    Init(cmd::init::Args),
    /// Print this wallet's address.
    Address(cmd::address::Args),
    /// Import a certificate, issued notes, an issuer key set, a revocation list or a receipt.
    Import(cmd::import::Args),
    /// Show the balance and coins.
    Balance(cmd::balance::Args),
    /// Make a payment request (a dynamic code for the payer: amount set, one use).
    Request(cmd::request::Args),
    /// Show the static merchant code (the customer enters the amount; reusable).
    Code(cmd::code::Args),
    /// Pay a customer back, referencing a payment received (partial refunds add up).
    Refund(cmd::refund::Args),
    /// A merchant's tills: authorize, list, close (journal), reconcile.
    Till(cmd::till::Args),
    /// Cash on delivery: create, load, show, list, collect, refuse, handoff, accept.
    Cod(cmd::cod::Args),
    /// Pay a request or an address, offline (or --online: settled at once); writes the file.
    Pay(cmd::pay::Args),
    /// Receive a payment file offline (or a confirmed one); optionally write the receipt.
    Receive(cmd::receive::Args),
    /// Settle with the issuer: payments made, coins held and proofs caught; fresh notes back.
    Sync(cmd::sync::Args),
    /// Top up from the linked bank account (a sync with the issuer service).
    Topup(cmd::topup::Args),
    /// Redeem to the linked bank account (a sync with the issuer service).
    Redeem(cmd::redeem::Args),
    /// Show the history.
    History(cmd::history::Args),
    /// Payments made without a receipt yet; export one again.
    Outbox(cmd::outbox::Args),
    /// Double-spend proofs this wallet has caught.
    Proofs(cmd::proofs::Args),
    /// Decode and check any Tongbao file or payment code.
    Inspect(cmd::inspect::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ctx = match cmd::Ctx::new(cli.wallet, cli.passphrase_env) {
        Ok(c) => c,
        Err(e) => return out::fail(&e),
    };
    let result = match cli.command {
        Command::Init(a) => cmd::init::run(&ctx, a),
        Command::Address(a) => cmd::address::run(&ctx, a),
        Command::Import(a) => cmd::import::run(&ctx, a),
        Command::Balance(a) => cmd::balance::run(&ctx, a),
        Command::Request(a) => cmd::request::run(&ctx, a),
        Command::Code(a) => cmd::code::run(&ctx, a),
        Command::Refund(a) => cmd::refund::run(&ctx, a),
        Command::Till(a) => cmd::till::run(&ctx, a),
        Command::Cod(a) => cmd::cod::run(&ctx, a),
        Command::Pay(a) => cmd::pay::run(&ctx, a),
        Command::Receive(a) => cmd::receive::run(&ctx, a),
        Command::Sync(a) => cmd::sync::run(&ctx, a),
        Command::Topup(a) => cmd::topup::run(&ctx, a),
        Command::Redeem(a) => cmd::redeem::run(&ctx, a),
        Command::History(a) => cmd::history::run(&ctx, a),
        Command::Outbox(a) => cmd::outbox::run(&ctx, a),
        Command::Proofs(a) => cmd::proofs::run(&ctx, a),
        Command::Inspect(a) => cmd::inspect::run(&ctx, a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => out::fail(&e),
    }
}
