//! The `Persisted` trait that `#[derive(Persisted)]` implements: a table of
//! the struct's fields and the code to encode, decode and compare one field,
//! so a commit can record only the fields it changed.

use std::path::Path;

use serde::de::{DeserializeOwned, Deserializer};
use serde::ser::{Serialize, Serializer};

use crate::collection::Op;
use crate::error::Result;
use crate::store::Store;

/// A struct that can live in a [`Store`].
///
/// Implement it with `#[derive(Persisted)]`; the items whose names start with
/// `__` are the derive's business and not part of the stable API.
///
/// # Examples
///
/// ```
/// use persisted_state::{Persisted, Store};
///
/// #[derive(Persisted, serde::Serialize, serde::Deserialize, Default, Clone)]
/// struct Settings {
///     theme: String,
/// }
///
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("settings.json");
/// let store: Store<Settings> = Settings::open(&path)?;
/// store.set_theme("dark".into())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Persisted:
    Serialize + DeserializeOwned + Default + Clone + Send + Sync + 'static
{
    /// The persisted fields in declaration order; a field's position in this
    /// table is its index in the other methods.
    #[doc(hidden)]
    const __FIELDS: &'static [FieldSpec];

    /// Serializes field `index` of `self` as the value it has in a snapshot.
    #[doc(hidden)]
    fn __serialize_field<S: Serializer>(
        &self,
        index: usize,
        serializer: S,
    ) -> Result<S::Ok, S::Error>;

    /// Replaces field `index` of `self` with a value read from `deserializer`.
    #[doc(hidden)]
    fn __deserialize_field<'de, D: Deserializer<'de>>(
        &mut self,
        index: usize,
        deserializer: D,
    ) -> Result<(), D::Error>;

    /// Applies collection operation `op`, its argument read from
    /// `deserializer`, to field `index` (replay of a journaled operation).
    #[doc(hidden)]
    fn __apply_op<'de, D: Deserializer<'de>>(
        &mut self,
        index: usize,
        op: Op,
        deserializer: D,
    ) -> Result<(), D::Error>;

    /// `Some(equal)` when the field's type is `PartialEq`, `None` otherwise
    /// (then the store compares encodings).
    #[doc(hidden)]
    fn __field_eq(&self, other: &Self, index: usize) -> Option<bool>;

    /// Opens (or creates from `Default`) the store at `path`, the format
    /// taken from the file's extension. Same as [`Store::open`].
    ///
    /// # Errors
    ///
    /// See [`Store::open`].
    fn open(path: impl AsRef<Path>) -> Result<Store<Self>> {
        Store::open(path)
    }

    /// Opens the store at `path`; a missing file starts from `initial`.
    /// Same as [`Store::open_or`].
    ///
    /// # Errors
    ///
    /// See [`Store::open`].
    fn open_or(path: impl AsRef<Path>, initial: Self) -> Result<Store<Self>> {
        Store::open_or(path, initial)
    }
}

/// One row of the field table.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    /// The key the field has in a snapshot (after serde's `rename`/`rename_all`).
    pub name: &'static str,
    /// Other keys that name the field when reading (serde `alias`, `rename(deserialize = ..)`).
    pub aliases: &'static [&'static str],
}

/// A field of `T`, as a type: the derive makes one zero-sized type per field
/// so the store's generic methods know the field's index and value type.
#[doc(hidden)]
pub trait Field<T>: 'static {
    /// The field's type.
    type Value: Clone + Send + Sync + 'static;
    /// The field's index in [`Persisted::__FIELDS`].
    const INDEX: usize;
    /// Borrows the field.
    fn get(state: &T) -> &Self::Value;
    /// Borrows the field mutably.
    fn get_mut(state: &mut T) -> &mut Self::Value;
    /// Serializes a value of the field as a snapshot holds it (honours serde `with`).
    fn serialize<S: Serializer>(value: &Self::Value, serializer: S) -> Result<S::Ok, S::Error>;
    /// Deserializes a value of the field (honours serde `with`).
    fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self::Value, D::Error>;
    /// `Some(equal)` when the type is `PartialEq`.
    fn eq(a: &Self::Value, b: &Self::Value) -> Option<bool>;
}

/// Index of the field named `key` (its name or an alias).
pub(crate) fn field_index(fields: &[FieldSpec], key: &str) -> Option<usize> {
    fields
        .iter()
        .position(|f| f.name == key || f.aliases.contains(&key))
}

/// Autoref specialization: `(&EqProbe(a, b)).probe_eq()` is `Some(a == b)`
/// when the type is `PartialEq` and `None` otherwise. Bring both traits into
/// scope with `use ... as _`.
#[doc(hidden)]
pub struct EqProbe<'a, V>(pub &'a V, pub &'a V);

#[doc(hidden)]
pub trait ViaPartialEq {
    fn probe_eq(&self) -> Option<bool>;
}

impl<V: PartialEq> ViaPartialEq for EqProbe<'_, V> {
    fn probe_eq(&self) -> Option<bool> {
        Some(self.0 == self.1)
    }
}

#[doc(hidden)]
pub trait ViaFallback {
    fn probe_eq(&self) -> Option<bool>;
}

impl<V> ViaFallback for &EqProbe<'_, V> {
    fn probe_eq(&self) -> Option<bool> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoEq;

    #[test]
    #[allow(clippy::needless_borrow)] // the borrow is what selects the impl
    fn eq_probe_uses_partial_eq_when_there_is_one() {
        #[allow(unused_imports)]
        use super::{ViaFallback as _, ViaPartialEq as _};
        assert_eq!((&EqProbe(&1, &1)).probe_eq(), Some(true));
        assert_eq!((&EqProbe(&1, &2)).probe_eq(), Some(false));
        assert_eq!((&EqProbe(&NoEq, &NoEq)).probe_eq(), None);
    }
}
