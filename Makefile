# Porchlight — the two commands a newcomer needs are `make demo` and `make test`.
# Everything the build and the tests need from Debian is installed by `make deps`
# (as root, with apt-get) when missing, so a fresh Debian 12 machine needs nothing else.

CARGO ?= cargo
# Build: FFmpeg headers for the motion decoder, libclang for bindgen.
# Tests: GStreamer's RTSP server (the test camera), ffmpeg/ffprobe (independent
# decoder checks), Chromium + chromedriver (web UI browser tests), aiosmtpd (a real
# SMTP server for alert mail), python3-zeroconf (the test camera announces itself over
# mDNS for the discovery tests and `make demo`), iproute2 (the IPv6 discovery test
# builds a veth pair in a network namespace of its own), nginx and Caddy (the README's
# reverse-proxy snippets are run in them).
DEB_PACKAGES := pkg-config clang libclang-dev \
	libavcodec-dev libavformat-dev libavutil-dev libswscale-dev \
	python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp \
	gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly \
	ffmpeg systemd time procps \
	chromium chromium-driver python3-aiosmtpd python3-zeroconf iproute2 nginx caddy

.PHONY: deps build test lint demo clean bench bench-ingest bench-motion bench-web soak fuzz-deps fuzz

# While installing, a policy-rc.d (unless the machine has one) keeps the packages'
# services from starting, and nginx and Caddy, when installed here, are disabled
# again: the tests run their own on loopback ports, nothing should serve port 80.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages:$$missing — run 'make deps' as root"; exit 1; fi; \
	  echo "installing:$$missing"; \
	  policy=/usr/sbin/policy-rc.d; added=""; \
	  if [ ! -e $$policy ]; then printf '#!/bin/sh\nexit 101\n' > $$policy && chmod 755 $$policy && added=1; fi; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	  status=$$?; if [ -n "$$added" ]; then rm -f $$policy; fi; \
	  for s in nginx caddy; do case " $$missing " in *" $$s "*) \
	    systemctl disable --quiet $$s 2>/dev/null || true;; esac; done; \
	  exit $$status; \
	fi

build: deps
	$(CARGO) build --release --locked

lint: deps
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

# Unit tests, then the integration tests against the real camera, daemon and ffmpeg,
# then every fuzz target for FUZZ_SECONDS (30 s in CI).
test: deps lint
	$(CARGO) test --locked --all-targets -- --test-threads 3
	$(MAKE) fuzz

# Fuzzing (tests/fuzz/README.md): cargo fuzz with libFuzzer on the stable toolchain
# (`--sanitizer none` needs no nightly flag). Each target runs FUZZ_SECONDS from its
# seeds in git plus a local corpus (tests/fuzz/corpus, not in git); a crash stops make
# and leaves the input in tests/fuzz/artifacts/<target>/.
FUZZ_SECONDS ?= 30
FUZZ_TARGETS := container config mp4 cookie forwarded_for onvif_probe_matches rtsp_guard

fuzz-deps:
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked

fuzz: deps fuzz-deps
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p tests/fuzz/corpus/$$t tests/fuzz/seeds/$$t; \
	  echo "fuzz $$t: $(FUZZ_SECONDS) s"; \
	  $(CARGO) fuzz run --fuzz-dir tests/fuzz --sanitizer none $$t \
	    tests/fuzz/corpus/$$t tests/fuzz/seeds/$$t -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

demo: build
	bash tests/camera/demo.sh

clean:
	$(CARGO) clean
	rm -rf var/demo

# Benchmarks print tables; they assert nothing. BENCH_SECONDS shortens a run.
# Every benchmark in one table (ingest, motion, decrypt, web, crash loss), each as a
# ratio to a reference measured in the same run; writes BENCHMARKS.md. ~15 min.
bench: deps
	/usr/bin/python3 benches/all.py

bench-ingest: build
	/usr/bin/python3 benches/ingest.py

# Motion analysis CPU beside `ffmpeg -threads 1 -i SUB -f null -` on the same 640x360
# H.264 (10 and 25 fps, 60 s), as ratios: every frame, 5 fps, and idle mode.
bench-motion: deps
	$(CARGO) test --release --locked --lib bench_motion -- --ignored --nocapture --test-threads=1

# The web UI under load: 4 cameras recording, 50 HTTPS clients for 30 s (printed).
bench-web: deps
	$(CARGO) bench --locked --bench web

# Soak: 4 cameras recording and 10 HTTPS clients (a request each every 100 ms) for
# SOAK_MINUTES (default 30); RSS, fds, threads and frames lost are printed each
# minute and compared first to last.
SOAK_MINUTES ?= 30
soak: deps
	BENCH_SOAK_MINUTES=$(SOAK_MINUTES) $(CARGO) bench --locked --bench web

# --- Packaging: .deb for amd64 and arm64 (packaging/README.md) ----------------------
include packaging/packaging.mk
