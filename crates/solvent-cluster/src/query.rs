//! Queries over the shards (issue 13 item 4): each shard answers for its own accounts on
//! `solvent.query.<K>` (NATS request-reply, between two input messages, so every answer is the
//! state after a whole message); an account's query goes to its shard by the routing hash, and
//! cross-shard views (accounts ranked by health, the insurance fund, the shards' progress) are
//! asked of every shard and merged.

use std::collections::BTreeMap;
use std::time::Duration;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use solvent_core::money::PositionSide;
use solvent_engine::Engine;
use solvent_engine::ledger::LedgerAccount;
use solvent_risk::account::{Detail, build_report};
use solvent_risk::{AccountState, MarketView};

use crate::ClusterError;
use crate::routing::shard_of;

/// The prefix of each shard's query subject: `solvent.query.<K>`.
pub const QUERY_SUBJECT_PREFIX: &str = "solvent.query.";

/// How long a query waits for a shard's answer (a shard answers between two input messages).
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// The subject shard `shard` answers queries on.
#[must_use]
pub fn query_subject(shard: u32) -> String {
    format!("{QUERY_SUBJECT_PREFIX}{shard}")
}

/// A question to one shard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Query {
    /// One account's margin report, as `solvent margin --json` prints it.
    Account {
        /// The account.
        account: String,
        /// Also the moves that liquidate the account (`liquidation_moves`, as `solvent margin
        /// --json` and the single service's `?liquidation_moves=true` give them): a reverse
        /// stress, a few dozen reports more, so off unless asked for.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        liquidation_moves: bool,
    },
    /// The shard's `limit` accounts of lowest health.
    Ranked {
        /// How many.
        limit: usize,
    },
    /// The shard's progress and insurance fund.
    Status,
    /// The shard's first `limit` candidates to take the other side of a bankrupt `side`
    /// position in `instrument` at `mark`, ranked as its engine's ADL queue (see
    /// [`crate::adl`]).
    AdlCandidates {
        /// The instrument.
        instrument: String,
        /// The bankrupt position's side.
        side: BankruptSide,
        /// The mark the candidates' profit is taken at.
        #[serde(with = "rust_decimal::serde::str")]
        mark: Decimal,
        /// How many.
        limit: usize,
    },
}

/// The side of a bankrupt position, as a query names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BankruptSide {
    /// A long: the candidates are shorts in profit.
    Long,
    /// A short: the candidates are longs in profit.
    Short,
}

impl From<BankruptSide> for PositionSide {
    fn from(side: BankruptSide) -> Self {
        match side {
            BankruptSide::Long => Self::Long,
            BankruptSide::Short => Self::Short,
        }
    }
}

/// One account in a ranking.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RankedAccount {
    /// The account.
    pub account: String,
    /// Equity over maintenance margin; `None` with no requirement.
    pub health: Option<f64>,
    /// Where it stands.
    pub state: String,
    /// Equity, in the settlement asset.
    #[serde(with = "rust_decimal::serde::str")]
    pub equity: Decimal,
    /// Maintenance margin.
    #[serde(with = "rust_decimal::serde::str")]
    pub maintenance_margin: Decimal,
}

/// A shard's progress and insurance fund.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The shard.
    pub shard: u32,
    /// The last input stream sequence applied.
    pub last_stream_seq: Option<u64>,
    /// Accounts held.
    pub accounts: usize,
    /// The engine's state hash.
    pub state_hash: String,
    /// The shard's insurance fund, per asset (decimal strings).
    pub insurance_fund: BTreeMap<String, String>,
}

/// The answer of a shard: the result or a named error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// The result.
    Ok(serde_json::Value),
    /// What went wrong, with the field at fault.
    Error {
        /// `not_found`, `bad_query`, `unavailable`.
        code: String,
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
}

impl Answer {
    fn error(code: &str, field: &str, message: String) -> Self {
        Self::Error {
            code: code.to_owned(),
            field: field.to_owned(),
            message,
        }
    }
}

/// The shard's answer to `query`, from its engine between two input messages.
#[must_use]
pub fn answer(engine: &Engine, shard: u32, last_stream_seq: Option<u64>, query: &Query) -> Answer {
    let view = match MarketView::new(engine.venue(), engine.market()) {
        Ok(view) => view,
        Err(error) => return Answer::error("unavailable", "market", error.to_string()),
    };
    match query {
        Query::Account {
            account,
            liquidation_moves,
        } => {
            let Some(portfolio) = engine.portfolio(account) else {
                return Answer::error("not_found", "account", format!("no account {account:?}"));
            };
            // The volatility-scaled ranges the shard margins on, as the single service's
            // account route shows them (docs/vol-scaled-ranges.md), with a warning for each
            // scaled underlying still on the static grid.
            let ranges = solvent_engine::engine::ranges_of(
                engine.venue(),
                engine.scenario_ranges(),
                &portfolio,
            );
            match solvent_risk::margin_report(&portfolio, &view)
                .map(|mut report| {
                    report
                        .warnings
                        .extend(solvent_engine::engine::scaling_warnings(
                            engine.venue(),
                            engine.scenario_ranges(),
                            &portfolio,
                        ));
                    report
                })
                .map_err(|error| error.to_string())
                .and_then(|report| {
                    if *liquidation_moves {
                        let with_moves = solvent_risk::stress::ReportWithMoves::new(
                            &report,
                            &portfolio,
                            &view,
                            |error| error.to_string(),
                        );
                        serde_json::to_value(with_moves)
                    } else {
                        serde_json::to_value(report)
                    }
                    .map_err(|e| e.to_string())
                })
                .and_then(|mut value| {
                    let ranges = serde_json::to_value(&ranges).map_err(|e| e.to_string())?;
                    if let Some(object) = value.as_object_mut() {
                        object.insert("vol_scaled_ranges".to_owned(), ranges);
                    }
                    Ok(value)
                }) {
                Ok(value) => Answer::Ok(value),
                Err(message) => Answer::error("unavailable", "account", message),
            }
        }
        Query::Ranked { limit } => {
            let mut ranked: Vec<RankedAccount> = engine
                .accounts()
                .iter()
                .filter_map(|(id, _)| {
                    let portfolio = engine.portfolio(id)?;
                    let report = build_report(&portfolio, &view, Detail::Totals).ok()?;
                    Some(RankedAccount {
                        account: id.to_owned(),
                        health: report.health,
                        state: state_name(report.state),
                        equity: report.equity.value(),
                        maintenance_margin: report.maintenance_margin.value(),
                    })
                })
                .collect();
            sort_by_health(&mut ranked);
            ranked.truncate(*limit);
            serde_json::to_value(ranked).map_or_else(
                |error| Answer::error("unavailable", "ranked", error.to_string()),
                Answer::Ok,
            )
        }
        Query::AdlCandidates {
            instrument,
            side,
            mark,
            limit,
        } => match engine.adl_candidates(instrument, (*side).into(), *mark, *limit) {
            Ok(ranked) => serde_json::to_value(crate::adl::offer(shard, &ranked)).map_or_else(
                |error| Answer::error("unavailable", "adl_candidates", error.to_string()),
                Answer::Ok,
            ),
            Err(rejection) => Answer::error("not_found", "instrument", rejection.detail),
        },
        Query::Status => {
            let status = Status {
                shard,
                last_stream_seq,
                accounts: engine.accounts().len(),
                state_hash: engine.state_hash(),
                insurance_fund: engine
                    .ledger()
                    .balances_of(&LedgerAccount::InsuranceFund)
                    .map(|(asset, amount)| (asset.to_owned(), amount.to_string()))
                    .collect(),
            };
            serde_json::to_value(status).map_or_else(
                |error| Answer::error("unavailable", "status", error.to_string()),
                Answer::Ok,
            )
        }
    }
}

fn state_name(state: AccountState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Lowest health first; accounts without a requirement (no health) last; ties by id.
pub fn sort_by_health(accounts: &mut [RankedAccount]) {
    accounts.sort_by(|a, b| {
        let health = |r: &RankedAccount| r.health.unwrap_or(f64::INFINITY);
        health(a)
            .total_cmp(&health(b))
            .then_with(|| a.account.cmp(&b.account))
    });
}

/// Asks shard `shard` and waits for its answer.
///
/// # Errors
/// [`ClusterError::Nats`] when the shard does not answer within [`QUERY_TIMEOUT`] or its answer
/// does not read.
pub async fn ask(
    client: &async_nats::Client,
    shard: u32,
    query: &Query,
) -> Result<Answer, ClusterError> {
    let payload = serde_json::to_vec(query)
        .map_err(|error| ClusterError::Nats(format!("encoding a query: {error}")))?;
    let reply = tokio::time::timeout(
        QUERY_TIMEOUT,
        client.request(query_subject(shard), payload.into()),
    )
    .await
    .map_err(|_| ClusterError::Nats(format!("shard {shard} did not answer in time")))?
    .map_err(|error| ClusterError::Nats(format!("shard {shard}: {error}")))?;
    serde_json::from_slice(&reply.payload)
        .map_err(|error| ClusterError::Nats(format!("shard {shard}'s answer: {error}")))
}

/// An account's margin report, from its shard, with the moves that liquidate it when
/// `liquidation_moves` (see [`Query::Account`]).
///
/// # Errors
/// As [`ask`].
pub async fn account(
    client: &async_nats::Client,
    shards: u32,
    account: &str,
    liquidation_moves: bool,
) -> Result<Answer, ClusterError> {
    ask(
        client,
        shard_of(account, shards),
        &Query::Account {
            account: account.to_owned(),
            liquidation_moves,
        },
    )
    .await
}

/// The `limit` accounts of lowest health across every shard: each shard's lowest `limit`,
/// merged.
///
/// # Errors
/// As [`ask`]; a shard that answers with an error fails the whole view (a ranking that leaves
/// out a shard would hide its accounts).
pub async fn ranked(
    client: &async_nats::Client,
    shards: u32,
    limit: usize,
) -> Result<Vec<RankedAccount>, ClusterError> {
    let mut merged = Vec::new();
    for shard in 0..shards {
        let part: Vec<RankedAccount> =
            ok_value(shard, ask(client, shard, &Query::Ranked { limit }).await?)?;
        merged.extend(part);
    }
    sort_by_health(&mut merged);
    merged.truncate(limit);
    Ok(merged)
}

/// Every shard's status.
///
/// # Errors
/// As [`ranked`].
pub async fn statuses(
    client: &async_nats::Client,
    shards: u32,
) -> Result<Vec<Status>, ClusterError> {
    let mut all = Vec::new();
    for shard in 0..shards {
        all.push(ok_value(shard, ask(client, shard, &Query::Status).await?)?);
    }
    Ok(all)
}

fn ok_value<T: serde::de::DeserializeOwned>(shard: u32, answer: Answer) -> Result<T, ClusterError> {
    match answer {
        Answer::Ok(value) => serde_json::from_value(value)
            .map_err(|error| ClusterError::Nats(format!("shard {shard}'s answer: {error}"))),
        Answer::Error { message, .. } => {
            Err(ClusterError::Nats(format!("shard {shard}: {message}")))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::expect_used,
        clippy::unwrap_used,
        reason = "test: a failed expectation is a failed test"
    )]

    use super::*;
    use solvent_engine::config::EngineConfig;
    use solvent_engine::event::parse_line;

    fn apply(engine: &mut Engine, lines: &[&str]) {
        for (index, line) in lines.iter().enumerate() {
            let envelope = parse_line("test", index + 1, line).unwrap();
            let effects = engine.apply(&envelope);
            assert!(
                !effects
                    .iter()
                    .any(|e| matches!(e, solvent_engine::effect::Effect::Rejected { .. })),
                "{line}: {effects:?}"
            );
        }
    }

    /// A shard's account answer shows the volatility-scaled ranges it margins on, as the single
    /// service's account route does: on `examples/vol-scaled-venue.toml`, long 2 BTCUSDT at
    /// 92,000 in portfolio mode is margined on the static grid with a warning (MM 29,740.304613)
    /// until a `scenario_range` event, then on the range it sets (MM 10,780.032079,
    /// docs/vol-scaled-ranges.md).
    #[test]
    fn an_account_answer_shows_the_scaled_range_or_warns_of_the_static_grid() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/vol-scaled-venue.toml"
        );
        let venue =
            solvent_core::venue::Venue::from_toml(path, &std::fs::read_to_string(path).unwrap())
                .unwrap();
        let mut engine = Engine::new(venue, EngineConfig::default());
        apply(
            &mut engine,
            &[
                r#"{"seq":1,"ts":"2026-01-05T00:00:00Z","type":"index_price","underlying":"BTC","price":"92000"}"#,
                r#"{"seq":2,"ts":"2026-01-05T00:00:01Z","type":"deposit","account":"a1","asset":"USDT","amount":"40000"}"#,
                r#"{"seq":3,"ts":"2026-01-05T00:00:02Z","type":"set_margin_mode","account":"a1","mode":"portfolio"}"#,
                r#"{"seq":4,"ts":"2026-01-05T00:00:03Z","type":"fill","account":"a1","instrument":"BTCUSDT","side":"buy","size":"2","price":"92000","counterparty":"external"}"#,
            ],
        );
        let query = Query::Account {
            account: "a1".to_owned(),
            liquidation_moves: false,
        };
        let Answer::Ok(before) = answer(&engine, 0, None, &query) else {
            panic!("an answer");
        };
        assert_eq!(before["maintenance_margin"], "29740.304613");
        assert_eq!(before["vol_scaled_ranges"], serde_json::json!([]));
        assert!(
            before["warnings"].as_array().unwrap().iter().any(|w| w
                .as_str()
                .unwrap()
                .starts_with("BTC: the venue scales its range")),
            "{before}"
        );
        apply(
            &mut engine,
            &[
                r#"{"seq":5,"ts":"2026-01-06T00:00:00Z","type":"scenario_range","underlying":"BTC","as_of":"2026-01-05","model":"ewma","control":"buffer","sigma_daily":"0.015819448100447976","base":"0.04745834430134393","range":"0.05695504057259702","bound":"buffer_partial"}"#,
            ],
        );
        let query = Query::Account {
            account: "a1".to_owned(),
            liquidation_moves: true,
        };
        let Answer::Ok(after) = answer(&engine, 0, None, &query) else {
            panic!("an answer");
        };
        assert_eq!(after["maintenance_margin"], "10780.032079");
        let ranges = after["vol_scaled_ranges"].as_array().unwrap();
        assert_eq!(ranges.len(), 1);
        assert_eq!(ranges[0]["range"], 0.05695504057259702);
        assert!(after.get("liquidation_moves").is_some(), "{after}");
    }
}
