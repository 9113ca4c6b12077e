//! Who is calling, logging in and out, API tokens and the audit log: the domain calls
//! behind the auth gate, the session and token routes and pages. Every change is audited
//! before the answer goes out.

use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{Busy, Credential, Principal, Scope, new_secret, secret_hash};
use crate::db::{AuditEntry, AuditRow, Db, TokenRow};
use crate::error::{AppError, AppResult, FieldError};
use crate::service::Services;

pub const SESSION_TTL: Duration = Duration::from_secs(14 * 24 * 3600);
const MAX_TOKEN_NAME: usize = 100;

/// An API token as listed: never its secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Token {
    pub id: i64,
    pub name: String,
    pub scope: Scope,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

impl From<TokenRow> for Token {
    fn from(row: TokenRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            scope: row.scope,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
        }
    }
}

/// One record of the audit log.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditRecord {
    pub id: i64,
    pub time: String,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    /// `ok`, `done`, `queued`, `failed`, `refused`, `forbidden`, `not-found`, `error`,
    /// `rate-limited`, `timeout`, ... A unit action is written as `pending` before it runs
    /// and given its outcome after; one a stopped or crashed unitdeck never saw finish
    /// reads `interrupted`.
    pub result: String,
    pub detail: Option<String>,
}

impl From<AuditRow> for AuditRecord {
    fn from(row: AuditRow) -> Self {
        Self {
            id: row.id,
            time: row.time,
            actor: row.actor,
            action: row.action,
            target: row.target,
            result: row.result,
            detail: row.detail,
        }
    }
}

/// A token as shown once, at creation.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewToken {
    #[serde(flatten)]
    pub info: Token,
    /// The secret: shown only here; only its hash is stored.
    pub token: String,
}

impl Services {
    pub async fn audit(&self, entry: AuditEntry<'_>) -> AppResult<()> {
        self.db.audit(entry).await?;
        Ok(())
    }

    /// The audit log, newest first: at most `limit` records, with ids below `before`.
    pub async fn audit_log(&self, limit: u32, before: Option<i64>) -> AppResult<Vec<AuditRecord>> {
        Ok(self
            .db
            .audit_page(limit, before)
            .await?
            .into_iter()
            .map(AuditRecord::from)
            .collect())
    }

    /// Who a bearer token stands for; an unknown or revoked one is `Unauthorized`.
    pub async fn token_principal(&self, secret: &str) -> AppResult<Principal> {
        let token = self
            .db
            .find_token(&secret_hash(secret))
            .await?
            .ok_or(AppError::Unauthorized)?;
        Ok(Principal {
            // The id as well: names need not be unique, and a revoked name can come back.
            actor: format!("token:{} ({})", token.id, token.name),
            scope: token.scope,
            credential: Credential::Token(token.id),
        })
    }

    /// Who a session cookie stands for (its id's hash), or None: unknown, expired, or idle
    /// too long. Sessions opened under a password that has changed since are ended first.
    pub async fn session_principal(&self, session_hash: &str) -> AppResult<Option<Principal>> {
        self.password
            .ready()
            .await
            .map_err(|e| AppError::Internal(format!("cannot settle the login password: {e}")))?;
        let valid = self
            .db
            .session_is_valid(session_hash, self.config.session_idle)
            .await?;
        Ok(valid.then(|| Principal {
            actor: "admin".to_string(),
            scope: Scope::Admin,
            credential: Credential::Session(session_hash.to_string()),
        }))
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

    pub async fn list_tokens(&self) -> AppResult<Vec<Token>> {
        Ok(self
            .db
            .list_tokens()
            .await?
            .into_iter()
            .map(Token::from)
            .collect())
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
        .await?
        .into();
    Ok(NewToken { info, token })
}
