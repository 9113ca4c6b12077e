//! The form's fields, each described once: its input name (also its element id and the
//! slot its errors show in), the spec fields whose errors it shows, its value for a new
//! unit, how it shows a spec and how its text goes into one. Parsing the posted form,
//! showing a stored spec, building a spec and placing errors all come from [`FIELDS`]:
//! a new spec field is one entry here (and its input in `unit_form.html`).

use std::collections::HashMap;

use crate::error::FieldError;
use crate::unitfile::shell::{shell_quote_argv, split_command_line};
use crate::unitfile::spec::{
    DEFAULT_HEALTH_FAILURES, DEFAULT_HEALTH_INTERVAL_S, DEFAULT_HEALTH_TIMEOUT_S,
};
use crate::unitfile::{HealthSpec, RestartPolicy, UnitKind, UnitSpec};

/// A checkbox's value when ticked (an unticked one is not posted: "").
const TICKED: &str = "1";

/// One input of the form.
pub struct Field {
    /// Input name, element id and error slot.
    pub name: &'static str,
    /// Spec fields (as the domain names them in errors) whose errors show here; none: the
    /// field shows no errors (its input has no error line).
    pub spec_fields: &'static [&'static str],
    /// The value for a new unit.
    pub initial: &'static str,
    /// The value showing `spec`.
    pub show: fn(&UnitSpec) -> String,
    /// Puts the typed text into the draft; `Err`: the text cannot even be read (not a
    /// number, an unclosed quote). Every other rule is the domain's.
    pub read: fn(&str, &mut Draft) -> Result<(), String>,
}

/// A spec being read from the form, with the health check's parts until they are whole.
#[derive(Default)]
pub struct Draft {
    pub spec: UnitSpec,
    health_kind: String,
    health_target: String,
    health_interval_s: Option<i64>,
    health_failures: Option<i64>,
    health_timeout_s: Option<i64>,
    health_restart: bool,
}

pub const FIELDS: &[Field] = &[
    Field {
        name: "kind",
        spec_fields: &["kind"],
        initial: "service",
        show: |s| s.kind.as_str().to_string(),
        read: |t, d| {
            d.spec.kind = if t == "job" {
                UnitKind::Job
            } else {
                UnitKind::Service
            };
            Ok(())
        },
    },
    Field {
        name: "name",
        spec_fields: &["name"],
        initial: "",
        show: |s| s.name.clone(),
        read: |t, d| {
            d.spec.name = t.trim().to_string();
            Ok(())
        },
    },
    Field {
        name: "description",
        spec_fields: &["description"],
        initial: "",
        show: |s| s.description.clone(),
        // Kept as typed: validation explains leading/trailing white space.
        read: |t, d| {
            d.spec.description = t.to_string();
            Ok(())
        },
    },
    Field {
        name: "command",
        spec_fields: &["exec_start"],
        initial: "",
        show: |s| shell_quote_argv(&s.exec_start),
        read: |t, d| {
            d.spec.exec_start =
                split_command_line(t).map_err(|e| format!("cannot be split: {e}"))?;
            Ok(())
        },
    },
    Field {
        name: "working_directory",
        spec_fields: &["working_directory"],
        initial: "",
        show: |s| s.working_directory.clone().unwrap_or_default(),
        read: |t, d| {
            d.spec.working_directory = optional(t);
            Ok(())
        },
    },
    Field {
        name: "user",
        spec_fields: &["user"],
        initial: "",
        show: |s| s.user.clone().unwrap_or_default(),
        read: |t, d| {
            d.spec.user = optional(t);
            Ok(())
        },
    },
    Field {
        name: "group",
        spec_fields: &["group"],
        initial: "",
        show: |s| s.group.clone().unwrap_or_default(),
        read: |t, d| {
            d.spec.group = optional(t);
            Ok(())
        },
    },
    Field {
        name: "port",
        spec_fields: &["port"],
        initial: "",
        show: |s| s.port.map(|p| p.to_string()).unwrap_or_default(),
        read: |t, d| {
            d.spec.port = number(t)?;
            Ok(())
        },
    },
    Field {
        name: "schedule",
        spec_fields: &["schedule"],
        initial: "",
        show: |s| s.schedule.clone().unwrap_or_default(),
        read: |t, d| {
            d.spec.schedule = optional(t);
            Ok(())
        },
    },
    Field {
        name: "after",
        spec_fields: &["after"],
        initial: "",
        show: |s| s.after.join(" "),
        read: |t, d| {
            d.spec.after = words(t);
            Ok(())
        },
    },
    Field {
        name: "wants",
        spec_fields: &["wants"],
        initial: "",
        show: |s| s.wants.join(" "),
        read: |t, d| {
            d.spec.wants = words(t);
            Ok(())
        },
    },
    Field {
        name: "requires",
        spec_fields: &["requires"],
        initial: "",
        show: |s| s.requires.join(" "),
        read: |t, d| {
            d.spec.requires = words(t);
            Ok(())
        },
    },
    Field {
        name: "restart",
        spec_fields: &["restart"],
        initial: "",
        show: |s| {
            s.restart
                .map(|r| r.as_systemd().to_string())
                .unwrap_or_default()
        },
        read: |t, d| {
            d.spec.restart = match t {
                "no" => Some(RestartPolicy::No),
                "on-failure" => Some(RestartPolicy::OnFailure),
                "always" => Some(RestartPolicy::Always),
                _ => None,
            };
            Ok(())
        },
    },
    Field {
        name: "restart_sec",
        spec_fields: &["restart_sec"],
        initial: "",
        show: |s| s.restart_sec.map(|n| n.to_string()).unwrap_or_default(),
        read: |t, d| {
            d.spec.restart_sec = number(t)?;
            Ok(())
        },
    },
    Field {
        name: "memory_max",
        spec_fields: &["memory_max"],
        initial: "",
        show: |s| s.memory_max.clone().unwrap_or_default(),
        read: |t, d| {
            d.spec.memory_max = optional(t);
            Ok(())
        },
    },
    Field {
        name: "cpu_quota",
        spec_fields: &["cpu_quota"],
        initial: "",
        show: |s| s.cpu_quota.clone().unwrap_or_default(),
        read: |t, d| {
            d.spec.cpu_quota = optional(t);
            Ok(())
        },
    },
    Field {
        name: "health_kind",
        spec_fields: &[],
        initial: "none",
        show: |s| match &s.health {
            Some(h) if h.http.is_some() => "http".into(),
            Some(_) => "tcp".into(),
            None => "none".into(),
        },
        read: |t, d| {
            d.health_kind = t.to_string();
            Ok(())
        },
    },
    Field {
        name: "health_target",
        spec_fields: &[
            "health",
            "health.http",
            "health.tcp",
            "health.timeout_s",
            "health_timeout_s",
        ],
        initial: "",
        show: |s| {
            s.health
                .as_ref()
                .and_then(|h| h.http.clone().or_else(|| h.tcp.map(|p| p.to_string())))
                .unwrap_or_default()
        },
        read: |t, d| {
            d.health_target = t.trim().to_string();
            Ok(())
        },
    },
    Field {
        name: "health_interval_s",
        spec_fields: &["health.interval_s"],
        initial: "10",
        show: |s| health_number(s, |h| h.interval_s, DEFAULT_HEALTH_INTERVAL_S),
        read: |t, d| {
            d.health_interval_s = number(t)?;
            Ok(())
        },
    },
    Field {
        name: "health_failures",
        spec_fields: &["health.failures"],
        initial: "3",
        show: |s| health_number(s, |h| h.failures, DEFAULT_HEALTH_FAILURES),
        read: |t, d| {
            d.health_failures = number(t)?;
            Ok(())
        },
    },
    // Not shown: kept so that an edit does not reset it.
    Field {
        name: "health_timeout_s",
        spec_fields: &[],
        initial: "2",
        show: |s| health_number(s, |h| h.timeout_s, DEFAULT_HEALTH_TIMEOUT_S),
        read: |t, d| {
            d.health_timeout_s = number(t)?;
            Ok(())
        },
    },
    Field {
        name: "health_restart",
        spec_fields: &[],
        initial: TICKED,
        show: |s| ticked(s.health.as_ref().is_none_or(|h| h.restart)),
        read: |t, d| {
            d.health_restart = !t.is_empty();
            Ok(())
        },
    },
    Field {
        name: "enable",
        spec_fields: &[],
        initial: TICKED,
        show: |s| ticked(s.enable),
        read: |t, d| {
            d.spec.enable = !t.is_empty();
            Ok(())
        },
    },
    Field {
        name: "start",
        spec_fields: &[],
        initial: TICKED,
        show: |s| ticked(s.start),
        read: |t, d| {
            d.spec.start = !t.is_empty();
            Ok(())
        },
    },
];

/// The environment rows: a field of its own (a list of pairs).
pub const ENVIRONMENT: &str = "environment";

pub(super) fn optional(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_string())
}

pub(super) fn number(text: &str) -> Result<Option<i64>, String> {
    match text.trim() {
        "" => Ok(None),
        t => t
            .parse()
            .map(Some)
            .map_err(|_| format!("{t:?} is not a whole number")),
    }
}

/// A list of unit names, separated by spaces or commas.
pub(super) fn words(text: &str) -> Vec<String> {
    text.split([' ', ',', '\t', '\n'])
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect()
}

fn ticked(on: bool) -> String {
    if on { TICKED } else { "" }.to_string()
}

fn health_number(spec: &UnitSpec, of: fn(&HealthSpec) -> i64, default: i64) -> String {
    spec.health.as_ref().map_or(default, of).to_string()
}

impl Draft {
    /// The spec: the health check made whole, the fields of the other kind dropped.
    fn finish(mut self, errors: &mut Vec<FieldError>) -> UnitSpec {
        let health = match self.health_kind.as_str() {
            kind @ ("http" | "tcp") => {
                let (http, tcp) = if kind == "http" {
                    (Some(self.health_target.clone()), None)
                } else {
                    let port = number(&self.health_target).unwrap_or_else(|e| {
                        errors.push(FieldError::new("health_target", e));
                        None
                    });
                    (None, port.or(Some(0)))
                };
                Some(HealthSpec {
                    http,
                    tcp,
                    interval_s: self.health_interval_s.unwrap_or(DEFAULT_HEALTH_INTERVAL_S),
                    timeout_s: self.health_timeout_s.unwrap_or(DEFAULT_HEALTH_TIMEOUT_S),
                    failures: self.health_failures.unwrap_or(DEFAULT_HEALTH_FAILURES),
                    restart: self.health_restart,
                })
            }
            _ => None,
        };
        let job = self.spec.kind == UnitKind::Job;
        self.spec.health = if job { None } else { health };
        if job {
            self.spec.port = None;
        } else {
            self.spec.schedule = None;
        }
        self.spec
    }
}

/// The form's values, as typed, so they can be shown again with errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormValues {
    values: HashMap<&'static str, String>,
    /// Variable name and value, in the order of the rows.
    pub env: Vec<(String, String)>,
}

impl Default for FormValues {
    /// A new unit's form.
    fn default() -> Self {
        Self {
            values: FIELDS
                .iter()
                .map(|f| (f.name, f.initial.to_string()))
                .collect(),
            env: vec![(String::new(), String::new())],
        }
    }
}

/// What a button asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    Save,
    Preview,
    AddEnv,
    RemoveEnv(usize),
}

impl Intent {
    /// What the `action` button a form was sent with asks for (none: save).
    pub fn of(action: &str) -> Self {
        match action {
            "preview" => Self::Preview,
            "add-env" => Self::AddEnv,
            other => other
                .strip_prefix("remove-env-")
                .and_then(|i| i.parse().ok())
                .map_or(Self::Save, Self::RemoveEnv),
        }
    }

    /// The environment rows after an add or remove button; always at least one.
    pub fn applied_to<T: Default>(&self, mut rows: Vec<T>) -> Vec<T> {
        match *self {
            Self::AddEnv => rows.push(T::default()),
            Self::RemoveEnv(i) if i < rows.len() => {
                rows.remove(i);
            }
            _ => {}
        }
        if rows.is_empty() {
            rows.push(T::default());
        }
        rows
    }
}

impl FormValues {
    /// A field's value ("" for a field not on the form).
    pub fn get(&self, name: &str) -> &str {
        self.values.get(name).map_or("", String::as_str)
    }

    /// Whether a checkbox is ticked.
    pub fn ticked(&self, name: &str) -> bool {
        !self.get(name).is_empty()
    }

    pub fn is_job(&self) -> bool {
        self.get("kind") == "job"
    }

    /// From the urlencoded pairs (repeated `env_key`/`env_value` pairs keep their order).
    /// A field not posted is empty: an unticked checkbox posts nothing.
    pub fn parse(pairs: Vec<(String, String)>) -> (Self, Intent) {
        let mut values: HashMap<&'static str, String> =
            FIELDS.iter().map(|f| (f.name, String::new())).collect();
        let mut intent = Intent::Save;
        let (mut keys, mut texts) = (Vec::new(), Vec::new());
        for (key, value) in pairs {
            match key.as_str() {
                "env_key" => keys.push(value),
                "env_value" => texts.push(value),
                "action" => intent = Intent::of(&value),
                other => {
                    if let Some(field) = FIELDS.iter().find(|f| f.name == other) {
                        values.insert(field.name, value);
                    }
                }
            }
        }
        texts.resize(keys.len().max(texts.len()), String::new());
        keys.resize(texts.len(), String::new());
        let env = intent.applied_to(keys.into_iter().zip(texts).collect());
        (Self { values, env }, intent)
    }

    /// The form showing an existing spec.
    pub fn from_spec(spec: &UnitSpec) -> Self {
        let mut env: Vec<(String, String)> = spec
            .environment
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if env.is_empty() {
            env.push((String::new(), String::new()));
        }
        Self {
            values: FIELDS.iter().map(|f| (f.name, (f.show)(spec))).collect(),
            env,
        }
    }

    /// The argv the command line splits into (empty when it cannot be split).
    pub fn argv(&self) -> Vec<String> {
        split_command_line(self.get("command")).unwrap_or_default()
    }

    /// The spec, or the fields that cannot even be read (a number that is not one, an
    /// unterminated quote, a variable set twice).
    pub fn to_spec(&self) -> Result<UnitSpec, Vec<FieldError>> {
        let mut draft = Draft::default();
        let mut errors = Vec::new();
        for field in FIELDS {
            if let Err(message) = (field.read)(self.get(field.name), &mut draft) {
                errors.push(FieldError::new(field.name, message));
            }
        }
        for (key, value) in &self.env {
            let key = key.trim();
            if key.is_empty() && value.is_empty() {
                continue;
            }
            if draft
                .spec
                .environment
                .insert(key.to_string(), value.clone())
                .is_some()
            {
                errors.push(FieldError::new(ENVIRONMENT, format!("{key} is set twice")));
            }
        }
        let spec = draft.finish(&mut errors);
        if errors.is_empty() {
            Ok(spec)
        } else {
            Err(errors)
        }
    }
}

/// The inputs with an error line: the fields that show errors, and the environment rows.
fn error_slots() -> impl Iterator<Item = &'static str> {
    FIELDS
        .iter()
        .filter(|f| !f.spec_fields.is_empty())
        .map(|f| f.name)
        .chain([ENVIRONMENT])
}

/// The input that shows errors of a spec field (or of a form field: the same name).
fn slot_of(field: &str) -> Option<&'static str> {
    if field == ENVIRONMENT {
        return Some(ENVIRONMENT);
    }
    FIELDS
        .iter()
        .filter(|f| !f.spec_fields.is_empty())
        .find(|f| f.name == field || f.spec_fields.contains(&field))
        .map(|f| f.name)
}

/// Errors by form slot, plus those with no slot.
#[derive(Debug, Clone)]
pub struct Errors {
    by_slot: HashMap<&'static str, String>,
    general: Vec<String>,
    /// Every input of the form with an error line.
    slots: Vec<&'static str>,
}

impl Default for Errors {
    /// No error, on the unit form.
    fn default() -> Self {
        Self::from_fields(&[])
    }
}

impl Errors {
    /// Domain errors placed on the unit form.
    pub fn from_fields(errors: &[FieldError]) -> Self {
        Self::placed(errors, error_slots().collect(), slot_of)
    }

    /// Domain errors placed on a form whose inputs with an error line are `slots`:
    /// `slot_of` names the input of a field, the others are general.
    pub fn placed(
        errors: &[FieldError],
        slots: Vec<&'static str>,
        slot_of: impl Fn(&str) -> Option<&'static str>,
    ) -> Self {
        let mut out = Self {
            by_slot: HashMap::new(),
            general: Vec::new(),
            slots,
        };
        for e in errors {
            match slot_of(&e.field) {
                Some(slot) => {
                    out.by_slot.entry(slot).or_insert_with(|| e.message.clone());
                }
                None => out.general.push(format!("{}: {}", e.field, e.message)),
            }
        }
        out
    }

    /// A message of no field, on the unit form.
    pub fn general(message: impl Into<String>) -> Self {
        Self {
            general: vec![message.into()],
            ..Self::default()
        }
    }

    /// The message for a field, if it has one.
    pub fn get(&self, slot: &str) -> Option<&str> {
        self.by_slot.get(slot).map(String::as_str)
    }

    /// " invalid" for a field with an error (appended to its class).
    pub fn invalid(&self, slot: &str) -> &'static str {
        if self.by_slot.contains_key(slot) {
            " invalid"
        } else {
            ""
        }
    }

    /// Every slot with its message ("" = none), for out-of-band swaps.
    pub fn slots(&self) -> Vec<(&'static str, String)> {
        self.slots
            .iter()
            .map(|s| (*s, self.get(s).unwrap_or("").to_string()))
            .collect()
    }

    pub fn general_messages(&self) -> &[String] {
        &self.general
    }
}

/// The slots a form template gives an error line: its `field_error` calls, and the
/// limit fields of `limits_fields.html` when it includes them (for the tests that hold the
/// templates and the slots to each other).
#[cfg(test)]
pub(super) fn error_line_slots(page: &str) -> Vec<String> {
    let named = |text: &str, marker: &str| -> Vec<String> {
        text.split(marker)
            .skip(1)
            .filter_map(|rest| rest.split('"').next().map(str::to_string))
            .collect()
    };
    let mut slots = named(page, "call field_error(\"");
    if page.contains("{% include \"limits_fields.html\" %}") {
        let limits = include_str!("../../../templates/limits_fields.html");
        let list = limits
            .split(" in [")
            .nth(1)
            .and_then(|rest| rest.split("] %}").next())
            .expect("the limit fields' list");
        slots.extend(named(list, "(\""));
    }
    slots.sort();
    slots
}

/// A form's fields as a browser posts them (for the form tests).
#[cfg(test)]
pub(super) fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn form_fields_become_a_spec() {
        let (f, intent) = FormValues::parse(pairs(&[
            ("name", "shop-api"),
            ("kind", "service"),
            ("command", "/usr/bin/node 'server file.js' --port 8036"),
            ("working_directory", " /srv "),
            ("env_key", "A"),
            ("env_value", "x y %"),
            ("env_key", ""),
            ("env_value", ""),
            ("port", "8036"),
            ("after", "network.target, b.service"),
            ("restart", ""),
            ("health_kind", "tcp"),
            ("health_target", "8036"),
            ("enable", "1"),
        ]));
        assert_eq!(intent, Intent::Save);
        let spec = f.to_spec().unwrap();
        assert_eq!(
            spec.exec_start,
            ["/usr/bin/node", "server file.js", "--port", "8036"]
        );
        assert_eq!(spec.working_directory.as_deref(), Some("/srv"));
        assert_eq!(
            spec.environment,
            BTreeMap::from([("A".into(), "x y %".into())])
        );
        assert_eq!(spec.after, ["network.target", "b.service"]);
        assert_eq!(spec.port, Some(8036));
        assert_eq!(spec.restart, None);
        assert_eq!(spec.health.as_ref().unwrap().tcp, Some(8036));
        assert!(spec.enable && !spec.start);
        // And back: the form shows the same spec.
        let again = FormValues::from_spec(&spec).to_spec().unwrap();
        assert_eq!(again, spec);
    }

    #[test]
    fn every_field_shows_what_it_reads() {
        let spec = crate::unitfile::spec::examples::service();
        let shown = FormValues::from_spec(&spec);
        assert_eq!(shown.to_spec().unwrap(), spec);
        let job = crate::unitfile::spec::examples::job();
        assert_eq!(FormValues::from_spec(&job).to_spec().unwrap(), job);
        // A new unit's form: a service that starts now and at boot.
        let new = FormValues::default();
        assert!(!new.is_job() && new.ticked("enable") && new.ticked("start"));
    }

    #[test]
    fn unreadable_fields_are_errors_of_their_own_slot() {
        let (f, _) = FormValues::parse(pairs(&[
            ("name", "x"),
            ("command", "/bin/echo 'open"),
            ("port", "80a"),
            ("env_key", "A"),
            ("env_value", "1"),
            ("env_key", "A"),
            ("env_value", "2"),
        ]));
        let errors = Errors::from_fields(&f.to_spec().unwrap_err());
        assert!(errors.get("command").unwrap().contains("quote"));
        assert!(errors.get("port").is_some());
        assert!(errors.get("environment").unwrap().contains("twice"));
        assert_eq!(errors.invalid("port"), " invalid");
        assert_eq!(errors.invalid("name"), "");
    }

    #[test]
    fn env_rows_are_added_and_removed() {
        let (f, intent) = FormValues::parse(pairs(&[
            ("env_key", "A"),
            ("env_value", "1"),
            ("action", "add-env"),
        ]));
        assert_eq!(intent, Intent::AddEnv);
        assert_eq!(f.env.len(), 2);
        let (f, _) = FormValues::parse(pairs(&[
            ("env_key", "A"),
            ("env_value", "1"),
            ("env_key", "B"),
            ("env_value", "2"),
            ("action", "remove-env-0"),
        ]));
        assert_eq!(f.env, [("B".to_string(), "2".to_string())]);
    }

    #[test]
    fn domain_fields_map_to_form_slots() {
        let errors = Errors::from_fields(&[
            FieldError::new("exec_start", "a"),
            FieldError::new("health.http", "b"),
            FieldError::new("revision", "c"),
        ]);
        assert_eq!(errors.get("command"), Some("a"));
        assert_eq!(errors.get("health_target"), Some("b"));
        assert_eq!(errors.general_messages(), ["revision: c"]);
        // The slots are the inputs with an error line in the page, and only those.
        let mut slots: Vec<_> = errors
            .slots()
            .into_iter()
            .map(|(s, _)| s.to_string())
            .collect();
        slots.sort();
        let page = include_str!("../../../templates/unit_form.html");
        assert_eq!(super::error_line_slots(page), slots);
    }
}
