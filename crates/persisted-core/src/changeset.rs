//! The changes a batch or a transaction has made since it began, kept so
//! that one record can hold them all at the cost of the change: each
//! collection operation with its argument, and, for a field replaced
//! whole, just the field's index (its value is read from the state when
//! the record is written).

use crate::change::{Changes, FieldOf};
use crate::collection::Op;
use crate::schema::Persisted;

/// The argument of a recorded operation.
pub(crate) type Arg = Box<dyn erased_serde::Serialize + Send + Sync>;

struct Entry {
    op: Op,
    index: usize,
    /// `None`: the whole field, as the state holds it when encoded.
    arg: Option<Arg>,
}

/// Changes in the order they were made. A field replaced whole is recorded
/// once, as its final value: operations on it before or after add nothing.
#[derive(Default)]
pub(crate) struct ChangeSet {
    entries: Vec<Entry>,
    /// The fields recorded whole, sorted.
    whole: Vec<usize>,
}

impl ChangeSet {
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many changes a record of this set holds.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The names of the fields the changes touch, each once, in the order
    /// first touched.
    pub(crate) fn field_names(&self, fields: &[crate::schema::FieldSpec]) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for entry in &self.entries {
            let name = fields.get(entry.index).map_or("?", |f| f.name);
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
        names
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.whole.clear();
    }

    /// Records operation `op` on field `index`.
    pub(crate) fn op(&mut self, op: Op, index: usize, arg: Arg) {
        if self.whole.binary_search(&index).is_err() {
            self.entries.push(Entry {
                op,
                index,
                arg: Some(arg),
            });
        }
    }

    /// Records field `index` as replaced whole.
    pub(crate) fn whole(&mut self, index: usize) {
        if let Err(at) = self.whole.binary_search(&index) {
            self.whole.insert(at, index);
            self.entries.retain(|e| e.index != index);
            self.entries.push(Entry {
                op: Op::Set,
                index,
                arg: None,
            });
        }
    }

    /// Moves every change of `later` after this set's.
    pub(crate) fn append(&mut self, later: ChangeSet) {
        for entry in later.entries {
            match entry.arg {
                Some(arg) => self.op(entry.op, entry.index, arg),
                None => self.whole(entry.index),
            }
        }
    }

    /// The set's changes, whole fields read from `state`.
    pub(crate) fn changes<'a, T: Persisted>(&'a self, state: &'a T) -> Recorded<'a, T> {
        Recorded { set: self, state }
    }
}

/// A [`ChangeSet`] with the state its whole fields are read from.
pub(crate) struct Recorded<'a, T> {
    set: &'a ChangeSet,
    state: &'a T,
}

impl<T: Persisted> Changes for Recorded<'_, T> {
    fn len(&self) -> usize {
        self.set.len()
    }

    fn each(&self, emit: &mut dyn FnMut(Op, usize, &dyn erased_serde::Serialize)) {
        for entry in &self.set.entries {
            match &entry.arg {
                Some(arg) => emit(entry.op, entry.index, &**arg),
                None => emit(Op::Set, entry.index, &FieldOf(self.state, entry.index)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(set: &ChangeSet) -> Vec<(Op, usize, bool)> {
        set.entries
            .iter()
            .map(|e| (e.op, e.index, e.arg.is_some()))
            .collect()
    }

    #[test]
    fn a_field_recorded_whole_drops_its_operations_before_and_after() {
        let mut set = ChangeSet::default();
        set.op(Op::Push, 1, Box::new(1));
        set.op(Op::Push, 2, Box::new(2));
        set.whole(1);
        set.op(Op::Push, 1, Box::new(3));
        set.whole(1);
        set.op(Op::Pop, 2, Box::new(()));
        assert_eq!(
            ops(&set),
            [(Op::Push, 2, true), (Op::Set, 1, false), (Op::Pop, 2, true)]
        );
    }

    #[test]
    fn append_keeps_the_whole_field_rule() {
        let mut first = ChangeSet::default();
        first.whole(0);
        let mut later = ChangeSet::default();
        later.op(Op::Push, 0, Box::new(1));
        later.op(Op::Push, 1, Box::new(1));
        later.whole(1);
        first.append(later);
        assert_eq!(ops(&first), [(Op::Set, 0, false), (Op::Set, 1, false)]);
    }
}
