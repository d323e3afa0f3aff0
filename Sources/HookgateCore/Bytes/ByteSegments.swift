/// A body held as one or more contiguous pieces (an evbuffer's chains, or one array in tests),
/// so that it can be hashed where it lies instead of being copied into one buffer.
public protocol ByteSegments {
    /// Calls `body` with each piece in order.
    func forEachSegment(_ body: (UnsafeRawBufferPointer) -> Void)
}

extension Array: ByteSegments where Element == UInt8 {
    public func forEachSegment(_ body: (UnsafeRawBufferPointer) -> Void) {
        withUnsafeBytes { body($0) }
    }
}

extension UnsafeRawBufferPointer: ByteSegments {
    public func forEachSegment(_ body: (UnsafeRawBufferPointer) -> Void) { body(self) }
}
