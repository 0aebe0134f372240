//! The admin CLI, in the manner of LiveKit's `lk`: the `switchyard` binary's subcommands
//! (`token`, `rooms ...`, `participants ...`), run by [`run`].
//! This file only declares the parts and re-exports their public items; it holds no logic.

mod api;
pub(crate) mod args;
mod participants;
mod print;
mod render;
mod rooms;
mod run;
mod tls_failure;
mod token;
mod trust;

pub use args::{
    ApiArgs, Command, CredentialArgs, DEFAULT_URL, MAX_TTL_SECS, ParticipantsCommand, RoomsCommand,
    TokenArgs,
};
pub use run::run;
