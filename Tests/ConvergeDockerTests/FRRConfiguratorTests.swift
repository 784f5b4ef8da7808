@testable import ConvergeDocker
import Testing

/// The delta between FRR's running configuration and the manifest, as vtysh commands.
@Suite struct FRRConfiguratorTests {
    static let running = """
        Building configuration...

        Current configuration:
        !
        frr version 8.4.4
        hostname edge
        !
        ip route 10.60.0.0/16 10.1.0.5
        ip route 10.61.0.0/16 10.1.0.6
        !
        router ospf
         ospf router-id 1.1.1.1
         network 10.1.0.0/24 area 0.0.0.0
        exit
        !
        end
        """

    @Test func readsOnlyTheLinesConvergeManages() {
        #expect(FRRConfigurator.managedLines(Self.running) == [
            "ip route 10.60.0.0/16 10.1.0.5", "ip route 10.61.0.0/16 10.1.0.6", "router ospf",
            "router ospf/network 10.1.0.0/24 area 0.0.0.0", "router ospf/ospf router-id 1.1.1.1",
        ])
    }

    @Test func changesOnlyWhatDiffers() {
        let current = FRRConfigurator.managedLines(Self.running)
        let wanted = ["ip route 10.60.0.0/16 10.1.0.5", "router ospf", "router ospf/network 10.2.0.0/24 area 0.0.0.0",
                      "router ospf/ospf router-id 1.1.1.1"]
        #expect(FRRConfigurator.commands(from: current, to: wanted) == [
            "configure terminal", "no ip route 10.61.0.0/16 10.1.0.6", "router ospf",
            "no network 10.1.0.0/24 area 0.0.0.0", "network 10.2.0.0/24 area 0.0.0.0", "exit",
        ])
        #expect(FRRConfigurator.commands(from: current, to: current).isEmpty)
    }

    @Test func removesOSPFWholeWhenNoLongerWanted() {
        let current = FRRConfigurator.managedLines(Self.running)
        #expect(FRRConfigurator.commands(from: current, to: ["ip route 10.60.0.0/16 10.1.0.5", "ip route 10.61.0.0/16 10.1.0.6"]) == [
            "configure terminal", "no router ospf",
        ])
    }
}
