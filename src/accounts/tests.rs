use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use super::*;

fn root() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("config")).unwrap();
    d
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn quick() -> Lockout {
    Lockout {
        attempts: 3,
        window: Duration::from_secs(60),
        duration: Duration::from_secs(600),
    }
}

#[test]
fn add_list_verify_delete() {
    let d = root();
    let a = Accounts::open(d.path()).unwrap();
    assert!(a.list().unwrap().is_empty());
    a.add("alice", "alice-password", Access::ReadWrite).unwrap();
    a.add_with("bob", "bob-password", Access::ReadOnly, true, false)
        .unwrap();
    assert_eq!(mode(a.path()), 0o600);
    let text = std::fs::read_to_string(a.path()).unwrap();
    assert!(!text.contains("alice-password") && text.contains("$argon2id$"));
    let l = a.list().unwrap();
    assert_eq!(l.len(), 2);
    assert_eq!(
        l[1],
        Account {
            name: "bob".into(),
            access: Access::ReadOnly,
            web: true,
            api: false
        }
    );
    let ok = a
        .verify("ALICE", "alice-password", "10.0.0.1", &quick())
        .unwrap();
    assert_eq!(ok.name, "alice");
    assert!(matches!(
        a.add("Alice", "another-password", Access::ReadOnly),
        Err(AccountError::Exists { .. })
    ));
    // Another handle (another process) sees the change.
    let b = Accounts::open(d.path()).unwrap();
    assert_eq!(b.delete_id(1).unwrap(), "alice");
    assert_eq!(a.list().unwrap().len(), 1);
    assert!(matches!(
        a.delete("alice"),
        Err(AccountError::NotFound { .. })
    ));
    a.delete("BOB").unwrap();
    assert!(a.list().unwrap().is_empty());
}

#[test]
fn wrong_and_unknown_answer_the_same() {
    let d = root();
    let a = Accounts::open(d.path()).unwrap();
    a.add("carol", "carol-password", Access::ReadWrite).unwrap();
    let r = Lockout {
        attempts: 100,
        ..quick()
    };
    let wrong = a.verify("carol", "nope-nope", "h", &r).unwrap_err();
    let unknown = a.verify("nobody", "nope-nope", "h", &r).unwrap_err();
    assert!(matches!(wrong, LoginError::Wrong));
    assert_eq!(wrong.to_string(), unknown.to_string());
}

#[test]
fn lockout_before_hashing_and_after_restart() {
    let d = root();
    let a = Accounts::open(d.path()).unwrap();
    a.add("dave", "dave-password", Access::ReadWrite).unwrap();
    for _ in 0..3 {
        assert!(matches!(
            a.verify("dave", "guess-guess", "10.1.1.1", &quick()),
            Err(LoginError::Wrong)
        ));
    }
    // The right password is refused now, from any address.
    let e = a
        .verify("dave", "dave-password", "10.2.2.2", &quick())
        .unwrap_err();
    assert!(
        matches!(e, LoginError::LockedOut { seconds_left } if seconds_left > 500),
        "{e}"
    );
    // A fresh handle (the agent restarted) still refuses it: the file holds the lockout.
    let fresh = Accounts::open(d.path()).unwrap();
    assert!(matches!(
        fresh.verify("dave", "dave-password", "10.3.3.3", &quick()),
        Err(LoginError::LockedOut { .. })
    ));
    assert!(fresh.locked_seconds("dave").unwrap() > 500);
    // The administrator's unlock ends it.
    fresh
        .modify(
            "dave",
            &Modify {
                unlock: true,
                ..Modify::default()
            },
        )
        .unwrap();
    assert_eq!(fresh.locked_seconds("dave").unwrap(), 0);
    fresh
        .verify("dave", "dave-password", "10.3.3.3", &quick())
        .unwrap();
}

#[test]
fn clones_share_the_lockout_and_addresses_lock_too() {
    let d = root();
    let a = Accounts::open(d.path()).unwrap();
    a.add("erin", "erin-password", Access::ReadWrite).unwrap();
    let b = a.clone();
    // An address trying three different unknown names is locked, for every name.
    for n in ["x1", "x2", "x3"] {
        assert!(matches!(
            b.verify(n, "whatever-pw", "192.0.2.9", &quick()),
            Err(LoginError::Wrong)
        ));
    }
    assert!(matches!(
        a.verify("erin", "erin-password", "192.0.2.9", &quick()),
        Err(LoginError::LockedOut { .. })
    ));
    a.verify("erin", "erin-password", "192.0.2.10", &quick())
        .unwrap();
}

#[test]
fn disabled_accounts_cannot_log_in() {
    let d = root();
    let a = Accounts::open(d.path()).unwrap();
    a.add("fred", "fred-password", Access::Disabled).unwrap();
    assert!(matches!(
        a.verify("fred", "fred-password", "h", &quick()),
        Err(LoginError::Disabled)
    ));
    // A wrong password says nothing about the state.
    assert!(matches!(
        a.verify("fred", "wrong-password", "h", &quick()),
        Err(LoginError::Wrong)
    ));
    a.modify(
        "fred",
        &Modify {
            access: Some(Access::ReadOnly),
            password: Some("new-fred-password".into()),
            ..Modify::default()
        },
    )
    .unwrap();
    let ok = a
        .verify("fred", "new-fred-password", "h", &quick())
        .unwrap();
    assert_eq!(ok.access, Access::ReadOnly);
}

#[test]
fn loose_mode_is_narrowed_and_links_refused() {
    let d = root();
    let a = Accounts::open(d.path()).unwrap();
    a.add("gina", "gina-password", Access::ReadWrite).unwrap();
    std::fs::set_permissions(a.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let b = Accounts::open(d.path()).unwrap();
    assert_eq!(b.list().unwrap().len(), 1);
    assert_eq!(mode(a.path()), 0o600);

    let other = root();
    std::os::unix::fs::symlink(a.path(), other.path().join("config/accounts")).unwrap();
    let e = Accounts::open(other.path()).unwrap_err();
    assert!(matches!(e, AccountError::Read(_)), "{e}");
}

#[test]
fn bad_input_is_refused_with_a_reason() {
    let d = root();
    let a = Accounts::open(d.path()).unwrap();
    let e = a
        .add("has space", "long-enough", Access::ReadWrite)
        .unwrap_err();
    assert!(e.to_string().contains("letters, digits"), "{e}");
    let e = a.add("ok", "short", Access::ReadWrite).unwrap_err();
    assert!(e.to_string().contains("8 to 65"), "{e}");
    assert!(
        !e.to_string().contains("short"),
        "the password is never shown: {e}"
    );
    for i in 0..MAX_ACCOUNTS {
        a.add(&format!("u{i}"), "long-enough", Access::ReadOnly)
            .unwrap();
    }
    assert!(matches!(
        a.add("one-more", "long-enough", Access::ReadOnly),
        Err(AccountError::Full)
    ));
    std::fs::write(a.path(), "{not json").unwrap();
    let e = Accounts::open(d.path()).unwrap_err();
    assert!(e.to_string().contains("not an accounts file"), "{e}");
}

#[test]
fn a_remembered_login_ends_with_its_password_or_account() {
    let d = root();
    let a = Accounts::open(d.path()).unwrap();
    a.add("hal", "hal-password", Access::ReadWrite).unwrap();
    for _ in 0..3 {
        a.verify("hal", "hal-password", "h", &quick()).unwrap();
    }
    a.modify(
        "hal",
        &Modify {
            password: Some("hal-password-2".into()),
            ..Modify::default()
        },
    )
    .unwrap();
    assert!(matches!(
        a.verify("hal", "hal-password", "h", &quick()),
        Err(LoginError::Wrong)
    ));
    a.verify("hal", "hal-password-2", "h", &quick()).unwrap();
    a.delete("hal").unwrap();
    a.add("hal", "hal-password-3", Access::Disabled).unwrap();
    assert!(matches!(
        a.verify("hal", "hal-password-2", "h", &quick()),
        Err(LoginError::Wrong)
    ));
    // Access is read fresh each time, remembered or not.
    assert!(matches!(
        a.verify("hal", "hal-password-3", "h", &quick()),
        Err(LoginError::Disabled)
    ));
}

#[test]
fn verify_remembered_answers_only_what_needs_no_hash() {
    let d = root();
    let a = Accounts::open(d.path()).unwrap();
    a.add("ivy", "ivy-password-1", Access::ReadOnly).unwrap();
    // Never verified: the answer needs argon2id.
    assert!(a.verify_remembered("ivy", "ivy-password-1", "h").is_none());
    a.verify("ivy", "ivy-password-1", "h", &quick()).unwrap();
    let ok = a
        .verify_remembered("IVY", "ivy-password-1", "h")
        .unwrap()
        .unwrap();
    assert_eq!((ok.name.as_str(), ok.access), ("ivy", Access::ReadOnly));
    // Another password is never answered from memory.
    assert!(a.verify_remembered("ivy", "ivy-password-2", "h").is_none());
    // A changed access level is read from the file (the remembered login still holds).
    a.modify(
        "ivy",
        &Modify {
            access: Some(Access::ReadWrite),
            ..Modify::default()
        },
    )
    .unwrap();
    let ok = a
        .verify_remembered("ivy", "ivy-password-1", "h")
        .unwrap()
        .unwrap();
    assert_eq!(ok.access, Access::ReadWrite);
    a.modify(
        "ivy",
        &Modify {
            access: Some(Access::Disabled),
            ..Modify::default()
        },
    )
    .unwrap();
    assert!(matches!(
        a.verify_remembered("ivy", "ivy-password-1", "h"),
        Some(Err(LoginError::Disabled))
    ));
    // A new password (from another handle: another process) drops the remembered one.
    let other = Accounts::open(d.path()).unwrap();
    other
        .modify(
            "ivy",
            &Modify {
                access: Some(Access::ReadOnly),
                password: Some("ivy-password-2".into()),
                ..Modify::default()
            },
        )
        .unwrap();
    assert!(a.verify_remembered("ivy", "ivy-password-1", "h").is_none());
    assert!(matches!(
        a.verify("ivy", "ivy-password-1", "h", &quick()),
        Err(LoginError::Wrong)
    ));
    a.verify("ivy", "ivy-password-2", "h", &quick()).unwrap();
    assert!(a.verify_remembered("ivy", "ivy-password-2", "h").is_some());
    // A removed account is never answered from memory.
    other.delete("ivy").unwrap();
    assert!(a.verify_remembered("ivy", "ivy-password-2", "h").is_none());
    assert!(matches!(
        a.verify("ivy", "ivy-password-2", "h", &quick()),
        Err(LoginError::Wrong)
    ));
}

#[test]
fn verify_remembered_keeps_lockouts() {
    let d = root();
    let a = Accounts::open(d.path()).unwrap();
    a.add("jon", "jon-password-1", Access::ReadWrite).unwrap();
    a.verify("jon", "jon-password-1", "10.9.9.9", &quick())
        .unwrap();
    assert!(matches!(
        a.verify_remembered("jon", "jon-password-1", "10.9.9.9"),
        Some(Ok(_))
    ));
    for _ in 0..3 {
        assert!(a
            .verify("jon", "wrong-password", "10.9.9.8", &quick())
            .is_err());
    }
    // Locked by name: refused whatever the password, from any address, without hashing.
    assert!(matches!(
        a.verify_remembered("jon", "jon-password-1", "10.9.9.9"),
        Some(Err(LoginError::LockedOut { .. }))
    ));
    // The lockout is in the file: another handle (a restarted agent) refuses too.
    let fresh = Accounts::open(d.path()).unwrap();
    assert!(matches!(
        fresh.verify_remembered("jon", "jon-password-1", "10.9.9.9"),
        Some(Err(LoginError::LockedOut { .. }))
    ));
}
