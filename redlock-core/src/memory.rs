//! [`MemoryBackend`]: an in-process [`LockBackend`] with fault injection, for tests.

use std::{
    collections::{HashMap, VecDeque},
    fmt,
    future::pending,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use async_trait::async_trait;

use crate::{
    backend::{BackendError, BackendErrorKind, LockBackend},
    runtime::Timer,
};

/// A fault a [`MemoryBackend`] injects into every request until cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Requests fail with a [`BackendErrorKind::Connection`] error and change nothing.
    Error,
    /// Requests are applied but their reply is lost: the future never completes (the
    /// caller's request timeout fires).
    DropReply,
    /// Release requests fail and change nothing; acquire and extend work.
    FailReleases,
}

/// How many requests of each kind a [`MemoryBackend`] received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Calls {
    /// Acquire requests.
    pub acquire: u64,
    /// Extend requests.
    pub extend: u64,
    /// Release requests.
    pub release: u64,
}

/// An in-process lock store honoring TTLs, with fault injection.
///
/// Meant for unit tests of code that uses [`Redlock`](crate::Redlock), and for core's
/// own tests. It behaves like one Redis master reached over one connection: requests
/// are applied in the order they were issued, also when the caller stopped waiting for
/// an earlier one. Clones share the same store.
///
/// Faults, per instance and switchable at any time:
/// - [`set_fault`](Self::set_fault): fail requests, or apply them and lose the reply;
/// - [`set_delay`](Self::set_delay): apply and answer each request only after a delay;
/// - [`pause`](Self::pause) / [`resume`](Self::resume): hold requests unapplied, like a
///   stopped server, then apply them in order;
/// - [`hold`](Self::hold): own keys as if another client held them.
///
/// Inspection: [`keys`](Self::keys), [`value`](Self::value), [`ttl`](Self::ttl),
/// [`calls`](Self::calls).
///
/// Delays and pauses need a runtime timer (`tokio`, `async-std` or `smol` feature).
///
/// ```
/// # #[cfg(feature = "tokio")]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), redlock_core::LockError> {
/// use std::time::Duration;
/// use redlock_core::{MemoryBackend, Redlock, memory::Fault};
///
/// let masters = [MemoryBackend::new(), MemoryBackend::new(), MemoryBackend::new()];
/// masters[2].set_fault(Some(Fault::Error)); // one master down: still a quorum
/// let redlock = Redlock::new(masters.clone())?;
/// let lock = redlock.acquire(&["job"], Duration::from_secs(1)).await?;
/// assert!(masters[0].value("job").is_some());
/// lock.release().await?;
/// assert!(masters[0].keys().is_empty());
/// # Ok(())
/// # }
/// # #[cfg(not(feature = "tokio"))]
/// # fn main() {}
/// ```
#[derive(Clone)]
pub struct MemoryBackend {
    shared: Arc<Shared>,
}

struct Shared {
    name: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    fault: Option<Fault>,
    delay: Duration,
    paused: bool,
    queue: VecDeque<Queued>,
    calls: Calls,
}

struct Entry {
    value: String,
    expires: Instant,
}

enum Op {
    Acquire {
        keys: Vec<String>,
        value: String,
        ttl: Duration,
    },
    Extend {
        keys: Vec<String>,
        value: String,
        ttl: Duration,
    },
    Release {
        keys: Vec<String>,
        value: String,
    },
}

/// The reply to one request.
#[derive(Debug, Clone, Copy)]
struct Reply {
    granted: bool,
    released: usize,
}

enum Slot {
    Waiting,
    Done(Result<Reply, BackendError>),
    Lost,
}

struct Queued {
    apply_at: Instant,
    op: Op,
    fault: Option<Fault>,
    slot: Arc<Mutex<Slot>>,
}

const PAUSE_POLL: Duration = Duration::from_millis(2);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.shared.state);
        f.debug_struct("MemoryBackend")
            .field("name", &self.shared.name)
            .field("keys", &state.entries.len())
            .field("fault", &state.fault)
            .field("delay", &state.delay)
            .field("paused", &state.paused)
            .finish()
    }
}

impl MemoryBackend {
    /// An empty store named `memory-<n>`.
    pub fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self::named(format!("memory-{}", NEXT.fetch_add(1, Ordering::Relaxed)))
    }

    /// An empty store with the given name.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            shared: Arc::new(Shared {
                name: name.into(),
                state: Mutex::new(State::default()),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        let mut state = lock(&self.shared.state);
        state.drain(Instant::now());
        state
    }

    /// Injects `fault` into every later request (`None` heals).
    pub fn set_fault(&self, fault: Option<Fault>) {
        self.state().fault = fault;
    }

    /// Applies and answers each later request only after `delay`.
    pub fn set_delay(&self, delay: Duration) {
        self.state().delay = delay;
    }

    /// Holds every request unapplied and unanswered, like a stopped server.
    pub fn pause(&self) {
        self.state().paused = true;
    }

    /// Applies the held requests in order and serves requests again.
    pub fn resume(&self) {
        lock(&self.shared.state).paused = false;
        drop(self.state());
    }

    /// Sets `key` to a value no lock uses, as if another client held it, for `ttl`.
    pub fn hold(&self, key: impl Into<String>, ttl: Duration) {
        self.insert(key, "held-by-another-client", ttl);
    }

    /// Sets `key` to `value` for `ttl`, whatever it held.
    pub fn insert(&self, key: impl Into<String>, value: impl Into<String>, ttl: Duration) {
        let now = Instant::now();
        self.state().entries.insert(
            key.into(),
            Entry {
                value: value.into(),
                expires: deadline(now, ttl),
            },
        );
    }

    /// Deletes `key`; `true` when it existed.
    pub fn remove(&self, key: &str) -> bool {
        let now = Instant::now();
        self.state()
            .entries
            .remove(key)
            .is_some_and(|entry| entry.expires > now)
    }

    /// Deletes every key.
    pub fn flush(&self) {
        self.state().entries.clear();
    }

    /// The live keys, sorted.
    pub fn keys(&self) -> Vec<String> {
        let now = Instant::now();
        let mut keys: Vec<String> = self
            .state()
            .entries
            .iter()
            .filter(|(_, entry)| entry.expires > now)
            .map(|(key, _)| key.clone())
            .collect();
        keys.sort();
        keys
    }

    /// The value of a live key.
    pub fn value(&self, key: &str) -> Option<String> {
        let now = Instant::now();
        self.state()
            .entries
            .get(key)
            .filter(|entry| entry.expires > now)
            .map(|entry| entry.value.clone())
    }

    /// The TTL left on a live key.
    pub fn ttl(&self, key: &str) -> Option<Duration> {
        let now = Instant::now();
        self.state()
            .entries
            .get(key)
            .filter(|entry| entry.expires > now)
            .map(|entry| entry.expires - now)
    }

    /// How many requests of each kind arrived so far.
    pub fn calls(&self) -> Calls {
        self.state().calls
    }

    async fn submit(&self, op: Op) -> Result<Reply, BackendError> {
        let (slot, apply_at, timer) = match self.issue(op) {
            Issued::Now(Slot::Done(result)) => return result,
            Issued::Now(Slot::Lost | Slot::Waiting) => return pending().await,
            Issued::Queued {
                slot,
                apply_at,
                timer,
            } => (slot, apply_at, timer),
        };
        loop {
            let wait = match self.poll_slot(&slot, apply_at) {
                Polled::Done(result) => return result,
                Polled::Lost => return pending().await,
                Polled::Wait(wait) => wait,
            };
            timer.sleep(wait).await;
        }
    }

    /// Applies `op` now, or queues it behind earlier requests.
    fn issue(&self, op: Op) -> Issued {
        let mut state = self.state();
        state.count(&op);
        let now = Instant::now();
        if state.delay.is_zero() && state.queue.is_empty() && !state.paused {
            let fault = state.fault;
            return Issued::Now(state.apply(&op, fault, now));
        }
        let Some(timer) = Timer::detect() else {
            return Issued::Now(Slot::Done(Err(BackendError::msg(
                BackendErrorKind::Other,
                "MemoryBackend delays and pauses need a runtime feature",
            ))));
        };
        let mut apply_at = deadline(now, state.delay);
        if let Some(last) = state.queue.back() {
            apply_at = apply_at.max(last.apply_at);
        }
        let slot = Arc::new(Mutex::new(Slot::Waiting));
        let fault = state.fault;
        state.queue.push_back(Queued {
            apply_at,
            op,
            fault,
            slot: Arc::clone(&slot),
        });
        Issued::Queued {
            slot,
            apply_at,
            timer,
        }
    }

    /// Applies what is due and says whether `slot` was answered.
    fn poll_slot(&self, slot: &Mutex<Slot>, apply_at: Instant) -> Polled {
        let state = self.state();
        match std::mem::replace(&mut *lock(slot), Slot::Waiting) {
            Slot::Done(result) => Polled::Done(result),
            Slot::Lost => Polled::Lost,
            Slot::Waiting if state.paused => Polled::Wait(PAUSE_POLL),
            Slot::Waiting => Polled::Wait(
                apply_at
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_micros(100)),
            ),
        }
    }
}

enum Issued {
    Now(Slot),
    Queued {
        slot: Arc<Mutex<Slot>>,
        apply_at: Instant,
        timer: Timer,
    },
}

enum Polled {
    Done(Result<Reply, BackendError>),
    Lost,
    Wait(Duration),
}

/// `now + ttl`, or far in the future when that overflows.
fn deadline(now: Instant, ttl: Duration) -> Instant {
    now.checked_add(ttl)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

impl State {
    fn count(&mut self, op: &Op) {
        match op {
            Op::Acquire { .. } => self.calls.acquire += 1,
            Op::Extend { .. } => self.calls.extend += 1,
            Op::Release { .. } => self.calls.release += 1,
        }
    }

    /// Applies the queued requests that are due, in issue order.
    fn drain(&mut self, now: Instant) {
        while !self.paused {
            match self.queue.front() {
                Some(front) if front.apply_at <= now => {}
                _ => break,
            }
            if let Some(queued) = self.queue.pop_front() {
                let outcome = self.apply(&queued.op, queued.fault, now);
                *lock(&queued.slot) = outcome;
            }
        }
    }

    fn holds(&self, key: &str, value: &str, now: Instant) -> bool {
        self.entries
            .get(key)
            .is_some_and(|entry| entry.expires > now && entry.value == value)
    }

    fn is_free_or(&self, key: &str, value: &str, now: Instant) -> bool {
        self.entries
            .get(key)
            .is_none_or(|entry| entry.expires <= now || entry.value == value)
    }

    fn apply(&mut self, op: &Op, fault: Option<Fault>, now: Instant) -> Slot {
        let fails = match fault {
            Some(Fault::Error) => true,
            Some(Fault::FailReleases) => matches!(op, Op::Release { .. }),
            _ => false,
        };
        if fails {
            return Slot::Done(Err(BackendError::msg(
                BackendErrorKind::Connection,
                "injected failure",
            )));
        }
        let reply = match op {
            Op::Acquire { keys, value, ttl } => {
                let granted = keys.iter().all(|key| self.is_free_or(key, value, now));
                if granted {
                    let expires = deadline(now, *ttl);
                    for key in keys {
                        match self.entries.get_mut(key) {
                            // Our own key: never shortened.
                            Some(entry) if entry.expires > now => {
                                entry.expires = entry.expires.max(expires);
                            }
                            _ => {
                                self.entries.insert(
                                    key.clone(),
                                    Entry {
                                        value: value.clone(),
                                        expires,
                                    },
                                );
                            }
                        }
                    }
                }
                Reply {
                    granted,
                    released: 0,
                }
            }
            Op::Extend { keys, value, ttl } => {
                let granted = keys.iter().all(|key| self.holds(key, value, now));
                if granted {
                    let expires = deadline(now, *ttl);
                    for key in keys {
                        if let Some(entry) = self.entries.get_mut(key) {
                            entry.expires = entry.expires.max(expires);
                        }
                    }
                }
                Reply {
                    granted,
                    released: 0,
                }
            }
            Op::Release { keys, value } => {
                let mut released = 0;
                for key in keys {
                    if self.holds(key, value, now) {
                        self.entries.remove(key);
                        released += 1;
                    }
                }
                Reply {
                    granted: true,
                    released,
                }
            }
        };
        self.entries.retain(|_, entry| entry.expires > now);
        match fault {
            Some(Fault::DropReply) => Slot::Lost,
            _ => Slot::Done(Ok(reply)),
        }
    }
}

#[async_trait]
impl LockBackend for MemoryBackend {
    fn name(&self) -> &str {
        &self.shared.name
    }

    async fn acquire(
        &self,
        keys: &[String],
        value: &str,
        ttl: Duration,
    ) -> Result<bool, BackendError> {
        let op = Op::Acquire {
            keys: keys.to_vec(),
            value: value.to_owned(),
            ttl,
        };
        self.submit(op).await.map(|reply| reply.granted)
    }

    async fn extend(
        &self,
        keys: &[String],
        value: &str,
        ttl: Duration,
    ) -> Result<bool, BackendError> {
        let op = Op::Extend {
            keys: keys.to_vec(),
            value: value.to_owned(),
            ttl,
        };
        self.submit(op).await.map(|reply| reply.granted)
    }

    async fn release(&self, keys: &[String], value: &str) -> Result<usize, BackendError> {
        let op = Op::Release {
            keys: keys.to_vec(),
            value: value.to_owned(),
        };
        self.submit(op).await.map(|reply| reply.released)
    }
}
