//! A shell-like command line for the form: the person types `node server.js --port 8036`
//! style text, the API wants an argv.
//!
//! [`split_command_line`] follows POSIX shell word splitting and quoting, without any
//! expansion (no `$VAR`, globs, `~`, `;`/`|`/`&` operators: those characters are literal):
//! - unquoted space, tab, newline and CR separate words;
//! - `'…'` is literal up to the next `'`;
//! - inside `"…"`, a backslash escapes only `"`, `\`, `$`, `` ` `` and newline (a
//!   backslash-newline is removed); before anything else it is kept;
//! - outside quotes, a backslash escapes the next character (backslash-newline is removed);
//! - `''` and `""` make an empty word.
//!
//! [`shell_quote_argv`] is its inverse: `split_command_line(&shell_quote_argv(argv)) ==
//! Ok(argv)` for every argv.

/// Split a command line into words, as a POSIX shell would (without expansions).
pub fn split_command_line(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    // A word is in progress (possibly empty, after `''`).
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\' | '$' | '`')) => word.push(e),
                            Some('\n') => {}
                            Some(other) => {
                                word.push('\\');
                                word.push(other);
                            }
                            None => return Err("unterminated quote".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated quote".into()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(e) => {
                    in_word = true;
                    word.push(e);
                }
                None => return Err("trailing backslash".into()),
            },
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Render an argv as one shell line that [`split_command_line`] (and a POSIX shell) splits
/// back into the same argv. Words made only of `[A-Za-z0-9_@%+=:,./-]` are left bare;
/// others are single-quoted (a `'` inside becomes `'\''`), an empty word is `''`.
pub fn shell_quote_argv(argv: &[String]) -> String {
    argv.iter()
        .map(|w| shell_quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One word for a shell line (see [`shell_quote_argv`]).
pub fn shell_quote(word: &str) -> String {
    let bare = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(&b));
    if bare {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str) -> Vec<String> {
        split_command_line(line).unwrap()
    }

    #[test]
    fn splits_like_a_shell() {
        assert_eq!(
            split("node server.js --port 8036"),
            ["node", "server.js", "--port", "8036"]
        );
        assert_eq!(split("  a \t b\n c  "), ["a", "b", "c"]);
        assert_eq!(split(""), Vec::<String>::new());
        assert_eq!(split("   "), Vec::<String>::new());
        assert_eq!(split("'a b' \"c d\""), ["a b", "c d"]);
        assert_eq!(split("'' \"\" x"), ["", "", "x"]);
        assert_eq!(split("a'b'\"c\"d"), ["abcd"]);
        assert_eq!(split("'$HOME \\ \"'"), ["$HOME \\ \""]);
        assert_eq!(split(r#""\" \\ \$ \` \a \'""#), ["\" \\ $ ` \\a \\'"]);
        assert_eq!(split(r"a\ b \'c\' \\"), ["a b", "'c'", "\\"]);
        assert_eq!(split("a\\\nb"), ["ab"]);
        assert_eq!(split("\"a\\\nb\""), ["ab"]);
        assert_eq!(
            split("sh -c 'echo hi; ls | wc'"),
            ["sh", "-c", "echo hi; ls | wc"]
        );
        assert_eq!(
            split("a;b | c && $X ~ *"),
            ["a;b", "|", "c", "&&", "$X", "~", "*"]
        );
        assert_eq!(split("'it'\\''s'"), ["it's"]);
        assert_eq!(split("ü 'ñ €'"), ["ü", "ñ €"]);
    }

    #[test]
    fn errors() {
        assert_eq!(
            split_command_line("'abc"),
            Err("unterminated quote".to_string())
        );
        assert_eq!(
            split_command_line("a \"b"),
            Err("unterminated quote".to_string())
        );
        assert_eq!(
            split_command_line("\"b\\"),
            Err("unterminated quote".to_string())
        );
        assert_eq!(
            split_command_line("a \\"),
            Err("trailing backslash".to_string())
        );
    }

    #[test]
    fn quotes() {
        let argv = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            shell_quote_argv(&argv(&[
                "/usr/bin/node",
                "server.js",
                "--port=8036",
                "a,b:c@d%"
            ])),
            "/usr/bin/node server.js --port=8036 a,b:c@d%"
        );
        assert_eq!(
            shell_quote_argv(&argv(&["", "a b", "it's", "$X", "\\", "ü"])),
            r"'' 'a b' 'it'\''s' '$X' '\' 'ü'"
        );
    }

    #[test]
    fn property_round_trip() {
        // xorshift64*; deterministic.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_F491_4F6C_DD1D)
        };
        const PIECES: &[&str] = &[
            "a", "Z", "0", " ", "\t", "\n", "\r", "\0", "'", "\"", "\\", "$", "`", "%", ";", "|",
            "&", "*", "~", "#", "=", "-", "/", "é", "\u{85}", "''", "\\n", "\x1b",
        ];
        for _ in 0..10_000 {
            let n = (next() % 6) as usize;
            let argv: Vec<String> = (0..n)
                .map(|_| {
                    let len = (next() % 8) as usize;
                    (0..len)
                        .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                        .collect()
                })
                .collect();
            let line = shell_quote_argv(&argv);
            assert_eq!(
                split_command_line(&line),
                Ok(argv.clone()),
                "line: {line:?}"
            );
        }
    }
}
