//! The real `hookline` binary as a child process, run as operators run it: for the tests and
//! benches that stop it with SIGTERM, kill it with SIGKILL, run several on one database, or
//! measure its CPU and memory. Shared by the integration tests and the benches (`#[path]`).

#![allow(dead_code)] // each includer uses its own part

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `hookline serve` about to start.
pub struct Launch {
    cmd: Command,
}

/// `hookline serve` on `database_url`: on a free loopback port, allowed to deliver to
/// loopback over plain HTTP, logging warnings to this process's stderr, with no
/// configuration file. Add or override settings with [`Launch::env`]. The binary is the one
/// cargo built with this program, or `HOOKLINE_BENCH_SERVER` (another build's `hookline`, to
/// compare two builds back to back with one bench).
pub fn serve(database_url: &str) -> Launch {
    let binary =
        std::env::var_os("HOOKLINE_BENCH_SERVER").unwrap_or_else(|| env!("CARGO_BIN_EXE_hookline").into());
    let mut cmd = Command::new(binary);
    cmd.arg("serve")
        .env_remove("HOOKLINE_CONFIG")
        .env("HOOKLINE_DATABASE_URL", database_url)
        .env("HOOKLINE_LISTEN", "127.0.0.1:0")
        .env("HOOKLINE_ALLOW_NETWORKS", "127.0.0.0/8")
        .env("HOOKLINE_ALLOW_HTTP", "true")
        .env("HOOKLINE_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    Launch { cmd }
}

impl Launch {
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    pub fn envs(mut self, pairs: &[(&str, &str)]) -> Self {
        for (key, value) in pairs {
            self.cmd.env(key, value);
        }
        self
    }

    /// Where its log goes (this process's stderr unless told).
    pub fn stderr(mut self, to: impl Into<Stdio>) -> Self {
        self.cmd.stderr(to);
        self
    }

    /// Starts it and waits until it says where it listens (what `hookline serve` prints once
    /// it accepts connections: every role listens, for `/healthz` at least).
    pub fn start(mut self) -> HooklineProcess {
        let mut child = self.cmd.spawn().expect("hookline starts");
        let mut reader = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let base = loop {
            let mut line = String::new();
            assert!(reader.read_line(&mut line).unwrap_or(0) > 0, "hookline exited before listening");
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.trim().to_string();
            }
        };
        // Keep reading, so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in reader.lines() {});
        HooklineProcess { child, base }
    }
}

/// A running `hookline serve`; killed when dropped.
pub struct HooklineProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
}

impl HooklineProcess {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal as `kill` does (`-TERM`, `-KILL`, …).
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill").args([signal, &self.pid().to_string()]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill {signal}");
    }

    /// Stops it as an operator would (SIGTERM) and waits for it to exit.
    pub fn stop(mut self) {
        self.signal("-TERM");
        let _ = self.child.wait();
    }

    /// SIGKILL: no shutdown, nothing flushed, leases left behind.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for it to exit (polling, so an async test's other tasks go on); its exit code,
    /// `None` for a signal.
    pub async fn exited_within(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("the child's status") {
                return status.code();
            }
            assert!(Instant::now() < deadline, "hookline did not exit within {within:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// CPU seconds it has used (user and system), from /proc.
    pub fn cpu_seconds(&self) -> f64 {
        process_cpu_seconds(&self.pid().to_string())
    }

    /// Peak resident set size in MiB (`VmHWM`), from /proc.
    pub fn peak_rss_mib(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
            })
            .map(|kb| kb / 1024.0)
            .unwrap_or(f64::NAN)
    }
}

impl Drop for HooklineProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The fields of /proc/<pid>/stat after the command name (which is in parentheses, and may
/// hold spaces): state is the first, ppid the second, utime, stime, cutime and cstime the
/// 12th to 15th. Empty when the process is gone.
fn stat_fields(pid: &str) -> Vec<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Clock ticks summed over `fields[range]`; `None` when the fields are not there.
fn ticks(fields: &[String], range: std::ops::Range<usize>) -> Option<f64> {
    fields.get(range).map(|v| v.iter().filter_map(|x| x.parse::<f64>().ok()).sum())
}

/// CPU seconds a process has used (user and system), from /proc/<pid>/stat; `self` for this
/// one.
pub fn process_cpu_seconds(pid: &str) -> f64 {
    ticks(&stat_fields(pid), 11..13).unwrap_or(f64::NAN) / clock_ticks()
}

/// CPU seconds a PostgreSQL cluster has used: the postmaster with its reaped children, and
/// its live children (the backends), from /proc.
pub fn postgres_cpu_seconds(postmaster: Option<&str>) -> f64 {
    let Some(pid) = postmaster else { return f64::NAN };
    let mut total = ticks(&stat_fields(pid), 11..15).unwrap_or(0.0);
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.chars().all(|c| c.is_ascii_digit()) {
                let f = stat_fields(&name);
                if f.get(1).map(String::as_str) == Some(pid) {
                    total += ticks(&f, 11..13).unwrap_or(0.0);
                }
            }
        }
    }
    total / clock_ticks()
}

/// USER_HZ, 100 on Linux.
pub fn clock_ticks() -> f64 {
    100.0
}
