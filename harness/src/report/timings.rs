//! `--timings`: where a run's time went, per phase (building images, bringing containers up and waiting
//! for them, each kind of step, finishing), summed over every scenario, measured from the event stream
//! as it happens. Phases of scenarios that run at once overlap, so the sums exceed the wall time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::outcome::events::{Event, Phase, ReportError, Reporter};

#[derive(Default)]
pub struct PhaseTimings {
    /// Per running scenario: the phase it is in and since when.
    current: HashMap<String, (String, Instant)>,
    /// Per phase: total time and how many times it was entered.
    totals: Vec<(String, Duration, usize)>,
    scenarios: usize,
}

fn phase_name(phase: &Phase<'_>) -> Option<String> {
    Some(match phase {
        Phase::Building { .. } => "building images (or waiting for a build)".to_owned(),
        Phase::BuildProgress { .. } => return None,
        Phase::StartingContainer { .. } => "starting containers and waiting until ready".to_owned(),
        Phase::Step { summary, .. } => {
            let kind = summary.split_whitespace().next().unwrap_or("step");
            format!("step: {kind}")
        }
        Phase::Finishing => "finishing (logs, removing containers)".to_owned(),
        Phase::Queued => "built, waiting for a turn to run (--jobs)".to_owned(),
    })
}

impl PhaseTimings {
    fn close(&mut self, test_name: &str, now: Instant) {
        if let Some((phase, since)) = self.current.remove(test_name) {
            let took = now.saturating_duration_since(since);
            match self.totals.iter_mut().find(|(name, _, _)| *name == phase) {
                Some((_, total, count)) => {
                    *total += took;
                    *count += 1;
                }
                None => self.totals.push((phase, took, 1)),
            }
        }
    }

    /// The table, longest phase first.
    pub fn table(&self, wall: Duration) -> String {
        let mut rows = self.totals.clone();
        rows.sort_by_key(|row| std::cmp::Reverse(row.1));
        let width = rows.iter().map(|(name, _, _)| name.len()).max().unwrap_or(0);
        let mut out = format!(
            "where the time went: {} scenario(s), {:.1} s of wall time (phases of scenarios run at once overlap)\n",
            self.scenarios,
            wall.as_secs_f64()
        );
        for (name, total, count) in rows {
            out.push_str(&format!("  {name:<width$}  {:>8.1} s  ({count}x)\n", total.as_secs_f64()));
        }
        out
    }
}

impl Reporter for PhaseTimings {
    fn handle(&mut self, event: &Event<'_>) -> Result<(), ReportError> {
        let now = Instant::now();
        match event {
            Event::ScenarioStarted { test_name, .. } => {
                self.scenarios += 1;
                self.current.insert((*test_name).to_owned(), ("setting up".to_owned(), now));
            }
            Event::Phase { test_name, phase } => {
                if let Some(name) = phase_name(phase) {
                    self.close(test_name, now);
                    self.current.insert((*test_name).to_owned(), (name, now));
                }
            }
            Event::ScenarioFinished { outcome } => self.close(&outcome.test_name, now),
            Event::RunFinished { duration, .. } => eprint!("{}", self.table(*duration)),
            Event::RunStarted { .. } | Event::Cancelled { .. } | Event::Tick => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_each_phase_over_scenarios() {
        let mut timings = PhaseTimings::default();
        let at = crate::scenario::Where { file: std::path::Path::new("a.yaml").into(), loc: None };
        for name in ["a::one", "a::two"] {
            timings.handle(&Event::ScenarioStarted { test_name: name, at: &at }).unwrap();
            let phase = Phase::Step { index: 1, total: 1, summary: "http GET web:80/", at: &at };
            timings.handle(&Event::Phase { test_name: name, phase }).unwrap();
            timings.handle(&Event::Phase { test_name: name, phase: Phase::Finishing }).unwrap();
        }
        let table = timings.table(Duration::from_secs(1));
        assert!(table.contains("2 scenario(s)"), "{table}");
        assert!(table.contains("step: http") && table.contains("(2x)"), "{table}");
    }
}
