//! Settlement messages: the wallet's signed sync request and the issuer's signed response, and
//! the issuer's confirmation of an online payment. See docs/protocol.md#sync.
//!
//! A sync request carries every coin chain the wallet brings home: the coins of payments it made
//! since its last sync (ending at their payees) and every coin it holds, each ending in a refresh
//! transfer to the issuer's root key. It may also ask for a top-up from the linked bank account or
//! a redemption to it. The `sync_id` makes it idempotent: the issuer answers a replay with the
//! response it already gave.

use super::certificate::Certificate;
use super::coin::Coin;
use super::keyset::IssuerKeySet;
use super::note::Note;
use super::payment::Payment;
use super::proof::{DoubleSpendProof, MIN_PROOF_LEN};
use super::revocation::RevocationList;
use super::{SignedBody, VERSION, VerifyError, label};
use crate::codec::{Decode, DecodeError, Encode, Put, Reader};
use crate::crypto::{Id, Nonce, PublicKey, SecretKey, Signature};
use crate::money::Fen;

/// Most coin chains one sync may carry.
pub const MAX_SYNC_COINS: u32 = 100_000;
/// Most proofs one sync may carry.
pub const MAX_SYNC_PROOFS: u32 = 10_000;

/// A wallet's signed request to settle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRequest {
    /// The syncing wallet.
    pub wallet: PublicKey,
    /// Idempotency id: a replay gets the same response.
    pub sync_id: Nonce,
    /// When made (wallet clock).
    pub time: u64,
    /// The wallet's payment counter after this request (its refresh transfers use it).
    pub counter: u64,
    /// Top-up from the linked bank account, in new notes.
    pub topup: Fen,
    /// Of the refreshed value, how much to redeem to the bank account instead of new notes.
    pub redeem: Fen,
    /// Coin chains: payments made since the last sync, and held coins ending in a refresh transfer
    /// to the issuer.
    pub coins: Vec<Coin>,
    /// Double-spend proofs the wallet caught.
    pub proofs: Vec<DoubleSpendProof>,
    /// Wallet signature.
    pub signature: Signature,
}

impl SignedBody for SyncRequest {
    const LABEL: &'static [u8] = label::SYNC_REQUEST;

    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u8(VERSION);
        self.wallet.encode(out);
        out.put_raw(&self.sync_id.0);
        out.put_u64(self.time);
        out.put_u64(self.counter);
        out.put_u64(self.topup.0);
        out.put_u64(self.redeem.0);
        out.put_u32(self.coins.len() as u32);
        for c in &self.coins {
            c.encode(out);
        }
        out.put_u32(self.proofs.len() as u32);
        for p in &self.proofs {
            p.encode(out);
        }
    }
}

impl Encode for SyncRequest {
    fn encode(&self, out: &mut Vec<u8>) {
        self.encode_body(out);
        self.signature.encode(out);
    }
}

impl Decode for SyncRequest {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.version("sync request", VERSION)?;
        let wallet = PublicKey::decode(r, "sync wallet")?;
        let sync_id = Nonce(r.array("sync id")?);
        let time = r.u64("sync time")?;
        let counter = r.u64("sync counter")?;
        let topup = Fen(r.u64("top-up")?);
        let redeem = Fen(r.u64("redeem")?);
        let n = r.count32("sync coins", 0, MAX_SYNC_COINS, 136)?;
        let mut coins = Vec::with_capacity(n);
        for _ in 0..n {
            coins.push(Coin::decode_from(r)?);
        }
        let n = r.count32("sync proofs", 0, MAX_SYNC_PROOFS, MIN_PROOF_LEN)?;
        let mut proofs = Vec::with_capacity(n);
        for _ in 0..n {
            proofs.push(DoubleSpendProof::decode_from(r)?);
        }
        let signature = Signature::decode(r, "sync signature")?;
        Ok(SyncRequest {
            wallet,
            sync_id,
            time,
            counter,
            topup,
            redeem,
            coins,
            proofs,
            signature,
        })
    }
}

impl SyncRequest {
    /// Signs the request fields with the wallet key (the signature field is replaced).
    pub fn signed(mut self, key: &SecretKey) -> SyncRequest {
        self.signature = key.sign(&self.signing_bytes());
        self
    }

    /// Checks the wallet's signature.
    pub fn verify_signature(&self) -> Result<(), VerifyError> {
        self.wallet
            .verify(&self.signing_bytes(), &self.signature, "sync request")?;
        Ok(())
    }
}

/// What settlement made of one coin chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoinStatus {
    /// Newly settled.
    Accepted,
    /// Every transfer in it was settled before (a replay, or another wallet settled it first).
    AlreadySettled,
    /// Refused; see the reason.
    Rejected,
}

/// Why a chain was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// Not rejected.
    None,
    /// A coin in it was already consumed by a different transfer, or collected for its holder
    /// at a sync before the holder spent it (the proof of either kind is attached).
    DoubleSpend,
    /// The chain does not verify (signature, value, hops, keys).
    Invalid,
    /// Its root note is not one the issuer issued.
    UnknownNote,
    /// A coin in it was already paid to the issuer, or taken out of circulation by the issuer
    /// (recovery, clawback); one collected for its holder and spent by it is a double spend.
    AlreadyRedeemed,
    /// It asks to refresh a coin the syncing wallet does not hold.
    NotYours,
}

impl RejectReason {
    fn tag(self) -> u8 {
        match self {
            RejectReason::None => 0,
            RejectReason::DoubleSpend => 1,
            RejectReason::Invalid => 2,
            RejectReason::UnknownNote => 3,
            RejectReason::AlreadyRedeemed => 4,
            RejectReason::NotYours => 5,
        }
    }

    fn from_tag(t: u8) -> Result<Self, DecodeError> {
        Ok(match t {
            0 => RejectReason::None,
            1 => RejectReason::DoubleSpend,
            2 => RejectReason::Invalid,
            3 => RejectReason::UnknownNote,
            4 => RejectReason::AlreadyRedeemed,
            5 => RejectReason::NotYours,
            got => {
                return Err(DecodeError::InvalidTag {
                    what: "reject reason",
                    got,
                });
            }
        })
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::None => "none",
            RejectReason::DoubleSpend => "double-spend",
            RejectReason::Invalid => "invalid",
            RejectReason::UnknownNote => "unknown-note",
            RejectReason::AlreadyRedeemed => "already-redeemed",
            RejectReason::NotYours => "not-yours",
        }
    }
}

/// The result for one chain of the request, in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoinResult {
    /// The chain's final coin id.
    pub coin: Id,
    /// Its value.
    pub value: Fen,
    /// Outcome.
    pub status: CoinStatus,
    /// Why, if rejected.
    pub reason: RejectReason,
    /// The proof, for a double spend.
    pub proof: Option<DoubleSpendProof>,
}

impl CoinResult {
    /// One line for a person: the coin, its value, the result's reason and any proof (its id,
    /// the cheater, what the cheater did), e.g. `coin 1a2b3c4d 12.00: double-spend (proof ...)`.
    pub fn describe(&self) -> String {
        let proof = self
            .proof
            .as_ref()
            .map(|p| {
                format!(
                    " (proof {} against {}: {})",
                    p.id().short(),
                    p.signer().address(),
                    p.what()
                )
            })
            .unwrap_or_default();
        format!(
            "coin {} {}: {}{proof}",
            self.coin.short(),
            self.value,
            self.reason.as_str()
        )
    }
}

/// The issuer's signed answer to a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResponse {
    /// The syncing wallet.
    pub wallet: PublicKey,
    /// The request's sync id.
    pub sync_id: Nonce,
    /// The request's id (blake3 of its signing bytes).
    pub request: Id,
    /// When settled.
    pub time: u64,
    /// One result per chain in the request.
    pub results: Vec<CoinResult>,
    /// Fresh notes for the wallet: refreshed value, collected credits and top-up, less redemption.
    pub notes: Vec<Note>,
    /// Coins other wallets settled to this wallet, collected into the fresh notes: the wallet
    /// marks them known and never accepts them again.
    pub collected: Vec<Id>,
    /// Paid out to the linked bank account.
    pub redeemed: Fen,
    /// The renewed certificate (offline counters start again).
    pub certificate: Certificate,
    /// The newest issuer key set.
    pub keyset: IssuerKeySet,
    /// The newest revocation list.
    pub revocations: RevocationList,
    /// Issuer root signature.
    pub signature: Signature,
}

impl SignedBody for SyncResponse {
    const LABEL: &'static [u8] = label::SYNC_RESPONSE;

    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u8(VERSION);
        self.wallet.encode(out);
        out.put_raw(&self.sync_id.0);
        self.request.encode(out);
        out.put_u64(self.time);
        out.put_u32(self.results.len() as u32);
        for r in &self.results {
            r.coin.encode(out);
            out.put_u64(r.value.0);
            out.put_u8(match r.status {
                CoinStatus::Accepted => 1,
                CoinStatus::AlreadySettled => 2,
                CoinStatus::Rejected => 3,
            });
            out.put_u8(r.reason.tag());
            match &r.proof {
                None => out.put_u8(0),
                Some(p) => {
                    out.put_u8(1);
                    p.encode(out);
                }
            }
        }
        out.put_u32(self.notes.len() as u32);
        for n in &self.notes {
            n.encode(out);
        }
        out.put_u32(self.collected.len() as u32);
        for c in &self.collected {
            c.encode(out);
        }
        out.put_u64(self.redeemed.0);
        self.certificate.encode(out);
        self.keyset.encode(out);
        self.revocations.encode(out);
    }
}

impl Encode for SyncResponse {
    fn encode(&self, out: &mut Vec<u8>) {
        self.encode_body(out);
        self.signature.encode(out);
    }
}

impl Decode for SyncResponse {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.version("sync response", VERSION)?;
        let wallet = PublicKey::decode(r, "sync response wallet")?;
        let sync_id = Nonce(r.array("sync id")?);
        let request = Id::decode(r, "sync request id")?;
        let time = r.u64("sync response time")?;
        let n = r.count32("sync results", 0, MAX_SYNC_COINS, 43)?;
        let mut results = Vec::with_capacity(n);
        for _ in 0..n {
            let coin = Id::decode(r, "result coin")?;
            let value = Fen(r.u64("result value")?);
            let status = match r.u8("result status")? {
                1 => CoinStatus::Accepted,
                2 => CoinStatus::AlreadySettled,
                3 => CoinStatus::Rejected,
                got => {
                    return Err(DecodeError::InvalidTag {
                        what: "result status",
                        got,
                    });
                }
            };
            let reason = RejectReason::from_tag(r.u8("result reason")?)?;
            if (status == CoinStatus::Rejected) == (reason == RejectReason::None) {
                return Err(DecodeError::InvalidValue(
                    "reject reason must be given exactly for rejections",
                ));
            }
            let proof = if r.option_tag("result proof")? {
                Some(DoubleSpendProof::decode_from(r)?)
            } else {
                None
            };
            if proof.is_some() != (reason == RejectReason::DoubleSpend) {
                return Err(DecodeError::InvalidValue(
                    "a proof must be given exactly for double-spend rejections",
                ));
            }
            results.push(CoinResult {
                coin,
                value,
                status,
                reason,
                proof,
            });
        }
        let n = r.count32("sync notes", 0, MAX_SYNC_COINS, 134)?;
        let mut notes = Vec::with_capacity(n);
        for _ in 0..n {
            notes.push(Note::decode_from(r)?);
        }
        let n = r.count32("collected coins", 0, MAX_SYNC_COINS, 32)?;
        let mut collected = Vec::with_capacity(n);
        for _ in 0..n {
            collected.push(Id::decode(r, "collected coin")?);
        }
        let redeemed = Fen(r.u64("redeemed")?);
        let certificate = Certificate::decode_from(r)?;
        let keyset = IssuerKeySet::decode_from(r)?;
        let revocations = RevocationList::decode_from(r)?;
        let signature = Signature::decode(r, "sync response signature")?;
        Ok(SyncResponse {
            wallet,
            sync_id,
            request,
            time,
            results,
            notes,
            collected,
            redeemed,
            certificate,
            keyset,
            revocations,
            signature,
        })
    }
}

impl SyncResponse {
    /// Signs with the issuer root key (the signature field is replaced).
    pub fn signed(mut self, root: &SecretKey) -> SyncResponse {
        self.signature = root.sign(&self.signing_bytes());
        self
    }

    /// Checks the root signature against the key set the wallet already trusts, the key set the
    /// response carries and its revocation list. The caller then checks the notes and the
    /// certificate under the carried key set.
    ///
    /// The carried set is normally the held one or a successor. It may also be an older set of the
    /// same root ([`IssuerKeySet::check_predecessor`]): the issuer answers a replayed sync id with
    /// the response it stored, so a wallet whose answer was lost and that learnt of a key rotation
    /// before retrying gets the key set of the time it was settled. The wallet then keeps the newer
    /// set it holds.
    pub fn verify(&self, trusted: &IssuerKeySet) -> Result<(), VerifyError> {
        // A response from another issuer carries that issuer's key set: say so, rather than only
        // that the signature does not check.
        if self.keyset.root != trusted.root {
            return Err(VerifyError::OtherIssuer(self.keyset.root.address()));
        }
        trusted
            .root
            .verify(&self.signing_bytes(), &self.signature, "sync response")?;
        if self.keyset.set_version < trusted.set_version {
            trusted.check_predecessor(&self.keyset)?;
        } else {
            trusted.check_successor(&self.keyset)?;
        }
        self.revocations.verify(&self.keyset)?;
        Ok(())
    }
}

/// The issuer's confirmation that an online payment is settled: final for the payee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    /// The payment id.
    pub payment_id: Id,
    /// The payer.
    pub payer: PublicKey,
    /// The payee.
    pub payee: PublicKey,
    /// Amount settled to the payee.
    pub amount: Fen,
    /// When settled.
    pub settled_at: u64,
    /// Issuer root signature.
    pub signature: Signature,
}

impl SignedBody for Confirmation {
    const LABEL: &'static [u8] = label::CONFIRMATION;

    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u8(VERSION);
        self.payment_id.encode(out);
        self.payer.encode(out);
        self.payee.encode(out);
        out.put_u64(self.amount.0);
        out.put_u64(self.settled_at);
    }
}

impl Encode for Confirmation {
    fn encode(&self, out: &mut Vec<u8>) {
        self.encode_body(out);
        self.signature.encode(out);
    }
}

impl Decode for Confirmation {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.version("confirmation", VERSION)?;
        Ok(Confirmation {
            payment_id: Id::decode(r, "confirmed payment")?,
            payer: PublicKey::decode(r, "confirmed payer")?,
            payee: PublicKey::decode(r, "confirmed payee")?,
            amount: Fen(r.u64("confirmed amount")?),
            settled_at: r.u64("settled at")?,
            signature: Signature::decode(r, "confirmation signature")?,
        })
    }
}

impl Confirmation {
    /// The confirmation for a settled payment, signed by the issuer root.
    pub fn sign(root: &SecretKey, p: &Payment, settled_at: u64) -> Confirmation {
        let mut c = Confirmation {
            payment_id: p.id(),
            payer: p.payer(),
            payee: p.payee,
            amount: p.amount,
            settled_at,
            signature: Signature([0; 64]),
        };
        c.signature = root.sign(&c.signing_bytes());
        c
    }

    /// Checks the issuer's signature and that it confirms `payment`.
    pub fn verify(&self, keys: &IssuerKeySet, payment: &Payment) -> Result<(), VerifyError> {
        self.verify_for(
            keys,
            &payment.id(),
            &payment.payer(),
            &payment.payee.address(),
            payment.amount,
        )
    }

    /// The same check against what a payer keeps of a payment it made: its id, payer, payee
    /// address and amount (the id covers the rest of the payment).
    pub fn verify_for(
        &self,
        keys: &IssuerKeySet,
        payment_id: &Id,
        payer: &PublicKey,
        payee: &str,
        amount: Fen,
    ) -> Result<(), VerifyError> {
        keys.root
            .verify(&self.signing_bytes(), &self.signature, "confirmation")?;
        if self.payment_id != *payment_id
            || self.payer != *payer
            || self.payee.address() != payee
            || self.amount != amount
        {
            return Err(VerifyError::Mismatch(
                "the confirmation is for another payment".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Context;
    use crate::protocol::certificate::{WalletClass, WalletKind};
    use crate::protocol::keyset::{IssuerKeyEntry, Policy};
    use crate::testkit::{Fixture, NOW, key};
    use crate::time::FOREVER;

    /// The fixture's key set after a rotation at `NOW`: key 1 stops signing, key 2 takes over.
    fn rotated(f: &Fixture, version: u64, issued_at: u64) -> IssuerKeySet {
        let mut keys = f.keyset.keys.clone();
        keys[0].issue_until = NOW;
        keys[0].redeem_until = NOW + 30 * 86_400;
        keys.push(IssuerKeyEntry {
            key_id: 2,
            key: key(7).public(),
            not_before: NOW + 1,
            issue_until: FOREVER,
            redeem_until: FOREVER,
        });
        IssuerKeySet::sign(&f.root, version, issued_at, Policy::default(), keys)
    }

    /// A response to wallet seed 3 settled under `keyset`, signed by `root`.
    fn response(f: &Fixture, keyset: IssuerKeySet, root: &SecretKey) -> SyncResponse {
        let wallet = key(3).public();
        SyncResponse {
            wallet,
            sync_id: Nonce([9; 16]),
            request: Id([8; 32]),
            time: NOW - 600,
            results: Vec::new(),
            notes: vec![f.note(wallet, Fen(500), 1)],
            collected: Vec::new(),
            redeemed: Fen::ZERO,
            certificate: f.certificate(wallet, WalletKind::Personal, WalletClass::II),
            keyset,
            revocations: RevocationList::sign(root, 1, NOW - 86_400, Vec::new()),
            signature: Signature([0; 64]),
        }
        .signed(root)
    }

    #[test]
    fn the_held_key_set_or_a_successor_is_accepted() {
        let f = Fixture::new();
        let resp = response(&f, f.keyset.clone(), &f.root);
        assert_eq!(resp.verify(&f.keyset), Ok(()));
        let newer = response(&f, rotated(&f, 2, NOW), &f.root);
        assert_eq!(newer.verify(&f.keyset), Ok(()));
    }

    /// Known defect D4, fixed: a stored response replayed after the wallet learnt of a rotation.
    #[test]
    fn a_replayed_response_with_an_older_key_set_of_the_same_root_is_accepted() {
        let f = Fixture::new();
        let held = rotated(&f, 2, NOW);
        let replayed = response(&f, f.keyset.clone(), &f.root);
        assert_eq!(replayed.verify(&held), Ok(()));
        // Its notes and certificate verify under the key set it carries.
        let ctx = Context {
            keys: &replayed.keyset,
            now: NOW,
            revoked: None,
        };
        for n in &replayed.notes {
            assert_eq!(n.verify(&ctx), Ok(()));
        }
        assert_eq!(replayed.certificate.verify(&ctx), Ok(()));
    }

    #[test]
    fn an_older_key_set_must_be_genuinely_older_and_root_signed() {
        let f = Fixture::new();
        let held = rotated(&f, 3, NOW);
        // A lower version made after the held set: not older.
        let later = IssuerKeySet::sign(
            &f.root,
            2,
            NOW + 60,
            Policy::default(),
            f.keyset.keys.clone(),
        );
        let err = response(&f, later, &f.root)
            .verify(&held)
            .expect_err("made after the held set");
        assert!(
            err.to_string().contains("not older than the one held"),
            "{err}"
        );
        // An older set whose root signature does not check.
        let mut forged = f.keyset.clone();
        forged.signature.0[10] ^= 1;
        let err = response(&f, forged, &f.root)
            .verify(&held)
            .expect_err("forged key set");
        assert_eq!(
            err,
            VerifyError::Crypto(crate::crypto::CryptoError::BadSignature("issuer key set"))
        );
        // Another issuer's older set, in a response signed by that issuer.
        let other = IssuerKeySet::sign(
            &key(9),
            1,
            NOW - 86_400,
            Policy::default(),
            f.keyset.keys.clone(),
        );
        let err = response(&f, other, &key(9))
            .verify(&held)
            .expect_err("another issuer");
        assert!(matches!(err, VerifyError::OtherIssuer(_)), "{err}");
    }

    #[test]
    fn a_predecessor_is_not_a_successor() {
        let f = Fixture::new();
        let held = rotated(&f, 2, NOW);
        assert!(held.check_successor(&f.keyset).is_err());
        assert_eq!(held.check_predecessor(&f.keyset), Ok(()));
        assert!(f.keyset.check_predecessor(&held).is_err());
        assert!(held.check_predecessor(&held).is_err());
    }
}
