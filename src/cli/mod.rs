//! The process command lines of `xsh` and `xagent`: one clap table per binary, and from the same
//! tables their `--help`, man pages and shell completions (and the command that installs those).
//! A front-end room: it knows flags and their documentation, not what a session or an agent does
//! with them (the binaries act on the parsed values).

pub mod xagent;
pub mod xsh;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use clap::CommandFactory;
pub use clap_complete::Shell;

pub use xagent::XagentArgs;
pub use xsh::XshArgs;

/// `NAME 0.1.0 (X15.5)`: the crate version and the product release it speaks.
pub(crate) static VERSION_TEXT: LazyLock<String> =
    LazyLock::new(|| format!("{} ({})", env!("CARGO_PKG_VERSION"), crate::schema::VERSION));

/// The text after `--help`'s options: the environment and the exit status.
pub(crate) fn after_help(env: &[(&str, &str)], exit: &str) -> String {
    let width = env.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    // Wrapped here, under the description column, so clap's wrapping (at 100) has nothing to do.
    let room = 96 - width - 4;
    let mut s = String::from("Environment:\n");
    for (name, what) in env {
        let mut line = format!("  {name:width$}  ");
        let mut used = 0;
        for word in what.split_whitespace() {
            if used > 0 && used + 1 + word.len() > room {
                s.push_str(line.trim_end());
                s.push('\n');
                line = " ".repeat(width + 4);
                used = 0;
            }
            if used > 0 {
                line.push(' ');
                used += 1;
            }
            line.push_str(word);
            used += word.len();
        }
        s.push_str(&line);
        s.push('\n');
    }
    s.push_str(&format!("\nExit status: {exit}"));
    s
}

/// The documentation flags both binaries share (each table flattens these in).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Documentation")]
pub struct DocFlags {
    /// Print this binary's man page (roff) on stdout and exit.
    #[arg(long)]
    pub print_man: bool,
    /// Print a completion script for SHELL (bash, zsh, fish, elvish, powershell) on stdout and
    /// exit.
    #[arg(long, value_name = "SHELL")]
    pub print_completions: Option<Shell>,
    /// Write the man pages (PREFIX/share/man/man1) and the bash and zsh completions
    /// (PREFIX/share/bash-completion/completions, PREFIX/share/zsh/site-functions) of both
    /// xsh and xagent under PREFIX (e.g. /usr/local), print the files written, and exit.
    #[arg(long, value_name = "PREFIX")]
    pub install_docs: Option<PathBuf>,
}

/// Which binary's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binary {
    Xsh,
    Xagent,
}

impl Binary {
    pub const ALL: [Binary; 2] = [Binary::Xsh, Binary::Xagent];

    pub fn name(self) -> &'static str {
        match self {
            Binary::Xsh => "xsh",
            Binary::Xagent => "xagent",
        }
    }

    /// The clap table (what `--help` prints and the man page and completions are made from).
    /// The environment the binary reads, `(variable, what for)`.
    pub fn environment(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Binary::Xsh => xsh::ENVIRONMENT,
            Binary::Xagent => xagent::ENVIRONMENT,
        }
    }

    pub fn exit_status(self) -> &'static str {
        match self {
            Binary::Xsh => xsh::EXIT_STATUS,
            Binary::Xagent => xagent::EXIT_STATUS,
        }
    }

    fn other(self) -> Binary {
        match self {
            Binary::Xsh => Binary::Xagent,
            Binary::Xagent => Binary::Xsh,
        }
    }

    pub fn command(self) -> clap::Command {
        match self {
            Binary::Xsh => XshArgs::command(),
            Binary::Xagent => XagentArgs::command(),
        }
    }
}

/// The man page of `bin`, in roff: clap's sections, then ENVIRONMENT, EXIT STATUS and SEE
/// ALSO from the same data `--help` prints (instead of clap's one "EXTRA" section).
pub fn man_page(bin: Binary) -> Vec<u8> {
    use clap_mangen::roff::{bold, roman, Roff};
    let man = clap_mangen::Man::new(bin.command().after_help(None::<&str>));
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = man.render_title(&mut out);
    let _ = man.render_name_section(&mut out);
    let _ = man.render_synopsis_section(&mut out);
    let _ = man.render_description_section(&mut out);
    let _ = man.render_options_section(&mut out);
    let mut roff = Roff::default();
    roff.control("SH", ["ENVIRONMENT"]);
    for (name, what) in bin.environment() {
        roff.control("TP", [])
            .text([bold(*name)])
            .text([roman(*what)]);
    }
    roff.control("SH", ["EXIT STATUS"])
        .text([roman(bin.exit_status())]);
    let other = bin.other().name();
    roff.control("SH", ["SEE ALSO"]).text([
        bold(other),
        roman("(1); README.md and grammar/README.md in the source tree"),
    ]);
    let _ = roff.to_writer(&mut out);
    let _ = man.render_version_section(&mut out);
    out
}

/// The completion script of `bin` for `shell`.
pub fn completions(bin: Binary, shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut bin.command(), bin.name(), &mut out);
    out
}

/// Where [`install_docs`] puts each file, relative to the prefix.
pub fn doc_files(bin: Binary) -> Vec<(PathBuf, Vec<u8>)> {
    let n = bin.name();
    vec![
        (
            PathBuf::from(format!("share/man/man1/{n}.1")),
            man_page(bin),
        ),
        (
            PathBuf::from(format!("share/bash-completion/completions/{n}")),
            completions(bin, Shell::Bash),
        ),
        (
            PathBuf::from(format!("share/zsh/site-functions/_{n}")),
            completions(bin, Shell::Zsh),
        ),
    ]
}

/// Writes the man pages and bash/zsh completions of both binaries under `prefix`; returns the
/// files written.
pub fn install_docs(prefix: &Path) -> Result<Vec<PathBuf>, DocsError> {
    let mut written = Vec::new();
    for bin in Binary::ALL {
        for (rel, bytes) in doc_files(bin) {
            let path = prefix.join(rel);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| DocsError {
                    path: dir.to_path_buf(),
                    source: e,
                })?;
            }
            std::fs::write(&path, bytes).map_err(|e| DocsError {
                path: path.clone(),
                source: e,
            })?;
            written.push(path);
        }
    }
    Ok(written)
}

/// A documentation file that could not be written.
#[derive(Debug)]
pub struct DocsError {
    pub path: PathBuf,
    pub source: io::Error,
}

impl std::fmt::Display for DocsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot write {}: {}", self.path.display(), self.source)
    }
}

impl std::error::Error for DocsError {}

/// Acts on the documentation flags: `Some(exit code)` when one was given (the binary then
/// exits), `None` to go on.
pub fn handle_doc_flags(bin: Binary, flags: &DocFlags) -> Option<std::process::ExitCode> {
    use std::io::Write;
    use std::process::ExitCode;
    let bytes = if flags.print_man {
        man_page(bin)
    } else if let Some(shell) = flags.print_completions {
        completions(bin, shell)
    } else if let Some(prefix) = &flags.install_docs {
        return Some(match install_docs(prefix) {
            Ok(files) => {
                for f in files {
                    println!("{}", f.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}: {e}", bin.name());
                ExitCode::from(1)
            }
        });
    } else {
        return None;
    };
    let mut out = io::stdout().lock();
    Some(match out.write_all(&bytes).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_consistent() {
        for bin in Binary::ALL {
            bin.command().debug_assert();
        }
    }
}
