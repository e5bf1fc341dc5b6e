/// Builds an array through a libsodium call that writes `count` bytes and returns 0 on success.
/// libsodium marks output pointers nonnull even for zero lengths, so one spare byte of capacity
/// guarantees a real address.
func producing(_ count: Int, _ write: (UnsafeMutablePointer<UInt8>) -> Int32) -> [UInt8]? {
    var code: Int32 = -1
    let bytes = [UInt8](unsafeUninitializedCapacity: count + 1) { buffer, initialized in
        code = write(buffer.baseAddress!)
        initialized = code == 0 ? count : 0
    }
    return code == 0 ? bytes : nil
}

func checkLength(_ what: String, _ actual: Int, _ expected: Int) throws(SealError) {
    guard actual == expected else {
        throw .invalidLength(what: what, expected: expected...expected, actual: actual)
    }
}
