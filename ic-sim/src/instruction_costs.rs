//! The replica's instruction weights, as wasmtime fuel costs.
//!
//! The replica counts instructions by instrumenting each basic block with the static cost of
//! its operators (`instruction_to_cost` in rs/embedders/src/wasm_utils/instrumentation.rs) and
//! charging bulk memory and table operations dynamically: "`DynamicCost` injection points
//! assume there is an i32 on the stack which should be decremented from the instruction
//! counter" (ibid.), one instruction per byte or element on top of their static cost of 100.
//! Wasmtime's fuel table carries both: a flat cost per operator and a per-byte/per-element
//! cost for the bulk operators.
//!
//! Where the two cannot agree: wasmtime's table holds `u8`, so `memory.grow`, `table.grow`,
//! `data.drop` and `elem.drop` (300 in the replica) cost 255 here. SIMD operators the list
//! below does not name cost 1 (the replica's weights for them are 1 to 3).

use wasmtime::OperatorCost;

/// Fuel costs that follow the replica's instruction weights.
pub(crate) fn replica_operator_cost() -> OperatorCost {
    let mut c = OperatorCost::new();
    // Block boundaries cost nothing; everything the list below does not name costs 1.
    c.Block = 0;
    c.Loop = 0;
    c.Else = 0;
    c.End = 0;
    c.Nop = 1;
    c.Drop = 1;
    c.Unreachable = 1;
    c.Return = 1;
    // Integer division and remainder.
    for cost in [
        &mut c.I32DivS,
        &mut c.I32DivU,
        &mut c.I32RemS,
        &mut c.I32RemU,
        &mut c.I64DivS,
        &mut c.I64DivU,
        &mut c.I64RemS,
        &mut c.I64RemU,
    ] {
        *cost = 10;
    }
    // Floating point.
    for cost in [
        &mut c.F32Add,
        &mut c.F32Sub,
        &mut c.F32Mul,
        &mut c.F32Ceil,
        &mut c.F32Floor,
        &mut c.F32Trunc,
        &mut c.F32Nearest,
        &mut c.F64Add,
        &mut c.F64Sub,
        &mut c.F64Mul,
        &mut c.F64Ceil,
        &mut c.F64Floor,
        &mut c.F64Trunc,
        &mut c.F64Nearest,
        &mut c.F32Copysign,
    ] {
        *cost = 2;
    }
    c.F32Div = 3;
    c.F64Div = 5;
    c.F64Copysign = 3;
    c.F32Sqrt = 5;
    c.F64Sqrt = 8;
    for cost in [&mut c.F32Min, &mut c.F32Max, &mut c.F64Min, &mut c.F64Max] {
        *cost = 18;
    }
    for cost in [
        &mut c.F32Eq,
        &mut c.F32Ne,
        &mut c.F32Lt,
        &mut c.F32Gt,
        &mut c.F32Le,
        &mut c.F32Ge,
        &mut c.F64Eq,
        &mut c.F64Ne,
        &mut c.F64Lt,
        &mut c.F64Gt,
        &mut c.F64Le,
        &mut c.F64Ge,
        &mut c.F32ConvertI32S,
        &mut c.F64ConvertI64S,
        &mut c.F32ConvertI64S,
        &mut c.F64ConvertI32S,
    ] {
        *cost = 3;
    }
    for cost in [
        &mut c.F64ConvertI32U,
        &mut c.F32ConvertI64U,
        &mut c.F32ConvertI32U,
        &mut c.F64ConvertI64U,
    ] {
        *cost = 16;
    }
    for cost in [
        &mut c.I64TruncSatF32S,
        &mut c.I64TruncSatF32U,
        &mut c.I64TruncSatF64S,
        &mut c.I64TruncSatF64U,
        &mut c.I32TruncSatF32S,
        &mut c.I32TruncSatF32U,
        &mut c.I32TruncSatF64S,
        &mut c.I32TruncSatF64U,
        &mut c.I32TruncF32S,
        &mut c.I32TruncF32U,
        &mut c.I32TruncF64S,
        &mut c.I32TruncF64U,
        &mut c.I64TruncF32S,
        &mut c.I64TruncF32U,
        &mut c.I64TruncF64S,
        &mut c.I64TruncF64U,
    ] {
        *cost = 20;
    }
    // Globals, tables, memory and calls.
    c.GlobalGet = 2;
    c.GlobalSet = 2;
    c.TableGet = 5;
    c.TableSet = 5;
    c.MemoryGrow = 255;
    c.TableGrow = 255;
    c.MemorySize = 20;
    c.TableSize = 100;
    for cost in [
        &mut c.MemoryFill,
        &mut c.MemoryCopy,
        &mut c.TableFill,
        &mut c.TableCopy,
        &mut c.MemoryInit,
        &mut c.TableInit,
    ] {
        *cost = 100;
    }
    c.DataDrop = 255;
    c.ElemDrop = 255;
    c.Call = 5;
    c.CallIndirect = 10;
    c.ReturnCall = 3;
    c.ReturnCallIndirect = 60;
    for cost in [&mut c.If, &mut c.Br, &mut c.BrIf, &mut c.BrTable] {
        *cost = 2;
    }
    c.RefIsNull = 5;
    c.RefFunc = 130;
    c.I8x16Shuffle = 3;
    // Dynamic costs: one instruction per byte or element moved.
    let v = &mut c.variable;
    v.memory_copy_per_byte = 1;
    v.memory_fill_per_byte = 1;
    v.memory_init_per_byte = 1;
    v.memory_grow_per_page = 0;
    v.table_copy_per_element = 1;
    v.table_fill_per_element = 1;
    v.table_init_per_element = 1;
    v.table_grow_per_element = 0;
    c
}
