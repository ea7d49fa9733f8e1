//! The frame every page shares (skip link, navigation, who is logged in, log out), the result
//! and error banners, and the tables that show an engine reply. Every value shown here goes
//! through maud's escaping `(expr)`; nothing from a peer or a file is written unescaped.

use maud::{html, Markup, DOCTYPE};

use crate::engine::Item;
use crate::error::ShellError;

/// Who is looking and where: what the frame needs.
pub struct View<'a> {
    pub user: &'a str,
    pub read_only: bool,
    pub csrf: &'a str,
    /// The path of this page, to mark its link in the navigation.
    pub here: &'a str,
}

/// The navigation, in the product's menu order.
const NAV: &[(&str, &[(&str, &str)])] = &[
    (
        "Status",
        &[
            ("/status", "Listeners and zones"),
            ("/status/handshakes", "Handshake log"),
        ],
    ),
    (
        "Maintenance > Security",
        &[
            ("/maintenance/security/server", "Server certificate"),
            ("/maintenance/security/client", "Client certificate"),
            ("/maintenance/security/ca", "Trusted CA certificates"),
            ("/maintenance/security/crl", "CRLs"),
            ("/maintenance/security/readiness", "EKU readiness"),
        ],
    ),
    (
        "Configuration",
        &[
            ("/configuration/eku", "EKU checking mode"),
            ("/configuration", "All settings"),
        ],
    ),
];

pub const CSS_PATH: &str = "/static/xsh.css";

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " - xsh" }
            link rel="stylesheet" href=(CSS_PATH);
        }
    }
}

/// A whole page for a logged-in user.
pub fn page(v: &View<'_>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    span class="brand" { "xsh" span class="brand-sub" { " X15.5" } }
                    div class="who" {
                        span { "Logged in as " strong { (v.user) } }
                        @if v.read_only { span class="tag" { "read-only" } }
                        form method="post" action="/logout" class="inline" {
                            input type="hidden" name="csrf" value=(v.csrf);
                            button type="submit" class="link" { "Log out" }
                        }
                    }
                }
                div class="frame" {
                    nav aria-label="Main" {
                        @for (group, links) in NAV {
                            h2 { (group) }
                            ul {
                                @for (href, text) in *links {
                                    li {
                                        @if *href == v.here {
                                            a href=(href) aria-current="page" { (text) }
                                        } @else {
                                            a href=(href) { (text) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    main id="main" tabindex="-1" {
                        h1 { (title) }
                        (body)
                    }
                }
            }
        }
    }
}

/// A page for nobody logged in (the login page).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body class="bare" {
                a class="skip" href="#main" { "Skip to content" }
                main id="main" tabindex="-1" class="login" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// What an action answered: shown above the page it came from.
pub enum Outcome {
    Done(String, Vec<Item>),
    Failed(ShellError),
}

pub fn outcome(o: &Outcome) -> Markup {
    match o {
        Outcome::Done(what, fields) => html! {
            div class="banner ok" role="status" {
                p class="banner-title" { (what) }
                @if !fields.is_empty() { (items(fields)) }
            }
        },
        Outcome::Failed(e) => error_banner(e),
    }
}

/// An engine error as the product's banner: the specific reason, then the detail.
pub fn error_banner(e: &ShellError) -> Markup {
    let reason = e.code.reason();
    html! {
        div class="banner error" role="alert" {
            p class="banner-title" { (reason) }
            @if e.message != reason { p { (e.message) } }
            @if let Some(x) = &e.expected { p { "Expected: " (x) } }
            @if let Some(h) = &e.hint { p { "Hint: " (h) } }
            p class="code" { "Error " (e.code.as_str()) }
        }
    }
}

/// The fields of a reply as a table; nested instances as their own captioned tables.
pub fn items(fields: &[Item]) -> Markup {
    let leaves: Vec<&Item> = fields
        .iter()
        .filter(|i| matches!(i, Item::Leaf { .. }))
        .collect();
    html! {
        @if !leaves.is_empty() {
            table class="kv" {
                tbody {
                    @for l in &leaves {
                        @if let Item::Leaf { name, value, .. } = l {
                            tr { th scope="row" { (name) } td { (value_cell(value)) } }
                        }
                    }
                }
            }
        }
        @for n in fields {
            @if let Item::Node { name, item, children } = n {
                section class="sub" {
                    h3 { (name) @if let Some(i) = item { " " (i) } }
                    (items(children))
                }
            }
        }
    }
}

fn value_cell(v: &str) -> Markup {
    html! {
        @if v.contains('\n') { pre { (v) } } @else { (v) }
    }
}

/// A leaf of a reply by name.
pub fn field<'a>(fields: &'a [Item], name: &str) -> Option<&'a str> {
    fields.iter().find_map(|i| match i {
        Item::Leaf { name: n, value, .. } if n == name => Some(value.as_str()),
        _ => None,
    })
}

/// The hidden CSRF field every state-changing form carries.
pub fn csrf(v: &View<'_>) -> Markup {
    html! { input type="hidden" name="csrf" value=(v.csrf); }
}

/// A read-only account's note where a form would be.
pub fn read_only_note() -> Markup {
    html! {
        p class="note" { "Your account is read-only: you can see these settings but not change them." }
    }
}
