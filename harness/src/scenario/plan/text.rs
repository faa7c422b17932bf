//! Text of a step that may hold values saved by earlier steps (`/notes/${id}`). Environment variables are
//! filled in when the file is planned; a saved value exists only once the step that saves it has run, so
//! the plan keeps such text as a template, and the step fills it in when it runs ([`Text::fill`]). Text
//! without saved values is final from the start.

use std::fmt;

use crate::scenario::interpolate::Segment;

/// Looks up a value saved by an earlier step.
pub type SavedLookup<'a> = &'a dyn Fn(&str) -> Option<serde_json::Value>;

/// A saved value the text needs and the scenario does not have: the step that saves it did not pass
/// (when grading, later steps run after a failed one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`${{{name}}}` has no value: the step that saves it did not pass")]
pub struct Unsaved {
    pub name: String,
}

/// Text, final or still holding saved values. It reads as a `&str`: the final text, or, before it is
/// filled in, the text as written (`/notes/${id}`), which is what summaries show.
#[derive(Clone, PartialEq, Eq)]
pub struct Text {
    shown: String,
    /// `None`: final.
    template: Option<Vec<Segment>>,
}

/// A saved value as text: a string as it is, anything else as JSON (`3`, `true`, `{"a":1}`).
pub fn value_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The text as it is written in a file: a `$` that would read as the start of a reference (before `{`
/// or `$`, or before a reference) doubled, as the file must write it.
fn written(segments: &[Segment]) -> String {
    let mut out = String::new();
    for (index, segment) in segments.iter().enumerate() {
        match segment {
            Segment::Text(text) => {
                let mut chars = text.chars().peekable();
                while let Some(c) = chars.next() {
                    out.push(c);
                    let next = chars.peek();
                    let before_reference = next.is_none() && index + 1 < segments.len();
                    if c == '$' && (matches!(next, Some('{' | '$')) || before_reference) {
                        out.push('$');
                    }
                }
            }
            Segment::Kept { name, default: None } => out.push_str(&format!("${{{name}}}")),
            Segment::Kept { name, default: Some(default) } => {
                out.push_str(&format!("${{{name}:-{}}}", written(default)));
            }
        }
    }
    out
}

impl Text {
    /// Final text.
    pub fn fixed(text: impl Into<String>) -> Text {
        Text { shown: text.into(), template: None }
    }

    /// Text from interpolated segments: final unless a reference was kept.
    pub fn from_segments(segments: Vec<Segment>) -> Text {
        if segments.iter().all(|s| matches!(s, Segment::Text(_))) {
            let text = segments.into_iter().map(|s| if let Segment::Text(t) = s { t } else { String::new() });
            return Text::fixed(text.collect::<String>());
        }
        Text { shown: written(&segments), template: Some(segments) }
    }

    pub fn as_str(&self) -> &str {
        &self.shown
    }

    /// Whether it still holds saved values.
    pub fn is_template(&self) -> bool {
        self.template.is_some()
    }

    /// The final text, with the saved values in it; each value goes through `encode` first (a regex
    /// escapes it, so that a saved `a.b` matches only itself).
    pub fn fill_with(&self, saved: SavedLookup<'_>, encode: &dyn Fn(&str) -> String) -> Result<Text, Unsaved> {
        let Some(segments) = &self.template else { return Ok(self.clone()) };
        fn render(
            segments: &[Segment],
            saved: SavedLookup<'_>,
            encode: &dyn Fn(&str) -> String,
            out: &mut String,
        ) -> Result<(), Unsaved> {
            for segment in segments {
                match segment {
                    Segment::Text(text) => out.push_str(text),
                    Segment::Kept { name, default } => match (saved(name), default) {
                        (Some(value), _) => out.push_str(&encode(&value_text(&value))),
                        (None, Some(default)) => render(default, saved, encode, out)?,
                        (None, None) => return Err(Unsaved { name: name.clone() }),
                    },
                }
            }
            Ok(())
        }
        let mut out = String::new();
        render(segments, saved, encode, &mut out)?;
        Ok(Text::fixed(out))
    }

    /// The final text, with the saved values in it as they are.
    pub fn fill(&self, saved: SavedLookup<'_>) -> Result<Text, Unsaved> {
        self.fill_with(saved, &|value| value.to_owned())
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.shown
    }
}

/// So that a command's words join as strings do (`cmd.join(" ")`).
impl std::borrow::Borrow<str> for Text {
    fn borrow(&self) -> &str {
        &self.shown
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

/// Shown as the string it reads as, so that `{text:?}` quotes it as it would a `String`.
impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.shown, f)
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Text {
        Text::fixed(text)
    }
}

/// A regular expression that may hold saved values: compiled when planned (the saved values standing
/// in as empty text, so that a mistake is found before the run), and again once they are filled in,
/// each matching only itself.
#[derive(Debug, Clone)]
pub struct Pattern {
    regex: regex::Regex,
    template: Option<Text>,
}

impl Pattern {
    /// Compiles `text`; a template is compiled with its saved values left empty, to check it.
    pub fn new(text: &Text) -> Result<Pattern, regex::Error> {
        if !text.is_template() {
            return Ok(Pattern { regex: regex::Regex::new(text)?, template: None });
        }
        let checked = text.fill_with(&|_| Some(serde_json::Value::String(String::new())), &|v| v.to_owned());
        let regex = regex::Regex::new(checked.as_ref().map_or("", |t| t.as_str()))?;
        Ok(Pattern { regex, template: Some(text.clone()) })
    }

    /// The regex with the saved values in it.
    pub fn fill(&self, saved: SavedLookup<'_>) -> Result<Result<Pattern, regex::Error>, Unsaved> {
        let Some(template) = &self.template else { return Ok(Ok(self.clone())) };
        let text = template.fill_with(saved, &|value| regex::escape(value))?;
        Ok(regex::Regex::new(&text).map(|regex| Pattern { regex, template: None }))
    }

    /// The pattern as written (`${id}` where a saved value goes).
    pub fn shown(&self) -> &str {
        self.template.as_ref().map_or(self.regex.as_str(), |t| t.as_str())
    }
}

impl std::ops::Deref for Pattern {
    type Target = regex::Regex;
    fn deref(&self) -> &regex::Regex {
        &self.regex
    }
}

/// A JSON value (a request's `json:` body, an expected value) whose strings may hold saved values: a
/// string that is a reference and nothing else (`"${id}"`) becomes the saved value with its JSON type (a
/// saved number stays a number), one with other text around it becomes a string.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonText {
    pub value: serde_json::Value,
    /// The saved names its strings refer to; none: final.
    pub saved: Vec<String>,
}

impl JsonText {
    pub fn fixed(value: serde_json::Value) -> JsonText {
        JsonText { value, saved: Vec::new() }
    }

    pub fn is_template(&self) -> bool {
        !self.saved.is_empty()
    }

    pub fn fill(&self, saved: SavedLookup<'_>) -> Result<JsonText, Unsaved> {
        if self.saved.is_empty() {
            return Ok(self.clone());
        }
        let mut values = Vec::new();
        for name in &self.saved {
            values.push((name, saved(name).ok_or_else(|| Unsaved { name: name.clone() })?));
        }
        fn walk(value: &mut serde_json::Value, values: &[(&String, serde_json::Value)]) {
            match value {
                serde_json::Value::String(text) => {
                    if let Some((_, whole)) = values.iter().find(|(name, _)| *text == format!("${{{name}}}")) {
                        *value = whole.clone();
                        return;
                    }
                    for (name, saved) in values {
                        *text = text.replace(&format!("${{{name}}}"), &value_text(saved));
                    }
                }
                serde_json::Value::Array(items) => items.iter_mut().for_each(|item| walk(item, values)),
                serde_json::Value::Object(map) => map.values_mut().for_each(|item| walk(item, values)),
                _ => {}
            }
        }
        let mut value = self.value.clone();
        walk(&mut value, &values);
        Ok(JsonText::fixed(value))
    }
}

/// The `${name}` references among `names` that the strings of `value` hold.
pub fn json_references(value: &serde_json::Value, names: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut found = Vec::new();
    fn walk(value: &serde_json::Value, names: &dyn Fn(&str) -> bool, found: &mut Vec<String>) {
        match value {
            serde_json::Value::String(text) => {
                for name in crate::scenario::interpolate::references(text) {
                    if names(&name) && !found.contains(&name) {
                        found.push(name);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|item| walk(item, names, found)),
            serde_json::Value::Object(map) => map.values().for_each(|item| walk(item, names, found)),
            _ => {}
        }
    }
    walk(value, names, &mut found);
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::interpolate::{Resolved, interpolate_keeping};
    use serde_json::json;

    fn text(written: &str) -> Text {
        let lookup = |name: &str| if name == "HOME" { Resolved::Value("/root".into()) } else { Resolved::Kept };
        Text::from_segments(interpolate_keeping(written, &lookup).unwrap())
    }

    fn saved(name: &str) -> Option<serde_json::Value> {
        match name {
            "id" => Some(json!(3)),
            "token" => Some(json!("a.b")),
            _ => None,
        }
    }

    #[test]
    fn a_template_reads_as_written_until_filled() {
        let path = text("/notes/${id}?home=${HOME}&cost=$$5");
        assert!(path.is_template());
        assert_eq!(path.as_str(), "/notes/${id}?home=/root&cost=$5");
        assert_eq!(path.fill(&saved).unwrap().as_str(), "/notes/3?home=/root&cost=$5");
        assert_eq!(text("${missing:-none}").fill(&saved).unwrap().as_str(), "none");
        assert_eq!(text("${missing}").fill(&saved), Err(Unsaved { name: "missing".into() }));
        let plain = text("no values ${HOME}");
        assert!(!plain.is_template());
        assert_eq!(format!("{plain:?}"), "\"no values /root\"");
    }

    #[test]
    fn a_pattern_is_checked_when_planned_and_matches_a_saved_value_literally() {
        let pattern = Pattern::new(&text("token=${token}$")).unwrap();
        assert_eq!(pattern.shown(), "token=${token}$");
        let filled = pattern.fill(&saved).unwrap().unwrap();
        assert!(filled.is_match("token=a.b"));
        assert!(!filled.is_match("token=axb"));
        assert!(Pattern::new(&text("(${token}")).is_err());
    }

    #[test]
    fn a_json_reference_alone_keeps_its_type() {
        let value = json!({ "id": "${id}", "label": "note ${id} of ${token}", "list": ["${token}"] });
        let names = json_references(&value, &|n| saved(n).is_some());
        assert_eq!(names, vec!["id", "token"]);
        let template = JsonText { value, saved: names };
        let filled = template.fill(&saved).unwrap();
        assert_eq!(filled.value, json!({ "id": 3, "label": "note 3 of a.b", "list": ["a.b"] }));
    }
}
