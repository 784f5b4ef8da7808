#!/usr/bin/env python3
"""A forge test server on 127.0.0.1: imitates, field for field, the REST shapes of pull and
merge requests, their comments, reviews and approvals, commit statuses and team membership
of three forges, and sends webhook deliveries signed as each forge signs them, so that tests
can drive Converge's forge client against a forge without one. Prints PORT=<port>, then
READY.

The shapes follow:
  github  GitHub REST API 2022-11-28 (api.github.com paths, at the root)
  gitea   Gitea API v1 as of Gitea 1.22 (also Forgejo), under /api/v1
  gitlab  GitLab REST API v4 as of GitLab 17.x, under /api/v4

Tests drive it through a control API under /_forge (no authentication, JSON in and out):
open, push to, review, comment on, close, reopen and merge pull requests (each delivering
the forge's webhook synchronously, its answer returned), define teams and users, and read
back every API request the client made, the statuses it set and the comments on a pull
request. CONTROL_API below lists its endpoints.

Usage: forge-test-server.py --flavour github|gitea|gitlab --repository OWNER/NAME
           [--webhook-url URL] [--webhook-secret SECRET] [--clone-url URL]
           --user LOGIN=TOKEN [--user LOGIN=TOKEN ...]
"""
import argparse
import base64
import datetime
import hashlib
import hmac
import http.server
import json
import math
import re
import signal
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid

# A parent may have spawned us with signals blocked (threads of a Swift test process block
# them): unblock SIGTERM and SIGINT so that stopping the server ends it.
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})

CONTROL_API = """
POST   /_forge/users            {login, token?}                      -> {user}
POST   /_forge/webhook          {url}                                -> {url}  (where deliveries go from now on)
POST   /_forge/pulls            {author, head_sha, head_ref?, base_ref?="main", base_sha?, title?, body?, number?}
                                                                     -> 201 {pull, delivery}
GET    /_forge/pulls/N                                               -> {pull}
POST   /_forge/pulls/N/push     {head_sha, user?}                    -> {pull, delivery}
POST   /_forge/pulls/N/reviews  {user, state, commit_id?, body?}     -> 201 {review, delivery}
GET    /_forge/pulls/N/reviews                                       -> [review]
POST   /_forge/pulls/N/comments {user, body}                         -> 201 {comment, delivery}
GET    /_forge/pulls/N/comments                                      -> [comment]
POST   /_forge/pulls/N/merge    {merge_commit_sha, user?}            -> {pull, delivery}
POST   /_forge/pulls/N/close    {user?}                              -> {pull, delivery}
POST   /_forge/pulls/N/reopen   {user?}                              -> {pull, delivery}
POST   /_forge/teams            {org, team, members: [login]}        -> 201 {team}
GET    /_forge/statuses/SHA                                          -> [status]
GET    /_forge/requests  | DELETE /_forge/requests                   -> [request] | 204
GET    /_forge/deliveries | DELETE /_forge/deliveries                -> [delivery record] | 204
"""

FLAVOURS = ("github", "gitea", "gitlab")
JSON_TYPE = "application/json; charset=utf-8"
GITHUB_DOCS = "https://docs.github.com/rest"
GITHUB_COMMENT_LIMIT = 65536
GITHUB_DESCRIPTION_LIMIT = 140
GITLAB_NOTE_LIMIT = 1_000_000
GITEA_REVIEW_STATES = {"APPROVED": "APPROVED", "CHANGES_REQUESTED": "REQUEST_CHANGES", "REQUEST_CHANGES": "REQUEST_CHANGES",
                       "COMMENTED": "COMMENT", "COMMENT": "COMMENT"}
GITHUB_REVIEW_STATES = {"APPROVED": "APPROVED", "CHANGES_REQUESTED": "CHANGES_REQUESTED", "REQUEST_CHANGES": "CHANGES_REQUESTED",
                        "COMMENTED": "COMMENTED", "COMMENT": "COMMENTED"}


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def iso_seconds(moment):
    """GitHub's and Gitea's timestamps: whole seconds, `Z`."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def iso_milliseconds(moment):
    """GitLab's API timestamps: milliseconds, `Z`."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z" if moment else None


def gitlab_hook_time(moment):
    """GitLab's webhook timestamps (object_attributes): `2026-11-30 07:00:00 UTC`."""
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else None


def node_id(kind, number):
    return kind + "_" + base64.b64encode(f"{kind}:{number}".encode()).decode().rstrip("=")


def integer(text, default):
    try:
        return int(text)
    except (TypeError, ValueError):
        return default


class Reply:
    def __init__(self, status, body=None, headers=None, raw=None):
        self.status = status
        self.body = body
        self.headers = headers or []
        self.raw = raw  # bytes to send instead of JSON (an empty body)


class Problem(Exception):
    """A control-API request that cannot be done: answered {"error": message}."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class Forge:
    def __init__(self, options):
        self.flavour = options.flavour
        self.owner, _, self.name = options.repository.partition("/")
        self.full_name = f"{self.owner}/{self.name}"
        self.webhook_url = options.webhook_url
        self.secret = options.webhook_secret or ""
        self.clone_url_option = options.clone_url
        self.hook_id = 424242
        self.lock = threading.RLock()
        self.users = {}  # lowercased login -> {id, login, token, created_at}
        self.tokens = {}  # token -> lowercased login
        self.pulls = {}  # number -> pull
        self.comments = {}  # id -> comment (in creation order: dicts keep it)
        self.reviews = []
        self.approvals = {}  # number -> [{user, approved_at}] (GitLab)
        self.statuses = {}  # sha -> [forge-shaped status, as answered]
        self.status_jobs = []  # GitLab's commit status jobs
        self.pipelines = {}  # (sha, ref) -> pipeline id (GitLab)
        self.teams = []
        self.requests = []
        self.deliveries = []
        self.counters = {"user": 0, "pull": 5000, "comment": 7000, "review": 8000, "status": 9000, "team": 300, "pipeline": 600}
        self.base = ""
        for entry in options.user or []:
            login, has_token, token = entry.partition("=")
            if not login:
                raise SystemExit(f"forge-test-server: --user '{entry}' names no login")
            user = self.user(login)
            if has_token and token:
                user["token"] = token
                self.tokens[token] = login.lower()

    # -- identities and addresses ------------------------------------------------------

    def next_id(self, kind):
        self.counters[kind] += 1
        return self.counters[kind]

    def user(self, login):
        """The user named `login`, created on first mention."""
        key = login.lower()
        if key not in self.users:
            self.users[key] = {"id": self.next_id("user"), "login": login, "token": None, "created_at": now()}
        return self.users[key]

    def known_user(self, login):
        return self.users.get((login or "").lower())

    def user_by_id(self, user_id):
        return next((user for user in self.users.values() if user["id"] == user_id), None)

    def set_base(self, port):
        self.base = f"http://127.0.0.1:{port}"
        self.api = self.base + {"github": "", "gitea": "/api/v1", "gitlab": "/api/v4"}[self.flavour]
        self.clone_url = self.clone_url_option or f"{self.base}/{self.full_name}.git"

    def owner_id(self):
        owner = self.known_user(self.owner)
        return owner["id"] if owner else 100

    # -- GitHub shapes -----------------------------------------------------------------

    def github_user(self, user):
        login = user["login"]
        return {
            "login": login, "id": user["id"], "node_id": node_id("U", user["id"]),
            "avatar_url": f"{self.base}/avatars/u/{user['id']}", "gravatar_id": "", "url": f"{self.api}/users/{login}",
            "html_url": f"{self.base}/{login}", "type": "Bot" if login.endswith("[bot]") else "User", "site_admin": False,
        }

    def github_owner(self):
        owner = self.known_user(self.owner)
        if owner:
            return self.github_user(owner)
        return {"login": self.owner, "id": 100, "node_id": node_id("O", 100), "avatar_url": f"{self.base}/avatars/u/100",
                "gravatar_id": "", "url": f"{self.api}/users/{self.owner}", "html_url": f"{self.base}/{self.owner}",
                "type": "Organization", "site_admin": False}

    def github_repository(self):
        api = f"{self.api}/repos/{self.full_name}"
        return {
            "id": 1, "node_id": node_id("R", 1), "name": self.name, "full_name": self.full_name, "private": False,
            "owner": self.github_owner(), "html_url": f"{self.base}/{self.full_name}", "description": None, "fork": False,
            "url": api, "pulls_url": api + "/pulls{/number}", "statuses_url": api + "/statuses/{sha}",
            "git_url": f"git://127.0.0.1/{self.full_name}.git", "ssh_url": f"git@127.0.0.1:{self.full_name}.git",
            "clone_url": self.clone_url, "default_branch": "main", "visibility": "public",
        }

    def github_pull(self, pull):
        number = pull["number"]
        api = f"{self.api}/repos/{self.full_name}"
        html = f"{self.base}/{self.full_name}/pull/{number}"
        owner = self.github_owner()
        repository = self.github_repository()
        merged_by = self.known_user(pull["merged_by"]) if pull["merged_by"] else None
        return {
            "url": f"{api}/pulls/{number}", "id": pull["id"], "node_id": node_id("PR", pull["id"]), "html_url": html,
            "diff_url": html + ".diff", "patch_url": html + ".patch", "issue_url": f"{api}/issues/{number}",
            "number": number, "state": pull["state"], "locked": False, "title": pull["title"],
            "user": self.github_user(self.user(pull["author"])), "body": pull["body"],
            "created_at": iso_seconds(pull["created_at"]), "updated_at": iso_seconds(pull["updated_at"]),
            "closed_at": iso_seconds(pull["closed_at"]), "merged_at": iso_seconds(pull["merged_at"]),
            "merge_commit_sha": pull["merge_commit_sha"], "assignee": None, "assignees": [], "requested_reviewers": [],
            "requested_teams": [], "labels": [], "milestone": None, "draft": False,
            "commits_url": f"{api}/pulls/{number}/commits", "review_comments_url": f"{api}/pulls/{number}/comments",
            "review_comment_url": api + "/pulls/comments{/number}", "comments_url": f"{api}/issues/{number}/comments",
            "statuses_url": f"{api}/statuses/{pull['head_sha']}",
            "head": {"label": f"{self.owner}:{pull['head_ref']}", "ref": pull["head_ref"], "sha": pull["head_sha"],
                     "user": owner, "repo": repository},
            "base": {"label": f"{self.owner}:{pull['base_ref']}", "ref": pull["base_ref"], "sha": pull["base_sha"],
                     "user": owner, "repo": repository},
            "author_association": "CONTRIBUTOR", "auto_merge": None, "active_lock_reason": None,
            "merged": pull["merged"], "mergeable": None if pull["state"] == "closed" else True,
            "rebaseable": None if pull["state"] == "closed" else True,
            "mergeable_state": "unknown" if pull["state"] == "closed" else "clean",
            "merged_by": self.github_user(merged_by) if merged_by else None,
            "comments": len(self.live_comments(number)), "review_comments": 0, "maintainer_can_modify": False,
            "commits": 1, "additions": 0, "deletions": 0, "changed_files": 0,
        }

    def github_comment(self, comment):
        api = f"{self.api}/repos/{self.full_name}"
        return {
            "url": f"{api}/issues/comments/{comment['id']}", "html_url": f"{self.base}/{self.full_name}/pull/{comment['number']}#issuecomment-{comment['id']}",
            "issue_url": f"{api}/issues/{comment['number']}", "id": comment["id"], "node_id": node_id("IC", comment["id"]),
            "user": self.github_user(self.user(comment["author"])), "created_at": iso_seconds(comment["created_at"]),
            "updated_at": iso_seconds(comment["updated_at"]), "author_association": "CONTRIBUTOR", "body": comment["body"],
            "performed_via_github_app": None,
        }

    def github_review(self, review):
        number = review["number"]
        html = f"{self.base}/{self.full_name}/pull/{number}#pullrequestreview-{review['id']}"
        pull_url = f"{self.api}/repos/{self.full_name}/pulls/{number}"
        return {
            "id": review["id"], "node_id": node_id("PRR", review["id"]), "user": self.github_user(self.user(review["user"])),
            "body": review["body"], "state": GITHUB_REVIEW_STATES[review["state"]], "html_url": html, "pull_request_url": pull_url,
            "author_association": "COLLABORATOR", "_links": {"html": {"href": html}, "pull_request": {"href": pull_url}},
            "submitted_at": iso_seconds(review["submitted_at"]), "commit_id": review["commit_id"],
        }

    def github_status(self, status):
        creator = self.user(status["creator"])
        return {
            "url": f"{self.api}/repos/{self.full_name}/statuses/{status['sha']}", "avatar_url": None, "id": status["id"],
            "node_id": node_id("SC", status["id"]), "state": status["state"], "description": status["description"],
            "target_url": status["target_url"], "context": status["context"], "created_at": iso_seconds(status["created_at"]),
            "updated_at": iso_seconds(status["created_at"]), "creator": self.github_user(creator),
        }

    # -- Gitea shapes ------------------------------------------------------------------

    def gitea_user(self, user):
        login = user["login"]
        return {
            "id": user["id"], "login": login, "login_name": "", "source_id": 0, "full_name": "",
            "email": f"{login.lower()}@noreply.localhost", "avatar_url": f"{self.base}/avatars/{user['id']}",
            "html_url": f"{self.base}/{login}", "language": "", "is_admin": False, "last_login": "0001-01-01T00:00:00Z",
            "created": iso_seconds(user["created_at"]), "restricted": False, "active": True, "prohibit_login": False,
            "location": "", "website": "", "description": "", "visibility": "public", "followers_count": 0,
            "following_count": 0, "starred_repos_count": 0, "username": login,
        }

    def gitea_owner(self):
        owner = self.known_user(self.owner)
        if owner:
            return self.gitea_user(owner)
        return self.gitea_user({"id": 100, "login": self.owner, "created_at": now()})

    def gitea_repository(self):
        return {
            "id": 1, "owner": self.gitea_owner(), "name": self.name, "full_name": self.full_name, "description": "",
            "empty": False, "private": False, "fork": False, "template": False, "parent": None, "mirror": False,
            "html_url": f"{self.base}/{self.full_name}", "url": f"{self.api}/repos/{self.full_name}",
            "ssh_url": f"git@127.0.0.1:{self.full_name}.git", "clone_url": self.clone_url, "original_url": "",
            "website": "", "default_branch": "main", "archived": False, "has_pull_requests": True,
            "permissions": {"admin": False, "push": True, "pull": True},
        }

    def gitea_pull(self, pull):
        number = pull["number"]
        html = f"{self.base}/{self.full_name}/pulls/{number}"
        repository = self.gitea_repository()
        merged_by = self.known_user(pull["merged_by"]) if pull["merged_by"] else None
        return {
            "id": pull["id"], "url": html, "number": number, "user": self.gitea_user(self.user(pull["author"])),
            "title": pull["title"], "body": pull["body"], "labels": [], "milestone": None, "assignee": None, "assignees": None,
            "requested_reviewers": None, "requested_reviewers_teams": None, "state": pull["state"], "draft": False,
            "is_locked": False, "comments": len(self.live_comments(number)), "review_comments": 0, "additions": 0,
            "deletions": 0, "changed_files": 0, "html_url": html, "diff_url": html + ".diff", "patch_url": html + ".patch",
            "mergeable": pull["state"] == "open", "merged": pull["merged"], "merged_at": iso_seconds(pull["merged_at"]),
            "merge_commit_sha": pull["merge_commit_sha"], "merged_by": self.gitea_user(merged_by) if merged_by else None,
            "allow_maintainer_edit": False,
            "base": {"label": pull["base_ref"], "ref": pull["base_ref"], "sha": pull["base_sha"], "repo_id": 1, "repo": repository},
            "head": {"label": pull["head_ref"], "ref": pull["head_ref"], "sha": pull["head_sha"], "repo_id": 1, "repo": repository},
            "merge_base": pull["base_sha"], "due_date": None, "created_at": iso_seconds(pull["created_at"]),
            "updated_at": iso_seconds(pull["updated_at"]), "closed_at": iso_seconds(pull["closed_at"]), "pin_order": 0,
        }

    def gitea_comment(self, comment):
        html = f"{self.base}/{self.full_name}/pulls/{comment['number']}"
        return {
            "id": comment["id"], "html_url": f"{html}#issuecomment-{comment['id']}", "pull_request_url": html, "issue_url": "",
            "user": self.gitea_user(self.user(comment["author"])), "original_author": "", "original_author_id": 0,
            "body": comment["body"], "assets": [], "created_at": iso_seconds(comment["created_at"]),
            "updated_at": iso_seconds(comment["updated_at"]),
        }

    def gitea_review(self, review):
        html = f"{self.base}/{self.full_name}/pulls/{review['number']}"
        state = GITEA_REVIEW_STATES[review["state"]]
        return {
            "id": review["id"], "user": self.gitea_user(self.user(review["user"])), "team": None, "state": state,
            "body": review["body"], "commit_id": review["commit_id"], "stale": review["stale"],
            "official": state in ("APPROVED", "REQUEST_CHANGES"), "dismissed": False, "comments_count": 0,
            "submitted_at": iso_seconds(review["submitted_at"]), "updated_at": iso_seconds(review["submitted_at"]),
            "html_url": f"{html}#issuecomment-{review['id']}", "pull_request_url": html,
        }

    def gitea_status(self, status):
        return {
            "id": status["id"], "status": status["state"], "target_url": status["target_url"], "description": status["description"],
            "url": f"{self.api}/repos/{self.full_name}/statuses/{status['sha']}", "context": status["context"],
            "creator": self.gitea_user(self.user(status["creator"])), "created_at": iso_seconds(status["created_at"]),
            "updated_at": iso_seconds(status["created_at"]),
        }

    def gitea_team(self, team):
        return {
            "id": team["id"], "name": team["name"], "description": "",
            "organization": {"id": 100, "name": team["org"], "full_name": "", "email": "", "avatar_url": "", "description": "",
                             "website": "", "location": "", "visibility": "public", "repo_admin_change_team_access": False,
                             "username": team["org"]},
            "includes_all_repositories": False, "permission": "write",
            "units": ["repo.code", "repo.issues", "repo.pulls", "repo.releases", "repo.wiki"],
            "units_map": {"repo.code": "write", "repo.issues": "write", "repo.pulls": "write", "repo.releases": "write",
                          "repo.wiki": "write"},
            "can_create_org_repo": False,
        }

    # -- GitLab shapes -----------------------------------------------------------------

    def gitlab_user(self, user):
        return {"id": user["id"], "username": user["login"], "name": user["login"], "state": "active", "locked": False,
                "avatar_url": f"{self.base}/uploads/-/system/user/avatar/{user['id']}/avatar.png",
                "web_url": f"{self.base}/{user['login']}"}

    def gitlab_project(self):
        web = f"{self.base}/{self.full_name}"
        return {
            "id": 1, "description": "", "name": self.name, "name_with_namespace": f"{self.owner} / {self.name}",
            "path": self.name, "path_with_namespace": self.full_name, "created_at": iso_milliseconds(now()),
            "default_branch": "main", "ssh_url_to_repo": f"git@127.0.0.1:{self.full_name}.git",
            "http_url_to_repo": self.clone_url, "web_url": web, "visibility": "public",
            "namespace": {"id": 100, "name": self.owner, "path": self.owner, "kind": "group", "full_path": self.owner},
        }

    def gitlab_state(self, pull):
        return "merged" if pull["merged"] else ("opened" if pull["state"] == "open" else "closed")

    def gitlab_merge_request(self, pull):
        number = pull["number"]
        merged_by = self.known_user(pull["merged_by"]) if pull["merged_by"] else None
        closed_by = self.known_user(pull["closed_by"]) if pull["closed_by"] else None
        state = self.gitlab_state(pull)
        return {
            "id": pull["id"], "iid": number, "project_id": 1, "title": pull["title"], "description": pull["body"],
            "state": state, "created_at": iso_milliseconds(pull["created_at"]), "updated_at": iso_milliseconds(pull["updated_at"]),
            "merged_by": self.gitlab_user(merged_by) if merged_by else None,
            "merge_user": self.gitlab_user(merged_by) if merged_by else None, "merged_at": iso_milliseconds(pull["merged_at"]),
            "closed_by": self.gitlab_user(closed_by) if closed_by and not pull["merged"] else None,
            "closed_at": iso_milliseconds(pull["closed_at"]) if not pull["merged"] else None,
            "target_branch": pull["base_ref"], "source_branch": pull["head_ref"], "user_notes_count": len(self.live_comments(number)),
            "upvotes": 0, "downvotes": 0, "author": self.gitlab_user(self.user(pull["author"])), "assignees": [],
            "assignee": None, "reviewers": [], "source_project_id": 1, "target_project_id": 1, "labels": [], "draft": False,
            "imported": False, "imported_from": "none", "work_in_progress": False, "milestone": None,
            "merge_when_pipeline_succeeds": False, "merge_status": "can_be_merged" if state == "opened" else "unchecked",
            "detailed_merge_status": "mergeable" if state == "opened" else "not_open", "sha": pull["head_sha"],
            "merge_commit_sha": pull["merge_commit_sha"], "squash_commit_sha": None, "discussion_locked": None,
            "should_remove_source_branch": None, "force_remove_source_branch": False, "prepared_at": iso_milliseconds(pull["created_at"]),
            "reference": f"!{number}", "references": {"short": f"!{number}", "relative": f"!{number}", "full": f"{self.full_name}!{number}"},
            "web_url": f"{self.base}/{self.full_name}/-/merge_requests/{number}",
            "time_stats": {"time_estimate": 0, "total_time_spent": 0, "human_time_estimate": None, "human_total_time_spent": None},
            "squash": False, "squash_on_merge": False, "task_completion_status": {"count": 0, "completed_count": 0},
            "has_conflicts": False, "blocking_discussions_resolved": True,
            "diff_refs": {"base_sha": pull["base_sha"], "head_sha": pull["head_sha"], "start_sha": pull["base_sha"]},
            "first_contribution": False, "merge_error": None, "user": {"can_merge": True},
        }

    def gitlab_note(self, comment):
        pull = self.pulls[comment["number"]]
        return {
            "id": comment["id"], "type": None, "body": comment["body"], "attachment": None,
            "author": self.gitlab_user(self.user(comment["author"])), "created_at": iso_milliseconds(comment["created_at"]),
            "updated_at": iso_milliseconds(comment["updated_at"]), "system": False, "noteable_id": pull["id"],
            "noteable_type": "MergeRequest", "project_id": 1, "resolvable": False, "confidential": False, "internal": False,
            "imported": False, "imported_from": "none", "noteable_iid": comment["number"], "commands_changes": {},
        }

    def gitlab_status(self, job):
        return {
            "id": job["id"], "sha": job["sha"], "ref": job["ref"], "status": job["state"], "name": job["name"],
            "target_url": job["target_url"], "description": job["description"], "created_at": iso_milliseconds(job["created_at"]),
            "started_at": iso_milliseconds(job["started_at"]), "finished_at": iso_milliseconds(job["finished_at"]),
            "allow_failure": False, "coverage": None, "pipeline_id": job["pipeline_id"],
            "author": self.gitlab_user(self.user(job["creator"])),
        }

    def gitlab_approvals(self, pull, viewer):
        approved_by = self.approvals.get(pull["number"], [])
        return {
            "id": pull["id"], "iid": pull["number"], "project_id": 1, "title": pull["title"], "description": pull["body"],
            "state": self.gitlab_state(pull), "created_at": iso_milliseconds(pull["created_at"]),
            "updated_at": iso_milliseconds(pull["updated_at"]),
            "merge_status": "can_be_merged" if pull["state"] == "open" else "unchecked",
            "approved": bool(approved_by), "approvals_required": 0, "approvals_left": 0,
            "require_password_to_approve": False,
            "approved_by": [{"user": self.gitlab_user(self.user(entry["user"])), "approved_at": iso_milliseconds(entry["approved_at"])}
                            for entry in approved_by],
            "suggested_approvers": [], "approvers": [], "approver_groups": [],
            "user_has_approved": any(entry["user"].lower() == (viewer or "").lower() for entry in approved_by),
            "user_can_approve": pull["state"] == "open", "approval_rules_left": [], "has_approval_rules": False,
            "merge_request_approvers_available": False, "multiple_approval_rules_available": False,
            "invalid_approvers_rules": [],
        }

    # -- per-flavour dispatch ----------------------------------------------------------

    def pull_json(self, pull):
        return {"github": self.github_pull, "gitea": self.gitea_pull, "gitlab": self.gitlab_merge_request}[self.flavour](pull)

    def comment_json(self, comment):
        return {"github": self.github_comment, "gitea": self.gitea_comment, "gitlab": self.gitlab_note}[self.flavour](comment)

    def review_json(self, review):
        if self.flavour == "github":
            return self.github_review(review)
        if self.flavour == "gitea":
            return self.gitea_review(review)
        return {"id": review["id"], "user": self.gitlab_user(self.user(review["user"])), "state": review["state"],
                "commit_id": review["commit_id"], "body": review["body"],
                "approved_at": iso_milliseconds(review["submitted_at"]) if review["state"] == "APPROVED" else None}

    def live_comments(self, number):
        return [comment for comment in self.comments.values() if comment["number"] == number and not comment["deleted"]]

    # -- webhooks ----------------------------------------------------------------------

    def deliver(self, event, payload, event_type=None):
        """POSTs a delivery to the webhook URL, signed as the flavour signs; returns
        {status, body} (status 0 and an `error` when nothing answered), or None without a URL.
        Called without the lock held: the receiver may call the API back while answering."""
        if not self.webhook_url:
            return None
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        delivery = str(uuid.uuid4())
        signature = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json"}
        if self.flavour == "github":
            headers.update({
                "User-Agent": "GitHub-Hookshot/forge-test", "X-GitHub-Event": event, "X-GitHub-Delivery": delivery,
                "X-GitHub-Hook-ID": str(self.hook_id), "X-GitHub-Hook-Installation-Target-ID": "1",
                "X-GitHub-Hook-Installation-Target-Type": "repository",
            })
            if self.secret:
                headers["X-Hub-Signature"] = "sha1=" + hmac.new(self.secret.encode(), body, hashlib.sha1).hexdigest()
                headers["X-Hub-Signature-256"] = "sha256=" + signature
        elif self.flavour == "gitea":
            # Gitea 1.22 (services/webhook/deliver.go): X-*-Event is HookEventType.Event() (e.g.
            # "pull_request_approved"), X-*-Event-Type the hook event type itself (e.g.
            # "pull_request_review_approved"); it sends Gogs and GitHub copies of each.
            event_type = event_type or event
            headers.update({
                "User-Agent": "Go-http-client/1.1",
                "X-Gitea-Delivery": delivery, "X-Gitea-Event": event, "X-Gitea-Event-Type": event_type,
                "X-Gitea-Signature": signature if self.secret else "",
                "X-Gogs-Delivery": delivery, "X-Gogs-Event": event, "X-Gogs-Event-Type": event_type,
                "X-Gogs-Signature": signature if self.secret else "",
                "X-GitHub-Delivery": delivery, "X-GitHub-Event": event, "X-GitHub-Event-Type": event_type,
            })
            if self.secret:
                headers["X-Hub-Signature"] = "sha1=" + hmac.new(self.secret.encode(), body, hashlib.sha1).hexdigest()
                headers["X-Hub-Signature-256"] = "sha256=" + signature
        else:
            headers.update({
                "User-Agent": "GitLab/17.5.0", "X-Gitlab-Event": event, "X-Gitlab-Webhook-UUID": str(uuid.uuid5(uuid.NAMESPACE_URL, self.base)),
                "X-Gitlab-Instance": self.base, "X-Gitlab-Event-UUID": delivery, "Idempotency-Key": str(uuid.uuid4()),
            })
            if self.secret:
                headers["X-Gitlab-Token"] = self.secret
        request = urllib.request.Request(self.webhook_url, data=body, headers=headers, method="POST")
        result = {"status": 0, "body": ""}
        try:
            with OPENER.open(request, timeout=30) as answer:
                result = {"status": answer.status, "body": answer.read().decode("utf-8", "replace")}
        except urllib.error.HTTPError as error:
            result = {"status": error.code, "body": error.read().decode("utf-8", "replace")}
        except Exception as error:  # noqa: BLE001 - any failure to deliver is reported, not raised
            result = {"status": 0, "body": "", "error": f"{type(error).__name__}: {error}"}
        with self.lock:
            self.deliveries.append({"event": event, "headers": headers, "payload": payload, **result})
        return result

    def github_hook(self, event, action, pull, sender, extra=None):
        payload = {"action": action, "number": pull["number"], "pull_request": self.github_pull(pull)}
        payload.update(extra or {})
        payload["repository"] = self.github_repository()
        payload["sender"] = self.github_user(self.user(sender))
        return payload

    def gitea_hook(self, action, pull, sender, extra=None):
        payload = {"action": action, "number": pull["number"], "pull_request": self.gitea_pull(pull), "requested_reviewer": None,
                   "repository": self.gitea_repository(), "sender": self.gitea_user(self.user(sender)), "commit_id": ""}
        payload.update(extra or {})
        return payload

    def gitlab_hook_user(self, login):
        user = self.user(login)
        return {"id": user["id"], "name": user["login"], "username": user["login"],
                "avatar_url": f"{self.base}/uploads/-/system/user/avatar/{user['id']}/avatar.png", "email": "[REDACTED]"}

    def gitlab_hook_project(self):
        web = f"{self.base}/{self.full_name}"
        ssh = f"git@127.0.0.1:{self.full_name}.git"
        return {"id": 1, "name": self.name, "description": "", "web_url": web, "avatar_url": None, "git_ssh_url": ssh,
                "git_http_url": self.clone_url, "namespace": self.owner, "visibility_level": 20,
                "path_with_namespace": self.full_name, "default_branch": "main", "ci_config_path": None, "homepage": web,
                "url": ssh, "ssh_url": ssh, "http_url": self.clone_url}

    def gitlab_hook_merge_request(self, pull):
        web = f"{self.base}/{self.full_name}/-/merge_requests/{pull['number']}"
        state = self.gitlab_state(pull)
        merged_by = self.known_user(pull["merged_by"]) if pull["merged_by"] else None
        return {
            "assignee_id": None, "author_id": self.user(pull["author"])["id"], "created_at": gitlab_hook_time(pull["created_at"]),
            "description": pull["body"], "draft": False, "head_pipeline_id": None, "id": pull["id"], "iid": pull["number"],
            "last_edited_at": None, "last_edited_by_id": None, "merge_commit_sha": pull["merge_commit_sha"], "merge_error": None,
            "merge_params": {"force_remove_source_branch": "0"}, "merge_status": "can_be_merged" if state == "opened" else "unchecked",
            "merge_user_id": merged_by["id"] if merged_by else None, "merge_when_pipeline_succeeds": False, "milestone_id": None,
            "source_branch": pull["head_ref"], "source_project_id": 1,
            "state_id": {"opened": 1, "closed": 2, "merged": 3}[state], "target_branch": pull["base_ref"], "target_project_id": 1,
            "time_estimate": 0, "title": pull["title"], "updated_at": gitlab_hook_time(pull["updated_at"]), "updated_by_id": None,
            "prepared_at": gitlab_hook_time(pull["created_at"]), "assignee_ids": [], "blocking_discussions_resolved": True,
            "detailed_merge_status": "mergeable" if state == "opened" else "not_open", "first_contribution": False,
            "human_time_change": None, "human_time_estimate": None, "human_total_time_spent": None, "labels": [],
            "last_commit": {"id": pull["head_sha"], "message": pull["title"] + "\n", "title": pull["title"],
                            "timestamp": pull["updated_at"].strftime("%Y-%m-%dT%H:%M:%S+00:00"),
                            "url": f"{self.base}/{self.full_name}/-/commit/{pull['head_sha']}",
                            "author": {"name": pull["author"], "email": f"{pull['author'].lower()}@example.com"}},
            "reviewer_ids": [], "source": self.gitlab_hook_project(), "state": state, "target": self.gitlab_hook_project(),
            "time_change": 0, "total_time_spent": 0, "url": web, "work_in_progress": False,
        }

    def gitlab_merge_request_hook(self, pull, action, sender, oldrev=None, changes=None):
        attributes = self.gitlab_hook_merge_request(pull)
        attributes["action"] = action
        if oldrev:
            attributes["oldrev"] = oldrev
        return {
            "object_kind": "merge_request", "event_type": "merge_request", "user": self.gitlab_hook_user(sender),
            "project": self.gitlab_hook_project(), "object_attributes": attributes, "labels": [], "changes": changes or {},
            "repository": {"name": self.name, "url": f"git@127.0.0.1:{self.full_name}.git", "description": "",
                           "homepage": f"{self.base}/{self.full_name}"},
            "assignees": [], "reviewers": [],
        }

    # -- control actions (each returns (status, reply, delivery thunk)) ----------------

    def pull_or_404(self, number):
        pull = self.pulls.get(number)
        if not pull:
            raise Problem(404, f"no pull request {number}")
        return pull

    def control_create_user(self, body):
        login = text_field(body, "login", required=True)
        user = self.user(login)
        token = text_field(body, "token")
        if token:
            if user["token"]:
                self.tokens.pop(user["token"], None)
            user["token"] = token
            self.tokens[token] = login.lower()
        return 201, {"user": {"login": user["login"], "id": user["id"], "token": user["token"]}}, None

    def control_open(self, body):
        author = text_field(body, "author", required=True)
        head_sha = text_field(body, "head_sha", required=True)
        number = body.get("number")
        if number is None:
            number = max(self.pulls, default=0) + 1
        elif not isinstance(number, int) or isinstance(number, bool) or number < 1:
            raise Problem(400, "number must be a positive integer")
        if number in self.pulls:
            raise Problem(409, f"pull request {number} exists")
        base_ref = text_field(body, "base_ref") or "main"
        moment = now()
        pull = {
            "number": number, "id": self.next_id("pull"), "author": self.user(author)["login"], "head_sha": head_sha,
            "head_ref": text_field(body, "head_ref") or f"feature-{number}", "base_ref": base_ref,
            "base_sha": text_field(body, "base_sha") or hashlib.sha1(f"base:{base_ref}".encode()).hexdigest(),
            "title": text_field(body, "title") or f"Change {number}", "body": text_field(body, "body") or "",
            "state": "open", "merged": False, "merge_commit_sha": None, "merged_at": None, "merged_by": None,
            "closed_at": None, "closed_by": None, "created_at": moment, "updated_at": moment,
        }
        self.pulls[number] = pull
        sender = pull["author"]
        if self.flavour == "github":
            hook = ("pull_request", self.github_hook("pull_request", "opened", pull, sender), None)
        elif self.flavour == "gitea":
            hook = ("pull_request", self.gitea_hook("opened", pull, sender), "pull_request")
        else:
            hook = ("Merge Request Hook", self.gitlab_merge_request_hook(pull, "open", sender), None)
        return 201, {"pull": self.pull_json(pull)}, hook

    def control_push(self, number, body):
        pull = self.pull_or_404(number)
        head_sha = text_field(body, "head_sha", required=True)
        if pull["state"] != "open":
            raise Problem(409, f"pull request {number} is {'merged' if pull['merged'] else 'closed'}")
        sender = self.user(text_field(body, "user") or pull["author"])["login"]
        before = pull["head_sha"]
        previous_update = pull["updated_at"]
        pull["head_sha"] = head_sha
        pull["updated_at"] = now()
        for review in self.reviews:
            if review["number"] == number and review["commit_id"] != head_sha:
                review["stale"] = True
        if self.flavour == "github":
            hook = ("pull_request", self.github_hook("pull_request", "synchronize", pull, sender, {"before": before, "after": head_sha}), None)
        elif self.flavour == "gitea":
            hook = ("pull_request", self.gitea_hook("synchronized", pull, sender), "pull_request_sync")
        else:
            changes = {"updated_at": {"previous": gitlab_hook_time(previous_update), "current": gitlab_hook_time(pull["updated_at"])}}
            hook = ("Merge Request Hook", self.gitlab_merge_request_hook(pull, "update", sender, oldrev=before, changes=changes), None)
        return 200, {"pull": self.pull_json(pull)}, hook

    def control_review(self, number, body):
        pull = self.pull_or_404(number)
        login = self.user(text_field(body, "user", required=True))["login"]
        state = (text_field(body, "state") or "APPROVED").upper()
        allowed = set(GITHUB_REVIEW_STATES) | ({"UNAPPROVED"} if self.flavour == "gitlab" else set())
        if state not in allowed:
            raise Problem(400, f"state must be one of {', '.join(sorted(allowed))}")
        review = {
            "id": self.next_id("review"), "number": number, "user": login, "state": GITHUB_REVIEW_STATES.get(state, state),
            "commit_id": text_field(body, "commit_id") or pull["head_sha"], "body": text_field(body, "body") or "",
            "submitted_at": now(), "stale": False,
        }
        review["stale"] = review["commit_id"] != pull["head_sha"]
        hook = None
        if self.flavour == "github":
            self.reviews.append(review)
            shaped = self.github_review(review)
            hook_review = dict(shaped, state=shaped["state"].lower())
            payload = {"action": "submitted", "review": hook_review, "pull_request": self.github_pull(pull),
                       "repository": self.github_repository(), "sender": self.github_user(self.user(login))}
            hook = ("pull_request_review", payload, None)
        elif self.flavour == "gitea":
            self.reviews.append(review)
            state = GITEA_REVIEW_STATES[review["state"]]
            event_type = {"APPROVED": "pull_request_review_approved", "REQUEST_CHANGES": "pull_request_review_rejected",
                          "COMMENT": "pull_request_review_comment"}[state]
            event = {"APPROVED": "pull_request_approved", "REQUEST_CHANGES": "pull_request_rejected",
                     "COMMENT": "pull_request_comment"}[state]
            hook = (event, self.gitea_hook("reviewed", pull, login, {"review": {"type": event_type, "content": review["body"]}}), event_type)
        else:
            entries = self.approvals.setdefault(number, [])
            mine = [entry for entry in entries if entry["user"].lower() == login.lower()]
            if state == "APPROVED":
                if mine:
                    raise Problem(409, f"{login} has already approved !{number} (GitLab answers 401 to a second approval)")
                entries.append({"user": login, "approved_at": review["submitted_at"]})
                hook = ("Merge Request Hook", self.gitlab_merge_request_hook(pull, "approved", login), None)
            elif state == "UNAPPROVED":
                if not mine:
                    raise Problem(409, f"{login} has not approved !{number}")
                entries.remove(mine[0])
                hook = ("Merge Request Hook", self.gitlab_merge_request_hook(pull, "unapproved", login), None)
            self.reviews.append(review)
        return 201, {"review": self.review_json(review)}, hook

    def control_comment(self, number, body):
        pull = self.pull_or_404(number)
        login = self.user(text_field(body, "user", required=True))["login"]
        text = body.get("body")
        if not isinstance(text, str):
            raise Problem(400, "body must be a string")
        comment = self.add_comment(number, login, text)
        if self.flavour == "github":
            shaped = self.github_comment(comment)
            api = f"{self.api}/repos/{self.full_name}"
            issue = {
                "url": f"{api}/issues/{number}", "repository_url": api, "html_url": f"{self.base}/{self.full_name}/pull/{number}",
                "id": pull["id"], "node_id": node_id("PR", pull["id"]), "number": number, "title": pull["title"],
                "user": self.github_user(self.user(pull["author"])), "labels": [], "state": pull["state"], "locked": False,
                "assignee": None, "assignees": [], "milestone": None, "comments": len(self.live_comments(number)),
                "created_at": iso_seconds(pull["created_at"]), "updated_at": iso_seconds(pull["updated_at"]),
                "closed_at": iso_seconds(pull["closed_at"]), "author_association": "CONTRIBUTOR", "draft": False,
                "pull_request": {"url": f"{api}/pulls/{number}", "html_url": f"{self.base}/{self.full_name}/pull/{number}",
                                 "diff_url": f"{self.base}/{self.full_name}/pull/{number}.diff",
                                 "patch_url": f"{self.base}/{self.full_name}/pull/{number}.patch",
                                 "merged_at": iso_seconds(pull["merged_at"])},
                "body": pull["body"],
            }
            payload = {"action": "created", "issue": issue, "comment": shaped, "repository": self.github_repository(),
                       "sender": self.github_user(self.user(login))}
            hook = ("issue_comment", payload, None)
        elif self.flavour == "gitea":
            html = f"{self.base}/{self.full_name}/pulls/{number}"
            issue = {
                "id": pull["id"], "url": f"{self.api}/repos/{self.full_name}/issues/{number}", "html_url": html,
                "number": number, "user": self.gitea_user(self.user(pull["author"])), "original_author": "",
                "original_author_id": 0, "title": pull["title"], "body": pull["body"], "ref": "", "assets": [], "labels": [],
                "milestone": None, "assignee": None, "assignees": None, "state": pull["state"], "is_locked": False,
                "comments": len(self.live_comments(number)), "created_at": iso_seconds(pull["created_at"]),
                "updated_at": iso_seconds(pull["updated_at"]), "closed_at": iso_seconds(pull["closed_at"]), "due_date": None,
                "pull_request": {"merged": pull["merged"], "merged_at": iso_seconds(pull["merged_at"]), "draft": False,
                                 "html_url": html},
                "repository": {"id": 1, "name": self.name, "owner": self.owner, "full_name": self.full_name},
                "pin_order": 0,
            }
            payload = {"action": "created", "issue": issue, "comment": self.gitea_comment(comment),
                       "repository": self.gitea_repository(), "sender": self.gitea_user(self.user(login)), "is_pull": True}
            hook = ("issue_comment", payload, "pull_request_comment")
        else:
            web = f"{self.base}/{self.full_name}/-/merge_requests/{number}"
            attributes = {
                "attachment": None, "author_id": self.user(login)["id"], "change_position": None, "commit_id": None,
                "created_at": gitlab_hook_time(comment["created_at"]), "discussion_id": hashlib.sha1(f"d{comment['id']}".encode()).hexdigest(),
                "id": comment["id"], "line_code": None, "note": text, "noteable_id": pull["id"], "noteable_type": "MergeRequest",
                "original_position": None, "position": None, "project_id": 1, "resolved_at": None, "resolved_by_id": None,
                "resolved_by_push": None, "st_diff": None, "system": False, "type": None,
                "updated_at": gitlab_hook_time(comment["updated_at"]), "updated_by_id": None, "description": text,
                "url": f"{web}#note_{comment['id']}", "action": "create",
            }
            payload = {
                "object_kind": "note", "event_type": "note", "user": self.gitlab_hook_user(login), "project_id": 1,
                "project": self.gitlab_hook_project(), "object_attributes": attributes,
                "repository": {"name": self.name, "url": f"git@127.0.0.1:{self.full_name}.git", "description": "",
                               "homepage": f"{self.base}/{self.full_name}"},
                "merge_request": self.gitlab_hook_merge_request(pull),
            }
            hook = ("Note Hook", payload, None)
        return 201, {"comment": self.comment_json(comment)}, hook

    def control_merge(self, number, body):
        pull = self.pull_or_404(number)
        sha = text_field(body, "merge_commit_sha", required=True)
        if pull["merged"]:
            raise Problem(409, f"pull request {number} is already merged")
        login = self.user(text_field(body, "user") or pull["author"])["login"]
        moment = now()
        previous_state = self.gitlab_state(pull)
        pull.update(state="closed", merged=True, merge_commit_sha=sha, merged_at=moment, merged_by=login, closed_at=moment,
                    closed_by=login, updated_at=moment)
        if self.flavour == "github":
            hook = ("pull_request", self.github_hook("pull_request", "closed", pull, login), None)
        elif self.flavour == "gitea":
            hook = ("pull_request", self.gitea_hook("closed", pull, login), "pull_request")
        else:
            changes = {"state_id": {"previous": {"opened": 1, "closed": 2}[previous_state], "current": 3}}
            hook = ("Merge Request Hook", self.gitlab_merge_request_hook(pull, "merge", login, changes=changes), None)
        return 200, {"pull": self.pull_json(pull)}, hook

    def control_close(self, number, body):
        pull = self.pull_or_404(number)
        if pull["state"] != "open":
            raise Problem(409, f"pull request {number} is not open")
        login = self.user(text_field(body, "user") or pull["author"])["login"]
        moment = now()
        pull.update(state="closed", closed_at=moment, closed_by=login, updated_at=moment)
        if self.flavour == "github":
            hook = ("pull_request", self.github_hook("pull_request", "closed", pull, login), None)
        elif self.flavour == "gitea":
            hook = ("pull_request", self.gitea_hook("closed", pull, login), "pull_request")
        else:
            hook = ("Merge Request Hook", self.gitlab_merge_request_hook(pull, "close", login,
                                                                         changes={"state_id": {"previous": 1, "current": 2}}), None)
        return 200, {"pull": self.pull_json(pull)}, hook

    def control_reopen(self, number, body):
        pull = self.pull_or_404(number)
        if pull["state"] != "closed" or pull["merged"]:
            raise Problem(409, f"pull request {number} is not closed (or is merged)")
        login = self.user(text_field(body, "user") or pull["author"])["login"]
        pull.update(state="open", closed_at=None, closed_by=None, updated_at=now())
        if self.flavour == "github":
            hook = ("pull_request", self.github_hook("pull_request", "reopened", pull, login), None)
        elif self.flavour == "gitea":
            hook = ("pull_request", self.gitea_hook("reopened", pull, login), "pull_request")
        else:
            hook = ("Merge Request Hook", self.gitlab_merge_request_hook(pull, "reopen", login,
                                                                         changes={"state_id": {"previous": 2, "current": 1}}), None)
        return 200, {"pull": self.pull_json(pull)}, hook

    def control_team(self, body):
        org = text_field(body, "org", required=True)
        name = text_field(body, "team") or ""
        if not name and self.flavour != "gitlab":
            raise Problem(400, "team is required")
        members = body.get("members") or []
        if not isinstance(members, list) or not all(isinstance(member, str) and member for member in members):
            raise Problem(400, "members must be a list of logins")
        logins = [self.user(member)["login"] for member in members]
        if self.flavour == "gitlab" and name and not self.find_team(org, ""):
            self.teams.append({"id": self.next_id("team"), "org": org, "name": "", "slug": "", "path": org, "members": []})
        team = self.find_team(org, name)
        if team:
            team["members"] = logins
        else:
            team = {"id": self.next_id("team"), "org": org, "name": name, "slug": slug(name),
                    "path": f"{org}/{name}" if name else org, "members": logins}
            self.teams.append(team)
        return 201, {"team": dict(team)}, None

    def find_team(self, org, name):
        return next((team for team in self.teams
                     if team["org"].lower() == org.lower() and team["name"].lower() == name.lower()), None)

    def add_comment(self, number, login, text):
        moment = now()
        comment = {"id": self.next_id("comment"), "number": number, "author": login, "body": text, "created_at": moment,
                   "updated_at": moment, "deleted": False}
        self.comments[comment["id"]] = comment
        return comment


def slug(name):
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def text_field(body, name, required=False):
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise Problem(400, f"{name} is required")
        return None
    if not isinstance(value, str):
        raise Problem(400, f"{name} must be a string")
    return value


class NoRedirects(urllib.request.HTTPRedirectHandler):
    """Forges do not follow a webhook receiver's redirects: a 3xx is the delivery's answer."""

    def redirect_request(self, *arguments):
        return None


# No proxies from the environment: deliveries go straight to the receiver, as tests expect.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirects())


class API:
    """The client-facing API of one flavour: `handle` answers a request with a Reply."""

    def __init__(self, forge):
        self.forge = forge

    # -- errors, in each forge's words -------------------------------------------------

    def not_found(self, what=None):
        flavour = self.forge.flavour
        if flavour == "github":
            return Reply(404, {"message": "Not Found", "documentation_url": GITHUB_DOCS, "status": "404"})
        if flavour == "gitea":
            return Reply(404, {"errors": [], "message": "The target couldn't be found.", "url": f"{self.forge.base}/api/swagger"})
        return Reply(404, {"message": f"404 {what} Not Found" if what else "404 Not found"})

    def unauthorized(self, missing):
        flavour = self.forge.flavour
        if flavour == "github":
            return Reply(401, {"message": "Requires authentication" if missing else "Bad credentials",
                               "documentation_url": GITHUB_DOCS, "status": "401"})
        if flavour == "gitea":
            # Gitea treats an unknown token as none: its reqToken check answers the same.
            return Reply(401, {"message": "token is required", "url": f"{self.forge.base}/api/swagger"})
        return Reply(401, {"message": "401 Unauthorized"})

    def forbidden(self):
        flavour = self.forge.flavour
        if flavour == "github":
            return Reply(403, {"message": "Must have admin rights to Repository.", "documentation_url": GITHUB_DOCS, "status": "403"})
        if flavour == "gitea":
            return Reply(403, raw=b"")  # Gitea's EditIssueComment/DeleteIssueComment: ctx.Status(403)
        return Reply(403, {"message": "403 Forbidden"})

    def github_invalid(self, resource, field, code, message=None, docs=GITHUB_DOCS):
        error = {"resource": resource, "code": code, "field": field}
        if message:
            error["message"] = message
        return Reply(422, {"message": "Validation Failed", "errors": [error], "documentation_url": docs, "status": "422"})

    def gitea_invalid(self, message):
        return Reply(422, {"message": message, "url": f"{self.forge.base}/api/swagger"})

    # -- authentication and routing ----------------------------------------------------

    def authenticate(self, headers):
        """(login or None, whether a credential was presented)."""
        token = None
        authorization = headers.get("Authorization") or ""
        scheme, _, value = authorization.strip().partition(" ")
        if self.forge.flavour == "gitlab":
            token = headers.get("PRIVATE-TOKEN") or (value.strip() if scheme.lower() == "bearer" else None)
        elif scheme.lower() in ("bearer", "token"):
            token = value.strip()
        if not token:
            return None, False
        key = self.forge.tokens.get(token)
        return (self.forge.users[key]["login"] if key else None), True

    def handle(self, method, segments, query, body, login, presented, raw_path):
        forge = self.forge
        if login is None:
            return self.unauthorized(not presented)
        prefix = {"github": [], "gitea": ["api", "v1"], "gitlab": ["api", "v4"]}[forge.flavour]
        if segments[:len(prefix)] != prefix:
            return self.not_found()
        parts = segments[len(prefix):]
        context = {"method": method, "parts": parts, "query": query, "body": body, "login": login, "raw_path": raw_path}
        if forge.flavour == "gitlab":
            return self.gitlab(context)
        return self.github_style(context)

    # -- GitHub and Gitea --------------------------------------------------------------

    def github_style(self, context):
        forge = self.forge
        method, parts, login = context["method"], context["parts"], context["login"]
        gitea = forge.flavour == "gitea"
        if parts == ["user"] and method == "GET":
            user = forge.user(login)
            if gitea:
                return Reply(200, forge.gitea_user(user))
            shaped = forge.github_user(user)
            shaped.update({"name": None, "company": None, "blog": "", "location": None, "email": None, "hireable": None,
                           "bio": None, "twitter_username": None, "public_repos": 0, "public_gists": 0, "followers": 0,
                           "following": 0, "created_at": iso_seconds(user["created_at"]),
                           "updated_at": iso_seconds(user["created_at"])})
            return Reply(200, shaped)
        if len(parts) >= 3 and parts[0] == "repos":
            if f"{parts[1]}/{parts[2]}".lower() != forge.full_name.lower():
                return self.not_found()
            return self.github_style_repository(context, parts[3:])
        if not gitea and len(parts) == 6 and parts[0] == "orgs" and parts[2] == "teams" and parts[4] == "memberships" and method == "GET":
            team = next((team for team in forge.teams if team["org"].lower() == parts[1].lower() and team["slug"] == parts[3].lower()), None)
            member = forge.known_user(parts[5])
            if not team or not member or member["login"] not in team["members"]:
                return self.not_found()
            return Reply(200, {"url": f"{forge.api}/teams/{team['id']}/memberships/{member['login']}", "role": "member",
                               "state": "active"})
        if gitea and len(parts) == 4 and parts[0] == "orgs" and parts[2:] == ["teams", "search"] and method == "GET":
            query = (context["query"].get("q") or "").lower()
            teams = [team for team in forge.teams if team["org"].lower() == parts[1].lower() and query in team["name"].lower()]
            if not any(team["org"].lower() == parts[1].lower() for team in forge.teams):
                return self.not_found()
            return Reply(200, {"data": [forge.gitea_team(team) for team in teams], "ok": True},
                         [("X-Total-Count", str(len(teams)))])
        if gitea and len(parts) == 4 and parts[0] == "teams" and parts[2] == "members" and method == "GET":
            team = next((team for team in forge.teams if str(team["id"]) == parts[1]), None)
            member = forge.known_user(parts[3])
            if not team or not member or member["login"] not in team["members"]:
                return self.not_found()
            return Reply(200, forge.gitea_user(member))
        return self.not_found()

    def github_style_repository(self, context, rest):
        forge = self.forge
        method, login, body = context["method"], context["login"], context["body"]
        gitea = forge.flavour == "gitea"
        if len(rest) == 2 and rest[0] == "pulls" and method == "GET":
            pull = forge.pulls.get(integer(rest[1], -1))
            return Reply(200, forge.pull_json(pull)) if pull else self.not_found()
        if len(rest) == 3 and rest[0] == "issues" and rest[2] == "comments" and rest[1] != "comments":
            pull = forge.pulls.get(integer(rest[1], -1))
            if not pull:
                return self.not_found()
            if method == "GET":
                comments = [forge.comment_json(comment) for comment in forge.live_comments(pull["number"])]
                if gitea:
                    return Reply(200, comments, [("X-Total-Count", str(len(comments)))])
                return self.github_page(comments, context)
            if method == "POST":
                text, problem = self.comment_body(body)
                if problem:
                    return problem
                comment = forge.add_comment(pull["number"], login, text)
                return Reply(201, forge.comment_json(comment), self.location(f"/repos/{forge.full_name}/issues/comments/{comment['id']}"))
            return self.not_found()
        if len(rest) == 3 and rest[0] == "issues" and rest[1] == "comments":
            comment = forge.comments.get(integer(rest[2], -1))
            if not comment or comment["deleted"]:
                return self.not_found()
            if method == "GET":
                return Reply(200, forge.comment_json(comment))
            if method not in ("PATCH", "DELETE"):
                return self.not_found()
            if comment["author"].lower() != login.lower():
                return self.forbidden()
            if method == "DELETE":
                comment["deleted"] = True
                return Reply(204)
            text, problem = self.comment_body(body)
            if problem:
                return problem
            comment["body"] = text
            comment["updated_at"] = now()
            return Reply(200, forge.comment_json(comment))
        if len(rest) == 3 and rest[0] == "pulls" and rest[2] == "reviews" and method == "GET":
            pull = forge.pulls.get(integer(rest[1], -1))
            if not pull:
                return self.not_found()
            reviews = [forge.review_json(review) for review in forge.reviews if review["number"] == pull["number"]]
            if gitea:
                return self.gitea_page(reviews, context)
            return self.github_page(reviews, context)
        if len(rest) == 2 and rest[0] == "statuses":
            if method == "POST":
                return self.github_style_status(rest[1], body, login)
            if method == "GET":
                statuses = list(reversed(forge.statuses.get(rest[1], [])))
                return self.gitea_page(statuses, context) if gitea else self.github_page(statuses, context)
            return self.not_found()
        if not gitea and len(rest) == 3 and rest[0] == "commits" and rest[2] == "pulls" and method == "GET":
            sha = rest[1]
            pulls = [forge.github_pull(pull) for pull in forge.pulls.values() if sha in (pull["head_sha"], pull["merge_commit_sha"])]
            return self.github_page(pulls, context)
        if gitea and len(rest) == 3 and rest[0] == "commits" and rest[2] == "pull" and method == "GET":
            # Gitea 1.22 looks up the pull request that merged the commit (GetPullRequestByMergedCommit).
            pull = next((pull for pull in forge.pulls.values() if pull["merged"] and pull["merge_commit_sha"] == rest[1]), None)
            return Reply(200, forge.gitea_pull(pull)) if pull else self.not_found()
        return self.not_found()

    def comment_body(self, body):
        """(text, None) or (None, the forge's answer to a bad comment body)."""
        gitea = self.forge.flavour == "gitea"
        text = body.get("body") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text.strip():
            if gitea:
                return None, self.gitea_invalid("[Body]: Required")
            return None, self.github_invalid("IssueComment", "body", "missing_field",
                                             docs="https://docs.github.com/rest/issues/comments#create-an-issue-comment")
        if not gitea and len(text) > GITHUB_COMMENT_LIMIT:
            return None, self.github_invalid("IssueComment", "body", "custom",
                                             f"body is too long (maximum is {GITHUB_COMMENT_LIMIT} characters)",
                                             docs="https://docs.github.com/rest/issues/comments#create-an-issue-comment")
        return text, None

    def github_style_status(self, sha, body, login):
        forge = self.forge
        gitea = forge.flavour == "gitea"
        body = body if isinstance(body, dict) else {}
        state = body.get("state")
        states = ("pending", "success", "error", "failure", "warning") if gitea else ("pending", "success", "error", "failure")
        docs = "https://docs.github.com/rest/commits/statuses#create-a-commit-status"
        if state not in states:
            if gitea:
                return self.gitea_invalid(f"invalid commit status state: {state!r}")
            return self.github_invalid("Status", "state", "custom", "state is not included in the list", docs)
        description = body.get("description")
        if not gitea and isinstance(description, str) and len(description) > GITHUB_DESCRIPTION_LIMIT:
            return self.github_invalid("Status", "description", "custom",
                                       f"description is too long (maximum is {GITHUB_DESCRIPTION_LIMIT} characters)", docs)
        status = {"id": forge.next_id("status"), "sha": sha, "state": state, "description": description,
                  "target_url": body.get("target_url"), "context": body.get("context") or "default", "creator": login,
                  "created_at": now()}
        shaped = forge.gitea_status(status) if gitea else forge.github_status(status)
        forge.statuses.setdefault(sha, []).append(shaped)
        return Reply(201, shaped, self.location(f"/repos/{forge.full_name}/statuses/{sha}"))

    def location(self, path):
        return [("Location", self.forge.api + path)]

    # -- pagination ----------------------------------------------------------------------

    def page_links(self, context, page, pages, size_name, size):
        def link(number):
            query = dict(context["query"], **{size_name: str(size), "page": str(number)})
            return f"{self.forge.base}{context['raw_path']}?{urllib.parse.urlencode(query)}"
        links = []
        if page < pages:
            links += [f'<{link(page + 1)}>; rel="next"', f'<{link(pages)}>; rel="last"']
        if page > 1:
            links += [f'<{link(1)}>; rel="first"', f'<{link(min(page - 1, pages))}>; rel="prev"']
        return links

    def github_page(self, items, context):
        query = context["query"]
        size = integer(query.get("per_page"), 30)
        size = 30 if size < 1 else min(size, 100)
        page = max(1, integer(query.get("page"), 1))
        pages = max(1, math.ceil(len(items) / size))
        links = self.page_links(context, page, pages, "per_page", size)
        return Reply(200, items[(page - 1) * size:page * size], [("Link", ", ".join(links))] if links else [])

    def gitea_page(self, items, context):
        query = context["query"]
        size = integer(query.get("limit"), 30)
        size = 30 if size < 1 else min(size, 50)
        page = max(1, integer(query.get("page"), 1))
        pages = max(1, math.ceil(len(items) / size))
        headers = [("X-Total-Count", str(len(items)))]
        links = self.page_links(context, page, pages, "limit", size)
        if links:
            headers.append(("Link", ", ".join(links)))
        return Reply(200, items[(page - 1) * size:page * size], headers)

    def gitlab_page(self, items, context):
        query = context["query"]
        size = integer(query.get("per_page"), 20)
        size = 20 if size < 1 else min(size, 100)
        page = max(1, integer(query.get("page"), 1))
        pages = max(1, math.ceil(len(items) / size))
        headers = [("X-Page", str(page)), ("X-Per-Page", str(size)), ("X-Total", str(len(items))),
                   ("X-Total-Pages", str(pages)), ("X-Next-Page", str(page + 1) if page < pages else ""),
                   ("X-Prev-Page", str(page - 1) if page > 1 else "")]
        links = self.page_links(context, page, pages, "per_page", size)
        if links:
            headers.append(("Link", ", ".join(links)))
        return Reply(200, items[(page - 1) * size:page * size], headers)

    # -- GitLab --------------------------------------------------------------------------

    def gitlab(self, context):
        forge = self.forge
        method, parts, login, query = context["method"], context["parts"], context["login"], context["query"]
        if parts == ["user"] and method == "GET":
            user = forge.user(login)
            shaped = forge.gitlab_user(user)
            shaped.update({"created_at": iso_milliseconds(user["created_at"]), "bio": "", "location": "", "public_email": None,
                           "skype": "", "linkedin": "", "twitter": "", "website_url": "", "organization": "",
                           "job_title": "", "bot": login.endswith("-bot") or login.endswith("_bot"),
                           "email": f"{login.lower()}@example.com", "is_admin": False, "can_create_group": True,
                           "can_create_project": True, "two_factor_enabled": False, "external": False,
                           "private_profile": False})
            return Reply(200, shaped)
        if parts == ["users"] and method == "GET":
            wanted = query.get("username")
            users = [user for user in forge.users.values() if wanted is None or user["login"].lower() == wanted.lower()]
            return self.gitlab_page([forge.gitlab_user(user) for user in users], context)
        if len(parts) == 5 and parts[0] == "groups" and parts[2:4] == ["members", "all"] and method == "GET":
            group = next((team for team in forge.teams if team["path"].lower() == parts[1].lower() or str(team["id"]) == parts[1]), None)
            if not group:
                return self.not_found("Group")
            member = forge.user_by_id(integer(parts[4], -1))
            # members/all: the group's members and those it inherits from its ancestors.
            path = group["path"].lower()
            lineage = [team for team in forge.teams if path == team["path"].lower() or path.startswith(team["path"].lower() + "/")]
            if not member or not any(member["login"] in team["members"] for team in lineage):
                return self.not_found()
            shaped = forge.gitlab_user(member)
            shaped.update({"access_level": 30, "created_at": iso_milliseconds(member["created_at"]), "expires_at": None,
                           "membership_state": "active", "created_by": None})
            return Reply(200, shaped)
        if len(parts) >= 2 and parts[0] == "projects":
            if parts[1] != "1" and parts[1].lower() != forge.full_name.lower():
                return self.not_found("Project")
            return self.gitlab_project(context, parts[2:])
        return self.not_found()

    def gitlab_project(self, context, rest):
        forge = self.forge
        method, login, body, query = context["method"], context["login"], context["body"], context["query"]
        if not rest and method == "GET":
            return Reply(200, forge.gitlab_project())
        if len(rest) >= 2 and rest[0] == "merge_requests":
            pull = forge.pulls.get(integer(rest[1], -1))
            if not pull:
                return self.not_found()
            if len(rest) == 2 and method == "GET":
                return Reply(200, forge.gitlab_merge_request(pull))
            if len(rest) == 3 and rest[2] == "approvals" and method == "GET":
                return Reply(200, forge.gitlab_approvals(pull, login))
            if len(rest) == 3 and rest[2] == "notes":
                if method == "GET":
                    notes = forge.live_comments(pull["number"])
                    key = "updated_at" if query.get("order_by") == "updated_at" else "created_at"
                    descending = query.get("sort", "desc") != "asc"
                    notes = sorted(notes, key=lambda note: (note[key], note["id"]), reverse=descending)
                    return self.gitlab_page([forge.gitlab_note(note) for note in notes], context)
                if method == "POST":
                    text, problem = self.gitlab_note_body(body)
                    if problem:
                        return problem
                    return Reply(201, forge.gitlab_note(forge.add_comment(pull["number"], login, text)))
                return self.not_found()
            if len(rest) == 4 and rest[2] == "notes":
                note = forge.comments.get(integer(rest[3], -1))
                if not note or note["deleted"] or note["number"] != pull["number"]:
                    return self.not_found("Note")
                if method == "GET":
                    return Reply(200, forge.gitlab_note(note))
                if method not in ("PUT", "DELETE"):
                    return self.not_found()
                if note["author"].lower() != login.lower():
                    return self.forbidden()
                if method == "DELETE":
                    note["deleted"] = True
                    return Reply(204)
                text, problem = self.gitlab_note_body(body)
                if problem:
                    return problem
                note["body"] = text
                note["updated_at"] = now()
                return Reply(200, forge.gitlab_note(note))
            return self.not_found()
        if len(rest) == 2 and rest[0] == "statuses" and method == "POST":
            return self.gitlab_status(rest[1], body, login)
        if len(rest) == 4 and rest[0] == "repository" and rest[1] == "commits" and rest[3] == "merge_requests" and method == "GET":
            sha = rest[2]
            pulls = [forge.gitlab_merge_request(pull) for pull in forge.pulls.values() if sha in (pull["head_sha"], pull["merge_commit_sha"])]
            return Reply(200, pulls)
        if len(rest) == 4 and rest[0] == "repository" and rest[1] == "commits" and rest[3] == "statuses" and method == "GET":
            jobs = [forge.gitlab_status(job) for job in forge.status_jobs if job["sha"] == rest[2]]
            return self.gitlab_page(jobs, context)
        return self.not_found()

    def gitlab_note_body(self, body):
        text = body.get("body") if isinstance(body, dict) else None
        if text is None:
            return None, Reply(400, {"error": "body is missing"})
        if not isinstance(text, str) or not text.strip():
            return None, Reply(400, {"error": "body is empty"})
        if len(text) > GITLAB_NOTE_LIMIT:
            return None, Reply(400, {"message": {"note": [f"is too long (maximum is {GITLAB_NOTE_LIMIT} characters)"]}})
        return text, None

    def gitlab_status(self, sha, body, login):
        """GitLab keeps one job per (sha, name, ref, user) while it is pending or running and moves
        it along its state machine, answering 400 to a transition it does not allow (pending
        again while pending or running, running again while running); a finished one is
        replaced by a new job."""
        forge = self.forge
        body = body if isinstance(body, dict) else {}
        state = body.get("state")
        if state is None:
            return Reply(400, {"error": "state is missing"})
        if state not in ("pending", "running", "success", "failed", "canceled"):
            return Reply(400, {"error": "state does not have a valid value"})
        name = body.get("name") or body.get("context") or "default"
        ref = body.get("ref") or next((pull["head_ref"] for pull in forge.pulls.values() if pull["head_sha"] == sha), "main")
        moment = now()
        job = next((job for job in reversed(forge.status_jobs)
                    if (job["sha"], job["name"], job["ref"], job["creator"].lower()) == (sha, name, ref, login.lower())
                    and job["state"] in ("pending", "running")), None)
        if job and state == "pending":
            return Reply(400, {"message": f'Cannot transition status via :enqueue from :{job["state"]} (Reason(s): Status cannot transition via "enqueue")'})
        if job and state == "running" and job["state"] == "running":
            return Reply(400, {"message": 'Cannot transition status via :run from :running (Reason(s): Status cannot transition via "run")'})
        if not job:
            pipeline = forge.pipelines.setdefault((sha, ref), forge.next_id("pipeline"))
            job = {"id": forge.next_id("status"), "sha": sha, "ref": ref, "name": name, "creator": login, "created_at": moment,
                   "started_at": None, "finished_at": None, "pipeline_id": pipeline, "state": "pending",
                   "description": None, "target_url": None}
            forge.status_jobs.append(job)
        job["state"] = state
        if state == "running" and not job["started_at"]:
            job["started_at"] = moment
        if state in ("success", "failed", "canceled"):
            job["finished_at"] = moment
            job["started_at"] = job["started_at"] or moment
        if "description" in body:
            job["description"] = body.get("description")
        if "target_url" in body:
            job["target_url"] = body.get("target_url")
        shaped = forge.gitlab_status(job)
        forge.statuses.setdefault(sha, []).append(shaped)
        return Reply(201, shaped)


class ForgeHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_PATCH(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def dispatch(self):
        raw_path, _, query_string = self.path.partition("?")
        query = {key: values[-1] for key, values in urllib.parse.parse_qs(query_string, keep_blank_values=True).items()}
        payload = self.read_body()
        segments = [urllib.parse.unquote(segment) for segment in raw_path.split("/")[1:]]
        while segments and segments[-1] == "":
            segments.pop()
        try:
            if segments[:1] == ["_forge"]:
                reply = self.control(segments[1:], payload)
            else:
                reply = self.api(raw_path, segments, query, payload)
        except Exception as error:  # noqa: BLE001 - a bug here answers 500 and says what
            reply = Reply(500, {"message": f"forge-test-server: {type(error).__name__}: {error}"})
        self.answer(reply)

    def api(self, raw_path, segments, query, payload):
        body = None
        invalid = False
        if payload.strip():
            try:
                body = json.loads(payload)
            except ValueError:
                invalid = True
        with FORGE.lock:
            login, presented = API_HANDLER.authenticate(self.headers)
            if invalid and login:
                reply = {"github": Reply(400, {"message": "Problems parsing JSON", "documentation_url": GITHUB_DOCS, "status": "400"}),
                         "gitea": Reply(422, {"message": "invalid JSON body", "url": f"{FORGE.base}/api/swagger"}),
                         "gitlab": Reply(400, {"error": "body is invalid"})}[FORGE.flavour]
            else:
                reply = API_HANDLER.handle(self.command, segments, query, body if isinstance(body, dict) else ({} if body is None else body),
                                           login, presented, raw_path)
            FORGE.requests.append({"method": self.command, "path": raw_path, "query": query, "user": login,
                                   "body": body, "status": reply.status})
        if FORGE.flavour == "github":
            reply.headers += [("X-GitHub-Api-Version-Selected", "2022-11-28"), ("X-GitHub-Media-Type", "github.v3; format=json"),
                              ("X-RateLimit-Limit", "5000"), ("X-RateLimit-Remaining", "4999"), ("X-RateLimit-Resource", "core")]
        return reply

    def control(self, parts, payload):
        method = self.command
        try:
            body = json.loads(payload) if payload.strip() else {}
        except ValueError:
            return Reply(400, {"error": "the body is not JSON"})
        if not isinstance(body, dict):
            return Reply(400, {"error": "the body must be a JSON object"})
        hook = None
        try:
            with FORGE.lock:
                reply, hook = self.control_locked(method, parts, body)
        except Problem as problem:
            return Reply(problem.status, {"error": problem.message})
        if hook is not None:
            event, hook_payload, event_type = hook
            reply.body["delivery"] = FORGE.deliver(event, hook_payload, event_type)
        elif isinstance(reply.body, dict) and method == "POST" and parts[:1] == ["pulls"]:
            reply.body["delivery"] = None
        return reply

    def control_locked(self, method, parts, body):
        def number(text):
            value = integer(text, None)
            if value is None:
                raise Problem(404, f"no pull request {text}")
            return value

        def done(result):
            status, answer, hook = result
            return Reply(status, answer), hook

        if parts == ["users"] and method == "POST":
            return done(FORGE.control_create_user(body))
        if parts == ["webhook"] and method == "POST":
            FORGE.webhook_url = text_field(body, "url", required=True)
            return Reply(200, {"url": FORGE.webhook_url}), None
        if parts == ["pulls"] and method == "POST":
            return done(FORGE.control_open(body))
        if len(parts) == 2 and parts[0] == "pulls" and method == "GET":
            return Reply(200, {"pull": FORGE.pull_json(FORGE.pull_or_404(number(parts[1])))}), None
        if len(parts) == 3 and parts[0] == "pulls":
            n = number(parts[1])
            action = parts[2]
            if method == "POST":
                handler = {"push": FORGE.control_push, "reviews": FORGE.control_review, "comments": FORGE.control_comment,
                           "merge": FORGE.control_merge, "close": FORGE.control_close, "reopen": FORGE.control_reopen}.get(action)
                if handler:
                    return done(handler(n, body))
            if method == "GET" and action == "comments":
                FORGE.pull_or_404(n)
                return Reply(200, [FORGE.comment_json(comment) for comment in FORGE.live_comments(n)]), None
            if method == "GET" and action == "reviews":
                FORGE.pull_or_404(n)
                return Reply(200, [FORGE.review_json(review) for review in FORGE.reviews if review["number"] == n]), None
        if parts == ["teams"] and method == "POST":
            return done(FORGE.control_team(body))
        if len(parts) == 2 and parts[0] == "statuses" and method == "GET":
            return Reply(200, list(FORGE.statuses.get(parts[1], []))), None
        if parts == ["requests"]:
            if method == "GET":
                return Reply(200, list(FORGE.requests)), None
            if method == "DELETE":
                FORGE.requests.clear()
                return Reply(204), None
        if parts == ["deliveries"]:
            if method == "GET":
                return Reply(200, list(FORGE.deliveries)), None
            if method == "DELETE":
                FORGE.deliveries.clear()
                return Reply(204), None
        raise Problem(404, f"no control endpoint {method} /_forge/{'/'.join(parts)}")

    def answer(self, reply):
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        if reply.status == 204:
            self.end_headers()
            return
        if reply.raw is not None:
            data = reply.raw
        else:
            data = json.dumps(reply.body, ensure_ascii=False).encode()
            self.send_header("Content-Type", JSON_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *arguments):
        pass


def parse_arguments():
    parser = argparse.ArgumentParser(description="A forge test server imitating GitHub, Gitea or GitLab.")
    parser.add_argument("--flavour", required=True, choices=FLAVOURS)
    parser.add_argument("--repository", required=True, help="OWNER/NAME")
    parser.add_argument("--webhook-url")
    parser.add_argument("--webhook-secret", default="")
    parser.add_argument("--clone-url", help="the repository's clone URL in payloads (default: this server's /OWNER/NAME.git)")
    parser.add_argument("--user", action="append", metavar="LOGIN=TOKEN", help="a user and their API token; repeatable")
    options = parser.parse_args()
    owner, slash, name = options.repository.partition("/")
    if not owner or not slash or not name:
        parser.error("--repository must be OWNER/NAME")
    return options


FORGE = Forge(parse_arguments())
API_HANDLER = API(FORGE)
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ForgeHandler)
server.daemon_threads = True
FORGE.set_base(server.server_address[1])
print(f"PORT={server.server_address[1]}", flush=True)
print("READY", flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:
    sys.exit(0)
