//! Parameters (the JSON Schema subset of a spec) and the arguments of a call checked against
//! them. The same checks apply to a call's `args`, an example's `args` and a `default`.

use crate::ast::Type;
use crate::error::{SpecError, SpecErrorKind};
use crate::limits::{MAX_IDENT, MAX_LIST, MAX_PARAMS, MAX_STRING};
use crate::value::Val;
use crate::walk::{allow_fields, field, idx, join, kind_name, object, string};
use serde_json::{Map, Value, json};

/// A parameter's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// `{"type": "string"}`
    String,
    /// `{"type": "integer"}`
    Integer,
    /// `{"type": "boolean"}`
    Boolean,
    /// `{"type": "array", "items": {"type": "string"}}`
    StringArray,
}

impl ParamKind {
    /// The type `{"arg": ...}` has.
    pub fn ty(self) -> Type {
        match self {
            ParamKind::String => Type::Str,
            ParamKind::Integer => Type::Int,
            ParamKind::Boolean => Type::Bool,
            ParamKind::StringArray => Type::List,
        }
    }
}

/// One parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Its name.
    pub name: String,
    /// Its type.
    pub kind: ParamKind,
    /// What it is, for the model.
    pub description: Option<String>,
    /// Whether a call must give it.
    pub required: bool,
    /// The value of an omitted optional parameter.
    pub default: Option<Val>,
    /// Most characters of a string (or of each item of an array).
    pub max_length: Option<u64>,
    /// Smallest integer.
    pub minimum: Option<i64>,
    /// Largest integer.
    pub maximum: Option<i64>,
    /// Most items of an array (required for arrays).
    pub max_items: Option<u64>,
}

pub(crate) fn check_ident(name: &str, path: &str) -> Result<(), SpecError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_IDENT
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        return Err(SpecError::new(
            path,
            SpecErrorKind::InvalidName {
                name: name.to_string(),
                rule: "1-32 of a-z, 0-9 and _, not starting with a digit",
            },
        ));
    }
    Ok(())
}

fn uint(v: &Value, path: &str, what: &str, min: u64, max: u64) -> Result<u64, SpecError> {
    let Some(n) = v.as_u64() else {
        return Err(SpecError::new(
            path,
            SpecErrorKind::WrongJson {
                expected: "a non-negative integer",
                found: kind_name(v),
            },
        ));
    };
    if n > max {
        return Err(SpecError::new(
            path,
            SpecErrorKind::OverLimit {
                what: what.to_string(),
                value: n,
                limit: max,
            },
        ));
    }
    if n < min {
        return Err(SpecError::new(
            path,
            SpecErrorKind::UnderMinimum {
                what: what.to_string(),
                value: n as i64,
                min: min as i64,
            },
        ));
    }
    Ok(n)
}

fn int(v: &Value, path: &str) -> Result<i64, SpecError> {
    v.as_i64().ok_or_else(|| {
        SpecError::new(
            path,
            SpecErrorKind::WrongJson {
                expected: "an integer that fits 64 bits",
                found: kind_name(v),
            },
        )
    })
}

/// Parses the `parameters` object.
pub(crate) fn parse_params(v: &Value, path: &str) -> Result<Vec<Param>, SpecError> {
    let map = object(v, path)?;
    allow_fields(
        map,
        path,
        &["type", "properties", "required", "additionalProperties"],
    )?;
    if string(field(map, path, "type")?, &join(path, "type"))? != "object" {
        return Err(SpecError::new(
            &join(path, "type"),
            SpecErrorKind::Invalid("the parameters are an object: `\"type\": \"object\"`".into()),
        ));
    }
    if let Some(extra) = map.get("additionalProperties")
        && extra != &Value::Bool(false)
    {
        return Err(SpecError::new(
            &join(path, "additionalProperties"),
            SpecErrorKind::Invalid("only `false` is allowed: unknown arguments are refused".into()),
        ));
    }
    let props_path = join(path, "properties");
    let props = object(field(map, path, "properties")?, &props_path)?;
    if props.len() > MAX_PARAMS {
        return Err(SpecError::new(
            &props_path,
            SpecErrorKind::OverLimit {
                what: "the number of parameters".into(),
                value: props.len() as u64,
                limit: MAX_PARAMS as u64,
            },
        ));
    }
    let mut required = Vec::new();
    if let Some(list) = map.get("required") {
        let req_path = join(path, "required");
        let Value::Array(items) = list else {
            return Err(SpecError::new(
                &req_path,
                SpecErrorKind::WrongJson {
                    expected: "an array of parameter names",
                    found: kind_name(list),
                },
            ));
        };
        for (i, item) in items.iter().enumerate() {
            let name = string(item, &idx(&req_path, i))?;
            if !props.contains_key(name) {
                return Err(SpecError::new(
                    &idx(&req_path, i),
                    SpecErrorKind::UnknownArgument {
                        name: name.to_string(),
                        params: names(props),
                    },
                ));
            }
            required.push(name.to_string());
        }
    }
    props
        .iter()
        .map(|(name, schema)| {
            let p = join(&props_path, name);
            check_ident(name, &p)?;
            parse_param(name, schema, &p, required.contains(name))
        })
        .collect()
}

fn names(props: &Map<String, Value>) -> String {
    let list: Vec<&str> = props.keys().map(String::as_str).collect();
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

fn parse_param(name: &str, v: &Value, path: &str, required: bool) -> Result<Param, SpecError> {
    let map = object(v, path)?;
    let ty = string(field(map, path, "type")?, &join(path, "type"))?;
    let (kind, allowed): (ParamKind, &[&str]) = match ty {
        "string" => (
            ParamKind::String,
            &["type", "description", "maxLength", "default"],
        ),
        "integer" => (
            ParamKind::Integer,
            &["type", "description", "minimum", "maximum", "default"],
        ),
        "boolean" => (ParamKind::Boolean, &["type", "description", "default"]),
        "array" => (
            ParamKind::StringArray,
            &["type", "description", "items", "maxItems", "default"],
        ),
        other => {
            return Err(SpecError::new(
                &join(path, "type"),
                SpecErrorKind::Invalid(format!(
                    "parameter type `{other}` is not supported: use string, integer, boolean or array (of strings)"
                )),
            ));
        }
    };
    allow_fields(map, path, allowed)?;
    let mut param = Param {
        name: name.to_string(),
        kind,
        description: match map.get("description") {
            Some(d) => Some(string(d, &join(path, "description"))?.to_string()),
            None => None,
        },
        required,
        default: None,
        max_length: None,
        minimum: None,
        maximum: None,
        max_items: None,
    };
    if let Some(v) = map.get("maxLength") {
        param.max_length = Some(uint(
            v,
            &join(path, "maxLength"),
            "maxLength",
            1,
            MAX_STRING as u64,
        )?);
    }
    if let Some(v) = map.get("minimum") {
        param.minimum = Some(int(v, &join(path, "minimum"))?);
    }
    if let Some(v) = map.get("maximum") {
        param.maximum = Some(int(v, &join(path, "maximum"))?);
    }
    if let (Some(min), Some(max)) = (param.minimum, param.maximum)
        && min > max
    {
        return Err(SpecError::new(
            path,
            SpecErrorKind::Invalid(format!("minimum {min} is over maximum {max}")),
        ));
    }
    if kind == ParamKind::StringArray {
        let items_path = join(path, "items");
        let items = object(field(map, path, "items")?, &items_path)?;
        allow_fields(items, &items_path, &["type", "maxLength"])?;
        if string(
            field(items, &items_path, "type")?,
            &join(&items_path, "type"),
        )? != "string"
        {
            return Err(SpecError::new(
                &join(&items_path, "type"),
                SpecErrorKind::Invalid("array items are strings: `\"type\": \"string\"`".into()),
            ));
        }
        if let Some(v) = items.get("maxLength") {
            param.max_length = Some(uint(
                v,
                &join(&items_path, "maxLength"),
                "maxLength",
                1,
                MAX_STRING as u64,
            )?);
        }
        let Some(max_items) = map.get("maxItems") else {
            return Err(SpecError::new(
                path,
                SpecErrorKind::MissingBound {
                    what: format!(
                        "array parameter `{name}` needs `maxItems` (at most {MAX_LIST}): loops run over bounded lists only"
                    ),
                },
            ));
        };
        param.max_items = Some(uint(
            max_items,
            &join(path, "maxItems"),
            "maxItems",
            1,
            u64::from(MAX_LIST),
        )?);
    }
    match map.get("default") {
        Some(d) => param.default = Some(check_value(&param, d, &join(path, "default"))?),
        None if !required => {
            return Err(SpecError::new(
                path,
                SpecErrorKind::Invalid(format!(
                    "parameter `{name}` is not required, so it needs a `default`"
                )),
            ));
        }
        None => {}
    }
    Ok(param)
}

fn wrong(path: &str, expected: &'static str, v: &Value) -> SpecError {
    SpecError::new(
        path,
        SpecErrorKind::WrongJson {
            expected,
            found: kind_name(v),
        },
    )
}

fn check_len(param: &Param, s: &str, path: &str) -> Result<(), SpecError> {
    let chars = s.chars().count() as u64;
    let limit = param.max_length.unwrap_or(MAX_STRING as u64);
    if chars > limit || s.len() > MAX_STRING {
        return Err(SpecError::new(
            path,
            SpecErrorKind::OverLimit {
                what: format!("the length of `{}` in characters", param.name),
                value: chars,
                limit,
            },
        ));
    }
    Ok(())
}

/// `v` as a value of `param`.
pub fn check_value(param: &Param, v: &Value, path: &str) -> Result<Val, SpecError> {
    match param.kind {
        ParamKind::String => {
            let s = v.as_str().ok_or_else(|| wrong(path, "a string", v))?;
            check_len(param, s, path)?;
            Ok(Val::Str(s.to_string()))
        }
        ParamKind::Integer => {
            let i = v
                .as_i64()
                .ok_or_else(|| wrong(path, "an integer that fits 64 bits", v))?;
            if let Some(max) = param.maximum
                && i > max
            {
                return Err(SpecError::new(
                    path,
                    SpecErrorKind::Invalid(format!("{i} is over the maximum {max}")),
                ));
            }
            if let Some(min) = param.minimum
                && i < min
            {
                return Err(SpecError::new(
                    path,
                    SpecErrorKind::UnderMinimum {
                        what: format!("`{}`", param.name),
                        value: i,
                        min,
                    },
                ));
            }
            Ok(Val::Int(i))
        }
        ParamKind::Boolean => Ok(Val::Bool(
            v.as_bool().ok_or_else(|| wrong(path, "a boolean", v))?,
        )),
        ParamKind::StringArray => {
            let items = v
                .as_array()
                .ok_or_else(|| wrong(path, "an array of strings", v))?;
            let limit = param.max_items.unwrap_or(u64::from(MAX_LIST));
            if items.len() as u64 > limit {
                return Err(SpecError::new(
                    path,
                    SpecErrorKind::OverLimit {
                        what: format!("the number of items of `{}`", param.name),
                        value: items.len() as u64,
                        limit,
                    },
                ));
            }
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let p = idx(path, i);
                let s = item.as_str().ok_or_else(|| wrong(&p, "a string", item))?;
                check_len(param, s, &p)?;
                out.push(s.to_string());
            }
            Ok(Val::List(out))
        }
    }
}

/// The arguments of a call (a JSON object, or `null` for none), in parameter order, defaults
/// filled in. Errors name `PATH.NAME`.
pub fn parse_args(params: &[Param], args: &Value, path: &str) -> Result<Vec<Val>, SpecError> {
    let empty = Map::new();
    let map = match args {
        Value::Null => &empty,
        Value::Object(map) => map,
        other => return Err(wrong(path, "an object of arguments", other)),
    };
    for key in map.keys() {
        if !params.iter().any(|p| &p.name == key) {
            let allowed: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
            return Err(SpecError::new(
                &join(path, key),
                SpecErrorKind::UnknownField {
                    field: key.clone(),
                    allowed: if allowed.is_empty() {
                        "none".into()
                    } else {
                        allowed.join(", ")
                    },
                },
            ));
        }
    }
    params
        .iter()
        .map(|p| match map.get(&p.name) {
            Some(v) => check_value(p, v, &join(path, &p.name)),
            None => p.default.clone().ok_or_else(|| {
                SpecError::new(
                    path,
                    SpecErrorKind::MissingField {
                        field: p.name.clone(),
                    },
                )
            }),
        })
        .collect()
}

/// The parameters as the JSON Schema a model reads: the spec's own, normalised, with
/// `additionalProperties: false`.
pub fn schema(params: &[Param]) -> Value {
    let mut props = Map::new();
    for p in params {
        let mut s = Map::new();
        let ty = match p.kind {
            ParamKind::String => "string",
            ParamKind::Integer => "integer",
            ParamKind::Boolean => "boolean",
            ParamKind::StringArray => "array",
        };
        s.insert("type".into(), ty.into());
        if let Some(d) = &p.description {
            s.insert("description".into(), d.clone().into());
        }
        match p.kind {
            ParamKind::StringArray => {
                let mut items = json!({"type": "string"});
                if let Some(n) = p.max_length {
                    items["maxLength"] = n.into();
                }
                s.insert("items".into(), items);
                if let Some(n) = p.max_items {
                    s.insert("maxItems".into(), n.into());
                }
            }
            _ => {
                if let Some(n) = p.max_length {
                    s.insert("maxLength".into(), n.into());
                }
            }
        }
        if let Some(n) = p.minimum {
            s.insert("minimum".into(), n.into());
        }
        if let Some(n) = p.maximum {
            s.insert("maximum".into(), n.into());
        }
        if let Some(d) = &p.default {
            s.insert("default".into(), d.clone().into_value());
        }
        props.insert(p.name.clone(), Value::Object(s));
    }
    let required: Vec<&str> = params
        .iter()
        .filter(|p| p.required)
        .map(|p| p.name.as_str())
        .collect();
    json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
}
