//! The full line editor (rustyline) for terminals people use: Tab completion and `?` help from the
//! schema, history per user, Ctrl-C clears the line, Ctrl-D leaves. `?` outside quotes shows help
//! for the words so far and gives the line back for further typing; inside quotes it is a letter.

use std::borrow::Cow;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use rustyline::completion::{Completer, Pair};
use rustyline::config::Configurer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{
    Cmd, ConditionalEventHandler, Config, Context, Editor, Event, EventContext, EventHandler,
    KeyEvent, RepeatCount,
};

use super::input::{needs_body, parse_text_line};
use super::run::RunOptions;
use super::Session;
use crate::error::{Code, ShellError};
use crate::parse::lex::check_bytes;

struct XHelper;

impl Completer for XHelper {
    type Candidate = Pair;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
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

/// `?` handler: outside quotes, ask for help on the line so far.
struct QuestionMark {
    pending: Arc<Mutex<Option<String>>>,
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
        if inside_quotes(before) {
            return None;
        }
        if let Ok(mut p) = self.pending.lock() {
            *p = Some(ctx.line().to_string());
        }
        Some(Cmd::AcceptLine)
    }
}

/// Any key: the session is not idle (`Shell IdleTimeout`); the key then does what it does.
struct Activity {
    last: Arc<AtomicU64>,
}

impl ConditionalEventHandler for Activity {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, _: &EventContext) -> Option<Cmd> {
        self.last
            .store(super::run::now_secs(), std::sync::atomic::Ordering::Relaxed);
        None
    }
}

fn history_path(session: &Session) -> PathBuf {
    let user: String = session
        .who
        .user
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    session.root().join("history").join(format!("{user}.txt"))
}

type LineEditor = Editor<XHelper, rustyline::history::DefaultHistory>;

/// The editor with the shell's bindings: `?` asks for help (noted in `pending`), every key
/// counts as activity for the idle timeout (`last_input`).
fn build_editor(
    pending: &Arc<Mutex<Option<String>>>,
    last_input: &Arc<AtomicU64>,
) -> Option<LineEditor> {
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
    ed.set_helper(Some(XHelper));
    ed.bind_sequence(
        KeyEvent::from('?'),
        EventHandler::Conditional(Box::new(QuestionMark {
            pending: pending.clone(),
        })),
    );
    ed.bind_sequence(
        Event::Any,
        EventHandler::Conditional(Box::new(Activity {
            last: last_input.clone(),
        })),
    );
    Some(ed)
}

/// Reads a multi-line body up to its `.` line into `inc`, with the limits of a piped body: a
/// refused line ends the request, and the rest of the body is read up to its `.` and dropped.
fn read_body(ed: &mut LineEditor, inc: &mut super::Incoming) {
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

/// Help for the words typed so far (`?` pressed in the middle of a line).
fn show_help(session: &mut Session, line: &str, out: &mut io::Stdout) {
    let glue = if line.ends_with(' ') || line.is_empty() {
        ""
    } else {
        " "
    };
    let inc = parse_text_line(&format!("{line}{glue}?"));
    let r = session.exec_one(inc, None);
    let _ = super::run::locked_write(out, r.text.as_bytes());
}

/// Runs the editor loop. Returns whether every request succeeded.
pub fn run(session: &mut Session, opts: &RunOptions) -> bool {
    let pending = Arc::new(Mutex::new(None::<String>));
    let last_input = Arc::new(AtomicU64::new(super::run::now_secs()));
    let Some(mut ed) = build_editor(&pending, &last_input) else {
        return super::run::run_stream(
            session,
            &mut super::input::Source::new(io::BufReader::new(io::stdin())),
            opts,
            opts.banner,
        );
    };
    if let Some(limit) = session.idle_limit {
        super::run::start_idle_watchdog(limit, last_input.clone(), session.registrations.clone());
    }
    let hist = history_path(session);
    if let Some(dir) = hist.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = ed.load_history(&hist);
    let mut out = io::stdout();
    if opts.banner {
        let _ = out.write_all(session.banner().as_bytes());
        let _ = out.flush();
    }
    let prompt = opts.prompt.clone().unwrap_or_default();
    let mut initial = String::new();
    let mut all_ok = true;
    loop {
        let res = if initial.is_empty() {
            ed.readline(&prompt)
        } else {
            ed.readline_with_initial(&prompt, (&initial, ""))
        };
        initial.clear();
        last_input.store(super::run::now_secs(), std::sync::atomic::Ordering::Relaxed);
        let line = match res {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => continue,
            Err(_) => break,
        };
        if let Some(l) = pending.lock().ok().and_then(|mut p| p.take()) {
            // Show help for the words so far, then give the line back.
            show_help(session, &l, &mut out);
            initial = l;
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let _ = ed.add_history_entry(line.as_str());
        let mut inc = match check_bytes(line.as_bytes()) {
            Ok(t) => parse_text_line(t),
            Err(e) => super::Incoming {
                parsed: Err(e),
                body: None,
                result_id: None,
            },
        };
        if needs_body(&inc) {
            read_body(&mut ed, &mut inc);
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
            let _ = super::run::locked_write(&mut out, r.text.as_bytes());
        }
        let _ = out.flush();
        if bye || (!all_ok && opts.stop_on_error) {
            break;
        }
    }
    let _ = ed.save_history(&hist);
    all_ok
}
