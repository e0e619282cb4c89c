//! `wallet proofs`: double-spend proofs this wallet caught, optionally written out.

use std::path::PathBuf;

use anyhow::bail;
use tongbao::SignedBody as _;
use tongbao::protocol::file::TbFile;

use super::{Ctx, check_new_output, write};

#[derive(clap::Args)]
pub struct Args {
    /// Write the proof whose id starts with this to --out.
    #[arg(long, requires = "out")]
    export: Option<String>,
    /// Where to write the exported proof.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let w = ctx.open()?;
    let proofs = w.proofs()?;
    if let (Some(prefix), Some(out)) = (&a.export, &a.out) {
        check_new_output(out)?;
        let matching: Vec<_> = proofs
            .iter()
            .filter(|p| p.id().to_hex().starts_with(&prefix.to_lowercase()))
            .collect();
        match matching.as_slice() {
            [p] => {
                write(out, &TbFile::Proof((*p).clone()))?;
                println!("proof {} written to {}", p.id().short(), out.display());
                return Ok(());
            }
            [] => bail!("no proof starts with {prefix}"),
            _ => bail!("several proofs start with {prefix}: give more of the id"),
        }
    }
    let rows: Vec<_> = proofs
        .iter()
        .map(|p| {
            serde_json::json!({
                "id": p.id().to_hex(),
                "kind": p.kind(),
                "cheater": p.signer().address(),
                "coin": p.coin().to_hex(),
                "transfers": p.transfers().iter().map(|t| t.id().to_hex()).collect::<Vec<_>>(),
            })
        })
        .collect();
    if a.json {
        return crate::out::json(&rows);
    }
    if proofs.is_empty() {
        println!("no double spends caught");
    }
    for p in &proofs {
        println!(
            "proof {}: {} {}",
            p.id().short(),
            p.signer().address(),
            p.what()
        );
    }
    Ok(())
}
