//! Limits: instructions, payload sizes, module shape and size (IC-SEMANTICS.md, "Limits").
//!
//! Instruction limits are lowered through `SimConfig` where the IC's own figure would take too long
//! to exhaust; a lower limit is harsher than the IC, never kinder.

mod common;

use common::*;

const MIB: usize = 1024 * 1024;

/// An update that overruns the instruction limit fails with IC0522 and its changes are rolled
/// back. (IC: 40 B per update; lowered to 200 M here.)
#[test]
fn update_instruction_limit_overrun_rolls_back() {
    let sim = Sim::with_config(SimConfig {
        instruction_limit_update: 200_000_000,
        ..SimConfig::default()
    });
    let id = new_probe(&sim);
    let result = sim.update_call(
        id,
        Principal::anonymous(),
        "inc_then_burn",
        Encode!(&400_000_000u64).unwrap(),
    );
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterInstructionLimitExceeded,
        &[
            &error_from(id),
            "Canister exceeded the limit of 200000000 instructions for single message execution.",
            "instruction-limit-exceeded",
        ],
    );
    assert_eq!(read(&sim, id), 0, "heap change rolled back");
    assert_eq!(stable_read(&sim, id), 0, "stable change rolled back");
    // Under the limit the same method succeeds.
    let burnt: u64 = update(&sim, id, "inc_then_burn", Encode!(&1_000_000u64).unwrap()).unwrap();
    assert!(burnt >= 1_000_000);
    assert_eq!(read(&sim, id), 1);
}

/// A query that overruns the query limit fails with IC0522. (IC: 5 B; lowered to 100 M here.)
#[test]
fn query_instruction_limit_overrun_is_ic0522() {
    let sim = Sim::with_config(SimConfig {
        instruction_limit_query: 100_000_000,
        ..SimConfig::default()
    });
    let id = new_probe(&sim);
    let result = sim.query_call(
        id,
        Principal::anonymous(),
        "burn_instructions_query",
        Encode!(&200_000_000u64).unwrap(),
    );
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterInstructionLimitExceeded,
        &[
            &error_from(id),
            "Canister exceeded the limit of 100000000 instructions for single message execution.",
        ],
    );
}

/// A reply over 2 MiB is a contract violation (IC0504); exactly 2 MiB is fine.
#[test]
fn reply_over_2_mib_is_refused() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let ok = sim
        .update_call(
            id,
            Principal::anonymous(),
            "reply_bytes",
            Encode!(&(2 * MIB as u64)).unwrap(),
        )
        .expect("a 2 MiB reply is allowed");
    assert_eq!(ok.len(), 2 * MIB);
    let result = sim.update_call(
        id,
        Principal::anonymous(),
        "reply_bytes",
        Encode!(&(2 * MIB as u64 + 1)).unwrap(),
    );
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterContractViolation,
        &[
            &error_from(id),
            "ic0.msg_reply_data_append: application payload size (2097153) cannot be larger than 2097152",
        ],
    );
}

/// An inter-canister request over 10 MiB traps the caller at call_data_append (IC0504); one
/// under the limit is delivered.
#[test]
fn inter_canister_request_over_10_mib_is_refused() {
    let sim = Sim::new();
    let a = new_probe(&sim);
    let b = new_probe(&sim);
    let under: CallOutcome = update(
        &sim,
        a,
        "call_with_payload",
        Encode!(&b, &"inc", &(10 * MIB as u64 - 1_000)).unwrap(),
    )
    .unwrap();
    // `inc` takes no arguments, so ic-cdk never decodes the bytes: the request was delivered.
    assert_eq!(under.reply::<u64>(), 1);

    let result = sim.update_call(
        a,
        Principal::anonymous(),
        "call_with_payload",
        Encode!(&b, &"inc", &(10 * MIB as u64 + 1)).unwrap(),
    );
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterContractViolation,
        &[
            &error_from(a),
            &format!("Request to {b}:inc has a payload size of"),
            "which exceeds the allowed limit of 10485760",
        ],
    );
}

/// An ingress message over 2 MiB is refused before it reaches the canister.
///
/// On the IC this is an HTTP 413 from the boundary with no IC error code at all, so only the
/// replica's text is asserted here, not the codes the simulator chose.
#[test]
fn ingress_over_2_mib_is_refused() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let err = sim
        .update_call(id, Principal::anonymous(), "inc", vec![0; 2 * MIB + 1024])
        .expect_err("a 2 MiB + 1 KiB ingress message is too large");
    assert!(err.reject_message.contains("is too large"), "{err:?}");
    assert!(
        err.reject_message
            .contains("larger than the max allowed 2097152"),
        "{err:?}"
    );
    assert_eq!(read(&sim, id), 0, "the canister never ran");

    // Just under the limit the message reaches the canister (`inc` ignores its argument).
    sim.update_call(
        id,
        Principal::anonymous(),
        "inc",
        vec![0; 2 * MIB - 16 * 1024],
    )
    .expect("just under 2 MiB is accepted");
    assert_eq!(read(&sim, id), 1);
}

// ---- module shape -------------------------------------------------------------------------------

fn install_result(sim: &Sim, wasm: Vec<u8>) -> (Principal, Result<(), RejectResponse>) {
    let id = new_empty(sim);
    let result = sim.install_code(CanisterInstallMode::Install, id, wasm, vec![], None);
    (id, result)
}

#[track_caller]
fn assert_invalid_wasm(sim: &Sim, wasm: Vec<u8>, needles: &[&str]) {
    let (id, result) = install_result(sim, wasm);
    let mut all = vec!["Canister's Wasm module is not valid: "];
    all.extend_from_slice(needles);
    expect_reject(
        result,
        RejectCode::CanisterError,
        ErrorCode::CanisterInvalidWasm,
        &all,
    );
    assert_eq!(sim.module_hash(id), None);
}

fn module_with_globals(n: usize) -> Vec<u8> {
    let globals: String = (0..n).map(|_| "(global i32 (i32.const 0))").collect();
    wat_text(&format!("(module {globals})"))
}

fn module_with_exports(n: usize) -> Vec<u8> {
    let exports: String = (0..n)
        .map(|i| format!("(export \"canister_query m{i}\" (func 0))"))
        .collect();
    wat_text(&format!("(module (func) {exports})"))
}

/// At most 1,000 globals.
#[test]
fn at_most_1000_globals() {
    let sim = Sim::new();
    install_result(&sim, module_with_globals(1_000))
        .1
        .expect("1,000 globals are allowed");
    assert_invalid_wasm(
        &sim,
        module_with_globals(1_001),
        &[
            "Wasm module defined 1001 globals which exceeds the maximum number allowed 1000.",
            "Try collecting multiple globals into a single structured which can be stored on the heap.",
        ],
    );
}

/// At most 50,000 functions.
#[test]
fn at_most_50000_functions() {
    let sim = Sim::new();
    let functions = "(func)".repeat(50_001);
    assert_invalid_wasm(
        &sim,
        wat_text(&format!("(module {functions})")),
        &[
            "Wasm module defined 50001 functions which exceeds the maximum number allowed 50000.",
            "Try spliting this canister into multiple canisters.",
        ],
    );
}

/// At most 1,000 exported methods.
#[test]
fn at_most_1000_exported_methods() {
    let sim = Sim::new();
    install_result(&sim, module_with_exports(1_000))
        .1
        .expect("1,000 methods are allowed");
    assert_invalid_wasm(
        &sim,
        module_with_exports(1_001),
        &[
            "Wasm module has an invalid export section. The number of exported functions called",
            "exceeds 1000.",
            "Try combining multiple endpoints into a single endpoint.",
        ],
    );
}

/// At most 16 `icp:` custom sections.
#[test]
fn at_most_16_icp_custom_sections() {
    let sim = Sim::new();
    let with = |n: usize| {
        (0..n).fold(wat_fixture("empty"), |wasm, i| {
            with_custom_section(wasm, &format!("icp:public s{i}"), b"x")
        })
    };
    install_result(&sim, with(16))
        .1
        .expect("16 icp: sections are allowed");
    assert_invalid_wasm(
        &sim,
        with(17),
        &["Wasm module defined 17 custom sections which exceeds the maximum number allowed 16."],
    );
}

/// `icp:` custom sections add up to at most 1 MiB.
#[test]
fn icp_custom_sections_at_most_1_mib() {
    let sim = Sim::new();
    let big = with_custom_section(wat_fixture("empty"), "icp:private big", &vec![0; MIB]);
    assert_invalid_wasm(
        &sim,
        big,
        &[
            "Wasm module has an invalid custom section. Invalid custom sections: total size of the \
         custom sections exceeds the maximum allowed",
            // The size counts the payload and the name after `icp:private ` ("big").
            "size 1048579 bytes, allowed 1048576 bytes",
        ],
    );
}

/// `icp:` section names need a public/private scope.
#[test]
fn icp_custom_section_names_need_a_scope() {
    let sim = Sim::new();
    let wasm = with_custom_section(wat_fixture("empty"), "icp:foo", b"x");
    assert_invalid_wasm(
        &sim,
        wasm,
        &["Invalid custom section: Custom section 'icp:foo' has no public/private scope defined."],
    );
    // Other custom sections (name, producers, ...) are unrestricted.
    install_result(
        &sim,
        with_custom_section(wat_fixture("empty"), "anything", b"x"),
    )
    .1
    .expect("non-icp sections are fine");
}

/// The code section is at most 10 MiB.
#[test]
fn code_section_at_most_10_mib() {
    // 11 functions of 999,000 `nop`s each (under the per-function limit of 1,000,000
    // instructions): a code section of about 10.5 MiB.
    let (functions, nops) = (11usize, 999_000usize);
    let mut body = leb128(nops as u64 + 2);
    body.push(0x00); // no locals
    body.extend(std::iter::repeat_n(0x01u8, nops)); // nop
    body.push(0x0b); // end
    let mut code = leb128(functions as u64);
    for _ in 0..functions {
        code.extend_from_slice(&body);
    }
    let mut wasm = b"\0asm\x01\0\0\0".to_vec();
    section(&mut wasm, 1, &[1, 0x60, 0, 0]); // one type: [] -> []
    let mut funcs = leb128(functions as u64);
    funcs.extend(std::iter::repeat_n(0u8, functions));
    section(&mut wasm, 3, &funcs);
    section(&mut wasm, 10, &code);
    // The replica reports wasmparser's CodeSectionStart size: the section after its count.
    let size = code.len() - leb128(functions as u64).len();
    assert!(size > 10 * MIB);

    // Gzipped, because an install_code ingress message may carry at most 2 MiB.
    let sim = Sim::new();
    assert_invalid_wasm(
        &sim,
        gzip(&wasm),
        &[
            &format!(
                "Wasm module code section size of {size} exceeds the maximum allowed size of 10485760."
            ),
            "Try shrinking the module code section using tools like `ic-wasm`",
        ],
    );
}

fn section(wasm: &mut Vec<u8>, id: u8, payload: &[u8]) {
    wasm.push(id);
    wasm.extend(leb128(payload.len() as u64));
    wasm.extend_from_slice(payload);
}

/// The (uncompressed) module is at most 100 MiB: a gzipped module that inflates past it is
/// refused.
#[test]
fn module_at_most_100_mib_uncompressed() {
    let padded = with_custom_section(wat_fixture("empty"), "padding", &vec![0; 100 * MIB]);
    let size = padded.len();
    let gz = gzip(&padded);
    assert!(gz.len() < 2 * MIB, "compresses well");
    let sim = Sim::new();
    assert_invalid_wasm(
        &sim,
        gz,
        &[
            &format!("Wasm module size of {size} exceeds the maximum allowed size of 104857600."),
            "Try shrinking the module using tools like `ic-wasm`",
        ],
    );
}
