//! `wallet outbox`: payments made without a receipt yet; `export` writes one again.

use std::path::PathBuf;

use clap::Subcommand;
use tongbao::protocol::file::TbFile;
use tongbao::time::format_rfc3339;
use tongbao::{Fen, SignedBody as _};

use super::{Ctx, check_new_output, short, write};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    /// Print JSON (a list, each with "id").
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum Action {
    /// Write a payment file again (it was lost, or the process died before writing it).
    Export {
        /// The payment id (or its first characters).
        id: String,
        /// Where to write it.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let w = ctx.open()?;
    match a.action {
        Some(Action::Export { id, out }) => {
            check_new_output(&out)?;
            let p = w.outbox_payment(&id)?;
            let pid = p.id();
            write(&out, &TbFile::Payment(Box::new(p)))?;
            println!("payment {} written to {}", pid.short(), out.display());
            Ok(())
        }
        None => {
            let entries = w.outbox()?;
            if a.json {
                return crate::out::json(&entries);
            }
            if entries.is_empty() {
                println!("outbox empty: every payment has a receipt");
            }
            for e in &entries {
                println!(
                    "{} {} {} to {}",
                    short(&e.payment_id),
                    format_rfc3339(e.time),
                    Fen(e.amount_fen),
                    e.payee
                );
            }
            Ok(())
        }
    }
}
