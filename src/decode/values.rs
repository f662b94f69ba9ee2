//! Decoding the raw bytes one probe hit captured (registers, a stack window, extra reads) into
//! [`NamedValue`]s, following a [`crate::plan::capture`] plan. Never panics on short or garbage
//! input: what cannot be read becomes `null` with a reason.

use serde_json::{json, Map, Value};

use crate::bpf_types::args_field_status as status;
use crate::gobin::runtime::typenames::TypeNamer;
use crate::output::lines;
use crate::output::values::{go_quote, human_inner, LenCap, NamedValue};
use crate::plan::capture::{FieldRead, FieldValue, Loc, PointeeSource, Shape, ValuePlan};

/// The bytes of one probe hit.
pub struct Captured<'a> {
    /// Registers then stack window (see [`crate::plan::capture::REGS_AREA`]).
    pub frame: &'a [u8],
    /// Per extra read of the plan: the bytes read, or None when the read failed.
    pub derefs: Vec<Option<&'a [u8]>>,
    /// Per field read of the plan: its enum args_field_status.
    pub field_status: &'a [u32],
}

/// One decoded value: the JSON value, its text as Go's `%v` prints it, its truncation mark, or
/// why it is unreadable.
struct Decoded {
    value: Value,
    human: String,
    truncated: bool,
    has_string: bool,
    reason: Option<String>,
    /// A slice's length and capacity.
    len_cap: Option<LenCap>,
    /// The exact bytes of a string or `[]byte` that is not valid UTF-8, in hex.
    hex: Option<String>,
    /// The struct a pointer points at.
    pointee: Option<Value>,
}

impl Decoded {
    fn plain(value: Value) -> Decoded {
        let human = human_inner(&value);
        Decoded::text(value, human)
    }

    fn text(value: Value, human: String) -> Decoded {
        Decoded {
            value,
            human,
            truncated: false,
            has_string: false,
            reason: None,
            len_cap: None,
            hex: None,
            pointee: None,
        }
    }

    /// Go's nil: JSON `null` with no reason.
    fn nil() -> Decoded {
        Decoded::text(Value::Null, "<nil>".into())
    }

    fn unreadable(reason: String) -> Decoded {
        Decoded {
            reason: Some(reason),
            ..Decoded::text(Value::Null, "?".into())
        }
    }

    /// A string or `[]byte` of `bytes`: JSON text (lossy) plus the exact bytes in hex when
    /// they are not UTF-8; Go's `%q` text.
    fn bytes(bytes: &[u8], truncated: bool) -> Decoded {
        Decoded {
            truncated,
            has_string: true,
            hex: std::str::from_utf8(bytes).is_err().then(|| hex(bytes)),
            ..Decoded::text(json!(String::from_utf8_lossy(bytes)), go_quote(bytes))
        }
    }

    /// The JSON of this value inside a struct or array: a string that is not UTF-8 becomes
    /// `{"text": lossy, "hex": exact}` (there is no sibling `hex` key there).
    /// A pointer followed to its struct becomes `{"address": hex, "pointee": {...}}`.
    fn nested_value(self) -> Value {
        match (self.hex, self.pointee) {
            (Some(hex), _) => json!({"text": self.value, "hex": hex}),
            (None, Some(pointee)) => json!({"address": self.value, "pointee": pointee}),
            (None, None) => self.value,
        }
    }
}

/// The arguments or results of one event.
pub fn decode_site(
    plan: &[ValuePlan],
    captured: &Captured<'_>,
    namer: &dyn TypeNamer,
) -> Vec<NamedValue> {
    plan.iter()
        .map(|v| named(v, decode(&v.shape, captured, namer)))
        .collect()
}

/// The globals of a call event (without `type`); global `i` is unreadable when bit `i` of
/// `failed` is set.
pub fn decode_globals(
    plan: &[ValuePlan],
    failed: u32,
    captured: &Captured<'_>,
    namer: &dyn TypeNamer,
) -> Vec<NamedValue> {
    plan.iter()
        .enumerate()
        .map(|(i, global)| {
            let decoded = if failed & (1 << i) != 0 {
                Decoded::unreadable("its address could not be read".into())
            } else {
                decode(&global.shape, captured, namer)
            };
            NamedValue {
                type_name: None,
                ..named(global, decoded)
            }
        })
        .collect()
}

/// The field paths of a call event: field `i`'s chase ended with `field_status[read]` (enum
/// args_field_status); a nil pointer on the way is `null` with the pointer named.
pub fn decode_fields(
    plan: &[FieldValue],
    reads: &[FieldRead],
    field_status: &[u32],
    captured: &Captured<'_>,
    namer: &dyn TypeNamer,
) -> Vec<NamedValue> {
    plan.iter()
        .map(|field| {
            let mut value = named(&field.value, decode(&field.value.shape, captured, namer));
            value.expr = Some(std::mem::take(&mut value.name));
            let chased = field
                .read
                .and_then(|i| Some((reads.get(i)?, *field_status.get(i)?)));
            if let Some((read, code)) = chased.filter(|&(_, code)| code != status::FIELD_READ.0) {
                let step = (code & status::FIELD_STEP_MASK.0) as usize;
                let name = read
                    .names
                    .get(step)
                    .map_or("a pointer on the way", String::as_str);
                let reason = match code & !status::FIELD_STEP_MASK.0 {
                    c if c == status::FIELD_NIL.0 => format!("{name} is nil"),
                    c if c == status::FIELD_OUT_OF_RANGE.0 => {
                        format!("index out of range: {name} is shorter")
                    }
                    _ => format!("what {name} points at could not be read"),
                };
                value = NamedValue {
                    value: Value::Null,
                    text: "<nil>".into(),
                    truncated: None,
                    len_cap: None,
                    hex: None,
                    pointee: None,
                    reason: Some(reason),
                    ..value
                };
            }
            value
        })
        .collect()
}

/// The value `plan` names, as `decoded` found it.
fn named(plan: &ValuePlan, decoded: Decoded) -> NamedValue {
    NamedValue {
        name: plan.name.clone(),
        expr: None,
        type_name: Some(plan.type_name.clone()),
        value: decoded.value,
        text: decoded.human,
        truncated: (decoded.has_string || decoded.len_cap.is_some()).then_some(decoded.truncated),
        len_cap: decoded.len_cap,
        hex: decoded.hex,
        pointee: decoded.pointee,
        reason: decoded.reason,
    }
}

/// The little-endian unsigned value at `loc`, or None when outside the frame.
fn read_unsigned(frame: &[u8], loc: Loc) -> Option<u64> {
    let start = usize::try_from(loc.offset).ok()?;
    let size = usize::try_from(loc.size).ok()?.min(8);
    let bytes = frame.get(start..start.checked_add(size)?)?;
    let mut word = [0u8; 8];
    word.get_mut(..size)?.copy_from_slice(bytes);
    Some(u64::from_le_bytes(word))
}

/// An integer value as docs/json.md writes it ([`lines::exact_int`]); its text the digits.
fn exact_int(v: i128) -> Decoded {
    match lines::exact_int(v) {
        digits @ Value::String(_) => Decoded::text(digits, v.to_string()),
        number => Decoded::plain(number),
    }
}

fn decode(shape: &Shape, captured: &Captured<'_>, namer: &dyn TypeNamer) -> Decoded {
    let frame = captured.frame;
    let outside = || Decoded::unreadable("not captured".into());
    match shape {
        Shape::Int { loc, signed } => match read_unsigned(frame, *loc) {
            Some(raw) if *signed && loc.size < 8 && loc.size > 0 => {
                let shift = 64 - 8 * loc.size;
                exact_int(i128::from(((raw << shift) as i64) >> shift))
            }
            Some(raw) if *signed => exact_int(i128::from(raw as i64)),
            Some(raw) => exact_int(i128::from(raw)),
            None => outside(),
        },
        Shape::Bool { loc } => read_unsigned(frame, *loc)
            .map_or_else(outside, |raw| Decoded::plain(json!(raw & 0xff != 0))),
        Shape::Pointer { loc, pointee } => match read_unsigned(frame, *loc) {
            None => outside(),
            Some(0) => Decoded::nil(),
            Some(raw) => {
                let address = format!("{raw:#x}");
                let target = pointee.as_ref().and_then(|p| match p.source {
                    PointeeSource::Deref(deref) => {
                        let bytes = captured.derefs.get(deref).copied().flatten()?;
                        let inner = Captured {
                            frame: bytes,
                            derefs: Vec::new(),
                            field_status: &[],
                        };
                        Some(decode(&p.shape, &inner, namer))
                    }
                    PointeeSource::Area { read, cut } => {
                        let code = *captured.field_status.get(read)?;
                        let target = (code == status::FIELD_READ.0)
                            .then(|| decode(&p.shape, captured, namer))?;
                        Some(Decoded {
                            truncated: target.truncated || cut,
                            has_string: true,
                            ..target
                        })
                    }
                });
                match target {
                    Some(target) => Decoded {
                        pointee: Some(target.value),
                        truncated: target.truncated,
                        has_string: target.has_string,
                        ..Decoded::text(json!(address), format!("&{}", target.human))
                    },
                    None => Decoded::text(json!(address.clone()), address),
                }
            }
        },
        Shape::Float { loc } => match read_unsigned(frame, *loc) {
            Some(raw) if loc.size == 4 => {
                Decoded::plain(json!(f64::from(f32::from_bits(raw as u32))))
            }
            Some(raw) => Decoded::plain(json!(f64::from_bits(raw))),
            None => outside(),
        },
        Shape::String { len, deref } => {
            let Some(full_len) = read_unsigned(frame, *len) else {
                return outside();
            };
            match captured.derefs.get(*deref).copied().flatten() {
                Some(bytes) => Decoded::bytes(bytes, (bytes.len() as u64) < full_len),
                None if full_len == 0 => Decoded::bytes(b"", false),
                None => Decoded {
                    has_string: true,
                    ..Decoded::unreadable("the string's bytes could not be read".into())
                },
            }
        }
        Shape::Slice {
            len,
            cap,
            elem,
            elem_size,
            deref,
        } => {
            let (Some(len), Some(cap)) = (read_unsigned(frame, *len), read_unsigned(frame, *cap))
            else {
                return outside();
            };
            let Some(bytes) = captured.derefs.get(*deref).copied().flatten() else {
                if len == 0 {
                    return Decoded {
                        len_cap: Some(LenCap { len, cap }),
                        ..Decoded::plain(json!([]))
                    };
                }
                return Decoded::unreadable("the slice's elements could not be read".into());
            };
            let (elems, texts): (Vec<Value>, Vec<String>) = bytes
                .chunks_exact((*elem_size).max(1) as usize)
                .map(|chunk| {
                    let element = Captured {
                        frame: chunk,
                        derefs: Vec::new(),
                        field_status: &[],
                    };
                    let d = decode(elem, &element, namer);
                    (d.value, d.human)
                })
                .unzip();
            Decoded {
                truncated: (elems.len() as u64) < len,
                len_cap: Some(LenCap { len, cap }),
                ..Decoded::text(Value::Array(elems), format!("[{}]", texts.join(" ")))
            }
        }
        Shape::Struct { fields } => {
            let mut object = Map::new();
            let mut texts = Vec::new();
            let mut whole = Decoded::plain(Value::Null);
            for (name, field) in fields {
                let d = decode(field, captured, namer);
                whole.truncated |= d.truncated;
                whole.has_string |= d.has_string;
                texts.push(format!("{name}:{}", d.human));
                object.insert(name.clone(), d.nested_value());
            }
            whole.value = Value::Object(object);
            whole.human = format!("{{{}}}", texts.join(" "));
            whole
        }
        Shape::Array { elems } => {
            let mut whole = Decoded::plain(Value::Null);
            let mut texts = Vec::new();
            let values = elems
                .iter()
                .map(|e| {
                    let d = decode(e, captured, namer);
                    whole.truncated |= d.truncated;
                    whole.has_string |= d.has_string;
                    texts.push(d.human.clone());
                    d.nested_value()
                })
                .collect();
            whole.value = Value::Array(values);
            whole.human = format!("[{}]", texts.join(" "));
            whole
        }
        Shape::Interface {
            tab,
            empty,
            itab_type,
            message,
        } => {
            let Some(first) = read_unsigned(frame, *tab) else {
                return outside();
            };
            if first == 0 {
                return Decoded::nil();
            }
            let type_word = if *empty {
                Some(first)
            } else {
                itab_type
                    .and_then(|i| captured.derefs.get(i).copied().flatten())
                    .and_then(|bytes| {
                        let size = u32::try_from(bytes.len()).ok()?;
                        read_unsigned(bytes, Loc { offset: 0, size })
                    })
            };
            let Some(type_word) = type_word else {
                return Decoded::unreadable("the itab could not be read".into());
            };
            let type_name = match namer.dynamic_type(type_word) {
                Ok(name) => name,
                Err(reason) => return Decoded::unreadable(reason),
            };
            let mut object = Map::new();
            object.insert("type".into(), json!(type_name));
            if type_name == "*errors.errorString" {
                if let Some(bytes) = message.and_then(|m| captured.derefs.get(m).copied().flatten())
                {
                    object.insert("message".into(), json!(String::from_utf8_lossy(bytes)));
                }
            }
            Decoded::plain(Value::Object(object))
        }
        Shape::Unreadable { reason } => Decoded::unreadable(reason.clone()),
    }
}

/// `bytes` in lowercase hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::gobin::Arch;
    use crate::plan::capture::{call_plan, Abi};
    use crate::plan::signature;

    /// Names every type `T`, fails nothing.
    struct FixedNamer;

    impl TypeNamer for FixedNamer {
        fn dynamic_type(&self, _type_word: u64) -> Result<String, String> {
            Ok("T".into())
        }
    }

    const SIGNATURE: &str = "main.f(a int8, b uint16, c int, s string, p *int, x float64, e error, v any, bs []byte, is []int32, fs []float32) (int, error)";

    #[test]
    fn decodes_registers_and_strings() {
        let user = signature::parse("main.f(n int16, s string) (ok bool)", 8, Err("none")).unwrap();
        let plan = call_plan(&user.sig, &user.types, Arch::Amd64, Abi::Register, 4);
        let mut frame = vec![0u8; 640];
        frame[..2].copy_from_slice(&(-3i16).to_le_bytes()); // RAX
        frame[16..24].copy_from_slice(&6u64.to_le_bytes()); // RCX: len
        let captured = Captured {
            frame: &frame,
            derefs: vec![Some(b"abcd")],
            field_status: &[],
        };
        let values = decode_site(&plan.entry.values, &captured, &FixedNamer);
        assert_eq!(values[0].value, json!(-3));
        assert_eq!(values[1].value, json!("abcd"));
        assert_eq!(values[1].truncated, Some(true));
        let parsed = serde_json::to_value(&values).unwrap();
        assert_eq!(
            parsed,
            json!([{"name": "n", "type": "int16", "value": -3},
                   {"name": "s", "type": "string", "value": "abcd", "truncated": true}])
        );
    }

    proptest! {
        /// Garbage frames and extra reads of any length decode without panicking.
        #[test]
        fn garbage_never_panics(
            frame in proptest::collection::vec(any::<u8>(), 0..700),
            reads in proptest::collection::vec(proptest::option::of(proptest::collection::vec(any::<u8>(), 0..80)), 0..20),
            register_abi in any::<bool>(),
        ) {
            let user = signature::parse(SIGNATURE, 8, Err("none")).unwrap();
            let abi = if register_abi { Abi::Register } else { Abi::Stack };
            let plan = call_plan(&user.sig, &user.types, Arch::Amd64, abi, 64);
            let captured = Captured {
                frame: &frame,
                derefs: reads.iter().map(|r| r.as_deref()).collect(),
                field_status: &[],
            };
            for site in [&plan.entry, &plan.ret] {
                let values = decode_site(&site.values, &captured, &FixedNamer);
                for value in &values {
                    let _ = value.human();
                }
                prop_assert!(serde_json::to_string(&values).is_ok());
            }
        }
    }
}
