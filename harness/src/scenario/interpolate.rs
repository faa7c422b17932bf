//! `${VAR}` and `${VAR:-default}` in scenario strings, from the environment; `$$` is a literal `$`.

/// Why a string could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpolateError {
    Undefined(String),
    Malformed(String),
}

/// Replaces every `${NAME}` / `${NAME:-default}` in `text` with what `lookup` gives.
/// A set but empty variable takes the default with `:-`, as in POSIX shells and compose files.
pub fn interpolate(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, InterpolateError> {
    if !text.contains('$') {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
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
            match (lookup(name).filter(|v| !v.is_empty() || default.is_none()), default) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(&interpolate(default, lookup)?),
                (None, None) => return Err(InterpolateError::Undefined(name.to_owned())),
            }
            rest = &body[close + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
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
    fn reports_undefined_and_malformed() {
        assert_eq!(interpolate("${NOPE}", &env), Err(InterpolateError::Undefined("NOPE".into())));
        assert!(matches!(interpolate("${OPEN", &env), Err(InterpolateError::Malformed(_))));
        assert!(matches!(interpolate("${a b}", &env), Err(InterpolateError::Malformed(_))));
    }
}
