//! Decoding D-Bus property maps (GetAll replies and PropertiesChanged bodies)
//! into the cached record of a unit. One decoder serves both, so a signal and a
//! fresh read can never disagree about a field.

use std::collections::HashMap;

use zbus::OwnedVariant;

use super::format_usec;

pub type PropertyMap = HashMap<String, OwnedVariant>;

/// What the cache keeps per unit: the fields of a summary that come from systemd.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UnitRecord {
    pub name: String,
    pub description: Option<String>,
    pub load_state: Option<String>,
    pub active_state: Option<String>,
    pub sub_state: Option<String>,
    pub unit_file_state: Option<String>,
    pub fragment_path: Option<String>,
    pub main_pid: Option<u32>,
    pub memory_bytes: Option<u64>,
    pub cpu_usage_ns: Option<u64>,
    pub active_since: Option<String>,
    pub n_restarts: Option<u32>,
    pub invocation_id: Option<String>,
    /// The systemd message the newest applied data came from (see [`Stamp`]).
    pub stamp: Option<Stamp>,
}

/// Where a piece of unit data came from: systemd's unique bus name and the serial
/// of its message (a signal, or the reply to a read). systemd numbers its messages
/// in the order it sends them, so of two stamps from the same connection the lower
/// serial is the older state. A signal queued behind a fresher read (a resync, the
/// refresh after an action) must not roll the cache back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub sender: String,
    pub serial: u32,
}

impl Stamp {
    pub fn of(msg: &zbus::Message) -> Option<Self> {
        let header = msg.header();
        Some(Self {
            sender: header.sender()?.to_string(),
            serial: header.primary().serial_num().get(),
        })
    }

    /// Sent by the same systemd connection before `other`.
    pub fn is_older_than(&self, other: &Stamp) -> bool {
        self.sender == other.sender && self.serial < other.serial
    }
}

impl UnitRecord {
    pub fn new(name: String) -> Self {
        Self {
            name,
            ..Self::default()
        }
    }

    /// Applies `props` stamped `stamp` unless the record already holds newer data;
    /// returns whether it applied them.
    pub fn apply_stamped(&mut self, props: &[&PropertyMap], stamp: Option<&Stamp>) -> bool {
        if let (Some(new), Some(held)) = (stamp, &self.stamp)
            && new.is_older_than(held)
        {
            return false;
        }
        for p in props {
            self.apply(p);
        }
        if let Some(stamp) = stamp {
            self.stamp = Some(stamp.clone());
        }
        true
    }

    /// Applies every property it knows from `props`; ignores the rest.
    pub fn apply(&mut self, props: &PropertyMap) {
        for (key, value) in props {
            match key.as_str() {
                "Description" => self.description = string(value),
                "LoadState" => self.load_state = string(value),
                "ActiveState" => self.active_state = string(value),
                "SubState" => self.sub_state = string(value),
                "UnitFileState" => self.unit_file_state = string(value),
                "FragmentPath" => self.fragment_path = string(value),
                "ActiveEnterTimestamp" => self.active_since = u64_of(value).and_then(format_usec),
                "InvocationID" => self.invocation_id = invocation_id(value),
                "MainPID" => self.main_pid = u32_of(value).filter(|pid| *pid != 0),
                "NRestarts" => self.n_restarts = u32_of(value),
                "MemoryCurrent" => self.memory_bytes = u64_of(value).filter(|v| *v != u64::MAX),
                "CPUUsageNSec" => self.cpu_usage_ns = u64_of(value).filter(|v| *v != u64::MAX),
                _ => {}
            }
        }
    }
}

/// A string property; empty strings mean "unknown" for every field we keep.
pub fn string(value: &OwnedVariant) -> Option<String> {
    let owned = value.try_clone().ok()?;
    String::try_from(owned).ok().filter(|s| !s.is_empty())
}

pub fn u64_of(value: &OwnedVariant) -> Option<u64> {
    u64::try_from(value.try_clone().ok()?).ok()
}

pub fn u32_of(value: &OwnedVariant) -> Option<u32> {
    u32::try_from(value.try_clone().ok()?).ok()
}

pub fn strings(value: &OwnedVariant) -> Vec<String> {
    value
        .try_clone()
        .ok()
        .and_then(|v| Vec::<String>::try_from(v).ok())
        .unwrap_or_default()
}

/// InvocationID is 16 raw bytes; shown as 32 hex digits like journald does.
fn invocation_id(value: &OwnedVariant) -> Option<String> {
    let bytes = Vec::<u8>::try_from(value.try_clone().ok()?).ok()?;
    (bytes.len() == 16).then(|| hex::encode(bytes))
}

/// ExecStart: a(sasbttttuii) → the argv of each command.
pub fn exec_argv(value: &OwnedVariant) -> Vec<Vec<String>> {
    type ExecCommand = (String, Vec<String>, bool, u64, u64, u64, u64, u32, i32, i32);
    value
        .try_clone()
        .ok()
        .and_then(|v| Vec::<ExecCommand>::try_from(v).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|(_path, argv, ..)| argv)
        .collect()
}

/// TimersCalendar: a(sst) → the calendar expressions.
pub fn calendar_specs(value: &OwnedVariant) -> Vec<String> {
    value
        .try_clone()
        .ok()
        .and_then(|v| Vec::<(String, String, u64)>::try_from(v).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|(_base, spec, _next)| spec)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v<T: Into<zbus::Variant<'static>>>(x: T) -> OwnedVariant {
        OwnedVariant::try_from(x.into()).unwrap()
    }

    #[test]
    fn older_data_does_not_roll_a_record_back() {
        let stamp = |sender: &str, serial| Stamp {
            sender: sender.to_string(),
            serial,
        };
        let state = |s: &'static str| PropertyMap::from([("ActiveState".to_string(), v(s))]);
        let mut record = UnitRecord::new("x.service".into());
        // A fresh read (serial 20), then a signal that was queued behind it (serial 12).
        assert!(record.apply_stamped(&[&state("active")], Some(&stamp(":1.1", 20))));
        assert!(!record.apply_stamped(&[&state("inactive")], Some(&stamp(":1.1", 12))));
        assert_eq!(record.active_state.as_deref(), Some("active"));
        // Newer data applies; so does data from a new systemd connection, or unstamped data.
        assert!(record.apply_stamped(&[&state("failed")], Some(&stamp(":1.1", 21))));
        assert!(record.apply_stamped(&[&state("active")], Some(&stamp(":1.9", 3))));
        assert!(record.apply_stamped(&[&state("inactive")], None));
        assert_eq!(record.active_state.as_deref(), Some("inactive"));
        assert_eq!(record.stamp, Some(stamp(":1.9", 3)));
    }

    #[test]
    fn applies_known_properties_and_normalises_sentinels() {
        let mut record = UnitRecord::new("x.service".into());
        let props: PropertyMap = [
            ("ActiveState".to_string(), v("active")),
            ("SubState".to_string(), v("running")),
            ("MainPID".to_string(), v(0u32)),
            ("NRestarts".to_string(), v(3u32)),
            ("MemoryCurrent".to_string(), v(u64::MAX)),
            ("CPUUsageNSec".to_string(), v(42u64)),
            (
                "ActiveEnterTimestamp".to_string(),
                v(1_795_857_200_123_456u64),
            ),
            (
                "InvocationID".to_string(),
                v((0u8..16).collect::<Vec<u8>>()),
            ),
            ("Description".to_string(), v("")),
            ("SomethingElse".to_string(), v(1u8)),
        ]
        .into_iter()
        .collect();
        record.apply(&props);
        assert_eq!(record.active_state.as_deref(), Some("active"));
        assert_eq!(record.sub_state.as_deref(), Some("running"));
        assert_eq!(record.main_pid, None);
        assert_eq!(record.n_restarts, Some(3));
        assert_eq!(record.memory_bytes, None);
        assert_eq!(record.cpu_usage_ns, Some(42));
        assert_eq!(
            record.active_since.as_deref(),
            Some("2026-11-28T09:13:20.123456Z")
        );
        assert_eq!(
            record.invocation_id.as_deref(),
            Some("000102030405060708090a0b0c0d0e0f")
        );
        assert_eq!(record.description, None);
    }
}
