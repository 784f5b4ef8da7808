import ConvergeStore
import Foundation
import Testing

/// The contract of `WorkflowStore`, run once against SQLite and once against PostgreSQL.
@Suite("WorkflowStore behaviour")
struct WorkflowStoreBehaviourTests {
    // MARK: Migrations

    @Test("migrate is idempotent, also from a second store", arguments: Backend.allCases)
    func migrateTwice(backend: Backend) async throws {
        try await TestDatabase.with(backend) { database in
            let store = try await database.openMigrated()
            try await store.migrate()
            let other = try await database.openMigrated()
            let run = try await store.createRun(newRun())
            #expect(try await other.run(run.id) == run)
        }
    }

    @Test("two stores migrating a fresh database at once both succeed", arguments: Backend.allCases)
    func migrateConcurrently(backend: Backend) async throws {
        try await TestDatabase.with(backend) { database in
            var stores: [any WorkflowStore] = []
            for _ in 0..<4 { stores.append(try await database.open()) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for store in stores { group.addTask { try await store.migrate() } }
                try await group.waitForAll()
            }
            let run = try await stores[0].createRun(newRun())
            #expect(try await stores[3].run(run.id) == run)
        }
    }

    @Test("a schema newer than this build is refused", arguments: Backend.allCases)
    func schemaTooNew(backend: Backend) async throws {
        try await TestDatabase.with(backend) { database in
            _ = try await database.openMigrated()
            try await database.executeRaw("INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)")
            let store = try await database.open()
            await #expect(throws: StoreError.self) { try await store.migrate() }
            do {
                try await store.migrate()
            } catch let error as StoreError {
                #expect(error.code == .schemaTooNew, "\(error)")
                #expect(error.foundVersion == 999)
                #expect(error.supportedVersion == WorkflowSchema.latestVersion)
                #expect(error.description.contains("upgrade Converge"))
            }
        }
    }

    // MARK: Runs

    @Test("createRun returns the stored record; run(id) reads it back", arguments: Backend.allCases)
    func createAndRead(backend: Backend) async throws {
        try await TestDatabase.with(backend) { database in
            let store = try await database.openMigrated()
            let before = Date().storeRounded.addingTimeInterval(-1)
            var new = newRun(commit: nil)
            new.planJSON = #"{"name":"żółw ☃","empty":""}"#
            new.optionsJSON = ""
            new.manifestsJSON = #"[{"path":"a.yaml","base64":"YQ=="}]"#
            let run = try await store.createRun(new)
            #expect(run.id > 0)
            #expect(run.instance == new.instance)
            #expect(run.commit == nil)
            #expect(run.planJSON == new.planJSON)
            #expect(run.optionsJSON == "")
            #expect(run.manifestsJSON == new.manifestsJSON)
            #expect(run.status == .running)
            #expect(run.error == nil)
            #expect(run.finishedAt == nil)
            #expect(run.createdAt >= before && run.createdAt <= Date().addingTimeInterval(1))
            #expect(run.updatedAt == run.createdAt)
            #expect(try await store.run(run.id) == run)
            #expect(try await store.run(run.id + 1000) == nil)

            let second = try await store.createRun(newRun())
            #expect(second.id > run.id)
            #expect(second.commit == "0123abcd")
        }
    }

    @Test("runs: newest first, filtered by instance and statuses, limited", arguments: Backend.allCases)
    func listRuns(backend: Backend) async throws {
        try await TestDatabase.with(backend) { database in
            let store = try await database.openMigrated()
            let a1 = try await store.createRun(newRun(instance: "a", status: .succeeded))
            let b1 = try await store.createRun(newRun(instance: "b", status: .failed))
            let a2 = try await store.createRun(newRun(instance: "a", status: .rolledBack))
            let a3 = try await store.createRun(newRun(instance: "a", status: .running))
            let b2 = try await store.createRun(newRun(instance: "b", status: .awaitingApproval))

            #expect(try await store.runs(RunFilter()).map(\.id) == [b2.id, a3.id, a2.id, b1.id, a1.id])
            #expect(try await store.runs(RunFilter(instance: "a")).map(\.id) == [a3.id, a2.id, a1.id])
            #expect(try await store.runs(RunFilter(limit: 2)).map(\.id) == [b2.id, a3.id])
            let failures = Set(RunStatus.allCases.filter(\.isFailure))
            #expect(try await store.runs(RunFilter(statuses: failures)).map(\.id) == [a2.id, b1.id])
            #expect(try await store.runs(RunFilter(statuses: failures, instance: "b")).map(\.id) == [b1.id])
            #expect(try await store.runs(RunFilter(statuses: [.awaitingApproval])) == [b2])
            #expect(try await store.runs(RunFilter(statuses: [])).isEmpty)
            #expect(try await store.runs(RunFilter(instance: "nobody")).isEmpty)
            #expect(try await store.runs(RunFilter(limit: 0)).isEmpty)
        }
    }

    @Test("updateRun sets status and error, stamps and clears finishedAt", arguments: Backend.allCases)
    func updateRun(backend: Backend) async throws {
        try await TestDatabase.with(backend) { database in
            let store = try await database.openMigrated()
            let run = try await store.createRun(newRun(status: .pending))

            try await store.updateRun(run.id, status: .running, error: nil, finished: false)
            var read = try #require(try await store.run(run.id))
            #expect(read.status == .running)
            #expect(read.finishedAt == nil)
            #expect(read.updatedAt >= run.updatedAt)

            try await store.updateRun(run.id, status: .rolledBack, error: "step 3 failed: image not found", finished: true)
            read = try #require(try await store.run(run.id))
            #expect(read.status == .rolledBack)
            #expect(read.error == "step 3 failed: image not found")
            let finished = try #require(read.finishedAt)
            #expect(finished >= read.createdAt)
            #expect(read.planJSON == run.planJSON)
            #expect(read.createdAt == run.createdAt)

            try await store.updateRun(run.id, status: .running, error: nil, finished: false)
            read = try #require(try await store.run(run.id))
            #expect(read.error == nil)
            #expect(read.finishedAt == nil)

            await #expect(throws: StoreError.runNotFound(run.id + 1000)) {
                try await store.updateRun(run.id + 1000, status: .failed, error: nil, finished: true)
            }
        }
    }

    // MARK: Steps and approvals

    @Test("recordStep upserts by (run, index); steps come back by index", arguments: Backend.allCases)
    func steps(backend: Backend) async throws {
        try await TestDatabase.with(backend) { database in
            let store = try await database.openMigrated()
            let run = try await store.createRun(newRun())
            let other = try await store.createRun(newRun())

            try await store.recordStep(step(run: run.id, index: 2))
            try await store.recordStep(step(run: run.id, index: 0, status: .running))
            try await store.recordStep(step(run: run.id, index: 1, output: #"{"before":null}"#))
            try await store.recordStep(step(run: other.id, index: 0))
            var finished = step(run: run.id, index: 0, status: .failed)
            finished.attempts = 5
            finished.error = "engine busy"
            finished.output = ""
            try await store.recordStep(finished)

            let steps = try await store.steps(run: run.id)
            #expect(steps.map(\.index) == [0, 1, 2])
            #expect(steps[0].status == .failed)
            #expect(steps[0].attempts == 5)
            #expect(steps[0].error == "engine busy")
            #expect(steps[0].output == "")
            #expect(steps[0].startedAt == finished.startedAt?.storeRounded)
            #expect(steps[0].finishedAt == finished.finishedAt?.storeRounded)
            var expected = step(run: run.id, index: 1, output: #"{"before":null}"#)
            expected.startedAt = expected.startedAt?.storeRounded
            expected.finishedAt = expected.finishedAt?.storeRounded
            #expect(steps[1] == expected)
            #expect(try await store.steps(run: other.id).count == 1)
            #expect(try await store.steps(run: other.id + 1000).isEmpty)

            for status in [StepStatus.running, .succeeded] {
                await #expect(throws: StoreError.runNotFound(other.id + 1000)) {
                    try await store.recordStep(step(run: other.id + 1000, index: 0, status: status))
                }
            }
            // A `running` row replacing a finished one (a retried step), nulls included.
            var retried = step(run: other.id, index: 0, status: .running)
            retried.attempts = 2
            retried.startedAt = nil
            try await store.recordStep(retried)
            #expect(try await store.steps(run: other.id) == [retried])
        }
    }

    @Test("approvals are recorded and read back in order", arguments: Backend.allCases)
    func approvals(backend: Backend) async throws {
        try await TestDatabase.with(backend) { database in
            let store = try await database.openMigrated()
            let run = try await store.createRun(newRun(status: .awaitingApproval))
            let at = Date().storeRounded
            let rejected = ApprovalRecord(
                runID: run.id, planDigest: "sha256:old", decision: .rejected, approver: "bob", comment: "", at: at)
            let approved = ApprovalRecord(
                runID: run.id, planDigest: "sha256:abc", decision: .approved, approver: "alice", comment: "ok for prod ✓",
                at: at.addingTimeInterval(2), via: "GitHub review 8812 on acme/infra#42")
            try await store.recordApproval(rejected)
            try await store.recordApproval(approved)
            #expect(try await store.approvals(run: run.id) == [rejected, approved])
            #expect(try await store.approvals(run: run.id + 1000).isEmpty)
            await #expect(throws: StoreError.runNotFound(run.id + 1000)) {
                var orphan = approved
                orphan.runID = run.id + 1000
                try await store.recordApproval(orphan)
            }
        }
    }

    @Test("schedule firings: one claim per due time, updated, listed newest first by schedule and status", arguments: Backend.allCases)
    func scheduleFirings(backend: Backend) async throws {
        try await TestDatabase.with(backend) { database in
            let store = try await database.openMigrated()
            let other = try await database.openMigrated()
            let due = Date(timeIntervalSince1970: 1_800_000_000)
            let firing = FiringRecord(
                instance: "a", schedule: "ScheduledPlaybook/nightly", dueAt: due, status: .pending, owner: "one:1", claimedAt: due)
            // Two processes claiming the same due time at once: exactly one wins.
            async let first = store.claimFiring(firing)
            async let second = other.claimFiring(
                FiringRecord(
                    instance: "a", schedule: "ScheduledPlaybook/nightly", dueAt: due, status: .pending, owner: "two:2", claimedAt: due))
            #expect([try await first, try await second].filter { $0 }.count == 1)
            #expect(try await store.claimFiring(firing) == false)

            var running = try #require(try await store.firings(instance: "a", schedule: nil, statuses: nil, limit: 10).first)
            running.status = .running
            running.startedAt = due.addingTimeInterval(0.25)
            running.runID = 7
            try await store.updateFiring(running)
            let missed = FiringRecord(
                instance: "a", schedule: "ScheduledPlaybook/nightly", dueAt: due.addingTimeInterval(-86_400), status: .missed,
                owner: "one:1",
                claimedAt: due, detail: "past its starting deadline")
            #expect(try await store.claimFiring(missed))
            #expect(
                try await store.claimFiring(
                    FiringRecord(
                        instance: "a", schedule: "ScheduledPlaybook/hourly", dueAt: due, status: .pending, owner: "one:1", claimedAt: due)))
            #expect(
                try await store.claimFiring(
                    FiringRecord(
                        instance: "b", schedule: "ScheduledPlaybook/nightly", dueAt: due, status: .pending, owner: "one:1", claimedAt: due))
            )

            let nightly = try await store.firings(instance: "a", schedule: "ScheduledPlaybook/nightly", statuses: nil, limit: 10)
            #expect(nightly.map(\.status) == [.running, .missed])
            #expect(nightly.first == running)
            #expect(
                try await store.firings(instance: "a", schedule: nil, statuses: [.pending, .running], limit: 10).map(\.schedule)
                    == ["ScheduledPlaybook/hourly", "ScheduledPlaybook/nightly"])
            #expect(try await store.firings(instance: "a", schedule: nil, statuses: nil, limit: 1).count == 1)
        }
    }

    @Test("provider records: put replaces, listed by prefix per instance, removed", arguments: Backend.allCases)
    func providerRecords(backend: Backend) async throws {
        try await TestDatabase.with(backend) { database in
            let store = try await database.openMigrated()
            try await store.putRecord(instance: "a", key: "PlaybookRun/site", value: #"{"digest":"1"}"#)
            try await store.putRecord(instance: "a", key: "PlaybookRun/site", value: #"{"digest":"2"}"#)
            try await store.putRecord(instance: "a", key: "PlaybookRun/db_100%", value: "{}")
            try await store.putRecord(instance: "a", key: "PlaybookRunner", value: "{}")
            try await store.putRecord(instance: "b", key: "PlaybookRun/site", value: "{}")
            let records = try await store.records(instance: "a", prefix: "PlaybookRun/")
            #expect(records.map(\.key) == ["PlaybookRun/db_100%", "PlaybookRun/site"])
            #expect(records.last?.value == #"{"digest":"2"}"#)
            // `%` and `_` in a prefix are characters, not patterns.
            #expect(try await store.records(instance: "a", prefix: "PlaybookRun/db_1").map(\.key) == ["PlaybookRun/db_100%"])
            #expect(try await store.records(instance: "a", prefix: "PlaybookRun/d%").isEmpty)
            try await store.removeRecord(instance: "a", key: "PlaybookRun/site")
            try await store.removeRecord(instance: "a", key: "PlaybookRun/absent")
            #expect(try await store.records(instance: "a", prefix: "").map(\.key) == ["PlaybookRun/db_100%", "PlaybookRunner"])
            #expect(try await store.records(instance: "b", prefix: "").map(\.key) == ["PlaybookRun/site"])
        }
    }

    // MARK: Leases

    @Test("leases: acquire, re-acquire by the same run, held for others, all or nothing", arguments: Backend.allCases)
    func leases(backend: Backend) async throws {
        try await TestDatabase.with(backend) { database in
            let store = try await database.openMigrated()
            let one = try await store.createRun(newRun())
            let two = try await store.createRun(newRun())

            #expect(try await store.acquireLeases([], run: one.id, owner: "p1", ttl: .seconds(60)) == .acquired)
            let hour = Duration.seconds(3600)
            #expect(try await store.acquireLeases(["Network/lan", "Container/web"], run: one.id, owner: "p1", ttl: hour) == .acquired)
            // The same run again (e.g. resumed by another process): free, and the owner moves.
            #expect(try await store.acquireLeases(["Container/web", "Container/web"], run: one.id, owner: "p2", ttl: hour) == .acquired)

            // Another run wanting a free key and a held one gets neither.
            let outcome = try await store.acquireLeases(["Container/db", "Container/web"], run: two.id, owner: "p3", ttl: hour)
            guard case .held(let holder) = outcome else {
                Issue.record("expected .held, got \(outcome)")
                return
            }
            #expect(holder.key == "Container/web")
            #expect(holder.runID == one.id)
            #expect(holder.owner == "p2")
            #expect(holder.expiresAt > Date().addingTimeInterval(3000))

            let live = try await store.leases()
            #expect(live.map(\.key) == ["Container/web", "Network/lan"])
            #expect(live.map(\.runID) == [one.id, one.id])
            #expect(!live.contains { $0.key == "Container/db" })

            // Released, the keys are free for the other run.
            try await store.releaseLeases(run: one.id)
            #expect(try await store.leases().isEmpty)
            #expect(try await store.acquireLeases(["Container/db", "Container/web"], run: two.id, owner: "p3", ttl: hour) == .acquired)
            #expect(try await store.leases().map(\.runID) == [two.id, two.id])
        }
    }

    @Test("an expired lease can be taken by another run; renew reports the loss", arguments: Backend.allCases)
    func expiryAndRenew(backend: Backend) async throws {
        try await TestDatabase.with(backend) { database in
            let store = try await database.openMigrated()
            let one = try await store.createRun(newRun())
            let two = try await store.createRun(newRun())

            let keys = ["Container/web", "Network/lan"]
            #expect(try await store.acquireLeases(keys, run: one.id, owner: "p1", ttl: .seconds(5)) == .acquired)
            let first = try #require(try await store.leases().first)
            #expect(try await store.renewLeases(run: one.id, owner: "p1", ttl: .seconds(30)))
            let renewed = try #require(try await store.leases().first)
            #expect(renewed.expiresAt > first.expiresAt.addingTimeInterval(20))
            // Another owner, or a run without leases, renews nothing.
            #expect(try await store.renewLeases(run: one.id, owner: "someone-else", ttl: .seconds(30)) == false)
            #expect(try await store.renewLeases(run: two.id, owner: "p1", ttl: .seconds(30)) == false)

            // Let them expire: run two takes one key; run one's renew must now fail.
            #expect(try await store.acquireLeases(["Container/web"], run: one.id, owner: "p1", ttl: .seconds(1)) == .acquired)
            #expect(try await store.renewLeases(run: one.id, owner: "p1", ttl: .seconds(1)))
            try await Task.sleep(for: .milliseconds(1300))
            #expect(try await store.leases().isEmpty)
            #expect(try await store.acquireLeases(["Container/web"], run: two.id, owner: "p2", ttl: .seconds(30)) == .acquired)
            #expect(try await store.renewLeases(run: one.id, owner: "p1", ttl: .seconds(30)) == false)
            #expect(try await store.renewLeases(run: two.id, owner: "p2", ttl: .seconds(30)))
            #expect(try await store.leases().map(\.key) == ["Container/web"])
        }
    }

    @Test("a lease passed to another owner of the same run is lost for the first", arguments: Backend.allCases)
    func renewAfterTakeover(backend: Backend) async throws {
        try await TestDatabase.with(backend) { database in
            let store = try await database.openMigrated()
            let run = try await store.createRun(newRun())
            #expect(try await store.acquireLeases(["a", "b"], run: run.id, owner: "old", ttl: .seconds(30)) == .acquired)
            #expect(try await store.acquireLeases(["a"], run: run.id, owner: "new", ttl: .seconds(30)) == .acquired)
            #expect(try await store.renewLeases(run: run.id, owner: "old", ttl: .seconds(30)) == false)
        }
    }

    @Test("racing acquires of overlapping keys: exactly one run wins", arguments: Backend.allCases)
    func racingAcquires(backend: Backend) async throws {
        try await TestDatabase.with(backend) { database in
            let stores = [try await database.openMigrated(), try await database.openMigrated()]
            for round in 0..<5 {
                var runs: [Int64] = []
                for index in 0..<6 { runs.append(try await stores[index % 2].createRun(newRun()).id) }
                let keys = ["Network/n\(round)", "Container/c\(round)", "Container/d\(round)"]
                let outcomes = try await withThrowingTaskGroup(of: (Int64, LeaseOutcome).self) { group in
                    for (index, run) in runs.enumerated() {
                        // Each run wants two of the three keys, in its own order.
                        let wanted = index % 2 == 0 ? [keys[0], keys[1]] : [keys[2], keys[0]]
                        group.addTask {
                            (run, try await stores[index % 2].acquireLeases(wanted, run: run, owner: "p\(index)", ttl: .seconds(30)))
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                let winners = outcomes.filter { $0.1 == .acquired }.map(\.0)
                #expect(winners.count == 1, "round \(round): \(outcomes)")
                let live = try await stores[0].leases().filter { keys.contains($0.key) }
                #expect(Set(live.map(\.runID)) == Set(winners))
                #expect(live.count == 2)
            }
        }
    }

    // MARK: Claiming work

    @Test("claimResumableRun takes the oldest interrupted run without live leases", arguments: Backend.allCases)
    func claim(backend: Backend) async throws {
        try await TestDatabase.with(backend) { database in
            let store = try await database.openMigrated()
            _ = try await store.createRun(newRun(status: .succeeded))
            _ = try await store.createRun(newRun(status: .awaitingApproval))
            _ = try await store.createRun(newRun(instance: "elsewhere", status: .running))
            let alive = try await store.createRun(newRun(status: .running))
            #expect(try await store.acquireLeases(["Container/web"], run: alive.id, owner: "p1", ttl: .seconds(30)) == .acquired)
            let crashed = try await store.createRun(newRun(status: .rollingBack))
            #expect(try await store.acquireLeases(["Container/db"], run: crashed.id, owner: "p1", ttl: .milliseconds(1)) == .acquired)
            let later = try await store.createRun(newRun(status: .running))
            try await Task.sleep(for: .milliseconds(20))

            let claimed = try await store.claimResumableRun(instance: "test", owner: "p2", ttl: .seconds(30))
            #expect(claimed?.id == crashed.id)
            #expect(claimed == (try await store.run(crashed.id)))
            #expect(try await store.leases().contains { $0.key == runLeaseKey(crashed.id) && $0.owner == "p2" })
            #expect(try await store.claimResumableRun(instance: "test", owner: "p3", ttl: .seconds(30))?.id == later.id)
            #expect(try await store.claimResumableRun(instance: "test", owner: "p3", ttl: .seconds(30)) == nil)
            // The claimer re-takes the run's own resource leases.
            #expect(try await store.acquireLeases(["Container/db"], run: crashed.id, owner: "p2", ttl: .seconds(30)) == .acquired)
        }
    }

    @Test("concurrent claimers get each run exactly once", arguments: Backend.allCases)
    func concurrentClaims(backend: Backend) async throws {
        try await TestDatabase.with(backend) { database in
            let stores = [try await database.openMigrated(), try await database.openMigrated()]
            var created: [Int64] = []
            for _ in 0..<6 { created.append(try await stores[0].createRun(newRun(status: .running)).id) }
            let claims = try await withThrowingTaskGroup(of: [Int64].self) { group in
                for claimer in 0..<4 {
                    group.addTask {
                        var mine: [Int64] = []
                        while let run = try await stores[claimer % 2].claimResumableRun(
                            instance: "test", owner: "claimer-\(claimer)", ttl: .seconds(30))
                        {
                            mine.append(run.id)
                        }
                        return mine
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(claims.sorted() == created)

            // And the single-run case: two claimers, one winner.
            let single = try await TestDatabase.with(backend) { other in
                let a = try await other.openMigrated()
                let b = try await other.openMigrated()
                _ = try await a.createRun(newRun(status: .running))
                async let first = a.claimResumableRun(instance: "test", owner: "a", ttl: .seconds(30))
                async let second = b.claimResumableRun(instance: "test", owner: "b", ttl: .seconds(30))
                return [try await first, try await second].compactMap { $0 }.count
            }
            #expect(single == 1)
        }
    }

    // MARK: Leader lease

    @Test("one holder at a time: renewals keep it, expiry or resignation passes it on", arguments: Backend.allCases)
    func leaderLease(backend: Backend) async throws {
        try await TestDatabase.with(backend) { database in
            let a = try await database.openMigrated()
            let b = try await database.openMigrated()
            let first = try await a.campaign(for: "converge", holder: "a", ttl: .milliseconds(300))
            #expect(first.holder == "a" && first.transitions == 0)
            #expect(try await b.campaign(for: "converge", holder: "b", ttl: .milliseconds(300)).holder == "a")
            let renewed = try await a.campaign(for: "converge", holder: "a", ttl: .milliseconds(300))
            #expect(renewed.holder == "a" && renewed.acquiredAt == first.acquiredAt && renewed.expiresAt >= first.expiresAt)
            try await Task.sleep(for: .milliseconds(400))
            let taken = try await b.campaign(for: "converge", holder: "b", ttl: .seconds(30))
            #expect(taken.holder == "b" && taken.transitions == 1 && taken.acquiredAt > first.acquiredAt)
            try await a.resign("converge", holder: "a")  // not a's any more: nothing changes
            #expect(try await a.campaign(for: "converge", holder: "a", ttl: .seconds(30)).holder == "b")
            try await b.resign("converge", holder: "b")
            let after = try await a.campaign(for: "converge", holder: "a", ttl: .seconds(30))
            #expect(after.holder == "a" && after.transitions == 2)
            #expect(try await b.campaign(for: "other", holder: "b", ttl: .seconds(30)).holder == "b")
        }
    }

    @Test("racing campaigns for a free lease: exactly one wins", arguments: Backend.allCases)
    func leaderLeaseRace(backend: Backend) async throws {
        try await TestDatabase.with(backend) { database in
            var stores: [any WorkflowStore] = []
            for _ in 0..<4 { stores.append(try await database.openMigrated()) }
            let holders = try await withThrowingTaskGroup(of: String.self) { group in
                for (index, store) in stores.enumerated() {
                    group.addTask { try await store.campaign(for: "converge", holder: "r\(index)", ttl: .seconds(30)).holder }
                }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(Set(holders).count == 1, "\(holders)")
        }
    }

    // MARK: Sharing

    @Test("two stores on the same database see each other's writes", arguments: Backend.allCases)
    func sharing(backend: Backend) async throws {
        try await TestDatabase.with(backend) { database in
            let writer = try await database.openMigrated()
            let reader = try await database.openMigrated()
            let run = try await writer.createRun(newRun())
            try await writer.recordStep(step(run: run.id, index: 0))
            try await reader.updateRun(run.id, status: .succeeded, error: nil, finished: true)
            #expect(try await writer.run(run.id)?.status == .succeeded)
            #expect(try await reader.steps(run: run.id).count == 1)
            #expect(try await writer.acquireLeases(["k"], run: run.id, owner: "w", ttl: .seconds(30)) == .acquired)
            #expect(try await reader.leases().map(\.owner) == ["w"])
        }
    }
}
