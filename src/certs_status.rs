//! Status leaves of `xStatus Security Certificates`, read from the stores under `ROOT/certs/`.

use std::path::Path;

/// `(path words, value)` pairs for the certificate status leaves.
pub fn collect(root: &Path) -> Vec<(String, String)> {
    let _ = root;
    Vec::new()
}
