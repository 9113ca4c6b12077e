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
    /// Whether InvocationID was ever told (None then means "never started").
    pub invocation_known: bool,
    /// StateChangeTimestamp: when the active state last changed (µs since the epoch).
    pub state_change_usec: Option<u64>,
    /// The service's `Result` (`success`, `exit-code`, ...; a timer's too).
    pub result: Option<String>,
    /// How the main process ended (ExecMainCode: 1 exited, 2 killed, 3 dumped) and its
    /// status (the exit code, or the signal's number).
    pub exec_main_code: Option<i32>,
    pub exec_main_status: Option<i32>,
    /// The job systemd runs on the unit now (`Job`), if any.
    pub job_id: Option<u32>,
    /// A timer's LastTriggerUSec (µs since the epoch).
    pub last_trigger_usec: Option<u64>,
    /// The units this one starts (a timer's service).
    pub triggers: Vec<String>,
    /// The systemd connection (unique bus name) the serials below come from.
    sender: Option<String>,
    /// Per field of [`KEYS`], the serial of the message its value came from (0: none).
    serials: [u32; KEYS.len()],
    /// The cache generation that last stored into this record (see the watcher's fill).
    pub seen: u64,
    /// Whether `fragment_path` comes from a read (ListUnits does not have it).
    pub fragment_known: bool,
    /// What the watcher knows of the run in progress (`transitions`).
    pub run: RunNotes,
}

/// What the watcher noted about a unit's runs, beyond systemd's properties.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunNotes {
    /// What started the run of the current InvocationID, when the watcher saw it start.
    pub trigger: Option<super::Trigger>,
    /// The StateChangeTimestamp of the failure last reported (reported once).
    pub failure_reported: Option<u64>,
    /// A timer's LastTriggerUSec that a run of its service was attributed to already.
    pub trigger_claimed: Option<u64>,
}

/// The properties a record keeps, by their D-Bus names.
const KEYS: [&str; 19] = [
    "Description",
    "LoadState",
    "ActiveState",
    "SubState",
    "UnitFileState",
    "FragmentPath",
    "ActiveEnterTimestamp",
    "InvocationID",
    "MainPID",
    "NRestarts",
    "MemoryCurrent",
    "CPUUsageNSec",
    "StateChangeTimestamp",
    "Result",
    "ExecMainCode",
    "ExecMainStatus",
    "Job",
    "LastTriggerUSec",
    "Triggers",
];

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
    /// Whether this message came before `other` (from the same connection; across
    /// connections nothing is known).
    pub fn is_before(&self, other: &Stamp) -> bool {
        self.sender == other.sender && self.serial < other.serial
    }

    pub fn of(msg: &zbus::Message) -> Option<Self> {
        let header = msg.header();
        Some(Self {
            sender: header.sender()?.to_string(),
            serial: header.primary().serial_num().get(),
        })
    }
}

impl UnitRecord {
    pub fn new(name: String) -> Self {
        Self {
            name,
            ..Self::default()
        }
    }

    /// Whether systemd has described the unit yet (a record made for a unit file that is
    /// about to be read has no load state; it is not shown until it has one).
    pub fn is_read(&self) -> bool {
        self.load_state.is_some()
    }

    /// Applies `props` stamped `stamp`, field by field: a field keeps its value when it
    /// came from a newer message of the same systemd connection (a signal queued behind
    /// a fresh read, or a read answered before a signal, must not roll it back). Returns
    /// whether any field was applied.
    pub fn apply_stamped(&mut self, props: &[&PropertyMap], stamp: Option<&Stamp>) -> bool {
        if let Some(stamp) = stamp
            && self.sender.as_deref() != Some(stamp.sender.as_str())
        {
            self.forget_stamps();
            self.sender = Some(stamp.sender.clone());
        }
        let mut applied = false;
        for (key, value) in props.iter().flat_map(|p| p.iter()) {
            let Some(field) = KEYS.iter().position(|k| k == key) else {
                continue;
            };
            if let Some(stamp) = stamp {
                if stamp.serial < self.serials[field] {
                    continue;
                }
                self.serials[field] = stamp.serial;
            }
            self.set(key, value);
            applied = true;
        }
        applied
    }

    /// Drops what is known about message order: a restarted bus gives systemd the same
    /// unique name again with serials starting over.
    pub fn forget_stamps(&mut self) {
        self.sender = None;
        self.serials = [0; KEYS.len()];
    }

    /// Applies every property it knows from `props`, whatever its age; ignores the rest.
    pub fn apply(&mut self, props: &PropertyMap) {
        for (key, value) in props {
            self.set(key, value);
        }
    }

    fn set(&mut self, key: &str, value: &OwnedVariant) {
        match key {
            "Description" => self.description = string(value),
            "LoadState" => self.load_state = string(value),
            "ActiveState" => self.active_state = string(value),
            "SubState" => self.sub_state = string(value),
            "UnitFileState" => self.unit_file_state = string(value),
            "FragmentPath" => {
                self.fragment_path = string(value);
                self.fragment_known = true;
            }
            "ActiveEnterTimestamp" => self.active_since = u64_of(value).and_then(format_usec),
            "InvocationID" => {
                self.invocation_id = invocation_id(value);
                self.invocation_known = true;
            }
            "MainPID" => self.main_pid = u32_of(value).filter(|pid| *pid != 0),
            "NRestarts" => self.n_restarts = u32_of(value),
            "MemoryCurrent" => self.memory_bytes = u64_of(value).filter(|v| *v != u64::MAX),
            "CPUUsageNSec" => self.cpu_usage_ns = u64_of(value).filter(|v| *v != u64::MAX),
            "StateChangeTimestamp" => self.state_change_usec = u64_of(value).filter(|v| *v != 0),
            "Result" => self.result = string(value),
            "ExecMainCode" => self.exec_main_code = i32_of(value),
            "ExecMainStatus" => self.exec_main_status = i32_of(value),
            "Job" => self.job_id = job_id(value),
            "LastTriggerUSec" => self.last_trigger_usec = u64_of(value).filter(|v| *v != 0),
            "Triggers" => self.triggers = strings(value),
            _ => {}
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

pub fn i32_of(value: &OwnedVariant) -> Option<i32> {
    i32::try_from(value.try_clone().ok()?).ok()
}

pub fn bool_of(value: &OwnedVariant) -> Option<bool> {
    bool::try_from(value.try_clone().ok()?).ok()
}

/// `Job` is `(uo)`: the job's id and object path; id 0 is no job.
fn job_id(value: &OwnedVariant) -> Option<u32> {
    let (id, _path) = <(u32, zbus::OwnedObjectPath)>::try_from(value.try_clone().ok()?).ok()?;
    (id != 0).then_some(id)
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

/// TimersMonotonic: a(stt) → (setting, µs), e.g. `("OnBootUSec", 900000000)`.
pub fn monotonic_specs(value: &OwnedVariant) -> Vec<(String, u64)> {
    value
        .try_clone()
        .ok()
        .and_then(|v| Vec::<(String, u64, u64)>::try_from(v).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|(base, usec, _next)| (base, usec))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v<T: Into<zbus::Variant<'static>>>(x: T) -> OwnedVariant {
        OwnedVariant::try_from(x.into()).unwrap()
    }

    #[test]
    fn older_data_does_not_roll_a_field_back() {
        let stamp = |sender: &str, serial| Stamp {
            sender: sender.to_string(),
            serial,
        };
        let props = |pairs: &[(&str, &'static str)]| -> PropertyMap {
            pairs.iter().map(|(k, x)| (k.to_string(), v(*x))).collect()
        };
        let mut record = UnitRecord::new("x.service".into());
        // A signal (serial 20) handled before the reply to a read sent earlier (12):
        // the read fills the other fields but not the state the signal changed.
        assert!(record.apply_stamped(
            &[&props(&[("ActiveState", "active")])],
            Some(&stamp(":1.1", 20))
        ));
        assert!(record.apply_stamped(
            &[&props(&[
                ("ActiveState", "inactive"),
                ("LoadState", "loaded")
            ])],
            Some(&stamp(":1.1", 12))
        ));
        assert_eq!(record.active_state.as_deref(), Some("active"));
        assert_eq!(record.load_state.as_deref(), Some("loaded"));
        assert!(!record.apply_stamped(
            &[&props(&[("ActiveState", "inactive")])],
            Some(&stamp(":1.1", 19))
        ));
        assert_eq!(record.active_state.as_deref(), Some("active"));
        // Newer data applies; so does data from a new systemd connection, or unstamped data.
        assert!(record.apply_stamped(
            &[&props(&[("ActiveState", "failed")])],
            Some(&stamp(":1.1", 21))
        ));
        assert_eq!(record.active_state.as_deref(), Some("failed"));
        assert!(record.apply_stamped(
            &[&props(&[("ActiveState", "active")])],
            Some(&stamp(":1.9", 3))
        ));
        assert_eq!(record.active_state.as_deref(), Some("active"));
        assert!(record.apply_stamped(&[&props(&[("ActiveState", "inactive")])], None));
        assert_eq!(record.active_state.as_deref(), Some("inactive"));
        // After the bus restarted, the same name with low serials counts again.
        record.forget_stamps();
        assert!(record.apply_stamped(
            &[&props(&[("LoadState", "not-found")])],
            Some(&stamp(":1.9", 1))
        ));
        assert_eq!(record.load_state.as_deref(), Some("not-found"));
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
