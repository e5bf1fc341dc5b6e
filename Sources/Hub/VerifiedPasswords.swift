import Foundation
public import Seal

/// The sync passwords this hub process has verified with Argon2id, so the rep's next session
/// with the same password costs a keyed BLAKE2b (about 2 µs) instead of another Argon2id
/// verification (120-130 ms of CPU and 64 MiB at the interactive cost). A rep syncs several
/// times a day; a hub that ran Argon2id at every session could not pass about 15 sessions a
/// second on two cores whatever else it did.
///
/// Why this keeps the password's protection:
/// - The rep still types the password at every sync and the hub still checks it: only a
///   password byte-identical to one Argon2id accepted *for this rep and this stored hash* is
///   taken from here. Anything else (a wrong password, a new one) goes to Argon2id and counts
///   against the lockout as before, so guessing still costs an Argon2id per guess.
/// - The key is random per process and never written anywhere. What is kept is
///   BLAKE2b(key, rep, stored hash, password), in memory only: someone who can read this
///   process's memory sees the passwords arrive in the clear anyway, and a copy of the hub's
///   database holds nothing new.
/// - A changed password changes the stored hash, so the old entry no longer matches. A locked
///   rep is refused before this is asked.
/// Bounded: past `capacity` reps the oldest half is forgotten (they pay Argon2id once more).
public final class VerifiedPasswords: @unchecked Sendable {
    public let capacity: Int
    private let key = Random.bytes(32)
    private let lock = NSLock()
    private var digests: [String: [UInt8]] = [:]
    private var order: [String] = []
    private var hits = 0

    public init(capacity: Int = 20_000) {
        self.capacity = max(1, capacity)
    }

    /// True when `password` is the one Argon2id last accepted for `rep` against `storedHash`.
    public func matches(rep: String, storedHash: String, password: String) -> Bool {
        let digest = self.digest(rep: rep, storedHash: storedHash, password: password)
        lock.lock()
        defer { lock.unlock() }
        guard let known = digests[rep], Sodium.equal(known, digest) else { return false }
        hits += 1
        return true
    }

    /// Called after Argon2id accepted `password` for `rep` against `storedHash`.
    public func remember(rep: String, storedHash: String, password: String) {
        let digest = self.digest(rep: rep, storedHash: storedHash, password: password)
        lock.lock()
        defer { lock.unlock() }
        if digests.updateValue(digest, forKey: rep) == nil { order.append(rep) }
        if order.count > capacity {
            let dropped = order.prefix(order.count - capacity / 2)
            for rep in dropped { digests[rep] = nil }
            order.removeFirst(dropped.count)
        }
    }

    /// Sessions that were let in from here instead of Argon2id; for the metrics and tests.
    public var hitCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return hits
    }

    private func digest(rep: String, storedHash: String, password: String) -> [UInt8] {
        // Lengths first, so no two different (rep, hash, password) triples hash the same bytes.
        var message: [UInt8] = []
        for part in [rep, storedHash, password] {
            let bytes = Array(part.utf8)
            withUnsafeBytes(of: UInt32(bytes.count).littleEndian) { message.append(contentsOf: $0) }
            message.append(contentsOf: bytes)
        }
        return Blake2b.hash(message, outputLength: 32, key: key)
    }
}
