//! How a session runs: one command (`-c`), a stream (pipe, no-PTY SSH channel, or a PTY in clean
//! line mode where the kernel echoes), or the full line editor. Picks the mode from the terminal
//! type and writes replies with `\n` only, the terminator always last.

use std::io::{self, BufReader, IsTerminal, Write};

use super::input::Source;
use super::{Incoming, Reply, Session};
use crate::parse::{Action, Request};

/// How to read a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditorChoice {
    /// Full editor for terminal types people use, clean line mode otherwise.
    Auto,
    Full,
    Line,
}

/// Options of a session run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub stop_on_error: bool,
    pub editor: EditorChoice,
    pub prompt: Option<String>,
    pub banner: bool,
}

/// Terminal types that get the full editor under `Auto`.
pub fn is_people_terminal(term: &str) -> bool {
    let t = term.to_ascii_lowercase();
    [
        "xterm",
        "putty",
        "screen",
        "tmux",
        "rxvt",
        "alacritty",
        "kitty",
        "foot",
        "wezterm",
        "konsole",
        "gnome",
        "st-",
    ]
    .iter()
    .any(|p| t.starts_with(p))
        || t == "linux"
}

/// Set while the full editor owns the terminal: it echoes itself, so the kernel must not.
static EDITOR_OWNS_TTY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Turns the terminal's own echo on or off (`echo on/off`); a no-op without a terminal, and
/// under the full editor (which echoes what it reads itself).
pub fn set_tty_echo(on: bool) {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let stdin = io::stdin();
    if !stdin.is_terminal() || EDITOR_OWNS_TTY.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    if let Ok(mut t) = tcgetattr(&stdin) {
        t.local_flags.set(LocalFlags::ECHO, on);
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &t);
    }
}

/// The terminal settings the session found, put back when it ends (also by the idle watchdog).
static SAVED_TTY: std::sync::Mutex<Option<nix::sys::termios::Termios>> =
    std::sync::Mutex::new(None);

fn save_tty() {
    let stdin = io::stdin();
    if let (Ok(t), Ok(mut saved)) = (nix::sys::termios::tcgetattr(&stdin), SAVED_TTY.lock()) {
        *saved = Some(t);
    }
}

/// Clean line mode on a terminal: ^C, ^\ and ^Z must not signal (kill or stop) the shell; ^C
/// becomes the kernel's line kill, so it erases the line being typed, as in the editor.
fn calm_tty() {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg, SpecialCharacterIndices};
    let stdin = io::stdin();
    if let Ok(mut t) = tcgetattr(&stdin) {
        t.local_flags.remove(LocalFlags::ISIG);
        t.control_chars[SpecialCharacterIndices::VKILL as usize] = 0x03;
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &t);
    }
}

/// The full editor's terminal between two lines: what rustyline sets while it reads (no echo,
/// no line discipline, no signals, `\r` kept), so input arriving while a command runs (the rest
/// of a paste) waits unechoed and unchanged for the editor, as typed ahead. Output processing
/// stays on. rustyline takes this as the mode to return to after each line.
pub fn quiet_tty() {
    use nix::sys::termios::{tcgetattr, tcsetattr, InputFlags, LocalFlags, SetArg};
    let stdin = io::stdin();
    if let Ok(mut t) = tcgetattr(&stdin) {
        t.local_flags
            .remove(LocalFlags::ECHO | LocalFlags::ICANON | LocalFlags::IEXTEN | LocalFlags::ISIG);
        t.input_flags.remove(InputFlags::ICRNL | InputFlags::IXON);
        if tcsetattr(&stdin, SetArg::TCSADRAIN, &t).is_ok() {
            EDITOR_OWNS_TTY.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Puts the terminal back as the session found it (a no-op without a terminal).
pub fn restore_tty() {
    let Ok(saved) = SAVED_TTY.lock() else { return };
    if let Some(t) = saved.as_ref() {
        let _ = nix::sys::termios::tcsetattr(io::stdin(), nix::sys::termios::SetArg::TCSADRAIN, t);
    }
}

fn write_replies(out: &mut impl Write, replies: &[Reply]) -> io::Result<()> {
    let lock = super::output();
    let _g = lock
        .lock()
        .map_err(|_| io::Error::other("output lock poisoned"))?;
    // One write for the whole batch: stdout is line-buffered, and a write per reply line costs
    // a system call each (10,000 of them for a 10,000-line push).
    let mut buf = Vec::with_capacity(replies.iter().map(|r| r.text.len()).sum());
    for r in replies {
        buf.extend_from_slice(r.text.as_bytes());
    }
    out.write_all(&buf)?;
    out.flush()
}

/// Writes under the session's output lock (feedback may write from another thread).
pub fn locked_write(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    let lock = super::output();
    let _g = lock
        .lock()
        .map_err(|_| io::Error::other("output lock poisoned"))?;
    out.write_all(bytes)?;
    out.flush()
}

pub(super) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `Shell IdleTimeout` in seconds (0 = never).
pub(super) fn idle_limit(cfg: &crate::store::Config) -> Option<u64> {
    Some(u64::from(cfg.shell().idle_timeout())).filter(|&n| n > 0)
}

/// Ends the session after `limit` seconds without input. It never cuts a transaction: input
/// has stopped, so the main thread is waiting to read, and the output lock keeps replies whole.
/// `regs` holds the session's output mode: in JSON mode nothing but JSON may be written, so the
/// session ends without the `*e` line.
pub(super) fn start_idle_watchdog(
    limit: u64,
    last: std::sync::Arc<std::sync::atomic::AtomicU64>,
    regs: std::sync::Arc<std::sync::Mutex<super::feedback::Registrations>>,
) {
    std::thread::spawn(move || loop {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let idle = now_secs().saturating_sub(last.load(std::sync::atomic::Ordering::Relaxed));
        if idle >= limit {
            let lock = super::output();
            let _g = lock.lock();
            let json = regs
                .lock()
                .map(|r| r.mode == Some(crate::parse::OutputMode::Json))
                .unwrap_or(false);
            let mut out = io::stdout();
            if !json {
                let _ = out.write_all(
                    format!(
                        "*e session closed after {limit} seconds without input (Shell IdleTimeout)\n"
                    )
                    .as_bytes(),
                );
            }
            let _ = out.flush();
            restore_tty();
            #[allow(
                clippy::exit,
                reason = "the session ends from the watchdog thread while the main thread blocks in read; the terminal is restored above and no transaction is open"
            )]
            std::process::exit(0);
        }
    });
}

/// Runs `-c` text: each line a request, no banner. Returns success. Bytes, so a line that is
/// not UTF-8 is answered with E002 like one read from a pipe.
pub fn run_command(session: &mut Session, text: &[u8], opts: &RunOptions) -> bool {
    let mut src = Source::new(BufReader::new(text));
    run_stream(session, &mut src, opts, false)
}

/// Runs a session over stdin: the editor when it is a terminal of a kind people use, else the
/// stream reader. Returns whether every request succeeded.
pub fn run_stdin(session: &mut Session, opts: &RunOptions) -> bool {
    let stdin = io::stdin();
    let tty = stdin.is_terminal();
    let term = std::env::var("TERM").unwrap_or_default();
    let full = tty
        && match opts.editor {
            EditorChoice::Full => true,
            EditorChoice::Line => false,
            EditorChoice::Auto => is_people_terminal(&term),
        };
    if tty {
        save_tty();
    }
    if full {
        session.keys = super::Keys::Editor;
        return super::editor::run(session, opts);
    }
    if tty {
        session.keys = super::Keys::Line;
        calm_tty();
    }
    let mut src = Source::new(BufReader::with_capacity(1 << 20, stdin));
    let ok = run_stream(session, &mut src, opts, opts.banner);
    restore_tty();
    ok
}

/// The stream loop: read what is buffered as one batch (group commit), reply, repeat; ends at
/// EOF or `bye`.
pub fn run_stream<R: io::BufRead + super::input::Buffered>(
    session: &mut Session,
    src: &mut Source<R>,
    opts: &RunOptions,
    banner: bool,
) -> bool {
    let mut out = io::stdout();
    if banner && locked_write(&mut out, session.banner().as_bytes()).is_err() {
        return false;
    }
    let idle = session.idle_limit;
    let last_input = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(now_secs()));
    if let Some(limit) = idle {
        start_idle_watchdog(limit, last_input.clone(), session.registrations.clone());
    }
    src.track_activity(last_input.clone());
    let mut all_ok = true;
    let interactive_prompt = opts.prompt.clone().filter(|_| io::stdin().is_terminal());
    loop {
        if let Some(p) = &interactive_prompt {
            let _ = locked_write(&mut out, p.as_bytes());
        }
        let mut batch: Vec<Incoming> = Vec::new();
        let mut bye = false;
        match src.next_request() {
            Ok(Some(i)) => {
                bye |= is_bye(&i);
                batch.push(i);
            }
            Ok(None) => break,
            Err(_) => break,
        }
        // Sets answer `OK` and are what group commit is for; other replies can be large (a
        // whole configuration), and a batch's replies are held until its commit, so only a few
        // of those ride in one batch.
        let mut large = usize::from(!is_set(&batch[0]));
        while !bye && batch.len() < 20_000 && large < MAX_LARGE_REPLIES && src.has_buffered_line() {
            match src.next_request() {
                Ok(Some(i)) => {
                    bye |= is_bye(&i);
                    large += usize::from(!is_set(&i));
                    batch.push(i);
                }
                _ => break,
            }
        }
        last_input.store(now_secs(), std::sync::atomic::Ordering::Relaxed);
        let n = batch.len();
        let replies = session.run_batch(batch, opts.stop_on_error);
        let failed = replies.iter().any(|r| !r.ok);
        all_ok &= !failed;
        // A long batch is activity too: idle time counts from its last reply.
        last_input.store(now_secs(), std::sync::atomic::Ordering::Relaxed);
        if write_replies(&mut out, &replies).is_err() {
            return false;
        }
        if bye || (failed && opts.stop_on_error) || replies.len() < n {
            break;
        }
    }
    all_ok
}

/// Requests other than sets that may share one batch (bounds the replies held in memory).
const MAX_LARGE_REPLIES: usize = 32;

fn is_set(i: &Incoming) -> bool {
    matches!(
        &i.parsed,
        Ok(Request {
            action: Action::ConfigSet { .. },
            ..
        })
    )
}

fn is_bye(i: &Incoming) -> bool {
    matches!(
        &i.parsed,
        Ok(Request {
            action: Action::Bye,
            ..
        })
    )
}
