//! The release steps: `replace` (an upgrade: the same container definition from another image, on the
//! same volumes), `kill` (a crash), `pause`/`unpause` (a frozen dependency), `disconnect`/`connect` (a
//! partition). What they did is kept in the scope's [`ReleaseLedger`], so that a later failure says it:
//! the crash and what the program logged as it started again, the new image's user who cannot write the
//! old data, the container that is paused or cut off at that moment.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::guard::{exited_halt, start_failure};
use super::scope::Scope;
use super::steps::{DEFAULT_STOP_GRACE, id_of, planned, stop_for_recreate, wait_after_lifecycle};
use super::{Halt, RunContext};
use crate::diagnose;
use crate::engine::container::{DEFAULT_NETWORK, MountConfig};
use crate::scenario::plan::{ImageRef, PlannedScenario, Step};

/// How often a `kill` looks whether the container has exited.
const EXIT_POLL: Duration = Duration::from_millis(50);

/// Lines of what a container logged after a crash shown with a later failure.
const RECOVERY_LINES: usize = 5;

/// Words with which programs say they recover from a crash, or fail to.
const RECOVERY_WORDS: &str = r"(?i)recover|replay|redo|journal|\bwal\b|checkpoint|corrupt|crash|unclean|not cleanly|interrupted|repair|integrity|rollback|roll back|lost|missing|truncat|error|fatal|panic|warn";

/// What holds a container back while it lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Hold {
    Paused,
    Disconnected,
}

#[derive(Debug, Clone)]
struct Held {
    /// The container it was done to: a re-created or replaced one is not held.
    id: String,
    note: String,
}

#[derive(Debug, Clone)]
struct Crash {
    signal: String,
    /// `step 3 of 6 (kill db with SIGKILL)`
    step: String,
    /// When it exited, by the engine's clock.
    at: jiff::Timestamp,
    /// The bytes of log it had written when it died, when the log was read whole.
    logged: Option<usize>,
}

#[derive(Debug, Clone)]
struct Replacement {
    from: String,
    to: String,
    step: String,
}

/// What the release steps did that a later failure may need to be told, by container.
#[derive(Debug, Default)]
pub struct ReleaseLedger {
    /// Paused or off the network now, and since which step: said with every failure while it lasts.
    held: BTreeMap<(String, Hold), Held>,
    /// Kills not yet told: the first failure after one says it, once.
    crashes: BTreeMap<String, Crash>,
    /// Replacements not yet told.
    replaced: BTreeMap<String, Replacement>,
}

/// The step under way, as the scope knows it (`step 3 of 6 (kill db with SIGKILL)`).
fn current_step(scope: &Scope) -> String {
    scope.phase_at(jiff::Timestamp::now()).unwrap_or_else(|| "a step".to_owned())
}

pub(super) async fn kill(
    ctx: &RunContext,
    scope: &Scope,
    container: &str,
    signal: &str,
    within: Duration,
) -> Result<(), Halt> {
    let id = id_of(scope, container)?;
    // Killing a container that already exited proves nothing about how it survives a crash.
    exited_halt(ctx, scope, container, format!("`{container}` running, to kill it with {signal}")).await?;
    ctx.engine.kill_container(&id, signal).await?;
    let deadline = Instant::now() + within;
    let state = loop {
        let state = scope.refresh(container).await?;
        if !state.running {
            break state;
        }
        if Instant::now() >= deadline {
            let mut diagnosis = Vec::new();
            if signal != "SIGKILL" && signal != "9" {
                diagnosis.push(format!(
                    "PID 1 of `{container}` did not end on {signal}: it handles or ignores it (the kernel gives PID 1 no \
                     default action for a signal it does not handle). `kill` with `signal: KILL` always ends it"
                ));
            }
            return Err(Halt::Check {
                expected: format!("`{container}` exits within {within:?} of {signal}"),
                actual: "it was still running".to_owned(),
                diagnosis,
                evidence: None,
            });
        }
        tokio::time::sleep(EXIT_POLL).await;
    };
    let at = state.finished_at.unwrap_or_else(jiff::Timestamp::now);
    // How much it had logged when it died: what comes after is what it logged since it started again,
    // counted so on every engine (Podman stamps log lines to the second only).
    let logged = ctx.engine.logs(&id, None).await.ok().map(|log| log.len());
    let crash = Crash { signal: signal.to_owned(), step: current_step(scope), at, logged };
    scope.with_release(|ledger| {
        ledger.held.remove(&(container.to_owned(), Hold::Paused));
        ledger.crashes.insert(container.to_owned(), crash)
    });
    Ok(())
}

pub(super) async fn pause(ctx: &RunContext, scope: &Scope, container: &str) -> Result<(), Halt> {
    let id = id_of(scope, container)?;
    exited_halt(ctx, scope, container, format!("`{container}` running, to pause it")).await?;
    ctx.engine.pause_container(&id).await?;
    let note = format!(
        "`{container}` is paused since {}: its processes are frozen, so it accepts connections and answers \
         nothing until `unpause`",
        current_step(scope)
    );
    scope.with_release(|ledger| ledger.held.insert((container.to_owned(), Hold::Paused), Held { id, note }));
    Ok(())
}

pub(super) async fn unpause(ctx: &RunContext, scope: &Scope, container: &str) -> Result<(), Halt> {
    let id = id_of(scope, container)?;
    ctx.engine.unpause_container(&id).await?;
    scope.with_release(|ledger| ledger.held.remove(&(container.to_owned(), Hold::Paused)));
    Ok(())
}

pub(super) async fn disconnect(ctx: &RunContext, scope: &Scope, container: &str) -> Result<(), Halt> {
    let live = scope
        .container(container)
        .ok_or_else(|| Halt::check(format!("container `{container}` exists"), "it was never created"))?;
    ctx.engine.disconnect_network(&live.config.network, &live.id).await?;
    // Its published ports went with the network.
    scope.refresh(container).await?;
    let others = if live.config.network == DEFAULT_NETWORK {
        "nothing reaches it through the network".to_owned()
    } else {
        "the other containers cannot reach it, nor it them".to_owned()
    };
    let note = format!(
        "`{container}` is disconnected since {}: {others}, and its published ports are gone",
        current_step(scope)
    );
    let held = Held { id: live.id, note };
    scope.with_release(|ledger| ledger.held.insert((container.to_owned(), Hold::Disconnected), held));
    Ok(())
}

pub(super) async fn connect(ctx: &RunContext, scope: &Scope, container: &str) -> Result<(), Halt> {
    let live = scope
        .container(container)
        .ok_or_else(|| Halt::check(format!("container `{container}` exists"), "it was never created"))?;
    // The default bridge knows no aliases; on the scenario's network it is found by its name again.
    let alias = (live.config.network != DEFAULT_NETWORK).then_some(live.config.alias.as_str());
    ctx.engine.connect_network(&live.config.network, &live.id, alias).await?;
    // Published again, at new host ports.
    scope.refresh(container).await?;
    scope.with_release(|ledger| ledger.held.remove(&(container.to_owned(), Hold::Disconnected)));
    Ok(())
}

/// `recreate` with another image: the old container is stopped as `recreate` stops it (its stop signal,
/// then its grace period), removed, and the same definition runs from `image`, with the same volumes (the
/// new image's own `VOLUME`s get theirs), then waits for `ready:`.
pub(super) async fn replace(
    ctx: &RunContext,
    scope: &Scope,
    scenario: &PlannedScenario,
    name: &str,
    image: &ImageRef,
) -> Result<(), Halt> {
    let container = planned(scenario, name).ok_or_else(|| Halt::check(format!("a container `{name}`"), "none"))?;
    let old = scope.container(name).ok_or_else(|| Halt::check(format!("container `{name}` exists"), "it does not"))?;
    // Built before the scenario's clock started: this is the build's outcome, failed or not.
    let tag = super::images::step_image(ctx, image).await?;
    let changes =
        ctx.engine.container_changes(&old.id, crate::engine::changes::ChangesFrom::Fastest).await.unwrap_or_default();
    scope.record_discarded(name, diagnose::data_files(&changes, &old.config));
    let grace = container.stop_grace_period.unwrap_or(DEFAULT_STOP_GRACE);
    stop_for_recreate(ctx, scope, name, &old.id, grace).await?;
    scope.remove_container(name).await?;
    let config =
        super::lifecycle::container_config(&ctx.engine, scope, container, tag, old.config.network.clone()).await?;
    let id = scope.create_container(name, config).await?;
    let from = scenario
        .containers
        .iter()
        .find(|c| c.name == name)
        .map_or_else(|| old.config.image.clone(), |c| c.image.name().to_owned());
    let replacement = Replacement { from, to: image.name().to_owned(), step: current_step(scope) };
    scope.with_release(|ledger| {
        ledger.held.retain(|(held, _), _| held != name);
        ledger.replaced.insert(name.to_owned(), replacement.clone());
    });
    if let Err(err) = ctx.engine.start_container(&id).await {
        return Err(start_failure(ctx, name, &id, err).await);
    }
    let mut waited = wait_after_lifecycle(ctx, scope, container, 0).await;
    if let Err(Halt::Check { diagnosis, .. }) = &mut waited {
        scope.with_release(|ledger| ledger.replaced.remove(name));
        if let Some(said) = old_data_not_writable(ctx, scope, name, &replacement).await {
            // Its advice (`chown` in the Dockerfile) cannot reach a volume that already holds data.
            diagnosis.retain(|d| !d.starts_with(&diagnose::volume_not_writable_start(name)));
            diagnosis.push(said);
        }
    }
    waited
}

/// What the release steps explain of a failed step: the containers paused or cut off now; a crash (with
/// what the program logged as it started again) and a replacement whose new user cannot write the old
/// data, told once, by the first step that fails after them.
pub async fn explain(ctx: &RunContext, scope: &Scope, step: &Step, diagnosis: &mut Vec<String>) {
    let (held, crashes, replaced) = scope.with_release(|ledger| {
        let held: Vec<((String, Hold), Held)> = ledger.held.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        // A replacement's own failure said what its image does to the data already.
        if matches!(step, Step::Replace { .. } | Step::Kill { .. }) {
            return (held, BTreeMap::new(), BTreeMap::new());
        }
        (held, std::mem::take(&mut ledger.crashes), std::mem::take(&mut ledger.replaced))
    });
    for ((name, hold), held) in held {
        // A container stopped since it was paused, or re-created since it was cut off, is held no more.
        let same = scope.container(&name).is_some_and(|live| live.id == held.id);
        let still = match hold {
            Hold::Paused => same && scope.refresh(&name).await.is_ok_and(|state| state.status == "paused"),
            Hold::Disconnected => same,
        };
        if still {
            diagnosis.push(held.note);
        } else {
            scope.with_release(|ledger| ledger.held.remove(&(name, hold)));
        }
    }
    for (name, crash) in &crashes {
        diagnosis.push(crash_told(ctx, scope, name, crash).await);
    }
    for (name, replacement) in &replaced {
        if let Some(said) = old_data_not_writable(ctx, scope, name, replacement).await {
            // Its advice (`chown` in the Dockerfile) cannot reach a volume that already holds data.
            diagnosis.retain(|d| !d.starts_with(&diagnose::volume_not_writable_start(name)));
            diagnosis.push(said);
        }
    }
}

/// Below this size a log is read whole, and its part after a crash found by length.
const LOG_READ_WHOLE: usize = crate::engine::container::LOG_CAPTURE_LIMIT / 2;

/// A crash, said with what the program logged since it started again: how it recovered, or failed to.
async fn crash_told(ctx: &RunContext, scope: &Scope, name: &str, crash: &Crash) -> String {
    let how = if crash.signal == "SIGKILL" || crash.signal == "9" {
        "it had no chance to finish what it was doing or to save what it held in memory".to_owned()
    } else {
        format!("{} ended it without the graceful stop its stop signal would have asked for", crash.signal)
    };
    let mut text = format!("`{name}` was killed with {} at {}: {how}", crash.signal, crash.step);
    let Some(live) = scope.container(name) else { return text };
    let whole_log = match crash.logged {
        Some(before) => {
            ctx.engine.logs(&live.id, None).await.ok().filter(|log| log.len() >= before && before < LOG_READ_WHOLE)
        }
        None => None,
    };
    let since_restart = whole_log
        .zip(crash.logged)
        .and_then(|(log, before)| log.get(before..).map(|rest| rest.lines().map(str::to_owned).collect::<Vec<_>>()));
    let lines = match since_restart {
        Some(lines) => lines,
        None => ctx.engine.logs_after(&live.id, crash.at, 2000).await.unwrap_or_default(),
    };
    let lines: Vec<&str> = lines.iter().map(|l| l.trim_end()).filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        let running = scope.refresh(name).await.is_ok_and(|s| s.running);
        if running {
            text.push_str(". Since it started again it has logged nothing");
        }
        return text;
    }
    static WORDS: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(RECOVERY_WORDS).expect("a valid pattern"));
    let telling: Vec<&str> = lines.iter().copied().filter(|l| WORDS.is_match(l)).collect();
    let (which, shown) = if telling.is_empty() {
        ("Its last lines since it started again", &lines[lines.len().saturating_sub(RECOVERY_LINES)..])
    } else {
        (
            "What it logged about recovering since it started again",
            &telling[telling.len().saturating_sub(RECOVERY_LINES)..],
        )
    };
    let quoted: Vec<String> = shown.iter().map(|l| crate::text::excerpt(l, 200)).collect();
    text.push_str(&format!(". {which}: {}", quoted.join(", ")));
    text
}

/// A replaced container whose new image runs as a user other than the one who wrote its volumes: an
/// image's `chown` reaches a volume only while it is empty, so release N+1 meets release N's owners.
async fn old_data_not_writable(
    ctx: &RunContext,
    scope: &Scope,
    name: &str,
    replacement: &Replacement,
) -> Option<String> {
    let live = scope.container(name)?;
    let user = ctx.engine.container_user(&live.id).await?;
    let user_name = crate::check::image::user_name(&user).to_owned();
    let passwd = match user_name.parse::<u64>() {
        Ok(_) => None,
        Err(_) => ctx.engine.archive_path(&live.id, "/etc/passwd", 1 << 20).await.ok().flatten(),
    };
    let passwd = passwd.map(|p| String::from_utf8_lossy(&p.content).into_owned());
    let uid = match crate::check::image::runs_as(&user, passwd.as_deref()) {
        crate::check::image::RunsAs::Uid(uid) if uid != 0 => uid,
        _ => return None,
    };
    for mount in &live.config.mounts {
        let MountConfig::Volume { target, .. } = mount else { continue };
        let Ok(Some(folder)) = ctx.engine.archive_path(&live.id, target, 0).await else { continue };
        if folder.uid == uid || folder.mode & 0o002 != 0 {
            continue;
        }
        let shown_user =
            if user_name.parse::<u64>().is_ok() { format!("uid {uid}") } else { format!("`{user_name}` (uid {uid})") };
        return Some(format!(
            "`{name}` runs image `{}` since {} as {shown_user}, but the volume at {target} holds what image `{}` \
             wrote: the folder belongs to uid {} (mode {:o}). An image's `chown` reaches a volume only while it is \
             empty; one that holds release N's data keeps its owners. Run the new release as the user who wrote the \
             data, or give the data to the new user before it starts (an entrypoint that runs `chown -R {} {target}` \
             as root, then drops to that user)",
            replacement.to,
            replacement.step,
            replacement.from,
            folder.uid,
            folder.mode & 0o7777,
            if user_name.is_empty() { uid.to_string() } else { user_name.clone() },
        ));
    }
    None
}
