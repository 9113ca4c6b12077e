//! Benchmark: from systemd's state change of a failing unit (its StateChangeTimestamp,
//! which the notification carries as `time`) to the arrival of the `unit_failed` POST at
//! a receiver on 127.0.0.1 (issue 17's target: p99 ≤ 100 ms over 50 failures). See
//! bench/README.md.
//!
//! ```sh
//! cargo test --release --test bench_alerts -- --ignored --nocapture
//! ```

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::receiver::Receiver;
use common::{Sandbox, eventually};
use serde_json::json;

const FAILURES: usize = 50;
/// Between two failures: each one's notification is out long before the next.
const SPACING: Duration = Duration::from_millis(300);

/// Milliseconds at the given percentile (nearest rank).
fn percentile(sorted_ms: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted_ms.len() as f64).ceil() as usize;
    sorted_ms[rank.clamp(1, sorted_ms.len()) - 1]
}

fn epoch_ms(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64() * 1000.0
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: cargo test --release --test bench_alerts -- --ignored --nocapture"]
async fn bench_alerts() {
    let sb = Sandbox::start_with(&[("RUST_LOG", "unitdeck=info")]);
    let api = sb.login().await;
    let receiver = Receiver::start(200).await;
    let res = api
        .post_json(
            "/api/v1/notifications/channels",
            &json!({"name": "bench", "kind": "webhook", "url": receiver.url("/"),
                    "events": ["unit_failed"], "cooldown_s": 1}),
        )
        .await;
    assert_eq!(res.status(), 201);
    // One unit per failure: no cooldown in the way. Each runs 50 ms, then exits 1.
    for i in 0..FAILURES {
        sb.write(
            &format!("/etc/systemd/system/bench-fail-{i:02}.service"),
            "[Service]\nExecStart=/bin/sh -c 'sleep 0.05; exit 1'\n",
        );
    }
    sb.sh("systemctl daemon-reload");
    eventually(
        "unitdeck lists the units",
        Duration::from_secs(30),
        async || {
            let units = api.get_json("/api/v1/units?q=bench-fail").await;
            (units.as_array().unwrap().len() == FAILURES).then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    for i in 0..FAILURES {
        sb.sh(&format!(
            "systemctl start --no-block bench-fail-{i:02}.service"
        ));
        tokio::time::sleep(SPACING).await;
    }
    let got = eventually("every failure told", Duration::from_secs(30), async || {
        let got: Vec<_> = receiver
            .requests()
            .into_iter()
            .map(|r| (r.at, r.json()))
            .filter(|(_, v)| v["event"] == "unit_failed")
            .collect();
        (got.len() >= FAILURES).then_some(got)
    })
    .await;
    assert_eq!(got.len(), FAILURES, "one notification per failure");
    let mut ms: Vec<f64> = got
        .iter()
        .map(|(at, body)| {
            let changed = chrono::DateTime::parse_from_rfc3339(body["time"].as_str().unwrap())
                .unwrap()
                .timestamp_micros() as f64
                / 1000.0;
            epoch_ms(*at) - changed
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    println!(
        "state change → POST at the receiver, {FAILURES} failures: \
         min {:.1} ms, p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms \
         (of which {} ms is the debounce)",
        ms[0],
        percentile(&ms, 50.0),
        percentile(&ms, 90.0),
        percentile(&ms, 99.0),
        ms[ms.len() - 1],
        unitdeck::systemd::FAILURE_DEBOUNCE.as_millis()
    );
    let delivered = api
        .get_json("/api/v1/notifications/deliveries?limit=1000")
        .await;
    let ok = delivered
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["status"] == "delivered")
        .count();
    assert_eq!(ok, FAILURES, "every delivery recorded");
}
