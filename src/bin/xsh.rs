//! `xsh`: the xConfiguration-compatible shell. See `xsh --help`.
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use xsh::cli::xsh::{DumpFormat, Editor, Tree};
use xsh::cli::{Binary, XshArgs};
use xsh::render::{xml, DocKind};
use xsh::schema::schema;
use xsh::shell::run::{run_command, run_stdin, EditorChoice, RunOptions};
use xsh::shell::Session;

fn main() -> ExitCode {
    let args = XshArgs::parse();
    if let Some(code) = xsh::cli::handle_doc_flags(Binary::Xsh, &args.docs) {
        return code;
    }
    let editor = match args.editor() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("xsh: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(which) = args.print_xsd {
        let (tree, kind) = match which {
            Tree::Config => (&schema().config, DocKind::Configuration),
            Tree::Status => (&schema().status, DocKind::Status),
        };
        print!("{}", xml::xsd(tree, kind));
        return ExitCode::SUCCESS;
    }
    let root = xsh::root::resolve(args.root_flag());
    let notes = match xsh::root::prepare(&root) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("xsh: root {}: {e}", root.display());
            return ExitCode::from(2);
        }
    };
    if args.run_agent {
        // The quick start's agent logs as xagent does: Info until the first generation applies
        // `Logging Level`, which each reload then re-applies (without it the level did nothing).
        let log = xsh::agent::logging::install_stderr(tracing::level_filters::LevelFilter::INFO);
        return match xsh::agent::run(&root, xsh::agent::Options { verbose: true, log }) {
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
    session.help_hint = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    session.group_commit =
        !args.no_group_commit && std::env::var_os("XSH_NO_GROUP_COMMIT").is_none();
    if args.dump_config.is_some() || args.dump_status.is_some() {
        return dump(&args, &session, &root);
    }
    let opts = run_options(&args, editor);
    // Under ForceCommand the client's command arrives in SSH_ORIGINAL_COMMAND; `tsh`/`xsh` alone
    // (what automation libraries exec) means an ordinary session.
    // Bytes, not `String`: a command that is not UTF-8 must reach the reader, which answers it
    // with E002 and ERROR, rather than be dropped (`env::var` fails on it) or panic.
    let command = args
        .command
        .clone()
        .or_else(|| std::env::var_os("SSH_ORIGINAL_COMMAND"))
        .map(std::os::unix::ffi::OsStringExt::into_vec);
    let agent = if args.quickstart.is_some() {
        quickstart_admin(&root);
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

fn run_options(args: &XshArgs, editor: Editor) -> RunOptions {
    RunOptions {
        stop_on_error: args.stop_on_error,
        editor: match editor {
            Editor::Auto => EditorChoice::Auto,
            Editor::Full => EditorChoice::Full,
            Editor::Line => EditorChoice::Line,
        },
        prompt: args.prompt.clone(),
        banner: !args.no_banner,
    }
}

/// `--dump-config` / `--dump-status`: the configuration first when both are asked for.
fn dump(args: &XshArgs, session: &Session, root: &std::path::Path) -> ExitCode {
    let cfg = match session.engine.store().load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("xsh: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(f) = args.dump_config {
        print!(
            "{}",
            match f {
                DumpFormat::Txt => xsh::dump::config_txt(&cfg),
                DumpFormat::Xml => xsh::dump::config_xml(&cfg),
            }
        );
    }
    if let Some(f) = args.dump_status {
        print!(
            "{}",
            match f {
                DumpFormat::Txt => xsh::dump::status_txt(root, &cfg),
                DumpFormat::Xml => xsh::dump::status_xml(root, &cfg),
            }
        );
    }
    ExitCode::SUCCESS
}

fn is_session_word(c: &[u8]) -> bool {
    let Ok(t) = std::str::from_utf8(c) else {
        return false;
    };
    let t = t.trim();
    t.is_empty() || t == "tsh" || t == "xsh" || t.ends_with("/tsh") || t.ends_with("/xsh")
}

/// `--quickstart` on a root without accounts: creates `admin` (ReadWrite) with a random
/// one-time password and prints it once, on an interactive session only. Piped or scripted,
/// nothing is created and no password is printed: it says how to create one.
fn quickstart_admin(root: &std::path::Path) {
    use xsh::accounts::{password, Access, Accounts};
    let accounts = match Accounts::open(root) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("xsh: quick start: accounts: {e}");
            return;
        }
    };
    if accounts.list().map(|l| !l.is_empty()).unwrap_or(true) {
        return;
    }
    let how = "xCommand AdminAccountAdd Name: \"admin\" Password: \"...\" Access: ReadWrite";
    if !std::io::stdin().is_terminal() {
        eprintln!(
            "xsh: quick start: no web account yet (not interactive, so no password is printed); create one with: {how}"
        );
        return;
    }
    let made = password::one_time()
        .map_err(|e| e.to_string())
        .and_then(|pw| {
            accounts
                .add("admin", &pw, Access::ReadWrite)
                .map(|()| pw)
                .map_err(|e| e.to_string())
        });
    match made {
        Ok(pw) => {
            if let Ok(store) = xsh::store::Store::open(root) {
                let _ = store.audit_note(
                    &xsh::store::Who::current(),
                    "xCommand AdminAccountAdd",
                    "",
                    "Name: \"admin\" Access: ReadWrite WebAccess: Yes APIAccess: Yes Password: *** (via quickstart)",
                    "applied",
                );
            }
            eprintln!(
                "xsh: quick start: web account 'admin' created with the one-time password {pw}\n\
                 xsh: it is shown only now; change it with: xCommand AdminAccountModify Name: \"admin\" Password: \"...\""
            );
        }
        Err(e) => eprintln!(
            "xsh: quick start: cannot create the admin account: {e}; create one with: {how}"
        ),
    }
}

/// The quick start's web address: `Administration HTTPS Port` moves to the unprivileged 8443
/// unless the root sets a port of its own (443 needs root). `None` when HTTPS Mode is Off.
fn quickstart_web(root: &std::path::Path) -> Option<String> {
    let store = xsh::store::Store::open(root).ok()?;
    let key = |line: &str| match xsh::parse::parse_line(line).ok()?.action {
        xsh::parse::Action::ConfigSet { key, .. } => Some(key),
        _ => None,
    };
    let port_key = key("xConfiguration Administration HTTPS Port: 8443")?;
    let ((on, port, address), _, _) = store
        .transact(&xsh::store::Who::current(), |c| {
            if !c.values.contains_key(&port_key) {
                c.set(port_key.clone(), "8443".into());
            }
            let https = c.administration().https();
            (
                https.mode() == xsh::schema::values::OnOff::On,
                https.port(),
                c.agent().listen().address().to_string(),
            )
        })
        .ok()?;
    on.then(|| format!("https://{address}:{port}/"))
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
    let web = quickstart_web(root);
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
            if let Some(web) = &web {
                eprintln!("xsh: quick start: web interface and API at {web}");
            }
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
