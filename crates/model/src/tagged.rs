//! Reading internally tagged enums (`{"type": "text", ...}`) without buffering them.
//!
//! serde's derived `#[serde(tag = "type")]` reads the whole object into an intermediate tree
//! before it looks at the tag, then reads the variant from that tree: every block of every
//! stored message is read twice. Every serializer here writes the tag first, so
//! [`deserialize`] reads the first key, and when it is the tag, reads the variant straight from
//! the rest of the object. When the tag comes later (JSON written by hand, say), the object is
//! read into a [`serde_json::Value`] first, as serde would have done.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserializer;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, MapAccess, Visitor};
use serde_json::{Map, Value};

/// An enum written as an object whose key [`Tagged::TAG`] names the variant.
pub trait Tagged: Sized {
    /// The key naming the variant.
    const TAG: &'static str;
    /// The variants' names, for errors.
    const VARIANTS: &'static [&'static str];
    /// What the enum is, for errors ("a content block").
    const EXPECTING: &'static str;

    /// Reads the variant named `tag` from `rest`, the object's other keys.
    fn variant<'de, D: Deserializer<'de>>(tag: &str, rest: D) -> Result<Self, D::Error>;
}

/// Reads a [`Tagged`] enum (see the module docs).
pub fn deserialize<'de, D: Deserializer<'de>, T: Tagged>(deserializer: D) -> Result<T, D::Error> {
    deserializer.deserialize_map(TaggedVisitor(PhantomData))
}

/// Reads the rest of an object whose first key, `first`, is not the tag into a JSON object.
pub fn rest_of<'de, A: MapAccess<'de>>(
    first: String,
    mut map: A,
) -> Result<Map<String, Value>, A::Error> {
    let mut object = Map::new();
    object.insert(first, map.next_value()?);
    while let Some((key, value)) = map.next_entry::<String, Value>()? {
        if object.contains_key(&key) {
            return Err(de::Error::custom(format_args!("duplicate field `{key}`")));
        }
        object.insert(key, value);
    }
    Ok(object)
}

/// Reads the variant of `T` from an object read whole.
pub fn from_object<T: Tagged, E: de::Error>(mut object: Map<String, Value>) -> Result<T, E> {
    let tag = match object.remove(T::TAG) {
        Some(Value::String(tag)) => tag,
        Some(other) => {
            return Err(E::invalid_type(unexpected(&other), &"a string naming the variant"));
        }
        None => return Err(E::missing_field(T::TAG)),
    };
    T::variant(&tag, Value::Object(object)).map_err(E::custom)
}

fn unexpected(value: &Value) -> de::Unexpected<'_> {
    match value {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(_) => de::Unexpected::Other("a number"),
        Value::String(s) => de::Unexpected::Str(s),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
}

/// Reads the variant named `tag` of `T` from the rest of `map`, where a key of `taken` (the
/// tag and any key read before it) is a duplicate, refused as serde's derived form refuses it.
pub fn variant_from_map<'de, T: Tagged, A: MapAccess<'de>>(
    tag: &str,
    map: A,
    taken: &'static [&'static str],
) -> Result<T, A::Error> {
    T::variant(tag, MapAccessDeserializer::new(Rest { map, taken }))
}

/// The rest of an object, refusing the keys already taken.
struct Rest<A> {
    map: A,
    taken: &'static [&'static str],
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Rest<A> {
    type Error = A::Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let Some(key) = self.map.next_key::<Key<'de>>()? else { return Ok(None) };
        if let Some(taken) = self.taken.iter().find(|t| **t == key.0) {
            return Err(de::Error::custom(format_args!("duplicate field `{taken}`")));
        }
        match key.0 {
            Cow::Borrowed(key) => {
                seed.deserialize(de::value::BorrowedStrDeserializer::new(key)).map(Some)
            }
            Cow::Owned(key) => seed.deserialize(de::value::StringDeserializer::new(key)).map(Some),
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

struct TaggedVisitor<T>(PhantomData<T>);

impl<'de, T: Tagged> Visitor<'de> for TaggedVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let Some(first) = map.next_key::<Key<'de>>()? else {
            return Err(de::Error::missing_field(T::TAG));
        };
        if first.0 == T::TAG {
            let tag: Key<'de> = map.next_value()?;
            return variant_from_map(&tag.0, map, &[T::TAG]);
        }
        from_object(rest_of(first.0.into_owned(), map)?)
    }
}

/// A string read without a copy when the input allows it.
pub struct Key<'de>(pub Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key<'de>, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::{ContentBlock, Message, ToolResultBlock};

    #[test]
    fn a_block_reads_the_same_whatever_the_place_of_its_tag() {
        let blocks = [
            json!({ "type": "text", "text": "a \"quoted\"\nline" }),
            json!({ "type": "thinking", "text": "hm", "signature": "c2ln" }),
            json!({ "type": "tool_use", "id": "t1", "name": "f", "input": { "b": 1, "a": [2.50] } }),
            json!({ "type": "cache_point" }),
            json!({ "type": "tool_result", "tool_use_id": "t1",
                    "content": { "blocks": [{ "type": "text", "text": "x" },
                                            { "json": { "k": 1 }, "type": "json" }] } }),
        ];
        for block in blocks {
            let text = block.to_string();
            let first: ContentBlock = serde_json::from_str(&text).unwrap();
            // The same keys with the tag last.
            let mut object = block.as_object().unwrap().clone();
            let tag = object.remove("type").unwrap();
            object.insert("type".into(), tag);
            let last: ContentBlock =
                serde_json::from_str(&serde_json::Value::Object(object).to_string()).unwrap();
            assert_eq!(first, last, "{text}");
            // From a value too, and back to the same text.
            assert_eq!(serde_json::from_value::<ContentBlock>(block.clone()).unwrap(), first);
            assert_eq!(serde_json::to_value(&first).unwrap(), block);
        }
    }

    #[test]
    fn a_block_without_a_known_tag_is_refused_with_the_reason() {
        let error =
            |text: &str| serde_json::from_str::<ContentBlock>(text).unwrap_err().to_string();
        assert!(error(r#"{"type":"hologram"}"#).contains("unknown variant `hologram`"));
        assert!(error(r#"{"text":"no tag"}"#).contains("missing field `type`"));
        assert!(error(r#"{"text":"x","type":7}"#).contains("invalid type"));
        assert!(error(r#"{"type":"text"}"#).contains("missing field `text`"));
        assert!(error(r#"{"text":"a","text":"b","type":"text"}"#).contains("duplicate field"));
        assert!(error(r#"{"type":"text","text":"a","type":"image"}"#).contains("duplicate field"));
        assert!(error(r#"{"type":"text","text":"a","text":"b"}"#).contains("duplicate field"));
        assert!(error("[]").contains("a content block"));
        let error = serde_json::from_str::<ToolResultBlock>(r#"{"type":"text"}"#).unwrap_err();
        assert!(error.to_string().contains("missing field `text`"), "{error}");
        // Inside a message, the error says where.
        let error = serde_json::from_str::<Message>(
            r#"{"role":"user","content":[{"type":"text","text":"ok"},{"type":"nope"}]}"#,
        )
        .unwrap_err();
        assert!(error.to_string().contains("line 1 column"), "{error}");
    }
}
