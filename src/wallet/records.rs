//! Local records: history, outbox, requests and the balance view. These are the wallet's own
//! bookkeeping (JSON in the store), never signed and never sent to anyone.

use serde::{Deserialize, Serialize};

use super::WalletError;
use crate::codec::{Decode, Encode};
use crate::crypto::PublicKey;
use crate::money::Fen;
use crate::protocol::certificate::{Certificate, WalletKind};
use crate::protocol::coin::Coin;
use crate::protocol::keyset::IssuerKeySet;
use crate::protocol::note::Earmark;
use crate::protocol::payment::Payment;
use crate::protocol::request::PaymentRequest;

/// One line of wallet history.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Sequence number, from 1.
    pub seq: u64,
    /// Unix seconds.
    pub time: u64,
    /// What happened: created, certified, issued, requested, paid, received, receipt, keys,
    /// revocations.
    pub event: String,
    /// Amount in fen, where money moved.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub amount_fen: Option<u64>,
    /// The other wallet's address.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub counterparty: Option<String>,
    /// Payment id (hex).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub payment_id: Option<String>,
    /// Request id (hex).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub request_id: Option<String>,
    /// Memo of the request.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub memo: Option<String>,
    /// One line for people.
    pub detail: String,
}

impl HistoryEntry {
    /// An entry with just an event and a line of detail.
    pub fn note(event: &str, detail: String) -> HistoryEntry {
        HistoryEntry {
            event: event.to_string(),
            detail,
            ..HistoryEntry::default()
        }
    }
}

/// A payment made, kept until the payee's receipt comes back (and after, marked).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Payment id (hex).
    #[serde(rename = "id")]
    pub payment_id: String,
    /// Payee address.
    pub payee: String,
    /// Amount in fen.
    pub amount_fen: u64,
    /// When made.
    pub time: u64,
    /// Request id (hex).
    pub request_id: String,
    /// When the receipt was imported, if it was.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub receipt_time: Option<u64>,
    /// The sync that brought this payment to the issuer (sync id hex), once sent.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reported_in: Option<String>,
    /// When the issuer settled it (online payment or sync), if known.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub settled_at: Option<u64>,
    /// The payment's canonical bytes (hex), to write the file again (stored, not shown).
    #[serde(skip)]
    pub payment_hex: String,
}

#[derive(Serialize, Deserialize)]
struct StoredOutbox {
    #[serde(flatten)]
    entry: OutboxEntry,
    payment_hex: String,
}

impl OutboxEntry {
    /// The record for a payment just made.
    pub fn of(p: &Payment, id: &crate::crypto::Id) -> OutboxEntry {
        OutboxEntry {
            payment_id: id.to_hex(),
            payee: p.payee.address(),
            amount_fen: p.amount.0,
            time: p.time,
            request_id: p.request_id.to_hex(),
            receipt_time: None,
            reported_in: None,
            settled_at: None,
            payment_hex: hex::encode(p.to_bytes()),
        }
    }

    pub(crate) fn to_stored(&self) -> Result<Vec<u8>, WalletError> {
        serde_json::to_vec(&StoredOutbox {
            entry: self.clone(),
            payment_hex: self.payment_hex.clone(),
        })
        .map_err(|e| WalletError::Corrupt(e.to_string()))
    }

    pub(crate) fn from_stored(v: &[u8]) -> Result<OutboxEntry, WalletError> {
        let s: StoredOutbox =
            serde_json::from_slice(v).map_err(|e| WalletError::Corrupt(format!("outbox: {e}")))?;
        Ok(OutboxEntry {
            payment_hex: s.payment_hex,
            ..s.entry
        })
    }

    pub(crate) fn payment_from_stored(v: &[u8]) -> Result<Payment, WalletError> {
        let e = OutboxEntry::from_stored(v)?;
        let bytes = hex::decode(&e.payment_hex)
            .map_err(|x| WalletError::Corrupt(format!("outbox: {x}")))?;
        Payment::decode(&bytes).map_err(|x| WalletError::Corrupt(format!("outbox: {x}")))
    }
}

/// A request this wallet made, and whether it has been paid.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RequestRecord {
    /// Request id (hex).
    pub request_id: String,
    /// Amount in fen.
    pub amount_fen: u64,
    /// Memo.
    pub memo: String,
    /// Expiry (unix seconds).
    pub expires_at: u64,
    /// The paying payment id, once paid (a dynamic code: one use).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub paid_by: Option<String>,
    /// The text code.
    pub code: String,
    /// When made (unix seconds; 0 in records from before it was kept).
    #[serde(default)]
    pub created_at: u64,
    /// For a static code (amount 0): every payment id that paid it.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub paid: Vec<String>,
}

impl RequestRecord {
    /// The record of a fresh request.
    pub fn open(r: &PaymentRequest) -> RequestRecord {
        RequestRecord {
            request_id: r.request_id.to_hex(),
            amount_fen: r.amount.0,
            memo: r.memo.clone(),
            expires_at: r.expires_at,
            paid_by: None,
            code: r.to_code(),
            created_at: r.created_at,
            paid: Vec::new(),
        }
    }

    pub(crate) fn to_json(&self) -> Result<Vec<u8>, WalletError> {
        serde_json::to_vec(self).map_err(|e| WalletError::Corrupt(e.to_string()))
    }

    pub(crate) fn from_json(v: &[u8]) -> Result<RequestRecord, WalletError> {
        serde_json::from_slice(v).map_err(|e| WalletError::Corrupt(format!("request: {e}")))
    }
}

/// A payment this wallet received, as merchants' journals and reconciliation see it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SaleRecord {
    /// Payment id (hex).
    pub payment_id: String,
    /// The payer's address.
    pub payer: String,
    /// Amount in fen.
    pub amount_fen: u64,
    /// The request it paid (hex).
    pub request_id: String,
    /// When received.
    pub time: u64,
    /// The coins received (hex ids).
    pub coins: Vec<String>,
    /// The issuer's confirmation (hex), for a payment settled online.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub confirmation_hex: Option<String>,
    /// Refunded so far, in fen.
    #[serde(default)]
    pub refunded_fen: u64,
    /// The refund payments (hex ids).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub refunds: Vec<String>,
    /// For a cash-on-delivery payment: the order number.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub order_id: Option<String>,
}

impl SaleRecord {
    pub(crate) fn to_json(&self) -> Result<Vec<u8>, WalletError> {
        serde_json::to_vec(self).map_err(|e| WalletError::Corrupt(e.to_string()))
    }

    pub(crate) fn from_json(v: &[u8]) -> Result<SaleRecord, WalletError> {
        serde_json::from_slice(v).map_err(|e| WalletError::Corrupt(format!("sale: {e}")))
    }
}

/// One coin as shown to people.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CoinView {
    /// Coin id (hex).
    pub id: String,
    /// Value in fen.
    #[serde(rename = "value_fen")]
    pub value: Fen,
    /// Transfers in its chain.
    pub hops: usize,
    /// Issuer key id of its note.
    pub key_id: u32,
    /// "merchants-only" for red-envelope money.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub earmark: Option<String>,
    /// Whether it can be spent offline now (hop limit, key validity, earmark expiry).
    pub spendable: bool,
}

impl CoinView {
    /// The view of a stored coin.
    pub fn of(c: &Coin, keys: &IssuerKeySet, now: u64) -> CoinView {
        let hops = c.hops.len();
        let key_ok = keys
            .key(c.note.key_id)
            .map(|k| now <= k.redeem_until)
            .unwrap_or(false);
        let (earmark, earmark_ok) = match c.note.earmark {
            Earmark::None => (None, true),
            Earmark::MerchantsOnly { expires_at } => {
                (Some("merchants-only".to_string()), now <= expires_at)
            }
        };
        CoinView {
            id: c.id().to_hex(),
            value: c.value(),
            hops,
            key_id: c.note.key_id,
            earmark,
            spendable: key_ok && earmark_ok && hops < usize::from(keys.policy.max_hops),
        }
    }
}

/// The wallet's balance and standing.
#[derive(Debug, Clone, Serialize)]
pub struct Balance {
    /// The wallet's address.
    pub address: String,
    /// Kind.
    pub kind: WalletKind,
    /// Total of all coins, in fen.
    pub total_fen: u64,
    /// Total spendable offline now, in fen.
    pub spendable_fen: u64,
    /// The coins, largest first.
    pub coins: Vec<CoinView>,
    /// Certificate class, if certified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// Certificate expiry (unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_expires_at: Option<u64>,
    /// Offline spend left until the next sync, in fen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offline_left_fen: Option<u64>,
    /// Offline payments left until the next sync.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offline_payments_left: Option<u64>,
}

impl Balance {
    pub(crate) fn new(
        address: PublicKey,
        kind: WalletKind,
        total: Fen,
        coins: Vec<CoinView>,
        cert: Option<&Certificate>,
        offline_spent: Fen,
        counter: u64,
    ) -> Balance {
        let spendable_fen = coins
            .iter()
            .filter(|c| c.spendable)
            .map(|c| c.value.0)
            .sum();
        Balance {
            address: address.address(),
            kind,
            total_fen: total.0,
            spendable_fen,
            coins,
            class: cert.map(|c| c.class.to_string()),
            certificate_expires_at: cert.map(|c| c.expires_at),
            offline_left_fen: cert
                .map(|c| c.limits.offline_total_max.0.saturating_sub(offline_spent.0)),
            offline_payments_left: cert.map(|c| {
                u64::from(c.limits.offline_count_max)
                    .saturating_sub(counter.saturating_sub(c.counter_base))
            }),
        }
    }
}
