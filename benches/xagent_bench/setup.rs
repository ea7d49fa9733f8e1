//! The agent bench's PKI and roots: one CA, eight distinct server leaves (cycled by the
//! certificate-change measurements, so a reload never lands on a leaf served two changes back),
//! client certificates with both EKUs and with serverAuth only, and the 1,000-CA trust list.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ClientConfig;

use crate::client::client_config;
use crate::common::fixture::{prepare_agent_root, AgentRoot};
use crate::common::pki::{extra_cas_pem, Ca, Eku, Leaf};

pub const LEAVES: usize = 8;

pub struct Pki {
    pub ca_pem: String,
    /// The CA followed by 999 unrelated CAs.
    pub ca_1000_pem: String,
    pub servers: Vec<Leaf>,
    /// serverAuth + clientAuth: passes in both modes.
    pub client_both: Arc<ClientConfig>,
    /// serverAuth only: accepted under Off, refused under On.
    pub client_srv: Arc<ClientConfig>,
    /// The key and certificate of the client certificate (for the crypto floor).
    pub client_leaf: Leaf,
    pub agent_client: Leaf,
}

impl Pki {
    pub fn new() -> Pki {
        let ca = Ca::new("xagent bench CA");
        let servers = (0..LEAVES)
            .map(|i| ca.issue(&format!("xagent bench server {i}"), Eku::Both))
            .collect();
        let client_leaf = ca.issue("xagent bench client both EKUs", Eku::Both);
        let srv_leaf = ca.issue("xagent bench client serverAuth only", Eku::ServerOnly);
        let ca_der = crate::common::pki::pem_der(&ca.pem);
        Pki {
            ca_1000_pem: format!("{}{}", ca.pem, extra_cas_pem(999)),
            servers,
            client_both: client_config(&ca_der, &client_leaf),
            client_srv: client_config(&ca_der, &srv_leaf),
            client_leaf,
            agent_client: ca.issue("xagent bench agent client store", Eku::Both),
            ca_pem: ca.pem,
        }
    }
}

/// How big a root's configuration is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// No zones, one CA.
    Small,
    /// 1,000 zones and 1,000 CAs.
    Large,
    /// 1,000 zones, one CA.
    Zones,
    /// 1,000 CAs, no zones.
    Cas,
}

impl Scale {
    /// A folder name.
    pub fn name(self) -> &'static str {
        match self {
            Scale::Small => "small",
            Scale::Large => "large",
            Scale::Zones => "zones",
            Scale::Cas => "cas",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Scale::Small => "0 zones, 1 CA",
            Scale::Large => "1,000 zones, 1,000 CAs",
            Scale::Zones => "1,000 zones, 1 CA",
            Scale::Cas => "0 zones, 1,000 CAs",
        }
    }
}

/// A root ready for an agent: certificates, free ports, mode On, and the scale's zones and CAs.
pub fn agent_root(work: &Path, name: &str, pki: &Pki, scale: Scale) -> PathBuf {
    let root = work.join(name);
    let many_cas = matches!(scale, Scale::Large | Scale::Cas);
    prepare_agent_root(
        &root,
        &AgentRoot {
            ca_pem: if many_cas {
                &pki.ca_1000_pem
            } else {
                &pki.ca_pem
            },
            server: &pki.servers[0],
            client: &pki.agent_client,
            zones: matches!(scale, Scale::Large | Scale::Zones),
        },
    );
    root
}
