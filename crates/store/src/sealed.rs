//! Stored values that carry their own checksum (sled layout 3).
//!
//! sled hands back whatever bytes its file holds: a byte damaged in a value is read back as
//! it is. So the sled store seals every value it writes with a CRC-32 and checks it on read.
//! A sealed JSON value is the JSON, a NUL byte, then the CRC-32 (u32, big-endian) of the JSON;
//! serde_json never writes a raw NUL, so a value written before layout 3 (bare JSON) is told
//! from a sealed one by its fifth byte from the end. The 16-byte head is told by its length
//! (16 bare, 21 sealed).

/// The length of the seal: a NUL byte and the CRC.
pub(crate) const SEAL: usize = 5;

/// `bytes` followed by their seal.
pub(crate) fn seal(mut bytes: Vec<u8>) -> Vec<u8> {
    let crc = crc32fast::hash(&bytes);
    bytes.push(0);
    bytes.extend_from_slice(&crc.to_be_bytes());
    bytes
}

/// The JSON of a value, checked against its seal when it has one (values written before
/// layout 3 have none): an error says the value was damaged.
pub(crate) fn unseal_json(value: &[u8]) -> Result<&[u8], String> {
    match value.len().checked_sub(SEAL) {
        Some(at) if value[at] == 0 => check(&value[..at], &value[at + 1..]),
        _ => Ok(value),
    }
}

/// The bytes of a value of `bare` bytes before layout 3 and `bare` + [`SEAL`] since.
pub(crate) fn unseal_sized(value: &[u8], bare: usize) -> Result<&[u8], String> {
    if value.len() == bare {
        return Ok(value);
    }
    if value.len() != bare + SEAL || value[bare] != 0 {
        return Err(format!("{} bytes, expected {bare} or {}", value.len(), bare + SEAL));
    }
    check(&value[..bare], &value[bare + 1..])
}

fn check<'a>(bytes: &'a [u8], crc: &[u8]) -> Result<&'a [u8], String> {
    let stored = u32::from_be_bytes(crc.try_into().expect("4 bytes"));
    let actual = crc32fast::hash(bytes);
    if stored == actual {
        Ok(bytes)
    } else {
        Err(format!(
            "its checksum does not match ({actual:08x}, stored {stored:08x}): the bytes on disk were damaged"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_read_back_and_a_changed_byte_is_caught() {
        let json = br#"{"text":"record 18: stuvwxyz"}"#.to_vec();
        let sealed = seal(json.clone());
        assert_eq!(unseal_json(&sealed).unwrap(), &json[..]);
        // Values written before layout 3 read as they are.
        assert_eq!(unseal_json(&json).unwrap(), &json[..]);
        for at in 0..sealed.len() {
            let mut damaged = sealed.clone();
            damaged[at] ^= 0x20;
            // Either the damage is caught, or it made the seal look absent and the value is
            // no longer JSON.
            match unseal_json(&damaged) {
                Err(e) => assert!(e.contains("checksum does not match"), "{e}"),
                Ok(bytes) => assert!(serde_json::from_slice::<serde_json::Value>(bytes).is_err()),
            }
        }
    }

    #[test]
    fn sized_values_read_back_old_and_new() {
        let head = [7u8; 16];
        assert_eq!(unseal_sized(&head, 16).unwrap(), &head);
        let sealed = seal(head.to_vec());
        assert_eq!(unseal_sized(&sealed, 16).unwrap(), &head);
        let mut damaged = sealed.clone();
        damaged[3] ^= 1;
        assert!(unseal_sized(&damaged, 16).is_err());
        assert!(unseal_sized(&sealed[..20], 16).unwrap_err().contains("20 bytes"));
    }
}
