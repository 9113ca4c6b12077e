//! An override of a unit unitdeck did not create: the settings a person asks for
//! ([`OverrideSpec`]), their rules ([`check`]: one error per bad field, like a unit spec),
//! and the one drop-in unitdeck owns for them, `NAME.d/50-unitdeck.conf` ([`render`]).
//!
//! The structured fields are written the way unit files unitdeck creates are (the same
//! quoting, `%` escaping and injection rules). `raw` takes any other `[Unit]` or
//! `[Service]` setting, checked line by line: a directive systemd knows in that section
//! (asked from systemd itself, `directives`), no other section, no control character or
//! line continuation, no `%` but after a number (`50%`: systemd would read `%n` and the
//! like as specifiers), no setting that has a field of its own, and none that would take
//! the container down by itself (an emergency action, isolating on failure). The units a
//! raw dependency names are judged against systemd by the caller ([`DropIn::pulled_in`],
//! [`DropIn::stops`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::directives::{DEPENDENCY_KEYS, Directives};
use super::render::{EXEC_COMMENT, MANAGED_HEADER, REDACTED, environment_value, exec_start_value};
use super::syntax::redact_secrets;
use super::validate::{
    MAX_ENV_VARS, check_cpu_quota, check_dependencies, check_exec_start, check_memory_max,
    check_pulled_in, check_variable, no_control, show,
};
use crate::error::FieldError;
use crate::systemd::names::{is_valid_unit_name, unit_type};

/// The drop-in's file name. systemd applies drop-ins in file-name order, whatever their
/// directory: after `10-*.conf`, before `60-*.conf` and `override.conf` (`systemctl edit`).
pub const DROP_IN_NAME: &str = "50-unitdeck.conf";
/// Second line of the drop-in (the first is [`MANAGED_HEADER`]).
pub const OVERRIDE_VERSION_LINE: &str = "# X-Unitdeck-Override-Version: 1";
/// Largest `raw` text, in bytes, and most lines.
pub const MAX_RAW_BYTES: usize = 16 * 1024;
pub const MAX_RAW_LINES: usize = 200;
/// Longest raw value and time span.
const MAX_RAW_VALUE: usize = 4096;
const MAX_TIME_SPAN: usize = 64;

/// `Restart=`: when systemd starts the service again after it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    No,
    OnSuccess,
    OnFailure,
    OnAbnormal,
    OnWatchdog,
    OnAbort,
    Always,
}

impl Restart {
    /// The value written after `Restart=` (the JSON spelling).
    pub fn as_systemd(self) -> &'static str {
        match self {
            Self::No => "no",
            Self::OnSuccess => "on-success",
            Self::OnFailure => "on-failure",
            Self::OnAbnormal => "on-abnormal",
            Self::OnWatchdog => "on-watchdog",
            Self::OnAbort => "on-abort",
            Self::Always => "always",
        }
    }

    pub const ALL: [Restart; 7] = [
        Self::No,
        Self::OnSuccess,
        Self::OnFailure,
        Self::OnAbnormal,
        Self::OnWatchdog,
        Self::OnAbort,
        Self::Always,
    ];
}

/// What an override changes (request body of `PUT /api/v1/units/{name}/override` and its
/// preview). Every field is optional; what is left out keeps the unit's own setting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "environment": {"NODE_ENV": "development", "DEBUG": null},
    "restart": "always", "restart_sec": "5s", "memory_max": "1G", "cpu_quota": "150%",
    "nice": 5, "after": ["postgresql.service"], "wants": ["postgresql.service"],
    "exec_start": ["/usr/bin/code-server", "--bind-addr", "0.0.0.0:4035"],
    "raw": "[Service]\nLimitNOFILE=65536\n"}))]
pub struct OverrideSpec {
    /// `NAME` → value to set or change (`Environment=`, passed exactly); `NAME` → null to
    /// remove it, whoever set it (`UnsetEnvironment=`).
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, Option<String>>)]
    pub environment: BTreeMap<String, Option<String>>,
    /// `Restart=`.
    #[serde(default)]
    pub restart: Option<Restart>,
    /// `RestartSec=`: a systemd time span (`5`, `5s`, `500ms`, `1min 30s`).
    #[serde(default)]
    #[schema(example = "5s", max_length = 64)]
    pub restart_sec: Option<String>,
    /// `TimeoutStopSec=`: a time span, or `infinity`.
    #[serde(default)]
    #[schema(example = "30s", max_length = 64)]
    pub timeout_stop_sec: Option<String>,
    /// `MemoryMax=`: `512M`, `2G`, `50%` of the machine, or `infinity`.
    #[serde(default)]
    #[schema(max_length = 32)]
    pub memory_max: Option<String>,
    /// `CPUQuota=`: percent of one CPU (`50%`, `200%`).
    #[serde(default)]
    #[schema(max_length = 32)]
    pub cpu_quota: Option<String>,
    /// `Nice=`: -20 (first) to 19 (last).
    #[serde(default)]
    #[schema(minimum = -20, maximum = 19)]
    pub nice: Option<i64>,
    /// Units to order after, added to the unit's own (`After=`; dependencies can only be
    /// added by a drop-in).
    #[serde(default)]
    pub after: Vec<String>,
    /// Units to start along, added to the unit's own (`Wants=`).
    #[serde(default)]
    pub wants: Vec<String>,
    /// A new command as an argv (`[0]` absolute), replacing the unit's: written as the
    /// resetting `ExecStart=` and the command, quoted like the unit files unitdeck creates.
    #[serde(default)]
    pub exec_start: Option<Vec<String>>,
    /// Other `[Unit]` and `[Service]` settings, one `Key=value` a line under their section
    /// header (`[Service]\nLimitNOFILE=65536`); `#` comments are kept, blank lines
    /// dropped. At most 16 KiB (longer is a 422).
    // No maxLength in the schema: a fuzzer's longer text meets the 64 KiB body limit,
    // whose 413 it does not count as a refusal.
    #[serde(default)]
    pub raw: String,
}

impl OverrideSpec {
    /// The spec with every secret value replaced by `***` (for callers below admin): the
    /// environment's, and those of raw lines (`SetCredential=` data).
    pub fn redacted(mut self) -> Self {
        for value in self.environment.values_mut().flatten() {
            *value = REDACTED.to_string();
        }
        self.raw = redact_secrets(&self.raw);
        self
    }

    /// What it sets, by systemd name, without a value: for the audit log, which every
    /// reader sees (`Environment (A, B), UnsetEnvironment (C), Restart, LimitNOFILE`).
    pub fn describe(&self) -> String {
        let names = |unset: bool| {
            self.environment
                .iter()
                .filter(|(_, v)| v.is_none() == unset)
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut parts: Vec<String> = Vec::new();
        for (key, unset) in [("Environment", false), ("UnsetEnvironment", true)] {
            let list = names(unset);
            if !list.is_empty() {
                parts.push(format!("{key} ({list})"));
            }
        }
        let set = [
            ("Restart", self.restart.is_some()),
            ("RestartSec", self.restart_sec.is_some()),
            ("TimeoutStopSec", self.timeout_stop_sec.is_some()),
            ("MemoryMax", self.memory_max.is_some()),
            ("CPUQuota", self.cpu_quota.is_some()),
            ("Nice", self.nice.is_some()),
            ("After", !self.after.is_empty()),
            ("Wants", !self.wants.is_empty()),
            ("ExecStart", self.exec_start.is_some()),
        ];
        parts.extend(set.iter().filter(|(_, on)| *on).map(|(k, _)| k.to_string()));
        for line in self.raw.lines() {
            if let Some((key, _)) = line.split_once('=')
                && !key.trim_start().starts_with(['#', ';'])
            {
                let key: String = key.trim().chars().take(64).collect();
                if !parts.contains(&key) {
                    parts.push(key);
                }
            }
        }
        if parts.is_empty() {
            "nothing".into()
        } else {
            parts.join(", ")
        }
    }
}

/// The settings that have a field of their own (so that one setting has one place), and
/// the field.
const FIELD_KEYS: &[(&str, &str)] = &[
    ("Environment", "environment"),
    ("UnsetEnvironment", "environment"),
    ("Restart", "restart"),
    ("RestartSec", "restart_sec"),
    ("TimeoutStopSec", "timeout_stop_sec"),
    ("MemoryMax", "memory_max"),
    ("CPUQuota", "cpu_quota"),
    ("Nice", "nice"),
    ("After", "after"),
    ("Wants", "wants"),
    ("ExecStart", "exec_start"),
];

/// The spec field a line of the drop-in with `key` comes from (`raw` for the others).
pub fn field_of_key(key: &str) -> &'static str {
    FIELD_KEYS
        .iter()
        .find(|(k, _)| *k == key)
        .map_or("raw", |(_, field)| field)
}

/// Dependencies whose units start with this one (judged like a start).
const PULLING: &[&str] = &[
    "Requires",
    "Requisite",
    "BindsTo",
    "BindTo",
    "Upholds",
    "OnFailure",
    "OnSuccess",
];
/// Dependencies whose units stop (or are stopped) by this one: never a protected one.
const STOPPING: &[&str] = &["Conflicts", "PropagatesStopTo"];
/// Emergency actions: systemd itself powers off or reboots on them.
const ACTIONS: &[&str] = &[
    "SuccessAction",
    "FailureAction",
    "JobTimeoutAction",
    "StartLimitAction",
];

/// Settings that take effect on the daemon-reload that follows a write, also for a
/// running unit (systemd's own state or the unit's cgroup): the rest waits for a restart.
const APPLIED_ON_RELOAD: &[&str] = &[
    "Restart",
    "RestartSec",
    "RestartPreventExitStatus",
    "RestartForceExitStatus",
    "SuccessExitStatus",
    "TimeoutSec",
    "TimeoutStartSec",
    "TimeoutStopSec",
    "TimeoutAbortSec",
    "MemoryMax",
    "MemoryHigh",
    "MemoryLow",
    "MemoryMin",
    "MemorySwapMax",
    "CPUQuota",
    "CPUWeight",
    "TasksMax",
    "IOWeight",
];

/// Whether changing these `(section, key)`s takes a restart of a running unit to apply.
pub fn needs_restart(changed: &[(String, String)]) -> bool {
    changed
        .iter()
        .any(|(section, key)| section != "Unit" && !APPLIED_ON_RELOAD.contains(&key.as_str()))
}

/// A checked raw line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RawLine {
    /// Kept in the section it is written in (`[Unit]` before any header).
    Comment { section: Section, text: String },
    Setting {
        section: Section,
        key: String,
        value: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Unit,
    Service,
}

/// The drop-in for a checked spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropIn {
    /// The file's text, exactly as written.
    pub text: String,
    raw: Vec<RawLine>,
    wants: Vec<String>,
}

impl DropIn {
    /// Units whose start the override adds to the unit's start: `wants` and the raw
    /// `Requires=`, `BindsTo=`, `OnFailure=`, ... (field, unit).
    pub fn pulled_in(&self) -> Vec<(&'static str, String)> {
        let mut units: Vec<(&'static str, String)> =
            self.wants.iter().map(|u| ("wants", u.clone())).collect();
        units.extend(self.raw_units(PULLING).map(|u| ("raw", u)));
        units
    }

    /// Units the override makes this one stop (`Conflicts=`, `PropagatesStopTo=`).
    pub fn stops(&self) -> Vec<String> {
        self.raw_units(STOPPING).collect()
    }

    fn raw_units<'a>(&'a self, keys: &'a [&str]) -> impl Iterator<Item = String> + 'a {
        self.raw.iter().flat_map(move |line| match line {
            RawLine::Setting { key, value, .. } if keys.contains(&key.as_str()) => {
                value.split_whitespace().map(String::from).collect()
            }
            _ => Vec::new(),
        })
    }
}

/// Checks `spec` for an override of `unit` (its full name) and renders the drop-in; `Err`
/// holds one error per bad field. `directives` is systemd's list, needed only for `raw`.
pub fn check(
    spec: &OverrideSpec,
    unit: &str,
    directives: Result<&Directives, &str>,
) -> Result<DropIn, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut check = |field: &str, result: Result<(), String>| {
        if let Err(message) = result {
            errors.push(FieldError::new(field, message));
        }
    };
    let service = unit_type(unit) == "service";
    let service_only = |set: bool| {
        if set && !service {
            Err(format!(
                "only a service has this setting; {unit} is not one"
            ))
        } else {
            Ok(())
        }
    };
    check(
        "environment",
        service_only(!spec.environment.is_empty()).and_then(|()| check_environment(spec)),
    );
    check("restart", service_only(spec.restart.is_some()));
    if let Some(span) = &spec.restart_sec {
        check(
            "restart_sec",
            service_only(true).and_then(|()| check_time_span(span, false)),
        );
    }
    if let Some(span) = &spec.timeout_stop_sec {
        check(
            "timeout_stop_sec",
            service_only(true).and_then(|()| check_time_span(span, true)),
        );
    }
    if let Some(limit) = &spec.memory_max {
        check(
            "memory_max",
            service_only(true).and_then(|()| check_memory_max(limit)),
        );
    }
    if let Some(quota) = &spec.cpu_quota {
        check(
            "cpu_quota",
            service_only(true).and_then(|()| check_cpu_quota(quota)),
        );
    }
    if let Some(nice) = spec.nice {
        let range = if (-20..=19).contains(&nice) {
            Ok(())
        } else {
            Err("must be from -20 (first) to 19 (last)".to_string())
        };
        check("nice", service_only(true).and(range));
    }
    check("after", check_dependencies(&spec.after));
    check("wants", check_pulled_in(&spec.wants));
    if let Some(argv) = &spec.exec_start {
        check(
            "exec_start",
            service_only(true).and_then(|()| check_exec_start(argv)),
        );
    }
    let raw = match parse_raw(&spec.raw, service, directives) {
        Ok(raw) => raw,
        Err(message) => {
            check("raw", Err(message));
            Vec::new()
        }
    };
    let empty = spec.environment.is_empty()
        && spec.restart.is_none()
        && spec.restart_sec.is_none()
        && spec.timeout_stop_sec.is_none()
        && spec.memory_max.is_none()
        && spec.cpu_quota.is_none()
        && spec.nice.is_none()
        && spec.after.is_empty()
        && spec.wants.is_empty()
        && spec.exec_start.is_none()
        && !raw.iter().any(|l| matches!(l, RawLine::Setting { .. }));
    if errors.is_empty() && empty {
        errors.push(FieldError::new(
            "override",
            "sets nothing; to go back to the unit's own settings, remove the override",
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(DropIn {
        text: render(spec, &raw),
        wants: spec.wants.clone(),
        raw,
    })
}

fn check_environment(spec: &OverrideSpec) -> Result<(), String> {
    if spec.environment.len() > MAX_ENV_VARS {
        return Err(format!("must have at most {MAX_ENV_VARS} variables"));
    }
    spec.environment
        .iter()
        .try_for_each(|(key, value)| check_variable(key, value.as_deref()))
}

/// A time span systemd parses (`5`, `500ms`, `1min 30s`; `infinity` where allowed): its
/// characters here, its grammar by `systemd-analyze verify`.
fn check_time_span(span: &str, infinity: bool) -> Result<(), String> {
    const HINT: &str = "a time span such as 5, 5s, 500ms or 1min 30s";
    if span == "infinity" {
        return if infinity {
            Ok(())
        } else {
            Err(format!("must be {HINT}"))
        };
    }
    let ok = !span.is_empty()
        && span.len() <= MAX_TIME_SPAN
        && span.starts_with(|c: char| c.is_ascii_digit())
        && !span.ends_with(' ')
        && span
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == ' ');
    if ok {
        Ok(())
    } else {
        Err(format!("{} is not {HINT}", show(span)))
    }
}

/// Reads `raw` line by line; the first problem, as `line N: ...`.
fn parse_raw(
    raw: &str,
    service: bool,
    directives: Result<&Directives, &str>,
) -> Result<Vec<RawLine>, String> {
    if raw.len() > MAX_RAW_BYTES {
        return Err(format!("must be at most {MAX_RAW_BYTES} bytes"));
    }
    let raw = raw.strip_suffix('\n').unwrap_or(raw);
    if raw.trim().is_empty() {
        return Ok(Vec::new());
    }
    if raw.lines().count() > MAX_RAW_LINES {
        return Err(format!("must have at most {MAX_RAW_LINES} lines"));
    }
    let mut out = Vec::new();
    let mut section: Option<Section> = None;
    for (i, line) in raw.split('\n').enumerate() {
        let at = |message: String| format!("line {}: {message}", i + 1);
        if let Some(line) = raw_line(line, service, &mut section, directives).map_err(at)? {
            out.push(line);
        }
    }
    Ok(out)
}

fn raw_line(
    line: &str,
    service: bool,
    section: &mut Option<Section>,
    directives: Result<&Directives, &str>,
) -> Result<Option<RawLine>, String> {
    no_control(line)?;
    // systemd joins a line that ends in a backslash with the next: a comment could swallow
    // a setting, a value take in the next line.
    if line.trim_end().ends_with('\\') {
        return Err("must not end with a backslash (systemd would join the next line)".into());
    }
    let line = line.trim();
    if line.is_empty() {
        return Ok(None);
    }
    if let Some(comment) = line.strip_prefix(['#', ';']) {
        return Ok(Some(RawLine::Comment {
            section: section.unwrap_or(Section::Unit),
            text: comment.trim().to_string(),
        }));
    }
    if line.starts_with('[') {
        *section = Some(match line {
            "[Unit]" => Section::Unit,
            "[Service]" if service => Section::Service,
            "[Service]" => return Err("[Service] settings are for services only".into()),
            other => {
                return Err(format!(
                    "{} is not a section an override may set: only [Unit]{}",
                    show(other),
                    if service { " and [Service]" } else { "" }
                ));
            }
        });
        return Ok(None);
    }
    let Some((key, value)) = line.split_once('=') else {
        return Err(format!("{} is not Key=value", show(line)));
    };
    let (key, value) = (key.trim(), value.trim());
    let Some(section) = *section else {
        return Err(format!(
            "{key}= comes before any [Unit] or [Service] header"
        ));
    };
    let name = match section {
        Section::Unit => "Unit",
        Section::Service => "Service",
    };
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!("{} is not a setting name", show(key)));
    }
    if let Some((_, field)) = FIELD_KEYS.iter().find(|(k, _)| *k == key) {
        return Err(format!(
            "{key}= has a field of its own ({field}): set it there"
        ));
    }
    let directives = directives.map_err(|e| format!("cannot check setting names: {e}"))?;
    if directives.kind(name, key).is_none() {
        let elsewhere = directives.sections_of(key);
        return Err(match elsewhere.as_slice() {
            [] => format!("systemd knows no setting {key}="),
            sections => format!(
                "{key}= belongs in [{}], not [{name}]",
                sections.join("] or [")
            ),
        });
    }
    check_raw_value(key, value)?;
    Ok(Some(RawLine::Setting {
        section,
        key: key.to_string(),
        value: value.to_string(),
    }))
}

/// A raw value: no specifier, no setting that takes the container down by itself, unit
/// names in dependencies.
fn check_raw_value(key: &str, value: &str) -> Result<(), String> {
    if value.len() > MAX_RAW_VALUE {
        return Err(format!("{key}= is longer than {MAX_RAW_VALUE} bytes"));
    }
    let bytes = value.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        let percentage = i > 0
            && bytes[i - 1].is_ascii_digit()
            && bytes.get(i + 1).is_none_or(|n| n.is_ascii_whitespace());
        if *b == b'%' && !percentage {
            return Err(format!(
                "{key}=: systemd reads \"%\" as a specifier (%n, %i, ...); only a \
                 percentage such as 50% may use it"
            ));
        }
    }
    let truthy = matches!(
        value.to_ascii_lowercase().as_str(),
        "1" | "yes" | "y" | "true" | "t" | "on"
    );
    let refusal = match key {
        "SourcePath" => Some("would misreport where the unit comes from"),
        k if ACTIONS.contains(&k) && value != "none" => {
            Some("would power off or reboot the container; only \"none\" is accepted")
        }
        "OnFailureJobMode" | "OnSuccessJobMode" if value == "isolate" => {
            Some("isolate would stop every other unit")
        }
        "OnFailureIsolate" if truthy => Some("would stop every other unit"),
        _ => None,
    };
    if let Some(why) = refusal {
        return Err(format!("{key}={value} {why}"));
    }
    if DEPENDENCY_KEYS.contains(&key) {
        let names: Vec<String> = value.split_whitespace().map(String::from).collect();
        check_dependencies(&names).map_err(|e| format!("{key}=: {e}"))?;
        if names.iter().any(|n| !is_valid_unit_name(n)) {
            return Err(format!("{key}= takes full unit names"));
        }
    }
    Ok(())
}

/// The drop-in's text: the header, then `[Unit]` and `[Service]` with what is set.
fn render(spec: &OverrideSpec, raw: &[RawLine]) -> String {
    let mut out = format!(
        "{MANAGED_HEADER}\n{OVERRIDE_VERSION_LINE}\n\
         # systemd applies it after the unit's own file and the drop-ins named before it.\n"
    );
    let mut unit: Vec<String> = Vec::new();
    if !spec.after.is_empty() {
        unit.push(format!("After={}", spec.after.join(" ")));
    }
    if !spec.wants.is_empty() {
        unit.push(format!("Wants={}", spec.wants.join(" ")));
    }
    let mut service: Vec<String> = Vec::new();
    if let Some(argv) = &spec.exec_start {
        service.push(
            "# The empty ExecStart= drops the unit's command; the next line is the new one.".into(),
        );
        service.push("ExecStart=".into());
        service.push(EXEC_COMMENT.into());
        service.push(format!("ExecStart={}", exec_start_value(argv)));
    }
    for (key, value) in &spec.environment {
        service.push(match value {
            Some(value) => format!("Environment={}", environment_value(key, value)),
            None => format!("UnsetEnvironment={key}"),
        });
    }
    let scalars = [
        ("Restart", spec.restart.map(|r| r.as_systemd().to_string())),
        ("RestartSec", spec.restart_sec.clone()),
        ("TimeoutStopSec", spec.timeout_stop_sec.clone()),
        ("MemoryMax", spec.memory_max.clone()),
        ("CPUQuota", spec.cpu_quota.clone()),
        ("Nice", spec.nice.map(|n| n.to_string())),
    ];
    for (key, value) in scalars {
        if let Some(value) = value {
            service.push(format!("{key}={value}"));
        }
    }
    for line in raw {
        let (target, text) = match line {
            RawLine::Comment { section, text } => (*section, format!("# {text}")),
            RawLine::Setting {
                section,
                key,
                value,
            } => (*section, format!("{key}={value}")),
        };
        match target {
            Section::Unit => unit.push(text),
            Section::Service => service.push(text),
        }
    }
    for (name, lines) in [("Unit", unit), ("Service", service)] {
        if !lines.is_empty() {
            out.push_str(&format!("\n[{name}]\n"));
            for line in lines {
                out.push_str(&line);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
