import Field

/// How a cell is drawn. Few styles on purpose: a handheld's console may have 8 colours or none.
struct Style: Equatable, Sendable {
    enum Colour: UInt8, Sendable { case none = 0, red = 31, green = 32, yellow = 33, cyan = 36 }
    var colour: Colour = .none
    var bold = false
    var reverse = false

    static let plain = Style()
    static let title = Style(bold: true, reverse: true)
    static let selected = Style(reverse: true)
    static let strong = Style(bold: true)
    /// A character that came from outside and cannot be shown as it is (a control, a bidi override).
    static let replaced = Style(colour: .red, reverse: true)

    /// The SGR sequence that sets this style from scratch: "ESC[m" for plain.
    var sgr: String { "\u{1B}[" + (self == .plain ? "" : (["0"] + codes).joined(separator: ";")) + "m" }

    private var codes: [String] {
        var codes: [String] = []
        if bold { codes.append("1") }
        if reverse { codes.append("7") }
        if colour != .none { codes.append(String(colour.rawValue)) }
        return codes
    }

    /// The shortest SGR sequence that turns `self` into `next` on the terminal: only what changes
    /// (bold off is 22, reverse off 27, the default colour 39), or a reset and the new style,
    /// whichever is shorter; empty when nothing changes.
    func transition(to next: Style) -> String {
        guard next != self else { return "" }
        var changes: [String] = []
        if bold != next.bold { changes.append(next.bold ? "1" : "22") }
        if reverse != next.reverse { changes.append(next.reverse ? "7" : "27") }
        if colour != next.colour { changes.append(next.colour == .none ? "39" : String(next.colour.rawValue)) }
        let incremental = "\u{1B}[" + changes.joined(separator: ";") + "m"
        let reset = next.sgr
        return incremental.utf8.count < reset.utf8.count ? incremental : reset
    }
}

struct Cell: Equatable {
    var character: Character = " "
    var style: Style = .plain
}

/// The screen as a grid of cells, drawn into by the screens and sent to the terminal as the
/// difference from what the terminal already shows: on a 9600-baud serial console a full redraw
/// of 32x16 takes half a second, a changed line a few milliseconds.
struct ScreenBuffer {
    private(set) var columns: Int
    private(set) var rows: Int
    private var cells: [Cell]

    init(columns: Int, rows: Int) {
        self.columns = max(columns, 1)
        self.rows = max(rows, 1)
        cells = Array(repeating: Cell(), count: self.columns * self.rows)
    }

    subscript(row: Int, column: Int) -> Cell {
        get { cells[row * columns + column] }
        set { cells[row * columns + column] = newValue }
    }

    mutating func clear() { cells = Array(repeating: Cell(), count: columns * rows) }

    /// Writes `text` at (row, column), clipped to the line; returns the column after it. Text
    /// from outside is made safe as every command makes it (`TerminalText.safe`: controls, bidi
    /// overrides and line separators show as a visible `\u{1B}`), then cell by cell: what is left
    /// that a cell cannot hold (other format characters, wide CJK and emoji, a lone combining
    /// mark) shows as a red `?`, so the grid the diff relies on stays exact and nothing reaches
    /// the terminal raw.
    @discardableResult
    mutating func put(_ row: Int, _ column: Int, _ text: String, _ style: Style = .plain) -> Int {
        guard row >= 0, row < rows else { return column }
        var column = column
        for character in TerminalText.safe(text) {
            guard column < columns else { break }
            if column >= 0 {
                if let safe = Self.displayable(character) {
                    self[row, column] = Cell(character: safe, style: style)
                } else {
                    self[row, column] = Cell(character: "?", style: .replaced)
                }
            }
            column += 1
        }
        return column
    }

    /// Fills a whole line with `text` padded with spaces: in `style` when it is reversed (titles,
    /// the selection: the bar spans the line), else plain, as a bold or coloured space looks the
    /// same and a plain blank tail costs one EL instead of a space per cell.
    mutating func line(_ row: Int, _ text: String, _ style: Style = .plain) {
        let end = put(row, 0, text, style)
        if end < columns { put(row, end, String(repeating: " ", count: columns - end), style.reverse ? style : .plain) }
    }

    static func displayable(_ character: Character) -> Character? {
        guard let first = character.unicodeScalars.first else { return nil }
        switch first.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator, .surrogate, .privateUse, .unassigned: return nil
        default: break
        }
        if isWide(first.value) { return nil }
        // Combining marks after a base letter are part of it (one cell); alone, they are not text.
        if first.properties.generalCategory == .nonspacingMark || first.properties.generalCategory == .enclosingMark { return nil }
        return character
    }

    static func isWide(_ value: UInt32) -> Bool {
        switch value {
        case 0x1100...0x115F, 0x2E80...0xA4CF, 0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE30...0xFE4F, 0xFF00...0xFF60,
             0xFFE0...0xFFE6, 0x1F300...0x1FAFF, 0x20000...0x3FFFD: return true
        default: return false
        }
    }

    /// The bytes that turn `shown` (what the terminal has; nil: unknown, draw everything) into
    /// this buffer: the cursor moved only to runs of changed cells, by the shortest motion (a
    /// line feed, CR, a relative move or an absolute one), or over a few unchanged cells by
    /// rewriting them when that is shorter; the style changed only where it changes, by the
    /// shortest sequence; a line's blank tail erased with one EL. Never more than a full redraw.
    func difference(from shown: ScreenBuffer?) -> [UInt8] {
        var cursor: Position? = nil
        return difference(from: shown, cursor: &cursor)
    }

    /// As `difference(from:)`, from where the terminal's cursor is (`cursor`; nil: unknown),
    /// which is left where these bytes leave it. The console keeps it from frame to frame: the
    /// next key's change is usually a cell or two from where the last frame ended (the next
    /// character of a field), a backspace or nothing instead of an absolute move. Only the
    /// console writes to its terminal, so what it sent is where the cursor is.
    func difference(from shown: ScreenBuffer?, cursor: inout Position?) -> [UInt8] {
        guard let shown, shown.columns == columns, shown.rows == rows else { return render(from: nil, cursor: &cursor) }
        var changedCursor = cursor
        let changed = render(from: shown, cursor: &changedCursor)
        if changed.count <= 64 {
            cursor = changedCursor
            return changed
        }
        var fullCursor: Position? = nil
        let full = render(from: nil, cursor: &fullCursor)
        if full.count < changed.count {
            cursor = fullCursor
            return full
        }
        cursor = changedCursor
        return changed
    }

    /// A full redraw clears the screen and draws the difference from a blank one, from an
    /// unknown cursor. `at` is where the cursor starts and, after, where it ended (nil: unknown).
    private func render(from shown: ScreenBuffer?, cursor at: inout Position?) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(1_024)
        let blank = Cell()
        if shown == nil { out += Array("\u{1B}[m\u{1B}[2J".utf8) }
        // Every frame starts and ends in the plain style.
        var style = Style.plain
        var cursor: Position? = shown == nil ? nil : at
        defer { at = cursor }
        func had(_ row: Int, _ column: Int) -> Cell { shown?[row, column] ?? blank }
        func setStyle(_ next: Style) {
            out += Array(style.transition(to: next).utf8)
            style = next
        }
        for row in 0..<rows {
            // Where this row's blank tail starts: nothing but plain spaces from there on.
            var tail = columns
            while tail > 0 && self[row, tail - 1] == blank { tail -= 1 }
            for column in 0..<columns {
                let cell = self[row, column]
                if had(row, column) == cell { continue }
                let target = Position(row: row, column: column)
                if column >= tail {
                    // Everything from here to the end of the line becomes blank: erase it at once.
                    out += Self.motion(from: cursor, to: target)
                    setStyle(.plain)
                    out += Array("\u{1B}[K".utf8)
                    cursor = target
                    break
                }
                let move = Self.motion(from: cursor, to: target)
                if let at = cursor, at.row == row, at.column < column,
                   (at.column..<column).allSatisfy({ self[row, $0].style == style }) {
                    // Rewriting the unchanged cells up to the change may be shorter than moving.
                    var cells: [UInt8] = []
                    for skipped in at.column..<column { cells += Array(String(self[row, skipped].character).utf8) }
                    out += cells.count <= move.count ? cells : move
                } else {
                    out += move
                }
                setStyle(cell.style)
                out += Array(String(cell.character).utf8)
                // Autowrap is off (`Terminal.enterRawMode`): a character in the last column leaves
                // the cursor on it, so the next row is a CR LF away, not an absolute move.
                cursor = Position(row: row, column: min(column + 1, columns - 1))
            }
        }
        setStyle(.plain)
        return out
    }

    struct Position: Equatable { var row: Int; var column: Int }

    /// The shortest bytes that move the cursor from `from` (nil: unknown) to `to`: CUP, or from
    /// a known place CR, LF (autowrap off and output post-processing off: LF only moves down,
    /// and never on the last row, so it never scrolls), CUU/CUD/CUF/CUB or CHA.
    static func motion(from: Position?, to: Position) -> [UInt8] {
        func csi(_ count: Int, _ final: String) -> String { "\u{1B}[" + (count == 1 ? "" : String(count)) + final }
        var best = "\u{1B}[" + (to.row == 0 && to.column == 0 ? "" : String(to.row + 1) + (to.column == 0 ? "" : ";" + String(to.column + 1))) + "H"
        guard let from else { return Array(best.utf8) }
        if from == to { return [] }
        var vertical = ""
        let down = to.row - from.row
        if down > 0 { vertical = down <= 3 ? String(repeating: "\n", count: down) : csi(down, "B") }
        if down < 0 { vertical = csi(-down, "A") }
        var horizontal: [String] = []
        let right = to.column - from.column
        if right == 0 { horizontal.append("") }
        if right > 0 { horizontal.append(csi(right, "C")) }
        if right < 0 { horizontal.append(right == -1 ? "\u{08}" : csi(-right, "D")) }
        if to.column == 0 { horizontal.append("\r") }
        if to.column > 0 { horizontal.append("\r" + csi(to.column, "C")) }
        horizontal.append(csi(to.column + 1, "G"))
        for candidate in horizontal where (vertical + candidate).utf8.count < best.utf8.count { best = vertical + candidate }
        return Array(best.utf8)
    }
}
