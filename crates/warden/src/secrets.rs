//! `warden secrets put|rotate|list`: the embedded store's admin commands.
//!
//! A value never comes from argv (it would land in shell history and in
//! `/proc/<pid>/cmdline`): it is read from stdin or from a file.

use std::io::{IsTerminal, Read};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use secrecy::SecretString;
use warden_control::Config;

use crate::cli::{SecretsCommand, StoreArgs, default_data_dir};
use crate::serve::{embedded_broker, prepare_data_dir};

fn read_value(file: Option<&Path>) -> anyhow::Result<SecretString> {
    let mut raw = String::new();
    match file {
        Some(path) => {
            raw = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
        }
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprintln!("enter the secret, then Ctrl-D:");
            }
            stdin
                .lock()
                .read_to_string(&mut raw)
                .context("reading the secret from stdin")?;
        }
    }
    // One trailing newline is how files and `echo` end; it is not part of
    // the value.
    let value = raw.strip_suffix('\n').unwrap_or(&raw);
    let value = value.strip_suffix('\r').unwrap_or(value);
    if value.is_empty() {
        bail!("the secret is empty; nothing was stored");
    }
    let secret = SecretString::from(value.to_string());
    drop(raw);
    Ok(secret)
}

fn open(store: StoreArgs) -> anyhow::Result<warden_secrets::EmbeddedBroker> {
    let StoreArgs { data_dir, config } = store;
    let config = match &config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let data_dir = prepare_data_dir(&data_dir.unwrap_or_else(default_data_dir))?;
    embedded_broker(&config.secrets, &data_dir)
}

pub fn run(command: SecretsCommand) -> anyhow::Result<ExitCode> {
    match command {
        SecretsCommand::Put { path, file, store } => {
            let value = read_value(file.as_deref())?;
            let meta = open(store)?.put(&path, &value)?;
            eprintln!("stored {} (version {})", meta.path, meta.version);
        }
        SecretsCommand::Rotate { path, file, store } => {
            let value = read_value(file.as_deref())?;
            let meta = open(store)?.rotate(&path, &value)?;
            eprintln!(
                "rotated {} (now version {}); the next investigation reads the new value",
                meta.path, meta.version
            );
        }
        SecretsCommand::List { store } => {
            let list = open(store)?.list()?;
            if list.is_empty() {
                eprintln!("no secrets stored");
            }
            for m in list {
                println!(
                    "{}\tversion {}\tupdated {}",
                    m.path,
                    m.version,
                    m.updated_at.to_rfc3339()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Used by the demo to give each domain a value; never printed.
pub fn put_if_missing(
    broker: &warden_secrets::EmbeddedBroker,
    path: &str,
    value: &SecretString,
) -> anyhow::Result<()> {
    let exists = broker.list()?.iter().any(|m| m.path == path);
    if !exists {
        broker.put(path, value)?;
    }
    Ok(())
}
