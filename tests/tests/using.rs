//! `using()` against real masters, for every adapter under every runtime.

use std::{
    panic::AssertUnwindSafe,
    pin::pin,
    time::{Duration, Instant},
};

use futures_util::{
    FutureExt,
    future::{Either, select},
};
use redlock_core::{LockError, Runtime};
use redlock_tests::{
    Cluster, RedisServer, adapter_suite, runtimes,
    suite::{builder, connect_all},
};

const TTL: Duration = Duration::from_millis(600);
const THRESHOLD: Duration = Duration::from_millis(300);

/// EVAL + EVALSHA calls a server has run so far.
fn script_calls(server: &RedisServer) -> u64 {
    let info: String = server.command(&["INFO", "commandstats"]).unwrap();
    info.lines()
        .filter(|line| line.starts_with("cmdstat_eval:") || line.starts_with("cmdstat_evalsha:"))
        .filter_map(|line| line.split("calls=").nth(1))
        .filter_map(|rest| rest.split(',').next())
        .filter_map(|calls| calls.parse::<u64>().ok())
        .sum()
}

/// Tasks alive on the current tokio runtime (`None` elsewhere).
fn tokio_tasks(rt: Runtime) -> Option<usize> {
    (rt == Runtime::Tokio).then(|| {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    })
}

async fn wait_until_free(rt: Runtime, cluster: &Cluster) {
    let start = Instant::now();
    while cluster.total_keys() > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "not freed: {:?}",
            cluster.keys_everywhere()
        );
        runtimes::sleep(rt, Duration::from_millis(10)).await;
    }
}

adapter_suite! {
    async fn routine_running_three_ttls_keeps_the_lock<A>(rt: Runtime) {
        let cluster = Cluster::start(3);
        let redlock = builder(rt, connect_all::<A>(&cluster).await)
            .automatic_extension_threshold(THRESHOLD)
            .build()
            .unwrap();
        let other = builder(rt, connect_all::<A>(&cluster).await).build().unwrap();
        let extensions = redlock
            .using(["report"], TTL, |signal| async move {
                let start = Instant::now();
                let mut refused = 0;
                while start.elapsed() < TTL * 3 {
                    let error = other.try_acquire(["report"], TTL).await.expect_err("another client got the lock");
                    assert!(matches!(error, LockError::Contended { .. }), "{error}");
                    refused += 1;
                    assert!(!signal.is_aborted(), "{:?}", signal.error());
                    runtimes::sleep(rt, Duration::from_millis(25)).await;
                }
                assert!(refused > 20);
                assert!(signal.error().is_none());
                signal.extensions()
            })
            .await
            .unwrap();
        assert!(extensions >= 4, "{extensions} extensions in three TTLs");
        cluster.assert_no_keys();
    }

    async fn signal_fires_before_expiry_when_a_majority_loses_the_keys<A>(rt: Runtime) {
        let cluster = Cluster::start(3);
        let redlock = builder(rt, connect_all::<A>(&cluster).await)
            .automatic_extension_threshold(THRESHOLD)
            .build()
            .unwrap();
        let outcome = redlock
            .using_outcome(["report"], TTL, |signal| {
                let cluster = &cluster;
                async move {
                    // The grant was decided at the quorum: wait until the last master's
                    // acquire landed too, or it could re-create the key deleted below.
                    while cluster.servers().iter().any(|server| server.get("report").is_none()) {
                        runtimes::sleep(rt, Duration::from_millis(2)).await;
                    }
                    // One master loses the key, another has it overwritten by someone else.
                    let _: () = cluster.server(0).command(&["DEL", "report"]).unwrap();
                    let _: () = cluster.server(1).command(&["SET", "report", "intruder", "PX", "60000"]).unwrap();
                    let error = signal.aborted().await;
                    (error, Instant::now(), signal.expiration())
                }
            })
            .await
            .unwrap();
        let (error, fired, expiration) = outcome.output;
        assert!(fired < expiration, "fired {:?} after the expiration", fired - expiration);
        assert!(matches!(error, LockError::Lost { .. }), "{error}");
        assert!(error.to_string().contains("no longer held"), "{error}");
        assert_eq!(outcome.extensions, 0);
        // Our own key on the third master is gone, the intruder's key is untouched.
        assert_eq!(cluster.server(1).get("report").as_deref(), Some("intruder"));
        let _: () = cluster.server(1).command(&["DEL", "report"]).unwrap();
        cluster.assert_no_keys();
    }

    async fn routine_error_is_returned_when_the_release_fails<A>(rt: Runtime) {
        let mut cluster = Cluster::start(3);
        let redlock = builder(rt, connect_all::<A>(&cluster).await)
            .automatic_extension_threshold(THRESHOLD)
            .request_timeout(Duration::from_millis(200))
            .build()
            .unwrap();
        let outcome = redlock
            .using_outcome(["report"], Duration::from_secs(5), |_| {
                let cluster = &mut cluster;
                async move {
                    cluster.server_mut(0).kill();
                    cluster.server_mut(1).kill();
                    Err::<(), _>("routine failed on its own")
                }
            })
            .await
            .unwrap();
        assert_eq!(outcome.output, Err("routine failed on its own"));
        assert!(matches!(outcome.release, Err(LockError::Unavailable { .. })), "{:?}", outcome.release);
    }

    async fn nothing_runs_after_using_returns<A>(rt: Runtime) {
        let cluster = Cluster::start(3);
        let redlock = builder(rt, connect_all::<A>(&cluster).await)
            .automatic_extension_threshold(THRESHOLD)
            .build()
            .unwrap();
        // Warm up connections and any lazily spawned client tasks.
        redlock.acquire(["warm"], TTL).await.unwrap().release().await.unwrap();
        let tasks_before = tokio_tasks(rt);
        let extensions = redlock
            .using(["report"], TTL, |signal| async move {
                runtimes::sleep(rt, TTL * 2).await;
                signal.extensions()
            })
            .await
            .unwrap();
        assert!(extensions >= 2);
        let after: Vec<u64> = cluster.servers().iter().map(script_calls).collect();
        // Fewer is fine (a warm-up task may have ended); more means using() left one.
        assert!(tokio_tasks(rt) <= tasks_before, "a task outlived using(): {:?} > {tasks_before:?}", tokio_tasks(rt));
        runtimes::sleep(rt, TTL * 2).await;
        let later: Vec<u64> = cluster.servers().iter().map(script_calls).collect();
        assert_eq!(after, later, "script calls reached a master after using() returned");
        cluster.assert_no_keys();
    }

    async fn dropping_using_or_a_lock_frees_the_resource_early<A>(rt: Runtime) {
        let cluster = Cluster::start(3);
        let redlock = builder(rt, connect_all::<A>(&cluster).await).build().unwrap();
        let long = Duration::from_secs(60);

        let running = redlock.using(["report"], long, |_| runtimes::sleep(rt, long));
        if let Either::Left(_) = select(pin!(running), pin!(runtimes::sleep(rt, Duration::from_millis(200)))).await {
            panic!("the routine should still be running");
        }
        wait_until_free(rt, &cluster).await;

        let lock = redlock.acquire(["report"], long).await.unwrap();
        assert!(cluster.total_keys() >= 2);
        drop(lock);
        wait_until_free(rt, &cluster).await;
    }

    async fn panicking_routine_releases_the_lock<A>(rt: Runtime) {
        let cluster = Cluster::start(3);
        let redlock = builder(rt, connect_all::<A>(&cluster).await).build().unwrap();
        let result = AssertUnwindSafe(redlock.using(["report"], Duration::from_secs(60), |_| async {
            panic!("routine panicked");
        }))
        .catch_unwind()
        .await;
        let panic = result.expect_err("the panic must resume");
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"routine panicked"));
        cluster.assert_no_keys();
        let _ = rt;
    }
}
