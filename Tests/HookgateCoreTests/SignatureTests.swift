import Testing
@testable import HookgateCore

/// A request as the VECU scheme sees it, and the reason it should be refused (nil: accepted).
struct SignatureCase: Sendable, CustomTestStringConvertible {
    var testDescription: String
    var headers: [(String, String)]
    var body: [UInt8] = sampleBody
    var secrets: [[UInt8]] = [vecuSecret]
    var expected: Reason?
}

private let goodSignature = VecuSignatureScheme.sign(secret: vecuSecret, timestamp: fixedNow, body: sampleBody)
private let goodHex = String(goodSignature.dropFirst("sha256=".count))
private let stamp = ("X-VECU-Timestamp", "\(fixedNow)")

private func withSignature(_ value: String) -> [(String, String)] {
    [stamp, ("X-VECU-Signature", value)]
}

private let signatureCases: [SignatureCase] = [
    .init(testDescription: "good signature", headers: vecuHeaders(), expected: nil),
    .init(testDescription: "header names are case-insensitive",
          headers: [("x-vecu-timestamp", "\(fixedNow)"), ("x-vecu-signature", goodSignature)], expected: nil),
    .init(testDescription: "tampered body", headers: vecuHeaders(),
          body: Array(sampleBody.dropLast()) + [UInt8(ascii: " ")], expected: .signatureMismatch),
    .init(testDescription: "one extra byte in the body", headers: vecuHeaders(),
          body: sampleBody + [UInt8(ascii: "\n")], expected: .signatureMismatch),
    .init(testDescription: "empty body signed over a non-empty one", headers: vecuHeaders(),
          body: [], expected: .signatureMismatch),
    .init(testDescription: "signed for another timestamp",
          headers: [stamp, ("X-VECU-Signature", VecuSignatureScheme.sign(secret: vecuSecret, timestamp: fixedNow - 1, body: sampleBody))],
          expected: .signatureMismatch),
    .init(testDescription: "wrong secret", headers: vecuHeaders(), secrets: [rotatedSecret], expected: .signatureMismatch),
    .init(testDescription: "rotation: matches the second of two secrets", headers: vecuHeaders(),
          secrets: [rotatedSecret, vecuSecret], expected: nil),
    .init(testDescription: "rotation: matches the first of two secrets", headers: vecuHeaders(),
          secrets: [vecuSecret, rotatedSecret], expected: nil),
    .init(testDescription: "rotation: matches neither secret", headers: vecuHeaders(secret: Array("x".utf8) + vecuSecret),
          secrets: [vecuSecret, rotatedSecret], expected: .signatureMismatch),
    .init(testDescription: "upper-case hex", headers: withSignature("sha256=" + goodHex.uppercased()), expected: nil),
    .init(testDescription: "hex without the sha256= prefix", headers: withSignature(goodHex), expected: .signatureMalformed),
    .init(testDescription: "SHA256= prefix in upper case", headers: withSignature("SHA256=" + goodHex), expected: .signatureMalformed),
    .init(testDescription: "sha1= prefix", headers: withSignature("sha1=" + goodHex), expected: .signatureMalformed),
    .init(testDescription: "63 hex digits", headers: withSignature("sha256=" + goodHex.dropLast()), expected: .signatureMalformed),
    .init(testDescription: "65 hex digits", headers: withSignature("sha256=" + goodHex + "0"), expected: .signatureMalformed),
    .init(testDescription: "non-hex digit", headers: withSignature("sha256=" + goodHex.dropLast() + "g"), expected: .signatureMalformed),
    .init(testDescription: "non-ASCII character", headers: withSignature("sha256=" + goodHex.dropLast(2) + "é"),
          expected: .signatureMalformed),
    .init(testDescription: "sha256= with an empty value", headers: withSignature("sha256="), expected: .signatureMalformed),
    .init(testDescription: "empty signature header", headers: withSignature(""), expected: .signatureMalformed),
    .init(testDescription: "space after the prefix", headers: withSignature("sha256= " + goodHex.dropLast()), expected: .signatureMalformed),
    .init(testDescription: "missing signature header", headers: [stamp], expected: .signatureMissing),
    .init(testDescription: "repeated signature header (both correct)",
          headers: [stamp, ("X-VECU-Signature", goodSignature), ("x-vecu-signature", goodSignature)],
          expected: .signatureMalformed),
]

@Suite("VECU signature verification")
struct SignatureTests {
    @Test(arguments: signatureCases)
    func verify(_ c: SignatureCase) {
        let scheme = VecuSignatureScheme(secrets: c.secrets, toleranceSeconds: 300)
        let rejection = scheme.verify(headers: HeaderList(c.headers), body: c.body, now: fixedNow)
        #expect(rejection?.reason == c.expected)
    }

    /// Any two-piece split of the body, plus a many-piece split with empty pieces, hashes as one piece.
    @Test func segmentedBodyHashesLikeOneBuffer() {
        let scheme = VecuSignatureScheme(secrets: [vecuSecret], toleranceSeconds: 300)
        let headers = HeaderList(vecuHeaders())
        for cut in 0...sampleBody.count {
            let body = SegmentedBody(sampleBody, cutAt: [cut])
            #expect(scheme.verify(headers: headers, body: body, now: fixedNow) == nil, "cut at \(cut)")
        }
        let ragged = SegmentedBody(sampleBody, cutAt: [0, 1, 1, 7, 40, 41, 90, sampleBody.count])
        #expect(ragged.pieces.count == 9)
        #expect(scheme.verify(headers: headers, body: ragged, now: fixedNow) == nil)

        var tampered = sampleBody
        tampered[50] ^= 0x01
        let tamperedPieces = SegmentedBody(tampered, cutAt: [10, 60])
        #expect(scheme.verify(headers: headers, body: tamperedPieces, now: fixedNow)?.reason == .signatureMismatch)
    }

    @Test func rawBufferBodyVerifies() {
        let scheme = VecuSignatureScheme(secrets: [vecuSecret], toleranceSeconds: 300)
        let rejection = sampleBody.withUnsafeBytes { raw in
            scheme.verify(headers: HeaderList(vecuHeaders()), body: raw, now: fixedNow)
        }
        #expect(rejection == nil)
    }

    @Test func segmentedMACEqualsWholeMAC() {
        let key = HMACSHA256Key(key: vecuSecret)
        let whole = key.authenticate(sampleBody)
        let pieces = SegmentedBody(sampleBody, cutAt: [3, 3, 64, 100])
        let split = key.authenticate { emit in pieces.forEachSegment(emit) }
        #expect(split == whole)
        #expect(split.hex == whole.hex)
    }

    /// Computed with Python:
    /// `hmac.new(secret, b'1736951400.' + body, hashlib.sha256).hexdigest()`.
    @Test func pythonVectorForTheVecuMessageFormat() {
        let expected = "sha256=c6f3a3de4ede6b76d25d50a0bcfafeb63c9f827f76b082d141299f67891463c5"
        #expect(VecuSignatureScheme.sign(secret: vecuSecret, timestamp: fixedNow, body: sampleBody) == expected)
        let scheme = VecuSignatureScheme(secrets: [vecuSecret], toleranceSeconds: 300)
        let headers = HeaderList([("X-VECU-Timestamp", "1736951400"), ("X-VECU-Signature", expected)])
        #expect(scheme.verify(headers: headers, body: sampleBody, now: fixedNow) == nil)
        // Python: hmac.new(secret, b'1736951400.', hashlib.sha256).hexdigest() (empty body).
        #expect(VecuSignatureScheme.sign(secret: vecuSecret, timestamp: fixedNow, body: [])
                == "sha256=161a4c12741bc3aed287348e5f415c0abab29688bde4f5ed4a22d988beb80cbe")
    }

    @Test(arguments: [Int64(0), 1, fixedNow, 999_999_999_999])
    func signRoundTripsThroughVerify(timestamp: Int64) {
        let scheme = VecuSignatureScheme(secrets: [vecuSecret], toleranceSeconds: 300)
        let headers = HeaderList(vecuHeaders(timestamp: timestamp))
        #expect(scheme.verify(headers: headers, body: sampleBody, now: timestamp) == nil)
        #expect(scheme.verify(headers: headers, body: sampleBody + [0x20], now: timestamp)?.reason == .signatureMismatch)
    }

    @Test func schemeBuiltFromConfigurationVerifies() throws {
        let verify = Configuration.Verify(
            scheme: .vecu,
            secrets: [Secret(origin: .literal, bytes: rotatedSecret), Secret(origin: .literal, bytes: vecuSecret)],
            tolerance: .seconds(60)
        )
        let scheme = try #require(SignatureSchemeName.vecu.makeScheme(verify) as? VecuSignatureScheme)
        #expect(scheme.window.toleranceSeconds == 60)
        #expect(scheme.verify(headers: HeaderList(vecuHeaders()), body: sampleBody, now: fixedNow + 60) == nil)
        #expect(scheme.verify(headers: HeaderList(vecuHeaders()), body: sampleBody, now: fixedNow + 61)?.reason == .timestampOutsideWindow)
    }
}

/// RFC 4231 HMAC-SHA256 known answers, plus block-size boundary keys computed with Python.
struct HMACVector: Sendable, CustomTestStringConvertible {
    var testDescription: String
    var key: [UInt8]
    var message: [UInt8]
    var hex: String
}

private let hmacVectors: [HMACVector] = [
    .init(testDescription: "RFC 4231 test case 1", key: Array(repeating: 0x0b, count: 20), message: "Hi There".bytes,
          hex: "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    .init(testDescription: "RFC 4231 test case 2", key: "Jefe".bytes, message: "what do ya want for nothing?".bytes,
          hex: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    .init(testDescription: "RFC 4231 test case 6 (131-byte key)", key: Array(repeating: 0xaa, count: 131),
          message: "Test Using Larger Than Block-Size Key - Hash Key First".bytes,
          hex: "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    .init(testDescription: "64-byte key (exactly one block, Python)", key: Array(repeating: UInt8(ascii: "k"), count: 64),
          message: "exactly one block".bytes, hex: "521b48c3c879586f93e372c93d693664ea7a718f14e1a7eae1730b9ea2928b3b"),
    .init(testDescription: "65-byte key (hashed first, Python)", key: Array(repeating: UInt8(ascii: "k"), count: 65),
          message: "exactly one block".bytes, hex: "6974ffc3b28cc58e05a28f41774a83a2d95d1cba57a075171ae1a9134e09642b"),
]

@Suite("HMAC-SHA256 and Digest32")
struct HMACTests {
    @Test(arguments: hmacVectors)
    func knownAnswer(_ v: HMACVector) throws {
        let key = HMACSHA256Key(key: v.key)
        #expect(key.authenticate(v.message).hex == v.hex)
        let parsed = try #require(Digest32(hex: v.hex.utf8))
        #expect(key.authenticate(v.message) == parsed)
        // The same key prepared once serves several messages.
        #expect(key.authenticate(v.message + [0]) != parsed)
        #expect(key.authenticate(v.message).hex == v.hex)
    }

    @Test func hexRoundTripsAndAcceptsEitherCase() throws {
        let hex = "00ff10a0b1c2d3e4f5a6b7c8d9eafb0c1d2e3f405162738495a6b7c8d9eafb0c"
        let lower = try #require(Digest32(hex: hex.utf8))
        let upper = try #require(Digest32(hex: hex.uppercased().utf8))
        #expect(lower.hex == hex)
        #expect(upper == lower)
        #expect(upper.constantTimeEquals(lower))
    }

    @Test(arguments: [
        "",
        String(repeating: "a", count: 63),
        String(repeating: "a", count: 65),
        String(repeating: "a", count: 63) + "g",
        String(repeating: "a", count: 63) + " ",
        String(repeating: "a", count: 62) + "0x",
    ])
    func hexRejectsMalformed(_ text: String) {
        #expect(Digest32(hex: text.utf8) == nil)
    }

    @Test func digestsDifferingInOnlyTheLastByteAreUnequal() throws {
        let a = try #require(Digest32(hex: (String(repeating: "0", count: 63) + "0").utf8))
        let b = try #require(Digest32(hex: (String(repeating: "0", count: 63) + "1").utf8))
        let c = try #require(Digest32(hex: ("1" + String(repeating: "0", count: 63)).utf8))
        #expect(a != b)
        #expect(!a.constantTimeEquals(b))
        #expect(a != c)
        #expect(a == Digest32())
    }

    @Test func parseSignatureTable() {
        let hex = String(repeating: "ab", count: 32)
        #expect(VecuSignatureScheme.parseSignature("sha256=" + hex)?.hex == hex)
        #expect(VecuSignatureScheme.parseSignature("sha256=" + hex.uppercased())?.hex == hex)
        #expect(VecuSignatureScheme.parseSignature(hex) == nil)
        #expect(VecuSignatureScheme.parseSignature("Sha256=" + hex) == nil)
        #expect(VecuSignatureScheme.parseSignature("sha256=" + hex + " ") == nil)
        #expect(VecuSignatureScheme.parseSignature(" sha256=" + hex) == nil)
    }
}
