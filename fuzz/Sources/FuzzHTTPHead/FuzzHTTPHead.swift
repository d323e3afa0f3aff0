// libFuzzer target: the strict HTTP/1.x request-head parser (HTTPRequestHead.parse) and the
// chunk-size line parser (parseChunkSize), with structural oracles and a reference chunk-size
// implementation. Built by fuzz/run.
import HookgateCore

private func referenceChunkSize(_ line: [UInt8]) -> Int? {
    var size = 0
    var digits = 0
    for (index, c) in line.enumerated() {
        let v: Int
        switch c {
        case 0x30...0x39: v = Int(c - 0x30)
        case 0x61...0x66: v = Int(c - 0x61 + 10)
        case 0x41...0x46: v = Int(c - 0x41 + 10)
        case 0x3B: return digits > 0 ? size : nil
        case 0x20, 0x09:
            // RFC 9112: chunk-size [ BWS ";" chunk-ext ] -- whitespace only before an extension
            let rest = line[(index + 1)...].drop { $0 == 0x20 || $0 == 0x09 }
            return digits > 0 && (rest.isEmpty || rest.first == 0x3B) ? size : nil
        default: return nil
        }
        digits += 1
        if digits > 12 { return nil }
        size = size * 16 + v
    }
    return digits > 0 ? size : nil
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTPHead(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    bytes.withUnsafeBytes { raw in
        switch HTTPRequestHead.parse(raw) {
        case .success(let head):
            precondition(!head.method.isEmpty && head.method.utf8.count <= 32)
            precondition(head.target.hasPrefix("/") || head.target == "*")
            precondition(head.headers.count <= HTTPRequestHead.maximumHeaderCount)
            precondition(bytes.count >= 4 && bytes.suffix(4) == [0x0D, 0x0A, 0x0D, 0x0A])
            precondition(!bytes.contains(0), "a NUL byte was accepted")
            if case .length(let n) = head.framing { precondition(n >= 0) }
            if case .chunked = head.framing { precondition(head.version == .http11) }
            let pairs = head.headers.pairs
            for (name, value) in pairs {
                precondition(!name.isEmpty && !name.utf8.contains(0x3A) && !name.utf8.contains(0x20))
                precondition(!value.utf8.contains(0x0D) && !value.utf8.contains(0x0A))
                // a lookup by name agrees with a plain count over the pairs
                let count = pairs.filter { $0.name.lowercased() == name.lowercased() }.count
                switch head.headers.value(named: name) {
                case .one(let found): precondition(count == 1 && found == value)
                case .repeated: precondition(count > 1)
                case .missing: preconditionFailure("\(name) not found by name")
                }
            }
            // fields written byte for byte equal the same fields written from their strings
            var fromBytes = HeadWriter(status: 200)
            for i in 0..<head.headers.count { fromBytes.add(field: i, of: head.headers) }
            var fromStrings = HeadWriter(status: 200)
            fromStrings.add(contentsOf: pairs)
            precondition(fromBytes.finish(contentLength: 0) == fromStrings.finish(contentLength: 0))
            let rejection = HTTPRequestHead.Failure.malformed("x").rejection
            precondition(rejection.status == 400)
        case .failure(let failure):
            let status = failure.rejection.status
            precondition([400, 417, 431, 501, 505].contains(status), "unexpected status \(status)")
        }
        // every line of the input as a chunk-size line
        var start = 0
        for i in 0...bytes.count where i == bytes.count || bytes[i] == 0x0A {
            var end = i
            if end > start, bytes[end - 1] == 0x0D { end -= 1 }
            let line = Array(bytes[start..<end])
            // The reference reads the size only; the parser also checks the extensions, so it
            // may refuse a line the reference accepts, never the other way round.
            let got = line.withUnsafeBytes { HTTPRequestHead.parseChunkSize($0) }
            precondition(got == nil || got == referenceChunkSize(line), "parseChunkSize disagrees with the reference on \(line): \(String(describing: got)) vs \(String(describing: referenceChunkSize(line)))")
            if let got { precondition(got >= 0 && got < 1 << 48) }
            start = i + 1
        }
    }
    return 0
}
