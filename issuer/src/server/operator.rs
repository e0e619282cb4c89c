//! The operator endpoints, behind `Authorization: Bearer <operator.token>`: stats, audit,
//! revoke, key rotation, certification with a chosen class and validity, issuance, recovery of a
//! lost key's value, and settling a sync request brought in by file (`issuer settle FILE` while
//! the service holds the ledger).

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use tongbao::protocol::certificate::{Registration, WalletClass};
use tongbao::protocol::note::Earmark;
use tongbao::protocol::revocation::RevocationReason;
use tongbao::{Fen, PublicKey, SignedBody as _};

use super::AppState;
use super::error::ApiError;
use super::extract::{JsonBody, Operator, OptionalJsonBody, from_hex, to_hex};
use super::handlers::{SyncBody, json, ledger, parse_class, settle as settle_sync};
use crate::ledger::DEFAULT_CERT_SECS;
use crate::recovery::DEFAULT_RECOVERY_GRACE_SECS;

/// Default grace for the old note key at rotation: 30 days.
pub const DEFAULT_GRACE_SECS: u64 = 30 * 86_400;

fn address(field: &str, text: &str) -> Result<PublicKey, ApiError> {
    PublicKey::from_address(text).map_err(|e| ApiError::bad_request(format!("{field}: {e}")))
}

/// `GET /v1/operator/stats`.
pub async fn stats(_: Operator, State(s): State<AppState>) -> Result<Response, ApiError> {
    json(&ledger(&s, |iss| iss.stats()).await?)
}

/// `POST /v1/operator/audit`: the report, HTTP 200 even when it found problems.
pub async fn audit(_: Operator, State(s): State<AppState>) -> Result<Response, ApiError> {
    json(&ledger(&s, |iss| iss.audit()).await?)
}

/// Body of `POST /v1/operator/revoke`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    wallet: String,
    reason: String,
    #[serde(default)]
    note: String,
}

/// `POST /v1/operator/revoke`.
pub async fn revoke(
    _: Operator,
    State(s): State<AppState>,
    JsonBody(b): JsonBody<RevokeBody>,
) -> Result<Response, ApiError> {
    let wallet = address("wallet", &b.wallet)?;
    let reason = match b.reason.as_str() {
        "lost" => RevocationReason::Lost,
        "stolen" => RevocationReason::Stolen,
        "fraud" => RevocationReason::Fraud,
        other => {
            return Err(ApiError::bad_request(format!(
                "reason: {other:?} is not one of lost, stolen, fraud (double spends are revoked \
                 by settlement, with their proof)"
            )));
        }
    };
    let now = s.clock.now()?;
    let rl = ledger(&s, move |iss| iss.revoke(&wallet, reason, &b.note, now)).await?;
    json(&json!({ "version": rl.list_version }))
}

/// Body of `POST /v1/operator/keys/rotate`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    #[serde(default)]
    grace_secs: Option<u64>,
}

/// `POST /v1/operator/keys/rotate`.
pub async fn rotate(
    _: Operator,
    State(s): State<AppState>,
    OptionalJsonBody(b): OptionalJsonBody<RotateBody>,
) -> Result<Response, ApiError> {
    let grace = b.grace_secs.unwrap_or(DEFAULT_GRACE_SECS);
    let now = s.clock.now()?;
    let ks = ledger(&s, move |iss| iss.rotate_keys(grace, now, &mut rand::rng())).await?;
    json(&json!({ "version": ks.set_version, "keyset": to_hex(&ks) }))
}

/// Body of `POST /v1/operator/certify`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertifyBody {
    registration: String,
    class: String,
    #[serde(default)]
    valid_secs: Option<u64>,
    /// For a till: its merchant's signed authorization (hex of a TillAuthorization).
    #[serde(default)]
    authorization: Option<String>,
}

/// `POST /v1/operator/certify`: any class, any validity; a till needs its merchant's authorization.
pub async fn certify(
    _: Operator,
    State(s): State<AppState>,
    JsonBody(b): JsonBody<CertifyBody>,
) -> Result<Response, ApiError> {
    let reg: Registration = from_hex("registration", &b.registration)?;
    let class = parse_class(Some(&b.class), WalletClass::IV)?;
    let valid = b.valid_secs.unwrap_or(DEFAULT_CERT_SECS);
    if valid == 0 {
        return Err(ApiError::bad_request("valid_secs must be above zero"));
    }
    let auth: Option<tongbao::protocol::till::TillAuthorization> = match &b.authorization {
        Some(h) => Some(from_hex("authorization", h)?),
        None => None,
    };
    let now = s.clock.now()?;
    let cert = ledger(&s, move |iss| {
        iss.certify_with(&reg, auth.as_ref(), class, valid, now)
    })
    .await?;
    json(&json!({ "certificate": to_hex(&cert) }))
}

/// Body of `POST /v1/operator/issue`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueBody {
    to: String,
    amount_fen: u64,
}

/// `POST /v1/operator/issue`.
pub async fn issue(
    _: Operator,
    State(s): State<AppState>,
    JsonBody(b): JsonBody<IssueBody>,
) -> Result<Response, ApiError> {
    let to = address("to", &b.to)?;
    let now = s.clock.now()?;
    let bundle = ledger(&s, move |iss| {
        iss.issue(&to, Fen(b.amount_fen), Earmark::None, now, &mut rand::rng())
    })
    .await?;
    let ids: Vec<String> = bundle.notes.iter().map(|n| n.id().to_hex()).collect();
    json(&json!({ "notes": to_hex(&bundle), "ids": ids }))
}

/// Body of `POST /v1/operator/recover`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoverBody {
    lost: String,
    to: String,
    #[serde(default)]
    grace_secs: Option<u64>,
    #[serde(default)]
    note: String,
}

/// `POST /v1/operator/recover`: a lost or stolen key's value to the owner's new wallet
/// (docs/adr/0004-lost-device-recovery.md).
pub async fn recover(
    _: Operator,
    State(s): State<AppState>,
    JsonBody(b): JsonBody<RecoverBody>,
) -> Result<Response, ApiError> {
    let lost = address("lost", &b.lost)?;
    let to = address("to", &b.to)?;
    let grace = b.grace_secs.unwrap_or(DEFAULT_RECOVERY_GRACE_SECS);
    let now = s.clock.now()?;
    let r = ledger(&s, move |iss| iss.recover(&lost, &to, grace, &b.note, now)).await?;
    json(&json!({ "recovery": r.record, "notes": r.notes.as_ref().map(to_hex) }))
}

/// `POST /v1/operator/settle`: the same as `POST /v1/sync`.
pub async fn settle(
    _: Operator,
    State(s): State<AppState>,
    JsonBody(b): JsonBody<SyncBody>,
) -> Result<Response, ApiError> {
    settle_sync(&s, b.request).await
}
