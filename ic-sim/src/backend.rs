//! One interface over the simulator and a real PocketIC server, so that a test written once runs
//! on both: [`IcBackend`], implemented for [`Sim`] and (feature `pocket-ic`, on by default) for
//! `pocket_ic::PocketIc`.
//!
//! [`backend_from_env`] picks PocketIC when `POCKET_IC_BIN` names a server binary, and the
//! simulator otherwise (saying so once on stderr). Tests that need fault injection or
//! introspection use [`Sim`] directly: PocketIC has no equivalent.

use std::time::Duration;

use candid::Principal;
use ic_management_canister_types as mgmt;

use crate::sim::Sim;
use crate::types::{RejectResponse, Time};

/// The PocketIC-shaped operations both backends offer (same names, arguments and results).
#[allow(missing_docs)]
pub trait IcBackend {
    /// "ic-sim" or "pocket-ic".
    fn backend_name(&self) -> &'static str;
    fn create_canister(&self) -> Principal;
    fn create_canister_with_settings(
        &self,
        sender: Option<Principal>,
        settings: Option<mgmt::CanisterSettings>,
    ) -> Principal;
    fn add_cycles(&self, canister_id: Principal, amount: u128) -> u128;
    fn cycle_balance(&self, canister_id: Principal) -> u128;
    fn install_canister(
        &self,
        canister_id: Principal,
        wasm_module: Vec<u8>,
        arg: Vec<u8>,
        sender: Option<Principal>,
    );
    fn upgrade_canister(
        &self,
        canister_id: Principal,
        wasm_module: Vec<u8>,
        arg: Vec<u8>,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse>;
    fn reinstall_canister(
        &self,
        canister_id: Principal,
        wasm_module: Vec<u8>,
        arg: Vec<u8>,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse>;
    fn uninstall_canister(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse>;
    fn update_call(
        &self,
        canister_id: Principal,
        sender: Principal,
        method: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, RejectResponse>;
    fn query_call(
        &self,
        canister_id: Principal,
        sender: Principal,
        method: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, RejectResponse>;
    fn tick(&self);
    fn advance_time(&self, duration: Duration);
    fn get_time(&self) -> Time;
    fn canister_status(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
    ) -> Result<mgmt::CanisterStatusResult, RejectResponse>;
    fn get_controllers(&self, canister_id: Principal) -> Vec<Principal>;
    fn set_controllers(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
        new_controllers: Vec<Principal>,
    ) -> Result<(), RejectResponse>;
    fn start_canister(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse>;
    fn stop_canister(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse>;
    fn delete_canister(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse>;
    fn take_canister_snapshot(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
        replace_snapshot: Option<Vec<u8>>,
    ) -> Result<mgmt::Snapshot, RejectResponse>;
    fn load_canister_snapshot(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
        snapshot_id: Vec<u8>,
    ) -> Result<(), RejectResponse>;
    fn list_canister_snapshots(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
    ) -> Result<Vec<mgmt::Snapshot>, RejectResponse>;
    fn delete_canister_snapshot(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
        snapshot_id: Vec<u8>,
    ) -> Result<(), RejectResponse>;
    fn upload_chunk(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
        chunk: Vec<u8>,
    ) -> Result<Vec<u8>, RejectResponse>;
    fn stored_chunks(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
    ) -> Result<Vec<Vec<u8>>, RejectResponse>;
    fn clear_chunk_store(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse>;
    #[allow(clippy::too_many_arguments)]
    fn install_chunked_canister(
        &self,
        canister_id: Principal,
        sender: Option<Principal>,
        mode: mgmt::CanisterInstallMode,
        store_canister_id: Principal,
        chunk_hashes_list: Vec<Vec<u8>>,
        wasm_module_hash: Vec<u8>,
        arg: Vec<u8>,
    ) -> Result<(), RejectResponse>;
}

macro_rules! delegate {
    ($conv_err:path, $conv_time:path) => {
        fn create_canister(&self) -> Principal {
            Self::create_canister(self)
        }
        fn create_canister_with_settings(
            &self,
            sender: Option<Principal>,
            settings: Option<mgmt::CanisterSettings>,
        ) -> Principal {
            Self::create_canister_with_settings(self, sender, settings)
        }
        fn add_cycles(&self, canister_id: Principal, amount: u128) -> u128 {
            Self::add_cycles(self, canister_id, amount)
        }
        fn cycle_balance(&self, canister_id: Principal) -> u128 {
            Self::cycle_balance(self, canister_id)
        }
        fn install_canister(
            &self,
            canister_id: Principal,
            wasm_module: Vec<u8>,
            arg: Vec<u8>,
            sender: Option<Principal>,
        ) {
            Self::install_canister(self, canister_id, wasm_module, arg, sender)
        }
        fn upgrade_canister(
            &self,
            canister_id: Principal,
            wasm_module: Vec<u8>,
            arg: Vec<u8>,
            sender: Option<Principal>,
        ) -> Result<(), RejectResponse> {
            Self::upgrade_canister(self, canister_id, wasm_module, arg, sender).map_err($conv_err)
        }
        fn reinstall_canister(
            &self,
            canister_id: Principal,
            wasm_module: Vec<u8>,
            arg: Vec<u8>,
            sender: Option<Principal>,
        ) -> Result<(), RejectResponse> {
            Self::reinstall_canister(self, canister_id, wasm_module, arg, sender).map_err($conv_err)
        }
        fn uninstall_canister(
            &self,
            canister_id: Principal,
            sender: Option<Principal>,
        ) -> Result<(), RejectResponse> {
            Self::uninstall_canister(self, canister_id, sender).map_err($conv_err)
        }
        fn update_call(
            &self,
            canister_id: Principal,
            sender: Principal,
            method: &str,
            payload: Vec<u8>,
        ) -> Result<Vec<u8>, RejectResponse> {
            Self::update_call(self, canister_id, sender, method, payload).map_err($conv_err)
        }
        fn query_call(
            &self,
            canister_id: Principal,
            sender: Principal,
            method: &str,
            payload: Vec<u8>,
        ) -> Result<Vec<u8>, RejectResponse> {
            Self::query_call(self, canister_id, sender, method, payload).map_err($conv_err)
        }
        fn tick(&self) {
            Self::tick(self)
        }
        fn advance_time(&self, duration: Duration) {
            Self::advance_time(self, duration)
        }
        fn get_time(&self) -> Time {
            $conv_time(Self::get_time(self))
        }
        fn canister_status(
            &self,
            canister_id: Principal,
            sender: Option<Principal>,
        ) -> Result<mgmt::CanisterStatusResult, RejectResponse> {
            Self::canister_status(self, canister_id, sender).map_err($conv_err)
        }
        fn get_controllers(&self, canister_id: Principal) -> Vec<Principal> {
            Self::get_controllers(self, canister_id)
        }
        fn set_controllers(
            &self,
            canister_id: Principal,
            sender: Option<Principal>,
            new_controllers: Vec<Principal>,
        ) -> Result<(), RejectResponse> {
            Self::set_controllers(self, canister_id, sender, new_controllers).map_err($conv_err)
        }
        fn start_canister(
            &self,
            canister_id: Principal,
            sender: Option<Principal>,
        ) -> Result<(), RejectResponse> {
            Self::start_canister(self, canister_id, sender).map_err($conv_err)
        }
        fn stop_canister(
            &self,
            canister_id: Principal,
            sender: Option<Principal>,
        ) -> Result<(), RejectResponse> {
            Self::stop_canister(self, canister_id, sender).map_err($conv_err)
        }
        fn delete_canister(
            &self,
            canister_id: Principal,
            sender: Option<Principal>,
        ) -> Result<(), RejectResponse> {
            Self::delete_canister(self, canister_id, sender).map_err($conv_err)
        }
        fn take_canister_snapshot(
            &self,
            canister_id: Principal,
            sender: Option<Principal>,
            replace_snapshot: Option<Vec<u8>>,
        ) -> Result<mgmt::Snapshot, RejectResponse> {
            Self::take_canister_snapshot(self, canister_id, sender, replace_snapshot)
                .map_err($conv_err)
        }
        fn load_canister_snapshot(
            &self,
            canister_id: Principal,
            sender: Option<Principal>,
            snapshot_id: Vec<u8>,
        ) -> Result<(), RejectResponse> {
            Self::load_canister_snapshot(self, canister_id, sender, snapshot_id).map_err($conv_err)
        }
        fn list_canister_snapshots(
            &self,
            canister_id: Principal,
            sender: Option<Principal>,
        ) -> Result<Vec<mgmt::Snapshot>, RejectResponse> {
            Self::list_canister_snapshots(self, canister_id, sender).map_err($conv_err)
        }
        fn delete_canister_snapshot(
            &self,
            canister_id: Principal,
            sender: Option<Principal>,
            snapshot_id: Vec<u8>,
        ) -> Result<(), RejectResponse> {
            Self::delete_canister_snapshot(self, canister_id, sender, snapshot_id)
                .map_err($conv_err)
        }
        fn upload_chunk(
            &self,
            canister_id: Principal,
            sender: Option<Principal>,
            chunk: Vec<u8>,
        ) -> Result<Vec<u8>, RejectResponse> {
            Self::upload_chunk(self, canister_id, sender, chunk).map_err($conv_err)
        }
        fn stored_chunks(
            &self,
            canister_id: Principal,
            sender: Option<Principal>,
        ) -> Result<Vec<Vec<u8>>, RejectResponse> {
            Self::stored_chunks(self, canister_id, sender).map_err($conv_err)
        }
        fn clear_chunk_store(
            &self,
            canister_id: Principal,
            sender: Option<Principal>,
        ) -> Result<(), RejectResponse> {
            Self::clear_chunk_store(self, canister_id, sender).map_err($conv_err)
        }
        fn install_chunked_canister(
            &self,
            canister_id: Principal,
            sender: Option<Principal>,
            mode: mgmt::CanisterInstallMode,
            store_canister_id: Principal,
            chunk_hashes_list: Vec<Vec<u8>>,
            wasm_module_hash: Vec<u8>,
            arg: Vec<u8>,
        ) -> Result<(), RejectResponse> {
            Self::install_chunked_canister(
                self,
                canister_id,
                sender,
                mode,
                store_canister_id,
                chunk_hashes_list,
                wasm_module_hash,
                arg,
            )
            .map_err($conv_err)
        }
    };
}

fn same_error(e: RejectResponse) -> RejectResponse {
    e
}

fn same_time(t: Time) -> Time {
    t
}

impl IcBackend for Sim {
    fn backend_name(&self) -> &'static str {
        "ic-sim"
    }
    delegate!(same_error, same_time);
}

#[cfg(feature = "pocket-ic")]
mod pocket {
    use super::*;
    use crate::types::{ErrorCode, RejectCode};

    pub(super) fn from_pocket(e: pocket_ic::RejectResponse) -> RejectResponse {
        RejectResponse {
            reject_code: RejectCode::from_u32(e.reject_code as u32).unwrap_or(RejectCode::SysFatal),
            error_code: ErrorCode::from_u64(e.error_code as u64)
                .unwrap_or(ErrorCode::CanisterWasmEngineError),
            reject_message: e.reject_message,
            certified: e.certified,
        }
    }

    pub(super) fn from_pocket_time(t: pocket_ic::Time) -> Time {
        Time::from_nanos_since_unix_epoch(t.as_nanos_since_unix_epoch())
    }

    impl IcBackend for pocket_ic::PocketIc {
        fn backend_name(&self) -> &'static str {
            "pocket-ic"
        }
        delegate!(from_pocket, from_pocket_time);
    }
}

/// The backend the environment asks for: a PocketIC server when `POCKET_IC_BIN` is set (and the
/// `pocket-ic` feature is on), the simulator otherwise.
pub fn backend_from_env() -> Box<dyn IcBackend> {
    #[cfg(feature = "pocket-ic")]
    if std::env::var_os("POCKET_IC_BIN").is_some() {
        return Box::new(pocket_ic::PocketIc::new());
    }
    static NOTE: std::sync::Once = std::sync::Once::new();
    NOTE.call_once(|| {
        eprintln!("ic-sim: POCKET_IC_BIN is not set; running on the embedded simulator (set it to a PocketIC server binary to run the same tests on PocketIC)");
    });
    Box::new(Sim::new())
}
