/// The release of this package, reported by workers (`airlock-workerd workers`) and `--version`.
public enum AirlockVersion {
    /// Semantic version string.
    public static let current = "0.1.0"
}
