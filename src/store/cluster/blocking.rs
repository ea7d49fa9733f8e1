//! The synchronous face of the cluster for the store (and so for `xsh` and the engine): its own
//! current-thread tokio runtime, entered per call. Called from inside another runtime (the
//! agent's HTTPS plane), a call runs on a scoped thread of its own instead, so it never nests
//! runtimes.
//!
//! It also remembers whether the cluster answered: after a failed read it waits a few seconds
//! before asking again (each read would otherwise wait for the timeout) and the store serves
//! its cache, marked stale ([`Peer::stale`]).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Bootstrap, ClusterClient, ClusterError, ClusterSnapshot};

/// How long after a failed read the cache is served without asking the cluster again.
const RETRY_AFTER: Duration = Duration::from_secs(3);
/// How long a fresh read is reused by the reads that follow it (one shell request reads the
/// configuration several times).
const FRESH_FOR: Duration = Duration::from_millis(150);

#[derive(Debug, Default)]
struct Health {
    /// When the cluster last answered a read.
    ok_at: Option<Instant>,
    /// Since when, and why, it does not.
    down: Option<Down>,
}

/// Why the cluster does not answer, in the two forms its readers want.
#[derive(Debug)]
struct Down {
    at: Instant,
    /// The whole sentence, for the stale mark of reads ([`Peer::stale`]).
    sentence: String,
    /// The cause alone, which a refused write wraps in its own sentence
    /// ([`Peer::recently_down`]; wrapping the sentence said "the cluster (etcd)" twice).
    cause: String,
}

impl Down {
    fn of(e: &ClusterError) -> Down {
        let (sentence, cause) = match e {
            ClusterError::Unreachable(why) => (
                format!("the cluster (etcd) did not answer: {why}"),
                why.clone(),
            ),
            ClusterError::Unconfirmed(why) | ClusterError::Refused(why) => {
                (e.to_string(), why.clone())
            }
            e => (e.to_string(), e.to_string()),
        };
        Down {
            at: Instant::now(),
            sentence,
            cause,
        }
    }
}

/// One ROOT's connection to its cluster.
pub struct Peer {
    root: PathBuf,
    boot: Bootstrap,
    rt: tokio::runtime::Runtime,
    client: Mutex<Option<ClusterClient>>,
    health: Mutex<Health>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("root", &self.root)
            .field("boot", &self.boot)
            .finish()
    }
}

impl Peer {
    pub fn new(root: &Path, boot: Bootstrap) -> Result<Peer, ClusterError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| ClusterError::Io {
                path: root.to_path_buf(),
                op: "start the cluster client of",
                source,
            })?;
        Ok(Peer {
            root: root.to_path_buf(),
            boot,
            rt,
            client: Mutex::new(None),
            health: Mutex::default(),
        })
    }

    pub fn bootstrap(&self) -> &Bootstrap {
        &self.boot
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Runs `f` with the client on this peer's runtime, to completion.
    pub fn run<T, F, Fut>(&self, f: F) -> Result<T, ClusterError>
    where
        T: Send,
        F: FnOnce(ClusterClient) -> Fut + Send,
        Fut: std::future::Future<Output = Result<T, ClusterError>>,
    {
        let go = || {
            self.rt.block_on(async {
                let c = self.client().await?;
                f(c).await
            })
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| {
                s.spawn(go).join().unwrap_or_else(|_| {
                    Err(ClusterError::Unreachable(
                        "the cluster client stopped".into(),
                    ))
                })
            })
        } else {
            go()
        }
    }

    async fn client(&self) -> Result<ClusterClient, ClusterError> {
        if let Some(c) = self.client.lock().ok().and_then(|g| g.clone()) {
            return Ok(c);
        }
        let c = ClusterClient::connect(&self.boot).await?;
        if let Ok(mut g) = self.client.lock() {
            *g = Some(c.clone());
        }
        Ok(c)
    }

    fn note(&self, down: Option<&ClusterError>) {
        if let Ok(mut h) = self.health.lock() {
            match down {
                None => {
                    h.ok_at = Some(Instant::now());
                    h.down = None;
                }
                Some(e) => {
                    h.ok_at = None;
                    h.down = Some(Down::of(e));
                }
            }
        }
    }

    /// Reads the cluster now (one attempt), remembering whether it answered.
    pub fn load(&self) -> Result<ClusterSnapshot, ClusterError> {
        let r = self.run(|c| async move { c.load().await });
        self.note(r.as_ref().err());
        r
    }

    /// A read for the cache, unless a recent one answered (then `None`: the cache is fresh) or
    /// a recent one failed (then `None` too: the cache is served, stale).
    pub fn load_if_due(&self) -> Option<Result<ClusterSnapshot, ClusterError>> {
        if let Ok(h) = self.health.lock() {
            if h.ok_at.is_some_and(|t| t.elapsed() < FRESH_FOR) {
                return None;
            }
            if h.down
                .as_ref()
                .is_some_and(|d| d.at.elapsed() < RETRY_AFTER)
            {
                return None;
            }
        }
        Some(self.load())
    }

    /// Why the cache is stale (the cluster did not answer the last read), or `None`.
    pub fn stale(&self) -> Option<String> {
        self.health
            .lock()
            .ok()
            .and_then(|h| h.down.as_ref().map(|d| d.sentence.clone()))
    }

    /// Marks the cluster as answering or not after a write attempt.
    pub fn mark(&self, down: Option<&ClusterError>) {
        self.note(down);
    }

    /// Whether a write should fail at once: the cluster did not answer within the last few
    /// seconds (each write would otherwise wait its whole patience again). The cause alone:
    /// the caller says it in its own sentence (`ClusterError::Unreachable`).
    pub fn recently_down(&self) -> Option<String> {
        let h = self.health.lock().ok()?;
        h.down
            .as_ref()
            .filter(|d| d.at.elapsed() < RETRY_AFTER)
            .map(|d| d.cause.clone())
    }
}
