import Testing
@testable import HookgateCore

@Suite("Route table")
struct RouteTableTests {
    static let table = RouteTable<String>([(path: "/webhooks/vecu", route: "vecu"), (path: "/webhooks/other", route: "other")])

    @Test(arguments: [
        ("/webhooks/vecu", "vecu"),
        ("/webhooks/vecu?attempt=2", "vecu"),
        ("/webhooks/vecu?", "vecu"),
        ("/webhooks/other", "other"),
        ("/webhooks/vecu/", nil),
        ("/webhooks/VECU", nil),
        ("/webhooks", nil),
        ("/webhooks/vecu/extra", nil),
        ("webhooks/vecu", nil),
        ("", nil),
        ("?/webhooks/vecu", nil),
    ] as [(String, String?)])
    func route(_ target: String, _ expected: String?) {
        #expect(Self.table.route(forTarget: target) == expected)
    }
}
