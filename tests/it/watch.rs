//! Measuring a running `airlock` from /proc: its peak resident memory and the bytes it has read,
//! taken while it is blocked reading stdin (named last on its command line, after the hostile
//! inputs), so that a run of milliseconds is measured as reliably as a long one. Past a cap the
//! child is killed and the test fails: a regression costs the machine the cap, not its memory.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::Isolated;

/// What a measured run may cost before it is killed.
pub struct Caps {
    /// Peak resident memory, KiB.
    pub rss_kib: u64,
    /// Wall time.
    pub time: Duration,
}

/// A finished run and what it cost up to the point where it blocked on stdin.
pub struct Measured {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// Peak resident memory (VmHWM, KiB) once every input before `-` was handled.
    pub peak_kib: u64,
    /// Bytes the process had read by then (`rchar`).
    pub read: u64,
    pub took: Duration,
}

/// `(name, state letter, VmHWM in KiB)` of a running process.
fn status(pid: u32) -> Option<(String, char, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    let peak = field("VmHWM:")?
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some((
        field("Name:")?.to_string(),
        field("State:")?.chars().next()?,
        peak,
    ))
}

/// Bytes a process has read so far (`rchar`, every read(2), files and pipes alike).
fn bytes_read(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// Runs `cmd` (whose last input must be `-`) with stdin held open until the child has slept
/// for 50 ms — blocked on stdin, every other input handled — then reads its peak memory and
/// the bytes it read, closes stdin and lets it finish. Killed past `caps`.
pub fn until_stdin(mut cmd: Isolated<std::process::Command>, caps: Caps) -> Measured {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start airlock");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).map(|_| s).unwrap_or_default()
    });
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).map(|_| s).unwrap_or_default()
    });
    let started = Instant::now();
    let (mut peak, mut asleep_since, mut at_stdin) = (0, None::<Instant>, None);
    let status = loop {
        // A wrapper (prlimit, setpriv) runs first; measure only once it has exec'd airlock.
        if let Some((_, state, hwm)) = status(child.id()).filter(|(name, ..)| name == "airlock") {
            peak = peak.max(hwm);
            match (state == 'S' && at_stdin.is_none(), asleep_since) {
                (true, None) => asleep_since = Some(Instant::now()),
                (true, Some(t)) if t.elapsed() > Duration::from_millis(50) => {
                    at_stdin = Some((peak, bytes_read(child.id())));
                    drop(child.stdin.take());
                }
                (false, _) => asleep_since = None,
                _ => {}
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        let took = started.elapsed();
        if peak > caps.rss_kib || took > caps.time {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("airlock killed at a peak of {peak} KiB after {took:?}");
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let took = started.elapsed();
    let (peak_kib, read) = at_stdin.expect("airlock never waited on stdin");
    assert!(
        peak_kib > 1024,
        "no reading of airlock's memory: {peak_kib} KiB"
    );
    Measured {
        code: status.code(),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
        peak_kib,
        read,
        took,
    }
}
