#!/usr/bin/env bash
# Compose smoke test: build the image, start the stack, call it, restart Redis under requests and
# stop everything, checking each step against the real docker-compose.yml. Needs Docker with
# compose (the v2 plugin or docker-compose v1), the base images it builds from, and curl.
#   scripts/compose-smoke.sh     # SMOKE_PORT (default 18080), SMOKE_LOAD_SECONDS (default 15)
# See docs/compose-smoke.md. Exit status 0 when every check passed; a summary line per check.
set -euo pipefail
cd "$(dirname "$0")/.."

port=${SMOKE_PORT:-18080}
load_seconds=${SMOKE_LOAD_SECONDS:-15}
project=catalog-smoke
# Its own tag: a smoke run does not replace the model-catalog:latest a developer runs.
image=model-catalog:smoke
services=(redis api refresher)

summary=()
failed=0
stack_up=0
tmp=""

now() { if [[ -n ${EPOCHREALTIME:-} ]]; then echo "${EPOCHREALTIME/,/.}"; else date +%s; fi; }
since() { awk -v start="$1" -v end="$(now)" 'BEGIN { printf "%.1f", end - start }'; }
pass() { summary+=("PASS  $(printf '%-15s' "$1") $2"); echo "compose-smoke: $1: $2" >&2; }
fail() { summary+=("FAIL  $(printf '%-15s' "$1") $2"); failed=1; exit 1; }
compose() {
  "${compose_cmd[@]}" --env-file .env.example -p "$project" \
    -f docker-compose.yml -f "$tmp/smoke.override.yml" "$@"
}
container_of() { compose ps -q "$1"; }

cleanup() {
  local status=$?
  trap - EXIT
  set +e
  if ((stack_up)); then
    if ((failed)) || ((status)); then
      echo "compose-smoke: last log lines of the stack:" >&2
      compose logs --no-color --tail=30 >&2 2>&1
    fi
    compose down -v --remove-orphans >/dev/null 2>&1
  fi
  [[ -n $tmp ]] && rm -rf "$tmp"
  ((status)) && ! ((failed)) && summary+=("FAIL  stopped early: interrupted or an unexpected error (exit status $status), see the output above")
  echo
  echo "compose smoke summary (${compose_cmd[*]:-no compose}, project $project, port $port):"
  printf '%s\n' "${summary[@]}"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- set-up: tools, settings, an override file, a free port ---------------------------------------
if docker compose version >/dev/null 2>&1; then
  compose_cmd=(docker compose)
elif command -v docker-compose >/dev/null; then
  compose_cmd=(docker-compose)
else
  compose_cmd=()
  fail setup "neither 'docker compose' nor 'docker-compose' is installed"
fi
command -v curl >/dev/null || fail setup "curl is not installed"
[[ $port =~ ^[0-9]+$ && $load_seconds =~ ^[0-9]+$ ]] || fail setup "SMOKE_PORT and SMOKE_LOAD_SECONDS must be whole numbers"
docker info >/dev/null 2>&1 || fail setup "the Docker engine does not answer ('docker info')"
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  fail setup "port $port is in use; set SMOKE_PORT to a free one"
fi

umask 077
tmp=$(mktemp -d "${TMPDIR:-/tmp}/compose-smoke.XXXXXX")
# The settings are .env.example's (the README's `cp .env.example .env`) plus the few below: no
# variable of the caller's shell and nothing of a developer's own .env reaches the compose file.
while read -r name; do unset "$name"; done < <(grep -o '\${[A-Za-z_][A-Za-z0-9_]*' docker-compose.yml | cut -c3- | sort -u)
unset COMPOSE_PROFILES COMPOSE_FILE COMPOSE_PROJECT_NAME
jwt_secret=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
export JWT_SECRET_KEY=$jwt_secret
export PORT=$port PUBLISH_ADDRESS=127.0.0.1
# Nothing listens on port 9 inside the containers: the Ollama catalog is "ollama_unreachable"
# however the host is set up. No OPENROUTER_API_KEY: the OpenRouter catalogs are the curated lists.
export OLLAMA_BASE_URL=http://127.0.0.1:9
cat >"$tmp/smoke.override.yml" <<YAML
services:
  api:
    image: $image
  refresher:
    image: $image
YAML
compose down -v --remove-orphans >/dev/null 2>&1 || true  # what an interrupted run left behind

# --- the grace periods the stop must respect -----------------------------------------------------
seconds_of() {  # a compose duration (40s, 1m30s, 90) in whole seconds
  local value=${1//[\"\']/} total=0
  [[ $value =~ ^[0-9]+$ ]] && { echo "$value"; return; }
  while [[ $value =~ ^([0-9]+)([hms])(.*)$ ]]; do
    case ${BASH_REMATCH[2]} in h) total=$((total + BASH_REMATCH[1] * 3600)) ;;
      m) total=$((total + BASH_REMATCH[1] * 60)) ;; s) total=$((total + BASH_REMATCH[1])) ;; esac
    value=${BASH_REMATCH[3]}
  done
  [[ -z $value ]] || return 1
  echo "$total"
}
grace_of() {  # a service's stop_grace_period in seconds; Docker's 10 s when the file sets none
  local raw
  raw=$(awk -v service="$1" '
    /^[^ #]/ { in_services = ($0 ~ /^services:/); next }
    in_services && /^  [A-Za-z0-9_.-]+:/ { name = $1; sub(/:$/, "", name); next }
    in_services && name == service && /^    stop_grace_period:/ { print $2; exit }
  ' docker-compose.yml)
  [[ -z $raw ]] && { echo 10; return; }
  seconds_of "$raw"
}
declare -A grace
for service in "${services[@]}"; do
  grace[$service]=$(grace_of "$service") || fail grace "cannot read stop_grace_period of $service"
done
graceful_timeout=$(awk -F= '/^graceful_timeout *=/ { gsub(/ /, "", $2); print $2 }' gunicorn.conf.py)
[[ $graceful_timeout =~ ^[0-9]+$ ]] || fail grace "cannot read graceful_timeout from gunicorn.conf.py"
((grace[api] > graceful_timeout)) \
  || fail grace "api stop_grace_period ${grace[api]} s is not longer than gunicorn's graceful_timeout $graceful_timeout s"
pass grace "api stop_grace_period ${grace[api]} s > gunicorn graceful_timeout $graceful_timeout s; refresher ${grace[refresher]} s, redis ${grace[redis]} s"

# --- build and start -----------------------------------------------------------------------------
started=$(now)
if ! compose build >"$tmp/build.log" 2>&1; then
  tail -n 40 "$tmp/build.log" >&2
  fail build "compose build failed (last lines above)"
fi
pass build "$image built in $(since "$started") s"

started=$(now)
stack_up=1
if ! compose up -d >"$tmp/up.log" 2>&1; then
  cat "$tmp/up.log" >&2
  fail up "compose up -d failed (output above)"
fi
until curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; do
  awk -v t="$(since "$started")" 'BEGIN { exit !(t > 90) }' && fail healthz "no 200 from /healthz within 90 s"
  sleep 0.5
done
pass healthz "GET /healthz 200 on 127.0.0.1:$port, $(since "$started") s after up"

health_line() {  # "redis=healthy/0 ..." (health status / restart count) of every service
  local service id
  for service in "${services[@]}"; do
    id=$(container_of "$service")
    printf '%s=%s ' "$service" "$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}/{{.RestartCount}}' "$id")"
  done
}
while true; do
  states=$(health_line)
  [[ $states == *unhealthy* ]] && fail health "a service is unhealthy: $states"
  [[ $states =~ /[1-9] ]] && fail health "a container restarted: $states"
  [[ $(grep -o '=healthy/0' <<<"$states" | wc -l) -eq ${#services[@]} ]] && break
  awk -v t="$(since "$started")" 'BEGIN { exit !(t > 120) }' && fail health "not all healthy within 120 s: $states"
  sleep 1
done
pass health "redis, api and refresher healthy, no restarts, $(since "$started") s after up"

# --- a token from inside the api container, and the three catalogs -------------------------------
if ! token=$(compose exec -T api flask --app wsgi models token smoke 2>"$tmp/token.err" | tail -n 1); then
  cat "$tmp/token.err" >&2
  fail token "'flask --app wsgi models token' failed in the api container"
fi
[[ $token =~ ^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$ ]] || fail token "the command printed no JWT"
# In a file, not on curl's command line, where any process listing would show it.
printf 'Authorization: Bearer %s\n' "$token" >"$tmp/auth"
pass token "minted with 'flask --app wsgi models token' in the api container (${#token} chars, not shown)"

api_container=$(container_of api)
check_body='
import json, sys
body = json.load(sys.stdin)
data = body.get("data") or {}
models = data.get("models")
source = data.get("source")
count = len(models) if isinstance(models, list) else "no"
print(f"source {source}, {count} models")
wanted_source, fewest = sys.argv[1], int(sys.argv[2])
good = body.get("success") is True and data.get("source") == wanted_source
sys.exit(0 if good and isinstance(models, list) and len(models) >= fewest else 1)
'
check_catalog() {  # label, path, expected source, fewest models
  local code result
  code=$(curl -sS -m 10 -H @"$tmp/auth" -o "$tmp/body.json" -w '%{http_code}' "http://127.0.0.1:$port$2") || true
  [[ $code == 200 ]] || fail "$1" "GET $2 answered HTTP $code"
  # The image's Python reads the JSON: the host needs nothing but curl.
  result=$(docker exec -i "$api_container" python -c "$check_body" "$3" "$4" <"$tmp/body.json") \
    || fail "$1" "GET $2: 200 but not success with source $3 and at least $4 models ($result)"
  pass "$1" "GET $2: 200, success, $result"
}
check_catalog openrouter /api/models/openrouter curated 1
check_catalog embeddings /api/models/openrouter/embeddings curated 1
check_catalog ollama /api/models/ollama ollama_unreachable 0

# --- requests while Redis restarts: every answer must be a 200 -----------------------------------
redis_errors() {  # failed Redis operations so far, summed over the api's workers
  curl -fsS -m 5 "http://127.0.0.1:$port/metrics" | awk '/^catalog_redis_errors_total/ { sum += $2 } END { print sum + 0 }'
}
load() {  # three catalogs per curl (one kept-alive connection), one status per line, until told to stop
  local base="http://127.0.0.1:$port/api/models"
  while [[ ! -e $tmp/stop ]]; do
    curl -s -m 5 -H @"$tmp/auth" -w '%{http_code}\n' -o /dev/null -o /dev/null -o /dev/null \
      "$base/openrouter" "$base/openrouter/embeddings" "$base/ollama" >>"$tmp/codes" || true
    sleep 0.05
  done
}
: >"$tmp/codes"
load_started=$(now)
load &
load_pid=$!
sleep 3
errors_before=$(redis_errors)
before_restart=$(wc -l <"$tmp/codes")
restart_started=$(now)
# A restart held down for 3 s: longer than a worker's 2 s back-off after a Redis error and its
# 0.5 s snapshot check, so requests are sure to meet the outage (`restart` alone is often < 1 s).
if ! { compose stop redis && sleep 3 && compose start redis; } >"$tmp/restart.log" 2>&1; then
  touch "$tmp/stop"; wait "$load_pid" || true
  cat "$tmp/restart.log" >&2
  fail restart "compose stop/start redis failed (output above)"
fi
until [[ $(docker inspect -f '{{.State.Health.Status}}' "$(container_of redis)") == healthy ]]; do
  awk -v t="$(since "$restart_started")" 'BEGIN { exit !(t > 60) }' && { touch "$tmp/stop"; fail restart "redis not healthy again within 60 s"; }
  sleep 0.5
done
restart_seconds=$(since "$restart_started")
during_restart=$(($(wc -l <"$tmp/codes") - before_restart))
sleep 3
while awk -v t="$(since "$load_started")" -v limit="$load_seconds" 'BEGIN { exit !(t < limit) }'; do sleep 0.5; done
touch "$tmp/stop"
wait "$load_pid" || true
load_duration=$(since "$load_started")
total=$(wc -l <"$tmp/codes")
ok=$(grep -c '^200$' "$tmp/codes" || true)
others=$(grep -v '^200$' "$tmp/codes" | sort | uniq -c | awk '{ printf "%s x %s, ", $1, $2 }' || true)
((total > 0 && ok == total)) || fail restart "$ok of $total answers were 200 (others: ${others%, })"
((during_restart > 0)) || fail restart "no request was answered while redis restarted"
errors_during=$(awk -v a="$errors_before" -v b="$(redis_errors)" 'BEGIN { print b - a }')
# Else the requests never met the outage, and "all 200" would prove nothing.
((errors_during > 0)) || fail restart "the api counted no Redis error: no request met the outage"
pass restart "$total requests in $load_duration s, all 200; $during_restart of them while redis was stopped for 3 s and started (healthy again after $restart_seconds s), the api counted $errors_during failed Redis operations"

started=$(now)
until curl -fsS -m 2 "http://127.0.0.1:$port/readyz" 2>/dev/null | grep -q '"redis": *"ok"'; do
  awk -v t="$(since "$started")" 'BEGIN { exit !(t > 30) }' && fail readyz "/readyz did not report redis ok within 30 s of the restart"
  sleep 0.5
done
pass readyz "GET /readyz reports redis ok $(since "$started") s after the restart"

# --- stop: each container exits by itself (status 0, no SIGKILL) within its grace period ---------
declare -A container
for service in "${services[@]}"; do
  container[$service]=$(container_of "$service")
  # `docker wait` reports the exit status when the container stops, before `down` removes it.
  (docker wait "${container[$service]}" >"$tmp/exit.$service" 2>/dev/null; now >"$tmp/stopped.$service") &
done
sleep 1
down_started=$(now)
compose down -v --remove-orphans >"$tmp/down.log" 2>&1 || { cat "$tmp/down.log" >&2; fail down "compose down -v failed"; }
down_seconds=$(since "$down_started")
stack_up=0
wait
# redis stops after the services that depend on it: its bound is theirs plus its own.
bound=$(( (grace[api] > grace[refresher] ? grace[api] : grace[refresher]) + grace[redis] ))
details=""
for service in "${services[@]}"; do
  code=$(cat "$tmp/exit.$service")
  took=$(awk -v start="$down_started" -v end="$(cat "$tmp/stopped.$service")" 'BEGIN { printf "%.1f", end - start }')
  details+="$service exit $code after $took s, "
  [[ $code == 0 ]] || fail down "$service exited with status ${code:-unknown} after $took s (137: killed at the end of its ${grace[$service]} s grace period)"
done
details=${details%, }
awk -v t="$down_seconds" -v b="$bound" 'BEGIN { exit !(t < b) }' || fail down "took $down_seconds s, not within the grace periods ($bound s): $details"
[[ -z $(docker ps -aq --filter "label=com.docker.compose.project=$project") ]] || fail down "containers of $project are left"
[[ -z $(docker volume ls -q --filter "label=com.docker.compose.project=$project") ]] || fail down "volumes of $project are left"
pass down "down -v in $down_seconds s (grace bound $bound s): $details; nothing left"
