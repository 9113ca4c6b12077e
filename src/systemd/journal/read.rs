//! One-shot reads of the journal.

use tokio::io::BufReader;

use super::args::{Mode, build_args, spawn_journalctl};
use super::entry::{LineReader, RawEntry, drain_stderr, first_text};
use super::{JournalError, LogEntry, LogFilter, check_filter, validate_cursor};

/// Entries of `filter`, oldest first.
///
/// - Without `after_cursor`: the last `lines` matching entries (since `filter.since`).
/// - With `after_cursor`: the first `lines` matching entries strictly after that cursor
///   (`filter.since` is ignored: journalctl refuses both).
///
/// An invalid `since` or cursor gives [`JournalError::Failed`] with journalctl's message. Dropping the future kills the journalctl child.
pub async fn read(
    filter: &LogFilter,
    lines: usize,
    after_cursor: Option<&str>,
) -> Result<Vec<LogEntry>, JournalError> {
    check_filter(filter)?;
    if lines == 0 {
        return Ok(Vec::new());
    }
    let grep = filter.grep.as_deref().is_some_and(|g| !g.is_empty());
    let (args, want) = match after_cursor {
        None => (build_args(filter, Mode::Tail(lines)), lines),
        Some(cursor) => {
            if !validate_cursor(cursor) {
                return Err(JournalError::Failed("invalid cursor".into()));
            }
            // +1: the cursor's own entry comes first when it matches, and is dropped.
            let want = lines.saturating_add(1);
            // --grep with --lines walks backwards: stop reading ourselves instead.
            let limit = (!grep).then_some(want);
            (build_args(filter, Mode::From(cursor, limit)), want)
        }
    };
    let mut child = spawn_journalctl(&args)?;
    let stderr = child.stderr.take();
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| JournalError::Failed("no stdout".into()))?;
    let collect = async {
        let mut reader = LineReader::new(BufReader::with_capacity(64 * 1024, stdout));
        let mut entries = Vec::new();
        let mut killed = false;
        loop {
            match reader.next_entry().await {
                Ok(Some(entry)) => {
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
    match after_cursor {
        None => entries.reverse(),
        Some(cursor) => {
            if entries.first().is_some_and(|e| e.cursor == cursor) {
                entries.remove(0);
            }
            entries.truncate(lines);
        }
    }
    Ok(entries)
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
