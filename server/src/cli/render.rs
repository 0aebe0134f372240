//! API answers as text for people: the rooms table, a room in detail, settings, ages and
//! bitrates, and the column aligner. It neither calls the server nor prints. It never reads the
//! clock: ages come from the server's answers.

use protocol::admin::{RoomDetail, RoomSettings, RoomSummary, TrackDetail};

use crate::cli::print::clean;

/// The open rooms, one line each.
pub(super) fn rooms_table(rooms: &[RoomSummary]) -> String {
    if rooms.is_empty() {
        return "No rooms are open.\n".into();
    }
    // A cluster names each room's node; a single server has none.
    let clustered = rooms.iter().any(|r| r.node.is_some());
    let rows = rooms
        .iter()
        .map(|r| {
            let mut row = vec![
                clean(&r.name),
                r.participant_count.to_string(),
                r.publisher_count.to_string(),
                age(r.age_seconds),
                kbits(r.bitrate_in),
                kbits(r.bitrate_out),
            ];
            if clustered {
                row.push(clean(r.node.as_deref().unwrap_or("")));
            }
            row
        })
        .collect::<Vec<_>>();
    let mut columns = vec![
        ("NAME", Align::Left),
        ("PARTICIPANTS", Align::Right),
        ("PUBLISHERS", Align::Right),
        ("AGE", Align::Right),
        ("IN kbit/s", Align::Right),
        ("OUT kbit/s", Align::Right),
    ];
    if clustered {
        columns.push(("NODE", Align::Left));
    }
    table(&columns, &rows)
}

/// One room: its summary, its participants, and their tracks.
pub(super) fn room_detail(detail: &RoomDetail) -> String {
    let r = &detail.summary;
    let mut out = format!(
        "Room {}{}: {} participant{}, {} publishing; open {} (since {})\n\
         Bitrate: {} kbit/s in, {} kbit/s out\n\
         Settings: {}\n\n",
        clean(&r.name),
        r.node
            .as_deref()
            .map(|n| format!(" (on node {})", clean(n)))
            .unwrap_or_default(),
        r.participant_count,
        if r.participant_count == 1 { "" } else { "s" },
        r.publisher_count,
        age(r.age_seconds),
        clean(&r.created_at),
        kbits(r.bitrate_in),
        kbits(r.bitrate_out),
        settings_text(&r.settings),
    );
    if detail.participants.is_empty() {
        out.push_str("No participants.\n");
        return out;
    }
    let people = detail
        .participants
        .iter()
        .map(|p| {
            let mut name = clean(&p.name);
            if p.grants.hidden {
                name.push_str(" (hidden)");
            }
            vec![
                clean(&p.identity),
                name,
                clean(&p.state),
                p.candidate_type.as_deref().map_or("-".into(), clean),
                p.rtt_ms.map_or("-".into(), |ms| format!("{ms:.1} ms")),
                p.tracks.len().to_string(),
                p.subscriptions.len().to_string(),
            ]
        })
        .collect::<Vec<_>>();
    out.push_str(&table(
        &[
            ("IDENTITY", Align::Left),
            ("NAME", Align::Left),
            ("STATE", Align::Left),
            ("CANDIDATE", Align::Left),
            ("RTT", Align::Right),
            ("TRACKS", Align::Right),
            ("RECEIVING", Align::Right),
        ],
        &people,
    ));
    let tracks = detail
        .participants
        .iter()
        .flat_map(|p| p.tracks.iter().map(move |t| (p, t)))
        .map(|(p, t)| {
            vec![
                clean(&p.identity),
                clean(&t.id),
                t.kind.to_string(),
                clean(&t.codec),
                resolution(t),
                kbits(t.bitrate),
                format!("{:.1}%", t.loss_rate * 100.0),
                format!("{:.1} ms", t.jitter_ms),
                if t.muted { "yes" } else { "no" }.into(),
            ]
        })
        .collect::<Vec<_>>();
    if tracks.is_empty() {
        out.push_str("\nNo published tracks.\n");
    } else {
        out.push('\n');
        out.push_str(&table(
            &[
                ("PARTICIPANT", Align::Left),
                ("TRACK", Align::Left),
                ("KIND", Align::Left),
                ("CODEC", Align::Left),
                ("RESOLUTION", Align::Right),
                ("kbit/s", Align::Right),
                ("LOSS", Align::Right),
                ("JITTER", Align::Right),
                ("MUTED", Align::Left),
            ],
            &tracks,
        ));
    }
    out
}

/// A room's settings in a sentence.
pub(super) fn settings_text(s: &RoomSettings) -> String {
    let codecs = if s.codecs.is_empty() {
        "any".to_owned()
    } else {
        clean(&s.codecs.join(", "))
    };
    format!(
        "at most {} participants, closes {} s after the last one leaves, codecs: {codecs}",
        s.max_participants, s.empty_timeout_seconds
    )
}

/// `640x480@30`, `640x480`, or `-` when the bitstream has not told.
fn resolution(t: &TrackDetail) -> String {
    match (t.width, t.height, t.fps) {
        (Some(w), Some(h), Some(fps)) => format!("{w}x{h}@{fps:.0}"),
        (Some(w), Some(h), None) => format!("{w}x{h}"),
        _ => "-".into(),
    }
}

/// Bits per second as whole kbit/s.
fn kbits(bits_per_second: u64) -> String {
    (bits_per_second.saturating_add(500) / 1000).to_string()
}

/// `42s`, `5m 02s`, `3h 05m`, `2d 03h`.
fn age(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {:02}s", secs / 60, secs % 60),
        3600..86_400 => format!("{}h {:02}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d {:02}h", secs / 86_400, secs % 86_400 / 3600),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Align {
    Left,
    Right,
}

/// Columns padded to their widest cell, two spaces apart.
fn table(columns: &[(&str, Align)], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = columns.iter().map(|(h, _)| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header: Vec<String> = columns.iter().map(|(h, _)| (*h).to_owned()).collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, ((_, align), cell)) in columns.iter().zip(row).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = " ".repeat(widths[i].saturating_sub(cell.chars().count()));
            match align {
                Align::Left => {
                    line.push_str(cell);
                    line.push_str(&pad);
                }
                Align::Right => {
                    line.push_str(&pad);
                    line.push_str(cell);
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_bitrates_read_well() {
        assert_eq!(age(42), "42s");
        assert_eq!(age(302), "5m 02s");
        assert_eq!(age(3 * 3600 + 5 * 60), "3h 05m");
        assert_eq!(age(2 * 86_400 + 3 * 3600), "2d 03h");
        assert_eq!(kbits(1_350_000), "1350");
        assert_eq!(kbits(499), "0");
        assert_eq!(kbits(u64::MAX), (u64::MAX / 1000).to_string());
    }

    #[test]
    fn tables_align_and_names_are_cleaned() {
        let text = table(
            &[("NAME", Align::Left), ("N", Align::Right)],
            &[
                vec!["demo".into(), "12".into()],
                vec![clean("a\u{1b}[2J"), "3".into()],
            ],
        );
        assert_eq!(text, "NAME    N\ndemo   12\na\u{fffd}[2J   3\n");
    }

    #[test]
    fn a_cluster_names_each_room_node() {
        let room = |node: Option<&str>| -> RoomSummary {
            serde_json::from_value(serde_json::json!({
                "name": "demo", "participantCount": 2, "publisherCount": 1,
                "createdAt": "2026-11-27T22:00:00Z", "ageSeconds": 5,
                "bitrateIn": 0, "bitrateOut": 0, "node": node,
                "settings": {"maxParticipants": 50, "emptyTimeoutSeconds": 20, "codecs": []}
            }))
            .unwrap()
        };
        let clustered = rooms_table(&[room(Some("node-a"))]);
        assert!(
            clustered.starts_with("NAME") && clustered.contains("NODE"),
            "{clustered}"
        );
        assert!(clustered.trim_end().ends_with("node-a"), "{clustered}");
        let single = rooms_table(&[room(None)]);
        assert!(!single.contains("NODE"), "{single}");
    }

    #[test]
    fn a_room_in_detail_lists_participants_and_tracks() {
        let detail: RoomDetail = serde_json::from_value(serde_json::json!({
            "name": "demo", "participantCount": 1, "publisherCount": 1,
            "createdAt": "2026-11-27T22:00:00Z", "ageSeconds": 3725,
            "bitrateIn": 1_350_000, "bitrateOut": 1_340_000,
            "settings": {"maxParticipants": 50, "emptyTimeoutSeconds": 20, "codecs": []},
            "participants": [{
                "id": "PA_x7k2", "identity": "alice", "name": "Alice",
                "joinedAt": "2026-11-27T22:00:01Z", "state": "connected",
                "candidateType": "relay", "rttMs": 0.44,
                "grants": {"canPublish": true, "canSubscribe": true, "canPublishData": true,
                           "hidden": false, "roomAdmin": false},
                "tracks": [
                    {"id": "TR_5d0c", "kind": "video", "codec": "VP8", "muted": false,
                     "width": 640, "height": 480, "fps": 30.0, "bitrate": 650_000,
                     "packets": 1234, "packetsLost": 12, "lossRate": 0.0097, "jitterMs": 3.12},
                    {"id": "TR_a1", "kind": "audio", "codec": "opus", "muted": true,
                     "width": null, "height": null, "fps": null, "bitrate": 32_000,
                     "packets": 99, "packetsLost": 0, "lossRate": 0.0, "jitterMs": 1.0}],
                "subscriptions": ["TR_99aa"]}]
        }))
        .unwrap();
        let text = room_detail(&detail);
        for expected in [
            "Room demo: 1 participant, 1 publishing; open 1h 02m",
            "Bitrate: 1350 kbit/s in, 1340 kbit/s out",
            "Settings: at most 50 participants",
            "alice     Alice  connected  relay      0.4 ms       2          1",
            "alice        TR_5d0c  video  VP8    640x480@30     650  1.0%  3.1 ms  no",
            "alice        TR_a1    audio  opus            -      32  0.0%  1.0 ms  yes",
        ] {
            assert!(text.contains(expected), "{expected:?} in\n{text}");
        }
    }
}
