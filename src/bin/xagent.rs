//! `xagent`: hot-reloading TLS listeners and outbound peers for one ROOT. See `xagent --help`.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: xagent [--root DIR] [--verbose] [--check]

Runs the SIP TLS and tunnel listeners and the outbound zone checks of ROOT (--root, else
$XSH_ROOT, else /var/lib/xsh), reloading configuration and certificates when their files change
(SIGHUP forces a reload; SIGTERM stops). --check builds one generation, reports it, and exits.";

fn main() -> ExitCode {
    let mut root = None;
    let mut verbose = false;
    let mut check = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--root" => root = args.next().map(PathBuf::from),
            "--verbose" | "-v" => verbose = true,
            "--check" => check = true,
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let root = xsh::root::resolve(root);
    if let Err(e) = xsh::root::prepare(&root) {
        eprintln!("xagent: root {}: {e}", root.display());
        return ExitCode::from(2);
    }
    if check {
        return match xsh::agent::generation::build(&root, 1, None) {
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
        };
    }
    match xsh::agent::run(&root, xsh::agent::Options { verbose }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xagent: {e}");
            ExitCode::from(1)
        }
    }
}
