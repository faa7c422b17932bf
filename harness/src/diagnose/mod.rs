//! Why a failure happened, read from the container itself: what it listens on, how it exited, whether
//! PID 1 ignored SIGTERM, what it wrote outside its volumes. In: engine facts; out: sentences for people.

pub mod csrf;
pub mod django;
pub mod limits;
pub mod listen;

use crate::engine::container::{ContainerConfig, ContainerState, MountConfig};

/// Places where programs keep caches and runtime files, not data: their loss on re-creation is normal.
const NOT_DATA: [&str; 8] = ["/tmp", "/run", "/var/run", "/var/cache", "/var/log", "/root/.cache", "/proc", "/dev"];

/// Of a container's changed files (engine diff), those that look like data a re-creation loses: files
/// outside every mount, not caches, not bytecode.
pub fn data_files(changes: &[String], config: &ContainerConfig) -> Vec<String> {
    let mounted: Vec<&str> = config
        .mounts
        .iter()
        .map(|m| match m {
            MountConfig::Volume { target, .. } | MountConfig::Bind { target, .. } => target.as_str(),
        })
        .collect();
    let below = |path: &str, dir: &str| path == dir || path.starts_with(&format!("{}/", dir.trim_end_matches('/')));
    changes
        .iter()
        .filter(|p| !NOT_DATA.iter().any(|d| below(p, d)) && !mounted.iter().any(|d| below(p, d)))
        .filter(|p| !p.contains("__pycache__") && !p.ends_with(".pyc") && !p.ends_with(".pid") && !p.ends_with(".lock"))
        .filter(|p| p.rsplit('/').next().is_some_and(|name| name.contains('.')))
        .cloned()
        .collect::<std::collections::BTreeSet<String>>()
        .into_iter()
        .collect()
}

/// Data written to a container's own layer is gone once the container is re-created.
pub fn discarded_on_recreate(container: &str, files: &[String]) -> String {
    let shown: Vec<&str> = files.iter().take(5).map(String::as_str).collect();
    let more = if files.len() > 5 { format!(" and {} more", files.len() - 5) } else { String::new() };
    // Many files under one folder (a database server's data directory) are that folder's loss.
    let folder = common_folder(files).filter(|f| files.len() > 5 && f.matches('/').count() >= 1 && f != "/");
    let what = match folder {
        Some(folder) => format!("{} files under `{folder}` ({}{more})", files.len(), shown.join(", ")),
        None => format!("{}{more}", shown.join(", ")),
    };
    format!(
        "re-creating `{container}` discarded files it had written to its own layer, outside every volume: {what}. \
         Data that must survive re-creation belongs on a volume (point the app's data path, e.g. its database \
         file, at the mounted folder)"
    )
}

/// The deepest folder that holds every one of `files` (absolute paths).
fn common_folder(files: &[String]) -> Option<String> {
    let first = files.first()?;
    let mut parts: Vec<&str> = first.split('/').collect();
    parts.pop();
    for file in &files[1..] {
        let other: Vec<&str> = file.split('/').collect();
        let same = parts.iter().zip(&other[..other.len().saturating_sub(1)]).take_while(|(a, b)| a == b).count();
        parts.truncate(same);
    }
    let folder = parts.join("/");
    (!folder.is_empty()).then_some(folder)
}

/// What a container's exit says, with the last line of a Python traceback when the log has one.
pub fn exited(name: &str, state: &ContainerState, log: &str) -> String {
    let mut text = if state.status == "created" {
        format!("container `{name}` could not be started")
    } else {
        format!("container `{name}` exited with code {}", state.exit_code)
    };
    if state.oom_killed {
        text.push_str(" (killed: out of memory)");
    }
    if !state.error.is_empty() {
        text.push_str(&format!(" (engine: {})", state.error));
    }
    if let Some(last) = traceback_last_line(log) {
        text.push_str(&format!("; the program raised `{last}`"));
    } else if let Some(last) = log.lines().rev().map(str::trim).find(|l| !l.is_empty()) {
        // Usage errors, missing files, a shell's "not found": the last line usually says it.
        text.push_str(&format!("; its last line of output: {}", crate::text::excerpt(last, 200)));
    }
    text
}

/// The exception line that ends a Python traceback in `log`, if there is one.
pub fn traceback_last_line(log: &str) -> Option<&str> {
    let lines: Vec<&str> = log.lines().collect();
    let start = lines.iter().rposition(|l| l.starts_with("Traceback (most recent call last)"))?;
    lines[start + 1..].iter().find(|l| !l.starts_with(' ') && !l.trim().is_empty()).map(|l| l.trim())
}

/// Why the program a container runs (its ENTRYPOINT or CMD) could not be started, from the runtime's
/// error (`exec: "/app/start.sh": permission denied`, or `exec /app/start.sh: no such file or directory`
/// as the container's last output) and the file itself, read from the container: not executable, a
/// script with Windows line endings or with no `#!` line, an interpreter the image lacks.
pub async fn program_not_started(engine: &crate::engine::Engine, container_id: &str, message: &str) -> Option<String> {
    static PROGRAM: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#"exec:? "?([^":\s]+)"?:? (?:stat [^:]+: )?(permission denied|no such file or directory|exec format error|executable file not found in \$PATH)"#)
            .expect("a valid pattern")
    });
    let found = PROGRAM.captures(message)?;
    let (program, error) = (found.get(1)?.as_str(), found.get(2)?.as_str());
    if error.starts_with("executable file not found") {
        return Some(format!(
            "there is no program `{program}` on the image's PATH: install it in the image, or name it by its full path"
        ));
    }
    if !program.starts_with('/') {
        return None;
    }
    let Some(head) = engine.read_file_head(container_id, program, 256).await else {
        return Some(format!("there is no `{program}` in the image: COPY it there, or fix the path in CMD/ENTRYPOINT"));
    };
    let first_line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    if error == "permission denied" {
        return Some(format!(
            "`{program}` is not executable: `RUN chmod +x {program}` in the Dockerfile (or `COPY --chmod=755`)"
        ));
    }
    if !first_line.starts_with(b"#!") {
        return (!head.starts_with(b"\x7fELF")).then(|| {
            format!(
                "`{program}` is a script with no `#!` first line, so the kernel cannot run it: start it with \
                 `#!/bin/sh`"
            )
        });
    }
    if first_line.ends_with(b"\r") {
        return Some(format!(
            "`{program}` has Windows line endings (CRLF): its `#!` line asks for `{}\\r`, which does not exist. \
             Save it with LF line endings (or `RUN sed -i 's/\\r$//' {program}`)",
            String::from_utf8_lossy(&first_line[2..first_line.len() - 1]).trim()
        ));
    }
    let interpreter =
        String::from_utf8_lossy(&first_line[2..]).split_whitespace().next().unwrap_or_default().to_owned();
    if !interpreter.is_empty() && engine.read_file_head(container_id, &interpreter, 1).await.is_none() {
        return Some(format!("`{program}` asks for `{interpreter}` in its `#!` line, and the image has none"));
    }
    None
}

/// The last line a server logged that is not an access-log line, as a code span, (`"GET /healthz HTTP/1.1" 400`): why it
/// refused (Django: `Invalid HTTP_HOST header: ... add '127.0.0.1' to ALLOWED_HOSTS`).
pub fn last_server_message(log: &str) -> Option<String> {
    const ACCESS: [&str; 4] = ["\"GET ", "\"POST ", "\"HEAD ", " HTTP/1."];
    // Django's per-request lines (`Bad Request: /healthz`) repeat the status, not the reason.
    static STATUS_LINE: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"^[A-Z][A-Za-z ]+: /\S*$").expect("a valid pattern"));
    let line = log
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty() && !ACCESS.iter().any(|a| l.contains(a)) && !STATUS_LINE.is_match(l))?;
    Some(crate::text::excerpt(line, 300))
}

/// Words of an error that a folder the program cannot write explains.
const CANNOT_WRITE: [&str; 6] = [
    "ermission denied",
    "PermissionError",
    "unable to open database file",
    "readonly database",
    "Read-only file system",
    "EACCES",
];

/// A program that runs as another user than root and fails to write (`PermissionError`, `unable to
/// open database file`) because a volume's folder belongs to root: read from the container (its user,
/// `/etc/passwd`, the folder's owner and mode), said only when `error` speaks of a write refused.
pub async fn volume_not_writable(
    engine: &crate::engine::Engine,
    container_id: &str,
    name: &str,
    config: &ContainerConfig,
    error: &str,
) -> Option<String> {
    if !CANNOT_WRITE.iter().any(|w| error.contains(w)) {
        return None;
    }
    let user = engine.container_user(container_id).await?;
    let user_name = user.split(':').next().unwrap_or_default().to_owned();
    let uid = match user_name.parse::<u64>() {
        Ok(uid) => uid,
        Err(_) if user_name.is_empty() || user_name == "root" => 0,
        Err(_) => {
            let passwd = engine.read_file_head(container_id, "/etc/passwd", 64 * 1024).await?;
            String::from_utf8_lossy(&passwd)
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|fields| fields.first() == Some(&user_name.as_str()))
                .and_then(|fields| fields.get(2)?.parse().ok())?
        }
    };
    if uid == 0 {
        return None;
    }
    for mount in &config.mounts {
        let MountConfig::Volume { target, .. } = mount else { continue };
        let Some(folder) = engine.path_head(container_id, target, 0).await else { continue };
        if folder.uid != uid && folder.mode & 0o002 == 0 {
            return Some(format!(
                "{}`{user_name}` (uid {uid}), but the volume's folder `{target}` belongs to uid \
                 {} (mode {:o}), so the program cannot write there. In the Dockerfile, create the folder and give \
                 it to that user before `VOLUME` and `USER`: `RUN mkdir -p {target} && chown {user_name} {target}`",
                volume_not_writable_start(name),
                folder.uid,
                folder.mode & 0o7777
            ));
        }
    }
    None
}

/// How [`volume_not_writable`] starts its sentence about container `name`: a replacement whose new image
/// meets the old image's volume says the same with the right advice, and drops this one.
pub fn volume_not_writable_start(name: &str) -> String {
    format!("`{name}` runs as user ")
}

/// A stop that took the whole grace period and ended in SIGKILL means PID 1 did not act on its stop
/// signal (`signal`: SIGTERM unless the container or its image names another).
pub fn ignored_stop_signal(name: &str, signal: &str, exit_code: i64) -> Option<String> {
    (exit_code == 137).then(|| {
        format!(
            "PID 1 of `{name}` ignored {signal} and was killed with SIGKILL (exit code 137). The kernel gives PID 1 \
             no default signal handling: a shell-form CMD (`CMD python app.py`) makes /bin/sh PID 1, which does \
             not pass {signal} on, and a program that installs no {signal} handler ignores it. Use the exec form \
             (`CMD [\"python\", \"app.py\"]`) and handle {signal}, or run an init (`docker run --init`)"
        )
    })
}

/// A container that `recreate` had to kill: it had not exited a grace period after its stop signal, so
/// whatever it does on the way out (save its state, flush a file) did not happen.
pub fn killed_on_recreate(name: &str, signal: &str, grace: std::time::Duration) -> String {
    format!(
        "re-creating `{name}` first stopped it with {signal}, but it had not exited {grace:?} later and was \
         killed (exit code 137), so whatever it does on the way out (save its state, flush a file) never \
         happened. If the program stops on another signal, name it with `stop_signal:`; if it needs longer, \
         give it a `stop_grace_period:`; with a shell-form CMD, PID 1 is a shell that passes no signal on to \
         the program"
    )
}

#[cfg(test)]
mod tests {

    #[test]
    fn many_lost_files_under_one_folder_are_that_folders_loss() {
        let files: Vec<String> = (1..=7).map(|i| format!("/pgdata/base/{i}/pg_filenode.map")).collect();
        let said = super::discarded_on_recreate("db", &files);
        assert!(said.contains("7 files under `/pgdata/base` (/pgdata/base/1/pg_filenode.map"), "{said}");
        let said = super::discarded_on_recreate("web", &["/app/db.sqlite3".to_owned()]);
        assert!(said.contains("outside every volume: /app/db.sqlite3. Data"), "{said}");
    }

    use super::*;

    #[test]
    fn data_files_skip_mounts_caches_and_folders() {
        let config = ContainerConfig {
            name: "c".into(),
            image: "i".into(),
            env: vec![],
            cmd: None,
            entrypoint: None,
            user: None,
            workdir: None,
            ports: vec![],
            mounts: vec![MountConfig::Volume { name: "v".into(), target: "/data".into(), read_only: false }],
            network: "n".into(),
            alias: "c".into(),
            labels: Default::default(),
            stop_signal: None,
            stop_timeout: None,
        };
        let changes: Vec<String> =
            ["/app", "/app/db.sqlite3", "/data/db.sqlite3", "/tmp/x.txt", "/app/notes/__pycache__/v.cpython-311.pyc"]
                .map(String::from)
                .into();
        assert_eq!(data_files(&changes, &config), vec!["/app/db.sqlite3".to_owned()]);
    }

    #[test]
    fn finds_the_exception_of_a_traceback() {
        let log = "starting\nTraceback (most recent call last):\n  File \"app.py\", line 1\n    boom()\nNameError: name 'boom' is not defined\n";
        assert_eq!(traceback_last_line(log), Some("NameError: name 'boom' is not defined"));
        assert_eq!(traceback_last_line("all fine\n"), None);
    }

    #[test]
    fn a_servers_own_message_is_told_from_its_access_log() {
        let log = "Invalid HTTP_HOST header: '127.0.0.1:33729'. You may need to add '127.0.0.1' to ALLOWED_HOSTS.\n\
                   Bad Request: /healthz\n[23/Nov/2026 22:15:28] \"GET /healthz HTTP/1.1\" 400 143\n";
        assert_eq!(
            last_server_message(log).as_deref(),
            Some("`Invalid HTTP_HOST header: '127.0.0.1:33729'. You may need to add '127.0.0.1' to ALLOWED_HOSTS.`")
        );
        assert_eq!(last_server_message("\"GET / HTTP/1.1\" 400 1\n"), None);
    }

    #[test]
    fn an_exit_names_the_last_line_when_there_is_no_traceback() {
        let state = ContainerState {
            id: "c".into(),
            running: false,
            status: "exited".into(),
            exit_code: 2,
            oom_killed: false,
            pid: 0,
            restart_count: 0,
            host_ports: Default::default(),
            error: String::new(),
            stop_signal: "SIGTERM".into(),
            finished_at: None,
            memory_limit: 0,
            pids_limit: 0,
        };
        let log = "usage: kv.py [-h] [--port PORT]\nkv.py: error: unrecognized arguments: --prot 8080\n\n";
        assert_eq!(
            exited("kv", &state, log),
            "container `kv` exited with code 2; its last line of output: `kv.py: error: unrecognized arguments: --prot 8080`"
        );
        assert_eq!(exited("kv", &state, ""), "container `kv` exited with code 2");
    }
}
