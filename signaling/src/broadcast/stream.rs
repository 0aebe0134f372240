//! One broadcast's low-latency HLS stream in memory ([`Stream`]): per rendition, the init
//! segment, a sliding window of segments made of partial segments, and the media playlist
//! rendered once per change. Readers wait for a part or a playlist update without polling
//! (blocking playlist reload, preload hints): each rendition has a `watch` channel that ticks on
//! every change. It never does I/O and never blocks on a reader: a viewer only ever clones
//! `Bytes`.

use std::collections::VecDeque;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use protocol::broadcast::{INDEPENDENT, LADDER, SEGMENT_START};
use tokio::sync::watch;

use crate::broadcast::playlist::{self, PartView, SegmentView, TrackView};

/// Complete segments kept (and listed) behind the live edge.
const WINDOW: usize = 8;
/// How long a request may wait for a part or playlist that is about to exist: three target
/// durations, as the LL-HLS specification asks.
pub const MAX_WAIT: Duration = Duration::from_secs(6);

struct Part {
    bytes: Bytes,
    duration: f64,
    independent: bool,
}

struct Segment {
    msn: u64,
    parts: Vec<Part>,
    /// The whole segment, once the next one has begun.
    whole: Option<Bytes>,
}

impl Segment {
    fn duration(&self) -> f64 {
        self.parts.iter().map(|p| p.duration).sum()
    }
}

#[derive(Default)]
struct Track {
    init: Option<Bytes>,
    /// `avc1.PPCCLL` of the init segment's video track.
    codec: Option<String>,
    /// Oldest first; the last one is in progress while the broadcast is live.
    segments: VecDeque<Segment>,
    playlist: Bytes,
}

impl Track {
    /// (msn, parts) of the segment in progress.
    fn edge(&self) -> Option<(u64, usize)> {
        self.segments.back().map(|s| (s.msn, s.parts.len()))
    }
}

struct State {
    tracks: Vec<Track>,
    ended: bool,
}

/// What a reader waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// The playlist once it lists segment `msn` (complete) or, with `part`, that part of it.
    Playlist { msn: u64, part: Option<usize> },
    /// A part's bytes.
    Part { msn: u64, part: usize },
    /// A whole segment's bytes.
    Segment { msn: u64 },
    /// The init segment.
    Init,
}

/// Why a request gets no bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Gone from the window, never to exist, or asked for too far ahead.
    NotFound,
    /// A blocking playlist request too far beyond the live edge (400 in the specification).
    TooFarAhead,
    /// Did not appear within [`MAX_WAIT`].
    Timeout,
}

/// One broadcast's stream.
pub struct Stream {
    /// An id of this broadcast, in every media URL, so caches never mix two broadcasts.
    pub id: String,
    state: RwLock<State>,
    changed: Vec<watch::Sender<u64>>,
}

impl Stream {
    pub fn new(id: String) -> Stream {
        Stream {
            id,
            state: RwLock::new(State {
                tracks: LADDER.iter().map(|_| Track::default()).collect(),
                ended: false,
            }),
            changed: LADDER.iter().map(|_| watch::channel(0).0).collect(),
        }
    }

    fn tick(&self, rendition: usize) {
        self.changed[rendition].send_modify(|n| *n += 1);
    }

    /// A rendition's init segment arrived.
    pub fn set_init(&self, rendition: usize, init: Bytes) {
        {
            let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
            let track = &mut state.tracks[rendition];
            track.codec = avc_codec(&init);
            track.init = Some(init);
        }
        self.tick(rendition);
    }

    /// One part arrived: it joins the segment in progress, or begins the next one.
    pub fn push_part(&self, rendition: usize, flags: u8, duration: f64, bytes: Bytes) {
        {
            let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
            let State { tracks, ended } = &mut *state;
            let track = &mut tracks[rendition];
            let part = Part {
                bytes,
                duration,
                independent: flags & INDEPENDENT != 0,
            };
            match track.segments.back_mut() {
                Some(current) if flags & SEGMENT_START == 0 => current.parts.push(part),
                _ => {
                    let msn = track.segments.back().map_or(0, |s| s.msn + 1);
                    if let Some(current) = track.segments.back_mut() {
                        current.whole = Some(concat(&current.parts));
                    }
                    track.segments.push_back(Segment {
                        msn,
                        parts: vec![part],
                        whole: None,
                    });
                    while track.segments.len() > WINDOW + 1 {
                        track.segments.pop_front();
                    }
                }
            }
            let reports = report_edges(tracks);
            let track = &mut tracks[rendition];
            track.playlist = render(track, rendition, &reports, *ended);
        }
        self.tick(rendition);
    }

    /// The broadcast is over: the segments in progress complete and playlists end.
    pub fn end(&self) {
        {
            let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
            state.ended = true;
            let reports = report_edges(&state.tracks);
            for (rendition, track) in state.tracks.iter_mut().enumerate() {
                if let Some(current) = track.segments.back_mut()
                    && current.whole.is_none()
                {
                    current.whole = Some(concat(&current.parts));
                }
                track.playlist = render(track, rendition, &reports, true);
            }
        }
        for rendition in 0..LADDER.len() {
            self.tick(rendition);
        }
    }

    /// Every rendition's video codec, once every rendition has its init segment.
    pub fn codecs(&self) -> Option<Vec<Option<String>>> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        state
            .tracks
            .iter()
            .map(|t| t.init.as_ref().map(|_| t.codec.clone()))
            .collect()
    }

    /// Waits until every rendition has its init segment (at most [`MAX_WAIT`]).
    pub async fn ready(&self) -> Option<Vec<Option<String>>> {
        let deadline = tokio::time::Instant::now() + MAX_WAIT;
        let mut changes: Vec<_> = self.changed.iter().map(|c| c.subscribe()).collect();
        loop {
            if let Some(codecs) = self.codecs() {
                return Some(codecs);
            }
            if self.is_ended() {
                return None;
            }
            let any =
                futures::future::select_all(changes.iter_mut().map(|c| Box::pin(c.changed())));
            if tokio::time::timeout_at(deadline, any).await.is_err() {
                return None;
            }
        }
    }

    pub fn is_ended(&self) -> bool {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .ended
    }

    /// The bytes a request wants, waiting (at most [`MAX_WAIT`]) for those about to exist.
    pub async fn get(&self, rendition: usize, want: Want) -> Result<Bytes, Missing> {
        let mut changes = self.changed[rendition].subscribe();
        let deadline = tokio::time::Instant::now() + MAX_WAIT;
        loop {
            match self.look(rendition, want) {
                Lookup::Found(bytes) => return Ok(bytes),
                Lookup::Missing(missing) => return Err(missing),
                Lookup::Soon => {}
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return Err(Missing::Timeout),
            }
        }
    }

    fn look(&self, rendition: usize, want: Want) -> Lookup {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        let track = &state.tracks[rendition];
        let ended = state.ended;
        let edge = track.edge();
        let find = |msn: u64| track.segments.iter().find(|s| s.msn == msn);
        match want {
            Want::Init => match &track.init {
                Some(init) => Lookup::Found(init.clone()),
                None if ended => Lookup::Missing(Missing::NotFound),
                None => Lookup::Soon,
            },
            Want::Playlist { msn, part } => {
                let Some((edge_msn, edge_parts)) = edge else {
                    return if ended {
                        Lookup::Missing(Missing::NotFound)
                    } else {
                        Lookup::Soon
                    };
                };
                let ready = ended
                    || msn < edge_msn
                    || (msn == edge_msn && part.is_some_and(|p| p < edge_parts));
                if ready {
                    Lookup::Found(track.playlist.clone())
                } else if msn > edge_msn + 2 {
                    Lookup::Missing(Missing::TooFarAhead)
                } else {
                    Lookup::Soon
                }
            }
            Want::Part { msn, part } => {
                if let Some(bytes) = find(msn).and_then(|s| s.parts.get(part)) {
                    return Lookup::Found(bytes.bytes.clone());
                }
                // The next part of the segment in progress, or the first of the next one (a
                // preload hint): it is about to exist.
                let next = edge.is_some_and(|(edge_msn, parts)| {
                    (msn == edge_msn && part == parts) || (msn == edge_msn + 1 && part == 0)
                });
                if next && !ended {
                    Lookup::Soon
                } else {
                    Lookup::Missing(Missing::NotFound)
                }
            }
            Want::Segment { msn } => match find(msn) {
                Some(Segment {
                    whole: Some(bytes), ..
                }) => Lookup::Found(bytes.clone()),
                Some(_) if !ended => Lookup::Soon,
                _ => Lookup::Missing(Missing::NotFound),
            },
        }
    }
}

enum Lookup {
    Found(Bytes),
    Missing(Missing),
    Soon,
}

fn concat(parts: &[Part]) -> Bytes {
    let mut whole = BytesMut::with_capacity(parts.iter().map(|p| p.bytes.len()).sum());
    for part in parts {
        whole.extend_from_slice(&part.bytes);
    }
    whole.freeze()
}

/// Each rendition's live edge: (last msn, last part index).
fn report_edges(tracks: &[Track]) -> Vec<Option<(u64, usize)>> {
    tracks
        .iter()
        .map(|t| t.edge().map(|(msn, parts)| (msn, parts.saturating_sub(1))))
        .collect()
}

fn render(track: &Track, rendition: usize, reports: &[Option<(u64, usize)>], ended: bool) -> Bytes {
    let newest = track.segments.back().map_or(0, |s| s.msn);
    let segments: Vec<SegmentView> = track
        .segments
        .iter()
        .map(|s| SegmentView {
            msn: s.msn,
            duration: s.duration(),
            complete: s.whole.is_some(),
            // Parts are listed for the last three segments only (about three target durations).
            parts: if newest - s.msn < 3 {
                s.parts
                    .iter()
                    .map(|p| PartView {
                        duration: p.duration,
                        independent: p.independent,
                    })
                    .collect()
            } else {
                Vec::new()
            },
        })
        .collect();
    let reports = reports
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != rendition)
        .filter_map(|(i, edge)| Some((LADDER[i].name, (*edge)?)))
        .collect::<Vec<_>>();
    Bytes::from(playlist::media(&TrackView {
        segments: &segments,
        reports: &reports,
        ended,
    }))
}

/// The `avc1.PPCCLL` codec string of an init segment's H.264 track, if it has one.
fn avc_codec(init: &[u8]) -> Option<String> {
    let at = init.windows(4).position(|w| w == b"avcC")?;
    let config = init.get(at + 4..at + 8)?;
    Some(format!(
        "avc1.{:02x}{:02x}{:02x}",
        config[1], config[2], config[3]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(n: u8) -> Bytes {
        Bytes::from(vec![n; 4])
    }

    #[tokio::test]
    async fn parts_make_segments_and_playlists_follow() {
        let stream = Stream::new("b1".into());
        stream.set_init(0, Bytes::from_static(b"....avcC\x01\x64\x00\x28...."));
        stream.push_part(0, INDEPENDENT | SEGMENT_START, 0.4, part(1));
        stream.push_part(0, 0, 0.4, part(2));
        let playlist = stream
            .get(
                0,
                Want::Playlist {
                    msn: 0,
                    part: Some(1),
                },
            )
            .await
            .unwrap();
        let text = std::str::from_utf8(&playlist).unwrap();
        assert!(
            text.contains("#EXT-X-PART:DURATION=0.400,URI=\"s0.p1.m4s\""),
            "{text}"
        );
        assert!(
            text.contains("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"s0.p2.m4s\""),
            "{text}"
        );
        assert_eq!(
            stream.get(0, Want::Part { msn: 0, part: 1 }).await,
            Ok(part(2))
        );
        // A segment is whole once the next begins.
        stream.push_part(0, INDEPENDENT | SEGMENT_START, 0.4, part(3));
        let whole = stream.get(0, Want::Segment { msn: 0 }).await.unwrap();
        assert_eq!(&whole[..], &[1, 1, 1, 1, 2, 2, 2, 2]);
        assert_eq!(
            stream.get(0, Want::Playlist { msn: 9, part: None }).await,
            Err(Missing::TooFarAhead)
        );
        assert_eq!(
            stream.get(0, Want::Part { msn: 0, part: 7 }).await,
            Err(Missing::NotFound)
        );
        let codecs = stream.codecs();
        assert!(codecs.is_none(), "the other renditions have no init yet");
    }

    #[tokio::test]
    async fn a_blocked_request_is_answered_when_its_part_arrives() {
        let stream = std::sync::Arc::new(Stream::new("b2".into()));
        stream.push_part(1, INDEPENDENT | SEGMENT_START, 0.4, part(1));
        let waiting = {
            let stream = std::sync::Arc::clone(&stream);
            tokio::spawn(async move {
                stream
                    .get(
                        1,
                        Want::Playlist {
                            msn: 0,
                            part: Some(1),
                        },
                    )
                    .await
            })
        };
        let preload = {
            let stream = std::sync::Arc::clone(&stream);
            tokio::spawn(async move { stream.get(1, Want::Part { msn: 0, part: 1 }).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        stream.push_part(1, 0, 0.4, part(2));
        let text = waiting.await.unwrap().unwrap();
        assert!(std::str::from_utf8(&text).unwrap().contains("s0.p1.m4s"));
        assert_eq!(preload.await.unwrap(), Ok(part(2)));
    }

    #[tokio::test]
    async fn an_ended_stream_ends_its_playlists_and_keeps_the_window() {
        let stream = Stream::new("b3".into());
        for i in 0..(WINDOW as u8 + 4) {
            stream.push_part(3, INDEPENDENT | SEGMENT_START, 0.4, part(i));
        }
        stream.end();
        let text = stream
            .get(
                3,
                Want::Playlist {
                    msn: 99,
                    part: None,
                },
            )
            .await
            .unwrap();
        let text = std::str::from_utf8(&text).unwrap().to_owned();
        assert!(text.ends_with("#EXT-X-ENDLIST\n"), "{text}");
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:3\n"), "{text}");
        assert_eq!(
            stream.get(3, Want::Segment { msn: 0 }).await,
            Err(Missing::NotFound)
        );
        assert!(stream.get(3, Want::Segment { msn: 11 }).await.is_ok());
    }
}
