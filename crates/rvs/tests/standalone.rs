//! The repository stands on its own: no file that is part of it reads from, runs from, or
//! points a reader to a folder beside the checkout (the notes and tools the project was
//! started with lived in a `shared/` folder next to it, which a user who clones the
//! repository does not have). Data the tests need lives under `tests/fixtures/` and each
//! crate's `tests/data/`; the VM harness under `tests/kernel-vm/`; the kernel reference under
//! `docs/`. `.ci/run` also runs the whole test command from a clone with nothing beside it.

use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every file below `dir`, except build output and git's own folder.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let name = e.file_name();
        if name == "target" || name == ".git" {
            continue;
        }
        match e.file_type() {
            Ok(t) if t.is_dir() => files(&p, out),
            Ok(t) if t.is_file() => out.push(p),
            _ => {}
        }
    }
}

#[test]
fn no_file_reaches_outside_the_repository() {
    let root = repo_root();
    let mut all = Vec::new();
    files(&root, &mut all);
    assert!(
        all.len() > 100 && all.iter().any(|p| p.ends_with("Cargo.toml")),
        "the walk found the repository at {}",
        root.display()
    );
    // Built at run time so that this file does not match itself.
    let needles = [
        format!("../{}/", "shared"),
        format!("{}/reference", "shared"),
        format!("{}/tools/kernel-ipvs", "shared"),
        format!("ipvs-{}.md", "spec"),
    ];
    let mut hits = Vec::new();
    for p in &all {
        let Ok(text) = std::fs::read_to_string(p) else {
            continue; // not text
        };
        for (i, line) in text.lines().enumerate() {
            if let Some(n) = needles.iter().find(|n| line.contains(n.as_str())) {
                let rel = p.strip_prefix(&root).unwrap_or(p);
                hits.push(format!("{}:{}: {n}: {}", rel.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "files that point outside the repository:\n{}",
        hits.join("\n")
    );
}
