//! `wallet receive FILE`: verify a payment offline, store its coins, sign a receipt.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use tongbao::SignedBody as _;
use tongbao::protocol::file::TbFile;
use tongbao::wallet::WalletError;

use super::{Ctx, check_new_output, read, write};

#[derive(clap::Args)]
pub struct Args {
    /// The payment file.
    file: PathBuf,
    /// Write the signed receipt here (for the payer).
    #[arg(long, value_name = "FILE")]
    receipt_out: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    if let Some(out) = &a.receipt_out {
        check_new_output(out)?;
    }
    let payment = match read(&a.file)? {
        TbFile::Payment(p) => p,
        other => bail!(
            "{} is a {}, not a payment",
            a.file.display(),
            other.kind_name()
        ),
    };
    let w = ctx.open()?;
    let got = match w.receive(&payment, ctx.now) {
        Ok(g) => g,
        Err(e @ WalletError::Replay(_)) => {
            // Already received: nothing changes, but the receipt can be written again.
            if let (Some(out), Some(r)) = (&a.receipt_out, w.stored_receipt(&payment.id())?) {
                write(out, &TbFile::Receipt(r))?;
                bail!("{e} (receipt written again to {})", out.display());
            }
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
    // The coins are durably stored; only now is the receipt written.
    tongbao::failpoint::hit("receive-after-commit");
    if let Some(out) = &a.receipt_out {
        write(out, &TbFile::Receipt(got.receipt.clone())).context("the payment is received")?;
    }
    if a.json {
        return crate::out::json(&serde_json::json!({
            "payment_id": got.payment_id.to_hex(),
            "payer": got.payer.address(),
            "amount_fen": got.amount.0,
            "memo": got.memo,
            "receipt": a.receipt_out,
        }));
    }
    let memo = got
        .memo
        .filter(|m| !m.is_empty())
        .map(|m| format!(" for \"{m}\""))
        .unwrap_or_default();
    println!(
        "received {} from {}{memo} (payment {})",
        got.amount,
        got.payer.address(),
        got.payment_id.short()
    );
    if let Some(out) = &a.receipt_out {
        println!("receipt written to {}: hand it to the payer", out.display());
    }
    Ok(())
}
