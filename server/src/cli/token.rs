//! `switchyard token` and the admin tokens of API calls: the token authority of the API key
//! and secret resolved as the server resolves them, and minting a token with it locally. Minting
//! never calls the server: it needs only the API key and secret.

use anyhow::{Context, bail};
use protocol::Grants;
use signaling::TokenAuthority;

use crate::cli::args::{CredentialArgs, TokenArgs};
use crate::config::{Cli, load_credentials};

/// The token authority of the configured API key and secret, or why there is none.
pub(super) fn authority(cli: &Cli, credentials: &CredentialArgs) -> anyhow::Result<TokenAuthority> {
    let resolved = load_credentials(
        credentials.config.as_deref().or(cli.config.as_deref()),
        credentials.api_key.clone().or_else(|| cli.api_key.clone()),
        credentials
            .api_secret
            .clone()
            .or_else(|| cli.api_secret.clone()),
    )
    .context("configuration error")?;
    match resolved {
        Some((key, secret)) => Ok(TokenAuthority::new(&key, &secret)),
        None => bail!(
            "no api_key/api_secret configured. A server without them (dev mode) makes up a \
             new key and secret every time it starts, so a token minted here would not be \
             accepted. Set api_key and api_secret for the server and for this command \
             (--api-key/--api-secret, SWITCHYARD_API_KEY/SWITCHYARD_API_SECRET, or [auth] in \
             the --config file), or, against a dev-mode server, fetch an admin token from its \
             GET /api/dev-admin-token and pass it with --token or SWITCHYARD_TOKEN"
        ),
    }
}

/// A token for `args`, signed by `authority`.
pub(super) fn mint(authority: &TokenAuthority, args: &TokenArgs) -> anyhow::Result<String> {
    let identity = match (&args.identity, args.admin) {
        (Some(identity), _) => identity.clone(),
        (None, true) => "admin".to_owned(),
        (None, false) => bail!("--identity is required (or --admin for an admin token)"),
    };
    if identity.is_empty() || identity.chars().count() > 128 {
        bail!("--identity must be 1 to 128 characters");
    }
    let room = args.room.clone().unwrap_or_default();
    if !(args.admin && room.is_empty()) {
        sfu::RoomId::new(&room).map_err(|e| anyhow::anyhow!("--room: {e}"))?;
    }
    let name = args.name.clone().unwrap_or_else(|| identity.clone());
    let grants = Grants {
        can_publish: !args.no_publish,
        can_subscribe: !args.no_subscribe,
        can_publish_data: true,
        hidden: args.hidden || args.recorder,
        room_admin: args.admin,
        recorder: args.recorder,
    };
    Ok(authority.mint(&identity, &name, &room, grants, args.ttl))
}
