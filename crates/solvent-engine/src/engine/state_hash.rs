//! The whole-state hash: a BLAKE3 digest, fed field by field, of everything in the engine that
//! can change a later effect. Two engines with equal hashes (and the same configuration) answer
//! every later event alike; a snapshot carries the hash so recovery can prove it rebuilt the
//! same state.
//!
//! Covered: the ledger; every account's mode, positions, leverage, state, margin-call episode,
//! breach counter, buffer policy and top-up rules with their daily use; the outside world's
//! positions; every index source's price and time, the jumps awaiting confirmation; the market
//! (indices, marks, volatility surfaces, rate, open interest, time); the venue as installed (its
//! grids scaled to the ranges in force), the volatility-scaled ranges in force with their
//! forecasts, and the venue's own grids they were scaled from; what
//! each started-hour loan has been charged interest for in the current hour; the sequence and
//! the clock. Not covered, because they never change an effect: the safe bands and
//! the holder indices, which only cache what the above determines (an exhaustive engine, which
//! has none, hashes equal to a banded one); the count of events applied, a statistic; and the
//! engine's configuration, which is given at start and not changed by events. A refused event
//! changes nothing covered, so it leaves the hash as it was.
//!
//! Each field is written with a tag and, for text, its length, so no two different states feed
//! the same bytes.

use jiff::Timestamp;
use rust_decimal::Decimal;
use solvent_risk::allocation::BufferPolicy;

use super::Engine;
use crate::event::TopUpSource;

/// A BLAKE3 hasher with the engine's canonical encodings.
pub(super) struct StateHasher(blake3::Hasher);

impl StateHasher {
    pub(super) fn new() -> Self {
        Self(blake3::Hasher::new())
    }

    /// A one-byte tag opening a record.
    pub(super) fn tag(&mut self, tag: u8) -> &mut Self {
        self.0.update(&[tag]);
        self
    }

    pub(super) fn text(&mut self, text: &str) -> &mut Self {
        self.u64(text.len() as u64);
        self.0.update(text.as_bytes());
        self
    }

    pub(super) fn u64(&mut self, value: u64) -> &mut Self {
        self.0.update(&value.to_le_bytes());
        self
    }

    /// A decimal by value: `1.50` and `1.5` are the same amount and hash alike.
    pub(super) fn decimal(&mut self, value: Decimal) -> &mut Self {
        let normal = value.normalize();
        self.0.update(&normal.mantissa().to_le_bytes());
        self.0.update(&normal.scale().to_le_bytes());
        self
    }

    /// A float by its bits (volatilities, rates and policy parameters are held as given).
    pub(super) fn f64(&mut self, value: f64) -> &mut Self {
        self.0.update(&value.to_bits().to_le_bytes());
        self
    }

    pub(super) fn flag(&mut self, value: bool) -> &mut Self {
        self.0.update(&[u8::from(value)]);
        self
    }

    pub(super) fn time(&mut self, at: Timestamp) -> &mut Self {
        self.0.update(&at.as_nanosecond().to_le_bytes());
        self
    }

    /// Text written through `fmt` (the venue's canonical `Debug` form), streamed.
    pub(super) fn formatted(&mut self, value: &impl std::fmt::Debug) -> &mut Self {
        use std::fmt::Write as _;
        struct Sink<'h>(&'h mut blake3::Hasher);
        impl std::fmt::Write for Sink<'_> {
            fn write_str(&mut self, text: &str) -> std::fmt::Result {
                self.0.update(text.as_bytes());
                Ok(())
            }
        }
        // Writing into a hasher cannot fail.
        let _ = write!(Sink(&mut self.0), "{value:?}");
        self.0.update(&[0xff]);
        self
    }

    pub(super) fn finish(&self) -> blake3::Hash {
        self.0.finalize()
    }
}

/// The digest of a venue as installed (kept by the engine: venues change only by events).
pub(super) fn venue_digest(venue: &solvent_core::venue::Venue) -> [u8; 32] {
    let mut hasher = StateHasher::new();
    hasher.formatted(venue);
    *hasher.finish().as_bytes()
}

impl Engine {
    /// The whole-state hash (see the module documentation), as 64 hex digits: equal events in
    /// equal order give equal hashes on any machine.
    #[must_use]
    pub fn state_hash(&self) -> String {
        let mut h = StateHasher::new();
        h.tag(b'V').0.update(&self.venue_digest);
        for (underlying, range) in &self.scenario_ranges {
            h.tag(b'r')
                .text(underlying)
                .text(&range.as_of.to_string())
                .text(range.model.as_str())
                .text(range.control.as_str())
                .f64(range.sigma_daily)
                .f64(range.base)
                .f64(range.range)
                .f64(range.static_range)
                .text(range.bound.as_str());
        }
        for (underlying, grid) in &self.static_grids {
            h.tag(b'g').text(underlying).formatted(grid);
        }
        for (account, asset, amount) in self.ledger.balances() {
            h.tag(b'b')
                .text(&account.to_string())
                .text(asset)
                .decimal(amount);
        }
        for account in self.accounts.values() {
            h.tag(b'a')
                .text(&account.id)
                .text(&format!("{:?}", account.mode))
                .text(&account.state.to_string())
                .flag(account.margin_call_sent);
            match account.breach {
                Some((count, since)) => h.tag(b'B').u64(u64::from(count)).time(since),
                None => h.tag(b'-'),
            };
            match account.buffer {
                BufferPolicy::None => h.tag(b'0'),
                BufferPolicy::MaintenanceMultiple { multiple } => h.tag(b'1').f64(multiple),
                BufferPolicy::Sigma {
                    sigmas,
                    horizon_days,
                } => h.tag(b'2').f64(sigmas).f64(horizon_days),
            };
            for (name, p) in &account.positions {
                h.tag(b'p')
                    .text(name)
                    .decimal(p.size)
                    .decimal(p.entry)
                    .flag(p.isolated);
            }
            for (name, leverage) in &account.leverage {
                h.tag(b'l').text(name).decimal(*leverage);
            }
            for top_up in &account.top_ups {
                let rule = &top_up.rule;
                h.tag(b't')
                    .text(rule.instrument.as_deref().unwrap_or(""))
                    .flag(rule.instrument.is_some())
                    .flag(rule.source == TopUpSource::CrossPool)
                    .decimal(rule.trigger_health)
                    .decimal(rule.target_health)
                    .decimal(rule.per_event_cap.value())
                    .decimal(rule.per_day_cap.value())
                    .u64(top_up.day.cast_unsigned())
                    .decimal(top_up.used);
            }
        }
        for (name, p) in &self.external {
            h.tag(b'x').text(name).decimal(p.size).decimal(p.entry);
        }
        for (underlying, sources) in &self.sources {
            for (source, quote) in sources {
                h.tag(b's')
                    .text(underlying)
                    .text(source)
                    .decimal(quote.price)
                    .time(quote.at);
            }
        }
        for (name, price) in &self.pending_jumps {
            h.tag(b'j').text(name).decimal(*price);
        }
        let market = &self.market;
        h.tag(b'T').time(market.timestamp).f64(market.rate);
        for (name, price) in &market.index {
            h.tag(b'i').text(name).decimal(price.value());
        }
        for (name, price) in &market.mark {
            h.tag(b'm').text(name).decimal(price.value());
        }
        for (underlying, smiles) in &market.vol {
            for (expiry, smile) in smiles {
                h.tag(b'v').text(underlying).text(expiry);
                h.u64(smile.strikes.len() as u64);
                for (strike, vol) in smile.strikes.iter().zip(&smile.vols) {
                    h.f64(*strike).f64(*vol);
                }
            }
        }
        for (name, interest) in &market.open_interest {
            h.tag(b'o').text(name).decimal(interest.value());
        }
        for ((id, asset), cover) in &self.interest_covered {
            h.tag(b'I')
                .text(id)
                .text(asset)
                .decimal(cover.covered)
                .decimal(cover.unpaid)
                .decimal(cover.loan);
        }
        h.tag(b'q')
            .flag(self.last_seq.is_some())
            .u64(self.last_seq.unwrap_or(0))
            .time(self.now);
        h.finish().to_hex().to_string()
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;
    use solvent_core::money::{Amount, Price};
    use solvent_core::portfolio::MarginMode;
    use solvent_risk::AccountState;
    use solvent_risk::allocation::BufferPolicy;

    use super::super::tests::apply_accepted;
    use super::super::{Engine, SourcePrice};
    use crate::ledger::LedgerAccount;

    /// An engine holding something in every field the hash covers (on the default venue with
    /// BTC's and ETH's ranges scaled, `examples/vol-scaled-venue.toml`).
    fn engine() -> Engine {
        let mut engine = super::super::tests::vol_scaled_engine();
        let events = [
            r#""type":"index_price","underlying":"BTC","price":"60000","source":"s1""#,
            r#""type":"index_price","underlying":"BTC","price":"60010","source":"s2""#,
            r#""type":"index_price","underlying":"ETH","price":"3000""#,
            r#""type":"vol_surface","underlying":"BTC","expiry":"27DEC26","strikes":[50000,60000,70000],"vols":[0.7,0.6,0.65]"#,
            r#""type":"deposit","account":"a","asset":"USDT","amount":"100000""#,
            r#""type":"deposit","account":"b","asset":"USDT","amount":"100000""#,
            r#""type":"fill","account":"a","instrument":"BTCUSDT","side":"buy","size":"1","price":"60000","counterparty":"external""#,
            r#""type":"fill","account":"b","instrument":"ETHUSDT","side":"sell","size":"2","price":"3000","counterparty":"external""#,
            r#""type":"mark_price","instrument":"BTCUSDT","price":"60005""#,
            r#""type":"set_leverage","account":"a","instrument":"BTCUSDT","leverage":"20""#,
            r#""type":"set_buffer_policy","account":"a","policy":"mm:1.5""#,
            r#""type":"set_auto_top_up","account":"a","source":"external","trigger_health":"2","target_health":"3","per_event_cap":"500","per_day_cap":"2000""#,
            r#""type":"scenario_range","underlying":"BTC","as_of":"2026-01-01","model":"ewma","control":"buffer","sigma_daily":"0.02","base":"0.06","range":"0.07","bound":"buffer_partial""#,
        ];
        for (number, fields) in events.iter().enumerate() {
            apply_accepted(&mut engine, number + 1, fields);
        }
        engine
    }

    /// Each change of a field that can change a later effect changes the hash. A field the hash
    /// left out would fail here (the check that `the_same_events_give_the_same_state_hash` can
    /// fail).
    #[test]
    fn every_field_that_can_change_a_later_effect_changes_the_hash() {
        type Change = fn(&mut Engine);
        let changes: [(&str, Change); 31] = [
            ("a ledger balance", |e| {
                let _ = e.ledger.transfer(
                    &LedgerAccount::External,
                    &LedgerAccount::InsuranceFund,
                    "USDT",
                    Decimal::ONE,
                );
            }),
            ("margin mode", |e| account(e).mode = MarginMode::Portfolio),
            ("account state", |e| {
                account(e).state = AccountState::MarginCall
            }),
            ("margin call sent", |e| account(e).margin_call_sent ^= true),
            ("breach counter", |e| {
                let now = e.now;
                account(e).breach = Some((1, now));
            }),
            ("buffer policy", |e| {
                account(e).buffer = BufferPolicy::MaintenanceMultiple { multiple: 1.6 };
            }),
            ("position size", |e| {
                position(e).size += Decimal::ONE;
            }),
            ("position entry", |e| {
                position(e).entry += Decimal::ONE;
            }),
            ("position isolation", |e| {
                position(e).isolated ^= true;
            }),
            ("leverage", |e| {
                if let Some(l) = account(e).leverage.values_mut().next() {
                    *l += Decimal::ONE;
                }
            }),
            ("top-up rule", |e| {
                account(e).top_ups[0].rule.trigger_health += Decimal::ONE;
            }),
            ("top-up day", |e| account(e).top_ups[0].day += 1),
            ("top-up used", |e| {
                account(e).top_ups[0].used += Decimal::ONE
            }),
            ("external position", |e| {
                if let Some(p) = e.external.values_mut().next() {
                    p.size += Decimal::ONE;
                }
            }),
            ("index source price", |e| {
                if let Some(s) = e.sources.get_mut("BTC").and_then(|s| s.get_mut("s2")) {
                    s.price += Decimal::ONE;
                }
            }),
            ("index source time", |e| {
                if let Some(s) = e.sources.get_mut("BTC").and_then(|s| s.get_mut("s2")) {
                    *s = SourcePrice {
                        price: s.price,
                        at: jiff::Timestamp::UNIX_EPOCH,
                    };
                }
            }),
            ("pending jump", |e| {
                e.pending_jumps
                    .insert("ETH".to_owned(), Decimal::from(4000));
            }),
            ("market time", |e| {
                e.market.timestamp = jiff::Timestamp::UNIX_EPOCH
            }),
            ("rate", |e| e.market.rate = 0.01),
            ("index", |e| {
                e.market
                    .index
                    .insert("ETH".to_owned(), Price(Decimal::from(3001)));
            }),
            ("mark", |e| {
                e.market
                    .mark
                    .insert("BTCUSDT".to_owned(), Price(Decimal::from(60001)));
            }),
            ("volatility surface", |e| {
                if let Some(smile) = e.market.vol.get_mut("BTC").and_then(|s| s.get_index_mut(0)) {
                    smile.1.vols[0] = 0.71;
                }
            }),
            ("open interest", |e| {
                e.market
                    .open_interest
                    .insert("BTCUSDT".to_owned(), Amount(Decimal::ONE));
            }),
            ("venue", |e| {
                let mut venue = e.venue.clone();
                venue.thresholds.liquidation += 0.01;
                e.install_venue(venue);
            }),
            ("interest covered in the hour", |e| {
                e.interest_covered.insert(
                    ("a".into(), "USDT".into()),
                    super::super::LoanCover {
                        covered: Decimal::ONE,
                        unpaid: Decimal::ZERO,
                        loan: Decimal::ONE,
                    },
                );
            }),
            ("scenario range", |e| {
                if let Some(range) = e.scenario_ranges.get_mut("BTC") {
                    range.range += 0.001;
                }
            }),
            ("scenario range's forecast", |e| {
                if let Some(range) = e.scenario_ranges.get_mut("BTC") {
                    range.sigma_daily += 0.001;
                }
            }),
            ("scenario range's bound", |e| {
                if let Some(range) = e.scenario_ranges.get_mut("BTC") {
                    range.bound = solvent_risk::vol_scaled::RangeBound::Floor;
                }
            }),
            ("static grid of a scaled underlying", |e| {
                if let Some(grid) = e.static_grids.get_mut("BTC") {
                    grid.price_moves[0] -= 0.01;
                }
            }),
            ("sequence", |e| e.last_seq = e.last_seq.map(|s| s + 1)),
            ("clock", |e| e.now = jiff::Timestamp::UNIX_EPOCH),
        ];
        let engine = engine();
        let base = engine.state_hash();
        for (field, change) in changes {
            let mut changed = engine.clone();
            change(&mut changed);
            assert_ne!(
                changed.state_hash(),
                base,
                "changing the {field} left the hash as it was"
            );
        }
    }

    /// The bands and holder indices only cache what the state determines: clearing them leaves
    /// the hash as it was (an engine that examines every holder hashes equal to a banded one).
    #[test]
    fn derived_indices_do_not_change_the_hash() {
        let engine = engine();
        let mut cleared = engine.clone();
        cleared.bands.clear();
        cleared.holders.clear();
        cleared.instrument_holders.clear();
        cleared.unbanded.clear();
        cleared.vol_watch.clear();
        assert_eq!(cleared.state_hash(), engine.state_hash());
        assert_eq!(engine.state_hash().len(), 64, "a 256-bit digest in hex");
    }

    fn account(engine: &mut Engine) -> &mut super::super::Account {
        match engine.accounts.get_mut("a") {
            Some(account) => account,
            None => panic!("account a is opened by the events"),
        }
    }

    fn position(engine: &mut Engine) -> &mut super::super::PositionState {
        match account(engine).positions.values_mut().next() {
            Some(position) => position,
            None => panic!("account a holds BTCUSDT"),
        }
    }
}
