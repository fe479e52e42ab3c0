#!/usr/bin/env bash
# Webhook benchmark (issue 10): /mutate over TLS, driven by wrk, with a realistic 5-container pod.
#
# The request is the admission.k8s.io/v1 AdmissionReview kube-apiserver sends for a Jenkins agent
# pod made by the Kubernetes plugin: 2 init containers (a setup step and the agentInjection copy
# of jenkins/inbound-agent), 3 containers (maven, docker, the injected jnlp), with env, resources,
# volume mounts, a service account token volume and managedFields, about 6 KB. Every image is
# public, so every request is answered with a 5-image JSONPatch plus the annotation.
#
# Two runs against `airlock webhook --tls-dir` (release build; no pull secret, so no API calls):
#   fixed rate  wrk -t2 -c$RATE_CONNECTIONS with a Lua delay() of $DELAY_MS per request and
#               connection, i.e. about RATE_CONNECTIONS*1000/DELAY_MS requests/s (Debian's wrk is
#               wrk 4, without wrk2's -R; the delay is spent before a request is written, so the
#               latency wrk reports is the request's own). Target: p99 <= 2 ms at 2,000 req/s.
#   maximum     wrk -t2 -c$MAX_CONNECTIONS, no delay: the maximum throughput.
# wrk and the server share the machine's cores, so the figures are a floor for the server alone.
#
# Usage: bench/webhook.sh     env: DURATION (30s), RATE_CONNECTIONS (22), DELAY_MS (10),
#                                  MAX_CONNECTIONS (64), PORT (18443), BIN (target/release/airlock)
# Output: bench/data/webhook/{fixed,max}.txt, summary lines on stdout (copied into RESULTS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/airlock}
PORT=${PORT:-18443}
DURATION=${DURATION:-30s}
RATE_CONNECTIONS=${RATE_CONNECTIONS:-22}
DELAY_MS=${DELAY_MS:-10}
MAX_CONNECTIONS=${MAX_CONNECTIONS:-64}
WORK=bench/data/webhook
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install -y wrk)" >&2; exit 2; }
[ -x "$BIN" ] || { echo "$BIN missing: cargo build --release --locked" >&2; exit 2; }
mkdir -p "$WORK"
rm -rf "$WORK/tls"

python3 - > "$WORK/review.json" <<'EOF'
import json
def c(name, image, cmd=None):
    d = {"name": name, "image": image, "imagePullPolicy": "IfNotPresent",
         "env": [{"name": "JENKINS_URL", "value": "http://jenkins.ci.svc:8080/"},
                 {"name": "JENKINS_AGENT_NAME", "value": "maven-build-7-x1"},
                 {"name": "JENKINS_AGENT_WORKDIR", "value": "/home/jenkins/agent"}],
         "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
         "volumeMounts": [{"name": "workspace-volume", "mountPath": "/home/jenkins/agent"},
                          {"name": "kube-api-access-x1", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": True}],
         "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}
    if cmd:
        d["command"] = cmd
    return d
pod = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "maven-build-7-x1", "namespace": "ci",
                    "labels": {"jenkins/label": "maven-build", "jenkins/label-digest": "5b1c0c3f9a"},
                    "annotations": {"buildUrl": "http://jenkins.ci.svc:8080/job/app/7/", "runUrl": "job/app/7/"},
                    "managedFields": [{"manager": "okhttp", "operation": "Update", "apiVersion": "v1",
                                       "time": "2026-11-28T10:00:00Z", "fieldsType": "FieldsV1",
                                       "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:jenkins/label": {}}},
                                                    "f:spec": {"f:containers": {"k:{\"name\":\"jnlp\"}": {".": {}}}}}}]},
       "spec": {
           "initContainers": [c("setup", "busybox:1.36.1", ["sh", "-c", "mkdir -p /home/jenkins/agent/cache"]),
                              c("set-up-jenkins-agent", "jenkins/inbound-agent:3283.v92c105e0f819-4",
                                ["/bin/sh", "-c", "cp $(command -v jenkins-agent) /jenkins-agent/jenkins-agent"])],
           "containers": [c("maven", "maven:3.9.9-eclipse-temurin-17", ["cat"]),
                          c("docker", "docker.io/library/docker:27.3-dind"),
                          c("jnlp", "jenkins/inbound-agent:3283.v92c105e0f819-4")],
           "volumes": [{"name": "workspace-volume", "emptyDir": {}},
                       {"name": "kube-api-access-x1", "projected": {"sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}]}}],
           "restartPolicy": "Never", "serviceAccountName": "jenkins", "nodeSelector": {"kubernetes.io/os": "linux"},
           "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]}}
gvk = {"group": "", "version": "v1", "kind": "Pod"}
gvr = {"group": "", "version": "v1", "resource": "pods"}
print(json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
    "uid": "0f0e3c44-7d71-4c7a-9a6e-1b2c3d4e5f60", "kind": gvk, "resource": gvr, "requestKind": gvk,
    "requestResource": gvr, "name": "maven-build-7-x1", "namespace": "ci", "operation": "CREATE",
    "userInfo": {"username": "system:serviceaccount:ci:jenkins", "groups": ["system:serviceaccounts", "system:authenticated"]},
    "object": pod, "oldObject": None, "dryRun": False,
    "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}}}))
EOF

"$BIN" webhook --listen "127.0.0.1:$PORT" --tls-dir "$WORK/tls" --registry registry.corp.example:5000 \
    2> "$WORK/server.log" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null' EXIT
for _ in $(seq 100); do
    curl -sf --cacert "$WORK/tls/ca.pem" "https://localhost:$PORT/healthz" >/dev/null && break
    sleep 0.1
done
# One request checked before timing: a 200 with a patch, or the numbers mean nothing.
curl -sf --cacert "$WORK/tls/ca.pem" -H 'Content-Type: application/json' \
    --data-binary "@$WORK/review.json" "https://localhost:$PORT/mutate?timeout=10s" |
    python3 -c 'import sys,json,base64; r=json.load(sys.stdin)["response"]; p=json.loads(base64.b64decode(r["patch"])); assert r["allowed"] and len(p)==6, p; print("check: 200, patch of", len(p), "operations")'

cat > "$WORK/post.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$WORK/review.json", "rb")
wrk.body = f:read("*a")
f:close()
local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")
if delay_ms > 0 then
  function delay() return delay_ms end
end
function done(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT rate=%.0f req/s p50=%.3f ms p90=%.3f ms p99=%.3f ms p99.9=%.3f ms max=%.3f ms requests=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000, summary.requests, errors))
end
EOF

URL="https://127.0.0.1:$PORT/mutate?timeout=10s"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
DELAY_MS=$DELAY_MS wrk -t2 -c"$RATE_CONNECTIONS" -d"$DURATION" --latency -s "$WORK/post.lua" "$URL" > "$WORK/fixed.txt"
echo "fixed rate (wrk -t2 -c$RATE_CONNECTIONS -d$DURATION, delay ${DELAY_MS} ms): $(grep RESULT "$WORK/fixed.txt" | cut -d' ' -f2-)"
DELAY_MS=0 wrk -t2 -c"$MAX_CONNECTIONS" -d"$DURATION" --latency -s "$WORK/post.lua" "$URL" > "$WORK/max.txt"
echo "maximum   (wrk -t2 -c$MAX_CONNECTIONS -d$DURATION): $(grep RESULT "$WORK/max.txt" | cut -d' ' -f2-)"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
