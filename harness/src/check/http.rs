//! HTTP answers against `expect:`: status, headers, body text (present and absent), body regex, JSONPath
//! values and tests, and the answer's time. A body may be only its first part (seatrial reads a bounded
//! amount): an expectation found there holds, and one that is not says that the rest was never read.

use std::fmt;
use std::time::Duration;

use super::Mismatch;
use crate::scenario::plan::{HttpExpect, JsonExpectation, JsonTest};
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
    /// From sending the request to the body read (redirects followed included).
    pub took: Duration,
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
    // `max_time` times the whole answer, so its body is read too.
    let looks_into = expect.body_contains.is_some()
        || expect.body_not_contains.is_some()
        || expect.body_regex.is_some()
        || !expect.json.is_empty()
        || expect.max_time.is_some();
    if looks_into {
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
        if !found.iter().any(|v| *v == value.as_str()) {
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
    if let Some(text) = &expect.body_not_contains
        && let Some(at) = answer.body.find(text.as_str())
    {
        mismatches
            .push(Mismatch::new(format!("body without {text:?}"), format!("found in {}", around(&answer.body, at))));
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
                    json_tests(expectation, &document, &first_showing, &mut mismatches);
                }
            }
        }
    }
    if let Some(max) = expect.max_time
        && answer.took > max
    {
        mismatches
            .push(Mismatch::new(format!("an answer within {max:?}"), format!("it took {}ms", answer.took.as_millis())));
    }
    mismatches
}

/// The text around byte `at` of `body`, for a failure that found what must not be there.
fn around(body: &str, at: usize) -> String {
    let start = body[..at].char_indices().rev().nth(60).map_or(0, |(i, _)| i);
    let shown: String = body[start..].chars().take(160).collect();
    let more = if start > 0 { "..." } else { "" };
    format!("{more}{}", excerpt(&shown, 160))
}

/// Each test of one JSONPath against the document; what fails is added to `mismatches`.
fn json_tests(
    expectation: &JsonExpectation,
    document: &serde_json::Value,
    first_showing: &dyn Fn() -> Option<String>,
    mismatches: &mut Vec<Mismatch>,
) {
    let path = &expectation.path_text;
    let nodes = expectation.path.query(document).all();
    let selects_nothing = || match first_showing() {
        Some(shown) => format!("{path} selects nothing in {shown}"),
        None => format!("{path} selects nothing in the body"),
    };
    let selects_many = |n: usize| format!("{path} selects {n} values, not one");
    for test in &expectation.tests {
        match test {
            JsonTest::Equals(value) => {
                let expected = format!("{path} = {}", value.value);
                match nodes.as_slice() {
                    [one] if **one == value.value => {}
                    [one] => mismatches.push(Mismatch::new(expected, format!("{path} = {one}"))),
                    [] => mismatches.push(Mismatch::new(expected, selects_nothing())),
                    many => mismatches.push(Mismatch::new(expected, selects_many(many.len()))),
                }
            }
            JsonTest::Exists(true) if nodes.is_empty() => {
                mismatches.push(Mismatch::new(format!("{path} exists"), selects_nothing()));
            }
            JsonTest::Exists(false) if !nodes.is_empty() => {
                let actual = match nodes.as_slice() {
                    [one] => {
                        let value = one.to_string();
                        let cut = if value.chars().count() > 200 { "..." } else { "" };
                        format!("{path} = {}{cut}", value.chars().take(200).collect::<String>())
                    }
                    many => format!("{path} selects {} values", many.len()),
                };
                mismatches.push(Mismatch::new(format!("{path} selects nothing"), actual));
            }
            JsonTest::Exists(_) => {}
            JsonTest::Count(count) if nodes.len() as u64 != *count => {
                let plural = if *count == 1 { "" } else { "s" };
                let mut actual = format!("it selects {}", nodes.len());
                // The one list a path without `[*]` selects is one value: its items are what was meant.
                if let [serde_json::Value::Array(items)] = nodes.as_slice() {
                    actual.push_str(&format!(": one list of {} items (`{path}[*]` selects its items)", items.len()));
                }
                mismatches.push(Mismatch::new(format!("{path} selects {count} value{plural}"), actual));
            }
            JsonTest::Count(_) => {}
            JsonTest::Compare(comparison, number) => {
                let expected = format!("{path} {} {number}", comparison.symbol());
                let wanted = number.as_f64().unwrap_or(f64::NAN);
                match nodes.as_slice() {
                    [serde_json::Value::Number(found)] => {
                        let found_f64 = found.as_f64().unwrap_or(f64::NAN);
                        let holds = match comparison {
                            crate::scenario::plan::Comparison::Less => found_f64 < wanted,
                            crate::scenario::plan::Comparison::LessOrEqual => found_f64 <= wanted,
                            crate::scenario::plan::Comparison::Greater => found_f64 > wanted,
                            crate::scenario::plan::Comparison::GreaterOrEqual => found_f64 >= wanted,
                        };
                        if !holds {
                            mismatches.push(Mismatch::new(expected, format!("{path} = {found}")));
                        }
                    }
                    [other] => mismatches.push(Mismatch::new(expected, format!("{path} = {other}, not a number"))),
                    [] => mismatches.push(Mismatch::new(expected, selects_nothing())),
                    many => mismatches.push(Mismatch::new(expected, selects_many(many.len()))),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::plan::{Comparison, JsonExpectation, JsonText, Pattern, Text};

    #[test]
    fn a_body_reads_as_it_came_and_is_shown_once() {
        let expect = HttpExpect { status: Some(200), body_contains: Some(Text::fixed("hello")), ..Default::default() };
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
            took: Duration::from_millis(5),
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
                tests: vec![JsonTest::Equals(JsonText::fixed(serde_json::json!("hello")))],
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
        let contains = |text: &str| HttpExpect { body_contains: Some(Text::fixed(text)), ..Default::default() };
        assert!(check_http(&contains("start"), &cut("the start of it", OVER_4_MIB)).is_empty());
        let m = check_http(&contains("the end"), &cut("the start of it", OVER_4_MIB));
        assert_eq!(m[0].actual, "body `the start of it`... (only its first 4 MiB read)");
        let long = "x".repeat(400);
        let m = check_http(&HttpExpect { status: Some(404), ..Default::default() }, &cut(&long, OVER_4_MIB));
        assert_eq!(m[0].actual, format!("status 200, body `{}`... (only its first 4 MiB read)", "x".repeat(300)));
    }

    #[test]
    fn a_regex_holds_on_a_cut_body_only_where_the_cut_cannot_change_it() {
        let regex = |pattern: &str| HttpExpect {
            body_regex: Some(Pattern::new(&Text::fixed(pattern)).unwrap()),
            ..Default::default()
        };
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
                tests: vec![JsonTest::Equals(JsonText::fixed(serde_json::json!(1)))],
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
        let contains = HttpExpect { body_contains: Some(Text::fixed("ok")), ..Default::default() };
        assert_eq!(body_need(&contains, 200), BodyNeed::Checked);
    }

    #[test]
    fn headers_and_body() {
        let expect = HttpExpect {
            headers: vec![("content-type".into(), Text::fixed("text/html"))],
            body_contains: Some(Text::fixed("ok")),
            body_regex: Some(Pattern::new(&Text::fixed("^o")).unwrap()),
            ..Default::default()
        };
        let m = check_http(&expect, &answer(200, "nope"));
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].actual, "content-type: application/json");
    }

    fn json(path: &str, tests: Vec<JsonTest>) -> HttpExpect {
        let path_text = path.to_owned();
        let path = serde_json_path::JsonPath::parse(path).unwrap();
        HttpExpect { json: vec![JsonExpectation { path_text, path, tests }], ..Default::default() }
    }

    #[test]
    fn json_tests_exist_count_and_compare() {
        let body = answer(200, r#"{"id": 7, "items": [1, 2, 3], "name": "x"}"#);
        assert!(check_http(&json("$.id", vec![JsonTest::Exists(true)]), &body).is_empty());
        assert!(check_http(&json("$.error", vec![JsonTest::Exists(false)]), &body).is_empty());
        let m = check_http(&json("$.name", vec![JsonTest::Exists(false)]), &body);
        assert_eq!(m, vec![Mismatch::new("$.name selects nothing", "$.name = \"x\"")]);
        assert!(check_http(&json("$.items[*]", vec![JsonTest::Count(3)]), &body).is_empty());
        let m = check_http(&json("$.items", vec![JsonTest::Count(3)]), &body);
        assert_eq!(m[0].actual, "it selects 1: one list of 3 items (`$.items[*]` selects its items)");
        let between = vec![
            JsonTest::Compare(Comparison::Greater, 0.into()),
            JsonTest::Compare(Comparison::LessOrEqual, 7.into()),
        ];
        assert!(check_http(&json("$.id", between), &body).is_empty());
        let m = check_http(&json("$.id", vec![JsonTest::Compare(Comparison::Less, 5.into())]), &body);
        assert_eq!(m, vec![Mismatch::new("$.id < 5", "$.id = 7")]);
        let m = check_http(&json("$.name", vec![JsonTest::Compare(Comparison::Less, 5.into())]), &body);
        assert_eq!(m[0].actual, "$.name = \"x\", not a number");
    }

    #[test]
    fn a_text_that_must_not_be_there_is_shown_where_it_is() {
        let expect = HttpExpect { body_not_contains: Some(Text::fixed("Traceback")), ..Default::default() };
        assert!(check_http(&expect, &answer(200, "all good")).is_empty());
        let m = check_http(&expect, &answer(200, "oops\nTraceback (most recent call last):"));
        assert_eq!(m[0].expected, "body without \"Traceback\"");
        assert!(m[0].actual.starts_with("found in `oops\\nTraceback"), "{}", m[0].actual);
        assert_eq!(body_need(&expect, 200), BodyNeed::Checked);
    }

    #[test]
    fn an_answer_slower_than_max_time_fails() {
        let expect = HttpExpect { max_time: Some(Duration::from_millis(200)), ..Default::default() };
        assert!(check_http(&expect, &answer(200, "")).is_empty());
        let slow = HttpAnswer { took: Duration::from_millis(250), ..answer(200, "") };
        assert_eq!(check_http(&expect, &slow), vec![Mismatch::new("an answer within 200ms", "it took 250ms")]);
    }
}
