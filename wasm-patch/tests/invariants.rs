//! Properties that no single fixture shows: the IC's limits at their real numbers, patched
//! output that always validates and re-patches, deterministic digests, the shape of injected
//! code, and no panic on damaged input.

mod common;

use common::{Structure, gzip};
use wasm_patch::{
    Limits, PatchError, PatchOp, Stamp, ValidationError, ValidationPolicy, apply_patch,
    canonical_ops_json, fingerprint, patch_digest, sha256, validate,
};

const CANISTER: &str = r#"(module
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (memory 1)
  (global $counter (mut i32) (i32.const 0))
  (data (i32.const 0) "DIDL\00\00")
  (func $health (call $append (i32.const 0) (i32.const 6)) (call $reply))
  (func $set (global.set $counter (i32.add (global.get $counter) (i32.const 1))) (call $reply))
  (func $set_twice (call $set) (call $set))
  (export "canister_query health" (func $health))
  (export "canister_update set" (func $set))
  (export "canister_update set_twice" (func $set_twice))
  (export "memory" (memory 0)))"#;

const BARE: &str = r#"(module (func $noop) (export "canister_update noop" (func $noop)))"#;

const WITH_TABLE: &str = r#"(module
  (import "ic0" "msg_reply" (func $reply))
  (memory 1 1)
  (table 2 funcref)
  (elem (i32.const 0) $a)
  (func $a (call $reply))
  (func $b (call $reply))
  (export "canister_update a" (func $a))
  (export "canister_query b" (func $b))
  (export "canister_composite_query c" (func $b)))"#;

fn wasm(wat: &str) -> Vec<u8> {
    wat::parse_str(wat).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The IC's limits at their real numbers

/// An unsigned LEB128.
fn leb(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn section(id: u8, contents: &[u8], out: &mut Vec<u8>) {
    out.push(id);
    leb(contents.len(), out);
    out.extend_from_slice(contents);
}

fn custom(name: &str, data: &[u8]) -> Vec<u8> {
    let mut contents = Vec::new();
    leb(name.len(), &mut contents);
    contents.extend_from_slice(name.as_bytes());
    contents.extend_from_slice(data);
    let mut out = Vec::new();
    section(0, &contents, &mut out);
    out
}

const HEADER: [u8; 8] = [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0];

#[test]
fn globals_functions_and_methods_at_ic_limits() {
    let globals = |n: usize| format!("(module {})", "(global i32 (i32.const 0))".repeat(n));
    assert!(validate(&wasm(&globals(1_000)), &ValidationPolicy::default()).is_ok());
    assert_eq!(
        validate(&wasm(&globals(1_001)), &ValidationPolicy::default()),
        Err(ValidationError::TooManyGlobals {
            count: 1_001,
            limit: 1_000
        })
    );

    let funcs = |n: usize| format!("(module {})", "(func)".repeat(n));
    assert!(validate(&wasm(&funcs(50_000)), &ValidationPolicy::default()).is_ok());
    assert_eq!(
        validate(&wasm(&funcs(50_001)), &ValidationPolicy::default()),
        Err(ValidationError::TooManyFunctions {
            count: 50_001,
            limit: 50_000
        })
    );

    let methods = |n: usize, name_len: usize| {
        let exports: String = (0..n)
            .map(|i| format!("(export \"canister_update {i:0>name_len$}\" (func 0))"))
            .collect();
        format!("(module (func) {exports})")
    };
    assert!(validate(&wasm(&methods(1_000, 4)), &ValidationPolicy::default()).is_ok());
    assert_eq!(
        validate(&wasm(&methods(1_001, 4)), &ValidationPolicy::default()),
        Err(ValidationError::TooManyExportedMethods {
            count: 1_001,
            limit: 1_000
        })
    );
    assert!(validate(&wasm(&methods(100, 200)), &ValidationPolicy::default()).is_ok());
    assert_eq!(
        validate(&wasm(&methods(100, 201)), &ValidationPolicy::default()),
        Err(ValidationError::MethodNamesTooLong {
            size: 20_100,
            limit: 20_000
        })
    );
}

#[test]
fn sizes_at_ic_limits() {
    let policy = ValidationPolicy::default();

    // icp: sections: 1 MiB in names + contents.
    let icp = |content: usize| {
        let mut module = HEADER.to_vec();
        module.extend(custom("icp:public big", &vec![b'x'; content]));
        module
    };
    let name = "icp:public big".len();
    assert!(validate(&icp((1 << 20) - name), &policy).is_ok());
    assert_eq!(
        validate(&icp((1 << 20) - name + 1), &policy),
        Err(ValidationError::IcpSectionsTooLarge {
            size: (1 << 20) + 1,
            limit: 1 << 20
        })
    );

    // Code section: 10 MiB of contents.
    let code = |contents: usize| {
        let mut module = HEADER.to_vec();
        section(1, &[1, 0x60, 0, 0], &mut module); // (type (func))
        section(3, &[2, 0, 0], &mut module); // two functions of type 0
        // Two bodies of nops (0x01) closed by `end`, sized to fill `contents` bytes.
        let body_total = contents - 1; // minus the function count
        let mut bodies = Vec::new();
        for len in [body_total / 2, body_total - body_total / 2] {
            let mut probe = Vec::new();
            leb(len, &mut probe);
            let inner = len - probe.len(); // the body's own size field
            let mut body = Vec::new();
            leb(inner, &mut body);
            body.push(0); // no locals
            body.extend(std::iter::repeat_n(0x01, inner - 2));
            body.push(0x0b);
            assert_eq!(body.len(), len);
            bodies.extend(body);
        }
        let mut contents_bytes = vec![2];
        contents_bytes.extend(bodies);
        section(10, &contents_bytes, &mut module);
        module
    };
    assert!(validate(&code(10 << 20), &policy).is_ok());
    assert_eq!(
        validate(&code((10 << 20) + 1), &policy),
        Err(ValidationError::CodeSectionTooLarge {
            size: (10 << 20) + 1,
            limit: 10 << 20
        })
    );

    // Module: 100 MiB uncompressed, gzip or not. Header (8) + section id (1) + a 4-byte LEB
    // size + name length (1) + name (6) + filler.
    let module = |size: usize| {
        let mut module = HEADER.to_vec();
        module.extend(custom("filler", &vec![0; size - 20]));
        assert_eq!(module.len(), size);
        module
    };
    let exact = module(100 << 20);
    assert!(validate(&exact, &policy).is_ok());
    let over = module((100 << 20) + 1);
    assert_eq!(
        validate(&over, &policy),
        Err(ValidationError::ModuleTooLarge {
            size: (100 << 20) + 1,
            limit: 100 << 20
        })
    );
    let report = validate(&gzip(&exact), &policy).unwrap();
    assert!(report.gzipped);
    assert_eq!(report.size, 100 << 20);
    let over_gz = gzip(&over);
    assert_eq!(
        validate(&over_gz, &policy),
        Err(ValidationError::DecompressedTooLarge {
            compressed_size: over_gz.len() as u64,
            limit: 100 << 20
        })
    );
    assert_eq!(Limits::default(), Limits::IC);
}

// ---------------------------------------------------------------------------------------------
// Patched output

/// A tiny deterministic generator (xorshift), so the property runs are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

fn random_ops(rng: &mut Rng) -> Vec<PatchOp> {
    let names = [
        "health",
        "set",
        "set_twice",
        "noop",
        "a",
        "b",
        "c",
        "fresh",
        "other",
    ];
    let reply_sizes = [0, 1, 100, 70_000];
    (0..rng.below(6))
        .map(|_| match rng.below(4) {
            0 => PatchOp::SetMetadata {
                visibility: if rng.below(2) == 0 {
                    wasm_patch::Visibility::Public
                } else {
                    wasm_patch::Visibility::Private
                },
                name: rng
                    .pick(&["candid:service", "notes", "git:commit"])
                    .to_string(),
                content: (0..rng.below(40)).map(|_| rng.next() as u8).collect(),
            },
            1 => PatchOp::AddQueryMethod {
                name: rng.pick(&names).to_string(),
                reply: (0..reply_sizes[rng.below(reply_sizes.len())])
                    .map(|i| i as u8)
                    .collect(),
            },
            2 => PatchOp::RemoveMethod {
                name: rng.pick(&names).to_string(),
            },
            _ => PatchOp::GuardControllerOnly {
                name: rng.pick(&names).to_string(),
            },
        })
        .collect()
}

#[test]
fn patched_output_validates_repatches_and_is_deterministic() {
    let bases = [
        wasm(CANISTER),
        wasm(BARE),
        wasm(WITH_TABLE),
        gzip(&wasm(CANISTER)),
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut applied, mut refused) = (0, 0);
    for round in 0..120 {
        let input = &bases[round % bases.len()];
        let ops = random_ops(&mut rng);
        let stamp = Stamp::new(format!("0.1.{round}")).with_schema_range(1, 2);

        // Digest: deterministic, and the same after a JSON round trip.
        let json = canonical_ops_json(&ops);
        let reparsed: Vec<PatchOp> = serde_json::from_str(&json).unwrap();
        assert_eq!(patch_digest(&reparsed), patch_digest(&ops));
        assert_eq!(canonical_ops_json(&reparsed), json);

        let result = apply_patch(input, &ops, &stamp);
        assert_eq!(result, apply_patch(input, &ops, &stamp), "round {round}");
        let out = match result {
            Ok(out) => out,
            // An interface that does not parse, or a non-Candid reply added to a module that
            // declares one, is refused too (`interface`).
            Err(
                PatchError::MethodNotFound { .. }
                | PatchError::MethodExists { .. }
                | PatchError::Interface { .. },
            ) => {
                refused += 1;
                continue;
            }
            Err(e) => panic!("round {round}: unexpected error {e}\n{json}"),
        };
        applied += 1;

        let policy = ValidationPolicy {
            expected_parent: Some(sha256(input)),
            current_schema: Some(2),
            ..ValidationPolicy::default()
        };
        let report = validate(&out.wasm, &policy)
            .unwrap_or_else(|e| panic!("round {round}: output does not validate: {e}\n{json}"));
        assert_eq!(report.module_hash, out.module_hash);

        // Every added query is exported and ends by replying.
        let structure = Structure::read(&out.wasm);
        for op in &ops {
            if let PatchOp::AddQueryMethod { name, .. } = op {
                let export = format!("canister_query {name}");
                if let Some(&func) = structure.exports.get(&export) {
                    let calls = &structure.calls[func as usize];
                    let last = calls.last().map(|&c| structure.labels[c as usize].as_str());
                    assert_eq!(last, Some("ic0.msg_reply"), "round {round}: {export}");
                }
            }
        }

        // The output is itself patchable, and chains: its hash becomes the next parent.
        let next = apply_patch(&out.wasm, &[], &Stamp::new("next")).unwrap();
        assert_eq!(next.parent_hash, out.module_hash);
        let print = fingerprint(&next.wasm).unwrap();
        assert_eq!(print.parent_hash, Some(out.module_hash));
        assert_eq!(print.schema_range, None, "a stamp without a range drops it");
    }
    assert!(
        applied > 40 && refused > 10,
        "applied {applied}, refused {refused}"
    );
}

/// The body of function `index` as text, with call targets named, for comparisons across
/// modules whose function indices differ.
fn body_text(wasm: &[u8], structure: &Structure, index: u32) -> Vec<String> {
    use wasmparser::{Operator, Parser, Payload};
    // Imported functions come first in the index space and have no body.
    let nth = index as usize - structure.imported;
    let body = Parser::new(0)
        .parse_all(wasm)
        .filter_map(|payload| match payload.unwrap() {
            Payload::CodeSectionEntry(body) => Some(body),
            _ => None,
        })
        .nth(nth)
        .unwrap();
    body.get_operators_reader()
        .unwrap()
        .into_iter()
        .map(|op| match op.unwrap() {
            Operator::Call { function_index } => {
                format!("call {}", structure.labels[function_index as usize])
            }
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn guard_prologue_runs_before_the_original_body() {
    let input = wasm(CANISTER);
    let before = Structure::read(&input);
    let out = apply_patch(
        &input,
        &[PatchOp::GuardControllerOnly {
            name: "health".to_string(),
        }],
        &Stamp::new("1"),
    )
    .unwrap();
    let after = Structure::read(&out.wasm);
    let health_before = body_text(&input, &before, before.exports["canister_query health"]);
    let health_after = body_text(&out.wasm, &after, after.exports["canister_query health"]);
    assert_eq!(health_after[0], "call agent_patch:require_controller.v1");
    assert_eq!(
        &health_after[1..],
        &health_before[..],
        "the original body follows unchanged"
    );

    // The check itself asks is_controller about the caller and traps otherwise.
    let guard = after
        .labels
        .iter()
        .position(|l| l == "agent_patch:require_controller.v1")
        .unwrap() as u32;
    let calls: Vec<&str> = after.calls[guard as usize]
        .iter()
        .map(|&c| after.labels[c as usize].as_str())
        .collect();
    assert_eq!(
        calls,
        [
            "agent_patch:scratch_page.v1",
            "ic0.msg_caller_size",
            "ic0.msg_caller_copy",
            "ic0.is_controller",
            "ic0.trap"
        ]
    );
    let guard_body = body_text(&out.wasm, &after, guard);
    let is_controller = guard_body
        .iter()
        .position(|op| op == "call ic0.is_controller")
        .unwrap();
    assert_eq!(guard_body[is_controller + 1], "I32Eqz");
    assert!(guard_body[is_controller + 2].starts_with("If"));
    // The trap message is in a passive segment and reaches ic0.trap through memory.init.
    assert!(
        out.wasm
            .windows(43)
            .any(|w| w == b"caller is not a controller of this canister")
    );

    // A function that is also called internally is wrapped, not edited.
    let out = apply_patch(
        &input,
        &[PatchOp::GuardControllerOnly {
            name: "set".to_string(),
        }],
        &Stamp::new("1"),
    )
    .unwrap();
    let after = Structure::read(&out.wasm);
    let set = after.exports["canister_update set"];
    assert_eq!(
        body_text(&out.wasm, &after, set),
        ["call agent_patch:require_controller.v1", "call set", "End"]
    );
    let original = after.labels.iter().position(|l| l == "set").unwrap() as u32;
    assert_eq!(
        body_text(&out.wasm, &after, original),
        body_text(&input, &before, before.exports["canister_update set"])
    );
}

#[test]
fn large_reply_is_copied_page_by_page() {
    let reply: Vec<u8> = (0..150_000u32).map(|i| (i % 251) as u8).collect();
    let out = apply_patch(
        &wasm(CANISTER),
        &[PatchOp::AddQueryMethod {
            name: "big".to_string(),
            reply: reply.clone(),
        }],
        &Stamp::new("1"),
    )
    .unwrap();
    let structure = Structure::read(&out.wasm);
    let func = structure.exports["canister_query big"];
    assert_eq!(
        structure.call_trace(func),
        "agent_patch:scratch_page.v1{ic0.trap}, ic0.msg_reply_data_append, \
         ic0.msg_reply_data_append, ic0.msg_reply_data_append, ic0.msg_reply"
    );
    assert!(out.wasm.windows(reply.len()).any(|w| w == reply.as_slice()));

    let too_big = apply_patch(
        &wasm(CANISTER),
        &[PatchOp::AddQueryMethod {
            name: "huge".to_string(),
            reply: vec![0; (2 << 20) + 1],
        }],
        &Stamp::new("1"),
    );
    assert_eq!(
        too_big,
        Err(PatchError::ReplyTooLarge {
            op_index: 0,
            size: (2 << 20) + 1,
            limit: 2 << 20
        })
    );
}

#[test]
fn repatching_reuses_the_injected_helpers() {
    let guard = |name: &str| PatchOp::GuardControllerOnly {
        name: name.to_string(),
    };
    let first = apply_patch(&wasm(CANISTER), &[guard("health")], &Stamp::new("1")).unwrap();
    let second = apply_patch(
        &first.wasm,
        &[
            PatchOp::AddQueryMethod {
                name: "v".to_string(),
                reply: b"DIDL".to_vec(),
            },
            guard("v"),
        ],
        &Stamp::new("2"),
    )
    .unwrap();
    let structure = Structure::read(&second.wasm);
    for helper in [
        "agent_patch:scratch_page.v1",
        "agent_patch:require_controller.v1",
    ] {
        let copies = structure.labels.iter().filter(|l| *l == helper).count();
        assert_eq!(copies, 1, "{helper}");
    }
    validate(&second.wasm, &ValidationPolicy::default()).unwrap();
}

#[test]
fn gzip_input_hashes_the_compressed_bytes() {
    let gz = gzip(&wasm(CANISTER));
    let report = validate(&gz, &ValidationPolicy::default()).unwrap();
    assert!(report.gzipped);
    assert_eq!(report.module_hash, sha256(&gz));
    assert_eq!(fingerprint(&gz).unwrap().module_hash, sha256(&gz));
    let out = apply_patch(&gz, &[], &Stamp::new("1")).unwrap();
    assert_eq!(out.parent_hash, sha256(&gz));
    assert_eq!(&out.wasm[..4], b"\0asm", "output is uncompressed");
}

#[test]
fn damaged_input_is_an_error_never_a_panic() {
    let good = wasm(CANISTER);
    let stamp = Stamp::new("1");
    let ops = [PatchOp::GuardControllerOnly {
        name: "set".to_string(),
    }];
    let policy = ValidationPolicy::default();
    let mut inputs: Vec<Vec<u8>> = (0..good.len()).map(|n| good[..n].to_vec()).collect();
    let mut rng = Rng(42);
    for position in 0..good.len() {
        for _ in 0..3 {
            let mut bytes = good.clone();
            bytes[position] = rng.next() as u8;
            inputs.push(bytes);
        }
    }
    let gz = gzip(&good);
    inputs.extend((3..gz.len()).step_by(7).map(|n| gz[..n].to_vec()));
    let mut accepted = 0;
    for input in &inputs {
        let validated = validate(input, &policy);
        let _ = fingerprint(input);
        let patched = apply_patch(input, &ops, &stamp);
        if let Ok(out) = &patched {
            accepted += 1;
            // Whatever is accepted for patching comes out structurally valid.
            wasmparser::Validator::new_with_features(wasm_patch::ic_features())
                .validate_all(&out.wasm)
                .unwrap();
        }
        if validated.is_ok() {
            assert!(fingerprint(input).is_ok());
        }
    }
    assert!(accepted > 0);
}

#[test]
fn policy_json() {
    let policy: ValidationPolicy = serde_json::from_str(&format!(
        r#"{{"required_exports": ["canister_query health"], "expected_parent": "{}",
             "current_schema": 3, "limits": {{"max_functions": 10}}}}"#,
        "AB".repeat(32)
    ))
    .unwrap();
    assert_eq!(policy.expected_parent, Some([0xab; 32]));
    assert_eq!(policy.limits.max_functions, 10);
    assert_eq!(policy.limits.max_globals, Limits::IC.max_globals);
    assert!(serde_json::from_str::<ValidationPolicy>(r#"{"expected_parent": "abc"}"#).is_err());

    let print = fingerprint(&wasm(CANISTER)).unwrap();
    let json = serde_json::to_string(&print).unwrap();
    assert_eq!(
        serde_json::from_str::<wasm_patch::Fingerprint>(&json).unwrap(),
        print
    );
}

#[test]
fn every_ic0_function_is_accepted_with_its_exact_signature_only() {
    use wasm_patch::ic0::{IC0_FUNCTIONS, Ic0Type};
    let ty = |t: &Ic0Type| match t {
        Ic0Type::I32 => "i32",
        Ic0Type::I64 => "i64",
    };
    let import = |name: &str, params: &[&str], results: &[&str]| {
        format!(
            "(import \"ic0\" \"{name}\" (func (param {}) (result {})))",
            params.join(" "),
            results.join(" ")
        )
    };
    let all: String = IC0_FUNCTIONS
        .iter()
        .map(|f| {
            let params: Vec<&str> = f.params.iter().map(ty).collect();
            let results: Vec<&str> = f.results.iter().map(ty).collect();
            import(f.name, &params, &results)
        })
        .collect();
    let report = validate(
        &wasm(&format!("(module {all})")),
        &ValidationPolicy::default(),
    )
    .unwrap();
    assert_eq!(report.ic0_imports.len(), IC0_FUNCTIONS.len());

    for f in IC0_FUNCTIONS {
        // One extra i32 parameter is enough to be refused, and the message shows both types.
        let mut params: Vec<&str> = f.params.iter().map(ty).collect();
        params.push("i32");
        let results: Vec<&str> = f.results.iter().map(ty).collect();
        let module = wasm(&format!("(module {})", import(f.name, &params, &results)));
        match validate(&module, &ValidationPolicy::default()) {
            Err(ValidationError::Ic0SignatureMismatch {
                name,
                expected,
                found,
            }) => {
                assert_eq!(name, f.name);
                assert_ne!(expected, found);
            }
            other => panic!("ic0.{}: {other:?}", f.name),
        }
    }
}
