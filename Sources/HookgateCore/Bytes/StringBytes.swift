extension String {
    /// Calls `body` with the string's UTF-8 bytes, in place when the string stores them
    /// contiguously (native and small strings), so no copy and no retain of a mutable copy
    /// (`withUTF8` needs `var`, which copies the reference and retains it).
    @inlinable
    public func withUTF8Bytes<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        if let r = try utf8.withContiguousStorageIfAvailable(body) { return r }
        return try ContiguousArray(utf8).withUnsafeBufferPointer(body)
    }
}
