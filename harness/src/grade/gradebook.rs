//! The gradebook: one score per submission and check, from the scenario outcomes; written as CSV (for a
//! spreadsheet or an LMS), JSON (everything) and an HTML summary with each check's pass rate.

use crate::text::html_escape;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::outcome::{Failure, ScenarioOutcome, StepStatus};

/// One graded check as it appears in every submission's row.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CheckColumn {
    pub name: String,
    pub points: u32,
    pub hidden: bool,
}

/// What one check gave for one submission.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub name: String,
    pub points: u32,
    pub earned: u32,
    pub passed: bool,
    /// `false` for plumbing steps (no points and no `name:`): shown in the feedback, not in the gradebook.
    pub graded: bool,
    pub hidden: bool,
    /// Where in the assignment file.
    pub at: String,
    pub feedback: Option<String>,
    pub failure: Option<FailureView>,
}

/// A failure as the gradebook and the feedback show it.
#[derive(Debug, Clone, Serialize)]
pub struct FailureView {
    /// The check could not run because something before it failed (the image did not build).
    pub blocked: bool,
    pub expected: String,
    pub actual: String,
    pub diagnosis: Vec<String>,
    pub evidence: Option<String>,
}

impl FailureView {
    fn map_text(&mut self, f: &dyn Fn(&str) -> String) {
        self.expected = f(&self.expected);
        self.actual = f(&self.actual);
        self.diagnosis = self.diagnosis.iter().map(|d| f(d)).collect();
        self.evidence = self.evidence.as_deref().map(f);
    }
}

impl SubmissionGrade {
    /// The grade as the student reads it: no path of the teacher's machine. The submission's own folder is
    /// "your folder" and the files in it are named from it (`app.py`); the assignment is named by its file
    /// name. The gradebook keeps the full paths for the teacher.
    pub fn for_the_student(&self, assignment: &Path) -> SubmissionGrade {
        let submission = Path::new(&self.path);
        let mut folders: Vec<String> = vec![self.path.clone()];
        if let Ok(real) = submission.canonicalize() {
            folders.push(real.display().to_string());
        }
        folders.sort_by_key(|f| std::cmp::Reverse(f.len()));
        let assignment_dir = assignment.parent().filter(|p| !p.as_os_str().is_empty());
        let mut assignment_dirs: Vec<String> = assignment_dir.map(|d| d.display().to_string()).into_iter().collect();
        if let Some(real) = assignment_dir.and_then(|d| d.canonicalize().ok()) {
            assignment_dirs.push(real.display().to_string());
        }
        assignment_dirs.sort_by_key(|f| std::cmp::Reverse(f.len()));
        let redact = |text: &str| -> String {
            let mut text = text.to_owned();
            for folder in &folders {
                text = text.replace(&format!("{folder}/"), "").replace(folder.as_str(), "your folder");
            }
            for folder in &assignment_dirs {
                text = text.replace(&format!("{folder}/"), "");
            }
            text
        };
        let mut shown = self.clone();
        shown.path = "your folder".to_owned();
        for check in &mut shown.checks {
            check.at = redact(&check.at);
            if let Some(failure) = &mut check.failure {
                failure.map_text(&redact);
            }
        }
        for note in &mut shown.notes {
            note.map_text(&redact);
        }
        shown
    }
}

impl From<&Failure> for FailureView {
    fn from(f: &Failure) -> Self {
        FailureView {
            blocked: f.kind == crate::outcome::FailureKind::Blocked,
            expected: f.expected.clone(),
            actual: f.actual.clone(),
            diagnosis: f.diagnosis.clone(),
            evidence: f.evidence.clone(),
        }
    }
}

/// One submission's grade and the evidence behind it.
#[derive(Debug, Clone, Serialize)]
pub struct SubmissionGrade {
    pub id: String,
    pub path: String,
    pub score: u32,
    pub max: u32,
    pub checks: Vec<CheckResult>,
    /// Problems outside the checks that explain them (a container that never became ready).
    pub notes: Vec<FailureView>,
    /// The last log lines of each container, by container.
    pub logs: Vec<(String, String)>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Gradebook {
    pub assignment: String,
    pub max: u32,
    pub columns: Vec<CheckColumn>,
    pub submissions: Vec<SubmissionGrade>,
}

/// The check's column name: prefixed with the scenario's name when the assignment has several scenarios.
fn column_name(scenario: &str, check: &str, several_scenarios: bool) -> String {
    if several_scenarios { format!("{scenario}: {check}") } else { check.to_owned() }
}

/// Scores one submission from its scenarios' outcomes (in the assignment's order).
pub fn grade_submission(id: &str, path: &Path, outcomes: &[ScenarioOutcome]) -> SubmissionGrade {
    let several = outcomes.len() > 1;
    // An image's build is the check `build`, or `build <image>` when the assignment builds several.
    let mut images: Vec<&str> = outcomes.iter().flat_map(|o| &o.builds).map(|b| b.image.as_str()).collect();
    images.sort_unstable();
    images.dedup();
    let build_check = |image: &str| if images.len() == 1 { "build".to_owned() } else { format!("build {image}") };
    let mut checks: Vec<CheckResult> = Vec::new();
    let mut notes = Vec::new();
    let mut logs = Vec::new();
    for outcome in outcomes {
        for build in &outcome.builds {
            let name = column_name(&outcome.name, &build_check(&build.image), several);
            // An image shared by several scenarios is one check.
            if checks.iter().any(|c| c.name == name) {
                continue;
            }
            checks.push(CheckResult {
                name,
                points: build.grading.points,
                earned: if build.failure.is_none() { build.grading.points } else { 0 },
                passed: build.failure.is_none(),
                graded: true,
                hidden: build.grading.hidden,
                at: build.failure.as_ref().map(|f| f.at.to_string()).unwrap_or_default(),
                feedback: build.grading.feedback.clone(),
                failure: build.failure.as_ref().map(FailureView::from),
            });
        }
        for step in &outcome.steps {
            let passed = step.status == StepStatus::Passed;
            let named = step.grading.name != step.summary;
            checks.push(CheckResult {
                name: column_name(&outcome.name, &step.grading.name, several),
                points: step.grading.points,
                earned: if passed { step.grading.points } else { 0 },
                passed,
                graded: step.grading.points > 0 || named,
                hidden: step.grading.hidden,
                at: step.at.to_string(),
                feedback: step.grading.feedback.clone(),
                failure: step.failure.as_ref().map(FailureView::from).or_else(|| {
                    (step.status == StepStatus::NotRun).then(|| FailureView {
                        blocked: true,
                        expected: "the step to run".to_owned(),
                        actual: "it did not run: the scenario ended before it (see above)".to_owned(),
                        diagnosis: Vec::new(),
                        evidence: None,
                    })
                }),
            });
        }
        notes.extend(outcome.setup.iter().map(FailureView::from));
        // A failure of the scenario as a whole (time limit, engine), which no check carries.
        notes.extend(outcome.scenario_failure.iter().map(FailureView::from));
        for tail in &outcome.logs {
            logs.push((tail.container.clone(), tail.lines.clone()));
        }
    }
    let score = checks.iter().map(|c| c.earned).sum();
    let max = checks.iter().map(|c| c.points).sum();
    let seconds = outcomes.iter().map(|o| o.duration.as_secs_f64()).sum();
    SubmissionGrade { id: id.to_owned(), path: path.display().to_string(), score, max, checks, notes, logs, seconds }
}

impl Gradebook {
    pub fn new(assignment: &Path, mut submissions: Vec<SubmissionGrade>) -> Gradebook {
        submissions.sort_by(|a, b| a.id.cmp(&b.id));
        let mut columns: Vec<CheckColumn> = Vec::new();
        for submission in &submissions {
            for check in submission.checks.iter().filter(|c| c.graded) {
                if !columns.iter().any(|c| c.name == check.name) {
                    columns.push(CheckColumn { name: check.name.clone(), points: check.points, hidden: check.hidden });
                }
            }
        }
        let max = columns.iter().map(|c| c.points).sum();
        Gradebook { assignment: assignment.display().to_string(), max, columns, submissions }
    }

    /// Points a submission earned on a column (0 when the check never ran for it).
    fn earned(&self, submission: &SubmissionGrade, column: &CheckColumn) -> u32 {
        submission.checks.iter().find(|c| c.name == column.name).map_or(0, |c| c.earned)
    }

    fn passed(&self, submission: &SubmissionGrade, column: &CheckColumn) -> bool {
        submission.checks.iter().find(|c| c.name == column.name).is_some_and(|c| c.passed)
    }

    /// `submission,score,max,<check (points)>...`: one row per submission.
    pub fn to_csv(&self) -> Result<String, csv::Error> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        let mut header = vec!["submission".to_owned(), "score".to_owned(), "max".to_owned()];
        header.extend(self.columns.iter().map(|c| c.name.clone()));
        writer.write_record(&header)?;
        for submission in &self.submissions {
            let mut row = vec![submission.id.clone(), submission.score.to_string(), self.max.to_string()];
            row.extend(self.columns.iter().map(|c| self.earned(submission, c).to_string()));
            writer.write_record(&row)?;
        }
        let bytes = writer.into_inner().map_err(|e| csv::Error::from(e.into_error()))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The summary page: scores, a check-by-submission grid, and each check's pass rate across the class.
    pub fn to_html(&self) -> String {
        let mut out = String::new();
        let title = format!("Grades: {}", self.assignment);
        let _ = write!(
            out,
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>\n\
             body {{ font-family: system-ui, sans-serif; margin: 2rem; }}\n\
             table {{ border-collapse: collapse; }}\n\
             th, td {{ border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: center; }}\n\
             th.name, td.name {{ text-align: left; }}\n\
             td.pass {{ background: #dff5df; }} td.fail {{ background: #f8dcdc; }}\n\
             </style>\n</head>\n<body>\n<h1>{}</h1>\n",
            html_escape(&title),
            html_escape(&title)
        );
        let count = self.submissions.len();
        let mean = if count == 0 {
            0.0
        } else {
            self.submissions.iter().map(|s| f64::from(s.score)).sum::<f64>() / count as f64
        };
        let _ = writeln!(out, "<p>{count} submissions, maximum {} points, mean score {mean:.1}.</p>", self.max);
        out.push_str("<table>\n<thead><tr><th class=\"name\">submission</th><th>score</th>");
        for column in &self.columns {
            let hidden = if column.hidden { " (hidden)" } else { "" };
            let _ = write!(out, "<th>{}{hidden}<br>{} pt</th>", html_escape(&column.name), column.points);
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for submission in &self.submissions {
            let _ = write!(
                out,
                "<tr><td class=\"name\"><a href=\"{}/feedback.md\">{}</a></td><td>{} / {}</td>",
                // A folder name is one path segment of the link: `#`, `?`, `%` and spaces must not end it.
                percent_encoding::utf8_percent_encode(&submission.id, percent_encoding::NON_ALPHANUMERIC),
                html_escape(&submission.id),
                submission.score,
                self.max
            );
            for column in &self.columns {
                let passed = self.passed(submission, column);
                let _ = write!(
                    out,
                    "<td class=\"{}\">{}</td>",
                    if passed { "pass" } else { "fail" },
                    self.earned(submission, column)
                );
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n<tfoot><tr><th class=\"name\">pass rate</th><th></th>");
        for column in &self.columns {
            let passed = self.submissions.iter().filter(|s| self.passed(s, column)).count();
            let rate = (passed * 100).checked_div(count).unwrap_or(0);
            let _ = write!(out, "<th>{rate}% ({passed}/{count})</th>");
        }
        out.push_str("</tr></tfoot>\n</table>\n</body>\n</html>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_to_feedback_survive_any_folder_name() {
        let submission = SubmissionGrade {
            id: "team A&B #2".into(),
            path: "/class/team A&B #2".into(),
            score: 0,
            max: 0,
            checks: Vec::new(),
            notes: Vec::new(),
            logs: Vec::new(),
            seconds: 0.0,
        };
        let html = Gradebook::new(Path::new("a.yaml"), vec![submission]).to_html();
        assert!(html.contains("<a href=\"team%20A%26B%20%232/feedback.md\">team A&amp;B #2</a>"), "{html}");
    }
}
