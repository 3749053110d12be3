//! Seconds given on the command line (`-d 2.5`, `-i 1`, intervals), parsed
//! in one place: a finite, non-negative number no larger than a year, so
//! that `nan`, `inf` or `1e300` are clear errors instead of a panic when
//! turned into a `Duration`.

use std::time::Duration;

/// The longest span any option accepts: a year.
const MAX_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

/// The shortest reporting interval: shorter ones only flood the screen.
const MIN_INTERVAL: f64 = 0.01;

fn parse(text: &str) -> Result<f64, String> {
    let v: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !v.is_finite() {
        return Err(format!("`{text}` is not a finite number of seconds"));
    }
    if v < 0.0 {
        return Err(format!("`{text}`: seconds cannot be negative"));
    }
    if v > MAX_SECONDS {
        return Err(format!(
            "`{text}` seconds is more than a year ({MAX_SECONDS} s), the longest accepted"
        ));
    }
    Ok(v)
}

/// A duration option (`-d SECONDS`): 0 up to a year.
pub fn duration(text: &str) -> Result<Duration, String> {
    parse(text).map(Duration::from_secs_f64)
}

/// A reporting interval: at least 10 ms, at most a year.
pub fn interval(text: &str) -> Result<Duration, String> {
    let v = parse(text)?;
    if v < MIN_INTERVAL {
        return Err(format!(
            "`{text}`: an interval must be at least {MIN_INTERVAL} s"
        ));
    }
    Ok(Duration::from_secs_f64(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_what_duration_cannot_hold() {
        for bad in ["nan", "NaN", "inf", "-inf", "1e300", "-1", "x", ""] {
            assert!(duration(bad).is_err(), "{bad} accepted");
        }
        assert!(duration("inf").unwrap_err().contains("finite"));
        assert!(duration("1e300").unwrap_err().contains("more than a year"));
        assert_eq!(duration("2.5").unwrap(), Duration::from_millis(2500));
        assert_eq!(duration("0").unwrap(), Duration::ZERO);
    }

    #[test]
    fn intervals_are_not_zero() {
        assert!(interval("0").unwrap_err().contains("at least"));
        assert!(interval("0.001").is_err());
        assert_eq!(interval("1").unwrap(), Duration::from_secs(1));
    }
}
