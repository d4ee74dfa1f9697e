//! The schema header: the first bytes of the agent's header memory (MemoryId 0).
//!
//! # Layout (layout version = schema version)
//!
//! ```text
//! offset 0                8                12               16
//!        +----------------+----------------+----------------+
//!        | magic          | schema version | reserved       |
//!        | "AGSCHEMA"     | u32 LE         | u32 LE = 0     |
//!        +----------------+----------------+----------------+
//! ```
//!
//! An empty memory (size 0) has no header yet: a fresh canister. Any other content without the
//! magic is refused rather than guessed at.

use ic_stable_structures::Memory;

/// The 8 magic bytes.
pub const MAGIC: &[u8; 8] = b"AGSCHEMA";
/// Bytes the header occupies.
pub const HEADER_LEN: usize = 16;

/// The decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaHeader {
    /// The schema version the stores are in.
    pub version: u32,
}

/// A header that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The memory holds something that is not a schema header.
    #[error(
        "schema header: bad magic {found:02x?} (expected {MAGIC:02x?}); refusing to touch stable memory"
    )]
    BadMagic {
        /// The first 8 bytes found.
        found: [u8; 8],
    },
}

impl SchemaHeader {
    /// The header's bytes (golden-tested).
    pub fn to_bytes(self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..8].copy_from_slice(MAGIC);
        out[8..12].copy_from_slice(&self.version.to_le_bytes());
        out
    }

    /// Reads the header; `Ok(None)` when the memory is empty.
    pub fn read<M: Memory>(memory: &M) -> Result<Option<SchemaHeader>, HeaderError> {
        if memory.size() == 0 {
            return Ok(None);
        }
        let mut bytes = [0u8; HEADER_LEN];
        memory.read(0, &mut bytes);
        let mut magic = [0u8; 8];
        magic.copy_from_slice(&bytes[..8]);
        if &magic != MAGIC {
            return Err(HeaderError::BadMagic { found: magic });
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        Ok(Some(SchemaHeader { version }))
    }

    /// Writes the header, growing the memory by one page if it is empty.
    pub fn write<M: Memory>(self, memory: &M) {
        if memory.size() == 0 {
            assert!(memory.grow(1) != -1, "schema header: stable memory is full");
        }
        memory.write(0, &self.to_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ic_stable_structures::VectorMemory;

    #[test]
    fn header_bytes_are_golden() {
        assert_eq!(
            SchemaHeader { version: 3 }.to_bytes(),
            *b"AGSCHEMA\x03\x00\x00\x00\x00\x00\x00\x00"
        );
    }

    #[test]
    fn empty_memory_has_no_header_and_round_trips() {
        let memory = VectorMemory::default();
        assert_eq!(SchemaHeader::read(&memory), Ok(None));
        SchemaHeader { version: 2 }.write(&memory);
        assert_eq!(
            SchemaHeader::read(&memory),
            Ok(Some(SchemaHeader { version: 2 }))
        );
    }

    #[test]
    fn foreign_bytes_are_refused() {
        let memory = VectorMemory::default();
        memory.grow(1);
        memory.write(0, b"not a header");
        assert!(matches!(
            SchemaHeader::read(&memory),
            Err(HeaderError::BadMagic { .. })
        ));
    }
}
