//! The login password: argon2id hashes only; the plain text of a generated
//! password is written once to a 0600 file and never stored.
//!
//! The database remembers the hash of the password sessions were opened under
//! (`password_in_effect`): when the configured password changes, every session ends at
//! the next start.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier as _};

use tokio::sync::{OnceCell, Semaphore};

use super::ratelimit::Lane;
use crate::config::PasswordSource;
use crate::db::{AuditEntry, Db};

const PASSWORD_HASH_KEY: &str = "password_hash";
const IN_EFFECT_KEY: &str = "password_in_effect";
/// The longest a login waits for its turn at argon2 before it is told to come back.
const CHECK_WAIT: Duration = Duration::from_secs(3);

/// Checks login passwords against one argon2 hash.
#[derive(Clone)]
pub struct PasswordVerifier {
    /// The hash in effect, once settled against the database ([`Self::ready`]).
    hash: Arc<OnceCell<String>>,
    configured: Arc<Configured>,
    db: Db,
    /// One check at a time per lane: each holds argon2's 19 MiB working set and a core for
    /// ~50 ms, so a burst of logins queues instead of multiplying both; clients that failed
    /// lately queue apart from the others.
    clean_lane: Arc<Semaphore>,
    suspect_lane: Arc<Semaphore>,
}

/// The password as configured, a generated one resolved to its stored hash.
enum Configured {
    Hash(String),
    Plain(String),
}

/// The password check could not get its turn within [`CHECK_WAIT`].
#[derive(Debug)]
pub struct Busy;

pub fn hash_password(password: &str) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
}

fn verifies(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

impl PasswordVerifier {
    /// Checks the configured password source (a hash that does not parse is an error
    /// now, not at the first login) and generates one on first start when none is
    /// configured. The comparison with the password in effect runs in [`Self::ready`].
    pub async fn from_source(
        source: &PasswordSource,
        db: &Db,
        initial_password_file: &Path,
    ) -> anyhow::Result<Self> {
        let configured = match source {
            PasswordSource::Hash(hash) => {
                PasswordHash::new(hash).map_err(|e| {
                    anyhow::anyhow!("UNITDECK_PASSWORD_HASH is not an argon2 PHC string: {e}")
                })?;
                Configured::Hash(hash.clone())
            }
            PasswordSource::Generated => match db.setting(PASSWORD_HASH_KEY).await? {
                Some(hash) => Configured::Hash(hash),
                None => Configured::Hash(generate(db, initial_password_file).await?),
            },
            PasswordSource::Plain(plain) => Configured::Plain(plain.clone()),
        };
        Ok(Self {
            hash: Arc::new(OnceCell::new()),
            configured: Arc::new(configured),
            db: db.clone(),
            clean_lane: Arc::new(Semaphore::new(1)),
            suspect_lane: Arc::new(Semaphore::new(1)),
        })
    }

    /// The hash in effect. The first call compares the configured password with the one
    /// sessions were opened under and ends them all when it changed; a password given in
    /// plain text costs an argon2 check (or two) here, not at start-up: `/healthz` does not
    /// wait for it. Sessions are checked only after it (`auth::authenticate`).
    pub async fn ready(&self) -> anyhow::Result<&str> {
        self.hash
            .get_or_try_init(|| settle(self.configured.clone(), self.db.clone()))
            .await
            .map(String::as_str)
    }

    /// Constant-time check, off the async threads, in the caller's lane; `Err(Busy)` when
    /// the lane stayed taken for [`CHECK_WAIT`].
    pub async fn verify(&self, candidate: String, lane: Lane) -> Result<bool, Busy> {
        let semaphore = match lane {
            Lane::Clean => &self.clean_lane,
            Lane::Suspect => &self.suspect_lane,
        };
        let permit = match tokio::time::timeout(CHECK_WAIT, semaphore.clone().acquire_owned()).await
        {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Ok(false),
            Err(_) => return Err(Busy),
        };
        let Ok(hash) = self.ready().await.map(str::to_owned) else {
            return Ok(false);
        };
        // The permit goes with the check, which finishes even if the login is dropped.
        let checked = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            verifies(&candidate, &hash)
        })
        .await;
        Ok(checked.unwrap_or(false))
    }
}

/// Resolves the configured password to the hash in effect and records it; ends every
/// session (audited) when it differs from the one recorded.
async fn settle(configured: Arc<Configured>, db: Db) -> anyhow::Result<String> {
    let recorded = db.setting(IN_EFFECT_KEY).await?;
    let current = match &*configured {
        Configured::Hash(hash) => hash.clone(),
        Configured::Plain(plain) => {
            let (plain, recorded) = (plain.clone(), recorded.clone());
            tokio::task::spawn_blocking(move || match recorded {
                Some(hash) if verifies(&plain, &hash) => Ok(hash),
                _ => hash_password(&plain),
            })
            .await??
        }
    };
    match recorded {
        Some(recorded) if recorded == current => {}
        Some(_) => {
            let ended = db
                .end_all_sessions(
                    &AuditEntry {
                        actor: "unitdeck",
                        action: "session.end-all",
                        target: None,
                        result: "ok",
                        detail: Some("the configured login password changed"),
                    },
                    Some((IN_EFFECT_KEY, &current)),
                )
                .await?;
            tracing::warn!(
                sessions = ended,
                "the login password changed: every session has ended"
            );
        }
        None => db.set_setting(IN_EFFECT_KEY, &current, None).await?,
    }
    Ok(current)
}

async fn generate(db: &Db, file: &Path) -> anyhow::Result<String> {
    let password = crate::auth::new_secret("")[..24].to_string();
    let hash = hash_password(&password)?;
    // Write the file before storing the hash: a crash in between leaves no
    // password nobody knows (the next start generates a new one).
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(file)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", file.display()))?;
    writeln!(out, "{password}")?;
    out.sync_all()?;
    if !db
        .insert_setting_if_absent(PASSWORD_HASH_KEY, &hash)
        .await?
    {
        // Another process stored one first; ours is void.
        std::fs::remove_file(file).ok();
        return Ok(db.setting(PASSWORD_HASH_KEY).await?.unwrap_or(hash));
    }
    tracing::warn!(
        file = %file.display(),
        "no password configured: generated one and wrote it to {} (readable by root only); \
         set UNITDECK_PASSWORD_HASH to choose your own",
        file.display()
    );
    Ok(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn fresh_db(tag: &str) -> (Db, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("unitdeck-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        (Db::open(&dir.join("t.db")).await.unwrap(), dir)
    }

    #[tokio::test]
    async fn plain_and_hashed_passwords_verify() {
        let (db, dir) = fresh_db("pw").await;
        let file = dir.join("initial-password");
        let v = PasswordVerifier::from_source(&PasswordSource::Plain("s3cret".into()), &db, &file)
            .await
            .unwrap();
        assert!(v.verify("s3cret".into(), Lane::Clean).await.unwrap());
        assert!(!v.verify("s3cret ".into(), Lane::Suspect).await.unwrap());
        let hashed = PasswordSource::Hash(hash_password("other").unwrap());
        let v = PasswordVerifier::from_source(&hashed, &db, &file)
            .await
            .unwrap();
        assert!(v.verify("other".into(), Lane::Clean).await.unwrap());
        assert!(
            PasswordVerifier::from_source(&PasswordSource::Hash("nope".into()), &db, &file)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_generated_password_is_written_once_and_only_its_hash_stored() {
        use std::os::unix::fs::PermissionsExt;
        let (db, dir) = fresh_db("gen").await;
        let file = dir.join("initial-password");
        let v = PasswordVerifier::from_source(&PasswordSource::Generated, &db, &file)
            .await
            .unwrap();
        let password = std::fs::read_to_string(&file).unwrap().trim().to_string();
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(v.verify(password.clone(), Lane::Clean).await.unwrap());
        let stored = db.setting(PASSWORD_HASH_KEY).await.unwrap().unwrap();
        assert!(stored.starts_with("$argon2") && !stored.contains(&password));
        // Second start: same hash, file untouched.
        std::fs::remove_file(&file).unwrap();
        let again = PasswordVerifier::from_source(&PasswordSource::Generated, &db, &file)
            .await
            .unwrap();
        assert!(again.verify(password, Lane::Clean).await.unwrap());
        assert!(!file.exists());
    }

    async fn sessions(db: &Db) -> usize {
        let mut open = 0;
        for id in ["a", "b"] {
            open += usize::from(
                db.session_is_valid(id, Duration::from_secs(600))
                    .await
                    .unwrap(),
            );
        }
        open
    }

    async fn open_session(db: &Db, id: &str) {
        let audit = AuditEntry {
            actor: "admin",
            action: "login",
            target: None,
            result: "ok",
            detail: None,
        };
        db.create_session(id, None, Duration::from_secs(600), &audit)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_changed_password_ends_every_session_and_an_unchanged_one_none() {
        let (db, dir) = fresh_db("change").await;
        let file = dir.join("initial-password");
        let start = |plain: &str| PasswordSource::Plain(plain.to_string());
        let v = PasswordVerifier::from_source(&start("one"), &db, &file)
            .await
            .unwrap();
        v.ready().await.unwrap();
        open_session(&db, "a").await;
        open_session(&db, "b").await;
        // A restart with the same password: sessions stay, no argon2 hash is replaced.
        let recorded = db.setting(IN_EFFECT_KEY).await.unwrap();
        let v = PasswordVerifier::from_source(&start("one"), &db, &file)
            .await
            .unwrap();
        v.ready().await.unwrap();
        assert_eq!(sessions(&db).await, 2);
        assert_eq!(db.setting(IN_EFFECT_KEY).await.unwrap(), recorded);
        // Another password (here as a hash): every session ends, audited.
        let v = PasswordVerifier::from_source(
            &PasswordSource::Hash(hash_password("two").unwrap()),
            &db,
            &file,
        )
        .await
        .unwrap();
        v.ready().await.unwrap();
        assert_eq!(sessions(&db).await, 0);
        let audit = db.audit_page(1, None).await.unwrap();
        assert_eq!(audit[0].action, "session.end-all");
        assert!(audit[0].detail.as_deref().unwrap().contains("2 session(s)"));
        assert!(v.verify("two".into(), Lane::Clean).await.unwrap());
    }
}
