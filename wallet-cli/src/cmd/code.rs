//! `wallet code`: the static merchant code (the customer enters the amount; it takes any number
//! of payments), as a QR code and as text.

use std::path::PathBuf;

use tongbao::protocol::file::TbFile;
use tongbao::time::format_rfc3339;

use super::{Ctx, check_new_output, write};

#[derive(clap::Args)]
pub struct Args {
    /// Memo shown to payers (the shop's name), used when the code is made.
    #[arg(long, default_value = "")]
    memo: String,
    /// Make a new static code even if the current one is still valid.
    #[arg(long)]
    new: bool,
    /// Also write the code as a request file.
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
    let (req, created) = w.static_code(&a.memo, a.new, ctx.now, &mut rand::rng())?;
    if let Some(out) = &a.out {
        write(out, &TbFile::Request(req.clone()))?;
    }
    let code = req.to_code();
    if a.json {
        return crate::out::json(&serde_json::json!({
            "request_id": req.request_id.to_hex(),
            "payee": req.payee.address(),
            "amount_fen": 0,
            "memo": req.memo,
            "expires_at": req.expires_at,
            "created": created,
            "code": code,
            "file": a.out,
        }));
    }
    println!(
        "static code {} of {}{}: the customer enters the amount; valid until {}",
        req.request_id.short(),
        req.payee.address(),
        if created { " (new)" } else { "" },
        format_rfc3339(req.expires_at)
    );
    crate::qr::print_code(&code, !a.no_qr)?;
    if let Some(out) = &a.out {
        println!("written to {}", out.display());
    }
    Ok(())
}
