//! Any unit file's text as systemd's parser reads it (systemd.syntax(7)): sections,
//! `Key=value` assignments, comments, lines continued with a trailing backslash. On that:
//! the effective settings of a unit from its fragment and drop-ins in systemd's order
//! ([`effective`]), the settings a file assigns ([`keys_set`]), and the text with secret
//! values hidden for readers below admin ([`redact_secrets`]).

use super::directives::{DEPENDENCY_KEYS, Directives, is_list};
use super::render::REDACTED;

/// One `Key=value` as systemd reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// Without brackets: `Service`.
    pub section: String,
    pub key: String,
    /// Trimmed; continued lines joined with a space.
    pub value: String,
    /// 1-based numbers of its first and last physical line.
    pub first_line: usize,
    pub last_line: usize,
}

/// Every assignment of `text`, in order (`conf-parser.c`: a line ending in an unescaped
/// backslash continues on the next, the backslash read as a space; comment lines inside
/// a continuation are skipped).
pub fn assignments(text: &str) -> Vec<Assignment> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut pending: Option<(String, usize)> = None;
    for (i, raw) in text.split('\n').enumerate() {
        let number = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if pending.is_some() && is_comment(line) {
            continue;
        }
        if let Some(body) = continued(line) {
            let (mut joined, first) = pending.take().unwrap_or((String::new(), number));
            joined.push_str(body);
            joined.push(' ');
            pending = Some((joined, first));
            continue;
        }
        let (logical, first) = match pending.take() {
            Some((mut joined, first)) => {
                joined.push_str(line);
                (joined, first)
            }
            None => (line.to_string(), number),
        };
        let logical = logical.trim();
        if logical.is_empty() || is_comment(logical) {
            continue;
        }
        if let Some(name) = logical.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        if let Some((key, value)) = logical.split_once('=') {
            out.push(Assignment {
                section: section.clone(),
                key: key.trim().to_string(),
                value: value.trim().to_string(),
                first_line: first,
                last_line: number,
            });
        }
    }
    out
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with(['#', ';'])
}

/// The line without its continuing backslash, when it ends in one that is not escaped.
fn continued(line: &str) -> Option<&str> {
    let trailing = line.len() - line.trim_end_matches('\\').len();
    (trailing % 2 == 1).then(|| &line[..line.len() - 1])
}

/// The distinct `Section.Key`s `text` assigns, in order: the settings a drop-in changes.
pub fn keys_set(text: &str) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for a in assignments(text) {
        let key = format!("{}.{}", a.section, a.key);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

/// The key assigned on 1-based line `number` of `text`.
pub fn key_at_line(text: &str, number: usize) -> Option<String> {
    assignments(text)
        .into_iter()
        .find(|a| (a.first_line..=a.last_line).contains(&number))
        .map(|a| a.key)
}

/// The settings of a unit: each `(section, key)` with its values, in the order of their
/// first assignment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effective(Vec<(String, String, Vec<String>)>);

impl Effective {
    /// One `Key=value` per line under its section (a list set to nothing is left out).
    pub fn text(&self) -> String {
        let mut sections: Vec<&str> = Vec::new();
        for (section, _, _) in &self.0 {
            if !sections.contains(&section.as_str()) {
                sections.push(section);
            }
        }
        let mut out = String::new();
        for section in sections {
            let lines: Vec<String> = self
                .0
                .iter()
                .filter(|(s, _, _)| s == section)
                .flat_map(|(_, key, values)| values.iter().map(move |v| format!("{key}={v}")))
                .collect();
            if lines.is_empty() {
                continue;
            }
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&format!("[{section}]\n"));
            for line in lines {
                out.push_str(&line);
                out.push('\n');
            }
        }
        out
    }

    /// The `(section, key)`s whose values differ between `self` and `other`.
    pub fn changed(&self, other: &Effective) -> Vec<(String, String)> {
        let values = |e: &Effective, s: &str, k: &str| {
            e.0.iter()
                .find(|(section, key, _)| section == s && key == k)
                .map(|(_, _, v)| v.clone())
                .unwrap_or_default()
        };
        let mut changed: Vec<(String, String)> = Vec::new();
        for (section, key, _) in self.0.iter().chain(&other.0) {
            let id = (section.clone(), key.clone());
            if !changed.contains(&id) && values(self, section, key) != values(other, section, key) {
                changed.push(id);
            }
        }
        changed
    }
}

/// The settings that result from `texts` (the fragment, then each drop-in) applied in
/// order: a list setting keeps every value since its last reset (an empty assignment,
/// except for dependencies), any other setting its last value. Without `directives` only
/// the common list settings are known.
pub fn effective(texts: &[&str], directives: Option<&Directives>) -> Effective {
    let mut settings: Vec<(String, String, Vec<String>)> = Vec::new();
    for text in texts {
        for a in assignments(text) {
            let list = match directives {
                Some(d) => d.is_list(&a.section, &a.key),
                None => is_list(&a.key, None),
            };
            let at = match settings
                .iter()
                .position(|(s, k, _)| *s == a.section && *k == a.key)
            {
                Some(at) => at,
                None => {
                    settings.push((a.section.clone(), a.key.clone(), Vec::new()));
                    settings.len() - 1
                }
            };
            let slot = &mut settings[at].2;
            match (list, a.value.is_empty()) {
                (true, true) if DEPENDENCY_KEYS.contains(&a.key.as_str()) => {}
                (true, true) => slot.clear(),
                (true, false) => slot.push(a.value),
                (false, _) => *slot = vec![a.value],
            }
        }
    }
    Effective(settings)
}

/// Settings whose values are secrets: environment values (API keys, passwords) and
/// credentials given inline.
const SECRET_KEYS: &[&str] = &["Environment", "SetCredential", "SetCredentialEncrypted"];

/// `text` with the value of every secret setting replaced by [`REDACTED`]: each
/// `NAME=value` of `Environment=` keeps its name, each `ID:data` of a credential its id.
/// Judged line by line, whatever section or continuation a line is in, so that no way of
/// writing a file shows a value (a line that only looks like one is hidden too).
pub fn redact_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut hiding_continuation = false;
    for (i, raw) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let continues = continued(line).is_some();
        if hiding_continuation {
            out.push_str(REDACTED);
            if continues {
                out.push_str(" \\");
            }
            hiding_continuation = continues;
            continue;
        }
        let secret = line.split_once('=').and_then(|(key, value)| {
            SECRET_KEYS
                .iter()
                .find(|k| **k == key.trim())
                .map(|k| (*k, value))
        });
        let Some((key, value)) = secret else {
            out.push_str(raw);
            continue;
        };
        let value = continued(value).unwrap_or(value);
        let words: Vec<String> = words(value).iter().map(|w| hide(key, w)).collect();
        out.push_str(&format!("{key}={}", words.join(" ")));
        if continues {
            out.push_str(" \\");
        }
        hiding_continuation = continues;
    }
    out
}

/// One word of a secret setting, hidden: `"NAME=***"` or `"ID:***"` when its name reads as
/// one, else `***`.
fn hide(key: &str, word: &str) -> String {
    let separator = if key == "Environment" { '=' } else { ':' };
    match word.split_once(separator) {
        Some((name, _))
            if !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) =>
        {
            format!("\"{name}{separator}{REDACTED}\"")
        }
        _ => REDACTED.to_string(),
    }
}

/// The words of a value the way systemd splits a quoted list (`"A=1 2" B=3`), unquoted;
/// escapes kept as written (only the names are read).
fn words(value: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let (mut quote, mut escaped, mut in_word) = (None, false, false);
    for c in value.chars() {
        if escaped {
            word.push(c);
            escaped = false;
            continue;
        }
        match (quote, c) {
            (_, '\\') => {
                escaped = true;
                in_word = true;
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, ' ' | '\t') => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (_, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_follow_systemds_parser() {
        let text = "# comment\n[Unit]\nDescription = a b \n; other comment\n\
            After=x.service \\\n# skipped inside a continuation\n  y.service\n\
            [Service]\nExecStart=/bin/a\\\\\nNoEquals\nRestart=\n";
        let got: Vec<(String, String, String, usize, usize)> = assignments(text)
            .into_iter()
            .map(|a| (a.section, a.key, a.value, a.first_line, a.last_line))
            .collect();
        let expect =
            |s: &str, k: &str, v: &str, a, b| (s.to_string(), k.to_string(), v.to_string(), a, b);
        assert_eq!(
            got,
            [
                expect("Unit", "Description", "a b", 3, 3),
                expect("Unit", "After", "x.service    y.service", 5, 7),
                expect("Service", "ExecStart", "/bin/a\\\\", 9, 9),
                expect("Service", "Restart", "", 11, 11),
            ]
        );
        assert_eq!(key_at_line(text, 6).as_deref(), Some("After"));
        assert_eq!(key_at_line(text, 10), None);
        assert_eq!(
            keys_set(text),
            [
                "Unit.Description",
                "Unit.After",
                "Service.ExecStart",
                "Service.Restart"
            ]
        );
    }

    #[test]
    fn drop_ins_combine_like_systemd() {
        let fragment = "[Unit]\nDescription=vendor\nAfter=a.service\n[Service]\n\
            ExecStart=/bin/vendor\nEnvironment=A=1 B=2\nRestart=always\nNice=1\n";
        let account = "[Service]\nUser=dev\n";
        let ours = "[Unit]\nAfter=b.service\nAfter=\n[Service]\nExecStart=\n\
            ExecStart=:/bin/ours x\nEnvironment=\"A=3\"\nRestart=on-failure\nNice=\n";
        let before = effective(&[fragment, account], None);
        let after = effective(&[fragment, account, ours], None);
        assert_eq!(
            before.changed(&after),
            [
                ("Unit".to_string(), "After".to_string()),
                ("Service".to_string(), "ExecStart".to_string()),
                ("Service".to_string(), "Environment".to_string()),
                ("Service".to_string(), "Restart".to_string()),
                ("Service".to_string(), "Nice".to_string()),
            ]
        );
        assert_eq!(
            after.text(),
            "[Unit]\nDescription=vendor\nAfter=a.service\nAfter=b.service\n\n[Service]\n\
             ExecStart=:/bin/ours x\nEnvironment=A=1 B=2\nEnvironment=\"A=3\"\n\
             Restart=on-failure\nNice=\nUser=dev\n"
        );
        // An empty list is not shown; a section with nothing left neither.
        assert_eq!(
            effective(
                &["[Service]\nEnvironment=A=1\n", "[Service]\nEnvironment=\n"],
                None
            )
            .text(),
            ""
        );
        // The kinds systemd names decide for settings the built-in list does not know.
        let d = Directives::parse("[Service]\nReadWritePaths=PATH [...]\n");
        let texts = [
            "[Service]\nReadWritePaths=/a\n",
            "[Service]\nReadWritePaths=/b\n",
        ];
        assert_eq!(
            effective(&texts, Some(&d)).text(),
            "[Service]\nReadWritePaths=/a\nReadWritePaths=/b\n"
        );
        assert_eq!(
            effective(&texts, None).text(),
            "[Service]\nReadWritePaths=/b\n"
        );
    }

    #[test]
    fn secrets_are_hidden_however_they_are_written() {
        let text = "[Service]\nEnvironment=\"TOKEN=s3cret\" PLAIN=p4ss\n\
            Environment = 'Q=a b' \"R=x\\\"y\" junk\nEnvironment=LONG=first \\\n  second-part\n\
            Description=keep=this\nSetCredential=db:hunter2\n Environment=X=1\nExecStart=/bin/a";
        let hidden = redact_secrets(text);
        for secret in [
            "s3cret",
            "p4ss",
            "a b",
            "x\\\"y",
            "first",
            "second-part",
            "hunter2",
            "=1",
        ] {
            assert!(!hidden.contains(secret), "{secret} shown in:\n{hidden}");
        }
        assert_eq!(
            hidden,
            "[Service]\nEnvironment=\"TOKEN=***\" \"PLAIN=***\"\n\
             Environment=\"Q=***\" \"R=***\" ***\nEnvironment=\"LONG=***\" \\\n***\n\
             Description=keep=this\nSetCredential=\"db:***\"\nEnvironment=\"X=***\"\nExecStart=/bin/a"
        );
        // unitdeck's own lines read as before.
        assert_eq!(
            redact_secrets("Environment=\"A=1 %% \\\" x\"\n"),
            "Environment=\"A=***\"\n"
        );
    }
}
