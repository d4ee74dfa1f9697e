//! Running one execution of a canister's Wasm: the live wasmtime instance of an installed
//! canister, instruction metering with fuel, and rollback of everything on a trap.
//!
//! Each canister keeps one live instance between messages. Before every execution its heap and
//! mutable globals are checkpointed; a trap restores them (re-instantiating when the heap grew,
//! since Wasm memory cannot shrink) and undoes stable-memory writes from the context's undo log.

use std::sync::Arc;

use wasmtime::{Global, Memory, Ref, Store, Table, Val};

use crate::api_context::{Entry, ExecCtx};
use crate::config::Fees;
use crate::module::{self, CompiledModule};
use crate::system_api::{HostState, HostTrap};

/// Why an execution trapped, classified as the replica reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TrapKind {
    /// `ic0.trap` (IC0503).
    Explicit(String),
    /// A Wasm trap: unreachable, heap out of bounds, stack overflow... (IC0502).
    Wasm(String),
    /// A System API used against its contract (IC0504).
    ContractViolation(String),
    /// The instruction limit ran out (IC0522).
    InstructionLimit,
    /// Trapped by fault injection (reported as a Wasm trap).
    Injected,
}

/// A canister's heap as of one moment: linear memory and mutable globals.
#[derive(Clone, Debug, Default)]
pub(crate) struct HeapImage {
    pub(crate) memory: Vec<u8>,
    pub(crate) globals: Vec<Val>,
}

impl HeapImage {
    pub(crate) fn size(&self) -> usize {
        self.memory.len() + self.globals.len() * 8
    }
}

/// The live instance of an installed module.
pub(crate) struct Instance {
    pub(crate) module: Arc<CompiledModule>,
    store: Store<HostState>,
    instance: wasmtime::Instance,
    memory: Option<Memory>,
    table: Option<Table>,
    globals: Vec<Global>,
    fees: Fees,
    checkpoint: HeapImage,
}

/// The result of one execution.
pub(crate) struct Invocation {
    pub(crate) ctx: ExecCtx,
    pub(crate) result: Result<(), TrapKind>,
    pub(crate) instructions: u64,
}

impl Instance {
    /// Instantiates `module` with a fresh heap (data segments applied, start not run).
    pub(crate) fn new(module: Arc<CompiledModule>, fees: Fees) -> Result<Self, String> {
        let mut store = Store::new(
            module::engine(),
            HostState {
                ctx: None,
                memory: None,
                fees: fees.clone(),
            },
        );
        store.set_fuel(u64::MAX).map_err(|e| e.to_string())?;
        let instance = module
            .instance_pre
            .instantiate(&mut store)
            .map_err(|e| format!("Wasm module could not be instantiated: {e}"))?;
        let memory = instance.get_memory(&mut store, "__sim_memory");
        let table = instance.get_table(&mut store, "__sim_table");
        let globals = module
            .globals
            .iter()
            .map(|name| {
                instance
                    .get_global(&mut store, name)
                    .expect("instrumentation exported every mutable global")
            })
            .collect();
        store.data_mut().memory = memory;
        Ok(Self {
            module,
            store,
            instance,
            memory,
            table,
            globals,
            fees,
            checkpoint: HeapImage::default(),
        })
    }

    /// Size of the linear memory in bytes.
    pub(crate) fn heap_size(&self) -> usize {
        self.memory.map_or(0, |m| m.data_size(&self.store))
    }

    /// Copies the heap and globals out.
    pub(crate) fn image(&mut self) -> HeapImage {
        let mut image = HeapImage::default();
        self.image_into(&mut image);
        image
    }

    fn image_into(&mut self, image: &mut HeapImage) {
        image.memory.clear();
        if let Some(memory) = self.memory {
            image.memory.extend_from_slice(memory.data(&self.store));
        }
        image.globals.clear();
        for global in &self.globals {
            image.globals.push(global.get(&mut self.store));
        }
    }

    /// Puts the heap and globals back to `image`.
    pub(crate) fn restore(&mut self, image: &HeapImage) -> Result<(), String> {
        if self.heap_size() > image.memory.len() {
            // Wasm memory cannot shrink: start over from a fresh instance of the same module.
            let fresh = Instance::new(self.module.clone(), self.fees.clone())?;
            let checkpoint = std::mem::take(&mut self.checkpoint);
            *self = fresh;
            self.checkpoint = checkpoint;
        }
        if let Some(memory) = self.memory {
            let missing = image.memory.len() - memory.data_size(&self.store);
            if missing > 0 {
                memory
                    .grow(&mut self.store, (missing / 65536) as u64)
                    .map_err(|e| format!("could not restore the heap: {e}"))?;
            }
            memory
                .data_mut(&mut self.store)
                .copy_from_slice(&image.memory);
        }
        for (global, value) in self.globals.iter().zip(&image.globals) {
            global
                .set(&mut self.store, *value)
                .map_err(|e| format!("could not restore a global: {e}"))?;
        }
        Ok(())
    }

    /// Runs `entry` with `ctx` and at most `limit` instructions. A trap rolls back the heap, the
    /// globals and stable memory, and so does a successful run when `keep_changes` is false
    /// (queries); the context still carries the response.
    pub(crate) fn invoke(
        &mut self,
        mut ctx: ExecCtx,
        entry: &Entry,
        limit: u64,
        keep_changes: bool,
    ) -> Invocation {
        ctx.stable_len_before = ctx.stable.len();
        ctx.instruction_limit = limit;
        let mut checkpoint = std::mem::take(&mut self.checkpoint);
        self.image_into(&mut checkpoint);
        self.store.data_mut().ctx = Some(ctx);
        self.store.set_fuel(limit).expect("fuel is enabled");
        let result = self.call(entry);
        let fuel_left = self.store.get_fuel().unwrap_or(0);
        let mut ctx = self
            .store
            .data_mut()
            .ctx
            .take()
            .expect("the context stays in the store during the call");
        let instructions = limit.saturating_sub(fuel_left);
        let result = result.map_err(classify);
        if result.is_err() || !keep_changes {
            ctx.undo_stable();
            if let Err(e) = self.restore(&checkpoint) {
                // Restoring a heap of the same module cannot fail short of the host running
                // out of memory; there is no state left to roll back to.
                panic!("simulator could not roll back a trapped execution: {e}");
            }
        }
        self.checkpoint = checkpoint;
        Invocation {
            ctx,
            result,
            instructions,
        }
    }

    fn call(&mut self, entry: &Entry) -> wasmtime::Result<()> {
        match entry {
            Entry::Export(name) => {
                let func = self
                    .instance
                    .get_typed_func::<(), ()>(&mut self.store, name)?;
                func.call(&mut self.store, ())
            }
            Entry::Table { fun, env } => {
                let func = self
                    .table
                    .and_then(|table| table.get(&mut self.store, u64::from(*fun)))
                    .and_then(|r| match r {
                        Ref::Func(f) => f,
                        _ => None,
                    });
                let Some(func) = func else {
                    return Err(wasmtime::Error::new(HostTrap::Wasm(
                        "table out of bounds".to_string(),
                    )));
                };
                let Ok(func) = func.typed::<u32, ()>(&self.store) else {
                    return Err(wasmtime::Error::new(HostTrap::Wasm(
                        "indirect call signature mismatch".to_string(),
                    )));
                };
                func.call(&mut self.store, *env)
            }
        }
    }
}

fn classify(err: wasmtime::Error) -> TrapKind {
    if let Some(trap) = err.downcast_ref::<HostTrap>() {
        return match trap {
            HostTrap::Explicit(msg) => TrapKind::Explicit(msg.clone()),
            HostTrap::ContractViolation(msg) => TrapKind::ContractViolation(msg.clone()),
            HostTrap::InstructionLimit => TrapKind::InstructionLimit,
            HostTrap::Wasm(what) => TrapKind::Wasm(what.clone()),
        };
    }
    if let Some(trap) = err.downcast_ref::<wasmtime::Trap>() {
        use wasmtime::Trap;
        let what = match trap {
            Trap::OutOfFuel => return TrapKind::InstructionLimit,
            Trap::StackOverflow => "stack overflow",
            Trap::MemoryOutOfBounds => "heap out of bounds",
            Trap::UnreachableCodeReached => "unreachable",
            Trap::IntegerDivisionByZero => "integer division by 0",
            Trap::IntegerOverflow => "integer overflow",
            Trap::BadConversionToInteger => "invalid conversion to integer",
            Trap::TableOutOfBounds => "table out of bounds",
            Trap::IndirectCallToNull => "indirect call to null",
            Trap::BadSignature => "indirect call signature mismatch",
            other => return TrapKind::Wasm(other.to_string()),
        };
        return TrapKind::Wasm(what.to_string());
    }
    TrapKind::Wasm(format!("{err:#}"))
}
