import Seal
import Testing

private let chunks = [
    "Zażółć gęślą jaźń",
    "Здравейте, България",
    "Съешь же ещё этих мягких французских булок",
].map { Array($0.utf8) }

/// A complete stream: each chunk a message, the last one tagged final.
private func sealedStream(key: SecretBytes) throws -> (header: [UInt8], chunks: [[UInt8]]) {
    let pusher = try SecretStreamPusher(key: key)
    var sealed: [[UInt8]] = []
    for (index, chunk) in chunks.enumerated() {
        sealed.append(try pusher.push(chunk, tag: index == chunks.count - 1 ? .final : .message))
    }
    #expect(pusher.finished)
    return (pusher.header, sealed)
}

@Test func secretStreamRoundTrip() throws {
    let key = SecretBytes.random(count: SecretStream.keyBytes)
    let (header, sealed) = try sealedStream(key: key)
    #expect(header.count == 24)
    #expect(sealed[0].count == chunks[0].count + SecretStream.overheadBytes)

    let puller = try SecretStreamPuller(key: key, header: header)
    var tags: [SecretStreamTag] = []
    for (index, chunk) in sealed.enumerated() {
        let (message, tag) = try puller.pull(chunk)
        #expect(message == chunks[index])
        tags.append(tag)
    }
    #expect(tags == [.message, .message, .final])
    try puller.finish()
}

@Test func secretStreamRefusesTamperedChunk() throws {
    let key = SecretBytes.random(count: SecretStream.keyBytes)
    var (header, sealed) = try sealedStream(key: key)
    sealed[1][3] ^= 0x01
    let puller = try SecretStreamPuller(key: key, header: header)
    #expect(try puller.pull(sealed[0]).message == chunks[0])
    #expect(throws: SealError.authenticationFailed) { try puller.pull(sealed[1]) }
}

@Test func secretStreamRefusesReorderedChunks() throws {
    let key = SecretBytes.random(count: SecretStream.keyBytes)
    let (header, sealed) = try sealedStream(key: key)
    let puller = try SecretStreamPuller(key: key, header: header)
    #expect(throws: SealError.authenticationFailed) { try puller.pull(sealed[1]) }
    // The refused chunk did not advance the stream: the right one still opens.
    #expect(try puller.pull(sealed[0]).message == chunks[0])
}

@Test func secretStreamNoticesTruncation() throws {
    let key = SecretBytes.random(count: SecretStream.keyBytes)
    let (header, sealed) = try sealedStream(key: key)

    let cutShort = try SecretStreamPuller(key: key, header: header)
    for chunk in sealed.dropLast() { _ = try cutShort.pull(chunk) }
    #expect(!cutShort.finished)
    #expect(throws: SealError.truncated) { try cutShort.finish() }

    let cutChunk = try SecretStreamPuller(key: key, header: header)
    #expect(throws: SealError.authenticationFailed) { try cutChunk.pull(Array(sealed[0].dropLast(1))) }
    #expect(throws: SealError.authenticationFailed) { try cutChunk.pull([1, 2, 3]) }
}

@Test func secretStreamRefusesWrongKeyHeaderAndAdditionalData() throws {
    let key = SecretBytes.random(count: SecretStream.keyBytes)
    let (header, sealed) = try sealedStream(key: key)
    let otherKey = SecretBytes.random(count: SecretStream.keyBytes)
    #expect(throws: SealError.authenticationFailed) {
        try SecretStreamPuller(key: otherKey, header: header).pull(sealed[0])
    }
    var otherHeader = header
    otherHeader[0] ^= 0x80
    #expect(throws: SealError.authenticationFailed) {
        try SecretStreamPuller(key: key, header: otherHeader).pull(sealed[0])
    }
    #expect(throws: SealError.authenticationFailed) {
        try SecretStreamPuller(key: key, header: header).pull(sealed[0], additionalData: [1])
    }
    #expect(throws: SealError.invalidLength(what: "secret stream header", expected: 24...24, actual: 23)) {
        try SecretStreamPuller(key: key, header: Array(header.dropLast()))
    }
}

@Test func nothingMovesAfterTheFinalChunk() throws {
    let key = SecretBytes.random(count: SecretStream.keyBytes)
    let pusher = try SecretStreamPusher(key: key)
    let last = try pusher.push(chunks[0], tag: .final)
    #expect(throws: SealError.streamFinished) { try pusher.push(chunks[1]) }

    let puller = try SecretStreamPuller(key: key, header: pusher.header)
    #expect(try puller.pull(last).tag == .final)
    #expect(throws: SealError.streamFinished) { try puller.pull(last) }
}
