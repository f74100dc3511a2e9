//! `GET /api/v1/openapi.json`: the API's OpenAPI 3.1 document (kept next to this file; a test
//! checks it lists exactly the routes the router serves).

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The document.
pub(super) const DOCUMENT: &str = include_str!("openapi.json");

pub(super) async fn document() -> Response {
    let mut r = DOCUMENT.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}
