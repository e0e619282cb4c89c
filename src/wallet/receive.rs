//! `wallet receive`: verify a payment offline, catch double spends, store the coins, sign a
//! receipt. See docs/protocol.md#receiving.
//!
//! Receiving is staged into a [`Batch`] ([`Wallet::stage_receive`]) so that several payments (a
//! courier's handoff) can be received in one atomic commit; [`Wallet::receive`] stages one and
//! commits it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::records::{HistoryEntry, RequestRecord, SaleRecord};
use super::{Batch, Store, Wallet, WalletError, keys};
use crate::codec::{Decode, Encode};
use crate::crypto::{Id, Nonce, PublicKey};
use crate::money::Fen;
use crate::protocol::SignedBody;
use crate::protocol::VerifyError;
use crate::protocol::keyset::IssuerKeySet;
use crate::protocol::payment::{Payment, Receipt};
use crate::protocol::proof::DoubleSpendProof;
use crate::protocol::revocation::RevocationList;
use crate::protocol::sync::Confirmation;
use crate::protocol::transfer::Transfer;
use crate::time::format_rfc3339;

/// What receiving a payment did.
#[derive(Debug, Clone)]
pub struct Received {
    /// The payment id.
    pub payment_id: Id,
    /// Amount received.
    pub amount: Fen,
    /// The payer.
    pub payer: PublicKey,
    /// The receipt to hand back.
    pub receipt: Receipt,
    /// The memo of the request it paid, if it paid one of ours.
    pub memo: Option<String>,
}

/// What else to record with a received payment.
#[derive(Debug, Clone, Default)]
pub struct ReceiveNote {
    /// The issuer's confirmation, for a payment settled online (already checked by the caller).
    pub confirmation: Option<Confirmation>,
    /// For a refund this wallet receives: the payment refunded and the refund's number.
    pub refund_of: Option<(Id, u32)>,
    /// For a cash-on-delivery payment: the merchant's order number.
    pub order_id: Option<String>,
    /// When the payment was taken, if earlier than now (a courier's collection): the request's
    /// expiry is checked against this time.
    pub paid_at: Option<u64>,
}

/// Receiving state staged but not yet committed, so that several payments in one batch see each
/// other.
#[derive(Default)]
pub(crate) struct Staged {
    seen: HashMap<Id, Transfer>,
    received: HashSet<Id>,
    coins: HashSet<Id>,
    requests: HashMap<Nonce, RequestRecord>,
    added: Fen,
    keyset: Option<Arc<IssuerKeySet>>,
    revocations: Option<Arc<RevocationList>>,
}

impl<S: Store> Wallet<S> {
    /// Receives a payment. Refusals change nothing, except that a detected double spend stores
    /// its proof.
    pub fn receive(&self, payment: &Payment, now: u64) -> Result<Received, WalletError> {
        self.receive_noted(payment, ReceiveNote::default(), now)
    }

    /// Receives a payment and records `note` with it (an online confirmation, a refund).
    pub fn receive_noted(
        &self,
        payment: &Payment,
        note: ReceiveNote,
        now: u64,
    ) -> Result<Received, WalletError> {
        let mut b = Batch::new();
        let mut st = Staged::default();
        let mut proofs = Vec::new();
        match self.stage_receive(payment, note, now, &mut st, &mut b, &mut proofs) {
            Ok(got) => {
                crate::failpoint::hit("receive-before-commit");
                self.store().commit(b)?;
                Ok(got)
            }
            Err(e) => {
                self.commit_proofs(&proofs)?;
                Err(e)
            }
        }
    }

    /// Stores double-spend proofs on their own (a refused payment's one lasting effect).
    pub(crate) fn commit_proofs(&self, proofs: &[DoubleSpendProof]) -> Result<(), WalletError> {
        if proofs.is_empty() {
            return Ok(());
        }
        let mut b = Batch::new();
        for p in proofs {
            b.put(keys::with(keys::PROOF, &p.id().0), p.to_bytes());
        }
        self.store().commit(b)?;
        Ok(())
    }

    /// Verifies `payment` and adds its receipt, coins, seen transfers, request binding, sale record
    /// and history to `b` (nothing is committed). A detected double spend fills `proofs` and is
    /// refused; any refusal leaves `b` and `st` as they were.
    pub(crate) fn stage_receive(
        &self,
        payment: &Payment,
        note: ReceiveNote,
        now: u64,
        st: &mut Staged,
        b: &mut Batch,
        proofs: &mut Vec<DoubleSpendProof>,
    ) -> Result<Received, WalletError> {
        let pid = payment.id();
        if st.received.contains(&pid)
            || self
                .store()
                .get(&keys::with(keys::RECEIVED, &pid.0))?
                .is_some()
        {
            return Err(WalletError::Replay(format!(
                "payment {} was already received",
                pid.short()
            )));
        }
        let held_keys = match &st.keyset {
            Some(k) => k.clone(),
            None => self.keyset_shared()?,
        };
        // A newer key set the payer passed on (root-signed by our issuer) is adopted with the
        // payment; anything else it carries is ignored.
        let newer_keys = payment.keyset.as_ref().filter(|k| {
            k.set_version > held_keys.set_version && held_keys.check_successor(k).is_ok()
        });
        let keyset: &IssuerKeySet = newer_keys.unwrap_or(&held_keys);
        let cert = self.require_certificate()?;
        // The newest revocation list: ours, or a newer one the payer passed on.
        let held = match &st.revocations {
            Some(l) => Some(l.clone()),
            None => self.revocations_shared()?,
        };
        // The carried list is not covered by the payer's signature: one that does not verify
        // against our issuer is ignored (a relay may have damaged it), never trusted. Only a list
        // newer than the one held would be used, so only such a list is checked.
        let newer_carried = payment
            .revocations
            .as_ref()
            .filter(|c| {
                held.as_ref()
                    .is_none_or(|h| c.list_version > h.list_version)
            })
            .filter(|l| l.verify(keyset).is_ok());
        let rl: Option<&RevocationList> = newer_carried.or(held.as_deref());
        let ctx = self.context(keyset, rl, now);
        let verified = payment.verify(&ctx, &self.public(), self.kind())?;

        // Local double-spend detection over every spend in every chain.
        let signers: HashMap<Id, PublicKey> =
            verified.links.iter().map(|l| (l.input, l.signer)).collect();
        let mut within: HashMap<Id, &Transfer> = HashMap::new();
        for coin in &payment.coins {
            for hop in &coin.hops {
                let t = &hop.transfer;
                let tid = t.id();
                let signer = signers.get(&t.input).copied().unwrap_or(verified.payer);
                if let Some(other) = within.get(&t.input) {
                    if other.id() != tid {
                        proofs.push(DoubleSpendProof::new(signer, (*other).clone(), t.clone()));
                    }
                    continue;
                }
                within.insert(t.input, t);
                let seen = match st.seen.get(&t.input) {
                    Some(s) => Some(s.clone()),
                    None => match self.store().get(&keys::with(keys::SEEN, &t.input.0))? {
                        Some(bytes) => Some(
                            Transfer::decode(&bytes)
                                .map_err(|e| WalletError::Corrupt(format!("seen transfer: {e}")))?,
                        ),
                        None => None,
                    },
                };
                if let Some(seen) = seen
                    && seen.id() != tid
                {
                    proofs.push(DoubleSpendProof::new(signer, seen, t.clone()));
                }
            }
        }
        if let Some(first) = proofs.first() {
            return Err(WalletError::DoubleSpend {
                payer: first.signer().address(),
                coin: first.coin().short(),
                proof: first.id().short(),
            });
        }
        for c in &verified.coins {
            if st.coins.contains(&c.id) || self.knows_coin(&c.id)? {
                return Err(WalletError::Replay(format!(
                    "coin {} was already received",
                    c.id.short()
                )));
            }
        }
        // The request it pays, if it is one of ours.
        let req_key = keys::with(keys::REQUEST, &payment.request_id.0);
        let mut request = match st.requests.get(&payment.request_id) {
            Some(r) => Some(r.clone()),
            None => match self.store().get(&req_key)? {
                Some(v) => Some(RequestRecord::from_stored(&v)?),
                None => None,
            },
        };
        if let Some(r) = &request {
            if let Some(by) = &r.paid_by {
                return Err(WalletError::Replay(format!(
                    "request {} was already paid (payment {})",
                    payment.request_id.short(),
                    &by[..8.min(by.len())]
                )));
            }
            if note.paid_at.unwrap_or(now).min(now) > r.expires_at {
                return Err(WalletError::Verify(VerifyError::Expired {
                    what: "payment request",
                    at: format_rfc3339(r.expires_at),
                }));
            }
            if r.amount_fen != 0 && r.amount_fen != payment.amount.0 {
                return Err(WalletError::Refused(format!(
                    "payment of {} does not match the request for {}",
                    payment.amount,
                    Fen(r.amount_fen)
                )));
            }
        }
        let balance = Fen(self.balance(now)?.total_fen);
        let after = balance
            .checked_add(st.added)
            .and_then(|v| v.checked_add(payment.amount))
            .ok_or_else(|| WalletError::Refused("balance overflows".into()))?;
        if after > cert.limits.balance_max {
            return Err(WalletError::OverOwnLimit(format!(
                "balance would be {after}, above this wallet's class {} cap {}",
                cert.class, cert.limits.balance_max
            )));
        }

        // Accepted: stage everything.
        let receipt = Receipt::sign(self.secret(), payment, pid, now);
        for (coin, info) in payment.coins.iter().zip(&verified.coins) {
            b.put(keys::with(keys::COIN, &info.id.0), coin.to_bytes());
            st.coins.insert(info.id);
            for hop in &coin.hops {
                b.put(
                    keys::with(keys::SEEN, &hop.transfer.input.0),
                    hop.transfer.to_bytes(),
                );
                st.seen.insert(hop.transfer.input, hop.transfer.clone());
            }
        }
        b.put(keys::with(keys::RECEIVED, &pid.0), receipt.to_bytes());
        st.received.insert(pid);
        st.added = st.added.checked_add(payment.amount).unwrap_or(st.added);
        let memo = request.as_ref().map(|r| r.memo.clone());
        if let Some(r) = request.as_mut() {
            if r.amount_fen == 0 {
                // A static code takes any number of payments.
                r.paid.push(pid.to_hex());
            } else {
                r.paid_by = Some(pid.to_hex());
                // A dynamic code takes one payment: it is never shown again (docs/adr/0006).
                r.code.clear();
            }
            b.put(req_key, r.to_stored()?);
            st.requests.insert(payment.request_id, r.clone());
        }
        if let Some(l) = newer_carried {
            b.put(keys::REVOCATIONS, l.to_bytes());
            st.revocations = Some(Arc::new(l.clone()));
        }
        if let Some(k) = newer_keys {
            b.put(keys::KEYSET, k.to_bytes());
            st.keyset = Some(Arc::new(k.clone()));
        }
        let sale = SaleRecord {
            payment_id: pid.to_hex(),
            payer: verified.payer.address(),
            amount_fen: payment.amount.0,
            request_id: payment.request_id.to_hex(),
            time: now,
            coins: verified.coins.iter().map(|c| c.id.to_hex()).collect(),
            confirmation_hex: note
                .confirmation
                .as_ref()
                .map(|c| hex::encode(c.to_bytes())),
            refunded_fen: 0,
            refunds: Vec::new(),
            order_id: note.order_id.clone(),
        };
        b.put(keys::with(keys::SALE, &pid.0), sale.to_json()?);
        let memo_line = match (&note.refund_of, &memo) {
            (Some((orig, n)), _) => Some(format!("refund {n} of payment {}", orig.short())),
            (None, Some(m)) if !m.is_empty() => Some(m.clone()),
            _ => note
                .order_id
                .as_ref()
                .map(|o| format!("delivery order {o}")),
        };
        self.push_history(
            b,
            now,
            HistoryEntry {
                amount_fen: Some(payment.amount.0),
                counterparty: Some(verified.payer.address()),
                payment_id: Some(pid.to_hex()),
                request_id: Some(payment.request_id.to_hex()),
                memo: memo_line,
                ..HistoryEntry::note(
                    "received",
                    format!(
                        "received {} from {} in {} coin(s){}",
                        payment.amount,
                        verified.payer.short(),
                        verified.coins.len(),
                        if note.confirmation.is_some() {
                            ", settled online"
                        } else {
                            ""
                        }
                    ),
                )
            },
        )?;
        Ok(Received {
            payment_id: pid,
            amount: payment.amount,
            payer: verified.payer,
            receipt,
            memo,
        })
    }

    /// The receipt already given for a payment (to write it again).
    pub fn stored_receipt(&self, payment_id: &Id) -> Result<Option<Receipt>, WalletError> {
        self.load(&keys::with(keys::RECEIVED, &payment_id.0), "receipt")
    }
}
