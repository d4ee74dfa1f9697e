//! Run-time values and every operation on them that can fail or that has a subtle meaning.
//! The interpreter and the host ABI call these same functions, so the two back ends agree by
//! construction; only control flow and integer arithmetic are compiled to Wasm instructions,
//! and the differential test checks those against [`add`] and friends.

use crate::error::Fault;
use crate::limits::{MAX_JSON_NODES, MAX_STRING};
use serde_json::Value;

/// A value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// `int`
    Int(i64),
    /// `bool`
    Bool(bool),
    /// `string`
    Str(String),
    /// `list`
    List(Vec<String>),
    /// `json`
    Json(Json),
}

/// A JSON value with its node count (so a bound is checked without walking it).
#[derive(Debug, Clone, PartialEq)]
pub struct Json {
    /// The value.
    pub value: Value,
    /// Its nodes: 1 for a scalar, 1 plus the children's for an array or object.
    pub nodes: u32,
}

impl Json {
    /// `null`.
    pub fn null() -> Self {
        Self::scalar(Value::Null)
    }

    fn scalar(value: Value) -> Self {
        Self { value, nodes: 1 }
    }

    /// An empty object.
    pub fn object() -> Self {
        Self::scalar(Value::Object(Default::default()))
    }

    /// An empty array.
    pub fn array() -> Self {
        Self::scalar(Value::Array(vec![]))
    }
}

impl Val {
    /// The value as JSON: ints are numbers, lists arrays of strings.
    pub fn to_json(&self) -> Json {
        match self {
            Val::Int(i) => Json::scalar(Value::from(*i)),
            Val::Bool(b) => Json::scalar(Value::Bool(*b)),
            Val::Str(s) => Json::scalar(Value::String(s.clone())),
            Val::List(items) => Json {
                value: Value::Array(items.iter().cloned().map(Value::String).collect()),
                nodes: 1 + items.len() as u32,
            },
            Val::Json(j) => j.clone(),
        }
    }

    /// The value as a plain JSON value.
    pub fn into_value(self) -> Value {
        match self {
            Val::Json(j) => j.value,
            other => other.to_json().value,
        }
    }
}

fn too_long(len: usize) -> Result<(), Fault> {
    if len > MAX_STRING {
        return Err(Fault::StringTooLong { len: len as u64 });
    }
    Ok(())
}

/// `a` followed by `b`.
pub fn concat(a: &str, b: &str) -> Result<String, Fault> {
    too_long(a.len() + b.len())?;
    let mut out = String::with_capacity(a.len() + b.len());
    out.push_str(a);
    out.push_str(b);
    Ok(out)
}

/// Length in characters (Unicode scalar values).
pub fn length(s: &str) -> i64 {
    s.chars().count() as i64
}

/// Characters `from..to`, both clamped to `0..=length` (and `to` to at least `from`).
pub fn slice(s: &str, from: i64, to: i64) -> String {
    let n = length(s);
    let from = from.clamp(0, n);
    let to = to.clamp(from, n);
    s.chars()
        .skip(from as usize)
        .take((to - from) as usize)
        .collect()
}

/// The integer `s` spells (Rust's `i64::from_str`: optional sign, decimal digits), else
/// `default`.
pub fn parse_int(s: &str, default: i64) -> i64 {
    s.parse().unwrap_or(default)
}

/// Decimal text.
pub fn int_to_string(i: i64) -> String {
    i.to_string()
}

/// `true` or `false`.
pub fn bool_to_string(b: bool) -> String {
    b.to_string()
}

/// Checked `a + b`.
pub fn add(a: i64, b: i64) -> Result<i64, Fault> {
    a.checked_add(b).ok_or(Fault::Overflow)
}

/// Checked `a - b`.
pub fn sub(a: i64, b: i64) -> Result<i64, Fault> {
    a.checked_sub(b).ok_or(Fault::Overflow)
}

/// Checked `a * b`.
pub fn mul(a: i64, b: i64) -> Result<i64, Fault> {
    a.checked_mul(b).ok_or(Fault::Overflow)
}

/// Truncating `a / b`.
pub fn div(a: i64, b: i64) -> Result<i64, Fault> {
    if b == 0 {
        return Err(Fault::DivisionByZero);
    }
    a.checked_div(b).ok_or(Fault::Overflow)
}

/// `a % b` with the sign of `a`; `i64::MIN % -1` overflows (as Rust's `checked_rem` says).
pub fn rem(a: i64, b: i64) -> Result<i64, Fault> {
    if b == 0 {
        return Err(Fault::DivisionByZero);
    }
    a.checked_rem(b).ok_or(Fault::Overflow)
}

fn grown(nodes: u32, child: u32) -> Result<u32, Fault> {
    let total = u64::from(nodes) + u64::from(child);
    if total > u64::from(MAX_JSON_NODES) {
        return Err(Fault::ValueTooLarge { nodes: total });
    }
    Ok(total as u32)
}

/// Sets `key` in the object `obj` (replacing; keys are unique in a spec's `object`).
pub fn object_set(obj: &mut Json, key: String, v: Json) -> Result<(), Fault> {
    let Value::Object(map) = &mut obj.value else {
        return Err(Fault::AbiMisuse(
            "json_set on a value that is not an object".into(),
        ));
    };
    obj.nodes = grown(obj.nodes, v.nodes)?;
    map.insert(key, v.value);
    Ok(())
}

/// Appends `v` to the array `arr`.
pub fn array_push(arr: &mut Json, v: Json) -> Result<(), Fault> {
    let Value::Array(items) = &mut arr.value else {
        return Err(Fault::AbiMisuse(
            "json_push on a value that is not an array".into(),
        ));
    };
    arr.nodes = grown(arr.nodes, v.nodes)?;
    items.push(v.value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_clamp_in_characters() {
        assert_eq!(slice("héllo", 1, 3), "él");
        assert_eq!(slice("abc", -5, 2), "ab");
        assert_eq!(slice("abc", 2, 1), "");
        assert_eq!(slice("abc", 1, 99), "bc");
        assert_eq!(length("héllo"), 5);
    }

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(add(i64::MAX, 1), Err(Fault::Overflow));
        assert_eq!(rem(i64::MIN, -1), Err(Fault::Overflow));
        assert_eq!(div(1, 0), Err(Fault::DivisionByZero));
        assert_eq!(rem(-7, 2), Ok(-1));
        assert_eq!(parse_int("+12", 0), 12);
        assert_eq!(parse_int(" 12", 7), 7);
    }

    #[test]
    fn bounds_hold() {
        let long = "x".repeat(MAX_STRING);
        assert!(concat(&long, "").is_ok());
        assert_eq!(
            concat(&long, "y"),
            Err(Fault::StringTooLong {
                len: MAX_STRING as u64 + 1
            })
        );
        let mut arr = Json::array();
        let big = Val::List(vec!["a".into(); 99]).to_json();
        for _ in 0..99 {
            array_push(&mut arr, big.clone()).unwrap();
        }
        assert!(matches!(
            array_push(&mut arr, big),
            Err(Fault::ValueTooLarge { nodes: 10_001 })
        ));
    }
}
