//! Scenario files in, a checked plan out: `model` (the file as written, with spans) -> `plan` (what runs).
//! Every error names the file, line and column, and renders with the source line.

pub mod duration;
pub mod error;
pub mod interpolate;
pub mod model;
pub mod plan;

use std::collections::HashSet;
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
            expected: expected.iter().map(|s| (*s).to_owned()).collect(),
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

/// Reads, parses and plans every file; returns all scenarios, or every error of every file.
pub fn load(paths: &[PathBuf], lookup: plan::Lookup<'_>) -> Result<Vec<PlannedScenario>, Vec<ScenarioError>> {
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
    let mut names = HashSet::new();
    for scenario in &scenarios {
        if !names.insert(scenario.test_name.clone()) {
            errors.push(ScenarioError::new(
                &scenario.at.file,
                Arc::from(std::fs::read_to_string(&scenario.at.file).unwrap_or_default()),
                scenario.at.loc,
                ScenarioErrorKind::DuplicateScenario(scenario.test_name.clone()),
            ));
        }
    }
    if errors.is_empty() { Ok(scenarios) } else { Err(errors) }
}
