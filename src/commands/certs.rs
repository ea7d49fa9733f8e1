//! `xCommand Security Certificates ...`: uploads, CA list, CRLs, CSR, show, readiness.

use crate::error::ShellError;
use crate::parse::ParamValue;
use crate::render::CommandResult;
use crate::shell::Session;

/// Runs a certificate command.
pub fn run(
    session: &mut Session,
    path: &str,
    name: &str,
    params: &[ParamValue],
    body: Option<String>,
) -> Result<CommandResult, ShellError> {
    let _ = (session, name, params, body);
    Err(super::failed(
        path,
        format!("xCommand {path} is not available in this build yet"),
    ))
}
