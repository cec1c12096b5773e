import NIOSSL
import PostgresNIO
import TollgateStorage

/// Parses `postgres://user:password@host:port/database?sslmode=disable|prefer|require` into a client
/// configuration. The password never appears in a description or log line.
public enum PostgresURL {
    /// The URL with its password replaced by `***`: what logs and errors show.
    public static func redacted(_ text: String) -> String {
        guard let schemeEnd = text.range(of: "://"), let at = text[schemeEnd.upperBound...].lastIndex(of: "@") else {
            return text
        }
        let credentials = text[schemeEnd.upperBound..<at]
        guard let colon = credentials.firstIndex(of: ":") else { return text }
        return String(text[..<text.index(after: colon)]) + "***" + String(text[at...])
    }

    public static func configuration(_ text: String) throws(StorageError) -> PostgresClient.Configuration {
        let parts = try parse(text)
        let tls: PostgresClient.Configuration.TLS =
            switch parts.sslmode {
            case .disable: .disable
            case .prefer: .prefer(.makeClientConfiguration())
            case .require: .require(.makeClientConfiguration())
            }
        return PostgresClient.Configuration(
            host: parts.host, port: parts.port, username: parts.user,
            password: parts.password, database: parts.database, tls: tls)
    }

    /// The same URL as one connection's configuration: what the start-up probe opens.
    public static func connectionConfiguration(_ text: String) throws(StorageError) -> PostgresConnection.Configuration
    {
        let parts = try parse(text)
        let tls: PostgresConnection.Configuration.TLS
        do {
            switch parts.sslmode {
            case .disable: tls = .disable
            case .prefer: tls = .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
            case .require: tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
            }
        } catch {
            throw .backend("TLS could not be set up: \(error)")
        }
        return PostgresConnection.Configuration(
            host: parts.host, port: parts.port, username: parts.user,
            password: parts.password, database: parts.database, tls: tls)
    }

    private enum SSLMode: String { case disable, prefer, require }

    private static func parse(_ text: String) throws(StorageError)
        -> (host: String, port: Int, user: String, password: String?, database: String?, sslmode: SSLMode)
    {
        guard let url = URLComponentsLite(text), ["postgres", "postgresql"].contains(url.scheme) else {
            throw .backend("storage URL is not postgres://user:password@host:port/database")
        }
        guard let user = url.user, !user.isEmpty else { throw .backend("postgres URL has no user") }
        guard let sslmode = SSLMode(rawValue: url.query["sslmode"] ?? "disable") else {
            throw .backend("postgres URL sslmode must be disable, prefer or require")
        }
        return (url.host, url.port ?? 5432, user, url.password, url.path.isEmpty ? nil : url.path, sslmode)
    }
}

/// A small URL splitter: Foundation's URL is not needed for this one well-known shape, and percent-decoding
/// of the user and password is all the generality required.
struct URLComponentsLite {
    var scheme: String
    var user: String?
    var password: String?
    var host: String
    var port: Int?
    var path: String
    var query: [String: String]

    init?(_ text: String) {
        guard let schemeEnd = text.range(of: "://") else { return nil }
        scheme = String(text[..<schemeEnd.lowerBound]).lowercased()
        var rest = Substring(text[schemeEnd.upperBound...])
        query = [:]
        if let mark = rest.firstIndex(of: "?") {
            for pair in rest[rest.index(after: mark)...].split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                query[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
            }
            rest = rest[..<mark]
        }
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            if let colon = credentials.firstIndex(of: ":") {
                user = String(credentials[..<colon]).removingPercentEncodingLite
                password = String(credentials[credentials.index(after: colon)...]).removingPercentEncodingLite
            } else {
                user = String(credentials).removingPercentEncodingLite
            }
            rest = rest[rest.index(after: at)...]
        }
        var hostPort = rest
        path = ""
        if let slash = rest.firstIndex(of: "/") {
            hostPort = rest[..<slash]
            path = String(rest[rest.index(after: slash)...])
        }
        if let colon = hostPort.lastIndex(of: ":"), !hostPort.hasSuffix("]") {
            guard let number = Int(hostPort[hostPort.index(after: colon)...]) else { return nil }
            port = number
            hostPort = hostPort[..<colon]
        }
        host = hostPort.isEmpty ? "127.0.0.1" : String(hostPort)
    }
}

extension String {
    var removingPercentEncodingLite: String {
        var bytes: [UInt8] = []
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
