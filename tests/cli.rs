//! The process command lines of `xsh` and `xagent` (one clap table each): `--help`, refused
//! flags and values, the man pages and completions made from the same tables, the installed
//! docs, and `xagent --check` as a dry run that writes nothing.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use xsh::cli::Binary;

const XSH: &str = env!("CARGO_BIN_EXE_xsh");
const XAGENT: &str = env!("CARGO_BIN_EXE_xagent");

fn exe(bin: Binary) -> &'static str {
    match bin {
        Binary::Xsh => XSH,
        Binary::Xagent => XAGENT,
    }
}

fn run(exe: &str, args: &[&str]) -> Output {
    Command::new(exe)
        .args(args)
        .env_remove("XSH_ROOT")
        .env_remove("XSH_EDITOR")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every long flag (and short one) of a binary's table, as typed.
fn flags(bin: Binary) -> Vec<String> {
    let mut cmd = bin.command();
    cmd.build();
    let mut v = Vec::new();
    for a in cmd.get_arguments() {
        if let Some(l) = a.get_long() {
            v.push(format!("--{l}"));
        }
        if let Some(s) = a.get_short() {
            v.push(format!("-{s}"));
        }
    }
    assert!(v.len() > 5, "{v:?}");
    v
}

#[test]
fn help_goes_to_stdout_with_exit_0_and_documents_every_flag() {
    for bin in Binary::ALL {
        for h in ["--help", "-h"] {
            let o = run(exe(bin), &[h]);
            let out = text(&o.stdout);
            assert_eq!(
                o.status.code(),
                Some(0),
                "{} {h}: {}",
                bin.name(),
                text(&o.stderr)
            );
            assert!(o.stderr.is_empty(), "{}", text(&o.stderr));
            for f in flags(bin) {
                assert!(
                    out.contains(&f),
                    "{} {h} does not name {f}:\n{out}",
                    bin.name()
                );
            }
        }
    }
    let out = text(&run(XSH, &["--help"]).stdout);
    assert!(out.contains("--quickstart [<DIR>]"), "{out}");
    let mut cmd = Binary::Xsh.command();
    cmd.build();
    for a in cmd.get_arguments() {
        let doc = a.get_long_help().or(a.get_help()).map(|s| s.to_string());
        assert!(
            doc.is_some_and(|d| d.len() > 10),
            "--{:?} has no help text",
            a.get_long()
        );
    }
    let v = run(XSH, &["--version"]);
    assert_eq!(v.status.code(), Some(0));
    assert!(
        text(&v.stdout).starts_with("xsh 0.1.0 (X15.5)"),
        "{}",
        text(&v.stdout)
    );
}

#[test]
fn unknown_flags_and_missing_values_exit_2_with_a_message_on_stderr() {
    let cases: &[(&str, &[&str], &str)] = &[
        (XSH, &["--bogus"], "unexpected argument '--bogus'"),
        (XSH, &["-c"], "a value is required for '-c <COMMAND>'"),
        (XSH, &["--root"], "a value is required for '--root <DIR>'"),
        (
            XSH,
            &["--editor", "fancy"],
            "invalid value 'fancy' for '--editor <MODE>'",
        ),
        (XSH, &["--dump-config", "yaml"], "invalid value 'yaml'"),
        (XSH, &["stray"], "unexpected argument 'stray'"),
        (
            XAGENT,
            &["--check", "--root"],
            "a value is required for '--root <DIR>'",
        ),
        (XAGENT, &["--bogus"], "unexpected argument '--bogus'"),
        (
            XAGENT,
            &["--print-completions", "tcsh"],
            "invalid value 'tcsh'",
        ),
    ];
    for (exe, args, want) in cases {
        let o = run(exe, args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{exe} {args:?}: {err}");
        assert!(err.contains(want), "{exe} {args:?}: {err}");
        assert!(o.stdout.is_empty(), "{exe} {args:?}: {}", text(&o.stdout));
    }
    // The environment's default is checked as strictly, and the message names the variable.
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(XSH)
        .args([
            "--root",
            dir.path().to_str().unwrap(),
            "-c",
            "xstatus SystemUnit",
        ])
        .env("XSH_EDITOR", "fancy")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("XSH_EDITOR takes auto, full or line, not 'fancy'"),
        "{}",
        text(&o.stderr)
    );
}

/// The man page as a reader sees it: groff's text rendering, with typographic hyphens and
/// minus signs back to '-'.
fn render_man(roff: &[u8], dir: &Path, name: &str) -> Option<String> {
    if !common::require_tool("groff", "--version", "groff-base") {
        return None;
    }
    let p = dir.join(format!("{name}.1"));
    std::fs::write(&p, roff).unwrap();
    let o = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-P-cbou"])
        .arg(&p)
        .output()
        .unwrap();
    let err = text(&o.stderr);
    assert!(
        o.status.success() && err.is_empty(),
        "groff on {name}.1: {err}"
    );
    Some(text(&o.stdout).replace(['\u{2010}', '\u{2212}'], "-"))
}

#[test]
fn man_pages_render_and_name_every_flag() {
    let dir = tempfile::tempdir().unwrap();
    for bin in Binary::ALL {
        let o = run(exe(bin), &["--print-man"]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        let roff = o.stdout;
        let src = text(&roff);
        assert!(roff.is_ascii(), "{}: non-ASCII roff", bin.name());
        for section in [
            ".TH",
            ".SH NAME",
            ".SH SYNOPSIS",
            ".SH DESCRIPTION",
            ".SH OPTIONS",
        ] {
            assert!(src.contains(section), "{}.1 lacks {section}", bin.name());
        }
        let Some(page) = render_man(&roff, dir.path(), bin.name()) else {
            return;
        };
        assert!(page.contains("NAME"), "{page}");
        for f in flags(bin) {
            assert!(
                page.contains(&f),
                "{}.1 does not name {f}:\n{page}",
                bin.name()
            );
        }
        for section in ["ENVIRONMENT", "EXIT STATUS", "SEE ALSO"] {
            assert!(
                page.contains(section),
                "{}.1 lacks {section}:\n{page}",
                bin.name()
            );
        }
        // The same environment table as --help.
        let help = text(&run(exe(bin), &["--help"]).stdout);
        for (var, _) in bin.environment() {
            assert!(page.contains(var), "{}.1 lacks {var}", bin.name());
            assert!(help.contains(var), "{} --help lacks {var}", bin.name());
        }
    }
}

#[test]
fn completions_are_valid_scripts_naming_every_flag() {
    let dir = tempfile::tempdir().unwrap();
    for bin in Binary::ALL {
        for (shell, tool, package) in [("bash", "bash", "bash"), ("zsh", "zsh", "zsh")] {
            let o = run(exe(bin), &["--print-completions", shell]);
            assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
            let script = text(&o.stdout);
            for f in flags(bin) {
                assert!(
                    script.contains(&f),
                    "{} {shell} completion lacks {f}",
                    bin.name()
                );
            }
            if !common::require_tool(tool, "-c", package) {
                continue;
            }
            let p = dir.path().join(format!("{}.{shell}", bin.name()));
            std::fs::write(&p, &script).unwrap();
            let check = Command::new(tool).arg("-n").arg(&p).output().unwrap();
            assert!(
                check.status.success() && check.stderr.is_empty(),
                "{tool} -n on the {} completion: {}",
                bin.name(),
                text(&check.stderr)
            );
        }
    }
    // Loaded into bash, the completion offers the flags for `xsh --qu<Tab>`.
    if common::require_tool("bash", "-c", "bash") {
        let script = text(&run(XSH, &["--print-completions", "bash"]).stdout);
        let p = dir.path().join("load.bash");
        std::fs::write(&p, &script).unwrap();
        let o = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source {}; COMP_WORDS=(xsh --qu); COMP_CWORD=1; COMP_LINE='xsh --qu'; \
                 COMP_POINT=${{#COMP_LINE}}; _xsh xsh --qu xsh; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                p.display()
            ))
            .output()
            .unwrap();
        assert_eq!(
            text(&o.stdout).trim(),
            "--quickstart",
            "{}",
            text(&o.stderr)
        );
    }
}

#[test]
fn install_docs_writes_man_pages_and_completions_of_both_binaries() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("usr-local");
    let o = run(XSH, &["--install-docs", prefix.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let listed = text(&o.stdout);
    for rel in [
        "share/man/man1/xsh.1",
        "share/man/man1/xagent.1",
        "share/bash-completion/completions/xsh",
        "share/bash-completion/completions/xagent",
        "share/zsh/site-functions/_xsh",
        "share/zsh/site-functions/_xagent",
    ] {
        let p = prefix.join(rel);
        assert!(listed.contains(&p.display().to_string()), "{listed}");
        assert!(std::fs::metadata(&p).unwrap().len() > 100, "{rel}");
    }
    assert_eq!(
        std::fs::read(prefix.join("share/man/man1/xagent.1")).unwrap(),
        run(XAGENT, &["--print-man"]).stdout
    );
    // `man` finds the installed page through the prefix.
    if common::require_tool("man", "--version", "man-db") {
        let o = Command::new("man")
            .arg("-M")
            .arg(prefix.join("share/man"))
            .args(["-P", "cat", "xagent"])
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        let page = text(&o.stdout);
        assert!(o.status.success(), "{}", text(&o.stderr));
        assert!(page.contains("check"), "{page}");
    }
}

/// Every file and folder under `root`: kind, mode, size, mtime, contents.
fn tree(root: &Path) -> BTreeMap<String, (u32, u64, i64, i64, Vec<u8>)> {
    let mut m = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let md = std::fs::symlink_metadata(&p).unwrap();
        let bytes = if md.is_file() {
            std::fs::read(&p).unwrap()
        } else {
            Vec::new()
        };
        if md.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
        m.insert(
            p.display().to_string(),
            (md.mode(), md.size(), md.mtime(), md.mtime_nsec(), bytes),
        );
    }
    m
}

#[test]
fn check_is_a_dry_run_that_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let r = root.to_str().unwrap();
    // A root that does not exist is refused and not created.
    let o = run(XAGENT, &["--check", "--root", r]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("no such folder"),
        "{}",
        text(&o.stderr)
    );
    assert!(!root.exists(), "--check created the root");
    // An empty folder is refused and left empty.
    std::fs::create_dir(&root).unwrap();
    let o = run(XAGENT, &["--check", "--root", r]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
    // A prepared root: the check reports the generation and leaves every byte and mtime alone.
    let set = run(
        XSH,
        &["--root", r, "-c", "xConfiguration SIP TLS Port: 5071"],
    );
    assert!(set.status.success(), "{}", text(&set.stderr));
    let before = tree(&root);
    let o = run(XAGENT, &["--check", "--root", r]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("builds: EKU mode"),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(tree(&root), before, "--check changed the root");
    // A broken configuration: the check fails (exit 1), still writing nothing.
    let cfg = root.join("config/xconf.txt");
    let mut bytes = std::fs::read(&cfg).unwrap();
    bytes.extend_from_slice(b"xConfiguration SIP TLS Port: 99999\n");
    std::fs::write(&cfg, bytes).unwrap();
    let before = tree(&root);
    let o = run(XAGENT, &["--check", "--root", r]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    assert!(text(&o.stderr).contains("xconf.txt"), "{}", text(&o.stderr));
    assert_eq!(tree(&root), before, "a failed --check changed the root");
}
