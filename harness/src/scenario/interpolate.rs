//! `${VAR}` and `${VAR:-default}` in scenario strings, from the environment; `$$` is a literal `$`. A
//! reference may also be kept as it is, to be filled in later: a value saved by an earlier step
//! (`${id}`) is known only when the step that uses it runs.

/// Why a string could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpolateError {
    Undefined(String),
    Malformed(String),
}

/// What a reference `${NAME}` stands for, as the caller decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// A value now (an environment variable).
    Value(String),
    /// Nothing yet: kept in the result, to be filled in later.
    Kept,
    /// Nothing: the default applies, or the name is undefined.
    Unset,
}

/// A piece of an interpolated string: text, or a reference kept for later with its default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Text(String),
    Kept { name: String, default: Option<Vec<Segment>> },
}

/// Replaces every `${NAME}` / `${NAME:-default}` in `text` with what `lookup` gives.
/// A set but empty variable takes the default with `:-`, as in POSIX shells and compose files.
pub fn interpolate(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, InterpolateError> {
    let segments = interpolate_keeping(text, &|name| lookup(name).map_or(Resolved::Unset, Resolved::Value))?;
    Ok(segments
        .into_iter()
        .map(|segment| match segment {
            Segment::Text(text) => text,
            // `lookup` keeps nothing.
            Segment::Kept { name, .. } => format!("${{{name}}}"),
        })
        .collect())
}

/// Interpolates `text` as [`interpolate`] does, but keeps the references `lookup` says to keep, with
/// their defaults (themselves interpolated). Adjacent text is merged: a string without kept references
/// is one `Segment::Text` (or none when empty).
pub fn interpolate_keeping(text: &str, lookup: &dyn Fn(&str) -> Resolved) -> Result<Vec<Segment>, InterpolateError> {
    let mut out: Vec<Segment> = Vec::new();
    let push_text = |out: &mut Vec<Segment>, text: &str| {
        if text.is_empty() {
            return;
        }
        match out.last_mut() {
            Some(Segment::Text(last)) => last.push_str(text),
            _ => out.push(Segment::Text(text.to_owned())),
        }
    };
    if !text.contains('$') {
        push_text(&mut out, text);
        return Ok(out);
    }
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        push_text(&mut out, &rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            push_text(&mut out, "$");
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let close = matching_brace(body)
                .ok_or_else(|| InterpolateError::Malformed(format!("`${{` without a closing `}}` in `{text}`")))?;
            let inner = &body[..close];
            let (name, default) = match inner.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (inner, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(InterpolateError::Malformed(format!("`${{{inner}}}` is not a variable name")));
            }
            match (lookup(name), default) {
                (Resolved::Value(value), None) => push_text(&mut out, &value),
                (Resolved::Value(value), Some(_)) if !value.is_empty() => push_text(&mut out, &value),
                (Resolved::Kept, default) => {
                    let default = default.map(|d| interpolate_keeping(d, lookup)).transpose()?;
                    out.push(Segment::Kept { name: name.to_owned(), default });
                }
                (Resolved::Value(_) | Resolved::Unset, Some(default)) => {
                    for segment in interpolate_keeping(default, lookup)? {
                        match segment {
                            Segment::Text(text) => push_text(&mut out, &text),
                            kept => out.push(kept),
                        }
                    }
                }
                (Resolved::Unset, None) => return Err(InterpolateError::Undefined(name.to_owned())),
            }
            rest = &body[close + 1..];
        } else {
            push_text(&mut out, "$");
            rest = after;
        }
    }
    push_text(&mut out, rest);
    Ok(out)
}

/// The names `text` refers to with `${NAME}`, defaults included, in order; none when it is malformed.
pub fn references(text: &str) -> Vec<String> {
    let names = std::cell::RefCell::new(Vec::new());
    let parsed = interpolate_keeping(text, &|name| {
        names.borrow_mut().push(name.to_owned());
        Resolved::Kept
    });
    if parsed.is_err() { Vec::new() } else { names.into_inner() }
}

/// The index of the `}` that closes the `${` just before `body`, skipping nested `${...}` in defaults.
fn matching_brace(body: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = body.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'{' if i > 0 && bytes[i - 1] == b'$' => depth += 1,
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("value".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn replaces_set_variables_and_defaults() {
        assert_eq!(interpolate("a ${SET} b", &env).unwrap(), "a value b");
        assert_eq!(interpolate("${UNSET:-python:3.11-slim}", &env).unwrap(), "python:3.11-slim");
        assert_eq!(interpolate("${EMPTY:-d}", &env).unwrap(), "d");
        assert_eq!(interpolate("${EMPTY}", &env).unwrap(), "");
        assert_eq!(interpolate("$$HOME and $1", &env).unwrap(), "$HOME and $1");
        assert_eq!(interpolate("${UNSET:-${SET}}", &env).unwrap(), "value");
    }

    #[test]
    fn keeps_what_the_lookup_keeps_with_its_default() {
        let lookup = |name: &str| match name {
            "id" => Resolved::Kept,
            "SET" => Resolved::Value("value".into()),
            _ => Resolved::Unset,
        };
        let kept = interpolate_keeping("/notes/${id}?a=${SET}&$$x", &lookup).unwrap();
        assert_eq!(
            kept,
            vec![
                Segment::Text("/notes/".into()),
                Segment::Kept { name: "id".into(), default: None },
                Segment::Text("?a=value&$x".into()),
            ]
        );
        let with_default = interpolate_keeping("${id:-${SET}}", &lookup).unwrap();
        assert_eq!(
            with_default,
            vec![Segment::Kept { name: "id".into(), default: Some(vec![Segment::Text("value".into())]) }]
        );
        assert_eq!(interpolate_keeping("", &lookup).unwrap(), vec![]);
        assert_eq!(references("a ${x} ${y:-${z}} $$ ${"), Vec::<String>::new(), "malformed: none");
        assert_eq!(references("a ${x} ${y:-${z}}"), vec!["x", "y", "z"]);
    }

    #[test]
    fn reports_undefined_and_malformed() {
        assert_eq!(interpolate("${NOPE}", &env), Err(InterpolateError::Undefined("NOPE".into())));
        assert!(matches!(interpolate("${OPEN", &env), Err(InterpolateError::Malformed(_))));
        assert!(matches!(interpolate("${a b}", &env), Err(InterpolateError::Malformed(_))));
    }
}
