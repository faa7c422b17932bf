//! A path of a container or an image against `file: { expect: ... }`: whether it exists, its type, mode,
//! owner and group, what a file contains and what a folder holds. Content is the first part of the file
//! that seatrial read: a text found there holds, and one that is not says when the rest was not read.

use super::Mismatch;
use crate::engine::archive::{Listing, PathFacts, PathKind};
use crate::scenario::plan::{FileExpect, FileKind, ModeExpect, Owner};
use crate::text::excerpt;

/// What seatrial found at a path, and what it needed to read besides.
#[derive(Debug, Clone, Default)]
pub struct FileSeen {
    /// The path as the step names it.
    pub path: String,
    /// Where it was read from: `web`, `image app`.
    pub source: String,
    /// The path itself (a symlink as a link); `None`: no such path.
    pub facts: Option<PathFacts>,
    /// What content checks and `entries` look at: the path itself, or where its symlink leads, with that
    /// path; `Err` says why a link could not be followed.
    pub target: Option<Result<(String, PathFacts), String>>,
    /// The owner's and group's names, from the archive or the container's `/etc/passwd` and `/etc/group`.
    pub user_name: Option<String>,
    pub group_name: Option<String>,
    /// Names of `entries` the folder does not hold.
    pub missing_entries: Vec<String>,
    /// What the folder holds, read when an entry is missing.
    pub listing: Option<Listing>,
    /// How much of a file seatrial reads.
    pub limit: usize,
}

/// A mode as octal and as `ls -l` prints it: `0644 (-rw-r--r--)`.
pub fn shown_mode(kind: &PathKind, mode: u32) -> String {
    let mut letters = String::from(match kind {
        PathKind::Directory => 'd',
        PathKind::Symlink => 'l',
        _ => '-',
    });
    for (i, letter) in "rwxrwxrwx".chars().enumerate() {
        let set = mode & (1 << (8 - i)) != 0;
        let special = match i {
            2 => mode & 0o4000 != 0,
            5 => mode & 0o2000 != 0,
            8 => mode & 0o1000 != 0,
            _ => false,
        };
        letters.push(match (special, set) {
            (true, true) if i == 8 => 't',
            (true, false) if i == 8 => 'T',
            (true, true) => 's',
            (true, false) => 'S',
            (false, true) => letter,
            (false, false) => '-',
        });
    }
    format!("{mode:04o} ({letters})")
}

fn kind_matches(expected: FileKind, actual: &PathKind) -> bool {
    matches!(
        (expected, actual),
        (FileKind::File, PathKind::File)
            | (FileKind::Directory, PathKind::Directory)
            | (FileKind::Symlink, PathKind::Symlink)
    )
}

fn a_kind(kind: &PathKind) -> String {
    match kind {
        PathKind::Other(other) => format!("a {other}"),
        known => format!("a {known}"),
    }
}

fn owner_holds(expected: &Owner, id: u64, name: Option<&str>) -> bool {
    match expected {
        Owner::Id(wanted) => *wanted == id,
        Owner::Name(wanted) => name == Some(wanted.as_str()),
    }
}

fn shown_owner(what: &str, id: u64, name: Option<&str>) -> String {
    match name.filter(|n| !n.is_empty()) {
        Some(name) => format!("{what} {id} (`{name}`)"),
        None => format!("{what} {id}"),
    }
}

/// A short description of what is at a path: `a file of 12 bytes, mode 0644 (-rw-r--r--), owner 0`.
fn described(facts: &PathFacts) -> String {
    let size = if facts.kind == PathKind::File { format!(" of {} bytes", facts.size) } else { String::new() };
    let link = facts.link_target.as_ref().map(|t| format!(" to `{t}`")).unwrap_or_default();
    format!("{}{size}{link}, mode {}, owner {}", a_kind(&facts.kind), shown_mode(&facts.kind, facts.mode), facts.uid)
}

/// The line of `content` where `needle` first is, for a person.
fn line_with(content: &[u8], needle: &[u8]) -> Option<String> {
    let at = if needle.is_empty() { 0 } else { content.windows(needle.len()).position(|w| w == needle)? };
    let number = content[..at].iter().filter(|b| **b == b'\n').count() + 1;
    let start = content[..at].iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
    let end = content[at..].iter().position(|b| *b == b'\n').map_or(content.len(), |p| at + p);
    Some(format!("line {number}: {}", excerpt(&String::from_utf8_lossy(&content[start..end]), 200)))
}

/// Why the content read is all there is, when it is not the whole file.
fn cut_note(facts: &PathFacts, limit: usize) -> String {
    if facts.cut() {
        format!(
            " (the file is {}; seatrial read its first {})",
            crate::check::http::byte_size(facts.size),
            crate::check::http::byte_size(limit as u64)
        )
    } else {
        String::new()
    }
}

pub fn check_file(expect: &FileExpect, seen: &FileSeen) -> Vec<Mismatch> {
    let path = &seen.path;
    let Some(facts) = &seen.facts else {
        return if expect.exists {
            vec![Mismatch::new(format!("`{path}` exists"), format!("no such file or folder in {}", seen.source))]
        } else {
            Vec::new()
        };
    };
    if !expect.exists {
        return vec![Mismatch::new(format!("no `{path}`"), format!("it exists: {}", described(facts)))];
    }
    let mut mismatches = Vec::new();
    let wanted_kind = expect.kind.or(expect.mode.as_ref().and_then(|m| m.kind));
    if let Some(kind) = wanted_kind
        && !kind_matches(kind, &facts.kind)
    {
        mismatches.push(Mismatch::new(format!("`{path}` is a {kind}"), format!("it is {}", described(facts))));
    }
    if let Some(ModeExpect { bits, written, .. }) = &expect.mode
        && *bits != facts.mode
    {
        mismatches
            .push(Mismatch::new(format!("mode {written}"), format!("mode {}", shown_mode(&facts.kind, facts.mode))));
    }
    if let Some(owner) = &expect.owner
        && !owner_holds(owner, facts.uid, seen.user_name.as_deref())
    {
        mismatches
            .push(Mismatch::new(format!("owner {owner}"), shown_owner("owner", facts.uid, seen.user_name.as_deref())));
    }
    if let Some(group) = &expect.group
        && !owner_holds(group, facts.gid, seen.group_name.as_deref())
    {
        mismatches
            .push(Mismatch::new(format!("group {group}"), shown_owner("group", facts.gid, seen.group_name.as_deref())));
    }
    if !expect.reads_content() && expect.entries.is_empty() {
        return mismatches;
    }
    let (target_path, target) = match &seen.target {
        Some(Ok((target_path, target))) => (target_path.as_str(), target),
        Some(Err(why)) => {
            mismatches.push(Mismatch::new(format!("`{path}` leads to a file to read"), why.clone()));
            return mismatches;
        }
        None => (path.as_str(), facts),
    };
    let through = if target_path == path { String::new() } else { format!(" (where `{path}` leads)") };
    if expect.reads_content() {
        mismatches.extend(check_content(expect, target_path, &through, target, seen.limit));
    }
    if !expect.entries.is_empty() {
        if target.kind != PathKind::Directory {
            let expected = format!("`{path}` is a directory holding {}", expect.entries.join(", "));
            mismatches.push(Mismatch::new(expected, format!("`{target_path}`{through} is {}", described(target))));
        } else if !seen.missing_entries.is_empty() {
            let holds = match &seen.listing {
                Some(listing) if listing.names.is_empty() && listing.complete => "it is empty".to_owned(),
                Some(listing) => {
                    let shown: Vec<&str> = listing.names.iter().take(30).map(String::as_str).collect();
                    let more = if listing.names.len() > 30 || !listing.complete { ", ..." } else { "" };
                    format!("it holds {}{more}", shown.join(", "))
                }
                None => "its listing could not be read".to_owned(),
            };
            mismatches.push(Mismatch::new(
                format!("`{target_path}`{through} holds {}", expect.entries.join(", ")),
                format!(
                    "no {} in it; {holds}",
                    seen.missing_entries.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    mismatches
}

fn check_content(expect: &FileExpect, path: &str, through: &str, facts: &PathFacts, limit: usize) -> Vec<Mismatch> {
    if facts.kind != PathKind::File {
        let what = if expect.contains.is_some() {
            "contains"
        } else if expect.matches.is_some() {
            "matches"
        } else {
            "not_contains"
        };
        return vec![Mismatch::new(
            format!("`{path}`{through} is a file, for `{what}` to look into"),
            format!("it is {}", described(facts)),
        )];
    }
    let content = facts.content.as_slice();
    let shown = || format!("its content {}{}", excerpt(&String::from_utf8_lossy(content), 300), cut_note(facts, limit));
    let mut mismatches = Vec::new();
    if let Some(text) = &expect.contains
        && line_with(content, text.as_bytes()).is_none()
    {
        mismatches.push(Mismatch::new(format!("`{path}`{through} contains {text:?}"), shown()));
    }
    if let Some(regex) = &expect.matches
        && !regex.is_match(content)
    {
        mismatches.push(Mismatch::new(format!("`{path}`{through} matches `{}`", regex.as_str()), shown()));
    }
    if let Some(text) = &expect.not_contains {
        let expected = format!("`{path}`{through} does not contain {text:?}");
        if let Some(line) = line_with(content, text.as_bytes()) {
            mismatches.push(Mismatch::new(expected, format!("it does, at {line}")));
        } else if facts.cut() {
            let actual = format!("not in the part read, but the rest was not read{}", cut_note(facts, limit));
            mismatches.push(Mismatch::new(expected, actual));
        }
    }
    mismatches
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::plan::parse_mode;

    fn file(content: &[u8], mode: u32) -> PathFacts {
        PathFacts {
            kind: PathKind::File,
            mode,
            uid: 0,
            gid: 0,
            user_name: "root".into(),
            group_name: "root".into(),
            size: content.len() as u64,
            link_target: None,
            content: content.to_vec(),
        }
    }

    fn expect() -> FileExpect {
        FileExpect {
            exists: true,
            mode: None,
            owner: None,
            group: None,
            kind: None,
            contains: None,
            matches: None,
            not_contains: None,
            entries: Vec::new(),
        }
    }

    fn seen(facts: Option<PathFacts>) -> FileSeen {
        FileSeen {
            path: "/app/settings.py".into(),
            source: "`web`".into(),
            user_name: facts.as_ref().map(|f| f.user_name.clone()),
            group_name: facts.as_ref().map(|f| f.group_name.clone()),
            facts,
            limit: 4 << 20,
            ..FileSeen::default()
        }
    }

    fn said(mismatches: Vec<Mismatch>) -> Vec<(String, String)> {
        mismatches.into_iter().map(|m| (m.expected, m.actual)).collect()
    }

    #[test]
    fn modes_are_shown_as_octal_and_as_ls_shows_them() {
        assert_eq!(shown_mode(&PathKind::File, 0o644), "0644 (-rw-r--r--)");
        assert_eq!(shown_mode(&PathKind::Directory, 0o1777), "1777 (drwxrwxrwt)");
        assert_eq!(shown_mode(&PathKind::File, 0o4755), "4755 (-rwsr-xr-x)");
        assert_eq!(shown_mode(&PathKind::File, 0o2644), "2644 (-rw-r-Sr--)");
    }

    #[test]
    fn existence_type_mode_and_owner() {
        let mut wanted = expect();
        assert_eq!(
            said(check_file(&wanted, &seen(None))),
            vec![("`/app/settings.py` exists".to_owned(), "no such file or folder in `web`".to_owned())]
        );
        wanted.exists = false;
        assert_eq!(check_file(&wanted, &seen(None)), vec![]);
        let there = seen(Some(file(b"x = 1\n", 0o644)));
        assert_eq!(
            said(check_file(&wanted, &there)),
            vec![(
                "no `/app/settings.py`".to_owned(),
                "it exists: a file of 6 bytes, mode 0644 (-rw-r--r--), owner 0".to_owned()
            )]
        );
        let wanted = FileExpect {
            mode: parse_mode("0600").ok(),
            owner: Some(Owner::Name("app".into())),
            group: Some(Owner::Id(0)),
            kind: Some(FileKind::File),
            ..expect()
        };
        assert_eq!(
            said(check_file(&wanted, &there)),
            vec![
                ("mode 0600".to_owned(), "mode 0644 (-rw-r--r--)".to_owned()),
                ("owner `app`".to_owned(), "owner 0 (`root`)".to_owned()),
            ]
        );
        let wanted = FileExpect { mode: parse_mode("drwxr-xr-x").ok(), ..expect() };
        assert_eq!(said(check_file(&wanted, &there))[0].0, "`/app/settings.py` is a directory");
    }

    #[test]
    fn content_checks_say_where_and_when_the_rest_was_not_read() {
        let content = b"DEBUG = False\nSECRET_KEY = 'django-insecure-abc'\n";
        let there = seen(Some(file(content, 0o644)));
        let wanted = FileExpect {
            contains: Some("DEBUG = False".into()),
            matches: Some(regex::bytes::Regex::new("^DEBUG").expect("a regex")),
            not_contains: Some("django-insecure".into()),
            ..expect()
        };
        assert_eq!(
            said(check_file(&wanted, &there)),
            vec![(
                "`/app/settings.py` does not contain \"django-insecure\"".to_owned(),
                "it does, at line 2: `SECRET_KEY = 'django-insecure-abc'`".to_owned()
            )]
        );
        let mut big = file(b"0123456789", 0o644);
        big.size = 12 << 20;
        let cut = FileSeen { limit: 10, ..seen(Some(big)) };
        let wanted = FileExpect { contains: Some("needle".into()), not_contains: Some("hay".into()), ..expect() };
        let found = said(check_file(&wanted, &cut));
        assert_eq!(found.len(), 2);
        assert!(found[0].1.ends_with("(the file is 12 MiB; seatrial read its first 10 bytes)"), "{found:?}");
        assert!(found[1].1.starts_with("not in the part read, but the rest was not read"), "{found:?}");
    }

    #[test]
    fn a_folder_says_what_it_holds_and_a_link_what_it_leads_to() {
        let folder = PathFacts { kind: PathKind::Directory, ..file(b"", 0o755) };
        let there = FileSeen {
            path: "/app".into(),
            missing_entries: vec!["manage.py".into()],
            listing: Some(Listing { names: vec!["notes".into(), "requirements.txt".into()], complete: true }),
            ..seen(Some(folder.clone()))
        };
        let wanted = FileExpect { entries: vec!["manage.py".into(), "notes".into()], ..expect() };
        assert_eq!(
            said(check_file(&wanted, &there)),
            vec![(
                "`/app` holds manage.py, notes".to_owned(),
                "no `manage.py` in it; it holds notes, requirements.txt".to_owned()
            )]
        );
        let link = PathFacts { kind: PathKind::Symlink, link_target: Some("/etc/real".into()), ..file(b"", 0o777) };
        let through = FileSeen {
            path: "/etc/conf".into(),
            target: Some(Ok(("/etc/real".into(), file(b"port = 1\n", 0o644)))),
            ..seen(Some(link))
        };
        let wanted = FileExpect { kind: Some(FileKind::Symlink), contains: Some("port = 2".into()), ..expect() };
        assert_eq!(
            said(check_file(&wanted, &through)),
            vec![(
                "`/etc/real` (where `/etc/conf` leads) contains \"port = 2\"".to_owned(),
                "its content `port = 1`".to_owned()
            )]
        );
    }
}
