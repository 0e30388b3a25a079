//! The real-Redis test harness and the shared pieces of the integration, fault and
//! safety suites.
//!
//! [`harness`] starts independent `redis-server` processes on free loopback ports and
//! controls them (kill, restart, pause, flush, count keys). [`adapters`] names the
//! backends under test so a suite is written once and run for every adapter, and
//! [`runtimes`] runs a future under each async runtime.

pub mod adapters;
pub mod harness;
pub mod runtimes;
pub mod suite;
pub mod torture;

pub use adapters::{Adapter, Fred, RedisRs};
pub use harness::{Cluster, HarnessError, Proxy, ProxyMode, RedisServer, ServerOptions};
