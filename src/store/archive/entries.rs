//! The entries of an archive, found by reading its tar headers strictly:
//! what a name is, where its bytes are (volume, offset, size), and what is
//! refused before any byte is used.
//!
//! Owns the rules (scenario 46-48): a name is relative and stays inside
//! the archive (no `/x`, no `..`, no NUL, valid UTF-8); only regular files
//! and directories are entries, and a link is an alias of a file inside the
//! archive (podman's `ID/layer.tar -> ../DIFF.tar`), never followed
//! further; devices, FIFOs and sparse files are refused; a name given twice
//! is refused unless both are blobs of the same size (their digest is
//! checked when read); a size past the end of the file is a truncated or
//! lying archive; at most [`MAX_ENTRIES`] entries. Never writes anything.

use std::collections::HashMap;
use std::path::{Component, Path};

/// Entries one archive may have: tens of thousands of blobs is a big
/// mirror; more is an attack on our memory.
pub const MAX_ENTRIES: usize = 65_536;
/// The longest entry name accepted.
const MAX_NAME: usize = 4096;

/// Where one file's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Which file of a split archive (0: the first).
    pub volume: usize,
    pub offset: u64,
    pub size: u64,
}

/// Why an archive is refused, naming the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("entry {name:?}: {why}")]
    Refused { name: String, why: String },
    #[error("more than {MAX_ENTRIES} entries")]
    TooMany,
    #[error("{0}")]
    Tar(String),
}

fn refused(name: &str, why: impl Into<String>) -> EntryError {
    EntryError::Refused {
        name: crate::transport::error::printable(name).to_string(),
        why: why.into(),
    }
}

/// What one tar header says, as the scanner needs it.
#[derive(Debug, Clone)]
pub struct Header {
    pub name: Vec<u8>,
    pub kind: Kind,
    /// For a link: where it points (as written).
    pub link: Option<Vec<u8>>,
    pub size: u64,
    /// Where the entry's data starts in its volume.
    pub offset: u64,
}

/// The entry types the scanner tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Directory,
    Symlink,
    HardLink,
    /// A device, a FIFO, a sparse file, or anything else.
    Other(u8),
}

impl Kind {
    pub fn of(t: tar::EntryType) -> Kind {
        match t {
            tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
            tar::EntryType::Directory => Kind::Directory,
            tar::EntryType::Symlink => Kind::Symlink,
            tar::EntryType::Link => Kind::HardLink,
            other => Kind::Other(other.as_byte()),
        }
    }
}

/// The entries found so far, by name.
#[derive(Debug, Default, Clone)]
pub struct Entries {
    files: HashMap<String, Entry>,
    /// Link name → the file it stands for.
    aliases: HashMap<String, String>,
    count: usize,
}

impl Entries {
    /// Takes one header of volume `volume`, or refuses the archive.
    pub fn admit(&mut self, volume: usize, h: &Header) -> Result<(), EntryError> {
        self.count += 1;
        if self.count > MAX_ENTRIES {
            return Err(EntryError::TooMany);
        }
        let raw = String::from_utf8_lossy(&h.name).into_owned();
        let name = clean(&h.name).map_err(|why| refused(&raw, why))?;
        match h.kind {
            Kind::Directory => Ok(()),
            Kind::File => self.file(
                &name,
                Entry {
                    volume,
                    offset: h.offset,
                    size: h.size,
                },
            ),
            Kind::Symlink | Kind::HardLink => {
                let link = h.link.as_deref().unwrap_or_default();
                let target = link_target(&name, link, h.kind).map_err(|why| refused(&name, why))?;
                if self.files.contains_key(&name) || self.aliases.contains_key(&name) {
                    return Err(refused(&name, "given twice"));
                }
                self.aliases.insert(name, target);
                Ok(())
            }
            Kind::Other(t) => Err(refused(
                &name,
                format!(
                    "a {} entry; an archive of images holds files only",
                    kind_name(t)
                ),
            )),
        }
    }

    fn file(&mut self, name: &str, e: Entry) -> Result<(), EntryError> {
        match self.files.get(name) {
            None if self.aliases.contains_key(name) => Err(refused(name, "given twice")),
            None => {
                self.files.insert(name.to_string(), e);
                Ok(())
            }
            // A blob is named by its digest, which is checked when it is
            // read: a second copy of the same size changes nothing.
            Some(first) if name.starts_with("blobs/") && first.size == e.size => Ok(()),
            Some(_) => Err(refused(name, "given twice, with different bytes")),
        }
    }

    /// The file `name` names (through one alias at most).
    pub fn get(&self, name: &str) -> Option<Entry> {
        let name = name.trim_start_matches("./");
        self.files.get(name).copied().or_else(|| {
            self.aliases
                .get(name)
                .and_then(|t| self.files.get(t).copied())
        })
    }

    /// Checks every file's extent against its volume's length: a size
    /// that runs past the end is a truncated (or lying) archive.
    pub fn check_extents(&self, lengths: &[u64]) -> Result<(), EntryError> {
        for (name, e) in &self.files {
            let len = lengths.get(e.volume).copied().unwrap_or(0);
            if e.offset.checked_add(e.size).is_none_or(|end| end > len) {
                return Err(refused(
                    name,
                    format!(
                        "claims {} bytes from offset {}, past the end of its file ({len} bytes): a truncated or lying archive",
                        e.size, e.offset
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether a name was seen (file or alias).
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

fn kind_name(t: u8) -> &'static str {
    match t {
        b'3' => "character device",
        b'4' => "block device",
        b'6' => "FIFO",
        b'S' => "sparse file",
        _ => "special",
    }
}

/// A name as the archive means it: relative, inside, without `./`.
pub fn clean(raw: &[u8]) -> Result<String, String> {
    let name = std::str::from_utf8(raw).map_err(|_| "a name that is not UTF-8".to_string())?;
    if name.is_empty() || name.len() > MAX_NAME || name.contains('\0') {
        return Err("an empty, overlong or NUL-bearing name".into());
    }
    if name.starts_with('/') {
        return Err("an absolute name".into());
    }
    let mut parts = Vec::new();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => return Err("a name with `..`".into()),
            Component::RootDir | Component::Prefix(_) => return Err("an absolute name".into()),
        }
    }
    if parts.is_empty() {
        return Err("a name that is only `.`".into());
    }
    Ok(parts.join("/"))
}

/// The archive name a link points at: a symlink relative to its own
/// directory, a hard link relative to the archive's root; never outside.
fn link_target(name: &str, link: &[u8], kind: Kind) -> Result<String, String> {
    let link = std::str::from_utf8(link).map_err(|_| "a link target that is not UTF-8")?;
    if link.starts_with('/') {
        return Err(format!("a link to an absolute path ({link})"));
    }
    let base: Vec<&str> = match kind {
        Kind::Symlink => name
            .rsplit_once('/')
            .map_or(Vec::new(), |(d, _)| d.split('/').collect()),
        _ => Vec::new(),
    };
    let mut parts: Vec<String> = base.into_iter().map(str::to_string).collect();
    for c in link.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(format!("a link that leaves the archive ({link})"));
                }
            }
            p => parts.push(p.to_string()),
        }
    }
    if parts.is_empty() {
        return Err(format!("a link to the archive's root ({link})"));
    }
    Ok(parts.join("/"))
}

/// Reads the headers of an uncompressed tar (seeking over the data) into
/// `entries`, as volume `volume`.
pub fn scan<R: std::io::Read + std::io::Seek>(
    reader: R,
    volume: usize,
    entries: &mut Entries,
) -> Result<(), EntryError> {
    let mut archive = tar::Archive::new(reader);
    let iter = archive
        .entries_with_seek()
        .map_err(|e| EntryError::Tar(format!("not a tar: {e}")))?;
    for entry in iter {
        let entry = entry.map_err(|e| EntryError::Tar(format!("unreadable tar header: {e}")))?;
        entries.admit(volume, &header_of(&entry)?)?;
    }
    Ok(())
}

/// What the scanner needs of a tar crate entry.
pub fn header_of<R: std::io::Read>(entry: &tar::Entry<'_, R>) -> Result<Header, EntryError> {
    let name = entry.path_bytes().into_owned();
    let link = entry.link_name_bytes().map(|l| l.into_owned());
    Ok(Header {
        kind: Kind::of(entry.header().entry_type()),
        size: entry.size(),
        offset: entry.raw_file_position(),
        name,
        link,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &str, kind: Kind, link: Option<&str>, size: u64) -> Header {
        Header {
            name: name.as_bytes().to_vec(),
            kind,
            link: link.map(|l| l.as_bytes().to_vec()),
            size,
            offset: 512,
        }
    }

    #[test]
    fn names_stay_inside() {
        assert_eq!(clean(b"./blobs/sha256/ab").unwrap(), "blobs/sha256/ab");
        assert_eq!(clean(b"index.json").unwrap(), "index.json");
        for bad in [
            &b"/etc/x"[..],
            b"../x",
            b"blobs/sha256/../../x",
            b"",
            b".",
            b"a\0b",
            &[0xff, 0xfe],
        ] {
            assert!(clean(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn links_are_aliases_inside_and_nothing_else_passes() {
        let mut e = Entries::default();
        e.admit(0, &h("abc.tar", Kind::File, None, 10)).unwrap();
        e.admit(0, &h("id/layer.tar", Kind::Symlink, Some("../abc.tar"), 0))
            .unwrap();
        assert_eq!(e.get("id/layer.tar").unwrap().size, 10);
        for (name, link, kind) in [
            ("x", "/etc/passwd", Kind::Symlink),
            ("x", "../../etc/passwd", Kind::Symlink),
            ("y", "../x", Kind::HardLink),
        ] {
            assert!(
                e.admit(0, &h(name, kind, Some(link), 0)).is_err(),
                "{name} -> {link}"
            );
        }
        for t in [b'3', b'4', b'6', b'S'] {
            let err = e.admit(0, &h("dev", Kind::Other(t), None, 0)).unwrap_err();
            assert!(err.to_string().contains("entry \"dev\""), "{err}");
        }
    }

    #[test]
    fn twice_only_for_blobs_of_one_size_and_extents_are_checked() {
        let mut e = Entries::default();
        e.admit(0, &h("blobs/sha256/aa", Kind::File, None, 5))
            .unwrap();
        e.admit(0, &h("blobs/sha256/aa", Kind::File, None, 5))
            .unwrap();
        assert!(
            e.admit(0, &h("blobs/sha256/aa", Kind::File, None, 6))
                .is_err()
        );
        e.admit(0, &h("index.json", Kind::File, None, 5)).unwrap();
        assert!(e.admit(0, &h("index.json", Kind::File, None, 5)).is_err());
        assert!(e.check_extents(&[10_000]).is_ok());
        let mut big = Entries::default();
        big.admit(0, &h("blobs/sha256/bb", Kind::File, None, 1 << 40))
            .unwrap();
        let err = big.check_extents(&[10_000]).unwrap_err().to_string();
        assert!(err.contains("past the end"), "{err}");
    }

    #[test]
    fn a_cap_on_entries() {
        let mut e = Entries::default();
        for i in 0..MAX_ENTRIES {
            e.admit(0, &h(&format!("d{i}"), Kind::Directory, None, 0))
                .unwrap();
        }
        assert_eq!(
            e.admit(0, &h("one-more", Kind::Directory, None, 0)),
            Err(EntryError::TooMany)
        );
    }
}
