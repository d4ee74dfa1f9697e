//! Repository: the task queue (MemoryId `TASKS`), records in the format of [`SCHEMA`].

use crate::api::{Priority, Task, TaskPage, TaskStatus};
use crate::digest;
use crate::memory::{self, Mem};
use crate::schema::SCHEMA;
use canister_api::page;
use ic_stable_structures::StableBTreeMap;
use std::cell::RefCell;

thread_local! {
    static TASKS: RefCell<StableBTreeMap<u64, Vec<u8>, Mem>> =
        RefCell::new(StableBTreeMap::init(memory::get(memory::TASKS)));
}

/// The longest description accepted, in bytes.
pub const MAX_DESCRIPTION: usize = 4096;

fn to_api(id: u64, t: migrations::Task) -> Task {
    Task {
        id,
        description: t.description,
        status: match t.status {
            migrations::TaskStatus::Pending => TaskStatus::Pending,
            migrations::TaskStatus::Running => TaskStatus::Running,
            migrations::TaskStatus::Done => TaskStatus::Done,
            migrations::TaskStatus::Failed => TaskStatus::Failed,
        },
        priority: match t.priority {
            migrations::Priority::Low => Priority::Low,
            migrations::Priority::Normal => Priority::Normal,
            migrations::Priority::High => Priority::High,
        },
        created_at: t.created_at,
        updated_at: t.updated_at,
    }
}

fn to_record(t: &Task) -> migrations::Task {
    migrations::Task {
        description: t.description.clone(),
        status: match t.status {
            TaskStatus::Pending => migrations::TaskStatus::Pending,
            TaskStatus::Running => migrations::TaskStatus::Running,
            TaskStatus::Done => migrations::TaskStatus::Done,
            TaskStatus::Failed => migrations::TaskStatus::Failed,
        },
        priority: match t.priority {
            Priority::Low => migrations::Priority::Low,
            Priority::Normal => migrations::Priority::Normal,
            Priority::High => migrations::Priority::High,
        },
        created_at: t.created_at,
        updated_at: t.updated_at,
    }
}

fn decode(id: u64, bytes: &[u8]) -> Task {
    // Records are written by this build or migrated to its schema by post_upgrade.
    let record = migrations::Task::decode(bytes, SCHEMA)
        .unwrap_or_else(|e| ic_cdk::trap(format!("task {id}: {e}")));
    to_api(id, record)
}

/// Adds a pending task; returns it.
pub fn submit(description: String, priority: Priority, now: u64) -> Task {
    #[cfg(feature = "chaos")]
    crate::chaos::on_write("submit_task");
    TASKS.with(|t| {
        let mut map = t.borrow_mut();
        let id = map.last_key_value().map_or(1, |(k, _)| k + 1);
        let task = Task {
            id,
            description,
            status: TaskStatus::Pending,
            priority,
            created_at: now,
            updated_at: now,
        };
        map.insert(id, to_record(&task).encode(SCHEMA));
        digest::task_changed(None, &task);
        task
    })
}

/// The task `id`.
pub fn get(id: u64) -> Option<Task> {
    TASKS.with(|t| t.borrow().get(&id).map(|b| decode(id, &b)))
}

/// Up to `limit` tasks with id >= `from`, in id order.
pub fn list(from: u64, limit: usize) -> Vec<Task> {
    TASKS.with(|t| {
        t.borrow()
            .range(from..)
            .take(limit)
            .map(|e| {
                let (id, bytes) = e.into_pair();
                decode(id, &bytes)
            })
            .collect()
    })
}

/// A page of tasks with id >= `from` (at most `limit`, see `canister_api::page`).
pub fn page(from: u64, limit: u32) -> TaskPage {
    TASKS.with(|t| {
        let map = t.borrow();
        let items = map.range(from..).map(|e| {
            let (id, bytes) = e.into_pair();
            (id, decode(id, &bytes))
        });
        let (tasks, next_from) = page::collect(items, limit, page::PAGE_BYTES);
        TaskPage { tasks, next_from }
    })
}

/// Moves task `id` to `status`; `None` if there is no such task.
pub fn set_status(id: u64, status: TaskStatus, now: u64) -> Option<Task> {
    let old = get(id)?;
    let mut task = old.clone();
    task.status = status;
    task.updated_at = now;
    TASKS.with(|t| t.borrow_mut().insert(id, to_record(&task).encode(SCHEMA)));
    digest::task_changed(Some(&old), &task);
    Some(task)
}

/// Removes task `id` (the canary's own task only: tasks are otherwise never deleted); the
/// digest forgets it.
pub fn remove(id: u64) {
    if let Some(old) = get(id) {
        TASKS.with(|t| t.borrow_mut().remove(&id));
        digest::task_removed(&old);
    }
}

/// Calls `f` with every task, in id order (a scan: for recounting the digest).
pub fn visit(mut f: impl FnMut(&Task)) {
    TASKS.with(|t| {
        for e in t.borrow().iter() {
            let (id, bytes) = e.into_pair();
            f(&decode(id, &bytes));
        }
    })
}

/// Number of tasks.
pub fn count() -> u64 {
    TASKS.with(|t| t.borrow().len())
}
