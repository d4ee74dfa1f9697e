//! Reading a JSON document with a path at hand, so that every error says where.

use crate::error::{SpecError, SpecErrorKind};
use serde_json::{Map, Value};

/// The name of `v`'s JSON kind.
pub(crate) fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a fractional number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `path.key` (or `key` at the root).
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `path[i]`.
pub(crate) fn idx(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

pub(crate) fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, SpecError> {
    v.as_object().ok_or_else(|| {
        SpecError::new(
            path,
            SpecErrorKind::WrongJson {
                expected: "an object",
                found: kind_name(v),
            },
        )
    })
}

pub(crate) fn array<'a>(v: &'a Value, path: &str) -> Result<&'a Vec<Value>, SpecError> {
    v.as_array().ok_or_else(|| {
        SpecError::new(
            path,
            SpecErrorKind::WrongJson {
                expected: "an array",
                found: kind_name(v),
            },
        )
    })
}

pub(crate) fn string<'a>(v: &'a Value, path: &str) -> Result<&'a str, SpecError> {
    v.as_str().ok_or_else(|| {
        SpecError::new(
            path,
            SpecErrorKind::WrongJson {
                expected: "a string",
                found: kind_name(v),
            },
        )
    })
}

/// The field `name` of `map`, which must be there.
pub(crate) fn field<'a>(
    map: &'a Map<String, Value>,
    path: &str,
    name: &str,
) -> Result<&'a Value, SpecError> {
    map.get(name).ok_or_else(|| {
        SpecError::new(
            path,
            SpecErrorKind::MissingField {
                field: name.to_string(),
            },
        )
    })
}

/// Refuses any field of `map` not in `allowed`.
pub(crate) fn allow_fields(
    map: &Map<String, Value>,
    path: &str,
    allowed: &[&str],
) -> Result<(), SpecError> {
    for key in map.keys() {
        if !allowed.contains(&key.as_str()) {
            return Err(SpecError::new(
                &join(path, key),
                SpecErrorKind::UnknownField {
                    field: key.clone(),
                    allowed: allowed.join(", "),
                },
            ));
        }
    }
    Ok(())
}
