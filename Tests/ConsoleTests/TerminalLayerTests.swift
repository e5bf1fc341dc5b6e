@testable import Console
import Testing
import FoundationEssentials

@Suite("Console: keys from terminal bytes, cells to terminal bytes")
struct TerminalLayerTests {
    @Test("arrows, F-keys and Enter decode whether a sequence arrives whole or split over reads")
    func splitSequences() {
        var decoder = KeyDecoder()
        #expect(decoder.feed([0x1B, 0x5B, 0x41, 0x0D]) == [.up, .enter])
        #expect(decoder.feed([0x1B]) == [])
        #expect(decoder.isWaiting)
        #expect(decoder.feed([0x5B]) == [])
        #expect(decoder.feed([0x42]) == [.down])
        #expect(decoder.feed(Array("\u{1B}OP\u{1B}[13~".utf8)) == [.function(1), .function(3)])
        #expect(decoder.feed(Array("\u{1B}[5~\u{1B}[3~".utf8)) == [.pageUp, .delete])
    }

    @Test("a lone Esc is the Esc key once no more bytes come; an unknown sequence is dropped whole, never typed")
    func escapeAndUnknown() {
        var decoder = KeyDecoder()
        #expect(decoder.feed([0x1B]) == [])
        #expect(decoder.flush() == [.escape])
        #expect(decoder.feed(Array("\u{1B}[?25h".utf8) + [0x31]) == [.character("1")])
        #expect(decoder.feed(Array("\u{1B}[200~".utf8)) == [])
        #expect(!decoder.isWaiting)
        // An unfinished CSI is dropped at the deadline, not left to eat the next key.
        #expect(decoder.feed(Array("\u{1B}[1;".utf8)) == [])
        #expect(decoder.flush() == [])
        #expect(decoder.feed([0x32]) == [.character("2")])
    }

    @Test("UTF-8 letters decode across reads; invalid bytes and C1 controls are dropped")
    func utf8() {
        var decoder = KeyDecoder()
        #expect(decoder.feed([0xD0]) == [])
        #expect(decoder.feed([0xB6]) == [.character("ж")])
        #expect(decoder.feed(Array("Łó".utf8)) == [.character("Ł"), .character("ó")])
        #expect(decoder.feed([0xFF, 0xFE, 0x41]) == [.character("A")])
        #expect(decoder.feed([0xC2, 0x9B, 0x42]) == [.character("B")])  // C1 CSI as UTF-8: a control, dropped
        #expect(decoder.feed([0x00, 0x07]) == [])
    }

    @Test("text from outside is shown as TerminalText.safe shows it: controls and bidi overrides as visible escapes, wide characters as a marked ?")
    func safeCells() {
        var screen = ScreenBuffer(columns: 32, rows: 2)
        screen.put(0, 0, "Łódź\u{1B}[2J\u{202E}К\u{07}")
        #expect(screen[0, 0].character == "Ł")
        let row = (0..<32).map { String(screen[0, $0].character) }.joined()
        #expect(row.hasPrefix("Łódź\\u{1B}[2J\\u{202E}К\\u{07}"), "\(row)")
        let bytes = screen.difference(from: nil)
        #expect(!bytes.contains(0x07))
        // The only ESC bytes are the console's own: clear, cursor, and no ESC from the text.
        #expect(!String(decoding: bytes, as: UTF8.self).contains("\u{202E}"))
        #expect(String(decoding: bytes, as: UTF8.self).components(separatedBy: "\u{1B}").count == 4, "\(String(decoding: bytes, as: UTF8.self).debugDescription)")
        screen.put(1, 0, "山\u{200B}")
        #expect(screen[1, 0].character == "?" && screen[1, 0].style == .replaced)
        #expect(screen[1, 1].character == "?" && screen[1, 1].style == .replaced)
    }

    @Test("a change of one cell sends a cursor move and that cell, not the screen")
    func differences() {
        var before = ScreenBuffer(columns: 32, rows: 16)
        for row in 0..<16 { before.line(row, "Строка \(row) — wiersz \(row)") }
        let full = before.difference(from: nil)
        var after = before
        after.put(3, 7, "X")
        let change = after.difference(from: before)
        #expect(String(decoding: change, as: UTF8.self) == "\u{1B}[4;8HX")
        #expect(change.count * 20 < full.count)
        #expect(before.difference(from: before).isEmpty)
        // A different size (a resize) draws everything again.
        #expect(ScreenBuffer(columns: 24, rows: 10).difference(from: before).starts(with: Array("\u{1B}[m\u{1B}[2J".utf8)))
    }

    @Test("cursor motions: LF and CR where they are shortest, relative moves, CUP from nowhere; style changes only what differs")
    func motionsAndStyles() {
        typealias P = ScreenBuffer.Position
        func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }
        #expect(text(ScreenBuffer.motion(from: nil, to: P(row: 0, column: 0))) == "\u{1B}[H")
        #expect(text(ScreenBuffer.motion(from: nil, to: P(row: 4, column: 0))) == "\u{1B}[5H")
        #expect(text(ScreenBuffer.motion(from: P(row: 3, column: 9), to: P(row: 4, column: 0))) == "\n\r")
        #expect(text(ScreenBuffer.motion(from: P(row: 3, column: 9), to: P(row: 4, column: 9))) == "\n")
        #expect(text(ScreenBuffer.motion(from: P(row: 3, column: 9), to: P(row: 3, column: 8))) == "\u{08}")
        #expect(text(ScreenBuffer.motion(from: P(row: 3, column: 2), to: P(row: 3, column: 20))) == "\u{1B}[18C")
        #expect(text(ScreenBuffer.motion(from: P(row: 3, column: 2), to: P(row: 12, column: 20))) == "\u{1B}[13;21H")
        #expect(Style.plain.transition(to: .title) == "\u{1B}[1;7m")
        #expect(Style.title.transition(to: .plain) == "\u{1B}[m")
        #expect(Style(colour: .red).transition(to: Style(colour: .green)) == "\u{1B}[32m")
        #expect(Style(colour: .red, bold: true).transition(to: Style(colour: .red)) == "\u{1B}[22m")
        #expect(Style.plain.transition(to: .plain) == "")
    }

    @Test("any change, replayed by a VT100 model of the terminal, leaves exactly the new screen (random edits in Polish, Bulgarian and Russian, styles, blank tails)")
    func differenceReplays() {
        var random = SplitMix(seed: 7)
        let words = ["Łódź", "ul. Łąkowa 3", "Свети Георги", "Ёлка", "ЕООД", "żółć", "PN-11996", "  ", "Магазин „Витоша“", "x"]
        let styles: [Style] = [.plain, .title, .selected, .strong, Style(colour: .red), Style(colour: .yellow, bold: true), Style(colour: .cyan)]
        for size in [(32, 16), (24, 10), (40, 20)] {
            var terminal = TerminalModel(columns: size.0, rows: size.1)
            var shown: ScreenBuffer? = nil
            // Kept from frame to frame, as the console keeps it: each frame starts where the last left the cursor.
            var cursor: ScreenBuffer.Position? = nil
            for _ in 0..<300 {
                var next = shown ?? ScreenBuffer(columns: size.0, rows: size.1)
                for _ in 0..<random.next(1...6) {
                    let row = random.next(0...(size.1 - 1))
                    let text = (0..<random.next(0...3)).map { _ in words[random.next(0...(words.count - 1))] }.joined(separator: " ")
                    if random.next(0...2) == 0 {
                        next.line(row, text, styles[random.next(0...(styles.count - 1))])
                    } else {
                        next.put(row, random.next(0...(size.0 - 1)), text, styles[random.next(0...(styles.count - 1))])
                    }
                }
                let bytes = next.difference(from: shown, cursor: &cursor)
                if let shown { #expect(bytes.count <= next.difference(from: nil).count || bytes.count <= 64) ; _ = shown }
                terminal.apply(bytes)
                if let cursor {
                    #expect(cursor == ScreenBuffer.Position(row: terminal.row, column: terminal.column), "the cursor is not where the encoder thinks")
                }
                for row in 0..<size.1 {
                    for column in 0..<size.0 where terminal.cells[row][column] != next[row, column] {
                        Issue.record("row \(row) column \(column): the terminal shows \(terminal.cells[row][column]), the screen has \(next[row, column])")
                        return
                    }
                }
                #expect(terminal.style == .plain)
                shown = next
            }
        }
    }
}

/// A deterministic random source for the tests (no Foundation).
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next(_ range: ClosedRange<Int>) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return range.lowerBound + Int(z % UInt64(range.count))
    }
}

/// What a VT100 with autowrap and output post-processing off does with the bytes the console
/// sends: CUP, CUU/CUD/CUF/CUB, CHA, EL, ED 2, SGR (bold, reverse, colours, resets), LF, CR, BS.
/// Anything else fails the test: the console must not send it.
struct TerminalModel {
    var cells: [[Cell]]
    var row = 0
    var column = 0
    var style = Style.plain
    let columns: Int
    let rows: Int

    init(columns: Int, rows: Int) {
        self.columns = columns
        self.rows = rows
        cells = Array(repeating: Array(repeating: Cell(), count: columns), count: rows)
    }

    mutating func apply(_ bytes: [UInt8]) {
        let scalars = Array(String(decoding: bytes, as: UTF8.self))
        var index = 0
        while index < scalars.count {
            let character = scalars[index]
            index += 1
            switch character {
            case "\u{1B}":
                guard index < scalars.count, scalars[index] == "[" else { Issue.record("ESC without CSI"); return }
                index += 1
                var parameters = ""
                while index < scalars.count, scalars[index].isNumber || scalars[index] == ";" { parameters.append(scalars[index]); index += 1 }
                guard index < scalars.count else { Issue.record("unfinished CSI"); return }
                let final = scalars[index]
                index += 1
                let numbers = parameters.split(separator: ";", omittingEmptySubsequences: false).map { Int($0) ?? 0 }
                let first = max(numbers.first ?? 1, 1)
                switch final {
                case "H":
                    row = max(numbers.first ?? 1, 1) - 1
                    column = numbers.count > 1 ? max(numbers[1], 1) - 1 : 0
                case "A": row -= first
                case "B": row += first
                case "C": column += first
                case "D": column -= first
                case "G": column = first - 1
                case "K": for erase in column..<columns { cells[row][erase] = Cell(character: " ", style: .plain) }
                case "J":
                    #expect(numbers == [2])
                    cells = Array(repeating: Array(repeating: Cell(), count: columns), count: rows)
                case "m":
                    for code in numbers.isEmpty ? [0] : numbers {
                        switch code {
                        case 0: style = .plain
                        case 1: style.bold = true
                        case 22: style.bold = false
                        case 7: style.reverse = true
                        case 27: style.reverse = false
                        case 39: style.colour = .none
                        default:
                            guard let colour = Style.Colour(rawValue: UInt8(code)) else { Issue.record("SGR \(code)"); return }
                            style.colour = colour
                        }
                    }
                default: Issue.record("CSI \(parameters)\(final) is not one the console may send"); return
                }
            case "\n": row += 1
            case "\r": column = 0
            case "\u{08}": column -= 1
            default:
                guard character.unicodeScalars.first!.value >= 0x20 else { Issue.record("control \(character.unicodeScalars.first!.value)"); return }
                cells[row][column] = Cell(character: character, style: style)
                column = min(column + 1, columns - 1)
            }
            guard (0..<rows).contains(row), (0..<columns).contains(column) else { Issue.record("cursor off the screen at \(row),\(column)"); return }
        }
    }
}
