//! The torture run: clients guarding a non-atomic read-modify-write under a nemesis,
//! a history on one monotonic clock, and a checker over it.
//!
//! [`history`] records what each client saw, [`check`] decides whether the history is
//! safe, [`nemesis`] injects faults, [`client`] runs the clients.

pub mod check;
pub mod client;
pub mod history;
pub mod nemesis;

use std::time::Instant;

/// Nanoseconds on `CLOCK_MONOTONIC`: one clock for every process on this machine.
pub fn now_ns() -> u64 {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is available");
    u64::try_from(now.tv_sec()).unwrap_or(0) * 1_000_000_000
        + u64::try_from(now.tv_nsec()).unwrap_or(0)
}

/// An `Instant` on the [`now_ns`] clock.
pub fn instant_ns(instant: Instant) -> u64 {
    let (now, now_ns) = (Instant::now(), now_ns());
    if instant >= now {
        now_ns + u64::try_from((instant - now).as_nanos()).unwrap_or(u64::MAX / 2)
    } else {
        now_ns.saturating_sub(u64::try_from((now - instant).as_nanos()).unwrap_or(0))
    }
}
