import Deflate
import Testing

private let texts = [
    "Zażółć gęślą jaźń",
    "Здравейте, България",
    "Съешь же ещё этих мягких французских булок",
]

private let generous = InflateLimits(maxOutputBytes: 1 << 20, maxRatio: 1000)

/// A customer record as the sync protocol would carry it: mixed scripts, repeated field names.
private func record(_ index: Int) -> [UInt8] {
    let names = ["Łukasz Wójcik", "Йордан Петров", "Анна Соколова", "Gżegżółka Sp. z o.o."]
    let cities = ["Łódź", "Пловдив", "Санкт-Петербург", "Kraków"]
    return Array("customer \(index) name=\(names[index % 4]) city=\(cities[(index / 4) % 4]) debt=\(index * 37) zł\n".utf8)
}

@Test(arguments: [DeflateFormat.raw, .zlib, .gzip])
func roundTripsPolishBulgarianRussian(format: DeflateFormat) throws {
    for text in texts {
        let bytes = Array(text.utf8)
        let compressed = try Deflate.compress(bytes, format: format)
        let restored = try Deflate.decompress(compressed, format: format, limits: generous)
        #expect(restored == bytes)
        #expect(String(decoding: restored, as: UTF8.self) == text)
    }
}

@Test func gzipOutputStartsWithGzipMagic() throws {
    let compressed = try Deflate.compress(Array(texts[1].utf8), format: .gzip)
    #expect(Array(compressed.prefix(3)) == [0x1f, 0x8b, 0x08])  // magic, then method "deflate"
}

@Test func compressionShrinksRepetitiveText() throws {
    let bytes = (0..<200).flatMap(record)
    let compressed = try Deflate.compress(bytes, format: .gzip)
    #expect(compressed.count * 5 < bytes.count)
}

@Test func framesThroughOneContextDecodeAsTheyArrive() throws {
    let deflater = try Deflater(format: .raw)
    let inflater = try Inflater(format: .raw, limits: generous)
    var frameSizes: [Int] = []
    for index in 0..<100 {
        let frame = record(index)
        let compressed = try deflater.compress(frame, flush: .sync)
        #expect(Array(compressed.suffix(4)) == [0x00, 0x00, 0xff, 0xff])  // sync-flush marker
        #expect(try inflater.decompress(compressed) == frame)
        frameSizes.append(compressed.count)
    }
    // Later frames refer back to earlier ones, which is the point of keeping one context.
    #expect(frameSizes[99] < frameSizes[0])
    #expect(!inflater.finished)
}

@Test func unflushedInputIsDeliveredWithTheNextFlush() throws {
    let deflater = try Deflater(format: .raw)
    let inflater = try Inflater(format: .raw, limits: generous)
    let first = try deflater.compress(record(1), flush: .none)
    let second = try deflater.compress(record(2), flush: .sync)
    #expect(try inflater.decompress(first + second) == record(1) + record(2))
}

@Test func finishedStreamsRefuseMoreData() throws {
    let deflater = try Deflater(format: .zlib)
    let compressed = try deflater.compress(record(3), flush: .finish)
    #expect(deflater.finished)
    #expect(throws: DeflateError.streamFinished) { try deflater.compress(record(4)) }

    let inflater = try Inflater(format: .zlib, limits: generous)
    #expect(try inflater.decompress(compressed) == record(3))
    #expect(inflater.finished)
    #expect(throws: DeflateError.streamFinished) { try inflater.decompress([0x01]) }
}

@Test func bytesAfterTheEndOfTheStreamAreRefused() throws {
    let compressed = try Deflate.compress(record(5), format: .gzip)
    #expect(throws: DeflateError.trailingData(count: 3)) {
        try Deflate.decompress(compressed + [1, 2, 3], format: .gzip, limits: generous)
    }
}

private let vocabulary = Array("customer name= city= debt= zł Łódź Пловдив Санкт-Петербург Kraków Łukasz Wójcik Йордан Петров Анна Соколова".utf8)

@Test func presetDictionaryShrinksASmallFrame() throws {
    let frame = record(6)
    let plain = try Deflater(format: .raw).compress(frame)
    let primed = try Deflater(format: .raw, dictionary: vocabulary).compress(frame)
    #expect(primed.count < plain.count)

    let inflater = try Inflater(format: .raw, dictionary: vocabulary, limits: generous)
    #expect(try inflater.decompress(primed) == frame)
}

@Test func rawFrameWithoutItsDictionaryIsRefused() throws {
    let primed = try Deflater(format: .raw, dictionary: vocabulary).compress(record(6))
    let inflater = try Inflater(format: .raw, limits: generous)
    // The frame points back into a window that is empty here.
    #expect {
        try inflater.decompress(primed)
    } throws: { error in
        guard case .corruptData(let message) = error as? DeflateError else { return false }
        return message == "invalid distance too far back"
    }
}

@Test func zlibStreamNamesItsDictionary() throws {
    let primed = try Deflater(format: .zlib, dictionary: vocabulary).compress(record(7), flush: .finish)

    #expect {
        try Inflater(format: .zlib, limits: generous).decompress(primed)
    } throws: { error in
        guard case .dictionaryRequired = error as? DeflateError else { return false }
        return true
    }
    #expect {
        try Inflater(format: .zlib, dictionary: Array("wrong words".utf8), limits: generous).decompress(primed)
    } throws: { error in
        guard case .dictionaryMismatch = error as? DeflateError else { return false }
        return true
    }
    let right = try Inflater(format: .zlib, dictionary: vocabulary, limits: generous)
    #expect(try right.decompress(primed) == record(7))
}

@Test func gzipRefusesADictionary() {
    #expect(throws: DeflateError.self) { try Deflater(format: .gzip, dictionary: vocabulary) }
    #expect(throws: DeflateError.self) { try Inflater(format: .gzip, dictionary: vocabulary, limits: generous) }
}

@Test func invalidLevelIsRefused() {
    #expect(throws: DeflateError.invalidArgument("compression level 12 is outside -1...9")) {
        try Deflater(level: 12)
    }
}

/// 50 MB of zeros, compressed a megabyte at a time so the test never holds the 50 MB either.
private func zeroBomb() throws -> [UInt8] {
    let deflater = try Deflater(level: 9, format: .raw)
    let megabyte = [UInt8](repeating: 0, count: 1_000_000)
    var bomb: [UInt8] = []
    for _ in 0..<49 { bomb += try deflater.compress(megabyte, flush: .none) }
    bomb += try deflater.compress(megabyte, flush: .finish)
    return bomb
}

@Test func decompressionBombIsRefusedBySize() throws {
    let bomb = try zeroBomb()
    #expect(bomb.count < 100_000)
    let inflater = try Inflater(format: .raw, limits: InflateLimits(maxOutputBytes: 1 << 20, maxRatio: .max))
    #expect(throws: DeflateError.outputLimitExceeded(limit: 1 << 20)) { try inflater.decompress(bomb) }
    // The context is not trusted after a refusal.
    #expect(throws: DeflateError.streamBroken) { try inflater.decompress([]) }
}

@Test func decompressionBombIsRefusedByRatio() throws {
    let bomb = try zeroBomb()
    let limits = InflateLimits(maxOutputBytes: 64 << 20, maxRatio: 100)
    #expect(throws: DeflateError.ratioExceeded(limit: 100, inputBytes: bomb.count)) {
        try Deflate.decompress(bomb, format: .raw, limits: limits)
    }
}

@Test func outputLimitIsExact() throws {
    let bytes = [UInt8](repeating: 0x41, count: 100_000)
    let compressed = try Deflate.compress(bytes, format: .zlib)
    let exact = InflateLimits(maxOutputBytes: 100_000, maxRatio: .max)
    #expect(try Deflate.decompress(compressed, format: .zlib, limits: exact) == bytes)
    let short = InflateLimits(maxOutputBytes: 99_999, maxRatio: .max)
    #expect(throws: DeflateError.outputLimitExceeded(limit: 99_999)) {
        try Deflate.decompress(compressed, format: .zlib, limits: short)
    }
}

@Test func smallOutputIsNotRefusedForItsRatio() throws {
    let bytes = [UInt8](repeating: 0x20, count: 4000)  // below the 4 KiB floor, ratio ~400
    let compressed = try Deflate.compress(bytes, format: .raw)
    let strict = InflateLimits(maxOutputBytes: 1 << 20, maxRatio: 2)
    #expect(try Deflate.decompress(compressed, format: .raw, limits: strict) == bytes)
}

@Test func corruptInputIsRefused() throws {
    var compressed = try Deflate.compress((0..<20).flatMap(record), format: .gzip)
    compressed[compressed.count / 2] ^= 0xff
    #expect {
        try Deflate.decompress(compressed, format: .gzip, limits: generous)
    } throws: { error in
        guard case .corruptData(let message) = error as? DeflateError else { return false }
        return message != nil
    }
    #expect(throws: DeflateError.corruptData(message: "incorrect header check")) {
        try Deflate.decompress(Array("not gzip at all".utf8), format: .gzip, limits: generous)
    }
}

@Test func truncatedInputIsRefused() throws {
    let compressed = try Deflate.compress((0..<20).flatMap(record), format: .gzip)
    #expect(throws: DeflateError.truncated) {
        try Deflate.decompress(Array(compressed.dropLast(10)), format: .gzip, limits: generous)
    }
}

@Test func errorsExplainThemselves() {
    let error = DeflateError.outputLimitExceeded(limit: 1024)
    #expect(error.description.contains("1024 bytes"))
    #expect(DeflateError.corruptData(message: "invalid block type").description.contains("Z_DATA_ERROR"))
}
