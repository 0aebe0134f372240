//! `GET /recordings/{id}/{file}`: a recording's playlist, segments and state file, streamed
//! from its folder. It only reads files; it never starts or stops a recording.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::recording::ids::is_safe_segment;
use crate::state::AppState;

/// `GET /recordings/{id}/{file}`: a recording's playlist, segments and state, to anyone with
/// its (unguessable) id.
pub(crate) async fn recording_file(
    State(state): State<AppState>,
    Path((id, file)): Path<(String, String)>,
) -> Response {
    let not_found = || (StatusCode::NOT_FOUND, "not found").into_response();
    if !is_safe_segment(&id) || !is_safe_segment(&file) {
        return not_found();
    }
    let path = state.recordings.dir().join(&id).join(&file);
    let Ok(opened) = tokio::fs::File::open(&path).await else {
        return not_found();
    };
    let Ok(metadata) = opened.metadata().await else {
        return not_found();
    };
    if !metadata.is_file() {
        return not_found();
    }
    let extension = file.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
    let (content_type, cache) = match extension {
        "m3u8" => ("application/vnd.apple.mpegurl", Some("no-cache")),
        "m4s" => ("video/iso.segment", None),
        "mp4" => ("video/mp4", None),
        "ts" => ("video/mp2t", None),
        "json" => ("application/json", Some("no-cache")),
        _ => ("application/octet-stream", None),
    };
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(opened));
    let mut response = (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_LENGTH, metadata.len().to_string()),
        ],
        body,
    )
        .into_response();
    if let Some(cache) = cache {
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static(cache),
        );
    }
    // In a cluster the recordings page of one node plays recordings kept on another. The
    // unguessable id in the URL is the capability, whichever page reads it.
    if state.cluster.is_some() {
        response.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            header::HeaderValue::from_static("*"),
        );
    }
    response
}
