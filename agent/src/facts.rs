//! Repository: memory facts. Schema 3 keys them by `(namespace, key)` (MemoryId `FACTS`);
//! older builds keep `key -> value` (MemoryId `FACTS_V1`) and only know namespace `default`.
//!
//! Schema 3 also reads `FACTS_V1`, as namespace `default`: the v2 -> v3 migration leaves the
//! older facts there (moving each costs a B-tree insert; see `migrations::steps`), and a fact
//! moves to `FACTS` when it is next written, or leaves when it is forgotten. A key is in one of
//! the two maps, never both. Reads merge them in `(namespace, key)` order.

use crate::api::{Fact, FactCursor, FactPage};
use crate::digest;
use crate::memory::{self, Mem};
use crate::schema::SCHEMA;
use canister_api::page;
use ic_stable_structures::{Memory, StableBTreeMap};
use migrations::{DEFAULT_NAMESPACE, FactKey};
use std::cell::RefCell;
use std::iter::Peekable;

/// Longest key or namespace, in bytes.
pub const MAX_KEY: usize = 256;
/// Longest value, in bytes.
pub const MAX_VALUE: usize = 64 * 1024;

thread_local! {
    // An older build never opens the v3 map. A v3 build opens the v1 map only if it exists
    // (a state that was at schema 1 or 2), to read and drain it.
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

/// Under schema 3: `f` on the facts of schemas 1-2, if this state has them (`None` otherwise:
/// the map is not created).
fn with_legacy<R>(f: impl FnOnce(&mut StableBTreeMap<String, String, Mem>) -> R) -> Option<R> {
    let exists =
        FACTS_V1.with(|m| m.borrow().is_some()) || memory::get(memory::FACTS_V1).size() > 0;
    exists.then(|| with_v1(f))
}

/// Removes `key` of namespace `default` from the facts of schemas 1-2, if there.
fn take_legacy(namespace: &str, key: &str) -> Option<String> {
    if namespace != DEFAULT_NAMESPACE {
        return None;
    }
    with_legacy(|m| m.remove(&key.to_string())).flatten()
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
    let old = if SCHEMA >= 3 {
        let key3 = FactKey::new(namespace, key).expect("checked");
        let old = with_v3(|m| m.insert(key3, value.clone()));
        old.or_else(|| take_legacy(namespace, key))
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
        with_v3(|m| m.get(&FactKey::new(namespace, key).expect("checked"))).or_else(|| {
            (namespace == DEFAULT_NAMESPACE)
                .then(|| with_legacy(|m| m.get(&key.to_string())).flatten())
                .flatten()
        })
    } else {
        with_v1(|m| m.get(&key.to_string()))
    })
}

/// Removes a fact; returns its value.
pub fn forget(namespace: &str, key: &str) -> Result<Option<String>, FactError> {
    check(namespace, key)?;
    let old = if SCHEMA >= 3 {
        let old = with_v3(|m| m.remove(&FactKey::new(namespace, key).expect("checked")));
        old.or_else(|| take_legacy(namespace, key))
    } else {
        with_v1(|m| m.remove(&key.to_string()))
    };
    digest::fact_changed(namespace, key, old.as_deref(), None);
    Ok(old)
}

/// Two iterators sorted by key, merged in key order.
struct Merge<A: Iterator, B: Iterator> {
    a: Peekable<A>,
    b: Peekable<B>,
}

impl<A, B> Iterator for Merge<A, B>
where
    A: Iterator<Item = (FactKey, String)>,
    B: Iterator<Item = (FactKey, String)>,
{
    type Item = (FactKey, String);

    fn next(&mut self) -> Option<Self::Item> {
        match (self.a.peek(), self.b.peek()) {
            (Some((ka, _)), Some((kb, _))) if kb < ka => self.b.next(),
            (Some(_), _) => self.a.next(),
            (None, _) => self.b.next(),
        }
    }
}

/// Every fact from `start` on, in `(namespace, key)` order, to `f` (under schema 3, merged from
/// both maps).
fn scan<R>(start: &FactKey, f: impl FnOnce(&mut dyn Iterator<Item = (FactKey, String)>) -> R) -> R {
    if SCHEMA < 3 {
        // Only namespace `default` exists.
        let from = match start.namespace.as_str().cmp(DEFAULT_NAMESPACE) {
            std::cmp::Ordering::Less => Some(String::new()),
            std::cmp::Ordering::Equal => Some(start.key.clone()),
            std::cmp::Ordering::Greater => None,
        };
        return with_v1(|m| {
            let mut items = from.into_iter().flat_map(|from| m.range(from..)).map(|e| {
                let (k, v) = e.into_pair();
                (FactKey::new(DEFAULT_NAMESPACE, &k).expect("no NUL"), v)
            });
            f(&mut items)
        });
    }
    let legacy_from = match start.namespace.as_str().cmp(DEFAULT_NAMESPACE) {
        std::cmp::Ordering::Less => Some(String::new()),
        std::cmp::Ordering::Equal => Some(start.key.clone()),
        std::cmp::Ordering::Greater => None,
    };
    with_v3(|m3| {
        let current = m3.range(start.clone()..).map(|e| e.into_pair());
        let legacy_run = |m1: Option<&mut StableBTreeMap<String, String, Mem>>| {
            let legacy = legacy_from
                .clone()
                .zip(m1)
                .into_iter()
                .flat_map(|(from, m1)| m1.range(from..))
                .map(|e| {
                    let (k, v) = e.into_pair();
                    (FactKey::new(DEFAULT_NAMESPACE, &k).expect("no NUL"), v)
                });
            let mut merged = Merge {
                a: current.peekable(),
                b: legacy.peekable(),
            };
            f(&mut merged)
        };
        if legacy_from.is_some() && with_legacy(|_| ()).is_some() {
            with_v1(|m1| legacy_run(Some(m1)))
        } else {
            legacy_run(None)
        }
    })
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
        (Some(c), _) => FactKey::new(&c.namespace, &c.key),
        (None, ns) => FactKey::new(ns.unwrap_or_default(), ""),
    }
    .ok_or_else(|| FactError::Invalid("namespace must not contain NUL".into()))?;
    let (facts, next_from) = scan(&start, |items| {
        let items = items
            .take_while(|(k, _)| namespace.is_none_or(|ns| k.namespace == ns))
            .map(|(k, value)| {
                let cursor = FactCursor {
                    namespace: k.namespace.clone(),
                    key: k.key.clone(),
                };
                let fact = Fact {
                    namespace: k.namespace,
                    key: k.key,
                    value,
                };
                (cursor, fact)
            });
        page::collect(items, limit, page::PAGE_BYTES)
    });
    Ok(FactPage { facts, next_from })
}

/// The chaos build's faults on the facts at the end of post_upgrade (`corrupt_raw`,
/// `corrupt_state`; see `crate::chaos`).
#[cfg(feature = "chaos")]
pub fn on_chaos_boot() {
    match crate::chaos::mode().as_str() {
        "corrupt_raw" => corrupt_first_behind_the_digest(),
        "corrupt_state" => {
            let first = crate::facts::page(None, None, 1).map(|p| p.facts.into_iter().next());
            if let Ok(Some(f)) = first {
                let _ = crate::facts::forget(&f.namespace, &f.key);
            }
        }
        _ => {}
    }
}

/// The chaos build's `corrupt_raw`: rewrites the first fact's value behind the digest's back,
/// as a faulty migration writing through the raw stores would.
#[cfg(feature = "chaos")]
fn corrupt_first_behind_the_digest() {
    if SCHEMA >= 3 {
        with_v3(|m| {
            if let Some((k, v)) = m.first_key_value() {
                m.insert(k, format!("{v} (corrupted)"));
            }
        })
    }
}

/// The first `limit` keys of `namespace` that start with `prefix`, in order (namespaces other
/// than `default` need schema 3).
pub fn keys(namespace: &str, prefix: &str, limit: usize) -> Vec<String> {
    let Some(start) = FactKey::new(namespace, prefix) else {
        return vec![];
    };
    scan(&start, |items| {
        items
            .take_while(|(k, _)| k.namespace == namespace && k.key.starts_with(prefix))
            .take(limit)
            .map(|(k, _)| k.key)
            .collect()
    })
}

/// Bytes the facts of `namespace` hold: keys plus values.
pub fn namespace_bytes(namespace: &str) -> u64 {
    let Some(start) = FactKey::new(namespace, "") else {
        return 0;
    };
    scan(&start, |items| {
        items
            .take_while(|(k, _)| k.namespace == namespace)
            .map(|(k, v)| (k.key.len() + v.len()) as u64)
            .sum()
    })
}

/// Calls `f` with every fact as `(namespace, key, value)`, in key order (a scan: for
/// recounting the digest).
pub fn visit(mut f: impl FnMut(&str, &str, &str)) {
    let start = FactKey::new("", "").expect("no NUL");
    scan(&start, |items| {
        for (k, v) in items {
            f(&k.namespace, &k.key, &v);
        }
    })
}
