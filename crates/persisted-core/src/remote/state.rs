//! The state on the server: loading it (`{P}:state`, the native
//! collections), decoding values, and encoding a commit's changes as the
//! operations of the commit script.

use super::*;

impl RedisBackend {
    /// Reads the whole store atomically; `None` when it does not exist.
    /// `key`: what to unlock an encrypted store with when this handle has
    /// not yet (at open).
    pub(super) fn load<T: Persisted>(&mut self, key: Option<&Key>) -> Result<Option<T>> {
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
        let stored = meta
            .iter()
            .find(|(k, _)| k == "enc")
            .map(|(_, v)| v.as_str());
        match &self.crypt {
            Some(crypt) => check_same(&self.target, crypt, stored)?,
            None => self.crypt = unlock(&self.target, stored, key, true)?,
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
        let place = format!("key `{}`", self.keys.state);
        if let Some(crypt) = &self.crypt {
            if !self.kinds.is_empty() {
                return Err(self.error(
                    "load",
                    "an encrypted store holds a native collection (written in plain text by \
                     another client?)",
                ));
            }
            open_object::<T>(crypt, &self.target, &place, &mut object)?;
        }
        let state = decode::<T>(&self.target, &place, object)?;
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

    /// Wraps the data key with `key` and keeps the envelope on the server.
    pub(super) fn rekey(&mut self, key: &Key) -> Result<()> {
        let Some(crypt) = &self.crypt else {
            return Err(Error::NotEncrypted {
                path: self.target.clone(),
            });
        };
        crypt.rewrap(key, &self.target)?;
        let envelope = envelope_text(crypt);
        let meta = self.keys.meta.clone();
        self.with_retry("rekey", |conn, _| {
            redis::cmd("HSET")
                .arg(&meta)
                .arg("enc")
                .arg(&envelope)
                .query::<()>(conn)
        })
    }
}
