//! `wallet import`: certificates, issued notes, key sets, revocation lists and receipts.
//!
//! Every import verifies first and commits once; a refused import changes nothing.

use super::records::{HistoryEntry, OutboxEntry};
use super::{Batch, Store, Wallet, WalletError, keys};
use crate::codec::Encode;
use crate::money::Fen;
use crate::protocol::SignedBody;
use crate::protocol::certificate::Certificate;
use crate::protocol::coin::Coin;
use crate::protocol::file::{NoteBundle, TbFile};
use crate::protocol::keyset::IssuerKeySet;
use crate::protocol::payment::Receipt;
use crate::protocol::revocation::RevocationList;
use crate::time::format_rfc3339;

/// What an import did.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "imported", rename_all = "kebab-case")]
pub enum Imported {
    /// A newer issuer key set.
    KeySet {
        /// Its version.
        version: u64,
        /// Number of keys.
        keys: usize,
    },
    /// A certificate for this wallet.
    Certificate {
        /// Class.
        class: String,
        /// Expiry (unix seconds).
        expires_at: u64,
    },
    /// Issued notes.
    Notes {
        /// How many.
        count: usize,
        /// Their total in fen.
        total_fen: u64,
    },
    /// A newer revocation list.
    Revocations {
        /// Its version.
        version: u64,
        /// Revoked keys.
        entries: usize,
    },
    /// A receipt for a payment in the outbox.
    Receipt {
        /// Payment id (hex).
        payment_id: String,
        /// Amount in fen.
        amount_fen: u64,
    },
}

impl<S: Store> Wallet<S> {
    /// Imports a file meant for this wallet.
    pub fn import(&self, file: TbFile, now: u64) -> Result<Imported, WalletError> {
        match file {
            TbFile::KeySet(k) => self.import_keyset(k, now),
            TbFile::Certificate(c) => self.import_certificate(c, now),
            TbFile::Notes(n) => self.import_notes(n, now),
            TbFile::Revocations(r) => self.import_revocations(r, now),
            TbFile::Receipt(r) => self.import_receipt(r, now),
            other => Err(WalletError::Refused(format!(
                "a {} is not imported: {}",
                other.kind_name(),
                match other {
                    TbFile::Payment(_) => "use `wallet receive FILE`",
                    TbFile::Request(_) => "pay it with `wallet pay --request FILE`",
                    TbFile::Refund(_) => "use `wallet receive FILE`",
                    TbFile::TillJournal(_) =>
                        "the back office reconciles it with `wallet till reconcile --journal FILE`",
                    TbFile::CodOrder(_) => "a courier loads it with `wallet cod load FILE`",
                    TbFile::Handoff(_) => "the merchant accepts it with `wallet cod accept FILE`",
                    _ => "use `wallet inspect FILE` to look at it",
                }
            ))),
        }
    }

    fn import_keyset(&self, new: IssuerKeySet, now: u64) -> Result<Imported, WalletError> {
        let held = self.keyset()?;
        held.check_successor(&new)?;
        if new == held || new.set_version == held.set_version {
            return Err(WalletError::Replay(format!(
                "issuer key set version {} is already held",
                held.set_version
            )));
        }
        let mut b = Batch::new();
        b.put(keys::KEYSET, new.to_bytes());
        self.push_history(
            &mut b,
            now,
            HistoryEntry::note(
                "keys",
                format!("issuer key set version {}", new.set_version),
            ),
        )?;
        self.store().commit(b)?;
        Ok(Imported::KeySet {
            version: new.set_version,
            keys: new.keys.len(),
        })
    }

    fn import_certificate(&self, cert: Certificate, now: u64) -> Result<Imported, WalletError> {
        if cert.wallet != self.public() {
            return Err(WalletError::NotForThisWallet(format!(
                "certificate is for wallet {}, not this one ({})",
                cert.wallet.address(),
                self.public().address()
            )));
        }
        let keyset = self.keyset()?;
        let rl = self.revocations()?;
        cert.verify(&self.context(&keyset, rl.as_ref(), now))?;
        if cert.kind != self.kind() {
            return Err(WalletError::NotForThisWallet(format!(
                "certificate is for a {} wallet; this is a {} wallet",
                cert.kind,
                self.kind()
            )));
        }
        if let Some(held) = self.certificate()?
            && cert.serial <= held.serial
        {
            return Err(WalletError::Replay(format!(
                "certificate number {} is not newer than the one held ({})",
                cert.serial, held.serial
            )));
        }
        // Offline counts run from the certificate's counter base, which must be where this
        // wallet's counter stands (the issuer learns it at registration and at every sync).
        let counter = self.counter()?;
        if cert.counter_base != counter {
            return Err(WalletError::Refused(format!(
                "certificate counts payments from {}, but this wallet has made {counter}: ask the issuer for a current one",
                cert.counter_base
            )));
        }
        let mut b = Batch::new();
        b.put(keys::CERT, cert.to_bytes());
        // A new certificate starts a new offline period.
        b.put(keys::OFFLINE_SPENT, 0u64.to_be_bytes().to_vec());
        self.push_history(
            &mut b,
            now,
            HistoryEntry::note(
                "certified",
                format!(
                    "{} wallet, class {}, valid until {}",
                    cert.kind,
                    cert.class,
                    format_rfc3339(cert.expires_at)
                ),
            ),
        )?;
        self.store().commit(b)?;
        Ok(Imported::Certificate {
            class: cert.class.to_string(),
            expires_at: cert.expires_at,
        })
    }

    fn import_notes(&self, bundle: NoteBundle, now: u64) -> Result<Imported, WalletError> {
        let keyset = self.keyset()?;
        let cert = self.require_certificate()?;
        let ctx = self.context(&keyset, None, now);
        let mut total = Fen::ZERO;
        let mut seen = std::collections::HashSet::new();
        let mut b = Batch::new();
        for note in &bundle.notes {
            if note.holder != self.public() {
                return Err(WalletError::NotForThisWallet(format!(
                    "notes were issued to {}, not this wallet ({})",
                    note.holder.address(),
                    self.public().address()
                )));
            }
            note.verify(&ctx)?;
            let id = note.id();
            if !seen.insert(id) {
                return Err(WalletError::Refused(
                    "the same note appears twice in the file".into(),
                ));
            }
            if self.knows_coin(&id)? || self.store().get(&keys::with(keys::SEEN, &id.0))?.is_some()
            {
                return Err(WalletError::Replay(format!(
                    "note {} was already imported",
                    id.short()
                )));
            }
            total = total
                .checked_add(note.value)
                .ok_or_else(|| WalletError::Refused("total overflows".into()))?;
            b.put(
                keys::with(keys::COIN, &id.0),
                Coin::from_note(note.clone()).to_bytes(),
            );
        }
        let balance = Fen(self.balance(now)?.total_fen);
        let after = balance
            .checked_add(total)
            .ok_or_else(|| WalletError::Refused("total overflows".into()))?;
        if after > cert.limits.balance_max {
            return Err(WalletError::OverOwnLimit(format!(
                "balance would be {after}, above the class {} cap {}",
                cert.class, cert.limits.balance_max
            )));
        }
        self.push_history(
            &mut b,
            now,
            HistoryEntry {
                amount_fen: Some(total.0),
                ..HistoryEntry::note(
                    "issued",
                    format!("{} note(s) from the issuer", bundle.notes.len()),
                )
            },
        )?;
        self.store().commit(b)?;
        Ok(Imported::Notes {
            count: bundle.notes.len(),
            total_fen: total.0,
        })
    }

    fn import_revocations(&self, list: RevocationList, now: u64) -> Result<Imported, WalletError> {
        let keyset = self.keyset()?;
        list.verify(&keyset)?;
        if let Some(held) = self.revocations()?
            && list.list_version <= held.list_version
        {
            return Err(WalletError::Replay(format!(
                "revocation list version {} is not newer than the one held ({})",
                list.list_version, held.list_version
            )));
        }
        let mut b = Batch::new();
        b.put(keys::REVOCATIONS, list.to_bytes());
        self.push_history(
            &mut b,
            now,
            HistoryEntry::note(
                "revocations",
                format!("revocation list version {}", list.list_version),
            ),
        )?;
        self.store().commit(b)?;
        Ok(Imported::Revocations {
            version: list.list_version,
            entries: list.entries.len(),
        })
    }

    fn import_receipt(&self, receipt: Receipt, now: u64) -> Result<Imported, WalletError> {
        receipt.verify()?;
        if receipt.payer != self.public() {
            return Err(WalletError::NotForThisWallet(
                "receipt is for a payment by another wallet".into(),
            ));
        }
        let key = keys::with(keys::OUTBOX, &receipt.payment_id.0);
        let stored = self.store().get(&key)?.ok_or_else(|| {
            WalletError::NotFound(format!(
                "payment {} in the outbox",
                receipt.payment_id.short()
            ))
        })?;
        // Matched against the entry's own record of the payment: a settled payment's bytes are no
        // longer kept (its receipt may still arrive).
        let mut entry = OutboxEntry::from_stored(&stored)?;
        if entry.payee != receipt.payee.address()
            || entry.amount_fen != receipt.amount.0
            || entry.payment_id != receipt.payment_id.to_hex()
        {
            return Err(WalletError::Refused(
                "receipt does not match the payment it names".into(),
            ));
        }
        if entry.receipt_time.is_some() {
            return Err(WalletError::Replay(format!(
                "receipt for payment {} already imported",
                receipt.payment_id.short()
            )));
        }
        entry.receipt_time = Some(receipt.time);
        let mut b = Batch::new();
        b.put(key, entry.to_stored()?);
        self.push_history(
            &mut b,
            now,
            HistoryEntry {
                amount_fen: Some(receipt.amount.0),
                counterparty: Some(receipt.payee.address()),
                payment_id: Some(receipt.payment_id.to_hex()),
                ..HistoryEntry::note(
                    "receipt",
                    format!("payee acknowledged payment {}", receipt.payment_id.short()),
                )
            },
        )?;
        self.store().commit(b)?;
        Ok(Imported::Receipt {
            payment_id: receipt.payment_id.to_hex(),
            amount_fen: receipt.amount.0,
        })
    }
}
