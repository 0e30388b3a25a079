//! The Redlock algorithm against in-memory masters with injected faults.
#![cfg_attr(
    not(any(feature = "tokio", feature = "smol", feature = "async-std")),
    allow(dead_code, unused_imports, unused_variables, unreachable_code)
)]

#[macro_use]
mod support;

use std::{
    pin::pin,
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::future::{Either, select};

use redlock_core::{
    BackendError, InvalidInput, Lock, LockBackend, LockError, MemoryBackend, Outcome, Redlock,
    Runtime, memory::Fault,
};
use support::{builder, keys_everywhere, masters, no_keys_left, sleep};

/// How one master behaves in one attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Behaviour {
    Grant,
    Refuse,
    Error,
    /// Paused: the acquire is applied only after the attempt timed out.
    Pause,
    /// Applied, but the reply never comes.
    LoseReply,
}

const BEHAVIOURS: [Behaviour; 5] = [
    Behaviour::Grant,
    Behaviour::Refuse,
    Behaviour::Error,
    Behaviour::Pause,
    Behaviour::LoseReply,
];

/// Every multiset of behaviours for `n` masters.
fn mixes(n: usize) -> Vec<Vec<Behaviour>> {
    fn go(n: usize, from: usize, current: &mut Vec<Behaviour>, out: &mut Vec<Vec<Behaviour>>) {
        if current.len() == n {
            out.push(current.clone());
            return;
        }
        for (i, behaviour) in BEHAVIOURS.iter().enumerate().skip(from) {
            current.push(*behaviour);
            go(n, i, current, out);
            current.pop();
        }
    }
    let mut out = Vec::new();
    go(n, 0, &mut Vec::new(), &mut out);
    out
}

/// Sends each request only after a pause, like a client that must reconnect first; if
/// its future is dropped during the pause, the request is never sent.
struct Lagging {
    inner: MemoryBackend,
    rt: Runtime,
    lag: Duration,
    releases_only: bool,
}

impl Lagging {
    async fn lag(&self, release: bool) {
        if release || !self.releases_only {
            sleep(self.rt, self.lag).await;
        }
    }
}

#[redlock_core::async_trait]
impl LockBackend for Lagging {
    fn name(&self) -> &str {
        "lagging"
    }
    async fn acquire(
        &self,
        keys: &[String],
        value: &str,
        ttl: Duration,
    ) -> Result<bool, BackendError> {
        self.lag(false).await;
        self.inner.acquire(keys, value, ttl).await
    }
    async fn extend(
        &self,
        keys: &[String],
        value: &str,
        ttl: Duration,
    ) -> Result<bool, BackendError> {
        self.lag(false).await;
        self.inner.extend(keys, value, ttl).await
    }
    async fn release(&self, keys: &[String], value: &str) -> Result<usize, BackendError> {
        self.lag(true).await;
        self.inner.release(keys, value).await
    }
}

/// A `Redlock` over `masters` whose last `lagging` masters lag by `lag` (all requests,
/// or releases only).
fn with_lagging(
    rt: Runtime,
    masters: &[MemoryBackend],
    lagging: usize,
    lag: Duration,
    releases_only: bool,
    request_timeout: Duration,
) -> Redlock {
    let plain = masters.len() - lagging;
    let backends: Vec<Box<dyn LockBackend>> = masters
        .iter()
        .enumerate()
        .map(|(i, master)| -> Box<dyn LockBackend> {
            if i < plain {
                Box::new(master.clone())
            } else {
                Box::new(Lagging {
                    inner: master.clone(),
                    rt,
                    lag,
                    releases_only,
                })
            }
        })
        .collect();
    Redlock::builder(backends)
        .runtime(rt)
        .request_timeout(request_timeout)
        .build()
        .unwrap()
}

fn arrange(masters: &[MemoryBackend], mix: &[Behaviour], key: &str) {
    for (master, behaviour) in masters.iter().zip(mix) {
        match behaviour {
            Behaviour::Grant => {}
            Behaviour::Refuse => master.hold(key, Duration::from_secs(30)),
            Behaviour::Error => master.set_fault(Some(Fault::Error)),
            Behaviour::Pause => master.pause(),
            Behaviour::LoseReply => master.set_fault(Some(Fault::DropReply)),
        }
    }
}

fn heal(masters: &[MemoryBackend], key: &str) {
    for master in masters {
        master.set_fault(None);
        master.resume();
        if master.value(key).as_deref() == Some("held-by-another-client") {
            master.remove(key);
        }
    }
}

/// Three masters where the first acquire attempt fails and leaves our key behind: m0
/// grants but cannot release (our key stays), m1 is held by another client for a short
/// while, m2 is down. Once m1 frees up, the quorum needs m0's vote, so the lock granted
/// by a later attempt counts our own leftover as ours. m0 still fails releases.
async fn acquire_over_own_leftover(rt: Runtime, key: &str) -> (Vec<MemoryBackend>, Lock) {
    let masters = masters(3);
    masters[0].set_fault(Some(Fault::FailReleases));
    masters[1].hold(key, Duration::from_millis(150));
    masters[2].set_fault(Some(Fault::Error));
    let redlock = builder(rt, &masters)
        .retry_count(8)
        .retry_delay(Duration::from_millis(60))
        .retry_jitter(Duration::ZERO)
        .build()
        .unwrap();
    let lock = redlock
        .acquire([key], Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        lock.stats().attempt > 1,
        "the first attempt should have failed"
    );
    (masters, lock)
}

runtime_tests! {
    async fn quorum_matrix_n1_to_n5(rt: Runtime) {
        let mut cases = 0;
        for n in 1..=5 {
            let quorum = n / 2 + 1;
            for mix in mixes(n) {
                cases += 1;
                let masters = masters(n);
                let key = format!("matrix-{n}-{cases}");
                arrange(&masters, &mix, &key);
                let redlock = builder(rt, &masters)
                    .request_timeout(Duration::from_millis(30))
                    .build()
                    .unwrap();
                let grants = mix.iter().filter(|b| **b == Behaviour::Grant).count();
                let refusals = mix.iter().filter(|b| **b == Behaviour::Refuse).count();
                let result = redlock.try_acquire([&key], Duration::from_secs(10)).await;
                match (&result, grants >= quorum) {
                    (Ok(lock), true) => {
                        assert!(lock.stats().granted() >= quorum, "{mix:?}");
                        assert!(!lock.is_expired());
                    }
                    (Err(LockError::Contended { attempts }), false) => {
                        assert!(refusals > n - quorum, "{mix:?}: contended with {refusals} refusals");
                        assert_eq!(attempts.total, 1);
                        assert_eq!(attempts.latest().unwrap().backends, n);
                        assert_eq!(attempts.latest().unwrap().quorum, quorum);
                    }
                    (Err(LockError::Unavailable { attempts }), false) => {
                        assert!(refusals <= n - quorum, "{mix:?}: unavailable with {refusals} refusals");
                        let stats = attempts.latest().unwrap();
                        assert!(stats.failed() > 0, "{mix:?}: {stats}");
                    }
                    (other, expected) => panic!("{mix:?}: expected success = {expected}, got {other:?}"),
                }
                if let Ok(lock) = result {
                    lock.release().await.unwrap();
                }
                heal(&masters, &key);
                // Paused and lost-reply acquires were applied late; our release must
                // still have removed them (it is ordered after the acquire).
                assert!(no_keys_left(&masters), "{mix:?}: {:?}", support::keys_everywhere(&masters));
            }
        }
        assert_eq!(cases, 5 + 15 + 35 + 70 + 126);
    }

    async fn every_master_gets_the_request_even_after_an_early_decision(rt: Runtime) {
        for n in 1..=7 {
            let masters = masters(n);
            let redlock = builder(rt, &masters).build().unwrap();
            let lock = redlock.try_acquire(["all"], Duration::from_secs(10)).await.unwrap();
            for master in &masters {
                assert_eq!(master.value("all").as_deref(), Some(lock.value()), "n = {n}");
            }
            let lock = lock.extend(Duration::from_secs(20)).await.unwrap();
            for master in &masters {
                assert!(master.ttl("all").unwrap() > Duration::from_secs(10), "n = {n}");
            }
            lock.release().await.unwrap();
            assert!(no_keys_left(&masters), "n = {n}");
        }
    }

    async fn unanswered_acquires_are_kept_and_never_overtake_the_release(rt: Runtime) {
        let masters = masters(3);
        let redlock = with_lagging(rt, &masters, 1, Duration::from_millis(30), false, Duration::from_millis(500));
        let lock = redlock.acquire(["kept"], Duration::from_secs(10)).await.unwrap();
        assert!(matches!(lock.stats().votes[2].outcome, Outcome::NoReply));
        // m2's acquire was still pending when the quorum decided. The lock's next
        // request to m2 drops it before starting, so nothing is applied out of order and
        // nothing is left behind.
        let lock = lock.extend(Duration::from_secs(10)).await.unwrap();
        lock.release().await.unwrap();
        sleep(rt, Duration::from_millis(200)).await;
        assert!(no_keys_left(&masters), "{:?}", support::keys_everywhere(&masters));
    }

    async fn release_decided_at_quorum_still_finishes_on_the_rest(rt: Runtime) {
        // m2 only sends its release after an await (like a reconnect, or EVAL after
        // NOSCRIPT); dropping it at the quorum would leave its key behind. It is finished
        // in the background, with no later operation of this Redlock needed.
        let masters = masters(3);
        let redlock = with_lagging(rt, &masters, 1, Duration::from_millis(300), true, Duration::from_secs(2));
        let lock = redlock.acquire(["bg"], Duration::from_secs(10)).await.unwrap();
        let start = Instant::now();
        lock.release().await.unwrap();
        assert!(start.elapsed() < Duration::from_millis(200), "release waited for the slow master");
        assert!(masters[2].value("bg").is_some());
        drop(redlock);
        support::wait_until_free(rt, &masters, Duration::from_secs(2)).await;
    }

    async fn an_unanswered_release_holds_its_backend_only_for_a_bounded_time(rt: Runtime) {
        // The lagging master answers after 2 s, long past the 200 ms request timeout: the
        // background release gives up at the timeout, is sent again three times (after
        // 50, 200 and 800 ms, each again cut at 200 ms) and then lets go of the backend,
        // so the backends do not outlive their Redlock for long.
        let masters = masters(3);
        let lagging = Arc::new(Lagging { inner: masters[2].clone(), rt, lag: Duration::from_secs(2), releases_only: true });
        let alive = Arc::downgrade(&lagging);
        let backends: Vec<Box<dyn LockBackend>> =
            vec![Box::new(masters[0].clone()), Box::new(masters[1].clone()), Box::new(lagging)];
        let redlock = Redlock::builder(backends)
            .runtime(rt)
            .request_timeout(Duration::from_millis(200))
            .build()
            .unwrap();
        let lock = redlock.acquire(["leak"], Duration::from_secs(10)).await.unwrap();
        lock.release().await.unwrap();
        drop(redlock);
        assert!(alive.upgrade().is_some(), "the release to the lagging master was dropped at the quorum");
        let start = Instant::now();
        while alive.upgrade().is_some() {
            assert!(start.elapsed() < Duration::from_millis(2500), "the backends outlived the re-sends");
            sleep(rt, Duration::from_millis(10)).await;
        }
        assert!(masters[2].value("leak").is_some(), "the lagging release was never meant to land");
    }

    async fn a_release_that_failed_is_sent_again(rt: Runtime) {
        // m0's release fails (a dropped connection) after the quorum confirmed: its key
        // would stay until the TTL. Once the master is reachable again, the background
        // re-send deletes it.
        let masters = masters(5);
        let redlock = builder(rt, &masters).build().unwrap();
        let lock = redlock.acquire(["blip"], Duration::from_secs(30)).await.unwrap();
        masters[0].set_fault(Some(Fault::FailReleases));
        lock.release().await.unwrap();
        assert!(masters[0].value("blip").is_some());
        sleep(rt, Duration::from_millis(20)).await;
        masters[0].set_fault(None);
        support::wait_until_free(rt, &masters, Duration::from_secs(2)).await;
        assert!(masters[0].calls().release >= 2);
    }

    async fn cleanups_between_attempts_are_not_sent_again(rt: Runtime) {
        // The cleanup after the failed first attempt fails on m0, whose key the second
        // attempt then counts as its own (same value). Re-sending that cleanup later would
        // delete the granted lock's key on m0: it must not happen.
        let (masters, lock) = acquire_over_own_leftover(rt, "again").await;
        masters[0].set_fault(None);
        // Past every re-send pause (50 + 200 + 800 ms).
        sleep(rt, Duration::from_millis(1300)).await;
        assert_eq!(masters[0].value("again").as_deref(), Some(lock.value()));
        assert_eq!(masters[1].value("again").as_deref(), Some(lock.value()));
        lock.release().await.unwrap();
        assert!(no_keys_left(&masters));
    }

    async fn a_cancelled_release_is_finished_in_the_background(rt: Runtime) {
        let masters = masters(3);
        let redlock = with_lagging(rt, &masters, 2, Duration::from_millis(100), true, Duration::from_secs(1));
        let lock = redlock.acquire(["cancel"], Duration::from_secs(30)).await.unwrap();
        let releasing = lock.release();
        if let Either::Left(_) = select(pin!(releasing), pin!(sleep(rt, Duration::from_millis(20)))).await {
            panic!("the release should still wait for a second master");
        }
        // The release future is gone; the lock's drop cleanup takes over.
        support::wait_until_free(rt, &masters, Duration::from_secs(2)).await;
    }

    async fn extend_never_shortens_the_keys(rt: Runtime) {
        let masters = masters(3);
        let redlock = builder(rt, &masters).build().unwrap();
        let lock = redlock.acquire(["long"], Duration::from_secs(30)).await.unwrap();
        let short = lock.extend(Duration::from_millis(100)).await.unwrap();
        assert!(short.expiration() < lock.expiration(), "the new handle reports the short, safe expiry");
        for master in &masters {
            assert!(master.ttl("long").unwrap() > Duration::from_secs(25));
        }
        drop(short);
        lock.release().await.unwrap();
    }

    async fn even_split_is_decided_without_waiting(rt: Runtime) {
        for (n, refusing) in [(2, 1), (4, 2)] {
            let masters = masters(n);
            for master in &masters[..refusing] {
                master.hold("even", Duration::from_secs(30));
            }
            let redlock = builder(rt, &masters)
                .request_timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            let start = Instant::now();
            let error = redlock.try_acquire(["even"], Duration::from_secs(10)).await.unwrap_err();
            assert!(matches!(error, LockError::Contended { .. }), "{error}");
            assert!(start.elapsed() < Duration::from_secs(1), "even split took {:?}", start.elapsed());
        }
    }

    async fn even_split_with_silent_half_ends_at_the_request_timeout(rt: Runtime) {
        for n in [2, 4] {
            let masters = masters(n);
            for master in &masters[..n / 2] {
                master.pause();
            }
            let timeout = Duration::from_millis(150);
            let redlock = builder(rt, &masters).request_timeout(timeout).build().unwrap();
            let start = Instant::now();
            let error = redlock.try_acquire(["even"], Duration::from_secs(10)).await.unwrap_err();
            let elapsed = start.elapsed();
            assert!(matches!(error, LockError::Unavailable { .. }), "{error}");
            // One timeout for the attempt and at most one for the cleanup round.
            assert!(elapsed >= timeout, "decided before the timeout: {elapsed:?}");
            assert!(elapsed < timeout * 2 + Duration::from_millis(300), "took {elapsed:?}");
            for master in &masters {
                master.resume();
            }
            assert!(no_keys_left(&masters));
        }
    }

    async fn slow_minority_does_not_delay_any_operation(rt: Runtime) {
        let masters = masters(5);
        for master in &masters[..2] {
            master.set_delay(Duration::from_millis(400));
        }
        let redlock = builder(rt, &masters)
            .request_timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let start = Instant::now();
        let lock = redlock.acquire(["slow"], Duration::from_secs(10)).await.unwrap();
        let lock = lock.extend(Duration::from_secs(10)).await.unwrap();
        let report = lock.release().await.unwrap();
        let elapsed = start.elapsed();
        assert!(elapsed < Duration::from_millis(200), "three operations took {elapsed:?}");
        assert!(!report.expired);
        assert!(report.held_on >= 3);
        // The slow masters apply acquire, extend and release in order: nothing is left.
        sleep(rt, Duration::from_millis(1000)).await;
        assert!(no_keys_left(&masters), "{:?}", support::keys_everywhere(&masters));
        assert_eq!(masters[0].calls().acquire, 1);
    }

    async fn no_validity_left_fails_and_leaves_no_key(rt: Runtime) {
        let masters = masters(3);
        for master in &masters {
            master.set_delay(Duration::from_millis(60));
        }
        let ttl = Duration::from_millis(50);
        let redlock = builder(rt, &masters)
            .request_timeout(Duration::from_millis(500))
            .build()
            .unwrap();
        let error = redlock.try_acquire(["late"], ttl).await.unwrap_err();
        let LockError::ValidityExhausted { attempts } = &error else {
            panic!("expected ValidityExhausted, got {error}");
        };
        let stats = attempts.latest().unwrap();
        assert!(stats.granted() >= 2);
        assert!(stats.validity.is_none());
        assert!(no_keys_left(&masters), "{:?}", support::keys_everywhere(&masters));
    }

    async fn validity_is_ttl_minus_elapsed_minus_drift(rt: Runtime) {
        let masters = masters(3);
        for master in &masters {
            master.set_delay(Duration::from_millis(40));
        }
        let ttl = Duration::from_millis(1000);
        let redlock = builder(rt, &masters)
            .request_timeout(Duration::from_millis(500))
            .build()
            .unwrap();
        let before = Instant::now();
        let lock = redlock.try_acquire(["valid"], ttl).await.unwrap();
        let after = Instant::now();
        let drift = Duration::from_millis(12);
        assert_eq!(lock.stats().drift, drift);
        // expiration = start + ttl - drift, where start lies between before and after.
        assert!(lock.expiration() >= before + ttl - drift);
        assert!(lock.expiration() <= after + ttl - drift);
        let validity = lock.stats().validity.unwrap();
        assert!(validity <= ttl - drift - Duration::from_millis(40), "{validity:?}");
        lock.release().await.unwrap();
    }

    async fn timed_out_but_applied_acquire_is_cleaned_up(rt: Runtime) {
        let masters = masters(5);
        for master in &masters[..3] {
            master.set_fault(Some(Fault::DropReply));
        }
        let redlock = builder(rt, &masters).build().unwrap();
        let error = redlock.try_acquire(["ghost"], Duration::from_secs(10)).await.unwrap_err();
        assert!(matches!(error, LockError::Unavailable { .. }), "{error}");
        let stats = error.attempts().unwrap().latest().unwrap();
        assert_eq!(stats.failed(), 3, "{stats}");
        assert!(stats.votes_against().all(|vote| matches!(vote.outcome, Outcome::TimedOut(_))));
        assert!(no_keys_left(&masters), "{:?}", support::keys_everywhere(&masters));
    }

    async fn straggling_acquire_never_lands_after_its_release(rt: Runtime) {
        // Two masters answer late (after the attempt was decided); the cleanup release
        // must be applied after them, not before.
        let masters = masters(5);
        for master in &masters[..3] {
            master.hold("straggle", Duration::from_secs(30));
        }
        for master in &masters[3..] {
            master.set_delay(Duration::from_millis(200));
        }
        let redlock = builder(rt, &masters).request_timeout(Duration::from_secs(1)).build().unwrap();
        let start = Instant::now();
        let error = redlock.try_acquire(["straggle"], Duration::from_secs(10)).await.unwrap_err();
        assert!(matches!(error, LockError::Contended { .. }), "{error}");
        let decided = error.attempts().unwrap().latest().unwrap().elapsed;
        assert!(decided < Duration::from_millis(100), "not decided early: {decided:?}");
        assert!(start.elapsed() < Duration::from_millis(1500));
        sleep(rt, Duration::from_millis(500)).await;
        for master in &masters[3..] {
            assert_eq!(master.keys(), Vec::<String>::new(), "orphan key on {master:?}");
        }
    }

    async fn retries_respect_count_delay_and_jitter(rt: Runtime) {
        let masters = masters(3);
        for master in &masters {
            master.hold("busy", Duration::from_secs(30));
        }
        let redlock = builder(rt, &masters)
            .retry_count(4)
            .retry_delay(Duration::from_millis(60))
            .retry_jitter(Duration::from_millis(20))
            .build()
            .unwrap();
        let start = Instant::now();
        let error = redlock.acquire(["busy"], Duration::from_secs(10)).await.unwrap_err();
        let elapsed = start.elapsed();
        let LockError::Contended { attempts } = &error else { panic!("{error}") };
        assert_eq!(attempts.total, 5);
        assert!(attempts.last.len() <= redlock_core::Attempts::KEPT);
        assert_eq!(masters[0].calls().acquire, 5);
        assert!(elapsed >= Duration::from_millis(4 * 40), "pauses too short: {elapsed:?}");
        assert!(elapsed < Duration::from_millis(4 * 80 + 250), "pauses too long: {elapsed:?}");
        assert!(!attempts.deadline_reached);
    }

    async fn retries_stop_at_the_deadline(rt: Runtime) {
        let masters = masters(3);
        for master in &masters {
            master.hold("busy", Duration::from_secs(30));
        }
        let redlock = builder(rt, &masters)
            .retry_count(1000)
            .retry_delay(Duration::from_millis(50))
            .retry_jitter(Duration::ZERO)
            .acquire_timeout(Duration::from_millis(180))
            .build()
            .unwrap();
        let start = Instant::now();
        let error = redlock.acquire(["busy"], Duration::from_secs(10)).await.unwrap_err();
        let elapsed = start.elapsed();
        let attempts = error.attempts().unwrap();
        assert!(attempts.deadline_reached);
        assert!((2..=4).contains(&attempts.total), "{} attempts", attempts.total);
        assert!(elapsed < Duration::from_millis(180 + 150), "{elapsed:?}");
        // try_acquire ignores retries altogether.
        let error = redlock.try_acquire(["busy"], Duration::from_secs(10)).await.unwrap_err();
        assert_eq!(error.attempts().unwrap().total, 1);
    }

    async fn retries_eventually_succeed_when_the_holder_leaves(rt: Runtime) {
        let masters = masters(3);
        for master in &masters {
            master.hold("soon-free", Duration::from_millis(150));
        }
        let redlock = builder(rt, &masters)
            .retry_count(20)
            .retry_delay(Duration::from_millis(40))
            .retry_jitter(Duration::from_millis(10))
            .build()
            .unwrap();
        let lock = redlock.acquire(["soon-free"], Duration::from_secs(5)).await.unwrap();
        assert!(lock.stats().attempt > 1);
        lock.release().await.unwrap();
        assert!(no_keys_left(&masters));
    }

    async fn retries_are_not_blocked_by_our_own_leftovers(rt: Runtime) {
        let (masters, lock) = acquire_over_own_leftover(rt, "leftover").await;
        assert_eq!(masters[0].value("leftover").as_deref(), Some(lock.value()));
        masters[0].set_fault(None);
        lock.release().await.unwrap();
        assert!(no_keys_left(&masters));
    }

    async fn cleanup_runs_on_every_master_between_attempts(rt: Runtime) {
        let masters = masters(5);
        for master in &masters[..3] {
            master.hold("cleanup", Duration::from_secs(30));
        }
        let redlock = builder(rt, &masters)
            .retry_count(2)
            .retry_delay(Duration::from_millis(10))
            .build()
            .unwrap();
        let error = redlock.acquire(["cleanup"], Duration::from_secs(10)).await.unwrap_err();
        assert!(matches!(error, LockError::Contended { .. }));
        for master in &masters {
            assert_eq!(master.calls().release, 3, "{master:?}");
        }
        for master in &masters[3..] {
            assert!(master.keys().is_empty());
        }
    }

    async fn extend_gives_a_later_lock_and_keeps_the_old_handle(rt: Runtime) {
        let masters = masters(3);
        let redlock = builder(rt, &masters).build().unwrap();
        let lock = redlock.acquire(["ext"], Duration::from_millis(500)).await.unwrap();
        let longer = lock.extend(Duration::from_secs(10)).await.unwrap();
        assert!(longer.expiration() > lock.expiration() + Duration::from_secs(5));
        assert_eq!(longer.value(), lock.value());
        assert_eq!(longer.resources(), lock.resources());
        for master in &masters {
            assert!(master.ttl("ext").unwrap() > Duration::from_secs(9));
        }
        drop(lock);
        assert!(masters[0].value("ext").is_some(), "dropping the old handle released the lock");
        longer.release().await.unwrap();
        assert!(no_keys_left(&masters));
    }

    async fn a_released_lock_is_not_valid_through_its_other_handles(rt: Runtime) {
        let masters = masters(3);
        let redlock = builder(rt, &masters).build().unwrap();
        let ttl = Duration::from_secs(10);
        let lock = redlock.acquire(["sib"], ttl).await.unwrap();
        let extended = lock.extend(ttl).await.unwrap();
        assert!(!lock.is_expired() && lock.remaining() > Duration::from_secs(5));
        extended.release().await.unwrap();
        assert_eq!(lock.remaining(), Duration::ZERO);
        assert!(lock.is_expired());
        let other = redlock.try_acquire(["sib"], ttl).await.unwrap();
        // Extending the old handle sends nothing and says the lock is gone.
        let error = lock.extend(ttl).await.unwrap_err();
        assert!(matches!(error, LockError::Lost { .. }), "{error:?}");
        for master in &masters {
            assert_eq!(master.value("sib").as_deref(), Some(other.value()));
        }
        // The other way round: releasing the handle a lock was extended from.
        let again = other.extend(ttl).await.unwrap();
        other.release().await.unwrap();
        assert!(again.is_expired() && again.remaining().is_zero());
        drop(again);
        drop(lock);
        assert!(no_keys_left(&masters));
    }

    async fn the_acquire_deadline_cuts_the_attempt_in_flight_and_its_cleanup(rt: Runtime) {
        let masters = masters(3);
        for master in &masters {
            master.pause();
        }
        let redlock = builder(rt, &masters)
            .retry_count(10)
            .request_timeout(Duration::from_millis(400))
            .acquire_timeout(Duration::from_millis(100))
            .build()
            .unwrap();
        let start = Instant::now();
        let error = redlock.acquire(["deadline"], Duration::from_secs(30)).await.unwrap_err();
        let elapsed = start.elapsed();
        assert!(matches!(error, LockError::Unavailable { .. }), "{error:?}");
        assert!(error.attempts().unwrap().deadline_reached);
        // Without the cut: the attempt's 400 ms timeout, then the cleanup's.
        assert!(elapsed < Duration::from_millis(100 + 150), "{elapsed:?}");
        // The masters apply the acquire when they resume, and the cleanup after it.
        for master in &masters {
            master.resume();
        }
        let give_up = Instant::now() + Duration::from_secs(2);
        while !no_keys_left(&masters) && Instant::now() < give_up {
            sleep(rt, Duration::from_millis(10)).await;
        }
        assert!(no_keys_left(&masters), "{:?}", keys_everywhere(&masters));
    }

    async fn the_acquire_deadline_stops_after_a_slow_cleanup(rt: Runtime) {
        let masters = masters(3);
        masters[0].hold("slow", Duration::from_secs(30));
        masters[1].hold("slow", Duration::from_secs(30));
        for master in &masters {
            master.set_delay(Duration::from_millis(150));
        }
        let redlock = builder(rt, &masters)
            .retry_count(10)
            .retry_delay(Duration::from_millis(10))
            .retry_jitter(Duration::ZERO)
            .request_timeout(Duration::from_secs(1))
            .acquire_timeout(Duration::from_millis(250))
            .build()
            .unwrap();
        let start = Instant::now();
        let error = redlock.acquire(["slow"], Duration::from_secs(30)).await.unwrap_err();
        let elapsed = start.elapsed();
        assert!(matches!(error, LockError::Contended { .. }), "{error:?}");
        let attempts = error.attempts().unwrap();
        assert!(attempts.deadline_reached);
        // The first attempt and its cleanup take 300 ms; no second attempt starts.
        assert_eq!(attempts.total, 1);
        assert!(elapsed < Duration::from_millis(250 + 200), "{elapsed:?}");
        for master in &masters {
            master.set_delay(Duration::ZERO);
        }
        let give_up = Instant::now() + Duration::from_secs(2);
        while masters[2].value("slow").is_some() && Instant::now() < give_up {
            sleep(rt, Duration::from_millis(10)).await;
        }
        assert_eq!(masters[2].value("slow"), None);
    }

    async fn an_error_names_the_masters_that_had_not_answered(rt: Runtime) {
        let masters = masters(3);
        masters[0].set_fault(Some(Fault::Error));
        masters[1].set_fault(Some(Fault::Error));
        masters[2].pause();
        let redlock = builder(rt, &masters)
            .request_timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        let error = redlock.try_acquire(["silent"], Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(error, LockError::Unavailable { .. }), "{error:?}");
        let text = error.to_string();
        assert!(text.contains("m0") && text.contains("m1"), "{text}");
        assert!(text.contains("no answer before the decision: m2"), "{text}");
        masters[2].resume();
    }

    async fn extend_of_an_expired_lock_is_refused_locally(rt: Runtime) {
        let masters = masters(3);
        let redlock = builder(rt, &masters).build().unwrap();
        let lock = redlock.acquire(["expired"], Duration::from_millis(30)).await.unwrap();
        sleep(rt, Duration::from_millis(40)).await;
        assert!(lock.is_expired());
        assert_eq!(lock.remaining(), Duration::ZERO);
        let error = lock.extend(Duration::from_secs(1)).await.unwrap_err();
        assert!(matches!(error, LockError::Expired), "{error}");
        assert_eq!(masters[0].calls().extend, 0);
    }

    async fn failed_extend_leaves_the_keys_in_place(rt: Runtime) {
        let masters = masters(3);
        let redlock = builder(rt, &masters).build().unwrap();
        let lock = redlock.acquire(["keep"], Duration::from_secs(10)).await.unwrap();
        masters[1].set_fault(Some(Fault::Error));
        masters[2].set_fault(Some(Fault::Error));
        let error = lock.extend(Duration::from_secs(20)).await.unwrap_err();
        assert!(matches!(error, LockError::Unavailable { .. }), "{error}");
        for master in &masters {
            master.set_fault(None);
            assert_eq!(master.value("keep").as_deref(), Some(lock.value()));
        }
        // The failing majority kept the original TTL.
        assert!(masters[1].ttl("keep").unwrap() <= Duration::from_secs(10));
        assert!(!lock.is_expired());
        lock.release().await.unwrap();
    }

    async fn extend_reports_a_lost_lock_without_deleting(rt: Runtime) {
        let masters = masters(3);
        let redlock = builder(rt, &masters).retry_count(5).build().unwrap();
        let lock = redlock.acquire(["lost"], Duration::from_secs(10)).await.unwrap();
        masters[0].remove("lost");
        masters[1].insert("lost", "someone-else", Duration::from_secs(10));
        let error = lock.extend(Duration::from_secs(10)).await.unwrap_err();
        let LockError::Lost { attempts } = &error else { panic!("{error}") };
        assert_eq!(attempts.total, 1, "a lost lock is not retried");
        assert_eq!(masters[0].value("lost"), None, "extend re-created a missing key");
        assert_eq!(masters[1].value("lost").as_deref(), Some("someone-else"));
        assert_eq!(masters[2].value("lost").as_deref(), Some(lock.value()));
        drop(lock.release().await);
    }

    async fn release_of_an_expired_lock_is_prompt(rt: Runtime) {
        let masters = masters(3);
        let redlock = builder(rt, &masters)
            .retry_count(10)
            .retry_delay(Duration::from_millis(200))
            .build()
            .unwrap();
        let lock = redlock.acquire(["gone"], Duration::from_millis(30)).await.unwrap();
        sleep(rt, Duration::from_millis(60)).await;
        let start = Instant::now();
        let report = lock.release().await.unwrap();
        assert!(report.expired);
        assert_eq!(report.held_on, 0);
        assert!(start.elapsed() < Duration::from_millis(100), "{:?}", start.elapsed());

        // Even with every master down, one round and out.
        let lock = redlock.acquire(["gone"], Duration::from_millis(30)).await.unwrap();
        sleep(rt, Duration::from_millis(60)).await;
        for master in &masters {
            master.set_fault(Some(Fault::Error));
        }
        let start = Instant::now();
        let error = lock.release().await.unwrap_err();
        assert!(matches!(error, LockError::Unavailable { .. }), "{error}");
        assert!(start.elapsed() < Duration::from_millis(100), "{:?}", start.elapsed());
        // One round: counted by the error, since the dropped lock's background release
        // (its handle is gone unreleased) may already have reached the masters too.
        assert_eq!(error.attempts().unwrap().total, 1);
    }

    async fn multi_resource_locks_exclude_overlapping_sets(rt: Runtime) {
        let masters = masters(3);
        let redlock = builder(rt, &masters).build().unwrap();
        let ab = redlock.acquire(["a", "b"], Duration::from_secs(10)).await.unwrap();
        assert_eq!(ab.resources(), ["a", "b"]);
        let error = redlock.try_acquire(["b", "c"], Duration::from_secs(10)).await.unwrap_err();
        assert!(matches!(error, LockError::Contended { .. }));
        // All or none: the refused set did not take "c".
        let c = redlock.try_acquire(["c"], Duration::from_secs(10)).await.unwrap();
        ab.release().await.unwrap();
        let bc = redlock.try_acquire(vec!["b".to_string()], Duration::from_secs(10)).await.unwrap();
        c.release().await.unwrap();
        bc.release().await.unwrap();
        assert!(no_keys_left(&masters));
    }

    async fn bad_input_is_a_typed_error(rt: Runtime) {
        let masters = masters(3);
        let no_backends = Redlock::builder(Vec::<MemoryBackend>::new()).runtime(rt).build();
        assert!(matches!(no_backends, Err(LockError::InvalidInput(InvalidInput::NoBackends))));
        let redlock = builder(rt, &masters).build().unwrap();
        let none: [&str; 0] = [];
        assert!(matches!(
            redlock.acquire(none, Duration::from_secs(1)).await,
            Err(LockError::InvalidInput(InvalidInput::NoResources))
        ));
        assert!(matches!(
            redlock.acquire(["r"], Duration::ZERO).await,
            Err(LockError::InvalidInput(InvalidInput::TtlTooShort(_)))
        ));
        assert!(matches!(
            redlock.try_acquire(["r"], Duration::from_millis(2)).await,
            Err(LockError::InvalidInput(InvalidInput::TtlWithinDrift { .. }))
        ));
        for factor in [-0.5, 1.0, 7.0, f64::NAN] {
            let built = builder(rt, &masters).drift_factor(factor).build();
            assert!(matches!(built, Err(LockError::InvalidInput(InvalidInput::DriftFactor(_)))));
        }
        let zero_threshold = builder(rt, &masters)
            .automatic_extension_threshold(Duration::ZERO)
            .build();
        assert!(matches!(zero_threshold, Err(LockError::InvalidInput(InvalidInput::ZeroDuration(_)))));
        let lock = redlock.acquire(["r"], Duration::from_secs(1)).await.unwrap();
        assert!(matches!(
            lock.extend(Duration::ZERO).await,
            Err(LockError::InvalidInput(InvalidInput::TtlTooShort(_)))
        ));
        lock.release().await.unwrap();
        assert_eq!(masters[0].calls().acquire, 1, "bad input reached a backend");
    }

    async fn stats_name_who_voted_and_why(rt: Runtime) {
        let masters = masters(5);
        masters[1].hold("why", Duration::from_secs(30));
        masters[3].set_fault(Some(Fault::Error));
        masters[4].set_fault(Some(Fault::Error));
        let redlock = builder(rt, &masters).build().unwrap();
        let error = redlock.try_acquire(["why"], Duration::from_secs(10)).await.unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, LockError::Unavailable { .. }), "{message}");
        for name in ["m1: refused", "m3: connection failed: injected failure", "m4"] {
            assert!(message.contains(name), "{name:?} missing from {message}");
        }
        let stats = error.attempts().unwrap().latest().unwrap();
        assert_eq!((stats.backends, stats.quorum), (5, 3));
        let against: Vec<&str> = stats.votes_against().map(|vote| &*vote.backend).collect();
        assert_eq!(against, ["m1", "m3", "m4"]);
        assert!(stats.votes_for().all(|name| name == "m0" || name == "m2"));
    }

    async fn lock_is_send_sync_static_and_works_across_tasks(rt: Runtime) {
        fn assert_traits<T: Send + Sync + 'static>(_: &T) {}
        let masters = masters(3);
        let redlock = builder(rt, &masters).build().unwrap();
        let lock = redlock.acquire(["traits"], Duration::from_secs(10)).await.unwrap();
        assert_traits(&lock);
        assert_traits(&redlock);
        assert_eq!(lock.value().len(), 32);
        let other = redlock.acquire(["traits-2"], Duration::from_secs(10)).await.unwrap();
        assert_ne!(lock.value(), other.value());
        lock.release().await.unwrap();
        other.release().await.unwrap();
    }
}

#[cfg(not(any(feature = "tokio", feature = "smol", feature = "async-std")))]
#[test]
fn without_a_runtime_build_is_a_clear_error() {
    let built = Redlock::new([MemoryBackend::new()]);
    assert!(matches!(
        built,
        Err(LockError::InvalidInput(InvalidInput::NoRuntime(_)))
    ));
}
