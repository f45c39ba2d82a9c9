//! Redis Cluster's key slot: CRC16 (XMODEM) of the key, or of its hash tag
//! (the part between the first `{` and the next `}`, when non-empty), modulo
//! 16384: where a cluster keeps a key, for placing stream keys on shards
//! and routing commands to them (docs/cluster.md, "Slots and hash tags").

/// Slots in a Redis Cluster.
pub const SLOTS: u16 = 16384;

/// The slot `key` hashes to.
pub fn key_slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key)) % SLOTS
}

/// Whether `key` has a hash tag: keys sharing one share a slot.
pub fn has_hash_tag(key: &[u8]) -> bool {
    !std::ptr::eq(hash_tag(key), key)
}

/// The bytes Redis hashes: the first `{…}`'s content when it has any, else
/// the whole key (`{}` and an unclosed `{` count for nothing).
fn hash_tag(key: &[u8]) -> &[u8] {
    let Some(open) = key.iter().position(|&b| b == b'{') else {
        return key;
    };
    match key[open + 1..].iter().position(|&b| b == b'}') {
        Some(len) if len > 0 => &key[open + 1..open + 1 + len],
        _ => key,
    }
}

/// CRC-16/XMODEM (polynomial 0x1021, initial 0), bit by bit: keys are short
/// and routing computes a slot once per command, so a table buys nothing.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = match crc & 0x8000 {
                0 => crc << 1,
                _ => (crc << 1) ^ 0x1021,
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_value_of_crc16_xmodem() {
        assert_eq!(crc16(b"123456789"), 0x31C3);
    }

    #[test]
    fn hash_tags_as_the_cluster_specification_defines_them() {
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") % SLOTS);
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"foo{bar"), crc16(b"foo{bar") % SLOTS);
        assert_eq!(key_slot(b""), 0);
        assert!(has_hash_tag(b"sd:r1:{orders}:p3"));
        assert!(!has_hash_tag(b"sd:r1:orders:p3") && !has_hash_tag(b"a{}b"));
    }
}
