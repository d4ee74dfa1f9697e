//! The host ABI, version 1: what compiled tool code may call, and the two hooks a patch
//! rewrites.
//!
//! Every agent build exports each function of [`FUNCTIONS`] under `agent_tool_abi.v1.NAME`
//! (export names without the `canister_` prefix are no entry points: the IC accepts them and
//! nobody can call them from outside). A patch finds them by name in any agent module and
//! checks their types, so compiled code does not depend on how the agent was linked.
//!
//! Values other than `int` and `bool` live in the host, in an arena, and compiled code holds
//! `i32` handles: the call's arguments are handles `0..n` (ints and bools are read with
//! `arg_int` / `arg_bool`). A function that can fail answers `-1` (or, for `fact_put` and
//! `fact_delete`, a negative status) after recording the fault; compiled code then calls
//! `fault(0, node)` to say where, and returns `-1`. The host also records misuse (a handle of
//! the wrong kind): a call whose host saw a fault fails, whatever its code returns.
//!
//! | function | type | does |
//! | --- | --- | --- |
//! | `bytes_push` | `(i64, i32) -> ()` | appends the first `n` (1-8) little-endian bytes of the `i64` to a buffer |
//! | `const_str` | `() -> i32` | the buffer as a string (it is emptied) |
//! | `arg_int`, `arg_bool` | `(i32) -> i64`, `(i32) -> i32` | argument `i` |
//! | `str_concat` | `(i32, i32) -> i32` | `a` followed by `b` (fails over the length limit) |
//! | `str_len` | `(i32) -> i64` | length in characters |
//! | `str_slice` | `(i32, i64, i64) -> i32` | characters `from..to`, clamped |
//! | `str_cmp` | `(i32, i32) -> i32` | -1, 0 or 1 |
//! | `str_parse_int` | `(i32, i64) -> i64` | the integer, or the default |
//! | `int_to_str`, `bool_to_str` | `(i64) -> i32`, `(i32) -> i32` | text |
//! | `list_len`, `list_get` | `(i32) -> i32`, `(i32, i32) -> i32` | a list's length, item |
//! | `json_null`, `json_int`, `json_bool`, `json_str`, `json_list` | `-> i32` | a JSON value |
//! | `json_object`, `json_array` | `() -> i32` | an empty object, array |
//! | `json_set`, `json_push` | `(i32, i32, i32) -> i32`, `(i32, i32) -> i32` | adds a value to it in place, taking the value's handle (it is left `null`); answers it |
//! | `json_copy` | `(i32) -> i32` | a copy of a JSON value (compiled code copies a value it still needs before it gives it away) |
//! | `fact_get` | `(i32, i32) -> i32` | the value under a key, or the default |
//! | `fact_put`, `fact_delete` | `(i32, i32) -> i32`, `(i32) -> i32` | 1 if a value was there, 0 if not |
//! | `fact_keys` | `(i32, i32) -> i32` | the first `limit` keys with a prefix |
//! | `tick` | `() -> i32` | one loop iteration of the budget; 0, or -1 when used up |
//! | `mark`, `release` | `() -> i32`, `(i32, i32) -> i32` | frees what a loop iteration made, keeping one handle (the accumulator, or -1) |
//! | `fault` | `(i32, i32) -> ()` | `fault(code, node)`: 1 overflow, 2 division by zero, 0 "the pending fault is at `node`" |
//!
//! The hooks, [`DISPATCH`] `(i32) -> i32` and [`REGISTRY`] `() -> i32`, are functions of the
//! agent whose bodies a patch replaces: `dispatch(i)` runs synthesized tool `i` (-2 for no such
//! tool), `registry()` pushes the registry's JSON with `bytes_push` and answers 1 (the
//! unpatched build answers 0: no tools).

/// Export-name prefix of the ABI.
pub const PREFIX: &str = "agent_tool_abi.v1.";
/// The dispatch hook's export name.
pub const DISPATCH: &str = "agent_tool_abi.v1.dispatch";
/// The registry hook's export name.
pub const REGISTRY: &str = "agent_tool_abi.v1.registry";

/// A Wasm value type of the ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// i32
    I32,
    /// i64
    I64,
}

/// One function of the ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbiFunction {
    /// Its name after [`PREFIX`].
    pub name: &'static str,
    /// Parameter types.
    pub params: &'static [Ty],
    /// Result types.
    pub results: &'static [Ty],
}

impl AbiFunction {
    /// Its export name.
    pub fn export(&self) -> String {
        format!("{PREFIX}{}", self.name)
    }
}

use Ty::{I32, I64};

macro_rules! abi {
    ($($id:ident $name:literal ($($p:expr),*) -> ($($r:expr),*);)*) => {
        /// The ABI functions, by position (compiled code calls them by [`Abi`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[allow(missing_docs)]
        #[repr(usize)]
        pub enum Abi { $($id),* }

        /// Every ABI function, in [`Abi`] order.
        pub const FUNCTIONS: &[AbiFunction] = &[
            $(AbiFunction { name: $name, params: &[$($p),*], results: &[$($r),*] }),*
        ];
    };
}

abi! {
    BytesPush "bytes_push" (I64, I32) -> ();
    ConstStr "const_str" () -> (I32);
    ArgInt "arg_int" (I32) -> (I64);
    ArgBool "arg_bool" (I32) -> (I32);
    StrConcat "str_concat" (I32, I32) -> (I32);
    StrLen "str_len" (I32) -> (I64);
    StrSlice "str_slice" (I32, I64, I64) -> (I32);
    StrCmp "str_cmp" (I32, I32) -> (I32);
    StrParseInt "str_parse_int" (I32, I64) -> (I64);
    IntToStr "int_to_str" (I64) -> (I32);
    BoolToStr "bool_to_str" (I32) -> (I32);
    ListLen "list_len" (I32) -> (I32);
    ListGet "list_get" (I32, I32) -> (I32);
    JsonNull "json_null" () -> (I32);
    JsonInt "json_int" (I64) -> (I32);
    JsonBool "json_bool" (I32) -> (I32);
    JsonStr "json_str" (I32) -> (I32);
    JsonList "json_list" (I32) -> (I32);
    JsonObject "json_object" () -> (I32);
    JsonSet "json_set" (I32, I32, I32) -> (I32);
    JsonArray "json_array" () -> (I32);
    JsonPush "json_push" (I32, I32) -> (I32);
    JsonCopy "json_copy" (I32) -> (I32);
    FactGet "fact_get" (I32, I32) -> (I32);
    FactPut "fact_put" (I32, I32) -> (I32);
    FactDelete "fact_delete" (I32) -> (I32);
    FactKeys "fact_keys" (I32, I32) -> (I32);
    Tick "tick" () -> (I32);
    Mark "mark" () -> (I32);
    Release "release" (I32, I32) -> (I32);
    Fault "fault" (I32, I32) -> ();
}

/// `fault` code: integer overflow.
pub const FAULT_OVERFLOW: i32 = 1;
/// `fault` code: division by zero.
pub const FAULT_DIVISION_BY_ZERO: i32 = 2;
/// `dispatch` answer for an index that is no tool.
pub const NO_SUCH_TOOL: i32 = -2;

/// Where each ABI function is in one module: its function index, by [`Abi`] position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbiIndices(pub Vec<u32>);

impl AbiIndices {
    /// The canonical numbering (function `i` at index `i`), under which a tool's code hash is
    /// taken, so the hash does not depend on where a module keeps the ABI.
    pub fn canonical() -> Self {
        Self((0..FUNCTIONS.len() as u32).collect())
    }

    /// The index of `f`.
    pub fn of(&self, f: Abi) -> u32 {
        self.0[f as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_and_the_enum_agree() {
        assert_eq!(FUNCTIONS[Abi::Fault as usize].name, "fault");
        assert_eq!(FUNCTIONS[Abi::BytesPush as usize].name, "bytes_push");
        let mut names: Vec<&str> = FUNCTIONS.iter().map(|f| f.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), FUNCTIONS.len(), "names are unique");
    }
}
