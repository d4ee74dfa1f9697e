//! Request authentication, as the replica's validator does it (dfinity/ic
//! `rs/validator/src/ingress_validation.rs`): the ingress expiry lies within the permitted window,
//! the sender is anonymous with no signature or the self-authenticating principal of
//! `sender_pubkey`, and `sender_sig` is a valid Ed25519 or ECDSA secp256k1 signature of
//! `\x0Aic-request` followed by the request id. Without this any client could claim to be an
//! operator.
//!
//! Not supported, and refused with a clear message: delegation chains (Internet Identity),
//! P-256, WebAuthn and canister signatures. icp-cli's and dfx's key identities need none of them.

use candid::Principal;
use ic_transport_types::{Envelope, EnvelopeContent};
use k256::ecdsa::signature::Verifier;
use k256::pkcs8::DecodePublicKey;
use thiserror::Error;

/// The replica's `MAX_INGRESS_TTL` (`ic_limits`): an ingress message expires at most 5 minutes
/// after it is sent.
pub const MAX_INGRESS_TTL_NANOS: u64 = 5 * 60 * 1_000_000_000;
/// The replica's `PERMITTED_DRIFT_AT_VALIDATOR` (`ic_limits`): 30 s of client clock skew.
pub const PERMITTED_DRIFT_NANOS: u64 = 30 * 1_000_000_000;
/// The replica's `MAXIMUM_NUMBER_OF_BYTES_IN_NONCE`.
const MAX_NONCE_BYTES: usize = 32;

/// Domain separator of a request signature (interface spec, "Authentication").
const REQUEST_DOMAIN: &[u8] = b"\x0Aic-request";

/// Why a request was refused (the replica's `RequestValidationError`, same messages).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    /// The ingress expiry is in the past or too far in the future.
    #[error(
        "Invalid request expiry: Specified ingress_expiry not within expected range: Minimum allowed expiry: {min}, Maximum allowed expiry: {max}, Provided expiry:        {provided}"
    )]
    InvalidRequestExpiry {
        /// Nanoseconds since the epoch.
        min: u64,
        /// Nanoseconds since the epoch.
        max: u64,
        /// Nanoseconds since the epoch.
        provided: u64,
    },
    /// The sender is not the principal of the public key.
    #[error("The user id '{sender}' does not match the public key '{public_key}'")]
    UserIdDoesNotMatchPublicKey {
        /// The claimed sender.
        sender: Principal,
        /// Hex of the public key sent.
        public_key: String,
    },
    /// The signature does not verify, or the key is not one the server understands.
    #[error("Invalid signature: {0}")]
    InvalidSignature(String),
    /// A non-anonymous sender sent no signature.
    #[error("Missing signature from user: {0}")]
    MissingSignature(Principal),
    /// The anonymous sender sent a signature.
    #[error("Signature is not allowed for the anonymous user.")]
    AnonymousSignatureNotAllowed,
    /// The nonce is longer than 32 bytes.
    #[error("Nonce in request is too big: got {0} bytes, but at most 32 are allowed.")]
    NonceTooBig(usize),
    /// A delegation chain was sent.
    #[error(
        "Invalid delegation: this server (ic-sim-http) does not verify delegation chains; sign with the key itself (an icp or dfx key identity)"
    )]
    DelegationNotSupported,
}

/// Checks the request's expiry (at simulated time `now`) and its signature.
pub fn authenticate(envelope: &Envelope<'_>, now: u64) -> Result<(), AuthError> {
    let content = envelope.content.as_ref();
    let sender = *content.sender();
    // Queries and read_state requests of the anonymous user skip the expiry check (replica:
    // `HttpRequestVerifier<Query>` and `<ReadState>`); calls never do.
    let is_call = matches!(content, EnvelopeContent::Call { .. });
    if is_call || sender != Principal::anonymous() {
        check_expiry(content.ingress_expiry(), now)?;
    }
    let nonce_len = match content {
        EnvelopeContent::Call { nonce, .. } | EnvelopeContent::Query { nonce, .. } => {
            nonce.as_ref().map_or(0, Vec::len)
        }
        EnvelopeContent::ReadState { .. } => 0,
    };
    if nonce_len > MAX_NONCE_BYTES {
        return Err(AuthError::NonceTooBig(nonce_len));
    }
    let anonymous = sender == Principal::anonymous();
    match (&envelope.sender_pubkey, &envelope.sender_sig) {
        (None, None) if anonymous => Ok(()),
        (Some(_), _) | (_, Some(_)) if anonymous => Err(AuthError::AnonymousSignatureNotAllowed),
        (Some(public_key), Some(signature)) => {
            if Principal::self_authenticating(public_key) != sender {
                return Err(AuthError::UserIdDoesNotMatchPublicKey {
                    sender,
                    public_key: hex::encode(public_key),
                });
            }
            if envelope
                .sender_delegation
                .as_ref()
                .is_some_and(|d| !d.is_empty())
            {
                return Err(AuthError::DelegationNotSupported);
            }
            let mut message = REQUEST_DOMAIN.to_vec();
            message.extend_from_slice(content.to_request_id().as_slice());
            verify_basic_signature(public_key, &message, signature)
        }
        _ => Err(AuthError::MissingSignature(sender)),
    }
}

/// The replica's window: `now <= expiry <= now + MAX_INGRESS_TTL + PERMITTED_DRIFT`.
pub fn check_expiry(expiry: u64, now: u64) -> Result<(), AuthError> {
    let max = now + MAX_INGRESS_TTL_NANOS + PERMITTED_DRIFT_NANOS;
    if now <= expiry && expiry <= max {
        Ok(())
    } else {
        Err(AuthError::InvalidRequestExpiry {
            min: now,
            max,
            provided: expiry,
        })
    }
}

/// Verifies `signature` of `message` under a DER public key: Ed25519 (RFC 8410) or ECDSA on
/// secp256k1 over SHA-256 (64 bytes, r || s).
fn verify_basic_signature(
    public_key_der: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), AuthError> {
    if let Ok(key) = ic_ed25519::PublicKey::deserialize_rfc8410_der(public_key_der) {
        return key.verify_signature(message, signature).map_err(|e| {
            AuthError::InvalidSignature(format!(
                "Invalid basic signature: Ed25519 signature: {e:?}"
            ))
        });
    }
    if let Ok(key) = k256::ecdsa::VerifyingKey::from_public_key_der(public_key_der) {
        let signature = k256::ecdsa::Signature::from_slice(signature).map_err(|e| {
            AuthError::InvalidSignature(format!(
                "Invalid basic signature: malformed ECDSA secp256k1 signature: {e}"
            ))
        })?;
        return key.verify(message, &signature).map_err(|_| {
            AuthError::InvalidSignature(
                "Invalid basic signature: ECDSA secp256k1 signature does not verify".into(),
            )
        });
    }
    Err(AuthError::InvalidSignature(format!(
        "Invalid public key: not a DER-encoded Ed25519 or ECDSA secp256k1 key ({} bytes); this server verifies those two",
        public_key_der.len()
    )))
}
