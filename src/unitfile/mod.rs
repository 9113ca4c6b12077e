//! Unit files created by unitdeck (API.md, "Unit files created by unitdeck").
//!
//! A spec goes through, in this order:
//! 1. [`validate`]: pure rules, one error per bad field (422);
//! 2. [`install::next_runs`] for a job (`systemd-analyze calendar`; 422 on `schedule`) and
//!    [`install::preflight`]: the program, working directory, user and group exist (422);
//! 3. [`render`]: the text of `NAME.service` (and `NAME.timer`), quoted and `%`-escaped;
//! 4. [`install::verify`]: `systemd-analyze verify` in a private temporary directory;
//! 5. [`install::install_files`]: temp file in the unit directory, fsync, rename, fsync the
//!    directory; kept contents allow a rollback; the change's intent is recorded first;
//! 6. `Reload()`, then the revision and its audit row in one database transaction, then
//!    enable/start.
//!
//! At start, [`restore`] makes the unit directory agree with the database again: missing
//! files are written back (a recreated container), interrupted changes are settled, and
//! files edited by hand are reported, never overwritten.
//!
//! `systemd-analyze verify` is advisory: its messages are shown (`verify.ok = false`), and
//! only a *hard* error refuses the change: a message about a setting in one of our own files
//! (unknown key, unparsable value). A `Requires=` on a unit that does not exist yet, or any
//! other message about the environment, does not: the unit may be created before its
//! dependency, and systemd reports the failed dependency when it starts.
//!
//! The route parameter `{name}` is the base name (`shop-api`) or a file name
//! (`shop-api.service`, `nightly.timer`); responses always name the service file
//! (`shop-api.service`), which is also the key in the database.

pub mod diff;
pub mod install;
mod ops;
pub mod render;
mod restore;
pub mod shell;
pub mod spec;
pub mod validate;

pub use install::VerifyReport;
pub use ops::{
    Applied, Preview, RevisionInfo, UnitFileDetail, UnitFileInfo, base_name, load_managed,
    unit_file_name_pattern,
};
pub use render::{MANAGED_HEADER, is_managed, render};
pub use restore::{FileState, reconcile_on_start};
pub use spec::{HealthSpec, RestartPolicy, UnitKind, UnitSpec};
pub use validate::validate;
