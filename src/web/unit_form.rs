//! The form that adds or edits a unit file (`/units/new`, `/units/{name}/edit`), its live
//! preview fragment, and the revision history with diffs and one-click rollback.
//!
//! It works without JavaScript: every button is a plain form submit and the server
//! re-renders the page (adding or removing an environment row, previewing, creating).
//! With htmx, the preview beside the form follows typing (`input changed delay:400ms`),
//! and field errors are swapped out of band next to their fields.

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::pages::Chrome;
use crate::auth::{Principal, Scope};
use crate::error::{AppError, FieldError};
use crate::http::problem::{PageError, status_of};
use crate::http::urlencode;
use crate::service::Services;
use crate::service::unit_files::{Applied, Preview};
use crate::state::AppState;
use crate::unitfile::diff::{DiffLine, diff_lines};
use crate::unitfile::shell::{shell_quote_argv, split_command_line};
use crate::unitfile::{HealthSpec, RestartPolicy, UnitKind, UnitSpec};

/// Revisions shown (with their diffs) on the edit page.
const HISTORY: usize = 20;

/// Where each spec field's error is shown: the form's field ids.
const ERROR_SLOTS: &[&str] = &[
    "name",
    "kind",
    "description",
    "command",
    "working_directory",
    "user",
    "group",
    "environment",
    "port",
    "after",
    "requires",
    "wants",
    "restart",
    "restart_sec",
    "health_target",
    "health_interval_s",
    "health_failures",
    "schedule",
];

/// The spec field of an error → the form field it is shown next to (None: at the top).
fn slot_of(field: &str) -> Option<&'static str> {
    let slot = match field {
        "exec_start" => "command",
        "health" | "health.http" | "health.tcp" | "health.timeout_s" => "health_target",
        "health.interval_s" => "health_interval_s",
        "health.failures" => "health_failures",
        other => other,
    };
    ERROR_SLOTS.iter().copied().find(|s| *s == slot)
}

/// The form's values, as typed (strings), so they can be shown again with errors.
#[derive(Debug, Clone)]
pub struct FormValues {
    pub name: String,
    pub job: bool,
    pub description: String,
    pub command: String,
    pub working_directory: String,
    pub user: String,
    pub group: String,
    pub env: Vec<(String, String)>,
    pub port: String,
    pub after: String,
    pub requires: String,
    pub wants: String,
    /// "", "no", "on-failure", "always".
    pub restart: String,
    pub restart_sec: String,
    /// "none", "http", "tcp".
    pub health_kind: String,
    pub health_target: String,
    pub health_interval_s: String,
    pub health_failures: String,
    /// Not on the form; kept so an edit does not reset it.
    pub health_timeout_s: String,
    pub health_restart: bool,
    pub schedule: String,
    pub enable: bool,
    pub start: bool,
}

impl Default for FormValues {
    fn default() -> Self {
        Self {
            name: String::new(),
            job: false,
            description: String::new(),
            command: String::new(),
            working_directory: String::new(),
            user: String::new(),
            group: String::new(),
            env: vec![(String::new(), String::new())],
            port: String::new(),
            after: String::new(),
            requires: String::new(),
            wants: String::new(),
            restart: String::new(),
            restart_sec: String::new(),
            health_kind: "none".into(),
            health_target: String::new(),
            health_interval_s: "10".into(),
            health_failures: "3".into(),
            health_timeout_s: "2".into(),
            health_restart: true,
            schedule: String::new(),
            enable: true,
            start: true,
        }
    }
}

/// What a button asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Intent {
    Save,
    Preview,
    AddEnv,
    RemoveEnv(usize),
}

impl FormValues {
    /// From the urlencoded pairs (repeated `env_key`/`env_value` pairs keep their order).
    fn parse(pairs: Vec<(String, String)>) -> (Self, Intent) {
        let mut v = FormValues {
            env: Vec::new(),
            health_restart: false,
            enable: false,
            start: false,
            ..Default::default()
        };
        let mut intent = Intent::Save;
        let (mut keys, mut values) = (Vec::new(), Vec::new());
        for (key, value) in pairs {
            match key.as_str() {
                "name" => v.name = value,
                "kind" => v.job = value == "job",
                "description" => v.description = value,
                "command" => v.command = value,
                "working_directory" => v.working_directory = value,
                "user" => v.user = value,
                "group" => v.group = value,
                "env_key" => keys.push(value),
                "env_value" => values.push(value),
                "port" => v.port = value,
                "after" => v.after = value,
                "requires" => v.requires = value,
                "wants" => v.wants = value,
                "restart" => v.restart = value,
                "restart_sec" => v.restart_sec = value,
                "health_kind" => v.health_kind = value,
                "health_target" => v.health_target = value,
                "health_interval_s" => v.health_interval_s = value,
                "health_failures" => v.health_failures = value,
                "health_timeout_s" => v.health_timeout_s = value,
                "health_restart" => v.health_restart = true,
                "schedule" => v.schedule = value,
                "enable" => v.enable = true,
                "start" => v.start = true,
                "action" => {
                    intent = match value.as_str() {
                        "preview" => Intent::Preview,
                        "add-env" => Intent::AddEnv,
                        other => other
                            .strip_prefix("remove-env-")
                            .and_then(|i| i.parse().ok())
                            .map_or(Intent::Save, Intent::RemoveEnv),
                    }
                }
                _ => {}
            }
        }
        values.resize(keys.len().max(values.len()), String::new());
        keys.resize(values.len(), String::new());
        v.env = keys.into_iter().zip(values).collect();
        match intent {
            Intent::AddEnv => v.env.push((String::new(), String::new())),
            Intent::RemoveEnv(i) if i < v.env.len() => {
                v.env.remove(i);
            }
            _ => {}
        }
        if v.env.is_empty() {
            v.env.push((String::new(), String::new()));
        }
        (v, intent)
    }

    /// The form showing an existing spec.
    fn from_spec(spec: &UnitSpec) -> Self {
        let words = |names: &[String]| names.join(" ");
        let (health_kind, health_target, interval, failures, timeout, restart) = match &spec.health
        {
            Some(h) => (
                if h.http.is_some() { "http" } else { "tcp" },
                h.http
                    .clone()
                    .or_else(|| h.tcp.map(|p| p.to_string()))
                    .unwrap_or_default(),
                h.interval_s.to_string(),
                h.failures.to_string(),
                h.timeout_s.to_string(),
                h.restart,
            ),
            None => (
                "none",
                String::new(),
                "10".into(),
                "3".into(),
                "2".into(),
                true,
            ),
        };
        let mut env: Vec<(String, String)> = spec
            .environment
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if env.is_empty() {
            env.push((String::new(), String::new()));
        }
        Self {
            name: spec.name.clone(),
            job: spec.kind == UnitKind::Job,
            description: spec.description.clone(),
            command: shell_quote_argv(&spec.exec_start),
            working_directory: spec.working_directory.clone().unwrap_or_default(),
            user: spec.user.clone().unwrap_or_default(),
            group: spec.group.clone().unwrap_or_default(),
            env,
            port: spec.port.map(|p| p.to_string()).unwrap_or_default(),
            after: words(&spec.after),
            requires: words(&spec.requires),
            wants: words(&spec.wants),
            restart: spec
                .restart
                .map(|r| r.as_systemd().to_string())
                .unwrap_or_default(),
            restart_sec: spec.restart_sec.map(|s| s.to_string()).unwrap_or_default(),
            health_kind: health_kind.into(),
            health_target,
            health_interval_s: interval,
            health_failures: failures,
            health_timeout_s: timeout,
            health_restart: restart,
            schedule: spec.schedule.clone().unwrap_or_default(),
            enable: spec.enable,
            start: spec.start,
        }
    }

    /// The argv the command line splits into (empty when it cannot be split).
    fn argv(&self) -> Vec<String> {
        split_command_line(&self.command).unwrap_or_default()
    }

    /// The spec, or the fields that cannot even be read (a number that is not one, an
    /// unterminated quote). Every other rule is the domain's.
    fn to_spec(&self) -> Result<UnitSpec, Vec<FieldError>> {
        let mut errors = Vec::new();
        let opt = |s: &str| {
            let t = s.trim();
            (!t.is_empty()).then(|| t.to_string())
        };
        let mut number = |field: &str, text: &str| -> Option<i64> {
            let t = text.trim();
            if t.is_empty() {
                return None;
            }
            match t.parse::<i64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    errors.push(FieldError::new(
                        field,
                        format!("{t:?} is not a whole number"),
                    ));
                    None
                }
            }
        };
        let port = number("port", &self.port);
        let restart_sec = number("restart_sec", &self.restart_sec);
        let interval_s = number("health_interval_s", &self.health_interval_s);
        let failures = number("health_failures", &self.health_failures);
        let timeout_s = number("health", &self.health_timeout_s);
        let health = match self.health_kind.as_str() {
            "http" | "tcp" => {
                let target = self.health_target.trim();
                let (http, tcp) = if self.health_kind == "http" {
                    (Some(target.to_string()), None)
                } else {
                    (None, number("health_target", target).or(Some(0)))
                };
                Some(HealthSpec {
                    http,
                    tcp,
                    interval_s: interval_s
                        .unwrap_or(crate::unitfile::spec::DEFAULT_HEALTH_INTERVAL_S),
                    timeout_s: timeout_s.unwrap_or(crate::unitfile::spec::DEFAULT_HEALTH_TIMEOUT_S),
                    failures: failures.unwrap_or(crate::unitfile::spec::DEFAULT_HEALTH_FAILURES),
                    restart: self.health_restart,
                })
            }
            _ => None,
        };
        let exec_start = match split_command_line(&self.command) {
            Ok(argv) => argv,
            Err(e) => {
                errors.push(FieldError::new("command", format!("cannot be split: {e}")));
                Vec::new()
            }
        };
        let mut environment = BTreeMap::new();
        for (key, value) in &self.env {
            let key = key.trim();
            if key.is_empty() && value.is_empty() {
                continue;
            }
            if environment.insert(key.to_string(), value.clone()).is_some() {
                errors.push(FieldError::new(
                    "environment",
                    format!("{key} is set twice"),
                ));
            }
        }
        let restart = match self.restart.as_str() {
            "no" => Some(RestartPolicy::No),
            "on-failure" => Some(RestartPolicy::OnFailure),
            "always" => Some(RestartPolicy::Always),
            _ => None,
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let list = |s: &str| -> Vec<String> {
            s.split([' ', ',', '\t', '\n'])
                .filter(|w| !w.is_empty())
                .map(String::from)
                .collect()
        };
        Ok(UnitSpec {
            name: self.name.trim().to_string(),
            kind: if self.job {
                UnitKind::Job
            } else {
                UnitKind::Service
            },
            // Kept as typed: validation explains leading/trailing whitespace.
            description: self.description.clone(),
            exec_start,
            working_directory: opt(&self.working_directory),
            user: opt(&self.user),
            group: opt(&self.group),
            environment,
            after: list(&self.after),
            requires: list(&self.requires),
            wants: list(&self.wants),
            restart,
            restart_sec,
            port: if self.job { None } else { port },
            health: if self.job { None } else { health },
            schedule: if self.job { opt(&self.schedule) } else { None },
            enable: self.enable,
            start: self.start,
        })
    }
}

/// Errors by form slot, plus those with no slot.
#[derive(Debug, Default, Clone)]
pub struct Errors {
    by_slot: HashMap<&'static str, String>,
    general: Vec<String>,
}

impl Errors {
    fn from_fields(errors: &[FieldError]) -> Self {
        let mut out = Self::default();
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

    fn general(message: impl Into<String>) -> Self {
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
        ERROR_SLOTS
            .iter()
            .map(|s| (*s, self.get(s).unwrap_or("").to_string()))
            .collect()
    }

    pub fn general_messages(&self) -> &[String] {
        &self.general
    }
}

/// One line of a rendered diff.
pub struct DiffRow {
    pub sign: char,
    /// "add", "del" or "".
    pub class: &'static str,
    pub text: String,
}

/// A revision in the history table.
pub struct RevisionRow {
    pub revision: i64,
    pub created_at: String,
    pub actor: String,
    pub current: bool,
    pub diff: Vec<DiffRow>,
    pub unchanged: bool,
}

/// The live preview beside the form.
#[derive(Template, WebTemplate)]
#[template(path = "unit_form_preview.html")]
pub struct PreviewPane {
    pub argv: Vec<String>,
    pub preview: Option<Preview>,
    pub errors: Errors,
    /// true: also swap the field errors out of band (htmx request).
    pub oob: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "unit_form.html")]
struct FormPage {
    chrome: Chrome,
    /// None: a new unit; Some(service file name): editing it.
    editing: Option<String>,
    action: String,
    primary_href: String,
    f: FormValues,
    errors: Errors,
    /// The preview pane, rendered by its own template (also served alone).
    pane_html: String,
    free_ports: Vec<u16>,
    units: Vec<String>,
    revisions: Vec<RevisionRow>,
    name_q: String,
    /// Said once after a redirect (a rollback saved, but its unit did not start).
    notice: Option<String>,
}

impl FormPage {
    fn render_with(self, status: StatusCode) -> Result<Response, PageError> {
        Ok((status, self).into_response())
    }
}

/// Renders the preview pane for the form's values (the preview has no side effect).
async fn preview_pane(state: &AppState, f: &FormValues, oob: bool) -> PreviewPane {
    let argv = f.argv();
    let (preview, errors) = match f.to_spec() {
        Err(errors) => (None, Errors::from_fields(&errors)),
        Ok(spec) => match state.services.preview_unit_file(&spec).await {
            Ok(p) => {
                let errors = Errors::from_fields(&p.verify.errors);
                (Some(p), errors)
            }
            Err(AppError::Validation(errors)) => (None, Errors::from_fields(&errors)),
            Err(other) => (None, Errors::general(other.to_string())),
        },
    };
    PreviewPane {
        argv,
        preview,
        errors,
        oob,
    }
}

/// Who is looking: environment values are shown to admins only.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Viewer {
    Admin,
    BelowAdmin,
}

impl Viewer {
    fn of(principal: &Principal) -> Self {
        if principal.scope >= Scope::Admin {
            Self::Admin
        } else {
            Self::BelowAdmin
        }
    }
}

/// What the form offers to pick from.
struct FormChoices {
    /// Watched ports nobody listens on and no unit-file spec names.
    free_ports: Vec<u16>,
    /// Every unit systemd knows, for the dependency lists.
    units: Vec<String>,
}

impl FormChoices {
    async fn load(services: &Services) -> Self {
        let free_ports = services
            .port_map("localhost")
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p.watched && p.state == "free" && p.expected_unit.is_none())
            .map(|p| p.port)
            .collect();
        let units = services.all_units().into_iter().map(|u| u.name).collect();
        Self { free_ports, units }
    }
}

async fn page(
    state: &AppState,
    editing: Option<String>,
    f: FormValues,
    errors: Option<Errors>,
    viewer: Viewer,
) -> Result<FormPage, PageError> {
    let choices = FormChoices::load(&state.services).await;
    let pane = preview_pane(state, &f, false).await;
    // Errors from a submit win over the preview's (they are the same checks plus 409s).
    let errors = errors.unwrap_or_else(|| pane.errors.clone());
    let mut revisions = Vec::new();
    if let Some(name) = &editing {
        let (mut detail, mut history) = state.services.unit_file_history(name, HISTORY).await?;
        if viewer == Viewer::BelowAdmin {
            detail = detail.redacted();
            history = history.into_iter().map(|rev| rev.redacted()).collect();
        }
        for rev in history {
            let diff = diff_files(&rev.files, &detail.files);
            revisions.push(RevisionRow {
                revision: rev.info.revision,
                created_at: rev.info.created_at,
                actor: rev.info.actor,
                current: rev.info.revision == detail.revision,
                unchanged: diff.iter().all(|d| d.class.is_empty()),
                diff,
            });
        }
    }
    let primary = if f.job {
        format!("{}.timer", f.name.trim())
    } else {
        format!("{}.service", f.name.trim())
    };
    Ok(FormPage {
        chrome: Chrome::new(if editing.is_some() { "services" } else { "new" }),
        action: match &editing {
            Some(name) => format!("/units/{}/edit", urlencode(name)),
            None => "/units/new".into(),
        },
        name_q: editing.as_deref().map(urlencode).unwrap_or_default(),
        primary_href: format!("/units/{}", urlencode(&primary)),
        editing,
        f,
        errors,
        pane_html: pane
            .render()
            .map_err(|e| PageError::from(AppError::internal(e)))?,
        free_ports: choices.free_ports,
        units: choices.units,
        revisions,
        notice: None,
    })
}

/// Unchanged lines kept around each change in the history diffs.
const DIFF_CONTEXT: usize = 2;

/// The diff from `old` to `new` over every file of both, each headed by its name; runs of
/// unchanged lines farther than [`DIFF_CONTEXT`] from a change are folded into one row.
fn diff_files(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Vec<DiffRow> {
    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    let mut rows = Vec::new();
    for name in names {
        let a = old.get(name).map(String::as_str).unwrap_or("");
        let b = new.get(name).map(String::as_str).unwrap_or("");
        rows.push(DiffRow {
            sign: '#',
            class: "",
            text: format!("── {name} ──"),
        });
        let lines = diff_lines(a, b);
        let changed: Vec<usize> = (0..lines.len())
            .filter(|i| !matches!(lines[*i], DiffLine::Same(_)))
            .collect();
        let near = |i: usize| changed.iter().any(|c| c.abs_diff(i) <= DIFF_CONTEXT);
        let mut folded = 0;
        for (i, line) in lines.iter().enumerate() {
            if !near(i) {
                folded += 1;
                continue;
            }
            if folded > 0 {
                rows.push(fold(folded));
                folded = 0;
            }
            rows.push(DiffRow {
                sign: line.sign(),
                class: match line {
                    DiffLine::Same(_) => "",
                    DiffLine::Removed(_) => "del",
                    DiffLine::Added(_) => "add",
                },
                text: line.text().to_string(),
            });
        }
        if folded > 0 {
            rows.push(fold(folded));
        }
    }
    rows
}

fn fold(lines: usize) -> DiffRow {
    DiffRow {
        sign: '⋯',
        class: "",
        text: format!(
            "{lines} unchanged line{}",
            if lines == 1 { "" } else { "s" }
        ),
    }
}

// --- handlers -----------------------------------------------------------------------------

/// `GET /units/new`.
pub async fn new_page(State(state): State<AppState>) -> Result<Response, PageError> {
    page(
        &state,
        None,
        FormValues::default(),
        Some(Errors::default()),
        Viewer::Admin,
    )
    .await?
    .render_with(StatusCode::OK)
}

/// `POST /units/new`: create (then go to the unit), or re-render for the other buttons.
pub async fn new_submit(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (f, intent) = FormValues::parse(pairs);
    submit(&state, &principal, &headers, None, f, intent).await
}

/// `GET /units/{name}/edit`.
pub async fn edit_page(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let viewer = Viewer::of(&principal);
    let mut detail = state.services.unit_file(&name).await?;
    if viewer == Viewer::BelowAdmin {
        detail = detail.redacted();
    }
    let f = FormValues::from_spec(&detail.spec);
    let mut page = page(
        &state,
        Some(detail.name),
        f,
        Some(Errors::default()),
        viewer,
    )
    .await?;
    let notice = state.notices.take(&headers);
    page.notice = notice.as_ref().map(|(text, _)| text.clone());
    let mut response = page.render_with(StatusCode::OK)?;
    if let Some((_, clear)) = notice {
        response.headers_mut().append(header::SET_COOKIE, clear);
    }
    Ok(response)
}

/// `POST /units/{name}/edit`: save as a new revision (then go to the unit).
pub async fn edit_submit(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let detail = state.services.unit_file(&name).await?;
    let (f, intent) = FormValues::parse(pairs);
    submit(&state, &principal, &headers, Some(detail.name), f, intent).await
}

async fn submit(
    state: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    editing: Option<String>,
    f: FormValues,
    intent: Intent,
) -> Result<Response, PageError> {
    if intent != Intent::Save {
        return page(state, editing, f, None, Viewer::of(principal))
            .await?
            .render_with(StatusCode::OK);
    }
    let spec = match f.to_spec() {
        Ok(spec) => spec,
        Err(errors) => {
            let errors = Errors::from_fields(&errors);
            return page(state, editing, f, Some(errors), Viewer::of(principal))
                .await?
                .render_with(StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    let result = match &editing {
        None => state.services.create_unit_file(principal, spec).await,
        Some(name) => state.services.update_unit_file(principal, name, spec).await,
    };
    match result {
        Ok(applied) => {
            let primary = applied
                .unit
                .as_ref()
                .map_or_else(|| applied.name.clone(), |u| u.name.clone());
            let to = format!("/units/{}", urlencode(&primary));
            Ok(redirect_telling(state, &to, headers, &applied))
        }
        Err(err) => {
            let status = status_of(&err);
            let errors = match &err {
                AppError::Validation(errors) => Errors::from_fields(errors),
                AppError::Conflict(message) => {
                    Errors::from_fields(&[FieldError::new("name", message.clone())])
                }
                other => Errors::general(other.to_string()),
            };
            page(state, editing, f, Some(errors), Viewer::of(principal))
                .await?
                .render_with(status)
        }
    }
}

/// `POST /ui/unit-form/preview`: the preview pane, with field errors out of band.
pub async fn preview_fragment(
    State(state): State<AppState>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<impl IntoResponse, PageError> {
    let (f, _) = FormValues::parse(pairs);
    Ok(preview_pane(&state, &f, true).await)
}

/// `POST /units/{name}/rollback` (`revision=N`): a new revision with N's spec.
pub async fn rollback(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let revision = pairs
        .iter()
        .find(|(k, _)| k == "revision")
        .and_then(|(_, v)| v.parse::<i64>().ok())
        .ok_or_else(|| PageError::from(AppError::BadRequest("which revision?".into())))?;
    let applied = state
        .services
        .rollback_unit_file(&principal, &name, revision)
        .await?;
    let to = format!("/units/{}/edit", urlencode(&applied.name));
    Ok(redirect_telling(&state, &to, &headers, &applied))
}

/// A redirect after a saved change, carrying what failed after the files were in place
/// (enable, start) to the page it leads to, rather than a silent success.
fn redirect_telling(
    state: &AppState,
    to: &str,
    request: &HeaderMap,
    applied: &Applied,
) -> Response {
    let mut response = Redirect::to(to).into_response();
    if !applied.warnings.is_empty() {
        let message = format!(
            "Saved as revision {}, but: {}",
            applied.revision,
            applied.warnings.join("; ")
        );
        state.notices.attach(&mut response, request, &message);
    }
    response
}

/// `POST /units/{name}/delete`: stop, disable, remove; back to the services.
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    state.services.delete_unit_file(&principal, &name).await?;
    Ok(Redirect::to("/").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

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
    }

    #[test]
    fn file_diffs_cover_added_and_removed_files_and_fold_context() {
        let old = BTreeMap::from([
            (
                "a.service".to_string(),
                "1\n2\n3\n4\n5\n6\n7\n8\n".to_string(),
            ),
            ("b.timer".to_string(), "same\n".to_string()),
        ]);
        let new = BTreeMap::from([
            (
                "a.service".to_string(),
                "1\n2\n3\n4\n5\n6\n7\nx\n".to_string(),
            ),
            ("a.timer".to_string(), "t\n".to_string()),
            ("b.timer".to_string(), "same\n".to_string()),
        ]);
        let rows: Vec<String> = diff_files(&old, &new)
            .iter()
            .map(|r| format!("{}{}", r.sign, r.text))
            .collect();
        assert_eq!(
            rows,
            [
                "#── a.service ──",
                "⋯5 unchanged lines",
                " 6",
                " 7",
                "-8",
                "+x",
                "#── a.timer ──",
                "+t",
                "#── b.timer ──",
                "⋯1 unchanged line",
            ]
        );
    }
}
