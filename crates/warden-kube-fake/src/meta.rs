//! Small accessors for `metadata` fields of JSON objects.

use serde_json::{Map, Value};

pub(crate) fn str_at<'a>(obj: &'a Value, pointer: &str) -> Option<&'a str> {
    obj.pointer(pointer).and_then(Value::as_str)
}

pub(crate) fn name(obj: &Value) -> &str {
    str_at(obj, "/metadata/name").unwrap_or("")
}

pub(crate) fn namespace(obj: &Value) -> &str {
    str_at(obj, "/metadata/namespace").unwrap_or("")
}

pub(crate) fn uid(obj: &Value) -> &str {
    str_at(obj, "/metadata/uid").unwrap_or("")
}

pub(crate) fn resource_version(obj: &Value) -> &str {
    str_at(obj, "/metadata/resourceVersion").unwrap_or("")
}

/// `v` as a mutable map, replaced by an empty object if it is not one.
pub(crate) fn ensure_object(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    match v {
        Value::Object(m) => m,
        // The value was made an object on the line above.
        _ => unreachable!("value was just made an object"),
    }
}

/// `metadata` as a mutable map, created if absent or not an object.
pub(crate) fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    child_mut(ensure_object(obj), "metadata")
}

/// Mutable child object at `key`, created if absent or not an object.
pub(crate) fn child_mut<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> &'a mut Map<String, Value> {
    ensure_object(map.entry(key).or_insert_with(|| Value::Object(Map::new())))
}

pub(crate) fn set_str(map: &mut Map<String, Value>, key: &str, value: impl Into<String>) {
    map.insert(key.to_string(), Value::String(value.into()));
}

/// Owner UIDs listed in `metadata.ownerReferences`.
pub(crate) fn owner_uids(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `metadata.finalizers`.
pub(crate) fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A random version-4 UUID in the usual text form.
pub(crate) fn new_uid() -> String {
    let mut b: [u8; 16] = rand::random();
    if let Some(x) = b.get_mut(6) {
        *x = (*x & 0x0f) | 0x40;
    }
    if let Some(x) = b.get_mut(8) {
        *x = (*x & 0x3f) | 0x80;
    }
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        hex.get(0..8).unwrap_or(""),
        hex.get(8..12).unwrap_or(""),
        hex.get(12..16).unwrap_or(""),
        hex.get(16..20).unwrap_or(""),
        hex.get(20..32).unwrap_or("")
    )
}

/// Five characters from the alphabet the API server uses for `generateName`.
pub(crate) fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| {
            let i = rand::random_range(0..ALPHABET.len());
            ALPHABET.get(i).map(|c| *c as char).unwrap_or('x')
        })
        .collect()
}

/// Whether `name` is a valid DNS-1123 subdomain (most object names).
pub(crate) fn is_dns1123_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}
