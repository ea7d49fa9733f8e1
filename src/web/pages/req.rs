//! Requests the pages send to the engine, built through `engine::structured` from structured
//! parts (command words and parameter values, a configuration key and its value), so the
//! parser checks them exactly as a typed line and a value holding quotes or newlines stays one
//! value.

use crate::engine::structured::{self, Step};
use crate::engine::Request;
use crate::error::ShellError;
use crate::parse::Key;
use crate::schema::schema;

fn words(w: &str) -> Vec<Step> {
    w.split(' ').map(Step::from).collect()
}

/// `xCommand <words>` with `params` (empty values are left out: an empty form field means "not
/// given") and an optional body.
pub fn command(
    w: &str,
    params: &[(&str, String)],
    body: Option<String>,
) -> Result<Request, ShellError> {
    let params: Vec<(String, Vec<String>)> = params
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(n, v)| ((*n).to_string(), vec![v.clone()]))
        .collect();
    structured::command(&words(w), &params, body)
}

/// `xConfiguration <key>: <value>`.
pub fn config_set(key: &Key, value: &str) -> Result<Request, ShellError> {
    let tree = &schema().config;
    let mut steps = Vec::new();
    let mut inst = key.inst.iter();
    for id in tree.ancestry(key.leaf) {
        steps.push(Step::Word(tree.nodes[id].name.clone()));
        if tree.nodes[id].instances.is_some() {
            if let Some(n) = inst.next() {
                steps.push(Step::Index(*n));
            }
        }
    }
    structured::config_set(&steps, value)
}

/// `xStatus <words>`.
pub fn status_get(w: &str) -> Result<Request, ShellError> {
    structured::status_get(&words(w))
}
