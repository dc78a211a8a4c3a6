"""Seeded generator of realistic GitLab logs (production_json, api_json, Gitaly, Sidekiq) of a given size.

Field shapes follow GitLab's log documentation (see shared/reference/gitlab-logs.md); durations are
log-normal per key with a Pareto tail, and keys are many and Zipf-distributed, as in real instances.
"""

import argparse
import itertools
import random
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

START = datetime(2024, 5, 1, tzinfo=UTC)
LOG_TYPES = ("production_json", "api_json", "gitaly", "sidekiq")

CONTROLLERS = [
    "Projects::IssuesController", "Projects::MergeRequestsController", "Projects::BlobController",
    "Projects::TreeController", "Projects::CommitController", "Projects::PipelinesController",
    "Projects::JobsController", "Groups::EpicsController", "DashboardController", "SearchController",
    "Projects::RawController", "Projects::CompareController", "Projects::BranchesController",
    "Projects::TagsController", "Projects::WikisController", "Admin::UsersController", "SessionsController",
    "Projects::NotesController", "Projects::LabelsController", "Projects::MilestonesController",
    "Repositories::GitHttpController", "Projects::GraphsController", "Projects::ReleasesController",
    "Projects::ForksController", "Projects::SnippetsController", "Groups::GroupMembersController",
    "Projects::Settings::CiCdController", "Projects::EnvironmentsController", "GraphqlController",
    "Projects::ArtifactsController", "Profiles::KeysController", "HealthController",
]  # fmt: skip
ACTIONS = ["show", "index", "create", "update", "destroy", "diffs", "discussions", "raw", "edit", "new",
           "git_upload_pack", "info_refs", "execute", "search", "download", "commits"]  # fmt: skip
API_RESOURCES = ["projects", "groups", "users", "runners", "jobs", "merge_requests", "issues", "pipelines",
                 "repository/files", "repository/commits", "repository/tree", "packages", "deployments",
                 "environments", "registry/repositories", "members", "hooks", "variables", "releases"]  # fmt: skip
API_METHODS = ["GET", "GET", "GET", "POST", "PUT", "DELETE"]
GITALY_METHODS = {
    "gitaly.CommitService": ["FindCommit", "ListCommits", "CommitIsAncestor", "LastCommitForPath",
                             "ListLastCommitsForTree", "GetTreeEntries", "TreeEntry", "CountCommits",
                             "FindCommits", "CommitStats", "RawBlame", "GetCommitSignatures"],
    "gitaly.RefService": ["FindDefaultBranchName", "FindAllBranches", "FindBranch", "RefExists",
                          "FindAllTags", "ListRefs", "FindLocalBranches", "DeleteRefs"],
    "gitaly.SmartHTTPService": ["PostUploadPackWithSidechannel", "InfoRefsUploadPack", "PostReceivePack",
                                "InfoRefsReceivePack"],
    "gitaly.RepositoryService": ["RepositoryExists", "RepositorySize", "GetArchive", "FindMergeBase",
                                 "OptimizeRepository", "CreateRepository", "Fsck", "WriteRef"],
    "gitaly.DiffService": ["CommitDiff", "CommitDelta", "DiffStats", "FindChangedPaths", "RawDiff"],
    "gitaly.OperationService": ["UserCommitFiles", "UserMergeBranch", "UserCreateBranch", "UserDeleteBranch"],
    "gitaly.BlobService": ["GetBlob", "GetBlobs", "ListBlobs"],
}  # fmt: skip
GRPC_FAIL_CODES = ["Canceled", "NotFound", "Internal", "DeadlineExceeded", "ResourceExhausted", "Unavailable"]
WORKER_PREFIXES = ["PostReceive", "Ci::BuildFinished", "Pipeline", "MergeRequests::", "Projects::", "Issues::",
                   "Namespaces::", "Packages::", "Users::", "Chaos::", "Geo::", "Ci::Archive", "Repository",
                   "Deployments::", "Todos::", "Web::Hook", "Notes::", "Search::Elastic", "Cleanup::"]  # fmt: skip
WORKER_SUFFIXES = ["Worker", "SyncWorker", "CleanupWorker", "ScheduleWorker", "RefreshWorker", "UpdateWorker",
                   "ExpireWorker"]  # fmt: skip
ERROR_CLASSES = ["ActiveRecord::QueryCanceled", "Gitlab::Git::CommandError", "GRPC::DeadlineExceeded",
                 "Rack::Timeout::RequestTimeoutException", "ActiveRecord::StatementInvalid"]  # fmt: skip


class KeyModel:
    """One key's duration distribution: log-normal body, occasional Pareto tail, and component shares."""

    def __init__(self, rng: random.Random, median_ms: float) -> None:
        self.mu = median_ms
        self.sigma = rng.uniform(0.4, 1.2)
        self.tail = rng.uniform(0.002, 0.02)
        self.fail = rng.choice([0.0, 0.0, 0.001, 0.01, 0.05])
        self.db_share = rng.uniform(0.05, 0.5)
        self.gitaly_share = rng.uniform(0.0, 0.4)

    def duration_ms(self, rng: random.Random) -> float:
        d = rng.lognormvariate(0, self.sigma) * self.mu
        if rng.random() < self.tail:
            d *= rng.paretovariate(1.2) * 5
        return min(d, 600_000.0)


def _zipf_keys(rng: random.Random, keys: list[Any]) -> Callable[[], Any]:
    cum_weights = list(itertools.accumulate(1 / (i + 1) ** 1.1 for i in range(len(keys))))
    shuffled = keys[:]
    rng.shuffle(shuffled)
    return lambda: rng.choices(shuffled, cum_weights=cum_weights)[0]


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


class Generator:
    """Lines of one log type; `lines()` is infinite and deterministic for a seed."""

    def __init__(self, log_type: str, seed: int, rate_per_s: float = 200.0) -> None:
        self.rng = random.Random(seed)
        self.log_type = log_type
        self.rate = rate_per_s
        self.t = START
        rng = self.rng
        if log_type == "production_json":
            keys: list[Any] = [(c, a) for c in CONTROLLERS for a in ACTIONS if rng.random() < 0.6]
        elif log_type == "api_json":
            keys = [
                (m, f"/api/:version/{r}" + s)
                for r in API_RESOURCES
                for s in ("", "/:id", "/:id/" + rng.choice(API_RESOURCES).split("/")[0])
                for m in set(rng.sample(API_METHODS, 2))
            ]
        elif log_type == "gitaly":
            keys = [(s, m) for s, ms in GITALY_METHODS.items() for m in ms]
        else:
            keys = [p + s for p in WORKER_PREFIXES for s in WORKER_SUFFIXES if rng.random() < 0.7]
        self.models = {k: KeyModel(rng, rng.lognormvariate(3.5, 1.2)) for k in keys}
        self.pick = _zipf_keys(rng, keys)
        self.users = [f"user{i}" for i in range(2000)]
        self.projects = [f"group{i % 97}/project{i}" for i in range(3000)]
        self.pick_user = _zipf_keys(rng, self.users)
        self.pick_project = _zipf_keys(rng, self.projects)

    def _tick(self) -> datetime:
        self.t += timedelta(seconds=self.rng.expovariate(self.rate))
        return self.t

    def lines(self) -> Iterator[bytes]:
        make = {
            "production_json": self._rails,
            "api_json": self._api,
            "gitaly": self._gitaly,
            "sidekiq": self._sidekiq,
        }[self.log_type]
        while True:
            yield from make()

    def _common(self, model: KeyModel, d: float) -> dict[str, Any]:
        rng = self.rng
        return {
            "queue_duration_s": round(rng.expovariate(200), 6),
            "gitaly_calls": rng.randint(0, 40),
            "gitaly_duration_s": round(d * model.gitaly_share / 1000, 6),
            "redis_calls": rng.randint(0, 200),
            "redis_duration_s": round(d * 0.02 / 1000, 6),
            "redis_read_bytes": rng.randint(0, 2_000_000),
            "redis_write_bytes": rng.randint(0, 10_000),
            "redis_cache_calls": rng.randint(0, 100),
            "redis_cache_duration_s": round(d * 0.01 / 1000, 6),
            "redis_shared_state_calls": rng.randint(0, 20),
            "redis_shared_state_duration_s": round(d * 0.005 / 1000, 6),
            "db_count": rng.randint(0, 150),
            "db_write_count": rng.randint(0, 10),
            "db_cached_count": rng.randint(0, 60),
            "db_replica_count": 0,
            "db_primary_count": rng.randint(0, 150),
            "db_main_count": rng.randint(0, 150),
            "db_primary_duration_s": round(d * model.db_share / 1000, 6),
            "db_main_duration_s": round(d * model.db_share / 1000, 6),
            "cpu_s": round(d * rng.uniform(0.2, 0.9) / 1000, 6),
            "mem_objects": rng.randint(1000, 2_000_000),
            "mem_bytes": rng.randint(100_000, 200_000_000),
            "mem_mallocs": rng.randint(100, 500_000),
            "mem_total_bytes": rng.randint(1_000_000, 300_000_000),
            "pid": rng.randint(100, 60000),
            "worker_id": f"puma_{rng.randint(0, 15)}",
            "rate_limiting_gates": [],
            "correlation_id": f"{rng.getrandbits(96):024x}",
            "db_duration_s": round(d * model.db_share / 1000, 6),
            "view_duration_s": round(d * 0.3 / 1000, 6),
            "duration_s": round(d / 1000, 6),
        }

    def _status(self, model: KeyModel) -> int:
        r = self.rng.random()
        return 500 if r < model.fail else (404 if r < model.fail + 0.02 else (302 if r < 0.1 else 200))

    def _rails(self) -> Iterator[bytes]:
        rng = self.rng
        key = self.pick()
        model = self.models[key]
        d = model.duration_ms(rng)
        user, project = self.pick_user(), self.pick_project()
        status = self._status(model)
        line = {
            "method": rng.choice(["GET", "GET", "GET", "POST"]),
            "path": f"/{project}/-/{key[1]}/{rng.randint(1, 99999)}",
            "format": "html",
            "controller": key[0],
            "action": key[1],
            "status": status,
            "time": _iso(self._tick()),
            "params": [{"key": "namespace_id", "value": project.split("/")[0]}, {"key": "id", "value": "1"}],
            "remote_ip": f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            "user_id": int(user[4:]),
            "username": user,
            "ua": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
            "request_urgency": "default",
            "target_duration_s": 1,
            "meta.user": user,
            "meta.project": project,
            "meta.root_namespace": project.split("/")[0],
            "meta.client_id": f"user/{user[4:]}",
            "meta.caller_id": f"{key[0]}#{key[1]}",
            "meta.feature_category": "team_planning",
            **self._common(model, d),
        }
        if status >= 500:
            line["exception.class"] = rng.choice(ERROR_CLASSES)
            line["exception.message"] = "canceling statement due to statement timeout"
        yield orjson.dumps(line)

    def _api(self) -> Iterator[bytes]:
        rng = self.rng
        key = self.pick()
        model = self.models[key]
        d = model.duration_ms(rng)
        user, project = self.pick_user(), self.pick_project()
        line = {
            "time": _iso(self._tick()),
            "severity": "INFO",
            "status": self._status(model),
            "method": key[0],
            "path": key[1].replace(":version", "v4").replace(":id", str(rng.randint(1, 9999))),
            "params": [{"key": "private_token", "value": "[FILTERED]"}],
            "host": "gitlab.example.com",
            "remote_ip": f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            "ua": "gitlab-runner 16.6.0 (16-6-stable; go1.20.10; linux/amd64)",
            "route": key[1],
            "user_id": int(user[4:]),
            "username": user,
            "meta.user": user,
            "meta.project": project,
            "meta.caller_id": f"{key[0]} {key[1]}",
            "meta.remote_ip": "10.0.0.1",
            "meta.feature_category": "continuous_integration",
            "meta.client_id": f"user/{user[4:]}",
            "content_length": "61",
            "request_urgency": "low",
            "target_duration_s": 5,
            **self._common(model, d),
        }
        yield orjson.dumps(line)

    def _gitaly(self) -> Iterator[bytes]:
        rng = self.rng
        service, method = self.pick()
        model = self.models[(service, method)]
        d = model.duration_ms(rng)
        t = self._tick()
        code = rng.choice(GRPC_FAIL_CODES) if rng.random() < model.fail else "OK"
        project = self.pick_project()
        line: dict[str, Any] = {
            "correlation_id": f"{rng.getrandbits(96):024x}",
            "grpc.code": code,
            "grpc.meta.auth_version": "v2",
            "grpc.meta.client_name": rng.choice(["gitlab-web", "gitlab-workhorse", "gitlab-sidekiq"]),
            "grpc.meta.deadline_type": "regular",
            "grpc.meta.method_operation": "accessor",
            "grpc.meta.method_scope": "repository",
            "grpc.meta.method_type": "unary",
            "grpc.method": method,
            "grpc.request.deadline": _iso(t + timedelta(seconds=55)),
            "grpc.request.fullMethod": f"/{service}/{method}",
            "grpc.request.glProjectPath": project,
            "grpc.request.glRepository": f"project-{rng.randint(1, 3000)}",
            "grpc.request.payload_bytes": rng.randint(50, 5000),
            "grpc.request.repoPath": f"@hashed/{rng.getrandbits(128):032x}.git",
            "grpc.request.repoStorage": "default",
            "grpc.request.topLevelGroup": "@hashed",
            "grpc.response.payload_bytes": rng.randint(10, 500_000),
            "grpc.service": service,
            "grpc.start_time": _iso(t),
            "grpc.time_ms": round(d, 3),
            "level": "info" if code == "OK" else "warning",
            "msg": f"finished unary call with code {code}",
            "peer.address": "@",
            "pid": rng.randint(100, 60000),
            "remote_ip": f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            "span.kind": "server",
            "system": "grpc",
            "time": _iso(t),
            "user_id": f"user-{rng.randint(1, 2000)}",
            "username": self.pick_user(),
        }
        if rng.random() < 0.3:
            line.update(
                {
                    "command.count": rng.randint(1, 4),
                    "command.cpu_time_ms": round(d * 0.5),
                    "command.real_time_ms": round(d * 0.8),
                    "command.maxrss": rng.randint(10_000, 500_000),
                    "command.inblock": 0,
                    "command.oublock": rng.randint(0, 100),
                    "command.minflt": rng.randint(100, 10_000),
                    "command.majflt": 0,
                }
            )
        if code != "OK":
            line["error"] = f"rpc error: code = {code} desc = something went wrong"
        yield orjson.dumps(line)
        if rng.random() < 0.05:
            yield orjson.dumps(
                {"level": "info", "msg": "finished HTTP request", "duration_ms": round(d), "time": _iso(t)}
            )

    def _sidekiq(self) -> Iterator[bytes]:
        rng = self.rng
        cls = self.pick()
        model = self.models[cls]
        d = model.duration_ms(rng)
        t = self._tick()
        jid = f"{rng.getrandbits(96):024x}"
        base = {
            "severity": "INFO",
            "time": _iso(t),
            "retry": 3,
            "queue": "default",
            "version": 0,
            "queue_namespace": "cronjob",
            "args": ["[FILTERED]"],
            "class": cls,
            "jid": jid,
            "created_at": _iso(t - timedelta(seconds=1)),
            "meta.user": self.pick_user(),
            "meta.project": self.pick_project(),
            "correlation_id": f"{rng.getrandbits(96):024x}",
            "worker_data_consistency": "always",
            "idempotency_key": f"resque:gitlab:duplicate:default:{rng.getrandbits(128):032x}",
            "enqueued_at": _iso(t - timedelta(seconds=0.5)),
            "job_size_bytes": rng.randint(2, 200),
            "pid": rng.randint(100, 60000),
            "scheduling_latency_s": round(rng.expovariate(20), 6),
        }
        yield orjson.dumps({**base, "message": f"{cls} JID-{jid}: start", "job_status": "start"})
        failed = rng.random() < model.fail
        done = {
            **base,
            "time": _iso(t + timedelta(milliseconds=d)),
            "message": f"{cls} JID-{jid}: {'fail' if failed else 'done'}: {d / 1000:.6f} sec",
            "job_status": "fail" if failed else "done",
            **self._common(model, d),
            "completed_at": _iso(t + timedelta(milliseconds=d)),
        }
        if failed:
            done["error_class"] = rng.choice(ERROR_CLASSES)
            done["error_message"] = "something went wrong"
        yield orjson.dumps(done)


def write(path: Path, log_type: str, size_bytes: int, seed: int = 42) -> Path:
    """Write about `size_bytes` of `log_type` lines to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    buf: list[bytes] = []
    with path.open("wb") as out:
        for line in Generator(log_type, seed).lines():
            buf.append(line)
            written += len(line) + 1
            if len(buf) >= 10_000:
                out.write(b"\n".join(buf) + b"\n")
                buf.clear()
            if written >= size_bytes:
                break
        if buf:
            out.write(b"\n".join(buf) + b"\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("log_type", choices=LOG_TYPES)
    parser.add_argument("output", type=Path)
    parser.add_argument("--size-mb", type=float, default=200)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    write(args.output, args.log_type, int(args.size_mb * 1e6), args.seed)
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
