//! Serving a broadcast to viewers (the watch page itself is a static file): the multivariant
//! playlist (`/watch/{room}/live.m3u8`), and each rendition's media playlist, init segment,
//! segments and parts (`/watch/{room}/{id}/{rendition}/{file}`), with blocking playlist reload
//! (`_HLS_msn`, `_HLS_part`) and blocking preload hints. Playlists may be cached briefly,
//! media for a year (their URLs never change meaning). A broadcast that is not public needs a
//! token for the room (`Authorization: Bearer` or `?token=`). It reads streams only; it never
//! touches a sidecar or the media plane.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use protocol::broadcast::LADDER;

use crate::broadcast::playlist;
use crate::broadcast::stream::{Missing, Want};
use crate::broadcast::supervisor::Live;
use crate::state::AppState;

const PLAYLIST: &str = "application/vnd.apple.mpegurl";
/// Media never changes under its URL (the broadcast id is in it).
const IMMUTABLE: &str = "max-age=31536000, immutable";

/// `GET /watch/{room}/live.m3u8`: the multivariant playlist, once every rendition has begun.
pub(crate) async fn master(
    State(state): State<AppState>,
    Path(room): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let live = match admit(&state, &room, &query, &headers) {
        Ok(live) => live,
        Err(response) => return response,
    };
    let Some(codecs) = live.stream.ready().await else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the broadcast is starting or has ended; retry in a few seconds\n",
        );
    };
    let body = playlist::master(&live.stream.id, &codecs);
    respond(&live, Bytes::from(body), PLAYLIST, "max-age=2")
}

/// `GET /watch/{room}/{id}/{rendition}/{file}`: a media playlist, init segment, segment or part.
pub(crate) async fn media(
    State(state): State<AppState>,
    Path((room, id, rendition, file)): Path<(String, String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let live = match admit(&state, &room, &query, &headers) {
        Ok(live) => live,
        Err(response) => return response,
    };
    let not_found = || text(StatusCode::NOT_FOUND, "no such file in this broadcast\n");
    if live.stream.id != id {
        return text(
            StatusCode::NOT_FOUND,
            "this broadcast has ended; load live.m3u8 again for the current one\n",
        );
    }
    let Some(index) = LADDER.iter().position(|r| r.name == rendition) else {
        return not_found();
    };
    let Some(want) = parse_file(&file, &query) else {
        return match file.as_str() {
            "index.m3u8" => text(
                StatusCode::BAD_REQUEST,
                "_HLS_msn and _HLS_part must be whole numbers, and _HLS_part needs _HLS_msn\n",
            ),
            _ => not_found(),
        };
    };
    let (content_type, cache) = match want {
        // A blocking request names a future playlist: caches may keep it a little longer.
        Want::Playlist { .. } if query.contains_key("_HLS_msn") => (PLAYLIST, "max-age=6"),
        Want::Playlist { .. } => (PLAYLIST, "max-age=1"),
        Want::Init => ("video/mp4", IMMUTABLE),
        Want::Segment { .. } | Want::Part { .. } => ("video/iso.segment", IMMUTABLE),
    };
    let want = match want {
        // A plain playlist request is answered with the latest as soon as there is a part.
        Want::Playlist { msn: u64::MAX, .. } => Want::Playlist {
            msn: 0,
            part: Some(0),
        },
        other => other,
    };
    match live.stream.get(index, want).await {
        Ok(bytes) => respond(&live, bytes, content_type, cache),
        Err(Missing::NotFound) => not_found(),
        Err(Missing::TooFarAhead) => text(
            StatusCode::BAD_REQUEST,
            "_HLS_msn is more than two segments beyond the live edge\n",
        ),
        Err(Missing::Timeout) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the broadcast did not produce it in time; reload the playlist\n",
        ),
    }
}

/// What a file name (and the blocking-reload query) asks for; `None` when malformed.
fn parse_file(file: &str, query: &HashMap<String, String>) -> Option<Want> {
    if file == "index.m3u8" {
        let number = |key: &str| query.get(key).map(|v| v.parse::<u64>().ok());
        return match (number("_HLS_msn"), number("_HLS_part")) {
            (None, None) => Some(Want::Playlist {
                msn: u64::MAX,
                part: None,
            }),
            (Some(Some(msn)), None) => Some(Want::Playlist { msn, part: None }),
            (Some(Some(msn)), Some(Some(part))) => Some(Want::Playlist {
                msn,
                part: Some(usize::try_from(part).ok()?),
            }),
            _ => None,
        };
    }
    if file == "init.mp4" {
        return Some(Want::Init);
    }
    let name = file.strip_prefix('s')?.strip_suffix(".m4s")?;
    match name.split_once(".p") {
        Some((msn, part)) => Some(Want::Part {
            msn: msn.parse().ok()?,
            part: part.parse().ok()?,
        }),
        None => Some(Want::Segment {
            msn: name.parse().ok()?,
        }),
    }
}

/// The room's broadcast, if this request may watch it.
#[allow(clippy::result_large_err)]
fn admit(
    state: &AppState,
    room: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Live, Response> {
    let Some(live) = state.broadcasts.get(room) else {
        return Err(text(
            StatusCode::NOT_FOUND,
            "this room is not broadcasting (an admin starts it with POST \
             /api/rooms/{room}/broadcast)\n",
        ));
    };
    if live.info.public {
        return Ok(live);
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .or(query.get("token").map(String::as_str))
        .unwrap_or_default();
    if token.is_empty() {
        return Err(text(
            StatusCode::UNAUTHORIZED,
            "this broadcast is not public: send a viewer token for the room (Authorization: \
             Bearer, or ?token=)\n",
        ));
    }
    match state.tokens.verify(token) {
        // A token for this room, or an admin token for every room.
        Ok(claims)
            if claims.room == room || (claims.room.is_empty() && claims.grants.room_admin) =>
        {
            Ok(live)
        }
        Ok(_) => Err(text(
            StatusCode::FORBIDDEN,
            "this token is for another room\n",
        )),
        Err(error) => Err(text(
            StatusCode::UNAUTHORIZED,
            &format!("the viewer token is not valid ({error}); ask for a new one\n"),
        )),
    }
}

fn respond(live: &Live, body: Bytes, content_type: &'static str, cache: &str) -> Response {
    let visibility = if live.info.public {
        "public"
    } else {
        "private"
    };
    let mut response = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_str(&format!("{visibility}, {cache}"))
                    .unwrap_or(HeaderValue::from_static("no-cache")),
            ),
        ],
        body,
    )
        .into_response();
    if live.info.public {
        // Any page (another player, a CDN's test page) may play a public broadcast.
        response.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
    }
    response
}

fn text(status: StatusCode, message: &str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        message.to_owned(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_and_blocking_queries_parse() {
        let none = HashMap::new();
        assert_eq!(parse_file("init.mp4", &none), Some(Want::Init));
        assert_eq!(
            parse_file("s12.m4s", &none),
            Some(Want::Segment { msn: 12 })
        );
        assert_eq!(
            parse_file("s12.p3.m4s", &none),
            Some(Want::Part { msn: 12, part: 3 })
        );
        let blocking: HashMap<String, String> = [
            ("_HLS_msn".into(), "7".into()),
            ("_HLS_part".into(), "2".into()),
        ]
        .into();
        assert_eq!(
            parse_file("index.m3u8", &blocking),
            Some(Want::Playlist {
                msn: 7,
                part: Some(2)
            })
        );
        let bad: HashMap<String, String> = [("_HLS_part".into(), "2".into())].into();
        assert_eq!(parse_file("index.m3u8", &bad), None);
        for junk in ["s.m4s", "sx.p1.m4s", "s1.p.m4s", "../x", "s1.m4s.gz"] {
            assert_eq!(parse_file(junk, &none), None, "{junk}");
        }
    }
}
