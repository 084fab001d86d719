//! The style sheet and script, compiled into the binary and served under a name that
//! carries a hash of their content, so a browser may keep them for a year.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

struct Asset {
    /// `gatehouse.<hash>.css`
    name: String,
    content_type: &'static str,
    body: &'static [u8],
}

fn fingerprinted(stem: &str, ext: &str, content_type: &'static str, body: &'static [u8]) -> Asset {
    let hash = hex::encode(&Sha256::digest(body)[..6]);
    Asset {
        name: format!("{stem}.{hash}.{ext}"),
        content_type,
        body,
    }
}

static CSS: LazyLock<Asset> = LazyLock::new(|| {
    fingerprinted(
        "gatehouse",
        "css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/gatehouse.css"),
    )
});

static JS: LazyLock<Asset> = LazyLock::new(|| {
    fingerprinted(
        "gatehouse",
        "js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/gatehouse.js"),
    )
});

/// The style sheet's path.
pub(crate) fn css() -> String {
    format!("/assets/{}", CSS.name)
}

/// The script's path.
pub(crate) fn js() -> String {
    format!("/assets/{}", JS.name)
}

/// `GET /assets/{name}`: an asset by its fingerprinted name; anything else is 404.
pub(crate) async fn serve(name: web::Path<String>) -> HttpResponse {
    let Some(a) = [&*CSS, &*JS].into_iter().find(|a| a.name == *name) else {
        return HttpResponse::NotFound()
            .insert_header((header::CONTENT_TYPE, "text/plain; charset=utf-8"))
            .body("Not found");
    };
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, a.content_type))
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(a.body)
}
