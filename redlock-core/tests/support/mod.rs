//! Helpers shared by core's tests: one test per enabled runtime, memory masters.
#![allow(dead_code, unreachable_pub)]

use std::{future::Future, time::Duration};

use redlock_core::{MemoryBackend, Redlock, RedlockBuilder, Runtime};

/// Expands each `async fn name(rt: Runtime) { ... }` into a module with one `#[test]`
/// per enabled runtime feature.
#[macro_export]
macro_rules! runtime_tests {
    ($(async fn $name:ident($rt:ident: Runtime) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn body($rt: Runtime) $body

                #[cfg(feature = "tokio")]
                #[test]
                fn tokio() {
                    $crate::support::block_on_tokio(body(Runtime::Tokio));
                }

                #[cfg(feature = "smol")]
                #[test]
                fn smol() {
                    ::smol::block_on(body(Runtime::Smol));
                }

                #[cfg(feature = "async-std")]
                #[test]
                fn async_std() {
                    ::async_std::task::block_on(body(Runtime::AsyncStd));
                }
            }
        )*
    };
}

pub fn block_on_tokio<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}

/// `n` fresh memory masters named `m0`, `m1`, ...
pub fn masters(n: usize) -> Vec<MemoryBackend> {
    (0..n)
        .map(|i| MemoryBackend::named(format!("m{i}")))
        .collect()
}

/// A builder over clones of `masters` on `rt`, with no retries and a 50 ms request
/// timeout unless a test says otherwise.
pub fn builder(rt: Runtime, masters: &[MemoryBackend]) -> RedlockBuilder {
    Redlock::builder(masters.to_vec())
        .runtime(rt)
        .retry_count(0)
        .request_timeout(Duration::from_millis(50))
}

pub fn no_keys_left(masters: &[MemoryBackend]) -> bool {
    masters.iter().all(|master| master.keys().is_empty())
}

pub fn keys_everywhere(masters: &[MemoryBackend]) -> Vec<(String, Vec<String>)> {
    masters
        .iter()
        .map(|master| (format!("{master:?}"), master.keys()))
        .collect()
}

/// Sleeps on the given runtime's timer.
pub async fn sleep(rt: Runtime, duration: Duration) {
    match rt {
        #[cfg(feature = "tokio")]
        Runtime::Tokio => tokio::time::sleep(duration).await,
        #[cfg(feature = "smol")]
        Runtime::Smol => {
            smol::Timer::after(duration).await;
        }
        #[cfg(feature = "async-std")]
        Runtime::AsyncStd => async_std::task::sleep(duration).await,
        #[allow(unreachable_patterns)]
        _ => unreachable!("no runtime"),
    }
}

/// Waits until every master is empty; panics with what is left after `limit`.
pub async fn wait_until_free(rt: Runtime, masters: &[MemoryBackend], limit: Duration) {
    let start = std::time::Instant::now();
    while !no_keys_left(masters) {
        assert!(
            start.elapsed() < limit,
            "not freed: {:?}",
            keys_everywhere(masters)
        );
        sleep(rt, Duration::from_millis(5)).await;
    }
}
