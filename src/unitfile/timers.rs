//! A timer's schedule as its files say it: systemd reports OnCalendar= normalised
//! (`daily` reads `*-*-* 00:00:00`) and monotonic settings in µs, while people wrote
//! `daily` and `15min`. Read from the unit file and its drop-ins, in systemd's order.

/// The settings of `[Timer]` that schedule it.
const SCHEDULE_KEYS: [&str; 6] = [
    "OnCalendar",
    "OnActiveSec",
    "OnBootSec",
    "OnStartupSec",
    "OnUnitActiveSec",
    "OnUnitInactiveSec",
];

/// The schedule settings of a timer, `(setting, value as written)`, from its unit file's
/// text followed by its drop-ins' (in the order systemd applies them). An empty
/// assignment to any of them resets the list, as it does in systemd.
pub fn schedule_settings(texts: &[String]) -> Vec<(String, String)> {
    let mut settings = Vec::new();
    for text in texts {
        let mut in_timer = false;
        for line in logical_lines(text) {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if line.starts_with('[') {
                in_timer = line == "[Timer]";
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            if !in_timer || !SCHEDULE_KEYS.contains(&key) {
                continue;
            }
            if value.is_empty() {
                settings.clear();
            } else {
                settings.push((key.to_string(), value.to_string()));
            }
        }
    }
    settings
}

/// Lines with `\` continuations joined (a comment line inside one is skipped, as
/// systemd does).
fn logical_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current: Option<String> = None;
    for raw in text.lines() {
        let trimmed = raw.trim_start();
        if current.is_some() && (trimmed.starts_with('#') || trimmed.starts_with(';')) {
            continue;
        }
        let (part, continues) = match raw.strip_suffix('\\') {
            Some(part) => (part, true),
            None => (raw, false),
        };
        let line = match current.take() {
            Some(mut so_far) => {
                so_far.truncate(so_far.trim_end().len());
                so_far.push(' ');
                so_far.push_str(part.trim_start());
                so_far
            }
            None => part.to_string(),
        };
        if continues {
            current = Some(line);
        } else {
            lines.push(line);
        }
    }
    lines.extend(current);
    lines
}

/// A duration in µs the way systemd writes one (`15min`, `1d`, `1h 30min`).
pub fn timespan(usec: u64) -> String {
    const UNITS: [(&str, u64); 7] = [
        ("d", 86_400_000_000),
        ("h", 3_600_000_000),
        ("min", 60_000_000),
        ("s", 1_000_000),
        ("ms", 1000),
        ("us", 1),
        ("", 0),
    ];
    if usec == 0 {
        return "0".to_string();
    }
    let mut left = usec;
    let mut parts = Vec::new();
    for (name, size) in UNITS {
        if size == 0 || left == 0 {
            break;
        }
        if left >= size {
            parts.push(format!("{}{name}", left / size));
            left %= size;
        }
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_as_written_with_drop_ins_and_resets() {
        let unit = "[Unit]\nDescription=x\n[Timer]\nOnCalendar=daily\nOnCalendar=Mon *-*-* \\\n  09:00\n\
                    # OnCalendar=hourly\nPersistent=true\nOnBootSec=15min\n[Install]\nOnCalendar=ignored\n";
        assert_eq!(
            schedule_settings(&[unit.to_string()]),
            [
                ("OnCalendar".to_string(), "daily".to_string()),
                ("OnCalendar".to_string(), "Mon *-*-* 09:00".to_string()),
                ("OnBootSec".to_string(), "15min".to_string()),
            ]
        );
        let drop_in = "[Timer]\nOnCalendar=\nOnCalendar=*:0/5\n".to_string();
        assert_eq!(
            schedule_settings(&[unit.to_string(), drop_in]),
            [("OnCalendar".to_string(), "*:0/5".to_string())]
        );
    }

    #[test]
    fn timespans_read_like_systemds() {
        assert_eq!(timespan(900_000_000), "15min");
        assert_eq!(timespan(86_400_000_000), "1d");
        assert_eq!(timespan(5_400_000_000), "1h 30min");
        assert_eq!(timespan(1500), "1ms 500us");
        assert_eq!(timespan(0), "0");
    }
}
