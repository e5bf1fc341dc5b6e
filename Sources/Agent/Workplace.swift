public import Field
import Store

/// What a handheld may capture, by the role of the rep who carries it (FIELD-NOTES §2: "each
/// workplace enables only the functions it needs"). The role is the hub's: it travels with the
/// rep's row in the working set (`reps.role`), so the office changes it (`satchel-hub rep scope
/// --role`) and the next sync brings it. The matrix is in docs/rep-guide.md.
public enum WorkplaceFunction: String, CaseIterable, Sendable {
    case orders, payments, quotes, displayRequests = "display_requests", maintenance, visits, complaints

    /// The verb phrase of a refusal: "merchandisers do not take orders".
    var doing: String {
        switch self {
        case .orders: return "take orders"
        case .payments: return "collect payments"
        case .quotes: return "make quotes"
        case .displayRequests: return "request displays"
        case .maintenance: return "record equipment maintenance"
        case .visits: return "record visits"
        case .complaints: return "file complaints"
        }
    }
}

public enum Workplace: String, CaseIterable, Sendable {
    case rep, merchandiser, technician, supervisor, vanSeller = "van_seller"

    public var functions: Set<WorkplaceFunction> { Set(WorkplaceFunction.allCases.filter(allows)) }

    /// Whether this workplace includes `function`: a switch, not a `Set` built per call (building
    /// `Set<WorkplaceFunction>` cost every capture about 300,000 instructions of the runtime
    /// checking its Hashable conformance, callgrind).
    public func allows(_ function: WorkplaceFunction) -> Bool {
        functionList.contains(function)
    }

    private var functionList: [WorkplaceFunction] {
        switch self {
        // Pre-selling: the order now, delivery later; the rep collects and quotes.
        case .rep: return [.orders, .payments, .quotes, .displayRequests, .visits, .complaints]
        // Shelf and market data, displays; no selling, no money.
        case .merchandiser: return [.displayRequests, .visits, .complaints]
        // Equipment at outlets (coolers); no selling, no money.
        case .technician: return [.maintenance, .visits, .complaints]
        // Sells and delivers from the van's stock at list prices: no quotes, no displays.
        case .vanSeller: return [.orders, .payments, .visits, .complaints]
        // Checks and stands in for everyone below in the territory.
        case .supervisor: return WorkplaceFunction.allCases
        }
    }

    /// "merchandisers", as a refusal says it.
    var plural: String {
        switch self {
        case .rep: return "sales reps"
        case .merchandiser: return "merchandisers"
        case .technician: return "equipment technicians"
        case .supervisor: return "supervisors"
        case .vanSeller: return "van sellers"
        }
    }

    /// The workplace of the rep this device belongs to. Until the first sync brings the rep's row
    /// the device is a sales rep's, what it was before roles were enforced.
    /// A handheld provisioned with a technician credential holds the hub's signed assignment:
    /// its role is the one obeyed, whatever the database's `reps` row says (a rep who edits it
    /// gains nothing).
    public static func of(_ device: DeviceDatabase) throws -> Workplace {
        let assigned = try ContactPolicy.role(device)
        let role = try assigned ?? device.guarded {
            try device.database.first("SELECT r.role FROM reps r JOIN device d ON r.id = d.rep_id") { $0.text(0) }
        }
        guard let role else { return .rep }
        guard let workplace = Workplace(rawValue: role) else {
            throw AgentError.workplaceRefused(function: nil, workplace: role)
        }
        return workplace
    }
}

extension DeviceAgent {
    /// Refuses `function` when this handheld's workplace does not include it; nothing is written.
    public func checkWorkplace(_ function: WorkplaceFunction, on device: DeviceDatabase) throws {
        let workplace = try Workplace.of(device)
        guard workplace.allows(function) else {
            throw AgentError.workplaceRefused(function: function, workplace: workplace.rawValue)
        }
    }
}
