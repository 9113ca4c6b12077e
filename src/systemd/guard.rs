//! Which units an action really touches, as systemd resolves them. A guard that compares
//! the name as typed is bypassed by an alias (`runlevel0.target` is `poweroff.target`,
//! `ctrl-alt-del.target` is `reboot.target`): every check here is made on the unit systemd
//! loaded, its `Id` and every one of its `Names`, and a start is judged by everything it
//! would pull in.
//!
//! - stop, disable: refused when the unit is protected (unitdeck itself, dbus, journald
//!   and what they need: `Systemd::is_protected` holds every name of each).
//! - start, restart, enable (a start at the next boot): refused when the unit, or any unit
//!   its start pulls in (`Requires=`, `Requisite=`, `Wants=`, `BindsTo=`, `Upholds=`,
//!   `Triggers=`, and `OnFailure=`/`OnSuccess=` of units not active: a job of theirs can
//!   still end), shuts the container down or takes it out of service by name, or would by
//!   its `SuccessAction=`/`FailureAction=`/`JobTimeoutAction=`/`StartLimitAction=`, or
//!   conflicts with a protected unit (its start would stop that one).
//! - the `requires`/`wants` of a unit spec: judged like a start.
//! - a change of a unit's configuration (an override): refused for a protected unit (any
//!   of its names) and for one whose start would take the container down; a unit the
//!   override would make stop (`Conflicts=`, `PropagatesStopTo=`) must not be protected.

use std::collections::{HashMap, HashSet};

use futures_util::{StreamExt, stream};

use super::manager::{Bus, UnitAction};
use super::names::{takes_the_system_down, unit_object_path};
use super::props::{PropertyMap, string, strings};
use super::{Systemd, SystemdError};

/// Dependencies a start turns into jobs (besides `OnFailure=`/`OnSuccess=`, see below).
const PULLED_IN: &[&str] = &[
    "Requires",
    "Requisite",
    "Wants",
    "BindsTo",
    "Upholds",
    "Triggers",
];
/// Units started when a unit's job ends: they matter only for units whose job can still
/// run (an active unit's start job is dropped as redundant).
const ON_RESULT: &[&str] = &["OnFailure", "OnSuccess"];
/// Emergency actions systemd takes itself when a unit succeeds, fails or times out.
const ACTIONS: &[&str] = &[
    "SuccessAction",
    "FailureAction",
    "JobTimeoutAction",
    "StartLimitAction",
];
/// Parallel reads while walking a start's dependencies.
const CONCURRENCY: usize = 16;
/// No real system has that many units in one start; a walk that finds more refuses.
const MAX_UNITS: usize = 4000;

/// A unit as systemd loaded it for a request.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The unit's own name: what an alias stands for.
    pub id: String,
    /// Every name of the unit, `id` included.
    pub names: Vec<String>,
}

/// One unit met while walking a start: its names and the properties the checks read.
struct Visit {
    id: String,
    names: Vec<String>,
    props: PropertyMap,
}

impl Systemd {
    /// Loads `name` as systemd would for an action. Unknown is `NoSuchUnit`: no unit file
    /// and nothing running or failed under that name (a unit whose file went keeps its
    /// state until it stops or is reset).
    pub async fn resolve(&self, name: &str) -> Result<Resolved, SystemdError> {
        let bus = self.bus()?;
        let path = bus.load_unit(name).await?;
        let visit = read_unit(&bus, path.as_str(), name).await?;
        if string_of(&visit.props, "LoadState").as_deref() == Some("not-found")
            && string_of(&visit.props, "ActiveState").as_deref() == Some("inactive")
        {
            return Err(SystemdError::NoSuchUnit(name.to_string()));
        }
        Ok(Resolved {
            id: visit.id,
            names: visit.names,
        })
    }

    /// Refuses `action` on `unit` when it would take a protected unit away or the
    /// container down (see the module's rules).
    pub async fn guard_action(
        &self,
        requested: &str,
        unit: &Resolved,
        action: UnitAction,
    ) -> Result<(), SystemdError> {
        let shown = shown_as(requested, &unit.id);
        if action.is_removal() && unit.names.iter().any(|n| self.is_protected(n)) {
            return Err(SystemdError::Refused(format!(
                "{shown} is protected: unitdeck will not {} it",
                action.as_str()
            )));
        }
        if action.starts()
            && let Some(why) = self.start_danger(&unit.id).await?
        {
            return Err(SystemdError::Refused(format!(
                "{shown}: {why}; unitdeck will not {} it",
                action.as_str()
            )));
        }
        Ok(())
    }

    /// Why unitdeck must not change the configuration of `unit` (resolved from
    /// `requested`): it is protected, or its start would take the container down. None: it
    /// may.
    pub async fn change_refusal(
        &self,
        requested: &str,
        unit: &Resolved,
    ) -> Result<Option<String>, SystemdError> {
        let shown = shown_as(requested, &unit.id);
        if let Some(name) = unit.names.iter().find(|n| self.is_protected(n)) {
            let via = if *name == unit.id {
                String::new()
            } else {
                format!(" (as {name})")
            };
            return Ok(Some(format!(
                "{shown} is protected{via}: unitdeck will not change its configuration"
            )));
        }
        Ok(self
            .start_danger(&unit.id)
            .await?
            .map(|why| format!("{shown}: {why}; unitdeck will not change its configuration")))
    }

    /// The protected unit `name` stands for (by any of its names), or None: for units a
    /// change would make stop.
    pub async fn protected_identity(&self, name: &str) -> Result<Option<String>, SystemdError> {
        match self.resolve(name).await {
            Ok(unit) => Ok(unit
                .names
                .iter()
                .any(|n| self.is_protected(n))
                .then_some(unit.id)),
            Err(SystemdError::NoSuchUnit(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Why starting the unit `name` (by any name) would take the container down or a
    /// protected unit away, or None. For the `requires`/`wants` of a spec.
    pub async fn start_danger(&self, name: &str) -> Result<Option<String>, SystemdError> {
        let bus = self.bus()?;
        // Breadth first, remembering who pulled each unit in, to say how.
        let mut via: HashMap<String, (String, &'static str)> = HashMap::new();
        let mut seen_names: HashSet<String> = HashSet::from([name.to_string()]);
        let mut seen_ids: HashSet<String> = HashSet::new();
        let mut frontier = vec![name.to_string()];
        while !frontier.is_empty() {
            let reads: Vec<_> = stream::iter(frontier.drain(..))
                .map(|n| {
                    let bus = bus.clone();
                    async move {
                        let read = read_unit(&bus, &unit_object_path(&n), &n).await;
                        (n, read)
                    }
                })
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
            for (requested, read) in reads {
                let visit = match read {
                    Ok(visit) => visit,
                    // A name that loads nothing (a dependency never installed) starts nothing.
                    Err(SystemdError::NoSuchUnit(_)) => continue,
                    Err(e) => return Err(e),
                };
                if !seen_ids.insert(visit.id.clone()) {
                    continue;
                }
                if seen_ids.len() > MAX_UNITS {
                    return Ok(Some(format!(
                        "its start pulls in more than {MAX_UNITS} units, too many to check"
                    )));
                }
                if let Some(problem) = self.problem_of(&visit) {
                    let chain = chain(&via, &requested);
                    return Ok(Some(format!("{chain}{problem}")));
                }
                let active = string_of(&visit.props, "ActiveState").as_deref() == Some("active");
                let edges = PULLED_IN
                    .iter()
                    .chain(if active { &[][..] } else { ON_RESULT });
                for edge in edges {
                    for dep in visit.props.get(*edge).map(strings).unwrap_or_default() {
                        if seen_names.insert(dep.clone()) {
                            via.insert(dep.clone(), (visit.id.clone(), edge));
                            frontier.push(dep);
                        }
                    }
                }
            }
        }
        Ok(None)
    }

    /// What makes one unit of a start dangerous, as a sentence end.
    fn problem_of(&self, visit: &Visit) -> Option<String> {
        if let Some(down) = visit.names.iter().find(|n| takes_the_system_down(n)) {
            return Some(format!(
                "{} would shut the container down or take it out of service",
                shown_as(down, &visit.id)
            ));
        }
        let active = string_of(&visit.props, "ActiveState").as_deref() == Some("active");
        if !active {
            for key in ACTIONS {
                if let Some(action) = string_of(&visit.props, key).filter(|a| a != "none") {
                    return Some(format!(
                        "{} has {key}={action}: systemd would {action} the container",
                        visit.id
                    ));
                }
            }
        }
        let conflicts = visit
            .props
            .get("Conflicts")
            .map(strings)
            .unwrap_or_default();
        conflicts
            .iter()
            .find(|c| self.is_protected(c))
            .map(|c| format!("{} conflicts with {c}, which would stop", visit.id))
    }
}

/// `runlevel0.target (poweroff.target)` when the name typed is an alias, else the name.
fn shown_as(requested: &str, id: &str) -> String {
    if requested == id {
        id.to_string()
    } else {
        format!("{requested} (that is {id})")
    }
}

/// How the walk reached `requested`: "its start pulls in B (Wants= of A), then C (...): ".
fn chain(via: &HashMap<String, (String, &'static str)>, requested: &str) -> String {
    let mut steps = Vec::new();
    let mut at = requested;
    while let Some((parent, edge)) = via.get(at) {
        steps.push(format!("{at} ({edge}= of {parent})"));
        if steps.len() > 32 {
            break;
        }
        at = parent;
    }
    if steps.is_empty() {
        return String::new();
    }
    steps.reverse();
    format!("its start pulls in {}: ", steps.join(", then "))
}

async fn read_unit(bus: &Bus, path: &str, name: &str) -> Result<Visit, SystemdError> {
    let props = bus.get_all(path, "org.freedesktop.systemd1.Unit").await?;
    let id = string_of(&props, "Id").unwrap_or_else(|| name.to_string());
    let mut names = props.get("Names").map(strings).unwrap_or_default();
    if !names.contains(&id) {
        names.push(id.clone());
    }
    Ok(Visit { id, names, props })
}

fn string_of(props: &PropertyMap, key: &str) -> Option<String> {
    props.get(key).and_then(string)
}
