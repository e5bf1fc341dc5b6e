import CSodium

/// Key material that wipes itself when the last reference goes.
///
/// An `[UInt8]` may be copied anywhere by the runtime and is freed without being cleared, so
/// keys would linger in the heap of a device that can be lost in the field. This owns one
/// allocation, never copies it, zeroes it with sodium_memzero (which the optimiser cannot
/// drop), and never prints it.
public final class SecretBytes: @unchecked Sendable {
    // Sendable: the bytes are written only during init and by deinit, when no one else holds us.
    private let base: UnsafeMutableRawPointer
    public let count: Int

    /// Copies `bytes`. The caller's array is not wiped; prefer producing secrets in place with
    /// `init(count:initializingWith:)` where possible.
    public convenience init(_ bytes: [UInt8]) {
        self.init(count: bytes.count) { $0.copyBytes(from: bytes) }
    }

    /// Lets libsodium write the secret straight into its final home. If `body` throws, the
    /// partially written bytes are wiped before the error goes on.
    public init<E: Error>(count: Int, initializingWith body: (UnsafeMutableRawBufferPointer) throws(E) -> Void) throws(E) {
        precondition(count >= 0, "count must not be negative")
        // At least one byte, so even an empty secret has a real address to hand to C.
        let base = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 16)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: max(count, 1))
        do {
            try body(UnsafeMutableRawBufferPointer(start: base, count: count))
        } catch {
            sodium_memzero(base, count)
            base.deallocate()
            throw error
        }
        self.base = base
        self.count = count
    }

    /// `count` bytes from libsodium's random generator.
    public static func random(count: Int) -> SecretBytes {
        Sodium.ready()
        return SecretBytes(count: count) { randombytes_buf($0.baseAddress!, $0.count) }
    }

    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    /// The bytes as libsodium's key parameters want them: never nil.
    func withPointer<R, E: Error>(_ body: (UnsafePointer<UInt8>) throws(E) -> R) throws(E) -> R {
        try body(UnsafePointer(base.assumingMemoryBound(to: UInt8.self)))
    }

    deinit {
        wipe()
        base.deallocate()
    }

    /// Internal so the tests can check that zeroing reaches the bytes.
    func wipe() {
        sodium_memzero(base, count)
    }
}

extension SecretBytes: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { "SecretBytes(\(count) bytes, redacted)" }
    public var debugDescription: String { description }
    /// Keeps `dump()` and debuggers' mirrors from walking into the storage.
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .class) }
}
