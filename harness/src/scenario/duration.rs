//! Durations as people write them in scenario files: `500ms`, `30s`, `1m30s`, `2m`.

use std::time::Duration;

/// What the JSON Schema accepts as a duration: jiff's friendly format in the forms people write, or any text
/// with a `${VAR}` (checked once the variable is known). A unit test keeps it in step with `parse_duration`.
pub const DURATION_PATTERN: &str = r"^(.*\$\{.*|\s*([0-9]+(\.[0-9]+)?\s*(ns|nsecs?|nanos?|nanoseconds?|us|µs|usecs?|micros?|microseconds?|ms|msecs?|millis?|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?)\s*,?\s*)+)$";

/// Parses a friendly duration with jiff (`500ms`, `1m30s`, `1.5s`, `2 minutes`); negative values are refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    // jiff also reads ISO 8601 (`PT30S`); one spelling keeps files, docs and the schema in step.
    if text.trim_start().trim_start_matches(['-', '+']).starts_with(['P', 'p']) {
        return Err(format!("write durations as `30s` or `1m30s`, not in ISO 8601 ({:?})", text.trim()));
    }
    let signed: jiff::SignedDuration = text.trim().parse().map_err(|e: jiff::Error| e.to_string())?;
    Duration::try_from(signed).map_err(|_| "a duration cannot be negative".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_people_write() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn the_schema_pattern_accepts_what_the_parser_accepts() {
        let pattern = regex::Regex::new(DURATION_PATTERN).unwrap();
        let samples = [
            "500ms",
            "30s",
            "1m30s",
            "2m",
            "1h",
            "1.5s",
            "2 minutes",
            "1 hour 30 minutes",
            "10 secs",
            "1h, 30m",
            "100us",
            "5ns",
            "0s",
            " 7s ",
            "5 parsecs",
            "-1s",
            "",
            "s",
            "10",
            "1m30",
            "abc",
            "1 fortnight",
            "3 days",
            "10 x",
            "PT1S",
            "pt5m",
        ];
        for sample in samples {
            assert_eq!(
                pattern.is_match(sample),
                parse_duration(sample).is_ok(),
                "schema and parser disagree on {sample:?}"
            );
        }
        assert!(pattern.is_match("${STOP_WITHIN:-5s}"));
    }
}
