//! Till authorization: the merchant's signed word that a till key belongs to it. See
//! docs/protocol.md#till-authorization.
//!
//! A till registers like any wallet (its registration names its merchant); the issuer certifies a
//! till only with this authorization, signed by the merchant it names, so a stranger cannot
//! register a till in a merchant's name.

use super::certificate::{Registration, WalletKind};
use super::{SignedBody, VERSION, VerifyError, label};
use crate::codec::{Decode, DecodeError, Encode, Put, Reader};
use crate::crypto::{PublicKey, SecretKey, Signature};

/// Longest till name, in UTF-8 bytes.
pub const MAX_TILL_NAME: u8 = 40;

/// A merchant's authorization of one till key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TillAuthorization {
    /// The merchant (back office) wallet, who signs.
    pub merchant: PublicKey,
    /// The till wallet authorized.
    pub till: PublicKey,
    /// The till's name for people ("front counter"), 1 to 40 bytes.
    pub name: String,
    /// When authorized.
    pub created_at: u64,
    /// Merchant signature.
    pub signature: Signature,
}

impl SignedBody for TillAuthorization {
    const LABEL: &'static [u8] = label::TILL_AUTHORIZATION;

    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u8(VERSION);
        self.merchant.encode(out);
        self.till.encode(out);
        out.put_var8(self.name.as_bytes());
        out.put_u64(self.created_at);
    }
}

impl Encode for TillAuthorization {
    fn encode(&self, out: &mut Vec<u8>) {
        self.encode_body(out);
        self.signature.encode(out);
    }
}

impl Decode for TillAuthorization {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.version("till authorization", VERSION)?;
        let merchant = PublicKey::decode(r, "authorizing merchant")?;
        let till = PublicKey::decode(r, "authorized till")?;
        if till == merchant {
            return Err(DecodeError::InvalidValue("till authorized by itself"));
        }
        let name = read_text(r, "till name", 1, MAX_TILL_NAME)?;
        let created_at = r.u64("authorization time")?;
        let signature = Signature::decode(r, "till authorization signature")?;
        Ok(TillAuthorization {
            merchant,
            till,
            name,
            created_at,
            signature,
        })
    }
}

impl TillAuthorization {
    /// Signs an authorization with the merchant's key. The name is cut to 40 bytes at a character
    /// boundary (callers refuse longer names first).
    pub fn sign(
        merchant: &SecretKey,
        till: PublicKey,
        name: &str,
        created_at: u64,
    ) -> TillAuthorization {
        let mut a = TillAuthorization {
            merchant: merchant.public(),
            till,
            name: cut(name, MAX_TILL_NAME),
            created_at,
            signature: Signature([0; 64]),
        };
        a.signature = merchant.sign(&a.signing_bytes());
        a
    }

    /// Checks the merchant's signature.
    pub fn verify(&self) -> Result<(), VerifyError> {
        self.merchant
            .verify(&self.signing_bytes(), &self.signature, "till authorization")?;
        Ok(())
    }

    /// Checks the signature and that it authorizes exactly this till registration: a till that
    /// names this merchant.
    pub fn verify_for(&self, reg: &Registration) -> Result<(), VerifyError> {
        self.verify()?;
        if reg.kind != WalletKind::Till
            || reg.wallet != self.till
            || reg.merchant != Some(self.merchant)
        {
            return Err(VerifyError::Mismatch(format!(
                "the till authorization is for till {} of merchant {}, not this registration",
                self.till.address(),
                self.merchant.address()
            )));
        }
        Ok(())
    }
}

/// Reads UTF-8 text with a u8 length within `min..=max`.
pub(crate) fn read_text(
    r: &mut Reader<'_>,
    what: &'static str,
    min: u8,
    max: u8,
) -> Result<String, DecodeError> {
    let n = r.count8(what, min, max)?;
    let bytes = r.take(n, what)?;
    Ok(std::str::from_utf8(bytes)
        .map_err(|_| DecodeError::InvalidUtf8(what))?
        .to_string())
}

/// `s` cut to at most `max` bytes at a character boundary.
pub(crate) fn cut(s: &str, max: u8) -> String {
    let mut s = s.to_string();
    while s.len() > usize::from(max) {
        s.pop();
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let m = SecretKey::from_seed(&[4; 32]);
        let t = SecretKey::from_seed(&[10; 32]);
        let a = TillAuthorization::sign(&m, t.public(), "front counter", 100);
        let b = a.to_bytes();
        assert_eq!(TillAuthorization::decode(&b).unwrap(), a);
        for n in 0..b.len() {
            assert!(TillAuthorization::decode(&b[..n]).is_err());
        }
        let reg = Registration::sign(&t, WalletKind::Till, Some(m.public()), 90);
        a.verify_for(&reg).unwrap();
        let other = Registration::sign(&t, WalletKind::Till, Some(t.public()), 90);
        assert!(a.verify_for(&other).is_err());
        let mut bad = a.clone();
        bad.name = "back door".into();
        assert!(bad.verify().is_err());
    }
}
