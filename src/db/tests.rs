//! The queries against a real SQLite file (WAL, the migrations applied): what each
//! writes together in one transaction, and what it refuses.

use std::time::Duration;

use super::*;

/// A fresh database file in a directory of its own.
async fn fresh(tag: &str) -> (Db, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("unitdeck-db-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("unitdeck.db");
    (Db::open(&path).await.unwrap(), path)
}

fn entry<'a>(action: &'a str, target: Option<&'a str>, result: &'a str) -> AuditEntry<'a> {
    AuditEntry {
        actor: "admin",
        action,
        target,
        result,
        detail: None,
    }
}

async fn audit_actions(db: &Db) -> Vec<String> {
    db.audit_page(1000, None)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .map(|r| r.action)
        .collect()
}

#[tokio::test]
async fn a_reopened_file_keeps_what_was_written() {
    let (db, path) = fresh("reopen").await;
    db.set_setting("k", "one", None).await.unwrap();
    db.set_setting("k", "two", None).await.unwrap();
    assert!(!db.insert_setting_if_absent("k", "three").await.unwrap());
    db.audit(entry("login", None, "ok")).await.unwrap();
    drop(db);
    // Migrations run again on an existing file without harm.
    let db = Db::open(&path).await.unwrap();
    assert_eq!(db.setting("k").await.unwrap().as_deref(), Some("two"));
    assert_eq!(audit_actions(&db).await, ["login"]);
}

#[tokio::test]
async fn sessions_expire_go_idle_and_end_together() {
    let (db, _) = fresh("sessions").await;
    let login = entry("login", None, "ok");
    db.create_session("a", None, Duration::from_secs(600), &login)
        .await
        .unwrap();
    db.create_session("b", None, Duration::from_secs(600), &login)
        .await
        .unwrap();
    let idle = Duration::from_secs(3600);
    assert!(db.session_is_valid("a", idle).await.unwrap());
    assert!(!db.session_is_valid("nope", idle).await.unwrap());
    // A login that replaces "a" ends it, in the same transaction as its audit row.
    db.create_session("c", Some("a"), Duration::from_secs(600), &login)
        .await
        .unwrap();
    assert!(!db.session_is_valid("a", idle).await.unwrap());
    // Expired and idle sessions are not valid.
    db.create_session("old", None, Duration::from_secs(0), &login)
        .await
        .unwrap();
    assert!(!db.session_is_valid("old", idle).await.unwrap());
    sqlx::query("UPDATE sessions SET last_seen = last_seen - 100 WHERE id_hash = 'b'")
        .execute(db.pool())
        .await
        .unwrap();
    assert!(
        !db.session_is_valid("b", Duration::from_secs(50))
            .await
            .unwrap()
    );
    assert!(
        db.session_is_valid("b", Duration::from_secs(500))
            .await
            .unwrap()
    );
    // A use moves the idle deadline on.
    assert!(
        db.session_is_valid("b", Duration::from_secs(50))
            .await
            .unwrap()
    );
    // Everything ends at once, with one record saying how many.
    let ended = db
        .end_all_sessions(&entry("session.end-all", None, "ok"), Some(("marker", "x")))
        .await
        .unwrap();
    assert!(ended >= 2);
    assert!(!db.session_is_valid("c", idle).await.unwrap());
    assert_eq!(db.setting("marker").await.unwrap().as_deref(), Some("x"));
    let last = db.audit_page(1, None).await.unwrap().remove(0);
    assert_eq!(last.action, "session.end-all");
    assert!(last.detail.unwrap().contains("session(s) ended"));
}

#[tokio::test]
async fn tokens_are_found_by_hash_and_their_changes_audited() {
    let (db, _) = fresh("tokens").await;
    let token = db
        .create_token("ci", Scope::Operate, "hash-1", "admin")
        .await
        .unwrap();
    assert_eq!(token.scope, Scope::Operate);
    assert!(token.last_used_at.is_none());
    let found = db.find_token("hash-1").await.unwrap().unwrap();
    assert_eq!(found.id, token.id);
    assert!(found.last_used_at.is_some(), "a use is noted");
    assert!(db.find_token("hash-2").await.unwrap().is_none());
    // The secret's hash is unique.
    assert!(
        db.create_token("again", Scope::Read, "hash-1", "admin")
            .await
            .is_err()
    );
    assert_eq!(db.list_tokens().await.unwrap().len(), 1);
    assert!(db.delete_token(token.id, "admin").await.unwrap().is_some());
    assert!(db.delete_token(token.id, "admin").await.unwrap().is_none());
    let page = db.audit_page(10, None).await.unwrap();
    let results: Vec<(&str, &str)> = page
        .iter()
        .map(|r| (r.action.as_str(), r.result.as_str()))
        .collect();
    assert_eq!(
        results,
        [
            ("token.revoke", "not-found"),
            ("token.revoke", "ok"),
            ("token.create", "ok")
        ]
    );
    // Only the three scopes exist.
    let bad = sqlx::query(
        "INSERT INTO tokens (name, scope, secret_hash, created_at) VALUES ('x', 'root', 'h', 't')",
    )
    .execute(db.pool())
    .await;
    assert!(bad.is_err());
}

#[tokio::test]
async fn audit_records_page_back_and_pending_ones_become_interrupted() {
    let (db, _) = fresh("audit").await;
    for i in 0..25 {
        db.audit(entry(&format!("a{i}"), Some("u.service"), "ok"))
            .await
            .unwrap();
    }
    let pending = db
        .audit(entry("unit.start", Some("u.service"), "pending"))
        .await
        .unwrap();
    let first = db.audit_page(10, None).await.unwrap();
    assert_eq!(first[0].id, pending);
    let second = db
        .audit_page(10, Some(first.last().unwrap().id))
        .await
        .unwrap();
    assert_eq!(second[0].id, first.last().unwrap().id - 1);
    assert_eq!(db.close_interrupted_actions().await.unwrap(), 1);
    assert_eq!(db.close_interrupted_actions().await.unwrap(), 0);
    let (action, _) = db.last_audit_of("u.service").await.unwrap().unwrap();
    assert_eq!(action, "unit.start");
    assert_eq!(
        db.audit_page(1, None).await.unwrap()[0].result,
        "interrupted"
    );
    db.set_audit_result(pending, "done", Some("job 7"))
        .await
        .unwrap();
    let found = db
        .last_done_action("u.service", "", &["unit.start", "unit.stop"])
        .await
        .unwrap();
    assert_eq!(found.as_deref(), Some("unit.start"));
}

#[tokio::test]
async fn revisions_commit_with_their_audit_row_or_not_at_all() {
    let (db, _) = fresh("revisions").await;
    let rev = |previous, spec: &'static str| NewRevision {
        name: "a.service",
        kind: "service",
        spec,
        files: "{}",
        actor: "admin",
        previous,
    };
    let create = entry("unitfile.create", Some("a.service"), "ok");
    assert_eq!(
        db.commit_unit_file_revision(rev(None, "{\"v\":1}"), create.clone())
            .await
            .unwrap(),
        Some(1)
    );
    // A second create of the same name, and an update based on a stale revision, commit
    // nothing (and write no audit row).
    assert_eq!(
        db.commit_unit_file_revision(rev(None, "{}"), create.clone())
            .await
            .unwrap(),
        None
    );
    let update = entry("unitfile.update", Some("a.service"), "ok");
    assert_eq!(
        db.commit_unit_file_revision(rev(Some(7), "{}"), update.clone())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        db.commit_unit_file_revision(rev(Some(1), "{\"v\":2}"), update.clone())
            .await
            .unwrap(),
        Some(2)
    );
    assert_eq!(
        audit_actions(&db).await,
        ["unitfile.create", "unitfile.update"]
    );
    let history = db.unit_file_revisions("a.service").await.unwrap();
    assert_eq!(
        history.iter().map(|r| r.revision).collect::<Vec<_>>(),
        [2, 1]
    );
    let stored = db
        .unit_file_revision("a.service", 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.spec, "{\"v\":1}");
    // A delete takes the revisions with it (foreign key, cascade), audited.
    let delete = entry("unitfile.delete", Some("a.service"), "ok");
    assert!(
        db.delete_unit_file("a.service", delete.clone())
            .await
            .unwrap()
    );
    assert!(!db.delete_unit_file("a.service", delete).await.unwrap());
    assert!(
        db.unit_file_revisions("a.service")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(db.list_unit_files().await.unwrap().is_empty());
}

#[tokio::test]
async fn override_revisions_keep_removals_and_refuse_stale_bases() {
    let (db, _) = fresh("overrides").await;
    let rev = |previous, text: Option<&'static str>| NewOverrideRevision {
        unit: "code-server.service",
        settings: text.map(|_| "{}"),
        text,
        restart: text.is_some(),
        actor: "admin",
        previous,
    };
    let save = entry("override.save", Some("code-server.service"), "ok");
    assert_eq!(
        db.commit_override_revision(rev(None, Some("a")), save.clone())
            .await
            .unwrap(),
        Some(1)
    );
    // A second first revision, and one based on a stale revision, commit nothing.
    assert_eq!(
        db.commit_override_revision(rev(None, Some("b")), save.clone())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        db.commit_override_revision(rev(Some(5), Some("b")), save.clone())
            .await
            .unwrap(),
        None
    );
    // A removal is a revision without text.
    let remove = entry("override.remove", Some("code-server.service"), "ok");
    assert_eq!(
        db.commit_override_revision(rev(Some(1), None), remove)
            .await
            .unwrap(),
        Some(2)
    );
    assert_eq!(
        audit_actions(&db).await,
        ["override.save", "override.remove"]
    );
    let history = db.override_revisions("code-server.service").await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!((history[0].revision, history[0].text.as_deref()), (2, None));
    assert!(!history[0].restart && history[1].restart);
    let first = db
        .override_revision("code-server.service", 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.text.as_deref(), Some("a"));
    let row = db
        .override_row("code-server.service")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.revision, 2);
    assert_eq!(db.list_overrides().await.unwrap().len(), 1);
    // Text without settings is not a revision.
    let broken = NewOverrideRevision {
        settings: None,
        ..rev(Some(2), Some("x"))
    };
    let save = entry("override.save", Some("code-server.service"), "ok");
    assert!(db.commit_override_revision(broken, save).await.is_err());
}
