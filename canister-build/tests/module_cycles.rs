//! No crate of the workspace has a cycle between its top-level modules.
//!
//! A top-level module is `src/NAME.rs` or `src/NAME/` of a crate. Module `a` depends on module
//! `b` when code in `a` names `crate::b` (or reaches `b` through `super::`, or through a name the
//! crate root re-exports from `b`), in any path: a `use` tree, an expression, a macro's
//! arguments. The crate root (`lib.rs`, `main.rs`) is left out: it declares and calls every
//! module. Sources are read as tokens (proc-macro2's lexer), so comments and strings do not
//! count.
//!
//! A cycle is reported with its path and, for each step, the first place that makes it.

use canister_build::workspace_root;
use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// One source file of a crate: its path (for messages) and its module path inside the crate.
struct Source {
    shown: String,
    module: Vec<String>,
    text: String,
}

/// Where module `from` names module `to` first.
type Edges = BTreeMap<(String, String), String>;

/// The crates of the workspace: every directory (outside `target/`) with a `Cargo.toml` and a
/// `src/lib.rs` or `src/main.rs`, and that root file.
fn workspace_crates(root: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut crates = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        if dir.join("Cargo.toml").is_file() {
            for root_file in ["src/lib.rs", "src/main.rs"] {
                if dir.join(root_file).is_file() {
                    crates.push((dir.clone(), dir.join(root_file)));
                }
            }
        }
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if path.is_dir() && !name.starts_with('.') && name != "target" && name != "node_modules"
            {
                dirs.push(path);
            }
        }
    }
    crates.sort();
    crates
}

/// The crate's source files below `src/`, with their module paths. `src/bin/` holds crates of
/// their own (binaries without modules here) and is left out.
fn crate_sources(root: &Path, crate_dir: &Path, root_file: &Path) -> Vec<Source> {
    let src = crate_dir.join("src");
    let mut files = vec![root_file.to_path_buf()];
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() && path != src.join("bin") {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && path != src.join("lib.rs")
                && path != src.join("main.rs")
            {
                files.push(path);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(&src).expect("below src");
            let mut module: Vec<String> = relative
                .with_extension("")
                .iter()
                .map(|c| c.to_string_lossy().into_owned())
                .collect();
            if module.last().is_some_and(|last| last == "mod") || path == root_file {
                module.pop();
            }
            if path == root_file {
                module.clear();
            }
            Source {
                shown: path
                    .strip_prefix(root)
                    .unwrap_or(&path)
                    .display()
                    .to_string(),
                module,
                text: std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display())),
            }
        })
        .collect()
}

fn is_ident(tree: Option<&TokenTree>, name: &str) -> bool {
    matches!(tree, Some(TokenTree::Ident(i)) if i == name)
}

fn ident(tree: Option<&TokenTree>) -> Option<String> {
    match tree {
        Some(TokenTree::Ident(i)) => Some(i.to_string()),
        _ => None,
    }
}

fn is_punct(tree: Option<&TokenTree>, ch: char) -> bool {
    matches!(tree, Some(TokenTree::Punct(p)) if p.as_char() == ch)
}

/// Whether `trees[i..]` starts with `::`.
fn is_path_sep(trees: &[TokenTree], i: usize) -> bool {
    matches!(trees.get(i), Some(TokenTree::Punct(p)) if p.as_char() == ':' && p.spacing() == Spacing::Joint)
        && is_punct(trees.get(i + 1), ':')
}

/// The absolute first segments a path starting at `trees[start]` (`crate`, `self` or `super`)
/// reaches, written from inside `module`. A `use` group (`crate::{a, b::c}`) reaches several.
fn path_targets(trees: &[TokenTree], start: usize, module: &[String]) -> Vec<String> {
    let mut base: Vec<String> = match ident(trees.get(start)).as_deref() {
        Some("crate") => vec![],
        _ => module.to_vec(),
    };
    let mut i = start;
    loop {
        match ident(trees.get(i)).as_deref() {
            Some("crate") if i == start => {}
            Some("self") => {}
            Some("super") => {
                base.pop();
            }
            Some(name) => {
                base.push(name.to_string());
                break;
            }
            None => {
                if let Some(TokenTree::Group(g)) = trees.get(i)
                    && g.delimiter() == Delimiter::Brace
                {
                    return group_targets(g.stream(), &base);
                }
                break;
            }
        }
        if !is_path_sep(trees, i + 1) {
            break;
        }
        i += 3;
    }
    base.into_iter().take(1).collect()
}

/// The first segments a `use` group's items reach, below `base`.
fn group_targets(stream: TokenStream, base: &[String]) -> Vec<String> {
    let trees: Vec<TokenTree> = stream.into_iter().collect();
    let mut targets = Vec::new();
    for item in trees.split(|t| is_punct(Some(t), ',')) {
        let mut absolute = base.to_vec();
        match item.first() {
            Some(TokenTree::Ident(i)) if i == "self" => {}
            Some(TokenTree::Ident(i)) if i == "super" => {
                absolute = path_targets(item, 0, base);
            }
            Some(TokenTree::Ident(i)) => absolute.push(i.to_string()),
            Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Brace => {
                targets.extend(group_targets(g.stream(), base));
                continue;
            }
            _ => {}
        }
        targets.extend(absolute.into_iter().take(1));
    }
    targets
}

/// Calls `found(module, first segment, line)` for every `crate::`/`self::`/`super::` path in
/// `stream`, which is code of `module`; `mod NAME { .. }` blocks are code of `module::NAME`.
fn visit_paths(
    stream: TokenStream,
    module: &[String],
    found: &mut dyn FnMut(&[String], String, usize),
) {
    let trees: Vec<TokenTree> = stream.into_iter().collect();
    for (i, tree) in trees.iter().enumerate() {
        match tree {
            TokenTree::Group(g) => {
                let inline_mod = (i >= 2 && is_ident(trees.get(i - 2), "mod"))
                    .then(|| ident(trees.get(i - 1)))
                    .flatten()
                    .filter(|_| g.delimiter() == Delimiter::Brace);
                match inline_mod {
                    Some(name) => {
                        let mut inner = module.to_vec();
                        inner.push(name);
                        visit_paths(g.stream(), &inner, found);
                    }
                    None => visit_paths(g.stream(), module, found),
                }
            }
            TokenTree::Ident(id)
                if (id == "crate" || id == "self" || id == "super")
                    && is_path_sep(&trees, i + 1)
                    && !(i >= 2 && is_path_sep(&trees, i - 2))
                    && !(i >= 1 && is_punct(trees.get(i - 1), '$')) =>
            {
                let line = id.span().start().line;
                for target in path_targets(&trees, i, module) {
                    found(module, target, line);
                }
            }
            _ => {}
        }
    }
}

/// The names the crate root re-exports from a top-level module (`pub use m::Name;`,
/// `pub use m::{A, B};`), mapped to that module.
fn reexports(root: &Source, modules: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    let trees: Vec<TokenTree> = TokenStream::from_str(&root.text)
        .unwrap_or_else(|e| panic!("{} does not lex: {e}", root.shown))
        .into_iter()
        .collect();
    for (i, tree) in trees.iter().enumerate() {
        if !is_ident(Some(tree), "use") {
            continue;
        }
        let mut j = i + 1;
        while is_ident(trees.get(j), "crate") || is_ident(trees.get(j), "self") {
            j += 3;
        }
        let Some(module) = ident(trees.get(j)).filter(|m| modules.contains(m)) else {
            continue;
        };
        // The last name of the path, or every name of a final group.
        let mut k = j;
        while is_path_sep(&trees, k + 1) {
            k += 3;
        }
        match trees.get(k) {
            Some(TokenTree::Ident(name)) if k > j => {
                let name = if is_ident(trees.get(k + 1), "as") {
                    ident(trees.get(k + 2)).unwrap_or_default()
                } else {
                    name.to_string()
                };
                names.insert(name, module.clone());
            }
            Some(TokenTree::Group(g)) => {
                let items: Vec<TokenTree> = g.stream().into_iter().collect();
                for item in items.split(|t| is_punct(Some(t), ',')) {
                    if let Some(name) = ident(item.last()).filter(|n| n != "self") {
                        names.insert(name, module.clone());
                    }
                }
            }
            _ => {}
        }
    }
    names
}

/// The dependencies between the top-level modules of one crate's sources.
fn module_edges(sources: &[Source]) -> Edges {
    let modules: BTreeSet<String> = sources
        .iter()
        .filter_map(|s| s.module.first().cloned())
        .collect();
    let reexported = sources
        .iter()
        .find(|s| s.module.is_empty())
        .map(|root| reexports(root, &modules))
        .unwrap_or_default();
    let mut edges = Edges::new();
    for source in sources {
        let tokens = TokenStream::from_str(&source.text)
            .unwrap_or_else(|e| panic!("{} does not lex: {e}", source.shown));
        visit_paths(tokens, &source.module, &mut |module, target, line| {
            let Some(from) = module.first() else { return };
            let to = if modules.contains(&target) {
                target
            } else if let Some(m) = reexported.get(&target) {
                m.clone()
            } else {
                return;
            };
            if *from != to {
                edges
                    .entry((from.clone(), to))
                    .or_insert_with(|| format!("{}:{line}", source.shown));
            }
        });
    }
    edges
}

/// A shortest cycle through `start`, if there is one: the modules in order, `start` first.
fn cycle_through(edges: &Edges, start: &str) -> Option<Vec<String>> {
    let mut came_from: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = VecDeque::from([start.to_string()]);
    while let Some(node) = queue.pop_front() {
        for (_, to) in edges.keys().filter(|(from, _)| *from == node) {
            if to == start {
                let mut path = vec![node.clone()];
                while let Some(prev) = came_from.get(path.last().expect("not empty")) {
                    path.push(prev.clone());
                }
                path.reverse();
                return Some(path);
            }
            if !came_from.contains_key(to) && to != start {
                came_from.insert(to.clone(), node.clone());
                queue.push_back(to.clone());
            }
        }
    }
    None
}

/// One line per cycle (each set of modules reported once), with where each step is made.
fn cycles(crate_name: &str, edges: &Edges) -> Vec<String> {
    let nodes: BTreeSet<&String> = edges.keys().map(|(from, _)| from).collect();
    let mut seen: BTreeSet<BTreeSet<String>> = BTreeSet::new();
    let mut reports = Vec::new();
    for node in nodes {
        let Some(cycle) = cycle_through(edges, node) else {
            continue;
        };
        if !seen.insert(cycle.iter().cloned().collect()) {
            continue;
        }
        let steps: Vec<String> = cycle
            .iter()
            .zip(cycle.iter().cycle().skip(1))
            .map(|(from, to)| format!("{from} -> {to} ({})", edges[&(from.clone(), to.clone())]))
            .collect();
        reports.push(format!("{crate_name}: {}", steps.join(", ")));
    }
    reports
}

#[test]
fn no_crate_has_a_cycle_between_its_modules() {
    let root = workspace_root();
    let crates = workspace_crates(&root);
    assert!(
        crates.len() >= 10,
        "found only {} crates under {}",
        crates.len(),
        root.display()
    );
    let mut found = Vec::new();
    let mut edge_count = 0;
    for (dir, root_file) in &crates {
        let name = dir.strip_prefix(&root).unwrap_or(dir).display().to_string();
        let edges = module_edges(&crate_sources(&root, dir, root_file));
        edge_count += edges.len();
        found.extend(cycles(&name, &edges));
    }
    // The scan must see the dependencies that exist, or it would pass by seeing none.
    assert!(
        edge_count > 100,
        "only {edge_count} module dependencies found"
    );
    assert!(
        found.is_empty(),
        "module cycles (module -> module it names (first place)):\n{}",
        found.join("\n")
    );
}

fn source(module: &str, text: &str) -> Source {
    Source {
        shown: format!("src/{}.rs", if module.is_empty() { "lib" } else { module }),
        module: module
            .split('/')
            .filter(|m| !m.is_empty())
            .map(String::from)
            .collect(),
        text: text.into(),
    }
}

/// The dependencies as (from, to) pairs, in order.
fn pairs(edges: &Edges) -> Vec<(&str, &str)> {
    edges
        .keys()
        .map(|(f, t)| (f.as_str(), t.as_str()))
        .collect()
}

#[test]
fn a_cycle_through_use_groups_super_and_reexports_is_found_with_its_path() {
    let sources = [
        source("", "mod a; mod b; mod c; pub use c::Thing;"),
        source("a", "use crate::{x, b::f};\nfn g() {}"),
        source(
            "b",
            "fn f() {\n  let _: crate::Thing = crate::Thing::new();\n}",
        ),
        source("c/inner", "fn h() { super::super::a::g() }"),
    ];
    let edges = module_edges(&sources);
    let pairs = pairs(&edges);
    assert_eq!(pairs, [("a", "b"), ("b", "c"), ("c", "a")]);
    assert_eq!(edges[&("b".into(), "c".into())], "src/b.rs:2");
    assert_eq!(
        cycles("demo", &edges),
        ["demo: a -> b (src/a.rs:1), b -> c (src/b.rs:2), c -> a (src/c/inner.rs:1)"]
    );
}

#[test]
fn comments_strings_tests_modules_and_macro_crate_paths_are_not_dependencies() {
    let sources = [
        source("", "mod a; mod b;"),
        source(
            "a",
            "// crate::b::f\nconst S: &str = \"crate::b::f\";\n\
             macro_rules! m { () => { $crate::b::f() } }\n\
             #[cfg(test)] mod tests { use super::*; use self::helpers::x; }",
        ),
        source("b", "use crate::a::thing; fn f() {}"),
    ];
    let edges = module_edges(&sources);
    let pairs = pairs(&edges);
    assert_eq!(pairs, [("b", "a")]);
    assert!(cycles("demo", &edges).is_empty());
}
