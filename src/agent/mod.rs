//! The agent: watches `ROOT/config/` and `ROOT/certs/`, builds a new immutable [`Generation`]
//! with the same code as start-up, swaps it in with `arc_swap` (handshakes in flight keep the one
//! they loaded), runs the inbound listeners and the outbound zone checks, and publishes status.
//! A bad or torn file keeps the last good generation and is named in status and the event log.
//! This room knows no terminal; the shell reaches it only through files.

pub mod cluster;
pub mod established;
pub mod generation;
pub mod listener;
pub mod logfile;
pub mod logging;
pub mod peer;
pub mod report;
pub mod watch;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch as twatch};

use generation::{build, content_hash, Generation, ListenSpec};
use listener::Kind;
use report::Report;

/// State shared by the agent's tasks.
pub struct Shared {
    pub root: PathBuf,
    pub current: ArcSwap<Generation>,
    pub report: Report,
    pub reloads: AtomicU64,
    /// Inbound connections open now (both listeners), for `Agent MaxConnections`.
    pub connections: std::sync::atomic::AtomicUsize,
    /// Content hash of the files of the last refused reload (0: none), so a bad file that stays is
    /// reported once, not again at every wake-up.
    pub failed_hash: AtomicU64,
    /// Established inbound connections (for `Agent Reload CloseRefused Mode`).
    pub established: established::Registry,
}

/// Agent options.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Print listener addresses and reload results on stdout (tests and the quick start read it).
    pub verbose: bool,
    /// The diagnostic log's filter, set from `Logging Level` by every generation (none: the
    /// caller installed no subscriber of ours, e.g. the quick start inside xsh).
    pub log: Option<logging::LogControl>,
}

/// Why the agent could not start.
#[derive(Debug)]
pub enum StartError {
    /// Another agent holds `ROOT/status/xagent.lock`.
    AlreadyRunning(PathBuf),
    /// The first generation could not be built.
    Build(generation::BuildError),
    Io(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::AlreadyRunning(p) => write!(
                f,
                "another xagent is running on this root (lock {} is held)",
                p.display()
            ),
            StartError::Build(e) => write!(f, "cannot build the first generation: {e}"),
            StartError::Io(e) => f.write_str(e),
        }
    }
}

/// Sends a message to systemd's notify socket, when there is one.
pub fn sd_notify(msg: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() else {
        return;
    };
    let p = path.to_string_lossy().to_string();
    if let Some(name) = p.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        if let Ok(addr) = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()) {
            let _ = sock.send_to_addr(msg.as_bytes(), &addr);
        }
    } else {
        let _ = sock.send_to(msg.as_bytes(), &p);
    }
}

fn monotonic_usec() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000)
        .unwrap_or(0)
}

/// Runs the agent until SIGTERM/SIGINT.
pub fn run(root: &Path, opts: Options) -> Result<(), StartError> {
    let status_dir = root.join("status");
    std::fs::create_dir_all(&status_dir)
        .map_err(|e| StartError::Io(format!("cannot create {}: {e}", status_dir.display())))?;
    let lock_path = status_dir.join("xagent.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| StartError::Io(format!("cannot open {}: {e}", lock_path.display())))?;
    if lock.try_lock().is_err() {
        return Err(StartError::AlreadyRunning(lock_path));
    }
    // `xagent.lock` is never deleted by an agent, but anyone may delete it: a second agent would
    // then lock a new file of the same name. The root folder itself cannot go while it holds the
    // configuration, so its flock is what admits one agent; the file stays for older agents.
    let root_lock = std::fs::File::open(root)
        .map_err(|e| StartError::Io(format!("cannot open {}: {e}", root.display())))?;
    if root_lock.try_lock().is_err() {
        return Err(StartError::AlreadyRunning(root.to_path_buf()));
    }
    let first = build(root, 1, None).map_err(StartError::Build)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // Blocking work is a rebuild and the status flush, one at a time each; every extra
        // thread would get its own malloc arena and keep what the 1,000-zone snapshot freed.
        .max_blocking_threads(2)
        .enable_all()
        .build()
        .map_err(|e| StartError::Io(format!("cannot start the runtime: {e}")))?;
    let shared = Arc::new(Shared {
        root: root.to_path_buf(),
        current: ArcSwap::from_pointee(first),
        report: Report::new(root),
        reloads: AtomicU64::new(1),
        connections: std::sync::atomic::AtomicUsize::new(0),
        failed_hash: AtomicU64::new(0),
        established: established::Registry::default(),
    });
    shared.report.set_limits(shared.current.load().logs);
    rt.block_on(main_loop(shared, opts));
    drop(root_lock);
    drop(lock);
    Ok(())
}

struct Listeners {
    spec: Option<ListenSpec>,
    stops: Vec<(twatch::Sender<bool>, tokio::task::JoinHandle<()>)>,
    /// The HTTPS plane's routes (built once: its sessions outlive a rebind); None when the
    /// engine or the accounts of the root cannot be opened (an event says why).
    web: Option<axum::Router>,
    web_counters: Arc<crate::web::server::Counters>,
}

/// The HTTPS plane's router for the agent's root.
fn web_router(shared: &Shared) -> Result<axum::Router, String> {
    let engine = crate::engine::Engine::open(&shared.root, crate::handlers())
        .map_err(|e| format!("cannot open the configuration: {}", e.message))?;
    let accounts = crate::accounts::Accounts::open(&shared.root)
        .map_err(|e| format!("cannot open the accounts: {e}"))?;
    Ok(crate::web::router(crate::web::WebState::new(
        engine, accounts,
    )))
}

impl Listeners {
    /// Stops every accept loop and waits until each has dropped its socket, so a port that stays
    /// the same can be bound again at once.
    async fn stop_all(&mut self) {
        for (s, _) in &self.stops {
            let _ = s.send(true);
        }
        for (_, task) in self.stops.drain(..) {
            let _ = task.await;
        }
    }
}

impl Listeners {
    async fn apply(&mut self, shared: &Arc<Shared>, spec: &ListenSpec, verbose: bool) {
        if self.spec.as_ref() == Some(spec) {
            return;
        }
        self.stop_all().await;
        for (kind, port) in [(Kind::Sip, spec.sip_port), (Kind::Tunnel, spec.tunnel_port)] {
            let stats = match kind {
                Kind::Sip => &shared.report.sip,
                Kind::Tunnel => &shared.report.tunnel,
            };
            let Some(port) = port else {
                if let Ok(mut s) = stats.state.lock() {
                    *s = "Off".into();
                }
                continue;
            };
            match TcpListener::bind((spec.address.as_str(), port)).await {
                Ok(l) => {
                    let addr = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
                    if let Ok(mut s) = stats.state.lock() {
                        *s = "Active".into();
                    }
                    if let Ok(mut s) = stats.address.lock() {
                        *s = addr.clone();
                    }
                    if verbose {
                        println!("xagent: {} listening on {addr}", kind.name());
                    }
                    shared
                        .report
                        .event(kind.name(), "INFO", &format!("listening on {addr}"));
                    let (tx, rx) = twatch::channel(false);
                    let task = tokio::spawn(listener::serve(kind, l, shared.clone(), rx));
                    self.stops.push((tx, task));
                }
                Err(e) => {
                    if let Ok(mut s) = stats.state.lock() {
                        *s = "Failed".into();
                    }
                    let msg = format!("cannot listen on {}:{port}: {e}", spec.address);
                    if let Ok(mut s) = stats.last_rejection.lock() {
                        *s = msg.clone();
                    }
                    shared.report.event(kind.name(), "ERROR", &msg);
                }
            }
        }
        if let Some(port) = spec.https_port {
            self.start_https(shared, &spec.address, port, verbose).await;
        }
        self.spec = Some(spec.clone());
        shared.report.mark();
    }

    /// Binds the HTTPS plane; each connection takes the TLS config of the generation in force
    /// when it is accepted, so a new server certificate needs no rebind.
    async fn start_https(&mut self, shared: &Arc<Shared>, address: &str, port: u16, verbose: bool) {
        let Some(app) = self.web.clone() else { return };
        match TcpListener::bind((address, port)).await {
            Ok(l) => {
                let addr = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
                if verbose {
                    println!("xagent: https listening on {addr}");
                }
                shared
                    .report
                    .event("https", "INFO", &format!("listening on {addr}"));
                let sh = shared.clone();
                let tls: crate::web::server::TlsSource =
                    Arc::new(move || sh.current.load().https.clone());
                let (tx, rx) = twatch::channel(false);
                let task = tokio::spawn(crate::web::server::serve(
                    l,
                    app,
                    tls,
                    rx,
                    self.web_counters.clone(),
                ));
                self.stops.push((tx, task));
            }
            Err(e) => shared.report.event(
                "https",
                "ERROR",
                &format!("cannot listen on {address}:{port}: {e}"),
            ),
        }
    }
}

/// Applies the generation's `Logging Level` to the diagnostic log; a change is an event.
fn apply_log_level(shared: &Shared, opts: &Options) {
    let Some(log) = &opts.log else { return };
    let level = shared.current.load().log_level;
    if let Some(before) = log.set(level) {
        shared.report.event(
            "agent",
            "INFO",
            &format!("logging level {level} (was {before})"),
        );
    }
}

fn publish_generation(shared: &Shared, result: &str, error: &str) {
    let g = shared.current.load();
    if let Ok(mut a) = shared.report.agent.lock() {
        a.generation = g.config_generation;
        a.last_reload_time = crate::store::now_rfc3339();
        a.last_reload_result = result.to_string();
    }
    if let Ok(mut x) = shared.report.extra.lock() {
        x.insert(
            "Agent Reloads".into(),
            shared.reloads.load(Ordering::Relaxed).to_string(),
        );
        x.insert("Agent LastReload Error".into(), error.to_string());
        x.insert("SIP TLS Listener Mode".into(), g.mode.to_string());
        x.insert(
            "SIP TLS Listener ServerSerial".into(),
            g.server_serial.clone(),
        );
        x.insert(
            "Tunnel Listener ServerSerial".into(),
            g.server_serial.clone(),
        );
    }
    // Written by the 100 ms flush tick, off the workers that run handshakes.
    shared.report.mark();
}

/// The files are back to what the generation in force was built from (an admin undid a bad
/// edit): a refused reload's error no longer applies, so status must stop naming that file.
fn clear_stale_error(shared: &Shared, number: u64) {
    let stale = shared
        .report
        .extra
        .lock()
        .map(|x| {
            x.get("Agent LastReload Error")
                .is_some_and(|e| !e.is_empty())
        })
        .unwrap_or(false);
    if stale {
        shared.report.event(
            "reload",
            "INFO",
            &format!("the files match generation {number} in force again; the last reload error no longer applies"),
        );
        publish_generation(shared, "ok (files match the generation in force)", "");
    }
}

/// Rebuilds from the files; swaps when the content changed and the build succeeded.
/// Returns true when a new generation was swapped in.
async fn reload(shared: &Arc<Shared>, forced: bool, opts: &Options) -> bool {
    let verbose = opts.verbose;
    let prev = shared.current.load_full();
    let root = shared.root.clone();
    // Off the main loop: reading the watched files is the slow part of a wake-up.
    let r2 = root.clone();
    let hash = tokio::task::spawn_blocking(move || content_hash(&r2))
        .await
        .unwrap_or(0);
    if !forced && hash == prev.hash {
        clear_stale_error(shared, prev.number);
        return false;
    }
    if !forced && hash == shared.failed_hash.load(Ordering::Relaxed) {
        return false;
    }
    sd_notify(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
    let number = shared.reloads.load(Ordering::Relaxed) + 1;
    let p2 = prev.clone();
    let built = tokio::task::spawn_blocking(move || build(&root, number, Some(&p2))).await;
    let ok = match built {
        Ok(Ok(g)) => {
            if g.hash == prev.hash && !forced {
                clear_stale_error(shared, prev.number);
                sd_notify("READY=1");
                return false;
            }
            shared.reloads.store(number, Ordering::Relaxed);
            shared.failed_hash.store(0, Ordering::Relaxed);
            let msg = format!(
                "applied generation {number} (configuration generation {}, EKU mode {}, server serial {}, client serial {})",
                g.config_generation, g.mode, g.server_serial, g.client_serial
            );
            shared.report.set_limits(g.logs);
            shared.current.store(Arc::new(g));
            apply_log_level(shared, opts);
            shared.report.event("reload", "INFO", &msg);
            established::close_refused(shared);
            publish_generation(shared, "ok", "");
            if verbose {
                println!("xagent: {msg}");
            }
            true
        }
        Ok(Err(e)) => {
            shared.failed_hash.store(hash, Ordering::Relaxed);
            let msg = format!("kept generation {} because {e}", prev.number);
            shared.report.event("reload", "ERROR", &msg);
            publish_generation(shared, &format!("failed: {e}"), &e.to_string());
            if verbose {
                println!("xagent: {msg}");
            }
            false
        }
        Err(e) => {
            shared
                .report
                .event("reload", "ERROR", &format!("reload task failed: {e}"));
            false
        }
    };
    sd_notify("READY=1");
    ok
}

/// Starts the cluster task when the root has a bootstrap file; a file that cannot be read is
/// an event and the agent serves its local files.
fn start_cluster(
    shared: &Arc<Shared>,
    tx: mpsc::Sender<cluster::ReloadRequest>,
) -> Option<cluster::Handle> {
    match crate::store::cluster::Bootstrap::load(&shared.root) {
        Ok(Some(b)) => Some(cluster::start(shared.clone(), b, tx)),
        Ok(None) => None,
        Err(e) => {
            shared.report.event(
                "cluster",
                "ERROR",
                &format!("cannot read the cluster bootstrap file: {e}; serving the local files"),
            );
            None
        }
    }
}

/// Reloads and, when a new generation came into force, applies its listeners. True when the
/// zone checks are due: the outbound peers changed, or the reload was forced.
async fn reload_apply(
    shared: &Arc<Shared>,
    listeners: &mut Listeners,
    forced: bool,
    opts: &Options,
) -> bool {
    let before = shared.current.load().outbound;
    if !reload(shared, forced, opts).await {
        return false;
    }
    let spec = shared.current.load().listen.clone();
    listeners.apply(shared, &spec, opts.verbose).await;
    forced || shared.current.load().outbound != before
}

async fn main_loop(shared: Arc<Shared>, opts: Options) {
    // Signal handlers before READY=1: systemd may send ExecReload's SIGHUP right after READY, and
    // SIGHUP's default action would kill the agent.
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    let web = match web_router(&shared) {
        Ok(r) => Some(r),
        Err(e) => {
            shared.report.event("https", "ERROR", &e);
            None
        }
    };
    let mut listeners = Listeners {
        spec: None,
        stops: Vec::new(),
        web,
        web_counters: Arc::default(),
    };
    apply_log_level(&shared, &opts);
    let spec = shared.current.load().listen.clone();
    listeners.apply(&shared, &spec, opts.verbose).await;
    publish_generation(&shared, "ok", "");
    // Once at start-up, so status is on disk by the time `ready` is announced.
    shared.report.flush();
    shared.report.event(
        "agent",
        "INFO",
        &format!(
            "started on {} (pid {})",
            shared.root.display(),
            std::process::id()
        ),
    );
    sd_notify("READY=1");
    if opts.verbose {
        println!("xagent: ready");
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let _watcher = watch::start(&shared.root, tx.clone());
    let (cluster_tx, mut cluster_rx) = mpsc::channel::<cluster::ReloadRequest>(4);
    let cluster = start_cluster(&shared, cluster_tx);
    let mut flush = tokio::time::interval(Duration::from_millis(100));
    let mut poll = tokio::time::interval(Duration::from_secs(1));
    let mut zones_at = tokio::time::Instant::now();
    let zone_checks = Arc::new(tokio::sync::Mutex::new(()));
    let spawn_zone_check = |shared: &Arc<Shared>| {
        let sh = shared.clone();
        let guard = zone_checks.clone();
        tokio::spawn(async move {
            if let Ok(_g) = guard.try_lock() {
                peer::check_all(sh).await;
            }
        });
    };
    spawn_zone_check(&shared);
    loop {
        let interval = shared.current.load().status_interval;
        tokio::select! {
            Some(()) = rx.recv() => {
                // Debounce: a save is often several events (temp write, rename, folder fsync).
                tokio::time::sleep(Duration::from_millis(3)).await;
                while rx.try_recv().is_ok() {}
                if reload_apply(&shared, &mut listeners, false, &opts).await {
                    spawn_zone_check(&shared);
                    zones_at = tokio::time::Instant::now();
                }
            }
            Some(req) = cluster_rx.recv() => {
                // The cluster task wrote a new snapshot into the files: rebuild now, without
                // waiting for inotify, and tell it when the generation is in force.
                if reload_apply(&shared, &mut listeners, false, &opts).await {
                    spawn_zone_check(&shared);
                    zones_at = tokio::time::Instant::now();
                }
                let _ = req.done.send(());
            }
            _ = async { match hup.as_mut() { Some(h) => { h.recv().await; } None => std::future::pending::<()>().await } } => {
                shared.report.event("agent", "INFO", "SIGHUP: forced reload");
                if reload_apply(&shared, &mut listeners, true, &opts).await {
                    spawn_zone_check(&shared);
                }
            }
            _ = async { match term.as_mut() { Some(h) => { h.recv().await; } None => std::future::pending::<()>().await } } => break,
            _ = async { match int.as_mut() { Some(h) => { h.recv().await; } None => std::future::pending::<()>().await } } => break,
            _ = flush.tick() => {
                // The snapshot write fsyncs; keep it off the workers that run handshakes.
                let sh = shared.clone();
                let _ = tokio::task::spawn_blocking(move || sh.report.flush()).await;
            }
            _ = poll.tick() => {
                // Safety net for missed events (a watch lost to an overflow, a filesystem without inotify).
                if reload_apply(&shared, &mut listeners, false, &opts).await
                    || zones_at.elapsed() >= interval
                {
                    spawn_zone_check(&shared);
                    zones_at = tokio::time::Instant::now();
                }
            }
        }
    }
    sd_notify("STOPPING=1");
    shared.report.event(
        "agent",
        "INFO",
        "stopping: listeners closed, draining connections",
    );
    if let Some(c) = cluster {
        c.stop().await;
    }
    listeners.stop_all().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    shared.report.retire();
}
