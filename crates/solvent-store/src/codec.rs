//! The journal's binary encoding of one event (its time and content; the sequence number is the
//! row's key). Compact and exact: a decimal keeps its scale and sign, a float its bits, so an
//! event read back equals the one written, field for field, and the engine computes with it
//! exactly as it did when the event was first applied.
//!
//! Layout, version [`EVENT_ENCODING`]:
//!
//! ```text
//! body     := time kind fields
//! time     := zigzag varint of the nanoseconds since the Unix epoch
//! kind     := one byte, the event's type (see `Kind`)
//! str      := varint length, UTF-8 bytes
//! opt(x)   := 0 | 1 x
//! decimal  := one byte (scale 0..=28, plus 0x80 when negative), varint magnitude (< 2^96)
//! f64s     := varint count, each float as 8 bytes little-endian
//! json     := str (the JSON text)
//! ```
//!
//! Varints are LEB128 (seven bits a byte, low first). Fields follow in the order the event's
//! struct declares them; an enum field (side, margin mode, top-up source) is one byte.

use jiff::Timestamp;
use rust_decimal::Decimal;
use solvent_core::money::{Amount, Price, Quantity};
use solvent_core::portfolio::MarginMode;
use solvent_engine::event::{
    Deposit, Envelope, Event, Fill, Funding, IndexPrice, ListInstrument, MarkPrice, ScenarioRange,
    SetAutoTopUp, SetBufferPolicy, SetIsolatedMargin, SetLeverage, SetMarginMode, Settlement, Side,
    TopUpSource, Transfer, UpdateVenue, VolSurface, Withdraw,
};

/// Version of the event encoding, recorded in the journal's `meta` table.
pub const EVENT_ENCODING: u32 = 1;

/// The largest decimal scale (`rust_decimal` holds at most 28 decimals).
const MAX_SCALE: u8 = 28;

/// Appends the encoding of `envelope` (without its sequence number) to `out`.
pub fn encode(envelope: &Envelope, out: &mut Vec<u8>) {
    let mut w = Writer(out);
    w.time(envelope.ts);
    match &envelope.event {
        Event::Deposit(e) => {
            w.kind(1).str(&e.account).str(&e.asset).amount(e.amount);
        }
        Event::Withdraw(e) => {
            w.kind(2).str(&e.account).str(&e.asset).amount(e.amount);
        }
        Event::Transfer(e) => {
            w.kind(3)
                .str(&e.from)
                .str(&e.to)
                .str(&e.asset)
                .amount(e.amount);
        }
        Event::Fill(e) => {
            w.kind(4)
                .str(&e.account)
                .str(&e.instrument)
                .byte(match e.side {
                    Side::Buy => 0,
                    Side::Sell => 1,
                })
                .decimal(e.size.0)
                .decimal(e.price.0)
                .amount(e.fee)
                .str(&e.counterparty);
        }
        Event::IndexPrice(e) => {
            w.kind(5).str(&e.underlying).decimal(e.price.0);
            w.opt_str(e.source.as_deref());
        }
        Event::MarkPrice(e) => {
            w.kind(6).str(&e.instrument).decimal(e.price.0);
        }
        Event::VolSurface(e) => {
            w.kind(7)
                .str(&e.underlying)
                .str(&e.expiry)
                .floats(&e.strikes)
                .floats(&e.vols);
        }
        Event::Funding(e) => {
            w.kind(8).str(&e.instrument).decimal(e.rate);
        }
        Event::Settlement(e) => {
            w.kind(9).str(&e.instrument).decimal(e.price.0);
        }
        Event::SetLeverage(e) => {
            w.kind(10)
                .str(&e.account)
                .str(&e.instrument)
                .decimal(e.leverage);
        }
        Event::SetMarginMode(e) => {
            w.kind(11).str(&e.account).byte(match e.mode {
                MarginMode::Cross => 0,
                MarginMode::Portfolio => 1,
            });
        }
        Event::SetIsolatedMargin(e) => {
            w.kind(12)
                .str(&e.account)
                .str(&e.instrument)
                .amount(e.amount);
        }
        Event::SetBufferPolicy(e) => {
            w.kind(13).str(&e.account).str(&e.policy);
        }
        Event::SetAutoTopUp(e) => {
            w.kind(14).str(&e.account);
            w.opt_str(e.instrument.as_deref())
                .byte(match e.source {
                    TopUpSource::External => 0,
                    TopUpSource::CrossPool => 1,
                })
                .decimal(e.trigger_health)
                .decimal(e.target_health)
                .amount(e.per_event_cap)
                .amount(e.per_day_cap);
        }
        Event::ListInstrument(e) => {
            w.kind(15).str(&e.name).str(&e.spec.to_string());
        }
        Event::UpdateVenue(e) => {
            w.kind(16).str(&e.venue);
        }
        Event::ScenarioRange(e) => {
            w.kind(17)
                .str(&e.underlying)
                .str(&e.as_of.to_string())
                .str(e.model.as_str())
                .str(e.control.as_str())
                .floats(&[e.sigma_daily, e.base, e.range])
                .str(e.bound.as_str());
        }
    }
}

/// Reads an event written by [`encode`], giving it sequence number `seq`.
///
/// # Errors
/// What is wrong with the bytes (truncated, an unknown kind, a malformed field, bytes left
/// over).
pub fn decode(seq: u64, bytes: &[u8]) -> Result<Envelope, String> {
    let mut r = Reader { bytes, at: 0 };
    let ts = r.time()?;
    let kind = r.byte()?;
    let event = match kind {
        1 => Event::Deposit(Deposit {
            account: r.string()?,
            asset: r.string()?,
            amount: r.amount()?,
        }),
        2 => Event::Withdraw(Withdraw {
            account: r.string()?,
            asset: r.string()?,
            amount: r.amount()?,
        }),
        3 => Event::Transfer(Transfer {
            from: r.string()?,
            to: r.string()?,
            asset: r.string()?,
            amount: r.amount()?,
        }),
        4 => Event::Fill(Fill {
            account: r.string()?,
            instrument: r.string()?,
            side: match r.byte()? {
                0 => Side::Buy,
                1 => Side::Sell,
                other => return Err(format!("unknown side {other}")),
            },
            size: Quantity(r.decimal()?),
            price: Price(r.decimal()?),
            fee: r.amount()?,
            counterparty: r.string()?,
        }),
        5 => Event::IndexPrice(IndexPrice {
            underlying: r.string()?,
            price: Price(r.decimal()?),
            source: r.opt_string()?,
        }),
        6 => Event::MarkPrice(MarkPrice {
            instrument: r.string()?,
            price: Price(r.decimal()?),
        }),
        7 => Event::VolSurface(VolSurface {
            underlying: r.string()?,
            expiry: r.string()?,
            strikes: r.floats()?,
            vols: r.floats()?,
        }),
        8 => Event::Funding(Funding {
            instrument: r.string()?,
            rate: r.decimal()?,
        }),
        9 => Event::Settlement(Settlement {
            instrument: r.string()?,
            price: Price(r.decimal()?),
        }),
        10 => Event::SetLeverage(SetLeverage {
            account: r.string()?,
            instrument: r.string()?,
            leverage: r.decimal()?,
        }),
        11 => Event::SetMarginMode(SetMarginMode {
            account: r.string()?,
            mode: match r.byte()? {
                0 => MarginMode::Cross,
                1 => MarginMode::Portfolio,
                other => return Err(format!("unknown margin mode {other}")),
            },
        }),
        12 => Event::SetIsolatedMargin(SetIsolatedMargin {
            account: r.string()?,
            instrument: r.string()?,
            amount: r.amount()?,
        }),
        13 => Event::SetBufferPolicy(SetBufferPolicy {
            account: r.string()?,
            policy: r.string()?,
        }),
        14 => Event::SetAutoTopUp(SetAutoTopUp {
            account: r.string()?,
            instrument: r.opt_string()?,
            source: match r.byte()? {
                0 => TopUpSource::External,
                1 => TopUpSource::CrossPool,
                other => return Err(format!("unknown top-up source {other}")),
            },
            trigger_health: r.decimal()?,
            target_health: r.decimal()?,
            per_event_cap: r.amount()?,
            per_day_cap: r.amount()?,
        }),
        15 => Event::ListInstrument(ListInstrument {
            name: r.string()?,
            spec: serde_json::from_str(&r.string()?)
                .map_err(|error| format!("instrument spec: {error}"))?,
        }),
        16 => Event::UpdateVenue(UpdateVenue { venue: r.string()? }),
        17 => {
            let underlying = r.string()?;
            let as_of = r
                .string()?
                .parse()
                .map_err(|error| format!("as_of: {error}"))?;
            let model = named(&r.string()?, "model")?;
            let control = named(&r.string()?, "control")?;
            let [sigma_daily, base, range] = <[f64; 3]>::try_from(r.floats()?)
                .map_err(|floats| format!("{} figures where a forecast has 3", floats.len()))?;
            Event::ScenarioRange(ScenarioRange {
                underlying,
                as_of,
                model,
                control,
                sigma_daily,
                base,
                range,
                bound: named(&r.string()?, "bound")?,
            })
        }
        other => return Err(format!("unknown event kind {other}")),
    };
    if r.at != bytes.len() {
        return Err(format!(
            "{} bytes after the event",
            bytes.len().saturating_sub(r.at)
        ));
    }
    Ok(Envelope { seq, ts, event })
}

/// A unit enum read back from the name it was written with (`ewma`, `buffer_partial`).
fn named<T: serde::de::DeserializeOwned>(name: &str, field: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(name.to_owned()))
        .map_err(|error| format!("{field}: {error}"))
}

struct Writer<'a>(&'a mut Vec<u8>);

impl Writer<'_> {
    fn byte(&mut self, value: u8) -> &mut Self {
        self.0.push(value);
        self
    }

    fn kind(&mut self, kind: u8) -> &mut Self {
        self.byte(kind)
    }

    fn varint(&mut self, mut value: u128) -> &mut Self {
        while value >= 0x80 {
            // The low seven bits, with the continuation bit: the cast keeps them.
            #[allow(clippy::cast_possible_truncation)]
            self.0.push((value as u8 & 0x7f) | 0x80);
            value >>= 7;
        }
        #[allow(clippy::cast_possible_truncation)]
        self.0.push(value as u8);
        self
    }

    fn time(&mut self, at: Timestamp) -> &mut Self {
        let nanos = at.as_nanosecond();
        // Zigzag: small magnitudes of either sign take few bytes.
        #[allow(clippy::cast_sign_loss)]
        let zigzag = ((nanos << 1) ^ (nanos >> 127)) as u128;
        self.varint(zigzag)
    }

    fn str(&mut self, text: &str) -> &mut Self {
        self.varint(text.len() as u128);
        self.0.extend_from_slice(text.as_bytes());
        self
    }

    fn opt_str(&mut self, text: Option<&str>) -> &mut Self {
        match text {
            Some(text) => self.byte(1).str(text),
            None => self.byte(0),
        }
    }

    fn decimal(&mut self, value: Decimal) -> &mut Self {
        // The scale is at most 28, so it and the sign share one byte.
        #[allow(clippy::cast_possible_truncation)]
        let head = value.scale() as u8 | if value.is_sign_negative() { 0x80 } else { 0 };
        self.byte(head).varint(value.mantissa().unsigned_abs())
    }

    fn amount(&mut self, value: Amount) -> &mut Self {
        self.decimal(value.0)
    }

    fn floats(&mut self, values: &[f64]) -> &mut Self {
        self.varint(values.len() as u128);
        for value in values {
            self.0.extend_from_slice(&value.to_le_bytes());
        }
        self
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, count: usize) -> Result<&[u8], String> {
        let end = self
            .at
            .checked_add(count)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| format!("truncated: {count} bytes wanted at offset {}", self.at))?;
        let slice = self.bytes.get(self.at..end).unwrap_or_default();
        self.at = end;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8, String> {
        self.take(1)?
            .first()
            .copied()
            .ok_or_else(|| "truncated".to_owned())
    }

    fn varint(&mut self) -> Result<u128, String> {
        let mut value = 0_u128;
        for shift in (0..128).step_by(7) {
            let byte = self.byte()?;
            value |= u128::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("a varint longer than 128 bits".to_owned())
    }

    fn length(&mut self) -> Result<usize, String> {
        let length = self.varint()?;
        usize::try_from(length)
            .ok()
            .filter(|length| *length <= self.bytes.len())
            .ok_or_else(|| format!("length {length} exceeds the entry"))
    }

    fn time(&mut self) -> Result<Timestamp, String> {
        let zigzag = self.varint()?;
        #[allow(clippy::cast_possible_wrap)]
        let nanos = (zigzag >> 1) as i128 ^ -((zigzag & 1) as i128);
        Timestamp::from_nanosecond(nanos).map_err(|error| format!("time: {error}"))
    }

    fn string(&mut self) -> Result<String, String> {
        let length = self.length()?;
        let bytes = self.take(length)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "a string is not UTF-8".to_owned())
    }

    fn opt_string(&mut self) -> Result<Option<String>, String> {
        match self.byte()? {
            0 => Ok(None),
            1 => self.string().map(Some),
            other => Err(format!("option tag {other}")),
        }
    }

    fn decimal(&mut self) -> Result<Decimal, String> {
        let head = self.byte()?;
        let scale = head & 0x7f;
        if scale > MAX_SCALE {
            return Err(format!("decimal scale {scale} above {MAX_SCALE}"));
        }
        let magnitude = self.varint()?;
        if magnitude >> 96 != 0 {
            return Err("decimal magnitude beyond 96 bits".to_owned());
        }
        // The three 32-bit words of a magnitude below 2^96: the casts keep each word.
        #[allow(clippy::cast_possible_truncation)]
        let (lo, mid, hi) = (
            magnitude as u32,
            (magnitude >> 32) as u32,
            (magnitude >> 64) as u32,
        );
        // The sign is set apart: `from_parts` drops the sign of a zero, and `-0` must read back
        // as it was written.
        let mut value = Decimal::from_parts(lo, mid, hi, false, u32::from(scale));
        value.set_sign_negative(head & 0x80 != 0);
        Ok(value)
    }

    fn amount(&mut self) -> Result<Amount, String> {
        self.decimal().map(Amount)
    }

    fn floats(&mut self) -> Result<Vec<f64>, String> {
        let count = self.length()?;
        if count.saturating_mul(8) > self.bytes.len() {
            return Err(format!("{count} floats exceed the entry"));
        }
        let mut values = Vec::with_capacity(count);
        for _ in 0..count {
            let bytes = self.take(8)?;
            let mut word = [0_u8; 8];
            word.copy_from_slice(bytes);
            values.push(f64::from_le_bytes(word));
        }
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use solvent_engine::event::parse_line;

    fn envelope(line: &str) -> Envelope {
        match parse_line("test", 1, line) {
            Ok(envelope) => envelope,
            Err(error) => panic!("{line}: {error}"),
        }
    }

    /// One event of each type, with decimals of several scales and signs.
    pub(crate) const LINES: &[&str] = &[
        r#"{"seq":1,"ts":"2026-01-01T00:00:00Z","type":"deposit","account":"a1","asset":"USDT","amount":"10000.50"}"#,
        r#"{"seq":2,"ts":"2026-01-01T00:00:00.123456789Z","type":"withdraw","account":"a1","asset":"USDT","amount":"0.000001"}"#,
        r#"{"seq":3,"ts":"2026-01-01T00:00:01Z","type":"transfer","from":"a1","to":"b","asset":"BTC","amount":"1.5"}"#,
        r#"{"seq":4,"ts":"2026-01-01T00:00:02Z","type":"fill","account":"a1","instrument":"BTCUSDT","side":"sell","size":"1.000","price":"60000.5","fee":"-6","counterparty":"external"}"#,
        r#"{"seq":5,"ts":"2026-01-01T00:00:03Z","type":"index_price","underlying":"BTC","price":"60000","source":"s1"}"#,
        r#"{"seq":6,"ts":"2026-01-01T00:00:03Z","type":"index_price","underlying":"ETH","price":"3000.25"}"#,
        r#"{"seq":7,"ts":"2026-01-01T00:00:04Z","type":"mark_price","instrument":"BTCUSDT","price":"59000"}"#,
        r#"{"seq":8,"ts":"2026-01-01T00:00:05Z","type":"vol_surface","underlying":"BTC","expiry":"27DEC26","strikes":[50000,60000,70000],"vols":[0.61,0.55,0.5800000000000001]}"#,
        r#"{"seq":9,"ts":"2026-01-01T00:00:06Z","type":"funding","instrument":"BTCUSDT","rate":"-0.0001"}"#,
        r#"{"seq":10,"ts":"2026-01-01T00:00:07Z","type":"settlement","instrument":"BTC-27DEC26","price":"61000"}"#,
        r#"{"seq":11,"ts":"2026-01-01T00:00:08Z","type":"set_leverage","account":"a1","instrument":"BTCUSDT","leverage":"20"}"#,
        r#"{"seq":12,"ts":"2026-01-01T00:00:09Z","type":"set_margin_mode","account":"a1","mode":"portfolio"}"#,
        r#"{"seq":13,"ts":"2026-01-01T00:00:10Z","type":"set_isolated_margin","account":"a1","instrument":"BTCUSDT","amount":"0"}"#,
        r#"{"seq":14,"ts":"2026-01-01T00:00:11Z","type":"set_buffer_policy","account":"a1","policy":"sigma:3:1"}"#,
        r#"{"seq":15,"ts":"2026-01-01T00:00:12Z","type":"set_auto_top_up","account":"a1","instrument":"BTCUSDT","source":"cross_pool","trigger_health":"1.3","target_health":"2.00","per_event_cap":"500","per_day_cap":"1000"}"#,
        r#"{"seq":16,"ts":"2026-01-01T00:00:13Z","type":"list_instrument","name":"SOLUSDT","spec":{"kind":"perpetual","style":"linear","underlying":"SOL","settlement":"USDT","contract_size":"1","size_step":"0.1","margin":"binance_btcusdt"}}"#,
        r#"{"seq":17,"ts":"2026-01-01T00:00:14Z","type":"update_venue","venue":"[venue]\nname = \"x\"\n"}"#,
        r#"{"seq":19,"ts":"2026-01-01T00:00:15Z","type":"scenario_range","underlying":"BTC","as_of":"2025-12-31","model":"ewma","control":"buffer","sigma_daily":"0.015834108040577357","base":"0.04750232412173207","range":"0.05695719542389421","bound":"buffer_partial"}"#,
        r#"{"seq":18,"ts":"1969-12-31T23:59:59.5Z","type":"set_auto_top_up","account":"é","source":"external","trigger_health":"1.3","target_health":"2","per_event_cap":"500","per_day_cap":"1000"}"#,
    ];

    #[test]
    fn every_event_type_reads_back_equal() {
        for line in LINES {
            let original = envelope(line);
            let mut bytes = Vec::new();
            encode(&original, &mut bytes);
            let decoded = decode(original.seq, &bytes);
            assert_eq!(decoded.as_ref(), Ok(&original), "{line}");
        }
    }

    #[test]
    fn decimals_keep_scale_and_sign() {
        for value in [
            Decimal::new(150, 2),
            Decimal::new(-1, 28),
            Decimal::MAX,
            Decimal::MIN,
            -Decimal::ZERO,
            Decimal::new(0, 7),
        ] {
            let mut bytes = Vec::new();
            Writer(&mut bytes).decimal(value);
            let back = Reader {
                bytes: &bytes,
                at: 0,
            }
            .decimal();
            let Ok(back) = back else {
                panic!("{value}: {back:?}");
            };
            assert_eq!(back.serialize(), value.serialize(), "{value}");
        }
    }

    #[test]
    fn every_truncation_and_trailing_byte_is_refused() {
        for line in LINES {
            let original = envelope(line);
            let mut bytes = Vec::new();
            encode(&original, &mut bytes);
            for cut in 0..bytes.len() {
                let head = bytes.get(..cut).unwrap_or_default();
                assert!(decode(1, head).is_err(), "{line} cut at {cut}");
            }
            bytes.push(0);
            assert!(decode(1, &bytes).is_err(), "{line} with a byte more");
        }
    }
}
