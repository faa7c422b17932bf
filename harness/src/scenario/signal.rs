//! Stop signals as compose and `docker run --stop-signal` take them: `SIGINT`, `INT`, `sigint` or a number.

/// The signal names the engine knows on Linux (moby's `signal.SignalMap`), without the `SIG` prefix.
const NAMES: [&str; 35] = [
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL", "PIPE", "POLL",
    "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1",
    "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ", "RTMIN",
];

/// The highest signal number on Linux (`SIGRTMAX`).
const HIGHEST: u32 = 64;
/// How far `RTMIN+n` and `RTMAX-n` reach, as in moby's table.
const REALTIME_OFFSETS: u32 = 15;

/// The signal in the form the engine and people read best: `SIGINT` for a name in any case, with or
/// without `SIG`; the number itself for a number. `Err` says what is wrong, for the file's error.
pub fn parse_signal(text: &str) -> Result<String, String> {
    let trimmed = text.trim();
    if let Ok(number) = trimmed.parse::<u32>() {
        return if (1..=HIGHEST).contains(&number) {
            Ok(number.to_string())
        } else {
            Err(format!("signal numbers go from 1 to {HIGHEST}"))
        };
    }
    let upper = trimmed.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let realtime = |prefix: &str| {
        name.strip_prefix(prefix)
            .and_then(|offset| offset.parse::<u32>().ok())
            .is_some_and(|offset| (1..=REALTIME_OFFSETS).contains(&offset))
    };
    if NAMES.contains(&name) || name == "RTMAX" || realtime("RTMIN+") || realtime("RTMAX-") {
        Ok(format!("SIG{name}"))
    } else {
        Err("not a signal the engine knows".to_owned())
    }
}

/// Every plain signal name, with its `SIG` prefix, for a "did you mean" hint.
pub fn signal_names() -> Vec<String> {
    NAMES.iter().chain(&["RTMAX"]).map(|n| format!("SIG{n}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_signals_as_compose_does() {
        for (written, meant) in [
            ("SIGINT", "SIGINT"),
            ("INT", "SIGINT"),
            ("sigterm", "SIGTERM"),
            ("quit", "SIGQUIT"),
            ("SIGRTMIN+3", "SIGRTMIN+3"),
            ("RTMAX-1", "SIGRTMAX-1"),
            ("2", "2"),
            ("64", "64"),
        ] {
            assert_eq!(parse_signal(written).as_deref(), Ok(meant), "{written}");
        }
        for refused in ["SIGFOO", "TREM", "0", "65", "", "SIG", "RTMIN+16", "-2", "INT TERM"] {
            assert!(parse_signal(refused).is_err(), "{refused} is refused");
        }
    }
}
