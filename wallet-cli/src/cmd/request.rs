//! `wallet request`: a signed payment request (a dynamic code: amount set, one use).

use std::path::PathBuf;

use tongbao::Fen;
use tongbao::protocol::file::TbFile;
use tongbao::time::{format_rfc3339, parse_duration};

use super::{Ctx, check_new_output, write};

#[derive(clap::Args)]
pub struct Args {
    /// Amount, e.g. 37.50 or ¥37.50.
    #[arg(long)]
    amount: Fen,
    /// Memo for the payer (order number, goods), at most 120 bytes.
    #[arg(long, default_value = "")]
    memo: String,
    /// How long the request can be paid, e.g. 90s, 10m, 2h.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    expires_in: u64,
    /// Also write the request as a file.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Do not draw the QR code.
    #[arg(long)]
    no_qr: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    if let Some(out) = &a.out {
        check_new_output(out)?;
    }
    let w = ctx.open()?;
    let req = w.create_request(a.amount, a.memo, a.expires_in, ctx.now, &mut rand::rng())?;
    if let Some(out) = &a.out {
        write(out, &TbFile::Request(req.clone()))?;
    }
    let code = req.to_code();
    if a.json {
        return crate::out::json(&serde_json::json!({
            "request_id": req.request_id.to_hex(),
            "amount_fen": req.amount.0,
            "memo": req.memo,
            "expires_at": req.expires_at,
            "code": code,
            "file": a.out,
        }));
    }
    println!(
        "request {} for {} until {}",
        req.request_id.short(),
        req.amount,
        format_rfc3339(req.expires_at)
    );
    println!("{code}");
    if !a.no_qr {
        println!("{}", crate::qr::render(&code)?);
    }
    if let Some(out) = &a.out {
        println!("written to {}", out.display());
    }
    Ok(())
}
