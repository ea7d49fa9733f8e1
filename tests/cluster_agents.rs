//! Three real `xagent`s, each with its own ROOT, joined (`xCommand Cluster Join`) to a real
//! three-member etcd on loopback (issue 12 items 4–6 and the agent tests of item 8): a mode flip
//! through node 1's `xsh` is obeyed by node 3's listener; a CA added on node 2 lets node 1 accept
//! that CA's client; every node presents its own server certificate; with every etcd member
//! stopped the listeners keep serving (no failed handshake) and status says stale, and they
//! resync when etcd is back; a stopped agent whose revision was compacted away resyncs when it
//! starts; a peer with a bad local certificate keeps its last good generation, shows as lagging,
//! and the others are unaffected.
//!
//! Nothing here asserts on timing: every wait polls for an event up to a generous deadline.

mod agent_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_support::common::etcd::EtcdCluster;
use agent_support::*;
use xsh::certs::pki::LeafEku;

/// Waits until `node` accepts (`true`) or refuses the client; returns the served serial.
fn wait_handshake(
    node: &Node,
    cfg: &Arc<rustls::ClientConfig>,
    accept: bool,
    what: &str,
) -> String {
    wait_for(&format!("{}: {what}", node.name), || {
        match (sip::options_handshake(cfg, node.sip_port), accept) {
            (Ok(s), true) => Ok(s),
            (Err(e), false) => Ok(e),
            (r, _) => Err(format!("{r:?}")),
        }
    })
}

/// Three nodes joined to one etcd cluster under `prefix`, agents running and synced.
struct Cluster {
    nodes: Vec<Node>,
    etcd: EtcdCluster,
}

impl Cluster {
    /// `before_join` runs on node 1 before anyone joins (its files become the cluster's).
    fn start(prefix: &str, before_join: impl FnOnce(&Node)) -> Option<Cluster> {
        let etcd = EtcdCluster::start(3)?;
        let nodes: Vec<Node> = (1..=3).map(|i| Node::new(&format!("n{i}"))).collect();
        before_join(&nodes[0]);
        for n in &nodes {
            n.ok(&[&etcd.join_line(prefix, &n.name)]);
        }
        let mut c = Cluster { nodes, etcd };
        for n in &mut c.nodes {
            n.start();
        }
        for n in &c.nodes {
            n.wait_leaf("Cluster State", |s| s == "Synced");
        }
        c.wait_peers(0, 3, "Active");
        Some(c)
    }

    /// Waits until node `i`'s `xStatus Cluster` lists `count` peers, all with `status`.
    fn wait_peers(&self, i: usize, count: usize, status: &str) {
        let n = &self.nodes[i];
        wait_for(&format!("{}: {count} peers {status}", n.name), || {
            let doc = n.status("Cluster");
            let seen: Vec<String> = (1..=6)
                .filter_map(|p| leaf(&doc, &format!("Cluster Peer {p} Status")))
                .collect();
            if seen.len() == count && seen.iter().all(|s| s == status) {
                Ok(())
            } else {
                Err(format!("{doc}"))
            }
        });
    }

    /// The status of peer `name` in node `i`'s `xStatus Cluster`.
    fn peer_status(&self, i: usize, name: &str) -> String {
        let doc = self.nodes[i].status("Cluster");
        (1..=6)
            .find(|p| leaf(&doc, &format!("Cluster Peer {p} Name")).as_deref() == Some(name))
            .and_then(|p| leaf(&doc, &format!("Cluster Peer {p} Status")))
            .unwrap_or_default()
    }
}

const MODE: &str = "xConfiguration SIP TLS Certificate ExtendedKeyUsage Checking Mode";

#[test]
fn three_agents_obey_one_configuration_each_with_its_own_certificates() {
    if !require_openssl() {
        return;
    }
    let pki = Pki::new();
    let ca1 = pki.ca1_root();
    let Some(c) = Cluster::start("/xsh/agents1", |n1| n1.ca_add(&ca1)) else {
        return;
    };
    let [n1, n2, n3] = [&c.nodes[0], &c.nodes[1], &c.nodes[2]];
    // A serverAuth-only client certificate from the trusted CA1: refused while the mode is On.
    let sa = sip::client_any_server(&pki.issue(true, "sip-client", LeafEku::ServerAuth));
    wait_handshake(n3, &sa, false, "Mode On refuses a serverAuth-only client");

    // The mode flip through node 1's xsh is obeyed by node 3's listener.
    n1.ok(&[&format!("{MODE}: Off")]);
    wait_handshake(n3, &sa, true, "node 3 obeys node 1's Mode Off");
    // The status file follows the swap within one flush (100 ms), after the listener obeys.
    n3.wait_leaf("SIP TLS Listener Mode", |m| m == "Off");
    n1.ok(&[&format!("{MODE}: On")]);
    wait_handshake(n3, &sa, false, "node 3 obeys node 1's Mode On");

    // A CA added on node 2: node 1 accepts a client of that CA.
    n1.ok(&[&format!("{MODE}: Off")]);
    let partner = sip::client_any_server(&pki.issue(false, "partner", LeafEku::ServerAuth));
    wait_handshake(n1, &sa, true, "node 1 applied Mode Off");
    wait_handshake(n1, &partner, false, "CA2 is not trusted yet");
    n2.ca_add(&pki.ca2_root());
    wait_handshake(n1, &partner, true, "node 1 trusts the CA added on node 2");
    wait_handshake(n3, &partner, true, "node 3 trusts the CA added on node 2");

    // Each node presents its own server certificate.
    let mut serials = Vec::new();
    for n in [n1, n2, n3] {
        let served = wait_handshake(n, &sa, true, "handshake for the serial");
        assert_eq!(
            served,
            n.store_serial("Server"),
            "{}: own server serial",
            n.name
        );
        serials.push(served);
    }
    serials.sort();
    serials.dedup();
    assert_eq!(serials.len(), 3, "three different server serials");

    // Every node sees every peer at the cluster's generation.
    let generation = n1.wait_leaf("Cluster Generation", |g| g != "0");
    for (i, n) in c.nodes.iter().enumerate() {
        c.wait_peers(i, 3, "Active");
        n.wait_leaf("Cluster Generation", |g| g == generation);
        assert_eq!(n.status_leaf("Cluster Prefix"), "/xsh/agents1");
        assert_eq!(n.status_leaf("Cluster LocalPeer"), n.name);
    }

    // The product's force-resync, asked through node 2's xsh, is done by node 2's agent.
    let out = n2.ok(&["xCommand Cluster ForceConfigUpdate"]);
    assert!(out.contains("Requested"), "{out}");
    wait_for("node 2 resyncs on request", || {
        let e = n2.events();
        if e.contains("ForceConfigUpdate requested")
            && e.contains("resynced after xCommand Cluster ForceConfigUpdate")
        {
            Ok(())
        } else {
            Err(e)
        }
    });

    // A bad local certificate on node 3: it keeps its last good generation (Mode Off), the
    // others apply the next change, and node 1 sees node 3 lagging.
    std::fs::write(
        n3.certs().join("server.pem"),
        "-----BEGIN CERTIFICATE-----\ngarbage\n",
    )
    .unwrap();
    n3.wait_leaf("Agent LastReload Error", |e| e.contains("server.pem"));
    n1.ok(&[&format!("{MODE}: On")]);
    wait_handshake(n1, &sa, false, "node 1 applied Mode On");
    wait_handshake(n2, &sa, false, "node 2 applied Mode On");
    wait_for("node 1 sees node 3 lagging", || {
        let s = c.peer_status(0, "n3");
        if s == "Lagging" {
            Ok(())
        } else {
            Err(s)
        }
    });
    // Node 2 publishes its applied generation after it swapped: node 1 may see it a moment later.
    wait_for("node 1 sees node 2 active", || {
        let s = c.peer_status(0, "n2");
        if s == "Active" {
            Ok(())
        } else {
            Err(s)
        }
    });
    let served = sip::options_handshake(&sa, n3.sip_port).expect("node 3 still serves Mode Off");
    assert_eq!(
        served,
        serials_of(n3),
        "node 3 keeps its own certificate in force"
    );
    assert_eq!(n3.status_leaf("SIP TLS Listener Mode"), "Off");
}

/// The serial node `n`'s listener reports it presents (its generation in force).
fn serials_of(n: &Node) -> String {
    n.status_leaf("SIP TLS Listener ServerSerial")
}

/// Handshakes in a loop against one port until dropped; counts successes and failures.
struct HandshakeLoop {
    counts: Arc<Mutex<(u64, u64, Vec<String>)>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HandshakeLoop {
    fn start(port: u16, cfg: Arc<rustls::ClientConfig>) -> HandshakeLoop {
        let counts = Arc::new(Mutex::new((0, 0, Vec::new())));
        let stop = Arc::new(AtomicBool::new(false));
        let (c2, s2) = (counts.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s2.load(Ordering::Relaxed) {
                let r = sip::options_handshake(&cfg, port);
                let mut c = c2.lock().unwrap();
                match r {
                    Ok(_) => c.0 += 1,
                    Err(e) => {
                        c.1 += 1;
                        if c.2.len() < 10 {
                            c.2.push(e);
                        }
                    }
                }
                drop(c);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        HandshakeLoop {
            counts,
            stop,
            thread: Some(thread),
        }
    }

    fn counts(&self) -> (u64, u64, Vec<String>) {
        self.counts.lock().unwrap().clone()
    }

    /// Waits until `n` more handshakes succeeded.
    fn wait_more(&self, n: u64, what: &str) {
        let since = self.counts().0;
        wait_for(what, || {
            let c = self.counts();
            if c.0 >= since + n {
                Ok(())
            } else {
                Err(format!("{c:?}"))
            }
        });
    }
}

impl Drop for HandshakeLoop {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn etcd_outage_keeps_serving_stale_and_compaction_resyncs_a_stopped_agent() {
    if !require_openssl() {
        return;
    }
    let pki = Pki::new();
    let ca1 = pki.ca1_root();
    let Some(mut c) = Cluster::start("/xsh/agents2", |n1| n1.ca_add(&ca1)) else {
        return;
    };
    let mutual = sip::client_any_server(&pki.issue(true, "sip-mutual", LeafEku::Both));
    // Nodes 1 and 3 keep a client handshaking throughout; node 2's agent is restarted below.
    let loops: Vec<HandshakeLoop> = [&c.nodes[0], &c.nodes[2]]
        .iter()
        .map(|n| HandshakeLoop::start(n.sip_port, mutual.clone()))
        .collect();
    for l in &loops {
        l.wait_more(3, "handshakes before the outage");
    }

    // Every etcd member stopped: listeners keep serving, status says stale, writes are refused.
    c.etcd.stop_all();
    for n in &c.nodes {
        n.wait_leaf("Cluster State", |s| s == "Stale");
    }
    let refused = c.nodes[0].xsh(&[&format!("{MODE}: Off")]);
    assert!(
        !refused.ok,
        "a write while etcd is down is refused: {refused:?}"
    );
    for l in &loops {
        l.wait_more(5, "handshakes during the outage");
    }
    // A peer that starts while etcd is down starts from its cache, marked stale.
    c.nodes[1].agent.take();
    c.nodes[1].start();
    c.nodes[1].wait_leaf("Cluster State", |s| s == "Stale");
    wait_handshake(&c.nodes[1], &mutual, true, "node 2 serves its cache");

    // etcd back: everyone resyncs.
    c.etcd.start_all();
    for n in &c.nodes {
        n.wait_leaf("Cluster State", |s| s == "Synced");
    }
    for n in [&c.nodes[0], &c.nodes[2]] {
        assert!(
            n.events().contains("etcd is reachable again"),
            "{}",
            n.events()
        );
    }
    c.wait_peers(0, 3, "Active");
    for l in &loops {
        l.wait_more(3, "handshakes after the outage");
    }
    let counts: Vec<_> = loops.iter().map(HandshakeLoop::counts).collect();
    drop(loops);
    for (i, (ok, failed, errors)) in counts.iter().enumerate() {
        assert_eq!(
            *failed,
            0,
            "node {}: {ok} ok, failed: {errors:?}",
            2 * i + 1
        );
    }

    // A stopped agent whose revision is compacted away resyncs when it starts.
    c.nodes[2].agent.take();
    let sa = sip::client_any_server(&pki.issue(true, "sip-client", LeafEku::ServerAuth));
    for m in ["Off", "On", "Off"] {
        c.nodes[0].ok(&[&format!("{MODE}: {m}")]);
    }
    let text = c
        .etcd
        .get("/xsh/agents2/config")
        .expect("the cluster's configuration");
    let generation = text
        .lines()
        .find_map(|l| l.strip_prefix("# generation: "))
        .expect("a generation header")
        .trim()
        .to_string();
    c.etcd.compact();
    c.nodes[2].start();
    c.nodes[2].wait_leaf("Cluster State", |s| s == "Synced");
    wait_handshake(
        &c.nodes[2],
        &sa,
        true,
        "node 3 runs the compacted-away Mode Off",
    );
    c.nodes[0].wait_leaf("Cluster Generation", |g| g == generation);
    c.nodes[2].wait_leaf("Cluster AppliedGeneration", |g| g == generation);
    assert!(c.nodes[2]
        .events()
        .contains("the local cache had generation"));
}
