import ArgumentParser
import Foundation
import HookgateCore
import HookgateServer

/// `hookgate spool ...`: the durable spool's events, read and changed on the file while the
/// gateway runs (never through the admin port). Exit status: 0 done, 1 no such id, 2 usage or
/// configuration error.
struct SpoolCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spool",
        abstract: "List, show, retry, purge or export the events held in the spool.",
        subcommands: [SpoolList.self, SpoolShow.self, SpoolRetry.self, SpoolPurge.self, SpoolExport.self])
}

/// Opens the configuration's spool, or exits 2 with the reason.
func openSpool(_ options: ConfigurationOption) throws -> SpoolInspector {
    let path = try options.path()
    switch ConfigurationFile.load(path: path) {
    case .failure(let problems):
        for problem in problems.problems { printError(problem.description) }
        throw ExitCode(2)
    case .success(let configuration):
        do {
            return try SpoolInspector(configuration: configuration)
        } catch {
            printError("\(error)")
            throw ExitCode(2)
        }
    }
}

/// Runs a spool operation; a failure of the file (locked too long, I/O) exits 2 with its message.
func spoolOperation<R>(_ body: () throws -> R) throws -> R {
    do {
        return try body()
    } catch {
        printError("\(error)")
        throw ExitCode(2)
    }
}

extension SpoolInspector.State: ExpressibleByArgument {}

struct SpoolList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "One line per held event (tab-separated), or --json.")
    @OptionGroup var options: ConfigurationOption
    @Option(help: "Only events in this state (pending or dead).") var state: SpoolInspector.State?
    @Flag(help: "Print a JSON array instead of the table.") var json = false

    func run() throws {
        let spool = try openSpool(options)
        print(try spoolOperation { json ? try spool.listJSON(state: state) : try spool.listText(state: state) })
    }
}

struct SpoolShow: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "One event as JSON, with its headers and body.")
    @Argument(help: "The event's spool id (the ID column of list).") var id: Int64
    @OptionGroup var options: ConfigurationOption

    func run() throws {
        let spool = try openSpool(options)
        guard let text = try spoolOperation({ try spool.show(id: id) }) else {
            printError("no event with spool id \(id)")
            throw ExitCode(1)
        }
        print(text)
    }
}

/// `retry` and `purge`: one event by its id, or every event the flag names (`flag`), never both.
/// Prints `<verb> N`; an id that matched nothing exits 1.
func changeSpool(id: Int64?, every: Bool, flag: String, verb: String, options: ConfigurationOption,
                 _ change: (SpoolInspector, Int64?) throws -> Int) throws {
    guard (id == nil) == every else {
        printError("give either an ID or \(flag)")
        throw ExitCode(2)
    }
    let spool = try openSpool(options)
    let count = try spoolOperation { try change(spool, every ? nil : id) }
    print("\(verb) \(count)")
    if count == 0, !every { throw ExitCode(1) }
}

struct SpoolRetry: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry", abstract: "Make an event (or --all) pending and due now; its max_age counts from now.")
    @Argument(help: "The event's spool id.") var id: Int64?
    @Flag(help: "Every event in the spool.") var all = false
    @OptionGroup var options: ConfigurationOption

    func run() throws {
        try changeSpool(id: id, every: all, flag: "--all", verb: "retried", options: options) { try $0.retry(id: $1) }
    }
}

struct SpoolPurge: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "purge", abstract: "Delete an event, or every dead one (--dead).")
    @Argument(help: "The event's spool id.") var id: Int64?
    @Flag(help: "Every dead event.") var dead = false
    @OptionGroup var options: ConfigurationOption

    func run() throws {
        try changeSpool(id: id, every: dead, flag: "--dead", verb: "purged", options: options) { try $0.purge(id: $1) }
    }
}

struct SpoolExport: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "export", abstract: "Every event as one JSON object per line, with headers and body.")
    @OptionGroup var options: ConfigurationOption
    @Option(help: "Only events in this state (pending or dead).") var state: SpoolInspector.State?

    func run() throws {
        let spool = try openSpool(options)
        try spoolOperation { try spool.export(state: state) { print($0) } }
    }
}
