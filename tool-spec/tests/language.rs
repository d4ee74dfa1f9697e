//! The language end to end: the sample specs check and pass their examples in both back ends;
//! every kind of spec error comes back with the JSON path at fault; faults are the same in
//! both back ends and carry their path.

mod common;
use common::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tool_spec::examples::{self, judge};
use tool_spec::{Fault, check};

const SAMPLES: &[&str] = &[
    "tally_vote",
    "word_stats",
    "weighted_score",
    "inventory",
    "amortize",
];

#[test]
fn the_samples_check_and_pass_their_examples_interpreted_and_compiled() {
    let harness = Harness::new();
    for name in SAMPLES {
        let spec = checked(name);
        examples::check_all_steps(&spec).unwrap_or_else(|e| panic!("{e}"));
        if *name == "inventory" {
            assert_eq!(spec.nodes(), 61, "the benchmark's tool");
        }
        for (i, example) in spec.examples.iter().enumerate() {
            let outcome = harness.example(&spec, example);
            judge(&spec, example, &outcome)
                .unwrap_or_else(|why| panic!("{name} example {i}, compiled: {why}"));
        }
    }
}

/// `tally_vote` with `edit` applied to its JSON.
fn tally(edit: impl FnOnce(&mut Value)) -> Value {
    let mut v = spec_file("tally_vote");
    edit(&mut v);
    v
}

fn error_of(spec: &Value) -> String {
    match check(spec, &|n| {
        (n == "greet").then(|| "a method of the agent".to_string())
    }) {
        Ok(_) => panic!("the spec checked: {spec}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn spec_errors_name_the_path_at_fault() {
    let cases: Vec<(Value, &str)> = vec![
        (
            tally(|v| v["body"]["in"]["do"][1]["object"]["votes"] = json!({"var": "m"})),
            "body.in.do[1].object.votes.var: unknown variable `m` (in scope: n)",
        ),
        (
            tally(|v| v["body"]["value"]["add"][1] = json!("1")),
            "body.value.add[1]: type mismatch: expected int, found string",
        ),
        (
            tally(|v| {
                v["body"]["value"]["add"][0]["parse_int"]["fact_get"] = json!({"arg": "opt"})
            }),
            "body.value.add[0].parse_int.fact_get.arg: unknown argument `opt` (parameters: option)",
        ),
        (
            tally(|v| v["name"] = json!("remember")),
            "name: the name `remember` collides with a built-in tool of the agent",
        ),
        (
            tally(|v| v["name"] = json!("greet")),
            "name: the name `greet` collides with a method of the agent",
        ),
        (
            tally(|v| v["name"] = json!("Tally")),
            "name: invalid name `Tally`: 1-40 of a-z, 0-9 and _, starting with a letter",
        ),
        (
            tally(|v| {
                v["parameters"]["properties"]["list"] =
                    json!({"type": "array", "items": {"type": "string"}});
                v["parameters"]["required"] = json!(["option", "list"]);
            }),
            "parameters.properties.list: missing bound: array parameter `list` needs `maxItems` (at most 100): loops run over bounded lists only",
        ),
        (
            tally(|v| v["body"] = json!({"fact_keys": "", "limit": 1000})),
            "body.limit: missing bound: `limit` is a literal integer from 1 to 100, found 1000",
        ),
        (
            tally(
                |v| v["body"] = json!({"for_each": {"arg": "option"}, "as": "x", "acc": "a", "init": 0, "step": 1}),
            ),
            "body.for_each: type mismatch: expected list (an array parameter, which has `maxItems`, or `fact_keys`, which has `limit`: loops run over bounded lists only), found string",
        ),
        (
            tally(|v| v["body"] = json!({"plus": [1, 2]})),
            "body: not an expression: an object needs exactly one operator key",
        ),
        (
            tally(|v| v["body"] = json!({"add": [1, 2], "value": 3})),
            "body.value: unknown field `value` (allowed here: add)",
        ),
        (
            tally(|v| v["body"] = json!([1, 2])),
            "body: a bare array is not an expression",
        ),
        (
            tally(|v| v["body"] = json!({"format": "{} and {}", "with": [1]})),
            "body: the template has 2 `{}` placeholder(s) but `with` has 1 value(s)",
        ),
        (
            tally(|v| v["body"] = json!({"format": "a } b"})),
            "body.format: a lone `}` at character 2 of the template",
        ),
        (
            tally(|v| v["body"] = json!(1.5)),
            "body: 1.5 is not an integer that fits 64 bits",
        ),
        (
            tally(|v| v["examples"] = json!([])),
            "examples: a tool has 1 to 16 examples (found 0)",
        ),
        (
            tally(|v| v["examples"][0]["args"] = json!({"option": 7})),
            "examples[0].args.option: expected a string, found an integer",
        ),
        (
            tally(|v| v["examples"][0]["error"] = json!("overflow")),
            "examples[0]: an example has exactly one of `result`",
        ),
        (
            tally(|v| v["colour"] = json!("red")),
            "colour: unknown field `colour`",
        ),
        (
            tally(|v| v["parameters"]["properties"]["extra"] = json!({"type": "integer"})),
            "parameters.properties.extra: parameter `extra` is not required, so it needs a `default`",
        ),
        (
            tally(|v| v["quota"] = json!({"instructions": 10_000_000_000u64})),
            "quota.instructions: expected an integer from 100000 to 1000000000",
        ),
    ];
    for (spec, want) in cases {
        let got = error_of(&spec);
        assert!(got.starts_with(want), "\n got: {got}\nwant: {want}");
    }
}

#[test]
fn a_failing_example_is_reported_with_what_it_got() {
    let spec = tally(|v| v["examples"][0]["result"]["votes"] = json!(2));
    let spec = check(&spec, &|_| None).unwrap();
    let e = examples::check_all_steps(&spec).unwrap_err();
    assert_eq!(e.index, 0);
    assert_eq!(
        e.to_string(),
        r#"tool `tally_vote`: example 0 failed: expected result {"option":"yes","votes":2}, got {"option":"yes","votes":1}"#
    );
}

/// A spec with `body` and one parameter `n` (integer) and `s` (string).
fn with_body(body: Value) -> tool_spec::ToolSpec {
    let spec = json!({
        "name": "probe", "description": "a test",
        "parameters": {"type": "object", "properties": {
            "n": {"type": "integer", "default": 0},
            "s": {"type": "string", "default": ""},
            "l": {"type": "array", "items": {"type": "string"}, "maxItems": 100, "default": []}}},
        "body": body,
        "examples": [{"args": {}, "result": null}],
        "quota": {"fact_bytes": 64}
    });
    check(&spec, &|_| None).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `spec` in both back ends on `args`; they must agree; answers the interpreter's.
fn both(spec: &tool_spec::ToolSpec, args: Value) -> Result<Value, String> {
    let args = spec.parse_args(&args).unwrap();
    let facts = BTreeMap::new();
    let mut overlay = tool_spec::facts::Overlay::new(
        tool_spec::facts::MapStore(facts.clone()),
        spec.quota.fact_bytes,
    );
    let interpreted = tool_spec::interp::run(
        spec,
        &args,
        &mut overlay,
        &mut tool_spec::budget::Steps::new(1000),
    );
    let interpreted = interpreted.map(tool_spec::Val::into_value);
    let (compiled, writes) = Harness::new().run(spec, &args, &facts, 1000);
    let compiled = compiled.map(tool_spec::Val::into_value);
    assert_eq!(interpreted, compiled, "the back ends disagree");
    assert_eq!(
        overlay.into_writes(),
        writes,
        "the back ends wrote differently"
    );
    interpreted.map_err(|f| spec.describe(&f))
}

#[test]
fn faults_are_the_same_in_both_back_ends_and_name_their_path() {
    let spec = with_body(json!({"do": [1, {"add": [{"arg": "n"}, 9223372036854775807i64]}]}));
    assert_eq!(
        both(&spec, json!({"n": 0})),
        Ok(json!(9223372036854775807i64))
    );
    assert_eq!(
        both(&spec, json!({"n": 1})),
        Err("body.do[1]: integer overflow".into())
    );
    let spec = with_body(json!({"rem": [{"arg": "n"}, {"sub": [{"arg": "n"}, {"arg": "n"}]}]}));
    assert_eq!(
        both(&spec, json!({"n": 5})),
        Err("body: division by zero".into())
    );
    let spec = with_body(json!({"mul": [{"arg": "n"}, -1]}));
    assert_eq!(both(&spec, json!({"n": -5})), Ok(json!(5)));
    assert_eq!(
        both(&spec, json!({"n": i64::MIN})),
        Err("body: integer overflow".into())
    );
    let spec = with_body(json!({"div": [{"arg": "n"}, -1]}));
    assert_eq!(
        both(&spec, json!({"n": i64::MIN})),
        Err("body: integer overflow".into())
    );
    // The quota (64 bytes) is checked at the write that breaks it; nothing is written.
    let spec = with_body(json!({"do": [
        {"fact_put": "a", "value": "x"},
        {"fact_put": "b", "value": {"arg": "s"}}]}));
    assert_eq!(both(&spec, json!({"s": "short"})), Ok(json!(false)));
    assert_eq!(
        both(&spec, json!({"s": "x".repeat(70)})),
        Err("body.do[1]: the tool's facts would hold 73 bytes, over its quota of 64 bytes".into())
    );
    // A fold that outgrows the string limit.
    let spec = with_body(
        json!({"for_each": {"arg": "l"}, "as": "x", "acc": "a", "init": {"arg": "s"},
        "step": {"concat": [{"var": "a"}, {"var": "a"}]}}),
    );
    let l: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    let err = both(&spec, json!({"s": "0123456789", "l": l})).unwrap_err();
    assert!(
        err.starts_with("body.step: a string of 81920 bytes"),
        "{err}"
    );
    // The budget (1000 steps): 20 x 20 x 20 iterations do not fit.
    let spec = with_body(
        json!({"for_each": {"arg": "l"}, "as": "x", "acc": "a", "init": 0,
        "step": {"for_each": {"arg": "l"}, "as": "y", "acc": "b", "init": {"var": "a"},
            "step": {"for_each": {"arg": "l"}, "as": "z", "acc": "c", "init": {"var": "b"},
                "step": {"add": [{"var": "c"}, 1]}}}}),
    );
    assert_eq!(both(&spec, json!({"l": ["a", "b", "c"]})), Ok(json!(27)));
    let err = both(&spec, json!({"l": l})).unwrap_err();
    assert!(
        err.ends_with("the call used up its instruction budget of 1000"),
        "{err}"
    );
}

#[test]
fn values_mean_the_same_in_both_back_ends() {
    let cases = [
        (json!({"slice": ["héllo wörld", 1, 4]}), json!("éll")),
        (json!({"length": "héllo"}), json!(5)),
        (
            json!({"format": "{{{}}} = {}", "with": [true, -3]}),
            json!("{true} = -3"),
        ),
        (json!({"parse_int": "-42", "default": 0}), json!(-42)),
        (json!({"parse_int": "4 2", "default": 7}), json!(7)),
        (json!({"lt": ["apple", "apricot"]}), json!(true)),
        (
            json!({"and": [true, {"or": [false, false]}, true]}),
            json!(false),
        ),
        (
            json!({"if": {"eq": [1, 1]}, "then": 1, "else": "one"}),
            json!(1),
        ),
        (
            json!({"map": {"fact_keys": "", "limit": 5}, "as": "k", "to": {"var": "k"}}),
            json!([]),
        ),
        (
            json!({"array": [null, {"not": true}, {"concat": ["a", "b", "c"]}, {"to_string": 12}]}),
            json!([null, false, "abc", "12"]),
        ),
        (
            json!({"do": [{"fact_put": "k", "value": "v"}, {"fact_put": "k", "value": "w"}]}),
            json!(true),
        ),
        (
            json!({"do": [{"fact_put": "b", "value": "1"}, {"fact_put": "a", "value": "2"},
                          {"fact_delete": "b"}, {"fact_keys": "", "limit": 10}]}),
            json!(["a"]),
        ),
    ];
    for (body, want) in cases {
        let spec = with_body(body.clone());
        assert_eq!(both(&spec, json!({})), Ok(want), "{body}");
    }
}

#[test]
fn a_bad_key_is_a_fault_not_a_crash() {
    let spec = with_body(json!({"fact_get": {"arg": "s"}, "default": "none"}));
    assert_eq!(both(&spec, json!({"s": "k"})), Ok(json!("none")));
    assert_eq!(
        both(&spec, json!({"s": ""})),
        Err("body: a fact key must be 1..=256 bytes (a prefix at most 256); this one is 0".into())
    );
    assert_eq!(
        Fault::InvalidKey { len: 0 }.code(),
        "invalid_key",
        "examples name faults by code"
    );
}

#[test]
fn arguments_are_checked_against_the_parameters() {
    let spec = checked("word_stats");
    let err = |args: Value| spec.parse_args(&args).unwrap_err().to_string();
    assert_eq!(
        err(json!({"words": ["a"], "colour": 1})),
        "args.colour: unknown field `colour` (allowed here: label, words)"
    );
    assert_eq!(err(json!({})), "args: missing field `words`");
    assert_eq!(
        err(json!({"words": vec!["w"; 101]})),
        "args.words: the number of items of `words` is 101, over the limit of 100"
    );
    assert_eq!(
        err(json!({"words": ["x".repeat(65)]})),
        "args.words[0]: the length of `words` in characters is 65, over the limit of 64"
    );
    assert_eq!(
        spec.parse_args(&json!({"words": []})).unwrap()[0],
        tool_spec::Val::Str("words".into()),
        "the default fills in"
    );
}

#[test]
fn the_schema_is_what_a_model_reads() {
    let spec = checked("tally_vote");
    assert_eq!(
        spec.schema(),
        json!({"type": "function", "function": {
            "name": "tally_vote",
            "description": "Count one vote for an option and answer the option's new tally.",
            "parameters": {"type": "object",
                "properties": {"option": {"type": "string", "description": "what the vote is for", "maxLength": 32}},
                "required": ["option"], "additionalProperties": false}}})
    );
}
