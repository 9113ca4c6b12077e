//! Times `ports::scan` on a synthetic /proc (1,000 listeners, 500 processes × 20 fds) and
//! once on the real /proc, to check the "≤ 20 ms per scan" budget of `GET /api/v1/ports`.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use unitdeck::ports::scan;

const PROCESSES: u32 = 500;
const FDS_PER_PROCESS: u32 = 20;
/// Non-listening rows in net/tcp, which the parser has to read past.
const ESTABLISHED: u32 = 200;
const RUNS: usize = 50;
const FIRST_INODE: u64 = 100_000;
const FIRST_PORT: u32 = 10_000;

fn main() {
    let root = std::env::temp_dir().join(format!("unitdeck-ports-bench-{}", std::process::id()));
    build_tree(&root);

    // Warm the dentry cache once so every timed run sees the same state.
    let found = scan(&root).expect("scan synthetic tree");
    assert_eq!(found.len(), 2 * PROCESSES as usize);
    assert!(found.iter().all(|l| l.pid.is_some() && l.unit.is_some()));

    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            let listeners = scan(&root).expect("scan synthetic tree");
            let elapsed = start.elapsed();
            assert_eq!(listeners.len(), found.len());
            elapsed
        })
        .collect();
    times.sort();
    let p99 = times[(RUNS * 99).div_ceil(100) - 1];
    println!(
        "synthetic: {} listeners, {PROCESSES} processes x {FDS_PER_PROCESS} fds, {RUNS} runs: \
         median {:.2} ms, p99 {:.2} ms",
        found.len(),
        ms(times[RUNS / 2]),
        ms(p99)
    );
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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Process `i` owns listener inodes `2i` (IPv4) and `2i + 1` (IPv6), both on port
/// `FIRST_PORT + i`, so the owner walk must visit every process before it can stop.
fn build_tree(root: &Path) {
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
    for i in 0..ESTABLISHED {
        let sl = PROCESSES + i;
        writeln!(
            tcp,
            "{sl:4}: 0100007F:{FIRST_PORT:04X} 0100007F:{:04X} 01 00000000:00000000 00:00000000 00000000  1000        0 {} 1 0000000000000000 20 4 30 10 -1",
            40_000 + i,
            900_000 + i
        )
        .unwrap();
    }
    fs::write(net.join("tcp"), tcp).unwrap();
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
}
