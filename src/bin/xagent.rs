//! `xagent`: for now loads the configuration of ROOT, reports it, and exits (the agent issue
//! brings listeners and hot reload).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut root = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--root" => root = args.next().map(PathBuf::from),
            _ => {
                eprintln!("usage: xagent [--root DIR]");
                return ExitCode::from(2);
            }
        }
    }
    let root = xsh::root::resolve(root);
    let store = match xsh::store::Store::open(&root) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("xagent: {e}");
            return ExitCode::from(2);
        }
    };
    match store.load() {
        Ok(cfg) => {
            for p in &cfg.problems {
                eprintln!("xagent: xconf.txt line {}: {}", p.line, p.message);
            }
            println!(
                "xagent: loaded configuration generation {} ({} values) from {}",
                cfg.generation,
                cfg.values.len(),
                root.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xagent: {e}");
            ExitCode::from(1)
        }
    }
}
