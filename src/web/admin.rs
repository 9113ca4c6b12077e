//! `/settings` (API tokens, logout) and `/audit` (the audit log). Handlers stay
//! thin: the token calls are the same domain functions the JSON API uses.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::notifications::NotificationsSection;
use super::pages::{Chrome, with_toast};
use crate::auth::{Principal, Scope};
use crate::error::AppError;
use crate::http::base::redirect;
use crate::http::problem::PageError;
use crate::service::NewToken;
use crate::service::{AuditRecord, Token};
use crate::state::AppState;

/// Audit records per page.
const AUDIT_PAGE: u32 = 50;

// --- settings: API tokens ---------------------------------------------------------

#[derive(Template, WebTemplate)]
#[template(path = "settings.html")]
pub(super) struct SettingsPage {
    chrome: Chrome,
    tokens: Vec<Token>,
    /// A token just created: its secret is shown this once.
    created: Option<NewToken>,
    /// The create form as typed (kept when it is re-shown with an error).
    name: String,
    scope: String,
    name_error: Option<String>,
    scope_error: Option<String>,
    /// The TLS certificate's SHA-256, when unitdeck serves HTTPS.
    tls_fingerprint: Option<String>,
    pub(super) notifications: NotificationsSection,
}

impl SettingsPage {
    pub(super) async fn load(state: &AppState, principal: &Principal) -> Result<Self, PageError> {
        Ok(Self {
            notifications: NotificationsSection::load(state, principal).await?,
            chrome: Chrome::new("settings"),
            tokens: state.services.list_tokens().await?,
            created: None,
            name: String::new(),
            scope: Scope::Read.as_str().to_string(),
            name_error: None,
            scope_error: None,
            tls_fingerprint: state.tls_fingerprint.as_deref().map(str::to_string),
        })
    }

    fn scopes(&self) -> [(&'static str, &'static str); 3] {
        [
            ("read", "read: every GET"),
            ("operate", "operate: read + start, stop, restart…"),
            ("admin", "admin: everything"),
        ]
    }
}

pub async fn settings(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Response, PageError> {
    Ok(SettingsPage::load(&state, &principal)
        .await?
        .into_response())
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    scope: String,
}

/// Creates a token and shows the page with its secret (never in a URL, never again).
/// A bad name or scope re-shows the form with the error (422, swapped by htmx).
pub async fn create_token(
    State(state): State<AppState>,
    principal: Principal,
    Form(form): Form<TokenForm>,
) -> Result<Response, PageError> {
    let mut page = SettingsPage::load(&state, &principal).await?;
    page.name = form.name.clone();
    page.scope = form.scope.clone();
    let scope = match form.scope.parse::<Scope>() {
        Ok(scope) => scope,
        Err(message) => {
            page.scope_error = Some(message);
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    match state
        .services
        .create_token(&principal, &form.name, scope)
        .await
    {
        Ok(token) => {
            let message = format!("Token {} created: copy it now", token.info.name);
            page.tokens = state.services.list_tokens().await?;
            page.created = Some(token);
            page.name.clear();
            Ok(with_toast(page.into_response(), true, &message))
        }
        Err(AppError::Validation(errors)) => {
            for e in errors {
                match e.field.as_str() {
                    "scope" => page.scope_error = Some(e.message),
                    _ => page.name_error = Some(e.message),
                }
            }
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(other) => Err(other.into()),
    }
}

/// Revokes a token. htmx gets the page back with a toast; a plain form post is
/// redirected to `/settings`.
pub async fn revoke_token(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    state.services.revoke_token(&principal, id).await?;
    if headers.contains_key("hx-request") {
        let page = SettingsPage::load(&state, &principal).await?;
        Ok(with_toast(page.into_response(), true, "Token revoked"))
    } else {
        Ok(redirect("/settings").into_response())
    }
}

// --- audit ------------------------------------------------------------------------

#[derive(Template, WebTemplate)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    records: Vec<AuditRow>,
    /// `before=` for the next (older) page, when there is one.
    older: Option<i64>,
    /// This is not the newest page.
    paged: bool,
}

struct AuditRow {
    r: AuditRecord,
    /// The badge colour: active (went through), failed (refused / failed), inactive (other).
    tone: &'static str,
}

fn tone(result: &str) -> &'static str {
    match result {
        "ok" | "done" | "queued" => "active",
        "failed" | "refused" | "forbidden" | "error" | "rate-limited" | "timeout"
        | "interrupted" => "failed",
        _ => "inactive",
    }
}

#[derive(Deserialize)]
pub struct AuditQuery {
    before: Option<i64>,
}

pub async fn audit(
    State(state): State<AppState>,
    Query(q): Query<AuditQuery>,
) -> Result<Response, PageError> {
    // One more than a page: tells whether an older page exists.
    let mut records = state.services.audit_log(AUDIT_PAGE + 1, q.before).await?;
    let more = records.len() > AUDIT_PAGE as usize;
    records.truncate(AUDIT_PAGE as usize);
    let older = more.then(|| records.last().map(|r| r.id)).flatten();
    Ok(AuditPage {
        chrome: Chrome::new("audit"),
        records: records
            .into_iter()
            .map(|r| AuditRow {
                tone: tone(&r.result),
                r,
            })
            .collect(),
        older,
        paged: q.before.is_some(),
    }
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_get_a_tone() {
        assert_eq!(tone("ok"), "active");
        assert_eq!(tone("refused"), "failed");
        assert_eq!(tone("interrupted"), "failed");
        assert_eq!(tone("not-found"), "inactive");
    }
}
