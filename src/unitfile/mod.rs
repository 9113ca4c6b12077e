//! Unit files as text, without a running systemd or a database: the spec a client sends
//! ([`spec`]), its rules ([`validate`]: one error per bad field), its rendering
//! ([`render`]: `NAME.service` and `NAME.timer`, quoted and `%`-escaped), argv quoting
//! ([`shell`]), diffs between revisions ([`diff`]); overrides of units unitdeck did not
//! create ([`dropin`]: the one drop-in it owns), any unit file read as systemd reads it
//! ([`syntax`]: effective settings, secrets hidden) and systemd's own list of directives
//! ([`directives`]); and the file system side
//! ([`install`]: `systemd-analyze verify` and `calendar` in a private directory, atomic
//! writes with the change's intent recorded first, drop-ins that would apply), and a
//! timer's schedule as its files write it ([`timers`]). The
//! operations that put them together, with systemd and the database, are
//! `service::unit_files`.
//!
//! `systemd-analyze verify` is advisory: its messages are shown (`verify.ok = false`), and
//! only a *hard* error refuses the change: a message about a setting in one of our own files
//! (unknown key, unparsable value). A `Requires=` on a unit that does not exist yet, or any
//! other message about the environment, does not: the unit may be created before its
//! dependency, and systemd reports the failed dependency when it starts.

pub mod diff;
pub mod directives;
pub mod dropin;
pub mod install;
pub mod names;
pub mod render;
pub mod shell;
pub mod spec;
pub mod syntax;
pub mod timers;
pub mod validate;

pub use install::VerifyReport;
pub use names::{base_name, unit_file_name_pattern};
pub use render::{MANAGED_HEADER, is_managed, render};
pub use spec::{HealthSpec, RestartPolicy, UnitKind, UnitSpec};
pub use validate::validate;
