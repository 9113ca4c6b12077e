//! Validation of a [`UnitSpec`]: the gate in front of [`super::render::render`].
//!
//! [`validate`] returns one [`FieldError`] per bad field (the first problem found in that
//! field), with `field` set to the JSON name: `name`, `exec_start`, `environment`,
//! `health.http`, ... Messages name the offending index or variable, and never echo
//! control characters (values are shown escaped and shortened).
//!
//! The rules are strict on purpose: together with the quoting in `render`, they make it
//! impossible for any field to add a line or a directive to a unit file:
//! - no value may contain a control character (C0 including tab, DEL, C1): that excludes
//!   the three bytes systemd ends a line at (LF, CR, NUL);
//! - a value that is written unquoted (`Description=`, `WorkingDirectory=`, `OnCalendar=`)
//!   may not end in a backslash (systemd would join the next line to it) and may not start
//!   or end with whitespace (systemd strips it, so it could not be read back);
//! - names (unit, users, groups, variables, dependencies) are restricted to small
//!   character sets in which nothing is special to systemd.
//!
//! `systemd-analyze calendar` (run by the caller) decides whether a schedule is a valid
//! calendar expression; here a schedule is only checked for length and characters.

use super::spec::{HealthSpec, LoopbackUrl, RestartPolicy, UnitKind, UnitSpec};
use crate::error::FieldError;
use crate::systemd::names::{is_valid_unit_name, takes_the_system_down};

/// Longest base name.
pub const MAX_NAME_LEN: usize = 200;
/// Most `exec_start` arguments, argv\[0\] included.
pub const MAX_ARGS: usize = 64;
/// Longest single argument, environment value or path, in bytes.
pub const MAX_ARG_BYTES: usize = 4096;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 256;
/// Most environment variables.
pub const MAX_ENV_VARS: usize = 100;
/// Longest environment variable name, in bytes.
pub const MAX_ENV_NAME_BYTES: usize = 256;
/// Most entries in each of `after`, `requires`, `wants`.
pub const MAX_DEPENDENCIES: usize = 50;
/// Longest schedule, in characters.
pub const MAX_SCHEDULE_CHARS: usize = 200;
/// Longest user or group name.
pub const MAX_USER_NAME_LEN: usize = 32;
/// Longest health-check URL, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// Unit type suffixes a base name may not end in ("no suffix games": `x.service` would
/// become `x.service.service`, and `x.target` reads like a different unit type).
pub const UNIT_SUFFIXES: &[&str] = &[
    ".service",
    ".timer",
    ".socket",
    ".target",
    ".mount",
    ".path",
    ".slice",
    ".scope",
    ".device",
    ".swap",
    ".automount",
];

/// Base names unitdeck refuses to create, whatever is installed: the panel itself and
/// the bus. (Shadowing any existing unit is refused separately by the caller, with 409.)
pub const RESERVED_NAMES: &[&str] = &["unitdeck", "dbus", "dbus-broker", "init"];
/// Prefixes reserved for systemd's own units.
pub const RESERVED_PREFIXES: &[&str] = &["systemd-"];

/// Check every rule; `Err` holds one error per bad field, in field order.
pub fn validate(spec: &UnitSpec) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut check = |field: &str, result: Result<(), String>| {
        if let Err(message) = result {
            errors.push(FieldError::new(field, message));
        }
    };

    check("name", check_name(&spec.name));
    check("description", check_description(&spec.description));
    check("exec_start", check_exec_start(&spec.exec_start));
    if let Some(dir) = &spec.working_directory {
        check("working_directory", check_working_directory(dir));
    }
    if let Some(user) = &spec.user {
        check("user", check_user_or_group(user));
    }
    if let Some(group) = &spec.group {
        check("group", check_user_or_group(group));
    }
    check("environment", check_environment(spec));
    check("after", check_dependencies(&spec.after));
    check("requires", check_pulled_in(&spec.requires));
    check("wants", check_pulled_in(&spec.wants));
    if spec.kind == UnitKind::Job && spec.restart == Some(RestartPolicy::Always) {
        check(
            "restart",
            Err("a job (Type=oneshot) may only use \"no\" or \"on-failure\"".into()),
        );
    }
    if let Some(secs) = spec.restart_sec {
        check("restart_sec", in_range(secs, 0, 3600, "seconds"));
    }
    if let Some(limit) = &spec.memory_max {
        check("memory_max", check_memory_max(limit));
    }
    if let Some(quota) = &spec.cpu_quota {
        check("cpu_quota", check_cpu_quota(quota));
    }
    if let Some(port) = spec.port {
        let result = match spec.kind {
            UnitKind::Job => Err("a job does not listen on a port; leave it null".to_string()),
            UnitKind::Service => in_range(port, 1, 65535, "a TCP port"),
        };
        check("port", result);
    }
    if let Some(health) = &spec.health {
        if spec.kind == UnitKind::Job {
            check(
                "health",
                Err("a job has no health check; leave it null".into()),
            );
        } else {
            check_health(health, &mut check);
        }
    }
    check("schedule", check_schedule(spec));

    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn check_name(name: &str) -> Result<(), String> {
    check_name_form(name)?;
    let lower = name.to_ascii_lowercase();
    if RESERVED_NAMES.contains(&lower.as_str())
        || RESERVED_PREFIXES.iter().any(|p| lower.starts_with(p))
    {
        return Err(format!("{name:?} is reserved"));
    }
    Ok(())
}

/// A name that makes a valid unit name (reserved or not): safe to look up on disk.
pub fn is_well_formed_name(name: &str) -> bool {
    check_name_form(name).is_ok()
}

fn check_name_form(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("must be at most {MAX_NAME_LEN} characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '.' | '-')))
    {
        return Err(format!(
            "may only contain letters, digits and \":_.-\" (found {}){}",
            show_char(c),
            if c == '@' {
                "; template units are not supported"
            } else {
                ""
            }
        ));
    }
    if name.starts_with('-') || name.starts_with('.') {
        return Err("must not start with \"-\" or \".\"".into());
    }
    let lower = name.to_ascii_lowercase();
    if let Some(suffix) = UNIT_SUFFIXES.iter().find(|s| lower.ends_with(*s)) {
        return Err(format!(
            "is the base name without a unit suffix: leave out {suffix:?}"
        ));
    }
    if !is_valid_unit_name(&format!("{name}.service")) {
        return Err(format!("{name:?} does not make a valid unit name"));
    }
    Ok(())
}

fn check_description(text: &str) -> Result<(), String> {
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(format!(
            "must be at most {MAX_DESCRIPTION_CHARS} characters"
        ));
    }
    check_unquoted_text(text)
}

/// Rules for a value written unquoted after `Key=`.
fn check_unquoted_text(text: &str) -> Result<(), String> {
    no_control(text)?;
    if text.starts_with(char::is_whitespace) || text.ends_with(char::is_whitespace) {
        return Err("must not start or end with whitespace".into());
    }
    if text.ends_with('\\') {
        return Err("must not end with a backslash".into());
    }
    Ok(())
}

/// An argv for `ExecStart=`: an absolute, normalised program without quotes, then
/// arguments without control characters (they are quoted on output).
pub fn check_exec_start(argv: &[String]) -> Result<(), String> {
    let Some(program) = argv.first() else {
        return Err("must hold at least the program to run".into());
    };
    if argv.len() > MAX_ARGS {
        return Err(format!(
            "must have at most {MAX_ARGS} items (program and arguments)"
        ));
    }
    for (i, arg) in argv.iter().enumerate() {
        if arg.len() > MAX_ARG_BYTES {
            return Err(format!("item {i} is longer than {MAX_ARG_BYTES} bytes"));
        }
        if let Err(e) = no_control(arg) {
            return Err(format!("item {i} {e}"));
        }
    }
    if !program.starts_with('/') {
        return Err(format!(
            "item 0 (the program) must be an absolute path, not {}",
            show(program)
        ));
    }
    if program.contains(['"', '\'', '\\']) {
        return Err("item 0 (the program) must not contain quotes or backslashes".into());
    }
    if program.ends_with('/') {
        return Err("item 0 (the program) must be a file, not a directory".into());
    }
    if let Err(e) = check_normalised(program) {
        return Err(format!("item 0 (the program) {e}"));
    }
    Ok(())
}

fn check_working_directory(dir: &str) -> Result<(), String> {
    if dir.is_empty() {
        return Err("must be an absolute path, or null".into());
    }
    if dir.len() > MAX_ARG_BYTES - 1 {
        return Err(format!("must be shorter than {MAX_ARG_BYTES} bytes"));
    }
    check_unquoted_text(dir)?;
    if !dir.starts_with('/') {
        return Err(format!("must be an absolute path, not {}", show(dir)));
    }
    check_normalised(dir)
}

/// An absolute path must be in the form systemd keeps: no empty, `.` or `..` segments and
/// no trailing slash (except for `/` itself); each segment at most 255 bytes.
fn check_normalised(path: &str) -> Result<(), String> {
    if path == "/" {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err("must not end with \"/\"".into());
    }
    for segment in path[1..].split('/') {
        match segment {
            "" => return Err("must not contain \"//\"".into()),
            "." | ".." => {
                return Err(format!("must be normalised (no \"{segment}\" segments)"));
            }
            s if s.len() > 255 => {
                return Err("has a path segment longer than 255 bytes".into());
            }
            _ => {}
        }
    }
    Ok(())
}

/// A user or group: a name as systemd takes it in `User=` (`[A-Za-z_][A-Za-z0-9_.-]*[$]?`,
/// at most 32 characters: `Dev` and `first.last` exist on Debian) or a numeric ID that
/// systemd accepts (0-4294967294, not 65535).
fn check_user_or_group(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty (use null for the default)".into());
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return match name.parse::<u64>() {
            Ok(id)
                if id < 4_294_967_295
                    && id != 65_535
                    && !(name.len() > 1 && name.starts_with('0')) =>
            {
                Ok(())
            }
            _ => Err(format!("{} is not a usable numeric ID", show(name))),
        };
    }
    if name.len() > MAX_USER_NAME_LEN {
        return Err(format!("must be at most {MAX_USER_NAME_LEN} characters"));
    }
    let body = name.strip_suffix('$').unwrap_or(name);
    let mut chars = body.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
        return Err(format!(
            "{} is not a valid name: letters, digits, \"_\", \"-\" and \".\", starting with a letter or \"_\"",
            show(name)
        ));
    }
    Ok(())
}

fn check_environment(spec: &UnitSpec) -> Result<(), String> {
    if spec.environment.len() > MAX_ENV_VARS {
        return Err(format!("must have at most {MAX_ENV_VARS} variables"));
    }
    for (key, value) in &spec.environment {
        check_variable(key, Some(value))?;
    }
    Ok(())
}

/// One environment variable: its name, and its value when it is set (None: unset).
pub fn check_variable(key: &str, value: Option<&str>) -> Result<(), String> {
    if key.is_empty() {
        return Err("variable names must not be empty".into());
    }
    if key.len() > MAX_ENV_NAME_BYTES {
        return Err(format!(
            "variable name {} is longer than {MAX_ENV_NAME_BYTES} bytes",
            show(key)
        ));
    }
    let mut chars = key.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "variable name {} must match [A-Za-z_][A-Za-z0-9_]*",
            show(key)
        ));
    }
    let Some(value) = value else {
        return Ok(());
    };
    if value.len() > MAX_ARG_BYTES {
        return Err(format!(
            "the value of {key} is longer than {MAX_ARG_BYTES} bytes"
        ));
    }
    no_control(value).map_err(|e| format!("the value of {key} {e}"))
}

/// Full unit names for a dependency list (`After=`, ...): systemd's alphabet, no template.
pub fn check_dependencies(names: &[String]) -> Result<(), String> {
    if names.len() > MAX_DEPENDENCIES {
        return Err(format!("must have at most {MAX_DEPENDENCIES} units"));
    }
    for (i, name) in names.iter().enumerate() {
        let template = name
            .rsplit_once('.')
            .is_some_and(|(stem, _)| stem.ends_with('@'));
        if !dependency_chars_ok(name) || !is_valid_unit_name(name) || template {
            return Err(format!(
                "item {i} ({}) is not a full unit name such as \"network.target\"",
                show(name)
            ));
        }
    }
    Ok(())
}

/// Units started along with this one: none that shuts the container down (starting a
/// unit that wants `poweroff.target` powers it off; unitdeck refuses to start those).
pub fn check_pulled_in(names: &[String]) -> Result<(), String> {
    check_dependencies(names)?;
    match names.iter().position(|n| takes_the_system_down(n)) {
        Some(i) => Err(format!(
            "item {i} ({}) would shut the container down or take it out of service",
            show(&names[i])
        )),
        None => Ok(()),
    }
}

/// Characters allowed in a dependency, on top of the crate's unit-name check: systemd's
/// unit-name alphabet, with `\` only as a `\xNN` escape. None of them is special in an
/// `After=` list (no whitespace, quotes or `%`).
fn dependency_chars_ok(name: &str) -> bool {
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b':' | b'_' | b'.' | b'-' | b'@' => i += 1,
            b'\\' => {
                let ok = bytes.get(i + 1) == Some(&b'x')
                    && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
                    && bytes.get(i + 3).is_some_and(u8::is_ascii_hexdigit);
                if !ok {
                    return false;
                }
                i += 4;
            }
            _ => return false,
        }
    }
    !name.is_empty()
}

fn check_health(health: &HealthSpec, check: &mut impl FnMut(&str, Result<(), String>)) {
    match (&health.http, health.tcp) {
        (Some(_), Some(_)) => check(
            "health",
            Err("give exactly one of \"http\" or \"tcp\", not both".into()),
        ),
        (None, None) => check("health", Err("give one of \"http\" or \"tcp\"".into())),
        (Some(url), None) => check("health.http", check_health_url(url)),
        (None, Some(port)) => check("health.tcp", in_range(port, 1, 65535, "a TCP port")),
    }
    check(
        "health.interval_s",
        in_range(health.interval_s, 1, 3600, "seconds"),
    );
    check(
        "health.timeout_s",
        in_range(health.timeout_s, 1, 60, "seconds"),
    );
    check(
        "health.failures",
        in_range(health.failures, 1, 100, "failures"),
    );
}

/// A health URL: what [`LoopbackUrl::parse`] accepts, at most [`MAX_URL_BYTES`].
fn check_health_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_URL_BYTES {
        return Err(format!("must be at most {MAX_URL_BYTES} bytes"));
    }
    no_control(url)?;
    if let Some(c) = url.chars().find(|c| {
        !c.is_ascii_graphic() || matches!(c, '\\' | '"' | '<' | '>' | '`' | '{' | '}' | '|' | '^')
    }) {
        return Err(format!("must not contain {}", show_char(c)));
    }
    LoopbackUrl::parse(url).map(|_| ())
}

fn check_schedule(spec: &UnitSpec) -> Result<(), String> {
    match (spec.kind, spec.schedule_str()) {
        (UnitKind::Service, None) => Ok(()),
        (UnitKind::Service, Some(_)) => {
            Err("only a job has a schedule; leave it null for a service".into())
        }
        (UnitKind::Job, None) => Err("a job needs a schedule, e.g. \"*-*-* 03:00:00\"".into()),
        (UnitKind::Job, Some(s)) => {
            if s.chars().count() > MAX_SCHEDULE_CHARS {
                return Err(format!("must be at most {MAX_SCHEDULE_CHARS} characters"));
            }
            check_unquoted_text(s)?;
            if s.contains('%') {
                return Err("must not contain \"%\"".into());
            }
            Ok(())
        }
    }
}

/// Longest `MemoryMax=` or `CPUQuota=` value.
pub const MAX_LIMIT_CHARS: usize = 32;

/// `MemoryMax=`: `infinity`, a size (`512M`, `1.5G`, `1048576`) or a percentage of the
/// machine's memory (`50%`). systemd reads it without specifiers, so the `%` is literal.
pub fn check_memory_max(value: &str) -> Result<(), String> {
    const HINT: &str = "e.g. 512M, 2G, 50% or infinity";
    if value.len() > MAX_LIMIT_CHARS {
        return Err(format!(
            "must be at most {MAX_LIMIT_CHARS} characters ({HINT})"
        ));
    }
    if value == "infinity" {
        return Ok(());
    }
    let (number, unit) = match value.strip_suffix('%') {
        Some(n) => (n, "%"),
        None => match value.strip_suffix(['K', 'M', 'G', 'T', 'P', 'E']) {
            Some(n) => (n, "suffix"),
            None => (value, ""),
        },
    };
    match decimal(number) {
        Some(n) if n > 0.0 && (unit != "%" || n <= 100.0) => Ok(()),
        Some(_) if unit == "%" => Err(format!(
            "a percentage must be above 0 and at most 100% ({HINT})"
        )),
        Some(_) => Err(format!(
            "must be more than 0: a limit of 0 ends the service at once ({HINT})"
        )),
        None => Err(format!("{} is not a memory size ({HINT})", show(value))),
    }
}

/// `CPUQuota=`: a percentage of one CPU above 0 (`50%`, `200%`). Literal `%`, as above.
pub fn check_cpu_quota(value: &str) -> Result<(), String> {
    const HINT: &str = "e.g. 50% or 200% for two CPUs";
    if value.len() > MAX_LIMIT_CHARS {
        return Err(format!(
            "must be at most {MAX_LIMIT_CHARS} characters ({HINT})"
        ));
    }
    match value.strip_suffix('%').and_then(decimal) {
        Some(n) if n > 0.0 => Ok(()),
        Some(_) => Err(format!("must be above 0% ({HINT})")),
        None => Err(format!("{} is not a percentage ({HINT})", show(value))),
    }
}

/// `123` or `1.5`: up to 12 digits, then up to 3 decimals.
fn decimal(text: &str) -> Option<f64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str, max: usize| s.len() <= max && s.bytes().all(|b| b.is_ascii_digit());
    let ok = !whole.is_empty()
        && digits(whole, 12)
        && digits(fraction, 3)
        // "5." has a point but no decimals.
        && fraction.is_empty() != text.contains('.');
    ok.then(|| text.parse().ok()).flatten()
}

fn in_range(value: i64, min: i64, max: i64, what: &str) -> Result<(), String> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(format!("must be {what} from {min} to {max}"))
    }
}

pub fn no_control(text: &str) -> Result<(), String> {
    match text.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!(
            "must not contain control characters (found {})",
            show_char(c)
        )),
        None => Ok(()),
    }
}

/// A value for a message: quoted, escaped, at most 40 characters.
pub fn show(value: &str) -> String {
    const MAX: usize = 40;
    if value.chars().count() <= MAX {
        format!("{value:?}")
    } else {
        let short: String = value.chars().take(MAX).collect();
        format!("{short:?}…")
    }
}

fn show_char(c: char) -> String {
    if c.is_control() {
        format!("U+{:04X}", c as u32)
    } else {
        format!("{c:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unitfile::spec::examples::{health_http, job, service};
    use std::collections::BTreeMap;

    /// The fields that have errors, in order.
    fn bad_fields(spec: &UnitSpec) -> Vec<String> {
        match validate(spec) {
            Ok(()) => vec![],
            Err(errors) => errors.into_iter().map(|e| e.field).collect(),
        }
    }

    /// Assert that exactly `field` is reported.
    #[track_caller]
    fn assert_only(spec: &UnitSpec, field: &str) {
        assert_eq!(bad_fields(spec), vec![field.to_string()], "spec: {spec:?}");
    }

    fn with(f: impl FnOnce(&mut UnitSpec)) -> UnitSpec {
        let mut spec = service();
        f(&mut spec);
        spec
    }

    fn with_job(f: impl FnOnce(&mut UnitSpec)) -> UnitSpec {
        let mut spec = job();
        f(&mut spec);
        spec
    }

    #[test]
    fn good_specs_pass() {
        assert_eq!(validate(&service()), Ok(()));
        assert_eq!(validate(&job()), Ok(()));
        // Edge values that are fine.
        let spec = with(|s| {
            s.name = "a".into();
            s.description = String::new();
            s.exec_start = vec!["/bin/echo".into(), String::new(), ";".into(), "a b".into()];
            s.working_directory = Some("/".into());
            s.user = Some("0".into());
            s.group = Some("machine$".into());
            s.restart_sec = Some(0);
            s.port = Some(65535);
            s.health = Some(HealthSpec {
                http: None,
                tcp: Some(1),
                interval_s: 3600,
                timeout_s: 60,
                failures: 100,
                restart: false,
            });
            s.after = vec![
                "getty@tty1.service".into(),
                "dev-disk-by\\x2dlabel.device".into(),
            ];
        });
        assert_eq!(validate(&spec), Ok(()));
        let spec = with(|s| {
            s.name = "x".repeat(MAX_NAME_LEN);
            s.description = "é".repeat(MAX_DESCRIPTION_CHARS);
            s.exec_start = vec!["/bin/echo".into(); MAX_ARGS];
            s.exec_start[1] = "y".repeat(MAX_ARG_BYTES);
            s.environment = (0..MAX_ENV_VARS)
                .map(|i| (format!("V{i}"), "$%\\\"'".into()))
                .collect();
            s.after = vec!["a.service".into(); MAX_DEPENDENCIES];
        });
        assert_eq!(validate(&spec), Ok(()));
        // A service may carry an empty schedule (forms send "").
        assert_eq!(
            validate(&with(|s| s.schedule = Some(String::new()))),
            Ok(())
        );
    }

    #[test]
    fn name_rules() {
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "-dash",
            "a/b",
            "../../etc/passwd",
            "a b",
            "a@b",
            "a@",
            "x.service",
            "x.SERVICE",
            "x.timer",
            "x.socket",
            "x.target",
            "x.mount",
            "x.path",
            "x.slice",
            "x.scope",
            "x.device",
            "x.swap",
            "x.automount",
            "a\nb",
            "a%i",
            "a\\x2d",
            "é",
            "unitdeck",
            "dbus",
            "systemd-journald",
        ] {
            assert_only(&with(|s| s.name = bad.into()), "name");
        }
        assert_only(&with(|s| s.name = "x".repeat(MAX_NAME_LEN + 1)), "name");
        for good in ["a", "A:b_c.d-e", "x.service2", "my.app", "9"] {
            assert_eq!(validate(&with(|s| s.name = good.into())), Ok(()), "{good}");
        }
        let err = validate(&with(|s| s.name = "a@b".into())).unwrap_err();
        assert!(err[0].message.contains("template"), "{err:?}");
    }

    #[test]
    fn description_rules() {
        for bad in [
            "a\nb",
            "a\rb",
            "a\0b",
            "tab\there",
            "bell\x07",
            "del\x7f",
            "c1\u{85}",
            " leading",
            "trailing ",
            "continued \\",
        ] {
            assert_only(&with(|s| s.description = bad.into()), "description");
        }
        assert_only(
            &with(|s| s.description = "x".repeat(MAX_DESCRIPTION_CHARS + 1)),
            "description",
        );
        assert_eq!(
            validate(&with(
                |s| s.description = "100% \"ok\" \\n $HOME ; # [x]".into()
            )),
            Ok(())
        );
    }

    #[test]
    fn exec_start_rules() {
        let cases: Vec<Vec<String>> = vec![
            vec![],
            vec!["node".into()],
            vec!["./node".into()],
            vec!["".into()],
            vec!["-/bin/true".into()],
            vec!["@/bin/true".into()],
            vec!["+/bin/true".into()],
            vec![":/bin/true".into()],
            vec!["!/bin/true".into()],
            vec!["/usr/bin/".into()],
            vec!["/usr//bin/node".into()],
            vec!["/usr/./bin/node".into()],
            vec!["/usr/../bin/node".into()],
            vec!["/opt/it's/run".into()],
            vec!["/opt/\"x\"/run".into()],
            vec!["/opt/back\\slash".into()],
            vec!["/bin/echo".into(), "a\nExecStartPre=/bin/sh".into()],
            vec!["/bin/echo".into(), "a\rb".into()],
            vec!["/bin/echo".into(), "a\0b".into()],
            vec!["/bin/echo".into(), "a\tb".into()],
            vec!["/bin/ec\nho".into()],
            vec!["/bin/echo".into(), "x".repeat(MAX_ARG_BYTES + 1)],
            vec!["/bin/echo".into(); MAX_ARGS + 1],
        ];
        for argv in cases {
            assert_only(&with(|s| s.exec_start = argv.clone()), "exec_start");
        }
        let err = validate(&with(|s| {
            s.exec_start = vec!["/bin/echo".into(), "ok".into(), "bad\n".into()]
        }))
        .unwrap_err();
        assert!(err[0].message.contains("item 2"), "{err:?}");
        // Quoted on output, so these are fine in arguments.
        assert_eq!(
            validate(&with(|s| s.exec_start = vec![
                "/opt/my app/%i/$x;/run".into(),
                "trailing\\".into(),
                "$HOME".into(),
                "100%".into(),
                "\"'".into(),
                ";".into(),
                "\\;".into(),
            ])),
            Ok(())
        );
    }

    #[test]
    fn working_directory_rules() {
        for bad in [
            "",
            "relative",
            "~",
            "-/srv",
            "/srv/",
            "/srv//app",
            "/srv/./app",
            "/srv/../etc",
            "/srv/app\n",
            "/srv/a\rb",
            "/srv/a\0b",
            "/srv/a\tb",
            "/srv/app ",
            "/srv/app\\",
        ] {
            assert_only(
                &with(|s| s.working_directory = Some(bad.into())),
                "working_directory",
            );
        }
        assert_only(
            &with(|s| s.working_directory = Some(format!("/{}", "x".repeat(256)))),
            "working_directory",
        );
        assert_only(
            &with(|s| s.working_directory = Some("/x".repeat(2048))),
            "working_directory",
        );
        assert_eq!(
            validate(&with(
                |s| s.working_directory = Some("/srv/my app/100%/$x/\"q\"".into())
            )),
            Ok(())
        );
    }

    #[test]
    fn user_and_group_rules() {
        for bad in [
            "",
            ".dev",
            "1dev",
            "-dev",
            "de v",
            "dev\n",
            "dev%i",
            "dev$x",
            "$",
            "x".repeat(MAX_USER_NAME_LEN + 1).as_str(),
            "65535",
            "4294967295",
            "99999999999999999999",
            "007",
        ] {
            assert_only(&with(|s| s.user = Some(bad.into())), "user");
            assert_only(&with(|s| s.group = Some(bad.into())), "group");
        }
        for good in [
            "root",
            "Dev",
            "first.last",
            "_apt",
            "dev-user",
            "machine$",
            "0",
            "1000",
            "4294967294",
        ] {
            assert_eq!(
                validate(&with(|s| s.user = Some(good.into()))),
                Ok(()),
                "{good}"
            );
        }
    }

    #[test]
    fn environment_rules() {
        let env_with =
            |k: &str, v: &str| with(|s| s.environment = BTreeMap::from([(k.into(), v.into())]));
        for (k, v) in [
            ("", "x"),
            ("1ABC", "x"),
            ("A-B", "x"),
            ("A B", "x"),
            ("A=B", "x"),
            ("A\nB", "x"),
            ("A\"", "x"),
            ("Ä", "x"),
            ("OK", "a\nb"),
            ("OK", "a\rb"),
            ("OK", "a\0b"),
            ("OK", "a\tb"),
        ] {
            assert_only(&env_with(k, v), "environment");
        }
        assert_only(
            &env_with(&"K".repeat(MAX_ENV_NAME_BYTES + 1), "x"),
            "environment",
        );
        assert_only(
            &env_with("OK", &"v".repeat(MAX_ARG_BYTES + 1)),
            "environment",
        );
        assert_only(
            &with(|s| {
                s.environment = (0..=MAX_ENV_VARS)
                    .map(|i| (format!("V{i}"), String::new()))
                    .collect()
            }),
            "environment",
        );
        let err = validate(&env_with("GOOD", "bad\n")).unwrap_err();
        assert!(err[0].message.contains("GOOD"), "{err:?}");
        assert_eq!(validate(&env_with("_x1", "")), Ok(()));
        assert_eq!(validate(&env_with("A", "=\"' $X ${Y} 100% \\")), Ok(()));
    }

    #[test]
    fn dependency_rules() {
        for bad in [
            "network",
            "",
            "a.service b.service",
            "a.service\nExecStartPre=/bin/sh",
            "a.service\r",
            "%i.service",
            "\"a\".service",
            "a\\.service",
            "a\\x2.service",
            "../x.service",
            "x.unknown",
            "getty@.service",
        ] {
            assert_only(&with(|s| s.after = vec![bad.into()]), "after");
            assert_only(&with(|s| s.requires = vec![bad.into()]), "requires");
            assert_only(&with(|s| s.wants = vec![bad.into()]), "wants");
        }
        assert_only(
            &with(|s| s.wants = vec!["a.service".into(); MAX_DEPENDENCIES + 1]),
            "wants",
        );
        // Pulled in, these power the container off; ordered after, they do nothing.
        for down in [
            "poweroff.target",
            "reboot.target",
            "rescue.target",
            "systemd-halt.service",
        ] {
            assert_only(&with(|s| s.requires = vec![down.into()]), "requires");
            assert_only(&with(|s| s.wants = vec![down.into()]), "wants");
            assert_eq!(validate(&with(|s| s.after = vec![down.into()])), Ok(()));
        }
    }

    #[test]
    fn restart_rules() {
        assert_only(&with(|s| s.restart_sec = Some(-1)), "restart_sec");
        assert_only(&with(|s| s.restart_sec = Some(3601)), "restart_sec");
        assert_only(
            &with_job(|s| s.restart = Some(RestartPolicy::Always)),
            "restart",
        );
        assert_eq!(
            validate(&with_job(|s| s.restart = Some(RestartPolicy::OnFailure))),
            Ok(())
        );
        assert_eq!(
            validate(&with(|s| s.restart = Some(RestartPolicy::Always))),
            Ok(())
        );
    }

    #[test]
    fn resource_limit_rules() {
        for bad in [
            "",
            "0",
            "0K",
            "-1M",
            "512Q",
            "512m",
            "1.5.G",
            ".5G",
            "5.G",
            "1.2345G",
            "101%",
            "0%",
            "50%%",
            "%",
            "M",
            "512 M",
            " 512M",
            "infinity ",
            "Infinity",
            "1e9",
            "9999999999999",
            "512M\nCPUQuota=1%",
            "%n",
        ] {
            assert_only(&with(|s| s.memory_max = Some(bad.into())), "memory_max");
        }
        for good in [
            "512M", "1.5G", "1048576", "50%", "0.5%", "infinity", "2T", "100%",
        ] {
            assert_eq!(
                validate(&with(|s| s.memory_max = Some(good.into()))),
                Ok(()),
                "{good}"
            );
        }
        for bad in [
            "", "50", "0%", "-5%", "50%%", "%", "5 %", "x%", "1e2%", "%n", "50%\n",
        ] {
            assert_only(&with(|s| s.cpu_quota = Some(bad.into())), "cpu_quota");
        }
        for good in ["50%", "200%", "0.5%", "1000%"] {
            assert_eq!(
                validate(&with(|s| s.cpu_quota = Some(good.into()))),
                Ok(()),
                "{good}"
            );
        }
    }

    #[test]
    fn port_rules() {
        for bad in [0, -1, 65536, 70000, i64::MAX, i64::MIN] {
            let err = validate(&with(|s| s.port = Some(bad))).unwrap_err();
            assert_eq!(err.len(), 1);
            assert_eq!(err[0].field, "port");
            assert!(err[0].message.contains("1 to 65535"), "{err:?}");
        }
        assert_only(&with_job(|s| s.port = Some(8036)), "port");
    }

    #[test]
    fn health_rules() {
        let h = |f: &dyn Fn(&mut HealthSpec)| {
            with(|s| {
                let mut health = health_http("http://127.0.0.1:8036/health");
                f(&mut health);
                s.health = Some(health);
            })
        };
        assert_only(&h(&|x| x.tcp = Some(8036)), "health");
        assert_only(&h(&|x| x.http = None), "health");
        assert_only(
            &h(&|x| {
                x.http = None;
                x.tcp = Some(0)
            }),
            "health.tcp",
        );
        assert_only(
            &h(&|x| {
                x.http = None;
                x.tcp = Some(65536)
            }),
            "health.tcp",
        );
        assert_only(&h(&|x| x.interval_s = 0), "health.interval_s");
        assert_only(&h(&|x| x.interval_s = 3601), "health.interval_s");
        assert_only(&h(&|x| x.timeout_s = 0), "health.timeout_s");
        assert_only(&h(&|x| x.timeout_s = 61), "health.timeout_s");
        assert_only(&h(&|x| x.failures = 0), "health.failures");
        assert_only(&h(&|x| x.failures = 101), "health.failures");
        for bad in [
            "",
            "https://127.0.0.1/",
            "HTTP://127.0.0.1/",
            "ftp://127.0.0.1/",
            "http://example.com/",
            "http://10.0.0.1/",
            "http://192.168.1.1:8080/",
            "http://127.0.0.1.example.com/",
            "http://localhost.evil/",
            "http://127.0.0.1@evil.com/",
            "http://user:pw@127.0.0.1/",
            "http://[::2]/",
            "http://[::1]x/",
            "http://127.0.0.256/",
            "http://127.1/",
            "http://127.0.0.01/",
            "http://127.0.0.1:0/",
            "http://127.0.0.1:65536/",
            "http://127.0.0.1:/",
            "http://127.0.0.1:80a/",
            "http://127.0.0.1/a b",
            "http://127.0.0.1/a\nX-Unitdeck-Port=1",
            "http://127.0.0.1/\r",
            "http://127.0.0.1/\0",
            "http://127.0.0.1/\\",
            "http://127.0.0.1/\"",
            "http://127.0.0.1/é",
        ] {
            assert_only(&h(&|x| x.http = Some(bad.into())), "health.http");
        }
        assert_only(
            &h(&|x| x.http = Some(format!("http://localhost/{}", "a".repeat(MAX_URL_BYTES)))),
            "health.http",
        );
        for good in [
            "http://127.0.0.1:8036/health",
            "http://localhost",
            "http://LOCALHOST:1/",
            "http://[::1]:8080/x?y=1#z",
            "http://127.255.0.1/%20a",
            "http://localhost?x",
        ] {
            assert_eq!(
                validate(&h(&|x| x.http = Some(good.into()))),
                Ok(()),
                "{good}"
            );
        }
        // Several bad health fields: one error each.
        assert_eq!(
            bad_fields(&h(&|x| {
                x.http = Some("ftp://x".into());
                x.interval_s = 0;
                x.failures = 0;
            })),
            vec!["health.http", "health.interval_s", "health.failures"]
        );
        assert_only(
            &with_job(|s| s.health = Some(health_http("http://127.0.0.1/"))),
            "health",
        );
    }

    #[test]
    fn schedule_rules() {
        assert_only(&with(|s| s.schedule = Some("daily".into())), "schedule");
        assert_only(&with_job(|s| s.schedule = None), "schedule");
        assert_only(&with_job(|s| s.schedule = Some(String::new())), "schedule");
        for bad in [
            "daily\nExecStartPre=/bin/sh",
            "daily\r",
            "daily\0",
            "daily\t",
            " daily",
            "daily ",
            "daily \\",
            "*-*-* %H:00",
            "100%%",
        ] {
            assert_only(&with_job(|s| s.schedule = Some(bad.into())), "schedule");
        }
        assert_only(
            &with_job(|s| s.schedule = Some("*".repeat(MAX_SCHEDULE_CHARS + 1))),
            "schedule",
        );
    }

    #[test]
    fn one_error_per_bad_field_in_field_order() {
        let spec = with(|s| {
            s.name = "x.service".into();
            s.description = "a\nb".into();
            s.exec_start = vec!["rel".into(), "a\nb".into()];
            s.working_directory = Some("rel".into());
            s.user = Some("1bad".into());
            s.group = Some("1bad".into());
            s.environment = BTreeMap::from([("1".into(), "\n".into()), ("2".into(), "".into())]);
            s.after = vec!["x".into(), "y".into()];
            s.requires = vec!["x".into()];
            s.wants = vec!["x".into()];
            s.restart_sec = Some(-1);
            s.memory_max = Some("lots".into());
            s.cpu_quota = Some("50".into());
            s.port = Some(0);
            s.health = Some(HealthSpec {
                http: Some("x".into()),
                tcp: None,
                interval_s: 0,
                timeout_s: 0,
                failures: 0,
                restart: true,
            });
            s.schedule = Some("daily".into());
        });
        assert_eq!(
            bad_fields(&spec),
            vec![
                "name",
                "description",
                "exec_start",
                "working_directory",
                "user",
                "group",
                "environment",
                "after",
                "requires",
                "wants",
                "restart_sec",
                "memory_max",
                "cpu_quota",
                "port",
                "health.http",
                "health.interval_s",
                "health.timeout_s",
                "health.failures",
                "schedule",
            ]
        );
    }

    #[test]
    fn messages_never_echo_control_characters() {
        let spec = with(|s| {
            s.name = "a\nb".into();
            s.exec_start = vec!["rel\n\r\0".into()];
            s.user = Some("x\ny".into());
            s.environment = BTreeMap::from([("A\nB".into(), "".into())]);
            s.after = vec!["a\n.service".into()];
            s.working_directory = Some("r\n".into());
        });
        for e in validate(&spec).unwrap_err() {
            assert!(!e.message.chars().any(char::is_control), "{e:?}");
        }
    }
}
