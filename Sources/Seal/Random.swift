import CSodium

/// libsodium's generator: the kernel's, without the pitfalls of reading /dev/urandom by hand.
public enum Random {
    public static func bytes(_ count: Int) -> [UInt8] {
        precondition(count >= 0, "count must not be negative")
        Sodium.ready()
        return producing(count) { output in
            randombytes_buf(output, count)
            return 0
        }!
    }

    /// A uniform value in `0..<upperBound`, without the bias of `random % upperBound`.
    public static func uniform(upperBound: UInt32) -> UInt32 {
        precondition(upperBound > 0, "upperBound must be positive")
        Sodium.ready()
        return randombytes_uniform(upperBound)
    }
}
