//! Answers as JSON text. A plain answer (`graphql::render`) is written as JSON while it is
//! built from its rows and travels through execution as `Value::Binary` holding that text:
//! no field of this schema answers with binary data, so the variant is free to mean it.
//! Building a value tree for a page of 50 customers with 10 activities each, putting it in
//! query order, serialising it and dropping it was half the instructions of a nested read
//! (callgrind); its text is written once instead. Every response leaves through
//! `response_json`, which writes such text as it is.

use async_graphql::{Response, Value};

/// JSON text being written for a plain answer.
pub struct Json(Vec<u8>);

impl Json {
    pub fn new() -> Self {
        // A page of results is kilobytes: growing from empty would copy it a dozen times.
        Self(Vec::with_capacity(4 * 1024))
    }

    /// The answer, to be returned by the field it answers.
    pub fn into_value(self) -> Value {
        Value::Binary(self.0.into())
    }

    pub fn null(&mut self) {
        self.0.extend_from_slice(b"null");
    }

    pub fn bool(&mut self, b: bool) {
        self.0.extend_from_slice(if b { b"true" } else { b"false" });
    }

    pub fn int(&mut self, n: i64) {
        use std::io::Write;
        // Writing into a `Vec` cannot fail.
        let _ = write!(self.0, "{n}");
    }

    pub fn str(&mut self, s: &str) {
        // Writing a `str` into a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut self.0, s);
    }

    pub fn optional_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.str(s),
            None => self.null(),
        }
    }

    /// A value as its type writes it (an enum, a custom scalar).
    pub fn value(&mut self, value: &Value) {
        write_value(&mut self.0, value);
    }

    /// A list of `items`, each written by `item`.
    pub fn list<T>(
        &mut self,
        items: impl IntoIterator<Item = T>,
        mut item: impl FnMut(&mut Self, T),
    ) {
        self.0.push(b'[');
        for (i, it) in items.into_iter().enumerate() {
            if i > 0 {
                self.0.push(b',');
            }
            item(self, it);
        }
        self.0.push(b']');
    }

    /// An object of `parts` (response key, what the key shows), each value written by
    /// `field`; `null` for none, as async-graphql answers an object none of whose fields is
    /// left once `@skip`/`@include` are applied.
    pub fn object<K: AsRef<str>, P>(
        &mut self,
        parts: &[(K, P)],
        mut field: impl FnMut(&mut Self, &P),
    ) {
        if parts.is_empty() {
            return self.null();
        }
        self.0.push(b'{');
        for (i, (key, part)) in parts.iter().enumerate() {
            if i > 0 {
                self.0.push(b',');
            }
            self.str(key.as_ref());
            self.0.push(b':');
            field(self, part);
        }
        self.0.push(b'}');
    }
}

/// The JSON text of a response: `data` (unless `with_data` is false: a request that failed
/// before execution has none, GraphQL spec §7.1.2), then `errors` and `extensions` when it
/// has some.
pub fn response_json(response: &Response, with_data: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 * 1024);
    out.push(b'{');
    let mut first = true;
    let mut key = |out: &mut Vec<u8>, name: &[u8]| {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        out.extend_from_slice(name);
    };
    if with_data {
        key(&mut out, b"\"data\":");
        write_value(&mut out, &response.data);
    }
    // Writing these into a `Vec` cannot fail: they hold no map with non-string keys.
    if !response.errors.is_empty() {
        key(&mut out, b"\"errors\":");
        let _ = serde_json::to_writer(&mut out, &response.errors);
    }
    if !response.extensions.is_empty() {
        key(&mut out, b"\"extensions\":");
        let _ = serde_json::to_writer(&mut out, &response.extensions);
    }
    out.push(b'}');
    out
}

/// `value` as JSON, its plain answers as the text they hold. A response is as deep as its
/// query, whose depth `limits` bounds before it runs.
fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Binary(text) => out.extend_from_slice(text),
        Value::List(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(fields) => {
            out.push(b'{');
            for (i, (key, item)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let _ = serde_json::to_writer(&mut *out, key.as_str());
                out.push(b':');
                write_value(out, item);
            }
            out.push(b'}');
        }
        // Scalars, enums and null as async-graphql writes them.
        other => {
            let _ = serde_json::to_writer(&mut *out, other);
        }
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::indexmap::IndexMap;
    use async_graphql::{Name, Number};

    use super::*;

    #[test]
    fn a_plain_answer_is_written_as_the_text_it_holds() {
        let mut plain = Json::new();
        plain.object(
            &[("name", 1), ("tags", 2), ("none", 3)],
            |out, part| match part {
                1 => out.str("Ada \"the\" first\n"),
                2 => out.list(["a", "b"], |out, tag| out.str(tag)),
                _ => out.null(),
            },
        );
        let mut fields = IndexMap::new();
        fields.insert(Name::new("customer"), plain.into_value());
        fields.insert(Name::new("count"), Value::Number(Number::from(2)));
        let response = Response::new(Value::Object(fields));
        let text = String::from_utf8(response_json(&response, true)).unwrap_or_default();
        assert_eq!(
            text,
            r#"{"data":{"customer":{"name":"Ada \"the\" first\n","tags":["a","b"],"none":null},"count":2}}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(parsed["data"]["customer"]["tags"][1], "b");
    }

    #[test]
    fn an_object_without_fields_is_null() {
        let mut plain = Json::new();
        plain.object::<&str, ()>(&[], |_, ()| {});
        let response = Response::new(plain.into_value());
        assert_eq!(response_json(&response, true), br#"{"data":null}"#);
        assert_eq!(response_json(&response, false), b"{}");
    }
}
