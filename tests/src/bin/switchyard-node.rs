//! The `switchyard` server, built inside the test package so that its tests can run nodes as
//! real processes (`CARGO_BIN_EXE_switchyard-node`) and kill them with SIGKILL. The same code as
//! the `switchyard` executable: it only calls [`switchyard::run::run`].

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    switchyard::run::run(switchyard::Cli::parse()).await
}
