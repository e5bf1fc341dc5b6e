import CSQLite
public import Seal
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Encryption at rest for an SQLite database: an SQLite VFS (sqlite.org/vfs.html) on top of the
/// default one that seals every page on its way to the file and opens it on its way back, with
/// the nonce and tag in the page's reserved bytes (the mechanism SQLite's cksumvfs uses for
/// its checksums, sqlite.org/cksumvfs.html). SQLite itself sees plaintext pages; the file, its
/// WAL and its rollback journal hold only sealed pages, so WAL, `synchronous=FULL` and crash
/// recovery work as they do on a plain file.
///
/// - Every page of the main file, every page image in the WAL and in the rollback journal is
///   XChaCha20-Poly1305 with a fresh random nonce per write (`Seal.PageSeal`), the additional
///   data naming the kind of file and the page's place in it (page number in the main file,
///   frame number in the WAL, byte offset in the journal): a page moved elsewhere, or copied
///   from another file of another kind, fails authentication.
/// - Page 1 is sealed whole, header included: the file does not even say it is SQLite.
/// - A page that fails authentication is `SQLITE_IOERR_DATA` (`StoreError.isAuthenticationFailure`):
///   the statement fails, nothing is written back, the file stays as it is.
/// - Temporary files are refused (a connection sets `temp_store=MEMORY`), and memory-mapped I/O
///   is unavailable (io_methods version 2, no xFetch), since either would bypass the sealing.
///
/// One `PageEncryption` is one key and one registered VFS; `Database` keeps it alive as long
/// as the connection. The key is a 32-byte subkey for database pages only.
public final class PageEncryption: @unchecked Sendable {
    // Sendable: everything is set in init and only read after; the VFS registration is
    // guarded by SQLite's own mutex.
    public static let pageSize = 4096
    public static let reservedBytes = PageSeal.reservedBytes

    let key: SecretBytes
    let vfs: UnsafeMutablePointer<sqlite3_vfs>
    let underlying: UnsafeMutablePointer<sqlite3_vfs>
    private let name: UnsafeMutablePointer<CChar>
    public var vfsName: String { String(cString: name) }

    /// Registers a VFS for `key` (32 bytes). Throws when the key has the wrong length or SQLite
    /// has no default VFS.
    public init(key: SecretBytes) throws {
        guard key.count == PageSeal.keyBytes else {
            throw StoreError(extendedCode: SQLITE_MISUSE, message: "a page key is \(PageSeal.keyBytes) bytes, not \(key.count)")
        }
        guard let underlying = sqlite3_vfs_find(nil) else {
            throw StoreError(extendedCode: SQLITE_ERROR, message: "SQLite has no default VFS")
        }
        self.key = key
        self.underlying = underlying
        let counter = PageEncryption.nextSerial()
        self.name = strdup("satchel-encrypted-\(counter)")!
        vfs = .allocate(capacity: 1)
        var copy = underlying.pointee
        copy.pNext = nil
        copy.zName = UnsafePointer(name)
        copy.szOsFile = Int32(MemoryLayout<satchel_encrypted_file>.stride) + underlying.pointee.szOsFile
        copy.xOpen = encryptedOpen
        copy.xDelete = { vfs, name, syncDirectory in
            PageEncryption.of(vfs).underlying.pointee.xDelete(PageEncryption.of(vfs).underlying, name, syncDirectory)
        }
        copy.xAccess = { vfs, name, flags, result in
            PageEncryption.of(vfs).underlying.pointee.xAccess(PageEncryption.of(vfs).underlying, name, flags, result)
        }
        copy.xFullPathname = { vfs, name, count, output in
            PageEncryption.of(vfs).underlying.pointee.xFullPathname(PageEncryption.of(vfs).underlying, name, count, output)
        }
        vfs.initialize(to: copy)
        vfs.pointee.pAppData = Unmanaged.passUnretained(self).toOpaque()
        let code = sqlite3_vfs_register(vfs, 0)
        guard code == SQLITE_OK else {
            vfs.deallocate()
            free(name)
            throw StoreError(extendedCode: code, message: "could not register the encrypted VFS")
        }
    }

    deinit {
        sqlite3_vfs_unregister(vfs)
        vfs.deallocate()
        free(name)
    }

    static func of(_ vfs: UnsafeMutablePointer<sqlite3_vfs>?) -> PageEncryption {
        Unmanaged<PageEncryption>.fromOpaque(vfs!.pointee.pAppData).takeUnretainedValue()
    }

    // MARK: Which files are sealed

    /// Seals every database this process opens in `directory` (not below it) with this key,
    /// unless its `Options.encryption` says otherwise: the device's data directory, where the
    /// database, the copy a snapshot is made from and the file a restore builds all live.
    public func register(directory: String) {
        Self.registry.set(Self.normalized(directory), self)
    }

    /// Stops sealing in `directory` (the device locked); open connections keep their key.
    public static func unregister(directory: String) {
        registry.set(normalized(directory), nil)
    }

    /// The key registered for the directory `path` is in.
    public static func registered(for path: String) -> PageEncryption? {
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        return registry.get(normalized(directory.isEmpty ? "/" : directory))
    }

    static func normalized(_ directory: String) -> String {
        var value = directory
        while value.count > 1 && value.hasSuffix("/") { value.removeLast() }
        if value.hasPrefix("./") { value.removeFirst(2) }
        return value.isEmpty ? "." : value
    }

    private static let registry = Registry<PageEncryption>()

    private static let serial = SerialCounter()
    private static func nextSerial() -> Int { serial.next() }

    /// Whether `path` looks sealed: a non-empty file that does not start with SQLite's plain
    /// header. (Which key sealed it is only known by opening it.)
    public static func looksSealed(_ path: String) -> Bool {
        guard case .notSQLite = DatabaseFile.inspect(path) else { return false }
        return true
    }

    // MARK: Sealing

    /// What a page's additional data binds: the kind of file and where in it.
    enum FileKind: Int32 { case main = 1, wal = 2, journal = 3 }

    static let walHeaderBytes = 32
    static let walFrameHeaderBytes = 24

    func seal(_ page: UnsafeMutableRawBufferPointer, kind: FileKind, location: Int64) -> Bool {
        withAdditionalData(kind: kind, location: location) { PageSeal.seal(page, additionalData: $0, key: key) }
    }

    /// Opens a sealed page in place and zeroes its reserved bytes. SQLite checksums whole pages
    /// in the WAL (and samples them in the journal), reserved bytes included, as they are in its
    /// buffer: pages it makes are zeroed, pages it reads come from here, so its buffers always
    /// hold zeros there, and a frame read back in recovery checksums as it did when written.
    func open(_ page: UnsafeMutableRawBufferPointer, kind: FileKind, location: Int64) -> Bool {
        guard withAdditionalData(kind: kind, location: location, { PageSeal.open(page, additionalData: $0, key: key) }) else { return false }
        UnsafeMutableRawBufferPointer(rebasing: page[(page.count - Self.reservedBytes)...]).initializeMemory(as: UInt8.self, repeating: 0)
        return true
    }

    private func withAdditionalData(kind: FileKind, location: Int64, _ body: (UnsafeRawBufferPointer) -> Bool) -> Bool {
        // "satchel-page-v1" | kind | location, big-endian: fixed length, no ambiguity.
        var data: (UInt64, UInt64, UInt64) = (0, 0, 0)
        return withUnsafeMutableBytes(of: &data) { buffer in
            let label = Array("satchel-page-v1".utf8)
            for (index, byte) in label.enumerated() { buffer[index] = byte }
            buffer[15] = UInt8(kind.rawValue)
            for index in 0..<8 { buffer[16 + index] = UInt8(truncatingIfNeeded: UInt64(bitPattern: location) >> (56 - 8 * UInt64(index))) }
            return body(UnsafeRawBufferPointer(buffer))
        }
    }
}

/// A process-wide counter for unique VFS names.
final class SerialCounter: @unchecked Sendable {
    private var value = 0
    private var lock = pthread_mutex_t()
    init() { pthread_mutex_init(&lock, nil) }
    func next() -> Int {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        value += 1
        return value
    }
}

/// Directory → key, behind a lock (the hub and tests open databases from several threads):
/// the page keys here, the device key's sealing key in Backup (`SealedDeviceKey`).
public final class Registry<Value>: @unchecked Sendable {
    private var keys: [String: Value] = [:]
    private var lock = pthread_mutex_t()
    public init() { pthread_mutex_init(&lock, nil) }
    public func get(_ directory: String) -> Value? {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return keys[directory]
    }
    public func set(_ directory: String, _ key: Value?) {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        keys[directory] = key
    }
}

extension StoreError {
    /// A page of an encrypted database failed authentication: tampered with, from another
    /// file, or another key. Never "repaired": the file is left as it is.
    public var isAuthenticationFailure: Bool { extendedCode == SQLITE_IOERR_DATA }
}

// Extended result codes are macro expressions Swift does not import (sqlite.org/rescode.html).
let SQLITE_IOERR_READ = SQLITE_IOERR | (1 << 8)
let SQLITE_IOERR_SHORT_READ = SQLITE_IOERR | (2 << 8)
let SQLITE_IOERR_WRITE = SQLITE_IOERR | (3 << 8)
let SQLITE_IOERR_DATA = SQLITE_IOERR | (32 << 8)

// MARK: The VFS's functions (C callbacks: no captures, context through the file struct)

private func encryptedFile(_ file: UnsafeMutablePointer<sqlite3_file>?) -> UnsafeMutablePointer<satchel_encrypted_file> {
    UnsafeMutableRawPointer(file!).assumingMemoryBound(to: satchel_encrypted_file.self)
}

/// The plain file under an encrypted one and its methods, for the calls that pass straight
/// through (locks, sync, size, shared memory): only reads and writes of pages are sealed.
private func underlying(_ file: UnsafeMutablePointer<sqlite3_file>?) -> (file: UnsafeMutablePointer<sqlite3_file>, methods: UnsafePointer<sqlite3_io_methods>) {
    let real = encryptedFile(file).pointee.real!
    return (real, real.pointee.pMethods)
}

/// What reads and writes of a sealed file need: the plain file under it, the cipher and
/// which kind of file it is (main database, journal, WAL).
private func sealed(_ file: UnsafeMutablePointer<sqlite3_file>?)
    -> (real: UnsafeMutablePointer<sqlite3_file>, encryption: PageEncryption, kind: PageEncryption.FileKind) {
    let wrapper = encryptedFile(file)
    return (wrapper.pointee.real!, cipher(of: wrapper), PageEncryption.FileKind(rawValue: wrapper.pointee.kind)!)
}

private func cipher(of file: UnsafeMutablePointer<satchel_encrypted_file>) -> PageEncryption {
    Unmanaged<PageEncryption>.fromOpaque(file.pointee.cipher).takeUnretainedValue()
}

private let encryptedOpen: @convention(c) (UnsafeMutablePointer<sqlite3_vfs>?, sqlite3_filename?, UnsafeMutablePointer<sqlite3_file>?, Int32, UnsafeMutablePointer<Int32>?) -> Int32 = { vfs, name, file, flags, outFlags in
    let encryption = PageEncryption.of(vfs)
    let kind: PageEncryption.FileKind
    if flags & SQLITE_OPEN_MAIN_DB != 0 { kind = .main }
    else if flags & SQLITE_OPEN_WAL != 0 { kind = .wal }
    else if flags & SQLITE_OPEN_MAIN_JOURNAL != 0 { kind = .journal }
    else {
        // Temporary and statement journals, super-journals: they would hold plaintext records
        // this VFS cannot seal page by page. Connections use temp_store=MEMORY, so SQLite keeps
        // them in memory; getting here is a bug to report, not a file to write.
        return SQLITE_CANTOPEN
    }
    let wrapper = encryptedFile(file)
    let real = UnsafeMutableRawPointer(wrapper).advanced(by: MemoryLayout<satchel_encrypted_file>.stride)
        .assumingMemoryBound(to: sqlite3_file.self)
    wrapper.pointee.base.pMethods = nil
    let code = encryption.underlying.pointee.xOpen(encryption.underlying, name, real, flags, outFlags)
    guard code == SQLITE_OK else { return code }
    wrapper.pointee.real = real
    wrapper.pointee.cipher = Unmanaged.passUnretained(encryption).toOpaque()
    wrapper.pointee.kind = kind.rawValue
    wrapper.pointee.base.pMethods = UnsafePointer(encryptedMethods)
    return SQLITE_OK
}

/// Where the sealed pages are in a file of `kind` for an access of `amount` bytes at `offset`.
private enum Layout {
    /// (start of the page in the file, its location for the additional data)
    case pages(first: Int64, count: Int, location: (Int64) -> Int64)
    /// A WAL frame read whole: header, then the sealed page.
    case walFrame(location: Int64)
    /// Not a page (WAL and journal headers, page numbers and checksums of journal records).
    case plain
    /// Part of a sealed page, which cannot be sealed or opened alone: refused.
    case partial
}

private func layout(kind: Int32, amount: Int, offset: Int64) -> Layout {
    let pageSize = Int64(PageEncryption.pageSize)
    switch PageEncryption.FileKind(rawValue: kind)! {
    case .main:
        // Any range: SQLite reads 100 bytes of page 1 before it knows the page size, and 16
        // bytes at offset 24 to see whether its cache is still valid.
        let first = offset / pageSize
        let last = (offset + Int64(amount) - 1) / pageSize
        return .pages(first: first * pageSize, count: Int(last - first + 1), location: { $0 / pageSize + 1 })
    case .wal:
        let frame = pageSize + Int64(PageEncryption.walFrameHeaderBytes)
        let header = Int64(PageEncryption.walHeaderBytes)
        if offset < header { return offset + Int64(amount) <= header ? .plain : .partial }
        let within = (offset - header) % frame, index = (offset - header) / frame
        if within == 0 && Int64(amount) == frame { return .walFrame(location: index) }
        if within == Int64(PageEncryption.walFrameHeaderBytes) && Int64(amount) == pageSize {
            return .pages(first: offset, count: 1, location: { _ in index })
        }
        if within + Int64(amount) <= Int64(PageEncryption.walFrameHeaderBytes) { return .plain }
        return .partial
    case .journal:
        // Page images are written alone, 4 bytes after each record's page number, so never at
        // an 8-aligned offset; journal headers (sector-sized, possibly a page long) always are.
        if Int64(amount) == pageSize && offset % 8 == 4 { return .pages(first: offset, count: 1, location: { $0 }) }
        return .plain
    }
}

nonisolated(unsafe) private let encryptedMethods: UnsafeMutablePointer<sqlite3_io_methods> = {
    var methods = sqlite3_io_methods()
    // Version 2: no xFetch/xUnfetch, so SQLite never maps the file and reads sealed bytes.
    methods.iVersion = 2
    methods.xClose = { file in
        let wrapper = encryptedFile(file)
        let real = wrapper.pointee.real!
        let code = real.pointee.pMethods?.pointee.xClose(real) ?? SQLITE_OK
        wrapper.pointee.base.pMethods = nil
        return code
    }
    methods.xRead = { file, buffer, amount, offset in
        let (real, encryption, kind) = sealed(file)
        switch layout(kind: kind.rawValue, amount: Int(amount), offset: offset) {
        case .plain:
            return real.pointee.pMethods.pointee.xRead(real, buffer, amount, offset)
        case .partial:
            return SQLITE_IOERR_READ
        case .walFrame(let location):
            let code = real.pointee.pMethods.pointee.xRead(real, buffer, amount, offset)
            guard code == SQLITE_OK else { return code }
            let page = UnsafeMutableRawBufferPointer(start: buffer!.advanced(by: PageEncryption.walFrameHeaderBytes), count: PageEncryption.pageSize)
            return encryption.open(page, kind: kind, location: location) ? SQLITE_OK : SQLITE_IOERR_DATA
        case .pages(let first, let count, let location):
            let pageSize = PageEncryption.pageSize
            if first == offset && count == 1 && Int(amount) == pageSize {
                let code = real.pointee.pMethods.pointee.xRead(real, buffer, amount, offset)
                let page = UnsafeMutableRawBufferPointer(start: buffer, count: pageSize)
                return finishRead(code, page: page, real: real, at: first, kind: kind, location: location(first), encryption: encryption)
            }
            // A part of a page, or several: read them whole into a scratch buffer.
            let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: pageSize * count, alignment: 16)
            defer { scratch.initializeMemory(as: UInt8.self, repeating: 0); scratch.deallocate() }
            var result = SQLITE_OK
            for index in 0..<count {
                let at = first + Int64(index * pageSize)
                let page = UnsafeMutableRawBufferPointer(rebasing: scratch[(index * pageSize)..<((index + 1) * pageSize)])
                let code = real.pointee.pMethods.pointee.xRead(real, page.baseAddress, Int32(pageSize), at)
                let finished = finishRead(code, page: page, real: real, at: at, kind: kind, location: location(at), encryption: encryption)
                if finished == SQLITE_IOERR_SHORT_READ { result = finished; continue }
                guard finished == SQLITE_OK else { return finished }
            }
            let start = Int(offset - first)
            UnsafeMutableRawBufferPointer(start: buffer, count: Int(amount)).copyMemory(from: UnsafeRawBufferPointer(rebasing: scratch[start..<(start + Int(amount))]))
            return result
        }
    }
    methods.xWrite = { file, buffer, amount, offset in
        let (real, encryption, kind) = sealed(file)
        let pageSize = PageEncryption.pageSize
        switch layout(kind: kind.rawValue, amount: Int(amount), offset: offset) {
        case .plain:
            return real.pointee.pMethods.pointee.xWrite(real, buffer, amount, offset)
        case .partial, .walFrame:
            return SQLITE_IOERR_WRITE
        case .pages(let first, let count, let location):
            // SQLite writes whole pages; anything else would leave plaintext or break a seal.
            guard first == offset, Int(amount) == pageSize * count else { return SQLITE_IOERR_WRITE }
            if kind == .main && offset == 0 && !isSealablePageOne(buffer!) { return SQLITE_IOERR_WRITE }
            let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(amount), alignment: 16)
            defer { scratch.initializeMemory(as: UInt8.self, repeating: 0); scratch.deallocate() }
            scratch.copyMemory(from: UnsafeRawBufferPointer(start: buffer, count: Int(amount)))
            for index in 0..<count {
                let page = UnsafeMutableRawBufferPointer(rebasing: scratch[(index * pageSize)..<((index + 1) * pageSize)])
                guard encryption.seal(page, kind: kind, location: location(first + Int64(index * pageSize))) else { return SQLITE_IOERR_WRITE }
            }
            return real.pointee.pMethods.pointee.xWrite(real, scratch.baseAddress, amount, offset)
        }
    }
    methods.xTruncate = { file, size in let real = underlying(file); return real.methods.pointee.xTruncate(real.file, size) }
    methods.xSync = { file, flags in let real = underlying(file); return real.methods.pointee.xSync(real.file, flags) }
    methods.xFileSize = { file, size in let real = underlying(file); return real.methods.pointee.xFileSize(real.file, size) }
    methods.xLock = { file, level in let real = underlying(file); return real.methods.pointee.xLock(real.file, level) }
    methods.xUnlock = { file, level in let real = underlying(file); return real.methods.pointee.xUnlock(real.file, level) }
    methods.xCheckReservedLock = { file, result in let real = underlying(file); return real.methods.pointee.xCheckReservedLock(real.file, result) }
    methods.xFileControl = { file, operation, argument in
        let real = encryptedFile(file).pointee.real!
        // A memory map would hand SQLite the sealed bytes: never let one be set up.
        if operation == SQLITE_FCNTL_MMAP_SIZE, let argument {
            argument.assumingMemoryBound(to: Int64.self).pointee = 0
            return SQLITE_OK
        }
        return real.pointee.pMethods.pointee.xFileControl(real, operation, argument)
    }
    methods.xSectorSize = { file in let real = underlying(file); return real.methods.pointee.xSectorSize(real.file) }
    methods.xDeviceCharacteristics = { file in let real = underlying(file); return real.methods.pointee.xDeviceCharacteristics(real.file) }
    methods.xShmMap = { file, region, size, extend, pointer in let real = underlying(file); return real.methods.pointee.xShmMap(real.file, region, size, extend, pointer) }
    methods.xShmLock = { file, offset, count, flags in let real = underlying(file); return real.methods.pointee.xShmLock(real.file, offset, count, flags) }
    methods.xShmBarrier = { file in let real = underlying(file); real.methods.pointee.xShmBarrier(real.file) }
    methods.xShmUnmap = { file, delete in let real = underlying(file); return real.methods.pointee.xShmUnmap(real.file, delete) }
    let pointer = UnsafeMutablePointer<sqlite3_io_methods>.allocate(capacity: 1)
    pointer.initialize(to: methods)
    return pointer
}()

/// Opens a page just read; a page wholly past the end of the file is SQLite's "short read"
/// (zeros), a page cut short or failing its tag is `SQLITE_IOERR_DATA`.
private func finishRead(_ code: Int32, page: UnsafeMutableRawBufferPointer, real: UnsafeMutablePointer<sqlite3_file>,
                        at offset: Int64, kind: PageEncryption.FileKind, location: Int64, encryption: PageEncryption) -> Int32 {
    if code == SQLITE_IOERR_SHORT_READ {
        var size: Int64 = 0
        guard real.pointee.pMethods.pointee.xFileSize(real, &size) == SQLITE_OK else { return SQLITE_IOERR_READ }
        if size <= offset {
            page.initializeMemory(as: UInt8.self, repeating: 0)
            return SQLITE_IOERR_SHORT_READ
        }
        return SQLITE_IOERR_DATA  // a page cut off: its tag cannot match
    }
    guard code == SQLITE_OK else { return code }
    return encryption.open(page, kind: kind, location: location) ? SQLITE_OK : SQLITE_IOERR_DATA
}

/// Page 1 of a sealed file must leave room for the nonce and tag: the page size this VFS
/// seals and at least `reservedBytes` reserved (header bytes 16-17 and 20). A file whose
/// reserve was not set before its first write would have its last bytes of data overwritten.
private func isSealablePageOne(_ page: UnsafeRawPointer) -> Bool {
    let bytes = page.assumingMemoryBound(to: UInt8.self)
    let size = Int(bytes[16]) << 8 | Int(bytes[17])
    return size == PageEncryption.pageSize && Int(bytes[20]) >= PageEncryption.reservedBytes
}
