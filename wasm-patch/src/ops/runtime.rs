//! The code a patch injects once per module and shares between operations: `ic0` imports, the
//! scratch page and the controller check.
//!
//! ```text
//! global  agent_patch:scratch_page.v1  (mut i32) = -1      ;; address of the page, -1 = none yet
//! func    agent_patch:scratch_page.v1  () -> i32            ;; grows one page on first use
//! func    agent_patch:require_controller.v1  () -> ()       ;; traps unless the caller controls us
//! ```
//!
//! The helpers carry a versioned name in the `name` section, and a later patch of the same
//! module reuses them when it finds them (with the right type) instead of taking another page.
//! A module whose `name` section was stripped simply gets a second copy.
//!
//! When `memory.grow` fails, the trap message is first copied to address 0: the trap discards
//! that write along with everything else the message did. (A memory of zero pages that cannot
//! grow traps on that copy instead, without the message.)

use crate::PatchError;
use crate::error::signature;
use crate::ic0::{self, Ic0Type, ic0_signature};
use walrus::ir::{BinaryOp, UnaryOp, Value};
use walrus::{
    ConstExpr, DataId, DataKind, FunctionBuilder, FunctionId, ImportKind, InstrSeqBuilder, LocalId,
    MemoryId, Module, ValType,
};

/// Name of the scratch-page function and of its global.
pub(super) const SCRATCH_FN: &str = "agent_patch:scratch_page.v1";
/// Name of the controller check.
pub(super) const GUARD_FN: &str = "agent_patch:require_controller.v1";
/// Trap message of a failed `memory.grow`.
pub(super) const GROW_FAILED: &str =
    "agent patch: memory.grow failed, no Wasm page left for the patch's scratch area";
/// Trap message of the controller check.
pub(super) const NOT_CONTROLLER: &str = "caller is not a controller of this canister";
/// Wasm page size: the scratch area's size.
pub(super) const PAGE: usize = 65_536;

/// The shared helpers of one `apply_patch` call, created on first use.
#[derive(Debug, Default)]
pub(super) struct Runtime {
    memory: Option<MemoryId>,
    scratch: Option<FunctionId>,
    guard: Option<FunctionId>,
}

/// Where a trap message is written before `ic0.trap` reads it.
#[derive(Clone, Copy)]
enum Dest {
    /// A fixed address: only used when trapping anyway, when clobbering does not matter.
    Const(i32),
    /// An address held in a local.
    Local(LocalId),
}

impl Runtime {
    /// The module's memory, adding an empty one if it has none.
    pub(super) fn memory(&mut self, module: &mut Module) -> MemoryId {
        *self.memory.get_or_insert_with(|| {
            // Multi-memory is outside the IC's feature set, so there is at most one.
            let existing = module.memories.iter().next().map(|memory| memory.id());
            existing.unwrap_or_else(|| module.memories.add_local(false, false, 0, None, None))
        })
    }

    /// `agent_patch:scratch_page.v1`: returns the scratch page's address, growing it on first
    /// use.
    pub(super) fn scratch_page(&mut self, module: &mut Module) -> Result<FunctionId, PatchError> {
        if let Some(func) = self.scratch {
            return Ok(func);
        }
        if let Some(func) = reuse(module, SCRATCH_FN, &[ValType::I32]) {
            self.scratch = Some(func);
            return Ok(func);
        }
        let memory = self.memory(module);
        let trap = ic0_import(module, "trap")?;
        let global =
            module
                .globals
                .add_local(ValType::I32, true, false, ConstExpr::Value(Value::I32(-1)));
        module.globals.get_mut(global).name = Some(SCRATCH_FN.to_string());
        let message = passive(module, GROW_FAILED.as_bytes());
        let page = module.locals.add(ValType::I32);

        let mut builder = FunctionBuilder::new(&mut module.types, &[], &[ValType::I32]);
        builder.name(SCRATCH_FN.to_string());
        let mut body = builder.func_body();
        body.global_get(global)
            .i32_const(-1)
            .binop(BinaryOp::I32Ne)
            .if_else(
                None::<ValType>,
                |then| {
                    then.global_get(global).return_();
                },
                |_| {},
            )
            .i32_const(1)
            .memory_grow(memory)
            .local_tee(page)
            .i32_const(-1)
            .binop(BinaryOp::I32Eq)
            .if_else(
                None::<ValType>,
                |then| trap_with(then, Dest::Const(0), memory, message, GROW_FAILED, trap),
                |_| {},
            )
            .local_get(page)
            .i32_const(16)
            .binop(BinaryOp::I32Shl)
            .global_set(global)
            .global_get(global);
        let func = builder.finish(vec![], &mut module.funcs);
        self.scratch = Some(func);
        Ok(func)
    }

    /// `agent_patch:require_controller.v1`: traps with [`NOT_CONTROLLER`] unless
    /// `ic0.is_controller(caller)`.
    pub(super) fn require_controller(
        &mut self,
        module: &mut Module,
    ) -> Result<FunctionId, PatchError> {
        if let Some(func) = self.guard {
            return Ok(func);
        }
        if let Some(func) = reuse(module, GUARD_FN, &[]) {
            self.guard = Some(func);
            return Ok(func);
        }
        let scratch = self.scratch_page(module)?;
        let memory = self.memory(module);
        let caller_size = ic0_import(module, "msg_caller_size")?;
        let caller_copy = ic0_import(module, "msg_caller_copy")?;
        let is_controller = ic0_import(module, "is_controller")?;
        let trap = ic0_import(module, "trap")?;
        let message = passive(module, NOT_CONTROLLER.as_bytes());
        let page = module.locals.add(ValType::I32);
        let size = module.locals.add(ValType::I32);

        // A principal is at most 29 bytes: it always fits the scratch page.
        let mut builder = FunctionBuilder::new(&mut module.types, &[], &[]);
        builder.name(GUARD_FN.to_string());
        builder
            .func_body()
            .call(scratch)
            .local_set(page)
            .call(caller_size)
            .local_set(size)
            .local_get(page)
            .i32_const(0)
            .local_get(size)
            .call(caller_copy)
            .local_get(page)
            .local_get(size)
            .call(is_controller)
            .unop(UnaryOp::I32Eqz)
            .if_else(
                None::<ValType>,
                |then| {
                    trap_with(
                        then,
                        Dest::Local(page),
                        memory,
                        message,
                        NOT_CONTROLLER,
                        trap,
                    )
                },
                |_| {},
            );
        let func = builder.finish(vec![], &mut module.funcs);
        self.guard = Some(func);
        Ok(func)
    }
}

/// A local function called `name` with type `() -> results`, left by an earlier patch.
fn reuse(module: &Module, name: &str, results: &[ValType]) -> Option<FunctionId> {
    let func = module.funcs.by_name(name)?;
    let func = module.funcs.get(func);
    let (params, found) = module.types.params_results(func.ty());
    (matches!(func.kind, walrus::FunctionKind::Local(_)) && params.is_empty() && found == results)
        .then(|| func.id())
}

/// Adds a passive data segment.
pub(super) fn passive(module: &mut Module, bytes: &[u8]) -> DataId {
    module.data.add(DataKind::Passive, bytes.to_vec())
}

/// Emits: copy `message` to `dest`, `ic0.trap(dest, len)`, `unreachable`.
fn trap_with(
    seq: &mut InstrSeqBuilder<'_>,
    dest: Dest,
    memory: MemoryId,
    data: DataId,
    message: &str,
    trap: FunctionId,
) {
    let len = message.len() as i32;
    let push_dest = |seq: &mut InstrSeqBuilder<'_>| match dest {
        Dest::Const(addr) => {
            seq.i32_const(addr);
        }
        Dest::Local(local) => {
            seq.local_get(local);
        }
    };
    push_dest(seq);
    seq.i32_const(0).i32_const(len).memory_init(memory, data);
    push_dest(seq);
    seq.i32_const(len).call(trap).unreachable();
}

fn to_valtype(ty: &Ic0Type) -> ValType {
    match ty {
        Ic0Type::I32 => ValType::I32,
        Ic0Type::I64 => ValType::I64,
    }
}

/// The function `ic0.NAME`, imported with the System API's signature if the module lacks it.
pub(super) fn ic0_import(module: &mut Module, name: &str) -> Result<FunctionId, PatchError> {
    // Only called with names from this crate's own code; a unit test covers every one.
    let spec = ic0::lookup(name).expect("the patch code uses only System API functions");
    let params: Vec<ValType> = spec.params.iter().map(to_valtype).collect();
    let results: Vec<ValType> = spec.results.iter().map(to_valtype).collect();
    let mismatch = |found: String| PatchError::Ic0ImportMismatch {
        name: name.to_string(),
        expected: ic0_signature(spec),
        found,
    };
    let Some(import) = module.imports.find("ic0", name) else {
        let ty = module.types.add(&params, &results);
        return Ok(module.add_import_func("ic0", name, ty).0);
    };
    match module.imports.get(import).kind {
        ImportKind::Function(func) => {
            let (p, r) = module.types.params_results(module.funcs.get(func).ty());
            if p == params.as_slice() && r == results.as_slice() {
                Ok(func)
            } else {
                Err(mismatch(signature(p, r)))
            }
        }
        ImportKind::Memory(_) => Err(mismatch("a memory".to_string())),
        ImportKind::Table(_) => Err(mismatch("a table".to_string())),
        ImportKind::Global(_) => Err(mismatch("a global".to_string())),
        ImportKind::Tag(_) => Err(mismatch("a tag".to_string())),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn injected_imports_exist_in_the_system_api() {
        for name in [
            "trap",
            "msg_caller_size",
            "msg_caller_copy",
            "is_controller",
            "msg_reply_data_append",
            "msg_reply",
        ] {
            assert!(crate::ic0::lookup(name).is_some(), "{name}");
        }
    }
}
