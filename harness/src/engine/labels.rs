//! The labels and names that mark what seatrial made, so that it can always be found and removed.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

pub const RUN: &str = "org.seatrial.run";
pub const SCENARIO: &str = "org.seatrial.scenario";
/// Seconds since the epoch when the run started: the sweep's age rule reads it.
pub const STARTED: &str = "org.seatrial.started";
/// The process id of the run, so that a sweep can tell a live run from a dead one on this host.
pub const PID: &str = "org.seatrial.pid";
pub const HOSTNAME: &str = "org.seatrial.host";
/// When the run's process started (clock ticks since boot): a pid reused by another process after the
/// run was killed must not keep the dead run's resources alive.
pub const PID_START: &str = "org.seatrial.pid-start";
/// On what `--keep` may leave for debugging: no sweep of dead runs touches it, only
/// `seatrial clean --run ID`.
pub const KEEP: &str = "org.seatrial.keep";

/// One run's identity: a short random id plus what the sweep needs to judge liveness.
#[derive(Debug, Clone)]
pub struct RunId {
    pub id: String,
    pub started: u64,
}

impl RunId {
    pub fn new() -> RunId {
        let started = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let seed = u64::from(nanos) ^ (u64::from(std::process::id()) << 32) ^ started;
        RunId { id: format!("{:08x}", (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as u32), started }
    }

    /// The labels every resource of this run carries.
    pub fn labels(&self, scenario: Option<&str>) -> HashMap<String, String> {
        let mut labels = HashMap::from([
            (RUN.to_owned(), self.id.clone()),
            (STARTED.to_owned(), self.started.to_string()),
            (PID.to_owned(), std::process::id().to_string()),
            (HOSTNAME.to_owned(), hostname()),
        ]);
        if let Some(start) = process_start(std::process::id()) {
            labels.insert(PID_START.to_owned(), start.to_string());
        }
        if let Some(scenario) = scenario {
            labels.insert(SCENARIO.to_owned(), scenario.to_owned());
        }
        labels
    }
}

impl Default for RunId {
    fn default() -> Self {
        RunId::new()
    }
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_default()
}

/// When process `pid` started, in clock ticks since boot (field 22 of `/proc/PID/stat`); `None` when
/// there is no such process or no procfs.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may itself hold spaces and parentheses.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// A name the engine accepts (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`), lower-case, at most `max` characters.
pub fn slug(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let trimmed: String = out.trim_end_matches('-').chars().take(max).collect();
    let trimmed = trimmed.trim_end_matches('-').to_owned();
    if trimmed.is_empty() { "x".to_owned() } else { trimmed }
}

/// A short stable hash, to keep names unique when slugs collide.
pub fn short_hash(text: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    format!("{:06x}", hasher.finish() & 0xff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_engine_names() {
        assert_eq!(slug("Notes survive restart & re-creation!", 40), "notes-survive-restart-re-creation");
        assert_eq!(slug("***", 10), "x");
        assert_eq!(slug("abcdef-ghi", 7), "abcdef");
    }

    #[test]
    fn a_process_start_time_is_read_for_live_processes_only() {
        let mine = process_start(std::process::id()).expect("this process has a start time");
        assert!(mine > 0);
        assert_eq!(process_start(std::process::id()), Some(mine), "it does not change");
        assert_eq!(process_start(u32::MAX), None);
    }
}
