//! `issuer issue --to ADDRESS --amount X --out FILE`: new notes for a certified wallet.

use std::path::PathBuf;

use tongbao::protocol::file::{TbFile, write_file};
use tongbao::protocol::note::Earmark;
use tongbao::{Fen, PublicKey, SignedBody as _};

use super::{Ctx, check_new_output};

#[derive(clap::Args)]
pub struct Args {
    /// The wallet's address.
    #[arg(long, value_name = "ADDRESS")]
    to: String,
    /// Amount, e.g. 100 or 100.00.
    #[arg(long)]
    amount: Fen,
    /// Where to write the notes.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    check_new_output(&a.out)?;
    let to = PublicKey::from_address(&a.to)?;
    let bundle = match super::operator::open(ctx)? {
        super::operator::Ledger::Direct(iss) => {
            iss.issue(&to, a.amount, Earmark::None, ctx.now, &mut rand::rng())?
        }
        super::operator::Ledger::Service(c) => c.issue(&to, a.amount)?.notes,
    };
    write_file(&a.out, &TbFile::Notes(bundle.clone()))?;
    let ids: Vec<String> = bundle.notes.iter().map(|n| n.id().to_hex()).collect();
    if a.json {
        return super::json(
            &serde_json::json!({ "to": to.address(), "amount_fen": a.amount.0, "notes": ids, "file": a.out }),
        );
    }
    println!(
        "issued {} to {} as {} note(s)",
        a.amount,
        to.address(),
        bundle.notes.len()
    );
    println!(
        "notes written to {}: the wallet imports them with `wallet import`",
        a.out.display()
    );
    for id in &ids {
        let short = &id[..8];
        println!("note {short} (if the file is lost: issuer notes export {short} --out FILE)");
    }
    Ok(())
}
