//! What the engine answers: a typed reply (a tree of [`Item`]s for documents, a
//! [`CommandResult`] for commands, help lines) that any renderer can print. Nothing here knows an
//! output format or a front end.

/// A node of an output document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Leaf {
        name: String,
        value: String,
        space_ref: Option<String>,
    },
    Node {
        name: String,
        item: Option<u32>,
        children: Vec<Item>,
    },
}

impl Item {
    pub fn leaf(name: impl Into<String>, value: impl Into<String>) -> Item {
        Item::Leaf {
            name: name.into(),
            value: value.into(),
            space_ref: None,
        }
    }

    pub fn node(name: impl Into<String>, children: Vec<Item>) -> Item {
        Item::Node {
            name: name.into(),
            item: None,
            children,
        }
    }

    pub fn instance(name: impl Into<String>, n: u32, children: Vec<Item>) -> Item {
        Item::Node {
            name: name.into(),
            item: Some(n),
            children,
        }
    }
}

/// Which document: `Configuration`, `Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    Configuration,
    Status,
}

impl DocKind {
    pub fn root(self) -> &'static str {
        match self {
            DocKind::Configuration => "Configuration",
            DocKind::Status => "Status",
        }
    }
}

/// Status of a command result, as the product spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultStatus {
    Ok,
    Error,
    ParameterError,
}

impl ResultStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ResultStatus::Ok => "OK",
            ResultStatus::Error => "Error",
            ResultStatus::ParameterError => "ParameterError",
        }
    }
}

/// A command's result: `<Name>Result (status=...)` with fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandResult {
    pub name: String,
    pub status: ResultStatus,
    pub fields: Vec<Item>,
}

/// The engine's reply to one request that succeeded (a failure is a
/// [`ShellError`](crate::error::ShellError)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Nothing to say (an empty line): front ends print nothing, or a bare `OK` for a tagged
    /// request.
    Nothing,
    /// Done, nothing to show: `OK`.
    Done,
    /// A configuration or status document. `notes` are warnings about what was read (deprecated
    /// leaves), one line each without the `*w ` mark; the terminal prints them, the structured
    /// formats do not.
    Document {
        kind: DocKind,
        items: Vec<Item>,
        notes: Vec<String>,
    },
    /// Help lines for `?`/`??`, without the `*h ` mark.
    Help(Vec<String>),
    /// A command's result.
    Result(CommandResult),
    /// `xGetXML`: whole documents, printed as XML whatever the output mode.
    Xml(Vec<(DocKind, Vec<Item>)>),
}

impl Answer {
    /// Whether the request succeeded: a command result may carry an error status.
    pub fn ok(&self) -> bool {
        match self {
            Answer::Result(r) => r.status == ResultStatus::Ok,
            _ => true,
        }
    }
}

/// The `<Name>Result` name of a command node: its path words joined.
pub fn command_result_name(tree: &crate::schema::Tree, node: crate::schema::NodeId) -> String {
    let mut s: String = tree
        .ancestry(node)
        .iter()
        .map(|&n| tree.nodes[n].name.as_str())
        .collect();
    s.push_str("Result");
    s
}
