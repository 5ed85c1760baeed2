//! Acknowledging an alert on any instance. The local engine is asked first; in a cluster (NATS
//! ingest) an alert of a site another instance judges is asked of that instance over NATS
//! request/reply on [`ACK_SUBJECT`]. Every instance listens there and answers only for the
//! alerts its own engine holds, so the first answer is the owner's; the others stay silent.
//! The store says beforehand whether the alert is open at all, so a request nobody answers
//! means the owner is unreachable (or its partition is moving), not that there is no such alert.

use super::alerts::Alert;
use super::task::{RulesError, RulesHandle};
use crate::store::alerts::StateFilter;
use crate::store::{AlertFilter, StoreError, StoreReader};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio_util::sync::CancellationToken;

/// The subject acknowledgements travel on between instances (outside the stream's `dw.>`).
pub const ACK_SUBJECT: &str = "dustwatch.alerts.ack";

/// How long the instance serving the request waits for the owner's answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

#[derive(Debug, Error)]
pub enum AckError {
    #[error("no open alert with id {0}")]
    NoSuchAlert(i64),
    #[error(
        "alert {0} is open, but the instance judging its site did not answer in time; try again"
    )]
    OwnerUnreachable(i64),
    #[error("the instance judging alert {id} could not acknowledge it: {detail}")]
    Remote { id: i64, detail: String },
    #[error(transparent)]
    Rules(RulesError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("NATS: {0}")]
    Nats(String),
}

impl From<RulesError> for AckError {
    fn from(e: RulesError) -> AckError {
        match e {
            RulesError::NoSuchAlert(id) => AckError::NoSuchAlert(id),
            e => AckError::Rules(e),
        }
    }
}

/// What one instance asks of the others.
#[derive(Debug, Serialize, Deserialize)]
struct AckRequest {
    id: i64,
    by: String,
    comment: String,
}

/// The owner's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum AckReply {
    Acknowledged(Box<Alert>),
    /// The owner holds the alert but could not record the acknowledgement.
    Failed(String),
}

/// Acknowledge alerts: here, or on the instance that judges them.
#[derive(Clone)]
pub struct AlertActions {
    rules: RulesHandle,
    remote: Option<Remote>,
}

#[derive(Clone)]
struct Remote {
    client: async_nats::Client,
    reader: Arc<dyn StoreReader>,
}

impl AlertActions {
    /// One instance judges every site.
    pub fn local(rules: RulesHandle) -> AlertActions {
        AlertActions {
            rules,
            remote: None,
        }
    }

    /// Several instances on the NATS cluster `client` is connected to; `reader` says which
    /// alerts are open.
    pub fn clustered(
        rules: RulesHandle,
        client: async_nats::Client,
        reader: Arc<dyn StoreReader>,
    ) -> AlertActions {
        AlertActions {
            rules,
            remote: Some(Remote { client, reader }),
        }
    }

    /// Acknowledge open alert `id` as `by`, wherever it is judged; answers with the alert as
    /// its engine holds it now.
    pub async fn ack(&self, id: i64, by: String, comment: String) -> Result<Alert, AckError> {
        let err = match self.rules.ack(id, by.clone(), comment.clone()).await {
            Ok(alert) => return Ok(alert),
            Err(e) => AckError::from(e),
        };
        match (&self.remote, err) {
            (Some(remote), AckError::NoSuchAlert(_)) => remote.ack(id, by, comment).await,
            (_, err) => Err(err),
        }
    }
}

impl Remote {
    async fn ack(&self, id: i64, by: String, comment: String) -> Result<Alert, AckError> {
        if !self.is_open(id).await? {
            return Err(AckError::NoSuchAlert(id));
        }
        let payload = serde_json::to_vec(&AckRequest { id, by, comment })
            .map_err(|e| AckError::Nats(e.to_string()))?;
        let request = async_nats::Request::new()
            .payload(payload.into())
            .timeout(Some(ANSWER_WITHIN));
        let answer = match self.client.send_request(ACK_SUBJECT, request).await {
            Ok(m) => m,
            Err(e) => {
                return Err(match e.kind() {
                    async_nats::RequestErrorKind::TimedOut
                    | async_nats::RequestErrorKind::NoResponders => AckError::OwnerUnreachable(id),
                    _ => AckError::Nats(e.to_string()),
                })
            }
        };
        match serde_json::from_slice::<AckReply>(&answer.payload) {
            Ok(AckReply::Acknowledged(alert)) => Ok(*alert),
            Ok(AckReply::Failed(detail)) => Err(AckError::Remote { id, detail }),
            Err(e) => Err(AckError::Remote {
                id,
                detail: format!("unreadable answer: {e}"),
            }),
        }
    }

    async fn is_open(&self, id: i64) -> Result<bool, AckError> {
        let reader = self.reader.clone();
        let open = tokio::task::spawn_blocking(move || {
            reader.alerts(&AlertFilter {
                state: Some(StateFilter::Open),
                ..Default::default()
            })
        })
        .await
        .map_err(|e| AckError::Nats(format!("store read task: {e}")))??;
        Ok(open.iter().any(|a| a.id == id))
    }
}

/// Answer other instances' acknowledgements of the alerts `rules` holds, until `shutdown`.
pub async fn answer(
    client: async_nats::Client,
    rules: RulesHandle,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, AckError> {
    let mut requests = client
        .subscribe(ACK_SUBJECT)
        .await
        .map_err(|e| AckError::Nats(e.to_string()))?;
    Ok(tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                _ = shutdown.cancelled() => break,
                m = requests.next() => match m {
                    Some(m) => m,
                    None => break,
                },
            };
            let Some(reply_to) = message.reply else {
                continue;
            };
            let request: AckRequest = match serde_json::from_slice(&message.payload) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable acknowledgement request ignored");
                    continue;
                }
            };
            let reply = match rules.ack(request.id, request.by, request.comment).await {
                Ok(alert) => AckReply::Acknowledged(Box::new(alert)),
                // Not this instance's: the owner answers.
                Err(RulesError::NoSuchAlert(_)) => continue,
                Err(e) => AckReply::Failed(e.to_string()),
            };
            match serde_json::to_vec(&reply) {
                Ok(payload) => {
                    if let Err(e) = client.publish(reply_to, payload.into()).await {
                        tracing::warn!(error = %e, "could not answer an acknowledgement request");
                    }
                }
                Err(e) => tracing::error!(error = %e, "acknowledgement answer not encodable"),
            }
        }
    }))
}
