//! Keys of a text snapshot that the struct does not know, at any depth:
//! found while the snapshot is read (serde_ignored names each one's path),
//! kept with their values, and put back where they were each time the
//! snapshot is written, so a downgrade or a typo loses nothing and a typo
//! can be reported by its path (`server.tls_certt`).
//!
//! Each codec's document type implements [`Tree`]; the walking is written
//! once here.

use std::fmt;

/// One step from a document's root towards a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// The value of a map's key.
    Key(String),
    /// An element of a sequence.
    Index(usize),
    /// The value inside a tagged value (YAML's `!Variant value`).
    #[cfg_attr(not(feature = "yaml"), allow(dead_code))]
    Tagged,
}

/// A step of the path serde_ignored reports, before it is matched against
/// the document.
#[derive(Debug, Clone)]
pub(crate) enum Ignored {
    Key(String),
    Index(usize),
    /// `Option`'s `Some`, a newtype struct: nothing in the document.
    Through,
    /// A newtype enum variant: the document names the variant.
    Variant,
}

/// The path serde_ignored reports, root first.
pub(crate) fn ignored_path(path: &serde_ignored::Path<'_>) -> Vec<Ignored> {
    use serde_ignored::Path;
    let (parent, step) = match path {
        Path::Root => return Vec::new(),
        Path::Seq { parent, index } => (parent, Ignored::Index(*index)),
        Path::Map { parent, key } => (parent, Ignored::Key(key.clone())),
        Path::Some { parent } | Path::NewtypeStruct { parent } => (parent, Ignored::Through),
        Path::NewtypeVariant { parent } => (parent, Ignored::Variant),
    };
    let mut steps = ignored_path(parent);
    steps.push(step);
    steps
}

/// A document value of one codec, as far as keeping unknown keys needs.
pub(crate) trait Tree: Clone {
    /// The value one step down, if there is one.
    fn child(&self, step: &Step) -> Option<&Self>;
    fn child_mut(&mut self, step: &Step) -> Option<&mut Self>;
    /// The step into an enum variant's value: a one-key map's key, or a
    /// tag.
    fn variant_step(&self) -> Option<Step>;
    /// The string keys of a map, in order; `None` when this is not a map.
    fn keys(&self) -> Option<Vec<String>>;
    /// Inserts `key` at position `index` of this map (at the end when past
    /// it). Nothing when this is not a map.
    fn insert_at(&mut self, index: usize, key: String, value: Self);
}

/// One key the struct does not know, with its value and where it was.
#[derive(Debug, Clone)]
pub(crate) struct Unknown<V> {
    /// The map holding it.
    parent: Vec<Step>,
    key: String,
    /// The key before it in that map, to put it back in its place.
    after: Option<String>,
    value: V,
}

impl<V> fmt::Display for Unknown<V> {
    /// The key's path: `server.tls_certt`, `servers[1].hots`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for step in self.parent.iter().chain([&Step::Key(self.key.clone())]) {
            match step {
                Step::Key(key) if first => write!(f, "{key}")?,
                Step::Key(key) => write!(f, ".{key}")?,
                Step::Index(i) => write!(f, "[{i}]")?,
                Step::Tagged => continue,
            }
            first = false;
        }
        Ok(())
    }
}

/// The unknown keys at `paths` (from serde_ignored) in `doc`, with their
/// values. A path that does not lead to a map key of `doc` is left out.
pub(crate) fn collect<V: Tree>(doc: &V, paths: &[Vec<Ignored>]) -> Vec<Unknown<V>> {
    paths.iter().filter_map(|path| find(doc, path)).collect()
}

fn find<V: Tree>(doc: &V, path: &[Ignored]) -> Option<Unknown<V>> {
    let (Ignored::Key(key), parents) = path.split_last()? else {
        return None;
    };
    let mut node = doc;
    let mut parent = Vec::new();
    for ignored in parents {
        let step = match ignored {
            Ignored::Key(key) => Step::Key(key.clone()),
            Ignored::Index(i) => Step::Index(*i),
            Ignored::Through => continue,
            Ignored::Variant => match node.variant_step() {
                Some(step) => step,
                None => continue,
            },
        };
        node = node.child(&step)?;
        parent.push(step);
    }
    let keys = node.keys()?;
    let at = keys.iter().position(|k| k == key)?;
    let value = node.child(&Step::Key(key.clone()))?.clone();
    Some(Unknown {
        parent,
        key: key.clone(),
        after: at.checked_sub(1).map(|i| keys[i].clone()),
        value,
    })
}

/// Puts every unknown key back into `doc` (the state as written), each in
/// the map it was in, after the key it followed, unless the map is gone or
/// the struct now writes that key itself.
pub(crate) fn restore<V: Tree>(doc: &mut V, unknown: &[Unknown<V>]) {
    for entry in unknown {
        let Some(node) = descend(doc, &entry.parent) else {
            continue;
        };
        let Some(keys) = node.keys() else {
            continue;
        };
        if keys.contains(&entry.key) {
            continue;
        }
        let index = match &entry.after {
            Some(after) => keys
                .iter()
                .position(|k| k == after)
                .map_or(keys.len(), |i| i + 1),
            None => 0,
        };
        node.insert_at(index, entry.key.clone(), entry.value.clone());
    }
}

fn descend<'a, V: Tree>(node: &'a mut V, steps: &[Step]) -> Option<&'a mut V> {
    match steps.split_first() {
        None => Some(node),
        Some((step, rest)) => descend(node.child_mut(step)?, rest),
    }
}

#[cfg(feature = "json")]
impl Tree for serde_json::Value {
    fn child(&self, step: &Step) -> Option<&Self> {
        match step {
            Step::Key(key) => self.as_object()?.get(key),
            Step::Index(i) => self.as_array()?.get(*i),
            Step::Tagged => None,
        }
    }

    fn child_mut(&mut self, step: &Step) -> Option<&mut Self> {
        match step {
            Step::Key(key) => self.as_object_mut()?.get_mut(key),
            Step::Index(i) => self.as_array_mut()?.get_mut(*i),
            Step::Tagged => None,
        }
    }

    fn variant_step(&self) -> Option<Step> {
        let map = self.as_object().filter(|m| m.len() == 1)?;
        map.keys().next().map(|k| Step::Key(k.clone()))
    }

    fn keys(&self) -> Option<Vec<String>> {
        Some(self.as_object()?.keys().cloned().collect())
    }

    fn insert_at(&mut self, index: usize, key: String, value: Self) {
        if let Some(map) = self.as_object_mut() {
            let index = index.min(map.len());
            map.shift_insert(index, key, value);
        }
    }
}

#[cfg(feature = "yaml")]
impl Tree for serde_yaml::Value {
    fn child(&self, step: &Step) -> Option<&Self> {
        match (step, self) {
            (Step::Key(key), serde_yaml::Value::Mapping(map)) => map.get(key.as_str()),
            (Step::Index(i), serde_yaml::Value::Sequence(seq)) => seq.get(*i),
            (Step::Tagged, serde_yaml::Value::Tagged(tagged)) => Some(&tagged.value),
            _ => None,
        }
    }

    fn child_mut(&mut self, step: &Step) -> Option<&mut Self> {
        match (step, self) {
            (Step::Key(key), serde_yaml::Value::Mapping(map)) => map.get_mut(key.as_str()),
            (Step::Index(i), serde_yaml::Value::Sequence(seq)) => seq.get_mut(*i),
            (Step::Tagged, serde_yaml::Value::Tagged(tagged)) => Some(&mut tagged.value),
            _ => None,
        }
    }

    fn variant_step(&self) -> Option<Step> {
        match self {
            serde_yaml::Value::Tagged(_) => Some(Step::Tagged),
            serde_yaml::Value::Mapping(map) if map.len() == 1 => map
                .keys()
                .next()?
                .as_str()
                .map(|k| Step::Key(k.to_string())),
            _ => None,
        }
    }

    fn keys(&self) -> Option<Vec<String>> {
        let serde_yaml::Value::Mapping(map) = self else {
            return None;
        };
        Some(
            map.keys()
                .map(|k| k.as_str().map_or_else(String::new, str::to_string))
                .collect(),
        )
    }

    fn insert_at(&mut self, index: usize, key: String, value: Self) {
        if let serde_yaml::Value::Mapping(map) = self {
            let old = std::mem::take(map);
            let mut entry = Some((serde_yaml::Value::String(key), value));
            for (i, (k, v)) in old.into_iter().enumerate() {
                if i == index {
                    if let Some((key, value)) = entry.take() {
                        map.insert(key, value);
                    }
                }
                map.insert(k, v);
            }
            if let Some((key, value)) = entry {
                map.insert(key, value);
            }
        }
    }
}

#[cfg(feature = "toml")]
impl Tree for toml::Value {
    fn child(&self, step: &Step) -> Option<&Self> {
        match step {
            Step::Key(key) => self.as_table()?.get(key),
            Step::Index(i) => self.as_array()?.get(*i),
            Step::Tagged => None,
        }
    }

    fn child_mut(&mut self, step: &Step) -> Option<&mut Self> {
        match step {
            Step::Key(key) => self.as_table_mut()?.get_mut(key),
            Step::Index(i) => self.as_array_mut()?.get_mut(*i),
            Step::Tagged => None,
        }
    }

    fn variant_step(&self) -> Option<Step> {
        let table = self.as_table().filter(|t| t.len() == 1)?;
        table.keys().next().map(|k| Step::Key(k.clone()))
    }

    fn keys(&self) -> Option<Vec<String>> {
        Some(self.as_table()?.keys().cloned().collect())
    }

    fn insert_at(&mut self, index: usize, key: String, value: Self) {
        if let Some(table) = self.as_table_mut() {
            let old = std::mem::take(table);
            let mut entry = Some((key, value));
            for (i, (k, v)) in old.into_iter().enumerate() {
                if i == index {
                    if let Some((key, value)) = entry.take() {
                        table.insert(key, value);
                    }
                }
                table.insert(k, v);
            }
            if let Some((key, value)) = entry {
                table.insert(key, value);
            }
        }
    }
}

#[cfg(all(test, feature = "json"))]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(steps: &[&str]) -> Vec<Ignored> {
        steps
            .iter()
            .map(|s| match s.parse() {
                Ok(i) => Ignored::Index(i),
                Err(_) => Ignored::Key(s.to_string()),
            })
            .collect()
    }

    #[test]
    fn unknown_keys_go_back_where_they_were_at_any_depth() {
        let doc = json!({
            "name": "x",
            "typo": 1,
            "server": {"host": "h", "tls_certt": "a.pem", "port": 1},
            "servers": [{"host": "a"}, {"hots": "b", "host": "b"}]
        });
        let unknown = collect(
            &doc,
            &[
                path(&["typo"]),
                path(&["server", "tls_certt"]),
                path(&["servers", "1", "hots"]),
                path(&["gone", "x"]),
            ],
        );
        let names: Vec<String> = unknown.iter().map(|u| u.to_string()).collect();
        assert_eq!(names, ["typo", "server.tls_certt", "servers[1].hots"]);
        // The state as the struct writes it: without the unknown keys.
        let mut written = json!({
            "name": "y",
            "server": {"host": "h", "port": 2},
            "servers": [{"host": "a"}, {"host": "b"}]
        });
        restore(&mut written, &unknown);
        assert_eq!(
            serde_json::to_string(&written).unwrap(),
            r#"{"name":"y","typo":1,"server":{"host":"h","tls_certt":"a.pem","port":2},"servers":[{"host":"a"},{"hots":"b","host":"b"}]}"#
        );
    }

    #[test]
    fn a_key_the_struct_writes_again_or_a_map_that_is_gone_is_left_alone() {
        let doc = json!({"a": {"b": 1}, "c": 2});
        let unknown = collect(&doc, &[path(&["a", "b"]), path(&["c"])]);
        let mut written = json!({"a": 5, "c": 3});
        restore(&mut written, &unknown);
        assert_eq!(written, json!({"a": 5, "c": 3}));
    }
}
