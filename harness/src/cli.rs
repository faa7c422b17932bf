//! The command line: `seatrial run | check | grade | schema | clean | doctor`. Parses arguments and hands over to the stages.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::exit_code as exit_codes;
use crate::libtest::{SuiteOptions, run_suite};

#[derive(Debug, Parser)]
#[command(name = "seatrial", version, about = "Puts container images through their trials before they ship")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run scenario files (default: scenarios/) as test cases against the container engine.
    ///
    /// Arguments that name an existing file or folder are scenario paths; the others are libtest's:
    /// a name filter, --exact, --skip NAME, --list, --ignored, --include-ignored, --test-threads N, ...
    Run {
        /// Where to write the JUnit report.
        #[arg(long, default_value = "reports/junit.xml")]
        junit: PathBuf,
        /// Keep a failed scenario's containers, volumes and network, and print how to reach them.
        #[arg(long)]
        keep: bool,
        /// The project folder that build contexts must stay in (default: the folder holding `.git`, else
        /// the current directory when it holds the scenario file, else the scenario file's folder).
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
        /// Also write a report in FORMAT (`json`) to FILE: every scenario, step, expectation, actual,
        /// diagnosis and log tail (schema: `seatrial schema --report`).
        #[arg(long, num_args = 2, value_names = ["FORMAT", "FILE"])]
        report: Vec<String>,
        /// Print where the time went at the end: each phase (builds, bringing containers up, each kind of
        /// step, cleanup) summed over every scenario.
        #[arg(long)]
        timings: bool,
        /// Scenario paths, then libtest's arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "PATH|LIBTEST-ARG")]
        args: Vec<String>,
    },
    /// Check scenario files without an engine: every error of every file, with file:line:col.
    Check {
        #[arg(default_value = "scenarios")]
        paths: Vec<PathBuf>,
        /// The project folder that build contexts must stay in (as for `run`).
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
    /// Grade submissions of an assignment: build and run each submission folder against the assignment's
    /// scenarios, in parallel, and write a gradebook (grades.csv, grades.json, grades.html) and, per
    /// submission, feedback.md and junit.xml.
    Grade {
        /// The assignment: a scenario file with points, whose images build from `${SUBMISSION}`.
        assignment: PathBuf,
        /// Submission folders, or one folder holding them.
        #[arg(required = true)]
        submissions: Vec<PathBuf>,
        /// Submissions built at once (default: twice the cores, at least 2); twice as many run at once.
        #[arg(long, short = 'j', value_parser = clap::value_parser!(u16).range(1..))]
        jobs: Option<u16>,
        /// Where the gradebook and the feedback files go.
        #[arg(long, default_value = "reports/grades")]
        out: PathBuf,
        /// The project folder that the assignment's own build contexts must stay in (as for `run`).
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
        /// Check the assignment against every submission folder without an engine: nothing is built or run.
        #[arg(long)]
        check: bool,
        /// Print where the time went at the end, per phase, summed over every submission.
        #[arg(long)]
        timings: bool,
        /// The submissions are trusted: grade them even on an engine that does not enforce container
        /// limits (rootless on a cgroup v1 host), where a fork bomb or a memory hog is not stopped.
        #[arg(long)]
        trusted_submissions: bool,
    },
    /// Print the JSON Schema of scenario files, for editors (yaml-language-server) and validators.
    Schema {
        /// The schema of `--report json` files instead.
        #[arg(long)]
        report: bool,
    },
    /// Say which engine answers and what seatrial will do with it (API, builder, storage and free disk,
    /// whether container limits hold, compose), and how to fix each problem: exit 0 when seatrial can run.
    Doctor,
    /// Remove what interrupted or killed runs left on the engine.
    Clean {
        /// List what would be removed, remove nothing.
        #[arg(long)]
        dry_run: bool,
        /// Remove everything of this run id, live or not.
        #[arg(long)]
        run: Option<String>,
    },
}

/// libtest flags that take a value: the word after them is never a scenario path.
const LIBTEST_VALUE_FLAGS: [&str; 6] = ["--test-threads", "--skip", "--logfile", "--color", "--format", "-Z"];

/// `run`'s words after the first path: clap hands them over raw, our own flags included.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RunWords {
    pub paths: Vec<PathBuf>,
    pub libtest: Vec<String>,
    pub junit: Option<PathBuf>,
    pub keep: bool,
    pub root: Option<PathBuf>,
    /// `--report FORMAT FILE`, in order.
    pub reports: Vec<(String, PathBuf)>,
    /// Set when `--report` lacks its FORMAT or FILE.
    pub incomplete_report: bool,
    pub timings: bool,
}

/// Splits `run`'s words into scenario paths, seatrial's own flags and libtest's arguments.
pub fn split_run_args(words: &[String]) -> RunWords {
    let mut out = RunWords::default();
    let mut value_expected = false;
    let mut own_value: Option<&str> = None;
    let mut report: Vec<String> = Vec::new();
    let mut report_words = 0;
    for word in words {
        if report_words > 0 {
            report.push(word.clone());
            report_words -= 1;
            if report_words == 0 {
                out.reports.push((report[0].clone(), PathBuf::from(&report[1])));
                report.clear();
            }
        } else if word == "--report" {
            report_words = 2;
        } else if let Some(flag) = own_value.take() {
            let value = Some(PathBuf::from(word));
            if flag == "--junit" { out.junit = value } else { out.root = value }
        } else if word == "--junit" || word == "--root" {
            own_value = Some(word.as_str());
        } else if let Some(path) = word.strip_prefix("--junit=") {
            out.junit = Some(PathBuf::from(path));
        } else if let Some(path) = word.strip_prefix("--root=") {
            out.root = Some(PathBuf::from(path));
        } else if word == "--keep" {
            out.keep = true;
        } else if word == "--timings" {
            out.timings = true;
        } else if value_expected {
            out.libtest.push(word.clone());
            value_expected = false;
        } else if LIBTEST_VALUE_FLAGS.contains(&word.as_str()) {
            out.libtest.push(word.clone());
            value_expected = true;
        } else if !word.starts_with('-') && std::path::Path::new(word).exists() {
            out.paths.push(PathBuf::from(word));
        } else {
            out.libtest.push(word.clone());
        }
    }
    out.incomplete_report = report_words > 0;
    out
}

pub fn main_with(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run { junit, keep, root, report, timings, args } => {
            let mut words = split_run_args(&args);
            if words.incomplete_report {
                eprintln!("error: `--report` takes a format and a file: `--report json reports/run.json`");
                return ExitCode::from(exit_codes::INVALID_INPUT);
            }
            let mut reports: Vec<(String, PathBuf)> =
                report.chunks(2).map(|pair| (pair[0].clone(), PathBuf::from(&pair[1]))).collect();
            reports.append(&mut words.reports);
            let mut json = None;
            for (format, file) in reports {
                match format.as_str() {
                    "json" => json = Some(file),
                    other => {
                        eprintln!(
                            "error: unknown report format `{other}`: the formats are `json` (JUnit is `--junit FILE`)"
                        );
                        return ExitCode::from(exit_codes::INVALID_INPUT);
                    }
                }
            }
            let (mut paths, libtest) = (words.paths, words.libtest);
            let junit = words.junit.unwrap_or(junit);
            let keep = keep || words.keep;
            let root = words.root.or(root);
            if paths.is_empty() {
                paths.push(PathBuf::from("scenarios"));
            }
            let arguments = match libtest_mimic::Arguments::try_parse_from(
                std::iter::once("seatrial run".to_owned()).chain(libtest),
            ) {
                Ok(arguments) => arguments,
                Err(e) => {
                    let _ = e.print();
                    return ExitCode::from(exit_codes::INVALID_INPUT);
                }
            };
            let timings = timings || words.timings;
            run_suite(&arguments, &SuiteOptions { paths, junit: Some(junit), keep, root, json, timings })
        }
        Command::Check { paths, root } => crate::check_files(
            &paths,
            &crate::scenario::paths::PathPolicy { project_root: root, bind_roots: Vec::new() },
        ),
        Command::Grade { assignment, submissions, jobs, out, root, check, timings, trusted_submissions } => {
            crate::grade::grade(&crate::grade::GradeOptions {
                assignment,
                submissions,
                jobs: jobs.map_or_else(crate::grade::default_jobs, usize::from),
                out,
                root,
                check_only: check,
                timings,
                trust: if trusted_submissions { crate::grade::Trust::Trusted } else { crate::grade::Trust::Untrusted },
            })
        }
        Command::Doctor => crate::doctor::doctor(),
        Command::Schema { report } => {
            match report {
                true => println!("{}", crate::report::json::schema_json()),
                false => println!("{}", crate::scenario::schema_json()),
            }
            ExitCode::SUCCESS
        }
        Command::Clean { dry_run, run } => crate::clean(dry_run, run),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_paths_flags_and_libtest_arguments() {
        let words: Vec<String> = [
            "src",
            "--junit",
            "out.xml",
            "--test-threads",
            "src",
            "--exact",
            "name",
            "--keep",
            "--root",
            ".",
            "--report",
            "json",
            "r.json",
        ]
        .map(String::from)
        .into();
        let split = split_run_args(&words);
        assert_eq!(split.paths, vec![PathBuf::from("src")]);
        assert_eq!(split.junit, Some(PathBuf::from("out.xml")));
        assert!(split.keep);
        assert_eq!(split.root, Some(PathBuf::from(".")));
        assert_eq!(split.reports, vec![("json".to_owned(), PathBuf::from("r.json"))]);
        assert_eq!(split.libtest, vec!["--test-threads", "src", "--exact", "name"]);
    }
}
