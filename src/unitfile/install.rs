//! The parts of creating a unit file that touch the machine: `systemd-analyze verify` and
//! `calendar`, checks that the program, directory, user and group exist, and the atomic
//! write of the files into the unit directory (with a way back).
//!
//! Nothing here talks D-Bus or the database; `ops` puts the steps in order.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

use super::dropin::{DROP_IN_NAME, field_of_key};
use super::render::is_managed;
use super::spec::UnitSpec;
use super::syntax::key_at_line;
use crate::error::FieldError;

/// How long `systemd-analyze` and `getent` may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(20);
/// Next run times returned for a job.
pub const NEXT_RUNS: usize = 5;

/// What `systemd-analyze verify` said about the rendered files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct VerifyReport {
    /// True when verify exited successfully and printed nothing.
    pub ok: bool,
    /// Its messages, one per line, with the temporary directory left out.
    pub messages: Vec<String>,
    /// Problems that make unitdeck refuse to install the spec (a create or update with
    /// any of these answers 422 with the same errors): a missing program, working
    /// directory, user or group, or a setting systemd cannot parse.
    pub errors: Vec<FieldError>,
}

// --- systemd-analyze ------------------------------------------------------------------

/// Runs a tool with a timeout; (success, stdout + stderr). `Err` when it cannot run.
async fn run_tool(program: &str, args: &[&str]) -> io::Result<(bool, String)> {
    let child = tokio::process::Command::new(program)
        .args(args)
        .env("SYSTEMD_COLORS", "0")
        .env("SYSTEMD_PAGER", "")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let out = tokio::time::timeout(TOOL_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("{program} timed out")))??;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok((out.status.success(), text))
}

/// `systemd-analyze calendar --iterations=5 -- SCHEDULE`: the next run times (RFC 3339,
/// UTC), or the message to show on the `schedule` field.
pub async fn next_runs(schedule: &str) -> Result<Vec<String>, String> {
    let iterations = format!("--iterations={NEXT_RUNS}");
    let (ok, text) = run_tool(
        "systemd-analyze",
        &["calendar", &iterations, "--", schedule],
    )
    .await
    .map_err(|e| format!("cannot check the schedule: systemd-analyze: {e}"))?;
    if !ok {
        let reason = text.lines().next().unwrap_or("").trim();
        return Err(format!(
            "is not a calendar expression systemd understands ({}); e.g. \"daily\" or \"*-*-* 03:00:00\"",
            reason
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect::<String>()
        ));
    }
    let runs = parse_calendar_output(&text);
    if runs.is_empty() {
        return Err("never elapses again: pick a schedule with a future run".into());
    }
    Ok(runs)
}

/// The elapse times in `systemd-analyze calendar` output, converted to UTC. Each
/// `Next elapse:` / `Iter. #N:` line may be followed by `(in UTC):` when the local zone is
/// not UTC.
fn parse_calendar_output(text: &str) -> Vec<String> {
    let mut runs: Vec<String> = Vec::new();
    let mut pending: Option<String> = None;
    let flush = |pending: &mut Option<String>, runs: &mut Vec<String>| {
        if let Some(t) = pending.take().and_then(|v| utc_timestamp(&v)) {
            runs.push(t);
        }
    };
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once(": ") else {
            continue;
        };
        let value = value.trim().to_string();
        match key {
            "Next elapse" if value != "never" => {
                flush(&mut pending, &mut runs);
                pending = Some(value);
            }
            k if k.starts_with("Iter. #") => {
                flush(&mut pending, &mut runs);
                pending = Some(value);
            }
            "(in UTC)" => pending = Some(value),
            _ => {}
        }
    }
    flush(&mut pending, &mut runs);
    runs
}

/// `Sun 2026-11-29 03:00:00 UTC` → `2026-11-29T03:00:00.000000Z`; None for another zone.
/// GMT is UTC too: in zones such as Etc/GMT no `(in UTC)` line follows.
fn utc_timestamp(value: &str) -> Option<String> {
    let mut parts = value.split_whitespace();
    let (_weekday, date, time, zone) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if zone != "UTC" && zone != "GMT" {
        return None;
    }
    let t = chrono::NaiveDateTime::parse_from_str(&format!("{date} {time}"), "%Y-%m-%d %H:%M:%S")
        .ok()?;
    Some(
        t.and_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    )
}

/// A private temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> io::Result<Self> {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", unique_suffix()));
        std::fs::create_dir(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut random = [0u8; 6];
    let _ = getrandom::fill(&mut random);
    format!(
        "{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        hex::encode(random)
    )
}

/// `systemd-analyze verify` on the files, written to a private temporary directory (no
/// other side effect). `primary` is verified first.
pub async fn verify(files: &BTreeMap<String, String>, primary: &str) -> VerifyReport {
    let mut units: Vec<&str> = vec![primary];
    units.extend(files.keys().map(String::as_str).filter(|n| *n != primary));
    match analyze(files, &units).await {
        Ok((success, messages)) => {
            let errors = hard_errors(&messages, files);
            VerifyReport {
                ok: success && messages.is_empty(),
                messages,
                errors,
            }
        }
        Err(message) => unavailable(message),
    }
}

/// `systemd-analyze verify` of `unit` as systemd would load it with unitdeck's drop-in:
/// `files` holds its fragment (named `unit`) and every drop-in that applies, ours
/// included, as `unit.d/FILE` (their own file names: systemd's order). The private
/// directory comes first in verify's search path, so these mask the installed copies.
/// Every message about our drop-in is an error on the field its line comes from.
pub async fn verify_override(unit: &str, files: &BTreeMap<String, String>) -> VerifyReport {
    let ours = format!("{unit}.d/{DROP_IN_NAME}");
    let text = files.get(&ours).map_or("", String::as_str);
    match analyze(files, &[unit]).await {
        Ok((success, messages)) => {
            let mut errors: Vec<FieldError> = Vec::new();
            for message in &messages {
                let Some(rest) = message.strip_prefix(&ours) else {
                    continue;
                };
                let line = rest
                    .strip_prefix(':')
                    .and_then(|r| r.split_once(':'))
                    .and_then(|(n, _)| n.parse::<usize>().ok());
                let field = match line.and_then(|n| key_at_line(text, n)) {
                    Some(key) => field_of_key(&key),
                    None => "override",
                };
                if !errors.iter().any(|e| e.field == field) {
                    errors.push(FieldError::new(field, format!("systemd: {message}")));
                }
            }
            VerifyReport {
                ok: success && messages.is_empty(),
                messages,
                errors,
            }
        }
        Err(message) => unavailable(message),
    }
}

/// Writes `files` (paths relative to a private temporary directory; a drop-in directory
/// is made) and runs `systemd-analyze verify` on `units` there: (success, its messages
/// with the directory left out), or why it could not run.
async fn analyze(
    files: &BTreeMap<String, String>,
    units: &[&str],
) -> Result<(bool, Vec<String>), String> {
    let dir = TempDir::new("unitdeck-verify")
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    for (name, text) in files {
        let path = dir.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot write {name} for verification: {e}"))?;
        }
        std::fs::write(&path, text)
            .map_err(|e| format!("cannot write {name} for verification: {e}"))?;
    }
    let paths: Vec<String> = units
        .iter()
        .map(|n| dir.0.join(n).to_string_lossy().into_owned())
        .collect();
    let mut args = vec!["verify", "--man=no"];
    args.extend(paths.iter().map(String::as_str));
    let (success, text) = run_tool("systemd-analyze", &args)
        .await
        .map_err(|e| format!("systemd-analyze verify could not run: {e}"))?;
    let prefix = format!("{}/", dir.0.display());
    let mut messages: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.replace(&prefix, "").trim().to_string();
        if !line.is_empty() && !messages.contains(&line) {
            messages.push(line);
        }
    }
    Ok((success, messages))
}

fn unavailable(message: String) -> VerifyReport {
    VerifyReport {
        ok: false,
        messages: vec![message],
        errors: Vec::new(),
    }
}

/// Messages about a setting in one of our own files that systemd cannot use. The renderer
/// never writes one; if it ever did, the spec is refused rather than installed.
fn hard_errors(messages: &[String], files: &BTreeMap<String, String>) -> Vec<FieldError> {
    const SETTING_ERRORS: &[&str] = &[
        "Unknown key",
        "Unknown section",
        "Unknown lvalue",
        "Failed to parse",
        "Invalid",
        "bad-setting",
        "Failed to resolve unit specifiers",
        "Missing '='",
        "Assignment outside of section",
    ];
    let mut errors: Vec<FieldError> = Vec::new();
    for message in messages {
        let ours = files.keys().any(|f| message.starts_with(f.as_str()));
        if !ours || !SETTING_ERRORS.iter().any(|p| message.contains(p)) {
            continue;
        }
        let field = field_of_message(message);
        if !errors.iter().any(|e| e.field == field) {
            errors.push(FieldError::new(field, format!("systemd: {message}")));
        }
    }
    errors
}

/// The spec field a verify message is about, from the unit-file key it names.
fn field_of_message(message: &str) -> &'static str {
    const KEYS: &[(&str, &str)] = &[
        ("OnCalendar", "schedule"),
        ("ExecStart", "exec_start"),
        ("WorkingDirectory", "working_directory"),
        ("Environment", "environment"),
        ("User", "user"),
        ("Group", "group"),
        ("Description", "description"),
        ("Requires", "requires"),
        ("Wants", "wants"),
        ("After", "after"),
        ("RestartSec", "restart_sec"),
        ("Restart", "restart"),
        ("MemoryMax", "memory_max"),
        ("memory limit", "memory_max"),
        ("CPUQuota", "cpu_quota"),
        ("CPU quota", "cpu_quota"),
    ];
    KEYS.iter()
        .find(|(key, _)| message.contains(key))
        .map_or("spec", |(_, field)| field)
}

// --- does what the spec names exist? ----------------------------------------------------

/// Checks that what the unit needs at start exists here: an executable program, the
/// working directory, the user and the group. One error per field, like validation.
pub async fn preflight(spec: &UnitSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(program) = spec.exec_start.first()
        && let Err(message) = check_program(Path::new(program))
    {
        errors.push(FieldError::new("exec_start", message));
    }
    if let Some(dir) = &spec.working_directory {
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => errors.push(FieldError::new(
                "working_directory",
                format!("{dir:?} is not a directory"),
            )),
            Err(_) => errors.push(FieldError::new(
                "working_directory",
                format!("{dir:?} does not exist on this machine"),
            )),
        }
    }
    for (field, database, value) in [
        ("user", "passwd", &spec.user),
        ("group", "group", &spec.group),
    ] {
        let Some(name) = value else { continue };
        // Numeric IDs need no entry; systemd resolves root and nobody itself.
        if name.bytes().all(|b| b.is_ascii_digit()) || matches!(name.as_str(), "root" | "nobody") {
            continue;
        }
        match run_tool("getent", &[database, "--", name]).await {
            Ok((true, _)) => {}
            Ok((false, _)) => errors.push(FieldError::new(
                field,
                format!("there is no {field} {name:?} on this machine"),
            )),
            Err(e) => tracing::warn!(error = %e, "getent could not run; {field} not checked"),
        }
    }
    errors
}

/// The program of a command exists here and is executable.
pub fn check_program(program: &Path) -> Result<(), String> {
    let shown = program.display();
    match std::fs::metadata(program) {
        Ok(m) if !m.is_file() => Err(format!("item 0 (the program) {shown} is not a file")),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => {
            Err(format!("item 0 (the program) {shown} is not executable"))
        }
        Ok(_) => Ok(()),
        Err(_) => Err(format!(
            "item 0 (the program) {shown} does not exist on this machine"
        )),
    }
}

// --- the unit directory ------------------------------------------------------------------

/// What is at `dir/name` now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnDisk {
    Absent,
    /// A regular file unitdeck wrote (it starts with the marker).
    Ours(String),
    /// Anything else: a file without the marker, a symlink (an alias or a mask), a directory.
    Foreign,
}

/// The directories systemd reads system units from, most important first (after the unit
/// directory unitdeck writes to, which is searched first).
const SEARCH_PATH: &[&str] = &[
    "/etc/systemd/system.control",
    "/run/systemd/system.control",
    "/run/systemd/transient",
    "/run/systemd/generator.early",
    "/etc/systemd/system",
    "/etc/systemd/system.attached",
    "/run/systemd/system",
    "/run/systemd/system.attached",
    "/run/systemd/generator",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/run/systemd/generator.late",
];

fn search_dirs(unit_dir: &Path) -> Vec<&Path> {
    let mut dirs: Vec<&Path> = vec![unit_dir];
    dirs.extend(SEARCH_PATH.iter().map(Path::new).filter(|d| *d != unit_dir));
    dirs
}

fn conf_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "conf"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Drop-in directories (`NAME.d/` holding a `.conf` file) for `name` in `unit_dir` and
/// the other directories systemd reads units from.
pub fn drop_in_dirs(unit_dir: &Path, name: &str) -> Vec<std::path::PathBuf> {
    search_dirs(unit_dir)
        .iter()
        .map(|d| d.join(format!("{name}.d")))
        .filter(|d| !conf_files(d).is_empty())
        .collect()
}

/// Every drop-in file systemd would apply to a unit named `name`, in the order it applies
/// them (what `systemctl cat` shows after the fragment), also for a unit that does not
/// exist yet. Like systemd: the directories are the unit's own (`NAME.d/`), the template's
/// (`foo@.service.d/` for `foo@x.service`), each dash prefix, longest first
/// (`shop-.service.d/` for `shop-api.service`), and the type's (`service.d/`), in every
/// search directory; files apply in the order of their names, and of two files with the
/// same name the one in the more important directory hides the other.
pub fn applicable_drop_ins(unit_dir: &Path, name: &str) -> Vec<std::path::PathBuf> {
    let Some((stem, suffix)) = name.rsplit_once('.') else {
        return Vec::new();
    };
    let mut dir_names = vec![format!("{name}.d")];
    if let Some((template, instance)) = stem.split_once('@')
        && !instance.is_empty()
    {
        dir_names.push(format!("{template}@.{suffix}.d"));
    }
    let mut cut = stem.len();
    while let Some(dash) = stem[..cut].rfind('-') {
        if dash > 0 {
            dir_names.push(format!("{}.{suffix}.d", &stem[..=dash]));
        }
        cut = dash;
    }
    dir_names.push(format!("{suffix}.d"));
    let mut by_file_name: std::collections::BTreeMap<std::ffi::OsString, std::path::PathBuf> =
        Default::default();
    for dir in search_dirs(unit_dir) {
        for dir_name in &dir_names {
            for file in conf_files(&dir.join(dir_name)) {
                if let Some(file_name) = file.file_name() {
                    by_file_name.entry(file_name.to_owned()).or_insert(file);
                }
            }
        }
    }
    by_file_name.into_values().collect()
}

pub fn on_disk(dir: &Path, name: &str) -> io::Result<OnDisk> {
    let path = dir.join(name);
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(OnDisk::Absent),
        Err(e) => Err(e),
        Ok(m) if !m.file_type().is_file() => Ok(OnDisk::Foreign),
        Ok(_) => {
            let bytes = std::fs::read(&path)?;
            match String::from_utf8(bytes) {
                Ok(text) if is_managed(&text) => Ok(OnDisk::Ours(text)),
                _ => Ok(OnDisk::Foreign),
            }
        }
    }
}

/// Files changed by [`install_files`], with what they held before, so the change can be
/// undone.
#[must_use = "roll back or keep the installed files"]
#[derive(Debug)]
pub struct Installed {
    dir: PathBuf,
    previous: Vec<(String, Option<Vec<u8>>)>,
}

impl Installed {
    /// Puts every file back as it was (written back atomically, or removed).
    pub fn rollback(self) -> io::Result<()> {
        let mut first_error = None;
        for (name, previous) in self.previous.iter().rev() {
            let result = match previous {
                Some(bytes) => write_atomically(&self.dir, name, bytes).and_then(|tmp| {
                    std::fs::rename(&tmp, self.dir.join(name)).inspect_err(|_| {
                        let _ = std::fs::remove_file(&tmp);
                    })
                }),
                None => match std::fs::remove_file(self.dir.join(name)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                    _ => Ok(()),
                },
            };
            if let Err(e) = result {
                tracing::error!(file = name, error = %e, "could not restore a unit file");
                first_error.get_or_insert(e);
            }
        }
        let synced = sync_dir(&self.dir);
        match first_error {
            Some(e) => Err(e),
            None => synced,
        }
    }
}

/// Writes `write` (file name → text) and removes `remove` in `dir`, each file replaced
/// atomically: a temporary file in the same directory is written and fsynced, then renamed
/// over the old one, then the directory is fsynced. A reader (systemd) sees the old or the
/// new file, never a part. On an error part-way, the files already changed are put back.
pub fn install_files(
    dir: &Path,
    write: &BTreeMap<String, String>,
    remove: &[String],
) -> io::Result<Installed> {
    let mut installed = Installed {
        dir: dir.to_path_buf(),
        previous: Vec::new(),
    };
    let mut saved: Vec<(String, Option<Vec<u8>>)> = Vec::new();
    for name in write.keys().chain(remove) {
        let previous = match std::fs::read(dir.join(name)) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        saved.push((name.clone(), previous));
    }
    // Every temporary file first: a failure here changes nothing.
    let mut temps: Vec<(PathBuf, &String)> = Vec::new();
    for (name, text) in write {
        match write_atomically(dir, name, text.as_bytes()) {
            Ok(tmp) => temps.push((tmp, name)),
            Err(e) => {
                for (tmp, _) in &temps {
                    let _ = std::fs::remove_file(tmp);
                }
                return Err(e);
            }
        }
    }
    let mut temps = temps.into_iter();
    let mut result = Ok(());
    for (tmp, name) in temps.by_ref() {
        if let Err(e) = std::fs::rename(&tmp, dir.join(name)) {
            let _ = std::fs::remove_file(&tmp);
            result = Err(e);
            break;
        }
        installed.previous.push(take_saved(&mut saved, name));
    }
    if result.is_ok() {
        for name in remove {
            match std::fs::remove_file(dir.join(name)) {
                Ok(()) => installed.previous.push(take_saved(&mut saved, name)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
    }
    if let Err(e) = result.and_then(|()| sync_dir(dir)) {
        for (tmp, _) in temps {
            let _ = std::fs::remove_file(tmp);
        }
        if let Err(undo) = installed.rollback() {
            tracing::error!(error = %undo, "rolling back a partial unit-file install failed");
        }
        return Err(e);
    }
    Ok(installed)
}

fn take_saved(saved: &mut Vec<(String, Option<Vec<u8>>)>, name: &str) -> (String, Option<Vec<u8>>) {
    let i = saved
        .iter()
        .position(|(n, _)| n == name)
        .expect("every file was read before");
    saved.swap_remove(i)
}

/// Writes `bytes` to a new hidden temporary file next to `dir/name` (mode 0644, fsynced)
/// and returns its path. systemd ignores it: the name does not end in a unit suffix.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<PathBuf> {
    let tmp = dir.join(format!(".{name}.unitdeck-{}.tmp", unique_suffix()));
    let result = (|| {
        let mut file: File = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)?;
        // The process umask (0077 under the shipped unit) would leave 0600.
        file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

// --- a unit's sources ------------------------------------------------------------------

/// Longest file shown or verified; more is cut (unit files are far shorter).
pub const MAX_SOURCE_BYTES: usize = 1 << 20;

/// Reads a file systemd names as a unit's source (its fragment or a drop-in), at most
/// [`MAX_SOURCE_BYTES`], and whether more was cut. Only a regular file: anything else
/// (a FIFO named `.conf` would block the read, `/dev/null` masks) is an error.
pub fn read_source(path: &Path) -> io::Result<(String, bool)> {
    use std::io::Read as _;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_SOURCE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    let cut = bytes.len() > MAX_SOURCE_BYTES;
    bytes.truncate(MAX_SOURCE_BYTES);
    Ok((String::from_utf8_lossy(&bytes).into_owned(), cut))
}

// --- unitdeck's drop-in ---------------------------------------------------------------

/// The drop-in directory of `unit` in the unit directory: `unit_dir/UNIT.d`.
pub fn drop_in_dir(unit_dir: &Path, unit: &str) -> PathBuf {
    unit_dir.join(format!("{unit}.d"))
}

/// Where unitdeck's drop-in for `unit` lives: `unit_dir/UNIT.d/50-unitdeck.conf`.
pub fn drop_in_path(unit_dir: &Path, unit: &str) -> PathBuf {
    drop_in_dir(unit_dir, unit).join(DROP_IN_NAME)
}

/// What is at the drop-in's place now (a symlink or anything but a file is `Foreign`), or
/// why nothing may be written there: a drop-in directory that is not a directory of its
/// own (a symlink would lead the write elsewhere).
pub fn drop_in_on_disk(unit_dir: &Path, unit: &str) -> io::Result<Result<OnDisk, String>> {
    let dir = drop_in_dir(unit_dir, unit);
    match std::fs::symlink_metadata(&dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Ok(OnDisk::Absent)),
        Err(e) => Err(e),
        Ok(m) if m.file_type().is_symlink() => Ok(Err(format!(
            "{} is a symbolic link; unitdeck writes only into a directory of the unit's own",
            dir.display()
        ))),
        Ok(m) if !m.is_dir() => Ok(Err(format!("{} is not a directory", dir.display()))),
        Ok(_) => on_disk(&dir, DROP_IN_NAME).map(Ok),
    }
}

/// Records that `unit`'s drop-in is about to change, in its directory (made, mode 0755,
/// when missing): a crash before the change is committed is settled at the next start
/// ([`interrupted_drop_ins`]).
pub fn begin_drop_in_change(unit_dir: &Path, unit: &str) -> io::Result<ChangeIntent> {
    let dir = drop_in_dir(unit_dir, unit);
    match std::fs::create_dir(&dir) {
        Ok(()) => {
            // The process umask (0077 under the shipped unit) would leave 0700.
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
            sync_dir(unit_dir)?;
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    own_directory(&dir)?;
    begin_change(&dir, DROP_IN_NAME, &[DROP_IN_NAME.to_string()])
}

/// Writes (`Some`) or removes (`None`) `unit`'s drop-in atomically (see
/// [`install_files`]); nothing else in its directory is touched.
pub fn install_drop_in(unit_dir: &Path, unit: &str, text: Option<&str>) -> io::Result<Installed> {
    let dir = drop_in_dir(unit_dir, unit);
    // Checked again right before the write: the directory may have changed since.
    own_directory(&dir)?;
    match text {
        Some(text) => install_files(
            &dir,
            &BTreeMap::from([(DROP_IN_NAME.to_string(), text.to_string())]),
            &[],
        ),
        None => install_files(&dir, &BTreeMap::new(), &[DROP_IN_NAME.to_string()]),
    }
}

/// Removes `unit`'s drop-in directory if nothing is left in it.
pub fn remove_empty_drop_in_dir(unit_dir: &Path, unit: &str) -> io::Result<()> {
    let dir = drop_in_dir(unit_dir, unit);
    if std::fs::read_dir(&dir)?.next().is_some() {
        return Ok(());
    }
    std::fs::remove_dir(&dir)?;
    sync_dir(unit_dir)
}

fn own_directory(dir: &Path) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(dir)?;
    if meta.is_dir() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{} is not a directory of its own",
            dir.display()
        )))
    }
}

/// The drop-in changes a crash interrupted: `(unit, change)` for every `UNIT.d/` directory
/// of `unit_dir` whose intent is still there. Temporary files a crash left in them go.
pub fn interrupted_drop_ins(unit_dir: &Path) -> io::Result<Vec<(String, Interrupted)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(unit_dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(unit) = name.strip_suffix(".d") else {
            continue;
        };
        if !entry.file_type()?.is_dir() {
            continue;
        }
        remove_stale_temps(&entry.path())?;
        for change in interrupted_changes(&entry.path())? {
            if change.base == DROP_IN_NAME {
                found.push((unit.to_string(), change));
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

// --- crash recovery ----------------------------------------------------------------------

/// Suffix of the file that marks a change in progress (`.NAME.unitdeck-change`).
const CHANGE_INTENT: &str = ".unitdeck-change";

/// A change in progress (create, update, rollback, delete), recorded in the unit
/// directory before its files are written: `dir/.NAME.unitdeck-change` lists every file
/// the change may write or remove. A kill between installing the files and committing
/// the revision leaves files that no revision describes; the next start finds the intent
/// ([`interrupted_changes`]) and the database decides: the files of a unit it has no row
/// for go, the others get their recorded revision back. Call [`Self::finish`] once the
/// change is committed or undone.
#[must_use = "finish the intent once the change is committed or undone"]
#[derive(Debug)]
pub struct ChangeIntent {
    path: PathBuf,
}

/// Records that the files `names` of unit file `base` are about to change.
pub fn begin_change(dir: &Path, base: &str, names: &[String]) -> io::Result<ChangeIntent> {
    let intent = format!(".{base}{CHANGE_INTENT}");
    let tmp = write_atomically(dir, &intent, names.join("\n").as_bytes())?;
    let path = dir.join(&intent);
    if let Err(e) = std::fs::rename(&tmp, &path).and_then(|()| sync_dir(dir)) {
        let _ = std::fs::remove_file(&tmp);
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(ChangeIntent { path })
}

impl ChangeIntent {
    pub fn finish(self) -> io::Result<()> {
        std::fs::remove_file(&self.path)?;
        sync_dir(self.path.parent().unwrap_or(Path::new(".")))
    }
}

/// An interrupted change found at start: its base name and the files it was changing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interrupted {
    pub base: String,
    pub files: Vec<String>,
    intent: PathBuf,
}

/// The changes a crash interrupted (their intent files are still there).
pub fn interrupted_changes(dir: &Path) -> io::Result<Vec<Interrupted>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(base) = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(CHANGE_INTENT))
        else {
            continue;
        };
        let text = std::fs::read_to_string(entry.path())?;
        found.push(Interrupted {
            base: base.to_string(),
            // Only plain unit file names: the intent is read back from disk.
            files: text
                .lines()
                .filter(|n| !n.contains('/') && !n.starts_with('.') && !n.is_empty())
                .map(String::from)
                .collect(),
            intent: entry.path(),
        });
    }
    found.sort_by(|a, b| a.base.cmp(&b.base));
    Ok(found)
}

impl Interrupted {
    /// Removes the files of the change that unitdeck wrote (never a file without the
    /// marker), then the intent: for a unit the database has no row for (a create that
    /// was never committed, a delete that was). Returns the names removed.
    pub fn undo(self, dir: &Path) -> io::Result<Vec<String>> {
        let mut removed = Vec::new();
        for name in &self.files {
            if let OnDisk::Ours(_) = on_disk(dir, name)? {
                std::fs::remove_file(dir.join(name))?;
                removed.push(name.clone());
            }
        }
        self.forget()?;
        sync_dir(dir)?;
        Ok(removed)
    }

    /// Removes only the intent (its files were put back, or the change was committed).
    pub fn forget(&self) -> io::Result<()> {
        match std::fs::remove_file(&self.intent) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Removes the temporary files a crash left behind ([`write_atomically`]'s
/// `.NAME.unitdeck-*.tmp`); returns their names.
pub fn remove_stale_temps(dir: &Path) -> io::Result<Vec<String>> {
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.')
            && name.contains(".unitdeck-")
            && name.ends_with(".tmp")
            && entry.file_type()?.is_file()
        {
            std::fs::remove_file(entry.path())?;
            removed.push(name);
        }
    }
    if !removed.is_empty() {
        sync_dir(dir)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_unit_dir() -> TempDir {
        TempDir::new("unitdeck-install-test").unwrap()
    }

    fn listing(dir: &Path) -> BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn calendar_output_is_parsed_in_utc() {
        let utc = "  Original form: daily\nNormalized form: *-*-* 00:00:00\n    Next elapse: Sun 2026-11-29 00:00:00 UTC\n       From now: 16h left\n       Iter. #2: Mon 2026-11-30 00:00:00 UTC\n       From now: 1 day left\n";
        assert_eq!(
            parse_calendar_output(utc),
            ["2026-11-29T00:00:00.000000Z", "2026-11-30T00:00:00.000000Z"]
        );
        let berlin = "Normalized form: Mon *-*-* 03:00:00\n    Next elapse: Mon 2026-11-30 03:00:00 CET\n       (in UTC): Mon 2026-11-30 02:00:00 UTC\n       From now: 1 day 15h left\n       Iter. #2: Mon 2026-12-07 03:00:00 CET\n       (in UTC): Mon 2026-12-07 02:00:00 UTC\n";
        assert_eq!(
            parse_calendar_output(berlin),
            ["2026-11-30T02:00:00.000000Z", "2026-12-07T02:00:00.000000Z"]
        );
        let gmt = "    Next elapse: Sun 2026-11-29 00:00:00 GMT\n       From now: 16h left\n";
        assert_eq!(parse_calendar_output(gmt), ["2026-11-29T00:00:00.000000Z"]);
        assert!(parse_calendar_output("    Next elapse: never\n").is_empty());
    }

    fn no_systemd_analyze() -> bool {
        let missing = std::process::Command::new("systemd-analyze")
            .arg("--version")
            .output()
            .is_err();
        if missing {
            eprintln!("skipping: no systemd-analyze");
        }
        missing
    }

    #[tokio::test]
    async fn calendar_rejects_nonsense_and_lists_runs() {
        if no_systemd_analyze() {
            return;
        }
        assert_eq!(next_runs("daily").await.unwrap().len(), NEXT_RUNS);
        assert!(next_runs("bogus").await.unwrap_err().contains("calendar"));
        assert!(next_runs("2001-01-01").await.unwrap_err().contains("never"));
        // An option-looking schedule is an argument, not an option.
        assert!(next_runs("--help").await.is_err());
    }

    #[tokio::test]
    async fn an_override_is_verified_with_the_other_drop_ins_applied() {
        if no_systemd_analyze() {
            return;
        }
        let files = BTreeMap::from([
            (
                "probe.service".to_string(),
                "[Service]\nExecStart=/bin/true\n".to_string(),
            ),
            (
                "probe.service.d/10-other.conf".to_string(),
                "[Service]\nBogusOther=1\n".to_string(),
            ),
            (
                format!("probe.service.d/{DROP_IN_NAME}"),
                "# ours\n[Service]\nNice=1\nMemoryMax=12Q\nLimitNOFILE=x\n".to_string(),
            ),
        ]);
        let report = verify_override("probe.service", &files).await;
        assert!(!report.ok);
        // The other tool's mistake is shown, not held against the override.
        assert!(
            report.messages.iter().any(|m| m.contains("BogusOther")),
            "{report:?}"
        );
        let fields: Vec<&str> = report.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["memory_max", "raw"], "{report:?}");
    }

    #[test]
    fn hard_errors_only_for_our_settings() {
        let files = BTreeMap::from([("a.service".to_string(), String::new())]);
        let messages = vec![
            "a.service: Failed to create a.service/start: Unit nope.service not found.".to_string(),
            "a.service:9: Unknown key name 'Bogus' in section 'Service', ignoring.".to_string(),
            "other.service:3: Unknown key name 'X' in section 'Unit', ignoring.".to_string(),
            "a.service:12: Failed to parse OnCalendar= value, ignoring: x".to_string(),
        ];
        let errors = hard_errors(&messages, &files);
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["spec", "schedule"]);
    }

    #[test]
    fn install_writes_atomically_and_rolls_back() {
        let dir = temp_unit_dir();
        std::fs::write(dir.0.join("keep.service"), "old").unwrap();
        std::fs::write(dir.0.join("gone.timer"), "timer").unwrap();
        let before = listing(&dir.0);
        let write = BTreeMap::from([
            ("keep.service".to_string(), "new".to_string()),
            ("fresh.service".to_string(), "fresh".to_string()),
        ]);
        let installed = install_files(&dir.0, &write, &["gone.timer".to_string()]).unwrap();
        let after = listing(&dir.0);
        assert_eq!(after.len(), 2, "no temporary file left: {:?}", after.keys());
        assert_eq!(after["keep.service"], b"new");
        assert_eq!(after["fresh.service"], b"fresh");
        let mode = std::fs::metadata(dir.0.join("fresh.service"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
        installed.rollback().unwrap();
        assert_eq!(listing(&dir.0), before);
    }

    #[test]
    fn a_failed_rename_leaves_the_directory_unchanged() {
        let dir = temp_unit_dir();
        std::fs::write(dir.0.join("a.service"), "old a").unwrap();
        // A directory where a file should go makes its rename fail, after a.service's.
        std::fs::create_dir(dir.0.join("b.timer")).unwrap();
        std::fs::write(dir.0.join("b.timer").join("x"), "x").unwrap();
        let before = listing_names(&dir.0);
        let write = BTreeMap::from([
            ("a.service".to_string(), "new a".to_string()),
            ("b.timer".to_string(), "new b".to_string()),
        ]);
        assert!(install_files(&dir.0, &write, &[]).is_err());
        assert_eq!(listing_names(&dir.0), before);
        assert_eq!(std::fs::read(dir.0.join("a.service")).unwrap(), b"old a");
    }

    #[test]
    fn an_interrupted_change_is_found_and_undone() {
        let dir = temp_unit_dir();
        let ours = format!("{}\n[Unit]\n", super::super::render::MANAGED_HEADER);
        std::fs::write(dir.0.join("keep.service"), "by hand").unwrap();
        let before = listing_names(&dir.0);
        let names = ["job.service".to_string(), "job.timer".to_string()];
        // A change that finished leaves nothing behind.
        begin_change(&dir.0, "done", &names)
            .unwrap()
            .finish()
            .unwrap();
        assert_eq!(listing_names(&dir.0), before);
        assert!(interrupted_changes(&dir.0).unwrap().is_empty());
        // A crash after the files were installed: the intent is still there.
        let _crashed = begin_change(&dir.0, "job", &names).unwrap();
        std::fs::write(dir.0.join("job.service"), &ours).unwrap();
        std::fs::write(dir.0.join("job.timer"), "replaced by hand").unwrap();
        std::fs::write(dir.0.join(".job.service.unitdeck-1-2-ab.tmp"), "part").unwrap();
        let found = interrupted_changes(&dir.0).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].base, "job");
        assert_eq!(found[0].files, names);
        let removed = found.into_iter().next().unwrap().undo(&dir.0).unwrap();
        assert_eq!(removed, ["job.service"], "a file without the marker stays");
        assert_eq!(
            remove_stale_temps(&dir.0).unwrap(),
            [".job.service.unitdeck-1-2-ab.tmp"]
        );
        std::fs::remove_file(dir.0.join("job.timer")).unwrap();
        assert_eq!(listing_names(&dir.0), before);
    }

    fn listing_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn on_disk_tells_ours_from_foreign() {
        let dir = temp_unit_dir();
        assert_eq!(on_disk(&dir.0, "x.service").unwrap(), OnDisk::Absent);
        std::fs::write(
            dir.0.join("hand.service"),
            "[Service]\nExecStart=/bin/true\n",
        )
        .unwrap();
        assert_eq!(on_disk(&dir.0, "hand.service").unwrap(), OnDisk::Foreign);
        let ours = format!("{}\n[Unit]\n", super::super::render::MANAGED_HEADER);
        std::fs::write(dir.0.join("ours.service"), &ours).unwrap();
        assert_eq!(
            on_disk(&dir.0, "ours.service").unwrap(),
            OnDisk::Ours(ours.clone())
        );
        std::os::unix::fs::symlink(dir.0.join("ours.service"), dir.0.join("alias.service"))
            .unwrap();
        assert_eq!(on_disk(&dir.0, "alias.service").unwrap(), OnDisk::Foreign);
    }

    #[test]
    fn the_drop_in_is_written_only_into_a_directory_of_the_units_own() {
        let dir = temp_unit_dir();
        let unit = "app.service";
        assert_eq!(drop_in_on_disk(&dir.0, unit).unwrap(), Ok(OnDisk::Absent));
        // Another tool's drop-in stays as it is through a write, a rewrite and a removal.
        std::fs::create_dir(dir.0.join("app.service.d")).unwrap();
        std::fs::write(
            dir.0.join("app.service.d/10-other.conf"),
            "[Service]\nNice=1\n",
        )
        .unwrap();
        let ours = format!(
            "{}\n[Service]\nNice=2\n",
            super::super::render::MANAGED_HEADER
        );
        let intent = begin_drop_in_change(&dir.0, unit).unwrap();
        drop(install_drop_in(&dir.0, unit, Some(&ours)).unwrap());
        assert_eq!(interrupted_drop_ins(&dir.0).unwrap().len(), 1);
        intent.finish().unwrap();
        assert!(interrupted_drop_ins(&dir.0).unwrap().is_empty());
        assert_eq!(
            drop_in_on_disk(&dir.0, unit).unwrap(),
            Ok(OnDisk::Ours(ours.clone()))
        );
        let installed = install_drop_in(&dir.0, unit, None).unwrap();
        assert_eq!(drop_in_on_disk(&dir.0, unit).unwrap(), Ok(OnDisk::Absent));
        installed.rollback().unwrap();
        assert_eq!(
            drop_in_on_disk(&dir.0, unit).unwrap(),
            Ok(OnDisk::Ours(ours.clone()))
        );
        drop(install_drop_in(&dir.0, unit, None).unwrap());
        remove_empty_drop_in_dir(&dir.0, unit).unwrap();
        assert_eq!(
            listing_names(&dir.0.join("app.service.d")),
            ["10-other.conf"]
        );
        // A new directory is made for a unit without one, mode 0755.
        let intent = begin_drop_in_change(&dir.0, "new.service").unwrap();
        let mode = std::fs::metadata(dir.0.join("new.service.d"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        intent.finish().unwrap();
        remove_empty_drop_in_dir(&dir.0, "new.service").unwrap();
        assert!(!dir.0.join("new.service.d").exists());
        // A symlinked directory or a foreign file: nothing is written.
        let elsewhere = temp_unit_dir();
        std::os::unix::fs::symlink(&elsewhere.0, dir.0.join("evil.service.d")).unwrap();
        assert!(drop_in_on_disk(&dir.0, "evil.service").unwrap().is_err());
        assert!(begin_drop_in_change(&dir.0, "evil.service").is_err());
        assert!(install_drop_in(&dir.0, "evil.service", Some(&ours)).is_err());
        assert!(listing_names(&elsewhere.0).is_empty());
        std::fs::write(
            dir.0.join("app.service.d").join(DROP_IN_NAME),
            "[Service]\n",
        )
        .unwrap();
        assert_eq!(drop_in_on_disk(&dir.0, unit).unwrap(), Ok(OnDisk::Foreign));
    }

    #[tokio::test]
    async fn preflight_names_missing_things() {
        let spec: UnitSpec = serde_json::from_value(serde_json::json!({
            "name": "x", "kind": "service", "exec_start": ["/nonexistent/prog"],
            "working_directory": "/nonexistent-dir", "user": "no-such-user-ud",
            "group": "0"
        }))
        .unwrap();
        let fields: Vec<String> = preflight(&spec)
            .await
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert!(fields.starts_with(&["exec_start".to_string(), "working_directory".to_string()]));
        let ok: UnitSpec = serde_json::from_value(serde_json::json!({
            "name": "x", "kind": "service", "exec_start": ["/bin/sh"],
            "working_directory": "/", "user": "root"
        }))
        .unwrap();
        assert_eq!(preflight(&ok).await, vec![]);
    }
}
