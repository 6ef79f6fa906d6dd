//! The changes a write makes, as values: each knows the journal changes it
//! records ([`Changes`]), how to apply itself to a state, and how to take
//! itself back (its undo, for a group commit whose fsync fails after the
//! change was applied). Applied with a [`ChangeSet`], a mutation also
//! records itself there (a batch, a transaction's working copy).

use std::marker::PhantomData;

use serde::ser::{Serialize, Serializer};

use crate::change::{Changes, FieldOf};
use crate::changeset::ChangeSet;
use crate::collection::{DequeField, MapField, Op, SeqField, SetField};
use crate::schema::{Field, Persisted};

/// Restores the state a mutation changed, given the state right after it.
pub(crate) type Undo<T> = Box<dyn FnOnce(&mut T) + Send>;

/// A change to the state that can be recorded, then applied.
pub(crate) trait Mutation<T>: Changes {
    type Output;
    /// Applies the change; returns its result and its undo. With `record`,
    /// also adds the change to that set.
    fn apply(self, state: &mut T, record: Option<&mut ChangeSet>) -> (Self::Output, Undo<T>);
}

/// `set_<field>(value)`.
pub(crate) struct SetValue<T, F: Field<T>>(pub(crate) F::Value, pub(crate) PhantomData<T>);

impl<T, F: Field<T>> Serialize for SetValue<T, F> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        F::serialize(&self.0, serializer)
    }
}

impl<T, F: Field<T>> Changes for SetValue<T, F> {
    fn len(&self) -> usize {
        1
    }
    fn each(&self, emit: &mut dyn FnMut(Op, usize, &dyn erased_serde::Serialize)) {
        emit(Op::Set, F::INDEX, self)
    }
}

impl<T, F: Field<T>> Mutation<T> for SetValue<T, F> {
    type Output = ();
    fn apply(self, state: &mut T, record: Option<&mut ChangeSet>) -> ((), Undo<T>) {
        if let Some(set) = record {
            set.whole(F::INDEX);
        }
        let old = std::mem::replace(F::get_mut(state), self.0);
        ((), Box::new(move |state| *F::get_mut(state) = old))
    }
}

/// A collection operation on field `F` with argument `A`, applied by `run`,
/// which returns the operation's result and its undo.
pub(crate) struct CollectionOp<T, F, A, R> {
    op: Op,
    arg: A,
    run: fn(&mut T, A) -> (R, Undo<T>),
    field: PhantomData<fn() -> F>,
}

impl<T, F: Field<T>, A: Serialize, R> Changes for CollectionOp<T, F, A, R> {
    fn len(&self) -> usize {
        1
    }
    fn each(&self, emit: &mut dyn FnMut(Op, usize, &dyn erased_serde::Serialize)) {
        emit(self.op, F::INDEX, &self.arg)
    }
}

impl<T, F, A, R> Mutation<T> for CollectionOp<T, F, A, R>
where
    F: Field<T>,
    A: Serialize + Clone + Send + Sync + 'static,
{
    type Output = R;
    fn apply(self, state: &mut T, record: Option<&mut ChangeSet>) -> (R, Undo<T>) {
        if let Some(set) = record {
            set.op(self.op, F::INDEX, Box::new(self.arg.clone()));
        }
        (self.run)(state, self.arg)
    }
}

type Elem<T, F> = <<F as Field<T>>::Value as SeqField>::Elem;

pub(crate) fn push<T, F>(value: Elem<T, F>) -> CollectionOp<T, F, Elem<T, F>, ()>
where
    F: Field<T>,
    F::Value: SeqField,
{
    CollectionOp {
        op: Op::Push,
        arg: value,
        run: |state, value| {
            F::get_mut(state).push(value);
            ((), Box::new(|state| drop(F::get_mut(state).pop())))
        },
        field: PhantomData,
    }
}

pub(crate) fn push_front<T, F>(value: Elem<T, F>) -> CollectionOp<T, F, Elem<T, F>, ()>
where
    F: Field<T>,
    F::Value: DequeField,
{
    CollectionOp {
        op: Op::PushFront,
        arg: value,
        run: |state, value| {
            F::get_mut(state).push_front(value);
            ((), Box::new(|state| drop(F::get_mut(state).pop_front())))
        },
        field: PhantomData,
    }
}

pub(crate) fn extend<T, F>(values: Vec<Elem<T, F>>) -> CollectionOp<T, F, Vec<Elem<T, F>>, ()>
where
    F: Field<T>,
    F::Value: SeqField,
{
    CollectionOp {
        op: Op::Extend,
        arg: values,
        run: |state, values| {
            let field = F::get_mut(state);
            let n = values.len();
            for value in values {
                field.push(value);
            }
            let undo: Undo<T> = Box::new(move |state| {
                for _ in 0..n {
                    F::get_mut(state).pop();
                }
            });
            ((), undo)
        },
        field: PhantomData,
    }
}

pub(crate) fn pop<T, F>() -> CollectionOp<T, F, (), Option<Elem<T, F>>>
where
    F: Field<T>,
    F::Value: SeqField,
{
    CollectionOp {
        op: Op::Pop,
        arg: (),
        run: |state, ()| {
            let popped = F::get_mut(state).pop();
            let back = popped.clone();
            let undo: Undo<T> = Box::new(move |state| {
                if let Some(value) = back {
                    F::get_mut(state).push(value);
                }
            });
            (popped, undo)
        },
        field: PhantomData,
    }
}

pub(crate) fn pop_front<T, F>() -> CollectionOp<T, F, (), Option<Elem<T, F>>>
where
    F: Field<T>,
    F::Value: DequeField,
{
    CollectionOp {
        op: Op::PopFront,
        arg: (),
        run: |state, ()| {
            let popped = F::get_mut(state).pop_front();
            let back = popped.clone();
            let undo: Undo<T> = Box::new(move |state| {
                if let Some(value) = back {
                    F::get_mut(state).push_front(value);
                }
            });
            (popped, undo)
        },
        field: PhantomData,
    }
}

pub(crate) fn clear<T, F>() -> CollectionOp<T, F, (), ()>
where
    F: Field<T>,
    F::Value: SeqField,
{
    CollectionOp {
        op: Op::Clear,
        arg: (),
        run: |state, ()| {
            let old = std::mem::take(F::get_mut(state));
            ((), Box::new(move |state| *F::get_mut(state) = old))
        },
        field: PhantomData,
    }
}

type Key<T, F> = <<F as Field<T>>::Value as MapField>::Key;
type MapValue<T, F> = <<F as Field<T>>::Value as MapField>::Value;
/// A map operation with argument `A`, returning the value it displaced.
type KeyValue<T, F> = (Key<T, F>, MapValue<T, F>);
type MapOp<T, F, A> = CollectionOp<T, F, A, Option<MapValue<T, F>>>;

pub(crate) fn map_insert<T, F>(key: Key<T, F>, value: MapValue<T, F>) -> MapOp<T, F, KeyValue<T, F>>
where
    F: Field<T>,
    F::Value: MapField,
{
    CollectionOp {
        op: Op::Insert,
        arg: (key, value),
        run: |state, (key, value)| {
            let undo_key = key.clone();
            let old = F::get_mut(state).insert(key, value);
            let back = old.clone();
            let undo: Undo<T> = Box::new(move |state| match back {
                Some(value) => drop(F::get_mut(state).insert(undo_key, value)),
                None => drop(F::get_mut(state).remove(&undo_key)),
            });
            (old, undo)
        },
        field: PhantomData,
    }
}

/// Removes `key`, the stored key itself (so the record holds the key's
/// own type, whatever form the caller looked it up by).
pub(crate) fn map_remove<T, F>(key: Key<T, F>) -> MapOp<T, F, Key<T, F>>
where
    F: Field<T>,
    F::Value: MapField,
{
    CollectionOp {
        op: Op::Remove,
        arg: key,
        run: |state, key| {
            let old = F::get_mut(state).remove(&key);
            let back = old.clone().map(|value| (key, value));
            let undo: Undo<T> = Box::new(move |state| {
                if let Some((key, value)) = back {
                    F::get_mut(state).insert(key, value);
                }
            });
            (old, undo)
        },
        field: PhantomData,
    }
}

type SetElem<T, F> = <<F as Field<T>>::Value as SetField>::Elem;

pub(crate) fn set_insert<T, F>(value: SetElem<T, F>) -> CollectionOp<T, F, SetElem<T, F>, bool>
where
    F: Field<T>,
    F::Value: SetField,
{
    CollectionOp {
        op: Op::Insert,
        arg: value,
        run: |state, value| {
            let back = value.clone();
            let inserted = F::get_mut(state).insert(value);
            let undo: Undo<T> = Box::new(move |state| {
                if inserted {
                    F::get_mut(state).remove(&back);
                }
            });
            (inserted, undo)
        },
        field: PhantomData,
    }
}

/// Removes the stored element `value`.
pub(crate) fn set_remove<T, F>(value: SetElem<T, F>) -> CollectionOp<T, F, SetElem<T, F>, bool>
where
    F: Field<T>,
    F::Value: SetField,
{
    CollectionOp {
        op: Op::Remove,
        arg: value,
        run: |state, value| {
            let removed = F::get_mut(state).remove(&value);
            let undo: Undo<T> = Box::new(move |state| {
                if removed {
                    F::get_mut(state).insert(value);
                }
            });
            (removed, undo)
        },
        field: PhantomData,
    }
}

/// A whole new state from `update` or a transaction changed through
/// `DerefMut`, recording the fields listed in `changed` whole.
pub(crate) struct Replace<T> {
    pub(crate) next: T,
    pub(crate) changed: Vec<usize>,
}

impl<T: Persisted> Changes for Replace<T> {
    fn len(&self) -> usize {
        self.changed.len()
    }
    fn each(&self, emit: &mut dyn FnMut(Op, usize, &dyn erased_serde::Serialize)) {
        for &index in &self.changed {
            emit(Op::Set, index, &FieldOf(&self.next, index));
        }
    }
}

impl<T: Persisted> Mutation<T> for Replace<T> {
    type Output = ();
    fn apply(self, state: &mut T, record: Option<&mut ChangeSet>) -> ((), Undo<T>) {
        if let Some(set) = record {
            for &index in &self.changed {
                set.whole(index);
            }
        }
        let old = std::mem::replace(state, self.next);
        ((), Box::new(move |state| *state = old))
    }
}

/// A transaction's working copy with the changes that made it from the
/// state: the record holds the changes, memory takes the copy whole.
pub(crate) struct Swap<T> {
    pub(crate) next: T,
    pub(crate) changes: ChangeSet,
}

impl<T: Persisted> Changes for Swap<T> {
    fn len(&self) -> usize {
        self.changes.len()
    }
    fn each(&self, emit: &mut dyn FnMut(Op, usize, &dyn erased_serde::Serialize)) {
        self.changes.changes(&self.next).each(emit)
    }
}

impl<T: Persisted> Mutation<T> for Swap<T> {
    type Output = ();
    fn apply(self, state: &mut T, record: Option<&mut ChangeSet>) -> ((), Undo<T>) {
        if let Some(set) = record {
            set.append(self.changes);
        }
        let old = std::mem::replace(state, self.next);
        ((), Box::new(move |state| *state = old))
    }
}

/// A mutation whose result the caller already knows (read from the state
/// before it): queued like one that returns nothing.
pub(crate) struct Discard<M>(pub(crate) M);

impl<M: Changes> Changes for Discard<M> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn each(&self, emit: &mut dyn FnMut(Op, usize, &dyn erased_serde::Serialize)) {
        self.0.each(emit)
    }
}

impl<T, M: Mutation<T>> Mutation<T> for Discard<M> {
    type Output = ();
    fn apply(self, state: &mut T, record: Option<&mut ChangeSet>) -> ((), Undo<T>) {
        ((), self.0.apply(state, record).1)
    }
}

/// A mutation whose result is `()`, boxed to wait in a transaction until
/// the transaction needs a working copy or commits.
pub(crate) trait Queued<T>: Changes + Send {
    fn apply_boxed(self: Box<Self>, state: &mut T, record: Option<&mut ChangeSet>) -> Undo<T>;
}

impl<T, M: Mutation<T, Output = ()> + Send> Queued<T> for M {
    fn apply_boxed(self: Box<Self>, state: &mut T, record: Option<&mut ChangeSet>) -> Undo<T> {
        (*self).apply(state, record).1
    }
}

/// The queued mutations of a transaction that never needed a working
/// copy, committed as one record and applied to the state in order.
pub(crate) struct QueuedList<T>(pub(crate) Vec<Box<dyn Queued<T>>>);

impl<T> Changes for QueuedList<T> {
    fn len(&self) -> usize {
        self.0.iter().map(|m| m.len()).sum()
    }
    fn each(&self, emit: &mut dyn FnMut(Op, usize, &dyn erased_serde::Serialize)) {
        for m in &self.0 {
            m.each(emit);
        }
    }
}

impl<T: 'static> Mutation<T> for QueuedList<T> {
    type Output = ();
    fn apply(self, state: &mut T, mut record: Option<&mut ChangeSet>) -> ((), Undo<T>) {
        let mut undos: Vec<Undo<T>> = Vec::with_capacity(self.0.len());
        for m in self.0 {
            undos.push(m.apply_boxed(state, record.as_deref_mut()));
        }
        let undo: Undo<T> = Box::new(move |state| {
            for undo in undos.into_iter().rev() {
                undo(state);
            }
        });
        ((), undo)
    }
}
