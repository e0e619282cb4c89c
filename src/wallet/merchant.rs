//! Merchants and tills: till authorization, the static merchant code, sales and refunds. The till's
//! journal is in `journal.rs`. See docs/merchants.md.
//!
//! Every change is one committed batch before anything is returned for writing.

use rand::{CryptoRng, Rng};
use serde::{Deserialize, Serialize};

use super::records::{HistoryEntry, RequestRecord, SaleRecord};
use super::{Batch, PayTarget, Store, Wallet, WalletError, keys};
use crate::crypto::{Id, Nonce, PublicKey};
use crate::money::Fen;
use crate::protocol::SignedBody;
use crate::protocol::certificate::{Registration, WalletKind};
use crate::protocol::refund::{Refund, refund_request_id};
use crate::protocol::request::{MAX_MEMO, PaymentRequest};
use crate::protocol::till::{MAX_TILL_NAME, TillAuthorization};
use crate::time::format_rfc3339;

/// How long a static code stays valid: a year.
pub const STATIC_CODE_SECS: u64 = 365 * 86_400;

/// A till, as its merchant's back office knows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TillRecord {
    /// The till's address.
    pub address: String,
    /// Its name.
    pub name: String,
    /// When authorized.
    pub authorized_at: u64,
}

/// A refund this wallet paid.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RefundRecord {
    /// The refund payment's id (hex).
    pub refund_id: String,
    /// The payment refunded (hex).
    pub original: String,
    /// Refund number of that payment.
    pub number: u32,
    /// The customer's address.
    pub customer: String,
    /// Amount in fen.
    pub amount_fen: u64,
    /// When paid.
    pub time: u64,
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

/// Parses a hex id stored by this wallet.
pub(crate) fn id_hex(s: &str) -> Result<Id, WalletError> {
    Id::from_hex(s).ok_or_else(|| WalletError::Corrupt(format!("id {s}")))
}

/// Parses a hex nonce stored by this wallet.
pub(crate) fn nonce_hex(s: &str) -> Result<Nonce, WalletError> {
    let mut n = [0u8; 16];
    hex::decode_to_slice(s, &mut n).map_err(|_| WalletError::Corrupt(format!("id {s}")))?;
    Ok(Nonce(n))
}

/// Finds the one value under `prefix` whose hex key starts with `id` (a full or short id).
pub(crate) fn find_by_prefix<S: Store>(
    store: &S,
    prefix: &[u8],
    id: &str,
    what: &str,
) -> Result<Vec<u8>, WalletError> {
    let id = id.trim().to_lowercase();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(WalletError::Refused(format!(
            "{id:?} is not a {what} id (hex digits)"
        )));
    }
    let mut found = Vec::new();
    for (k, v) in store.scan_prefix(prefix)? {
        if hex::encode(&k[prefix.len()..]).starts_with(&id) {
            found.push(v);
        }
    }
    match found.len() {
        0 => Err(WalletError::NotFound(format!("{what} {id}"))),
        1 => Ok(found.swap_remove(0)),
        n => Err(WalletError::Refused(format!(
            "{n} {what}s start with {id}: give more of the id"
        ))),
    }
}

impl<S: Store> Wallet<S> {
    pub(crate) fn require_kind(&self, ok: bool, what: &str) -> Result<(), WalletError> {
        if ok {
            Ok(())
        } else {
            Err(WalletError::Refused(format!(
                "{what} (this is a {} wallet)",
                self.kind()
            )))
        }
    }

    /// The back office authorizes a till: checks its registration names this merchant, records
    /// it, and returns the authorization for the issuer (`issuer certify REG --authorization`).
    pub fn authorize_till(
        &self,
        reg: &Registration,
        name: &str,
        now: u64,
    ) -> Result<TillAuthorization, WalletError> {
        self.require_kind(
            self.kind() == WalletKind::Merchant,
            "only a merchant's back office wallet authorizes tills",
        )?;
        reg.verify()?;
        if reg.kind != WalletKind::Till || reg.merchant != Some(self.public()) {
            return Err(WalletError::NotForThisWallet(format!(
                "the registration is for a {} wallet{}, not a till of this merchant ({})",
                reg.kind,
                reg.merchant
                    .map(|m| format!(" of merchant {}", m.address()))
                    .unwrap_or_default(),
                self.public().address()
            )));
        }
        let name = name.trim();
        if name.is_empty() || name.len() > usize::from(MAX_TILL_NAME) {
            return Err(WalletError::Refused(format!(
                "a till name is 1 to {MAX_TILL_NAME} bytes"
            )));
        }
        let key = keys::with(keys::TILL, reg.wallet.as_bytes());
        if let Some(v) = self.store().get(&key)? {
            let t: TillRecord = from_json(&v, "till")?;
            return Err(WalletError::Replay(format!(
                "till {} is already authorized as {:?}",
                reg.wallet.address(),
                t.name
            )));
        }
        let auth = TillAuthorization::sign(self.secret(), reg.wallet, name, now);
        let rec = TillRecord {
            address: reg.wallet.address(),
            name: name.to_string(),
            authorized_at: now,
        };
        let mut b = Batch::new();
        b.put(key, json(&rec)?);
        self.push_history(
            &mut b,
            now,
            HistoryEntry {
                counterparty: Some(reg.wallet.address()),
                ..HistoryEntry::note("till", format!("till {name:?} authorized"))
            },
        )?;
        self.store().commit(b)?;
        Ok(auth)
    }

    /// The tills this back office authorized.
    pub fn tills(&self) -> Result<Vec<TillRecord>, WalletError> {
        self.store()
            .scan_prefix(keys::TILL)?
            .into_iter()
            .map(|(_, v)| from_json(&v, "till"))
            .collect()
    }

    /// The static merchant code (amount 0: the customer enters the amount; reusable). Made on first
    /// use, or again when it has expired or `renew` is set; returns it and whether it is new.
    pub fn static_code<R: Rng + CryptoRng + ?Sized>(
        &self,
        memo: &str,
        renew: bool,
        now: u64,
        rng: &mut R,
    ) -> Result<(PaymentRequest, bool), WalletError> {
        self.require_kind(
            self.kind().is_merchant(),
            "only merchant and till wallets have a static code",
        )?;
        if !renew && let Some(id) = self.store().get(keys::STATIC_CODE)? {
            let v = self
                .store()
                .get(&keys::with(keys::REQUEST, &id))?
                .ok_or_else(|| WalletError::Corrupt("static code record".into()))?;
            let rec = RequestRecord::from_stored(&v)?;
            if now <= rec.expires_at {
                let q = PaymentRequest::from_code(&rec.code)
                    .map_err(|e| WalletError::Corrupt(format!("static code: {e}")))?;
                return Ok((q, false));
            }
        }
        if memo.len() > usize::from(MAX_MEMO) {
            return Err(WalletError::Refused(format!(
                "memo is {} bytes; at most {MAX_MEMO} fit in a payment code",
                memo.len()
            )));
        }
        let q = PaymentRequest::sign(
            self.secret(),
            Fen::ZERO,
            Nonce::random(rng),
            memo.to_string(),
            now,
            now.saturating_add(STATIC_CODE_SECS),
        );
        let mut b = Batch::new();
        b.put(
            keys::with(keys::REQUEST, &q.request_id.0),
            RequestRecord::stored_of(&q)?,
        );
        b.put(keys::STATIC_CODE, q.request_id.0.to_vec());
        self.push_history(
            &mut b,
            now,
            HistoryEntry {
                request_id: Some(q.request_id.to_hex()),
                ..HistoryEntry::note(
                    "requested",
                    format!(
                        "static code {} until {}",
                        q.request_id.short(),
                        format_rfc3339(q.expires_at)
                    ),
                )
            },
        )?;
        self.store().commit(b)?;
        Ok((q, true))
    }

    /// Every payment this wallet received (sale records), oldest first.
    pub fn sales(&self) -> Result<Vec<SaleRecord>, WalletError> {
        let mut v: Vec<SaleRecord> = self
            .store()
            .scan_prefix(keys::SALE)?
            .into_iter()
            .map(|(_, v)| SaleRecord::from_json(&v))
            .collect::<Result<_, _>>()?;
        v.sort_by(|a, b| (a.time, &a.payment_id).cmp(&(b.time, &b.payment_id)));
        Ok(v)
    }

    /// A received payment by full or short id.
    pub fn sale(&self, id: &str) -> Result<SaleRecord, WalletError> {
        SaleRecord::from_json(&find_by_prefix(
            self.store(),
            keys::SALE,
            id,
            "received payment",
        )?)
    }

    /// Every refund this wallet paid, oldest first.
    pub fn refunds(&self) -> Result<Vec<RefundRecord>, WalletError> {
        let mut v: Vec<RefundRecord> = self
            .store()
            .scan_prefix(keys::REFUND)?
            .into_iter()
            .map(|(_, v)| from_json(&v, "refund"))
            .collect::<Result<_, _>>()?;
        v.sort_by(|a, b| (a.time, &a.refund_id).cmp(&(b.time, &b.refund_id)));
        Ok(v)
    }

    /// Whether any coin of a received payment was rejected at settlement, and why.
    pub fn sale_rejection(&self, sale: &SaleRecord) -> Result<Option<String>, WalletError> {
        for c in &sale.coins {
            if let Some(s) = self.coin_settlement(&id_hex(c)?)?
                && s.rejected()
            {
                return Ok(Some(s.reason.unwrap_or_else(|| "rejected".into())));
            }
        }
        Ok(None)
    }

    /// Pays a customer back, referencing a payment this wallet received. Partial refunds add up
    /// and never exceed what was paid. The refund is an ordinary payment to the payer, bound to
    /// the original by its request id, committed with the updated refund totals.
    pub fn refund<R: Rng + CryptoRng + ?Sized>(
        &self,
        payment_id: &str,
        amount: Option<Fen>,
        now: u64,
        rng: &mut R,
    ) -> Result<Refund, WalletError> {
        let mut sale = self.sale(payment_id)?;
        let pid = id_hex(&sale.payment_id)?;
        if let Some(why) = self.sale_rejection(&sale)? {
            return Err(WalletError::Refused(format!(
                "payment {} was rejected at settlement ({why}): there is nothing to refund",
                pid.short()
            )));
        }
        let paid = Fen(sale.amount_fen);
        let left = paid
            .checked_sub(Fen(sale.refunded_fen))
            .unwrap_or(Fen::ZERO);
        if left == Fen::ZERO {
            return Err(WalletError::Refused(format!(
                "payment {} ({paid}) is already refunded in full",
                pid.short()
            )));
        }
        let amount = amount.unwrap_or(left);
        if amount == Fen::ZERO {
            return Err(WalletError::Refused(
                "a refund needs an amount above zero".into(),
            ));
        }
        if amount > left {
            return Err(WalletError::Refused(format!(
                "refunding {amount} would bring the refunds of payment {} to more than the {paid} paid ({} refunded already; at most {left} left)",
                pid.short(),
                Fen(sale.refunded_fen)
            )));
        }
        let customer = PublicKey::from_address(&sale.payer)
            .map_err(|e| WalletError::Corrupt(format!("sale payer: {e}")))?;
        let number = u32::try_from(sale.refunds.len() + 1)
            .map_err(|_| WalletError::Refused("too many refunds".into()))?;
        let bound = refund_request_id(&pid, number);
        let memo = format!("refund {number} of payment {}", pid.short());
        let payment = self.pay_with(
            PayTarget::Direct {
                to: customer,
                amount,
            },
            Some(bound),
            Some(memo),
            now,
            rng,
            |p, b| {
                let rid = p.id();
                sale.refunded_fen = sale.refunded_fen.saturating_add(amount.0);
                sale.refunds.push(rid.to_hex());
                b.put(keys::with(keys::SALE, &pid.0), sale.to_json()?);
                let rec = RefundRecord {
                    refund_id: rid.to_hex(),
                    original: pid.to_hex(),
                    number,
                    customer: customer.address(),
                    amount_fen: amount.0,
                    time: now,
                };
                b.put(keys::with(keys::REFUND, &rid.0), json(&rec)?);
                Ok(())
            },
        )?;
        Ok(Refund {
            original: pid,
            number,
            payment,
        })
    }
}
