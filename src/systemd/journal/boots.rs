//! The boots the journal has entries of: `journalctl --list-boots --output=json`.

use serde::Deserialize;

use super::args::spawn_journalctl;
use super::{JournalError, is_id128};

/// One boot, as journalctl lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boot {
    /// 0 is the current boot, -1 the one before, ...
    pub index: i64,
    /// The boot ID, 32 lower-case hex digits.
    pub id: String,
    /// µs since the epoch of its first and last entry.
    pub first: u64,
    pub last: u64,
}

#[derive(Deserialize)]
struct Listed {
    index: i64,
    boot_id: String,
    first_entry: u64,
    last_entry: u64,
}

/// journalctl 252 prints one JSON array; later versions JSON lines are read too.
fn parse(stdout: &[u8]) -> Result<Vec<Boot>, JournalError> {
    let text = String::from_utf8_lossy(stdout);
    let text = text.trim();
    let listed: Vec<Listed> = if text.is_empty() {
        Vec::new()
    } else if text.starts_with('[') {
        serde_json::from_str(text)
            .map_err(|e| JournalError::Failed(format!("--list-boots: {e}")))?
    } else {
        text.lines()
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()
            .map_err(|e| JournalError::Failed(format!("--list-boots: {e}")))?
    };
    Ok(listed
        .into_iter()
        .filter(|b| is_id128(&b.boot_id))
        .map(|b| Boot {
            index: b.index,
            id: b.boot_id.to_ascii_lowercase(),
            first: b.first_entry,
            last: b.last_entry,
        })
        .collect())
}

/// The boots, oldest first.
pub async fn list_boots() -> Result<Vec<Boot>, JournalError> {
    let args = ["--no-pager", "--quiet", "--list-boots", "--output=json"].map(String::from);
    let output = spawn_journalctl(&args)?
        .wait_with_output()
        .await
        .map_err(JournalError::Spawn)?;
    let mut boots = parse(&output.stdout)?;
    // An empty journal: no boot, and journalctl says so with a failure.
    if !output.status.success() && boots.is_empty() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !stderr.contains("No entries") && !stderr.trim().is_empty() {
            return Err(JournalError::Failed(stderr.trim().to_owned()));
        }
    }
    boots.sort_by_key(|b| b.index);
    Ok(boots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_array_and_json_lines() {
        let array = br#"[{"index":-1,"boot_id":"933bc0360d0e44e5b6ab26252381c829","first_entry":1796519096907873,"last_entry":1796519097420587},{"index":0,"boot_id":"8D8CD0C55EF845099B413DF32EB3C086","first_entry":1796519109346025,"last_entry":1796519117128216}]"#;
        let boots = parse(array).unwrap();
        assert_eq!(boots.len(), 2);
        assert_eq!(boots[0].index, -1);
        assert_eq!(boots[1].id, "8d8cd0c55ef845099b413df32eb3c086");
        assert_eq!(boots[1].first, 1796519109346025);
        let lines = br#"{"index":0,"boot_id":"933bc0360d0e44e5b6ab26252381c829","first_entry":1,"last_entry":2}
"#;
        assert_eq!(parse(lines).unwrap()[0].last, 2);
        assert!(parse(b"").unwrap().is_empty());
        assert!(parse(b"[{\"index\":0}]").is_err());
    }
}
