//! Repository: memory facts. Schema 3 keys them by `(namespace, key)` (MemoryId `FACTS`);
//! older builds keep `key -> value` (MemoryId `FACTS_V1`) and only know namespace `default`.

use crate::api::Fact;
use crate::memory::{self, Mem};
use crate::schema::SCHEMA;
use ic_stable_structures::StableBTreeMap;
use migrations::{DEFAULT_NAMESPACE, FactKey};
use std::cell::RefCell;

/// Longest key or namespace, in bytes.
pub const MAX_KEY: usize = 256;
/// Longest value, in bytes.
pub const MAX_VALUE: usize = 64 * 1024;

thread_local! {
    // Only the map of this build's schema is ever opened: an older build must not create
    // the v3 map, and a v3 build never writes the retired v1 map.
    static FACTS: RefCell<Option<StableBTreeMap<FactKey, String, Mem>>> = const { RefCell::new(None) };
    static FACTS_V1: RefCell<Option<StableBTreeMap<String, String, Mem>>> = const { RefCell::new(None) };
}

/// Why a fact operation is refused.
#[derive(Debug, thiserror::Error)]
pub enum FactError {
    /// Bad namespace or key or value.
    #[error("{0}")]
    Invalid(String),
}

fn check(namespace: &str, key: &str) -> Result<(), FactError> {
    if key.is_empty() || key.len() > MAX_KEY || namespace.is_empty() || namespace.len() > MAX_KEY {
        return Err(FactError::Invalid(format!(
            "namespace and key must be 1..={MAX_KEY} bytes"
        )));
    }
    if namespace.contains('\0') {
        return Err(FactError::Invalid("namespace must not contain NUL".into()));
    }
    if SCHEMA < 3 && namespace != DEFAULT_NAMESPACE {
        return Err(FactError::Invalid(format!(
            "namespaces need schema v3; this build is at v{SCHEMA} and knows only `{DEFAULT_NAMESPACE}`"
        )));
    }
    Ok(())
}

fn with_v3<R>(f: impl FnOnce(&mut StableBTreeMap<FactKey, String, Mem>) -> R) -> R {
    FACTS.with(|m| {
        f(m.borrow_mut()
            .get_or_insert_with(|| StableBTreeMap::init(memory::get(memory::FACTS))))
    })
}

fn with_v1<R>(f: impl FnOnce(&mut StableBTreeMap<String, String, Mem>) -> R) -> R {
    FACTS_V1.with(|m| {
        f(m.borrow_mut()
            .get_or_insert_with(|| StableBTreeMap::init(memory::get(memory::FACTS_V1))))
    })
}

/// Stores a fact, replacing any value under the same key; returns the old value.
pub fn remember(namespace: &str, key: &str, value: String) -> Result<Option<String>, FactError> {
    #[cfg(feature = "chaos")]
    crate::chaos::on_write("remember");
    check(namespace, key)?;
    if value.len() > MAX_VALUE {
        return Err(FactError::Invalid(format!(
            "value of {} bytes exceeds {MAX_VALUE}",
            value.len()
        )));
    }
    Ok(if SCHEMA >= 3 {
        with_v3(|m| m.insert(FactKey::new(namespace, key).expect("checked"), value))
    } else {
        with_v1(|m| m.insert(key.to_string(), value))
    })
}

/// The fact's value.
pub fn recall(namespace: &str, key: &str) -> Result<Option<String>, FactError> {
    check(namespace, key)?;
    Ok(if SCHEMA >= 3 {
        with_v3(|m| m.get(&FactKey::new(namespace, key).expect("checked")))
    } else {
        with_v1(|m| m.get(&key.to_string()))
    })
}

/// Removes a fact; returns its value.
pub fn forget(namespace: &str, key: &str) -> Result<Option<String>, FactError> {
    check(namespace, key)?;
    Ok(if SCHEMA >= 3 {
        with_v3(|m| m.remove(&FactKey::new(namespace, key).expect("checked")))
    } else {
        with_v1(|m| m.remove(&key.to_string()))
    })
}

/// Every fact of a namespace (all namespaces when `None`), at most `limit`.
pub fn list(namespace: Option<&str>, limit: usize) -> Vec<Fact> {
    let fact = |namespace: String, key: String, value: String| Fact {
        namespace,
        key,
        value,
    };
    if SCHEMA >= 3 {
        with_v3(|m| {
            m.iter()
                .map(|e| e.into_pair())
                .filter(|(k, _)| namespace.is_none_or(|ns| k.namespace == ns))
                .take(limit)
                .map(|(k, v)| fact(k.namespace, k.key, v))
                .collect()
        })
    } else {
        if namespace.is_some_and(|ns| ns != DEFAULT_NAMESPACE) {
            return vec![];
        }
        with_v1(|m| {
            m.iter()
                .take(limit)
                .map(|e| {
                    let (k, v) = e.into_pair();
                    fact(DEFAULT_NAMESPACE.to_string(), k, v)
                })
                .collect()
        })
    }
}
