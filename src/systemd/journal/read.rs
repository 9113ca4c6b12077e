//! One-shot reads of the journal.

use tokio::io::BufReader;

use super::args::{Mode, build_args, spawn_journalctl};
use super::entry::{CursorPos, LineReader, RawEntry, drain_stderr, first_text};
use super::{JournalError, LogEntry, LogFilter, check_filter, validate_cursor};

/// Where a read starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start<'a> {
    /// The newest entries.
    Newest,
    /// The entries strictly after this cursor.
    After(&'a str),
    /// The entries strictly before this cursor.
    Before(&'a str),
}

/// At most `lines` entries of `filter` within its time range, oldest first: the newest
/// ones, the first ones after a cursor, or the last ones before a cursor.
///
/// An invalid cursor gives [`JournalError::Failed`] with journalctl's message. Dropping
/// the future kills the journalctl child.
pub async fn read(
    filter: &LogFilter,
    lines: usize,
    start: Start<'_>,
) -> Result<Vec<LogEntry>, JournalError> {
    check_filter(filter)?;
    if lines == 0 {
        return Ok(Vec::new());
    }
    let grep = filter.grep.as_ref().is_some_and(|g| !g.text.is_empty());
    // What is dropped after reading must not count towards journalctl's --lines.
    let drops = !filter.excludes.is_empty();
    let (args, want, cursor) = match start {
        Start::Newest => (
            build_args(filter, Mode::Tail((!drops).then_some(lines))),
            lines,
            None,
        ),
        Start::After(cursor) | Start::Before(cursor) => {
            if !validate_cursor(cursor) {
                return Err(JournalError::Failed("invalid cursor".into()));
            }
            // +1: the cursor's own entry comes first when it matches, and is dropped.
            let want = lines.saturating_add(1);
            let mode = if matches!(start, Start::Before(_)) {
                Mode::Before(cursor)
            } else {
                // --grep with --lines walks backwards, and entries before `since` are
                // dropped here: stop reading ourselves instead.
                let limit = !(grep || drops || filter.since.is_some());
                Mode::From(cursor, limit.then_some(want))
            };
            (build_args(filter, mode), want, Some(cursor))
        }
    };
    let backwards = !matches!(start, Start::After(_));
    let mut child = spawn_journalctl(&args)?;
    let stderr = child.stderr.take();
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| JournalError::Failed("no stdout".into()))?;
    let collect = async {
        let mut reader = LineReader::new(BufReader::with_capacity(64 * 1024, stdout))
            .excluding(&filter.excludes);
        let mut entries = Vec::new();
        let mut killed = false;
        loop {
            match reader.next_entry().await {
                Ok(Some(entry)) => {
                    // journalctl applies the time range only without a cursor.
                    let t = CursorPos::parse(&entry.cursor).realtime.unwrap_or(0);
                    let (before, after) = (
                        filter.since.is_some_and(|s| t < s),
                        filter.until.is_some_and(|u| t > u),
                    );
                    let (skip, past_the_end) = match (cursor, backwards) {
                        (None, _) => (false, false),
                        (Some(_), false) => (before, after),
                        (Some(_), true) => (after, before),
                    };
                    if past_the_end {
                        killed = child.start_kill().is_ok();
                        break;
                    }
                    if skip {
                        continue;
                    }
                    entries.push(entry);
                    if entries.len() >= want {
                        killed = child.start_kill().is_ok();
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(JournalError::Failed(format!("reading output: {e}"))),
            }
        }
        let status = child.wait().await.map_err(JournalError::Spawn)?;
        Ok((entries, status, killed))
    };
    let (result, stderr) = tokio::join!(collect, drain_stderr(stderr));
    let (mut entries, status, killed) = result?;
    // Nothing matched the pattern: journalctl exits 1, like grep, without a message.
    let no_match = grep && status.code() == Some(1) && stderr.is_empty();
    if !(status.success() || killed || no_match) {
        let msg = if stderr.is_empty() {
            status.to_string()
        } else {
            stderr
        };
        return Err(JournalError::Failed(msg));
    }
    if let Some(cursor) = cursor {
        if entries.first().is_some_and(|e| e.cursor == cursor) {
            entries.remove(0);
        }
        entries.truncate(lines);
    }
    if backwards {
        entries.reverse();
    }
    Ok(entries)
}

/// Waits until journald has written what it has received: the output a service wrote
/// before it exited, still in journald's socket when PID 1 reports the exit (`journalctl
/// --sync` is answered once everything queued has been processed). Needs root.
pub async fn sync() -> Result<(), JournalError> {
    output_of(&["--sync".to_string()]).await.map(drop)
}

/// The cursor of the newest entry in the whole journal, if any.
pub(super) async fn journal_tail_cursor() -> Result<Option<String>, JournalError> {
    let args = [
        "--no-pager",
        "--quiet",
        "--output=json",
        "--output-fields=__CURSOR",
        "--reverse",
        "--lines=1",
    ]
    .map(String::from);
    Ok(output_of(&args)
        .await?
        .split(|&b| b == b'\n')
        .find_map(|line| serde_json::from_slice::<RawEntry>(line).ok())
        .and_then(|raw| first_text(raw.cursor)))
}

/// What a journalctl run that ends by itself (bounded by `--lines`) prints.
pub(super) async fn output_of(args: &[String]) -> Result<Vec<u8>, JournalError> {
    let output = spawn_journalctl(args)?
        .wait_with_output()
        .await
        .map_err(JournalError::Spawn)?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        return Err(JournalError::Failed(stderr));
    }
    Ok(output.stdout)
}
