import ArgumentParser
import Foundation
import Logging
import TollgateServer

/// `tollgated`: the Tollgate server. Reads its configuration (file, then environment overrides), opens
/// storage, prints the root token if it just generated one, and serves until SIGTERM or SIGINT.
@main
struct Tollgated: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tollgated",
        abstract: "The Tollgate metering and spend-control server.",
        discussion: """
            Configuration comes from a JSON file (default: Config/tollgate.json when it exists) with environment
            overrides: TOLLGATE_LISTEN, TOLLGATE_STORAGE_URL, TOLLGATE_LIMITS_<NAME> (e.g.
            TOLLGATE_LIMITS_IN_FLIGHT_MAX). TOLLGATE_ADMIN_TOKEN sets the root operator token; without it one is
            generated on first start and printed once.
            """,
        version: TollgateApp.version)

    @Option(name: .long, help: "Path of the JSON configuration file.")
    var config: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = ProcessInfo.processInfo.environment["TOLLGATE_LOG_LEVEL"] ?? "info"

    @Flag(name: .long, help: "Print the configuration file of the defaults, every key explained, and exit.")
    var printConfig = false

    func run() async throws {
        if printConfig {
            print(ServerConfiguration().file, terminator: "")
            return
        }
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("unknown log level \(logLevel)")
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "tollgated")
        let defaultFile = "Config/tollgate.json"
        let fromEnvironment = ProcessInfo.processInfo.environment["TOLLGATE_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        let file =
            config ?? fromEnvironment ?? (FileManager.default.fileExists(atPath: defaultFile) ? defaultFile : nil)
        let configuration: ServerConfiguration
        let app: TollgateApp
        do {
            configuration = try await ServerConfiguration.load(filePath: file)
            app = try await TollgateApp.make(configuration: configuration, logger: logger)
        } catch {
            FileHandle.standardError.write(Data("tollgated: \(error)\n".utf8))
            throw ExitCode(78)  // EX_CONFIG
        }
        if let token = app.generatedRootToken {
            // Printed once, on standard output (never to the log); only its hash is stored.
            print("Root operator token (shown once; store it safely): \(token)")
            fflush(nil)  // stdout is block-buffered when it is not a terminal
        }
        logger.info(
            "starting",
            metadata: [
                "config": "\(file ?? "built-in defaults")",
                "storage": "\(configuration.redactedStorageURL)",
                "listen": "\(configuration.listen)",
            ])
        try await app.run(signals: true, logger: logger)
        logger.info("stopped")
    }
}
