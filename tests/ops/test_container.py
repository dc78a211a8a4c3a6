"""The container image recipe, checked without a container engine (none on these machines): what it copies exists,
every workspace member's dependencies are in the cached layer, and it runs as the user the Helm chart expects."""

import glob
import json
import shlex
import tomllib

from outrider.devstack import ROOT

DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"


def instructions() -> list[tuple[str, list[str]]]:
    """(INSTRUCTION, arguments) per logical line, continuation lines joined."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split()[0].upper(), shlex.split(line, posix=False)[1:]) for line in lines]


def test_every_copied_path_exists_and_every_workspace_member_is_in_the_dependency_layer() -> None:
    copies = [args for op, args in instructions() if op == "COPY" and not args[0].startswith("--from")]
    sources = [src for args in copies for src in args[:-1]]
    missing = [src for src in sources if not glob.glob(str(ROOT / src))]
    assert missing == []
    members = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]["members"]
    manifests = {
        str(p.relative_to(ROOT)) for pattern in members for p in ROOT.glob(pattern) if (p / "pyproject.toml").exists()
    }
    assert manifests, "the workspace has members"
    assert {f"{m}/pyproject.toml" for m in manifests} <= set(sources), "a member's pyproject.toml is not copied early"


def test_the_image_runs_as_the_charts_non_root_user_and_ignores_local_state() -> None:
    ops = instructions()
    (user,) = [args[0] for op, args in ops if op == "USER"]
    # One target per service, each starting its own module and installing only its own package.
    targets = {args[-1]: i for i, (op, args) in enumerate(ops) if op == "FROM" and len(args) == 3}
    for service in ("ingest", "analyzer", "tracker", "notifier"):
        op, args = ops[targets[service] + 2]
        assert (op, json.loads(" ".join(args))) == ("CMD", ["python", "-m", f"outrider_{service}"])
        assert (
            "RUN",
            ["uv", "sync", "--locked", "--no-dev", "--no-editable", "--package", f"outrider-{service}"],
        ) in ops
    assert list(targets)[-1] == "all"
    templates = (ROOT / "deploy" / "helm" / "outrider" / "templates" / "services.yaml").read_text()
    assert f"fsGroup: {user}" in templates
    last, args = ops[-1]
    assert last == "CMD"
    assert json.loads(" ".join(args))[:2] == ["python", "-m"]  # exec form: no shell in between
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".cache", ".outrider", "native/logparse/target"} <= set(ignored)
