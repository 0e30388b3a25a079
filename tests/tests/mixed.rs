//! One `Redlock` whose masters are reached partly through redis-rs and partly through
//! fred.

use std::time::Duration;

use redlock_core::{LockBackend, Redlock, Runtime};
use redlock_tests::{Adapter, Cluster, Fred, RedisRs, runtimes};

const TTL: Duration = Duration::from_secs(10);

async fn mixed_backends(cluster: &Cluster) -> Vec<Box<dyn LockBackend>> {
    let mut backends: Vec<Box<dyn LockBackend>> = Vec::new();
    for (i, url) in cluster.urls().iter().enumerate() {
        if i < 3 {
            backends.push(Box::new(RedisRs::connect(url).await.unwrap()));
        } else {
            backends.push(Box::new(Fred::connect(url).await.unwrap()));
        }
    }
    backends
}

#[test]
fn mixed_clients_acquire_extend_and_release() {
    runtimes::block_on(Runtime::Tokio, async {
        let mut cluster = Cluster::start(5);
        let redlock = Redlock::builder(mixed_backends(&cluster).await)
            .retry_delay(Duration::from_millis(50))
            .build()
            .unwrap();
        assert_eq!(redlock.quorum(), 3);

        let lock = redlock.acquire(["mixed", "other"], TTL).await.unwrap();
        let other = redlock.try_acquire(["other"], TTL).await.unwrap_err();
        assert!(
            matches!(other, redlock_core::LockError::Contended { .. }),
            "{other}"
        );
        let lock = lock.extend(TTL * 2).await.unwrap();
        lock.release().await.unwrap();
        cluster.assert_no_keys();

        // Two masters die mid-test, one behind each client: still a quorum.
        let lock = redlock.acquire(["mixed"], TTL).await.unwrap();
        cluster.server_mut(1).kill();
        cluster.server_mut(4).kill();
        let lock = lock.extend(TTL).await.unwrap();
        assert_eq!(lock.stats().granted(), 3, "{}", lock.stats());
        lock.release().await.unwrap();
        let lock = redlock.acquire(["mixed"], TTL).await.unwrap();
        let granted: Vec<&str> = lock.stats().votes_for().collect();
        let alive = [0, 2, 3].map(|i| cluster.server(i).addr());
        assert_eq!(granted.len(), 3, "{}", lock.stats());
        assert!(
            granted.iter().all(|name| alive.contains(&name.to_string())),
            "{granted:?}"
        );
        lock.release().await.unwrap();
        cluster.assert_no_keys();
    });
}
