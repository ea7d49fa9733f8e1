//! `xCommand ZoneAdd` and `xCommand ZoneDelete`, named and shaped as Expressway names them
//! (`ZoneAdd ZoneName: "x" Type: TraversalClient`, `ZoneDelete ZoneId: 3`). A zone exists when
//! any leaf of its instance is stored; adding one stores its name (and its type when not the
//! default) in the lowest free number, deleting one resets every leaf of the instance. Both go
//! through the store's transaction (audited per leaf, under the store's lock) or the batch's.
//! This room knows the schema's zone words and nothing of the agent that checks the zones.

use super::{failed, ok, param, require_write};
use crate::engine::{Call, CommandResult, Item};
use crate::error::ShellError;
use crate::parse::Key;
use crate::schema::{schema, Lookup, NodeId};
use crate::store::Config;

/// The configuration nodes a zone command writes: the `Zone` instance node and its leaves.
struct ZoneNodes {
    zone: NodeId,
    name: NodeId,
    kind: NodeId,
}

fn nodes() -> Option<ZoneNodes> {
    let tree = &schema().config;
    let find = |parent: Option<NodeId>, word: &str| match tree.lookup(parent, word) {
        Lookup::Found(id) => Some(id),
        _ => None,
    };
    let zones = find(None, "Zones")?;
    let zone = find(Some(zones), "Zone")?;
    Some(ZoneNodes {
        zone,
        name: find(Some(zone), "Name")?,
        kind: find(Some(zone), "Type")?,
    })
}

/// The zone numbers the schema allows.
fn range(zone: NodeId) -> (u32, u32) {
    schema().config.nodes[zone].instances.unwrap_or((1, 1000))
}

/// Runs `f` on the batch's configuration or in one store transaction.
fn write<T>(
    call: Call<'_>,
    f: impl FnOnce(&mut Config) -> Result<T, ShellError>,
) -> Result<T, ShellError> {
    match call.tx {
        Some(c) => f(c),
        None => {
            call.store
                .transact(&call.ctx.who, f)
                .map_err(|e| failed(call.path, e.to_string()))?
                .0
        }
    }
}

/// `xCommand ZoneAdd ZoneName: <S: 1, 50> Type: <Neighbor/TraversalClient/TraversalServer>`.
pub fn zone_add(call: Call) -> Result<CommandResult, ShellError> {
    let path = call.path;
    let name_str = call.name.to_string();
    require_write(&call, path)?;
    let n = nodes().ok_or_else(|| failed(path, "the schema has no Zones Zone node"))?;
    let zone_name = param(call.params, "ZoneName")
        .unwrap_or_default()
        .to_string();
    let kind_raw = param(call.params, "Type").unwrap_or_default();
    let kind = schema().config.nodes[n.kind]
        .leaf
        .as_ref()
        .and_then(|l| l.space.validate(kind_raw).ok())
        .ok_or_else(|| failed(path, format!("'{kind_raw}' is not a zone type")))?;
    let (lo, hi) = range(n.zone);
    let id = write(call, |cfg| {
        let used = cfg.instances_of(n.zone, &[]);
        if let Some(&other) = used.iter().find(|&&z| {
            cfg.get(&Key {
                leaf: n.name,
                inst: vec![z],
            })
            .eq_ignore_ascii_case(&zone_name)
        }) {
            return Err(failed(
                path,
                format!("a zone named '{zone_name}' exists already (Zones Zone {other})"),
            )
            .expected("a zone name not in use"));
        }
        let id = (lo..=hi)
            .find(|z| used.binary_search(z).is_err())
            .ok_or_else(|| failed(path, format!("all {hi} zones are in use")))?;
        cfg.set(
            Key {
                leaf: n.name,
                inst: vec![id],
            },
            zone_name.clone(),
        );
        cfg.set(
            Key {
                leaf: n.kind,
                inst: vec![id],
            },
            kind.clone(),
        );
        Ok(id)
    })?;
    Ok(ok(&name_str, vec![Item::leaf("ZoneId", id.to_string())]))
}

/// `xCommand ZoneDelete ZoneId: <1..1000>`: every leaf of the zone back to its default.
pub fn zone_delete(call: Call) -> Result<CommandResult, ShellError> {
    let path = call.path;
    let name_str = call.name.to_string();
    require_write(&call, path)?;
    let n = nodes().ok_or_else(|| failed(path, "the schema has no Zones Zone node"))?;
    let given = call.params.iter().find(|p| p.name == "ZoneId");
    let col = given.map(|p| p.col).unwrap_or(0);
    let id: u32 = given
        .and_then(|p| p.value.parse().ok())
        .ok_or_else(|| failed(path, "ZoneId is not a zone number"))?;
    write(call, |cfg| {
        let before = cfg.values.len();
        cfg.values
            .retain(|k, _| k.inst.first() != Some(&id) || !in_zone(k, n.zone));
        if cfg.values.len() == before {
            return Err(ShellError {
                column: col,
                ..failed(
                    path,
                    format!("zone {id} does not exist (nothing is set under Zones Zone {id})"),
                )
                .expected("the number of a configured zone, as xConfiguration Zones shows")
            });
        }
        Ok(())
    })?;
    Ok(ok(&name_str, vec![]))
}

/// Whether the stored leaf `k` lies under the `Zone` instance node.
fn in_zone(k: &Key, zone: NodeId) -> bool {
    crate::store::config::is_under(&schema().config, k.leaf, zone)
}
