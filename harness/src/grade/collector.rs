//! The grading collector: a reporter that gathers each submission's outcomes as its scenarios finish,
//! grades the submission once its last scenario is in (feedback.md, junit.xml, a progress line), and
//! writes the gradebook when the run finishes. A run cut short by a signal grades nothing further: what
//! ran while the sweep removed its containers says nothing true about a student.

use std::collections::HashMap;
use std::path::PathBuf;

use super::gradebook::{self, Gradebook, SubmissionGrade};
use super::{Submission, withhold_hidden_requests, write_gradebook, write_submission};
use crate::outcome::ScenarioOutcome;
use crate::outcome::events::{Event, ReportError, Reporter};

/// What the collector expects of one submission.
struct Expected {
    submission: Submission,
    hidden_paths: Vec<String>,
    outcomes: Vec<Option<ScenarioOutcome>>,
}

pub struct GradingCollector {
    assignment: PathBuf,
    out: PathBuf,
    expected: Vec<Expected>,
    /// Test name -> (submission, position of the scenario).
    slots: HashMap<String, (usize, usize)>,
    grades: Vec<SubmissionGrade>,
    name_width: usize,
    count_width: usize,
}

impl GradingCollector {
    /// `plan`: each submission with its scenarios' test names and the request paths of its hidden checks.
    pub fn new(assignment: PathBuf, out: PathBuf, plan: Vec<(Submission, Vec<String>, Vec<String>)>) -> Self {
        let total = plan.len();
        // Columns as wide as the longest name and count, so that scores line up down the whole class.
        let name_width = plan.iter().map(|(s, _, _)| s.id.chars().count()).max().unwrap_or(0).clamp(12, 48);
        let count_width = 2 * total.to_string().len() + 3;
        let mut slots = HashMap::new();
        let expected = plan
            .into_iter()
            .enumerate()
            .map(|(i, (submission, test_names, hidden_paths))| {
                for (j, name) in test_names.iter().enumerate() {
                    slots.insert(name.clone(), (i, j));
                }
                let outcomes = vec![None; test_names.len()];
                Expected { submission, hidden_paths, outcomes }
            })
            .collect();
        GradingCollector { assignment, out, expected, slots, grades: Vec::new(), name_width, count_width }
    }

    fn finished(&mut self, outcome: &ScenarioOutcome) -> Result<(), ReportError> {
        let Some(&(i, j)) = self.slots.get(&outcome.test_name) else { return Ok(()) };
        let total = self.expected.len();
        let expected = &mut self.expected[i];
        expected.outcomes[j] = Some(outcome.clone());
        if expected.outcomes.iter().any(Option::is_none) {
            return Ok(());
        }
        let outcomes: Vec<ScenarioOutcome> = expected.outcomes.iter_mut().filter_map(Option::take).collect();
        let submission = &expected.submission;
        let mut grade = gradebook::grade_submission(&submission.id, &submission.path, &outcomes);
        withhold_hidden_requests(&mut grade, &expected.hidden_paths);
        let assignment_name = self
            .assignment
            .file_name()
            .map_or_else(|| self.assignment.display().to_string(), |name| name.to_string_lossy().into_owned());
        let written = write_submission(&self.out, &assignment_name, &grade.for_the_student(&self.assignment));
        let (name_width, count_width) = (self.name_width, self.count_width);
        eprintln!(
            "{:<count_width$} {:<name_width$} {:>3} / {:<3} ({:.1} s)",
            format!("[{}/{total}]", self.grades.len() + 1),
            submission.id,
            grade.score,
            grade.max,
            grade.seconds
        );
        self.grades.push(grade);
        written.map_err(|e| ReportError(e.to_string()))
    }
}

impl Reporter for GradingCollector {
    fn handle(&mut self, event: &Event<'_>) -> Result<(), ReportError> {
        match event {
            Event::ScenarioFinished { outcome } => self.finished(outcome),
            Event::RunFinished { duration, .. } => {
                let book = Gradebook::new(&self.assignment, std::mem::take(&mut self.grades));
                write_gradebook(&self.out, &book).map_err(|e| ReportError(e.to_string()))?;
                eprintln!(
                    "graded {} submission(s) in {:.1} s: {}",
                    book.submissions.len(),
                    duration.as_secs_f64(),
                    self.out.join("grades.csv").display()
                );
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
