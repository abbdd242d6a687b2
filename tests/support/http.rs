//! Plain HTTP to a test registry (manifests and blobs put the way any
//! client would), independent of ocirepl's own code; shared with the
//! benchmark helpers.

use super::image::sha256;

/// PUTs a manifest with plain HTTP (for shapes skopeo cannot seed, like a
/// nested index); independent of ocirepl's own code.
pub fn put_manifest_raw(
    image_host: &str,
    repo: &str,
    reference: &str,
    media_type: &str,
    bytes: &[u8],
) {
    let url = format!("http://{image_host}/v2/{repo}/manifests/{reference}");
    let body = bytes.to_vec();
    let media_type = media_type.to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let status = rt.block_on(async move {
        reqwest::Client::new()
            .put(&url)
            .header("Content-Type", media_type)
            .body(body)
            .send()
            .await
            .expect("PUT manifest")
            .status()
    });
    assert!(status.is_success(), "raw manifest PUT answered {status}");
}

/// Uploads a blob with plain HTTP (POST then PUT), independent of ocirepl.
pub fn upload_blob(host: &str, repo: &str, data: &[u8]) -> String {
    let digest = sha256(data);
    let (host, repo, body) = (host.to_string(), repo.to_string(), data.to_vec());
    let d = digest.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let c = reqwest::Client::new();
        let r = c
            .post(format!("http://{host}/v2/{repo}/blobs/uploads/"))
            .send()
            .await
            .unwrap();
        let loc = r.headers()["location"].to_str().unwrap().to_string();
        let url = if loc.starts_with("http") {
            loc
        } else {
            format!("http://{host}{loc}")
        };
        let sep = if url.contains('?') { '&' } else { '?' };
        let put = c
            .put(format!("{url}{sep}digest={d}"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(put.status().is_success(), "blob upload: {}", put.status());
    });
    digest
}

/// The digest a registry names for `reference` (a HEAD).
pub fn manifest_digest(host: &str, repo: &str, reference: &str) -> String {
    let url = format!("http://{host}/v2/{repo}/manifests/{reference}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async move {
        let r = reqwest::Client::new()
            .head(&url)
            .header(
                "Accept",
                "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, \
                 application/vnd.docker.distribution.manifest.v2+json, \
                 application/vnd.docker.distribution.manifest.list.v2+json",
            )
            .send()
            .await
            .expect("HEAD manifest");
        assert!(r.status().is_success(), "HEAD {url}: {}", r.status());
        r.headers()["docker-content-digest"]
            .to_str()
            .expect("digest header")
            .to_string()
    })
}
