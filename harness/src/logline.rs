//! Reads the services' log lines: when a line was written (its UTC timestamp,
//! `2026-11-25T19:34:12.112Z`), which order a notification line is about,
//! whether the pipeline is idle, the lines logged at ERROR, the counters of a
//! `📊 summary:` line, and the tail a failure shows.

use crate::ServiceProcess;

/// Now, in ms since the Unix epoch: the clock of the log lines' timestamps.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The time a log line was written, in ms since the Unix epoch.
pub fn timestamp_ms(line: &str) -> Option<u64> {
    let text = line.split(' ').next()?;
    let b = text.as_bytes();
    let shape = b.len() == 24
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[23] == b'Z';
    if !shape {
        return None;
    }
    let field = |from: usize, to: usize| text[from..to].parse::<i64>().ok();
    let days = days_from_civil(field(0, 4)?, field(5, 7)?, field(8, 10)?);
    let secs = ((days * 24 + field(11, 13)?) * 60 + field(14, 16)?) * 60 + field(17, 19)?;
    u64::try_from(secs * 1000 + field(20, 23)?).ok()
}

/// The order id after `marker` in `line`, e.g. after "Payment Successful for Order ".
pub fn order_after(line: &str, marker: &str) -> Option<u64> {
    let rest = line.split(marker).nth(1)?;
    let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The marker of an order made (order-service's `📦` line).
pub const CREATED: &str = "📦 Order Created: {\"order_id\":";

/// Whether the pipeline is idle, from the lines so far of order-service (asked
/// for `count` orders) and of every notification-service process: if every
/// order is made and every one emailed, says so; `None` while work is in
/// flight (orders still to make, or made and not emailed yet). A fault that
/// meets an idle pipeline tests nothing.
pub fn idle(order_lines: &[String], notification_lines: &[String], count: u64) -> Option<String> {
    let made = crate::count_orders(order_lines, CREATED);
    let emailed = crate::emailed(notification_lines);
    let unemailed = made.keys().filter(|id| !emailed.contains_key(id)).count();
    (made.len() as u64 >= count && unemailed == 0)
        .then(|| format!("all {} orders made and emailed", made.len()))
}

/// Panics unless work is in flight (see [`idle`]) for `orders` (asked for
/// `count`) and the lines of every notification-service process: call it as
/// `fault` strikes, so that a fault meeting an idle pipeline fails its test
/// instead of passing it.
pub fn assert_in_flight(orders: &ServiceProcess, notification_lines: &[String], count: u64, fault: &str) {
    if let Some(idle) = idle(&orders.lines(), notification_lines, count) {
        panic!("{fault} met an idle pipeline ({idle}): nothing was tested");
    }
}

/// The last 40 of `lines`, one per line: what a failure shows of a service.
pub fn tail(lines: &[String]) -> String {
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Lines logged at ERROR level.
pub fn errors(lines: &[String]) -> Vec<&String> {
    lines.iter().filter(|l| l.contains(" ERROR ")).collect()
}

/// The `📊 summary:` line of a service that has exited.
pub fn summary(service: &ServiceProcess) -> String {
    let lines = service.lines();
    let line = lines.iter().rev().find(|l| l.contains("📊 summary:"));
    line.unwrap_or_else(|| panic!("{} logged no summary:\n{}", service.name, tail(&lines))).clone()
}

/// A counter's value in a summary line, e.g. `counter(&line, "restarts")`.
pub fn counter(summary: &str, name: &str) -> u64 {
    let value = summary.split(&format!(" {name}=")).nth(1).and_then(|rest| rest.split(' ').next());
    value.and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no {name} in {summary}"))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_utc_timestamps() {
        assert_eq!(timestamp_ms("1970-01-01T00:00:00.000Z INFO x"), Some(0));
        assert_eq!(timestamp_ms("2000-03-01T00:00:00.007Z INFO"), Some(951_868_800_007));
        assert_eq!(
            timestamp_ms("2026-11-25T19:34:12.112Z INFO  notification-service"),
            Some(1_795_635_252_112)
        );
        assert_eq!(timestamp_ms("not a time"), None);
    }

    #[test]
    fn finds_the_order_id() {
        let line = "2026-11-25T19:34:12.112Z INFO  notification-service NotificationActor: \
                    ✅ Payment Successful for Order 1002 (User 95)";
        assert_eq!(order_after(line, crate::NOTIFIED), Some(1002));
        assert_eq!(order_after("nothing here", crate::NOTIFIED), None);
    }

    #[test]
    fn idle_only_once_every_order_is_made_and_emailed() {
        let made: Vec<String> = [1001, 1002].map(|id| format!("{CREATED}{id},\"user_id\":7}}")).into();
        let emailed = |ids: &[u64]| -> Vec<String> {
            ids.iter().map(|id| format!("{}{id} (User 7)", crate::NOTIFIED)).collect()
        };
        assert_eq!(idle(&made, &emailed(&[1001]), 2), None, "1002 is in flight");
        assert_eq!(idle(&made, &emailed(&[1001, 1002]), 3), None, "one order is still to make");
        assert_eq!(idle(&made, &emailed(&[1001, 1002]), 2), Some("all 2 orders made and emailed".into()));
    }
}
