//! Resource limits that bit: a container the kernel killed for its memory limit, one whose processes
//! could not fork at its pids limit. In: the engine's state, process count and the log; out: a sentence
//! that names the limit, so that a failure says "out of memory" rather than "exit code 137".

use crate::engine::container::{ContainerState, PidsCount};
use crate::text::excerpt;

/// What programs print when `fork()` or `clone()` fails for want of a process slot: busybox and dash
/// (`can't fork`), bash (`fork: retry`, `fork: Resource temporarily unavailable`), glibc and threads
/// (`pthread_create`, Java's `unable to create native thread`), Python (`os.fork()` raising EAGAIN).
const FORK_FAILED: [&str; 8] = [
    "can't fork",
    "cannot fork",
    "fork: retry",
    "fork failed",
    "fork: Resource temporarily unavailable",
    "can't create thread",
    "pthread_create",
    "create native thread",
];

/// EAGAIN's text: a fork failure at the pids limit says it, but so does a non-blocking read, so it
/// counts only when the process count is at the limit too.
const EAGAIN: &str = "Resource temporarily unavailable";

/// A size in bytes as people write memory limits: `2 GiB`, `256 MiB`, `1.5 GiB`.
pub fn bytes(amount: i64) -> String {
    const UNITS: [(&str, i64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if amount >= size {
            let value = amount as f64 / size as f64;
            return if amount % size == 0 { format!("{} {unit}", amount / size) } else { format!("{value:.1} {unit}") };
        }
    }
    format!("{amount} bytes")
}

/// A container the kernel killed for its memory (`State.OOMKilled`): its limit, and what the scenario
/// was doing when it died (`during`, from its exit time).
pub fn out_of_memory(name: &str, state: &ContainerState, during: Option<&str>) -> Option<String> {
    if !state.oom_killed {
        return None;
    }
    let limit = if state.memory_limit > 0 {
        format!("more than its memory limit of {}", bytes(state.memory_limit))
    } else {
        "more memory than the machine could give".to_owned()
    };
    let when = during.map(|what| format!(", during {what}")).unwrap_or_default();
    Some(format!(
        "`{name}` was killed by the kernel for using {limit} (the engine reports OOMKilled){when}. Something in it \
         grows without bound (a leak, an unbounded cache or queue, a whole file or table read into memory)"
    ))
}

/// The last line of `log` that says a fork failed, and whether it says so on its own (`can't fork`) or
/// only through EAGAIN, which needs the process count as a witness.
fn fork_failure(log: &str) -> Option<(&str, bool)> {
    let lines = || log.lines().rev().map(str::trim).filter(|l| !l.is_empty());
    lines()
        .find(|l| FORK_FAILED.iter().any(|f| l.contains(f)))
        .map(|l| (l, true))
        .or_else(|| lines().find(|l| l.contains(EAGAIN)).map(|l| (l, false)))
}

/// A container that reached its pids limit: its processes are at the limit now, or its log says a fork
/// failed. `limit` is the container's `PidsLimit` (0: none, when the stats' own limit is used).
pub fn pids_limit_reached(name: &str, limit: i64, pids: Option<PidsCount>, log: &str) -> Option<String> {
    let limit = u64::try_from(limit).ok().filter(|l| *l > 0).or(pids.and_then(|p| p.limit))?;
    let at_limit = pids.is_some_and(|p| p.current >= limit);
    let evidence = match fork_failure(log) {
        Some((line, true)) => Some(line),
        Some((line, false)) if at_limit => Some(line),
        _ => None,
    };
    if !at_limit && evidence.is_none() {
        return None;
    }
    let count = match pids {
        Some(p) if p.current >= limit => format!("pids.current {}", p.current),
        Some(p) => format!("pids.current now {}", p.current),
        None => "it is no longer running".to_owned(),
    };
    let failed = match evidence {
        Some(line) => format!(": fork failed, its log says {}", excerpt(line, 120)),
        None => ": a new process can only start once another ends".to_owned(),
    };
    Some(format!(
        "`{name}` reached its limit of {limit} processes ({count}){failed}. A program that starts a process or \
         thread per request or task without a bound (or a fork bomb) ends here: bound its workers"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oom_state(memory_limit: i64) -> ContainerState {
        ContainerState { oom_killed: true, exit_code: 137, memory_limit, ..ContainerState::default() }
    }

    #[test]
    fn sizes_read_as_limits_are_written() {
        assert_eq!(bytes(2 << 30), "2 GiB");
        assert_eq!(bytes(256 << 20), "256 MiB");
        assert_eq!(bytes(3 << 29), "1.5 GiB");
        assert_eq!(bytes(100), "100 bytes");
    }

    #[test]
    fn a_container_killed_for_memory_names_its_limit_and_the_step() {
        let said = out_of_memory("hog", &oom_state(2 << 30), Some("step 1 of 1 (exec hog: sleep 30)"));
        let said = said.expect("OOMKilled is told");
        assert!(said.starts_with("`hog` was killed by the kernel for using more than its memory limit of 2 GiB"));
        assert!(said.contains("(the engine reports OOMKilled), during step 1 of 1 (exec hog: sleep 30)."));
        assert_eq!(out_of_memory("ok", &ContainerState::default(), None), None);
    }

    #[test]
    fn the_pids_limit_is_named_from_the_count_or_the_log() {
        let log = "bombing\nsh: can't fork: Resource temporarily unavailable\n\n";
        let full = Some(PidsCount { current: 1024, limit: Some(1024) });
        assert_eq!(
            pids_limit_reached("bomb", 1024, full, log).expect("told").split(". ").next(),
            Some(
                "`bomb` reached its limit of 1024 processes (pids.current 1024): fork failed, its log says `sh: can't fork: Resource temporarily unavailable`"
            )
        );
        let calm = Some(PidsCount { current: 3, limit: Some(1024) });
        let said = pids_limit_reached("web", 1024, calm, "bash: fork: retry: Resource temporarily unavailable");
        assert!(said.expect("told").contains("(pids.current now 3): fork failed"));
        // EAGAIN alone is a non-blocking read as often as a fork: only at the limit does it count.
        assert_eq!(pids_limit_reached("web", 1024, calm, "read: Resource temporarily unavailable"), None);
        assert_eq!(pids_limit_reached("web", 1024, calm, "all fine"), None);
        let said = pids_limit_reached("web", 1024, full, "all fine").expect("at the limit is enough");
        assert!(said.contains("(pids.current 1024): a new process can only start once another ends"));
    }
}
