//! The login password: argon2id hashes only; the plain text of a generated
//! password is written once to a 0600 file and never stored.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier as _};

use tokio::sync::{OnceCell, Semaphore};

use crate::config::PasswordSource;
use crate::db::Db;

const PASSWORD_HASH_KEY: &str = "password_hash";

/// Checks login passwords against one argon2 hash.
#[derive(Clone)]
pub struct PasswordVerifier {
    hash: Arc<OnceCell<String>>,
    /// A password configured in plain text, hashed at the first login rather than at
    /// start-up (argon2 takes ~40 ms and 19 MiB; /healthz should not wait for it).
    plain: Option<Arc<str>>,
    /// One check at a time: each holds argon2's 19 MiB working set and a core for
    /// ~50 ms, so a burst of logins queues instead of multiplying both.
    one_at_a_time: Arc<Semaphore>,
}

pub fn hash_password(password: &str) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
}

impl PasswordVerifier {
    /// Resolves the configured password source into a hash, generating and
    /// storing one on first start when none is configured.
    pub async fn from_source(
        source: &PasswordSource,
        db: &Db,
        initial_password_file: &Path,
    ) -> anyhow::Result<Self> {
        let (hash, plain) = match source {
            PasswordSource::Plain(plain) => (None, Some(Arc::from(plain.as_str()))),
            PasswordSource::Hash(hash) => {
                PasswordHash::new(hash).map_err(|e| {
                    anyhow::anyhow!("UNITDECK_PASSWORD_HASH is not an argon2 PHC string: {e}")
                })?;
                (Some(hash.clone()), None)
            }
            PasswordSource::Generated => match db.setting(PASSWORD_HASH_KEY).await? {
                Some(hash) => (Some(hash), None),
                None => (Some(generate(db, initial_password_file).await?), None),
            },
        };
        Ok(Self {
            hash: Arc::new(OnceCell::new_with(hash)),
            plain,
            one_at_a_time: Arc::new(Semaphore::new(1)),
        })
    }

    /// Constant-time check; argon2 is slow on purpose, so it runs off the async threads.
    pub async fn verify(&self, candidate: String) -> bool {
        let Ok(permit) = self.one_at_a_time.clone().acquire_owned().await else {
            return false;
        };
        let hash = self
            .hash
            .get_or_try_init(|| {
                let plain = self.plain.clone();
                off_thread(move || plain.and_then(|p| hash_password(&p).ok()))
            })
            .await;
        let Ok(hash) = hash.cloned() else {
            return false;
        };
        // The permit goes with the check, which finishes even if the login is dropped.
        off_thread(move || {
            let _permit = permit;
            let parsed = PasswordHash::new(&hash).ok()?;
            Some(
                Argon2::default()
                    .verify_password(candidate.as_bytes(), &parsed)
                    .is_ok(),
            )
        })
        .await
        .unwrap_or(false)
    }
}

/// Runs argon2 work on the blocking pool; `Err` when it yields nothing.
async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> Option<T> + Send + 'static,
) -> Result<T, ()> {
    tokio::task::spawn_blocking(work)
        .await
        .ok()
        .flatten()
        .ok_or(())
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

    #[tokio::test]
    async fn plain_and_hashed_passwords_verify() {
        let dir = std::env::temp_dir().join(format!("unitdeck-pw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = Db::open(&dir.join("t.db")).await.unwrap();
        let file = dir.join("initial-password");
        let v = PasswordVerifier::from_source(&PasswordSource::Plain("s3cret".into()), &db, &file)
            .await
            .unwrap();
        assert!(v.verify("s3cret".into()).await);
        assert!(!v.verify("s3cret ".into()).await);
        let hashed = PasswordSource::Hash(hash_password("other").unwrap());
        let v = PasswordVerifier::from_source(&hashed, &db, &file)
            .await
            .unwrap();
        assert!(v.verify("other".into()).await);
        assert!(
            PasswordVerifier::from_source(&PasswordSource::Hash("nope".into()), &db, &file)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_generated_password_is_written_once_and_only_its_hash_stored() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("unitdeck-gen-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = Db::open(&dir.join("t.db")).await.unwrap();
        let file = dir.join("initial-password");
        let v = PasswordVerifier::from_source(&PasswordSource::Generated, &db, &file)
            .await
            .unwrap();
        let password = std::fs::read_to_string(&file).unwrap().trim().to_string();
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(v.verify(password.clone()).await);
        let stored = db.setting(PASSWORD_HASH_KEY).await.unwrap().unwrap();
        assert!(stored.starts_with("$argon2") && !stored.contains(&password));
        // Second start: same hash, file untouched.
        std::fs::remove_file(&file).unwrap();
        let again = PasswordVerifier::from_source(&PasswordSource::Generated, &db, &file)
            .await
            .unwrap();
        assert!(again.verify(password).await);
        assert!(!file.exists());
    }
}
