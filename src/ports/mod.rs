//! TCP listener discovery straight from Linux `/proc`.
//!
//! Pure std so it stays cheap enough to run on every `GET /api/v1/ports`: one pass over
//! `net/tcp{,6}`, then, for each listening socket, one `readlink` of the fd that held it
//! at the previous scan. Only sockets that moved or are new cost a walk over the process
//! fd tables, newest processes first, stopping as soon as every socket has an owner.
//! `map` turns the listeners into the ports view.

mod map;

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub use map::{PortInfo, port_map};

/// A listening TCP socket and, when it could be resolved, the process and unit owning it.
#[derive(Debug, Clone, PartialEq)]
pub struct Listener {
    pub port: u16,
    pub addr: IpAddr,
    pub inode: u64,
    pub pid: Option<u32>,
    pub process: Option<String>,
    pub unit: Option<String>,
}

/// `st` column values in `/proc/net/tcp` (`TCP_LISTEN`, `TCP_SYN_RECV`).
const TCP_LISTEN: &str = "0A";
const TCP_SYN_RECV: &str = "03";

/// Cgroup path suffixes that name the systemd unit a process belongs to.
const UNIT_SUFFIXES: [&str; 3] = [".service", ".scope", ".socket"];

/// Lists TCP listeners visible in `proc_root` (normally `/proc`), sorted by port, with
/// nothing remembered: see [`PortScanner`] for repeated scans.
pub fn scan(proc_root: &Path) -> io::Result<Vec<Listener>> {
    PortScanner::new(proc_root).scan()
}

/// Which fd of which process held a socket at the last scan, and what that process is.
#[derive(Debug, Clone)]
struct Holder {
    pid: u32,
    fd: u64,
    process: Option<String>,
    unit: Option<String>,
}

/// Scans repeatedly, remembering each socket's holder between scans.
///
/// A socket inode names one open socket for as long as it lives, so if `<pid>/fd/<fd>`
/// still links to `socket:[inode]` the holder is unchanged and its name and unit are
/// reused (a process that `exec`s while keeping its listener keeps its old name until
/// the socket changes hands). Sockets whose owner is invisible (another PID namespace,
/// another user's process) are remembered too, so they cost a walk only when something
/// else does.
#[derive(Debug)]
pub struct PortScanner {
    proc_root: PathBuf,
    holders: HashMap<u64, Holder>,
    unowned: HashSet<u64>,
}

impl PortScanner {
    pub fn new(proc_root: impl Into<PathBuf>) -> Self {
        Self {
            proc_root: proc_root.into(),
            holders: HashMap::new(),
            unowned: HashSet::new(),
        }
    }

    /// Lists TCP listeners, sorted by port.
    ///
    /// Sockets whose owner cannot be found (another user's process, a process that
    /// exited mid-scan, another PID namespace) are still returned, with `pid`, `process`
    /// and `unit` set to `None`.
    pub fn scan(&mut self) -> io::Result<Vec<Listener>> {
        let mut listeners = Vec::new();
        let mut seen = HashSet::new();
        let net = self.proc_root.join("net");
        read_listeners(&net.join("tcp"), false, &mut seen, &mut listeners)?;
        // tcp6 is absent when the kernel runs without IPv6.
        match read_listeners(&net.join("tcp6"), true, &mut seen, &mut listeners) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }

        let mut holders = HashMap::with_capacity(listeners.len());
        let mut pending = HashSet::new();
        let mut still_unowned = HashSet::new();
        // Inode 0 is a socket without a file; no fd can point at it.
        for inode in listeners.iter().map(|l| l.inode).filter(|&i| i != 0) {
            match self.holders.remove(&inode) {
                Some(holder) if holds(&self.proc_root, holder.pid, holder.fd, inode) => {
                    holders.insert(inode, holder);
                }
                _ if self.unowned.contains(&inode) => {
                    still_unowned.insert(inode);
                }
                _ => {
                    pending.insert(inode);
                }
            }
        }
        if !pending.is_empty() {
            // The walk visits every process anyway: give the invisible ones another try.
            pending.extend(still_unowned.drain());
            // A process usually holds several listeners (v4 + v6, many ports): read its
            // name and unit once.
            let mut details: HashMap<u32, (Option<String>, Option<String>)> = holders
                .values()
                .map(|h| (h.pid, (h.process.clone(), h.unit.clone())))
                .collect();
            for (inode, pid, fd) in find_owners(&self.proc_root, &mut pending)? {
                let (process, unit) = details
                    .entry(pid)
                    .or_insert_with(|| process_details(&self.proc_root, pid))
                    .clone();
                let holder = Holder {
                    pid,
                    fd,
                    process,
                    unit,
                };
                holders.insert(inode, holder);
            }
            still_unowned = pending;
        }

        for listener in &mut listeners {
            if let Some(holder) = holders.get(&listener.inode) {
                listener.pid = Some(holder.pid);
                listener.process.clone_from(&holder.process);
                listener.unit.clone_from(&holder.unit);
            }
        }
        self.holders = holders;
        self.unowned = still_unowned;
        listeners.sort_by_key(|l| (l.port, l.addr, l.inode));
        Ok(listeners)
    }
}

/// Whether `<pid>/fd/<fd>` still links to `socket:[inode]`.
fn holds(proc_root: &Path, pid: u32, fd: u64, inode: u64) -> bool {
    let link = proc_root.join(format!("{pid}/fd/{fd}"));
    fs::read_link(link).is_ok_and(|t| socket_inode(t.as_os_str().as_bytes()) == Some(inode))
}

/// Appends the LISTEN rows of one `/proc/net/tcp{,6}` file, skipping (port, inode) pairs
/// already in `seen`; malformed rows are ignored rather than failing the whole scan.
///
/// The kernel lists the listening hash before the established hash, and every `read()`
/// of the established part re-walks that (mostly empty) hash table: on a 2-vCPU VM with
/// ~300 connections that was 70% of a real scan. So reading stops at the first row that
/// cannot be in the listening section. SYN_RECV rows do not stop it because kernels
/// before 4.4 printed pending requests right after their listener.
fn read_listeners(
    path: &Path,
    v6: bool,
    seen: &mut HashSet<(u16, u64)>,
    out: &mut Vec<Listener>,
) -> io::Result<()> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut line = String::new();
    // The first line is the column header.
    reader.read_line(&mut line)?;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        match parse_row(&line, v6) {
            Row::Listen(listener) => {
                if seen.insert((listener.port, listener.inode)) {
                    out.push(listener);
                }
            }
            Row::Skip => {}
            Row::EndOfListeners => return Ok(()),
        }
    }
}

/// What one `/proc/net/tcp{,6}` row means to [`read_listeners`].
#[derive(Debug, PartialEq)]
enum Row {
    Listen(Listener),
    Skip,
    EndOfListeners,
}

/// Classifies one data row; only LISTEN rows are decoded further.
fn parse_row(line: &str, v6: bool) -> Row {
    let mut fields = line.split_ascii_whitespace();
    let (Some(_sl), Some(local), Some(_remote), Some(state)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Row::Skip;
    };
    match state {
        TCP_LISTEN => {}
        TCP_SYN_RECV => return Row::Skip,
        _ => return Row::EndOfListeners,
    }
    // After `st`: tx:rx queue, tr:when, retrnsmt, uid, timeout, then inode.
    let inode = fields.nth(5).and_then(|s| s.parse::<u64>().ok());
    match (inode, parse_local_address(local, v6)) {
        (Some(inode), Some((addr, port))) => Row::Listen(Listener {
            port,
            addr,
            inode,
            pid: None,
            process: None,
            unit: None,
        }),
        _ => Row::Skip,
    }
}

/// Decodes `0100007F:1F90` / 32-hex-digit IPv6 forms.
///
/// The kernel prints the network-order address as native-endian 32-bit words (`%08X`),
/// so each word's native bytes are the address bytes in order.
fn parse_local_address(field: &str, v6: bool) -> Option<(IpAddr, u16)> {
    let (addr_hex, port_hex) = field.split_once(':')?;
    let port = u16::from_str_radix(port_hex, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let hex = addr_hex.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
    };
    let addr = if v6 {
        if addr_hex.len() != 32 {
            return None;
        }
        let mut bytes = [0u8; 16];
        for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
            chunk.copy_from_slice(&word(i)?);
        }
        IpAddr::V6(Ipv6Addr::from(bytes))
    } else {
        if addr_hex.len() != 8 {
            return None;
        }
        IpAddr::V4(Ipv4Addr::from(word(0)?))
    };
    Some((addr, port))
}

/// Finds the (inode, pid, fd) holding each `pending` socket by reading `<pid>/fd/*`
/// links, removing what it finds from `pending`.
///
/// Newest processes (highest pids) go first because a new listener most often belongs to
/// a process that just started. A socket shared by several processes (fork, systemd
/// socket activation) is attributed to the first one found, which is why the walk can
/// stop once every inode has an owner.
fn find_owners(proc_root: &Path, pending: &mut HashSet<u64>) -> io::Result<Vec<(u64, u32, u64)>> {
    let mut owners = Vec::with_capacity(pending.len());
    let mut pids: Vec<u32> = fs::read_dir(proc_root)?
        .filter_map(|entry| {
            let pid = parse_decimal(entry.ok()?.file_name().as_bytes())?;
            u32::try_from(pid).ok()
        })
        .collect();
    pids.sort_unstable_by(|a, b| b.cmp(a));
    let mut link = [0u8; 64];
    for pid in pids {
        if pending.is_empty() {
            break;
        }
        let fd_dir = proc_root.join(format!("{pid}/fd"));
        // Processes exit and other users' fd tables are unreadable: both are just skipped.
        let (Ok(fds), Ok(dir)) = (fs::read_dir(&fd_dir), File::open(&fd_dir)) else {
            continue;
        };
        for fd in fds {
            let Ok(fd) = fd else { continue };
            let Some(inode) = link_at(&dir, &fd.file_name(), &mut link).and_then(socket_inode)
            else {
                continue;
            };
            if let Some(fd_number) = parse_decimal(fd.file_name().as_bytes())
                && pending.remove(&inode)
            {
                owners.push((inode, pid, fd_number));
                if pending.is_empty() {
                    break;
                }
            }
        }
    }
    Ok(owners)
}

/// The target of the link `name` in the open directory `dir`, if it fits `buf` (socket
/// links do). Resolving only the last component, instead of the whole
/// `/proc/PID/fd/N` path per fd, is what makes walking 10,000 fds cheap.
fn link_at<'b>(dir: &File, name: &std::ffi::OsStr, buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let name = std::ffi::CString::new(name.as_bytes()).ok()?;
    // SAFETY: readlinkat writes at most buf.len() bytes into buf and reads the
    // NUL-terminated name; the directory fd stays open for the call.
    let n = unsafe {
        libc::readlinkat(
            std::os::fd::AsRawFd::as_raw_fd(dir),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let n = usize::try_from(n).ok().filter(|n| *n < buf.len())?;
    Some(&buf[..n])
}

/// Extracts the inode from a `socket:[12345]` link target without allocating.
fn socket_inode(target: &[u8]) -> Option<u64> {
    parse_decimal(target.strip_prefix(b"socket:[")?.strip_suffix(b"]")?)
}

/// Parses a non-empty all-digit byte string; `None` on anything else or overflow.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        acc.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// Reads `comm` and the systemd unit of `pid`; either may be gone if the process exited.
fn process_details(proc_root: &Path, pid: u32) -> (Option<String>, Option<String>) {
    let dir = proc_root.join(pid.to_string());
    let process = fs::read_to_string(dir.join("comm"))
        .ok()
        .map(|s| s.trim_end_matches('\n').to_owned());
    let unit = fs::read_to_string(dir.join("cgroup"))
        .ok()
        .and_then(|s| unit_from_cgroup(&s));
    (process, unit)
}

/// Returns the systemd unit named by a `/proc/PID/cgroup` file.
///
/// The cgroup v2 line (`0::/path`) wins; the v1 `name=systemd` hierarchy is the fallback
/// for legacy-mode hosts. Within a path the deepest `.service`/`.scope`/`.socket`
/// component is the unit, so sub-cgroups (`foo.service/sub`) and nested slices
/// (`system-getty.slice/getty@tty1.service`) resolve to the unit that owns them.
pub fn unit_from_cgroup(contents: &str) -> Option<String> {
    let path_of = |want_v2: bool| {
        contents.lines().find_map(|line| {
            let mut parts = line.trim_end().splitn(3, ':');
            let (_id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let matches = if want_v2 {
                controllers.is_empty()
            } else {
                controllers.split(',').any(|c| c == "name=systemd")
            };
            matches.then_some(path)
        })
    };
    [true, false]
        .into_iter()
        .filter_map(path_of)
        .find_map(unit_in_path)
        .map(str::to_owned)
}

/// The last component of a cgroup path that is a unit name (non-empty stem + unit suffix).
fn unit_in_path(path: &str) -> Option<&str> {
    path.rsplit('/').find(|component| {
        UNIT_SUFFIXES
            .iter()
            .any(|suffix| component.len() > suffix.len() && component.ends_with(suffix))
    })
}

/// Parses a port list such as `4035,8035-8038` into sorted, unique ports.
///
/// Items are comma-separated single ports or inclusive `low-high` ranges; whitespace
/// around items is ignored. A blank string is an empty list (e.g. an empty
/// `UNITDECK_PORTS`), but an empty item, port 0, ports above 65535 and reversed ranges
/// are errors so a typo never silently drops a watched port.
pub fn parse_port_list(s: &str) -> Result<Vec<u16>, String> {
    if s.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut ports = Vec::new();
    for item in s.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(format!("empty item in port list {s:?}"));
        }
        match item.split_once('-') {
            Some((low, high)) => {
                let (low, high) = (parse_port(low.trim())?, parse_port(high.trim())?);
                if low > high {
                    return Err(format!("reversed port range {item:?}"));
                }
                ports.extend(low..=high);
            }
            None => ports.push(parse_port(item)?),
        }
    }
    ports.sort_unstable();
    ports.dedup();
    Ok(ports)
}

/// Parses one port in 1..=65535 with a message naming the offending text.
fn parse_port(s: &str) -> Result<u16, String> {
    let n = parse_decimal(s.as_bytes()).ok_or_else(|| format!("invalid port {s:?}"))?;
    match u16::try_from(n) {
        Ok(0) => Err("port 0 is not allowed".to_owned()),
        Ok(port) => Ok(port),
        Err(_) => Err(format!("port {s} is above 65535")),
    }
}

#[cfg(test)]
mod tests;
