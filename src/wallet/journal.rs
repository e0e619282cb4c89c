//! The till's end-of-day journal: built from its requests, sales, refunds and settlement index,
//! signed at close; checked and kept by the back office. See docs/merchants.md#the-tills-day.

use serde::Serialize;

use super::merchant::{TillRecord, from_json, id_hex, nonce_hex};
use super::records::HistoryEntry;
use super::{Batch, Store, Wallet, WalletError, keys};
use crate::codec::{Decode, Encode};
use crate::crypto::{Nonce, PublicKey};
use crate::money::Fen;
use crate::protocol::certificate::WalletKind;
use crate::protocol::journal::{CoinSettlement, JournalEntry, TillJournal};
use crate::protocol::sync::{Confirmation, SyncResponse};
use crate::time::format_rfc3339;

/// What importing a till journal did.
#[derive(Debug, Clone, Serialize)]
pub struct JournalImported {
    /// The till's address.
    pub till: String,
    /// The till's name.
    pub name: String,
    /// Journal number.
    pub seq: u64,
    /// Entries.
    pub entries: usize,
}

impl<S: Store> Wallet<S> {
    /// The journal entries of this wallet's requests, payments received and refunds paid between
    /// `from` and `to`, and of earlier payments whose settlement became known in that time; with
    /// the sync responses the settlement claims name. Requests in `skip` (cash-on-delivery orders)
    /// are left out.
    pub fn journal_entries(
        &self,
        from: u64,
        to: u64,
        skip: &[Nonce],
    ) -> Result<(Vec<JournalEntry>, Vec<SyncResponse>), WalletError> {
        let mut entries = Vec::new();
        let within = |t: u64| t >= from && t <= to;
        for rec in self.requests()? {
            if !within(rec.created_at) {
                continue;
            }
            let request_id = nonce_hex(&rec.request_id)?;
            if skip.contains(&request_id) {
                continue;
            }
            entries.push(JournalEntry::Request {
                request_id,
                amount: Fen(rec.amount_fen),
                created_at: rec.created_at,
                expires_at: rec.expires_at,
                memo: rec.memo.clone(),
            });
        }
        for sale in self.sales()? {
            let mut coins = Vec::with_capacity(sale.coins.len());
            let mut changed = false;
            for c in &sale.coins {
                let id = id_hex(c)?;
                let s = match self.coin_settlement(&id)? {
                    None => CoinSettlement::Pending,
                    Some(s) => {
                        changed |= s.time > from && s.time <= to;
                        s.to_journal()?
                    }
                };
                coins.push((id, s));
            }
            if !within(sale.time) && !changed {
                continue;
            }
            let confirmation = match &sale.confirmation_hex {
                None => None,
                Some(h) => Some(Box::new(
                    hex::decode(h)
                        .ok()
                        .and_then(|b| Confirmation::decode(&b).ok())
                        .ok_or_else(|| WalletError::Corrupt("stored confirmation".into()))?,
                )),
            };
            entries.push(JournalEntry::Payment {
                payment_id: id_hex(&sale.payment_id)?,
                payer: PublicKey::from_address(&sale.payer)
                    .map_err(|e| WalletError::Corrupt(format!("sale payer: {e}")))?,
                amount: Fen(sale.amount_fen),
                request_id: nonce_hex(&sale.request_id)?,
                time: sale.time,
                coins,
                confirmation,
            });
        }
        for r in self.refunds()? {
            if !within(r.time) {
                continue;
            }
            entries.push(JournalEntry::Refund {
                payment_id: id_hex(&r.refund_id)?,
                original: id_hex(&r.original)?,
                number: r.number,
                customer: PublicKey::from_address(&r.customer)
                    .map_err(|e| WalletError::Corrupt(format!("refund customer: {e}")))?,
                amount: Fen(r.amount_fen),
                time: r.time,
            });
        }
        // Only the entries that stayed in need their responses (a payment outside the period
        // whose settlement did not change was skipped after its coins were looked at).
        let mut needed: Vec<Nonce> = Vec::new();
        for e in &entries {
            if let JournalEntry::Payment { coins, .. } = e {
                for (_, s) in coins {
                    if let CoinSettlement::Settled { sync_id, .. }
                    | CoinSettlement::Rejected { sync_id, .. } = s
                        && !needed.contains(sync_id)
                    {
                        needed.push(*sync_id);
                    }
                }
            }
        }
        let mut responses = Vec::new();
        for s in needed {
            responses.push(self.sync_response(&s)?.ok_or_else(|| {
                WalletError::Corrupt(format!("sync response {} is not kept", s.short()))
            })?);
        }
        entries.sort_by_key(|e| e.sort_key());
        Ok((entries, responses))
    }

    /// The last close of this till: journal number and end of its period.
    pub fn last_close(&self) -> Result<Option<(u64, u64)>, WalletError> {
        match self.store().get(keys::LAST_CLOSE)? {
            None => Ok(None),
            Some(v) if v.len() == 16 => {
                let mut a = [0u8; 8];
                a.copy_from_slice(&v[..8]);
                let mut c = [0u8; 8];
                c.copy_from_slice(&v[8..]);
                Ok(Some((u64::from_be_bytes(a), u64::from_be_bytes(c))))
            }
            Some(_) => Err(WalletError::Corrupt("last close".into())),
        }
    }

    /// Closes the till: a till-signed journal of everything since the last close (or since
    /// `since`), recorded as closed before it is returned for writing.
    pub fn close_till(&self, since: Option<u64>, now: u64) -> Result<TillJournal, WalletError> {
        self.require_kind(
            self.kind() == WalletKind::Till,
            "only a till closes (the back office reconciles with `wallet till reconcile`)",
        )?;
        let cert = self.require_certificate()?;
        let merchant = cert
            .merchant
            .or(self.registration()?.merchant)
            .ok_or_else(|| WalletError::Corrupt("till without merchant".into()))?;
        let last = self.last_close()?;
        let seq = last.map_or(1, |(s, _)| s + 1);
        let from = since.unwrap_or_else(|| last.map_or(0, |(_, to)| to));
        if from > now {
            return Err(WalletError::Refused(format!(
                "the period would start at {}, after now",
                format_rfc3339(from)
            )));
        }
        let (entries, responses) = self.journal_entries(from, now, &[])?;
        let n = entries.len();
        let journal =
            TillJournal::sign(self.secret(), merchant, seq, from, now, entries, responses);
        let mut b = Batch::new();
        let mut v = seq.to_be_bytes().to_vec();
        v.extend_from_slice(&now.to_be_bytes());
        b.put(keys::LAST_CLOSE, v);
        self.push_history(
            &mut b,
            now,
            HistoryEntry::note(
                "closed",
                format!(
                    "till closed: journal {seq} with {n} entries from {}",
                    format_rfc3339(from)
                ),
            ),
        )?;
        self.store().commit(b)?;
        Ok(journal)
    }

    /// Checks a till's journal for this back office: signed by one of its tills, for this
    /// merchant, its settlement evidence signed by the issuer, its number not taken by another
    /// journal. `None` if exactly this journal is already imported.
    pub fn check_journal(&self, j: &TillJournal) -> Result<Option<TillRecord>, WalletError> {
        self.require_kind(
            self.kind() == WalletKind::Merchant,
            "only a merchant's back office imports till journals",
        )?;
        if j.merchant != self.public() {
            return Err(WalletError::NotForThisWallet(format!(
                "the journal is for merchant {}, not this one ({})",
                j.merchant.address(),
                self.public().address()
            )));
        }
        let till: TillRecord = match self
            .store()
            .get(&keys::with(keys::TILL, j.till.as_bytes()))?
        {
            Some(v) => from_json(&v, "till")?,
            None => {
                return Err(WalletError::NotForThisWallet(format!(
                    "{} is not one of this merchant's tills (authorize it with `wallet till authorize`)",
                    j.till.address()
                )));
            }
        };
        j.verify(&self.keyset()?)?;
        match self.store().get(&journal_key(j))? {
            None => Ok(Some(till)),
            Some(v) if v == j.to_bytes() => Ok(None),
            Some(_) => Err(WalletError::Refused(format!(
                "a different journal {} of till {:?} was already imported",
                j.seq, till.name
            ))),
        }
    }

    /// Imports till journals after checking every one ([`Wallet::check_journal`]), in one commit;
    /// journals already imported are skipped. Returns what was imported.
    pub fn import_journals(
        &self,
        js: &[TillJournal],
        now: u64,
    ) -> Result<Vec<JournalImported>, WalletError> {
        let mut b = Batch::new();
        let mut done = Vec::new();
        for j in js {
            let Some(till) = self.check_journal(j)? else {
                continue;
            };
            if b.ops().iter().any(|(k, _)| *k == journal_key(j)) {
                continue;
            }
            b.put(journal_key(j), j.to_bytes());
            self.push_history(
                &mut b,
                now,
                HistoryEntry {
                    counterparty: Some(j.till.address()),
                    ..HistoryEntry::note(
                        "journal",
                        format!(
                            "journal {} of till {:?}: {} entries",
                            j.seq,
                            till.name,
                            j.entries.len()
                        ),
                    )
                },
            )?;
            done.push(JournalImported {
                till: j.till.address(),
                name: till.name,
                seq: j.seq,
                entries: j.entries.len(),
            });
        }
        if !b.is_empty() {
            self.store().commit(b)?;
        }
        Ok(done)
    }

    /// Every till journal imported, by till then number.
    pub fn journals(&self) -> Result<Vec<TillJournal>, WalletError> {
        self.store()
            .scan_prefix(keys::JOURNAL)?
            .into_iter()
            .map(|(_, v)| {
                TillJournal::decode(&v).map_err(|e| WalletError::Corrupt(format!("journal: {e}")))
            })
            .collect()
    }
}

fn journal_key(j: &TillJournal) -> Vec<u8> {
    let mut key = keys::with(keys::JOURNAL, j.till.as_bytes());
    key.extend_from_slice(&j.seq.to_be_bytes());
    key
}
