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
    /// From a header's type flag.
    pub fn of_flag(t: u8) -> Kind {
        match t {
            b'0' | 0 | b'7' => Kind::File,
            b'5' => Kind::Directory,
            b'2' => Kind::Symlink,
            b'1' => Kind::HardLink,
            other => Kind::Other(other),
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
        let raw = String::from_utf8_lossy(&h.name[..h.name.len().min(MAX_NAME)]).into_owned();
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

/// The most of a PAX extended header read (a path, a link and a size are
/// a few hundred bytes).
const MAX_PAX: u64 = 64 * 1024;

/// Reads a tar header by header into `entries`, as volume `volume`, moving
/// over each entry's data with `skip` (a seek in place, or a read that
/// spools it). A small strict reader of our own: the tar crate reads GNU
/// long names and PAX headers whole into memory, whatever their size.
pub fn scan<R: std::io::Read>(
    r: &mut R,
    volume: usize,
    entries: &mut Entries,
    skip: &mut dyn FnMut(&mut R, u64) -> std::io::Result<()>,
    on_entry: &mut dyn FnMut(usize, &Header),
) -> Result<(), EntryError> {
    let mut pos: u64 = 0;
    let mut long_name: Option<Vec<u8>> = None;
    let mut long_link: Option<Vec<u8>> = None;
    let mut pax_size: Option<u64> = None;
    loop {
        let mut block = [0u8; 512];
        match read_block(r, &mut block)? {
            false if pos == 0 => return Err(EntryError::Tar("empty: not a tar".into())),
            false => {
                return Err(EntryError::Tar(
                    "truncated: it ends without its end blocks".into(),
                ));
            }
            true => {}
        }
        pos += 512;
        if block.iter().all(|b| *b == 0) {
            return Ok(());
        }
        let h = parse_header(&block)?;
        let data_at = pos;
        let padded = h.size.div_ceil(512) * 512;
        match h.type_flag {
            b'x' | b'g' | b'L' | b'K' => {
                let cap = if matches!(h.type_flag, b'L' | b'K') {
                    MAX_NAME as u64 + 1
                } else {
                    MAX_PAX
                };
                if h.size > cap {
                    return Err(EntryError::Tar(format!(
                        "an extended header of {} bytes, more than {cap}",
                        h.size
                    )));
                }
                let mut data = vec![0u8; padded as usize];
                r.read_exact(&mut data).map_err(|e| {
                    EntryError::Tar(format!("truncated in an extended header: {e}"))
                })?;
                data.truncate(h.size as usize);
                match h.type_flag {
                    b'L' => long_name = Some(trim_nul(data)),
                    b'K' => long_link = Some(trim_nul(data)),
                    b'x' => {
                        let pax = pax_records(&data)?;
                        long_name = pax.path.or(long_name);
                        long_link = pax.link.or(long_link);
                        pax_size = pax.size.or(pax_size);
                    }
                    _ => {}
                }
                pos += padded;
                continue;
            }
            _ => {}
        }
        let size = pax_size.take().unwrap_or(h.size);
        let header = Header {
            name: long_name.take().unwrap_or(h.name),
            kind: Kind::of_flag(h.type_flag),
            link: long_link.take().or(h.link),
            size,
            offset: data_at,
        };
        entries.admit(volume, &header)?;
        on_entry(volume, &header);
        let padded = size
            .checked_add(511)
            .map(|s| s / 512 * 512)
            .ok_or_else(|| EntryError::Tar(format!("a size of {size} bytes overflows")))?;
        skip(r, padded).map_err(|e| EntryError::Tar(format!("truncated: {e}")))?;
        pos = pos
            .checked_add(padded)
            .ok_or_else(|| EntryError::Tar("an offset overflows".into()))?;
    }
}

/// Fills a block; `false` at a clean end of input before any byte of it.
fn read_block<R: std::io::Read>(r: &mut R, block: &mut [u8; 512]) -> Result<bool, EntryError> {
    let mut got = 0;
    while got < 512 {
        match r.read(&mut block[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(EntryError::Tar("truncated in a header".into())),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(EntryError::Tar(format!("unreadable: {e}"))),
        }
    }
    Ok(true)
}

/// What one 512-byte header says.
struct RawHeader {
    name: Vec<u8>,
    link: Option<Vec<u8>>,
    size: u64,
    type_flag: u8,
}

fn parse_header(b: &[u8; 512]) -> Result<RawHeader, EntryError> {
    let stored = octal(&b[148..156])
        .ok_or_else(|| EntryError::Tar("a header without a checksum: not a tar".into()))?;
    let sum: u64 = b
        .iter()
        .enumerate()
        .map(|(i, v)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(*v)
            }
        })
        .sum();
    if sum != stored {
        return Err(EntryError::Tar(
            "a header with a wrong checksum: not a tar, or a damaged one".into(),
        ));
    }
    let field = |range: std::ops::Range<usize>| trim_nul(b[range].to_vec());
    let mut name = field(0..100);
    // POSIX ustar: a prefix joined to the name with a slash.
    if &b[257..263] == b"ustar\0" {
        let prefix = field(345..500);
        if !prefix.is_empty() {
            let mut full = prefix;
            full.push(b'/');
            full.extend_from_slice(&name);
            name = full;
        }
    }
    let size = if b[124] & 0x80 != 0 {
        // GNU base-256: what octal cannot hold.
        if b[124] != 0x80 || b[125..128].iter().any(|v| *v != 0) {
            return Err(EntryError::Tar("a size past 2^64".into()));
        }
        let mut be = [0u8; 8];
        be.copy_from_slice(&b[128..136]);
        u64::from_be_bytes(be)
    } else {
        octal(&b[124..136]).ok_or_else(|| EntryError::Tar("an unreadable size".into()))?
    };
    let link = field(157..257);
    Ok(RawHeader {
        name,
        link: (!link.is_empty()).then_some(link),
        size,
        type_flag: b[156],
    })
}

/// An octal field (spaces and NULs around it allowed).
fn octal(field: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

fn trim_nul(mut v: Vec<u8>) -> Vec<u8> {
    if let Some(end) = v.iter().position(|b| *b == 0) {
        v.truncate(end);
    }
    v
}

/// The PAX records that matter here.
#[derive(Default)]
struct Pax {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
}

/// `LEN key=value\n` records, strictly.
fn pax_records(mut data: &[u8]) -> Result<Pax, EntryError> {
    let bad = || EntryError::Tar("an unreadable PAX header".into());
    let mut pax = Pax::default();
    while !data.is_empty() {
        let space = data.iter().position(|b| *b == b' ').ok_or_else(bad)?;
        let len: usize = std::str::from_utf8(&data[..space])
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(bad)?;
        if len <= space + 1 || len > data.len() || data[len - 1] != b'\n' {
            return Err(bad());
        }
        let record = &data[space + 1..len - 1];
        let eq = record.iter().position(|b| *b == b'=').ok_or_else(bad)?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        match key {
            b"path" => pax.path = Some(value.to_vec()),
            b"linkpath" => pax.link = Some(value.to_vec()),
            b"size" => {
                pax.size = Some(
                    std::str::from_utf8(value)
                        .ok()
                        .and_then(|t| t.parse().ok())
                        .ok_or_else(bad)?,
                );
            }
            _ => {}
        }
        data = &data[len..];
    }
    Ok(pax)
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

    fn scanned(bytes: &[u8]) -> Result<Entries, EntryError> {
        let mut e = Entries::default();
        let mut r = std::io::Cursor::new(bytes.to_vec());
        let mut skip = |r: &mut std::io::Cursor<Vec<u8>>, n: u64| {
            r.set_position(r.position() + n);
            Ok(())
        };
        scan(&mut r, 0, &mut e, &mut skip, &mut |_, _| {})?;
        Ok(e)
    }

    #[test]
    fn long_names_and_pax_from_the_tar_crate_read_alike() {
        let long = format!("blobs/sha256/{}", "a".repeat(150));
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        b.append_data(&mut h, &long, &b"abc"[..]).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_size(2);
        b.append_data(&mut h, "index.json", &b"{}"[..]).unwrap();
        let mut pax = tar::Builder::new(Vec::new());
        pax.append_pax_extensions([("path", "dir/from-pax.json".as_bytes())])
            .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_size(1);
        pax.append_data(&mut h, "short", &b"x"[..]).unwrap();
        let e = scanned(&b.into_inner().unwrap()).unwrap();
        assert_eq!(e.get(&long).unwrap().size, 3);
        assert_eq!(e.get("index.json").unwrap().size, 2);
        let e = scanned(&pax.into_inner().unwrap()).unwrap();
        assert!(e.has("dir/from-pax.json") && !e.has("short"));
    }

    #[test]
    fn extended_headers_are_capped_before_they_are_read() {
        let mut b = tar::Builder::new(Vec::new());
        let big = "p".repeat(MAX_PAX as usize);
        b.append_pax_extensions([("comment", big.as_bytes())])
            .unwrap();
        let err = scanned(&b.into_inner().unwrap()).unwrap_err().to_string();
        assert!(err.contains("extended header"), "{err}");
        assert!(scanned(b"").unwrap_err().to_string().contains("not a tar"));
        assert!(
            scanned(&[7u8; 512])
                .unwrap_err()
                .to_string()
                .contains("checksum")
        );
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
