//! The Lua scripts the Redis backend runs: each is atomic on the server, so
//! a commit is one round trip that either applies whole or not at all.
//!
//! Keys of a store with key prefix `P` (all in hash tag `{P}`, one slot):
//! `{P}:meta` (hash: `v` the version, `layout`, `kind:<field>` for fields
//! kept as native collections), `{P}:state` (hash: field -> JSON),
//! `{P}:c:<field>` (list or hash), `{P}:log` (stream: `v`, `cid`, `ts`,
//! `rec` per commit), `{P}:lease` (the writer lease, a token with a TTL),
//! `{P}:wake` (a list a waiter for the lease blocks on), `{P}:waiting`
//! (set while someone waits for the lease). The last three are not data:
//! the scripts keep them out of the AOF and replication.

/// Loads everything at once: `{0}` when the store does not exist, else
/// `{1, meta, state, natives, last_log_id}` with `natives` a list of
/// `{field, "list"|"hash", contents}`.
/// KEYS: meta, state, log. ARGV: the key prefix (`{P}`).
pub(super) const LOAD: &str = include_str!("load.lua");

/// One commit: refuses with `{2, pttl}` while another handle holds the
/// lease, with `{0, v}` when the version is not the expected one (another
/// commit came first), with `{3, field, type}` when a field's native key
/// has another type than its operation needs (nothing written); otherwise
/// applies every operation, bumps the version, appends the record to the
/// log and returns `{1, v, log_id, kept}` (`kept`: 1 when the handle still
/// holds the lease). Operation codes: `J` a field as JSON
/// (`JN` when it was a native collection), `L`/`H` a field as a native
/// list/hash, then `push` (many), `push_front`, `pop`, `pop_front`,
/// `clear`, `minsert`, `mremove` (maps), `sinsert`, `sremove` (sets).
/// KEYS: meta, state, log, lease, wake, waiting. ARGV: prefix, expected
/// version, commit id, record, time (ms), lease token (or ''), the lease
/// after the commit ('0' leave it, '1' give it up, `keep:<ms>` keep it that
/// much longer unless someone waits), trim kind ('MAXLEN', 'MINID' or ''), trim argument, operation count,
/// then per operation: code, field, argument count, arguments.
pub(super) const COMMIT: &str = include_str!("commit.lua");

/// Takes (or renews) the lease for `ttl` ms and returns what a writer needs
/// to catch up: `{1, v}` when the caller is at version `v`, else `{1, v,
/// entries after last_id}`; `{0, pttl}` while another handle holds it
/// (and marks `waiting` for `waiting_ms`).
/// KEYS: meta, log, lease, waiting. ARGV: token, ttl ms, last log id seen,
/// the caller's version, waiting_ms.
pub(super) const LOCK: &str = include_str!("lock.lua");

/// Renews the lease this token holds for `ttl` ms (takes it when it ran
/// out and nobody else took it): `1`, or `0` when another handle holds it.
/// KEYS: lease. ARGV: token, ttl ms.
pub(super) const RENEW: &str = include_str!("renew.lua");

/// Gives the lease up if this token still holds it, and wakes one waiter
/// (`{P}:wake`, a list a waiter blocks on with `BLPOP`).
/// KEYS: lease, wake. ARGV: token.
pub(super) const RELEASE: &str = include_str!("release.lua");
