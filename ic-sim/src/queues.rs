//! The messages in flight (requests and responses) and the queues that hold them: one FIFO
//! queue per (source, destination), as the IC keeps them. The round loop that serves them is
//! in `crate::scheduler`; the state that owns them in `crate::state`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use candid::Principal;

use crate::canister::ReplyTo;
use crate::types::RejectResponse;

/// What a call ends with: reply bytes or a rejection.
pub(crate) type Outcome = Result<Vec<u8>, RejectResponse>;

/// An inter-canister or ingress request in flight.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    pub(crate) sender: Principal,
    pub(crate) receiver: Principal,
    pub(crate) method: String,
    pub(crate) arg: Vec<u8>,
    pub(crate) cycles: u128,
    pub(crate) reply_to: ReplyTo,
    pub(crate) deadline: u64,
    /// For ingress to the management canister: the subnet its effective principal names.
    pub(crate) subnet_hint: Option<usize>,
}

/// A response on its way to the caller's callback.
#[derive(Clone, Debug)]
pub(crate) struct ResponseMsg {
    /// Who answered (the management canister for its own responses).
    pub(crate) responder: Principal,
    pub(crate) originator: Principal,
    pub(crate) callback_id: u64,
    pub(crate) outcome: Outcome,
    pub(crate) refund: u128,
}

#[derive(Clone, Debug)]
pub(crate) enum Message {
    Request(Request),
    Response(ResponseMsg),
}

/// Where a message was sent from: FIFO order holds per (source, destination).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Source {
    /// Ingress messages (one queue per destination, as the IC's ingress queue).
    Ingress,
    /// A canister, or the management canister (`aaaaa-aa`).
    Canister(Principal),
    /// The system itself: expired best-effort deadlines.
    System,
}

/// Where a message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Destination {
    Canister(Principal),
    /// The management canister, executed by the given subnet.
    Management(usize),
}

/// The messages waiting anywhere in the simulated IC.
#[derive(Default)]
pub(crate) struct Queues {
    /// Per destination: one FIFO queue per source.
    pub(crate) inputs: BTreeMap<Destination, BTreeMap<Source, VecDeque<Message>>>,
    /// Routed for induction at the start of the next round, in sending order.
    pub(crate) in_transit: VecDeque<(Source, Destination, Message)>,
    /// Same-subnet messages sent during the current inner iteration.
    pub(crate) outbox: Vec<(Source, Destination, Message)>,
    /// Pairs that took the slow path in this round: later messages of the pair follow them.
    pub(crate) slow_pairs: BTreeSet<(Source, Destination)>,
    /// The subnet whose round is executing.
    pub(crate) executing: Option<usize>,
    /// Instructions the executing subnet's canisters used in this round.
    pub(crate) round_instructions: u64,
}

impl Queues {
    /// Whether any message waits anywhere.
    pub(crate) fn is_empty(&self) -> bool {
        self.in_transit.is_empty()
            && self.outbox.is_empty()
            && self
                .inputs
                .values()
                .all(|sources| sources.values().all(VecDeque::is_empty))
    }

    /// Puts a message directly into its destination's input queue (ingress, system messages).
    pub(crate) fn enqueue(&mut self, source: Source, destination: Destination, message: Message) {
        self.inputs
            .entry(destination)
            .or_default()
            .entry(source)
            .or_default()
            .push_back(message);
    }

    /// Routes a message to be inducted at the start of the next round.
    pub(crate) fn route_next_round(
        &mut self,
        source: Source,
        destination: Destination,
        message: Message,
    ) {
        self.in_transit.push_back((source, destination, message));
    }
}
