//! The back office's reconciliation: every request, sale and delivery order of the merchant and its
//! tills, matched against payments, refunds and what the issuer settled. See
//! docs/merchants.md#reconciliation.
//!
//! Each item carries its own amounts, with `collected = settled + pending + disputed`, so the
//! totals (plain sums) reconcile to the fen by construction; `net = collected - disputed -
//! refunded` is what the merchant keeps.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::cod::OrderRecord;
use super::merchant::{id_hex, nonce_hex};
use super::{Store, Wallet, WalletError};
use crate::crypto::{Id, Nonce, PublicKey};
use crate::money::Fen;
use crate::protocol::certificate::WalletKind;
use crate::protocol::journal::{CoinSettlement, JournalEntry};
use crate::protocol::sync::RejectReason;

/// Where an item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Asked for, not paid yet, still payable (or a delivery still with the courier).
    Open,
    /// Asked for, never paid, past its expiry.
    Expired,
    /// Paid (offline), not settled at the issuer yet.
    PaidOffline,
    /// Paid and settled at the issuer.
    Settled,
    /// Paid, but the payer spent the same money elsewhere first: rejected at settlement.
    DoubleSpent,
    /// Paid, but rejected for another reason (at settlement, or not accepted from a courier).
    Rejected,
    /// Paid and refunded in full.
    Refunded,
    /// A delivery the customer refused.
    Refused,
    /// A delivery order the courier's handoff does not account for.
    Missing,
    /// A delivery paid with another amount than the order's.
    AmountMismatch,
}

impl Status {
    /// For people.
    pub fn label(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Expired => "expired",
            Status::PaidOffline => "paid offline",
            Status::Settled => "settled",
            Status::DoubleSpent => "double spent",
            Status::Rejected => "rejected",
            Status::Refunded => "refunded",
            Status::Refused => "refused",
            Status::Missing => "missing",
            Status::AmountMismatch => "amount mismatch",
        }
    }

    /// Whether the item needs someone to look at it.
    pub fn is_discrepancy(self) -> bool {
        matches!(
            self,
            Status::DoubleSpent | Status::Rejected | Status::Missing | Status::AmountMismatch
        )
    }
}

/// One reconciled item.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// Where: `back office`, `till <name>`, `courier <address>`.
    pub source: String,
    /// request, static (a payment to a static code), sale (a direct payment), cod, refund.
    pub kind: String,
    /// Request id, order number or payment id (short).
    pub reference: String,
    /// When it was asked for or paid (unix seconds).
    pub time: u64,
    /// Where it stands.
    pub status: Status,
    /// Asked for and still standing (nothing for expired requests and refused deliveries).
    pub expected_fen: u64,
    /// Paid by the customer (offline, online or to the courier).
    pub collected_fen: u64,
    /// Of that, settled at the issuer.
    pub settled_fen: u64,
    /// Of that, not settled yet.
    pub pending_fen: u64,
    /// Of that, rejected (double spent, or not accepted).
    pub disputed_fen: u64,
    /// Paid back to the customer.
    pub refunded_fen: u64,
    /// The payment (hex), if paid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// What is wrong, or other details.
    pub detail: String,
    /// Listed first: needs attention.
    pub discrepancy: bool,
}

/// The sums over the items, in fen.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Totals {
    /// Items.
    pub items: usize,
    /// Discrepancies (items and notes).
    pub discrepancies: usize,
    /// Asked for.
    pub expected_fen: u64,
    /// Paid by customers.
    pub collected_fen: u64,
    /// Settled at the issuer.
    pub settled_fen: u64,
    /// Paid, not yet settled.
    pub pending_fen: u64,
    /// Paid, rejected.
    pub disputed_fen: u64,
    /// Paid back.
    pub refunded_fen: u64,
    /// Asked for and not paid (open and missing items, mismatched deliveries).
    pub outstanding_fen: u64,
    /// What the merchant keeps: collected - disputed - refunded.
    pub net_fen: u64,
}

/// A reconciliation report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The merchant's address.
    pub merchant: String,
    /// Start of the period (unix seconds), if given.
    pub from: Option<u64>,
    /// End of the period, if given.
    pub to: Option<u64>,
    /// When made.
    pub generated_at: u64,
    /// Sums.
    pub totals: Totals,
    /// Problems that are not items (missing journals).
    pub notes: Vec<String>,
    /// Discrepancies first, then by time.
    pub items: Vec<Item>,
}

/// What one source (a till's merged journals, or the back office) says.
struct Source {
    name: String,
    entries: Vec<JournalEntry>,
}

fn reason_status(r: RejectReason) -> Status {
    if r == RejectReason::DoubleSpend {
        Status::DoubleSpent
    } else {
        Status::Rejected
    }
}

/// The status and amounts of a payment from its coins' settlement.
fn payment_item(item: &mut Item, amount: Fen, coins: &[(Id, CoinSettlement)], confirmed: bool) {
    item.collected_fen = amount.0;
    let rejected = coins.iter().find_map(|(_, s)| match s {
        CoinSettlement::Rejected { reason, .. } => Some(*reason),
        _ => None,
    });
    if let Some(r) = rejected {
        item.status = reason_status(r);
        item.disputed_fen = amount.0;
        item.detail = format!("rejected at settlement: {}", r.as_str());
    } else if confirmed
        || coins
            .iter()
            .all(|(_, s)| matches!(s, CoinSettlement::Settled { .. }))
    {
        item.status = Status::Settled;
        item.settled_fen = amount.0;
        if confirmed {
            item.detail = "settled online".into();
        }
    } else {
        item.status = Status::PaidOffline;
        item.pending_fen = amount.0;
    }
}

fn blank(source: &str, kind: &str, reference: String, time: u64) -> Item {
    Item {
        source: source.to_string(),
        kind: kind.to_string(),
        reference,
        time,
        status: Status::Open,
        expected_fen: 0,
        collected_fen: 0,
        settled_fen: 0,
        pending_fen: 0,
        disputed_fen: 0,
        refunded_fen: 0,
        payment_id: None,
        detail: String::new(),
        discrepancy: false,
    }
}

/// Items of one source's entries, with refunds applied to the payments they refund (refunds of
/// payments found nowhere become items of their own).
fn source_items(src: &Source, now: u64, refunds: &mut Vec<(Id, Fen, u64, String)>) -> Vec<Item> {
    let mut requests: HashMap<Nonce, (Fen, u64, u64, String)> = HashMap::new();
    let mut payments: Vec<&JournalEntry> = Vec::new();
    for e in &src.entries {
        match e {
            JournalEntry::Request {
                request_id,
                amount,
                created_at,
                expires_at,
                memo,
            } => {
                requests.insert(
                    *request_id,
                    (*amount, *created_at, *expires_at, memo.clone()),
                );
            }
            JournalEntry::Payment { .. } => payments.push(e),
            JournalEntry::Refund {
                payment_id,
                original,
                amount,
                time,
                ..
            } => refunds.push((*original, *amount, *time, payment_id.short())),
        }
    }
    let mut items = Vec::new();
    let mut paid_requests: Vec<Nonce> = Vec::new();
    for e in payments {
        let JournalEntry::Payment {
            payment_id,
            amount,
            request_id,
            time,
            coins,
            confirmation,
            ..
        } = e
        else {
            continue;
        };
        let (kind, expected, t, memo) = match requests.get(request_id) {
            Some((a, created, _, memo)) if *a != Fen::ZERO => {
                paid_requests.push(*request_id);
                ("request", *a, *created, memo.clone())
            }
            Some((_, _, _, memo)) => ("static", *amount, *time, memo.clone()),
            None => ("sale", *amount, *time, String::new()),
        };
        let reference = if kind == "request" {
            request_id.short()
        } else {
            payment_id.short()
        };
        let mut item = blank(&src.name, kind, reference, t);
        item.expected_fen = expected.0;
        item.payment_id = Some(payment_id.to_hex());
        payment_item(&mut item, *amount, coins, confirmation.is_some());
        if item.detail.is_empty() {
            item.detail = memo;
        }
        items.push(item);
    }
    for (id, (amount, created, expires, memo)) in &requests {
        if *amount == Fen::ZERO || paid_requests.contains(id) {
            continue;
        }
        let mut item = blank(&src.name, "request", id.short(), *created);
        if now > *expires {
            item.status = Status::Expired;
        } else {
            item.status = Status::Open;
            item.expected_fen = amount.0;
        }
        item.detail = memo.clone();
        items.push(item);
    }
    items
}

impl<S: Store> Wallet<S> {
    /// Reconciles the back office, its tills' imported journals and its delivery orders, for
    /// items between `from` and `to` (either open-ended).
    pub fn reconcile(
        &self,
        from: Option<u64>,
        to: Option<u64>,
        now: u64,
    ) -> Result<Report, WalletError> {
        if self.kind() != WalletKind::Merchant {
            return Err(WalletError::Refused(format!(
                "reconciliation runs on the merchant's back office wallet (this is a {} wallet)",
                self.kind()
            )));
        }
        let mut notes = Vec::new();
        let orders = self.cod_orders()?;
        let cod_requests: Vec<Nonce> = orders
            .iter()
            .map(|o| nonce_hex(&o.request_id))
            .collect::<Result<_, _>>()?;
        let cod_payments: Vec<&str> = orders
            .iter()
            .filter_map(|o| o.payment_id.as_deref())
            .collect();
        // The back office's own requests and sales (delivery orders are items of their own).
        let (mut own, _) = self.journal_entries(0, u64::MAX, &cod_requests)?;
        own.retain(|e| match e {
            JournalEntry::Payment {
                payment_id,
                request_id,
                ..
            } => {
                !cod_requests.contains(request_id)
                    && !cod_payments.contains(&payment_id.to_hex().as_str())
            }
            _ => true,
        });
        let mut sources = vec![Source {
            name: "back office".into(),
            entries: own,
        }];
        // Each till's journals, newest first per entry.
        let mut by_till: BTreeMap<String, Vec<crate::protocol::journal::TillJournal>> =
            BTreeMap::new();
        for j in self.journals()? {
            by_till.entry(j.till.address()).or_default().push(j);
        }
        for t in self.tills()? {
            let name = format!("till {}", t.name);
            let Some(mut js) = by_till.remove(&t.address) else {
                notes.push(format!(
                    "no journal from {name} ({}): close it with `wallet till close`",
                    t.address
                ));
                continue;
            };
            js.sort_by_key(|j| j.seq);
            let have: Vec<u64> = js.iter().map(|j| j.seq).collect();
            let last = have.last().copied().unwrap_or(0);
            for n in 1..=last {
                if !have.contains(&n) {
                    notes.push(format!("journal {n} of {name} is missing"));
                }
            }
            let mut merged: BTreeMap<(u8, [u8; 32]), JournalEntry> = BTreeMap::new();
            for j in js {
                for e in j.entries {
                    merged.insert(e.sort_key(), e);
                }
            }
            sources.push(Source {
                name,
                entries: merged.into_values().collect(),
            });
        }
        let mut items = Vec::new();
        let mut refunds = Vec::new();
        for src in &sources {
            items.extend(source_items(src, now, &mut refunds));
        }
        for o in &orders {
            items.push(self.order_item(o, now)?);
        }
        // Refunds onto the payments they refund.
        for (original, amount, time, refund_ref) in refunds {
            let hex = original.to_hex();
            match items
                .iter_mut()
                .find(|i| i.payment_id.as_deref() == Some(hex.as_str()))
            {
                Some(i) => {
                    i.refunded_fen = i.refunded_fen.saturating_add(amount.0);
                    if i.refunded_fen >= i.collected_fen && i.disputed_fen == 0 {
                        i.status = Status::Refunded;
                    }
                    let line = format!("refund {refund_ref} {amount}");
                    i.detail = if i.detail.is_empty() {
                        line
                    } else {
                        format!("{}; {line}", i.detail)
                    };
                }
                None => {
                    let mut i = blank("", "refund", refund_ref, time);
                    i.status = Status::Refunded;
                    i.refunded_fen = amount.0;
                    i.detail = format!("refund of payment {}", original.short());
                    items.push(i);
                }
            }
        }
        items.retain(|i| from.is_none_or(|f| i.time >= f) && to.is_none_or(|t| i.time <= t));
        for i in &mut items {
            i.discrepancy = i.status.is_discrepancy();
        }
        items.sort_by(|a, b| {
            (!a.discrepancy, a.time, &a.source, &a.reference).cmp(&(
                !b.discrepancy,
                b.time,
                &b.source,
                &b.reference,
            ))
        });
        let mut t = Totals {
            items: items.len(),
            discrepancies: notes.len(),
            ..Totals::default()
        };
        for i in &items {
            t.discrepancies += usize::from(i.discrepancy);
            t.expected_fen += i.expected_fen;
            t.collected_fen += i.collected_fen;
            t.settled_fen += i.settled_fen;
            t.pending_fen += i.pending_fen;
            t.disputed_fen += i.disputed_fen;
            t.refunded_fen += i.refunded_fen;
            if matches!(
                i.status,
                Status::Open | Status::Missing | Status::AmountMismatch
            ) {
                t.outstanding_fen += i.expected_fen.saturating_sub(i.collected_fen);
            }
        }
        t.net_fen = t
            .collected_fen
            .saturating_sub(t.disputed_fen)
            .saturating_sub(t.refunded_fen);
        Ok(Report {
            merchant: self.public().address(),
            from,
            to,
            generated_at: now,
            totals: t,
            notes,
            items,
        })
    }

    fn order_item(&self, o: &OrderRecord, now: u64) -> Result<Item, WalletError> {
        let courier = PublicKey::from_address(&o.courier)
            .map(|c| c.short())
            .unwrap_or_else(|_| o.courier.clone());
        let mut i = blank(
            &format!("courier {courier}"),
            "cod",
            o.order_id.clone(),
            o.created_at,
        );
        i.expected_fen = o.amount_fen;
        i.payment_id = o.payment_id.clone();
        i.detail = o.detail.clone().unwrap_or_default();
        match o.status.as_str() {
            "paid" => {
                let mut coins = Vec::with_capacity(o.coins.len());
                for c in &o.coins {
                    let id = id_hex(c)?;
                    let s = match self.coin_settlement(&id)? {
                        None => CoinSettlement::Pending,
                        Some(s) => s.to_journal()?,
                    };
                    coins.push((id, s));
                }
                payment_item(&mut i, Fen(o.amount_fen), &coins, false);
                if i.status == Status::PaidOffline {
                    i.detail = "handed over, not settled yet".into();
                }
            }
            "refused" => {
                i.status = Status::Refused;
                i.expected_fen = 0;
            }
            "missing" => i.status = Status::Missing,
            "amount-mismatch" => i.status = Status::AmountMismatch,
            "rejected" => {
                i.status = Status::Rejected;
                i.collected_fen = o.amount_fen;
                i.disputed_fen = o.amount_fen;
            }
            _ => {
                if now > o.expires_at {
                    i.status = Status::Expired;
                    i.expected_fen = 0;
                } else {
                    i.status = Status::Open;
                    if i.detail.is_empty() {
                        i.detail = if o.status == "not-delivered" {
                            "not delivered yet".into()
                        } else {
                            "with the courier".into()
                        };
                    }
                }
            }
        }
        Ok(i)
    }
}
