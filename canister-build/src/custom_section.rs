//! Sets one custom section of a Wasm module by splicing bytes, without re-encoding the module.
//!
//! A custom section may appear anywhere in a module, and any number of times, so
//! [`set_custom_section`] removes every section with the given name and appends one at the end:
//!
//! ```text
//! 0x00  size:u32 LEB128  name_len:u32 LEB128  name bytes  content bytes
//! id    ^---------------- size counts everything after it ---------------^
//! ```
//!
//! Everything else is copied byte for byte, so the code, the `name` section and any other
//! metadata stay exactly as the compiler wrote them, and setting the same section twice gives
//! the same bytes as setting it once. (walrus, which `wasm-patch` uses, would re-encode the
//! whole module and add itself to `producers`.)

use std::ops::Range;
use wasmparser::{Encoding, Parser, Payload};

/// Why a custom section could not be set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SectionError {
    /// The input is not a readable Wasm module.
    #[error("not a readable Wasm module: {message} (at byte offset {offset})")]
    Malformed {
        /// What wasmparser found wrong.
        message: String,
        /// Where, in bytes from the start of the module.
        offset: usize,
    },
    /// The input is a Wasm component, not a core module.
    #[error("expected a core Wasm module, found a component")]
    NotAModule,
    /// Name and content do not fit in one section (its size is a u32).
    #[error(
        "custom section `{name}` would be {size} bytes; a Wasm section holds at most {} bytes",
        u32::MAX
    )]
    TooLarge {
        /// The section name.
        name: String,
        /// The size the section's contents would have.
        size: u64,
    },
}

/// Returns `wasm` with exactly one custom section called `name`, holding `content`, placed at
/// the end of the module; every earlier section of that name is removed.
pub fn set_custom_section(
    wasm: &[u8],
    name: &str,
    content: &[u8],
) -> Result<Vec<u8>, SectionError> {
    let name_len = leb128(name.len() as u64);
    let size = (name_len.len() + name.len() + content.len()) as u64;
    if size > u64::from(u32::MAX) {
        return Err(SectionError::TooLarge {
            name: name.to_string(),
            size,
        });
    }
    let mut out = Vec::with_capacity(wasm.len() + size as usize + 6);
    for keep in kept_ranges(wasm, name)? {
        out.extend_from_slice(&wasm[keep]);
    }
    out.push(0); // custom section id
    out.extend(leb128(size));
    out.extend(name_len);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(content);
    Ok(out)
}

/// The contents of every custom section called `name`, in module order.
pub fn custom_sections<'a>(wasm: &'a [u8], name: &str) -> Result<Vec<&'a [u8]>, SectionError> {
    let mut found = Vec::new();
    for section in sections(wasm)? {
        if let Section::Custom {
            name: this, data, ..
        } = section
            && this == name
        {
            found.push(data);
        }
    }
    Ok(found)
}

/// The byte ranges of `wasm` to keep: the header and every section but the custom sections
/// called `name`.
fn kept_ranges(wasm: &[u8], name: &str) -> Result<Vec<Range<usize>>, SectionError> {
    let mut kept = Vec::new();
    for section in sections(wasm)? {
        match section {
            Section::Custom { name: this, .. } if this == name => {}
            Section::Custom { range, .. } | Section::Other { range } => kept.push(range),
        }
    }
    Ok(kept)
}

/// A top-level piece of a module; `range` covers it completely (for a section: id, size and
/// contents).
enum Section<'a> {
    Custom {
        name: &'a str,
        data: &'a [u8],
        range: Range<usize>,
    },
    Other {
        range: Range<usize>,
    },
}

/// Splits a module into its header and sections. A section's contents end where wasmparser
/// says; its id and size start where the previous piece ended.
fn sections(wasm: &[u8]) -> Result<Vec<Section<'_>>, SectionError> {
    let mut pieces = Vec::new();
    let mut end = 0;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| SectionError::Malformed {
            message: e.message().to_string(),
            offset: e.offset(),
        })?;
        if let Payload::Version {
            encoding, range, ..
        } = &payload
        {
            if *encoding != Encoding::Module {
                return Err(SectionError::NotAModule);
            }
            pieces.push(Section::Other {
                range: range.clone(),
            });
            end = range.end;
            continue;
        }
        let Some((_, contents)) = payload.as_section() else {
            continue; // function bodies (inside the code section) and the end marker
        };
        let range = end..contents.end;
        end = contents.end;
        pieces.push(match payload {
            Payload::CustomSection(reader) => Section::Custom {
                name: reader.name(),
                data: reader.data(),
                range,
            },
            _ => Section::Other { range },
        });
    }
    Ok(pieces)
}

/// Unsigned LEB128, as Wasm encodes sizes and lengths.
fn leb128(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal module: the header, a type section, then the given custom sections.
    fn module(customs: &[(&str, &[u8])]) -> Vec<u8> {
        let mut wasm = b"\0asm\x01\0\0\0".to_vec();
        wasm.extend([1, 4, 1, 0x60, 0, 0]); // type section: one `() -> ()`
        for (name, content) in customs {
            let mut body = leb128(name.len() as u64);
            body.extend_from_slice(name.as_bytes());
            body.extend_from_slice(content);
            wasm.push(0);
            wasm.extend(leb128(body.len() as u64));
            wasm.extend(body);
        }
        wasm
    }

    fn validates(wasm: &[u8]) {
        wasmparser::Validator::new()
            .validate_all(wasm)
            .expect("still a valid module");
    }

    #[test]
    fn leb128_encodes_multibyte_values() {
        assert_eq!(leb128(0), [0]);
        assert_eq!(leb128(127), [0x7f]);
        assert_eq!(leb128(128), [0x80, 0x01]);
        assert_eq!(leb128(624_485), [0xe5, 0x8e, 0x26]);
    }

    #[test]
    fn appends_the_section_at_the_end() {
        let input = module(&[("other", b"x")]);
        let out = set_custom_section(&input, "icp:public candid:service", b"service : {}").unwrap();
        validates(&out);
        assert_eq!(
            &out[..input.len()],
            &input[..],
            "the rest is copied verbatim"
        );
        assert_eq!(
            custom_sections(&out, "icp:public candid:service").unwrap(),
            [b"service : {}"]
        );
        assert_eq!(custom_sections(&out, "other").unwrap(), [b"x"]);
    }

    #[test]
    fn replaces_every_earlier_section_of_that_name() {
        let input = module(&[("a", b"old 1"), ("b", b"kept"), ("a", b"old 2")]);
        let out = set_custom_section(&input, "a", b"new").unwrap();
        validates(&out);
        assert_eq!(custom_sections(&out, "a").unwrap(), [b"new"]);
        assert_eq!(custom_sections(&out, "b").unwrap(), [b"kept"]);
        assert_eq!(out, module(&[("b", b"kept"), ("a", b"new")]));
    }

    #[test]
    fn setting_twice_is_setting_once() {
        let input = module(&[("b", b"kept")]);
        let once = set_custom_section(&input, "a", b"content").unwrap();
        let twice = set_custom_section(&once, "a", b"content").unwrap();
        assert_eq!(once, twice);
    }

    #[test]
    fn large_content_gets_a_multibyte_size() {
        let content = vec![b'x'; 300_000];
        let out = set_custom_section(&module(&[]), "big", &content).unwrap();
        validates(&out);
        assert_eq!(custom_sections(&out, "big").unwrap(), [content.as_slice()]);
    }

    #[test]
    fn refuses_what_is_not_a_module() {
        let truncated = &module(&[("a", b"content")])[..12];
        assert!(matches!(
            set_custom_section(truncated, "a", b""),
            Err(SectionError::Malformed { .. })
        ));
        assert!(matches!(
            set_custom_section(b"not wasm", "a", b""),
            Err(SectionError::Malformed { offset: 0, .. })
        ));
        let component = b"\0asm\x0d\0\x01\0";
        assert_eq!(
            set_custom_section(component, "a", b""),
            Err(SectionError::NotAModule)
        );
    }
}
