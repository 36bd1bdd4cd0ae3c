//! One child process that can be started, signalled, SIGKILLed and started again with the same
//! command line, its output appended to one log file. Every child gets `PR_SET_PDEATHSIG =
//! SIGKILL`, so even a SIGKILLed suite leaves nothing running; dropping a [`Proc`] kills it.
//!
//! The suite runs on a current-thread runtime, so every child is forked by the main thread,
//! which lives as long as the suite (the parent-death signal follows the forking thread).

use anyhow::Context;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

pub struct Proc {
    pub name: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: PathBuf,
    pub log: PathBuf,
    run_as: Option<(u32, u32)>,
    child: Option<tokio::process::Child>,
    /// How many times it was started.
    pub starts: u32,
}

/// What every child sees besides its own variables: nothing of the caller's environment
/// (no `.stack/env` URLs leak into a child by accident).
pub fn base_env() -> Vec<(String, String)> {
    vec![
        (
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ),
        ("HOME".into(), "/tmp".into()),
        ("NO_COLOR".into(), "1".into()),
        ("LANG".into(), "C.UTF-8".into()),
    ]
}

impl Proc {
    pub fn new(
        name: &str,
        program: impl Into<PathBuf>,
        args: Vec<String>,
        env: Vec<(String, String)>,
        cwd: &Path,
        log: PathBuf,
        run_as: Option<(u32, u32)>,
    ) -> Proc {
        Proc {
            name: name.to_owned(),
            program: program.into(),
            args,
            env,
            cwd: cwd.to_path_buf(),
            log,
            run_as,
            child: None,
            starts: 0,
        }
    }

    /// Starts the process (it must not be running). Returns its pid.
    pub fn start(&mut self) -> anyhow::Result<u32> {
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        self.starts += 1;
        writeln!(
            log,
            "===== faults: start #{} of {} at +{:.1}s =====",
            self.starts,
            self.name,
            crate::util::elapsed()
        )?;
        if let Some((uid, gid)) = self.run_as {
            // The log must stay writable by the child after it drops root.
            let _ = std::os::unix::fs::chown(&self.log, Some(uid), Some(gid));
        }
        let mut command = tokio::process::Command::new(&self.program);
        command
            .args(&self.args)
            .env_clear()
            .envs(base_env())
            .envs(self.env.iter().cloned())
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid);
        }
        // SAFETY: prctl is async-signal-safe; it runs in the child between fork and exec,
        // after the uid change (which would otherwise clear the parent-death signal).
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {} ({})", self.name, self.program.display()))?;
        let pid = child.id().unwrap_or(0);
        self.child = Some(child);
        Ok(pid)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    /// `Some(status)` when the process ended by itself (or was never started: `None` then
    /// reads as "not running" through [`Proc::is_running`]).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(Some(status))) => {
                self.child = None;
                Some(status)
            }
            _ => None,
        }
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => true,
            Some(_) => {
                self.child = None;
                false
            }
            None => false,
        }
    }

    /// Sends `signal`, waits up to `grace` for the exit, then SIGKILLs. Returns the status.
    pub async fn stop(&mut self, signal: i32, grace: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if let Some(pid) = child.id() {
            // SAFETY: as in `signal`.
            unsafe {
                libc::kill(pid as i32, signal);
            }
        }
        match tokio::time::timeout(grace, child.wait()).await {
            Ok(status) => status.ok(),
            Err(_) => {
                let _ = child.start_kill();
                child.wait().await.ok()
            }
        }
    }

    /// SIGKILL and reap, without a runtime (for Drop).
    fn kill_blocking(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = child.start_kill();
        for _ in 0..100 {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill_blocking();
    }
}

/// Runs a command to completion (for initdb and `altdata` one-shots), output to `log`.
/// Returns its stdout.
pub async fn run_to_end(
    program: &Path,
    args: &[&str],
    env: &[(String, String)],
    cwd: &Path,
    log: &Path,
    run_as: Option<(u32, u32)>,
) -> anyhow::Result<String> {
    let stderr_log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(base_env())
        .envs(env.iter().cloned())
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr_log)
        .kill_on_drop(true);
    if let Some((uid, gid)) = run_as {
        command.uid(uid).gid(gid);
    }
    let output = command
        .output()
        .await
        .with_context(|| format!("running {}", program.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut log_file = std::fs::OpenOptions::new().append(true).open(log)?;
    let _ = log_file.write_all(stdout.as_bytes());
    if !output.status.success() {
        anyhow::bail!(
            "{} {} failed ({}); log:\n{}",
            program.display(),
            args.join(" "),
            output.status,
            crate::util::tail(log, 30)
        );
    }
    Ok(stdout)
}
