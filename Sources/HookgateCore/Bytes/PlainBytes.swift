/// Eight bytes at once: whether every one of them is a visible ASCII character or a space
/// (0x20-0x7E), the bytes a head's lines, header values and JSON strings mostly consist of.
enum PlainBytes {
    @inline(__always)
    static func isPlain(_ w: UInt64) -> Bool {
        // A byte below 0x20 borrows in `w - 0x20…` and sets its top bit; 0x7F carries into it in
        // `w + 0x01…`; a byte of 0x80 or above has it already. A borrow or carry crossing into the
        // next byte only happens after a byte that is already flagged.
        ((w &- 0x2020_2020_2020_2020) | (w &+ 0x0101_0101_0101_0101) | w) & 0x8080_8080_8080_8080 == 0
    }

    /// Whether every byte of `bytes` is plain.
    static func allPlain(_ bytes: UnsafeRawBufferPointer) -> Bool {
        all(bytes, words: isPlain, bytes: { $0 >= 0x20 && $0 < 0x7F })
    }

    /// Whether the word holds the byte `b` (the classic zero-byte test on `w ^ b…`, exact).
    @inline(__always)
    static func contains(_ w: UInt64, _ b: UInt8) -> Bool {
        let x = w ^ (UInt64(b) &* 0x0101_0101_0101_0101)
        return (x &- 0x0101_0101_0101_0101) & ~x & 0x8080_8080_8080_8080 != 0
    }

    /// Whether `bytes` can be written inside a JSON string as they are: plain, with no `"` or `\`.
    static func needNoJSONEscape(_ bytes: UnsafeRawBufferPointer) -> Bool {
        all(bytes, words: { isPlain($0) && !contains($0, 0x22) && !contains($0, 0x5C) },
            bytes: { $0 >= 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C })
    }

    /// Whether every eight-byte word satisfies `words` and every byte of the tail `bytes`.
    @inline(__always)
    private static func all(_ buffer: UnsafeRawBufferPointer, words: (UInt64) -> Bool, bytes: (UInt8) -> Bool) -> Bool {
        var i = 0
        let n = buffer.count
        while i + 8 <= n {
            guard words(buffer.loadUnaligned(fromByteOffset: i, as: UInt64.self)) else { return false }
            i += 8
        }
        while i < n {
            guard bytes(buffer[i]) else { return false }
            i += 1
        }
        return true
    }
}
