//! Roles: read-write (admin) or read-only, decided by the Unix group membership of the user the
//! shell runs as (the SSH user). Group names come from `Shell AdminGroup` and
//! `Shell ReadOnlyGroup`. root is always an admin; a user in neither group is read-only, so a
//! forgotten group never hands out write access.

use nix::unistd::{getgid, getgroups, getuid, Group};

use crate::store::Config;

/// Names of the process's groups (primary and supplementary).
pub fn group_names() -> Vec<String> {
    let mut gids = getgroups().unwrap_or_default();
    gids.push(getgid());
    gids.into_iter()
        .filter_map(|g| Group::from_gid(g).ok().flatten().map(|g| g.name))
        .collect()
}

/// Whether this process gets a read-only session under `cfg`.
pub fn is_read_only(cfg: &Config) -> bool {
    if getuid().is_root() {
        return false;
    }
    let admin = cfg.shell().admin_group();
    if admin.is_empty() {
        return true;
    }
    !group_names().iter().any(|g| g == admin)
}
