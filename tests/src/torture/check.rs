//! The checker: mutual exclusion, lost updates, liveness and leftovers over a history.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
};

use super::history::{Cause, Cycle, Outcome, Write};

/// Two clients relied on the same resource at the same time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    /// The resource.
    pub resource: u32,
    /// The earlier window (client, from, to).
    pub first: (u32, u64, u64),
    /// The later window, starting before the first one ended.
    pub second: (u32, u64, u64),
}

/// Everything the checker found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Cycles checked.
    pub cycles: usize,
    /// Acquisitions that succeeded.
    pub acquired: usize,
    /// Failed acquisitions by cause.
    pub failures: BTreeMap<Cause, usize>,
    /// Critical sections that wrote.
    pub writes: usize,
    /// Critical sections that skipped the write for lack of validity.
    pub abandoned: usize,
    /// Releases no quorum confirmed.
    pub unconfirmed_releases: usize,
    /// Successful acquire latencies in nanoseconds, sorted.
    pub latencies: Vec<u64>,
    /// Overlapping validity windows: violations of mutual exclusion.
    pub overlaps: Vec<Overlap>,
    /// Lost updates on the protected values.
    pub lost_updates: Vec<String>,
    /// Intervals (from, to) in which no acquisition succeeded although a majority was up.
    pub liveness_gaps: Vec<(u64, u64)>,
    /// Lock keys still on a master after the run.
    pub leftover_keys: Vec<String>,
}

impl Report {
    /// How many violations of any kind.
    pub fn violations(&self) -> usize {
        self.overlaps.len()
            + self.lost_updates.len()
            + self.liveness_gaps.len()
            + self.leftover_keys.len()
    }

    /// A latency percentile in milliseconds (0 when there is none).
    pub fn percentile_ms(&self, percentile: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let rank = ((percentile / 100.0) * (self.latencies.len() - 1) as f64).round() as usize;
        self.latencies[rank.min(self.latencies.len() - 1)] as f64 / 1e6
    }
}

/// Checks `cycles`.
///
/// - Mutual exclusion: per resource, no two windows (acquire returned .. release
///   invoked or expiration) overlap.
/// - Lost updates: per resource, every written value is distinct, and the final value
///   (from `final_values`) equals the number of writes.
/// - Liveness: every `bucket` nanoseconds between `from` and `to` has a successful
///   acquisition (the nemesis only ever affects a minority).
pub fn check(
    cycles: &[Cycle],
    final_values: &HashMap<u32, u64>,
    from: u64,
    to: u64,
    bucket: u64,
) -> Report {
    let mut report = Report {
        cycles: cycles.len(),
        ..Report::default()
    };
    let mut windows: HashMap<u32, Vec<(u64, u64, u32)>> = HashMap::new();
    let mut written: HashMap<u32, Vec<u64>> = HashMap::new();
    let mut successes: Vec<u64> = Vec::new();
    for cycle in cycles {
        match cycle.outcome {
            Outcome::Failed { cause, .. } => *report.failures.entry(cause).or_default() += 1,
            Outcome::Held {
                acquired,
                write,
                released,
                ..
            } => {
                report.acquired += 1;
                report.latencies.push(acquired.saturating_sub(cycle.invoke));
                successes.push(acquired);
                if let Some((start, end)) = cycle.window() {
                    windows
                        .entry(cycle.resource)
                        .or_default()
                        .push((start, end, cycle.client));
                }
                match write {
                    Write::Done { value, .. } => {
                        report.writes += 1;
                        written.entry(cycle.resource).or_default().push(value);
                    }
                    Write::Abandoned => report.abandoned += 1,
                }
                if !released {
                    report.unconfirmed_releases += 1;
                }
            }
        }
    }
    report.latencies.sort_unstable();

    let mut resources: Vec<u32> = windows.keys().copied().collect();
    resources.sort_unstable();
    for resource in resources {
        let list = windows.get_mut(&resource).expect("listed");
        list.sort_unstable();
        let mut latest: Option<(u32, u64, u64)> = None;
        for &(start, end, client) in list.iter() {
            if let Some((first_client, first_start, first_end)) = latest {
                if start < first_end {
                    report.overlaps.push(Overlap {
                        resource,
                        first: (first_client, first_start, first_end),
                        second: (client, start, end),
                    });
                }
                if end > first_end {
                    latest = Some((client, start, end));
                }
            } else {
                latest = Some((client, start, end));
            }
        }
    }

    let mut all_resources: Vec<u32> = written.keys().chain(final_values.keys()).copied().collect();
    all_resources.sort_unstable();
    all_resources.dedup();
    for resource in all_resources {
        let mut values = written.remove(&resource).unwrap_or_default();
        values.sort_unstable();
        let writes = values.len() as u64;
        let duplicates: Vec<u64> = values
            .windows(2)
            .filter(|w| w[0] == w[1])
            .map(|w| w[0])
            .collect();
        if !duplicates.is_empty() {
            report.lost_updates.push(format!(
                "resource {resource}: value(s) {duplicates:?} written by more than one critical section"
            ));
        }
        let last = final_values.get(&resource).copied().unwrap_or(0);
        if last != writes {
            report.lost_updates.push(format!(
                "resource {resource}: {writes} writes but the protected value is {last}"
            ));
        }
    }

    if bucket > 0 && to > from {
        successes.sort_unstable();
        let mut start = from;
        while start + bucket <= to {
            let end = start + bucket;
            let first = successes.partition_point(|&at| at < start);
            if successes.get(first).is_none_or(|&at| at >= end) {
                report.liveness_gaps.push((start, end));
            }
            start = end;
        }
    }
    report
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed: usize = self.failures.values().sum();
        writeln!(f, "{:<34}{:>12}", "cycles", self.cycles)?;
        writeln!(f, "{:<34}{:>12}", "acquired", self.acquired)?;
        writeln!(f, "{:<34}{:>12}", "failed to acquire", failed)?;
        for (cause, count) in &self.failures {
            writeln!(f, "{:<34}{:>12}", format!("  {cause}"), count)?;
        }
        writeln!(f, "{:<34}{:>12}", "writes", self.writes)?;
        writeln!(
            f,
            "{:<34}{:>12}",
            "abandoned (validity too short)", self.abandoned
        )?;
        writeln!(
            f,
            "{:<34}{:>12}",
            "releases without quorum", self.unconfirmed_releases
        )?;
        writeln!(
            f,
            "{:<34}{:>12.2}",
            "acquire latency p50 (ms)",
            self.percentile_ms(50.0)
        )?;
        writeln!(
            f,
            "{:<34}{:>12.2}",
            "acquire latency p99 (ms)",
            self.percentile_ms(99.0)
        )?;
        writeln!(
            f,
            "{:<34}{:>12.2}",
            "acquire latency max (ms)",
            self.percentile_ms(100.0)
        )?;
        writeln!(
            f,
            "{:<34}{:>12}",
            "VIOLATIONS: overlapping windows",
            self.overlaps.len()
        )?;
        writeln!(
            f,
            "{:<34}{:>12}",
            "VIOLATIONS: lost updates",
            self.lost_updates.len()
        )?;
        writeln!(
            f,
            "{:<34}{:>12}",
            "VIOLATIONS: liveness gaps",
            self.liveness_gaps.len()
        )?;
        writeln!(
            f,
            "{:<34}{:>12}",
            "VIOLATIONS: leftover lock keys",
            self.leftover_keys.len()
        )?;
        for overlap in self.overlaps.iter().take(5) {
            writeln!(f, "  overlap: {overlap:?}")?;
        }
        for lost in self.lost_updates.iter().take(5) {
            writeln!(f, "  lost update: {lost}")?;
        }
        for (from, to) in self.liveness_gaps.iter().take(5) {
            writeln!(f, "  no acquisition between {from} and {to} ns")?;
        }
        for key in self.leftover_keys.iter().take(5) {
            writeln!(f, "  leftover: {key}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(client: u32, resource: u32, acquired: u64, end: u64, value: u64) -> Cycle {
        Cycle {
            client,
            resource,
            invoke: acquired - 1,
            outcome: Outcome::Held {
                acquired,
                expiration: end + 100,
                write: Write::Done {
                    value,
                    done: acquired + 1,
                },
                release_at: end,
                released: true,
            },
        }
    }

    #[test]
    fn a_clean_history_passes() {
        let cycles = [
            held(1, 0, 10, 20, 1),
            held(2, 0, 21, 30, 2),
            held(3, 1, 15, 25, 1),
        ];
        let finals = HashMap::from([(0, 2), (1, 1)]);
        let report = check(&cycles, &finals, 0, 40, 20);
        assert_eq!(report.violations(), 0, "{report}");
        assert_eq!(report.acquired, 3);
    }

    #[test]
    fn overlapping_windows_are_caught() {
        let cycles = [
            held(1, 0, 10, 20, 1),
            held(2, 0, 30, 40, 3),
            held(3, 0, 19, 25, 2),
        ];
        let finals = HashMap::from([(0, 3)]);
        let report = check(&cycles, &finals, 0, 0, 0);
        assert_eq!(report.overlaps.len(), 1, "{report}");
        assert_eq!(report.overlaps[0].first.0, 1);
        assert_eq!(report.overlaps[0].second.0, 3);
    }

    #[test]
    fn a_window_inside_a_long_one_is_caught() {
        let cycles = [
            held(1, 0, 10, 100, 1),
            held(2, 0, 20, 30, 2),
            held(3, 0, 40, 50, 3),
        ];
        let report = check(&cycles, &HashMap::from([(0, 3)]), 0, 0, 0);
        assert_eq!(report.overlaps.len(), 2, "{report}");
    }

    #[test]
    fn lost_updates_are_caught() {
        let cycles = [held(1, 0, 10, 20, 1), held(2, 0, 30, 40, 1)];
        let report = check(&cycles, &HashMap::from([(0, 1)]), 0, 0, 0);
        assert_eq!(report.lost_updates.len(), 2, "{report}");
    }

    #[test]
    fn liveness_gaps_are_caught() {
        let cycles = [held(1, 0, 10, 20, 1), held(2, 0, 75, 80, 2)];
        let report = check(&cycles, &HashMap::from([(0, 2)]), 0, 100, 25);
        assert_eq!(report.liveness_gaps, [(25, 50), (50, 75)]);
    }
}
