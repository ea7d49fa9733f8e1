//! Calling the engine from a page: the request runs on a blocking thread (the engine reads and
//! writes files and takes locks), with the logged-in user's context, exactly as the shell's
//! command would.

use crate::engine::{Answer, CommandResult, Context, Engine, Item, Request};
use crate::error::{Area, Code, ShellError};

use super::req;

/// Runs `req` for `ctx`.
pub async fn exec(
    engine: &Engine,
    ctx: &Context,
    req: Result<Request, ShellError>,
) -> Result<Answer, ShellError> {
    let req = req?;
    let engine = engine.clone();
    let ctx = ctx.clone();
    tokio::task::spawn_blocking(move || engine.execute(&ctx, req))
        .await
        .unwrap_or_else(|e| {
            Err(ShellError::new(
                Code::CommandFailed,
                0,
                format!("the request did not finish: {e}"),
            )
            .area(Area::Command))
        })
}

/// `xCommand <words>` with `params` and `body`: its result, or the error the shell would print.
pub async fn command(
    engine: &Engine,
    ctx: &Context,
    words: &str,
    params: &[(&str, String)],
    body: Option<String>,
) -> Result<CommandResult, ShellError> {
    match exec(engine, ctx, req::command(words, params, body)).await? {
        Answer::Result(r) => Ok(r),
        other => Err(ShellError::new(
            Code::CommandFailed,
            0,
            format!("xCommand {words} answered no result: {other:?}"),
        )
        .area(Area::Command)),
    }
}

/// `xStatus <words>`: the document's items below the addressed node (empty when there is none).
pub async fn status(engine: &Engine, ctx: &Context, words: &str) -> Vec<Item> {
    match exec(engine, ctx, req::status_get(words)).await {
        Ok(Answer::Document { items, .. }) => items,
        _ => Vec::new(),
    }
}

/// Follows `path` (node names) down a document's items; instances are kept as a list.
pub fn descend<'a>(mut items: &'a [Item], path: &[&str]) -> &'a [Item] {
    for w in path {
        match items
            .iter()
            .find(|i| matches!(i, Item::Node { name, .. } if name == w))
        {
            Some(Item::Node { children, .. }) => items = children,
            _ => return &[],
        }
    }
    items
}
