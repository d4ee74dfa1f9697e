//! The tools as the LLM canister takes them, and the model's arguments as the tools take them.
//!
//! The agent's tools describe their parameters in JSON Schema (`tools::schemas`). The LLM
//! canister's `v1_chat` has flat parameters of type `string`, `number` or `boolean`, and the
//! model's arguments come back as name/value texts. So an `integer` parameter is offered as a
//! `number`, an `array` or `object` one as a `string` holding JSON; and each value is parsed
//! back by its declared type. A value that does not parse is the model's mistake: the call
//! fails with the reason, and the model is told.

use canister_api::llm::{Function, Parameters, Property, Tool, ToolCallArgument};
use serde_json::{Map, Value};

/// One tool's parameters: name -> JSON Schema type.
fn parameter_types(schema: &Value) -> Vec<(String, String)> {
    schema["function"]["parameters"]["properties"]
        .as_object()
        .map(|props| {
            props
                .iter()
                .map(|(name, p)| {
                    (
                        name.clone(),
                        p["type"].as_str().unwrap_or("string").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn llm_type(json_type: &str) -> &'static str {
    match json_type {
        "integer" | "number" => "number",
        "boolean" => "boolean",
        _ => "string",
    }
}

/// The tools of `schemas` (a JSON array in the OpenAI function format) as `v1_chat` tools.
pub fn llm_tools(schemas: &str) -> Vec<Tool> {
    let all: Vec<Value> = serde_json::from_str(schemas).unwrap_or_default();
    all.iter()
        .map(|t| {
            let f = &t["function"];
            let props = f["parameters"]["properties"].as_object();
            let properties: Vec<Property> = props
                .into_iter()
                .flatten()
                .map(|(name, p)| {
                    let json_type = p["type"].as_str().unwrap_or("string");
                    let mut description = p["description"].as_str().unwrap_or("").to_string();
                    if matches!(json_type, "array" | "object") {
                        description = format!("JSON {json_type}. {description}")
                            .trim_end()
                            .to_string();
                    }
                    Property {
                        type_: llm_type(json_type).into(),
                        name: name.clone(),
                        description: (!description.is_empty()).then_some(description),
                        enum_: p["enum"].as_array().map(|v| {
                            v.iter()
                                .filter_map(|e| e.as_str().map(String::from))
                                .collect()
                        }),
                    }
                })
                .collect();
            let required: Vec<String> = f["parameters"]["required"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .filter_map(|n| n.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            Tool::Function(Function {
                name: f["name"].as_str().unwrap_or_default().to_string(),
                description: f["description"].as_str().map(String::from),
                parameters: Some(Parameters {
                    type_: "object".into(),
                    properties: Some(properties),
                    required: (!required.is_empty()).then_some(required),
                }),
            })
        })
        .collect()
}

/// Why the model's call cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallProblem {
    /// No such tool.
    #[error("unknown tool `{name}`; the tools are: {known}")]
    UnknownTool {
        /// The name the model gave.
        name: String,
        /// The tools there are.
        known: String,
    },
    /// An argument does not parse as its declared type.
    #[error("tool `{tool}`: argument `{argument}` must be {expected}: {problem}")]
    BadArgument {
        /// The tool.
        tool: String,
        /// The argument.
        argument: String,
        /// Its declared type.
        expected: String,
        /// What is wrong.
        problem: String,
    },
    /// The same argument twice.
    #[error("tool `{tool}`: argument `{argument}` given twice")]
    Duplicate {
        /// The tool.
        tool: String,
        /// The argument.
        argument: String,
    },
    /// Too long to keep.
    #[error("tool `{tool}`: arguments of {bytes} bytes, over {max}")]
    TooLong {
        /// The tool.
        tool: String,
        /// Their size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
}

/// Most bytes of one call's arguments (as JSON).
pub const MAX_ARGUMENT_BYTES: usize = 8 * 1024;

/// The model's arguments for tool `name` as the JSON object the tool parses. An argument the
/// tool does not declare is passed as a string, so that the tool's own parser names it.
pub fn arguments_json(
    schemas: &str,
    name: &str,
    args: &[ToolCallArgument],
) -> Result<String, CallProblem> {
    let all: Vec<Value> = serde_json::from_str(schemas).unwrap_or_default();
    let Some(schema) = all.iter().find(|t| t["function"]["name"] == name) else {
        return Err(CallProblem::UnknownTool {
            name: name.to_string(),
            known: all
                .iter()
                .filter_map(|t| t["function"]["name"].as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    let types = parameter_types(schema);
    let mut object = Map::new();
    for arg in args {
        let declared = types
            .iter()
            .find(|(n, _)| *n == arg.name)
            .map(|(_, t)| t.as_str());
        let bad = |expected: &str, problem: String| CallProblem::BadArgument {
            tool: name.into(),
            argument: arg.name.clone(),
            expected: expected.into(),
            problem,
        };
        let value = match declared {
            None | Some("string") => Value::String(arg.value.clone()),
            Some(t @ ("integer" | "number" | "boolean" | "array" | "object")) => {
                let v: Value = serde_json::from_str(arg.value.trim())
                    .map_err(|e| bad(&format!("JSON of type {t}"), e.to_string()))?;
                let fits = match t {
                    "integer" => v.is_i64() || v.is_u64(),
                    "number" => v.is_number(),
                    "boolean" => v.is_boolean(),
                    "array" => v.is_array(),
                    _ => v.is_object(),
                };
                if !fits {
                    return Err(bad(
                        t,
                        format!("got `{}`", crate::text::cut(&arg.value, 80)),
                    ));
                }
                v
            }
            Some(_) => Value::String(arg.value.clone()),
        };
        if object.insert(arg.name.clone(), value).is_some() {
            return Err(CallProblem::Duplicate {
                tool: name.into(),
                argument: arg.name.clone(),
            });
        }
    }
    let json = Value::Object(object).to_string();
    if json.len() > MAX_ARGUMENT_BYTES {
        return Err(CallProblem::TooLong {
            tool: name.into(),
            bytes: json.len(),
            max: MAX_ARGUMENT_BYTES,
        });
    }
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(name: &str, value: &str) -> ToolCallArgument {
        ToolCallArgument {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn every_tool_is_offered_with_flat_parameters() {
        let tools = llm_tools(&crate::tools::schemas());
        let names: Vec<&str> = tools
            .iter()
            .map(|Tool::Function(f)| f.name.as_str())
            .collect();
        assert_eq!(names, crate::tools::NAMES.to_vec());
        let Tool::Function(upgrade) = &tools[3];
        let params = upgrade.parameters.as_ref().unwrap();
        let ops = params
            .properties
            .as_ref()
            .unwrap()
            .iter()
            .find(|p| p.name == "ops")
            .unwrap();
        assert_eq!(ops.type_, "string", "an array is offered as JSON text");
        assert!(ops.description.as_ref().unwrap().starts_with("JSON array"));
        assert_eq!(params.required, Some(vec!["ops".into(), "reason".into()]));
    }

    #[test]
    fn arguments_are_parsed_by_their_declared_type() {
        let schemas = crate::tools::schemas();
        let json = arguments_json(
            &schemas,
            "self_upgrade",
            &[
                arg("ops", r#"[{"op":"remove_method","name":"x"}]"#),
                arg("reason", "tidy"),
            ],
        )
        .unwrap();
        let v: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["ops"][0]["op"], "remove_method");
        assert_eq!(v["reason"], "tidy");
        assert_eq!(
            arguments_json(&schemas, "upgrade_status", &[arg("id", "3")]).unwrap(),
            r#"{"id":3}"#
        );
    }

    #[test]
    fn the_models_mistakes_are_named() {
        let schemas = crate::tools::schemas();
        assert!(matches!(
            arguments_json(&schemas, "fly", &[]),
            Err(CallProblem::UnknownTool { .. })
        ));
        let e = arguments_json(&schemas, "self_upgrade", &[arg("ops", "[{not json")]);
        assert!(
            matches!(&e, Err(CallProblem::BadArgument { argument, .. }) if argument == "ops"),
            "{e:?}"
        );
        assert!(matches!(
            arguments_json(&schemas, "upgrade_status", &[arg("id", "\"x\"")]),
            Err(CallProblem::BadArgument { .. })
        ));
        assert!(matches!(
            arguments_json(&schemas, "recall", &[arg("key", "a"), arg("key", "b")]),
            Err(CallProblem::Duplicate { .. })
        ));
        let huge = "x".repeat(MAX_ARGUMENT_BYTES);
        assert!(matches!(
            arguments_json(&schemas, "recall", &[arg("key", &huge)]),
            Err(CallProblem::TooLong { .. })
        ));
    }
}
