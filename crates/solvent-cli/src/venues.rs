//! The shipped venue files, built into the binary and chosen by name (`--venue bybit-linear`),
//! beside venue files read from a path. `solvent venue list` names them.

use std::path::Path;

use anyhow::{Context, Result, bail};
use solvent_core::venue::Venue;

pub use solvent_core::shipped::{SHIPPED, shipped};

/// The venue `--venue` names: a file when the path exists, else a shipped venue by name, else
/// an error that names the closest shipped venue. `None`: the built-in default.
///
/// # Errors
/// An unreadable or invalid file, or a name that is neither a file nor a shipped venue.
pub fn load(venue: Option<&Path>) -> Result<Venue> {
    let (origin, text) = text_of(venue)?;
    Ok(Venue::from_toml(&origin, &text)?)
}

/// The origin (for messages) and text of the venue `--venue` names (see [`load`]).
///
/// # Errors
/// As [`load`], before parsing.
pub fn text_of(venue: Option<&Path>) -> Result<(String, String)> {
    let Some(path) = venue else {
        return Ok((
            "venues/default.toml (built in)".to_owned(),
            shipped("default").unwrap_or_default().to_owned(),
        ));
    };
    if path.exists() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--venue {}: cannot read the file", path.display()))?;
        return Ok((path.display().to_string(), text));
    }
    let name = path.display().to_string();
    if path.components().count() > 1 {
        bail!("--venue {name}: cannot read the file: it does not exist");
    }
    if let Some(text) = shipped(&name) {
        return Ok((format!("venues/{name} (built in)"), text.to_owned()));
    }
    let closest = SHIPPED
        .iter()
        .map(|(shipped, _)| (strsim::jaro_winkler(shipped, &name), *shipped))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .filter(|(score, _)| *score > 0.7)
        .map(|(_, shipped)| format!(" (did you mean `{shipped}`?)"))
        .unwrap_or_default();
    bail!(
        "--venue {name}: no such file and no shipped venue of that name{closest}; shipped: {}",
        SHIPPED
            .iter()
            .map(|(shipped, _)| *shipped)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// `solvent venue list`: each shipped venue's name and title.
///
/// # Errors
/// A shipped venue that does not parse (a build defect, caught by the tests).
pub fn list() -> Result<String> {
    let mut out = String::new();
    for (name, text) in SHIPPED {
        let venue = Venue::from_toml(&format!("venues/{name}.toml (built in)"), text)?;
        out.push_str(&format!("{name:<14} {}\n", venue.name));
    }
    Ok(out)
}

/// The shipped venues as RFC 4180 CSV: the name `--venue` takes and the venue's own name.
///
/// # Errors
/// A shipped venue that does not parse (a build error the tests catch).
pub fn list_csv() -> Result<String> {
    let mut grid = crate::display::Grid::new(vec![
        crate::display::Column::new("name", crate::display::Kind::Label),
        crate::display::Column::new("venue", crate::display::Kind::Label),
    ]);
    for (name, text) in SHIPPED {
        let venue = Venue::from_toml(&format!("venues/{name}.toml (built in)"), text)?;
        grid.row(vec![(*name).to_owned(), venue.name.clone()]);
    }
    Ok(grid.csv()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_venue_parses_and_is_found_by_name() {
        for (name, _) in SHIPPED {
            let venue = load(Some(Path::new(name))).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!venue.name.is_empty());
            assert!(load(Some(Path::new(&format!("{name}.toml")))).is_ok());
        }
        assert_eq!(
            list().map(|text| text.lines().count()).ok(),
            Some(SHIPPED.len())
        );
    }

    #[test]
    fn a_misspelt_name_is_refused_with_the_closest_one() {
        let error = load(Some(Path::new("bybit-linaer")))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("did you mean `bybit-linear`"), "{error}");
        assert!(
            error.starts_with("--venue bybit-linaer: no such file"),
            "{error}"
        );
    }

    #[test]
    fn the_shipped_list_is_the_venues_directory() {
        let mut on_disk: Vec<String> =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../venues"))
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|entry| {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    name.strip_suffix(".toml").map(str::to_owned)
                })
                .collect();
        on_disk.sort();
        let mut shipped: Vec<String> = SHIPPED.iter().map(|(name, _)| (*name).to_owned()).collect();
        shipped.sort();
        assert_eq!(shipped, on_disk);
    }
}
