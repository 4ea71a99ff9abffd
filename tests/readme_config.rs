//! The README's configuration table is the operator's reference: every settings key
//! (`src/config.rs`, listed in `config/default.toml`) has a row with its built-in default, and
//! no row names a key that does not exist.

use std::collections::BTreeMap;

use chatd::config::Settings;
use serde_json::Value;

/// `section.key` → the default as JSON, from the built-in settings.
fn settings_keys() -> BTreeMap<String, String> {
    let settings = serde_json::to_value(Settings::default()).expect("settings serialize");
    let mut keys = BTreeMap::new();
    for (section, fields) in settings.as_object().expect("sections") {
        for (key, value) in fields.as_object().unwrap_or_else(|| panic!("section {section} is a table")) {
            keys.insert(format!("{section}.{key}"), render(value));
        }
    }
    keys
}

fn render(value: &Value) -> String {
    serde_json::to_string(value).expect("a default renders")
}

/// `key` → the default column, from the README's `| key | default | meaning |` rows.
fn readme_rows() -> BTreeMap<String, String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
    let section = readme.split("\n## Configuration").nth(1).expect("a Configuration section in README.md");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.trim().trim_matches('|').split('|').map(str::trim).collect();
            let key = cells.first()?.strip_prefix('`')?.strip_suffix('`')?;
            let default = cells.get(1)?.trim_matches('`');
            Some((key.to_owned(), default.to_owned()))
        })
        .collect()
}

#[test]
fn every_setting_has_a_row_in_the_readme_with_its_default() {
    let rows = readme_rows();
    let keys = settings_keys();
    let missing: Vec<&String> = keys.keys().filter(|k| !rows.contains_key(*k)).collect();
    assert!(missing.is_empty(), "settings missing from README.md's configuration table: {missing:?}");
    for (key, default) in keys {
        assert_eq!(rows[&key], default, "README.md's default of {key}");
    }
}

#[test]
fn every_row_of_the_readme_names_a_setting() {
    let keys = settings_keys();
    let stale: Vec<String> = readme_rows().into_keys().filter(|k| !keys.contains_key(k)).collect();
    assert!(stale.is_empty(), "README.md's configuration table names keys that do not exist: {stale:?}");
}
