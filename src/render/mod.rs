//! Renderers: configuration, status, command results, help and errors in the three output modes.
//!
//! The engine answers with a typed reply (a tree of [`Item`]s, a [`CommandResult`], help lines or
//! a [`ShellError`]); the terminal, XML and JSON writers print it. The writers know formats, not
//! the configuration store, and nothing here touches disk. Output uses `\n` only (a PTY's driver
//! adds `\r`).

// Input from a user, a file or a peer is never unwrapped here: it gets an error value.
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod json;
pub mod terminal;
pub mod xml;

mod reply;

pub use reply::answer;

pub use crate::engine::reply::{command_result_name, CommandResult, DocKind, Item, ResultStatus};
use crate::error::{Area, Code, ShellError};
use crate::parse::OutputMode;

/// The quoting rule is the schema room's (the store writes values with it too).
pub use crate::schema::text::{quote, quote_into};

/// A rough size in bytes of `items` written out, to reserve output buffers once (a dump of
/// 1,000 zones is half a megabyte; growing a string to that copies it many times).
pub fn size_hint(items: &[Item]) -> usize {
    items
        .iter()
        .map(|it| match it {
            Item::Leaf { name, value, .. } => 2 * name.len() + value.len() + 48,
            Item::Node { name, children, .. } => 2 * name.len() + 32 + size_hint(children),
        })
        .sum()
}

/// Renders an error in the given mode, with the result tag.
pub fn error(
    mode: OutputMode,
    e: &ShellError,
    result_id: Option<&str>,
    command_name: Option<&str>,
) -> String {
    // A parameter error is found while parsing, before the command is known to the session; its
    // path names the command, so the reply still carries `<Name>Result` (xapi.md).
    let fallback = match e.code {
        Code::UnknownParam | Code::MissingParam | Code::IllegalParam | Code::MissingValue
            if command_name.is_none() && e.area == Area::Command && !e.path.is_empty() =>
        {
            Some(format!("{}Result", e.path.concat()))
        }
        _ => None,
    };
    let command_name = command_name.or(fallback.as_deref());
    match mode {
        OutputMode::Terminal => terminal::error(e, result_id, command_name),
        OutputMode::Xml => xml::error(e, result_id, command_name),
        OutputMode::Json => json::error(e, result_id, command_name),
    }
}
