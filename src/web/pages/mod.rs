//! The server-rendered pages (maud): login, the certificate pages, status, configuration.

use axum::Router;
use maud::{html, Markup, DOCTYPE};

use super::WebState;

/// The pages' routes (the pages helper fills them in).
pub fn routes() -> Router<WebState> {
    Router::new()
}

/// The login page, with the reason of a refused login.
pub fn login_page(error: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Log in" } }
            body {
                main {
                    @if let Some(e) = error { p class="banner error" role="alert" { (e) } }
                    form method="post" action="/login" {
                        label for="username" { "User name" }
                        input id="username" name="username" autocomplete="username";
                        label for="password" { "Password" }
                        input id="password" name="password" type="password" autocomplete="current-password";
                        button type="submit" { "Log in" }
                    }
                }
            }
        }
    }
}
