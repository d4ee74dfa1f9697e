//! Service: the canary write, proof that the agent's write paths work, leaving no trace.
//!
//! One message writes a fact and reads it back, then submits a task, moves it to `Done` and
//! removes it, and finally restores whatever the fact's key held: the logical state (and so the
//! state digest) is the same after it as before. The watchdog calls it on every probation
//! heartbeat and the self-test calls it every run, so a version whose writes trap is rolled
//! back like one whose `health` traps; staging's rehearsal replays real write calls on the
//! sandbox instead. It bypasses the write pause, which guards the user's data: the canary
//! leaves none.

use crate::api::{Priority, TaskStatus};
use crate::{facts, schema, tasks};

/// The fact's namespace (schema 3 on) and key.
pub const NAMESPACE: &str = "__canary__";
/// The canary fact's key.
pub const KEY: &str = "__canary__";

/// Runs the canary once; `Ok` describes what was written and undone.
pub fn run(now: u64) -> Result<String, String> {
    let namespace = if schema::SCHEMA >= 3 {
        NAMESPACE
    } else {
        migrations::DEFAULT_NAMESPACE
    };
    let value = format!("canary at {now}");
    let previous = facts::remember(namespace, KEY, value.clone()).map_err(|e| e.to_string())?;
    let read = facts::recall(namespace, KEY).map_err(|e| e.to_string())?;
    let restored = match &previous {
        Some(v) => facts::remember(namespace, KEY, v.clone()).map(|_| ()),
        None => facts::forget(namespace, KEY).map(|_| ()),
    };
    restored.map_err(|e| e.to_string())?;
    if read.as_deref() != Some(value.as_str()) {
        return Err(format!("the fact written reads back as {read:?}"));
    }
    let before = tasks::count();
    let task = tasks::submit("canary".into(), Priority::Low, now);
    let moved = tasks::set_status(task.id, TaskStatus::Done, now);
    tasks::remove(task.id);
    if moved.is_none_or(|t| t.status != TaskStatus::Done) {
        return Err(format!("task {} did not move to Done", task.id));
    }
    if tasks::count() != before {
        return Err(format!(
            "{} tasks after the canary, {before} before",
            tasks::count()
        ));
    }
    Ok(format!(
        "fact {namespace}/{KEY} and task {} written, read and undone",
        task.id
    ))
}
