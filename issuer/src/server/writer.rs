//! The one settlement writer: group commit of sync requests.
//!
//! Handlers verify a request's signatures on the blocking pool ([`Issuer::precheck`], no lock),
//! then queue it here with a reply channel. The writer thread takes whatever is queued (up to
//! `group_max`, waiting at most `group_wait` for more), settles the group with one call to
//! [`Issuer::sync_prechecked`] (one atomic batch, one flush), and only then answers every request
//! of the group. Invariant: no answer leaves before the change it reports is durable.

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tongbao::protocol::sync::{SyncRequest, SyncResponse};

use super::Clock;
use super::error::ApiError;
use crate::Issuer;
use crate::settle::Prechecked;

/// The answer to one queued request.
pub type Reply = Result<SyncResponse, ApiError>;

/// A prechecked sync request waiting to be settled.
pub struct Job {
    /// The request.
    pub req: SyncRequest,
    /// Its chains after the signature checks.
    pub checked: Prechecked,
    /// Where the answer goes (a dropped receiver is fine: the result is stored for a replay).
    pub reply: oneshot::Sender<Reply>,
}

enum Msg {
    Job(Box<Job>),
    Stop,
}

/// The sending side, shared by the handlers.
#[derive(Clone)]
pub struct Handle(mpsc::Sender<Msg>);

impl Handle {
    /// Queues a job; fails only if the writer has stopped.
    pub fn submit(&self, job: Job) -> Result<(), ApiError> {
        self.0
            .send(Msg::Job(Box::new(job)))
            .map_err(|_| ApiError::internal("the settlement writer has stopped"))
    }

    /// Asks the writer to stop once everything queued before is settled.
    pub fn stop(&self) {
        let _ = self.0.send(Msg::Stop);
    }
}

/// Starts the writer thread.
pub fn spawn(
    issuer: Arc<Issuer>,
    clock: Clock,
    group_max: usize,
    group_wait: Duration,
) -> std::io::Result<(Handle, JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel();
    let join = std::thread::Builder::new()
        .name("settlement-writer".into())
        .spawn(move || writer_loop(&issuer, clock, &rx, group_max, group_wait))?;
    Ok((Handle(tx), join))
}

fn writer_loop(
    issuer: &Issuer,
    clock: Clock,
    rx: &mpsc::Receiver<Msg>,
    group_max: usize,
    group_wait: Duration,
) {
    let mut stopping = false;
    while !stopping {
        let first = match rx.recv() {
            Ok(Msg::Job(j)) => *j,
            Ok(Msg::Stop) | Err(_) => return,
        };
        let mut group = vec![first];
        let deadline = Instant::now() + group_wait;
        while group.len() < group_max {
            let next = match rx.try_recv() {
                Ok(m) => m,
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    match rx.recv_timeout(left) {
                        Ok(m) => m,
                        Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                    }
                }
            };
            match next {
                Msg::Job(j) => group.push(*j),
                Msg::Stop => {
                    stopping = true;
                    break;
                }
            }
        }
        settle_group(issuer, clock, group);
    }
}

/// Settles one group with one durable commit, then answers each request.
fn settle_group(issuer: &Issuer, clock: Clock, group: Vec<Job>) {
    let now = match clock.now() {
        Ok(t) => t,
        Err(e) => {
            for j in group {
                let _ = j.reply.send(Err(e.clone()));
            }
            return;
        }
    };
    let mut reqs = Vec::with_capacity(group.len());
    let mut checked = Vec::with_capacity(group.len());
    let mut replies = Vec::with_capacity(group.len());
    for j in group {
        reqs.push(j.req);
        checked.push(Ok(j.checked));
        replies.push(j.reply);
    }
    // A panic in settlement must not take the writer (and so the service) down with it.
    let results = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        issuer.sync_prechecked(&reqs, checked, now)
    }));
    match results {
        Ok(results) => {
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(result.map_err(ApiError::from));
            }
        }
        Err(_) => {
            let e = ApiError::internal("settlement failed unexpectedly: retry the same request");
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}
