# Packaging targets, included by the top-level Makefile. See packaging/README.md.
#
#   make deb            target/debian/porchlight_<version>_amd64.deb, checked by lintian
#   make deb-arm64      target/debian/porchlight_<version>_arm64.deb
#                       (cross-built on amd64 Debian), checked by lintian
#   make test-package   install, run, upgrade, remove and purge the amd64 .deb in a
#                       throw-away Debian root (debootstrap + chroot); as root, ~3 min
#   make test-arm64     the arm64 binary under qemu-aarch64-static: version, and a short
#                       recording of the test camera that exports and plays
#
# Each target installs what it needs when it is missing: Debian packages with apt-get
# (as root), cargo-deb from crates.io, the Rust arm64 standard library with rustup.
# A package is built for the distribution it is built on: its automatic Depends pin
# that distribution's ffmpeg sonames (bookworm: libavcodec59; trixie: libavcodec61).

DEB_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)-$(shell sed -n 's/^revision = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
DEB_AMD64 := target/debian/porchlight_$(DEB_VERSION)_amd64.deb
ARM64_TARGET := aarch64-unknown-linux-gnu
DEB_ARM64 := target/debian/porchlight_$(DEB_VERSION)_arm64.deb

# dpkg-shlibdeps (Depends: $auto) and lintian.
DEB_TOOL_PACKAGES := dpkg-dev lintian
# Cross toolchain and the arm64 build dependencies (multiarch).
ARM64_DEB_PACKAGES := gcc-aarch64-linux-gnu libc6-dev-arm64-cross \
	libavcodec-dev:arm64 libavformat-dev:arm64 libavutil-dev:arm64 libswscale-dev:arm64
# The environment that cross-builds the ffmpeg bindings and links for arm64.
ARM64_ENV := CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
	CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
	PKG_CONFIG_ALLOW_CROSS=1 PKG_CONFIG_PATH= \
	PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig
# Lintian fails the build on any error or warning not listed (with its reason) in
# packaging/README.md and packaging/lintian-accepted.
LINTIAN := lintian --fail-on error,warning --suppress-tags-from-file packaging/lintian-accepted

# apt-get install the listed packages that are missing (as root).
define apt_install_missing
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages:$$missing — run as root"; exit 1; fi; \
	  echo "installing:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
endef

.PHONY: deb deb-arm64 deb-tools deb-arm64-deps test-package test-arm64

deb-tools:
	$(call apt_install_missing,$(DEB_TOOL_PACKAGES))
	@$(CARGO) deb --version >/dev/null 2>&1 || $(CARGO) install cargo-deb --locked

deb: deps deb-tools
	$(CARGO) deb --locked
	@test -f $(DEB_AMD64) || { echo "cargo deb did not write $(DEB_AMD64)"; exit 1; }
	$(LINTIAN) $(DEB_AMD64)
	@echo "built $(DEB_AMD64)"

deb-arm64-deps:
	@dpkg --print-foreign-architectures | grep -qx arm64 || { \
	  if [ "$$(id -u)" != 0 ]; then echo "run as root: dpkg --add-architecture arm64"; exit 1; fi; \
	  dpkg --add-architecture arm64 && apt-get update -q; }
	$(call apt_install_missing,$(ARM64_DEB_PACKAGES))
	@rustup target list --installed | grep -qx $(ARM64_TARGET) || rustup target add $(ARM64_TARGET)

deb-arm64: deps deb-tools deb-arm64-deps
	$(ARM64_ENV) $(CARGO) deb --locked --target $(ARM64_TARGET)
	@test -f $(DEB_ARM64) || { echo "cargo deb did not write $(DEB_ARM64)"; exit 1; }
	$(LINTIAN) $(DEB_ARM64)
	@echo "built $(DEB_ARM64)"

test-package: deb
	$(call apt_install_missing,debootstrap systemd-container)
	bash packaging/test-package.sh $(DEB_AMD64)

test-arm64: deb-arm64
	$(call apt_install_missing,qemu-user-static file)
	bash packaging/test-arm64.sh target/$(ARM64_TARGET)/release/porchlight
