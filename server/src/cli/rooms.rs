//! `switchyard rooms list|show|create|close`: one admin API call each, printed as a table or
//! a sentence, or with `--json` as the server's JSON. It never touches a room directly: every
//! action goes through the admin REST API.

use protocol::admin::{CreateRoom, RoomDetail, RoomList, RoomSummary};
use reqwest::Method;

use crate::cli::api::Api;
use crate::cli::args::RoomsCommand;
use crate::cli::print::{clean, print, print_json};
use crate::cli::render::{room_detail, rooms_table, settings_text};

/// Runs one `rooms` action against the server.
pub(super) async fn rooms(api: &Api, action: RoomsCommand) -> anyhow::Result<()> {
    match action {
        RoomsCommand::List => {
            let text = api.call(Method::GET, &["rooms"], None::<&()>).await?;
            if api.json {
                return print_json(&text);
            }
            let list: RoomList = api.parse(&text)?;
            print(&rooms_table(&list.rooms))
        }
        RoomsCommand::Show { room } => {
            let text = api
                .call(Method::GET, &["rooms", &room], None::<&()>)
                .await?;
            if api.json {
                return print_json(&text);
            }
            let detail: RoomDetail = api.parse(&text)?;
            print(&room_detail(&detail))
        }
        RoomsCommand::Create {
            room,
            max_participants,
            empty_timeout,
            codec,
        } => {
            let body = CreateRoom {
                name: room,
                max_participants,
                empty_timeout_seconds: empty_timeout,
                codecs: codec.iter().map(|c| c.to_ascii_lowercase()).collect(),
            };
            let text = api.call(Method::POST, &["rooms"], Some(&body)).await?;
            if api.json {
                return print_json(&text);
            }
            let summary: RoomSummary = api.parse(&text)?;
            print(&format!(
                "Created room {}: {}.\n",
                clean(&summary.name),
                settings_text(&summary.settings)
            ))
        }
        RoomsCommand::Close { room } => {
            let text = api
                .call(Method::DELETE, &["rooms", &room], None::<&()>)
                .await?;
            if api.json {
                return print_json(&text);
            }
            print(&format!("Closed room {}.\n", clean(&room)))
        }
    }
}
