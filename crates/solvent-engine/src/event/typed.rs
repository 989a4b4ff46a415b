//! The typed reader of one `EVENTS.jsonl` line: the fast path of [`super::parse_line`].
//!
//! The general reader parses a line into a `serde_json::Value` (a map of owned keys and values),
//! takes `seq`, `ts` and `type` out of it and deserializes the rest into the event's type through
//! `serde_path_to_error`, which is what lets it name the field of any problem. Here the line is
//! read once with its keys borrowed from the text: `seq`, `ts` and `type` as they come, every
//! other value kept as raw JSON text, which the event's own `Deserialize` (the same derive, with
//! `deny_unknown_fields`) then reads; the same `Event::check` follows.
//!
//! This reader decides nothing on its own: it returns `None` for anything it does not take as it
//! stands (any error, a key written with escapes, a key given twice, the rare `list_instrument`
//! and `update_venue` events whose nested values it leaves to the general reader), and the
//! general reader then reads the line again and gives its result, success or the message naming
//! the field. Whatever it does return is the event the general reader would return
//! (`tests::agrees_with_the_general_reader` and the property test below hold it to that).

use jiff::Timestamp;
use serde::de::value::MapDeserializer;
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use smallvec::SmallVec;

use super::{Envelope, Event};

/// The fields of one line, borrowed from its text: the envelope's three, and the event's as raw
/// JSON values. Ten event fields cover every event type this reader takes (the largest,
/// `set_auto_top_up`, has seven).
struct Fields<'a> {
    seq: Option<u64>,
    ts: Option<&'a str>,
    kind: Option<&'a str>,
    rest: SmallVec<[(&'a str, &'a RawValue); 10]>,
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(FieldsVisitor)
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields<'de>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
        let mut fields = Fields {
            seq: None,
            ts: None,
            kind: None,
            rest: SmallVec::new(),
        };
        // A key with escapes cannot be borrowed: an error here, and the general reader's case.
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "seq" if fields.seq.is_none() => fields.seq = Some(map.next_value()?),
                "ts" if fields.ts.is_none() => fields.ts = Some(map.next_value()?),
                "type" if fields.kind.is_none() => fields.kind = Some(map.next_value()?),
                "seq" | "ts" | "type" => return Err(de::Error::custom("given twice")),
                _ => fields.rest.push((key, map.next_value()?)),
            }
        }
        Ok(fields)
    }
}

/// Reads the event's own fields into `T` (its derived `Deserialize`, unknown fields refused; the
/// map deserializer also checks that every field was read).
fn read<'a, T: Deserialize<'a>>(rest: &[(&'a str, &'a RawValue)]) -> Option<T> {
    T::deserialize(MapDeserializer::<_, serde_json::Error>::new(
        rest.iter().copied(),
    ))
    .ok()
}

/// The event on `text`, or `None` when the general reader must decide (see the module
/// documentation).
pub(super) fn parse(text: &str) -> Option<Envelope> {
    let fields: Fields<'_> = serde_json::from_str(text).ok()?;
    let seq = fields.seq?;
    let ts = fields.ts?.parse::<Timestamp>().ok()?;
    let rest = &fields.rest[..];
    let event = match fields.kind? {
        "deposit" => Event::Deposit(read(rest)?),
        "withdraw" => Event::Withdraw(read(rest)?),
        "transfer" => Event::Transfer(read(rest)?),
        "fill" => Event::Fill(read(rest)?),
        "index_price" => Event::IndexPrice(read(rest)?),
        "mark_price" => Event::MarkPrice(read(rest)?),
        "vol_surface" => Event::VolSurface(read(rest)?),
        "funding" => Event::Funding(read(rest)?),
        "settlement" => Event::Settlement(read(rest)?),
        "set_leverage" => Event::SetLeverage(read(rest)?),
        "set_margin_mode" => Event::SetMarginMode(read(rest)?),
        "set_isolated_margin" => Event::SetIsolatedMargin(read(rest)?),
        "set_buffer_policy" => Event::SetBufferPolicy(read(rest)?),
        "set_auto_top_up" => Event::SetAutoTopUp(read(rest)?),
        // `list_instrument` and `update_venue` (rare, and nested), and unknown types.
        _ => return None,
    };
    event.check().ok()?;
    Some(Envelope { seq, ts, event })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use solvent_core::venue::Venue;

    use super::super::parse_line_general;
    use super::*;

    const DEMO: &str = include_str!("../../../../examples/events-demo.jsonl");
    const VENUE: &str = include_str!("../../../../venues/default.toml");

    /// What the two readers must agree on: the typed reader returns nothing or the general
    /// reader's event; `typed` says whether it must have taken the line.
    fn agree(text: &str, typed: bool) {
        let general = parse_line_general("e.jsonl", 1, text).ok();
        match parse(text) {
            Some(envelope) => assert_eq!(Some(envelope), general, "{text}"),
            None => assert!(
                !typed,
                "the typed reader left a line it should take: {text}"
            ),
        }
    }

    #[test]
    fn agrees_with_the_general_reader_on_the_demo_and_a_population() {
        for line in DEMO.lines() {
            agree(line, true);
        }
        let venue = Venue::from_toml("default.toml", VENUE).unwrap_or_else(|e| panic!("{e}"));
        let params = crate::population::PopulationParams {
            accounts: 300,
            ..crate::population::PopulationParams::default()
        };
        let population =
            crate::population::generate(&venue, &params).unwrap_or_else(|e| panic!("{e}"));
        for line in population.to_jsonl().lines() {
            agree(line, true);
        }
    }

    #[test]
    fn leaves_to_the_general_reader_what_it_does_not_take_as_it_stands() {
        const T: &str = r#""seq":5,"ts":"2026-01-01T00:00:00Z""#;
        let taken = [
            // Any key order, spaces, a string with escapes, an integer amount, a null source.
            format!(r#"{{"type":"deposit","account":"a","asset":"USDT","amount":5,{T}}}"#),
            format!(
                r#" {{ "account" : "a\"b\u00e9" , {T}, "type":"withdraw","asset":"USDT","amount":"0.5"}} "#
            ),
            format!(r#"{{{T},"type":"index_price","underlying":"BTC","price":"1","source":null}}"#),
            format!(
                r#"{{{T},"type":"fill","account":"a","instrument":"BTCUSDT","side":"sell","size":"1","price":"2"}}"#
            ),
            format!(
                r#"{{{T},"type":"set_auto_top_up","account":"a","source":"cross_pool","trigger_health":"1.2","target_health":2,"per_event_cap":"1","per_day_cap":"3"}}"#
            ),
        ];
        for line in &taken {
            agree(line, true);
        }
        let left = [
            // Given twice: the general reader takes the last value.
            format!(r#"{{{T},"type":"deposit","account":"a","account":"b","asset":"USDT","amount":"1"}}"#),
            format!(r#"{{{T},"seq":6,"type":"deposit","account":"a","asset":"USDT","amount":"1"}}"#),
            // A key written with an escape.
            format!(r#"{{{T},"type":"deposit","acc\u006funt":"a","asset":"USDT","amount":"1"}}"#),
            format!(r#"{{{T},"type":"list_instrument","name":"X","spec":{{}}}}"#),
            format!(r#"{{{T},"type":"update_venue","venue":"name = \"v\""}}"#),
            // Errors: the general reader words them.
            format!(r#"{{{T},"type":"deposit","account":"a","asset":"USDT","amount":"1"}} x"#),
            format!(r#"{{{T},"type":"deposit","account":" ","asset":"USDT","amount":"1"}}"#),
            format!(r#"{{{T},"type":"deposit","account":"a","asset":"USDT","amount":"1","colour":1}}"#),
            format!(r#"{{{T},"type":"deposit","account":"a","asset":"USDT","amount":1.0}}"#),
            format!(r#"{{{T},"type":"teleport"}}"#),
            r#"{"seq":-1,"ts":"2026-01-01T00:00:00Z","type":"mark_price","instrument":"X","price":"1"}"#.to_owned(),
            r#"{"seq":1.0,"ts":"2026-01-01T00:00:00Z","type":"mark_price","instrument":"X","price":"1"}"#.to_owned(),
            r#"{"ts":"2026-01-01T00:00:00Z","type":"mark_price","instrument":"X","price":"1"}"#.to_owned(),
            "[]".to_owned(),
            String::new(),
        ];
        for line in &left {
            assert_eq!(parse(line), None, "{line}");
            agree(line, false);
        }
    }

    /// Values tried in place of a number or an id (as tests/event_fuzz.rs).
    const VALUES: [&str; 20] = [
        "\"0\"",
        "\"-1\"",
        "\"1_000\"",
        "\"0.0000000000000000000000000001\"",
        "\"1000000000000001\"",
        "\"79228162514264337593543950335\"",
        "\"NaN\"",
        "1e308",
        "-1",
        "7",
        "18446744073709551616",
        "\"\"",
        "\" \"",
        "null",
        "[]",
        "{}",
        "\"a\\u0062\"",
        "\"1000\"",
        "\"2026-01-01T00:00:00+01:00\"",
        "\"buy\"",
    ];

    /// Replaces the value of the `field`-th (modulo their count) `"key":` of a line by `value`.
    fn replace_value(line: &str, field: usize, value: &str) -> String {
        let keys: Vec<usize> = line.match_indices("\":").map(|(at, _)| at + 2).collect();
        let Some(&start) = keys.get(field % keys.len().max(1)) else {
            return line.to_owned();
        };
        let rest = &line[start..];
        let end = if let Some(quoted) = rest.strip_prefix('"') {
            quoted.find('"').map_or(rest.len(), |at| at + 2)
        } else {
            rest.find([',', '}']).unwrap_or(rest.len())
        };
        format!("{}{value}{}", &line[..start], &rest[end..])
    }

    proptest! {
        #[test]
        fn agrees_on_mutated_demo_lines(
            line in 0_usize..85,
            edits in proptest::collection::vec((any::<usize>(), 0..VALUES.len()), 1..4),
        ) {
            let lines: Vec<&str> = DEMO.lines().collect();
            let mut text = lines[line % lines.len()].to_owned();
            for (field, value) in edits {
                text = replace_value(&text, field, VALUES[value]);
            }
            agree(&text, false);
        }

        #[test]
        fn agrees_on_random_text(text in "\\PC{0,80}") {
            agree(&text, false);
        }
    }
}
