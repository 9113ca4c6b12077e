//! The override page (`/units/{name}/override`): a form for the common settings of a unit
//! unitdeck did not create plus raw lines, its live preview (the drop-in, what changes in
//! the unit's settings, systemd's verdict), the revisions with diffs and rollback, and
//! "remove the override". Like the unit form it works without JavaScript (every button
//! submits), and with htmx the preview follows typing.

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::fields::{Errors, Intent, number, optional, words};
use super::{DiffRow, RevisionRow, Viewer, diff_files};
use crate::auth::Principal;
use crate::error::{AppError, FieldError};
use crate::http::base::redirect;
use crate::http::problem::{PageError, status_of};
use crate::http::urlencode;
use crate::service::overrides::{OverrideApplied, OverridePreview, OverrideState};
use crate::state::AppState;
use crate::unitfile::dropin::{DROP_IN_NAME, OverrideSpec, Restart};
use crate::unitfile::shell::{shell_quote_argv, split_command_line};
use crate::web::pages::{Chrome, with_notice};
use crate::web::view::UnitView;

/// One input of the override form.
struct Field {
    /// Input name, element id and error slot.
    name: &'static str,
    /// The spec field whose errors show here.
    spec_field: &'static str,
    show: fn(&OverrideSpec) -> String,
    /// Puts the typed text into the spec; `Err`: it cannot even be read.
    read: fn(&str, &mut OverrideSpec) -> Result<(), String>,
}

/// An optional text setting, its input named as the spec field.
macro_rules! text_field {
    ($name:ident) => {
        Field {
            name: stringify!($name),
            spec_field: stringify!($name),
            show: |s| s.$name.clone().unwrap_or_default(),
            read: |t, s| {
                s.$name = optional(t);
                Ok(())
            },
        }
    };
}

/// A list of unit names, typed separated by spaces.
macro_rules! units_field {
    ($name:ident) => {
        Field {
            name: stringify!($name),
            spec_field: stringify!($name),
            show: |s| s.$name.join(" "),
            read: |t, s| {
                s.$name = words(t);
                Ok(())
            },
        }
    };
}

const FIELDS: &[Field] = &[
    Field {
        name: "restart",
        spec_field: "restart",
        show: |s| {
            s.restart
                .map(|r| r.as_systemd().to_string())
                .unwrap_or_default()
        },
        read: |t, s| {
            s.restart = Restart::ALL.into_iter().find(|r| r.as_systemd() == t);
            match (&s.restart, t) {
                (None, t) if !t.is_empty() => Err(format!("{t:?} is not a restart policy")),
                _ => Ok(()),
            }
        },
    },
    text_field!(restart_sec),
    text_field!(timeout_stop_sec),
    text_field!(memory_max),
    text_field!(cpu_quota),
    Field {
        name: "nice",
        spec_field: "nice",
        show: |s| s.nice.map(|n| n.to_string()).unwrap_or_default(),
        read: |t, s| {
            s.nice = number(t)?;
            Ok(())
        },
    },
    units_field!(after),
    units_field!(wants),
    Field {
        name: "command",
        spec_field: "exec_start",
        show: |s| {
            s.exec_start
                .as_deref()
                .map(shell_quote_argv)
                .unwrap_or_default()
        },
        read: |t, s| {
            let argv = split_command_line(t).map_err(|e| format!("cannot be split: {e}"))?;
            s.exec_start = (!argv.is_empty()).then_some(argv);
            Ok(())
        },
    },
    Field {
        name: "raw",
        spec_field: "raw",
        show: |s| s.raw.clone(),
        // Browsers send a textarea's lines with CR LF.
        read: |t, s| {
            s.raw = t.replace("\r\n", "\n");
            Ok(())
        },
    },
];

/// The environment rows' error slot (and spec field).
const ENVIRONMENT: &str = "environment";

fn slots() -> Vec<&'static str> {
    FIELDS.iter().map(|f| f.name).chain([ENVIRONMENT]).collect()
}

fn slot_of(field: &str) -> Option<&'static str> {
    if field == ENVIRONMENT {
        return Some(ENVIRONMENT);
    }
    FIELDS
        .iter()
        .find(|f| f.name == field || f.spec_field == field)
        .map(|f| f.name)
}

fn errors_of(errors: &[FieldError]) -> Errors {
    Errors::placed(errors, slots(), slot_of)
}

/// One environment row: set a value, or remove the variable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvRow {
    pub key: String,
    pub value: String,
    pub unset: bool,
}

/// The form's values as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideValues {
    values: HashMap<&'static str, String>,
    pub env: Vec<EnvRow>,
}

impl Default for OverrideValues {
    fn default() -> Self {
        Self::from_spec(&OverrideSpec::default())
    }
}

impl OverrideValues {
    /// A field's value ("" for one not on the form).
    pub fn get(&self, name: &str) -> &str {
        self.values.get(name).map_or("", String::as_str)
    }

    /// The restart policies to pick from.
    pub fn restart_choices(&self) -> Vec<&'static str> {
        Restart::ALL.iter().map(|r| r.as_systemd()).collect()
    }

    fn parse(pairs: Vec<(String, String)>) -> (Self, Intent) {
        let mut values: HashMap<&'static str, String> =
            FIELDS.iter().map(|f| (f.name, String::new())).collect();
        let mut intent = Intent::Save;
        let (mut keys, mut texts, mut ops) = (Vec::new(), Vec::new(), Vec::new());
        for (key, value) in pairs {
            match key.as_str() {
                "env_key" => keys.push(value),
                "env_value" => texts.push(value),
                "env_op" => ops.push(value == "unset"),
                "action" => intent = Intent::of(&value),
                other => {
                    if let Some(field) = FIELDS.iter().find(|f| f.name == other) {
                        values.insert(field.name, value);
                    }
                }
            }
        }
        let rows = keys.len().max(texts.len()).max(ops.len());
        let env = (0..rows)
            .map(|i| EnvRow {
                key: keys.get(i).cloned().unwrap_or_default(),
                value: texts.get(i).cloned().unwrap_or_default(),
                unset: ops.get(i).copied().unwrap_or(false),
            })
            .collect();
        (
            Self {
                values,
                env: intent.applied_to(env),
            },
            intent,
        )
    }

    fn from_spec(spec: &OverrideSpec) -> Self {
        let env = spec
            .environment
            .iter()
            .map(|(key, value)| EnvRow {
                key: key.clone(),
                value: value.clone().unwrap_or_default(),
                unset: value.is_none(),
            })
            .collect();
        Self {
            values: FIELDS.iter().map(|f| (f.name, (f.show)(spec))).collect(),
            env: Intent::Save.applied_to(env),
        }
    }

    /// Nothing typed: a unit without an override.
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The spec, or the fields that cannot even be read.
    fn to_spec(&self) -> Result<OverrideSpec, Vec<FieldError>> {
        let mut spec = OverrideSpec::default();
        let mut errors = Vec::new();
        for field in FIELDS {
            if let Err(message) = (field.read)(self.get(field.name), &mut spec) {
                errors.push(FieldError::new(field.name, message));
            }
        }
        for row in &self.env {
            let key = row.key.trim();
            if key.is_empty() && row.value.is_empty() {
                continue;
            }
            let value = (!row.unset).then(|| row.value.clone());
            if spec.environment.insert(key.to_string(), value).is_some() {
                errors.push(FieldError::new(
                    ENVIRONMENT,
                    format!("{key} is there twice"),
                ));
            }
        }
        if errors.is_empty() {
            Ok(spec)
        } else {
            Err(errors)
        }
    }
}

/// The live preview beside the form.
#[derive(Template, WebTemplate)]
#[template(path = "override_preview.html")]
pub struct OverridePane {
    preview: Option<OverridePreview>,
    /// The unit's settings, before against after.
    changes: Vec<DiffRow>,
    errors: Errors,
    /// Nothing typed yet.
    blank: bool,
    /// true: also swap the field errors out of band (htmx request).
    oob: bool,
}

async fn override_pane(
    state: &AppState,
    unit: &str,
    f: &OverrideValues,
    oob: bool,
) -> OverridePane {
    let blank = f.is_empty();
    let (preview, errors) = if blank {
        (None, errors_of(&[]))
    } else {
        match f.to_spec() {
            Err(errors) => (None, errors_of(&errors)),
            Ok(spec) => match state.services.preview_override(unit, &spec).await {
                Ok(p) => {
                    let errors = errors_of(&p.verify.errors);
                    (Some(p), errors)
                }
                Err(AppError::Validation(errors)) => (None, errors_of(&errors)),
                Err(other) => (
                    None,
                    errors_of(&[FieldError::new("override", other.to_string())]),
                ),
            },
        }
    };
    let changes = preview.as_ref().map_or_else(Vec::new, |p| {
        let settings = |text: &str| BTreeMap::from([(unit.to_string(), text.to_string())]);
        diff_files(
            &settings(&p.effective.before),
            &settings(&p.effective.after),
        )
    });
    OverridePane {
        preview,
        changes,
        errors,
        blank,
        oob,
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "override_form.html")]
struct OverridePage {
    chrome: Chrome,
    u: UnitView,
    name_q: String,
    path: String,
    /// An override is in place.
    active: bool,
    restart_needed: bool,
    f: OverrideValues,
    errors: Errors,
    pane_html: String,
    units: Vec<String>,
    revisions: Vec<RevisionRow>,
    rollback_action: String,
    notice: Option<String>,
}

async fn page(
    state: &AppState,
    current: OverrideState,
    f: OverrideValues,
    errors: Option<Errors>,
) -> Result<OverridePage, PageError> {
    let summary = state.services.unit_summary(&current.unit).await?;
    let pane = override_pane(state, &current.unit, &f, false).await;
    let errors = errors.unwrap_or_else(|| pane.errors.clone());
    let now = current.text.clone().unwrap_or_default();
    let file = |text: Option<&str>| {
        BTreeMap::from([(
            DROP_IN_NAME.to_string(),
            text.unwrap_or_default().to_string(),
        )])
    };
    let revisions = current
        .revisions
        .iter()
        .map(|r| {
            let diff = diff_files(&file(r.text.as_deref()), &file(Some(&now)));
            RevisionRow {
                revision: r.revision,
                created_at: r.created_at.clone(),
                actor: r.actor.clone(),
                removed: r.removed,
                current: Some(r.revision) == current.revision,
                unchanged: diff.iter().all(|d| d.class.is_empty()),
                diff,
            }
        })
        .collect();
    Ok(OverridePage {
        chrome: Chrome::new("services"),
        u: UnitView::of(&state.services, &summary),
        name_q: urlencode(&current.unit),
        rollback_action: format!("units/{}/override/rollback", urlencode(&current.unit)),
        path: current.path,
        active: current.settings.is_some(),
        restart_needed: current.restart_needed,
        f,
        errors,
        pane_html: pane
            .render()
            .map_err(|e| PageError::from(AppError::internal(e)))?,
        units: state
            .services
            .all_units()
            .into_iter()
            .map(|u| u.name)
            .collect(),
        revisions,
        notice: None,
    })
}

/// The override as the viewer may see it (values hidden below admin).
async fn current(
    state: &AppState,
    principal: &Principal,
    name: &str,
) -> Result<OverrideState, PageError> {
    let current = state.services.override_state(name).await?;
    Ok(match Viewer::of(principal) {
        Viewer::Admin => current,
        Viewer::BelowAdmin => current.redacted(),
    })
}

fn render(
    page: OverridePage,
    status: StatusCode,
    headers: &HeaderMap,
    state: &AppState,
) -> Response {
    with_notice(state, headers, |notice| {
        (status, OverridePage { notice, ..page }).into_response()
    })
}

/// `GET /units/{name}/override`. A unit that may not be overridden gets the error page
/// (409) instead of a form.
pub async fn override_page(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let current = current(&state, &principal, &name).await?;
    let f = current
        .settings
        .as_ref()
        .map(OverrideValues::from_spec)
        .unwrap_or_default();
    let page = page(&state, current, f, Some(errors_of(&[]))).await?;
    Ok(render(page, StatusCode::OK, &headers, &state))
}

/// `POST /units/{name}/override`: save (then back to this page, saying what applies
/// when), or re-render for the other buttons.
pub async fn override_submit(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (f, intent) = OverrideValues::parse(pairs);
    let current = current(&state, &principal, &name).await?;
    if intent != Intent::Save {
        let page = page(&state, current, f, None).await?;
        return Ok(render(page, StatusCode::OK, &headers, &state));
    }
    let saved = match f.to_spec() {
        Ok(spec) => state.services.save_override(&principal, &name, spec).await,
        Err(errors) => Err(AppError::Validation(errors)),
    };
    match saved {
        Ok(applied) => Ok(saved_redirect(&state, &headers, &applied, "Saved")),
        Err(err) => {
            let errors = match &err {
                AppError::Validation(errors) => errors_of(errors),
                other => errors_of(&[FieldError::new("override", other.to_string())]),
            };
            let page = page(&state, current, f, Some(errors)).await?;
            Ok(render(page, status_of(&err), &headers, &state))
        }
    }
}

/// Back to the override page, saying what was done and whether a restart applies it.
fn saved_redirect(
    state: &AppState,
    headers: &HeaderMap,
    applied: &OverrideApplied,
    done: &str,
) -> Response {
    let to = format!("/units/{}/override", urlencode(&applied.unit));
    let mut response = redirect(&to).into_response();
    // A needed restart is said by the page itself, with its button.
    let applies = if applied.changed.is_empty() {
        " Nothing changes in the unit's settings."
    } else if applied.restart_needed {
        ""
    } else {
        " systemd applied it on the reload; no restart needed."
    };
    let message = format!("{done} as revision {}.{applies}", applied.revision);
    state.notices.attach(&mut response, headers, &message);
    response
}

/// `POST /units/{name}/override/preview`: the preview pane, with field errors out of band.
pub async fn override_preview(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<impl IntoResponse, PageError> {
    let (f, _) = OverrideValues::parse(pairs);
    Ok(override_pane(&state, &name, &f, true).await)
}

/// `POST /units/{name}/override/remove`: back to the unit's own settings.
pub async fn override_remove(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    let applied = state.services.remove_override(&principal, &name).await?;
    Ok(saved_redirect(&state, &headers, &applied, "Removed"))
}

/// `POST /units/{name}/override/rollback` (`revision=N`).
pub async fn override_rollback(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let revision = super::revision_of(&pairs)?;
    let applied = state
        .services
        .rollback_override(&principal, &name, revision)
        .await?;
    let done = format!("Rolled back to revision {revision}, saved");
    Ok(saved_redirect(&state, &headers, &applied, &done))
}

#[cfg(test)]
mod tests {
    use super::super::fields::pairs;
    use super::*;

    #[test]
    fn the_form_reads_into_a_spec_and_shows_it_again() {
        let (f, intent) = OverrideValues::parse(pairs(&[
            ("env_key", "GREETING"),
            ("env_value", "hello 100%"),
            ("env_op", "set"),
            ("env_key", "PASSWORD"),
            ("env_value", ""),
            ("env_op", "unset"),
            ("restart", "on-abnormal"),
            ("memory_max", " 512M "),
            ("nice", "-5"),
            ("wants", "a.service, b.service"),
            (
                "command",
                "/usr/bin/code-server --bind-addr '127.0.0.1:4035'",
            ),
            ("raw", "[Service]\r\nLimitNOFILE=1024\r\n"),
        ]));
        assert_eq!(intent, Intent::Save);
        let spec = f.to_spec().unwrap();
        assert_eq!(spec.environment["GREETING"].as_deref(), Some("hello 100%"));
        assert_eq!(spec.environment["PASSWORD"], None);
        assert_eq!(spec.restart, Some(Restart::OnAbnormal));
        assert_eq!(spec.memory_max.as_deref(), Some("512M"));
        assert_eq!(spec.nice, Some(-5));
        assert_eq!(spec.wants, ["a.service", "b.service"]);
        assert_eq!(
            spec.exec_start.as_deref().unwrap(),
            ["/usr/bin/code-server", "--bind-addr", "127.0.0.1:4035"]
        );
        assert_eq!(spec.raw, "[Service]\nLimitNOFILE=1024\n");
        assert_eq!(OverrideValues::from_spec(&spec).to_spec().unwrap(), spec);
        assert!(OverrideValues::default().is_empty());
        assert!(!OverrideValues::from_spec(&spec).is_empty());
    }

    #[test]
    fn unreadable_fields_are_errors_of_their_own_slot() {
        let (f, _) = OverrideValues::parse(pairs(&[
            ("restart", "sometimes"),
            ("nice", "high"),
            ("command", "/bin/a 'open"),
            ("env_key", "A"),
            ("env_value", "1"),
            ("env_key", "A"),
            ("env_value", "2"),
        ]));
        let errors = errors_of(&f.to_spec().unwrap_err());
        for slot in ["restart", "nice", "command", "environment"] {
            assert!(errors.get(slot).is_some(), "{slot}");
        }
        let errors = errors_of(&[
            FieldError::new("exec_start", "a"),
            FieldError::new("override", "b"),
        ]);
        assert_eq!(errors.get("command"), Some("a"));
        assert_eq!(errors.general_messages(), ["override: b"]);
        // Every slot has its error line in the page, and only those.
        let page = include_str!("../../../templates/override_form.html");
        let mut want: Vec<String> = slots().into_iter().map(str::to_string).collect();
        want.sort();
        assert_eq!(super::super::fields::error_line_slots(page), want);
    }

    #[test]
    fn rows_are_added_and_removed() {
        let (f, intent) = OverrideValues::parse(pairs(&[
            ("env_key", "A"),
            ("env_value", "1"),
            ("env_op", "set"),
            ("action", "add-env"),
        ]));
        assert_eq!(intent, Intent::AddEnv);
        assert_eq!(f.env.len(), 2);
        let (f, _) = OverrideValues::parse(pairs(&[
            ("env_key", "A"),
            ("env_value", "1"),
            ("env_op", "unset"),
            ("action", "remove-env-0"),
        ]));
        assert_eq!(f.env, [EnvRow::default()]);
    }
}
