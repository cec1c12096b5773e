import Foundation
import Testing
import TollgateCore
import TollgateServer

@Suite struct ConfigurationTests {
    let file = Products.repository.appendingPathComponent("Config/tollgate.json").path

    @Test func shippedConfigFile_matchesTheDefaultsInCode() async throws {
        let loaded = try await ServerConfiguration.load(filePath: file, environment: [:])
        #expect(loaded == ServerConfiguration())
    }

    @Test func shippedConfigFile_explainsEveryKey() throws {
        let document = try JSONCodec.parse(Array(try Data(contentsOf: URL(fileURLWithPath: file))))
        let notes = try #require(document["notes"]?.objectValue)
        var keys = ["listen", "storage.url"]
        keys += (document["limits"]?.objectValue?.keys.map { "limits.\($0)" } ?? [])
        for key in keys { #expect(notes[key] != nil, "no note for \(key)") }
        #expect(Set(notes.keys) == Set(keys))
    }

    @Test func environment_overridesTheFile() async throws {
        let loaded = try await ServerConfiguration.load(
            filePath: file,
            environment: [
                "TOLLGATE_LISTEN": "127.0.0.1:9999", "TOLLGATE_STORAGE_URL": "postgres://u:p@h:5432/db",
                "TOLLGATE_LIMITS_IN_FLIGHT_MAX": "2048", "TOLLGATE_LIMITS_FRAME_BYTES_MAX": "4096",
            ])
        #expect(loaded.listen == "127.0.0.1:9999")
        #expect(try loaded.storage() == .postgres(url: "postgres://u:p@h:5432/db"))
        #expect(loaded.redactedStorageURL == "postgres://u:***@h:5432/db")
        #expect(loaded.limits.inFlightMax == 2048)
        #expect(loaded.limits.frameBytesMax == 4096)
    }

    @Test(arguments: [
        ("TOLLGATE_LISTEN", "nope"), ("TOLLGATE_STORAGE_URL", "mysql://x"), ("TOLLGATE_LIMITS_BATCH_MAX", "5000"),
        ("TOLLGATE_LIMITS_FRAME_BYTES_MAX", "1"), ("TOLLGATE_LIMITS_LEDGER_QUEUE_ENTRIES_MAX", "1"),
    ])
    func inconsistentLimits_areRefusedAtLoad(variable: String, value: String) async {
        await #expect(throws: ConfigurationError.self) {
            _ = try await ServerConfiguration.load(filePath: file, environment: [variable: value])
        }
    }

    @Test func missingFile_isAClearError() async {
        await #expect(throws: ConfigurationError.self) {
            _ = try await ServerConfiguration.load(filePath: "/nonexistent/tollgate.json", environment: [:])
        }
    }
}
