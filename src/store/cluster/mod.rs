//! TEMPORARY stand-in for the etcds engineer's room (TEAM4.md signatures), removed before their
//! branch is merged.
#![allow(dead_code, unused_variables)]

use std::path::Path;

#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub endpoints: Vec<String>,
    pub prefix: String,
    pub peer: String,
}

#[derive(Debug)]
pub struct ClusterError(pub String);

impl std::fmt::Display for ClusterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Bootstrap {
    pub fn load(root: &Path) -> Result<Option<Bootstrap>, ClusterError> {
        let p = root.join("config").join("cluster.json");
        match std::fs::read_to_string(&p) {
            Ok(t) => {
                let v: serde_json::Value =
                    serde_json::from_str(&t).map_err(|e| ClusterError(e.to_string()))?;
                Ok(Some(Bootstrap {
                    endpoints: v["endpoints"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default(),
                    prefix: v["prefix"].as_str().unwrap_or("").to_string(),
                    peer: v["peer"].as_str().unwrap_or("").to_string(),
                }))
            }
            Err(_) => Ok(None),
        }
    }
}

pub struct ClusterSnapshot {
    pub revision: i64,
    pub generation: u64,
    pub config_text: String,
    pub ca_pem: Option<Vec<u8>>,
    pub crls: Vec<(String, Vec<u8>)>,
}

#[derive(Clone)]
pub struct ClusterClient {
    client: etcd_client::Client,
    prefix: String,
}

impl ClusterClient {
    pub async fn connect(b: &Bootstrap) -> Result<ClusterClient, ClusterError> {
        let opts = etcd_client::ConnectOptions::new()
            .with_connect_timeout(std::time::Duration::from_millis(500))
            .with_keep_alive(
                std::time::Duration::from_secs(10),
                std::time::Duration::from_secs(3),
            )
            .with_require_leader(true);
        let client = etcd_client::Client::connect(&b.endpoints, Some(opts))
            .await
            .map_err(|e| ClusterError(e.to_string()))?;
        Ok(ClusterClient {
            client,
            prefix: b.prefix.clone(),
        })
    }

    pub async fn load(&self) -> Result<ClusterSnapshot, ClusterError> {
        let mut c = self.client.clone();
        let r = c
            .get(
                format!("{}/", self.prefix),
                Some(etcd_client::GetOptions::new().with_prefix()),
            )
            .await
            .map_err(|e| ClusterError(e.to_string()))?;
        let revision = r.header().map(|h| h.revision()).unwrap_or(0);
        let mut snap = ClusterSnapshot {
            revision,
            generation: 0,
            config_text: String::new(),
            ca_pem: None,
            crls: Vec::new(),
        };
        for kv in r.kvs() {
            let k = kv.key_str().unwrap_or("");
            if k == format!("{}/config", self.prefix) {
                snap.generation = kv.mod_revision() as u64;
                snap.config_text = String::from_utf8_lossy(kv.value()).into_owned();
            } else if k == format!("{}/certs/ca.pem", self.prefix) {
                snap.ca_pem = Some(kv.value().to_vec());
            }
        }
        Ok(snap)
    }

    pub fn watch_prefix(&self) -> String {
        format!("{}/", self.prefix)
    }

    pub fn client(&self) -> etcd_client::Client {
        self.client.clone()
    }
}

pub fn materialise(root: &Path, snap: &ClusterSnapshot) -> Result<bool, ClusterError> {
    let p = root.join("config").join("xconf.txt");
    let old = std::fs::read_to_string(&p).unwrap_or_default();
    if old == snap.config_text || snap.config_text.is_empty() {
        return Ok(false);
    }
    crate::store::write_file_atomic(&p, snap.config_text.as_bytes(), 0o644)
        .map_err(|e| ClusterError(e.to_string()))?;
    Ok(true)
}
