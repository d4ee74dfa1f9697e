//! Service: per-method metrics, and the endpoint wrapper that records them.
//!
//! Metrics live on the heap: they restart from zero at every upgrade, which is acceptable for
//! counters (the watchdog samples them) and keeps every call free of stable writes. The last
//! error, which health reports and which must outlive an upgrade, goes to the markers cell;
//! a refusal of an unauthorised caller is counted but is not the agent's error, so it never
//! makes `health` degraded.

use crate::api::{AgentError, MethodMetrics};
use std::cell::RefCell;
use std::collections::BTreeMap;

thread_local! {
    static METRICS: RefCell<BTreeMap<&'static str, MethodMetrics>> = const { RefCell::new(BTreeMap::new()) };
}

/// Records one call of `method` that ended with `result` (instructions: this message so far).
pub fn record<T>(method: &'static str, result: &Result<T, AgentError>) {
    let instructions = ic_cdk::api::performance_counter(0);
    METRICS.with(|m| {
        let mut map = m.borrow_mut();
        let entry = map.entry(method).or_insert_with(|| MethodMetrics {
            method: method.to_string(),
            calls: 0,
            errors: 0,
            instructions_total: 0,
            instructions_last: 0,
        });
        entry.calls += 1;
        entry.errors += u64::from(result.is_err());
        entry.instructions_total += instructions;
        entry.instructions_last = instructions;
    });
    // A refused stranger says nothing about the agent's own health: only the errors of
    // callers that may call the method degrade `health` (else anyone could flip it).
    if let Err(e) = result
        && !matches!(e, AgentError::Unauthorized { .. })
    {
        let text = format!("{method}: {e}");
        crate::config::update_markers(|m| m.last_error = Some(text));
    }
}

/// Runs an endpoint body and records it.
pub fn track<T>(
    method: &'static str,
    body: impl FnOnce() -> Result<T, AgentError>,
) -> Result<T, AgentError> {
    let result = body();
    record(method, &result);
    result
}

/// Every method's metrics, by name.
pub fn all() -> Vec<MethodMetrics> {
    METRICS.with(|m| m.borrow().values().cloned().collect())
}
