//! One engine answer printed in an output mode, with its result tag and the terminator (`OK`, or
//! `ERROR` after a failed command result; JSON carries its status inside).

use super::{json, terminal, xml};
use crate::engine::reply::{Answer, CommandResult, DocKind, Item};
use crate::parse::OutputMode;

/// The text of `answer` in `mode`, tagged with `tag`.
pub fn answer(mode: OutputMode, answer: &Answer, tag: Option<&str>) -> String {
    match answer {
        Answer::Nothing if tag.is_none() => String::new(),
        Answer::Nothing | Answer::Done => done(mode, tag),
        Answer::Document { kind, items, notes } => document(mode, *kind, items, notes, tag),
        Answer::Help(lines) => help(mode, lines, tag),
        Answer::Result(r) => result(mode, r, tag),
        Answer::Xml(docs) => get_xml(mode, docs, tag),
    }
}

fn done(mode: OutputMode, tag: Option<&str>) -> String {
    match mode {
        OutputMode::Terminal => {
            let mut s = String::new();
            terminal::result_id(tag, &mut s);
            s.push_str("OK\n");
            s
        }
        OutputMode::Xml => format!("{}OK\n", xml::empty(tag)),
        OutputMode::Json => json::empty(tag),
    }
}

fn document(
    mode: OutputMode,
    kind: DocKind,
    items: &[Item],
    notes: &[String],
    tag: Option<&str>,
) -> String {
    match mode {
        OutputMode::Terminal => {
            let mut s = String::new();
            terminal::result_id(tag, &mut s);
            match kind {
                DocKind::Configuration => terminal::config(items, &mut s),
                DocKind::Status => terminal::status(items, &mut s),
            }
            for n in notes {
                s.push_str("*w ");
                s.push_str(n);
                s.push('\n');
            }
            s.push_str("OK\n");
            s
        }
        OutputMode::Xml => format!("{}OK\n", xml::reply(kind, items, tag)),
        OutputMode::Json => json::reply(kind, items, tag),
    }
}

fn result(mode: OutputMode, r: &CommandResult, tag: Option<&str>) -> String {
    let term = if r.status == crate::engine::reply::ResultStatus::Ok {
        "OK\n"
    } else {
        "ERROR\n"
    };
    match mode {
        OutputMode::Terminal => {
            let mut s = String::new();
            terminal::result_id(tag, &mut s);
            terminal::result(r, &mut s);
            s.push_str(term);
            s
        }
        OutputMode::Xml => format!("{}{term}", xml::result(r, tag)),
        OutputMode::Json => json::result(r, tag),
    }
}

fn help(mode: OutputMode, lines: &[String], tag: Option<&str>) -> String {
    match mode {
        OutputMode::Terminal => {
            let mut s = String::new();
            terminal::result_id(tag, &mut s);
            for l in lines {
                s.push_str("*h ");
                s.push_str(l);
                s.push('\n');
            }
            s.push_str("OK\n");
            s
        }
        OutputMode::Xml => format!("{}OK\n", xml::help(lines, tag)),
        OutputMode::Json => json::help(lines, tag),
    }
}

fn get_xml(mode: OutputMode, docs: &[(DocKind, Vec<Item>)], tag: Option<&str>) -> String {
    let mut text = String::new();
    for (kind, items) in docs {
        text.push_str(&xml::document(*kind, items));
    }
    match mode {
        // JSON mode prints JSON only: the XML document travels as one string.
        OutputMode::Json => {
            let mut s = String::from("{\"GetXML\":{\"Value\":");
            json::string(&text, &mut s);
            s.push('}');
            if let Some(t) = tag {
                s.push_str(",\"ResultId\":");
                json::string(t, &mut s);
            }
            s.push_str("}\n");
            s
        }
        OutputMode::Terminal => {
            let mut s = String::new();
            terminal::result_id(tag, &mut s);
            format!("{s}{text}OK\n")
        }
        OutputMode::Xml => format!("{text}OK\n"),
    }
}
