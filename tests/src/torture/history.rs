//! One line per client cycle: acquire, critical section, release.

use std::{fmt, str::FromStr};

/// Why an acquisition failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cause {
    /// Held by another client.
    Contended,
    /// Not enough masters answered.
    Unavailable,
    /// The quorum came too late.
    ValidityExhausted,
    /// Anything else.
    Other,
}

impl Cause {
    /// The cause of a lock error.
    pub fn of(error: &redlock_core::LockError) -> Self {
        match error {
            redlock_core::LockError::Contended { .. } => Self::Contended,
            redlock_core::LockError::Unavailable { .. } => Self::Unavailable,
            redlock_core::LockError::ValidityExhausted { .. } => Self::ValidityExhausted,
            _ => Self::Other,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Contended => "contended",
            Self::Unavailable => "unavailable",
            Self::ValidityExhausted => "validity-exhausted",
            Self::Other => "other",
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Cause {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        [
            Self::Contended,
            Self::Unavailable,
            Self::ValidityExhausted,
            Self::Other,
        ]
        .into_iter()
        .find(|cause| cause.name() == text)
        .ok_or_else(|| format!("unknown cause {text:?}"))
    }
}

/// What happened in the critical section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// The protected value was read and `value` written, finishing at `done`.
    Done {
        /// The value written (the value read plus one).
        value: u64,
        /// When the write completed.
        done: u64,
    },
    /// The lock had too little validity left: nothing was written.
    Abandoned,
}

/// How a cycle ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The acquisition failed.
    Failed {
        /// When `acquire` returned.
        completed: u64,
        /// Why.
        cause: Cause,
    },
    /// The lock was held.
    Held {
        /// When `acquire` returned (the client starts to rely on the lock here).
        acquired: u64,
        /// The lock's last expiration (after any extension).
        expiration: u64,
        /// The critical section.
        write: Write,
        /// When the client invoked the release (it stops relying on the lock here).
        release_at: u64,
        /// Whether the release was confirmed by a quorum.
        released: bool,
    },
}

/// One client cycle, times in `now_ns` nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cycle {
    /// Which client.
    pub client: u32,
    /// Which resource.
    pub resource: u32,
    /// When `acquire` was invoked.
    pub invoke: u64,
    /// How it ended.
    pub outcome: Outcome,
}

impl Cycle {
    /// The interval in which the client relied on the lock: from `acquire` returning to
    /// the release or the expiration, whichever came first.
    pub fn window(&self) -> Option<(u64, u64)> {
        match self.outcome {
            Outcome::Held {
                acquired,
                expiration,
                release_at,
                ..
            } => Some((acquired, release_at.min(expiration))),
            Outcome::Failed { .. } => None,
        }
    }
}

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.outcome {
            Outcome::Failed { completed, cause } => write!(
                f,
                "F {} {} {} {completed} {cause}",
                self.client, self.resource, self.invoke
            ),
            Outcome::Held {
                acquired,
                expiration,
                write,
                release_at,
                released,
            } => {
                let (value, done) = match write {
                    Write::Done { value, done } => (value, done),
                    Write::Abandoned => (0, 0),
                };
                write!(
                    f,
                    "H {} {} {} {acquired} {expiration} {value} {done} {release_at} {}",
                    self.client,
                    self.resource,
                    self.invoke,
                    u8::from(released)
                )
            }
        }
    }
}

impl FromStr for Cycle {
    type Err = String;

    fn from_str(line: &str) -> Result<Self, String> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let number = |i: usize| -> Result<u64, String> {
            fields
                .get(i)
                .ok_or_else(|| format!("missing field {i} in {line:?}"))?
                .parse::<u64>()
                .map_err(|error| format!("field {i} of {line:?}: {error}"))
        };
        let small = |i: usize| number(i).map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        let outcome = match fields.first() {
            Some(&"F") => Outcome::Failed {
                completed: number(4)?,
                cause: fields.get(5).ok_or("missing cause")?.parse()?,
            },
            Some(&"H") => {
                let (value, done) = (number(6)?, number(7)?);
                Outcome::Held {
                    acquired: number(4)?,
                    expiration: number(5)?,
                    write: if done == 0 {
                        Write::Abandoned
                    } else {
                        Write::Done { value, done }
                    },
                    release_at: number(8)?,
                    released: number(9)? == 1,
                }
            }
            _ => return Err(format!("not a cycle: {line:?}")),
        };
        Ok(Self {
            client: small(1)?,
            resource: small(2)?,
            invoke: number(3)?,
            outcome,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_round_trip_through_text() {
        let cycles = [
            Cycle {
                client: 3,
                resource: 1,
                invoke: 10,
                outcome: Outcome::Failed {
                    completed: 20,
                    cause: Cause::Unavailable,
                },
            },
            Cycle {
                client: 4,
                resource: 2,
                invoke: 10,
                outcome: Outcome::Held {
                    acquired: 12,
                    expiration: 99,
                    write: Write::Done { value: 7, done: 15 },
                    release_at: 16,
                    released: true,
                },
            },
            Cycle {
                client: 5,
                resource: 0,
                invoke: 1,
                outcome: Outcome::Held {
                    acquired: 2,
                    expiration: 3,
                    write: Write::Abandoned,
                    release_at: 4,
                    released: false,
                },
            },
        ];
        for cycle in cycles {
            assert_eq!(cycle.to_string().parse::<Cycle>(), Ok(cycle));
        }
    }
}
