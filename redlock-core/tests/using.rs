//! `using()`: automatic extension, the loss signal, and clean endings.
#![cfg_attr(
    not(any(feature = "tokio", feature = "smol", feature = "async-std")),
    allow(dead_code, unused_imports, unused_variables, unreachable_code)
)]

#[macro_use]
mod support;

use std::{
    panic::AssertUnwindSafe,
    pin::pin,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures_util::{FutureExt, future::Either, future::select};
use redlock_core::{InvalidInput, LockError, Runtime, memory::Fault};
use support::{builder, masters, no_keys_left, sleep};

const TTL: Duration = Duration::from_millis(300);
const THRESHOLD: Duration = Duration::from_millis(150);

runtime_tests! {
    async fn a_signal_kept_past_using_does_not_vouch_for_the_lock(rt: Runtime) {
        let masters = masters(3);
        let redlock = builder(rt, &masters)
            .automatic_extension_threshold(THRESHOLD)
            .build()
            .unwrap();
        let signal = redlock
            .using(["kept"], Duration::from_secs(30), |signal| async move { signal })
            .await
            .unwrap();
        let other = redlock.try_acquire(["kept"], Duration::from_secs(30)).await.unwrap();
        assert_eq!(signal.remaining(), Duration::ZERO);
        assert!(!signal.is_aborted(), "{:?}", signal.error());
        other.release().await.unwrap();
    }

    async fn a_max_hold_below_the_ttl_signals_at_max_hold(rt: Runtime) {
        let masters = masters(3);
        let max_hold = Duration::from_millis(100);
        let redlock = builder(rt, &masters)
            .automatic_extension_threshold(THRESHOLD)
            .max_hold(max_hold)
            .build()
            .unwrap();
        let start = Instant::now();
        let (fired, expiration, error) = redlock
            .using(["short"], Duration::from_millis(600), |signal| async move {
                let error = signal.aborted().await;
                (Instant::now(), signal.expiration(), error)
            })
            .await
            .unwrap();
        assert!(matches!(error, LockError::HoldLimit { extensions: 0, .. }), "{error}");
        let after = fired - start;
        assert!(after >= max_hold && after < max_hold + Duration::from_millis(150), "{after:?}");
        assert!(fired < expiration);
        assert!(no_keys_left(&masters));
    }

    async fn a_threshold_at_or_above_the_validity_is_refused(rt: Runtime) {
        let masters = masters(3);
        let redlock = builder(rt, &masters)
            .automatic_extension_threshold(Duration::from_millis(500))
            .build()
            .unwrap();
        // 505 ms leaves at most 505 - 7.05 (drift) < 500 ms of validity: every
        // extension would be due again at once.
        let error = redlock
            .using(["spin"], Duration::from_millis(505), |_| async {})
            .await
            .unwrap_err();
        assert!(
            matches!(error, LockError::InvalidInput(InvalidInput::ThresholdNotBelowTtl { .. })),
            "{error:?}"
        );
        assert!(no_keys_left(&masters));
        let extensions = redlock
            .using(["spin"], Duration::from_millis(600), |signal| async move {
                sleep(rt, Duration::from_millis(250)).await;
                signal.extensions()
            })
            .await
            .unwrap();
        assert!((1..=4).contains(&extensions), "{extensions} extensions");
    }

    async fn routine_outliving_the_ttl_keeps_the_lock(rt: Runtime) {
        let masters = masters(3);
        let redlock = builder(rt, &masters)
            .automatic_extension_threshold(THRESHOLD)
            .build()
            .unwrap();
        let other = builder(rt, &masters).build().unwrap();
        let (output, extensions) = redlock
            .using(["job"], TTL, |signal| async move {
                let start = Instant::now();
                while start.elapsed() < TTL * 3 {
                    assert!(
                        other.try_acquire(["job"], TTL).await.is_err(),
                        "another client got the lock after {:?}",
                        start.elapsed()
                    );
                    assert!(!signal.is_aborted(), "{:?}", signal.error());
                    sleep(rt, Duration::from_millis(20)).await;
                }
                assert!(signal.error().is_none());
                ("done", signal.extensions())
            })
            .await
            .unwrap();
        assert_eq!(output, "done");
        assert!(extensions >= 4, "only {extensions} extensions in 3 TTLs");
        assert!(no_keys_left(&masters));
    }

    async fn signal_fires_before_expiry_when_keys_are_lost(rt: Runtime) {
        let masters = masters(3);
        let redlock = builder(rt, &masters)
            .automatic_extension_threshold(THRESHOLD)
            .build()
            .unwrap();
        let deleted_on = masters[..2].to_vec();
        let outcome = redlock
            .using_outcome(["job"], TTL, |signal| async move {
                let expiration = signal.expiration();
                for master in &deleted_on {
                    master.remove("job");
                }
                let error = signal.aborted().await;
                let fired = Instant::now();
                (error, fired, expiration, signal.expiration())
            })
            .await
            .unwrap();
        let (error, fired, first_expiration, last_expiration) = outcome.output;
        assert!(matches!(error, LockError::Lost { .. }), "{error}");
        assert_eq!(first_expiration, last_expiration, "a lost lock was extended");
        assert!(fired < last_expiration, "signal fired {:?} after expiry", fired - last_expiration);
        assert!(matches!(outcome.extension_error, Some(LockError::Lost { .. })));
        assert_eq!(outcome.extensions, 0);
        assert!(no_keys_left(&masters));
    }

    async fn signal_fires_before_expiry_when_a_majority_stops_answering(rt: Runtime) {
        let masters = masters(3);
        let redlock = builder(rt, &masters)
            .automatic_extension_threshold(THRESHOLD)
            .request_timeout(Duration::from_millis(40))
            .build()
            .unwrap();
        let paused = masters[..2].to_vec();
        let outcome = redlock
            .using_outcome(["job"], TTL, |signal| async move {
                for master in &paused {
                    master.pause();
                }
                let error = signal.aborted().await;
                (error, Instant::now(), signal.expiration())
            })
            .await
            .unwrap();
        let (error, fired, expiration) = outcome.output;
        assert!(fired < expiration, "signal fired after expiry");
        assert!(matches!(error, LockError::Unavailable { .. }), "{error}");
        for master in &masters {
            master.resume();
        }
        sleep(rt, Duration::from_millis(50)).await;
        assert!(no_keys_left(&masters), "{:?}", support::keys_everywhere(&masters));
    }

    async fn routine_error_survives_a_failed_release(rt: Runtime) {
        let masters = masters(3);
        let redlock = builder(rt, &masters).automatic_extension_threshold(THRESHOLD).build().unwrap();
        let failing = masters.clone();
        let result: Result<Result<(), String>, LockError> = redlock
            .using(["job"], TTL, |_| async move {
                for master in &failing {
                    master.set_fault(Some(Fault::FailReleases));
                }
                Err("the routine's own error".to_string())
            })
            .await;
        assert_eq!(result.unwrap(), Err("the routine's own error".to_string()));

        let outcome = redlock
            .using_outcome(["job-2"], TTL, |_| async { 7 })
            .await
            .unwrap();
        assert_eq!(outcome.output, 7);
        assert!(matches!(outcome.release, Err(LockError::Unavailable { .. })));
    }

    async fn no_extension_after_using_returns(rt: Runtime) {
        let masters = masters(3);
        let redlock = builder(rt, &masters).automatic_extension_threshold(THRESHOLD).build().unwrap();
        redlock
            .using(["job"], TTL, |_| sleep(rt, TTL * 2))
            .await
            .unwrap();
        let after: Vec<u64> = masters.iter().map(|m| m.calls().extend).collect();
        assert!(after.iter().all(|&n| n >= 2), "{after:?}");
        sleep(rt, TTL * 3).await;
        let later: Vec<u64> = masters.iter().map(|m| m.calls().extend).collect();
        assert_eq!(after, later, "extension requests after using() returned");
        assert!(no_keys_left(&masters));
    }

    async fn dropping_a_using_future_frees_the_resource(rt: Runtime) {
        let masters = masters(3);
        let redlock = builder(rt, &masters).automatic_extension_threshold(THRESHOLD).build().unwrap();
        let long = Duration::from_secs(30);
        let running = redlock.using(["job"], long, |_| sleep(rt, long));
        match select(pin!(running), pin!(sleep(rt, Duration::from_millis(100)))).await {
            Either::Left(_) => panic!("the routine should still run"),
            Either::Right(_) => {}
        }
        // The using future is dropped here, mid-routine.
        support::wait_until_free(rt, &masters, Duration::from_secs(1)).await;
    }

    async fn dropping_an_unreleased_lock_frees_the_resource(rt: Runtime) {
        let masters = masters(3);
        let redlock = builder(rt, &masters).build().unwrap();
        let lock = redlock.acquire(["job"], Duration::from_secs(30)).await.unwrap();
        let extended = lock.extend(Duration::from_secs(30)).await.unwrap();
        drop(lock);
        sleep(rt, Duration::from_millis(50)).await;
        assert!(masters[0].value("job").is_some(), "the extended handle still holds it");
        drop(extended);
        support::wait_until_free(rt, &masters, Duration::from_secs(1)).await;
    }

    async fn dropping_an_acquire_mid_flight_frees_the_resource(rt: Runtime) {
        let masters = masters(3);
        for master in &masters {
            master.set_delay(Duration::from_millis(100));
        }
        let redlock = builder(rt, &masters).request_timeout(Duration::from_secs(1)).build().unwrap();
        let acquiring = redlock.acquire(["job"], Duration::from_secs(30));
        match select(pin!(acquiring), pin!(sleep(rt, Duration::from_millis(30)))).await {
            Either::Left(_) => panic!("the acquire should still be in flight"),
            Either::Right(_) => {}
        }
        // The requests were sent and will be applied; the background release follows them.
        sleep(rt, Duration::from_millis(150)).await;
        support::wait_until_free(rt, &masters, Duration::from_secs(1)).await;
    }

    async fn panicking_routine_releases_the_lock(rt: Runtime) {
        let masters = masters(3);
        let redlock = builder(rt, &masters).automatic_extension_threshold(THRESHOLD).build().unwrap();
        let seen = Arc::new(Mutex::new(false));
        let seen_in = Arc::clone(&seen);
        let result = AssertUnwindSafe(redlock.using(["job"], Duration::from_secs(30), |_| async move {
            *seen_in.lock().unwrap() = true;
            panic!("routine failed");
        }))
        .catch_unwind()
        .await;
        assert!(*seen.lock().unwrap());
        let panic = result.expect_err("the panic must resume");
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"routine failed"));
        assert!(no_keys_left(&masters), "{:?}", support::keys_everywhere(&masters));
    }

    async fn hold_limits_stop_extension_and_signal_first(rt: Runtime) {
        let masters = masters(3);
        let redlock = builder(rt, &masters)
            .automatic_extension_threshold(THRESHOLD)
            .max_extensions(1)
            .build()
            .unwrap();
        let outcome = redlock
            .using_outcome(["job"], TTL, |signal| async move {
                let error = signal.aborted().await;
                (error, Instant::now(), signal.expiration())
            })
            .await
            .unwrap();
        let (error, fired, expiration) = outcome.output;
        assert!(matches!(error, LockError::HoldLimit { extensions: 1, .. }), "{error}");
        assert!(fired < expiration);
        assert_eq!(outcome.extensions, 1);
    }

    async fn using_reports_acquisition_failures_and_bad_input(rt: Runtime) {
        let masters = masters(3);
        let redlock = builder(rt, &masters).build().unwrap();
        let held = redlock.acquire(["job"], Duration::from_secs(5)).await.unwrap();
        let error = redlock.using(["job"], Duration::from_secs(5), |_| async {}).await.unwrap_err();
        assert!(matches!(error, LockError::Contended { .. }), "{error}");
        held.release().await.unwrap();
        let error = redlock
            .using(["job"], Duration::from_millis(400), |_| async {})
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            LockError::InvalidInput(InvalidInput::ThresholdNotBelowTtl { .. })
        ));
        let mut settings = redlock.settings().clone();
        settings.automatic_extension_threshold = Duration::from_millis(100);
        let value = redlock
            .using_with(["job"], Duration::from_millis(400), settings, |_| async { 42 })
            .await
            .unwrap();
        assert_eq!(value, 42);
        assert!(no_keys_left(&masters));
    }
}
