//! `wallet till`: a merchant's tills. `authorize` (back office: a till's registration, for the
//! issuer), `list`, `close` (a till: its signed end-of-day journal), `reconcile` (back office:
//! journals, delivery orders and settlement, matched).

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use tongbao::protocol::file::TbFile;
use tongbao::time::{format_rfc3339, parse_rfc3339};
use tongbao::wallet::reconcile::Report;
use tongbao::{Fen, SignedBody as _};

use super::{Ctx, check_new_output, read, write};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Back office: authorize a till from its registration; write the authorization the issuer
    /// needs to certify it (`issuer certify REG --authorization AUTH`).
    Authorize(AuthorizeArgs),
    /// Back office: the tills authorized.
    List(ListArgs),
    /// Till: close the day: write a till-signed journal of every request, payment and refund
    /// since the last close, with what the issuer settled.
    Close(CloseArgs),
    /// Back office: reconcile requests, sales and delivery orders against payments, refunds and
    /// settlement (imports the journals given).
    Reconcile(ReconcileArgs),
}

#[derive(clap::Args)]
struct AuthorizeArgs {
    /// The till's registration file (from `wallet init --kind till --merchant ADDRESS`).
    registration: PathBuf,
    /// The till's name ("front counter"), at most 40 bytes.
    #[arg(long)]
    name: String,
    /// Where to write the authorization.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
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
struct CloseArgs {
    /// Where to write the journal.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Start the period here instead of at the last close (RFC 3339 or a date): to report again
    /// what settled after an earlier close.
    #[arg(long, value_name = "TIME", value_parser = parse_rfc3339)]
    since: Option<u64>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Report formats.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    /// Aligned columns for people.
    Table,
    /// One row per item, then the totals (RFC 4180).
    Csv,
    /// The whole report.
    Json,
}

#[derive(clap::Args)]
struct ReconcileArgs {
    /// Till journals to import first (from `wallet till close`).
    #[arg(long = "journal", value_name = "FILE")]
    journals: Vec<PathBuf>,
    /// Only items from this time on (RFC 3339, or a date: from its midnight UTC).
    #[arg(long, value_name = "DATE", value_parser = parse_rfc3339)]
    from: Option<u64>,
    /// Only items up to this time (RFC 3339, or a date: to the end of that day UTC).
    #[arg(long, value_name = "DATE")]
    to: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    match a.command {
        Cmd::Authorize(a) => authorize(ctx, a),
        Cmd::List(a) => list(ctx, a),
        Cmd::Close(a) => close(ctx, a),
        Cmd::Reconcile(a) => reconcile(ctx, a),
    }
}

fn authorize(ctx: &Ctx, a: AuthorizeArgs) -> anyhow::Result<()> {
    check_new_output(&a.out)?;
    let reg = match read(&a.registration)? {
        TbFile::Registration(r) => r,
        other => bail!(
            "{} is a {}, not a wallet registration",
            a.registration.display(),
            other.kind_name()
        ),
    };
    let w = ctx.open()?;
    let auth = w.authorize_till(&reg, &a.name, ctx.now)?;
    write(&a.out, &TbFile::TillAuthorization(Box::new(auth.clone())))?;
    if a.json {
        return crate::out::json(&serde_json::json!({
            "till": auth.till.address(), "name": auth.name, "merchant": auth.merchant.address(),
            "file": a.out,
        }));
    }
    println!("till {:?} ({}) authorized", auth.name, auth.till.address());
    println!(
        "authorization written to {}: the issuer certifies the till with `issuer certify {} --authorization {} --class I --out CERT`",
        a.out.display(),
        a.registration.display(),
        a.out.display()
    );
    Ok(())
}

fn list(ctx: &Ctx, a: ListArgs) -> anyhow::Result<()> {
    let w = ctx.open()?;
    let tills = w.tills()?;
    if a.json {
        return crate::out::json(&tills);
    }
    if tills.is_empty() {
        println!("no tills authorized");
    }
    for t in tills {
        println!(
            "{:<20} {} (since {})",
            t.name,
            t.address,
            format_rfc3339(t.authorized_at)
        );
    }
    Ok(())
}

fn close(ctx: &Ctx, a: CloseArgs) -> anyhow::Result<()> {
    check_new_output(&a.out)?;
    let w = ctx.open()?;
    // Recorded as closed before the file is written; `--since` writes the period again.
    let j = w.close_till(a.since, ctx.now)?;
    write(&a.out, &TbFile::TillJournal(Box::new(j.clone())))?;
    let count = |tag: u8| j.entries.iter().filter(|e| e.sort_key().0 == tag).count();
    if a.json {
        return crate::out::json(&serde_json::json!({
            "journal": j.seq, "id": j.id().to_hex(), "from": j.from, "to": j.to,
            "requests": count(1), "payments": count(2), "refunds": count(3),
            "sync_responses": j.responses.len(), "file": a.out,
        }));
    }
    println!(
        "till closed: journal {} from {} to {}: {} request(s), {} payment(s), {} refund(s)",
        j.seq,
        format_rfc3339(j.from),
        format_rfc3339(j.to),
        count(1),
        count(2),
        count(3)
    );
    println!(
        "journal written to {}: the back office reconciles it with `wallet till reconcile --journal {}`",
        a.out.display(),
        a.out.display()
    );
    Ok(())
}

/// The end of `--to`: a bare date means the end of that day.
fn parse_to(s: &str) -> anyhow::Result<u64> {
    let t = parse_rfc3339(s)?;
    Ok(if s.trim().len() == 10 { t + 86_399 } else { t })
}

fn reconcile(ctx: &Ctx, a: ReconcileArgs) -> anyhow::Result<()> {
    let to = a.to.as_deref().map(parse_to).transpose()?;
    let mut journals = Vec::new();
    for p in &a.journals {
        match read(p)? {
            TbFile::TillJournal(j) => journals.push((p, j)),
            other => bail!(
                "{} is a {}, not a till journal",
                p.display(),
                other.kind_name()
            ),
        }
    }
    let w = ctx.open()?;
    // Every journal is checked before any is kept; one commit for all.
    for (p, j) in &journals {
        w.check_journal(j)
            .with_context(|| p.display().to_string())?;
    }
    let all: Vec<_> = journals.into_iter().map(|(_, j)| *j).collect();
    let imported = w.import_journals(&all, ctx.now)?;
    let report = w.reconcile(a.from, to, ctx.now)?;
    match a.format {
        Format::Json => crate::out::json(&report),
        Format::Csv => csv_out(&report),
        Format::Table => {
            for i in &imported {
                println!(
                    "imported journal {} of till {:?}: {} entries",
                    i.seq, i.name, i.entries
                );
            }
            table(&report);
            Ok(())
        }
    }
}

fn yuan(fen: u64) -> String {
    Fen(fen).plain()
}

fn table(r: &Report) {
    let t = &r.totals;
    println!("reconciliation of merchant {}", r.merchant);
    println!(
        "period: {} to {}",
        r.from.map(format_rfc3339).unwrap_or_else(|| "start".into()),
        r.to.map(format_rfc3339).unwrap_or_else(|| "now".into())
    );
    if t.discrepancies > 0 {
        println!("\nDISCREPANCIES: {}", t.discrepancies);
        for n in &r.notes {
            println!("  ! {n}");
        }
    }
    println!(
        "\n{:<1} {:<26} {:<7} {:<12} {:<20} {:<15} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}  detail",
        "",
        "source",
        "kind",
        "reference",
        "time",
        "status",
        "expected",
        "collected",
        "settled",
        "pending",
        "disputed",
        "refunded"
    );
    for i in &r.items {
        println!(
            "{:<1} {:<26} {:<7} {:<12} {:<20} {:<15} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}  {}",
            if i.discrepancy { "!" } else { "" },
            clip(&i.source, 26),
            i.kind,
            clip(&i.reference, 12),
            format_rfc3339(i.time),
            i.status.label(),
            yuan(i.expected_fen),
            yuan(i.collected_fen),
            yuan(i.settled_fen),
            yuan(i.pending_fen),
            yuan(i.disputed_fen),
            yuan(i.refunded_fen),
            i.detail
        );
    }
    println!(
        "\n{:<85} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        format!("TOTAL ({} items)", t.items),
        yuan(t.expected_fen),
        yuan(t.collected_fen),
        yuan(t.settled_fen),
        yuan(t.pending_fen),
        yuan(t.disputed_fen),
        yuan(t.refunded_fen)
    );
    println!(
        "\nexpected ¥{}  collected ¥{} = settled ¥{} + pending ¥{} + disputed ¥{}",
        yuan(t.expected_fen),
        yuan(t.collected_fen),
        yuan(t.settled_fen),
        yuan(t.pending_fen),
        yuan(t.disputed_fen)
    );
    println!(
        "refunded ¥{}  outstanding ¥{}  net (collected - disputed - refunded) ¥{}",
        yuan(t.refunded_fen),
        yuan(t.outstanding_fen),
        yuan(t.net_fen)
    );
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(n - 1).collect();
        out.push('…');
        out
    }
}

fn csv_out(r: &Report) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(std::io::stdout());
    w.write_record([
        "source",
        "kind",
        "reference",
        "time",
        "status",
        "expected_fen",
        "collected_fen",
        "settled_fen",
        "pending_fen",
        "disputed_fen",
        "refunded_fen",
        "payment_id",
        "discrepancy",
        "detail",
    ])?;
    for i in &r.items {
        w.write_record([
            i.source.clone(),
            i.kind.clone(),
            i.reference.clone(),
            format_rfc3339(i.time),
            serde_json::to_value(i.status)?
                .as_str()
                .unwrap_or_default()
                .to_string(),
            i.expected_fen.to_string(),
            i.collected_fen.to_string(),
            i.settled_fen.to_string(),
            i.pending_fen.to_string(),
            i.disputed_fen.to_string(),
            i.refunded_fen.to_string(),
            i.payment_id.clone().unwrap_or_default(),
            i.discrepancy.to_string(),
            i.detail.clone(),
        ])?;
    }
    let t = &r.totals;
    w.write_record([
        "TOTAL".to_string(),
        String::new(),
        format!("{} items", t.items),
        format_rfc3339(r.generated_at),
        format!("{} discrepancies", t.discrepancies),
        t.expected_fen.to_string(),
        t.collected_fen.to_string(),
        t.settled_fen.to_string(),
        t.pending_fen.to_string(),
        t.disputed_fen.to_string(),
        t.refunded_fen.to_string(),
        String::new(),
        (t.discrepancies > 0).to_string(),
        format!("outstanding {} net {}", t.outstanding_fen, t.net_fen),
    ])?;
    w.flush()?;
    Ok(())
}
