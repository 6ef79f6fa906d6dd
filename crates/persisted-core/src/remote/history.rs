//! History: the log is the history (`history`, `state_at`, `state_as_of`).

use super::*;

impl RedisBackend {
    /// The log as history: every entry kept, oldest first, each record as
    /// the server keeps it.
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
        replay_log(&self.target, &self.codec, self.crypt.as_ref(), &log, seq)
    }

    /// The state right after the last commit made at or before `time`.
    pub(crate) fn state_as_of<T: Persisted>(&mut self, time: SystemTime) -> Result<T> {
        let log = self.history()?;
        replay_log_as_of(&self.target, &self.codec, self.crypt.as_ref(), &log, time)
    }
}
