//! A few reader connections, each on a thread of its own. The synchronous client runs its own
//! small runtime and must not be driven from inside an async task, and the pages call the
//! reader from handlers directly: a query is sent to a connection thread and the caller waits
//! for the answer, as it waits for SQLite today.

use super::config::connect;
use crate::store::StoreError;
use postgres::Client;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce(&mut Option<Client>) + Send>;

/// The connection threads; they end when the pool is dropped.
pub(crate) struct Pool {
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl Pool {
    pub(crate) fn start(url: &str, size: usize) -> Result<Pool, StoreError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        // Fail at start on a bad URL or an unreachable server, not at the first page. Each
        // thread connects itself: connecting blocks too.
        let (ready, first) = mpsc::sync_channel::<Result<(), StoreError>>(1);
        for i in 0..size.max(1) {
            let rx = rx.clone();
            let url = url.to_string();
            let ready = (i == 0).then(|| ready.clone());
            std::thread::Builder::new()
                .name(format!("pg-reader-{i}"))
                .spawn(move || {
                    let mut client = None;
                    if let Some(ready) = ready {
                        match connect(&url) {
                            Ok(c) => {
                                client = Some(c);
                                let _ = ready.send(Ok(()));
                            }
                            Err(e) => {
                                let _ = ready.send(Err(e));
                                return;
                            }
                        }
                    }
                    serve(&rx, &url, client)
                })
                .map_err(|source| StoreError::Thread {
                    what: "PostgreSQL reader",
                    source,
                })?;
        }
        drop(ready);
        first
            .recv()
            .unwrap_or_else(|_| Err(StoreError::Config("a PostgreSQL reader stopped".into())))?;
        Ok(Pool {
            jobs: Mutex::new(tx),
        })
    }

    /// Run `f` on one of the connections and wait for its answer.
    pub(crate) fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |client| {
            let result = match client {
                Some(c) => f(c),
                None => Err(StoreError::Config(
                    "no connection to PostgreSQL (see the log)".into(),
                )),
            };
            let _ = reply.send(result);
        });
        let sent = {
            let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
            jobs.send(job)
        };
        if sent.is_err() {
            return Err(StoreError::Config("the PostgreSQL readers stopped".into()));
        }
        answer
            .recv()
            .unwrap_or_else(|_| Err(StoreError::Config("a PostgreSQL reader stopped".into())))
    }
}

/// One connection thread: run jobs until the pool is dropped, connecting again when the
/// connection was lost.
fn serve(rx: &Mutex<mpsc::Receiver<Job>>, url: &str, mut client: Option<Client>) {
    loop {
        let job = {
            let rx = rx.lock().unwrap_or_else(|p| p.into_inner());
            rx.recv()
        };
        let Ok(job) = job else { return };
        if client.as_ref().is_none_or(Client::is_closed) {
            client = match connect(url) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "PostgreSQL reader cannot connect");
                    None
                }
            };
        }
        job(&mut client);
    }
}
