//! The system bus connection and the calls unitdeck makes on systemd's Manager.
//! Proxies are zbus_systemd's generated ones; property maps are read with one
//! `GetAll` per interface so a unit costs one round trip, not one per field.

use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;
use zbus::proxy::CacheProperties;
use zbus::{Connection, OwnedObjectPath};
use zbus_systemd::systemd1::ManagerProxy;

use super::SystemdError;
use super::UnitSummary;
use super::names::unit_type;
use super::props::{PropertyMap, Stamp};

const SYSTEMD: &str = "org.freedesktop.systemd1";
const UNIT_INTERFACE: &str = "org.freedesktop.systemd1.Unit";
/// What a summary reads from a service's interface.
pub const SERVICE_FIELDS: &[&str] = &["MainPID", "NRestarts", "MemoryCurrent", "CPUUsageNSec"];
/// How long an action waits for its job before answering `timeout`.
pub const JOB_WAIT: Duration = Duration::from_secs(30);

/// The actions of `POST /api/v1/units/{name}/{action}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitAction {
    Start,
    Stop,
    Restart,
    Reload,
    Enable,
    Disable,
    ResetFailed,
}

impl UnitAction {
    pub const ALL: [UnitAction; 7] = [
        Self::Start,
        Self::Stop,
        Self::Restart,
        Self::Reload,
        Self::Enable,
        Self::Disable,
        Self::ResetFailed,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Restart => "restart",
            Self::Reload => "reload",
            Self::Enable => "enable",
            Self::Disable => "disable",
            Self::ResetFailed => "reset-failed",
        }
    }

    /// Actions that would take a protected unit away.
    pub fn is_removal(self) -> bool {
        matches!(self, Self::Stop | Self::Disable)
    }

    /// Actions that start the unit, now or at the next boot (enable): refused for units
    /// whose start would take the system down.
    pub fn starts(self) -> bool {
        matches!(self, Self::Start | Self::Restart | Self::Enable)
    }
}

/// How systemd finished a job (JobRemoved's `result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobResult {
    Done,
    Failed,
    Timeout,
    Canceled,
    Dependency,
    Skipped,
}

impl JobResult {
    fn parse(s: &str) -> Self {
        match s {
            "done" => Self::Done,
            "canceled" => Self::Canceled,
            "timeout" => Self::Timeout,
            "dependency" => Self::Dependency,
            "skipped" => Self::Skipped,
            _ => Self::Failed,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Timeout => "timeout",
            Self::Canceled => "canceled",
            Self::Dependency => "dependency",
            Self::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobInfo {
    /// systemd's job id; null for actions that queue no job (enable, disable, reset-failed).
    pub id: Option<u32>,
    /// null when the job was not waited for: `?wait=false`, or an action on
    /// unitdeck's own unit (it cannot outlive its own restart).
    pub result: Option<JobResult>,
}

/// The answer of a unit action.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActionOutcome {
    pub job: JobInfo,
    pub unit: UnitSummary,
}

/// One connection to the system bus with the Manager proxy on it.
#[derive(Clone)]
pub struct Bus {
    conn: Connection,
    manager: ManagerProxy<'static>,
}

/// A row of ListUnits: name, description, load, active and sub state, followed by, unit
/// path, job id, job type, job path.
type ListUnitsRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

impl Bus {
    pub async fn connect(address: &str) -> Result<Self, SystemdError> {
        let conn = zbus::connection::Builder::address(address)
            .build()
            .await
            .map_err(|e| SystemdError::Disconnected(e.to_string()))?;
        let manager = ManagerProxy::builder(&conn)
            .cache_properties(CacheProperties::No)
            .build()
            .await?;
        Ok(Self { conn, manager })
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    pub fn manager(&self) -> &ManagerProxy<'static> {
        &self.manager
    }

    pub async fn system_state(&self) -> Result<String, SystemdError> {
        Ok(self.manager.system_state().await?)
    }

    /// Every loaded unit with the fields ListUnits has, as the property map a GetAll
    /// would give (one decoder for both), stamped with systemd's reply.
    pub async fn list_units(
        &self,
    ) -> Result<(Vec<(String, PropertyMap)>, Option<Stamp>), SystemdError> {
        let reply = self
            .conn
            .call_method(
                Some(SYSTEMD),
                "/org/freedesktop/systemd1",
                Some("org.freedesktop.systemd1.Manager"),
                "ListUnits",
                &(),
            )
            .await?;
        let rows = reply.body().deserialize::<Vec<ListUnitsRow>>()?;
        let units = rows
            .into_iter()
            .map(|(name, description, load, active, sub, ..)| {
                let props = [
                    ("Description", description),
                    ("LoadState", load),
                    ("ActiveState", active),
                    ("SubState", sub),
                ]
                .into_iter()
                .map(|(key, value)| (key.to_string(), zbus::Str::from(value).into()))
                .collect();
                (name, props)
            })
            .collect();
        Ok((units, Stamp::of(&reply)))
    }

    /// Unit files systemd knows (name → enablement state), e.g. disabled services
    /// that are not loaded and so absent from ListUnits.
    pub async fn list_unit_files(&self) -> Result<Vec<(String, String)>, SystemdError> {
        Ok(self
            .manager
            .list_unit_files()
            .await?
            .into_iter()
            .filter_map(|(path, state)| {
                let name = path.rsplit('/').next()?.to_string();
                Some((name, state))
            })
            .collect())
    }

    /// The object path of a unit, loading it from disk if it is not loaded.
    pub async fn load_unit(&self, name: &str) -> Result<OwnedObjectPath, SystemdError> {
        Ok(self.manager.load_unit(name.to_string()).await?)
    }

    /// Whether systemd has the unit loaded right now. Unlike `load_unit` (or any
    /// property read on the unit's object path) this does not load it.
    pub async fn is_loaded(&self, name: &str) -> Result<bool, SystemdError> {
        match self
            .manager
            .get_unit(name.to_string())
            .await
            .map_err(SystemdError::from)
        {
            Ok(_) => Ok(true),
            Err(SystemdError::NoSuchUnit(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn get_all(&self, path: &str, interface: &str) -> Result<PropertyMap, SystemdError> {
        Ok(self.get_all_stamped(path, interface).await?.0)
    }

    /// GetAll, with the stamp of systemd's reply (to order it against signals).
    pub async fn get_all_stamped(
        &self,
        path: &str,
        interface: &str,
    ) -> Result<(PropertyMap, Option<Stamp>), SystemdError> {
        let reply = self
            .conn
            .call_method(
                Some(SYSTEMD),
                path,
                Some("org.freedesktop.DBus.Properties"),
                "GetAll",
                &(interface,),
            )
            .await?;
        Ok((
            reply.body().deserialize::<PropertyMap>()?,
            Stamp::of(&reply),
        ))
    }

    pub async fn get(
        &self,
        path: &str,
        interface: &str,
        property: &str,
    ) -> Result<zbus::OwnedVariant, SystemdError> {
        Ok(self.get_stamped(path, interface, property).await?.0)
    }

    /// Get, with the stamp of systemd's reply.
    pub async fn get_stamped(
        &self,
        path: &str,
        interface: &str,
        property: &str,
    ) -> Result<(zbus::OwnedVariant, Option<Stamp>), SystemdError> {
        let reply = self
            .conn
            .call_method(
                Some(SYSTEMD),
                path,
                Some("org.freedesktop.DBus.Properties"),
                "Get",
                &(interface, property),
            )
            .await?;
        Ok((
            reply.body().deserialize::<zbus::OwnedVariant>()?,
            Stamp::of(&reply),
        ))
    }

    /// The Unit interface's properties plus the type interface's (Service, Timer, ...),
    /// stamped with the first reply (the data is at least that fresh).
    pub async fn unit_properties(
        &self,
        path: &str,
        name: &str,
    ) -> Result<(PropertyMap, PropertyMap, Option<Stamp>), SystemdError> {
        let (unit, stamp) = self.get_all_stamped(path, UNIT_INTERFACE).await?;
        let type_props = match type_interface(name) {
            Some(interface) => self.get_all(path, &interface).await?,
            None => PropertyMap::new(),
        };
        Ok((unit, type_props, stamp))
    }

    /// A few of a service's properties (those of a summary: [`SERVICE_FIELDS`]), without
    /// the 250-property GetAll.
    pub async fn service_fields(&self, path: &str, keys: &[&str]) -> PropertyMap {
        self.fields(path, "org.freedesktop.systemd1.Service", keys)
            .await
    }

    /// A few properties of one interface, one Get each (unreadable ones are left out).
    pub async fn fields(&self, path: &str, interface: &str, keys: &[&str]) -> PropertyMap {
        let mut map = PropertyMap::new();
        for key in keys {
            if let Ok(value) = self.get(path, interface, key).await {
                map.insert(key.to_string(), value);
            }
        }
        map
    }

    pub async fn reload(&self) -> Result<(), SystemdError> {
        Ok(self.manager.reload().await?)
    }

    /// Runs an action; for job-queuing actions waits for that job (at most
    /// `JOB_WAIT`) when `wait` is true.
    pub async fn run_action(
        &self,
        name: &str,
        action: UnitAction,
        wait: bool,
        mut finished: tokio::sync::broadcast::Receiver<(String, String)>,
    ) -> Result<JobInfo, SystemdError> {
        let done = JobInfo {
            id: None,
            result: Some(JobResult::Done),
        };
        match action {
            UnitAction::Enable => {
                self.manager
                    .enable_unit_files(vec![name.to_string()], false, false)
                    .await?;
                self.reload().await?;
                return Ok(done);
            }
            UnitAction::Disable => {
                self.manager
                    .disable_unit_files(vec![name.to_string()], false)
                    .await?;
                self.reload().await?;
                return Ok(done);
            }
            UnitAction::ResetFailed => {
                match self
                    .manager
                    .reset_failed_unit(name.to_string())
                    .await
                    .map_err(SystemdError::from)
                {
                    // systemd answers NoSuchUnit for a unit that exists but is not
                    // loaded (the caller checked it exists): nothing failed to reset.
                    Ok(()) | Err(SystemdError::NoSuchUnit(_)) => return Ok(done),
                    Err(other) => return Err(other),
                }
            }
            _ => {}
        }
        // `finished` was subscribed before this call, so the job cannot finish unseen.
        let mode = "replace".to_string();
        let job = match action {
            UnitAction::Start => self.manager.start_unit(name.to_string(), mode).await?,
            UnitAction::Stop => self.manager.stop_unit(name.to_string(), mode).await?,
            UnitAction::Restart => self.manager.restart_unit(name.to_string(), mode).await?,
            UnitAction::Reload => self.manager.reload_unit(name.to_string(), mode).await?,
            _ => unreachable!("handled above"),
        };
        let id = job.as_str().rsplit('/').next().and_then(|s| s.parse().ok());
        if !wait {
            return Ok(JobInfo { id, result: None });
        }
        let waited = tokio::time::timeout(JOB_WAIT, async {
            loop {
                match finished.recv().await {
                    Ok((path, result)) if path == job.as_str() => {
                        return Some(JobResult::parse(&result));
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .await;
        let result = match waited {
            Ok(Some(result)) => result,
            Ok(None) => return Err(SystemdError::Disconnected("bus closed during a job".into())),
            Err(_) => JobResult::Timeout,
        };
        Ok(JobInfo {
            id,
            result: Some(result),
        })
    }
}

/// The D-Bus interface holding the type-specific properties of a unit.
fn type_interface(name: &str) -> Option<String> {
    let t = unit_type(name);
    let mut chars = t.chars();
    let first = chars.next()?.to_ascii_uppercase();
    Some(format!(
        "org.freedesktop.systemd1.{first}{}",
        chars.as_str()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_and_unknown_ones_are_rejected() {
        for action in UnitAction::ALL {
            assert_eq!(UnitAction::parse(action.as_str()), Some(action));
        }
        assert_eq!(UnitAction::parse("mask"), None);
        assert_eq!(UnitAction::parse("START"), None);
    }

    #[test]
    fn type_interfaces_are_named_like_systemd() {
        assert_eq!(
            type_interface("a.service").as_deref(),
            Some("org.freedesktop.systemd1.Service")
        );
        assert_eq!(
            type_interface("a.automount").as_deref(),
            Some("org.freedesktop.systemd1.Automount")
        );
    }
}
