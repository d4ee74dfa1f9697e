//! The IC's fees, checked against values computed by hand from the replica's table
//! (`CyclesAccountManagerConfig::application_subnet()`, 13 nodes): ingress, execution, calls,
//! `ic0.cost_call`, storage over time, and the freezing threshold.

mod common;

use common::*;
use std::time::Duration;

const GIB: u128 = 1024 * 1024 * 1024;
/// 5 M per message + 1 cycle per instruction: the prepayment for the 40 B instruction limit.
const PREPAY_40B: u128 = 5_000_000 + 40_000_000_000;

fn execution_fee(instructions: u64) -> u128 {
    5_000_000 + u128::from(instructions / 10) * 10
}

#[test]
fn an_ingress_update_pays_reception_per_byte_and_execution_per_instruction() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let balance = sim.cycle_balance(id);
    let before = sim.cycles_charged(id);
    let arg = Encode!().unwrap();
    sim.update_call(id, Principal::anonymous(), "inc", arg.clone())
        .expect("inc replies");
    let charged = sim.cycles_charged(id).since(&before);
    // 1.2 M per message + 2 000 per byte of method name and argument.
    let ingress = 1_200_000 + 2_000 * ("inc".len() + arg.len()) as u128;
    assert_eq!(charged.ingress, ingress);
    let instructions = sim.last_instructions(id);
    assert!(instructions > 0);
    assert_eq!(charged.execution, execution_fee(instructions));
    assert_eq!(charged.calls, 0);
    assert_eq!(
        balance - sim.cycle_balance(id),
        ingress + execution_fee(instructions)
    );
}

#[test]
fn cost_call_reports_request_largest_response_and_longest_callback() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let reply = sim
        .query_call(
            id,
            Principal::anonymous(),
            "cost_call",
            Encode!(&10u64, &100u64).unwrap(),
        )
        .unwrap();
    let cost = Decode!(&reply, Nat).unwrap();
    // 260 K per call + 1 000 per request byte + 1 000 per byte of a 2 MiB response + the
    // execution of a 40 B-instruction callback.
    let expected: u128 = 260_000 + 1_000 * 110 + 1_000 * 2 * 1024 * 1024 + PREPAY_40B;
    assert_eq!(expected, 42_102_522_000);
    assert_eq!(cost, Nat::from(expected));
}

#[test]
fn a_call_pays_its_request_and_response_bytes_and_gets_the_prepayment_back() {
    let sim = Sim::with_config(SimConfig {
        message_order: ic_sim::MessageOrder::RoundRobin,
        ..SimConfig::default()
    });
    let caller = new_probe(&sim);
    let callee = new_probe(&sim);
    let callee_arg = Encode!(&1_000u64).unwrap();
    let args = CallArgs::new(callee, "reply_bytes", callee_arg.clone());
    let before = sim.cycles_charged(caller);
    let balance = sim.cycle_balance(caller);
    let arg = Encode!(&args).unwrap();
    sim.update_call(caller, Principal::anonymous(), "call", arg.clone())
        .expect("call replies");
    let charged = sim.cycles_charged(caller).since(&before);
    // 260 K + 1 000 per byte of request (method name and argument) and of the 1 000-byte reply.
    let calls = 260_000 + 1_000 * ("reply_bytes".len() + callee_arg.len()) as u128 + 1_000 * 1_000;
    assert_eq!(charged.calls, calls);
    // Everything prepaid (2 MiB of response, the 40 B callback) came back: the balance moved
    // by exactly what was charged.
    assert_eq!(balance - sim.cycle_balance(caller), charged.total());
    assert_eq!(
        charged.ingress,
        1_200_000 + 2_000 * ("call".len() + arg.len()) as u128
    );
}

#[test]
fn storage_is_charged_per_gib_second_as_time_passes() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    sim.tick();
    let bytes = u128::from(sim.memory_size(id));
    assert!(bytes > 64 * 1024, "the probe holds a module and a heap");
    let before = sim.cycles_charged(id);
    let balance = sim.cycle_balance(id);
    sim.advance_time(Duration::from_secs(86_400));
    sim.tick();
    let charged = sim.cycles_charged(id).since(&before);
    // 127 000 cycles per GiB per second: one day of `bytes`, charged once the time passed.
    let day = bytes * 127_000 * 86_400 / GIB;
    assert!(charged.storage >= day, "{} < {day}", charged.storage);
    // The round after the reference time may add a second at most.
    assert!(charged.storage <= bytes * 127_000 * 86_401 / GIB);
    assert_eq!(charged.execution + charged.calls + charged.ingress, 0);
    assert_eq!(balance - sim.cycle_balance(id), charged.storage);
    // canister_status reports the same burn rate.
    let status = sim.canister_status(id, None).unwrap();
    assert_eq!(status.idle_cycles_burned_per_day, Nat::from(day));
}

#[test]
fn the_freezing_threshold_is_the_idle_burn_over_the_freezing_period() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    sim.tick();
    let bytes = u128::from(sim.memory_size(id));
    // Default freezing threshold: 30 days.
    let per_day = bytes * 127_000 * 86_400 / GIB;
    assert_eq!(
        sim.freezing_threshold_cycles(id),
        per_day * 2_592_000 / 86_400
    );
}

#[test]
fn a_frozen_canister_refuses_ingress_and_calls_and_still_answers_queries() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    let caller = new_probe(&sim);
    sim.update_call(id, Principal::anonymous(), "inc", Encode!().unwrap())
        .unwrap();
    // Burning stops at the freezing threshold; the burn's own execution then takes the canister
    // to the threshold plus what its prepayment left, less than the next prepayment needs.
    let reply = sim
        .update_call(
            id,
            Principal::anonymous(),
            "burn_cycles",
            Encode!(&Nat::from(u128::MAX)).unwrap(),
        )
        .unwrap();
    let burned = Decode!(&reply, Nat).unwrap();
    assert!(burned > Nat::from(CYCLES / 2), "burned {burned}");
    let threshold = sim.freezing_threshold_cycles(id);
    let balance = sim.cycle_balance(id);
    assert!(
        balance > threshold && balance < threshold + PREPAY_40B,
        "{balance} vs {threshold}"
    );

    let err = sim
        .update_call(id, Principal::anonymous(), "inc", Encode!().unwrap())
        .unwrap_err();
    assert_eq!(err.error_code, ErrorCode::CanisterOutOfCycles, "{err:?}");
    assert!(err.reject_message.contains("is out of cycles"), "{err:?}");

    // Another canister's call is rejected the same way; its callback still runs.
    let outcome = probe_call(&sim, caller, CallArgs::no_arg(id, "inc"));
    let (code, message) = outcome.reject();
    assert_eq!(code, RejectCode::SysTransient as u32, "{outcome:?}");
    assert!(message.contains("is out of cycles"), "{outcome:?}");

    // Queries are free and still answered: the counter kept its value.
    let reply = sim
        .query_call(id, Principal::anonymous(), "read", Encode!().unwrap())
        .unwrap();
    assert_eq!(Decode!(&reply, u64).unwrap(), 1);

    // A top-up unfreezes it.
    sim.add_cycles(id, PREPAY_40B);
    let reply = sim
        .update_call(id, Principal::anonymous(), "inc", Encode!().unwrap())
        .unwrap();
    assert_eq!(Decode!(&reply, u64).unwrap(), 2);
}

#[test]
fn a_canister_that_cannot_pay_for_its_storage_is_uninstalled() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    sim.update_canister_settings(
        id,
        None,
        CanisterSettings {
            freezing_threshold: Some(Nat::from(0u8)),
            ..CanisterSettings::default()
        },
    )
    .unwrap();
    // With no freezing threshold, burning leaves what the burn's prepayment did not use.
    sim.update_call(
        id,
        Principal::anonymous(),
        "burn_cycles",
        Encode!(&Nat::from(u128::MAX)).unwrap(),
    )
    .unwrap();
    let balance = sim.cycle_balance(id);
    assert!(balance < PREPAY_40B, "{balance}");
    let storage_before = sim.cycles_charged(id).storage;
    let per_year = u128::from(sim.memory_size(id)) * 127_000 * 86_400 * 365 / GIB;
    let years = balance / per_year;
    assert!(years < 100, "{years} years of storage");
    for _ in 0..years {
        sim.advance_time(Duration::from_secs(86_400 * 365));
        sim.tick();
    }
    assert!(sim.module_hash(id).is_some(), "paid its storage so far");
    sim.advance_time(Duration::from_secs(86_400 * 365));
    sim.tick();
    // Charged down to zero, then uninstalled (the replica's scheduler does so).
    assert_eq!(sim.cycle_balance(id), 0);
    assert_eq!(sim.cycles_charged(id).storage - storage_before, balance);
    assert_eq!(sim.module_hash(id), None, "out of cycles: the code is gone");
    let err = sim
        .update_call(id, Principal::anonymous(), "inc", Encode!().unwrap())
        .unwrap_err();
    assert_eq!(
        err.error_code,
        ErrorCode::CanisterWasmModuleNotFound,
        "{err:?}"
    );
}

#[test]
fn a_frozen_canisters_due_timer_waits_for_a_top_up_without_keeping_the_subnet_busy() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    sim.update_call(
        id,
        Principal::anonymous(),
        "set_timer",
        Encode!(&5u64).unwrap(),
    )
    .unwrap();
    sim.update_call(
        id,
        Principal::anonymous(),
        "burn_cycles",
        Encode!(&Nat::from(u128::MAX)).unwrap(),
    )
    .unwrap();
    sim.advance_time(Duration::from_secs(10));
    sim.tick();
    // The timer is due but cannot be prepaid: no round could change anything, so time may jump
    // (a simulator that ticked it every nanosecond would never get through a minute).
    assert!(
        !sim.has_work(),
        "a frozen canister's timer keeps the subnet busy"
    );
    let rounds = sim.run_for(Duration::from_secs(60));
    assert!(rounds < 10, "{rounds} rounds for an idle minute");
    assert_eq!(timers_fired(&sim, id), 0);
    // ic-cdk-timers runs the timer through a self-call, which prepays a callback as well.
    sim.add_cycles(id, 3 * PREPAY_40B);
    sim.run_for(Duration::from_secs(1));
    assert_eq!(
        timers_fired(&sim, id),
        1,
        "the timer fires once the canister is topped up"
    );
}

#[test]
fn a_drain_from_outside_burns_down_to_the_freezing_threshold_and_freezes_the_canister() {
    let sim = Sim::new();
    let id = new_probe(&sim);
    sim.tick();
    let threshold = sim.freezing_threshold_cycles(id);
    let balance = sim.cycle_balance(id);
    assert!(balance > threshold + PREPAY_40B);
    // A partial burn takes what was asked.
    assert_eq!(sim.burn_cycles(id, 1_000), 1_000);
    assert_eq!(sim.cycle_balance(id), balance - 1_000);
    // A burn of everything stops at the threshold, as `ic0.cycles_burn128` does.
    let burned = sim.burn_cycles(id, u128::MAX);
    assert_eq!(burned, balance - 1_000 - threshold);
    assert_eq!(sim.cycle_balance(id), threshold);
    assert_eq!(
        sim.burn_cycles(id, u128::MAX),
        0,
        "nothing above the threshold"
    );
    // Frozen: it cannot prepay an update.
    let err = sim
        .update_call(id, Principal::anonymous(), "inc", Encode!().unwrap())
        .unwrap_err();
    assert_eq!(err.error_code, ErrorCode::CanisterOutOfCycles, "{err:?}");
    // The operator's top-up (the prepayment and the ingress fee, with room) unfreezes it.
    sim.add_cycles(id, 2 * PREPAY_40B);
    sim.update_call(id, Principal::anonymous(), "inc", Encode!().unwrap())
        .expect("a topped-up canister runs again");
    // A canister that does not exist burns nothing.
    assert_eq!(sim.burn_cycles(Principal::anonymous(), 5), 0);
}
