//! Collection fields (`Vec`, `VecDeque`, `BTreeMap`, `HashMap`, `BTreeSet`,
//! `HashSet`) and the operations the journal records for them, so that a
//! `push` costs the size of the element, not of the whole `Vec`.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::hash::{BuildHasher, Hash};

use serde::de::{DeserializeOwned, Deserializer};
use serde::Deserialize;

/// A change a journal record holds for one field. `Set` replaces the whole
/// value; the others are collection operations. The word is what the
/// record's key starts with (`"push processed"`).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Replace the field; argument: the new value.
    Set,
    /// Append to a sequence; argument: the element.
    Push,
    /// Append many to a sequence; argument: a sequence of elements.
    Extend,
    /// Remove a sequence's last element; argument: unit.
    Pop,
    /// Prepend to a `VecDeque`; argument: the element.
    PushFront,
    /// Remove a `VecDeque`'s first element; argument: unit.
    PopFront,
    /// Empty a sequence; argument: unit.
    Clear,
    /// Insert into a map (argument: `[key, value]`) or a set (argument: the element).
    Insert,
    /// Remove from a map (argument: the key) or a set (argument: the element).
    Remove,
}

impl Op {
    const ALL: [Op; 9] = [
        Op::Set,
        Op::Push,
        Op::Extend,
        Op::Pop,
        Op::PushFront,
        Op::PopFront,
        Op::Clear,
        Op::Insert,
        Op::Remove,
    ];

    /// The word used in journal records.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Set => "set",
            Op::Push => "push",
            Op::Extend => "extend",
            Op::Pop => "pop",
            Op::PushFront => "push_front",
            Op::PopFront => "pop_front",
            Op::Clear => "clear",
            Op::Insert => "insert",
            Op::Remove => "remove",
        }
    }

    pub(crate) fn parse(word: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.as_str() == word)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Replays a journaled operation on a collection field.
#[doc(hidden)]
pub trait Collection {
    /// Applies `op`, its argument read from `deserializer`.
    fn apply_op<'de, D: Deserializer<'de>>(
        &mut self,
        op: Op,
        deserializer: D,
    ) -> Result<(), D::Error>;
}

/// A sequence field: `push_`, `extend_`, `pop_`, `clear_`.
#[doc(hidden)]
pub trait SeqField: Collection + Default {
    /// The element type.
    type Elem: serde::Serialize + Clone + Send + Sync + 'static;
    fn push(&mut self, value: Self::Elem);
    fn pop(&mut self) -> Option<Self::Elem>;
    fn clear(&mut self);
    fn is_empty(&self) -> bool;
    /// The element `pop` would remove.
    fn last(&self) -> Option<&Self::Elem>;
}

/// A double-ended queue field: `push_front_`, `pop_front_` too.
#[doc(hidden)]
pub trait DequeField: SeqField {
    fn push_front(&mut self, value: Self::Elem);
    fn pop_front(&mut self) -> Option<Self::Elem>;
    /// The element `pop_front` would remove.
    fn first(&self) -> Option<&Self::Elem>;
}

/// A map field: `insert_`, `remove_`.
#[doc(hidden)]
pub trait MapField: Collection {
    type Key: serde::Serialize + Clone + Send + Sync + 'static;
    type Value: serde::Serialize + Clone + Send + Sync + 'static;
    fn insert(&mut self, key: Self::Key, value: Self::Value) -> Option<Self::Value>;
    fn remove(&mut self, key: &Self::Key) -> Option<Self::Value>;
    fn get(&self, key: &Self::Key) -> Option<&Self::Value>;
}

/// Looks a map's key up by a borrowed form `Q` (`&str` for `String` keys),
/// with the bounds the map's own `remove` asks for.
#[doc(hidden)]
pub trait MapLookup<Q: ?Sized>: MapField {
    /// The stored key equal to `key`.
    fn find_key(&self, key: &Q) -> Option<&Self::Key>;
}

/// A set field: `insert_`, `remove_`.
#[doc(hidden)]
pub trait SetField: Collection {
    type Elem: serde::Serialize + Clone + Send + Sync + 'static;
    fn insert(&mut self, value: Self::Elem) -> bool;
    fn remove(&mut self, value: &Self::Elem) -> bool;
    fn contains(&self, value: &Self::Elem) -> bool;
}

/// Looks a set's element up by a borrowed form `Q`.
#[doc(hidden)]
pub trait SetLookup<Q: ?Sized>: SetField {
    /// The stored element equal to `value`.
    fn find(&self, value: &Q) -> Option<&Self::Elem>;
}

fn wrong_op<E: serde::de::Error>(op: Op, kind: &str) -> E {
    E::custom(format_args!("operation `{op}` does not apply to a {kind}"))
}

macro_rules! sequence {
    ($ty:ident, $push:ident, $pop:ident, $kind:literal $(, $front:ident)?) => {
        impl<E> Collection for $ty<E>
        where
            E: DeserializeOwned,
        {
            fn apply_op<'de, D: Deserializer<'de>>(
                &mut self,
                op: Op,
                deserializer: D,
            ) -> Result<(), D::Error> {
                match op {
                    Op::Push => self.$push(E::deserialize(deserializer)?),
                    Op::Extend => self.extend(Vec::<E>::deserialize(deserializer)?),
                    Op::Pop => {
                        <()>::deserialize(deserializer)?;
                        self.$pop();
                    }
                    Op::Clear => {
                        <()>::deserialize(deserializer)?;
                        self.clear();
                    }
                    $(
                        Op::PushFront => self.$front(E::deserialize(deserializer)?),
                        Op::PopFront => {
                            <()>::deserialize(deserializer)?;
                            self.pop_front();
                        }
                    )?
                    other => return Err(wrong_op(other, $kind)),
                }
                Ok(())
            }
        }

        impl<E> SeqField for $ty<E>
        where
            E: serde::Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        {
            type Elem = E;
            fn push(&mut self, value: E) {
                self.$push(value)
            }
            fn pop(&mut self) -> Option<E> {
                self.$pop()
            }
            fn clear(&mut self) {
                $ty::clear(self)
            }
            fn is_empty(&self) -> bool {
                $ty::is_empty(self)
            }
            fn last(&self) -> Option<&E> {
                self.iter().next_back()
            }
        }
    };
}

sequence!(Vec, push, pop, "Vec");
sequence!(VecDeque, push_back, pop_back, "VecDeque", push_front);

impl<E> DequeField for VecDeque<E>
where
    E: serde::Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    fn push_front(&mut self, value: E) {
        VecDeque::push_front(self, value)
    }
    fn pop_front(&mut self) -> Option<E> {
        VecDeque::pop_front(self)
    }
    fn first(&self) -> Option<&E> {
        self.front()
    }
}

macro_rules! map {
    ($ty:ident, [$($bound:tt)*], [$($s:ident)?]) => {
        impl<K, V $(, $s)?> Collection for $ty<K, V $(, $s)?>
        where
            K: DeserializeOwned + $($bound)*,
            V: DeserializeOwned,
            $($s: BuildHasher,)?
        {
            fn apply_op<'de, D: Deserializer<'de>>(
                &mut self,
                op: Op,
                deserializer: D,
            ) -> Result<(), D::Error> {
                match op {
                    Op::Insert => {
                        let (key, value) = <(K, V)>::deserialize(deserializer)?;
                        self.insert(key, value);
                    }
                    Op::Remove => {
                        let key = K::deserialize(deserializer)?;
                        self.remove(&key);
                    }
                    other => return Err(wrong_op(other, "map")),
                }
                Ok(())
            }
        }

        impl<K, V $(, $s)?> MapField for $ty<K, V $(, $s)?>
        where
            K: serde::Serialize + DeserializeOwned + Clone + Send + Sync + 'static + $($bound)*,
            V: serde::Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
            $($s: BuildHasher,)?
        {
            type Key = K;
            type Value = V;
            fn insert(&mut self, key: K, value: V) -> Option<V> {
                $ty::insert(self, key, value)
            }
            fn remove(&mut self, key: &K) -> Option<V> {
                $ty::remove(self, key)
            }
            fn get(&self, key: &K) -> Option<&V> {
                $ty::get(self, key)
            }
        }

        impl<K, V, Q $(, $s)?> MapLookup<Q> for $ty<K, V $(, $s)?>
        where
            K: serde::Serialize + DeserializeOwned + Clone + Send + Sync + 'static + $($bound)*,
            K: Borrow<Q>,
            Q: ?Sized + $($bound)*,
            V: serde::Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
            $($s: BuildHasher,)?
        {
            fn find_key(&self, key: &Q) -> Option<&K> {
                self.get_key_value(key).map(|(k, _)| k)
            }
        }
    };
}

map!(BTreeMap, [Ord], []);
map!(HashMap, [Eq + Hash], [S]);

macro_rules! set {
    ($ty:ident, [$($bound:tt)*], [$($s:ident)?]) => {
        impl<E $(, $s)?> Collection for $ty<E $(, $s)?>
        where
            E: DeserializeOwned + $($bound)*,
            $($s: BuildHasher,)?
        {
            fn apply_op<'de, D: Deserializer<'de>>(
                &mut self,
                op: Op,
                deserializer: D,
            ) -> Result<(), D::Error> {
                match op {
                    Op::Insert => {
                        self.insert(E::deserialize(deserializer)?);
                    }
                    Op::Remove => {
                        self.remove(&E::deserialize(deserializer)?);
                    }
                    other => return Err(wrong_op(other, "set")),
                }
                Ok(())
            }
        }

        impl<E $(, $s)?> SetField for $ty<E $(, $s)?>
        where
            E: serde::Serialize + DeserializeOwned + Clone + Send + Sync + 'static + $($bound)*,
            $($s: BuildHasher,)?
        {
            type Elem = E;
            fn insert(&mut self, value: E) -> bool {
                $ty::insert(self, value)
            }
            fn remove(&mut self, value: &E) -> bool {
                $ty::remove(self, value)
            }
            fn contains(&self, value: &E) -> bool {
                $ty::contains(self, value)
            }
        }

        impl<E, Q $(, $s)?> SetLookup<Q> for $ty<E $(, $s)?>
        where
            E: serde::Serialize + DeserializeOwned + Clone + Send + Sync + 'static + $($bound)*,
            E: Borrow<Q>,
            Q: ?Sized + $($bound)*,
            $($s: BuildHasher,)?
        {
            fn find(&self, value: &Q) -> Option<&E> {
                self.get(value)
            }
        }
    };
}

set!(BTreeSet, [Ord], []);
set!(HashSet, [Eq + Hash], [S]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_word_parses_back() {
        for op in Op::ALL {
            assert_eq!(Op::parse(op.as_str()), Some(op));
        }
        assert_eq!(Op::parse("frobnicate"), None);
    }
}
