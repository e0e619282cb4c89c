//! `wallet pay`: build, sign and commit a payment. See docs/protocol.md#payment.
//!
//! The coins are marked spent, the change stored and the payment put in the outbox in one durable
//! commit before the payment is returned; only then may the caller write the payment file.

use rand::{CryptoRng, Rng};

use super::records::{CoinView, HistoryEntry, OutboxEntry};
use super::{Batch, Store, Wallet, WalletError, keys};
use crate::codec::Encode;
use crate::crypto::{Nonce, PublicKey, Signature};
use crate::money::Fen;
use crate::protocol::SignedBody;
use crate::protocol::coin::Coin;
use crate::protocol::keyset::IssuerKeySet;
use crate::protocol::note::Earmark;
use crate::protocol::payment::{MAX_PAYMENT_COINS, Payment};
use crate::protocol::request::PaymentRequest;
use crate::protocol::transfer::{Output, Transfer};
use crate::time::format_rfc3339;

/// Whom to pay.
#[derive(Debug, Clone)]
pub enum PayTarget {
    /// A payee's signed request; `amount` is needed for a static code (request amount zero).
    Request {
        /// The request.
        request: PaymentRequest,
        /// The amount, for static codes.
        amount: Option<Fen>,
    },
    /// A wallet address and an amount (a fresh request id is drawn).
    Direct {
        /// Payee.
        to: PublicKey,
        /// Amount.
        amount: Fen,
    },
}

/// Chooses coins to cover `amount`: restricted coins first (when allowed), then the smallest single
/// coin that covers the rest, else largest first. Returns indexes into `coins` (value, restricted).
pub fn select_coins(
    coins: &[(Fen, bool)],
    amount: Fen,
    allow_restricted: bool,
) -> Option<Vec<usize>> {
    let mut chosen = Vec::new();
    let mut covered = Fen::ZERO;
    if allow_restricted {
        let mut r: Vec<usize> = (0..coins.len()).filter(|&i| coins[i].1).collect();
        r.sort_by(|&a, &b| coins[b].0.cmp(&coins[a].0).then(a.cmp(&b)));
        for i in r {
            if covered >= amount {
                break;
            }
            covered = covered.checked_add(coins[i].0)?;
            chosen.push(i);
        }
    }
    if covered < amount {
        let rest = amount.checked_sub(covered)?;
        let mut plain: Vec<usize> = (0..coins.len()).filter(|&i| !coins[i].1).collect();
        plain.sort_by(|&a, &b| coins[b].0.cmp(&coins[a].0).then(a.cmp(&b)));
        if let Some(&single) = plain.iter().rev().find(|&&i| coins[i].0 >= rest) {
            chosen.push(single);
            covered = covered.checked_add(coins[single].0)?;
        } else {
            for i in plain {
                if covered >= amount {
                    break;
                }
                covered = covered.checked_add(coins[i].0)?;
                chosen.push(i);
            }
        }
    }
    (covered >= amount && chosen.len() <= usize::from(MAX_PAYMENT_COINS)).then_some(chosen)
}

impl<S: Store> Wallet<S> {
    /// Pays `target`: checks this wallet's own limits, selects coins, signs one transfer per coin
    /// (payee output first, change back to this wallet), signs the payment and commits.
    pub fn pay<R: Rng + CryptoRng + ?Sized>(
        &self,
        target: PayTarget,
        now: u64,
        rng: &mut R,
    ) -> Result<Payment, WalletError> {
        self.pay_with(target, None, None, now, rng, |_, _| Ok(()))
    }

    /// Like [`Wallet::pay`], with a direct payment bound to `bound` instead of a fresh request id
    /// (refunds), a memo for the history, and `extra` adding its own records to the same commit.
    pub(crate) fn pay_with<R, F>(
        &self,
        target: PayTarget,
        bound: Option<Nonce>,
        memo_note: Option<String>,
        now: u64,
        rng: &mut R,
        extra: F,
    ) -> Result<Payment, WalletError>
    where
        R: Rng + CryptoRng + ?Sized,
        F: FnOnce(&Payment, &mut Batch) -> Result<(), WalletError>,
    {
        if let Some(p) = self.pending_sync()? {
            // The issuer may collect, for this wallet, coins it receives meanwhile: paying them on
            // before the answer is applied could spend them twice.
            return Err(WalletError::Refused(format!(
                "sync {} is pending: finish it (`wallet sync`, or `wallet sync --apply RESPONSE`) before paying",
                p.sync_id.short()
            )));
        }
        let keyset = self.keyset_shared()?;
        let cert = self.require_certificate()?;
        let rl = self.revocations()?;
        let (payee, amount, request_id, memo) = match &target {
            PayTarget::Request { request, amount } => {
                request.verify(&self.context(&keyset, None, now))?;
                let amount = match (request.amount, amount) {
                    (Fen(0), None) => {
                        return Err(WalletError::Refused(
                            "this is a static code: give the amount with --amount".into(),
                        ));
                    }
                    (Fen(0), Some(a)) => *a,
                    (fixed, Some(a)) if *a != fixed => {
                        return Err(WalletError::Refused(format!(
                            "the request is for {fixed}, not {a}"
                        )));
                    }
                    (fixed, _) => fixed,
                };
                // A dynamic code is paid once; a static code (amount 0) as often as the payer likes.
                if request.amount != Fen::ZERO && self.outbox_has_request(&request.request_id)? {
                    return Err(WalletError::Replay(format!(
                        "request {} was already paid by this wallet",
                        request.request_id.short()
                    )));
                }
                (
                    request.payee,
                    amount,
                    request.request_id,
                    Some(request.memo.clone()),
                )
            }
            PayTarget::Direct { to, amount } => (
                *to,
                *amount,
                bound.unwrap_or_else(|| Nonce::random(rng)),
                memo_note.clone(),
            ),
        };
        if amount == Fen::ZERO {
            return Err(WalletError::Refused("amount must be above zero".into()));
        }
        if payee == self.public() {
            return Err(WalletError::Refused("cannot pay this wallet itself".into()));
        }
        // This wallet's own limits.
        if now > cert.expires_at {
            return Err(WalletError::OverOwnLimit(format!(
                "certificate expired at {}: sync with the issuer to renew it",
                format_rfc3339(cert.expires_at)
            )));
        }
        if rl.as_ref().is_some_and(|l| l.is_revoked(&self.public())) {
            return Err(WalletError::Refused(
                "this wallet is revoked by the issuer".into(),
            ));
        }
        let lim = cert.limits;
        if amount > lim.per_payment_max {
            return Err(WalletError::OverOwnLimit(format!(
                "{amount} is above the class {} per-payment limit {}",
                cert.class, lim.per_payment_max
            )));
        }
        let spent = self.offline_spent()?;
        let new_spent = spent
            .checked_add(amount)
            .ok_or_else(|| WalletError::Refused("amount overflows".into()))?;
        if new_spent > lim.offline_total_max {
            return Err(WalletError::OverOwnLimit(format!(
                "offline total would be {new_spent}, above the class {} limit {} (sync to reset)",
                cert.class, lim.offline_total_max
            )));
        }
        let counter = self.counter()? + 1;
        if counter - cert.counter_base > u64::from(lim.offline_count_max) {
            return Err(WalletError::OverOwnLimit(format!(
                "{} offline payments already made, the class {} limit (sync to reset)",
                lim.offline_count_max, cert.class
            )));
        }
        // Coins.
        let coins: Vec<Coin> = self
            .coins()?
            .into_iter()
            .filter(|c| CoinView::of(c, &keyset, now).spendable)
            .collect();
        let candidates: Vec<(Fen, bool)> = coins
            .iter()
            .map(|c| {
                (
                    c.value(),
                    matches!(c.note.earmark, Earmark::MerchantsOnly { .. }),
                )
            })
            .collect();
        let allow_restricted = matches!(target, PayTarget::Request { .. });
        let usable: Fen = Fen(candidates
            .iter()
            .filter(|(_, r)| allow_restricted || !r)
            .map(|(v, _)| v.0)
            .sum());
        let chosen = select_coins(&candidates, amount, allow_restricted).ok_or(
            WalletError::InsufficientFunds {
                have: usable,
                need: amount,
            },
        )?;

        // Dated now, or just after the newest coin if this device's clock is behind the one that
        // signed it (a payment dated before its coins would be refused by every receiver).
        let when = chosen
            .iter()
            .map(|&i| coins[i].last_time())
            .max()
            .unwrap_or(now)
            .max(now);
        let mut remaining = amount;
        let mut paid_coins = Vec::with_capacity(chosen.len());
        let mut b = Batch::new();
        for &i in &chosen {
            let coin = &coins[i];
            let value = coin.value();
            let part = value.min(remaining);
            remaining = remaining.checked_sub(part).unwrap_or(Fen::ZERO);
            let mut outputs = vec![Output {
                holder: payee,
                value: part,
            }];
            let change = value.checked_sub(part).unwrap_or(Fen::ZERO);
            if change > Fen::ZERO {
                outputs.push(Output {
                    holder: self.public(),
                    value: change,
                });
            }
            let input = coin.id();
            let t = Transfer::sign(self.secret(), input, outputs, counter, when, request_id);
            b.delete(keys::with(keys::COIN, &input.0));
            b.put(keys::with(keys::SEEN, &input.0), t.to_bytes());
            if change > Fen::ZERO {
                let change_coin = coin.extended(t.clone(), 1);
                b.put(
                    keys::with(keys::COIN, &change_coin.id().0),
                    change_coin.to_bytes(),
                );
            }
            paid_coins.push((input, coin.extended(t, 0)));
        }
        let payment = Payment {
            certificate: cert.clone(),
            payee,
            request_id,
            amount,
            counter,
            offline_spent: new_spent,
            time: when,
            coins: paid_coins.iter().map(|(_, c)| c.clone()).collect(),
            signature: Signature([0; 64]),
            revocations: rl,
            // After a rotation, pass the key set on (as the revocation list is) so receivers that
            // have not synced yet can check notes and certificates under the new key.
            keyset: (keyset.set_version > 1).then(|| IssuerKeySet::clone(&keyset)),
        }
        .signed(self.secret());
        let pid = payment.id();
        for (input, _) in &paid_coins {
            b.put(keys::with(keys::SPENT, &input.0), pid.0.to_vec());
        }
        b.put(keys::COUNTER, counter.to_be_bytes().to_vec());
        b.put(keys::OFFLINE_SPENT, new_spent.0.to_be_bytes().to_vec());
        b.put(
            keys::with(keys::OUTBOX, &pid.0),
            OutboxEntry::stored_of(&payment, &pid)?,
        );
        self.push_history(
            &mut b,
            now,
            HistoryEntry {
                amount_fen: Some(amount.0),
                counterparty: Some(payee.address()),
                payment_id: Some(pid.to_hex()),
                request_id: Some(request_id.to_hex()),
                memo: memo.filter(|m| !m.is_empty()),
                ..HistoryEntry::note(
                    "paid",
                    format!(
                        "paid {amount} to {} with {} coin(s)",
                        payee.short(),
                        chosen.len()
                    ),
                )
            },
        )?;
        extra(&payment, &mut b)?;
        crate::failpoint::hit("pay-before-commit");
        self.store().commit(b)?;
        Ok(payment)
    }

    fn outbox_has_request(&self, request_id: &Nonce) -> Result<bool, WalletError> {
        let hex = request_id.to_hex();
        for (_, v) in self.store().scan_prefix(keys::OUTBOX)? {
            if OutboxEntry::from_stored(&v)?.request_id == hex {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_prefers_one_covering_coin() {
        let coins = [(Fen(5000), false), (Fen(2000), false), (Fen(10000), false)];
        assert_eq!(select_coins(&coins, Fen(1500), false), Some(vec![1]));
        assert_eq!(select_coins(&coins, Fen(6000), false), Some(vec![2]));
        assert_eq!(select_coins(&coins, Fen(16000), false), Some(vec![2, 0, 1]));
        assert_eq!(select_coins(&coins, Fen(17001), false), None);
    }

    #[test]
    fn restricted_coins_go_first_when_allowed() {
        let coins = [(Fen(5000), false), (Fen(2000), true)];
        assert_eq!(select_coins(&coins, Fen(1000), true), Some(vec![1]));
        assert_eq!(select_coins(&coins, Fen(3000), true), Some(vec![1, 0]));
        assert_eq!(select_coins(&coins, Fen(1000), false), Some(vec![0]));
        assert_eq!(select_coins(&coins, Fen(6000), false), None);
    }
}
