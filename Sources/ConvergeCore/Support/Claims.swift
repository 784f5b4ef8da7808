extension Dictionary where Value == ResourceID {
    /// Gives `key` (an address, a port) to `resource` unless another resource already holds
    /// it, and returns that other holder: the first claimant keeps what must be unique, and
    /// each later one is reported naming it.
    public mutating func claim(_ key: Key, for resource: ResourceID) -> ResourceID? {
        if let holder = self[key] { return holder == resource ? nil : holder }
        self[key] = resource
        return nil
    }
}
