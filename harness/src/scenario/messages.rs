//! The YAML library's errors in the words of the person who wrote the file: which key, what it takes, an
//! example of the right form, and what was found instead. No library vocabulary (`scalar`, `mapping
//! start`, `Option<String>`, `budget`) reaches a user: `harness/tests/check.rs` fails when one does.

use super::error::{Loc, ScenarioErrorKind};

/// What a key of the scenario format takes, and an example of the right form.
pub fn what_key_takes(key: &str) -> Option<(&'static str, &'static str)> {
    Some(match key {
        "images" => ("images by name, as a mapping", "images: { app: { build: ./app } }"),
        "scenarios" => {
            ("a list of scenarios", "scenarios: [{ name: it answers, containers: { web: { image: app } } }]")
        }
        "build" => (
            "the build context folder, or a mapping with `context:`",
            "build: { context: ./app, dockerfile: Dockerfile }",
        ),
        "context" => ("a folder, relative to the scenario file", "context: ../fixtures/app"),
        "dockerfile" => ("a file name inside the context", "dockerfile: Dockerfile.prod"),
        "args" | "env" => {
            ("names and values, as a mapping (`env` also takes a list of `KEY=VALUE`)", "env: { DEBUG: \"0\" }")
        }
        "target" => ("the name of a stage of the Dockerfile", "target: runtime"),
        "name" => ("a name, as text", "name: notes survive a restart"),
        "containers" => ("containers by name, as a mapping", "containers: { web: { image: app, ports: [8000] } }"),
        "steps" => ("a list of steps, each a mapping with one step kind", "steps: [{ http: { port: 8000 } }]"),
        "image" => ("an image: a name from `images:`, or any image the engine has", "image: nginx:1.27"),
        "ports" => ("a list of container ports", "ports: [8000]"),
        "port" | "tcp" => ("one container port, a number", "port: 8000"),
        "volumes" => {
            ("a list of `name:/path` (a named volume) or `./dir:/path` (a folder)", "volumes: [\"data:/data\"]")
        }
        "command" | "entrypoint" => {
            ("a command: a list of words, or one string split as a shell would", "command: [python, app.py]")
        }
        "cmd" | "exec" => {
            ("a command as a list of words (no shell; write `[sh, -c, \"...\"]` for one)", "cmd: [ls, /data]")
        }
        "user" => ("a user name or id", "user: \"1000\""),
        "workdir" => ("a path in the container", "workdir: /app"),
        "ready" => {
            ("a mapping with one of `http`, `log`, `exec`, `tcp`", "ready: { http: { port: 8000, path: /healthz } }")
        }
        "http" => ("a mapping with at least `port:`", "http: { port: 8000, path: /notes, expect: { status: 200 } }"),
        "logs" => {
            ("a mapping with `container:` and `expect:`", "logs: { container: web, expect: { contains: started } }")
        }
        "restart" | "recreate" | "start" => ("a container's name", "restart: web"),
        "stop" => {
            ("a container's name, or a mapping with `container:` and `within:`", "stop: { container: web, within: 5s }")
        }
        "container" => ("a container's name", "container: web"),
        "expect" => ("a mapping of what must hold", "expect: { status: 200, body_contains: hello }"),
        "headers" => ("names and values, as a mapping", "headers: { accept: application/json }"),
        "json" => (
            "a JSON value (a mapping for a request body; JSONPath -> value under `expect:`)",
            "json: { \"$[0].text\": hello }",
        ),
        "status" => ("one HTTP status, a number", "status: 201"),
        "method" => ("an HTTP method", "method: POST"),
        "path" => ("a request path that starts with `/`", "path: /notes"),
        "body" | "body_contains" | "body_regex" | "contains" | "not_contains" | "stdout_contains"
        | "stderr_contains" | "log" | "feedback" => ("text", "body_contains: hello"),
        "exit" => ("an exit code, a whole number", "exit: 0"),
        "points" => ("a whole number of points, 0 or more", "points: 2"),
        "hidden" | "ignore" => ("`true` or `false`", "hidden: true"),
        "timeout" | "within" | "sleep" | "stop_grace_period" => ("a duration", "timeout: 30s"),
        "stop_signal" => ("a signal's name or number", "stop_signal: SIGINT"),
        _ => return None,
    })
}

/// The key whose value starts at `offset` of `text`: the word before the nearest `:` that precedes it
/// (on the same line, or ending the line before for a block value), skipping list dashes.
pub fn key_before(text: &str, offset: usize) -> Option<String> {
    let before = text.get(..offset)?.trim_end_matches([' ', '\t', '\n', '\r', '-', '[', '{', ',']);
    let before = before.strip_suffix(':')?;
    let key: String =
        before.chars().rev().take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '<')).collect();
    let key: String = key.chars().rev().collect();
    let key = key.trim_start_matches('-').trim_matches('"').to_owned();
    (!key.is_empty()).then_some(key)
}

/// The byte offset of a 1-based line and column.
pub fn offset_of(text: &str, loc: Loc) -> Option<usize> {
    let line = usize::try_from(loc.line).ok()?.checked_sub(1)?;
    let start = if line == 0 { 0 } else { text.match_indices('\n').nth(line - 1)?.0 + 1 };
    let line_text = &text[start..text[start..].find('\n').map_or(text.len(), |i| start + i)];
    let column = usize::try_from(loc.column).ok()?.saturating_sub(1);
    Some(start + line_text.char_indices().nth(column).map_or(line_text.len(), |(i, _)| i))
}

/// What kind of value was written at `offset`, in words.
pub fn value_found(text: &str, offset: usize) -> String {
    let rest = text.get(offset..).unwrap_or_default();
    let word: String = rest.chars().take_while(|c| !matches!(c, ',' | '}' | ']' | '\n' | '#')).collect();
    let word = word.trim();
    match rest.chars().next() {
        Some('[') => "a list".to_owned(),
        Some('{') => "a mapping".to_owned(),
        None | Some('}' | ']' | ',' | '\n' | '#') => "nothing (the value is empty)".to_owned(),
        _ if word.is_empty() || word == "~" || word == "null" => "nothing (the value is empty)".to_owned(),
        _ if word.parse::<f64>().is_ok() => format!("the number {word}"),
        _ if word.ends_with(':') || word.contains(": ") => "a mapping".to_owned(),
        _ => format!("the text `{}`", word.trim_matches(['"', '\'']).chars().take(60).collect::<String>()),
    }
}

/// What the library expected, in words, when the key is not one we know.
fn expected_in_words(library: &str) -> &'static str {
    if library.contains("mapping") {
        "a mapping (`key: value` pairs)"
    } else if library.contains("sequence") {
        "a list"
    } else if library.contains("null") {
        "a value"
    } else {
        "a single value (text or a number)"
    }
}

/// The user's words for a value of the wrong type at `loc`. `library` is the library's message, used
/// only to tell what it expected when the key is unknown to us.
pub fn wrong_type(text: &str, loc: Option<Loc>, library: &str) -> ScenarioErrorKind {
    // The parser may place an empty value at the colon before it.
    let offset = loc.and_then(|loc| offset_of(text, loc)).map(|o| match text[o..].strip_prefix(':') {
        Some(after) => o + 1 + (after.len() - after.trim_start_matches([' ', '\t']).len()),
        None => o,
    });
    let found = offset.map_or_else(|| "a value of another kind".to_owned(), |o| value_found(text, o));
    let key = offset.and_then(|o| key_before(text, o));
    match key.as_deref().and_then(|k| what_key_takes(k).map(|t| (k, t))) {
        Some((key, (takes, example))) => ScenarioErrorKind::WrongType {
            key: key.to_owned(),
            takes: takes.to_owned(),
            found,
            example: Some(example.to_owned()),
        },
        None => ScenarioErrorKind::WrongType {
            key: key.unwrap_or_else(|| "this value".to_owned()),
            takes: expected_in_words(library).to_owned(),
            found,
            example: None,
        },
    }
}

/// `key` given twice in one mapping: where the first one is, searching back from the second at `loc`.
pub fn first_of_duplicate(text: &str, key: &str, loc: Option<Loc>) -> Option<Loc> {
    let loc = loc?;
    let lines: Vec<&str> = text.lines().collect();
    let second = usize::try_from(loc.line).ok()?.checked_sub(1)?;
    let line = lines.get(second)?;
    let column = usize::try_from(loc.column).ok()?.saturating_sub(1);
    // The same key earlier on the same line (a flow mapping), else at the same indentation above it.
    if let Some(at) = line.get(..column.min(line.len())).and_then(|head| find_key(head, key)) {
        return Some(Loc { line: loc.line, column: u32::try_from(at + 1).ok()? });
    }
    let indent = line.len() - line.trim_start().len();
    for (number, above) in lines[..second].iter().enumerate().rev() {
        let above_indent = above.len() - above.trim_start().len();
        if above.trim().is_empty() || above.trim_start().starts_with('#') {
            continue;
        }
        if above_indent < indent && !above.trim_start().starts_with('-') {
            break;
        }
        if above_indent == indent && above.trim_start().starts_with(&format!("{key}:")) {
            return Some(Loc { line: u32::try_from(number + 1).ok()?, column: u32::try_from(indent + 1).ok()? });
        }
    }
    None
}

fn find_key(head: &str, key: &str) -> Option<usize> {
    head.match_indices(&format!("{key}:")).map(|(i, _)| i).find(|&i| i == 0 || head[..i].ends_with([' ', '{', ',']))
}

/// The library's message for an error it could not place in a value of ours, in the user's words.
pub fn syntax(library: &str, text: &str) -> ScenarioErrorKind {
    let lower = library.to_ascii_lowercase();
    let said = if text.trim().is_empty() || text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        "the file is empty: a scenario file holds `scenarios:` (and `images:` to build images), see \
         docs/scenario-format.md"
            .to_owned()
    } else if lower.contains("multiple") && lower.contains("document") {
        "a second YAML document starts here (after a `---` line): a scenario file is one document; list every \
         scenario under one `scenarios:`"
            .to_owned()
    } else if lower.contains("budget") {
        let what = if lower.contains("depth") {
            "it nests values too deeply"
        } else if lower.contains("alias") {
            "it uses too many aliases (`*name`)"
        } else {
            "it holds too many values"
        };
        format!(
            "this file is too big for a scenario file: {what} (scenario files are a few kilobytes; at most 50,000 \
             values, 1,000 aliases, 64 levels)"
        )
    } else if lower.contains("merge") {
        "a merge (`<<: *name`) must name a mapping (or a list of mappings) defined with `&name`".to_owned()
    } else if lower.contains("unknown anchor") || lower.contains("undefined alias") {
        "this alias (`*name`) names no anchor (`&name`) defined before it".to_owned()
    } else if lower.contains("unclosed") {
        format!("this bracket is never closed ({})", bracket_name(&lower))
    } else if lower.contains("tab") {
        "a tab is used for indentation here: YAML indents with spaces".to_owned()
    } else if lower.contains("end of input") || lower.contains("end of stream") {
        "the file ends in the middle of a value: is a bracket or a quote left open?".to_owned()
    } else if lower.contains("did not find expected key") || lower.contains("mapping values are not allowed") {
        "the indentation is off here: this line does not line up with the keys of the mapping it belongs to \
         (YAML nests by indentation, with spaces)"
            .to_owned()
    } else if lower.contains("duplicate") {
        "a key is given twice in this mapping".to_owned()
    } else {
        // A YAML syntax error: the parser's own description of the place, without its vocabulary.
        format!(
            "this is not valid YAML here ({})",
            library.replace("scalar", "value").replace("mapping", "`key: value` pairs").replace("sequence", "list")
        )
    };
    ScenarioErrorKind::Yaml(said)
}

fn bracket_name(lower: &str) -> &'static str {
    if lower.contains('{') {
        "a `{` needs its `}`"
    } else if lower.contains('[') {
        "a `[` needs its `]`"
    } else {
        "it needs its closing bracket"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_key_of_a_value() {
        let text = "a:\n  command: python app.py\n  ports: [1]\n  - stop: web\n";
        assert_eq!(key_before(text, text.find("python").unwrap()).as_deref(), Some("command"));
        assert_eq!(key_before(text, text.find("[1]").unwrap()).as_deref(), Some("ports"));
        assert_eq!(key_before(text, text.find("web").unwrap()).as_deref(), Some("stop"));
    }

    #[test]
    fn says_what_was_found() {
        assert_eq!(value_found("x: [1]", 3), "a list");
        assert_eq!(value_found("x: }", 3), "nothing (the value is empty)");
        assert_eq!(value_found("x: 8000", 3), "the number 8000");
        assert_eq!(value_found("x: python app.py\n", 3), "the text `python app.py`");
    }

    #[test]
    fn finds_the_first_of_a_duplicate_key() {
        let text = "web:\n  image: a\n  ports: [1]\n  ports: [2]\n";
        assert_eq!(
            first_of_duplicate(text, "ports", Some(Loc { line: 4, column: 3 })),
            Some(Loc { line: 3, column: 3 })
        );
        let flow = "web: { ports: [1], ports: [2] }\n";
        assert_eq!(
            first_of_duplicate(flow, "ports", Some(Loc { line: 1, column: 20 })),
            Some(Loc { line: 1, column: 8 })
        );
    }
}
