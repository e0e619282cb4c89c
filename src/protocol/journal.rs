//! Till journal: the till's signed end-of-day account of every request it made, payment it took
//! and refund it paid, with what the issuer settled. See docs/protocol.md#till-journal.
//!
//! Settlement claims carry their evidence: each settled or rejected coin names the issuer-signed
//! sync response (carried in the journal) whose result or collected list covers it, and an online
//! payment carries the issuer's confirmation. The back office checks all of it offline.

use std::collections::BTreeMap;

use super::keyset::IssuerKeySet;
use super::payment::MAX_PAYMENT_COINS;
use super::request::MAX_MEMO;
use super::sync::{CoinStatus, Confirmation, RejectReason, SyncResponse};
use super::till::read_text;
use super::{SignedBody, VERSION, VerifyError, label};
use crate::codec::{Decode, DecodeError, Encode, Put, Reader};
use crate::crypto::{Id, Nonce, PublicKey, SecretKey, Signature};
use crate::money::Fen;

/// Most entries one journal may carry.
pub const MAX_JOURNAL_ENTRIES: u32 = 1_000_000;
/// Most sync responses one journal may carry.
pub const MAX_JOURNAL_RESPONSES: u32 = 10_000;

/// What the issuer made of one coin of a payment, as the till learned it at sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoinSettlement {
    /// Not yet settled (the till has not synced since).
    Pending,
    /// Settled: the response `sync_id` has `coin` among its accepted or already-settled results,
    /// or among its collected coins.
    Settled {
        /// The till's sync that settled it.
        sync_id: Nonce,
        /// The result's coin id (the chain's final coin) or the collected coin id.
        coin: Id,
        /// When settled (the response's time).
        time: u64,
    },
    /// Rejected: the response `sync_id` has `coin` among its rejected results.
    Rejected {
        /// The till's sync.
        sync_id: Nonce,
        /// The rejected result's coin id.
        coin: Id,
        /// When (the response's time).
        time: u64,
        /// Why.
        reason: RejectReason,
    },
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalEntry {
    /// A payment request the till made (amount 0: its static code).
    Request {
        /// Request id.
        request_id: Nonce,
        /// Amount asked; 0 for a static code.
        amount: Fen,
        /// When made.
        created_at: u64,
        /// Expiry.
        expires_at: u64,
        /// Memo.
        memo: String,
    },
    /// A payment the till received.
    Payment {
        /// Payment id.
        payment_id: Id,
        /// The customer.
        payer: PublicKey,
        /// Amount.
        amount: Fen,
        /// The request it paid.
        request_id: Nonce,
        /// When received (the till's clock).
        time: u64,
        /// The coins received, each with what settlement made of it.
        coins: Vec<(Id, CoinSettlement)>,
        /// The issuer's confirmation, for a payment settled online.
        confirmation: Option<Box<Confirmation>>,
    },
    /// A refund the till paid.
    Refund {
        /// The refund payment's id.
        payment_id: Id,
        /// The payment refunded.
        original: Id,
        /// Refund number of that payment, from 1.
        number: u32,
        /// The customer refunded.
        customer: PublicKey,
        /// Amount.
        amount: Fen,
        /// When paid.
        time: u64,
    },
}

impl JournalEntry {
    fn tag(&self) -> u8 {
        match self {
            JournalEntry::Request { .. } => 1,
            JournalEntry::Payment { .. } => 2,
            JournalEntry::Refund { .. } => 3,
        }
    }

    /// The canonical order: by tag, then by request id, payment id or refund payment id.
    pub fn sort_key(&self) -> (u8, [u8; 32]) {
        let mut k = [0u8; 32];
        match self {
            JournalEntry::Request { request_id, .. } => k[..16].copy_from_slice(&request_id.0),
            JournalEntry::Payment { payment_id, .. } | JournalEntry::Refund { payment_id, .. } => {
                k = payment_id.0
            }
        }
        (self.tag(), k)
    }

    /// When it happened.
    pub fn time(&self) -> u64 {
        match self {
            JournalEntry::Request { created_at, .. } => *created_at,
            JournalEntry::Payment { time, .. } | JournalEntry::Refund { time, .. } => *time,
        }
    }
}

/// A till-signed journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TillJournal {
    /// The till, who signs.
    pub till: PublicKey,
    /// Its merchant.
    pub merchant: PublicKey,
    /// Close number, from 1.
    pub seq: u64,
    /// Start of the period covered.
    pub from: u64,
    /// End of the period covered (the close).
    pub to: u64,
    /// Entries, in canonical order ([`JournalEntry::sort_key`]).
    pub entries: Vec<JournalEntry>,
    /// The issuer-signed sync responses the settlement claims name, ascending by sync id.
    pub responses: Vec<SyncResponse>,
    /// Till signature.
    pub signature: Signature,
}

fn reason_tag(r: RejectReason) -> u8 {
    match r {
        RejectReason::None => 0,
        RejectReason::DoubleSpend => 1,
        RejectReason::Invalid => 2,
        RejectReason::UnknownNote => 3,
        RejectReason::AlreadyRedeemed => 4,
        RejectReason::NotYours => 5,
    }
}

fn reason_from_tag(t: u8) -> Result<RejectReason, DecodeError> {
    Ok(match t {
        1 => RejectReason::DoubleSpend,
        2 => RejectReason::Invalid,
        3 => RejectReason::UnknownNote,
        4 => RejectReason::AlreadyRedeemed,
        5 => RejectReason::NotYours,
        got => {
            return Err(DecodeError::InvalidTag {
                what: "journal reject reason",
                got,
            });
        }
    })
}

fn put_entry(out: &mut Vec<u8>, e: &JournalEntry) {
    out.put_u8(e.tag());
    match e {
        JournalEntry::Request {
            request_id,
            amount,
            created_at,
            expires_at,
            memo,
        } => {
            out.put_raw(&request_id.0);
            out.put_u64(amount.0);
            out.put_u64(*created_at);
            out.put_u64(*expires_at);
            out.put_var8(memo.as_bytes());
        }
        JournalEntry::Payment {
            payment_id,
            payer,
            amount,
            request_id,
            time,
            coins,
            confirmation,
        } => {
            payment_id.encode(out);
            payer.encode(out);
            out.put_u64(amount.0);
            out.put_raw(&request_id.0);
            out.put_u64(*time);
            out.put_u8(coins.len() as u8);
            for (id, s) in coins {
                id.encode(out);
                match s {
                    CoinSettlement::Pending => out.put_u8(0),
                    CoinSettlement::Settled {
                        sync_id,
                        coin,
                        time,
                    } => {
                        out.put_u8(1);
                        out.put_raw(&sync_id.0);
                        coin.encode(out);
                        out.put_u64(*time);
                    }
                    CoinSettlement::Rejected {
                        sync_id,
                        coin,
                        time,
                        reason,
                    } => {
                        out.put_u8(2);
                        out.put_raw(&sync_id.0);
                        coin.encode(out);
                        out.put_u64(*time);
                        out.put_u8(reason_tag(*reason));
                    }
                }
            }
            match confirmation {
                None => out.put_u8(0),
                Some(c) => {
                    out.put_u8(1);
                    c.encode(out);
                }
            }
        }
        JournalEntry::Refund {
            payment_id,
            original,
            number,
            customer,
            amount,
            time,
        } => {
            payment_id.encode(out);
            original.encode(out);
            out.put_u32(*number);
            customer.encode(out);
            out.put_u64(amount.0);
            out.put_u64(*time);
        }
    }
}

fn get_entry(r: &mut Reader<'_>) -> Result<JournalEntry, DecodeError> {
    Ok(match r.u8("journal entry")? {
        1 => {
            let request_id = Nonce(r.array("journal request id")?);
            let amount = Fen(r.u64("journal request amount")?);
            let created_at = r.u64("journal request time")?;
            let expires_at = r.u64("journal request expiry")?;
            if expires_at < created_at {
                return Err(DecodeError::InvalidValue(
                    "request expires before it is made",
                ));
            }
            let memo = read_text(r, "journal request memo", 0, MAX_MEMO)?;
            JournalEntry::Request {
                request_id,
                amount,
                created_at,
                expires_at,
                memo,
            }
        }
        2 => {
            let payment_id = Id::decode(r, "journal payment id")?;
            let payer = PublicKey::decode(r, "journal payer")?;
            let amount = Fen(r.u64("journal payment amount")?);
            if amount == Fen::ZERO {
                return Err(DecodeError::InvalidValue("zero payment amount"));
            }
            let request_id = Nonce(r.array("journal payment request id")?);
            let time = r.u64("journal payment time")?;
            let n = r.count8("journal payment coins", 1, MAX_PAYMENT_COINS)?;
            let mut coins: Vec<(Id, CoinSettlement)> = Vec::with_capacity(n);
            for _ in 0..n {
                let id = Id::decode(r, "journal coin id")?;
                let s = match r.u8("coin settlement")? {
                    0 => CoinSettlement::Pending,
                    t @ (1 | 2) => {
                        let sync_id = Nonce(r.array("settlement sync id")?);
                        let coin = Id::decode(r, "settlement coin")?;
                        let time = r.u64("settlement time")?;
                        if t == 1 {
                            CoinSettlement::Settled {
                                sync_id,
                                coin,
                                time,
                            }
                        } else {
                            CoinSettlement::Rejected {
                                sync_id,
                                coin,
                                time,
                                reason: reason_from_tag(r.u8("journal reject reason")?)?,
                            }
                        }
                    }
                    got => {
                        return Err(DecodeError::InvalidTag {
                            what: "coin settlement",
                            got,
                        });
                    }
                };
                if coins.iter().any(|(c, _)| *c == id) {
                    return Err(DecodeError::NonCanonical("a coin listed twice"));
                }
                coins.push((id, s));
            }
            let confirmation = if r.option_tag("journal confirmation")? {
                Some(Box::new(Confirmation::decode_from(r)?))
            } else {
                None
            };
            JournalEntry::Payment {
                payment_id,
                payer,
                amount,
                request_id,
                time,
                coins,
                confirmation,
            }
        }
        3 => {
            let payment_id = Id::decode(r, "journal refund id")?;
            let original = Id::decode(r, "journal refunded payment")?;
            let number = r.u32("journal refund number")?;
            if number == 0 {
                return Err(DecodeError::InvalidValue("refund number 0"));
            }
            let customer = PublicKey::decode(r, "journal refund customer")?;
            let amount = Fen(r.u64("journal refund amount")?);
            if amount == Fen::ZERO {
                return Err(DecodeError::InvalidValue("zero refund amount"));
            }
            let time = r.u64("journal refund time")?;
            JournalEntry::Refund {
                payment_id,
                original,
                number,
                customer,
                amount,
                time,
            }
        }
        got => {
            return Err(DecodeError::InvalidTag {
                what: "journal entry",
                got,
            });
        }
    })
}

impl SignedBody for TillJournal {
    const LABEL: &'static [u8] = label::TILL_JOURNAL;

    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u8(VERSION);
        self.till.encode(out);
        self.merchant.encode(out);
        out.put_u64(self.seq);
        out.put_u64(self.from);
        out.put_u64(self.to);
        out.put_u32(self.entries.len() as u32);
        for e in &self.entries {
            put_entry(out, e);
        }
        out.put_u32(self.responses.len() as u32);
        for r in &self.responses {
            r.encode(out);
        }
    }
}

impl Encode for TillJournal {
    fn encode(&self, out: &mut Vec<u8>) {
        self.encode_body(out);
        self.signature.encode(out);
    }
}

impl Decode for TillJournal {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.version("till journal", VERSION)?;
        let till = PublicKey::decode(r, "journal till")?;
        let merchant = PublicKey::decode(r, "journal merchant")?;
        if till == merchant {
            return Err(DecodeError::InvalidValue("journal of the merchant itself"));
        }
        let seq = r.u64("journal number")?;
        if seq == 0 {
            return Err(DecodeError::InvalidValue("journal number 0"));
        }
        let from = r.u64("journal start")?;
        let to = r.u64("journal end")?;
        if to < from {
            return Err(DecodeError::InvalidValue("journal ends before it starts"));
        }
        let n = r.count32("journal entries", 0, MAX_JOURNAL_ENTRIES, 42)?;
        let mut entries: Vec<JournalEntry> = Vec::with_capacity(n);
        for _ in 0..n {
            let e = get_entry(r)?;
            if entries.last().is_some_and(|l| l.sort_key() >= e.sort_key()) {
                return Err(DecodeError::NonCanonical(
                    "journal entries not strictly ascending",
                ));
            }
            entries.push(e);
        }
        let n = r.count32("journal responses", 0, MAX_JOURNAL_RESPONSES, 400)?;
        let mut responses: Vec<SyncResponse> = Vec::with_capacity(n);
        for _ in 0..n {
            let resp = SyncResponse::decode_from(r)?;
            if responses.last().is_some_and(|l| l.sync_id >= resp.sync_id) {
                return Err(DecodeError::NonCanonical(
                    "journal responses not strictly ascending",
                ));
            }
            responses.push(resp);
        }
        let signature = Signature::decode(r, "journal signature")?;
        Ok(TillJournal {
            till,
            merchant,
            seq,
            from,
            to,
            entries,
            responses,
            signature,
        })
    }
}

impl TillJournal {
    /// Signs a journal with the till's key (entries and responses are put in canonical order
    /// first).
    #[allow(clippy::too_many_arguments)]
    pub fn sign(
        till: &SecretKey,
        merchant: PublicKey,
        seq: u64,
        from: u64,
        to: u64,
        mut entries: Vec<JournalEntry>,
        mut responses: Vec<SyncResponse>,
    ) -> TillJournal {
        entries.sort_by_key(|e| e.sort_key());
        entries.dedup_by(|a, b| a.sort_key() == b.sort_key());
        responses.sort_by_key(|a| a.sync_id);
        responses.dedup_by(|a, b| a.sync_id == b.sync_id);
        let mut j = TillJournal {
            till: till.public(),
            merchant,
            seq,
            from,
            to,
            entries,
            responses,
            signature: Signature([0; 64]),
        };
        j.signature = till.sign(&j.signing_bytes());
        j
    }

    /// Checks the till's signature and every piece of settlement evidence against the issuer
    /// key set: each response is signed by the issuer root and is the till's, each settled or
    /// rejected coin is covered by the response it names, each confirmation is the issuer's and
    /// matches its payment.
    pub fn verify(&self, keys: &IssuerKeySet) -> Result<(), VerifyError> {
        self.till
            .verify(&self.signing_bytes(), &self.signature, "till journal")?;
        let mut by_sync = BTreeMap::new();
        for resp in &self.responses {
            keys.root
                .verify(&resp.signing_bytes(), &resp.signature, "sync response")?;
            if resp.wallet != self.till {
                return Err(VerifyError::Mismatch(
                    "the journal carries another wallet's sync response".into(),
                ));
            }
            by_sync.insert(resp.sync_id, resp);
        }
        let bad = |what: &str| VerifyError::Mismatch(format!("journal settlement claim: {what}"));
        for e in &self.entries {
            let JournalEntry::Payment {
                payment_id,
                payer,
                amount,
                coins,
                confirmation,
                ..
            } = e
            else {
                continue;
            };
            if let Some(c) = confirmation {
                keys.root
                    .verify(&c.signing_bytes(), &c.signature, "confirmation")?;
                if c.payment_id != *payment_id
                    || c.payee != self.till
                    || c.payer != *payer
                    || c.amount != *amount
                {
                    return Err(bad("a confirmation for another payment"));
                }
            }
            for (_, s) in coins {
                let (sync_id, coin, time, rejected) = match s {
                    CoinSettlement::Pending => continue,
                    CoinSettlement::Settled {
                        sync_id,
                        coin,
                        time,
                    } => (sync_id, coin, time, None),
                    CoinSettlement::Rejected {
                        sync_id,
                        coin,
                        time,
                        reason,
                    } => (sync_id, coin, time, Some(*reason)),
                };
                let resp = by_sync
                    .get(sync_id)
                    .ok_or_else(|| bad("names a sync response the journal does not carry"))?;
                if resp.time != *time {
                    return Err(bad("settlement time differs from the response"));
                }
                let result = resp.results.iter().find(|r| r.coin == *coin);
                let ok = match (rejected, result) {
                    (None, Some(r)) => r.status != CoinStatus::Rejected,
                    (None, None) => resp.collected.contains(coin),
                    (Some(reason), Some(r)) => {
                        r.status == CoinStatus::Rejected && r.reason == reason
                    }
                    (Some(_), None) => false,
                };
                if !ok {
                    return Err(bad("the named sync response does not say so"));
                }
            }
        }
        Ok(())
    }
}
