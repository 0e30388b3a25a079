//! Writing a suite once and running it for every adapter under every runtime.

use std::time::Duration;

use redlock_core::{Redlock, RedlockBuilder, Runtime};

use crate::{Adapter, Cluster};

/// Expands each `async fn name<A>(rt: Runtime) { ... }` into a module with one
/// `#[test]` per adapter and runtime the adapter supports (`redis_rs_tokio`,
/// `redis_rs_async_std`, `redis_rs_smol`, `fred_tokio`). The body is generic over
/// `A: Adapter`, so every adapter runs the same code.
#[macro_export]
macro_rules! adapter_suite {
    ($(
        $(#[$meta:meta])*
        async fn $name:ident<$A:ident>($rt:ident: Runtime) $body:block
    )*) => {$(
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body<$A: $crate::Adapter>($rt: ::redlock_core::Runtime) $body

            fn run<$A: $crate::Adapter>(runtime: ::redlock_core::Runtime) {
                $crate::runtimes::block_on(runtime, body::<$A>(runtime));
            }

            #[test]
            fn redis_rs_tokio() {
                run::<$crate::RedisRs>(::redlock_core::Runtime::Tokio);
            }

            #[test]
            fn redis_rs_async_std() {
                run::<$crate::RedisRs>(::redlock_core::Runtime::AsyncStd);
            }

            #[test]
            fn redis_rs_smol() {
                run::<$crate::RedisRs>(::redlock_core::Runtime::Smol);
            }

            #[test]
            fn fred_tokio() {
                run::<$crate::Fred>(::redlock_core::Runtime::Tokio);
            }
        }
    )*};
}

/// Like [`adapter_suite!`] but on tokio only: one `#[test]` per adapter (`redis_rs`,
/// `fred`). For the slower fault suites, whose runtime coverage the integration suite
/// already gives.
#[macro_export]
macro_rules! both_adapters {
    ($(
        $(#[$meta:meta])*
        async fn $name:ident<$A:ident>() $body:block
    )*) => {$(
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body<$A: $crate::Adapter>() $body

            #[test]
            fn redis_rs() {
                $crate::runtimes::block_on(::redlock_core::Runtime::Tokio, body::<$crate::RedisRs>());
            }

            #[test]
            fn fred() {
                $crate::runtimes::block_on(::redlock_core::Runtime::Tokio, body::<$crate::Fred>());
            }
        }
    )*};
}

/// Connects adapter `A` to every master of `cluster`, in order.
pub async fn connect_all<A: Adapter>(cluster: &Cluster) -> Vec<A::Backend> {
    let mut backends = Vec::with_capacity(cluster.len());
    for url in cluster.urls() {
        let backend = A::connect(&url)
            .await
            .unwrap_or_else(|error| panic!("{} cannot connect to {url}: {error}", A::NAME));
        backends.push(backend);
    }
    backends
}

/// A builder over `backends` on `runtime` with retries suited to tests: 10 retries,
/// 50 ms +/- 25 ms apart.
pub fn builder<B>(runtime: Runtime, backends: impl IntoIterator<Item = B>) -> RedlockBuilder
where
    B: redlock_core::LockBackend + 'static,
{
    Redlock::builder(backends)
        .runtime(runtime)
        .retry_count(10)
        .retry_delay(Duration::from_millis(50))
        .retry_jitter(Duration::from_millis(25))
}

/// Connects adapter `A` to each URL, in order.
pub async fn connect_urls<A: Adapter>(urls: &[String]) -> Vec<A::Backend> {
    let mut backends = Vec::with_capacity(urls.len());
    for url in urls {
        let backend = A::connect(url)
            .await
            .unwrap_or_else(|error| panic!("{} cannot connect to {url}: {error}", A::NAME));
        backends.push(backend);
    }
    backends
}

/// A `Redlock` over adapter `A`'s connections to every master of `cluster`.
pub async fn redlock<A: Adapter>(runtime: Runtime, cluster: &Cluster) -> Redlock {
    builder(runtime, connect_all::<A>(cluster).await)
        .build()
        .expect("valid settings")
}
