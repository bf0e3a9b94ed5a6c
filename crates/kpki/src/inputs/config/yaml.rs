//! The span-tracking YAML tree every kubeadm config document is first read into.
//!
//! serde-saphyr has no DOM of its own; this one keeps the line of every node, so errors and
//! warnings can point at the field, and a document we ignore never fails on the types of its
//! fields. `Obj` reads typed values out of a mapping, naming the field path on a wrong type.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{MessageFormatter, Spanned, UserMessageFormatter};

use crate::inputs::duration::parse_go_duration;

/// A mapping inside a document we read, with enough context to name a field in an error.
pub(crate) struct Obj<'a> {
    pub(crate) entries: &'a [(Node, Node)],
    /// Document kind, the first word of every error.
    pub(crate) kind: &'a str,
    /// Dotted path of this mapping within the document ("" at the top).
    pub(crate) path: String,
}

impl<'a> Obj<'a> {
    /// The value under `key`, or `None` when it is absent or null (Go treats both as unset).
    pub(crate) fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(k, _)| matches!(&k.value, Value::Str(s) if s == key))
            .map(|(_, v)| v)
            .filter(|v| !matches!(v.value, Value::Null))
    }

    pub(crate) fn field_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub(crate) fn line_of(&self, key: &str) -> u64 {
        self.get(key).map_or(0, |n| n.line)
    }

    /// An error about this mapping itself.
    pub(crate) fn error_at(&self, line: u64, msg: &str) -> String {
        with_line(line, &format!("{}: {}: {msg}", self.kind, self.path))
    }

    /// An error about the value at `path`.
    pub(crate) fn error(&self, node: &Node, path: &str, msg: &str) -> String {
        with_line(node.line, &format!("{}: {path}: {msg}", self.kind))
    }

    pub(crate) fn type_error(&self, node: &Node, path: &str, expected: &str) -> String {
        self.error(
            node,
            path,
            &format!(
                "invalid type: {}, expected {expected}",
                node.value.describe()
            ),
        )
    }

    pub(crate) fn object(&self, key: &str) -> Result<Option<Obj<'a>>, String> {
        let Some(node) = self.get(key) else {
            return Ok(None);
        };
        let path = self.field_path(key);
        match &node.value {
            Value::Map(entries) => Ok(Some(Obj {
                entries,
                kind: self.kind,
                path,
            })),
            _ => Err(self.type_error(node, &path, "a mapping")),
        }
    }

    pub(crate) fn string(&self, key: &str) -> Result<Option<String>, String> {
        let Some(node) = self.get(key) else {
            return Ok(None);
        };
        match &node.value {
            Value::Str(s) if s.is_empty() => Ok(None),
            Value::Str(s) => Ok(Some(s.clone())),
            _ => Err(self.type_error(node, &self.field_path(key), "a string")),
        }
    }

    pub(crate) fn strings(&self, key: &str) -> Result<Vec<String>, String> {
        let Some(node) = self.get(key) else {
            return Ok(Vec::new());
        };
        let path = self.field_path(key);
        let Value::Seq(items) = &node.value else {
            return Err(self.type_error(node, &path, "a list of strings"));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match &item.value {
                Value::Str(s) => Ok(s.clone()),
                _ => Err(self.type_error(item, &format!("{path}[{i}]"), "a string")),
            })
            .collect()
    }

    pub(crate) fn port(&self, key: &str) -> Result<Option<u16>, String> {
        let Some(node) = self.get(key) else {
            return Ok(None);
        };
        let path = self.field_path(key);
        let Value::Int(n) = node.value else {
            return Err(self.type_error(node, &path, "an integer port"));
        };
        match u16::try_from(n) {
            Ok(0) => Ok(None),
            Ok(port) => Ok(Some(port)),
            Err(_) => Err(self.error(node, &path, &format!("port {n} is out of range (1-65535)"))),
        }
    }

    pub(crate) fn boolean(&self, key: &str) -> Result<Option<bool>, String> {
        let Some(node) = self.get(key) else {
            return Ok(None);
        };
        match node.value {
            Value::Bool(b) => Ok(Some(b)),
            _ => Err(self.type_error(node, &self.field_path(key), "a boolean")),
        }
    }

    /// A Go duration string; like kubeadm (metav1.Duration), an empty string is an error.
    pub(crate) fn duration(&self, key: &str) -> Result<Option<time::Duration>, String> {
        let Some(node) = self.get(key) else {
            return Ok(None);
        };
        let path = self.field_path(key);
        let Value::Str(s) = &node.value else {
            return Err(self.type_error(node, &path, "a duration string such as \"8760h0m0s\""));
        };
        parse_go_duration(s)
            .map(Some)
            .map_err(|m| self.error(node, &path, &m))
    }
}

pub(crate) fn with_line(line: u64, msg: &str) -> String {
    if line == 0 {
        msg.to_owned()
    } else {
        format!("line {line}: {msg}")
    }
}

/// Renders a serde-saphyr error as `line N: malformed YAML: <message>`.
pub(crate) fn yaml_error(err: &serde_saphyr::Error) -> String {
    let line = err.location().map_or(0, |l| l.line());
    let mut inner = err;
    while let serde_saphyr::Error::AliasError { error, .. }
    | serde_saphyr::Error::WithSnippet { error, .. } = inner
    {
        inner = error;
    }
    let msg = match inner {
        // The usual cause in kubeadm configs is an unquoted wildcard SAN.
        serde_saphyr::Error::UnknownAnchor { .. } => {
            "alias to an undefined anchor (a value starting with '*' must be quoted, e.g. \"*.example.com\")"
                .into()
        }
        _ => UserMessageFormatter.format_message(inner),
    };
    with_line(line, &format!("malformed YAML: {msg}"))
}

/// Escapes control characters so the message stays on one line whatever the input held.
pub(crate) fn one_line(msg: &str) -> String {
    if !msg.chars().any(char::is_control) {
        return msg.to_owned();
    }
    msg.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A YAML node with the line it starts on, so errors can point at it.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) line: u64,
    pub(crate) value: Value,
}

/// An untyped YAML value. serde-saphyr has no DOM of its own; this one is just rich enough to
/// read headers first and report wrong types by field afterwards.
#[derive(Debug)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Bytes,
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Value {
    /// Names what was found, in serde's "invalid type" wording.
    pub(crate) fn describe(&self) -> String {
        match self {
            Value::Null => "null".to_owned(),
            Value::Bool(b) => format!("boolean `{b}`"),
            Value::Int(n) => format!("integer `{n}`"),
            Value::Float(f) => format!("floating point `{f}`"),
            Value::Str(s) => format!("string {s:?}"),
            Value::Bytes => "binary data".to_owned(),
            Value::Seq(_) => "a sequence".to_owned(),
            Value::Map(_) => "a mapping".to_owned(),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Spanned is serde-saphyr's hook for source locations; line 0 means unknown.
        let spanned = Spanned::<Value>::deserialize(deserializer)?;
        Ok(Node {
            line: spanned.referenced.line(),
            value: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(i128::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Value::Map(entries))
    }
}
