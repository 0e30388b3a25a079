//! The Lua scripts every Redis adapter runs, with their SHA1 digests.
//!
//! All three scripts take the lock's keys as `KEYS`, the lock value as `ARGV[1]` and,
//! for acquire and extend, the time-to-live in whole milliseconds as `ARGV[2]`
//! (see [`ttl_millis`]). Each runs atomically on one master, so one call covers every
//! resource of a lock.
//!
//! | script | reply |
//! |---|---|
//! | [`ACQUIRE`] | `1` when every key was free or already held our value (all keys set), `0` otherwise (nothing changed) |
//! | [`EXTEND`] | `1` when every key held our value (all TTLs reset), `0` otherwise (nothing changed) |
//! | [`RELEASE`] | the number of keys that held our value and were deleted |
//!
//! Adapters send `EVALSHA` with [`Script::sha1`] and fall back to `EVAL` with
//! [`Script::source`] when the server answers `NOSCRIPT`; [`ScriptCache`] keeps track
//! of which scripts a server has, so the common case is one round trip.

use std::{
    future::Future,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use crate::backend::{BackendError, BackendErrorKind};

/// A Lua script and the hex SHA1 digest Redis knows it by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Script {
    index: usize,
    name: &'static str,
    source: &'static str,
    sha1: &'static str,
}

impl Script {
    /// A short name for reports: `acquire`, `extend` or `release`.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The Lua source, for `EVAL` and `SCRIPT LOAD`.
    pub const fn source(&self) -> &'static str {
        self.source
    }

    /// The lowercase hex SHA1 of [`source`](Self::source), for `EVALSHA`.
    pub const fn sha1(&self) -> &'static str {
        self.sha1
    }
}

/// Sets every key to the value with a TTL, only if each key is free or already ours.
pub const ACQUIRE: Script = Script {
    index: 0,
    name: "acquire",
    source: include_str!("scripts/acquire.lua"),
    sha1: "1f6102f6b2ea76f7fc2dcb83aea5f1bb0f5a2f6a",
};

/// Resets every key's TTL, only if every key still holds the value.
pub const EXTEND: Script = Script {
    index: 1,
    name: "extend",
    source: include_str!("scripts/extend.lua"),
    sha1: "f2b89d2ec9e2e7434b6672d192e1d227151c6864",
};

/// Deletes the keys that hold the value and returns how many.
pub const RELEASE: Script = Script {
    index: 2,
    name: "release",
    source: include_str!("scripts/release.lua"),
    sha1: "32affbcf86896bc8bf0fc9fcf99cbe252ca7c19f",
};

/// Which scripts one server is known to have cached, for adapters.
///
/// Until a script is known to be cached, send it with `EVAL` (one round trip, and it
/// caches the script); once an `EVAL` succeeded, send `EVALSHA`. When a server answers
/// `NOSCRIPT` (it restarted or ran `SCRIPT FLUSH`), call
/// [`forget_all`](Self::forget_all) and retry that call with `EVAL`.
///
/// Sending each request in one step matters: Redlock may stop polling a request once
/// the quorum is decided, and a second step (the `EVAL` after a `NOSCRIPT`) would then
/// never be sent.
#[derive(Debug, Default)]
pub struct ScriptCache {
    loaded: [AtomicBool; 3],
    no_set_nx_get: AtomicBool,
}

impl ScriptCache {
    /// A cache that knows of no script yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the one-key fast path ([`one_key_args`]) may be tried: until the server
    /// rejected `SET .. NX GET` (servers before Redis 7.0 do).
    pub fn set_nx_get(&self) -> bool {
        !self.no_set_nx_get.load(Ordering::Relaxed)
    }

    /// Records that the server rejects `SET .. NX GET`.
    pub fn disable_set_nx_get(&self) {
        self.no_set_nx_get.store(true, Ordering::Relaxed);
    }

    /// Whether `script` is known to be cached on the server.
    pub fn is_loaded(&self, script: Script) -> bool {
        self.loaded[script.index].load(Ordering::Relaxed)
    }

    /// Records that `script` ran on the server (so it is cached there).
    pub fn mark_loaded(&self, script: Script) {
        self.loaded[script.index].store(true, Ordering::Relaxed);
    }

    /// Records that the server lost its script cache.
    pub fn forget_all(&self) {
        for loaded in &self.loaded {
            loaded.store(false, Ordering::Relaxed);
        }
    }

    /// Interprets the answer to [`one_key_args`]: `Some(true)` when the key was free and
    /// is now ours, `Some(false)` when it is held elsewhere (another value, or a key of
    /// another type), `None` when [`ACQUIRE`] must run instead: the key already holds
    /// our value (the script refreshes its TTL), or the server rejects the command, which
    /// turns the fast path off for good ([`set_nx_get`](Self::set_nx_get)).
    ///
    /// # Errors
    ///
    /// The [`BackendError`] of [`OneKeyFailure::Error`].
    pub fn one_key_outcome<B: AsRef<[u8]>>(
        &self,
        reply: Result<Option<B>, OneKeyFailure>,
        value: &str,
    ) -> Result<Option<bool>, BackendError> {
        match reply {
            Ok(current) => Ok(one_key_reply(current.as_ref().map(AsRef::as_ref), value)),
            Err(OneKeyFailure::WrongType) => Ok(Some(false)),
            Err(OneKeyFailure::Unsupported) => {
                self.disable_set_nx_get();
                Ok(None)
            }
            Err(OneKeyFailure::Error(error)) => Err(error),
        }
    }

    /// Runs `script` with `send`: `EVALSHA` once the script is known to be cached,
    /// `EVAL` otherwise and after a `NOSCRIPT`, keeping this cache up to date.
    ///
    /// `send` sends one invocation and reports `NOSCRIPT` as
    /// [`ScriptFailure::NoScript`].
    ///
    /// # Errors
    ///
    /// The [`BackendError`] `send` reported.
    pub async fn run<F, Fut>(&self, script: Script, mut send: F) -> Result<i64, BackendError>
    where
        F: FnMut(Invocation) -> Fut,
        Fut: Future<Output = Result<i64, ScriptFailure>>,
    {
        if self.is_loaded(script) {
            match send(Invocation::EvalSha(script)).await {
                Err(ScriptFailure::NoScript) => self.forget_all(),
                Err(ScriptFailure::Error(error)) => return Err(error),
                Ok(reply) => return Ok(reply),
            }
        }
        match send(Invocation::Eval(script)).await {
            Ok(reply) => {
                self.mark_loaded(script);
                Ok(reply)
            }
            Err(ScriptFailure::Error(error)) => Err(error),
            Err(ScriptFailure::NoScript) => Err(BackendError::msg(
                BackendErrorKind::Protocol,
                "EVAL answered NOSCRIPT",
            )),
        }
    }
}

/// Why a one-key `SET .. NX GET` ([`one_key_args`]) was not answered with a value.
#[derive(Debug)]
pub enum OneKeyFailure {
    /// `WRONGTYPE`: the key holds another type, so someone else holds it.
    WrongType,
    /// The server rejects the command (a syntax error: servers before Redis 7.0).
    Unsupported,
    /// Any other failure.
    Error(BackendError),
}

/// One way to invoke a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invocation {
    /// `EVALSHA <sha1>`.
    EvalSha(Script),
    /// `EVAL <source>`.
    Eval(Script),
}

impl Invocation {
    /// The command: `EVALSHA` or `EVAL`.
    pub fn command(self) -> &'static str {
        match self {
            Self::EvalSha(_) => "EVALSHA",
            Self::Eval(_) => "EVAL",
        }
    }

    /// The command's first argument: the digest or the source.
    pub fn script(self) -> &'static str {
        match self {
            Self::EvalSha(script) => script.sha1(),
            Self::Eval(script) => script.source(),
        }
    }
}

/// Why sending an [`Invocation`] failed.
#[derive(Debug)]
pub enum ScriptFailure {
    /// The server does not have the script cached (`NOSCRIPT`).
    NoScript,
    /// Any other failure.
    Error(BackendError),
}

/// The answer of [`ACQUIRE`] or [`EXTEND`]: `1` granted, `0` refused.
///
/// # Errors
///
/// A [`BackendErrorKind::Protocol`] error for any other reply.
pub fn granted(reply: i64) -> Result<bool, BackendError> {
    match reply {
        1 => Ok(true),
        0 => Ok(false),
        other => Err(BackendError::msg(
            BackendErrorKind::Protocol,
            format!("script answered {other}, expected 0 or 1"),
        )),
    }
}

/// The answer of [`RELEASE`]: how many keys were deleted.
///
/// # Errors
///
/// A [`BackendErrorKind::Protocol`] error for a negative reply.
pub fn released(reply: i64) -> Result<usize, BackendError> {
    usize::try_from(reply).map_err(|_| {
        BackendError::msg(
            BackendErrorKind::Protocol,
            format!("release answered {reply}"),
        )
    })
}

/// The one-key acquire as one plain command: `SET key value NX GET PX ttl`.
///
/// It does what [`ACQUIRE`] does for one key without running Lua (cheaper on the
/// server): it sets a free key, and answers what a taken key holds. Interpret the reply
/// with [`ScriptCache::one_key_outcome`]. Servers before Redis 7.0 reject `NX` with
/// `GET` ([`OneKeyFailure::Unsupported`]); the script is used from then on. A key of
/// another type answers `WRONGTYPE` and changes nothing: held by someone else.
pub fn one_key_args<'a>(
    key: &'a str,
    value: &'a str,
    ttl: Duration,
) -> [std::borrow::Cow<'a, str>; 7] {
    use std::borrow::Cow;
    [
        Cow::Borrowed("SET"),
        Cow::Borrowed(key),
        Cow::Borrowed(value),
        Cow::Borrowed("NX"),
        Cow::Borrowed("GET"),
        Cow::Borrowed("PX"),
        Cow::Owned(ttl_millis(ttl).to_string()),
    ]
}

/// A value answered to [`one_key_args`]: `Some(true)` when the key was free and is now
/// ours, `Some(false)` when another value holds it, `None` when it already holds our
/// value (run [`ACQUIRE`] to refresh its TTL).
fn one_key_reply(current: Option<&[u8]>, value: &str) -> Option<bool> {
    match current {
        None => Some(true),
        Some(current) if current == value.as_bytes() => None,
        Some(_) => Some(false),
    }
}

/// `url` with any password replaced by `***`, for adapters' error messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// The TTL argument the scripts expect: whole milliseconds, rounded up, at least 1.
///
/// Rounding up never shortens a lock on the server; core already validated that the
/// TTL is at least one millisecond.
pub fn ttl_millis(ttl: Duration) -> u64 {
    let millis = ttl.as_millis();
    let millis = if !ttl.subsec_nanos().is_multiple_of(1_000_000) {
        millis + 1
    } else {
        millis
    };
    u64::try_from(millis.max(1)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha1::{Digest, Sha1};

    fn hex_sha1(text: &str) -> String {
        Sha1::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn digests_match_script_text() {
        for script in [ACQUIRE, EXTEND, RELEASE] {
            assert_eq!(
                script.sha1(),
                hex_sha1(script.source()),
                "digest of the {} script",
                script.name()
            );
        }
    }

    #[test]
    fn scripts_are_distinct() {
        assert_ne!(ACQUIRE.sha1(), EXTEND.sha1());
        assert_ne!(EXTEND.sha1(), RELEASE.sha1());
        assert_ne!(ACQUIRE.sha1(), RELEASE.sha1());
    }

    #[test]
    fn script_cache_tracks_each_script() {
        let cache = ScriptCache::new();
        assert!(!cache.is_loaded(ACQUIRE));
        cache.mark_loaded(ACQUIRE);
        cache.mark_loaded(RELEASE);
        assert!(cache.is_loaded(ACQUIRE) && cache.is_loaded(RELEASE));
        assert!(!cache.is_loaded(EXTEND));
        cache.forget_all();
        assert!(!cache.is_loaded(ACQUIRE) && !cache.is_loaded(RELEASE));
    }

    #[test]
    fn one_key_fast_path_lays_out_and_reads_replies() {
        let args = one_key_args("k", "v", Duration::from_millis(1500));
        assert_eq!(
            args.map(|a| a.into_owned()),
            ["SET", "k", "v", "NX", "GET", "PX", "1500"]
        );
        assert_eq!(one_key_reply(None, "v"), Some(true));
        assert_eq!(one_key_reply(Some(b"other"), "v"), Some(false));
        assert_eq!(one_key_reply(Some(b"v"), "v"), None);
        let cache = ScriptCache::new();
        assert!(cache.set_nx_get());
        let wrong_type =
            cache.one_key_outcome(Err::<Option<&[u8]>, _>(OneKeyFailure::WrongType), "v");
        assert_eq!(wrong_type.unwrap(), Some(false));
        assert!(cache.set_nx_get());
        let failed = Err::<Option<&[u8]>, _>(OneKeyFailure::Error(BackendError::from_kind(
            BackendErrorKind::Timeout,
        )));
        assert!(cache.one_key_outcome(failed, "v").is_err());
        assert!(cache.set_nx_get());
        assert_eq!(
            cache.one_key_outcome(Ok(Some(b"v".to_vec())), "v").unwrap(),
            None
        );
        assert!(cache.set_nx_get());
        let unsupported =
            cache.one_key_outcome(Err::<Option<&[u8]>, _>(OneKeyFailure::Unsupported), "v");
        assert_eq!(unsupported.unwrap(), None);
        assert!(!cache.set_nx_get());
    }

    #[test]
    fn replies_are_checked() {
        assert!(granted(1).unwrap());
        assert!(!granted(0).unwrap());
        assert!(granted(2).is_err());
        assert_eq!(released(3).unwrap(), 3);
        assert!(released(-1).is_err());
    }

    #[test]
    fn redact_hides_credentials() {
        assert_eq!(
            redact_url("redis://user:secret@127.0.0.1:6379/0"),
            "redis://***@127.0.0.1:6379/0"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn the_cache_sends_eval_first_then_evalsha_and_recovers_from_noscript() {
        let cache = ScriptCache::new();
        let sent = std::sync::Mutex::new(Vec::new());
        let server_has_script = AtomicBool::new(false);
        let send = |invocation: Invocation| {
            sent.lock().unwrap().push(invocation.command());
            let result = match invocation {
                Invocation::EvalSha(_) if !server_has_script.load(Ordering::Relaxed) => {
                    Err(ScriptFailure::NoScript)
                }
                _ => {
                    server_has_script.store(true, Ordering::Relaxed);
                    Ok(1)
                }
            };
            std::future::ready(result)
        };
        let run =
            |cache: &ScriptCache| futures_util::FutureExt::now_or_never(cache.run(ACQUIRE, send));
        assert_eq!(run(&cache).unwrap().unwrap(), 1);
        assert_eq!(run(&cache).unwrap().unwrap(), 1);
        server_has_script.store(false, Ordering::Relaxed); // SCRIPT FLUSH
        assert_eq!(run(&cache).unwrap().unwrap(), 1);
        assert_eq!(
            *sent.lock().unwrap(),
            ["EVAL", "EVALSHA", "EVALSHA", "EVAL"]
        );
    }

    #[test]
    fn ttl_rounds_up_to_whole_millis() {
        assert_eq!(ttl_millis(Duration::from_millis(250)), 250);
        assert_eq!(ttl_millis(Duration::from_micros(250_001)), 251);
        assert_eq!(ttl_millis(Duration::from_nanos(1)), 1);
        assert_eq!(ttl_millis(Duration::from_secs(3600)), 3_600_000);
        assert_eq!(ttl_millis(Duration::MAX), u64::MAX);
    }
}
