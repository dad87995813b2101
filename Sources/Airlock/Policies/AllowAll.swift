/// Lets every intent through: the default policy.
public struct AllowAll: Policy {
    /// Creates the policy.
    public init() {}
    /// `AllowAll()`.
    public var description: String { "AllowAll()" }
}

extension Policy where Self == AllowAll {
    /// Lets every intent through.
    public static var allowAll: AllowAll { AllowAll() }
}
