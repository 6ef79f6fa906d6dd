//! The PostgreSQL backend (feature `postgres`): the store lives in a
//! PostgreSQL database, and every process on every host that opens the same
//! URL and key shares it, with the guarantees of shared mode.
//!
//! * **Layout** (readable with `psql`; `schema.sql`, made on first open):
//!   one row per store in `persisted_state` (its version, the plain fields
//!   as one JSON object whose unknown members are kept); the elements of a
//!   list or set field as rows of `persisted_item`, the entries of a map
//!   field as rows of `persisted_entry`, so collection operations cost
//!   O(the change); every commit a row of `persisted_log`, which is the
//!   history.
//! * **Commits** are one statement: `persisted_commit(..)` checks the
//!   version, applies the operations, bumps the version and logs the
//!   commit, all or nothing. Generated operations are optimistic: when
//!   another commit came first, the handle catches up from the log and
//!   sends the same change again. Closures (`update`, transactions) first
//!   lock the store's row (`SELECT ... FOR UPDATE`, waiting at most the
//!   lock timeout) in a transaction that their commit ends, so they run
//!   exactly once on the current state.
//! * **Lost replies**: a commit whose reply is lost is looked up by its
//!   commit id (`persisted_log` has one unique per store) once the
//!   connection is back; sent again only when it is not there. Never a
//!   blind retry.
//! * **Durability**: every session runs with `synchronous_commit = on`
//!   (`off` loses acknowledged commits when the server crashes); with
//!   `Durability::Sync`, open also checks the server's `fsync` is on.
//!
//! The parts: `connection.rs` (the client on its own thread), `store.rs`
//! (open, load, commit, catch up, lock), `tables.rs` (the rows read back
//! as one JSON object, shared with the CLI), `backend.rs` (the `Backend` a
//! `Store` drives), `tls.rs` (plain or TLS connections).

mod backend;
mod connection;
mod store;
pub(crate) mod tables;
pub(crate) mod tls;

pub(crate) use self::backend::open_store;
