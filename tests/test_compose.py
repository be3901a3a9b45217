"""docker-compose.yml cannot run here (no Docker engine), so check that it describes
the real stack: every build file, command, module and environment variable it names
exists in the repository and is read by the code it configures."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from hermes.cluster import machine_settings
from hermes.migrate import PASSWORD_VARS

ROOT = Path(__file__).resolve().parent.parent
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]


def _python_module_exists(module: str) -> bool:
    path = ROOT / Path(*module.split("."))
    return (path / "__main__.py").exists() or path.with_suffix(".py").exists()


def test_the_stack_has_every_service() -> None:
    assert set(SERVICES) == {
        "db",
        "migrate",
        "postgrest",
        "api",
        "workers",
        "import-workers",
        "twilio-sim",
    }


def test_build_files_exist_and_copy_existing_paths() -> None:
    for name, svc in SERVICES.items():
        if "build" not in svc:
            continue
        dockerfile = ROOT / svc["build"]["context"] / svc["build"]["dockerfile"]
        assert dockerfile.exists(), f"{name}: {dockerfile}"
        for line in dockerfile.read_text().splitlines():
            if line.startswith("COPY "):
                for src in line.split()[1:-1]:
                    assert (ROOT / src).exists(), f"{dockerfile.name}: COPY {src}"


def test_commands_name_real_entry_points() -> None:
    for name, svc in SERVICES.items():
        cmd = svc.get("command")
        if cmd is None:
            continue
        if cmd[:2] == ["python", "-m"]:
            assert _python_module_exists(cmd[2]), f"{name}: python -m {cmd[2]}"
        elif cmd[0] == "uvicorn":
            target = next(a for a in cmd[1:] if ":" in a)
            module, func = target.split(":")
            source = (ROOT / Path(*module.split("."))).with_suffix(".py").read_text()
            assert re.search(rf"^def {func}\(", source, re.M), f"{name}: {target}"
        elif cmd[0] == "postgres":
            # Server settings: only ones `make run`'s cluster sets too, with its values.
            assert cmd[1::2] == ["-c"] * (len(cmd) // 2), f"{name}: {cmd}"
            wanted = machine_settings()
            for setting in cmd[2::2]:
                key, value = setting.split("=", 1)
                assert wanted.get(key) == value, f"{name}: {setting} vs {wanted.get(key)}"
        else:
            raise AssertionError(f"{name}: unexpected command {cmd}")


def test_images_are_built_here_or_pinned_upstream() -> None:
    postgrest_version = re.search(
        r"POSTGREST_VERSION:-([0-9.]+)-", (ROOT / "scripts" / "install-postgrest.sh").read_text()
    )
    assert postgrest_version is not None
    for name, svc in SERVICES.items():
        if "build" in svc:
            continue
        image = svc["image"]
        assert image == f"postgrest/postgrest:v{postgrest_version.group(1)}", (name, image)


def _env_reads(code: str) -> set[str]:
    """The environment variables the code reads: os.environ[...] / .get(...) /
    os.getenv(...) / env[...] / env.get(...) / prefixed_env(...) (workers/settings.py:
    the provider settings, read with an optional SANDBOX_ prefix) with a literal name. A name that only
    appears in a docstring or a comment is not read."""
    pattern = r"""(?:\benviron|\benv|\bgetenv|\bprefixed_env)\s*(?:\.get\(|\.setdefault\(|\[|\()\s*["']([A-Z][A-Z0-9_]*)["']"""
    return set(re.findall(pattern, code))


def test_env_reads_sees_only_real_reads() -> None:
    code = 'def f():\n    """Reads HERMES_NOT_READ."""\n    return os.environ.get("HERMES_READ", "x")\n'
    assert _env_reads(code) == {"HERMES_READ"}


def test_environment_variables_are_read_by_the_code() -> None:
    code = "\n".join(
        p.read_text()
        for d in ("api", "workers", "hermes", "simulators")
        for p in (ROOT / d).rglob("*.py")
    )
    # The passwords are read through hermes.migrate's table of variables (one read).
    reads = _env_reads(code) | set(PASSWORD_VARS.values())
    for name, svc in SERVICES.items():
        for var in svc.get("environment", {}):
            if var.startswith(("POSTGRES_", "PGRST_")):
                continue  # read by the upstream images
            assert var in reads, f"{name}: {var} is read by nothing"


def test_migrate_sets_passwords_the_services_use() -> None:
    env = SERVICES["migrate"]["environment"]
    assert env["HERMES_API_PASSWORD"] in SERVICES["api"]["environment"]["HERMES_API_DATABASE_URL"]
    assert (
        env["HERMES_WORKER_PASSWORD"]
        in SERVICES["workers"]["environment"]["HERMES_WORKER_DATABASE_URL"]
    )
    assert (
        env["HERMES_AUTHENTICATOR_PASSWORD"] in SERVICES["postgrest"]["environment"]["PGRST_DB_URI"]
    )
    for svc in ("postgrest", "api", "workers"):
        assert (
            SERVICES[svc]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        )
