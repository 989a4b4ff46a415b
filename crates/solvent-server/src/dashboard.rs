//! The dashboard at `/` (DESIGN.md 10): server-rendered page shells, small ES modules and a
//! vendored chart library (uPlot), all embedded in the binary.
//!
//! A page is public HTML with no data in it: its module asks for an API key once (kept in the
//! browser's session or local storage), then reads everything from the authenticated API and
//! the WebSocket, so a key sees on a page exactly what it may read through the API. Nothing is
//! loaded from elsewhere: the dashboard works offline.
//!
//! | path | page | module |
//! | --- | --- | --- |
//! | `/` | accounts ranked by health, totals, fund, feeds, prices | `js/overview.js` |
//! | `/accounts/{id}` | one account: waterfall, positions, stress, what-if | `js/account.js` |
//! | `/stress` | a shock of the whole book and its liquidation cascade | `js/stress.js` |
//! | `/audit` | the journal's events and the effects each caused | `js/audit.js` |

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use maud::{DOCTYPE, Markup, html};

use crate::api::AppState;

/// The files under `assets/`, embedded at build time (in every profile).
#[derive(rust_embed::RustEmbed)]
#[folder = "assets/"]
struct Assets;

/// The dashboard's routes: the pages and their assets.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { page(Page::Overview) }))
        .route(
            "/accounts/{id}",
            get(|Path(id): Path<String>| async move { page(Page::Account(id)) }),
        )
        .route("/stress", get(|| async { page(Page::Stress) }))
        .route("/audit", get(|| async { page(Page::Audit) }))
        .route("/assets/{*path}", get(asset))
}

enum Page {
    Overview,
    Account(String),
    Stress,
    Audit,
}

fn page(which: Page) -> Response {
    let (title, module, body) = match &which {
        Page::Overview => ("Overview", "overview", overview()),
        Page::Account(id) => ("Account", "account", account(id)),
        Page::Stress => ("Stress and cascade", "stress", stress()),
        Page::Audit => ("Audit", "audit", audit()),
    };
    let title = match &which {
        Page::Account(id) => format!("Account {id}"),
        _ => title.to_owned(),
    };
    let mut response = Html(layout(&title, module, &body).into_string()).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn asset(Path(path): Path<String>) -> Response {
    let Some(file) = Assets::get(&path) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let kind = match path.rsplit_once('.').map(|(_, extension)| extension) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("md" | "txt" | "LICENSE") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        file.data.into_owned(),
    )
        .into_response()
}

fn layout(title: &str, module: &str, body: &Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Solvent" }
                link rel="icon" href="/assets/favicon.svg" type="image/svg+xml";
                link rel="stylesheet" href="/assets/vendor/uPlot.min.css";
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/vendor/uPlot.iife.min.js" {}
                script type="module" src={ "/assets/js/" (module) ".js" } {}
            }
            body data-page=(module) {
                a.skip href="#main" { "Skip to the content" }
                header.top {
                    a.brand href="/" { "Solvent" }
                    nav aria-label="Pages" {
                        a href="/" { "Overview" }
                        a href="/stress" { "Stress and cascade" }
                        a href="/audit" { "Audit" }
                    }
                    span #live role="status" aria-live="polite" { "connecting" }
                    span #scope {}
                    button #change-key type="button" { "Change key" }
                }
                dialog #key-dialog aria-labelledby="key-title" {
                    form #key-form method="dialog" {
                        h2 #key-title { "API key" }
                        p { "The dashboard reads the API with your key. A key scoped to an account sees that account only." }
                        label for="key-input" { "API key (sk_...)" }
                        input #key-input type="password" autocomplete="off" spellcheck="false" required;
                        label.inline {
                            input #key-remember type="checkbox";
                            " Remember on this device"
                        }
                        p #key-error role="alert" {}
                        button type="submit" { "Use this key" }
                    }
                }
                main #main tabindex="-1" { (body) }
            }
        }
    }
}

fn overview() -> Markup {
    html! {
        h1 { "Book overview" }
        p #notice role="alert" hidden {}
        div.grid {
            section aria-labelledby="states-title" {
                h2 #states-title { "Accounts per state" }
                ul #counts.counts {}
            }
            section aria-labelledby="totals-title" {
                h2 #totals-title { "Totals" }
                table #totals {
                    caption.sr { "Equity, initial and maintenance margin per settlement asset" }
                    thead { tr { th scope="col" { "Asset" } th scope="col" { "Equity" } th scope="col" { "Initial margin" } th scope="col" { "Maintenance margin" } } }
                    tbody {}
                }
            }
            section aria-labelledby="prices-title" {
                h2 #prices-title { "Index prices" }
                dl #prices.prices {}
            }
        }
        section aria-labelledby="fund-title" {
            h2 #fund-title { "Insurance fund" }
            dl #fund-balances.prices {}
            div #fund-chart.chart role="img" aria-label="The insurance fund's balance over time" {}
        }
        section aria-labelledby="accounts-title" {
            h2 #accounts-title { "Accounts ranked by health" }
            div.controls {
                label for="search" { "Search accounts" }
                input #search type="search" placeholder="account id";
                label for="state-filter" { "State" }
                select #state-filter {
                    option value="" { "all" }
                    @for state in STATES { option value=(state) { (state.replace('_', " ")) } }
                }
                label for="sort" { "Sort by" }
                select #sort {
                    option value="health" { "health (most at risk first)" }
                    option value="equity" { "equity" }
                    option value="initial_margin" { "initial margin" }
                    option value="maintenance_margin" { "maintenance margin" }
                    option value="account" { "account id" }
                }
                span #shown role="status" aria-live="polite" {}
            }
            div #accounts-scroll.scroller tabindex="0" role="region" aria-label="Accounts, scrollable" {
                table #accounts {
                    caption.sr { "Accounts, most at risk first" }
                    thead { tr {
                        th scope="col" { "Account" } th scope="col" { "State" } th scope="col" { "Health" }
                        th scope="col" { "Equity" } th scope="col" { "Initial margin" } th scope="col" { "Maintenance margin" }
                        th scope="col" { "Mode" } th scope="col" { "Positions" }
                    } }
                    tbody {}
                }
            }
        }
        div.grid {
            section aria-labelledby="calls-title" {
                h2 #calls-title { "Margin calls" }
                ol #margin-calls.feed aria-live="polite" {}
            }
            section aria-labelledby="liq-title" {
                h2 #liq-title { "Liquidations" }
                ol #liquidations.feed aria-live="polite" {}
            }
        }
    }
}

/// The states an account can be in, from the safest.
const STATES: [&str; 5] = [
    "healthy",
    "margin_call",
    "reduce_only",
    "liquidating",
    "bankrupt",
];

fn account(id: &str) -> Markup {
    html! {
        h1 { "Account " span #account-id data-account=(id) { (id) } " " span #account-state.badge {} }
        p #notice role="alert" hidden {}
        div.grid {
            section aria-labelledby="summary-title" {
                h2 #summary-title { "Figures" }
                dl #summary.figures {}
            }
            section aria-labelledby="waterfall-title" {
                h2 #waterfall-title { "Margin waterfall" }
                div #waterfall.waterfall role="img" aria-label="Collateral to equity to margin to what is available" {}
            }
        }
        section aria-labelledby="positions-title" {
            h2 #positions-title { "Positions" }
            table #positions {
                caption.sr { "Open positions" }
                thead { tr {
                    th scope="col" { "Instrument" } th scope="col" { "Size" } th scope="col" { "Mark" }
                    th scope="col" { "Value" } th scope="col" { "Unrealised P&L" } th scope="col" { "Initial margin" }
                    th scope="col" { "Maintenance margin" } th scope="col" { "Liquidation price" } th scope="col" { "Distance" }
                } }
                tbody {}
            }
        }
        div.grid {
            section aria-labelledby="attribution-title" {
                h2 #attribution-title { "Attribution of the requirement" }
                div #attribution {}
            }
            section aria-labelledby="liqprice-title" {
                h2 #liqprice-title { "Liquidation prices against the mark" }
                div #liq-axes {}
            }
        }
        div.grid {
            section aria-labelledby="health-title" {
                h2 #health-title { "Health over time" }
                div #health-chart.chart role="img" aria-label="Health over time" {}
            }
            section aria-labelledby="stress-title" {
                h2 #stress-title { "Stress curve" }
                div #stress-chart.chart role="img" aria-label="P&L against a joint move, with the initial and maintenance margin lines" {}
            }
        }
        section #matrix-section aria-labelledby="matrix-title" hidden {
            h2 #matrix-title { "Risk matrix" }
            div #matrix {}
        }
        div.grid {
            section aria-labelledby="whatif-title" {
                h2 #whatif-title { "What if" }
                form #whatif-form {
                    label for="whatif-trades" { "Trades, one per line (INSTRUMENT:SIZE or INSTRUMENT:SIZE@PRICE)" }
                    textarea #whatif-trades rows="3" required placeholder="BTC-PERP:0.5" {}
                    button type="submit" { "Check" }
                }
                div #whatif-result aria-live="polite" {}
            }
            section aria-labelledby="allocation-title" {
                h2 #allocation-title { "Allocation" }
                div #allocation {}
            }
        }
    }
}

fn stress() -> Markup {
    html! {
        h1 { "Stress and cascade" }
        p #notice role="alert" hidden {}
        form #cascade-form {
            fieldset {
                legend { "Index move per underlying, in percent (round 0)" }
                div #shock-inputs.controls {}
            }
            div.controls {
                label for="impact" { "Impact coefficient" }
                input #impact type="number" step="0.01" min="0" value="0.1";
                label for="rounds" { "Rounds at most" }
                input #rounds type="number" min="1" max="200" value="50";
                button type="submit" { "Shock the book" }
            }
        }
        div #cascade-status role="status" aria-live="polite" {}
        dl #cascade-totals.figures {}
        div.grid {
            section aria-labelledby="volume-title" {
                h2 #volume-title { "Liquidated notional per round" }
                div #volume-chart.chart role="img" aria-label="Liquidated notional per round" {}
            }
            section aria-labelledby="fundpath-title" {
                h2 #fundpath-title { "Insurance fund path" }
                div #fund-path-chart.chart role="img" aria-label="Insurance fund per round" {}
            }
        }
        section aria-labelledby="rounds-title" {
            h2 #rounds-title { "Rounds" }
            table #rounds-table {
                caption.sr { "Each round of the cascade" }
                thead { tr {
                    th scope="col" { "Round" } th scope="col" { "Prices" } th scope="col" { "Accounts liquidated" }
                    th scope="col" { "Liquidated notional (USD)" } th scope="col" { "ADL (USD)" } th scope="col" { "Insurance fund (USD)" }
                } }
                tbody {}
            }
        }
    }
}

fn audit() -> Markup {
    html! {
        h1 { "Audit" }
        p #notice role="alert" hidden {}
        form #audit-form.controls {
            label for="audit-account" { "Account" }
            input #audit-account type="search" placeholder="any";
            label for="audit-type" { "Event type" }
            select #audit-type {
                option value="" { "any" }
                @for kind in EVENT_TYPES { option value=(kind) { (kind.replace('_', " ")) } }
            }
            label for="audit-effect" { "Effect type" }
            select #audit-effect {
                option value="" { "any" }
                @for kind in solvent_engine::effect::Effect::KINDS { option value=(kind) { (kind.replace('_', " ")) } }
            }
            label for="audit-after" { "After event" }
            input #audit-after type="number" min="0" placeholder="the latest";
            label for="audit-to" { "Up to event" }
            input #audit-to type="number" min="1" placeholder="the latest";
            button type="submit" { "Show" }
        }
        p #audit-status role="status" aria-live="polite" {}
        table #journal {
            caption.sr { "Journal events, each with the effects it caused" }
            thead { tr { th scope="col" { "Event" } th scope="col" { "Time" } th scope="col" { "Type" } th scope="col" { "Details" } th scope="col" { "Effects" } } }
            tbody {}
        }
        button #audit-more type="button" hidden { "Older events" }
    }
}

/// The event types the audit page filters on.
const EVENT_TYPES: [&str; 17] = [
    "deposit",
    "withdraw",
    "transfer",
    "fill",
    "index_price",
    "mark_price",
    "vol_surface",
    "funding",
    "settlement",
    "set_leverage",
    "set_margin_mode",
    "set_isolated_margin",
    "set_buffer_policy",
    "set_auto_top_up",
    "list_instrument",
    "update_venue",
    "scenario_range",
];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn every_page_names_an_embedded_module_and_the_chart_library_is_embedded() {
        for module in ["overview", "account", "stress", "audit"] {
            assert!(
                Assets::get(&format!("js/{module}.js")).is_some(),
                "{module}"
            );
        }
        for file in [
            "js/common.js",
            "app.css",
            "vendor/uPlot.iife.min.js",
            "vendor/uPlot.min.css",
            "vendor/uPlot.LICENSE",
        ] {
            let embedded = Assets::get(file).unwrap();
            assert!(!embedded.data.is_empty(), "{file} is empty");
        }
        assert!(Assets::get("vendor/uPlot.iife.min.js").unwrap().data.len() > 40_000);
        let text = layout("t", "overview", &overview()).into_string();
        assert!(text.contains(r#"src="/assets/js/overview.js""#));
        assert!(!text.contains("http://") && !text.contains("https://"));
    }
}
