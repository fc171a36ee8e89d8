//! Quartz cron expressions, as Flink's Kubernetes operator reads them (Quartz's
//! `CronExpression`): 6 or 7 fields (seconds minutes hours day-of-month month day-of-week
//! [year]) with `*`, `?`, lists, ranges (wrapping past the end, as `22-2` or `FRI-MON`), steps,
//! month and weekday names (weekdays 1 = SUN .. 7 = SAT), and Quartz's day specials: `L`
//! (last day), `L-n` (n days before it), `LW` (last weekday), `nW` (the weekday nearest day n,
//! within its month) in the day of month; `L` (Saturday), `nL` (the month's last weekday n) and
//! `n#k` (its k-th weekday n) in the day of week. As Quartz, a day of month and a day of week
//! cannot both be restricted (one of them is `?` or `*`; Quartz wants `?` in one, `*` in both
//! is read here as every day). Quartz's `L-nW` is refused by name. Times are UTC. Pure and without
//! dependencies: the autoscaler's excluded periods and the operator's periodic snapshot
//! schedules share it. Its answers are checked against Quartz's own for every example of
//! Quartz's documentation (see the tests).

const DAY_S: i64 = 86_400;
/// How far ahead [`Cron::next_after`] looks before it says the expression never fires again.
const HORIZON_DAYS: i64 = 400 * 366;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Cron {
    seconds: Vec<bool>,
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: DayOfMonth,
    months: Vec<bool>,
    weekdays: DayOfWeek,
    years: Option<Vec<(i64, i64)>>,
}

/// The day-of-month field.
#[derive(Debug, Clone, PartialEq)]
enum DayOfMonth {
    /// `*` or `?`.
    Any,
    /// Days 1-31.
    Days(Vec<bool>),
    /// `L` (0) or `L-n`: n days before the month's last.
    Last(i64),
    /// `LW`: the month's last Monday-to-Friday.
    LastWeekday,
    /// `nW`: the Monday-to-Friday nearest day n, without leaving the month.
    NearestWeekday(i64),
}

/// The day-of-week field, 1 = Sunday .. 7 = Saturday (Quartz).
#[derive(Debug, Clone, PartialEq)]
enum DayOfWeek {
    /// `*` or `?`.
    Any,
    Days(Vec<bool>),
    /// `nL`: the month's last weekday n.
    Last(i64),
    /// `n#k`: the month's k-th weekday n.
    Nth(i64, i64),
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const FIELDS: [&str; 7] = [
    "seconds",
    "minutes",
    "hours",
    "day-of-month",
    "month",
    "day-of-week",
    "year",
];

/// A value of a field: a number in `min..=max` or a name (JAN, MON) where `names` starts at
/// `min`.
fn value(t: &str, min: i64, max: i64, names: &[&str]) -> Result<i64, String> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(t)) {
        return Ok(min + i as i64);
    }
    let v: i64 = t
        .parse()
        .map_err(|_| format!("{t:?} is not a number or name"))?;
    if (min..=max).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is outside {min}-{max}"))
    }
}

/// One cron field as a set over `min..=max`. A range whose end is below its start wraps past
/// `max` (as Quartz reads `22-2` or `FRI-MON`).
fn field(text: &str, min: i64, max: i64, names: &[&str]) -> Result<Vec<bool>, String> {
    let mut set = vec![false; (max + 1) as usize];
    let span = max - min + 1;
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
                Some((a, b)) => (value(a, min, max, names)?, value(b, min, max, names)?),
                // `a/n`: from a to the end, every n (Quartz reads `5/1` so too).
                None if part.contains('/') => (value(range, min, max, names)?, max),
                None => {
                    let v = value(range, min, max, names)?;
                    (v, v)
                }
            },
        };
        let to = if to < from { to + span } else { to };
        let mut v = from;
        while v <= to {
            set[(min + (v - min) % span) as usize] = true;
            v += step;
        }
    }
    Ok(set)
}

fn is_any(text: &str) -> bool {
    text == "*" || text == "?"
}

fn day_of_month(text: &str) -> Result<DayOfMonth, String> {
    if is_any(text) {
        return Ok(DayOfMonth::Any);
    }
    let upper = text.to_ascii_uppercase();
    if upper.contains(['L', 'W']) {
        let special = if upper == "L" {
            Some(DayOfMonth::Last(0))
        } else if upper == "LW" {
            Some(DayOfMonth::LastWeekday)
        } else if let Some(offset) = upper.strip_prefix("L-") {
            offset
                .parse::<i64>()
                .ok()
                .filter(|n| (0..=30).contains(n))
                .map(DayOfMonth::Last)
        } else if let Some(day) = upper.strip_suffix('W') {
            day.parse::<i64>()
                .ok()
                .filter(|d| (1..=31).contains(d))
                .map(DayOfMonth::NearestWeekday)
        } else {
            None
        };
        return special.ok_or_else(|| {
            format!("{text:?}: L and W stand alone here, as L, L-3 (3 days before the last), LW (the last weekday) or 15W (the weekday nearest the 15th)")
        });
    }
    Ok(DayOfMonth::Days(field(text, 1, 31, &[])?))
}

fn day_of_week(text: &str) -> Result<DayOfWeek, String> {
    if is_any(text) {
        return Ok(DayOfWeek::Any);
    }
    let day = |t: &str| value(t, 1, 7, &WEEKDAYS);
    if let Some((weekday, nth)) = text.split_once('#') {
        let nth = nth
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=5).contains(n))
            .ok_or_else(|| format!("{text:?}: after # comes 1-5 (6#3: the third Friday)"))?;
        return Ok(DayOfWeek::Nth(day(weekday)?, nth));
    }
    if text.eq_ignore_ascii_case("L") {
        return Ok(DayOfWeek::Days(field("7", 1, 7, &WEEKDAYS)?));
    }
    if let Some(weekday) = text.strip_suffix(['L', 'l']) {
        if !weekday.contains([',', '-', '/']) {
            return Ok(DayOfWeek::Last(day(weekday)?));
        }
        return Err(format!(
            "{text:?}: L stands alone here or after one weekday (6L: the last Friday)"
        ));
    }
    Ok(DayOfWeek::Days(field(text, 1, 7, &WEEKDAYS)?))
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
    /// `until_ms` (ms since the Unix epoch).
    pub fn fires_within(&self, after_ms: i64, until_ms: i64) -> bool {
        self.first_from(after_ms.div_euclid(1000) + 1, until_ms.div_euclid(1000))
            .is_some()
    }

    /// The first second after `epoch_s` at which the expression fires, if it fires again
    /// (within 400 years).
    pub fn next_after(&self, epoch_s: i64) -> Option<i64> {
        let from = epoch_s + 1;
        self.first_from(from, (from.div_euclid(DAY_S) + HORIZON_DAYS) * DAY_S)
    }

    /// The first matching second in `from..=last`. Days, hours and minutes that cannot match
    /// are skipped whole, so a span of months costs little.
    fn first_from(&self, from: i64, last: i64) -> Option<i64> {
        let mut s = from;
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
                return Some(s);
            }
            s += 1;
        }
        None
    }

    /// Whether the day `days` since 1970-01-01 matches the day, month, weekday and year fields.
    fn day_matches(&self, days: i64) -> bool {
        let (year, month, day) = civil(days);
        if !self.months[month as usize]
            || !self
                .years
                .as_ref()
                .is_none_or(|ranges| ranges.iter().any(|(a, b)| (*a..=*b).contains(&year)))
        {
            return false;
        }
        let last = days_in_month(year, month);
        let weekday_of = |day_of_month: i64| (days - day + day_of_month + 4).rem_euclid(7) + 1;
        // 1970-01-01 was a Thursday (Quartz: 5).
        let weekday = weekday_of(day);
        let is_workday = |day_of_month: i64| (2..=6).contains(&weekday_of(day_of_month));
        let day_ok = match &self.days {
            DayOfMonth::Any => true,
            DayOfMonth::Days(set) => set[day as usize],
            DayOfMonth::Last(offset) => day == last - offset,
            DayOfMonth::LastWeekday => {
                let mut target = last;
                while !is_workday(target) {
                    target -= 1;
                }
                day == target
            }
            DayOfMonth::NearestWeekday(target) => {
                let target = *target;
                if target > last {
                    false
                } else {
                    let nearest = match weekday_of(target) {
                        // Saturday: the Friday before, or the Monday after the 1st.
                        7 if target == 1 => target + 2,
                        7 => target - 1,
                        // Sunday: the Monday after, or the Friday before the month's last.
                        1 if target == last => target - 2,
                        1 => target + 1,
                        _ => target,
                    };
                    day == nearest
                }
            }
        };
        let weekday_ok = match &self.weekdays {
            DayOfWeek::Any => true,
            DayOfWeek::Days(set) => set[weekday as usize],
            DayOfWeek::Last(wanted) => weekday == *wanted && day + 7 > last,
            DayOfWeek::Nth(wanted, nth) => weekday == *wanted && (day - 1) / 7 + 1 == *nth,
        };
        day_ok && weekday_ok
    }
}

fn cron(text: &str) -> Result<Cron, String> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    if !(6..=7).contains(&fields.len()) {
        return Err(format!(
            "{text:?} is not a Quartz cron expression (6 or 7 fields: seconds minutes hours day-of-month month day-of-week [year])"
        ));
    }
    let named = |i: usize, result: Result<Vec<bool>, String>| {
        result.map_err(|why| format!("{}: {why}", FIELDS[i]))
    };
    if !is_any(fields[3]) && !is_any(fields[5]) {
        return Err(format!(
            "{text:?}: the day-of-month ({}) and the day-of-week ({}) are both set; as in Quartz, one of them must be ? (e.g. \"0 0 12 ? * MON\" or \"0 0 12 1 * ?\")",
            fields[3], fields[5]
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
                        (Ok(a), Ok(b)) if a <= b => Ok((a, b)),
                        _ => Err(format!("year: {part:?} is not a year or range of years")),
                    }
                })
                .collect::<Result<Vec<_>, String>>()?,
        ),
    };
    Ok(Cron {
        seconds: named(0, field(fields[0], 0, 59, &[]))?,
        minutes: named(1, field(fields[1], 0, 59, &[]))?,
        hours: named(2, field(fields[2], 0, 23, &[]))?,
        days: day_of_month(fields[3]).map_err(|why| format!("{}: {why}", FIELDS[3]))?,
        months: named(4, field(fields[4], 1, 12, &MONTHS))?,
        weekdays: day_of_week(fields[5]).map_err(|why| format!("{}: {why}", FIELDS[5]))?,
        years,
    })
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
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
        assert_eq!(
            Cron::parse("* * 30 ? * *").unwrap_err(),
            "hours: 30 is outside 0-23"
        );
        assert!(
            Cron::parse("0 0 0 L-x * ?")
                .unwrap_err()
                .starts_with("day-of-month: \"L-x\": L and W stand alone here")
        );
        assert!(
            Cron::parse("0 0 0 ? * 6#9")
                .unwrap_err()
                .starts_with("day-of-week: \"6#9\": after # comes 1-5")
        );
        assert!(
            Cron::parse("0 0 12 1 * MON")
                .unwrap_err()
                .contains("one of them must be ?")
        );
    }

    /// Quartz refuses `*` in both day fields; here that means every day (nothing is lost by
    /// reading it so).
    #[test]
    fn a_star_in_both_day_fields_means_every_day() {
        let noon = Cron::parse("0 0 12 * * *").unwrap();
        assert_eq!(noon.next_after(START), Some(START + 12 * 3600));
    }

    /// 2026-01-01T00:00:00Z.
    const START: i64 = 1_767_225_600;

    /// Every example of Quartz's CronTrigger tutorial and `CronExpression` documentation
    /// (`L`, `L-n`, `LW`, `nW`, `nL`, `n#k`, years, steps, names), with edge cases (31W in
    /// short months, a Saturday 1W, FRI#5, wrapping ranges, Feb 29th, a past year), and the
    /// next six firings after 2026-01-01T00:00:00Z that Quartz's own `CronExpression`
    /// (quartz-scheduler/quartz at bb2505aa, UTC, `getNextValidTimeAfter`) computed for each;
    /// None: Quartz refuses the expression.
    const QUARTZ: &[(&str, Option<&[i64]>)] = &[
        (
            "0 0 12 * * ?",
            Some(&[
                1_767_268_800,
                1_767_355_200,
                1_767_441_600,
                1_767_528_000,
                1_767_614_400,
                1_767_700_800,
            ]),
        ),
        (
            "0 15 10 ? * *",
            Some(&[
                1_767_262_500,
                1_767_348_900,
                1_767_435_300,
                1_767_521_700,
                1_767_608_100,
                1_767_694_500,
            ]),
        ),
        (
            "0 15 10 * * ?",
            Some(&[
                1_767_262_500,
                1_767_348_900,
                1_767_435_300,
                1_767_521_700,
                1_767_608_100,
                1_767_694_500,
            ]),
        ),
        (
            "0 15 10 * * ? *",
            Some(&[
                1_767_262_500,
                1_767_348_900,
                1_767_435_300,
                1_767_521_700,
                1_767_608_100,
                1_767_694_500,
            ]),
        ),
        (
            "0 15 10 * * ? 2027",
            Some(&[
                1_798_798_500,
                1_798_884_900,
                1_798_971_300,
                1_799_057_700,
                1_799_144_100,
                1_799_230_500,
            ]),
        ),
        (
            "0 * 14 * * ?",
            Some(&[
                1_767_276_000,
                1_767_276_060,
                1_767_276_120,
                1_767_276_180,
                1_767_276_240,
                1_767_276_300,
            ]),
        ),
        (
            "0 0/5 14 * * ?",
            Some(&[
                1_767_276_000,
                1_767_276_300,
                1_767_276_600,
                1_767_276_900,
                1_767_277_200,
                1_767_277_500,
            ]),
        ),
        (
            "0 0/5 14,18 * * ?",
            Some(&[
                1_767_276_000,
                1_767_276_300,
                1_767_276_600,
                1_767_276_900,
                1_767_277_200,
                1_767_277_500,
            ]),
        ),
        (
            "0 0-5 14 * * ?",
            Some(&[
                1_767_276_000,
                1_767_276_060,
                1_767_276_120,
                1_767_276_180,
                1_767_276_240,
                1_767_276_300,
            ]),
        ),
        (
            "0 10,44 14 ? 3 WED",
            Some(&[
                1_772_633_400,
                1_772_635_440,
                1_773_238_200,
                1_773_240_240,
                1_773_843_000,
                1_773_845_040,
            ]),
        ),
        (
            "0 15 10 ? * MON-FRI",
            Some(&[
                1_767_262_500,
                1_767_348_900,
                1_767_608_100,
                1_767_694_500,
                1_767_780_900,
                1_767_867_300,
            ]),
        ),
        (
            "0 15 10 15 * ?",
            Some(&[
                1_768_472_100,
                1_771_150_500,
                1_773_569_700,
                1_776_248_100,
                1_778_840_100,
                1_781_518_500,
            ]),
        ),
        (
            "0 15 10 L * ?",
            Some(&[
                1_769_854_500,
                1_772_273_700,
                1_774_952_100,
                1_777_544_100,
                1_780_222_500,
                1_782_814_500,
            ]),
        ),
        (
            "0 15 10 L-2 * ?",
            Some(&[
                1_769_681_700,
                1_772_100_900,
                1_774_779_300,
                1_777_371_300,
                1_780_049_700,
                1_782_641_700,
            ]),
        ),
        (
            "0 15 10 ? * 6L",
            Some(&[
                1_769_768_100,
                1_772_187_300,
                1_774_606_500,
                1_777_025_700,
                1_780_049_700,
                1_782_468_900,
            ]),
        ),
        (
            "0 15 10 ? * 6L 2026-2028",
            Some(&[
                1_769_768_100,
                1_772_187_300,
                1_774_606_500,
                1_777_025_700,
                1_780_049_700,
                1_782_468_900,
            ]),
        ),
        (
            "0 15 10 ? * 6#3",
            Some(&[
                1_768_558_500,
                1_771_582_500,
                1_774_001_700,
                1_776_420_900,
                1_778_840_100,
                1_781_864_100,
            ]),
        ),
        (
            "0 0 12 1/5 * ?",
            Some(&[
                1_767_268_800,
                1_767_700_800,
                1_768_132_800,
                1_768_564_800,
                1_768_996_800,
                1_769_428_800,
            ]),
        ),
        (
            "0 11 11 11 11 ?",
            Some(&[
                1_794_395_460,
                1_825_931_460,
                1_857_553_860,
                1_889_089_860,
                1_920_625_860,
                1_952_161_860,
            ]),
        ),
        (
            "0 0 9 LW * ?",
            Some(&[
                1_769_763_600,
                1_772_182_800,
                1_774_947_600,
                1_777_539_600,
                1_780_045_200,
                1_782_810_000,
            ]),
        ),
        (
            "0 0 9 1W * ?",
            Some(&[
                1_767_258_000,
                1_770_022_800,
                1_772_442_000,
                1_775_034_000,
                1_777_626_000,
                1_780_304_400,
            ]),
        ),
        (
            "0 0 9 15W * ?",
            Some(&[
                1_768_467_600,
                1_771_232_400,
                1_773_651_600,
                1_776_243_600,
                1_778_835_600,
                1_781_514_000,
            ]),
        ),
        (
            "0 0 9 31W * ?",
            Some(&[
                1_769_763_600,
                1_774_947_600,
                1_780_045_200,
                1_785_488_400,
                1_788_166_800,
                1_793_350_800,
            ]),
        ),
        (
            "0 0 9 ? * L",
            Some(&[
                1_767_430_800,
                1_768_035_600,
                1_768_640_400,
                1_769_245_200,
                1_769_850_000,
                1_770_454_800,
            ]),
        ),
        (
            "0 0 9 ? * 2#1",
            Some(&[
                1_767_603_600,
                1_770_022_800,
                1_772_442_000,
                1_775_466_000,
                1_777_885_200,
                1_780_304_400,
            ]),
        ),
        (
            "0 0 9 ? * FRI#5",
            Some(&[
                1_769_763_600,
                1_780_045_200,
                1_785_488_400,
                1_793_350_800,
                1_801_213_200,
                1_809_075_600,
            ]),
        ),
        (
            "0 0 9 ? * 1",
            Some(&[
                1_767_517_200,
                1_768_122_000,
                1_768_726_800,
                1_769_331_600,
                1_769_936_400,
                1_770_541_200,
            ]),
        ),
        (
            "0 0 9 ? * 7",
            Some(&[
                1_767_430_800,
                1_768_035_600,
                1_768_640_400,
                1_769_245_200,
                1_769_850_000,
                1_770_454_800,
            ]),
        ),
        (
            "0 0 9 ? * SUN,SAT",
            Some(&[
                1_767_430_800,
                1_767_517_200,
                1_768_035_600,
                1_768_122_000,
                1_768_640_400,
                1_768_726_800,
            ]),
        ),
        (
            "0 0 22-2 ? * *",
            Some(&[
                1_767_229_200,
                1_767_232_800,
                1_767_304_800,
                1_767_308_400,
                1_767_312_000,
                1_767_315_600,
            ]),
        ),
        (
            "0 0 9 ? * FRI-MON",
            Some(&[
                1_767_344_400,
                1_767_430_800,
                1_767_517_200,
                1_767_603_600,
                1_767_949_200,
                1_768_035_600,
            ]),
        ),
        (
            "*/20 * * * * ?",
            Some(&[
                1_767_225_620,
                1_767_225_640,
                1_767_225_660,
                1_767_225_680,
                1_767_225_700,
                1_767_225_720,
            ]),
        ),
        (
            "0 0 0 29 2 ?",
            Some(&[
                1_835_395_200,
                1_961_625_600,
                2_087_856_000,
                2_214_086_400,
                2_340_316_800,
                2_466_547_200,
            ]),
        ),
        ("0 0 12 1 * MON", None),
        ("0 0 12 ? * 8", None),
        ("0 0 12 * * ? 2020", Some(&[])),
        (
            "0 0 12 ? JAN-MAR,NOV *",
            Some(&[
                1_767_268_800,
                1_767_355_200,
                1_767_441_600,
                1_767_528_000,
                1_767_614_400,
                1_767_700_800,
            ]),
        ),
        (
            "0 30 9 ? * 2-6/2",
            Some(&[
                1_767_346_200,
                1_767_605_400,
                1_767_778_200,
                1_767_951_000,
                1_768_210_200,
                1_768_383_000,
            ]),
        ),
        (
            "5/1 * * * * ?",
            Some(&[1_767_225_605, 1_767_225_606, 1_767_225_607, 1_767_225_608]),
        ),
        (
            "0 0/1 9 * * ?",
            Some(&[1_767_258_000, 1_767_258_060, 1_767_258_120, 1_767_258_180]),
        ),
    ];

    #[test]
    fn every_documented_quartz_example_fires_when_quartz_says() {
        for (expression, quartz) in QUARTZ {
            let parsed = Cron::parse(expression);
            let Some(expected) = quartz else {
                assert!(parsed.is_err(), "{expression}: Quartz refuses it");
                continue;
            };
            let cron = parsed.unwrap_or_else(|e| panic!("{expression}: {e}"));
            let mut at = START;
            let mut fired = Vec::new();
            while fired.len() < expected.len().max(1) {
                match cron.next_after(at) {
                    Some(next) => {
                        assert!(cron.matches(next), "{expression}: {next} matches");
                        assert!(cron.fires_within((at) * 1000, next * 1000));
                        assert!(!cron.fires_within(at * 1000, (next - 1) * 1000));
                        fired.push(next);
                        at = next;
                    }
                    None => break,
                }
            }
            assert_eq!(&fired[..], *expected, "{expression}");
        }
    }
}
