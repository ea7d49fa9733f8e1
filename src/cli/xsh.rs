//! The `xsh` command line.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use std::sync::LazyLock;

use super::{after_help, DocFlags, VERSION_TEXT};

const ABOUT: &str = "The xConfiguration-compatible shell (the server dialect of Cisco-style tsh)";

const LONG_ABOUT: &str = "\
The xConfiguration-compatible shell (the server dialect of Cisco-style tsh) on one ROOT: \
xConfiguration, xStatus, xCommand, xPreferences, xFeedback, xHistory, xGetXML, ?/?? help.

Reads commands from a terminal (a line editor with Tab and ? for xterm, putty, screen, tmux and \
linux; a clean line mode for vt100, dumb and others), from a pipe (every reply ends in OK or \
ERROR; the lines already read are applied in one transaction), or from -c. Under sshd's \
ForceCommand the client's command comes from SSH_ORIGINAL_COMMAND.

Start here: `xsh --quickstart` creates ./xsh-root and runs the agent's loopback listeners for \
the length of the session; type `help` in the shell.";

/// The environment `xsh` reads: `--help` and the man page are made from this.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "XSH_ROOT",
        "the root when --root is not given (else /var/lib/xsh)",
    ),
    ("XSH_EDITOR", "the default of --editor (auto, full or line)"),
    (
        "XSH_NO_GROUP_COMMIT",
        "when set (to anything), as --no-group-commit",
    ),
    (
        "SSH_ORIGINAL_COMMAND",
        "the command to run when -c is not given (sshd ForceCommand); xsh or tsh there means an \
         ordinary session",
    ),
    (
        "TERM",
        "picks the full editor (xterm, putty, screen, tmux, linux) or the line mode (others)",
    ),
];

/// What the exit status says.
pub const EXIT_STATUS: &str = "0 when every command succeeded, 1 when one failed, 2 for a usage \
                               error or a root that cannot be opened.";

static AFTER_HELP: LazyLock<String> = LazyLock::new(|| after_help(ENVIRONMENT, EXIT_STATUS));

/// How to read a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Editor {
    /// The full editor for terminal types people use, the line mode otherwise.
    Auto,
    /// The full line editor (Tab completion, ? help, history) on any terminal.
    Full,
    /// The clean line mode: the terminal's own echo, no escape sequences.
    Line,
}

/// A dump's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DumpFormat {
    /// The lines the shell prints (`xConfiguration ...` or `*s ...`).
    Txt,
    /// The XML document of `xGetXML`, valid against xconf/*.xsd.
    Xml,
}

/// Which tree's XSD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Tree {
    Config,
    Status,
}

/// The `xsh` flags.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "xsh",
    version = VERSION_TEXT.as_str(),
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP.as_str(),
)]
pub struct XshArgs {
    /// The root folder: configuration, certificates, status, history [default: $XSH_ROOT, else
    /// /var/lib/xsh]. Created with a default self-signed certificate when missing.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Run COMMAND (one request per line) instead of a session, then exit; no banner.
    // Raw bytes: a line that is not UTF-8 gets the shell's E002 error like any other bad line,
    // not clap's usage error.
    #[arg(short = 'c', value_name = "COMMAND", value_parser = clap::builder::OsStringValueParser::new())]
    pub command: Option<std::ffi::OsString>,

    /// Stop at the first command that fails (the rest of the input is not run).
    #[arg(long)]
    pub stop_on_error: bool,

    /// Commit every configuration line on its own instead of one transaction per batch read.
    #[arg(long)]
    pub no_group_commit: bool,

    /// How to read a terminal [default: $XSH_EDITOR, else auto].
    #[arg(long, value_enum, value_name = "MODE")]
    pub editor: Option<Editor>,

    /// Print TEXT before every line read from a terminal [default without TEXT: "xsh> "]; the
    /// product prints none. A TEXT beginning with '-' is given as --prompt=TEXT.
    #[arg(long, value_name = "TEXT", num_args = 0..=1, default_missing_value = "xsh> ")]
    pub prompt: Option<String>,

    /// Leave out the welcome banner ("Welcome to ...", "*r Login successful", OK).
    #[arg(long)]
    pub no_banner: bool,

    /// The quick start: use DIR as the root [default: ./xsh-root] (--root, if given, wins) and
    /// run the agent's listeners (SIP TLS 127.0.0.1:5061, tunnel :2222) for the length of the
    /// session, unless an agent already runs there.
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = "xsh-root")]
    pub quickstart: Option<PathBuf>,

    /// Run the agent on the root instead of a shell (what --quickstart starts; as xagent
    /// --verbose).
    #[arg(long)]
    pub run_agent: bool,

    /// Print the root's non-default configuration and exit.
    #[arg(long, value_enum, value_name = "FORMAT", help_heading = "Dumps")]
    pub dump_config: Option<DumpFormat>,

    /// Print the root's status tree and exit (with --dump-config: both, configuration first).
    #[arg(long, value_enum, value_name = "FORMAT", help_heading = "Dumps")]
    pub dump_status: Option<DumpFormat>,

    /// Print the XSD of the configuration or status XML documents and exit (no root needed).
    #[arg(long, value_enum, value_name = "TREE", help_heading = "Dumps")]
    pub print_xsd: Option<Tree>,

    #[command(flatten)]
    pub docs: DocFlags,
}

impl XshArgs {
    /// `--editor`, else `XSH_EDITOR` (refused, naming the variable, when it is not a mode),
    /// else auto.
    pub fn editor(&self) -> Result<Editor, String> {
        if let Some(e) = self.editor {
            return Ok(e);
        }
        match std::env::var("XSH_EDITOR") {
            Ok(v) if !v.is_empty() => Editor::from_str(&v, true)
                .map_err(|_| format!("XSH_EDITOR takes auto, full or line, not '{v}'")),
            _ => Ok(Editor::Auto),
        }
    }

    /// The root the flags ask for (`None`: the environment's or the packaged default).
    /// `--quickstart`'s relative default is made absolute, so the banner and the agent name the
    /// folder the README promises.
    pub fn root_flag(&self) -> Option<PathBuf> {
        self.root.clone().or_else(|| {
            self.quickstart.as_ref().map(|d| {
                if d.is_relative() {
                    std::env::current_dir()
                        .map(|c| c.join(d))
                        .unwrap_or_else(|_| d.clone())
                } else {
                    d.clone()
                }
            })
        })
    }
}
