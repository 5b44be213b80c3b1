//! Reproducible tar.gz: the same files always give the same bytes.
//!
//! Entries are sorted by path; times, owners and names are zeroed; files
//! get mode 0644 and folders 0755 (WASI has no permission bits to read).
//! Symbolic links are refused both ways, and so is any entry that would
//! land outside the destination.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Component, Path};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use tar::{Builder, EntryType, Header};

/// Packs `paths` (relative to `base`; `.` for all of it) into `out`.
/// Returns the number of entries.
pub fn create<W: Write>(base: &Path, paths: &[String], out: W) -> io::Result<usize> {
    let mut entries: Vec<String> = Vec::new();
    for path in paths {
        let relative = clean_relative(path)?;
        collect(base, &relative, &mut entries)?;
    }
    entries.sort();
    entries.dedup();

    let mut builder = Builder::new(GzEncoder::new(out, Compression::best()));
    for name in &entries {
        let path = base.join(name);
        let meta = fs::metadata(&path)?;
        let mut header = Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        if meta.is_dir() {
            header.set_entry_type(EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            builder.append_data(&mut header, format!("{name}/"), io::empty())?;
        } else {
            header.set_entry_type(EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(meta.len());
            builder.append_data(&mut header, name, File::open(&path)?)?;
        }
    }
    builder.into_inner()?.finish()?.flush()?;
    Ok(entries.len())
}

/// Adds `relative` (a file or a folder, recursively) to `entries`.
fn collect(base: &Path, relative: &str, entries: &mut Vec<String>) -> io::Result<()> {
    let path = if relative.is_empty() {
        base.to_owned()
    } else {
        base.join(relative)
    };
    let meta = fs::symlink_metadata(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("`{}`: {e}", path.display())))?;
    if meta.file_type().is_symlink() {
        return Err(io::Error::other(format!(
            "`{}` is a symbolic link; links are not archived",
            path.display()
        )));
    }
    if !relative.is_empty() {
        entries.push(relative.to_owned());
    }
    if meta.is_dir() {
        for entry in fs::read_dir(&path)? {
            let name = entry?.file_name();
            let name = name.to_str().ok_or_else(|| {
                io::Error::other(format!("a name in `{}` is not UTF-8", path.display()))
            })?;
            let child = if relative.is_empty() {
                name.to_owned()
            } else {
                format!("{relative}/{name}")
            };
            collect(base, &child, entries)?;
        }
    }
    Ok(())
}

/// `path` as a clean relative path with `/` separators ("" for `.`),
/// refusing absolute paths and `..`.
fn clean_relative(path: &str) -> io::Result<String> {
    let mut parts = Vec::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str().unwrap_or_default().to_owned()),
            Component::CurDir => {}
            _ => {
                return Err(io::Error::other(format!(
                    "`{path}` must be relative to the base folder, without `..`"
                )));
            }
        }
    }
    Ok(parts.join("/"))
}

/// `dest/relative`, refusing a path through an existing symbolic link
/// (which could lead outside `dest`).
fn safe_target(dest: &Path, relative: &str) -> io::Result<std::path::PathBuf> {
    let mut path = dest.to_owned();
    for part in relative.split('/') {
        path.push(part);
        if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(io::Error::other(format!(
                "`{relative}` goes through the symbolic link `{}`",
                path.display()
            )));
        }
    }
    Ok(path)
}

/// Unpacks a tar.gz stream into `dest`. Returns the number of entries.
pub fn extract<R: Read>(input: R, dest: &Path) -> io::Result<usize> {
    fs::create_dir_all(dest)?;
    let mut archive = tar::Archive::new(GzDecoder::new(input));
    let mut count = 0;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.display().to_string();
        match entry.header().entry_type() {
            EntryType::Regular | EntryType::Directory | EntryType::Continuous => {}
            EntryType::GNULongName | EntryType::XHeader | EntryType::XGlobalHeader => continue,
            other => {
                return Err(io::Error::other(format!(
                    "`{name}`: entries of type {other:?} (links, devices) are not extracted"
                )));
            }
        }
        let relative = clean_relative(&name)?;
        if relative.is_empty() {
            continue;
        }
        let target = safe_target(dest, &relative)?;
        if entry.header().entry_type() == EntryType::Directory {
            fs::create_dir_all(&target)?;
        } else {
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent)?;
            }
            // Written by hand rather than with `unpack_in`: that also sets
            // permission bits, which WASI cannot do.
            let mut file = File::create(&target)?;
            io::copy(&mut entry, &mut file)?;
        }
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(root: &Path) {
        for (file, text) in [
            ("site/index.html", "<h1>hi</h1>"),
            ("site/css/a.css", "a{}"),
            ("notes.txt", "n"),
        ] {
            let path = root.join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
    }

    #[test]
    fn round_trip_and_reproducible() {
        let src = tempfile::tempdir().unwrap();
        tree(src.path());
        let mut first = Vec::new();
        let count = create(
            src.path(),
            &["site".into(), "./notes.txt".into()],
            &mut first,
        )
        .unwrap();
        assert_eq!(
            count, 5,
            "site, site/css, site/css/a.css, site/index.html, notes.txt"
        );
        let mut second = Vec::new();
        create(
            src.path(),
            &["notes.txt".into(), "site".into()],
            &mut second,
        )
        .unwrap();
        assert_eq!(first, second, "same files, same bytes");

        let dest = tempfile::tempdir().unwrap();
        assert_eq!(extract(&first[..], &dest.path().join("out")).unwrap(), 5);
        let read = |p: &str| fs::read_to_string(dest.path().join("out").join(p)).unwrap();
        assert_eq!(read("site/index.html"), "<h1>hi</h1>");
        assert_eq!(read("site/css/a.css"), "a{}");
        assert_eq!(read("notes.txt"), "n");
    }

    #[test]
    fn dot_packs_everything() {
        let src = tempfile::tempdir().unwrap();
        tree(src.path());
        let mut bytes = Vec::new();
        assert_eq!(create(src.path(), &[".".into()], &mut bytes).unwrap(), 5);
    }

    #[test]
    fn refuses_escaping_paths() {
        let src = tempfile::tempdir().unwrap();
        assert!(create(src.path(), &["../x".into()], Vec::new()).is_err());
        assert!(create(src.path(), &["/etc".into()], Vec::new()).is_err());
        assert!(create(src.path(), &["missing".into()], Vec::new()).is_err());
    }

    #[test]
    fn refuses_hostile_entries() {
        // Written by hand: the tar builder itself refuses `..`.
        let mut header = Header::new_gnu();
        header.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../evil\0\0");
        header.set_size(1);
        header.set_entry_type(EntryType::Regular);
        header.set_cksum();
        let mut raw = Vec::new();
        raw.extend_from_slice(header.as_bytes());
        raw.extend_from_slice(&[b'x'; 512]);
        raw.extend_from_slice(&[0; 1024]);
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(&raw).unwrap();
        let bytes = gz.finish().unwrap();
        let dest = tempfile::tempdir().unwrap();
        assert!(extract(&bytes[..], dest.path()).is_err());
        assert!(!dest.path().parent().unwrap().join("evil").exists());

        let mut link = Header::new_gnu();
        link.set_path("link").unwrap();
        link.set_entry_type(EntryType::Symlink);
        link.set_link_name("/etc/passwd").unwrap();
        link.set_size(0);
        link.set_cksum();
        let mut builder = Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        builder.append(&link, io::empty()).unwrap();
        let bytes = builder.into_inner().unwrap().finish().unwrap();
        let e = extract(&bytes[..], dest.path()).unwrap_err();
        assert!(e.to_string().contains("not extracted"), "{e}");
    }
}
