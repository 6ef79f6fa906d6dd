//! The connection to the server: one per handle, made again after a
//! failure within the timeout; the scripts, sent by `EVALSHA`; errors that
//! never show a password.

use super::*;

/// `EVALSHA` of `script`, built as one command (a `ScriptInvocation`
/// copies every argument once more); the script is loaded again when the
/// server does not have it (a restart or `SCRIPT FLUSH`).
pub(super) fn evalsha(script: &Script, keys: &[&str]) -> redis::Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(script.get_hash()).arg(keys.len()).arg(keys);
    cmd
}

pub(super) fn run_script(
    conn: &mut Connection,
    script: &Script,
    cmd: &redis::Cmd,
) -> RedisResult<Value> {
    match cmd.query(conn) {
        Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
            script.load(conn)?;
            cmd.query(conn)
        }
        other => other,
    }
}

/// The scripts, hashed once per process (`EVALSHA`, loaded again after a
/// server restart flushed them).
pub(super) fn scripts() -> &'static [Script; 5] {
    static SCRIPTS: std::sync::LazyLock<[Script; 5]> = std::sync::LazyLock::new(|| {
        [
            Script::new(scripts::LOAD),
            Script::new(scripts::COMMIT),
            Script::new(scripts::LOCK),
            Script::new(scripts::RELEASE),
            Script::new(scripts::RENEW),
        ]
    });
    &SCRIPTS
}

impl RedisBackend {
    /// A connection with every timeout set, made when there is none, with
    /// no reply left to read.
    pub(super) fn connection(&mut self) -> std::result::Result<&mut Connection, RedisError> {
        self.raw_connection()?;
        if std::mem::take(&mut self.renewing) {
            if let Err(e) = self.raw_connection()?.recv_response() {
                self.conn = None;
                return Err(e);
            }
        }
        self.raw_connection()
    }

    /// The connection (made when there is none), a renewal's reply perhaps
    /// still unread.
    pub(super) fn raw_connection(&mut self) -> std::result::Result<&mut Connection, RedisError> {
        if self.conn.is_none() {
            self.renewing = false;
            let mut conn = self.client.get_connection_with_timeout(self.timeout)?;
            conn.set_read_timeout(Some(self.timeout))?;
            conn.set_write_timeout(Some(self.timeout))?;
            // Sent without waiting for its reply, the lease renewal cannot
            // load itself when the server lacks it.
            scripts()[4].load(&mut conn)?;
            self.conn = Some(conn);
        }
        match self.conn.as_mut() {
            Some(conn) => Ok(conn),
            None => unreachable!("a connection was just made"),
        }
    }

    /// Runs `f` on the connection; a connection failure drops it and tries
    /// again with a new one until the timeout has passed, and so does a
    /// server still loading its data after a restart (`LOADING`: it ran
    /// nothing). `f` must be safe to repeat (reads; a commit repeats with
    /// the same id and version).
    pub(super) fn with_retry<R>(
        &mut self,
        op: &'static str,
        mut f: impl FnMut(&mut Connection, &[Script; 5]) -> redis::RedisResult<R>,
    ) -> Result<R> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            let result = self.connection().and_then(|conn| f(conn, scripts()));
            match result {
                Ok(value) => return Ok(value),
                Err(e) if is_connection_error(&e) || is_loading(&e) => {
                    if !is_loading(&e) {
                        self.conn = None;
                    }
                    if start.elapsed() + pause >= self.timeout {
                        return Err(self.error(op, redact_error(&e, "")));
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
                Err(e) => return Err(self.error(op, redact_error(&e, ""))),
            }
        }
    }

    /// `Durability::Sync` needs a server that fsyncs its append-only file
    /// before it replies.
    pub(super) fn check_sync(&mut self) -> Result<()> {
        let config: Vec<String> = self.with_retry("check the durability of", |conn, _| {
            redis::cmd("CONFIG").arg("GET").arg("append*").query(conn)
        })?;
        let setting = |name: &str| {
            config
                .chunks(2)
                .find(|pair| pair[0] == name)
                .and_then(|pair| pair.get(1).cloned())
                .unwrap_or_default()
        };
        let (only, fsync) = (setting("appendonly"), setting("appendfsync"));
        if only != "yes" || fsync != "always" {
            return Err(Error::Unsupported {
                path: self.target.clone(),
                reason: format!(
                    "`Durability::Sync` needs the server to fsync every write before it \
                     replies: configure `appendonly yes` and `appendfsync always` (it has \
                     appendonly {only}, appendfsync {fsync}), or open with \
                     `Durability::Flush` (acknowledged by the server)"
                ),
            });
        }
        Ok(())
    }
}

pub(super) fn is_connection_error(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout()
}

/// The server is up but still loading its dataset (after a restart).
pub(super) fn is_loading(e: &RedisError) -> bool {
    e.kind() == ErrorKind::Server(ServerErrorKind::BusyLoading)
}

/// A redis-rs error as text, with `url`'s password (if any) never in it.
pub(super) fn redact_error(e: &RedisError, url: &str) -> String {
    let text = e.to_string();
    let password = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(user, _)| user.split_once(':'))
        .map(|(_, password)| password)
        .filter(|p| !p.is_empty());
    match password {
        Some(password) => text.replace(password, "***"),
        None => text,
    }
}
