//! The wallet engine: one wallet's keys, coins, counters and history over a [`Store`]. See
//! docs/architecture.md#wallet-engine.
//!
//! Invariant: every state change is one [`Batch`] committed (atomic and durable) before the
//! change is reported or any file is written. A payment is in the outbox, and its coins are spent,
//! before the payment file exists; a receipt exists only after the received coins are stored.

pub mod cod;
pub mod courier;
pub mod import;
pub mod journal;
pub mod keystore;
pub mod merchant;
mod pay;
mod receive;
pub mod reconcile;
pub mod records;
pub mod settled;
mod shared;
pub mod sync;

pub use crate::store::{Batch, MemStore, SledStore, Store, StoreError};
pub use pay::{PayTarget, select_coins};
pub use receive::{ReceiveNote, Received};
pub use records::{Balance, CoinView, HistoryEntry, OutboxEntry, RequestRecord, SaleRecord};

use std::sync::Arc;

use rand::{CryptoRng, Rng};

use crate::codec::{Decode, DecodeError, Encode};
use crate::crypto::{Id, Nonce, PublicKey, SecretKey};
use crate::money::Fen;
use crate::protocol::certificate::{Certificate, Registration, WalletKind};
use crate::protocol::coin::Coin;
use crate::protocol::keyset::IssuerKeySet;
use crate::protocol::payment::Payment;
use crate::protocol::proof::DoubleSpendProof;
use crate::protocol::request::PaymentRequest;
use crate::protocol::revocation::RevocationList;
use crate::protocol::{Context, VerifyError};
use crate::time::format_rfc3339;

/// Why a wallet operation was refused. Nothing was stored unless the variant says so.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The input failed verification.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// Stored state did not decode: the wallet database is damaged.
    #[error("wallet database is damaged: {0}")]
    Corrupt(String),
    /// No wallet in this store.
    #[error("no wallet here: create one with `wallet init`")]
    NotInitialized,
    /// A wallet already exists.
    #[error("a wallet already exists here ({0})")]
    AlreadyInitialized(String),
    /// No certificate imported yet.
    #[error(
        "this wallet has no certificate yet: import the one the issuer made (`wallet import CERT`)"
    )]
    NoCertificate,
    /// Not enough spendable money.
    #[error("insufficient funds: {need} needed, {have} spendable")]
    InsufficientFunds {
        /// Spendable now.
        have: Fen,
        /// Needed.
        need: Fen,
    },
    /// The wallet's own limits forbid it.
    #[error("over this wallet's limit: {0}")]
    OverOwnLimit(String),
    /// Already seen: a replayed file.
    #[error("replay: {0}; nothing changed")]
    Replay(String),
    /// A double spend was detected; the proof was stored.
    #[error(
        "double spend detected: {payer} already spent coin {coin} in another transfer; proof {proof} stored, payment refused"
    )]
    DoubleSpend {
        /// The cheating payer's address.
        payer: String,
        /// The coin spent twice (short id).
        coin: String,
        /// The stored proof's id (short).
        proof: String,
    },
    /// A file or object meant for another wallet.
    #[error("{0}")]
    NotForThisWallet(String),
    /// Anything else the user asked that cannot be done.
    #[error("{0}")]
    Refused(String),
    /// Not found.
    #[error("{0} not found")]
    NotFound(String),
    /// The wallet's key is sealed under a passphrase and none was given.
    #[error("this wallet's key is encrypted: its passphrase is needed")]
    PassphraseNeeded,
    /// The passphrase does not open the sealed key.
    #[error("wrong passphrase for this wallet")]
    WrongPassphrase,
}

impl From<keystore::KeystoreError> for WalletError {
    fn from(e: keystore::KeystoreError) -> Self {
        match e {
            keystore::KeystoreError::WrongPassphrase => WalletError::WrongPassphrase,
            other => WalletError::Corrupt(other.to_string()),
        }
    }
}

impl From<DecodeError> for WalletError {
    fn from(e: DecodeError) -> Self {
        WalletError::Verify(VerifyError::Decode(e))
    }
}

/// Storage keys. Each prefix holds one kind of record.
pub(crate) mod keys {
    pub const SECRET: &[u8] = b"m/secret";
    /// The key seed sealed under a passphrase ([`super::keystore`]), instead of `m/secret`.
    pub const SECRET_SEALED: &[u8] = b"m/secret-sealed";
    pub const KIND: &[u8] = b"m/kind";
    pub const REGISTRATION: &[u8] = b"m/registration";
    pub const CERT: &[u8] = b"m/certificate";
    pub const KEYSET: &[u8] = b"m/keyset";
    pub const REVOCATIONS: &[u8] = b"m/revocations";
    pub const COUNTER: &[u8] = b"m/counter";
    pub const OFFLINE_SPENT: &[u8] = b"m/offline-spent";
    pub const SEQ: &[u8] = b"m/history-seq";
    pub const ISSUER_URL: &[u8] = b"m/issuer-url";
    /// The sync request sent and not yet answered.
    pub const PENDING_SYNC: &[u8] = b"m/pending-sync";
    /// The last sync response applied (for reconciliation).
    pub const LAST_SYNC: &[u8] = b"m/last-sync";
    /// Unspent coins by coin id.
    pub const COIN: &[u8] = b"c/";
    /// Spent coins by coin id: the payment that spent them.
    pub const SPENT: &[u8] = b"s/";
    /// Every transfer seen, by the coin it consumed (local double-spend detection).
    pub const SEEN: &[u8] = b"t/";
    /// Double-spend proofs by proof id.
    pub const PROOF: &[u8] = b"p/";
    /// History by sequence number.
    pub const HISTORY: &[u8] = b"h/";
    /// Payments made, by payment id.
    pub const OUTBOX: &[u8] = b"o/";
    /// Payments received, by payment id: the receipt.
    pub const RECEIVED: &[u8] = b"r/";
    /// Requests made, by request id.
    pub const REQUEST: &[u8] = b"q/";
    /// The static code's request id.
    pub const STATIC_CODE: &[u8] = b"m/static-code";
    /// A till's last close: journal number (u64) and end of its period (u64).
    pub const LAST_CLOSE: &[u8] = b"m/last-close";
    /// Payments received, by payment id: the sale record (coins, confirmation, refunds).
    pub const SALE: &[u8] = b"x/";
    /// Refunds paid, by refund payment id.
    pub const REFUND: &[u8] = b"f/";
    /// A merchant's tills, by till key.
    pub const TILL: &[u8] = b"w/";
    /// A merchant's imported till journals, by till key and journal number.
    pub const JOURNAL: &[u8] = b"j/";
    /// A merchant's cash-on-delivery orders, by order id (blake3 of the order).
    pub const ORDER: &[u8] = b"d/";
    /// A merchant's accepted handoff manifests, by manifest id.
    pub const HANDOFF: &[u8] = b"e/";
    /// A courier's carried orders, by order id.
    pub const CARRIED: &[u8] = b"k/";
    /// The settlement index: what the issuer made of each coin, by coin id.
    pub const SETTLED: &[u8] = b"y/";
    /// Every sync response applied, by sync id.
    pub const SYNC_LOG: &[u8] = b"ys/";

    pub fn with(prefix: &[u8], id: &[u8]) -> Vec<u8> {
        let mut k = prefix.to_vec();
        k.extend_from_slice(id);
        k
    }
}

/// One wallet over a store.
pub struct Wallet<S: Store> {
    store: S,
    secret: SecretKey,
    kind: WalletKind,
}

impl<S: Store> Wallet<S> {
    /// Creates a new wallet in an empty store: a fresh key, the issuer key set it trusts, and the
    /// registration to send to the issuer. The key seed is stored in plain form (`m/secret`); see
    /// [`Wallet::create_sealed`] for a passphrase-protected one.
    pub fn create<R: Rng + CryptoRng + ?Sized>(
        store: S,
        kind: WalletKind,
        merchant: Option<PublicKey>,
        keyset: IssuerKeySet,
        now: u64,
        rng: &mut R,
    ) -> Result<(Wallet<S>, Registration), WalletError> {
        Wallet::create_inner(store, None, kind, merchant, keyset, now, rng)
    }

    /// Like [`Wallet::create`], with the key seed sealed under `passphrase` (argon2id and
    /// XChaCha20-Poly1305, [`keystore`]) and stored only in that form (`m/secret-sealed`): the plain
    /// seed never reaches the store.
    pub fn create_sealed<R: Rng + CryptoRng + ?Sized>(
        store: S,
        passphrase: &keystore::Passphrase,
        kind: WalletKind,
        merchant: Option<PublicKey>,
        keyset: IssuerKeySet,
        now: u64,
        rng: &mut R,
    ) -> Result<(Wallet<S>, Registration), WalletError> {
        Wallet::create_inner(store, Some(passphrase), kind, merchant, keyset, now, rng)
    }

    fn create_inner<R: Rng + CryptoRng + ?Sized>(
        store: S,
        passphrase: Option<&keystore::Passphrase>,
        kind: WalletKind,
        merchant: Option<PublicKey>,
        keyset: IssuerKeySet,
        now: u64,
        rng: &mut R,
    ) -> Result<(Wallet<S>, Registration), WalletError> {
        if let Some(seed) = store.get(keys::SECRET)? {
            let existing = seed_key(&seed)?.public().address();
            return Err(WalletError::AlreadyInitialized(existing));
        }
        if store.get(keys::SECRET_SEALED)?.is_some() {
            let existing = store
                .get(keys::REGISTRATION)?
                .and_then(|r| Registration::decode(&r).ok())
                .map(|r| r.wallet.address())
                .unwrap_or_else(|| "encrypted".into());
            return Err(WalletError::AlreadyInitialized(existing));
        }
        if (kind == WalletKind::Till) != merchant.is_some() {
            return Err(WalletError::Refused(
                "a till wallet needs --merchant ADDRESS (and only a till has one)".into(),
            ));
        }
        keyset.verify()?;
        let secret = SecretKey::generate(rng);
        let registration = Registration::sign(&secret, kind, merchant, now);
        let mut b = Batch::new();
        match passphrase {
            None => b.put(keys::SECRET, secret.seed().to_vec()),
            Some(p) => b.put(
                keys::SECRET_SEALED,
                keystore::seal(&secret.seed(), p, keystore::KdfParams::default(), rng)?,
            ),
        }
        b.put(
            keys::KIND,
            serde_json::to_vec(&kind).map_err(|e| WalletError::Corrupt(e.to_string()))?,
        );
        b.put(keys::REGISTRATION, registration.to_bytes());
        b.put(keys::KEYSET, keyset.to_bytes());
        b.put(keys::COUNTER, 0u64.to_be_bytes().to_vec());
        b.put(keys::OFFLINE_SPENT, 0u64.to_be_bytes().to_vec());
        let w = Wallet {
            store,
            secret,
            kind,
        };
        w.push_history(
            &mut b,
            now,
            HistoryEntry::note("created", format!("{kind} wallet {}", w.public().address())),
        )?;
        w.store.commit(b)?;
        Ok((w, registration))
    }

    /// Whether the wallet in `store` has its key sealed under a passphrase.
    pub fn needs_passphrase(store: &S) -> Result<bool, WalletError> {
        Ok(store.get(keys::SECRET)?.is_none() && store.get(keys::SECRET_SEALED)?.is_some())
    }

    /// Opens the wallet in `store`. A wallet whose key is sealed needs [`Wallet::open_with`].
    pub fn open(store: S) -> Result<Wallet<S>, WalletError> {
        Wallet::open_with(store, None)
    }

    /// Opens the wallet in `store`, unsealing its key with `passphrase` if it is sealed (a plain
    /// wallet ignores the passphrase). The unsealed seed stays in memory only.
    pub fn open_with(
        store: S,
        passphrase: Option<&keystore::Passphrase>,
    ) -> Result<Wallet<S>, WalletError> {
        let secret = match store.get(keys::SECRET)? {
            Some(seed) => seed_key(&seed)?,
            None => {
                let sealed = store
                    .get(keys::SECRET_SEALED)?
                    .ok_or(WalletError::NotInitialized)?;
                let p = passphrase.ok_or(WalletError::PassphraseNeeded)?;
                let seed = keystore::unseal(&sealed, p)?;
                SecretKey::from_seed(&seed)
            }
        };
        let kind: WalletKind = store
            .get(keys::KIND)?
            .and_then(|k| serde_json::from_slice(&k).ok())
            .ok_or_else(|| WalletError::Corrupt("wallet kind".into()))?;
        Ok(Wallet {
            store,
            secret,
            kind,
        })
    }

    /// The wallet's public key (its address): the secret key's own copy (a second one would
    /// be 192 bytes a wallet, which a city-scale pilot holds a million of).
    pub fn public(&self) -> PublicKey {
        self.secret.public()
    }

    /// The wallet's kind.
    pub fn kind(&self) -> WalletKind {
        self.kind
    }

    /// The underlying store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The registration made at creation.
    pub fn registration(&self) -> Result<Registration, WalletError> {
        self.load(keys::REGISTRATION, "registration")?
            .ok_or_else(|| WalletError::Corrupt("registration".into()))
    }

    /// The issuer key set the wallet trusts.
    pub fn keyset(&self) -> Result<IssuerKeySet, WalletError> {
        self.keyset_shared().map(|k| (*k).clone())
    }

    /// [`Wallet::keyset`], as the decoded copy shared by every wallet holding the same bytes.
    pub(crate) fn keyset_shared(&self) -> Result<Arc<IssuerKeySet>, WalletError> {
        let v = self
            .store
            .get(keys::KEYSET)?
            .ok_or_else(|| WalletError::Corrupt("issuer key set".into()))?;
        shared::KEYSETS
            .get(&v)
            .map_err(|e| WalletError::Corrupt(format!("issuer key set: {e}")))
    }

    /// The current certificate, if any.
    pub fn certificate(&self) -> Result<Option<Certificate>, WalletError> {
        self.load(keys::CERT, "certificate")
    }

    /// The newest revocation list held, if any.
    pub fn revocations(&self) -> Result<Option<RevocationList>, WalletError> {
        Ok(self.revocations_shared()?.map(|l| (*l).clone()))
    }

    /// [`Wallet::revocations`], as the decoded copy shared by every wallet holding the same bytes.
    pub(crate) fn revocations_shared(&self) -> Result<Option<Arc<RevocationList>>, WalletError> {
        match self.store.get(keys::REVOCATIONS)? {
            None => Ok(None),
            Some(v) => shared::REVOCATIONS
                .get(&v)
                .map(Some)
                .map_err(|e| WalletError::Corrupt(format!("revocation list: {e}"))),
        }
    }

    /// The payment counter (number of payments made so far).
    pub fn counter(&self) -> Result<u64, WalletError> {
        self.load_u64(keys::COUNTER)
    }

    /// Offline spend since the current certificate.
    pub fn offline_spent(&self) -> Result<Fen, WalletError> {
        self.load_u64(keys::OFFLINE_SPENT).map(Fen)
    }

    /// Every unspent coin.
    pub fn coins(&self) -> Result<Vec<Coin>, WalletError> {
        self.store
            .scan_prefix(keys::COIN)?
            .into_iter()
            .map(|(_, v)| Coin::decode(&v).map_err(|e| WalletError::Corrupt(format!("coin: {e}"))))
            .collect()
    }

    /// Balance and coin list.
    pub fn balance(&self, now: u64) -> Result<Balance, WalletError> {
        let keyset = self.keyset_shared()?;
        let coins = self.coins()?;
        let cert = self.certificate()?;
        let mut views = Vec::with_capacity(coins.len());
        let mut total = Fen::ZERO;
        for c in &coins {
            let v = CoinView::of(c, &keyset, now);
            total = total
                .checked_add(v.value)
                .ok_or_else(|| WalletError::Corrupt("balance overflow".into()))?;
            views.push(v);
        }
        views.sort_by(|a, b| b.value.cmp(&a.value).then(a.id.cmp(&b.id)));
        let offline_spent = self.offline_spent()?;
        let counter = self.counter()?;
        Ok(Balance::new(
            self.public(),
            self.kind,
            total,
            views,
            cert.as_ref(),
            offline_spent,
            counter,
        ))
    }

    /// Verification context for this wallet at `now`, with the given revocation list.
    pub(crate) fn context<'a>(
        &self,
        keys: &'a IssuerKeySet,
        rl: Option<&'a RevocationList>,
        now: u64,
    ) -> Context<'a> {
        Context {
            keys,
            now,
            revoked: rl,
        }
    }

    /// Makes a payment request (a dynamic code: amount set, one use) and records it.
    pub fn create_request<R: Rng + CryptoRng + ?Sized>(
        &self,
        amount: Fen,
        memo: String,
        expires_in: u64,
        now: u64,
        rng: &mut R,
    ) -> Result<PaymentRequest, WalletError> {
        if amount == Fen::ZERO {
            return Err(WalletError::Refused(
                "a request needs an amount above zero".into(),
            ));
        }
        if memo.len() > usize::from(crate::protocol::request::MAX_MEMO) {
            return Err(WalletError::Refused(format!(
                "memo is {} bytes; at most {} fit in a payment code",
                memo.len(),
                crate::protocol::request::MAX_MEMO
            )));
        }
        let expires_at = now
            .checked_add(expires_in)
            .ok_or_else(|| WalletError::Refused("expiry too far".into()))?;
        let req = PaymentRequest::sign(
            &self.secret,
            amount,
            Nonce::random(rng),
            memo,
            now,
            expires_at,
        );
        let mut b = Batch::new();
        b.put(
            keys::with(keys::REQUEST, &req.request_id.0),
            RequestRecord::stored_of(&req)?,
        );
        self.push_history(
            &mut b,
            now,
            HistoryEntry {
                amount_fen: Some(amount.0),
                request_id: Some(req.request_id.to_hex()),
                memo: Some(req.memo.clone()).filter(|m| !m.is_empty()),
                ..HistoryEntry::note(
                    "requested",
                    format!(
                        "request {} until {}",
                        req.request_id.short(),
                        format_rfc3339(expires_at)
                    ),
                )
            },
        )?;
        self.store.commit(b)?;
        Ok(req)
    }

    /// Requests this wallet made.
    pub fn requests(&self) -> Result<Vec<RequestRecord>, WalletError> {
        self.store
            .scan_prefix(keys::REQUEST)?
            .into_iter()
            .map(|(_, v)| RequestRecord::from_stored(&v))
            .collect()
    }

    /// History, oldest first.
    pub fn history(&self) -> Result<Vec<HistoryEntry>, WalletError> {
        self.store
            .scan_prefix(keys::HISTORY)?
            .into_iter()
            .map(|(_, v)| {
                serde_json::from_slice(&v)
                    .map_err(|e| WalletError::Corrupt(format!("history: {e}")))
            })
            .collect()
    }

    /// Payments made and neither acknowledged by a receipt nor settled at the issuer.
    pub fn outbox(&self) -> Result<Vec<OutboxEntry>, WalletError> {
        let mut out = Vec::new();
        for (_, v) in self.store.scan_prefix(keys::OUTBOX)? {
            let e = OutboxEntry::from_stored(&v)?;
            if e.receipt_time.is_none() && e.settled_at.is_none() {
                out.push(e);
            }
        }
        out.sort_by_key(|e| (e.time, e.payment_id.clone()));
        Ok(out)
    }

    /// A payment from the outbox (acknowledged or not) by full or short id, to write again.
    pub fn outbox_payment(&self, id: &str) -> Result<Payment, WalletError> {
        let id = id.trim().to_lowercase();
        let mut found = Vec::new();
        for (k, v) in self.store.scan_prefix(keys::OUTBOX)? {
            if hex::encode(&k[keys::OUTBOX.len()..]).starts_with(&id) && !id.is_empty() {
                found.push(v);
            }
        }
        match found.len() {
            0 => Err(WalletError::NotFound(format!("payment {id} in the outbox"))),
            1 => OutboxEntry::payment_from_stored(&found[0]),
            n => Err(WalletError::Refused(format!(
                "{n} payments start with {id}: give more of the id"
            ))),
        }
    }

    /// Double-spend proofs this wallet has caught.
    pub fn proofs(&self) -> Result<Vec<DoubleSpendProof>, WalletError> {
        self.store
            .scan_prefix(keys::PROOF)?
            .into_iter()
            .map(|(_, v)| {
                DoubleSpendProof::decode(&v)
                    .map_err(|e| WalletError::Corrupt(format!("proof: {e}")))
            })
            .collect()
    }

    pub(crate) fn load<T: Decode>(&self, key: &[u8], what: &str) -> Result<Option<T>, WalletError> {
        match self.store.get(key)? {
            None => Ok(None),
            Some(v) => T::decode(&v)
                .map(Some)
                .map_err(|e| WalletError::Corrupt(format!("{what}: {e}"))),
        }
    }

    pub(crate) fn load_u64(&self, key: &[u8]) -> Result<u64, WalletError> {
        let v = self.store.get(key)?.unwrap_or_else(|| vec![0; 8]);
        let arr: [u8; 8] = v
            .try_into()
            .map_err(|_| WalletError::Corrupt("counter".into()))?;
        Ok(u64::from_be_bytes(arr))
    }

    pub(crate) fn require_certificate(&self) -> Result<Certificate, WalletError> {
        self.certificate()?.ok_or(WalletError::NoCertificate)
    }

    pub(crate) fn secret(&self) -> &SecretKey {
        &self.secret
    }

    /// Appends a history entry to `b` (sequence numbers are allocated inside the same batch),
    /// if the store keeps history ([`Store::keeps_history`]).
    pub(crate) fn push_history(
        &self,
        b: &mut Batch,
        now: u64,
        mut e: HistoryEntry,
    ) -> Result<(), WalletError> {
        if !self.store.keeps_history() {
            return Ok(());
        }
        let seq = self.load_u64(keys::SEQ)? + 1;
        // Several entries in one batch: count the ones already queued.
        let queued = b
            .ops()
            .iter()
            .filter(|(k, _)| k.starts_with(keys::HISTORY))
            .count() as u64;
        let seq = seq + queued;
        e.seq = seq;
        e.time = now;
        b.put(
            keys::with(keys::HISTORY, &seq.to_be_bytes()),
            serde_json::to_vec(&e).map_err(|x| WalletError::Corrupt(x.to_string()))?,
        );
        b.put(keys::SEQ, seq.to_be_bytes().to_vec());
        Ok(())
    }

    /// Whether the coin id is known (held or spent).
    pub(crate) fn knows_coin(&self, id: &Id) -> Result<bool, WalletError> {
        Ok(self.store.get(&keys::with(keys::COIN, &id.0))?.is_some()
            || self.store.get(&keys::with(keys::SPENT, &id.0))?.is_some())
    }
}

fn seed_key(seed: &[u8]) -> Result<SecretKey, WalletError> {
    let arr: [u8; 32] = seed
        .try_into()
        .map_err(|_| WalletError::Corrupt("secret key".into()))?;
    Ok(SecretKey::from_seed(&arr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::certificate::WalletKind;
    use crate::store::suite::Minimal;
    use crate::testkit::{Fixture, NOW};
    use rand::SeedableRng;

    /// The wallet writes its history (entries and their sequence number) only to a store that
    /// keeps it.
    #[test]
    fn history_is_written_only_where_the_store_keeps_it() {
        let f = Fixture::new();
        let kept = MemStore::new();
        let none = Minimal(MemStore::new(), false);
        for (store, keeps) in [(&kept as &dyn Store, true), (&none as &dyn Store, false)] {
            let mut rng = rand::rngs::StdRng::seed_from_u64(3);
            let (w, _) = Wallet::create(
                store,
                WalletKind::Merchant,
                None,
                f.keyset.clone(),
                NOW,
                &mut rng,
            )
            .expect("created");
            w.create_request(Fen(1_250), "tea".into(), 3_600, NOW, &mut rng)
                .expect("request");
            let history = store.scan_prefix(keys::HISTORY).expect("scan");
            assert_eq!(!history.is_empty(), keeps);
            assert_eq!(store.get(keys::SEQ).expect("get").is_some(), keeps);
            assert_eq!(w.history().expect("history").is_empty(), !keeps);
        }
    }
}
