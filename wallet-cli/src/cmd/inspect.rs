//! `wallet inspect FILE_OR_CODE`: decode any Tongbao file or payment code and check what can be
//! checked: signatures always, and against the issuer keys when a wallet is at hand.

use std::path::Path;

use serde_json::{Value, json};
use tongbao::Fen;
use tongbao::protocol::certificate::WalletKind;
use tongbao::protocol::file::TbFile;
use tongbao::protocol::keyset::IssuerKeySet;
use tongbao::protocol::proof::DoubleSpendProof;
use tongbao::protocol::request::PaymentRequest;
use tongbao::protocol::revocation::RevocationList;
use tongbao::protocol::{Context, SignedBody};
use tongbao::time::format_rfc3339;

use super::{Ctx, read};

#[derive(clap::Args)]
pub struct Args {
    /// A Tongbao file, or a `tbreq1...` payment code, or a `tbw1...` address.
    input: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let text = a.input.trim();
    let file = if text.to_lowercase().starts_with("tbreq1") {
        TbFile::Request(PaymentRequest::from_code(text)?)
    } else if text.to_lowercase().starts_with("tbw1") {
        let pk = tongbao::PublicKey::from_address(text)?;
        let v = json!({ "kind": "wallet address", "address": pk.address(), "check": "ok: valid address" });
        return print(&v, a.json);
    } else {
        read(Path::new(&a.input))?
    };
    // Issuer keys and revocations from the wallet, if there is one.
    let wallet = if ctx.dir.join("db").exists() {
        ctx.open().ok()
    } else {
        None
    };
    let keyset: Option<IssuerKeySet> = wallet.as_ref().and_then(|w| w.keyset().ok());
    let rl: Option<RevocationList> = wallet.as_ref().and_then(|w| w.revocations().ok().flatten());
    let check = |f: &dyn Fn(&Context<'_>) -> Result<(), tongbao::protocol::VerifyError>| -> String {
        match &keyset {
            None => "not checked: no wallet (and so no issuer key set) at hand; give --wallet"
                .to_string(),
            Some(k) => match f(&Context {
                keys: k,
                now: ctx.now,
                revoked: rl.as_ref(),
            }) {
                Ok(()) => {
                    "ok: signatures and rules check against the wallet's issuer keys".to_string()
                }
                Err(e) => format!("INVALID: {e}"),
            },
        }
    };
    let v = match &file {
        TbFile::KeySet(k) => json!({
            "kind": file.kind_name(),
            "issuer": k.root.address(),
            "version": k.set_version,
            "issued_at": format_rfc3339(k.issued_at),
            "max_hops": k.policy.max_hops,
            "keys": k.keys.iter().map(|e| json!({
                "key_id": e.key_id,
                "not_before": format_rfc3339(e.not_before),
                "issue_until": format_rfc3339(e.issue_until),
                "redeem_until": format_rfc3339(e.redeem_until),
            })).collect::<Vec<_>>(),
            "check": match k.verify() { Ok(()) => "ok: signed by its root key".to_string(), Err(e) => format!("INVALID: {e}") },
        }),
        TbFile::Registration(r) => json!({
            "kind": file.kind_name(),
            "wallet": r.wallet.address(),
            "wallet_kind": r.kind,
            "merchant": r.merchant.map(|m| m.address()),
            "created_at": format_rfc3339(r.created_at),
            "check": match r.verify() { Ok(()) => "ok: signed by the wallet key".to_string(), Err(e) => format!("INVALID: {e}") },
        }),
        TbFile::Certificate(c) => json!({
            "kind": file.kind_name(),
            "wallet": c.wallet.address(),
            "wallet_kind": c.kind,
            "class": c.class.to_string(),
            "serial": c.serial,
            "balance_max": c.limits.balance_max.to_string(),
            "per_payment_max": c.limits.per_payment_max.to_string(),
            "offline_total_max": c.limits.offline_total_max.to_string(),
            "offline_count_max": c.limits.offline_count_max,
            "expires_at": format_rfc3339(c.expires_at),
            "check": check(&|cx| c.verify(cx)),
        }),
        TbFile::Notes(b) => json!({
            "kind": file.kind_name(),
            "notes": b.notes.iter().map(|n| json!({
                "id": n.id().to_hex(),
                "value": n.value.to_string(),
                "holder": n.holder.address(),
                "key_id": n.key_id,
                "issued_at": format_rfc3339(n.issued_at),
            })).collect::<Vec<_>>(),
            "total": Fen::checked_sum(b.notes.iter().map(|n| n.value)).map(|f| f.to_string()),
            "check": check(&|cx| b.notes.iter().try_for_each(|n| n.verify(cx))),
        }),
        TbFile::Request(r) => json!({
            "kind": file.kind_name(),
            "payee": r.payee.address(),
            "amount": if r.amount == Fen::ZERO { "payer enters the amount".to_string() } else { r.amount.to_string() },
            "request_id": r.request_id.to_hex(),
            "memo": r.memo,
            "expires_at": format_rfc3339(r.expires_at),
            "code": r.to_code(),
            "check": match keyset.as_ref() {
                Some(k) => match r.verify(&Context { keys: k, now: ctx.now, revoked: None }) {
                    Ok(()) => "ok: signed by the payee, not expired".to_string(),
                    Err(e) => format!("INVALID: {e}"),
                },
                None => match r.payee.verify(&r.signing_bytes(), &r.signature, "request") {
                    Ok(()) => "ok: signed by the payee".to_string(),
                    Err(e) => format!("INVALID: {e}"),
                },
            },
        }),
        TbFile::Payment(p) => json!({
            "kind": file.kind_name(),
            "id": p.id().to_hex(),
            "payer": p.payer().address(),
            "payee": p.payee.address(),
            "amount": p.amount.to_string(),
            "request_id": p.request_id.to_hex(),
            "counter": p.counter,
            "time": format_rfc3339(p.time),
            "coins": p.coins.iter().map(|c| json!({ "value": c.value().to_string(), "hops": c.hops.len() })).collect::<Vec<_>>(),
            "carries_revocation_list": p.revocations.as_ref().map(|l| l.list_version),
            "check": check(&|cx| p.verify(cx, &p.payee, WalletKind::Merchant).map(|_| ())),
        }),
        TbFile::Receipt(r) => json!({
            "kind": file.kind_name(),
            "payment_id": r.payment_id.to_hex(),
            "payer": r.payer.address(),
            "payee": r.payee.address(),
            "amount": r.amount.to_string(),
            "time": format_rfc3339(r.time),
            "check": match r.verify() { Ok(()) => "ok: signed by the payee".to_string(), Err(e) => format!("INVALID: {e}") },
        }),
        TbFile::Revocations(l) => json!({
            "kind": file.kind_name(),
            "issuer": l.root.address(),
            "version": l.list_version,
            "revoked": l.entries.iter().map(|e| json!({
                "wallet": e.wallet.address(), "reason": e.reason.as_str(), "at": format_rfc3339(e.revoked_at),
            })).collect::<Vec<_>>(),
            "check": check(&|cx| l.verify(cx.keys)),
        }),
        TbFile::Proof(p) => json!({
            "kind": file.kind_name(),
            "proof_kind": p.kind(),
            "cheater": p.signer().address(),
            "coin": p.coin().to_hex(),
            "what": p.what(),
            "transfers": p.transfers().iter().map(|t| t.id().to_hex()).collect::<Vec<_>>(),
            "check": match p {
                // Two transfers signed by one key: no issuer key needed.
                DoubleSpendProof::TwoSpends(t) => match t.verify() { Ok(()) => "ok: two different transfers of one coin, both signed by the cheater".to_string(), Err(e) => format!("INVALID: {e}") },
                // The issuer's statement of the collection is checked against its root.
                DoubleSpendProof::CollectedThenSpent(c) => check(&|cx| c.verify(cx.keys)),
            },
        }),
        TbFile::SyncRequest(q) => json!({
            "kind": file.kind_name(),
            "wallet": q.wallet.address(),
            "sync_id": q.sync_id.to_hex(),
            "time": format_rfc3339(q.time),
            "coin_chains": q.coins.len(),
            "proofs": q.proofs.len(),
            "topup": q.topup.to_string(),
            "redeem": q.redeem.to_string(),
            "check": match q.verify_signature() { Ok(()) => "ok: signed by the wallet".to_string(), Err(e) => format!("INVALID: {e}") },
        }),
        TbFile::SyncResponse(r) => json!({
            "kind": file.kind_name(),
            "wallet": r.wallet.address(),
            "sync_id": r.sync_id.to_hex(),
            "time": format_rfc3339(r.time),
            "results": r.results.iter().map(|x| json!({
                "coin": x.coin.to_hex(), "value": x.value.to_string(),
                "status": format!("{:?}", x.status).to_lowercase(), "reason": x.reason.as_str(),
            })).collect::<Vec<_>>(),
            "fresh_notes": Fen::checked_sum(r.notes.iter().map(|n| n.value)).map(|f| f.to_string()),
            "collected": r.collected.len(),
            "redeemed": r.redeemed.to_string(),
            "revocation_list_version": r.revocations.list_version,
            "check": check(&|cx| r.verify(cx.keys)),
        }),
        TbFile::ConfirmedPayment(p, c) => json!({
            "kind": file.kind_name(),
            "id": p.id().to_hex(),
            "payer": p.payer().address(),
            "payee": p.payee.address(),
            "amount": p.amount.to_string(),
            "settled_at": format_rfc3339(c.settled_at),
            "check": check(&|cx| { c.verify(cx.keys, p)?; p.verify(cx, &p.payee, WalletKind::Merchant).map(|_| ()) }),
        }),
        TbFile::TillAuthorization(t) => json!({
            "kind": file.kind_name(),
            "merchant": t.merchant.address(),
            "till": t.till.address(),
            "name": t.name,
            "created_at": format_rfc3339(t.created_at),
            "check": match t.verify() { Ok(()) => "ok: signed by the merchant".to_string(), Err(e) => format!("INVALID: {e}") },
        }),
        TbFile::Refund(r) => json!({
            "kind": file.kind_name(),
            "refund_id": r.payment.id().to_hex(),
            "refunds_payment": r.original.to_hex(),
            "number": r.number,
            "refunder": r.payment.payer().address(),
            "customer": r.payment.payee.address(),
            "amount": r.payment.amount.to_string(),
            "check": check(&|cx| r.payment.verify(cx, &r.payment.payee, WalletKind::Personal).map(|_| ())),
        }),
        TbFile::TillJournal(j) => json!({
            "kind": file.kind_name(),
            "till": j.till.address(),
            "merchant": j.merchant.address(),
            "journal": j.seq,
            "from": format_rfc3339(j.from),
            "to": format_rfc3339(j.to),
            "entries": j.entries.len(),
            "sync_responses": j.responses.len(),
            "check": check(&|cx| j.verify(cx.keys)),
        }),
        TbFile::CodOrder(o) => json!({
            "kind": file.kind_name(),
            "order": o.order_id,
            "id": o.id().to_hex(),
            "merchant": o.merchant.address(),
            "courier": o.courier.address(),
            "amount": o.amount().to_string(),
            "expires_at": format_rfc3339(o.request.expires_at),
            "code": o.request.to_code(),
            "check": match o.verify() { Ok(()) => "ok: signed by the merchant".to_string(), Err(e) => format!("INVALID: {e}") },
        }),
        TbFile::DeliveryReceipt(d) => json!({
            "kind": file.kind_name(),
            "order": d.order_id,
            "courier": d.courier.address(),
            "merchant": d.merchant.address(),
            "payment_id": d.payment_id.to_hex(),
            "payer": d.payer.address(),
            "amount": d.amount.to_string(),
            "time": format_rfc3339(d.time),
            "check": match d.verify() { Ok(()) => "ok: signed by the courier".to_string(), Err(e) => format!("INVALID: {e}") },
        }),
        TbFile::Handoff(m) => json!({
            "kind": file.kind_name(),
            "id": m.id().to_hex(),
            "courier": m.courier.address(),
            "merchant": m.merchant.address(),
            "time": format_rfc3339(m.time),
            "orders": m.entries.len(),
            "check": match m.verify() { Ok(()) => "ok: signed by the courier".to_string(), Err(e) => format!("INVALID: {e}") },
        }),
    };
    print(&v, a.json)
}

fn print(v: &Value, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return crate::out::json(v);
    }
    if let Value::Object(m) = v {
        for (k, val) in m {
            match val {
                Value::String(s) => println!("{k}: {s}"),
                Value::Null => {}
                other => println!("{k}: {other}"),
            }
        }
    }
    let invalid = v
        .get("check")
        .and_then(Value::as_str)
        .is_some_and(|s| s.starts_with("INVALID"));
    if invalid {
        anyhow::bail!(
            "{}",
            v.get("check").and_then(Value::as_str).unwrap_or_default()
        );
    }
    Ok(())
}
