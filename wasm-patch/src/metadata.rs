//! Canister metadata: `icp:` custom sections, and the stamp every patch writes.
//!
//! # Section naming
//!
//! The IC exposes a module's custom sections named `icp:public NAME` to everyone and those named
//! `icp:private NAME` to the canister's controllers only (`dfx canister metadata`). Any other
//! custom section name that starts with `icp:` is refused at install, and so is a NAME that
//! appears twice, even once public and once private. [`section_name`] builds a section name and
//! [`parse_section_name`] splits one. NAME is any non-empty string.
//!
//! # The stamp
//!
//! [`crate::apply_patch`] writes these public sections on every patch, even for an empty list of
//! operations, replacing whatever the parent module had under the same NAME:
//!
//! | section | content (UTF-8, no trailing newline) | example |
//! | --- | --- | --- |
//! | `icp:public agent:version` | [`Stamp::version`] as given | `0.4.1` |
//! | `icp:public agent:parent_hash` | SHA-256 of the input bytes, 64 lowercase hex digits | `9f86d08…` |
//! | `icp:public agent:patch_digest` | SHA-256 of [`crate::canonical_ops_json`], 64 lowercase hex digits | `4f53cda…` |
//! | `icp:public agent:schema_range` | `MIN..=MAX` in decimal, only when [`Stamp::schema_range`] is set | `3..=4` |
//!
//! The parent hash is over the bytes exactly as handed to `apply_patch` (gzip or not), which is
//! what the IC reports as the running module's `module_hash`, so the watchdog and step 3 of the
//! journal can compare the two directly.
//!
//! A schema range is a claim about the build being stamped, so it is never inherited: a stamp
//! without one removes the parent's `agent:schema_range`, and a policy that asks for a schema
//! check then refuses the module instead of trusting a stale range.
//!
//! Readers ([`validate`](fn@crate::validate), [`fingerprint`](fn@crate::fingerprint)) find a stamp section by NAME under either
//! visibility, and refuse one whose content does not have the format above.

use crate::ValidationError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Prefix of every IC metadata section name.
pub const ICP_PREFIX: &str = "icp:";

/// Stamp NAME: the version string of the patched build.
pub const VERSION: &str = "agent:version";
/// Stamp NAME: hex SHA-256 of the module the patch was applied to.
pub const PARENT_HASH: &str = "agent:parent_hash";
/// Stamp NAME: hex SHA-256 of the canonical JSON of the applied operations.
pub const PATCH_DIGEST: &str = "agent:patch_digest";
/// Stamp NAME: the stable-memory schema versions the build can run on, `MIN..=MAX`.
pub const SCHEMA_RANGE: &str = "agent:schema_range";
/// Every stamp NAME. [`crate::PatchOp::SetMetadata`] may not write these.
pub const STAMP_NAMES: [&str; 4] = [VERSION, PARENT_HASH, PATCH_DIGEST, SCHEMA_RANGE];

/// Who may read a metadata section on the IC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// `icp:public NAME`: anyone.
    Public,
    /// `icp:private NAME`: the canister's controllers.
    Private,
}

impl Visibility {
    /// The other visibility.
    pub fn other(self) -> Self {
        match self {
            Visibility::Public => Visibility::Private,
            Visibility::Private => Visibility::Public,
        }
    }

    /// The section-name prefix, including the trailing space: `icp:public ` or `icp:private `.
    pub fn prefix(self) -> &'static str {
        match self {
            Visibility::Public => "icp:public ",
            Visibility::Private => "icp:private ",
        }
    }
}

/// The custom section name for metadata `name`: `icp:public NAME` or `icp:private NAME`.
pub fn section_name(visibility: Visibility, name: &str) -> String {
    format!("{}{name}", visibility.prefix())
}

/// Splits `icp:public NAME` / `icp:private NAME` into visibility and NAME. `None` for any
/// other section name, including an empty NAME.
pub fn parse_section_name(section: &str) -> Option<(Visibility, &str)> {
    [Visibility::Public, Visibility::Private]
        .into_iter()
        .find_map(|vis| {
            section
                .strip_prefix(vis.prefix())
                .filter(|name| !name.is_empty())
                .map(|name| (vis, name))
        })
}

/// Whether `name` is one of the stamp NAMEs that only `apply_patch` writes.
pub fn is_stamp_name(name: &str) -> bool {
    STAMP_NAMES.contains(&name)
}

/// What [`crate::apply_patch`] writes into every module it emits, besides the hashes it
/// computes itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stamp {
    /// Version of the patched build, for example `0.4.1+patch.3`. Must not be empty.
    pub version: String,
    /// Stable-memory schema versions the build can run on, inclusive: `(min, max)` with
    /// `min <= max`. `None` removes any range the parent module had (see the module docs).
    #[serde(default)]
    pub schema_range: Option<(u32, u32)>,
}

impl Stamp {
    /// A stamp with a version and no schema range.
    pub fn new(version: impl Into<String>) -> Self {
        Stamp {
            version: version.into(),
            schema_range: None,
        }
    }

    /// The same stamp, declaring schema versions `min..=max`.
    pub fn with_schema_range(mut self, min: u32, max: u32) -> Self {
        self.schema_range = Some((min, max));
        self
    }
}

/// Formats a schema range as stamped: `MIN..=MAX`.
pub fn format_schema_range((min, max): (u32, u32)) -> String {
    format!("{min}..={max}")
}

/// Parses `MIN..=MAX` (decimal, `MIN <= MAX`).
pub fn parse_schema_range(text: &str) -> Result<(u32, u32), String> {
    let bad = || format!("expected `MIN..=MAX` with decimal MIN <= MAX, found `{text}`");
    let (min, max) = text.split_once("..=").ok_or_else(bad)?;
    let min: u32 = min.parse().map_err(|_| bad())?;
    let max: u32 = max.parse().map_err(|_| bad())?;
    if min > max {
        return Err(bad());
    }
    Ok((min, max))
}

/// The stamp as read back from a module's sections. Every field is `None` when its section is
/// absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StampRead {
    pub version: Option<String>,
    pub parent_hash: Option<[u8; 32]>,
    pub patch_digest: Option<[u8; 32]>,
    pub schema_range: Option<(u32, u32)>,
}

/// Finds metadata NAME under either visibility in `sections` (full section name -> content).
pub(crate) fn find<'a>(
    sections: &'a BTreeMap<String, Vec<u8>>,
    name: &str,
) -> Option<(&'a str, &'a [u8])> {
    [Visibility::Public, Visibility::Private]
        .into_iter()
        .find_map(|vis| sections.get_key_value(&section_name(vis, name)))
        .map(|(section, content)| (section.as_str(), content.as_slice()))
}

/// Reads and checks the stamp sections.
pub(crate) fn read_stamp(
    sections: &BTreeMap<String, Vec<u8>>,
) -> Result<StampRead, ValidationError> {
    fn text<'a>(section: &str, content: &'a [u8]) -> Result<&'a str, ValidationError> {
        std::str::from_utf8(content).map_err(|e| ValidationError::MalformedMetadata {
            section: section.to_string(),
            reason: format!("content is not UTF-8: {e}"),
        })
    }
    let hash = |name: &str| -> Result<Option<[u8; 32]>, ValidationError> {
        find(sections, name)
            .map(|(section, content)| {
                crate::hex_serde::hash::parse(text(section, content)?).map_err(|reason| {
                    ValidationError::MalformedMetadata {
                        section: section.to_string(),
                        reason,
                    }
                })
            })
            .transpose()
    };
    let version = find(sections, VERSION)
        .map(|(section, content)| text(section, content).map(str::to_string))
        .transpose()?;
    let schema_range = find(sections, SCHEMA_RANGE)
        .map(|(section, content)| {
            parse_schema_range(text(section, content)?).map_err(|reason| {
                ValidationError::MalformedMetadata {
                    section: section.to_string(),
                    reason,
                }
            })
        })
        .transpose()?;
    Ok(StampRead {
        version,
        parent_hash: hash(PARENT_HASH)?,
        patch_digest: hash(PATCH_DIGEST)?,
        schema_range,
    })
}

/// Serde for [`crate::PatchOp::SetMetadata`]'s `content`: a JSON string is its UTF-8 bytes, and
/// `{"hex": "00ff"}` gives arbitrary bytes. Serialising writes a string when the bytes are UTF-8
/// and the hex form otherwise, so both spellings of the same bytes have the same canonical JSON.
pub(crate) mod content_serde {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Content {
        Text(String),
        Hex {
            #[serde(with = "crate::hex_serde::bytes")]
            hex: Vec<u8>,
        },
    }

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(bytes) {
            Ok(text) => Content::Text(text.to_string()),
            Err(_) => Content::Hex {
                hex: bytes.to_vec(),
            },
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        match Content::deserialize(d) {
            Ok(Content::Text(text)) => Ok(text.into_bytes()),
            Ok(Content::Hex { hex }) => Ok(hex),
            Err(_) => Err(D::Error::custom(
                "metadata content must be a string (stored as UTF-8) or {\"hex\": \"<hex digits>\"}",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_names_round_trip() {
        assert_eq!(
            section_name(Visibility::Public, "candid:service"),
            "icp:public candid:service"
        );
        assert_eq!(
            parse_section_name("icp:private a b"),
            Some((Visibility::Private, "a b"))
        );
        assert_eq!(parse_section_name("icp:public "), None);
        assert_eq!(parse_section_name("icp:secret x"), None);
        assert_eq!(parse_section_name("name"), None);
    }

    #[test]
    fn schema_range_format() {
        assert_eq!(format_schema_range((3, 4)), "3..=4");
        assert_eq!(parse_schema_range("3..=4"), Ok((3, 4)));
        assert_eq!(parse_schema_range("7..=7"), Ok((7, 7)));
        for bad in ["4..=3", "3..4", "-1..=2", "3..=", "", "3 ..=4"] {
            assert!(parse_schema_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stamp_json() {
        let stamp: Stamp = serde_json::from_str(r#"{"version": "1.0"}"#).unwrap();
        assert_eq!(stamp, Stamp::new("1.0"));
        let stamp: Stamp =
            serde_json::from_str(r#"{"version": "1.0", "schema_range": [2, 5]}"#).unwrap();
        assert_eq!(stamp, Stamp::new("1.0").with_schema_range(2, 5));
    }
}
