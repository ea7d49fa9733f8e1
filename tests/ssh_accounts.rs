//! The Unix accounts the SSH tests log in as are removed when the last server goes, also when
//! the test that held them panicked; accounts that existed before the tests are left alone.

mod ssh_support;

use ssh_support::{exists, read_created, ADMIN, ADMIN_GROUP, READONLY, READONLY_GROUP};

const ACCOUNTS: [(&str, &str); 4] = [
    ("passwd", ADMIN),
    ("passwd", READONLY),
    ("group", ADMIN_GROUP),
    ("group", READONLY_GROUP),
];

/// The accounts there before the tests: present and not listed as created by a test run.
fn preexisting() -> Vec<(&'static str, &'static str)> {
    let created = read_created();
    ACCOUNTS
        .into_iter()
        .filter(|(db, name)| exists(db, name) && !created.iter().any(|(_, n)| n == name))
        .collect()
}

fn check_after(before: &[(&str, &str)], what: &str) {
    if ssh_support::accounts_held_elsewhere() {
        // Another test process (a parallel run) still uses them; it removes them when done.
        ssh_support::common::cannot_run("another test process holds the test accounts");
        return;
    }
    for (db, name) in ACCOUNTS {
        let kept = before.contains(&(db, name));
        assert_eq!(
            exists(db, name),
            kept,
            "{what}: {db} {name} should {}",
            if kept { "be left alone" } else { "be removed" }
        );
    }
    assert!(read_created().is_empty(), "{what}: {:?}", read_created());
}

/// One test, so the two cases never overlap in this process.
#[test]
fn accounts_go_with_the_last_server_also_after_a_panic() {
    if let Some(why) = ssh_support::skip_reason() {
        ssh_support::common::cannot_run(&why);
        return;
    }
    let before = preexisting();
    {
        let srv = ssh_support::SshServer::start();
        for (db, name) in ACCOUNTS {
            assert!(exists(db, name), "{db} {name} missing while a server runs");
        }
        let f = srv.exec(ADMIN, Some("xstatus SystemUnit Product"), b"");
        assert!(f.status.success(), "{}", String::from_utf8_lossy(&f.stderr));
    }
    check_after(&before, "after the server dropped");

    let panicked = std::thread::spawn(|| {
        let _srv = ssh_support::SshServer::start();
        panic!("a test failing while its server runs");
    })
    .join();
    assert!(panicked.is_err());
    check_after(&before, "after a test panicked");
}
