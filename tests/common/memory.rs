//! Memory of unitdeck's cgroup as the kernel charges it (anonymous memory, page cache of
//! the files it maps or reads, kernel memory), for the memory figures of the benchmarks.
//!
//! Where systemd inside the container has a memory controller, that is unitdeck.service's
//! `MemoryCurrent`. On a cgroup v1 host systemd-nspawn gives the container none, so the
//! host side makes one: unitdeck is restarted under a shell that waits for SIGUSR1, the
//! shell is moved into a new child of its v1 memory cgroup, and only then `exec`s
//! unitdeck. Everything unitdeck (and the journalctl children it starts, which inherit
//! the group) allocates or first reads from then on is charged there, and its
//! `memory.usage_in_bytes` is what systemd reports as `MemoryCurrent` on such hosts.
//! (Moving an already running process would leave its earlier charges behind: this
//! kernel refuses `memory.move_charge_at_immigrate`.) Pages of files another process read
//! first, such as the binary when the build just wrote it, stay charged to that one.

use std::fs;
use std::path::PathBuf;

use super::Sandbox;

pub enum UnitMemory {
    /// systemd's own accounting inside the container.
    Systemd,
    /// A v1 memory cgroup made for unitdeck's process; removed on drop.
    V1 {
        dir: PathBuf,
        parent: PathBuf,
        host_pid: u32,
    },
}

impl UnitMemory {
    /// Restarts unitdeck so that all its memory is measured; waits until it answers.
    pub fn restart_measured(sb: &Sandbox) -> Self {
        if sb
            .show("unitdeck.service", "MemoryCurrent")
            .parse::<u64>()
            .is_ok()
        {
            sb.sh("systemctl restart unitdeck.service");
            sb.wait_healthy();
            return Self::Systemd;
        }
        sb.write(
            "/etc/systemd/system/unitdeck.service.d/zz-measured.conf",
            "[Service]\nExecStart=\nExecStart=/bin/sh -c 'trap \"exec /opt/unitdeck/unitdeck serve\" USR1; \
             while :; do sleep 0.05; done'\n",
        );
        sb.sh("systemctl daemon-reload && systemctl restart unitdeck.service");
        let inner: u32 = sb
            .show("unitdeck.service", "MainPID")
            .parse()
            .expect("unitdeck's MainPID");
        let host_pid = sb.host_pid(inner);
        let cgroups = fs::read_to_string(format!("/proc/{host_pid}/cgroup")).unwrap();
        let path = cgroups
            .lines()
            .find_map(|l| {
                let mut parts = l.splitn(3, ':');
                let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
                controllers
                    .split(',')
                    .any(|c| c == "memory")
                    .then_some(path)
            })
            .expect("neither MemoryCurrent nor a v1 memory cgroup: nothing can measure memory");
        let parent = PathBuf::from("/sys/fs/cgroup/memory").join(path.trim_start_matches('/'));
        let dir = parent.join(format!("unitdeck-{}-{host_pid}", sb.machine));
        fs::create_dir_all(&dir).expect("a v1 memory cgroup (needs root)");
        fs::write(dir.join("cgroup.procs"), host_pid.to_string()).unwrap();
        // SAFETY: a plain kill(2) of the waiting shell.
        assert_eq!(
            unsafe { libc::kill(host_pid as i32, libc::SIGUSR1) },
            0,
            "signal the waiting shell"
        );
        sb.wait_healthy();
        Self::V1 {
            dir,
            parent,
            host_pid,
        }
    }

    /// Bytes charged now.
    pub fn current(&self, sb: &Sandbox) -> u64 {
        match self {
            Self::Systemd => sb
                .show("unitdeck.service", "MemoryCurrent")
                .parse()
                .expect("MemoryCurrent"),
            Self::V1 { dir, .. } => read_number(dir.join("memory.usage_in_bytes")),
        }
    }

    /// The highest charge since the last call (`None` where the kernel does not keep it:
    /// sample `current` instead).
    pub fn take_peak(&self) -> Option<u64> {
        match self {
            Self::Systemd => None,
            Self::V1 { dir, .. } => {
                let peak = read_number(dir.join("memory.max_usage_in_bytes"));
                fs::write(dir.join("memory.max_usage_in_bytes"), "0").ok();
                Some(peak)
            }
        }
    }
}

impl Drop for UnitMemory {
    fn drop(&mut self) {
        if let Self::V1 {
            dir,
            parent,
            host_pid,
        } = self
        {
            // Back to where it was (children too), then the empty group can go.
            let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().chain([host_pid.to_string().as_str()]) {
                let _ = fs::write(parent.join("cgroup.procs"), pid);
            }
            let _ = fs::remove_dir(dir);
        }
    }
}

fn read_number(path: PathBuf) -> u64 {
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{}: {text:?}", path.display()))
}
