//! The writer mutex, held together with what the backend took to order a
//! write against other writers (shared mode's writer lock, the Redis
//! lease): released together when the guard drops.

use std::ops::{Deref, DerefMut};

use parking_lot::{Mutex, MutexGuard};

use super::Writer;
use crate::engine::journal::group::GroupSync;

/// The writer mutex, and what the backend's `begin_write` took.
pub(crate) struct WriterGuard<'a, T> {
    guard: MutexGuard<'a, Writer<T>>,
    /// Group commit, where the writer counts as on its way to appending
    /// (`Writer::arrived`) until its record is written or this drops.
    group: Option<&'a GroupSync>,
    /// Another writer of this process held the mutex when this one came:
    /// the write is part of a burst.
    pub(crate) contended: bool,
}

impl<'a, T> WriterGuard<'a, T> {
    /// The writer mutex alone.
    pub(crate) fn new(guard: MutexGuard<'a, Writer<T>>) -> Self {
        WriterGuard {
            guard,
            group: None,
            contended: false,
        }
    }

    /// The writer mutex, taken by a writer that group commit counts as on
    /// its way (so a syncing leader waits for its record) from before it
    /// waits for the mutex.
    pub(crate) fn arriving(mutex: &'a Mutex<Writer<T>>, group: &'a GroupSync) -> Self {
        let counted = group.arrive();
        let (mut guard, contended) = match mutex.try_lock() {
            Some(guard) => (guard, false),
            None => (mutex.lock(), true),
        };
        guard.arrived = counted;
        WriterGuard {
            guard,
            group: Some(group),
            contended,
        }
    }
}

impl<T> Deref for WriterGuard<'_, T> {
    type Target = Writer<T>;
    fn deref(&self) -> &Writer<T> {
        &self.guard
    }
}

impl<T> DerefMut for WriterGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut Writer<T> {
        &mut self.guard
    }
}

impl<T> Drop for WriterGuard<'_, T> {
    fn drop(&mut self) {
        if let (true, Some(group)) = (std::mem::take(&mut self.guard.arrived), self.group) {
            group.depart();
        }
        self.guard.backend.end_write();
        // What this writer's commits and catch-ups changed, to subscribers
        // (stamping it costs O(the fields changed); nobody is waited for).
        let writer = &mut *self.guard;
        writer.notes.absorb(writer.backend.take_notes());
        if !writer.notes.is_empty() {
            writer.notes.seq = writer.backend.seq();
            writer.hub.publish(&writer.notes);
            writer.notes.clear();
        }
    }
}
