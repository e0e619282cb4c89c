//! `wallet receive`: verify a payment offline, catch double spends, store the coins, sign a
//! receipt. See docs/protocol.md#receiving.

use std::collections::HashMap;

use super::records::{HistoryEntry, RequestRecord};
use super::{Batch, Store, Wallet, WalletError, keys};
use crate::codec::{Decode, Encode};
use crate::crypto::{Id, PublicKey};
use crate::money::Fen;
use crate::protocol::SignedBody;
use crate::protocol::VerifyError;
use crate::protocol::payment::{Payment, Receipt};
use crate::protocol::proof::DoubleSpendProof;
use crate::protocol::revocation::RevocationList;
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

impl<S: Store> Wallet<S> {
    /// Receives a payment. Refusals change nothing, except that a detected double spend stores
    /// its proof.
    pub fn receive(&self, payment: &Payment, now: u64) -> Result<Received, WalletError> {
        let pid = payment.id();
        if self
            .store()
            .get(&keys::with(keys::RECEIVED, &pid.0))?
            .is_some()
        {
            return Err(WalletError::Replay(format!(
                "payment {} was already received",
                pid.short()
            )));
        }
        let held_keys = self.keyset()?;
        // A newer key set the payer passed on (root-signed by our issuer) is adopted with the
        // payment; anything else it carries is ignored.
        let newer_keys = payment
            .keyset
            .as_ref()
            .filter(|k| {
                k.set_version > held_keys.set_version && held_keys.check_successor(k).is_ok()
            })
            .cloned();
        let keyset = newer_keys.clone().unwrap_or(held_keys);
        let cert = self.require_certificate()?;
        // The newest revocation list: ours, or a newer one the payer passed on.
        let held = self.revocations()?;
        // The carried list is not covered by the payer's signature: one that does not verify
        // against our issuer is ignored (a relay may have damaged it), never trusted.
        let carried = payment
            .revocations
            .as_ref()
            .filter(|l| l.verify(&keyset).is_ok())
            .cloned();
        let newer_carried = match (&held, carried) {
            (Some(h), Some(c)) if c.list_version > h.list_version => Some(c),
            (None, Some(c)) => Some(c),
            _ => None,
        };
        let rl: Option<&RevocationList> = newer_carried.as_ref().or(held.as_ref());
        let ctx = self.context(&keyset, rl, now);
        let verified = payment.verify(&ctx, &self.public(), self.kind())?;

        // Local double-spend detection over every spend in every chain.
        let mut proofs = Vec::new();
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
                if let Some(bytes) = self.store().get(&keys::with(keys::SEEN, &t.input.0))? {
                    let seen = Transfer::decode(&bytes)
                        .map_err(|e| WalletError::Corrupt(format!("seen transfer: {e}")))?;
                    if seen.id() != tid {
                        proofs.push(DoubleSpendProof::new(signer, seen, t.clone()));
                    }
                }
            }
        }
        if let Some(first) = proofs.first() {
            let mut b = Batch::new();
            for p in &proofs {
                b.put(keys::with(keys::PROOF, &p.id().0), p.to_bytes());
            }
            self.store().commit(b)?;
            return Err(WalletError::DoubleSpend {
                payer: first.signer.address(),
                coin: first.coin().short(),
                proof: first.id().short(),
            });
        }
        for c in &verified.coins {
            if self.knows_coin(&c.id)? {
                return Err(WalletError::Replay(format!(
                    "coin {} was already received",
                    c.id.short()
                )));
            }
        }
        // The request it pays, if it is one of ours.
        let req_key = keys::with(keys::REQUEST, &payment.request_id.0);
        let mut request = match self.store().get(&req_key)? {
            Some(v) => Some(RequestRecord::from_json(&v)?),
            None => None,
        };
        if let Some(r) = &request {
            if let Some(by) = &r.paid_by {
                return Err(WalletError::Replay(format!(
                    "request {} was already paid (payment {})",
                    payment.request_id.short(),
                    &by[..8.min(by.len())]
                )));
            }
            if now > r.expires_at {
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
            .checked_add(payment.amount)
            .ok_or_else(|| WalletError::Refused("balance overflows".into()))?;
        if after > cert.limits.balance_max {
            return Err(WalletError::OverOwnLimit(format!(
                "balance would be {after}, above this wallet's class {} cap {}",
                cert.class, cert.limits.balance_max
            )));
        }

        let receipt = Receipt::sign(self.secret(), payment, pid, now);
        let mut b = Batch::new();
        for (coin, info) in payment.coins.iter().zip(&verified.coins) {
            b.put(keys::with(keys::COIN, &info.id.0), coin.to_bytes());
            for hop in &coin.hops {
                b.put(
                    keys::with(keys::SEEN, &hop.transfer.input.0),
                    hop.transfer.to_bytes(),
                );
            }
        }
        b.put(keys::with(keys::RECEIVED, &pid.0), receipt.to_bytes());
        let memo = request.as_ref().map(|r| r.memo.clone());
        if let Some(r) = request.as_mut() {
            r.paid_by = Some(pid.to_hex());
            b.put(req_key, r.to_json()?);
        }
        if let Some(l) = &newer_carried {
            b.put(keys::REVOCATIONS, l.to_bytes());
        }
        if let Some(k) = &newer_keys {
            b.put(keys::KEYSET, k.to_bytes());
        }
        self.push_history(
            &mut b,
            now,
            HistoryEntry {
                amount_fen: Some(payment.amount.0),
                counterparty: Some(verified.payer.address()),
                payment_id: Some(pid.to_hex()),
                request_id: Some(payment.request_id.to_hex()),
                memo: memo.clone().filter(|m| !m.is_empty()),
                ..HistoryEntry::note(
                    "received",
                    format!(
                        "received {} from {} in {} coin(s)",
                        payment.amount,
                        verified.payer.short(),
                        verified.coins.len()
                    ),
                )
            },
        )?;
        crate::failpoint::hit("receive-before-commit");
        self.store().commit(b)?;
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
