//! Runs one admin command: resolves what it needs and hands it to the token, rooms or
//! participants command. Every failure becomes one line on stderr and exit status 1. It never exits
//! the process itself: it returns the exit status to `main`.

use std::process::ExitCode;

use crate::cli::api::Api;
use crate::cli::args::Command;
use crate::cli::participants::participants;
use crate::cli::print::print;
use crate::cli::rooms::rooms;
use crate::cli::token::{authority, mint};
use crate::config::Cli;

/// Runs one admin command; failures are printed on stderr and give exit status 1.
///
/// - `switchyard token` mints an access token locally with the API key and secret resolved as
///   the server resolves them (`--config`, `SWITCHYARD_API_KEY`/`SWITCHYARD_API_SECRET`,
///   `--api-key`/`--api-secret`) and prints only the token, so `$(switchyard token --admin)`
///   works.
/// - `switchyard rooms ...` and `switchyard participants ...` call the admin REST API
///   (`docs/admin-api.md`) of a running server at `--url` (http or https, trusting `--ca`)
///   with a bearer admin token (`--token`, or one minted here for the call) and print tables,
///   or with `--json` the server's JSON as it came.
///
/// Every failure is one line on stderr (the server's own `error.message` for API errors) and
/// exit status 1.
pub async fn run(cli: &Cli, command: Command) -> ExitCode {
    match execute(cli, command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchyard: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(cli: &Cli, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Token(args) => {
            let token = mint(&authority(cli, &args.credentials)?, &args)?;
            print(&format!("{token}\n"))
        }
        Command::Rooms {
            api,
            credentials,
            action,
        } => {
            let api = Api::new(&api, cli.tls.tls_dir.as_deref(), || {
                authority(cli, &credentials)
            })?;
            rooms(&api, action).await
        }
        Command::Participants {
            api,
            credentials,
            action,
        } => {
            let api = Api::new(&api, cli.tls.tls_dir.as_deref(), || {
                authority(cli, &credentials)
            })?;
            participants(&api, action).await
        }
    }
}
