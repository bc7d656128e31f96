//! Which partition an order's records are in: the one librdkafka's default
//! partitioner (`consistent_random`) picks for its key, which every service of
//! the pipeline publishes with: CRC32 of the key, modulo the partition count.

/// The partition of `key` in a topic of `partitions` partitions.
pub fn partition_of(key: &[u8], partitions: i32) -> i32 {
    (crc32fast::hash(key) % partitions as u32) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_crc32() {
        // CRC-32 (IEEE)'s check value: crc32("123456789") = 0xCBF43926.
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
        assert_eq!(partition_of(b"123456789", 3), (0xCBF4_3926u32 % 3) as i32);
        assert_eq!(partition_of(b"1042", 1), 0);
    }
}
