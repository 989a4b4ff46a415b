//! Input errors that name the file, the field and the problem.

use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;

use indexmap::IndexMap;
use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use thiserror::Error;

/// A bad input: which file, which field (a JSON/TOML path such as `positions[2].size`), and what
/// is wrong with it. Nothing is applied when one is returned.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{file}: {path}: {problem}")]
pub struct InputError {
    /// The file (or other origin, such as `--trade`) the input came from.
    pub file: String,
    /// Where in the file: a field path, or `line N` for syntax errors.
    pub path: String,
    /// What is wrong, in words.
    pub problem: String,
}

impl InputError {
    /// An error at `path` in `file`.
    pub fn new(
        file: impl Into<String>,
        path: impl Into<String>,
        problem: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            path: path.into(),
            problem: problem.into(),
        }
    }
}

fn display_path(path: &serde_path_to_error::Path) -> String {
    let text = path.to_string();
    if text == "." || text.is_empty() {
        "(top level)".to_owned()
    } else if text.trim().is_empty() {
        // A blank key (`{" ": ...}`) is a path too: quoted, so the message shows it.
        format!("{text:?}")
    } else {
        text
    }
}

/// Parses JSON text into `T`, naming the field of the first problem.
///
/// # Errors
/// [`InputError`] with the JSON path of the problem, or the line and column of a syntax error.
pub fn from_json_str<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, InputError> {
    if text.trim().is_empty() {
        return Err(InputError::new(file, "(top level)", "the file is empty"));
    }
    // Tracking the path of every value only serves the message of a refused file, and for a
    // portfolio of 10,000 positions it was half the cost of reading it: a valid file is read
    // without it, and a refused one read again with it (the same values, the same error).
    let plain = &mut serde_json::Deserializer::from_str(text);
    if let Ok(value) = T::deserialize(&mut *plain)
        && plain.end().is_ok()
    {
        return Ok(value);
    }
    let deserializer = &mut serde_json::Deserializer::from_str(text);
    let value: T = serde_path_to_error::deserialize(&mut *deserializer).map_err(|error| {
        let path = display_path(error.path());
        let inner = error.into_inner();
        let path = if inner.is_syntax() || inner.is_eof() {
            format!("line {} column {}", inner.line(), inner.column())
        } else {
            path
        };
        InputError::new(file, path, strip_position(&inner.to_string()))
    })?;
    // A file is one document: text after it (`{...} garbage`, a second object pasted in) is a
    // mistake to report, not something to ignore.
    deserializer.end().map_err(|error| {
        InputError::new(
            file,
            format!("line {} column {}", error.line(), error.column()),
            "unexpected text after the end of the JSON document",
        )
    })?;
    Ok(value)
}

/// Parses TOML text into `T`, naming the field of the first problem.
///
/// # Errors
/// [`InputError`] with the TOML path of the problem.
pub fn from_toml_str<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, InputError> {
    let deserializer = toml::Deserializer::parse(text).map_err(|error| {
        InputError::new(
            file,
            toml_span(text, error.span()),
            error.message().to_owned(),
        )
    })?;
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = display_path(error.path());
        let inner = error.into_inner();
        InputError::new(file, path, inner.message().to_owned())
    })
}

fn toml_span(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(range) => {
            let line = text[..range.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}")
        }
        None => "(top level)".to_owned(),
    }
}

/// serde_json appends " at line L column C" to messages; the path already says where.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

/// Deserializes a map, refusing a key written twice (serde's maps keep the last value silently,
/// which would let `{"USDT":"10000","USDT":"5"}` lose a balance without a word).
///
/// # Errors
/// The deserializer's error naming the repeated key.
pub fn unique_map<'de, D, K, V, S>(deserializer: D) -> Result<IndexMap<K, V, S>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Eq + Hash + fmt::Display,
    V: Deserialize<'de>,
    S: BuildHasher + Default,
{
    struct UniqueMap<K, V, S>(PhantomData<(K, V, S)>);

    impl<'de, K, V, S> Visitor<'de> for UniqueMap<K, V, S>
    where
        K: Deserialize<'de> + Eq + Hash + fmt::Display,
        V: Deserialize<'de>,
        S: BuildHasher + Default,
    {
        type Value = IndexMap<K, V, S>;

        fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
            formatter.write_str("an object with distinct keys")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            let mut map = IndexMap::with_capacity_and_hasher(
                access.size_hint().unwrap_or(0).min(1024),
                S::default(),
            );
            while let Some(key) = access.next_key::<K>()? {
                if map.contains_key(&key) {
                    return Err(serde::de::Error::custom(format!(
                        "key \"{key}\" appears twice"
                    )));
                }
                let value = access.next_value()?;
                map.insert(key, value);
            }
            Ok(map)
        }
    }

    deserializer.deserialize_map(UniqueMap(PhantomData))
}
