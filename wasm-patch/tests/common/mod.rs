//! Shared by the fixture tests: loading inputs, comparing (or blessing) expectations, and
//! describing a module's structure. See tests/fixtures/README.md.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The fixture folder `tests/fixtures/NAME`.
pub fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Whether expectations are being regenerated (`BLESS=1`).
pub fn blessing() -> bool {
    std::env::var_os("BLESS").is_some_and(|v| v == "1")
}

/// Fixture names in `dir`: the stems of `NAME.wat` and `NAME.hex` files, sorted. Also checks
/// that every `.expected` file belongs to an input (an orphan means a renamed or deleted case).
pub fn fixtures(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    let mut expected = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        if let Some(stem) = file
            .strip_suffix(".wat")
            .or_else(|| file.strip_suffix(".hex"))
        {
            names.push(stem.to_string());
        } else if let Some(stem) = file.strip_suffix(".expected") {
            expected.push(stem.to_string());
        }
    }
    names.sort();
    for stem in expected {
        assert!(
            names.contains(&stem),
            "{}/{stem}.expected has no {stem}.wat or {stem}.hex",
            dir.display()
        );
    }
    names
}

/// The input bytes of fixture NAME: `NAME.wat` compiled (gzip-compressed when its text has a
/// line `;; fixture: gzip`), or `NAME.hex` decoded (whitespace and `#` comments ignored).
pub fn load_input(dir: &Path, name: &str) -> Vec<u8> {
    let wat_path = dir.join(format!("{name}.wat"));
    if let Ok(text) = std::fs::read_to_string(&wat_path) {
        let wasm = wat::parse_str(&text).unwrap_or_else(|e| panic!("{}: {e}", wat_path.display()));
        if text.lines().any(|l| l.trim() == ";; fixture: gzip") {
            return gzip(&wasm);
        }
        return wasm;
    }
    let hex_path = dir.join(format!("{name}.hex"));
    let text = std::fs::read_to_string(&hex_path)
        .unwrap_or_else(|e| panic!("{}: {e}", hex_path.display()));
    let digits: String = text
        .lines()
        .map(|l| l.split('#').next().unwrap())
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    hex::decode(digits).unwrap_or_else(|e| panic!("{}: {e}", hex_path.display()))
}

/// gzip-compresses `bytes`.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Reads an optional JSON side file `NAME.SUFFIX`.
pub fn side_file<T: serde::de::DeserializeOwned>(
    dir: &Path,
    name: &str,
    suffix: &str,
) -> Option<T> {
    let path = dir.join(format!("{name}.{suffix}"));
    let text = std::fs::read_to_string(&path).ok()?;
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// Compares `actual` with `NAME.expected`, or writes it there when blessing. Returns a
/// description of the mismatch.
pub fn check_expected(dir: &Path, name: &str, actual: &str) -> Option<String> {
    let path = dir.join(format!("{name}.expected"));
    if blessing() {
        std::fs::write(&path, actual).unwrap();
        return None;
    }
    match std::fs::read_to_string(&path) {
        Ok(expected) if expected == actual => None,
        Ok(expected) => Some(format!(
            "{name}: output differs from {name}.expected\n--- expected\n{expected}\n--- actual\n{actual}"
        )),
        Err(_) => Some(format!(
            "{name}: no {name}.expected; run with BLESS=1 to create it. Output:\n{actual}"
        )),
    }
}

/// Fails the test with every collected mismatch.
pub fn report(failures: Vec<String>, count: usize) {
    assert!(count > 0, "no fixtures found");
    assert!(
        failures.is_empty(),
        "{} of {count} fixtures failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// The structure of a module, read with wasmparser: names and calls of every function.
pub struct Structure {
    /// Function index -> label: `ic0.NAME` for imports, else the `name` section's name, else
    /// `func[N]`.
    pub labels: Vec<String>,
    /// Number of imported functions (the first indices).
    pub imported: usize,
    /// Function index -> direct call targets in body order (empty for imports).
    pub calls: Vec<Vec<u32>>,
    /// Function export name -> function index.
    pub exports: BTreeMap<String, u32>,
    /// Custom section name -> content, in module order.
    pub customs: Vec<(String, Vec<u8>)>,
}

impl Structure {
    pub fn read(wasm: &[u8]) -> Structure {
        use wasmparser::{KnownCustom, Name, Operator, Parser, Payload, TypeRef};
        let mut labels = Vec::new();
        let mut calls = Vec::new();
        let mut exports = BTreeMap::new();
        let mut customs = Vec::new();
        let mut names = BTreeMap::new();
        let mut imported = 0;
        for payload in Parser::new(0).parse_all(wasm) {
            match payload.unwrap() {
                Payload::ImportSection(s) => {
                    for import in s.into_imports() {
                        let import = import.unwrap();
                        if let TypeRef::Func(_) = import.ty {
                            labels.push(format!("{}.{}", import.module, import.name));
                            calls.push(Vec::new());
                            imported += 1;
                        }
                    }
                }
                Payload::FunctionSection(s) => {
                    for _ in s {
                        labels.push(String::new());
                    }
                }
                Payload::ExportSection(s) => {
                    for export in s {
                        let export = export.unwrap();
                        if export.kind == wasmparser::ExternalKind::Func {
                            exports.insert(export.name.to_string(), export.index);
                        }
                    }
                }
                Payload::CodeSectionEntry(body) => {
                    let mut targets = Vec::new();
                    for op in body.get_operators_reader().unwrap() {
                        if let Operator::Call { function_index } = op.unwrap() {
                            targets.push(function_index);
                        }
                    }
                    calls.push(targets);
                }
                Payload::CustomSection(s) => {
                    if let KnownCustom::Name(reader) = s.as_known() {
                        for name in reader {
                            if let Name::Function(map) = name.unwrap() {
                                for naming in map {
                                    let naming = naming.unwrap();
                                    names.insert(naming.index, naming.name.to_string());
                                }
                            }
                        }
                    }
                    customs.push((s.name().to_string(), s.data().to_vec()));
                }
                _ => {}
            }
        }
        for (index, label) in labels.iter_mut().enumerate() {
            if label.is_empty() {
                *label = names
                    .get(&(index as u32))
                    .cloned()
                    .unwrap_or_else(|| format!("func[{index}]"));
            }
        }
        Structure {
            imported,
            labels,
            calls,
            exports,
            customs,
        }
    }

    /// The calls made by function `index`, in order, or `(no calls)`; calls into `agent_patch:` helpers are
    /// expanded as `helper{...}`.
    pub fn call_trace(&self, index: u32) -> String {
        if self.calls[index as usize].is_empty() {
            return "(no calls)".to_string();
        }
        let mut out = String::new();
        for (i, &target) in self.calls[index as usize].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let label = &self.labels[target as usize];
            out.push_str(label);
            if label.starts_with("agent_patch:") && target != index {
                write!(out, "{{{}}}", self.call_trace(target)).unwrap();
            }
        }
        out
    }
}
