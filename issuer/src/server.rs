//! The settlement service behind `issuer serve`: HTTP/JSON over the [`Issuer`]. See docs/api.md.
//!
//! Binary protocol messages travel as lower-case hex of their canonical bytes, never re-serialised
//! as JSON. Sync requests are verified on every core (`spawn_blocking`) and settled by one writer
//! thread in groups: one atomic batch and one flush per group (group commit, [`writer`]). Every
//! answer is sent only after the change it reports is durable.
//!
//! API boundary: [`run`] takes a bound listener and a shutdown future, so tests bind
//! `127.0.0.1:0` and stop the server when they like (mini-redis style).

mod error;
mod extract;
mod handlers;
mod operator;
mod writer;

use std::future::{Future, IntoFuture as _};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};

use crate::Issuer;
pub use error::{ApiError, ERROR_CODES, ErrorCode};

/// The OpenAPI 3.0 document served at `GET /openapi.json` (hand-written; a test keeps it in step
/// with [`ROUTES`] and [`ERROR_CODES`]).
pub const OPENAPI_JSON: &str = include_str!("server/openapi.json");

/// Default largest request body: 16 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024 * 1024;
/// Default per-request timeout: 30 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default most sync requests settled in one group commit.
pub const DEFAULT_GROUP_MAX: usize = 256;
/// Default longest the writer waits for more requests to join a group.
pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_millis(1);
/// Default longest a shutdown waits for open connections: the request timeout and 5 s.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(35);

/// HTTP method of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// POST.
    Post,
}

impl Method {
    /// Lower-case name, as in an OpenAPI path item.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Post => "post",
        }
    }
}

/// One route the service serves.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// Method.
    pub method: Method,
    /// Path.
    pub path: &'static str,
    /// Whether it needs the operator token.
    pub operator: bool,
}

const fn route(method: Method, path: &'static str, operator: bool) -> Route {
    Route {
        method,
        path,
        operator,
    }
}

/// Every route, in one table: the router is built from it and the OpenAPI check reads it.
pub const ROUTES: &[Route] = &[
    route(Method::Get, "/openapi.json", false),
    route(Method::Get, "/v1/health", false),
    route(Method::Get, "/v1/keys", false),
    route(Method::Get, "/v1/revocations", false),
    route(Method::Post, "/v1/register", false),
    route(Method::Post, "/v1/sync", false),
    route(Method::Post, "/v1/pay", false),
    route(Method::Get, "/v1/operator/stats", true),
    route(Method::Post, "/v1/operator/audit", true),
    route(Method::Post, "/v1/operator/revoke", true),
    route(Method::Post, "/v1/operator/keys/rotate", true),
    route(Method::Post, "/v1/operator/certify", true),
    route(Method::Post, "/v1/operator/issue", true),
    route(Method::Post, "/v1/operator/recover", true),
    route(Method::Post, "/v1/operator/settle", true),
];

/// The handler of a route in [`ROUTES`].
fn handler(r: &Route) -> Option<MethodRouter<AppState>> {
    Some(match (r.method, r.path) {
        (Method::Get, "/openapi.json") => get(handlers::openapi),
        (Method::Get, "/v1/health") => get(handlers::health),
        (Method::Get, "/v1/keys") => get(handlers::keys),
        (Method::Get, "/v1/revocations") => get(handlers::revocations),
        (Method::Post, "/v1/register") => post(handlers::register),
        (Method::Post, "/v1/sync") => post(handlers::sync),
        (Method::Post, "/v1/pay") => post(handlers::pay),
        (Method::Get, "/v1/operator/stats") => get(operator::stats),
        (Method::Post, "/v1/operator/audit") => post(operator::audit),
        (Method::Post, "/v1/operator/revoke") => post(operator::revoke),
        (Method::Post, "/v1/operator/keys/rotate") => post(operator::rotate),
        (Method::Post, "/v1/operator/certify") => post(operator::certify),
        (Method::Post, "/v1/operator/issue") => post(operator::issue),
        (Method::Post, "/v1/operator/recover") => post(operator::recover),
        (Method::Post, "/v1/operator/settle") => post(operator::settle),
        _ => return None,
    })
}

/// How the service behaves.
#[derive(Clone)]
pub struct ServerConfig {
    /// Largest request body in bytes; more is refused with 413.
    pub body_limit: usize,
    /// Longest one request may take (reading its body included); then 408.
    pub request_timeout: Duration,
    /// The operator's bearer token; `None` refuses every operator request.
    pub operator_token: Option<String>,
    /// A fixed clock (unix seconds) for tests; `None` reads `TONGBAO_NOW` or the system clock on
    /// every request.
    pub clock: Option<u64>,
    /// Most sync requests settled in one group commit.
    pub group_max: usize,
    /// Longest the writer waits for more requests to join a group.
    pub group_wait: Duration,
    /// Longest a shutdown waits for open connections to finish; then they are left behind.
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            body_limit: DEFAULT_BODY_LIMIT,
            request_timeout: DEFAULT_TIMEOUT,
            operator_token: None,
            clock: None,
            group_max: DEFAULT_GROUP_MAX,
            group_wait: DEFAULT_GROUP_WAIT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("body_limit", &self.body_limit)
            .field("request_timeout", &self.request_timeout)
            .field(
                "operator_token",
                &self.operator_token.as_ref().map(|_| "<redacted>"),
            )
            .field("clock", &self.clock)
            .field("group_max", &self.group_max)
            .field("group_wait", &self.group_wait)
            .field("shutdown_grace", &self.shutdown_grace)
            .finish()
    }
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState(Arc<Inner>);

pub(crate) struct Inner {
    pub issuer: Arc<Issuer>,
    pub clock: Clock,
    /// blake3 of the operator token (compared in constant time).
    pub token_hash: Option<blake3::Hash>,
    pub writer: writer::Handle,
    /// Bounds concurrent signature checks to the cores (the blocking pool itself is much larger).
    pub verify_slots: Arc<tokio::sync::Semaphore>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The request clock: fixed (tests) or `TONGBAO_NOW` / the system clock, read per request.
#[derive(Clone, Copy)]
pub(crate) struct Clock(Option<u64>);

impl Clock {
    pub fn now(self) -> Result<u64, ApiError> {
        match self.0 {
            Some(t) => Ok(t),
            None => tongbao::time::now_from_env()
                .map_err(|e| ApiError::internal(format!("TONGBAO_NOW: {e}"))),
        }
    }
}

/// Builds the router: every route of [`ROUTES`], JSON 404/405 fallbacks, the body limit and the
/// per-request timeout.
fn router(state: AppState, config: &ServerConfig) -> anyhow::Result<Router> {
    let mut app: Router<AppState> = Router::new();
    for r in ROUTES {
        let h = handler(r).with_context(|| format!("no handler for {}", r.path))?;
        app = app.route(r.path, h);
    }
    Ok(app
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(DefaultBodyLimit::max(config.body_limit))
        .layer(middleware::from_fn_with_state(
            config.request_timeout,
            timeout,
        ))
        .with_state(state))
}

/// Answers 408 when a request (reading its body included) takes longer than the limit. Work
/// already handed to the writer still completes; a retry of the same sync gets its response.
async fn timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError::new(
            ErrorCode::Timeout,
            format!("the request took longer than {} ms", limit.as_millis()),
        )
        .into_response(),
    }
}

/// Serves the API on `listener` until `shutdown` completes, then finishes the requests in flight,
/// lets the writer settle what it was given, and returns.
pub async fn run(
    listener: tokio::net::TcpListener,
    issuer: Arc<Issuer>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let clock = Clock(config.clock);
    let (writer, join) = writer::spawn(
        issuer.clone(),
        clock,
        config.group_max.max(1),
        config.group_wait,
    )?;
    let state = AppState(Arc::new(Inner {
        issuer,
        clock,
        token_hash: config
            .operator_token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| blake3::hash(t.as_bytes())),
        writer: writer.clone(),
        verify_slots: Arc::new(tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(2, usize::from),
        )),
    }));
    let app = router(state, &config)?;
    // After the shutdown signal, connections get `shutdown_grace` to finish; a client that keeps
    // one open longer (say, one that never finishes its headers) is left behind rather than
    // holding the shutdown forever.
    let grace = config.shutdown_grace;
    let (fired, signalled) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        let _ = fired.send(());
    };
    let serve = axum::serve(listener, app)
        .with_graceful_shutdown(signal)
        .into_future();
    let overdue = async move {
        match signalled.await {
            Ok(()) => tokio::time::sleep(grace).await,
            Err(_) => std::future::pending::<()>().await,
        }
    };
    let served = tokio::select! {
        r = serve => r.context("serving HTTP"),
        () = overdue => {
            eprintln!(
                "warning: connections still open {} ms after shutdown: leaving them",
                grace.as_millis()
            );
            Ok(())
        }
    };
    // No request is in flight any more: the writer settles what is queued, then stops (anything
    // a left-behind connection submits later is refused with 500 and can be retried).
    writer.stop();
    let joined = tokio::task::spawn_blocking(move || join.join())
        .await
        .context("joining the settlement writer")?;
    served?;
    joined.map_err(|_| anyhow::anyhow!("the settlement writer panicked"))?;
    Ok(())
}
