import Yams

/// Turns a Yams error into a problem that names the position (line:column) and, for a repeated
/// key, the key, but never quotes the document: Yams' own descriptions embed the offending line
/// or the whole file, and a configuration file may hold inline secrets.
enum YAMLErrorText {
    static func problem(for error: any Error, in yaml: String) -> ConfigurationProblem {
        guard let error = error as? YamlError else {
            return ConfigurationProblem(key: "", message: "not valid YAML")
        }
        let message: String
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _), let .composer(context, problem, mark, _):
            // libyaml's problem and context texts are fixed phrases, never document text.
            let during = context.map { " (\($0.text) at \($0.mark.line):\($0.mark.column))" } ?? ""
            message = "not valid YAML at \(mark.line):\(mark.column): \(problem)\(during)"
        case let .reader(problem, offset, _, _):
            let at = offset.map { position(ofCharacter: $0, in: yaml) }.map { " at \($0.line):\($0.column)" } ?? ""
            message = "not valid YAML\(at): \(problem)"
        case let .duplicatedKeysInMapping(duplicates, context):
            let first = context.mark
            let name = duplicates.sorted().first ?? ""
            let shown = printable(name) ? "key \"\(name)\"" : "a key"
            let again = repeatPosition(of: name, after: first, in: yaml).map { ", again at \($0.line):\($0.column)" } ?? ""
            message = "\(shown) appears more than once in one mapping (first at \(first.line):\(first.column)\(again))"
        default:
            message = "not valid YAML"
        }
        return ConfigurationProblem(key: "", message: message)
    }

    /// Line and column (1-based, columns in Unicode scalars as libyaml counts them) of the first
    /// byte that does not continue valid UTF-8.
    static func firstInvalidUTF8(_ bytes: [UInt8]) -> (line: Int, column: Int) {
        var line = 1
        var column = 1
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        while case .scalarValue(let scalar) = decoder.decode(&iterator) {
            if scalar == "\n" { line += 1; column = 1 } else { column += 1 }
        }
        return (line, column)
    }

    /// Yams reports a reader error's offset in Characters from the start of the document.
    private static func position(ofCharacter offset: Int, in yaml: String) -> (line: Int, column: Int) {
        var line = 1
        var column = 1
        for character in yaml.prefix(offset) {
            if character.isNewline { line += 1; column = 1 } else { column += character.unicodeScalars.count }
        }
        return (line, column)
    }

    /// Key names are shown only when they cannot carry anything odd into a terminal or log.
    private static func printable(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64 && name.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }
    }

    /// Where a block mapping repeats `name`: the next line, before the mapping ends, that has the
    /// key at the first one's column. (Flow mappings are reported by their first position only.)
    private static func repeatPosition(of name: String, after first: Mark, in yaml: String) -> (line: Int, column: Int)? {
        guard printable(name) else { return nil }
        let lines = yaml.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
        guard first.line >= 1, first.line < lines.count else { return nil }
        let column = first.column - 1
        for index in first.line..<lines.count {
            let scalars = Array(lines[index].unicodeScalars)
            guard let content = scalars.firstIndex(where: { $0 != " " }), scalars[content] != "#" else { continue }
            if content < column { return nil }  // the mapping ended (a new list item starts at a lower column)
            if content > column { continue }
            let rest = String(String.UnicodeScalarView(scalars[column...]))
            if rest.hasPrefix(name), rest.dropFirst(name.count).drop(while: { $0 == " " }).first == ":" {
                return (index + 1, first.column)
            }
        }
        return nil
    }
}
