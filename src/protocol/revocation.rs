//! Revocation list: issuer-signed and versioned; travels at sync and inside payments. See
//! docs/protocol.md#revocation-list.

use super::keyset::IssuerKeySet;
use super::{SignedBody, VERSION, VerifyError, label};
use crate::codec::{Decode, DecodeError, Encode, Put, Reader};
use crate::crypto::{PublicKey, SecretKey, Signature};

/// Most entries a list may carry.
pub const MAX_ENTRIES: u32 = 10_000_000;

/// Why a key was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevocationReason {
    /// Caught double spending (a proof is on the ledger).
    DoubleSpend,
    /// Reported lost.
    Lost,
    /// Reported stolen.
    Stolen,
    /// Other fraud, by operator decision.
    Fraud,
}

impl RevocationReason {
    fn tag(self) -> u8 {
        match self {
            RevocationReason::DoubleSpend => 1,
            RevocationReason::Lost => 2,
            RevocationReason::Stolen => 3,
            RevocationReason::Fraud => 4,
        }
    }

    fn from_tag(tag: u8) -> Result<Self, DecodeError> {
        Ok(match tag {
            1 => RevocationReason::DoubleSpend,
            2 => RevocationReason::Lost,
            3 => RevocationReason::Stolen,
            4 => RevocationReason::Fraud,
            got => {
                return Err(DecodeError::InvalidTag {
                    what: "revocation reason",
                    got,
                });
            }
        })
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationReason::DoubleSpend => "double-spend",
            RevocationReason::Lost => "lost",
            RevocationReason::Stolen => "stolen",
            RevocationReason::Fraud => "fraud",
        }
    }
}

/// One revoked wallet key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    /// The wallet key.
    pub wallet: PublicKey,
    /// Why.
    pub reason: RevocationReason,
    /// When.
    pub revoked_at: u64,
}

/// The issuer's list of revoked wallet keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationList {
    /// The issuer root that signs it.
    pub root: PublicKey,
    /// Increases with every change.
    pub list_version: u64,
    /// When this version was made.
    pub issued_at: u64,
    /// Entries, strictly ascending by wallet key bytes.
    pub entries: Vec<Revocation>,
    /// Root signature.
    pub signature: Signature,
}

impl SignedBody for RevocationList {
    const LABEL: &'static [u8] = label::REVOCATION;

    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u8(VERSION);
        self.root.encode(out);
        out.put_u64(self.list_version);
        out.put_u64(self.issued_at);
        out.put_u32(self.entries.len() as u32);
        for e in &self.entries {
            e.wallet.encode(out);
            out.put_u8(e.reason.tag());
            out.put_u64(e.revoked_at);
        }
    }
}

impl Encode for RevocationList {
    fn encode(&self, out: &mut Vec<u8>) {
        self.encode_body(out);
        self.signature.encode(out);
    }
}

impl Decode for RevocationList {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.version("revocation list", VERSION)?;
        let root = PublicKey::decode(r, "revocation root")?;
        let list_version = r.u64("revocation list version")?;
        let issued_at = r.u64("revocation list time")?;
        let n = r.count32("revocations", 0, MAX_ENTRIES, 41)?;
        let mut entries: Vec<Revocation> = Vec::with_capacity(n);
        for _ in 0..n {
            let e = Revocation {
                wallet: PublicKey::decode(r, "revoked wallet")?,
                reason: RevocationReason::from_tag(r.u8("revocation reason")?)?,
                revoked_at: r.u64("revoked at")?,
            };
            if let Some(prev) = entries.last()
                && e.wallet <= prev.wallet
            {
                return Err(DecodeError::NonCanonical(
                    "revocations not strictly ascending",
                ));
            }
            entries.push(e);
        }
        let signature = Signature::decode(r, "revocation list signature")?;
        Ok(RevocationList {
            root,
            list_version,
            issued_at,
            entries,
            signature,
        })
    }
}

impl RevocationList {
    /// Builds and signs a list (entries are sorted and deduplicated by key).
    pub fn sign(
        root: &SecretKey,
        list_version: u64,
        issued_at: u64,
        mut entries: Vec<Revocation>,
    ) -> RevocationList {
        entries.sort_by_key(|e| e.wallet);
        entries.dedup_by(|a, b| a.wallet == b.wallet);
        let mut l = RevocationList {
            root: root.public(),
            list_version,
            issued_at,
            entries,
            signature: Signature([0; 64]),
        };
        l.signature = root.sign(&l.signing_bytes());
        l
    }

    /// Checks the list is signed by the root of `keys`.
    pub fn verify(&self, keys: &IssuerKeySet) -> Result<(), VerifyError> {
        if self.root != keys.root {
            return Err(VerifyError::OtherIssuer(self.root.address()));
        }
        self.root
            .verify(&self.signing_bytes(), &self.signature, "revocation list")?;
        Ok(())
    }

    /// Whether `key` is on the list.
    pub fn is_revoked(&self, key: &PublicKey) -> bool {
        self.entries.binary_search_by(|e| e.wallet.cmp(key)).is_ok()
    }
}
