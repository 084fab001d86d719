//! Login hours (P5): per user, per weekday, a start and end time in the tenant's time zone.
//!
//! A window whose end is not after its start runs past midnight into the next day
//! (a night shift 22:00-06:00). No windows at all means no restriction.

use crate::Error;
use crate::validation::{Collector, FieldError};
use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// A day of the week, Monday first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Weekday {
    const ALL: [Weekday; 7] = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ];

    /// 0 for Monday to 6 for Sunday, as stored.
    pub fn index(self) -> i16 {
        self as i16
    }

    /// The weekday of a stored index.
    pub fn from_index(i: i16) -> Option<Self> {
        usize::try_from(i)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    fn next(self) -> Self {
        Self::ALL[(self as usize + 1) % 7]
    }
}

/// One allowed window: minutes since local midnight, `end_minute` may be 1440 ("24:00").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginWindow {
    pub weekday: Weekday,
    pub start_minute: u16,
    pub end_minute: u16,
}

/// A window as the API shows it: `{"weekday": "monday", "start": "09:00", "end": "18:00"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginWindowText {
    pub weekday: Weekday,
    pub start: String,
    pub end: String,
}

fn parse_hhmm(s: &str, allow_24: bool) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    if allow_24 && h == 24 && m == 0 {
        return Some(1440);
    }
    (h < 24 && m < 60).then_some(h * 60 + m)
}

fn fmt_hhmm(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

impl LoginWindow {
    /// Parses the API form of a list of windows, reporting each bad entry.
    pub fn parse_all(items: &[LoginWindowText]) -> Result<Vec<LoginWindow>, Error> {
        if items.len() > 7 * 8 {
            return Err(Error::field("items", "at most 56 windows"));
        }
        let mut c = Collector::new();
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let start = parse_hhmm(&item.start, false);
            let end = parse_hhmm(&item.end, true);
            match (start, end) {
                (Some(s), Some(e)) if s != e => out.push(LoginWindow {
                    weekday: item.weekday,
                    start_minute: s,
                    end_minute: e,
                }),
                (Some(_), Some(_)) => c.push(FieldError::new(
                    &format!("[{i}].end"),
                    "end must differ from start",
                )),
                (None, _) => c.push(FieldError::new(
                    &format!("[{i}].start"),
                    "must be HH:MM (00:00 to 23:59)",
                )),
                (_, None) => c.push(FieldError::new(
                    &format!("[{i}].end"),
                    "must be HH:MM (00:01 to 24:00)",
                )),
            }
        }
        c.finish()?;
        out.sort_by_key(|w| (w.weekday, w.start_minute));
        Ok(out)
    }

    /// The API form of this window.
    pub fn to_text(self) -> LoginWindowText {
        LoginWindowText {
            weekday: self.weekday,
            start: fmt_hhmm(self.start_minute),
            end: fmt_hhmm(self.end_minute),
        }
    }

    fn contains(self, weekday: Weekday, minute: u16) -> bool {
        if self.start_minute < self.end_minute {
            weekday == self.weekday && (self.start_minute..self.end_minute).contains(&minute)
        } else {
            // Runs past midnight: the evening of its own day and the morning of the next.
            (weekday == self.weekday && minute >= self.start_minute)
                || (weekday == self.weekday.next() && minute < self.end_minute)
        }
    }
}

/// When a user may sign in: the windows, read in the practice's time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHours {
    pub windows: Vec<LoginWindow>,
    pub timezone: Tz,
}

/// Whether a sign-in at `now` is within the windows, read in the tenant's time zone.
pub fn is_allowed(windows: &[LoginWindow], tz: Tz, now: DateTime<Utc>) -> bool {
    if windows.is_empty() {
        return true;
    }
    let local = now.with_timezone(&tz);
    let weekday = Weekday::ALL[local.weekday().num_days_from_monday() as usize];
    // Both values are below 24 and 60, so the product fits comfortably.
    let minute = (local.hour() * 60 + local.minute()) as u16;
    windows.iter().any(|w| w.contains(weekday, minute))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn w(day: Weekday, start: &str, end: &str) -> LoginWindowText {
        LoginWindowText {
            weekday: day,
            start: start.into(),
            end: end.into(),
        }
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn p5_no_hours_means_no_restriction() {
        assert!(is_allowed(
            &[],
            chrono_tz::America::New_York,
            utc(2026, 11, 22, 3, 0)
        ));
    }

    #[test]
    fn p5_hours_are_read_in_the_tenant_time_zone_across_a_day_boundary() {
        // Monday 09:00-18:00 in New York. 2026-11-24 is a Tuesday.
        let windows =
            LoginWindow::parse_all(&[w(Weekday::Monday, "09:00", "18:00")]).unwrap_or_default();
        let ny = chrono_tz::America::New_York;
        // Monday 17:30 in New York is Monday 22:30 UTC: allowed.
        assert!(is_allowed(&windows, ny, utc(2026, 11, 23, 22, 30)));
        // Tuesday 00:30 UTC is still Monday 19:30 in New York: after hours, refused,
        // even though in UTC it is a different weekday altogether.
        assert!(!is_allowed(&windows, ny, utc(2026, 11, 24, 0, 30)));
        // Monday 13:30 UTC is Monday 08:30 in New York: too early.
        assert!(!is_allowed(&windows, ny, utc(2026, 11, 23, 13, 30)));
        // The same instant is allowed for a tenant in Berlin (Monday 14:30 there).
        assert!(is_allowed(
            &windows,
            chrono_tz::Europe::Berlin,
            utc(2026, 11, 23, 13, 30)
        ));
    }

    #[test]
    fn p5_night_shift_runs_past_midnight() {
        let windows =
            LoginWindow::parse_all(&[w(Weekday::Friday, "22:00", "06:00")]).unwrap_or_default();
        let utc_tz = chrono_tz::UTC;
        assert!(is_allowed(&windows, utc_tz, utc(2026, 11, 27, 23, 0))); // Friday 23:00
        assert!(is_allowed(&windows, utc_tz, utc(2026, 11, 28, 5, 59))); // Saturday 05:59
        assert!(!is_allowed(&windows, utc_tz, utc(2026, 11, 28, 6, 0))); // Saturday 06:00
        assert!(!is_allowed(&windows, utc_tz, utc(2026, 11, 27, 5, 0))); // Friday 05:00
    }

    #[test]
    fn p5_bad_windows_are_reported_each() {
        let r = LoginWindow::parse_all(&[
            w(Weekday::Monday, "9:00", "18:00"),
            w(Weekday::Tuesday, "09:00", "25:00"),
            w(Weekday::Sunday, "10:00", "10:00"),
            w(Weekday::Sunday, "00:00", "24:00"),
        ]);
        let Err(Error::Validation(errs)) = r else {
            panic!("expected errors")
        };
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["[0].start", "[1].end", "[2].end"]);
    }

    #[test]
    fn windows_round_trip_through_text() {
        let windows =
            LoginWindow::parse_all(&[w(Weekday::Sunday, "00:00", "24:00")]).unwrap_or_default();
        assert_eq!(windows[0].to_text(), w(Weekday::Sunday, "00:00", "24:00"));
        assert_eq!(Weekday::from_index(6), Some(Weekday::Sunday));
        assert_eq!(Weekday::from_index(7), None);
    }
}
