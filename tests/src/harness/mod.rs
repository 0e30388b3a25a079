//! Independent `redis-server` processes on free loopback ports.

mod cluster;
mod server;
mod tls;

pub use cluster::Cluster;
pub use server::{HarnessError, RedisServer, ServerOptions, redis_server_bin};
pub use tls::TlsMaterial;
