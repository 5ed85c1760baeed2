//! `dustwatch user add|list|disable|token`: the dashboard's users, on the configured store
//! directly (the aggregator may be running: SQLite lets both write in turn, PostgreSQL is
//! shared anyway).

use crate::cli::UserCommand;
use anyhow::{Context, Result};
use dustwatch::auth::Users;
use dustwatch::config::Config;
use dustwatch::store::acting::ActingStore;
use dustwatch::store::open_acting;
use std::sync::Arc;

pub fn run(command: UserCommand, config: &mut Config) -> Result<()> {
    let store = match &command {
        UserCommand::Add { store, .. }
        | UserCommand::List { store }
        | UserCommand::Disable { store, .. }
        | UserCommand::Token { store, .. } => store,
    };
    store.apply(config);
    let users = Users::new(Arc::new(
        open_acting(&config.store).context("opening the store")?,
    ));
    match command {
        UserCommand::Add { name, role, .. } => {
            let password = match std::env::var("DUSTWATCH_USER_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .context("reading the password from standard input")?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            let u = users.add(&name, role, &password)?;
            println!("user {} added ({})", u.name, u.role.name());
        }
        UserCommand::List { .. } => {
            for u in users.list()? {
                println!(
                    "{}\t{}\t{}",
                    u.name,
                    u.role.name(),
                    if u.disabled { "disabled" } else { "enabled" }
                );
            }
        }
        UserCommand::Disable { name, .. } => {
            users.disable(&name)?;
            println!("user {name} disabled; their sessions and tokens no longer work");
        }
        UserCommand::Token { name, label, .. } => {
            // Only the token on stdout, so a script can capture it.
            println!("{}", users.issue_token(&name, &label)?);
        }
    }
    Ok(())
}

/// The demo's users on a store that has none: an office admin and an inspector with fresh random
/// passwords, printed once (as the generated write token is), so the pages can be tried at once.
#[cfg(feature = "sim")]
pub fn demo_users(data_dir: &std::path::Path) -> Result<()> {
    let users = Users::new(Arc::new(
        ActingStore::open(data_dir).context("opening the store")?,
    ));
    if !users.list()?.is_empty() {
        return Ok(());
    }
    for (name, role) in [
        ("office", dustwatch::auth::Role::Admin),
        ("inspector", dustwatch::auth::Role::Inspector),
    ] {
        let password = dustwatch::web::token::generate()?;
        users.add(name, role, &password)?;
        println!("  demo user {name} ({}) password {password}", role.name());
    }
    Ok(())
}
