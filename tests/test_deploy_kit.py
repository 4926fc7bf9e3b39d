"""The deployment kit: Dockerfile, docker-compose.yml and deploy/kubernetes/, checked as far as this machine allows.

There is no Docker daemon and no cluster here (docs/deployment.md says what could not be run). So: hadolint on the
Dockerfile, the Compose spec's schema on the compose file, the Kubernetes API's own schemas (kubernetes-validate)
on the manifests, KEDA's ScaledObject against what RQ and the settings say, every variable set by them against
what the settings read; and the image's processes themselves (its entry point, its environment, the compose
file's) started here as the containers would start them, sending the README's first SMS through the fakes.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import django_rq
import pytest
import requests
import yaml
from django.conf import settings

from deliveries.services.api_keys import api_key_create
from fake_providers import __main__ as fakes_main
from fake_providers import messenger, postmark, twilio
from tests import support
from tests.support import ROOT, stop, wait_for

DOCKERFILE = ROOT / "Dockerfile"
COMPOSE_FILE = ROOT / "docker-compose.yml"
KUBERNETES = ROOT / "deploy" / "kubernetes"
ENTRYPOINT = ROOT / "deploy" / "docker" / "entrypoint.sh"
HEALTHCHECK = ROOT / "deploy" / "docker" / "healthcheck.py"
# The oldest Kubernetes minor the manifests promise to fit (docs/deployment.md), and the newest schemas at hand.
OLDEST_KUBERNETES = "1.30.0"
# Services of the compose file that run the Tidings image (the others are PostgreSQL's and Redis' own images).
TIDINGS_SERVICES = ("migrate", "web", "worker", "dispatcher", "fakes")
# Read by the image's processes without going through the settings: the entry point (gunicorn's flags), Django
# and Python themselves.
PROCESS_VARIABLES = {"DJANGO_SETTINGS_MODULE", "PORT", "WEB_CONCURRENCY", "WEB_THREADS", "PATH"}
PYTHON_VARIABLES = {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"}


# --- reading the files -----------------------------------------------------------------------------------------
def installed(module: str) -> ModuleType:
    """A validator from requirements-dev.lock; missing is a failure in CI and a skip with the way out elsewhere."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"{module} is not installed: `make install` installs requirements-dev.lock")


def venv_tool(name: str) -> str:
    """A command installed beside this interpreter (the virtualenv's bin/), whichever virtualenv runs the tests."""
    path = Path(sys.executable).parent / name
    if path.exists():
        return str(path)
    if os.environ.get("CI"):
        raise AssertionError(f"{name} is not installed in {path.parent}: `make install` installs it")
    pytest.skip(f"{name} is not installed: `make install` installs requirements-dev.lock")


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    lines = [line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    return [
        (parts[0].upper(), parts[1] if len(parts) > 1 else "")
        for parts in (line.strip().split(None, 1) for line in joined.splitlines() if line.strip())
    ]


def runtime_stage() -> list[tuple[str, str]]:
    """The instructions of the Dockerfile's last stage, the image that runs."""
    instructions = dockerfile_instructions()
    last_from = max(index for index, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[last_from:]


def image_environment() -> dict[str, str]:
    """What the runtime stage's ENV lines set (PATH left out: it extends the base image's)."""
    environment: dict[str, str] = {}
    for name, arguments in runtime_stage():
        if name == "ENV":
            environment.update(pair.split("=", 1) for pair in shlex.split(arguments))
    environment.pop("PATH", None)
    return environment


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def compose_environment(service: str = "web") -> dict[str, str]:
    return {name: str(value) for name, value in (compose()["services"][service].get("environment") or {}).items()}


def kubernetes_documents() -> list[tuple[Path, dict[str, Any]]]:
    """Every resource of deploy/kubernetes/ (kustomization.yaml is kustomize's, not one)."""
    return [
        (path, document)
        for path in sorted(KUBERNETES.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for document in yaml.safe_load_all(path.read_text())
        if document
    ]


def kubernetes_resource(kind: str, name: str) -> dict[str, Any]:
    [resource] = [
        document
        for _, document in kubernetes_documents()
        if (document["kind"], document["metadata"]["name"]) == (kind, name)
    ]
    return resource


def pod_specs() -> dict[str, dict[str, Any]]:
    """Every pod template of the manifests, by its Deployment's or Job's name."""
    return {
        document["metadata"]["name"]: document["spec"]["template"]["spec"]
        for _, document in kubernetes_documents()
        if document["kind"] in ("Deployment", "Job")
    }


def config_map() -> dict[str, str]:
    return kubernetes_resource("ConfigMap", "tidings-config")["data"]


def secret_example() -> dict[str, str]:
    return kubernetes_resource("Secret", "tidings-secrets")["stringData"]


def variables_the_settings_read() -> set[str]:
    source = "\n".join(path.read_text() for path in (ROOT / "messaging_project" / "settings").glob("*.py"))
    return set(re.findall(r"""env(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]*)["']""", source))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- Dockerfile --------------------------------------------------------------------------------------------------
def test_the_dockerfile_passes_hadolint():
    result = subprocess.run(
        [venv_tool("hadolint"), "--config", str(ROOT / ".hadolint.yaml"), str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_runs_as_a_numeric_non_root_user_with_a_healthcheck_on_health_live():
    runtime = runtime_stage()
    [user] = [arguments for name, arguments in runtime if name == "USER"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0 and gid.isdigit(), "runAsNonRoot needs a numeric, non-zero USER"
    [healthcheck] = [arguments for name, arguments in runtime if name == "HEALTHCHECK"]
    assert '"deploy/docker/healthcheck.py"' in healthcheck
    assert '"/health/live"' in HEALTHCHECK.read_text()
    [(_, entrypoint)] = [(name, arguments) for name, arguments in runtime if name == "ENTRYPOINT"]
    assert entrypoint == '["deploy/docker/entrypoint.sh"]'


def test_the_image_installs_the_locked_requirements_by_hash_and_collects_chart_js_with_the_static_files():
    runs = [arguments for name, arguments in dockerfile_instructions() if name == "RUN"]
    [install] = [run for run in runs if "pip install" in run]
    assert "--require-hashes" in install and "-r /tmp/requirements.lock" in install
    assert ("COPY", "requirements.lock /tmp/requirements.lock") in dockerfile_instructions()
    fetch = runs.index("scripts/fetch_static_vendor.sh")
    [collect] = [index for index, run in enumerate(runs) if "collectstatic" in run]
    assert fetch < collect, "Chart.js must be in static_vendor/ before collectstatic copies it"
    assert "test -s staticfiles/vendor/chartjs/chart.umd.min.js" in runs[collect]


def test_the_build_context_leaves_out_secrets_databases_and_the_local_virtualenv():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", ".venv", ".git", "*.sqlite3", "static_vendor"} <= ignored
    # Everything the image runs is sent: the apps, the settings, the fakes, the scripts its entry point calls.
    for needed in ("deliveries", "messaging_project", "fake_providers", "scripts", "deploy/docker", "manage.py"):
        assert needed not in ignored


# --- docker-compose.yml --------------------------------------------------------------------------------------------
def test_the_compose_file_follows_the_compose_spec():
    result = subprocess.run(
        [venv_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_stack_migrates_first_and_gives_each_process_its_own_command():
    services = compose()["services"]
    assert services["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert services["migrate"]["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert services["web"]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    for name in TIDINGS_SERVICES:
        assert services[name]["image"] == "tidings:local" and services[name]["build"] == "."
        assert services[name]["command"][0] in ("migrate", "web", "worker", "dispatcher", "fakes")
    # The fakes call back and are called on 127.0.0.1 only: every process that talks to them shares web's network.
    for name in ("worker", "dispatcher", "fakes"):
        assert services[name]["network_mode"] == "service:web"
    for name in ("postgres", "redis", "web"):
        assert services[name]["healthcheck"]["test"][0] == "CMD"


def test_the_compose_stack_gives_the_fakes_the_credentials_they_accept():
    environment = compose_environment()
    assert environment["TWILIO_ACCOUNT_SID"] == twilio.DEFAULT_ACCOUNT_SID
    assert environment["TWILIO_AUTH_TOKEN"] == twilio.DEFAULT_AUTH_TOKEN
    assert environment["POSTMARK_SERVER_TOKEN"] == postmark.DEFAULT_SERVER_TOKEN
    assert environment["ANYMAIL_WEBHOOK_SECRET"] == fakes_main.DEVELOPMENT_WEBHOOK_AUTH
    assert environment["MESSENGER_PAGE_ACCESS_TOKEN"] == messenger.DEFAULT_ACCESS_TOKEN
    assert environment["MESSENGER_APP_SECRET"] == messenger.DEFAULT_APP_SECRET
    defaults = vars(fakes_main.parse_args([]))
    assert urlsplit(environment["TWILIO_API_BASE_URL"]).port == defaults["twilio_port"]
    assert urlsplit(environment["POSTMARK_API_URL"]).port == defaults["postmark_port"]
    assert urlsplit(environment["MESSENGER_GRAPH_API_URL"]).port == defaults["messenger_port"]
    [app_url] = [part for part in compose()["services"]["fakes"]["command"] if part.startswith("http")]
    assert app_url == environment["PUBLIC_BASE_URL"]


# --- Kubernetes ----------------------------------------------------------------------------------------------------
def test_every_kubernetes_manifest_fits_the_api_schemas_strictly():
    validator = installed("kubernetes_validate")
    checked = []
    for path, document in kubernetes_documents():
        if document["apiVersion"].startswith("keda.sh/"):
            continue  # not one of Kubernetes' own kinds: checked below
        for version in (OLDEST_KUBERNETES, validator.latest_version()):
            try:
                validator.validate(document, version, strict=True)
            except validator.ValidationError as error:
                raise AssertionError(
                    f"{path.name} {document['kind']}: {error.message} (Kubernetes {version})"
                ) from None
        checked.append(document["kind"])
    assert sorted(set(checked)) == ["ConfigMap", "Deployment", "Job", "PodDisruptionBudget", "Secret", "Service"]


def test_a_misspelt_field_is_refused_by_the_schema_check():
    validator = installed("kubernetes_validate")
    deployment = kubernetes_resource("Deployment", "tidings-web")
    deployment["spec"]["replica"] = deployment["spec"].pop("replicas")
    with pytest.raises(validator.ValidationError, match="replica"):
        validator.validate(deployment, validator.latest_version(), strict=True)


def test_kustomize_builds_the_long_running_parts_without_the_secret_or_the_jobs():
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not on this machine: `kubectl kustomize` was not run")
    result = subprocess.run([kubectl, "kustomize", str(KUBERNETES)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    built = sorted((document["kind"], document["metadata"]["name"]) for document in yaml.safe_load_all(result.stdout))
    assert built == [
        ("ConfigMap", "tidings-config"),
        ("Deployment", "tidings-dispatcher"),
        ("Deployment", "tidings-web"),
        ("Deployment", "tidings-worker"),
        ("PodDisruptionBudget", "tidings-dispatcher"),
        ("PodDisruptionBudget", "tidings-web"),
        ("PodDisruptionBudget", "tidings-worker"),
        ("ScaledObject", "tidings-worker"),
        ("Service", "tidings-web"),
    ]


def test_keda_scales_the_worker_deployment_on_the_lists_rq_keeps_its_queues_in():
    scaled = kubernetes_resource("ScaledObject", "tidings-worker")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    assert set(spec) <= {
        "scaleTargetRef",
        "minReplicaCount",
        "maxReplicaCount",
        "pollingInterval",
        "cooldownPeriod",
        "triggers",
        "advanced",
        "fallback",
        "idleReplicaCount",
        "initialCooldownPeriod",
    }
    worker = kubernetes_resource("Deployment", "tidings-worker")
    assert spec["scaleTargetRef"] == {"name": worker["metadata"]["name"]}
    assert "replicas" not in worker["spec"], "KEDA's HPA owns the worker count"
    assert isinstance(spec["minReplicaCount"], int) and spec["minReplicaCount"] >= 1
    assert isinstance(spec["maxReplicaCount"], int) and spec["maxReplicaCount"] > spec["minReplicaCount"]
    assert isinstance(spec["pollingInterval"], int) and isinstance(spec["cooldownPeriod"], int)
    # One trigger per queue the workers listen to, on the very key RQ pushes its jobs to.
    queue_keys = {django_rq.get_queue(name).key for name in settings.RQ_QUEUES}
    assert queue_keys == {"rq:queue:high", "rq:queue:default", "rq:queue:low"}
    assert {trigger["metadata"]["listName"] for trigger in spec["triggers"]} == queue_keys
    redis_url = urlsplit(config_map()["REDIS_URL"])
    for trigger in spec["triggers"]:
        metadata = trigger["metadata"]
        assert trigger["type"] == "redis"
        # KEDA's Redis lists scaler takes strings only, and these names (keda.sh/docs/latest/scalers/redis-lists/).
        assert all(isinstance(value, str) for value in metadata.values())
        assert set(metadata) <= {
            "address",
            "host",
            "port",
            "listName",
            "listLength",
            "activationListLength",
            "databaseIndex",
            "enableTLS",
            "unsafeSsl",
            "usernameFromEnv",
            "passwordFromEnv",
            "addressFromEnv",
            "hostFromEnv",
            "portFromEnv",
        }
        assert metadata["listLength"].isdigit() and int(metadata["listLength"]) > 0
        assert metadata["address"] == f"{redis_url.hostname}:{redis_url.port}"
        assert metadata["databaseIndex"] == redis_url.path.strip("/")


def test_every_pod_runs_as_the_images_user_without_privileges_on_a_read_only_root():
    uid, _, gid = next(arguments for name, arguments in runtime_stage() if name == "USER").partition(":")
    for name, pod in pod_specs().items():
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True, name
        assert (context["runAsUser"], context["runAsGroup"]) == (int(uid), int(gid)), name
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        for container in pod["containers"]:
            assert container["image"] == "registry.example.com/tidings:1.0.0", name
            assert container["securityContext"] == {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            }, name
            assert container["resources"]["requests"]["memory"] and container["resources"]["limits"]["memory"], name


def test_the_metrics_directory_of_every_pod_that_reads_the_config_is_on_a_writable_volume():
    metrics_directory = Path(config_map()["PROMETHEUS_MULTIPROC_DIR"])
    for name, pod in pod_specs().items():
        emptydirs = {volume["name"] for volume in pod.get("volumes", []) if "emptyDir" in volume}
        for container in pod["containers"]:
            if not any("configMapRef" in source for source in container.get("envFrom", [])):
                continue
            mounts = [Path(mount["mountPath"]) for mount in container["volumeMounts"] if mount["name"] in emptydirs]
            assert any(metrics_directory.is_relative_to(mount) for mount in mounts), name


def test_the_probes_ask_the_health_endpoints_for_a_host_the_config_allows():
    allowed = config_map()["ALLOWED_HOSTS"].split(",")
    web = pod_specs()["tidings-web"]["containers"][0]
    port_names = {port["name"] for port in web["ports"]}
    probes = [web[kind] for kind in ("startupProbe", "livenessProbe", "readinessProbe")]
    for probe in probes:
        get = probe["httpGet"]
        assert get["path"] == "/health/live" and get["port"] in port_names
        assert get["httpHeaders"] == [{"name": "Host", "value": "localhost"}] and "localhost" in allowed
    # The deploy gate waits for /health/ready through the Service, then runs smoke_test.
    shell, flag, script = pod_specs()["tidings-ready-check"]["containers"][0]["args"]
    gate = shlex.split(script)
    assert (shell, flag, gate[:3]) == ("sh", "-c", ["python", "deploy/docker/healthcheck.py", "--ready"])
    service = kubernetes_resource("Service", "tidings-web")
    assert (
        gate[gate.index("--url") + 1] == f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"
    )
    assert gate[gate.index("&&") + 1 :] == ["exec", "python", "manage.py", "smoke_test"]


def test_the_pod_disruption_budgets_select_pods_the_deployments_make():
    pod_labels = {
        document["metadata"]["name"]: document["spec"]["template"]["metadata"]["labels"]
        for _, document in kubernetes_documents()
        if document["kind"] == "Deployment"
    }
    budgets = [document for _, document in kubernetes_documents() if document["kind"] == "PodDisruptionBudget"]
    assert {budget["metadata"]["name"] for budget in budgets} == set(pod_labels)
    for budget in budgets:
        assert pod_labels[budget["metadata"]["name"]].items() >= budget["spec"]["selector"]["matchLabels"].items()


# --- the variables -------------------------------------------------------------------------------------------------
def test_every_variable_the_image_compose_and_kubernetes_set_is_one_tidings_reads():
    read = variables_the_settings_read() | PROCESS_VARIABLES | PYTHON_VARIABLES
    set_by = {
        "Dockerfile": set(image_environment()),
        "configmap.yaml": set(config_map()),
        "secret.example.yaml": set(secret_example()),
    }
    for service in TIDINGS_SERVICES:
        set_by[f"docker-compose.yml {service}"] = set(compose_environment(service))
    for name, pod in pod_specs().items():
        set_by[f"{name} pod"] = {
            variable["name"] for container in pod["containers"] for variable in container.get("env", [])
        }
    for source, names in set_by.items():
        assert names - read == set(), f"{source} sets variables nothing reads"
    # And the scan sees what it should: a variable the settings do not read would be caught.
    assert "REDIS_URL" in read and "REDIS_HOST" not in read


# --- the image's processes, started here as their containers start them -----------------------------------------------
def image_process_env(tmp_path: Path, name: str, environment: dict[str, str], **overrides: str) -> dict[str, str]:
    """A container's environment: the image's ENV, the compose file's or the manifests', then what this machine needs
    instead (its own ports, the test database and Redis, a metrics directory of its own as each container has)."""
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        **image_environment(),
        **environment,
        "DATABASE_URL": support.test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / f"metrics-{name}"),
        **overrides,
    }


def start_image_process(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [str(ENTRYPOINT), *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def healthcheck(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_entry_point_runs_any_other_command_as_given_with_the_metrics_directory_made(tmp_path):
    metrics = tmp_path / "metrics"
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    result = subprocess.run(
        [str(ENTRYPOINT), "python", "-c", "import sys; print(sys.argv[1:])", "a b"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout) == (0, "['a b']\n"), result.stderr
    assert metrics.is_dir(), "manage.py check fails on a PROMETHEUS_MULTIPROC_DIR that is not a directory"


def test_the_healthcheck_fails_with_one_line_when_nothing_answers(tmp_path):
    result = healthcheck(env={"PATH": "/usr/bin:/bin", "PORT": str(free_port())})
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "/health/live did not answer" in result.stderr


def test_the_web_pod_starts_with_the_manifests_configuration_and_answers_its_probes(tmp_path):
    """The ConfigMap and the example Secret load the production settings, and each probe of web.yaml gets 200."""
    port = free_port()
    environment = {**config_map(), **secret_example()}
    env = image_process_env(tmp_path, "web", environment, PORT=str(port), WEB_CONCURRENCY="1")
    web = start_image_process("web", env=env)
    try:
        wait_for(lambda: healthcheck(env=env).returncode == 0 or web.poll() is not None, timeout=60, message="web")
        assert web.poll() is None, stop(web)
        container = pod_specs()["tidings-web"]["containers"][0]
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            get = container[kind]["httpGet"]
            headers = {header["name"]: header["value"] for header in get["httpHeaders"]}
            assert requests.get(f"http://127.0.0.1:{port}{get['path']}", headers=headers, timeout=10).status_code == 200
        # Without the probes' host the same request is refused: the Host header is what makes them pass.
        assert requests.get(f"http://127.0.0.1:{port}/health/live", timeout=10).status_code == 400
        assert (tmp_path / "metrics-web").is_dir(), "the entry point makes the metrics directory"
    finally:
        output = stop(web)
    unexpected = [line for line in output.splitlines() if "Traceback" in line and "DisallowedHost" not in line]
    assert unexpected == [] and "control socket" not in output.lower(), output


def test_check_deploy_with_the_manifests_configuration_finds_nothing_but_the_placeholder_secret_key(tmp_path):
    """Django's and Tidings' deploy checks on the ConfigMap and the example Secret (only REDIS_URL pointed at the
    test's Redis, which the checks reach): no error, and the one warning is the example's short SECRET_KEY."""
    environment = {**config_map(), **secret_example()}
    env = image_process_env(tmp_path, "check", environment, DATABASE_URL=environment["DATABASE_URL"])
    result = subprocess.run(
        [str(ENTRYPOINT), "python", "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(re.findall(r"^\?: \(([\w.]+)\)", result.stderr, re.MULTILINE)) == {"security.W009"}, result.stderr


@pytest.mark.slow
@pytest.mark.skipif(
    "postgresql" not in settings.DATABASES["default"]["ENGINE"],
    reason="the compose stack runs PostgreSQL; five processes are too heavy to repeat on SQLite",
)
@pytest.mark.django_db(transaction=True)
def test_the_compose_stacks_processes_send_the_readmes_first_sms_through_the_fakes(tmp_path):
    """docker-compose.yml's services as their containers run them (the entry point, the image's and the compose
    file's environment), each on this machine's own ports: migrate, web, worker, dispatcher and the fakes; then the
    README's first SMS goes out and comes back delivered, and the deploy gate passes."""
    web_port, twilio_port, postmark_port, messenger_port = (free_port() for _ in range(4))
    base = f"http://127.0.0.1:{web_port}"
    here = {
        "PORT": str(web_port),
        "PUBLIC_BASE_URL": base,
        "TWILIO_API_BASE_URL": f"http://127.0.0.1:{twilio_port}",
        "POSTMARK_API_URL": f"http://127.0.0.1:{postmark_port}/",
        "MESSENGER_GRAPH_API_URL": f"http://127.0.0.1:{messenger_port}",
        "WEB_CONCURRENCY": "1",
    }

    def env_of(service: str) -> dict[str, str]:
        return image_process_env(tmp_path, service, compose_environment(service), **here)

    migrate = subprocess.run(
        [str(ENTRYPOINT), "migrate"], cwd=ROOT, env=env_of("migrate"), capture_output=True, text=True, timeout=300
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr

    fakes_command = [*compose()["services"]["fakes"]["command"]]
    fakes_command[fakes_command.index("--app-url") + 1] = base
    fakes_command += [
        "--twilio-port",
        str(twilio_port),
        "--postmark-port",
        str(postmark_port),
        "--messenger-port",
        str(messenger_port),
        "--callback-delay",
        "0.2",
    ]
    processes = {
        "fakes": start_image_process(*fakes_command, env=env_of("fakes")),
        **{
            service: start_image_process(*compose()["services"][service]["command"], env=env_of(service))
            for service in ("web", "worker", "dispatcher")
        },
    }
    web_env = env_of("web")
    try:
        wait_for(lambda: healthcheck(env=web_env).returncode == 0, timeout=90, interval=0.5, message="web to answer")
        _, secret = api_key_create(name="compose-first-sms")
        headers = {"Authorization": f"Bearer {secret}"}
        answer = requests.post(
            f"{base}/api/v1/messages/",
            headers=headers,
            timeout=30,
            json={"channel": "sms", "to": "+14155550100", "body": "Hello from Tidings"},
        )
        assert answer.status_code == 201, answer.text
        message_id = answer.json()["id"]

        def status() -> str:
            return requests.get(f"{base}/api/v1/messages/{message_id}/", headers=headers, timeout=30).json()["status"]

        wait_for(lambda: status() == "delivered", timeout=90, interval=0.5, message="the SMS to be delivered")
        gate = healthcheck("--ready", "--url", base, "--wait", "90", env=web_env)
        assert gate.returncode == 0, gate.stderr
        # The post-deploy check docs/deployment.md gives the compose stack: every check passes on the fakes.
        smoke = subprocess.run(
            [str(ENTRYPOINT), "python", "manage.py", "smoke_test"],
            cwd=ROOT,
            env=web_env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    finally:
        # As `docker compose stop` does: the fakes' stop_signal (they stop on Ctrl-C), SIGTERM for the others.
        processes["fakes"].send_signal(getattr(signal, compose()["services"]["fakes"]["stop_signal"]))
        outputs = {name: stop(process) for name, process in processes.items()}
    for name, output in outputs.items():
        assert "Traceback" not in output, f"{name}:\n{output}"
