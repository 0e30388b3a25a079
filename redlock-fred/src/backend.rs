//! [`FredBackend`]: a [`LockBackend`] over a fred client or pool.

use std::{
    fmt,
    hash::{DefaultHasher, Hash, Hasher},
    sync::Arc,
    time::Duration,
};

use fred::{
    clients::{Client, Pool},
    error::{Error as FredError, ErrorKind},
    interfaces::{ClientLike, KeysInterface, LuaInterface},
    types::{
        Expiration, SetOptions, Value,
        config::{Config, ReconnectPolicy, ServerConfig},
    },
};
use redlock_core::{
    BackendError, BackendErrorKind, LockBackend, async_trait,
    scripts::{self, Invocation, OneKeyFailure, Script, ScriptCache, ScriptFailure, redact_url},
};

/// One Redis master reached through a fred [`Client`] or [`Pool`].
///
/// Build it from your own client ([`FredBackend::new`]) or pool
/// ([`FredBackend::from_pool`]), or let it connect with [`FredBackend::from_url`],
/// which sets a reconnect policy so a restarted master votes again without any action
/// on your side.
///
/// A pool spreads commands over several connections; to keep the order of one lock's
/// requests (see [`LockBackend`]'s ordering contract), every request for a key set goes
/// through the same pooled client, chosen by the first key.
///
/// Scripts are sent as `EVALSHA` with the digests from [`redlock_core::scripts`],
/// falling back to `EVAL` when the server answers `NOSCRIPT`.
#[derive(Clone)]
pub struct FredBackend {
    clients: Clients,
    name: Arc<str>,
    scripts: Arc<ScriptCache>,
}

#[derive(Clone)]
enum Clients {
    One(Client),
    Pool(Pool),
}

impl fmt::Debug for FredBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FredBackend")
            .field("name", &self.name)
            .field(
                "pool",
                &match &self.clients {
                    Clients::One(_) => 1,
                    Clients::Pool(pool) => pool.size(),
                },
            )
            .finish()
    }
}

/// Connecting to a master failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to redis master {master}")]
pub struct ConnectError {
    master: String,
    #[source]
    source: FredError,
}

impl ConnectError {
    /// The master's address (or the URL it could not parse, without credentials).
    pub fn master(&self) -> &str {
        &self.master
    }

    /// The fred error.
    pub fn fred_error(&self) -> &FredError {
        &self.source
    }
}

impl FredBackend {
    /// A backend over your own client, named by the server in its config.
    ///
    /// The client should be connected (`init`) or connecting; requests made while it
    /// is not connected wait in fred's queue until Redlock's request timeout. Set the
    /// client's `max_command_attempts` to 1 (as [`from_url`](Self::from_url) does):
    /// Redlock retries whole attempts itself, and a command fred re-sends after a
    /// reconnect could arrive after Redlock's cleanup.
    pub fn new(client: Client) -> Self {
        let name = server_name(client.client_config().server);
        Self {
            clients: Clients::One(client),
            name: name.into(),
            scripts: Arc::new(ScriptCache::new()),
        }
    }

    /// A backend over your own pool; each key set always uses the same pooled client.
    pub fn from_pool(pool: Pool) -> Self {
        let name = server_name(pool.next().client_config().server);
        Self {
            clients: Clients::Pool(pool),
            name: name.into(),
            scripts: Arc::new(ScriptCache::new()),
        }
    }

    /// Connects to the master at `url` (`redis://`, `rediss://` with the `tls`
    /// feature, credentials as `redis://user:password@host:port`) with a reconnect
    /// policy, named by its address.
    ///
    /// # Errors
    ///
    /// [`ConnectError`] naming the master when the URL is invalid or the first
    /// connection (including authentication) fails.
    pub async fn from_url(url: &str) -> Result<Self, ConnectError> {
        let config = Config::from_url(url).map_err(|source| ConnectError {
            master: redact_url(url),
            source,
        })?;
        Self::from_config(config).await
    }

    /// Connects with a config you prepared (for example with your own TLS
    /// connector), like [`from_url`](Self::from_url).
    ///
    /// # Errors
    ///
    /// [`ConnectError`] naming the master when the first connection fails.
    pub async fn from_config(config: Config) -> Result<Self, ConnectError> {
        let master = server_name(config.server.clone());
        let client = fred::types::Builder::from_config(config)
            .with_config(|config| config.fail_fast = true)
            .with_connection_config(|connection| {
                connection.connection_timeout = Duration::from_secs(2);
                connection.internal_command_timeout = Duration::from_secs(2);
                // Redlock retries whole attempts itself; a command fred re-sent after a
                // reconnect could arrive after our cleanup.
                connection.max_command_attempts = 1;
            })
            .set_policy(ReconnectPolicy::new_exponential(0, 20, 500, 2))
            .build()
            .map_err(|source| ConnectError {
                master: master.clone(),
                source,
            })?;
        if let Err(source) = client.init().await {
            // Stop its reconnect loop before reporting.
            let _ = client.quit().await;
            return Err(ConnectError { master, source });
        }
        Ok(Self::new(client).with_name(master))
    }

    /// Names the backend in reports and errors (an address is a good name).
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Arc::from(name.into());
        self
    }

    /// The client for a key set: the only one, or a pooled one chosen by the first key.
    fn client(&self, first_key: Option<&str>) -> &Client {
        match &self.clients {
            Clients::One(client) => client,
            Clients::Pool(pool) => {
                let clients = pool.clients();
                let mut hasher = DefaultHasher::new();
                first_key.hash(&mut hasher);
                let index = usize::try_from(hasher.finish() % clients.len() as u64).unwrap_or(0);
                &clients[index]
            }
        }
    }

    /// Runs `script` by digest, falling back to its source on `NOSCRIPT`.
    async fn run(
        &self,
        script: Script,
        keys: &[String],
        value: &str,
        ttl: Option<Duration>,
    ) -> Result<i64, BackendError> {
        let client = self.client(keys.first().map(String::as_str));
        let millis = ttl.map(|ttl| i64::try_from(scripts::ttl_millis(ttl)).unwrap_or(i64::MAX));
        self.scripts
            .run(script, |invocation| {
                // Built per invocation (fred takes them by value): no copy kept around
                // for the rare NOSCRIPT retry.
                let mut args = Vec::with_capacity(2);
                args.push(Value::from(value));
                args.extend(millis.map(Value::from));
                let keys = keys.to_vec();
                async move {
                    let reply = match invocation {
                        Invocation::EvalSha(script) => {
                            client
                                .evalsha::<i64, _, _, _>(script.sha1(), keys, args)
                                .await
                        }
                        Invocation::Eval(script) => {
                            client
                                .eval::<i64, _, _, _>(script.source(), keys, args)
                                .await
                        }
                    };
                    reply.map_err(|error| {
                        if error.details().starts_with("NOSCRIPT") {
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

impl FredBackend {
    /// The one-key fast path: `SET key value NX GET PX ttl` (see
    /// [`ScriptCache::one_key_outcome`]).
    async fn acquire_one(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<Option<bool>, BackendError> {
        let millis = i64::try_from(scripts::ttl_millis(ttl)).unwrap_or(i64::MAX);
        let reply = self
            .client(Some(key))
            .set::<Value, _, _>(
                key,
                value,
                Some(Expiration::PX(millis)),
                Some(SetOptions::NX),
                true,
            )
            .await;
        let current = match reply {
            Ok(current) => current,
            Err(error) => {
                let details = error.details();
                let failure = if details.starts_with("WRONGTYPE") {
                    OneKeyFailure::WrongType
                } else if details.starts_with("ERR") && details.contains("syntax") {
                    OneKeyFailure::Unsupported
                } else {
                    OneKeyFailure::Error(backend_error(error))
                };
                return self
                    .scripts
                    .one_key_outcome(Err::<Option<&[u8]>, _>(failure), value);
            }
        };
        let current = match &current {
            Value::Null => None,
            other => Some(other.as_bytes().ok_or_else(|| {
                BackendError::msg(
                    BackendErrorKind::Protocol,
                    format!("unexpected reply to SET .. NX GET: {other:?}"),
                )
            })?),
        };
        self.scripts.one_key_outcome(Ok(current), value)
    }
}

impl From<Client> for FredBackend {
    fn from(client: Client) -> Self {
        Self::new(client)
    }
}

impl From<Pool> for FredBackend {
    fn from(pool: Pool) -> Self {
        Self::from_pool(pool)
    }
}

fn server_name(server: ServerConfig) -> String {
    match server {
        ServerConfig::Centralized { server } => format!("{}:{}", server.host, server.port),
        other => format!("{:?}", other.hosts()),
    }
}

fn backend_error(error: FredError) -> BackendError {
    let kind = match error.kind() {
        ErrorKind::Auth => BackendErrorKind::Auth,
        ErrorKind::IO | ErrorKind::Canceled => BackendErrorKind::Connection,
        ErrorKind::Timeout => BackendErrorKind::Timeout,
        ErrorKind::Protocol | ErrorKind::Parse => BackendErrorKind::Protocol,
        _ if error.details().starts_with("ERR") => BackendErrorKind::Script,
        _ => BackendErrorKind::Other,
    };
    BackendError::new(kind, error)
}

#[async_trait]
impl LockBackend for FredBackend {
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
    fn noscript_is_recognised_by_details() {
        let error = FredError::new(ErrorKind::Unknown, "NOSCRIPT No matching script.");
        assert!(error.details().starts_with("NOSCRIPT"));
        assert_eq!(backend_error(error).kind(), BackendErrorKind::Other);
    }
}
