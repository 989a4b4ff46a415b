//! The trading flow: arrivals, trades and withdrawals, at the current index.

#[allow(clippy::wildcard_imports)]
use super::*;

impl Feed {
    pub(super) fn price_of(&self, underlying: &str) -> Option<Decimal> {
        let slot = self
            .extract
            .underlyings
            .iter()
            .position(|u| u == underlying)?;
        self.current.get(slot).copied()
    }

    pub(super) fn day_open(&self, underlying: &str) -> Option<Decimal> {
        let slot = self
            .extract
            .underlyings
            .iter()
            .position(|u| u == underlying)?;
        Some(self.extract.days.get(self.day)?.bars.get(slot)?.open)
    }

    /// A new account: a deposit and a leveraged perpetual at the index.
    pub(super) fn arrival(&mut self) -> Result<Vec<Event>, DemoError> {
        let draw = self.rng.random::<f64>();
        let (name, asset) = if draw < 0.45 {
            ("BTCUSDT", "USDT")
        } else if draw < 0.8 {
            ("ETHUSDT", "USDT")
        } else {
            ("BTC_USDC-PERPETUAL", "USDC")
        };
        let instrument = self
            .instruments
            .get(name)
            .cloned()
            .ok_or_else(|| DemoError::Venue(format!("no {name}")))?;
        let price = self
            .price_of(&instrument.underlying)
            .ok_or_else(|| DemoError::Venue(format!("no {} price", instrument.underlying)))?;
        let open = self.day_open(&instrument.underlying).unwrap_or(price);
        let long_share = if price > open { 0.6 } else { 0.4 };
        let long = self.rng.random::<f64>() < long_share;
        // ASSUMPTION: a median position of 20,000 USD, log-normal sigma 1.2.
        let notional = log_normal(&mut self.rng, 20_000.0, 1.2);
        let mut leverage = pareto(&mut self.rng, 2.0, 1.2, 20.0);
        let size = crate::demo::draw::steps(
            decimal(notional)? / price / instrument.contract_size,
            instrument.size_step,
        );
        if let MarginRule::SizeLinear {
            initial_base,
            rate_per_unit,
            max_rate,
            ..
        } = instrument.margin.as_ref()
        {
            let rate = float((*initial_base + *rate_per_unit * size).min(*max_rate));
            leverage = leverage.min(1.0 / (rate * 1.05));
        }
        let notional = size * instrument.contract_size * price;
        let fee = up(notional * PERPETUAL_FEE_RATE, 2);
        let deposit = up(
            notional / decimal(leverage)? * Decimal::new(102, 2) + fee,
            2,
        );
        self.arrivals += 1;
        let id = format!("new-{:06}", self.arrivals);
        let signed = if long { size } else { -size };
        self.by_id.insert(id.clone(), self.traders.len());
        self.traders.push(Trader {
            id: id.clone(),
            stable_deposits: vec![(asset.to_owned(), deposit)],
            positions: BTreeMap::from([(name.to_owned(), signed)]),
            state: AccountState::Healthy,
            cover: None,
        });
        Ok(vec![
            Event::Deposit(Deposit {
                account: id.clone(),
                asset: asset.to_owned(),
                amount: Amount(deposit),
            }),
            fill(&id, &instrument, signed, price),
        ])
    }

    /// A trade by a perpetual trader in good standing: a reduction, or an addition by a
    /// well-margined one.
    pub(super) fn trade(&mut self) -> Option<Event> {
        if self.traders.is_empty() {
            return None;
        }
        let slot = self.rng.random_range(0..self.traders.len());
        let trader = self.traders.get(slot)?.clone();
        if trader.state != AccountState::Healthy || trader.positions.is_empty() {
            return None;
        }
        let pick = self.rng.random_range(0..trader.positions.len());
        let (name, size) = trader.positions.iter().nth(pick)?;
        let instrument = self.instruments.get(name)?.clone();
        let price = self.price_of(&instrument.underlying)?;
        let adds = trader.cover.is_some_and(|c| c > 1.5) && self.rng.random::<f64>() < 0.4;
        let fraction = if adds {
            self.rng.random_range(0.1..0.3)
        } else {
            self.rng.random_range(0.25..1.0)
        };
        let step = instrument.size_step.max(instrument.contract_size);
        let wanted = decimal(fraction).ok()? * size.abs();
        let mut amount = ((wanted / step).floor() * step).max(step);
        if !adds {
            amount = amount.min(size.abs());
        }
        let signed = if (*size > Decimal::ZERO) == adds {
            amount
        } else {
            -amount
        };
        if let Some(held) = self.trader_mut(&trader.id) {
            let after = held.positions.entry(name.clone()).or_default();
            *after += signed;
            if after.is_zero() {
                held.positions.remove(name);
            }
        }
        Some(fill(&trader.id, &instrument, signed, price))
    }

    /// A withdrawal of 5% of an opening stablecoin deposit by a well-margined account.
    pub(super) fn withdrawal(&mut self) -> Option<Event> {
        if self.traders.is_empty() {
            return None;
        }
        let slot = self.rng.random_range(0..self.traders.len());
        let trader = self.traders.get(slot)?;
        if trader.state != AccountState::Healthy || !trader.cover.is_some_and(|c| c > 2.0) {
            return None;
        }
        let (asset, deposited) = trader.stable_deposits.first()?;
        let amount = down(*deposited * Decimal::new(5, 2), 2);
        (amount > Decimal::ZERO).then(|| {
            Event::Withdraw(Withdraw {
                account: trader.id.clone(),
                asset: asset.clone(),
                amount: Amount(amount),
            })
        })
    }
}

/// A fill against `external` at `price` with the taker fee, in the settlement asset.
fn fill(account: &str, instrument: &Instrument, signed: Decimal, price: Decimal) -> Event {
    let size = signed.abs();
    let fee = match instrument.style {
        Style::Inverse => up(size / price * PERPETUAL_FEE_RATE, 8),
        Style::Linear => up(
            size * instrument.contract_size * price * PERPETUAL_FEE_RATE,
            2,
        ),
    };
    debug_assert!(matches!(instrument.terms, Terms::Perpetual));
    Event::Fill(Fill {
        account: account.to_owned(),
        instrument: instrument.name.clone(),
        side: if signed > Decimal::ZERO {
            Side::Buy
        } else {
            Side::Sell
        },
        size: Quantity(size),
        price: Price(price),
        fee: Amount(fee),
        counterparty: EXTERNAL.to_owned(),
    })
}
