//! WAL checkpoints on their own thread.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses the threshold, so the store
//! writer would copy pages back into the database file (and fsync it) while acknowledgements
//! wait. Here the writer connections only append to the WAL (`wal_autocheckpoint = 0`) and this
//! thread copies it back in the background on its own connection: a page rewritten by many
//! commits in between is copied once, and the copy runs on the other core.
//!
//! The writer pokes this thread after each commit. A passive checkpoint never blocks the writer,
//! but SQLite rewinds the WAL only when a write transaction starts on a fully copied WAL, and a
//! busy writer starts its next transaction before this thread is done. So once the WAL passes
//! [`REWIND_FRAMES`] the writer finishes the copy itself between two batches (see
//! [`Checkpointer::wants_rewind`]): this thread has already copied all but the last commit or
//! so, which keeps that pause short. Should everything fall behind (a burst, a slow disk), past
//! [`TRUNCATE_FRAMES`] a truncating checkpoint holds the writer (through its busy timeout) and
//! resets the file: the WAL stays bounded at any input rate.

use super::connection::db_path;
use super::StoreError;
use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often a passive checkpoint runs without a poke (commits of other connections).
const EVERY: Duration = Duration::from_secs(1);
/// WAL frames (pages of 4 KiB) after which the writer completes a checkpoint so the next
/// transaction rewinds the WAL: 64 MiB. The writer pauses for that (two fsyncs), so the pause is
/// kept rare; a writer with idle moments rewinds on its own far earlier.
pub const REWIND_FRAMES: i64 = 16_384;
/// WAL frames after which this thread truncates the WAL, holding the writer: 256 MiB.
pub const TRUNCATE_FRAMES: i64 = 65_536;

/// The running checkpointer; stops (after one last checkpoint) when dropped.
pub struct Checkpointer {
    /// Pokes after commits; dropping it stops the thread.
    poke: Option<mpsc::SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
    /// WAL size in frames seen by the last checkpoint.
    frames: Arc<AtomicI64>,
    /// Held while checkpointing: SQLite answers a second concurrent checkpoint with BUSY at
    /// once, so the writer waits here for this thread's copy instead.
    running: Arc<Mutex<()>>,
}

impl Checkpointer {
    /// Start checkpointing the database under `dir` (already created by the writer).
    pub fn start(dir: &Path) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open(db_path(dir))?;
        // TRUNCATE waits for the writer's current transaction through this busy timeout.
        conn.busy_timeout(Duration::from_secs(10))?;
        // One pending poke is enough: a checkpoint copies everything committed before it starts.
        let (poke, pokes) = mpsc::sync_channel::<()>(1);
        let frames = Arc::new(AtomicI64::new(0));
        let running = Arc::new(Mutex::new(()));
        let (seen, lock) = (frames.clone(), running.clone());
        let thread = std::thread::Builder::new()
            .name("wal-checkpoint".into())
            .spawn(move || run(&conn, &pokes, &seen, &lock))
            .map_err(|source| StoreError::Thread {
                what: "WAL checkpoint",
                source,
            })?;
        Ok(Checkpointer {
            poke: Some(poke),
            thread: Some(thread),
            frames,
            running,
        })
    }

    /// Called by the writer between transactions on its connection: once the WAL is past
    /// [`REWIND_FRAMES`], wait for this thread's copy and complete it, so the writer's next
    /// transaction rewinds the WAL (see the module comment). An error only delays the rewind.
    pub fn rewind_if_due(&self, writer: &Connection) {
        if self.frames.load(Relaxed) <= REWIND_FRAMES {
            return;
        }
        let _running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        match checkpoint(writer, "PASSIVE") {
            Ok(_) => self.frames.store(0, Relaxed),
            Err(e) => tracing::debug!(error = %e, "WAL checkpoint by the writer failed"),
        }
    }

    /// Ask for a checkpoint soon (after a commit); never blocks.
    pub fn poke(&self) {
        if let Some(p) = &self.poke {
            let _ = p.try_send(());
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.poke.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(conn: &Connection, pokes: &mpsc::Receiver<()>, seen: &AtomicI64, running: &Mutex<()>) {
    loop {
        let stopping = matches!(
            pokes.recv_timeout(EVERY),
            Err(mpsc::RecvTimeoutError::Disconnected)
        );
        let t = std::time::Instant::now();
        let guard = running.lock().unwrap_or_else(|e| e.into_inner());
        let r = checkpoint(conn, "PASSIVE");
        drop(guard);
        tracing::trace!(frames = ?r.as_ref().ok(), took_ms = t.elapsed().as_millis() as u64, "WAL checkpoint");
        if let Ok(frames) = r {
            seen.store(frames, Relaxed);
        }
        match r {
            Ok(frames) if frames > TRUNCATE_FRAMES => {
                let t = std::time::Instant::now();
                let r = checkpoint(conn, "TRUNCATE");
                tracing::debug!(
                    frames,
                    took_ms = t.elapsed().as_millis() as u64,
                    "WAL truncated"
                );
                if let Err(e) = r {
                    tracing::warn!(error = %e, frames, "truncating WAL checkpoint failed");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
        }
        if stopping {
            return;
        }
    }
}

/// Run one checkpoint; returns the WAL's size in frames before it.
pub fn checkpoint(conn: &Connection, mode: &str) -> Result<i64, StoreError> {
    let (_busy, log, _done): (i64, i64, i64) =
        conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;

    Ok(log)
}
