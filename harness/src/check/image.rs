//! An image's configuration against `image: { expect: ... }`: user, workdir, exposed ports, env,
//! entrypoint, cmd, labels, volumes, healthcheck, size and whether it runs as root. Each mismatch says
//! what was expected and what the image says instead.

use super::Mismatch;
use crate::engine::image::ImageFacts;
use crate::scenario::plan::ImageExpect;

/// Who an image's `USER` is, as far as its own `/etc/passwd` tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunsAs {
    Uid(u64),
    /// A user name that the image's `/etc/passwd` does not have: the engine refuses to start it.
    UnknownName,
    /// The image's `/etc/passwd` could not be read (why).
    Unreadable(String),
}

/// The user part of a `USER` (`app:staff` -> `app`) and whether it needs `/etc/passwd` to tell its uid.
pub fn user_name(user: &str) -> &str {
    user.split(':').next().unwrap_or_default().trim()
}

/// Whose uid `USER` is: root when empty, a number as it is, a name from `passwd` (the image's
/// `/etc/passwd`, `None` when it has none).
pub fn runs_as(user: &str, passwd: Option<&str>) -> RunsAs {
    let name = user_name(user);
    if name.is_empty() || name == "root" {
        return RunsAs::Uid(0);
    }
    if let Ok(uid) = name.parse::<u64>() {
        return RunsAs::Uid(uid);
    }
    let Some(passwd) = passwd else {
        return RunsAs::Unreadable("the image has no /etc/passwd".to_owned());
    };
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&name))
        .and_then(|fields| fields.get(2)?.parse().ok())
        .map_or(RunsAs::UnknownName, RunsAs::Uid)
}

/// A list as a Dockerfile's exec form writes it: `["python", "app.py"]`.
fn exec_form(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_default()
}

/// A size as `docker images` prints it (powers of 1000), with the bytes.
pub fn decimal_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {} ({bytes} bytes)", UNITS[unit])
}

fn described_user(user: &str) -> String {
    if user.is_empty() { "no `USER` (root)".to_owned() } else { format!("`USER {user}`") }
}

pub fn check_image(expect: &ImageExpect, facts: &ImageFacts, runs: Option<&RunsAs>) -> Vec<Mismatch> {
    let mut mismatches = Vec::new();
    if let Some(user) = &expect.user
        && *user != facts.user
    {
        let wanted = if user.is_empty() { "no `USER` (root)".to_owned() } else { format!("`USER {user}`") };
        mismatches.push(Mismatch::new(wanted, described_user(&facts.user)));
    }
    if let Some(workdir) = &expect.workdir
        && *workdir != facts.workdir
    {
        let actual = if facts.workdir.is_empty() {
            "no `WORKDIR` (/)".to_owned()
        } else {
            format!("`WORKDIR {}`", facts.workdir)
        };
        mismatches.push(Mismatch::new(format!("`WORKDIR {workdir}`"), actual));
    }
    let exposed = if facts.exposed.is_empty() { "no port".to_owned() } else { facts.exposed.join(", ") };
    for port in expect.exposed.iter().filter(|p| !facts.exposed.contains(p)) {
        mismatches.push(Mismatch::new(format!("`EXPOSE {port}`"), format!("it exposes {exposed}")));
    }
    for (key, value) in &expect.env {
        match facts.env.iter().find(|(k, _)| k == key) {
            Some((_, actual)) if actual == value => {}
            Some((_, actual)) => {
                mismatches.push(Mismatch::new(format!("env {key}={value}"), format!("{key}={actual}")))
            }
            None => mismatches.push(Mismatch::new(format!("env {key}={value}"), format!("no {key} in its env"))),
        }
    }
    for (name, wanted, actual) in
        [("ENTRYPOINT", &expect.entrypoint, &facts.entrypoint), ("CMD", &expect.cmd, &facts.cmd)]
    {
        let Some(wanted) = wanted else { continue };
        if wanted != actual {
            let shown = |list: &[String]| {
                if list.is_empty() { format!("no `{name}`") } else { format!("`{name} {}`", exec_form(list)) }
            };
            mismatches.push(Mismatch::new(shown(wanted), shown(actual)));
        }
    }
    for (key, value) in &expect.labels {
        match facts.labels.get(key) {
            Some(actual) if actual == value => {}
            Some(actual) => mismatches.push(Mismatch::new(format!("label {key}={value}"), format!("{key}={actual}"))),
            None => mismatches.push(Mismatch::new(format!("label {key}={value}"), format!("no label {key}"))),
        }
    }
    let volumes = if facts.volumes.is_empty() { "none".to_owned() } else { facts.volumes.join(", ") };
    for volume in expect.volumes.iter().filter(|v| !facts.volumes.contains(v)) {
        mismatches.push(Mismatch::new(
            format!("`VOLUME {volume}`"),
            format!("its volumes: {volume_list}", volume_list = volumes),
        ));
    }
    if let Some(wanted) = expect.healthcheck {
        let defined = facts.healthcheck.as_ref().filter(|test| test.first().is_some_and(|t| t != "NONE"));
        match (wanted, defined) {
            (true, None) => {
                let actual = if facts.healthcheck.is_some() { "`HEALTHCHECK NONE`" } else { "no `HEALTHCHECK`" };
                mismatches.push(Mismatch::new("a `HEALTHCHECK`", actual));
            }
            (false, Some(test)) => {
                mismatches.push(Mismatch::new("no `HEALTHCHECK`", format!("`HEALTHCHECK {}`", test.join(" "))));
            }
            _ => {}
        }
    }
    if let Some(limit) = &expect.size_under
        && facts.size >= limit.bytes
    {
        mismatches.push(Mismatch::new(format!("size under {}", limit.written), decimal_size(facts.size)));
    }
    if let (Some(not_root), Some(runs)) = (expect.not_root, runs) {
        let user = described_user(&facts.user);
        match (not_root, runs) {
            (true, RunsAs::Uid(0)) => {
                let actual = if user_name(&facts.user).is_empty() || user_name(&facts.user) == "root" {
                    format!("it runs as root: {user}")
                } else {
                    format!("it runs as root: {user} is uid 0 in the image's /etc/passwd")
                };
                mismatches.push(Mismatch::new("it runs as a user other than root", actual));
            }
            (true, RunsAs::UnknownName) => mismatches.push(Mismatch::new(
                "it runs as a user other than root",
                format!(
                    "{user} names no user of the image's /etc/passwd: the engine cannot start a container from it \
                     (`unable to find user {}`)",
                    user_name(&facts.user)
                ),
            )),
            (_, RunsAs::Unreadable(why)) => mismatches.push(Mismatch::new(
                if not_root { "it runs as a user other than root" } else { "it runs as root" },
                format!("{user}, whose uid is unknown: {why}"),
            )),
            (false, RunsAs::Uid(uid)) if *uid != 0 => {
                mismatches.push(Mismatch::new("it runs as root", format!("{user} (uid {uid})")));
            }
            (false, RunsAs::UnknownName) => mismatches.push(Mismatch::new(
                "it runs as root",
                format!("{user}, which names no user of the image's /etc/passwd"),
            )),
            _ => {}
        }
    }
    mismatches
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::plan::ByteLimit;

    fn facts() -> ImageFacts {
        ImageFacts {
            user: "app".into(),
            workdir: "/app".into(),
            exposed: vec!["8000/tcp".into()],
            env: vec![("LANG".into(), "C.UTF-8".into()), ("PATH".into(), "/bin".into())],
            entrypoint: vec![],
            cmd: vec!["python".into(), "app.py".into()],
            labels: [("org.opencontainers.image.title".to_owned(), "notes".to_owned())].into(),
            volumes: vec!["/data".into()],
            healthcheck: None,
            size: 216_827_723,
        }
    }

    #[test]
    fn an_image_that_matches_gives_no_mismatch() {
        let expect = ImageExpect {
            user: Some("app".into()),
            workdir: Some("/app".into()),
            exposed: vec!["8000/tcp".into()],
            env: vec![("LANG".into(), "C.UTF-8".into())],
            entrypoint: Some(vec![]),
            cmd: Some(vec!["python".into(), "app.py".into()]),
            labels: vec![("org.opencontainers.image.title".into(), "notes".into())],
            volumes: vec!["/data".into()],
            healthcheck: Some(false),
            size_under: Some(ByteLimit { bytes: 250_000_000, written: "250MB".into() }),
            not_root: Some(true),
        };
        assert_eq!(check_image(&expect, &facts(), Some(&RunsAs::Uid(1000))), vec![]);
    }

    #[test]
    fn each_mismatch_says_what_the_image_says_instead() {
        let expect = ImageExpect {
            user: Some("web".into()),
            exposed: vec!["8080/tcp".into()],
            env: vec![("LANG".into(), "en_US.UTF-8".into()), ("DEBUG".into(), "0".into())],
            entrypoint: Some(vec!["/start".into()]),
            volumes: vec!["/var/lib/app".into()],
            healthcheck: Some(true),
            size_under: Some(ByteLimit { bytes: 100_000_000, written: "100MB".into() }),
            ..ImageExpect::default()
        };
        let found: Vec<(String, String)> =
            check_image(&expect, &facts(), None).into_iter().map(|m| (m.expected, m.actual)).collect();
        let expected: Vec<(String, String)> = [
            ("`USER web`", "`USER app`"),
            ("`EXPOSE 8080/tcp`", "it exposes 8000/tcp"),
            ("env LANG=en_US.UTF-8", "LANG=C.UTF-8"),
            ("env DEBUG=0", "no DEBUG in its env"),
            ("`ENTRYPOINT [\"/start\"]`", "no `ENTRYPOINT`"),
            ("`VOLUME /var/lib/app`", "its volumes: /data"),
            ("a `HEALTHCHECK`", "no `HEALTHCHECK`"),
            ("size under 100MB", "216.8 MB (216827723 bytes)"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn root_is_told_from_the_user_and_the_images_passwd() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\ntoor:x:0:0::/:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n";
        assert_eq!(runs_as("", None), RunsAs::Uid(0));
        assert_eq!(runs_as("root", None), RunsAs::Uid(0));
        assert_eq!(runs_as("1000:1000", None), RunsAs::Uid(1000));
        assert_eq!(runs_as("app", Some(passwd)), RunsAs::Uid(1000));
        assert_eq!(runs_as("toor", Some(passwd)), RunsAs::Uid(0));
        assert_eq!(runs_as("ghost", Some(passwd)), RunsAs::UnknownName);
        assert!(matches!(runs_as("app", None), RunsAs::Unreadable(_)));
        let expect = ImageExpect { not_root: Some(true), ..ImageExpect::default() };
        let root = ImageFacts { user: String::new(), ..facts() };
        let said = check_image(&expect, &root, Some(&RunsAs::Uid(0)));
        assert_eq!(said[0].actual, "it runs as root: no `USER` (root)");
        let toor = ImageFacts { user: "toor".into(), ..facts() };
        let said = check_image(&expect, &toor, Some(&RunsAs::Uid(0)));
        assert_eq!(said[0].actual, "it runs as root: `USER toor` is uid 0 in the image's /etc/passwd");
        let said = check_image(&expect, &facts(), Some(&RunsAs::UnknownName));
        assert!(said[0].actual.contains("unable to find user app"), "{said:?}");
    }

    #[test]
    fn a_disabled_healthcheck_is_none() {
        let with_none = ImageFacts { healthcheck: Some(vec!["NONE".into()]), ..facts() };
        let expect = ImageExpect { healthcheck: Some(true), ..ImageExpect::default() };
        assert_eq!(check_image(&expect, &with_none, None)[0].actual, "`HEALTHCHECK NONE`");
        let expect = ImageExpect { healthcheck: Some(false), ..ImageExpect::default() };
        assert_eq!(check_image(&expect, &with_none, None), vec![]);
        let with_test =
            ImageFacts { healthcheck: Some(vec!["CMD-SHELL".into(), "curl -f localhost".into()]), ..facts() };
        assert_eq!(check_image(&expect, &with_test, None)[0].actual, "`HEALTHCHECK CMD-SHELL curl -f localhost`");
    }
}
