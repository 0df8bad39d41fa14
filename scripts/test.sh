#!/usr/bin/env bash
# The whole busline test suite on a fresh machine. It makes sure RabbitMQ and
# Redis answer on 127.0.0.1 (starting them, and installing them from Debian's
# packages when missing, and saying what it did), then runs go vet and the
# race-enabled tests. A broker that cannot be brought up is a failure.
#
# Tests that stop or restart a shared broker run in their own step, after
# the packages that use that broker have finished.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '== %s\n' "$*"; }

apt_install() {
	if [ -z "${APT_UPDATED:-}" ]; then
		log "apt-get update"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq
		APT_UPDATED=1
	fi
	log "installing $* from Debian's packages"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# wait_for NAME SECONDS COMMAND...: retry COMMAND once a second until it
# succeeds or SECONDS pass.
wait_for() {
	local name=$1 secs=$2
	shift 2
	for _ in $(seq "$secs"); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 1
	done
	echo "FAIL: $name did not answer within ${secs}s" >&2
	return 1
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ensure_redis() {
	if command -v redis-cli >/dev/null && redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
		log "redis answers on 127.0.0.1:6379"
		return
	fi
	command -v redis-server >/dev/null && command -v redis-cli >/dev/null || apt_install redis-server redis-tools
	log "starting redis-server on 127.0.0.1:6379"
	redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
	wait_for redis 30 sh -c 'redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG'
}

ensure_rabbitmq() {
	if port_open 5672 && rabbitmq-diagnostics -q check_running >/dev/null 2>&1; then
		log "rabbitmq answers on 127.0.0.1:5672"
		return
	fi
	command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
	if ! rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
		log "starting rabbitmq-server"
		rabbitmq-server -detached
		wait_for "rabbitmq node" 120 rabbitmq-diagnostics -q ping
	fi
	# The node may be up with its application stopped (a restart test that
	# was interrupted): start it.
	rabbitmqctl -q start_app >/dev/null 2>&1 || true
	wait_for "rabbitmq" 120 rabbitmqctl -q await_startup
	wait_for "rabbitmq port 5672" 60 port_open 5672
	log "rabbitmq answers on 127.0.0.1:5672"
}

ensure_node() {
	# The interop test runs the seed's Node.js programs (npm packages come
	# from the npm registry at test time).
	if command -v node >/dev/null && command -v npm >/dev/null; then
		log "node $(node --version) and npm $(npm --version) present"
		return
	fi
	apt_install nodejs npm
}

ensure_redis
ensure_rabbitmq
ensure_node

log "go vet ./... (and bench/watermill, a module of its own that must keep building)"
go vet ./...
(cd bench/watermill && go mod tidy -diff && go vet .)

log "gofmt -l, go mod tidy -diff, staticcheck (pinned)"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "FAIL: gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go mod tidy -diff
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

log "go test -race ./..."
go test -race -count=1 -timeout 20m ./...

if [ -f amqp/restart_test.go ]; then
	log "go test -race -tags brokerrestart (restarts RabbitMQ, raises a memory alarm, lowers max_message_size; runs alone)"
	# The alarm and refusal tests restore the watermark and the message
	# size limit themselves; this puts them back even when the test binary
	# is killed.
	watermark=$(rabbitmqctl -q eval 'vm_memory_monitor:get_vm_memory_high_watermark().')
	case $watermark in [0-9]*) ;; *) watermark=0.4 ;; esac # an absolute limit: use the default
	max_size=$(rabbitmqctl -q eval 'application:get_env(rabbit, max_message_size).')
	status=0
	go test -race -count=1 -timeout 10m -tags brokerrestart -run 'TestBroker(Restart|Alarm|Refuses)' ./amqp/ || status=$?
	rabbitmqctl -q set_vm_memory_high_watermark "$watermark" >/dev/null
	case $max_size in
	"{ok,1048576}") # the refusal test's own lowered limit, left by a killed run
		rabbitmqctl -q eval 'application:unset_env(rabbit, max_message_size).' >/dev/null ;;
	"{ok,"[0-9]*"}") max_size=${max_size#\{ok,} && max_size=${max_size%\}} &&
		rabbitmqctl -q eval "application:set_env(rabbit, max_message_size, $max_size)." >/dev/null ;;
	*) rabbitmqctl -q eval 'application:unset_env(rabbit, max_message_size).' >/dev/null ;;
	esac
	[ "$status" -eq 0 ] || exit "$status"
fi
log "all tests passed"
