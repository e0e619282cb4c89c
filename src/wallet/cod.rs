//! Cash on delivery, the merchant's side: sign an order for a courier (carrying the payment request
//! the customer pays, to the merchant's key), and accept the courier's handoff in one commit. The
//! courier's side is in `courier.rs`. See docs/merchants.md#cash-on-delivery.

use std::collections::HashMap;

use rand::{CryptoRng, Rng};
use serde::{Deserialize, Serialize};

use super::merchant::id_hex;
use super::receive::Staged;
use super::records::{HistoryEntry, RequestRecord};
use super::{Batch, ReceiveNote, Store, Wallet, WalletError, keys};
use crate::codec::{Decode, Encode};
use crate::crypto::{Id, Nonce, PublicKey};
use crate::money::Fen;
use crate::protocol::SignedBody;
use crate::protocol::certificate::WalletKind;
use crate::protocol::cod_order::{CodOrder, MAX_ORDER_ID};
use crate::protocol::handoff::{HandoffEntry, HandoffManifest, Outcome};
use crate::protocol::proof::DoubleSpendProof;
use crate::protocol::request::{MAX_MEMO, PaymentRequest};
use crate::time::format_rfc3339;

/// A cash-on-delivery order, as the merchant's back office keeps it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OrderRecord {
    /// The order id (blake3 of the signed order, hex).
    pub id: String,
    /// The merchant's order number.
    pub order_id: String,
    /// The courier's address.
    pub courier: String,
    /// Amount to collect, in fen.
    pub amount_fen: u64,
    /// When made.
    pub created_at: u64,
    /// Until when the customer can pay.
    pub expires_at: u64,
    /// The order's payment request id (hex).
    pub request_id: String,
    /// with-courier, paid, refused, not-delivered, missing, amount-mismatch, rejected.
    pub status: String,
    /// The customer's payment (hex), once handed over.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub payment_id: Option<String>,
    /// Its coins (hex ids), for settlement.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub coins: Vec<String>,
    /// The amount the payment carried, when it differs.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub paid_fen: Option<u64>,
    /// When the outcome was recorded by the courier.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub outcome_at: Option<u64>,
    /// The manifest that reported it (hex).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub handoff: Option<String>,
    /// A refusal reason, or why a payment was not accepted.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub detail: Option<String>,
    /// The signed order (hex).
    pub order_hex: String,
}

/// What accepting a handoff did, order by order.
#[derive(Debug, Clone, Serialize)]
pub struct HandoffAccepted {
    /// The manifest id (hex).
    pub manifest: String,
    /// The courier.
    pub courier: String,
    /// One line per order of this courier: listed or missing.
    pub orders: Vec<HandoffLine>,
    /// Total credited now, in fen.
    pub credited_fen: u64,
}

/// One order in a handoff.
#[derive(Debug, Clone, Serialize)]
pub struct HandoffLine {
    /// The merchant's order number.
    pub order_id: String,
    /// Amount of the order, in fen.
    pub amount_fen: u64,
    /// paid, settled (already by the courier's sync), refused, not-delivered, missing,
    /// amount-mismatch, rejected, already-accepted.
    pub status: String,
    /// Details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

pub(crate) fn json<T: Serialize>(v: &T) -> Result<Vec<u8>, WalletError> {
    serde_json::to_vec(v).map_err(|e| WalletError::Corrupt(e.to_string()))
}

pub(crate) fn from_json<T: for<'a> Deserialize<'a>>(
    v: &[u8],
    what: &str,
) -> Result<T, WalletError> {
    serde_json::from_slice(v).map_err(|e| WalletError::Corrupt(format!("{what}: {e}")))
}

pub(crate) fn decode_hex<T: Decode>(h: &str, what: &str) -> Result<T, WalletError> {
    hex::decode(h)
        .ok()
        .and_then(|b| T::decode(&b).ok())
        .ok_or_else(|| WalletError::Corrupt(what.to_string()))
}

impl OrderRecord {
    /// The signed order.
    pub fn order(&self) -> Result<CodOrder, WalletError> {
        decode_hex(&self.order_hex, "stored order")
    }
}

impl<S: Store> Wallet<S> {
    // -----------------------------------------------------------------------------------------
    // The merchant.

    /// Makes a merchant-signed delivery order for `courier`, with the payment request the
    /// customer will pay (recorded like any request, so the payment binds to it once).
    #[allow(clippy::too_many_arguments)]
    pub fn create_cod_order<R: Rng + CryptoRng + ?Sized>(
        &self,
        order_id: &str,
        amount: Fen,
        courier: PublicKey,
        expires_in: u64,
        now: u64,
        rng: &mut R,
    ) -> Result<CodOrder, WalletError> {
        if self.kind() != WalletKind::Merchant {
            return Err(WalletError::Refused(format!(
                "only a merchant's back office makes delivery orders (this is a {} wallet)",
                self.kind()
            )));
        }
        let order_id = order_id.trim();
        if order_id.is_empty() || order_id.len() > usize::from(MAX_ORDER_ID) {
            return Err(WalletError::Refused(format!(
                "an order id is 1 to {MAX_ORDER_ID} bytes"
            )));
        }
        if amount == Fen::ZERO {
            return Err(WalletError::Refused(
                "an order needs an amount above zero".into(),
            ));
        }
        if courier == self.public() {
            return Err(WalletError::Refused(
                "the courier must be another wallet".into(),
            ));
        }
        if self.cod_orders()?.iter().any(|o| o.order_id == order_id) {
            return Err(WalletError::Replay(format!(
                "order {order_id} already exists"
            )));
        }
        let expires_at = now
            .checked_add(expires_in)
            .ok_or_else(|| WalletError::Refused("expiry too far".into()))?;
        let memo = format!("delivery order {order_id}");
        let request = PaymentRequest::sign(
            self.secret(),
            amount,
            Nonce::random(rng),
            crate::protocol::till::cut(&memo, MAX_MEMO),
            now,
            expires_at,
        );
        let order = CodOrder::sign(self.secret(), courier, order_id, now, request.clone());
        let oid = order.id();
        let rec = OrderRecord {
            id: oid.to_hex(),
            order_id: order_id.to_string(),
            courier: courier.address(),
            amount_fen: amount.0,
            created_at: now,
            expires_at,
            request_id: request.request_id.to_hex(),
            status: "with-courier".into(),
            payment_id: None,
            coins: Vec::new(),
            paid_fen: None,
            outcome_at: None,
            handoff: None,
            detail: None,
            order_hex: hex::encode(order.to_bytes()),
        };
        let mut b = Batch::new();
        b.put(
            keys::with(keys::REQUEST, &request.request_id.0),
            RequestRecord::stored_of(&request)?,
        );
        b.put(keys::with(keys::ORDER, &oid.0), json(&rec)?);
        self.push_history(
            &mut b,
            now,
            HistoryEntry {
                amount_fen: Some(amount.0),
                counterparty: Some(courier.address()),
                request_id: Some(request.request_id.to_hex()),
                memo: Some(memo),
                ..HistoryEntry::note(
                    "order",
                    format!(
                        "delivery order {order_id} for {amount}, courier {}, until {}",
                        courier.short(),
                        format_rfc3339(expires_at)
                    ),
                )
            },
        )?;
        self.store().commit(b)?;
        Ok(order)
    }

    /// The merchant's delivery orders, oldest first.
    pub fn cod_orders(&self) -> Result<Vec<OrderRecord>, WalletError> {
        let mut v: Vec<OrderRecord> = self
            .store()
            .scan_prefix(keys::ORDER)?
            .into_iter()
            .map(|(_, v)| from_json(&v, "order"))
            .collect::<Result<_, _>>()?;
        v.sort_by(|a, b| (a.created_at, &a.order_id).cmp(&(b.created_at, &b.order_id)));
        Ok(v)
    }

    /// Accepts a courier's handoff: checks the courier's signature and that every order is one of
    /// ours given to that courier, then receives every payment that is good (bound to its order's
    /// request, for its amount, verified offline as any payment) and records every outcome, and
    /// every order of that courier the manifest does not list as missing, in one commit.
    pub fn accept_handoff(
        &self,
        m: &HandoffManifest,
        now: u64,
    ) -> Result<HandoffAccepted, WalletError> {
        if self.kind() != WalletKind::Merchant {
            return Err(WalletError::Refused(format!(
                "only a merchant's back office accepts handoffs (this is a {} wallet)",
                self.kind()
            )));
        }
        if m.merchant != self.public() {
            return Err(WalletError::NotForThisWallet(format!(
                "the handoff is for merchant {}, not this one ({})",
                m.merchant.address(),
                self.public().address()
            )));
        }
        m.verify()?;
        let mid = m.id();
        if self
            .store()
            .get(&keys::with(keys::HANDOFF, &mid.0))?
            .is_some()
        {
            return Err(WalletError::Replay(format!(
                "handoff {} was already accepted",
                mid.short()
            )));
        }
        let courier = m.courier.address();
        let mut orders: HashMap<Id, OrderRecord> = HashMap::new();
        for rec in self.cod_orders()? {
            if rec.courier == courier {
                orders.insert(id_hex(&rec.id)?, rec);
            }
        }
        for e in &m.entries {
            if !orders.contains_key(&e.order) {
                let ours = self
                    .store()
                    .get(&keys::with(keys::ORDER, &e.order.0))?
                    .is_some();
                return Err(WalletError::Refused(if ours {
                    format!(
                        "order {} in the handoff was given to another courier, not {}",
                        e.order.short(),
                        m.courier.short()
                    )
                } else {
                    format!(
                        "order {} in the handoff is not one of this merchant's orders",
                        e.order.short()
                    )
                }));
            }
        }
        let mut b = Batch::new();
        let mut st = Staged::default();
        let mut lines = Vec::new();
        let mut credited = Fen::ZERO;
        for e in &m.entries {
            let Some(rec) = orders.get_mut(&e.order) else {
                continue;
            };
            let (status, detail) =
                self.accept_entry(rec, e, &mid, now, &mut st, &mut b, &mut credited)?;
            lines.push(HandoffLine {
                order_id: rec.order_id.clone(),
                amount_fen: rec.amount_fen,
                status,
                detail,
            });
            b.put(keys::with(keys::ORDER, &e.order.0), json(rec)?);
        }
        // Orders of this courier made before the handoff that it does not list.
        let listed: Vec<Id> = m.entries.iter().map(|e| e.order).collect();
        for (oid, rec) in orders.iter_mut() {
            if listed.contains(oid)
                || rec.created_at > m.time
                || !matches!(rec.status.as_str(), "with-courier" | "not-delivered")
            {
                continue;
            }
            rec.status = "missing".into();
            rec.handoff = Some(mid.to_hex());
            rec.detail = Some(format!(
                "not in the courier's handoff of {}",
                format_rfc3339(m.time)
            ));
            lines.push(HandoffLine {
                order_id: rec.order_id.clone(),
                amount_fen: rec.amount_fen,
                status: "missing".into(),
                detail: rec.detail.clone(),
            });
            b.put(keys::with(keys::ORDER, &oid.0), json(rec)?);
        }
        lines.sort_by(|a, b| a.order_id.cmp(&b.order_id));
        b.put(keys::with(keys::HANDOFF, &mid.0), m.to_bytes());
        self.push_history(
            &mut b,
            now,
            HistoryEntry {
                amount_fen: Some(credited.0),
                counterparty: Some(courier.clone()),
                ..HistoryEntry::note(
                    "handoff",
                    format!(
                        "handoff {} from courier {}: {} order(s), {credited} received",
                        mid.short(),
                        m.courier.short(),
                        m.entries.len()
                    ),
                )
            },
        )?;
        self.store().commit(b)?;
        Ok(HandoffAccepted {
            manifest: mid.to_hex(),
            courier,
            orders: lines,
            credited_fen: credited.0,
        })
    }

    /// One manifest line: updates `rec` and stages what it receives; returns status and detail.
    #[allow(clippy::too_many_arguments)]
    fn accept_entry(
        &self,
        rec: &mut OrderRecord,
        e: &HandoffEntry,
        mid: &Id,
        now: u64,
        st: &mut Staged,
        b: &mut Batch,
        credited: &mut Fen,
    ) -> Result<(String, Option<String>), WalletError> {
        let done = |rec: &OrderRecord| {
            matches!(
                rec.status.as_str(),
                "paid" | "refused" | "amount-mismatch" | "rejected"
            )
        };
        match &e.outcome {
            Outcome::Paid(p) => {
                let pid = p.id();
                if rec.payment_id.as_deref() == Some(pid.to_hex().as_str()) {
                    return Ok(("already-accepted".into(), None));
                }
                if done(rec) {
                    return Ok((
                        "already-accepted".into(),
                        Some(format!("already {} in an earlier handoff", rec.status)),
                    ));
                }
                rec.handoff = Some(mid.to_hex());
                rec.outcome_at = Some(e.time);
                let order = rec.order()?;
                let problem = if p.payee != self.public() {
                    Some((
                        "rejected",
                        format!(
                            "the payment is to {}, not to this merchant (redirected)",
                            p.payee.address()
                        ),
                    ))
                } else if p.request_id != order.request.request_id {
                    Some(("rejected", "the payment is for another request".to_string()))
                } else if p.amount != order.amount() {
                    rec.paid_fen = Some(p.amount.0);
                    Some((
                        "amount-mismatch",
                        format!("paid {} for an order of {}", p.amount, order.amount()),
                    ))
                } else {
                    None
                };
                if let Some((status, why)) = problem {
                    rec.status = status.into();
                    rec.detail = Some(why.clone());
                    return Ok((status.into(), Some(why)));
                }
                rec.payment_id = Some(pid.to_hex());
                rec.coins = p.coins.iter().map(|c| c.id().to_hex()).collect();
                // Settled already through the courier's sync and collected by ours: the value
                // came with that sync.
                let mut collected = true;
                for c in &p.coins {
                    collected &= self
                        .coin_settlement(&c.id())?
                        .is_some_and(|s| s.status == "collected");
                }
                if collected {
                    rec.status = "paid".into();
                    return Ok((
                        "settled".into(),
                        Some("already settled by the courier's sync".into()),
                    ));
                }
                let note = ReceiveNote {
                    order_id: Some(rec.order_id.clone()),
                    paid_at: Some(e.time),
                    ..ReceiveNote::default()
                };
                let mut trial = b.clone();
                let mut proofs: Vec<DoubleSpendProof> = Vec::new();
                match self.stage_receive(p, note, now, st, &mut trial, &mut proofs) {
                    Ok(got) => {
                        *b = trial;
                        *credited = credited.checked_add(got.amount).unwrap_or(*credited);
                        rec.status = "paid".into();
                        rec.detail = None;
                        Ok(("paid".into(), None))
                    }
                    Err(err) => {
                        for pr in &proofs {
                            b.put(keys::with(keys::PROOF, &pr.id().0), pr.to_bytes());
                        }
                        rec.status = "rejected".into();
                        rec.detail = Some(err.to_string());
                        Ok(("rejected".into(), Some(err.to_string())))
                    }
                }
            }
            Outcome::Refused { reason } => {
                if done(rec) {
                    return Ok(("already-accepted".into(), None));
                }
                rec.status = "refused".into();
                rec.outcome_at = Some(e.time);
                rec.handoff = Some(mid.to_hex());
                rec.detail = Some(reason.clone());
                Ok(("refused".into(), Some(reason.clone())))
            }
            Outcome::NotDelivered => {
                if done(rec) {
                    return Ok(("already-accepted".into(), None));
                }
                rec.status = "not-delivered".into();
                rec.handoff = Some(mid.to_hex());
                Ok(("not-delivered".into(), None))
            }
        }
    }
}
