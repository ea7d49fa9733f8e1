//! The etcd store with a real 3-member etcd cluster: join and migration, parallel pushes from
//! three ROOTs, leader loss, quorum loss (writes refused, reads stale), leave.

#[path = "common/mod.rs"]
mod common;

use common::etcd::EtcdCluster;

/// The harness itself: members start, a leader is found, killed, and the cluster recovers.
#[test]
fn harness_survives_leader_loss_and_full_restart() {
    let Some(mut c) = EtcdCluster::start(3) else {
        return;
    };
    c.ctl(&["put", "k", "v1"]);
    let l = c.kill_leader();
    c.wait_healthy();
    assert_ne!(c.leader(), l);
    c.ctl(&["put", "k", "v2"]);
    c.stop_all();
    c.start_all();
    assert_eq!(c.get("k").as_deref(), Some("v2"));
    assert!(c.compact() > 0);
    assert_eq!(c.keys("k"), vec!["k".to_string()]);
}
