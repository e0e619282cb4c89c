//! Payment and receipt. See docs/protocol.md#payment.
//!
//! A payment carries the payer's certificate, one or more coins each ending in a new transfer made
//! for this payment, the request id it pays, and the payer's counter; the payer signs it all. The
//! receiver checks it offline and answers with a signed receipt.

use std::collections::HashSet;

use super::certificate::{Certificate, WalletKind};
use super::coin::{Coin, CoinInfo, Link, SigCheck, verify_signatures};
use super::keyset::IssuerKeySet;
use super::note::Earmark;
use super::revocation::RevocationList;
use super::{Context, SignedBody, VERSION, VerifyError, label};
use crate::codec::{Decode, DecodeError, Encode, Put, Reader};
use crate::crypto::{Id, Nonce, PublicKey, SecretKey, Signature};
use crate::money::Fen;

/// Most coins one payment may carry.
pub const MAX_PAYMENT_COINS: u8 = 32;

/// A payment from one wallet to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// The payer's certificate.
    pub certificate: Certificate,
    /// The payee's key.
    pub payee: PublicKey,
    /// The request this pays.
    pub request_id: Nonce,
    /// Total paid to the payee.
    pub amount: Fen,
    /// The payer's counter, one more than its previous payment.
    pub counter: u64,
    /// The payer's cumulative offline spend since its certificate, including this payment.
    pub offline_spent: Fen,
    /// When made (payer's clock).
    pub time: u64,
    /// The coins, each ending in this payment's transfer and following the payee's output.
    pub coins: Vec<Coin>,
    /// Payer signature over all of the above.
    pub signature: Signature,
    /// The newest revocation list the payer holds, passed on (issuer-signed, not covered by the
    /// payer's signature).
    pub revocations: Option<RevocationList>,
    /// The payer's issuer key set when it is newer than the first (after a key rotation), passed
    /// on so a receiver that has not synced can check notes and certificates under the new key
    /// (root-signed, not covered by the payer's signature).
    pub keyset: Option<IssuerKeySet>,
}

impl SignedBody for Payment {
    const LABEL: &'static [u8] = label::PAYMENT;

    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u8(VERSION);
        self.certificate.encode(out);
        self.payee.encode(out);
        out.put_raw(&self.request_id.0);
        out.put_u64(self.amount.0);
        out.put_u64(self.counter);
        out.put_u64(self.offline_spent.0);
        out.put_u64(self.time);
        out.put_u8(self.coins.len() as u8);
        for c in &self.coins {
            c.encode(out);
        }
    }
}

impl Encode for Payment {
    fn encode(&self, out: &mut Vec<u8>) {
        self.encode_body(out);
        self.signature.encode(out);
        match &self.revocations {
            None => out.put_u8(0),
            Some(l) => {
                out.put_u8(1);
                l.encode(out);
            }
        }
        match &self.keyset {
            None => out.put_u8(0),
            Some(k) => {
                out.put_u8(1);
                k.encode(out);
            }
        }
    }
}

impl Decode for Payment {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.version("payment", VERSION)?;
        let certificate = Certificate::decode_from(r)?;
        let payee = PublicKey::decode(r, "payee")?;
        let request_id = Nonce(r.array("payment request id")?);
        let amount = Fen(r.u64("payment amount")?);
        if amount.0 == 0 {
            return Err(DecodeError::InvalidValue("zero payment amount"));
        }
        let counter = r.u64("payment counter")?;
        let offline_spent = Fen(r.u64("offline spent")?);
        let time = r.u64("payment time")?;
        let n = r.count8("payment coins", 1, MAX_PAYMENT_COINS)?;
        let mut coins = Vec::with_capacity(n);
        for _ in 0..n {
            coins.push(Coin::decode_from(r)?);
        }
        let signature = Signature::decode(r, "payment signature")?;
        let revocations = if r.option_tag("payment revocation list")? {
            Some(RevocationList::decode_from(r)?)
        } else {
            None
        };
        let keyset = if r.option_tag("payment key set")? {
            Some(IssuerKeySet::decode_from(r)?)
        } else {
            None
        };
        Ok(Payment {
            certificate,
            payee,
            request_id,
            amount,
            counter,
            offline_spent,
            time,
            coins,
            signature,
            revocations,
            keyset,
        })
    }
}

/// What a verified payment amounts to.
#[derive(Debug, Clone)]
pub struct VerifiedPayment {
    /// The payment id.
    pub id: Id,
    /// The payer's key.
    pub payer: PublicKey,
    /// Total to the payee.
    pub amount: Fen,
    /// The coins the payee now holds.
    pub coins: Vec<CoinInfo>,
    /// Every spend in every coin's chain, for double-spend detection.
    pub links: Vec<Link>,
}

impl Payment {
    /// The payer's key.
    pub fn payer(&self) -> PublicKey {
        self.certificate.wallet
    }

    /// Signs the payment fields with the payer's key (the signature field is replaced).
    pub fn signed(mut self, payer: &SecretKey) -> Payment {
        self.signature = payer.sign(&self.signing_bytes());
        self
    }

    /// Everything but the final signature checks; queues those in `checks`.
    ///
    /// `receiver` is the wallet checking the payment and `receiver_kind` its kind (red-envelope
    /// money may be paid by its winner only to merchants and tills).
    pub fn check_structure(
        &self,
        ctx: &Context<'_>,
        receiver: &PublicKey,
        receiver_kind: WalletKind,
        checks: &mut Vec<SigCheck>,
    ) -> Result<VerifiedPayment, VerifyError> {
        let payer = self.payer();
        let cert = &self.certificate;
        let entry =
            ctx.keys
                .check_signing_key(cert.key_id, cert.issued_at, ctx.now, "certificate")?;
        checks.push(SigCheck {
            key: entry.key,
            msg: cert.signing_bytes(),
            sig: cert.signature,
            what: "certificate",
            issuer: true,
        });
        if ctx.now > cert.expires_at {
            return Err(VerifyError::Expired {
                what: "payer's certificate",
                at: crate::time::format_rfc3339(cert.expires_at),
            });
        }
        ctx.check_not_future(cert.issued_at, "payer's certificate")?;
        ctx.check_not_revoked(&payer)?;
        if self.payee != *receiver {
            return Err(VerifyError::Mismatch(format!(
                "payment is for {}, not this wallet ({})",
                self.payee.address(),
                receiver.address()
            )));
        }
        if self.payee == payer {
            return Err(VerifyError::BadPayment(
                "payer and payee are the same wallet".into(),
            ));
        }
        ctx.check_not_future(self.time, "payment")?;
        // Limits from the payer's certificate.
        let lim = &cert.limits;
        if self.amount > lim.per_payment_max {
            return Err(over("payment", self.amount, lim.per_payment_max));
        }
        if self.offline_spent < self.amount {
            return Err(VerifyError::BadPayment(
                "offline total is less than this payment".into(),
            ));
        }
        if self.offline_spent > lim.offline_total_max {
            return Err(over(
                "offline total",
                self.offline_spent,
                lim.offline_total_max,
            ));
        }
        let count = self
            .counter
            .checked_sub(cert.counter_base)
            .filter(|&c| c > 0)
            .ok_or_else(|| {
                VerifyError::BadPayment(
                    "payment counter is not after the certificate's counter base".into(),
                )
            })?;
        if count > u64::from(lim.offline_count_max) {
            return Err(VerifyError::OverLimit {
                what: "offline payment count",
                amount: count.to_string(),
                limit: lim.offline_count_max.to_string(),
            });
        }
        // Coins.
        let mut to_payee = Fen::ZERO;
        let mut inputs = HashSet::new();
        let mut coins = Vec::with_capacity(self.coins.len());
        let mut links = Vec::new();
        for coin in &self.coins {
            let last = coin.hops.last().ok_or_else(|| {
                VerifyError::BadPayment("a coin carries no transfer for this payment".into())
            })?;
            let info = coin.check_structure(ctx, checks)?;
            let spend = info
                .links
                .last()
                .ok_or_else(|| VerifyError::BadPayment("coin without transfer".into()))?;
            if spend.signer != payer {
                return Err(VerifyError::BadPayment(
                    "a coin is not the payer's to spend".into(),
                ));
            }
            if !inputs.insert(spend.input) {
                return Err(VerifyError::BadPayment(
                    "the same coin appears twice".into(),
                ));
            }
            let t = &last.transfer;
            if t.counter != self.counter || t.request_id != self.request_id || t.time != self.time {
                return Err(VerifyError::BadPayment(
                    "a transfer is not bound to this payment".into(),
                ));
            }
            let (mut payee_outs, mut payer_outs) = (0, 0);
            for o in &t.outputs {
                if o.holder == self.payee {
                    payee_outs += 1;
                    to_payee = to_payee
                        .checked_add(o.value)
                        .ok_or_else(|| VerifyError::BadPayment("overflow".into()))?;
                } else if o.holder == payer {
                    payer_outs += 1;
                } else {
                    return Err(VerifyError::BadPayment(
                        "a transfer pays a third wallet".into(),
                    ));
                }
            }
            if payee_outs != 1 || payer_outs > 1 || info.holder != self.payee {
                return Err(VerifyError::BadPayment(
                    "each transfer must have one output to the payee (followed) and at most one change output".into(),
                ));
            }
            if let Earmark::MerchantsOnly { .. } = info.earmark
                && payer == coin.note.holder
                && !receiver_kind.is_merchant()
            {
                return Err(VerifyError::Earmark(
                    "red-envelope money may be paid only to merchants".into(),
                ));
            }
            for l in &info.links {
                ctx.check_not_revoked(&l.signer)?;
            }
            links.extend(info.links.iter().copied());
            coins.push(info);
        }
        if to_payee != self.amount {
            return Err(VerifyError::BadPayment(format!(
                "coins pay {to_payee} to the payee but the payment says {}",
                self.amount
            )));
        }
        checks.push(SigCheck {
            key: payer,
            msg: self.signing_bytes(),
            sig: self.signature,
            what: "payment",
            issuer: false,
        });
        Ok(VerifiedPayment {
            id: self.id(),
            payer,
            amount: self.amount,
            coins,
            links,
        })
    }

    /// Full offline verification by the receiving wallet.
    pub fn verify(
        &self,
        ctx: &Context<'_>,
        receiver: &PublicKey,
        receiver_kind: WalletKind,
    ) -> Result<VerifiedPayment, VerifyError> {
        let mut checks = Vec::new();
        let v = self.check_structure(ctx, receiver, receiver_kind, &mut checks)?;
        verify_signatures(&checks)?;
        Ok(v)
    }
}

fn over(what: &'static str, amount: Fen, limit: Fen) -> VerifyError {
    VerifyError::OverLimit {
        what,
        amount: amount.to_string(),
        limit: limit.to_string(),
    }
}

/// The payee's signed acknowledgement of a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The payment acknowledged.
    pub payment_id: Id,
    /// The payer.
    pub payer: PublicKey,
    /// The payee, who signs.
    pub payee: PublicKey,
    /// Amount received.
    pub amount: Fen,
    /// The request paid.
    pub request_id: Nonce,
    /// When received.
    pub time: u64,
    /// Payee signature.
    pub signature: Signature,
}

impl SignedBody for Receipt {
    const LABEL: &'static [u8] = label::RECEIPT;

    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u8(VERSION);
        self.payment_id.encode(out);
        self.payer.encode(out);
        self.payee.encode(out);
        out.put_u64(self.amount.0);
        out.put_raw(&self.request_id.0);
        out.put_u64(self.time);
    }
}

impl Encode for Receipt {
    fn encode(&self, out: &mut Vec<u8>) {
        self.encode_body(out);
        self.signature.encode(out);
    }
}

impl Decode for Receipt {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.version("receipt", VERSION)?;
        Ok(Receipt {
            payment_id: Id::decode(r, "receipt payment id")?,
            payer: PublicKey::decode(r, "receipt payer")?,
            payee: PublicKey::decode(r, "receipt payee")?,
            amount: Fen(r.u64("receipt amount")?),
            request_id: Nonce(r.array("receipt request id")?),
            time: r.u64("receipt time")?,
            signature: Signature::decode(r, "receipt signature")?,
        })
    }
}

impl Receipt {
    /// Signs a receipt for a verified payment.
    pub fn sign(payee: &SecretKey, payment: &Payment, payment_id: Id, time: u64) -> Receipt {
        let mut r = Receipt {
            payment_id,
            payer: payment.payer(),
            payee: payee.public(),
            amount: payment.amount,
            request_id: payment.request_id,
            time,
            signature: Signature([0; 64]),
        };
        r.signature = payee.sign(&r.signing_bytes());
        r
    }

    /// Checks the payee's signature.
    pub fn verify(&self) -> Result<(), VerifyError> {
        self.payee
            .verify(&self.signing_bytes(), &self.signature, "receipt")?;
        Ok(())
    }
}
