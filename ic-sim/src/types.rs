//! The values the simulator's public API speaks in, mirroring the `pocket-ic` crate's types (same
//! names, fields and numbers) so that tests read like PocketIC tests.

use std::fmt;
use std::time::{Duration, SystemTime};

/// The reject code of a failed call, as on the IC (interface spec, "Reject codes").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectCode {
    /// Fatal system error, retry unlikely to be useful.
    SysFatal = 1,
    /// Transient system error, retry might be possible.
    SysTransient = 2,
    /// Invalid destination (e.g. canister/account does not exist).
    DestinationInvalid = 3,
    /// Explicit reject by the canister.
    CanisterReject = 4,
    /// Canister error (e.g., trap, no response).
    CanisterError = 5,
    /// Response unknown; the call may or may not have been executed (best-effort calls).
    SysUnknown = 6,
}

impl RejectCode {
    /// The code from its number; `None` outside 1..=6.
    pub fn from_u32(code: u32) -> Option<Self> {
        Some(match code {
            1 => Self::SysFatal,
            2 => Self::SysTransient,
            3 => Self::DestinationInvalid,
            4 => Self::CanisterReject,
            5 => Self::CanisterError,
            6 => Self::SysUnknown,
            _ => return None,
        })
    }
}

macro_rules! error_codes {
    ($($(#[$doc:meta])* $name:ident = $num:literal,)*) => {
        /// The IC's error codes (`IC0xxx`), with the replica's current numbering.
        ///
        /// The hundreds digit is the reject code the error maps to.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[allow(missing_docs)]
        pub enum ErrorCode {
            $($(#[$doc])* $name = $num,)*
        }

        impl ErrorCode {
            /// The error code from its number.
            pub fn from_u64(n: u64) -> Option<Self> {
                match n {
                    $($num => Some(Self::$name),)*
                    _ => None,
                }
            }
        }
    };
}

error_codes! {
    SubnetOversubscribed = 101,
    MaxNumberOfCanistersReached = 102,
    CanisterQueueFull = 201,
    IngressMessageTimeout = 202,
    CanisterQueueNotEmpty = 203,
    IngressHistoryFull = 204,
    CanisterIdAlreadyExists = 205,
    StopCanisterRequestTimeout = 206,
    CanisterOutOfCycles = 207,
    CertifiedStateUnavailable = 208,
    CanisterInstallCodeRateLimited = 209,
    CanisterHeapDeltaRateLimited = 210,
    SubnetCoolingDown = 211,
    CanisterNotFound = 301,
    CanisterSnapshotNotFound = 305,
    InsufficientMemoryAllocation = 402,
    InsufficientCyclesForCreateCanister = 403,
    SubnetNotFound = 404,
    CanisterNotHostedBySubnet = 405,
    CanisterRejectedMessage = 406,
    UnknownManagementMessage = 407,
    InvalidManagementPayload = 408,
    CanisterSnapshotImmutable = 409,
    InvalidSubnetAdmin = 410,
    CanisterTrapped = 502,
    CanisterCalledTrap = 503,
    CanisterContractViolation = 504,
    CanisterInvalidWasm = 505,
    CanisterDidNotReply = 506,
    CanisterOutOfMemory = 507,
    CanisterStopped = 508,
    CanisterStopping = 509,
    CanisterNotStopped = 510,
    CanisterStoppingCancelled = 511,
    CanisterInvalidController = 512,
    CanisterFunctionNotFound = 513,
    CanisterNonEmpty = 514,
    QueryCallGraphLoopDetected = 517,
    InsufficientCyclesInCall = 520,
    CanisterWasmEngineError = 521,
    CanisterInstructionLimitExceeded = 522,
    CanisterMemoryAccessLimitExceeded = 524,
    QueryCallGraphTooDeep = 525,
    QueryCallGraphTotalInstructionLimitExceeded = 526,
    CompositeQueryCalledInReplicatedMode = 527,
    QueryTimeLimitExceeded = 528,
    QueryCallGraphInternal = 529,
    InsufficientCyclesInComputeAllocation = 530,
    InsufficientCyclesInMemoryAllocation = 531,
    InsufficientCyclesInMemoryGrow = 532,
    ReservedCyclesLimitExceededInMemoryAllocation = 533,
    ReservedCyclesLimitExceededInMemoryGrow = 534,
    InsufficientCyclesInMessageMemoryGrow = 535,
    CanisterMethodNotFound = 536,
    CanisterWasmModuleNotFound = 537,
    CanisterAlreadyInstalled = 538,
    CanisterWasmMemoryLimitExceeded = 539,
    ReservedCyclesLimitIsTooLow = 540,
    CanisterInvalidControllerOrSubnetAdmin = 541,
    CanisterStatusAccessDenied = 542,
    DeadlineExpired = 601,
    ResponseDropped = 602,
}

impl ErrorCode {
    /// The reject code this error is delivered with (its hundreds digit).
    pub fn reject_code(self) -> RejectCode {
        RejectCode::from_u32(self as u32 / 100).expect("every error code maps to a reject code")
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IC{:04}", *self as u32)
    }
}

/// A rejected call, as PocketIC reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectResponse {
    /// The reject code the caller sees.
    pub reject_code: RejectCode,
    /// The human-readable reject message.
    pub reject_message: String,
    /// The IC's error code (`IC0xxx`).
    pub error_code: ErrorCode,
    /// Whether the rejection is certified (always `true` for update calls in the simulator).
    pub certified: bool,
}

impl RejectResponse {
    /// A rejection with the reject code implied by `error_code`.
    pub fn new(error_code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            reject_code: error_code.reject_code(),
            reject_message: message.into(),
            error_code,
            certified: true,
        }
    }
}

impl fmt::Display for RejectResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "reject code {:?}, reject message {}, error code {}",
            self.reject_code, self.reject_message, self.error_code
        )
    }
}

impl std::error::Error for RejectResponse {}

/// A point in (simulated) time, in nanoseconds since the UNIX epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(Duration);

impl Time {
    /// Number of nanoseconds since the UNIX epoch.
    pub fn as_nanos_since_unix_epoch(&self) -> u64 {
        self.0
            .as_nanos()
            .try_into()
            .expect("simulated time fits in u64 nanoseconds")
    }

    /// The time `nanos` nanoseconds after the UNIX epoch.
    pub const fn from_nanos_since_unix_epoch(nanos: u64) -> Self {
        Time(Duration::from_nanos(nanos))
    }
}

impl std::ops::Add<Duration> for Time {
    type Output = Time;
    fn add(self, dur: Duration) -> Time {
        Time(self.0 + dur)
    }
}

impl From<SystemTime> for Time {
    fn from(time: SystemTime) -> Time {
        Time(
            time.duration_since(SystemTime::UNIX_EPOCH)
                .expect("times before the UNIX epoch are not supported"),
        )
    }
}

impl From<Time> for SystemTime {
    fn from(time: Time) -> SystemTime {
        SystemTime::UNIX_EPOCH + time.0
    }
}

/// The id of an ingress message submitted with `submit_call`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RawMessageId {
    /// The canister the message was sent to.
    pub effective_principal: candid::Principal,
    /// The message id bytes.
    pub message_id: Vec<u8>,
}
