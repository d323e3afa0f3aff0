#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Byte-for-byte equality of two byte runs with `memcmp`, for the comparisons made on every
/// request (the generic `Sequence.elementsEqual` walks one element at a time through iterators).
public enum ByteCompare {
    @inlinable
    public static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        guard a.count > 0 else { return true }
        return memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0
    }

    @inlinable
    public static func equal(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        equal(UnsafeRawBufferPointer(a), UnsafeRawBufferPointer(b))
    }

    @inlinable
    public static func equal(_ a: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
        literal.withUTF8Buffer { equal(a, UnsafeRawBufferPointer($0)) }
    }
}

extension String {
    /// Whether two strings have the same UTF-8 bytes (not `==`, which is canonical equivalence:
    /// NFC `é` equals NFD `e` + U+0301).
    @inlinable
    public func hasSameBytes(as other: String) -> Bool {
        guard utf8.count == other.utf8.count else { return false }
        return withUTF8Bytes { a in other.withUTF8Bytes { b in ByteCompare.equal(a, b) } }
    }

    /// Whether the string's UTF-8 bytes are `bytes`.
    @inlinable
    public func hasSameBytes(as bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        withUTF8Bytes { ByteCompare.equal($0, bytes) }
    }
}
