"""docker-compose.yml and the Dockerfile give each service what its code needs.

Docker may not run where the tests do, so these read the files and the services' code
instead: every environment variable a service must be given is set for it in the compose
file, and every program the code runs is installed in the image. A new `os.environ.get`
or `shutil.which` in a service fails here until the deployment provides it.
"""

from __future__ import annotations

import ast
import shlex
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from platen.localstack.services import MODULES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy/docker/Dockerfile"
# The Debian package of each program the services run: a program missing here fails
# test_every_program_the_services_run_is_in_the_image until it is added (and installed).
PACKAGES = {"gs": "ghostscript"}
# A default naming this host is right for `make run`, wrong in a container.
LOCAL_HOSTS = ("127.0.0.1", "localhost")


def service_dir(name: str) -> Path:
    return ROOT / "services" / name


def source_dirs(name: str) -> list[Path]:
    """The service's own code and the workspace libraries it depends on."""
    project = tomllib.loads((service_dir(name) / "pyproject.toml").read_text())
    libs = [
        ROOT / "libs" / dep.removeprefix("platen-")
        for dep in project["project"]["dependencies"]
        if dep.startswith("platen-") and (ROOT / "libs" / dep.removeprefix("platen-")).is_dir()
    ]
    return [service_dir(name) / "src", *(lib / "src" for lib in libs)]


def modules(name: str) -> list[ast.Module]:
    return [
        ast.parse(path.read_text(), str(path))
        for folder in source_dirs(name)
        for path in sorted(folder.rglob("*.py"))
    ]


def constants(tree: ast.Module) -> dict[str, str]:
    """Module-level `NAME = "text"` assignments."""
    found = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = node.value.value
    return found


def text_of(node: ast.AST, names: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return names.get(node.id)
    return None


def dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def required_env(name: str) -> set[str]:
    """Variables the service reads with no default, or with a default naming this host."""
    needed = set()
    for tree in modules(name):
        names = constants(tree)
        for node in ast.walk(tree):
            is_item = isinstance(node, ast.Subscript) and dotted(node.value) == "os.environ"
            if is_item and (key := text_of(node.slice, names)):
                needed.add(key)
            if not (
                isinstance(node, ast.Call)
                and dotted(node.func) in ("os.environ.get", "os.getenv")
                and node.args
            ):
                continue
            key = text_of(node.args[0], names)
            default = text_of(node.args[1], names) if len(node.args) > 1 else None
            if key and (len(node.args) == 1 or any(h in (default or "") for h in LOCAL_HOSTS)):
                needed.add(key)
    return needed


def programs(name: str) -> set[str]:
    """Programs the service looks up or runs by name."""
    found = set()
    for tree in modules(name):
        names = constants(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = dotted(node.func)
            first = node.args[0]
            if func == "shutil.which":
                found.add(text_of(first, names))
            elif func.startswith("subprocess.") and isinstance(first, ast.List) and first.elts:
                found.add(text_of(first.elts[0], names))
    return {p for p in found if p}


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def installed_packages() -> set[str]:
    """What the Dockerfile's `apt-get install` lines install."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    packages = set()
    for line in text.splitlines():
        if not line.startswith("RUN"):
            continue
        for command in line.removeprefix("RUN").split("&&"):
            words = shlex.split(command)
            if words[:2] == ["apt-get", "install"]:
                packages |= {w for w in words[2:] if not w.startswith("-")}
    return packages


def depends_on(services: dict, name: str) -> set[str]:
    """Every compose service `name` waits for, directly or through others."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        for dep in services[todo.pop()].get("depends_on", {}):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def console_script(name: str) -> str:
    """The command that starts the service (its package's console script)."""
    project = tomllib.loads((service_dir(name) / "pyproject.toml").read_text())
    [script] = [
        cmd
        for cmd, target in project["project"]["scripts"].items()
        if target.split(":")[0] == MODULES[name]
    ]
    return script


def test_the_scans_find_what_is_known_to_be_there():
    # If these found nothing, the tests below would pass over any deployment.
    assert "gs" in programs("job-capture")
    assert {"PLATEN_AMQP_URL", "PLATEN_DATABASE_URL"} <= required_env("pricing")
    assert "PLATEN_BROKER_MANAGEMENT_URL" in required_env("notification")


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_service_runs_from_the_image_with_its_command(name):
    service = compose()["services"][name]
    assert service["build"]["dockerfile"] == str(DOCKERFILE.relative_to(ROOT))
    assert service["command"] == console_script(name)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_variable_a_service_needs_is_set_for_it(name):
    environment = compose()["services"][name].get("environment", {})
    missing = required_env(name) - set(environment)
    assert not missing, f"docker-compose.yml does not set {sorted(missing)} for {name}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_server_a_service_is_pointed_at_is_in_the_compose_file(name):
    services = compose()["services"]
    for key, value in services[name].get("environment", {}).items():
        host = urlsplit(str(value)).hostname if "://" in str(value) else None
        if host is None:
            continue
        assert host in services, f"{name}: {key} names {host}, not a compose service"
        assert host in depends_on(services, name), f"{name} starts before {host}"
        if key == "PLATEN_BROKER_MANAGEMENT_URL":
            assert "management" in services[host]["image"], "the broker has no management API"


def test_every_program_the_services_run_is_in_the_image():
    needed = set().union(*(programs(name) for name in MODULES))
    unknown = needed - set(PACKAGES)
    assert not unknown, f"add the Debian packages of {sorted(unknown)} to PACKAGES"
    missing = {PACKAGES[p] for p in needed} - installed_packages()
    assert not missing, f"deploy/docker/Dockerfile does not install {sorted(missing)}"
