//! Local records: history, outbox, requests and the balance view. These are the wallet's own
//! bookkeeping (JSON in the store), never signed and never sent to anyone.

use serde::{Deserialize, Serialize};

use super::WalletError;
use crate::codec::{Decode, Encode, Put, Reader};
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
    /// The payment's canonical bytes (hex), to write the file again (stored, not shown); dropped
    /// once the payment is settled (docs/adr/0006).
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
            request_id: p.request_id.to_hex(),
            payment_hex: hex::encode(p.to_bytes()),
            ..OutboxEntry::of_fields(p)
        }
    }

    /// [`OutboxEntry::of`] without the ids and the payment's bytes (the binary writer takes
    /// them raw).
    fn of_fields(p: &Payment) -> OutboxEntry {
        OutboxEntry {
            payment_id: String::new(),
            payee: p.payee.address(),
            amount_fen: p.amount.0,
            time: p.time,
            request_id: String::new(),
            receipt_time: None,
            reported_in: None,
            settled_at: None,
            payment_hex: String::new(),
        }
    }

    /// The stored record: binary (docs/adr/0006). Records written before it are JSON and still
    /// read; they are rewritten in this form when next changed.
    ///
    /// Layout: `01` (the form), payment id (32 bytes), payee address (u8 length + text), amount
    /// (u64), time (u64), request id (16 bytes), then three options (a tag byte 0/1, then the
    /// value): receipt time (u64), the sync that reported it (16 bytes), settlement time (u64);
    /// then the payment's canonical bytes, to the end (none once settled).
    pub(crate) fn to_stored(&self) -> Result<Vec<u8>, WalletError> {
        let corrupt = |what: &str| WalletError::Corrupt(format!("outbox: bad {what}"));
        let id: [u8; 32] = hex_array(&self.payment_id).ok_or_else(|| corrupt("payment id"))?;
        let request: [u8; 16] = hex_array(&self.request_id).ok_or_else(|| corrupt("request id"))?;
        let reported: Option<[u8; 16]> = match &self.reported_in {
            Some(h) => Some(hex_array(h).ok_or_else(|| corrupt("sync id"))?),
            None => None,
        };
        let payment = hex::decode(&self.payment_hex).map_err(|_| corrupt("payment"))?;
        self.stored_with(&id, &request, reported.as_ref(), &payment)
    }

    /// The stored record of a payment just made: the bytes of `of(p, id).to_stored()`, without
    /// the round trip through hex (a payment's bytes are most of the record).
    pub(crate) fn stored_of(p: &Payment, id: &crate::crypto::Id) -> Result<Vec<u8>, WalletError> {
        OutboxEntry::of_fields(p).stored_with(&id.0, &p.request_id.0, None, &p.to_bytes())
    }

    /// The binary layout of [`OutboxEntry::to_stored`], from the ids and payment bytes decoded.
    fn stored_with(
        &self,
        id: &[u8; 32],
        request: &[u8; 16],
        reported: Option<&[u8; 16]>,
        payment: &[u8],
    ) -> Result<Vec<u8>, WalletError> {
        if self.payee.len() > 255 {
            return Err(WalletError::Corrupt("outbox: bad payee".into()));
        }
        let mut v = Vec::with_capacity(150 + payment.len());
        v.put_u8(RECORD_BINARY);
        v.put_raw(id);
        v.put_var8(self.payee.as_bytes());
        v.put_u64(self.amount_fen);
        v.put_u64(self.time);
        v.put_raw(request);
        put_option(&mut v, self.receipt_time.map(u64::to_be_bytes).as_ref());
        put_option(&mut v, reported);
        put_option(&mut v, self.settled_at.map(u64::to_be_bytes).as_ref());
        v.put_raw(payment);
        Ok(v)
    }

    /// The entry and the payment's bytes (empty once settled).
    pub(crate) fn parse(v: &[u8]) -> Result<(OutboxEntry, Vec<u8>), WalletError> {
        if v.first() == Some(&b'{') {
            let s: StoredOutbox = serde_json::from_slice(v)
                .map_err(|e| WalletError::Corrupt(format!("outbox: {e}")))?;
            let bytes = hex::decode(&s.payment_hex)
                .map_err(|x| WalletError::Corrupt(format!("outbox: {x}")))?;
            return Ok((s.entry, bytes));
        }
        let corrupt = |e: crate::codec::DecodeError| WalletError::Corrupt(format!("outbox: {e}"));
        let mut r = Reader::new(v);
        r.version("outbox record", RECORD_BINARY).map_err(corrupt)?;
        let id: [u8; 32] = r.array("payment id").map_err(corrupt)?;
        let payee = std::str::from_utf8(r.var8("payee", 255).map_err(corrupt)?)
            .map_err(|_| WalletError::Corrupt("outbox: payee is not text".into()))?
            .to_string();
        let amount_fen = r.u64("amount").map_err(corrupt)?;
        let time = r.u64("time").map_err(corrupt)?;
        let request: [u8; 16] = r.array("request id").map_err(corrupt)?;
        let receipt_time = match r.option_tag("receipt time").map_err(corrupt)? {
            true => Some(r.u64("receipt time").map_err(corrupt)?),
            false => None,
        };
        let reported_in = match r.option_tag("reported in").map_err(corrupt)? {
            true => Some(hex::encode(r.array::<16>("reported in").map_err(corrupt)?)),
            false => None,
        };
        let settled_at = match r.option_tag("settled at").map_err(corrupt)? {
            true => Some(r.u64("settled at").map_err(corrupt)?),
            false => None,
        };
        let bytes = r.take(r.remaining(), "payment").map_err(corrupt)?.to_vec();
        let entry = OutboxEntry {
            payment_id: hex::encode(id),
            payee,
            amount_fen,
            time,
            request_id: hex::encode(request),
            receipt_time,
            reported_in,
            settled_at,
            payment_hex: String::new(),
        };
        Ok((entry, bytes))
    }

    pub(crate) fn from_stored(v: &[u8]) -> Result<OutboxEntry, WalletError> {
        let (mut e, bytes) = OutboxEntry::parse(v)?;
        e.payment_hex = hex::encode(bytes);
        Ok(e)
    }

    /// Marks the payment settled at the issuer at `at`, and drops its bytes: a settled payment is
    /// final and its payee is paid through the ledger, so nothing is left to send again. (At a
    /// wallet that pays often they were most of what it held: about 2 KB a payment.)
    pub(crate) fn settle(&mut self, at: u64) {
        self.settled_at = Some(at);
        self.payment_hex.clear();
    }

    pub(crate) fn payment_from_stored(v: &[u8]) -> Result<Payment, WalletError> {
        let (e, bytes) = OutboxEntry::parse(v)?;
        if bytes.is_empty() && e.settled_at.is_some() {
            return Err(WalletError::Refused(format!(
                "payment {} is settled at the issuer: it is final, and its bytes are no longer kept",
                &e.payment_id[..8.min(e.payment_id.len())]
            )));
        }
        Payment::decode(&bytes).map_err(|x| WalletError::Corrupt(format!("outbox: {x}")))
    }
}

/// First byte of an outbox, request or settlement record in its binary form (JSON starts with
/// `{`).
pub(crate) const RECORD_BINARY: u8 = 1;

/// Hex text as exactly `N` bytes.
fn hex_array<const N: usize>(h: &str) -> Option<[u8; N]> {
    hex::decode(h).ok().and_then(|b| b.try_into().ok())
}

/// An option: a tag byte (0 absent, 1 present), then the value.
pub(crate) fn put_option<const N: usize>(v: &mut Vec<u8>, x: Option<&[u8; N]>) {
    match x {
        Some(b) => {
            v.put_u8(1);
            v.put_raw(b);
        }
        None => v.put_u8(0),
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
    /// The text code (cleared once a dynamic request is paid: it takes one payment).
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
            code: r.to_code(),
            ..RequestRecord::open_fields(r)
        }
    }

    /// [`RequestRecord::open`] without the id and the code (the binary writer takes the
    /// request's bytes raw).
    fn open_fields(r: &PaymentRequest) -> RequestRecord {
        RequestRecord {
            request_id: String::new(),
            amount_fen: r.amount.0,
            memo: r.memo.clone(),
            expires_at: r.expires_at,
            paid_by: None,
            code: String::new(),
            created_at: r.created_at,
            paid: Vec::new(),
        }
    }

    /// The stored record: binary (docs/adr/0006); records written before it are JSON and still
    /// read.
    ///
    /// Layout: `01` (the form), request id (16 bytes), amount (u64), expiry (u64), creation time
    /// (u64), memo (u8 length + text), the paying payment id (a tag byte 0/1, then 32 bytes), the
    /// static code's payments (u32 count, 32 bytes each), then the request's canonical bytes, to
    /// the end (none once a dynamic request is paid), from which its code is written again.
    pub(crate) fn to_stored(&self) -> Result<Vec<u8>, WalletError> {
        let corrupt = |what: &str| WalletError::Corrupt(format!("request record: bad {what}"));
        let request: [u8; 16] = hex_array(&self.request_id).ok_or_else(|| corrupt("request id"))?;
        let bytes = match self.code.as_str() {
            "" => Vec::new(),
            code => PaymentRequest::from_code(code)
                .map_err(|_| corrupt("code"))?
                .to_bytes(),
        };
        self.stored_with(&request, &bytes)
    }

    /// The stored record of a fresh request: the bytes of `open(r).to_stored()`, without
    /// writing its code and reading it back.
    pub(crate) fn stored_of(r: &PaymentRequest) -> Result<Vec<u8>, WalletError> {
        RequestRecord::open_fields(r).stored_with(&r.request_id.0, &r.to_bytes())
    }

    /// The binary layout of [`RequestRecord::to_stored`], from the request id and the request's
    /// canonical bytes.
    fn stored_with(&self, request: &[u8; 16], bytes: &[u8]) -> Result<Vec<u8>, WalletError> {
        let corrupt = |what: &str| WalletError::Corrupt(format!("request record: bad {what}"));
        let id32 = |h: &str| -> Result<[u8; 32], WalletError> {
            hex_array(h).ok_or_else(|| corrupt("payment id"))
        };
        if self.memo.len() > usize::from(crate::protocol::request::MAX_MEMO) {
            return Err(corrupt("memo"));
        }
        let mut v = Vec::with_capacity(64 + self.memo.len() + bytes.len() + 32 * self.paid.len());
        v.put_u8(RECORD_BINARY);
        v.put_raw(request);
        v.put_u64(self.amount_fen);
        v.put_u64(self.expires_at);
        v.put_u64(self.created_at);
        v.put_var8(self.memo.as_bytes());
        let paid_by = self.paid_by.as_deref().map(id32).transpose()?;
        put_option(&mut v, paid_by.as_ref());
        v.put_u32(u32::try_from(self.paid.len()).map_err(|_| corrupt("payments"))?);
        for p in &self.paid {
            v.put_raw(&id32(p)?);
        }
        v.put_raw(bytes);
        Ok(v)
    }

    pub(crate) fn from_stored(v: &[u8]) -> Result<RequestRecord, WalletError> {
        if v.first() == Some(&b'{') {
            return serde_json::from_slice(v)
                .map_err(|e| WalletError::Corrupt(format!("request: {e}")));
        }
        let corrupt = |e: crate::codec::DecodeError| WalletError::Corrupt(format!("request: {e}"));
        let mut r = Reader::new(v);
        r.version("request record", RECORD_BINARY)
            .map_err(corrupt)?;
        let request_id = hex::encode(r.array::<16>("request id").map_err(corrupt)?);
        let amount_fen = r.u64("amount").map_err(corrupt)?;
        let expires_at = r.u64("expiry").map_err(corrupt)?;
        let created_at = r.u64("creation time").map_err(corrupt)?;
        let memo = std::str::from_utf8(
            r.var8("memo", crate::protocol::request::MAX_MEMO)
                .map_err(corrupt)?,
        )
        .map_err(|_| WalletError::Corrupt("request: memo is not text".into()))?
        .to_string();
        let paid_by = match r.option_tag("paid by").map_err(corrupt)? {
            true => Some(hex::encode(r.array::<32>("paid by").map_err(corrupt)?)),
            false => None,
        };
        let n = r.u32("payments").map_err(corrupt)? as usize;
        if n > r.remaining() / 32 {
            return Err(WalletError::Corrupt("request: truncated payments".into()));
        }
        let mut paid = Vec::with_capacity(n);
        for _ in 0..n {
            paid.push(hex::encode(r.array::<32>("payment").map_err(corrupt)?));
        }
        let code = match r.take(r.remaining(), "request").map_err(corrupt)? {
            [] => String::new(),
            bytes => PaymentRequest::decode(bytes)
                .map_err(|e| WalletError::Corrupt(format!("request: {e}")))?
                .to_code(),
        };
        Ok(RequestRecord {
            request_id,
            amount_fen,
            memo,
            expires_at,
            paid_by,
            code,
            created_at,
            paid,
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::SignedBody;
    use crate::testkit::Fixture;

    fn entry() -> (OutboxEntry, Payment) {
        let (p, _) = Fixture::new().payment_n_by_hops(2, 1);
        (OutboxEntry::of(&p, &p.id()), p)
    }

    /// The record a fresh request writes without its code is the same bytes, and reads back as
    /// the record with the code.
    #[test]
    fn request_record_of_a_fresh_request_is_the_same_bytes_without_its_code() {
        let shop = crate::crypto::SecretKey::from_seed(&[9; 32]);
        for memo in ["", "table 4", "\u{4e2d}\u{6587}"] {
            let r = PaymentRequest::sign(
                &shop,
                crate::Fen(1234),
                crate::crypto::Nonce([7; 16]),
                memo.to_string(),
                100,
                400,
            );
            let stored = RequestRecord::stored_of(&r).expect("stored");
            let via_code = RequestRecord::open(&r).to_stored().expect("stored");
            assert_eq!(stored, via_code);
            let back = RequestRecord::from_stored(&stored).expect("reads");
            assert_eq!(back.code, r.to_code());
        }
    }

    /// The record a payment writes without the hex round trip is the same bytes, and reads back
    /// as the entry and the payment.
    #[test]
    fn outbox_record_of_a_new_payment_is_the_same_bytes_without_hex() {
        for (coins, hops) in [(1, 0), (2, 1), (3, 4)] {
            let (p, _) = Fixture::new().payment_n_by_hops(coins, hops);
            let stored = OutboxEntry::stored_of(&p, &p.id()).expect("stored");
            let via_hex = OutboxEntry::of(&p, &p.id()).to_stored().expect("stored");
            assert_eq!(stored, via_hex);
            let (e, bytes) = OutboxEntry::parse(&stored).expect("parses");
            assert_eq!(bytes, p.to_bytes());
            assert_eq!(e.payment_id, p.id().to_hex());
        }
    }

    #[test]
    fn outbox_record_round_trips_in_binary_and_drops_its_bytes_once_settled() {
        let (mut e, p) = entry();
        let v = e.to_stored().expect("ok");
        assert_eq!(v[0], RECORD_BINARY);
        assert_eq!(OutboxEntry::from_stored(&v).expect("ok"), e);
        assert_eq!(OutboxEntry::payment_from_stored(&v).expect("ok"), p);
        // About half of the JSON form it replaces (the payment's bytes are not in hex).
        let json = serde_json::to_vec(&StoredOutbox {
            entry: e.clone(),
            payment_hex: e.payment_hex.clone(),
        })
        .expect("ok");
        assert!(
            v.len() * 20 < json.len() * 11,
            "{} vs {}",
            v.len(),
            json.len()
        );
        e.receipt_time = Some(7);
        e.reported_in = Some("ab".repeat(16));
        let v = e.to_stored().expect("ok");
        assert_eq!(OutboxEntry::from_stored(&v).expect("ok"), e);
        e.settle(9);
        let v = e.to_stored().expect("ok");
        assert!(v.len() < 200, "a settled record keeps its summary only");
        let back = OutboxEntry::from_stored(&v).expect("ok");
        assert_eq!(back.settled_at, Some(9));
        assert_eq!(back.payment_hex, "");
        let err = OutboxEntry::payment_from_stored(&v)
            .expect_err("refused")
            .to_string();
        assert!(err.contains("settled at the issuer"), "{err}");
    }

    #[test]
    fn outbox_records_in_the_json_form_still_read() {
        let (e, p) = entry();
        let json = serde_json::to_vec(&StoredOutbox {
            entry: e.clone(),
            payment_hex: e.payment_hex.clone(),
        })
        .expect("ok");
        assert_eq!(OutboxEntry::from_stored(&json).expect("ok"), e);
        assert_eq!(OutboxEntry::payment_from_stored(&json).expect("ok"), p);
    }

    #[test]
    fn request_records_round_trip_in_binary_and_still_read_as_json() {
        let q = PaymentRequest::sign(
            &crate::testkit::key(51),
            Fen(1_234),
            crate::crypto::Nonce([7; 16]),
            "noodles".into(),
            100,
            200,
        );
        let mut rec = RequestRecord::open(&q);
        let v = rec.to_stored().expect("ok");
        assert_eq!(v[0], RECORD_BINARY);
        assert_eq!(RequestRecord::from_stored(&v).expect("ok"), rec);
        let json = serde_json::to_vec(&rec).expect("ok");
        assert!(v.len() < json.len(), "{} vs {}", v.len(), json.len());
        assert_eq!(RequestRecord::from_stored(&json).expect("ok"), rec);
        // Paid: the code goes; a static code's payments are listed.
        rec.paid_by = Some("cd".repeat(32));
        rec.code.clear();
        let v = rec.to_stored().expect("ok");
        assert!(v.len() < 100);
        assert_eq!(RequestRecord::from_stored(&v).expect("ok"), rec);
        rec.paid = vec!["01".repeat(32), "02".repeat(32)];
        assert_eq!(
            RequestRecord::from_stored(&rec.to_stored().expect("ok")).expect("ok"),
            rec
        );
        // Damaged: an error, never a panic.
        let v = rec.to_stored().expect("ok");
        for cut in 0..v.len() {
            assert!(RequestRecord::from_stored(&v[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn a_damaged_outbox_record_is_corrupt_not_a_panic() {
        let (e, _) = entry();
        let v = e.to_stored().expect("ok");
        // Cut inside the summary, an unknown form, a bad option tag.
        for cut in [1, 20, 40, 80, 100] {
            assert!(matches!(
                OutboxEntry::from_stored(&v[..cut]),
                Err(WalletError::Corrupt(_))
            ));
        }
        let mut unknown = v.clone();
        unknown[0] = 9;
        assert!(matches!(
            OutboxEntry::from_stored(&unknown),
            Err(WalletError::Corrupt(_))
        ));
        // A cut inside the payment's bytes: the summary reads, the payment does not decode.
        let short = &v[..v.len() - 10];
        assert!(OutboxEntry::from_stored(short).is_ok());
        assert!(matches!(
            OutboxEntry::payment_from_stored(short),
            Err(WalletError::Corrupt(_))
        ));
        assert!(OutboxEntry::from_stored(b"{not json").is_err());
    }
}
