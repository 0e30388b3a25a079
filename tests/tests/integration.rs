//! Both seed flows and the basic guarantees against real `redis-server` masters, for
//! every adapter under every runtime (see `adapter_suite!`).

use std::time::{Duration, Instant};

use redlock_core::{LockError, conformance};
use redlock_tests::{
    Cluster, RedisServer, ServerOptions, adapter_suite, runtimes,
    suite::{builder, connect_all, redlock},
};

const TTL: Duration = Duration::from_secs(10);

adapter_suite! {
    async fn conformance_suite_passes_on_a_real_server<A>(rt: Runtime) {
        let server = RedisServer::start();
        let url = server.url();
        let report = conformance::run(|| {
            let url = url.clone();
            async move { A::connect(&url).await.expect("connect") }
        })
        .await
        .unwrap_or_else(|error| panic!("{}: {error}", A::NAME));
        assert_eq!(report.passed.len(), 14);
        assert_eq!(server.key_count(), 0, "{:?}", server.keys());
        let _ = rt;
    }

    async fn seed_flow_on_1_3_and_5_masters<A>(rt: Runtime) {
        for n in [1, 3, 5] {
            let cluster = Cluster::start(n);
            let redlock = redlock::<A>(rt, &cluster).await;
            assert_eq!(redlock.quorum(), n / 2 + 1);
            for resources in [vec!["invoice:1"], vec!["invoice:1", "invoice:2", "invoice:3"]] {
                let lock = redlock.acquire(&resources, TTL).await.unwrap();
                assert_eq!(lock.resources(), resources.as_slice());
                assert!(lock.remaining() > TTL / 2);
                // Decided at quorum: a quorum holds every key at once; any other master
                // holds them too once its (already sent) request is applied.
                let holders = cluster
                    .servers()
                    .iter()
                    .filter(|server| resources.iter().all(|r| server.get(r).as_deref() == Some(lock.value())))
                    .count();
                assert!(holders >= redlock.quorum(), "{holders} of {n} hold the lock");
                let extended = lock.extend(TTL * 2).await.unwrap();
                assert!(extended.expiration() > lock.expiration());
                // Decided at quorum too: a quorum has the longer TTL already.
                let ttls: Vec<i64> = cluster
                    .servers()
                    .iter()
                    .map(|server| server.command(&["PTTL", resources[0]]).unwrap())
                    .collect();
                let extended_on = ttls.iter().filter(|&&ms| ms > TTL.as_millis() as i64).count();
                assert!(extended_on >= redlock.quorum(), "extend reached too few servers: {ttls:?}");
                drop(lock);
                let report = extended.release().await.unwrap();
                assert!(!report.expired);
                assert!(report.held_on >= 1 && report.held_on <= report.stats.granted(), "{report:?}");
                cluster.assert_no_keys();
            }
        }
    }

    async fn every_master_gets_the_lock_even_when_the_quorum_decides_first<A>(rt: Runtime) {
        let cluster = Cluster::start(5);
        let redlock = redlock::<A>(rt, &cluster).await;
        for i in 0..30 {
            let key = format!("everywhere:{i}");
            let lock = redlock.acquire([&key], TTL).await.unwrap();
            let start = Instant::now();
            loop {
                let holders = cluster.servers().iter().filter(|s| s.get(&key).as_deref() == Some(lock.value())).count();
                if holders == 5 {
                    break;
                }
                assert!(start.elapsed() < Duration::from_secs(1), "lock {i} reached {holders} of 5 masters");
                runtimes::sleep(rt, Duration::from_millis(5)).await;
            }
            lock.release().await.unwrap();
        }
        cluster.assert_no_keys();
    }

    async fn second_client_is_refused_until_release_or_expiry<A>(rt: Runtime) {
        let cluster = Cluster::start(3);
        let first = redlock::<A>(rt, &cluster).await;
        let second = builder(rt, connect_all::<A>(&cluster).await)
            .retry_count(2)
            .build()
            .unwrap();

        let lock = first.acquire(["report"], TTL).await.unwrap();
        let error = second.acquire(["report"], TTL).await.unwrap_err();
        let LockError::Contended { attempts } = &error else { panic!("{error}") };
        assert_eq!(attempts.total, 3);
        lock.release().await.unwrap();
        let lock = second.acquire(["report"], TTL).await.unwrap();
        lock.release().await.unwrap();

        // After expiry, without any release.
        let short = first.acquire(["report"], Duration::from_millis(300)).await.unwrap();
        assert!(second.try_acquire(["report"], TTL).await.is_err());
        runtimes::sleep(rt, Duration::from_millis(400)).await;
        assert!(short.is_expired());
        let lock = second.acquire(["report"], TTL).await.unwrap();
        let report = short.release().await.unwrap();
        assert!(report.expired);
        assert_eq!(report.held_on, 0, "releasing an expired lock deleted the new holder's keys");
        lock.release().await.unwrap();
        cluster.assert_no_keys();
    }

    async fn a_key_of_another_type_counts_as_held<A>(rt: Runtime) {
        let cluster = Cluster::start(3);
        for server in cluster.servers() {
            let _: () = server.command(&["HSET", "typed", "field", "value"]).unwrap();
        }
        let redlock = redlock::<A>(rt, &cluster).await;
        // Several keys go through the script, one key through `SET .. NX GET`.
        for keys in [&["free", "typed"][..], &["typed"]] {
            let error = redlock.try_acquire(keys, TTL).await.unwrap_err();
            assert!(matches!(error, LockError::Contended { .. }), "{keys:?}: {error}");
        }
        for server in cluster.servers() {
            assert_eq!(server.command::<String>(&["TYPE", "typed"]).unwrap(), "hash");
            assert_eq!(server.keys(), ["typed"], "the refused acquire left keys behind");
        }
        let lock = redlock.try_acquire(["free"], TTL).await.unwrap();
        lock.release().await.unwrap();
        for server in cluster.servers() {
            server.flush();
        }
    }

    async fn overlapping_multi_resource_locks_exclude_each_other<A>(rt: Runtime) {
        let cluster = Cluster::start(3);
        let redlock = redlock::<A>(rt, &cluster).await;
        let ab = redlock.acquire(["a", "b"], TTL).await.unwrap();
        let error = redlock.try_acquire(["b", "c"], TTL).await.unwrap_err();
        assert!(matches!(error, LockError::Contended { .. }), "{error}");
        // All or none: "c" was not taken by the refused attempt.
        assert!(cluster.servers().iter().all(|server| server.get("c").is_none()));
        let cd = redlock.try_acquire(["c", "d"], TTL).await.unwrap();
        ab.release().await.unwrap();
        let error = redlock.try_acquire(["b", "c"], TTL).await.unwrap_err();
        assert!(matches!(error, LockError::Contended { .. }), "{error}");
        cd.release().await.unwrap();
        let bc = redlock.try_acquire(["b", "c"], TTL).await.unwrap();
        bc.release().await.unwrap();
        cluster.assert_no_keys();
    }

    async fn contended_read_modify_write_loses_no_update<A>(rt: Runtime) {
        const TASKS: usize = 32;
        const ROUNDS: usize = 4;
        let cluster = Cluster::start(3);
        let data = RedisServer::start();
        let redlock = builder(rt, connect_all::<A>(&cluster).await)
            .retry_count(10_000)
            .retry_delay(Duration::from_millis(5))
            .retry_jitter(Duration::from_millis(5))
            .build()
            .unwrap();
        let client = redis::Client::open(data.url()).unwrap();
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let redlock = redlock.clone();
                let client = client.clone();
                runtimes::spawn(rt, async move {
                    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
                    for _ in 0..ROUNDS {
                        let lock = redlock.acquire(["counter"], TTL).await.unwrap();
                        let value: Option<u64> = redis::cmd("GET").arg("counter").query_async(&mut connection).await.unwrap();
                        runtimes::sleep(rt, Duration::from_millis(1)).await;
                        let _: () = redis::cmd("SET").arg("counter").arg(value.unwrap_or(0) + 1).query_async(&mut connection).await.unwrap();
                        assert!(!lock.is_expired(), "the critical section outlived the lock");
                        lock.release().await.unwrap();
                    }
                })
            })
            .collect();
        futures_util::future::join_all(tasks).await;
        assert_eq!(data.get("counter").as_deref(), Some((TASKS * ROUNDS).to_string().as_str()));
        cluster.assert_no_keys();
    }

    async fn two_of_five_masters_killed_still_locks<A>(rt: Runtime) {
        let mut cluster = Cluster::start(5);
        let redlock = redlock::<A>(rt, &cluster).await;
        let lock = redlock.acquire(["ledger"], TTL).await.unwrap();
        lock.release().await.unwrap();
        cluster.server_mut(1).kill();
        cluster.server_mut(3).kill();
        let start = Instant::now();
        let lock = redlock.acquire(["ledger", "journal"], TTL).await.unwrap();
        assert_eq!(lock.stats().granted(), 3, "{}", lock.stats());
        let lock = lock.extend(TTL).await.unwrap();
        lock.release().await.unwrap();
        assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
        cluster.assert_no_keys();
    }

    async fn three_of_five_masters_killed_fails_naming_each<A>(rt: Runtime) {
        let mut cluster = Cluster::start(5);
        let retries = 3;
        let delay = Duration::from_millis(100);
        let timeout = Duration::from_millis(300);
        let redlock = builder(rt, connect_all::<A>(&cluster).await)
            .retry_count(retries)
            .retry_delay(delay)
            .retry_jitter(Duration::ZERO)
            .request_timeout(timeout)
            .build()
            .unwrap();
        let dead: Vec<String> = [0, 2, 4].iter().map(|&i| cluster.server(i).addr()).collect();
        for i in [0, 2, 4] {
            cluster.server_mut(i).kill();
        }
        let start = Instant::now();
        let error = redlock.acquire(["ledger"], TTL).await.unwrap_err();
        let elapsed = start.elapsed();
        let LockError::Unavailable { attempts } = &error else { panic!("{error}") };
        assert_eq!(attempts.total, retries + 1);
        let message = error.to_string();
        for addr in &dead {
            assert!(message.contains(addr.as_str()), "{addr} not named in: {message}");
        }
        let stats = attempts.latest().unwrap();
        let against: Vec<&str> = stats.votes_against().map(|vote| &*vote.backend).collect();
        assert_eq!(against, dead.iter().map(String::as_str).collect::<Vec<_>>());
        // Budget: each attempt and its cleanup within one timeout each, plus the pauses.
        let budget = (timeout * 2) * (retries + 1) + delay * retries + Duration::from_secs(1);
        assert!(elapsed < budget, "took {elapsed:?}, budget {budget:?}");
        cluster.assert_no_keys();
    }

    async fn script_flush_does_not_break_locking<A>(rt: Runtime) {
        let mut cluster = Cluster::start(3);
        let redlock = redlock::<A>(rt, &cluster).await;
        let lock = redlock.acquire(["flushy"], TTL).await.unwrap();
        for server in cluster.servers() {
            server.script_flush();
        }
        let lock = lock.extend(TTL).await.unwrap();
        for server in cluster.servers() {
            server.script_flush();
        }
        lock.release().await.unwrap();
        for server in cluster.servers() {
            server.script_flush();
        }
        let lock = redlock.acquire(["flushy"], TTL).await.unwrap();
        assert_eq!(lock.stats().votes_against().count(), 0, "{}", lock.stats());
        lock.release().await.unwrap();
        cluster.assert_no_keys();
        // A release decided at the quorum must still reach the last master, even when
        // that master first answers NOSCRIPT and needs the EVAL fallback sent after the
        // decision: here the last master is paused until the release has returned.
        let lock = redlock.acquire(["flushy"], TTL).await.unwrap();
        for server in cluster.servers() {
            server.script_flush();
        }
        cluster.server_mut(2).pause();
        lock.release().await.unwrap();
        cluster.server_mut(2).resume();
        cluster.assert_no_keys();
    }

    async fn locking_over_tls_works<A>(rt: Runtime) {
        let servers: Vec<RedisServer> = (0..3)
            .map(|_| RedisServer::start_with(ServerOptions::default().tls()))
            .collect();
        let mut backends = Vec::new();
        for server in &servers {
            let url = server.tls_url().unwrap();
            let ca = &server.tls_material().unwrap().ca_cert;
            backends.push(A::connect_tls(&url, ca).await.unwrap_or_else(|error| panic!("{url}: {error}")));
        }
        let redlock = builder(rt, backends).build().unwrap();
        let lock = redlock.acquire(["secure"], TTL).await.unwrap();
        assert_eq!(lock.stats().votes_against().count(), 0, "{}", lock.stats());
        let holders = servers.iter().filter(|s| s.get("secure").as_deref() == Some(lock.value())).count();
        assert!(holders >= 2);
        lock.release().await.unwrap();
        Cluster::from_servers(servers).assert_no_keys();
    }

    async fn credentials_in_the_url_work<A>(rt: Runtime) {
        let options = ServerOptions::default().password("s3cret").acl_user("locker", "pa55");
        let servers: Vec<RedisServer> = (0..3).map(|_| RedisServer::start_with(options.clone())).collect();
        let mut backends = Vec::new();
        for (i, server) in servers.iter().enumerate() {
            // Mix the default user's password and an ACL user.
            let url = if i % 2 == 0 { server.url() } else { server.acl_url().unwrap() };
            backends.push(A::connect(&url).await.unwrap_or_else(|error| panic!("{url}: {error}")));
        }
        let redlock = builder(rt, backends).build().unwrap();
        let lock = redlock.acquire(["guarded"], TTL).await.unwrap();
        assert_eq!(lock.stats().votes_against().count(), 0, "{}", lock.stats());
        lock.release().await.unwrap();
        Cluster::from_servers(servers).assert_no_keys();
    }

    async fn wrong_password_is_a_clear_error_naming_the_master<A>(rt: Runtime) {
        let server = RedisServer::start_with(ServerOptions::default().password("right"));
        let url = format!("redis://:wrong@127.0.0.1:{}", server.port());
        let start = Instant::now();
        let error = A::connect(&url).await.expect_err("a wrong password must not connect");
        assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
        assert!(error.contains(&server.addr()), "master not named: {error}");
        assert!(!error.contains("wrong"), "the password leaked into: {error}");
        let lower = error.to_lowercase();
        assert!(lower.contains("auth") || lower.contains("password") || lower.contains("wrongpass"), "{error}");
        let _ = rt;
    }
}
