//! A tool's facts during one call: reads go to a [`FactStore`] (the agent's stable facts in
//! the tool's namespace, or a map for examples), writes stay in an [`Overlay`] that the caller
//! applies only when the call succeeds. So a failed call changes nothing, and the quota is
//! checked at the write that would break it.

use crate::error::Fault;
use crate::limits::{MAX_FACT_VALUE, MAX_KEY};
use std::collections::{BTreeMap, BTreeSet};

/// Read access to one namespace's facts.
pub trait FactStore {
    /// The value under `key`.
    fn get(&self, key: &str) -> Option<String>;
    /// The first `limit` keys starting with `prefix`, in ascending order.
    fn keys(&self, prefix: &str, limit: usize) -> Vec<String>;
    /// Bytes held: the sum of key and value lengths.
    fn held_bytes(&self) -> u64;
}

/// Facts in a map (examples, tests, agentctl).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapStore(pub BTreeMap<String, String>);

impl FactStore for MapStore {
    fn get(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }

    fn keys(&self, prefix: &str, limit: usize) -> Vec<String> {
        self.0
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, _)| k.clone())
            .collect()
    }

    fn held_bytes(&self) -> u64 {
        self.0.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum()
    }
}

impl<T: FactStore + ?Sized> FactStore for Box<T> {
    fn get(&self, key: &str) -> Option<String> {
        (**self).get(key)
    }
    fn keys(&self, prefix: &str, limit: usize) -> Vec<String> {
        (**self).keys(prefix, limit)
    }
    fn held_bytes(&self) -> u64 {
        (**self).held_bytes()
    }
}

/// A key a tool may use: 1..=[`MAX_KEY`] bytes.
pub fn check_key(key: &str) -> Result<(), Fault> {
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(Fault::InvalidKey {
            len: key.len() as u64,
        });
    }
    Ok(())
}

/// The writes of one call over a store, with the namespace's quota.
#[derive(Debug)]
pub struct Overlay<S> {
    base: S,
    /// `None` deletes.
    writes: BTreeMap<String, Option<String>>,
    held: Option<u64>,
    quota: u64,
}

impl<S: FactStore> Overlay<S> {
    /// No writes yet over `base`; the namespace may hold at most `quota` bytes.
    pub fn new(base: S, quota: u64) -> Self {
        Self {
            base,
            writes: BTreeMap::new(),
            held: None,
            quota,
        }
    }

    fn current(&self, key: &str) -> Option<String> {
        match self.writes.get(key) {
            Some(v) => v.clone(),
            None => self.base.get(key),
        }
    }

    fn held(&mut self) -> u64 {
        *self.held.get_or_insert_with(|| self.base.held_bytes())
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Result<Option<String>, Fault> {
        check_key(key)?;
        Ok(self.current(key))
    }

    /// Stores `value` under `key`; whether it replaced a value.
    pub fn put(&mut self, key: &str, value: String) -> Result<bool, Fault> {
        check_key(key)?;
        if value.len() > MAX_FACT_VALUE {
            return Err(Fault::FactValueTooLong {
                len: value.len() as u64,
            });
        }
        let old = self.current(key);
        let freed = old.as_ref().map_or(0, |v| (key.len() + v.len()) as u64);
        let would_hold = self.held() - freed + (key.len() + value.len()) as u64;
        if would_hold > self.quota {
            return Err(Fault::FactQuota {
                would_hold,
                quota: self.quota,
            });
        }
        self.held = Some(would_hold);
        self.writes.insert(key.to_string(), Some(value));
        Ok(old.is_some())
    }

    /// Removes `key`; whether it held a value.
    pub fn delete(&mut self, key: &str) -> Result<bool, Fault> {
        check_key(key)?;
        let Some(old) = self.current(key) else {
            return Ok(false);
        };
        let held = self.held();
        self.held = Some(held - (key.len() + old.len()) as u64);
        self.writes.insert(key.to_string(), None);
        Ok(true)
    }

    /// The first `limit` keys starting with `prefix`, writes included.
    pub fn keys(&self, prefix: &str, limit: usize) -> Result<Vec<String>, Fault> {
        if prefix.len() > MAX_KEY {
            return Err(Fault::InvalidKey {
                len: prefix.len() as u64,
            });
        }
        // Enough base keys that `limit` remain after the deletions are taken out.
        let deleted = self.writes.values().filter(|v| v.is_none()).count();
        let mut keys: BTreeSet<String> = self
            .base
            .keys(prefix, limit + deleted)
            .into_iter()
            .collect();
        for (k, v) in &self.writes {
            if k.starts_with(prefix) {
                match v {
                    Some(_) => keys.insert(k.clone()),
                    None => keys.remove(k),
                };
            }
        }
        Ok(keys.into_iter().take(limit).collect())
    }

    /// The writes to apply, in key order (`None` deletes).
    pub fn into_writes(self) -> BTreeMap<String, Option<String>> {
        self.writes
    }
}

/// `store` with `writes` applied.
pub fn apply(store: &mut MapStore, writes: BTreeMap<String, Option<String>>) {
    for (k, v) in writes {
        match v {
            Some(v) => store.0.insert(k, v),
            None => store.0.remove(&k),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(pairs: &[(&str, &str)]) -> MapStore {
        MapStore(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn keys_merge_writes_and_deletions() {
        let mut o = Overlay::new(
            store(&[("a1", "x"), ("a2", "x"), ("a3", "x"), ("b", "x")]),
            1 << 20,
        );
        o.delete("a1").unwrap();
        o.put("a0", "y".into()).unwrap();
        assert_eq!(o.keys("a", 2).unwrap(), ["a0", "a2"]);
        assert_eq!(o.keys("a", 9).unwrap(), ["a0", "a2", "a3"]);
        assert_eq!(o.keys("", 9).unwrap(), ["a0", "a2", "a3", "b"]);
    }

    #[test]
    fn the_quota_counts_keys_and_values() {
        let mut o = Overlay::new(store(&[("k", "12345")]), 10);
        assert_eq!(o.put("k", "123456789".into()), Ok(true), "1 + 9 = 10 fits");
        assert_eq!(
            o.put("j", "".into()),
            Err(Fault::FactQuota {
                would_hold: 11,
                quota: 10
            })
        );
        assert_eq!(o.delete("k"), Ok(true));
        assert_eq!(o.put("j", "1".into()), Ok(false));
        let writes = o.into_writes();
        assert_eq!(writes.get("k"), Some(&None));
        assert_eq!(writes.get("j"), Some(&Some("1".to_string())));
    }

    #[test]
    fn keys_must_fit() {
        let mut o = Overlay::new(MapStore::default(), 1 << 20);
        assert_eq!(o.put("", "v".into()), Err(Fault::InvalidKey { len: 0 }));
        assert!(o.get(&"k".repeat(MAX_KEY + 1)).is_err());
        assert!(o.keys("", 1).is_ok());
    }
}
