//! JSON written once and shared: an event or an effect as text, rendered by the engine's thread
//! when the event is applied and then handed as it is to the HTTP reply, the WebSocket feed and
//! the audit journal (no `serde_json::Value` built, cloned and dropped on the way).

use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;

/// One JSON value as text (always a valid JSON value: written by a serializer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonText(Arc<str>);

impl JsonText {
    /// Text the caller vouches is one JSON value (written by a serializer).
    #[must_use]
    pub fn new(text: impl Into<Arc<str>>) -> Self {
        Self(text.into())
    }

    /// The text of any serializable value.
    #[must_use]
    pub fn of<T: Serialize>(value: &T) -> Self {
        Self::new(serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned()))
    }

    /// An effect of event `seq`, with the bytes `solvent replay` writes for it (keys in
    /// alphabetical order; `Effect::write_json_line`): the audit file's bytes too
    /// ([`solvent_store::outcome::effect_line`]).
    #[must_use]
    pub fn of_effect(
        effect: &solvent_engine::effect::Effect,
        seq: u64,
        buffer: &mut Vec<u8>,
    ) -> Self {
        Self(solvent_store::outcome::effect_line(effect, seq, buffer))
    }

    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The shared text.
    #[must_use]
    pub fn shared(&self) -> Arc<str> {
        Arc::clone(&self.0)
    }

    /// The value, parsed.
    #[must_use]
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_str(&self.0).unwrap_or(serde_json::Value::Null)
    }

    /// Appends the object with one more string field at its end (`{..., "key": "value"}`) to
    /// `out`; the text itself when it is no object. The feed stamps an effect with its event's
    /// time so, when a subscriber first needs it, written into the frame without a copy.
    pub fn write_with_field(&self, key: &str, value: &str, out: &mut String) {
        out.push_str(&self.0);
        if !open_for_one_more_field(out) {
            return;
        }
        let plain = |text: &str| !text.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20);
        if plain(key) && plain(value) {
            // Nothing to escape (a field name and a time stamp, as the service calls it).
            out.push('"');
            out.push_str(key);
            out.push_str(r#"":""#);
            out.push_str(value);
            out.push('"');
        } else {
            out.push_str(&serde_json::to_string(key).unwrap_or_default());
            out.push(':');
            out.push_str(&serde_json::to_string(value).unwrap_or_default());
        }
        out.push('}');
    }
}

/// Adds `"key": value` (`value` already JSON, `key` a plain name) at the end of the JSON object
/// that `object` holds; leaves anything that is not an object as it is.
pub fn push_raw_field(object: &mut String, key: &'static str, value: &str) {
    if !open_for_one_more_field(object) {
        return;
    }
    object.push('"');
    object.push_str(key);
    object.push_str("\":");
    object.push_str(value);
    object.push('}');
}

/// Where `text` ends with a JSON object, takes its closing brace off and puts the separator a
/// further field needs (none in an empty object): `true`. Otherwise leaves it: `false`.
fn open_for_one_more_field(text: &mut String) -> bool {
    if !text.ends_with('}') {
        return false;
    }
    text.pop();
    if !text.trim_end().ends_with('{') {
        text.push(',');
    }
    true
}

impl Serialize for JsonText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw: &RawValue = serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn with_field(text: &JsonText, key: &str, value: &str) -> String {
        let mut out = String::new();
        text.write_with_field(key, value, &mut out);
        out
    }

    #[test]
    fn a_field_is_added_at_the_end_and_the_text_serializes_as_it_is() {
        let text = JsonText::new(r#"{"seq":1,"type":"x"}"#);
        assert_eq!(
            with_field(&text, "ts", "2026-01-01T00:00:00Z"),
            r#"{"seq":1,"type":"x","ts":"2026-01-01T00:00:00Z"}"#
        );
        assert_eq!(with_field(&JsonText::new("{}"), "a", "b"), r#"{"a":"b"}"#);
        assert_eq!(with_field(&JsonText::new("[1]"), "a", "b"), "[1]");
        assert_eq!(
            serde_json::to_string(&vec![text.clone()]).unwrap(),
            format!("[{}]", text.as_str())
        );
        let quoted = with_field(&JsonText::new("{}"), "k", "a\"b");
        assert_eq!(
            JsonText::new(quoted).value(),
            serde_json::json!({"k": "a\"b"})
        );
    }

    #[test]
    fn a_raw_field_goes_at_the_end_of_an_object_and_nowhere_else() {
        let mut text = r#"{"a":1}"#.to_owned();
        push_raw_field(&mut text, "b", r#"[{"c":"}"}]"#);
        assert_eq!(text, r#"{"a":1,"b":[{"c":"}"}]}"#);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["b"][0]["c"], "}");
        let mut empty = "{ }".to_owned();
        push_raw_field(&mut empty, "b", "null");
        assert_eq!(empty, r#"{ "b":null}"#);
        let mut list = "[1]".to_owned();
        push_raw_field(&mut list, "b", "2");
        assert_eq!(list, "[1]");
    }
}
