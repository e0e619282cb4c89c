//! Wallet registration and certificate. See docs/protocol.md#certificate.
//!
//! A wallet registers its key (self-signed, proving possession); the issuer answers with a
//! certificate binding the key to a kind, an e-CNY class and offline limits until a date.

use std::fmt;
use std::str::FromStr;

use super::{Context, SignedBody, VERSION, VerifyError, label};
use crate::codec::{Decode, DecodeError, Encode, Put, Reader};
use crate::crypto::{PublicKey, SecretKey, Signature};
use crate::money::Fen;
use crate::time::format_rfc3339;

/// What a wallet is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WalletKind {
    /// A person.
    Personal,
    /// A merchant's back office.
    Merchant,
    /// A shop till, registered to a merchant.
    Till,
    /// A courier collecting cash on delivery.
    Courier,
}

impl WalletKind {
    fn tag(self) -> u8 {
        match self {
            WalletKind::Personal => 1,
            WalletKind::Merchant => 2,
            WalletKind::Till => 3,
            WalletKind::Courier => 4,
        }
    }

    fn from_tag(tag: u8) -> Result<WalletKind, DecodeError> {
        Ok(match tag {
            1 => WalletKind::Personal,
            2 => WalletKind::Merchant,
            3 => WalletKind::Till,
            4 => WalletKind::Courier,
            got => {
                return Err(DecodeError::InvalidTag {
                    what: "wallet kind",
                    got,
                });
            }
        })
    }

    /// Merchant and till wallets take shop payments (and restricted red-envelope money).
    pub fn is_merchant(self) -> bool {
        matches!(self, WalletKind::Merchant | WalletKind::Till)
    }
}

impl fmt::Display for WalletKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WalletKind::Personal => "personal",
            WalletKind::Merchant => "merchant",
            WalletKind::Till => "till",
            WalletKind::Courier => "courier",
        })
    }
}

impl FromStr for WalletKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "personal" => Ok(WalletKind::Personal),
            "merchant" => Ok(WalletKind::Merchant),
            "till" => Ok(WalletKind::Till),
            "courier" => Ok(WalletKind::Courier),
            _ => Err(format!(
                "unknown wallet kind {s:?} (personal, merchant, till, courier)"
            )),
        }
    }
}

/// e-CNY wallet class, I (strongest identity check) to IV (phone number only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WalletClass {
    /// In person, ID and bank account.
    I,
    /// Remote, ID and bank account.
    II,
    /// Remote, ID, no bank account.
    III,
    /// Phone number only (anonymous).
    IV,
}

impl WalletClass {
    fn tag(self) -> u8 {
        match self {
            WalletClass::I => 1,
            WalletClass::II => 2,
            WalletClass::III => 3,
            WalletClass::IV => 4,
        }
    }

    fn from_tag(tag: u8) -> Result<WalletClass, DecodeError> {
        Ok(match tag {
            1 => WalletClass::I,
            2 => WalletClass::II,
            3 => WalletClass::III,
            4 => WalletClass::IV,
            got => {
                return Err(DecodeError::InvalidTag {
                    what: "wallet class",
                    got,
                });
            }
        })
    }

    /// Default limits for the class, from the published e-CNY tiers (docs/protocol.md#limits):
    /// balance cap and per-payment cap as published; offline total: IV the 500-yuan offline cap of
    /// the 2022 app, others their daily limit; offline count: IV the app's 10, more for stronger
    /// classes.
    pub fn default_limits(self) -> Limits {
        let y = |yuan: u64| Fen(yuan * 100);
        match self {
            WalletClass::I => Limits {
                balance_max: y(500_000),
                per_payment_max: y(50_000),
                offline_total_max: y(100_000),
                offline_count_max: 500,
            },
            WalletClass::II => Limits {
                balance_max: y(10_000),
                per_payment_max: y(5_000),
                offline_total_max: y(10_000),
                offline_count_max: 50,
            },
            WalletClass::III => Limits {
                balance_max: y(2_000),
                per_payment_max: y(2_000),
                offline_total_max: y(2_000),
                offline_count_max: 20,
            },
            WalletClass::IV => Limits {
                balance_max: y(1_000),
                per_payment_max: y(500),
                offline_total_max: y(500),
                offline_count_max: 10,
            },
        }
    }
}

impl fmt::Display for WalletClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WalletClass::I => "I",
            WalletClass::II => "II",
            WalletClass::III => "III",
            WalletClass::IV => "IV",
        })
    }
}

impl FromStr for WalletClass {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "I" | "1" => Ok(WalletClass::I),
            "II" | "2" => Ok(WalletClass::II),
            "III" | "3" => Ok(WalletClass::III),
            "IV" | "4" => Ok(WalletClass::IV),
            _ => Err(format!("unknown wallet class {s:?} (I, II, III, IV)")),
        }
    }
}

/// Limits a certificate sets; payers keep to them and receivers enforce them offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most the wallet may hold.
    pub balance_max: Fen,
    /// Most one payment may be.
    pub per_payment_max: Fen,
    /// Most the wallet may pay offline in total until its next sync.
    pub offline_total_max: Fen,
    /// Most payments the wallet may make offline until its next sync.
    pub offline_count_max: u32,
}

/// A wallet's self-signed registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The wallet key.
    pub wallet: PublicKey,
    /// Kind asked for.
    pub kind: WalletKind,
    /// For a till: its merchant.
    pub merchant: Option<PublicKey>,
    /// When it was made.
    pub created_at: u64,
    /// Signature by the wallet key.
    pub signature: Signature,
}

impl SignedBody for Registration {
    const LABEL: &'static [u8] = label::REGISTRATION;

    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u8(VERSION);
        self.wallet.encode(out);
        out.put_u8(self.kind.tag());
        put_opt_key(out, self.merchant.as_ref());
        out.put_u64(self.created_at);
    }
}

impl Encode for Registration {
    fn encode(&self, out: &mut Vec<u8>) {
        self.encode_body(out);
        self.signature.encode(out);
    }
}

impl Decode for Registration {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.version("registration", VERSION)?;
        let wallet = PublicKey::decode(r, "registration wallet")?;
        let kind = WalletKind::from_tag(r.u8("wallet kind")?)?;
        let merchant = get_opt_key(r, "registration merchant")?;
        check_merchant_field(kind, merchant.is_some())?;
        let created_at = r.u64("registration time")?;
        let signature = Signature::decode(r, "registration signature")?;
        Ok(Registration {
            wallet,
            kind,
            merchant,
            created_at,
            signature,
        })
    }
}

impl Registration {
    /// Signs a registration with the wallet's key.
    pub fn sign(
        key: &SecretKey,
        kind: WalletKind,
        merchant: Option<PublicKey>,
        created_at: u64,
    ) -> Registration {
        let mut r = Registration {
            wallet: key.public(),
            kind,
            merchant,
            created_at,
            signature: Signature([0; 64]),
        };
        r.signature = key.sign(&r.signing_bytes());
        r
    }

    /// Checks the wallet's own signature (proof of possession).
    pub fn verify(&self) -> Result<(), VerifyError> {
        self.wallet
            .verify(&self.signing_bytes(), &self.signature, "registration")?;
        Ok(())
    }
}

/// The issuer's binding of a wallet key to kind, class and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// The issuer key that signed it.
    pub key_id: u32,
    /// The wallet key.
    pub wallet: PublicKey,
    /// Kind.
    pub kind: WalletKind,
    /// e-CNY class.
    pub class: WalletClass,
    /// For a till: its merchant.
    pub merchant: Option<PublicKey>,
    /// Limits.
    pub limits: Limits,
    /// Certificate number for this wallet; each renewal increases it.
    pub serial: u64,
    /// The wallet's payment counter when certified; offline counts run from here.
    pub counter_base: u64,
    /// When certified.
    pub issued_at: u64,
    /// Valid until.
    pub expires_at: u64,
    /// Issuer signature.
    pub signature: Signature,
}

impl SignedBody for Certificate {
    const LABEL: &'static [u8] = label::CERTIFICATE;

    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u8(VERSION);
        out.put_u32(self.key_id);
        self.wallet.encode(out);
        out.put_u8(self.kind.tag());
        out.put_u8(self.class.tag());
        put_opt_key(out, self.merchant.as_ref());
        out.put_u64(self.limits.balance_max.0);
        out.put_u64(self.limits.per_payment_max.0);
        out.put_u64(self.limits.offline_total_max.0);
        out.put_u32(self.limits.offline_count_max);
        out.put_u64(self.serial);
        out.put_u64(self.counter_base);
        out.put_u64(self.issued_at);
        out.put_u64(self.expires_at);
    }
}

impl Encode for Certificate {
    fn encode(&self, out: &mut Vec<u8>) {
        self.encode_body(out);
        self.signature.encode(out);
    }
}

impl Decode for Certificate {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.version("certificate", VERSION)?;
        let key_id = r.u32("certificate key id")?;
        let wallet = PublicKey::decode(r, "certificate wallet")?;
        let kind = WalletKind::from_tag(r.u8("wallet kind")?)?;
        let class = WalletClass::from_tag(r.u8("wallet class")?)?;
        let merchant = get_opt_key(r, "certificate merchant")?;
        check_merchant_field(kind, merchant.is_some())?;
        let limits = Limits {
            balance_max: Fen(r.u64("balance limit")?),
            per_payment_max: Fen(r.u64("per-payment limit")?),
            offline_total_max: Fen(r.u64("offline total limit")?),
            offline_count_max: r.u32("offline count limit")?,
        };
        let serial = r.u64("certificate serial")?;
        let counter_base = r.u64("counter base")?;
        let issued_at = r.u64("certificate issued at")?;
        let expires_at = r.u64("certificate expiry")?;
        if expires_at < issued_at {
            return Err(DecodeError::InvalidValue(
                "certificate expires before it is issued",
            ));
        }
        let signature = Signature::decode(r, "certificate signature")?;
        Ok(Certificate {
            key_id,
            wallet,
            kind,
            class,
            merchant,
            limits,
            serial,
            counter_base,
            issued_at,
            expires_at,
            signature,
        })
    }
}

impl Certificate {
    /// Signs the certificate fields with issuer key `key_id` (the signature field is replaced).
    pub fn signed(mut self, issuer_key: &SecretKey) -> Certificate {
        self.signature = issuer_key.sign(&self.signing_bytes());
        self
    }

    /// Checks the issuer signature and key, expiry at `at`, and revocation.
    pub fn verify_at(&self, ctx: &Context<'_>, at: u64) -> Result<(), VerifyError> {
        let entry =
            ctx.keys
                .check_signing_key(self.key_id, self.issued_at, ctx.now, "certificate")?;
        entry
            .key
            .verify(&self.signing_bytes(), &self.signature, "certificate")
            .map_err(|_| VerifyError::BadIssuerSignature("certificate"))?;
        if at > self.expires_at {
            return Err(VerifyError::Expired {
                what: "wallet certificate",
                at: format_rfc3339(self.expires_at),
            });
        }
        ctx.check_not_future(self.issued_at, "certificate")?;
        ctx.check_not_revoked(&self.wallet)?;
        Ok(())
    }

    /// Checks the certificate is valid now.
    pub fn verify(&self, ctx: &Context<'_>) -> Result<(), VerifyError> {
        self.verify_at(ctx, ctx.now)
    }
}

fn put_opt_key(out: &mut Vec<u8>, key: Option<&PublicKey>) {
    match key {
        None => out.put_u8(0),
        Some(k) => {
            out.put_u8(1);
            k.encode(out);
        }
    }
}

fn get_opt_key(r: &mut Reader<'_>, what: &'static str) -> Result<Option<PublicKey>, DecodeError> {
    Ok(if r.option_tag(what)? {
        Some(PublicKey::decode(r, what)?)
    } else {
        None
    })
}

fn check_merchant_field(kind: WalletKind, present: bool) -> Result<(), DecodeError> {
    if (kind == WalletKind::Till) != present {
        return Err(DecodeError::InvalidValue(
            "a till, and only a till, names its merchant",
        ));
    }
    Ok(())
}
