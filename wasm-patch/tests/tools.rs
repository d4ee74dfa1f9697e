//! `add_tool` / `remove_tool` on a module carrying the tool host ABI (built from the ABI table,
//! so it cannot drift), the section-level fast path, and what validation refuses: code that is
//! not what the registry compiles to, a registry that does not match its specs, hooks carrying
//! code without a registry.

use serde_json::{Value, json};
use tool_spec::abi::{self, Ty};
use wasm_patch::{
    PatchError, PatchOp, Stamp, ValidationError, ValidationPolicy, apply_patch, fingerprint,
    validate, validate_patched,
};

/// WAT of a small "agent": every ABI function as a stub export, the two hooks, and a few
/// methods (one of them `greet`).
fn abi_module() -> Vec<u8> {
    let ty = |t: &Ty| match t {
        Ty::I32 => "i32",
        Ty::I64 => "i64",
    };
    let mut wat = String::from("(module\n  (memory 1)\n");
    for f in abi::FUNCTIONS {
        let params: Vec<&str> = f.params.iter().map(ty).collect();
        let results: Vec<&str> = f.results.iter().map(ty).collect();
        let body: Vec<String> = f
            .results
            .iter()
            .map(|t| format!("{}.const 0", ty(t)))
            .collect();
        wat.push_str(&format!(
            "  (func (export \"{}\") (param {}) (result {}) {})\n",
            f.export(),
            params.join(" "),
            results.join(" "),
            body.join(" ")
        ));
    }
    wat.push_str(&format!(
        "  (func (export \"{}\") (param i32) (result i32) i32.const -2)\n",
        abi::DISPATCH
    ));
    wat.push_str(&format!(
        "  (func (export \"{}\") (result i32) i32.const 0)\n",
        abi::REGISTRY
    ));
    wat.push_str(
        "  (func (export \"canister_init\"))\n  (func (export \"canister_query greet\"))\n)\n",
    );
    wat::parse_str(&wat).unwrap()
}

fn stamp() -> Stamp {
    Stamp::new("0.1.0-tools").with_schema_range(1, 3)
}

fn sample(name: &str) -> Value {
    tool_spec::samples::json(name).unwrap()
}

fn add(name: &str) -> PatchOp {
    PatchOp::AddTool { spec: sample(name) }
}

fn patch(wasm: &[u8], ops: &[PatchOp]) -> Result<Vec<u8>, PatchError> {
    apply_patch(wasm, ops, &stamp()).map(|p| p.wasm)
}

fn tools_of(wasm: &[u8]) -> Vec<String> {
    validate(wasm, &ValidationPolicy::default())
        .unwrap_or_else(|e| panic!("the patched module is refused: {e}"))
        .tools
}

#[test]
fn add_tool_compiles_registers_and_validates_on_the_fast_path() {
    let base = abi_module();
    let out = apply_patch(&base, &[add("tally_vote")], &stamp()).unwrap();
    assert!(!out.rebuilt, "add_tool needs no walrus");
    assert_eq!(tools_of(&out.wasm), ["tally_vote"]);
    assert_eq!(fingerprint(&out.wasm).unwrap().tools, ["tally_vote"]);
    let registry = wasm_patch::tool_registry(&out.wasm).unwrap().unwrap();
    assert_eq!(
        registry.tools[0].schema,
        tool_spec::check(&sample("tally_vote"), &|_| None)
            .unwrap()
            .schema()
    );

    // Two more, then one out: the registry keeps order, the removed code goes.
    let three = patch(&out.wasm, &[add("word_stats"), add("weighted_score")]).unwrap();
    assert_eq!(
        tools_of(&three),
        ["tally_vote", "word_stats", "weighted_score"]
    );
    let two = patch(
        &three,
        &[PatchOp::RemoveTool {
            name: "word_stats".into(),
        }],
    )
    .unwrap();
    assert_eq!(tools_of(&two), ["tally_vote", "weighted_score"]);
    let functions = |w: &[u8]| validate(w, &ValidationPolicy::default()).unwrap().functions;
    assert_eq!(
        functions(&two),
        functions(&base) + 2,
        "the tool functions are cut, not left behind"
    );
    let none = patch(
        &two,
        &[
            PatchOp::RemoveTool {
                name: "tally_vote".into(),
            },
            PatchOp::RemoveTool {
                name: "weighted_score".into(),
            },
        ],
    )
    .unwrap();
    assert!(tools_of(&none).is_empty());
    assert_eq!(functions(&none), functions(&base));
    assert!(
        wasm_patch::tool_registry(&none).unwrap().is_none(),
        "no tools, no section"
    );
}

#[test]
fn a_walrus_op_in_the_same_patch_keeps_the_tools_valid() {
    let with_tool = patch(&abi_module(), &[add("tally_vote")]).unwrap();
    let out = apply_patch(
        &with_tool,
        &[
            PatchOp::AddQueryMethod {
                name: "hello".into(),
                reply: b"DIDL\x00\x00".to_vec(),
            },
            add("word_stats"),
        ],
        &stamp(),
    )
    .unwrap();
    assert!(out.rebuilt);
    assert_eq!(tools_of(&out.wasm), ["tally_vote", "word_stats"]);
    // And again on the section path: the old tool functions are no longer the last ones.
    let again = patch(
        &out.wasm,
        &[PatchOp::RemoveTool {
            name: "tally_vote".into(),
        }],
    )
    .unwrap();
    assert_eq!(tools_of(&again), ["word_stats"]);
}

#[test]
fn bad_tool_operations_are_refused_with_what_to_fix() {
    let base = abi_module();
    let mut greet = sample("tally_vote");
    greet["name"] = json!("greet");
    let mut broken = sample("tally_vote");
    broken["body"]["value"]["add"][1] = json!(true);
    let once = patch(&base, &[add("tally_vote")]).unwrap();
    let plain = wat::parse_str("(module (func (export \"canister_init\")))").unwrap();
    let cases: Vec<(&[u8], Vec<PatchOp>, &str)> = vec![
        (
            &base,
            vec![PatchOp::AddTool { spec: greet }],
            "op 0 (add_tool): the spec does not check: name: the name `greet` collides with method `greet` of the module",
        ),
        (
            &base,
            vec![PatchOp::AddTool { spec: broken }],
            "op 0 (add_tool): the spec does not check: body.value.add[1]: type mismatch: expected int, found bool",
        ),
        (
            &once,
            vec![add("tally_vote")],
            "op 0 (add_tool): the spec does not check: name: the name `tally_vote` collides with a synthesized tool already in the module (remove_tool it first to replace it)",
        ),
        (
            &base,
            vec![PatchOp::RemoveTool {
                name: "nope".into(),
            }],
            "op 0: no synthesized tool `nope` (registered: none)",
        ),
        (
            &plain,
            vec![add("tally_vote")],
            "the module does not export `agent_tool_abi.v1.dispatch`",
        ),
        (
            &base,
            vec![PatchOp::SetMetadata {
                visibility: wasm_patch::Visibility::Public,
                name: "agent:tools".into(),
                content: b"{}".to_vec(),
            }],
            "op 0 (set_metadata)",
        ),
    ];
    for (input, ops, want) in cases {
        let got = apply_patch(input, &ops, &stamp()).unwrap_err().to_string();
        assert!(got.starts_with(want), "\n got: {got}\nwant: {want}");
    }
}

/// The byte range of the last function body in `wasm` (a tool's, after add_tool).
fn last_body(wasm: &[u8]) -> std::ops::Range<usize> {
    let mut last = None;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let wasmparser::Payload::CodeSectionEntry(body) = payload.unwrap() {
            last = Some(body.range());
        }
    }
    last.unwrap()
}

#[test]
fn validation_refuses_tool_code_that_is_not_what_the_registry_says() {
    let good = patch(&abi_module(), &[add("tally_vote")]).unwrap();
    let policy = ValidationPolicy::default();

    // A changed byte in the tool's body that keeps it valid Wasm: an i64 literal 1 -> 2.
    let range = last_body(&good);
    let at = range.start
        + good[range.clone()]
            .windows(2)
            .position(|w| w == [0x42, 0x01])
            .expect("the body has `i64.const 1`");
    let mut flipped = good.clone();
    flipped[at + 1] = 0x02;
    match validate(&flipped, &policy) {
        Err(ValidationError::ToolCode { reason }) => assert!(
            reason.starts_with("tool `tally_vote`: the code at function"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }

    // A registry whose description was edited after compilation: the schema no longer
    // matches the spec.
    let text = String::from_utf8_lossy(&good).into_owned();
    assert!(text.contains("Count one vote"));
    let mut edited = good.clone();
    let at = good.windows(5).position(|w| w == b"Count").unwrap();
    edited[at] = b'c';
    let err = validate(&edited, &policy).unwrap_err().to_string();
    assert!(err.starts_with("synthesized tools: "), "{err}");

    // Tool code in the hooks of a module whose registry section was removed.
    let stripped = apply_patch(&good, &[], &stamp()).unwrap().wasm;
    assert_eq!(
        tools_of(&stripped),
        ["tally_vote"],
        "an empty patch keeps the tools"
    );
    let mut no_section = stripped.clone();
    let name = tool_spec::registry::SECTION.as_bytes();
    let at = no_section
        .windows(name.len())
        .position(|w| w == name)
        .unwrap();
    no_section[at] = b'x'; // `xcp:public agent:tools`: some custom section, not the registry
    let err = validate(&no_section, &policy).unwrap_err().to_string();
    assert_eq!(
        err,
        "synthesized tools: `agent_tool_abi.v1.dispatch` carries tool code but the module has no registry (icp:public agent:tools)"
    );
}

#[test]
fn validate_patched_skips_the_parents_bodies_and_agrees_with_validate() {
    let parent = patch(&abi_module(), &[]).unwrap();
    let parent = wasm_patch::Parent::new(&parent).unwrap();
    let child = wasm_patch::apply_patch_to(&parent, &[add("weighted_score")], &stamp()).unwrap();
    let policy = ValidationPolicy {
        expected_parent: Some(parent.hash()),
        ..ValidationPolicy::default()
    };
    let full = validate(&child.wasm, &policy).unwrap();
    let fast = validate_patched(&child, &parent, &policy).unwrap();
    assert_eq!(full.tools, fast.tools);
    assert_eq!(full.module_hash, fast.module_hash);
    assert_eq!(full.bodies_validated, full.functions);
    // The new tool and the two rewritten hooks.
    assert_eq!(fast.bodies_validated, 3, "{fast:?}");

    // A body that changed is validated: an invalid one is refused.
    let range = last_body(&child.wasm);
    let mut broken = child.clone();
    broken.wasm[range.end - 1] = 0x00; // the final `end` becomes `unreachable`: no end
    assert!(validate_patched(&broken, &parent, &policy).is_err());
}
