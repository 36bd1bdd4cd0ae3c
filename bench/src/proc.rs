//! Roles as child processes of `target/release/altdata`, reaped with `wait4` for their
//! rusage (user + system CPU, peak RSS), and CPU accounting of the shared servers from
//! `/proc` (nats-server, every PostgreSQL process including reaped backends).

use anyhow::{anyhow, Context};
use serde::Serialize;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// How a child ended and what it used.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Usage {
    pub exit_code: i32,
    /// Killed by this signal (0: exited normally).
    pub signal: i32,
    pub cpu_user_s: f64,
    pub cpu_sys_s: f64,
    pub max_rss_mb: f64,
    pub wall_s: f64,
}

impl Usage {
    pub fn cpu_s(&self) -> f64 {
        self.cpu_user_s + self.cpu_sys_s
    }

    /// An error naming `role` with the tail of its log unless it exited with 0.
    pub fn succeeded(self, role: &str, log: &Path) -> anyhow::Result<Usage> {
        if self.exit_code != 0 {
            anyhow::bail!(
                "{role} failed (exit {}, signal {}):\n{}",
                self.exit_code,
                self.signal,
                log_tail(log, 20)
            );
        }
        Ok(self)
    }
}

/// One running role.
pub struct Role {
    pub name: String,
    pub log: PathBuf,
    pid: i32,
    waiter: Option<JoinHandle<anyhow::Result<Usage>>>,
}

impl Role {
    /// Starts `altdata <args>` with `env` added to the environment; stdout and stderr go to
    /// `<log_dir>/<name>.log`.
    pub fn spawn(
        binary: &Path,
        name: &str,
        args: &[String],
        env: &[(String, String)],
        log_dir: &Path,
    ) -> anyhow::Result<Role> {
        let log = log_dir.join(format!("{name}.log"));
        let out = File::create(&log).with_context(|| format!("{}", log.display()))?;
        let err = out.try_clone()?;
        let started = Instant::now();
        let child = Command::new(binary)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("cannot start {} {args:?}", binary.display()))?;
        let pid = child.id() as i32;
        // The std handle is dropped without waiting: wait4 below reaps the child.
        drop(child);
        let waiter = tokio::task::spawn_blocking(move || wait_for(pid, started));
        Ok(Role {
            name: name.to_owned(),
            log,
            pid,
            waiter: Some(waiter),
        })
    }

    pub fn has_exited(&self) -> bool {
        self.waiter.as_ref().is_none_or(|w| w.is_finished())
    }

    /// Sends SIGTERM (graceful shutdown: flush, ack, exit).
    pub fn terminate(&self) {
        if !self.has_exited() {
            // SAFETY: kill(2) with a pid we spawned and have not reaped yet.
            unsafe {
                libc::kill(self.pid, libc::SIGTERM);
            }
        }
    }

    /// Waits for the exit (at most `deadline`, then SIGKILL) and returns the rusage.
    pub async fn wait(mut self, deadline: Duration) -> anyhow::Result<Usage> {
        let Some(mut waiter) = self.waiter.take() else {
            return Err(anyhow!("{} already reaped", self.name));
        };
        match tokio::time::timeout(deadline, &mut waiter).await {
            Ok(joined) => joined.map_err(|e| anyhow!("waiter: {e}"))?,
            Err(_) => {
                // SAFETY: as above; the process has not been reaped (the waiter is pending).
                unsafe {
                    libc::kill(self.pid, libc::SIGKILL);
                }
                let usage = waiter.await.map_err(|e| anyhow!("waiter: {e}"))??;
                Err(anyhow!(
                    "{} did not exit within {deadline:?} and was killed (used {:.1}s CPU)",
                    self.name,
                    usage.cpu_s()
                ))
            }
        }
    }

    /// SIGTERM, then wait.
    pub async fn stop(self, deadline: Duration) -> anyhow::Result<Usage> {
        self.terminate();
        self.wait(deadline).await
    }

    /// The last `lines` lines of the role's log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }
}

pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Drop for Role {
    fn drop(&mut self) {
        if let Some(waiter) = &self.waiter {
            if !waiter.is_finished() {
                // A role left running by an error path: stop it hard, the waiter reaps it.
                // SAFETY: kill(2) on our own unreaped child.
                unsafe {
                    libc::kill(self.pid, libc::SIGKILL);
                }
            }
        }
    }
}

fn wait_for(pid: i32, started: Instant) -> anyhow::Result<Usage> {
    let mut status: libc::c_int = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: wait4 on our own child with valid out-pointers.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == pid {
            break;
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(anyhow!("wait4({pid}): {error}"));
        }
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let (exit_code, signal) = if libc::WIFEXITED(status) {
        (libc::WEXITSTATUS(status), 0)
    } else if libc::WIFSIGNALED(status) {
        (-1, libc::WTERMSIG(status))
    } else {
        (-1, 0)
    };
    Ok(Usage {
        exit_code,
        signal,
        cpu_user_s: seconds(usage.ru_utime),
        cpu_sys_s: seconds(usage.ru_stime),
        // Linux reports ru_maxrss in KiB.
        max_rss_mb: usage.ru_maxrss as f64 / 1024.0,
        wall_s: started.elapsed().as_secs_f64(),
    })
}

/// (start time in ticks, CPU seconds user + system) of a process, from /proc.
fn process_cpu(pid: i32) -> Option<(u64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After "pid (comm) ": state is field 0; utime and stime are 11 and 12, starttime 19.
    let ticks: f64 = fields
        .get(11..13)?
        .iter()
        .map(|f| f.parse::<f64>().unwrap_or(0.0))
        .sum();
    let start: u64 = fields.get(19)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some((start, ticks / hz))
}

/// A process's parent and its reaped children's CPU seconds (`cutime + cstime`).
fn reaped_cpu(pid: i32) -> Option<(i32, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After "pid (comm) ": the parent is field 1; cutime and cstime are 13 and 14.
    let parent: i32 = fields.get(1)?.parse().ok()?;
    let ticks: f64 = fields
        .get(13..15)?
        .iter()
        .map(|f| f.parse::<f64>().unwrap_or(0.0))
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some((parent, ticks / hz))
}

fn processes_named(name: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.trim() == name)
                .unwrap_or(false)
        })
        .collect()
}

/// The project's nats-server (from `.stack/nats/nats.pid`, else the one whose command line
/// mentions `.stack` or the port of `nats_url`); never Debian's on 4222.
pub fn nats_pid(stack_dir: &Path, nats_url: &str) -> Option<i32> {
    let from_file = std::fs::read_to_string(stack_dir.join("nats/nats.pid"))
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.trim() == "nats-server")
                .unwrap_or(false)
        });
    if from_file.is_some() {
        return from_file;
    }
    let port = nats_url.rsplit(':').next().unwrap_or("14222").to_owned();
    processes_named("nats-server").into_iter().find(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| {
                let c = String::from_utf8_lossy(&c);
                c.contains(".stack") || c.contains(&port)
            })
            .unwrap_or(false)
    })
}

/// The nats-servers named by pidfiles (a cluster's, from `.stack/cluster.env`), each checked to
/// be a running `nats-server`.
pub fn nats_pids_from_pidfiles(pidfiles: &[PathBuf]) -> Vec<i32> {
    pidfiles
        .iter()
        .filter_map(|file| {
            std::fs::read_to_string(file)
                .ok()?
                .trim()
                .parse::<i32>()
                .ok()
        })
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.trim() == "nats-server")
                .unwrap_or(false)
        })
        .collect()
}

/// A snapshot of the servers' CPU counters; the difference of two is what a run cost them.
/// PostgreSQL is every `postgres` process, by pid and start time (a backend that started
/// during the interval counts whole), and what the postmaster reaped: the whole CPU of every
/// backend that has ended, so a connection closed before the last sample (a role's pool
/// closing at its end) counts too.
#[derive(Debug, Clone, Default)]
pub struct ServerCpu {
    pub nats_s: f64,
    pub postgres: std::collections::HashMap<(i32, u64), f64>,
    /// The postmaster's children's CPU (`cutime + cstime`): every ended backend, whole.
    pub postgres_reaped_s: f64,
    /// All CPUs of the machine, busy (non-idle) seconds, from /proc/stat.
    pub machine_busy_s: f64,
}

/// What an interval cost, from two [`ServerCpu`] samples.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuDelta {
    pub nats_s: f64,
    pub postgres_s: f64,
    pub machine_busy_s: f64,
}

impl ServerCpu {
    /// `nats` are the nats-server processes to count (one, or a cluster's three), summed.
    pub fn sample(nats: &[i32]) -> ServerCpu {
        let nats_s = nats
            .iter()
            .filter_map(|&pid| process_cpu(pid))
            .map(|(_, s)| s)
            .sum();
        let pids = processes_named("postgres");
        let postgres = pids
            .iter()
            .filter_map(|&pid| process_cpu(pid).map(|(start, s)| ((pid, start), s)))
            .collect();
        // The postmaster: the one postgres process whose parent is not one.
        let postgres_reaped_s = pids
            .iter()
            .filter_map(|&pid| reaped_cpu(pid))
            .find(|(parent, _)| !pids.contains(parent))
            .map_or(0.0, |(_, s)| s);
        ServerCpu {
            nats_s,
            postgres,
            postgres_reaped_s,
            machine_busy_s: machine_busy_seconds(),
        }
    }

    pub fn since(&self, earlier: &ServerCpu) -> CpuDelta {
        let alive: f64 = self
            .postgres
            .iter()
            .map(|(key, now)| (now - earlier.postgres.get(key).copied().unwrap_or(0.0)).max(0.0))
            .sum();
        // A backend that ended between the samples is in the reaped counter with its whole
        // life; what it had used by the first sample belongs to the time before.
        let ended_used_before: f64 = earlier
            .postgres
            .iter()
            .filter(|(key, _)| !self.postgres.contains_key(key))
            .map(|(_, s)| s)
            .sum();
        let reaped = self.postgres_reaped_s - earlier.postgres_reaped_s - ended_used_before;
        let postgres_s = alive + reaped.max(0.0);
        CpuDelta {
            nats_s: (self.nats_s - earlier.nats_s).max(0.0),
            postgres_s,
            machine_busy_s: (self.machine_busy_s - earlier.machine_busy_s).max(0.0),
        }
    }
}

fn machine_busy_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return 0.0;
    };
    let Some(line) = stat.lines().next() else {
        return 0.0;
    };
    let values: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    // user nice system idle iowait irq softirq steal ...; busy = all but idle and iowait.
    let total: f64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0.0) + values.get(4).copied().unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (total - idle) / hz
}
