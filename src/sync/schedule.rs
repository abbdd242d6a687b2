//! When a job runs under `--daemon`: a 5-field cron `schedule` (in UTC,
//! or in a named `timezone`) or a fixed `every` (`30s`, `15m`, `6h`, `1d`),
//! plus an optional random `jitter` that spreads jobs out.
//!
//! Owns parsing (with the mistakes a config check reports) and the next
//! time after a given one. Never sleeps: the daemon does.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// When a job runs.
#[derive(Debug, Clone)]
pub struct Schedule {
    when: When,
    jitter: Duration,
}

#[derive(Debug, Clone)]
enum When {
    Cron(Box<Cron>, Option<chrono_tz::Tz>),
    Every(Duration),
}

/// The longest `jitter`: spreading runs over more than a week is a
/// mistake, and a huge one would push the next run past the calendar.
pub const MAX_JITTER: Duration = Duration::from_secs(7 * 86_400);

/// A mistake in a job's schedule keys, with the key it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleError {
    /// `schedule`, `every`, `timezone` or `jitter`.
    pub key: &'static str,
    pub message: String,
}

fn mistake(key: &'static str) -> impl Fn(String) -> ScheduleError {
    move |message| ScheduleError { key, message }
}

impl Schedule {
    /// From a job's keys; `Ok(None)` when it has neither `schedule` nor
    /// `every`.
    pub fn parse(
        schedule: Option<&str>,
        every: Option<&str>,
        timezone: Option<&str>,
        jitter: Option<&str>,
    ) -> Result<Option<Schedule>, ScheduleError> {
        let tz = timezone
            .map(|t| chrono_tz::Tz::from_str(t).map_err(|_| format!("unknown time zone {t:?}")))
            .transpose()
            .map_err(mistake("timezone"))?;
        let when = match (schedule, every) {
            (Some(_), Some(_)) => {
                return Err(mistake("every")("give schedule or every, not both".into()));
            }
            (None, None) => return Ok(None),
            (Some(c), None) => When::Cron(Box::new(cron(c).map_err(mistake("schedule"))?), tz),
            (None, Some(e)) => {
                if tz.is_some() {
                    return Err(mistake("timezone")(
                        "timezone applies to schedule, not every".into(),
                    ));
                }
                When::Every(duration(e).map_err(mistake("every"))?)
            }
        };
        let jitter = jitter
            .map(|j| {
                let d = duration(j)?;
                match d > MAX_JITTER {
                    true => Err(format!(
                        "jitter {j:?} is longer than the most a run may be spread by (7d)"
                    )),
                    false => Ok(d),
                }
            })
            .transpose()
            .map_err(mistake("jitter"))?
            .unwrap_or_default();
        let s = Schedule { when, jitter };
        if s.next_after(Utc::now()).is_none() {
            let key = if schedule.is_some() {
                "schedule"
            } else {
                "every"
            };
            return Err(mistake(key)("this schedule never comes round".into()));
        }
        Ok(Some(s))
    }

    /// The next run strictly after `t`, jitter added.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let next = match &self.when {
            When::Every(d) => t.checked_add_signed(chrono::Duration::from_std(*d).ok()?)?,
            When::Cron(c, None) => c.find_next_occurrence(&t, false).ok()?,
            When::Cron(c, Some(tz)) => c
                .find_next_occurrence(&t.with_timezone(tz), false)
                .ok()?
                .with_timezone(&Utc),
        };
        let jitter = self.jitter.mul_f64(fastrand::f64());
        next.checked_add_signed(chrono::Duration::from_std(jitter).ok()?)
    }
}

/// Exactly five fields: minute, hour, day of month, month, day of week.
fn cron(text: &str) -> Result<Cron, String> {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(text)
        .map_err(|e| format!("schedule {text:?}: {e} (five fields: minute hour day month weekday)"))
}

/// `30s`, `15m`, `6h`, `1d`: a whole number and a unit, at least a second.
pub fn duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?}: expected a number and s, m, h or d (30s, 15m, 6h)");
    let t = text.trim();
    let (n, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => None,
    }
    .ok_or_else(bad)?;
    if secs == 0 {
        return Err(format!("{text:?}: at least one second"));
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn durations() {
        assert_eq!(duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(duration("6h"), Ok(Duration::from_secs(21_600)));
        assert_eq!(duration("1d"), Ok(Duration::from_secs(86_400)));
        for bad in [
            "",
            "m",
            "5",
            "0s",
            "5w",
            "-5s",
            "99999999999999999999d",
            "1.5h",
        ] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cron_in_utc_or_a_time_zone_and_every() {
        let s = Schedule::parse(Some("*/15 * * * *"), None, None, None)
            .unwrap()
            .unwrap();
        assert_eq!(
            s.next_after(at("2026-01-01T10:07:00Z")),
            Some(at("2026-01-01T10:15:00Z"))
        );
        let berlin = Schedule::parse(Some("0 3 * * *"), None, Some("Europe/Berlin"), None)
            .unwrap()
            .unwrap();
        // 03:00 in Berlin in January is 02:00 UTC.
        assert_eq!(
            berlin.next_after(at("2026-01-01T00:00:00Z")),
            Some(Utc.with_ymd_and_hms(2026, 1, 1, 2, 0, 0).unwrap())
        );
        let every = Schedule::parse(None, Some("2s"), None, None)
            .unwrap()
            .unwrap();
        assert_eq!(
            every.next_after(at("2026-01-01T00:00:00Z")),
            Some(at("2026-01-01T00:00:02Z"))
        );
        let jittered = Schedule::parse(None, Some("1m"), None, Some("30s"))
            .unwrap()
            .unwrap();
        let n = jittered.next_after(at("2026-01-01T00:00:00Z")).unwrap();
        assert!(n >= at("2026-01-01T00:01:00Z") && n <= at("2026-01-01T00:01:30Z"));
        assert!(Schedule::parse(None, None, None, None).unwrap().is_none());
    }

    #[test]
    fn mistakes() {
        for (c, e, tz) in [
            (Some("0 0 * * * *"), None, None),
            (Some("* *"), None, None),
            (Some("0 0 30 2 *"), None, None),
            (Some("* * * * *"), Some("1m"), None),
            (Some("* * * * *"), None, Some("Mars/Olympus")),
            (None, Some("1m"), Some("UTC")),
        ] {
            assert!(
                Schedule::parse(c, e, tz, None).is_err(),
                "{c:?} {e:?} {tz:?}"
            );
        }
        let huge = Schedule::parse(None, Some("1m"), None, Some("99999999d")).unwrap_err();
        assert_eq!(huge.key, "jitter", "{huge:?}");
        assert!(huge.message.contains("longer than"), "{huge:?}");
        assert_eq!(
            Schedule::parse(None, Some("1m"), None, Some("1x"))
                .unwrap_err()
                .key,
            "jitter"
        );
        assert_eq!(
            Schedule::parse(Some("* *"), None, None, None)
                .unwrap_err()
                .key,
            "schedule"
        );
    }
}
