//! The `xagent` command line.

use std::path::PathBuf;

use clap::Parser;

use std::sync::LazyLock;

use super::{after_help, DocFlags, VERSION_TEXT};

const ABOUT: &str = "Hot-reloading TLS listeners and outbound zone peers for one xsh ROOT";

const LONG_ABOUT: &str = "\
Runs the SIP TLS listener (presents the server store, verifies clients with the ExtendedKeyUsage \
Checking Mode), the tunnel listener (always requires clientAuth) and the outbound zone checks \
(present the client store) of ROOT, reloading configuration and certificates when their files \
change, without a restart and without serving a half-written file.

SIGHUP forces a reload, SIGTERM stops. Under systemd (Type=notify) it reports READY, RELOADING \
and STOPPING.";

/// The environment `xagent` reads: `--help` and the man page are made from this.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "XSH_ROOT",
        "the root when --root is not given (else /var/lib/xsh)",
    ),
    (
        "NOTIFY_SOCKET",
        "systemd's notification socket (set by systemd for Type=notify)",
    ),
];

/// What the exit status says.
pub const EXIT_STATUS: &str = "0 after SIGTERM or a successful --check, 1 when the agent cannot \
                               start or the check fails, 2 for a usage error or a root that \
                               cannot be opened (or, with --check, is not prepared).";

static AFTER_HELP: LazyLock<String> = LazyLock::new(|| after_help(ENVIRONMENT, EXIT_STATUS));

/// The `xagent` flags.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "xagent",
    version = VERSION_TEXT.as_str(),
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP.as_str(),
)]
pub struct XagentArgs {
    /// The root folder to serve [default: $XSH_ROOT, else /var/lib/xsh]. Created with a default
    /// self-signed certificate when missing (not by --check).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Print the listening addresses, every reload's result and `xagent: ready` on stdout.
    #[arg(short, long)]
    pub verbose: bool,

    /// A dry run: build one generation from the root's files, report it, and exit. Writes
    /// nothing; refuses a root that does not exist or was never prepared.
    #[arg(long)]
    pub check: bool,

    #[command(flatten)]
    pub docs: DocFlags,
}
