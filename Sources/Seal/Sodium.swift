import CSodium

/// sodium_init's result, computed once: Swift runs a global's initializer exactly once, even
/// when several threads get here first, so this is the "call it once" guarantee for free.
private let sodiumInitCode: Int32 = sodium_init()

public enum Sodium {
    /// Makes sure libsodium has chosen its implementations and seeded its random generator.
    /// Every entry point of this module calls it; it costs a load after the first call.
    public static func ensureInitialized() throws(SealError) {
        guard sodiumInitCode >= 0 else { throw .initializationFailed(code: sodiumInitCode) }
    }

    /// For entry points that have no other way to fail. libsodium only fails to start when the
    /// system cannot give it randomness, and there is no safe way to go on without that.
    static func ready() {
        do { try ensureInitialized() } catch { fatalError("\(error)") }
    }

    /// Compares in time that depends only on the length, so a MAC or token check does not leak
    /// how many leading bytes an attacker got right. Lengths are not secret.
    public static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        guard !a.isEmpty else { return true }
        return a.withUnsafeBytes { a in
            b.withUnsafeBytes { b in sodium_memcmp(a.baseAddress, b.baseAddress, a.count) == 0 }
        }
    }
}
