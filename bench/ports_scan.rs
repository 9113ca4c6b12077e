//! Times `ports::scan` on a synthetic /proc (1,000 listeners, 500 processes × 20 fds) and
//! once on the real /proc, to check the "≤ 20 ms per scan" budget of `GET /api/v1/ports`.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use unitdeck::ports::{Listener, PortScanner, scan};

const PROCESSES: u32 = 500;
const FDS_PER_PROCESS: u32 = 20;
/// Non-listening rows in net/tcp, which the parser has to read past.
const ESTABLISHED: u32 = 200;
const RUNS: usize = 50;
const FIRST_INODE: u64 = 100_000;
const FIRST_PORT: u32 = 10_000;
/// Inodes of listeners opened during the run (after every other inode of the tree).
const NEW_INODE: u64 = 2_000_000;

fn main() {
    let root = std::env::temp_dir().join(format!("unitdeck-ports-bench-{}", std::process::id()));
    let tcp = build_tree(&root);

    // Warm the dentry cache once so every timed run sees the same state.
    let found = scan(&root).expect("scan synthetic tree");
    assert_eq!(found.len(), 2 * PROCESSES as usize);
    assert!(found.iter().all(|l| l.pid.is_some() && l.unit.is_some()));
    let expect_all = |listeners: &[Listener], extra: usize| {
        assert_eq!(listeners.len(), found.len() + extra);
        assert!(listeners.iter().all(|l| l.pid.is_some()));
    };

    // Nothing remembered: every fd table is read.
    let cold = timed(|| expect_all(&scan(&root).expect("scan"), 0));
    report("cold (first scan)", &cold);

    // What `GET /api/v1/ports` does on a quiet machine: one readlink per listener.
    let mut scanner = PortScanner::new(&root);
    scanner.scan().expect("first scan");
    let warm = timed(|| expect_all(&scanner.scan().expect("scan"), 0));
    report("warm (nothing changed)", &warm);

    // A process started since the last scan holds a new listener: a walk that starts at
    // the newest pid.
    let mut churn = Vec::with_capacity(RUNS);
    for n in 0..RUNS {
        add_process(&root, &tcp, n);
        churn.push(timed_once(|| {
            expect_all(&scanner.scan().expect("scan"), n + 1)
        }));
    }
    churn.sort();
    report("warm + 1 new app per scan", &churn);
    fs::remove_dir_all(&root).expect("remove synthetic tree");

    let start = Instant::now();
    let real = scan(Path::new("/proc")).expect("scan /proc");
    let elapsed = start.elapsed();
    println!(
        "real /proc: {} listeners ({} with pid) in {:.2} ms",
        real.len(),
        real.iter().filter(|l| l.pid.is_some()).count(),
        ms(elapsed)
    );
}

fn timed(mut run: impl FnMut()) -> Vec<Duration> {
    let mut times: Vec<Duration> = (0..RUNS).map(|_| timed_once(&mut run)).collect();
    times.sort();
    times
}

fn timed_once(mut run: impl FnMut()) -> Duration {
    let start = Instant::now();
    run();
    start.elapsed()
}

fn report(what: &str, sorted: &[Duration]) {
    let p99 = sorted[(sorted.len() * 99).div_ceil(100) - 1];
    println!(
        "synthetic {what}: {} listeners, {PROCESSES} processes x {FDS_PER_PROCESS} fds, {} runs: \
         median {:.2} ms, p99 {:.2} ms",
        2 * PROCESSES,
        sorted.len(),
        ms(sorted[sorted.len() / 2]),
        ms(p99)
    );
}

/// Adds app number `n` (a new, highest pid listening on one new port) to the tree.
fn add_process(root: &Path, (listening, established): &(String, String), n: usize) {
    let n = u32::try_from(n).expect("few apps");
    let mut rows = listening.clone();
    for k in 0..=n {
        let port = FIRST_PORT + PROCESSES + k;
        let inode = NEW_INODE + u64::from(k);
        writeln!(
            rows,
            "{k:4}: 0100007F:{port:04X} 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 {inode} 1 0000000000000000 100 0 0 10 0"
        )
        .unwrap();
    }
    rows.push_str(established);
    fs::write(root.join("net/tcp"), rows).unwrap();
    let dir = root.join((1000 + PROCESSES + n).to_string());
    fs::create_dir_all(dir.join("fd")).unwrap();
    fs::write(dir.join("comm"), "new-app\n").unwrap();
    fs::write(dir.join("cgroup"), "0::/system.slice/new.service\n").unwrap();
    for fd in 0..FDS_PER_PROCESS {
        let target = if fd == 5 {
            format!("socket:[{}]", NEW_INODE + u64::from(n))
        } else {
            "/dev/null".to_owned()
        };
        symlink(target, dir.join("fd").join(fd.to_string())).unwrap();
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Process `i` owns listener inodes `2i` (IPv4) and `2i + 1` (IPv6), both on port
/// `FIRST_PORT + i`, so the owner walk must visit every process before it can stop.
///
/// Returns net/tcp's listening rows and its established rows, so listeners can be added
/// where a kernel prints them.
fn build_tree(root: &Path) -> (String, String) {
    let _ = fs::remove_dir_all(root);
    let net = root.join("net");
    fs::create_dir_all(&net).unwrap();

    let mut tcp = String::from(
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n",
    );
    let mut tcp6 = String::from(
        "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n",
    );
    for i in 0..PROCESSES {
        let port = FIRST_PORT + i;
        let inode = FIRST_INODE + 2 * u64::from(i);
        writeln!(
            tcp,
            "{i:4}: 0100007F:{port:04X} 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 {inode} 1 0000000000000000 100 0 0 10 0"
        )
        .unwrap();
        writeln!(
            tcp6,
            "{i:4}: 00000000000000000000000000000000:{port:04X} 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 {} 1 0000000000000000 100 0 0 10 0",
            inode + 1
        )
        .unwrap();
    }
    let mut established = String::new();
    for i in 0..ESTABLISHED {
        let sl = PROCESSES + i;
        writeln!(
            established,
            "{sl:4}: 0100007F:{FIRST_PORT:04X} 0100007F:{:04X} 01 00000000:00000000 00:00000000 00000000  1000        0 {} 1 0000000000000000 20 4 30 10 -1",
            40_000 + i,
            900_000 + i
        )
        .unwrap();
    }
    fs::write(net.join("tcp"), format!("{tcp}{established}")).unwrap();
    fs::write(net.join("tcp6"), tcp6).unwrap();

    // Top-level entries a real /proc has besides pid directories.
    for name in ["cpuinfo", "meminfo", "stat", "uptime", "version", "loadavg"] {
        fs::write(root.join(name), "").unwrap();
    }
    for name in ["sys", "fs", "irq", "bus", "driver", "tty"] {
        fs::create_dir_all(root.join(name)).unwrap();
    }
    symlink("1000", root.join("self")).unwrap();

    for i in 0..PROCESSES {
        let dir: PathBuf = root.join((1000 + i).to_string());
        let fd_dir = dir.join("fd");
        fs::create_dir_all(&fd_dir).unwrap();
        fs::write(dir.join("comm"), format!("worker-{i}\n")).unwrap();
        fs::write(
            dir.join("cgroup"),
            format!("0::/system.slice/app-{i}.service\n"),
        )
        .unwrap();
        let inode = FIRST_INODE + 2 * u64::from(i);
        for fd in 0..FDS_PER_PROCESS {
            let target = match fd {
                0 => "/dev/null".to_owned(),
                1 | 2 => format!("pipe:[{}]", 500_000 + i),
                3 => "anon_inode:[eventfd]".to_owned(),
                7 => format!("socket:[{inode}]"),
                17 => format!("socket:[{}]", inode + 1),
                _ => format!("/var/lib/app-{i}/data-{fd}.db"),
            };
            symlink(target, fd_dir.join(fd.to_string())).unwrap();
        }
    }
    (tcp, established)
}
