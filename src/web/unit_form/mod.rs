//! The form that adds or edits a unit file (`/units/new`, `/units/{name}/edit`), its live
//! preview fragment, and the revision history with diffs and one-click rollback.
//!
//! It works without JavaScript: every button is a plain form submit and the server
//! re-renders the page (adding or removing an environment row, previewing, creating).
//! With htmx, the preview beside the form follows typing (`input changed delay:400ms`),
//! and field errors are swapped out of band next to their fields.

use std::collections::BTreeMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

mod fields;
mod overrides;

use fields::{Errors, FormValues, Intent};
pub use overrides::{
    override_page, override_preview, override_remove, override_rollback, override_submit,
};

use super::pages::{Chrome, with_notice};
use crate::auth::{Principal, Scope};
use crate::error::{AppError, FieldError};
use crate::http::base::redirect;
use crate::http::problem::{PageError, status_of};
use crate::http::urlencode;
use crate::service::Services;
use crate::service::unit_files::{Applied, Preview};
use crate::state::AppState;
use crate::unitfile::diff::{DiffLine, diff_lines};

/// Revisions shown (with their diffs) on the edit page.
const HISTORY: usize = 20;

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
    /// An override's removal (a unit file's revisions never are).
    pub removed: bool,
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
    rollback_action: String,
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
                removed: false,
                unchanged: diff.iter().all(|d| d.class.is_empty()),
                diff,
            });
        }
    }
    let name = f.get("name").trim();
    let primary = if f.is_job() {
        format!("{name}.timer")
    } else {
        format!("{name}.service")
    };
    Ok(FormPage {
        chrome: Chrome::new(if editing.is_some() { "services" } else { "new" }),
        action: match &editing {
            Some(name) => format!("units/{}/edit", urlencode(name)),
            None => "units/new".into(),
        },
        name_q: editing.as_deref().map(urlencode).unwrap_or_default(),
        rollback_action: editing
            .as_deref()
            .map(|n| format!("units/{}/rollback", urlencode(n)))
            .unwrap_or_default(),
        primary_href: format!("units/{}", urlencode(&primary)),
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
    let page = page(
        &state,
        Some(detail.name),
        f,
        Some(Errors::default()),
        viewer,
    )
    .await?;
    Ok(with_notice(&state, &headers, |notice| {
        FormPage { notice, ..page }.into_response()
    }))
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
    let revision = revision_of(&pairs)?;
    let applied = state
        .services
        .rollback_unit_file(&principal, &name, revision)
        .await?;
    let to = format!("/units/{}/edit", urlencode(&applied.name));
    Ok(redirect_telling(&state, &to, &headers, &applied))
}

/// The `revision` a rollback form names.
fn revision_of(pairs: &[(String, String)]) -> Result<i64, PageError> {
    pairs
        .iter()
        .find(|(k, _)| k == "revision")
        .and_then(|(_, v)| v.parse::<i64>().ok())
        .ok_or_else(|| PageError::from(AppError::BadRequest("which revision?".into())))
}

/// A redirect after a saved change, carrying what failed after the files were in place
/// (enable, start) to the page it leads to, rather than a silent success.
fn redirect_telling(
    state: &AppState,
    to: &str,
    request: &HeaderMap,
    applied: &Applied,
) -> Response {
    let mut response = redirect(to).into_response();
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
    Ok(redirect("/").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

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
