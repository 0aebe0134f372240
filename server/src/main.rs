//! `switchyard`: run the whole service (`cargo run --release`), or, with a subcommand, the
//! admin CLI (`switchyard rooms list`, `switchyard token --admin`, ...). A subcommand never starts
//! the server: it runs the admin command and exits.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    switchyard::run::run(switchyard::Cli::parse()).await
}
