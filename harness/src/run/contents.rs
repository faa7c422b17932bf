//! The `image` and `file` steps: an image's configuration read from the engine's image inspect, a path
//! of a container or an image read through the archive API (an image through a container created from it
//! and never started, which the scope removes). Nothing runs in the image, so they work without a shell.

use super::scope::Scope;
use super::steps::{id_of, mismatches_to_halt};
use super::{Halt, RunContext};
use crate::check;
use crate::check::file::FileSeen;
use crate::check::image::RunsAs;
use crate::engine::archive::{PathFacts, PathKind};
use crate::scenario::plan::{FileSource, FileStep, ImageStep, ImageSubject, Owner};

/// Most of a file that content checks read: a huge file costs no more memory than this.
pub const FILE_READ_LIMIT: usize = 4 << 20;

/// Most of `/etc/passwd` or `/etc/group` read to name an owner.
const ACCOUNTS_LIMIT: usize = 1 << 20;

/// Most of a folder's archive read to show what it holds, when an entry is missing.
const LISTING_BUDGET: usize = 1 << 20;

/// How many symlinks a content check follows before it gives up (a loop).
const MAX_LINKS: usize = 8;

pub(super) async fn image_step(ctx: &RunContext, scope: &Scope, step: &ImageStep) -> Result<(), Halt> {
    let reference = match &step.of {
        ImageSubject::Container(name) => scope
            .container(name)
            .map(|live| live.config.image)
            .ok_or_else(|| Halt::check(format!("container `{name}` exists"), "it was never created"))?,
        ImageSubject::Image(image) => super::images::step_image(ctx, image).await?,
    };
    let facts = ctx.engine.inspect_image(&reference).await?;
    let runs_as = match step.expect.not_root {
        Some(_) => Some(runs_as(ctx, scope, &reference, &facts.user).await),
        None => None,
    };
    mismatches_to_halt(check::image::check_image(&step.expect, &facts, runs_as.as_ref()), Vec::new())
}

/// Whose uid the image's `USER` is; a name is looked up in the image's own `/etc/passwd`.
async fn runs_as(ctx: &RunContext, scope: &Scope, image: &str, user: &str) -> RunsAs {
    let name = check::image::user_name(user);
    if name.is_empty() || name == "root" || name.parse::<u64>().is_ok() {
        return check::image::runs_as(user, None);
    }
    let id = match scope.unstarted_container(image).await {
        Ok(id) => id,
        Err(e) => return RunsAs::Unreadable(format!("its /etc/passwd could not be read: {e}")),
    };
    match ctx.engine.archive_path(&id, "/etc/passwd", ACCOUNTS_LIMIT).await {
        Ok(Some(passwd)) => check::image::runs_as(user, Some(&String::from_utf8_lossy(&passwd.content))),
        Ok(None) => check::image::runs_as(user, None),
        Err(e) => RunsAs::Unreadable(format!("its /etc/passwd could not be read: {e}")),
    }
}

pub(super) async fn file_step(ctx: &RunContext, scope: &Scope, step: &FileStep) -> Result<(), Halt> {
    let (id, source) = match &step.source {
        FileSource::Container(name) => (id_of(scope, name)?, format!("`{name}`")),
        FileSource::Image(image) => {
            let reference = super::images::step_image(ctx, image).await?;
            (scope.unstarted_container(&reference).await?, format!("image `{}`", image.name()))
        }
    };
    let expect = &step.expect;
    let limit = if expect.reads_content() { FILE_READ_LIMIT } else { 0 };
    let facts = ctx.engine.archive_path(&id, &step.path, limit).await?;
    let mut seen = FileSeen { path: step.path.clone(), source, facts: facts.clone(), limit, ..FileSeen::default() };
    if let Some(facts) = &facts {
        if matches!(expect.owner, Some(Owner::Name(_))) {
            seen.user_name = Some(account_name(ctx, &id, "/etc/passwd", &facts.user_name, facts.uid).await);
        }
        if matches!(expect.group, Some(Owner::Name(_))) {
            seen.group_name = Some(account_name(ctx, &id, "/etc/group", &facts.group_name, facts.gid).await);
        }
        let looks_inside = expect.reads_content() || !expect.entries.is_empty();
        if looks_inside && facts.kind == PathKind::Symlink {
            seen.target = Some(follow(ctx, &id, &step.path, facts, limit).await?);
        }
        let (folder, folder_facts) = match &seen.target {
            Some(Ok((path, target))) => (path.clone(), target),
            _ => (step.path.clone(), facts),
        };
        if !expect.entries.is_empty() && folder_facts.kind == PathKind::Directory {
            for entry in &expect.entries {
                let path = format!("{}/{entry}", folder.trim_end_matches('/'));
                if ctx.engine.archive_path(&id, &path, 0).await?.is_none() {
                    seen.missing_entries.push(entry.clone());
                }
            }
            if !seen.missing_entries.is_empty() {
                seen.listing = ctx.engine.archive_listing(&id, &folder, LISTING_BUDGET).await?;
            }
        }
    }
    mismatches_to_halt(check::file::check_file(expect, &seen), Vec::new())
}

/// The name of uid or gid `id`: as the archive gave it (the engine reads the container's own accounts),
/// else from the container's `/etc/passwd` or `/etc/group`; empty when neither has it.
async fn account_name(ctx: &RunContext, container: &str, accounts: &str, given: &str, id: u64) -> String {
    if !given.is_empty() {
        return given.to_owned();
    }
    let Ok(Some(file)) = ctx.engine.archive_path(container, accounts, ACCOUNTS_LIMIT).await else {
        return String::new();
    };
    let wanted = id.to_string();
    String::from_utf8_lossy(&file.content)
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.get(2) == Some(&wanted.as_str()))
        .and_then(|fields| fields.first().map(|name| (*name).to_owned()))
        .unwrap_or_default()
}

/// Where a symlink leads, as `cat` would follow it: the final path and what is there; `Err` says why it
/// leads nowhere (a dangling link, a loop).
async fn follow(
    ctx: &RunContext,
    id: &str,
    path: &str,
    link: &PathFacts,
    limit: usize,
) -> Result<Result<(String, PathFacts), String>, Halt> {
    let mut current = (path.to_owned(), link.clone());
    for _ in 0..MAX_LINKS {
        let Some(target) = current.1.link_target.clone() else { break };
        let next = resolve_link(&current.0, &target);
        match ctx.engine.archive_path(id, &next, limit).await? {
            Some(facts) if facts.kind == PathKind::Symlink => current = (next, facts),
            Some(facts) => return Ok(Ok((next, facts))),
            None => return Ok(Err(format!("it is a symlink to `{target}`, and there is no `{next}`"))),
        }
    }
    Ok(Err(format!("it is a chain of more than {MAX_LINKS} symlinks (a loop?)")))
}

/// The path a link at `link_path` with content `target` names: absolute as it is, relative from the
/// link's folder, with `.` and `..` worked out.
fn resolve_link(link_path: &str, target: &str) -> String {
    let base = if target.starts_with('/') {
        String::new()
    } else {
        link_path.rsplit_once('/').map_or("", |(dir, _)| dir).to_owned()
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in base.split('/').chain(target.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::resolve_link;

    #[test]
    fn links_resolve_from_their_folder() {
        assert_eq!(resolve_link("/etc/localtime", "/usr/share/zoneinfo/UTC"), "/usr/share/zoneinfo/UTC");
        assert_eq!(resolve_link("/usr/bin/python3", "python3.11"), "/usr/bin/python3.11");
        assert_eq!(resolve_link("/app/current", "../releases/2/./app"), "/releases/2/app");
        assert_eq!(resolve_link("/link", "target"), "/target");
    }
}
