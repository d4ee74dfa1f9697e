//! Repository: the task queue (MemoryId `TASKS`), records in the format of [`SCHEMA`], and the
//! answers turns gave them (MemoryId `TASK_ANSWERS`: outside the versioned schema, candid
//! records whose new fields are `opt`).

use crate::api::{Priority, Task, TaskPage, TaskStatus};
use crate::digest;
use crate::memory::{self, Candid, Mem};
use crate::schema::SCHEMA;
use candid::{CandidType, Deserialize};
use canister_api::page;
use ic_stable_structures::StableBTreeMap;
use std::cell::RefCell;

/// What a turn answered for a task (or why it failed).
#[derive(CandidType, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TaskAnswer {
    /// The turn.
    pub turn_id: u64,
    /// The answer or the reason; `None` while the turn runs.
    pub text: Option<String>,
}

thread_local! {
    static TASKS: RefCell<StableBTreeMap<u64, Vec<u8>, Mem>> =
        RefCell::new(StableBTreeMap::init(memory::get(memory::TASKS)));
    static ANSWERS: RefCell<StableBTreeMap<u64, Candid<TaskAnswer>, Mem>> =
        RefCell::new(StableBTreeMap::init(memory::get(memory::TASK_ANSWERS)));
}

/// The longest description accepted, in bytes.
pub const MAX_DESCRIPTION: usize = 4096;
/// The longest answer kept, in bytes (a longer one is cut).
pub const MAX_ANSWER: usize = 4096;

fn answer_of(id: u64) -> Option<TaskAnswer> {
    ANSWERS.with(|a| a.borrow().get(&id).map(|c| c.0))
}

/// Records turn `turn_id`'s answer for task `id` (`None` while it runs), cut to [`MAX_ANSWER`].
pub fn set_answer(id: u64, turn_id: u64, text: Option<String>) {
    let text = text.map(|t| crate::text::cut(&t, MAX_ANSWER));
    ANSWERS.with(|a| {
        a.borrow_mut()
            .insert(id, Candid(TaskAnswer { turn_id, text }))
    });
}

/// The pending task to work on next: the highest priority, then the oldest (lowest id).
pub fn next_pending() -> Option<Task> {
    let rank = |p: Priority| match p {
        Priority::High => 2,
        Priority::Normal => 1,
        Priority::Low => 0,
    };
    TASKS.with(|t| {
        t.borrow()
            .iter()
            .filter(|e| e.value().get(17) == Some(&0)) // status byte: 0 = pending
            .map(|e| {
                let (id, bytes) = e.into_pair();
                decode(id, &bytes)
            })
            .fold(None, |best: Option<Task>, t| match &best {
                Some(b) if rank(b.priority) >= rank(t.priority) => best,
                _ => Some(t),
            })
    })
}

fn to_api(id: u64, t: migrations::Task) -> Task {
    let answer = answer_of(id);
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
        answer: answer.as_ref().and_then(|a| a.text.clone()),
        turn_id: answer.map(|a| a.turn_id),
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
            answer: None,
            turn_id: None,
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
