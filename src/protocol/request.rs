//! Payment request: a payee-signed code (amount, fresh request id, memo, expiry), small enough for a
//! QR code. See docs/protocol.md#payment-request.

use bech32::{Bech32m, Hrp};

use super::{Context, SignedBody, VERSION, VerifyError, label};
use crate::codec::{Decode, DecodeError, Encode, Put, Reader};
use crate::crypto::{Nonce, PublicKey, SecretKey, Signature};
use crate::money::Fen;
use crate::time::format_rfc3339;

/// Longest memo, in UTF-8 bytes.
pub const MAX_MEMO: u8 = 120;

/// Prefix of the text form.
pub const REQUEST_HRP: Hrp = Hrp::parse_unchecked("tbreq");

/// A signed request for payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRequest {
    /// Who is to be paid (a merchant, till or person).
    pub payee: PublicKey,
    /// Amount; zero means a static code where the payer enters the amount.
    pub amount: Fen,
    /// A fresh random id; a payment binds to it, so it cannot be replayed.
    pub request_id: Nonce,
    /// Free text for the payer (order number, goods).
    pub memo: String,
    /// When made.
    pub created_at: u64,
    /// Not payable after this time.
    pub expires_at: u64,
    /// Payee signature.
    pub signature: Signature,
}

impl SignedBody for PaymentRequest {
    const LABEL: &'static [u8] = label::REQUEST;

    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u8(VERSION);
        self.payee.encode(out);
        out.put_u64(self.amount.0);
        out.put_raw(&self.request_id.0);
        out.put_var8(self.memo.as_bytes());
        out.put_u64(self.created_at);
        out.put_u64(self.expires_at);
    }
}

impl Encode for PaymentRequest {
    fn encode(&self, out: &mut Vec<u8>) {
        self.encode_body(out);
        self.signature.encode(out);
    }
}

impl Decode for PaymentRequest {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.version("payment request", VERSION)?;
        let payee = PublicKey::decode(r, "request payee")?;
        let amount = Fen(r.u64("request amount")?);
        let request_id = Nonce(r.array("request id")?);
        let memo = std::str::from_utf8(r.var8("request memo", MAX_MEMO)?)
            .map_err(|_| DecodeError::InvalidUtf8("request memo"))?
            .to_string();
        let created_at = r.u64("request created at")?;
        let expires_at = r.u64("request expiry")?;
        if expires_at < created_at {
            return Err(DecodeError::InvalidValue(
                "request expires before it is made",
            ));
        }
        let signature = Signature::decode(r, "request signature")?;
        Ok(PaymentRequest {
            payee,
            amount,
            request_id,
            memo,
            created_at,
            expires_at,
            signature,
        })
    }
}

/// Why a request's text form could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Bad characters or checksum.
    #[error("not a valid payment code: {0}")]
    Checksum(String),
    /// A bech32m string with another prefix.
    #[error("not a payment code (prefix {0:?}, expected tbreq1)")]
    WrongPrefix(String),
    /// The payload did not decode.
    #[error("payment code: {0}")]
    Decode(DecodeError),
}

impl From<DecodeError> for CodeError {
    fn from(e: DecodeError) -> Self {
        CodeError::Decode(e)
    }
}

impl PaymentRequest {
    /// Signs a request with the payee's key.
    pub fn sign(
        payee: &SecretKey,
        amount: Fen,
        request_id: Nonce,
        memo: String,
        created_at: u64,
        expires_at: u64,
    ) -> PaymentRequest {
        // The encoding holds at most MAX_MEMO bytes; cut at a character boundary so the struct
        // and its signed bytes always agree (the wallet refuses longer memos before this).
        let mut memo = memo;
        while memo.len() > usize::from(MAX_MEMO) {
            memo.pop();
        }
        let mut q = PaymentRequest {
            payee: payee.public(),
            amount,
            request_id,
            memo,
            created_at,
            expires_at,
            signature: Signature([0; 64]),
        };
        q.signature = payee.sign(&q.signing_bytes());
        q
    }

    /// Checks the payee's signature and expiry.
    pub fn verify(&self, ctx: &Context<'_>) -> Result<(), VerifyError> {
        self.payee
            .verify(&self.signing_bytes(), &self.signature, "payment request")?;
        if ctx.now > self.expires_at {
            return Err(VerifyError::Expired {
                what: "payment request",
                at: format_rfc3339(self.expires_at),
            });
        }
        ctx.check_not_future(self.created_at, "payment request")?;
        Ok(())
    }

    /// The text form for a QR code: `tbreq1...` (bech32m: prefix and checksum).
    pub fn to_code(&self) -> String {
        // Requests are at most ~260 bytes, well inside bech32m's 1023-character code length.
        bech32::encode::<Bech32m>(REQUEST_HRP, &self.to_bytes()).unwrap_or_default()
    }

    /// Reads the text form (either case).
    pub fn from_code(code: &str) -> Result<PaymentRequest, CodeError> {
        let checked = bech32::primitives::decode::CheckedHrpstring::new::<Bech32m>(code.trim())
            .map_err(|e| CodeError::Checksum(e.to_string()))?;
        if checked.hrp() != REQUEST_HRP {
            return Err(CodeError::WrongPrefix(checked.hrp().to_string()));
        }
        let bytes: Vec<u8> = checked.byte_iter().collect();
        Ok(PaymentRequest::decode(&bytes)?)
    }
}
