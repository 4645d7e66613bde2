#!/usr/bin/env bash
# Does an anonymous account request tell, by its timing or its bytes, whether
# an account exists? A benchmark, not a test: it prints figures and a verdict
# and exits 0 either way (1 only when the setup fails).
#
#   bench/enumeration.sh                          # 400 known/unknown pairs per endpoint
#   N=100 bench/enumeration.sh                    # quick look
#   GATEHOUSE_BIN=target/debug/gatehouse bench/enumeration.sh   # another build, nothing built
#   SEED=7 bench/enumeration.sh                   # another (reproducible) request order
#
# Measured, each with N requests for a known and N for an unknown address,
# sent as pairs in random order (known first or unknown first, by coin flip)
# over one kept-alive connection, after a few unmeasured warm-up pairs:
#   POST /_auth/api/password-reset     {"email"}: a stored user's address / nobody's
#   POST /_auth/api/activation/resend  {"email"}: an address with a pending
#                                       registration / nobody's
#   POST /_auth/api/register (invite mode): a taken address / a fresh one, with a
#                                       fresh user name every time (argon2id
#                                       hashing dominates both, as expected)
# Each answer's time is taken in python3 (time.perf_counter around http.client,
# request sent to body read), and every answer's status, body and headers (less
# Date) are compared between known and unknown: any difference prints MISMATCH.
#
# Needs only curl and python3 (stdlib). Gatehouse listens on a loopback port
# with a temporary SQLite store; its SMTP server is 127.0.0.1 on a port where
# nothing listens, so mail waits in the outbox (answers never wait for SMTP);
# regulation is off (max_retries: 0) so the run is not banned. Every process
# is stopped and the temporary directory removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-400}
WARMUP=${WARMUP:-20}
SEED=${SEED:-$RANDOM}
command -v curl >/dev/null || { echo "bench: curl is missing (apt-get install -y curl)" >&2; exit 1; }
# GATEHOUSE_BIN=path measures another build and builds nothing; default: this
# tree's release build (built when missing).
if [ -z "${GATEHOUSE_BIN:-}" ] && [ ! -x target/release/gatehouse ]; then cargo build --release --quiet; fi
BIN=${GATEHOUSE_BIN:-target/release/gatehouse}

D=$(mktemp -d /tmp/gatehouse-enum.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$D"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
GH=$(free_port); SMTP=$(free_port)   # nothing ever listens on $SMTP

cat > "$D/gatehouse.yaml" <<YAML
server: { listen: "127.0.0.1:$GH", threads: ${GH_THREADS:-2} }
public_url: "http://127.0.0.1:$GH"
upstream: { url: "echo:" }
store: { url: "sqlite://$D/gatehouse.db" }
registration: { mode: invite }
smtp: { host: 127.0.0.1, port: $SMTP, security: none, from: "Bench <no-reply@example.test>" }
regulation: { max_retries: 0 }
YAML
printf %s 'alice-bench-password' |
  $BIN user add alice --email alice@example.test --password-stdin -c "$D/gatehouse.yaml" >/dev/null
RUST_LOG=${RUST_LOG:-error} $BIN serve -c "$D/gatehouse.yaml" 2>"$D/serve.log" & PIDS+=($!)

for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$GH/_auth/healthz" && break; sleep 0.1; done
curl -s -o /dev/null "http://127.0.0.1:$GH/_auth/healthz" || { echo "bench: gatehouse did not come up" >&2; cat "$D/serve.log" >&2; exit 1; }
# A pending registration, so activation/resend has an address with work to do.
code=$(curl -s -o "$D/pending.json" -w '%{http_code}' -H 'Content-Type: application/json' \
  -d '{"username":"pending","email":"pending@example.test","password":"pending-bench-password"}' \
  "http://127.0.0.1:$GH/_auth/api/register")
grep -q pending_activation "$D/pending.json" || { echo "bench: registration answered $code: $(cat "$D/pending.json")" >&2; exit 1; }

echo "gatehouse $BIN ($(stat -c %y "$BIN" | cut -d. -f1)), N=$N pairs per endpoint, seed $SEED, on $(nproc) cores, $(date -u +%Y-%m-%d)"
PORT=$GH N=$N WARMUP=$WARMUP SEED=$SEED python3 - <<'PY'
import http.client, json, os, random, statistics, time

port, n, warmup = int(os.environ["PORT"]), int(os.environ["N"]), int(os.environ["WARMUP"])
rng = random.Random(int(os.environ["SEED"]))
conn = None

def post(path, body):
    """One request on the kept-alive connection: (seconds, status, body, headers less Date)."""
    global conn
    data = json.dumps(body).encode()
    for attempt in (1, 2):
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.connect()
        try:
            t0 = time.perf_counter()
            conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            payload = r.read()
            dt = time.perf_counter() - t0
        except (http.client.HTTPException, OSError):
            conn.close(); conn = None   # the server closed a kept-alive connection: once more, anew
            if attempt == 2: raise
            continue
        headers = tuple(sorted((k.lower(), v) for k, v in r.getheaders() if k.lower() != "date"))
        if r.getheader("connection", "").lower() == "close":
            conn.close(); conn = None
        return dt, r.status, payload, headers

counter = 0
def fresh(prefix):
    global counter
    counter += 1
    return f"{prefix}{counter}x{rng.randrange(1 << 30):x}"

PW = "bench-password-1234"
endpoints = [
    ("password-reset", "/_auth/api/password-reset",
     lambda: {"email": "alice@example.test"},
     lambda: {"email": fresh("nobody") + "@example.test"}),
    ("activation/resend", "/_auth/api/activation/resend",
     lambda: {"email": "pending@example.test"},
     lambda: {"email": fresh("nobody") + "@example.test"}),
    ("register (invite)", "/_auth/api/register",
     lambda: {"username": fresh("u"), "email": "alice@example.test", "password": PW},
     lambda: {"username": fresh("u"), "email": fresh("new") + "@example.test", "password": PW}),
]

def pct(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p
    lo = int(k); hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)

rows, mismatches, intervals = [], 0, {}
for name, path, known, unknown in endpoints:
    times = {"known": [], "unknown": []}
    answers = {"known": set(), "unknown": set()}
    for i in range(warmup + n):
        order = [("known", known), ("unknown", unknown)]
        rng.shuffle(order)
        for kind, make in order:
            dt, status, payload, headers = post(path, make())
            answers[kind].add((status, payload, headers))
            if i >= warmup:
                times[kind].append(dt * 1e6)
    # Every answer, known or unknown, must be one and the same.
    every = answers["known"] | answers["unknown"]
    if len({(s, b) for s, b, _ in every}) != 1:
        mismatches += 1
        print(f"!!! MISMATCH {name}: status/body differ between known and unknown:")
        for kind in ("known", "unknown"):
            for s, b, _ in sorted({(s, b) for s, b, _ in answers[kind]}):
                print(f"!!!   {kind:8} {s} {b!r}")
    elif len({h for _, _, h in every}) != 1:
        mismatches += 1
        print(f"!!! MISMATCH {name}: headers (other than Date) differ between known and unknown:")
        for kind in ("known", "unknown"):
            for h in sorted({h for _, _, h in answers[kind]}):
                print(f"!!!   {kind:8} {h}")
    else:
        s, b, _ = next(iter(every))
        print(f"{name}: all {2 * (warmup + n)} answers identical: {s} {b.decode(errors='replace')}")
    rows.append((name, times))
    print(f"  {name} done", flush=True)

print()
print(f"{'endpoint':20} {'known p50':>10} {'p90':>8} {'unknown p50':>12} {'p90':>8} {'Δ p50':>8} {'95% CI of Δ p50':>18}   (µs; Δ = known − unknown)")
for name, t in rows:
    k, u = t["known"], t["unknown"]
    mk, mu = statistics.median(k), statistics.median(u)
    diff = mk - mu
    # Bootstrap interval of the difference of medians: how much of Δ is noise.
    boot = sorted(statistics.median(rng.choices(k, k=len(k))) - statistics.median(rng.choices(u, k=len(u)))
                  for _ in range(1000))
    intervals[name] = (boot[25], boot[974])
    ci = f"[{boot[25]:+.0f}, {boot[974]:+.0f}]"
    print(f"{name:20} {mk:10.0f} {pct(k, .9):8.0f} {mu:12.0f} {pct(u, .9):8.0f} {diff:+8.0f} {ci:>18}")
print()
for name, t in rows:
    mk, mu = statistics.median(t["known"]), statistics.median(t["unknown"])
    diff, base = mk - mu, max(mk, mu)
    rel = abs(diff) / base * 100
    if abs(diff) < 200 or rel < 5:
        verdict = "no measurable difference"
    else:
        verdict = f"DIFFERENCE: known answers {'slower' if diff > 0 else 'faster'} by {abs(diff):.0f} µs"
    lo, hi = intervals[name]
    if (lo > 0 or hi < 0) and verdict.startswith("no"):
        # Under the threshold, yet not noise: enough requests would show it.
        verdict += " (but the 95% interval of Δ excludes 0: small and systematic)"
    print(f"verdict {name:20} |Δ p50| = {abs(diff):.0f} µs ({rel:.1f}% of the median): {verdict}")
if mismatches:
    print(f"\n!!! MISMATCH: {mismatches} endpoint(s) answered known and unknown differently")
PY

# Proof that the known requests did their (hidden) work: the mail they queued.
sleep 1
DB="$D/gatehouse.db" python3 - <<'PY'
import os, sqlite3
db = sqlite3.connect(f"file:{os.environ['DB']}?mode=ro", uri=True)
rows = db.execute("""SELECT CASE WHEN recipient LIKE 'nobody%' THEN 'nobody…@example.test'
                                 WHEN recipient LIKE 'new%' THEN 'new…@example.test' ELSE recipient END,
                            subject, count(*), sum(sent_at IS NOT NULL) FROM outbox GROUP BY 1, 2 ORDER BY 1, 2""").fetchall()
print("\nmail queued during the run (none sent: nothing listens on the SMTP port):")
for who, subject, count, sent in rows:
    print(f"  {count:6} to {who:24} {subject!r}" + (f"  ({sent} sent?!)" if sent else ""))
PY
