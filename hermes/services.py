"""The processes of a Hermes stack, and a small supervisor for them.

Used by ``make run`` (hermes.stack) and by the end-to-end tests, so both start the
very same commands: PostgREST, the command API (uvicorn), the workers and the Twilio
simulator, against a PostgreSQL cluster started elsewhere.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from hermes.credentials import new_key_spec

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".hermes"
POSTGREST_BIN = STATE / "bin" / "postgrest"

SIM_ACCOUNT_SID = "AC00000000000000000000000000000001"
SIM_AUTH_TOKEN = "simulator-auth-token"
# The SES simulator's credentials and topic (simulators/ses): what the worker signs its
# SendEmail calls with, and the SNS topic of the events it posts back.
SES_ACCESS_KEY_ID = "AKIASIMULATOR0000000"
SES_SECRET_ACCESS_KEY = "simulator-secret-access-key"
SES_TOPIC_ARN = "arn:aws:sns:us-east-1:000000000000:hermes-ses-events"
# The WhatsApp simulator's (simulators/whatsapp): the system user's access token, the
# Meta app's secret (webhook signatures), the webhook's verify token, and the business
# number with its phone-number id.
WHATSAPP_ACCESS_TOKEN = "EAAsimulator-whatsapp-access-token"
WHATSAPP_APP_SECRET = "simulator-whatsapp-app-secret"
WHATSAPP_VERIFY_TOKEN = "simulator-whatsapp-verify-token"
WHATSAPP_NUMBER = "+14155550170"
# A second business number, for a tenant of its own (inbound WhatsApp finds its tenant
# by the number written to).
WHATSAPP_NUMBER_2 = "+14155550169"
WHATSAPP_PHONE_NUMBERS = f"{WHATSAPP_NUMBER}=100000000000001,{WHATSAPP_NUMBER_2}=100000000000002"
# The Vonage simulator's account (simulators/vonage): key, secret, signature secret.
VONAGE_API_KEY = "simkey01"
VONAGE_API_SECRET = "simulator-vonage-api-secret"
VONAGE_SIGNATURE_SECRET = "simulator-vonage-signature-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class StackConfig:
    db_host: str
    db_port: int
    db_name: str
    api_port: int
    postgrest_port: int
    sim_port: int
    run_dir: Path
    twilio_account_sid: str = SIM_ACCOUNT_SID
    twilio_auth_token: str = SIM_AUTH_TOKEN
    worker_env: dict[str, str] = field(default_factory=dict)
    sim_env: dict[str, str] = field(default_factory=dict)
    workers: int = 1
    # Import workers (PARSE and MERGE jobs), each a process of its own.
    import_workers: int = 1
    import_env: dict[str, str] = field(default_factory=dict)
    # uvicorn processes of the command API: one per core by default.
    api_processes: int = field(default_factory=lambda: os.cpu_count() or 1)
    api_env: dict[str, str] = field(default_factory=dict)
    # Provider callbacks served by a process of their own (the same app, on this port),
    # so a flood of sends cannot starve the receipts; None: the API takes them.
    receiver_port: int | None = None
    # The SES simulator (email), None: not started and no email sent.
    ses_port: int | None = None
    ses_env: dict[str, str] = field(default_factory=dict)
    # The FCM simulator (push), None: not started and no push sent.
    fcm_port: int | None = None
    fcm_env: dict[str, str] = field(default_factory=dict)
    # The WhatsApp Cloud API simulator, None: not started and no WhatsApp sent.
    whatsapp_port: int | None = None
    whatsapp_env: dict[str, str] = field(default_factory=dict)
    # The Vonage SMS API simulator (TLS), None: not started and no SMS through Vonage.
    vonage_port: int | None = None
    vonage_env: dict[str, str] = field(default_factory=dict)

    def dsn(self, role: str) -> str:
        return f"postgresql://{role}@{self.db_host}:{self.db_port}/{self.db_name}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def callbacks_url(self) -> str:
        """Where providers send status callbacks (the signed URL's base)."""
        if self.receiver_port is None:
            return self.api_url
        return f"http://127.0.0.1:{self.receiver_port}"

    @property
    def postgrest_url(self) -> str:
        return f"http://127.0.0.1:{self.postgrest_port}"

    @property
    def sim_url(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    @property
    def ses_url(self) -> str:
        return f"http://127.0.0.1:{self.ses_port}"

    @property
    def ses_ca_dir(self) -> Path:
        return self.run_dir / "ses-sim"

    @property
    def fcm_url(self) -> str:
        return f"http://127.0.0.1:{self.fcm_port}"

    @property
    def fcm_credentials_dir(self) -> Path:
        return self.run_dir / "fcm-sim"

    def fcm_worker_env(self) -> dict[str, str]:
        """The service-account key file the FCM simulator wrote, and its base URL."""
        if self.fcm_port is None:
            return {}
        return {
            "FCM_SERVICE_ACCOUNT_FILE": str(self.fcm_credentials_dir / "service-account.json"),
            "FCM_BASE_URL": self.fcm_url,
            "FCM_TOKEN_URI": self.fcm_url + "/token",
        }

    @property
    def whatsapp_url(self) -> str:
        return f"http://127.0.0.1:{self.whatsapp_port}"

    def whatsapp_worker_env(self) -> dict[str, str]:
        if self.whatsapp_port is None:
            return {}
        return {
            "WHATSAPP_ACCESS_TOKEN": WHATSAPP_ACCESS_TOKEN,
            "WHATSAPP_PHONE_NUMBERS": WHATSAPP_PHONE_NUMBERS,
            "WHATSAPP_API_BASE_URL": self.whatsapp_url,
        }

    @property
    def vonage_url(self) -> str:
        return f"https://127.0.0.1:{self.vonage_port}"

    @property
    def vonage_ca_dir(self) -> Path:
        return self.run_dir / "vonage-sim"

    def vonage_worker_env(self) -> dict[str, str]:
        """The account, the simulator's host, and a CA bundle that trusts its certificate
        (the SDK speaks only https; the public roots are in the bundle too)."""
        if self.vonage_port is None:
            return {}
        return {
            "VONAGE_API_KEY": VONAGE_API_KEY,
            "VONAGE_API_SECRET": VONAGE_API_SECRET,
            "VONAGE_REST_HOST": f"127.0.0.1:{self.vonage_port}",
            "REQUESTS_CA_BUNDLE": str(self.vonage_ca_dir / "ca-bundle.pem"),
        }

    def credentials_env(self) -> dict[str, str]:
        """The key tenants' provider accounts are sealed with (made once per run dir)."""
        path = self.run_dir / "credentials.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(new_key_spec("k1"))
            path.chmod(0o600)
        return {"HERMES_CREDENTIALS_KEYS": path.read_text().strip()}

    def webhook_env(self) -> dict[str, str]:
        """What the API needs to trust the simulators' callbacks (besides Twilio's), and
        to open tenants' accounts."""
        env = self.sns_env() | self.credentials_env()
        if self.fcm_port is not None:  # the only token_uri besides Google's a key may name
            env |= {"FCM_TOKEN_URI": self.fcm_url + "/token"}
        if self.vonage_port is not None:
            env |= {
                "HERMES_VONAGE_API_KEY": VONAGE_API_KEY,
                "HERMES_VONAGE_SIGNATURE_SECRET": VONAGE_SIGNATURE_SECRET,
            }
        if self.whatsapp_port is not None:
            env |= {
                "HERMES_WHATSAPP_APP_SECRET": WHATSAPP_APP_SECRET,
                "HERMES_WHATSAPP_VERIFY_TOKEN": WHATSAPP_VERIFY_TOKEN,
            }
        return env

    def sns_env(self) -> dict[str, str]:
        """What the API needs to trust the SES simulator's SNS messages."""
        if self.ses_port is None:
            return {}
        return {
            "HERMES_SNS_TOPIC_ARNS": SES_TOPIC_ARN,
            "HERMES_SNS_URL_PREFIXES": f"{self.ses_url}/",
            "HERMES_SNS_CA_FILE": str(self.ses_ca_dir / "sns-ca.pem"),
        }

    def ses_worker_env(self) -> dict[str, str]:
        if self.ses_port is None:
            return {}
        return {
            "SES_REGION": "us-east-1",
            "SES_ACCESS_KEY_ID": SES_ACCESS_KEY_ID,
            "SES_SECRET_ACCESS_KEY": SES_SECRET_ACCESS_KEY,
            "SES_ENDPOINT_URL": self.ses_url,
            "SES_CONFIGURATION_SET": "hermes",
        }


@dataclass
class ServiceSpec:
    name: str
    argv: list[str]
    env: dict[str, str]
    health_url: str | None = None


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PGRST_", "HERMES_", "SIM_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(ROOT)
    return env


def postgrest_spec(cfg: StackConfig) -> ServiceSpec:
    """PostgREST gets the rest of its configuration from the database
    (private.postgrest_pre_config): only how to reach it is given here."""
    conf = cfg.run_dir / "postgrest.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(
        f'db-uri = "{cfg.dsn("hermes_authenticator")}"\n'
        f'server-host = "127.0.0.1"\n'
        f"server-port = {cfg.postgrest_port}\n"
        'db-pre-config = "private.postgrest_pre_config"\n'
        'log-level = "info"\n'
    )
    return ServiceSpec(
        "postgrest", [str(POSTGREST_BIN), str(conf)], _base_env(), f"{cfg.postgrest_url}/"
    )


def api_spec(cfg: StackConfig) -> ServiceSpec:
    env = (
        _base_env()
        | {
            "HERMES_API_DATABASE_URL": cfg.dsn("hermes_api"),
            "HERMES_PUBLIC_URL": cfg.api_url,
            "TWILIO_AUTH_TOKEN": cfg.twilio_auth_token,
        }
        | cfg.webhook_env()
    )
    env |= cfg.api_env
    argv = [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app"]
    argv += ["--host", "127.0.0.1", "--port", str(cfg.api_port), "--no-access-log"]
    argv += ["--http", "httptools", "--loop", "uvloop"]
    if cfg.api_processes > 1:
        argv += ["--workers", str(cfg.api_processes)]
    return ServiceSpec("api", argv, env, f"{cfg.api_url}/healthz")


def receiver_spec(cfg: StackConfig) -> ServiceSpec:
    """The provider-callback receiver: the API's code on a port of its own, one
    process, its public URL the one the workers give providers."""
    assert cfg.receiver_port is not None
    env = (
        _base_env()
        | {
            "HERMES_API_DATABASE_URL": cfg.dsn("hermes_api"),
            "HERMES_PUBLIC_URL": cfg.callbacks_url,
            "TWILIO_AUTH_TOKEN": cfg.twilio_auth_token,
            "HERMES_API_POOL_MIN": "1",
            "HERMES_API_POOL_MAX": "4",
        }
        | cfg.webhook_env()
    )
    argv = [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app"]
    argv += ["--host", "127.0.0.1", "--port", str(cfg.receiver_port), "--no-access-log"]
    argv += ["--http", "httptools", "--loop", "uvloop"]
    return ServiceSpec("receiver", argv, env, f"{cfg.callbacks_url}/healthz")


def worker_spec(cfg: StackConfig, index: int = 1) -> ServiceSpec:
    env = (
        _base_env()
        | {
            "HERMES_WORKER_DATABASE_URL": cfg.dsn("hermes_worker"),
            "HERMES_PUBLIC_URL": cfg.callbacks_url,
            "TWILIO_ACCOUNT_SID": cfg.twilio_account_sid,
            "TWILIO_AUTH_TOKEN": cfg.twilio_auth_token,
            "TWILIO_API_BASE_URL": cfg.sim_url,
        }
        | cfg.ses_worker_env()
        | cfg.fcm_worker_env()
        | cfg.whatsapp_worker_env()
        | cfg.vonage_worker_env()
        | cfg.credentials_env()
        # every provider of this stack is a simulator: sandbox tenants may use them
        | {"HERMES_SANDBOX_PROVIDERS": "live"}
    )
    env |= cfg.worker_env
    return ServiceSpec(f"worker{index}", [sys.executable, "-m", "workers"], env)


def import_worker_spec(cfg: StackConfig, index: int = 1) -> ServiceSpec:
    env = _base_env() | {"HERMES_WORKER_DATABASE_URL": cfg.dsn("hermes_worker")}
    env |= cfg.import_env
    return ServiceSpec(f"import-worker{index}", [sys.executable, "-m", "workers", "imports"], env)


def simulator_spec(cfg: StackConfig) -> ServiceSpec:
    env = _base_env() | {
        "TWILIO_ACCOUNT_SID": cfg.twilio_account_sid,
        "TWILIO_AUTH_TOKEN": cfg.twilio_auth_token,
    }
    env |= cfg.sim_env
    argv = [sys.executable, "-m", "simulators.twilio", "--host", "127.0.0.1"]
    argv += ["--port", str(cfg.sim_port)]
    return ServiceSpec("twilio-sim", argv, env, f"{cfg.sim_url}/_sim/health")


def _simulator_spec(
    name: str, module: str, port: int | None, url: str, env: dict[str, str]
) -> ServiceSpec:
    argv = [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", str(port)]
    return ServiceSpec(name, argv, _base_env() | env, f"{url}/_sim/health")


def ses_simulator_spec(cfg: StackConfig) -> ServiceSpec:
    env = {
        "SIM_SES_ACCESS_KEY_ID": SES_ACCESS_KEY_ID,
        "SIM_SES_TOPIC_ARN": SES_TOPIC_ARN,
        "SIM_SES_SNS_ENDPOINT": f"{cfg.callbacks_url}/v1/webhooks/ses/sns",
        "SIM_SES_PUBLIC_URL": cfg.ses_url,
        "SIM_SES_CA_DIR": str(cfg.ses_ca_dir),
    }
    return _simulator_spec(
        "ses-sim", "simulators.ses", cfg.ses_port, cfg.ses_url, env | cfg.ses_env
    )


def fcm_simulator_spec(cfg: StackConfig) -> ServiceSpec:
    env = {
        "SIM_FCM_PUBLIC_URL": cfg.fcm_url,
        "SIM_FCM_CREDENTIALS_DIR": str(cfg.fcm_credentials_dir),
    }
    return _simulator_spec(
        "fcm-sim", "simulators.fcm", cfg.fcm_port, cfg.fcm_url, env | cfg.fcm_env
    )


def whatsapp_simulator_spec(cfg: StackConfig) -> ServiceSpec:
    env = {
        "SIM_WHATSAPP_ACCESS_TOKEN": WHATSAPP_ACCESS_TOKEN,
        "SIM_WHATSAPP_APP_SECRET": WHATSAPP_APP_SECRET,
        "SIM_WHATSAPP_VERIFY_TOKEN": WHATSAPP_VERIFY_TOKEN,
        "SIM_WHATSAPP_PHONE_NUMBERS": WHATSAPP_PHONE_NUMBERS,
        "SIM_WHATSAPP_WEBHOOK_URL": f"{cfg.callbacks_url}/v1/webhooks/whatsapp",
    }
    return _simulator_spec(
        "wa-sim", "simulators.whatsapp", cfg.whatsapp_port, cfg.whatsapp_url, env | cfg.whatsapp_env
    )


def vonage_simulator_spec(cfg: StackConfig) -> ServiceSpec:
    env = {
        "SIM_VONAGE_API_KEY": VONAGE_API_KEY,
        "SIM_VONAGE_API_SECRET": VONAGE_API_SECRET,
        "SIM_VONAGE_SIGNATURE_SECRET": VONAGE_SIGNATURE_SECRET,
        "SIM_VONAGE_DLR_URL": f"{cfg.callbacks_url}/v1/webhooks/vonage/dlr",
        "SIM_VONAGE_CA_DIR": str(cfg.vonage_ca_dir),
    }
    return _simulator_spec(
        "vonage-sim", "simulators.vonage", cfg.vonage_port, cfg.vonage_url, env | cfg.vonage_env
    )


def stack_specs(cfg: StackConfig) -> list[ServiceSpec]:
    specs = [simulator_spec(cfg)]
    if cfg.ses_port is not None:  # before the API: it reads the simulator's CA
        specs.append(ses_simulator_spec(cfg))
    if cfg.fcm_port is not None:  # before the workers: it writes their key file
        specs.append(fcm_simulator_spec(cfg))
    if cfg.whatsapp_port is not None:
        specs.append(whatsapp_simulator_spec(cfg))
    if cfg.vonage_port is not None:  # before the workers: it writes their CA bundle
        specs.append(vonage_simulator_spec(cfg))
    specs += [postgrest_spec(cfg), api_spec(cfg)]
    if cfg.receiver_port is not None:
        specs.append(receiver_spec(cfg))
    specs += [worker_spec(cfg, i + 1) for i in range(cfg.workers)]
    specs += [import_worker_spec(cfg, i + 1) for i in range(cfg.import_workers)]
    return specs


def wait_http(url: str, timeout: float, alive: Callable[[], bool] = lambda: True) -> None:
    deadline = time.monotonic() + timeout
    # A liveness probe of a local simulator serving TLS from a CA of its own: whether it
    # answers, not who it is.
    tls = ssl._create_unverified_context() if url.startswith("https:") else None
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"process died before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1, context=tls):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


class Supervisor:
    """Starts services as child processes, prefixes their output, stops them."""

    def __init__(self, log: IO[str] | None = None) -> None:
        self.log = log if log is not None else sys.stdout
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.specs: dict[str, ServiceSpec] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def _pump(self, name: str, stream: IO[bytes]) -> None:
        width = 11
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            with self._lock:
                self.log.write(f"{name:<{width}}| {line}\n")
                self.log.flush()
        stream.close()

    def start(self, spec: ServiceSpec, wait: float = 30.0) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            spec.argv,
            env=spec.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert proc.stdout is not None
        t = threading.Thread(target=self._pump, args=(spec.name, proc.stdout), daemon=True)
        t.start()
        self._threads.append(t)
        self.procs[spec.name] = proc
        self.specs[spec.name] = spec
        if spec.health_url:
            wait_http(spec.health_url, wait, alive=lambda: proc.poll() is None)
        return proc

    def kill(self, name: str) -> None:
        """SIGKILL: the process gets no chance to clean up (crash tests)."""
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def restart(self, name: str) -> subprocess.Popen[bytes]:
        spec = self.specs[name]
        if name in self.procs:
            self.stop_one(name)
        return self.start(spec)

    def stop_one(self, name: str, timeout: float = 10.0) -> None:
        proc = self.procs.pop(name)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def stop(self) -> None:
        for name in reversed(list(self.procs)):
            self.stop_one(name)
        for t in self._threads:
            t.join(timeout=5)
        self._threads.clear()

    def failed(self) -> list[str]:
        return [n for n, p in self.procs.items() if p.poll() is not None]
