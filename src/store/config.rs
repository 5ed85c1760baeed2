//! Settings of the embedded store (`[store]` in the config file).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Settings of the embedded store (`[store]` in the config file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Where the data lives: `sqlite` (the embedded file under `data_dir`, the default) or
    /// `postgres` (a shared database, `[store.postgres]`).
    pub backend: Backend,
    /// `[store.postgres]`: used with `backend = "postgres"`.
    pub postgres: super::postgres::PostgresConfig,
    /// Directory holding `dustwatch.db`. Default `./dustwatch-data`.
    pub data_dir: PathBuf,
    /// Raw readings older than this (in event time) are deleted. Default 30 days.
    pub raw_retention_days: u32,
    /// 1-minute and 1-hour rollups are kept this long. Default 730 days (2 years).
    pub rollup_retention_days: u32,
    /// `normal` survives a crash of the process (kill -9); `full` also a power loss, at a cost in
    /// commit latency. Default `normal`.
    pub synchronous: Synchronous,
    /// Page cache of the writer connection, MiB: holds the newest leaf of every site's and
    /// device's series, so a batch writes pages without reading them back. Default 32.
    pub cache_mib: u32,
    /// Largest database file, MiB; at the limit ingest waits (acknowledging nothing) as on a
    /// full disk, and `/healthz` says so. 0 = no limit but the disk. Default 0.
    pub max_size_mib: u64,
    /// Wall-clock seconds between retention passes. Default 600.
    pub retention_every_s: u64,
    /// A retention pass that would delete more than this share of a table's time span leaves
    /// the table alone and says why (a clock gone wrong must not empty the store). Default 0.5.
    pub retention_max_share: f64,
    /// Sites not in the registry that messages may create; beyond it their messages are
    /// `unknown_site` dead letters. Default 500.
    pub max_unregistered_sites: u32,
    /// Devices one site may have; beyond it, `unknown_device` dead letters. Default 64.
    pub max_devices_per_site: u32,
    /// Dead letters kept in all; the oldest go first. Default 200 000.
    pub max_dead_letters: u64,
    /// Dead letters kept per source (the site named in the topic, or the HJ 212 peer), so one
    /// noisy source cannot push out the others'. Default 10 000.
    pub max_dead_letters_per_source: u64,
}

/// The store implementation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    #[default]
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Synchronous {
    Normal,
    Full,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            backend: Backend::Sqlite,
            postgres: Default::default(),
            data_dir: PathBuf::from("./dustwatch-data"),
            raw_retention_days: 30,
            rollup_retention_days: 730,
            synchronous: Synchronous::Normal,
            cache_mib: 32,
            max_size_mib: 0,
            retention_every_s: 600,
            retention_max_share: 0.5,
            max_unregistered_sites: 500,
            max_devices_per_site: 64,
            max_dead_letters: 200_000,
            max_dead_letters_per_source: 10_000,
        }
    }
}
