//! [`Settings`]: timing and retry policy.

use std::time::Duration;

use crate::error::InvalidInput;

/// The longest TTL a lock may ask for, and the longest duration setting (one year).
pub const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// Timing and retry policy of a [`Redlock`](crate::Redlock).
///
/// Defaults match node-redlock v5. Set them through
/// [`RedlockBuilder`](crate::RedlockBuilder), or change a copy from
/// [`Redlock::settings`](crate::Redlock::settings) for one call of
/// [`Redlock::with_settings`](crate::Redlock::with_settings).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Settings {
    /// Fraction of the TTL allowed for clock drift between hosts (default 0.01); the
    /// drift allowance is `ttl * drift_factor + 2 ms`.
    pub drift_factor: f64,
    /// How many times a failed attempt is retried (default 10, so at most 11 attempts).
    pub retry_count: u32,
    /// The pause between attempts (default 200 ms).
    pub retry_delay: Duration,
    /// Uniform random jitter added to or subtracted from each pause (default 100 ms).
    pub retry_jitter: Duration,
    /// How long before expiration `using` extends the lock (default 500 ms).
    pub automatic_extension_threshold: Duration,
    /// Per-request timeout; `None` derives it from the TTL (see
    /// [`Settings::request_timeout_for`]).
    pub request_timeout: Option<Duration>,
    /// Deadline for a whole `acquire`, retries included (see
    /// [`RedlockBuilder::acquire_timeout`](crate::RedlockBuilder::acquire_timeout));
    /// `None` bounds it by `retry_count` only.
    pub acquire_timeout: Option<Duration>,
    /// `using` makes no extension that would hold the lock past this long after the
    /// acquisition, and signals the routine by then at the latest (see
    /// [`RedlockBuilder::max_hold`](crate::RedlockBuilder::max_hold)); `None` for no
    /// cap.
    pub max_hold: Option<Duration>,
    /// `using` performs at most this many extensions; `None` for no cap.
    pub max_extensions: Option<u32>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            drift_factor: 0.01,
            retry_count: 10,
            retry_delay: Duration::from_millis(200),
            retry_jitter: Duration::from_millis(100),
            automatic_extension_threshold: Duration::from_millis(500),
            request_timeout: None,
            acquire_timeout: None,
            max_hold: None,
            max_extensions: None,
        }
    }
}

impl Settings {
    /// The upper bound of the derived per-request timeout.
    pub const MAX_DERIVED_REQUEST_TIMEOUT: Duration = Duration::from_millis(500);

    /// Checks every setting.
    ///
    /// # Errors
    ///
    /// [`InvalidInput`] naming the first setting that cannot work.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        if !self.drift_factor.is_finite() || !(0.0..1.0).contains(&self.drift_factor) {
            return Err(InvalidInput::DriftFactor(self.drift_factor));
        }
        let positive = [
            (
                "automatic_extension_threshold",
                Some(self.automatic_extension_threshold),
            ),
            ("request_timeout", self.request_timeout),
            ("acquire_timeout", self.acquire_timeout),
            ("max_hold", self.max_hold),
        ];
        for (name, value) in positive {
            if value == Some(Duration::ZERO) {
                return Err(InvalidInput::ZeroDuration(name));
            }
        }
        let bounded = positive.into_iter().chain([
            ("retry_delay", Some(self.retry_delay)),
            ("retry_jitter", Some(self.retry_jitter)),
        ]);
        for (name, value) in bounded {
            if value.is_some_and(|value| value > MAX_TTL) {
                return Err(InvalidInput::DurationTooLong(name));
            }
        }
        Ok(())
    }

    /// The clock-drift allowance for a TTL: `ttl * drift_factor + 2 ms`.
    pub fn drift(&self, ttl: Duration) -> Duration {
        ttl.mul_f64(self.drift_factor) + Duration::from_millis(2)
    }

    /// The per-request timeout for a TTL: the configured one, or a tenth of the TTL
    /// capped at [`MAX_DERIVED_REQUEST_TIMEOUT`](Self::MAX_DERIVED_REQUEST_TIMEOUT).
    pub fn request_timeout_for(&self, ttl: Duration) -> Duration {
        self.request_timeout
            .unwrap_or_else(|| (ttl / 10).min(Self::MAX_DERIVED_REQUEST_TIMEOUT))
            .max(Duration::from_millis(1))
    }

    /// Checks a TTL against these settings.
    pub(crate) fn validate_ttl(&self, ttl: Duration) -> Result<(), InvalidInput> {
        if ttl < Duration::from_millis(1) {
            return Err(InvalidInput::TtlTooShort(ttl));
        }
        if ttl > MAX_TTL {
            return Err(InvalidInput::TtlTooLong(ttl));
        }
        let drift = self.drift(ttl);
        if ttl <= drift {
            return Err(InvalidInput::TtlWithinDrift { ttl, drift });
        }
        Ok(())
    }

    /// A pause of `retry_delay` plus or minus a uniform random jitter, never negative.
    pub(crate) fn retry_pause(&self) -> Duration {
        use rand::Rng;
        if self.retry_jitter.is_zero() {
            return self.retry_delay;
        }
        let jitter = self.retry_jitter.as_nanos().min(u128::from(u64::MAX)) as u64;
        let offset = rand::rng().random_range(0..=jitter.saturating_mul(2));
        let delay = self.retry_delay.as_nanos().min(u128::from(u64::MAX)) as u64;
        Duration::from_nanos(delay.saturating_add(offset).saturating_sub(jitter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_node_redlock() {
        let s = Settings::default();
        assert_eq!(s.drift_factor, 0.01);
        assert_eq!(s.retry_count, 10);
        assert_eq!(s.retry_delay, Duration::from_millis(200));
        assert_eq!(s.retry_jitter, Duration::from_millis(100));
        assert_eq!(s.automatic_extension_threshold, Duration::from_millis(500));
        assert!(s.validate().is_ok());
    }

    #[test]
    fn drift_is_factor_plus_two_millis() {
        let s = Settings::default();
        assert_eq!(s.drift(Duration::from_secs(10)), Duration::from_millis(102));
        assert_eq!(
            s.drift(Duration::from_millis(100)),
            Duration::from_millis(3)
        );
    }

    #[test]
    fn derived_request_timeout_is_small_next_to_ttl() {
        let s = Settings::default();
        assert_eq!(
            s.request_timeout_for(Duration::from_secs(1)),
            Duration::from_millis(100)
        );
        assert_eq!(
            s.request_timeout_for(Duration::from_secs(30)),
            Settings::MAX_DERIVED_REQUEST_TIMEOUT
        );
        let fixed = Settings {
            request_timeout: Some(Duration::from_millis(7)),
            ..Settings::default()
        };
        assert_eq!(
            fixed.request_timeout_for(Duration::from_secs(30)),
            Duration::from_millis(7)
        );
    }

    #[test]
    fn bad_settings_are_typed_errors() {
        for factor in [-0.1, 1.0, f64::NAN, f64::INFINITY] {
            let s = Settings {
                drift_factor: factor,
                ..Settings::default()
            };
            assert!(matches!(s.validate(), Err(InvalidInput::DriftFactor(_))));
        }
        let s = Settings {
            request_timeout: Some(Duration::ZERO),
            ..Settings::default()
        };
        assert_eq!(
            s.validate(),
            Err(InvalidInput::ZeroDuration("request_timeout"))
        );
        for (name, settings) in [
            (
                "request_timeout",
                Settings {
                    request_timeout: Some(Duration::MAX),
                    ..Settings::default()
                },
            ),
            (
                "max_hold",
                Settings {
                    max_hold: Some(Duration::MAX),
                    ..Settings::default()
                },
            ),
            (
                "retry_delay",
                Settings {
                    retry_delay: Duration::MAX,
                    ..Settings::default()
                },
            ),
        ] {
            assert_eq!(
                settings.validate(),
                Err(InvalidInput::DurationTooLong(name))
            );
        }
    }

    #[test]
    fn ttl_bounds() {
        let s = Settings::default();
        assert!(matches!(
            s.validate_ttl(Duration::ZERO),
            Err(InvalidInput::TtlTooShort(_))
        ));
        assert!(matches!(
            s.validate_ttl(Duration::from_millis(2)),
            Err(InvalidInput::TtlWithinDrift { .. })
        ));
        assert!(matches!(
            s.validate_ttl(MAX_TTL + Duration::from_secs(1)),
            Err(InvalidInput::TtlTooLong(_))
        ));
        assert!(s.validate_ttl(Duration::from_millis(10)).is_ok());
    }

    #[test]
    fn retry_pause_stays_within_jitter_bounds() {
        let s = Settings {
            retry_delay: Duration::from_millis(50),
            retry_jitter: Duration::from_millis(20),
            ..Settings::default()
        };
        let pauses: Vec<Duration> = (0..2000).map(|_| s.retry_pause()).collect();
        let min = *pauses.iter().min().unwrap();
        let max = *pauses.iter().max().unwrap();
        assert!(min >= Duration::from_millis(30), "min {min:?}");
        assert!(max <= Duration::from_millis(70), "max {max:?}");
        // Uniform over 40 ms: 2000 samples reach both outer fifths.
        assert!(min < Duration::from_millis(38), "min {min:?}");
        assert!(max > Duration::from_millis(62), "max {max:?}");
    }

    #[test]
    fn retry_pause_never_negative() {
        let s = Settings {
            retry_delay: Duration::from_millis(5),
            retry_jitter: Duration::from_millis(50),
            ..Settings::default()
        };
        for _ in 0..1000 {
            assert!(s.retry_pause() <= Duration::from_millis(55));
        }
    }
}
