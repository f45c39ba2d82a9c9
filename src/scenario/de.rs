//! Deserializes a scenario straight from the parsed TOML document, so that
//! an error says which field it is about. toml's own deserializer reports a
//! message and a byte span only (`toml::de::Error` names no field), which
//! left `load` to search the document for the span and to read a missing
//! field's name out of serde's message. Here every value knows its path,
//! and serde's `missing_field` arrives as a call of its own, so
//! [`FieldError`] carries the field as data. The messages are serde's and
//! the scenario types' own, as under toml's deserializer, but for a value
//! of the wrong type where an enum goes (its variants are listed, where
//! toml said "wanted string or table") and a date-time (named, where toml
//! said "map"). `load` turns a `FieldError` into a line of the file.

use std::fmt;

use serde::de::value::{BorrowedStrDeserializer, MapAccessDeserializer};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Unexpected, Visitor};
use toml_edit::{Item, TableLike, Value};

/// Why a value did not deserialize, and the path of the field it concerns
/// (`["producers", "0", "rate"]`; empty for the document itself).
#[derive(Debug)]
pub(super) struct FieldError {
    pub message: String,
    /// None until the value that failed says where it is.
    path: Option<Vec<String>>,
    /// From `missing_field`: the field the failing table lacks.
    missing: Option<&'static str>,
}

impl FieldError {
    pub fn path(&self) -> &[String] {
        self.path.as_deref().unwrap_or_default()
    }

    /// Places an error not yet placed at `path`, or at the field a table
    /// lacks inside it: the innermost value that failed is the one meant.
    fn at(mut self, path: &[String]) -> FieldError {
        if self.path.is_none() {
            let mut at = path.to_vec();
            at.extend(self.missing.map(String::from));
            self.path = Some(at);
        }
        self
    }
}

impl de::Error for FieldError {
    fn custom<T: fmt::Display>(message: T) -> FieldError {
        FieldError {
            message: message.to_string(),
            path: None,
            missing: None,
        }
    }

    fn missing_field(field: &'static str) -> FieldError {
        FieldError {
            missing: Some(field),
            ..FieldError::custom(format_args!("missing field `{field}`"))
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FieldError {}

/// One value of the document and its path: a serde `Deserializer`.
pub(super) struct Node<'de> {
    kind: Kind<'de>,
    path: Vec<String>,
}

#[derive(Clone, Copy)]
enum Kind<'de> {
    Value(&'de Value),
    Table(&'de dyn TableLike),
    Tables(&'de toml_edit::ArrayOfTables),
    /// An empty document item, read as unit.
    None,
}

impl<'de> Kind<'de> {
    fn of(item: &'de Item) -> Kind<'de> {
        match item {
            Item::Value(v) => Kind::Value(v),
            Item::Table(t) => Kind::Table(t),
            Item::ArrayOfTables(a) => Kind::Tables(a),
            Item::None => Kind::None,
        }
    }
}

impl<'de> Node<'de> {
    pub fn root(item: &'de Item) -> Node<'de> {
        Node {
            kind: Kind::of(item),
            path: Vec::new(),
        }
    }

    fn child(&self, kind: Kind<'de>, segment: String) -> Node<'de> {
        let mut path = self.path.clone();
        path.push(segment);
        Node { kind, path }
    }

    fn table(&self) -> Option<&'de dyn TableLike> {
        match self.kind {
            Kind::Table(t) => Some(t),
            Kind::Value(Value::InlineTable(t)) => Some(t),
            _ => None,
        }
    }

    /// What this value is, for an "invalid type" message.
    fn unexpected(&self) -> Unexpected<'de> {
        match self.kind {
            Kind::Value(Value::String(s)) => Unexpected::Str(s.value()),
            Kind::Value(Value::Integer(i)) => Unexpected::Signed(*i.value()),
            Kind::Value(Value::Float(f)) => Unexpected::Float(*f.value()),
            Kind::Value(Value::Boolean(b)) => Unexpected::Bool(*b.value()),
            Kind::Value(Value::Datetime(_)) => Unexpected::Other("a date-time"),
            Kind::Value(Value::Array(_)) | Kind::Tables(_) => Unexpected::Seq,
            Kind::Value(Value::InlineTable(_)) | Kind::Table(_) => Unexpected::Map,
            Kind::None => Unexpected::Unit,
        }
    }
}

/// An enum's variants, as what was expected instead of a value of the wrong type.
struct OneOf(&'static [&'static str]);

impl de::Expected for OneOf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.0.iter().map(|v| format!("`{v}`")).collect();
        match names.len() {
            1 => write!(f, "{}", names[0]),
            _ => write!(f, "one of {}", names.join(", ")),
        }
    }
}

impl<'de> de::Deserializer<'de> for Node<'de> {
    type Error = FieldError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        let at = self.path.clone();
        let visited = match (self.kind, self.table()) {
            (_, Some(table)) => visitor.visit_map(Entries::new(self, table)),
            (Kind::Value(Value::String(s)), _) => visitor.visit_borrowed_str(s.value()),
            (Kind::Value(Value::Integer(i)), _) => visitor.visit_i64(*i.value()),
            (Kind::Value(Value::Float(f)), _) => visitor.visit_f64(*f.value()),
            (Kind::Value(Value::Boolean(b)), _) => visitor.visit_bool(*b.value()),
            (Kind::Value(Value::Datetime(_)), _) => {
                Err(de::Error::invalid_type(self.unexpected(), &visitor))
            }
            (Kind::Value(Value::Array(a)), _) => {
                visitor.visit_seq(Elements::new(&self, a.iter().map(Kind::Value)))
            }
            (Kind::Tables(a), _) => {
                let tables = a.iter().map(|t| Kind::Table(t as &dyn TableLike));
                visitor.visit_seq(Elements::new(&self, tables))
            }
            _ => visitor.visit_unit(),
        };
        visited.map_err(|e| e.at(&at))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        let at = self.path.clone();
        visitor.visit_some(self).map_err(|e| e.at(&at))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        let at = self.path.clone();
        visitor.visit_newtype_struct(self).map_err(|e| e.at(&at))
    }

    /// A unit variant is written as its name; a variant with data as a
    /// table of one key, as toml reads them.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        let at = self.path.clone();
        let visited = match (self.kind, self.table()) {
            (Kind::Value(Value::String(s)), _) => {
                visitor.visit_enum(BorrowedStrDeserializer::new(s.value()))
            }
            (_, Some(table)) if table.len() == 1 => {
                visitor.visit_enum(MapAccessDeserializer::new(Entries::new(self, table)))
            }
            _ => Err(de::Error::invalid_type(self.unexpected(), &OneOf(variants))),
        };
        visited.map_err(|e| e.at(&at))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

/// The elements of an array or of an array of tables, each at its index.
struct Elements<'a, 'de, I> {
    parent: &'a Node<'de>,
    items: I,
    index: usize,
}

impl<'a, 'de, I> Elements<'a, 'de, I> {
    fn new(parent: &'a Node<'de>, items: I) -> Self {
        Elements {
            parent,
            items,
            index: 0,
        }
    }
}

impl<'de, I: Iterator<Item = Kind<'de>>> SeqAccess<'de> for Elements<'_, 'de, I> {
    type Error = FieldError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, FieldError> {
        let Some(kind) = self.items.next() else {
            return Ok(None);
        };
        let element = self.parent.child(kind, self.index.to_string());
        self.index += 1;
        // Errors raised after the element was read (an internally tagged
        // enum reads it first, then picks its variant) still belong to it.
        let at = element.path.clone();
        seed.deserialize(element).map(Some).map_err(|e| e.at(&at))
    }
}

/// The key-value pairs of a table, each value at its key.
struct Entries<'de> {
    table: Node<'de>,
    pairs: Box<dyn Iterator<Item = (&'de str, &'de Item)> + 'de>,
    value: Option<(&'de str, &'de Item)>,
}

impl<'de> Entries<'de> {
    fn new(table: Node<'de>, pairs: &'de dyn TableLike) -> Self {
        Entries {
            table,
            pairs: pairs.iter(),
            value: None,
        }
    }
}

impl<'de> MapAccess<'de> for Entries<'de> {
    type Error = FieldError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, FieldError> {
        let Some((key, item)) = self.pairs.next() else {
            return Ok(None);
        };
        self.value = Some((key, item));
        // An unknown field is the key's fault: place it there.
        let key_path = || self.table.child(Kind::None, key.to_string()).path;
        let read = seed.deserialize(BorrowedStrDeserializer::<FieldError>::new(key));
        read.map(Some).map_err(|e| e.at(&key_path()))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, FieldError> {
        let (key, item) = (self.value.take())
            .ok_or_else(|| de::Error::custom("a value asked for before its key"))?;
        let value = self.table.child(Kind::of(item), key.to_string());
        let at = value.path.clone();
        seed.deserialize(value).map_err(|e| e.at(&at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        inner: Vec<Inner>,
        mode: Option<Mode>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        name: String,
        #[serde(default)]
        sizes: Vec<u32>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Fast,
        Every(u32),
    }

    fn read(text: &str) -> Result<Outer, (String, String)> {
        let doc = toml_edit::Document::parse(text).unwrap();
        Outer::deserialize(Node::root(doc.as_item())).map_err(|e| (e.path().join("."), e.message))
    }

    #[test]
    fn reads_tables_arrays_and_enums() {
        let text =
            "mode = \"fast\"\n[[inner]]\nname = \"a\"\nsizes = [1, 2]\n[[inner]]\nname = \"b\"\n";
        let outer = read(text).unwrap();
        assert_eq!(outer.inner[0].sizes, [1, 2]);
        assert_eq!(
            (outer.inner[1].name.as_str(), outer.mode),
            ("b", Some(Mode::Fast))
        );
        let every = read("inner = []\nmode = { every = 3 }\n").unwrap();
        assert_eq!(every.mode, Some(Mode::Every(3)));
    }

    #[test]
    fn errors_name_their_field() {
        let missing = read("[[inner]]\nname = \"a\"\n[[inner]]\nsizes = []\n").unwrap_err();
        assert_eq!(
            missing,
            ("inner.1.name".into(), "missing field `name`".into())
        );
        let unknown = read("inner = [{ name = \"a\", colour = 1 }]\n").unwrap_err();
        assert_eq!(unknown.0, "inner.0.colour");
        assert!(
            unknown.1.starts_with("unknown field `colour`"),
            "{unknown:?}"
        );
        let wrong = read("inner = [{ name = \"a\", sizes = [1, -2] }]\n").unwrap_err();
        assert_eq!(wrong.0, "inner.0.sizes.1");
        assert!(wrong.1.contains("invalid value: integer `-2`"), "{wrong:?}");
        let variant = read("inner = []\nmode = \"slow\"\n").unwrap_err();
        assert_eq!(variant.0, "mode");
        assert!(
            variant.1.starts_with("unknown variant `slow`"),
            "{variant:?}"
        );
        assert_eq!(
            read("").unwrap_err(),
            (String::from("inner"), "missing field `inner`".into())
        );
    }
}
