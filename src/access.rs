//! Logging in and out, and API tokens: the domain calls behind the session and
//! token routes and pages. Every change is audited before the answer goes out.

use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{Busy, Credential, Principal, Scope, new_secret, secret_hash};
use crate::db::{AuditEntry, Db, TokenInfo};
use crate::error::{AppError, AppResult, FieldError};
use crate::state::AppState;

pub const SESSION_TTL: Duration = Duration::from_secs(14 * 24 * 3600);
const MAX_TOKEN_NAME: usize = 100;

/// A token as shown once, at creation.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewToken {
    #[serde(flatten)]
    pub info: TokenInfo,
    /// The secret: shown only here; only its hash is stored.
    pub token: String,
}

impl AppState {
    pub async fn audit(&self, entry: AuditEntry<'_>) -> AppResult<()> {
        self.db.audit(entry).await?;
        Ok(())
    }

    /// Checks the password and opens a new session; returns the cookie value.
    /// `previous` is the session the browser already had: it is ended, so the
    /// id always rotates on login.
    pub async fn login(
        &self,
        password: String,
        client: IpAddr,
        previous: Option<String>,
    ) -> AppResult<String> {
        let attempt = match self.login_limiter.admit(client) {
            Ok(attempt) => attempt,
            Err(refusal) => {
                // One record per client and minute: a flood of refused guesses costs
                // nothing and must not fill the log.
                if refusal.first {
                    self.audit(AuditEntry {
                        actor: &client.to_string(),
                        action: "login",
                        target: None,
                        result: "rate-limited",
                        detail: Some("too many attempts from this address"),
                    })
                    .await?;
                }
                return Err(AppError::TooManyRequests {
                    retry_after: refusal.retry_after,
                });
            }
        };
        attempt.pace().await;
        match self.password.verify(password, attempt.lane()).await {
            // Not checked: the attempt frees its place.
            Err(Busy) => return Err(AppError::TooManyRequests { retry_after: 1 }),
            Ok(false) => {
                attempt.failed();
                self.audit(AuditEntry {
                    actor: &client.to_string(),
                    action: "login",
                    target: None,
                    result: "failed",
                    detail: Some("wrong password"),
                })
                .await?;
                return Err(AppError::Unauthorized);
            }
            Ok(true) => attempt.succeeded(),
        }
        let session = new_secret("");
        let from = format!("from {client}");
        self.db
            .create_session(
                &secret_hash(&session),
                previous.as_deref(),
                SESSION_TTL,
                &AuditEntry {
                    actor: "admin",
                    action: "login",
                    target: None,
                    result: "ok",
                    detail: Some(&from),
                },
            )
            .await?;
        Ok(session)
    }

    pub async fn logout(&self, principal: &Principal) -> AppResult<()> {
        let session = match &principal.credential {
            Credential::Session(hash) => Some(hash.as_str()),
            _ => None,
        };
        let audit = AuditEntry {
            actor: &principal.actor,
            action: "logout",
            target: None,
            result: "ok",
            detail: None,
        };
        Ok(self.db.end_session(session, &audit).await?)
    }

    /// Ends every session, the caller's too (tokens stay valid).
    pub async fn logout_everywhere(&self, principal: &Principal) -> AppResult<u64> {
        let audit = AuditEntry {
            actor: &principal.actor,
            action: "session.end-all",
            target: None,
            result: "ok",
            detail: Some("log out everywhere"),
        };
        Ok(self.db.end_all_sessions(&audit, None).await?)
    }

    pub async fn create_token(
        &self,
        principal: &Principal,
        name: &str,
        scope: Scope,
    ) -> AppResult<NewToken> {
        issue_token(&self.db, &principal.actor, name, scope).await
    }

    pub async fn revoke_token(&self, principal: &Principal, id: i64) -> AppResult<()> {
        // The deletion and its audit row are written together.
        self.db
            .delete_token(id, &principal.actor)
            .await?
            .map(|_| ())
            .ok_or_else(|| AppError::NotFound(format!("no token with id {id}")))
    }
}

/// Creates a token and audits it (in one transaction); shared by the API and `unitdeck
/// token create`.
pub async fn issue_token(db: &Db, actor: &str, name: &str, scope: Scope) -> AppResult<NewToken> {
    // Checked as sent (the OpenAPI document's maxLength and pattern), stored trimmed.
    let bad = name.chars().count() > MAX_TOKEN_NAME || name.chars().any(char::is_control);
    let name = name.trim();
    if bad || name.is_empty() {
        return Err(AppError::Validation(vec![FieldError::new(
            "name",
            format!("1 to {MAX_TOKEN_NAME} printable characters"),
        )]));
    }
    let token = new_secret("ud_");
    // The token and its audit row are written together.
    let info = db
        .create_token(name, scope, &secret_hash(&token), actor)
        .await?;
    Ok(NewToken { info, token })
}
