//! Each nemesis alone against 5 real masters, for both adapters.

use std::time::{Duration, Instant};

use redlock_core::{LockError, Runtime};
use redlock_tests::{
    Cluster, Proxy, both_adapters, runtimes,
    suite::{builder, connect_all, connect_urls},
};

const TTL: Duration = Duration::from_secs(5);
const TIMEOUT: Duration = Duration::from_millis(300);
const RT: Runtime = Runtime::Tokio;

/// Acquire + release `rounds` times; returns the acquire latencies, sorted.
async fn cycles(redlock: &redlock_core::Redlock, rounds: usize) -> Vec<Duration> {
    let mut latencies = Vec::new();
    for i in 0..rounds {
        let start = Instant::now();
        let lock = redlock.acquire([format!("cycle:{i}")], TTL).await.unwrap();
        latencies.push(start.elapsed());
        lock.release().await.unwrap();
    }
    latencies.sort();
    latencies
}

fn proxies(cluster: &Cluster) -> Vec<Proxy> {
    cluster
        .servers()
        .iter()
        .map(|server| Proxy::start(server.socket_addr()).unwrap())
        .collect()
}

both_adapters! {
    async fn paused_minority_costs_at_most_one_request_timeout<A>() {
        let mut cluster = Cluster::start(5);
        let redlock = builder(RT, connect_all::<A>(&cluster).await).request_timeout(TIMEOUT).build().unwrap();
        cluster.server_mut(0).pause();
        cluster.server_mut(3).pause();
        let latencies = cycles(&redlock, 20).await;
        let (median, max) = (latencies[latencies.len() / 2], latencies[latencies.len() - 1]);
        assert!(max < TIMEOUT + Duration::from_millis(150), "max {max:?}");
        assert!(median < Duration::from_millis(50), "median {median:?}");
        cluster.server_mut(0).resume();
        cluster.server_mut(3).resume();
        cluster.assert_no_keys();
    }

    async fn blackholed_or_slow_minority_costs_at_most_one_request_timeout<A>() {
        let cluster = Cluster::start(5);
        let proxies = proxies(&cluster);
        let urls: Vec<String> = proxies.iter().map(Proxy::url).collect();
        let redlock = builder(RT, connect_urls::<A>(&urls).await).request_timeout(TIMEOUT).build().unwrap();
        proxies[1].blackhole();
        proxies[4].blackhole();
        let latencies = cycles(&redlock, 20).await;
        assert!(latencies[19] < TIMEOUT + Duration::from_millis(150), "blackhole max {:?}", latencies[19]);
        assert!(latencies[10] < Duration::from_millis(50), "blackhole median {:?}", latencies[10]);
        proxies[1].set_latency(Duration::from_millis(250));
        proxies[4].set_latency(Duration::from_millis(250));
        let latencies = cycles(&redlock, 20).await;
        assert!(latencies[10] < Duration::from_millis(50), "latency median {:?}", latencies[10]);
        for proxy in &proxies {
            proxy.heal();
        }
        cluster.assert_no_keys();
    }

    async fn killed_masters_vote_again_after_restart<A>() {
        let mut cluster = Cluster::start(5);
        let redlock = builder(RT, connect_all::<A>(&cluster).await).request_timeout(TIMEOUT).build().unwrap();
        cluster.server_mut(1).kill();
        cluster.server_mut(2).kill();
        let lock = redlock.acquire(["rejoin"], TTL).await.unwrap();
        lock.release().await.unwrap();
        cluster.server_mut(1).restart();
        cluster.server_mut(2).restart();
        // No user action: the clients reconnect by themselves.
        let start = Instant::now();
        loop {
            let lock = redlock.acquire(["rejoin"], TTL).await.unwrap();
            runtimes::sleep(RT, Duration::from_millis(50)).await;
            let holders = cluster.servers().iter().filter(|s| s.get("rejoin").as_deref() == Some(lock.value())).count();
            lock.release().await.unwrap();
            if holders == 5 {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "restarted masters never voted again ({holders} of 5)");
            runtimes::sleep(RT, Duration::from_millis(100)).await;
        }
        cluster.assert_no_keys();
    }

    async fn majority_down_fails_fast_with_reasons_and_recovers<A>() {
        let mut cluster = Cluster::start(5);
        let redlock = builder(RT, connect_all::<A>(&cluster).await)
            .request_timeout(TIMEOUT)
            .retry_count(2)
            .retry_delay(Duration::from_millis(50))
            .retry_jitter(Duration::ZERO)
            .build()
            .unwrap();
        let down = [0, 1, 4];
        for i in down {
            cluster.server_mut(i).kill();
        }
        let start = Instant::now();
        let error = redlock.acquire(["ledger"], TTL).await.unwrap_err();
        let elapsed = start.elapsed();
        assert!(matches!(error, LockError::Unavailable { .. }), "{error}");
        assert!(elapsed < (TIMEOUT * 2) * 3 + Duration::from_secs(1), "took {elapsed:?}");
        let message = error.to_string();
        for i in down {
            assert!(message.contains(&cluster.server(i).addr()), "{} missing: {message}", cluster.server(i).addr());
        }
        for i in down {
            cluster.server_mut(i).restart();
        }
        let start = Instant::now();
        let lock = loop {
            match redlock.acquire(["ledger"], TTL).await {
                Ok(lock) => break lock,
                Err(error) => assert!(start.elapsed() < Duration::from_secs(10), "never recovered: {error}"),
            }
        };
        lock.release().await.unwrap();
        cluster.assert_no_keys();
    }

    async fn dropped_connections_do_not_stop_locking<A>() {
        let cluster = Cluster::start(5);
        let proxies = proxies(&cluster);
        let urls: Vec<String> = proxies.iter().map(Proxy::url).collect();
        let redlock = builder(RT, connect_urls::<A>(&urls).await).request_timeout(TIMEOUT).build().unwrap();
        for round in 0..3 {
            // Every connection to every master drops at once: the first attempt may
            // fail, the retries reconnect.
            if round % 2 == 0 {
                for server in cluster.servers() {
                    server.kill_clients();
                }
            } else {
                for proxy in &proxies {
                    proxy.reset();
                }
            }
            let lock = redlock.acquire(["conn"], TTL).await.unwrap();
            lock.release().await.unwrap();
        }
        cluster.assert_no_keys();
    }

    async fn a_client_paused_past_its_validity_is_told<A>() {
        let cluster = Cluster::start(5);
        let redlock = builder(RT, connect_all::<A>(&cluster).await).build().unwrap();
        let other = builder(RT, connect_all::<A>(&cluster).await).build().unwrap();
        let ttl = Duration::from_millis(400);
        let lock = redlock.acquire(["job"], ttl).await.unwrap();
        // The whole client stops (a GC pause, swap, SIGSTOP): the thread blocks.
        std::thread::sleep(ttl + Duration::from_millis(200));
        assert!(lock.is_expired());
        assert_eq!(lock.remaining(), Duration::ZERO);
        let error = lock.extend(TTL).await.unwrap_err();
        assert!(matches!(error, LockError::Expired), "{error}");
        let taken = other.acquire(["job"], TTL).await.unwrap();
        let report = lock.release().await.unwrap();
        assert!(report.expired);
        assert_eq!(report.held_on, 0, "the stale release deleted the new holder's keys");
        assert!(cluster.servers().iter().filter(|s| s.get("job").as_deref() == Some(taken.value())).count() >= 3);
        taken.release().await.unwrap();
        cluster.assert_no_keys();
    }
}
