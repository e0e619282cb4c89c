//! The courier's side of cash on delivery: load an order, show its code at the door, check the
//! customer's payment offline against it (without ever holding the value: it pays the merchant's
//! key), give a signed delivery receipt, record refusals, and hand everything over at the depot in
//! a signed manifest. See docs/merchants.md#cash-on-delivery.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::cod::{decode_hex, from_json, json};
use super::merchant::{find_by_prefix, id_hex};
use super::records::HistoryEntry;
use super::{Batch, Store, Wallet, WalletError, keys};
use crate::codec::{Decode, Encode};
use crate::crypto::{Id, PublicKey};
use crate::protocol::SignedBody;
use crate::protocol::certificate::WalletKind;
use crate::protocol::cod_order::CodOrder;
use crate::protocol::coin::Coin;
use crate::protocol::delivery::DeliveryReceipt;
use crate::protocol::handoff::{HandoffEntry, HandoffManifest, Outcome};
use crate::protocol::payment::Payment;
use crate::protocol::proof::DoubleSpendProof;
use crate::protocol::request::MAX_MEMO;
use crate::protocol::transfer::Transfer;
use crate::time::format_rfc3339;

/// An order a courier carries.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CarriedOrder {
    /// The order id (hex).
    pub id: String,
    /// The merchant's order number.
    pub order_id: String,
    /// The merchant's address.
    pub merchant: String,
    /// Amount to collect, in fen.
    pub amount_fen: u64,
    /// Until when the customer can pay.
    pub expires_at: u64,
    /// loaded, paid or refused.
    pub status: String,
    /// When paid or refused.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub outcome_at: Option<u64>,
    /// The customer's payment id (hex).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub payment_id: Option<String>,
    /// Why refused.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    /// Handoffs that listed it.
    #[serde(default)]
    pub handed_over: u32,
    /// The signed order (hex).
    pub order_hex: String,
    /// The payment (hex), kept to hand over.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub payment_hex: Option<String>,
}

impl CarriedOrder {
    /// The signed order.
    pub fn order(&self) -> Result<CodOrder, WalletError> {
        decode_hex(&self.order_hex, "carried order")
    }

    /// The customer's payment, once collected.
    pub fn payment(&self) -> Result<Option<Payment>, WalletError> {
        self.payment_hex
            .as_deref()
            .map(|h| decode_hex(h, "carried payment"))
            .transpose()
    }
}

impl<S: Store> Wallet<S> {
    // -----------------------------------------------------------------------------------------
    // The courier.

    fn require_courier(&self) -> Result<(), WalletError> {
        if self.kind() == WalletKind::Courier {
            Ok(())
        } else {
            Err(WalletError::Refused(format!(
                "only a courier wallet carries delivery orders (this is a {} wallet)",
                self.kind()
            )))
        }
    }

    /// The courier loads a delivery order given to it.
    pub fn load_cod_order(&self, order: &CodOrder, now: u64) -> Result<CarriedOrder, WalletError> {
        self.require_courier()?;
        if order.courier != self.public() {
            return Err(WalletError::NotForThisWallet(format!(
                "order {} is for courier {}, not this one ({})",
                order.order_id,
                order.courier.address(),
                self.public().address()
            )));
        }
        let keyset = self.keyset()?;
        order.verify_payable(&self.context(&keyset, None, now))?;
        let oid = order.id();
        let key = keys::with(keys::CARRIED, &oid.0);
        if self.store().get(&key)?.is_some() {
            return Err(WalletError::Replay(format!(
                "order {} is already loaded",
                order.order_id
            )));
        }
        let rec = CarriedOrder {
            id: oid.to_hex(),
            order_id: order.order_id.clone(),
            merchant: order.merchant.address(),
            amount_fen: order.amount().0,
            expires_at: order.request.expires_at,
            status: "loaded".into(),
            outcome_at: None,
            payment_id: None,
            reason: None,
            handed_over: 0,
            order_hex: hex::encode(order.to_bytes()),
            payment_hex: None,
        };
        let mut b = Batch::new();
        b.put(key, json(&rec)?);
        self.push_history(
            &mut b,
            now,
            HistoryEntry {
                amount_fen: Some(rec.amount_fen),
                counterparty: Some(rec.merchant.clone()),
                ..HistoryEntry::note(
                    "order",
                    format!(
                        "delivery order {} loaded: collect {} for {}",
                        order.order_id,
                        order.amount(),
                        order.merchant.short()
                    ),
                )
            },
        )?;
        self.store().commit(b)?;
        Ok(rec)
    }

    /// Every order the courier carries.
    pub fn carried_orders(&self) -> Result<Vec<CarriedOrder>, WalletError> {
        let mut v: Vec<CarriedOrder> = self
            .store()
            .scan_prefix(keys::CARRIED)?
            .into_iter()
            .map(|(_, v)| from_json(&v, "carried order"))
            .collect::<Result<_, _>>()?;
        v.sort_by(|a, b| a.order_id.cmp(&b.order_id));
        Ok(v)
    }

    /// A carried order by its order number, or by full or short order id.
    pub fn carried_order(&self, id: &str) -> Result<CarriedOrder, WalletError> {
        let all = self.carried_orders()?;
        let by_number: Vec<&CarriedOrder> = all.iter().filter(|o| o.order_id == id).collect();
        match by_number.len() {
            1 => return Ok(by_number[0].clone()),
            0 => {}
            n => {
                return Err(WalletError::Refused(format!(
                    "{n} orders are numbered {id} (from different merchants): give the order id"
                )));
            }
        }
        from_json(
            &find_by_prefix(self.store(), keys::CARRIED, id, "delivery order")?,
            "carried order",
        )
    }

    /// At the door: checks the customer's payment offline against the order it pays (the
    /// merchant's key, the order's request and amount, the payer's certificate and coins), keeps
    /// it to hand over (the value is the merchant's; nothing is credited here), and returns the
    /// courier-signed delivery receipt for the customer.
    pub fn collect_cod(
        &self,
        payment: &Payment,
        now: u64,
    ) -> Result<(CarriedOrder, DeliveryReceipt), WalletError> {
        self.require_courier()?;
        let carried = self.carried_orders()?;
        let mut rec = carried
            .into_iter()
            .find(|o| {
                o.order()
                    .is_ok_and(|ord| ord.request.request_id == payment.request_id)
            })
            .ok_or_else(|| {
                WalletError::Refused(format!(
                    "payment {} does not pay the code of any order this courier carries",
                    payment.id().short()
                ))
            })?;
        let order = rec.order()?;
        if payment.payee != order.merchant {
            return Err(WalletError::Refused(format!(
                "payment is to {}, not to the merchant {} of order {} (redirected)",
                payment.payee.address(),
                order.merchant.address(),
                order.order_id
            )));
        }
        match rec.status.as_str() {
            "loaded" => {}
            "paid" => {
                return Err(WalletError::Replay(format!(
                    "order {} was already paid (payment {})",
                    order.order_id,
                    rec.payment_id.as_deref().map(|p| &p[..8]).unwrap_or("?")
                )));
            }
            other => {
                return Err(WalletError::Refused(format!(
                    "order {} is {other}",
                    order.order_id
                )));
            }
        }
        if payment.amount != order.amount() {
            return Err(WalletError::Refused(format!(
                "payment of {} does not match order {} for {}",
                payment.amount,
                order.order_id,
                order.amount()
            )));
        }
        let keyset = self.keyset()?;
        if now > order.request.expires_at {
            return Err(WalletError::Refused(format!(
                "order {} could be paid until {}",
                order.order_id,
                format_rfc3339(order.request.expires_at)
            )));
        }
        let held = self.revocations_shared()?;
        // A carried list is used only if newer than the one held, so only then is it checked.
        let carried_rl = payment
            .revocations
            .as_ref()
            .filter(|c| {
                held.as_ref()
                    .is_none_or(|h| c.list_version > h.list_version)
            })
            .filter(|l| l.verify(&keyset).is_ok());
        let rl = carried_rl.or(held.as_deref());
        let ctx = self.context(&keyset, rl, now);
        payment.verify(&ctx, &order.merchant, WalletKind::Merchant)?;
        // Local double-spend detection: a coin this courier has already seen spent otherwise.
        let mut proofs = Vec::new();
        let mut within: HashMap<Id, Transfer> = HashMap::new();
        for coin in &payment.coins {
            for hop in &coin.hops {
                let t = &hop.transfer;
                let seen = match within.get(&t.input) {
                    Some(s) => Some(s.clone()),
                    None => match self.store().get(&keys::with(keys::SEEN, &t.input.0))? {
                        Some(v) => Some(
                            Transfer::decode(&v)
                                .map_err(|e| WalletError::Corrupt(format!("seen transfer: {e}")))?,
                        ),
                        None => None,
                    },
                };
                if let Some(s) = seen
                    && s.id() != t.id()
                {
                    let signer = chain_signer(coin, t).unwrap_or(payment.payer());
                    proofs.push(DoubleSpendProof::new(signer, s, t.clone()));
                }
                within.insert(t.input, t.clone());
            }
        }
        if let Some(first) = proofs.first() {
            self.commit_proofs(&proofs)?;
            return Err(WalletError::DoubleSpend {
                payer: first.signer().address(),
                coin: first.coin().short(),
                proof: first.id().short(),
            });
        }
        let receipt = DeliveryReceipt::sign(self.secret(), &order, payment, now);
        rec.status = "paid".into();
        rec.outcome_at = Some(now);
        rec.payment_id = Some(payment.id().to_hex());
        rec.payment_hex = Some(hex::encode(payment.to_bytes()));
        let mut b = Batch::new();
        for (input, t) in &within {
            b.put(keys::with(keys::SEEN, &input.0), t.to_bytes());
        }
        b.put(keys::with(keys::CARRIED, &id_hex(&rec.id)?.0), json(&rec)?);
        self.push_history(
            &mut b,
            now,
            HistoryEntry {
                amount_fen: Some(payment.amount.0),
                counterparty: Some(payment.payer().address()),
                payment_id: Some(payment.id().to_hex()),
                memo: Some(format!("delivery order {}", order.order_id)),
                ..HistoryEntry::note(
                    "collected",
                    format!(
                        "collected {} for {} from {} (order {}): to hand over",
                        payment.amount,
                        order.merchant.short(),
                        payment.payer().short(),
                        order.order_id
                    ),
                )
            },
        )?;
        self.store().commit(b)?;
        Ok((rec, receipt))
    }

    /// Records a refused delivery.
    pub fn refuse_cod(
        &self,
        id: &str,
        reason: &str,
        now: u64,
    ) -> Result<CarriedOrder, WalletError> {
        self.require_courier()?;
        let mut rec = self.carried_order(id)?;
        if rec.status != "loaded" {
            return Err(WalletError::Refused(format!(
                "order {} is already {}",
                rec.order_id, rec.status
            )));
        }
        if reason.len() > usize::from(MAX_MEMO) {
            return Err(WalletError::Refused(format!(
                "a reason is at most {MAX_MEMO} bytes"
            )));
        }
        rec.status = "refused".into();
        rec.outcome_at = Some(now);
        rec.reason = Some(reason.to_string());
        let mut b = Batch::new();
        b.put(keys::with(keys::CARRIED, &id_hex(&rec.id)?.0), json(&rec)?);
        self.push_history(
            &mut b,
            now,
            HistoryEntry {
                memo: Some(reason.to_string()),
                ..HistoryEntry::note(
                    "refused",
                    format!("delivery order {} refused", rec.order_id),
                )
            },
        )?;
        self.store().commit(b)?;
        Ok(rec)
    }

    /// At the depot: the courier's signed manifest of every order it carries for one merchant
    /// (paid with the payment, refused, or not delivered). Recorded before it is returned.
    pub fn cod_handoff(
        &self,
        merchant: Option<PublicKey>,
        now: u64,
    ) -> Result<HandoffManifest, WalletError> {
        self.require_courier()?;
        let all = self.carried_orders()?;
        let mut merchants: Vec<String> = all.iter().map(|o| o.merchant.clone()).collect();
        merchants.sort();
        merchants.dedup();
        let merchant = match merchant {
            Some(m) => m,
            None => match merchants.as_slice() {
                [] => {
                    return Err(WalletError::Refused(
                        "no delivery orders to hand over".into(),
                    ));
                }
                [one] => PublicKey::from_address(one)
                    .map_err(|e| WalletError::Corrupt(format!("carried merchant: {e}")))?,
                many => {
                    return Err(WalletError::Refused(format!(
                        "orders from {} merchants: give --merchant ADDRESS",
                        many.len()
                    )));
                }
            },
        };
        let mine: Vec<CarriedOrder> = all
            .into_iter()
            .filter(|o| o.merchant == merchant.address())
            .collect();
        if mine.is_empty() {
            return Err(WalletError::Refused(format!(
                "no delivery orders from {}",
                merchant.address()
            )));
        }
        let mut entries = Vec::with_capacity(mine.len());
        let mut b = Batch::new();
        for mut o in mine {
            let outcome = match o.status.as_str() {
                "paid" => Outcome::Paid(Box::new(o.payment()?.ok_or_else(|| {
                    WalletError::Corrupt(format!("order {} paid without payment", o.order_id))
                })?)),
                "refused" => Outcome::Refused {
                    reason: o.reason.clone().unwrap_or_default(),
                },
                _ => Outcome::NotDelivered,
            };
            let oid = id_hex(&o.id)?;
            entries.push(HandoffEntry {
                order: oid,
                time: o.outcome_at.unwrap_or(now),
                outcome,
            });
            o.handed_over = o.handed_over.saturating_add(1);
            b.put(keys::with(keys::CARRIED, &oid.0), json(&o)?);
        }
        let m = HandoffManifest::sign(self.secret(), merchant, now, entries);
        self.push_history(
            &mut b,
            now,
            HistoryEntry {
                counterparty: Some(merchant.address()),
                ..HistoryEntry::note(
                    "handoff",
                    format!(
                        "handoff {} to {}: {} order(s)",
                        m.id().short(),
                        merchant.short(),
                        m.entries.len()
                    ),
                )
            },
        )?;
        self.store().commit(b)?;
        Ok(m)
    }

    /// The chains of collected payments this courier carries that no sync has settled yet: a
    /// courier's sync brings them to the issuer, which credits the merchant.
    pub(crate) fn carried_chains(&self) -> Result<Vec<Coin>, WalletError> {
        let mut out = Vec::new();
        for (_, v) in self.store().scan_prefix(keys::CARRIED)? {
            let o: CarriedOrder = from_json(&v, "carried order")?;
            let Some(p) = o.payment()? else {
                continue;
            };
            for c in &p.coins {
                if self.coin_settlement(&c.id())?.is_none() {
                    out.push(c.clone());
                }
            }
        }
        Ok(out)
    }
}

/// The holder who signed transfer `t` in `coin`'s chain (the payer for the last one).
fn chain_signer(coin: &Coin, t: &Transfer) -> Option<PublicKey> {
    let i = coin.hops.iter().position(|h| h.transfer.id() == t.id())?;
    Some(if i == 0 {
        coin.note.holder
    } else {
        let h = &coin.hops[i - 1];
        h.transfer.outputs.get(usize::from(h.index))?.holder
    })
}
