//! Reading a store's rows back as one JSON object: the query that reads
//! them in one consistent snapshot, and the assembly of its columns (the
//! plain fields, with each native collection put back as the field's
//! value). Shared by the backend and the `persisted` CLI (`__tool`).

use std::collections::HashMap;

use serde_json::{Map, Value as Json};

use crate::server::Kind;

/// One store's row and its collections, each as JSON text, in one
/// statement: version, state, kinds, lists (field -> elements in `pos`
/// order), maps (field -> entries), and an encrypted store's envelope
/// (`NULL` for a plain store). `$1` is the store's key.
pub const LOAD: &str = "SELECT s.version, s.state::text, s.kinds::text,
    coalesce((SELECT jsonb_object_agg(field, items) FROM
        (SELECT field, jsonb_agg(value ORDER BY pos) AS items
         FROM persisted_item WHERE key = $1 GROUP BY field) l), '{}')::text,
    coalesce((SELECT jsonb_object_agg(field, entries) FROM
        (SELECT field, jsonb_object_agg(k, value) AS entries
         FROM persisted_entry WHERE key = $1 GROUP BY field) m), '{}')::text,
    s.envelope
 FROM persisted_state s WHERE s.key = $1";

/// The columns [`LOAD`] returns.
pub struct Tables {
    /// `persisted_state.version`: the number of commits.
    pub version: i64,
    /// `persisted_state.state`: the plain fields.
    pub state: String,
    /// `persisted_state.kinds`: field -> `list` or `hash`.
    pub kinds: String,
    /// The elements of every list field.
    pub lists: String,
    /// The entries of every map field.
    pub maps: String,
}

/// A store's state as one JSON object.
pub struct Assembled {
    /// The number of commits (0: the first is not made yet).
    pub version: u64,
    /// Every field, collections included, and members the struct may not
    /// know.
    pub object: Map<String, Json>,
    /// Which fields are native collections.
    pub(crate) kinds: HashMap<String, Kind>,
    /// What does not fit the layout (rows of a field that is not a
    /// collection, a field both plain and a collection, an unknown kind):
    /// loading goes on without them; `persisted verify` reports them.
    pub problems: Vec<String>,
}

impl Tables {
    /// The state the rows hold; an error names the column that is not a
    /// JSON object.
    pub fn assemble(self) -> Result<Assembled, (&'static str, serde_json::Error)> {
        fn parse(
            what: &'static str,
            text: &str,
        ) -> Result<Map<String, Json>, (&'static str, serde_json::Error)> {
            match serde_json::from_str(text) {
                Ok(Json::Object(map)) => Ok(map),
                Ok(_) => Ok(Map::new()),
                Err(e) => Err((what, e)),
            }
        }
        let mut object = parse("persisted_state.state", &self.state)?;
        let mut lists = parse("persisted_item", &self.lists)?;
        let mut maps = parse("persisted_entry", &self.maps)?;
        let mut kinds = HashMap::new();
        let mut problems = Vec::new();
        for (field, kind) in parse("persisted_state.kinds", &self.kinds)? {
            let (kind, value) = match kind.as_str() {
                Some("list") => (
                    Kind::List,
                    lists.remove(&field).unwrap_or(Json::Array(vec![])),
                ),
                Some("hash") => (
                    Kind::Hash,
                    maps.remove(&field)
                        .unwrap_or_else(|| Json::Object(Map::new())),
                ),
                _ => {
                    problems.push(format!(
                        "persisted_state.kinds: field `{field}` has kind {kind}, not \"list\" or \"hash\""
                    ));
                    continue;
                }
            };
            if object.contains_key(&field) {
                problems.push(format!(
                    "field `{field}` is both a plain field (persisted_state.state) and a {} \
                     (the collection is used)",
                    if kind == Kind::List { "list" } else { "map" }
                ));
            }
            kinds.insert(field.clone(), kind);
            object.insert(field, value);
        }
        for (table, rest) in [("persisted_item", lists), ("persisted_entry", maps)] {
            for field in rest.keys() {
                problems.push(format!(
                    "{table} has rows of field `{field}`, which persisted_state.kinds does not \
                     list as a collection (ignored)"
                ));
            }
        }
        Ok(Assembled {
            version: u64::try_from(self.version).unwrap_or(0),
            object,
            kinds,
            problems,
        })
    }
}

/// The key of an encrypted store's field's one row in `persisted_entry`.
pub const SEALED: &str = "sealed";

impl Assembled {
    /// An encrypted store's fields as their sealed values: each is kept as
    /// a one-entry map (a row of `persisted_entry`, key [`SEALED`]), so
    /// that a commit rewrites only the rows of the fields it changes.
    ///
    /// # Errors
    ///
    /// A message naming a field kept otherwise (written in plain text by
    /// another client?).
    pub fn unwrap_sealed_rows(&mut self) -> Result<(), String> {
        for (field, kind) in &self.kinds {
            let value = self.object.get_mut(field);
            let sealed = match (kind, value) {
                (Kind::Hash, Some(Json::Object(rows))) if rows.len() == 1 => {
                    match rows.remove(SEALED) {
                        Some(sealed) => sealed,
                        None => {
                            return Err(format!(
                                "field `{field}` of an encrypted store has no `{SEALED}` row"
                            ))
                        }
                    }
                }
                _ => {
                    return Err(format!(
                        "field `{field}` of an encrypted store is not one sealed row of \
                         persisted_entry (written in plain text by another client?)"
                    ))
                }
            };
            self.object.insert(field.clone(), sealed);
        }
        Ok(())
    }
}
