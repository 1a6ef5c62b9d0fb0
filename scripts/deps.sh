#!/usr/bin/env bash
# Installs what relay needs to build and test on a Debian/Ubuntu machine:
#   libzmq3-dev     libzmq headers and library (cgo build of pebbe/zmq4)
#   pkg-config      lets cgo find libzmq
#   redis-server    real Redis for the matchmaker tests
#   redis-sentinel  real Sentinel for the matchmaker failover tests
#   chromium        a real headless browser for the dashboard test
#   prometheus      its promtool checks the /metrics text in the tests
# and checks that Go is installed. Does nothing when everything is present.
# Non-interactive; uses sudo when not root.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

say() { printf 'deps: %s\n' "$*"; }
die() { printf 'deps: error: %s\n' "$*" >&2; exit 1; }

# package -> why relay needs it
declare -A why=(
	[libzmq3-dev]="libzmq headers and library for the cgo build of github.com/pebbe/zmq4"
	[pkg-config]="cgo uses it to locate libzmq"
	[redis-server]="the matchmaker tests run against a real redis-server"
	[redis-sentinel]="the Redis matchmaker's Sentinel tests run against a real redis-sentinel"
	[chromium]="the dashboard test (node dashboard) drives a real headless chromium"
	[prometheus]="the metrics test checks /metrics with its promtool"
)
# package -> command that shows it is usable when dpkg does not know it
declare -A cmd=(
	[libzmq3-dev]=""
	[pkg-config]="pkg-config"
	[redis-server]="redis-server"
	[redis-sentinel]="redis-sentinel"
	[chromium]="chromium"
	[prometheus]="promtool"
)
packages=(libzmq3-dev pkg-config redis-server redis-sentinel chromium prometheus)

is_installed() {
	local pkg=$1
	if command -v dpkg >/dev/null 2>&1 &&
		dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed'; then
		return 0
	fi
	# Not known to dpkg (or no dpkg): accept the tool if it is on PATH.
	if [[ -n ${cmd[$pkg]} ]] && command -v "${cmd[$pkg]}" >/dev/null 2>&1; then
		return 0
	fi
	if [[ $pkg == libzmq3-dev ]] && command -v pkg-config >/dev/null 2>&1 &&
		pkg-config --exists libzmq 2>/dev/null; then
		return 0
	fi
	return 1
}

missing=()
for pkg in "${packages[@]}"; do
	if is_installed "$pkg"; then
		say "ok: $pkg is installed"
	else
		say "missing: $pkg (${why[$pkg]})"
		missing+=("$pkg")
	fi
done

if ((${#missing[@]} > 0)); then
	command -v apt-get >/dev/null 2>&1 ||
		die "apt-get not found; install these packages with your system's package manager: ${missing[*]}"
	as_root=()
	if [[ $(id -u) -ne 0 ]]; then
		command -v sudo >/dev/null 2>&1 ||
			die "not root and sudo not found; as root run: apt-get update && apt-get install -y ${missing[*]}"
		as_root=(sudo -n env DEBIAN_FRONTEND=noninteractive)
		sudo -n true 2>/dev/null ||
			die "sudo needs a password; run: sudo apt-get update && sudo apt-get install -y ${missing[*]}"
	fi
	say "running: ${as_root[*]:+${as_root[*]} }apt-get update"
	"${as_root[@]}" apt-get update ||
		die "apt-get update failed; check network access and /etc/apt/sources.list"
	say "running: ${as_root[*]:+${as_root[*]} }apt-get install -y --no-install-recommends ${missing[*]}"
	"${as_root[@]}" apt-get install -y --no-install-recommends "${missing[@]}" ||
		die "apt-get install failed for: ${missing[*]}"
	for pkg in "${missing[@]}"; do
		is_installed "$pkg" || die "$pkg still not installed after apt-get install"
		say "installed: $pkg"
	done
fi

# Go: on PATH, or the official tarball's default location.
if command -v go >/dev/null 2>&1; then
	say "ok: $(go version)"
elif [[ -x /usr/local/go/bin/go ]]; then
	say "ok: $(/usr/local/go/bin/go version) at /usr/local/go/bin (not on PATH; the Makefile adds it; for your shell: export PATH=\$PATH:/usr/local/go/bin)"
else
	die "go not found on PATH or in /usr/local/go/bin; install the version named in go.mod from https://go.dev/dl/ (tar -C /usr/local -xzf go<version>.linux-amd64.tar.gz, then export PATH=\$PATH:/usr/local/go/bin)"
fi

say "all build and test dependencies are present"
