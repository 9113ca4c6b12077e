//! TCP listener discovery straight from Linux `/proc`.
//!
//! Pure std so it stays cheap enough to run on every `GET /api/v1/ports`: one pass over
//! `net/tcp{,6}`, then, for each listening socket, one `readlink` of the fd that held it
//! at the previous scan. Only sockets that moved or are new cost a walk over the process
//! fd tables, newest processes first, stopping as soon as every socket has an owner.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

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
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::os::unix::fs::symlink;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU32, Ordering};

    const TCP_HEADER: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode                                                     \n";
    const TCP6_HEADER: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

    /// A throwaway proc tree under the temp dir, removed on drop.
    struct FakeProc(PathBuf);

    impl FakeProc {
        fn new(tcp: &str, tcp6: Option<&str>) -> Self {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let root = std::env::temp_dir().join(format!(
                "unitdeck-ports-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir_all(root.join("net")).unwrap();
            fs::write(root.join("net/tcp"), format!("{TCP_HEADER}{tcp}")).unwrap();
            if let Some(tcp6) = tcp6 {
                fs::write(root.join("net/tcp6"), format!("{TCP6_HEADER}{tcp6}")).unwrap();
            }
            // Non-pid entries that a real /proc also has.
            fs::create_dir_all(root.join("sys")).unwrap();
            symlink("1", root.join("self")).unwrap();
            Self(root)
        }

        /// Adds a process whose fds link to `targets` (fd numbers are their indices).
        fn process(&self, pid: u32, comm: &str, cgroup: &str, targets: &[&str]) {
            let dir = self.0.join(pid.to_string());
            fs::create_dir_all(dir.join("fd")).unwrap();
            fs::write(dir.join("comm"), format!("{comm}\n")).unwrap();
            fs::write(dir.join("cgroup"), cgroup).unwrap();
            for (fd, target) in targets.iter().enumerate() {
                symlink(target, dir.join("fd").join(fd.to_string())).unwrap();
            }
        }
    }

    impl Drop for FakeProc {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    fn v6(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn scan_fake_tree_resolves_owners_and_units() {
        let tcp = "   0: 00000000:0FC3 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000070f3fd34 100 0 0 10 0\n\
                   1: 0100007F:1F63 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1002 1 0000000000000000 100 0 0 10 0\n\
                   2: 0F02000A:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1004 1 0000000000000000 100 0 0 10 0\n\
                   3: 0100007F:1F63 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 1003 1 0000000000000000 20 4 30 10 -1\n";
        let tcp6 = "   0: 00000000000000000000000000000000:0FC3 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2001 1 0000000000000000 100 0 0 10 0\n\
                   1: 00000000000000000000000001000000:1F64 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 2002 1 0000000000000000 100 0 0 10 0\n\
                   2: 0000000000000000FFFF00000100007F:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000 100 0 0 10 0\n";
        let proc = FakeProc::new(tcp, Some(tcp6));
        proc.process(
            1,
            "systemd",
            "0::/init.scope\n",
            &["/dev/null", "anon_inode:[eventfd]"],
        );
        proc.process(
            412,
            "unitdeck",
            "0::/system.slice/unitdeck.service\n",
            &[
                "/dev/null",
                "pipe:[77]",
                "socket:[1001]",
                "socket:[2001]",
                "socket:[555]",
            ],
        );
        proc.process(
            900,
            "python3",
            "0::/user.slice/user-1000.slice/session-3.scope\n",
            &["socket:[1003]", "socket:[2002]", "socket:[1002]"],
        );
        // An fd table we cannot read (directory without fd/) must not abort the scan.
        fs::create_dir_all(proc.0.join("77")).unwrap();

        let got = scan(&proc.0).unwrap();
        let summary: Vec<_> = got
            .iter()
            .map(|l| {
                (
                    l.port,
                    l.addr,
                    l.inode,
                    l.pid,
                    l.process.as_deref(),
                    l.unit.as_deref(),
                )
            })
            .collect();
        let (svc, sess) = (Some("unitdeck.service"), Some("session-3.scope"));
        assert_eq!(
            summary,
            vec![
                (22, v4(10, 0, 2, 15), 1004, None, None, None),
                (80, v6("::ffff:127.0.0.1"), 0, None, None, None),
                (4035, v4(0, 0, 0, 0), 1001, Some(412), Some("unitdeck"), svc),
                (4035, v6("::"), 2001, Some(412), Some("unitdeck"), svc),
                (
                    8035,
                    v4(127, 0, 0, 1),
                    1002,
                    Some(900),
                    Some("python3"),
                    sess
                ),
                (8036, v6("::1"), 2002, Some(900), Some("python3"), sess),
            ]
        );
    }

    #[test]
    fn scanner_follows_sockets_that_move_close_appear_or_become_visible() {
        let row = |sl: u32, port: u16, inode: u64| {
            format!(
                "{sl:4}: 0100007F:{port:04X} 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 {inode} 1 0000000000000000 100 0 0 10 0\n"
            )
        };
        let proc = FakeProc::new(&[row(0, 8036, 11), row(1, 8037, 12)].concat(), None);
        proc.process(10, "app", "0::/system.slice/a.service\n", &["socket:[11]"]);
        let mut scanner = PortScanner::new(&proc.0);
        let owners = |scanner: &mut PortScanner| -> Vec<(u16, Option<u32>, Option<String>)> {
            let listeners = scanner.scan().unwrap();
            listeners
                .into_iter()
                .map(|l| (l.port, l.pid, l.process))
                .collect()
        };
        // 12 has no visible holder: remembered as unowned.
        assert_eq!(
            owners(&mut scanner),
            [(8036, Some(10), Some("app".into())), (8037, None, None)]
        );
        assert!(scanner.unowned.contains(&12));

        // The app hands its socket to a child and closes it; 12 shows up in a process
        // too, found because the new holder search walks the fd tables anyway.
        fs::remove_file(proc.0.join("10/fd/0")).unwrap();
        symlink("/dev/null", proc.0.join("10/fd/0")).unwrap();
        proc.process(
            20,
            "worker",
            "0::/system.slice/a.service\n",
            &["pipe:[1]", "socket:[11]"],
        );
        proc.process(5, "late", "0::/system.slice/b.service\n", &["socket:[12]"]);
        assert_eq!(
            owners(&mut scanner),
            [
                (8036, Some(20), Some("worker".into())),
                (8037, Some(5), Some("late".into()))
            ]
        );
        assert_eq!(scanner.holders[&11].fd, 1);

        // A new listener in a new process; 11 closes and leaves no trace.
        fs::write(
            proc.0.join("net/tcp"),
            format!("{TCP_HEADER}{}{}", row(0, 8037, 12), row(1, 8038, 13)),
        )
        .unwrap();
        proc.process(30, "new", "0::/system.slice/c.service\n", &["socket:[13]"]);
        assert_eq!(
            owners(&mut scanner),
            [
                (8037, Some(5), Some("late".into())),
                (8038, Some(30), Some("new".into()))
            ]
        );
        assert_eq!(scanner.holders.len(), 2);
        assert!(scanner.unowned.is_empty());
    }

    #[test]
    fn scan_dedupes_and_tolerates_missing_tcp6_and_junk_rows() {
        let row = "   0: 0100007F:0FC3 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 42 1 0000000000000000 100 0 0 10 0\n";
        let tcp = format!("{row}{row}   9: garbage\n   1: ZZ:0FC3 00000000:0000 0A 0 0 0 0 0 43\n");
        let proc = FakeProc::new(&tcp, None);
        proc.process(7, "nc", "0::/\n", &["socket:[42]"]);
        let got = scan(&proc.0).unwrap();
        assert_eq!(
            got,
            vec![Listener {
                port: 4035,
                addr: v4(127, 0, 0, 1),
                inode: 42,
                pid: Some(7),
                process: Some("nc".into()),
                unit: None,
            }]
        );
    }

    #[test]
    fn reading_stops_after_listening_section() {
        let listen = |sl: u32, port: &str, inode: u32| {
            format!(
                "{sl:4}: 0100007F:{port} 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 {inode} 1 0000000000000000 100 0 0 10 0\n"
            )
        };
        // Pre-4.4 layout: a pending SYN_RECV request right after its listener.
        let syn_recv = "   1: 0100007F:0FC3 0100007F:C350 03 00000000:00000000 01:00000064 00000000     0        0 0 1 0000000000000000 100 0 0 10 0\n";
        let established = "   3: 0100007F:0FC3 0100007F:C351 01 00000000:00000000 00:00000000 00000000     0        0 9 1 0000000000000000 20 4 30 10 -1\n";
        let tcp = [
            listen(0, "0FC3", 1),
            syn_recv.to_owned(),
            listen(2, "0FC4", 2),
            established.to_owned(),
            // Cannot happen on a real kernel; proves nothing past the listeners is read.
            listen(4, "0FC5", 3),
        ]
        .concat();
        let proc = FakeProc::new(&tcp, Some(""));
        let ports: Vec<_> = scan(&proc.0).unwrap().iter().map(|l| l.port).collect();
        assert_eq!(ports, [4035, 4036]);
        assert_eq!(parse_row(established, false), Row::EndOfListeners);
        assert_eq!(parse_row(syn_recv, false), Row::Skip);
    }

    #[test]
    fn scan_without_net_tcp_is_an_error() {
        let dir = std::env::temp_dir().join(format!("unitdeck-ports-empty-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let err = scan(&dir).unwrap_err();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn scan_real_proc_finds_own_listener() {
        let socket = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        let comm = fs::read_to_string("/proc/self/comm").unwrap();
        let got = scan(Path::new("/proc")).unwrap();
        let mine = got
            .iter()
            .find(|l| l.port == port && l.addr == v4(127, 0, 0, 1))
            .unwrap_or_else(|| panic!("port {port} not in {got:?}"));
        assert_eq!(mine.pid, Some(std::process::id()));
        assert_eq!(mine.process.as_deref(), Some(comm.trim_end()));
        assert!(got.windows(2).all(|w| w[0].port <= w[1].port));
    }

    #[test]
    fn local_address_decoding() {
        let cases = [
            ("0100007F:1F90", false, v4(127, 0, 0, 1), 8080),
            ("00000000:0016", false, v4(0, 0, 0, 0), 22),
            ("0101A8C0:FFFF", false, v4(192, 168, 1, 1), 65535),
            ("00000000000000000000000001000000:0050", true, v6("::1"), 80),
            ("00000000000000000000000000000000:0016", true, v6("::"), 22),
            (
                "0000000000000000FFFF00000100007F:0FC3",
                true,
                v6("::ffff:127.0.0.1"),
                4035,
            ),
            (
                "B80D0120000000000000000001000000:01BB",
                true,
                v6("2001:db8::1"),
                443,
            ),
            (
                "000080FE00000000FF005452120034FE:1F90",
                true,
                v6("fe80::5254:ff:fe34:12"),
                8080,
            ),
        ];
        for (field, is_v6, addr, port) in cases {
            assert_eq!(
                parse_local_address(field, is_v6),
                Some((addr, port)),
                "{field}"
            );
        }
        for bad in [
            "0100007F",
            "0100007:1F90",
            "0100007F:10000",
            "XX00007F:0016",
        ] {
            assert_eq!(parse_local_address(bad, false), None, "{bad}");
        }
        assert_eq!(parse_local_address("0100007F:0016", true), None);
    }

    #[test]
    fn socket_link_targets() {
        assert_eq!(socket_inode(b"socket:[123]"), Some(123));
        assert_eq!(
            socket_inode(b"socket:[18446744073709551615]"),
            Some(u64::MAX)
        );
        for other in [
            &b"socket:[]"[..],
            b"socket:[12a]",
            b"socket:[123",
            b"pipe:[123]",
            b"/dev/null",
            b"socket:[18446744073709551616]",
        ] {
            assert_eq!(socket_inode(other), None);
        }
    }

    #[test]
    fn unit_from_cgroup_cases() {
        let cases = [
            ("0::/system.slice/foo.service\n", Some("foo.service")),
            ("0::/system.slice/foo.service/sub\n", Some("foo.service")),
            (
                "0::/system.slice/system-getty.slice/getty@tty1.service\n",
                Some("getty@tty1.service"),
            ),
            ("0::/init.scope\n", Some("init.scope")),
            (
                "0::/user.slice/user-1000.slice/session-1.scope\n",
                Some("session-1.scope"),
            ),
            (
                "0::/user.slice/user-1000.slice/user@1000.service/app.slice/dev.service\n",
                Some("dev.service"),
            ),
            ("0::/system.slice/dbus.socket\n", Some("dbus.socket")),
            (
                "0::/system.slice/docker.service/x.scope/y\n",
                Some("x.scope"),
            ),
            ("0::/system.slice/foo.service", Some("foo.service")),
            // Not units: slices, the root, bare suffixes, foreign managers.
            ("0::/\n", None),
            ("0::/system.slice\n", None),
            ("0::/system.slice/.service\n", None),
            ("0::/docker/4f1e2a\n", None),
            ("0::/system.slice/foo.service.d\n", None),
            ("", None),
            ("garbage\n", None),
            // cgroup v1 only.
            (
                "12:pids:/system.slice/ssh.service\n1:name=systemd:/system.slice/ssh.service\n",
                Some("ssh.service"),
            ),
            // Hybrid: v2 line preferred over v1 controller lines.
            (
                "9:cpu,cpuacct:/other.service\n1:name=systemd:/system.slice/a.service\n0::/system.slice/b.service\n",
                Some("b.service"),
            ),
            // v2 line without a unit falls back to name=systemd.
            (
                "9:name=systemd:/system.slice/a.service\n0::/\n",
                Some("a.service"),
            ),
            // This container: v1 controllers in a private cgroup, no unit anywhere.
            ("9:name=systemd:/\n4:memory:/process_api/30d7\n0::/\n", None),
            // Controller lists on v1 lines are not mistaken for the systemd hierarchy.
            ("4:memory:/system.slice/mem.service\n", None),
            // Paths may contain ':'.
            ("0::/system.slice/a:b.service\n", Some("a:b.service")),
        ];
        for (contents, want) in cases {
            assert_eq!(unit_from_cgroup(contents).as_deref(), want, "{contents:?}");
        }
    }

    #[test]
    fn port_list_parsing() {
        assert_eq!(
            parse_port_list("4035,8035-8038"),
            Ok(vec![4035, 8035, 8036, 8037, 8038])
        );
        assert_eq!(
            parse_port_list(" 8036-8037 , 4035,8035-8036,4035 "),
            Ok(vec![4035, 8035, 8036, 8037])
        );
        assert_eq!(parse_port_list("65535"), Ok(vec![65535]));
        assert_eq!(parse_port_list("1-1"), Ok(vec![1]));
        assert_eq!(parse_port_list("1-65535").map(|p| p.len()), Ok(65535));
        assert_eq!(parse_port_list(""), Ok(vec![]));
        assert_eq!(parse_port_list("  "), Ok(vec![]));
        for bad in [
            "0",
            "0-10",
            "65536",
            "1-65536",
            "99999999999999999999999",
            "8038-8035",
            "4035,",
            ",4035",
            "4035,,8035",
            "4035, ,8035",
            "-",
            "80-",
            "-80",
            "1-2-3",
            "+80",
            "http",
            "80 81",
        ] {
            assert!(parse_port_list(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(
            parse_port_list("8038-8035"),
            Err("reversed port range \"8038-8035\"".into())
        );
        assert_eq!(
            parse_port_list("70000"),
            Err("port 70000 is above 65535".into())
        );
    }
}

// --- the port map of the API and the ports page ---------------------------------

/// One row of `GET /api/v1/ports`.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PortInfo {
    pub port: u16,
    /// Listed in UNITDECK_PORTS.
    pub watched: bool,
    /// `listening` or `free`.
    pub state: &'static str,
    pub pid: Option<u32>,
    pub process: Option<String>,
    /// The unit holding the port.
    pub unit: Option<String>,
    /// The managed unit whose spec names this port.
    pub expected_unit: Option<String>,
    /// Where to open it: the panel's host, this port.
    pub url: Option<String>,
    /// What is wrong, if anything: expected but not listening, held by a stray
    /// process or another unit, claimed by two units.
    pub problem: Option<String>,
}

/// Builds the port map from listeners, the watched list and the managed units'
/// expected ports (`(port, unit)` pairs; two units may claim one port).
pub fn port_map(
    listeners: &[Listener],
    watched: &[u16],
    expected: &[(u16, String)],
    host: &str,
) -> Vec<PortInfo> {
    use std::collections::BTreeMap;
    let mut by_port: BTreeMap<u16, Option<&Listener>> = BTreeMap::new();
    for &port in watched {
        by_port.insert(port, None);
    }
    for (port, _) in expected {
        by_port.entry(*port).or_insert(None);
    }
    for l in listeners {
        let owned_by_service = l.unit.as_deref().is_some_and(|u| u.ends_with(".service"));
        match by_port.get_mut(&l.port) {
            // Prefer the listener that names its owner.
            Some(slot) if slot.is_none_or(|s| s.pid.is_none() && l.pid.is_some()) => {
                *slot = Some(l);
            }
            Some(_) => {}
            None if owned_by_service => {
                by_port.insert(l.port, Some(l));
            }
            None => {}
        }
    }
    let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    by_port
        .into_iter()
        .map(|(port, listener)| {
            let claims: Vec<&str> = expected
                .iter()
                .filter(|(p, _)| *p == port)
                .map(|(_, u)| u.as_str())
                .collect();
            let expected_unit = claims.first().map(|u| u.to_string());
            let unit = listener.and_then(|l| l.unit.clone());
            let problem = if claims.len() > 1 {
                Some(format!("claimed by {}", claims.join(" and ")))
            } else {
                match (listener, &expected_unit) {
                    (None, Some(e)) => Some(format!("{e} should listen here but nothing does")),
                    (Some(l), Some(e)) if l.unit.as_deref() != Some(e) => Some(format!(
                        "held by {}, not {e}",
                        l.unit
                            .clone()
                            .or_else(|| l.process.clone())
                            .unwrap_or("an unknown process".into())
                    )),
                    (Some(l), None)
                        if !l.unit.as_deref().is_some_and(|u| u.ends_with(".service")) =>
                    {
                        Some(format!(
                            "held by {}, outside any service",
                            l.process.clone().unwrap_or("an unknown process".into())
                        ))
                    }
                    _ => None,
                }
            };
            PortInfo {
                port,
                watched: watched.contains(&port),
                state: if listener.is_some() {
                    "listening"
                } else {
                    "free"
                },
                pid: listener.and_then(|l| l.pid),
                process: listener.and_then(|l| l.process.clone()),
                unit,
                expected_unit,
                url: listener.map(|_| format!("http://{host}:{port}/")),
                problem,
            }
        })
        .collect()
}

#[cfg(test)]
mod port_map_tests {
    use super::*;

    fn listener(port: u16, unit: Option<&str>, process: &str) -> Listener {
        Listener {
            port,
            addr: "127.0.0.1".parse().unwrap(),
            inode: port as u64,
            pid: Some(100 + port as u32),
            process: Some(process.into()),
            unit: unit.map(String::from),
        }
    }

    #[test]
    fn watched_expected_and_stray_ports_are_told_apart() {
        let listeners = vec![
            listener(8035, Some("unitdeck.service"), "unitdeck"),
            listener(8037, Some("session-1.scope"), "python3"),
            listener(8038, Some("shop.service"), "node"),
            listener(9000, Some("other.service"), "x"),
            listener(9999, None, "stray"),
        ];
        let expected = vec![
            (8036, "api.service".to_string()),
            (8038, "shop.service".to_string()),
            (8039, "a.service".to_string()),
            (8039, "b.service".to_string()),
        ];
        let map = port_map(
            &listeners,
            &[4035, 8035, 8036, 8037, 8038],
            &expected,
            "box:8035",
        );
        let row = |p: u16| map.iter().find(|r| r.port == p).unwrap();
        assert_eq!(row(4035).state, "free");
        assert!(row(4035).problem.is_none() && row(4035).url.is_none());
        assert_eq!(row(8035).unit.as_deref(), Some("unitdeck.service"));
        assert_eq!(row(8035).url.as_deref(), Some("http://box:8035/"));
        assert!(
            row(8036)
                .problem
                .as_deref()
                .unwrap()
                .contains("nothing does")
        );
        assert!(
            row(8037)
                .problem
                .as_deref()
                .unwrap()
                .contains("outside any service")
        );
        assert_eq!(row(8037).pid, Some(8137));
        assert_eq!(row(8038).expected_unit.as_deref(), Some("shop.service"));
        assert!(row(8038).problem.is_none());
        assert!(
            row(8039)
                .problem
                .as_deref()
                .unwrap()
                .contains("a.service and b.service")
        );
        assert!(!row(9000).watched && row(9000).state == "listening");
        assert!(
            map.iter().all(|r| r.port != 9999),
            "strays only on watched ports"
        );
    }
}

impl crate::state::AppState {
    /// The specs of the units unitdeck created (for ports and health checks).
    pub async fn managed_specs(
        &self,
    ) -> crate::error::AppResult<Vec<crate::unitfile::spec::UnitSpec>> {
        let mut specs = Vec::new();
        for file in self.list_unit_files().await? {
            specs.push(self.unit_file(&file.name).await?.spec);
        }
        Ok(specs)
    }

    pub async fn port_map(&self, host: &str) -> crate::error::AppResult<Vec<PortInfo>> {
        let expected: Vec<(u16, String)> = self
            .managed_specs()
            .await?
            .iter()
            .filter_map(|s| Some((s.port_number()?, s.unit_name())))
            .collect();
        let listeners = self.listeners().await?;
        Ok(port_map(
            &listeners,
            &self.config.watched_ports,
            &expected,
            host,
        ))
    }

    /// Every TCP listener of the machine, from the shared [`PortScanner`].
    pub async fn listeners(&self) -> crate::error::AppResult<Vec<Listener>> {
        let scanner = self.port_scanner.clone();
        tokio::task::spawn_blocking(move || {
            // A panic mid-scan leaves at worst a stale holder, which the next scan re-checks.
            let mut scanner = scanner.lock().unwrap_or_else(|e| e.into_inner());
            scanner.scan()
        })
        .await
        .map_err(crate::error::AppError::internal)?
        .map_err(|e| crate::error::AppError::internal(format!("reading /proc/net/tcp: {e}")))
    }
}
