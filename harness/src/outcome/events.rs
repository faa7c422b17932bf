//! The one interface between the executor and every reporter: the executor emits [`Event`]s as a run
//! goes; reporters ([`Reporter`]) receive each of them and never reach back into the executor or the
//! engine. Modelled on nextest's `reporter/events.rs`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::ScenarioOutcome;
use crate::scenario::Where;

/// Something that happened in a run, in the order it happened for each scenario.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    /// The run begins: `scenarios` will be run (filters applied by the driver may skip some).
    RunStarted {
        run_id: &'a str,
        scenarios: usize,
    },
    ScenarioStarted {
        test_name: &'a str,
        at: &'a Where,
    },
    /// What a scenario is doing now.
    Phase {
        test_name: &'a str,
        phase: Phase<'a>,
    },
    /// A scenario ended, however it ended (not emitted for a scenario cut short by cancellation).
    ScenarioFinished {
        outcome: &'a ScenarioOutcome,
    },
    /// The run was cancelled (`SIGINT`): every scenario started and not finished was cut short.
    Cancelled {
        reason: &'a str,
    },
    /// The run is over: reporters write what they collected.
    RunFinished {
        duration: Duration,
        engine_lost: Option<&'a str>,
    },
    /// Sent every few seconds while the run goes on, so that reporters can show long phases live.
    Tick,
}

/// A phase of a scenario.
#[derive(Debug, Clone)]
pub enum Phase<'a> {
    /// Building an image of `images:` (or waiting for another scenario's build of it).
    Building {
        image: &'a str,
    },
    /// A line of a build's progress (`[3/7] RUN pip install ...`, `Step 3/7 : RUN ...`).
    BuildProgress {
        image: &'a str,
        line: &'a str,
    },
    StartingContainer {
        container: &'a str,
        at: &'a Where,
    },
    Step {
        index: usize,
        total: usize,
        summary: &'a str,
        at: &'a Where,
    },
    /// Collecting logs and removing the scenario's resources.
    Finishing,
    /// Its images are built; it waits for its turn to run (`grade --jobs` submissions run at once).
    Queued,
}

/// Why a reporter could not do its job (a report file could not be written).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReportError(pub String);

/// An output of the run: console, JUnit, JSON, GitHub annotations, the gradebook.
pub trait Reporter: Send {
    fn handle(&mut self, event: &Event<'_>) -> Result<(), ReportError>;
}

/// Where the executor sends events: every reporter of the run, each called in turn. Cloning shares them.
#[derive(Clone, Default)]
pub struct Events {
    reporters: Arc<Mutex<Vec<Box<dyn Reporter>>>>,
    failures: Arc<Mutex<Vec<ReportError>>>,
}

impl Events {
    pub fn new(reporters: Vec<Box<dyn Reporter>>) -> Events {
        Events { reporters: Arc::new(Mutex::new(reporters)), failures: Arc::default() }
    }

    /// Hands the event to every reporter; what a reporter could not do is kept for [`Self::failures`].
    pub fn emit(&self, event: &Event<'_>) {
        let mut reporters = crate::lock::unpoisoned(&self.reporters);
        for reporter in reporters.iter_mut() {
            if let Err(e) = reporter.handle(event) {
                crate::lock::unpoisoned(&self.failures).push(e);
            }
        }
    }

    /// What reporters could not do so far (taken: each is told once).
    pub fn failures(&self) -> Vec<ReportError> {
        std::mem::take(&mut *crate::lock::unpoisoned(&self.failures))
    }
}
