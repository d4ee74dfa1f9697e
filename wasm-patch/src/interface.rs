//! A module's Candid interface: the `candid:service` metadata (canister-build writes the
//! checked-in `.did` there). [`crate::apply_patch`] keeps it in step with the methods a patch
//! adds or removes ([`add_query`], [`remove_method`]), and [`check_subtype`] is DESIGN.md step
//! 3's compatibility check: a candidate's interface must be a subtype of the running one
//! (candid's own `subtype` relation), or a client written against the running interface breaks.
//!
//! The service text is parsed with `candid_parser` and printed back with candid's printer, so
//! an edited interface loses the original's comments; types keep their names. A query added by
//! a patch is declared `NAME : () -> (T...) query`, where the `T`s are the types the reply's
//! Candid message carries (record fields by their ids, as on the wire).

use crate::error::InterfaceError;
use candid::TypeEnv;
use candid::types::{FuncMode, Function, Type, TypeInner};
use candid_parser::utils::CandidSource;

/// The metadata NAME of a module's Candid interface.
pub const CANDID_SERVICE: &str = "candid:service";

/// The parsed interface: its type environment, the init arguments (a service constructor's,
/// if it is one) and its methods.
struct Service {
    env: TypeEnv,
    init: Option<Vec<Type>>,
    methods: Vec<(String, Type)>,
}

fn load(text: &str) -> Result<Service, InterfaceError> {
    let (env, actor) = CandidSource::Text(text)
        .load()
        .map_err(|e| InterfaceError::Parse(e.to_string()))?;
    let actor = actor.ok_or(InterfaceError::NoService)?;
    let actor = env
        .trace_type(&actor)
        .map_err(|e| InterfaceError::Parse(e.to_string()))?;
    let (init, service) = match actor.as_ref() {
        TypeInner::Class(init, service) => (Some(init.clone()), service.clone()),
        _ => (None, actor.clone()),
    };
    let methods = env
        .as_service(&service)
        .map_err(|e| InterfaceError::Parse(e.to_string()))?
        .to_vec();
    Ok(Service { env, init, methods })
}

fn print(service: Service) -> String {
    let methods: Type = TypeInner::Service(service.methods).into();
    let actor = match service.init {
        Some(init) => TypeInner::Class(init, methods).into(),
        None => methods,
    };
    candid::pretty::candid::compile(&service.env, &Some(actor))
}

/// `text` with the query `name` added, replying `reply` (a Candid message).
pub fn add_query(text: &str, name: &str, reply: &[u8]) -> Result<String, InterfaceError> {
    let rets = candid::IDLArgs::from_bytes(reply)
        .map_err(|e| InterfaceError::Reply {
            method: name.to_string(),
            reason: e.to_string(),
        })?
        .get_types();
    let mut service = load(text)?;
    let func: Type = TypeInner::Func(Function {
        modes: vec![FuncMode::Query],
        args: vec![],
        rets,
    })
    .into();
    service.methods.retain(|(m, _)| m != name);
    let at = service
        .methods
        .iter()
        .position(|(m, _)| m.as_str() > name)
        .unwrap_or(service.methods.len());
    service.methods.insert(at, (name.to_string(), func));
    Ok(print(service))
}

/// `text` without method `name`.
pub fn remove_method(text: &str, name: &str) -> Result<String, InterfaceError> {
    let mut service = load(text)?;
    service.methods.retain(|(m, _)| m != name);
    Ok(print(service))
}

/// `Ok` if the service `new` is a subtype of `old`: every method of `old` is in `new` with a
/// type a client of `old` can still call. The error lists every incompatibility.
pub fn check_subtype(new: &str, old: &str) -> Result<(), InterfaceError> {
    let new = service_type(new)?;
    let old = service_type(old)?;
    let mut env = new.0;
    let old_ty = env.merge_type(old.0, old.1);
    let mut gamma = std::collections::HashSet::new();
    let problems = candid::types::subtype::subtype_check_all(&mut gamma, &env, &new.1, &old_ty);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(InterfaceError::NotSubtype(
            candid::types::subtype::format_report(&problems),
        ))
    }
}

/// The service type of `text` (init arguments dropped: they are not part of the interface a
/// client calls).
fn service_type(text: &str) -> Result<(TypeEnv, Type), InterfaceError> {
    let service = load(text)?;
    Ok((service.env, TypeInner::Service(service.methods).into()))
}

/// The `candid:service` text of `wasm` (raw or gzip), if it has one.
pub fn service_text(wasm: &[u8]) -> Result<Option<String>, crate::ValidationError> {
    let sections = crate::fingerprint::icp_sections(wasm)?;
    Ok(crate::metadata::find(&sections, CANDID_SERVICE)
        .and_then(|(_, content)| String::from_utf8(content.to_vec()).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "type R = record { a : nat };\n\
        service : (nat) -> {\n  get : () -> (R) query;\n  put : (R) -> ();\n}";

    #[test]
    fn adding_a_query_keeps_a_subtype_and_declares_its_reply() {
        let reply = candid::encode_one("hi").unwrap();
        let new = add_query(OLD, "hello", &reply).unwrap();
        assert!(new.contains("hello : () -> (text) query"), "{new}");
        assert!(new.contains("get : () -> (R) query"), "{new}");
        check_subtype(&new, OLD).unwrap();
    }

    #[test]
    fn removing_a_method_is_not_a_subtype_and_says_which() {
        let new = remove_method(OLD, "put").unwrap();
        assert!(!new.contains("put"), "{new}");
        let e = check_subtype(&new, OLD).unwrap_err().to_string();
        assert!(e.contains("put"), "{e}");
    }

    #[test]
    fn a_changed_return_type_is_not_a_subtype() {
        let new = OLD.replace("a : nat", "a : text");
        assert!(check_subtype(&new, OLD).is_err());
        assert!(check_subtype(OLD, OLD).is_ok());
    }

    #[test]
    fn bad_text_and_bad_replies_are_typed_errors() {
        assert!(matches!(load("service : {"), Err(InterfaceError::Parse(_))));
        assert!(matches!(
            load("type A = nat;"),
            Err(InterfaceError::NoService)
        ));
        assert!(matches!(
            add_query(OLD, "x", b"not candid"),
            Err(InterfaceError::Reply { .. })
        ));
    }
}
