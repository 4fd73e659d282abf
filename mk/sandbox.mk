# sandbox: bubblewrap for the default backend; docker.io + debootstrap for the Docker backend
# (its tests start dockerd themselves and build the image from a debootstrap root filesystem
# cached under /var/cache/perfloop-sandbox). setpriv (util-linux) is part of Debian's base.
SYSTEM_PACKAGES += bubblewrap docker.io debootstrap

.PHONY: sandbox-image sandbox-bench

## Build the Docker sandbox image now (the docker tests also build it on demand).
sandbox-image: install
	$(PY) -m sandbox build-image

## Print the sandbox measurement figures (A/A, known ratio, pyperf agreement, overhead).
sandbox-bench: install
	for b in bench/sandbox_*.py; do $(PY) $$b || exit 1; done
