//! Canister creation and settings.

use candid::Principal;
use ic_management_canister_types as mgmt;

use super::*;

impl SimState {
    pub(super) fn create_with_settings(
        &mut self,
        sender: Principal,
        subnet: usize,
        specified_id: Option<Principal>,
        settings: Option<mgmt::CanisterSettings>,
        cycles: u128,
        origin: mgmt::ChangeOrigin,
    ) -> Result<Principal, RejectResponse> {
        let controllers = settings
            .as_ref()
            .and_then(|s| s.controllers.clone())
            .unwrap_or_else(|| vec![sender]);
        check_controllers(&controllers)?;
        if let Some(settings) = &settings {
            validate(settings)?;
        }
        let id = match specified_id {
            None => self.new_canister(subnet, controllers, cycles)?,
            Some(id) => {
                self.check_specified_id(id)?;
                // A mainnet id outside every subnet's ranges gets a new subnet, as PocketIC
                // creates one: the named subnet whose mainnet range holds it (the NNS and II
                // subnets must exist from the start), an application subnet otherwise.
                let index = subnet::canister_index(id).expect("checked");
                let subnet = match self.subnets.route(id) {
                    Some(subnet) => subnet,
                    None => match SubnetKind::named_for(index) {
                        Some(kind @ (SubnetKind::Nns | SubnetKind::Ii)) => {
                            return Err(errors::named_subnet_missing(id, kind));
                        }
                        Some(kind) => self.add_subnet(kind, None),
                        None => self.add_subnet(SubnetKind::Application, Some(index)),
                    },
                };
                self.insert_canister(id, subnet, controllers, cycles);
                id
            }
        };
        if let Some(settings) = &settings {
            self.apply_settings(id, settings, None)?;
        }
        let time = self.time;
        let canister = self.canisters.get_mut(&id).expect("just created");
        let env = &canister.settings.environment_variables;
        let details = mgmt::ChangeDetails::Creation(mgmt::CreationRecord {
            controllers: canister.controllers.clone(),
            environment_variables_hash: (!env.is_empty()).then(|| env_hash(env)),
        });
        record_change(canister, time, origin, details);
        Ok(id)
    }

    /// A `specified_id` must be a canister id that is not taken and lies outside the ranges the
    /// environment allocates from (canister_manager.rs `validate_specified_id`, errors
    /// `CanisterIdAlreadyExists` and `InvalidSpecifiedId`).
    pub(super) fn check_specified_id(&self, id: Principal) -> Result<(), RejectResponse> {
        let Some(index) = subnet::canister_index(id) else {
            return Err(errors::invalid_payload(
                "provisional_create_canister_with_cycles",
                &format!("specified_id {id} is not a canister id"),
            ));
        };
        if self.canisters.contains_key(&id) {
            return Err(errors::canister_id_exists(id));
        }
        if self.subnets.is_allocated_range(index) {
            return Err(errors::invalid_specified_id(id));
        }
        Ok(())
    }

    pub(super) fn apply_settings(
        &mut self,
        id: Principal,
        settings: &mgmt::CanisterSettings,
        origin: Option<mgmt::ChangeOrigin>,
    ) -> Result<(), RejectResponse> {
        if let Some(controllers) = &settings.controllers {
            check_controllers(controllers)?;
        }
        validate(settings)?;
        let time = self.time;
        let canister = self.existing(id)?;
        if let Some(controllers) = &settings.controllers {
            canister.controllers = controllers.clone();
            if let Some(origin) = origin {
                let details =
                    mgmt::ChangeDetails::ControllersChange(mgmt::ControllersChangeRecord {
                        controllers: controllers.clone(),
                    });
                record_change(canister, time, origin, details);
            }
        }
        let s = &mut canister.settings;
        if let Some(v) = &settings.compute_allocation {
            s.compute_allocation = nat_to_u64(v);
        }
        if let Some(v) = &settings.memory_allocation {
            s.memory_allocation = nat_to_u64(v);
        }
        if let Some(v) = &settings.freezing_threshold {
            s.freezing_threshold = nat_to_u64(v);
        }
        if let Some(v) = &settings.reserved_cycles_limit {
            s.reserved_cycles_limit = nat_to_u128(v);
        }
        if let Some(v) = &settings.wasm_memory_limit {
            s.wasm_memory_limit = nat_to_u64(v);
        }
        if let Some(v) = &settings.wasm_memory_threshold {
            s.wasm_memory_threshold = nat_to_u64(v);
        }
        if let Some(v) = &settings.log_visibility {
            s.log_visibility = v.clone();
        }
        if let Some(v) = &settings.log_memory_limit {
            s.log_memory_limit = nat_to_u64(v);
        }
        if let Some(v) = &settings.snapshot_visibility {
            s.snapshot_visibility = v.clone();
        }
        if let Some(vars) = &settings.environment_variables {
            s.environment_variables = vars
                .iter()
                .map(|v| (v.name.clone(), v.value.clone()))
                .collect();
        }
        Ok(())
    }
}

pub(super) fn check_controllers(controllers: &[Principal]) -> Result<(), RejectResponse> {
    if controllers.len() > MAX_CONTROLLERS {
        return Err(RejectResponse::new(
            ErrorCode::CanisterContractViolation,
            format!(
                "Could not validate the settings: Invalid settings: 'controllers' length exceeds maximum size allowed of {MAX_CONTROLLERS}."
            ),
        ));
    }
    Ok(())
}

/// Most environment variables per canister, and the longest name and value (bytes), as in the
/// replica's config (rs/config/src/execution_environment.rs).
const MAX_ENVIRONMENT_VARIABLES: usize = 20;
const MAX_ENVIRONMENT_VARIABLE_NAME_LENGTH: usize = 128;
const MAX_ENVIRONMENT_VARIABLE_VALUE_LENGTH: usize = 128;
/// Bounds of `log_memory_limit`: at least 4 KiB, at most 2 MiB, the replica's
/// `MIN_AGGREGATE_LOG_MEMORY_LIMIT` and `MAX_AGGREGATE_LOG_MEMORY_LIMIT`
/// (rs/replicated_state/src/canister_state/system_state/log_memory_store), refused with
/// `CanisterLogMemoryLimitIsTooLow/High` (canister_manager/types.rs).
const MIN_LOG_MEMORY_LIMIT: u64 = crate::canister::DEFAULT_LOG_MEMORY_LIMIT;
const MAX_LOG_MEMORY_LIMIT: u64 = 2 * 1024 * 1024;

/// The checks the replica makes before applying any setting (so a refused update changes
/// nothing), with its error texts (canister_manager/types.rs).
fn validate(settings: &mgmt::CanisterSettings) -> Result<(), RejectResponse> {
    if let Some(vars) = &settings.environment_variables {
        // Decoding the settings collects the variables into a map first and refuses duplicate
        // names (canister_settings.rs, `UpdateSettingsError::DuplicateEnvironmentVariables`),
        // before canister_manager.rs checks their number and lengths.
        let names: std::collections::BTreeSet<&str> =
            vars.iter().map(|v| v.name.as_str()).collect();
        if names.len() != vars.len() {
            return Err(RejectResponse::new(
                ErrorCode::InvalidManagementPayload,
                "Duplicate environment variables are not allowed",
            ));
        }
        if vars.len() > MAX_ENVIRONMENT_VARIABLES {
            return Err(RejectResponse::new(
                ErrorCode::InvalidManagementPayload,
                format!(
                    "Too many environment variables: {} (max: {MAX_ENVIRONMENT_VARIABLES})",
                    vars.len()
                ),
            ));
        }
        for var in vars {
            if var.name.len() > MAX_ENVIRONMENT_VARIABLE_NAME_LENGTH {
                return Err(RejectResponse::new(
                    ErrorCode::InvalidManagementPayload,
                    format!(
                        "Environment variable name \"{}\" exceeds the maximum allowed length of {MAX_ENVIRONMENT_VARIABLE_NAME_LENGTH}.",
                        var.name
                    ),
                ));
            }
            if var.value.len() > MAX_ENVIRONMENT_VARIABLE_VALUE_LENGTH {
                return Err(RejectResponse::new(
                    ErrorCode::InvalidManagementPayload,
                    format!(
                        "Environment variable value \"{}\" exceeds the maximum allowed length of {MAX_ENVIRONMENT_VARIABLE_VALUE_LENGTH}.",
                        var.value
                    ),
                ));
            }
        }
    }
    if let Some(limit) = &settings.log_memory_limit {
        let bytes = nat_to_u64(limit);
        if bytes < MIN_LOG_MEMORY_LIMIT {
            return Err(RejectResponse::new(
                ErrorCode::CanisterRejectedMessage,
                format!(
                    "The canister log memory limit {bytes} is too low. It must be at least {MIN_LOG_MEMORY_LIMIT}."
                ),
            ));
        }
        if bytes > MAX_LOG_MEMORY_LIMIT {
            return Err(RejectResponse::new(
                ErrorCode::CanisterRejectedMessage,
                format!(
                    "The canister log memory limit {bytes} is too high. It must be at most {MAX_LOG_MEMORY_LIMIT}."
                ),
            ));
        }
    }
    Ok(())
}

/// The hash a creation record carries of the environment variables, as the replica computes
/// it (rs/types/base_types/src/environment_variables.rs, `EnvironmentVariables::hash`, the
/// interface spec's `hash_of_map`): SHA-256 of the sorted concatenations
/// SHA-256(name) · SHA-256(value).
fn env_hash(vars: &std::collections::BTreeMap<String, String>) -> Vec<u8> {
    let mut pairs: Vec<Vec<u8>> = vars
        .iter()
        .map(|(name, value)| {
            let mut pair = Sha256::digest(name.as_bytes()).to_vec();
            pair.extend_from_slice(&Sha256::digest(value.as_bytes()));
            pair
        })
        .collect();
    pairs.sort();
    let mut hasher = Sha256::new();
    for pair in pairs {
        hasher.update(&pair);
    }
    hasher.finalize().to_vec()
}
