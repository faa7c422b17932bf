//! The console's live view: libtest's own lines (`test x ... ok`) say when a scenario ends; this adds, on
//! stderr, a line for a phase that has lasted long (a 100 s build, a slow readiness wait), so that a run
//! never sits silent. Each scenario's line is repeated at most every [`REPEAT_EVERY`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::outcome::events::{Event, Phase, ReportError, Reporter};

/// A phase is shown once it has lasted this long.
pub const LONG_PHASE: Duration = Duration::from_secs(10);
/// And again after each further stretch of this long.
pub const REPEAT_EVERY: Duration = Duration::from_secs(20);

struct Current {
    what: String,
    /// The newest progress line of a build (`[3/7] RUN pip install`).
    detail: Option<String>,
    since: Instant,
    shown: Option<Instant>,
}

#[derive(Default)]
pub struct LiveConsole {
    running: HashMap<String, Current>,
}

impl LiveConsole {
    fn set(&mut self, test_name: &str, what: String) {
        let current = Current { what, detail: None, since: Instant::now(), shown: None };
        self.running.insert(test_name.to_owned(), current);
    }

    /// The lines due now, one per scenario in a long phase, in name order.
    fn due(&mut self, now: Instant) -> Vec<String> {
        let mut lines = Vec::new();
        for (test_name, current) in &mut self.running {
            let lasted = now.saturating_duration_since(current.since);
            let due = match current.shown {
                None => lasted >= LONG_PHASE,
                Some(shown) => now.saturating_duration_since(shown) >= REPEAT_EVERY,
            };
            if due {
                current.shown = Some(now);
                let detail = current
                    .detail
                    .as_ref()
                    .map(|d| format!(": {}", crate::text::shown_log_line(d)))
                    .unwrap_or_default();
                lines.push(format!("    {test_name}: {} for {}s{detail}", current.what, lasted.as_secs()));
            }
        }
        lines.sort();
        lines
    }
}

fn describe(phase: &Phase<'_>) -> Option<String> {
    match phase {
        Phase::Building { image } => Some(format!("building image `{image}`")),
        Phase::BuildProgress { .. } => None,
        Phase::StartingContainer { container, .. } => Some(format!("starting `{container}` and waiting until ready")),
        Phase::Step { index, total, summary, .. } => Some(format!("step {index} of {total} ({summary})")),
        Phase::Finishing => Some("collecting logs and removing its containers".to_owned()),
        Phase::Queued => Some("built; waiting for its turn to run".to_owned()),
    }
}

impl Reporter for LiveConsole {
    fn handle(&mut self, event: &Event<'_>) -> Result<(), ReportError> {
        match event {
            Event::ScenarioStarted { test_name, .. } => self.set(test_name, "starting".to_owned()),
            Event::Phase { test_name, phase: Phase::BuildProgress { line, .. } } => {
                if let Some(current) = self.running.get_mut(*test_name) {
                    current.detail = Some((*line).to_owned());
                }
            }
            Event::Phase { test_name, phase } => {
                if let Some(what) = describe(phase) {
                    self.set(test_name, what);
                }
            }
            Event::ScenarioFinished { outcome } => {
                self.running.remove(&outcome.test_name);
                // What compose warned of (a variable not set) matters even when the scenario passed.
                for note in outcome.notes.iter().filter(|n| n.starts_with("compose warned:")) {
                    eprintln!("warning: {}: {}", outcome.test_name, crate::text::printable(note));
                }
            }
            Event::Tick => {
                for line in self.due(Instant::now()) {
                    eprintln!("{line}");
                }
            }
            Event::RunStarted { .. } | Event::Cancelled { .. } | Event::RunFinished { .. } => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_phase_is_shown_with_its_build_progress_then_repeated_less_often() {
        let mut console = LiveConsole::default();
        let at = crate::scenario::Where { file: std::path::Path::new("app.yaml").into(), loc: None };
        console.handle(&Event::ScenarioStarted { test_name: "app::notes", at: &at }).unwrap();
        console.handle(&Event::Phase { test_name: "app::notes", phase: Phase::Building { image: "app" } }).unwrap();
        let line = Phase::BuildProgress { image: "app", line: "[2/5] RUN pip install -r requirements.txt" };
        console.handle(&Event::Phase { test_name: "app::notes", phase: line }).unwrap();
        let start = console.running["app::notes"].since;
        assert!(console.due(start + Duration::from_secs(3)).is_empty());
        assert_eq!(
            console.due(start + Duration::from_secs(12)),
            vec!["    app::notes: building image `app` for 12s: [2/5] RUN pip install -r requirements.txt"]
        );
        assert!(console.due(start + Duration::from_secs(20)).is_empty());
        assert_eq!(console.due(start + Duration::from_secs(33)).len(), 1);
    }
}
