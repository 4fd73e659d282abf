# Local MoE backend (app/moe). llama-cpp-python is built from source by pip (cmake and a C/C++
# compiler, about 3 minutes, cached as a wheel afterwards); the same C compiler builds app/moe's
# small graph filter on first use (data/moe/native).

MOE_BUILD_PACKAGES := build-essential cmake
SYSTEM_PACKAGES += $(MOE_BUILD_PACKAGES)
MOE_MODEL ?= default
MOE_PORT ?= 8010

# CPU build for the machine it runs on, without network downloads at build time.
# Override by setting CMAKE_ARGS in the environment.
CMAKE_ARGS ?= -DGGML_NATIVE=ON -DLLAMA_CURL=OFF
export CMAKE_ARGS

# The compilers must exist before pip builds llama-cpp-python, i.e. before the venv install.
$(STAMP): | moe-build-deps

.PHONY: moe-build-deps moe-serve moe-test moe-bench

moe-build-deps:
	@missing=""; for p in $(MOE_BUILD_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

## The OpenAI-compatible MoE server on its own (make moe-serve MOE_MODEL=path/to/model.gguf).
moe-serve: install
	$(PY) -m app.moe serve --model $(MOE_MODEL) --port $(MOE_PORT)

moe-test: install
	$(PY) -m pytest tests/moe $(PYTEST_ARGS)

## Benchmarks of issue 4 (figures, not tests).
moe-bench: install
	$(PY) bench/moe_trace_size.py
	$(PY) bench/moe_default_model.py
	$(PY) bench/moe_capture_overhead.py
