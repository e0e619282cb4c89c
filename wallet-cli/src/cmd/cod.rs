//! `wallet cod`: cash on delivery. Merchant: `create` an order for a courier, `accept` the
//! courier's handoff. Courier: `load` an order, `show` its payment code at the door, `collect` the
//! customer's payment (checked offline; a signed delivery receipt for the customer), `refuse`,
//! `handoff` at the depot. `list` on either side.

use std::path::PathBuf;

use anyhow::bail;
use clap::Subcommand;
use tongbao::protocol::certificate::WalletKind;
use tongbao::protocol::file::TbFile;
use tongbao::protocol::handoff::Outcome;
use tongbao::time::{format_rfc3339, parse_duration};
use tongbao::{Fen, PublicKey, SignedBody as _};

use super::{Ctx, check_new_output, read, write};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Merchant: a signed delivery order for a courier, with its payment code.
    Create(CreateArgs),
    /// Courier: load a delivery order.
    Load(LoadArgs),
    /// Courier: show an order's payment code at the door (QR and text).
    Show(ShowArgs),
    /// Either side: the delivery orders and where they stand.
    List(ListArgs),
    /// Courier: check the customer's payment against its order, keep it for the merchant, and
    /// write the delivery receipt for the customer.
    Collect(CollectArgs),
    /// Courier: record a refused delivery.
    Refuse(RefuseArgs),
    /// Courier: the signed manifest of every order carried for one merchant, with the payments.
    Handoff(HandoffArgs),
    /// Merchant: accept a courier's handoff: receive the payments and reconcile the orders.
    Accept(AcceptArgs),
}

#[derive(clap::Args)]
struct CreateArgs {
    /// The order number (at most 64 bytes).
    #[arg(long = "order", value_name = "ID")]
    order: String,
    /// Amount to collect.
    #[arg(long)]
    amount: Fen,
    /// The courier's address.
    #[arg(long, value_name = "ADDRESS")]
    courier: String,
    /// How long the customer can pay, e.g. 12h, 2d.
    #[arg(long, default_value = "2d", value_parser = parse_duration)]
    expires_in: u64,
    /// Where to write the order (for the courier's `wallet cod load`).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct LoadArgs {
    /// The order file.
    file: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct ShowArgs {
    /// The order number (or order id).
    id: String,
    /// Do not draw the QR code.
    #[arg(long)]
    no_qr: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct ListArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct CollectArgs {
    /// The customer's payment file.
    file: PathBuf,
    /// Where to write the courier-signed delivery receipt (for the customer).
    #[arg(long, value_name = "FILE")]
    receipt_out: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct RefuseArgs {
    /// The order number (or order id).
    id: String,
    /// Why (at most 120 bytes).
    #[arg(long)]
    reason: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct HandoffArgs {
    /// Where to write the manifest.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// The merchant (needed when the courier carries orders of several).
    #[arg(long, value_name = "ADDRESS")]
    merchant: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct AcceptArgs {
    /// The courier's handoff manifest.
    file: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    match a.command {
        Cmd::Create(a) => create(ctx, a),
        Cmd::Load(a) => load(ctx, a),
        Cmd::Show(a) => show(ctx, a),
        Cmd::List(a) => list(ctx, a),
        Cmd::Collect(a) => collect(ctx, a),
        Cmd::Refuse(a) => refuse(ctx, a),
        Cmd::Handoff(a) => handoff(ctx, a),
        Cmd::Accept(a) => accept(ctx, a),
    }
}

fn create(ctx: &Ctx, a: CreateArgs) -> anyhow::Result<()> {
    check_new_output(&a.out)?;
    let courier = PublicKey::from_address(&a.courier)?;
    let w = ctx.open()?;
    let order = w.create_cod_order(
        &a.order,
        a.amount,
        courier,
        a.expires_in,
        ctx.now,
        &mut rand::rng(),
    )?;
    write(&a.out, &TbFile::CodOrder(Box::new(order.clone())))?;
    if a.json {
        return crate::out::json(&serde_json::json!({
            "order": order.order_id, "id": order.id().to_hex(), "amount_fen": order.amount().0,
            "courier": order.courier.address(), "request_id": order.request.request_id.to_hex(),
            "expires_at": order.request.expires_at, "code": order.request.to_code(), "file": a.out,
        }));
    }
    println!(
        "delivery order {} for {}: courier {}, payable until {}",
        order.order_id,
        order.amount(),
        order.courier.address(),
        format_rfc3339(order.request.expires_at)
    );
    println!(
        "order written to {}: the courier loads it with `wallet cod load`",
        a.out.display()
    );
    Ok(())
}

fn load(ctx: &Ctx, a: LoadArgs) -> anyhow::Result<()> {
    let order = match read(&a.file)? {
        TbFile::CodOrder(o) => o,
        other => bail!(
            "{} is a {}, not a delivery order",
            a.file.display(),
            other.kind_name()
        ),
    };
    let w = ctx.open()?;
    let rec = w.load_cod_order(&order, ctx.now)?;
    if a.json {
        return crate::out::json(&rec_json(&rec));
    }
    println!(
        "loaded order {}: collect {} for merchant {} until {}",
        rec.order_id,
        Fen(rec.amount_fen),
        rec.merchant,
        format_rfc3339(rec.expires_at)
    );
    Ok(())
}

fn rec_json(rec: &tongbao::wallet::courier::CarriedOrder) -> serde_json::Value {
    let mut v = serde_json::to_value(rec).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.remove("order_hex");
        m.remove("payment_hex");
    }
    v
}

fn show(ctx: &Ctx, a: ShowArgs) -> anyhow::Result<()> {
    let w = ctx.open()?;
    let rec = w.carried_order(&a.id)?;
    let order = rec.order()?;
    let code = order.request.to_code();
    if a.json {
        let mut v = rec_json(&rec);
        if let Some(m) = v.as_object_mut() {
            m.insert("code".into(), code.into());
        }
        return crate::out::json(&v);
    }
    println!(
        "order {}: pay {} to merchant {} (until {}), status {}",
        rec.order_id,
        order.amount(),
        order.merchant.address(),
        format_rfc3339(order.request.expires_at),
        rec.status
    );
    crate::qr::print_code(&code, !a.no_qr)?;
    println!("the customer pays it with `wallet pay --request CODE --out FILE`");
    Ok(())
}

fn list(ctx: &Ctx, a: ListArgs) -> anyhow::Result<()> {
    let w = ctx.open()?;
    if w.kind() == WalletKind::Courier {
        let v = w.carried_orders()?;
        if a.json {
            return crate::out::json(&v.iter().map(rec_json).collect::<Vec<_>>());
        }
        for o in v {
            println!(
                "{:<16} {:>12} {:<10} merchant {}",
                o.order_id,
                Fen(o.amount_fen).to_string(),
                o.status,
                o.merchant
            );
        }
        return Ok(());
    }
    let v = w.cod_orders()?;
    if a.json {
        let list: Vec<serde_json::Value> = v
            .iter()
            .map(|o| {
                let mut j = serde_json::to_value(o).unwrap_or_default();
                if let Some(m) = j.as_object_mut() {
                    m.remove("order_hex");
                }
                j
            })
            .collect();
        return crate::out::json(&list);
    }
    for o in v {
        println!(
            "{:<16} {:>12} {:<16} courier {}",
            o.order_id,
            Fen(o.amount_fen).to_string(),
            o.status,
            o.courier
        );
    }
    Ok(())
}

fn collect(ctx: &Ctx, a: CollectArgs) -> anyhow::Result<()> {
    check_new_output(&a.receipt_out)?;
    let payment = match read(&a.file)? {
        TbFile::Payment(p) => p,
        other => bail!(
            "{} is a {}, not a payment",
            a.file.display(),
            other.kind_name()
        ),
    };
    let w = ctx.open()?;
    let (rec, receipt) = w.collect_cod(&payment, ctx.now)?;
    write(
        &a.receipt_out,
        &TbFile::DeliveryReceipt(Box::new(receipt.clone())),
    )?;
    if a.json {
        return crate::out::json(&serde_json::json!({
            "order": rec.order_id, "payment_id": receipt.payment_id.to_hex(),
            "payer": receipt.payer.address(), "amount_fen": receipt.amount.0,
            "merchant": receipt.merchant.address(), "receipt": a.receipt_out,
        }));
    }
    println!(
        "order {} paid: {} from {} to merchant {} (payment {})",
        rec.order_id,
        receipt.amount,
        receipt.payer.address(),
        receipt.merchant.address(),
        receipt.payment_id.short()
    );
    println!(
        "delivery receipt written to {}: hand it to the customer; the payment goes to the merchant at handoff",
        a.receipt_out.display()
    );
    Ok(())
}

fn refuse(ctx: &Ctx, a: RefuseArgs) -> anyhow::Result<()> {
    let w = ctx.open()?;
    let rec = w.refuse_cod(&a.id, &a.reason, ctx.now)?;
    if a.json {
        return crate::out::json(&rec_json(&rec));
    }
    println!("order {} refused: {}", rec.order_id, a.reason);
    Ok(())
}

fn handoff(ctx: &Ctx, a: HandoffArgs) -> anyhow::Result<()> {
    check_new_output(&a.out)?;
    let merchant = a
        .merchant
        .as_deref()
        .map(PublicKey::from_address)
        .transpose()?;
    let w = ctx.open()?;
    let m = w.cod_handoff(merchant, ctx.now)?;
    write(&a.out, &TbFile::Handoff(Box::new(m.clone())))?;
    let (mut paid, mut refused, mut open, mut total) = (0, 0, 0, Fen::ZERO);
    for e in &m.entries {
        match &e.outcome {
            Outcome::Paid(p) => {
                paid += 1;
                total = total.checked_add(p.amount).unwrap_or(total);
            }
            Outcome::Refused { .. } => refused += 1,
            Outcome::NotDelivered => open += 1,
        }
    }
    if a.json {
        return crate::out::json(&serde_json::json!({
            "manifest": m.id().to_hex(), "merchant": m.merchant.address(), "orders": m.entries.len(),
            "paid": paid, "refused": refused, "not_delivered": open, "collected_fen": total.0,
            "file": a.out,
        }));
    }
    println!(
        "handoff {} for {}: {} order(s): {paid} paid ({total}), {refused} refused, {open} not delivered",
        m.id().short(),
        m.merchant.address(),
        m.entries.len()
    );
    println!(
        "manifest written to {}: the merchant accepts it with `wallet cod accept`",
        a.out.display()
    );
    Ok(())
}

fn accept(ctx: &Ctx, a: AcceptArgs) -> anyhow::Result<()> {
    let m = match read(&a.file)? {
        TbFile::Handoff(m) => m,
        other => bail!(
            "{} is a {}, not a handoff manifest",
            a.file.display(),
            other.kind_name()
        ),
    };
    let w = ctx.open()?;
    let got = w.accept_handoff(&m, ctx.now)?;
    if a.json {
        return crate::out::json(&got);
    }
    println!(
        "handoff {} from courier {}: {} received",
        &got.manifest[..8],
        got.courier,
        Fen(got.credited_fen)
    );
    for l in &got.orders {
        println!(
            "  {:<16} {:>12} {:<16} {}",
            l.order_id,
            Fen(l.amount_fen).to_string(),
            l.status,
            l.detail.as_deref().unwrap_or("")
        );
    }
    Ok(())
}
