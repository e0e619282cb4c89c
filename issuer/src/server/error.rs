//! The service's errors: a stable numeric code, a snake_case name and an HTTP status, sent as
//! `{"code":1001,"error":"decode_error","message":"..."}`. See docs/api.md#errors.
//!
//! Invariant: bad input is 4xx, never 5xx; 500 is only for storage failures and damaged state.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tongbao::codec::DecodeError;
use tongbao::crypto::CryptoError;
use tongbao::protocol::VerifyError;

use crate::IssuerError;

/// A stable error code. Numbers never change meaning; new ones are added at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Malformed JSON, wrong content type, bad hex, missing or unknown field, bad parameter.
    BadRequest,
    /// The hex decoded but the bytes are not a valid canonical message.
    DecodeError,
    /// A signature does not verify.
    BadSignature,
    /// A message failed a protocol rule (keys, values, chain, limits, time).
    VerificationFailed,
    /// Something expired.
    Expired,
    /// The wallet is not registered (certified) with this issuer.
    UnknownWallet,
    /// The wallet is revoked.
    Revoked,
    /// A sync id reused for a different request, a registration for a key already certified, or
    /// a state that already holds.
    Conflict,
    /// The issuer refuses the request (policy).
    Refused,
    /// The body is larger than the limit.
    PayloadTooLarge,
    /// Missing or wrong operator token.
    Unauthorized,
    /// No such route.
    NotFound,
    /// The request took longer than the limit.
    Timeout,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// Storage failed or the ledger is damaged.
    Internal,
}

/// Every code, in order (docs/api.md and the OpenAPI document list the same).
pub const ERROR_CODES: &[ErrorCode] = &[
    ErrorCode::BadRequest,
    ErrorCode::DecodeError,
    ErrorCode::BadSignature,
    ErrorCode::VerificationFailed,
    ErrorCode::Expired,
    ErrorCode::UnknownWallet,
    ErrorCode::Revoked,
    ErrorCode::Conflict,
    ErrorCode::Refused,
    ErrorCode::PayloadTooLarge,
    ErrorCode::Unauthorized,
    ErrorCode::NotFound,
    ErrorCode::Timeout,
    ErrorCode::MethodNotAllowed,
    ErrorCode::Internal,
];

impl ErrorCode {
    /// The number.
    pub fn code(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 1000,
            ErrorCode::DecodeError => 1001,
            ErrorCode::BadSignature => 1002,
            ErrorCode::VerificationFailed => 1003,
            ErrorCode::Expired => 1004,
            ErrorCode::UnknownWallet => 1005,
            ErrorCode::Revoked => 1006,
            ErrorCode::Conflict => 1007,
            ErrorCode::Refused => 1008,
            ErrorCode::PayloadTooLarge => 1009,
            ErrorCode::Unauthorized => 1010,
            ErrorCode::NotFound => 1011,
            ErrorCode::Timeout => 1012,
            ErrorCode::MethodNotAllowed => 1013,
            ErrorCode::Internal => 5000,
        }
    }

    /// The snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::DecodeError => "decode_error",
            ErrorCode::BadSignature => "bad_signature",
            ErrorCode::VerificationFailed => "verification_failed",
            ErrorCode::Expired => "expired",
            ErrorCode::UnknownWallet => "unknown_wallet",
            ErrorCode::Revoked => "revoked",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Refused => "refused",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Timeout => "timeout",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest | ErrorCode::DecodeError => StatusCode::BAD_REQUEST,
            ErrorCode::BadSignature
            | ErrorCode::VerificationFailed
            | ErrorCode::Expired
            | ErrorCode::UnknownWallet
            | ErrorCode::Refused => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::Revoked => StatusCode::FORBIDDEN,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Timeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Which.
    pub code: ErrorCode,
    /// One line for people.
    pub message: String,
}

impl ApiError {
    /// An error with a message (folded onto one line).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        let message: String = message.into();
        let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
        ApiError { code, message }
    }

    /// 400 bad_request.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::BadRequest, message)
    }

    /// 500 internal (logged to stderr too).
    pub fn internal(message: impl Into<String>) -> ApiError {
        let e = ApiError::new(ErrorCode::Internal, message);
        eprintln!("error: {}", e.message);
        e
    }

    /// A decoding failure of the message in `field`.
    pub fn decode(field: &str, e: &DecodeError) -> ApiError {
        ApiError::new(ErrorCode::DecodeError, format!("{field}: {e}"))
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.code.name(),
            self.code.code(),
            self.message
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "code": self.code.code(),
            "error": self.code.name(),
            "message": self.message,
        });
        let mut resp = (self.code.status(), body.to_string()).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp
    }
}

impl From<VerifyError> for ApiError {
    fn from(e: VerifyError) -> ApiError {
        let code = match &e {
            VerifyError::Decode(_) => ErrorCode::DecodeError,
            VerifyError::Crypto(CryptoError::BadSignature(_))
            | VerifyError::BadIssuerSignature(_) => ErrorCode::BadSignature,
            VerifyError::Crypto(CryptoError::BadAddress(..)) => ErrorCode::BadRequest,
            VerifyError::Expired { .. } => ErrorCode::Expired,
            VerifyError::Revoked(_) => ErrorCode::Revoked,
            VerifyError::UnknownIssuerKey(_)
            | VerifyError::IssuerKeyNotValid { .. }
            | VerifyError::OtherIssuer(_)
            | VerifyError::ValueNotConserved { .. }
            | VerifyError::TooManyHops { .. }
            | VerifyError::BrokenChain(_)
            | VerifyError::BadOutputIndex(_)
            | VerifyError::TimeOrder
            | VerifyError::FromTheFuture(_)
            | VerifyError::OverLimit { .. }
            | VerifyError::BadPayment(_)
            | VerifyError::Earmark(_)
            | VerifyError::Mismatch(_) => ErrorCode::VerificationFailed,
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<IssuerError> for ApiError {
    fn from(e: IssuerError) -> ApiError {
        match e {
            IssuerError::Verify(v) => v.into(),
            IssuerError::Revoked(_) => ApiError::new(ErrorCode::Revoked, e.to_string()),
            IssuerError::Conflict(_) => ApiError::new(ErrorCode::Conflict, e.to_string()),
            IssuerError::UnknownWallet(_) => ApiError::new(ErrorCode::UnknownWallet, e.to_string()),
            IssuerError::Refused(msg) => ApiError::new(ErrorCode::Refused, msg),
            IssuerError::GroupFailed(_)
            | IssuerError::Store(_)
            | IssuerError::Corrupt(_)
            | IssuerError::NotInitialized(_)
            | IssuerError::AlreadyInitialized(_) => ApiError::internal(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_bad_input_is_never_5xx() {
        let mut seen = std::collections::HashSet::new();
        for c in ERROR_CODES {
            assert!(seen.insert(c.code()), "duplicate code {}", c.code());
            assert_eq!(
                c.status().is_server_error(),
                *c == ErrorCode::Internal,
                "{}",
                c.name()
            );
        }
    }

    #[test]
    fn issuer_errors_map_to_stable_codes() {
        let code = |e: IssuerError| ApiError::from(e).code;
        assert_eq!(
            code(IssuerError::Conflict("sync id reused".into())),
            ErrorCode::Conflict
        );
        assert_eq!(
            code(IssuerError::UnknownWallet("no such wallet".into())),
            ErrorCode::UnknownWallet
        );
        assert_eq!(
            code(IssuerError::Revoked("tbw1x".into())),
            ErrorCode::Revoked
        );
        assert_eq!(
            code(IssuerError::Refused("amount must be above zero".into())),
            ErrorCode::Refused
        );
        assert_eq!(
            code(IssuerError::GroupFailed("storage: disk".into())),
            ErrorCode::Internal
        );
    }

    #[test]
    fn every_bad_signature_is_bad_signature() {
        for e in [
            VerifyError::Crypto(CryptoError::BadSignature("sync request")),
            VerifyError::BadIssuerSignature("note"),
            VerifyError::BadIssuerSignature("certificate"),
        ] {
            let api = ApiError::from(e);
            assert_eq!(api.code, ErrorCode::BadSignature, "{}", api.message);
        }
    }
}
