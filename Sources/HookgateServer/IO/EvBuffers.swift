import CLibevent
import HookgateCore

/// A libevent header list (`struct evkeyvalq`) seen through the core's `HeaderFields`.
struct EvHeaders: HeaderFields {
    let list: UnsafeMutablePointer<evkeyvalq>

    func value(named name: String) -> HeaderValue {
        var found: UnsafeMutablePointer<evkeyval>?
        var cursor = hg_headers_first(list)
        while let header = cursor {
            if strcasecmp(header.pointee.key, name) == 0 {
                if found != nil { return .repeated }
                found = header
            }
            cursor = hg_headers_next(header)
        }
        return found.map { .one(String(cString: $0.pointee.value)) } ?? .missing
    }
}

/// An evbuffer's bytes where they lie, for hashing without a copy.
struct EvBufferSegments: ByteSegments {
    let buffer: OpaquePointer

    func forEachSegment(_ body: (UnsafeRawBufferPointer) -> Void) {
        let count = Int(evbuffer_peek(buffer, -1, nil, nil, 0))
        guard count > 0 else { return }
        withUnsafeTemporaryAllocation(of: iovec.self, capacity: count) { vectors in
            let filled = Int(evbuffer_peek(buffer, -1, nil, vectors.baseAddress, Int32(count)))
            for vector in vectors.prefix(filled) {
                body(UnsafeRawBufferPointer(start: vector.iov_base, count: vector.iov_len))
            }
        }
    }

    /// The whole buffer as one contiguous range (one pull-up, done once per request).
    func contiguous() -> UnsafeRawBufferPointer {
        let length = evbuffer_get_length(buffer)
        guard length > 0, let start = evbuffer_pullup(buffer, -1) else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: start, count: length)
    }
}
