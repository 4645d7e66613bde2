#!/usr/bin/env bash
# Gatehouse throughput and latency next to nginx proxy_pass, in one run.
#
#   bench/run.sh                       # 3 rounds x 8 scenarios x 5 s (~130 s)
#   ROUNDS=1 DURATION=3 bench/run.sh   # quick look
#   ONLY='proxy_pass|auth_request' bench/run.sh   # just the scenarios matching
#   GATEHOUSE_BIN=a GATEHOUSE_BIN_B=b bench/run.sh # A/B: two builds in one run
#   INSTRUCTIONS=1 bench/run.sh        # instructions per request instead (callgrind)
#   PERF=1 bench/run.sh                # also where Gatehouse's cycles go (perf record)
#
# Rounds interleave the scenarios so drift on a shared machine hits all of
# them alike; the table reports each scenario's median round.
#
# INSTRUCTIONS=1 runs Gatehouse (one worker) under valgrind's callgrind and
# counts the instructions it executes per request on each of its paths
# (REQUESTS sequential requests each, default 2000, after a warm-up): the
# same count for the same build and inputs whatever else the machine is
# doing, so small changes can be compared where req/s would drift.
#
# PERF=1 samples Gatehouse with `perf record` during each of its scenarios
# and prints, per scenario, its samples by crate and its busiest functions
# (self time, percent of the process's samples), so two paths can be
# compared line by line. KEEP=dir keeps the recordings of either mode
# (perf-N.data, callgrind-N.out; N the scenario's number) for `perf report -i`
# or `callgrind_annotate`.
#
# Needs wrk and nginx (apt-get install -y wrk nginx; valgrind for
# INSTRUCTIONS=1) and builds the release binary. Everything listens on loopback ports; every process is stopped at
# the end. The upstream is an nginx answering a small 200 from memory, so the
# figures measure the proxies, not the app.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
ONLY=${ONLY:-}
INSTRUCTIONS=${INSTRUCTIONS:-0}
PERF=${PERF:-0}
TOOLS="wrk nginx"; if [ "$INSTRUCTIONS" = 1 ]; then TOOLS="nginx valgrind callgrind_control"; fi
if [ "$PERF" = 1 ]; then TOOLS="$TOOLS perf"; fi
for tool in $TOOLS; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install -y wrk nginx)" >&2; exit 1; }
done
# GATEHOUSE_BIN=path compares another build (A/B runs); default: this tree's release build.
if [ -z "${GATEHOUSE_BIN:-}" ]; then cargo build --release --quiet; fi
BIN=${GATEHOUSE_BIN:-target/release/gatehouse}
# GATEHOUSE_BIN_B=path runs a second build beside the first, with the same
# configuration on its own port and store, and adds "B:" scenarios (public
# path, cached Basic, API key) interleaved with their A counterparts.
BIN_B=${GATEHOUSE_BIN_B:-}

D=$(mktemp -d /tmp/gatehouse-bench.XXXXXX)
chmod 755 "$D"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  kill "$(cat "$D/up/nginx.pid" 2>/dev/null)" 2>/dev/null || true
  kill "$(cat "$D/px/nginx.pid" 2>/dev/null)" 2>/dev/null || true
  kill "$(cat "$D/fa/nginx.pid" 2>/dev/null)" 2>/dev/null || true
  rm -rf "$D"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
UP=$(free_port); NGX=$(free_port); GH=$(free_port); FA=$(free_port); GHB=$(free_port)

nginx_conf() { # dir port body [http-level extra]
  mkdir -p "$1"
  cat > "$1/nginx.conf" <<NGINX
worker_processes 2;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $1/body; proxy_temp_path $1/proxy; fastcgi_temp_path $1/fcgi;
  uwsgi_temp_path $1/uwsgi; scgi_temp_path $1/scgi;
  keepalive_requests 1000000;
  upstream app { server 127.0.0.1:$UP; keepalive 128; keepalive_requests 1000000; }
  ${4:-}
  server {
    listen 127.0.0.1:$2;
    $3
  }
}
NGINX
}
nginx_conf "$D/up" "$UP" 'location / { default_type application/json; return 200 "{\"ok\":true}"; }'
nginx_conf "$D/px" "$NGX" 'location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }'
# Forward-auth: nginx asks Gatehouse (auth_request -> /_auth/verify/nginx,
# kept-alive connections) before proxying, as config/forward-auth/nginx.conf does.
nginx_conf "$D/fa" "$FA" '
    location / {
      auth_request /_gatehouse_verify;
      auth_request_set $gh_user $upstream_http_remote_user;
      auth_request_set $gh_groups $upstream_http_remote_groups;
      proxy_set_header Remote-User $gh_user;
      proxy_set_header Remote-Groups $gh_groups;
      proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";
    }
    location = /_gatehouse_verify {
      internal;
      proxy_pass http://gatehouse/_auth/verify/nginx;
      proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
      proxy_set_header X-Original-Method $request_method;
    }' "upstream gatehouse { server 127.0.0.1:$GH; keepalive 128; keepalive_requests 1000000; }"
nginx -c "$D/up/nginx.conf" -p "$D/up" & PIDS+=($!)
nginx -c "$D/px/nginx.conf" -p "$D/px" & PIDS+=($!)
nginx -c "$D/fa/nginx.conf" -p "$D/fa" & PIDS+=($!)

PASSWORD=bench-password
KEY=$($BIN apikey generate 2>/dev/null | sed -n 's/^key:  //p')
KEY_HASH=$(python3 -c "import hashlib,sys;print('sha256:'+hashlib.sha256(sys.argv[1].encode()).hexdigest())" "$KEY")
HASH=$(printf %s "$PASSWORD" | $BIN hash-password)
cat > "$D/gatehouse.yaml" <<YAML
server: { listen: "127.0.0.1:$GH", threads: $([ "$INSTRUCTIONS" = 1 ] && echo 1 || echo "${GH_THREADS:-2}") }
public_url: "http://127.0.0.1:$GH"
upstream: { url: "http://127.0.0.1:$UP" }
store: { url: "sqlite://$D/gatehouse.db" }
rules:
  - { path: /public/**, policy: public }
users:
  - { username: bench, password_hash: "$HASH", role: admin }
api_keys:
  - { name: bench-key, hash: "$KEY_HASH", user: bench }
YAML
printf %s "$PASSWORD" | $BIN user add web --password-stdin -c "$D/gatehouse.yaml" >/dev/null
UNDER=(); if [ "$INSTRUCTIONS" = 1 ]; then
  UNDER=(valgrind --tool=callgrind --log-file="$D/callgrind.log" --callgrind-out-file="$D/callgrind.out.%p")
fi
RUST_LOG=warn "${UNDER[@]}" $BIN serve -c "$D/gatehouse.yaml" & PIDS+=($!)
GH_PID=${PIDS[3]}
if [ -n "$BIN_B" ]; then
  sed -e "s/127.0.0.1:$GH/127.0.0.1:$GHB/g" -e "s#$D/gatehouse.db#$D/gatehouse-b.db#" "$D/gatehouse.yaml" > "$D/gatehouse-b.yaml"
  RUST_LOG=warn $BIN_B serve -c "$D/gatehouse-b.yaml" & PIDS+=($!)
  GHB_PID=${PIDS[4]}
fi

wait_up() { for _ in $(seq 600); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "bench: $1 did not come up" >&2; exit 1; }
wait_up "http://127.0.0.1:$UP/"; wait_up "http://127.0.0.1:$NGX/"; wait_up "http://127.0.0.1:$GH/_auth/healthz"
wait_up "http://127.0.0.1:$FA/"
if [ -n "$BIN_B" ]; then wait_up "http://127.0.0.1:$GHB/_auth/healthz"; fi

BASIC="Authorization: Basic $(printf %s "bench:$PASSWORD" | base64 -w0)"
# A session cookie, obtained through the sign-in page like a browser would.
curl -s -c "$D/jar" "http://127.0.0.1:$GH/_auth/login" -o "$D/login.html"
TOKEN=$(sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' "$D/login.html")
curl -s -b "$D/jar" -c "$D/jar" -o /dev/null --data-urlencode "csrf=$TOKEN" \
  --data-urlencode username=web --data-urlencode "password=$PASSWORD" "http://127.0.0.1:$GH/_auth/login"
SESSION="Cookie: gatehouse_session=$(awk '$6=="gatehouse_session" {print $7}' "$D/jar")"
# A Gatehouse JWT, from the JSON sign-in API.
JWT="Authorization: Bearer $(curl -s -H 'Content-Type: application/json' \
  -d "{\"username\":\"web\",\"password\":\"$PASSWORD\"}" "http://127.0.0.1:$GH/_auth/api/login" |
  python3 -c 'import json,sys;print(json.load(sys.stdin)["token"])')"
# Sanity: every scenario must really answer 200 before it is measured.
check() { code=$(curl -s -o /dev/null -w '%{http_code}' "${@:2}" "$1"); [ "$code" = 200 ] || { echo "bench: $1 answered $code" >&2; exit 1; }; }
check "http://127.0.0.1:$GH/public/x"
check "http://127.0.0.1:$GH/app" -H "$BASIC"
check "http://127.0.0.1:$GH/app" -H "X-API-Key: $KEY"
check "http://127.0.0.1:$GH/app" -H "$SESSION"
check "http://127.0.0.1:$GH/app" -H "$JWT"
check "http://127.0.0.1:$FA/app" -H "$BASIC"
if [ -n "$BIN_B" ]; then
  check "http://127.0.0.1:$GHB/public/x"
  check "http://127.0.0.1:$GHB/app" -H "$BASIC"
  check "http://127.0.0.1:$GHB/app" -H "X-API-Key: $KEY"
fi
for url in "http://127.0.0.1:$GH/app" "http://127.0.0.1:$FA/app"; do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$url")" = 401 ] || { echo "bench: $url is open" >&2; exit 1; }
done

# CPU time of each server's processes (utime+stime from /proc, the same
# quantity as `perf stat -e task-clock`, in clock ticks), for CPU µs per request.
TICK_US=$(( 1000000 / $(getconf CLK_TCK) ))
nginx_pids() { local m; m=$(cat "$1/nginx.pid"); echo "$m $(pgrep -P "$m" | tr '\n' ' ')"; }
cpu_ticks() { local t=0 p; for p in "$@"; do t=$(( t + $(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0) )); done; echo "$t"; }
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
IDLE_RSS=$(rss_mb "$GH_PID")
if [ -n "$BIN_B" ]; then IDLE_RSS_B=$(rss_mb "$GHB_PID"); fi

declare -A RPS P50 P99 CPU
SCEN=("direct (upstream nginx)" "nginx proxy_pass" "gatehouse public path" "gatehouse basic (cached)" "gatehouse api key" "gatehouse session cookie" "gatehouse jwt" "nginx auth_request+gatehouse")
URLS=("http://127.0.0.1:$UP/public/x" "http://127.0.0.1:$NGX/public/x" "http://127.0.0.1:$GH/public/x" "http://127.0.0.1:$GH/app" "http://127.0.0.1:$GH/app" "http://127.0.0.1:$GH/app" "http://127.0.0.1:$GH/app" "http://127.0.0.1:$FA/app")
HDRS=("X-Bench: 1" "X-Bench: 1" "X-Bench: 1" "$BASIC" "X-API-Key: $KEY" "$SESSION" "$JWT" "$BASIC")
if [ "$INSTRUCTIONS" = 1 ]; then
  REQUESTS=${REQUESTS:-2000}
  # COUNT requests with one header, one after another on one connection.
  send() { # count url header
    python3 - "$@" <<'PY'
import http.client, sys, urllib.parse
n, url, header = int(sys.argv[1]), urllib.parse.urlsplit(sys.argv[2]), sys.argv[3]
name, value = header.split(": ", 1)
c = http.client.HTTPConnection(url.hostname, url.port)
for _ in range(n):
    c.request("GET", url.path, headers={name: value})
    r = c.getresponse(); r.read()
    if r.status != 200: sys.exit(f"bench: {url.path} answered {r.status}")
PY
  }
  total() { awk '/^(summary|totals):/ {print $2; exit}' "$1"; }
  declare -A IR
  names=("public path" "basic (cached)" "api key" "session cookie" "jwt")
  for i in 2 3 4 5 6; do
    name=${names[$((i - 2))]}
    send 50 "${URLS[$i]}" "${HDRS[$i]}"    # cached and pooled before counting
    callgrind_control -z "$GH_PID" >/dev/null
    send "$REQUESTS" "${URLS[$i]}" "${HDRS[$i]}"
    callgrind_control -d "scenario-$i" "$GH_PID" >/dev/null
    # The dump is written a moment after callgrind_control returns.
    for _ in $(seq 300); do [ -s "$D/callgrind.out.$GH_PID.$((i - 1))" ] && break; sleep 0.1; done
    sleep 0.5
    IR[$name]=$(( $(total "$D/callgrind.out.$GH_PID.$((i - 1))") / REQUESTS ))
    if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP"; cp "$D/callgrind.out.$GH_PID.$((i - 1))" "$KEEP/callgrind-$i.out"; fi
  done
  echo "instructions per request (callgrind, one worker, $REQUESTS requests each, $(date -u +%Y-%m-%d))"
  for name in "${names[@]}"; do
    printf '%-16s %8d   %s\n' "$name" "${IR[$name]}" \
      "$(python3 -c "import sys;print(f'{int(sys.argv[1])/int(sys.argv[2]):.2f}x public')" "${IR[$name]}" "${IR["public path"]}")"
  done
  exit 0
fi

if [ -n "$BIN_B" ]; then # each B scenario right after its A counterpart
  s=() u=() h=()
  for i in "${!SCEN[@]}"; do
    s+=("${SCEN[$i]}"); u+=("${URLS[$i]}"); h+=("${HDRS[$i]}")
    case "${SCEN[$i]}" in
      "gatehouse public path"|"gatehouse basic (cached)"|"gatehouse api key")
        s+=("B: ${SCEN[$i]}"); u+=("${URLS[$i]/:$GH\//:$GHB/}"); h+=("${HDRS[$i]}") ;;
    esac
  done
  SCEN=("${s[@]}") URLS=("${u[@]}") HDRS=("${h[@]}")
fi
to_ms() { python3 -c "import sys;v=sys.argv[1];u={'us':0.001,'ms':1,'s':1000};n=v.rstrip('mus');print(float(n)*u[v[len(n):]])" "$1"; }
# The processes whose CPU a scenario costs (the shared upstream nginx aside).
measured_pids() { # index
  case "${SCEN[$1]}" in
    direct*) nginx_pids "$D/up" ;;
    "nginx proxy_pass") nginx_pids "$D/px" ;;
    "nginx auth_request"*) echo "$(nginx_pids "$D/fa") $GH_PID" ;;
    B:*) echo "$GHB_PID" ;;
    *) echo "$GH_PID" ;;
  esac
}
run() { # index
  local out pids before after requests
  pids=$(measured_pids "$1")
  # shellcheck disable=SC2086
  before=$(cpu_ticks $pids)
  local perf_pid=""
  if [ "$PERF" = 1 ] && [ "$pids" = "$GH_PID" ]; then
    perf record -q -F 2999 -p "$GH_PID" -o "$D/perf-$1-$r.data" -- sleep "$DURATION" 2>/dev/null &
    perf_pid=$!
  fi
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -H "${HDRS[$1]}" "${URLS[$1]}")
  # shellcheck disable=SC2086
  after=$(cpu_ticks $pids)
  if [ -n "$perf_pid" ]; then wait "$perf_pid" || true; fi
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  if echo "$out" | grep -q "Non-2xx"; then echo "bench: ${SCEN[$1]} had non-2xx answers:" >&2; echo "$out" >&2; exit 1; fi
  local name=${SCEN[$1]}
  RPS[$name]+="$(echo "$out" | awk '/Requests\/sec/ {print $2}') "
  P50[$name]+="$(to_ms "$(echo "$out" | awk '$1=="50%" {print $2}')") "
  P99[$name]+="$(to_ms "$(echo "$out" | awk '$1=="99%" {print $2}')") "
  CPU[$name]+="$(python3 -c "import sys;print(round((int(sys.argv[2])-int(sys.argv[1]))*int(sys.argv[3])/max(int(sys.argv[4]),1),1))" "$before" "$after" "$TICK_US" "$requests") "
}
median() { python3 -c "import sys,statistics;print(statistics.median(float(x) for x in sys.argv[1:]))" $1; }

echo "wrk -t$THREADS -c$CONNS -d${DURATION}s, $ROUNDS rounds, on $(nproc) cores, $(date -u +%Y-%m-%d)"
for r in $(seq "$ROUNDS"); do
  ORDER=("${!SCEN[@]}")
  # A/B: every other round runs each B scenario before its A counterpart, so
  # neither build always goes first (the first of a pair measured a few %
  # better on this machine whichever build it was).
  if [ -n "$BIN_B" ] && [ $((r % 2)) = 0 ]; then
    ORDER=()
    for i in "${!SCEN[@]}"; do
      if [ "${SCEN[$((i + 1))]:-}" = "B: ${SCEN[$i]}" ]; then ORDER+=($((i + 1)) "$i")
      elif [[ ${SCEN[$i]} != B:* ]]; then ORDER+=("$i"); fi
    done
  fi
  for i in "${ORDER[@]}"; do
    if [ -z "$ONLY" ] || [[ ${SCEN[$i]} =~ $ONLY ]]; then run "$i"; fi
  done
  echo "  round $r done"
done
printf '\n%-28s %12s %10s %10s %12s   %s\n' scenario "req/s" "p50 ms" "p99 ms" "CPU us/req" "(all rounds req/s)"
declare -A MED MEDCPU
for s in "${SCEN[@]}"; do
  [ -n "${RPS[$s]:-}" ] || continue
  MED[$s]=$(median "${RPS[$s]}")
  MEDCPU[$s]=$(median "${CPU[$s]}")
  printf '%-28s %12.0f %10.2f %10.2f %12.1f   %s\n' "$s" "${MED[$s]}" "$(median "${P50[$s]}")" "$(median "${P99[$s]}")" "${MEDCPU[$s]}" "${RPS[$s]}"
done

# a / b, or blank when either was not measured (ONLY).
ratio() {
  [ -n "${MED[$1]:-}" ] && [ -n "${MED[$2]:-}" ] || return 0
  python3 -c "import sys;print(f'{float(sys.argv[1])/float(sys.argv[2]):.2f}x')" "${MED[$1]}" "${MED[$2]}"
}
# CPU per request, a / b.
cpu_ratio() {
  [ -n "${MEDCPU[$1]:-}" ] && [ -n "${MEDCPU[$2]:-}" ] || return 0
  python3 -c "import sys;print(f'{float(sys.argv[1])/max(float(sys.argv[2]),0.001):.2f}x')" "${MEDCPU[$1]}" "${MEDCPU[$2]}"
}
echo
echo "ratios                         vs gatehouse public   vs nginx proxy_pass   CPU/req vs proxy_pass"
for s in "gatehouse public path" "gatehouse basic (cached)" "gatehouse api key" "gatehouse session cookie" "gatehouse jwt" "nginx auth_request+gatehouse" \
         "B: gatehouse public path" "B: gatehouse basic (cached)" "B: gatehouse api key"; do
  [ -n "${MED[$s]:-}" ] || continue
  base="gatehouse public path"; case "$s" in B:*) base="B: gatehouse public path" ;; esac
  printf '%-28s %14s %20s %22s\n' "$s" "$(ratio "$s" "$base")" "$(ratio "$s" "nginx proxy_pass")" "$(cpu_ratio "$s" "nginx proxy_pass")"
done
if [ -n "$BIN_B" ]; then
  echo
  echo "B / A ($BIN_B / $BIN)         req/s   CPU/req"
  for s in "gatehouse public path" "gatehouse basic (cached)" "gatehouse api key"; do
    [ -n "${MED[$s]:-}" ] && [ -n "${MED[B: $s]:-}" ] || continue
    printf '%-28s %10s %9s\n' "$s" "$(ratio "B: $s" "$s")" "$(cpu_ratio "B: $s" "$s")"
  done
fi

if [ "$PERF" = 1 ]; then
  echo
  echo "where Gatehouse's cycles go (perf record, last round): % of its samples by crate (kernel, libc"
  echo "and C code apart), then its own code's busiest functions"
  for i in "${!SCEN[@]}"; do
    data=$(ls "$D"/perf-"$i"-*.data 2>/dev/null | sort -V | tail -1 || true)
    [ -n "$data" ] || continue
    if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP"; cp "$data" "$KEEP/perf-$i.data"; fi
    echo "${SCEN[$i]}:"
    perf report -q -i "$data" --no-children --sort dso,symbol --percent-limit 0 --stdio 2>/dev/null |
      python3 -c '
import re, sys, collections
by, top = collections.Counter(), []
for line in sys.stdin:
    m = re.match(r"\s*([0-9.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)", line)
    if not m: continue
    pct, dso, sym = float(m[1]), m[2], m[4].strip()
    if m[3] == "k" or dso.startswith("[kernel"): part = "kernel"
    elif dso.startswith("libc"): part = "libc"
    else:
        c = re.search(r"([A-Za-z_][A-Za-z0-9_]*)::", sym)
        part = c[1] if c else "C code (" + ("mimalloc" if sym.startswith(("mi_", "_mi_")) else "blake3" if "blake3" in sym else "other") + ")"
        top.append((pct, sym))
    by[part] += pct
print("  " + ", ".join(f"{k} {v:.1f}" for k, v in by.most_common(12)))
for pct, sym in sorted(top, reverse=True)[:12]:
    print(f"    {pct:5.2f}%  {sym[:100]}")
'
  done
fi

echo
echo "gatehouse RSS: ${IDLE_RSS} MB at start, $(rss_mb "$GH_PID") MB after the run"
if [ -n "$BIN_B" ]; then echo "B gatehouse RSS: ${IDLE_RSS_B} MB at start, $(rss_mb "$GHB_PID") MB after the run"; fi
if [ "${CACHE_RSS:-1}" = 1 ]; then bench/cache_rss.sh "$BIN"; fi
