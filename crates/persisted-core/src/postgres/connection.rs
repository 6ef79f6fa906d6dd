//! The connection: a `postgres::Client`, used on the caller's thread, and
//! connected again after a lost connection. The sync client runs its own
//! tokio runtime, which panics when it starts (or is dropped) inside a
//! caller's (a store used from a tokio task): there each call runs on a
//! scoped thread of its own.

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use postgres::types::ToSql;
use postgres::{Row, SimpleQueryMessage, Statement};

use super::tls::{split_root_cert, Transport};
use crate::error::{Error, Result};

/// What the I/O thread holds: the client, made again when lost, and the
/// statements prepared on it.
pub(super) struct Link {
    config: postgres::Config,
    transport: Transport,
    client: Option<postgres::Client>,
    statements: HashMap<&'static str, Statement>,
}

impl Link {
    /// The session, connected now if it was not.
    pub(super) fn session(&mut self) -> std::result::Result<Session<'_>, postgres::Error> {
        let client = match self.client.take() {
            Some(client) if !client.is_closed() => client,
            _ => {
                self.statements.clear();
                self.transport.connect(&self.config)?
            }
        };
        Ok(Session {
            client: self.client.insert(client),
            statements: &mut self.statements,
        })
    }

    /// Drops the connection (the next call connects again).
    pub(super) fn forget(&mut self) {
        self.client = None;
        self.statements.clear();
    }
}

/// A connected client, with each statement prepared once per connection
/// (a statement sent as text is parsed and described first: one round
/// trip more on every call).
pub(super) struct Session<'a> {
    client: &'a mut postgres::Client,
    statements: &'a mut HashMap<&'static str, Statement>,
}

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

impl Session<'_> {
    fn statement(&mut self, sql: &'static str) -> std::result::Result<Statement, postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    pub(super) fn query_one(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
    ) -> std::result::Result<Row, postgres::Error> {
        let statement = self.statement(sql)?;
        self.client.query_one(&statement, params)
    }

    pub(super) fn query_opt(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
    ) -> std::result::Result<Option<Row>, postgres::Error> {
        let statement = self.statement(sql)?;
        self.client.query_opt(&statement, params)
    }

    pub(super) fn query(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
    ) -> std::result::Result<Vec<Row>, postgres::Error> {
        let statement = self.statement(sql)?;
        self.client.query(&statement, params)
    }

    /// Statements sent as text in one round trip (no parameters; values
    /// go in as [`literal`]s); the first column of the last row returned.
    pub(super) fn simple(
        &mut self,
        sql: &str,
    ) -> std::result::Result<Option<String>, postgres::Error> {
        let mut last = None;
        for message in self.client.simple_query(sql)? {
            if let SimpleQueryMessage::Row(row) = message {
                last = row.get(0).map(str::to_string);
            }
        }
        Ok(last)
    }

    /// The client itself (a transaction, a batch).
    pub(super) fn client(&mut self) -> &mut postgres::Client {
        self.client
    }
}

/// `text` as an SQL string literal. Sessions run with
/// `standard_conforming_strings = on` (see [`Connection::start`]), where a
/// quote doubled is the only escape; PostgreSQL text holds no NUL (the
/// caller refuses it).
pub(super) fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        if c == '\'' {
            out.push('\'');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// The handle the store keeps. Calls run on the caller's thread (the
/// store's writer lock serializes them); inside a tokio runtime, where the
/// sync client's own runtime would panic, on a thread of their own.
pub(super) struct Connection {
    link: Mutex<Option<Link>>,
    target: PathBuf,
    timeout: Duration,
}

/// Whether the calling thread is inside a tokio runtime.
fn in_runtime() -> bool {
    tokio::runtime::Handle::try_current().is_ok()
}

impl Connection {
    /// Prepares the connection to the server at `url` (not connected yet).
    /// `options` are the session's settings (`-c name=value ...`).
    pub(super) fn start(
        url: &str,
        target: PathBuf,
        timeout: Duration,
        options: &str,
    ) -> Result<Connection> {
        let (url, root) = split_root_cert(url);
        let mut config = postgres::Config::from_str(&url).map_err(|e| Error::Remote {
            path: target.clone(),
            op: "connect to",
            message: format!("not a PostgreSQL URL: {e}"),
        })?;
        let transport = Transport::for_config(&config, root).map_err(|message| Error::Remote {
            path: target.clone(),
            op: "connect to",
            message,
        })?;
        config
            .connect_timeout(timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .options(options)
            .application_name("persisted-state");
        Ok(Connection {
            link: Mutex::new(Some(Link {
                config,
                transport,
                client: None,
                statements: HashMap::new(),
            })),
            target,
            timeout,
        })
    }

    /// Runs `f` with the link, on this thread or, inside a tokio runtime,
    /// on a scoped thread (measured: the thread hop of an I/O thread per
    /// call cost about a fifth of a `Sync` commit).
    fn run<R: Send>(&self, f: impl FnOnce(&mut Link) -> R + Send) -> Result<R> {
        let mut guard = self.link.lock();
        let Some(link) = guard.as_mut() else {
            return Err(self.error("reach", "the connection is closed"));
        };
        if !in_runtime() {
            return Ok(f(link));
        }
        std::thread::scope(|scope| scope.spawn(|| f(link)).join())
            .map_err(|_| self.error("reach", "the connection's call panicked"))
    }

    /// Runs `f` with a connected client, connecting again (within the
    /// timeout) when the connection is lost or cannot be made. `f` must be
    /// safe to run again: a commit is not (see `commit.rs`).
    pub(super) fn with_retry<R: Send>(
        &self,
        op: &'static str,
        f: impl Fn(&mut Session<'_>) -> std::result::Result<R, postgres::Error> + Send,
    ) -> Result<R> {
        let timeout = self.timeout;
        let outcome = self.run(move |link| {
            let start = Instant::now();
            let mut pause = Duration::from_millis(5);
            loop {
                let result = link.session().and_then(|mut session| f(&mut session));
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
    pub(super) fn once<R: Send>(
        &self,
        f: impl FnOnce(&mut Session<'_>) -> std::result::Result<R, postgres::Error> + Send,
    ) -> Result<std::result::Result<R, postgres::Error>> {
        self.run(move |link| {
            let result = link.session().and_then(|mut session| f(&mut session));
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
            None => describe(e),
        };
        self.error(op, message)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // The client shuts its own runtime down when dropped, which
        // panics inside another runtime: there it goes on a thread.
        if let Some(link) = self.link.get_mut().take() {
            if in_runtime() {
                let _ = std::thread::spawn(move || drop(link)).join();
            }
        }
    }
}

/// A client error with its causes: the client's own text is its kind
/// ("error connecting to server"); the cause (refused, timed out, a
/// certificate that does not verify) is its source.
pub(super) fn describe(e: &postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
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
