//! The bill: what the trio is charged at the IC's fees (ic-sim applies the replica's table, see
//! `ic_sim::fees`), by canister and by kind, the storage each canister holds, and the same in
//! USD per month.
//!
//! Cycles are pegged to the XDR: 1 T cycles = 1 XDR. The USD figures use [`USD_PER_XDR`], the
//! rate the ICP documentation states (1 XDR ≈ 1.35 USD, 22 May 2025); the rate moves, the
//! cycles do not.

use ic_sim::CyclesCharged;
use serde::{Deserialize, Serialize};
use testbed::Testbed;

/// USD per XDR used for the USD figures (ICP docs, "Cycles costs": 22 May 2025).
pub const USD_PER_XDR: f64 = 1.35;
/// Cycles per XDR (the peg).
pub const CYCLES_PER_XDR: f64 = 1e12;
/// Days in the month the USD figures are for.
pub const DAYS_PER_MONTH: f64 = 30.0;

/// USD per month for a spend of `cycles_per_day`.
pub fn usd_per_month(cycles_per_day: u128) -> f64 {
    cycles_per_day as f64 * DAYS_PER_MONTH / CYCLES_PER_XDR * USD_PER_XDR
}

/// One canister's charges by kind (over whatever period the caller states).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByKind {
    /// Executions: messages, callbacks, timers, installs.
    pub execution: u128,
    /// Inter-canister calls it made (call fee, request and response bytes).
    pub calls: u128,
    /// Ingress messages it received.
    pub ingress: u128,
    /// Memory held over time.
    pub storage: u128,
}

impl ByKind {
    fn from_charged(c: &CyclesCharged) -> ByKind {
        ByKind {
            execution: c.execution,
            calls: c.calls,
            ingress: c.ingress,
            storage: c.storage,
        }
    }

    /// Everything.
    pub fn total(&self) -> u128 {
        self.execution + self.calls + self.ingress + self.storage
    }

    /// Each kind multiplied by `factor` (an hour's charges x 24 = a day's).
    pub fn times(&self, factor: u128) -> ByKind {
        ByKind {
            execution: self.execution * factor,
            calls: self.calls * factor,
            ingress: self.ingress * factor,
            storage: self.storage * factor,
        }
    }
}

/// What the three canisters were charged so far: (agent, watchdog, staging).
#[derive(Clone, Copy, Debug)]
pub struct TrioCharges([CyclesCharged; 3]);

impl TrioCharges {
    /// The charges now.
    pub fn now(tb: &Testbed) -> TrioCharges {
        TrioCharges([tb.agent, tb.watchdog, tb.staging].map(|id| tb.sim.cycles_charged(id)))
    }

    /// Per canister, by kind, what was charged since `earlier`: (agent, watchdog, staging).
    pub fn since(&self, earlier: &TrioCharges) -> [ByKind; 3] {
        [0, 1, 2].map(|i| ByKind::from_charged(&self.0[i].since(&earlier.0[i])))
    }

    /// Everything the trio was charged since `earlier`.
    pub fn total_since(&self, earlier: &TrioCharges) -> u128 {
        self.since(earlier).iter().map(ByKind::total).sum()
    }
}

/// The memory a canister holds, which it pays storage for (`canister_status`'s metrics).
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageHeld {
    /// Wasm heap.
    pub heap: u64,
    /// Stable memory (the agent's version store lives here).
    pub stable: u64,
    /// The installed module.
    pub module: u64,
    /// Snapshots of the canister.
    pub snapshots: u64,
    /// The chunk store.
    pub chunk_store: u64,
    /// Everything charged for (also history and log).
    pub total: u64,
}

/// What `id` holds now, as its controller (the operator) sees it.
pub fn storage_held(tb: &Testbed, id: candid::Principal) -> anyhow::Result<StorageHeld> {
    let status = tb
        .sim
        .canister_status(id, Some(testbed::operator()))
        .map_err(|e| anyhow::anyhow!("canister_status of {id}: {e}"))?;
    let n = |v: &candid::Nat| u64::try_from(v.0.clone()).unwrap_or(u64::MAX);
    let m = &status.memory_metrics;
    Ok(StorageHeld {
        heap: n(&m.wasm_memory_size),
        stable: n(&m.stable_memory_size),
        module: n(&m.wasm_binary_size),
        snapshots: n(&m.snapshots_size),
        chunk_store: n(&m.wasm_chunk_store_size),
        total: n(&status.memory_size),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trillion_cycles_a_day_is_thirty_xdr_a_month() {
        assert!((usd_per_month(1_000_000_000_000) - 30.0 * USD_PER_XDR).abs() < 1e-9);
        assert_eq!(usd_per_month(0), 0.0);
    }

    #[test]
    fn by_kind_scales_every_kind() {
        let hour = ByKind {
            execution: 1,
            calls: 2,
            ingress: 3,
            storage: 4,
        };
        assert_eq!(hour.times(24).total(), 240);
    }
}
