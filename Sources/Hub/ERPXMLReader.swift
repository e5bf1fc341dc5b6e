import Foundation
import Field

/// A small streaming pull reader for the ERP exchange file: the file is read in 64 KiB chunks
/// and handed out element by element, so a 200 MB file takes the memory of one chunk and one
/// element. It reads what the exchange needs (elements, attributes, text, comments, CDATA) and
/// refuses what an exchange file never needs and an attacker would: a DOCTYPE (and with it
/// every entity declaration, external or internal, so nothing is ever expanded or fetched) and
/// any entity reference beyond XML's five and numeric character references.
///
/// Encodings are read from the byte order mark and the XML declaration: UTF-8 (with or without
/// a BOM), windows-1250, windows-1251 and ISO-8859-2, the ones ERPs in Poland, Bulgaria and
/// Russia write. Anything else is refused by name, never guessed.
final class ERPXMLReader {
    enum Event: Equatable {
        case start(name: String, attributes: [(String, String)], line: Int)
        case end(name: String, line: Int)
        /// Non-blank character data inside an element.
        case text(String, line: Int)

        static func == (a: Event, b: Event) -> Bool {
            switch (a, b) {
            case let (.start(n1, a1, l1), .start(n2, a2, l2)): return n1 == n2 && l1 == l2 && a1.elementsEqual(a2, by: { $0 == $1 })
            case let (.end(n1, l1), .end(n2, l2)): return n1 == n2 && l1 == l2
            case let (.text(t1, l1), .text(t2, l2)): return t1 == t2 && l1 == l2
            default: return false
            }
        }
    }

    /// A refusal: where in the file, and why.
    struct Failure: Error, Equatable, CustomStringConvertible {
        var line: Int
        var reason: String
        var description: String { "line \(line): \(reason)" }
    }

    enum Encoding: String {
        case utf8 = "UTF-8", windows1250 = "windows-1250", windows1251 = "windows-1251", iso88592 = "ISO-8859-2"

        /// The names (and common aliases) an XML declaration may use, case-insensitively.
        static func named(_ name: String) -> Encoding? {
            switch name.lowercased() {
            case "utf-8", "utf8": return .utf8
            case "windows-1250", "cp1250", "x-cp1250": return .windows1250
            case "windows-1251", "cp1251", "x-cp1251": return .windows1251
            case "iso-8859-2", "iso8859-2", "latin2", "iso_8859-2", "l2": return .iso88592
            default: return nil
            }
        }

        /// The Unicode scalar of each byte 0x80...0xFF (0: no character there).
        var upperHalf: [UInt16]? {
            switch self {
            case .utf8: return nil
            case .windows1250: return SingleByteCodes.windows1250
            case .windows1251: return SingleByteCodes.windows1251
            case .iso88592: return SingleByteCodes.iso88592
            }
        }
    }

    private let file: UnsafeMutablePointer<FILE>
    /// The most bytes one text, CDATA section, comment, processing instruction, name or
    /// attribute value may take: far above any field of the exchange (the device takes 16 KiB
    /// of free text), and what keeps "a 200 MB file in bounded memory" true of a hostile file
    /// that is one 200 MB text node.
    static let longestValueBytes = 1 << 20
    /// The most attributes one element may carry, far more than any element of the schema
    /// declares: a start tag of millions would otherwise cost a duplicate check per pair.
    static let mostAttributes = 256
    private var chunk = [UInt8](repeating: 0, count: 1 << 16)
    /// UTF-8 bytes not yet consumed (a single-byte encoding is transcoded on the way in).
    private var buffer: [UInt8] = []
    private var position = 0
    private var endOfFile = false
    private(set) var line = 1
    private(set) var encoding: Encoding = .utf8
    private var upperHalf: [UInt16]?
    private var open: [(name: String, line: Int)] = []
    private var pendingEnd: (String, Int)?
    private var sawRoot = false
    /// Bytes read from the file so far (for progress and the benchmark).
    private(set) var bytesRead = 0

    init(path: String) throws {
        guard let file = fopen(path, "rb") else {
            throw Failure(line: 0, reason: "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        self.file = file
        try readPrologue()
    }

    deinit { fclose(file) }

    /// The first bytes: a BOM, then the XML declaration's encoding.
    private func readPrologue() throws {
        var head: [UInt8] = []
        while head.count < 4, let byte = try rawByte() { head.append(byte) }
        if head.starts(with: [0xFE, 0xFF]) || head.starts(with: [0xFF, 0xFE]) || head.starts(with: [0, 0, 0xFE, 0xFF]) {
            throw Failure(line: 1, reason: "the file is UTF-16 or UTF-32 (its byte order mark says so): the exchange reads UTF-8, windows-1250, windows-1251 or ISO-8859-2; export it in one of those")
        }
        var bom = false
        if head.starts(with: [0xEF, 0xBB, 0xBF]) { bom = true; head.removeFirst(3) }
        pushBack(head)
        // The declaration is ASCII in every encoding we read: look at it before choosing.
        try fill(atLeast: 512)
        let available = buffer[position...]
        guard available.starts(with: Array("<?xml".utf8)) else { return }
        guard let close = findSequence(Array("?>".utf8), from: position) else {
            throw Failure(line: 1, reason: "the XML declaration <?xml ... ?> is not closed in the first 512 bytes")
        }
        let declaration = String(decoding: buffer[position..<close], as: UTF8.self)
        if let declared = Self.pseudoAttribute("encoding", in: declaration) {
            guard let named = Encoding.named(declared) else {
                throw Failure(line: 1, reason: "encoding \(TerminalText.safe(declared)) is not one the exchange reads (UTF-8, windows-1250, windows-1251, ISO-8859-2): export the file in one of those")
            }
            if bom && named != .utf8 {
                throw Failure(line: 1, reason: "the file starts with a UTF-8 byte order mark but its declaration says \(TerminalText.safe(declared)): one of them is wrong; export it again")
            }
            encoding = named
        }
        position = close + 2
        // Transcode what is buffered after the declaration.
        if let table = encoding.upperHalf {
            upperHalf = table
            let rest = Array(buffer[position...])
            buffer = []; position = 0
            try append(rest)
        }
    }

    static func pseudoAttribute(_ name: String, in declaration: String) -> String? {
        guard let range = declaration.range(of: name) else { return nil }
        var rest = declaration[range.upperBound...].drop { $0 == " " || $0 == "=" || $0 == "\t" }
        guard let quote = rest.first, quote == "\"" || quote == "'" else { return nil }
        rest = rest.dropFirst()
        return String(rest.prefix { $0 != quote })
    }

    private var pushedBack: [UInt8] = []
    private func rawByte() throws -> UInt8? {
        var byte: UInt8 = 0
        return fread(&byte, 1, 1, file) == 1 ? { bytesRead += 1; return byte }() : nil
    }
    private func pushBack(_ bytes: [UInt8]) { pushedBack = bytes }

    /// Appends file bytes to the buffer as UTF-8.
    private func append(_ bytes: some Collection<UInt8>) throws {
        guard let table = upperHalf else { buffer.append(contentsOf: bytes); return }
        for byte in bytes {
            if byte < 0x80 { buffer.append(byte); continue }
            let scalar = table[Int(byte) - 0x80]
            guard scalar != 0, let unicode = Unicode.Scalar(scalar) else {
                throw Failure(line: line, reason: "byte 0x\(String(byte, radix: 16, uppercase: true)) is no character in \(encoding.rawValue): the file is not in the encoding its declaration names")
            }
            buffer.append(contentsOf: UTF8.encode(unicode)!)
        }
    }

    /// Makes sure `count` bytes are buffered past the position, unless the file ends first.
    @discardableResult
    private func fill(atLeast count: Int) throws -> Bool {
        while buffer.count - position < count && !endOfFile {
            if position > 0 && position >= buffer.count / 2 {
                buffer.removeFirst(position)
                position = 0
            }
            if !pushedBack.isEmpty {
                let bytes = pushedBack
                pushedBack = []
                try append(bytes)
                continue
            }
            let got = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if got == 0 {
                if ferror(file) != 0 { throw Failure(line: line, reason: "read error: \(String(cString: strerror(errno)))") }
                endOfFile = true
            } else {
                bytesRead += got
                try append(chunk[..<got])
            }
        }
        return buffer.count - position >= count
    }

    private func findSequence(_ needle: [UInt8], from start: Int) -> Int? {
        guard buffer.count >= needle.count else { return nil }
        var index = start
        while index + needle.count <= buffer.count {
            if buffer[index] == needle[0] && buffer[index..<index + needle.count].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }

    private func peek() throws -> UInt8? {
        if position >= buffer.count { try fill(atLeast: 1) }
        return position < buffer.count ? buffer[position] : nil
    }

    private func advance() throws -> UInt8? {
        guard let byte = try peek() else { return nil }
        position += 1
        if byte == 0x0A { line += 1 }
        return byte
    }

    private func startsWith(_ text: String) throws -> Bool {
        let bytes = Array(text.utf8)
        try fill(atLeast: bytes.count)
        return buffer.count - position >= bytes.count && buffer[position..<position + bytes.count].elementsEqual(bytes)
    }

    private func skip(_ count: Int) throws { for _ in 0..<count { _ = try advance() } }

    /// Consumes bytes up to and including `terminator`; returns those before it.
    private func until(_ terminator: String, what: @autoclosure () -> String) throws -> [UInt8] {
        let end = Array(terminator.utf8)
        let startLine = line
        var collected: [UInt8] = []
        while true {
            if try startsWith(terminator) { try skip(end.count); return collected }
            guard let byte = try advance() else { throw truncated("inside \(what()) opened at line \(startLine)") }
            collected.append(byte)
            if collected.count > Self.longestValueBytes { throw tooLong(what(), from: startLine) }
        }
    }

    private func tooLong(_ what: String, from startLine: Int) -> Failure {
        Failure(line: startLine, reason: "\(what) is longer than \(Self.longestValueBytes / 1024) KiB: no field of the exchange holds that much; the file is damaged or not an exchange file")
    }

    private func truncated(_ where: String) -> Failure {
        let inside = open.last.map { " (inside <\($0.name)> opened at line \($0.line))" } ?? ""
        return Failure(line: line, reason: "the file ends \(`where`)\(inside): it is truncated; export it again")
    }

    private func string(_ bytes: some Collection<UInt8>, what: @autoclosure () -> String) throws -> String {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw Failure(line: line, reason: "\(what()) is not valid \(encoding.rawValue): the file is not in the encoding its declaration names")
        }
        return text
    }

    private static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }
    private static func isNameByte(_ byte: UInt8) -> Bool {
        !(isSpace(byte) || byte == UInt8(ascii: "/") || byte == UInt8(ascii: ">") || byte == UInt8(ascii: "=")
          || byte == UInt8(ascii: "<") || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'") || byte == UInt8(ascii: "&"))
    }

    /// Replaces XML's five entities and character references; any other entity is refused.
    private func unescape(_ raw: [UInt8], what: @autoclosure () -> String) throws -> String {
        guard raw.contains(UInt8(ascii: "&")) else { return try string(raw, what: what()) }
        var out: [UInt8] = []
        var index = 0
        while index < raw.count {
            let byte = raw[index]
            guard byte == UInt8(ascii: "&") else { out.append(byte); index += 1; continue }
            guard let semicolon = raw[index...].firstIndex(of: UInt8(ascii: ";")), semicolon - index <= 12 else {
                // "&#0000000065;" is a character reference with too many digits, not a bare &:
                // advice to write &amp; there would change the text.
                if index + 1 < raw.count, raw[index + 1] == UInt8(ascii: "#") {
                    throw Failure(line: line, reason: "a character reference in \(what()) is too long or has no ';': write it as &#NNNN; or &#xHHHH; (no leading zeros needed), or the character itself")
                }
                throw Failure(line: line, reason: "a bare & in \(what()): write it as &amp;")
            }
            let name = String(decoding: raw[(index + 1)..<semicolon], as: UTF8.self)
            switch name {
            case "lt": out.append(UInt8(ascii: "<"))
            case "gt": out.append(UInt8(ascii: ">"))
            case "amp": out.append(UInt8(ascii: "&"))
            case "quot": out.append(UInt8(ascii: "\""))
            case "apos": out.append(UInt8(ascii: "'"))
            default:
                var number: UInt32?
                if name.hasPrefix("#x") { number = UInt32(name.dropFirst(2), radix: 16) } else if name.hasPrefix("#") { number = UInt32(name.dropFirst()) }
                if number == nil && name.hasPrefix("#") {
                    throw Failure(line: line, reason: "character reference &\(TerminalText.safe(name)); in \(what()) is no character (past Unicode's last, U+10FFFF, or not a number)")
                }
                guard let number else {
                    throw Failure(line: line, reason: "entity &\(TerminalText.safe(name)); in \(what()) is refused: the exchange expands no entities (only &lt; &gt; &amp; &quot; &apos; and &#...;); write the character itself")
                }
                guard let scalar = Unicode.Scalar(number), number != 0 else {
                    throw Failure(line: line, reason: "character reference &\(TerminalText.safe(name)); in \(what()) is no character")
                }
                out.append(contentsOf: UTF8.encode(scalar)!)
            }
            index = semicolon + 1
        }
        return try string(out, what: what())
    }

    /// The next element start, end or text; nil at the end of a complete document.
    func next() throws -> Event? {
        if let (name, line) = pendingEnd { pendingEnd = nil; return .end(name: name, line: line) }
        var text: [UInt8] = []
        var textLine = line
        while true {
            // Blank space up to the next tag (the newline and indent between elements): skipped
            // at once, as the loop below would drop it anyway.
            if text.isEmpty, let end = spanInBuffer(while: Self.isSpace), end > position, buffer[end] == UInt8(ascii: "<") {
                skipInBuffer(to: end)
            }
            guard let byte = try peek() else {
                if let element = open.last { throw Failure(line: line, reason: "the file ends inside <\(element.name)> opened at line \(element.line): it is truncated; export it again") }
                guard sawRoot else { throw Failure(line: line, reason: "the file holds no element: it is empty or truncated") }
                return nil
            }
            if byte != UInt8(ascii: "<") {
                if text.isEmpty { textLine = line }
                text.append(try advance()!)
                if text.count > Self.longestValueBytes { throw tooLong("the text of <\(TerminalText.safe(open.last?.name ?? "the file"))>", from: textLine) }
                continue
            }
            if !text.isEmpty, text.contains(where: { !Self.isSpace($0) }) {
                guard !open.isEmpty else { throw Failure(line: textLine, reason: "text outside the root element") }
                return .text(try unescape(text, what: "the text of <\(open.last!.name)>"), line: textLine)
            }
            text = []
            // Most of a file is elements: look past the comment, CDATA and declaration checks
            // (each a comparison of several bytes) only when the byte after < asks for them.
            try fill(atLeast: 2)
            let second = position + 1 < buffer.count ? buffer[position + 1] : 0
            if second != UInt8(ascii: "!") && second != UInt8(ascii: "?") { return try fastTag() ?? tag() }
            if try startsWith("<!--") {
                try skip(4); _ = try until("-->", what: "a comment"); continue
            }
            if try startsWith("<![CDATA[") {
                guard !open.isEmpty else { throw Failure(line: line, reason: "CDATA outside the root element") }
                let cdataLine = line
                try skip(9)
                let content = try until("]]>", what: "a CDATA section")
                if content.contains(where: { !Self.isSpace($0) }) { return .text(try string(content, what: "a CDATA section"), line: cdataLine) }
                continue
            }
            if try startsWith("<!DOCTYPE") || startsWith("<!doctype") {
                throw Failure(line: line, reason: "a DOCTYPE is refused: the exchange file declares no document type and no entities (they could expand or fetch outside files); remove it")
            }
            if try startsWith("<!") { throw Failure(line: line, reason: "a markup declaration <! ... > is refused: the exchange file holds elements, comments and CDATA only") }
            if try startsWith("<?") {
                try skip(2); _ = try until("?>", what: "a processing instruction"); continue
            }
            return try tag()
        }
    }

    /// Where the bytes from the position stop satisfying `keep`, if that is inside the buffer
    /// (nil: the buffer ends first, and the caller reads on byte by byte, refilling).
    private func spanInBuffer(while keep: (UInt8) -> Bool) -> Int? {
        buffer.withUnsafeBufferPointer { bytes in
            var index = position
            while index < bytes.count {
                if !keep(bytes[index]) { return index }
                index += 1
            }
            return nil
        }
    }

    private func name(what: @autoclosure () -> String) throws -> String {
        if let end = spanInBuffer(while: Self.isNameByte), end > position {
            let start = position
            position = end
            return try string(buffer[start..<end], what: "a name")
        }
        var bytes: [UInt8] = []
        while let byte = try peek(), Self.isNameByte(byte) {
            bytes.append(byte); position += 1
            if bytes.count > Self.longestValueBytes { throw tooLong("a name in \(what())", from: line) }
        }
        guard !bytes.isEmpty else { throw Failure(line: line, reason: "a name expected in \(what())") }
        return try string(bytes, what: "a name")
    }

    private func skipSpace() throws {
        if let end = spanInBuffer(while: Self.isSpace) { skipInBuffer(to: end); return }
        while let byte = try peek(), Self.isSpace(byte) { _ = try advance() }
    }

    /// Moves the position to `end` (inside the buffer), counting the newlines passed.
    private func skipInBuffer(to end: Int) {
        buffer.withUnsafeBufferPointer { bytes in
            for index in position..<end where bytes[index] == 0x0A { line += 1 }
        }
        position = end
    }

    // MARK: The fast path

    /// 1 for each byte that ends a name (space, / > = < " ' &): one load a byte, no call.
    private let nameEnds: [UInt8] = (0...255).map { isNameByte(UInt8($0)) ? 0 : 1 }
    /// The element and attribute names met so far, each made a String once (a file repeats a
    /// few dozen names millions of times), found by a small hash of length and first and last
    /// byte: `nameSlots` holds an index into `names` + 1, 0 for none.
    private var names: [(bytes: [UInt8], name: String)] = []
    private var nameSlots = [Int32](repeating: 0, count: 256)

    /// The name of these bytes: a known one, or a new String validated once (nil: not UTF-8).
    private func name(_ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> String? {
        let count = end - start
        let slot = (count &* 31 &+ Int(base[start]) &* 7 &+ Int(base[end - 1])) & 255
        let known = Int(nameSlots[slot]) - 1
        if known >= 0 {
            let entry = names[known]
            if entry.bytes.count == count && entry.bytes.withUnsafeBufferPointer({ memcmp($0.baseAddress!, base + start, count) }) == 0 { return entry.name }
        }
        guard let made = value(base, start, end) else { return nil }
        if known < 0 && names.count < 256 {
            names.append((Array(UnsafeBufferPointer(start: base + start, count: count)), made))
            nameSlots[slot] = Int32(names.count)
        }
        return made
    }

    /// These bytes as a String: ASCII taken as it is, anything else validated as UTF-8.
    private func value(_ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> String? {
        var high: UInt8 = 0
        var index = start
        while index < end { high |= base[index]; index += 1 }
        let slice = UnsafeBufferPointer(start: base + start, count: end - start)
        if high < 0x80 { return String(decoding: slice, as: UTF8.self) }
        return String(validating: slice, as: UTF8.self)
    }

    /// The tag at the position when it lies whole in the buffer and is plain (values without
    /// `&` or `<`, names in UTF-8, well formed): one pass over the bytes through a pointer, with
    /// no refill, no per-byte call and no per-byte copy. Anything else (the buffer ends first,
    /// an entity to expand, any fault) returns nil having changed nothing, and `tag()` reads it
    /// byte by byte, with its refills and its errors.
    private func fastTag() throws -> Event? {
        let start = position
        let count = buffer.count
        return buffer.withUnsafeBufferPointer { buffered -> Event? in
            nameEnds.withUnsafeBufferPointer { table -> Event? in
                let bytes = buffered.baseAddress!, ends = table.baseAddress!
                let slash = UInt8(ascii: "/"), close = UInt8(ascii: ">"), equals = UInt8(ascii: "="), lt = UInt8(ascii: "<"), amp = UInt8(ascii: "&")
                var index = start + 1
                var newlines = 0
                if index < count && bytes[index] == slash {
                    index += 1
                    let nameStart = index
                    while index < count && ends[Int(bytes[index])] == 0 { index += 1 }
                    guard index < count && index > nameStart else { return nil }
                    let nameEnd = index
                    while index < count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x09 || bytes[index] == 0x0D {
                        if bytes[index] == 0x0A { newlines += 1 }
                        index += 1
                    }
                    guard index < count, bytes[index] == close, let element = open.last,
                          let name = name(bytes, nameStart, nameEnd), name == element.name else { return nil }
                    open.removeLast()
                    let tagLine = line
                    line = tagLine + newlines
                    position = index + 1
                    return .end(name: element.name, line: tagLine)
                }
                if open.isEmpty && sawRoot { return nil }
                let nameStart = index
                while index < count && ends[Int(bytes[index])] == 0 { index += 1 }
                guard index < count && index > nameStart, let name = name(bytes, nameStart, index) else { return nil }
                var attributes: [(String, String)] = []
                attributes.reserveCapacity(6)
                while true {
                    while index < count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x09 || bytes[index] == 0x0D {
                        if bytes[index] == 0x0A { newlines += 1 }
                        index += 1
                    }
                    guard index < count else { return nil }
                    let byte = bytes[index]
                    if byte == close || byte == slash {
                        if byte == slash { guard index + 1 < count && bytes[index + 1] == close else { return nil }; index += 1 }
                        let tagLine = line
                        line = tagLine + newlines
                        position = index + 1
                        sawRoot = true
                        if byte == close { open.append((name, tagLine)) } else { pendingEnd = (name, tagLine) }
                        return .start(name: name, attributes: attributes, line: tagLine)
                    }
                    let attributeStart = index
                    while index < count && ends[Int(bytes[index])] == 0 { index += 1 }
                    guard index < count && index > attributeStart, let attribute = self.name(bytes, attributeStart, index) else { return nil }
                    while index < count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x09 || bytes[index] == 0x0D {
                        if bytes[index] == 0x0A { newlines += 1 }
                        index += 1
                    }
                    guard index < count && bytes[index] == equals else { return nil }
                    index += 1
                    while index < count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x09 || bytes[index] == 0x0D {
                        if bytes[index] == 0x0A { newlines += 1 }
                        index += 1
                    }
                    guard index < count, bytes[index] == UInt8(ascii: "\"") || bytes[index] == UInt8(ascii: "'") else { return nil }
                    let quote = bytes[index]
                    index += 1
                    let valueStart = index
                    while index < count {
                        let byte = bytes[index]
                        if byte == quote || byte == lt || byte == amp { break }
                        if byte == 0x0A { newlines += 1 }
                        index += 1
                    }
                    guard index < count && bytes[index] == quote, let text = value(bytes, valueStart, index) else { return nil }
                    index += 1
                    // Past the cap, `tag()` refuses the element by line.
                    if attributes.count >= ERPXMLReader.mostAttributes { return nil }
                    for known in attributes.indices where attributes[known].0 == attribute { return nil }
                    attributes.append((attribute, text))
                }
            }
        }
    }

    private func tag() throws -> Event {
        let tagLine = line
        position += 1  // <
        if try peek() == UInt8(ascii: "/") {
            position += 1
            let name = try name(what: "an end tag")
            try skipSpace()
            guard try advance() == UInt8(ascii: ">") else {
                if try peek() == nil { throw truncated("inside the end tag </\(name)>") }
                throw Failure(line: tagLine, reason: "end tag </\(TerminalText.safe(name))> is not closed by >")
            }
            guard let element = open.popLast() else { throw Failure(line: tagLine, reason: "end tag </\(TerminalText.safe(name))> with no element open") }
            guard element.name == name else {
                throw Failure(line: tagLine, reason: "end tag </\(TerminalText.safe(name))> does not close <\(element.name)> opened at line \(element.line)")
            }
            return .end(name: name, line: tagLine)
        }
        let name = try name(what: "a start tag")
        if open.isEmpty && sawRoot { throw Failure(line: tagLine, reason: "a second root element <\(TerminalText.safe(name))>") }
        var attributes: [(String, String)] = []
        while true {
            try skipSpace()
            guard let byte = try peek() else { throw truncated("inside the start tag <\(name)> of line \(tagLine)") }
            if byte == UInt8(ascii: ">") {
                position += 1
                open.append((name, tagLine)); sawRoot = true
                return .start(name: name, attributes: attributes, line: tagLine)
            }
            if byte == UInt8(ascii: "/") {
                position += 1
                guard try advance() == UInt8(ascii: ">") else { throw Failure(line: tagLine, reason: "<\(TerminalText.safe(name)) ... / is not closed by >") }
                sawRoot = true
                pendingEnd = (name, tagLine)
                return .start(name: name, attributes: attributes, line: tagLine)
            }
            guard attributes.count < Self.mostAttributes else {
                throw Failure(line: tagLine, reason: "<\(TerminalText.safe(name))> has more than \(Self.mostAttributes) attributes: no element of the exchange has that many")
            }
            let attribute = try self.name(what: "the attributes of <\(name)>")
            try skipSpace()
            guard try advance() == UInt8(ascii: "=") else {
                throw Failure(line: line, reason: "attribute \(TerminalText.safe(attribute)) of <\(TerminalText.safe(name))> has no value (name=\"value\")")
            }
            try skipSpace()
            guard let quote = try advance(), quote == UInt8(ascii: "\"") || quote == UInt8(ascii: "'") else {
                throw Failure(line: line, reason: "the value of \(TerminalText.safe(attribute)) in <\(TerminalText.safe(name))> is not quoted")
            }
            var raw: [UInt8] = []
            // The value whole in the buffer, with no < in it: taken at once, its newlines counted;
            // without an & it needs no unescaping, and becomes a String straight from the buffer.
            if let end = spanInBuffer(while: { $0 != quote && $0 != UInt8(ascii: "<") }), buffer[end] == quote {
                let start = position
                skipInBuffer(to: end)
                position = end + 1
                if !buffer[start..<end].contains(UInt8(ascii: "&")) {
                    if attributes.contains(where: { $0.0 == attribute }) {
                        throw Failure(line: tagLine, reason: "attribute \(TerminalText.safe(attribute)) appears twice in <\(TerminalText.safe(name))>")
                    }
                    attributes.append((attribute, try string(buffer[start..<end], what: "attribute \(attribute) of <\(name)>")))
                    continue
                }
                raw = Array(buffer[start..<end])
            } else {
            while true {
                guard let byte = try advance() else { throw truncated("inside the value of \(attribute) in <\(name)> of line \(tagLine)") }
                if byte == quote { break }
                if byte == UInt8(ascii: "<") { throw Failure(line: line, reason: "a < inside the value of \(TerminalText.safe(attribute)) in <\(TerminalText.safe(name))>: write it as &lt;") }
                raw.append(byte)
                if raw.count > Self.longestValueBytes { throw tooLong("the value of \(TerminalText.safe(attribute)) in <\(TerminalText.safe(name))>", from: tagLine) }
            }
            }
            if attributes.contains(where: { $0.0 == attribute }) {
                throw Failure(line: tagLine, reason: "attribute \(TerminalText.safe(attribute)) appears twice in <\(TerminalText.safe(name))>")
            }
            attributes.append((attribute, try unescape(raw, what: "attribute \(attribute) of <\(name)>")))
        }
    }
}

/// The upper halves of the single-byte code pages the exchange reads (generated from Python's
/// codecs; 0 where the code page has no character).
enum SingleByteCodes {
    static let windows1250: [UInt16] = [
        0x20AC, 0x0000, 0x201A, 0x0000, 0x201E, 0x2026, 0x2020, 0x2021, 0x0000, 0x2030, 0x0160, 0x2039, 0x015A, 0x0164, 0x017D, 0x0179,
        0x0000, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x0000, 0x2122, 0x0161, 0x203A, 0x015B, 0x0165, 0x017E, 0x017A,
        0x00A0, 0x02C7, 0x02D8, 0x0141, 0x00A4, 0x0104, 0x00A6, 0x00A7, 0x00A8, 0x00A9, 0x015E, 0x00AB, 0x00AC, 0x00AD, 0x00AE, 0x017B,
        0x00B0, 0x00B1, 0x02DB, 0x0142, 0x00B4, 0x00B5, 0x00B6, 0x00B7, 0x00B8, 0x0105, 0x015F, 0x00BB, 0x013D, 0x02DD, 0x013E, 0x017C,
        0x0154, 0x00C1, 0x00C2, 0x0102, 0x00C4, 0x0139, 0x0106, 0x00C7, 0x010C, 0x00C9, 0x0118, 0x00CB, 0x011A, 0x00CD, 0x00CE, 0x010E,
        0x0110, 0x0143, 0x0147, 0x00D3, 0x00D4, 0x0150, 0x00D6, 0x00D7, 0x0158, 0x016E, 0x00DA, 0x0170, 0x00DC, 0x00DD, 0x0162, 0x00DF,
        0x0155, 0x00E1, 0x00E2, 0x0103, 0x00E4, 0x013A, 0x0107, 0x00E7, 0x010D, 0x00E9, 0x0119, 0x00EB, 0x011B, 0x00ED, 0x00EE, 0x010F,
        0x0111, 0x0144, 0x0148, 0x00F3, 0x00F4, 0x0151, 0x00F6, 0x00F7, 0x0159, 0x016F, 0x00FA, 0x0171, 0x00FC, 0x00FD, 0x0163, 0x02D9,
    ]
    static let windows1251: [UInt16] = [
        0x0402, 0x0403, 0x201A, 0x0453, 0x201E, 0x2026, 0x2020, 0x2021, 0x20AC, 0x2030, 0x0409, 0x2039, 0x040A, 0x040C, 0x040B, 0x040F,
        0x0452, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x0000, 0x2122, 0x0459, 0x203A, 0x045A, 0x045C, 0x045B, 0x045F,
        0x00A0, 0x040E, 0x045E, 0x0408, 0x00A4, 0x0490, 0x00A6, 0x00A7, 0x0401, 0x00A9, 0x0404, 0x00AB, 0x00AC, 0x00AD, 0x00AE, 0x0407,
        0x00B0, 0x00B1, 0x0406, 0x0456, 0x0491, 0x00B5, 0x00B6, 0x00B7, 0x0451, 0x2116, 0x0454, 0x00BB, 0x0458, 0x0405, 0x0455, 0x0457,
        0x0410, 0x0411, 0x0412, 0x0413, 0x0414, 0x0415, 0x0416, 0x0417, 0x0418, 0x0419, 0x041A, 0x041B, 0x041C, 0x041D, 0x041E, 0x041F,
        0x0420, 0x0421, 0x0422, 0x0423, 0x0424, 0x0425, 0x0426, 0x0427, 0x0428, 0x0429, 0x042A, 0x042B, 0x042C, 0x042D, 0x042E, 0x042F,
        0x0430, 0x0431, 0x0432, 0x0433, 0x0434, 0x0435, 0x0436, 0x0437, 0x0438, 0x0439, 0x043A, 0x043B, 0x043C, 0x043D, 0x043E, 0x043F,
        0x0440, 0x0441, 0x0442, 0x0443, 0x0444, 0x0445, 0x0446, 0x0447, 0x0448, 0x0449, 0x044A, 0x044B, 0x044C, 0x044D, 0x044E, 0x044F,
    ]
    static let iso88592: [UInt16] = [
        0x0080, 0x0081, 0x0082, 0x0083, 0x0084, 0x0085, 0x0086, 0x0087, 0x0088, 0x0089, 0x008A, 0x008B, 0x008C, 0x008D, 0x008E, 0x008F,
        0x0090, 0x0091, 0x0092, 0x0093, 0x0094, 0x0095, 0x0096, 0x0097, 0x0098, 0x0099, 0x009A, 0x009B, 0x009C, 0x009D, 0x009E, 0x009F,
        0x00A0, 0x0104, 0x02D8, 0x0141, 0x00A4, 0x013D, 0x015A, 0x00A7, 0x00A8, 0x0160, 0x015E, 0x0164, 0x0179, 0x00AD, 0x017D, 0x017B,
        0x00B0, 0x0105, 0x02DB, 0x0142, 0x00B4, 0x013E, 0x015B, 0x02C7, 0x00B8, 0x0161, 0x015F, 0x0165, 0x017A, 0x02DD, 0x017E, 0x017C,
        0x0154, 0x00C1, 0x00C2, 0x0102, 0x00C4, 0x0139, 0x0106, 0x00C7, 0x010C, 0x00C9, 0x0118, 0x00CB, 0x011A, 0x00CD, 0x00CE, 0x010E,
        0x0110, 0x0143, 0x0147, 0x00D3, 0x00D4, 0x0150, 0x00D6, 0x00D7, 0x0158, 0x016E, 0x00DA, 0x0170, 0x00DC, 0x00DD, 0x0162, 0x00DF,
        0x0155, 0x00E1, 0x00E2, 0x0103, 0x00E4, 0x013A, 0x0107, 0x00E7, 0x010D, 0x00E9, 0x0119, 0x00EB, 0x011B, 0x00ED, 0x00EE, 0x010F,
        0x0111, 0x0144, 0x0148, 0x00F3, 0x00F4, 0x0151, 0x00F6, 0x00F7, 0x0159, 0x016F, 0x00FA, 0x0171, 0x00FC, 0x00FD, 0x0163, 0x02D9,
    ]
}
