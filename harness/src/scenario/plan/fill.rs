//! Filling a step's saved values in, when it runs: in, a planned [`Step`] whose text may hold `${name}`
//! of values saved by earlier steps, and those values; out, the same step with final text.

use super::text::{SavedLookup, Text, Unsaved};
use super::{Body, FileContent, HttpExpect, JsonExpectation, JsonTest, Part, PartValue, Step};

/// Why a step's saved values could not be filled in.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FillError {
    #[error(transparent)]
    Unsaved(#[from] Unsaved),
    /// A `body_regex` that a saved value made invalid (too long a value: the regex size limit).
    #[error("`{pattern}` with its saved values is not a valid regex: {reason}")]
    Regex { pattern: String, reason: String },
}

fn texts(list: &[Text], saved: SavedLookup<'_>) -> Result<Vec<Text>, Unsaved> {
    list.iter().map(|t| t.fill(saved)).collect()
}

fn option(text: &Option<Text>, saved: SavedLookup<'_>) -> Result<Option<Text>, Unsaved> {
    text.as_ref().map(|t| t.fill(saved)).transpose()
}

fn pairs(list: &[(String, Text)], saved: SavedLookup<'_>) -> Result<Vec<(String, Text)>, Unsaved> {
    list.iter().map(|(k, v)| Ok((k.clone(), v.fill(saved)?))).collect()
}

impl Step {
    /// The step with the saved values it refers to filled in; a step without any comes back as it is.
    pub fn filled(&self, saved: SavedLookup<'_>) -> Result<Step, FillError> {
        Ok(match self {
            Step::Http(http) => {
                let mut http = http.clone();
                http.path = http.path.fill(saved)?;
                http.headers = pairs(&http.headers, saved)?;
                http.body = match &http.body {
                    None => None,
                    Some(Body::Json(json)) => Some(Body::Json(json.fill(saved)?)),
                    Some(Body::Raw(raw)) => Some(Body::Raw(raw.fill(saved)?)),
                    Some(Body::Form(fields)) => Some(Body::Form(pairs(fields, saved)?)),
                    Some(Body::Multipart(parts)) => {
                        let mut filled = Vec::new();
                        for part in parts {
                            let value = match &part.value {
                                PartValue::Text(text) => PartValue::Text(text.fill(saved)?),
                                PartValue::File { content: FileContent::Inline(text), filename, content_type } => {
                                    PartValue::File {
                                        content: FileContent::Inline(text.fill(saved)?),
                                        filename: filename.clone(),
                                        content_type: content_type.clone(),
                                    }
                                }
                                file => file.clone(),
                            };
                            filled.push(Part { name: part.name.clone(), value });
                        }
                        Some(Body::Multipart(filled))
                    }
                };
                http.expect = expect(&http.expect, saved)?;
                Step::Http(http)
            }
            Step::Exec(exec) => {
                let mut exec = exec.clone();
                exec.cmd = texts(&exec.cmd, saved)?;
                exec.stdout_contains = option(&exec.stdout_contains, saved)?;
                exec.stderr_contains = option(&exec.stderr_contains, saved)?;
                Step::Exec(exec)
            }
            Step::Logs(logs) => {
                let mut logs = logs.clone();
                logs.contains = option(&logs.contains, saved)?;
                logs.not_contains = option(&logs.not_contains, saved)?;
                Step::Logs(logs)
            }
            // Other kinds hold no text that may name a saved value.
            other => other.clone(),
        })
    }
}

fn expect(expect: &HttpExpect, saved: SavedLookup<'_>) -> Result<HttpExpect, FillError> {
    let body_regex = match &expect.body_regex {
        Some(pattern) => Some(
            pattern
                .fill(saved)?
                .map_err(|err| FillError::Regex { pattern: pattern.shown().to_owned(), reason: err.to_string() })?,
        ),
        None => None,
    };
    let mut json = Vec::new();
    for expectation in &expect.json {
        let mut tests = Vec::new();
        for test in &expectation.tests {
            tests.push(match test {
                JsonTest::Equals(value) => JsonTest::Equals(value.fill(saved)?),
                other => other.clone(),
            });
        }
        json.push(JsonExpectation { tests, ..expectation.clone() });
    }
    Ok(HttpExpect {
        status: expect.status,
        headers: pairs(&expect.headers, saved)?,
        body_contains: option(&expect.body_contains, saved)?,
        body_not_contains: option(&expect.body_not_contains, saved)?,
        body_regex,
        json,
        max_time: expect.max_time,
    })
}
