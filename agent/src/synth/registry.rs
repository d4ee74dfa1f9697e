//! The synthesized tools of this module: its registry, as the registry hook pushes it, checked
//! once per module instance and kept on the heap (a new module starts afresh).

use super::abi;
use std::cell::RefCell;
use std::rc::Rc;
use tool_spec::ToolSpec;
use tool_spec::registry::Registry;

/// The checked specs, in dispatch order, or why the registry does not load.
pub type Tools = Rc<Result<Vec<ToolSpec>, String>>;

thread_local! {
    static TOOLS: RefCell<Option<Tools>> = const { RefCell::new(None) };
}

/// This module's tools.
pub fn tools() -> Tools {
    TOOLS.with(|t| {
        t.borrow_mut()
            .get_or_insert_with(|| Rc::new(load()))
            .clone()
    })
}

fn load() -> Result<Vec<ToolSpec>, String> {
    let bytes = abi::registry_bytes();
    if bytes.is_empty() {
        return Ok(vec![]);
    }
    let registry = Registry::parse(&bytes).map_err(|e| e.to_string())?;
    #[cfg(feature = "chaos")]
    crate::chaos::set_compiler_fault();
    registry.specs().map_err(|e| e.to_string())
}
