//! A blocking client for the issuer service's JSON API (`issuer serve`, docs/api.md): what
//! `wallet` uses to register, sync and pay online, and what `issuer` uses to reach the operator
//! endpoints of a running service.
//!
//! Protocol messages travel as lower-case hex of their canonical bytes and are decoded strictly
//! here; whether they are *trustworthy* (signatures, successor key sets) is checked by the caller,
//! exactly as for files. Every answer is read with a size limit and a time limit, and nothing here
//! panics on a bad one: every failure is a [`ClientError`] that says in one line what happened.
//!
//! API boundary: plain `http://` only (the build carries no TLS stack; put a TLS-terminating proxy
//! in front of a service that leaves the machine).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::codec::{Decode, Encode};
use crate::crypto::PublicKey;
use crate::money::Fen;
use crate::protocol::certificate::{Certificate, Registration, WalletClass};
use crate::protocol::file::{MAX_FILE, NoteBundle};
use crate::protocol::keyset::IssuerKeySet;
use crate::protocol::payment::Payment;
use crate::protocol::revocation::{RevocationList, RevocationReason};
use crate::protocol::sync::{Confirmation, SyncRequest, SyncResponse};

/// How long to wait for a connection to the issuer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one whole call (connect, send, settle, answer) may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// Largest answer read: a hex-encoded message of the largest file size, and some JSON around it.
const MAX_ANSWER: u64 = 2 * MAX_FILE + 64 * 1024;

/// Why a call to the issuer failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not one this client can use.
    #[error("invalid issuer URL {url:?}: {why}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// No connection, a timeout, or the connection broke before the whole answer came: the
    /// outcome of a call that changes state is unknown (retrying it is safe: the issuer answers a
    /// replay with the answer it already gave).
    #[error("cannot reach the issuer at {url}: {cause}")]
    Unreachable {
        /// The issuer's base URL.
        url: String,
        /// What the network said.
        cause: String,
    },
    /// The issuer answered with an error: a refusal (HTTP 4xx: nothing changed there) or its own
    /// failure (5xx).
    #[error("{}", issuer_line(*status, error, message))]
    Issuer {
        /// HTTP status.
        status: u16,
        /// The issuer's stable numeric error code (0 if it gave none).
        code: u64,
        /// The issuer's snake_case error name.
        error: String,
        /// The issuer's one-line message.
        message: String,
    },
    /// The issuer answered something this client cannot read.
    #[error("unexpected answer from the issuer at {url}: {why}")]
    BadAnswer {
        /// The issuer's base URL.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// An operator endpoint was called without the operator token.
    #[error("operator calls need the operator token (<issuer home>/operator.token)")]
    NoToken,
}

fn issuer_line(status: u16, error: &str, message: &str) -> String {
    if is_refusal_status(status) {
        format!("the issuer refused: {message}")
    } else if error.is_empty() {
        format!("the issuer failed (HTTP {status}): {message}")
    } else {
        format!("the issuer failed ({error}, HTTP {status}): {message}")
    }
}

/// A 4xx answer, except a timeout (408) or a request to slow down (429): those say nothing about
/// whether the request took effect.
fn is_refusal_status(status: u16) -> bool {
    (400..500).contains(&status) && status != 408 && status != 429
}

impl ClientError {
    /// True when the issuer looked at the request and refused it (HTTP 4xx but 408 and 429):
    /// nothing changed at the issuer, and sending the same request again gets the same refusal.
    pub fn is_refusal(&self) -> bool {
        matches!(self, ClientError::Issuer { status, .. } if is_refusal_status(*status))
    }

    /// True when the issuer could not be reached (or broke off): the outcome is unknown.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ClientError::Unreachable { .. })
    }

    /// The issuer's numeric error code, if it answered with one.
    pub fn code(&self) -> Option<u64> {
        match self {
            ClientError::Issuer { code, .. } if *code != 0 => Some(*code),
            _ => None,
        }
    }

    /// The issuer's snake_case error name, if it answered with one.
    pub fn error_name(&self) -> Option<&str> {
        match self {
            ClientError::Issuer { error, .. } if !error.is_empty() => Some(error),
            _ => None,
        }
    }
}

/// Ledger totals as `GET /v1/operator/stats` reports them (the issuer's `LedgerStats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LedgerStatsReply {
    /// Issuer root address.
    pub issuer: String,
    /// Key set version.
    pub key_set_version: u64,
    /// Total issued, in fen.
    pub issued_fen: u64,
    /// Notes issued.
    pub notes: u64,
    /// Wallets certified.
    pub wallets: u64,
    /// Revoked keys.
    pub revoked: u64,
    /// Total redeemed (refreshed, collected, paid to banks), in fen.
    pub redeemed_fen: u64,
    /// Outstanding: issued less redeemed, in fen.
    pub outstanding_fen: u64,
    /// Transfers settled.
    pub settled_transfers: u64,
    /// Double spends proven.
    pub double_spends: u64,
    /// Losses recorded against cheaters, in fen.
    pub losses_fen: u64,
    /// Topped up from bank accounts, in fen.
    pub bank_in_fen: u64,
    /// Redeemed to bank accounts, in fen.
    pub bank_out_fen: u64,
}

/// What `POST /v1/operator/audit` found (the issuer's `AuditReport`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReply {
    /// True when no problem was found.
    pub ok: bool,
    /// Issued total as recorded, in fen.
    #[serde(default)]
    pub issued_fen: u64,
    /// Redeemed total as recorded, in fen.
    #[serde(default)]
    pub redeemed_fen: u64,
    /// Sum of live coins, in fen.
    #[serde(default)]
    pub outstanding_fen: u64,
    /// Live coins.
    #[serde(default)]
    pub live_coins: u64,
    /// Spent coins.
    #[serde(default)]
    pub spent_coins: u64,
    /// Redeemed coins.
    #[serde(default)]
    pub redeemed_coins: u64,
    /// Proofs checked.
    #[serde(default)]
    pub proofs: u64,
    /// Revocations checked.
    #[serde(default)]
    pub revocations: u64,
    /// Every violation found, one line each.
    #[serde(default)]
    pub problems: Vec<String>,
}

/// Notes issued by `POST /v1/operator/issue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedReply {
    /// The notes, for the wallet to import.
    pub notes: NoteBundle,
    /// Their ids (hex), as the issuer listed them.
    pub ids: Vec<String>,
}

/// What `POST /v1/operator/recover` did (the issuer's `RecoveryRecord`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecoveryInfo {
    /// The lost key's address.
    pub lost: String,
    /// The new wallet's address.
    pub to: String,
    /// Why the lost key was revoked: lost or stolen.
    pub reason: String,
    /// When it was revoked.
    pub revoked_at: u64,
    /// When its last certificate expired.
    pub cert_expires_at: u64,
    /// The grace window applied after that, in seconds.
    pub grace_secs: u64,
    /// When recovered.
    pub at: u64,
    /// Live coins of the lost key taken out of circulation.
    pub coins: u64,
    /// Their value, credited to the new wallet, in fen.
    pub value_fen: u64,
    /// The part that stays red-envelope money, in fen.
    pub restricted_fen: u64,
    /// Red-envelope money past its expiry, left for the clawback, in fen.
    pub left_for_clawback_fen: u64,
    /// Losses recorded against the lost key (double spends signed with it), in fen.
    pub losses_fen: u64,
    /// The ids (hex) of the notes issued to the new wallet.
    pub notes: Vec<String>,
    /// The operator's words.
    pub note: String,
}

/// A recovery through the service: what was done, and the new wallet's notes (if any value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReply {
    /// What was done.
    pub recovery: RecoveryInfo,
    /// The notes, for the new wallet to import (it also collects them at its next sync).
    pub notes: Option<NoteBundle>,
}

/// A client for one issuer service.
#[derive(Debug, Clone)]
pub struct IssuerClient {
    /// Base URL, e.g. `http://127.0.0.1:8080` (no trailing slash).
    pub base: String,
    /// The operator token, for the operator endpoints.
    pub token: Option<String>,
    agent: ureq::Agent,
}

enum Method {
    Get,
    Post(Value),
}

impl IssuerClient {
    /// A client for the service at `base` (`http://HOST:PORT`, optionally with a path prefix),
    /// with the default time limits.
    pub fn new(base: &str) -> Result<IssuerClient, ClientError> {
        IssuerClient::with_timeouts(base, CONNECT_TIMEOUT, CALL_TIMEOUT)
    }

    /// Like [`IssuerClient::new`] with other time limits.
    pub fn with_timeouts(
        base: &str,
        connect: Duration,
        call: Duration,
    ) -> Result<IssuerClient, ClientError> {
        let trimmed = base.trim().trim_end_matches('/').to_string();
        let bad = |why: &str| ClientError::BadUrl {
            url: base.to_string(),
            why: why.to_string(),
        };
        let lower = trimmed.to_ascii_lowercase();
        if lower.starts_with("https://") {
            return Err(bad(
                "https is not supported by this build: use http:// (behind a TLS-terminating proxy if it leaves the machine)",
            ));
        }
        let Some(rest) = lower.strip_prefix("http://") else {
            return Err(bad("it must start with http://"));
        };
        if rest.is_empty() || rest.starts_with('/') {
            return Err(bad("no host"));
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("it contains spaces or control characters"));
        }
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(connect))
            .timeout_global(Some(call))
            .http_status_as_error(false)
            .proxy(None)
            .max_redirects(0)
            .build();
        Ok(IssuerClient {
            base: trimmed,
            token: None,
            agent: config.into(),
        })
    }

    /// The same client with the operator token.
    pub fn with_token(mut self, token: &str) -> IssuerClient {
        self.token = Some(token.trim().to_string());
        self
    }

    /// `GET /v1/health`: the service's own description of itself.
    pub fn health(&self) -> Result<Value, ClientError> {
        self.call(Method::Get, "/v1/health", false)
    }

    /// `GET /v1/keys`: the current issuer key set (decoded, not yet trusted: the caller checks it
    /// is signed and a successor of the one it holds).
    pub fn keys(&self) -> Result<IssuerKeySet, ClientError> {
        let v = self.call(Method::Get, "/v1/keys", false)?;
        self.hex_field(&v, "keyset", "issuer key set")
    }

    /// `GET /v1/revocations`: the current revocation list (decoded, not yet verified).
    pub fn revocations(&self) -> Result<RevocationList, ClientError> {
        let v = self.call(Method::Get, "/v1/revocations", false)?;
        self.hex_field(&v, "revocations", "revocation list")
    }

    /// `POST /v1/register`: certifies a new wallet's registration for `class`.
    pub fn register(
        &self,
        reg: &Registration,
        class: WalletClass,
    ) -> Result<Certificate, ClientError> {
        let body =
            json!({ "registration": hex::encode(reg.to_bytes()), "class": class.to_string() });
        let v = self.call(Method::Post(body), "/v1/register", false)?;
        self.hex_field(&v, "certificate", "certificate")
    }

    /// `POST /v1/sync`: settles a sync request (a replay gets the same response).
    pub fn sync(&self, req: &SyncRequest) -> Result<SyncResponse, ClientError> {
        let body = json!({ "request": hex::encode(req.to_bytes()) });
        let v = self.call(Method::Post(body), "/v1/sync", false)?;
        self.hex_field(&v, "response", "sync response")
    }

    /// `POST /v1/pay`: settles a payment online; the confirmation is final for the payee.
    pub fn pay(&self, payment: &Payment) -> Result<Confirmation, ClientError> {
        let body = json!({ "payment": hex::encode(payment.to_bytes()) });
        let v = self.call(Method::Post(body), "/v1/pay", false)?;
        self.hex_field(&v, "confirmation", "confirmation")
    }

    /// `GET /v1/operator/stats`.
    pub fn stats(&self) -> Result<LedgerStatsReply, ClientError> {
        let v = self.call(Method::Get, "/v1/operator/stats", true)?;
        self.parse(v, "ledger stats")
    }

    /// `POST /v1/operator/audit`.
    pub fn audit(&self) -> Result<AuditReply, ClientError> {
        let v = self.call(Method::Post(json!({})), "/v1/operator/audit", true)?;
        self.parse(v, "audit report")
    }

    /// `POST /v1/operator/revoke`: returns the new revocation list version.
    pub fn revoke(
        &self,
        wallet: &PublicKey,
        reason: RevocationReason,
        note: &str,
    ) -> Result<u64, ClientError> {
        let body = json!({ "wallet": wallet.address(), "reason": reason.as_str(), "note": note });
        let v = self.call(Method::Post(body), "/v1/operator/revoke", true)?;
        self.u64_field(&v, "version")
    }

    /// `POST /v1/operator/keys/rotate`: returns the new key set.
    pub fn rotate_keys(&self, grace_secs: Option<u64>) -> Result<IssuerKeySet, ClientError> {
        let body = match grace_secs {
            Some(g) => json!({ "grace_secs": g }),
            None => json!({}),
        };
        let v = self.call(Method::Post(body), "/v1/operator/keys/rotate", true)?;
        self.hex_field(&v, "keyset", "issuer key set")
    }

    /// `POST /v1/operator/certify`: a certificate for a registration.
    pub fn certify(
        &self,
        reg: &Registration,
        class: WalletClass,
        valid_secs: Option<u64>,
    ) -> Result<Certificate, ClientError> {
        self.certify_with(reg, None, class, valid_secs)
    }

    /// `POST /v1/operator/certify` with a till's authorization by its merchant.
    pub fn certify_with(
        &self,
        reg: &Registration,
        authorization: Option<&crate::protocol::till::TillAuthorization>,
        class: WalletClass,
        valid_secs: Option<u64>,
    ) -> Result<Certificate, ClientError> {
        let mut body =
            json!({ "registration": hex::encode(reg.to_bytes()), "class": class.to_string() });
        if let (Some(s), Some(m)) = (valid_secs, body.as_object_mut()) {
            m.insert("valid_secs".into(), json!(s));
        }
        if let (Some(a), Some(m)) = (authorization, body.as_object_mut()) {
            m.insert("authorization".into(), json!(hex::encode(a.to_bytes())));
        }
        let v = self.call(Method::Post(body), "/v1/operator/certify", true)?;
        self.hex_field(&v, "certificate", "certificate")
    }

    /// `POST /v1/operator/issue`: new notes for a certified wallet.
    pub fn issue(&self, to: &PublicKey, amount: Fen) -> Result<IssuedReply, ClientError> {
        let body = json!({ "to": to.address(), "amount_fen": amount.0 });
        let v = self.call(Method::Post(body), "/v1/operator/issue", true)?;
        let notes: NoteBundle = self.hex_field(&v, "notes", "issued notes")?;
        let ids = match v.get("ids").and_then(Value::as_array) {
            Some(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            None => {
                use crate::protocol::SignedBody as _;
                notes.notes.iter().map(|n| n.id().to_hex()).collect()
            }
        };
        Ok(IssuedReply { notes, ids })
    }

    /// `POST /v1/operator/recover`: moves what the ledger shows a revoked lost or stolen key still
    /// holding to the owner's new wallet, once its certificate expired a grace window ago
    /// (`grace_secs`, default 30 days).
    pub fn recover(
        &self,
        lost: &PublicKey,
        to: &PublicKey,
        grace_secs: Option<u64>,
        note: &str,
    ) -> Result<RecoveryReply, ClientError> {
        let mut body = json!({ "lost": lost.address(), "to": to.address(), "note": note });
        if let (Some(g), Some(m)) = (grace_secs, body.as_object_mut()) {
            m.insert("grace_secs".into(), json!(g));
        }
        let v = self.call(Method::Post(body), "/v1/operator/recover", true)?;
        let recovery: RecoveryInfo = self.parse(
            v.get("recovery").cloned().unwrap_or(Value::Null),
            "recovery record",
        )?;
        let notes = match v.get("notes") {
            None | Some(Value::Null) => None,
            Some(_) => Some(self.hex_field(&v, "notes", "recovery notes")?),
        };
        Ok(RecoveryReply { recovery, notes })
    }

    /// `POST /v1/operator/settle`: settles a sync request brought in by hand (air-gapped).
    pub fn settle(&self, req: &SyncRequest) -> Result<SyncResponse, ClientError> {
        let body = json!({ "request": hex::encode(req.to_bytes()) });
        let v = self.call(Method::Post(body), "/v1/operator/settle", true)?;
        self.hex_field(&v, "response", "sync response")
    }

    fn call(&self, method: Method, path: &str, operator: bool) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let auth = if operator {
            let t = self.token.as_deref().ok_or(ClientError::NoToken)?;
            Some(format!("Bearer {t}"))
        } else {
            None
        };
        let result = match method {
            Method::Get => {
                let mut r = self.agent.get(&url).header("Accept", "application/json");
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
            Method::Post(body) => {
                let mut r = self
                    .agent
                    .post(&url)
                    .header("Accept", "application/json")
                    .header("Content-Type", "application/json");
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.send(body.to_string())
            }
        };
        let mut resp = result.map_err(|e| self.network_error(e))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(n) => {
                    self.bad(format!("answer too large (over {n} bytes)"))
                }
                other => self.network_error(other),
            })?;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&bytes).map_err(|e| {
                self.bad(format!("HTTP {status} with a body that is not JSON ({e})"))
            });
        }
        Err(self.error_from(status, &bytes))
    }

    /// The issuer's JSON error body, or as much as can be said without one.
    fn error_from(&self, status: u16, bytes: &[u8]) -> ClientError {
        let v: Option<Value> = serde_json::from_slice(bytes).ok();
        let get = |k: &str| v.as_ref().and_then(|v| v.get(k));
        let message = get("message")
            .and_then(Value::as_str)
            .map(one_line)
            .unwrap_or_else(|| {
                let text = one_line(&String::from_utf8_lossy(bytes));
                if text.is_empty() {
                    format!("HTTP {status} with no explanation")
                } else {
                    text
                }
            });
        ClientError::Issuer {
            status,
            code: get("code").and_then(Value::as_u64).unwrap_or(0),
            error: get("error")
                .and_then(Value::as_str)
                .map(one_line)
                .unwrap_or_default(),
            message,
        }
    }

    fn network_error(&self, e: ureq::Error) -> ClientError {
        ClientError::Unreachable {
            url: self.base.clone(),
            cause: one_line(&e.to_string()),
        }
    }

    fn bad(&self, why: String) -> ClientError {
        ClientError::BadAnswer {
            url: self.base.clone(),
            why,
        }
    }

    fn hex_field<T: Decode>(&self, v: &Value, name: &str, what: &str) -> Result<T, ClientError> {
        let text = v
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| self.bad(format!("no \"{name}\" ({what}) in the answer")))?;
        let bytes =
            hex::decode(text).map_err(|e| self.bad(format!("\"{name}\" is not hex ({e})")))?;
        T::decode(&bytes).map_err(|e| self.bad(format!("{what}: {e}")))
    }

    fn u64_field(&self, v: &Value, name: &str) -> Result<u64, ClientError> {
        v.get(name)
            .and_then(Value::as_u64)
            .ok_or_else(|| self.bad(format!("no number \"{name}\" in the answer")))
    }

    fn parse<T: serde::de::DeserializeOwned>(
        &self,
        v: Value,
        what: &str,
    ) -> Result<T, ClientError> {
        serde_json::from_value(v).map_err(|e| self.bad(format!("{what}: {e}")))
    }
}

/// Text made into one short line (a server's words are shown to people in a one-line error).
fn one_line(s: &str) -> String {
    let joined = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = joined
        .chars()
        .filter(|c| !c.is_control())
        .take(300)
        .collect();
    if joined.chars().count() > 300 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(IssuerClient::new("http://127.0.0.1:8080/").is_ok());
        assert_eq!(
            IssuerClient::new("http://127.0.0.1:8080/")
                .map(|c| c.base)
                .ok(),
            Some("http://127.0.0.1:8080".to_string())
        );
        for bad in [
            "",
            "127.0.0.1:80",
            "https://x",
            "http://",
            "ftp://x",
            "http://a b",
        ] {
            assert!(IssuerClient::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unreachable_is_one_line_and_not_a_refusal() {
        // A loopback port just released: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let url = format!("http://127.0.0.1:{port}");
        let c = IssuerClient::with_timeouts(&url, Duration::from_secs(2), Duration::from_secs(4))
            .expect("client");
        let e = c.health().expect_err("nothing listens");
        assert!(e.is_unreachable() && !e.is_refusal());
        let line = e.to_string();
        assert!(line.starts_with(&format!("cannot reach the issuer at {url}: ")));
        assert!(!line.contains('\n'));
    }

    #[test]
    fn operator_calls_need_the_token() {
        let c = IssuerClient::new("http://127.0.0.1:9").expect("client");
        assert!(matches!(c.stats(), Err(ClientError::NoToken)));
    }

    #[test]
    fn error_bodies_are_read() {
        let c = IssuerClient::new("http://127.0.0.1:9").expect("client");
        let e = c.error_from(
            409,
            br#"{"code":11001,"error":"double_spend","message":"a coin\nwas spent"}"#,
        );
        assert!(e.is_refusal());
        assert_eq!(e.error_name(), Some("double_spend"));
        assert_eq!(e.code(), Some(11001));
        assert_eq!(e.to_string(), "the issuer refused: a coin was spent");
        let e = c.error_from(408, br#"{"code":1012,"error":"timeout","message":"slow"}"#);
        assert!(!e.is_refusal() && !e.is_unreachable());
        assert_eq!(e.to_string(), "the issuer failed (timeout, HTTP 408): slow");
        let e = c.error_from(502, b"<html>bad gateway</html>");
        assert!(!e.is_refusal());
        assert_eq!(
            e.to_string(),
            "the issuer failed (HTTP 502): <html>bad gateway</html>"
        );
    }
}
