//! The import rules of docs/architecture.md, checked on the source: which top-level
//! module of `src/` may name which other (`crate::X`), and which may use the crates that
//! belong to one layer (zbus: systemd only; SQL: db only; HTTP: http, api, web and the
//! router). Test modules are left out: they may reach for anything they test with.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module → the crate modules it may use. `lib` and `main` (the router and the binary)
/// may use anything.
const MAY_USE: &[(&str, &[&str])] = &[
    ("task", &[]),
    ("machine", &[]),
    ("ports", &[]),
    ("systemd", &["task"]),
    // Which addresses are this machine's: a notification never goes to unitdeck itself.
    ("notify", &["machine"]),
    // Token rows carry their scope.
    ("db", &["auth"]),
    // The domain error knows the errors of what it wraps.
    ("error", &["systemd"]),
    // The list of watched ports is parsed where ports are.
    ("config", &["ports"]),
    // Unit files name units the way systemd does.
    ("unitfile", &["error", "systemd"]),
    ("auth", &["config", "db", "error"]),
    (
        "service",
        &[
            "auth", "config", "db", "error", "machine", "notify", "ports", "systemd", "task",
            "unitfile",
        ],
    ),
    (
        "http",
        &["auth", "error", "machine", "service", "state", "task"],
    ),
    ("state", &["http", "service"]),
    ("tls", &["config", "machine", "task"]),
    (
        "api",
        &[
            "auth", "error", "http", "notify", "ports", "service", "state", "systemd", "unitfile",
        ],
    ),
    (
        "web",
        &[
            "auth", "error", "http", "notify", "ports", "service", "state", "systemd", "unitfile",
        ],
    ),
];

/// Crates of one layer → the modules that may use them.
const CRATES: &[(&str, &[&str])] = &[
    ("zbus", &["systemd"]),
    // `error` converts sqlx's errors; only `db` writes SQL.
    ("sqlx", &["db", "error"]),
    (
        "axum",
        &["http", "api", "web", "state", "tls", "lib", "main"],
    ),
    ("askama", &["http", "web"]),
    ("askama_web", &["web"]),
    ("tower_http", &["lib"]),
    ("rustls", &["tls"]),
    // Outgoing HTTP (notifications) goes through `notify` and its guards only.
    ("reqwest", &["notify"]),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without its test modules (`#[cfg(test)] mod tests { ... }` at the end of a
/// file, and whole `tests.rs` files).
fn non_test_source(path: &Path) -> String {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return String::new();
    }
    let text = std::fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// Every `name::` path start in `text` that is a whole word (not `other_name::`).
fn mentions(text: &str, name: &str) -> bool {
    let pattern = format!("{name}::");
    text.match_indices(&pattern).any(|(i, _)| {
        !text[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
    })
}

#[test]
fn modules_use_only_what_their_layer_may() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let rules: BTreeMap<&str, BTreeSet<&str>> = MAY_USE
        .iter()
        .map(|(m, deps)| (*m, deps.iter().copied().collect()))
        .collect();
    let mut broken = Vec::new();
    let mut modules_seen = BTreeSet::new();
    for path in &files {
        let relative = path.strip_prefix(&src).unwrap();
        let module = relative
            .iter()
            .next()
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches(".rs")
            .to_string();
        let text = non_test_source(path);
        if matches!(module.as_str(), "lib" | "main" | "tests") {
            continue;
        }
        modules_seen.insert(module.clone());
        let allowed = rules
            .get(module.as_str())
            .unwrap_or_else(|| panic!("{module} has no rule in MAY_USE (docs/architecture.md)"));
        for other in MAY_USE.iter().map(|(m, _)| *m) {
            if other != module
                && !allowed.contains(other)
                && mentions(&text, &format!("crate::{other}"))
            {
                broken.push(format!("{} uses crate::{other}", relative.display()));
            }
        }
        for (krate, users) in CRATES {
            if !users.contains(&module.as_str()) && mentions(&text, krate) {
                broken.push(format!("{} uses {krate}", relative.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "import rules broken:\n{}",
        broken.join("\n")
    );
    // Every rule is about a module that exists: the table cannot go stale quietly.
    for (module, _) in MAY_USE {
        assert!(modules_seen.contains(*module), "no module {module} in src/");
    }
}

#[test]
fn the_check_sees_a_broken_rule() {
    assert!(mentions("use crate::web::PageError;", "crate::web"));
    assert!(mentions("x: zbus::Connection", "zbus"));
    assert!(!mentions("my_zbus::X", "zbus"));
    assert!(!mentions("crate::webhooks::X", "crate::web"));
}
