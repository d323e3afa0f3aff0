import CLibevent
import HookgateCore

/// Decodes a chunked body from an evbuffer as it arrives, moving the data into another evbuffer
/// (no copy) and dropping chunk extensions and trailer fields. Used for requests and for
/// upstream answers alike. Lines end at CRLF only; what a line may hold is decided by the
/// core's `ChunkedFraming`, so a bare LF or lone CR inside one is refused, never a line end.
struct ChunkedBodyReader {
    private enum Phase { case size, data(Int), dataEnd, trailer(Int) }
    enum Step {
        /// Wait for more input.
        case needMore
        /// The body is complete.
        case done
        /// Malformed framing, or `exceeded` a limit.
        case failed(String, exceeded: Limit?)
    }

    enum Limit {
        case body, trailer
    }

    private var phase = Phase.size
    let maximumBody: Int
    let maximumTrailer: Int

    init(maximumBody: Int, maximumTrailer: Int) {
        self.maximumBody = maximumBody
        self.maximumTrailer = maximumTrailer
    }

    mutating func read(from input: OpaquePointer, into body: OpaquePointer) -> Step {
        while true {
            switch phase {
            case .size:
                var eolLength = 0
                let eol = evbuffer_search_eol(input, nil, &eolLength, EVBUFFER_EOL_CRLF_STRICT)
                guard eol.pos >= 0 else {
                    return evbuffer_get_length(input) > 1024 ? .failed("chunk size line too long", exceeded: nil) : .needMore
                }
                let size = ChunkedFraming.chunkSize(UnsafeRawBufferPointer(start: evbuffer_pullup(input, eol.pos), count: eol.pos))
                evbuffer_drain(input, eol.pos + eolLength)
                guard let size else { return .failed("invalid chunk size", exceeded: nil) }
                if size == 0 {
                    phase = .trailer(0)
                } else if evbuffer_get_length(body) + size > maximumBody {
                    return .failed("chunked body exceeds \(maximumBody) bytes", exceeded: .body)
                } else {
                    phase = .data(size)
                }
            case .data(let remaining):
                let moved = min(remaining, evbuffer_get_length(input))
                if moved > 0 { evbuffer_remove_buffer(input, body, moved) }
                if moved < remaining {
                    phase = .data(remaining - moved)
                    return .needMore
                }
                phase = .dataEnd
            case .dataEnd:
                guard evbuffer_get_length(input) >= 2 else { return .needMore }
                let crlf = UnsafeRawBufferPointer(start: evbuffer_pullup(input, 2), count: 2)
                guard crlf[0] == 0x0D, crlf[1] == 0x0A else { return .failed("chunk data not followed by CRLF", exceeded: nil) }
                evbuffer_drain(input, 2)
                phase = .size
            case .trailer(let seen):
                var eolLength = 0
                let eol = evbuffer_search_eol(input, nil, &eolLength, EVBUFFER_EOL_CRLF_STRICT)
                guard eol.pos >= 0 else {
                    return seen + evbuffer_get_length(input) > maximumTrailer ? .failed("trailer section too large", exceeded: .trailer) : .needMore
                }
                if eol.pos == 0 {
                    evbuffer_drain(input, eolLength)
                    return .done
                }
                let total = seen + eol.pos + eolLength
                guard total <= maximumTrailer else { return .failed("trailer section too large", exceeded: .trailer) }
                guard ChunkedFraming.isValidTrailerLine(UnsafeRawBufferPointer(start: evbuffer_pullup(input, eol.pos), count: eol.pos)) else {
                    return .failed("invalid trailer field", exceeded: nil)
                }
                evbuffer_drain(input, eol.pos + eolLength)
                phase = .trailer(total)
            }
        }
    }
}
