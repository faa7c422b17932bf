//! An `http` step: in, its entry in the file and the scenario's containers; out, an [`HttpStep`] with its
//! target (through a published port, or from another container inside the network), its body (JSON, raw,
//! form, multipart), its cookies and redirects, its checked expectations and the values it saves. Also
//! the values an `exec` saves, which take the same form.

use std::collections::HashSet;
use std::path::PathBuf;

use super::DEFAULT_HTTP_TIMEOUT;
use super::planner::{Planner, loc};
use super::{
    Body, Capture, CaptureSource, Comparison, Cookies, FileContent, HttpExpect, HttpStep, JsonExpectation, JsonTest,
    Part, PartValue, Pattern, PlannedContainer, Redirects, Step,
};
use crate::scenario::error::{Loc, ScenarioErrorKind};
use crate::scenario::model::*;

/// The most of a file a multipart body sends: it is read into memory when the step runs.
pub const MAX_UPLOAD_BYTES: u64 = 16 << 20;

/// The keys of a JSON test; a mapping of only these keys tests the nodes instead of being compared.
const JSON_TESTS: [&str; 7] = ["exists", "count", "lt", "le", "gt", "ge", "equals"];

/// What produced the output a capture reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CaptureFrom {
    Answer,
    Command,
}

impl Planner<'_> {
    pub(super) fn http_step(
        &mut self,
        h: &HttpStepSpec,
        containers: &[PlannedContainer],
        names: &[String],
        running: &HashSet<String>,
        at: Option<Loc>,
    ) -> Option<Step> {
        let from = match &h.from {
            Some(from) => {
                let (from, from_at) = self.container_name(from, names)?;
                self.require_running(&from, from_at, running, "http ... from");
                Some((from, from_at))
            }
            None => None,
        };
        let container = self.http_target(h, containers, names, from.as_ref(), at)?;
        if !container.is_empty() {
            self.require_running(&container, at, running, "http");
        }
        let method = match &h.method {
            Some(m) => {
                let upper = m.value.trim().to_ascii_uppercase();
                if upper.is_empty() || !upper.chars().all(|c| c.is_ascii_alphabetic()) {
                    self.error(loc(m), ScenarioErrorKind::InvalidMethod(m.value.clone()));
                }
                upper
            }
            None => "GET".to_owned(),
        };
        let body = self.http_body(h, at);
        let path = self.text(&h.path, at);
        // A path that starts with a saved value (`${next}`, a `Location` saved before) is checked when the
        // step runs.
        if !path.starts_with('/') && !path.starts_with("${") {
            self.error(at, ScenarioErrorKind::Invalid(format!("the path `{path}` must start with `/`")));
        }
        let headers = h.headers.iter().map(|(k, v)| (k.clone(), self.text(v, at))).collect();
        let expect = self.http_expect(&h.expect, at);
        let save = self.captures(&h.save, CaptureFrom::Answer);
        Some(Step::Http(Box::new(HttpStep {
            container,
            port: h.port.value,
            from: from.map(|(from, _)| from),
            method,
            path,
            headers,
            body,
            cookies: if h.cookies { Cookies::Session } else { Cookies::Without },
            redirects: if h.follow_redirects { Redirects::Follow } else { Redirects::Return },
            timeout: self.duration(&h.timeout, DEFAULT_HTTP_TIMEOUT),
            expect,
            save,
        })))
    }

    /// The container the request goes to. From the host it must publish the port; from another
    /// container it is reached by name on the scenario's network, published or not. Empty when that
    /// was reported, so that the rest of the step is still checked.
    fn http_target(
        &mut self,
        h: &HttpStepSpec,
        containers: &[PlannedContainer],
        names: &[String],
        from: Option<&(String, Option<Loc>)>,
        at: Option<Loc>,
    ) -> Option<String> {
        let port = h.port.value;
        if let Some(c) = &h.container {
            let (c, c_at) = self.container_name(c, names)?;
            match from {
                Some((from, _)) if *from == c => self.error(
                    c_at,
                    ScenarioErrorKind::Invalid(format!(
                        "the request goes from `{from}` to `{c}` itself: `from` names another container, the client"
                    )),
                ),
                Some(_) => {}
                None => {
                    if let Some(planned) = containers.iter().find(|p| p.name == c) {
                        self.require_port(port, loc(&h.port), &planned.ports);
                    }
                }
            }
            return Some(c);
        }
        let others: Vec<&PlannedContainer> =
            containers.iter().filter(|c| from.is_none_or(|(from, _)| *from != c.name)).collect();
        let publishing: Vec<&str> =
            others.iter().filter(|c| c.ports.contains(&port)).map(|c| c.name.as_str()).collect();
        match (from, publishing.as_slice(), others.as_slice()) {
            (_, [one], _) => Some((*one).to_owned()),
            // From inside the network, the one other container is the one meant.
            (Some(_), [], [one]) => Some(one.name.clone()),
            // The stack's services are not known before compose reads its files: say which one is meant.
            (None, [], _) if self.open_names => {
                if self.compose_refused {
                    return Some(String::new());
                }
                self.error(
                    loc(&h.port),
                    ScenarioErrorKind::Invalid(format!(
                        "no container of the scenario publishes port {port}, and the compose stack's services \
                         cannot be read before it runs: name the service with `container:`"
                    )),
                );
                Some(String::new())
            }
            (None, [], _) => {
                self.error(loc(&h.port), ScenarioErrorKind::PortNotPublished { port });
                Some(String::new())
            }
            (Some((from, _)), [], _) => {
                self.error(
                    at,
                    ScenarioErrorKind::Invalid(format!(
                        "say which container the request from `{from}` goes to, with `container:`"
                    )),
                );
                Some(String::new())
            }
            (_, many, _) => {
                let containers = many.join(", ");
                self.error(at, ScenarioErrorKind::AmbiguousPort { port, containers });
                Some(String::new())
            }
        }
    }

    fn http_body(&mut self, h: &HttpStepSpec, at: Option<Loc>) -> Option<Body> {
        let given: Vec<&str> = [
            ("json", h.json.is_some()),
            ("body", h.body.is_some()),
            ("form", h.form.is_some()),
            ("multipart", h.multipart.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, given)| given.then_some(key))
        .collect();
        if given.len() > 1 {
            let keys = given.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(" and ");
            self.error(at, ScenarioErrorKind::Invalid(format!("a request has one body: give one of {keys}")));
            return None;
        }
        if let Some(json) = &h.json {
            return Some(Body::Json(self.json_text(json, at)));
        }
        if let Some(raw) = &h.body {
            return Some(Body::Raw(self.text(raw, at)));
        }
        if let Some(form) = &h.form {
            let mut fields = Vec::new();
            for (name, values) in form {
                for value in &values.0 {
                    fields.push((name.clone(), self.text(value, at)));
                }
            }
            return Some(Body::Form(fields));
        }
        let multipart = h.multipart.as_ref()?;
        let mut parts = Vec::new();
        for (name, value) in multipart {
            let part_at = loc(value).or(at);
            let value = match &value.value {
                MultipartValue::Text(text) => PartValue::Text(self.text(text, part_at)),
                MultipartValue::File(file) => self.file_part(name, file, part_at)?,
            };
            parts.push(Part { name: name.clone(), value });
        }
        Some(Body::Multipart(parts))
    }

    fn file_part(&mut self, field: &str, file: &FilePartSpec, at: Option<Loc>) -> Option<PartValue> {
        let content = match (&file.path, &file.content) {
            (Some(path), None) => {
                let path_at = loc(path).or(at);
                let text = self.var(&path.value, path_at);
                let real = self.confined_path(&text, path_at)?;
                self.upload_file(&text, &real, path_at)?;
                FileContent::Path(real)
            }
            (None, Some(content)) => FileContent::Inline(self.text(content, at)),
            _ => {
                self.error(
                    at,
                    ScenarioErrorKind::Invalid(
                        "a file part takes one of `path` (a file below the scenario's folder) and `content`".into(),
                    ),
                );
                return None;
            }
        };
        let filename = match (&file.filename, &content) {
            (Some(name), _) => self.var(name, at),
            (None, FileContent::Path(real)) => {
                real.file_name().map_or_else(|| field.to_owned(), |n| n.to_string_lossy().into_owned())
            }
            (None, FileContent::Inline(_)) => field.to_owned(),
        };
        let content_type = file.content_type.as_ref().map(|t| self.var(t, at));
        if let Some(written) = &content_type
            && written.parse::<mime_guess::mime::Mime>().is_err()
        {
            let why = format!("`{written}` is not a content type such as `text/plain`");
            self.error(at, ScenarioErrorKind::Invalid(why));
        }
        Some(PartValue::File { content, filename, content_type })
    }

    /// A file to upload: a regular file, small enough to hold in memory.
    fn upload_file(&mut self, written: &str, real: &PathBuf, at: Option<Loc>) -> Option<()> {
        match std::fs::metadata(real) {
            Ok(meta) if !meta.is_file() => {
                self.error(at, ScenarioErrorKind::Invalid(format!("`{written}` is not a file")));
                None
            }
            Ok(meta) if meta.len() > MAX_UPLOAD_BYTES => {
                let why = format!(
                    "`{written}` is {} bytes; a file sent in a multipart body is at most {} MiB",
                    meta.len(),
                    MAX_UPLOAD_BYTES >> 20
                );
                self.error(at, ScenarioErrorKind::Invalid(why));
                None
            }
            Ok(_) => Some(()),
            Err(err) => {
                self.error(at, ScenarioErrorKind::Invalid(format!("`{written}` cannot be read: {err}")));
                None
            }
        }
    }

    fn http_expect(&mut self, e: &HttpExpectSpec, at: Option<Loc>) -> HttpExpect {
        if let Some(status) = e.status
            && !(100..=599).contains(&status)
        {
            self.error(at, ScenarioErrorKind::Invalid(format!("{status} is not an HTTP status")));
        }
        let body_regex = e.body_regex.as_ref().and_then(|r| {
            let text = self.text(&r.value, loc(r));
            match Pattern::new(&text) {
                Ok(pattern) => Some(pattern),
                Err(err) => {
                    self.error(loc(r), ScenarioErrorKind::InvalidRegex(err.to_string()));
                    None
                }
            }
        });
        let mut json = Vec::new();
        for (path_text, value) in &e.json.0 {
            let text = path_text.value.clone();
            let path_at = loc(path_text).or(at);
            let tests = self.json_tests(value, path_at);
            match serde_json_path::JsonPath::parse(&text) {
                Ok(path) => json.push(JsonExpectation { path_text: text, path, tests }),
                Err(err) => {
                    self.error(path_at, ScenarioErrorKind::InvalidJsonPath { path: text, reason: err.to_string() })
                }
            }
        }
        HttpExpect {
            status: e.status,
            headers: e.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), self.text(v, at))).collect(),
            body_contains: self.text_opt(&e.body_contains, at),
            body_not_contains: self.text_opt(&e.body_not_contains, at),
            body_regex,
            json,
            max_time: e.max_time.as_ref().map(|t| self.duration(&Some(t.clone()), DEFAULT_HTTP_TIMEOUT)),
        }
    }

    /// The tests of one JSONPath: a plain value is compared; a mapping of test keys only
    /// (`{ exists: true }`, `{ gt: 0, lt: 10 }`) tests the nodes.
    fn json_tests(&mut self, value: &serde_json::Value, at: Option<Loc>) -> Vec<JsonTest> {
        let tests = match value {
            serde_json::Value::Object(map)
                if !map.is_empty() && map.keys().all(|k| JSON_TESTS.contains(&k.as_str())) =>
            {
                map
            }
            other => return vec![JsonTest::Equals(self.json_text(other, at))],
        };
        let mut planned = Vec::new();
        for (key, value) in tests {
            let comparison = match key.as_str() {
                "lt" => Some(Comparison::Less),
                "le" => Some(Comparison::LessOrEqual),
                "gt" => Some(Comparison::Greater),
                "ge" => Some(Comparison::GreaterOrEqual),
                _ => None,
            };
            let test = match (key.as_str(), value, comparison) {
                ("exists", serde_json::Value::Bool(exists), _) => JsonTest::Exists(*exists),
                ("count", serde_json::Value::Number(n), _) if n.as_u64().is_some() => {
                    JsonTest::Count(n.as_u64().unwrap_or_default())
                }
                ("equals", value, _) => JsonTest::Equals(self.json_text(value, at)),
                (_, serde_json::Value::Number(n), Some(comparison)) => JsonTest::Compare(comparison, n.clone()),
                (key, value, _) => {
                    let wanted = match key {
                        "exists" => "`true` or `false`",
                        "count" => "a whole number of 0 or more",
                        _ => "a number",
                    };
                    self.error(at, ScenarioErrorKind::Invalid(format!("`{key}: {value}`: `{key}` takes {wanted}")));
                    continue;
                }
            };
            planned.push(test);
        }
        planned
    }

    /// The values a step saves; `from` says whether they come from an HTTP answer or a command.
    pub(super) fn captures(&mut self, save: &SpannedKeyMap<Spanned<CaptureSpec>>, from: CaptureFrom) -> Vec<Capture> {
        let mut captures = Vec::new();
        for (name, spec) in &save.0 {
            let at = loc(spec).or(loc(name));
            let Some(name) = self.save_name(name) else { continue };
            let source = match (&spec.value, from) {
                (CaptureSpec::Json(path), CaptureFrom::Answer) => match serde_json_path::JsonPath::parse(path) {
                    Ok(parsed) => CaptureSource::Json { path_text: path.clone(), path: parsed },
                    Err(err) => {
                        let reason = err.to_string();
                        self.error(at, ScenarioErrorKind::InvalidJsonPath { path: path.clone(), reason });
                        continue;
                    }
                },
                (CaptureSpec::Cookie(cookie), CaptureFrom::Answer) if !cookie.trim().is_empty() => {
                    CaptureSource::Cookie(cookie.trim().to_owned())
                }
                (CaptureSpec::Header(header), CaptureFrom::Answer) if !header.trim().is_empty() => {
                    CaptureSource::Header(header.trim().to_ascii_lowercase())
                }
                (CaptureSpec::Regex(pattern), _) => match regex::Regex::new(pattern) {
                    Ok(regex) => CaptureSource::Regex(regex),
                    Err(err) => {
                        self.error(at, ScenarioErrorKind::InvalidRegex(err.to_string()));
                        continue;
                    }
                },
                (CaptureSpec::Body, CaptureFrom::Answer) => CaptureSource::Body,
                (CaptureSpec::Status, CaptureFrom::Answer) => CaptureSource::Status,
                (CaptureSpec::Stdout, CaptureFrom::Command) => CaptureSource::Stdout,
                (CaptureSpec::Cookie(_) | CaptureSpec::Header(_), CaptureFrom::Answer) => {
                    self.error(at, ScenarioErrorKind::Invalid("name the cookie or header to save".into()));
                    continue;
                }
                (_, CaptureFrom::Answer) => {
                    let why = "an `http` step saves `{ json: ... }`, `{ cookie: ... }`, `{ header: ... }`, \
                               `{ regex: ... }`, `body` or `status` (`stdout` is a command's)";
                    self.error(at, ScenarioErrorKind::Invalid(why.into()));
                    continue;
                }
                (_, CaptureFrom::Command) => {
                    let why = "an `exec` step saves `stdout`, or `{ regex: ... }` over it";
                    self.error(at, ScenarioErrorKind::Invalid(why.into()));
                    continue;
                }
            };
            captures.push(Capture { name, source });
        }
        captures
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The messages `seatrial check` gives for `steps`, run against a busybox `web` publishing 8080 and a
    /// `client` publishing nothing.
    fn problems(steps: &str) -> Vec<String> {
        let text = format!(
            "scenarios:\n  - name: s\n    containers:\n      web: {{ image: \"b:1\", ports: [8080] }}\n      \
             client: {{ image: \"b:1\" }}\n    steps:\n{steps}"
        );
        crate::scenario::check_text(Path::new("s.yaml"), &text).iter().map(|p| p.kind.to_string()).collect()
    }

    #[test]
    fn a_request_has_one_body_and_json_tests_take_what_they_need() {
        assert_eq!(
            problems("      - http: { port: 8080, body: x, form: { a: b } }\n"),
            vec!["a request has one body: give one of `body` and `form`"]
        );
        assert_eq!(
            problems(
                "      - http: { port: 8080, expect: { json: { \"$.a\": { count: -1, gt: x, exists: true } } } }\n"
            ),
            vec!["`count: -1`: `count` takes a whole number of 0 or more", "`gt: \"x\"`: `gt` takes a number",]
        );
        // Keys that are not all tests make an object to compare.
        assert!(
            problems("      - http: { port: 8080, expect: { json: { \"$.a\": { count: 1, x: 2 } } } }\n").is_empty()
        );
    }

    #[test]
    fn from_names_another_container_and_reaches_unpublished_ports() {
        assert!(problems("      - http: { from: client, port: 9000 }\n").is_empty(), "to `web`, the one other");
        assert_eq!(
            problems("      - http: { from: web, container: web, port: 8080 }\n"),
            vec!["the request goes from `web` to `web` itself: `from` names another container, the client"]
        );
        assert_eq!(
            problems("      - http: { port: 9000 }\n"),
            vec!["no container of this scenario publishes port 9000"]
        );
    }

    #[test]
    fn saves_fit_their_step() {
        assert_eq!(
            problems("      - exec: { container: web, cmd: [id], save: { x: { cookie: a } } }\n"),
            vec!["an `exec` step saves `stdout`, or `{ regex: ... }` over it"]
        );
        assert_eq!(
            problems("      - http: { port: 8080, save: { x-y: body, z: { json: \"$[\" } } }\n").len(),
            2,
            "a name that is not a word, and a JSONPath that does not parse"
        );
        assert!(
            problems(
                "      - http: { port: 8080, save: { id: status } }\n      - http: { port: 8080, path: \"/${id}\" }\n"
            )
            .is_empty()
        );
    }
}
