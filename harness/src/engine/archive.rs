//! Files of a container read through the engine's archive API (`GET /containers/{id}/archive`), which
//! works on running, stopped, paused and never-started containers and needs nothing in the image (no
//! shell, no `cat`, no `stat`). In: a container and a path; out, what the path is ([`PathFacts`]) with a
//! bounded part of its content, or a folder's names. Reads are bounded whatever the path holds: a huge
//! file or folder costs at most a few MiB of memory.

use futures_util::StreamExt;

use super::{Engine, EngineError};

/// Room kept for the headers before a file's content in the archive (a long name or a large id makes
/// the engine's tar writer add a PAX header of its own).
const HEADER_ROOM: usize = 64 * 1024;

/// What a path is in the archive's first entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathKind {
    File,
    Directory,
    Symlink,
    /// A hard link, a device, a FIFO: named as tar names it.
    Other(String),
}

impl std::fmt::Display for PathKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PathKind::File => f.write_str("file"),
            PathKind::Directory => f.write_str("directory"),
            PathKind::Symlink => f.write_str("symlink"),
            PathKind::Other(kind) => f.write_str(kind),
        }
    }
}

/// A path as the archive's header tells it, with the first part of a file's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathFacts {
    pub kind: PathKind,
    /// Permission bits with setuid, setgid and sticky (`0o4755`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// The owner's and group's names as the engine wrote them from the container's own `/etc/passwd` and
    /// `/etc/group`; empty when it has none for the id.
    pub user_name: String,
    pub group_name: String,
    /// The file's size in bytes (0 for anything but a file).
    pub size: u64,
    /// Where a symlink points, as written in it.
    pub link_target: Option<String>,
    /// The first bytes of a file, at most the limit asked for.
    pub content: Vec<u8>,
}

impl PathFacts {
    /// Whether the content holds less than the whole file.
    pub fn cut(&self) -> bool {
        (self.content.len() as u64) < self.size
    }
}

/// The names a folder holds directly, as far as the bytes read reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub names: Vec<String>,
    /// Whether the whole folder was read; otherwise there are more names than these.
    pub complete: bool,
}

impl Engine {
    /// The path's header and at most `limit` bytes of a file's content (`GET /containers/{id}/archive`);
    /// `None` when the container has no such path. The stream is dropped once that much is read, so a
    /// folder's archive, however big, or a huge file is not read further.
    pub async fn archive_path(&self, id: &str, path: &str, limit: usize) -> Result<Option<PathFacts>, EngineError> {
        let Some(bytes) = self.archive_bytes(id, path, HEADER_ROOM + limit).await? else { return Ok(None) };
        Ok(first_entry(&bytes.0, limit))
    }

    /// The names the folder at `path` holds directly, from at most `budget` bytes of its archive.
    pub async fn archive_listing(&self, id: &str, path: &str, budget: usize) -> Result<Option<Listing>, EngineError> {
        let Some((bytes, complete)) = self.archive_bytes(id, path, budget).await? else { return Ok(None) };
        Ok(Some(direct_names(&bytes, complete)))
    }

    /// The first `budget` bytes of the path's archive, and whether that is all of it; `None`: no such path.
    async fn archive_bytes(&self, id: &str, path: &str, budget: usize) -> Result<Option<(Vec<u8>, bool)>, EngineError> {
        let options = bollard::query_parameters::DownloadFromContainerOptions { path: path.to_owned() };
        let mut stream = self.docker.download_from_container(id, Some(options));
        let mut bytes = Vec::new();
        let mut complete = true;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                // The engine answers 404 for a missing path and for a missing container: only the
                // first is an answer about the file.
                Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, message })
                    if !message.contains("No such container") =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(EngineError::new("read archive of", format!("{id}:{path}"), e)),
            }
            if bytes.len() >= budget {
                complete = false;
                break;
            }
        }
        Ok(Some((bytes, complete)))
    }
}

/// The archive's first entry (the path itself), its content cut at `limit`; `None` when the bytes hold no
/// complete header.
fn first_entry(tar_bytes: &[u8], limit: usize) -> Option<PathFacts> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut entry = archive.entries().ok()?.next()?.ok()?;
    let header = entry.header();
    let kind = match header.entry_type() {
        tar::EntryType::Regular | tar::EntryType::Continuous => PathKind::File,
        tar::EntryType::Directory => PathKind::Directory,
        tar::EntryType::Symlink => PathKind::Symlink,
        tar::EntryType::Link => PathKind::Other("hard link".to_owned()),
        tar::EntryType::Char => PathKind::Other("character device".to_owned()),
        tar::EntryType::Block => PathKind::Other("block device".to_owned()),
        tar::EntryType::Fifo => PathKind::Other("FIFO".to_owned()),
        other => PathKind::Other(format!("{other:?}")),
    };
    let name = |bytes: Option<&[u8]>| bytes.map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
    let mut facts = PathFacts {
        mode: header.mode().ok()? & 0o7777,
        uid: header.uid().ok()?,
        gid: header.gid().ok()?,
        user_name: name(header.username_bytes()),
        group_name: name(header.groupname_bytes()),
        size: if kind == PathKind::File { entry.size() } else { 0 },
        link_target: entry.link_name().ok().flatten().map(|l| l.to_string_lossy().into_owned()),
        content: Vec::new(),
        kind,
    };
    if facts.kind == PathKind::File {
        let wanted = limit.min(usize::try_from(facts.size).unwrap_or(usize::MAX));
        let mut content = vec![0; wanted];
        let mut read = 0;
        // The bytes may end inside the content (the engine's stream was cut at the budget): keep what came.
        while read < wanted {
            match std::io::Read::read(&mut entry, &mut content[read..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
        content.truncate(read);
        facts.content = content;
    }
    Some(facts)
}

/// The names right below the archive's top folder (`app/manage.py` -> `manage.py`), sorted; the last
/// entry of a cut archive may be cut too, so it counts only when the archive is complete.
fn direct_names(tar_bytes: &[u8], complete: bool) -> Listing {
    let mut names = Vec::new();
    let mut archive = tar::Archive::new(tar_bytes);
    let mut whole = complete;
    if let Ok(entries) = archive.entries() {
        for entry in entries {
            let Ok(entry) = entry else {
                whole = false;
                break;
            };
            let Ok(path) = entry.path() else { continue };
            let parts: Vec<String> = path.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            if let [_, name] = parts.as_slice() {
                names.push(name.clone());
            }
        }
    }
    names.sort();
    names.dedup();
    Listing { names, complete: whole }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(entries: &[(&str, tar::EntryType, &[u8], u32)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, kind, content, mode) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_mode(*mode);
            header.set_uid(1000);
            header.set_gid(1000);
            header.set_username("app").expect("a short name");
            header.set_size(content.len() as u64);
            if *kind == tar::EntryType::Symlink {
                header.set_link_name("target").expect("a short link");
            }
            builder.append_data(&mut header, path, *content).expect("an entry");
        }
        builder.into_inner().expect("the archive")
    }

    #[test]
    fn a_files_header_and_the_start_of_its_content() {
        let bytes = archive(&[("notes.txt", tar::EntryType::Regular, b"hello world", 0o4644)]);
        let facts = first_entry(&bytes, 5).expect("an entry");
        assert_eq!(facts.kind, PathKind::File);
        assert_eq!((facts.mode, facts.uid, facts.gid), (0o4644, 1000, 1000));
        assert_eq!(facts.user_name, "app");
        assert_eq!((facts.size, facts.content.as_slice()), (11, b"hello".as_slice()));
        assert!(facts.cut());
        let whole = first_entry(&bytes, 1 << 20).expect("an entry");
        assert_eq!(whole.content, b"hello world");
        assert!(!whole.cut());
    }

    #[test]
    fn an_archive_cut_inside_the_content_keeps_what_came() {
        let content = vec![b'x'; 4096];
        let bytes = archive(&[("big", tar::EntryType::Regular, &content, 0o644)]);
        let facts = first_entry(&bytes[..512 + 1000], 1 << 20).expect("the header is whole");
        assert_eq!((facts.size, facts.content.len()), (4096, 1000));
        assert!(first_entry(&bytes[..100], 10).is_none(), "no whole header, no facts");
    }

    #[test]
    fn symlinks_and_folders_are_told_apart() {
        let bytes = archive(&[("link", tar::EntryType::Symlink, b"", 0o777)]);
        let link = first_entry(&bytes, 10).expect("an entry");
        assert_eq!((link.kind, link.link_target.as_deref()), (PathKind::Symlink, Some("target")));
        let bytes = archive(&[
            ("app/", tar::EntryType::Directory, b"", 0o755),
            ("app/manage.py", tar::EntryType::Regular, b"x", 0o644),
            ("app/notes/", tar::EntryType::Directory, b"", 0o755),
            ("app/notes/models.py", tar::EntryType::Regular, b"y", 0o644),
        ]);
        assert_eq!(first_entry(&bytes, 10).map(|f| f.kind), Some(PathKind::Directory));
        let listing = direct_names(&bytes, true);
        assert_eq!(listing.names, vec!["manage.py".to_owned(), "notes".to_owned()]);
        assert!(listing.complete);
        let cut = direct_names(&bytes[..1024 + 100], false);
        assert_eq!(cut.names, vec!["manage.py".to_owned()]);
        assert!(!cut.complete);
    }
}
