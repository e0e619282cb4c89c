//! `issuer ledger stats`: totals from the ledger.

use clap::Subcommand;
use tongbao::Fen;

use super::Ctx;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Issued, notes, wallets, revoked keys.
    Stats {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    match a.action {
        Action::Stats { json } => {
            let s = ctx.open()?.stats()?;
            if json {
                return super::json(&s);
            }
            println!("issuer {}", s.issuer);
            println!("key set version {}", s.key_set_version);
            println!("issued {} in {} note(s)", Fen(s.issued_fen), s.notes);
            println!("{} wallet(s) certified, {} revoked", s.wallets, s.revoked);
            Ok(())
        }
    }
}
