//! The floor plan of `common/`, checked: no source file over 300 lines; no
//! module imports one of a higher layer than its own, in the order `lib.rs`'s
//! doc lists them; and no two modules import each other, directly or through
//! others (a reader can take the modules in an order where each uses only
//! those before it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 300;

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("common/src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// `wire/event.rs` -> `wire::event`, `kafka/mod.rs` -> `kafka`.
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("under src").with_extension("");
    let parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let parts = match parts.last().map(String::as_str) {
        Some("mod") => &parts[..parts.len() - 1],
        _ => &parts[..],
    };
    parts.join("::")
}

/// The modules `code` names as `crate::a::b` (or `crate::a`), outside its tests.
fn imports(code: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let code = code.split("#[cfg(test)]").next().unwrap_or_default();
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let path: String = code[at + "crate::".len()..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
        // The longest prefix of the path that is a module.
        for len in (1..=segments.len()).rev() {
            let candidate = segments[..len].join("::");
            if modules.contains(&candidate) {
                found.insert(candidate);
                break;
            }
        }
    }
    found
}

#[test]
fn no_file_in_common_is_over_300_lines() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let long: Vec<String> = sources(&src)
        .iter()
        .filter_map(|file| {
            let lines = std::fs::read_to_string(file).expect("a source file").lines().count();
            (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", file.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these by concept: {long:?}");
}

#[test]
fn no_module_of_common_imports_one_that_imports_it_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files: BTreeMap<String, PathBuf> = sources(&src)
        .into_iter()
        .map(|file| (module_of(&src, &file), file))
        .filter(|(m, _)| m != "lib")
        .collect();
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    let graph: BTreeMap<&String, BTreeSet<String>> = files
        .iter()
        .map(|(module, file)| {
            let code = std::fs::read_to_string(file).expect("a source file");
            let mut used = imports(&code, &modules);
            used.remove(module);
            // A folder's own mod.rs only declares its children.
            used.retain(|u| !module.starts_with(&format!("{u}::")));
            (module, used)
        })
        .collect();
    // Depth-first search for a path back to where it started.
    fn circle<'a>(
        at: &'a String,
        graph: &'a BTreeMap<&String, BTreeSet<String>>,
        path: &mut Vec<&'a String>,
        done: &mut BTreeSet<&'a String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| *m == at) {
            return Some(path[start..].iter().map(|m| m.to_string()).chain([at.clone()]).collect());
        }
        if !done.insert(at) {
            return None;
        }
        path.push(at);
        for next in graph.get(at).into_iter().flatten() {
            if let Some(found) = circle(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        let mut path = Vec::new();
        if let Some(found) = circle(module, &graph, &mut path, &mut done) {
            panic!("an import circle: {}", found.join(" -> "));
        }
    }
}

/// The layers as `lib.rs`'s doc numbers them: `//! 1. [`base`]: ...`, bottom up.
fn layers(lib: &str) -> Vec<String> {
    lib.lines()
        .filter_map(|line| {
            let item = line.strip_prefix("//! ")?;
            let (number, rest) = item.split_once(". [`")?;
            number.parse::<usize>().ok()?;
            Some(rest.split_once('`')?.0.to_string())
        })
        .collect()
}

#[test]
fn no_module_of_common_imports_a_higher_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    let layers = layers(&lib);
    assert!(layers.len() >= 5, "lib.rs's doc lists the layers as `//! 1. [`name`]: ...`: found {layers:?}");
    let declared: BTreeSet<String> = lib
        .lines()
        .filter_map(|line| line.strip_prefix("pub mod ")?.strip_suffix(';').map(str::to_string))
        .collect();
    let listed: BTreeSet<String> = layers.iter().cloned().collect();
    assert_eq!(declared, listed, "every top-level module of lib.rs is a layer its doc lists, once");
    let rank = |module: &str| layers.iter().position(|layer| layer == module);
    let top_modules: BTreeSet<String> = layers.iter().cloned().collect();
    let mut upward = Vec::new();
    for file in sources(&src) {
        let module = module_of(&src, &file);
        let Some(own) = module.split("::").next().and_then(rank) else { continue };
        let code = std::fs::read_to_string(&file).expect("a source file");
        for used in imports(&code, &top_modules) {
            if rank(&used).is_some_and(|theirs| theirs > own) {
                upward.push(format!("{module} imports {used}"));
            }
        }
    }
    assert!(upward.is_empty(), "imports of a higher layer (move the shared part down): {upward:?}");
}
