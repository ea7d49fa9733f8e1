//! A real etcd 3.4 cluster for tests: N members on 127.0.0.1 with ephemeral client and peer ports,
//! a unique `--initial-cluster-token`, data dirs (0700) in a tempdir, fast heartbeat/election.
//! Members are stopped by their pid only (never `/etc/init.d/etcd`, which kills every etcd on the
//! machine). Cluster queries go through `etcdctl`, so a test needs no async runtime.
//!
//! `EtcdCluster::start(3)` returns `None` (after [`super::cannot_run`]: a skip outside CI, a
//! failure under `CI=true`) when `etcd`/`etcdctl` are missing.
//!
//! `EtcdCluster::start_tls(n, client_cert_auth)` serves the client URLs over TLS (`https://`,
//! `--cert-file --key-file`, and `--trusted-ca-file --client-cert-auth` when asked) with
//! certificates from a CA made for the cluster ([`EtcdPki`]); peer URLs stay `http://`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One member: its ports, data dir and (while running) its process.
struct Member {
    name: String,
    client: u16,
    peer: u16,
    data: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// A running (or stopped) etcd cluster owned by one test.
pub struct EtcdCluster {
    dir: tempfile::TempDir,
    token: String,
    members: Vec<Member>,
    tls: Option<EtcdPki>,
}

/// The PEM files of a TLS cluster: one CA issues the members' server certificate (serverAuth and
/// clientAuth: etcd's gateway dials its own member with it) and a client certificate for
/// `etcdctl` and the tests' peers.
pub struct EtcdPki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub client_cert_auth: bool,
}

impl EtcdPki {
    fn new(dir: &Path, client_cert_auth: bool) -> EtcdPki {
        use xsh::certs::pki::{LeafEku, LeafSpec, TestCa};
        let ca = TestCa::new_root("xsh test etcd CA").expect("etcd CA");
        let server = ca
            .issue(&LeafSpec::new("etcd member", LeafEku::Both))
            .expect("etcd server certificate");
        let client = ca
            .issue(&LeafSpec::new("xsh etcd client", LeafEku::ClientAuth))
            .expect("etcd client certificate");
        let put = |name: &str, text: &str| {
            let p = dir.join(name);
            fs::write(&p, text).expect("write a PEM file");
            p
        };
        EtcdPki {
            ca: put("etcd-ca.pem", ca.root_pem()),
            server_cert: put("etcd-server.pem", &server.chain_pem),
            server_key: put("etcd-server.key", &server.key_pem),
            client_cert: put("etcd-client.pem", &client.chain_pem),
            client_key: put("etcd-client.key", &client.key_pem),
            client_cert_auth,
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("an ephemeral port")
}

/// `true` when `etcd` and `etcdctl` run; otherwise `cannot_run` and `false`.
pub fn require_etcd() -> bool {
    super::require_tool("etcd", "--version", "etcd-server")
        && super::require_tool("etcdctl", "version", "etcd-client")
}

impl EtcdCluster {
    /// Starts `n` members and waits until every one is healthy. `None` when etcd is missing.
    pub fn start(n: usize) -> Option<EtcdCluster> {
        Self::start_with(n, None)
    }

    /// Starts `n` members serving their client URLs over TLS; with `client_cert_auth` they
    /// also require a client certificate from the cluster's CA. `None` when etcd is missing.
    pub fn start_tls(n: usize, client_cert_auth: bool) -> Option<EtcdCluster> {
        Self::start_with(n, Some(client_cert_auth))
    }

    fn start_with(n: usize, tls: Option<bool>) -> Option<EtcdCluster> {
        if !require_etcd() {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let tls = tls.map(|auth| EtcdPki::new(dir.path(), auth));
        let mut used = std::collections::HashSet::new();
        let mut port = || loop {
            let p = free_port();
            if used.insert(p) {
                return p;
            }
        };
        let members = (0..n)
            .map(|i| Member {
                name: format!("m{}", i + 1),
                client: port(),
                peer: port(),
                data: dir.path().join(format!("m{}.data", i + 1)),
                log: dir.path().join(format!("m{}.log", i + 1)),
                child: None,
            })
            .collect();
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let token = format!(
            "xsh-test-{}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        let mut c = EtcdCluster {
            dir,
            token,
            members,
            tls,
        };
        for m in &c.members {
            fs::create_dir(&m.data).expect("data dir");
            fs::set_permissions(&m.data, fs::Permissions::from_mode(0o700)).expect("chmod 700");
        }
        c.start_all();
        Some(c)
    }

    fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn spawn(&mut self, i: usize) {
        let cluster = self.initial_cluster();
        let token = self.token.clone();
        let scheme = self.scheme();
        let mut tls_args: Vec<std::ffi::OsString> = Vec::new();
        if let Some(t) = &self.tls {
            tls_args.extend(["--cert-file".into(), t.server_cert.clone().into()]);
            tls_args.extend(["--key-file".into(), t.server_key.clone().into()]);
            if t.client_cert_auth {
                tls_args.extend(["--trusted-ca-file".into(), t.ca.clone().into()]);
                tls_args.push("--client-cert-auth".into());
            }
        }
        let m = &mut self.members[i];
        if m.child.is_some() {
            return;
        }
        let peer = format!("http://127.0.0.1:{}", m.peer);
        let client = format!("{scheme}://127.0.0.1:{}", m.client);
        let child = Command::new("etcd")
            .args(&tls_args)
            .arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(&m.data)
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--initial-cluster",
                &cluster,
                "--initial-cluster-token",
                &token,
            ])
            .args(["--initial-cluster-state", "new"])
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .args(["--logger", "zap", "--log-outputs"])
            .arg(&m.log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcd starts");
        m.child = Some(child);
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The PEM files of a TLS cluster (`None` for a plain one).
    pub fn pki(&self) -> Option<&EtcdPki> {
        self.tls.as_ref()
    }

    /// The client URLs of every member (`http://127.0.0.1:PORT`, `https://` under TLS),
    /// running or not.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("{}://127.0.0.1:{}", self.scheme(), m.client))
            .collect()
    }

    /// The endpoints joined with commas, as `xCommand Cluster Join Endpoints:` takes them.
    pub fn endpoints_arg(&self) -> String {
        self.endpoints().join(",")
    }

    /// The shell line that joins a node to this cluster under `prefix` as `peer`.
    pub fn join_line(&self, prefix: &str, peer: &str) -> String {
        format!(
            "xCommand Cluster Join Endpoints: \"{}\" Prefix: \"{prefix}\" PeerName: \"{peer}\"",
            self.endpoints_arg()
        )
    }

    fn running(&self) -> Vec<usize> {
        (0..self.members.len())
            .filter(|&i| self.members[i].child.is_some())
            .collect()
    }

    /// Runs `etcdctl` against the given members; (success, stdout, stderr).
    fn etcdctl(&self, members: &[usize], args: &[&str]) -> (bool, String, String) {
        let eps: Vec<String> = members
            .iter()
            .map(|&i| format!("{}://127.0.0.1:{}", self.scheme(), self.members[i].client))
            .collect();
        let mut tls: Vec<std::ffi::OsString> = Vec::new();
        if let Some(t) = &self.tls {
            tls.extend(["--cacert".into(), t.ca.clone().into()]);
            tls.extend(["--cert".into(), t.client_cert.clone().into()]);
            tls.extend(["--key".into(), t.client_key.clone().into()]);
        }
        let out = Command::new("etcdctl")
            .args(&tls)
            .arg(format!("--endpoints={}", eps.join(",")))
            .args(["--dial-timeout=1s", "--command-timeout=3s"])
            .args(args)
            .env("ETCDCTL_API", "3")
            .stdin(Stdio::null())
            .output()
            .expect("etcdctl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs `etcdctl ARGS` against the running members; panics when it fails.
    pub fn ctl(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.etcdctl(&self.running(), args);
        assert!(ok, "etcdctl {args:?} failed: {err}");
        out
    }

    fn check_alive(&mut self) {
        for m in &mut self.members {
            if let Some(c) = m.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    let log = fs::read_to_string(&m.log).unwrap_or_default();
                    let tail: String = log.lines().rev().take(15).collect::<Vec<_>>().join("\n");
                    panic!("etcd member {} exited ({st}); log tail:\n{tail}", m.name);
                }
            }
        }
    }

    /// Waits (≤ 60 s) until every running member answers healthy and a leader is elected.
    pub fn wait_healthy(&mut self) {
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            self.check_alive();
            let running = self.running();
            let (ok, _, err) = self.etcdctl(&running, &["endpoint", "health"]);
            if ok && self.leader_among(&running).is_some() {
                return;
            }
            assert!(Instant::now() < until, "etcd not healthy after 60 s: {err}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `(member index, its status JSON)` for each running member that answers.
    fn statuses(&self, members: &[usize]) -> Vec<(usize, serde_json::Value)> {
        members
            .iter()
            .filter_map(|&i| {
                let (ok, out, _) = self.etcdctl(&[i], &["endpoint", "status", "-w", "json"]);
                if !ok {
                    return None;
                }
                let v: serde_json::Value = serde_json::from_str(&out).ok()?;
                Some((i, v.get(0)?.get("Status")?.clone()))
            })
            .collect()
    }

    fn leader_among(&self, members: &[usize]) -> Option<usize> {
        let st = self.statuses(members);
        let leader = st.iter().find_map(|(_, s)| s.get("leader")?.as_u64())?;
        if leader == 0 {
            return None;
        }
        st.iter()
            .find(|(_, s)| s["header"]["member_id"].as_u64() == Some(leader))
            .map(|(i, _)| *i)
    }

    /// The index of the current leader (waits for one, ≤ 60 s).
    pub fn leader(&self) -> usize {
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(l) = self.leader_among(&self.running()) {
                return l;
            }
            assert!(Instant::now() < until, "no etcd leader after 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILLs member `i` (by its pid) and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the current leader; returns its index.
    pub fn kill_leader(&mut self) -> usize {
        let l = self.leader();
        self.kill(l);
        l
    }

    /// Starts member `i` again on its data dir (no wait).
    pub fn start_member(&mut self, i: usize) {
        self.spawn(i);
    }

    /// Kills every member.
    pub fn stop_all(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }

    /// Starts every stopped member on its data dir and waits until the cluster is healthy.
    pub fn start_all(&mut self) {
        for i in 0..self.members.len() {
            self.spawn(i);
        }
        self.wait_healthy();
    }

    /// The current cluster revision.
    pub fn revision(&self) -> i64 {
        let st = self.statuses(&self.running());
        st.iter()
            .filter_map(|(_, s)| s["header"]["revision"].as_i64())
            .max()
            .expect("a member answers its status")
    }

    /// Compacts the key space up to the current revision; returns it.
    pub fn compact(&self) -> i64 {
        let rev = self.revision();
        self.ctl(&["compact", &rev.to_string(), "--physical"]);
        rev
    }

    /// The value of `key` (`None` when absent).
    pub fn get(&self, key: &str) -> Option<String> {
        let out = self.ctl(&["get", key, "--print-value-only"]);
        if out.is_empty() {
            None
        } else {
            Some(out.strip_suffix('\n').unwrap_or(&out).to_string())
        }
    }

    /// The keys under `prefix`, in key order.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        self.ctl(&["get", prefix, "--prefix", "--keys-only"])
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// The pids of the running members (for CPU figures).
    pub fn pids(&self) -> Vec<u32> {
        self.members
            .iter()
            .filter_map(|m| m.child.as_ref().map(Child::id))
            .collect()
    }

    /// The folder holding the data dirs and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        self.stop_all();
    }
}
