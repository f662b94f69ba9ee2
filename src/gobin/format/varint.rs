//! Unsigned LEB128 varints as Go's `encoding/binary.Uvarint` writes them (pclntab, buildinfo).

/// Decodes a uvarint at the start of `bytes`: (value, bytes used), or None if truncated or
/// longer than 64 bits (as Go's `binary.Uvarint` reports overflow).
#[inline]
pub fn read_uvarint(bytes: &[u8]) -> Option<(u64, usize)> {
    // Most pc-value deltas fit in one byte: that case is small enough to inline.
    match bytes.first() {
        Some(&byte) if byte & 0x80 == 0 => Some((u64::from(byte), 1)),
        _ => read_long_uvarint(bytes),
    }
}

/// [`read_uvarint`] of any length.
fn read_long_uvarint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &byte) in bytes.iter().enumerate().take(10) {
        // The tenth byte holds bit 63 only.
        if i == 9 && byte > 1 {
            return None;
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::read_uvarint;

    #[test]
    fn decodes() {
        assert_eq!(read_uvarint(&[0x00]), Some((0, 1)));
        assert_eq!(read_uvarint(&[0x96, 0x01]), Some((150, 2)));
        assert_eq!(read_uvarint(&[0x80]), None);
        assert_eq!(read_uvarint(&[]), None);
        let mut max = [0xff; 10];
        max[9] = 0x01;
        assert_eq!(read_uvarint(&max), Some((u64::MAX, 10)));
        max[9] = 0x02;
        assert_eq!(read_uvarint(&max), None);
    }
}
