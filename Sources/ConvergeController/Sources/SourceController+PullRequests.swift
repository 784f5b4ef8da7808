import ConvergeCore
import ConvergeForge
import ConvergeRuntime
import ConvergeStore
import ConvergeWorkflow
import Foundation

/// Pull requests into the source's ref: their plan is posted on them, and a merge whose plan
/// a pull request approved runs without waiting.
extension SourceController {
    /// Looks at a pull request after any event on it: an open one gets the plan of its head
    /// (again, when its head moved or someone asked) and its approvals reviewed; a merged one
    /// settles the run its merge commit waits in.
    func pullRequestChanged(_ event: PullRequestEvent) async {
        guard let desk, gate.closedReason() == nil, !configuration.suspend else { return }
        do {
            let pullRequest = try await desk.forge.pullRequest(event.number)
            guard Self.isBranch(pullRequest.baseRef, named: configuration.ref) else { return }
            switch pullRequest.state {
            case .open:
                try await plan(pullRequest, desk: desk, again: event.replan)
            case .merged:
                guard let merged = pullRequest.mergeCommit,
                    let waiting = try await store.runs(RunFilter(statuses: [.awaitingApproval], instance: configuration.name))
                        .first(where: { $0.commit == merged })
                else { return }
                try await settle(waiting, mergedBy: pullRequest, desk: desk)
            case .closed:
                return
            }
        } catch {
            logger.error("pull request \(event.number): \(error)")
        }
    }

    /// Plans the head of `pullRequest` unless that plan is already posted, then reviews the
    /// approvals given for it.
    private func plan(_ pullRequest: PullRequest, desk: PullRequestDesk, again: Bool) async throws {
        let thread = try await desk.thread(of: pullRequest)
        var posted = desk.postedPlan(in: thread)
        if again || posted?.posting.commit != pullRequest.headCommit {
            var request = configuration.gitRequest(cacheDirectory: gitCache)
            request.ref = desk.forge.kind.headRef(ofPullRequest: pullRequest.number)
            let snapshot = try await ManifestSource.git(request).load()
            guard snapshot.revision.commit == pullRequest.headCommit else {
                throw ControllerError(
                    "\(request.ref ?? "") is at \(snapshot.revision.commit ?? "nothing"), not at the pull request's head \(pullRequest.headCommit)",
                    hint: "the forge had not published the new head yet; the next event plans it")
            }
            // The base is the commit the source last reconciled, not a second fetch.
            var base = loadedFiles
            if base == nil { base = try await ManifestSource.git(configuration.gitRequest(cacheDirectory: gitCache)).load().files }
            let outcome = await PullRequestPlan.make(
                files: snapshot.files, revision: snapshot.revision, repository: snapshot.repository, runtime: runtime, base: base)
            posted = try await desk.post(outcome, commit: pullRequest.headCommit, in: thread)
            logger.info(
                "pull request \(pullRequest.number): planned \(pullRequest.headCommit.prefix(12)): \(outcome.plan?.digest ?? "no plan")")
        }
        guard let posted else { return }
        let review = try await desk.review(posted, in: thread)
        if !posted.posting.approvals.isEmpty {
            logger.info(
                "pull request \(pullRequest.number): \(review.isApproved ? "approved" : "waiting for \(review.missing.map(\.policy))")")
        }
    }

    /// After a tick left `waiting` for an approval: if its commit is a pull request's merge,
    /// that pull request's approvals decide.
    func settleMerge(waiting: RunRecord) async {
        guard let desk, let commit = waiting.commit else { return }
        do {
            let merged = try await desk.forge.pullRequests(withCommit: commit).filter { $0.state == .merged && $0.mergeCommit == commit }
            guard let pullRequest = merged.first else { return }
            try await settle(waiting, mergedBy: pullRequest, desk: desk)
        } catch {
            logger.error("cannot look up the pull request of \(commit.prefix(12)): \(error)")
        }
    }

    /// Runs `waiting` when `pullRequest` approved exactly its plan. When the merged commit
    /// plans differently from what was reviewed (another merge, drift), posts its plan on the
    /// pull request, where it waits for a new approval like any protected change.
    private func settle(_ waiting: RunRecord, mergedBy pullRequest: PullRequest, desk: PullRequestDesk) async throws {
        let thread = try await desk.thread(of: pullRequest)
        var posted = desk.postedPlan(in: thread)
        if posted?.posting.digest != waiting.planDigest {
            let plan = try JSONDecoder().decode(Plan.self, from: Data(waiting.planJSON.utf8))
            posted = try await desk.post(.planned(plan), commit: waiting.commit ?? pullRequest.headCommit, in: thread)
            logger.notice(
                "pull request \(pullRequest.number) merged as \(waiting.commit?.prefix(12) ?? ""), whose plan \(waiting.planDigest) is not the one reviewed; posted it for approval"
            )
        }
        guard let posted else { return }
        let review = try await desk.review(posted, in: thread)
        guard review.isApproved else { return }
        let approvals = review.grants.map {
            Approval(approver: $0.approver, approvesAs: $0.approvesAs, comment: "ApprovalPolicy/\($0.policy)", via: $0.via)
        }
        let run = try await engine().approve(waiting.id, by: approvals, digest: waiting.planDigest)
        logger.info(
            "run \(run.id), approved on pull request \(pullRequest.number) by \(Set(approvals.map(\.approver)).sorted()): \(run.status.rawValue)"
        )
        recordApproved(run)
    }

    /// `main` names the same branch as `refs/heads/main`.
    static func isBranch(_ branch: String, named ref: String) -> Bool {
        branch == ref || "refs/heads/\(branch)" == ref || branch == "refs/heads/\(ref)"
    }
}
