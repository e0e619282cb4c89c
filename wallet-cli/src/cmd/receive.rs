//! `wallet receive FILE`: verify a payment offline, store its coins, sign a receipt. A confirmed
//! payment (`wallet pay --online`) also carries the issuer's confirmation, checked here: it is
//! settled at the issuer already, final.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use tongbao::SignedBody as _;
use tongbao::protocol::file::TbFile;
use tongbao::wallet::{ReceiveNote, WalletError};

use super::{Ctx, check_new_output, read, write};

#[derive(clap::Args)]
pub struct Args {
    /// The payment file (plain, or confirmed by the issuer).
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
    let (payment, confirmation, refund_of) = match read(&a.file)? {
        TbFile::Payment(p) => (p, None, None),
        TbFile::ConfirmedPayment(p, c) => (p, Some(c), None),
        TbFile::Refund(r) => (Box::new(r.payment), None, Some((r.original, r.number))),
        other => bail!(
            "{} is a {}, not a payment",
            a.file.display(),
            other.kind_name()
        ),
    };
    let w = ctx.open()?;
    if let Some(c) = &confirmation {
        c.verify(&w.keyset()?, &payment)
            .context("the issuer's confirmation in the file does not check")?;
    }
    let note = ReceiveNote {
        confirmation: confirmation.clone(),
        refund_of,
        ..ReceiveNote::default()
    };
    let got = match w.receive_noted(&payment, note, ctx.now) {
        Ok(g) => g,
        Err(e @ WalletError::Replay(_)) => {
            // Already received: nothing changes, but the receipt can be written again.
            if let (Some(out), Some(r)) = (&a.receipt_out, w.stored_receipt(&payment.id())?) {
                write(out, &TbFile::Receipt(r))?;
                bail!("{e} (receipt written again to {})", out.display());
            }
            return Err(e.into());
        }
        Err(e) if confirmation.is_some() && w.public() == payment.payee => {
            // The issuer has settled it to this wallet already: the value is not lost.
            bail!(
                "{e} (the issuer settled this payment to this wallet: its value arrives with the next `wallet sync`)"
            )
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
            "settled": confirmation.is_some(),
            "refund_of": refund_of.map(|(p, _)| p.to_hex()),
            "settled_at": confirmation.as_ref().map(|c| c.settled_at),
        }));
    }
    let memo = got
        .memo
        .filter(|m| !m.is_empty())
        .map(|m| format!(" for \"{m}\""))
        .unwrap_or_default();
    if let Some((orig, n)) = &refund_of {
        println!("refund {n} of your payment {}", orig.short());
    }
    println!(
        "received {} from {}{memo} (payment {})",
        got.amount,
        got.payer.address(),
        got.payment_id.short()
    );
    if let Some(c) = &confirmation {
        println!(
            "settled at the issuer (final) at {}",
            tongbao::time::format_rfc3339(c.settled_at)
        );
    }
    if let Some(out) = &a.receipt_out {
        println!("receipt written to {}: hand it to the payer", out.display());
    }
    Ok(())
}
