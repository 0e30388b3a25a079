//! What each attempt saw: who voted for, who against and why.

use std::{fmt, sync::Arc, time::Duration};

use crate::backend::BackendError;

/// The operation an attempt performed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Acquiring the keys.
    Acquire,
    /// Extending the keys' TTL.
    Extend,
    /// Releasing the keys.
    Release,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Acquire => "acquire",
            Self::Extend => "extend",
            Self::Release => "release",
        })
    }
}

/// One backend's answer in one attempt.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Outcome {
    /// The backend did what was asked (a vote for).
    Granted,
    /// The backend answered no: for acquire the keys are held by another value, for
    /// extend they no longer hold ours (a vote against).
    Refused,
    /// The backend failed (a vote against).
    Failed(Arc<BackendError>),
    /// No answer within the per-request timeout (a vote against).
    TimedOut(Duration),
    /// No answer yet when the attempt's outcome was already decided (no vote).
    NoReply,
}

impl Outcome {
    /// Whether this is a vote for.
    pub fn is_for(&self) -> bool {
        matches!(self, Self::Granted)
    }

    /// Whether this is a vote against.
    pub fn is_against(&self) -> bool {
        matches!(self, Self::Refused | Self::Failed(_) | Self::TimedOut(_))
    }
}

/// A backend's [`Outcome`] with the backend's name.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Vote {
    /// The backend's [`name`](crate::LockBackend::name).
    pub backend: Arc<str>,
    /// What it answered.
    pub outcome: Outcome,
    /// How long after the attempt's start the answer came (`None` without an answer).
    pub latency: Option<Duration>,
}

impl fmt::Display for Vote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.backend)?;
        match &self.outcome {
            Outcome::Granted => f.write_str("granted"),
            Outcome::Refused => f.write_str("refused"),
            Outcome::Failed(error) => f.write_str(&error.report()),
            Outcome::TimedOut(after) => write!(f, "no reply within {after:?}"),
            Outcome::NoReply => f.write_str("no reply before the outcome was decided"),
        }
    }
}

/// The statistics of one attempt of one operation.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AttemptStats {
    /// What the attempt did.
    pub operation: Operation,
    /// 1 for the first attempt, 2 for the first retry, ...
    pub attempt: u32,
    /// How many backends were asked (N).
    pub backends: usize,
    /// How many votes for were needed (N / 2 + 1).
    pub quorum: usize,
    /// Every backend's answer, in backend order.
    pub votes: Vec<Vote>,
    /// Time from the attempt's start until its outcome was decided.
    pub elapsed: Duration,
    /// The clock-drift allowance subtracted from the TTL (zero for release).
    pub drift: Duration,
    /// The validity left when the outcome was decided (`None` when none is left, and
    /// for release).
    pub validity: Option<Duration>,
}

impl AttemptStats {
    /// The names of the backends that voted for.
    pub fn votes_for(&self) -> impl Iterator<Item = &str> + '_ {
        self.votes
            .iter()
            .filter(|vote| vote.outcome.is_for())
            .map(|vote| &*vote.backend)
    }

    /// The votes against, with their reasons.
    pub fn votes_against(&self) -> impl Iterator<Item = &Vote> + '_ {
        self.votes.iter().filter(|vote| vote.outcome.is_against())
    }

    /// How many backends voted for.
    pub fn granted(&self) -> usize {
        self.votes
            .iter()
            .filter(|vote| vote.outcome.is_for())
            .count()
    }

    /// How many backends refused (answered no, as opposed to failing).
    pub fn refused(&self) -> usize {
        self.count(|outcome| matches!(outcome, Outcome::Refused))
    }

    /// How many backends failed or timed out.
    pub fn failed(&self) -> usize {
        self.count(|outcome| matches!(outcome, Outcome::Failed(_) | Outcome::TimedOut(_)))
    }

    fn count(&self, predicate: impl Fn(&Outcome) -> bool) -> usize {
        self.votes
            .iter()
            .filter(|vote| predicate(&vote.outcome))
            .count()
    }
}

impl fmt::Display for AttemptStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} attempt {}: {} of {} for, quorum {}",
            self.operation,
            self.attempt,
            self.granted(),
            self.backends,
            self.quorum
        )?;
        write_list(f, "; against: ", self.votes_against())?;
        write_list(
            f,
            "; no answer before the decision: ",
            self.votes
                .iter()
                .filter(|vote| matches!(vote.outcome, Outcome::NoReply))
                .map(|vote| &vote.backend),
        )?;
        if self.operation != Operation::Release
            && self.granted() >= self.quorum
            && self.validity.is_none()
        {
            write!(
                f,
                "; no validity left after {:?} (drift {:?})",
                self.elapsed, self.drift
            )?;
        }
        Ok(())
    }
}

/// Writes `label` and the items separated by commas, or nothing when there are none.
fn write_list<T: fmt::Display>(
    f: &mut fmt::Formatter<'_>,
    label: &str,
    items: impl Iterator<Item = T>,
) -> fmt::Result {
    for (i, item) in items.enumerate() {
        f.write_str(if i == 0 { label } else { ", " })?;
        write!(f, "{item}")?;
    }
    Ok(())
}

/// The attempts of one failed operation: how many there were and the last few.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Attempts {
    /// How many attempts were made in all.
    pub total: u32,
    /// The last attempts, oldest first; at most [`Attempts::KEPT`] of them.
    pub last: Vec<AttemptStats>,
    /// Whether retries stopped because the acquire deadline would have passed.
    pub deadline_reached: bool,
}

impl Attempts {
    /// How many attempts an error keeps.
    pub const KEPT: usize = 5;

    pub(crate) fn new() -> Self {
        Self {
            total: 0,
            last: Vec::new(),
            deadline_reached: false,
        }
    }

    pub(crate) fn push(&mut self, stats: AttemptStats) {
        self.total += 1;
        if self.last.len() == Self::KEPT {
            self.last.remove(0);
        }
        self.last.push(stats);
    }

    /// The most recent attempt.
    pub fn latest(&self) -> Option<&AttemptStats> {
        self.last.last()
    }
}

impl fmt::Display for Attempts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} attempt{}",
            self.total,
            if self.total == 1 { "" } else { "s" }
        )?;
        if self.deadline_reached {
            f.write_str(" (deadline reached)")?;
        }
        if let Some(latest) = self.latest() {
            write!(f, ", last {latest}")?;
        }
        Ok(())
    }
}
