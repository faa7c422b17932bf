//! Text from containers and users made safe for where it goes: the console and JUnit (no terminal
//! escapes, no controls, long lines cut), XML (no noncharacters), messages (short code-span excerpts),
//! Markdown (feedback, GitHub summaries) and HTML (the gradebook page). One place, so that every output
//! gets the same rules.

/// Longest log line shown in full: a flood of 64 KiB lines must not make a report of megabytes.
pub const LOG_LINE_LIMIT: usize = 500;

/// A line of container output as shown on the console: printable, and cut after [`LOG_LINE_LIMIT`].
pub fn shown_log_line(line: &str) -> String {
    cut_long_line(&printable(line))
}

/// The line, cut after [`LOG_LINE_LIMIT`] characters with a note of how many were left out.
pub fn cut_long_line(line: &str) -> String {
    match line.char_indices().nth(LOG_LINE_LIMIT) {
        Some((cut, _)) => {
            let rest = line[cut..].chars().count();
            format!("{} [... {rest} more characters]", &line[..cut])
        }
        None => line.to_owned(),
    }
}

/// Container output made safe to print: ANSI escape sequences (colours, cursor moves) removed, other
/// control characters (NUL, a lone ESC) shown as escapes, so that a container cannot repaint the terminal
/// or hide text in a report.
pub fn printable(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            // A CSI sequence ends with a byte in @..~.
            for end in chars.by_ref() {
                if ('@'..='~').contains(&end) {
                    break;
                }
            }
        } else if c.is_control() && c != '\t' {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    out
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

/// Text XML 1.0 can hold: quick-junit drops C0 controls and ANSI codes but lets U+FFFE/U+FFFF through.
pub fn xml_safe(text: &str) -> String {
    text.chars().filter(|c| !matches!(c, '\u{FFFE}' | '\u{FFFF}')).collect()
}

/// One line of prose: controls made visible, Markdown's active characters escaped.
pub fn markdown_line(text: &str) -> String {
    let text = printable(text);
    // Backticks stay when they pair up: messages quote names and instructions in them, and inside a
    // code span nothing is markup (only `|` still ends a table cell). An odd one is escaped.
    let spans_pair = text.matches('`').count().is_multiple_of(2);
    let mut in_code = false;
    let mut out = String::new();
    for c in text.chars() {
        let escape = match c {
            '`' if spans_pair => {
                in_code = !in_code;
                false
            }
            '`' => true,
            '|' => true,
            // Angle brackets would let a container's output inject HTML into a rendered page.
            '\\' | '[' | ']' | '<' | '>' => !in_code,
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
    out.replace('\n', " ")
}

/// Text safe inside HTML elements and attribute values.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What an HTML page says, for a message: its title and the start of its visible text, without the
/// `<style>` and `<script>` that fill the first kilobytes of a framework's error page. `None` when the
/// text is not HTML.
pub fn html_summary(body: &str, max: usize) -> Option<String> {
    let head = body.trim_start().get(..body.trim_start().len().min(200))?.to_ascii_lowercase();
    if !(head.starts_with("<!doctype html")
        || head.starts_with("<html")
        || head.contains("<head")
        || head.contains("<body"))
    {
        return None;
    }
    let without = |text: &str, tag: &str| -> String {
        let pattern = format!(r"(?is)<{tag}\b.*?</{tag}\s*>");
        regex::Regex::new(&pattern).map_or_else(|_| text.to_owned(), |re| re.replace_all(text, " ").into_owned())
    };
    let title = regex::Regex::new(r"(?is)<title[^>]*>(.*?)</title\s*>")
        .ok()
        .and_then(|re| re.captures(body).map(|c| collapse(&c[1])))
        .filter(|t| !t.is_empty());
    let visible = without(&without(&without(body, "head"), "style"), "script");
    let text =
        regex::Regex::new(r"(?s)<[^>]*>").map_or(visible.clone(), |re| re.replace_all(&visible, " ").into_owned());
    let text = collapse(&decode_entities(&text));
    let text: String = text.chars().take(max).collect();
    Some(match title {
        Some(title) => format!("an HTML page titled {}: {}", excerpt(&title, 100), excerpt(&text, max)),
        None => format!("an HTML page: {}", excerpt(&text, max)),
    })
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn decode_entities(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_html_page_reads_as_its_title_and_text() {
        let page = "<!DOCTYPE html><html><head><title>OperationalError at /notes/</title><style>body { color: red }</style></head><body><h1>OperationalError</h1><p>no such table: notes_note</p><script>x()</script></body></html>";
        assert_eq!(
            super::html_summary(page, 100).unwrap(),
            "an HTML page titled `OperationalError at /notes/`: `OperationalError no such table: notes_note`"
        );
        assert_eq!(super::html_summary("{\"a\": 1}", 100), None);
    }

    #[test]
    fn long_log_lines_are_cut() {
        let line = "x".repeat(super::LOG_LINE_LIMIT + 7);
        assert_eq!(super::shown_log_line(&line), format!("{} [... 7 more characters]", "x".repeat(500)));
        assert_eq!(super::shown_log_line("short"), "short");
    }

    #[test]
    fn printable_drops_ansi_and_escapes_controls() {
        assert_eq!(
            super::printable("\u{1b}[91mred\u{1b}[0m nul \u{0} esc \u{1b}x\ttab"),
            "red nul \\u{0} esc \\u{1b}x\ttab"
        );
    }

    #[test]
    fn markup_is_escaped_outside_code_spans_only() {
        assert_eq!(
            super::markdown_line("the build failed at `COPY app.py .` (Dockerfile line 3)"),
            "the build failed at `COPY app.py .` (Dockerfile line 3)"
        );
        assert_eq!(super::markdown_line("got <script> [link](x)"), "got \\<script\\> \\[link\\](x)");
        assert_eq!(super::markdown_line("a `b|c` d|e"), "a `b\\|c` d\\|e");
        assert_eq!(super::markdown_line("odd ` tick <b>"), "odd \\` tick \\<b\\>");
    }
}
