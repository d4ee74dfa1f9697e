//! `add_query_method`: a new `canister_query NAME` that replies fixed bytes.
//!
//! ```text
//! (func $canister_query NAME                    ;; only if the reply is not empty:
//!   call $agent_patch:scratch_page.v1 -> p
//!   memory.init $reply (p, offset, len)         ;; one page at a time
//!   call $ic0.msg_reply_data_append (p, len)
//!   ...
//!   call $ic0.msg_reply)
//! ```

use super::runtime::{self, PAGE, Runtime};
use crate::PatchError;
use crate::exports::{METHOD_PREFIXES, split_method};
use walrus::{FunctionBuilder, Module, ValType};

/// The largest response the IC delivers.
const MAX_REPLY: u64 = 2 * 1024 * 1024;

pub(super) fn add_query_method(
    module: &mut Module,
    runtime: &mut Runtime,
    op_index: usize,
    name: &str,
    reply: &[u8],
) -> Result<(), PatchError> {
    if name.is_empty() {
        return Err(PatchError::EmptyMethodName {
            op_index,
            op: "add_query_method",
        });
    }
    // Any export, not only functions: two exports with one name would not even be valid Wasm.
    if let Some(existing) = module
        .exports
        .iter()
        .find(|e| split_method(&e.name).is_some_and(|(_, method)| method == name))
    {
        return Err(PatchError::MethodExists {
            op_index,
            name: name.to_string(),
            export: existing.name.clone(),
        });
    }
    let size = reply.len() as u64;
    if size > MAX_REPLY {
        return Err(PatchError::ReplyTooLarge {
            op_index,
            size,
            limit: MAX_REPLY,
        });
    }

    let export = format!("{}{name}", METHOD_PREFIXES[1]);
    let append = runtime::ic0_import(module, "msg_reply_data_append")?;
    let msg_reply = runtime::ic0_import(module, "msg_reply")?;
    let mut copy = None;
    if !reply.is_empty() {
        let scratch = runtime.scratch_page(module)?;
        let memory = runtime.memory(module);
        let data = runtime::passive(module, reply);
        copy = Some((scratch, memory, data, module.locals.add(ValType::I32)));
    }

    let mut builder = FunctionBuilder::new(&mut module.types, &[], &[]);
    builder.name(export.clone());
    let mut body = builder.func_body();
    if let Some((scratch, memory, data, page)) = copy {
        body.call(scratch).local_set(page);
        // Both fit in i32: the reply is at most 2 MiB.
        for (index, chunk) in reply.chunks(PAGE).enumerate() {
            let (offset, len) = ((index * PAGE) as i32, chunk.len() as i32);
            body.local_get(page)
                .i32_const(offset)
                .i32_const(len)
                .memory_init(memory, data)
                .local_get(page)
                .i32_const(len)
                .call(append);
        }
    }
    body.call(msg_reply);
    let func = builder.finish(vec![], &mut module.funcs);
    module.exports.add(&export, func);
    Ok(())
}
