//! History: the log is the history (`history`, `state_at`, `state_as_of`).

use super::*;

impl RedisBackend {
    /// The log as history: every entry kept, oldest first.
    pub(crate) fn history(&mut self) -> Result<Vec<(Commit, String)>> {
        let mut out = Vec::new();
        let mut from = "-".to_string();
        loop {
            let entries = self.log_from("read the log of", &from)?;
            let Some(last) = entries.last() else {
                break;
            };
            from = format!("({}", last.id);
            for entry in entries {
                let fields = record_fields(&entry.rec);
                out.push((Commit::new(entry.v, entry.ts, fields), entry.rec));
            }
        }
        Ok(out)
    }

    /// The state right after commit (version) `seq`, replayed from the
    /// store's first commit, which sets every field.
    pub(crate) fn state_at<T: Persisted>(&mut self, seq: u64) -> Result<T> {
        let log = self.history()?;
        self.replay_log(&log, seq)
    }

    /// The state right after the last commit made at or before `time`.
    pub(crate) fn state_as_of<T: Persisted>(&mut self, time: SystemTime) -> Result<T> {
        let log = self.history()?;
        let seq = log
            .iter()
            .take_while(|(c, _)| c.time <= time)
            .last()
            .map(|(c, _)| c.seq)
            .ok_or_else(|| {
                let ms = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
                Error::NotInHistory {
                    path: self.target.clone(),
                    reason: format!(
                        "no kept commit was made at or before {ms} ms after the Unix epoch"
                    ),
                }
            })?;
        self.replay_log(&log, seq)
    }

    /// Replays `log` (from [`history`](Self::history)) up to commit `seq`.
    pub(super) fn replay_log<T: Persisted>(&self, log: &[(Commit, String)], seq: u64) -> Result<T> {
        let first = log.first().map(|(c, _)| c.seq);
        if first != Some(1) || !log.iter().any(|(c, _)| c.seq == seq) {
            let holds = match (log.first(), log.last()) {
                (Some((a, _)), Some((b, _))) => format!("commits {} to {}", a.seq, b.seq),
                _ => "no commit".into(),
            };
            let why = if first.is_some_and(|f| f != 1) {
                "the log no longer reaches back to the store's creation (keep more with \
                 `keep_history`)"
            } else {
                "it is not a kept commit"
            };
            return Err(Error::NotInHistory {
                path: self.target.clone(),
                reason: format!("commit {seq}: {why}; the log holds {holds}"),
            });
        }
        let mut state = T::default();
        for (commit, rec) in log.iter().take_while(|(c, _)| c.seq <= seq) {
            self.codec
                .replay_payload(rec.as_bytes(), &mut state)
                .map_err(|e| Error::Parse {
                    path: self.target.clone(),
                    line: 0,
                    column: e.column,
                    message: format!("log entry of version {}: {}", commit.seq, e.message),
                })?;
        }
        Ok(state)
    }
}
