//! The journal explorer against a real journal (issue 18): the histogram and the facet
//! counts equal what journalctl itself finds for the same filters; paging backwards joins
//! up; regex, literal, case and highlight; live-only streams; boots after a reboot with a
//! persistent journal; bad input.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::sse::SseReader;
use common::{Api, Sandbox, eventually, problem, urlencode};
use serde_json::Value;

/// Entries of two units at every priority, under several identifiers, spread over two
/// seconds; one without a PRIORITY field. Each writer lives a moment after writing:
/// journald reads a sender's unit from /proc, which a process already gone does not have.
const ALPHA: &str = "\
i=1; while [ $i -le 24 ]; do echo \"<$((i % 8))>alpha line $i\"; i=$((i+1)); done
systemd-cat -t alpha-worker -p err sh -c 'echo request Timeout after 5s; sleep 0.2'
systemd-cat -t alpha-worker -p info sh -c 'echo all fine; sleep 0.2'
sleep 1.1
i=25; while [ $i -le 40 ]; do echo \"<$((i % 8))>alpha line $i\"; i=$((i+1)); done
sleep 0.2
";
const BETA: &str = "\
for p in 3 4 6 7 7; do systemd-cat -t beta-db -p $p sh -c \"echo db timeout $p; sleep 0.1\"; done
for p in 2 5 6 6; do systemd-cat -t beta-api -p $p sh -c \"echo api TIMEOUT $p; sleep 0.1\"; done
systemd-cat -t beta-cache -p notice sh -c 'echo cache warm; sleep 0.1'
sleep 1.1
for p in 0 3 6; do systemd-cat -t beta-db -p $p sh -c \"echo late line $p; sleep 0.1\"; done
/usr/bin/python3 -c \"import socket, time; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); \\
s.sendto(b'MESSAGE=beta without priority\\nSYSLOG_IDENTIFIER=beta-raw\\n', '/run/systemd/journal/socket'); time.sleep(1)\"
";

fn unit(script: &str) -> String {
    format!("[Service]\nType=oneshot\nExecStart=/bin/sh {script}\n")
}

/// µs since the epoch of an RFC 3339 time.
fn micros(rfc3339: &str) -> u64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("{rfc3339}: {e}"))
        .timestamp_micros() as u64
}

fn rfc3339(micros: u64) -> String {
    chrono::DateTime::from_timestamp_micros(micros as i64)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// journalctl's `@SECONDS.FRACTION`.
fn at(micros: u64) -> String {
    format!("@{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

/// The entries journalctl prints for `args`, as JSON objects.
fn journalctl(sb: &Sandbox, args: &[String]) -> Vec<Value> {
    let mut cmd = vec![
        "journalctl".to_string(),
        "--no-pager".into(),
        "--quiet".into(),
        "--output=json".into(),
    ];
    cmd.extend(args.iter().cloned());
    let refs: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let out = sb.exec(&refs);
    // --grep with no match exits 1 without a message.
    assert!(
        out.status.success() || (out.status.code() == Some(1) && out.stderr.is_empty()),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn field<'a>(entry: &'a Value, name: &str) -> Option<&'a str> {
    entry.get(name).and_then(Value::as_str)
}

/// What the histogram's documentation says it counts, computed from journalctl's
/// entries: per bucket of `width` µs from `since`, per priority (none or unreadable
/// counts as 6, above 7 as 7).
fn expected_histogram(entries: &[&Value], since: u64, width: u64, n: usize) -> Vec<[u64; 8]> {
    let mut buckets = vec![[0u64; 8]; n];
    for e in entries {
        let t: u64 = field(e, "__REALTIME_TIMESTAMP").unwrap().parse().unwrap();
        let i = ((t.saturating_sub(since) / width) as usize).min(n - 1);
        let p = field(e, "PRIORITY")
            .and_then(|p| p.parse::<u64>().ok())
            .map_or(6, |p| p.min(7) as usize);
        buckets[i][p] += 1;
    }
    buckets
}

/// The 50 most frequent values of `name` (most first, then by value), with counts.
fn expected_facet(entries: &[&Value], name: &str) -> Vec<(String, u64)> {
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for e in entries {
        if let Some(v) = field(e, name) {
            *counts.entry(v).or_default() += 1;
        }
    }
    let mut values: Vec<(String, u64)> = counts.into_iter().map(|(v, c)| (v.into(), c)).collect();
    values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    values.truncate(50);
    values
}

/// One filter, as the API takes it and as journalctl does.
struct Case {
    query: String,
    journalctl: Vec<String>,
    /// `FIELD=VALUE`s the test leaves out itself (journalctl cannot).
    exclude: Vec<(&'static str, &'static str)>,
}

fn case(query: &str, journalctl: &[&str]) -> Case {
    Case {
        query: query.to_string(),
        journalctl: journalctl.iter().map(|a| a.to_string()).collect(),
        exclude: Vec::new(),
    }
}

/// Histogram and facets of `c` from the API, and the same from journalctl.
async fn compare(sb: &Sandbox, api: &Api, c: &Case, buckets: usize, fields: &[&str]) -> u64 {
    let sep = if c.query.is_empty() { "" } else { "&" };
    let histogram = api
        .get_json(&format!(
            "/api/v1/logs/histogram?{}{sep}buckets={buckets}",
            c.query
        ))
        .await;
    let since = micros(histogram["since"].as_str().unwrap());
    let until = micros(histogram["until"].as_str().unwrap());
    let width = (histogram["bucket_s"].as_f64().unwrap() * 1e6).round() as u64;
    assert!(width * buckets as u64 >= until - since, "{histogram}");
    let mut args = c.journalctl.clone();
    args.push(format!("--since={}", at(since)));
    args.push(format!("--until={}", at(until)));
    let output_fields = format!(
        "--output-fields=__REALTIME_TIMESTAMP,PRIORITY,{}",
        fields.join(",")
    );
    args.push(output_fields);
    let all = journalctl(sb, &args);
    let entries: Vec<&Value> = all
        .iter()
        .filter(|e| !c.exclude.iter().any(|(f, v)| field(e, f) == Some(v)))
        .collect();
    let expected = expected_histogram(&entries, since, width, buckets);
    let got: Vec<[u64; 8]> = histogram["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| serde_json::from_value(b["counts"].clone()).unwrap())
        .collect();
    assert_eq!(
        got,
        expected,
        "histogram of {:?} ({} entries)",
        c.query,
        entries.len()
    );
    assert_eq!(histogram["total"], entries.len(), "{}", c.query);
    for (i, b) in histogram["buckets"].as_array().unwrap().iter().enumerate() {
        assert_eq!(
            micros(b["start"].as_str().unwrap()),
            since + i as u64 * width
        );
    }

    // The same filter over the range the histogram counted.
    let filter: Vec<&str> = c
        .query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("since=") && !p.starts_with("until="))
        .collect();
    let facets = api
        .get_json(&format!(
            "/api/v1/logs/facets?{}&fields={}&since={}&until={}",
            filter.join("&"),
            fields.join(","),
            urlencode(&rfc3339(since)),
            urlencode(&rfc3339(until))
        ))
        .await;
    assert_eq!(facets["total"], entries.len(), "facets of {:?}", c.query);
    for name in fields {
        let got: Vec<(String, u64)> = facets["fields"][name]
            .as_array()
            .unwrap_or_else(|| panic!("{name} in {facets}"))
            .iter()
            .map(|v| {
                (
                    v["value"].as_str().unwrap().into(),
                    v["count"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            expected_facet(&entries, name),
            "{name} of {:?}",
            c.query
        );
    }
    entries.len() as u64
}

#[tokio::test(flavor = "multi_thread")]
async fn histogram_and_facets_equal_journalctl() {
    let sb = Sandbox::start();
    sb.write("/etc/gen-alpha.sh", ALPHA);
    sb.write("/etc/gen-beta.sh", BETA);
    sb.add_unit("gen-alpha.service", &unit("/etc/gen-alpha.sh"));
    sb.add_unit("gen-beta.service", &unit("/etc/gen-beta.sh"));
    let api = sb.login().await;
    let t0 = now_micros() - 1_000_000;
    sb.sh("systemctl start gen-alpha.service & systemctl start gen-beta.service; wait");
    eventually(
        "every entry in the journal",
        Duration::from_secs(10),
        async || {
            let count = |id: &str| {
                journalctl(&sb, &["--unit=gen-*".into(), format!("--identifier={id}")]).len()
            };
            (count("alpha-worker") == 2 && count("beta-db") == 8 && count("beta-raw") == 1)
                .then_some(())
        },
    )
    .await;
    let beta = journalctl(
        &sb,
        &[
            "--unit=gen-beta.service".into(),
            "--identifier=beta-raw".into(),
        ],
    );
    let beta_run = field(&beta[0], "_SYSTEMD_INVOCATION_ID")
        .unwrap()
        .to_string();
    let t1 = now_micros();
    std::thread::sleep(Duration::from_millis(500));
    let range = format!(
        "since={}&until={}",
        urlencode(&rfc3339(t0)),
        urlencode(&rfc3339(t1))
    );
    let r = |q: &str| {
        if q.is_empty() {
            range.clone()
        } else {
            format!("{range}&{q}")
        }
    };
    let facets = ["_SYSTEMD_UNIT", "PRIORITY", "SYSLOG_IDENTIFIER", "_COMM"];

    let cases = [
        case(&r(""), &[]),
        case(&r("units=gen-alpha.service"), &["--unit=gen-alpha.service"]),
        case(&r("priority=3"), &["--priority=3"]),
        case(&r("priority=7"), &["--priority=7"]),
        case(
            &r("identifier=alpha-worker"),
            &["--identifier=alpha-worker"],
        ),
        case(&r("grep=timeout"), &["--grep=timeout"]),
        case(&r("grep=Timeout"), &["--grep=Timeout"]),
        case(
            &r("grep=timeout&case=sensitive"),
            &["--grep=timeout", "--case-sensitive=yes"],
        ),
        case(
            &r("grep=TIMEOUT&case=insensitive"),
            &["--grep=TIMEOUT", "--case-sensitive=no"],
        ),
        case(
            &r("grep=T%5Ba-z%5D%2Bout&regex=true"),
            &["--grep=T[a-z]+out"],
        ),
        // Literal text: "line 1" is no pattern, "(" no group.
        case(&r("grep=line%201"), &["--grep=line 1"]),
        case(
            &r(
                "match=SYSLOG_IDENTIFIER%3Dbeta-api&match=SYSLOG_IDENTIFIER%3Dbeta-db&match=PRIORITY%3D6",
            ),
            &[
                "SYSLOG_IDENTIFIER=beta-api",
                "SYSLOG_IDENTIFIER=beta-db",
                "PRIORITY=6",
            ],
        ),
        case(
            &r("units=gen-alpha.service,gen-beta.service&priority=4&grep=line"),
            &[
                "--unit=gen-alpha.service",
                "--unit=gen-beta.service",
                "--priority=4",
                "--grep=line",
            ],
        ),
        Case {
            exclude: vec![("PRIORITY", "7"), ("SYSLOG_IDENTIFIER", "beta-api")],
            ..case(
                &r(
                    "match=_SYSTEMD_UNIT%3Dgen-beta.service&exclude=PRIORITY%3D7&exclude=SYSLOG_IDENTIFIER%3Dbeta-api",
                ),
                &["_SYSTEMD_UNIT=gen-beta.service"],
            )
        },
        // The run's own entries and PID 1's about it.
        case(
            &r(&format!("invocation={beta_run}")),
            &[
                &format!("_SYSTEMD_INVOCATION_ID={beta_run}"),
                "+",
                &format!("INVOCATION_ID={beta_run}"),
            ],
        ),
    ];
    let mut totals = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let buckets = if i % 2 == 0 { 7 } else { 60 };
        totals.push(compare(&sb, &api, c, buckets, &facets).await);
    }
    println!("entries per case: {totals:?}");
    // Each case found something, and the filters narrowed.
    assert!(totals.iter().all(|n| *n > 0), "{totals:?}");
    assert!(totals[0] > totals[1] && totals[1] > totals[4], "{totals:?}");
    assert!(
        totals[5] > totals[6] && totals[6] > 0,
        "smart case: {totals:?}"
    );
    // An invocation with a match: (match ∧ own entries) ∨ (match ∧ PID 1's about the run).
    let run_and_priority = Case {
        exclude: Vec::new(),
        ..case(
            &r(&format!("invocation={beta_run}&match=PRIORITY%3D3")),
            &[
                "PRIORITY=3",
                &format!("_SYSTEMD_INVOCATION_ID={beta_run}"),
                "+",
                "PRIORITY=3",
                &format!("INVOCATION_ID={beta_run}"),
            ],
        )
    };
    assert!(compare(&sb, &api, &run_and_priority, 5, &facets).await > 0);

    // Other fields, and the whole boot without times (from its first entry until now).
    compare(
        &sb,
        &api,
        &case("units=gen-beta.service", &["--unit=gen-beta.service"]),
        3,
        &["_PID", "_TRANSPORT"],
    )
    .await;
    let boot = compare(&sb, &api, &case("boot=0", &["--boot=0"]), 60, &facets).await;
    assert!(boot >= totals[0], "the boot has everything of the range");
}

/// A oneshot unit printing `line-1` .. `line-N`.
fn numbered(n: u32) -> String {
    format!(
        "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'i=1; while [ $$i -le {n} ]; do echo line-$$i; \
         i=$$((i+1)); done; sleep 0.2'\n"
    )
}

fn messages(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect()
}

/// Pages backwards through `query` from its newest entries, `lines` at a time; the
/// messages oldest first.
async fn page_back(api: &Api, query: &str, lines: usize) -> Vec<String> {
    let mut shown: Vec<Value> = Vec::new();
    let mut path = format!("/api/v1/logs?{query}&lines={lines}");
    for _ in 0..100 {
        let page = api.get_json(&path).await;
        let page = page.as_array().unwrap().clone();
        assert!(page.len() <= lines);
        if page.is_empty() {
            return shown
                .iter()
                .map(|e| e["message"].as_str().unwrap().to_string())
                .collect();
        }
        let first = page[0]["cursor"].as_str().unwrap().to_string();
        shown.splice(0..0, page);
        path = format!(
            "/api/v1/logs?{query}&lines={lines}&before={}",
            urlencode(&first)
        );
    }
    panic!("no end after 100 pages");
}

#[tokio::test(flavor = "multi_thread")]
async fn paging_backwards_joins_up_without_gap_or_repeat() {
    let sb = Sandbox::start();
    sb.add_unit("count.service", &numbered(250));
    sb.sh("systemctl start count.service");
    let api = sb.login().await;
    let all: Vec<String> = (1..=250).map(|i| format!("line-{i}")).collect();
    eventually("250 lines", Duration::from_secs(10), async || {
        let newest = api
            .get_json("/api/v1/logs?units=count.service&grep=line-&lines=1")
            .await;
        (messages(&newest) == ["line-250"]).then_some(())
    })
    .await;

    // Pages of 37 over the unit's lines (the unit's other entries are systemd's).
    let lines = page_back(&api, "units=count.service&grep=line-", 37).await;
    assert_eq!(lines, all);
    // A regex that matches every second line: its pages join up too.
    let even = page_back(
        &api,
        "units=count.service&grep=line-%5B0-9%5D*%5B02468%5D%24&regex=true",
        9,
    )
    .await;
    assert_eq!(
        even,
        all.iter()
            .filter(|l| l.ends_with(['0', '2', '4', '6', '8']))
            .cloned()
            .collect::<Vec<_>>()
    );
    // From a cursor whose entry the filter leaves out: the entries just before it.
    let odd = api
        .get_json("/api/v1/logs?units=count.service&grep=line-101&lines=1")
        .await;
    let cursor = odd[0]["cursor"].as_str().unwrap();
    let before = api
        .get_json(&format!(
            "/api/v1/logs?units=count.service&grep=line-%5B0-9%5D*%5B02468%5D%24&regex=true&lines=3&before={}",
            urlencode(cursor)
        ))
        .await;
    assert_eq!(messages(&before), ["line-96", "line-98", "line-100"]);
    // `after` from the same cursor continues forward, exactly.
    let after = api
        .get_json(&format!(
            "/api/v1/logs?units=count.service&grep=line-&lines=2&after={}",
            urlencode(cursor)
        ))
        .await;
    assert_eq!(messages(&after), ["line-102", "line-103"]);
    // Within a time range: the oldest page stops at `since`.
    let mid = api
        .get_json("/api/v1/logs?units=count.service&grep=line-120%24&regex=true&lines=1")
        .await;
    let t = mid[0]["time"].as_str().unwrap();
    let newest = api
        .get_json("/api/v1/logs?units=count.service&grep=line-&lines=1")
        .await;
    let ranged = page_back(
        &api,
        &format!("units=count.service&grep=line-&since={}", urlencode(t)),
        40,
    )
    .await;
    assert!(
        ranged.first().is_some_and(|l| {
            let n: u32 = l["line-".len()..].parse().unwrap();
            n <= 120
        }),
        "{ranged:?}"
    );
    assert_eq!(ranged.last(), messages(&newest).last());
    let from = all.iter().position(|l| *l == ranged[0]).unwrap();
    assert_eq!(ranged, all[from..], "no gap within the range");
    // The page's own older lines (HTML) page the same way.
    let html = api
        .get(&format!(
            "/ui/logs/lines?units=count.service&grep=line-&lines=2&before={}",
            urlencode(cursor)
        ))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(">line-99<") || html.contains("line-99"),
        "{html}"
    );
    assert!(
        html.contains("line-100") && !html.contains("line-101"),
        "{html}"
    );

    for bad in [
        format!("before={}&after={}", urlencode(cursor), urlencode(cursor)),
        "before=not-a-cursor".to_string(),
        "lines=0".to_string(),
    ] {
        problem(
            api.get(&format!("/api/v1/logs?units=count.service&{bad}"))
                .await,
            400,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn text_filters_literal_regex_case_and_highlight() {
    let sb = Sandbox::start();
    sb.add_unit(
        "words.service",
        "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo a.c; echo abc; echo ABC; echo \"x(1)\"; echo plain; sleep 0.2'\n",
    );
    sb.sh("systemctl start words.service");
    let api = sb.login().await;
    eventually("the words", Duration::from_secs(10), async || {
        let v = api
            .get_json("/api/v1/logs?units=words.service&grep=plain")
            .await;
        (messages(&v) == ["plain"]).then_some(())
    })
    .await;
    let get = async |q: &str| {
        messages(
            &api.get_json(&format!("/api/v1/logs?units=words.service&{q}"))
                .await,
        )
    };
    // Literal by default: "." and "(" are themselves; lower case matches any case.
    assert_eq!(get("grep=a.c").await, ["a.c"]);
    assert_eq!(get("grep=x(1)").await, ["x(1)"]);
    assert_eq!(get("grep=abc").await, ["abc", "ABC"]);
    // Regex: "." is any character; case as asked.
    assert_eq!(get("grep=a.c&regex=true").await, ["a.c", "abc", "ABC"]);
    assert_eq!(
        get("grep=a.c&regex=true&case=sensitive").await,
        ["a.c", "abc"]
    );
    assert_eq!(get("grep=ABC&case=insensitive").await, ["abc", "ABC"]);
    assert_eq!(
        get("grep=ABC").await,
        ["ABC"],
        "an upper-case letter: case-sensitive"
    );
    assert_eq!(get("grep=%5Ex%5C(%5Cd%5C)%24&regex=true").await, ["x(1)"]);
    // A pattern PCRE2 refuses: 400 naming grep, with PCRE2's reason.
    let body = problem(
        api.get("/api/v1/logs?units=words.service&grep=a(&regex=true")
            .await,
        400,
    )
    .await;
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("grep") && detail.contains("missing closing parenthesis"),
        "{detail}"
    );

    // Highlight: every line stays, matches are marked (HTML-escaped around them).
    let html = api
        .get("/ui/logs/lines?units=words.service&grep=a.c&regex=true&mode=highlight&range=all")
        .await
        .text()
        .await
        .unwrap();
    for word in ["x(1)", "plain"] {
        assert!(html.contains(word), "{word} is not hidden: {html}");
    }
    assert!(
        html.contains("<mark>a.c</mark>")
            && html.contains("<mark>abc</mark>")
            && html.contains("<mark>ABC</mark>"),
        "{html}"
    );
    assert!(!html.contains("<mark>plain"), "{html}");
    let filtered = api
        .get("/ui/logs/lines?units=words.service&grep=a.c&regex=true&range=all")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !filtered.contains("plain") && !filtered.contains("<mark>"),
        "{filtered}"
    );
    // So does the unit page's log panel, with its time range.
    let unit = api
        .get("/ui/units/words.service/logview?grep=abc&mode=highlight&range=24h")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        unit.contains("sse-connect=\"ui/units/words.service/logs/stream?grep=abc&#38;mode=highlight&#38;range=24h\"")
            && unit.contains("data-older=\"ui/units/words.service/logs/lines?"),
        "{unit}"
    );
    let html = api
        .get("/ui/units/words.service/logs/lines?grep=abc&mode=highlight&range=24h")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("<mark>abc</mark>")
            && html.contains("<mark>ABC</mark>")
            && html.contains("plain"),
        "{html}"
    );
    // The live view highlights too.
    let mut sse = SseReader::new(
        api.get("/ui/logs/stream?units=words.service&grep=%5Cd&regex=true&mode=highlight&lines=20&range=all")
            .await,
    );
    let mut lines = String::new();
    while !lines.contains("plain") {
        let ev = sse.next(Duration::from_secs(10)).await.expect("a line");
        lines.push_str(&ev.data);
    }
    assert!(
        lines.contains("x(<mark>1</mark>)") && lines.contains("abc"),
        "{lines}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_with_no_backlog_send_only_new_lines() {
    let sb = Sandbox::start();
    sb.add_unit(
        "tick.service",
        "[Service]\nExecStart=/bin/sh -c 'i=0; while :; do i=$$((i+1)); echo tick-$$i; sleep 0.05; done'\n",
    );
    sb.sh("systemctl start tick.service");
    let api = sb.login().await;
    let number = |v: &Value| -> u64 {
        v["message"].as_str().unwrap()["tick-".len()..]
            .parse()
            .unwrap()
    };
    let newest = eventually("ticks", Duration::from_secs(10), async || {
        let v = api
            .get_json("/api/v1/units/tick.service/logs?lines=1&grep=tick-")
            .await;
        v.as_array()
            .and_then(|a| a.first())
            .map(number)
            .filter(|n| *n > 10)
    })
    .await;
    let mut sse = SseReader::new(
        api.get("/api/v1/units/tick.service/logs/stream?lines=0&grep=tick-")
            .await,
    );
    let mut seen = Vec::new();
    while seen.len() < 20 {
        let ev = sse
            .next(Duration::from_secs(10))
            .await
            .expect("a live entry");
        seen.push(number(&serde_json::from_str(&ev.data).unwrap()));
    }
    assert!(
        seen[0] > newest,
        "no backlog: the first line {} is newer than {newest}",
        seen[0]
    );
    assert!(
        seen.windows(2).all(|w| w[1] == w[0] + 1),
        "no gap: {seen:?}"
    );

    // The whole journal, live only: the first entry is one written after the stream began.
    let mut all = SseReader::new(
        api.get("/api/v1/logs/stream?lines=0&identifier=marker")
            .await,
    );
    // Its headers came after unitdeck took the journal's end: an entry written now is
    // live, though the follower (a journalctl to spawn) may not have started yet.
    sb.sh("logger -t marker written-after");
    let ev = all.next(Duration::from_secs(10)).await.expect("the marker");
    let e: Value = serde_json::from_str(&ev.data).unwrap();
    assert_eq!(e["message"], "written-after");
    // A backlog of 10 000 is the most; more is a 400, as for reads.
    problem(api.get("/api/v1/logs/stream?lines=10001").await, 400).await;
}

/// A host directory removed when dropped.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn previous_boot_after_a_reboot_with_a_persistent_journal() {
    // A fixed machine ID and a host directory for /var/log/journal: every boot writes into
    // the same persistent journal (a volatile container otherwise starts a new one).
    let stamp = format!("{:x}{:016x}", std::process::id(), now_micros());
    let dir = TempDir(std::env::temp_dir().join(format!("unitdeck-journal-{stamp}")));
    std::fs::create_dir_all(&dir.0).unwrap();
    let machine_id = format!("{:0>32}", stamp);
    let args = [
        format!("--uuid={machine_id}"),
        format!("--bind={}:/var/log/journal", dir.0.display()),
    ];
    let mut sb = Sandbox::start_in(&args, &[]);
    sb.sh("logger -t boot-marker 'first boot' && journalctl --flush");
    eventually("the marker", Duration::from_secs(10), async || {
        (journalctl(&sb, &["--identifier=boot-marker".into()]).len() == 1).then_some(())
    })
    .await;
    sb.reboot();
    sb.sh("logger -t boot-marker 'second boot'");
    let api = sb.login().await;

    let listed: Value = serde_json::from_str(&sb.sh("journalctl --list-boots -o json")).unwrap();
    let boots = api.get_json("/api/v1/boots").await;
    let boots = boots.as_array().unwrap();
    assert_eq!(boots.len(), 2, "{boots:?}");
    for (b, l) in boots.iter().zip(listed.as_array().unwrap()) {
        assert_eq!(b["index"], l["index"]);
        assert_eq!(b["id"], l["boot_id"]);
        assert_eq!(
            micros(b["first"].as_str().unwrap()),
            l["first_entry"].as_u64().unwrap()
        );
    }
    assert_eq!(
        (boots[0]["index"].as_i64(), boots[1]["index"].as_i64()),
        (Some(-1), Some(0))
    );
    let previous = boots[0]["id"].as_str().unwrap();

    let marker = async |boot: &str| {
        messages(
            &api.get_json(&format!("/api/v1/logs?identifier=boot-marker&boot={boot}"))
                .await,
        )
    };
    eventually("the second marker", Duration::from_secs(10), async || {
        (marker("0").await == ["second boot"]).then_some(())
    })
    .await;
    assert_eq!(marker("-1").await, ["first boot"]);
    assert_eq!(marker(previous).await, ["first boot"]);
    assert_eq!(marker(&previous.to_uppercase()).await, ["first boot"]);
    // Counted over the previous boot, from its first entry to its last.
    let facets = ["_SYSTEMD_UNIT", "PRIORITY", "SYSLOG_IDENTIFIER", "_COMM"];
    let n = compare(&sb, &api, &case("boot=-1", &["--boot=-1"]), 20, &facets).await;
    let histogram = api.get_json("/api/v1/logs/histogram?boot=-1").await;
    assert_eq!(histogram["since"], boots[0]["first"]);
    assert_eq!(histogram["until"], boots[0]["last"]);
    assert_eq!(histogram["total"], n);
    assert!(n > 50, "a whole boot: {n}");
    // The explorer's "previous boot" shows its lines, not live.
    let page = api
        .get("/logs?range=prevboot&identifier=boot-marker")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("first boot") && !page.contains("second boot"),
        "{page}"
    );
    assert!(!page.contains("sse-connect"), "a past boot is not followed");

    for bad in ["-2", "0123456789abcdef0123456789abcdef"] {
        let body = problem(api.get(&format!("/api/v1/logs?boot={bad}")).await, 400).await;
        assert!(body["detail"].as_str().unwrap().contains("boot"), "{body}");
    }
    drop(sb);
}
