//! Who is asking and what they may do: the login password, API token and session
//! secrets, scopes, and the login brake. The gate that applies them to each request is
//! `http::gate`.

mod password;
mod ratelimit;

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

pub use password::{Busy, PasswordVerifier, hash_password};
pub use ratelimit::{Lane, LoginLimiter};

/// What a credential may do. Ordered: each scope includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Every GET.
    Read,
    /// Read plus unit actions.
    Operate,
    /// Everything.
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Operate => "operate",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read" => Ok(Self::Read),
            "operate" => Ok(Self::Operate),
            "admin" => Ok(Self::Admin),
            other => Err(format!(
                "unknown scope {other:?}: use read, operate or admin"
            )),
        }
    }
}

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A login session; holds the SHA-256 of its id.
    Session(String),
    /// An API token; holds its id.
    Token(i64),
    /// unitdeck acting on its own (health-check restarts).
    Internal,
}

/// The authenticated caller, put into request extensions by the middleware.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The name written to the audit log.
    pub actor: String,
    pub scope: Scope,
    pub credential: Credential,
}

impl Principal {
    pub fn is_session(&self) -> bool {
        matches!(self.credential, Credential::Session(_))
    }
}

/// A new random secret: 32 bytes, URL-safe base64, with a prefix naming its kind.
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The form in which sessions and tokens are stored: SHA-256, hex. The secrets
/// are 256 random bits, so a fast hash is enough (no dictionary to attack).
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_ordered_and_parse() {
        assert!(Scope::Read < Scope::Operate && Scope::Operate < Scope::Admin);
        for s in [Scope::Read, Scope::Operate, Scope::Admin] {
            assert_eq!(s.as_str().parse::<Scope>(), Ok(s));
        }
        assert!("root".parse::<Scope>().is_err());
    }

    #[test]
    fn secrets_are_random_and_hashed() {
        let a = new_secret("ud_");
        let b = new_secret("ud_");
        assert_ne!(a, b);
        assert!(a.starts_with("ud_") && a.len() == 3 + 43);
        assert_eq!(secret_hash(&a).len(), 64);
        assert_ne!(secret_hash(&a), secret_hash(&b));
    }
}
