//! The lease `{P}:lease` a closure runs on: taken (waiting on `{P}:wake`
//! for a holder's release), kept between a handle's updates, given up.

use super::*;

impl RedisBackend {
    /// Takes the lease (waiting at most the lock timeout) and catches up:
    /// what `update`, `transaction` and `begin` run on.
    pub(crate) fn lock<T: Persisted>(&mut self, state: &RwLock<T>) -> Result<()> {
        let keys = std::sync::Arc::clone(&self.keys);
        // Kept since this handle's last commit (and for at least half its
        // life more): nobody else can have committed, so memory is
        // current. Renew it without waiting for the reply; should it have
        // run out after all, the commit, fenced by lease and version,
        // applies nothing.
        if self
            .kept_until
            .take()
            .is_some_and(|until| Instant::now() < until)
        {
            let mut renew = evalsha(&scripts()[4], &[&self.keys.lease]);
            renew
                .arg(&self.token)
                .arg(self.lease_ttl.as_millis() as u64);
            let renew = renew.get_packed_command();
            let sent = self
                .connection()
                .and_then(|conn| conn.send_packed_command(&renew));
            if sent.is_ok() {
                self.renewing = true;
                self.leased = true;
                return Ok(());
            }
            self.conn = None;
        }
        let start = Instant::now();
        loop {
            let call = self.lock_call();
            let reply: Value = self.with_retry("take the lease of", |conn, scripts| {
                run_script(conn, &scripts[2], &call)
            })?;
            let Value::Array(parts) = reply else {
                return Err(self.error("take the lease of", "unexpected reply"));
            };
            if parts.first().and_then(as_u64) == Some(1) {
                self.leased = true;
                let v = parts.get(1).and_then(as_u64).unwrap_or(0);
                if v != self.version {
                    let entries = parts.get(2).map(log_entries).unwrap_or_default();
                    let applied = self.apply_entries(state, &entries)?;
                    if !applied || self.version != v {
                        self.follow(state, v)?;
                    }
                }
                return Ok(());
            }
            let waited = start.elapsed();
            if waited >= self.lock_timeout {
                return Err(Error::LockTimeout {
                    path: self.target.clone(),
                    waited,
                });
            }
            // Block until the holder's release wakes us (or the lease can
            // have expired, or a short while has passed).
            let ttl = parts.get(1).and_then(as_u64).unwrap_or(0);
            let wait = Duration::from_millis(ttl.max(1))
                .min(self.lock_timeout - waited)
                .min(self.timeout / 2)
                .min(Duration::from_millis(100));
            self.with_retry("wait for the lease of", |conn, _| {
                redis::cmd("BLPOP")
                    .arg(&keys.wake)
                    .arg(wait.as_secs_f64())
                    .query::<Value>(conn)
            })?;
        }
    }

    /// The lease script's call: take or renew the lease, and the commits
    /// after this handle's version.
    pub(super) fn lock_call(&self) -> redis::Cmd {
        let keys = &self.keys;
        let mut call = evalsha(
            &scripts()[2],
            &[&keys.meta, &keys.log, &keys.lease, &keys.waiting],
        );
        call.arg(&self.token)
            .arg(self.lease_ttl.as_millis() as u64)
            .arg(&self.last_id)
            .arg(self.version)
            .arg(WAITING_MS);
        call
    }

    /// The release script's call: give this handle's lease up and wake a
    /// waiter.
    pub(super) fn release_call(&self) -> redis::Cmd {
        let mut call = evalsha(&scripts()[3], &[&self.keys.lease, &self.keys.wake]);
        call.arg(&self.token);
        call
    }

    /// Gives the lease up (a failure is left to its TTL).
    pub(crate) fn release(&mut self) {
        if !std::mem::take(&mut self.leased) {
            return;
        }
        self.kept_until = None;
        let call = self.release_call();
        let released: Result<Value> = self.with_retry("release the lease of", |conn, scripts| {
            run_script(conn, &scripts[3], &call)
        });
        if let Err(e) = released {
            log::warn!("{e} (the lease expires by itself)");
        }
    }
}
