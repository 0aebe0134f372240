//! `switchyard participants remove|mute`: one admin API call each, confirmed in a sentence,
//! or with `--json` the server's JSON. It never touches a room directly: every change goes through
//! the admin REST API.

use protocol::admin::{MuteTrack, TrackDetail};
use reqwest::Method;

use crate::cli::api::Api;
use crate::cli::args::ParticipantsCommand;
use crate::cli::print::{clean, print, print_json};

/// Runs one `participants` action against the server.
pub(super) async fn participants(api: &Api, action: ParticipantsCommand) -> anyhow::Result<()> {
    match action {
        ParticipantsCommand::Remove { room, identity } => {
            let path = ["rooms", &room, "participants", &identity];
            let text = api.call(Method::DELETE, &path, None::<&()>).await?;
            if api.json {
                return print_json(&text);
            }
            print(&format!(
                "Removed {} from room {}.\n",
                clean(&identity),
                clean(&room)
            ))
        }
        ParticipantsCommand::Mute {
            room,
            identity,
            track,
            unmute,
        } => {
            let path = [
                "rooms",
                &room,
                "participants",
                &identity,
                "tracks",
                &track,
                "mute",
            ];
            let body = MuteTrack { muted: !unmute };
            let text = api.call(Method::POST, &path, Some(&body)).await?;
            if api.json {
                return print_json(&text);
            }
            let detail: TrackDetail = api.parse(&text)?;
            print(&format!(
                "{} {} track {} of {} in room {}.\n",
                if detail.muted { "Muted" } else { "Unmuted" },
                detail.kind,
                clean(&detail.id),
                clean(&identity),
                clean(&room)
            ))
        }
    }
}
