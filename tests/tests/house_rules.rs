//! The workspace's layout rules, checked on the source tree: no `.rs` or `.js` file over 800
//! lines, every Rust file opens with a `//!` comment saying what it is, and no import cycles
//! between the files of one crate. It only reads files; it never changes one.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

/// The most lines a `.rs` or `.js` file may have.
const MAX_LINES: usize = 800;

/// Folders, relative to the workspace, that are never walked: build output, git, vendored code.
const SKIPPED: &[&str] = &[
    "target",
    ".git",
    "web-demo/static/vendor",
    "turn-server/fuzz/target",
    "signaling/fuzz/target",
    "sfu/fuzz/target",
];

/// Folders whose `*.rs` files (and `*/main.rs`) are crate roots of their package's targets.
const TARGET_DIRS: &[&str] = &["tests", "benches", "examples", "fuzz_targets"];

// ---------------------------------------------------------------------------------------------
// The three rules, on the real workspace.
// ---------------------------------------------------------------------------------------------

#[test]
fn no_source_file_is_over_800_lines() {
    let root = workspace();
    let mut bad = Vec::new();
    for file in workspace_files(&root) {
        if has_ext(&file, "rs") || has_ext(&file, "js") {
            let lines = read(&root.join(&file)).lines().count();
            if lines > MAX_LINES {
                bad.push(format!("{}: {lines} lines", show(&file)));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{} file(s) over {MAX_LINES} lines; split each into files of one concept each:\n{}\n",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn every_rust_module_says_what_it_is() {
    let root = workspace();
    let mut bad = Vec::new();
    for file in workspace_files(&root) {
        if has_ext(&file, "rs") && !starts_with_module_doc(&read(&root.join(&file))) {
            bad.push(format!(
                "{}: does not start with a `//!` comment",
                show(&file)
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} Rust file(s) without an opening `//!` comment (1-4 lines: what the file is, and what \
         it never does):\n{}\n",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn no_import_cycles_between_files() {
    let root = workspace();
    let files = workspace_files(&root);
    let scans: BTreeMap<PathBuf, Scan> = files
        .iter()
        .filter(|f| has_ext(f, "rs"))
        .map(|f| (f.clone(), scan(&read(&root.join(f)))))
        .collect();
    let mut reports = BTreeSet::new();
    for manifest in files.iter().filter(|f| f.ends_with("Cargo.toml")) {
        if !read(&root.join(manifest)).contains("[package]") {
            continue; // the workspace manifest
        }
        let package = manifest.parent().unwrap_or(Path::new(""));
        for crate_root in crate_roots(&files, package) {
            let edges = edges(&scans, &crate_root);
            for cycle in cycles(&edges) {
                reports.insert(describe(&cycle, &edges));
            }
        }
    }
    assert!(
        reports.is_empty(),
        "{} import cycle(s) between files. A file may not refer, directly or through other files, \
         to a file that refers to it; move what both need into a leaf file. A path through a \
         parent's `pub use` (`crate::Error`) names the parent: import from the defining file:\n\n{}",
        reports.len(),
        reports.into_iter().collect::<Vec<_>>().join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Walking the workspace.
// ---------------------------------------------------------------------------------------------

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests package sits in the workspace")
        .to_path_buf()
}

/// Every file of the workspace as a path relative to `root`, sorted, leaving out the skipped
/// folders and minified scripts.
fn workspace_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(dir) = todo.pop() {
        let listing = fs::read_dir(root.join(&dir))
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", root.join(&dir).display()));
        for entry in listing {
            let entry = entry.expect("a directory entry");
            let path = dir.join(entry.file_name());
            let kind = entry.file_type().expect("a file type");
            if kind.is_dir() {
                if entry.file_name() != ".git" && !SKIPPED.iter().any(|s| path == Path::new(s)) {
                    todo.push(path);
                }
            } else if kind.is_file() && !path.to_string_lossy().ends_with(".min.js") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The crate roots of the package in `package`: its lib, its bins, and each test, bench,
/// example and fuzz target.
fn crate_roots(files: &[PathBuf], package: &Path) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    for file in files.iter().filter(|f| has_ext(f, "rs")) {
        let Ok(rest) = file.strip_prefix(package) else {
            continue;
        };
        let parts: Vec<&str> = rest.iter().filter_map(|p| p.to_str()).collect();
        let is_root = match parts.as_slice() {
            ["src", "lib.rs" | "main.rs"] => true,
            ["src", "bin", _] | ["src", "bin", _, "main.rs"] => true,
            [dir, _] | [dir, _, "main.rs"] => TARGET_DIRS.contains(dir),
            _ => false,
        };
        if is_root {
            roots.push(file.clone());
        }
    }
    roots
}

fn read(path: &Path) -> String {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    String::from_utf8_lossy(&bytes).into_owned()
}

fn has_ext(path: &Path, ext: &str) -> bool {
    path.extension().is_some_and(|e| e == ext)
}

fn show(path: &Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

/// Whether the first non-blank line is a `//!` comment.
fn starts_with_module_doc(src: &str) -> bool {
    src.lines()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| l.trim_start().starts_with("//!"))
}

// ---------------------------------------------------------------------------------------------
// Reading Rust: tokens, `mod` declarations, paths.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Punct(char),
}

/// Rust source as tokens with their line numbers. Comments (doc comments too), string, char and
/// number literals and lifetimes are dropped, so none of them can name a module.
fn tokenize(src: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = src.chars().collect();
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    let is_word = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(c[i] == '\n');
                    i += 1;
                }
            }
        } else if ch == '"' {
            i = skip_string(&c, i, &mut line);
        } else if ch == '\'' {
            i = skip_quote(&c, i);
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && is_word(c[i]) {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let raw_prefix = matches!(word.as_str(), "r" | "br" | "cr");
            if raw_prefix && (at(i) == '"' || (at(i) == '#' && matches!(at(i + 1), '"' | '#'))) {
                i = skip_raw_string(&c, i, &mut line);
            } else if matches!(word.as_str(), "b" | "c") && at(i) == '"' {
                i = skip_string(&c, i, &mut line);
            } else if word == "b" && at(i) == '\'' {
                i = skip_quote(&c, i);
            } else if word == "r" && at(i) == '#' && (at(i + 1).is_alphabetic() || at(i + 1) == '_')
            {
                let start = i + 1;
                i = start;
                while i < c.len() && is_word(c[i]) {
                    i += 1;
                }
                out.push((Tok::Ident(c[start..i].iter().collect()), line));
            } else {
                out.push((Tok::Ident(word), line));
            }
        } else if ch.is_ascii_digit() {
            while i < c.len() && is_word(c[i]) {
                i += 1;
            }
        } else if ch == ':' && at(i + 1) == ':' {
            out.push((Tok::PathSep, line));
            i += 2;
        } else {
            out.push((Tok::Punct(ch), line));
            i += 1;
        }
    }
    out
}

/// Skips a `"…"` string starting at `c[i]`; returns the index after it.
fn skip_string(c: &[char], mut i: usize, line: &mut usize) -> usize {
    i += 1;
    while i < c.len() {
        match c[i] {
            '\\' => {
                *line += usize::from(c.get(i + 1) == Some(&'\n'));
                i += 2;
            }
            '"' => return i + 1,
            ch => {
                *line += usize::from(ch == '\n');
                i += 1;
            }
        }
    }
    i
}

/// Skips a raw string whose `#`s or `"` start at `c[i]`; returns the index after it.
fn skip_raw_string(c: &[char], mut i: usize, line: &mut usize) -> usize {
    let hashes = c[i..].iter().take_while(|&&ch| ch == '#').count();
    i += hashes + 1;
    while i < c.len() {
        if c[i] == '"'
            && c[i + 1..]
                .iter()
                .take(hashes)
                .filter(|&&ch| ch == '#')
                .count()
                == hashes
        {
            return i + 1 + hashes;
        }
        *line += usize::from(c[i] == '\n');
        i += 1;
    }
    i
}

/// Skips a char literal (`'x'`, `'\n'`, `'\u{1F600}'`) or a lifetime or label (`'a`, `'outer`)
/// starting at the quote `c[i]`; returns the index after it.
fn skip_quote(c: &[char], mut i: usize) -> usize {
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    if at(i + 1) == '\\' {
        i += 3; // quote, backslash, the escaped char (which may itself be a quote)
        while i < c.len() && c[i] != '\'' && c[i] != '\n' {
            i += 1;
        }
        i + 1
    } else if at(i + 2) == '\'' {
        i + 3
    } else {
        i += 1;
        while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
            i += 1;
        }
        i
    }
}

/// What one file says about modules: which module files it declares, and every path it writes
/// that may name an item of its own crate. Inline modules (`mod x { … }`) around a declaration
/// or path are kept, so `super` and `self` resolve from where they are written.
#[derive(Debug, Default)]
struct Scan {
    /// `mod x;` declarations: (inline modules around it, `x`).
    mods: Vec<(Vec<String>, String)>,
    /// Paths, brace groups expanded: (inline modules around it, segments, line).
    paths: Vec<(Vec<String>, Vec<String>, usize)>,
}

fn scan(src: &str) -> Scan {
    let toks = tokenize(src);
    let tok = |k: usize| toks.get(k).map(|t| &t.0);
    let ident = |k: usize| match tok(k) {
        Some(Tok::Ident(s)) => Some(s.clone()),
        _ => None,
    };
    let mut out = Scan::default();
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut pending = None;
    let mut i = 0;
    while i < toks.len() {
        let names = || inline.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        let after_sep = i > 0 && tok(i - 1) == Some(&Tok::PathSep);
        // `pub(in crate::a)` restricts visibility; it refers to nothing.
        let in_visibility =
            i > 1 && ident(i - 1).as_deref() == Some("in") && tok(i - 2) == Some(&Tok::Punct('('));
        match &toks[i].0 {
            Tok::Punct('{') => {
                depth += 1;
                if let Some(name) = pending.take() {
                    inline.push((name, depth));
                }
                i += 1;
            }
            Tok::Punct('}') => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
                i += 1;
            }
            Tok::Ident(w) if w == "mod" && !after_sep => {
                if let Some(name) = ident(i + 1) {
                    match tok(i + 2) {
                        Some(Tok::Punct(';')) => out.mods.push((names(), name)),
                        Some(Tok::Punct('{')) => pending = Some(name),
                        _ => {}
                    }
                }
                i += 2;
            }
            Tok::Ident(_) if tok(i + 1) == Some(&Tok::PathSep) && !after_sep && !in_visibility => {
                let mut j = i;
                for (segs, line) in parse_tree(&toks, &mut j) {
                    out.paths.push((names(), segs, line));
                }
                i = j.max(i + 1);
            }
            _ => i += 1,
        }
    }
    out
}

/// Reads the path or `use` tree at `toks[*j]`, expanding brace groups: `a::{b as c, d::{e, self}}`
/// gives `a::b`, `a::d::e` and `a::d`, each with the line of its last segment. Leaves `*j` after
/// what it read.
fn parse_tree(toks: &[(Tok, usize)], j: &mut usize) -> Vec<(Vec<String>, usize)> {
    let mut segs: Vec<String> = Vec::new();
    let mut line = toks.get(*j).map_or(0, |t| t.1);
    loop {
        match toks.get(*j).map(|t| &t.0) {
            Some(Tok::Ident(s)) => {
                segs.push(s.clone());
                line = toks[*j].1;
                *j += 1;
                if toks.get(*j).map(|t| &t.0) != Some(&Tok::PathSep) {
                    return vec![(segs, line)];
                }
                *j += 1;
            }
            Some(Tok::Punct('{')) => {
                *j += 1;
                let mut out = Vec::new();
                while let Some((t, _)) = toks.get(*j) {
                    match t {
                        Tok::Punct('}') => {
                            *j += 1;
                            break;
                        }
                        Tok::Ident(_) | Tok::Punct('{') => {
                            for (sub, l) in parse_tree(toks, j) {
                                let rest = match sub.first() {
                                    Some(s) if s == "self" => &sub[1..],
                                    _ => &sub[..],
                                };
                                out.push(([segs.as_slice(), rest].concat(), l));
                            }
                            if toks.get(*j).map(|t| &t.0) == Some(&Tok::Ident("as".into())) {
                                *j += 2;
                            }
                        }
                        _ => *j += 1, // `,`, `*`
                    }
                }
                return out;
            }
            _ => return vec![(segs, line)], // `*`, `<` of a turbofish, end of input
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The import graph of one crate target, and its cycles.
// ---------------------------------------------------------------------------------------------

/// Edges between files: (from, to) → the first path in `from` that names an item of `to`, and
/// its line.
type Edges = BTreeMap<(PathBuf, PathBuf), (String, usize)>;

/// The module files of the crate rooted at `root`, found by following `mod x;` declarations:
/// module path → file.
fn module_files(files: &BTreeMap<PathBuf, Scan>, root: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut modules = BTreeMap::new();
    let root_dir = root.parent().unwrap_or(Path::new("")).to_path_buf();
    let mut todo = VecDeque::from([(root.to_path_buf(), Vec::new(), root_dir)]);
    while let Some((file, module, dir)) = todo.pop_front() {
        let Some(scan) = files.get(&file) else {
            continue;
        };
        if modules.contains_key(&module) {
            continue;
        }
        modules.insert(module.clone(), file);
        for (inline, name) in &scan.mods {
            let base = inline.iter().fold(dir.clone(), |d, m| d.join(m));
            let flat = base.join(format!("{name}.rs"));
            let child = if files.contains_key(&flat) {
                flat
            } else {
                base.join(name).join("mod.rs")
            };
            let path = [module.as_slice(), inline, std::slice::from_ref(name)].concat();
            todo.push_back((child, path, base.join(name)));
        }
    }
    modules
}

/// The module path a path names an item in, seen from module `here`; `None` when it does not
/// start inside this crate (`std::…`, another crate, a type's associated item).
fn absolute(
    here: &[String],
    segs: &[String],
    is_module: impl Fn(&[String]) -> bool,
) -> Option<Vec<String>> {
    match segs.first()?.as_str() {
        "crate" => Some(segs[1..].to_vec()),
        "self" => Some([here, &segs[1..]].concat()),
        "super" => {
            let mut base = here.to_vec();
            let mut rest = segs;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
            Some([base.as_slice(), rest].concat())
        }
        // A bare path through a child module: `use room::Room;` in the file declaring `mod room;`.
        child => {
            let module = [here, std::slice::from_ref(&child.to_string())].concat();
            is_module(&module).then(|| [here, segs].concat())
        }
    }
}

/// Every edge of the crate rooted at `root`. A path goes to the file of its longest module
/// prefix: `crate::a::X` and `crate::a` to a.rs, `crate::X` to the root. Edges to self and edges
/// from files named `tests.rs` (a parent's tests, `use super::*`) are left out.
fn edges(files: &BTreeMap<PathBuf, Scan>, root: &Path) -> Edges {
    let modules = module_files(files, root);
    let mut out = Edges::new();
    for (module, file) in &modules {
        if file.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        for (inline, segs, line) in &files[file].paths {
            let here = [module.as_slice(), inline].concat();
            let Some(abs) = absolute(&here, segs, |m| modules.contains_key(m)) else {
                continue;
            };
            let to = (0..=abs.len())
                .rev()
                .find_map(|n| modules.get(&abs[..n]))
                .expect("the crate root is a module");
            if to != file {
                let example = (segs.join("::"), *line);
                out.entry((file.clone(), to.clone())).or_insert(example);
            }
        }
    }
    out
}

/// The strongly connected components with more than one file: sets of files each of which
/// reaches every other through edges.
fn cycles(edges: &Edges) -> Vec<Vec<PathBuf>> {
    let mut next: BTreeMap<&PathBuf, Vec<&PathBuf>> = BTreeMap::new();
    for (from, to) in edges.keys() {
        next.entry(from).or_default().push(to);
        next.entry(to).or_default();
    }
    let reach: BTreeMap<&PathBuf, BTreeSet<&PathBuf>> = next
        .keys()
        .map(|&start| {
            let mut seen = BTreeSet::new();
            let mut todo = vec![start];
            while let Some(node) = todo.pop() {
                for &n in &next[node] {
                    if seen.insert(n) {
                        todo.push(n);
                    }
                }
            }
            (start, seen)
        })
        .collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for &node in next.keys() {
        if done.contains(node) {
            continue;
        }
        let component: Vec<PathBuf> = next
            .keys()
            .filter(|&&other| {
                other == node || (reach[node].contains(other) && reach[other].contains(node))
            })
            .map(|&p| p.clone())
            .collect();
        done.extend(component.iter().cloned());
        if component.len() > 1 {
            out.push(component);
        }
    }
    out
}

/// A cycle's files, then each edge between them with one reference that makes it.
fn describe(cycle: &[PathBuf], edges: &Edges) -> String {
    let names: Vec<String> = cycle.iter().map(|p| show(p)).collect();
    let mut text = format!("cycle among {} files: {}\n", cycle.len(), names.join(", "));
    for ((from, to), (path, line)) in edges {
        if cycle.contains(from) && cycle.contains(to) {
            text += &format!(
                "    {} -> {} via {path} (line {line})\n",
                show(from),
                show(to)
            );
        }
    }
    text
}

// ---------------------------------------------------------------------------------------------
// The checker's own logic, on small in-memory crates.
// ---------------------------------------------------------------------------------------------

fn fake(files: &[(&str, &str)]) -> BTreeMap<PathBuf, Scan> {
    files
        .iter()
        .map(|(p, s)| (PathBuf::from(p), scan(s)))
        .collect()
}

fn fake_edges(files: &[(&str, &str)]) -> Vec<String> {
    let edges = edges(&fake(files), Path::new("src/lib.rs"));
    let mut out: Vec<String> = edges
        .iter()
        .map(|((a, b), (via, _))| format!("{} -> {} via {via}", show(a), show(b)))
        .collect();
    out.sort();
    out
}

fn fake_cycles(files: &[(&str, &str)]) -> Vec<Vec<String>> {
    let edges = edges(&fake(files), Path::new("src/lib.rs"));
    let mut out: Vec<Vec<String>> = cycles(&edges)
        .iter()
        .map(|c| {
            let mut names: Vec<String> = c.iter().map(|p| show(p)).collect();
            names.sort();
            names
        })
        .collect();
    out.sort();
    out
}

#[test]
fn checker_expands_nested_brace_groups() {
    let found = scan("use crate::{a::X, b::{c::Y, Z}, d::{self, W as V}};\nuse crate::e::*;");
    let paths: Vec<String> = found
        .paths
        .iter()
        .map(|(_, segs, _)| segs.join("::"))
        .collect();
    let expected = [
        "crate::a::X",
        "crate::b::c::Y",
        "crate::b::Z",
        "crate::d",
        "crate::d::W",
        "crate::e",
    ];
    assert_eq!(paths, expected);
}

#[test]
fn checker_resolves_super_self_and_the_longest_module_prefix() {
    let files = [
        ("src/lib.rs", "mod a; mod c; pub struct Root;"),
        (
            "src/a.rs",
            "mod b; pub fn f() {} fn g() { super::Root; self::b::h(); }",
        ),
        (
            "src/a/b.rs",
            "use super::f; use super::super::Root; pub fn h() {}",
        ),
        (
            "src/c/mod.rs",
            "fn k() { crate::a::f(); crate::a; crate::Root; }",
        ),
    ];
    let expected = [
        "src/a.rs -> src/a/b.rs via self::b::h",
        "src/a.rs -> src/lib.rs via super::Root",
        "src/a/b.rs -> src/a.rs via super::f",
        "src/a/b.rs -> src/lib.rs via super::super::Root",
        "src/c/mod.rs -> src/a.rs via crate::a::f",
        "src/c/mod.rs -> src/lib.rs via crate::Root",
    ];
    assert_eq!(fake_edges(&files), expected);
    // a → b → a, and a → lib, b → lib: a and b form a cycle; lib reaches neither.
    assert_eq!(fake_cycles(&files), [["src/a.rs", "src/a/b.rs"]]);
}

#[test]
fn checker_finds_a_two_file_cycle_and_a_longer_one() {
    let two = [
        ("src/lib.rs", "mod a; mod b;"),
        ("src/a.rs", "use crate::b::B; pub fn f() {}"),
        ("src/b.rs", "pub struct B; fn g() { crate::a::f(); }"),
    ];
    assert_eq!(fake_cycles(&two), [["src/a.rs", "src/b.rs"]]);
    let three = [
        (
            "src/lib.rs",
            "pub mod a; pub mod b; pub mod c; pub struct Top;",
        ),
        ("src/a.rs", "use crate::{b::B};"),
        ("src/b.rs", "use crate::c::{C};"),
        (
            "src/c.rs",
            "pub(in crate::a) fn c() { let _ = crate::Top; }",
        ),
    ];
    assert!(fake_cycles(&three).is_empty(), "{:?}", fake_cycles(&three));
    let three = [
        three[0],
        three[1],
        three[2],
        ("src/c.rs", "use crate::a::{self as x};"),
    ];
    assert_eq!(fake_cycles(&three), [["src/a.rs", "src/b.rs", "src/c.rs"]]);
}

#[test]
fn checker_allows_a_parent_re_exporting_its_child() {
    let files = [
        (
            "src/lib.rs",
            "mod a;\npub use a::A;\npub use crate::a::B;\nfn f() { a::g(); }",
        ),
        (
            "src/a.rs",
            "pub struct A; pub struct B; pub fn g() {} mod tests { use super::*; }",
        ),
    ];
    assert_eq!(fake_edges(&files), ["src/lib.rs -> src/a.rs via a::A"]);
    assert!(fake_cycles(&files).is_empty());
    // The same child using the root's own item makes a cycle.
    let files = [
        files[0],
        ("src/a.rs", "pub struct A; pub struct B; use crate::f;"),
    ];
    assert_eq!(fake_cycles(&files), [["src/a.rs", "src/lib.rs"]]);
}

#[test]
fn checker_ignores_comments_strings_and_tests_files() {
    let files = [
        ("src/lib.rs", "mod a; mod b;"),
        ("src/a.rs", "use crate::b::B;\n#[cfg(test)]\nmod tests;"),
        ("src/a/tests.rs", "use super::*; use crate::b::B;"),
        (
            "src/b.rs",
            "//! Used by crate::a::A.\n/// See [`crate::a`].\n// crate::a::f();\n\
             /* crate::a /* nested */ crate::a */\n\
             fn f<'a>(x: &'a str) -> char { let _ = \"crate::a::\\\"f\"; let _ = r#\"crate::a\"#;\n\
             let _ = b\"crate::a\"; let q = '\"'; let _ = '\\''; q }\n#[doc = \"crate::a\"] pub struct B;",
        ),
    ];
    assert_eq!(fake_edges(&files), ["src/a.rs -> src/b.rs via crate::b::B"]);
    assert!(fake_cycles(&files).is_empty());
}

#[test]
fn checker_reads_doc_comments_and_sizes() {
    assert!(starts_with_module_doc("\n\n//! A thing.\nfn f() {}"));
    assert!(!starts_with_module_doc("/// A function.\nfn f() {}"));
    assert!(!starts_with_module_doc("use std::fs;\n//! Late."));
    let roots = crate_roots(
        &[
            "x/src/lib.rs",
            "x/src/main.rs",
            "x/src/a.rs",
            "x/src/bin/tool.rs",
            "x/tests/t.rs",
            "x/tests/common/mod.rs",
            "x/fuzz/fuzz_targets/f.rs",
        ]
        .map(PathBuf::from),
        Path::new("x"),
    );
    let roots: Vec<String> = roots.iter().map(|p| show(p)).collect();
    assert_eq!(
        roots,
        [
            "x/src/lib.rs",
            "x/src/main.rs",
            "x/src/bin/tool.rs",
            "x/tests/t.rs"
        ]
    );
}
