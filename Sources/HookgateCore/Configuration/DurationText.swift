/// Durations in the configuration file: a non-negative integer followed by a unit
/// (`ms`, `s`, `m`, `h`), e.g. `250ms`, `25s`, `72h`. Stored as milliseconds.
public struct ConfigDuration: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var milliseconds: Int64

    public init(milliseconds: Int64) { self.milliseconds = milliseconds }
    public static func seconds(_ s: Int64) -> ConfigDuration { .init(milliseconds: s * 1000) }

    /// Whole seconds, rounded down.
    public var seconds: Int64 { milliseconds / 1000 }

    public static func < (a: ConfigDuration, b: ConfigDuration) -> Bool { a.milliseconds < b.milliseconds }

    /// Parses `"<digits><unit>"`. Returns nil for anything else (signs, decimals, spaces,
    /// unknown units, values that overflow).
    public init?(parsing text: String) {
        let units: [(suffix: String, factor: Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
        guard let unit = units.first(where: { text.hasSuffix($0.suffix) }) else { return nil }
        let digits = text.dropLast(unit.suffix.count)
        guard !digits.isEmpty, digits.count <= 12, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
              let value = Int64(digits) else { return nil }
        let (product, overflow) = value.multipliedReportingOverflow(by: unit.factor)
        guard !overflow else { return nil }
        self.milliseconds = product
    }

    public var description: String {
        if milliseconds % 3_600_000 == 0 && milliseconds > 0 { return "\(milliseconds / 3_600_000)h" }
        if milliseconds % 60_000 == 0 && milliseconds > 0 { return "\(milliseconds / 60_000)m" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
        return "\(milliseconds)ms"
    }
}
