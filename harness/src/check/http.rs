//! HTTP answers against `expect:`: status, headers, body text, body regex and JSONPath values.

use super::{Mismatch, excerpt};
use crate::scenario::plan::HttpExpect;

/// An answer as the check needs it.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: u16,
    /// Header names lower-case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

pub fn check_http(expect: &HttpExpect, answer: &HttpAnswer) -> Vec<Mismatch> {
    let mut mismatches = Vec::new();
    // The body is shown once, with the first expectation that failed; the others refer to it.
    let shown = std::cell::Cell::new(false);
    let first_showing = || (!shown.replace(true)).then(|| excerpt(&answer.body, 300));
    let body = || first_showing().unwrap_or_else(|| "(shown before)".to_owned());
    match expect.status {
        Some(status) if status != answer.status => {
            mismatches
                .push(Mismatch::new(format!("status {status}"), format!("status {}, body {}", answer.status, body())));
        }
        None if !(200..300).contains(&answer.status) => {
            mismatches.push(Mismatch::new("a 2xx status", format!("status {}, body {}", answer.status, body())));
        }
        _ => {}
    }
    for (name, value) in &expect.headers {
        let found: Vec<&str> = answer.headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect();
        if !found.iter().any(|v| v == value) {
            let actual =
                if found.is_empty() { "no such header".to_owned() } else { format!("{name}: {}", found.join(", ")) };
            mismatches.push(Mismatch::new(format!("header {name}: {value}"), actual));
        }
    }
    if let Some(text) = &expect.body_contains
        && !answer.body.contains(text.as_str())
    {
        mismatches.push(Mismatch::new(format!("body contains {text:?}"), format!("body {}", body())));
    }
    if let Some(regex) = &expect.body_regex
        && !regex.is_match(&answer.body)
    {
        mismatches.push(Mismatch::new(format!("body matches /{}/", regex.as_str()), format!("body {}", body())));
    }
    if !expect.json.is_empty() {
        match serde_json::from_str::<serde_json::Value>(&answer.body) {
            Err(err) => {
                let actual = match first_showing() {
                    Some(shown) => format!("not JSON ({err}): {shown}"),
                    None => format!("not JSON ({err})"),
                };
                mismatches.push(Mismatch::new("a JSON body", actual));
            }
            Ok(document) => {
                for expectation in &expect.json {
                    let nodes = expectation.path.query(&document).all();
                    let expected = format!("{} = {}", expectation.path_text, expectation.value);
                    match nodes.as_slice() {
                        [one] if **one == expectation.value => {}
                        [one] => mismatches.push(Mismatch::new(expected, format!("{} = {one}", expectation.path_text))),
                        [] => mismatches.push(Mismatch::new(
                            expected,
                            match first_showing() {
                                Some(shown) => format!("{} selects nothing in {shown}", expectation.path_text),
                                None => format!("{} selects nothing in the body", expectation.path_text),
                            },
                        )),
                        many => mismatches.push(Mismatch::new(
                            expected,
                            format!("{} selects {} values, not one", expectation.path_text, many.len()),
                        )),
                    }
                }
            }
        }
    }
    mismatches
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::plan::JsonExpectation;

    #[test]
    fn a_body_reads_as_it_came_and_is_shown_once() {
        let expect = HttpExpect { status: Some(200), body_contains: Some("hello".into()), ..Default::default() };
        let found = check_http(&expect, &answer(404, "{\"error\": \"no `such` key\"}\n<p>\tx</p>\n"));
        assert_eq!(found[0].actual, "status 404, body `{\"error\": \"no 'such' key\"}\\n<p>\\tx</p>`");
        assert_eq!(found[1].actual, "body (shown before)");
        assert_eq!(check_http(&expect, &answer(500, ""))[0].actual, "status 500, body (empty)");
    }

    fn answer(status: u16, body: &str) -> HttpAnswer {
        HttpAnswer { status, headers: vec![("content-type".into(), "application/json".into())], body: body.into() }
    }

    #[test]
    fn status_defaults_to_any_2xx() {
        assert!(check_http(&HttpExpect::default(), &answer(201, "")).is_empty());
        let m = check_http(&HttpExpect::default(), &answer(500, "boom"));
        assert_eq!(m, vec![Mismatch::new("a 2xx status", "status 500, body `boom`")]);
    }

    #[test]
    fn json_paths_compare_values() {
        let expect = HttpExpect {
            json: vec![JsonExpectation {
                path_text: "$[0].text".into(),
                path: serde_json_path::JsonPath::parse("$[0].text").unwrap(),
                value: serde_json::json!("hello"),
            }],
            ..Default::default()
        };
        assert!(check_http(&expect, &answer(200, r#"[{"text":"hello"}]"#)).is_empty());
        let m = check_http(&expect, &answer(200, "[]"));
        assert_eq!(m[0].actual, "$[0].text selects nothing in `[]`");
        let m = check_http(&expect, &answer(200, r#"[{"text":"bye"}]"#));
        assert_eq!(m[0].actual, "$[0].text = \"bye\"");
    }

    #[test]
    fn headers_and_body() {
        let expect = HttpExpect {
            headers: vec![("content-type".into(), "text/html".into())],
            body_contains: Some("ok".into()),
            body_regex: Some(regex::Regex::new("^o").unwrap()),
            ..Default::default()
        };
        let m = check_http(&expect, &answer(200, "nope"));
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].actual, "content-type: application/json");
    }
}
