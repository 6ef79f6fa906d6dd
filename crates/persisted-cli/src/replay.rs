//! Applying a commit's entries to a dynamic value, as the library applies
//! them to the struct (`set`, `push`, `extend`, `pop`, `clear`,
//! `push_front`, `pop_front`, `insert`, `remove`; see the file format).

use serde_json::{Map, Value};

/// Applies one commit's entries, in order, to `state` (the whole struct as
/// a map).
pub fn apply(state: &mut Value, entries: &[(String, Value)]) -> Result<(), String> {
    let Value::Object(fields) = state else {
        return Err("the state is not a map of fields".into());
    };
    for (key, arg) in entries {
        let (op, field) = key
            .split_once(' ')
            .ok_or_else(|| format!("`{key}` is not `<operation> <field>`"))?;
        apply_one(fields, op, field, arg.clone())?;
    }
    Ok(())
}

fn apply_one(
    fields: &mut Map<String, Value>,
    op: &str,
    field: &str,
    arg: Value,
) -> Result<(), String> {
    if op == "set" {
        fields.insert(field.to_string(), arg);
        return Ok(());
    }
    let value = fields
        .entry(field.to_string())
        .or_insert_with(|| empty_for(op));
    let wrong = |what: &str| format!("`{op} {field}`: the field is not {what}");
    match (op, value) {
        ("push", Value::Array(items)) => items.push(arg),
        ("push_front", Value::Array(items)) => items.insert(0, arg),
        ("extend", Value::Array(items)) => match arg {
            Value::Array(more) => items.extend(more),
            _ => return Err(format!("`extend {field}` takes a list")),
        },
        ("pop", Value::Array(items)) => {
            items.pop();
        }
        ("pop_front", Value::Array(items)) => {
            if !items.is_empty() {
                items.remove(0);
            }
        }
        ("clear", Value::Array(items)) => items.clear(),
        ("clear", Value::Object(map)) => map.clear(),
        ("insert", Value::Object(map)) => match arg {
            Value::Array(pair) if pair.len() == 2 => {
                let mut pair = pair.into_iter();
                let (key, value) = (pair.next(), pair.next());
                let key = map_key(key.unwrap_or(Value::Null));
                map.insert(key, value.unwrap_or(Value::Null));
            }
            _ => return Err(format!("`insert {field}` on a map takes `[key, value]`")),
        },
        ("insert", Value::Array(set)) => insert_sorted(set, arg),
        ("remove", Value::Object(map)) => {
            map.shift_remove(&map_key(arg));
        }
        ("remove", Value::Array(set)) => set.retain(|e| *e != arg),
        ("push" | "push_front" | "extend" | "pop" | "pop_front", _) => return Err(wrong("a list")),
        ("clear" | "insert" | "remove", _) => return Err(wrong("a collection")),
        _ => return Err(format!("unknown operation `{op}` on `{field}`")),
    }
    Ok(())
}

/// A field a record changes by an operation but the snapshot lacks (added
/// to the struct with `#[serde(default)]`): an empty collection.
fn empty_for(op: &str) -> Value {
    match op {
        "insert" | "remove" => Value::Object(Map::new()),
        _ => Value::Array(Vec::new()),
    }
}

/// A map key as the text formats write it: strings as they are, numbers
/// and booleans as their text.
fn map_key(key: Value) -> String {
    match key {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// Inserts into a set written as a list: kept in order when it is ordered
/// (a `BTreeSet`), appended otherwise; never twice.
fn insert_sorted(set: &mut Vec<Value>, element: Value) {
    if set.contains(&element) {
        return;
    }
    let sorted = set
        .windows(2)
        .all(|w| compare(&w[0], &w[1]) != Some(std::cmp::Ordering::Greater));
    let position = match sorted {
        true => set.partition_point(|e| compare(e, &element) == Some(std::cmp::Ordering::Less)),
        false => set.len(),
    };
    set.insert(position, element);
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Number(a), Value::Number(b)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(state: Value, entries: Value) -> Result<Value, String> {
        let mut state = state;
        let entries: Vec<(String, Value)> = entries
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e[0].as_str().unwrap().to_string(), e[1].clone()))
            .collect();
        apply(&mut state, &entries).map(|()| state)
    }

    #[test]
    fn every_operation_applies_as_the_library_does() {
        let state = json!({"n": 1, "v": [1, 2], "q": ["a"], "m": {"a": 1}, "s": ["a", "c"]});
        let after = run(
            state,
            json!([
                ["set n", 5],
                ["push v", 3],
                ["extend v", [4, 5]],
                ["pop v", null],
                ["push_front q", "z"],
                ["pop_front q", null],
                ["push q", "b"],
                ["insert m", ["b", 2]],
                ["remove m", "a"],
                ["insert s", "b"],
                ["insert s", "a"],
                ["remove s", "c"],
            ]),
        )
        .unwrap();
        assert_eq!(
            after,
            json!({"n": 5, "v": [1, 2, 3, 4], "q": ["a", "b"], "m": {"b": 2}, "s": ["a", "b"]})
        );
    }

    #[test]
    fn integer_map_keys_are_their_text() {
        let after = run(json!({"m": {}}), json!([["insert m", [7, "x"]]])).unwrap();
        assert_eq!(after, json!({"m": {"7": "x"}}));
    }

    #[test]
    fn an_operation_on_the_wrong_kind_of_field_is_an_error() {
        let e = run(json!({"n": 1}), json!([["push n", 2]])).unwrap_err();
        assert!(e.contains("not a list"), "{e}");
        let e = run(json!({"n": 1}), json!([["frobnicate n", 2]])).unwrap_err();
        assert!(e.contains("unknown operation"), "{e}");
    }
}
