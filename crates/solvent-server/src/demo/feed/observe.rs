//! What the engine did, as the feed learns it: states, equity against initial margin,
//! positions closed by liquidation or ADL, and margin calls (half answered by a deposit, see
//! the module documentation).

#[allow(clippy::wildcard_imports)]
use super::*;

/// What the feed learns from the engine's effects.
#[derive(Clone, Debug, PartialEq)]
pub enum Observation {
    /// An account's figures.
    Updated {
        /// Account.
        account: String,
        /// Equity over initial margin (`None`: no initial margin): what the feed trades and
        /// withdraws against (health, over maintenance, says nothing of the initial margin a
        /// leverage setting asks).
        cover: Option<f64>,
        /// State.
        state: AccountState,
    },
    /// An account's state changed.
    StateChanged {
        /// Account.
        account: String,
        /// The new state.
        to: AccountState,
    },
    /// A margin call.
    MarginCall {
        /// Account.
        account: String,
        /// The deposit that restores the initial margin.
        deposit: Decimal,
        /// Its asset.
        asset: String,
    },
    /// A position changed without the feed's doing (liquidation, ADL).
    PositionChanged {
        /// Account.
        account: String,
        /// Instrument.
        instrument: String,
        /// Signed change of the size.
        change: Decimal,
    },
}

impl Observation {
    /// What an effect tells the feed.
    #[must_use]
    pub fn from_effect(effect: &Effect) -> Vec<Self> {
        match effect {
            Effect::AccountUpdated {
                account,
                equity,
                initial_margin,
                state,
                ..
            } => vec![Self::Updated {
                account: account.clone(),
                cover: cover(equity.value(), initial_margin.value()),
                state: *state,
            }],
            Effect::StateChanged { account, to, .. } => vec![Self::StateChanged {
                account: account.clone(),
                to: *to,
            }],
            Effect::MarginCall {
                account,
                deposit,
                asset,
                ..
            } => vec![Self::MarginCall {
                account: account.clone(),
                deposit: deposit.value(),
                asset: asset.clone(),
            }],
            Effect::Liquidation {
                account,
                instrument,
                size,
                ..
            } => vec![Self::PositionChanged {
                account: account.clone(),
                instrument: instrument.clone(),
                change: size.value(),
            }],
            // The size is the counterparty's trade; the bankrupt account made the opposite one.
            Effect::Adl {
                account,
                counterparty,
                instrument,
                size,
                ..
            } => vec![
                Self::PositionChanged {
                    account: counterparty.clone(),
                    instrument: instrument.clone(),
                    change: size.value(),
                },
                Self::PositionChanged {
                    account: account.clone(),
                    instrument: instrument.clone(),
                    change: -size.value(),
                },
            ],
            _ => Vec::new(),
        }
    }

    /// What an effect as the service writes it (`{"seq", "type", ...}`) tells the feed.
    #[must_use]
    pub fn from_json(line: &serde_json::Value) -> Vec<Self> {
        let text = |field: &str| line.get(field).and_then(|v| v.as_str()).map(str::to_owned);
        let number = |field: &str| -> Option<Decimal> {
            match line.get(field)? {
                serde_json::Value::String(s) => s.parse().ok(),
                serde_json::Value::Number(n) => n.to_string().parse().ok(),
                _ => None,
            }
        };
        let state = |field: &str| {
            line.get(field)
                .and_then(|v| v.as_str())
                .and_then(parse_state)
        };
        let kind = line
            .get("type")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let observed = match kind {
            "account_updated" => text("account").zip(state("state")).map(|(account, state)| {
                vec![Self::Updated {
                    account,
                    cover: number("equity")
                        .zip(number("initial_margin"))
                        .and_then(|(equity, initial)| cover(equity, initial)),
                    state,
                }]
            }),
            "state_changed" => text("account")
                .zip(state("to"))
                .map(|(account, to)| vec![Self::StateChanged { account, to }]),
            "margin_call" => (|| {
                Some(vec![Self::MarginCall {
                    account: text("account")?,
                    deposit: number("deposit")?,
                    asset: text("asset")?,
                }])
            })(),
            "liquidation" => (|| {
                Some(vec![Self::PositionChanged {
                    account: text("account")?,
                    instrument: text("instrument")?,
                    change: number("size")?,
                }])
            })(),
            "adl" => (|| {
                let (instrument, size) = (text("instrument")?, number("size")?);
                Some(vec![
                    Self::PositionChanged {
                        account: text("counterparty")?,
                        instrument: instrument.clone(),
                        change: size,
                    },
                    Self::PositionChanged {
                        account: text("account")?,
                        instrument,
                        change: -size,
                    },
                ])
            })(),
            _ => None,
        };
        observed.unwrap_or_default()
    }
}

/// Equity over initial margin, when there is an initial margin.
fn cover(equity: Decimal, initial_margin: Decimal) -> Option<f64> {
    (initial_margin > Decimal::ZERO).then(|| float(equity) / float(initial_margin))
}

fn parse_state(text: &str) -> Option<AccountState> {
    Some(match text {
        "healthy" => AccountState::Healthy,
        "margin_call" => AccountState::MarginCall,
        "reduce_only" => AccountState::ReduceOnly,
        "liquidating" => AccountState::Liquidating,
        "bankrupt" => AccountState::Bankrupt,
        _ => return None,
    })
}

impl Feed {
    /// Learns what the engine did.
    pub fn observe(&mut self, observation: Observation) {
        match observation {
            Observation::Updated {
                account,
                cover,
                state,
            } => {
                if let Some(trader) = self.trader_mut(&account) {
                    trader.cover = cover;
                    trader.state = state;
                }
            }
            Observation::StateChanged { account, to } => {
                if let Some(trader) = self.trader_mut(&account) {
                    trader.state = to;
                }
            }
            Observation::PositionChanged {
                account,
                instrument,
                change,
            } => {
                if let Some(trader) = self.trader_mut(&account) {
                    let size = trader.positions.entry(instrument.clone()).or_default();
                    *size += change;
                    if size.is_zero() {
                        trader.positions.remove(&instrument);
                    }
                }
            }
            Observation::MarginCall {
                account,
                deposit,
                asset,
            } => self.answer_margin_call(account, deposit, asset),
        }
    }

    /// Learns what every effect of an applied event tells.
    pub fn observe_effects(&mut self, effects: &[Effect]) {
        for effect in effects {
            for observation in Observation::from_effect(effect) {
                self.observe(observation);
            }
        }
    }

    pub(super) fn trader_mut(&mut self, id: &str) -> Option<&mut Trader> {
        let slot = *self.by_id.get(id)?;
        self.traders.get_mut(slot)
    }

    pub(super) fn answer_margin_call(&mut self, account: String, deposit: Decimal, asset: String) {
        if self.rng.random::<f64>() >= self.params.margin_call_deposit_share
            || account == INSURANCE_FUND
        {
            return;
        }
        let decimals = self.precisions.get(&asset).copied().unwrap_or(2).min(8);
        let amount = up(deposit, decimals);
        if amount <= Decimal::ZERO {
            return;
        }
        let delay = SignedDuration::from_secs(self.rng.random_range(120..3_600));
        let due = self.last_ts.checked_add(delay).unwrap_or(self.last_ts);
        let event = Event::Deposit(Deposit {
            account,
            asset,
            amount: Amount(amount),
        });
        let at = self.reactions.partition_point(|(t, _)| *t <= due);
        self.reactions.insert(at, (due, event));
    }
}
