//! Rounds: same-subnet induction within the round, the slow path of management and
//! cross-subnet messages, and the seeded choice among the message orders the IC allows
//! (issue "ic-sim against suites written by others", item 3; issue "Bounded growth ...", item 9).
//!
//! The replica's scheduler executes a round in inner iterations and, after each, inducts the
//! messages canisters sent to canisters of the same subnet ("Iterates over all canisters on the
//! subnet, checking if a source canister has output messages for a destination canister on the
//! same subnet and moving them", rs/execution_environment/src/scheduler.rs,
//! `induct_messages_on_same_subnet`), while "Messages sent to the subnet are not handled i.e.
//! they take the slow path through message routing" (ibid.). Heartbeats and global timers run
//! in the first iteration only (`initialize_inner_round`).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use ic_sim::MessageOrder;

fn sim_with(order: MessageOrder, seed: u64) -> Sim {
    Sim::with_config(SimConfig {
        seed,
        message_order: order,
        ..SimConfig::default()
    })
}

/// The IC's deterministic order: every same-subnet message inducted within the round.
fn round_robin() -> Sim {
    sim_with(MessageOrder::RoundRobin, 0)
}

/// Ticks until the message completes; returns the rounds it took.
fn rounds_until_done(sim: &Sim, id: &RawMessageId) -> u32 {
    for round in 1..=20 {
        sim.tick();
        if sim.ingress_status(id.clone()).is_some() {
            return round;
        }
    }
    panic!("not done after 20 rounds");
}

/// Item 3: ingress -> A -> B -> A on one subnet completes in the round the ingress message is
/// executed: the request and the response are inducted between inner iterations.
#[test]
fn same_subnet_call_and_response_complete_within_one_round() {
    let sim = round_robin();
    let a = new_probe(&sim);
    let b = new_probe(&sim);
    let id = submit_probe_call(&sim, a, CallArgs::no_arg(b, "inc"));
    assert_eq!(rounds_until_done(&sim, &id), 1);
    assert_eq!(
        decode_outcome(sim.ingress_status(id).unwrap()).reply::<u64>(),
        1
    );
}

/// Item 3: a chain A -> B -> C -> B -> A also completes in one round.
#[test]
fn nested_same_subnet_calls_complete_within_one_round() {
    let sim = round_robin();
    let a = new_probe(&sim);
    let b = new_probe(&sim);
    let c = new_probe(&sim);
    let inner = Encode!(&CallArgs::no_arg(c, "inc")).unwrap();
    let id = submit_probe_call(&sim, a, CallArgs::new(b, "call", inner));
    assert_eq!(rounds_until_done(&sim, &id), 1);
    assert_eq!(read(&sim, c), 1);
}

/// Item 3: a call to the management canister takes the slow path: the request waits for the
/// next round and so does the response (three rounds for ingress -> A -> aaaaa-aa -> A).
#[test]
fn management_calls_take_the_slow_path() {
    let sim = round_robin();
    let a = new_self_controlled_probe(&sim);
    let id = sim
        .submit_call(a, Principal::anonymous(), "status_of", Encode!(&a).unwrap())
        .unwrap();
    assert_eq!(rounds_until_done(&sim, &id), 3);
}

/// Item 3: ic-cdk-timers runs each timer through a self-call; the self-calls are inducted in
/// the same round, so every due timer has fired after one round.
#[test]
fn due_timers_all_fire_in_one_round() {
    let sim = round_robin();
    let id = new_probe(&sim);
    for _ in 0..3 {
        update::<()>(&sim, id, "set_timer", Encode!(&1u64).unwrap()).unwrap();
    }
    sim.advance_time(Duration::from_secs(2));
    sim.tick();
    assert_eq!(timers_fired(&sim, id), 3);
}

/// Item 3 with limits: a round stops its inner iterations once its instruction limit is
/// reached; what was inducted waits for the next round.
#[test]
fn the_round_instruction_limit_defers_induction_to_the_next_round() {
    let sim = Sim::with_config(SimConfig {
        message_order: MessageOrder::RoundRobin,
        max_instructions_per_round: 1,
        ..SimConfig::default()
    });
    let a = new_probe(&sim);
    let b = new_probe(&sim);
    let id = submit_probe_call(&sim, a, CallArgs::no_arg(b, "inc"));
    assert_eq!(rounds_until_done(&sim, &id), 3);
}

/// Three sources send to one canister: ingress-driven one-way calls from A and from C to B's
/// `debug_print`, ten each. Returns B's log.
fn interleaving(seed: u64) -> (Vec<String>, String) {
    let sim = sim_with(MessageOrder::Seeded { delay: 0.2 }, seed);
    let a = new_probe(&sim);
    let b = new_probe(&sim);
    let c = new_probe(&sim);
    let mut ids = Vec::new();
    for i in 0..10 {
        for (from, name) in [(a, "a"), (c, "c")] {
            let print = CallArgs::new(b, "debug_print", Encode!(&format!("{name}{i}")).unwrap());
            ids.push(
                sim.submit_call(
                    from,
                    Principal::anonymous(),
                    "oneway",
                    Encode!(&print).unwrap(),
                )
                .unwrap(),
            );
        }
    }
    for id in ids {
        sim.await_call(id).unwrap();
    }
    sim.run_for(Duration::from_secs(1));
    (sim.debug_log(b), sim.trace_digest())
}

/// Item 9: under every seed, FIFO holds per pair of canisters (A's prints arrive in A's order,
/// C's in C's), while the seed chooses how the two senders interleave at B.
#[test]
fn seeds_choose_among_orders_that_keep_fifo_per_pair() {
    let mut orders = BTreeSet::new();
    for seed in 0..8 {
        let (log, _) = interleaving(seed);
        assert_eq!(log.len(), 20, "every print arrived: {log:?}");
        for sender in ["a", "c"] {
            let seen: Vec<u32> = log
                .iter()
                .filter_map(|l| l.strip_prefix(sender))
                .map(|n| n.parse().unwrap())
                .collect();
            assert_eq!(
                seen,
                (0..10).collect::<Vec<_>>(),
                "seed {seed}: FIFO from {sender}"
            );
        }
        orders.insert(log);
    }
    assert!(orders.len() > 1, "8 seeds produced a single order");
}

/// Item 9: a seed replays exactly (same trace digest), and seeds differ.
#[test]
fn a_seed_replays_its_trace_and_seeds_differ() {
    let (log_1, trace_1) = interleaving(3);
    let (log_2, trace_2) = interleaving(3);
    assert_eq!(log_1, log_2);
    assert_eq!(trace_1, trace_2);
    let traces: BTreeSet<String> = (0..6).map(|seed| interleaving(seed).1).collect();
    assert!(traces.len() > 1, "6 seeds gave one trace");
}
