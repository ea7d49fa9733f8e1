//! CPU and memory of processes, from `/proc/PID/stat`, `/proc/PID/status` and `getrusage`.

use std::sync::OnceLock;
use std::time::Duration;

use nix::sys::resource::{getrusage, UsageWho};
use nix::time::{clock_gettime, ClockId};

fn clk_tck() -> f64 {
    static TCK: OnceLock<f64> = OnceLock::new();
    *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The fields of `/proc/PID/stat` after the command name (field 3, the state, is index 0).
fn stat_fields(pid: u32) -> Vec<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    text.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

/// utime + stime of `pid` (all its threads), in seconds; 0 when it is gone.
pub fn cpu_secs(pid: u32) -> f64 {
    let f = stat_fields(pid);
    let field = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime is field 14, stime field 15 of the man page: indexes 11 and 12 here.
    (field(11) + field(12)) / clk_tck()
}

/// The processes whose parent is `pid`.
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let ppid = stat_fields(p).get(1).and_then(|v| v.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(p);
        }
    }
    out
}

/// (VmRSS, VmHWM) of `pid` in KiB.
pub fn rss_kib(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn usage_secs(who: UsageWho) -> f64 {
    getrusage(who)
        .map(|u| {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 * 1e-6;
            t(u.user_time()) + t(u.system_time())
        })
        .unwrap_or(0.0)
}

fn clock_secs(id: ClockId) -> f64 {
    clock_gettime(id)
        .map(|t| t.tv_sec() as f64 + t.tv_nsec() as f64 * 1e-9)
        .unwrap_or(0.0)
}

/// CPU of this process (every thread) so far, in seconds (nanosecond clock, not ticks).
pub fn self_cpu() -> f64 {
    clock_secs(ClockId::CLOCK_PROCESS_CPUTIME_ID)
}

/// CPU of this process's children that have been waited for, in seconds. The delta across one
/// child's `wait` is that child's CPU when children run one at a time.
pub fn children_cpu() -> f64 {
    usage_secs(UsageWho::RUSAGE_CHILDREN)
}

pub fn us(secs: f64) -> f64 {
    secs * 1e6
}

pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// CPU of the calling thread so far, in seconds (nanosecond clock, not ticks).
pub fn thread_cpu() -> f64 {
    clock_secs(ClockId::CLOCK_THREAD_CPUTIME_ID)
}
