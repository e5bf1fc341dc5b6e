import CSodium

/// Key material that wipes itself when the last reference goes.
///
/// An `[UInt8]` may be copied anywhere by the runtime and is freed without being cleared, so
/// keys would linger in the heap of a device that can be lost in the field. This owns one
/// allocation, never copies it, zeroes it with sodium_memzero (which the optimiser cannot
/// drop), and never prints it.
public final class SecretBytes: @unchecked Sendable {
    // Sendable: the bytes are written only during init and by deinit, when no one else holds us.
    private let storage: UnsafeMutableRawBufferPointer

    public var count: Int { storage.count }

    /// Copies `bytes`. The caller's array is not wiped; prefer producing secrets in place with
    /// `init(count:initializingWith:)` where possible.
    public convenience init(_ bytes: [UInt8]) {
        self.init(count: bytes.count) { $0.copyBytes(from: bytes) }
    }

    /// Lets libsodium write the secret straight into its final home. If `body` throws, the
    /// partially written bytes are wiped before the error goes on.
    public init<E: Error>(count: Int, initializingWith body: (UnsafeMutableRawBufferPointer) throws(E) -> Void) throws(E) {
        precondition(count >= 0, "count must not be negative")
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 16)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
        do {
            try body(storage)
        } catch {
            sodium_memzero(storage.baseAddress, storage.count)
            storage.deallocate()
            throw error
        }
        self.storage = storage
    }

    /// `count` bytes from libsodium's random generator.
    public static func random(count: Int) -> SecretBytes {
        Sodium.ready()
        return SecretBytes(count: count) { randombytes_buf($0.baseAddress, $0.count) }
    }

    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(storage))
    }

    deinit {
        wipe()
        storage.deallocate()
    }

    /// Internal so the tests can check that zeroing reaches the bytes.
    func wipe() {
        sodium_memzero(storage.baseAddress, storage.count)
    }
}

extension SecretBytes: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { "SecretBytes(\(count) bytes, redacted)" }
    public var debugDescription: String { description }
    /// Keeps `dump()` and debuggers' mirrors from walking into the storage.
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .class) }
}
