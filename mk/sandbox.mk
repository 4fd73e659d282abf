# sandbox: bubblewrap for the default backend; docker.io + debootstrap for the Docker backend
# (its tests start dockerd themselves and build the image from a debootstrap root filesystem
# cached under /var/cache/perfloop-sandbox). setpriv (util-linux) is part of Debian's base.
SYSTEM_PACKAGES += bubblewrap docker.io debootstrap

.PHONY: sandbox-image sandbox-bench

## Build the Docker sandbox image now (the docker tests also build it on demand).
sandbox-image: install
	$(PY) -m sandbox build-image

## Print the sandbox measurement figures: time to verdict (sequential vs fixed), A/A (real and
## simulated), known ratio idle / one core busy, four candidates in one task, pyperf, overhead.
## QUICK=1: fewer runs (proves each bench runs; rerun without it on a quiet machine).
SANDBOX_BENCHES = sandbox_sequential_sim sandbox_speed sandbox_aa sandbox_ratio sandbox_many \
	sandbox_pyperf sandbox_overhead
sandbox-bench: install
	for b in $(SANDBOX_BENCHES); do echo "== $$b"; $(PY) bench/$$b.py $(if $(QUICK),--quick) || exit 1; done
