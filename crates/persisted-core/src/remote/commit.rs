//! A commit: one script with the version check, the operations, the
//! version bump and the log entry; a lost reply resolved by the commit id.

use super::*;

impl RedisBackend {
    /// The log trimming each commit asks for.
    pub(super) fn trim(&self) -> (&'static str, String) {
        match self.keep {
            KeepHistory::Forever => ("", String::new()),
            KeepHistory::Last(n) => ("MAXLEN", n.max(DEFAULT_LOG).to_string()),
            KeepHistory::For(age) => {
                let cutoff = now_ms().saturating_sub(age.as_millis() as u64);
                ("MINID", cutoff.to_string())
            }
            KeepHistory::None => ("MAXLEN", DEFAULT_LOG.to_string()),
        }
    }

    /// Tries to commit `changes` (made on `state`, at this handle's
    /// version). On [`Outcome::Committed`] the caller applies them to
    /// memory; the version moves on.
    /// `applied`: `state` already holds the changes (a batch); otherwise
    /// it is the state they apply to. `release`: give the lease up with
    /// the commit.
    pub(crate) fn commit<T: Persisted>(
        &mut self,
        fields: &'static [FieldSpec],
        changes: &dyn Changes,
        state: &T,
        applied: bool,
        release: bool,
    ) -> Result<Outcome> {
        let crypt = self.crypt.as_ref();
        let (mut ops, record, kinds) = encode_for(
            crypt,
            &self.target,
            &self.kinds,
            fields,
            changes,
            state,
            applied,
        )?;
        if let (Some(crypt), 0) = (crypt, self.version) {
            // The first commit keeps the envelope with the store.
            ops.push(ServerOp::new("E", "", vec![envelope_text(crypt)]));
        }
        let keys = std::sync::Arc::clone(&self.keys);
        let cid = unique_id();
        let expected = self.version;
        let (trim, trim_arg) = self.trim();
        // A closure's commit asks to keep the lease; the reply says whether
        // it did. Any other commit while this handle keeps it names it (or
        // its own lease would refuse it) and leaves it as it is.
        let kept = self.kept_until.is_some_and(|until| Instant::now() < until);
        let hold = if self.leased && release {
            self.kept_until = None;
            format!("keep:{}", KEEP_LEASE.as_millis())
        } else {
            String::from("0")
        };
        let token = if self.leased || kept {
            self.token.as_str()
        } else {
            ""
        };
        let mut call = evalsha(
            &scripts()[1],
            &[
                &keys.meta,
                &keys.state,
                &keys.log,
                &keys.lease,
                &keys.wake,
                &keys.waiting,
            ],
        );
        let sent = Instant::now();
        call.arg(&self.prefix)
            .arg(expected)
            .arg(&cid)
            .arg(&record)
            .arg(now_ms())
            .arg(token)
            .arg(&hold)
            .arg(trim)
            .arg(&trim_arg)
            .arg(ops.len());
        for op in &ops {
            call.arg(op.code).arg(&op.field).arg(op.args.len());
            for arg in &op.args {
                call.arg(&arg[..]);
            }
        }
        let mut attempt = 0;
        let reply = match self.commit_after_renewal(&call) {
            Some(Ok(reply)) => Ok(reply),
            Some(Err(e)) if !is_connection_error(&e) && !is_loading(&e) => {
                Err(self.error("commit to", redact_error(&e, "")))
            }
            first => {
                if first.is_some() {
                    // Sent, perhaps: resent below with the same id.
                    attempt = 1;
                    self.conn = None;
                }
                self.with_retry("commit to", |conn, scripts| {
                    attempt += 1;
                    run_script(conn, &scripts[1], &call)
                })
            }
        };
        let reply = match reply {
            Ok(reply) => reply,
            // Sent, maybe applied, never answered: memory keeps nothing;
            // the next call catches up with whatever the server has.
            Err(Error::Remote { path, op, message }) if attempt > 0 => {
                return Err(Error::Remote {
                    path,
                    op,
                    message: format!(
                        "{message} (the commit may or may not have been applied: it is not in \
                         memory; the next call catches up with the server)"
                    ),
                })
            }
            Err(e) => return Err(e),
        };
        let Value::Array(parts) = reply else {
            return Err(self.error("commit to", "unexpected reply"));
        };
        if parts.first().and_then(as_u64) != Some(1) {
            // Refused: a lease this handle kept is gone (or soon will be).
            self.kept_until = None;
        }
        match parts.first().and_then(as_u64) {
            Some(1) => {
                self.version = parts.get(1).and_then(as_u64).unwrap_or(expected + 1);
                self.last_id = parts.get(2).and_then(as_string).unwrap_or_default();
                self.kinds = kinds;
                if release {
                    self.leased = false;
                }
                if parts.get(3).and_then(as_u64) == Some(1) {
                    self.kept_until = Some(sent + KEEP_LEASE / 2);
                }
                Ok(Outcome::Committed)
            }
            Some(0) if attempt > 1 => {
                // Sent more than once: the first may have been applied
                // before its reply was lost. The log says.
                if let Some((v, id)) = self.find_commit(&cid)? {
                    self.version = v;
                    self.last_id = id;
                    self.kinds = kinds;
                    if release {
                        self.release();
                    }
                    return Ok(Outcome::Committed);
                }
                Ok(Outcome::Behind)
            }
            Some(0) => Ok(Outcome::Behind),
            Some(3) => {
                let field = parts.get(1).and_then(as_string).unwrap_or_default();
                let found = parts.get(2).and_then(as_string).unwrap_or_default();
                Err(self.error(
                    "commit to",
                    format!(
                        "key `{}` holds a {found}, not what field `{field}` needs (changed \
                         outside this library?); nothing was written",
                        self.key(&format!("c:{field}"))
                    ),
                ))
            }
            _ => Ok(Outcome::Leased),
        }
    }

    /// While a renewal of the lease is in flight: sends the commit behind
    /// it, reads the renewal's reply (what it says, the commit's fence
    /// decides again), then the commit's. `None` when no renewal waits.
    pub(super) fn commit_after_renewal(&mut self, call: &redis::Cmd) -> Option<RedisResult<Value>> {
        if !std::mem::take(&mut self.renewing) {
            return None;
        }
        let conn = self.conn.as_mut()?;
        let no_script = |e: &RedisError| e.kind() == ErrorKind::Server(ServerErrorKind::NoScript);
        let mut renewed = Ok(Value::Nil);
        let result = (|| {
            conn.send_packed_command(&call.get_packed_command())?;
            renewed = conn.recv_response()?.extract_error();
            conn.recv_response()?.extract_error()
        })();
        let result = match result {
            Err(e) if no_script(&e) => run_script(conn, &scripts()[1], call),
            other => other,
        };
        // The server lost the renewal script (a restart): load it for next
        // time.
        if renewed.as_ref().is_err_and(no_script) {
            if let Err(e) = scripts()[4].load(conn) {
                log::debug!("load the lease renewal script: {}", redact_error(&e, ""));
            }
        }
        Some(result)
    }

    /// The log entry of commit `cid` after this handle's version, if any.
    pub(super) fn find_commit(&mut self, cid: &str) -> Result<Option<(u64, String)>> {
        let from = format!("({}", self.last_id);
        for entry in self.log_from("resolve a commit with", &from)? {
            if entry.cid == cid {
                // Only the entries before ours are missing from memory,
                // and the caller applies ours: the ones before it mean
                // another commit came first, which a CAS would have
                // refused; so ours is the next one.
                if entry.v == self.version + 1 {
                    return Ok(Some((entry.v, entry.id)));
                }
                return Err(self.error(
                    "resolve a commit with",
                    format!(
                        "commit {cid} was applied at an unexpected version {}",
                        entry.v
                    ),
                ));
            }
        }
        Ok(None)
    }
}
