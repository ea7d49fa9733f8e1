//! `xsh`: the xConfiguration-compatible shell. See `xsh --help`.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use xsh::render::{xml, DocKind};
use xsh::schema::schema;
use xsh::shell::run::{run_command, run_stdin, EditorChoice, RunOptions};
use xsh::shell::Session;

const USAGE: &str = "usage: xsh [--root DIR] [-c COMMAND] [--stop-on-error] [--no-group-commit]
           [--editor auto|full|line] [--prompt [TEXT]] [--no-banner]
           [--dump-config txt|xml] [--dump-status txt|xml] [--print-xsd config|status]

Runs the xConfiguration shell on ROOT (--root, else $XSH_ROOT, else /var/lib/xsh).
Reads commands from a terminal (line editor with Tab and ? for xterm/putty/screen/tmux/linux,
a clean line mode for vt100/dumb/others), from a pipe, or from -c. Exit status 0 when every
command succeeded.";

struct Args {
    root: Option<PathBuf>,
    command: Option<String>,
    stop_on_error: bool,
    group_commit: bool,
    editor: EditorChoice,
    prompt: Option<String>,
    banner: bool,
    dump_config: Option<String>,
    dump_status: Option<String>,
    print_xsd: Option<String>,
    quickstart: bool,
    run_agent: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        root: None,
        command: None,
        stop_on_error: false,
        group_commit: std::env::var_os("XSH_NO_GROUP_COMMIT").is_none(),
        editor: EditorChoice::Auto,
        prompt: None,
        banner: true,
        dump_config: None,
        dump_status: None,
        print_xsd: None,
        quickstart: false,
        run_agent: false,
    };
    if let Ok(e) = std::env::var("XSH_EDITOR") {
        a.editor = editor(&e)?;
    }
    let mut it = std::env::args().skip(1).peekable();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--root" => a.root = Some(PathBuf::from(value("--root")?)),
            "-c" => a.command = Some(value("-c")?),
            "--stop-on-error" => a.stop_on_error = true,
            "--no-group-commit" => a.group_commit = false,
            "--editor" => a.editor = editor(&value("--editor")?)?,
            "--no-banner" => a.banner = false,
            // The quick start's agent: this same binary, so `cargo run --bin xsh` is enough.
            "--run-agent" => a.run_agent = true,
            "--quickstart" => {
                a.quickstart = true;
                if a.root.is_none() {
                    a.root = Some(match it.peek() {
                        Some(p) if !p.starts_with('-') => {
                            PathBuf::from(it.next().unwrap_or_default())
                        }
                        _ => PathBuf::from("xsh-root"),
                    });
                }
            }
            "--prompt" => {
                a.prompt = Some(match it.peek() {
                    Some(p) if !p.starts_with("--") => it.next().unwrap_or_default(),
                    _ => "xsh> ".into(),
                })
            }
            "--dump-config" => a.dump_config = Some(value("--dump-config")?),
            "--dump-status" => a.dump_status = Some(value("--dump-status")?),
            "--print-xsd" => a.print_xsd = Some(value("--print-xsd")?),
            "-h" | "--help" => return Err(String::new()),
            "--version" | "-V" => {
                println!(
                    "xsh {} ({})",
                    env!("CARGO_PKG_VERSION"),
                    xsh::schema::VERSION
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    Ok(a)
}

fn editor(s: &str) -> Result<EditorChoice, String> {
    match s {
        "auto" => Ok(EditorChoice::Auto),
        "full" => Ok(EditorChoice::Full),
        "line" => Ok(EditorChoice::Line),
        o => Err(format!("--editor takes auto, full or line, not '{o}'")),
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("xsh: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Some(which) = &args.print_xsd {
        let (tree, kind) = match which.as_str() {
            "config" => (&schema().config, DocKind::Configuration),
            "status" => (&schema().status, DocKind::Status),
            o => {
                eprintln!("xsh: --print-xsd takes config or status, not '{o}'");
                return ExitCode::from(2);
            }
        };
        print!("{}", xml::xsd(tree, kind));
        return ExitCode::SUCCESS;
    }
    let root = xsh::root::resolve(args.root.clone());
    let notes = match xsh::root::prepare(&root) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("xsh: root {}: {e}", root.display());
            return ExitCode::from(2);
        }
    };
    if args.run_agent {
        return match xsh::agent::run(&root, xsh::agent::Options { verbose: true }) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("xsh: agent: {e}");
                ExitCode::from(1)
            }
        };
    }
    let mut session = match Session::new(&root) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("xsh: {e}");
            return ExitCode::from(2);
        }
    };
    session.group_commit = args.group_commit;
    for which in [&args.dump_config, &args.dump_status].into_iter().flatten() {
        let cfg = match session.engine.store().load() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("xsh: {e}");
                return ExitCode::from(2);
            }
        };
        let is_config = args.dump_config.as_ref() == Some(which);
        let text = match (is_config, which.as_str()) {
            (true, "txt") => xsh::dump::config_txt(&cfg),
            (true, "xml") => xsh::dump::config_xml(&cfg),
            (false, "txt") => xsh::dump::status_txt(&root, &cfg),
            (false, "xml") => xsh::dump::status_xml(&root, &cfg),
            (_, o) => {
                eprintln!("xsh: dumps come as txt or xml, not '{o}'");
                return ExitCode::from(2);
            }
        };
        print!("{text}");
    }
    if args.dump_config.is_some() || args.dump_status.is_some() {
        return ExitCode::SUCCESS;
    }
    let opts = RunOptions {
        stop_on_error: args.stop_on_error,
        editor: args.editor,
        prompt: args.prompt.clone(),
        banner: args.banner,
    };
    // Under ForceCommand the client's command arrives in SSH_ORIGINAL_COMMAND; `tsh`/`xsh` alone
    // (what automation libraries exec) means an ordinary session.
    let command = args
        .command
        .clone()
        .or_else(|| std::env::var("SSH_ORIGINAL_COMMAND").ok());
    let agent = if args.quickstart {
        start_agent(&root)
    } else {
        None
    };
    let ok = match command {
        Some(c) if !is_session_word(&c) => run_command(&mut session, &c, &opts),
        _ => {
            for n in &notes {
                eprintln!("xsh: {n}");
            }
            run_stdin(&mut session, &opts)
        }
    };
    if let Some(mut child) = agent {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = child.wait();
        eprintln!(
            "xsh: quick start: agent stopped; the root {} stays for next time",
            root.display()
        );
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn is_session_word(c: &str) -> bool {
    let t = c.trim();
    t.is_empty() || t == "tsh" || t == "xsh" || t.ends_with("/tsh") || t.ends_with("/xsh")
}

/// `--quickstart`: runs the agent (this binary with `--run-agent`) on the root for the length of the session,
/// unless one already runs there, and waits until it has published its status.
fn start_agent(root: &std::path::Path) -> Option<std::process::Child> {
    if xsh::status::live_agent(root).is_some() {
        eprintln!(
            "xsh: quick start: an agent already runs on {}",
            root.display()
        );
        return None;
    }
    let exe = std::env::current_exe().ok()?;
    let log = std::fs::File::create(root.join("status").join("xagent.out")).ok();
    let mut cmd = std::process::Command::new(&exe);
    cmd.arg("--run-agent")
        .arg("--root")
        .arg(root)
        .stdin(std::process::Stdio::null());
    match log.and_then(|f| f.try_clone().ok().map(|g| (f, g))) {
        Some((f, g)) => {
            cmd.stdout(f).stderr(g);
        }
        None => {
            cmd.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
        }
    }
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("xsh: quick start: cannot start {}: {e}", exe.display());
            return None;
        }
    };
    for _ in 0..100 {
        if xsh::status::live_agent(root).is_some() {
            eprintln!(
                "xsh: quick start: agent pid {} serving SIP TLS and tunnel on 127.0.0.1 (see xStatus SIP, xStatus Tunnel); root {}",
                child.id(),
                root.display()
            );
            return Some(child);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    eprintln!(
        "xsh: quick start: the agent did not come up; see {}",
        root.join("status").join("xagent.out").display()
    );
    Some(child)
}
