//! Maintenance > Security: the server and client certificate pages (decoded and PEM views,
//! upload, reset, CSR), the trusted CA list, the CRLs and the EKU readiness report. Each action
//! is the shell's `xCommand Security Certificates …` run through the engine, so roles,
//! validation, audit and the refusal texts are the shell's.

use maud::{html, Markup};

use super::layout::{self, csrf, field, items, outcome, Outcome, View};
use super::run;
use crate::engine::{Context, Engine, Item};

const CMD: &str = "Security Certificates";

/// Which certificate store a page is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Server,
    Client,
}

impl Store {
    pub fn word(self) -> &'static str {
        match self {
            Store::Server => "Server",
            Store::Client => "Client",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Store::Server => "/maintenance/security/server",
            Store::Client => "/maintenance/security/client",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Store::Server => "Server certificate",
            Store::Client => "Client certificate",
        }
    }
}

/// The outcome of a command, as a banner.
pub fn done(
    what: &str,
    r: Result<crate::engine::CommandResult, crate::error::ShellError>,
) -> Outcome {
    match r {
        Ok(r) => Outcome::Done(what.to_string(), r.fields),
        Err(e) => Outcome::Failed(e),
    }
}

/// The server or client certificate page: the store's certificate (decoded or PEM), its CSR
/// state and, for a read-write account, the upload, reset and CSR forms.
pub async fn store_page(
    engine: &Engine,
    ctx: &Context,
    v: &View<'_>,
    store: Store,
    pem: bool,
    out: Option<Outcome>,
) -> Markup {
    let format = if pem { "PEM" } else { "Decoded" };
    let shown = run::command(
        engine,
        ctx,
        &format!("{CMD} {} Show", store.word()),
        &[("Format", format.to_string())],
        None,
    )
    .await;
    let csr = run::command(
        engine,
        ctx,
        &format!("{CMD} CSR Show"),
        &[("Store", store.word().to_string())],
        None,
    )
    .await;
    let body = html! {
        @if let Some(o) = &out { (outcome(o)) }
        section aria-labelledby="current" {
            h2 id="current" { "Current certificate" }
            p class="views" {
                @if pem {
                    a href=(store.path()) { "Show decoded" } " | " strong { "PEM" }
                } @else {
                    strong { "Decoded" } " | " a href={ (store.path()) "?view=pem" } { "Show PEM" }
                }
            }
            @match &shown {
                Ok(r) => {
                    @if pem {
                        @if let Some(p) = field(&r.fields, "PEM") { pre class="pem" { (p) } }
                    } @else {
                        (summary(&r.fields))
                        details {
                            summary { "All fields" }
                            (items(&r.fields))
                        }
                    }
                }
                Err(e) => (layout::error_banner(e)),
            }
        }
        @if v.read_only {
            (layout::read_only_note())
        } @else {
            (upload_form(v, store))
            @if store == Store::Server { (reset_form(v)) }
        }
        (csr_section(v, store, csr))
    };
    layout::page(v, store.title(), body)
}

/// Expiry, issuer and serial first, as the product's page shows them.
fn summary(f: &[Item]) -> Markup {
    let get = |n: &str| field(f, n).unwrap_or("");
    html! {
        table class="kv summary" {
            tbody {
                tr { th scope="row" { "Subject" } td { (get("Subject")) } }
                tr { th scope="row" { "Issuer" } td { (get("Issuer")) } }
                tr { th scope="row" { "Serial number" } td class="serial" { (get("SerialNumber")) } }
                tr { th scope="row" { "Expiry date" } td { (get("NotAfter")) " (" (get("DaysLeft")) " days left)" } }
                tr { th scope="row" { "Extended key usage" } td { (get("ExtendedKeyUsage")) } }
            }
        }
    }
}

fn upload_form(v: &View<'_>, store: Store) -> Markup {
    let id = store.word().to_ascii_lowercase();
    html! {
        section aria-labelledby={ "up-" (id) } {
            h2 id={ "up-" (id) } { "Upload a new certificate" }
            form method="post" action={ (store.path()) "/upload" } enctype="multipart/form-data" class="stack" {
                (csrf(v))
                div class="field" {
                    label for={ (id) "-cert" } { "Certificate file (PEM, leaf first; may hold the key)" }
                    input id={ (id) "-cert" } type="file" name="certificate" required accept=".pem,.crt,.cer";
                }
                div class="field" {
                    label for={ (id) "-key" } { "Private key file (PEM; leave empty when the certificate file holds it or a CSR is in progress)" }
                    input id={ (id) "-key" } type="file" name="key" accept=".pem,.key";
                }
                @if store == Store::Server {
                    div class="field check" {
                        input id="also-as-client" type="checkbox" name="also_as_client" value="True";
                        label for="also-as-client" { "Upload server certificate file as client certificate" }
                    }
                }
                div { button type="submit" { "Upload " (store.word().to_ascii_lowercase()) " certificate" } }
            }
        }
    }
}

fn reset_form(v: &View<'_>) -> Markup {
    html! {
        section aria-labelledby="reset" {
            h2 id="reset" { "Default certificate" }
            form method="post" action="/maintenance/security/server/reset" class="stack" {
                (csrf(v))
                p { "Replaces the server store with a new self-signed certificate; the client store is not changed." }
                div { button type="submit" class="danger" { "Reset to default server certificate" } }
            }
        }
    }
}

fn csr_section(
    v: &View<'_>,
    store: Store,
    csr: Result<crate::engine::CommandResult, crate::error::ShellError>,
) -> Markup {
    let id = store.word().to_ascii_lowercase();
    let pending = csr
        .as_ref()
        .map(|r| field(&r.fields, "Status").is_none())
        .unwrap_or(false);
    html! {
        section aria-labelledby={ "csr-" (id) } {
            h2 id={ "csr-" (id) } { "Certificate signing request" }
            @match &csr {
                Ok(r) => {
                    @if let Some(s) = field(&r.fields, "Status") { p class="state" { (s) } }
                    @else { (items(&r.fields)) }
                }
                Err(e) => (layout::error_banner(e)),
            }
            @if !v.read_only {
                @if pending {
                    form method="post" action={ (store.path()) "/csr/discard" } class="stack" {
                        (csrf(v))
                        div { button type="submit" class="danger" { "Discard the signing request" } }
                    }
                } @else {
                    form method="post" action={ (store.path()) "/csr/generate" } class="stack" {
                        (csrf(v))
                        div class="field" {
                            label for={ (id) "-cn" } { "Common name" }
                            input id={ (id) "-cn" } type="text" name="CommonName" required maxlength="64";
                        }
                        div class="field" {
                            label for={ (id) "-san" } { "Subject alternative names (comma-separated; default the common name)" }
                            input id={ (id) "-san" } type="text" name="SubjectAltName" maxlength="255";
                        }
                        div class="field" {
                            label for={ (id) "-eku" } { "Extended key usage to request" }
                            select id={ (id) "-eku" } name="ExtendedKeyUsage" {
                                option value="Both" selected { "Both (serverAuth and clientAuth)" }
                                option value="ServerAuth" { "ServerAuth" }
                                option value="ClientAuth" { "ClientAuth" }
                            }
                        }
                        div class="field" {
                            label for={ (id) "-kt" } { "Key type" }
                            select id={ (id) "-kt" } name="KeyType" {
                                option value="ECDSA" selected { "ECDSA P-256" }
                                option value="RSA" { "RSA 2048" }
                            }
                        }
                        p class="note" { "A private CA honours clientAuth; a public CA strips it." }
                        div { button type="submit" { "Generate CSR" } }
                    }
                }
            }
        }
    }
}

/// The trusted CA list with a remove button per entry, and the add form.
pub async fn ca_page(engine: &Engine, ctx: &Context, v: &View<'_>, out: Option<Outcome>) -> Markup {
    let list = run::command(engine, ctx, &format!("{CMD} CA List"), &[], None).await;
    let body = html! {
        @if let Some(o) = &out { (outcome(o)) }
        p { "One list (ca.pem) shared by the server and client stores. Each certificate here is a trust anchor: its own EKU is not checked." }
        @match &list {
            Ok(r) => {
                p { "Certificates in the list: " strong { (field(&r.fields, "Total").unwrap_or("0")) } }
                table class="list" {
                    thead { tr {
                        th scope="col" { "Subject" } th scope="col" { "Issuer" } th scope="col" { "Expires" }
                        th scope="col" { "EKU" } th scope="col" { "Fingerprint (SHA-256)" }
                        @if !v.read_only { th scope="col" { span class="sr" { "Action" } } }
                    } }
                    tbody {
                        @for (n, ca) in instances(&r.fields, "CA") {
                            tr {
                                td { (field(ca, "Subject").unwrap_or("")) }
                                td { (field(ca, "Issuer").unwrap_or("")) }
                                td { (field(ca, "NotAfter").unwrap_or("")) }
                                td { (field(ca, "ExtendedKeyUsage").unwrap_or("")) }
                                td class="fp" { (field(ca, "Fingerprint").unwrap_or("")) }
                                @if !v.read_only {
                                    td {
                                        form method="post" action="/maintenance/security/ca/remove" class="inline" {
                                            (csrf(v))
                                            input type="hidden" name="fingerprint" value=(field(ca, "Fingerprint").unwrap_or(""));
                                            button type="submit" class="danger small" aria-label={ "Remove CA " (n) } { "Remove" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            Err(e) => (layout::error_banner(e)),
        }
        @if v.read_only { (layout::read_only_note()) } @else {
            section aria-labelledby="ca-add" {
                h2 id="ca-add" { "Add CA certificates" }
                form method="post" action="/maintenance/security/ca/add" enctype="multipart/form-data" class="stack" {
                    (csrf(v))
                    div class="field" {
                        label for="ca-file" { "PEM file with one or more CA certificates" }
                        input id="ca-file" type="file" name="file" accept=".pem,.crt,.cer";
                    }
                    div class="field" {
                        label for="ca-text" { "or paste the PEM text" }
                        textarea id="ca-text" name="pem" rows="6" {}
                    }
                    div { button type="submit" { "Add to the trusted list" } }
                }
            }
        }
    };
    layout::page(v, "Trusted CA certificates", body)
}

/// The instances named `name` among `fields`: (number, children).
pub fn instances<'a>(fields: &'a [Item], name: &str) -> Vec<(u32, &'a [Item])> {
    fields
        .iter()
        .filter_map(|i| match i {
            Item::Node {
                name: n,
                item,
                children,
            } if n == name => Some((item.unwrap_or(0), children.as_slice())),
            _ => None,
        })
        .collect()
}

/// The installed CRLs and the add form.
pub async fn crl_page(
    engine: &Engine,
    ctx: &Context,
    v: &View<'_>,
    out: Option<Outcome>,
) -> Markup {
    let list = run::command(engine, ctx, &format!("{CMD} CRL List"), &[], None).await;
    let body = html! {
        @if let Some(o) = &out { (outcome(o)) }
        @match &list {
            Ok(r) => {
                p { "Installed CRLs: " strong { (field(&r.fields, "Total").unwrap_or("0")) } }
                @let rows = instances(&r.fields, "CRL");
                @if !rows.is_empty() {
                    table class="list" {
                        thead { tr {
                            @for (name, _) in rows[0].1.iter().filter_map(leaf_pair) { th scope="col" { (name) } }
                        } }
                        tbody {
                            @for (_, c) in &rows {
                                tr { @for (_, val) in c.iter().filter_map(leaf_pair) { td { (val) } } }
                            }
                        }
                    }
                }
            }
            Err(e) => (layout::error_banner(e)),
        }
        @if v.read_only { (layout::read_only_note()) } @else {
            section aria-labelledby="crl-add" {
                h2 id="crl-add" { "Add a CRL" }
                form method="post" action="/maintenance/security/crl/add" enctype="multipart/form-data" class="stack" {
                    (csrf(v))
                    div class="field" {
                        label for="crl-file" { "PEM CRL file (its issuer must be in the trusted CA list)" }
                        input id="crl-file" type="file" name="file" required accept=".pem,.crl";
                    }
                    div class="field" {
                        label for="crl-target" { "Install into" }
                        select id="crl-target" name="Target" {
                            option value="ClientCA" selected { "client-ca.crl" }
                            option value="PolicyServices" { "policy-services.crl" }
                        }
                    }
                    div { button type="submit" { "Add CRL" } }
                }
            }
        }
    };
    layout::page(v, "CRLs", body)
}

fn leaf_pair(i: &Item) -> Option<(&str, &str)> {
    match i {
        Item::Leaf { name, value, .. } => Some((name.as_str(), value.as_str())),
        Item::Node { .. } => None,
    }
}

/// The EKU readiness report: per TLS role, what this node presents and what will happen.
pub async fn readiness_page(engine: &Engine, ctx: &Context, v: &View<'_>) -> Markup {
    let r = run::command(engine, ctx, &format!("{CMD} EkuReadiness"), &[], None).await;
    let body = html! {
        @match &r {
            Ok(r) => {
                p { "EKU checking mode: " strong { (field(&r.fields, "Mode").unwrap_or("")) } }
                p class="summary-text" { (field(&r.fields, "Summary").unwrap_or("")) }
                table class="list" {
                    thead { tr {
                        th scope="col" { "Role" } th scope="col" { "Presents" } th scope="col" { "Result" }
                        th scope="col" { "Explanation" } th scope="col" { "Seed case" }
                    } }
                    tbody {
                        @for (_, role) in instances(&r.fields, "Role") {
                            tr {
                                th scope="row" { (field(role, "Name").unwrap_or("")) }
                                td { (field(role, "Presents").unwrap_or("")) }
                                td class="verdict" { (field(role, "Result").unwrap_or("")) }
                                td { (field(role, "Explanation").unwrap_or("")) }
                                td { (field(role, "Seed").unwrap_or("")) }
                            }
                        }
                    }
                }
                (cluster_peers(&r.fields))
            }
            Err(e) => (layout::error_banner(e)),
        }
    };
    layout::page(v, "EKU readiness", body)
}

/// The report's cluster section: every peer with its own client certificate's verdict (nothing
/// outside a cluster, where the report has no `Cluster` leaf).
fn cluster_peers(fields: &[Item]) -> Markup {
    let Some(note) = field(fields, "Cluster") else {
        return html! {};
    };
    let peers = instances(fields, "Peer");
    html! {
        section aria-labelledby="cluster-peers" {
            h2 id="cluster-peers" { "Cluster peers" }
            p { (note) }
            @if !peers.is_empty() {
                table class="list" {
                    thead { tr {
                        th scope="col" { "Peer" } th scope="col" { "Address" } th scope="col" { "Applied generation" }
                        th scope="col" { "Status" } th scope="col" { "Server serial" } th scope="col" { "Client serial" }
                        th scope="col" { "Client EKU" } th scope="col" { "clientAuth" } th scope="col" { "Days left" }
                        th scope="col" { "Client result" } th scope="col" { "Explanation" }
                    } }
                    tbody {
                        @for (_, p) in &peers {
                            @let f = |k: &str| field(p, k).unwrap_or("");
                            tr {
                                th scope="row" { (f("Name")) }
                                td { (f("Address")) }
                                td class="num" { (f("AppliedGeneration")) }
                                td { @let st = f("Status"); @if st.starts_with("Active") { (st) } @else { span class="state warning" { (st) } } }
                                td { (f("ServerSerial")) }
                                td { (f("ClientSerial")) }
                                td { (f("ClientEku")) }
                                td { (f("ClientAuth")) }
                                td class="num" { (f("ClientDaysLeft")) }
                                td class="verdict" { (f("ClientResult")) }
                                td { (f("ClientExplanation")) }
                            }
                        }
                    }
                }
            }
        }
    }
}
