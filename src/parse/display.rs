//! The canonical one-line form of an [`Action`], which the conformance corpus compares.

use std::fmt;

use super::{Action, Addr, Step, Which};
use crate::schema::schema;

impl fmt::Display for Action {
    /// A canonical one-line form, used by the conformance corpus.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = schema();
        match self {
            Action::Empty => write!(f, "empty"),
            Action::Echo(on) => write!(f, "echo {}", if *on { "on" } else { "off" }),
            Action::Bye => write!(f, "bye"),
            Action::ConfigGet(a) => write!(f, "config-get [{}]", a.words(&s.config).join(" ")),
            Action::ConfigSet { key, value, .. } => {
                write!(f, "config-set [{}] = {value:?}", key.words(&s.config))
            }
            Action::StatusGet(a) => write!(f, "status-get [{}]", a.words(&s.status).join(" ")),
            Action::Command { node, params } => {
                write!(
                    f,
                    "command [{}]",
                    Addr {
                        steps: s
                            .commands
                            .ancestry(*node)
                            .into_iter()
                            .map(|n| Step {
                                node: n,
                                instance: None
                            })
                            .collect()
                    }
                    .words(&s.commands)
                    .join(" ")
                )?;
                for p in params {
                    match p.index {
                        Some(i) => write!(f, " {}.{i}={:?}", p.name, p.value)?,
                        None => write!(f, " {}={:?}", p.name, p.value)?,
                    }
                }
                Ok(())
            }
            Action::Preferences(m) => write!(f, "preferences {m:?}"),
            Action::Feedback(op) => write!(f, "feedback {op:?}"),
            Action::History(n) => write!(f, "history {n:?}"),
            Action::GetXml(p) => write!(f, "getxml {p:?}"),
            Action::Help {
                which,
                addr,
                all,
                prefix,
            } => {
                let tree = match which {
                    Which::Configuration => Some(&s.config),
                    Which::Status => Some(&s.status),
                    Which::Command => Some(&s.commands),
                    Which::Verbs => None,
                };
                let words = tree.map(|t| addr.words(t).join(" ")).unwrap_or_default();
                write!(
                    f,
                    "help{} {which:?} [{words}]",
                    if *all { "-all" } else { "" }
                )?;
                if let Some(p) = prefix {
                    write!(f, " prefix={p:?}")?;
                }
                Ok(())
            }
        }
    }
}
