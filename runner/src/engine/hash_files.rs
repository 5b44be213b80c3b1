//! `hashFiles()`: one sha256 over the files of a workspace that match glob
//! patterns, computed the way GitHub Actions computes it.
//!
//! GitHub's rules, mirrored here:
//! - each argument is one pattern (an argument with several lines is several
//!   patterns; blank lines and lines starting with `#` are skipped), relative
//!   to the workspace root;
//! - `*` matches within one path segment, `?` one character, `[abc]`, `[a-z]`
//!   and `[!a]` a character class, `**` any number of segments, `\` escapes
//!   the next character; names starting with `.` are matched like any other;
//! - a pattern starting with `!` excludes; patterns apply in order, the last
//!   one that matches a file deciding;
//! - a pattern that matches a folder also matches everything below it
//!   (`src` means every file under `src/`); a pattern ending in `/` matches
//!   only folders, so only what is below them;
//! - only regular files are hashed; the result is the lowercase hex sha256
//!   of the concatenated raw sha256 digests of the matched files, or `""`
//!   when nothing matches;
//! - files come in GitHub's order: for each distinct search root (the literal
//!   folder before a pattern's first wildcard, in pattern order), a
//!   depth-first walk with each folder's entries sorted by name, byte-wise.
//!
//! Unlike GitHub, nothing outside the root is ever read: symbolic links are
//! not followed into folders, a link to a file counts only when its target
//! lies inside the root, patterns that climb out with `..` or name an
//! absolute path elsewhere match nothing, and `--follow-symbolic-links` is
//! accepted and ignored. The walk visits at most [`MAX_HASH_ENTRIES`]
//! entries, so a pattern over a huge tree fails rather than stalls.

use crate::digest::hex;
use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

/// Most folder entries one `hash_files` call may visit.
pub const MAX_HASH_ENTRIES: usize = 100_000;

/// Hashes the files under `root` that `patterns` select (see the module
/// documentation for the rules). `Err` carries a message naming the problem:
/// an unreadable root or file, or a walk past [`MAX_HASH_ENTRIES`].
pub fn hash_files(root: &Path, patterns: &[String]) -> Result<String, String> {
    hash_files_capped(root, patterns, MAX_HASH_ENTRIES)
}

fn hash_files_capped(root: &Path, patterns: &[String], cap: usize) -> Result<String, String> {
    let root = fs::canonicalize(root).map_err(|e| {
        format!(
            "hashFiles: cannot open the workspace `{}`: {e}",
            root.display()
        )
    })?;
    let skip_flag = patterns
        .first()
        .is_some_and(|p| p == "--follow-symbolic-links");
    let mut globs = Vec::new();
    for line in patterns
        .iter()
        .skip(usize::from(skip_flag))
        .flat_map(|p| p.lines())
    {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(glob) = Glob::parse(line, &root) {
            // Implicit descendants: `x` also stands for `x/**`.
            let descendants = glob.dir_only || !matches!(glob.segs.last(), Some(Seg::Globstar));
            if descendants {
                let mut below = glob.clone();
                below.segs.push(Seg::Globstar);
                below.dir_only = false;
                below.implicit = true;
                globs.push(glob);
                globs.push(below);
            } else {
                globs.push(glob);
            }
        }
    }
    let mut walk = Walk {
        root: &root,
        globs: &globs,
        visited: 0,
        cap,
        outer: Sha256::new(),
        matched: 0,
    };
    for start in search_roots(&globs) {
        walk.run(start)?;
    }
    if walk.matched == 0 {
        return Ok(String::new());
    }
    Ok(hex(&walk.outer.finalize()))
}

/// One path segment of a pattern.
#[derive(Debug, Clone)]
enum Seg {
    /// `**`: any number of segments, none included.
    Globstar,
    /// A segment matched character by character.
    Chars(Vec<Pat>),
}

/// One element of a segment pattern.
#[derive(Debug, Clone, PartialEq)]
enum Pat {
    Lit(char),
    /// `?`
    One,
    /// `*`
    Star,
    /// `[...]`: ranges (inclusive), and whether the class is negated.
    Class(Vec<(char, char)>, bool),
}

#[derive(Debug, Clone)]
struct Glob {
    negate: bool,
    /// Matches folders only (the pattern ended with `/`).
    dir_only: bool,
    /// Added for a pattern's descendants: matches strictly below only.
    implicit: bool,
    segs: Vec<Seg>,
}

impl Glob {
    /// Parses one pattern line; `None` when it cannot match anything inside
    /// `root` (it climbs out with `..`, or is absolute and elsewhere).
    fn parse(line: &str, root: &Path) -> Option<Glob> {
        let bangs = line.bytes().take_while(|&b| b == b'!').count();
        let body = line.get(bangs..)?;
        let mut rel = body;
        if Path::new(body).is_absolute() {
            // Only an absolute pattern naming a place inside the root counts.
            let root_text = root.to_str()?;
            rel = body.strip_prefix(root_text)?;
            if !(rel.is_empty() || rel.starts_with('/')) {
                return None;
            }
        }
        let dir_only = rel.ends_with('/');
        let mut segs: Vec<Seg> = Vec::new();
        for part in rel.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    segs.pop()?;
                }
                "**" => segs.push(Seg::Globstar),
                other => segs.push(Seg::Chars(compile_segment(other))),
            }
        }
        Some(Glob {
            negate: bangs % 2 == 1,
            dir_only,
            implicit: false,
            segs,
        })
    }

    /// The literal leading segments, where a walk for this pattern starts.
    fn literal_prefix(&self) -> Vec<String> {
        let mut out = Vec::new();
        for seg in &self.segs {
            let Seg::Chars(pats) = seg else { break };
            let mut text = String::new();
            for p in pats {
                let Pat::Lit(c) = p else { return out };
                text.push(*c);
            }
            out.push(text);
        }
        out
    }

    /// Pattern positions reachable after matching `path`, as flags indexed
    /// 0..=len. A `**` may also be skipped, which `close` accounts for.
    fn states(&self, path: &[String]) -> Vec<bool> {
        let n = self.segs.len();
        let close = |states: &mut Vec<bool>| {
            for i in 0..n {
                if states[i] && matches!(self.segs[i], Seg::Globstar) {
                    states[i + 1] = true;
                }
            }
        };
        let mut states = vec![false; n + 1];
        states[0] = true;
        close(&mut states);
        for name in path {
            let chars: Vec<char> = name.chars().collect();
            let mut next = vec![false; n + 1];
            for i in (0..n).filter(|&i| states[i]) {
                match &self.segs[i] {
                    Seg::Globstar => next[i] = true,
                    Seg::Chars(pats) => {
                        if segment_matches(pats, &chars) {
                            next[i + 1] = true;
                        }
                    }
                }
            }
            states = next;
            close(&mut states);
            if !states.contains(&true) {
                break;
            }
        }
        states
    }

    fn matches(&self, path: &[String], is_dir: bool) -> bool {
        if self.implicit {
            // The trailing `**` must take at least the last segment, so `x`
            // itself is not its own descendant (GitHub's globber agrees).
            let Some((_, parent)) = path.split_last() else {
                return false;
            };
            let last = self.segs.len().saturating_sub(1);
            return self.states(parent).get(last) == Some(&true);
        }
        // An explicit trailing `**` also matches the folder (or file) it
        // follows, as GitHub's globber does: `a/**` matches `a`.
        (is_dir || !self.dir_only) && self.states(path).last() == Some(&true)
    }

    /// Whether something strictly below the folder `path` could match.
    fn could_match_below(&self, path: &[String]) -> bool {
        let states = self.states(path);
        states.iter().take(self.segs.len()).any(|&s| s)
    }
}

/// Compiles one segment: `*`, `?`, `[...]` classes and `\` escapes; a `[`
/// without its `]` is an ordinary character.
fn compile_segment(text: &str) -> Vec<Pat> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        i += 1;
        match c {
            '*' => {
                if out.last() != Some(&Pat::Star) {
                    out.push(Pat::Star);
                }
            }
            '?' => out.push(Pat::One),
            '\\' => {
                if let Some(&next) = chars.get(i) {
                    out.push(Pat::Lit(next));
                    i += 1;
                } else {
                    out.push(Pat::Lit('\\'));
                }
            }
            '[' => match compile_class(&chars, i) {
                Some((class, end)) => {
                    out.push(class);
                    i = end;
                }
                None => out.push(Pat::Lit('[')),
            },
            c => out.push(Pat::Lit(c)),
        }
    }
    out
}

/// A class whose `[` sits just before `start`; returns it and the index
/// after its `]`. A `]` right after `[` or `[!` is a member, not the end.
fn compile_class(chars: &[char], start: usize) -> Option<(Pat, usize)> {
    let mut i = start;
    let negated = matches!(chars.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let first = i;
    let mut ranges = Vec::new();
    loop {
        let c = *chars.get(i)?;
        if c == ']' && i > first {
            return Some((Pat::Class(ranges, negated), i + 1));
        }
        let c = if c == '\\' {
            i += 1;
            *chars.get(i)?
        } else {
            c
        };
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|&e| e != ']') {
            let end = *chars.get(i + 2)?;
            ranges.push((c, end));
            i += 3;
        } else {
            ranges.push((c, c));
            i += 1;
        }
    }
}

fn pat_matches(p: &Pat, c: char) -> bool {
    match p {
        Pat::Lit(l) => *l == c,
        Pat::One => true,
        Pat::Star => false,
        Pat::Class(ranges, negated) => ranges.iter().any(|&(a, b)| a <= c && c <= b) != *negated,
    }
}

/// Wildcard matching with single-star backtracking: linear memory and
/// O(pattern × name) time, whatever the input.
fn segment_matches(pats: &[Pat], name: &[char]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pats.get(p) {
            Some(Pat::Star) => {
                star = Some((p, n));
                p += 1;
            }
            Some(pat) if pat_matches(pat, name[n]) => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pats.get(p..)
        .is_some_and(|rest| rest.iter().all(|x| *x == Pat::Star))
}

/// Distinct walk starts in pattern order, dropping any that lies below
/// another (so no file is visited twice), as GitHub's globber does.
fn search_roots(globs: &[Glob]) -> Vec<Vec<String>> {
    let candidates: Vec<Vec<String>> = globs
        .iter()
        .filter(|g| !g.negate)
        .map(Glob::literal_prefix)
        .collect();
    let mut out: Vec<Vec<String>> = Vec::new();
    for c in &candidates {
        let below_other = candidates
            .iter()
            .any(|o| o.len() < c.len() && c.starts_with(o));
        if !below_other && !out.contains(c) {
            out.push(c.clone());
        }
    }
    out
}

struct Walk<'a> {
    root: &'a Path,
    globs: &'a [Glob],
    visited: usize,
    cap: usize,
    outer: Sha256,
    matched: usize,
}

impl Walk<'_> {
    /// Whether the last pattern that matches `path` includes it.
    fn selected(&self, path: &[String], is_dir: bool) -> bool {
        let mut selected = false;
        for g in self.globs {
            if g.negate == selected && g.matches(path, is_dir) {
                selected = !g.negate;
            }
        }
        selected
    }

    /// Depth-first from `start` (relative segments), entries sorted by name.
    fn run(&mut self, start: Vec<String>) -> Result<(), String> {
        let mut stack = vec![start];
        while let Some(rel) = stack.pop() {
            self.visited += 1;
            if self.visited > self.cap {
                return Err(format!(
                    "hashFiles: the patterns reach more than {} files and folders; narrow them",
                    self.cap
                ));
            }
            let path: PathBuf = rel.iter().fold(self.root.to_path_buf(), |p, s| p.join(s));
            let meta = match fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(format!("hashFiles: cannot read `{}`: {e}", path.display())),
            };
            let kind = meta.file_type();
            if kind.is_dir() {
                let wanted = self
                    .globs
                    .iter()
                    .any(|g| !g.negate && g.could_match_below(&rel));
                if !wanted {
                    continue;
                }
                let entries = fs::read_dir(&path)
                    .map_err(|e| format!("hashFiles: cannot list `{}`: {e}", path.display()))?;
                let mut names = Vec::new();
                for entry in entries {
                    let entry = entry
                        .map_err(|e| format!("hashFiles: cannot list `{}`: {e}", path.display()))?;
                    names.push(entry.file_name());
                    if names.len() > self.cap {
                        break;
                    }
                }
                names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
                for name in names.into_iter().rev() {
                    // Non-UTF-8 names cannot be spelled in a pattern; they
                    // are matched by their lossy form.
                    let mut child = rel.clone();
                    child.push(name.to_string_lossy().into_owned());
                    if child.last().is_some_and(|n| n != ".." && n != ".") {
                        stack.push(child);
                    }
                }
            } else if (kind.is_file() || kind.is_symlink()) && self.selected(&rel, false) {
                let target = if kind.is_symlink() {
                    match self.inside_target(&path) {
                        Some(target) => target,
                        None => continue,
                    }
                } else {
                    path
                };
                self.outer.update(hash_file(&target)?);
                self.matched += 1;
            }
        }
        Ok(())
    }

    /// The target of a link when it is a regular file inside the root.
    fn inside_target(&self, link: &Path) -> Option<PathBuf> {
        let target = fs::canonicalize(link).ok()?;
        let inside = target
            .strip_prefix(self.root)
            .is_ok_and(|rest| rest.components().all(|c| matches!(c, Component::Normal(_))));
        (inside && fs::metadata(&target).ok()?.is_file()).then_some(target)
    }
}

/// The raw sha256 digest of a file's bytes, read in chunks.
fn hash_file(path: &Path) -> Result<[u8; 32], String> {
    let fail = |e: std::io::Error| format!("hashFiles: cannot read `{}`: {e}", path.display());
    let mut file = fs::File::open(path).map_err(fail)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(fail)?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(&hasher.finalize());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A temporary workspace with the given files (`path` → contents).
    fn workspace(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for (path, text) in files {
            let full = dir.path().join(path);
            fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
            fs::write(full, text).expect("write");
        }
        dir
    }

    /// The expected result for files with these contents, in this order.
    fn expected(contents: &[&str]) -> String {
        let mut outer = Sha256::new();
        for text in contents {
            outer.update(Sha256::digest(text.as_bytes()));
        }
        hex(&outer.finalize())
    }

    fn run(dir: &tempfile::TempDir, patterns: &[&str]) -> String {
        let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
        hash_files(dir.path(), &patterns).expect("hashes")
    }

    const TREE: &[(&str, &str)] = &[
        ("package-lock.json", "root lock"),
        ("a/package-lock.json", "a lock"),
        ("a-b/package-lock.json", "a-b lock"),
        ("a/node_modules/x/package-lock.json", "vendored lock"),
        ("src/main.rs", "main"),
        ("src/lib.rs", "lib"),
        ("src/deep/mod.rs", "mod"),
        ("src/.hidden.rs", "hidden"),
        ("Gemfile.lock", "gems"),
        ("docs/readme.md", "readme"),
    ];

    #[test]
    fn matches_like_github() {
        let dir = workspace(TREE);
        // (patterns, contents of the files expected, in order)
        let cases: &[(&[&str], &[&str])] = &[
            (
                &["**/package-lock.json"],
                // Depth-first, names sorted byte-wise: `a/` before `a-b/`
                // because the walk compares `a` with `a-b`, not full paths.
                &["vendored lock", "a lock", "a-b lock", "root lock"],
            ),
            (
                &["**/package-lock.json", "!**/node_modules/**"],
                &["a lock", "a-b lock", "root lock"],
            ),
            (
                &["**/package-lock.json\n!**/node_modules/**\n# comment\n"],
                &["a lock", "a-b lock", "root lock"],
            ),
            (
                &["!**/node_modules/**", "**/package-lock.json"],
                &["vendored lock", "a lock", "a-b lock", "root lock"],
            ),
            (
                &["**/package-lock.json", "**/Gemfile.lock"],
                &["gems", "vendored lock", "a lock", "a-b lock", "root lock"],
            ),
            (&["src/*.rs"], &["hidden", "lib", "main"]),
            (&["src/main.rs/**"], &["main"]),
            (&["src/**/*.rs"], &["hidden", "mod", "lib", "main"]),
            (&["src/?ain.rs"], &["main"]),
            (&["src/[lm]*.rs"], &["lib", "main"]),
            (&["src/[!l]*.rs"], &["hidden", "main"]),
            (&["src"], &["hidden", "mod", "lib", "main"]),
            (&["src/"], &["hidden", "mod", "lib", "main"]),
            (&["src", "!src/deep"], &["hidden", "lib", "main"]),
            (&["./docs/../src/main.rs"], &["main"]),
            (&["docs/*", "src/main.rs"], &["readme", "main"]),
            (&["src/main.rs", "docs/*"], &["main", "readme"]),
            (&["--follow-symbolic-links", "docs/readme.md"], &["readme"]),
        ];
        for (patterns, contents) in cases {
            assert_eq!(run(&dir, patterns), expected(contents), "{patterns:?}");
        }
    }

    #[test]
    fn nothing_matched_is_empty() {
        let dir = workspace(TREE);
        for patterns in [
            &[][..],
            &["**/*.none"],
            &["src/main.rs/"],
            &["../**"],
            &["/etc/passwd"],
            &["**", "!**"],
            &["# only a comment"],
        ] {
            assert_eq!(run(&dir, patterns), "", "{patterns:?}");
        }
        let outside = tempfile::tempdir().expect("temp dir");
        let gone = outside.path().join("missing");
        assert!(hash_files(&gone, &["**".to_owned()]).is_err());
    }

    #[test]
    fn absolute_pattern_inside_the_root() {
        let dir = workspace(TREE);
        let root = fs::canonicalize(dir.path()).expect("canonical");
        let pattern = format!("{}/src/main.rs", root.display());
        assert_eq!(run(&dir, &[pattern.as_str()]), expected(&["main"]));
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_never_lead_outside() {
        use std::os::unix::fs::symlink;
        let outside = workspace(&[("secret.txt", "secret"), ("dir/inner.txt", "inner")]);
        let dir = workspace(&[("real.txt", "real")]);
        symlink(
            outside.path().join("secret.txt"),
            dir.path().join("leak.txt"),
        )
        .expect("link");
        symlink(outside.path().join("dir"), dir.path().join("leakdir")).expect("link");
        symlink(dir.path().join("real.txt"), dir.path().join("alias.txt")).expect("link");
        symlink(dir.path(), dir.path().join("loop")).expect("link");
        // Only `real.txt` and the in-root link to it are hashed.
        assert_eq!(run(&dir, &["**"]), expected(&["real", "real"]));
        assert_eq!(run(&dir, &["leak*", "leakdir/**"]), "");
    }

    #[test]
    fn walks_are_bounded() {
        let dir = tempfile::tempdir().expect("temp dir");
        for i in 0..10 {
            let sub = dir.path().join(format!("d{i}"));
            fs::create_dir(&sub).expect("mkdir");
            for j in 0..30 {
                fs::write(sub.join(format!("f{j}")), "").expect("write");
            }
        }
        let all = ["**".to_owned()];
        let err = hash_files_capped(dir.path(), &all, 200).expect_err("too many");
        assert!(err.contains("more than 200 files and folders"), "{err}");
        assert!(hash_files_capped(dir.path(), &all, 400).is_ok());
        // A literal prefix walks only its own folder (31 entries).
        assert!(hash_files_capped(dir.path(), &["d7/f1*".to_owned()], 40).is_ok());
        // A folder the patterns cannot reach into is not entered.
        assert!(hash_files_capped(dir.path(), &["d3/*".to_owned(), "x*".to_owned()], 45).is_ok());
    }

    #[test]
    fn segment_matching() {
        let m = |pat: &str, name: &str| {
            segment_matches(&compile_segment(pat), &name.chars().collect::<Vec<_>>())
        };
        assert!(m("*", ".hidden") && m("*.rs", "a.rs") && !m("*.rs", "a.rsx"));
        assert!(m("a*b*c", "aXXbYYc") && !m("a*b*c", "aXXbYY"));
        assert!(m("[a-c]x", "bx") && !m("[!a-c]x", "bx") && m("[]]", "]"));
        assert!(m("\\*", "*") && !m("\\*", "a") && m("[", "["));
        // Pathological patterns stay fast.
        let long = "a".repeat(2000);
        assert!(!m(
            &"*a".repeat(500).replace("**", "*"),
            &format!("{long}b")
        ));
    }
}
