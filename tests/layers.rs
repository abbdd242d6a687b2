//! The layers of `src/` point down only: data → wire → store → copy →
//! sync → app. This reads every source file and fails on an import that
//! points up or sideways against the rules (copy never sees the wire, the
//! wire never sees a manifest or a store, the plan never sees a store).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each top-level module and the modules it may use (besides itself).
fn allowed() -> BTreeMap<&'static str, Vec<&'static str>> {
    const DATA: [&str; 11] = [
        "backoff",
        "digest",
        "media",
        "platform",
        "reference",
        "manifest",
        "plan",
        "report",
        "progress",
        "size",
        "verify",
    ];
    let mut rules: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        DATA.iter().copied().chain(extra.iter().copied()).collect()
    };
    // Pure data may lean on other pure data, nothing else.
    for m in DATA {
        rules.insert(m, with(&[]));
    }
    // Credentials: the one home of secrets, below the wire that sends them.
    let wire_data = ["backoff", "digest", "reference"];
    rules.insert("credentials", wire_data.to_vec());
    // The wire: HTTP and auth; never a manifest or a store.
    rules.insert("transport", [&wire_data[..], &["credentials"]].concat());
    rules.insert("store", with(&["transport", "credentials"]));
    // The engine talks to stores only: no URL, status or credential.
    rules.insert("copy", with(&["store"]));
    rules.insert("sync", with(&["store", "copy", "credentials"]));
    rules.insert("cli", with(&["store", "copy", "sync"]));
    rules.insert(
        "app",
        with(&["store", "copy", "sync", "cli", "credentials"]),
    );
    rules
}

/// `plan` is data about copies and must not know where images live.
const FORBIDDEN_DATA_EDGES: [(&str, &str); 1] = [("plan", "store")];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file belongs to (`src/copy/blobs.rs` → `copy`).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    Some(first.trim_end_matches(".rs").to_string())
}

/// Every top-level module a piece of Rust names through `crate::`,
/// including grouped imports (`use crate::{a::x, b}`).
fn used_modules(text: &str) -> Vec<String> {
    let mut used = Vec::new();
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = group.split('}').next().unwrap_or("");
            for part in inner.split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    used.push(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            used.push(name);
        }
    }
    used
}

#[test]
fn the_scanner_sees_plain_and_grouped_imports() {
    let text = "use crate::transport::X;\nuse crate::{store::Y, digest};\n// crate::app is a comment\nlet a = crate::copy::f();";
    assert_eq!(used_modules(text), ["transport", "store", "digest", "copy"]);
}

#[test]
fn layers_point_down_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let rules = allowed();
    let mut violations = Vec::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else {
            continue;
        };
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(ok) = rules.get(module.as_str()) else {
            violations.push(format!(
                "{}: module {module} has no layer rule",
                file.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).expect("read");
        for used in used_modules(&text) {
            let forbidden = FORBIDDEN_DATA_EDGES.contains(&(module.as_str(), used.as_str()));
            if used != module && (forbidden || !ok.contains(&used.as_str())) {
                violations.push(format!("{}: {module} uses {used}", file.display()));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports against the layers:\n{}",
        violations.join("\n")
    );
}

/// The copy engine's files, by module name (`blobs`, `image`, …; `mod` is
/// `copy/mod.rs`).
fn copy_files() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/copy");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).expect("read src/copy") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "rs") {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            out.push((name, std::fs::read_to_string(&p).expect("read")));
        }
    }
    out.sort();
    out
}

/// The sibling modules a file of `src/copy/` imports through `super::`
/// (an item of `mod.rs` itself counts as `mod`).
fn sibling_imports(text: &str, modules: &[String]) -> Vec<String> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let name_of = |s: &str| -> String {
        let n: String = s
            .trim()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if modules.contains(&n) {
            n
        } else {
            "mod".to_string()
        }
    };
    let mut used = Vec::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("super::") {
        rest = &rest[i + "super::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = group.split('}').next().unwrap_or("");
            used.extend(
                inner
                    .split(',')
                    .filter(|p| !p.trim().is_empty())
                    .map(name_of),
            );
        } else {
            used.push(name_of(rest));
        }
    }
    used.sort();
    used.dedup();
    used
}

/// A cycle in `edges`, as the path that closes it.
fn find_cycle(edges: &BTreeMap<String, Vec<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        edges: &BTreeMap<String, Vec<String>>,
        path: &mut Vec<String>,
        done: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut cycle = path[i..].to_vec();
            cycle.push(n.to_string());
            return Some(cycle);
        }
        if done.iter().any(|d| d == n) {
            return None;
        }
        path.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.push(n.to_string());
        None
    }
    let mut done = Vec::new();
    edges
        .keys()
        .find_map(|n| visit(n, edges, &mut Vec::new(), &mut done))
}

#[test]
fn the_copy_engine_has_no_import_circle() {
    let files = copy_files();
    let modules: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    let edges: BTreeMap<String, Vec<String>> = files
        .iter()
        .map(|(n, text)| {
            let deps = sibling_imports(text, &modules)
                .into_iter()
                .filter(|d| d != n)
                .collect();
            (n.clone(), deps)
        })
        .collect();
    assert_eq!(find_cycle(&edges), None, "an import circle in src/copy/");
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let modules = ["a", "b", "c"].map(String::from).to_vec();
    assert_eq!(
        sibling_imports("use super::{a, b::X};\nuse super::Thing;", &modules),
        ["a", "b", "mod"]
    );
    let mut edges: BTreeMap<String, Vec<String>> = BTreeMap::new();
    edges.insert("a".into(), vec!["b".into()]);
    edges.insert("b".into(), vec!["c".into()]);
    edges.insert("c".into(), vec![]);
    assert_eq!(find_cycle(&edges), None);
    edges.insert("c".into(), vec!["a".into()]);
    assert_eq!(
        find_cycle(&edges),
        Some(["a", "b", "c", "a"].map(String::from).to_vec())
    );
}

#[test]
fn the_copy_engine_has_one_door() {
    let mut problems = Vec::new();
    for (name, text) in copy_files() {
        if name == "mod" {
            for line in text.lines() {
                if line.trim_start().starts_with("pub mod ") {
                    problems.push(format!("src/copy/mod.rs: {line}: submodules are private"));
                }
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let modules: Vec<String> = copy_files().into_iter().map(|(n, _)| n).collect();
    for file in files
        .iter()
        .filter(|f| module_of(&src, f).as_deref() != Some("copy"))
    {
        let text = std::fs::read_to_string(file).expect("read");
        for m in &modules {
            if text.contains(&format!("copy::{m}::")) {
                problems.push(format!(
                    "{}: reaches into copy::{m}; use what copy re-exports",
                    file.display()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
