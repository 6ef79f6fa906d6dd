//! What the methods `#[derive(Persisted)]` generates call: one mutation
//! each (`mutation.rs`), on the writer lock.

use std::marker::PhantomData;

use super::Store;
use crate::collection::{DequeField, MapField, MapLookup, SeqField, SetField, SetLookup};
use crate::error::Result;
use crate::mutation::{self, SetValue};
use crate::reentry::{Held, Hold};
use crate::schema::{Field, Persisted};

/// The methods `#[derive(Persisted)]` generates call these.
#[doc(hidden)]
impl<T: Persisted> Store<T> {
    pub fn __get<F: Field<T>>(&self) -> F::Value {
        F::get(&self.read()).clone()
    }

    pub fn __set<F: Field<T>>(&self, value: F::Value) -> Result<()> {
        let writer = self.writer()?;
        self.persist(writer, SetValue::<T, F>(value, PhantomData))
    }

    pub fn __update<F: Field<T>, R>(&self, f: impl FnOnce(&mut F::Value) -> R) -> Result<R> {
        let writer = self.closure_writer()?;
        let mut value = F::get(&self.inner.state.read()).clone();
        let out = {
            let _held = Held::new(self.key(), Hold::Update);
            f(&mut value)
        };
        if F::eq(F::get(&self.inner.state.read()), &value) != Some(true) {
            self.persist(writer, SetValue::<T, F>(value, PhantomData))?;
        }
        Ok(out)
    }

    pub fn __push<F: Field<T>>(&self, value: <F::Value as SeqField>::Elem) -> Result<()>
    where
        F::Value: SeqField,
    {
        let writer = self.writer()?;
        self.persist(writer, mutation::push::<T, F>(value))
    }

    pub fn __push_front<F: Field<T>>(&self, value: <F::Value as SeqField>::Elem) -> Result<()>
    where
        F::Value: DequeField,
    {
        let writer = self.writer()?;
        self.persist(writer, mutation::push_front::<T, F>(value))
    }

    pub fn __extend<F: Field<T>, I>(&self, values: I) -> Result<()>
    where
        F::Value: SeqField,
        I: IntoIterator<Item = <F::Value as SeqField>::Elem>,
    {
        let values: Vec<_> = values.into_iter().collect();
        if values.is_empty() {
            return Ok(());
        }
        let writer = self.writer()?;
        self.persist(writer, mutation::extend::<T, F>(values))
    }

    pub fn __pop<F: Field<T>>(&self) -> Result<Option<<F::Value as SeqField>::Elem>>
    where
        F::Value: SeqField,
    {
        let writer = self.writer()?;
        if F::get(&self.inner.state.read()).is_empty() {
            return Ok(None);
        }
        self.persist(writer, mutation::pop::<T, F>())
    }

    pub fn __pop_front<F: Field<T>>(&self) -> Result<Option<<F::Value as SeqField>::Elem>>
    where
        F::Value: DequeField,
    {
        let writer = self.writer()?;
        if F::get(&self.inner.state.read()).is_empty() {
            return Ok(None);
        }
        self.persist(writer, mutation::pop_front::<T, F>())
    }

    pub fn __clear<F: Field<T>>(&self) -> Result<()>
    where
        F::Value: SeqField,
    {
        let writer = self.writer()?;
        if F::get(&self.inner.state.read()).is_empty() {
            return Ok(());
        }
        self.persist(writer, mutation::clear::<T, F>())
    }

    pub fn __map_insert<F: Field<T>>(
        &self,
        key: <F::Value as MapField>::Key,
        value: <F::Value as MapField>::Value,
    ) -> Result<Option<<F::Value as MapField>::Value>>
    where
        F::Value: MapField,
    {
        let writer = self.writer()?;
        self.persist(writer, mutation::map_insert::<T, F>(key, value))
    }

    pub fn __map_remove<F: Field<T>, Q: ?Sized>(
        &self,
        key: &Q,
    ) -> Result<Option<<F::Value as MapField>::Value>>
    where
        F::Value: MapLookup<Q>,
    {
        let writer = self.writer()?;
        let Some(key) = F::get(&self.inner.state.read()).find_key(key).cloned() else {
            return Ok(None);
        };
        self.persist(writer, mutation::map_remove::<T, F>(key))
    }

    pub fn __set_insert<F: Field<T>>(&self, value: <F::Value as SetField>::Elem) -> Result<bool>
    where
        F::Value: SetField,
    {
        let writer = self.writer()?;
        if F::get(&self.inner.state.read()).contains(&value) {
            return Ok(false);
        }
        self.persist(writer, mutation::set_insert::<T, F>(value))
    }

    pub fn __set_remove<F: Field<T>, Q: ?Sized>(&self, value: &Q) -> Result<bool>
    where
        F::Value: SetLookup<Q>,
    {
        let writer = self.writer()?;
        let Some(value) = F::get(&self.inner.state.read()).find(value).cloned() else {
            return Ok(false);
        };
        self.persist(writer, mutation::set_remove::<T, F>(value))
    }
}
