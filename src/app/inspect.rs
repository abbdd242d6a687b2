//! `ocirepl inspect` and `ocirepl tags`: read-only views of a registry or
//! layout, for people and (with `--output json`) for machines.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde::Serialize;

use super::{EXIT_OK, access, parse_ref};
use crate::cli::{InspectArgs, Output, TagsArgs};
use crate::copy::{ReferrerVia, find_referrers, image_platform};
use crate::credentials::Env;
use crate::manifest::{Parsed, RawManifest};
use crate::plan::DEFAULT_TAG;
use crate::reference::{ImageRef, LayoutKind, LayoutRef, ManifestRef};
use crate::report::human_bytes;
use crate::store::layout::LayoutStore;
use crate::store::{Role, Store, Stores};

#[derive(Serialize)]
struct Entry {
    digest: String,
    media_type: String,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<String>,
}

#[derive(Serialize)]
struct Inspection {
    reference: String,
    digest: String,
    media_type: String,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact_type: Option<String>,
    platforms: Vec<String>,
    children: Vec<Entry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<Entry>,
    layers: Vec<Entry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    referrers: Option<Vec<Referrer>>,
}

#[derive(Serialize)]
struct Referrer {
    artifact_type: Option<String>,
    digest: String,
    size: u64,
    media_type: String,
    /// `referrers` (the API or the tag schema) or the cosign tag.
    found_in: String,
    annotations: serde_json::Map<String, serde_json::Value>,
}

/// What refers to `subject` (every place ocirepl copies from).
async fn referrers(store: &dyn Store, subject: &crate::digest::Digest) -> Result<Vec<Referrer>> {
    let found = find_referrers(store, subject, &[])
        .await
        .with_context(|| format!("listing the referrers of {subject}"))?;
    Ok(found
        .into_iter()
        .map(|f| Referrer {
            artifact_type: f.listed.artifact_type,
            digest: f.listed.digest.to_string(),
            size: f.listed.size,
            media_type: f.listed.media_type,
            found_in: match f.place {
                ReferrerVia::Listed => "referrers".to_string(),
                ReferrerVia::CosignTag(t) => format!("tag {t}"),
            },
            annotations: f.listed.annotations,
        })
        .collect())
}

/// Where a reference points inside its store.
fn locate(r: &ImageRef) -> ManifestRef {
    match (r.digest(), r.tag()) {
        (Some(d), _) => ManifestRef::Digest(d.clone()),
        (None, t) => ManifestRef::Tag(t.unwrap_or(DEFAULT_TAG).to_string()),
    }
}

pub(super) async fn inspect(args: InspectArgs) -> Result<ExitCode> {
    let r = parse_ref(&args.reference, "REF")?;
    let mut access = access::source(&args.src, args.authfile.as_ref())?;
    access.prefer_index = args.prefer_index;
    let store = Stores::new(Env::from_process()).open(&r, &access, Role::Source)?;
    let m = store
        .manifest_get(&locate(&r))
        .await
        .with_context(|| format!("reading the manifest of {r}"))?;
    if args.raw {
        let mut out = std::io::stdout().lock();
        out.write_all(&m.bytes).context("writing to stdout")?;
        out.flush().context("writing to stdout")?;
        return Ok(ExitCode::from(EXIT_OK));
    }
    let mut info = describe(store.as_ref(), &r, &m).await?;
    if args.referrers {
        info.referrers = Some(referrers(store.as_ref(), &m.digest).await?);
    }
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&info)?),
        Output::Human => print!("{}", human(&info)),
    }
    Ok(ExitCode::from(EXIT_OK))
}

async fn describe(store: &dyn Store, r: &ImageRef, m: &RawManifest) -> Result<Inspection> {
    let mut info = Inspection {
        reference: r.to_string(),
        digest: m.digest.to_string(),
        media_type: m.media_type.to_string(),
        size: m.size(),
        artifact_type: None,
        platforms: Vec::new(),
        children: Vec::new(),
        config: None,
        layers: Vec::new(),
        referrers: None,
    };
    let entry = |d: &crate::manifest::Descriptor| Entry {
        digest: d.digest.to_string(),
        media_type: d.media_type.clone(),
        size: d.size,
        platform: d.platform.as_ref().map(ToString::to_string),
    };
    match m.parse().with_context(|| format!("parsing {}", m.digest))? {
        Parsed::Index(index) => {
            info.children = index.manifests.iter().map(entry).collect();
            info.platforms = info
                .children
                .iter()
                .filter_map(|c| c.platform.clone())
                .collect();
        }
        Parsed::Image(image) => {
            info.artifact_type = image.config.artifact_type.clone().or_else(|| {
                serde_json::from_slice::<serde_json::Value>(&m.bytes)
                    .ok()
                    .and_then(|v| v["artifactType"].as_str().map(str::to_string))
            });
            info.config = Some(entry(&image.config));
            info.layers = image.layers.iter().map(entry).collect();
            // Only image configs name a platform; artifacts do not.
            if let Ok(p) = image_platform(store, m).await {
                info.platforms.push(p.to_string());
            }
        }
        Parsed::Schema1(s1) => {
            info.layers = s1
                .fs_layers
                .iter()
                .rev()
                .map(|l| Entry {
                    digest: l.blob_sum.to_string(),
                    media_type: String::new(),
                    size: 0,
                    platform: None,
                })
                .collect();
        }
        Parsed::Opaque => {}
    }
    Ok(info)
}

fn human(i: &Inspection) -> String {
    let mut s = format!(
        "Name:       {}\nDigest:     {}\nMediaType:  {}\nSize:       {}\n",
        i.reference, i.digest, i.media_type, i.size
    );
    if let Some(a) = &i.artifact_type {
        s.push_str(&format!("Artifact:   {a}\n"));
    }
    if !i.platforms.is_empty() {
        s.push_str(&format!("Platforms:  {}\n", i.platforms.join(", ")));
    }
    if !i.children.is_empty() {
        s.push_str("Children:\n");
        for c in &i.children {
            s.push_str(&format!(
                "  {}  {:<16} {}  {}\n",
                c.digest,
                c.platform.as_deref().unwrap_or("-"),
                c.media_type,
                c.size
            ));
        }
    }
    if let Some(c) = &i.config {
        s.push_str(&format!("Config:     {} ({})\n", c.digest, c.media_type));
    }
    if let Some(list) = &i.referrers {
        s.push_str(&format!("Referrers:  {}\n", list.len()));
        for r in list {
            s.push_str(&format!(
                "  {}  {}  {}  ({})\n",
                r.digest,
                r.artifact_type.as_deref().unwrap_or("-"),
                r.size,
                r.found_in
            ));
            for (k, v) in &r.annotations {
                s.push_str(&format!(
                    "      {k}: {}\n",
                    v.as_str().unwrap_or(&v.to_string())
                ));
            }
        }
    }
    if !i.layers.is_empty() {
        let total: u64 = i.layers.iter().map(|l| l.size).sum();
        s.push_str(&format!(
            "Layers:     {} ({})\n",
            i.layers.len(),
            human_bytes(total)
        ));
        for l in &i.layers {
            s.push_str(&format!("  {}  {}\n", l.digest, l.size));
        }
    }
    s
}

pub(super) async fn tags(args: TagsArgs) -> Result<ExitCode> {
    let r = parse_ref(&args.repository, "REPO")?;
    let mut access = access::source(&args.src, args.authfile.as_ref())?;
    access.page_size = args.page_size;
    let stores = Stores::new(Env::from_process());
    let store = stores.open(&r, &access, Role::Source)?;
    let tags = store
        .tags()
        .await
        .with_context(|| format!("listing the tags of {r}"))?;
    // A layout or archive named without a repository may hold several:
    // its images are listed by their full names.
    let names = match &r {
        ImageRef::Layout(l) if l.repository.is_none() => Some(layout_names(&stores, l).await?),
        _ => None,
    };
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::json!({"repository": r.to_string(), "tags": tags, "images": names})
        ),
        Output::Human => {
            for t in names.as_ref().unwrap_or(&tags) {
                println!("{t}");
            }
        }
    }
    Ok(ExitCode::from(EXIT_OK))
}

/// Every image a layout or archive holds, by name.
async fn layout_names(stores: &Stores, l: &LayoutRef) -> Result<Vec<String>> {
    let names = match l.kind {
        LayoutKind::Dir => LayoutStore::open(&l.path, false)?
            .entries()?
            .iter()
            .filter(|e| e.tag.is_some())
            .map(|e| e.describe())
            .collect(),
        _ => stores.archive_reader(&l.path)?.scoped(None).names().await?,
    };
    Ok(names)
}
