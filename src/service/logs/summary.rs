//! Counting the journal: the histogram and the facets of a selection over a time range
//! (one scan gives both), and the boots.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use super::{LogSelection, time};
use crate::error::{AppError, AppResult};
use crate::service::Services;
use crate::systemd::journal::scan::{ScanRequest, ScanResult};
use crate::systemd::journal::{self, format_time};

/// The histogram and the facet counts of a selection over `since..=until`.
#[derive(Debug, Clone)]
pub struct LogSummary {
    /// µs since the epoch.
    pub since: u64,
    pub until: u64,
    pub scan: ScanResult,
}

/// Entries per time bucket and priority.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Histogram {
    /// The range counted (RFC 3339, µs, UTC), both ends included: the `since` and
    /// `until` asked for, else the boot's (or the journal's) first entry and now (a
    /// past boot: its last entry).
    pub since: String,
    pub until: String,
    /// The width of a bucket in seconds; the last one may end after `until`.
    pub bucket_s: f64,
    /// Entries counted.
    pub total: u64,
    pub buckets: Vec<Bucket>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Bucket {
    /// Where the bucket starts (RFC 3339).
    pub start: String,
    /// Entries of priority 0 (emerg) to 7 (debug); an entry without a readable PRIORITY
    /// counts as 6 (info).
    pub counts: [u64; 8],
}

/// The most frequent values of fields over the range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Facets {
    /// Entries counted.
    pub total: u64,
    /// Per field asked for, its 50 most frequent values, most frequent first: the number
    /// of entries that have the value (what `journalctl FIELD=VALUE` counts).
    pub fields: BTreeMap<String, Vec<FacetValue>>,
    /// Fields with more than 10,000 distinct values in the range: values after the
    /// first 10,000 were not counted.
    pub capped: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FacetValue {
    pub value: String,
    pub count: u64,
}

/// A boot the journal has entries of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct BootInfo {
    /// 0: the current boot; -1 the one before, ...
    pub index: i64,
    /// The boot ID (32 hex digits), what `boot=` takes.
    pub id: String,
    /// Its first and last entry (RFC 3339).
    pub first: String,
    pub last: String,
}

impl LogSummary {
    pub fn histogram(&self) -> Histogram {
        let width = self.scan.bucket_us;
        Histogram {
            since: format_time(self.since),
            until: format_time(self.until),
            bucket_s: width as f64 / 1e6,
            total: self.scan.total,
            buckets: self
                .scan
                .buckets
                .iter()
                .zip(0u64..)
                .map(|(counts, i)| Bucket {
                    start: format_time(self.since.saturating_add(i * width)),
                    counts: *counts,
                })
                .collect(),
        }
    }

    pub fn facets(&self) -> Facets {
        Facets {
            total: self.scan.total,
            fields: self
                .scan
                .facets
                .iter()
                .map(|f| {
                    let values = f
                        .values
                        .iter()
                        .map(|(value, count)| FacetValue {
                            value: value.clone(),
                            count: *count,
                        })
                        .collect();
                    (f.field.clone(), values)
                })
                .collect(),
            capped: self
                .scan
                .facets
                .iter()
                .filter(|f| f.capped)
                .map(|f| f.field.clone())
                .collect(),
        }
    }
}

impl Services {
    /// The histogram (`buckets`, 0 for none) and the counts of `fields` over the range
    /// `sel` names: its `since` and `until`, else those of its boot, else from the
    /// journal's first entry until now.
    pub async fn log_summary(
        &self,
        sel: &LogSelection,
        buckets: usize,
        fields: &[String],
    ) -> AppResult<LogSummary> {
        let now = time::now();
        let (filter, boot) = self.resolve_filter(sel, now).await?;
        let since = match (filter.since, &boot) {
            (Some(since), _) => since,
            (None, Some(boot)) => boot.first,
            (None, None) => journal::list_boots()
                .await
                .map_err(AppError::internal)?
                .first()
                .map_or(now, |b| b.first),
        };
        let until = match (filter.until, &boot) {
            (Some(until), _) => until,
            (None, Some(boot)) if boot.index != 0 => boot.last,
            _ => now,
        };
        let since = since.min(until);
        let request = ScanRequest {
            filter,
            since,
            until,
            buckets,
            fields: fields.to_vec(),
        };
        let scan = self.scanner.scan(&request).await?;
        Ok(LogSummary { since, until, scan })
    }

    /// The boots the journal has entries of, oldest first.
    pub async fn boots(&self) -> AppResult<Vec<BootInfo>> {
        let boots = journal::list_boots().await.map_err(AppError::internal)?;
        Ok(boots
            .into_iter()
            .map(|b| BootInfo {
                index: b.index,
                id: b.id,
                first: format_time(b.first),
                last: format_time(b.last),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::systemd::journal::scan::FacetCount;

    #[test]
    fn the_scan_becomes_histogram_and_facets() {
        let summary = LogSummary {
            since: 1_796_566_200_000_000,
            until: 1_796_566_260_000_000,
            scan: ScanResult {
                total: 3,
                buckets: vec![[0, 0, 0, 1, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 0, 1]],
                bucket_us: 30_000_000,
                facets: vec![FacetCount {
                    field: "_COMM".into(),
                    values: vec![("sh".into(), 2), ("cat".into(), 1)],
                    distinct: 2,
                    capped: true,
                }],
                stats: Default::default(),
            },
        };
        let h = summary.histogram();
        assert_eq!(h.since, "2026-12-06T14:10:00.000000Z");
        assert_eq!(h.bucket_s, 30.0);
        assert_eq!(h.buckets[1].start, "2026-12-06T14:10:30.000000Z");
        assert_eq!(h.buckets[1].counts[7], 1);
        let f = summary.facets();
        assert_eq!(f.total, 3);
        assert_eq!(
            f.fields["_COMM"],
            [
                FacetValue {
                    value: "sh".into(),
                    count: 2
                },
                FacetValue {
                    value: "cat".into(),
                    count: 1
                }
            ]
        );
        assert_eq!(f.capped, ["_COMM"]);
    }
}
