//! The waiting half of group commit (`engine::journal::group`): a
//! `Durability::Sync` commit whose record is written waits, without the
//! writer lock, until a sync covers it; a failed sync takes back every
//! commit it did not cover. And what replaced files mean for the commits
//! still waiting.

use std::io;

use super::{Store, Writer};
use crate::engine::backend::Replaced;
use crate::engine::Failure;
use crate::error::{IoContext, Result};
use crate::schema::Persisted;

impl<T: Persisted> Store<T> {
    /// Waits until the record ending at `pos` is durable (group commit).
    pub(super) fn wait_durable(&self, pos: u64) -> Result<()> {
        let path = &self.inner.path;
        self.inner
            .group
            .wait_durable(pos, |error| {
                let mut writer = self.inner.writer.lock();
                if !writer.poisoned {
                    writer.poisoned = true;
                    log::error!(
                        "store poisoned until reopened: the sync of `{}`'s journal failed: \
                         {error}",
                        path.display()
                    );
                }
                self.undo_pending(&mut writer, error);
            })
            .context("fdatasync the journal of", path)
    }

    /// Takes back every commit not known durable, newest first, and makes
    /// their writers' calls fail.
    fn undo_pending(&self, writer: &mut Writer<T>, error: &io::Error) {
        let synced = self.inner.group.synced();
        let mut state = self.inner.state.write();
        while let Some((pos, undo)) = writer.pending.pop_back() {
            if pos > synced {
                undo(&mut state);
            }
        }
        drop(state);
        self.inner.group.fail(error);
    }

    /// After an operation that may replace the files (a compaction, an
    /// adopted hand edit): when it did, every earlier commit is durable in
    /// the new files (or in the journal kept aside) and group commit syncs
    /// the new journal. On failure, latches the poison flag if disk and
    /// memory may disagree, and takes back what is not durable.
    pub(super) fn files_replaced(
        &self,
        writer: &mut Writer<T>,
        result: std::result::Result<Replaced, Failure>,
    ) -> Result<()> {
        match result {
            Ok(false) => Ok(()),
            Ok(true) => {
                writer.pending.clear();
                self.inner.group.all_synced();
                if !writer.backend.caps().group_commit {
                    return Ok(());
                }
                match writer.backend.sync_handle() {
                    Ok(Some(handle)) => {
                        self.inner.group.set_handle(handle);
                        Ok(())
                    }
                    Ok(None) => Ok(()),
                    Err(e) => {
                        writer.poisoned = true;
                        Err(e)
                    }
                }
            }
            Err(failure) => {
                let poison = failure.poison;
                let error = writer.fail(failure);
                if poison {
                    self.undo_pending(writer, &io::Error::other(error.to_string()));
                }
                Err(error)
            }
        }
    }
}
