//! The `image` and `file` steps: in, their entries in the file; out, an [`ImageStep`] or a [`FileStep`] with
//! every expectation parsed (ports, sizes, modes, owners, regexes). Their plan types live here, beside the
//! planning that makes them.

use super::planner::{Planner, loc};
use super::{ImageRef, Step};
use crate::scenario::error::{Loc, ScenarioErrorKind, did_you_mean};
use crate::scenario::model::*;

/// Whose image an `image` step checks.
#[derive(Debug, Clone)]
pub enum ImageSubject {
    /// The image a container of the scenario runs at that step (after any `replace`).
    Container(String),
    /// An image of `images:`, or an engine reference.
    Image(ImageRef),
}

#[derive(Debug, Clone)]
pub struct ImageStep {
    pub of: ImageSubject,
    /// `of` as written, for reports.
    pub shown: String,
    pub expect: ImageExpect,
}

impl ImageStep {
    pub fn container(&self) -> Option<&str> {
        match &self.of {
            ImageSubject::Container(name) => Some(name),
            ImageSubject::Image(_) => None,
        }
    }
}

/// A size limit, with the text it was written as (`250MB`) for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteLimit {
    pub bytes: u64,
    pub written: String,
}

/// What an image's configuration must say; `None` and empty lists check nothing.
#[derive(Debug, Clone, Default)]
pub struct ImageExpect {
    pub user: Option<String>,
    pub workdir: Option<String>,
    /// `8000/tcp`, `53/udp`, as the engine writes exposed ports.
    pub exposed: Vec<String>,
    pub env: Vec<(String, String)>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub labels: Vec<(String, String)>,
    pub volumes: Vec<String>,
    pub healthcheck: Option<bool>,
    pub size_under: Option<ByteLimit>,
    pub not_root: Option<bool>,
}

/// Where a `file` step reads.
#[derive(Debug, Clone)]
pub enum FileSource {
    /// A container of the scenario, as it is at that step.
    Container(String),
    /// An image, through a container created from it and never started.
    Image(ImageRef),
}

#[derive(Debug, Clone)]
pub struct FileStep {
    pub source: FileSource,
    /// The container or image as written, for reports.
    pub shown: String,
    pub path: String,
    pub expect: FileExpect,
}

impl FileStep {
    pub fn container(&self) -> Option<&str> {
        match &self.source {
            FileSource::Container(name) => Some(name),
            FileSource::Image(_) => None,
        }
    }
}

/// What a path is, as far as `file` checks go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    File,
    Directory,
    Symlink,
}

impl std::fmt::Display for FileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FileKind::File => "file",
            FileKind::Directory => "directory",
            FileKind::Symlink => "symlink",
        })
    }
}

/// An expected mode: permission bits (with setuid, setgid and sticky), and the type when the text says one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeExpect {
    pub bits: u32,
    pub kind: Option<FileKind>,
    pub written: String,
}

/// An owner or group, by number or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Id(u64),
    Name(String),
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owner::Id(id) => write!(f, "{id}"),
            Owner::Name(name) => write!(f, "`{name}`"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct FileExpect {
    pub exists: bool,
    pub mode: Option<ModeExpect>,
    pub owner: Option<Owner>,
    pub group: Option<Owner>,
    pub kind: Option<FileKind>,
    pub contains: Option<String>,
    /// Compiled for bytes: a file need not be UTF-8.
    pub matches: Option<regex::bytes::Regex>,
    pub not_contains: Option<String>,
    pub entries: Vec<String>,
}

impl FileExpect {
    /// Whether a check looks into the file's content (and so follows a symlink).
    pub fn reads_content(&self) -> bool {
        self.contains.is_some() || self.matches.is_some() || self.not_contains.is_some()
    }
}

/// A mode as written: octal (`0644`, `644`, `4755`, `0o755`), or as `ls -l` shows it (`-rw-r--r--`,
/// `drwxr-xr-x`, `-rwsr-xr-x`; the first letter is the type) or Go's `FileMode` prints it (`Lrwxrwxrwx`,
/// `dtrwxrwxrwx`, `urwxr-xr-x`), which container-structure-test's `permissions` uses. Just the nine
/// `rwx` letters check no type.
pub fn parse_mode(text: &str) -> Result<ModeExpect, String> {
    let trimmed = text.trim();
    let written = trimmed.to_owned();
    let octal = trimmed.strip_prefix("0o").unwrap_or(trimmed);
    if !octal.is_empty() && octal.chars().all(|c| c.is_ascii_digit()) {
        let bits = match u32::from_str_radix(octal, 8) {
            Ok(bits) if octal.len() >= 3 && octal.len() <= 5 && bits <= 0o7777 => bits,
            _ => return Err("an octal mode has 3 or 4 digits from 0 to 7 (`0644`, `755`, `4755`)".to_owned()),
        };
        return Ok(ModeExpect { bits, kind: None, written });
    }
    let chars: Vec<char> = trimmed.chars().collect();
    if chars.len() < 9 {
        return Err("write the mode in octal (`0644`) or as `ls -l` shows it (`-rw-r--r--`)".to_owned());
    }
    let (prefix, perms) = chars.split_at(chars.len() - 9);
    let mut bits = 0;
    for (i, c) in perms.iter().enumerate() {
        let letter = ['r', 'w', 'x'][i % 3];
        let shift = 8 - i as u32;
        let special = match i {
            2 => Some(('s', 0o4000)),
            5 => Some(('s', 0o2000)),
            8 => Some(('t', 0o1000)),
            _ => None,
        };
        match (*c, special) {
            ('-', _) => {}
            (c, _) if c == letter => bits |= 1 << shift,
            (c, Some((s, flag))) if c == s => bits |= flag | (1 << shift),
            (c, Some((s, flag))) if c == s.to_ascii_uppercase() => bits |= flag,
            (c, _) => return Err(format!("`{c}` cannot stand where `{letter}` or `-` goes in `{trimmed}`")),
        }
    }
    let mut kind = (!prefix.is_empty()).then_some(FileKind::File);
    for c in prefix {
        match c {
            '-' => {}
            'd' => kind = Some(FileKind::Directory),
            'l' | 'L' => kind = Some(FileKind::Symlink),
            // Go's FileMode letters for setuid, setgid and sticky.
            'u' => bits |= 0o4000,
            'g' => bits |= 0o2000,
            't' => bits |= 0o1000,
            other => {
                return Err(format!(
                    "`{other}` is not a type seatrial checks: the first letter is `-` (file), `d` (directory) or \
                     `l` (symlink)"
                ));
            }
        }
    }
    Ok(ModeExpect { bits, kind, written })
}

/// A size as written: `250MB`, `1.5 GB`, `512kB` (powers of 1000, as `docker images` prints sizes), `200MiB`,
/// `1GiB` (powers of 1024), or a number of bytes (`1048576`, `100B`).
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let value: f64 = number.parse().map_err(|_| "a size is a number and a unit, such as `250MB`".to_owned())?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "mb" => 1000 * 1000,
        "gb" => 1000 * 1000 * 1000,
        "tb" => 1000 * 1000 * 1000 * 1000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        other => return Err(format!("`{other}` is not a unit: use B, kB, MB, GB (powers of 1000) or KiB, MiB, GiB")),
    };
    let bytes = value * scale as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err("a size must be at least one byte".to_owned());
    }
    Ok(bytes.round() as u64)
}

/// `8000` -> `8000/tcp`; `53/udp` as it is.
fn exposed_port(text: &str) -> Result<String, String> {
    let (port, protocol) = text.trim().split_once('/').unwrap_or((text.trim(), "tcp"));
    let protocol = protocol.to_ascii_lowercase();
    match port.parse::<u16>() {
        Ok(number) if number > 0 && matches!(protocol.as_str(), "tcp" | "udp" | "sctp") => {
            Ok(format!("{number}/{protocol}"))
        }
        _ => Err(format!("`{text}` is not a port: write `8000` or `53/udp`")),
    }
}

impl Planner<'_> {
    pub(super) fn image_step(&mut self, spec: &ImageStepSpec, names: &[String], at: Option<Loc>) -> Option<Step> {
        let of_at = loc(&spec.of);
        let shown = self.var(&spec.of.value, of_at);
        let unread_service = self.open_names && !self.images.contains_key(&shown) && !shown.contains([':', '/', '@']);
        let of = if names.contains(&shown) || unread_service {
            // A container's name also naming another image of `images:` would leave the reader guessing.
            if let Some(image) = self.images.get(&shown).cloned()
                && self.tracked.image_of(&shown).is_some_and(|current| current.name() != image.name)
            {
                self.error(
                    of_at,
                    ScenarioErrorKind::Invalid(format!(
                        "`{shown}` is both a container of this scenario and an image of `images:` it does not run: \
                         rename one of them"
                    )),
                );
            }
            ImageSubject::Container(shown.clone())
        } else if let Some(image) = self.images.get(&shown) {
            ImageSubject::Image(ImageRef::Built(image.clone()))
        } else if shown.contains([':', '/', '@']) {
            ImageSubject::Image(ImageRef::Engine(shown.clone()))
        } else {
            let known: Vec<String> = names.iter().chain(self.images.keys()).cloned().collect();
            let hint = match did_you_mean(&shown, &known) {
                Some(near) => format!(" (did you mean `{near}`?)"),
                None => " (for an engine image of this name, write `name:latest`)".to_owned(),
            };
            self.error(
                of_at,
                ScenarioErrorKind::Invalid(format!(
                    "`{shown}` is neither a container of this scenario nor an image of `images:`{hint}"
                )),
            );
            return None;
        };
        let expect = self.image_expect(&spec.expect, at);
        Some(Step::Image(ImageStep { of, shown, expect }))
    }

    fn image_expect(&mut self, e: &ImageExpectSpec, at: Option<Loc>) -> ImageExpect {
        let mut exposed = Vec::new();
        for port in &e.exposed {
            match exposed_port(&port.value.0) {
                Ok(port) => exposed.push(port),
                Err(why) => self.error(loc(port), ScenarioErrorKind::Invalid(why)),
            }
        }
        let size_under = e.size_under.as_ref().and_then(|size| {
            let written = self.var(&size.value.0, loc(size));
            match parse_byte_size(&written) {
                Ok(bytes) => Some(ByteLimit { bytes, written }),
                Err(why) => {
                    self.error(loc(size), ScenarioErrorKind::Invalid(format!("invalid size `{written}`: {why}")));
                    None
                }
            }
        });
        let pairs = |p: &mut Self, map: &indexmap::IndexMap<String, Scalar>| {
            map.iter().map(|(k, v)| (k.clone(), p.var(&v.0, at))).collect::<Vec<_>>()
        };
        let list = |p: &mut Self, list: &Option<Vec<String>>| {
            list.as_ref().map(|l| l.iter().map(|a| p.var(a, at)).collect::<Vec<_>>())
        };
        let expect = ImageExpect {
            user: e.user.as_ref().map(|u| self.var(&u.value, loc(u))),
            workdir: self.var_opt(&e.workdir, at),
            exposed,
            env: pairs(self, &e.env),
            entrypoint: list(self, &e.entrypoint),
            cmd: list(self, &e.cmd),
            labels: pairs(self, &e.labels),
            volumes: e.volumes.iter().map(|v| self.var(v, at)).collect(),
            healthcheck: e.healthcheck,
            size_under,
            not_root: e.not_root,
        };
        let nothing = expect.user.is_none()
            && expect.workdir.is_none()
            && e.exposed.is_empty()
            && expect.env.is_empty()
            && expect.entrypoint.is_none()
            && expect.cmd.is_none()
            && expect.labels.is_empty()
            && expect.volumes.is_empty()
            && expect.healthcheck.is_none()
            && e.size_under.is_none()
            && expect.not_root.is_none();
        if nothing {
            self.error(
                at,
                ScenarioErrorKind::Invalid(
                    "`image` checks nothing: give `expect:` one of `user`, `workdir`, `exposed`, `env`, \
                     `entrypoint`, `cmd`, `labels`, `volumes`, `healthcheck`, `size_under`, `not_root`"
                        .into(),
                ),
            );
        }
        expect
    }

    pub(super) fn file_step(&mut self, spec: &FileStepSpec, names: &[String], at: Option<Loc>) -> Option<Step> {
        let (source, shown) = match (&spec.container, &spec.image) {
            (Some(container), None) => {
                let (name, _) = self.container_name(container, names)?;
                (FileSource::Container(name.clone()), name)
            }
            (None, Some(image)) => {
                let images = self.images.clone();
                let image = self.image_ref(image, &images);
                let shown = image.name().to_owned();
                (FileSource::Image(image), shown)
            }
            _ => {
                self.error(
                    at,
                    ScenarioErrorKind::Invalid(
                        "`file` reads from a container or from an image: give `container:` or `image:`, one of them"
                            .into(),
                    ),
                );
                return None;
            }
        };
        let path_at = loc(&spec.path);
        let path = self.var(&spec.path.value, path_at);
        if !path.starts_with('/') {
            self.error(
                path_at,
                ScenarioErrorKind::Invalid(format!("the path `{path}` must be absolute (start with `/`)")),
            );
        }
        let expect = self.file_expect(&spec.expect, at);
        Some(Step::File(FileStep { source, shown, path, expect }))
    }

    fn file_expect(&mut self, e: &FileExpectSpec, at: Option<Loc>) -> FileExpect {
        let mode = e.mode.as_ref().and_then(|m| {
            let text = match &m.value {
                ModeText::Text(text) => self.var(text, loc(m)),
                ModeText::Number(number) => {
                    let why = format!(
                        "quote the mode (`mode: \"0644\"`): as a bare number (read here as {number}) it does not say \
                         which bits you mean, since YAML 1.1 readers take `0644` for octal and YAML 1.2 readers for \
                         decimal"
                    );
                    self.error(loc(m), ScenarioErrorKind::Invalid(why));
                    return None;
                }
            };
            match parse_mode(&text) {
                Ok(mode) => Some(mode),
                Err(why) => {
                    self.error(loc(m), ScenarioErrorKind::Invalid(format!("invalid mode `{text}`: {why}")));
                    None
                }
            }
        });
        let owner = |p: &mut Self, written: &Option<Spanned<Scalar>>, what: &str| {
            let written = written.as_ref()?;
            let text = p.var(&written.value.0, loc(written)).trim().to_owned();
            if text.is_empty() || text.contains([':', ' ']) {
                let why = format!("{what} is a number (`0`) or a name (`app`)");
                p.error(loc(written), ScenarioErrorKind::Invalid(why));
                return None;
            }
            Some(text.parse::<u64>().map_or(Owner::Name(text), Owner::Id))
        };
        let owner_expect = owner(self, &e.owner, "an owner");
        let group_expect = owner(self, &e.group, "a group");
        let matches = e.matches.as_ref().and_then(|r| {
            let text = self.var(&r.value, loc(r));
            match regex::bytes::Regex::new(&text) {
                Ok(re) => Some(re),
                Err(err) => {
                    self.error(loc(r), ScenarioErrorKind::InvalidRegex(err.to_string()));
                    None
                }
            }
        });
        let kind = e.kind.as_ref().map(|k| match k.value {
            FileKindSpec::File => FileKind::File,
            FileKindSpec::Directory => FileKind::Directory,
            FileKindSpec::Symlink => FileKind::Symlink,
        });
        let entries: Vec<String> = e.entries.iter().map(|n| self.var(n, at)).collect();
        for entry in &entries {
            if entry.is_empty() || entry.contains('/') || entry == "." || entry == ".." {
                let why = format!("`{entry}` is not a name in a folder: `entries` lists names, without `/`");
                self.error(at, ScenarioErrorKind::Invalid(why));
            }
        }
        let expect = FileExpect {
            exists: e.exists.unwrap_or(true),
            mode,
            owner: owner_expect,
            group: group_expect,
            kind,
            contains: self.var_opt(&e.contains, at),
            matches,
            not_contains: self.var_opt(&e.not_contains, at),
            entries,
        };
        let other_keys = e.mode.is_some()
            || e.owner.is_some()
            || e.group.is_some()
            || e.kind.is_some()
            || e.contains.is_some()
            || e.matches.is_some()
            || e.not_contains.is_some()
            || !e.entries.is_empty();
        if !expect.exists && other_keys {
            self.error(
                at,
                ScenarioErrorKind::Invalid(
                    "`exists: false` takes no other key: a path that must not exist has no mode, owner or content"
                        .into(),
                ),
            );
        }
        let type_of_mode = expect.mode.as_ref().and_then(|m| m.kind);
        if let (Some(kind), Some(of_mode)) = (expect.kind, type_of_mode)
            && kind != of_mode
        {
            let why = format!(
                "`type: {kind}` and the mode `{}` (a {of_mode}) contradict each other",
                expect.mode.as_ref().map_or("", |m| m.written.as_str())
            );
            self.error(at, ScenarioErrorKind::Invalid(why));
        }
        let kind = expect.kind.or(type_of_mode);
        if kind == Some(FileKind::Directory) && expect.reads_content() {
            self.error(
                at,
                ScenarioErrorKind::Invalid(
                    "a directory has no content to look into: `contains`, `matches` and `not_contains` are for \
                     files; `entries: [...]` checks what a directory holds"
                        .into(),
                ),
            );
        }
        if matches!(kind, Some(FileKind::File | FileKind::Symlink)) && !expect.entries.is_empty() {
            self.error(
                at,
                ScenarioErrorKind::Invalid(format!(
                    "`entries` lists what a directory holds, and this path is a {}",
                    kind.map_or_else(String::new, |k| k.to_string())
                )),
            );
        }
        expect
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_in_octal_and_as_ls_and_go_print_them() {
        for (written, bits, kind) in [
            ("0644", 0o644, None),
            ("644", 0o644, None),
            ("0o755", 0o755, None),
            ("4755", 0o4755, None),
            ("01777", 0o1777, None),
            ("-rw-r--r--", 0o644, Some(FileKind::File)),
            ("drwxr-xr-x", 0o755, Some(FileKind::Directory)),
            ("lrwxrwxrwx", 0o777, Some(FileKind::Symlink)),
            ("Lrwxrwxrwx", 0o777, Some(FileKind::Symlink)),
            ("-rwsr-xr-x", 0o4755, Some(FileKind::File)),
            ("-rwSr--r--", 0o4644, Some(FileKind::File)),
            ("drwxrwxrwt", 0o1777, Some(FileKind::Directory)),
            ("dtrwxrwxrwx", 0o1777, Some(FileKind::Directory)),
            ("urwxr-xr-x", 0o4755, Some(FileKind::File)),
            ("rw-r-----", 0o640, None),
        ] {
            let mode = parse_mode(written).unwrap_or_else(|e| panic!("{written}: {e}"));
            assert_eq!((mode.bits, mode.kind), (bits, kind), "{written}");
        }
        for refused in ["", "64", "0888", "777777", "-rw-r--r-x-", "prw-r--r--", "-rwxr-xr-q", "rwx"] {
            assert!(parse_mode(refused).is_err(), "{refused} is refused");
        }
    }

    #[test]
    fn sizes_read_as_docker_prints_them() {
        for (written, bytes) in [
            ("250MB", 250_000_000),
            ("1.5GB", 1_500_000_000),
            ("512kB", 512_000),
            ("512 KB", 512_000),
            ("200MiB", 200 << 20),
            ("1GiB", 1 << 30),
            ("1048576", 1 << 20),
            ("100B", 100),
        ] {
            assert_eq!(parse_byte_size(written), Ok(bytes), "{written}");
        }
        for refused in ["", "MB", "250 furlongs", "0MB", "-5MB", "1.2.3MB"] {
            assert!(parse_byte_size(refused).is_err(), "{refused} is refused");
        }
    }

    #[test]
    fn exposed_ports_are_written_as_the_engine_writes_them() {
        assert_eq!(exposed_port("8000").as_deref(), Ok("8000/tcp"));
        assert_eq!(exposed_port("53/UDP").as_deref(), Ok("53/udp"));
        assert!(exposed_port("0").is_err());
        assert!(exposed_port("80/http").is_err());
        assert!(exposed_port("http").is_err());
    }
}
