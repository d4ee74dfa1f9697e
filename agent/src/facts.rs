//! Repository: memory facts. Schema 3 keys them by `(namespace, key)` (MemoryId `FACTS`);
//! older builds keep `key -> value` (MemoryId `FACTS_V1`) and only know namespace `default`.

use crate::api::{Fact, FactCursor, FactPage};
use crate::digest;
use crate::memory::{self, Mem};
use crate::schema::SCHEMA;
use canister_api::page;
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
    check(namespace, key)?;
    if value.len() > MAX_VALUE {
        return Err(FactError::Invalid(format!(
            "value of {} bytes exceeds {MAX_VALUE}",
            value.len()
        )));
    }
    let old = if SCHEMA >= 3 {
        with_v3(|m| {
            m.insert(
                FactKey::new(namespace, key).expect("checked"),
                value.clone(),
            )
        })
    } else {
        with_v1(|m| m.insert(key.to_string(), value.clone()))
    };
    digest::fact_changed(namespace, key, old.as_deref(), Some(&value));
    Ok(old)
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
    let old = if SCHEMA >= 3 {
        with_v3(|m| m.remove(&FactKey::new(namespace, key).expect("checked")))
    } else {
        with_v1(|m| m.remove(&key.to_string()))
    };
    digest::fact_changed(namespace, key, old.as_deref(), None);
    Ok(old)
}

/// The chaos build's `corrupt_raw`: rewrites the first fact's value behind the digest's back,
/// as a faulty migration writing through the raw stores would.
#[cfg(feature = "chaos")]
pub fn corrupt_first_behind_the_digest() {
    if SCHEMA >= 3 {
        with_v3(|m| {
            if let Some((k, v)) = m.first_key_value() {
                m.insert(k, format!("{v} (corrupted)"));
            }
        })
    }
}

/// Calls `f` with every fact as `(namespace, key, value)`, in key order (a scan: for
/// recounting the digest).
pub fn visit(mut f: impl FnMut(&str, &str, &str)) {
    if SCHEMA >= 3 {
        with_v3(|m| {
            for e in m.iter() {
                let (k, v) = e.into_pair();
                f(&k.namespace, &k.key, &v);
            }
        })
    } else {
        with_v1(|m| {
            for e in m.iter() {
                let (k, v) = e.into_pair();
                f(DEFAULT_NAMESPACE, &k, &v);
            }
        })
    }
}

/// A page of facts (see `canister_api::page`): those of `namespace` (all namespaces when
/// `None`) from `from` on, in `(namespace, key)` order, at most `limit`.
pub fn page(
    namespace: Option<&str>,
    from: Option<FactCursor>,
    limit: u32,
) -> Result<FactPage, FactError> {
    let start = match (&from, namespace) {
        (Some(c), Some(ns)) if c.namespace != ns => {
            return Err(FactError::Invalid(format!(
                "the cursor is in namespace `{}`, the page asks for `{ns}`",
                c.namespace
            )));
        }
        (Some(c), _) => c.clone(),
        (None, ns) => FactCursor {
            namespace: ns.unwrap_or_default().to_string(),
            key: String::new(),
        },
    };
    let fact = |namespace: String, key: String, value: String| {
        let cursor = FactCursor {
            namespace: namespace.clone(),
            key: key.clone(),
        };
        (
            cursor,
            Fact {
                namespace,
                key,
                value,
            },
        )
    };
    let (facts, next_from) = if SCHEMA >= 3 {
        let start = FactKey::new(&start.namespace, &start.key)
            .ok_or_else(|| FactError::Invalid("namespace must not contain NUL".into()))?;
        with_v3(|m| {
            let items = m
                .range(start..)
                .map(|e| e.into_pair())
                .take_while(|(k, _)| namespace.is_none_or(|ns| k.namespace == ns))
                .map(|(k, v)| fact(k.namespace, k.key, v));
            page::collect(items, limit, page::PAGE_BYTES)
        })
    } else {
        if namespace.is_some_and(|ns| ns != DEFAULT_NAMESPACE)
            || start.namespace.as_str() > DEFAULT_NAMESPACE
        {
            return Ok(FactPage {
                facts: vec![],
                next_from: None,
            });
        }
        let from_key = if start.namespace == DEFAULT_NAMESPACE {
            start.key
        } else {
            String::new()
        };
        with_v1(|m| {
            let items = m.range(from_key..).map(|e| {
                let (k, v) = e.into_pair();
                fact(DEFAULT_NAMESPACE.to_string(), k, v)
            });
            page::collect(items, limit, page::PAGE_BYTES)
        })
    };
    Ok(FactPage { facts, next_from })
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
