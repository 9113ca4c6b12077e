//! The runs of a unit as PID 1 logged them: its structured entries about the unit
//! (`_PID=1 UNIT=name`), folded by INVOCATION_ID, newest first. Never the message text:
//! the MESSAGE_IDs of sd-messages.h and the fields systemd adds to them (checked against
//! systemd 252: /work/research17/FINDINGS.md of issue 17, and the entries under
//! `testdata/`).
//!
//! - A run opens with its first UNIT_STARTING or UNIT_STARTED entry (Type=simple services
//!   log only "Started"); one whose start is not in the journal any more is left out.
//! - It ends with UNIT_SUCCESS (`success`) or UNIT_FAILURE_RESULT (`UNIT_RESULT`); only
//!   the first end of an invocation counts.
//! - UNIT_PROCESS_EXIT (logged for unclean exits only) gives the exit status when the
//!   process exited (not when it was killed or dumped core).
//! - UNIT_RESTART_SCHEDULED under a run means Restart= started the next one; a stop of a
//!   restart job without it, a requested restart (`systemctl restart`).
//! - "Start request repeated too quickly" has no MESSAGE_ID (`CODE_FUNC=
//!   unit_test_start_limit`): the result and job entries that follow it belong to a start
//!   that was refused and reuse the previous run's INVOCATION_ID. Consecutive refusals
//!   are one entry with a count.
//! - A start skipped by a condition has an empty INVOCATION_ID: not a run.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use super::entry::{first_text, parse_entry};
use super::read::output_of;
use super::{JournalError, LogEntry, OUTPUT_FIELDS, check_filter};

const UNIT_STARTING: &str = "7d4958e842da4a758f6c1cdc7b36dcc5";
const UNIT_STARTED: &str = "39f53479d3a045ac8e11786248231fbf";
const UNIT_PROCESS_EXIT: &str = "98e322203f7a4ed290d09fe03c09fe15";
const UNIT_SUCCESS: &str = "7ad2d189f7e94e70a38c781354912448";
const UNIT_FAILURE_RESULT: &str = "d9b373ed55a64feb8242e02dbe79a49c";
const UNIT_RESTART_SCHEDULED: &str = "5eb03494b6584870a536b337290809b3";
const UNIT_STOPPING: &str = "de5b426a63be47a7b6ac3eaac82e2f6f";
const UNIT_STOPPED: &str = "9d1aaa27d60140bd96365438aad20286";
/// "Startup finished": a container's manager logs the first, a host's the second.
const STARTUP_FINISHED: [&str; 2] = [
    "eed00a68ffd84e31882105fd973abdd1",
    "b07a249cd024414a82dd00cd181378ff",
];
const START_LIMIT_FUNC: &str = "unit_test_start_limit";
const FIELDS: &str = "--output-fields=MESSAGE_ID,INVOCATION_ID,UNIT_RESULT,EXIT_CODE,\
EXIT_STATUS,JOB_ID,JOB_TYPE,CODE_FUNC,_SOURCE_REALTIME_TIMESTAMP";
/// Pages read at most for one answer (a unit that hit its start limit can fill hundreds
/// of entries with refusals of one invocation).
const MAX_PAGES: usize = 5;

/// How a run came after the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restarted {
    /// Restart= scheduled it.
    Automatically,
    /// A restart job (`systemctl restart`, unitdeck's Restart).
    OnRequest,
}

/// One run of a unit, as the journal tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalRun {
    /// None for refused starts (they reuse the previous run's id).
    pub invocation_id: Option<String>,
    /// µs since the epoch.
    pub started_usec: u64,
    pub ended_usec: Option<u64>,
    /// systemd's result, None while no end is logged.
    pub result: Option<String>,
    /// The exit code of the first process that exited uncleanly, when it exited.
    pub exit_status: Option<i32>,
    pub job_id: Option<u32>,
    pub boot_id: Option<String>,
    /// CLOCK_MONOTONIC of the start and of the end (µs), within its boot: how long it
    /// ran, whatever the wall clock did meanwhile.
    pub started_monotonic: Option<u64>,
    pub ended_monotonic: Option<u64>,
    pub restarted: Option<Restarted>,
    /// How many refused starts this entry stands for (0 for a run).
    pub refused_starts: u32,
}

/// One of PID 1's entries about a unit: the fields the fold reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Pid1Entry {
    pub(super) cursor: String,
    pub(super) usec: u64,
    pub(super) monotonic: Option<u64>,
    pub(super) boot_id: Option<String>,
    pub(super) message_id: Option<String>,
    pub(super) invocation: Option<String>,
    pub(super) unit_result: Option<String>,
    pub(super) exit_code: Option<String>,
    pub(super) exit_status: Option<i32>,
    pub(super) job_id: Option<u32>,
    pub(super) job_type: Option<String>,
    pub(super) code_func: Option<String>,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "__CURSOR")]
    cursor: Option<Value>,
    #[serde(rename = "__REALTIME_TIMESTAMP")]
    realtime: Option<Value>,
    #[serde(rename = "_SOURCE_REALTIME_TIMESTAMP")]
    source_realtime: Option<Value>,
    #[serde(rename = "__MONOTONIC_TIMESTAMP")]
    monotonic: Option<Value>,
    #[serde(rename = "_BOOT_ID")]
    boot_id: Option<Value>,
    #[serde(rename = "MESSAGE_ID")]
    message_id: Option<Value>,
    #[serde(rename = "INVOCATION_ID")]
    invocation: Option<Value>,
    #[serde(rename = "UNIT_RESULT")]
    unit_result: Option<Value>,
    #[serde(rename = "EXIT_CODE")]
    exit_code: Option<Value>,
    #[serde(rename = "EXIT_STATUS")]
    exit_status: Option<Value>,
    #[serde(rename = "JOB_ID")]
    job_id: Option<Value>,
    #[serde(rename = "JOB_TYPE")]
    job_type: Option<Value>,
    #[serde(rename = "CODE_FUNC")]
    code_func: Option<Value>,
}

/// One JSON line of journalctl → an entry (None: not one, e.g. no cursor).
pub(super) fn parse_pid1(line: &[u8]) -> Option<Pid1Entry> {
    let raw: Raw = serde_json::from_slice(line).ok()?;
    let number = |v: Option<Value>| first_text(v).and_then(|t| t.trim().parse::<u64>().ok());
    let text = |v: Option<Value>| first_text(v).filter(|t| !t.is_empty());
    Some(Pid1Entry {
        cursor: first_text(raw.cursor)?,
        // PID 1's own time of the message; journald's when it is missing.
        usec: number(raw.source_realtime).or_else(|| number(raw.realtime))?,
        monotonic: number(raw.monotonic),
        boot_id: text(raw.boot_id),
        message_id: text(raw.message_id),
        invocation: text(raw.invocation),
        unit_result: text(raw.unit_result),
        exit_code: text(raw.exit_code),
        exit_status: text(raw.exit_status).and_then(|s| s.parse().ok()),
        job_id: number(raw.job_id).and_then(|n| u32::try_from(n).ok()),
        job_type: text(raw.job_type),
        code_func: text(raw.code_func),
    })
}

/// Folds PID 1's entries about one unit (oldest first) into its runs (oldest first).
pub(super) fn fold(entries: &[Pid1Entry]) -> Vec<JournalRun> {
    let mut runs: Vec<JournalRun> = Vec::new();
    let mut by_invocation: HashMap<String, usize> = HashMap::new();
    // The invocation whose id a refused start reuses: its next result is the refusal's.
    let mut refused: Option<String> = None;
    let mut restart_scheduled = false;
    let mut restart_job: Option<u32> = None;
    for e in entries {
        let message_id = e.message_id.as_deref();
        if message_id.is_none() && e.code_func.as_deref() == Some(START_LIMIT_FUNC) {
            match runs.last_mut() {
                Some(last) if last.refused_starts > 0 => {
                    last.refused_starts += 1;
                    last.ended_usec = Some(e.usec);
                    last.ended_monotonic = e.monotonic.filter(|_| last.boot_id == e.boot_id);
                }
                _ => runs.push(JournalRun {
                    invocation_id: None,
                    started_usec: e.usec,
                    ended_usec: Some(e.usec),
                    result: Some("start-limit-hit".to_string()),
                    exit_status: None,
                    job_id: None,
                    boot_id: e.boot_id.clone(),
                    started_monotonic: e.monotonic,
                    ended_monotonic: e.monotonic,
                    restarted: None,
                    refused_starts: 1,
                }),
            }
            refused = e.invocation.clone();
            restart_scheduled = false;
            restart_job = None;
            continue;
        }
        let Some(invocation) = e.invocation.clone() else {
            continue;
        };
        let run = by_invocation.get(&invocation).copied();
        match message_id {
            Some(UNIT_STARTING | UNIT_STARTED) if e.job_type.as_deref() == Some("start") => {
                if run.is_some() {
                    continue;
                }
                let restarted = if restart_scheduled {
                    Some(Restarted::Automatically)
                } else if restart_job.is_some() && restart_job == e.job_id {
                    Some(Restarted::OnRequest)
                } else {
                    None
                };
                restart_scheduled = false;
                restart_job = None;
                refused = None;
                by_invocation.insert(invocation.clone(), runs.len());
                runs.push(JournalRun {
                    invocation_id: Some(invocation),
                    started_usec: e.usec,
                    ended_usec: None,
                    result: None,
                    exit_status: None,
                    job_id: e.job_id,
                    boot_id: e.boot_id.clone(),
                    started_monotonic: e.monotonic,
                    ended_monotonic: None,
                    restarted,
                    refused_starts: 0,
                });
            }
            Some(UNIT_PROCESS_EXIT) => {
                if let Some(r) = run.map(|i| &mut runs[i])
                    && r.ended_usec.is_none()
                    && r.exit_status.is_none()
                    && e.exit_code.as_deref() == Some("exited")
                {
                    r.exit_status = e.exit_status;
                }
            }
            Some(UNIT_SUCCESS | UNIT_FAILURE_RESULT) => {
                if refused.as_deref() == Some(invocation.as_str()) {
                    continue;
                }
                if let Some(r) = run.map(|i| &mut runs[i])
                    && r.result.is_none()
                {
                    r.result = Some(match message_id {
                        Some(UNIT_SUCCESS) => "success".to_string(),
                        _ => e.unit_result.clone().unwrap_or_else(|| "failed".into()),
                    });
                    r.ended_usec = Some(e.usec);
                    r.ended_monotonic = e.monotonic.filter(|_| r.boot_id == e.boot_id);
                }
            }
            Some(UNIT_RESTART_SCHEDULED) => restart_scheduled = true,
            Some(UNIT_STOPPING | UNIT_STOPPED) if e.job_type.as_deref() == Some("restart") => {
                restart_job = e.job_id;
            }
            _ => {}
        }
    }
    runs
}

/// The newest `limit` runs of `unit`, newest first (its start in the journal).
pub async fn unit_runs(unit: &str, limit: usize) -> Result<Vec<JournalRun>, JournalError> {
    check(unit, None)?;
    // About 3 entries a successful run and 5 a failed one, plus room for odd ones.
    let page = limit.saturating_mul(6).saturating_add(50);
    let mut newest_first: Vec<Pid1Entry> = Vec::new();
    for _ in 0..MAX_PAGES {
        let mut args = vec![
            "--no-pager".to_string(),
            "--quiet".into(),
            "--output=json".into(),
            FIELDS.into(),
            "--reverse".into(),
            format!("--lines={}", page + 1),
        ];
        let from = newest_first.last().map(|e| e.cursor.clone());
        if let Some(cursor) = &from {
            // Backwards from the oldest entry read so far, which comes first again.
            args.push(format!("--cursor={cursor}"));
        }
        args.push("_PID=1".into());
        args.push(format!("UNIT={unit}"));
        let mut got = read_entries(&args).await?;
        if from.is_some() && got.first().map(|e| &e.cursor) == from.as_ref() {
            got.remove(0);
        }
        let exhausted = got.len() < page;
        newest_first.extend(got);
        let mut oldest_first = newest_first.clone();
        oldest_first.reverse();
        let runs = fold(&oldest_first);
        if exhausted || runs.len() > limit {
            return Ok(runs.into_iter().rev().take(limit).collect());
        }
    }
    let mut oldest_first = newest_first;
    oldest_first.reverse();
    Ok(fold(&oldest_first).into_iter().rev().take(limit).collect())
}

/// The run of `unit` whose INVOCATION_ID is `invocation`, if the journal has its start.
pub async fn run_of(unit: &str, invocation: &str) -> Result<Option<JournalRun>, JournalError> {
    check(unit, Some(invocation))?;
    let args = [
        "--no-pager".to_string(),
        "--quiet".into(),
        "--output=json".into(),
        FIELDS.into(),
        "_PID=1".into(),
        format!("UNIT={unit}"),
        format!("INVOCATION_ID={invocation}"),
    ];
    let entries = read_entries(&args).await?;
    Ok(fold(&entries)
        .into_iter()
        .find(|r| r.invocation_id.as_deref() == Some(invocation)))
}

/// The last `lines` entries of `unit` between `since` and `until` (µs since the epoch)
/// that belong to `invocation` or to no invocation, oldest first: a run's lines,
/// including those journald could not tie to it (a process that exits right after it
/// writes is often gone before journald reads its cgroup).
pub async fn run_entries(
    unit: &str,
    invocation: &str,
    since: u64,
    until: u64,
    lines: usize,
) -> Result<Vec<LogEntry>, JournalError> {
    check(unit, Some(invocation))?;
    let at = |usec: u64| format!("@{}.{:06}", usec / 1_000_000, usec % 1_000_000);
    let args = [
        "--no-pager".to_string(),
        "--quiet".into(),
        "--all".into(),
        "--output=json".into(),
        OUTPUT_FIELDS.into(),
        format!("--unit={unit}"),
        format!("--since={}", at(since)),
        format!("--until={}", at(until)),
        "--reverse".into(),
        format!("--lines={lines}"),
    ];
    let mut entries: Vec<LogEntry> = output_of(&args)
        .await?
        .split(|&b| b == b'\n')
        .filter_map(parse_entry)
        .filter(|e| e.invocation_id.as_deref().is_none_or(|i| i == invocation))
        .collect();
    entries.reverse();
    Ok(entries)
}

/// Boot id → CLOCK_MONOTONIC (µs) of each "Startup finished" in the journal. A boot id
/// that appears more than once (containers restarted within one kernel boot) maps to
/// None: which startup a run belongs to cannot be told from the journal.
pub async fn startups() -> Result<HashMap<String, Option<u64>>, JournalError> {
    let mut args = vec![
        "--no-pager".to_string(),
        "--quiet".into(),
        "--output=json".into(),
        "--output-fields=MESSAGE_ID".into(),
        "--reverse".into(),
        "--lines=1000".into(),
        "_PID=1".into(),
    ];
    args.extend(STARTUP_FINISHED.iter().map(|id| format!("MESSAGE_ID={id}")));
    let mut startups: HashMap<String, Option<u64>> = HashMap::new();
    for e in read_entries(&args).await? {
        let Some(boot) = e.boot_id else { continue };
        startups
            .entry(boot)
            .and_modify(|seen| *seen = None)
            .or_insert(e.monotonic);
    }
    Ok(startups)
}

/// A unit name and invocation id fit to go into journalctl's argv.
fn check(unit: &str, invocation: Option<&str>) -> Result<(), JournalError> {
    check_filter(&super::LogFilter {
        units: vec![unit.to_string()],
        invocation: invocation.map(str::to_string),
        ..Default::default()
    })
}

async fn read_entries(args: &[String]) -> Result<Vec<Pid1Entry>, JournalError> {
    Ok(output_of(args)
        .await?
        .split(|&b| b == b'\n')
        .filter_map(parse_pid1)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PID 1's entries about a test unit, as a systemd 252 wrote them (testdata/).
    fn fixture(name: &str) -> Vec<Pid1Entry> {
        let path = format!(
            "{}/src/systemd/journal/testdata/{name}.jsonl",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read(path).unwrap();
        text.split(|&b| b == b'\n').filter_map(parse_pid1).collect()
    }

    fn summary(runs: &[JournalRun]) -> Vec<String> {
        runs.iter()
            .map(|r| {
                format!(
                    "{} {} {} {}ms{}{}",
                    r.invocation_id.as_deref().map_or("-", |i| &i[..6]),
                    r.result.as_deref().unwrap_or("open"),
                    r.exit_status.map_or("-".to_string(), |s| s.to_string()),
                    r.ended_usec.map_or(0, |e| (e - r.started_usec) / 1000),
                    match r.restarted {
                        Some(Restarted::Automatically) => " restart",
                        Some(Restarted::OnRequest) => " requested",
                        None => "",
                    },
                    if r.refused_starts > 0 {
                        format!(" x{}", r.refused_starts)
                    } else {
                        String::new()
                    }
                )
            })
            .collect()
    }

    #[test]
    fn failed_and_clean_runs() {
        assert_eq!(
            summary(&fold(&fixture("r-exit3"))),
            ["02693b exit-code 3 2ms"]
        );
        assert_eq!(summary(&fold(&fixture("r-ok"))), ["8c998f success - 203ms"]);
        // Type=simple: "Started" only.
        assert_eq!(
            summary(&fold(&fixture("r-simple-ok"))),
            ["e81dda success - 306ms"]
        );
        // Killed by a signal: no exit status (the first attempt exited 2).
        assert_eq!(
            summary(&fold(&fixture("r-sig"))),
            ["8e7df3 exit-code 2 4ms", "1775a1 signal - 10ms"]
        );
    }

    #[test]
    fn restart_loops_and_the_start_limit() {
        let runs = summary(&fold(&fixture("r-loop")));
        assert_eq!(runs.len(), 12, "{runs:#?}");
        assert_eq!(runs[0], "0495d7 exit-code 1 11ms");
        for run in &runs[1..5] {
            assert!(run.ends_with(" restart"), "{run}");
        }
        // The limit refused the sixth start: its "exit-code" result is stale, not a run's.
        assert_eq!(runs[5], "- start-limit-hit - 0ms x1");
        // A manual start later: a new loop, again ended by the limit (refused twice).
        assert!(!runs[6].ends_with(" restart"), "{}", runs[6]);
        assert_eq!(runs[11], "- start-limit-hit - 5593ms x2");
        // A clean-exit loop: start-limit-hit is logged under the last run's invocation.
        let runs = summary(&fold(&fixture("r-loop0")));
        assert_eq!(runs.len(), 6);
        assert!(
            runs[..5].iter().all(|r| r.contains(" success ")),
            "{runs:#?}"
        );
        assert_eq!(runs[5], "- start-limit-hit - 0ms x1");
    }

    #[test]
    fn refusals_of_one_invocation_are_one_entry() {
        let runs = fold(&fixture("r-many"));
        let refusals: Vec<_> = runs.iter().filter(|r| r.refused_starts > 0).collect();
        assert_eq!(refusals.len(), 1);
        assert_eq!(refusals[0].refused_starts, 10);
        // The run before them keeps its own result.
        let last_run = runs.iter().rfind(|r| r.refused_starts == 0).unwrap();
        assert_eq!(last_run.result.as_deref(), Some("exit-code"));
        assert_eq!(last_run.exit_status, Some(3));
    }

    #[test]
    fn timer_and_manual_runs_look_alike() {
        let runs = fold(&fixture("r-job"));
        assert_eq!(runs.len(), 7);
        assert!(runs.iter().all(|r| r.result.as_deref() == Some("exit-code")
            && r.exit_status == Some(3)
            && r.restarted.is_none()));
        assert_eq!(runs[0].job_id, Some(1806));
        let ms = (runs[0].ended_usec.unwrap() - runs[0].started_usec) / 1000;
        assert_eq!(ms, 508);
    }

    #[test]
    fn skipped_starts_and_open_runs() {
        let start = |inv: &str, usec| Pid1Entry {
            cursor: format!("c{usec}"),
            usec,
            message_id: Some(UNIT_STARTED.into()),
            invocation: Some(inv.into()),
            job_type: Some("start".into()),
            ..Default::default()
        };
        // A condition skipped the first start: it has no invocation.
        let skipped = Pid1Entry {
            invocation: None,
            ..start("", 1)
        };
        let runs = fold(&[skipped, start("abcdef", 2)]);
        assert_eq!(summary(&runs), ["abcdef open - 0ms"]);
        // An end without its start (rotated away) is no run.
        let end = Pid1Entry {
            message_id: Some(UNIT_SUCCESS.into()),
            invocation: Some("012345".into()),
            usec: 3,
            ..Default::default()
        };
        assert!(fold(&[end]).is_empty());
    }
}
