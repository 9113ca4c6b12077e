//! Memory and CPU of running services, sampled while someone looks (systemd sends no
//! signal for them), for the lists and the sparklines.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{StreamExt, stream};

use super::cache::{MAX_SAMPLES, Sample, Systemd, is_at_rest};
use super::manager::Bus;
use super::names::{unit_object_path, unit_type};
use super::props::PropertyMap;
use super::watcher::LOAD_CONCURRENCY;

/// How often memory/CPU are refreshed, and for how long after the last look.
const STATS_PERIOD: Duration = Duration::from_secs(3);
const INTEREST_WINDOW_SECS: i64 = 30;

impl Systemd {
    pub(super) async fn refresh_stats_forever(self) {
        let mut tick = tokio::time::interval(STATS_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let idle = chrono::Utc::now().timestamp()
                - self.inner.last_interest.load(Ordering::Relaxed)
                > INTEREST_WINDOW_SECS;
            let Ok(bus) = self.bus() else { continue };
            if idle && self.inner.events.receiver_count() == 0 {
                continue;
            }
            self.refresh_stats(&bus).await;
        }
    }

    /// Memory and CPU of running services; stored without an event (they change constantly).
    async fn refresh_stats(&self, bus: &Bus) {
        let running: Vec<String> = {
            let units = self.inner.units.read().unwrap();
            units
                .values()
                .filter(|r| unit_type(&r.name) == "service")
                .filter(|r| r.is_read() && !is_at_rest(r.active_state.as_deref()))
                .map(|r| r.name.clone())
                .collect()
        };
        let stats: Vec<(String, PropertyMap)> = stream::iter(running)
            .map(|name| async move {
                let path = unit_object_path(&name);
                let mut map = PropertyMap::new();
                for key in ["MemoryCurrent", "CPUUsageNSec"] {
                    if let Ok(v) = bus
                        .get(&path, "org.freedesktop.systemd1.Service", key)
                        .await
                    {
                        map.insert(key.to_string(), v);
                    }
                }
                (name, map)
            })
            .buffer_unordered(LOAD_CONCURRENCY)
            .collect()
            .await;
        let at_ms = chrono::Utc::now().timestamp_millis();
        let mut units = self.inner.units.write().unwrap();
        let mut samples = self.inner.samples.write().unwrap();
        for (name, map) in stats {
            if let Some(record) = units.get_mut(&name) {
                record.apply(&map);
                let series = samples.entry(name).or_default();
                if series.len() == MAX_SAMPLES {
                    series.pop_front();
                }
                series.push_back(Sample {
                    at_ms,
                    memory_bytes: record.memory_bytes,
                    cpu_usage_ns: record.cpu_usage_ns,
                });
            }
        }
        // Units that stopped keep no history.
        samples.retain(|name, _| units.contains_key(name));
    }
}
