//! `.dockerignore` with moby's patternmatcher semantics: `foo` matches at the root only, `*` and `?` do
//! not cross `/`, `**` crosses any number of folders, a pattern also excludes everything below a folder it
//! matches, `!` re-includes, and the last matching pattern wins. Test cases are moby's own.

use regex::Regex;

#[derive(Debug)]
struct Pattern {
    regex: Regex,
    exclusion: bool,
}

/// The patterns of one `.dockerignore`.
#[derive(Debug, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

/// A pattern that moby would refuse as well.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid .dockerignore pattern `{pattern}`: {reason}")]
pub struct PatternError {
    pub pattern: String,
    pub reason: String,
}

impl DockerIgnore {
    /// Reads the file's text as moby's `ignorefile.ReadAll` does: trims lines, skips comments and blanks,
    /// cleans each path and drops a leading `/`.
    pub fn parse(text: &str) -> Result<DockerIgnore, PatternError> {
        let lines = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|line| match line.strip_prefix('!') {
                Some(rest) => (rest.trim(), true),
                None => (line, false),
            })
            .filter(|(p, _)| !p.is_empty());
        let mut patterns = Vec::new();
        for (raw, exclusion) in lines {
            let mut cleaned = clean(raw);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            let regex = compile(&cleaned).map_err(|reason| PatternError { pattern: raw.to_owned(), reason })?;
            patterns.push(Pattern { regex, exclusion });
        }
        Ok(DockerIgnore { patterns })
    }

    /// Whether some pattern re-includes (`!`): then an excluded folder must still be searched.
    pub fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Whether `path` (relative, `/`-separated) is left out of the build context.
    pub fn is_ignored(&self, path: &str) -> bool {
        let parents: Vec<&str> = path.split('/').collect();
        let mut matched = false;
        for pattern in &self.patterns {
            // Moby's MatchesOrParentMatches: the path itself, or any of its parent folders.
            let mut hit = pattern.regex.is_match(path);
            if !hit && parents.len() > 1 {
                for i in 1..parents.len() {
                    if pattern.regex.is_match(&parents[..i].join("/")) {
                        hit = true;
                        break;
                    }
                }
            }
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }
}

/// Go's `filepath.Clean` for `/`-separated paths.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// Moby's pattern -> regexp translation.
fn compile(pattern: &str) -> Result<Regex, String> {
    let mut re = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut in_class = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if in_class {
            // Inside `[...]` ranges and negation keep their meaning; only a backslash escapes.
            match c {
                ']' => {
                    in_class = false;
                    re.push(']');
                }
                '^' | '!' if chars[i - 1] == '[' => re.push('^'),
                '\\' => {
                    if let Some(next) = chars.get(i + 1) {
                        re.push_str(&regex::escape(&next.to_string()));
                        i += 1;
                    }
                }
                '[' => re.push_str("\\["),
                other => re.push(other),
            }
            i += 1;
            continue;
        }
        match c {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 1;
                if chars.get(i + 1) == Some(&'/') {
                    i += 1;
                }
                if i + 1 >= chars.len() {
                    re.push_str(".*");
                } else {
                    re.push_str("(.*/)?");
                }
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '\\' => {
                if let Some(next) = chars.get(i + 1) {
                    re.push_str(&regex::escape(&next.to_string()));
                    i += 1;
                } else {
                    re.push_str("\\\\");
                }
            }
            '[' => {
                in_class = true;
                re.push('[');
            }
            other => re.push_str(&regex::escape(&other.to_string())),
        }
        i += 1;
    }
    re.push('$');
    Regex::new(&re).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignored(patterns: &str, path: &str) -> bool {
        DockerIgnore::parse(patterns).unwrap().is_ignored(path)
    }

    /// moby/patternmatcher's TestMatches cases (pattern, path, match).
    #[test]
    fn moby_match_cases() {
        let cases: &[(&str, &str, bool)] = &[
            ("**", "file", true),
            ("**", "file/", true),
            ("**/", "file", true),
            ("**/", "file/", true),
            ("**", "/", true),
            ("**/", "/", true),
            ("**", "dir/file", true),
            ("**/", "dir/file", true),
            ("**", "dir/file/", true),
            ("**/", "dir/file/", true),
            ("**/**", "dir/file", true),
            ("**/**", "dir/file/", true),
            ("dir/**", "dir/file", true),
            ("dir/**", "dir/file/", true),
            ("dir/**", "dir/dir2/file", true),
            ("dir/**", "dir/dir2/file/", true),
            ("**/dir", "dir", true),
            ("**/dir", "dir/file", true),
            ("**/dir2/*", "dir/dir2/file", true),
            ("**/dir2/*", "dir/dir2/file/", true),
            ("**/dir2/**", "dir/dir2/dir3/file", true),
            ("**/dir2/**", "dir/dir2/dir3/file/", true),
            ("**file", "file", true),
            ("**file", "dir/file", true),
            ("**/file", "dir/file", true),
            ("**file", "dir/dir/file", true),
            ("**/file", "dir/dir/file", true),
            ("**/file*", "dir/dir/file", true),
            ("**/file*", "dir/dir/file.txt", true),
            ("**/file*txt", "dir/dir/file.txt", true),
            ("**/file*.txt", "dir/dir/file.txt", true),
            ("**/file*.txt*", "dir/dir/file.txt", true),
            ("**/**/*.txt", "dir/dir/file.txt", true),
            ("**/**/*.txt2", "dir/dir/file.txt", false),
            ("**/*.txt", "file.txt", true),
            ("**/**/*.txt", "file.txt", true),
            ("a**/*.txt", "a/file.txt", true),
            ("a**/*.txt", "a/dir/file.txt", true),
            ("a**/*.txt", "a/dir/dir/file.txt", true),
            ("a/*.txt", "a/dir/file.txt", false),
            ("a/*.txt", "a/file.txt", true),
            ("a/*.txt**", "a/file.txt", true),
            ("a[b-d]e", "ae", false),
            ("a[b-d]e", "ace", true),
            ("a[b-d]e", "aae", false),
            ("a[^b-d]e", "aze", true),
            (".*", ".foo", true),
            (".*", "foo", false),
            ("abc.def", "abcdef", false),
            ("abc.def", "abc.def", true),
            ("abc.def", "abcZdef", false),
            ("abc?def", "abcZdef", true),
            ("abc?def", "abcdef", false),
            ("a\\\\", "a\\", true),
            ("**/foo/bar", "foo/bar", true),
            ("**/foo/bar", "dir/foo/bar", true),
            ("**/foo/bar", "dir/dir2/foo/bar", true),
            ("abc/**", "abc", false),
            ("abc/**", "abc/def", true),
            ("abc/**", "abc/def/ghi", true),
            ("**/.foo", ".foo", true),
            ("**/.foo", "bar.foo", false),
            ("a(b)c/def", "a(b)c/def", true),
            ("a(b)c/def", "a(b)c/xyz", false),
            ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
            (
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
        ];
        for (pattern, path, want) in cases {
            let path = path.trim_end_matches('/');
            let got = DockerIgnore::parse(pattern).unwrap().patterns[0].regex.is_match(path) || ignored(pattern, path);
            assert_eq!(got, *want, "pattern {pattern:?} path {path:?}");
        }
    }

    /// moby's TestPatternMatchesFolderExclusions and friends: parents, `!`, last match wins.
    #[test]
    fn folders_exclusions_and_order() {
        assert!(ignored("docs", "docs/README.md"));
        assert!(!ignored("docs", "src/docs/README.md"), "a bare name matches at the root only");
        assert!(ignored("**/docs", "src/docs/README.md"));
        assert!(ignored("*.md\n!README.md", "CHANGES.md"));
        assert!(!ignored("*.md\n!README.md", "README.md"));
        assert!(ignored("!README.md\n*.md", "README.md"), "the last match wins");
        assert!(ignored("docs\n!docs/README.md\ndocs/*", "docs/README.md"));
        assert!(!ignored("docs\n!docs/README.md", "docs/README.md"));
        assert!(ignored("/secrets", "secrets/key"));
        assert!(ignored("./build/../dist", "dist/app.js"));
        assert!(!ignored("# a comment\n\n", "anything"));
        assert!(ignored("*/*.pyc", "app/x.pyc"));
        assert!(!ignored("*/*.pyc", "app/sub/x.pyc"));
    }
}
