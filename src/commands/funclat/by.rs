//! `funclat --by EXPR`: the histograms per key (the by_hists map, struct by_key), read and
//! named: a key's value as Go prints it, or why it has none.

use std::collections::BTreeMap;

use anyhow::Result;
use libbpf_rs::{MapCore, MapFlags};
use serde_json::{json, Value};

use crate::bpf_types::{by_key, by_key_kind, func_hist, read};
use crate::output::histogram::Log2Hist;
use crate::output::lines::exact_int;
use crate::output::values::go_quote;
use crate::plan::capture::by_key::KeyKind;

/// A histogram's key as printed: its JSON value (`null` when it has none), its text, and why
/// it has no value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    /// Sorts keys: by function, then values before the keys without one, then by text.
    pub func_id: u32,
    /// Why the key has no value (`unreadable`, `other`, `not read`); None: it has one.
    pub note: Option<&'static str>,
    /// The key as the table prints it (a string Go-quoted, or the note in parentheses).
    pub text: String,
    /// The value's JSON text (serde_json::Value is not Ord).
    json: String,
    /// A string key cut at `--strsize`.
    pub truncated: bool,
}

impl Key {
    /// The JSON value of the key (`null` for a key without one, with [`Key::note`] saying why).
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.json).unwrap_or(Value::Null)
    }

    /// The Prometheus label value: the value's text (a string unquoted), or the note.
    pub fn label(&self) -> String {
        match (self.note, self.value()) {
            (Some(note), _) => format!("({note})"),
            (None, Value::String(s)) => s,
            (None, _) => self.text.clone(),
        }
    }
}

/// Decodes one by_hists key; `kinds`: each function's key kind.
fn decode(key: &by_key, kinds: &[Option<KeyKind>]) -> Key {
    let note = match key.kind {
        by_key_kind::BY_VALUE => None,
        by_key_kind::BY_UNREADABLE => Some("unreadable"),
        by_key_kind::BY_OTHER => Some("other"),
        _ => Some("not read"),
    };
    let bytes = &key.bytes[..(key.len as usize).min(key.bytes.len())];
    let mut word = [0u8; 8];
    word[..bytes.len().min(8)].copy_from_slice(&bytes[..bytes.len().min(8)]);
    let raw = u64::from_le_bytes(word);
    let (value, text) = match (note, kinds.get(key.func_id as usize).copied().flatten()) {
        (Some(note), _) => (Value::Null, format!("({note})")),
        (None, Some(KeyKind::String)) => (json!(String::from_utf8_lossy(bytes)), go_quote(bytes)),
        (None, Some(KeyKind::Bool)) => (json!(raw & 0xff != 0), (raw & 0xff != 0).to_string()),
        (None, Some(KeyKind::Int { signed: true })) => {
            let shift = 64 - 8 * bytes.len().clamp(1, 8) as u32;
            let v = ((raw << shift) as i64) >> shift;
            (exact_int(i128::from(v)), v.to_string())
        }
        (None, _) => (exact_int(i128::from(raw)), raw.to_string()),
    };
    Key {
        func_id: key.func_id,
        note,
        text,
        json: value.to_string(),
        truncated: key.truncated != 0,
    }
}

/// Every key's histogram (every CPU's copy summed), by key.
pub fn read_keyed(
    map: &impl MapCore,
    kinds: &[Option<KeyKind>],
) -> Result<BTreeMap<Key, Log2Hist>> {
    let mut rows = BTreeMap::new();
    for key_bytes in map.keys() {
        let key: by_key = read(&key_bytes)?;
        let Some(copies) = map.lookup_percpu(&key_bytes, MapFlags::ANY)? else {
            continue;
        };
        let mut total = Log2Hist::default();
        for bytes in copies {
            total.add(&Log2Hist::from(&read::<func_hist>(&bytes)?));
        }
        rows.entry(decode(&key, kinds))
            .or_insert_with(Log2Hist::default)
            .add(&total);
    }
    Ok(rows)
}

/// The JSON `hist` line of one key: the function's line with `key` (and `key_note` when the
/// key has no value, `key_truncated` when a string key was cut at --strsize).
pub fn keyed_json(mut line: Value, key: &Key) -> Value {
    if let Some(object) = line.as_object_mut() {
        object.insert("key".into(), key.value());
        if let Some(note) = key.note {
            object.insert("key_note".into(), json!(note));
        }
        if key.truncated {
            object.insert("key_truncated".into(), json!(true));
        }
    }
    line
}
