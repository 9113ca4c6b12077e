use super::*;

/// A few of systemd's directives, as `systemd --dump-configuration-items` lists them.
const DUMP: &str = "[Unit]\nDescription=STRING\nAfter=UNIT [...]\nWants=UNIT [...]\n\
    Requires=UNIT [...]\nBindsTo=UNIT [...]\nConflicts=UNIT [...]\nOnFailure=UNIT [...]\n\
    PropagatesStopTo=UNIT [...]\nSourcePath=PATH\nFailureAction=ACTION\n\
    SuccessAction=ACTION\nOnFailureJobMode=MODE\nOnFailureIsolate=BOOLEAN\n\
    StartLimitBurst=UNSIGNED\nDocumentation=URL\n\
    [Service]\nRestart=SERVICERESTART\nExecStart=PATH [ARGUMENT [...]]\n\
    ExecStartPre=PATH [ARGUMENT [...]]\nEnvironment=ENVIRON\nUnsetEnvironment=OTHER\n\
    LimitNOFILE=LIMIT\nMemoryMax=LIMIT\nMemoryHigh=LIMIT\nCPUQuota=OTHER\nNice=NICE\n\
    TasksMax=OTHER\nKillMode=KILLMODE\nStartLimitAction=ACTION\nUser=OTHER\n\
    [Install]\nWantedBy=UNIT [...]\n[Socket]\nListenStream=SOCKET [...]\n";

fn directives() -> Directives {
    Directives::parse(DUMP)
}

fn checked(spec: &OverrideSpec) -> Result<DropIn, Vec<FieldError>> {
    check(spec, "code-server.service", Ok(&directives()))
}

fn raw(text: &str) -> OverrideSpec {
    OverrideSpec {
        raw: text.into(),
        ..Default::default()
    }
}

fn full() -> OverrideSpec {
    OverrideSpec {
        environment: BTreeMap::from([
            (
                "GREETING".into(),
                Some("hello \"world\" 100% $HOME \\".into()),
            ),
            ("PASSWORD".into(), None),
        ]),
        restart: Some(Restart::OnAbnormal),
        restart_sec: Some("1min 30s".into()),
        timeout_stop_sec: Some("infinity".into()),
        memory_max: Some("512M".into()),
        cpu_quota: Some("150%".into()),
        nice: Some(-5),
        after: vec!["network-online.target".into()],
        wants: vec!["network-online.target".into()],
        exec_start: Some(vec![
            "/usr/bin/code-server".into(),
            "--bind-addr".into(),
            "127.0.0.1:4035".into(),
            "it's 100%".into(),
        ]),
        raw: "# more files\n[Service]\nLimitNOFILE = 65536\n\n[Unit]\nStartLimitBurst=9\n".into(),
    }
}

#[test]
fn the_drop_in_snapshot() {
    let drop_in = checked(&full()).unwrap();
    assert_eq!(
        drop_in.text,
        r#"# Managed by unitdeck — edit it in the panel, not by hand.
# X-Unitdeck-Override-Version: 1
# systemd applies it after the unit's own file and the drop-ins named before it.

[Unit]
After=network-online.target
Wants=network-online.target
# more files
StartLimitBurst=9

[Service]
# The empty ExecStart= drops the unit's command; the next line is the new one.
ExecStart=
# The ":" before the program: arguments are passed exactly as written, no $VARIABLE expansion.
ExecStart=:/usr/bin/code-server --bind-addr 127.0.0.1:4035 "it's 100%%"
Environment="GREETING=hello \"world\" 100%% $HOME \\"
UnsetEnvironment=PASSWORD
Restart=on-abnormal
RestartSec=1min 30s
TimeoutStopSec=infinity
MemoryMax=512M
CPUQuota=150%
Nice=-5
LimitNOFILE=65536
"#
    );
    assert!(super::super::render::is_managed(&drop_in.text));
    assert_eq!(
        drop_in.pulled_in(),
        [("wants", "network-online.target".to_string())]
    );
}

#[test]
fn a_raw_comment_stays_in_its_section() {
    let drop_in = checked(&raw("[Service]\n# why\nKillMode=mixed\n")).unwrap();
    assert!(
        drop_in.text.ends_with("[Service]\n# why\nKillMode=mixed\n"),
        "{}",
        drop_in.text
    );
}

#[test]
fn raw_dependencies_are_handed_to_the_caller() {
    let drop_in = checked(&raw(
        "[Unit]\nRequires=a.service b.service\nOnFailure=c.service\n\
         Conflicts=d.service\nPropagatesStopTo=e.service\n",
    ))
    .unwrap();
    let pulled: Vec<String> = drop_in.pulled_in().into_iter().map(|(_, u)| u).collect();
    assert_eq!(pulled, ["a.service", "b.service", "c.service"]);
    assert_eq!(drop_in.stops(), ["d.service", "e.service"]);
}

/// Raw lines an attacker (or a slip) would try; each is refused on `raw` and nothing is
/// rendered (tests/overrides.rs sends the same list to a real unitdeck and checks the
/// disk).
fn hostile_raw() -> Vec<String> {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("../../../tests/fixtures/hostile_raw.json")).unwrap();
    serde_json::from_value(fixture["raw"].clone()).unwrap()
}

#[test]
fn hostile_raw_lines_are_refused() {
    let hostile = hostile_raw();
    assert!(hostile.len() >= 30, "{}", hostile.len());
    for text in &hostile {
        let errors = checked(&raw(text)).expect_err(text);
        assert_eq!(errors.len(), 1, "{text:?}: {errors:?}");
        assert_eq!(errors[0].field, "raw", "{text:?}: {errors:?}");
        assert!(
            errors[0].message.starts_with("line "),
            "{text:?}: {errors:?}"
        );
        assert!(
            !errors[0].message.chars().any(char::is_control),
            "{errors:?}"
        );
    }
    let long = format!("[Service]\n{}", "# x\n".repeat(MAX_RAW_LINES));
    assert_eq!(checked(&raw(&long)).unwrap_err()[0].field, "raw");
    let big = format!("[Service]\nUser={}", "a".repeat(MAX_RAW_BYTES));
    assert_eq!(checked(&raw(&big)).unwrap_err()[0].field, "raw");
    // Messages say what is wrong.
    let message = |text: &str| checked(&raw(text)).unwrap_err()[0].message.clone();
    assert!(message("[Service]\nBogus=1").contains("knows no setting Bogus="));
    assert!(message("[Service]\nDescription=x").contains("belongs in [Unit], not [Service]"));
    assert!(message("[Service]\nRestart=no").contains("field of its own (restart)"));
    assert!(message("[Service]\nUser=%u").contains("specifier"));
    assert!(message("x\n[Service]\nBogus=1").starts_with("line 1:"));
}

#[test]
fn harmless_raw_lines_pass() {
    for text in [
        "[Service]\nLimitNOFILE=65536",
        "[Service]\nMemoryHigh=80%",
        "[Service]\nTasksMax=50% ",
        "[Unit]\nFailureAction=none",
        "[Unit]\nOnFailure=notify-me.service\nOnFailureJobMode=replace",
        "\n\n[Service]\n; semicolon comment\nKillMode=mixed\n\n",
    ] {
        let result = checked(&raw(text));
        assert!(result.is_ok(), "{text:?}: {result:?}");
    }
    // systemd would read "%20" in a URL as a specifier too.
    assert!(checked(&raw("[Unit]\nDocumentation=https://example.com/a%20b")).is_err());
}

#[test]
fn structured_fields_are_checked() {
    let bad: Vec<(&str, OverrideSpec)> = vec![
        (
            "environment",
            OverrideSpec {
                environment: BTreeMap::from([("A B".into(), Some("x".into()))]),
                ..Default::default()
            },
        ),
        (
            "environment",
            OverrideSpec {
                environment: BTreeMap::from([("A".into(), Some("x\n[Service]".into()))]),
                ..Default::default()
            },
        ),
        (
            "restart_sec",
            OverrideSpec {
                restart_sec: Some("5s\nExecStartPre=/bin/sh".into()),
                ..Default::default()
            },
        ),
        (
            "restart_sec",
            OverrideSpec {
                restart_sec: Some("infinity".into()),
                ..Default::default()
            },
        ),
        (
            "timeout_stop_sec",
            OverrideSpec {
                timeout_stop_sec: Some("%n".into()),
                ..Default::default()
            },
        ),
        (
            "memory_max",
            OverrideSpec {
                memory_max: Some("lots".into()),
                ..Default::default()
            },
        ),
        (
            "cpu_quota",
            OverrideSpec {
                cpu_quota: Some("0%".into()),
                ..Default::default()
            },
        ),
        (
            "nice",
            OverrideSpec {
                nice: Some(20),
                ..Default::default()
            },
        ),
        (
            "after",
            OverrideSpec {
                after: vec!["x.service\nExecStartPre=/bin/sh".into()],
                ..Default::default()
            },
        ),
        (
            "wants",
            OverrideSpec {
                wants: vec!["poweroff.target".into()],
                ..Default::default()
            },
        ),
        (
            "exec_start",
            OverrideSpec {
                exec_start: Some(vec!["code-server".into()]),
                ..Default::default()
            },
        ),
        (
            "exec_start",
            OverrideSpec {
                exec_start: Some(vec![]),
                ..Default::default()
            },
        ),
        ("override", OverrideSpec::default()),
        ("override", raw("# only a comment")),
    ];
    for (field, spec) in bad {
        let errors = checked(&spec).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, [field], "{spec:?}: {errors:?}");
    }
    // [Service] settings are for services; dependencies are for every unit.
    let errors = check(&full(), "nightly.timer", Ok(&directives())).unwrap_err();
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "environment",
            "restart",
            "restart_sec",
            "timeout_stop_sec",
            "memory_max",
            "cpu_quota",
            "nice",
            "exec_start",
            "raw"
        ]
    );
    let deps = OverrideSpec {
        after: vec!["network-online.target".into()],
        ..Default::default()
    };
    assert!(check(&deps, "nightly.timer", Ok(&directives())).is_ok());
    // Without systemd's list only raw lines cannot be checked.
    assert!(check(&deps, "a.service", Err("no systemd")).is_ok());
    let errors = check(
        &raw("[Service]\nKillMode=mixed"),
        "a.service",
        Err("no systemd"),
    );
    assert!(errors.unwrap_err()[0].message.contains("no systemd"));
}

#[test]
fn bodies_are_what_the_schema_says() {
    let spec: OverrideSpec = serde_json::from_value(serde_json::json!({
        "restart_sec": "5", "timeout_stop_sec": "1min", "environment": {"A": "1", "B": null}
    }))
    .unwrap();
    assert_eq!(spec.restart_sec.as_deref(), Some("5"));
    assert_eq!(spec.environment["B"], None);
    for bad in [
        serde_json::json!({"bogus": 1}),
        serde_json::json!({"after": null}),
        serde_json::json!({"raw": null}),
        serde_json::json!({"restart_sec": 5}),
    ] {
        assert!(
            serde_json::from_value::<OverrideSpec>(bad.clone()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn descriptions_and_redaction_hold_no_value() {
    let spec = full();
    let described = spec.describe();
    assert_eq!(
        described,
        "Environment (GREETING), UnsetEnvironment (PASSWORD), Restart, RestartSec, \
         TimeoutStopSec, MemoryMax, CPUQuota, Nice, After, Wants, ExecStart, LimitNOFILE, \
         StartLimitBurst"
    );
    let hidden = OverrideSpec {
        raw: "[Service]\nSetCredential=db:hunter2\n".into(),
        ..spec
    }
    .redacted();
    assert_eq!(hidden.environment["GREETING"].as_deref(), Some("***"));
    assert_eq!(hidden.environment["PASSWORD"], None);
    assert_eq!(hidden.raw, "[Service]\nSetCredential=\"db:***\"\n");
}

#[test]
fn only_process_settings_need_a_restart() {
    let keys = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(s, k)| (s.to_string(), k.to_string()))
            .collect()
    };
    assert!(!needs_restart(&keys(&[
        ("Service", "MemoryMax"),
        ("Service", "Restart"),
        ("Unit", "After"),
    ])));
    assert!(needs_restart(&keys(&[("Service", "Environment")])));
    assert!(needs_restart(&keys(&[("Service", "LimitNOFILE")])));
    assert_eq!(field_of_key("UnsetEnvironment"), "environment");
    assert_eq!(field_of_key("LimitNOFILE"), "raw");
}

/// The drop-in of the fullest spec, applied to a unit by the real `systemd-analyze
/// verify`, draws no message; a wrong value in it does.
#[tokio::test]
async fn systemd_analyze_accepts_the_drop_in() {
    let Ok(directives) = super::super::directives::directives().await else {
        eprintln!("skipping: systemd's directives are not available");
        return;
    };
    let dir = std::env::temp_dir().join(format!("unitdeck-dropin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("probe.service.d")).unwrap();
    std::fs::write(
        dir.join("probe.service"),
        "[Service]\nExecStart=/bin/sleep 1\nEnvironment=A=1\n",
    )
    .unwrap();
    let mut spec = full();
    spec.exec_start = Some(vec!["/bin/sleep".into(), "100%".into()]);
    spec.raw = "[Service]\nLimitNOFILE=65536\nMemoryHigh=80%\n".into();
    let verify = |text: &str| {
        std::fs::write(dir.join("probe.service.d").join(DROP_IN_NAME), text).unwrap();
        let out = std::process::Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(dir.join("probe.service"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let drop_in = check(&spec, "probe.service", Ok(directives)).unwrap();
    let said = verify(&drop_in.text);
    assert!(!said.contains(DROP_IN_NAME), "{said}");
    spec.restart_sec = Some("5 parsecs".into());
    let drop_in = check(&spec, "probe.service", Ok(directives)).unwrap();
    assert!(verify(&drop_in.text).contains(DROP_IN_NAME));
    let _ = std::fs::remove_dir_all(&dir);
}
