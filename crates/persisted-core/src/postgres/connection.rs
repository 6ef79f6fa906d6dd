//! The connection: a `postgres::Client` owned by an I/O thread of its own.
//! The sync client runs its own tokio runtime, which panics when it starts
//! inside a caller's (a store used from a tokio task); on its own thread it
//! never does. Every call sends a closure to that thread and waits for its
//! reply; the thread connects again after a lost connection.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

type Job = Box<dyn FnOnce(&mut Link) + Send>;

/// What the I/O thread holds: the client, made again when lost.
pub(super) struct Link {
    config: postgres::Config,
    client: Option<postgres::Client>,
}

impl Link {
    /// The client, connected now if it was not.
    pub(super) fn client(&mut self) -> std::result::Result<&mut postgres::Client, postgres::Error> {
        let client = match self.client.take() {
            Some(client) if !client.is_closed() => client,
            _ => self.config.connect(postgres::NoTls)?,
        };
        Ok(self.client.insert(client))
    }

    /// Drops the connection (the next call connects again).
    pub(super) fn forget(&mut self) {
        self.client = None;
    }
}

/// The handle the store keeps: sends work to the I/O thread.
pub(super) struct Connection {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    target: PathBuf,
    timeout: Duration,
}

impl Connection {
    /// Starts the I/O thread for the server at `url` (not connected yet).
    /// `options` are the session's settings (`-c name=value ...`).
    pub(super) fn start(
        url: &str,
        target: PathBuf,
        timeout: Duration,
        options: &str,
    ) -> Result<Connection> {
        let mut config = postgres::Config::from_str(url).map_err(|e| Error::Remote {
            path: target.clone(),
            op: "connect to",
            message: format!("not a PostgreSQL URL: {e}"),
        })?;
        config
            .connect_timeout(timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .options(options)
            .application_name("persisted-state");
        let (jobs, inbox) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("persisted-postgres".into())
            .spawn(move || {
                let mut link = Link {
                    config,
                    client: None,
                };
                for job in inbox {
                    job(&mut link);
                }
            })
            .map_err(|e| Error::Remote {
                path: target.clone(),
                op: "start the connection thread of",
                message: e.to_string(),
            })?;
        Ok(Connection {
            jobs: Some(jobs),
            thread: Some(thread),
            target,
            timeout,
        })
    }

    /// Runs `f` on the I/O thread and returns its result.
    fn run<R: Send + 'static>(&self, f: impl FnOnce(&mut Link) -> R + Send + 'static) -> Result<R> {
        let (reply, answer) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |link| {
            let _ = reply.send(f(link));
        });
        let sent = self.jobs.as_ref().map(|jobs| jobs.send(job));
        if !matches!(sent, Some(Ok(()))) {
            return Err(self.error("reach", "the connection thread has stopped"));
        }
        answer
            .recv()
            .map_err(|_| self.error("reach", "the connection thread has stopped"))
    }

    /// Runs `f` with a connected client, connecting again (within the
    /// timeout) when the connection is lost or cannot be made. `f` must be
    /// safe to run again: a commit is not (see `commit.rs`).
    pub(super) fn with_retry<R: Send + 'static>(
        &self,
        op: &'static str,
        f: impl Fn(&mut postgres::Client) -> std::result::Result<R, postgres::Error> + Send + 'static,
    ) -> Result<R> {
        let timeout = self.timeout;
        let outcome = self.run(move |link| {
            let start = Instant::now();
            let mut pause = Duration::from_millis(5);
            loop {
                let result = link.client().and_then(&f);
                match result {
                    Err(e) if is_connection_error(&e) => {
                        link.forget();
                        if start.elapsed() + pause >= timeout {
                            return Err(e);
                        }
                        std::thread::sleep(pause);
                        pause = (pause * 2).min(Duration::from_millis(200));
                    }
                    other => return other,
                }
            }
        })?;
        outcome.map_err(|e| self.db_error(op, &e))
    }

    /// Runs `f` once with the client as it is (no retry): for a statement
    /// that must not be sent twice, or inside a transaction.
    pub(super) fn once<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> std::result::Result<R, postgres::Error>
            + Send
            + 'static,
    ) -> Result<std::result::Result<R, postgres::Error>> {
        self.run(move |link| {
            let result = link.client().and_then(f);
            if let Err(e) = &result {
                if is_connection_error(e) {
                    link.forget();
                }
            }
            result
        })
    }

    pub(super) fn error(&self, op: &'static str, message: impl ToString) -> Error {
        Error::Remote {
            path: self.target.clone(),
            op,
            message: message.to_string(),
        }
    }

    /// The error for a failed call: a held lock (`55P03`, `lock_timeout`)
    /// is [`Error::LockTimeout`]; the rest name the server's message.
    pub(super) fn db_error(&self, op: &'static str, e: &postgres::Error) -> Error {
        if e.code() == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE) {
            return Error::LockTimeout {
                path: self.target.clone(),
                waited: Duration::ZERO,
            };
        }
        let message = match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        };
        self.error(op, message)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Closing the channel ends the thread once its last job is done.
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Whether `e` means the connection is gone (or could not be made): the
/// call may be made again on a new one.
pub(super) fn is_connection_error(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        // Not from the server: an I/O error, a refused connection, a
        // timeout while connecting.
        None => e.as_db_error().is_none(),
        Some(code) => matches!(
            code.code(),
            // The server is shutting down, starting up, or in recovery.
            "57P01" | "57P02" | "57P03" | "08000" | "08003" | "08006" | "08001" | "08004"
        ),
    }
}
