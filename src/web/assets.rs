//! Static files compiled into the binary, served with long cache lifetimes and
//! a content hash in their URLs so a new build is never hidden by a cache.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;

#[derive(Embed)]
#[folder = "static/"]
#[exclude = "README.md"]
struct Assets;

fn hashes() -> &'static HashMap<String, String> {
    static HASHES: OnceLock<HashMap<String, String>> = OnceLock::new();
    HASHES.get_or_init(|| {
        Assets::iter()
            .filter_map(|path| {
                let file = Assets::get(&path)?;
                Some((
                    path.to_string(),
                    hex::encode(&file.metadata.sha256_hash()[..6]),
                ))
            })
            .collect()
    })
}

/// `/static/<path>?v=<hash>` for templates.
pub fn asset_url(path: &str) -> String {
    match hashes().get(path) {
        Some(hash) => format!("static/{path}?v={hash}"),
        None => format!("static/{path}"),
    }
}

pub async fn serve(Path(path): Path<String>) -> Response {
    let Some(file) = Assets::get(&path) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let mime = mime_guess::from_path(&path).first_or_octet_stream();
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_str(mime.as_ref())
                    .unwrap_or(HeaderValue::from_static("application/octet-stream")),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        file.data,
    )
        .into_response()
}

pub async fn favicon() -> Response {
    serve(Path("icon.svg".to_string())).await
}
