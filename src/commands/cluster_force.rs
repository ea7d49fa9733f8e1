//! `xCommand Cluster ForceConfigUpdate` (the product's force-resync): asks this node's running
//! agent to re-list the cluster from etcd and apply it. The shell never talks to the agent: it
//! drops a request file under `ROOT/status/` that the agent's cluster task polls, takes away and
//! answers in the event log. This room knows nothing of etcd itself.

use super::{failed, ok, require_write};
use crate::engine::{Call, CommandResult, Item};
use crate::error::ShellError;

/// The request file the agent's cluster task looks for.
pub fn request_path(root: &std::path::Path) -> std::path::PathBuf {
    root.join("status").join("cluster-force.request")
}

/// Writes the request for the running agent; refused on a single node or without an agent.
pub fn force_config_update(call: Call) -> Result<CommandResult, ShellError> {
    let path = call.path;
    require_write(&call, path)?;
    match crate::store::cluster::Bootstrap::load(call.root) {
        Ok(Some(_)) => {}
        Ok(None) => {
            return Err(failed(
                path,
                "this node is not in a cluster (no config/cluster.json); join one with xCommand Cluster Join",
            ))
        }
        Err(e) => {
            return Err(failed(
                path,
                format!("cannot read the cluster bootstrap file: {e}"),
            ))
        }
    }
    let Some(agent) = crate::status::live_agent(call.root) else {
        return Err(failed(
            path,
            "no agent is running on this root (an agent reads the whole cluster snapshot when it starts: xagent --root ROOT)",
        ));
    };
    let who = &call.ctx.who.user;
    let text = format!("{who} {}\n", crate::store::now_rfc3339());
    crate::store::write_file_atomic(&request_path(call.root), text.as_bytes(), 0o644)
        .map_err(|e| failed(path, format!("cannot write the request for the agent: {e}")))?;
    Ok(ok(
        call.name,
        vec![
            Item::leaf("Requested", "True"),
            Item::leaf("AgentPid", agent.pid.to_string()),
        ],
    ))
}
