//! Instruction accounting follows the replica's weights (issue "ic-sim against suites written
//! by others", item 7): bulk memory operations cost one instruction per byte on top of their
//! static cost, and operators weigh what `instruction_to_cost`
//! (rs/embedders/src/wasm_utils/instrumentation.rs) says, e.g. 10 for an integer division
//! where an addition costs 1.

mod common;

use common::*;

fn counter(sim: &Sim, id: Principal, method: &str, n: u32) -> u64 {
    raw_u64(
        &sim.update_call(id, Principal::anonymous(), method, n.to_le_bytes().to_vec())
            .unwrap(),
    )
}

/// memory.fill and memory.copy are charged by length: 64 KiB more cost 65,536 more.
#[test]
fn bulk_memory_operations_cost_one_instruction_per_byte() {
    let sim = Sim::new();
    let id = new_wat(&sim, "instruction_weights");
    for method in ["fill", "copy"] {
        let small = counter(&sim, id, method, 0);
        let large = counter(&sim, id, method, 65_536);
        assert_eq!(large - small, 65_536, "{method}: instructions by length");
    }
}

/// An i32.div_u weighs 10 where an i32.add weighs 1.
#[test]
fn operators_weigh_what_the_replica_charges() {
    let sim = Sim::new();
    let id = new_wat(&sim, "instruction_weights");
    let add = counter(&sim, id, "add", 9);
    let div = counter(&sim, id, "div", 9);
    assert_eq!(div - add, 9, "i32.div_u (10) against i32.add (1)");
}
