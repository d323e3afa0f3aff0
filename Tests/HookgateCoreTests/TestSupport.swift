@testable import HookgateCore

/// Shared fixtures: a 43-byte secret, a guide-shaped CloudEvents body and a clock reading for
/// the VECU scheme, plus a body type that arrives in several pieces (as an evbuffer's chains do).

let vecuSecret = Array("whsec_test_0123456789abcdef0123456789abcdef".utf8)
let rotatedSecret = Array("whsec_next_fedcba9876543210fedcba9876543210".utf8)

/// The gateway's clock in these tests, and the timestamp senders stamp by default.
let fixedNow: Int64 = 1_736_951_400

let sampleBody = Array(
    #"{"id":"evt-1","source":"vecu.custody-service","type":"custody.vehicle.released","specversion":"1.0","data":{"vin":"5XXXX00000XEXMPL0"}}"#.utf8
)

/// A body delivered as separate pieces; hashing must not depend on where the cuts are.
struct SegmentedBody: ByteSegments {
    var pieces: [[UInt8]]

    init(_ pieces: [[UInt8]]) { self.pieces = pieces }

    /// `bytes` cut before each of `cuts` (ascending offsets).
    init(_ bytes: [UInt8], cutAt cuts: [Int]) {
        var pieces: [[UInt8]] = []
        var start = 0
        for cut in cuts {
            pieces.append(Array(bytes[start..<cut]))
            start = cut
        }
        pieces.append(Array(bytes[start...]))
        self.pieces = pieces
    }

    func forEachSegment(_ body: (UnsafeRawBufferPointer) -> Void) {
        for piece in pieces { piece.withUnsafeBytes(body) }
    }
}

/// The delivery headers a VECU sender would attach to `body` at `timestamp`.
func vecuHeaders(
    body: [UInt8] = sampleBody,
    timestamp: Int64 = fixedNow,
    secret: [UInt8] = vecuSecret,
    extra: [(String, String)] = []
) -> [(String, String)] {
    [
        ("X-VECU-Timestamp", "\(timestamp)"),
        ("X-VECU-Signature", VecuSignatureScheme.sign(secret: secret, timestamp: timestamp, body: body)),
    ] + extra
}

extension String {
    var bytes: [UInt8] { Array(utf8) }
}
