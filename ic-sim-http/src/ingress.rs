//! The ingress history the server keeps per HTTP request id: who sent a message, until when it
//! is valid, and its outcome, so that `read_state` can answer `request_status` the way the IC
//! does. Bounded: completed entries are dropped once their expiry passed (the IC purges them
//! too), and a full history refuses new messages with 503 until it drains.

use std::collections::BTreeMap;

use candid::Principal;
use ic_sim::{RawMessageId, RejectResponse, Sim};

use crate::error::HttpError;

/// Most entries kept at once.
pub const MAX_ENTRIES: usize = 10_000;
/// Most reply bytes kept at once (256 MiB).
pub const MAX_REPLY_BYTES: usize = 256 * 1024 * 1024;

/// Where a message is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IngressState {
    /// Inducted and not finished (the simulator's message id).
    Processing(RawMessageId),
    /// Replied with these bytes.
    Replied(Vec<u8>),
    /// Rejected.
    Rejected(RejectResponse),
}

/// One message of the history.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The sender (only it may read the status).
    pub sender: Principal,
    /// The message's ingress expiry (nanoseconds since the epoch).
    pub expiry: u64,
    /// Where it is.
    pub state: IngressState,
}

/// The history, by request id.
#[derive(Default)]
pub struct IngressHistory {
    entries: BTreeMap<[u8; 32], Entry>,
    reply_bytes: usize,
}

impl IngressHistory {
    /// The entry of `request_id`, if known.
    pub fn get(&self, request_id: &[u8; 32]) -> Option<&Entry> {
        self.entries.get(request_id)
    }

    /// Whether a new message can be taken: expired entries are dropped first.
    pub fn make_room(&mut self, now: u64) -> Result<(), HttpError> {
        self.prune(now);
        if self.entries.len() >= MAX_ENTRIES || self.reply_bytes >= MAX_REPLY_BYTES {
            return Err(HttpError {
                status: 503,
                message: "Service is overloaded, try again later.".into(),
            });
        }
        Ok(())
    }

    /// Records a submitted message.
    pub fn insert(
        &mut self,
        request_id: [u8; 32],
        sender: Principal,
        expiry: u64,
        id: RawMessageId,
    ) {
        self.entries.insert(
            request_id,
            Entry {
                sender,
                expiry,
                state: IngressState::Processing(id),
            },
        );
    }

    /// Takes the outcomes of finished messages out of the simulator's own history.
    pub fn refresh(&mut self, sim: &Sim) {
        for entry in self.entries.values_mut() {
            let IngressState::Processing(id) = &entry.state else {
                continue;
            };
            let Some(outcome) = sim.ingress_status(id.clone()) else {
                continue;
            };
            sim.forget_ingress(id);
            entry.state = match outcome {
                Ok(reply) => {
                    self.reply_bytes += reply.len();
                    IngressState::Replied(reply)
                }
                Err(reject) => IngressState::Rejected(reject),
            };
        }
    }

    /// Drops finished entries whose expiry is before `now`. Messages still processing stay.
    pub fn prune(&mut self, now: u64) {
        let mut freed = 0;
        self.entries.retain(|_, e| {
            let keep = e.expiry >= now || matches!(e.state, IngressState::Processing(_));
            if !keep && let IngressState::Replied(reply) = &e.state {
                freed += reply.len();
            }
            keep
        });
        self.reply_bytes -= freed;
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the history is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
