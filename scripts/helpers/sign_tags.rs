//! Signs every tag of a repository as cosign does (a legacy `.sig`
//! manifest per image, one generated key), for the verify benchmark of
//! `scripts/bench.sh`. Writes the public key as `KEYDIR/bench.pub`.
//!
//! sign_tags HOST REPO KEYDIR < TAGS

#[allow(dead_code)]
#[path = "../../tests/support/cosign.rs"]
mod cosign;
#[allow(dead_code)]
#[path = "../../tests/support/http.rs"]
mod http;
#[allow(dead_code)]
#[path = "../../tests/support/image.rs"]
mod image;

use std::io::BufRead;

use cosign::{KeyPair, Layer};

fn main() {
    let mut args = std::env::args().skip(1);
    let (host, repo, dir) = match (args.next(), args.next(), args.next()) {
        (Some(h), Some(r), Some(d)) => (h, r, std::path::PathBuf::from(d)),
        _ => {
            eprintln!("usage: sign_tags HOST REPO KEYDIR < TAGS");
            std::process::exit(2);
        }
    };
    let key = KeyPair::generate();
    key.write_public(&dir, "bench.pub");
    let named = format!("{host}/{repo}");
    for tag in std::io::stdin().lock().lines() {
        let tag = tag.expect("a tag per line");
        let digest = http::manifest_digest(&host, &repo, &tag);
        cosign::push_sig(
            &host,
            &repo,
            &digest,
            &[Layer::keyed(&key, &named, &digest)],
        );
    }
}
