//! HTTP answers against `expect:`: status, headers, body text, body regex and JSONPath values. A body
//! may be only its first part (seatrial reads a bounded amount): an expectation found there holds, and
//! one that is not says that the rest was never read.

use std::fmt;
use std::time::Duration;

use super::Mismatch;
use crate::scenario::plan::HttpExpect;
use crate::text::excerpt;

/// An answer as the check needs it.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: u16,
    /// Header names lower-case.
    pub headers: Vec<(String, String)>,
    /// The whole body, or its first part when `cut` says why seatrial has no more of it.
    pub body: String,
    pub cut: Option<BodyCut>,
}

/// How the server said where its body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    Declared(u64),
    Chunked,
    /// Neither: the body ends when the server closes the connection.
    UntilClose,
}

impl fmt::Display for BodyLength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyLength::Declared(length) => write!(f, "Content-Length {length}"),
            BodyLength::Chunked => f.write_str("chunked, no Content-Length"),
            BodyLength::UntilClose => f.write_str("no Content-Length"),
        }
    }
}

/// Why seatrial has only the first part of a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyCut {
    /// The body goes on past `limit`, as much as seatrial reads of a body: it stopped there.
    OverLimit { limit: u64, length: BodyLength },
    /// The step's timeout passed while the body was still arriving.
    StillArriving { after: Duration, read: u64, length: BodyLength },
}

impl BodyCut {
    /// How many bytes of the body seatrial has.
    pub fn read(&self) -> u64 {
        match self {
            BodyCut::OverLimit { limit, .. } => *limit,
            BodyCut::StillArriving { read, .. } => *read,
        }
    }
}

impl fmt::Display for BodyCut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyCut::OverLimit { limit, length } => {
                let limit = byte_size(*limit);
                write!(f, "the body is larger than {limit} ({length}); seatrial read its first {limit}")
            }
            BodyCut::StillArriving { after, read, length } => {
                write!(f, "the body was still arriving after {after:?} ({} read, {length})", byte_size(*read))
            }
        }
    }
}

/// A byte count for a person: `512 bytes`, `1.5 KiB`, `4 MiB`.
pub fn byte_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let shown = format!("{value:.1}");
    format!("{} {}", shown.strip_suffix(".0").unwrap_or(&shown), UNITS[unit])
}

/// How much of a body deciding the expectations takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyNeed {
    /// None: the status and headers decide, and a failure does not show the body.
    Nothing,
    /// Enough to show: the status alone fails, and its failure shows the body.
    Shown,
    /// What an expectation looks into.
    Checked,
}

/// How much of the body `expect` needs, once the answer's `status` is known.
pub fn body_need(expect: &HttpExpect, status: u16) -> BodyNeed {
    if expect.body_contains.is_some() || expect.body_regex.is_some() || !expect.json.is_empty() {
        BodyNeed::Checked
    } else if status_holds(expect, status) {
        BodyNeed::Nothing
    } else {
        BodyNeed::Shown
    }
}

fn status_holds(expect: &HttpExpect, status: u16) -> bool {
    expect.status.map_or((200..300).contains(&status), |expected| expected == status)
}

/// Characters of a body shown in a failure.
const SHOWN_BODY_CHARS: usize = 300;

fn shown_body(answer: &HttpAnswer) -> String {
    // A framework's error page starts with kilobytes of style: its title and text are what explain.
    if let Some(page) = crate::text::html_summary(&answer.body, SHOWN_BODY_CHARS) {
        return page;
    }
    match &answer.cut {
        None => excerpt(&answer.body, SHOWN_BODY_CHARS),
        Some(cut) => {
            let first: String = answer.body.chars().take(SHOWN_BODY_CHARS).collect();
            format!("{}... (only its first {} read)", excerpt(&first, SHOWN_BODY_CHARS), byte_size(cut.read()))
        }
    }
}

/// Whether `regex` matches the body, judged from its first part when it was cut: a match that ends
/// before the cut is a match in the whole body too (every assertion the regex crate knows looks only at
/// the characters beside it), one that ends at the cut might not be (`done$`).
fn body_matches(regex: &regex::Regex, answer: &HttpAnswer) -> bool {
    match answer.cut {
        None => regex.is_match(&answer.body),
        Some(_) => {
            let before_cut = |end: usize| end < answer.body.len();
            // The earliest end the engine sees first, else any leftmost match (neither alone finds every one).
            regex.shortest_match(&answer.body).is_some_and(before_cut)
                || regex.find_iter(&answer.body).any(|found| before_cut(found.end()))
        }
    }
}

pub fn check_http(expect: &HttpExpect, answer: &HttpAnswer) -> Vec<Mismatch> {
    let mut mismatches = Vec::new();
    // The body is shown once, with the first expectation that failed; the others refer to it.
    let shown = std::cell::Cell::new(false);
    let first_showing = || (!shown.replace(true)).then(|| shown_body(answer));
    let body = || first_showing().unwrap_or_else(|| "(shown before)".to_owned());
    if !status_holds(expect, answer.status) {
        let expected = expect.status.map_or_else(|| "a 2xx status".to_owned(), |status| format!("status {status}"));
        mismatches.push(Mismatch::new(expected, format!("status {}, body {}", answer.status, body())));
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
        && !body_matches(regex, answer)
    {
        mismatches.push(Mismatch::new(format!("body matches /{}/", regex.as_str()), format!("body {}", body())));
    }
    if !expect.json.is_empty() {
        match serde_json::from_str::<serde_json::Value>(&answer.body) {
            // The document may well end in the part never read: that is no reason to call it broken.
            Err(err) if err.is_eof() && answer.cut.is_some() => {
                let read = byte_size(answer.cut.as_ref().map_or(0, BodyCut::read));
                let actual = format!("the body was cut before its JSON ended (only its first {read} read)");
                mismatches.push(Mismatch::new("a JSON body", actual));
            }
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
        HttpAnswer {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
            cut: None,
        }
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

    fn cut(body: &str, cut: BodyCut) -> HttpAnswer {
        HttpAnswer { cut: Some(cut), ..answer(200, body) }
    }

    const OVER_4_MIB: BodyCut = BodyCut::OverLimit { limit: 4 << 20, length: BodyLength::Chunked };

    #[test]
    fn a_cut_body_passes_on_what_was_read_and_says_it_was_cut_when_that_is_not_enough() {
        let contains = |text: &str| HttpExpect { body_contains: Some(text.into()), ..Default::default() };
        assert!(check_http(&contains("start"), &cut("the start of it", OVER_4_MIB)).is_empty());
        let m = check_http(&contains("the end"), &cut("the start of it", OVER_4_MIB));
        assert_eq!(m[0].actual, "body `the start of it`... (only its first 4 MiB read)");
        let long = "x".repeat(400);
        let m = check_http(&HttpExpect { status: Some(404), ..Default::default() }, &cut(&long, OVER_4_MIB));
        assert_eq!(m[0].actual, format!("status 200, body `{}`... (only its first 4 MiB read)", "x".repeat(300)));
    }

    #[test]
    fn a_regex_holds_on_a_cut_body_only_where_the_cut_cannot_change_it() {
        let regex =
            |pattern: &str| HttpExpect { body_regex: Some(regex::Regex::new(pattern).unwrap()), ..Default::default() };
        assert!(check_http(&regex("x+"), &cut("xxxx", OVER_4_MIB)).is_empty());
        assert!(check_http(&regex("^x{2}"), &cut("xxxx", OVER_4_MIB)).is_empty());
        // `x$` holds for these four bytes, but the body goes on past them.
        assert_eq!(check_http(&regex("x$"), &cut("xxxx", OVER_4_MIB)).len(), 1);
        assert!(check_http(&regex("x$"), &answer(200, "xxxx")).is_empty());
    }

    #[test]
    fn json_cut_short_says_so_and_json_broken_before_the_cut_says_why() {
        let expect = HttpExpect {
            json: vec![JsonExpectation {
                path_text: "$.a".into(),
                path: serde_json_path::JsonPath::parse("$.a").unwrap(),
                value: serde_json::json!(1),
            }],
            ..Default::default()
        };
        let m = check_http(&expect, &cut(r#"{"a": 1, "rest": [1, 2, 3"#, OVER_4_MIB));
        assert_eq!(
            m,
            vec![Mismatch::new("a JSON body", "the body was cut before its JSON ended (only its first 4 MiB read)")]
        );
        let m = check_http(&expect, &cut(r#"{"a": 1,, "#, OVER_4_MIB));
        assert!(m[0].actual.starts_with("not JSON (key must be a string at line 1 column 9)"), "{}", m[0].actual);
        assert!(check_http(&expect, &cut(r#"{"a": 1}"#, OVER_4_MIB)).is_empty());
    }

    #[test]
    fn a_cut_says_how_much_was_read_and_how_the_server_said_the_body_would_end() {
        assert_eq!(
            BodyCut::OverLimit { limit: 4 << 20, length: BodyLength::Declared(3_000_000_000) }.to_string(),
            "the body is larger than 4 MiB (Content-Length 3000000000); seatrial read its first 4 MiB"
        );
        let slow =
            BodyCut::StillArriving { after: Duration::from_secs(10), read: 1536, length: BodyLength::UntilClose };
        assert_eq!(slow.to_string(), "the body was still arriving after 10s (1.5 KiB read, no Content-Length)");
        assert_eq!(byte_size(1023), "1023 bytes");
        assert_eq!(byte_size(64 << 10), "64 KiB");
        assert_eq!(byte_size(1_800_000_000), "1.7 GiB");
    }

    #[test]
    fn the_body_is_read_only_as_far_as_the_expectations_need_it() {
        let status = HttpExpect { status: Some(200), ..Default::default() };
        assert_eq!(body_need(&status, 200), BodyNeed::Nothing);
        assert_eq!(body_need(&status, 404), BodyNeed::Shown);
        assert_eq!(body_need(&HttpExpect::default(), 204), BodyNeed::Nothing);
        let contains = HttpExpect { body_contains: Some("ok".into()), ..Default::default() };
        assert_eq!(body_need(&contains, 200), BodyNeed::Checked);
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
