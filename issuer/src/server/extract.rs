//! Request extractors whose rejections are the service's JSON errors (axum's own are plain text):
//! JSON bodies, hex-encoded protocol messages, the operator's bearer token.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use tongbao::codec::Decode;

use super::AppState;
use super::error::{ApiError, ErrorCode};

/// A JSON request body: `Content-Type: application/json`, within the body limit, well-formed.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::bad_request(
                "expected a JSON body with Content-Type: application/json",
            ));
        }
        let bytes = body_bytes(req, state).await?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))
    }
}

/// A JSON body that may be left out: an empty body (any content type) is `T::default()`.
pub struct OptionalJsonBody<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<AppState> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let empty = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() == b"0")
            || (req.headers().get(header::CONTENT_LENGTH).is_none()
                && req.headers().get(header::TRANSFER_ENCODING).is_none());
        if empty {
            return Ok(OptionalJsonBody(T::default()));
        }
        let JsonBody(v) = JsonBody::from_request(req, state).await?;
        Ok(OptionalJsonBody(v))
    }
}

async fn body_bytes(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                "the request body is larger than the server's limit",
            )
        } else {
            ApiError::bad_request(format!(
                "could not read the request body: {}",
                r.body_text()
            ))
        }
    })
}

/// Decodes a protocol message sent as hex of its canonical bytes.
pub fn from_hex<T: Decode>(field: &str, text: &str) -> Result<T, ApiError> {
    let bytes = hex::decode(text.trim())
        .map_err(|e| ApiError::bad_request(format!("{field}: not hex: {e}")))?;
    T::decode(&bytes).map_err(|e| ApiError::decode(field, &e))
}

/// Lower-case hex of a message's canonical bytes.
pub fn to_hex<T: tongbao::codec::Encode>(msg: &T) -> String {
    hex::encode(msg.to_bytes())
}

/// Proof that the request carries the operator's bearer token.
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let unauthorized = |m: &str| ApiError::new(ErrorCode::Unauthorized, m);
        let Some(expected) = state.token_hash else {
            return Err(unauthorized(
                "operator endpoints are disabled: the server has no operator token",
            ));
        };
        let given = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                unauthorized("operator endpoints need Authorization: Bearer <operator.token>")
            })?;
        // blake3::Hash compares in constant time.
        if blake3::hash(given.as_bytes()) != expected {
            return Err(unauthorized("wrong operator token"));
        }
        Ok(Operator)
    }
}
