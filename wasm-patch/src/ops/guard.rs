//! `guard_controller_only`: method NAME traps unless its caller is a controller.
//!
//! In place, when the method's function is used nowhere else:
//!
//! ```text
//! (func $method
//!   call $agent_patch:require_controller.v1   ;; inserted
//!   ...original body...)
//! ```
//!
//! Wrapped, when the function is also called or referenced by other code (a call, `ref.func`, a
//! table, the start function), exported under another name, or imported: editing it would
//! guard those other paths too (or is impossible), so a new function is exported instead:
//!
//! ```text
//! (func $agent_patch:guarded NAME
//!   call $agent_patch:require_controller.v1
//!   call $method)
//! ```

use super::runtime::Runtime;
use super::{method_exports, method_not_found};
use crate::PatchError;
use crate::error::signature;
use walrus::ir::{Visitor, dfs_in_order};
use walrus::{
    ConstExpr, ElementItems, ExportItem, FunctionBuilder, FunctionId, FunctionKind, GlobalKind,
    Module,
};

pub(super) fn guard_controller_only(
    module: &mut Module,
    runtime: &mut Runtime,
    op_index: usize,
    name: &str,
) -> Result<(), PatchError> {
    let exports = method_exports(module, name);
    if exports.is_empty() {
        return Err(method_not_found(
            module,
            op_index,
            "guard_controller_only",
            name,
        ));
    }
    for &(export, func) in &exports {
        let (params, results) = module.types.params_results(module.funcs.get(func).ty());
        if !params.is_empty() || !results.is_empty() {
            return Err(PatchError::MethodSignature {
                op_index,
                export: module.exports.get(export).name.clone(),
                found: signature(params, results),
            });
        }
    }
    let guard = runtime.require_controller(module)?;

    let mut funcs: Vec<FunctionId> = exports.iter().map(|&(_, func)| func).collect();
    funcs.dedup();
    for func in funcs {
        if needs_wrapper(module, func) {
            let mut builder = FunctionBuilder::new(&mut module.types, &[], &[]);
            builder.name(format!("agent_patch:guarded {name}"));
            builder.func_body().call(guard).call(func);
            let wrapper = builder.finish(vec![], &mut module.funcs);
            for &(export, exported) in &exports {
                if exported == func {
                    module.exports.get_mut(export).item = ExportItem::Function(wrapper);
                }
            }
        } else if let FunctionKind::Local(local) = &mut module.funcs.get_mut(func).kind {
            local.builder_mut().func_body().call_at(0, guard);
        }
    }
    Ok(())
}

/// Whether `func` cannot be edited in place without changing other paths into it.
fn needs_wrapper(module: &Module, func: FunctionId) -> bool {
    let imported = !matches!(module.funcs.get(func).kind, FunctionKind::Local(_));
    let exports = module
        .exports
        .iter()
        .filter(|e| matches!(e.item, ExportItem::Function(f) if f == func))
        .count();
    imported || exports > 1 || module.start == Some(func) || referenced(module, func)
}

/// Whether any code, table or global refers to `func`.
fn referenced(module: &Module, func: FunctionId) -> bool {
    struct Finds {
        target: FunctionId,
        found: bool,
    }
    impl Visitor<'_> for Finds {
        fn visit_function_id(&mut self, id: &FunctionId) {
            self.found |= *id == self.target;
        }
    }
    let mut finds = Finds {
        target: func,
        found: false,
    };
    for (_, local) in module.funcs.iter_local() {
        dfs_in_order(&mut finds, local, local.entry_block());
        if finds.found {
            return true;
        }
    }
    let in_const = |expr: &ConstExpr| match expr {
        ConstExpr::RefFunc(f) => *f == func,
        ConstExpr::Extended(ops) => ops
            .iter()
            .any(|op| matches!(op, walrus::ConstOp::RefFunc(f) if *f == func)),
        _ => false,
    };
    let in_elements = module.elements.iter().any(|elem| match &elem.items {
        ElementItems::Functions(funcs) => funcs.contains(&func),
        ElementItems::Expressions(_, exprs) => exprs.iter().any(in_const),
    });
    let in_globals = module
        .globals
        .iter()
        .any(|g| matches!(&g.kind, GlobalKind::Local(expr) if in_const(expr)));
    in_elements || in_globals
}
