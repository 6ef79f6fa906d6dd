//! The state on the server: loading it (`{P}:state`, the native
//! collections), decoding values, and encoding a commit's changes as the
//! operations of the commit script.

use super::*;

impl RedisBackend {
    /// Reads the whole store atomically; `None` when it does not exist.
    pub(super) fn load<T: Persisted>(&mut self) -> Result<Option<T>> {
        let mut call = evalsha(
            &scripts()[0],
            &[&self.keys.meta, &self.keys.state, &self.keys.log],
        );
        call.arg(&self.prefix);
        let reply: Value =
            self.with_retry("load", |conn, scripts| run_script(conn, &scripts[0], &call))?;
        let Value::Array(parts) = reply else {
            return Err(self.error("load", "unexpected reply"));
        };
        if parts.first().and_then(as_u64) != Some(1) {
            return Ok(None);
        }
        let [_, meta, state, natives, last] = &parts[..] else {
            return Err(self.error("load", "unexpected reply"));
        };
        let meta = pairs(meta);
        self.version = meta
            .iter()
            .find(|(k, _)| k == "v")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        if let Some((_, layout)) = meta.iter().find(|(k, _)| k == "layout") {
            if layout != "1" {
                return Err(self.error(
                    "load",
                    format!("layout {layout} was written by a newer release"),
                ));
            }
        }
        self.last_id = as_string(last).unwrap_or_else(|| "0-0".into());
        self.kinds.clear();
        let mut object = serde_json::Map::new();
        let state_key = self.keys.state.clone();
        for (field, text) in pairs(state) {
            let value = self.parse(&state_key, &field, &text)?;
            object.insert(field, value);
        }
        if let Value::Array(natives) = natives {
            for native in natives {
                let Value::Array(parts) = native else {
                    continue;
                };
                let [field, kind, contents] = &parts[..] else {
                    continue;
                };
                let field = as_string(field).unwrap_or_default();
                let key = self.key(&format!("c:{field}"));
                let value = match as_string(kind).as_deref() {
                    Some("list") => {
                        self.kinds.insert(field.clone(), Kind::List);
                        let mut items = Vec::new();
                        if let Value::Array(elements) = contents {
                            for (i, element) in elements.iter().enumerate() {
                                let text = as_string(element).unwrap_or_default();
                                items.push(self.parse(&key, &format!("[{i}]"), &text)?);
                            }
                        }
                        Json::Array(items)
                    }
                    _ => {
                        self.kinds.insert(field.clone(), Kind::Hash);
                        let mut map = serde_json::Map::new();
                        for (k, text) in pairs(contents) {
                            let value = self.parse(&key, &k, &text)?;
                            map.insert(k, value);
                        }
                        Json::Object(map)
                    }
                };
                object.insert(field, value);
            }
        }
        let state = self.decode::<T>(object)?;
        Ok(Some(state))
    }

    pub(super) fn parse(&self, key: &str, field: &str, text: &str) -> Result<Json> {
        serde_json::from_str(text).map_err(|e| Error::Parse {
            path: self.target.clone(),
            line: e.line(),
            column: e.column(),
            message: format!("key `{key}` field `{field}`: {e}"),
        })
    }

    /// The struct from the fields read; an error names the field that does
    /// not fit.
    pub(super) fn decode<T: Persisted>(&self, object: serde_json::Map<String, Json>) -> Result<T> {
        let state_key = self.keys.state.clone();
        match serde_json::from_value::<T>(Json::Object(object.clone())) {
            Ok(state) => Ok(state),
            Err(e) => {
                let mut probe = T::default();
                for (index, spec) in T::__FIELDS.iter().enumerate() {
                    if let Some(value) = object.get(spec.name) {
                        if let Err(e) = probe.__deserialize_field(index, value.clone()) {
                            return Err(Error::Parse {
                                path: self.target.clone(),
                                line: 0,
                                column: 0,
                                message: format!("key `{state_key}` field `{}`: {e}", spec.name),
                            });
                        }
                    }
                }
                Err(Error::Parse {
                    path: self.target.clone(),
                    line: 0,
                    column: 0,
                    message: format!("key `{state_key}`: {e}"),
                })
            }
        }
    }

    /// The commit for the server: each change as a native command on the
    /// field's key (converting a field to a native collection the first
    /// time a collection operation meets it), and the record for the log,
    /// a JSON object like a journal record's, each value serialized once.
    /// Returns the kinds the fields will have once the commit is applied.
    pub(super) fn encode<T: Persisted>(
        &self,
        fields: &'static [FieldSpec],
        changes: &dyn Changes,
        state: &T,
        applied: bool,
    ) -> Result<(Vec<ServerOp>, String, HashMap<String, Kind>)> {
        let mut kinds = self.kinds.clone();
        let mut ops = Vec::new();
        let mut record = String::from("{");
        let mut failed = None;
        changes.each(&mut |op, index, value| {
            if failed.is_some() {
                return;
            }
            let name = fields.get(index).map_or("", |f| f.name);
            let result = (|| -> serde_json::Result<()> {
                let text = serde_json::to_string(value)?;
                if record.len() > 1 {
                    record.push(',');
                }
                record.push_str(&serde_json::to_string(&format!("{op} {name}"))?);
                record.push(':');
                record.push_str(&text);
                if op == Op::Set {
                    ops.push(whole(name, text, &mut kinds)?);
                    return Ok(());
                }
                if !kinds.contains_key(name) {
                    // First collection operation on a field kept as JSON:
                    // it becomes native, from its value before the
                    // operation (or, when `state` holds the change already,
                    // the value after it, which then stands for the
                    // operation).
                    let current = serde_json::to_string(&FieldOf(state, index))?;
                    ops.push(whole(name, current, &mut kinds)?);
                    if applied {
                        return Ok(());
                    }
                }
                let hash = kinds.get(name) == Some(&Kind::Hash);
                ops.push(match op {
                    Op::Push => ServerOp::new("push", name, vec![text]),
                    Op::Extend => {
                        let items: Vec<Json> = serde_json::from_str(&text)?;
                        ServerOp::new("push", name, items.iter().map(Json::to_string).collect())
                    }
                    Op::PushFront => ServerOp::new("push_front", name, vec![text]),
                    Op::Pop => ServerOp::new("pop", name, vec![]),
                    Op::PopFront => ServerOp::new("pop_front", name, vec![]),
                    Op::Clear => ServerOp::new("clear", name, vec![]),
                    Op::Insert if hash => {
                        let (key, value): (Json, Json) = serde_json::from_str(&text)?;
                        ServerOp::new("minsert", name, vec![map_key(&key), value.to_string()])
                    }
                    Op::Remove if hash => {
                        let key: Json = serde_json::from_str(&text)?;
                        ServerOp::new("mremove", name, vec![map_key(&key)])
                    }
                    Op::Insert => ServerOp::new("sinsert", name, vec![text]),
                    Op::Remove => ServerOp::new("sremove", name, vec![text]),
                    Op::Set => unreachable!("handled above"),
                });
                Ok(())
            })();
            if let Err(e) = result {
                failed = Some(e.to_string());
            }
        });
        record.push('}');
        match failed {
            Some(e) => Err(Error::encode(&self.target, e)),
            None => Ok((ops, record, kinds)),
        }
    }
}

/// A field replaced whole, given as JSON text: JSON in the state hash, or
/// a native list or hash for a list or map value.
pub(super) fn whole(
    name: &str,
    text: String,
    kinds: &mut HashMap<String, Kind>,
) -> serde_json::Result<ServerOp> {
    Ok(match text.as_bytes().first() {
        Some(b'[') => {
            let items: Vec<Json> = serde_json::from_str(&text)?;
            kinds.insert(name.to_string(), Kind::List);
            ServerOp::new("L", name, items.iter().map(Json::to_string).collect())
        }
        Some(b'{') => {
            let map: serde_json::Map<String, Json> = serde_json::from_str(&text)?;
            kinds.insert(name.to_string(), Kind::Hash);
            let mut args = Vec::with_capacity(map.len() * 2);
            for (k, v) in &map {
                args.push(k.clone());
                args.push(v.to_string());
            }
            ServerOp::new("H", name, args)
        }
        _ => {
            let code = match kinds.remove(name) {
                Some(_) => "JN",
                None => "J",
            };
            ServerOp::new(code, name, vec![text])
        }
    })
}

/// A map key as JSON objects hold it: strings as they are, others as their
/// JSON text.
pub(super) fn map_key(key: &Json) -> String {
    match key {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One operation of a commit script.
pub(super) struct ServerOp {
    pub(super) code: &'static str,
    pub(super) field: String,
    pub(super) args: Vec<String>,
}

impl ServerOp {
    pub(super) fn new(code: &'static str, field: &str, args: Vec<String>) -> ServerOp {
        ServerOp {
            code,
            field: field.to_string(),
            args,
        }
    }
}

/// Every field of a state, set whole: a new store's first commit.
pub(super) struct AllFields<'a, T>(pub(super) &'a T, pub(super) usize);

impl<T: Persisted> Changes for AllFields<'_, T> {
    fn len(&self) -> usize {
        self.1
    }
    fn each(&self, emit: &mut dyn FnMut(Op, usize, &dyn erased_serde::Serialize)) {
        for index in 0..self.1 {
            emit(Op::Set, index, &FieldOf(self.0, index));
        }
    }
}
