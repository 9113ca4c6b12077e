//! Tests of the journal module: parsing, cursors, arguments, filters, line reading.

use super::args::{Mode, build_args};
use super::entry::{self, format_time, parse_entry};
use super::*;

pub(super) const CURSOR: &str = "s=7ae8dbdf89fa4e67b34961f708e2cd24;i=ca;b=b5a7169e314b4dec9fd47955771ce375;m=f485dcd;t=661531d9a1133;x=501148b9228078c3";

fn line(fields: &str) -> Vec<u8> {
    format!(r#"{{"__CURSOR":"{CURSOR}","__REALTIME_TIMESTAMP":"1795859467079987"{fields}}}"#)
        .into_bytes()
}

#[test]
fn parses_a_full_entry() {
    let e = parse_entry(&line(
            r#","MESSAGE":"hello","PRIORITY":"3","SYSLOG_IDENTIFIER":"sh","_COMM":"dash","_PID":"54","_SYSTEMD_INVOCATION_ID":"0fa83c77af2c48d2981d21c42034cc16","_BOOT_ID":"x""#,
        ))
        .unwrap();
    assert_eq!(e.cursor, CURSOR);
    assert_eq!(e.time, "2026-11-28T09:51:07.079987Z");
    assert_eq!(e.priority, 3);
    assert_eq!(e.identifier.as_deref(), Some("sh"));
    assert_eq!(e.pid, Some(54));
    assert_eq!(e.message, "hello");
    assert_eq!(
        e.invocation_id.as_deref(),
        Some("0fa83c77af2c48d2981d21c42034cc16")
    );
}

#[test]
fn missing_fields_get_defaults() {
    let e = parse_entry(&line("")).unwrap();
    assert_eq!(e.message, "");
    assert_eq!(e.priority, 6);
    assert_eq!(e.identifier, None);
    assert_eq!(e.pid, None);
    assert_eq!(e.invocation_id, None);
    let e = parse_entry(&line(r#","MESSAGE":null,"PRIORITY":null,"_COMM":"x""#)).unwrap();
    assert_eq!((e.message.as_str(), e.priority), ("", 6));
    assert_eq!(e.identifier.as_deref(), Some("x"), "falls back to _COMM");
}

#[test]
fn no_cursor_or_garbage_is_not_an_entry() {
    assert!(parse_entry(br#"{"MESSAGE":"x"}"#).is_none());
    assert!(parse_entry(b"-- No entries --").is_none());
    assert!(parse_entry(b"").is_none());
}

#[test]
fn byte_array_messages_are_lossy_utf8() {
    let e = parse_entry(&line(r#","MESSAGE":[1,98,105,110,255]"#)).unwrap();
    assert_eq!(e.message, "\u{1}bin\u{FFFD}");
    let e = parse_entry(&line(r#","MESSAGE":[104,195,169]"#)).unwrap();
    assert_eq!(e.message, "hé");
}

#[test]
fn repeated_fields_come_as_arrays() {
    let e = parse_entry(&line(
        r#","MESSAGE":["a",[98,255]],"PRIORITY":["4","5"],"_PID":["7","8"]"#,
    ))
    .unwrap();
    assert_eq!(e.message, "a\nb\u{FFFD}");
    assert_eq!(e.priority, 4);
    assert_eq!(e.pid, Some(7));
}

#[test]
fn object_invocation_id_is_used_for_pid1_messages() {
    let e = parse_entry(&line(
        r#","INVOCATION_ID":"0fa83c77af2c48d2981d21c42034cc16""#,
    ))
    .unwrap();
    assert_eq!(
        e.invocation_id.as_deref(),
        Some("0fa83c77af2c48d2981d21c42034cc16")
    );
}

#[test]
fn odd_priorities_and_pids() {
    let e = parse_entry(&line(r#","PRIORITY":"9","_PID":"x""#)).unwrap();
    assert_eq!((e.priority, e.pid), (7, None));
    let e = parse_entry(&line(r#","PRIORITY":"junk""#)).unwrap();
    assert_eq!(e.priority, 6);
}

#[test]
fn huge_messages_are_truncated_not_dropped() {
    let big = "b".repeat(100_000);
    let e = parse_entry(&line(&format!(r#","MESSAGE":"{big}""#))).unwrap();
    assert!(e.message.starts_with("bbbb"));
    let marker = format!("… [truncated {} bytes]", 100_000 - MAX_MESSAGE_BYTES);
    assert!(
        e.message.ends_with(&marker),
        "{}",
        &e.message[e.message.len() - 40..]
    );
    assert_eq!(e.message.len(), MAX_MESSAGE_BYTES + marker.len());
    // Exactly at the limit: untouched.
    let e = parse_entry(&line(&format!(
        r#","MESSAGE":"{}""#,
        "c".repeat(MAX_MESSAGE_BYTES)
    )))
    .unwrap();
    assert_eq!(e.message.len(), MAX_MESSAGE_BYTES);
    // A multi-byte character straddling the limit is not split.
    let text = format!("{}é{}", "a".repeat(MAX_MESSAGE_BYTES - 1), "z".repeat(10));
    let e = parse_entry(&line(&format!(r#","MESSAGE":"{text}""#))).unwrap();
    assert!(e.message.starts_with(&"a".repeat(MAX_MESSAGE_BYTES - 1)));
    assert!(
        e.message.ends_with("… [truncated 12 bytes]"),
        "{}",
        &e.message[e.message.len() - 30..]
    );
    assert!(!e.message.contains('\u{FFFD}'));
    // Huge byte arrays too.
    let bytes = vec!["255"; 70_000].join(",");
    let e = parse_entry(&line(&format!(r#","MESSAGE":[{bytes}]"#))).unwrap();
    assert!(e.message.ends_with(&format!(
        "… [truncated {} bytes]",
        70_000 - MAX_MESSAGE_BYTES
    )));
}

#[test]
fn time_falls_back_to_the_cursor() {
    let raw = format!(r#"{{"__CURSOR":"{CURSOR}","MESSAGE":"x"}}"#);
    let e = parse_entry(raw.as_bytes()).unwrap();
    assert_eq!(e.time, format_time(0x661531d9a1133));
    assert_eq!(format_time(0), "1970-01-01T00:00:00.000000Z");
}

#[test]
fn cursor_validation() {
    assert!(validate_cursor(CURSOR));
    let pattern = regex::Regex::new(&format!("^{CURSOR_PATTERN}$")).unwrap();
    assert!(pattern.is_match(CURSOR));
    for bad in [
        "",
        "s=1; i=2",
        "s=1\ni=2",
        "s=é",
        "network.target",
        &"a".repeat(512),
        &CURSOR.replace(";i=ca;", ";i=;"),
        &CURSOR.replace(";i=ca;", ";i=10000000000000000;"),
        &CURSOR.replace(";x=", ";y="),
        &format!("{CURSOR};"),
        &CURSOR.replace("s=7ae8", "s=7ae"),
    ] {
        assert!(!validate_cursor(bad), "{bad:?}");
        assert!(!pattern.is_match(bad), "{bad:?}");
    }
}

pub(super) fn filter() -> LogFilter {
    LogFilter {
        units: vec!["foo.service".into()],
        priority: Some(4),
        grep: Some(TextFilter {
            text: "a (b)".into(),
            regex: false,
            case: Case::Auto,
        }),
        invocation: Some("0fa83c77af2c48d2981d21c42034cc16".into()),
        since: Some(1_796_566_200_000_001),
        ..LogFilter::default()
    }
}

#[test]
fn text_filters_are_literal_patterns() {
    assert_eq!(literal_pattern("a.b"), "a\\.b");
    assert_eq!(
        literal_pattern(r"(x)|[y]{2}^$*+?\"),
        r"\(x\)\|\[y\]\{2\}\^\$\*\+\?\\"
    );
    assert_eq!(literal_pattern("Ünïcode ok"), "Ünïcode ok");
}

#[test]
fn arguments_are_separate_argv_entries() {
    let args = build_args(&filter(), Mode::Tail(Some(10)));
    let tail: Vec<&str> = args.iter().skip(5).map(String::as_str).collect();
    assert_eq!(
        tail,
        [
            "--unit=foo.service",
            "--priority=4",
            "--grep=a \\(b\\)",
            "--since=@1796566200.000001",
            "--reverse",
            "--lines=10",
            "_SYSTEMD_INVOCATION_ID=0fa83c77af2c48d2981d21c42034cc16",
            "+",
            "INVOCATION_ID=0fa83c77af2c48d2981d21c42034cc16",
        ]
    );
    assert!(args.contains(&"--all".to_string()) && args.contains(&"--output=json".to_string()));
    let two = LogFilter {
        units: vec!["a.service".into(), "b.service".into()],
        ..filter()
    };
    let args = build_args(&two, Mode::Follow(None));
    assert!(args.contains(&"--unit=a.service".to_string()));
    assert!(args.contains(&"--unit=b.service".to_string()));
    let args = build_args(&filter(), Mode::From("s=1;i=2", Some(5)));
    assert!(args.contains(&"--cursor=s=1;i=2".to_string()));
    assert!(
        !args.iter().any(|a| a.starts_with("--since")),
        "journalctl refuses both"
    );
    assert!(args.contains(&"--lines=5".to_string()));
    let args = build_args(&filter(), Mode::Before("s=1;i=2"));
    assert!(
        args.contains(&"--cursor=s=1;i=2".to_string()) && args.contains(&"--reverse".to_string())
    );
    assert!(
        !args
            .iter()
            .any(|a| a.starts_with("--since") || a.starts_with("--lines"))
    );
    let args = build_args(&filter(), Mode::Follow(Some("s=1;i=2")));
    assert!(args.contains(&"--follow".to_string()));
    assert!(
        !args
            .iter()
            .any(|a| a.starts_with("--since") || a.starts_with("--lines"))
    );
    let args = build_args(&filter(), Mode::Follow(None));
    assert!(args.contains(&"--no-tail".to_string()));
    let plain = LogFilter {
        units: Vec::new(),
        grep: None,
        priority: None,
        invocation: None,
        since: None,
        ..filter()
    };
    let args = build_args(&plain, Mode::Tail(Some(1)));
    assert!(!args.iter().any(|a| a.starts_with("--grep")
        || a.starts_with("--priority")
        || a.starts_with("--unit")
        || a == "+"));
}

#[test]
fn every_filter_becomes_an_option_value_or_a_match() {
    let all = LogFilter {
        identifier: Some("-x".into()),
        boot: Some("0123456789abcdef0123456789abcdef".into()),
        grep: Some(TextFilter {
            text: "a(".into(),
            regex: true,
            case: Case::Insensitive,
        }),
        matches: vec![FieldMatch {
            field: "_COMM".into(),
            value: "sh".into(),
        }],
        excludes: vec![FieldMatch {
            field: "CODE_LINE".into(),
            value: "1".into(),
        }],
        until: Some(1_796_566_300_000_000),
        ..filter()
    };
    let args = build_args(&all, Mode::Tail(None));
    for expected in [
        "--identifier=-x",
        "--boot=0123456789abcdef0123456789abcdef",
        "--grep=a(",
        "--case-sensitive=no",
        "--until=@1796566300.000000",
        "--output-fields=MESSAGE,PRIORITY,SYSLOG_IDENTIFIER,_PID,_COMM,_SYSTEMD_INVOCATION_ID,\
         INVOCATION_ID,UNIT,_SYSTEMD_UNIT,__CURSOR,__REALTIME_TIMESTAMP,CODE_LINE",
    ] {
        assert!(
            args.contains(&expected.to_string()),
            "{expected} in {args:?}"
        );
    }
    assert!(!args.iter().any(|a| a.starts_with("--lines")), "{args:?}");
    // The invocation's OR keeps the other matches on both sides.
    assert_eq!(
        &args[args.len() - 5..],
        [
            "_COMM=sh",
            "_SYSTEMD_INVOCATION_ID=0fa83c77af2c48d2981d21c42034cc16",
            "+",
            "_COMM=sh",
            "INVOCATION_ID=0fa83c77af2c48d2981d21c42034cc16",
        ]
    );
}

#[test]
fn excluded_entries_are_recognised_by_any_value() {
    let excludes = [FieldMatch {
        field: "_COMM".into(),
        value: "sh".into(),
    }];
    assert!(entry::is_excluded(&line(r#","_COMM":"sh""#), &excludes));
    assert!(entry::is_excluded(
        &line(r#","_COMM":["bash","sh"]"#),
        &excludes
    ));
    assert!(
        entry::is_excluded(&line(r#","_COMM":[115,104]"#), &excludes),
        "bytes"
    );
    assert!(!entry::is_excluded(&line(r#","_COMM":"shell""#), &excludes));
    assert!(!entry::is_excluded(&line(""), &excludes));
    assert!(!entry::is_excluded(&line(r#","_COMM":"sh""#), &[]));
}

#[test]
fn field_names_are_the_journals() {
    let pattern = regex::Regex::new(&format!("^{FIELD_NAME_PATTERN}$")).unwrap();
    for (name, valid) in [
        ("_SYSTEMD_UNIT", true),
        ("PRIORITY", true),
        ("_", true),
        ("A1_", true),
        ("__CURSOR", false),
        ("1ABC", false),
        ("_1", true),
        ("lower", false),
        ("", false),
        ("A B", false),
        (&"A".repeat(64), true),
        (&"A".repeat(65), false),
    ] {
        assert_eq!(is_valid_field_name(name), valid, "{name:?}");
        assert_eq!(pattern.is_match(name), valid, "pattern {name:?}");
    }
}

#[test]
fn filters_are_checked() {
    assert!(check_filter(&filter()).is_ok());
    assert!(
        check_filter(&LogFilter::default()).is_ok(),
        "the whole journal"
    );
    let bad = [
        LogFilter {
            units: vec!["-.slice".into()],
            ..filter()
        },
        LogFilter {
            priority: Some(8),
            ..filter()
        },
        LogFilter {
            invocation: Some("xyz".into()),
            ..filter()
        },
        LogFilter {
            units: vec!["--all".into()],
            ..filter()
        },
        LogFilter {
            units: vec![String::new()],
            ..filter()
        },
        LogFilter {
            boot: Some("-1".into()),
            ..filter()
        },
        LogFilter {
            identifier: Some(String::new()),
            ..filter()
        },
        LogFilter {
            matches: vec![FieldMatch {
                field: "bad".into(),
                value: "x".into(),
            }],
            ..filter()
        },
        LogFilter {
            excludes: vec![FieldMatch {
                field: "A".into(),
                value: "x\0".into(),
            }],
            ..filter()
        },
        LogFilter {
            until: Some(1),
            ..filter()
        },
    ];
    assert!(check_filter(&bad[0]).is_ok(), "the root slice");
    for (i, f) in bad.iter().enumerate().skip(1) {
        assert!(check_filter(f).is_err(), "{i}: {f:?}");
    }
}
