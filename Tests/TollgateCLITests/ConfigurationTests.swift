import Foundation
import Testing
import TollgateCore
import TollgateJSON
import TollgateServer

@Suite struct ConfigurationTests {
    let file = Products.repository.appendingPathComponent("Config/tollgate.json").path

    @Test func shippedConfigFile_matchesTheDefaultsInCode() async throws {
        let loaded = try await ServerConfiguration.load(filePath: file, environment: [:])
        #expect(loaded == ServerConfiguration())
    }

    /// The file is what the code says, key for key and note for note: regenerate it with
    /// `swift run tollgated --print-config > Config/tollgate.json` after changing a component's configuration.
    @Test func shippedConfigFile_isTheDefaults_everyKeyExplained() throws {
        let shipped = try String(contentsOfFile: file, encoding: .utf8)
        #expect(shipped == ServerConfiguration().file)
        let document = try JSONCodec.parse(Array(shipped.utf8))
        let notes = try #require(document["notes"]?.objectValue)
        let limits = try #require(document["limits"]?.objectValue)
        #expect(
            Set(notes.keys) == Set(["listen", "storage.url", "stripe.apiBase"] + limits.keys.map { "limits.\($0)" }))
        #expect(limits.count == ServerConfiguration().settings.count)
    }

    @Test func environment_overridesTheFile() async throws {
        let loaded = try await ServerConfiguration.load(
            filePath: file,
            environment: [
                "TOLLGATE_LISTEN": "127.0.0.1:9999", "TOLLGATE_STORAGE_URL": "postgres://u:p@h:5432/db",
                "TOLLGATE_LIMITS_IN_FLIGHT_MAX": "2048", "TOLLGATE_LIMITS_FRAME_BYTES_MAX": "4096",
                "TOLLGATE_LIMITS_RESERVATION_TTLMS": "5000", "TOLLGATE_LIMITS_SQLITE_WAL_FRAMES_MAX": "2000",
                "TOLLGATE_LIMITS_POSTGRES_CONNECTIONS_MAX": "3", "TOLLGATE_LIMITS_LEDGER_QUEUE_ENTRIES_MAX": "9000",
            ])
        #expect(loaded.listen == "127.0.0.1:9999")
        #expect(try loaded.storage() == .postgres(url: "postgres://u:p@h:5432/db"))
        #expect(loaded.redactedStorageURL == "postgres://u:***@h:5432/db")
        #expect(loaded.listener.inFlightMax == 2048)
        #expect(loaded.listener.frameBytesMax == 4096)
        #expect(loaded.runtime.reservationTTLMs == 5000)
        #expect(loaded.sqlite.walFramesMax == 2000)
        #expect(loaded.postgres.connectionsMax == 3)
        #expect(loaded.ledger.queueEntriesMax == 9000)
    }

    /// Each key's variable, as the file's notes name it, sets that key and no other.
    @Test func everyDocumentedEnvironmentVariable_overridesItsKey() async throws {
        let defaults = ServerConfiguration().settings
        for setting in defaults {
            let variable = ServerConfiguration.environmentName(setting.name)
            let loaded = try await ServerConfiguration.load(
                filePath: file, environment: [variable: String(setting.value + 1)])
            let changed = zip(defaults, loaded.settings).filter { $0.value != $1.value }.map(\.0.name)
            #expect(changed == [setting.name], "\(variable)")
        }
    }

    @Test(arguments: [
        ("TOLLGATE_LISTEN", "nope"), ("TOLLGATE_STORAGE_URL", "mysql://x"), ("TOLLGATE_LIMITS_BATCH_MAX", "5000"),
        ("TOLLGATE_LIMITS_FRAME_BYTES_MAX", "1"), ("TOLLGATE_LIMITS_LEDGER_QUEUE_ENTRIES_MAX", "1"),
        ("TOLLGATE_LIMITS_ID_BYTES_MAX", "64"), ("TOLLGATE_LIMITS_SQLITE_KEYS_INDEX_CHUNK", "2000"),
        ("TOLLGATE_LIMITS_SESSION_TIMEOUT_MS", "10"), ("TOLLGATE_LIMITS_POSTGRES_CONNECTIONS_MAX", "0"),
    ])
    func inconsistentLimits_areRefusedAtLoad(variable: String, value: String) async {
        await #expect(throws: ConfigurationError.self) {
            _ = try await ServerConfiguration.load(filePath: file, environment: [variable: value])
        }
    }

    /// The Stripe key comes from the environment (never from a printed file), and so may the API's address; a key
    /// with a space or an address that is not http(s) is refused at load. Without a key there is no hand-off.
    @Test func theStripeKeyAndAddress_comeFromTheEnvironment() async throws {
        let loaded = try await ServerConfiguration.load(
            filePath: file,
            environment: [
                "TOLLGATE_STRIPE_SECRET_KEY": "sk_test_123", "TOLLGATE_STRIPE_API_BASE": "http://127.0.0.1:9",
            ])
        #expect(loaded.stripe.secretKey == "sk_test_123")
        #expect(loaded.stripe.apiBase == "http://127.0.0.1:9")
        #expect(!loaded.file.contains("sk_test_123"), "the key is never printed")
        #expect(try await ServerConfiguration.load(filePath: file, environment: [:]).stripe.secretKey == nil)
        for environment in [["TOLLGATE_STRIPE_SECRET_KEY": "sk test"], ["TOLLGATE_STRIPE_API_BASE": "ftp://x"]] {
            await #expect(throws: ConfigurationError.self) {
                _ = try await ServerConfiguration.load(filePath: file, environment: environment)
            }
        }
    }

    @Test func missingFile_isAClearError() async {
        await #expect(throws: ConfigurationError.self) {
            _ = try await ServerConfiguration.load(filePath: "/nonexistent/tollgate.json", environment: [:])
        }
    }
}
