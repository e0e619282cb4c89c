//! `wallet import FILE`: a certificate, issued notes, a key set, a revocation list or a receipt.

use std::path::PathBuf;

use tongbao::Fen;
use tongbao::time::format_rfc3339;
use tongbao::wallet::import::Imported;

use super::{Ctx, read, short};

#[derive(clap::Args)]
pub struct Args {
    /// The file to import.
    file: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let f = read(&a.file)?;
    let w = ctx.open()?;
    let done = w.import(f, ctx.now)?;
    if a.json {
        return crate::out::json(&done);
    }
    match done {
        Imported::KeySet { version, keys } => {
            println!("imported issuer key set version {version} ({keys} key(s))")
        }
        Imported::Certificate { class, expires_at } => {
            println!(
                "imported certificate: class {class}, valid until {}",
                format_rfc3339(expires_at)
            )
        }
        Imported::Notes { count, total_fen } => {
            println!("imported {count} note(s): {}", Fen(total_fen))
        }
        Imported::Revocations { version, entries } => {
            println!("imported revocation list version {version} ({entries} revoked)")
        }
        Imported::Receipt {
            payment_id,
            amount_fen,
        } => {
            println!(
                "receipt for payment {} ({}) imported",
                short(&payment_id),
                Fen(amount_fen)
            )
        }
    }
    Ok(())
}
