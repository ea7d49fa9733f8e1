//! `xCommand Cluster Join` / `xCommand Cluster Leave`: a node joins a cluster on etcd in one
//! command, or leaves it (the store's migration both ways, [`crate::store::cluster::join`]).
//! The names are this project's (the product's were not found).

use crate::bounded::FileKind;
use crate::commands::{failed, ok, param, require_write};
use crate::engine::{Call, CommandResult, Item};
use crate::error::ShellError;
use crate::store::cluster::join::{self, Joined};
use crate::store::cluster::tls::{self, EtcdTls, TlsFailure};
use crate::store::cluster::{Bootstrap, ClusterError};

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

/// The PEM text of the file a TLS parameter names, checked by `parse`; errors name the
/// parameter and the file.
fn pem_param(
    call: &Call,
    name: &str,
    kind: FileKind,
    parse: fn(&str) -> Result<(), String>,
) -> Result<Option<String>, ShellError> {
    let Some(path) = param(call.params, name).filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let bytes = crate::bounded::read(std::path::Path::new(path), kind)
        .map_err(|e| failed(call.path, format!("{name}: {e}")))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| failed(call.path, format!("{name} '{path}' is not PEM text")))?;
    parse(&text).map_err(|why| failed(call.path, format!("{name} '{path}' {why}")))?;
    Ok(Some(text))
}

/// The TLS material of `CACertificate:`, `ClientCertificate:`, `ClientKey:`; `None` when none
/// is given.
fn tls_params(call: &Call) -> Result<Option<EtcdTls>, ShellError> {
    let ca = pem_param(call, "CACertificate", FileKind::CaList, |t| {
        tls::parse_ca(t).map(|_| ())
    })?;
    let cert = pem_param(call, "ClientCertificate", FileKind::Certificate, |t| {
        tls::parse_chain(t).map(|_| ())
    })?;
    let key = pem_param(call, "ClientKey", FileKind::Key, |t| {
        tls::parse_key(t).map(|_| ())
    })?;
    if cert.is_some() != key.is_some() {
        let (given, missing) = if cert.is_some() {
            ("ClientCertificate", "ClientKey")
        } else {
            ("ClientKey", "ClientCertificate")
        };
        return Err(failed(
            call.path,
            format!("{given} was given without {missing}; give both or neither"),
        ));
    }
    match (ca, &cert, &key) {
        (Some(ca), _, _) => Ok(Some(EtcdTls {
            ca_certificate: ca,
            client_certificate: cert,
            client_key: key,
        })),
        (None, None, None) => Ok(None),
        (None, _, _) => Err(failed(
            call.path,
            "ClientCertificate and ClientKey need CACertificate (the CA that issued etcd's server certificate) and https:// endpoints",
        )),
    }
}

/// What the admin can do about a refused TLS connection, in this command's parameter names.
fn hint(e: &ClusterError) -> &'static str {
    match e {
        ClusterError::Tls {
            failure: TlsFailure::ServerNotTrusted,
            ..
        } => " (is CACertificate the CA that issued etcd's server certificate, for this host name?)",
        ClusterError::Tls {
            failure: TlsFailure::ClientRefused,
            ..
        } => " (etcd checks client certificates: give ClientCertificate and ClientKey issued by a CA in its --trusted-ca-file)",
        _ => "",
    }
}

/// `xCommand Cluster Join Endpoints: "…" Prefix: "…" PeerName: "…"` and, for `https://`
/// endpoints, `CACertificate: "…"` (and `ClientCertificate: "…" ClientKey: "…"`).
pub fn cluster_join(call: Call) -> Result<CommandResult, ShellError> {
    require_write(&call, call.path)?;
    alone(&call)?;
    let tls = tls_params(&call)?;
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
        tls,
    };
    if boot.tls.is_none() && boot.endpoints.iter().any(|e| e.starts_with("https://")) {
        return Err(failed(
            call.path,
            "https:// endpoints need CACertificate: a PEM file of the CA that issued etcd's server certificates (no CA certificate was given)",
        ));
    }
    // Said here without the bootstrap's path (nothing is written yet); join checks again.
    boot.check().map_err(|why| failed(call.path, why))?;
    let joined = join::join(call.root, &boot, &call.ctx.who)
        .map_err(|e| failed(call.path, format!("{e}{}", hint(&e))))?;
    let (mode, generation) = match joined {
        Joined::Uploaded { generation } => ("Uploaded", generation),
        Joined::Adopted { generation } => ("Adopted", generation),
    };
    Ok(ok(
        call.name,
        vec![
            Item::leaf("Content", mode),
            Item::leaf("Generation", generation.to_string()),
            Item::leaf("Prefix", boot.prefix.clone()),
            Item::leaf("PeerName", boot.peer.clone()),
            Item::leaf("Transport", boot.transport()),
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
