//! dustwatch: the aggregator. A reading travels broker -> ingest -> store -> rules -> web.

pub mod app;
pub mod aqi;
pub mod auth;
pub mod broker_config;
pub mod charts;
pub mod commands;
pub mod config;
pub mod dashboard;
pub mod export;
pub mod hj212_forward;
pub mod ingest;
pub mod metrics;
pub mod notify;
pub mod publish;
pub mod rankings;
pub mod report;
pub mod rules;
#[cfg(feature = "sim")]
pub mod score;
pub mod store;
pub mod web;
