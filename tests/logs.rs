//! Live logs against a real journal: backlog + live without gaps, exact resume,
//! filters, one shared journalctl per filter, cleanup, escaping, download.

mod common;

use std::time::Duration;

use common::sse::SseReader;
use common::{Sandbox, eventually};
use serde_json::{Value, json};
use unitdeck::systemd::journal::MAX_FOLLOWERS;

/// A unit printing `line-N` every 20 ms.
const NUMBERS: &str = "[Service]\nExecStart=/bin/sh -c 'i=0; while [ $$i -lt 1000000 ]; do echo line-$$i; i=$$((i+1)); sleep 0.02; done'\n";

fn number(message: &str) -> u64 {
    message
        .strip_prefix("line-")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a numbered line: {message:?}"))
}

fn entry(event: &common::sse::SseEvent) -> Value {
    assert_eq!(event.event, "entry");
    let v: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(
        Some(v["cursor"].as_str().unwrap()),
        event.id.as_deref(),
        "id is the cursor"
    );
    v
}

async fn journalctl_count(sb: &Sandbox) -> usize {
    let out = sb.exec(&["pgrep", "-c", "-x", "journalctl"]);
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn backlog_then_live_without_gaps_and_exact_resume() {
    let sb = Sandbox::start();
    sb.add_unit("numbers.service", NUMBERS);
    sb.sh("systemctl start numbers.service");
    let api = sb.login().await;
    eventually("40 lines written", Duration::from_secs(10), async || {
        let logs: Value = api
            .get_json("/api/v1/units/numbers.service/logs?lines=1")
            .await;
        logs.as_array()
            .and_then(|a| a.first())
            .filter(|e| number(e["message"].as_str().unwrap()) >= 40)
            .map(|_| ())
    })
    .await;

    let res = api
        .get("/api/v1/units/numbers.service/logs/stream?lines=20")
        .await;
    assert_eq!(res.headers()["x-accel-buffering"], "no");
    let mut sse = SseReader::new(res);
    let mut seen = Vec::new();
    while seen.len() < 80 {
        let ev = sse
            .next(Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("an entry after {:?}", seen.last()));
        let e = entry(&ev);
        seen.push((
            number(e["message"].as_str().unwrap()),
            ev.id.clone().unwrap(),
        ));
    }
    for pair in seen.windows(2) {
        assert_eq!(pair[1].0, pair[0].0 + 1, "no gap, no repeat: {:?}", &seen);
    }
    assert!(seen[0].0 >= 20, "the backlog is the newest 20");
    drop(sse);

    // Reconnect from an entry in the middle: the next one is exactly the next number.
    let (n, cursor) = seen[50].clone();
    let res = api
        .request(
            reqwest::Method::GET,
            "/api/v1/units/numbers.service/logs/stream",
        )
        .header("last-event-id", &cursor)
        .send()
        .await
        .unwrap();
    let mut sse = SseReader::new(res);
    for expected in n + 1..n + 40 {
        let e = entry(&sse.next(Duration::from_secs(10)).await.expect("an entry"));
        assert_eq!(number(e["message"].as_str().unwrap()), expected);
    }

    // The JSON read: oldest first, `after` continues exactly.
    let after: Value = api
        .get_json(&format!(
            "/api/v1/units/numbers.service/logs?lines=5&after={}",
            common::urlencode(&cursor)
        ))
        .await;
    let numbers: Vec<u64> = after
        .as_array()
        .unwrap()
        .iter()
        .map(|e| number(e["message"].as_str().unwrap()))
        .collect();
    assert_eq!(numbers, (n + 1..n + 6).collect::<Vec<_>>());
    let first = &after[0];
    for field in [
        "cursor",
        "time",
        "priority",
        "identifier",
        "pid",
        "message",
        "invocation_id",
    ] {
        assert!(first.get(field).is_some(), "{field}");
    }
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(first["priority"], 6);
    assert_eq!(
        first["invocation_id"].as_str().unwrap(),
        sb.show("numbers.service", "InvocationID")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn filters_priority_grep_invocation_and_bad_input() {
    let sb = Sandbox::start();
    sb.add_unit(
        "talk.service",
        "[Service]\nType=oneshot\nRemainAfterExit=yes\n\
         ExecStart=/bin/sh -c 'echo \"<3>boom error\"; echo \"<4>careful warning\"; echo \"<6>just info\"; echo \"<script>alert(1)</script>\"'\n",
    );
    sb.sh("systemctl start talk.service");
    let api = sb.login().await;
    let first_run = sb.show("talk.service", "InvocationID");
    sb.sh("systemctl restart talk.service");
    let second_run = sb.show("talk.service", "InvocationID");
    assert_ne!(first_run, second_run);

    let messages = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap().to_string())
            .collect()
    };
    // A run's output reaches the journal after the run: wait for the last line of both.
    eventually(
        "both runs' lines in the journal",
        Duration::from_secs(15),
        async || {
            let all = messages(&api.get_json("/api/v1/units/talk.service/logs").await);
            let last = all.iter().filter(|m| m.contains("alert(1)")).count();
            (last == 2).then_some(())
        },
    )
    .await;
    let errors = api
        .get_json("/api/v1/units/talk.service/logs?priority=3")
        .await;
    let errors = messages(&errors);
    assert!(errors.iter().all(|m| m == "boom error"), "{errors:?}");
    assert_eq!(errors.len(), 2, "one per run");
    let warn = messages(
        &api.get_json("/api/v1/units/talk.service/logs?priority=4")
            .await,
    );
    assert!(
        warn.contains(&"careful warning".to_string()) && !warn.contains(&"just info".to_string())
    );
    let grep = messages(
        &api.get_json("/api/v1/units/talk.service/logs?grep=careful")
            .await,
    );
    assert_eq!(grep, vec!["careful warning", "careful warning"]);
    // The filter is text: "alert(1)" is no group, ".*" no wildcard.
    let literal = messages(
        &api.get_json("/api/v1/units/talk.service/logs?grep=alert(1)")
            .await,
    );
    assert_eq!(
        literal,
        vec!["<script>alert(1)</script>"; literal.len().max(1)]
    );
    let nothing = api
        .get_json("/api/v1/units/talk.service/logs?grep=.*")
        .await;
    assert_eq!(nothing, json!([]));
    // What the page's toolbar sends for "All priorities"; 7 is every entry as well, also
    // one without a PRIORITY field.
    for all in ["priority=&lines=&grep=careful", "priority=7&grep=careful"] {
        let path = format!("/api/v1/units/talk.service/logs?{all}");
        assert_eq!(messages(&api.get_json(&path).await), grep, "{all}");
    }
    sb.add_unit(
        "quiet.service",
        // Native protocol without PRIORITY, from a process that stays a moment: journald
        // reads the sender's unit from /proc, which a process already gone does not have.
        "[Service]\nType=oneshot\nExecStart=/usr/bin/python3 -c \"import socket, time; \
         s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); \
         s.sendto(b'MESSAGE=unprioritized note\\\\n', '/run/systemd/journal/socket'); time.sleep(1)\"\n",
    );
    sb.sh("systemctl start quiet.service");
    let raw = eventually(
        "the entry in the journal",
        Duration::from_secs(5),
        async || {
            let raw = sb.sh("journalctl -o json MESSAGE='unprioritized note'");
            (!raw.trim().is_empty()).then_some(raw)
        },
    )
    .await;
    assert!(
        !raw.contains("\"PRIORITY\""),
        "written without a priority: {raw}"
    );
    for all in ["", "priority=", "priority=7"] {
        let path = format!("/api/v1/units/quiet.service/logs?grep=unprioritized&{all}");
        assert_eq!(
            messages(&api.get_json(&path).await),
            vec!["unprioritized note"],
            "{all}"
        );
    }
    let run = api
        .get_json(&format!(
            "/api/v1/units/talk.service/logs?invocation={second_run}&grep=boom"
        ))
        .await;
    assert_eq!(messages(&run), vec!["boom error"]);

    // Download: text, one line per entry with time and priority.
    let res = api
        .get("/api/v1/units/talk.service/logs/download?priority=4")
        .await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let text = res.text().await.unwrap();
    assert!(
        text.lines()
            .any(|l| l.ends_with(": boom error") && l.contains(" <3> ")),
        "{text}"
    );

    // The HTML stream escapes messages.
    let res = api.get("/ui/units/talk.service/logs/stream").await;
    let mut sse = SseReader::new(res);
    let mut html = String::new();
    while let Some(ev) = sse.next(Duration::from_secs(3)).await {
        html.push_str(&ev.data);
        if html.contains("alert(1)") {
            break;
        }
    }
    assert!(
        html.contains("&lt;script&gt;alert(1)") || html.contains("&#60;script&#62;alert(1)"),
        "{html}"
    );
    assert!(!html.contains("<script>"));

    // Bad input: 400 / 404, problem+json.
    for (path, status) in [
        ("/api/v1/units/talk.service/logs?priority=9", 400),
        ("/api/v1/units/talk.service/logs?lines=0", 400),
        ("/api/v1/units/talk.service/logs?invocation=xyz", 400),
        ("/api/v1/units/talk.service/logs?after=a%20b", 400),
        ("/api/v1/units/nope.service/logs", 404),
        ("/api/v1/units/nope/logs", 400),
        ("/api/v1/units/talk.service/logs/stream?grep=a%01b", 400),
    ] {
        let res = api.get(path).await;
        assert_eq!(res.status(), status, "{path}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
    }
    // A reconnect's Last-Event-ID wins over `after`, which must still be a cursor; a
    // Last-Event-ID that is no cursor (or no text) is refused too.
    let cursor = "s=0be0894581d04038a186a31b9513ddf6;i=74;b=6c358a657e224b30b6f8ad16e3a5b8d8;\
        m=34021e649;t=661564e7399ae;x=3472e9b4178ea0e1";
    for (last_event_id, after) in [(cursor, "a%20b"), ("network.target", ""), ("\u{84}", "")] {
        let res = api
            .request(
                reqwest::Method::GET,
                &format!("/api/v1/units/talk.service/logs/stream?after={after}"),
            )
            .header("last-event-id", last_event_id)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{last_event_id:?} {after:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_viewers_share_one_journalctl_and_none_is_left() {
    let sb = Sandbox::start();
    sb.add_unit("numbers.service", NUMBERS);
    sb.sh("systemctl start numbers.service");
    let api = sb.login().await;
    assert_eq!(journalctl_count(&sb).await, 0);
    let mut viewers = Vec::new();
    for _ in 0..20 {
        let res = api
            .get("/api/v1/units/numbers.service/logs/stream?lines=5")
            .await;
        let mut sse = SseReader::new(res);
        sse.next(Duration::from_secs(10)).await.expect("an entry");
        viewers.push(sse);
    }
    // Backlog reads are short-lived; the follower stays.
    eventually(
        "exactly one journalctl for 20 viewers",
        Duration::from_secs(10),
        async || (journalctl_count(&sb).await == 1).then_some(()),
    )
    .await;
    // Every viewer keeps receiving.
    for sse in &mut viewers {
        assert!(sse.next(Duration::from_secs(10)).await.is_some());
    }
    // A different filter gets its own follower.
    let mut other = SseReader::new(
        api.get("/api/v1/units/numbers.service/logs/stream?lines=1&grep=line-")
            .await,
    );
    other.next(Duration::from_secs(10)).await.expect("an entry");
    eventually("two followers", Duration::from_secs(10), async || {
        (journalctl_count(&sb).await == 2).then_some(())
    })
    .await;
    drop(viewers);
    drop(other);
    eventually("no journalctl left", Duration::from_secs(10), async || {
        (journalctl_count(&sb).await == 0).then_some(())
    })
    .await;
}

/// Two units merged in one stream: both units' lines arrive in time order, each naming its
/// unit; the same set in another order shares the follower; the logs page renders the
/// merged view escaped; bad sets are refused.
#[tokio::test(flavor = "multi_thread")]
async fn merged_view_of_two_units() {
    let sb = Sandbox::start();
    sb.add_unit("numbers.service", NUMBERS);
    sb.add_unit(
        "shouts.service",
        "[Service]\nExecStart=/bin/sh -c 'while :; do echo \"<b>shout</b>\"; sleep 0.05; done'\n",
    );
    sb.sh("systemctl start numbers.service shouts.service");
    let api = sb.login().await;

    let mut merged = SseReader::new(
        api.get("/api/v1/logs/stream?units=numbers.service,shouts.service&lines=10")
            .await,
    );
    let (mut numbers, mut shouts, mut last_time) = (0, 0, String::new());
    while numbers < 5 || shouts < 5 {
        let event = merged
            .next(Duration::from_secs(10))
            .await
            .expect("merged entries keep coming");
        let e = entry(&event);
        match e["unit"].as_str() {
            Some("numbers.service") => numbers += 1,
            Some("shouts.service") => shouts += 1,
            // systemd's own lines about the two units ("Started ...").
            other => assert!(
                e["message"].as_str().unwrap_or("").contains(".service"),
                "an entry of neither unit: {other:?} {e}"
            ),
        }
        let time = e["time"].as_str().unwrap().to_string();
        assert!(time >= last_time, "time order: {time} after {last_time}");
        last_time = time;
    }
    let mut again = SseReader::new(
        api.get("/api/v1/logs/stream?units=shouts.service,numbers.service&lines=1")
            .await,
    );
    again.next(Duration::from_secs(10)).await.expect("an entry");
    eventually(
        "one follower for both orders",
        Duration::from_secs(10),
        async || (journalctl_count(&sb).await == 1).then_some(()),
    )
    .await;

    let read: Value = api
        .get_json("/api/v1/logs?units=numbers.service,shouts.service&lines=50")
        .await;
    let units: std::collections::HashSet<&str> = read
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["unit"].as_str())
        .collect();
    assert!(
        units.contains("numbers.service") && units.contains("shouts.service"),
        "{read}"
    );

    for bad in [
        "/api/v1/logs?units=",
        "/api/v1/logs?units=numbers.service,-x",
        "/api/v1/logs/stream?units=numbers.service,nope.service",
    ] {
        let res = api.get(bad).await;
        assert!(
            res.status() == 400 || res.status() == 404,
            "{bad}: {}",
            res.status()
        );
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{bad}"
        );
    }

    // The explorer of the two: their merged live view.
    let page = api
        .get("/logs?units=numbers.service,shouts.service")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("sse-connect=\"ui/logs/stream?units=numbers.service%2Cshouts.service\""),
        "{page}"
    );
    // Without units: the whole journal, this unit's lines among them.
    let whole: Value = api.get_json("/api/v1/logs?lines=200").await;
    assert!(
        whole
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["unit"] == "numbers.service"),
        "{whole}"
    );
    let mut lines = SseReader::new(
        api.get("/ui/logs/stream?units=shouts.service&lines=3")
            .await,
    );
    let line = lines.next(Duration::from_secs(10)).await.expect("a line");
    assert!(line.data.contains("class=\"unit\""), "{}", line.data);
    let shout = loop {
        let l = lines.next(Duration::from_secs(10)).await.expect("a line");
        if l.data.contains("shout") {
            break l.data;
        }
    };
    assert!(
        shout.contains("&#60;b&#62;shout&#60;/b&#62;") && !shout.contains("<b>"),
        "{shout}"
    );
}

/// A quiet stream still carries a comment line at least every 15 s (API.md), so proxies
/// and phones do not drop it as idle.
#[tokio::test(flavor = "multi_thread")]
async fn quiet_streams_carry_a_comment_every_15_seconds() {
    let sb = Sandbox::start();
    sb.add_unit(
        "quiet.service",
        "[Service]\nExecStart=/bin/sleep infinity\n",
    );
    sb.sh("systemctl start quiet.service");
    let api = sb.login().await;
    let mut logs = SseReader::new(
        api.get("/api/v1/units/quiet.service/logs/stream?lines=1&priority=0")
            .await,
    );
    let mut dashboard = SseReader::new(api.get("/ui/events?unit=quiet.service").await);
    let started = std::time::Instant::now();
    // 15 s and a margin: a busy machine can be late to the first read.
    while started.elapsed() < Duration::from_secs(25)
        && (logs.comments == 0 || dashboard.comments == 0)
    {
        let _ = tokio::join!(
            logs.next(Duration::from_millis(500)),
            dashboard.next(Duration::from_millis(500))
        );
    }
    assert!(
        logs.comments > 0,
        "no comment on the log stream in {:?}",
        started.elapsed()
    );
    assert!(
        dashboard.comments > 0,
        "no comment on the row stream in {:?}",
        started.elapsed()
    );
}

/// Each live log stream with a filter of its own runs a journalctl: past
/// `MAX_FOLLOWERS` different filters a new one is a 503 that says why; a filter already
/// open is shared and always served; a closed stream makes room again.
#[tokio::test(flavor = "multi_thread")]
async fn live_logs_with_different_filters_are_capped_shared_ones_are_not() {
    let sb = Sandbox::start();
    let api = sb.login().await;
    let stream =
        |filter: &str| format!("/api/v1/units/dbus.service/logs/stream?lines=1&grep={filter}");
    let mut open = Vec::new();
    for i in 0..MAX_FOLLOWERS {
        let res = api.get(&stream(&format!("filter-{i}"))).await;
        assert_eq!(res.status(), 200, "stream {i}");
        open.push(res);
    }
    let res = api.get(&stream("one-too-many")).await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: Value = res.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("{MAX_FOLLOWERS} log streams")),
        "{body}"
    );
    let shared = api.get(&stream("filter-0")).await;
    assert_eq!(shared.status(), 200, "a filter already open is shared");
    drop(shared);
    drop(open.pop());
    eventually("room for one more", Duration::from_secs(10), async || {
        (api.get(&stream("one-too-many")).await.status() == 200).then_some(())
    })
    .await;
}
