//! The issuer's state in one sled database: root and note keys, the key set, the revocation list,
//! registered wallets and every note issued. See docs/architecture.md#issuer.
//!
//! Invariant: every change is one atomic, durable batch, committed before anything is reported or
//! written out.

use std::collections::HashSet;
use std::path::Path;

use rand::{CryptoRng, Rng};
use serde::{Deserialize, Serialize};
use tongbao::codec::{Decode, Encode};
use tongbao::protocol::SignedBody;
use tongbao::protocol::certificate::{Certificate, Registration, WalletClass, WalletKind};
use tongbao::protocol::coin::{SigCheck, verify_each};
use tongbao::protocol::file::NoteBundle;
use tongbao::protocol::keyset::{IssuerKeyEntry, IssuerKeySet, Policy};
use tongbao::protocol::note::{Earmark, Note};
use tongbao::protocol::revocation::RevocationList;
use tongbao::protocol::till::TillAuthorization;
use tongbao::store::{Batch, SledStore, Store, StoreError};
use tongbao::time::{FOREVER, format_rfc3339};
use tongbao::{Fen, Nonce, PublicKey, SecretKey, Signature};

/// Why an issuer operation was refused. Nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Input failed verification.
    #[error(transparent)]
    Verify(#[from] tongbao::protocol::VerifyError),
    /// No issuer in this home.
    #[error("no issuer at {0}: run `issuer init` first")]
    NotInitialized(String),
    /// Already initialised.
    #[error("an issuer already exists at {0}")]
    AlreadyInitialized(String),
    /// Stored state is damaged.
    #[error("issuer ledger is damaged: {0}")]
    Corrupt(String),
    /// The request conflicts with what the ledger already holds (a sync id reused for another
    /// request, a key already revoked).
    #[error("{0}")]
    Conflict(String),
    /// The wallet is not registered with this issuer.
    #[error("{0}")]
    UnknownWallet(String),
    /// A whole settlement group failed in storage; nothing of it was committed.
    #[error("settlement failed: {0}")]
    GroupFailed(String),
    /// The wallet's key is revoked.
    #[error("wallet {0} is revoked by the issuer")]
    Revoked(String),
    /// A request the issuer refuses.
    #[error("{0}")]
    Refused(String),
}

pub(crate) mod keys {
    pub const ROOT: &[u8] = b"k/root";
    pub const NOTE_KEY: &[u8] = b"k/note/";
    pub const KEYSET: &[u8] = b"m/keyset";
    pub const REVOCATIONS: &[u8] = b"m/revocations";
    pub const ISSUED_TOTAL: &[u8] = b"m/issued-total";
    pub const NOTE_COUNT: &[u8] = b"m/note-count";
    /// Wallets certified (u64): one more in the batch that writes a new wallet's record. A
    /// ledger made before it has none; it is counted from `w/` then, and written with the next
    /// certification.
    pub const WALLET_COUNT: &[u8] = b"m/wallet-count";
    /// Registered wallets by public key.
    pub const WALLET: &[u8] = b"w/";
    /// Issued notes by note id (the coin id of a note).
    pub const NOTE: &[u8] = b"n/";
    /// Every coin the ledger knows, by coin id: live, spent (by which transfer) or redeemed.
    pub const COIN: &[u8] = b"x/";
    /// Live coins by holder: `hl/<holder key><coin id>`, empty values.
    pub const HOLDER: &[u8] = b"hl/";
    /// Double-spend proofs by proof id.
    pub const PROOF: &[u8] = b"p/";
    /// Why each key was revoked (JSON), by key.
    pub const REVOKED: &[u8] = b"rv/";
    /// Losses recorded against each cheater (u64 fen), by key.
    pub const LOSS: &[u8] = b"l/";
    /// Coins honest holders lost to a double spend, whose loss is counted (u64 fen), by coin id:
    /// a loss is counted once, however often the coin is presented.
    pub const LOST_COIN: &[u8] = b"lc/";
    /// Sync responses by sync id, for idempotent replays.
    pub const SYNC: &[u8] = b"i/";
    /// Online payment confirmations by payment id.
    pub const ONLINE: &[u8] = b"op/";
    pub const REDEEMED_TOTAL: &[u8] = b"m/redeemed-total";
    pub const BANK_IN: &[u8] = b"m/bank-in";
    pub const BANK_OUT: &[u8] = b"m/bank-out";
    pub const LOSSES_TOTAL: &[u8] = b"m/losses-total";
    pub const SETTLED_TRANSFERS: &[u8] = b"m/settled-transfers";
    pub const DOUBLE_SPENDS: &[u8] = b"m/double-spends";
    /// Red-envelope money held by its winner, by coin id: the earmark's expiry (u64). An entry
    /// goes when its coin is spent, refreshed or collected at a settlement; one whose coin is no
    /// longer live all the same (a ledger written before that rule) is ignored and removed by
    /// the clawback.
    pub const EARMARKED: &[u8] = b"er/";
    /// Restricted value clawed back at the end of its window (u64 fen; part of the redeemed total).
    pub const CLAWBACK_TOTAL: &[u8] = b"m/clawback-total";

    pub fn with(prefix: &[u8], id: &[u8]) -> Vec<u8> {
        let mut k = prefix.to_vec();
        k.extend_from_slice(id);
        k
    }
}

/// What the issuer knows of a certified wallet.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WalletRecord {
    /// Address.
    pub address: String,
    /// Kind.
    pub kind: WalletKind,
    /// Class (I to IV).
    pub class: String,
    /// The till's merchant.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub merchant: Option<String>,
    /// Current certificate number.
    pub cert_serial: u64,
    /// Counter base of the current certificate.
    pub counter_base: u64,
    /// Certificate expiry.
    pub cert_expires_at: u64,
    /// When first registered.
    pub registered_at: u64,
}

/// Ledger totals.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LedgerStats {
    /// Issuer root address.
    pub issuer: String,
    /// Key set version.
    pub key_set_version: u64,
    /// Total issued, in fen.
    pub issued_fen: u64,
    /// Notes issued.
    pub notes: u64,
    /// Wallets certified.
    pub wallets: u64,
    /// Revoked keys.
    pub revoked: u64,
    /// Total redeemed (refreshed, collected, paid to banks), in fen.
    pub redeemed_fen: u64,
    /// Outstanding: issued less redeemed, in fen (the audit recomputes it from the coins).
    pub outstanding_fen: u64,
    /// Transfers settled.
    pub settled_transfers: u64,
    /// Double spends proven.
    pub double_spends: u64,
    /// Losses recorded against cheaters, in fen.
    pub losses_fen: u64,
    /// Topped up from bank accounts, in fen.
    pub bank_in_fen: u64,
    /// Redeemed to bank accounts, in fen.
    pub bank_out_fen: u64,
}

/// An issuer over a store.
pub struct Issuer<S: Store = SledStore> {
    pub(crate) store: S,
    pub(crate) root: SecretKey,
    /// Serialises every read-modify-write of the ledger (settlement, issuance, certification).
    pub(crate) write_lock: std::sync::Mutex<()>,
    /// Decoded copies of the key set, the revocation list and the signing key (see [`Hot`]).
    hot: std::sync::Mutex<Hot>,
}

/// Decoded copies of the ledger's hot singletons, each kept with the stored bytes it was decoded
/// from. Every read still fetches the bytes (a cheap sled read) and decodes again only when they
/// changed, so whatever writes them (rotation, revocation, another process before a reopen) is
/// seen at once; what the cache saves is decoding and checking the key set and the list (point
/// decompression and a root signature each) and deriving the signing key, several times per sync.
#[derive(Default)]
pub(crate) struct Hot {
    keyset: Option<(Vec<u8>, IssuerKeySet)>,
    revocations: Option<(Vec<u8>, RevocationList)>,
    /// The key id, a hash of the seed (no second copy of the secret), the derived key.
    signing: Option<(u32, tongbao::Id, std::sync::Arc<SecretKey>)>,
}

/// Default certificate lifetime: 90 days.
pub const DEFAULT_CERT_SECS: u64 = 90 * 86_400;

impl Issuer<SledStore> {
    /// Creates a new issuer in `home`.
    pub fn init_dir<R: Rng + CryptoRng + ?Sized>(
        home: &Path,
        now: u64,
        rng: &mut R,
    ) -> Result<Self, IssuerError> {
        std::fs::create_dir_all(home)
            .map_err(|e| IssuerError::Refused(format!("{}: {e}", home.display())))?;
        let store = SledStore::open(home)?;
        Issuer::init(store, now, rng).map_err(|e| match e {
            IssuerError::AlreadyInitialized(_) => {
                IssuerError::AlreadyInitialized(home.display().to_string())
            }
            other => other,
        })
    }

    /// Opens the issuer in `home`.
    pub fn open_dir(home: &Path) -> Result<Self, IssuerError> {
        if !home.join("db").exists() {
            return Err(IssuerError::NotInitialized(home.display().to_string()));
        }
        Issuer::open(SledStore::open(home)?).map_err(|e| match e {
            IssuerError::NotInitialized(_) => {
                IssuerError::NotInitialized(home.display().to_string())
            }
            other => other,
        })
    }
}

impl<S: Store> Issuer<S> {
    /// Creates a new issuer in an empty store: a root key, note key 1, key set version 1 and an
    /// empty revocation list.
    pub fn init<R: Rng + CryptoRng + ?Sized>(
        store: S,
        now: u64,
        rng: &mut R,
    ) -> Result<Self, IssuerError> {
        if store.get(keys::ROOT)?.is_some() {
            return Err(IssuerError::AlreadyInitialized(String::new()));
        }
        let root = SecretKey::generate(rng);
        let note_key = SecretKey::generate(rng);
        let entry = IssuerKeyEntry {
            key_id: 1,
            key: note_key.public(),
            not_before: now,
            issue_until: FOREVER,
            redeem_until: FOREVER,
        };
        let keyset = IssuerKeySet::sign(&root, 1, now, Policy::default(), vec![entry]);
        let rl = RevocationList::sign(&root, 1, now, Vec::new());
        let mut b = Batch::new();
        b.put(keys::ROOT, root.seed().to_vec());
        b.put(
            keys::with(keys::NOTE_KEY, &1u32.to_be_bytes()),
            note_key.seed().to_vec(),
        );
        b.put(keys::KEYSET, keyset.to_bytes());
        b.put(keys::REVOCATIONS, rl.to_bytes());
        b.put(keys::ISSUED_TOTAL, 0u64.to_be_bytes().to_vec());
        b.put(keys::NOTE_COUNT, 0u64.to_be_bytes().to_vec());
        b.put(keys::WALLET_COUNT, 0u64.to_be_bytes().to_vec());
        store.commit(b)?;
        Ok(Issuer {
            store,
            root,
            write_lock: std::sync::Mutex::new(()),
            hot: std::sync::Mutex::new(Hot::default()),
        })
    }

    /// Opens an existing issuer.
    pub fn open(store: S) -> Result<Self, IssuerError> {
        let seed = store
            .get(keys::ROOT)?
            .ok_or_else(|| IssuerError::NotInitialized(String::new()))?;
        let root = seed_key(&seed)?;
        Ok(Issuer {
            store,
            root,
            write_lock: std::sync::Mutex::new(()),
            hot: std::sync::Mutex::new(Hot::default()),
        })
    }

    /// The issuer's root public key (its identity).
    pub fn root(&self) -> PublicKey {
        self.root.public()
    }

    /// The current key set.
    pub fn keyset(&self) -> Result<IssuerKeySet, IssuerError> {
        let v = self
            .store
            .get(keys::KEYSET)?
            .ok_or_else(|| IssuerError::Corrupt("key set".into()))?;
        if let Some((bytes, ks)) = &self.hot().keyset
            && *bytes == v
        {
            return Ok(ks.clone());
        }
        let ks =
            IssuerKeySet::decode(&v).map_err(|e| IssuerError::Corrupt(format!("key set: {e}")))?;
        self.hot().keyset = Some((v, ks.clone()));
        Ok(ks)
    }

    /// The current revocation list.
    pub fn revocations(&self) -> Result<RevocationList, IssuerError> {
        let v = self
            .store
            .get(keys::REVOCATIONS)?
            .ok_or_else(|| IssuerError::Corrupt("revocation list".into()))?;
        if let Some((bytes, rl)) = &self.hot().revocations
            && *bytes == v
        {
            return Ok(rl.clone());
        }
        let rl = RevocationList::decode(&v)
            .map_err(|e| IssuerError::Corrupt(format!("revocation list: {e}")))?;
        self.hot().revocations = Some((v, rl.clone()));
        Ok(rl)
    }

    fn hot(&self) -> std::sync::MutexGuard<'_, Hot> {
        self.hot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The note key that signs at `now`, with its id.
    pub(crate) fn signing_key(
        &self,
        now: u64,
    ) -> Result<(u32, std::sync::Arc<SecretKey>), IssuerError> {
        let keyset = self.keyset()?;
        let entry = keyset.current_key(now).ok_or_else(|| {
            IssuerError::Refused(format!(
                "no issuer key is valid for signing at {}",
                format_rfc3339(now)
            ))
        })?;
        let seed = self
            .store
            .get(&keys::with(keys::NOTE_KEY, &entry.key_id.to_be_bytes()))?
            .ok_or_else(|| IssuerError::Corrupt(format!("note key {} missing", entry.key_id)))?;
        let seed_hash = tongbao::Id::hash(&seed);
        if let Some((id, hash, key)) = &self.hot().signing
            && *id == entry.key_id
            && *hash == seed_hash
        {
            return Ok((*id, key.clone()));
        }
        let key = std::sync::Arc::new(seed_key(&seed)?);
        self.hot().signing = Some((entry.key_id, seed_hash, key.clone()));
        Ok((entry.key_id, key))
    }

    /// A registered wallet.
    pub fn wallet(&self, key: &PublicKey) -> Result<Option<WalletRecord>, IssuerError> {
        match self.store.get(&keys::with(keys::WALLET, key.as_bytes()))? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| IssuerError::Corrupt(format!("wallet: {e}"))),
        }
    }

    /// Certifies a registered wallet key for `class`, valid for `valid_secs`. A till needs its
    /// merchant's authorization: use [`Issuer::certify_with`].
    pub fn certify(
        &self,
        reg: &Registration,
        class: WalletClass,
        valid_secs: u64,
        now: u64,
    ) -> Result<Certificate, IssuerError> {
        self.certify_with(reg, None, class, valid_secs, now)
    }

    /// Certifies a registered wallet key; a till only with the authorization signed by the
    /// certified merchant its registration names.
    pub fn certify_with(
        &self,
        reg: &Registration,
        authorization: Option<&TillAuthorization>,
        class: WalletClass,
        valid_secs: u64,
        now: u64,
    ) -> Result<Certificate, IssuerError> {
        reg.verify()?;
        match (reg.merchant.is_some(), authorization) {
            (true, None) => {
                return Err(IssuerError::Refused(
                    "a till is certified only with its merchant's authorization (the merchant runs `wallet till authorize REG --out AUTH`; then `issuer certify REG --authorization AUTH`)".into(),
                ));
            }
            (true, Some(a)) => a.verify_for(reg)?,
            (false, Some(_)) => {
                return Err(IssuerError::Refused(
                    "an authorization is for a till's registration, not this one".into(),
                ));
            }
            (false, None) => {}
        }
        // Certification reads and writes the wallet record that settlement also writes.
        let _guard = self.lock();
        not_future(reg, now)?;
        let (key_id, key) = self.signing_key(now)?;
        let mut b = Batch::new();
        let (cert, new) = self.certify_record(
            reg,
            class,
            valid_secs,
            now,
            key_id,
            &self.revocations()?,
            &mut b,
        )?;
        if new {
            let count = self.wallet_count()? + 1;
            b.put(keys::WALLET_COUNT, count.to_be_bytes().to_vec());
        }
        self.store.commit(b)?;
        Ok(cert.signed(&key))
    }

    /// Certifies several registrations (personal and merchant wallets; a till needs
    /// [`Issuer::certify_with`]) as [`Issuer::certify`] does one: the registrations and the
    /// certificates are checked and signed on every core, and every wallet record is written in
    /// one atomic, durable batch (the pilot certifies a day's new wallets this way). A refused
    /// registration changes nothing.
    pub fn certify_batch(
        &self,
        regs: &[(Registration, WalletClass)],
        valid_secs: u64,
        now: u64,
    ) -> Vec<Result<Certificate, IssuerError>>
    where
        S: Sync,
    {
        use rayon::prelude::*;
        let fail_all = |e: IssuerError| group_failed(regs.len(), &e);
        // The registrations' signatures as batches on every core (a bad one is named by its own
        // check below).
        let checks: Vec<SigCheck> = regs
            .iter()
            .map(|(reg, _)| SigCheck {
                key: reg.wallet,
                msg: reg.signing_bytes(),
                sig: reg.signature,
                what: "registration",
                issuer: false,
            })
            .collect();
        let passed = verify_each(&checks);
        let checked: Vec<Result<(), IssuerError>> = regs
            .par_iter()
            .zip(passed)
            .map(|((reg, _), ok)| {
                if !ok {
                    reg.verify()?;
                }
                if reg.merchant.is_some() {
                    return Err(IssuerError::Refused(
                        "a till is certified only with its merchant's authorization".into(),
                    ));
                }
                Ok(())
            })
            .collect();
        let _guard = self.lock();
        let prepared = self
            .signing_key(now)
            .and_then(|k| Ok((k, self.revocations()?)));
        let prepared = prepared.and_then(|p| Ok((p, self.wallet_count()?)));
        let (((key_id, key), rl), count) = match prepared {
            Ok(p) => p,
            Err(e) => return fail_all(e),
        };
        let mut b = Batch::new();
        let mut seen = HashSet::new();
        let mut new = 0u64;
        let unsigned: Vec<Result<Certificate, IssuerError>> = regs
            .iter()
            .zip(checked)
            .map(|((reg, class), ok)| {
                ok?;
                if !seen.insert(reg.wallet) {
                    return Err(IssuerError::Conflict(format!(
                        "{} twice in one batch",
                        reg.wallet.address()
                    )));
                }
                let (cert, fresh) =
                    self.certify_record(reg, *class, valid_secs, now, key_id, &rl, &mut b)?;
                new += u64::from(fresh);
                Ok(cert)
            })
            .collect();
        if new > 0 {
            b.put(keys::WALLET_COUNT, (count + new).to_be_bytes().to_vec());
        }
        let certs = unsigned
            .into_par_iter()
            .map(|c| c.map(|c| c.signed(&key)))
            .collect();
        if let Err(e) = self.store.commit(b) {
            return fail_all(e.into());
        }
        certs
    }

    /// The checks and the wallet record of a certification, with the ledger lock held: queues the
    /// record in `b` and returns the certificate, not yet signed by note key `key_id`, and whether
    /// the wallet is new (the caller counts it, [`keys::WALLET_COUNT`]).
    #[allow(clippy::too_many_arguments)]
    fn certify_record(
        &self,
        reg: &Registration,
        class: WalletClass,
        valid_secs: u64,
        now: u64,
        key_id: u32,
        rl: &RevocationList,
        b: &mut Batch,
    ) -> Result<(Certificate, bool), IssuerError> {
        not_future(reg, now)?;
        if rl.is_revoked(&reg.wallet) {
            return Err(IssuerError::Revoked(reg.wallet.address()));
        }
        if let Some(m) = &reg.merchant {
            match self.wallet(m)? {
                Some(rec) if rec.kind == WalletKind::Merchant => {}
                _ => {
                    return Err(IssuerError::Refused(format!(
                        "the till's merchant {} is not a certified merchant wallet",
                        m.address()
                    )));
                }
            }
        }
        let existing = self.wallet(&reg.wallet)?;
        let fresh = existing.is_none();
        if let Some(rec) = &existing
            && rec.kind != reg.kind
        {
            return Err(IssuerError::Refused(format!(
                "wallet is registered as {}, not {}",
                rec.kind, reg.kind
            )));
        }
        let serial = existing.as_ref().map(|r| r.cert_serial + 1).unwrap_or(1);
        let counter_base = existing.as_ref().map(|r| r.counter_base).unwrap_or(0);
        let expires_at = now
            .checked_add(valid_secs)
            .ok_or_else(|| IssuerError::Refused("validity too long".into()))?;
        let cert =
            registration_certificate(reg, class, key_id, serial, counter_base, now, expires_at);
        let rec = WalletRecord {
            address: reg.wallet.address(),
            kind: reg.kind,
            class: class.to_string(),
            merchant: reg.merchant.map(|m| m.address()),
            cert_serial: serial,
            counter_base,
            cert_expires_at: expires_at,
            registered_at: existing.map(|r| r.registered_at).unwrap_or(now),
        };
        b.put(keys::with(keys::WALLET, reg.wallet.as_bytes()), json(&rec)?);
        Ok((cert, fresh))
    }

    /// Issues `amount` as one note to a certified wallet and records it.
    pub fn issue<R: Rng + CryptoRng + ?Sized>(
        &self,
        to: &PublicKey,
        amount: Fen,
        earmark: Earmark,
        now: u64,
        rng: &mut R,
    ) -> Result<NoteBundle, IssuerError> {
        self.check_issue(to, amount, earmark, now, &self.revocations()?)?;
        let (key_id, key) = self.signing_key(now)?;
        let note = Note::sign(&key, key_id, Nonce::random(rng), amount, *to, now, earmark);
        let _guard = self.lock();
        let mut b = Batch::new();
        self.record_note(&mut b, &note, 0, 0)?;
        self.store.commit(b)?;
        Ok(NoteBundle { notes: vec![note] })
    }

    /// Issues one note to each of several certified wallets, each with the serial given, checked
    /// as [`Issuer::issue`] checks one: signed on every core, then recorded in one atomic, durable
    /// batch (the pilot issues a day's red envelopes this way). A refused item changes nothing.
    pub fn issue_batch(
        &self,
        items: &[(PublicKey, Fen, Earmark, Nonce)],
        now: u64,
    ) -> Vec<Result<NoteBundle, IssuerError>>
    where
        S: Sync,
    {
        use rayon::prelude::*;
        let prepared = self
            .signing_key(now)
            .and_then(|k| Ok((k, self.revocations()?)));
        let ((key_id, key), rl) = match prepared {
            Ok(p) => p,
            Err(e) => return group_failed(items.len(), &e),
        };
        let mut notes: Vec<Result<Note, IssuerError>> = items
            .par_iter()
            .map(|(to, amount, earmark, serial)| {
                self.check_issue(to, *amount, *earmark, now, &rl)?;
                Ok(Note::sign(
                    &key, key_id, *serial, *amount, *to, now, *earmark,
                ))
            })
            .collect();
        let _guard = self.lock();
        let mut b = Batch::new();
        let (mut value, mut count) = (0u64, 0u64);
        let mut ids = HashSet::new();
        for n in &mut notes {
            let recorded = match n {
                Ok(note) => {
                    let id = note.id();
                    match self.store.get(&keys::with(keys::COIN, &id.0)) {
                        Ok(None) if ids.insert(id) => self
                            .record_note(&mut b, note, value, count)
                            .map(|()| note.value.0),
                        Ok(_) => Err(IssuerError::Conflict(format!(
                            "note {} exists already",
                            id.short()
                        ))),
                        Err(e) => Err(e.into()),
                    }
                }
                Err(_) => continue,
            };
            match recorded {
                Ok(v) => {
                    value += v;
                    count += 1;
                }
                Err(e) => *n = Err(e),
            }
        }
        if let Err(e) = self.store.commit(b) {
            return group_failed(items.len(), &e.into());
        }
        notes
            .into_iter()
            .map(|n| n.map(|note| NoteBundle { notes: vec![note] }))
            .collect()
    }

    /// What [`Issuer::issue`] checks before it signs: a positive amount, a certified wallet that
    /// is not revoked, within its class cap; restricted money expiring in the future.
    fn check_issue(
        &self,
        to: &PublicKey,
        amount: Fen,
        earmark: Earmark,
        now: u64,
        rl: &RevocationList,
    ) -> Result<(), IssuerError> {
        if amount == Fen::ZERO {
            return Err(IssuerError::Refused("amount must be above zero".into()));
        }
        let rec = self.wallet(to)?.ok_or_else(|| {
            IssuerError::UnknownWallet(format!(
                "no certified wallet {}: certify it first",
                to.address()
            ))
        })?;
        if rl.is_revoked(to) {
            return Err(IssuerError::Revoked(to.address()));
        }
        let class: WalletClass = rec.class.parse().map_err(IssuerError::Corrupt)?;
        let cap = class.default_limits().balance_max;
        if amount > cap {
            return Err(IssuerError::Refused(format!(
                "{amount} is above the class {class} balance cap {cap}"
            )));
        }
        if let Earmark::MerchantsOnly { expires_at } = earmark
            && expires_at <= now
        {
            return Err(IssuerError::Refused(
                "restricted money must expire in the future".into(),
            ));
        }
        Ok(())
    }

    /// Issued notes whose id starts with `prefix` (hex), to write a notes file again.
    pub fn find_notes(&self, prefix: &str) -> Result<Vec<Note>, IssuerError> {
        let prefix = prefix.trim().to_lowercase();
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(IssuerError::Refused(format!(
                "{prefix:?} is not a note id (hex)"
            )));
        }
        let mut out = Vec::new();
        for (k, v) in self.store.scan_prefix(keys::NOTE)? {
            if hex::encode(&k[keys::NOTE.len()..]).starts_with(&prefix) {
                out.push(Note::decode(&v).map_err(|e| IssuerError::Corrupt(format!("note: {e}")))?);
            }
        }
        Ok(out)
    }

    /// Value lost to double spends so far (the `losses_fen` of [`Issuer::stats`], without its
    /// count of every registered wallet, a scan of the whole wallet table).
    pub fn losses_total(&self) -> Result<Fen, IssuerError> {
        self.load_u64(keys::LOSSES_TOTAL).map(Fen)
    }

    /// Totals from the ledger.
    pub fn stats(&self) -> Result<LedgerStats, IssuerError> {
        let issued = self.load_u64(keys::ISSUED_TOTAL)?;
        let redeemed = self.load_u64(keys::REDEEMED_TOTAL)?;
        Ok(LedgerStats {
            issuer: self.root().address(),
            key_set_version: self.keyset()?.set_version,
            issued_fen: issued,
            notes: self.load_u64(keys::NOTE_COUNT)?,
            wallets: self.wallet_count()?,
            revoked: self.revocations()?.entries.len() as u64,
            redeemed_fen: redeemed,
            outstanding_fen: issued.saturating_sub(redeemed),
            settled_transfers: self.load_u64(keys::SETTLED_TRANSFERS)?,
            double_spends: self.load_u64(keys::DOUBLE_SPENDS)?,
            losses_fen: self.load_u64(keys::LOSSES_TOTAL)?,
            bank_in_fen: self.load_u64(keys::BANK_IN)?,
            bank_out_fen: self.load_u64(keys::BANK_OUT)?,
        })
    }

    /// Rotates the note key: a new key signs from now on; the current one stops signing now and
    /// its coins stay valid until `now + grace_secs`, by which time refresh has moved them to the
    /// new key. Returns the new key set (version + 1).
    pub fn rotate_keys<R: Rng + CryptoRng + ?Sized>(
        &self,
        grace_secs: u64,
        now: u64,
        rng: &mut R,
    ) -> Result<IssuerKeySet, IssuerError> {
        let _guard = self.lock();
        let old = self.keyset()?;
        let next_id = old.keys.iter().map(|k| k.key_id).max().unwrap_or(0) + 1;
        let redeem_by = now
            .checked_add(grace_secs)
            .ok_or_else(|| IssuerError::Refused("grace too long".into()))?;
        let mut keys_v: Vec<IssuerKeyEntry> = old
            .keys
            .iter()
            .map(|k| {
                let mut k = k.clone();
                if k.issue_until > now {
                    k.issue_until = now.max(k.not_before);
                    k.redeem_until = k.redeem_until.min(redeem_by).max(k.issue_until);
                }
                k
            })
            .collect();
        if keys_v.len() >= usize::from(tongbao::protocol::keyset::MAX_KEYS) {
            return Err(IssuerError::Refused(
                "key set is full: retire old keys first".into(),
            ));
        }
        let new_key = SecretKey::generate(rng);
        // The new key starts a second after the old one stops, so exactly one key signs at a time.
        keys_v.push(IssuerKeyEntry {
            key_id: next_id,
            key: new_key.public(),
            not_before: now + 1,
            issue_until: FOREVER,
            redeem_until: FOREVER,
        });
        let set = IssuerKeySet::sign(&self.root, old.set_version + 1, now, old.policy, keys_v);
        let mut b = Batch::new();
        b.put(
            keys::with(keys::NOTE_KEY, &next_id.to_be_bytes()),
            new_key.seed().to_vec(),
        );
        b.put(keys::KEYSET, set.to_bytes());
        self.store.commit(b)?;
        Ok(set)
    }

    /// Serialises ledger writers.
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a newly issued note: the note, its live coin state, the holder index, the totals.
    /// `queued_value` and `queued_notes` are what the same batch has issued before (group
    /// commits).
    pub(crate) fn record_note(
        &self,
        b: &mut Batch,
        note: &Note,
        queued_value: u64,
        queued_notes: u64,
    ) -> Result<(), IssuerError> {
        let id = note.id();
        let total = self.load_u64(keys::ISSUED_TOTAL)? + queued_value;
        let new_total = total
            .checked_add(note.value.0)
            .ok_or_else(|| IssuerError::Refused("issued total overflows".into()))?;
        let count = self.load_u64(keys::NOTE_COUNT)? + queued_notes;
        b.put(keys::with(keys::NOTE, &id.0), note.to_bytes());
        b.put(
            keys::with(keys::COIN, &id.0),
            tongbao::settlement::CoinState::Live {
                value: note.value,
                holder: note.holder,
            }
            .to_bytes(),
        );
        b.put(holder_key(&note.holder, &id), Vec::new());
        if let Earmark::MerchantsOnly { expires_at } = note.earmark {
            b.put(
                keys::with(keys::EARMARKED, &id.0),
                expires_at.to_be_bytes().to_vec(),
            );
        }
        b.put(keys::ISSUED_TOTAL, new_total.to_be_bytes().to_vec());
        b.put(keys::NOTE_COUNT, (count + 1).to_be_bytes().to_vec());
        Ok(())
    }

    /// Wallets certified: the count kept with their records, or in a ledger made before it, the
    /// records counted a page at a time.
    pub(crate) fn wallet_count(&self) -> Result<u64, IssuerError> {
        if let Some(v) = self.store.get(keys::WALLET_COUNT)? {
            return be_u64(v);
        }
        let mut n = 0u64;
        self.pages(keys::WALLET, |page| {
            n += page.len() as u64;
            Ok(())
        })?;
        Ok(n)
    }

    pub(crate) fn load_u64(&self, key: &[u8]) -> Result<u64, IssuerError> {
        be_u64(self.store.get(key)?.unwrap_or_else(|| vec![0; 8]))
    }
}

/// A stored counter (eight bytes, big-endian).
fn be_u64(v: Vec<u8>) -> Result<u64, IssuerError> {
    let arr: [u8; 8] = v
        .try_into()
        .map_err(|_| IssuerError::Corrupt("counter".into()))?;
    Ok(u64::from_be_bytes(arr))
}

/// The holder-index key of a live coin.
pub(crate) fn holder_key(holder: &PublicKey, coin: &tongbao::Id) -> Vec<u8> {
    holder_key_raw(holder.as_bytes(), coin)
}

/// Puts into `b` the redemption of live coin `id` (its value goes home, uncollected) and drops
/// its holder index entry: what a clawback and a lost-device recovery do to each coin they take.
pub(crate) fn redeem_live(b: &mut Batch, id: &tongbao::Id, value: Fen, holder: PublicKey) {
    b.put(
        keys::with(keys::COIN, &id.0),
        tongbao::settlement::CoinState::Redeemed {
            value,
            holder,
            collected: None,
        }
        .to_bytes(),
    );
    b.delete(holder_key(&holder, id));
}

/// [`holder_key`] from the holder's key bytes.
pub(crate) fn holder_key_raw(holder: &[u8; 32], coin: &tongbao::Id) -> Vec<u8> {
    let mut k = keys::HOLDER.to_vec();
    k.extend_from_slice(holder);
    k.extend_from_slice(&coin.0);
    k
}

/// The result of every item of a group that failed as a whole (nothing of it was written).
pub(crate) fn group_failed<T>(n: usize, e: &IssuerError) -> Vec<Result<T, IssuerError>> {
    let msg = e.to_string();
    (0..n)
        .map(|_| Err(IssuerError::GroupFailed(msg.clone())))
        .collect()
}

/// The certificate (not yet signed) that certifying `reg` in `class` gives: the class's default
/// limits, with the serial, counter base and validity given. The registration handler builds the
/// first one again with it (signing is deterministic, so the bytes are the same).
pub(crate) fn registration_certificate(
    reg: &Registration,
    class: WalletClass,
    key_id: u32,
    serial: u64,
    counter_base: u64,
    issued_at: u64,
    expires_at: u64,
) -> Certificate {
    Certificate {
        key_id,
        wallet: reg.wallet,
        kind: reg.kind,
        class,
        merchant: reg.merchant,
        limits: class.default_limits(),
        serial,
        counter_base,
        issued_at,
        expires_at,
        signature: Signature([0; 64]),
    }
}

/// Refuses a registration dated in the future (beyond five minutes of clock skew).
fn not_future(reg: &Registration, now: u64) -> Result<(), IssuerError> {
    if reg.created_at > now.saturating_add(300) {
        return Err(IssuerError::Refused(
            "registration is dated in the future".into(),
        ));
    }
    Ok(())
}

fn seed_key(seed: &[u8]) -> Result<SecretKey, IssuerError> {
    let arr: [u8; 32] = seed
        .try_into()
        .map_err(|_| IssuerError::Corrupt("secret key".into()))?;
    Ok(SecretKey::from_seed(&arr))
}

fn json<T: Serialize>(v: &T) -> Result<Vec<u8>, IssuerError> {
    serde_json::to_vec(v).map_err(|e| IssuerError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use tongbao::store::MemStore;
    use tongbao::wallet::Wallet;

    const T0: u64 = 1_795_253_400;

    /// `ledger stats` counts wallets without reading every record: the count kept with them
    /// grows by the new wallets of each certification, one by one or in a batch, and not by a
    /// renewal or a refused registration; a ledger made before the count (none stored) is counted
    /// from its records, and the next certification writes the count.
    #[test]
    fn the_wallet_count_follows_certifications() {
        let mut rng = StdRng::seed_from_u64(5);
        let iss = Issuer::init(MemStore::new(), T0, &mut rng).expect("init");
        let records = |iss: &Issuer<MemStore>| {
            iss.store.scan_prefix(keys::WALLET).expect("scan").len() as u64
        };
        let stored = |iss: &Issuer<MemStore>| iss.store.get(keys::WALLET_COUNT).expect("get");
        let mut reg = |kind| {
            let keyset = iss.keyset().expect("keyset");
            Wallet::create(MemStore::new(), kind, None, keyset, T0, &mut rng)
                .expect("wallet")
                .1
        };
        let (a, b, c, d) = (
            reg(WalletKind::Personal),
            reg(WalletKind::Merchant),
            reg(WalletKind::Personal),
            reg(WalletKind::Personal),
        );
        assert_eq!(iss.stats().expect("stats").wallets, 0);
        iss.certify(&a, WalletClass::II, 86_400, T0)
            .expect("certify");
        iss.certify(&a, WalletClass::II, 86_400, T0)
            .expect("a renewal");
        assert_eq!((iss.stats().expect("stats").wallets, records(&iss)), (1, 1));
        // A batch: two new wallets (one of them twice: refused the second time) and a renewal.
        let certs = iss.certify_batch(
            &[
                (b.clone(), WalletClass::I),
                (c.clone(), WalletClass::II),
                (c.clone(), WalletClass::II),
                (a.clone(), WalletClass::II),
            ],
            86_400,
            T0,
        );
        let ok: Vec<bool> = certs.iter().map(Result::is_ok).collect();
        assert_eq!(ok, [true, true, false, true]);
        assert_eq!((iss.stats().expect("stats").wallets, records(&iss)), (3, 3));
        // A ledger from before the count: counted from the records, then kept again.
        let mut old = Batch::new();
        old.delete(keys::WALLET_COUNT.to_vec());
        iss.store.commit(old).expect("commit");
        assert_eq!(iss.stats().expect("stats").wallets, 3);
        iss.certify(&d, WalletClass::II, 86_400, T0)
            .expect("certify");
        assert_eq!(stored(&iss), Some(4u64.to_be_bytes().to_vec()));
        assert_eq!((iss.stats().expect("stats").wallets, records(&iss)), (4, 4));
        // Counted a page at a time: more records than a page (stand-ins; only keys are read).
        let mut many = Batch::new();
        for i in 0..5000u32 {
            many.put(keys::with(keys::WALLET, &i.to_be_bytes()), b"{}".to_vec());
        }
        many.delete(keys::WALLET_COUNT.to_vec());
        iss.store.commit(many).expect("commit");
        assert_eq!(iss.stats().expect("stats").wallets, 5004);
    }
}
