import Foundation
import Testing
import TollgateCore
import TollgateJSON

@testable import TollgateRuntime

/// The signing key ring and the credit token, without a server: a token verifies by the key that signed it while
/// that key verifies, and by nothing else; rotation keeps the old key through its overlap; the ring survives its
/// settings row.
@Suite struct SigningKeyRingTests {
    let t0 = Timestamp.parse("2026-12-02T10:00:00Z")!

    func token(expiresIn seconds: TimeInterval = 600) -> CreditToken {
        CreditToken(
            tenantId: "ten_1", agentId: "agt_1", credentialId: "cred_1", scopes: ["meter:write"],
            spendLimit: Money(nanos: 2_500_000_000), issuedAt: t0, expiresAt: t0.addingTimeInterval(seconds))
    }

    @Test func aTokenVerifiesByItsKeyOnly_untilItExpires() throws {
        let ring = SigningKeyRing.fresh(at: t0)
        let signed = try token().signed(by: ring.signer)
        #expect(CreditToken.looksSigned(signed))
        #expect(CreditToken.verified(signed, keys: ring.verifying(at: t0), at: t0) == token())
        #expect(CreditToken.verified(signed, keys: ring.verifying(at: t0), at: t0.addingTimeInterval(600)) == nil)
        let other = SigningKeyRing.fresh(at: t0)
        #expect(CreditToken.verified(signed, keys: other.verifying(at: t0), at: t0) == nil, "another key")
        // Any change to the signed part breaks it: a bigger limit, another tenant.
        let parts = signed.split(separator: ".").map(String.init)
        for (from, to) in [("2.5", "9.5"), ("ten_1", "ten_2")] {
            let payload = String(decoding: Base64URL.decode(parts[1])!, as: UTF8.self)
                .replacingOccurrences(of: from, with: to)
            let forged = [parts[0], Base64URL.encode(Data(payload.utf8)), parts[2]].joined(separator: ".")
            #expect(CreditToken.verified(forged, keys: ring.verifying(at: t0), at: t0) == nil, "\(from) → \(to)")
        }
        #expect(CreditToken.verified("eyJ.x.y", keys: ring.verifying(at: t0), at: t0) == nil)
        #expect(!CreditToken.looksSigned("AGT-abc"))
    }

    @Test func rotation_keepsTheOldKeyThroughItsOverlap_andTheRingSurvivesStorage() throws {
        var ring = SigningKeyRing.fresh(at: t0)
        let before = try token(expiresIn: 7200).signed(by: ring.signer)
        ring.rotate(at: t0.addingTimeInterval(60), overlapSeconds: 300)
        #expect(ring.keys.count == 2 && ring.verifying(at: t0.addingTimeInterval(359)).count == 2)
        #expect(CreditToken.verified(before, keys: ring.verifying(at: t0.addingTimeInterval(359)), at: t0) != nil)
        #expect(ring.verifying(at: t0.addingTimeInterval(360)).map(\.kid) == [ring.signer.kid])
        #expect(CreditToken.verified(before, keys: ring.verifying(at: t0.addingTimeInterval(360)), at: t0) == nil)
        let jwks = ring.jwks(at: t0.addingTimeInterval(100))
        #expect(jwks["keys"]?.arrayValue?.count == 2)
        #expect(jwks["keys"]?.arrayValue?.allSatisfy { $0["kty"] == "OKP" && $0["crv"] == "Ed25519" } == true)
        #expect(!JSONCodec.string(jwks).contains("privateKey") && !JSONCodec.string(jwks).contains("\"d\""))

        let restored = try #require(SigningKeyRing(stored: ring.stored))
        #expect(restored.keys.map(\.kid) == ring.keys.map(\.kid))
        #expect(restored.keys.map(\.retiresAt) == ring.keys.map(\.retiresAt))
        let after = try token().signed(by: restored.signer)
        #expect(CreditToken.verified(after, keys: ring.verifying(at: t0), at: t0) != nil, "the same private key")
        #expect(SigningKeyRing(stored: "[]") == nil && SigningKeyRing(stored: "{") == nil)
        // A second rotation drops keys retired for good.
        ring.rotate(at: t0.addingTimeInterval(1000), overlapSeconds: 0)
        #expect(ring.keys.count == 2)
    }
}
