//! The public endpoints: health, keys, revocations, register, sync, pay; and the JSON fallbacks.

use std::sync::{Mutex, PoisonError};

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::oneshot;
use tongbao::protocol::certificate::{Certificate, Registration, WalletClass};
use tongbao::protocol::payment::Payment;
use tongbao::protocol::sync::{CoinStatus, SyncRequest};

use super::error::{ApiError, ErrorCode};
use super::extract::{JsonBody, from_hex, to_hex};
use super::{AppState, OPENAPI_JSON, writer};
use crate::ledger::DEFAULT_CERT_SECS;
use crate::{Issuer, IssuerError};

/// A JSON answer.
pub(super) fn json<T: Serialize>(v: &T) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(v).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// Runs `f` on the blocking pool (the ledger's reads, signature checks and commits block).
pub(super) async fn blocking<T, F>(s: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Issuer) -> Result<T, ApiError> + Send + 'static,
{
    let iss = s.issuer.clone();
    tokio::task::spawn_blocking(move || f(&iss))
        .await
        .map_err(|e| ApiError::internal(format!("worker task failed: {e}")))?
}

/// Like [`blocking`] for a ledger call.
pub(super) async fn ledger<T, F>(s: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Issuer) -> Result<T, IssuerError> + Send + 'static,
{
    blocking(s, move |iss| f(iss).map_err(ApiError::from)).await
}

/// Parses an e-CNY class: I, II, III or IV.
pub(super) fn parse_class(
    text: Option<&str>,
    default: WalletClass,
) -> Result<WalletClass, ApiError> {
    match text {
        None => Ok(default),
        Some(t) => t
            .parse()
            .map_err(|e: String| ApiError::bad_request(format!("class: {e}"))),
    }
}

/// `GET /openapi.json`.
pub async fn openapi() -> Response {
    let mut resp = OPENAPI_JSON.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// `GET /v1/health`.
pub async fn health(State(s): State<AppState>) -> Result<Response, ApiError> {
    json(&json!({ "status": "ok", "issuer": s.issuer.root().address() }))
}

/// `GET /v1/keys`.
pub async fn keys(State(s): State<AppState>) -> Result<Response, ApiError> {
    let ks = ledger(&s, |iss| iss.keyset()).await?;
    json(&json!({ "keyset": to_hex(&ks), "version": ks.set_version }))
}

/// `GET /v1/revocations`.
pub async fn revocations(State(s): State<AppState>) -> Result<Response, ApiError> {
    let rl = ledger(&s, |iss| iss.revocations()).await?;
    json(&json!({ "revocations": to_hex(&rl), "version": rl.list_version }))
}

/// Body of `POST /v1/register`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    registration: String,
    #[serde(default)]
    class: Option<String>,
}

/// `POST /v1/register`: certifies a wallet not yet certified (see [`register_once`]). A
/// simulator: a real issuer would check the holder's identity before certifying classes I to III.
pub async fn register(
    State(s): State<AppState>,
    JsonBody(b): JsonBody<RegisterBody>,
) -> Result<Response, ApiError> {
    let reg: Registration = from_hex("registration", &b.registration)?;
    let class = parse_class(b.class.as_deref(), WalletClass::IV)?;
    let now = s.clock.now()?;
    let cert = ledger(&s, move |iss| register_once(iss, &reg, class, now)).await?;
    json(&json!({ "certificate": to_hex(&cert) }))
}

/// Public registrations, one at a time: whether a key is certified is checked and acted on with no
/// other registration in between (the operator's certify does not take it: it may re-certify).
static REGISTRATIONS: Mutex<()> = Mutex::new(());

/// A registration is public (it rides in files and over the wire), so anybody can send a wallet's
/// registration again: that must not re-certify the wallet (known defect D5, fixed). A key not
/// yet certified is certified for `class`. A key already certified gets, if the request asks for
/// exactly what it holds (same kind, merchant and class) and its certificate is still the one
/// registration gave (serial 1), that certificate back unchanged: `wallet init --issuer` run again
/// to finish a registration whose answer was lost. Anything else is `409 conflict`: a different
/// class, or a certificate since renewed (renewals come with sync, which the wallet signs) or
/// re-certified; only the operator re-certifies (`POST /v1/operator/certify`, `issuer certify`).
fn register_once(
    iss: &Issuer,
    reg: &Registration,
    class: WalletClass,
    now: u64,
) -> Result<Certificate, IssuerError> {
    reg.verify()?;
    let _one = REGISTRATIONS.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(rec) = iss.wallet(&reg.wallet)? else {
        return iss.certify(reg, class, DEFAULT_CERT_SECS, now);
    };
    if iss.revocations()?.is_revoked(&reg.wallet) {
        return Err(IssuerError::Revoked(reg.wallet.address()));
    }
    let conflict = |why: String| {
        IssuerError::Conflict(format!(
            "wallet {} is already certified ({why}): a registration is certified once; renewals come with sync, and only the operator re-certifies",
            reg.wallet.address()
        ))
    };
    let merchant = reg.merchant.map(|m| m.address());
    if rec.kind != reg.kind || rec.merchant != merchant {
        return Err(conflict(format!("as a {} wallet", rec.kind)));
    }
    if rec.class != class.to_string() {
        return Err(conflict(format!("in class {}, not {class}", rec.class)));
    }
    if rec.cert_serial != 1 {
        return Err(conflict(format!(
            "its certificate is number {}",
            rec.cert_serial
        )));
    }
    // The certificate registration gave, signed again: ed25519 signatures are deterministic, so
    // the same fields under the same key give the same bytes (see `Issuer::certify_with`: issued at
    // registration, with the class's default limits, by the key that signed then).
    let issued_at = rec.registered_at;
    let (key_id, key) = iss
        .signing_key(issued_at)
        .map_err(|e| conflict(format!("its certificate cannot be given again: {e}")))?;
    Ok(crate::ledger::registration_certificate(
        reg,
        class,
        key_id,
        rec.cert_serial,
        rec.counter_base,
        issued_at,
        rec.cert_expires_at,
    )
    .signed(&key))
}

/// Body of `POST /v1/sync` and `POST /v1/operator/settle`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncBody {
    pub(super) request: String,
}

/// `POST /v1/sync`.
pub async fn sync(
    State(s): State<AppState>,
    JsonBody(b): JsonBody<SyncBody>,
) -> Result<Response, ApiError> {
    settle(&s, b.request).await
}

/// Decodes and prechecks a sync request on the blocking pool, hands it to the writer, and answers
/// once its group is committed.
pub(super) async fn settle(s: &AppState, request_hex: String) -> Result<Response, ApiError> {
    let now = s.clock.now()?;
    // The permit moves into the task, so a timed-out request still holds it until its check ends.
    let slot = s
        .verify_slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::internal("verification slots closed"))?;
    let (req, checked) = blocking(s, move |iss| {
        let _slot = slot;
        let req: SyncRequest = from_hex("request", &request_hex)?;
        let checked = iss.precheck(&req, now)?;
        Ok((req, checked))
    })
    .await?;
    let (reply, answer) = oneshot::channel();
    s.writer.submit(writer::Job {
        req,
        checked,
        reply,
    })?;
    let resp = answer
        .await
        .map_err(|_| ApiError::internal("the settlement writer dropped the request"))??;
    let count = |st: CoinStatus| resp.results.iter().filter(|r| r.status == st).count();
    json(&json!({
        "response": to_hex(&resp),
        "accepted": count(CoinStatus::Accepted),
        "already_settled": count(CoinStatus::AlreadySettled),
        "rejected": count(CoinStatus::Rejected),
    }))
}

/// Body of `POST /v1/pay`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayBody {
    payment: String,
}

/// `POST /v1/pay`: an online payment, settled at once.
pub async fn pay(
    State(s): State<AppState>,
    JsonBody(b): JsonBody<PayBody>,
) -> Result<Response, ApiError> {
    let now = s.clock.now()?;
    let conf = blocking(&s, move |iss| {
        let payment: Payment = from_hex("payment", &b.payment)?;
        Ok(iss.pay_online(&payment, now)?)
    })
    .await?;
    json(&json!({ "confirmation": to_hex(&conf) }))
}

/// Any route not in the table.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no such endpoint {}: see /openapi.json", uri.path()),
    )
}

/// A known route with the wrong method.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{method} is not allowed on {}", uri.path()),
    )
}
