//! Assertions: what came back (an HTTP answer, an exec's output, a log) against what the file expects.
//! Each check gives every expectation that did not hold as text for "expected" and "actual".

pub mod exec;
pub mod http;
pub mod logs;

/// One expectation that did not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub expected: String,
    pub actual: String,
}

impl Mismatch {
    pub fn new(expected: impl Into<String>, actual: impl Into<String>) -> Self {
        Mismatch { expected: expected.into(), actual: actual.into() }
    }
}

/// U+FDD0..U+FDEF and the last two code points of every plane: never text, and refused by XML.
fn is_noncharacter(c: char) -> bool {
    let code = u32::from(c);
    (0xFDD0..=0xFDEF).contains(&code) || code & 0xFFFE == 0xFFFE
}

/// At most `max` characters of `text` in a code span, marked where it was cut, for messages: quotes
/// stay as they are (a JSON body reads as JSON), line breaks and other controls are shown as escapes,
/// backticks become `'` so that the span holds.
pub fn excerpt(text: &str, max: usize) -> String {
    let trimmed = text.trim_end();
    if trimmed.is_empty() {
        return "(empty)".to_owned();
    }
    let mut shown = String::new();
    for c in trimmed.chars().take(max) {
        match c {
            '\n' => shown.push_str("\\n"),
            '\t' => shown.push_str("\\t"),
            '\r' => shown.push_str("\\r"),
            '`' => shown.push('\''),
            c if c.is_control() || is_noncharacter(c) => shown.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => shown.push(c),
        }
    }
    if trimmed.chars().count() <= max {
        format!("`{shown}`")
    } else {
        format!("`{shown}`... ({} bytes)", trimmed.len())
    }
}
