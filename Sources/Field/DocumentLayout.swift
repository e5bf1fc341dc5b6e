/// Each kind's fields as data: what `DocumentCodec` writes after the version and kind bytes, in
/// order, with the bound its reader applies. It is the registry's one field list for whoever
/// handles documents without knowing their Swift types: Sync lays a batch's documents out as
/// one column per field (docs/protocol.md §6) from it. The typed `encode`/`decode` follow the
/// same order; `DocumentLayoutTests` holds them equal (random documents of every kind read
/// through the layout to the last byte and written back byte-identical).
extension DocumentCodec {
    public indirect enum FieldType: Sendable, Equatable {
        /// A zig-zag varint.
        case int
        /// A varint byte length and UTF-8, at most `limit` bytes.
        case text(limit: Int)
        /// A position in a declared enumeration of `cases` cases, as a varint.
        case code(cases: Int)
        /// A 0/1 byte, then the value when 1.
        case optional(FieldType)
        /// A varint count (at most `limit`; each item takes at least `minimumItemBytes`), then the items' fields.
        case list(limit: Int, minimumItemBytes: Int, [Field])
    }

    public struct Field: Sendable, Equatable {
        public let name: String
        public let type: FieldType
        public init(_ name: String, _ type: FieldType) {
            self.name = name
            self.type = type
        }
    }

    /// One field's value as the layout reads it: `.absent` only for an optional without a value.
    public enum Value: Sendable, Equatable {
        case int(Int64)
        case text(String)
        case absent
        case list([[Value]])
    }

    static let identifier = FieldType.text(limit: Limits.identifierBytes)
    static let freeText = FieldType.text(limit: Limits.textBytes)
    static func code<T: CaseIterable>(_: T.Type) -> FieldType { .code(cases: T.allCases.count) }

    /// The fields of `kind`, in the codec's order.
    public static func layout(of kind: DocumentKind) -> [Field] {
        switch kind {
        case .order:
            return [Field("id", identifier), Field("customer_id", identifier), Field("state", code(OrderState.self)),
                    Field("approval", code(Approval.self)), Field("hold_reason", .optional(freeText)), Field("price_level", identifier),
                    Field("currency", identifier), Field("total_minor", .int), Field("note", freeText), Field("created_at", .int),
                    Field("confirmed_at", .optional(.int)),
                    Field("lines", .list(limit: Limits.lines, minimumItemBytes: 7, [
                        Field("line_no", .int), Field("part_number", identifier), Field("unit", identifier), Field("quantity", .int),
                        Field("base_quantity", .int), Field("unit_price_minor", .int), Field("amount_minor", .int)]))]
        case .visit:
            return [Field("id", identifier), Field("customer_id", identifier), Field("at", .int), Field("outcome", code(VisitOutcome.self)),
                    Field("note", freeText)]
        case .payment:
            return [Field("id", identifier), Field("customer_id", identifier), Field("amount_minor", .int), Field("currency", identifier),
                    Field("method", code(PaymentMethod.self)), Field("receipt", identifier), Field("collected_at", .int)]
        case .paymentVoid:
            return [Field("id", identifier), Field("payment_id", identifier), Field("customer_id", identifier), Field("amount_minor", .int),
                    Field("currency", identifier), Field("receipt", identifier), Field("reason", freeText), Field("at", .int)]
        case .displayRequest:
            return [Field("id", identifier), Field("customer_id", identifier), Field("type_code", identifier), Field("width_cm", .int),
                    Field("height_cm", .int), Field("depth_cm", .optional(.int)), Field("note", freeText), Field("state", identifier),
                    Field("at", .int),
                    Field("materials", .list(limit: Limits.lines, minimumItemBytes: 4, [
                        Field("part_number", identifier), Field("location", identifier), Field("quantity", .int), Field("short_quantity", .int)]))]
        case .complaint:
            return [Field("id", identifier), Field("customer_id", identifier), Field("order_ref", .optional(identifier)),
                    Field("part_number", .optional(identifier)), Field("category", code(ComplaintCategory.self)), Field("description", freeText),
                    Field("state", identifier), Field("at", .int)]
        case .quote:
            return [Field("id", identifier), Field("customer_id", identifier), Field("currency", identifier), Field("discount_basis_points", .int),
                    Field("total_minor", .int), Field("approval", code(Approval.self)), Field("hold_reason", .optional(freeText)), Field("at", .int),
                    Field("lines", .list(limit: Limits.lines, minimumItemBytes: 5, [
                        Field("line_no", .int), Field("part_number", identifier), Field("quantity", .int), Field("unit_price_minor", .int),
                        Field("amount_minor", .int)]))]
        case .maintenance:
            return [Field("id", identifier), Field("equipment_id", identifier), Field("at", .int), Field("kind", code(MaintenanceKind.self)),
                    Field("note", freeText)]
        }
    }

    /// Reads a document's fields through its kind's layout, with the typed reader's bounds.
    public static func values(_ bytes: [UInt8]) throws(Failure) -> (kind: DocumentKind, values: [Value]) {
        let (start, kind) = try header(bytes)
        var input = start
        let values = try read(layout(of: kind), from: &input)
        guard input.offset == bytes.count else { throw .trailingBytes(bytes.count - input.offset) }
        return (kind, values)
    }

    static func read(_ fields: [Field], from input: inout Reader) throws(Failure) -> [Value] {
        var values: [Value] = []
        values.reserveCapacity(fields.count)
        for field in fields { values.append(try read(field.type, field.name, from: &input)) }
        return values
    }

    static func read(_ type: FieldType, _ name: String, from input: inout Reader) throws(Failure) -> Value {
        switch type {
        case .int: return .int(try input.int(name))
        case .text(let limit): return .text(try input.text(name, limit: limit))
        case .code(let cases):
            let raw = try input.varint(name)
            guard raw < UInt64(cases) else { throw .unknownCode(field: name, value: raw) }
            return .int(Int64(raw))
        case .optional(let inner): return try input.present(name) ? try read(inner, name, from: &input) : .absent
        case .list(let limit, let minimumItemBytes, let fields):
            let count = try input.count(name, limit: limit, minimumItemBytes: minimumItemBytes)
            var items: [[Value]] = []
            items.reserveCapacity(count)
            for _ in 0..<count { items.append(try read(fields, from: &input)) }
            return .list(items)
        }
    }

    /// The codec's bytes of a document of `kind` with `values` (in its layout's order). Values
    /// of the wrong shape for their field are written as the field's zero: a caller that read
    /// them through the layout (or checked them against it) never has any.
    public static func encode(_ kind: DocumentKind, values: [Value]) -> [UInt8] {
        var out = Writer()
        out.bytes.append(version)
        out.bytes.append(kind.rawValue)
        write(layout(of: kind), values, into: &out)
        return out.bytes
    }

    static func write(_ fields: [Field], _ values: [Value], into out: inout Writer) {
        for (index, field) in fields.enumerated() { write(field.type, index < values.count ? values[index] : .absent, into: &out) }
    }

    static func write(_ type: FieldType, _ value: Value, into out: inout Writer) {
        switch (type, value) {
        case (.int, .int(let number)): out.int(number)
        case (.int, _): out.int(0)
        case (.text, .text(let text)): out.text(text)
        case (.text, _): out.text("")
        case (.code, .int(let position)): out.varint(UInt64(bitPattern: position))
        case (.code, _): out.varint(0)
        case (.optional, .absent): out.bytes.append(0)
        case (.optional(let inner), _):
            out.bytes.append(1)
            write(inner, value, into: &out)
        case (.list(_, _, let fields), .list(let items)):
            out.count(items.count)
            for item in items { write(fields, item, into: &out) }
        case (.list, _): out.count(0)
        }
    }
}
