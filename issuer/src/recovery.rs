//! Recovery of a lost or stolen wallet's value to a new wallet of the same owner. The rule and its
//! risk: docs/adr/0004-lost-device-recovery.md.
//!
//! Allowed only when the lost key is revoked as lost or stolen, and its last certificate (the
//! wallet record's `cert_expires_at`) expired at least a grace window ago: every offline payment
//! the device could make with a valid certificate has had that long to come home. Then, in one
//! atomic batch: every coin the ledger shows live for the lost key (`hl/<lost key>`) becomes
//! redeemed, the same total is issued to the new wallet as fresh notes (live at once, collected at
//! its next sync or imported from a file), and a recovery record keyed by the lost key makes it
//! happen at most once. issued and redeemed both grow by the total, so the audit identity holds.
//!
//! Red-envelope money of the lost key's (the earmark index) is recovered as restricted money with
//! the same expiry; what is already past its expiry is left for the clawback.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tongbao::codec::{Decode, Encode};
use tongbao::protocol::SignedBody;
use tongbao::protocol::certificate::WalletClass;
use tongbao::protocol::file::NoteBundle;
use tongbao::protocol::note::{Earmark, Note};
use tongbao::protocol::revocation::RevocationReason;
use tongbao::settlement::CoinState;
use tongbao::store::{Batch, Store};
use tongbao::time::format_rfc3339;
use tongbao::{Fen, Id, Nonce, PublicKey};

use crate::ledger::{Issuer, IssuerError, holder_key, keys, redeem_live};
use crate::settle::earmark_key;

/// Default grace window after the lost key's certificate expires: 30 days.
pub const DEFAULT_RECOVERY_GRACE_SECS: u64 = 30 * 86_400;

/// Recoveries by lost key: the [`RecoveryRecord`] (JSON).
pub(crate) const RECOVERY: &[u8] = b"rc/";
/// Value recovered in all (u64 fen; part of both the issued and the redeemed totals).
pub(crate) const RECOVERED_TOTAL: &[u8] = b"m/recovered-total";

/// What a recovery did, kept under the lost key so that it happens once.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecoveryRecord {
    /// The lost key's address.
    pub lost: String,
    /// The new wallet's address.
    pub to: String,
    /// Why the lost key was revoked: lost or stolen.
    pub reason: String,
    /// When it was revoked.
    pub revoked_at: u64,
    /// When its last certificate expired.
    pub cert_expires_at: u64,
    /// The grace window applied after that, in seconds.
    pub grace_secs: u64,
    /// When recovered.
    pub at: u64,
    /// Live coins of the lost key taken out of circulation.
    pub coins: u64,
    /// Their value, credited to the new wallet, in fen.
    pub value_fen: u64,
    /// The part of it that stays red-envelope money (merchants only, same expiry), in fen.
    pub restricted_fen: u64,
    /// Red-envelope money past its expiry, left live for the clawback, in fen.
    pub left_for_clawback_fen: u64,
    /// Losses recorded against the lost key (double spends signed with it, by whoever held the
    /// device), in fen: claims against the signer, not deducted here.
    #[serde(default)]
    pub losses_fen: u64,
    /// The notes issued to the new wallet (ids, hex).
    pub notes: Vec<String>,
    /// The operator's words.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub note: String,
}

/// A recovery: the record and the notes issued to the new wallet (none if nothing was left).
#[derive(Debug, Clone)]
pub struct Recovery {
    /// What was done.
    pub record: RecoveryRecord,
    /// The new wallet's notes, to import (or to be collected at its next sync).
    pub notes: Option<NoteBundle>,
}

impl<S: Store> Issuer<S> {
    /// Recovers what the ledger shows `lost` still holding to the registered wallet `to`, once
    /// `lost` is revoked as lost or stolen and its certificate expired `grace_secs` ago. Refused
    /// (nothing changes) otherwise, or if `lost` was already recovered.
    pub fn recover(
        &self,
        lost: &PublicKey,
        to: &PublicKey,
        grace_secs: u64,
        note: &str,
        now: u64,
    ) -> Result<Recovery, IssuerError> {
        if lost == to {
            return Err(IssuerError::Refused(
                "the lost key and the new wallet are the same key".into(),
            ));
        }
        let _guard = self.lock();
        if let Some(done) = self.recovery(lost)? {
            return Err(IssuerError::Conflict(format!(
                "{} was already recovered to {} at {} ({}): a key is recovered once",
                done.lost,
                done.to,
                format_rfc3339(done.at),
                Fen(done.value_fen)
            )));
        }
        let rec = self.wallet(lost)?.ok_or_else(|| {
            IssuerError::UnknownWallet(format!(
                "{} is not a wallet registered with this issuer",
                lost.address()
            ))
        })?;
        let rl = self.revocations()?;
        let revocation = rl
            .entries
            .iter()
            .find(|e| e.wallet == *lost)
            .ok_or_else(|| {
                IssuerError::Refused(format!(
                    "{} is not revoked: revoke it first (issuer revoke ADDRESS --reason lost|stolen)",
                    lost.address()
                ))
            })?;
        if !matches!(
            revocation.reason,
            RevocationReason::Lost | RevocationReason::Stolen
        ) {
            return Err(IssuerError::Refused(format!(
                "{} is revoked for {}, not as lost or stolen: its value is not recovered",
                lost.address(),
                revocation.reason.as_str()
            )));
        }
        let opens = rec
            .cert_expires_at
            .checked_add(grace_secs)
            .ok_or_else(|| IssuerError::Refused("grace window too long".into()))?;
        if now < opens {
            return Err(IssuerError::Refused(format!(
                "too early to recover {}: its certificate is valid until {} and recovery opens {} after that, at {}",
                lost.address(),
                format_rfc3339(rec.cert_expires_at),
                span(grace_secs),
                format_rfc3339(opens)
            )));
        }
        let target = self.wallet(to)?.ok_or_else(|| {
            IssuerError::UnknownWallet(format!(
                "the new wallet {} is not registered with this issuer: register and certify it first",
                to.address()
            ))
        })?;
        if rl.is_revoked(to) {
            return Err(IssuerError::Revoked(to.address()));
        }

        // What the lost key still holds at the ledger.
        let mut b = Batch::new();
        let mut coins = 0u64;
        let mut plain = Fen::ZERO;
        let mut restricted: BTreeMap<u64, Fen> = BTreeMap::new();
        let mut left = Fen::ZERO;
        let overflow = || IssuerError::Refused("value overflows".into());
        for id in self.live_ids_of(lost)? {
            let state = self
                .store
                .get(&keys::with(keys::COIN, &id.0))?
                .map(|v| CoinState::decode(&v))
                .transpose()
                .map_err(|e| IssuerError::Corrupt(format!("coin state: {e}")))?;
            let Some(CoinState::Live { value, holder }) = state else {
                return Err(IssuerError::Corrupt(format!(
                    "holder index lists coin {} of {} that is not live",
                    id.short(),
                    lost.short()
                )));
            };
            if holder != *lost {
                return Err(IssuerError::Corrupt(format!(
                    "holder index lists coin {} under the wrong holder",
                    id.short()
                )));
            }
            if let Some(expires_at) = self.restricted_until(&id)? {
                if now > expires_at {
                    left = left.checked_add(value).ok_or_else(overflow)?;
                    continue;
                }
                let e = restricted.entry(expires_at).or_insert(Fen::ZERO);
                *e = e.checked_add(value).ok_or_else(overflow)?;
                b.delete(earmark_key(&id));
            } else {
                plain = plain.checked_add(value).ok_or_else(overflow)?;
            }
            redeem_live(&mut b, &id, value, holder);
            coins += 1;
        }
        let restricted_total = restricted
            .values()
            .try_fold(Fen::ZERO, |a, v| a.checked_add(*v))
            .ok_or_else(overflow)?;
        let total = plain.checked_add(restricted_total).ok_or_else(overflow)?;
        let class: WalletClass = target.class.parse().map_err(IssuerError::Corrupt)?;
        let cap = class.default_limits().balance_max;
        if total > cap {
            return Err(IssuerError::Refused(format!(
                "{total} to recover is above the new wallet's class {class} balance cap {cap}: certify it with a higher class first"
            )));
        }

        // The same total, issued to the new wallet.
        let mut wanted = vec![(recovery_serial(lost, 0), plain, Earmark::None)];
        for (&expires_at, &value) in &restricted {
            wanted.push((
                recovery_serial(lost, expires_at),
                value,
                Earmark::MerchantsOnly { expires_at },
            ));
        }
        let mut notes = Vec::new();
        for (serial, value, earmark) in wanted {
            if value == Fen::ZERO {
                continue;
            }
            let (key_id, key) = self.signing_key(now)?;
            let n = Note::sign(&key, key_id, serial, value, *to, now, earmark);
            let id = n.id();
            if self.store.get(&keys::with(keys::COIN, &id.0))?.is_some() {
                return Err(IssuerError::Conflict("recovery note already exists".into()));
            }
            b.put(keys::with(keys::NOTE, &id.0), n.to_bytes());
            b.put(
                keys::with(keys::COIN, &id.0),
                CoinState::Live { value, holder: *to }.to_bytes(),
            );
            b.put(holder_key(to, &id), Vec::new());
            if let Earmark::MerchantsOnly { expires_at } = earmark {
                b.put(earmark_key(&id), expires_at.to_be_bytes().to_vec());
            }
            notes.push(n);
        }
        // Totals: the lost coins are redeemed and the same value is issued.
        for (key, add) in [
            (keys::ISSUED_TOTAL, total.0),
            (keys::REDEEMED_TOTAL, total.0),
            (RECOVERED_TOTAL, total.0),
            (keys::NOTE_COUNT, notes.len() as u64),
        ] {
            if add > 0 {
                let v = self.load_u64(key)?.checked_add(add).ok_or_else(overflow)?;
                b.put(key, v.to_be_bytes().to_vec());
            }
        }
        let record = RecoveryRecord {
            lost: lost.address(),
            to: to.address(),
            reason: revocation.reason.as_str().into(),
            revoked_at: revocation.revoked_at,
            cert_expires_at: rec.cert_expires_at,
            grace_secs,
            at: now,
            coins,
            value_fen: total.0,
            restricted_fen: restricted_total.0,
            left_for_clawback_fen: left.0,
            losses_fen: self.load_u64(&keys::with(keys::LOSS, lost.as_bytes()))?,
            notes: notes.iter().map(|n| n.id().to_hex()).collect(),
            note: note.to_string(),
        };
        b.put(
            keys::with(RECOVERY, lost.as_bytes()),
            serde_json::to_vec(&record).map_err(|e| IssuerError::Corrupt(e.to_string()))?,
        );
        self.store.commit(b)?;
        Ok(Recovery {
            record,
            notes: (!notes.is_empty()).then_some(NoteBundle { notes }),
        })
    }

    /// The recovery of `lost`, if it was recovered.
    pub fn recovery(&self, lost: &PublicKey) -> Result<Option<RecoveryRecord>, IssuerError> {
        match self.store.get(&keys::with(RECOVERY, lost.as_bytes()))? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| IssuerError::Corrupt(format!("recovery record: {e}"))),
        }
    }

    /// Every value recovered so far.
    pub fn recovered_total(&self) -> Result<Fen, IssuerError> {
        self.load_u64(RECOVERED_TOTAL).map(Fen)
    }

    /// Coin ids the holder index lists for `holder`.
    fn live_ids_of(&self, holder: &PublicKey) -> Result<Vec<Id>, IssuerError> {
        let mut prefix = keys::HOLDER.to_vec();
        prefix.extend_from_slice(holder.as_bytes());
        let mut ids = Vec::new();
        for (k, _) in self.store.scan_prefix(&prefix)? {
            let arr: [u8; 32] = k
                .get(prefix.len()..)
                .and_then(|r| r.try_into().ok())
                .ok_or_else(|| IssuerError::Corrupt("holder index key".into()))?;
            ids.push(Id(arr));
        }
        Ok(ids)
    }
}

/// The serial of a recovery note: derived from the lost key (and the expiry of restricted value),
/// so the notes of one recovery are fixed and a second could not mint different ones.
fn recovery_serial(lost: &PublicKey, expires_at: u64) -> Nonce {
    let mut h = blake3::Hasher::new();
    h.update(b"tongbao/v1/recovery-serial");
    h.update(lost.as_bytes());
    h.update(&expires_at.to_be_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    Nonce(out)
}

/// A grace window for people: whole days, hours or minutes when it is one, else seconds.
fn span(secs: u64) -> String {
    match secs {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{} day(s)", s / 86_400),
        s if s >= 3_600 && s % 3_600 == 0 => format!("{} hour(s)", s / 3_600),
        s if s >= 60 && s % 60 == 0 => format!("{} minute(s)", s / 60),
        s => format!("{s} second(s)"),
    }
}
