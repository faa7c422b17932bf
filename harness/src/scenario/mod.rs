//! Scenario files in, a checked plan out: `model` (the file as written, with spans) -> `plan` (what runs).
//! Every error names the file, line and column, and renders with the source line.

pub mod duration;
pub mod error;
pub mod interpolate;
pub mod model;
pub mod plan;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use error::{Loc, ScenarioError, ScenarioErrorKind};
pub use plan::{PlannedScenario, Step, Where};

/// Scenario files found under the given paths: files as given, folders searched for `*.yaml` / `*.yml`.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ScenarioError> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| read_error(path, &e))?;
        if meta.is_dir() {
            walk(path, &mut files).map_err(|e| read_error(path, &e))?;
        } else {
            files.push(path.clone());
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, files)?;
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            files.push(path);
        }
    }
    Ok(())
}

fn read_error(path: &Path, err: &std::io::Error) -> ScenarioError {
    ScenarioError::new(path, Arc::from(""), None, ScenarioErrorKind::Read(err.to_string()))
}

/// Parses YAML text into the file model; the error carries the line and column serde-saphyr saw.
pub fn parse(path: &Path, text: &Arc<str>) -> Result<model::ScenarioFile, ScenarioError> {
    serde_saphyr::from_str(text).map_err(|err| saphyr_error(path, text, &err))
}

fn saphyr_error(path: &Path, text: &Arc<str>, err: &serde_saphyr::Error) -> ScenarioError {
    use serde_saphyr::Error as E;
    let loc = err.location().and_then(Loc::from_saphyr);
    let inner = innermost(err);
    let kind = match inner {
        E::SerdeUnknownField { field, expected, .. } => ScenarioErrorKind::UnknownKey {
            found: field.clone(),
            expected: expected.iter().map(|s| (*s).to_owned()).collect(),
        },
        E::SerdeUnknownVariant { variant, expected, .. } => ScenarioErrorKind::UnknownStep {
            found: variant.clone(),
            expected: expected.iter().chain(&model::STEP_GRADING_KEYS).map(|s| (*s).to_owned()).collect(),
        },
        E::SerdeMissingField { field, .. } => ScenarioErrorKind::Yaml(format!("missing key `{field}`")),
        E::InvalidScalar { ty, .. } => ScenarioErrorKind::Yaml(format!("expected {}", describe_type(ty))),
        other => ScenarioErrorKind::Yaml(strip_location_suffix(&other.to_string())),
    };
    ScenarioError::new(path, text.clone(), loc, kind)
}

/// What a Rust scalar type means to the person writing the file.
fn describe_type(ty: &str) -> String {
    match ty {
        "u16" => "a whole number from 0 to 65535 (a port, a status)".to_owned(),
        "u8" | "u32" | "u64" | "usize" => "a whole number of 0 or more".to_owned(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".to_owned(),
        "bool" => "`true` or `false`".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        other => format!("a value of type {other}"),
    }
}

fn innermost(err: &serde_saphyr::Error) -> &serde_saphyr::Error {
    let mut err = err;
    loop {
        match err {
            serde_saphyr::Error::WithSnippet { error, .. } | serde_saphyr::Error::AliasError { error, .. } => {
                err = error;
            }
            other => return other,
        }
    }
}

/// serde-saphyr ends plain messages with ` at line N, column M`; we show the location ourselves.
fn strip_location_suffix(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// The JSON Schema of scenario files, generated from the same serde types that read them.
pub fn schema_json() -> String {
    let mut schema = schemars::schema_for!(model::ScenarioFile);
    schema.insert("$id".into(), "https://github.com/seatrial/seatrial/raw/main/seatrial.schema.json".into());
    serde_json::to_string_pretty(&schema).unwrap_or_default()
}

/// Scenarios ready to run, and the warnings found on the way.
#[derive(Debug)]
pub struct Loaded {
    pub scenarios: Vec<PlannedScenario>,
    pub warnings: Vec<ScenarioError>,
}

/// Reads, parses and plans every file; returns all scenarios, or every problem of every file (errors and
/// warnings, in file order).
pub fn load(paths: &[PathBuf], lookup: plan::Lookup<'_>) -> Result<Loaded, Vec<ScenarioError>> {
    let files = discover(paths).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    let mut scenarios = Vec::new();
    for file in &files {
        let text: Arc<str> = match std::fs::read_to_string(file) {
            Ok(text) => text.into(),
            Err(err) => {
                errors.push(read_error(file, &err));
                continue;
            }
        };
        match parse(file, &text) {
            Ok(model) => scenarios.extend(plan::plan_file(file, &text, &model, lookup, &mut errors)),
            Err(err) => errors.push(err),
        }
    }
    let mut names = HashMap::new();
    for scenario in &scenarios {
        let first_file = names.entry(scenario.test_name.clone()).or_insert_with(|| scenario.at.file.clone());
        // Twice in one file was reported with the file; here only names that two files share.
        if *first_file != scenario.at.file {
            errors.push(ScenarioError::new(
                &scenario.at.file,
                Arc::from(std::fs::read_to_string(&scenario.at.file).unwrap_or_default()),
                scenario.at.loc,
                ScenarioErrorKind::DuplicateScenario(scenario.test_name.clone()),
            ));
        }
    }
    if errors.iter().any(ScenarioError::is_error) { Err(errors) } else { Ok(Loaded { scenarios, warnings: errors }) }
}
