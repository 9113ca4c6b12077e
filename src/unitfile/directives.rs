//! The directives systemd knows, per section, with the kind of value each takes, read from
//! systemd itself (`systemd --dump-configuration-items`, once): a raw override line is
//! checked against the systemd that will read it, not against a list that ages.
//!
//! The kind also says how drop-ins combine (see [`Directives::is_list`]): a list setting
//! (`Environment=`, `After=`, `ExecStart=`) gathers every assignment and an empty one
//! resets it (not for dependencies: those can only be added); any other setting takes the
//! last assignment.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::OnceCell;

/// Where systemd's binary is (merged /usr first).
const SYSTEMD_BINARIES: &[&str] = &["/usr/lib/systemd/systemd", "/lib/systemd/systemd"];
/// How long the dump may take.
const DUMP_TIMEOUT: Duration = Duration::from_secs(10);

/// Value kinds (systemd's own words) that gather assignments, besides `... [...]` ones.
const LIST_KINDS: &[&str] = &[
    "ENVIRON",
    "FILE",
    "CONDITION",
    "SYSCALLS",
    "DEVICE",
    "DEVICEWEIGHT",
    "DEVICELATENCY",
    "BANDWIDTH",
    "FAMILIES",
    "FILESYSTEMS",
    "BOUNDINGSET",
    "STATUS",
];

/// Directives of kind OTHER that gather assignments, and those a drop-in can set without
/// the dump (the structured fields of an override): known without asking systemd.
const LIST_KEYS: &[&str] = &[
    "Environment",
    "EnvironmentFile",
    "UnsetEnvironment",
    "PassEnvironment",
    "ExecCondition",
    "ExecStartPre",
    "ExecStart",
    "ExecStartPost",
    "ExecReload",
    "ExecStop",
    "ExecStopPost",
    "After",
    "Before",
    "Wants",
    "Requires",
    "Requisite",
    "BindsTo",
    "Upholds",
    "Conflicts",
    "PartOf",
    "OnFailure",
    "OnSuccess",
    "PropagatesStopTo",
    "StopPropagatedFrom",
    "SupplementaryGroups",
    "SetCredential",
    "SetCredentialEncrypted",
    "LoadCredential",
    "LoadCredentialEncrypted",
    "RuntimeDirectory",
    "StateDirectory",
    "CacheDirectory",
    "LogsDirectory",
    "ConfigurationDirectory",
    "TemporaryFileSystem",
    "IPAddressAllow",
    "IPAddressDeny",
    "LogExtraFields",
    "ExtensionImages",
    "MountImages",
    "SocketBindAllow",
    "SocketBindDeny",
    "RestrictNetworkInterfaces",
];

/// Dependencies: an empty assignment does not reset them (systemd.unit(5): they can only be
/// added in a drop-in).
pub const DEPENDENCY_KEYS: &[&str] = &[
    "Requires",
    "Requisite",
    "Wants",
    "BindsTo",
    "BindTo",
    "Upholds",
    "Conflicts",
    "Before",
    "After",
    "OnSuccess",
    "OnFailure",
    "PropagatesReloadTo",
    "PropagateReloadTo",
    "ReloadPropagatedFrom",
    "PropagateReloadFrom",
    "PropagatesStopTo",
    "StopPropagatedFrom",
    "PartOf",
    "JoinsNamespaceOf",
];

/// Section → directive → the kind of value systemd names for it (`BOOLEAN`, `UNIT [...]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directives {
    sections: BTreeMap<String, BTreeMap<String, String>>,
}

impl Directives {
    /// Reads `systemd --dump-configuration-items`: `[Section]` headers, then `Key=KIND`.
    pub fn parse(dump: &str) -> Self {
        let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut current: Option<String> = None;
        for line in dump.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                current = Some(name.to_string());
                continue;
            }
            if let (Some(section), Some((key, kind))) = (&current, line.split_once('=')) {
                sections
                    .entry(section.clone())
                    .or_default()
                    .insert(key.to_string(), kind.to_string());
            }
        }
        Self { sections }
    }

    /// The kind of `section`'s `key`, None when systemd does not know it there.
    pub fn kind(&self, section: &str, key: &str) -> Option<&str> {
        self.sections.get(section)?.get(key).map(String::as_str)
    }

    /// The sections that know `key`.
    pub fn sections_of(&self, key: &str) -> Vec<&str> {
        self.sections
            .iter()
            .filter(|(_, keys)| keys.contains_key(key))
            .map(|(s, _)| s.as_str())
            .collect()
    }

    /// Whether assignments of `key` gather (the rest: the last one wins).
    pub fn is_list(&self, section: &str, key: &str) -> bool {
        is_list(key, self.kind(section, key))
    }

    pub fn is_empty(&self) -> bool {
        self.sections.is_empty()
    }
}

/// [`Directives::is_list`], with the kind when known.
pub fn is_list(key: &str, kind: Option<&str>) -> bool {
    LIST_KEYS.contains(&key) || kind.is_some_and(|k| k.contains("[...]") || LIST_KINDS.contains(&k))
}

/// systemd's directives, asked once (a failure is asked again next time).
pub async fn directives() -> Result<&'static Directives, String> {
    static DIRECTIVES: OnceCell<Directives> = OnceCell::const_new();
    DIRECTIVES
        .get_or_try_init(|| async {
            let binary = SYSTEMD_BINARIES
                .iter()
                .find(|p| std::path::Path::new(p).exists())
                .ok_or_else(|| "systemd's binary is not installed here".to_string())?;
            let out = tokio::time::timeout(
                DUMP_TIMEOUT,
                tokio::process::Command::new(binary)
                    .arg("--dump-configuration-items")
                    .stdin(std::process::Stdio::null())
                    .kill_on_drop(true)
                    .output(),
            )
            .await
            .map_err(|_| format!("{binary} --dump-configuration-items timed out"))?
            .map_err(|e| format!("{binary} --dump-configuration-items: {e}"))?;
            let parsed = Directives::parse(&String::from_utf8_lossy(&out.stdout));
            if !out.status.success() || parsed.is_empty() {
                return Err(format!(
                    "{binary} --dump-configuration-items listed no directives"
                ));
            }
            Ok(parsed)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "[Unit]\nDescription=STRING\nAfter=UNIT [...]\n\
        ConditionPathExists=CONDITION\n[Service]\nRestart=SERVICERESTART\n\
        ExecStart=PATH [ARGUMENT [...]]\nEnvironment=ENVIRON\nCPUQuota=OTHER\n\
        UnsetEnvironment=OTHER\n[Install]\nWantedBy=UNIT [...]\n";

    #[test]
    fn the_dump_is_read_by_section() {
        let d = Directives::parse(DUMP);
        assert_eq!(d.kind("Service", "Restart"), Some("SERVICERESTART"));
        assert_eq!(d.kind("Unit", "Restart"), None);
        assert_eq!(d.sections_of("After"), ["Unit"]);
        assert!(d.sections_of("Bogus").is_empty());
        for (section, key) in [
            ("Unit", "After"),
            ("Unit", "ConditionPathExists"),
            ("Service", "ExecStart"),
            ("Service", "Environment"),
            ("Service", "UnsetEnvironment"),
        ] {
            assert!(d.is_list(section, key), "{key}");
        }
        for (section, key) in [
            ("Unit", "Description"),
            ("Service", "Restart"),
            ("Service", "CPUQuota"),
        ] {
            assert!(!d.is_list(section, key), "{key}");
        }
    }

    #[tokio::test]
    async fn systemd_lists_its_directives() {
        if !SYSTEMD_BINARIES
            .iter()
            .any(|p| std::path::Path::new(p).exists())
        {
            eprintln!("skipping: no systemd binary");
            return;
        }
        let d = directives().await.unwrap();
        assert_eq!(d.kind("Service", "MemoryMax"), Some("LIMIT"));
        assert!(d.kind("Service", "ExecStart").is_some());
        assert!(d.kind("Unit", "Wants").is_some());
        assert!(d.is_list("Unit", "RequiresMountsFor"));
        assert!(!d.is_list("Service", "Nice"));
    }
}
