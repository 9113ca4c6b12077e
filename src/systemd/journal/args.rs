//! journalctl arguments: one argv entry per value, never a shell.

use std::process::Stdio;

use tokio::process::{Child, Command};

use super::{JOURNALCTL, JournalError, LogFilter, OUTPUT_FIELDS};
/// Where a journalctl run starts.
#[derive(Debug, Clone, Copy)]
pub(super) enum Mode<'a> {
    /// The last `n` matching entries (printed newest first: `--reverse`).
    Tail(usize),
    /// Entries from cursor `c` on (`c` itself included if it matches), at most `n`
    /// (`None`: no `--lines`, the caller stops reading).
    From(&'a str, Option<usize>),
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

pub(super) fn build_args(filter: &LogFilter, mode: Mode<'_>) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--no-pager".into(),
        "--quiet".into(),
        "--all".into(),
        "--output=json".into(),
        OUTPUT_FIELDS.into(),
    ];
    args.extend(filter.units.iter().map(|u| format!("--unit={u}")));
    if let Some(p) = filter.priority {
        args.push(format!("--priority={p}"));
    }
    if let Some(g) = filter.grep.as_deref().filter(|g| !g.is_empty()) {
        args.push(format!("--grep={}", literal_pattern(g)));
    }
    match mode {
        Mode::Tail(n) => {
            if let Some(s) = &filter.since {
                args.push(format!("--since={s}"));
            }
            args.push("--reverse".into());
            args.push(format!("--lines={n}"));
        }
        Mode::From(cursor, lines) => {
            // journalctl refuses --since together with a cursor; the cursor wins.
            args.push(format!("--cursor={cursor}"));
            if let Some(n) = lines {
                args.push(format!("--lines={n}"));
            }
        }
        Mode::Follow(from) => {
            args.push("--follow".into());
            match from {
                Some(cursor) => args.push(format!("--cursor={cursor}")),
                None => args.push("--no-tail".into()),
            }
        }
    }
    // Field matches last: `A + B` is ORed, and the whole group ANDed with --unit etc.
    if let Some(id) = &filter.invocation {
        args.push(format!("_SYSTEMD_INVOCATION_ID={id}"));
        args.push("+".into());
        args.push(format!("INVOCATION_ID={id}"));
    }
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
