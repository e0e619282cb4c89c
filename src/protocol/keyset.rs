//! Issuer key set: the issuer's note keys, their validity, and the policy. See
//! docs/protocol.md#issuer-key-set.
//!
//! Signed by the issuer's root key, which is the issuer's identity: a wallet that holds a key set
//! accepts a newer one only from the same root.

use super::{SignedBody, VERSION, VerifyError, label};
use crate::codec::{Decode, DecodeError, Encode, Put, Reader};
use crate::crypto::{PublicKey, SecretKey, Signature};
use crate::time::format_rfc3339;

/// Most keys a set may list.
pub const MAX_KEYS: u8 = 64;

/// Policy every verifier enforces offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Most transfers a coin may carry before it must be refreshed at the issuer.
    pub max_hops: u8,
    /// How far in the future a signed time may be, in seconds, to allow for device clocks.
    pub clock_skew_secs: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_hops: 16,
            clock_skew_secs: 300,
        }
    }
}

/// One issuer note key and its validity window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerKeyEntry {
    /// The key id that notes and certificates name.
    pub key_id: u32,
    /// The public key.
    pub key: PublicKey,
    /// Not valid for signing before this time.
    pub not_before: u64,
    /// Signs new notes and certificates until this time (rotation sets it).
    pub issue_until: u64,
    /// Coins under this key are accepted until this time; refresh moves them to a newer key.
    pub redeem_until: u64,
}

/// The issuer's published key set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerKeySet {
    /// The issuer root key (identity); signs this set and revocation lists.
    pub root: PublicKey,
    /// Increases with every change.
    pub set_version: u64,
    /// When this version was made.
    pub issued_at: u64,
    /// The offline policy.
    pub policy: Policy,
    /// Keys, strictly ascending by key id.
    pub keys: Vec<IssuerKeyEntry>,
    /// Root signature.
    pub signature: Signature,
}

impl SignedBody for IssuerKeySet {
    const LABEL: &'static [u8] = label::KEYSET;

    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u8(VERSION);
        self.root.encode(out);
        out.put_u64(self.set_version);
        out.put_u64(self.issued_at);
        out.put_u8(self.policy.max_hops);
        out.put_u32(self.policy.clock_skew_secs);
        out.put_u8(self.keys.len() as u8);
        for k in &self.keys {
            out.put_u32(k.key_id);
            k.key.encode(out);
            out.put_u64(k.not_before);
            out.put_u64(k.issue_until);
            out.put_u64(k.redeem_until);
        }
    }
}

impl Encode for IssuerKeySet {
    fn encode(&self, out: &mut Vec<u8>) {
        self.encode_body(out);
        self.signature.encode(out);
    }
}

impl Decode for IssuerKeySet {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.version("key set", VERSION)?;
        let root = PublicKey::decode(r, "root key")?;
        let set_version = r.u64("set version")?;
        let issued_at = r.u64("issued at")?;
        let max_hops = r.u8("max hops")?;
        if max_hops == 0 {
            return Err(DecodeError::InvalidValue("policy max hops 0"));
        }
        let clock_skew_secs = r.u32("clock skew")?;
        let n = r.count8("keys", 1, MAX_KEYS)?;
        let mut keys: Vec<IssuerKeyEntry> = Vec::with_capacity(n);
        for _ in 0..n {
            let e = IssuerKeyEntry {
                key_id: r.u32("key id")?,
                key: PublicKey::decode(r, "issuer key")?,
                not_before: r.u64("not before")?,
                issue_until: r.u64("issue until")?,
                redeem_until: r.u64("redeem until")?,
            };
            if let Some(prev) = keys.last()
                && e.key_id <= prev.key_id
            {
                return Err(DecodeError::NonCanonical("key ids not strictly ascending"));
            }
            if e.issue_until > e.redeem_until || e.not_before > e.issue_until {
                return Err(DecodeError::InvalidValue("key validity window"));
            }
            keys.push(e);
        }
        let signature = Signature::decode(r, "key set signature")?;
        Ok(IssuerKeySet {
            root,
            set_version,
            issued_at,
            policy: Policy {
                max_hops,
                clock_skew_secs,
            },
            keys,
            signature,
        })
    }
}

impl IssuerKeySet {
    /// Builds and signs a key set with the root key.
    pub fn sign(
        root: &SecretKey,
        set_version: u64,
        issued_at: u64,
        policy: Policy,
        mut keys: Vec<IssuerKeyEntry>,
    ) -> IssuerKeySet {
        keys.sort_by_key(|k| k.key_id);
        let mut set = IssuerKeySet {
            root: root.public(),
            set_version,
            issued_at,
            policy,
            keys,
            signature: Signature([0; 64]),
        };
        set.signature = root.sign(&set.signing_bytes());
        set
    }

    /// Checks the root signature.
    pub fn verify(&self) -> Result<(), VerifyError> {
        self.root
            .verify(&self.signing_bytes(), &self.signature, "issuer key set")?;
        Ok(())
    }

    /// Checks that `newer` may replace `self`: same root, newer version, valid signature.
    pub fn check_successor(&self, newer: &IssuerKeySet) -> Result<(), VerifyError> {
        newer.verify()?;
        if newer.root != self.root {
            return Err(VerifyError::OtherIssuer(newer.root.address()));
        }
        if newer.set_version < self.set_version {
            return Err(VerifyError::Mismatch(format!(
                "issuer key set version {} is older than the one held ({})",
                newer.set_version, self.set_version
            )));
        }
        Ok(())
    }

    /// Checks that `older` is a set `self` succeeds: root-signed, same root, a lower version and
    /// made no later. A wallet accepts one only in the replay of a sync response the issuer
    /// settled before this set was made (see [`SyncResponse::verify`]), and keeps `self`.
    ///
    /// [`SyncResponse::verify`]: super::sync::SyncResponse::verify
    pub fn check_predecessor(&self, older: &IssuerKeySet) -> Result<(), VerifyError> {
        older.verify()?;
        if older.root != self.root {
            return Err(VerifyError::OtherIssuer(older.root.address()));
        }
        if older.set_version >= self.set_version || older.issued_at > self.issued_at {
            return Err(VerifyError::Mismatch(format!(
                "issuer key set version {} is not older than the one held ({})",
                older.set_version, self.set_version
            )));
        }
        Ok(())
    }

    /// The entry for `key_id`.
    pub fn key(&self, key_id: u32) -> Result<&IssuerKeyEntry, VerifyError> {
        self.keys
            .iter()
            .find(|k| k.key_id == key_id)
            .ok_or(VerifyError::UnknownIssuerKey(key_id))
    }

    /// The key a note or certificate signed at `signed_at` must name, checked for validity then
    /// and (for coins) still redeemable `now`.
    pub fn check_signing_key(
        &self,
        key_id: u32,
        signed_at: u64,
        now: u64,
        what: &'static str,
    ) -> Result<&IssuerKeyEntry, VerifyError> {
        let k = self.key(key_id)?;
        if signed_at < k.not_before || signed_at > k.issue_until {
            return Err(VerifyError::IssuerKeyNotValid {
                key_id,
                what,
                at: format_rfc3339(signed_at),
            });
        }
        if now > k.redeem_until {
            return Err(VerifyError::Expired {
                what: "issuer key",
                at: format_rfc3339(k.redeem_until),
            });
        }
        Ok(k)
    }

    /// The newest key that may sign at `now`.
    pub fn current_key(&self, now: u64) -> Option<&IssuerKeyEntry> {
        self.keys
            .iter()
            .rev()
            .find(|k| k.not_before <= now && now <= k.issue_until)
    }

    /// A short issuer identity for people: the root address's short form.
    pub fn issuer_id(&self) -> String {
        self.root.short()
    }
}
