//! journalctl arguments: one argv entry per value, never a shell.

use std::process::Stdio;

use tokio::process::{Child, Command};

use super::{Case, JOURNALCTL, JournalError, LogFilter, OUTPUT_FIELDS};

/// Where a journalctl run starts.
#[derive(Debug, Clone, Copy)]
pub(super) enum Mode<'a> {
    /// The last `n` matching entries (printed newest first: `--reverse`); `None`: no
    /// `--lines`, the caller stops reading.
    Tail(Option<usize>),
    /// Entries from cursor `c` on (`c` itself included if it matches), at most `n`
    /// (`None`: no `--lines`, the caller stops reading).
    From(&'a str, Option<usize>),
    /// Entries from cursor `c` backwards, newest first (`c` included if it matches); the
    /// caller stops reading.
    Before(&'a str),
    /// Follow from cursor `c` (included if it matches), or from the very start.
    Follow(Option<&'a str>),
}

/// `text` as a PCRE2 pattern matching it literally: its special characters escaped.
pub fn literal_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern
}

/// `--since=`/`--until=` take `@SECONDS.FRACTION`.
fn at(micros: u64) -> String {
    format!("@{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

/// The positional matches: the filter's `FIELD=VALUE`s, and an invocation as
/// `_SYSTEMD_INVOCATION_ID=ID + INVOCATION_ID=ID` (the process's own entries, and PID 1's
/// about the run). `+` ORs everything before it with everything after it, so the other
/// matches stand on both sides: (M ∧ A) ∨ (M ∧ B) = M ∧ (A ∨ B).
pub(super) fn positional_matches(filter: &LogFilter) -> Vec<String> {
    let matches: Vec<String> = filter.matches.iter().map(|m| m.to_arg()).collect();
    let Some(id) = &filter.invocation else {
        return matches;
    };
    let mut args = matches.clone();
    args.push(format!("_SYSTEMD_INVOCATION_ID={id}"));
    args.push("+".into());
    args.extend(matches);
    args.push(format!("INVOCATION_ID={id}"));
    args
}

pub(super) fn build_args(filter: &LogFilter, mode: Mode<'_>) -> Vec<String> {
    let mut output_fields = OUTPUT_FIELDS.to_string();
    // Exclusions are judged on the output: their fields must be in it.
    for m in &filter.excludes {
        if !output_fields.split([',', '=']).any(|f| f == m.field) {
            output_fields.push(',');
            output_fields.push_str(&m.field);
        }
    }
    let mut args: Vec<String> = vec![
        "--no-pager".into(),
        "--quiet".into(),
        "--all".into(),
        "--output=json".into(),
        output_fields,
    ];
    args.extend(filter.units.iter().map(|u| format!("--unit={u}")));
    if let Some(id) = &filter.identifier {
        args.push(format!("--identifier={id}"));
    }
    if let Some(p) = filter.priority {
        args.push(format!("--priority={p}"));
    }
    if let Some(g) = filter.grep.as_ref().filter(|g| !g.text.is_empty()) {
        args.push(format!("--grep={}", g.pattern()));
        match g.case {
            Case::Auto => {}
            Case::Insensitive => args.push("--case-sensitive=no".into()),
            Case::Sensitive => args.push("--case-sensitive=yes".into()),
        }
    }
    if let Some(boot) = &filter.boot {
        args.push(format!("--boot={boot}"));
    }
    match mode {
        Mode::Tail(n) => {
            if let Some(s) = filter.since {
                args.push(format!("--since={}", at(s)));
            }
            if let Some(u) = filter.until {
                args.push(format!("--until={}", at(u)));
            }
            args.push("--reverse".into());
            if let Some(n) = n {
                args.push(format!("--lines={n}"));
            }
        }
        // journalctl refuses --since together with a cursor: the caller drops what is
        // outside the time range.
        Mode::From(cursor, lines) => {
            args.push(format!("--cursor={cursor}"));
            if let Some(n) = lines {
                args.push(format!("--lines={n}"));
            }
        }
        Mode::Before(cursor) => {
            args.push(format!("--cursor={cursor}"));
            args.push("--reverse".into());
        }
        Mode::Follow(from) => {
            args.push("--follow".into());
            match from {
                Some(cursor) => args.push(format!("--cursor={cursor}")),
                None => args.push("--no-tail".into()),
            }
        }
    }
    // Field matches last: they are ANDed with --unit and the other options.
    args.extend(positional_matches(filter));
    args
}

pub(super) fn spawn_journalctl(args: &[String]) -> Result<Child, JournalError> {
    Command::new(JOURNALCTL)
        .args(args)
        .env("SYSTEMD_COLORS", "0")
        .env("SYSTEMD_PAGER", "")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(JournalError::Spawn)
}
