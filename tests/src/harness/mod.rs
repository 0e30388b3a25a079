//! Independent `redis-server` processes on free loopback ports.

mod cluster;
mod proxy;
mod server;
mod tls;

pub use cluster::Cluster;
pub use proxy::{Proxy, ProxyMode};
pub use server::{HarnessError, RedisServer, ServerOptions, redis_server_bin};
pub use tls::TlsMaterial;
