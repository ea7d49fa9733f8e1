//! The full line editor (rustyline) for terminals people use: Tab completion and `?` help from the
//! schema, history per user (appended after every command), Ctrl-C clears the line, Ctrl-D
//! leaves. `?` outside quotes shows help for the words before the cursor and gives the line back
//! as it was; a second `?` right after shows the details (`??`); inside quotes and in a body it is
//! a letter.
//!
//! A paste is typing: the bytes rustyline reads ahead stay in its buffer for the next line
//! (`buffer-redux`), the terminal between two lines stays as raw as rustyline's own mode (so a
//! line arriving while a command runs is neither echoed by the kernel nor translated), and
//! bracketed-paste markers, should a terminal send them unasked, are ignored.

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rustyline::completion::{Completer, Pair};
use rustyline::config::Configurer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{
    Cmd, ConditionalEventHandler, Config, Context, Editor, Event, EventContext, EventHandler,
    KeyCode, KeyEvent, Modifiers, RepeatCount,
};

use super::input::{needs_body, parse_text_line};
use super::run::RunOptions;
use super::Session;
use crate::error::{Code, ShellError};
use crate::parse::lex::check_bytes;

/// Whether the editor is reading a multi-line body: `?` and Tab are letters there.
type InBody = Arc<AtomicBool>;

struct XHelper {
    in_body: InBody,
}

impl Completer for XHelper {
    type Candidate = Pair;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        if self.in_body.load(Ordering::Relaxed) {
            return Ok((pos, Vec::new()));
        }
        let (start, cands) = crate::engine::help::complete(&line[..pos]);
        let pairs = cands
            .into_iter()
            .map(|c| {
                let replacement = format!("{c} ");
                Pair {
                    display: c,
                    replacement,
                }
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for XHelper {
    type Hint = String;
}

impl Highlighter for XHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        Cow::Borrowed(line)
    }
}

impl Validator for XHelper {}
impl rustyline::Helper for XHelper {}

/// What `?` asked for: the line, the cursor, and whether it is the details (`??`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct HelpAsk {
    line: String,
    pos: usize,
    details: bool,
}

/// `?` handler: outside quotes and bodies, ask for help on the words before the cursor; a `?`
/// with no other key since the last one asks for the details.
struct QuestionMark {
    pending: Arc<Mutex<Option<HelpAsk>>>,
    /// Set when help was just shown; any other key clears it (see [`Activity`]).
    just_asked: Arc<AtomicBool>,
    in_body: InBody,
}

fn inside_quotes(s: &str) -> bool {
    let mut inside = false;
    let mut esc = false;
    for c in s.chars() {
        if esc {
            esc = false;
            continue;
        }
        match c {
            '\\' if inside => esc = true,
            '"' => inside = !inside,
            _ => {}
        }
    }
    inside
}

impl ConditionalEventHandler for QuestionMark {
    fn handle(
        &self,
        _evt: &Event,
        _n: RepeatCount,
        _positive: bool,
        ctx: &EventContext,
    ) -> Option<Cmd> {
        let before = &ctx.line()[..ctx.pos()];
        if self.in_body.load(Ordering::Relaxed) || inside_quotes(before) {
            self.just_asked.store(false, Ordering::Relaxed);
            return None;
        }
        let details = self.just_asked.swap(true, Ordering::Relaxed);
        if let Ok(mut p) = self.pending.lock() {
            *p = Some(HelpAsk {
                line: ctx.line().to_string(),
                pos: ctx.pos(),
                details,
            });
        }
        Some(Cmd::AcceptLine)
    }
}

/// Any key: the session is not idle (`Shell IdleTimeout`), and the next `?` is a first one;
/// the key then does what it does.
struct Activity {
    last: Arc<AtomicU64>,
    just_asked: Arc<AtomicBool>,
}

impl ConditionalEventHandler for Activity {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, _: &EventContext) -> Option<Cmd> {
        self.last.store(super::run::now_secs(), Ordering::Relaxed);
        self.just_asked.store(false, Ordering::Relaxed);
        None
    }
}

type LineEditor = Editor<XHelper, rustyline::history::DefaultHistory>;

/// What the editor's handlers share with the loop.
struct Shared {
    pending: Arc<Mutex<Option<HelpAsk>>>,
    last_input: Arc<AtomicU64>,
    just_asked: Arc<AtomicBool>,
    in_body: InBody,
}

/// The editor with the shell's bindings: `?` asks for help (noted in `pending`), every key
/// counts as activity for the idle timeout (`last_input`).
fn build_editor(sh: &Shared) -> Option<LineEditor> {
    // List completion, as in bash: Tab completes what is unique and a second Tab lists the rest.
    let config = Config::builder()
        .bracketed_paste(false)
        .completion_type(rustyline::CompletionType::List)
        .auto_add_history(false)
        .max_history_size(1000)
        .map(|b| b.build());
    let config = config.unwrap_or_default();
    let mut ed: LineEditor = Editor::with_config(config).ok()?;
    ed.enable_synchronized_output(false);
    ed.set_helper(Some(XHelper {
        in_body: sh.in_body.clone(),
    }));
    ed.bind_sequence(
        KeyEvent::from('?'),
        EventHandler::Conditional(Box::new(QuestionMark {
            pending: sh.pending.clone(),
            just_asked: sh.just_asked.clone(),
            in_body: sh.in_body.clone(),
        })),
    );
    // Bracketed paste is never asked for; a terminal that brackets anyway gets its paste read
    // as the typing it is (rustyline would insert it whole, newlines and all, into one line).
    for marker in [KeyCode::BracketedPasteStart, KeyCode::BracketedPasteEnd] {
        ed.bind_sequence(
            KeyEvent(marker, Modifiers::NONE),
            EventHandler::Simple(Cmd::Noop),
        );
    }
    ed.bind_sequence(
        Event::Any,
        EventHandler::Conditional(Box::new(Activity {
            last: sh.last_input.clone(),
            just_asked: sh.just_asked.clone(),
        })),
    );
    Some(ed)
}

/// Reads a multi-line body up to its `.` line into `inc`, with the limits of a piped body: a
/// refused line ends the request, and the rest of the body is read up to its `.` and dropped.
fn read_body(ed: &mut LineEditor, in_body: &InBody, inc: &mut super::Incoming) {
    in_body.store(true, Ordering::Relaxed);
    read_body_lines(ed, inc);
    in_body.store(false, Ordering::Relaxed);
}

fn read_body_lines(ed: &mut LineEditor, inc: &mut super::Incoming) {
    let mut body = String::new();
    loop {
        match ed.readline("") {
            Ok(l) if l == "." => break,
            Ok(l) => {
                let bad = match check_bytes(l.as_bytes()) {
                    Err(e) => Some(e),
                    Ok(_) if body.len() + l.len() > super::input::MAX_BODY => Some(
                        ShellError::new(Code::BadLengthPrefix, 1, "body is too large")
                            .expected(format!("at most {} bytes", super::input::MAX_BODY)),
                    ),
                    Ok(_) => None,
                };
                if let Some(e) = bad {
                    while let Ok(rest) = ed.readline("") {
                        if rest == "." {
                            break;
                        }
                    }
                    inc.parsed = Err(e);
                    break;
                }
                body.push_str(&l);
                body.push('\n');
            }
            Err(_) => {
                inc.parsed = Err(ShellError::new(
                    Code::BodyUnterminated,
                    1,
                    "input ended inside a multi-line body",
                )
                .expected("a line holding only '.' after the body"));
                break;
            }
        }
    }
    inc.body = Some(body);
}

/// Help for the words before the cursor (`?`, or `??` for the details).
fn show_help(session: &mut Session, ask: &HelpAsk, out: &mut io::Stdout) {
    let line = &ask.line[..ask.pos];
    let glue = if line.ends_with(' ') || line.is_empty() {
        ""
    } else {
        " "
    };
    let marks = if ask.details { "??" } else { "?" };
    let inc = parse_text_line(&format!("{line}{glue}{marks}"));
    let r = session.exec_one(inc, None);
    let _ = super::run::locked_write(out, r.text.as_bytes());
}

/// Runs the editor loop. Returns whether every request succeeded.
pub fn run(session: &mut Session, opts: &RunOptions) -> bool {
    let sh = Shared {
        pending: Arc::new(Mutex::new(None)),
        last_input: Arc::new(AtomicU64::new(super::run::now_secs())),
        just_asked: Arc::new(AtomicBool::new(false)),
        in_body: Arc::new(AtomicBool::new(false)),
    };
    let Some(mut ed) = build_editor(&sh) else {
        return super::run::run_stream(
            session,
            &mut super::input::Source::new(io::BufReader::new(io::stdin())),
            opts,
            opts.banner,
        );
    };
    if let Some(limit) = session.idle_limit {
        super::run::start_idle_watchdog(
            limit,
            sh.last_input.clone(),
            session.registrations.clone(),
        );
    }
    // History is a convenience: a session without it (a planted link, a folder of someone
    // else's) says why once and goes on.
    let mut hist = match super::history::open_history(session.root(), nix::unistd::getuid()) {
        Ok((h, lines)) => {
            for l in &lines {
                let _ = ed.add_history_entry(l.as_str());
            }
            Some(h)
        }
        Err(e) => {
            eprintln!("xsh: no history for this session: {e}");
            None
        }
    };
    super::run::quiet_tty();
    let mut out = io::stdout();
    if opts.banner {
        let _ = out.write_all(session.banner().as_bytes());
        let _ = out.flush();
    }
    let all_ok = editor_loop(session, opts, &sh, &mut ed, hist.as_mut(), &mut out);
    super::run::restore_tty();
    all_ok
}

/// Reads, runs and answers line after line until `bye`, Ctrl-D or (with `stop_on_error`) a
/// failure; each line goes to the history file as soon as it is read.
fn editor_loop(
    session: &mut Session,
    opts: &RunOptions,
    sh: &Shared,
    ed: &mut LineEditor,
    mut hist: Option<&mut super::history::History>,
    out: &mut io::Stdout,
) -> bool {
    let prompt = opts.prompt.clone().unwrap_or_default();
    let mut initial: Option<(String, usize)> = None;
    let mut all_ok = true;
    loop {
        let res = match initial.take() {
            None => ed.readline(&prompt),
            Some((l, pos)) => {
                let (left, right) = l.split_at(pos);
                ed.readline_with_initial(&prompt, (left, right))
            }
        };
        sh.last_input
            .store(super::run::now_secs(), Ordering::Relaxed);
        let line = match res {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => continue,
            Err(_) => break,
        };
        if let Some(ask) = sh.pending.lock().ok().and_then(|mut p| p.take()) {
            // Show help for the words before the cursor, then give the line back as it was.
            show_help(session, &ask, out);
            initial = Some((ask.line, ask.pos));
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        // A password is never kept: the history holds `Password: ***`.
        let kept = crate::accounts::mask_secrets(&line);
        let _ = ed.add_history_entry(kept.as_str());
        // Appended now, so a dropped connection keeps every line but the one running.
        if let Some(h) = hist.as_deref_mut() {
            let _ = h.append(&kept);
        }
        let mut inc = match check_bytes(line.as_bytes()) {
            Ok(t) => parse_text_line(t),
            Err(e) => super::Incoming {
                parsed: Err(e),
                body: None,
                result_id: None,
            },
        };
        if needs_body(&inc) {
            read_body(ed, &sh.in_body, &mut inc);
        }
        let bye = matches!(
            &inc.parsed,
            Ok(crate::parse::Request {
                action: crate::parse::Action::Bye,
                ..
            })
        );
        let replies = session.run_batch(vec![inc], opts.stop_on_error);
        for r in &replies {
            all_ok &= r.ok;
            let _ = super::run::locked_write(out, r.text.as_bytes());
        }
        let _ = out.flush();
        if bye || (!all_ok && opts.stop_on_error) {
            break;
        }
    }
    all_ok
}
