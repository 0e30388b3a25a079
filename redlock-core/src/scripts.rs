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
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

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
    sha1: "383f76f2ee08cd42da7515e4b7ea00dbc4db60da",
};

/// Resets every key's TTL, only if every key still holds the value.
pub const EXTEND: Script = Script {
    index: 1,
    name: "extend",
    source: include_str!("scripts/extend.lua"),
    sha1: "a9d77d6552029337c8d638a326f54679530c805e",
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
}

impl ScriptCache {
    /// A cache that knows of no script yet.
    pub fn new() -> Self {
        Self::default()
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
    fn ttl_rounds_up_to_whole_millis() {
        assert_eq!(ttl_millis(Duration::from_millis(250)), 250);
        assert_eq!(ttl_millis(Duration::from_micros(250_001)), 251);
        assert_eq!(ttl_millis(Duration::from_nanos(1)), 1);
        assert_eq!(ttl_millis(Duration::from_secs(3600)), 3_600_000);
        assert_eq!(ttl_millis(Duration::MAX), u64::MAX);
    }
}
