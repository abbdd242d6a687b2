//! Guarded pruning (`prune: true`): after a repository's copies succeeded,
//! target tags that the job's filters select and the source no longer has
//! are deleted; never a tag outside the filters, never more than
//! `prune_max` at once (then none, and the job fails saying which), and
//! nothing at all when the source lists no tag the filters select while
//! the target has some (an empty answer is likelier a broken source than
//! an emptied one). A listing that failed, was cut short or named another
//! repository never reaches here: the repository is then not pruned.
//!
//! Owns the one subtlety: a distribution registry deletes manifests by
//! digest, which removes every tag naming that digest. Where the registry
//! cannot untag (OCI 1.1 `DELETE .../manifests/TAG`), a stale tag that
//! shares its digest with a tag that stays is left, with the reason.
//! Never touches the source.

use std::collections::HashSet;

use super::filter::Filter;
use crate::reference::ManifestRef;
use crate::store::{Store, StoreError};

/// What pruning one repository did (or, planned, would do).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pruned {
    /// Tags deleted (planned: to delete).
    pub deleted: Vec<String>,
    /// Tags left, with why.
    pub kept: Vec<(String, String)>,
}

/// Target tags the filters select that the source no longer lists.
pub fn stale(filter: &Filter, source_tags: &[String], target_tags: &[String]) -> Vec<String> {
    let source: HashSet<&String> = source_tags.iter().collect();
    target_tags
        .iter()
        .filter(|t| filter.admits(t) && !source.contains(t))
        .cloned()
        .collect()
}

/// Why pruning stopped before deleting anything.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error(
        "{count} tags would be pruned, more than prune_max {max}; none was deleted: {}",
        tags.join(", ")
    )]
    TooMany {
        count: usize,
        max: usize,
        tags: Vec<String>,
    },
    #[error(
        "the source lists no tag the filters select while the target has {count} ({}); nothing was pruned: an empty listing is more often a broken source than an empty one (delete the target tags by hand if the source really is empty)",
        tags.join(", ")
    )]
    EmptySource { count: usize, tags: Vec<String> },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Prunes `dst` of the tags this run `owns` (all, without shards);
/// `plan_only` says what would go without deleting.
pub async fn prune(
    dst: &dyn Store,
    filter: &Filter,
    source_tags: &[String],
    max: usize,
    plan_only: bool,
    owns: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Pruned, PruneError> {
    let target_tags = match dst.tags().await {
        Ok(t) => t,
        Err(StoreError::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let mut stale = stale(filter, source_tags, &target_tags);
    stale.retain(|t| owns(t));
    if !stale.is_empty() && !source_tags.iter().any(|t| filter.admits(t)) {
        return Err(PruneError::EmptySource {
            count: stale.len(),
            tags: stale,
        });
    }
    if stale.len() > max {
        return Err(PruneError::TooMany {
            count: stale.len(),
            max,
            tags: stale,
        });
    }
    let mut done = Pruned::default();
    if plan_only {
        done.deleted = stale;
        return Ok(done);
    }
    let staying: Vec<&String> = target_tags.iter().filter(|t| !stale.contains(t)).collect();
    for tag in &stale {
        match dst.manifest_delete(&ManifestRef::Tag(tag.clone())).await {
            Ok(()) => done.deleted.push(tag.clone()),
            Err(StoreError::Unsupported(_)) => by_digest(dst, tag, &staying, &mut done).await?,
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(done)
}

/// The registry cannot untag: delete the manifest by digest, unless a tag
/// that stays names the same digest.
async fn by_digest(
    dst: &dyn Store,
    tag: &str,
    staying: &[&String],
    done: &mut Pruned,
) -> Result<(), StoreError> {
    let Some(digest) = dst
        .manifest_head(&ManifestRef::Tag(tag.to_string()))
        .await?
    else {
        return Ok(());
    };
    for other in staying {
        if dst
            .manifest_head(&ManifestRef::Tag((*other).clone()))
            .await?
            .as_ref()
            == Some(&digest)
        {
            done.kept.push((
                tag.to_string(),
                format!(
                    "shares {digest} with tag {other}, and the registry deletes by digest only (deleting it would take {other} too)"
                ),
            ));
            return Ok(());
        }
    }
    dst.manifest_delete(&ManifestRef::Digest(digest)).await?;
    done.deleted.push(tag.to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::filter::Pattern;

    #[test]
    fn only_tags_inside_the_filters_and_gone_from_the_source() {
        let f = Filter {
            include: vec![Pattern::parse("1.*").unwrap()],
            ..Filter::default()
        };
        let tags = |s: &[&str]| s.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        assert_eq!(
            stale(
                &f,
                &tags(&["1.1", "1.2"]),
                &tags(&["1.0", "1.1", "1.2", "local-only", "2.0"])
            ),
            tags(&["1.0"])
        );
    }
}
