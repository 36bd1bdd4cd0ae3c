//! The one shutdown mechanism: a cancellation token triggered by SIGINT or SIGTERM (or by a
//! caller, in tests), and a group of named tasks that are all cancelled when one fails and
//! are given a bounded time to drain.

use std::future::Future;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A shared "please stop" signal. Cheap to clone; every long-running loop selects on
/// [`Shutdown::cancelled`] and drains (flush, commit, ack) before returning.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// A shutdown triggered by SIGINT or SIGTERM.
    pub fn on_signals() -> Shutdown {
        let shutdown = Shutdown::new();
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("signal received, shutting down");
            trigger.trigger();
        });
        shutdown
    }

    pub fn trigger(&self) {
        self.token.cancel();
    }

    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    pub async fn cancelled(&self) {
        self.token.cancelled().await
    }

    /// A shutdown that fires with this one, or on its own (for one task or a sub-group).
    pub fn child(&self) -> Shutdown {
        Shutdown {
            token: self.token.child_token(),
        }
    }
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut terminate) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

/// Named tasks that live and die together: the first to fail triggers the shutdown of all;
/// [`TaskGroup::join`] waits for every task, at most `drain` after shutdown began.
pub struct TaskGroup {
    shutdown: Shutdown,
    tasks: JoinSet<(String, TaskResult)>,
}

/// The error a task ends with; boxed so the shared crate does not force `anyhow` on libraries.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
type TaskResult = Result<(), BoxError>;

impl TaskGroup {
    pub fn new(shutdown: Shutdown) -> TaskGroup {
        TaskGroup {
            shutdown,
            tasks: JoinSet::new(),
        }
    }

    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Spawns a named task. Its error is logged with its name and stops the group.
    pub fn spawn<F, E>(&mut self, name: impl Into<String>, task: F)
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let name = name.into();
        self.tasks
            .spawn(async move { (name, task.await.map_err(Into::into)) });
    }

    /// Waits for all tasks. Returns the first error, if any. After shutdown begins, tasks
    /// still running when `drain` has passed are aborted.
    pub async fn join(mut self, drain: Duration) -> Result<(), BoxError> {
        let mut first_error: Option<BoxError> = None;
        loop {
            let next = tokio::select! {
                next = self.tasks.join_next() => next,
                _ = self.shutdown.cancelled() => break,
            };
            let Some(outcome) = next else {
                return first_error.map_or(Ok(()), Err);
            };
            record(outcome, &self.shutdown, &mut first_error);
        }
        let deadline = tokio::time::sleep(drain);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = self.tasks.join_next() => match next {
                    Some(outcome) => record(outcome, &self.shutdown, &mut first_error),
                    None => break,
                },
                _ = &mut deadline => {
                    tracing::warn!(remaining = self.tasks.len(), drain_ms = drain.as_millis() as u64, "drain bound reached, aborting remaining tasks");
                    self.tasks.abort_all();
                    while self.tasks.join_next().await.is_some() {}
                    break;
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

fn record(
    outcome: Result<(String, TaskResult), tokio::task::JoinError>,
    shutdown: &Shutdown,
    first_error: &mut Option<BoxError>,
) {
    match outcome {
        Ok((name, Ok(()))) => tracing::debug!(task = %name, "task finished"),
        Ok((name, Err(error))) => {
            tracing::error!(task = %name, error = %error, "task failed, stopping all tasks");
            shutdown.trigger();
            first_error.get_or_insert_with(|| format!("{name}: {error}").into());
        }
        Err(join_error) if join_error.is_cancelled() => {}
        Err(join_error) => {
            tracing::error!(error = %join_error, "task panicked, stopping all tasks");
            shutdown.trigger();
            first_error.get_or_insert_with(|| format!("task panicked: {join_error}").into());
        }
    }
}
