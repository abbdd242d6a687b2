//! Archives at the end of a run: every archive the run wrote is packed
//! (`store::Stores::finish_archives`), and what was written is said on
//! stderr: the files, the inventory beside them, what was left out, and
//! what a reader of the archive should know.

use crate::report::human_bytes;
use crate::store::Stores;

/// Packs the run's archives; `false` when one could not be written.
pub(super) fn finish(stores: &Stores, quiet: bool, print: &dyn Fn(&str)) -> bool {
    let mut ok = true;
    for (path, result) in stores.finish_archives() {
        match result {
            Ok(p) => {
                if quiet {
                    continue;
                }
                let files: Vec<String> = p.files.iter().map(|f| f.display().to_string()).collect();
                let mut line = format!(
                    "wrote {} ({} images, {} manifests, {} blobs, {}",
                    files.join(", "),
                    p.images,
                    p.manifests,
                    p.blobs,
                    human_bytes(p.bytes)
                );
                if p.omitted > 0 {
                    line.push_str(&format!(
                        "; {} left out, carried by earlier exports",
                        p.omitted
                    ));
                }
                line.push_str(&format!("); inventory {}", p.inventory.display()));
                print(&line);
                for n in &p.notes {
                    print(&format!("note: {n}"));
                }
            }
            Err(e) => {
                ok = false;
                print(&format!(
                    "error: writing the archive {}: {e}",
                    path.display()
                ));
            }
        }
    }
    ok
}

/// `--since`, `--volume-size` and `--compress` → how archives are packed;
/// an inventory or size that cannot be read is a usage error.
pub(super) fn pack_options(
    args: &crate::cli::ArchiveArgs,
) -> anyhow::Result<crate::store::archive::PackOptions> {
    use crate::cli::CompressArg;
    use crate::store::archive::{Compression, Inventory, PackOptions};
    let since = args
        .since
        .iter()
        .map(|p| {
            Inventory::read(p)
                .map(|inv| (p.clone(), inv))
                .map_err(|e| super::UsageError(format!("--since: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let volume_size = args
        .volume_size
        .as_deref()
        .map(crate::size::parse_size)
        .transpose()
        .map_err(|e| super::UsageError(format!("--volume-size {e}")))?;
    if volume_size.is_some_and(|v| v < 64 * 1024) {
        return Err(super::UsageError("--volume-size: at least 64KiB".into()).into());
    }
    Ok(PackOptions {
        compression: match args.compress {
            CompressArg::None => None,
            CompressArg::Gzip => Some(Compression::Gzip),
            CompressArg::Zstd => Some(Compression::Zstd),
        },
        volume_size,
        since,
    })
}
