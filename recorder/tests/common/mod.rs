//! What the recording tests check on a finished (or growing) recording: the playlist's rules,
//! ffprobe's view of the media, and the tiles of the composite picture; and waiting for a call
//! to form.

#![allow(dead_code)] // each test file uses a part

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use switchyard_tests::Server;

/// The parts of a media playlist the tests check.
#[derive(Debug)]
pub struct Playlist {
    pub target_duration: f64,
    pub playlist_type: Option<String>,
    pub media_sequence: u64,
    pub segments: Vec<(f64, String)>,
    pub program_date_times: usize,
    pub discontinuities: usize,
    pub ended: bool,
}

impl Playlist {
    pub fn read(path: &Path) -> Playlist {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        Playlist::parse(&text)
    }

    pub fn parse(text: &str) -> Playlist {
        let mut playlist = Playlist {
            target_duration: 0.0,
            playlist_type: None,
            media_sequence: 0,
            segments: Vec::new(),
            program_date_times: 0,
            discontinuities: 0,
            ended: false,
        };
        assert!(text.starts_with("#EXTM3U"), "not a playlist: {text}");
        let mut pending: Option<f64> = None;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
                playlist.target_duration = v.parse().expect("TARGETDURATION is a number");
            } else if let Some(v) = line.strip_prefix("#EXT-X-PLAYLIST-TYPE:") {
                playlist.playlist_type = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
                playlist.media_sequence = v.parse().expect("MEDIA-SEQUENCE is a number");
            } else if let Some(v) = line.strip_prefix("#EXTINF:") {
                let duration = v.split(',').next().unwrap_or_default();
                pending = Some(duration.parse().expect("EXTINF duration is a number"));
            } else if line.starts_with("#EXT-X-PROGRAM-DATE-TIME:") {
                playlist.program_date_times += 1;
            } else if line == "#EXT-X-DISCONTINUITY" {
                playlist.discontinuities += 1;
            } else if line == "#EXT-X-ENDLIST" {
                playlist.ended = true;
            } else if !line.starts_with('#') {
                let duration = pending.take().expect("a segment URI follows its EXTINF");
                playlist.segments.push((duration, line.to_owned()));
            }
        }
        playlist
    }

    pub fn duration(&self) -> f64 {
        self.segments.iter().map(|(d, _)| d).sum()
    }

    /// RFC 8216 rules the issue names: every EXTINF rounded is at most TARGETDURATION, segment
    /// names (their sequence numbers) increase, every segment has a PROGRAM-DATE-TIME.
    pub fn check_rules(&self) {
        assert!(
            (2.0..=4.0).contains(&self.target_duration),
            "target duration {} is not 2 to 4 s",
            self.target_duration
        );
        for (duration, uri) in &self.segments {
            assert!(
                duration.round() <= self.target_duration,
                "{uri}: EXTINF {duration} rounds above TARGETDURATION {}",
                self.target_duration
            );
        }
        let numbers: Vec<u64> = self
            .segments
            .iter()
            .map(|(_, uri)| {
                uri.trim_start_matches("seg_")
                    .trim_end_matches(".m4s")
                    .parse()
                    .expect("segment names carry their number")
            })
            .collect();
        assert!(
            numbers.windows(2).all(|w| w[1] > w[0]),
            "segment sequence is not monotonic: {numbers:?}"
        );
        assert!(
            self.program_date_times >= self.segments.len(),
            "{} PROGRAM-DATE-TIME tags for {} segments",
            self.program_date_times,
            self.segments.len()
        );
    }
}

/// ffprobe's summary of a recording: duration, and per stream (codec type, codec, frames).
pub fn probe(playlist: &Path) -> (f64, Vec<(String, String, u64)>) {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames"])
        .args([
            "-show_entries",
            "format=duration:stream=codec_type,codec_name,nb_read_frames",
        ])
        .args(["-of", "json"])
        .arg(playlist)
        .output()
        .expect("ffprobe runs (scripts/test installs ffmpeg)");
    assert!(
        output.status.success(),
        "ffprobe failed on {}: {}",
        playlist.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let json: Value = serde_json::from_slice(&output.stdout).expect("ffprobe prints JSON");
    let duration = json["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0);
    let streams = json["streams"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| {
            (
                s["codec_type"].as_str().unwrap_or_default().to_owned(),
                s["codec_name"].as_str().unwrap_or_default().to_owned(),
                s["nb_read_frames"]
                    .as_str()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
            )
        })
        .collect();
    (duration, streams)
}

/// ffprobe's video stream is H.264 with 15 frames per second of `duration`, within
/// `tolerance` (a fraction), and there is an audio stream.
pub fn check_streams(duration: f64, streams: &[(String, String, u64)], tolerance: f64) {
    let video = streams
        .iter()
        .find(|s| s.0 == "video")
        .expect("a video stream");
    assert_eq!(video.1, "h264");
    let expected_frames = duration * 15.0;
    assert!(
        (video.2 as f64 - expected_frames).abs() <= expected_frames * tolerance,
        "{} video frames in {duration} s at 15 fps",
        video.2
    );
    assert!(
        streams.iter().any(|s| s.0 == "audio" && s.1 == "aac"),
        "no AAC audio stream"
    );
}

/// Every listed segment decodes on its own (with the init segment) without errors.
pub fn decode_segments(dir: &Path, playlist: &Playlist) {
    let init = std::fs::read(dir.join("init.mp4")).expect("init.mp4 exists");
    for (_, uri) in &playlist.segments {
        let mut whole = init.clone();
        whole.extend(std::fs::read(dir.join(uri)).expect("listed segment exists"));
        let joined = dir.join(format!("check-{uri}.mp4"));
        std::fs::write(&joined, whole).unwrap();
        let output = Command::new("ffmpeg")
            .args(["-v", "error", "-xerror", "-i"])
            .arg(&joined)
            .args(["-f", "null", "-"])
            .output()
            .expect("ffmpeg runs");
        let _ = std::fs::remove_file(&joined);
        assert!(
            output.status.success() && output.stderr.is_empty(),
            "segment {uri} does not decode cleanly: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

pub const WIDTH: usize = 1280;
pub const HEIGHT: usize = 720;

/// The picture (YUV 4:2:0) at `seconds` into the recording (output seeking: ffmpeg cannot
/// seek an HLS input); also saved as a PNG next to the playlist for a person to look at.
pub fn frame_at(playlist: &Path, seconds: f64) -> Vec<u8> {
    let png = playlist.with_file_name(format!("frame-{seconds:.0}s.png"));
    let _ = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(playlist)
        .args(["-ss", &format!("{seconds}"), "-frames:v", "1"])
        .arg(&png)
        .status();
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(playlist)
        .args(["-ss", &format!("{seconds}"), "-frames:v", "1"])
        .args(["-f", "rawvideo", "-pix_fmt", "yuv420p", "-"])
        .output()
        .expect("ffmpeg runs");
    assert_eq!(
        output.stdout.len(),
        WIDTH * HEIGHT * 3 / 2,
        "no {WIDTH}x{HEIGHT} frame at {seconds} s: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Mean distance from neutral grey of the chroma (|U−128| + |V−128|) in a rectangle of a
/// YUV 4:2:0 picture.
pub fn chroma_distance(picture: &[u8], x: usize, y: usize, w: usize, h: usize) -> f64 {
    let chroma_width = WIDTH / 2;
    let u_plane = &picture[WIDTH * HEIGHT..WIDTH * HEIGHT * 5 / 4];
    let v_plane = &picture[WIDTH * HEIGHT * 5 / 4..];
    let mut sum = 0.0;
    let mut n = 0.0;
    for row in y / 2..(y + h) / 2 {
        for column in x / 2..(x + w) / 2 {
            let i = row * chroma_width + column;
            sum += (f64::from(u_plane[i]) - 128.0).abs() + (f64::from(v_plane[i]) - 128.0).abs();
            n += 1.0;
        }
    }
    sum / n
}

/// How many of the grid's tiles (for `count` participants) show a camera: Chromium's fake
/// camera paints a saturated green background (U and V near 0) behind its timer and turning
/// sector, while an empty tile is neutral grey and the canvas background neutral black (U and
/// V at 128). Prints each tile's figure.
pub fn tiles_with_video(picture: &[u8], count: usize) -> usize {
    switchyard_recorder::compositor::layout(
        switchyard_recorder::compositor::Canvas::RECORDING,
        count,
    )
    .iter()
    .filter(|r| {
        // The inner part of the tile (the 4:3 camera picture sits pillarboxed in 16:9).
        let distance = chroma_distance(
            picture,
            r.x + r.width / 4,
            r.y + r.height / 8,
            r.width / 2,
            r.height * 3 / 4,
        );
        println!(
            "tile at ({}, {}): chroma distance from grey {distance:.1}",
            r.x, r.y
        );
        distance > 100.0
    })
    .count()
}

/// Polls until `check` holds or `timeout` passes.
pub async fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    check()
}

/// The admin API of a test server, with an admin token.
pub struct Admin {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Admin {
    pub fn new(server: &Server) -> Admin {
        Admin {
            http: reqwest::Client::new(),
            base: format!("http://{}", server.http_addr),
            token: server.token(
                "ops",
                "",
                protocol::Grants {
                    room_admin: true,
                    ..Default::default()
                },
            ),
        }
    }

    /// Status and JSON body of one call.
    pub async fn call(&self, method: reqwest::Method, path: &str) -> (u16, Value) {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("the API answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// Waits (at most 30 s) until every call page sees `others` other participants.
pub async fn wait_call(pages: &[fantoccini::Client], others: u64) {
    let start = std::time::Instant::now();
    loop {
        let mut ready = 0;
        for page in pages {
            let remote = switchyard_tests::browser::eval(
                page,
                "return window.switchyard.remoteParticipants().length",
            )
            .await
            .ok()
            .and_then(|v| v.as_u64());
            ready += usize::from(remote == Some(others));
        }
        if ready == pages.len() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the call did not form"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
