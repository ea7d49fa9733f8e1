//! `xCommand Cluster Join` / `xCommand Cluster Leave`: a node joins a cluster on etcd in one
//! command, or leaves it (the store's migration both ways, [`crate::store::cluster::join`]).
//! The names are this project's (the product's were not found).

use crate::commands::{failed, ok, param, require_write};
use crate::engine::{Call, CommandResult, Item};
use crate::error::ShellError;
use crate::store::cluster::join::{self, Joined};
use crate::store::cluster::Bootstrap;

/// Refuses to run inside a batch's transaction: joining re-locks the store it holds.
fn alone(call: &Call) -> Result<(), ShellError> {
    if call.tx.is_some() {
        return Err(failed(
            call.path,
            format!(
                "xCommand {} changes where the configuration lives; run it on its own, not in a batch with sets",
                call.path
            ),
        ));
    }
    Ok(())
}

/// `xCommand Cluster Join Endpoints: "…" Prefix: "…" PeerName: "…"`.
pub fn cluster_join(call: Call) -> Result<CommandResult, ShellError> {
    require_write(&call, call.path)?;
    alone(&call)?;
    let boot = Bootstrap {
        endpoints: param(call.params, "Endpoints")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        prefix: param(call.params, "Prefix").unwrap_or_default().to_string(),
        peer: param(call.params, "PeerName")
            .unwrap_or_default()
            .to_string(),
    };
    let joined = join::join(call.root, &boot, &call.ctx.who)
        .map_err(|e| failed(call.path, e.to_string()))?;
    let (mode, generation) = match joined {
        Joined::Uploaded { generation } => ("Uploaded", generation),
        Joined::Adopted { generation } => ("Adopted", generation),
    };
    Ok(ok(
        call.name,
        vec![
            Item::leaf("Content", mode),
            Item::leaf("Generation", generation.to_string()),
            Item::leaf("Prefix", boot.prefix),
            Item::leaf("PeerName", boot.peer),
        ],
    ))
}

/// `xCommand Cluster Leave`.
pub fn cluster_leave(call: Call) -> Result<CommandResult, ShellError> {
    require_write(&call, call.path)?;
    alone(&call)?;
    let generation =
        join::leave(call.root, &call.ctx.who).map_err(|e| failed(call.path, e.to_string()))?;
    Ok(ok(
        call.name,
        vec![Item::leaf("Generation", generation.to_string())],
    ))
}
