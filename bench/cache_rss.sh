#!/usr/bin/env bash
# Gatehouse's memory with 100k cached identities: a Gatehouse whose config
# holds N API keys (default 100000) is started, its RSS read, then every key
# is used once (a Python client walking the key list) so each identity
# is verified and cached, and the RSS read again. The difference is what the
# cache costs; the metrics confirm N misses (one verification per key).
#
#   bench/cache_rss.sh [BIN]        # BIN defaults to target/release/gatehouse
#   N=20000 bench/cache_rss.sh      # fewer keys
#
# Called at the end of bench/run.sh (CACHE_RSS=0 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/gatehouse}
N=${N:-100000}

D=$(mktemp -d /tmp/gatehouse-rss.XXXXXX)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$D"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
PORT=$(free_port); METRICS=$(free_port)

# N keys (`gh_` + 40 random characters) and their config entries.
python3 - "$N" "$D" <<'PY'
import hashlib, secrets, string, sys
n, d = int(sys.argv[1]), sys.argv[2]
alphabet = string.ascii_letters + string.digits
with open(f"{d}/keys.txt", "w") as keys, open(f"{d}/keys.yaml", "w") as yaml:
    yaml.write("api_keys:\n")
    for i in range(n):
        key = "gh_" + "".join(secrets.choice(alphabet) for _ in range(40))
        keys.write(key + "\n")
        digest = hashlib.sha256(key.encode()).hexdigest()
        yaml.write(f'  - {{ name: k{i}, hash: "sha256:{digest}", user: bench }}\n')
PY
HASH=$(printf %s bench-password | $BIN hash-password)
cat > "$D/gatehouse.yaml" <<YAML
server: { listen: "127.0.0.1:$PORT", metrics_listen: "127.0.0.1:$METRICS", threads: 2 }
public_url: "http://127.0.0.1:$PORT"
upstream: { url: "echo:" }
store: { url: "sqlite://$D/gatehouse.db" }
cache: { max_entries: $((N * 2)) }
users:
  - { username: bench, password_hash: "$HASH", role: admin }
YAML
cat "$D/keys.yaml" >> "$D/gatehouse.yaml"
RUST_LOG=warn $BIN serve -c "$D/gatehouse.yaml" & PID=$!
for _ in $(seq 300); do curl -s -o /dev/null "http://127.0.0.1:$PORT/_auth/healthz" && break; sleep 0.1; done
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$PID/status"; }
BEFORE=$(rss_mb)

# Every key once, over keep-alive connections from a few threads.
python3 - "$D/keys.txt" "$PORT" >"$D/used.txt" <<'PY'
import http.client, sys, threading
keys = open(sys.argv[1]).read().split()
port, threads, refused = int(sys.argv[2]), 4, []
def walk(share):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    for key in share:
        conn.request("GET", "/app", headers={"X-API-Key": key})
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            refused.append(r.status)
workers = [threading.Thread(target=walk, args=(keys[i::threads],)) for i in range(threads)]
for w in workers: w.start()
for w in workers: w.join()
if refused:
    sys.exit(f"bench: {len(refused)} keys were refused ({refused[0]})")
print(len(keys))
PY
AFTER=$(rss_mb)
MISSES=$(curl -s "http://127.0.0.1:$METRICS/metrics" | awk -F' ' '/^gatehouse_identity_cache_total\{result="miss"\}/ {print $2}')
echo "gatehouse RSS with $N API keys configured: ${BEFORE} MB at start, ${AFTER} MB with them all cached ($MISSES verifications; $(cat "$D/used.txt") requests)"
python3 -c "import sys;b,a,n=map(float,sys.argv[1:]);print(f'  the cache: {a-b:.1f} MB, {(a-b)*1048576/n:.0f} bytes per cached identity')" "$BEFORE" "$AFTER" "$N"
