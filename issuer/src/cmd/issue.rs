//! `issuer issue --to ADDRESS --amount X --out FILE [--earmark merchants-only --expires DATE]`:
//! new notes for a certified wallet; with an earmark, red-envelope money (docs/protocol.md#earmark).

use std::path::PathBuf;

use tongbao::protocol::file::{TbFile, write_file};
use tongbao::protocol::note::Earmark;
use tongbao::{Fen, PublicKey, SignedBody as _};

use anyhow::Context as _;

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
    /// A restriction signed into the note: `merchants-only` (red-envelope money: its winner may pay
    /// it only to merchants and tills; clawed back after --expires).
    #[arg(long, value_name = "KIND", requires = "expires", value_parser = ["merchants-only"])]
    earmark: Option<String>,
    /// When earmarked money expires: RFC 3339 or a date (midnight UTC), e.g. 2026-12-27.
    #[arg(long, value_name = "DATE", requires = "earmark")]
    expires: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    check_new_output(&a.out)?;
    let to = PublicKey::from_address(&a.to)?;
    let earmark = match a.expires.as_deref() {
        None => Earmark::None,
        Some(d) => Earmark::MerchantsOnly {
            expires_at: tongbao::time::parse_rfc3339(d).context("--expires")?,
        },
    };
    let bundle = match super::operator::open(ctx)? {
        super::operator::Ledger::Direct(iss) => {
            iss.issue(&to, a.amount, earmark, ctx.now, &mut rand::rng())?
        }
        super::operator::Ledger::Service(_) if earmark != Earmark::None => anyhow::bail!(
            "the issuer service does not take earmarked issuance: stop `issuer serve` and issue on the ledger directly"
        ),
        super::operator::Ledger::Service(c) => c.issue(&to, a.amount)?.notes,
    };
    write_file(&a.out, &TbFile::Notes(bundle.clone()))?;
    let ids: Vec<String> = bundle.notes.iter().map(|n| n.id().to_hex()).collect();
    if a.json {
        let expires_at = match earmark {
            Earmark::MerchantsOnly { expires_at } => Some(expires_at),
            Earmark::None => None,
        };
        return super::json(
            &serde_json::json!({ "to": to.address(), "amount_fen": a.amount.0, "notes": ids, "file": a.out, "earmark": a.earmark, "expires_at": expires_at }),
        );
    }
    println!(
        "issued {} to {} as {} note(s)",
        a.amount,
        to.address(),
        bundle.notes.len()
    );
    if let Earmark::MerchantsOnly { expires_at } = earmark {
        println!(
            "red-envelope money: payable by this wallet only to merchants and tills, until {} (then clawed back)",
            tongbao::time::format_rfc3339(expires_at)
        );
    }
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
