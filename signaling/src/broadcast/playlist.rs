//! The text of a broadcast's playlists: the multivariant (master) playlist listing the ladder,
//! and a rendition's low-latency media playlist (`EXT-X-PART`, `EXT-X-PRELOAD-HINT`,
//! `EXT-X-SERVER-CONTROL` with blocking reload, rendition reports). Pure formatting from plain
//! views: it never holds media or waits.

use std::fmt::Write;

use protocol::broadcast::{LADDER, PART_TARGET_SECONDS, SEGMENT_SECONDS};

/// The picture rate of every video rendition.
pub const FRAME_RATE: f64 = 15.0;
/// How far behind the live edge players start, in seconds: three part targets.
pub const PART_HOLD_BACK: f64 = 3.0 * PART_TARGET_SECONDS;

/// One part as a playlist lists it.
pub struct PartView {
    pub duration: f64,
    pub independent: bool,
}

/// One segment as a playlist lists it: complete ones get `EXTINF`; recent ones their parts.
pub struct SegmentView {
    pub msn: u64,
    pub duration: f64,
    pub complete: bool,
    pub parts: Vec<PartView>,
}

/// A rendition's state for its media playlist.
pub struct TrackView<'a> {
    pub segments: &'a [SegmentView],
    /// The other renditions' live edges: (name, (last msn, last part)).
    pub reports: &'a [(&'static str, (u64, usize))],
    pub ended: bool,
}

/// A rendition's media playlist.
pub fn media(track: &TrackView) -> String {
    let mut out = String::with_capacity(2048);
    let first = track.segments.first().map_or(0, |s| s.msn);
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:{SEGMENT_SECONDS}\n\
         #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={PART_HOLD_BACK:.3}\n\
         #EXT-X-PART-INF:PART-TARGET={PART_TARGET_SECONDS:.3}\n\
         #EXT-X-MEDIA-SEQUENCE:{first}\n#EXT-X-MAP:URI=\"init.mp4\"\n"
    );
    for segment in track.segments {
        for (i, part) in segment.parts.iter().enumerate() {
            let _ = writeln!(
                out,
                "#EXT-X-PART:DURATION={:.3},URI=\"s{}.p{i}.m4s\"{}",
                part.duration,
                segment.msn,
                if part.independent {
                    ",INDEPENDENT=YES"
                } else {
                    ""
                }
            );
        }
        if segment.complete {
            let _ = write!(
                out,
                "#EXTINF:{:.3},\ns{}.m4s\n",
                segment.duration, segment.msn
            );
        }
    }
    if track.ended {
        out.push_str("#EXT-X-ENDLIST\n");
        return out;
    }
    if let Some(last) = track.segments.last() {
        let _ = writeln!(
            out,
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"s{}.p{}.m4s\"",
            last.msn,
            last.parts.len()
        );
    }
    for (name, (msn, part)) in track.reports {
        let _ = writeln!(
            out,
            "#EXT-X-RENDITION-REPORT:URI=\"../{name}/index.m3u8\",LAST-MSN={msn},LAST-PART={part}"
        );
    }
    out
}

/// The multivariant playlist: every rendition with its peak `BANDWIDTH`, `RESOLUTION` and
/// `CODECS` (`codecs[i]`: rendition i's video codec), under `prefix` (the broadcast's id).
pub fn master(prefix: &str, codecs: &[Option<String>]) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for (rendition, codec) in LADDER.iter().zip(codecs) {
        let codecs = match codec {
            Some(video) => format!("{video},mp4a.40.2"),
            None => "mp4a.40.2".to_owned(),
        };
        let _ = write!(out, "#EXT-X-STREAM-INF:BANDWIDTH={}", rendition.bandwidth());
        if let Some((width, height)) = rendition.size {
            let _ = write!(
                out,
                ",RESOLUTION={width}x{height},FRAME-RATE={FRAME_RATE:.3}"
            );
        }
        let _ = write!(
            out,
            ",CODECS=\"{codecs}\",NAME=\"{}\"\n{prefix}/{}/index.m3u8\n",
            rendition.name, rendition.name
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_media_playlist_has_parts_a_hint_and_reports() {
        let segments = [
            SegmentView {
                msn: 4,
                duration: 2.0,
                complete: true,
                parts: vec![],
            },
            SegmentView {
                msn: 5,
                duration: 0.8,
                complete: false,
                parts: vec![
                    PartView {
                        duration: 0.4,
                        independent: true,
                    },
                    PartView {
                        duration: 0.4,
                        independent: false,
                    },
                ],
            },
        ];
        let text = media(&TrackView {
            segments: &segments,
            reports: &[("360p", (5, 1))],
            ended: false,
        });
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n\
             #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500\n\
             #EXT-X-PART-INF:PART-TARGET=0.500\n#EXT-X-MEDIA-SEQUENCE:4\n\
             #EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2.000,\ns4.m4s\n\
             #EXT-X-PART:DURATION=0.400,URI=\"s5.p0.m4s\",INDEPENDENT=YES\n\
             #EXT-X-PART:DURATION=0.400,URI=\"s5.p1.m4s\"\n\
             #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"s5.p2.m4s\"\n\
             #EXT-X-RENDITION-REPORT:URI=\"../360p/index.m3u8\",LAST-MSN=5,LAST-PART=1\n"
        );
    }

    #[test]
    fn the_master_playlist_lists_the_ladder() {
        let codecs = [
            Some("avc1.640028".to_owned()),
            Some("avc1.4d401f".to_owned()),
            Some("avc1.4d401e".to_owned()),
            None,
        ];
        let text = master("b1", &codecs);
        assert!(text.contains(
            "RESOLUTION=1920x1080,FRAME-RATE=15.000,CODECS=\"avc1.640028,mp4a.40.2\",NAME=\"1080p\"\nb1/1080p/index.m3u8\n"
        ));
        assert!(text.contains("CODECS=\"mp4a.40.2\",NAME=\"audio\"\nb1/audio/index.m3u8\n"));
        assert_eq!(text.matches("#EXT-X-STREAM-INF").count(), 4);
    }
}
