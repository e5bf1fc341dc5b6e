#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension SystemCalls {
    /// Overwrites every byte of the file at `path` with zeros and fsyncs it, on one descriptor,
    /// so the fsync covers the writes (an fsync on another descriptor need not report this one's
    /// write error) and close's result is checked. The length is the file's own size kept in
    /// Int64 and written a page at a time: no size becomes an Int (`Int(st_size)` traps on a
    /// 32-bit handheld past 2 GiB) or sizes an allocation. The link is not followed (O_NOFOLLOW).
    /// Throws `.noEntry` when there is no file.
    public static func overwriteWithZeros(_ path: String) throws(Errno) {
        let fd = try open(path, O_WRONLY | O_NOFOLLOW)
        do throws(Errno) {
            let size = Int64(try status(of: fd).st_size)
            let zeros = [UInt8](repeating: 0, count: 4096)
            var offset: Int64 = 0
            while offset < size {
                let count = Int(min(Int64(zeros.count), size - offset))  // at most 4096
                let written = try zeros.withUnsafeBytes { raw in
                    Result { () throws(Errno) in try pwrite(fd, UnsafeRawBufferPointer(rebasing: raw[0..<count]), at: offset) }
                }.get()
                if written == 0 { throw Errno.ioError }  // no progress on a regular file: a failed write
                offset += Int64(written)
            }
            try fsync(fd)
        } catch {
            try? close(fd)
            throw error
        }
        try close(fd)
    }
}
