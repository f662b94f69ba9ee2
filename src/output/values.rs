//! Go values as gotrace prints them: one [`NamedValue`] per argument, result or global
//! ([`crate::decode`] makes them), as JSON (serde) and as Go's `%v` text.

use serde::Serialize;
use serde_json::Value;

/// One decoded argument, result, global or field path. Its JSON object (serde) is `name` (or
/// `expr`), `type`,
/// `value`, then `hex`, `pointee`, `len`, `cap`, `truncated`, `reason` when they apply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NamedValue {
    /// Empty for a field path's value (its JSON has `expr` instead).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// A field path's value: the expression as written (`r.URL.Path`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expr: Option<String>,
    /// None for globals (their JSON has no `type`).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_name: Option<String>,
    /// `null` when nil or unreadable (then `reason` says why).
    pub value: Value,
    /// The value as Go's `%v` prints it (strings as `%q`).
    #[serde(skip)]
    pub text: String,
    /// The exact bytes of a string or `[]byte` that is not valid UTF-8, in hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hex: Option<String>,
    /// The struct a pointer points at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointee: Option<Value>,
    /// A slice's length and capacity (its JSON `len` and `cap`).
    #[serde(flatten)]
    pub len_cap: Option<LenCap>,
    /// Set for values holding strings or slices: whether something was cut.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
    /// Why `value` is null: what could not be read, or the nil pointer on the way (`r.URL is
    /// nil`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A slice's length and capacity, always known together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LenCap {
    /// `len(s)`.
    pub len: u64,
    /// `cap(s)`.
    pub cap: u64,
}

impl NamedValue {
    /// What the value is called: its name, or a field path's expression.
    pub fn label(&self) -> &str {
        self.expr.as_deref().unwrap_or(&self.name)
    }

    /// The value as one short human-readable token, as Go prints it: strings `%q`-quoted,
    /// structs `{X:1 Y:2}`, pointers `0xc000012345` or `&{W:3 H:4}`, `<nil>`; `...` after a
    /// truncated value, `?(why)` for an unreadable one.
    pub fn human(&self) -> String {
        if let Some(reason) = &self.reason {
            return format!("?({reason})");
        }
        let mut text = self.text.clone();
        if self.truncated == Some(true) {
            text.push_str("...");
        }
        text
    }
}

/// `v` as Go's `%v` prints it (strings quoted, `<nil>` for null).
pub fn human_inner(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(human_inner).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(fields) => format!(
            "{{{}}}",
            fields
                .iter()
                .map(|(k, v)| format!("{k}:{}", human_inner(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Value::Null => "<nil>".into(),
        other => other.to_string(),
    }
}

/// `bytes` quoted as Go's `%q` (`strconv.Quote`) does: printable characters as they are,
/// `\n`-style escapes, `\xNN` for bytes that are not UTF-8 and for control characters below
/// U+0080, `\uNNNN` / `\UNNNNNNNN` for other characters Rust deems control or whitespace
/// (Go's `unicode.IsPrint` is approximated by these two classes).
pub fn go_quote(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\x07' => out.push_str("\\a"),
                '\x08' => out.push_str("\\b"),
                '\x0c' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\x0b' => out.push_str("\\v"),
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                ' ' => out.push(' '),
                c if (c as u32) < 0x80 && (c.is_control()) => {
                    out.push_str(&format!("\\x{:02x}", c as u32));
                }
                c if c.is_control() || c.is_whitespace() => {
                    if (c as u32) < 0x10000 {
                        out.push_str(&format!("\\u{:04x}", c as u32));
                    } else {
                        out.push_str(&format!("\\U{:08x}", c as u32));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}
