//! `issuer ledger stats`: totals from the ledger (or from the running service that holds it).

use anyhow::Context as _;
use clap::Subcommand;
use tongbao::Fen;
use tongbao::client::LedgerStatsReply;

use super::Ctx;
use super::operator::{self, Ledger};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Issued, redeemed, outstanding, settled transfers, double spends, losses, wallets, revoked.
    Stats {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    match a.action {
        Action::Stats { json } => {
            let s: LedgerStatsReply = match operator::open(ctx)? {
                Ledger::Direct(iss) => serde_json::to_value(iss.stats()?)
                    .and_then(serde_json::from_value)
                    .context("ledger stats")?,
                Ledger::Service(c) => c.stats()?,
            };
            if json {
                return super::json(&s);
            }
            println!("issuer {}", s.issuer);
            println!("key set version {}", s.key_set_version);
            println!("issued {} in {} note(s)", Fen(s.issued_fen), s.notes);
            println!(
                "redeemed {}, outstanding {}",
                Fen(s.redeemed_fen),
                Fen(s.outstanding_fen)
            );
            println!(
                "bank: {} topped up, {} redeemed to accounts",
                Fen(s.bank_in_fen),
                Fen(s.bank_out_fen)
            );
            println!(
                "{} transfer(s) settled; {} double spend(s) proven, losses {}",
                s.settled_transfers,
                s.double_spends,
                Fen(s.losses_fen)
            );
            println!("{} wallet(s) certified, {} revoked", s.wallets, s.revoked);
            Ok(())
        }
    }
}
