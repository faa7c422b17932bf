//! Scenario files in, a checked plan out: `model` (the file as written, with spans) -> `plan` (what runs).
//! Every error names the file, line and column, and renders with the source line.

pub mod dialect;
pub mod duration;
pub mod error;
pub mod interpolate;
pub mod messages;
pub mod model;
mod model_checks;
mod model_release;
pub mod paths;
pub mod plan;
pub mod signal;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use error::{Loc, ScenarioError, ScenarioErrorKind};
pub use plan::{PlannedScenario, Step, Where};

/// The largest scenario file read: they are a few kilobytes, and a path such as `/dev/zero` must not be
/// read until memory runs out.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Scenario files found under the given paths: files as given, folders searched for `*.yaml` / `*.yml`.
/// Only regular files are taken: a FIFO or a device given by name is an error (reading it would hang or
/// never end), one met in a folder is skipped with a warning, and so is a symlink that loops back to a
/// folder being searched (said once, naming the link).
pub fn discover(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<ScenarioError>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        match std::fs::metadata(path) {
            Err(err) => problems.push(read_error(path, &err)),
            Ok(meta) if meta.is_dir() => {
                let mut searching = Vec::new();
                if let Ok(real) = path.canonicalize() {
                    searching.push(real);
                }
                walk(path, &mut searching, &mut files, &mut problems);
            }
            Ok(meta) if meta.is_file() => files.push(path.clone()),
            Ok(meta) => problems.push(not_a_file(path, &meta, false)),
        }
    }
    files.sort();
    files.dedup();
    (files, problems)
}

/// Searches `dir`; `searching` holds the canonical folders from the top of the search down to `dir`.
fn walk(dir: &Path, searching: &mut Vec<PathBuf>, files: &mut Vec<PathBuf>, problems: &mut Vec<ScenarioError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => return problems.push(read_error(dir, &err)),
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let is_link = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            // A dangling link or a link to itself: only worth a word when it looks like a scenario file.
            Err(err) => {
                const ELOOP: i32 = 40;
                let looped = err.raw_os_error() == Some(ELOOP);
                if is_link && (is_scenario_name(&path) || looped) {
                    let why = if looped {
                        "the symlink is a loop: following it never ends".to_owned()
                    } else {
                        format!("the symlink leads nowhere: {err}")
                    };
                    problems.push(skipped(&path, why));
                }
                continue;
            }
        };
        if meta.is_dir() {
            let Ok(real) = path.canonicalize() else { continue };
            // A link to a folder being searched, or to one above it, would search it again forever.
            if searching.iter().any(|s| s.starts_with(&real)) {
                let why = format!("the symlink leads to `{}`, which holds this folder: a loop", real.display());
                problems.push(skipped(&path, why));
                continue;
            }
            searching.push(real);
            walk(&path, searching, files, problems);
            searching.pop();
        } else if is_scenario_name(&path) {
            if meta.is_file() {
                files.push(path);
            } else {
                problems.push(not_a_file(&path, &meta, true));
            }
        }
    }
}

fn is_scenario_name(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

fn skipped(path: &Path, why: String) -> ScenarioError {
    ScenarioError::warning(path, Arc::from(""), None, ScenarioErrorKind::Skipped(why))
}

/// A path that is not a regular file: an error when named, a warning when met in a folder.
fn not_a_file(path: &Path, meta: &std::fs::Metadata, in_folder: bool) -> ScenarioError {
    use std::os::unix::fs::FileTypeExt;
    let kind = meta.file_type();
    let what = if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    let why = format!("it is {what}: seatrial reads scenarios only from regular files");
    if in_folder { skipped(path, why) } else { read_error_text(path, why) }
}

fn read_error(path: &Path, err: &std::io::Error) -> ScenarioError {
    read_error_text(path, err.to_string())
}

fn read_error_text(path: &Path, why: String) -> ScenarioError {
    ScenarioError::new(path, Arc::from(""), None, ScenarioErrorKind::Read(why))
}

/// Reads a scenario file found by [`discover`]: regular files only, at most [`MAX_FILE_BYTES`].
fn read_scenario_file(path: &Path) -> Result<String, ScenarioError> {
    use std::io::Read as _;
    let meta = std::fs::metadata(path).map_err(|e| read_error(path, &e))?;
    if !meta.is_file() {
        return Err(not_a_file(path, &meta, false));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_big(path, meta.len()));
    }
    let file = std::fs::File::open(path).map_err(|e| read_error(path, &e))?;
    let mut bytes = Vec::new();
    // The size may have changed since it was looked at: never read past the limit.
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| read_error(path, &e))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big(path, bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|e| not_utf8(path, e))
}

/// Where the first byte that is not UTF-8 is, shown in the text as far as it can be read.
fn not_utf8(path: &Path, err: std::string::FromUtf8Error) -> ScenarioError {
    let valid = err.utf8_error().valid_up_to();
    let bytes = err.into_bytes();
    let byte = bytes.get(valid).copied().unwrap_or_default();
    let before = String::from_utf8_lossy(&bytes[..valid]);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let loc = Loc { line: u32::try_from(line).unwrap_or(u32::MAX), column: u32::try_from(column).unwrap_or(u32::MAX) };
    let shown: Arc<str> = Arc::from(String::from_utf8_lossy(&bytes).into_owned());
    ScenarioError::new(path, shown, Some(loc), ScenarioErrorKind::NotUtf8 { byte })
}

fn too_big(path: &Path, size: u64) -> ScenarioError {
    let mib = |n: u64| n as f64 / (1024.0 * 1024.0);
    read_error_text(
        path,
        format!("it is {:.1} MiB; scenario files are read up to {:.0} MiB", mib(size), mib(MAX_FILE_BYTES)),
    )
}

/// Parses YAML text into the file model; the error carries the line and column serde-saphyr saw.
pub fn parse(path: &Path, text: &Arc<str>) -> Result<model::ScenarioFile, ScenarioError> {
    serde_saphyr::from_str_with_options(text, parse_options()).map_err(|err| saphyr_error(path, text, &err))
}

/// Parses the file and reports every misspelt key, not only the first: a key unknown in block style is
/// reported, blanked out (its lines become empty, so later locations stay true) and the file parsed
/// again. Returns the model when the rest of the file parses, so that planning can add its own problems.
pub fn parse_all(path: &Path, text: &Arc<str>) -> (Option<model::ScenarioFile>, Vec<ScenarioError>) {
    const AT_MOST: usize = 50;
    if let Some(loc) = compose_services_key(text) {
        return (None, vec![ScenarioError::new(path, text.clone(), Some(loc), ScenarioErrorKind::ComposeFile)]);
    }
    let mut errors = Vec::new();
    let mut current = text.to_string();
    loop {
        let err = match serde_saphyr::from_str_with_options(&current, parse_options()) {
            Ok(model) => return (Some(model), errors),
            Err(err) => saphyr_error(path, text, &err),
        };
        let blanked = match (&*err.kind, err.loc) {
            (ScenarioErrorKind::UnknownKey { .. }, Some(loc)) if errors.len() < AT_MOST => {
                without_block_entry(&current, loc)
            }
            _ => None,
        };
        errors.push(err);
        match blanked {
            Some(next) => current = next,
            None => return (None, errors),
        }
    }
}

/// Where a compose file's top-level `services:` is, when the file has one and no `scenarios:`: such a file
/// is someone's compose project, and every key of it would be "unknown".
fn compose_services_key(text: &str) -> Option<Loc> {
    let top_level =
        |key: &str| text.lines().position(|l| l.starts_with(key) && l[key.len()..].trim_start().starts_with(':'));
    if top_level("scenarios").is_some() {
        return None;
    }
    let line = top_level("services")?;
    Some(Loc { line: u32::try_from(line + 1).ok()?, column: 1 })
}

/// `text` with the block-style mapping entry whose key starts at `loc` (and its more-indented value
/// lines) replaced by empty lines; `None` when the key is not the first thing on its line.
fn without_block_entry(text: &str, loc: Loc) -> Option<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let first = usize::try_from(loc.line).ok()?.checked_sub(1)?;
    let indent = usize::try_from(loc.column).ok()?.checked_sub(1)?;
    let indent_of = |line: &str| line.chars().take_while(|c| *c == ' ').count();
    if indent_of(lines.get(first)?) != indent {
        return None;
    }
    let mut end = first + 1;
    while end < lines.len() && (lines[end].trim().is_empty() || indent_of(lines[end]) > indent) {
        end += 1;
    }
    // An anchor (`&name`) defined in the entry may be used later: blanking it would turn every use into
    // a second, misleading error. The first error is then the only one.
    if lines[first..end].iter().any(|l| l.contains('&')) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    for (i, line) in lines.iter().enumerate() {
        if (first..end).contains(&i) {
            if line.ends_with('\n') {
                out.push('\n');
            }
        } else {
            out.push_str(line);
        }
    }
    Some(out)
}

/// serde-saphyr's budget, tightened for scenario files, which are a few kilobytes: an alias bomb or a
/// deeply nested file is refused after a few milliseconds instead of a few seconds.
fn parse_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_events = 200_000;
    budget.max_nodes = 50_000;
    budget.max_aliases = 1_000;
    budget.max_recorded_anchor_events = 100_000;
    budget.max_total_scalar_bytes = 16 * 1024 * 1024;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
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
        E::SerdeMissingField { field, .. } => {
            let what = messages::what_key_takes(field).map_or("this mapping needs it".to_owned(), |(takes, _)| {
                format!("this mapping needs it, and it takes {takes}")
            });
            ScenarioErrorKind::MissingKey { key: (*field).to_owned(), what }
        }
        E::InvalidScalar { ty, .. } => messages::wrong_type(text, loc, &describe_type(ty)),
        other => {
            // The library's words, only ever used to tell which kind of mistake it is.
            let said = strip_location_suffix(&other.to_string());
            let lower = said.to_ascii_lowercase();
            if let Some(own) = said.find(dialect::OWN_MESSAGE) {
                ScenarioErrorKind::Invalid(said[own + dialect::OWN_MESSAGE.len()..].to_owned())
            } else if let Some(key) = lower.strip_prefix("duplicate mapping key: ") {
                let key =
                    said["duplicate mapping key: ".len()..][..key.find(',').unwrap_or(key.len())].trim().to_owned();
                let first = messages::first_of_duplicate(text, &key, loc);
                ScenarioErrorKind::DuplicateKey { key, first }
            } else if [
                "mapping start",
                "sequence start",
                "string scalar",
                "cannot deserialize",
                "invalid type",
                "expected ",
            ]
            .iter()
            .any(|w| lower.contains(w))
                && !lower.contains("document")
                && !lower.contains("did not find expected")
                && !lower.contains("while parsing")
                && !text.trim().is_empty()
            {
                messages::wrong_type(text, loc, &lower)
            } else {
                messages::syntax(&said, text)
            }
        }
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

/// Every problem of one file's text, as `seatrial check` finds them; variables resolve to nothing (their
/// defaults apply). What the fuzzer drives: no input may panic, hang or take unbounded memory here.
pub fn check_text(path: &Path, text: &str) -> Vec<ScenarioError> {
    let text: Arc<str> = Arc::from(text);
    let (model, mut problems) = parse_all(path, &text);
    if let Some(model) = model {
        let submission = plan::SubmissionVars::Placeholders;
        let env = plan::PlanEnv { lookup: &|_| None, paths: &paths::PathPolicy::default(), submission };
        plan::plan_file(path, &text, &model, env, &mut problems);
    }
    problems
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
pub fn load(paths: &[PathBuf], env: plan::PlanEnv<'_>) -> Result<Loaded, Vec<ScenarioError>> {
    let (files, mut errors) = discover(paths);
    let mut scenarios = Vec::new();
    let mut compose_files = Vec::new();
    for file in &files {
        let text: Arc<str> = match read_scenario_file(file) {
            Ok(text) => text.into(),
            Err(err) => {
                errors.push(err);
                continue;
            }
        };
        // A compose file met in a folder may be a stack the scenarios beside it name: judged once they
        // are planned.
        if !paths.contains(file) && compose_services_key(&text).is_some() {
            compose_files.push((file.clone(), text));
            continue;
        }
        let (model, problems) = parse_all(file, &text);
        errors.extend(problems);
        if let Some(model) = model {
            scenarios.extend(plan::plan_file(file, &text, &model, env, &mut errors));
        }
    }
    // A compose file that no scenario names is someone's mistake: most likely a compose file given where a
    // scenario file was meant.
    let named: Vec<PathBuf> = scenarios
        .iter()
        .filter_map(|s: &PlannedScenario| s.compose.as_ref())
        .flat_map(|c| c.source.files.iter().filter_map(|f| f.canonicalize().ok()))
        .collect();
    for (file, text) in compose_files {
        if !file.canonicalize().is_ok_and(|real| named.contains(&real)) {
            errors.extend(parse_all(&file, &text).1);
        }
    }
    let mut names = HashMap::new();
    for scenario in &scenarios {
        let first_file = names.entry(scenario.test_name.clone()).or_insert_with(|| scenario.at.file.clone());
        // Twice in one file was reported with the file; here only names that two files share.
        if *first_file != scenario.at.file {
            errors.push(ScenarioError::new(
                &scenario.at.file,
                Arc::from(read_scenario_file(&scenario.at.file).ok().unwrap_or_default()),
                scenario.at.loc,
                ScenarioErrorKind::DuplicateScenario(scenario.test_name.clone()),
            ));
        }
    }
    if errors.iter().any(ScenarioError::is_error) { Err(errors) } else { Ok(Loaded { scenarios, warnings: errors }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A YAML "billion laughs": ten levels of nine aliases inside a JSON body, which accepts any value, so
    /// only serde-saphyr's budget stands between the file and 9^10 nodes. It is refused, not expanded.
    #[test]
    fn an_alias_bomb_is_refused_not_expanded() {
        let mut levels = vec!["&a0 [x, x, x, x, x, x, x, x, x]".to_owned()];
        for level in 1..10 {
            let items = vec![format!("*a{}", level - 1); 9].join(", ");
            levels.push(format!("&a{level} [{items}]"));
        }
        levels.push("*a9".to_owned());
        let text = format!(
            "scenarios:\n  - name: bomb\n    containers: {{ web: {{ image: \"b:1\", ports: [80] }} }}\n    steps:\n      \
             - http: {{ port: 80, json: [{}] }}\n",
            levels.join(", ")
        );
        let started = std::time::Instant::now();
        let problems = check_text(Path::new("bomb.yaml"), &text);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].to_string().contains("too big for a scenario file"), "{}", problems[0]);
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "took {:?}", started.elapsed());
    }
}
