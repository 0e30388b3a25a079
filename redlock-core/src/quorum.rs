//! The fan-out and the quorum rule: the one place that decides an attempt.

use std::{
    future::{Future, poll_fn},
    pin::pin,
    sync::Arc,
    task::Poll,
    time::{Duration, Instant},
};

use crate::{
    backend::{BackendError, LockBackend},
    runtime::Timer,
    stats::{AttemptStats, Operation, Outcome, Vote},
};

/// The backends of one `Redlock`, their names and the quorum.
pub(crate) struct Backends {
    list: Vec<Box<dyn LockBackend>>,
    names: Vec<Arc<str>>,
    quorum: usize,
}

/// What one round asks of every backend.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Request {
    Acquire(Duration),
    Extend(Duration),
    Release,
}

impl Request {
    fn operation(self) -> Operation {
        match self {
            Self::Acquire(_) => Operation::Acquire,
            Self::Extend(_) => Operation::Extend,
            Self::Release => Operation::Release,
        }
    }
}

/// How long a round waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Until the outcome is decided: a quorum for, or too many against for one.
    Decision,
    /// Until every backend answered or the request timeout passed.
    All,
}

/// How a round ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A quorum voted for and validity remains.
    Success,
    /// A quorum voted for, but no validity remains.
    ValidityExhausted,
    /// Refusals alone make a quorum impossible (held elsewhere / no longer ours).
    Refused,
    /// Failures and timeouts (perhaps with some refusals) make a quorum impossible.
    Unavailable,
}

/// What one round saw.
#[derive(Debug)]
pub(crate) struct Round {
    pub(crate) start: Instant,
    pub(crate) stats: AttemptStats,
    /// How many backends still held at least one of our keys (release only).
    pub(crate) held_on: usize,
}

impl Round {
    pub(crate) fn verdict(&self) -> Verdict {
        let stats = &self.stats;
        if stats.granted() >= stats.quorum {
            if stats.operation == Operation::Release || stats.validity.is_some() {
                Verdict::Success
            } else {
                Verdict::ValidityExhausted
            }
        } else if stats.refused() > stats.backends - stats.quorum {
            Verdict::Refused
        } else {
            Verdict::Unavailable
        }
    }
}

type BoxFuture<'a, T> =
    std::pin::Pin<Box<dyn Future<Output = Result<T, BackendError>> + Send + 'a>>;

/// One backend's request in flight.
enum Call<'a> {
    Granted(BoxFuture<'a, bool>),
    Released(BoxFuture<'a, usize>),
}

impl Call<'_> {
    fn poll(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Result<Answer, BackendError>> {
        match self {
            Self::Granted(call) => call.as_mut().poll(cx).map_ok(Answer::from_bool),
            Self::Released(call) => call
                .as_mut()
                .poll(cx)
                .map_ok(|released| Answer::Yes { released }),
        }
    }
}

/// A backend's answer, unified over the three requests.
enum Answer {
    Yes { released: usize },
    No,
}

impl Backends {
    pub(crate) fn new(list: Vec<Box<dyn LockBackend>>) -> Self {
        let names = list
            .iter()
            .map(|backend| Arc::from(backend.name()))
            .collect();
        let quorum = list.len() / 2 + 1;
        Self {
            list,
            names,
            quorum,
        }
    }

    pub(crate) fn quorum(&self) -> usize {
        self.quorum
    }

    pub(crate) fn names(&self) -> &[Arc<str>] {
        &self.names
    }

    /// Sends `request` to every backend at once and collects answers until `wait` is
    /// satisfied or `timeout` passes.
    ///
    /// Requests still unanswered when the round ends are dropped. The backend contract
    /// (ordering after drop) keeps a later release from overtaking them.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn round(
        &self,
        timer: Timer,
        request: Request,
        keys: &[String],
        value: &str,
        timeout: Duration,
        drift: Duration,
        attempt: u32,
        wait: Wait,
    ) -> Round {
        let n = self.list.len();
        let start = Instant::now();
        // Every call is polled on the first poll of the round, so every backend gets
        // the request even when the first answers already decide the outcome.
        let mut calls: Vec<Option<Call<'_>>> = self
            .list
            .iter()
            .map(|backend| {
                Some(match request {
                    Request::Acquire(ttl) => Call::Granted(backend.acquire(keys, value, ttl)),
                    Request::Extend(ttl) => Call::Granted(backend.extend(keys, value, ttl)),
                    Request::Release => Call::Released(backend.release(keys, value)),
                })
            })
            .collect();
        let mut outcomes = vec![Outcome::NoReply; n];
        let mut latencies = vec![None; n];
        let (mut votes_for, mut votes_against, mut held_on) = (0, 0, 0);
        let mut deadline = pin!(timer.sleep(timeout));
        poll_fn(|cx| {
            let mut pending = 0;
            for (index, slot) in calls.iter_mut().enumerate() {
                let Some(call) = slot else { continue };
                let Poll::Ready(answer) = call.poll(cx) else {
                    pending += 1;
                    continue;
                };
                *slot = None;
                latencies[index] = Some(start.elapsed());
                outcomes[index] = match answer {
                    Ok(Answer::Yes { released }) => {
                        votes_for += 1;
                        held_on += usize::from(released > 0);
                        Outcome::Granted
                    }
                    Ok(Answer::No) => {
                        votes_against += 1;
                        Outcome::Refused
                    }
                    Err(error) => {
                        votes_against += 1;
                        Outcome::Failed(Arc::new(error))
                    }
                };
                tracing::trace!(
                    backend = %self.names[index],
                    outcome = ?outcomes[index],
                    "backend answered"
                );
            }
            let decided = votes_for >= self.quorum || votes_against > n - self.quorum;
            if pending == 0 || (wait == Wait::Decision && decided) {
                return Poll::Ready(());
            }
            if deadline.as_mut().poll(cx).is_ready() {
                for outcome in &mut outcomes {
                    if matches!(outcome, Outcome::NoReply) {
                        *outcome = Outcome::TimedOut(timeout);
                        votes_against += 1;
                    }
                }
                return Poll::Ready(());
            }
            Poll::Pending
        })
        .await;
        drop(calls);
        let elapsed = start.elapsed();
        let validity = match request {
            Request::Acquire(ttl) | Request::Extend(ttl) => ttl
                .checked_sub(elapsed)
                .and_then(|left| left.checked_sub(drift))
                .filter(|left| !left.is_zero()),
            Request::Release => None,
        };
        let votes = outcomes
            .into_iter()
            .zip(latencies)
            .zip(&self.names)
            .map(|((outcome, latency), name)| Vote {
                backend: Arc::clone(name),
                outcome,
                latency,
            })
            .collect();
        let stats = AttemptStats {
            operation: request.operation(),
            attempt,
            backends: n,
            quorum: self.quorum,
            votes,
            elapsed,
            drift,
            validity,
        };
        tracing::debug!(
            operation = %stats.operation,
            attempt,
            granted = votes_for,
            against = votes_against,
            quorum = self.quorum,
            elapsed = ?elapsed,
            "attempt decided"
        );
        Round {
            start,
            stats,
            held_on,
        }
    }
}

impl Answer {
    fn from_bool(yes: bool) -> Self {
        if yes {
            Self::Yes { released: 0 }
        } else {
            Self::No
        }
    }
}
