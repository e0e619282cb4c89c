//! Time: unix seconds, an injectable clock, RFC 3339 text. See docs/protocol.md#time.

/// The clock. The CLIs read `TONGBAO_NOW` (RFC 3339) so tests and demos control time.
pub trait Clock {
    /// Unix seconds now.
    fn now(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

/// A clock fixed at one instant.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub u64);

impl Clock for FixedClock {
    fn now(&self) -> u64 {
        self.0
    }
}

/// Why a time could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// Not RFC 3339.
    #[error("invalid time {0:?}: expected RFC 3339 like 2026-11-21T09:30:00Z")]
    BadTimestamp(String),
    /// Not a duration like 10m.
    #[error("invalid duration {0:?}: expected something like 90s, 10m, 2h or 7d")]
    BadDuration(String),
}

/// Parses RFC 3339 (`2026-11-21T09:30:00Z`, `2026-11-21T17:30:00+08:00`) or a plain date
/// (`2026-11-21`, midnight UTC).
pub fn parse_rfc3339(s: &str) -> Result<u64, TimeError> {
    let bad = || TimeError::BadTimestamp(s.to_string());
    let t = s.trim();
    if t.len() == 10 {
        return parse_utc(&format!("{t}T00:00:00Z")).ok_or_else(bad);
    }
    // A numeric offset: +08:00 or -05:30 at the end.
    if t.len() > 6 {
        let (head, tail) = t.split_at(t.len() - 6);
        let tb = tail.as_bytes();
        if (tb[0] == b'+' || tb[0] == b'-') && tb[3] == b':' {
            let hh: u64 = tail[1..3].parse().map_err(|_| bad())?;
            let mm: u64 = tail[4..6].parse().map_err(|_| bad())?;
            if hh > 23 || mm > 59 {
                return Err(bad());
            }
            let offset = hh * 3600 + mm * 60;
            let utc = parse_utc(&format!("{head}Z")).ok_or_else(bad)?;
            return if tb[0] == b'+' {
                utc.checked_sub(offset)
            } else {
                utc.checked_add(offset)
            }
            .ok_or_else(bad);
        }
    }
    parse_utc(t).ok_or_else(bad)
}

fn parse_utc(t: &str) -> Option<u64> {
    humantime::parse_rfc3339(t)
        .ok()
        .and_then(|st| st.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
}

/// Parses a duration such as `90s`, `10m`, `2h`, `7d`.
pub fn parse_duration(s: &str) -> Result<u64, TimeError> {
    humantime::parse_duration(s.trim())
        .map(|d| d.as_secs())
        .ok()
        .filter(|&secs| secs > 0)
        .ok_or_else(|| TimeError::BadDuration(s.to_string()))
}

/// Formats unix seconds as RFC 3339 UTC (`2026-11-21T09:30:00Z`).
pub fn format_rfc3339(secs: u64) -> String {
    // humantime covers years up to 9999; clamp rather than panic on absurd values.
    let secs = secs.min(253_402_300_799);
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The time for a command: `TONGBAO_NOW` (RFC 3339) if set, else the system clock.
pub fn now_from_env() -> Result<u64, TimeError> {
    match std::env::var("TONGBAO_NOW") {
        Ok(v) if !v.trim().is_empty() => parse_rfc3339(&v),
        _ => Ok(SystemClock.now()),
    }
}

/// Sentinel for "no end".
pub const FOREVER: u64 = u64::MAX;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let t = parse_rfc3339("2026-11-21T09:30:00Z");
        assert_eq!(t, Ok(1_795_253_400));
        assert_eq!(format_rfc3339(1_795_253_400), "2026-11-21T09:30:00Z");
        assert_eq!(parse_rfc3339("2026-11-21"), Ok(1_795_219_200));
        assert_eq!(
            parse_rfc3339("2026-11-21T17:30:00+08:00"),
            Ok(1_795_253_400)
        );
        assert_eq!(
            parse_rfc3339("2026-11-21T04:00:00-05:30"),
            Ok(1_795_253_400)
        );
        assert!(parse_rfc3339("yesterday").is_err());
        assert!(parse_rfc3339("2026-13-01T00:00:00Z").is_err());
        assert_eq!(parse_duration("10m"), Ok(600));
        assert_eq!(parse_duration("7d"), Ok(604_800));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("ten").is_err());
    }
}
