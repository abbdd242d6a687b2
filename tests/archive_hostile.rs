//! Hostile archives (scenarios 46-48): names that leave the archive,
//! links out of it, devices and FIFOs, a name twice with other bytes, a
//! blob whose bytes do not match its name, a size that lies, a truncated
//! file, a header claiming a terabyte, an oversized index.json, a zstd
//! bomb, a file that is not a tar, a manifest.json naming a file that is
//! not there. Each is refused with the archive and what is wrong, and the
//! target gets no tag.

mod support;

use std::path::Path;

use support::*;

/// A tar entry as written, byte for byte (bad names included).
struct Raw {
    name: Vec<u8>,
    kind: u8,
    link: Vec<u8>,
    data: Vec<u8>,
    /// The size the header states, when it lies.
    claimed: Option<u64>,
}

fn file(name: &str, data: &[u8]) -> Raw {
    Raw {
        name: name.as_bytes().to_vec(),
        kind: b'0',
        link: Vec::new(),
        data: data.to_vec(),
        claimed: None,
    }
}

fn special(name: &str, kind: u8, link: &str) -> Raw {
    Raw {
        name: name.as_bytes().to_vec(),
        kind,
        link: link.as_bytes().to_vec(),
        data: Vec::new(),
        claimed: None,
    }
}

/// A ustar header written by hand, so that nothing refuses our lies.
fn header(r: &Raw) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..r.name.len().min(100)].copy_from_slice(&r.name[..r.name.len().min(100)]);
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    let size = r.claimed.unwrap_or(r.data.len() as u64);
    if size < 0o77777777777 {
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    } else {
        // GNU base-256 for what octal cannot hold.
        h[124] = 0x80;
        h[128..136].copy_from_slice(&size.to_be_bytes());
    }
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = r.kind;
    h[157..157 + r.link.len().min(100)].copy_from_slice(&r.link[..r.link.len().min(100)]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

fn tar(entries: &[Raw]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in entries {
        out.extend_from_slice(&header(r));
        out.extend_from_slice(&r.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// The entries of a good archive ocirepl wrote of one image (`app:1.0`).
fn good_entries(reg: &Registry, dir: &Path) -> Vec<(String, Vec<u8>)> {
    let layout = dir.join("layout");
    let w = LayoutWriter::new(&layout);
    let (bytes, digest) = w.image(&ImageSpec::new(
        "linux/amd64",
        vec![Layer::random(4000, 8 * 1024)],
    ));
    w.tag(&[(
        "1.0",
        image::OCI_MANIFEST,
        bytes.as_slice(),
        digest.as_str(),
    )]);
    seed(&dir.join("layout"), "1.0", &reg.image("app:1.0"));
    let out = dir.join("good.tar");
    let (code, _, err) = run(&[
        "copy",
        &reg.image("app:1.0"),
        &format!("oci-archive:{}", out.display()),
    ]);
    assert_eq!(code, 0, "{err}");
    let mut archive = tar::Archive::new(std::fs::File::open(&out).unwrap());
    let mut entries = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        if e.header().entry_type().is_dir() {
            continue;
        }
        let name = e.path().unwrap().display().to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        entries.push((name, data));
    }
    entries
}

fn raws(entries: &[(String, Vec<u8>)]) -> Vec<Raw> {
    entries.iter().map(|(n, d)| file(n, d)).collect()
}

/// Copies `archive` into a fresh registry; must fail, saying `words`, and
/// leave no tag.
fn refused(archive: &Path, name: &str, words: &str) {
    let dst = Registry::start(RegistryConfig::anonymous());
    let (code, _, err) = run(&[
        "copy",
        &format!("oci-archive:{}:{name}", archive.display()),
        &dst.image("got:1.0"),
    ]);
    assert_ne!(code, 0, "{}: accepted", archive.display());
    assert!(
        err.contains(words),
        "{}: expected {words:?} in {err}",
        archive.display()
    );
    assert!(
        err.contains(&archive.display().to_string()),
        "names the archive: {err}"
    );
    assert!(
        tags_of(&dst.image("got")).is_empty(),
        "{}: a tag moved",
        archive.display()
    );
}

#[test]
fn bad_entries_are_refused_by_name() {
    let reg = Registry::start(RegistryConfig::anonymous());
    let dir = tempfile::tempdir().unwrap();
    let good = good_entries(&reg, dir.path());
    let name = format!("{}/app:1.0", reg.host());
    let cases: Vec<(&str, Raw, &str)> = vec![
        ("absolute", file("/etc/ocirepl-x", b"x"), "an absolute name"),
        ("dotdot", file("../ocirepl-x", b"x"), "`..`"),
        ("inner-dotdot", file("blobs/sha256/../../x", b"x"), "`..`"),
        (
            "symlink-out",
            special("evil", b'2', "/etc/passwd"),
            "absolute path",
        ),
        (
            "symlink-up",
            special("a/evil", b'2', "../../etc/passwd"),
            "leaves the archive",
        ),
        (
            "hardlink-up",
            special("evil", b'1', "../x"),
            "leaves the archive",
        ),
        ("char-device", special("dev", b'3', ""), "character device"),
        ("fifo", special("fifo", b'6', ""), "FIFO"),
        ("twice", file("index.json", b"{}"), "given twice"),
    ];
    for (label, bad, words) in cases {
        let mut entries = raws(&good);
        entries.push(bad);
        let path = dir.path().join(format!("{label}.tar"));
        std::fs::write(&path, tar(&entries)).unwrap();
        refused(&path, &name, words);
    }
}

#[test]
fn lies_about_bytes_and_sizes_and_truncations_fail() {
    let reg = Registry::start(RegistryConfig::anonymous());
    let dir = tempfile::tempdir().unwrap();
    let good = good_entries(&reg, dir.path());
    let name = format!("{}/app:1.0", reg.host());
    // The biggest blob is the layer: flip a byte of it.
    let layer = good
        .iter()
        .filter(|(n, _)| n.starts_with("blobs/"))
        .max_by_key(|(_, d)| d.len())
        .unwrap()
        .0
        .clone();
    let mut flipped = raws(&good);
    for r in flipped.iter_mut().filter(|r| r.name == layer.as_bytes()) {
        r.data[100] ^= 0xff;
    }
    let path = dir.path().join("flipped.tar");
    std::fs::write(&path, tar(&flipped)).unwrap();
    refused(&path, &name, "digest");

    // A header saying more than follows, at the end of the archive.
    for (label, claimed) in [("lying-size", 1u64 << 20), ("terabyte", 1u64 << 40)] {
        let mut entries = raws(&good);
        entries.push(Raw {
            claimed: Some(claimed),
            ..file("blobs/sha256/ffff", b"short")
        });
        let mut bytes = tar(&entries);
        bytes.truncate(bytes.len() - 1024);
        let path = dir.path().join(format!("{label}.tar"));
        std::fs::write(&path, bytes).unwrap();
        refused(&path, &name, "truncated");
    }
    // A header saying less than follows: the rest reads as a broken header.
    let mut entries = raws(&good);
    entries.push(Raw {
        claimed: Some(10),
        ..file("blobs/sha256/eeee", &vec![b'x'; 4096])
    });
    let path = dir.path().join("short-size.tar");
    std::fs::write(&path, tar(&entries)).unwrap();
    refused(&path, &name, "checksum");

    let whole = tar(&raws(&good));
    let path = dir.path().join("truncated.tar");
    std::fs::write(&path, &whole[..whole.len() / 2]).unwrap();
    let dst = Registry::start(RegistryConfig::anonymous());
    let (code, _, err) = run(&[
        "copy",
        &format!("oci-archive:{}:{name}", path.display()),
        &dst.image("got:1.0"),
    ]);
    assert_ne!(code, 0, "a truncated archive was accepted");
    assert!(err.contains("truncated.tar"), "{err}");
    assert!(tags_of(&dst.image("got")).is_empty());

    let path = dir.path().join("noise.tar");
    std::fs::write(&path, image::noise(7, 64 * 1024)).unwrap();
    refused(&path, &name, "tar");
}

#[test]
fn oversized_metadata_bombs_and_missing_files_are_refused() {
    let reg = Registry::start(RegistryConfig::anonymous());
    let dir = tempfile::tempdir().unwrap();
    let good = good_entries(&reg, dir.path());
    let name = format!("{}/app:1.0", reg.host());
    // index.json past the 64 MiB cap.
    let mut entries: Vec<Raw> = raws(&good)
        .into_iter()
        .filter(|r| r.name != b"index.json")
        .collect();
    let mut huge = b"{\"manifests\": [], \"pad\": \"".to_vec();
    huge.resize(65 * 1024 * 1024, b' ');
    huge.extend_from_slice(b"\"}");
    entries.insert(0, file("index.json", &huge));
    let path = dir.path().join("huge-index.tar");
    std::fs::write(&path, tar(&entries)).unwrap();
    refused(&path, &name, "more than");

    // A zstd bomb: 300 MiB of zeros in one entry, a few KiB compressed.
    let path = dir.path().join("bomb.tar.zst");
    {
        let out = std::fs::File::create(&path).unwrap();
        let mut z = zstd::stream::write::Encoder::new(out, 3).unwrap();
        let size: u64 = 300 * 1024 * 1024;
        let mut h = header(&Raw {
            claimed: Some(size),
            ..file("blobs/sha256/0000", b"")
        });
        std::io::Write::write_all(&mut z, &h).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..300 {
            std::io::Write::write_all(&mut z, &zeros).unwrap();
        }
        h = [0u8; 512];
        std::io::Write::write_all(&mut z, &h).unwrap();
        std::io::Write::write_all(&mut z, &h).unwrap();
        z.finish().unwrap();
    }
    assert!(std::fs::metadata(&path).unwrap().len() < 1024 * 1024);
    refused(&path, &name, "decompression bomb");

    // A docker-archive whose manifest.json names a layer it lacks.
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]}}"#;
    let manifest = br#"[{"Config":"c.json","RepoTags":["r.io/x:1"],"Layers":["missing.tar"]}]"#;
    let path = dir.path().join("docker-missing.tar");
    std::fs::write(
        &path,
        tar(&[file("c.json", config), file("manifest.json", manifest)]),
    )
    .unwrap();
    let dst = Registry::start(RegistryConfig::anonymous());
    let (code, _, err) = run(&[
        "copy",
        &format!("docker-archive:{}:r.io/x:1", path.display()),
        &dst.image("got:1.0"),
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("missing.tar") && err.contains("not in the archive"),
        "{err}"
    );
    assert!(tags_of(&dst.image("got")).is_empty());
}

#[test]
fn a_compressed_archive_refused_late_in_its_pass_moves_no_tag() {
    let reg = Registry::start(RegistryConfig::anonymous());
    let dir = tempfile::tempdir().unwrap();
    let good = good_entries(&reg, dir.path());
    let name = format!("{}/app:1.0", reg.host());
    // A whole image first, then a name that leaves the archive: read in one
    // pass, the image's blobs may move early, but no tag before the end.
    let mut entries = raws(&good);
    entries.push(file("blobs/sha256/pad", &image::noise(9, 2 * 1024 * 1024)));
    entries.push(file("../escape", b"x"));
    let plain = tar(&entries);
    let path = dir.path().join("late.tar.zst");
    std::fs::write(&path, zstd::encode_all(plain.as_slice(), 3).unwrap()).unwrap();
    refused(&path, &name, "`..`");
}
