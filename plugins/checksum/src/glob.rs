//! A small glob matcher for paths relative to a root folder.
//!
//! `*` matches any run of characters but `/`, `?` one character but `/`,
//! and a whole `**` segment any number of folders (none included). A
//! pattern without those characters names one file. Matches are files
//! only, sorted, each once.

use std::fs;
use std::io;
use std::path::Path;

/// Whether `pattern` uses wildcards.
pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

/// Whether one path segment matches one pattern segment (`*` and `?`).
pub fn segment_matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Classic two-pointer wildcard match with backtracking to the last `*`.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The files under `root` matching `pattern`, as `/`-separated paths
/// relative to `root`.
pub fn expand(root: &Path, pattern: &str) -> io::Result<Vec<String>> {
    let pattern = pattern.trim_start_matches("./");
    let segments: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    let mut found = Vec::new();
    walk(root, "", &segments, &mut found)?;
    found.sort();
    found.dedup();
    Ok(found)
}

fn walk(dir: &Path, prefix: &str, segments: &[&str], found: &mut Vec<String>) -> io::Result<()> {
    let Some((first, rest)) = segments.split_first() else {
        return Ok(());
    };
    let join = |name: &str| {
        if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}/{name}")
        }
    };
    if *first == "**" {
        // Zero folders…
        walk(dir, prefix, rest, found)?;
        // …or one more, keeping `**` in front.
        for (name, is_dir) in entries(dir)? {
            if is_dir {
                walk(&dir.join(&name), &join(&name), segments, found)?;
            }
        }
        return Ok(());
    }
    if !is_glob(first) {
        let path = dir.join(first);
        match fs::metadata(&path) {
            Ok(meta) if rest.is_empty() && meta.is_file() => found.push(join(first)),
            Ok(meta) if meta.is_dir() => walk(&path, &join(first), rest, found)?,
            _ => {}
        }
        return Ok(());
    }
    for (name, is_dir) in entries(dir)? {
        // Like shells, wildcards do not match hidden names unless asked to.
        if name.starts_with('.') && !first.starts_with('.') {
            continue;
        }
        if !segment_matches(first, &name) {
            continue;
        }
        if rest.is_empty() {
            if !is_dir {
                found.push(join(&name));
            }
        } else if is_dir {
            walk(&dir.join(&name), &join(&name), rest, found)?;
        }
    }
    Ok(())
}

/// The entries of `dir` as (name, is a folder); nothing if it is not one.
fn entries(dir: &Path) -> io::Result<Vec<(String, bool)>> {
    let read = match fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in read {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        // Follows links like `fs::metadata` does, so a linked file counts.
        let is_dir = fs::metadata(entry.path())
            .map(|m| m.is_dir())
            .unwrap_or(false);
        out.push((name, is_dir));
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_wildcards() {
        assert!(segment_matches("*.tar.gz", "site.tar.gz"));
        assert!(segment_matches("a?c", "abc"));
        assert!(segment_matches("*", ""));
        assert!(segment_matches("*a*b*", "xxaxxbxx"));
        assert!(!segment_matches("*.txt", "a.txt.bak"));
        assert!(!segment_matches("a?c", "ac"));
        assert!(segment_matches("ünï*", "ünïcode"));
    }

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for file in [
            "a.txt",
            "b.log",
            "dist/x.tar.gz",
            "dist/sub/y.tar.gz",
            "dist/.hidden.gz",
            "docs/a.txt",
        ] {
            let path = dir.path().join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, file).unwrap();
        }
        dir
    }

    #[test]
    fn expands_patterns() {
        let dir = tree();
        let root = dir.path();
        assert_eq!(expand(root, "*.txt").unwrap(), ["a.txt"]);
        assert_eq!(expand(root, "dist/*.gz").unwrap(), ["dist/x.tar.gz"]);
        assert_eq!(
            expand(root, "dist/**/*.tar.gz").unwrap(),
            ["dist/sub/y.tar.gz", "dist/x.tar.gz"]
        );
        assert_eq!(expand(root, "**/a.txt").unwrap(), ["a.txt", "docs/a.txt"]);
        assert_eq!(expand(root, "./dist/.h*").unwrap(), ["dist/.hidden.gz"]);
        assert_eq!(expand(root, "b.log").unwrap(), ["b.log"]);
        assert!(expand(root, "missing/*").unwrap().is_empty());
        assert!(
            expand(root, "dist").unwrap().is_empty(),
            "folders are not files"
        );
    }
}
