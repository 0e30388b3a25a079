//! The fan-out and the quorum rule: the one place that decides an attempt.

use std::{
    future::{Future, poll_fn},
    pin::{Pin, pin},
    sync::{Arc, Mutex, PoisonError},
    task::Poll,
    time::{Duration, Instant},
};

use futures_util::future::{Either, join_all, select};

use crate::{
    backend::{BackendError, BackendErrorKind, LockBackend},
    redlock::Redlock,
    runtime::Timer,
    stats::{AttemptStats, Operation, Outcome, Vote},
};

/// The backends of one `Redlock`, their names and the quorum.
pub(crate) struct Backends {
    list: Vec<Arc<dyn LockBackend>>,
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

/// A backend's answer, unified over the three requests.
enum Answer {
    Yes { released: usize },
    No,
}

impl Backends {
    pub(crate) fn new(list: Vec<Arc<dyn LockBackend>>, quorum_override: Option<usize>) -> Self {
        let names = list
            .iter()
            .map(|backend| Arc::from(backend.name()))
            .collect();
        let quorum = quorum_override.unwrap_or(list.len() / 2 + 1);
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
}

/// The keys and value of one lock, shared cheaply with in-flight requests, and the
/// lock's requests still unanswered when their round was decided.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) keys: Arc<Vec<String>>,
    pub(crate) value: Arc<str>,
    /// Per backend; allocated on the first straggler.
    stragglers: Arc<Mutex<Vec<Option<Straggler>>>>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

/// An acquire or extend request decided without its answer. It is kept rather than
/// dropped, so a client that only sends a request while its future lives (redis-rs
/// discards unsent requests of dropped futures) still delivers it and the lock lands on
/// every master that answers in time. The lock's next request to that backend drops it
/// first: by the backend contract, a request started after an earlier one was dropped
/// is never applied before it, so the straggler cannot overtake a release.
type Straggler = Call;

impl Target {
    pub(crate) fn new(keys: Vec<String>, value: Arc<str>) -> Self {
        Self {
            keys: Arc::new(keys),
            value,
            stragglers: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Vec<Option<Straggler>>> {
        self.stragglers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn take_straggler(&self, index: usize) -> Option<Straggler> {
        self.slots().get_mut(index).and_then(Option::take)
    }

    fn keep_straggler(&self, index: usize, call: Call) {
        let mut slots = self.slots();
        if slots.len() <= index {
            slots.resize_with(index + 1, || None);
        }
        slots[index] = Some(call);
    }
}

/// One round's parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    pub(crate) request: Request,
    pub(crate) timeout: Duration,
    pub(crate) drift: Duration,
    pub(crate) attempt: u32,
    pub(crate) wait: Wait,
    /// Releases only: until when a release that failed or timed out on a backend is
    /// re-sent in the background (see [`settle`]), normally the keys' expiry. `None`
    /// for the cleanup between two acquire attempts: the next attempt reuses the value,
    /// and a late re-send could delete the key it just set.
    pub(crate) settle_until: Option<Instant>,
}

/// How many times a release that failed on a backend is re-sent in the background.
const RELEASE_RESENDS: u32 = 3;

/// The pause before the first re-send of a failed release; each later one waits four
/// times longer (50, 200, 800 ms): long enough for a client to reconnect after a
/// dropped connection.
const FIRST_RESEND_PAUSE: Duration = Duration::from_millis(50);

type Call = Pin<Box<dyn Future<Output = Result<Answer, BackendError>> + Send + 'static>>;

/// Sends the request to every backend at once and collects answers until `spec.wait`
/// is satisfied or `spec.timeout` passes.
///
/// Every call is polled on the round's first poll, so every backend gets the request
/// even when the first answers already decide the outcome. Requests still unanswered
/// when the round is decided are not dropped (a client may discard the queued request
/// of a dropped future): acquires and extends stay with the lock (see [`Straggler`]),
/// releases are finished, and failed ones re-sent, by a background task (see
/// [`settle`]).
pub(crate) async fn round(redlock: &Redlock, timer: Timer, target: &Target, spec: Spec) -> Round {
    let backends = &redlock.backends;
    let n = backends.list.len();
    let start = Instant::now();
    let mut calls: Vec<Option<Call>> = (0..n)
        .map(|index| {
            // This lock's earlier unanswered request to the backend goes first: dropped
            // before the new one starts, it can no longer be applied after it.
            drop(target.take_straggler(index));
            Some(call(backends, index, target, spec.request))
        })
        .collect();
    let mut votes: Vec<Vote> = backends
        .names
        .iter()
        .map(|name| Vote {
            backend: Arc::clone(name),
            outcome: Outcome::NoReply,
            latency: None,
        })
        .collect();
    let (mut votes_for, mut votes_against, mut held_on) = (0, 0, 0);
    let mut timed_out = false;
    let mut deadline = pin!(timer.sleep(spec.timeout));
    poll_fn(|cx| {
        let mut pending = 0;
        for (index, slot) in calls.iter_mut().enumerate() {
            let Some(call) = slot else { continue };
            let Poll::Ready(answer) = call.as_mut().poll(cx) else {
                pending += 1;
                continue;
            };
            *slot = None;
            let vote = &mut votes[index];
            vote.latency = Some(start.elapsed());
            vote.outcome = match answer {
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
            tracing::trace!(backend = %vote.backend, outcome = ?vote.outcome, "backend answered");
        }
        let decided = votes_for >= backends.quorum || votes_against > n - backends.quorum;
        if pending == 0 || (spec.wait == Wait::Decision && decided) {
            return Poll::Ready(());
        }
        if deadline.as_mut().poll(cx).is_ready() {
            timed_out = true;
            for vote in &mut votes {
                if matches!(vote.outcome, Outcome::NoReply) {
                    vote.outcome = Outcome::TimedOut(spec.timeout);
                    votes_against += 1;
                }
            }
            return Poll::Ready(());
        }
        Poll::Pending
    })
    .await;
    let elapsed = start.elapsed();
    match spec.request {
        Request::Release => settle_releases(redlock, timer, target, spec, calls, &votes, start),
        Request::Acquire(_) | Request::Extend(_) if !timed_out => {
            for (index, call) in calls.into_iter().enumerate() {
                if let Some(call) = call {
                    target.keep_straggler(index, call);
                }
            }
        }
        Request::Acquire(_) | Request::Extend(_) => {}
    }
    let validity = match spec.request {
        Request::Acquire(ttl) | Request::Extend(ttl) => ttl
            .checked_sub(elapsed)
            .and_then(|left| left.checked_sub(spec.drift))
            .filter(|left| !left.is_zero()),
        Request::Release => None,
    };
    let stats = AttemptStats {
        operation: spec.request.operation(),
        attempt: spec.attempt,
        backends: n,
        quorum: backends.quorum,
        votes,
        elapsed,
        drift: spec.drift,
        validity,
    };
    tracing::debug!(
        operation = %stats.operation,
        attempt = spec.attempt,
        granted = votes_for,
        against = votes_against,
        quorum = backends.quorum,
        elapsed = ?elapsed,
        "attempt decided"
    );
    Round {
        start,
        stats,
        held_on,
    }
}

/// Hands a release round's unfinished business to a background task (see [`settle`]):
/// requests still unanswered at the decision, and (when `spec.settle_until` allows)
/// backends where the release failed or timed out.
fn settle_releases(
    redlock: &Redlock,
    timer: Timer,
    target: &Target,
    spec: Spec,
    calls: Vec<Option<Call>>,
    votes: &[Vote],
    start: Instant,
) {
    let resend_until = spec.settle_until.filter(|until| *until > Instant::now());
    let deadline = start.checked_add(spec.timeout).unwrap_or(start);
    let mut work = Vec::new();
    for (index, (call, vote)) in calls.into_iter().zip(votes).enumerate() {
        let unanswered = match (&vote.outcome, call) {
            (Outcome::NoReply, Some(call)) => Some(call),
            (Outcome::Failed(error), _) if resends(error.kind()) => None,
            (Outcome::TimedOut(_), _) => None,
            _ => continue,
        };
        if unanswered.is_none() && resend_until.is_none() {
            continue;
        }
        work.push(Unsettled {
            backend: Arc::clone(&redlock.backends.list[index]),
            unanswered,
            resend: true,
        });
    }
    if work.is_empty() {
        return;
    }
    let resend = Resend {
        keys: Arc::clone(&target.keys),
        value: Arc::clone(&target.value),
        timeout: spec.timeout,
        until: resend_until,
    };
    // The round's timer: `spawn` runs the task where that timer works.
    let spawned = redlock.runtime.spawn(settle(work, resend, timer, deadline));
    if !spawned {
        tracing::debug!(
            "no runtime to finish releases in the background; their keys expire with their TTL"
        );
    }
}

/// A backend a release round left unsettled.
struct Unsettled {
    backend: Arc<dyn LockBackend>,
    /// The round's request while it is unanswered; `None` when it failed, timed out or
    /// (in [`settle`]) was answered.
    unanswered: Option<Call>,
    /// Whether to send the release again: until the request is answered, and after an
    /// answer that [`worth_resending`] says so.
    resend: bool,
}

/// How failed releases are re-sent.
struct Resend {
    keys: Arc<Vec<String>>,
    value: Arc<str>,
    timeout: Duration,
    /// No re-send starts after this; `None`: no re-sends.
    until: Option<Instant>,
}

/// Whether a release that failed this way is worth sending again: the connection or
/// the client may recover; a refused script or credentials will not.
fn resends(kind: BackendErrorKind) -> bool {
    matches!(
        kind,
        BackendErrorKind::Connection | BackendErrorKind::Timeout | BackendErrorKind::Other
    )
}

/// Finishes what a release round left: drives unanswered requests until `deadline`
/// (the round's request timeout), then re-sends releases that failed or timed out, up
/// to [`RELEASE_RESENDS`] times with growing pauses and never after `resend.until`.
///
/// Unanswered requests are not dropped at the decision: a client may only send a
/// request, or its fallback (EVAL after NOSCRIPT), while the request's future is
/// polled, and a master that never saw the release keeps the key until its TTL. Failed
/// ones are sent again because a release lost with a dropped connection (its request
/// written just before the drop, or refused while the client reconnects) would leave
/// the key behind just the same. A release deletes only keys holding this lock's value,
/// so sending it again is harmless. The task owns only the backends, keys and value, so
/// it keeps no `Redlock` alive, and it ends after the request timeout plus at most
/// three re-sends (about 1 to 3 s with the derived timeouts).
async fn settle(mut work: Vec<Unsettled>, resend: Resend, timer: Timer, deadline: Instant) {
    // First the unanswered requests, all under the round's deadline (one timer).
    if work.iter().any(|unsettled| unsettled.unanswered.is_some()) {
        let mut expired = pin!(timer.sleep_until(deadline));
        poll_fn(|cx| {
            let mut waiting = false;
            for unsettled in &mut work {
                let Some(call) = &mut unsettled.unanswered else {
                    continue;
                };
                match call.as_mut().poll(cx) {
                    Poll::Ready(answer) => {
                        unsettled.resend = worth_resending(&answer);
                        unsettled.unanswered = None;
                    }
                    Poll::Pending => waiting = true,
                }
            }
            if !waiting || expired.as_mut().poll(cx).is_ready() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }
    let Some(until) = resend.until else { return };
    let resend = &resend;
    // Requests still unanswered timed out: dropped here, and sent again.
    join_all(
        work.into_iter()
            .filter(|unsettled| unsettled.resend)
            .map(|unsettled| async move {
                drop(unsettled.unanswered);
                let mut pause = FIRST_RESEND_PAUSE;
                for _ in 0..RELEASE_RESENDS {
                    if Instant::now().checked_add(pause).is_none_or(|at| at >= until) {
                        return;
                    }
                    timer.sleep(pause).await;
                    pause = pause.saturating_mul(4);
                    let again = resend_once(&unsettled.backend, resend, timer).await;
                    tracing::debug!(backend = %unsettled.backend.name(), again, "release sent again");
                    if !again {
                        return;
                    }
                }
            }),
    )
    .await;
}

/// Sends the release to `backend` once more and waits for it up to the request timeout;
/// `true` when it is worth sending again (see [`worth_resending`]; a timeout is).
async fn resend_once(backend: &Arc<dyn LockBackend>, resend: &Resend, timer: Timer) -> bool {
    let release = backend.release(&resend.keys, &resend.value);
    let expired = pin!(timer.sleep(resend.timeout));
    match select(release, expired).await {
        Either::Left((answer, _)) => worth_resending(&answer),
        Either::Right(_) => true,
    }
}

/// Whether a release answered this way is worth sending again: it failed in a way the
/// connection or client may recover from ([`resends`]).
fn worth_resending<T>(answer: &Result<T, BackendError>) -> bool {
    answer.as_ref().is_err_and(|error| resends(error.kind()))
}

/// One backend's request, owning what it needs so it can outlive the round.
fn call(backends: &Backends, index: usize, target: &Target, request: Request) -> Call {
    // Only this backend and the lock's keys and value: a request kept past its round
    // must not keep the whole `Redlock` (or the lock's other requests) alive.
    let backend = Arc::clone(&backends.list[index]);
    let (keys, value) = (Arc::clone(&target.keys), Arc::clone(&target.value));
    Box::pin(async move {
        match request {
            Request::Acquire(ttl) => backend
                .acquire(&keys, &value, ttl)
                .await
                .map(Answer::from_bool),
            Request::Extend(ttl) => backend
                .extend(&keys, &value, ttl)
                .await
                .map(Answer::from_bool),
            Request::Release => backend
                .release(&keys, &value)
                .await
                .map(|released| Answer::Yes { released }),
        }
    })
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
