//! `altdata keys create | list | revoke | rotate`: the API key lifecycle from the command
//! line, through the same functions as the admin API (`altdata_gateway::auth::store`), with
//! the same audit rows and the same revocation message to every running gateway.

use altdata_common::{connect, ConnectionSettings, EnvReader};
use altdata_gateway::auth::{revocation, store};
use altdata_gateway::Role;
use chrono::{DateTime, Utc};
use clap::Subcommand;
use std::time::Duration;

/// How long a revocation waits for NATS before leaving it to the gateways' cache TTL.
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key; the key is printed as the last line and never stored in clear.
    Create {
        #[arg(long, value_parser = ["analyst", "admin"])]
        role: String,
        #[arg(long, default_value = "")]
        name: String,
        /// Lifetime, such as 30d, 12h or 90m (default: never expires).
        #[arg(long, value_name = "DURATION")]
        expires_in: Option<String>,
    },
    /// List keys: id, prefix, role, state, dates and name; never a secret.
    List {
        #[arg(long, default_value_t = 500)]
        limit: i64,
    },
    /// Revoke a key, named by its id or its 8-character prefix; every running gateway refuses
    /// it within a second.
    Revoke {
        #[arg(value_name = "ID|PREFIX")]
        key: String,
    },
    /// Replace a key by a new secret with the same name and role; the old key stops working at
    /// once. The new key is printed as the last line.
    Rotate {
        #[arg(value_name = "ID|PREFIX")]
        key: String,
        /// The new key's lifetime (default: the old key's expiry).
        #[arg(long, value_name = "DURATION")]
        expires_in: Option<String>,
    },
}

pub async fn run(command: KeysCommand) -> anyhow::Result<()> {
    let mut env = EnvReader::from_process();
    let connections = ConnectionSettings::read(&mut env);
    env.finish().map_err(|e| anyhow::anyhow!("{e}"))?;
    let pool = connect::postgres_pool(&connections).await?;
    let actor = actor();
    match command {
        KeysCommand::Create {
            role,
            name,
            expires_in,
        } => {
            let role: Role = role.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
            let lifetime = expires_in
                .as_deref()
                .map(store::parse_lifetime)
                .transpose()?;
            let created = store::create(&pool, role, &name, lifetime, &actor).await?;
            eprintln!(
                "created {} key {} ({}), {}; it is shown once:",
                role.as_str(),
                created.info.id,
                created.info.prefix,
                expiry(created.info.expires_at)
            );
            println!("{}", created.key);
        }
        KeysCommand::List { limit } => {
            let keys = store::list(&pool, limit.clamp(1, 10_000), 0).await?;
            println!(
                "{:>6}  {:<8}  {:<7}  {:<7}  {:<16}  {:<16}  {:<16}  name",
                "id", "prefix", "role", "state", "created (UTC)", "expires", "last used"
            );
            for key in keys {
                println!(
                    "{:>6}  {:<8}  {:<7}  {:<7}  {:<16}  {:<16}  {:<16}  {}",
                    key.id,
                    key.prefix,
                    key.role.as_str(),
                    key.state.as_str(),
                    time(Some(key.created_at)),
                    time(key.expires_at),
                    time(key.last_used_at),
                    key.name
                );
            }
        }
        KeysCommand::Revoke { key } => {
            let id = store::find(&pool, &key).await?;
            let revocation = store::revoke(&pool, id, &actor).await?;
            if !revocation.newly_revoked {
                eprintln!("key {id} ({}) was already revoked", revocation.info.prefix);
                return Ok(());
            }
            let announced = announce(&connections, id).await;
            eprintln!(
                "revoked key {id} ({}); {}",
                revocation.info.prefix,
                announced_text(announced)
            );
        }
        KeysCommand::Rotate { key, expires_in } => {
            let id = store::find(&pool, &key).await?;
            let lifetime = expires_in
                .as_deref()
                .map(store::parse_lifetime)
                .transpose()?;
            let rotated = store::rotate(&pool, id, lifetime, &actor).await?;
            let announced = announce(&connections, id).await;
            eprintln!(
                "key {id} replaced by key {} ({}), {}; the old key is revoked; {}. The new key is shown once:",
                rotated.info.id,
                rotated.info.prefix,
                expiry(rotated.info.expires_at),
                announced_text(announced)
            );
            println!("{}", rotated.key);
        }
    }
    Ok(())
}

/// Who the audit trail names for a command-line action.
fn actor() -> String {
    match std::env::var("USER") {
        Ok(user) if !user.is_empty() => format!("cli ({user})"),
        _ => "cli".to_owned(),
    }
}

/// Tells every gateway that `key_id` was revoked; false when NATS cannot be reached.
async fn announce(connections: &ConnectionSettings, key_id: i64) -> bool {
    let subjects = connections.subjects();
    let announced = tokio::time::timeout(ANNOUNCE_TIMEOUT, async {
        match connect::nats(&connections.nats_url).await {
            Ok(nats) => revocation::announce(&nats, &subjects, key_id).await,
            Err(error) => {
                tracing::warn!(error = %error, "cannot reach NATS to announce the revocation");
                false
            }
        }
    })
    .await;
    announced.unwrap_or(false)
}

fn announced_text(announced: bool) -> &'static str {
    if announced {
        "every running gateway refuses it within a second"
    } else {
        "NATS could not be told: gateways refuse it once their cache entry expires (ALTDATA_API_KEY_CACHE_TTL, 30 s by default)"
    }
}

fn expiry(expires_at: Option<DateTime<Utc>>) -> String {
    expires_at.map_or("never expires".to_owned(), |at| {
        format!("expires {}", time(Some(at)))
    })
}

fn time(at: Option<DateTime<Utc>>) -> String {
    at.map_or("-".to_owned(), |at| at.format("%Y-%m-%d %H:%M").to_string())
}
