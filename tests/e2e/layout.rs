//! The library's shape, held as the code's own imports show it (docs/layout.md): data flows one
//! way (no cycle between the top-level modules of crates/greenlight/src), the leaves import
//! nothing above them, the config schema does no AWS I/O, and no file holds more than 500 lines
//! of non-test code. A reshaping that breaks one of these fails here, naming it.

// Test helpers panic on purpose: a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use greenlight_e2e::lambda::workspace_root;

/// Modules that must import nothing of the flow above them.
const LEAVES: &[&str] = &[
    "aws",
    "transport",
    "template",
    "redact",
    "telemetry",
    "error",
    "stage",
    "budget",
];

/// The flow: what a leaf may not import.
const ABOVE: &[&str] = &[
    "config",
    "plan",
    "check",
    "pool",
    "executor",
    "suite",
    "hook",
    "report",
    "verdict",
    "outcome",
    "notify",
    "doctor",
    "discovery",
    "source",
];

/// The most non-test lines a file may hold.
const MAX_LINES: usize = 500;

struct Module {
    /// The top-level modules it imports (`crate::NAME`).
    imports: BTreeSet<String>,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code before the unit tests (`#[cfg(test)]` followed by `mod`), without comments.
fn code_of(text: &str) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    let end = lines
        .windows(2)
        .position(|pair| {
            pair[0].trim() == "#[cfg(test)]" && pair[1].trim_start().starts_with("mod ")
        })
        .unwrap_or(lines.len());
    lines[..end]
        .iter()
        .copied()
        .filter(|line| !line.trim().is_empty() && !line.trim_start().starts_with("//"))
        .collect()
}

/// `crate::NAME` paths, and the names inside `use crate::{a, b::c}`.
fn imports(code: &[&str]) -> BTreeSet<String> {
    let text = code.join("\n");
    let mut found = BTreeSet::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inside = &group[..group.find('}').unwrap_or(group.len())];
            for part in inside.split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

fn modules(src: &Path) -> (BTreeMap<String, Module>, Vec<(PathBuf, usize)>) {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut modules: BTreeMap<String, Module> = BTreeMap::new();
    let mut sizes = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let code = code_of(&text);
        let rel = file.strip_prefix(src).unwrap().to_path_buf();
        sizes.push((rel.clone(), code.len()));
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if top == "lib" {
            continue;
        }
        let entry = modules.entry(top.clone()).or_insert_with(|| Module {
            imports: BTreeSet::new(),
        });
        entry
            .imports
            .extend(imports(&code).into_iter().filter(|m| *m != top));
    }
    let known: BTreeSet<String> = modules.keys().cloned().collect();
    for module in modules.values_mut() {
        module.imports.retain(|m| known.contains(m));
    }
    (modules, sizes)
}

/// Every cycle's members, by Tarjan's strongly connected components.
fn cycles(modules: &BTreeMap<String, Module>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        modules: &'a BTreeMap<String, Module>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on.insert(v);
            for w in &self.modules[v].imports {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on.remove(w);
                    component.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        modules,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        found: Vec::new(),
    };
    for name in modules.keys() {
        if !walk.index.contains_key(name.as_str()) {
            walk.visit(name);
        }
    }
    walk.found
}

#[test]
fn the_library_flows_one_way_leaves_stay_leaves_and_files_stay_small() {
    let src = workspace_root().join("crates/greenlight/src");
    let (modules, sizes) = modules(&src);
    assert!(modules.len() > 10, "read the modules: {:?}", modules.keys());
    let mut problems = Vec::new();
    for cycle in cycles(&modules) {
        problems.push(format!("cycle between {}", cycle.join(", ")));
    }
    for leaf in LEAVES {
        if let Some(module) = modules.get(*leaf) {
            for above in module
                .imports
                .iter()
                .filter(|m| ABOVE.contains(&m.as_str()))
            {
                problems.push(format!("leaf {leaf} imports {above}"));
            }
        }
    }
    if let Some(config) = modules.get("config") {
        for io in config
            .imports
            .iter()
            .filter(|m| *m == "aws" || *m == "source")
        {
            problems.push(format!("config (the schema) imports {io}: no I/O there"));
        }
    }
    for (file, lines) in &sizes {
        if *lines > MAX_LINES {
            problems.push(format!(
                "{} has {lines} lines of non-test code (at most {MAX_LINES})",
                file.display()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_check_finds_what_it_looks_for() {
    // The rule itself: a cycle, a leaf crossing and imports in a `use crate::{..}` group.
    let code = [
        "use crate::{plan, check::Thing};",
        "let x = crate::report::y;",
    ];
    let found = imports(&code);
    assert_eq!(
        found,
        ["check", "plan", "report"]
            .map(str::to_owned)
            .into_iter()
            .collect()
    );
    let mut modules = BTreeMap::new();
    for (name, imports) in [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ] {
        modules.insert(
            name.to_owned(),
            Module {
                imports: imports.into_iter().map(str::to_owned).collect(),
            },
        );
    }
    assert_eq!(cycles(&modules), vec![vec!["a", "b", "c"]]);
    let text = "fn a() {}\n// a comment\n\n#[cfg(test)]\nmod tests {\n fn t() {}\n}\n";
    assert_eq!(code_of(text), vec!["fn a() {}"]);
}
