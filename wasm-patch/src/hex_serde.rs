//! Bytes and hashes as lowercase hex strings in JSON (`#[serde(with = ...)]` helpers).
//!
//! Hex is what an operator sees from `sha256sum` and `dfx canister info`, so hashes read the same
//! everywhere. Deserialising accepts either case; serialising always writes lowercase, which keeps
//! the canonical JSON of a patch (and so its digest) independent of how the input was typed.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serializer};

/// `Vec<u8>` as a hex string.
pub mod bytes {
    use super::*;

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(&text).map_err(|e| D::Error::custom(format!("invalid hex `{text}`: {e}")))
    }
}

/// `[u8; 32]` as a 64-digit hex string.
pub mod hash {
    use super::*;

    pub fn serialize<S: Serializer>(hash: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(hash))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map_err(D::Error::custom)
    }

    /// Parses a SHA-256 written as 64 hex digits.
    pub fn parse(text: &str) -> Result<[u8; 32], String> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out)
            .map_err(|e| format!("expected 64 hex digits (a SHA-256), found `{text}`: {e}"))?;
        Ok(out)
    }
}

/// `Option<[u8; 32]>` as a 64-digit hex string or null.
pub mod opt_hash {
    use super::*;

    pub fn serialize<S: Serializer>(hash: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        match hash {
            Some(hash) => s.serialize_some(&hex::encode(hash)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 32]>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| hash::parse(&text).map_err(D::Error::custom))
            .transpose()
    }
}
