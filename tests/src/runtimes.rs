//! Running a future under each async runtime.

use std::future::Future;

use redlock_core::Runtime;

/// Every runtime the suites run under.
pub const ALL: [Runtime; 3] = [Runtime::Tokio, Runtime::AsyncStd, Runtime::Smol];

/// Runs `future` to completion on `runtime` (tokio: a multi-thread runtime with two
/// workers).
pub fn block_on<F: Future>(runtime: Runtime, future: F) -> F::Output {
    match runtime {
        Runtime::Tokio => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime")
            .block_on(future),
        Runtime::AsyncStd => async_std::task::block_on(future),
        Runtime::Smol => smol::block_on(future),
        _ => unreachable!("the tests enable every runtime"),
    }
}

/// Sleeps on `runtime`'s timer.
pub async fn sleep(runtime: Runtime, duration: std::time::Duration) {
    match runtime {
        Runtime::Tokio => tokio::time::sleep(duration).await,
        Runtime::AsyncStd => async_std::task::sleep(duration).await,
        _ => {
            smol::Timer::after(duration).await;
        }
    }
}

/// Spawns `future` on `runtime` and waits for its output.
pub async fn spawn<F>(runtime: Runtime, future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match runtime {
        Runtime::Tokio => tokio::spawn(future).await.expect("task panicked"),
        Runtime::AsyncStd => async_std::task::spawn(future).await,
        _ => smol::spawn(future).await,
    }
}
