//! [`RedisBackend`]: a [`LockBackend`] over one redis-rs async connection.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use redis::{
    Client, Cmd, ErrorKind, RedisError, ServerErrorKind,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection},
};
use redlock_core::{
    BackendError, BackendErrorKind, LockBackend, async_trait,
    scripts::{self, OneKeyFailure, Script, ScriptCache, ScriptFailure, redact_url},
};

/// One Redis master reached through a redis-rs async connection.
///
/// Build it from your own connection ([`RedisBackend::new`]: a
/// [`MultiplexedConnection`], a [`ConnectionManager`] or any cloneable
/// [`ConnectionLike`] that keeps one connection's command order), or let it connect
/// with [`RedisBackend::from_url`], which uses a reconnecting [`ConnectionManager`] so
/// a restarted master votes again without any action on your side.
///
/// Scripts are sent as `EVALSHA` with the digests from
/// [`redlock_core::scripts`]; when the server answers `NOSCRIPT` (after a restart or
/// `SCRIPT FLUSH`) the same call falls back to `EVAL`, which also reloads the script.
#[derive(Clone)]
pub struct RedisBackend<C = ConnectionManager> {
    connection: C,
    name: Arc<str>,
    scripts: Arc<ScriptCache>,
}

impl<C> fmt::Debug for RedisBackend<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Connecting to a master failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to redis master {master}")]
pub struct ConnectError {
    master: String,
    #[source]
    source: RedisError,
}

impl ConnectError {
    /// The master's address (or the URL it could not parse, without credentials).
    pub fn master(&self) -> &str {
        &self.master
    }

    /// The redis-rs error.
    pub fn redis_error(&self) -> &RedisError {
        &self.source
    }
}

impl<C> RedisBackend<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// A backend over your own connection, named `redis-<n>` until
    /// [`with_name`](Self::with_name) names it.
    ///
    /// The connection must write commands in call order (redis-rs multiplexed
    /// connections and [`ConnectionManager`] do); see
    /// [`LockBackend`]'s ordering contract.
    pub fn new(connection: C) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let name = format!("redis-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        Self {
            connection,
            name: name.into(),
            scripts: Arc::new(ScriptCache::new()),
        }
    }

    /// Names the backend in reports and errors (an address is a good name).
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Arc::from(name.into());
        self
    }

    /// The connection this backend uses.
    pub fn connection(&self) -> &C {
        &self.connection
    }

    /// Runs `script` by digest, falling back to its source on `NOSCRIPT`.
    async fn run(
        &self,
        script: Script,
        keys: &[String],
        value: &str,
        ttl: Option<Duration>,
    ) -> Result<i64, BackendError> {
        let call = self.run_inner(script, keys, value, ttl);
        #[cfg(feature = "tokio")]
        let call = tokio::task::unconstrained(call);
        call.await
    }

    async fn run_inner(
        &self,
        script: Script,
        keys: &[String],
        value: &str,
        ttl: Option<Duration>,
    ) -> Result<i64, BackendError> {
        self.scripts
            .run(script, |invocation| {
                let mut connection = self.connection.clone();
                async move {
                    script_call(invocation.command(), invocation.script(), keys, value, ttl)
                        .query_async::<i64>(&mut connection)
                        .await
                        .map_err(|error| {
                            if error.kind() == ErrorKind::Server(ServerErrorKind::NoScript) {
                                ScriptFailure::NoScript
                            } else {
                                ScriptFailure::Error(backend_error(error))
                            }
                        })
                }
            })
            .await
    }
}

impl<C> RedisBackend<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// The one-key fast path (see [`ScriptCache::one_key_outcome`]).
    async fn acquire_one(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<Option<bool>, BackendError> {
        let mut connection = self.connection.clone();
        let args = scripts::one_key_args(key, value, ttl);
        let size = args.iter().map(|arg| arg.len()).sum();
        let mut cmd = Cmd::with_capacity(args.len(), size);
        for arg in &args {
            cmd.arg(arg.as_ref());
        }
        let reply = cmd
            .query_async::<Option<Vec<u8>>>(&mut connection)
            .await
            .map_err(|error| {
                if error.code() == Some("WRONGTYPE") {
                    OneKeyFailure::WrongType
                } else if error.kind() == ErrorKind::Server(ServerErrorKind::ResponseError)
                    && error
                        .detail()
                        .is_some_and(|detail| detail.contains("syntax"))
                {
                    OneKeyFailure::Unsupported
                } else {
                    OneKeyFailure::Error(backend_error(error))
                }
            });
        self.scripts.one_key_outcome(reply, value)
    }
}

impl RedisBackend<ConnectionManager> {
    /// Connects to the master at `url` (`redis://`, `rediss://` with a TLS feature,
    /// credentials as `redis://user:password@host:port`) with a reconnecting
    /// [`ConnectionManager`], named by its address.
    ///
    /// # Errors
    ///
    /// [`ConnectError`] naming the master when the URL is invalid or the first
    /// connection (including authentication) fails.
    pub async fn from_url(url: &str) -> Result<Self, ConnectError> {
        let client = Client::open(url).map_err(|source| ConnectError {
            master: redact_url(url),
            source,
        })?;
        Self::from_client(client).await
    }

    /// Connects with a client you configured (for example one built with
    /// `Client::build_with_tls` for your own CA), like [`from_url`](Self::from_url).
    ///
    /// # Errors
    ///
    /// [`ConnectError`] naming the master when the first connection fails.
    pub async fn from_client(client: Client) -> Result<Self, ConnectError> {
        let master = client.get_connection_info().addr().to_string();
        let manager = ConnectionManager::new_with_config(client, manager_config())
            .await
            .map_err(|source| ConnectError {
                master: master.clone(),
                source,
            })?;
        Ok(Self::new(manager).with_name(master))
    }

    /// Like [`from_client`](Self::from_client) but connects on first use, so a master
    /// that is down at startup does not stop the others from being used.
    ///
    /// # Errors
    ///
    /// [`ConnectError`] when the client's configuration is rejected.
    pub fn from_client_lazy(client: Client) -> Result<Self, ConnectError> {
        let master = client.get_connection_info().addr().to_string();
        let manager = ConnectionManager::new_lazy_with_config(client, manager_config()).map_err(
            |source| ConnectError {
                master: master.clone(),
                source,
            },
        )?;
        Ok(Self::new(manager).with_name(master))
    }
}

impl From<MultiplexedConnection> for RedisBackend<MultiplexedConnection> {
    fn from(connection: MultiplexedConnection) -> Self {
        Self::new(connection)
    }
}

impl From<ConnectionManager> for RedisBackend<ConnectionManager> {
    fn from(connection: ConnectionManager) -> Self {
        Self::new(connection)
    }
}

/// Reconnect quickly and leave response timeouts to Redlock's per-request timeout.
fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_number_of_retries(2)
        .set_min_delay(Duration::from_millis(20))
        .set_max_delay(Duration::from_millis(500))
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(None)
}

/// The most digits a `u64` argument (key count, TTL in milliseconds) takes.
const MAX_INTEGER_DIGITS: usize = 20;

fn script_call(
    command: &str,
    script: &str,
    keys: &[String],
    value: &str,
    ttl: Option<Duration>,
) -> Cmd {
    // Sized up front: growing the buffers argument by argument costs several
    // reallocations per request.
    let args = 5 + keys.len();
    let size = command.len()
        + script.len()
        + keys.iter().map(String::len).sum::<usize>()
        + value.len()
        + 2 * MAX_INTEGER_DIGITS;
    let mut cmd = Cmd::with_capacity(args, size);
    cmd.arg(command)
        .arg(script)
        .arg(keys.len())
        .arg(keys)
        .arg(value);
    if let Some(ttl) = ttl {
        cmd.arg(scripts::ttl_millis(ttl));
    }
    cmd
}

fn backend_error(error: RedisError) -> BackendError {
    let kind = match error.kind() {
        ErrorKind::AuthenticationFailed | ErrorKind::Server(ServerErrorKind::NoPerm) => {
            BackendErrorKind::Auth
        }
        _ if error.is_timeout() => BackendErrorKind::Timeout,
        _ if error.is_io_error()
            || error.is_connection_dropped()
            || error.is_connection_refusal() =>
        {
            BackendErrorKind::Connection
        }
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => BackendErrorKind::Protocol,
        ErrorKind::Server(_) | ErrorKind::Extension => BackendErrorKind::Script,
        _ => BackendErrorKind::Other,
    };
    BackendError::new(kind, error)
}

#[async_trait]
impl<C> LockBackend for RedisBackend<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    async fn acquire(
        &self,
        keys: &[String],
        value: &str,
        ttl: Duration,
    ) -> Result<bool, BackendError> {
        if let [key] = keys
            && self.scripts.set_nx_get()
            && let Some(granted) = self.acquire_one(key, value, ttl).await?
        {
            return Ok(granted);
        }
        scripts::granted(self.run(scripts::ACQUIRE, keys, value, Some(ttl)).await?)
    }

    async fn extend(
        &self,
        keys: &[String],
        value: &str,
        ttl: Duration,
    ) -> Result<bool, BackendError> {
        scripts::granted(self.run(scripts::EXTEND, keys, value, Some(ttl)).await?)
    }

    async fn release(&self, keys: &[String], value: &str) -> Result<usize, BackendError> {
        scripts::released(self.run(scripts::RELEASE, keys, value, None).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_call_lays_out_keys_then_args() {
        let keys = vec!["a".to_string(), "b".to_string()];
        let cmd = script_call(
            "EVALSHA",
            "abc",
            &keys,
            "v",
            Some(Duration::from_millis(1500)),
        );
        let args: Vec<String> = cmd
            .args_iter()
            .map(|arg| match arg {
                redis::Arg::Simple(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                _ => "<other>".into(),
            })
            .collect();
        assert_eq!(args, ["EVALSHA", "abc", "2", "a", "b", "v", "1500"]);
    }

    #[test]
    fn noscript_is_recognised() {
        let error = RedisError::from((ErrorKind::Server(ServerErrorKind::NoScript), "no script"));
        assert_eq!(error.kind(), ErrorKind::Server(ServerErrorKind::NoScript));
        assert_eq!(backend_error(error).kind(), BackendErrorKind::Script);
    }

    #[tokio::test]
    async fn invalid_url_is_a_connect_error() {
        let error = RedisBackend::from_url("nope://user:pw@host")
            .await
            .unwrap_err();
        assert_eq!(error.master(), "nope://***@host");
        assert!(error.to_string().contains("nope://***@host"));
    }
}
