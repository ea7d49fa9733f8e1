//! `xagent`: hot-reloading TLS listeners and outbound peers for one ROOT. See `xagent --help`.
#![forbid(unsafe_code)]

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use xsh::cli::{Binary, XagentArgs};

fn main() -> ExitCode {
    let args = XagentArgs::parse();
    if let Some(code) = xsh::cli::handle_doc_flags(Binary::Xagent, &args.docs) {
        return code;
    }
    // Info until the first generation applies `Logging Level`.
    let log = xsh::agent::logging::install_stderr(tracing::level_filters::LevelFilter::INFO);
    let root = xsh::root::resolve(args.root.clone());
    if args.check {
        return check(&root);
    }
    if let Err(e) = xsh::root::prepare(&root) {
        eprintln!("xagent: root {}: {e}", root.display());
        return ExitCode::from(2);
    }
    match xsh::agent::run(
        &root,
        xsh::agent::Options {
            verbose: args.verbose,
            log,
        },
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xagent: {e}");
            ExitCode::from(1)
        }
    }
}

/// `--check`: builds one generation from the files as they are. Preparing the root (folders,
/// default certificate, the two-store upgrade) writes, so a dry run refuses a root that would
/// need it instead.
fn check(root: &Path) -> ExitCode {
    let refuse = |why: &str| {
        eprintln!(
            "xagent: --check: root {}: {why}; nothing was written",
            root.display()
        );
        ExitCode::from(2)
    };
    if !root.is_dir() {
        return refuse("no such folder (xagent or xsh creates it when started without --check)");
    }
    if !root.join("config").is_dir() {
        return refuse("not a prepared root: no config folder (xagent or xsh prepares it when started without --check)");
    }
    let certs = root.join("certs");
    if certs.join("server.pem").exists() && !certs.join("client.pem").exists() {
        return refuse("a single certificate store (xagent or xsh upgrades it to two stores when started without --check)");
    }
    match xsh::agent::generation::build(root, 1, None) {
        Ok(g) => {
            println!(
                "xagent: configuration generation {} builds: EKU mode {}, server serial {}, client serial {}, {} trusted CAs, {} zones",
                g.config_generation,
                g.mode,
                g.server_serial,
                g.client_serial,
                g.ca_count,
                g.zones.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xagent: {e}");
            ExitCode::from(1)
        }
    }
}
