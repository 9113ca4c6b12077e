//! Tests of the /proc scan (a fake /proc tree in a temporary directory).
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
