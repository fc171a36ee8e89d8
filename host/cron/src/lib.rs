//! Quartz cron expressions, as Flink and its Kubernetes operator write them: 6 or 7 fields
//! (seconds, minutes, hours, day of month, month, day of week [, year]) with `*`, `?`, lists,
//! ranges, steps and month and weekday names; `L`, `W` and `#` are not supported and are refused
//! with a clear message. Times are UTC. Pure and without dependencies: the autoscaler's excluded
//! periods and the operator's periodic snapshot schedules share it.

const DAY_S: i64 = 86_400;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Cron {
    seconds: Vec<bool>,
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: Vec<bool>,
    months: Vec<bool>,
    /// 1 = Sunday .. 7 = Saturday (Quartz).
    weekdays: Vec<bool>,
    years: Option<Vec<(i64, i64)>>,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// One cron field as a set over `min..=max`; names (JAN, MON) where `names` starts at `min`.
fn field(text: &str, min: i64, max: i64, names: &[&str]) -> Result<Vec<bool>, String> {
    let mut set = vec![false; (max + 1) as usize];
    let value = |t: &str| -> Result<i64, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(t)) {
            return Ok(min + i as i64);
        }
        if t.contains(['L', 'W', '#']) && !names.iter().any(|n| n.eq_ignore_ascii_case(t)) {
            return Err(format!(
                "{t:?}: Quartz's L, W and # are not supported; list the days instead"
            ));
        }
        let v: i64 = t
            .parse()
            .map_err(|_| format!("{t:?} is not a number or name"))?;
        if (min..=max).contains(&v) {
            Ok(v)
        } else {
            Err(format!("{v} is outside {min}-{max}"))
        }
    };
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<i64>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("{part:?}: the step is not a positive number"))?,
            ),
            None => (part, 1),
        };
        let (from, to) = match range {
            "*" | "?" => (min, max),
            _ => match range.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                None if step > 1 => (value(range)?, max),
                None => {
                    let v = value(range)?;
                    (v, v)
                }
            },
        };
        let mut v = from;
        while v <= to {
            set[v as usize] = true;
            v += step;
        }
    }
    Ok(set)
}

impl Cron {
    /// Parses `text`; the error names the field that is wrong and the expected form.
    pub fn parse(text: &str) -> Result<Cron, String> {
        cron(text)
    }

    /// Whether the second `epoch_s` (since the Unix epoch, UTC) matches.
    pub fn matches(&self, epoch_s: i64) -> bool {
        let second_of_day = epoch_s.rem_euclid(DAY_S);
        self.seconds[(second_of_day % 60) as usize]
            && self.minutes[(second_of_day / 60 % 60) as usize]
            && self.hours[(second_of_day / 3600) as usize]
            && self.day_matches(epoch_s.div_euclid(DAY_S))
    }

    /// Whether the expression fires at some second after `after_ms` up to and including
    /// `until_ms` (ms since the Unix epoch). Days, hours and minutes that cannot match are
    /// skipped whole, so a span of months costs little.
    pub fn fires_within(&self, after_ms: i64, until_ms: i64) -> bool {
        let mut s = after_ms.div_euclid(1000) + 1;
        let last = until_ms.div_euclid(1000);
        while s <= last {
            let days = s.div_euclid(DAY_S);
            let second_of_day = s.rem_euclid(DAY_S);
            if !self.day_matches(days) {
                s = (days + 1) * DAY_S;
                continue;
            }
            if !self.hours[(second_of_day / 3600) as usize] {
                s = s - second_of_day % 3600 + 3600;
                continue;
            }
            if !self.minutes[(second_of_day / 60 % 60) as usize] {
                s = s - second_of_day % 60 + 60;
                continue;
            }
            if self.seconds[(second_of_day % 60) as usize] {
                return true;
            }
            s += 1;
        }
        false
    }

    /// Whether the day `days` since 1970-01-01 matches the day, month, weekday and year fields.
    fn day_matches(&self, days: i64) -> bool {
        let (year, month, day) = civil(days);
        // 1970-01-01 was a Thursday (Quartz: 5).
        let weekday = (days + 4).rem_euclid(7) + 1;
        self.days[day as usize]
            && self.months[month as usize]
            && self.weekdays[weekday as usize]
            && self
                .years
                .as_ref()
                .is_none_or(|ranges| ranges.iter().any(|(a, b)| (*a..=*b).contains(&year)))
    }
}

fn cron(text: &str) -> Result<Cron, String> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    if !(6..=7).contains(&fields.len()) {
        return Err(format!(
            "{text:?} is not a Quartz cron expression (6 or 7 fields: seconds minutes hours day-of-month month day-of-week [year])"
        ));
    }
    let years = match fields.get(6) {
        None | Some(&"*") | Some(&"?") => None,
        Some(years) => Some(
            years
                .split(',')
                .map(|part| {
                    let (a, b) = part.split_once('-').unwrap_or((part, part));
                    match (a.parse::<i64>(), b.parse::<i64>()) {
                        (Ok(a), Ok(b)) => Ok((a, b)),
                        _ => Err(format!("{part:?} is not a year or range of years")),
                    }
                })
                .collect::<Result<Vec<_>, String>>()?,
        ),
    };
    Ok(Cron {
        seconds: field(fields[0], 0, 59, &[])?,
        minutes: field(fields[1], 0, 59, &[])?,
        hours: field(fields[2], 0, 23, &[])?,
        days: field(fields[3], 1, 31, &[])?,
        months: field(fields[4], 1, 12, &MONTHS)?,
        weekdays: field(fields[5], 1, 7, &WEEKDAYS)?,
        years,
    })
}

/// Year, month (1-12), day (1-31) of a day count since 1970-01-01 (Hinnant's algorithm).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-30 (a Monday) at `h:m:s` UTC, in ms.
    fn monday(h: i64, m: i64, s: i64) -> i64 {
        (1_795_996_800 + h * 3600 + m * 60 + s) * 1000
    }

    #[test]
    fn the_calendar_is_right() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(1_795_996_800 / DAY_S), (2026, 11, 30));
        assert_eq!(civil(19_782), (2024, 2, 29), "a leap day");
    }

    #[test]
    fn weekdays_hours_and_names_match() {
        let cron = Cron::parse("* * 9-11,14-16 ? * 2-6").unwrap();
        assert!(cron.matches(monday(9, 0, 0) / 1000));
        assert!(!cron.matches(monday(12, 0, 0) / 1000));
        assert!(!cron.matches(monday(10, 0, 0) / 1000 - DAY_S), "Sunday");
        let named = Cron::parse("0 0 12 ? OCT,NOV MON").unwrap();
        assert!(named.matches(monday(12, 0, 0) / 1000));
    }

    #[test]
    fn fires_within_finds_the_next_firing_and_only_inside_the_span() {
        // Every day at 02:30:00.
        let nightly = Cron::parse("0 30 2 * * ?").unwrap();
        assert!(nightly.fires_within(monday(2, 29, 59), monday(2, 30, 0)));
        assert!(
            !nightly.fires_within(monday(2, 30, 0), monday(2, 31, 0)),
            "after is exclusive"
        );
        assert!(!nightly.fires_within(monday(3, 0, 0), monday(23, 0, 0)));
        assert!(nightly.fires_within(monday(3, 0, 0), monday(3, 0, 0) + DAY_S * 1000));
        // On the 1st of each month at midnight: a span of months is cheap to scan.
        let monthly = Cron::parse("0 0 0 1 * ?").unwrap();
        assert!(monthly.fires_within(monday(0, 0, 0), monday(0, 0, 0) + 40 * DAY_S * 1000));
        assert!(!monthly.fires_within(
            monday(0, 0, 1) + DAY_S * 1000,
            monday(0, 0, 0) + 30 * DAY_S * 1000
        ));
        // Every 15 seconds.
        let often = Cron::parse("0/15 * * * * ?").unwrap();
        assert!(often.fires_within(monday(1, 0, 1), monday(1, 0, 15)));
        assert!(!often.fires_within(monday(1, 0, 1), monday(1, 0, 14)));
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        assert!(Cron::parse("* * 9").unwrap_err().contains("Quartz"));
        assert!(
            Cron::parse("* * 30 ? * *")
                .unwrap_err()
                .contains("outside 0-23")
        );
        assert!(
            Cron::parse("0 0 0 L * ?")
                .unwrap_err()
                .contains("not supported")
        );
    }
}
