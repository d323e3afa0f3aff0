#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An output byte buffer that owns its memory: a write is one capacity check and one `memcpy`
/// (`Array.append` checks uniqueness and capacity and walks the generic sequence path on every
/// call, and `withUnsafeMutableBytes` adds a closure). Not copyable, so the memory has exactly one
/// owner and is freed when the writer ends; `finish` hands the bytes over as an array or to a
/// closure.
public struct ByteWriter: ~Copyable {
    @usableFromInline var base: UnsafeMutableRawPointer
    @usableFromInline var capacity: Int
    @usableFromInline var length = 0

    public init(capacity: Int) {
        self.capacity = Swift.max(capacity, 16)
        base = UnsafeMutableRawPointer.allocate(byteCount: self.capacity, alignment: 8)
    }

    deinit { base.deallocate() }

    public var count: Int { length }

    @inlinable
    mutating func makeRoom(_ n: Int) {
        if length + n > capacity { grow(n) }
    }

    @usableFromInline
    mutating func grow(_ n: Int) {
        let grown = Swift.max(capacity * 2, length + n)
        let fresh = UnsafeMutableRawPointer.allocate(byteCount: grown, alignment: 8)
        fresh.copyMemory(from: base, byteCount: length)
        base.deallocate()
        base = fresh
        capacity = grown
    }

    @inlinable
    public mutating func write(_ bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        guard n > 0 else { return }
        makeRoom(n)
        memcpy(base + length, bytes.baseAddress!, n)
        length += n
    }

    @inlinable
    public mutating func write(_ bytes: UnsafeBufferPointer<UInt8>) { write(UnsafeRawBufferPointer(bytes)) }

    @inlinable
    public mutating func write(_ text: String) { text.withUTF8Bytes { write(UnsafeRawBufferPointer($0)) } }

    @inlinable
    public mutating func write(_ literal: StaticString) {
        makeRoom(literal.utf8CodeUnitCount)
        memcpy(base + length, literal.utf8Start, literal.utf8CodeUnitCount)
        length += literal.utf8CodeUnitCount
    }

    @inlinable
    public mutating func write(_ byte: UInt8) {
        makeRoom(1)
        base.storeBytes(of: byte, toByteOffset: length, as: UInt8.self)
        length += 1
    }

    /// A field line's bytes after a CRLF: `\r\n` name `: ` value, in one copy of each piece.
    @inlinable
    public mutating func writeField(_ name: UnsafeBufferPointer<UInt8>, _ value: UnsafeBufferPointer<UInt8>) {
        let n = 4 + name.count + value.count
        makeRoom(n)
        let p = base + length
        p.storeBytes(of: 0x0D, as: UInt8.self)
        (p + 1).storeBytes(of: 0x0A, as: UInt8.self)
        if name.count > 0 { memcpy(p + 2, name.baseAddress!, name.count) }
        (p + 2 + name.count).storeBytes(of: 0x3A, as: UInt8.self)
        (p + 3 + name.count).storeBytes(of: 0x20, as: UInt8.self)
        if value.count > 0 { memcpy(p + 4 + name.count, value.baseAddress!, value.count) }
        length += n
    }

    /// An integer in decimal, without making a `String`.
    public mutating func writeDecimal(_ value: Int) {
        DecimalDigits.withDigits(value) { write($0) }
    }

    /// Forgets what was written, keeping the room.
    public mutating func removeAll() { length = 0 }

    /// The bytes written so far, valid only in `body`.
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base, count: length))
    }

    /// The bytes written, as an array.
    public consuming func finish() -> [UInt8] {
        [UInt8](UnsafeRawBufferPointer(start: base, count: length))
    }
}
