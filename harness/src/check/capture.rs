//! Values a step saves for later ones (`save:`), taken from an HTTP answer or a command's output. A value
//! that is not there fails the step, as an expectation would: what was to be saved, and what came back.

use super::Mismatch;
use super::http::HttpAnswer;
use crate::scenario::plan::{Capture, CaptureSource};
use crate::text::excerpt;

/// The value `capture` takes from `answer`. `session_cookie` gives the value of a cookie the scenario's
/// session holds for the container, for a cookie this answer did not set.
pub fn from_answer(
    capture: &Capture,
    answer: &HttpAnswer,
    session_cookie: &dyn Fn(&str) -> Option<String>,
) -> Result<serde_json::Value, Mismatch> {
    let name = &capture.name;
    let text = |value: String| serde_json::Value::String(value);
    match &capture.source {
        CaptureSource::Json { path_text, path } => {
            let expected = format!("`{path_text}` selects one value, to save as `{name}`");
            let document: serde_json::Value = serde_json::from_str(&answer.body).map_err(|err| {
                Mismatch::new(expected.clone(), format!("the body is not JSON ({err}): {}", excerpt(&answer.body, 300)))
            })?;
            match path.query(&document).all().as_slice() {
                [one] => Ok((*one).clone()),
                [] => Err(Mismatch::new(expected, format!("it selects nothing in {}", excerpt(&answer.body, 300)))),
                many => Err(Mismatch::new(expected, format!("it selects {} values", many.len()))),
            }
        }
        CaptureSource::Cookie(cookie) => {
            let set_now = answer
                .headers
                .iter()
                .filter(|(header, _)| header == "set-cookie")
                .filter_map(|(_, value)| set_cookie_pair(value))
                .filter(|(set, _)| set == cookie)
                .map(|(_, value)| value)
                .next_back();
            match set_now.or_else(|| session_cookie(cookie)) {
                Some(value) => Ok(text(value)),
                None => Err(Mismatch::new(
                    format!("a cookie `{cookie}`, to save as `{name}`"),
                    "the answer sets no such cookie, and the session holds none for this container",
                )),
            }
        }
        CaptureSource::Header(header) => match answer.headers.iter().find(|(found, _)| found == header) {
            Some((_, value)) => Ok(text(value.clone())),
            None => Err(Mismatch::new(format!("a header `{header}`, to save as `{name}`"), "no such header")),
        },
        CaptureSource::Regex(regex) => from_text(name, regex, &answer.body, "the body").map(text),
        CaptureSource::Body => Ok(text(answer.body.clone())),
        CaptureSource::Status => Ok(serde_json::Value::from(answer.status)),
        // Planning allows a command's output only on `exec`.
        CaptureSource::Stdout => Err(Mismatch::new(format!("a value to save as `{name}`"), "no standard output")),
    }
}

/// The value `capture` takes from a command's standard output.
pub fn from_output(capture: &Capture, stdout: &str) -> Result<serde_json::Value, Mismatch> {
    let name = &capture.name;
    match &capture.source {
        // As a shell's `$(...)` takes it: without the line break a command ends its output with.
        CaptureSource::Stdout => {
            Ok(serde_json::Value::String(stdout.strip_suffix('\n').unwrap_or(stdout).trim_end_matches('\r').to_owned()))
        }
        CaptureSource::Regex(regex) => from_text(name, regex, stdout, "stdout").map(serde_json::Value::String),
        // Planning allows only the two above on `exec`.
        _ => Err(Mismatch::new(format!("a value to save as `{name}`"), "a command gives only its output")),
    }
}

/// The first group of the first match, or the whole match when the regex has no group.
fn from_text(name: &str, regex: &regex::Regex, text: &str, what: &str) -> Result<String, Mismatch> {
    let expected = format!("{what} matches /{}/, to save as `{name}`", regex.as_str());
    let Some(found) = regex.captures(text) else {
        return Err(Mismatch::new(expected, format!("{what} {}", excerpt(text, 300))));
    };
    let group = if regex.captures_len() > 1 { found.get(1) } else { found.get(0) };
    match group {
        Some(group) => Ok(group.as_str().to_owned()),
        None => Err(Mismatch::new(expected, "it matches, but its first group matched nothing")),
    }
}

/// The name and value of a `Set-Cookie` header (`csrftoken=abc; Path=/` -> `csrftoken`, `abc`).
fn set_cookie_pair(header: &str) -> Option<(String, String)> {
    let pair = header.split(';').next()?;
    let (name, value) = pair.split_once('=')?;
    let value = value.trim();
    let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
    Some((name.trim().to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn capture(source: CaptureSource) -> Capture {
        Capture { name: "x".into(), source }
    }

    fn answer(body: &str, headers: &[(&str, &str)]) -> HttpAnswer {
        HttpAnswer {
            status: 201,
            headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            body: body.into(),
            cut: None,
            took: std::time::Duration::ZERO,
        }
    }

    fn no_session(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn json_keeps_the_type_and_wants_exactly_one_value() {
        let json = |path: &str| {
            capture(CaptureSource::Json {
                path_text: path.into(),
                path: serde_json_path::JsonPath::parse(path).unwrap(),
            })
        };
        let body = answer(r#"{"id": 7, "tags": ["a", "b"]}"#, &[]);
        assert_eq!(from_answer(&json("$.id"), &body, &no_session), Ok(json!(7)));
        let many = from_answer(&json("$.tags[*]"), &body, &no_session).unwrap_err();
        assert_eq!(many.actual, "it selects 2 values");
        let none = from_answer(&json("$.nope"), &body, &no_session).unwrap_err();
        assert_eq!(none.expected, "`$.nope` selects one value, to save as `x`");
    }

    #[test]
    fn a_cookie_comes_from_the_answer_else_from_the_session() {
        let cookie = capture(CaptureSource::Cookie("csrftoken".into()));
        let set = answer("", &[("set-cookie", "csrftoken=abc; Path=/; SameSite=Lax"), ("set-cookie", "other=1")]);
        assert_eq!(from_answer(&cookie, &set, &no_session), Ok(json!("abc")));
        let session = |name: &str| (name == "csrftoken").then(|| "kept".to_owned());
        assert_eq!(from_answer(&cookie, &answer("", &[]), &session), Ok(json!("kept")));
        assert!(from_answer(&cookie, &answer("", &[]), &no_session).is_err());
    }

    #[test]
    fn a_regex_saves_its_first_group_or_its_match() {
        let body = answer("<input name=token value=\"s3cr3t\">", &[("location", "/notes/4")]);
        let group = capture(CaptureSource::Regex(regex::Regex::new(r#"value="(\w+)""#).unwrap()));
        assert_eq!(from_answer(&group, &body, &no_session), Ok(json!("s3cr3t")));
        let whole = capture(CaptureSource::Regex(regex::Regex::new(r"\d+").unwrap()));
        assert_eq!(from_output(&whole, "pid 42\n"), Ok(json!("42")));
        let header = capture(CaptureSource::Header("location".into()));
        assert_eq!(from_answer(&header, &body, &no_session), Ok(json!("/notes/4")));
        assert_eq!(from_answer(&capture(CaptureSource::Status), &body, &no_session), Ok(json!(201)));
        assert_eq!(from_output(&capture(CaptureSource::Stdout), "abc\n"), Ok(json!("abc")));
    }
}
