"""deploy/containers (compose.yaml, the images, the init job) gives each service what its
code needs, and publishes nothing else.

These read the files and the services' code (tests/containers runs the stack itself):
every environment variable a service must be given is set for it by the init job or the
compose file, and every program the code runs is installed in the image. A new
`os.environ.get` or `shutil.which` in a service fails here until the deployment provides it.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import shlex
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from platen.broker_setup.broker_limits import MAX_MESSAGE_BYTES
from platen.broker_setup.installation import Installed
from platen.localstack.services import MODULES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy/containers/compose.yaml"
DOCKERFILE = ROOT / "deploy/containers/platen/Containerfile"
INIT = ROOT / "deploy/containers/init.py"
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
    return [parsed(path) for folder in source_dirs(name) for path in sorted(folder.rglob("*.py"))]


@functools.cache
def parsed(path: Path) -> ast.Module:
    # The libraries are scanned for every service and every test here: parse each file once
    # per run (the scans only read the trees).
    return ast.parse(path.read_text(), str(path))


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


def init_job():
    """deploy/containers/init.py, the compose stack's installer, as a module."""
    spec = importlib.util.spec_from_file_location("platen_containers_init", INIT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def given(name: str) -> dict[str, str]:
    """Every variable the service's container gets: from the init job's file for it, and
    from the compose file."""
    installed = Installed(
        urls={n: f"amqps://u:p@{init_job().BROKER_HOST}:5671/" for n in (*MODULES, "admin")},
        identity_manager_url=f"http://m:p@{init_job().BROKER_HOST}:15672",
        presence_monitor_url=f"http://r:p@{init_job().BROKER_HOST}:15672",
    )
    database = {n: f"postgresql://u:p@{init_job().DB_HOST}:5432/platen" for n in MODULES}
    return {
        **init_job().settings(name, installed, database),
        **compose()["services"][name].get("environment", {}),
    }


def test_the_scans_find_what_is_known_to_be_there():
    # If these found nothing, the tests below would pass over any deployment.
    assert "gs" in programs("job-capture")
    assert {"PLATEN_AMQP_URL", "PLATEN_DATABASE_URL"} <= required_env("pricing")
    assert "PLATEN_BROKER_MANAGEMENT_URL" in required_env("notification")


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_service_runs_from_the_image_with_its_command(name):
    service = compose()["services"][name]
    assert service["image"] == "localhost/platen"
    assert service["command"] == ["python", "-m", MODULES[name]]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_variable_a_service_needs_is_set_for_it(name):
    missing = required_env(name) - set(given(name))
    assert not missing, f"the init job does not set {sorted(missing)} for {name}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_server_a_service_is_pointed_at_is_in_the_compose_file(name):
    services = compose()["services"]
    for key, value in given(name).items():
        host = urlsplit(str(value)).hostname if "://" in str(value) else None
        if host is None:
            continue
        assert host in services, f"{name}: {key} names {host}, not a compose service"
        assert host in depends_on(services, name), f"{name} starts before {host}"


def test_only_amqps_and_ipp_are_published():
    published = {
        name: service["ports"]
        for name, service in compose()["services"].items()
        if "ports" in service
    }
    assert published == {
        "rabbitmq": ["${PLATEN_AMQPS_PORT:-5671}:5671"],
        "print-server": ["${PLATEN_IPP_PORT:-631}:631"],
    }
    conf = (ROOT / "deploy/containers/rabbitmq/rabbitmq.conf").read_text()
    assert "listeners.tcp = none" in conf.splitlines()


def test_every_long_running_service_has_a_health_check_and_a_restart_policy():
    for name, service in compose()["services"].items():
        if service.get("restart") == "no" or "profiles" in service:
            continue  # the init steps run once; ctl is run by hand
        assert service.get("restart") == "unless-stopped", name
        assert service.get("healthcheck", {}).get("test"), name


def test_no_secret_is_written_in_the_compose_file():
    for name, service in compose()["services"].items():
        for key in service.get("environment", {}):
            assert not any(w in key for w in ("PASSWORD", "URL", "SECRET")), (name, key)


def test_the_broker_takes_the_messages_platen_allows():
    conf = (ROOT / "deploy/containers/rabbitmq/rabbitmq.conf").read_text()
    assert f"max_message_size = {MAX_MESSAGE_BYTES}" in conf.splitlines()


def test_every_program_the_services_run_is_in_the_image():
    needed = set().union(*(programs(name) for name in MODULES))
    unknown = needed - set(PACKAGES)
    assert not unknown, f"add the Debian packages of {sorted(unknown)} to PACKAGES"
    missing = {PACKAGES[p] for p in needed} - installed_packages()
    assert not missing, f"{DOCKERFILE.relative_to(ROOT)} does not install {sorted(missing)}"


def test_a_kept_password_cut_short_by_a_full_disk_is_made_again(tmp_path, monkeypatch):
    # The init job keeps each password in a file of its volume, made at the first `up`.
    # A full disk (or a crash) while it is written must not leave an empty password kept
    # for every later `up`: the broker refuses a blank password and PostgreSQL clears it,
    # so the stack would never sign in again until an operator found the empty file.
    monkeypatch.setenv("PLATEN_SECRETS_ROOT", str(tmp_path))
    init = init_job()
    init.INIT.mkdir(parents=True)
    real_write = init.os.write

    def full_disk(fd, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(init.os, "write", full_disk)
    with pytest.raises(OSError):
        init.secret("db-pricing.password")
    monkeypatch.setattr(init.os, "write", real_write)
    assert not list(init.INIT.iterdir())  # nothing half-written is left to be kept
    password = init.secret("db-pricing.password")
    assert len(password) >= 24
    assert init.secret("db-pricing.password") == password  # then kept
    (init.INIT / "broker-x.password").write_text("\n")  # left empty by an older init
    assert len(init.secret("broker-x.password")) >= 24
