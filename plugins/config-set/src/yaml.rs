//! Editing one scalar of a YAML file in place, keeping every other byte:
//! comments, blank lines, quoting, key order and indentation.
//!
//! The editor understands block mappings and block sequences (including
//! `- key: value` items and sequences not indented under their key). It
//! refuses what it cannot edit safely rather than guess: flow collections
//! (`{…}`, `[…]`) on the path, block scalars (`|`, `>`), anchors, aliases,
//! tags and plain scalars continued on the next line. The caller checks the
//! result by parsing both texts (see `verify` in `main.rs`).

/// One line: where its text starts, and the text without the line break.
struct Line<'a> {
    start: usize,
    indent: usize,
    text: &'a str,
}

impl Line<'_> {
    /// A line that holds YAML content (not blank, not only a comment).
    fn is_content(&self) -> bool {
        let rest = self.text[self.indent..].trim_end();
        !rest.is_empty() && !rest.starts_with('#')
    }
}

fn lines(text: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    for raw in text.split_inclusive('\n') {
        let body = raw.strip_suffix('\n').unwrap_or(raw);
        let body = body.strip_suffix('\r').unwrap_or(body);
        let indent = body.len() - body.trim_start_matches(' ').len();
        out.push(Line {
            start,
            indent,
            text: body,
        });
        start += raw.len();
    }
    out
}

/// A block of entries: the first at (`line`, `col`), the others on the
/// following lines indented exactly `col`, up to line `end` (excluded).
#[derive(Debug, Clone, Copy)]
struct Block {
    line: usize,
    col: usize,
    end: usize,
}

/// The result of an edit.
#[derive(Debug, PartialEq, Eq)]
pub struct Edit {
    /// The new text of the file.
    pub text: String,
    /// The replaced scalar as written in the file; `None` if the key was created.
    pub previous: Option<String>,
}

/// Replaces the scalar at `path` with `new` (already formatted as YAML).
/// With `create`, a missing last key is added to its mapping.
pub fn set(text: &str, path: &[String], new: &str, create: bool) -> Result<Edit, String> {
    let lines = lines(text);
    let Some(first) = lines
        .iter()
        .position(|l| l.is_content() && !is_doc_start(l.text))
    else {
        return Err("the file has no YAML content to edit".into());
    };
    if lines[first + 1..].iter().any(|l| is_doc_start(l.text)) {
        return Err("files with several YAML documents are not supported".into());
    }
    let mut block = Block {
        line: first,
        col: lines[first].indent,
        end: lines.len(),
    };
    for (depth, segment) in path.iter().enumerate() {
        let shown = path[..=depth].join(".");
        let last = depth + 1 == path.len();
        let entry = if is_item(&lines[block.line].text[block.col..]) {
            let index: usize = segment
                .parse()
                .map_err(|_| format!("`{shown}`: the parent is a list; expected an index"))?;
            item(&lines, block, index).ok_or_else(|| format!("`{shown}`: the list is shorter"))?
        } else {
            match key(&lines, block, segment)? {
                Some(entry) => entry,
                None if last && create => return insert(text, &lines, block, segment, new),
                None => {
                    return Err(format!(
                        "`{shown}` does not exist (set `create: true` to add it)"
                    ));
                }
            }
        };
        // `entry`: the value's position on its line, and the column of the
        // entry that owns it (a key's column, or a dash's).
        let (line, value_col, owner_col) = entry;
        let rest = &lines[line].text[value_col..];
        let value = rest.trim_start_matches(' ');
        let value_col = value_col + (rest.len() - value.len());
        if value.is_empty() || value.starts_with('#') {
            // A nested block on the following lines.
            let child = child_block(&lines, line, owner_col).ok_or_else(|| {
                format!(
                    "`{shown}` is empty (null); it has no `{}`",
                    path.get(depth + 1).map_or("value", |s| s.as_str())
                )
            })?;
            if last {
                return Err(format!(
                    "`{shown}` is a mapping or a list; only scalars can be set"
                ));
            }
            block = child;
            continue;
        }
        if !last {
            if is_item(value) || key_end(value).is_some() {
                // `- key: value`: the item is a mapping that starts inline.
                let end = block_end(&lines, line, owner_col);
                block = Block {
                    line,
                    col: value_col,
                    end,
                };
                continue;
            }
            return Err(format!(
                "`{shown}` is a scalar or a flow collection; cannot go inside it"
            ));
        }
        if is_item(value)
            || (key_end(value).is_some() && lines[line].text[owner_col..].starts_with('-'))
        {
            return Err(format!(
                "`{shown}` is a mapping or a list; only scalars can be set"
            ));
        }
        let span = scalar_span(value).map_err(|e| format!("`{shown}`: {e}"))?;
        let continued = lines[line + 1..]
            .iter()
            .find(|l| l.is_content())
            .is_some_and(|next| next.indent > owner_col);
        if continued && !value.starts_with(['"', '\'']) {
            return Err(format!(
                "`{shown}` is a plain scalar continued on the next line; not supported"
            ));
        }
        let at = lines[line].start + value_col;
        let mut out = String::with_capacity(text.len() + new.len());
        out.push_str(&text[..at]);
        out.push_str(new);
        out.push_str(&text[at + span..]);
        return Ok(Edit {
            text: out,
            previous: Some(value[..span].to_owned()),
        });
    }
    Err("the path is empty".into())
}

fn is_doc_start(text: &str) -> bool {
    text == "---" || text.starts_with("--- ")
}

fn is_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

/// Where the list item on line `first` (dash at column `dash`) ends: at
/// the next content line indented no more than its dash.
fn block_end(lines: &[Line], first: usize, dash: usize) -> usize {
    (first + 1..lines.len())
        .find(|&i| lines[i].is_content() && lines[i].indent <= dash)
        .unwrap_or(lines.len())
}

/// The block nested under the entry on line `line` owned at column `owner`.
fn child_block(lines: &[Line], line: usize, owner: usize) -> Option<Block> {
    let next = (line + 1..lines.len()).find(|&i| lines[i].is_content())?;
    let col = lines[next].indent;
    let indentless = col == owner
        && is_item(&lines[next].text[col..])
        && !lines[line].text[owner..].starts_with('-');
    if col <= owner && !indentless {
        return None;
    }
    let mut end = lines.len();
    for (i, l) in lines.iter().enumerate().skip(next + 1) {
        if !l.is_content() {
            continue;
        }
        if l.indent < col || (indentless && l.indent == col && !is_item(&l.text[col..])) {
            end = i;
            break;
        }
    }
    Some(Block {
        line: next,
        col,
        end,
    })
}

/// The entries of a block: (line, column) of each.
fn entries(lines: &[Line], block: Block) -> Vec<(usize, usize)> {
    let mut out = vec![(block.line, block.col)];
    for (i, l) in lines
        .iter()
        .enumerate()
        .take(block.end)
        .skip(block.line + 1)
    {
        if l.is_content() && l.indent == block.col {
            out.push((i, block.col));
        }
    }
    out
}

/// Finds `name` in a mapping block: (line, where its value starts, key column).
fn key(lines: &[Line], block: Block, name: &str) -> Result<Option<(usize, usize, usize)>, String> {
    for (line, col) in entries(lines, block) {
        let text = &lines[line].text[col..];
        if text.starts_with(['{', '[']) {
            return Err("flow-style collections (`{…}`, `[…]`) are not supported".into());
        }
        let Some((found, end)) = key_end(text) else {
            continue;
        };
        if found == name {
            return Ok(Some((line, col + end, col)));
        }
    }
    Ok(None)
}

/// Finds item `index` of a list block: (line, where its value starts, dash column).
fn item(lines: &[Line], block: Block, index: usize) -> Option<(usize, usize, usize)> {
    let (line, col) = *entries(lines, block)
        .iter()
        .filter(|(l, c)| is_item(&lines[*l].text[*c..]))
        .nth(index)?;
    Some((line, col + 1, col))
}

/// If `text` starts with `key:` (plain or quoted key, `:` followed by a
/// blank or the end), the key and the offset just after the colon.
fn key_end(text: &str) -> Option<(String, usize)> {
    let (key, after) = if text.starts_with(['"', '\'']) {
        let span = scalar_span(text).ok()?;
        (unquote(&text[..span])?, span)
    } else {
        let mut at = None;
        for (i, c) in text.char_indices() {
            if c == ':' && text[i + 1..].chars().next().is_none_or(|n| n == ' ') {
                at = Some(i);
                break;
            }
            if c == '#' && text[..i].ends_with(' ') {
                return None;
            }
        }
        let at = at?;
        (text[..at].trim_end().to_owned(), at)
    };
    let rest = &text[after..];
    let rest_trimmed = rest.trim_start_matches(' ');
    let colon = rest_trimmed.strip_prefix(':')?;
    if !(colon.is_empty() || colon.starts_with(' ')) {
        return None;
    }
    Some((key, after + (rest.len() - rest_trimmed.len()) + 1))
}

/// The length of the scalar at the start of `value`.
fn scalar_span(value: &str) -> Result<usize, String> {
    match value.chars().next() {
        Some('"') => {
            let mut escaped = false;
            for (i, c) in value.char_indices().skip(1) {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => return Ok(i + 1),
                    _ => {}
                }
            }
            Err("a double-quoted scalar continues on the next line; not supported".into())
        }
        Some('\'') => {
            let bytes = value.as_bytes();
            let mut i = 1;
            while i < bytes.len() {
                if bytes[i] == b'\'' {
                    if bytes.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    return Ok(i + 1);
                }
                i += 1;
            }
            Err("a single-quoted scalar continues on the next line; not supported".into())
        }
        Some('|' | '>') => Err("block scalars (`|`, `>`) are not supported".into()),
        Some('{' | '[') => Err("flow-style collections (`{…}`, `[…]`) are not supported".into()),
        Some('&' | '*' | '!') => Err("anchors, aliases and tags are not supported".into()),
        _ => {
            let end = value.find(" #").unwrap_or(value.len());
            Ok(value[..end].trim_end().len())
        }
    }
}

/// The text of a quoted key (simple escapes only).
fn unquote(quoted: &str) -> Option<String> {
    if let Some(inner) = quoted.strip_prefix('\'').and_then(|q| q.strip_suffix('\'')) {
        return Some(inner.replace("''", "'"));
    }
    let inner = quoted.strip_prefix('"')?.strip_suffix('"')?;
    serde_json::from_str(&format!("\"{inner}\"")).ok()
}

/// Adds `name: new` as the last entry of a mapping block.
fn insert(text: &str, lines: &[Line], block: Block, name: &str, new: &str) -> Result<Edit, String> {
    // After the block's last content line (and whatever is nested in it).
    let last = (block.line..block.end)
        .rev()
        .find(|&i| lines[i].is_content())
        .unwrap_or(block.line);
    let at = lines.get(last + 1).map_or(text.len(), |l| l.start);
    // A new line ends the way the file's lines already do.
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let mut out = String::with_capacity(text.len() + name.len() + new.len() + 8);
    out.push_str(&text[..at]);
    if !out.is_empty() && !out.ends_with('\n') {
        out.push_str(newline);
    }
    let key = if crate::plain_string_ok(name) {
        name.to_owned()
    } else {
        crate::double_quoted(name)
    };
    out.push_str(&format!("{}{key}: {new}{newline}", " ".repeat(block.col)));
    out.push_str(&text[at..]);
    Ok(Edit {
        text: out,
        previous: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> Vec<String> {
        p.split('.').map(str::to_owned).collect()
    }

    fn edit(text: &str, p: &str, new: &str) -> String {
        set(text, &path(p), new, false).unwrap().text
    }

    const DEPLOYMENT: &str = "\
# The web deployment.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web   # keep this name
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: web
          image: \"registry.example/web:1.4.1\"  # bumped by CI
          ports:
            - 8080
        - name: sidecar
          image: 'proxy:2'
";

    #[test]
    fn replaces_only_the_scalar() {
        let out = edit(
            DEPLOYMENT,
            "spec.template.spec.containers.0.image",
            "\"registry.example/web:1.4.2\"",
        );
        assert_eq!(out, DEPLOYMENT.replace("web:1.4.1", "web:1.4.2"));
        let out = edit(DEPLOYMENT, "spec.replicas", "3");
        assert_eq!(out, DEPLOYMENT.replace("replicas: 2", "replicas: 3"));
        let out = edit(DEPLOYMENT, "metadata.name", "api");
        assert_eq!(out, DEPLOYMENT.replace("name: web   #", "name: api   #"));
        let out = edit(
            DEPLOYMENT,
            "spec.template.spec.containers.1.image",
            "'proxy:3'",
        );
        assert_eq!(out, DEPLOYMENT.replace("'proxy:2'", "'proxy:3'"));
        let out = edit(
            DEPLOYMENT,
            "spec.template.spec.containers.0.ports.0",
            "9090",
        );
        assert_eq!(out, DEPLOYMENT.replace("- 8080", "- 9090"));
        let out = edit(DEPLOYMENT, "spec.template.spec.containers.1.name", "proxy");
        assert_eq!(out, DEPLOYMENT.replace("- name: sidecar", "- name: proxy"));
    }

    #[test]
    fn reports_the_previous_text() {
        let e = set(
            DEPLOYMENT,
            &path("spec.template.spec.containers.0.image"),
            "x",
            false,
        )
        .unwrap();
        assert_eq!(
            e.previous.as_deref(),
            Some("\"registry.example/web:1.4.1\"")
        );
    }

    #[test]
    fn indentless_lists_and_quoted_keys() {
        let text = "items:\n- a\n- b\n\"odd key\": 1\nnext: x\n";
        assert_eq!(
            edit(text, "items.1", "c"),
            "items:\n- a\n- c\n\"odd key\": 1\nnext: x\n"
        );
        assert_eq!(
            edit(text, "odd key", "2"),
            "items:\n- a\n- b\n\"odd key\": 2\nnext: x\n"
        );
        assert_eq!(
            edit(text, "next", "y"),
            "items:\n- a\n- b\n\"odd key\": 1\nnext: y\n"
        );
    }

    #[test]
    fn crlf_and_document_marker() {
        let text = "---\r\na:\r\n  b: 1\r\n";
        assert_eq!(edit(text, "a.b", "2"), "---\r\na:\r\n  b: 2\r\n");
        let created = set(text, &path("a.c"), "3", true).unwrap().text;
        assert_eq!(created, "---\r\na:\r\n  b: 1\r\n  c: 3\r\n");
    }

    #[test]
    fn creates_a_missing_last_key() {
        let text = "a:\n  b: 1\n  # end of a\nc: 2\n";
        let e = set(text, &path("a.new"), "x", true).unwrap();
        assert_eq!(e.text, "a:\n  b: 1\n  new: x\n  # end of a\nc: 2\n");
        assert_eq!(e.previous, None);
        let e = set("a: 1", &path("b"), "2", true).unwrap();
        assert_eq!(e.text, "a: 1\nb: 2\n");
        assert!(
            set(text, &path("a.new"), "x", false)
                .unwrap_err()
                .contains("does not exist")
        );
        assert!(
            set(text, &path("x.y"), "1", true).is_err(),
            "only the last key is created"
        );
    }

    #[test]
    fn refuses_what_it_cannot_edit_safely() {
        let cases = [
            ("a: {b: 1}\n", "a.b"),
            ("a: [1, 2]\n", "a.0"),
            ("a: |\n  text\n", "a"),
            ("a: &x 1\n", "a"),
            ("a: plain\n  continued\n", "a"),
            ("a:\n  b: 1\n", "a"),
            ("a: 1\n", "a.b"),
            ("a: 1\n---\nb: 2\n", "a"),
            ("l:\n  - 1\n", "l.5"),
            ("l:\n  - 1\n", "l.x"),
            ("# only a comment\n", "a"),
        ];
        for (text, p) in cases {
            assert!(set(text, &path(p), "0", false).is_err(), "{text:?} {p}");
        }
    }

    #[test]
    fn keys_with_colons_and_urls() {
        let text = "url: http://a:80/x\n\"k:1\": v\n";
        assert_eq!(edit(text, "url", "http://b"), "url: http://b\n\"k:1\": v\n");
        assert_eq!(edit(text, "k:1", "w"), "url: http://a:80/x\n\"k:1\": w\n");
    }
}
